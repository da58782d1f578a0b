//! Unix-domain sockets, exit statuses, report files without a reporter, bad variables,
//! MSG_PEEK.

use super::*;

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
    assert_eq!(
        uv["timed_out"], false,
        "unix peer timed out (its counts are partial): {uv}"
    );
    assert!(uv.get("error").is_none(), "unix peer's connection failed: {uv}");
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
        mirror(&uv),
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
    assert_eq!((t[0].tx_bytes, t[0].rx_bytes), mirror(&tv));

    let (want_tx, want_rx) = if include {
        (n(&tv, "rx") + unix_tx, n(&tv, "tx") + unix_rx)
    } else {
        mirror(&tv)
    };
    assert_eq!(
        (p.totals.tx_bytes, p.totals.rx_bytes),
        (want_tx, want_rx),
        "process totals with unix_in_totals={include}"
    );
    assert_eq!(
        harness::totals(&r),
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
        .without_sockmeter_env()
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
    let dir = fresh_dir("reports");
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
    let report = read_report(&dir.join(format!("r-{pid}.json")));
    assert_eq!(report.processes.len(), 1);
    let p = &report.processes[0];
    assert_eq!(u64::from(p.pid), pid);
    assert_eq!(p.end, "exit");
    let conns = inet_connections(p);
    assert_eq!(conns.len(), 1, "{:#?}", p.sockets);
    assert_eq!(conns[0].local.as_deref(), Some(s(&me, "local")));
    assert_eq!(conns[0].peer.as_deref(), Some(format!("127.0.0.1:{port}").as_str()));
    assert_eq!((conns[0].tx_bytes, conns[0].rx_bytes), mirror(&v));
    assert_eq!((p.totals.tx_bytes, p.totals.rx_bytes), mirror(&v));
    assert_eq!(p.totals.connections, 1);
    assert_eq!((report.totals.tx_bytes, report.totals.rx_bytes), mirror(&v));
}

#[test]
fn malformed_sockmeter_interval_gives_one_stderr_line_where_there_is_traffic_and_changes_nothing_else() {
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
    // This program never touches a socket: it has nothing to meter, so the shim says nothing
    // (under a plain LD_PRELOAD every process of a script loads it; only those that meter speak).
    assert_eq!(err, plain_err, "stderr is the program's own, nothing added");

    // The bad value falls back to the default and metering still works: with a network
    // exchange and a report file, the counts are still exact.
    let dir = fresh_dir("reports-bad-interval");
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
    assert!(
        err.contains("SOCKMETER_INTERVAL") && err.contains("soon"),
        "names it and shows the value: {err}"
    );
    assert_peer_complete(&v, 1);
    let me = own_lines(&String::from_utf8_lossy(&out.stdout))
        .pop()
        .expect("client account");
    let report = read_report(&dir.join(format!("r-{}.json", n(&me, "pid"))));
    assert_eq!((report.totals.tx_bytes, report.totals.rx_bytes), mirror(&v));
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
    assert_mirrors_peer(&r, Some(p), &v);
}
