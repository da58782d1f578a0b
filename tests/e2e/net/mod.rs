//! Network end-to-end tests: curl, python3 clients and servers, forks, an exec, a shell
//! pipeline, Unix-domain sockets and the report-file mode, each run under the shim against an
//! oracle peer from tests/peers/ that is not metered. Every byte count asserted here is
//! compared with what the other end really received and sent (the peer's verdict), and where
//! natural with what the metered program itself knows it did.

pub(super) use std::process::{Command, Stdio};

pub(super) use serde_json::Value;
pub(super) use sockmeter::report::{ProcessReport, SocketReport};

pub(super) use crate::harness::{
    self, direct, fresh_dir, python, read_report, run, scratch_path, Peer, Run, WithoutSockmeterEnv,
};

mod clients;
mod misc;
mod processes;

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// A script in tests/peers/.
pub(super) fn script(name: &str) -> String {
    harness::root()
        .join("tests/peers")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

/// The JSON lines a metered program printed on stdout (its own account).
pub(super) fn own_lines(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .filter(|l| l.trim_start().starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("program printed {l:?}: {e}")))
        .collect()
}

/// The single JSON line of a metered program.
pub(super) fn own(r: &Run) -> Value {
    let v = own_lines(&r.stdout);
    assert_eq!(
        v.len(),
        1,
        "expected one JSON line from the program, got:\n{}\nstderr:\n{}",
        r.stdout,
        r.stderr
    );
    v.into_iter().next().unwrap()
}

/// The number `key` of a peer's verdict or a program's JSON line.
pub(super) fn n(v: &Value, key: &str) -> u64 {
    v.get(key)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("no number {key:?} in {v}"))
}

/// The string `key` of a peer's verdict or a program's JSON line.
pub(super) fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no string {key:?} in {v}"))
}

/// What a peer (or one of its connection records) received and sent, `(rx, tx)`: the
/// `(tx, rx)` of the metered side that talked to it.
pub(super) fn mirror(v: &Value) -> (u64, u64) {
    (n(v, "rx"), n(v, "tx"))
}

/// How many bytes of letter `c` the peer counted (0 when none).
pub(super) fn letter(by_byte: &Value, c: char) -> u64 {
    by_byte.get(c.to_string()).and_then(Value::as_u64).unwrap_or(0)
}

/// Every image of process `pid` in the report.
pub(super) fn images(r: &Run, pid: u64) -> Vec<&ProcessReport> {
    r.report.processes.iter().filter(|p| u64::from(p.pid) == pid).collect()
}

/// The one image of process `pid`.
pub(super) fn image(r: &Run, pid: u64) -> &ProcessReport {
    let v = images(r, pid);
    assert_eq!(
        v.len(),
        1,
        "expected one process image with pid {pid}, got {}:\n{}",
        v.len(),
        r.stderr
    );
    v[0]
}

/// An inet or inet6 socket.
pub(super) fn is_inet(s: &SocketReport) -> bool {
    s.family().is_inet()
}

/// The inet sockets of a process that are connections (connected or accepted).
pub(super) fn inet_connections(p: &ProcessReport) -> Vec<&SocketReport> {
    p.sockets.iter().filter(|s| is_inet(s) && s.is_connection()).collect()
}

/// The peer's per-connection record whose client address is `addr`.
pub(super) fn conn_by_peer<'a>(verdict: &'a Value, addr: &str) -> &'a Value {
    verdict["per_conn"]
        .as_array()
        .expect("per_conn")
        .iter()
        .find(|c| c["peer"] == addr)
        .unwrap_or_else(|| panic!("the peer saw no connection from {addr}: {verdict}"))
}

/// Socket and process sums must agree, and the run totals must be the sum of the processes.
pub(super) fn assert_totals_consistent(r: &Run) {
    let (mut tx, mut rx, mut conns) = (0, 0, 0);
    for p in &r.report.processes {
        tx += p.totals.tx_bytes;
        rx += p.totals.rx_bytes;
        conns += p.totals.connections;
    }
    assert_eq!(
        (
            r.report.totals.tx_bytes,
            r.report.totals.rx_bytes,
            r.report.totals.connections
        ),
        (tx, rx, conns),
        "run totals are not the sum of the processes"
    );
}

/// The run's (tx, rx) totals, and the process's `p` when given, are what the peer's verdict `v`
/// says it received and sent ([`mirror`]), and the run totals are the sum of the processes.
pub(super) fn assert_mirrors_peer(r: &Run, p: Option<&ProcessReport>, v: &Value) {
    if let Some(p) = p {
        assert_eq!(
            (p.totals.tx_bytes, p.totals.rx_bytes),
            mirror(v),
            "process {} (tx, rx) = what the peer received and sent: {v}",
            p.pid
        );
    }
    assert_eq!(
        harness::totals(r),
        mirror(v),
        "the run's (tx, rx) = what the peer received and sent: {v}"
    );
    assert_totals_consistent(r);
}

/// The command succeeded: exit code 0, in the report too.
pub(super) fn assert_ok(r: &Run) {
    assert_eq!(
        r.code, 0,
        "command failed\nstdout:\n{}\nstderr:\n{}",
        r.stdout, r.stderr
    );
    assert_eq!(r.report.exit_status, Some(0));
}

/// The peer did not time out, saw `conns` connections, and none of them failed.
pub(super) fn assert_peer_complete(v: &Value, conns: u64) {
    assert_eq!(v["timed_out"], false, "peer timed out: {v}");
    assert_eq!(n(v, "connections"), conns, "peer connections: {v}");
    for c in v["per_conn"].as_array().expect("per_conn") {
        assert!(c.get("error").is_none(), "peer connection failed: {v}");
    }
}
