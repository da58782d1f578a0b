//! Network end-to-end tests: curl, python3 clients and servers, forks, an exec, a shell
//! pipeline, Unix-domain sockets and the report-file mode, each run under the shim against an
//! oracle peer from tests/peers/ that is not metered. Every byte count asserted here is
//! compared with what the other end really received and sent (the peer's verdict), and where
//! natural with what the metered program itself knows it did.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use serde_json::Value;
use sockmeter::report::{ProcessReport, SocketReport};

use crate::harness::{self, run, Peer, Run};

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// The real python3 interpreter (not a version-manager wrapper script, which would add
/// bash/exec images of its own to every report).
fn python() -> &'static str {
    static PY: OnceLock<String> = OnceLock::new();
    PY.get_or_init(|| {
        let out = Command::new("python3")
            .args(["-c", "import sys; print(sys.executable)"])
            .env_remove("LD_PRELOAD")
            .output()
            .expect("python3 is needed by the end-to-end tests");
        assert!(out.status.success(), "python3 -c failed");
        let p = String::from_utf8(out.stdout).expect("utf-8").trim().to_string();
        assert!(!p.is_empty(), "python3 did not name its executable");
        p
    })
}

/// A script in tests/peers/.
fn script(name: &str) -> String {
    harness::root()
        .join("tests/peers")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

/// A fresh path in the scratch directory.
fn scratch_path(tag: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    harness::scratch().join(format!("net-{tag}-{n}"))
}

/// The JSON lines a metered program printed on stdout (its own account).
fn own_lines(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .filter(|l| l.trim_start().starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("program printed {l:?}: {e}")))
        .collect()
}

/// The single JSON line of a metered program.
fn own(r: &Run) -> Value {
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

fn n(v: &Value, key: &str) -> u64 {
    v.get(key)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("no number {key:?} in {v}"))
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no string {key:?} in {v}"))
}

/// How many bytes of letter `c` the peer counted (0 when none).
fn letter(by_byte: &Value, c: char) -> u64 {
    by_byte.get(c.to_string()).and_then(Value::as_u64).unwrap_or(0)
}

/// Every image of process `pid` in the report.
fn images(r: &Run, pid: u64) -> Vec<&ProcessReport> {
    r.report.processes.iter().filter(|p| u64::from(p.pid) == pid).collect()
}

/// The one image of process `pid`.
fn image(r: &Run, pid: u64) -> &ProcessReport {
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

fn is_inet(s: &SocketReport) -> bool {
    s.family == "inet" || s.family == "inet6"
}

/// The inet sockets of a process that are connections (connected or accepted).
fn inet_connections(p: &ProcessReport) -> Vec<&SocketReport> {
    p.sockets.iter().filter(|s| is_inet(s) && s.is_connection()).collect()
}

/// The peer's per-connection record whose client address is `addr`.
fn conn_by_peer<'a>(verdict: &'a Value, addr: &str) -> &'a Value {
    verdict["per_conn"]
        .as_array()
        .expect("per_conn")
        .iter()
        .find(|c| c["peer"] == addr)
        .unwrap_or_else(|| panic!("the peer saw no connection from {addr}: {verdict}"))
}

/// Socket and process sums must agree, and the run totals must be the sum of the processes.
fn assert_totals_consistent(r: &Run) {
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

fn assert_ok(r: &Run) {
    assert_eq!(
        r.code, 0,
        "command failed\nstdout:\n{}\nstderr:\n{}",
        r.stdout, r.stderr
    );
    assert_eq!(r.report.exit_status, Some(0));
}

fn assert_peer_complete(v: &Value, conns: u64) {
    assert_eq!(v["timed_out"], false, "peer timed out: {v}");
    assert_eq!(n(v, "connections"), conns, "peer connections: {v}");
    for c in v["per_conn"].as_array().expect("per_conn") {
        assert!(c.get("error").is_none(), "peer connection failed: {v}");
    }
}

/// Runs a program directly (not under `sockmeter run`) with the given environment.
fn direct(cmd: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut c = Command::new(cmd[0]);
    c.args(&cmd[1..]).stdin(Stdio::null());
    for k in [
        "LD_PRELOAD",
        "SOCKMETER_SOCKET",
        "SOCKMETER_REPORT",
        "SOCKMETER_INTERVAL",
        "SOCKMETER_UNIX",
        "SOCKMETER_ATTRIBUTE",
        "SOCKMETER_DISABLE",
    ] {
        c.env_remove(k);
    }
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("spawn")
}

// ---------------------------------------------------------------------------------------
// 1. curl
// ---------------------------------------------------------------------------------------

#[test]
fn curl_download_from_local_http_server_counts_exactly_what_the_server_saw() {
    let size = 3 * 1024 * 1024;
    let peer = Peer::start("http_peer.py", &["--size", &size.to_string()]);
    let port = peer.port;
    let url = format!("http://127.0.0.1:{port}/big.bin");
    let r = run(&[], &["curl", "-s", "-o", "/dev/null", &url]);
    let v = peer.finish();
    assert_ok(&r);
    assert_peer_complete(&v, 1);
    let pc = &v["per_conn"][0];
    assert_eq!(s(pc, "request_line"), "GET /big.bin HTTP/1.1");
    assert!(
        n(&v, "tx") > size,
        "the server sent the headers and {size} body bytes: {v}"
    );

    let p = r.proc("curl");
    let conns = inet_connections(p);
    assert_eq!(conns.len(), 1, "curl made exactly one connection: {:#?}", p.sockets);
    let sock = conns[0];
    assert_eq!(sock.proto, "tcp");
    assert_eq!(sock.role, "connected");
    assert_eq!(sock.peer.as_deref(), Some(format!("127.0.0.1:{port}").as_str()));
    assert_eq!(
        sock.local.as_deref(),
        Some(s(pc, "peer")),
        "local address is the client address the server saw"
    );
    assert_eq!(
        sock.tx_bytes,
        n(&v, "rx"),
        "curl's tx = the request bytes the server received"
    );
    assert_eq!(
        sock.rx_bytes,
        n(&v, "tx"),
        "curl's rx = the response bytes the server sent"
    );
    assert_eq!(sock.errors, 0);

    assert_eq!(
        (p.totals.tx_bytes, p.totals.rx_bytes, p.totals.connections),
        (n(&v, "rx"), n(&v, "tx"), 1)
    );
    assert_eq!(
        (
            r.report.totals.tx_bytes,
            r.report.totals.rx_bytes,
            r.report.totals.connections
        ),
        (n(&v, "rx"), n(&v, "tx"), 1)
    );
    assert_totals_consistent(&r);

    let head = format!("sockmeter: pid {} ", p.pid);
    let line = r
        .stderr
        .lines()
        .find(|l| l.starts_with(&head))
        .unwrap_or_else(|| panic!("no summary line for pid {} on stderr:\n{}", p.pid, r.stderr));
    assert!(line.contains("curl"), "summary line names curl: {line}");
    assert!(
        line.contains(" 1 connection") && !line.contains(" 1 connections"),
        "summary line says 1 connection: {line}"
    );
}

// ---------------------------------------------------------------------------------------
// 2. python3 TCP client, IPv4 and IPv6
// ---------------------------------------------------------------------------------------

fn python_tcp_client(family: u8) {
    let sizes = "1,1000,65536,1048576,3000001";
    let reply = 777_777u64;
    let fam = family.to_string();
    let peer = Peer::start(
        "tcp_peer.py",
        &["--family", &fam, "--mode", "reply", "--reply", &reply.to_string()],
    );
    let port = peer.port.to_string();
    let r = run(
        &[],
        &[
            python(),
            &script("tcp_client.py"),
            "--family",
            &fam,
            "--port",
            &port,
            "--sizes",
            sizes,
        ],
    );
    let v = peer.finish();
    assert_ok(&r);
    assert_peer_complete(&v, 1);
    let me = own(&r);
    let sent: u64 = sizes.split(',').map(|x| x.parse::<u64>().unwrap()).sum();
    assert_eq!(
        (n(&me, "tx"), n(&v, "rx")),
        (sent, sent),
        "client and server agree on what was sent"
    );
    assert_eq!(
        (n(&me, "rx"), n(&v, "tx")),
        (reply, reply),
        "client and server agree on the reply"
    );

    let p = image(&r, n(&me, "pid"));
    let conns = inet_connections(p);
    assert_eq!(conns.len(), 1, "one connection: {:#?}", p.sockets);
    let sock = conns[0];
    let (want_family, want_peer) = if family == 6 {
        ("inet6", format!("[::1]:{port}"))
    } else {
        ("inet", format!("127.0.0.1:{port}"))
    };
    assert_eq!(sock.family, want_family);
    assert_eq!(sock.proto, "tcp");
    assert_eq!(sock.role, "connected");
    assert_eq!(sock.peer.as_deref(), Some(want_peer.as_str()));
    assert_eq!(sock.local.as_deref(), Some(s(&me, "local")));
    assert_eq!(
        s(&v["per_conn"][0], "peer"),
        s(&me, "local"),
        "the peer saw the client's address"
    );
    assert_eq!(sock.tx_bytes, n(&v, "rx"));
    assert_eq!(sock.rx_bytes, n(&v, "tx"));
    assert!(
        sock.tx_calls >= n(&me, "sendalls"),
        "at least one send call per sendall: {sock:?}"
    );
    assert_eq!(sock.errors, 0);
    assert_eq!(
        (p.totals.tx_bytes, p.totals.rx_bytes, p.totals.connections),
        (n(&v, "rx"), n(&v, "tx"), 1)
    );
    assert_eq!(
        (r.report.totals.tx_bytes, r.report.totals.rx_bytes),
        (n(&v, "rx"), n(&v, "tx"))
    );
    assert_totals_consistent(&r);
}

#[test]
fn python_tcp_client_ipv4_sendall_in_several_calls_then_reply_counts_match_peer() {
    python_tcp_client(4);
}

#[test]
fn python_tcp_client_ipv6_sendall_in_several_calls_then_reply_counts_match_peer() {
    python_tcp_client(6);
}

// ---------------------------------------------------------------------------------------
// 3. python3 UDP client, IPv4 and IPv6
// ---------------------------------------------------------------------------------------

fn python_udp_client(family: u8) {
    let unconnected = "1,200,1400,9000,60000";
    let connected = "3,500,30000";
    let datagrams = unconnected.split(',').count() + connected.split(',').count();
    let fam = family.to_string();
    let peer = Peer::start(
        "udp_peer.py",
        &["--family", &fam, "--datagrams", &datagrams.to_string()],
    );
    let port = peer.port.to_string();
    let r = run(
        &[],
        &[
            python(),
            &script("udp_client.py"),
            "--family",
            &fam,
            "--port",
            &port,
            "--unconnected",
            unconnected,
            "--connected",
            connected,
        ],
    );
    let v = peer.finish();
    assert_ok(&r);
    assert_eq!(v["timed_out"], false, "peer timed out: {v}");
    assert_eq!(n(&v, "rx_datagrams"), datagrams as u64);
    let me = own(&r);
    let dest = if family == 6 {
        format!("[::1]:{port}")
    } else {
        format!("127.0.0.1:{port}")
    };
    let want_family = if family == 6 { "inet6" } else { "inet" };

    let per_peer = v["per_peer"].as_array().expect("per_peer");
    assert_eq!(per_peer.len(), 2, "two client sockets: {v}");
    // The peer sees the client's loopback address; the client knows its port.
    let seen_from = |port: u64| {
        let a = if family == 6 {
            format!("[::1]:{port}")
        } else {
            format!("127.0.0.1:{port}")
        };
        per_peer
            .iter()
            .find(|p| p["peer"] == a.as_str())
            .unwrap_or_else(|| panic!("the peer saw nothing from {a}: {v}"))
    };
    let pu = seen_from(n(&me["unconnected"], "local_port"));
    let pc = seen_from(n(&me["connected"], "local_port"));
    assert_eq!(
        (n(pu, "rx"), n(pu, "tx")),
        (n(&me["unconnected"], "tx"), n(&me["unconnected"], "rx"))
    );
    assert_eq!(
        (n(pc, "rx"), n(pc, "tx")),
        (n(&me["connected"], "tx"), n(&me["connected"], "rx"))
    );

    let p = image(&r, n(&me, "pid"));
    let udp: Vec<&SocketReport> = p.sockets.iter().filter(|s| is_inet(s) && s.proto == "udp").collect();
    assert_eq!(udp.len(), 2, "two UDP sockets: {:#?}", p.sockets);

    // The sendto() socket: role datagram, one peer with exact per-peer counts.
    let dg: Vec<_> = udp.iter().filter(|s| s.role == "datagram").collect();
    assert_eq!(dg.len(), 1, "one datagram-role socket: {udp:#?}");
    let dg = dg[0];
    assert_eq!(dg.family, want_family);
    if let Some(l) = &dg.local {
        assert!(
            l.ends_with(&format!(":{}", n(&me["unconnected"], "local_port"))),
            "datagram socket local {l} vs the client's {}",
            me["unconnected"]
        );
    }
    assert_eq!(
        dg.tx_bytes,
        n(pu, "rx"),
        "datagram socket tx = what the peer received from it"
    );
    assert_eq!(
        dg.rx_bytes,
        n(pu, "tx"),
        "datagram socket rx = what the peer sent to it"
    );
    assert_eq!(dg.peers.len(), 1, "one per-peer entry: {dg:?}");
    let pp = &dg.peers[0];
    assert_eq!(pp.peer, dest);
    assert_eq!(pp.tx_bytes, n(pu, "rx"), "per-peer tx = the peer's rx from this socket");
    assert_eq!(pp.rx_bytes, n(pu, "tx"), "per-peer rx = the peer's tx to this socket");
    assert_eq!(
        pp.tx_calls,
        n(pu, "rx_datagrams"),
        "one sendto per datagram the peer received"
    );
    assert_eq!(
        pp.rx_calls,
        n(pu, "tx_datagrams"),
        "one recvfrom per datagram the peer sent"
    );

    // The connect()ed socket with send()/recv().
    let cs: Vec<_> = udp.iter().filter(|s| s.role == "connected").collect();
    assert_eq!(cs.len(), 1, "one connected UDP socket: {udp:#?}");
    let cs = cs[0];
    assert_eq!(cs.family, want_family);
    assert_eq!(cs.peer.as_deref(), Some(dest.as_str()));
    assert_eq!(cs.local.as_deref(), Some(s(&me["connected"], "local")));
    assert_eq!(cs.tx_bytes, n(pc, "rx"));
    assert_eq!(cs.rx_bytes, n(pc, "tx"));
    assert_eq!(cs.tx_calls, n(pc, "rx_datagrams"));
    assert_eq!(cs.rx_calls, n(pc, "tx_datagrams"));

    assert_eq!((p.totals.tx_bytes, p.totals.rx_bytes), (n(&v, "rx"), n(&v, "tx")));
    assert_eq!(
        (r.report.totals.tx_bytes, r.report.totals.rx_bytes),
        (n(&v, "rx"), n(&v, "tx"))
    );
    assert_totals_consistent(&r);
}

#[test]
fn python_udp_client_ipv4_sendto_and_connected_send_per_peer_counts_match_peer() {
    python_udp_client(4);
}

#[test]
fn python_udp_client_ipv6_sendto_and_connected_send_per_peer_counts_match_peer() {
    python_udp_client(6);
}

// ---------------------------------------------------------------------------------------
// 4. metered python3 server
// ---------------------------------------------------------------------------------------

#[test]
fn python_tcp_server_accepted_sockets_count_what_each_unmetered_client_sent_and_received() {
    let sizes = "10,70000,1048577";
    let portfile = scratch_path("portfile");
    let pf = portfile.to_string_lossy().into_owned();
    let peer = Peer::start("client_peer.py", &["--portfile", &pf, "--sizes", sizes]);
    let r = run(
        &[],
        &[python(), &script("tcp_server.py"), "--portfile", &pf, "--conns", "3"],
    );
    let v = peer.finish();
    assert_ok(&r);
    assert_eq!(n(&v, "connections"), 3, "client peer: {v}");
    let me = own(&r);
    let port = n(&me, "port");
    let p = image(&r, n(&me, "pid"));

    let listening: Vec<_> = p
        .sockets
        .iter()
        .filter(|s| is_inet(s) && s.role == "listening")
        .collect();
    assert_eq!(listening.len(), 1, "one listening socket: {:#?}", p.sockets);
    assert_eq!(
        listening[0].local.as_deref(),
        Some(format!("127.0.0.1:{port}").as_str())
    );
    assert_eq!((listening[0].tx_bytes, listening[0].rx_bytes), (0, 0));

    let accepted: Vec<_> = p
        .sockets
        .iter()
        .filter(|s| is_inet(s) && s.role == "accepted")
        .collect();
    assert_eq!(accepted.len(), 3, "three accepted sockets: {:#?}", p.sockets);
    for c in v["per_conn"].as_array().unwrap() {
        assert!(c.get("error").is_none(), "client connection failed: {v}");
        let local = s(c, "local");
        let a: Vec<_> = accepted.iter().filter(|s| s.peer.as_deref() == Some(local)).collect();
        assert_eq!(a.len(), 1, "one accepted socket from {local}: {accepted:#?}");
        let a = a[0];
        assert_eq!(a.proto, "tcp");
        assert_eq!(a.local.as_deref(), Some(format!("127.0.0.1:{port}").as_str()));
        assert_eq!(a.rx_bytes, n(c, "tx"), "accepted rx = what client {local} sent");
        assert_eq!(a.tx_bytes, n(c, "rx"), "accepted tx = what client {local} received");
        assert_eq!(a.errors, 0);
    }
    assert_eq!(
        (p.totals.rx_bytes, p.totals.tx_bytes, p.totals.connections),
        (n(&v, "tx"), n(&v, "rx"), 3)
    );
    assert_eq!(
        (
            r.report.totals.rx_bytes,
            r.report.totals.tx_bytes,
            r.report.totals.connections
        ),
        (n(&v, "tx"), n(&v, "rx"), 3)
    );
    assert_totals_consistent(&r);
}

// ---------------------------------------------------------------------------------------
// 5. fork
// ---------------------------------------------------------------------------------------

#[test]
fn forked_python_children_each_report_exactly_their_own_connection() {
    let child_sizes = [20_000u64, 3_000, 45_000];
    let cs = child_sizes.iter().map(u64::to_string).collect::<Vec<_>>().join(",");
    let parent_size = 1_000u64;
    let peer = Peer::start("tcp_peer.py", &["--mode", "echo", "--conns", "4"]);
    let port = peer.port.to_string();
    let r = run(
        &[],
        &[
            python(),
            &script("fork_clients.py"),
            "--port",
            &port,
            "--parent-size",
            &parent_size.to_string(),
            "--child-sizes",
            &cs,
        ],
    );
    let v = peer.finish();
    assert_ok(&r);
    assert_peer_complete(&v, 4);
    let me = own(&r);
    assert!(
        me["child_status"].as_array().unwrap().iter().all(|c| c == 0),
        "children failed: {me}"
    );
    let ppid = n(&me, "pid");
    let children: Vec<u64> = me["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_u64().unwrap())
        .collect();
    assert_eq!(
        r.report.processes.len(),
        4,
        "parent and 3 children: {:#?}",
        r.report
            .processes
            .iter()
            .map(|p| (p.pid, &p.origin, &p.end))
            .collect::<Vec<_>>()
    );

    let mut expected = vec![(ppid, 'P', parent_size)];
    for (i, (&pid, &size)) in children.iter().zip(&child_sizes).enumerate() {
        expected.push((pid, (b'a' + i as u8) as char, size));
    }
    for (pid, ch, size) in expected {
        let p = image(&r, pid);
        if pid == ppid {
            assert_eq!(p.origin, "start");
        } else {
            assert_eq!(p.origin, "fork", "child {pid}");
            assert_eq!(u64::from(p.ppid), ppid, "child {pid}'s ppid");
        }
        assert_eq!(p.end, "exit", "process {pid}");
        let own_conns: Vec<_> = inet_connections(p).into_iter().filter(|s| !s.inherited).collect();
        assert_eq!(
            own_conns.len(),
            1,
            "process {pid} made one connection: {:#?}",
            p.sockets
        );
        let sock = own_conns[0];
        let c = conn_by_peer(&v, sock.local.as_deref().expect("local address"));
        assert_eq!(
            letter(&c["rx_by_byte"], ch),
            size,
            "the peer got {size} bytes of {ch:?} on {pid}'s connection: {c}"
        );
        assert_eq!(n(c, "rx"), size, "and nothing else: {c}");
        assert_eq!(sock.tx_bytes, n(c, "rx"), "process {pid} tx");
        assert_eq!(sock.rx_bytes, n(c, "tx"), "process {pid} rx");
        assert_eq!(
            (p.totals.tx_bytes, p.totals.rx_bytes),
            (n(c, "rx"), n(c, "tx")),
            "process {pid} has exactly its own bytes"
        );
    }
    assert_eq!(
        (r.report.totals.tx_bytes, r.report.totals.rx_bytes),
        (n(&v, "rx"), n(&v, "tx"))
    );
    assert_totals_consistent(&r);
}

#[test]
fn forked_child_using_inherited_socket_is_charged_its_bytes_and_the_parent_its_own() {
    let (before, child, after) = (5_000u64, 7_000u64, 3_000u64);
    let peer = Peer::start("tcp_peer.py", &["--mode", "echo", "--conns", "1"]);
    let port = peer.port.to_string();
    let sizes = format!("{before},{child},{after}");
    let r = run(
        &[],
        &[python(), &script("fork_inherit.py"), "--port", &port, "--sizes", &sizes],
    );
    let v = peer.finish();
    assert_ok(&r);
    assert_peer_complete(&v, 1);
    let me = own(&r);
    assert_eq!(n(&me, "child_status"), 0, "child failed: {me}");
    let c = &v["per_conn"][0];
    let (rxb, txb) = (&c["rx_by_byte"], &c["tx_by_byte"]);
    // The oracle: per writer letter, what the peer received and echoed.
    assert_eq!(
        (letter(rxb, 'P'), letter(rxb, 'C'), letter(rxb, 'Q')),
        (before, child, after),
        "peer verdict: {c}"
    );
    let parent_tx = letter(rxb, 'P') + letter(rxb, 'Q');
    let parent_rx = letter(txb, 'P') + letter(txb, 'Q');
    let (child_tx, child_rx) = (letter(rxb, 'C'), letter(txb, 'C'));

    let parent = image(&r, n(&me, "pid"));
    let kid = image(&r, n(&me, "child"));
    assert_eq!(kid.origin, "fork");
    assert_eq!(u64::from(kid.ppid), n(&me, "pid"));

    let pc = inet_connections(parent);
    assert_eq!(pc.len(), 1, "parent: {:#?}", parent.sockets);
    assert_eq!(pc[0].local.as_deref(), Some(s(c, "peer")));
    assert_eq!(
        (pc[0].tx_bytes, pc[0].rx_bytes),
        (parent_tx, parent_rx),
        "parent's bytes on the shared socket"
    );
    assert_eq!((parent.totals.tx_bytes, parent.totals.rx_bytes), (parent_tx, parent_rx));

    let kc: Vec<_> = kid.sockets.iter().filter(|s| is_inet(s)).collect();
    assert_eq!(kc.len(), 1, "child: {:#?}", kid.sockets);
    assert!(kc[0].inherited, "the child's socket existed before it: {:?}", kc[0]);
    assert_eq!(
        (kc[0].tx_bytes, kc[0].rx_bytes),
        (child_tx, child_rx),
        "child's bytes on the inherited socket"
    );
    assert_eq!((kid.totals.tx_bytes, kid.totals.rx_bytes), (child_tx, child_rx));

    assert_eq!(parent.totals.tx_bytes + kid.totals.tx_bytes, n(&v, "rx"));
    assert_eq!(parent.totals.rx_bytes + kid.totals.rx_bytes, n(&v, "tx"));
    assert_eq!(
        (r.report.totals.tx_bytes, r.report.totals.rx_bytes),
        (n(&v, "rx"), n(&v, "tx"))
    );
    assert_totals_consistent(&r);
}

// ---------------------------------------------------------------------------------------
// 6. shell pipeline
// ---------------------------------------------------------------------------------------

#[test]
fn shell_pipeline_curl_into_python_each_process_exact_and_totals_are_the_sum() {
    let size = 1_500_000u64;
    let reply = 4_321u64;
    let http = Peer::start("http_peer.py", &["--size", &size.to_string()]);
    let sink = Peer::start("tcp_peer.py", &["--mode", "reply", "--reply", &reply.to_string()]);
    let http_port = http.port;
    let line = format!(
        "curl -s http://127.0.0.1:{http_port}/data.bin | '{}' '{}' --stdin --port {}",
        python(),
        script("tcp_client.py"),
        sink.port
    );
    let r = run(&[], &["sh", "-c", &line]);
    let hv = http.finish();
    let sv = sink.finish();
    assert_ok(&r);
    assert_peer_complete(&hv, 1);
    assert_peer_complete(&sv, 1);
    let me = own(&r);
    assert_eq!(n(&me, "tx"), size, "python forwarded the whole body it read from curl");

    let curl = r.proc("curl");
    let cc = inet_connections(curl);
    assert_eq!(cc.len(), 1, "curl: {:#?}", curl.sockets);
    assert_eq!(cc[0].peer.as_deref(), Some(format!("127.0.0.1:{http_port}").as_str()));
    assert_eq!((cc[0].tx_bytes, cc[0].rx_bytes), (n(&hv, "rx"), n(&hv, "tx")));
    assert_eq!(
        (curl.totals.tx_bytes, curl.totals.rx_bytes),
        (n(&hv, "rx"), n(&hv, "tx"))
    );

    let py: Vec<_> = images(&r, n(&me, "pid"))
        .into_iter()
        .filter(|p| p.argv.iter().any(|a| a.ends_with("tcp_client.py")))
        .collect();
    assert_eq!(
        py.len(),
        1,
        "one python image: {:#?}",
        r.report.processes.iter().map(|p| (p.pid, &p.argv)).collect::<Vec<_>>()
    );
    let py = py[0];
    let pc = inet_connections(py);
    assert_eq!(pc.len(), 1, "python: {:#?}", py.sockets);
    assert_eq!(pc[0].local.as_deref(), Some(s(&sv["per_conn"][0], "peer")));
    assert_eq!((pc[0].tx_bytes, pc[0].rx_bytes), (n(&sv, "rx"), n(&sv, "tx")));
    assert_eq!((py.totals.tx_bytes, py.totals.rx_bytes), (n(&sv, "rx"), n(&sv, "tx")));

    for p in &r.report.processes {
        if std::ptr::eq(p, curl) || std::ptr::eq(p, py) {
            continue;
        }
        assert_eq!(
            (p.totals.tx_bytes, p.totals.rx_bytes),
            (0, 0),
            "process {} {:?} did no network traffic",
            p.pid,
            p.argv
        );
    }
    assert_totals_consistent(&r);
    assert_eq!(r.report.totals.tx_bytes, n(&hv, "rx") + n(&sv, "rx"));
    assert_eq!(r.report.totals.rx_bytes, n(&hv, "tx") + n(&sv, "tx"));
    assert_eq!(r.report.totals.connections, 2);
}

// ---------------------------------------------------------------------------------------
// 7. exec
// ---------------------------------------------------------------------------------------

#[test]
fn exec_image_adopts_inherited_socket_and_both_images_sum_to_the_peer() {
    let (before, after) = (12_345u64, 23_456u64);
    let peer = Peer::start("tcp_peer.py", &["--mode", "echo", "--conns", "1"]);
    let port = peer.port.to_string();
    let sizes = format!("{before},{after}");
    let r = run(
        &[],
        &[python(), &script("exec_first.py"), "--port", &port, "--sizes", &sizes],
    );
    let v = peer.finish();
    assert_ok(&r);
    assert_peer_complete(&v, 1);
    let lines = own_lines(&r.stdout);
    assert_eq!(lines.len(), 2, "both images spoke:\n{}", r.stdout);
    let (first, second) = (&lines[0], &lines[1]);
    assert_eq!(n(first, "pid"), n(second, "pid"), "exec keeps the pid");
    assert_eq!(n(first, "fd"), n(second, "fd"));
    let c = &v["per_conn"][0];
    let (rxb, txb) = (&c["rx_by_byte"], &c["tx_by_byte"]);
    assert_eq!(
        (letter(rxb, 'A'), letter(rxb, 'B')),
        (before, after),
        "peer verdict: {c}"
    );
    assert_eq!(n(second, "tx"), letter(rxb, 'B'));
    assert_eq!(n(second, "rx"), letter(txb, 'B'));

    let imgs = images(&r, n(first, "pid"));
    assert_eq!(
        imgs.len(),
        2,
        "one report per image: {:#?}",
        imgs.iter().map(|p| (&p.argv, &p.end)).collect::<Vec<_>>()
    );
    let pre: Vec<_> = imgs
        .iter()
        .filter(|p| p.argv.iter().any(|a| a.ends_with("exec_first.py")))
        .collect();
    let post: Vec<_> = imgs
        .iter()
        .filter(|p| p.argv.iter().any(|a| a.ends_with("exec_second.py")))
        .collect();
    assert_eq!((pre.len(), post.len()), (1, 1));
    let (pre, post) = (pre[0], post[0]);
    assert_eq!(pre.end, "exec");
    assert_eq!(post.end, "exit");

    let a = inet_connections(pre);
    assert_eq!(a.len(), 1, "pre-exec: {:#?}", pre.sockets);
    assert_eq!(a[0].local.as_deref(), Some(s(c, "peer")));
    assert_eq!(
        (a[0].tx_bytes, a[0].rx_bytes),
        (letter(rxb, 'A'), letter(txb, 'A')),
        "pre-exec image's bytes"
    );

    let b: Vec<_> = post.sockets.iter().filter(|s| is_inet(s)).collect();
    assert_eq!(b.len(), 1, "post-exec: {:#?}", post.sockets);
    let b = b[0];
    assert!(
        b.adopted,
        "the post-exec image recognised the socket on first use: {b:?}"
    );
    assert_eq!(i64::from(b.fd), n(first, "fd") as i64);
    assert_eq!(b.proto, "tcp");
    assert_eq!(b.peer.as_deref(), Some(format!("127.0.0.1:{port}").as_str()));
    assert_eq!(
        (b.tx_bytes, b.rx_bytes),
        (letter(rxb, 'B'), letter(txb, 'B')),
        "post-exec image's bytes"
    );

    assert_eq!(pre.totals.tx_bytes + post.totals.tx_bytes, n(&v, "rx"));
    assert_eq!(pre.totals.rx_bytes + post.totals.rx_bytes, n(&v, "tx"));
    assert_eq!(
        (r.report.totals.tx_bytes, r.report.totals.rx_bytes),
        (n(&v, "rx"), n(&v, "tx"))
    );
    assert_totals_consistent(&r);
}

// ---------------------------------------------------------------------------------------
// 8. Unix-domain sockets
// ---------------------------------------------------------------------------------------

/// How the report shows a Unix-domain path: whole up to `UNIX_PATH_MAX` bytes, else cut there
/// with a trailing "…" (src/addr.rs).
fn unix_path_shown(path: &str) -> String {
    let max = sockmeter::addr::UNIX_PATH_MAX;
    if path.len() <= max {
        path.to_string()
    } else {
        format!("{}…", String::from_utf8_lossy(&path.as_bytes()[..max]))
    }
}

fn unix_run(include: bool) {
    let path = scratch_path("u");
    let path_s = path.to_string_lossy().into_owned();
    let shown = unix_path_shown(&path_s);
    let (unix_size, unix_reply, tcp_size, tcp_reply, pa, pb) =
        (40_000u64, 1_234u64, 5_000u64, 678u64, 3_000u64, 4_000u64);
    let up = Peer::start("unix_peer.py", &["--path", &path_s, "--reply", &unix_reply.to_string()]);
    let tp = Peer::start("tcp_peer.py", &["--mode", "reply", "--reply", &tcp_reply.to_string()]);
    let extra: &[&str] = if include { &["--unix"] } else { &[] };
    let cmd = [
        python(),
        &script("unix_client.py"),
        "--path",
        &path_s,
        "--unix-size",
        &unix_size.to_string(),
        "--tcp-port",
        &tp.port.to_string(),
        "--tcp-size",
        &tcp_size.to_string(),
        "--pair-sizes",
        &format!("{pa},{pb}"),
    ]
    .map(String::from);
    let cmd: Vec<&str> = cmd.iter().map(String::as_str).collect();
    let r = run(extra, &cmd);
    let uv = up.finish();
    let tv = tp.finish();
    assert_ok(&r);
    assert_eq!(n(&uv, "connections"), 1, "unix peer: {uv}");
    assert_peer_complete(&tv, 1);
    assert_eq!((n(&uv, "rx"), n(&uv, "tx")), (unix_size, unix_reply), "unix peer: {uv}");
    let me = own(&r);
    assert_eq!(n(&me["unix"], "rx"), n(&uv, "tx"));
    let p = image(&r, n(&me, "pid"));
    assert_eq!(r.report.unix_in_totals, include);

    let unix: Vec<_> = p.sockets.iter().filter(|s| s.family == "unix").collect();
    assert_eq!(
        unix.len(),
        3,
        "the path connection and both socketpair ends: {:#?}",
        p.sockets
    );
    let to_peer: Vec<_> = unix
        .iter()
        .filter(|s| s.peer.as_deref() == Some(shown.as_str()))
        .collect();
    assert_eq!(to_peer.len(), 1, "one unix socket connected to {shown}: {unix:#?}");
    let u = to_peer[0];
    assert_eq!((u.proto.as_str(), u.role.as_str()), ("stream", "connected"));
    assert_eq!(
        (u.tx_bytes, u.rx_bytes),
        (n(&uv, "rx"), n(&uv, "tx")),
        "unix socket = what the unix peer saw"
    );
    let pair: Vec<_> = unix.iter().filter(|s| s.peer.as_deref() == Some("(unnamed)")).collect();
    let a: Vec<_> = pair
        .iter()
        .filter(|s| i64::from(s.fd) == n(&me["pair"], "a_fd") as i64)
        .collect();
    let b: Vec<_> = pair
        .iter()
        .filter(|s| i64::from(s.fd) == n(&me["pair"], "b_fd") as i64)
        .collect();
    assert_eq!((a.len(), b.len()), (1, 1), "socketpair ends by fd: {pair:#?}");
    assert_eq!((a[0].tx_bytes, a[0].rx_bytes), (pa, pb), "socketpair end a");
    assert_eq!((b[0].tx_bytes, b[0].rx_bytes), (pb, pa), "socketpair end b");

    let unix_tx = n(&uv, "rx") + pa + pb;
    let unix_rx = n(&uv, "tx") + pa + pb;
    assert_eq!(
        (p.unix.tx_bytes, p.unix.rx_bytes, p.unix.sockets),
        (unix_tx, unix_rx, 3),
        "unix section: {:?}",
        p.unix
    );

    let t = inet_connections(p);
    assert_eq!(t.len(), 1);
    assert_eq!((t[0].tx_bytes, t[0].rx_bytes), (n(&tv, "rx"), n(&tv, "tx")));

    let (want_tx, want_rx) = if include {
        (n(&tv, "rx") + unix_tx, n(&tv, "tx") + unix_rx)
    } else {
        (n(&tv, "rx"), n(&tv, "tx"))
    };
    assert_eq!(
        (p.totals.tx_bytes, p.totals.rx_bytes),
        (want_tx, want_rx),
        "process totals with unix_in_totals={include}"
    );
    assert_eq!(
        (r.report.totals.tx_bytes, r.report.totals.rx_bytes),
        (want_tx, want_rx),
        "run totals with --unix={include}"
    );
    assert_totals_consistent(&r);
}

#[test]
fn unix_domain_traffic_is_reported_exactly_but_left_out_of_totals_without_unix_flag() {
    unix_run(false);
}

#[test]
fn unix_domain_traffic_is_counted_in_totals_with_unix_flag() {
    unix_run(true);
}

// ---------------------------------------------------------------------------------------
// 9. exit status
// ---------------------------------------------------------------------------------------

#[test]
fn exit_status_of_the_command_is_passed_through() {
    let r = run(&[], &["sh", "-c", "exit 7"]);
    assert_eq!(r.code, 7, "stderr:\n{}", r.stderr);
    assert_eq!(r.report.exit_status, Some(7));
}

#[test]
fn command_killed_by_sigterm_gives_143() {
    let r = run(&[], &["sh", "-c", "kill -TERM $$"]);
    assert_eq!(r.code, 143, "stderr:\n{}", r.stderr);
    assert_eq!(r.report.exit_status, Some(143));
}

#[test]
fn missing_command_gives_127_with_a_clear_message() {
    let missing = "/nonexistent/sockmeter-e2e-no-such-command";
    let json = scratch_path("missing.json");
    let out = Command::new(harness::sockmeter())
        .arg("run")
        .arg("--json")
        .arg(&json)
        .arg("--")
        .arg(missing)
        .stdin(Stdio::null())
        .output()
        .expect("spawn sockmeter");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(127), "stderr:\n{stderr}");
    let line = stderr
        .lines()
        .find(|l| l.contains(missing))
        .unwrap_or_else(|| panic!("no message naming {missing}:\n{stderr}"));
    assert!(
        line.contains("not found") || line.contains("No such file"),
        "message says it was not found: {line}"
    );
}

// ---------------------------------------------------------------------------------------
// 10. SOCKMETER_REPORT without the reporter; a malformed variable
// ---------------------------------------------------------------------------------------

#[test]
fn report_file_mode_without_reporter_writes_one_exact_report_per_process() {
    let dir = scratch_path("reports");
    std::fs::create_dir_all(&dir).unwrap();
    let pattern = dir.join("r-%p.json").to_string_lossy().into_owned();
    let shim = harness::shim().to_string_lossy().into_owned();
    let reply = 65_537u64;
    let peer = Peer::start("tcp_peer.py", &["--mode", "reply", "--reply", &reply.to_string()]);
    let port = peer.port.to_string();
    let out = direct(
        &[
            python(),
            &script("tcp_client.py"),
            "--port",
            &port,
            "--sizes",
            "100,200000",
        ],
        &[("LD_PRELOAD", &shim), ("SOCKMETER_REPORT", &pattern)],
    );
    let v = peer.finish();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "client failed:\n{stdout}\n{stderr}");
    assert_eq!(stderr, "", "the shim printed nothing");
    assert_peer_complete(&v, 1);
    let me = own_lines(&stdout).pop().expect("client account");
    let pid = n(&me, "pid");

    let files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        files,
        vec![format!("r-{pid}.json")],
        "one report file, named by the pid"
    );
    let text = std::fs::read_to_string(dir.join(format!("r-{pid}.json"))).unwrap();
    let report: sockmeter::report::Report =
        serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("report file {text:?}: {e}"));
    assert_eq!(report.processes.len(), 1);
    let p = &report.processes[0];
    assert_eq!(u64::from(p.pid), pid);
    assert_eq!(p.end, "exit");
    let conns = inet_connections(p);
    assert_eq!(conns.len(), 1, "{:#?}", p.sockets);
    assert_eq!(conns[0].local.as_deref(), Some(s(&me, "local")));
    assert_eq!(conns[0].peer.as_deref(), Some(format!("127.0.0.1:{port}").as_str()));
    assert_eq!((conns[0].tx_bytes, conns[0].rx_bytes), (n(&v, "rx"), n(&v, "tx")));
    assert_eq!(
        (p.totals.tx_bytes, p.totals.rx_bytes, p.totals.connections),
        (n(&v, "rx"), n(&v, "tx"), 1)
    );
    assert_eq!(
        (report.totals.tx_bytes, report.totals.rx_bytes),
        (n(&v, "rx"), n(&v, "tx"))
    );
}

#[test]
fn malformed_sockmeter_interval_gives_one_stderr_line_and_changes_nothing_else() {
    let shim = harness::shim().to_string_lossy().into_owned();
    let prog = script("exit_with.py");
    let plain = direct(&[python(), &prog, "3"], &[]);
    let metered = direct(
        &[python(), &prog, "3"],
        &[("LD_PRELOAD", &shim), ("SOCKMETER_INTERVAL", "soon")],
    );
    assert_eq!(plain.status.code(), Some(3));
    assert_eq!(metered.status.code(), Some(3), "exit status unchanged");
    assert_eq!(metered.stdout, plain.stdout, "stdout unchanged");
    let plain_err = String::from_utf8_lossy(&plain.stderr);
    let err = String::from_utf8_lossy(&metered.stderr);
    let (ours, rest): (Vec<&str>, Vec<&str>) = err.lines().partition(|l| l.contains("SOCKMETER_INTERVAL"));
    assert_eq!(ours.len(), 1, "exactly one line names SOCKMETER_INTERVAL:\n{err}");
    assert!(ours[0].contains("soon"), "the line shows the bad value: {}", ours[0]);
    assert_eq!(
        rest,
        plain_err.lines().collect::<Vec<_>>(),
        "nothing else on stderr but the program's own"
    );

    // The bad value falls back to the default and metering still works: with a network
    // exchange and a report file, the counts are still exact.
    let dir = scratch_path("reports-bad-interval");
    std::fs::create_dir_all(&dir).unwrap();
    let pattern = dir.join("r-%p.json").to_string_lossy().into_owned();
    let peer = Peer::start("tcp_peer.py", &["--mode", "reply", "--reply", "999"]);
    let port = peer.port.to_string();
    let out = direct(
        &[python(), &script("tcp_client.py"), "--port", &port, "--sizes", "4096"],
        &[
            ("LD_PRELOAD", &shim),
            ("SOCKMETER_INTERVAL", "soon"),
            ("SOCKMETER_REPORT", &pattern),
        ],
    );
    let v = peer.finish();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "client failed: {err}");
    assert_eq!(err.lines().count(), 1, "one line for the bad variable:\n{err}");
    assert!(err.contains("SOCKMETER_INTERVAL"));
    assert_peer_complete(&v, 1);
    let me = own_lines(&String::from_utf8_lossy(&out.stdout))
        .pop()
        .expect("client account");
    let text = std::fs::read_to_string(dir.join(format!("r-{}.json", n(&me, "pid")))).expect("report file");
    let report: sockmeter::report::Report = serde_json::from_str(text.trim()).expect("report JSON");
    assert_eq!(
        (report.totals.tx_bytes, report.totals.rx_bytes),
        (n(&v, "rx"), n(&v, "tx"))
    );
}

// ---------------------------------------------------------------------------------------
// 11. MSG_PEEK
// ---------------------------------------------------------------------------------------

#[test]
fn msg_peek_is_not_counted_rx_counts_each_byte_once() {
    let reply = 50_000u64;
    let peer = Peer::start("tcp_peer.py", &["--mode", "reply", "--reply", &reply.to_string()]);
    let port = peer.port.to_string();
    let r = run(
        &[],
        &[
            python(),
            &script("tcp_client.py"),
            "--port",
            &port,
            "--sizes",
            "300",
            "--peek",
            "4096",
        ],
    );
    let v = peer.finish();
    assert_ok(&r);
    assert_peer_complete(&v, 1);
    let me = own(&r);
    let peeked = me["peeked"].as_array().unwrap();
    assert_eq!(peeked.len(), 2);
    assert!(
        peeked.iter().all(|p| p.as_u64().unwrap() > 0),
        "the client really peeked: {me}"
    );
    assert_eq!(n(&me, "rx"), n(&v, "tx"));

    let p = image(&r, n(&me, "pid"));
    let conns = inet_connections(p);
    assert_eq!(conns.len(), 1, "{:#?}", p.sockets);
    assert_eq!(conns[0].rx_bytes, n(&v, "tx"), "peeked bytes are not counted again");
    assert_eq!(conns[0].tx_bytes, n(&v, "rx"));
    assert_eq!((p.totals.tx_bytes, p.totals.rx_bytes), (n(&v, "rx"), n(&v, "tx")));
}
