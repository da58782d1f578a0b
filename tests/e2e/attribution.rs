//! Module attribution under `sockmeter run`: by default a program using a system library
//! (curl through libcurl) is charged to the program, with `via` naming the library;
//! `--attribute GLOB` makes matching objects the modules instead. Bytes are checked against
//! the HTTP peer's own counts either way, and modules always sum to the process totals.

use crate::harness::{self, run, Peer, Run};
use crate::net::{assert_ok, assert_peer_complete, inet_connections, mirror};

fn curl_under(
    extra: &[&str],
) -> (
    Run,
    sockmeter::SocketReport,
    sockmeter::ProcessReport,
    serde_json::Value,
) {
    let peer = Peer::start("http_peer.py", &["--size", "100000"]);
    let url = format!("http://127.0.0.1:{}/x", peer.port);
    let r = run(extra, &["curl", "-s", "-o", "/dev/null", &url]);
    let verdict = peer.finish();
    assert_ok(&r);
    assert_peer_complete(&verdict, 1);
    let p = r.proc("curl").clone();
    let inet: Vec<_> = p.sockets.iter().filter(|s| s.family == "inet").cloned().collect();
    assert_eq!(inet.len(), 1, "{:#?}", p.sockets);
    (r, inet[0].clone(), p, verdict)
}

/// Everything ties to the HTTP peer's verdict exactly: curl's one socket, its process, the run,
/// and the module each connection is charged to.
fn check_sums(r: &Run, p: &sockmeter::ProcessReport, sock: &sockmeter::SocketReport, verdict: &serde_json::Value) {
    let (peer_rx, peer_tx) = mirror(verdict);
    assert_eq!(sock.tx_bytes, peer_rx, "curl's tx = what the server received");
    assert_eq!(sock.rx_bytes, peer_tx, "curl's rx = what the server sent");
    assert_eq!(
        (p.totals.tx_bytes, p.totals.rx_bytes, p.totals.connections),
        (peer_rx, peer_tx, 1),
        "curl's process totals = what the server received and sent, over one connection"
    );
    assert_eq!(
        harness::totals(r),
        (peer_rx, peer_tx),
        "the run's totals = what the server received and sent"
    );
    let tx: u64 = p.modules.iter().map(|m| m.stats.tx_bytes).sum();
    let rx: u64 = p.modules.iter().map(|m| m.stats.rx_bytes).sum();
    assert_eq!(
        (tx, rx),
        (p.totals.tx_bytes, p.totals.rx_bytes),
        "modules sum to the process totals"
    );

    // Each connection's module is in the module list (by the exact name the socket carries) and
    // holds exactly that module's connections' bytes: an empty or mislabelled module list fails.
    let conns = inet_connections(p);
    assert_eq!(conns.len(), 1, "curl made one connection: {:#?}", p.sockets);
    for c in &conns {
        let name = c
            .module
            .as_deref()
            .unwrap_or_else(|| panic!("connection without a module: {c:#?}"));
        let m: Vec<_> = p.modules.iter().filter(|m| m.module == name).collect();
        assert_eq!(m.len(), 1, "one module named {name}: {:#?}", p.modules);
        let mine: Vec<_> = conns.iter().filter(|o| o.module.as_deref() == Some(name)).collect();
        let want = (
            mine.iter().map(|o| o.tx_bytes).sum::<u64>(),
            mine.iter().map(|o| o.rx_bytes).sum::<u64>(),
            mine.iter().map(|o| o.tx_calls).sum::<u64>(),
            mine.iter().map(|o| o.rx_calls).sum::<u64>(),
            mine.len() as u64,
        );
        let st = &m[0].stats;
        assert_eq!(
            (st.tx_bytes, st.rx_bytes, st.tx_calls, st.rx_calls, st.connections),
            want,
            "module {name} = its connections' bytes and calls, exactly: {:#?}",
            m[0]
        );
    }
    assert_eq!(
        (tx, rx),
        (peer_rx, peer_tx),
        "the modules together = what the server received and sent"
    );
}

#[test]
fn a_system_library_is_skipped_and_named_as_via() {
    let (r, sock, p, verdict) = curl_under(&[]);
    check_sums(&r, &p, &sock, &verdict);
    let module = sock.module.as_deref().unwrap_or_default();
    assert!(
        module.ends_with("/curl"),
        "charged to the curl executable, not libcurl: {module}"
    );
    let via = sock.via.as_deref().unwrap_or_default();
    assert!(via.contains("libcurl"), "via names libcurl: {via:?}");
    assert_eq!(p.modules.len(), 1, "one module, the curl executable: {:#?}", p.modules);
    assert_eq!(
        p.modules[0].module, module,
        "the module is the executable the socket names"
    );
    assert!(
        p.modules.iter().all(|m| !m.module.contains("libcurl")),
        "libcurl is not a module: {:#?}",
        p.modules
    );
}

#[test]
fn attribute_glob_makes_matching_objects_the_modules() {
    let (r, sock, p, verdict) = curl_under(&["--attribute", "libcurl*"]);
    check_sums(&r, &p, &sock, &verdict);
    let module = sock.module.as_deref().unwrap_or_default();
    assert!(
        module.contains("/libcurl.so"),
        "with --attribute libcurl*, libcurl is the module: {module}"
    );
    assert_eq!(p.modules.len(), 1);
    assert_eq!(p.modules[0].module, module);
}

#[test]
fn a_glob_that_matches_nothing_falls_back_to_the_executable() {
    let (r, sock, p, verdict) = curl_under(&["--attribute", "/nowhere/*.so"]);
    check_sums(&r, &p, &sock, &verdict);
    assert!(
        sock.module.as_deref().unwrap_or_default().ends_with("/curl"),
        "{:?}",
        sock.module
    );
}
