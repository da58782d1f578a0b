//! Opening a report file without writing through someone else's symbolic link.
//!
//! `SOCKMETER_REPORT` and `sockmeter run --json FILE` name a file that a process, perhaps
//! root's, creates or truncates. A plain `open` follows symbolic links: another user's link in
//! a shared directory (`/tmp/report.json -> /etc/passwd`) would make that process overwrite a
//! file of its own. [`open`] walks the path one component at a time from a directory fd
//! (`openat`), never lets the kernel follow a link on its own (`O_NOFOLLOW`), and follows a
//! link only when it is owned by this process's effective user or by root, checking again at
//! every hop (at most [`MAX_LINKS`]). Otherwise it fails with [`ForeignLink`] (inside an
//! [`io::Error`] of kind `PermissionDenied`) and nothing is created or written.
//!
//! Links owned by root are the system's own (`/dev/stderr -> /proc/self/fd/2`, `/dev/fd`);
//! links inside `/proc` (`/proc/self`, the magic `/proc/self/fd/N`, which name an open file
//! rather than a path) are resolved by the kernel in one step, once their owner passed the
//! same check. Files are created with mode 0600 (less the umask).

use std::collections::VecDeque;
use std::ffi::{CString, OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

/// The most symbolic links followed for one path (the kernel's own limit is 40).
pub const MAX_LINKS: usize = 40;
/// The mode a new report file gets (before the umask).
pub const CREATE_MODE: libc::mode_t = 0o600;
/// `statfs.f_type` of procfs.
const PROC_SUPER_MAGIC: i64 = 0x9fa0;

/// Opens a path component as itself, without following it or needing read access: Linux's
/// `O_PATH`. macOS has none: `O_SYMLINK` opens a link itself (and anything else as a plain
/// read-only open, which never blocks with `O_NONBLOCK`).
#[cfg(target_os = "linux")]
const O_PATH: libc::c_int = libc::O_PATH;
#[cfg(not(target_os = "linux"))]
const O_PATH: libc::c_int = libc::O_RDONLY | libc::O_NONBLOCK | libc::O_SYMLINK;
/// With [`O_PATH`]: a link is opened as itself (`O_NOFOLLOW` would fail it on macOS, where
/// `O_SYMLINK` already does the job).
#[cfg(target_os = "linux")]
const AS_ITSELF: libc::c_int = O_PATH | libc::O_NOFOLLOW;
#[cfg(not(target_os = "linux"))]
const AS_ITSELF: libc::c_int = O_PATH;

/// A symbolic link this process will not follow: it belongs to another user.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "refusing to follow the symbolic link {} owned by uid {owner} (only links owned by this user, uid {me}, or by root are followed); nothing was written",
    link.display()
)]
pub struct ForeignLink {
    /// The link, as reached from the path asked for.
    pub link: PathBuf,
    /// Its owner.
    pub owner: u32,
    /// This process's effective uid.
    pub me: u32,
}

/// A file opened by [`open`], with where it was found (for [`Opened::remove`]).
#[derive(Debug)]
pub struct Opened {
    /// The open file.
    pub file: File,
    /// The directory that holds it and its name there; `None` for a file reached through a
    /// kernel link in `/proc` (it has no name of its own to remove).
    place: Option<(OwnedFd, CString)>,
}

impl Opened {
    /// Closes the file and removes the name it was opened under (a probe that created it).
    pub fn remove(self) -> io::Result<()> {
        drop(self.file);
        let Some((dir, name)) = self.place else {
            return Err(io::Error::new(io::ErrorKind::Unsupported, "not a named file"));
        };
        // SAFETY: a live directory fd and a NUL-terminated name.
        cvt(unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), 0) }).map(drop)
    }
}

/// Opens `path` with the `open(2)` `flags` given (`O_WRONLY|O_CREAT|O_APPEND`, ...; `O_CLOEXEC`
/// and `O_NOFOLLOW` are added), following only symbolic links owned by this process's
/// effective user or by root. A file it creates gets mode [`CREATE_MODE`].
pub fn open(path: &Path, flags: libc::c_int) -> io::Result<Opened> {
    // SAFETY: geteuid cannot fail and touches no memory.
    open_trusting(path, flags, unsafe { libc::geteuid() })
}

/// [`open`], trusting links owned by `me` (and by root). Tests pass another uid than their own
/// to see their own links refused without needing root.
pub fn open_trusting(path: &Path, flags: libc::c_int, me: u32) -> io::Result<Opened> {
    Walk::new(path, me)?.run(flags | libc::O_CLOEXEC)
}

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn c_name(name: &[u8]) -> io::Result<CString> {
    CString::new(name).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "the path contains a NUL byte"))
}

fn openat(dir: RawFd, name: &CString, flags: libc::c_int) -> io::Result<OwnedFd> {
    // SAFETY: a NUL-terminated name; `dir` is a live fd or AT_FDCWD; the mode argument is read
    // only with O_CREAT.
    let fd = cvt(unsafe { libc::openat(dir, name.as_ptr(), flags | libc::O_CLOEXEC, CREATE_MODE as libc::c_uint) })?;
    // SAFETY: a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn fstat(fd: &OwnedFd) -> io::Result<libc::stat> {
    // SAFETY: an all-zero stat is a valid buffer for fstat to fill in.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: a live fd and a valid out-pointer.
    cvt(unsafe { libc::fstat(fd.as_raw_fd(), &mut st) })?;
    Ok(st)
}

fn on_procfs(dir: &OwnedFd) -> bool {
    // SAFETY: an all-zero statfs is a valid buffer for fstatfs to fill in.
    let mut sf: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: a live fd and a valid out-pointer.
    let r = unsafe { libc::fstatfs(dir.as_raw_fd(), &mut sf) };
    #[allow(clippy::unnecessary_cast)]
    let kind = sf.f_type as i64;
    r == 0 && kind == PROC_SUPER_MAGIC
}

/// The target of the link `link` (an `O_PATH|O_NOFOLLOW` fd of the link itself, so the owner
/// checked and the target read are those of one and the same link; macOS: `freadlink` on the
/// `O_SYMLINK` fd, the same guarantee).
fn read_link(link: &OwnedFd) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; libc::PATH_MAX as usize + 1];
    // SAFETY: a live fd, an empty NUL-terminated path (meaning the fd itself) and a buffer of
    // `buf.len()` bytes.
    #[cfg(target_os = "linux")]
    let n = unsafe {
        libc::readlinkat(
            link.as_raw_fd(),
            c"".as_ptr(),
            buf.as_mut_ptr().cast::<libc::c_char>(),
            buf.len(),
        )
    };
    #[cfg(not(target_os = "linux"))]
    let n = {
        extern "C" {
            // macOS 13+: readlink on an fd opened with O_SYMLINK.
            fn freadlink(fd: libc::c_int, buf: *mut libc::c_char, size: libc::size_t) -> libc::ssize_t;
        }
        // SAFETY: a live fd and a buffer of `buf.len()` bytes.
        unsafe { freadlink(link.as_raw_fd(), buf.as_mut_ptr().cast::<libc::c_char>(), buf.len()) }
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let n = n as usize;
    if n >= buf.len() {
        return Err(io::Error::from_raw_os_error(libc::ENAMETOOLONG));
    }
    buf.truncate(n);
    Ok(buf)
}

/// What following a link found.
enum Link {
    /// A link in `/proc`: the kernel resolves it (a magic link names an open file, not a path).
    Kernel,
    /// An ordinary link: its target's components were queued.
    Queued,
}

/// The state of one walk: the directory reached so far, the components still to go, and the
/// same path as text for messages.
struct Walk {
    me: u32,
    dir: OwnedFd,
    shown: PathBuf,
    todo: VecDeque<OsString>,
    links: usize,
}

impl Walk {
    fn new(path: &Path, me: u32) -> io::Result<Walk> {
        if path.as_os_str().is_empty() {
            return Err(io::Error::from_raw_os_error(libc::ENOENT));
        }
        let (dir, shown) = Self::start(path.is_absolute())?;
        let mut w = Walk {
            me,
            dir,
            shown,
            todo: VecDeque::new(),
            links: 0,
        };
        w.push_front(path.as_os_str().as_bytes());
        if path.as_os_str().as_bytes().ends_with(b"/") || w.todo.is_empty() {
            // "name/" must be a directory, and "/" or "." is one: the last open (of ".") fails
            // with EISDIR or ENOTDIR as it would without this walk.
            w.todo.push_back(OsString::from("."));
        }
        Ok(w)
    }

    fn start(absolute: bool) -> io::Result<(OwnedFd, PathBuf)> {
        let (name, shown) = if absolute { ("/", "/") } else { (".", "") };
        let dir = openat(libc::AT_FDCWD, &c_name(name.as_bytes())?, O_PATH | libc::O_DIRECTORY)?;
        Ok((dir, PathBuf::from(shown)))
    }

    /// Puts the components of `path` before what is still to walk ("." dropped: it changes
    /// nothing).
    fn push_front(&mut self, path: &[u8]) {
        for part in path.rsplit(|b| *b == b'/').filter(|p| !p.is_empty() && *p != b".") {
            self.todo.push_front(OsString::from_vec(part.to_vec()));
        }
    }

    fn run(mut self, flags: libc::c_int) -> io::Result<Opened> {
        while let Some(part) = self.todo.pop_front() {
            let name = c_name(part.as_bytes())?;
            let last = self.todo.is_empty();
            if part == OsStr::new(".") {
                // Only ever last: the directory reached is what the path names.
                return self.open_last(name, flags);
            }
            if part == OsStr::new("..") {
                self.step_into(&name, O_PATH | libc::O_DIRECTORY)?;
                self.shown.pop();
                if last {
                    return self.open_last(c_name(b".")?, flags);
                }
                continue;
            }
            let node = match openat(self.dir.as_raw_fd(), &name, AS_ITSELF) {
                Ok(fd) => fd,
                Err(e) if last && e.kind() == io::ErrorKind::NotFound => return self.open_last(name, flags),
                Err(e) => return Err(e),
            };
            let st = fstat(&node)?;
            if st.st_mode & libc::S_IFMT != libc::S_IFLNK {
                if last {
                    return self.open_last(name, flags);
                }
                // O_NOFOLLOW: a link swapped in since the check above fails (ELOOP) rather
                // than being followed unchecked.
                self.step_into(&name, O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW)?;
                self.shown.push(&part);
                continue;
            }
            match self.follow(&part, &node, st.st_uid)? {
                Link::Queued => {}
                Link::Kernel if last => return self.open_kernel_link(&name, flags),
                Link::Kernel => {
                    self.step_into(&name, O_PATH | libc::O_DIRECTORY)?;
                    self.shown.push(&part);
                }
            }
        }
        unreachable!("a walk ends at its last component, which returns")
    }

    /// Checks the owner of the link `part` (`node`, owned by `owner`), counts the hop and
    /// queues the link's target, unless the kernel is to resolve it.
    fn follow(&mut self, part: &OsStr, node: &OwnedFd, owner: u32) -> io::Result<Link> {
        if owner != self.me && owner != 0 {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                ForeignLink {
                    link: self.shown.join(part),
                    owner,
                    me: self.me,
                },
            ));
        }
        self.links += 1;
        if self.links > MAX_LINKS {
            return Err(io::Error::other(format!(
                "more than {MAX_LINKS} symbolic links to follow (at {})",
                self.shown.join(part).display()
            )));
        }
        if on_procfs(&self.dir) {
            return Ok(Link::Kernel);
        }
        let target = read_link(node)?;
        if target.starts_with(b"/") {
            (self.dir, self.shown) = Self::start(true)?;
        }
        let was_last = self.todo.is_empty();
        self.push_front(&target);
        if was_last && (self.todo.is_empty() || target.ends_with(b"/")) {
            // The link was the last component and names a directory ("/", ".", "dir/"): the
            // last open is of that directory.
            self.todo.push_back(OsString::from("."));
        }
        Ok(Link::Queued)
    }

    fn step_into(&mut self, name: &CString, flags: libc::c_int) -> io::Result<()> {
        self.dir = openat(self.dir.as_raw_fd(), name, flags)?;
        Ok(())
    }

    fn open_last(self, name: CString, flags: libc::c_int) -> io::Result<Opened> {
        let fd = openat(self.dir.as_raw_fd(), &name, flags | libc::O_NOFOLLOW)?;
        Ok(Opened {
            file: File::from(fd),
            place: Some((self.dir, name)),
        })
    }

    fn open_kernel_link(self, name: &CString, flags: libc::c_int) -> io::Result<Opened> {
        let fd = openat(self.dir.as_raw_fd(), name, flags & !libc::O_NOFOLLOW)?;
        Ok(Opened {
            file: File::from(fd),
            place: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};

    const APPEND: libc::c_int = libc::O_WRONLY | libc::O_CREAT | libc::O_APPEND;

    fn euid() -> u32 {
        // SAFETY: geteuid cannot fail.
        unsafe { libc::geteuid() }
    }

    /// A fresh directory for one test (removed at the end of it).
    struct Dir(PathBuf);
    impl Dir {
        fn new(tag: &str) -> Dir {
            let d = std::env::temp_dir().join(format!("sockmeter-safe-open-{}-{tag}", std::process::id()));
            let _ = std::fs::remove_dir_all(&d);
            std::fs::create_dir_all(&d).unwrap();
            Dir(d)
        }
        fn join(&self, p: &str) -> PathBuf {
            self.0.join(p)
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// Makes `link` someone else's, as far as a walk trusting the returned uid can tell: as
    /// root, the link is given to uid 4242 (lchown) and root is the walker; as anyone else, the
    /// link stays ours and the walker trusts another uid than ours.
    fn foreign(link: &Path) -> (u32, u32) {
        if euid() == 0 {
            std::os::unix::fs::lchown(link, Some(4242), None).unwrap();
            (4242, 0)
        } else {
            (euid(), euid() + 1)
        }
    }

    fn write(path: &Path, me: u32, text: &str) -> io::Result<()> {
        open_trusting(path, APPEND, me)?.file.write_all(text.as_bytes())
    }

    fn refused(e: io::Error, link: &Path, owner: u32) {
        assert_eq!(e.kind(), io::ErrorKind::PermissionDenied, "{e}");
        let inner = e
            .get_ref()
            .and_then(|i| i.downcast_ref::<ForeignLink>())
            .expect("a ForeignLink");
        assert_eq!((inner.link.as_path(), inner.owner), (link, owner));
        let text = e.to_string();
        assert!(
            text.contains(&link.display().to_string()) && text.contains(&format!("owned by uid {owner}")),
            "{text}"
        );
    }

    #[test]
    fn a_new_file_is_private() {
        let d = Dir::new("mode");
        let p = d.join("r.json");
        write(&p, euid(), "x").unwrap();
        let m = std::fs::metadata(&p).unwrap();
        assert_eq!(m.permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "x");
        write(&p, euid(), "y").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "xy", "appends");
    }

    #[test]
    fn own_links_are_followed_relative_absolute_and_dangling() {
        let d = Dir::new("own");
        std::fs::create_dir(d.join("real")).unwrap();
        std::fs::write(d.join("real/target"), "a").unwrap();
        symlink("real/target", d.join("rel")).unwrap();
        symlink(d.join("rel"), d.join("abs")).unwrap();
        symlink("../real/new", d.join("real/dangling")).unwrap();
        symlink("real", d.join("dirlink")).unwrap();
        write(&d.join("abs"), euid(), "b").unwrap();
        write(&d.join("dirlink/target"), euid(), "c").unwrap();
        assert_eq!(std::fs::read_to_string(d.join("real/target")).unwrap(), "abc");
        write(&d.join("real/dangling"), euid(), "n").unwrap();
        assert_eq!(std::fs::read_to_string(d.join("real/new")).unwrap(), "n");
        assert!(std::fs::symlink_metadata(d.join("abs"))
            .unwrap()
            .file_type()
            .is_symlink());
    }

    #[test]
    fn another_users_link_is_not_followed_and_nothing_is_written() {
        let d = Dir::new("foreign");
        std::fs::write(d.join("victim"), "precious").unwrap();
        let link = d.join("r.json");
        symlink(d.join("victim"), &link).unwrap();
        let (owner, me) = foreign(&link);
        for flags in [APPEND, libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC] {
            refused(open_trusting(&link, flags, me).unwrap_err(), &link, owner);
        }
        assert_eq!(std::fs::read_to_string(d.join("victim")).unwrap(), "precious");

        // Dangling: the target must not be created either.
        let dangling = d.join("d.json");
        symlink(d.join("created"), &dangling).unwrap();
        let (owner, me) = foreign(&dangling);
        refused(write(&dangling, me, "x").unwrap_err(), &dangling, owner);
        assert!(!d.join("created").exists());
    }

    #[test]
    fn every_hop_is_checked_and_directories_too() {
        let d = Dir::new("hops");
        std::fs::create_dir(d.join("real")).unwrap();
        std::fs::write(d.join("real/victim"), "precious").unwrap();
        // mine -> theirs -> victim: refused at the second link, named as reached.
        let theirs = d.join("real/theirs");
        symlink("victim", &theirs).unwrap();
        let (owner, me) = foreign(&theirs);
        symlink("real/theirs", d.join("mine")).unwrap();
        if euid() != 0 {
            // Not root: "mine" is ours too, so the walker that refuses "theirs" refuses it
            // first; the chain is checked as root (CI) below.
            refused(write(&d.join("mine"), me, "x").unwrap_err(), &d.join("mine"), owner);
        } else {
            refused(write(&d.join("mine"), me, "x").unwrap_err(), &theirs, owner);
        }
        // A directory link of someone else's in the middle of the path.
        let dir_link = d.join("shared");
        symlink(d.join("real"), &dir_link).unwrap();
        let (owner, me) = foreign(&dir_link);
        refused(write(&dir_link.join("victim"), me, "x").unwrap_err(), &dir_link, owner);
        assert_eq!(std::fs::read_to_string(d.join("real/victim")).unwrap(), "precious");
    }

    #[test]
    fn links_owned_by_root_are_followed() {
        // For root, every test above follows root's links; the system's /dev/stderr is one
        // whoever runs this. Reopening fd 2 can still be refused by the file's own mode (a
        // file of another user's): then the walk fails exactly as a plain open does.
        assert_eq!(
            std::fs::symlink_metadata("/dev/stderr").unwrap().uid(),
            0,
            "the system's /dev/stderr link belongs to root"
        );
        let plain = File::options().append(true).open("/dev/stderr").map(drop);
        match open(Path::new("/dev/stderr"), libc::O_WRONLY | libc::O_APPEND) {
            Ok(f) => {
                assert!(plain.is_ok());
                assert!(f.place.is_none(), "/dev/stderr ends in a kernel link (/proc/self/fd/2)");
            }
            Err(e) => assert_eq!(Some(e.kind()), plain.err().map(|p| p.kind()), "{e}"),
        }
    }

    #[test]
    fn proc_self_fd_links_reach_the_open_file() {
        let d = Dir::new("procfd");
        let p = d.join("held");
        std::fs::write(&p, "").unwrap();
        let held = File::options().append(true).open(&p).unwrap();
        let via = PathBuf::from(format!("/proc/self/fd/{}", held.as_raw_fd()));
        open(&via, APPEND).unwrap().file.write_all(b"through").unwrap();
        let mut s = String::new();
        File::open(&p).unwrap().read_to_string(&mut s).unwrap();
        assert_eq!(s, "through");
        // /dev/fd -> /proc/self/fd (root's link) then the fd's kernel link.
        let dev_fd = PathBuf::from(format!("/dev/fd/{}", held.as_raw_fd()));
        open(&dev_fd, APPEND).unwrap().file.write_all(b"!").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "through!");
    }

    #[test]
    fn loops_missing_directories_and_directories_are_errors() {
        let d = Dir::new("errors");
        symlink("b", d.join("a")).unwrap();
        symlink("a", d.join("b")).unwrap();
        let e = write(&d.join("a"), euid(), "x").unwrap_err();
        assert!(e.to_string().contains("more than 40 symbolic links"), "{e}");
        let e = write(&d.join("missing/r.json"), euid(), "x").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        assert_eq!(write(&d.0, euid(), "x").unwrap_err().raw_os_error(), Some(libc::EISDIR));
        std::fs::write(d.join("file"), "").unwrap();
        assert_eq!(
            write(&d.join("file/r.json"), euid(), "x").unwrap_err().raw_os_error(),
            Some(libc::ENOTDIR)
        );
        assert!(write(Path::new(""), euid(), "x").is_err());
        assert_eq!(
            write(&d.join("x\0y"), euid(), "x").unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
    }

    #[test]
    fn a_probe_removes_what_it_created() {
        let d = Dir::new("probe");
        symlink("real.json", d.join("link.json")).unwrap();
        let o = open(&d.join("link.json"), libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL).unwrap();
        assert!(d.join("real.json").exists());
        o.remove().unwrap();
        assert!(
            !d.join("real.json").exists(),
            "the file created is removed, not the link"
        );
        assert!(std::fs::symlink_metadata(d.join("link.json")).is_ok());
    }
}
