//! A memory checker over a C host that calls every hook (`tests/c/hookcalls.c`): Memcheck
//! (valgrind) runs it under `sockmeter run` with the shim preloaded, in both shipping modes.
//! No error may be reported: no invalid read or write, no use of uninitialised memory, no
//! bad system call argument of the shim's own. The one suppression file
//! (`tests/c/hookcalls.supp`) covers only the invalid addresses hookcalls passes on purpose
//! to check EFAULT, each pinned to the shim's wrapper passing them through untouched. Leaks
//! are not checked (`--leak-check=no`): what a process holds until it exits is not an error,
//! and memory that grows with traffic is what the soak test measures. The counts stay exact.
//!
//! What Memcheck cannot see here: a read past the end of an address buffer the kernel filled
//! only in part (accept with a buffer smaller than the address): valgrind's own model of those
//! calls marks the full reported length as written. hookcalls' addresses are checked for that
//! instead ([`check_addresses`]).

use std::process::Command;

use super::hookcalls::{check_addresses, check_ledger};
use super::*;

/// Memcheck's own remark about the bogus fcntl command hookcalls makes on purpose (it fails
/// with EINVAL as without valgrind): a note, not an error report.
const FCNTL_NOTE: &str = "Warning: unimplemented fcntl command: 99999";

fn valgrind() -> &'static str {
    let ok = Command::new("valgrind")
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        ok,
        "valgrind is needed by the memory-checker test (.ci/run installs it)"
    );
    "valgrind"
}

/// The lines that report a failure: the same under valgrind as without it. (Under valgrind the
/// fd numbers a success returns differ: valgrind puts its log file on the lowest free number
/// after a close sweep.)
fn failures(stdout: &str) -> Vec<&str> {
    stdout.lines().filter(|l| l.contains(" ret=-1 ")).collect()
}

fn memcheck(mode: Mode) {
    let vg = valgrind();
    let bin = prog("hookcalls", &[]);
    let supp = harness::root().join("tests/c/hookcalls.supp");
    let logs = fresh_dir("memcheck-logs");
    let plain = unmetered(&[&bin, &path_str(&fresh_dir("memcheck-plain"))]);
    let r = metered_in(
        mode,
        &[
            vg,
            "-q",
            "--leak-check=no",
            &format!("--suppressions={}", path_str(&supp)),
            &format!("--log-file={}/vg.%p", path_str(&logs)),
            &bin,
            &path_str(&fresh_dir("memcheck")),
        ],
        &[],
    );
    let mut reported = Vec::new();
    for entry in std::fs::read_dir(&logs).expect("logs") {
        let path = entry.expect("log").path();
        let text = std::fs::read_to_string(&path).expect("read log");
        reported.extend(
            text.lines()
                .filter(|l| !l.ends_with(FCNTL_NOTE))
                .map(|l| format!("{}: {l}", path.display())),
        );
    }
    assert!(
        reported.is_empty(),
        "Memcheck reported errors ({mode:?}):\n{}",
        reported.join("\n")
    );
    assert_same_lines(&failures(&plain), &failures(&r.stdout), &r);
    assert_eq!(
        r.stdout.lines().last(),
        Some("final"),
        "the run reached its end{}",
        ctx(&r)
    );
    check_ledger(&r);
    check_addresses(&r);
}

both_modes! {
    /// Memcheck finds nothing wrong in a host calling every hook every way, and the counts
    /// are exact.
    fn memcheck_finds_no_error_over_every_hook_and_counts_stay_exact(mode) {
        memcheck(mode);
    }
}
