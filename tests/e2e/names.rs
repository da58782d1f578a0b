//! Peers by name: the name a program looked an address up by (`getaddrinfo`,
//! `gethostbyname`...) is the report's `peer_name` and the summary's `localhost (127.0.0.1:P)`.
//! Real lookups of `localhost` through glibc's NSS (`/etc/hosts`, no network), each resolver
//! entry point the shim hooks in a process of its own (`tests/c/resolve.c`); a process that
//! looked nothing up gets no name (nothing is ever resolved for it, forward or reverse). The
//! bytes are checked against the unmetered peer's count.

use crate::cprogs::{prog, Oracle};
use crate::harness::{both_modes, python, run_in, Sink};

/// Each entry point and the bytes `resolve` sends after it.
const ENTRY_POINTS: [(&str, u64); 8] = [
    ("getaddrinfo", 1001),
    ("gethostbyname", 1002),
    ("gethostbyname2", 1003),
    ("gethostbyname_r", 1004),
    ("gethostbyname2_r", 1005),
    ("getaddrinfo_a-wait", 1006),
    ("getaddrinfo_a-nowait", 1007),
    ("none", 1008),
];

both_modes! {
    /// Every hooked resolver entry point, synchronous and asynchronous (getaddrinfo_a with
    /// GAI_WAIT, and GAI_NOWAIT read after gai_error), names its connection `localhost`; the
    /// process that looked nothing up has no name; bytes exact.
    fn every_resolver_entry_point_names_the_peer_it_returned(mode) {
        let bin = prog("resolve", &[]);
        let server = Oracle::server(ENTRY_POINTS.len(), "e");
        let port = server.port.to_string();
        let script: String = ENTRY_POINTS
            .iter()
            .map(|(via, _)| format!("\"$0\" {port} {via} || exit 1; "))
            .collect();
        let r = run_in(mode, &[], &["sh", "-c", &script, &bin], &[]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        let seen = server.conns();
        assert_eq!(seen.len(), ENTRY_POINTS.len(), "{}", r.stderr);
        for (via, bytes) in ENTRY_POINTS {
            let line = r
                .stdout
                .lines()
                .find(|l| l.starts_with(&format!("via {via} ")))
                .unwrap_or_else(|| panic!("no line for {via}:\n{}", r.stdout));
            let local: u16 = line.split_whitespace().nth(3).and_then(|p| p.parse().ok()).expect("port");
            let oracle = seen.iter().find(|s| s.port == local).expect("the peer saw the connection");
            assert_eq!(oracle.rx, bytes, "{via}");
            let p = r
                .report
                .processes
                .iter()
                .find(|p| p.argv.get(2).map(String::as_str) == Some(via))
                .unwrap_or_else(|| panic!("no process for {via}:\n{}", r.stderr));
            assert_eq!(p.sockets.len(), 1, "{via}: {:?}", p.sockets);
            let s = &p.sockets[0];
            assert_eq!(s.local.as_deref(), Some(format!("127.0.0.1:{local}").as_str()), "{via}");
            assert_eq!((s.tx_bytes, s.rx_bytes), (bytes, 0), "{via}: exact");
            let want = (via != "none").then_some("localhost");
            assert_eq!(s.peer_name.as_deref(), want, "{via}:\n{}", r.stderr);
            let json = &r.json["processes"]
                .as_array()
                .unwrap()
                .iter()
                .find(|j| j["pid"] == p.pid)
                .unwrap()["sockets"][0];
            assert_eq!(json.get("peer_name").and_then(|v| v.as_str()), want, "{via}: in the JSON");
        }
        assert!(
            r.stderr.contains(&format!("  resolve {port} getaddrinfo  (exit 0")),
            "each process's command line:\n{}",
            r.stderr
        );
    }

    /// Python's socket.create_connection(("localhost", port)) (getaddrinfo underneath): the
    /// summary names the peer `localhost (127.0.0.1:PORT)`, per process and grouped by peer.
    fn a_python_client_by_name_is_shown_by_name(mode) {
        let sink = Sink::start();
        let script = format!(
            "import socket\nc = socket.create_connection(('localhost', {}))\nc.sendall(b'n' * 5000)\nc.close()\n",
            sink.port
        );
        let port = sink.port;
        let r = run_in(mode, &["--group-by", "peer"], &[python(), "-c", &script], &[]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert_eq!(sink.received(), 5000);
        let p = r.proc("python3");
        let s = p.sockets.iter().find(|s| s.tx_bytes > 0).expect("the connection");
        assert_eq!((s.peer_name.as_deref(), s.tx_bytes), (Some("localhost"), 5000));
        let want = format!("localhost (127.0.0.1:{port})");
        let row = r
            .stderr
            .lines()
            .find(|l| l.starts_with(&format!("  {want}")))
            .unwrap_or_else(|| panic!("no row for {want}:\n{}", r.stderr));
        let cells: Vec<&str> = row.split("  ").map(str::trim).filter(|c| !c.is_empty()).collect();
        assert_eq!(cells, [want.as_str(), "0 B", "5.0 kB", "1", "python3"], "{}", r.stderr);
    }
}
