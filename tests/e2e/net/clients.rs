//! Clients and servers against unmetered peers: curl, python3 TCP and UDP (IPv4 and IPv6),
//! a metered TCP server.

use super::*;

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

    assert_mirrors_peer(&r, Some(p), &v);
    assert_eq!((p.totals.connections, r.report.totals.connections), (1, 1));

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
    assert_mirrors_peer(&r, Some(p), &v);
    assert_eq!(p.totals.connections, 1);
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
    assert_eq!(mirror(pu), (n(&me["unconnected"], "tx"), n(&me["unconnected"], "rx")));
    assert_eq!(mirror(pc), (n(&me["connected"], "tx"), n(&me["connected"], "rx")));

    let p = image(&r, n(&me, "pid"));
    let udp: Vec<&SocketReport> = p.sockets.iter().filter(|s| is_inet(s) && s.proto == "udp").collect();
    assert_eq!(udp.len(), 2, "two UDP sockets: {:#?}", p.sockets);

    // The sendto() socket: role datagram, one peer with exact per-peer counts.
    let dg: Vec<_> = udp.iter().filter(|s| s.role == "datagram").collect();
    assert_eq!(dg.len(), 1, "one datagram-role socket: {udp:#?}");
    let dg = dg[0];
    assert_eq!(dg.family, want_family);
    assert_eq!(
        dg.local,
        None,
        "an implicitly bound datagram socket (its first sendto() picked the port {}) has no \
         local address in the report: the shim does not call getsockname() on the per-byte \
         path, by design; the per-peer entry below identifies the traffic",
        n(&me["unconnected"], "local_port")
    );
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

    assert_mirrors_peer(&r, Some(p), &v);
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
    assert_mirrors_peer(&r, Some(p), &v);
    assert_eq!((p.totals.connections, r.report.totals.connections), (3, 3));
}
