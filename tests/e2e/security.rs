//! Hostile input against the reporter and the report files: another user's symbolic link is
//! never written through, report files are private, `/dev/stderr` still works, and a process
//! outside the run cannot add to it.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::harness::{self, both_modes, direct, fresh_dir, python, root, shim, Sink, WithoutSockmeterEnv};

/// A python3 client sending 3000 bytes to a local peer; returns (exit code, stdout, stderr,
/// bytes the peer received).
fn client(env: &[(&str, &str)]) -> (Option<i32>, String, String, usize) {
    let sink = Sink::start();
    let script = format!(
        "import socket, sys\nc = socket.create_connection(('127.0.0.1', {}))\nc.sendall(b'z' * 3000)\nc.close()\nprint('sent 3000')\nsys.exit(4)\n",
        sink.port
    );
    let out = direct(&[python(), "-c", &script], env);
    let got = sink.received();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        got,
    )
}

/// The JSON report lines in `text` (a `SOCKMETER_REPORT` written to stderr).
fn report_lines(text: &str) -> Vec<sockmeter::report::Report> {
    text.lines()
        .filter(|l| l.starts_with("{\"schema\""))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn euid() -> u32 {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() }
}

#[test]
fn a_report_file_is_created_0600_and_dev_stderr_still_works() {
    let shim = shim().to_string_lossy().into_owned();
    let dir = fresh_dir("report-mode");
    let pattern = dir.join("r-%p.json").to_string_lossy().into_owned();
    let (code, _, err, got) = client(&[("LD_PRELOAD", &shim), ("SOCKMETER_REPORT", &pattern)]);
    assert_eq!((code, got), (Some(4), 3000), "{err}");
    let files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let meta = std::fs::metadata(&files[0]).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600, "the report is private");
    let r = harness::read_report(&files[0]);
    assert_eq!(r.processes[0].totals.tx_bytes, 3000);

    let (code, out, err, got) = client(&[("LD_PRELOAD", &shim), ("SOCKMETER_REPORT", "/dev/stderr")]);
    assert_eq!((code, out.as_str(), got), (Some(4), "sent 3000\n", 3000), "{err}");
    let reports = report_lines(&err);
    assert_eq!(reports.len(), 1, "one report line on stderr:\n{err}");
    assert_eq!(reports[0].processes[0].totals.tx_bytes, 3000, "exact against the peer");
}

both_modes! {
    /// Under the reporter (written by the shipper, or by the reporting thread) too.
    fn sockmeter_report_dev_stderr_under_the_reporter(mode) {
        let sink = Sink::start();
        let script = format!(
            "import socket\nc = socket.create_connection(('127.0.0.1', {}))\nc.sendall(b'y' * 2500)\nc.close()\n",
            sink.port
        );
        let r = harness::run_in(mode, &[], &[python(), "-c", &script], &[("SOCKMETER_REPORT", "/dev/stderr")]);
        let got = sink.received();
        assert_eq!((r.code, got), (0, 2500), "{}", r.stderr);
        let reports = report_lines(&r.stderr);
        assert_eq!(reports.len(), 1, "{}", r.stderr);
        assert_eq!(reports[0].processes[0].totals.tx_bytes, 2500);
        assert_eq!(r.report.totals.tx_bytes, 2500);
    }
}

/// Gives `link` (a symbolic link) to uid 4242, which needs root.
fn give_away(link: &Path) {
    assert_eq!(
        euid(),
        0,
        "this test gives a symbolic link to another user (lchown), which needs root; CI runs as root"
    );
    std::os::unix::fs::lchown(link, Some(4242), None).unwrap();
    assert_eq!(std::fs::symlink_metadata(link).unwrap().uid(), 4242);
}

#[test]
fn another_users_link_is_never_written_through() {
    let dir = fresh_dir("foreign-link");
    let victim = dir.join("victim");
    std::fs::write(&victim, "precious").unwrap();
    let link = dir.join("report.json");
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    give_away(&link);
    let link_s = link.to_string_lossy().into_owned();

    // The shim (no reporter): the host runs as without the shim, one line says why.
    let shim = shim().to_string_lossy().into_owned();
    let plain = client(&[]);
    let metered = client(&[("LD_PRELOAD", &shim), ("SOCKMETER_REPORT", &link_s)]);
    assert_eq!((metered.0, &metered.1, metered.3), (plain.0, &plain.1, 3000));
    let ours: Vec<&str> = metered.2.lines().filter(|l| l.starts_with("sockmeter:")).collect();
    assert_eq!(ours.len(), 1, "{}", metered.2);
    assert!(
        ours[0].contains(&format!(
            "refusing to follow the symbolic link {link_s} owned by uid 4242"
        )),
        "{}",
        ours[0]
    );
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");

    // `sockmeter run --json LINK`: refused before the command runs.
    let marker = dir.join("ran");
    let out = Command::new(harness::sockmeter())
        .args(["run", "--json", &link_s, "--", "touch"])
        .arg(&marker)
        .without_sockmeter_env()
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains(&format!("cannot write the JSON report to {link_s}")) && err.contains("owned by uid 4242"),
        "{err}"
    );
    assert!(!marker.exists(), "the command did not run");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
}

both_modes! {
    /// A process that is not part of the run (started by this test, not by the command) connects
    /// to the run's socket and sends a forged hello, socket, delta and bye: it is closed at once,
    /// counted, said once, and the report holds only the command's real counts, exact against
    /// the peer.
    fn an_outsider_cannot_add_to_the_run(mode) {
        let dir = fresh_dir("outsider");
        let (sock_file, go) = (dir.join("socket"), dir.join("go"));
        let sink = Sink::start();
        let client = root().join("tests/peers/tcp_client.py");
        let script = format!(
            r#"echo "$SOCKMETER_SOCKET" > {sock}.tmp && mv {sock}.tmp {sock}; i=0; while [ ! -e {go} ] && [ $i -lt 1500 ]; do sleep 0.02; i=$((i+1)); done; exec {py} {client} --port {port} --sizes 5000"#,
            sock = sock_file.display(),
            go = go.display(),
            py = python(),
            client = client.display(),
            port = sink.port,
        );
        let outsider = {
            let (sock_file, go) = (sock_file.clone(), go.clone());
            std::thread::spawn(move || {
                for _ in 0..1500 {
                    if sock_file.exists() {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                let out = Command::new(python())
                    .arg(root().join("tests/peers/hostile.py"))
                    .arg(format!("@{}", sock_file.display()))
                    .arg("forge")
                    .without_sockmeter_env()
                    .stdin(Stdio::null())
                    .output()
                    .expect("start the outsider");
                std::fs::write(&go, "").unwrap();
                out
            })
        };
        let r = harness::run_in(mode, &[], &["sh", "-c", &script], &[]);
        let got = sink.received();
        let out = outsider.join().unwrap();
        let verdict = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(verdict.contains("\"closed\": true"), "the reporter closed the outsider: {verdict} {}", String::from_utf8_lossy(&out.stderr));

        assert_eq!((r.code, got), (0, 5000), "{}", r.stderr);
        assert!(
            r.report.processes.iter().all(|p| p.pid != 777_777 && p.exe != "/forged/by/outsider"),
            "{:#?}",
            r.report.processes
        );
        assert_eq!(r.report.totals.tx_bytes, 5000, "only the real bytes, exact against the peer");
        assert_eq!(r.proc("python3").totals.tx_bytes, 5000);
        let warnings: Vec<&str> = r.stderr.lines().filter(|l| l.contains("refused a connection")).collect();
        assert_eq!(warnings.len(), 1, "said once:\n{}", r.stderr);
        assert!(warnings[0].contains("not a process of this run"), "{}", warnings[0]);
        assert!(
            r.report.notices.iter().any(|n| n.starts_with("refused 1 connection to the reporter")),
            "{:?}",
            r.report.notices
        );
    }
}
