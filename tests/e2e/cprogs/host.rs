//! The host never notices, in C: a forking server whose workers _exit, a static binary, fd
//! sweeps over the shim's own fds (also from another thread), errno and results.

use super::*;

// ---- 8. forking server, workers end with _exit ----

#[test]
fn forked_workers_that_exit_with_underscore_exit_are_reported_through_the_parents_shipper() {
    let bin = prog("forkserver", &[]);
    let dir = fresh_dir("fork");
    let portfile = dir.join("port");
    let scripts: Vec<String> = [1000, 25000, 77777].iter().map(|n| format!("s{n},w,e")).collect();
    let clients = Oracle::clients(&portfile, &scripts, &[]);
    let r = metered(&[&bin, &path_str(&portfile), "3"]);
    let seen = clients.conns();
    assert_eq!(seen.len(), 3);

    let parents: Vec<&ProcessReport> = r.report.processes.iter().filter(|p| p.origin == "start").collect();
    assert_eq!(parents.len(), 1, "{}", ctx(&r));
    let parent = parents[0];
    let workers: Vec<&ProcessReport> = r.report.processes.iter().filter(|p| p.origin == "fork").collect();
    assert_eq!(workers.len(), 3, "one forked worker per client{}", ctx(&r));
    let lines: Vec<Vec<&str>> = r
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("worker "))
        .map(|l| l.split_whitespace().collect())
        .collect();
    let pid_of: HashMap<u16, u32> = lines.iter().map(|w| (num(w[2]) as u16, num(w[0]) as u32)).collect();
    // Each worker handed its region to the parent's shipper: none started a shipper (a
    // process of its own) when it first touched its socket.
    for w in &lines {
        assert_eq!(w.get(3..5), Some(&["children", "0"][..]), "worker {:?}{}", w, ctx(&r));
    }
    for c in &seen {
        assert_eq!((c.rx, c.tx), (2 * c.tx + 100, c.tx), "the worker's reply");
        let pid = *pid_of
            .get(&c.port)
            .unwrap_or_else(|| panic!("no worker served port {}{}", c.port, ctx(&r)));
        let w = workers
            .iter()
            .find(|p| p.pid == pid)
            .unwrap_or_else(|| panic!("worker {pid} missing from the report{}", ctx(&r)));
        assert_eq!(w.ppid, parent.pid, "worker {pid}'s parent{}", ctx(&r));
        assert_eq!(w.end, "exit", "worker {pid} said goodbye from _exit{}", ctx(&r));
        let s = by_peer(&r, w, c.port);
        assert_mirror(&r, s, c);
        assert_eq!(
            (w.totals.tx_bytes, w.totals.rx_bytes),
            (c.rx, c.tx),
            "worker {pid} totals{}",
            ctx(&r)
        );
    }
    assert_eq!(
        (parent.totals.tx_bytes, parent.totals.rx_bytes),
        (0, 0),
        "the parent moved no bytes{}",
        ctx(&r)
    );
    assert_sum_mirror(&r, None, &seen);
}

// ---- 9. a statically linked program ----

#[test]
fn static_binary_is_warned_about_and_still_runs() {
    let bin = prog("static_hello", &["-static"]);
    let r = harness::run(&[], &[&bin, "arg-one"]);
    assert_eq!(r.code, 7, "the program's exit status is propagated{}", ctx(&r));
    assert!(r.stdout.contains("static-hello arg-one"), "the program ran{}", ctx(&r));
    let warn = r
        .stderr
        .lines()
        .position(|l| l.starts_with("sockmeter:") && l.contains("static") && l.contains(&bin))
        .unwrap_or_else(|| panic!("no warning naming the static binary on stderr{}", ctx(&r)));
    let own = r
        .stderr
        .lines()
        .position(|l| l == "static-hello on stderr")
        .unwrap_or_else(|| panic!("the program's stderr is missing{}", ctx(&r)));
    assert!(warn < own, "the warning comes before the program runs{}", ctx(&r));
    assert!(r.report.processes.is_empty(), "nothing could be metered{}", ctx(&r));
}

// ---- 10. the host closes every fd, or dup2s over it ----

fn wipe_fds(mode: &str) {
    let bin = prog("closeloop", &[]);
    let server = Oracle::server(2, "r3000,s2000,e");
    let r = metered(&[&bin, &server.port.to_string(), mode]);
    let seen: HashMap<u16, Seen> = server.conns().into_iter().map(|s| (s.port, s)).collect();
    assert_eq!(seen.len(), 2);
    let rep = fields(&r.stdout, "reporter");
    let rep_fd: i64 = rep["fd"].parse().expect("fd");
    assert!(
        (3..1024).contains(&rep_fd),
        "the reporter connection was open inside the wiped range when the loop ran: {rep:?}"
    );

    let p = only_process(&r);
    assert_eq!(p.end, "exit", "the process's goodbye arrived{}", ctx(&r));
    assert_eq!(
        p.sockets.iter().filter(|s| s.family == "inet").count(),
        2,
        "A and B{}",
        ctx(&r)
    );
    let a_port = get(&fields(&r.stdout, "sock A "), "port") as u16;
    let b = fields(&r.stdout, "sock B ");
    let b_port = get(&b, "port") as u16;
    let (sa, sb) = (seen[&a_port], seen[&b_port]);
    assert_eq!(
        (sa.rx, sa.tx, sb.rx, sb.tx),
        (3000, 2000, 4234, 2000),
        "the exchanges themselves"
    );
    let a = by_local(&r, p, a_port);
    assert_mirror(&r, a, &sa);
    assert!(a.closed_at.is_some(), "A was closed by the loop{}", ctx(&r));
    let bs = by_local(&r, p, b_port);
    assert_mirror(&r, bs, &sb);
    assert_eq!(bs.fd as u64, get(&b, "fd"));
    assert_sum_mirror(&r, Some(p), &[sa, sb]);
}

#[test]
fn closing_every_fd_keeps_the_report_and_later_counts_exact() {
    wipe_fds("close");
}

#[test]
fn close_range_over_every_fd_keeps_the_report_and_later_counts_exact() {
    wipe_fds("range");
}

#[test]
fn dup2_over_every_fd_keeps_the_report_and_later_counts_exact() {
    wipe_fds("dup2");
}

/// The same property with a second thread at work: while one thread keeps opening and
/// closing sockets (so the reporting thread keeps sending, every 10 ms), the other keeps
/// closing the reporter connection's fd wherever the shim has moved it.
#[test]
fn closing_the_reporter_fd_while_another_thread_works_keeps_the_report() {
    let bin = prog("fdstorm", &["-pthread"]);
    let server = Oracle::server(1, "r3000,s2000,e");
    let r = harness::run(&["--interval", "10"], &[&bin, &server.port.to_string(), "4000"]);
    let seen = server.conns();
    assert_eq!(r.code, 0, "fdstorm failed{}", ctx(&r));
    assert_eq!(seen.len(), 1);
    let seen = seen[0];
    assert_eq!((seen.rx, seen.tx), (4234, 2000), "the exchange itself");
    let storm = fields(&r.stdout, "storm");
    assert!(
        get(&storm, "closed") >= 1,
        "the storm never found the reporter connection: {storm:?}"
    );
    assert!(
        !r.stderr.contains("cannot reach the reporter"),
        "the shim lost its reporter connection to the host's close(){}",
        ctx(&r)
    );
    let p = only_process(&r);
    assert_eq!(p.end, "exit", "the process's goodbye arrived{}", ctx(&r));
    let b = fields(&r.stdout, "sock B ");
    let s = by_local(&r, p, get(&b, "port") as u16);
    assert_mirror(&r, s, &seen);
    assert_sum_mirror(&r, Some(p), &[seen]);
}

// ---- 11. results and errno are the program's own ----

#[test]
fn errno_and_return_values_are_untouched() {
    let bin = prog("errnos", &[]);
    let dir = fresh_dir("errnos");
    let d = path_str(&dir);
    let plain = Command::new(&bin)
        .arg(&d)
        .without_sockmeter_env()
        .stdin(Stdio::null())
        .output()
        .expect("run errnos");
    assert!(
        plain.status.success(),
        "unmetered errnos failed: {}",
        String::from_utf8_lossy(&plain.stderr)
    );
    let plain = String::from_utf8(plain.stdout).expect("utf-8");
    for (what, e) in [
        ("send on closed fd", "EBADF"),
        ("recv on empty nonblocking udp", "EAGAIN"),
        ("recv on empty nonblocking tcp", "EAGAIN"),
        ("connect to a closed port", "ECONNREFUSED"),
        ("read on a directory", "EISDIR"),
        ("socket (success keeps errno)", "EDOM"),
        ("fork, in the child (success keeps errno)", "EDOM"),
        ("fork, in the parent (success keeps errno)", "EDOM"),
    ] {
        assert!(
            plain
                .lines()
                .any(|l| l.starts_with(what) && l.ends_with(&format!("errno={e}"))),
            "the program itself must show {what} -> {e}:\n{plain}"
        );
    }
    let r = metered(&[&bin, &d]);
    assert_eq!(
        r.stdout,
        plain,
        "return values and errno differ under the shim{}",
        ctx(&r)
    );

    // EAGAIN is a call, not an error.
    let p = only_process(&r);
    let udp: Vec<&SocketReport> = p.sockets.iter().filter(|s| s.proto == "udp").collect();
    assert_eq!(udp.len(), 1, "{}", ctx(&r));
    assert_eq!(
        (udp[0].rx_calls, udp[0].rx_bytes, udp[0].errors),
        (5, 0, 0),
        "five EAGAIN receives, no error{}",
        ctx(&r)
    );
    let acc: Vec<&SocketReport> = p.sockets.iter().filter(|s| s.role == "accepted").collect();
    assert_eq!(acc.len(), 1, "{}", ctx(&r));
    // peek (no bytes), recv 10, then two EAGAIN reads.
    assert_eq!(
        (acc[0].rx_bytes, acc[0].rx_calls, acc[0].errors),
        (10, 4, 0),
        "{}",
        ctx(&r)
    );
}
