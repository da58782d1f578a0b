//! The summary as a user reads it, from real runs: a loop of curls is a few lines grouped by
//! executable (no zero rows from curl's internal socketpair), each process's command line,
//! ending, time and rate, `--all`, `--group-by`, `--top`, `--bytes`, `--quiet`, `--json -`,
//! `--unix` without counting a socketpair as a connection, colour only on a terminal,
//! `--attribute` globs that matched nothing, and static or setuid programs said once, for the
//! command and for any descendant. Byte counts are checked against the unmetered peers.

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};

use serde_json::Value;
use sockmeter::report::Report;

use crate::harness::{
    self, both_modes, fresh_dir, python, run, run_in, sockmeter, Peer, Run, Sink, WithoutSockmeterEnv,
};

/// `N` curls of `size` bytes each from the HTTP oracle, in one shell loop.
fn curls(n: usize, size: usize, extra: &[&str]) -> (Run, Value) {
    let peer = Peer::start(
        "http_peer.py",
        &["--size", &size.to_string(), "--conns", &n.to_string()],
    );
    let script = format!(
        "for i in $(seq {n}); do curl -s -o /dev/null http://127.0.0.1:{}/big.bin || exit 1; done",
        peer.port
    );
    let r = run(extra, &["sh", "-c", &script]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = peer.finish();
    assert_eq!(v["connections"], n as u64, "{v}");
    assert_eq!(
        (r.report.totals.rx_bytes, r.report.totals.tx_bytes),
        (v["tx"].as_u64().unwrap(), v["rx"].as_u64().unwrap()),
        "exact against the peer\n{}",
        r.stderr
    );
    (r, v)
}

/// The cells of a table row (columns are separated by two spaces or more).
fn cells(row: &str) -> Vec<&str> {
    row.split("  ").map(str::trim).filter(|c| !c.is_empty()).collect()
}

/// The summary's lines (ours start with `sockmeter:` or two spaces; curl says nothing).
fn lines(r: &Run) -> Vec<&str> {
    r.stderr.lines().collect()
}

#[test]
fn a_loop_of_thirty_curls_is_a_few_lines_grouped_by_executable_and_exact() {
    let (r, v) = curls(30, 100_000, &["--bytes"]);
    let (rx, tx) = (v["tx"].as_u64().unwrap(), v["rx"].as_u64().unwrap());
    let l = lines(&r);
    assert_eq!(l.len(), 4, "a header, the table's two lines, the total:\n{}", r.stderr);
    assert_eq!(
        l[0],
        "sockmeter: 30 processes, by executable (--group-by process lists each one):"
    );
    assert_eq!(
        cells(l[1]),
        ["executable", "processes", "ended", "in", "out", "connections", "peers"]
    );
    let port = r.report.processes[0]
        .sockets
        .iter()
        .find(|s| s.is_connection())
        .and_then(|s| s.peer.clone())
        .expect("curl's connection");
    assert_eq!(
        cells(l[2]),
        [
            "curl",
            "30",
            "exit 0",
            &format!("{rx} B"),
            &format!("{tx} B"),
            "30",
            port.as_str()
        ]
    );
    assert_eq!(
        l[3],
        format!("sockmeter: total: {rx} B in, {tx} B out over 30 connections in 30 processes")
    );
    assert!(
        !r.stderr.contains("(unnamed)"),
        "curl's socketpair moved nothing: not shown"
    );
    // The report has everything, socketpairs included, and how each process ended.
    for p in &r.report.processes {
        assert_eq!(
            (p.end.as_str(), p.exit_code, p.signal),
            ("exit", Some(0), None),
            "{p:?}"
        );
        assert!(
            p.sockets.iter().any(|s| s.is_socketpair()),
            "curl's own socketpair is in the JSON"
        );
    }
}

#[test]
fn all_group_by_process_and_top_show_what_is_asked() {
    let (r, _) = curls(4, 3_000_000, &["--all", "--group-by", "process", "--top", "2"]);
    let l = lines(&r);
    let heads: Vec<&&str> = l.iter().filter(|l| l.starts_with("sockmeter: pid ")).collect();
    // The two busiest (all equal here) with their sockets, then the Unix section (--all) for
    // those two, then one line for the other two.
    let blocks: Vec<&&&str> = heads
        .iter()
        .filter(|l| l.contains(" over 1 connection with 127.0.0.1:"))
        .collect();
    assert_eq!(blocks.len(), 2, "{}", r.stderr);
    assert!(
        blocks[0].contains(": 3.0 MB in, "),
        "3,000,000 bytes read as 3.0 MB: {}",
        blocks[0]
    );
    let detail = l
        .iter()
        .find(|l| l.starts_with("  curl -s -o /dev/null http://127.0.0.1:"))
        .unwrap_or_else(|| panic!("the command line:\n{}", r.stderr));
    assert!(detail.contains("/big.bin  (exit 0 after "), "{detail}");
    assert!(
        r.stderr
            .contains("  stream  (unnamed)  (unnamed)  connected  0 B  0 B  curl"),
        "--all: {}",
        r.stderr
    );
    assert!(
        l.iter()
            .any(|l| l.starts_with("sockmeter: ... and 2 more processes: 6.0 MB in, ")
                && l.ends_with("over 2 connections (--top 2 shows the busiest)")),
        "{}",
        r.stderr
    );
    assert_eq!(
        l.last().map(|l| l.starts_with("sockmeter: total: 12.0 MB in, ")),
        Some(true),
        "{}",
        r.stderr
    );
}

both_modes! {
    /// How each process ended, in the summary and the JSON: a client that killed itself with
    /// SIGTERM after sending, a curl that exited 0, the shell's own status; elapsed time and
    /// rate on each process's second line.
    fn each_process_says_how_it_ended_how_long_it_ran_and_its_rate(mode) {
        let sink = Sink::start();
        let http = Peer::start("http_peer.py", &["--size", "50000", "--conns", "1"]);
        let client = format!(
            "import os, signal, socket\nc = socket.create_connection(('127.0.0.1', {}))\nc.sendall(b'k' * 200000)\nc.close()\nos.kill(os.getpid(), signal.SIGTERM)\n",
            sink.port
        );
        let script = format!(
            "{} -c \"$0\"; curl -s -o /dev/null http://127.0.0.1:{}/x; exit 5",
            python(),
            http.port
        );
        let http_port = http.port;
        let r = run_in(mode, &[], &["sh", "-c", &script, &client], &[]);
        assert_eq!(r.code, 5, "{}", r.stderr);
        assert_eq!(sink.received(), 200_000);
        let _ = http.finish();
        let py = r.proc("python3");
        assert_eq!((py.end.as_str(), py.signal, py.exit_code), ("signal", Some(15), None), "{}", r.stderr);
        let curl = r.proc("curl");
        assert_eq!((curl.end.as_str(), curl.exit_code), ("exit", Some(0)), "{}", r.stderr);
        let json_py = r.json["processes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["pid"] == py.pid)
            .unwrap();
        assert_eq!((json_py["end"].as_str(), json_py["signal"].as_i64()), (Some("signal"), Some(15)));
        let l = lines(&r);
        let py_detail = l
            .iter()
            .find(|l| l.starts_with("  python3 -c \"import os, signal, socket"))
            .unwrap_or_else(|| panic!("python's command line, quoted and cut:\n{}", r.stderr));
        assert!(py_detail.contains("…  (killed by SIGTERM after "), "{py_detail}");
        let curl_detail = l
            .iter()
            .find(|l| l.starts_with(&format!("  curl -s -o /dev/null http://127.0.0.1:{http_port}/x  (exit 0 after ")))
            .unwrap_or_else(|| panic!("curl's line:\n{}", r.stderr));
        if let Some(ms) = harness_elapsed(&r.report, curl.pid) {
            assert!(curl_detail.contains(if ms < 1000 { " ms" } else { " s" }), "{curl_detail}");
        }
    }

    /// `--attribute` globs: one that matched an object is in the report's `attribute_matched`;
    /// one that matched nothing is said once at the end, even with `--quiet`.
    fn a_glob_that_matched_nothing_is_said_at_the_end(mode) {
        let http = Peer::start("http_peer.py", &["--size", "1000", "--conns", "1"]);
        let url = format!("http://127.0.0.1:{}/", http.port);
        let r = run_in(
            mode,
            &["--quiet", "--attribute", "libcurl*", "--attribute", "libcrul*"],
            &["curl", "-s", "-o", "/dev/null", &url],
            &[],
        );
        assert_eq!(r.code, 0, "{}", r.stderr);
        let _ = http.finish();
        assert_eq!(
            r.stderr,
            "sockmeter: --attribute 'libcrul*' matched no object in any metered process (a glob without `/` matches file names, one with `/` whole paths; `*` crosses `/`)\n",
            "--quiet: no summary, the warning alone"
        );
        let curl = r.proc("curl");
        assert_eq!(curl.attribute_matched, ["libcurl*"]);
        assert!(curl.sockets.iter().any(|s| s.module.as_deref().is_some_and(|m| m.contains("libcurl"))));
    }

    /// `--unix`: curl's socketpair counts in bytes (none here) but is not a connection.
    fn with_unix_a_socketpair_is_not_a_connection(mode) {
        let http = Peer::start("http_peer.py", &["--size", "1000", "--conns", "1"]);
        let url = format!("http://127.0.0.1:{}/", http.port);
        let r = run_in(mode, &["--unix"], &["curl", "-s", "-o", "/dev/null", &url], &[]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        let _ = http.finish();
        let curl = r.proc("curl");
        assert!(curl.sockets.iter().filter(|s| s.is_socketpair()).count() >= 2, "{:?}", curl.sockets);
        assert_eq!((curl.totals.connections, r.report.totals.connections), (1, 1), "{}", r.stderr);
        assert!(r.stderr.contains(" over 1 connection with 127.0.0.1:"), "{}", r.stderr);
    }
}

/// A process's life in ms, from the report.
fn harness_elapsed(r: &Report, pid: u32) -> Option<u64> {
    let p = r.processes.iter().find(|p| p.pid == pid)?;
    let start = sockmeter::time::parse_rfc3339(&p.started_at)?;
    sockmeter::time::parse_rfc3339(p.ended_at.as_deref()?)?.checked_sub(start)
}

/// `sockmeter run ARGS` in `dir`, stdin empty, without the developer's SOCKMETER_*,
/// LD_PRELOAD or colour settings; `env` added.
fn sockmeter_in(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    Command::new(sockmeter())
        .arg("run")
        .args(args)
        .current_dir(dir)
        .without_sockmeter_env()
        .env_remove("NO_COLOR")
        .env_remove("CLICOLOR")
        .env_remove("CLICOLOR_FORCE")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("run sockmeter")
}

#[test]
fn json_dash_writes_the_report_to_stdout_after_the_commands_output() {
    let sink = Sink::start();
    let dir = fresh_dir("json-dash");
    let script = format!(
        "import socket\nprint('before', flush=True)\nc = socket.create_connection(('127.0.0.1', {}))\nc.sendall(b'j' * 4321)\nc.close()\n",
        sink.port
    );
    let o = sockmeter_in(&dir, &["--json", "-", "--quiet", "--", python(), "-c", &script], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(sink.received(), 4321);
    let out = String::from_utf8(o.stdout).expect("utf-8");
    let json = out
        .strip_prefix("before\n")
        .unwrap_or_else(|| panic!("the command's output first:\n{out}"));
    let r: Report = serde_json::from_str(json).expect("the report, whole, on stdout");
    assert_eq!(r.totals.tx_bytes, 4321);
    assert!(!dir.join("-").exists(), "no file named `-`");
    assert!(o.stderr.is_empty(), "--quiet: {}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn colour_only_on_a_terminal_and_never_with_no_color() {
    let http = Peer::start("http_peer.py", &["--size", "1000", "--conns", "4"]);
    let url = format!("http://127.0.0.1:{}/", http.port);
    let dir = fresh_dir("colour");
    let bold = "\u{1b}[1m";
    // A pipe: no escape sequences.
    let o = sockmeter_in(&dir, &["--", "curl", "-s", "-o", "/dev/null", &url], &[]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("sockmeter: total:") && !err.contains('\u{1b}'), "{err:?}");
    // A real terminal (script(1) gives the command a pseudo-terminal): bold headers.
    let cmd = format!("{} run -- curl -s -o /dev/null {url}", sockmeter().display());
    let tty = |env: &[(&str, &str)]| {
        let o = Command::new("script")
            .args(["-qec", &cmd, "/dev/null"])
            .current_dir(&dir)
            .without_sockmeter_env()
            .env_remove("NO_COLOR")
            .env_remove("CLICOLOR")
            .env_remove("CLICOLOR_FORCE")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .output()
            .expect("script(1) from util-linux (bsdutils)");
        assert!(o.status.success(), "{o:?}");
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let on_tty = tty(&[("TERM", "xterm")]);
    assert!(on_tty.contains(&format!("{bold}sockmeter: total:")), "{on_tty:?}");
    let no_color = tty(&[("TERM", "xterm"), ("NO_COLOR", "1")]);
    assert!(
        no_color.contains("sockmeter: total:") && !no_color.contains('\u{1b}'),
        "{no_color:?}"
    );
    // Forced (CLICOLOR_FORCE) into a pipe, as anstream allows.
    let o = sockmeter_in(
        &dir,
        &["--", "curl", "-s", "-o", "/dev/null", &url],
        &[("CLICOLOR_FORCE", "1")],
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains(bold));
    let _ = http.finish();
}

#[test]
fn a_static_program_is_said_once_for_the_command_and_once_for_its_descendants() {
    let stat = harness::compile_c("static_hello", &["-static"]);
    let stat = stat.to_str().unwrap();
    // The command itself: said before it runs, not again at the end.
    let r = run(&[], &[stat, "x"]);
    let said: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| l.contains("is statically linked"))
        .collect();
    assert_eq!(said.len(), 1, "said once:\n{}", r.stderr);
    assert_eq!(
        r.report
            .notices
            .iter()
            .filter(|n| n.contains("statically linked"))
            .count(),
        1
    );
    // Descendants: a shell runs it three times; the shim's exec check says it, once.
    let r = run(&[], &["sh", "-c", &format!("{stat} a; {stat} b; {stat} c; exit 0")]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let said: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| l.contains("is statically linked"))
        .collect();
    assert_eq!(said.len(), 1, "said once:\n{}", r.stderr);
    assert!(
        said[0].starts_with(&format!(
            "sockmeter: {stat} is statically linked: the shim cannot be preloaded, its traffic will not be counted (exec'd 3 times, first by pid "
        )),
        "{}",
        said[0]
    );
}

#[test]
fn a_setuid_program_a_descendant_runs_is_said_once() {
    // SAFETY: geteuid cannot fail.
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "this test gives a program to another user (chown); CI runs as root"
    );
    // A dynamic program, setuid to nobody, on the workspace's filesystem (not mounted nosuid).
    let dir = harness::target_dir().join("setuid-test");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let bin = dir.join(format!("suid-{}", std::process::id()));
    std::fs::copy("/bin/true", &bin).expect("copy /bin/true");
    std::os::unix::fs::chown(&bin, Some(65534), Some(65534)).expect("chown nobody");
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o4755)).expect("chmod u+s");
    let b = bin.to_str().unwrap();
    let top = run(&[], &[b]);
    let r = run(&[], &["sh", "-c", &format!("{b}; {b}; exit 0")]);
    let _ = std::fs::remove_file(&bin);
    let said: Vec<&str> = top.stderr.lines().filter(|l| l.contains("is setuid")).collect();
    assert_eq!(
        said,
        [format!(
            "sockmeter: {b} is setuid: the dynamic loader ignores LD_PRELOAD for it, its traffic will not be counted"
        )],
        "the command itself: said once, before it runs"
    );
    let said: Vec<&str> = r.stderr.lines().filter(|l| l.contains("is setuid")).collect();
    assert_eq!(said.len(), 1, "said once:\n{}", r.stderr);
    assert!(
        said[0].starts_with(&format!(
            "sockmeter: {b} is setuid: the dynamic loader ignores LD_PRELOAD for it, its traffic will not be counted (exec'd 2 times"
        )),
        "{}",
        said[0]
    );
}
