//! Helpers for the tests of the reporters people keep open: `sockmeter listen` in the
//! background, metered clients started with the environment it prints, a terminal in tmux
//! (typing keys, reading the screen), and reading the event stream as it grows.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{self, Mode, WithoutSockmeterEnv};

/// Waits (bounded) until `cond` holds; false if it never did.
pub fn eventually(within: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    cond()
}

/// Reads `r` to its end on a thread; the text arrives on the channel.
pub fn reader(mut r: impl Read + Send + 'static) -> std::sync::mpsc::Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut s = String::new();
        let _ = r.read_to_string(&mut s);
        let _ = tx.send(s);
    });
    rx
}

/// `sockmeter listen` running in the background (stdin empty, stderr read by a thread).
pub struct Listen {
    child: Child,
    /// The environment it printed, as pairs.
    pub env: Vec<(String, String)>,
    stderr: std::sync::mpsc::Receiver<String>,
}

impl Listen {
    /// Starts `sockmeter listen --socket SOCKET <extra>` and reads the environment line it
    /// prints on stdout.
    pub fn start(socket: &Path, extra: &[&str]) -> Listen {
        let mut c = Command::new(harness::sockmeter());
        c.arg("listen").arg("--socket").arg(socket).args(extra);
        c.without_sockmeter_env()
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().expect("spawn sockmeter listen");
        let stderr = reader(child.stderr.take().expect("stderr"));
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("the environment line");
        let env = parse_env(&line);
        assert!(
            env.iter().any(|(k, _)| k == "SOCKMETER_SOCKET"),
            "listen printed {line:?} (stderr: {:?})",
            stderr.try_recv().ok()
        );
        Listen { child, env, stderr }
    }

    /// Its pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops it with SIGTERM and waits (bounded) for it to write its report: its status and
    /// stderr.
    pub fn stop(mut self) -> (i32, String) {
        // SAFETY: kill on our own child, not yet reaped.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(st) = self.child.try_wait().expect("try_wait") {
                break st;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("sockmeter listen did not stop within 60 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let err = self.stderr.recv_timeout(Duration::from_secs(30)).unwrap_or_default();
        (status.code().unwrap_or(-1), err)
    }
}

impl Drop for Listen {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `K=V K=V ...` (values may be single-quoted) as pairs.
pub fn parse_env(line: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = line.trim();
    while !rest.is_empty() {
        let Some((k, v)) = rest.split_once('=') else { break };
        let (value, next) = if let Some(q) = v.strip_prefix('\'') {
            let end = q.find('\'').unwrap_or(q.len());
            (q[..end].to_string(), q.get(end + 1..).unwrap_or(""))
        } else {
            let end = v.find(' ').unwrap_or(v.len());
            (v[..end].to_string(), &v[end..])
        };
        out.push((k.trim().to_string(), value));
        rest = next.trim_start();
    }
    out
}

/// `tests/peers/drip.py ARGS` metered with `env` in shipping `mode` (stdout and stderr piped).
pub fn drip(env: &[(String, String)], mode: Mode, args: &[&str]) -> Child {
    let mut c = Command::new(harness::python());
    c.arg(harness::root().join("tests/peers/drip.py")).args(args);
    c.without_sockmeter_env();
    for (k, v) in env {
        c.env(k, v);
    }
    for (k, v) in mode.env() {
        c.env(k, v);
    }
    c.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start drip.py")
}

/// Waits (bounded) for a drip client: (what it says it sent, its stderr).
pub fn finish_drip(mut c: Child) -> (u64, String) {
    let out = reader(c.stdout.take().expect("stdout"));
    let err = reader(c.stderr.take().expect("stderr"));
    let st = c.wait().expect("wait drip");
    let out = out.recv_timeout(Duration::from_secs(60)).unwrap_or_default();
    let err = err.recv_timeout(Duration::from_secs(60)).unwrap_or_default();
    assert!(st.success(), "drip.py failed ({st}): {out} {err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("drip said {out:?}: {e}"));
    (v["sent"].as_u64().expect("sent"), err)
}

/// The `bye` lines an event stream holds so far, by pid.
pub fn byes(stream: &Path) -> Vec<u32> {
    std::fs::read_to_string(stream)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["type"] == "bye")
        .filter_map(|v| v["pid"].as_u64().map(|p| p as u32))
        .collect()
}

/// The pids of every `hello` an event stream holds so far, sorted, each once.
pub fn hello_pids(stream: &Path) -> Vec<u32> {
    let mut pids: Vec<u32> = std::fs::read_to_string(stream)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["type"] == "hello")
        .filter_map(|v| v["pid"].as_u64().map(|p| p as u32))
        .collect();
    pids.sort();
    pids.dedup();
    pids
}

/// Lines of ours on a metered program's stderr.
pub fn our_lines(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| l.starts_with("sockmeter:")).collect()
}

/// A terminal: a tmux server of its own (its own socket), one window running a plain shell.
pub struct Tmux {
    socket: PathBuf,
}

impl Tmux {
    /// Starts the server with a `width`×`height` window running `bash` without rc files, in
    /// the test's environment without sockmeter's variables.
    pub fn start(width: u16, height: u16) -> Tmux {
        let socket = harness::scratch_path("tmux");
        let t = Tmux { socket };
        let st = t
            .cmd()
            .args([
                "new-session",
                "-d",
                "-s",
                "t",
                "-x",
                &width.to_string(),
                "-y",
                &height.to_string(),
            ])
            .args(["env", "PS1=$ ", "TERM=xterm-256color", "bash", "--norc", "--noprofile"])
            .status()
            .expect("tmux is needed by the live view's tests (.ci/run installs it)");
        assert!(st.success(), "tmux new-session failed");
        t
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new("tmux");
        c.arg("-S").arg(&self.socket).without_sockmeter_env();
        c
    }

    /// Types `text` literally, then Enter.
    pub fn line(&self, text: &str) {
        self.keys_literal(text);
        self.key("Enter");
    }

    /// Types `text` literally.
    pub fn keys_literal(&self, text: &str) {
        let st = self
            .cmd()
            .args(["send-keys", "-t", "t", "-l", text])
            .status()
            .expect("tmux");
        assert!(st.success());
    }

    /// Presses one key (tmux's name: `q`, `C-c`, `Enter`).
    pub fn key(&self, key: &str) {
        let st = self.cmd().args(["send-keys", "-t", "t", key]).status().expect("tmux");
        assert!(st.success());
    }

    /// The screen's text now.
    pub fn screen(&self) -> String {
        let out = self
            .cmd()
            .args(["capture-pane", "-p", "-t", "t"])
            .output()
            .expect("tmux");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The pid of the program the window's shell is running now (its only child), if any.
    pub fn shell_child(&self) -> Option<u32> {
        let out = self
            .cmd()
            .args(["list-panes", "-t", "t", "-F", "#{pane_pid}"])
            .output()
            .ok()?;
        let shell: u32 = String::from_utf8_lossy(&out.stdout).trim().parse().ok()?;
        std::fs::read_to_string(format!("/proc/{shell}/task/{shell}/children"))
            .ok()?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    }

    /// Waits (bounded) until the screen satisfies `cond`; the screen then (the last one seen
    /// when it never did, for the failure message).
    pub fn wait_for(&self, within: Duration, cond: impl Fn(&str) -> bool) -> Result<String, String> {
        let mut last = String::new();
        if eventually(within, || {
            last = self.screen();
            cond(&last)
        }) {
            Ok(last)
        } else {
            Err(last)
        }
    }
}

impl Tmux {
    /// Closes the terminal: the tmux server goes, and with it the window's terminal (a hang-up
    /// for whatever runs in it).
    pub fn kill(&self) {
        let _ = self.cmd().arg("kill-server").status();
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `sockmeter replay -` of `text`: the report it writes.
pub fn replay_text(text: &str) -> sockmeter::report::Report {
    use std::io::Write;
    let json = harness::scratch_path("replay").with_extension("json");
    let mut c = Command::new(harness::sockmeter())
        .args(["replay", "-", "--json"])
        .arg(&json)
        .without_sockmeter_env()
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("replay");
    c.stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("feed replay");
    let out = c.wait_with_output().expect("replay");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    harness::read_report(&json)
}
