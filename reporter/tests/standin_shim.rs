//! Integration tests of the `sockmeter` binary with a STAND-IN FOR THE SHIM.
//!
//! The real shim is not used here (its end-to-end tests live in the top-level `tests/`).
//! Instead, `LD_PRELOAD` gets an empty shared object built with `cc -shared` (so the loader
//! has something harmless to preload), and the test itself plays the shim: the command
//! prints `$SOCKMETER_SOCKET`, the test connects there and writes wire lines made with
//! `sockmeter::wire::encode`, then lets the command finish by writing to its stdin.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use sockmeter::model::{Family, Proto, Role};
use sockmeter::wire::{encode, Bye, ByeReason, Delta, Hello, Message, Origin, SocketDelta, SocketInfo};

const BIN: &str = env!("CARGO_BIN_EXE_sockmeter");

/// A scratch directory removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Scratch {
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "sockmeter-it-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Scratch(p)
    }
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Builds the empty stand-in shim (and a second one, to play the user's own LD_PRELOAD).
fn standin_shims(dir: &Path) -> (PathBuf, PathBuf) {
    let src = dir.join("empty.c");
    std::fs::write(&src, "int sockmeter_standin;\n").unwrap();
    let mut out = Vec::new();
    for name in ["standin_shim.so", "users_own.so"] {
        let so = dir.join(name);
        let st = Command::new("cc")
            .args(["-shared", "-fPIC", "-o"])
            .arg(&so)
            .arg(&src)
            .status()
            .expect("cc is needed to build the stand-in shim");
        assert!(st.success(), "cc -shared failed");
        out.push(so);
    }
    (out[0].clone(), out[1].clone())
}

fn sockmeter(scratch: &Path) -> Command {
    let (shim, _) = standin_shims(scratch);
    let mut c = Command::new(BIN);
    c.env("SOCKMETER_SHIM", shim)
        .env_remove("LD_PRELOAD")
        .env_remove("SOCKMETER_ATTRIBUTE")
        .env_remove("SOCKMETER_DISABLE");
    c
}

fn hello(pid: u32, exe: &str) -> Message {
    Message::Hello(Hello {
        pid,
        ppid: 1,
        exe: exe.into(),
        argv: vec![exe.rsplit('/').next().unwrap().into()],
        started_at: 1_700_000_000_000,
        origin: Origin::Start,
        shim_version: "standin".into(),
        interval_ms: 1000,
    })
}

fn socket(id: u64, family: Family, peer: &str) -> Message {
    Message::Socket(SocketInfo {
        id,
        fd: 3 + id as i32,
        family,
        proto: if family == Family::Unix {
            Proto::Stream
        } else {
            Proto::Tcp
        },
        role: Role::Connected,
        local: None,
        peer: Some(peer.into()),
        module: Some("/usr/lib/libstandin.so.1".into()),
        via: None,
        label: None,
        opened_at: 1_700_000_000_001,
        inherited: false,
        adopted: false,
    })
}

fn delta(id: u64, tx: u64, rx: u64) -> Message {
    Message::Delta(Delta {
        at: 1_700_000_000_002,
        sockets: vec![SocketDelta {
            id,
            tx_bytes: tx,
            rx_bytes: rx,
            ..Default::default()
        }],
    })
}

fn bye() -> Message {
    Message::Bye(Bye {
        at: 1_700_000_000_003,
        reason: ByeReason::Exit,
        dropped_events: 0,
    })
}

/// Starts `sockmeter run ARGS -- sh -c SCRIPT` with piped stdio; the script's first line out
/// must be `$SOCKMETER_SOCKET`.
fn start(cmd: &mut Command, args: &[&str], script: &str) -> (Child, BufReader<ChildStdout>, PathBuf) {
    cmd.arg("run").args(args).args(["--", "sh", "-c", script]);
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    (child, out, PathBuf::from(line.trim_end()))
}

fn finish(child: Child, mut out: BufReader<ChildStdout>) -> (Output, String) {
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    let o = child.wait_with_output().unwrap();
    (o, rest)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn read_json(p: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

#[test]
fn counts_hostile_lines_stdio_env_and_exit_status() {
    let s = Scratch::new();
    let json = s.path().join("report.json");
    let mut cmd = sockmeter(s.path());
    let users_own = s.path().join("users_own.so");
    cmd.env("LD_PRELOAD", &users_own);
    let script = r#"echo "$SOCKMETER_SOCKET"; echo "LD=$LD_PRELOAD I=$SOCKMETER_INTERVAL A=$SOCKMETER_ATTRIBUTE"; read x; echo "got $x"; exit 7"#;
    let (mut child, out, sock) = start(
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

    let mut c = UnixStream::connect(&sock).expect("the reporter listens on SOCKMETER_SOCKET");
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
        err.contains("sockmeter: pid 4711 standin: 3.0 MiB in, 84 B out over 1 connection (127.0.0.1:8080)\n"),
        "{err}"
    );
    assert!(
        err.contains("sockmeter: Unix-domain sockets (not in the totals; --unix counts them):"),
        "{err}"
    );
    assert!(
        err.contains("sockmeter: total: 3.0 MiB in, 84 B out over 1 connection in 1 process\n"),
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
fn with_unix_the_unix_traffic_counts() {
    let s = Scratch::new();
    let json = s.path().join("r.json");
    let (mut child, out, sock) = start(
        &mut sockmeter(s.path()),
        &["--unix", "--json", json.to_str().unwrap()],
        r#"echo "$SOCKMETER_SOCKET"; read x"#,
    );
    let mut c = UnixStream::connect(&sock).unwrap();
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
    let (mut child, out, sock) = start(
        &mut sockmeter(s.path()),
        &["--json", json.to_str().unwrap()],
        r#"echo "$SOCKMETER_SOCKET"; read x"#,
    );
    let mut lingering = UnixStream::connect(&sock).unwrap();
    for m in [
        hello(std::process::id(), "/usr/sbin/daemon"),
        socket(1, Family::Inet6, "[::1]:443"),
        delta(1, 2048, 0),
    ] {
        lingering.write_all(&encode(&m)).unwrap();
    }
    let mut killed = UnixStream::connect(&sock).unwrap();
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
    assert!(err.contains("[still running when sockmeter stopped]"), "{err}");
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
    let script = r#"echo "$SOCKMETER_SOCKET"; echo $$; (sleep 1; echo bg-done) & exit 0"#;
    let (child, mut out, sock) = start(&mut sockmeter(s.path()), &["--json", json.to_str().unwrap()], script);
    let mut pid = String::new();
    out.read_line(&mut pid).unwrap();
    let proc_dir = PathBuf::from(format!("/proc/{}", pid.trim()));
    let t0 = Instant::now();
    while proc_dir.exists() {
        assert!(t0.elapsed() < Duration::from_secs(5), "the command did not exit");
        std::thread::sleep(Duration::from_millis(5));
    }
    // The command is gone (reaped); its background job connects only now.
    let mut late = UnixStream::connect(&sock).unwrap();
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

#[test]
fn an_unwritable_json_path_fails_before_running() {
    let s = Scratch::new();
    let marker = s.path().join("ran");
    let script = format!("touch '{}'", marker.display());
    for bad in [s.path().join("missing/r.json"), s.path().to_path_buf()] {
        let o = sockmeter(s.path())
            .arg("run")
            .arg("--json")
            .arg(&bad)
            .args(["--", "sh", "-c", &script])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2));
        assert!(stderr(&o).contains("cannot write the JSON report to"), "{}", stderr(&o));
        assert!(!marker.exists(), "the command must not have run");
    }
}

#[test]
fn usage_errors_and_unstartable_commands() {
    let s = Scratch::new();
    let run = |args: &[&str]| sockmeter(s.path()).args(args).output().unwrap();
    for bad in [
        &["run", "--bogus", "--", "true"][..],
        &["run", "--interval", "soon", "--", "true"],
        &["run"],
        &["run", "--attribute", "a:b", "--", "true"],
    ] {
        let o = run(bad);
        assert_eq!(o.status.code(), Some(2), "{bad:?}: {}", stderr(&o));
        assert!(stderr(&o).contains("error:"), "{}", stderr(&o));
    }
    let o = run(&["run", "--", "no-such-command-sockmeter-test"]);
    assert_eq!(o.status.code(), Some(127));
    assert!(
        stderr(&o).contains("no-such-command-sockmeter-test: command not found"),
        "{}",
        stderr(&o)
    );
    let not_exec = s.path().join("not-executable");
    std::fs::write(&not_exec, "#!/bin/sh\nexit 0\n").unwrap();
    let o = run(&["run", "--", not_exec.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(126), "{}", stderr(&o));
    let o = sockmeter(s.path())
        .env("SOCKMETER_INTERVAL", "x")
        .env("SOCKMETER_UNIX", "perhaps")
        .args(["run", "--", "true"])
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(2),
        "a malformed variable is an error: {}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("SOCKMETER_UNIX=\"perhaps\""), "{}", stderr(&o));
}

#[test]
fn shim_path_prints_the_shim_or_says_why_not() {
    let s = Scratch::new();
    let o = sockmeter(s.path()).arg("shim-path").output().unwrap();
    assert_eq!(o.status.code(), Some(0));
    let shim = s.path().join("standin_shim.so").canonicalize().unwrap();
    assert_eq!(o.stdout, format!("{}\n", shim.display()).into_bytes());
    let o = Command::new(BIN)
        .env("SOCKMETER_SHIM", "/nonexistent/libsockmeter_shim.so")
        .arg("shim-path")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("SOCKMETER_SHIM=/nonexistent/libsockmeter_shim.so does not name a file"));
    let o = Command::new(BIN)
        .env("SOCKMETER_SHIM", "/nonexistent/x.so")
        .args(["run", "--", "true"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "no shim, nothing runs");
}

#[test]
fn a_static_program_is_named_before_it_runs() {
    let s = Scratch::new();
    let src = s.path().join("st.c");
    std::fs::write(
        &src,
        "#include <stdio.h>\nint main(void) { puts(\"static ran\"); return 5; }\n",
    )
    .unwrap();
    let prog = s.path().join("static-prog");
    match Command::new("cc")
        .arg("-static")
        .arg("-o")
        .arg(&prog)
        .arg(&src)
        .output()
    {
        Ok(o) if o.status.success() => {}
        other => {
            eprintln!("\n!!!!! SKIPPED a_static_program_is_named_before_it_runs: `cc -static` is unavailable ({other:?}); install libc6-dev !!!!!\n");
            return;
        }
    }
    let o = sockmeter(s.path())
        .args([OsStr::new("run"), OsStr::new("--"), prog.as_os_str()])
        .output()
        .unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(5), "it still runs: {err}");
    assert_eq!(o.stdout, b"static ran\n");
    let first = err.lines().next().unwrap();
    assert_eq!(
        first,
        format!(
            "sockmeter: {} is statically linked: the shim cannot be preloaded, its traffic will not be counted",
            prog.display()
        )
    );
}
