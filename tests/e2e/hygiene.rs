//! The host never notices the shim's machinery: under `sockmeter run` the metered process gains
//! no thread (the shipper is a separate process), the shipper holds none of the host's fds (a
//! socket the host closes really closes, while the host still runs), and the exact counts
//! arrive all the same.

use std::io::Read;
use std::net::TcpListener;
use std::time::Duration;

use crate::harness::{compile_c, run, scratch};

/// A metered C client (its socket made without SOCK_CLOEXEC) connects, sends 5000 bytes,
/// closes, and then waits (bounded) for the unmetered peer to report, through a file, that it
/// saw EOF. If any other process held a copy of the socket, the peer would see no EOF while the
/// client lives, and the client would exit 1.
#[test]
fn a_closed_socket_is_closed_while_the_host_still_runs_and_the_host_has_one_thread() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let flag = scratch().join(format!("eof-{port}"));
    let flag2 = flag.clone();
    let peer = std::thread::spawn(move || {
        let (mut c, _) = listener.accept().expect("accept");
        c.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
        let mut got = Vec::new();
        c.read_to_end(&mut got).expect("read to EOF");
        std::fs::write(&flag2, got.len().to_string()).expect("flag");
        got.len()
    });
    let prog = compile_c("holdclose", &[]);
    let r = run(
        &[],
        &[
            &prog.display().to_string(),
            &port.to_string(),
            &flag.display().to_string(),
        ],
    );
    let received = peer.join().expect("peer");
    assert_eq!(r.code, 0, "the peer saw no EOF while the host was alive:\n{}", r.stderr);
    assert_eq!(received, 5000);
    assert_eq!(
        r.stdout.trim(),
        "threads 1",
        "the metered process has no thread but its own"
    );
    let p = r.proc("holdclose");
    assert_eq!(p.totals.tx_bytes, 5000, "exact, as the peer saw it");
}

/// A metered process killed by SIGKILL right after its last send loses nothing: its counters
/// live in memory its shipper still maps, and the shipper ships them once the process is gone.
#[test]
fn a_process_killed_by_sigkill_still_reports_every_byte() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let peer = std::thread::spawn(move || {
        let (mut c, _) = listener.accept().expect("accept");
        c.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
        let mut got = Vec::new();
        c.read_to_end(&mut got).expect("read to EOF");
        got.len()
    });
    // 3 sends inside one interval (1 s), then SIGKILL: no exit handler can run.
    let script = format!(
        "import os, signal, socket\n\
         c = socket.create_connection(('127.0.0.1', {port}))\n\
         for n in (1000, 2000, 777):\n    c.sendall(b'k' * n)\n\
         os.kill(os.getpid(), signal.SIGKILL)\n"
    );
    let r = run(&[], &["python3", "-c", &script]);
    let received = peer.join().expect("peer");
    assert_eq!(r.code, 137, "killed by SIGKILL (128+9):\n{}", r.stderr);
    assert_eq!(received, 3777);
    let procs: Vec<_> = r.report.processes.iter().filter(|p| p.totals.tx_bytes > 0).collect();
    assert_eq!(procs.len(), 1, "{}", r.stderr);
    assert_eq!(procs[0].totals.tx_bytes, 3777, "every byte, as the peer saw it");
}
