//! The shim's layers call one way (`src/lib.rs`): capi and hooks, then modules, loads,
//! runtime, platform, and the guard beneath all. This test reads the sources and fails on a
//! reference from a lower layer to a higher one (`crate::hooks` from `runtime/`, say), and on
//! handler families of `hooks/` that reach each other in a cycle (the table, `hooks/list.rs`,
//! `hooks/mod.rs` and the table's machinery, `hooks/table.rs`, are not families). Comments are not code: a doc link
//! upward is allowed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Each top-level module's rank: a file may name modules of its own rank or lower.
const RANKS: &[(&str, u8)] = &[
    ("capi", 6),
    ("hooks", 6),
    ("modules", 5),
    ("loads", 4),
    ("runtime", 3),
    ("platform", 2),
    ("guard", 1),
];

fn rank(module: &str) -> Option<u8> {
    RANKS.iter().find(|(m, _)| *m == module).map(|(_, r)| *r)
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `dir`.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files(&p));
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// The code of a file without its comments (line comments, doc comments).
fn code(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| match l.find("//") {
            // A `//` inside a string literal ("http://") is rare in this crate; a line whose
            // code part holds a quote before the `//` is kept whole.
            Some(i) if !l[..i].contains('"') => &l[..i],
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The top-level modules a piece of code names through `crate::` / `$crate::` (also in
/// grouped imports: `crate::{guard, platform}`), and the identifiers it names through a
/// given prefix (`super::x`, `crate::hooks::x`).
fn named_after(code: &str, prefix: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = code;
    while let Some(i) = rest.find(prefix) {
        let before = rest[..i].chars().last();
        rest = &rest[i + prefix.len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') && prefix != "$crate::" {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let name: String = item
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    out.insert(name);
                }
            }
            continue;
        }
        let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
        if !name.is_empty() {
            out.insert(name);
        }
    }
    out
}

/// The top-level module a source file belongs to (`runtime/sink.rs` -> `runtime`).
fn module_of(path: &Path) -> String {
    let rel = path.strip_prefix(src()).unwrap();
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy()
        .into_owned();
    first.trim_end_matches(".rs").to_string()
}

#[test]
fn lower_layers_never_name_higher_ones() {
    let mut wrong = Vec::new();
    for f in files(&src()) {
        let m = module_of(&f);
        let Some(own) = rank(&m) else { continue };
        let c = code(&f);
        let mut named = named_after(&c, "crate::");
        named.extend(named_after(&c, "$crate::"));
        for n in named {
            if rank(&n).is_some_and(|r| r > own) {
                wrong.push(format!("{} names crate::{n}", f.strip_prefix(src()).unwrap().display()));
            }
        }
    }
    assert!(wrong.is_empty(), "upward references:\n{}", wrong.join("\n"));
}

#[test]
fn hook_families_form_no_cycle() {
    let dir = src().join("hooks");
    let fams: Vec<String> = files(&dir)
        .iter()
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .filter(|n| n != "mod" && n != "table" && n != "list")
        .collect();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in &fams {
        let c = code(&dir.join(format!("{f}.rs")));
        let mut named = named_after(&c, "super::");
        named.extend(named_after(&c, "crate::hooks::"));
        let to: BTreeSet<String> = named.into_iter().filter(|n| n != f && fams.contains(n)).collect();
        edges.insert(f.clone(), to);
    }
    // Depth-first search for a back edge.
    fn visit(
        n: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        match state.get(n) {
            Some(1) => {
                let start = path.iter().position(|p| p == n).unwrap();
                let mut cycle = path[start..].to_vec();
                cycle.push(n.to_string());
                return Some(cycle);
            }
            Some(2) => return None,
            _ => {}
        }
        state.insert(n.to_string(), 1);
        path.push(n.to_string());
        for m in edges.get(n).into_iter().flatten() {
            if let Some(c) = visit(m, edges, state, path) {
                return Some(c);
            }
        }
        path.pop();
        state.insert(n.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for f in &fams {
        if let Some(cycle) = visit(f, &edges, &mut state, &mut Vec::new()) {
            panic!("hook families in a cycle: {}", cycle.join(" -> "));
        }
    }
    // The check itself sees the references it is meant to see.
    assert!(edges["io"].contains("sockets"), "{edges:?}");
    assert!(edges["syscalls"].contains("lifecycle"), "{edges:?}");
}

#[test]
fn the_checker_sees_references_in_every_form() {
    let c = "use crate::{guard, platform};\nlet x = crate::hooks::io::f();\n$crate::runtime::g();";
    let named = named_after(c, "crate::");
    assert!(named.contains("guard") && named.contains("platform") && named.contains("hooks"));
    assert!(named_after(c, "$crate::").contains("runtime"));
    assert!(named_after("use super::{io, lifecycle};", "super::").contains("lifecycle"));
}
