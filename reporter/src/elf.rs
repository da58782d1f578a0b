//! Preflight: can the shim be preloaded into this command at all?
//!
//! `LD_PRELOAD` is honoured by the dynamic loader, so it does nothing for a statically linked
//! program (no `PT_INTERP` program header), for a program of another ELF class or machine than
//! the shim, and for a setuid, setgid or file-capability program run by someone else (the
//! loader's secure-execution mode ignores it). [`preflight`] finds the file that will really
//! be executed (PATH lookup, `#!` interpreters, `#!/usr/bin/env NAME`), reads its ELF header
//! and program headers by hand, and returns what to tell the user. The command still runs.

use std::ffi::{CString, OsStr};
use std::fs::File;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

use sockmeter::preload::{self, ElfInfo, Shebang};

/// The extended attribute that holds file capabilities (NUL-terminated for libc).
const CAP_XATTR: &[u8] = b"security.capability\0";
/// How many `#!` interpreters deep the kernel follows (it allows a few; we stop there too).
const MAX_SCRIPT_DEPTH: usize = 5;

/// Reads an ELF header and program headers (`sockmeter::preload::parse_elf`); `None` when it
/// is not ELF (or is cut short).
pub fn parse_elf(f: &File) -> Option<ElfInfo> {
    preload::parse_elf(&mut |off, buf| read_at_most(f, off, buf))
}

fn read_at_most(f: &File, mut off: u64, buf: &mut [u8]) -> usize {
    let mut n = 0;
    while n < buf.len() {
        match f.read_at(&mut buf[n..], off) {
            Ok(0) => break,
            Ok(k) => {
                n += k;
                off += k as u64;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    n
}

/// Finds a command like `execvp` does: a name with a `/` as is (made absolute, as the shim's
/// exec check names it), others in `PATH`.
pub fn resolve_command(cmd: &OsStr, path_env: Option<&OsStr>) -> Option<PathBuf> {
    if cmd.is_empty() {
        return None;
    }
    if cmd.as_bytes().contains(&b'/') {
        let p = Path::new(cmd);
        if p.is_relative() {
            let rel = p.strip_prefix("./").unwrap_or(p);
            return Some(
                std::env::current_dir()
                    .map(|d| d.join(rel))
                    .unwrap_or_else(|_| p.to_path_buf()),
            );
        }
        return Some(PathBuf::from(cmd));
    }
    let path = path_env.unwrap_or(OsStr::new("/usr/local/bin:/usr/bin:/bin"));
    std::env::split_paths(path)
        .map(|d| d.join(cmd))
        .find(|p| is_executable_file(p))
}

fn is_executable_file(p: &Path) -> bool {
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.mode() & 0o111 != 0)
}

/// The interpreter a `#!` line names (following `/usr/bin/env NAME` through `PATH`).
fn shebang_target(head: &[u8], path_env: Option<&OsStr>) -> Option<PathBuf> {
    match preload::shebang(head)? {
        Shebang::Path(p) => Some(PathBuf::from(OsStr::from_bytes(p))),
        Shebang::Env(name) => resolve_command(OsStr::from_bytes(name), path_env),
    }
}

fn has_file_caps(p: &Path) -> bool {
    let Ok(c) = CString::new(p.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: both strings are NUL-terminated and live across the call; a null buffer of
    // size 0 asks only for the attribute's size.
    #[cfg(target_os = "linux")]
    let r = unsafe { libc::getxattr(c.as_ptr(), CAP_XATTR.as_ptr().cast(), std::ptr::null_mut(), 0) };
    // (macOS has no file capabilities.)
    #[cfg(not(target_os = "linux"))]
    let r = {
        let _ = (c, CAP_XATTR);
        -1
    };
    r >= 0
}

fn mounted_nosuid(p: &Path) -> bool {
    let Ok(c) = CString::new(p.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: an all-zero statvfs is valid to be filled in.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is NUL-terminated and `st` is a valid out-pointer.
    let r = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    r == 0 && st.f_flag & libc::ST_NOSUID != 0
}

fn machine_name(bits: u8, machine: u16) -> String {
    let m = match machine {
        3 => "x86",
        62 => "x86-64",
        40 => "ARM",
        183 => "AArch64",
        243 => "RISC-V",
        8 => "MIPS",
        20 | 21 => "PowerPC",
        22 => "S/390",
        _ => return format!("{bits}-bit (machine {machine})"),
    };
    format!("{bits}-bit {m}")
}

/// What to tell the user before running `cmd` with `shim` preloaded (empty when all is well
/// or when the command cannot be found: starting it will say so).
pub fn preflight(cmd: &OsStr, path_env: Option<&OsStr>, shim: &Path) -> Vec<String> {
    let Some(mut target) = resolve_command(cmd, path_env) else {
        return Vec::new();
    };
    let mut script: Option<PathBuf> = None;
    for _ in 0..MAX_SCRIPT_DEPTH {
        let Ok(f) = File::open(&target) else {
            return Vec::new();
        };
        let mut head = [0u8; 256];
        let n = read_at_most(&f, 0, &mut head);
        if head[..n].starts_with(b"#!") {
            let Some(next) = shebang_target(&head[..n], path_env) else {
                return Vec::new();
            };
            script.get_or_insert(target);
            target = next;
            continue;
        }
        let name = match &script {
            Some(s) => format!("{} (the interpreter of {})", target.display(), s.display()),
            None => target.display().to_string(),
        };
        let Some(elf) = parse_elf(&f) else {
            // Not ELF: a Mach-O program on macOS (DYLD_INSERT_LIBRARIES has limits of its own).
            return crate::macho::preflight(&name, &target);
        };
        return check(&name, &target, elf, shim);
    }
    Vec::new()
}

/// A sentence written by one of `sockmeter::preload`'s writers (the shim's exec check writes
/// the same one for a descendant, so the two are said once).
fn sentence(w: impl FnOnce(&mut Vec<u8>) -> std::io::Result<()>) -> String {
    let mut v = Vec::new();
    let _ = w(&mut v);
    String::from_utf8_lossy(&v).into_owned()
}

fn check(name: &str, target: &Path, elf: ElfInfo, shim: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let cannot = "the shim cannot be preloaded, its traffic will not be counted";
    if !elf.has_interp {
        out.push(sentence(|v| preload::write_static(v, name.as_bytes())));
    } else if let Some(s) = File::open(shim).ok().and_then(|f| parse_elf(&f)) {
        if (s.bits, s.machine) != (elf.bits, elf.machine) {
            let (p, sh) = (machine_name(elf.bits, elf.machine), machine_name(s.bits, s.machine));
            out.push(format!("{name} is a {p} program and the shim is {sh}: {cannot}"));
        }
    }
    if let Ok(m) = std::fs::metadata(target) {
        // SAFETY: geteuid and getegid cannot fail and have no preconditions.
        let (euid, egid) = unsafe { (libc::geteuid(), libc::getegid()) };
        if let Some(why) = preload::privilege(m.mode(), m.uid(), m.gid(), has_file_caps(target), euid, egid) {
            if !mounted_nosuid(target) {
                out.push(sentence(|v| preload::write_privileged(v, name.as_bytes(), why)));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::private_dir::PrivateDir;
    use std::os::unix::fs::PermissionsExt;
    use std::process::Command;

    /// Builds a static program with `cc -static`, or says loudly why it cannot.
    /// A static program (`cc -static` needs libc6-dev's libc.a, which .ci/run installs).
    fn static_binary(dir: &Path) -> PathBuf {
        let src = dir.join("s.c");
        std::fs::write(&src, "int main(void) { return 0; }\n").unwrap();
        let out = dir.join("static-prog");
        let o = Command::new("cc").arg("-static").arg("-o").arg(&out).arg(&src).output();
        assert!(
            o.as_ref().is_ok_and(|o| o.status.success()),
            "`cc -static` failed ({o:?}): install gcc and libc6-dev"
        );
        out
    }

    #[test]
    fn bin_true_is_dynamic_and_fine() {
        let f = File::open("/bin/true").unwrap();
        let info = parse_elf(&f).expect("/bin/true is ELF");
        assert!(info.has_interp);
        assert_eq!(info.bits as usize, 8 * std::mem::size_of::<usize>());
        assert!(preflight(
            OsStr::new("true"),
            Some(OsStr::new("/usr/bin:/bin")),
            Path::new("/bin/true")
        )
        .is_empty());
    }

    #[test]
    fn a_static_program_is_named_plainly() {
        let d = PrivateDir::new().unwrap();
        let prog = static_binary(d.path());
        assert!(!parse_elf(&File::open(&prog).unwrap()).unwrap().has_interp);
        let w = preflight(prog.as_os_str(), None, Path::new("/bin/true"));
        assert_eq!(
            w,
            vec![format!(
                "{} is statically linked: the shim cannot be preloaded, its traffic will not be counted",
                prog.display()
            )]
        );

        // Through a script and through `#!/usr/bin/env NAME` found in PATH.
        let script = d.path().join("script");
        std::fs::write(&script, format!("#!{} -x\necho hi\n", prog.display())).unwrap();
        let w = preflight(script.as_os_str(), None, Path::new("/bin/true"));
        assert_eq!(w.len(), 1);
        assert!(
            w[0].contains(&format!("(the interpreter of {})", script.display())),
            "{w:?}"
        );
        std::fs::write(&script, "#!/usr/bin/env -S static-prog --flag\n").unwrap();
        let w = preflight(script.as_os_str(), Some(d.path().as_os_str()), Path::new("/bin/true"));
        assert!(w.len() == 1 && w[0].contains("statically linked"), "{w:?}");
    }

    #[test]
    fn a_script_run_by_a_dynamic_shell_is_fine() {
        let d = PrivateDir::new().unwrap();
        let script = d.path().join("ok.sh");
        std::fs::write(&script, "#!/bin/sh\nexit 0\n").unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(preflight(OsStr::new("ok.sh"), Some(d.path().as_os_str()), Path::new("/bin/true")).is_empty());
    }

    #[test]
    fn unknown_or_unreadable_commands_say_nothing() {
        assert!(preflight(
            OsStr::new("no-such-command-xyz"),
            Some(OsStr::new("/usr/bin")),
            Path::new("/bin/true")
        )
        .is_empty());
        assert!(preflight(OsStr::new("/nonexistent/x"), None, Path::new("/bin/true")).is_empty());
        assert!(preflight(OsStr::new(""), None, Path::new("/bin/true")).is_empty());
        let d = PrivateDir::new().unwrap();
        for (name, bytes) in [("script", &b"#!/bin/sh\n"[..]), ("cut", &b"\x7fELF"[..])] {
            std::fs::write(d.path().join(name), bytes).unwrap();
            assert_eq!(parse_elf(&File::open(d.path().join(name)).unwrap()), None, "{name}");
        }
    }

    fn elf32(machine: u16, interp: bool) -> Vec<u8> {
        let mut h = vec![0u8; 52 + 32];
        h[..4].copy_from_slice(b"\x7fELF");
        h[4] = 1;
        h[5] = 1;
        h[0x12..0x14].copy_from_slice(&machine.to_le_bytes());
        h[0x1c..0x20].copy_from_slice(&52u32.to_le_bytes());
        h[0x2a..0x2c].copy_from_slice(&32u16.to_le_bytes());
        h[0x2c..0x2e].copy_from_slice(&1u16.to_le_bytes());
        h[52..56].copy_from_slice(&(if interp { 3u32 } else { 1 }).to_le_bytes());
        h
    }

    #[test]
    fn a_32_bit_program_and_a_64_bit_shim_do_not_mix() {
        let d = PrivateDir::new().unwrap();
        let file = |bytes: Vec<u8>| {
            let p = d.path().join("elf");
            std::fs::write(&p, bytes).unwrap();
            File::open(p).unwrap()
        };
        let info = parse_elf(&file(elf32(3, true))).unwrap();
        assert_eq!(
            info,
            ElfInfo {
                bits: 32,
                machine: 3,
                has_interp: true
            }
        );
        assert!(!parse_elf(&file(elf32(3, false))).unwrap().has_interp);
        let prog = d.path().join("prog32");
        std::fs::write(&prog, elf32(3, true)).unwrap();
        let w = preflight(prog.as_os_str(), None, Path::new("/bin/true"));
        let host = parse_elf(&File::open("/bin/true").unwrap()).unwrap();
        if (host.bits, host.machine) != (32, 3) {
            assert_eq!(w.len(), 1, "{w:?}");
            assert!(w[0].contains("is a 32-bit x86 program and the shim is"), "{w:?}");
        }
    }
}
