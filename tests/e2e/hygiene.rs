//! The host never notices the shim's machinery: under `sockmeter run` the metered process gains
//! no thread (the shipper is a separate process), the shipper holds none of the host's fds (a
//! socket the host closes really closes, while the host still runs), and the exact counts
//! arrive all the same.

use crate::harness::{self, compile_c, python, run, scratch_path, Sink};

/// A metered C client (its socket made without SOCK_CLOEXEC) connects, sends 5000 bytes,
/// closes, and then waits (bounded) for the unmetered peer to report, through a file, that it
/// saw EOF. If any other process held a copy of the socket, the peer would see no EOF while the
/// client lives, and the client would exit 1.
#[test]
fn a_closed_socket_is_closed_while_the_host_still_runs_and_the_host_has_one_thread() {
    let flag = scratch_path("eof");
    let flag2 = flag.clone();
    let peer = Sink::start_then(move |got| std::fs::write(&flag2, got.to_string()).expect("flag"));
    let port = peer.port;
    let prog = compile_c("holdclose", &[]);
    let r = run(
        &[],
        &[
            &prog.display().to_string(),
            &port.to_string(),
            &flag.display().to_string(),
        ],
    );
    let received = peer.received();
    assert_eq!(r.code, 0, "the peer saw no EOF while the host was alive:\n{}", r.stderr);
    assert_eq!(received, 5000);
    assert_eq!(
        r.stdout.trim(),
        "threads 1",
        "the metered process has no thread but its own"
    );
    assert_eq!(r.report.processes.len(), 1, "only the client is metered:\n{}", r.stderr);
    let p = r.proc("holdclose");
    assert_eq!(p.totals.tx_bytes, 5000, "exact, as the peer saw it");
    assert_eq!(p.totals.rx_bytes, 0, "the peer sent nothing");
    assert_eq!(harness::totals(&r), (5000, 0), "the run's totals are the client's");
}

/// A metered process killed by SIGKILL right after its last send loses nothing: its counters
/// live in memory its shipper still maps, and the shipper ships them once the process is gone.
#[test]
fn a_process_killed_by_sigkill_still_reports_every_byte() {
    let peer = Sink::start();
    let port = peer.port;
    // 3 sends inside one interval (1 s), then SIGKILL: no exit handler can run.
    let script = format!(
        "import os, signal, socket\n\
         c = socket.create_connection(('127.0.0.1', {port}))\n\
         for n in (1000, 2000, 777):\n    c.sendall(b'k' * n)\n\
         os.kill(os.getpid(), signal.SIGKILL)\n"
    );
    let r = run(&[], &[python(), "-c", &script]);
    let received = peer.received();
    assert_eq!(r.code, 137, "killed by SIGKILL (128+9):\n{}", r.stderr);
    assert_eq!(received, 3777);
    assert_eq!(r.report.exit_status, Some(137), "the report's exit status");
    assert_eq!(
        r.report.processes.len(),
        1,
        "one process, the killed interpreter:\n{}",
        r.stderr
    );
    let p = &r.report.processes[0];
    assert_eq!(
        (p.totals.tx_bytes, p.totals.rx_bytes, p.totals.connections),
        (3777, 0, 1),
        "every byte, as the peer saw it (it sent nothing), on one connection"
    );
    assert_eq!(harness::totals(&r), (3777, 0), "the run's totals, as the peer saw them");
    // No exit handler ran, but the shipper watches the host through a pidfd: once the process is
    // gone it ships the final counters; the reporter, which reaped it, says how it ended.
    assert_eq!(
        (p.end.as_str(), p.signal, p.exit_code),
        ("signal", Some(libc::SIGKILL), None),
        "how the report ends the killed process:\n{}",
        r.stderr
    );
    assert!(p.ended_at.is_some(), "an ended process has an end time: {p:#?}");
}
