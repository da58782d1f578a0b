//! Signals interrupting blocking socket calls (`tests/c/eintr.c` against
//! `tests/peers/eintr_peer.py`): a SIGALRM every 500 us while connect, recv/read/readv/recvmsg,
//! send/write and accept block, with SA_RESTART off (each first call fails with EINTR, a send
//! returns a partial count) and on (the kernel restarts them). The program's results are the
//! unmetered run's, line by line, and the counts are exact against the peer.

use serde_json::Value;

use super::*;
use crate::harness::Peer;

/// Runs eintr under `mode` (None: unmetered) against a fresh peer: its stdout, the peer's
/// verdict, and the run when metered.
fn eintr_run(mode: Option<Mode>, restart: bool) -> (String, Value, Option<Run>) {
    let bin = prog("eintr", &[]);
    let dir = fresh_dir("eintr");
    let peer = Peer::start("eintr_peer.py", &[&path_str(&dir)]);
    let cmd = [
        bin.as_str(),
        &peer.port.to_string(),
        &path_str(&dir),
        if restart { "1" } else { "0" },
    ];
    match mode {
        None => {
            let out = unmetered(&cmd);
            (out, peer.finish(), None)
        }
        Some(m) => {
            let r = metered_in(m, &cmd, &[]);
            (r.stdout.clone(), peer.finish(), Some(r))
        }
    }
}

/// Which thread ran the handler: checked on its own
/// ([`the_hosts_signal_handlers_run_on_its_own_threads`]).
const HANDLER_LINE: &str = "handler on another thread ";

/// The lines that are the same in every run (the others name ports), but the handler's thread.
fn results(stdout: &str) -> Vec<&str> {
    stdout
        .lines()
        .filter(|l| !l.starts_with("sock main ") && !l.starts_with("accepted from ") && !l.starts_with(HANDLER_LINE))
        .collect()
}

fn n(v: &Value, path: &[&str]) -> u64 {
    path.iter()
        .fold(v, |v, k| &v[*k])
        .as_u64()
        .unwrap_or_else(|| panic!("no number at {path:?} in {v}"))
}

fn eintr(mode: Mode, restart: bool) {
    let (plain, _, _) = eintr_run(None, restart);
    let (out, verdict, r) = eintr_run(Some(mode), restart);
    let r = r.expect("metered run");
    let (want, got) = (results(&plain), results(&out));
    assert_eq!(got, want, "results differ under the shim{}", ctx(&r));
    if !restart {
        assert!(
            want.contains(&"connect first ret=-1 errno=EINTR") && want.contains(&"accept first ret=-1 errno=EINTR"),
            "the scenario must interrupt connect and accept:\n{plain}"
        );
    }

    let p = only_process(&r);
    let port = get(&fields(&out, "sock main "), "port") as u16;
    let main = by_local(&r, p, port);
    let seen = Seen {
        port,
        rx: n(&verdict, &["main", "rx"]),
        tx: n(&verdict, &["main", "tx"]),
    };
    assert_eq!(
        format!("127.0.0.1:{port}"),
        verdict["main"]["client"].as_str().expect("client"),
        "the peer's view of the connection"
    );
    assert_mirror(&r, main, &seen);
    // Connected even when connect() itself returned EINTR (the kernel went on connecting).
    assert_eq!(main.role, "connected", "{}", ctx(&r));
    assert!(main.peer.is_some(), "the connection's peer is known{}", ctx(&r));
    let dial_local = verdict["dial"]["local"].as_str().expect("dial local");
    let acc: Vec<&SocketReport> = p
        .sockets
        .iter()
        .filter(|s| s.peer.as_deref() == Some(dial_local))
        .collect();
    assert_eq!(acc.len(), 1, "the accepted connection{}", ctx(&r));
    assert_eq!(
        (acc[0].tx_bytes, acc[0].rx_bytes, acc[0].errors, acc[0].role.as_str()),
        (0, n(&verdict, &["dial", "tx"]), 0, "accepted"),
        "{}",
        ctx(&r)
    );
    assert_eq!(
        (p.totals.tx_bytes, p.totals.rx_bytes, p.totals.errors),
        (seen.rx, seen.tx + n(&verdict, &["dial", "tx"]), 0),
        "process totals (EINTR is not an error){}",
        ctx(&r)
    );
}

both_modes! {
    /// Without SA_RESTART: connect, recv and accept fail with EINTR as they do unmetered, a
    /// blocked send returns its partial count, and every byte is counted.
    fn eintr_without_sa_restart_is_what_libc_says_and_counts_are_exact(mode) {
        eintr(mode, false);
    }

    /// With SA_RESTART: the same calls are restarted by the kernel as they are unmetered.
    fn eintr_with_sa_restart_is_what_libc_says_and_counts_are_exact(mode) {
        eintr(mode, true);
    }
}

/// A process-directed signal (here SIGALRM from setitimer) runs the host's handler on one of
/// the host's own threads, as it does without the shim: eintr has one thread, and its handler
/// notes any tick handled elsewhere.
fn handler_thread(mode: Mode) {
    let (plain, _, _) = eintr_run(None, true);
    assert!(plain.contains(&format!("{HANDLER_LINE}0")), "unmetered:\n{plain}");
    let (out, _, r) = eintr_run(Some(mode), true);
    let r = r.expect("metered run");
    assert!(
        out.contains(&format!("{HANDLER_LINE}0")),
        "the host's SIGALRM handler ran on a thread the host does not have{}",
        ctx(&r)
    );
}

both_modes! {
    /// [`handler_thread`]: the host's handlers run on its own threads, never on the shim's.
    fn the_hosts_signal_handlers_run_on_its_own_threads(mode) {
        handler_thread(mode);
    }
}
