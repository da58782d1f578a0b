//! The torture suite: real programs (C programs from `tests/c`, compiled here) doing the
//! awkward things real programs do -- 64 threads at once, fork storms, vfork and exec chains,
//! signals interrupting every blocking call, fd numbers juggled and reused behind the shim's
//! back, every hook's failure modes, a memory checker, a soak -- under `sockmeter run`, in both
//! shipping modes where both apply ([`both_modes!`]).
//!
//! Two oracles, never the shim's own output: the unmetered peer (`tests/c/peer.c` or a Python
//! peer) says what really crossed each connection, and an unmetered run of the same program
//! says what its calls must return (results and errno, compared line by line).

pub(crate) use crate::cprogs::{
    assert_mirror, assert_sum_mirror, by_local, ctx, fields, get, num, only_process, path_str, prog, Oracle, Seen,
};
pub(crate) use crate::harness::{self, both_modes, direct, fresh_dir, Mode, Run};
pub(crate) use sockmeter::report::{ProcessReport, SocketReport};
pub(crate) use std::collections::HashMap;

mod eintr;
mod fdgames;
mod hookcalls;
mod memcheck;
mod soak;
mod storms;
mod threads;

/// Runs `cmd` without the shim (no `LD_PRELOAD`, no `SOCKMETER_*`), checks that it succeeded
/// and returns its stdout.
pub(crate) fn unmetered(cmd: &[&str]) -> String {
    let out = direct(cmd, &[]);
    assert!(
        out.status.success(),
        "{cmd:?} failed without the shim ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// Runs `cmd` under `sockmeter run` in `mode` and checks that it succeeded.
pub(crate) fn metered_in(mode: Mode, cmd: &[&str], env: &[(&str, &str)]) -> Run {
    let r = harness::run_in(mode, &[], cmd, env);
    assert_eq!(r.code, 0, "{cmd:?} failed under sockmeter ({mode:?}){}", ctx(&r));
    r
}

/// The lines of `text` that start with `prefix`.
pub(crate) fn lines_with<'a>(text: &'a str, prefix: &str) -> Vec<&'a str> {
    text.lines().filter(|l| l.starts_with(prefix)).collect()
}

/// The metered run printed exactly the result lines (those starting with `prefix`) the
/// unmetered run printed, in the same order.
pub(crate) fn assert_same_results(plain: &str, r: &Run, prefix: &str) {
    let want = lines_with(plain, prefix);
    assert!(
        !want.is_empty(),
        "the unmetered run printed no {prefix:?} lines:\n{plain}"
    );
    assert_same_lines(&want, &lines_with(&r.stdout, prefix), r);
}

/// `got` (the metered run's lines) equals `want` (the unmetered run's), line by line; a
/// failure names the first line that differs.
pub(crate) fn assert_same_lines(want: &[&str], got: &[&str], r: &Run) {
    for (i, (w, g)) in want.iter().zip(got).enumerate() {
        assert_eq!(g, w, "line {i} differs under the shim (unmetered: {w:?}){}", ctx(r));
    }
    assert_eq!(got.len(), want.len(), "number of result lines{}", ctx(r));
}

/// One "sock NAME fd N port P tx T" line of a test program: a connection it made and the bytes
/// it sent on it by its own count.
#[derive(Clone, Debug)]
pub(crate) struct OwnSock {
    pub(crate) name: String,
    pub(crate) port: u16,
    pub(crate) tx: u64,
}

/// Every "sock ..." line of `stdout`.
pub(crate) fn own_socks(stdout: &str) -> Vec<OwnSock> {
    lines_with(stdout, "sock ")
        .into_iter()
        .map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            assert!(
                w.len() == 8 && w[2] == "fd" && w[4] == "port" && w[6] == "tx",
                "bad line {l:?}"
            );
            OwnSock {
                name: w[1].to_string(),
                port: num(w[5]) as u16,
                tx: num(w[7]),
            }
        })
        .collect()
}

/// The peer's connections by client port.
pub(crate) fn by_port(seen: Vec<Seen>) -> HashMap<u16, Seen> {
    let n = seen.len();
    let m: HashMap<u16, Seen> = seen.into_iter().map(|s| (s.port, s)).collect();
    assert_eq!(m.len(), n, "the peer saw two connections from one port");
    m
}
