//! Module attribution under `sockmeter run`: by default a program using a system library
//! (curl through libcurl) is charged to the program, with `via` naming the library;
//! `--attribute GLOB` makes matching objects the modules instead. Bytes are checked against
//! the HTTP peer's own counts either way, and modules always sum to the process totals.

use crate::harness::{run, Peer};

fn curl_under(extra: &[&str]) -> (sockmeter::SocketReport, sockmeter::ProcessReport, serde_json::Value) {
    let peer = Peer::start("http_peer.py", &["--size", "100000"]);
    let url = format!("http://127.0.0.1:{}/x", peer.port);
    let r = run(extra, &["curl", "-s", "-o", "/dev/null", &url]);
    let verdict = peer.finish();
    assert_eq!(r.code, 0, "{}", r.stderr);
    let p = r.proc("curl").clone();
    let inet: Vec<_> = p.sockets.iter().filter(|s| s.family == "inet").cloned().collect();
    assert_eq!(inet.len(), 1, "{:#?}", p.sockets);
    (inet[0].clone(), p, verdict)
}

fn check_sums(p: &sockmeter::ProcessReport, sock: &sockmeter::SocketReport, verdict: &serde_json::Value) {
    assert_eq!(
        sock.tx_bytes,
        verdict["rx"].as_u64().unwrap(),
        "curl's tx = what the server received"
    );
    assert_eq!(
        sock.rx_bytes,
        verdict["tx"].as_u64().unwrap(),
        "curl's rx = what the server sent"
    );
    let tx: u64 = p.modules.iter().map(|m| m.stats.tx_bytes).sum();
    let rx: u64 = p.modules.iter().map(|m| m.stats.rx_bytes).sum();
    assert_eq!(
        (tx, rx),
        (p.totals.tx_bytes, p.totals.rx_bytes),
        "modules sum to the process totals"
    );
}

#[test]
fn a_system_library_is_skipped_and_named_as_via() {
    let (sock, p, verdict) = curl_under(&[]);
    check_sums(&p, &sock, &verdict);
    let module = sock.module.as_deref().unwrap_or_default();
    assert!(
        module.ends_with("/curl"),
        "charged to the curl executable, not libcurl: {module}"
    );
    let via = sock.via.as_deref().unwrap_or_default();
    assert!(via.contains("libcurl"), "via names libcurl: {via:?}");
    assert!(p.modules.iter().all(|m| !m.module.contains("libcurl")));
}

#[test]
fn attribute_glob_makes_matching_objects_the_modules() {
    let (sock, p, verdict) = curl_under(&["--attribute", "libcurl*"]);
    check_sums(&p, &sock, &verdict);
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
    let (sock, p, verdict) = curl_under(&["--attribute", "/nowhere/*.so"]);
    check_sums(&p, &sock, &verdict);
    assert!(
        sock.module.as_deref().unwrap_or_default().ends_with("/curl"),
        "{:?}",
        sock.module
    );
}
