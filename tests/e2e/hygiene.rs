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
