//! Process trees: forked children, a child using an inherited socket, a shell pipeline, exec.

use super::*;

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
            mirror(c),
            "process {pid} has exactly its own bytes"
        );
    }
    assert_mirrors_peer(&r, None, &v);
}

/// Twelve children forked at once, each forking a grandchild: every process is reported with
/// exactly its own connection's bytes (most hand their regions to the first shipper, some may
/// start their own when the hand-over queue is full; either way nothing is lost).
#[test]
fn a_burst_of_forked_children_and_grandchildren_is_exact_per_process() {
    let child_sizes: Vec<u64> = (0..12).map(|i| 2_000 + 1_000 * i).collect();
    let cs = child_sizes.iter().map(u64::to_string).collect::<Vec<_>>().join(",");
    let peer = Peer::start("tcp_peer.py", &["--mode", "echo", "--conns", "25"]);
    let port = peer.port.to_string();
    let r = run(
        &[],
        &[
            python(),
            &script("fork_clients.py"),
            "--port",
            &port,
            "--parent-size",
            "500",
            "--child-sizes",
            &cs,
            "--grandchildren",
        ],
    );
    let v = peer.finish();
    assert_ok(&r);
    assert_peer_complete(&v, 25);
    let me = own(&r);
    assert!(
        me["child_status"].as_array().unwrap().iter().all(|c| c == 0),
        "children failed: {me}"
    );
    assert_eq!(r.report.processes.len(), 25, "parent, 12 children, 12 grandchildren");
    for p in &r.report.processes {
        assert_eq!(p.end, "exit", "process {}", p.pid);
        let own_conns: Vec<_> = inet_connections(p).into_iter().filter(|s| !s.inherited).collect();
        assert_eq!(
            own_conns.len(),
            1,
            "process {} made one connection: {:#?}",
            p.pid,
            p.sockets
        );
        let sock = own_conns[0];
        let c = conn_by_peer(&v, sock.local.as_deref().expect("local address"));
        assert_eq!(
            (sock.tx_bytes, sock.rx_bytes),
            mirror(c),
            "process {}: its connection as the peer saw it: {c}",
            p.pid
        );
        assert_eq!((p.totals.tx_bytes, p.totals.rx_bytes), mirror(c));
    }
    assert_mirrors_peer(&r, None, &v);
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
    assert_mirrors_peer(&r, None, &v);
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
    assert_eq!((cc[0].tx_bytes, cc[0].rx_bytes), mirror(&hv));
    assert_eq!((curl.totals.tx_bytes, curl.totals.rx_bytes), mirror(&hv));

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
    assert_eq!((pc[0].tx_bytes, pc[0].rx_bytes), mirror(&sv));
    assert_eq!((py.totals.tx_bytes, py.totals.rx_bytes), mirror(&sv));

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
    assert_eq!(
        harness::totals(&r),
        (n(&hv, "rx") + n(&sv, "rx"), n(&hv, "tx") + n(&sv, "tx"))
    );
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
    assert_mirrors_peer(&r, None, &v);
}

/// A host that forks a child per connection, one after another (a forking server, a shell
/// loop): the shipper keeps a finished child's reporter connection for the next child, which
/// says its own hello on it. Seen from the kernel (`strace -f` of the command and everything
/// it starts, the shipper included): a handful of connections to the reporter for 30 children,
/// not one each as before; and every child is still a process of its own in the report, with
/// exactly the bytes the server saw.
#[test]
fn forked_children_one_after_another_share_the_shippers_reporter_connections() {
    let n = 30u64;
    let size = 700u64;
    let reply = 300usize;
    // The parent makes a connection first, so it has its shipper before its first fork.
    let counter = harness::Counter::start(n + 1, reply);
    let (go, done) = (scratch_path("go"), scratch_path("done"));
    std::fs::write(&go, b"").unwrap();
    let trace = scratch_path("connects.txt");
    let prog = harness::compile_c("manyconns", &[]).display().to_string();
    let r = harness::run_in(
        harness::Mode::Shipper,
        &[],
        &[
            "strace",
            "-f",
            "-qq",
            "-e",
            "trace=connect",
            "-o",
            &trace.display().to_string(),
            &prog,
            &counter.port.to_string(),
            &n.to_string(),
            &size.to_string(),
            &go.display().to_string(),
            &done.display().to_string(),
            "2",
        ],
        &[],
    );
    let seen = counter.finish();
    assert_ok(&r);
    assert_eq!(seen.conns, n + 1);
    let text = std::fs::read_to_string(&trace).unwrap();
    let to_reporter = text
        .lines()
        .filter(|l| l.contains("AF_UNIX") && l.contains("sockmeter.sock"))
        .count();
    assert!(
        (1..=5).contains(&to_reporter),
        "{to_reporter} connections to the reporter for {n} children (one each before):\n{text}"
    );
    r.assert_each_forked_child(n, (size, reply as u64, 1));
    assert_eq!((r.report.totals.tx_bytes, r.report.totals.rx_bytes), (seen.rx, seen.tx));
}
