//! The data path in C: fortified reads, an epoll server with EAGAIN, sendfile, readv/writev,
//! sendmmsg/recvmmsg, the dup family and close_range, non-socket I/O.

use super::*;

// ---- 1. _FORTIFY_SOURCE: __read_chk, __recv_chk, __recvfrom_chk ----

#[test]
fn fortified_checked_reads_are_counted_exactly() {
    let bin = prog("fortify", &["-D_FORTIFY_SOURCE=2"]);
    let syms = imports(&bin);
    for f in ["__read_chk", "__recv_chk", "__recvfrom_chk"] {
        assert!(syms.iter().any(|s| s == f), "{bin} does not import {f}: {syms:?}");
    }
    for f in ["read", "recv", "recvfrom"] {
        assert!(
            !syms.iter().any(|s| s == f),
            "{bin} imports plain {f}, so not every read is checked: {syms:?}"
        );
    }
    let server = Oracle::server(1, "e,s300001");
    let r = metered(&[&bin, &server.port.to_string(), "250000"]);
    let seen = server.conns();
    assert_eq!(seen.len(), 1);
    let seen = seen[0];
    assert_eq!((seen.rx, seen.tx), (250000, 300001), "the exchange itself went wrong");

    let p = only_process(&r);
    let s = by_local(&r, p, seen.port);
    assert_eq!(s.role, "connected");
    assert_mirror(&r, s, &seen);
    assert_sum_mirror(&r, Some(p), &[seen]);
    // Each checked variant really delivered bytes (the program's own tally), so each one's
    // share is in the count above.
    let via = fields(&r.stdout, "via");
    let (a, b, c) = (get(&via, "read"), get(&via, "recv"), get(&via, "recvfrom"));
    assert!(a > 0 && b > 0 && c > 0, "every checked read must return data: {via:?}");
    assert_eq!(a + b + c, seen.tx);
}

// ---- 2. nonblocking epoll server: accept4, EAGAIN, partial writes ----

#[test]
fn epoll_server_counts_each_connection_and_eagain_is_no_error() {
    let bin = prog("epoll_server", &[]);
    let dir = fresh_dir("epoll");
    let portfile = dir.join("port");
    let sizes = [1000u64, 50000, 123457, 7];
    let scripts: Vec<String> = sizes.iter().map(|n| format!("r6,s{n},w,f,e")).collect();
    let dir_s = path_str(&dir);
    let clients = Oracle::clients(
        &portfile,
        &scripts,
        &[("PEER_RCVBUF", "4096"), ("PEER_MARKER_DIR", &dir_s)],
    );
    let r = metered(&[&bin, &path_str(&portfile), &sizes.len().to_string(), &dir_s]);
    let seen = clients.conns();
    assert_eq!(seen.len(), sizes.len(), "one verdict per client");
    let mut sent: Vec<u64> = seen.iter().map(|s| s.tx).collect();
    sent.sort_unstable();
    let mut want = sizes.to_vec();
    want.sort_unstable();
    assert_eq!(sent, want, "the clients sent what they were told to");

    let p = only_process(&r);
    let served: HashMap<u16, HashMap<String, String>> = r
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("served "))
        .map(|l| {
            let (port, rest) = l.split_once(' ').expect("served line");
            (num(port) as u16, kv(rest))
        })
        .collect();
    let (mut eagain_rx, mut eagain_tx, mut partial) = (0, 0, 0);
    for c in &seen {
        let own = served
            .get(&c.port)
            .unwrap_or_else(|| panic!("server never served client port {}{}", c.port, ctx(&r)));
        // The server's own view agrees with the client's (a check on the test itself).
        assert_eq!(
            (get(own, "rx"), get(own, "tx")),
            (c.tx, c.rx),
            "server and client disagree"
        );
        let s = by_peer(&r, p, c.port);
        assert_eq!(s.role, "accepted", "{}", ctx(&r));
        assert_mirror(&r, s, c);
        assert_eq!(
            (s.rx_calls, s.tx_calls),
            (get(own, "rxcalls"), get(own, "txcalls")),
            "calls on the connection from port {} (EAGAIN returns included), as the server counted them{}",
            c.port,
            ctx(&r)
        );
        assert!(
            get(own, "eagain_rx") >= 1 && get(own, "eagain_tx") >= 1,
            "the scenario must hit EAGAIN both ways: {own:?}"
        );
        eagain_rx += get(own, "eagain_rx");
        eagain_tx += get(own, "eagain_tx");
        partial += get(own, "partial");
    }
    assert!(
        eagain_rx >= 4 && eagain_tx >= 4 && partial >= 1,
        "EAGAIN rx {eagain_rx}, tx {eagain_tx}, partial {partial}"
    );
    let conns: Vec<&SocketReport> = p.sockets.iter().filter(|s| s.is_connection()).collect();
    assert_eq!(conns.len(), sizes.len(), "no other connections{}", ctx(&r));
    assert_eq!(p.totals.errors, 0, "EAGAIN is not an error{}", ctx(&r));
    let listeners: Vec<&SocketReport> = p.sockets.iter().filter(|s| s.role == "listening").collect();
    assert_eq!(listeners.len(), 1, "{}", ctx(&r));
    assert_eq!(
        (listeners[0].tx_bytes, listeners[0].rx_bytes, listeners[0].errors),
        (0, 0, 0)
    );
    assert_sum_mirror(&r, Some(p), &seen);
}

// ---- 3. sendfile / sendfile64 ----

#[test]
fn sendfile_is_counted_exactly() {
    let bin = prog("sendfile_server", &[]);
    let syms = imports(&bin);
    assert!(
        syms.iter().any(|s| s == "sendfile") && syms.iter().any(|s| s == "sendfile64"),
        "{syms:?}"
    );
    let dir = fresh_dir("sendfile");
    let portfile = dir.join("port");
    let size: u64 = 3_000_017;
    let client = Oracle::clients(&portfile, &["s100,e".to_string()], &[]);
    let r = metered(&[
        &bin,
        &path_str(&portfile),
        &path_str(&dir.join("payload")),
        &size.to_string(),
    ]);
    let seen = client.conns();
    assert_eq!(seen.len(), 1);
    let seen = seen[0];
    assert_eq!((seen.rx, seen.tx), (size, 100), "the client got the whole file");

    let p = only_process(&r);
    let s = by_peer(&r, p, seen.port);
    assert_eq!(s.role, "accepted");
    assert_mirror(&r, s, &seen);
    let line = r.stdout.lines().find(|l| l.starts_with("sent ")).expect("sent line");
    let w: Vec<&str> = line.split_whitespace().collect();
    let (calls, calls64) = (num(w[6]), num(w[9]));
    assert!(
        calls >= 1 && calls64 >= 1,
        "both sendfile and sendfile64 were used: {line}"
    );
    assert_eq!(
        s.tx_calls,
        calls + calls64,
        "every sendfile call is one send call{}",
        ctx(&r)
    );
    assert_eq!(
        (p.totals.tx_bytes, p.totals.rx_bytes),
        (size, 100),
        "process totals (the file itself is not traffic){}",
        ctx(&r)
    );
}

// ---- 4. readv / writev with several iovecs ----

#[test]
fn readv_writev_with_several_iovecs_are_exact() {
    let bin = prog("iov", &[]);
    let server = Oracle::server(1, "e,s250003");
    let r = metered(&[&bin, &server.port.to_string()]);
    let seen = server.conns();
    assert_eq!(seen.len(), 1);
    let seen = seen[0];
    // "wrote N in W writev, read M in R readv"
    let w: Vec<&str> = r.stdout.lines().next().expect("line").split_whitespace().collect();
    let (wrote, wcalls, read, rcalls) = (num(w[1]), num(w[3]), num(w[6]), num(w[8]));
    assert_eq!(
        (wrote, read),
        (seen.rx, seen.tx),
        "program and peer agree:\n{}",
        r.stdout
    );
    assert_eq!(seen.tx, 250003);

    let p = only_process(&r);
    let s = by_local(&r, p, seen.port);
    assert_mirror(&r, s, &seen);
    assert_eq!(
        (s.tx_calls, s.rx_calls),
        (wcalls, rcalls),
        "writev/readv calls as the program made them{}",
        ctx(&r)
    );
}

// ---- 5. sendmmsg / recvmmsg over UDP ----

#[test]
fn sendmmsg_recvmmsg_udp_exact_per_peer() {
    let bin = prog("mmsg", &[]);
    let one = Oracle::udp(4, "300,5000,12");
    let two = Oracle::udp(3, "65000,8");
    let (p1, p2) = (one.port, two.port);
    let r = metered(&[&bin, &p1.to_string(), &p2.to_string(), "5"]);
    let (u1, u2) = (one.udp_verdict(), two.udp_verdict());
    assert_eq!(
        (u1.rxd, u1.txd, u2.rxd, u2.txd),
        (4, 3, 3, 2),
        "datagrams each peer got and sent"
    );
    assert_eq!(u1.sender, u2.sender, "one metered socket sent to both");

    let p = only_process(&r);
    let s = by_local(&r, p, u1.sender);
    assert_eq!(
        (s.family.as_str(), s.proto.as_str(), s.role.as_str()),
        ("inet", "udp", "datagram"),
        "{}",
        ctx(&r)
    );
    assert_eq!(
        (s.tx_bytes, s.rx_bytes),
        (u1.rx + u2.rx, u1.tx + u2.tx),
        "socket bytes{}",
        ctx(&r)
    );
    assert_eq!(s.errors, 0);
    let own = r.stdout.lines().next().expect("mmsg line");
    let w: Vec<&str> = own.split_whitespace().collect();
    // "sent 7 datagrams in S sendmmsg, received 5 (B bytes) in R recvmmsg"
    let (scalls, rbytes, rcalls) = (num(w[4]), num(w[8].trim_start_matches('(')), num(w[11]));
    assert_eq!(rbytes, u1.tx + u2.tx, "program and peers agree: {own}");
    assert_eq!(
        (s.tx_calls, s.rx_calls),
        (scalls, rcalls),
        "one call per sendmmsg/recvmmsg{}",
        ctx(&r)
    );
    assert_eq!(s.peers.len(), 2, "two peers{}", ctx(&r));
    for (port, u) in [(p1, u1), (p2, u2)] {
        let pr = s
            .peers
            .iter()
            .find(|x| Some(x.peer.clone()) == v4(port))
            .unwrap_or_else(|| panic!("no peer entry for {port}{}", ctx(&r)));
        assert_eq!(
            (pr.tx_bytes, pr.rx_bytes),
            (u.rx, u.tx),
            "per-peer bytes for {port}{}",
            ctx(&r)
        );
    }
}

// ---- 6. dup, dup2, dup3, F_DUPFD and close_range; fd reuse ----

#[test]
fn dup_aliases_and_close_range_keep_one_socket_and_reused_fds_are_new_sockets() {
    let bin = prog("dups", &[]);
    let server = Oracle::server(3, "r10000,s5000,e");
    let r = metered(&[&bin, &server.port.to_string()]);
    let seen: HashMap<u16, Seen> = server.conns().into_iter().map(|s| (s.port, s)).collect();
    assert_eq!(seen.len(), 3);

    let p = only_process(&r);
    let tcp: Vec<&SocketReport> = p.sockets.iter().filter(|s| s.proto == "tcp").collect();
    assert_eq!(
        tcp.len(),
        3,
        "A (with its four aliases), B and C, nothing else{}",
        ctx(&r)
    );
    let mut socks = HashMap::new();
    for name in ["A", "B", "C"] {
        let f = fields(&r.stdout, &format!("sock {name} "));
        let port = get(&f, "port") as u16;
        let c = seen
            .get(&port)
            .unwrap_or_else(|| panic!("peer never saw {name} (port {port})"));
        let s = by_local(&r, p, port);
        assert_mirror(&r, s, c);
        assert_eq!(s.role, "connected");
        assert_eq!(
            s.fd as u64,
            get(&f, "fd"),
            "{name} is reported under the fd it was opened on{}",
            ctx(&r)
        );
        assert!(!s.adopted, "{name} was seen being created{}", ctx(&r));
        assert!(s.closed_at.is_some(), "{name} is closed{}", ctx(&r));
        socks.insert(name, s);
    }
    // The test's own design, as the peer saw it.
    let a_seen = seen[&(get(&fields(&r.stdout, "sock A "), "port") as u16)];
    assert_eq!((a_seen.rx, a_seen.tx), (10000 + 111 + 333 + 444, 5000));
    let (a, b, c) = (socks["A"], socks["B"], socks["C"]);
    assert_eq!(a.fd, b.fd, "B reused A's fd number while A's aliases were open");
    assert_eq!(a.fd, c.fd, "C reused A's fd number after A was gone");
    // A closes only with its last alias: after B (opened and closed while aliases of A were
    // still open), before C.
    let (a_closed, b_closed) = (a.closed_at.as_deref().unwrap(), b.closed_at.as_deref().unwrap());
    assert!(
        a_closed >= b_closed,
        "A closed at {a_closed}, before B closed at {b_closed}{}",
        ctx(&r)
    );
    assert!(
        c.opened_at.as_str() >= a_closed,
        "C opened at {} before A closed at {a_closed}",
        c.opened_at
    );
}

// ---- 7. non-socket I/O is never counted ----

#[test]
fn files_pipes_and_dev_null_are_never_counted() {
    let bin = prog("nonsock", &[]);
    let dir = fresh_dir("nonsock");
    let server = Oracle::server(1, "r5000,s7000,e");
    let r = metered(&[&bin, &server.port.to_string(), &path_str(&dir.join("data"))]);
    let seen = server.conns();
    assert_eq!(seen.len(), 1);
    let seen = seen[0];
    assert_eq!((seen.rx, seen.tx), (5017, 7000));

    let p = only_process(&r);
    assert_eq!(p.sockets.len(), 1, "the one TCP socket and nothing else{}", ctx(&r));
    let s = by_local(&r, p, seen.port);
    assert_mirror(&r, s, &seen);
    assert_sum_mirror(&r, Some(p), &[seen]);
    let calls = fields(&r.stdout, "socket calls");
    assert_eq!(
        (p.totals.tx_calls, p.totals.rx_calls),
        (get(&calls, "tx"), get(&calls, "rx")),
        "only socket calls are calls{}",
        ctx(&r)
    );
    assert_eq!(
        (p.unix.tx_bytes, p.unix.rx_bytes, p.unix.sockets),
        (0, 0, 0),
        "pipes are not Unix sockets{}",
        ctx(&r)
    );
    // The regular file really took the socket's fd number before and after it.
    let sock_fd = r
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("socket fd "))
        .and_then(|l| l.split_whitespace().next())
        .map(num)
        .expect("socket fd line");
    let file_fds: Vec<u64> = r
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("file fd "))
        .map(num)
        .collect();
    assert!(
        file_fds.first() == Some(&sock_fd) && file_fds.last() == Some(&sock_fd),
        "fd reuse scenario: socket {sock_fd}, files {file_fds:?}"
    );
}
