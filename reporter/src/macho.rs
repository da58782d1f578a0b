//! Preflight on macOS: can `DYLD_INSERT_LIBRARIES` reach the command at all?
//!
//! dyld removes the `DYLD_*` variables from a *restricted* process, and the programs it starts
//! never see them either:
//!
//! * a program protected by System Integrity Protection: Apple's own, in `/System`, `/usr`
//!   (but not `/usr/local`), `/bin` and `/sbin` (a shell script run with `/bin/sh` is one);
//! * a setuid or setgid program;
//! * a program signed with the hardened runtime (the code directory's `runtime` flag) without
//!   the `com.apple.security.cs.allow-dyld-environment-variables` entitlement, or one marked
//!   `restrict` (the code directory's flag, or a `__RESTRICT` segment).
//!
//! [`preflight`] reads the program's Mach-O (a universal binary's slices too) with goblin, finds
//! its code signature (`LC_CODE_SIGNATURE`), and reads from the signature's blobs the code
//! directory's flags and the entitlements ([`signature`]: the small, fixed layout of Apple's
//! `cs_blobs.h`; a crate that parses signatures whole, apple-codesign, brings in 392 crates for
//! signing and verifying, which the reporter does not do). The command still runs.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use goblin::mach::load_command::CommandVariant;
use goblin::mach::{Mach, MachO, SingleArch};

/// The entitlement that lets `DYLD_*` variables through the hardened runtime.
pub const ALLOW_DYLD_ENV: &str = "com.apple.security.cs.allow-dyld-environment-variables";

/// `CS_RUNTIME`: the hardened runtime.
const CS_RUNTIME: u32 = 0x0001_0000;
/// `CS_RESTRICT`: restricted (no `DYLD_*`).
const CS_RESTRICT: u32 = 0x0000_0800;

const CSMAGIC_EMBEDDED_SIGNATURE: u32 = 0xfade_0cc0;
const CSMAGIC_CODEDIRECTORY: u32 = 0xfade_0c02;
const CSMAGIC_EMBEDDED_ENTITLEMENTS: u32 = 0xfade_7171;
const CSMAGIC_EMBEDDED_DER_ENTITLEMENTS: u32 = 0xfade_7172;

/// What a code signature says about `DYLD_*` variables.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Signature {
    /// Signed with the hardened runtime.
    pub runtime: bool,
    /// Marked restricted.
    pub restrict: bool,
    /// Entitled to `DYLD_*` variables under the hardened runtime.
    pub allows_dyld_env: bool,
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at.checked_add(4)?)?.try_into().ok()?))
}

/// Reads a code signature (an embedded-signature super blob): the code directory's flags and
/// the entitlements (XML or DER). `None` when it is not one.
pub fn signature(blob: &[u8]) -> Option<Signature> {
    if be32(blob, 0)? != CSMAGIC_EMBEDDED_SIGNATURE {
        return None;
    }
    let count = be32(blob, 8)? as usize;
    let mut sig = Signature::default();
    for i in 0..count.min(64) {
        let offset = be32(blob, 12 + 8 * i + 4)? as usize;
        let Some(magic) = be32(blob, offset) else { continue };
        let len = (be32(blob, offset + 4).unwrap_or(0) as usize).min(blob.len().saturating_sub(offset));
        let body = &blob[offset..offset + len];
        match magic {
            // `CS_CodeDirectory`: magic, length, version, flags, ... (every code directory of a
            // signature carries the same flags; the primary one is enough, the others agree).
            CSMAGIC_CODEDIRECTORY => {
                let flags = be32(body, 12).unwrap_or(0);
                sig.runtime |= flags & CS_RUNTIME != 0;
                sig.restrict |= flags & CS_RESTRICT != 0;
            }
            CSMAGIC_EMBEDDED_ENTITLEMENTS => sig.allows_dyld_env |= xml_allows(&body[8.min(body.len())..]),
            CSMAGIC_EMBEDDED_DER_ENTITLEMENTS => sig.allows_dyld_env |= der_allows(&body[8.min(body.len())..]),
            _ => {}
        }
    }
    Some(sig)
}

/// `<key>ALLOW_DYLD_ENV</key>` followed by `<true/>` in an XML property list.
fn xml_allows(xml: &[u8]) -> bool {
    let key = format!("<key>{ALLOW_DYLD_ENV}</key>");
    let Some(at) = find(xml, key.as_bytes()) else {
        return false;
    };
    let rest = &xml[at + key.len()..];
    let start = rest.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(rest.len());
    rest[start..].starts_with(b"<true/>")
}

/// The key as a DER UTF8String followed by BOOLEAN TRUE (`01 01 ff`), as Apple encodes
/// entitlements (a SEQUENCE of key and value).
fn der_allows(der: &[u8]) -> bool {
    let Some(at) = find(der, ALLOW_DYLD_ENV.as_bytes()) else {
        return false;
    };
    der[at + ALLOW_DYLD_ENV.len()..].starts_with(&[0x01, 0x01, 0xff])
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// What the Mach-O program `bytes` says: its code signature, and whether it has a `__RESTRICT`
/// segment. A universal binary's slices are all looked at (any one restricted warns). `None`
/// when it is not Mach-O.
pub fn inspect(bytes: &[u8]) -> Option<Signature> {
    let one = |m: &MachO, data: &[u8]| -> Signature {
        let mut sig = Signature::default();
        for lc in &m.load_commands {
            if let CommandVariant::CodeSignature(cs) = lc.command {
                let (off, size) = (cs.dataoff as usize, cs.datasize as usize);
                if let Some(s) = data.get(off..off.saturating_add(size)).and_then(signature) {
                    sig = s;
                }
            }
        }
        sig.restrict |= m.segments.iter().any(|s| s.name().is_ok_and(|n| n == "__RESTRICT"));
        sig
    };
    match Mach::parse(bytes).ok()? {
        Mach::Binary(m) => Some(one(&m, bytes)),
        Mach::Fat(fat) => {
            let mut all = Signature::default();
            for (i, arch) in fat.iter_arches().enumerate() {
                let Ok(arch) = arch else { continue };
                let Some(data) =
                    bytes.get(arch.offset as usize..(arch.offset as usize).saturating_add(arch.size as usize))
                else {
                    continue;
                };
                if let Ok(SingleArch::MachO(m)) = fat.get(i) {
                    let s = one(&m, data);
                    all.runtime |= s.runtime;
                    all.restrict |= s.restrict;
                    all.allows_dyld_env |= s.allows_dyld_env;
                }
            }
            Some(all)
        }
    }
}

/// Whether `path` is under the directories System Integrity Protection guards.
pub fn sip_protected(path: &Path) -> bool {
    let p = path.as_os_str().as_encoded_bytes();
    [&b"/System/"[..], b"/usr/", b"/bin/", b"/sbin/"]
        .iter()
        .any(|d| p.starts_with(d))
        && !p.starts_with(b"/usr/local/")
}

/// What to tell the user before running `target` (shown as `name`), a Mach-O program (or not
/// Mach-O at all: then nothing). The command still runs.
pub fn preflight(name: &str, target: &Path) -> Vec<String> {
    let Ok(bytes) = std::fs::read(target) else {
        return Vec::new();
    };
    let Some(sig) = inspect(&bytes) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let unmetered = "macOS removes DYLD_INSERT_LIBRARIES from its environment (and from the programs it starts), so its traffic will not be counted";
    let real = target.canonicalize().unwrap_or_else(|_| target.to_path_buf());
    if sip_protected(&real) {
        out.push(format!(
            "{name} is protected by System Integrity Protection: {unmetered}; run a copy of it from elsewhere, or the program it starts directly"
        ));
    } else if sig.restrict {
        out.push(format!(
            "{name} is marked restricted in its code signature: {unmetered}"
        ));
    } else if sig.runtime && !sig.allows_dyld_env {
        out.push(format!(
            "{name} is signed with the hardened runtime without the {ALLOW_DYLD_ENV} entitlement: {unmetered}"
        ));
    }
    if let Ok(meta) = std::fs::metadata(&real) {
        // (mode_t is 16 bits on macOS, 32 on Linux.)
        #[allow(clippy::useless_conversion)]
        let set_id = u32::from(libc::S_ISUID | libc::S_ISGID);
        if meta.mode() & set_id != 0 {
            out.push(format!("{name} is setuid or setgid: {unmetered}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An embedded signature with a code directory of `flags` and, if given, an entitlements
    /// blob (`magic`, `body`).
    fn blob(flags: u32, ents: Option<(u32, &[u8])>) -> Vec<u8> {
        let mut cd = Vec::new();
        for w in [CSMAGIC_CODEDIRECTORY, 44, 0x20400, flags, 0, 0, 0, 0, 0, 0, 0] {
            cd.extend_from_slice(&w.to_be_bytes());
        }
        let mut blobs = vec![(0u32, cd)];
        if let Some((magic, body)) = ents {
            let mut e = Vec::new();
            e.extend_from_slice(&magic.to_be_bytes());
            e.extend_from_slice(&(8 + body.len() as u32).to_be_bytes());
            e.extend_from_slice(body);
            blobs.push((5, e));
        }
        let header = 12 + 8 * blobs.len();
        let mut out = Vec::new();
        out.extend_from_slice(&CSMAGIC_EMBEDDED_SIGNATURE.to_be_bytes());
        let total: usize = header + blobs.iter().map(|b| b.1.len()).sum::<usize>();
        out.extend_from_slice(&(total as u32).to_be_bytes());
        out.extend_from_slice(&(blobs.len() as u32).to_be_bytes());
        let mut at = header;
        for (ty, b) in &blobs {
            out.extend_from_slice(&ty.to_be_bytes());
            out.extend_from_slice(&(at as u32).to_be_bytes());
            at += b.len();
        }
        for (_, b) in blobs {
            out.extend_from_slice(&b);
        }
        out
    }

    /// A minimal 64-bit arm64 Mach-O executable whose only load command is its code signature.
    fn macho(sig: &[u8]) -> Vec<u8> {
        let mut m = Vec::new();
        for w in [0xfeed_facf_u32, 0x0100_000c, 0, 2, 1, 16, 0, 0] {
            m.extend_from_slice(&w.to_le_bytes());
        }
        let dataoff = 32 + 16;
        for w in [0x1d_u32, 16, dataoff, sig.len() as u32] {
            m.extend_from_slice(&w.to_le_bytes());
        }
        m.extend_from_slice(sig);
        m
    }

    #[test]
    fn hardened_runtime_and_its_entitlement() {
        let xml = format!("<plist><dict><key>{ALLOW_DYLD_ENV}</key>\n\t<true/></dict></plist>");
        let cases = [
            (
                blob(CS_RUNTIME, None),
                Signature {
                    runtime: true,
                    ..Default::default()
                },
            ),
            (
                blob(CS_RUNTIME, Some((CSMAGIC_EMBEDDED_ENTITLEMENTS, xml.as_bytes()))),
                Signature {
                    runtime: true,
                    allows_dyld_env: true,
                    ..Default::default()
                },
            ),
            (blob(0x2_0002, None), Signature::default()),
            (
                blob(CS_RESTRICT, None),
                Signature {
                    restrict: true,
                    ..Default::default()
                },
            ),
        ];
        for (b, want) in cases {
            assert_eq!(signature(&b), Some(want));
            assert_eq!(inspect(&macho(&b)), Some(want), "through the Mach-O");
        }
        let mut der = vec![0x30, 0x40, 0x0c, ALLOW_DYLD_ENV.len() as u8];
        der.extend_from_slice(ALLOW_DYLD_ENV.as_bytes());
        der.extend_from_slice(&[0x01, 0x01, 0xff]);
        assert!(
            signature(&blob(CS_RUNTIME, Some((CSMAGIC_EMBEDDED_DER_ENTITLEMENTS, &der))))
                .unwrap()
                .allows_dyld_env
        );
        let no = format!("<key>{ALLOW_DYLD_ENV}</key><false/>");
        assert!(
            !signature(&blob(CS_RUNTIME, Some((CSMAGIC_EMBEDDED_ENTITLEMENTS, no.as_bytes()))))
                .unwrap()
                .allows_dyld_env
        );
        assert_eq!(inspect(b"\x7fELF not mach-o at all"), None);
        assert_eq!(signature(b"short"), None);
    }

    #[test]
    fn sip_directories() {
        for p in ["/bin/sh", "/usr/bin/curl", "/System/Library/x", "/sbin/ping"] {
            assert!(sip_protected(Path::new(p)), "{p}");
        }
        for p in [
            "/usr/local/bin/curl",
            "/opt/homebrew/bin/curl",
            "/Users/me/app",
            "/Applications/App.app/x",
        ] {
            assert!(!sip_protected(Path::new(p)), "{p}");
        }
    }
}
