//! Integration tests of `sockmeter run` with a STAND-IN FOR THE SHIM (see `common/mod.rs`):
//! counting, hostile messages, stdio and environment, descendants, signals.

mod common;

use std::io::{BufRead, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use sockmeter::model::Family;
use sockmeter::wire::encode;

#[test]
fn counts_hostile_lines_stdio_env_and_exit_status() {
    let s = Scratch::new();
    let json = s.path().join("report.json");
    let mut cmd = sockmeter(s.path());
    let users_own = s.path().join("users_own.so");
    cmd.env("LD_PRELOAD", &users_own);
    let handoff = Handoff::new(s.path(), &mut cmd);
    let script = &format!(
        r#"echo "$SOCKMETER_SOCKET"; {HANDOFF} 1; echo "LD=$LD_PRELOAD I=$SOCKMETER_INTERVAL A=$SOCKMETER_ATTRIBUTE"; read x; echo "got $x"; exit 7"#
    );
    let (mut child, out, _sock) = start(
        &mut cmd,
        &[
            "--json",
            json.to_str().unwrap(),
            "--interval",
            "250",
            "--attribute",
            "*/libstandin*",
        ],
        script,
    );

    let mut c = handoff.take(1).remove(0);
    let mut wire = Vec::new();
    for m in [
        hello(4711, "/usr/bin/standin"),
        socket(1, Family::Inet, "127.0.0.1:8080"),
        delta(1, 84, 1 << 20),
        socket(2, Family::Unix, "/run/x.sock"),
    ] {
        wire.extend(encode(&m));
    }
    wire.extend(b"{\"v\":1,\"type\":\"delta\",\"at\":1,\"sockets\":[{\"id\":-1}]}\n");
    wire.extend(b"\x00\x01 binary junk\n");
    for m in [delta(1, 0, 2 << 20), delta(2, 500, 600), bye()] {
        wire.extend(encode(&m));
    }
    c.write_all(&wire).unwrap();
    drop(c);

    child.stdin.as_mut().unwrap().write_all(b"hello\n").unwrap();
    let (o, stdout) = finish(child, out);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(7), "the command's exit status\n{err}");

    let shim = s.path().join("standin_shim.so").canonicalize().unwrap();
    assert_eq!(
        stdout,
        format!(
            "LD={}:{} I=250 A=*/libstandin*\ngot hello\n",
            shim.display(),
            users_own.display()
        ),
        "stdout relayed untouched"
    );

    let warnings: Vec<&str> = err.lines().filter(|l| l.starts_with("sockmeter: warning:")).collect();
    assert_eq!(
        warnings.len(),
        2,
        "one warning for the first bad line, one summing up the rest\n{err}"
    );
    assert!(
        warnings[0].contains("pid 4711 (connection 1)") && warnings[0].contains("malformed message"),
        "{err}"
    );
    assert!(
        err.contains("sockmeter: pid 4711 standin: 3.1 MB in, 84 B out over 1 connection with 127.0.0.1:8080\n"),
        "{err}"
    );
    assert!(
        err.contains("sockmeter: Unix-domain sockets (not in the totals; --unix counts them):"),
        "{err}"
    );
    assert!(
        err.contains("sockmeter: total: 3.1 MB in, 84 B out over 1 connection in 1 process\n"),
        "{err}"
    );

    let r = read_json(&json);
    assert_eq!(r["schema"], "sockmeter.report.v1");
    assert_eq!(r["exit_status"], 7);
    assert_eq!(r["command"], serde_json::json!(["sh", "-c", script]));
    assert_eq!(
        r["totals"],
        serde_json::json!({"tx_bytes": 84, "rx_bytes": 3 << 20, "connections": 1})
    );
    let p = &r["processes"][0];
    assert_eq!((p["pid"].as_u64(), p["end"].as_str()), (Some(4711), Some("exit")));
    assert_eq!(
        (p["unix"]["tx_bytes"].as_u64(), p["unix"]["rx_bytes"].as_u64()),
        (Some(500), Some(600))
    );
    assert!(
        p["notices"][0].as_str().unwrap().contains("skipped 2 bad messages"),
        "{p}"
    );
}

#[test]
fn a_process_outside_the_run_is_refused_and_counted_once() {
    let s = Scratch::new();
    let json = s.path().join("r.json");
    let mut cmd = sockmeter(s.path());
    let handoff = Handoff::new(s.path(), &mut cmd);
    let (mut child, out, sock) = start(
        &mut cmd,
        &["--json", json.to_str().unwrap()],
        &format!(r#"echo "$SOCKMETER_SOCKET"; {HANDOFF} 1; read x"#),
    );
    let mut ours = handoff.take(1).remove(0);
    // This test is not a descendant of the reporter: its connections are refused, whatever
    // they claim (here: to be the very process the run's own connection speaks for).
    let forged: Vec<u8> = [
        hello(4711, "/usr/bin/forged"),
        socket(1, Family::Inet, "10.9.9.9:9"),
        delta(1, 1 << 40, 0),
        bye(),
    ]
    .iter()
    .flat_map(encode)
    .collect();
    for _ in 0..3 {
        let mut stranger = UnixStream::connect(&sock).unwrap();
        // The reporter may close it before or while this is written.
        let _ = stranger.write_all(&forged);
    }
    for m in [
        hello(4711, "/usr/bin/standin"),
        socket(1, Family::Inet, "127.0.0.1:80"),
        delta(1, 300, 400),
        bye(),
    ] {
        ours.write_all(&encode(&m)).unwrap();
    }
    drop(ours);
    child.stdin.as_mut().unwrap().write_all(b"\n").unwrap();
    let (o, _) = finish(child, out);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    let refusals: Vec<&str> = err.lines().filter(|l| l.contains("refused a connection")).collect();
    assert_eq!(refusals.len(), 1, "said once for the run:\n{err}");
    assert!(
        refusals[0].starts_with(&format!(
            "sockmeter: warning: refused a connection to the reporter from pid {} (",
            std::process::id()
        )) && refusals[0].contains("not a process of this run"),
        "{err}"
    );
    let r = read_json(&json);
    assert_eq!(
        r["totals"],
        serde_json::json!({"tx_bytes": 300, "rx_bytes": 400, "connections": 1})
    );
    assert_eq!(r["processes"].as_array().unwrap().len(), 1, "{r}");
    assert_eq!(r["processes"][0]["exe"], "/usr/bin/standin");
    let notices = r["notices"].as_array().expect("run notices");
    assert!(
        notices.iter().any(|n| n
            .as_str()
            .unwrap()
            .starts_with("refused 3 connections to the reporter from processes outside this run")),
        "{notices:?}"
    );
    assert!(
        err.contains("sockmeter: refused 3 connections"),
        "the summary says it too:\n{err}"
    );
}

#[test]
fn with_unix_the_unix_traffic_counts() {
    let s = Scratch::new();
    let json = s.path().join("r.json");
    let mut cmd = sockmeter(s.path());
    let handoff = Handoff::new(s.path(), &mut cmd);
    let (mut child, out, _sock) = start(
        &mut cmd,
        &["--unix", "--json", json.to_str().unwrap()],
        &format!(r#"echo "$SOCKMETER_SOCKET"; {HANDOFF} 1; read x"#),
    );
    let mut c = handoff.take(1).remove(0);
    for m in [
        hello(10, "/bin/x"),
        socket(1, Family::Unix, "/run/a"),
        delta(1, 5, 6),
        bye(),
    ] {
        c.write_all(&encode(&m)).unwrap();
    }
    drop(c);
    child.stdin.as_mut().unwrap().write_all(b"\n").unwrap();
    let (o, _) = finish(child, out);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let r = read_json(&json);
    assert_eq!(
        (r["totals"]["tx_bytes"].as_u64(), r["unix_in_totals"].as_bool()),
        (Some(5), Some(true))
    );
    assert!(!stderr(&o).contains("Unix-domain sockets ("), "{}", stderr(&o));
}

#[test]
fn a_process_that_outlives_the_command_is_reported_running() {
    let s = Scratch::new();
    let json = s.path().join("r.json");
    let mut cmd = sockmeter(s.path());
    let handoff = Handoff::new(s.path(), &mut cmd);
    let (mut child, out, _sock) = start(
        &mut cmd,
        &["--json", json.to_str().unwrap()],
        &format!(r#"echo "$SOCKMETER_SOCKET"; {HANDOFF} 2; read x"#),
    );
    let mut two = handoff.take(2);
    let mut killed = two.pop().unwrap();
    let mut lingering = two.pop().unwrap();
    for m in [
        hello(std::process::id(), "/usr/sbin/daemon"),
        socket(1, Family::Inet6, "[::1]:443"),
        delta(1, 2048, 0),
    ] {
        lingering.write_all(&encode(&m)).unwrap();
    }
    for m in [
        hello(99, "/bin/killed"),
        socket(1, Family::Inet, "10.1.1.1:80"),
        delta(1, 1, 1),
    ] {
        killed.write_all(&encode(&m)).unwrap();
    }
    drop(killed);
    let t0 = Instant::now();
    child.stdin.as_mut().unwrap().write_all(b"\n").unwrap();
    let (o, _) = finish(child, out);
    let waited = t0.elapsed();
    drop(lingering);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(
        waited >= Duration::from_millis(1500) && waited < Duration::from_secs(10),
        "waited {waited:?} for the grace period"
    );
    assert!(err.contains("still running after the command exited"), "{err}");
    assert!(
        err.contains("  daemon  (still running when sockmeter stopped)\n"),
        "{err}"
    );
    let r = read_json(&json);
    let ends: Vec<&str> = r["processes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["end"].as_str().unwrap())
        .collect();
    assert!(ends.contains(&"running") && ends.contains(&"lost"), "{ends:?}");
    assert_eq!(r["totals"]["tx_bytes"], 2049);
}

#[test]
fn a_background_descendant_that_connects_after_the_command_exited_is_counted() {
    let s = Scratch::new();
    let json = s.path().join("r.json");
    let mut cmd = sockmeter(s.path());
    let handoff = Handoff::new(s.path(), &mut cmd);
    // The background job connects once the command is gone (reaped: `kill -0` fails).
    let script = &format!(
        r#"echo "$SOCKMETER_SOCKET"; echo $$; (while kill -0 $$ 2>/dev/null; do sleep 0.01; done; {HANDOFF} 1; sleep 1; echo bg-done) & exit 0"#
    );
    let (child, mut out, _sock) = start(&mut cmd, &["--json", json.to_str().unwrap()], script);
    let mut pid = String::new();
    out.read_line(&mut pid).unwrap();
    let proc_dir = PathBuf::from(format!("/proc/{}", pid.trim()));
    let t0 = Instant::now();
    while proc_dir.exists() {
        assert!(t0.elapsed() < Duration::from_secs(5), "the command did not exit");
        std::thread::sleep(Duration::from_millis(5));
    }
    // The command is gone (reaped); its background job connects only now.
    let mut late = handoff.take(1).remove(0);
    for m in [
        hello(31337, "/usr/bin/late"),
        socket(1, Family::Inet, "192.0.2.1:80"),
        delta(1, 7, 8),
        bye(),
    ] {
        late.write_all(&encode(&m)).unwrap();
    }
    drop(late);
    let (o, rest) = finish(child, out);
    let waited = t0.elapsed();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(rest, "bg-done\n", "the descendant's output is relayed");
    assert!(
        waited < Duration::from_millis(1900),
        "done when the descendant exited, before the grace period: {waited:?}"
    );
    let r = read_json(&json);
    assert_eq!(r["processes"][0]["pid"], 31337);
    assert_eq!(r["totals"]["rx_bytes"], 8);
}

#[test]
fn a_signal_gives_128_plus_n_and_the_report() {
    let s = Scratch::new();
    let json = s.path().join("r.json");
    let o = sockmeter(s.path())
        .args([
            "run",
            "--json",
            json.to_str().unwrap(),
            "--",
            "sh",
            "-c",
            "kill -TERM $$",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(128 + 15), "{}", stderr(&o));
    assert!(stderr(&o).contains("sockmeter: total:"), "{}", stderr(&o));
    assert_eq!(read_json(&json)["exit_status"], 143);
}

#[test]
fn sigint_is_left_to_the_command_and_sigterm_is_forwarded() {
    let s = Scratch::new();
    let mut cmd = sockmeter(s.path());
    let (mut child, mut out, first) = start(&mut cmd, &[], "echo ready; exec sleep 30");
    assert_eq!(first, Path::new("ready"));
    let pid = child.id() as libc::pid_t;
    // SAFETY: `pid` is the sockmeter process this test started and has not reaped.
    unsafe { libc::kill(pid, libc::SIGINT) };
    std::thread::sleep(Duration::from_millis(300));
    if let Some(st) = child.try_wait().unwrap() {
        let mut e = String::new();
        child.stderr.take().unwrap().read_to_string(&mut e).unwrap();
        panic!("SIGINT alone must not stop the reporter: {st:?}\n{e}");
    }
    // SAFETY: as above.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(
        o.status.code(),
        Some(128 + 15),
        "SIGTERM reached the command\n{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("sockmeter: total:"));
}

/// The ignored standard signals of `grep` run directly, or under sockmeter, with SIGHUP ignored or not.
fn ignored_signals(s: &Scratch, under_sockmeter: bool, hup_ignored: bool) -> String {
    let mut cmd = if under_sockmeter {
        let mut c = sockmeter(s.path());
        c.args(["run", "--"]);
        c
    } else {
        Command::new("env")
    };
    cmd.args(["grep", "^SigIgn", "/proc/self/status"]);
    if hup_ignored {
        // SAFETY: only calls signal(), which is async-signal-safe, between fork and exec.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
                libc::signal(libc::SIGHUP, libc::SIG_IGN);
                Ok(())
            });
        }
    }
    let o = cmd.output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let line = String::from_utf8(o.stdout).unwrap();
    let mask = u64::from_str_radix(line.trim().trim_start_matches("SigIgn:").trim(), 16).unwrap();
    // Signals 1 to 31 only: glibc's posix_spawn leaves its internal signals (32, 33) ignored
    // in whatever a Rust program spawns, with or without sockmeter in between.
    format!("{:#x}", mask & 0x7fff_ffff)
}

#[test]
fn the_command_sees_the_signal_dispositions_it_would_see_without_sockmeter() {
    let s = Scratch::new();
    for hup_ignored in [false, true] {
        let direct = ignored_signals(&s, false, hup_ignored);
        assert_eq!(
            ignored_signals(&s, true, hup_ignored),
            direct,
            "SIGHUP ignored on entry: {hup_ignored}"
        );
    }
}
