//! Whether `LD_PRELOAD` can reach a program at all, decided from its file alone.
//!
//! The dynamic loader honours `LD_PRELOAD`, so nothing is preloaded into a statically linked
//! program (no `PT_INTERP` program header) or into one of another ELF class or machine, and the
//! loader's secure-execution mode ignores it for a setuid, setgid or file-capability program
//! run by someone else. The reporter checks the command before it starts it
//! (`reporter/src/elf.rs`); the shim checks every program a metered process execs (its exec
//! hooks), so the same sentence names a descendant too. Both use this module, which only
//! parses bytes and never allocates (the shim may check in a `vfork` child): callers read the
//! file their own way.

use std::io::Write;

const PT_INTERP: u32 = 3;

/// What the ELF header says about a program.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ElfInfo {
    /// 32 or 64.
    pub bits: u8,
    /// `e_machine`.
    pub machine: u16,
    /// Whether it has a `PT_INTERP` (is run by the dynamic loader).
    pub has_interp: bool,
}

/// Reads an ELF header and program headers through `read_at(offset, buf)`, which fills `buf`
/// from the file at `offset` and returns how many bytes it read (0 at the end or on an error).
/// `None` when it is not ELF (or is cut short).
pub fn parse_elf(read_at: &mut dyn FnMut(u64, &mut [u8]) -> usize) -> Option<ElfInfo> {
    let mut h = [0u8; 64];
    let n = read_at(0, &mut h);
    if n < 52 || h[..4] != *b"\x7fELF" {
        return None;
    }
    let be = match h[5] {
        1 => false,
        2 => true,
        _ => return None,
    };
    let u16_at = |b: &[u8], o: usize| {
        let a = [b[o], b[o + 1]];
        if be {
            u16::from_be_bytes(a)
        } else {
            u16::from_le_bytes(a)
        }
    };
    let u32_at = |b: &[u8], o: usize| {
        let a = [b[o], b[o + 1], b[o + 2], b[o + 3]];
        if be {
            u32::from_be_bytes(a)
        } else {
            u32::from_le_bytes(a)
        }
    };
    let (bits, phoff, phentsize, phnum) = match h[4] {
        1 => (32, u64::from(u32_at(&h, 0x1c)), u16_at(&h, 0x2a), u16_at(&h, 0x2c)),
        2 if n >= 64 => {
            let lo = u64::from(u32_at(&h, 0x20));
            let hi = u64::from(u32_at(&h, 0x24));
            let off = if be { (lo << 32) | hi } else { (hi << 32) | lo };
            (64, off, u16_at(&h, 0x36), u16_at(&h, 0x38))
        }
        _ => return None,
    };
    let machine = u16_at(&h, 0x12);
    let mut has_interp = false;
    let size = usize::from(phentsize);
    if (4..=1024).contains(&size) {
        // Program headers a bufferful at a time, on the stack.
        let mut buf = [0u8; 1024];
        let per = buf.len() / size;
        let mut i = 0usize;
        while i < usize::from(phnum) && !has_interp {
            let count = per.min(usize::from(phnum) - i);
            let want = count * size;
            let got = read_at(phoff + (i * size) as u64, &mut buf[..want]);
            has_interp = buf[..got.min(want)]
                .chunks_exact(size)
                .any(|p| u32_at(p, 0) == PT_INTERP);
            if got < want {
                break;
            }
            i += count;
        }
    }
    Some(ElfInfo {
        bits,
        machine,
        has_interp,
    })
}

/// The interpreter a `#!` line names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shebang<'a> {
    /// A path (`#!/bin/sh`).
    Path(&'a [u8]),
    /// `#!/usr/bin/env NAME`: NAME, to be found in `PATH`.
    Env(&'a [u8]),
}

/// The interpreter of a script that starts with `head` (`None` when it is not a `#!` script).
pub fn shebang(head: &[u8]) -> Option<Shebang<'_>> {
    let line = head.strip_prefix(b"#!")?;
    let line = &line[..line.iter().position(|&b| b == b'\n').unwrap_or(line.len())];
    let mut words = line
        .split(|b| *b == b' ' || *b == b'\t' || *b == b'\r')
        .filter(|w| !w.is_empty());
    let interp = words.next()?;
    if interp.rsplit(|b| *b == b'/').next() == Some(b"env") {
        let name = words.find(|w| !w.starts_with(b"-") && !w.contains(&b'='))?;
        return Some(Shebang::Env(name));
    }
    Some(Shebang::Path(interp))
}

/// Whether the loader runs a program with this mode, owner and group (and file capabilities,
/// or not) in secure-execution mode for a process with effective ids `euid`/`egid`, and why.
pub fn privilege(mode: u32, uid: u32, gid: u32, has_caps: bool, euid: u32, egid: u32) -> Option<&'static str> {
    if mode & 0o4000 != 0 && uid != euid {
        Some("setuid")
    } else if mode & 0o2010 == 0o2010 && gid != egid {
        Some("setgid")
    } else if has_caps && euid != 0 {
        Some("given file capabilities")
    } else {
        None
    }
}

/// The notice kind of [`write_static`] (on the wire and in the run's notes file).
pub const STATIC: &str = "static";
/// The notice kind of [`write_privileged`].
pub const PRIVILEGED: &str = "privileged";

/// Writes `name` for a sentence: control characters (a newline in a file name) become `?`.
pub fn write_name(w: &mut impl Write, name: &[u8]) -> std::io::Result<()> {
    for chunk in name.split_inclusive(|b| *b < 0x20 || *b == 0x7f) {
        match chunk.split_last() {
            Some((last, rest)) if *last < 0x20 || *last == 0x7f => {
                w.write_all(rest)?;
                w.write_all(b"?")?;
            }
            _ => w.write_all(chunk)?,
        }
    }
    Ok(())
}

/// `NAME is statically linked: the shim cannot be preloaded, its traffic will not be counted`.
pub fn write_static(w: &mut impl Write, name: &[u8]) -> std::io::Result<()> {
    write_name(w, name)?;
    w.write_all(b" is statically linked: the shim cannot be preloaded, its traffic will not be counted")
}

/// `NAME is setuid: the dynamic loader ignores LD_PRELOAD for it, its traffic will not be
/// counted` (`why` from [`privilege`]).
pub fn write_privileged(w: &mut impl Write, name: &[u8], why: &str) -> std::io::Result<()> {
    write_name(w, name)?;
    write!(
        w,
        " is {why}: the dynamic loader ignores LD_PRELOAD for it, its traffic will not be counted"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(bytes: &[u8]) -> impl FnMut(u64, &mut [u8]) -> usize + '_ {
        move |off, buf| {
            let off = (off as usize).min(bytes.len());
            let n = buf.len().min(bytes.len() - off);
            buf[..n].copy_from_slice(&bytes[off..off + n]);
            n
        }
    }

    fn elf64(phnum: u16, interp_at: Option<u16>) -> Vec<u8> {
        let mut h = vec![0u8; 64 + 56 * usize::from(phnum)];
        h[..4].copy_from_slice(b"\x7fELF");
        h[4] = 2;
        h[5] = 1;
        h[0x12..0x14].copy_from_slice(&62u16.to_le_bytes());
        h[0x20..0x28].copy_from_slice(&64u64.to_le_bytes());
        h[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
        h[0x38..0x3a].copy_from_slice(&phnum.to_le_bytes());
        for i in 0..phnum {
            let t: u32 = if Some(i) == interp_at { PT_INTERP } else { 1 };
            let o = 64 + 56 * usize::from(i);
            h[o..o + 4].copy_from_slice(&t.to_le_bytes());
        }
        h
    }

    #[test]
    fn program_headers_are_read_in_pieces_on_the_stack() {
        for (n, at) in [(1, Some(0)), (40, Some(39)), (40, None), (13, Some(6))] {
            let f = elf64(n, at);
            let info = parse_elf(&mut reader(&f)).unwrap();
            assert_eq!(
                (info.bits, info.machine, info.has_interp),
                (64, 62, at.is_some()),
                "{n} {at:?}"
            );
        }
        let f = elf64(40, Some(39));
        assert!(
            !parse_elf(&mut reader(&f[..64 + 56 * 30])).unwrap().has_interp,
            "cut short"
        );
        assert_eq!(parse_elf(&mut reader(b"#!/bin/sh\n")), None);
        assert_eq!(parse_elf(&mut reader(b"\x7fELF")), None);
    }

    #[test]
    fn shebang_lines() {
        assert_eq!(shebang(b"#!/bin/sh -e\necho"), Some(Shebang::Path(b"/bin/sh")));
        assert_eq!(
            shebang(b"#! /usr/bin/python3\n"),
            Some(Shebang::Path(b"/usr/bin/python3"))
        );
        assert_eq!(
            shebang(b"#!/usr/bin/env -S A=1 python3 -u\n"),
            Some(Shebang::Env(b"python3"))
        );
        assert_eq!(shebang(b"#!/usr/bin/env\n"), None);
        assert_eq!(shebang(b"\x7fELF"), None);
        assert_eq!(shebang(b"#!"), None);
    }

    #[test]
    fn sentences_without_allocating_and_without_control_characters() {
        let mut buf = [0u8; 256];
        let mut c = std::io::Cursor::new(&mut buf[..]);
        write_static(&mut c, b"/tmp/a\nb").unwrap();
        let n = c.position() as usize;
        assert_eq!(
            std::str::from_utf8(&buf[..n]).unwrap(),
            "/tmp/a?b is statically linked: the shim cannot be preloaded, its traffic will not be counted"
        );
        let mut v = Vec::new();
        write_privileged(&mut v, b"/usr/bin/ping", "given file capabilities").unwrap();
        assert_eq!(
            String::from_utf8(v).unwrap(),
            "/usr/bin/ping is given file capabilities: the dynamic loader ignores LD_PRELOAD for it, its traffic will not be counted"
        );
        let mut tiny = [0u8; 8];
        assert!(
            write_static(&mut std::io::Cursor::new(&mut tiny[..]), b"/x").is_err(),
            "too long is an error, not a panic"
        );
    }

    #[test]
    fn privilege_rules() {
        assert_eq!(privilege(0o4755, 0, 0, false, 1000, 1000), Some("setuid"));
        assert_eq!(
            privilege(0o4755, 1000, 0, false, 1000, 1000),
            None,
            "own setuid program"
        );
        assert_eq!(privilege(0o2755, 0, 50, false, 1000, 1000), Some("setgid"));
        assert_eq!(
            privilege(0o2745, 0, 50, false, 1000, 1000),
            None,
            "setgid without group x is locking"
        );
        assert_eq!(
            privilege(0o755, 0, 0, true, 1000, 1000),
            Some("given file capabilities")
        );
        assert_eq!(privilege(0o755, 0, 0, true, 0, 0), None, "root gains nothing");
        assert_eq!(privilege(0o755, 0, 0, false, 1000, 1000), None);
    }
}
