//! The macOS builds, read back (scripts/build-macos cross-builds them; scripts/test runs it
//! first): for x86_64 and arm64 macOS, the shim dylib's `__DATA,__interpose` section rebinds
//! exactly the functions the hook table declares for that platform and architecture (read from
//! the table itself, `src/hooks/list.rs`, with its `cfg` attributes evaluated for the target;
//! plus `dlopen`, the one hook outside the table), each tuple binding a libSystem function by
//! two-level name, or, for a library's function (`[lib]`: CoreFoundation's), weakly and by flat
//! lookup, which is the only thing left to flat lookup; and the dylib and `sockmeter` need
//! nothing a stock Mac lacks: their load commands name system libraries only, and they run from
//! macOS 11 on.
//!
//! Read with goblin (load commands, segments, the binds of dyld's opcodes). goblin does not say
//! which special ordinal (flat lookup) a bind has, so the test also runs the bind opcodes itself.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use goblin::mach::load_command::CommandVariant;
use goblin::mach::{Mach, MachO};

const TARGETS: [(&str, &str); 2] = [("x86_64-apple-darwin", "x86_64"), ("aarch64-apple-darwin", "aarch64")];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn built(triple: &str, name: &str) -> Vec<u8> {
    let p = root().join("target").join(triple).join("release").join(name);
    std::fs::read(&p).unwrap_or_else(|e| {
        panic!(
            "{}: {e}: build the macOS targets first (scripts/build-macos; scripts/test and .ci/run do)",
            p.display()
        )
    })
}

fn parse(bytes: &[u8]) -> MachO<'_> {
    match Mach::parse(bytes).expect("a Mach-O file") {
        Mach::Binary(m) => m,
        Mach::Fat(_) => panic!("a thin Mach-O file was expected"),
    }
}

// ---- the hook table, read from its source ----

/// Evaluates a `cfg(...)` predicate (`target_os`, `target_arch`, `all`, `any`, `not`) for
/// macOS on `arch`.
fn cfg_holds(pred: &str, arch: &str) -> bool {
    let pred = pred.trim();
    let inner = |p: &str| -> String { p[p.find('(').unwrap() + 1..p.rfind(')').unwrap()].to_string() };
    let split = |s: &str| -> Vec<String> {
        let (mut parts, mut depth, mut cur) = (Vec::new(), 0, String::new());
        for c in s.chars() {
            match c {
                '(' => depth += 1,
                ')' => depth -= 1,
                ',' if depth == 0 => {
                    parts.push(std::mem::take(&mut cur));
                    continue;
                }
                _ => {}
            }
            cur.push(c);
        }
        if !cur.trim().is_empty() {
            parts.push(cur);
        }
        parts
    };
    if pred.starts_with("all(") {
        split(&inner(pred)).iter().all(|p| cfg_holds(p, arch))
    } else if pred.starts_with("any(") {
        split(&inner(pred)).iter().any(|p| cfg_holds(p, arch))
    } else if pred.starts_with("not(") {
        !cfg_holds(&inner(pred), arch)
    } else if let Some((k, v)) = pred.split_once('=') {
        let v = v.trim().trim_matches('"');
        match k.trim() {
            "target_os" => v == "macos",
            "target_arch" => v == arch,
            "target_vendor" => v == "apple",
            "unix" => true,
            other => panic!("cfg key {other} is not understood by this test"),
        }
    } else {
        match pred {
            "unix" => true,
            "windows" => false,
            other => panic!("cfg {other} is not understood by this test"),
        }
    }
}

/// One entry of the table: its C symbol, whether it is a library's (`[lib]`), its `cfg`s, and
/// for a variadic function the number of fixed arguments before `...`.
#[derive(Debug)]
struct Entry {
    symbol: String,
    library: bool,
    cfgs: Vec<String>,
    variadic_after: Option<usize>,
}

/// The entries of `hook_table! { ... }` in `src/hooks/list.rs`.
fn table() -> Vec<Entry> {
    let src = std::fs::read_to_string(root().join("shim/src/hooks/list.rs")).expect("hooks/list.rs");
    let start = src.find("hook_table! {").expect("the table");
    let body = &src[start + "hook_table! {".len()..];
    let mut out = Vec::new();
    let mut cfgs = Vec::new();
    for line in body.lines() {
        let l = line.trim();
        if l == "}" {
            break;
        }
        if let Some(c) = l.strip_prefix("#[cfg(").and_then(|c| c.strip_suffix(")]")) {
            cfgs.push(c.to_string());
            continue;
        }
        let Some(rest) = l.strip_prefix("fn ") else {
            if !(l.is_empty() || l.starts_with("//") || l.starts_with("#[")) {
                panic!("a table line this test does not understand: {l}");
            }
            continue;
        };
        let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
        let after = rest[name.len()..].trim_start();
        let symbol = match after.strip_prefix('=') {
            Some(s) => s
                .trim_start()
                .trim_start_matches('"')
                .split('"')
                .next()
                .unwrap()
                .to_string(),
            None => name.clone(),
        };
        let library = l.contains("[lib]");
        let args = &after[after.find('(').expect("arguments") + 1..];
        let args = &args[..args.find(") ->").expect("end of arguments")];
        let variadic_after = args.find("...").map(|at| args[..at].matches(':').count());
        out.push(Entry {
            symbol,
            library,
            cfgs: std::mem::take(&mut cfgs),
            variadic_after,
        });
    }
    assert!(out.len() > 50, "the table was not read: {out:?}");
    out
}

/// What the table hooks on macOS/`arch`: C symbol -> whether it is a library's.
fn expected(arch: &str) -> BTreeMap<String, bool> {
    let mut m: BTreeMap<String, bool> = table()
        .into_iter()
        .filter(|e| e.cfgs.iter().all(|c| cfg_holds(c, arch)))
        .map(|e| (e.symbol, e.library))
        .collect();
    // The one hook outside the table (hooks/dlopen.rs: a naked tail-jump).
    m.insert("dlopen".into(), false);
    m
}

// ---- the Mach-O files ----

/// `(segment, section)` address range of the named section.
fn section(m: &MachO, name: &str) -> Option<(u64, u64)> {
    for seg in &m.segments {
        for (s, _) in seg.sections().expect("sections") {
            if s.name().ok() == Some(name) {
                return Some((s.addr, s.addr + s.size));
            }
        }
    }
    None
}

/// A bind of dyld's opcodes: where (segment, offset), which symbol, from which library
/// ordinal (negative: a special one, -2 flat lookup), weakly or not.
#[derive(Debug, Clone)]
struct Bind {
    segment: usize,
    offset: u64,
    symbol: String,
    ordinal: i64,
    weak: bool,
}

/// The non-lazy binds (`LC_DYLD_INFO(_ONLY)`'s bind opcodes, as dyld runs them). goblin runs
/// them too but does not say which special ordinal a bind has.
fn binds(m: &MachO, bytes: &[u8]) -> Vec<Bind> {
    let (off, size) = m
        .load_commands
        .iter()
        .find_map(|lc| match lc.command {
            CommandVariant::DyldInfo(d) | CommandVariant::DyldInfoOnly(d) => {
                Some((d.bind_off as usize, d.bind_size as usize))
            }
            _ => None,
        })
        .expect("LC_DYLD_INFO (the linker writes no chained fixups for these targets)");
    let ops = &bytes[off..off + size];
    let mut i = 0;
    let uleb = |i: &mut usize| -> u64 {
        let (mut v, mut shift) = (0u64, 0);
        loop {
            let b = ops[*i];
            *i += 1;
            v |= u64::from(b & 0x7f) << shift;
            shift += 7;
            if b & 0x80 == 0 {
                return v;
            }
        }
    };
    let mut cur = Bind {
        segment: 0,
        offset: 0,
        symbol: String::new(),
        ordinal: 0,
        weak: false,
    };
    let mut out = Vec::new();
    while i < ops.len() {
        let (op, imm) = (ops[i] & 0xf0, ops[i] & 0x0f);
        i += 1;
        match op {
            0x00 => {}
            0x10 => cur.ordinal = i64::from(imm),
            0x20 => cur.ordinal = uleb(&mut i) as i64,
            0x30 => cur.ordinal = if imm == 0 { 0 } else { i64::from(imm as i8 | -16i8) },
            0x40 => {
                let end = i + ops[i..].iter().position(|&b| b == 0).expect("symbol name");
                cur.symbol = String::from_utf8_lossy(&ops[i..end]).into_owned();
                cur.weak = imm & 1 != 0;
                i = end + 1;
            }
            0x50 => {}
            0x60 => {
                let _ = uleb(&mut i);
            }
            0x70 => {
                cur.segment = usize::from(imm);
                cur.offset = uleb(&mut i);
            }
            0x80 => cur.offset = cur.offset.wrapping_add(uleb(&mut i)),
            0x90 => {
                out.push(cur.clone());
                cur.offset += 8;
            }
            0xa0 => {
                out.push(cur.clone());
                cur.offset = cur.offset.wrapping_add(uleb(&mut i) + 8);
            }
            0xb0 => {
                out.push(cur.clone());
                cur.offset += u64::from(imm) * 8 + 8;
            }
            0xc0 => {
                let (count, skip) = (uleb(&mut i), uleb(&mut i));
                for _ in 0..count {
                    out.push(cur.clone());
                    cur.offset += skip + 8;
                }
            }
            other => panic!("bind opcode {other:#x} is not read by this test"),
        }
    }
    out
}

/// Every library the file's load commands name.
fn dylibs(m: &MachO) -> Vec<String> {
    m.libs.iter().skip(1).map(|s| s.to_string()).collect()
}

fn min_macos(m: &MachO) -> Option<(u32, u32)> {
    for lc in &m.load_commands {
        if let CommandVariant::BuildVersion(b) = lc.command {
            return Some((b.minos >> 16, (b.minos >> 8) & 0xff));
        }
    }
    None
}

/// A library a stock Mac has: libSystem and the rest of /usr/lib, the system's frameworks.
fn stock(lib: &str) -> bool {
    (lib.starts_with("/usr/lib/") && !lib.starts_with("/usr/lib/swift/")
        || lib.starts_with("/System/Library/Frameworks/"))
        && !lib.contains("/usr/local/")
}

#[test]
fn the_interpose_section_rebinds_every_hooked_function() {
    for (triple, arch) in TARGETS {
        let bytes = built(triple, "libsockmeter_shim.dylib");
        let m = parse(&bytes);
        let (lo, hi) = section(&m, "__interpose").unwrap_or_else(|| panic!("{triple}: no __interpose section"));
        assert_eq!((hi - lo) % 16, 0, "{triple}: tuples of two pointers");
        let imports = m.imports().expect("binds");
        // Binds inside the section: the originals, at the second word of each tuple.
        let mut bound: BTreeMap<String, u64> = BTreeMap::new();
        for i in imports.iter().filter(|i| i.address >= lo && i.address < hi) {
            assert_eq!(
                (i.address - lo) % 16,
                8,
                "{triple}: {} is bound at a replacement's place",
                i.name
            );
            let name = i.name.strip_prefix('_').unwrap_or(i.name).to_string();
            assert!(
                bound.insert(name.clone(), i.address).is_none(),
                "{triple}: {name} interposed twice"
            );
        }
        assert_eq!(
            bound.len() as u64,
            (hi - lo) / 16,
            "{triple}: every tuple binds one original"
        );
        let want = expected(arch);
        let got: BTreeSet<&String> = bound.keys().collect();
        let wanted: BTreeSet<&String> = want.keys().collect();
        assert_eq!(
            got,
            wanted,
            "{triple}: interposed but not in the table: {:?}; in the table but not interposed: {:?}",
            got.difference(&wanted).collect::<Vec<_>>(),
            wanted.difference(&got).collect::<Vec<_>>()
        );
        // The variants and the CoreFoundation hooks are there (a check of this check).
        for s in [
            "recvfrom$NOCANCEL",
            "fcntl$NOCANCEL",
            "CFSocketCreate",
            "CFSocketSendData",
            "send",
            "dlopen",
        ] {
            assert!(bound.contains_key(s), "{triple}: {s}");
        }
        // The replacements: each tuple's first word is the shim's own function (a rebase, never
        // a bind), not null.
        let data_off = m
            .segments
            .iter()
            .find(|s| s.vmaddr <= lo && hi <= s.vmaddr + s.vmsize)
            .map(|s| (s.fileoff + lo - s.vmaddr) as usize)
            .expect("the section's segment");
        for k in 0..((hi - lo) / 16) as usize {
            let w = u64::from_le_bytes(bytes[data_off + 16 * k..data_off + 16 * k + 8].try_into().unwrap());
            assert_ne!(w, 0, "{triple}: tuple {k} has no replacement");
        }
        // How each original is bound (dyld's bind opcodes): libSystem by two-level name, a
        // library's weakly by flat lookup; and nothing else anywhere is left to flat lookup.
        let libsystem = m
            .libs
            .iter()
            .position(|l| *l == "/usr/lib/libSystem.B.dylib")
            .expect("libSystem") as i64;
        let all = binds(&m, &bytes);
        let seg_of = |addr: u64| {
            m.segments
                .iter()
                .position(|s| s.vmaddr <= addr && addr < s.vmaddr + s.vmsize)
        };
        for (sym, library) in &want {
            let at = bound[sym];
            let b = all
                .iter()
                .find(|b| Some(b.segment) == seg_of(at) && m.segments[b.segment].vmaddr + b.offset == at)
                .unwrap_or_else(|| panic!("{triple}: no bind for {sym}"));
            assert_eq!(b.symbol, format!("_{sym}"));
            if *library {
                assert_eq!(
                    (b.ordinal, b.weak),
                    (-2, true),
                    "{triple}: {sym} must be weak, by flat lookup"
                );
            } else {
                assert_eq!(
                    (b.ordinal, b.weak),
                    (libsystem, false),
                    "{triple}: {sym} must come from libSystem"
                );
            }
        }
        let libs: BTreeSet<String> = want.iter().filter(|(_, l)| **l).map(|(s, _)| format!("_{s}")).collect();
        for b in all.iter().filter(|b| b.ordinal < 0) {
            assert!(
                libs.contains(&b.symbol),
                "{triple}: {} is left to flat lookup but is not a library's hook",
                b.symbol
            );
        }
    }
}

/// On arm64 a variadic function's optional argument comes on the stack (Apple's convention),
/// so dyld must bind a trampoline there: `ldr xN, [sp]` (N = the number of fixed arguments: the
/// register the hook reads it from), then `b` to the hook.
#[test]
fn arm64_variadic_hooks_take_their_argument_from_the_stack() {
    let bytes = built("aarch64-apple-darwin", "libsockmeter_shim.dylib");
    let m = parse(&bytes);
    let (lo, hi) = section(&m, "__interpose").expect("__interpose");
    let file_of = |addr: u64| {
        m.segments
            .iter()
            .find(|s| s.vmaddr <= addr && addr < s.vmaddr + s.vmsize)
            .map(|s| (s.fileoff + addr - s.vmaddr) as usize)
            .expect("mapped")
    };
    let variadic: BTreeMap<String, usize> = table()
        .into_iter()
        .filter(|e| e.cfgs.iter().all(|c| cfg_holds(c, "aarch64")))
        .filter_map(|e| e.variadic_after.map(|n| (format!("_{}", e.symbol), n)))
        .collect();
    for f in ["_fcntl", "_fcntl$NOCANCEL", "_open", "_openat"] {
        assert!(variadic.contains_key(f), "{f}: {variadic:?}");
    }
    let mut seen = 0;
    for imp in m
        .imports()
        .expect("binds")
        .iter()
        .filter(|i| i.address >= lo && i.address < hi)
    {
        let Some(&fixed) = variadic.get(imp.name) else { continue };
        // The tuple's first word: the replacement (an unslid address, rebased by dyld).
        let slot = file_of(imp.address - 8);
        let replacement = u64::from_le_bytes(bytes[slot..slot + 8].try_into().unwrap());
        let code = file_of(replacement);
        let word = |k: usize| u32::from_le_bytes(bytes[code + 4 * k..code + 4 * k + 4].try_into().unwrap());
        assert_eq!(word(0), 0xf940_03e0 | fixed as u32, "{}: ldr x{fixed}, [sp]", imp.name);
        assert_eq!(word(1) >> 26, 0b000101, "{}: then b to the hook", imp.name);
        seen += 1;
    }
    assert_eq!(seen, variadic.len(), "every variadic hook was checked");
}

#[test]
fn the_macos_builds_need_nothing_a_stock_mac_lacks() {
    for (triple, _) in TARGETS {
        for name in ["libsockmeter_shim.dylib", "sockmeter"] {
            let bytes = built(triple, name);
            let m = parse(&bytes);
            let libs = dylibs(&m);
            assert!(
                libs.contains(&"/usr/lib/libSystem.B.dylib".to_string()),
                "{triple} {name}: {libs:?}"
            );
            for l in &libs {
                assert!(stock(l), "{triple} {name} needs {l}, which a stock Mac may not have");
            }
            assert!(
                !libs.iter().any(|l| l.contains("CoreFoundation")),
                "{triple} {name}: CoreFoundation must not be loaded for the shim (weak flat imports only)"
            );
            let min = min_macos(&m).unwrap_or_else(|| panic!("{triple} {name}: no LC_BUILD_VERSION"));
            assert!(min <= (11, 0), "{triple} {name} needs macOS {min:?}");
        }
    }
}

#[test]
fn the_table_reader_evaluates_cfgs() {
    assert!(cfg_holds("target_os = \"macos\"", "x86_64"));
    assert!(!cfg_holds("target_os = \"linux\"", "x86_64"));
    assert!(cfg_holds(
        "all(target_os = \"macos\", target_arch = \"aarch64\")",
        "aarch64"
    ));
    assert!(!cfg_holds(
        "all(target_os = \"macos\", target_arch = \"aarch64\")",
        "x86_64"
    ));
    assert!(cfg_holds("any(target_os = \"linux\", target_os = \"macos\")", "x86_64"));
    assert!(cfg_holds("not(target_os = \"linux\")", "x86_64"));
    let t = table();
    let fcntl = t.iter().find(|e| e.symbol == "fcntl$NOCANCEL").expect("the variant");
    assert_eq!(fcntl.cfgs, vec!["target_os = \"macos\"".to_string()]);
    assert!(t
        .iter()
        .find(|e| e.symbol == "CFSocketCreate")
        .is_some_and(|e| e.library));
    assert!(!expected("x86_64").contains_key("accept4"), "Linux's");
}
