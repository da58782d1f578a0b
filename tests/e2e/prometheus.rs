//! The reporter people keep open, end to end: `sockmeter listen --prometheus ADDR --live
//! --json-stream FILE` in a terminal (tmux), metered processes started and restarted at will
//! (in both shipping modes), a restart of `listen` in the middle, and a real Prometheus server
//! (Debian's `prometheus`, on loopback, its own config and storage) scraping it. The live view,
//! Prometheus's answer, the final report and `replay` of the stream show the same numbers, equal
//! to what the server received.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::harness::{self, fresh_dir, read_report, Counter, Mode, WithoutSockmeterEnv};
use crate::reporters::{byes, drip, eventually, finish_drip, hello_pids, parse_env, Tmux};

const WAIT: Duration = Duration::from_secs(60);

/// A free port on loopback (chosen by the kernel, then let go).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A GET on loopback; the body when the status is 200.
fn get(port: u16, target: &str) -> Option<String> {
    let mut c = TcpStream::connect(("127.0.0.1", port)).ok()?;
    c.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(c, "GET {target} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut text = String::new();
    c.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    (head.split(' ').nth(1) == Some("200")).then(|| body.to_string())
}

/// Percent-encodes a query parameter.
fn encode(q: &str) -> String {
    q.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"_-.".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Prometheus from Debian's package, on loopback, scraping `target` every second.
struct Prometheus {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Prometheus {
    fn start(dir: &Path, target: u16) -> Prometheus {
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: sockmeter\n    static_configs:\n      - targets: ['127.0.0.1:{target}']\n"
            ),
        )
        .unwrap();
        let port = free_port();
        let log = dir.join("prometheus.log");
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn")
            .without_sockmeter_env()
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("prometheus (Debian's package) is needed by this test; .ci/run installs it");
        let p = Prometheus { child, port, log };
        assert!(
            eventually(WAIT, || get(p.port, "/-/ready").is_some()),
            "Prometheus did not get ready: {}",
            std::fs::read_to_string(&p.log).unwrap_or_default()
        );
        p
    }

    /// The value of an instant query that answers one number.
    fn query(&self, q: &str) -> Option<f64> {
        let body = get(self.port, &format!("/api/v1/query?query={}", encode(q)))?;
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        v["data"]["result"][0]["value"][1].as_str()?.parse().ok()
    }

    /// Waits (bounded) until `q` answers `want`.
    fn wait_for(&self, q: &str, want: f64) {
        let mut last = None;
        assert!(
            eventually(WAIT, || {
                last = self.query(q);
                last == Some(want)
            }),
            "Prometheus answers {q} = {last:?}, not {want}; its log: {}",
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The pid of `listen` running in the tmux window (the shell's one child).
fn listen_pid(t: &Tmux) -> u32 {
    let mut pid = None;
    assert!(
        eventually(WAIT, || {
            pid = t.shell_child();
            pid.is_some()
        }),
        "listen is not running in the terminal:\n{}",
        t.screen()
    );
    pid.unwrap()
}

/// The `listen` command line typed in the terminal.
fn listen_line(socket: &Path, metrics: u16, stream: &Path, json: &Path, env: &Path) -> String {
    format!(
        "{} listen --socket {} --prometheus 127.0.0.1:{metrics} --live --interval 250 --json-stream {} --json {} > {}; echo LISTEN-DONE=$?",
        harness::sockmeter().display(),
        socket.display(),
        stream.display(),
        json.display(),
        env.display()
    )
}

/// The environment `listen` printed into `file`.
fn env_from(file: &Path) -> Vec<(String, String)> {
    let mut env = Vec::new();
    assert!(
        eventually(WAIT, || {
            env = parse_env(&std::fs::read_to_string(file).unwrap_or_default());
            !env.is_empty()
        }),
        "listen printed no environment"
    );
    env
}

/// The done criterion of the reporter people keep open (issue 12): the live view, Prometheus,
/// the final report and `replay` agree, exactly, across processes started, restarted and
/// ended at will and a restart of `listen`; and no Prometheus counter ever went down.
#[test]
fn listen_live_prometheus_report_and_replay_agree() {
    let dir = fresh_dir("keep-open");
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let socket = dir.join("s.sock");
    let stream = dir.join("stream.ndjson");
    let (r1, r2, r3) = (dir.join("r1.json"), dir.join("r2.json"), dir.join("r3.json"));
    let stop = dir.join("stop");
    let metrics = free_port();
    let prom = Prometheus::start(&dir, metrics);
    // Two long ones, 2 short runs each of two programs, one short one while listen is down.
    let server = Counter::start(2 + 2 * 2 + 2 * 2 + 2, 0);
    let port = server.port.to_string();
    let short = ["--port", port.as_str(), "--conns", "2", "--size", "1500"];

    let t = Tmux::start(180, 50);
    t.line(&listen_line(&socket, metrics, &stream, &r1, &dir.join("env1")));
    let env = env_from(&dir.join("env1"));
    t.wait_for(WAIT, |s| s.contains("busiest connections"))
        .unwrap_or_else(|s| panic!("the live view:\n{s}"));
    let long_args = [
        "--port",
        port.as_str(),
        "--until",
        stop.to_str().unwrap(),
        "--size",
        "100",
        "--every",
        "0.02",
    ];
    let long_shipper = drip(&env, Mode::Shipper, &long_args);
    let long_thread = drip(&env, Mode::Thread, &long_args);
    let mut sent = 0;
    for mode in [Mode::Shipper, Mode::Thread] {
        sent += finish_drip(drip(&env, mode, &short)).0;
    }

    // listen stops (SIGTERM, as a service manager would) and starts again on the same stream.
    let first = listen_pid(&t);
    // SAFETY: kill with a pid read from /proc a moment ago (the test's own descendant).
    unsafe { libc::kill(first as libc::pid_t, libc::SIGTERM) };
    t.wait_for(WAIT, |s| s.contains("LISTEN-DONE=0"))
        .unwrap_or_else(|s| panic!("the first listen did not end:\n{s}"));
    assert!(r1.exists(), "the first listen wrote its report");
    // A process that runs and ends while no reporter listens: its shipper keeps its counts.
    sent += finish_drip(drip(&env, Mode::Shipper, &short)).0;
    t.line(&listen_line(&socket, metrics, &stream, &r2, &dir.join("env2")));
    let env2 = env_from(&dir.join("env2"));
    assert_eq!(
        env2, env,
        "the same environment: processes need not know of the restart"
    );
    for mode in [Mode::Shipper, Mode::Thread] {
        sent += finish_drip(drip(&env, mode, &short)).0;
    }
    std::fs::write(&stop, b"").unwrap();
    sent += finish_drip(long_shipper).0 + finish_drip(long_thread).0;
    let seen = server.finish();
    assert_eq!(seen.rx, sent, "the server got everything the clients sent");
    assert_eq!(seen.conns, 12);
    // Seven processes (the one that ended while nobody listened arrives when its shipper's
    // next try finds the second listen), each with its goodbye.
    assert!(
        eventually(WAIT, || {
            let (pids, b) = (hello_pids(&stream), byes(&stream));
            pids.len() == 7 && pids.iter().all(|p| b.contains(p))
        }),
        "every process's goodbye reached the second listen: {:?} {:?}",
        hello_pids(&stream),
        byes(&stream)
    );

    // Prometheus.
    prom.wait_for("sum(sockmeter_tx_bytes_total)", seen.rx as f64);
    prom.wait_for("sum(sockmeter_connections_total)", 12.0);
    assert_eq!(prom.query("sum(sockmeter_rx_bytes_total)"), Some(0.0));
    assert_eq!(
        prom.query("sum(resets(sockmeter_tx_bytes_total[10m]))"),
        Some(0.0),
        "no counter went down, across the restart of listen and the processes' reconnections"
    );
    // The live view, in exact bytes.
    t.key("b");
    let want = format!("out {} B (", seen.rx);
    t.wait_for(WAIT, |s| {
        s.lines().any(|l| l.starts_with("total: in 0 B (") && l.contains(&want))
    })
    .unwrap_or_else(|s| panic!("the live view does not show {want}:\n{s}"));
    // The report, when listen is stopped from its view.
    t.key("q");
    t.wait_for(WAIT, |s| s.matches("LISTEN-DONE=0").count() == 2)
        .unwrap_or_else(|s| panic!("the second listen did not end:\n{s}"));
    let r = read_report(&r2);
    assert_eq!((r.totals.tx_bytes, r.totals.connections), (seen.rx, 12), "the report");
    assert_eq!(r.processes.len(), 7, "each process image once, its connections merged");
    assert!(
        r.processes.iter().all(|p| p.end == "exit"),
        "{:?}",
        r.processes.iter().map(|p| &p.end).collect::<Vec<_>>()
    );
    // replay of the recorded stream.
    let out = Command::new(harness::sockmeter())
        .arg("replay")
        .arg(&stream)
        .arg("--json")
        .arg(&r3)
        .without_sockmeter_env()
        .output()
        .expect("replay");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(read_report(&r3), r, "replay agrees");
}
