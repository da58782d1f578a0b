//! Before an exec: will the shim reach the new program at all?
//!
//! A metered process that execs a statically linked program, or a setuid, setgid or
//! file-capability one (which the loader runs without `LD_PRELOAD`), starts something that
//! can never report itself. The reporter checks the command it starts (`reporter/src/elf.rs`);
//! this checks every program a metered process execs, with the same rules and sentence
//! (`sockmeter::preload`), and appends one line to the run's notes file
//! (`sockmeter::wire::notes_path`), which the reporter reads at the end and says once.
//!
//! Only under a reporter (`SOCKMETER_SOCKET`). The exec may be a `vfork` child's, which shares
//! its parent's memory: nothing here allocates or takes a lock (stack buffers, a few system
//! calls: open, pread, fstat, fgetxattr, fstatvfs, and a `PATH` search for `execvp`).
// The check reads ELF programs: on macOS (Mach-O) the reporter's preflight speaks for the
// command, and a descendant's exec is not checked.
#![cfg_attr(not(target_os = "linux"), allow(dead_code))]
// Handlers are called only by the wrappers `hook_table!` generates, with the arguments the host
// passed to exec (NUL-terminated strings, as exec requires).
#![allow(clippy::not_unsafe_ptr_arg_deref)]

use std::ffi::CStr;
use std::io::{Cursor, Write};

use libc::{c_char, c_int};
use sockmeter::preload::{self, Shebang};

use crate::platform;

/// A path buffer (PATH_MAX), NUL-terminated when filled.
type PathBuf = [u8; 4096];

/// What an exec is about to run.
#[derive(Clone, Copy)]
pub enum Target {
    /// A path (`execve`, `execv`).
    Path(*const c_char),
    /// A file name searched for in `PATH` when it has no `/` (`execvp`, `execvpe`).
    Search(*const c_char),
    /// An open file (`fexecve`).
    Fd(c_int),
}

/// Checks `target` and, when the shim cannot be preloaded into it, says so in the notes file.
pub fn check(target: Target) {
    #[cfg(target_os = "linux")]
    {
        let Some(socket) = crate::runtime::config().socket.as_deref() else {
            return;
        };
        let mut line = [0u8; 12 * 1024];
        let n = match sentence(target, &mut line) {
            Some(n) => n,
            None => return,
        };
        append(socket, &line[..n]);
    }
    #[cfg(not(target_os = "linux"))]
    let _ = target;
}

/// Copies a C string into `buf` (NUL-terminated); its length, or `None` when it does not fit.
fn copy_c(s: &[u8], buf: &mut PathBuf) -> Option<usize> {
    if s.len() + 1 > buf.len() || s.is_empty() {
        return None;
    }
    buf[..s.len()].copy_from_slice(s);
    buf[s.len()] = 0;
    Some(s.len())
}

/// `dir/name` into `buf`.
fn join(dir: &[u8], name: &[u8], buf: &mut PathBuf) -> Option<usize> {
    let dir = if dir.is_empty() { b"." as &[u8] } else { dir };
    let n = dir.len() + 1 + name.len();
    if n + 1 > buf.len() {
        return None;
    }
    buf[..dir.len()].copy_from_slice(dir);
    buf[dir.len()] = b'/';
    buf[dir.len() + 1..n].copy_from_slice(name);
    buf[n] = 0;
    Some(n)
}

/// Makes a relative path absolute (the current directory in front), in place.
fn absolute(buf: &mut PathBuf, n: usize) -> Option<usize> {
    if buf[0] == b'/' {
        return Some(n);
    }
    let mut cwd = [0u8; 4096];
    // SAFETY: getcwd writes at most `cwd.len()` bytes into our buffer.
    if unsafe { libc::getcwd(cwd.as_mut_ptr() as *mut c_char, cwd.len()) }.is_null() {
        return Some(n);
    }
    let clen = cwd.iter().position(|b| *b == 0)?;
    let mut rel = [0u8; 4096];
    rel[..n].copy_from_slice(&buf[..n]);
    let rel = rel[..n].strip_prefix(b"./").unwrap_or(&rel[..n]);
    join(&cwd[..clen], rel, buf)
}

fn is_executable_file(path: &[u8]) -> bool {
    // SAFETY: a NUL-terminated path in our buffer, and a zeroed stat to fill.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        libc::stat(path.as_ptr() as *const c_char, &mut st) == 0
            && st.st_mode & libc::S_IFMT == libc::S_IFREG
            && libc::access(path.as_ptr() as *const c_char, libc::X_OK) == 0
    }
}

/// Finds `name` as `execvp` would: as is with a `/`, else the first executable file in `PATH`.
fn search(name: &[u8], buf: &mut PathBuf) -> Option<usize> {
    if name.contains(&b'/') {
        let n = copy_c(name, buf)?;
        return absolute(buf, n);
    }
    // SAFETY: getenv returns null or the environment's NUL-terminated value.
    let path = unsafe {
        let p = libc::getenv(c"PATH".as_ptr());
        if p.is_null() {
            b"/bin:/usr/bin" as &[u8]
        } else {
            CStr::from_ptr(p).to_bytes()
        }
    };
    for dir in path.split(|b| *b == b':') {
        if let Some(n) = join(dir, name, buf) {
            if is_executable_file(&buf[..=n]) {
                return absolute(buf, n);
            }
        }
    }
    None
}

struct Opened(c_int);

impl Opened {
    fn path(p: &[u8]) -> Option<Opened> {
        // SAFETY: a NUL-terminated path in our buffer.
        let fd = unsafe { libc::open(p.as_ptr() as *const c_char, libc::O_RDONLY | libc::O_CLOEXEC) };
        (fd >= 0).then_some(Opened(fd))
    }

    fn read_at(&self, off: u64, buf: &mut [u8]) -> usize {
        // SAFETY: pread into our buffer, at most its length.
        let r = unsafe {
            libc::pread(
                self.0,
                buf.as_mut_ptr() as *mut libc::c_void,
                buf.len(),
                off as libc::off_t,
            )
        };
        usize::try_from(r).unwrap_or(0)
    }
}

impl Drop for Opened {
    fn drop(&mut self) {
        // SAFETY: our own fd, opened above.
        unsafe { libc::close(self.0) };
    }
}

/// Whether the program open as `fd` runs with `LD_PRELOAD` ignored, and why.
fn privileged(fd: c_int) -> Option<&'static str> {
    let p = platform::program_privileges(fd)?;
    // SAFETY: geteuid and getegid cannot fail.
    let (euid, egid) = unsafe { (libc::geteuid(), libc::getegid()) };
    let why = preload::privilege(p.mode, p.uid, p.gid, p.caps, euid, egid)?;
    (!p.nosuid).then_some(why)
}

/// The notes line for `target` (`<pid> <kind> <sentence>\n`) into `out`; its length, or
/// `None` when all is well (or the program cannot be read: the exec will say so itself).
fn sentence(target: Target, out: &mut [u8]) -> Option<usize> {
    let mut prog: PathBuf = [0; 4096];
    let mut script: PathBuf = [0; 4096];
    let mut script_len = 0;
    let (mut file, mut len) = match target {
        Target::Path(p) if !p.is_null() => {
            // SAFETY: exec's NUL-terminated path argument.
            let n = copy_c(unsafe { CStr::from_ptr(p) }.to_bytes(), &mut prog)?;
            let n = absolute(&mut prog, n)?;
            (Opened::path(&prog[..=n])?, n)
        }
        Target::Search(p) if !p.is_null() => {
            // SAFETY: exec's NUL-terminated file argument.
            let n = search(unsafe { CStr::from_ptr(p) }.to_bytes(), &mut prog)?;
            (Opened::path(&prog[..=n])?, n)
        }
        Target::Fd(fd) => {
            let mut link = [0u8; 32];
            let mut c = Cursor::new(&mut link[..]);
            write!(c, "/proc/self/fd/{fd}").ok()?;
            // SAFETY: readlink into our buffer (one byte kept for the NUL).
            let n = unsafe {
                libc::readlink(
                    link.as_ptr() as *const c_char,
                    prog.as_mut_ptr() as *mut c_char,
                    prog.len() - 1,
                )
            };
            let n = usize::try_from(n).ok().filter(|n| *n > 0)?;
            prog[n] = 0;
            // SAFETY: dup of the caller's fd, which exec is about to use: ours to read and close.
            let dup = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
            (Opened((dup >= 0).then_some(dup)?), n)
        }
        _ => return None,
    };
    // A `#!` script: the kernel runs its interpreter (one level, and `env NAME` through PATH).
    let mut head = [0u8; 256];
    let mut got = file.read_at(0, &mut head);
    if let Some(sb) = preload::shebang(&head[..got]) {
        script[..len].copy_from_slice(&prog[..len]);
        script_len = len;
        len = match sb {
            Shebang::Path(p) => copy_c(p, &mut prog)?,
            Shebang::Env(name) => search(name, &mut prog)?,
        };
        file = Opened::path(&prog[..=len])?;
        got = file.read_at(0, &mut head);
    }
    // The ELF header is in the bytes already read: one system call fewer.
    let elf = preload::parse_elf(&mut |off, buf| match usize::try_from(off) {
        Ok(o) if o + buf.len() <= got => {
            buf.copy_from_slice(&head[o..o + buf.len()]);
            buf.len()
        }
        _ => file.read_at(off, buf),
    })?;
    let mut w = Cursor::new(out);
    // SAFETY: getpid cannot fail.
    let pid = unsafe { libc::getpid() };
    let mut named = [0u8; 8400];
    let mut nw = Cursor::new(&mut named[..]);
    nw.write_all(&prog[..len]).ok()?;
    if script_len > 0 {
        nw.write_all(b" (the interpreter of ").ok()?;
        nw.write_all(&script[..script_len]).ok()?;
        nw.write_all(b")").ok()?;
    }
    let nlen = nw.position() as usize;
    let written = if !elf.has_interp {
        write!(w, "{pid} {} ", preload::STATIC).and_then(|()| preload::write_static(&mut w, &named[..nlen]))
    } else {
        let why = privileged(file.0)?;
        write!(w, "{pid} {} ", preload::PRIVILEGED)
            .and_then(|()| preload::write_privileged(&mut w, &named[..nlen], why))
    };
    written.and_then(|()| w.write_all(b"\n")).ok()?;
    Some(w.position() as usize)
}

/// Appends `line` to the run's notes file (created by the reporter: no `O_CREAT`).
fn append(socket: &str, line: &[u8]) {
    let mut path: PathBuf = [0; 4096];
    let s = socket.as_bytes();
    let suffix = sockmeter::wire::NOTES_SUFFIX.as_bytes();
    if s.len() + suffix.len() + 1 > path.len() {
        return;
    }
    path[..s.len()].copy_from_slice(s);
    path[s.len()..s.len() + suffix.len()].copy_from_slice(suffix);
    // SAFETY: open/write/close on a NUL-terminated path and a valid buffer; the fd is ours and
    // closed at once. With O_APPEND the line lands whole.
    unsafe {
        let fd = libc::open(
            path.as_ptr() as *const c_char,
            libc::O_WRONLY | libc::O_APPEND | libc::O_CLOEXEC,
        );
        if fd >= 0 {
            libc::write(fd, line.as_ptr() as *const libc::c_void, line.len());
            libc::close(fd);
        }
    }
}
