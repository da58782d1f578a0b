//! `sockmeter listen`: processes started elsewhere, with the environment it prints, coming and
//! going, before it starts and across its restarts; every count exact against the server that
//! received the bytes, in both shipping modes; the socket's directory checked.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::harness::{self, both_modes, fresh_dir, read_report, Counter, WithoutSockmeterEnv};
use crate::reporters::{byes, drip, eventually, finish_drip, hello_pids, our_lines, Listen};

/// Waits (bounded) until the stream holds a `bye` from each of `pids`.
fn all_said_bye(stream: &Path, pids: &[u32]) {
    assert!(
        eventually(Duration::from_secs(60), || {
            let b = byes(stream);
            pids.iter().all(|p| b.contains(p))
        }),
        "not every process's goodbye reached the stream: wanted {pids:?}, got {:?}",
        byes(stream)
    );
}

fn replay(stream: &Path, json: &Path) {
    let out = Command::new(harness::sockmeter())
        .arg("replay")
        .arg(stream)
        .arg("--json")
        .arg(json)
        .without_sockmeter_env()
        .output()
        .expect("sockmeter replay");
    assert!(
        out.status.success(),
        "replay failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A fresh directory for a `listen` socket, closed to others (as `listen` requires).
fn private_dir(name: &str) -> std::path::PathBuf {
    let dir = fresh_dir(name);
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    dir
}

/// What a program started by hand for a `listen` at `socket` carries: the shim, the socket and
/// the shipper (the mode's variables come on top, `drip`).
fn host_env(socket: &Path) -> Vec<(String, String)> {
    vec![
        ("LD_PRELOAD".to_string(), harness::shim().display().to_string()),
        ("SOCKMETER_SOCKET".to_string(), socket.display().to_string()),
        (
            "SOCKMETER_SHIPPER".to_string(),
            harness::sockmeter().display().to_string(),
        ),
    ]
}

both_modes! {
    /// Processes come and go (short ones started one after the other, a long one streaming
    /// throughout) while `listen` is stopped with SIGTERM and started again on the same event
    /// stream: the long one keeps counting while no reporter is there and reconnects; the
    /// second `listen`'s report holds everything, exact against the server, each process once
    /// (its connections before and after the restart merged); `replay` of the stream agrees.
    fn a_listen_restart_loses_nothing(mode) {
        let dir = private_dir("listen-restart");
        let (socket, stream, stop) = (dir.join("s.sock"), dir.join("stream.ndjson"), dir.join("stop"));
        let (r1, r2, r3) = (dir.join("r1.json"), dir.join("r2.json"), dir.join("r3.json"));
        let port = Counter::start(1 + 3 + 3, 0);
        let p = port.port.to_string();
        let args = |json: &Path| vec!["--json-stream".to_string(), stream.display().to_string(), "--json".into(), json.display().to_string()];
        let a1 = args(&r1);
        let l1 = Listen::start(&socket, &a1.iter().map(String::as_str).collect::<Vec<_>>());
        let env = l1.env.clone();
        let long = drip(&env, mode, &["--port", &p, "--until", &stop.display().to_string(), "--size", "100", "--every", "0.02"]);
        let long_pid = long.id();
        let (first, err1) = finish_drip(drip(&env, mode, &["--port", &p, "--conns", "3", "--size", "1000"]));
        assert!(our_lines(&err1).is_empty(), "{err1}");
        assert!(eventually(Duration::from_secs(30), || port.accepted() >= 4), "the long one streams");
        assert!(
            eventually(Duration::from_secs(30), || hello_pids(&stream).contains(&long_pid)),
            "the long one reached the first listen"
        );
        let (code, err) = l1.stop();
        assert_eq!(code, 0, "{err}");
        let mid = read_report(&r1);
        assert!(mid.processes.iter().any(|p| p.pid == long_pid && p.end == "running"), "the long one runs on:\n{err}");
        // No reporter for a while: the long one streams on.
        std::thread::sleep(Duration::from_millis(500));
        let a2 = args(&r2);
        let l2 = Listen::start(&socket, &a2.iter().map(String::as_str).collect::<Vec<_>>());
        let (second, err2) = finish_drip(drip(&l2.env, mode, &["--port", &p, "--conns", "3", "--size", "1000"]));
        assert!(our_lines(&err2).is_empty(), "{err2}");
        std::fs::write(&stop, b"").unwrap();
        let (streamed, long_err) = finish_drip(long);
        let seen = port.finish();
        assert_eq!(seen.rx, first + second + streamed, "the server got it all");
        assert!(our_lines(&long_err).is_empty(), "a restart asked for is not a failure to report: {long_err}");
        let pids: Vec<u32> = hello_pids(&stream);
        all_said_bye(&stream, &pids);
        let (code, err) = l2.stop();
        assert_eq!(code, 0, "{err}");
        let r = read_report(&r2);
        assert_eq!(r.totals.tx_bytes, seen.rx, "exact across the restart:\n{err}");
        assert_eq!(r.totals.connections, 7);
        assert_eq!(r.processes.len(), 3, "the long one is one process, whatever its connections:\n{err}");
        let long_r = r.processes.iter().find(|p| p.pid == long_pid).expect("the long one");
        assert_eq!((long_r.totals.tx_bytes, long_r.end.as_str()), (streamed, "exit"));
        replay(&stream, &r3);
        assert_eq!(read_report(&r3), r, "replay agrees with the report");
    }

    /// A process started while no reporter listens (its socket does not exist yet) counts on,
    /// says so once, and sends everything once `listen` starts: exact.
    fn a_process_started_before_listen_is_counted_once_it_is_there(mode) {
        let dir = private_dir("listen-late");
        let (socket, stop, json) = (dir.join("s.sock"), dir.join("stop"), dir.join("r.json"));
        let port = Counter::start(1, 0);
        let env = host_env(&socket);
        let p = port.port.to_string();
        let early = drip(&env, mode, &["--port", &p, "--until", &stop.display().to_string(), "--size", "100", "--every", "0.02"]);
        let early_pid = early.id();
        assert!(eventually(Duration::from_secs(30), || port.accepted() >= 1), "it runs");
        std::thread::sleep(Duration::from_millis(300));
        let l = Listen::start(&socket, &["--json", &json.display().to_string(), "--json-stream", &dir.join("s.ndjson").display().to_string()]);
        std::thread::sleep(Duration::from_millis(300));
        std::fs::write(&stop, b"").unwrap();
        let (sent, err) = finish_drip(early);
        let seen = port.finish();
        assert_eq!(seen.rx, sent);
        let ours = our_lines(&err);
        assert_eq!(ours.len(), 1, "said once: {err}");
        assert!(ours[0].contains("counting on"), "{}", ours[0]);
        all_said_bye(&dir.join("s.ndjson"), &[early_pid]);
        let (code, lerr) = l.stop();
        assert_eq!(code, 0, "{lerr}");
        let r = read_report(&json);
        assert_eq!(r.totals.tx_bytes, seen.rx, "everything, counted while nobody listened:\n{lerr}");
        assert_eq!(r.processes.len(), 1);
    }
}

both_modes! {
    /// A process that ends while no reporter listens keeps its counts for the next `listen`, and
    /// nothing waits for it: in its shipper (which lets go of the terminal), or, in thread mode,
    /// in a writer process the exit hands them to (it keeps no fd of the host's and tries for
    /// 30 s). They are delivered, exact, when `listen` starts.
    fn an_ended_process_keeps_its_counts_for_the_next_listen(mode) {
        let dir = private_dir("listen-linger");
        let (socket, json, stream) = (dir.join("s.sock"), dir.join("r.json"), dir.join("s.ndjson"));
        let port = Counter::start(2, 0);
        let env = host_env(&socket);
        // The client's stdout and stderr are pipes: it is finished when both close, which what
        // keeps its counts (its shipper, or the writer) must not hold up.
        let (sent, _) = finish_drip(drip(
            &env,
            mode,
            &["--port", &port.port.to_string(), "--conns", "2", "--size", "700"],
        ));
        let seen = port.finish();
        assert_eq!(seen.rx, sent);
        let l = Listen::start(
            &socket,
            &[
                "--json",
                &json.display().to_string(),
                "--json-stream",
                &stream.display().to_string(),
            ],
        );
        assert!(
            eventually(Duration::from_secs(30), || !byes(&stream).is_empty()),
            "the ended host's counts were delivered"
        );
        let (code, err) = l.stop();
        assert_eq!(code, 0, "{err}");
        let r = read_report(&json);
        assert_eq!((r.totals.tx_bytes, r.totals.connections), (1400, 2), "{err}");
        assert_eq!(r.processes[0].end, "exit");
    }
}

fn listen_fails(socket: &Path) -> String {
    let out = Command::new(harness::sockmeter())
        .arg("listen")
        .arg("--socket")
        .arg(socket)
        .without_sockmeter_env()
        .stdin(std::process::Stdio::null())
        .output()
        .expect("sockmeter listen");
    assert_eq!(out.status.code(), Some(2), "refused before listening");
    assert!(out.stdout.is_empty(), "no environment printed");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The socket's directory must be the user's own and closed to others: one open to others,
/// one owned by another user, a symbolic link and a `sockmeter.*` name are refused before
/// anything listens; a second `listen` on a socket in use is refused too.
#[test]
fn listen_refuses_an_unsafe_directory_and_a_socket_in_use() {
    use std::os::unix::fs::PermissionsExt;
    let base = fresh_dir("listen-dirs");
    let open = base.join("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o755)).unwrap();
    let e = listen_fails(&open.join("s.sock"));
    assert!(e.contains("open to other users (mode 0755)"), "{e}");
    let foreign = base.join("foreign");
    std::fs::create_dir(&foreign).unwrap();
    std::fs::set_permissions(&foreign, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::chown(&foreign, Some(4242), Some(4242)).expect("chown (CI runs as root)");
    let e = listen_fails(&foreign.join("s.sock"));
    assert!(e.contains("belongs to uid 4242"), "{e}");
    let link = base.join("link");
    std::os::unix::fs::symlink(&foreign, &link).unwrap();
    assert!(listen_fails(&link.join("s.sock")).contains("symbolic link"));
    assert!(listen_fails(&base.join("sockmeter.x/s.sock")).contains("sockmeter run's private ones"));
    let mine = base.join("mine");
    let l = Listen::start(&mine.join("s.sock"), &[]);
    let mode = std::fs::metadata(&mine).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "created private");
    assert!(listen_fails(&mine.join("s.sock")).contains("another reporter listens"));
    let (code, err) = l.stop();
    assert_eq!(code, 0, "{err}");
    assert!(!mine.join("s.sock").exists(), "its socket is removed at its end");
}

/// SIGTERM the moment the environment line is out (a service manager that stops what it just
/// started): `listen` writes its report and exits 0, every time. It used to print the line
/// before it handled SIGTERM, and died of it when the signal came first.
#[test]
fn sigterm_right_after_the_environment_line_writes_the_report() {
    let base = fresh_dir("listen-early-term");
    for i in 0..20 {
        let json = base.join(format!("r{i}.json"));
        let l = Listen::start(&base.join(format!("s{i}/s.sock")), &["--json", json.to_str().unwrap()]);
        let (code, err) = l.stop();
        assert_eq!(code, 0, "round {i}: {err}");
        assert!(json.exists(), "round {i}: the report was written: {err}");
    }
}
