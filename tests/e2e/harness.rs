//! The small harness every end-to-end test uses: where the built binaries are, running a
//! command under `sockmeter run --json`, compiling a C program, and starting an oracle peer
//! (a Python server, not metered, that reports what it really received and sent).

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

use serde_json::Value;
use sockmeter::report::{ProcessReport, Report};

/// The workspace root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The target directory the test binary was built into (target/debug or target/release).
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    // target/<profile>/deps/e2e-xxxx
    exe.parent().and_then(Path::parent).expect("target dir").to_path_buf()
}

/// The `sockmeter` binary and the shim, built by `cargo build --workspace` (the README's test
/// command builds them first; a missing one is a clear failure, never a skip).
pub fn sockmeter() -> PathBuf {
    let p = target_dir().join("sockmeter");
    assert!(
        p.exists(),
        "{} is missing: run `cargo build --workspace` before `cargo test` (scripts/test does both)",
        p.display()
    );
    p
}

/// The shim library.
pub fn shim() -> PathBuf {
    let p = target_dir().join("libsockmeter_shim.so");
    assert!(
        p.exists(),
        "{} is missing: run `cargo build --workspace` first (scripts/test does)",
        p.display()
    );
    p
}

/// A scratch directory for this test run.
pub fn scratch() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = std::env::temp_dir().join(format!("sockmeter-e2e-{}", std::process::id()));
        std::fs::create_dir_all(&d).expect("scratch dir");
        d
    })
}

/// The real python3 interpreter (not a version-manager wrapper script, which would add
/// bash/exec images of its own to every report).
pub fn python() -> &'static str {
    static PY: OnceLock<String> = OnceLock::new();
    PY.get_or_init(|| {
        let out = Command::new("python3")
            .args(["-c", "import sys; print(sys.executable)"])
            .without_sockmeter_env()
            .output()
            .expect("python3 is needed by the end-to-end tests");
        assert!(out.status.success(), "python3 -c failed");
        let p = String::from_utf8(out.stdout).expect("utf-8").trim().to_string();
        assert!(!p.is_empty(), "python3 did not name its executable");
        p
    })
}

/// Compiles `tests/c/<name>.c` with `cc -O2 -Wall <flags>` (once per name+flags) and returns
/// the executable. Safe to call from parallel tests: each compile writes its own temporary file
/// (pid and a counter in its name) and renames it into place atomically, so a caller never sees
/// a half-written executable; two racing compiles of the same program just both succeed.
pub fn compile_c(name: &str, flags: &[&str]) -> PathBuf {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let src = root().join("tests/c").join(format!("{name}.c"));
    let tag: String = flags
        .iter()
        .map(|f| f.replace(|c: char| !c.is_ascii_alphanumeric(), ""))
        .collect();
    let out = scratch().join(format!("{name}{tag}"));
    if out.exists() {
        return out;
    }
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = scratch().join(format!("{name}{tag}.{}.{n}.tmp", std::process::id()));
    let st = Command::new("cc")
        .arg("-O2")
        .arg("-Wall")
        .args(flags)
        .arg("-o")
        .arg(&tmp)
        .arg(&src)
        .status()
        .expect("cc");
    assert!(st.success(), "compiling {} failed", src.display());
    std::fs::rename(&tmp, &out).unwrap_or_else(|e| panic!("rename {} to {}: {e}", tmp.display(), out.display()));
    out
}

/// What `sockmeter run` produced.
pub struct Run {
    /// The reporter's exit status code (the command's, 128+N on a signal).
    pub code: i32,
    /// The command's stdout (relayed untouched).
    pub stdout: String,
    /// stderr: the command's and the summary.
    pub stderr: String,
    /// The JSON report.
    pub report: Report,
    /// The same report as raw JSON.
    pub json: Value,
}

impl Run {
    /// The processes whose argv[0] ends with `name` (or exe does).
    pub fn procs(&self, name: &str) -> Vec<&ProcessReport> {
        self.report
            .processes
            .iter()
            .filter(|p| p.exe.ends_with(name) || p.argv.first().is_some_and(|a| a.ends_with(name)))
            .collect()
    }
    /// The one process matching `name`.
    pub fn proc(&self, name: &str) -> &ProcessReport {
        let v = self.procs(name);
        assert_eq!(
            v.len(),
            1,
            "expected one process named {name}, got {}:\n{}",
            v.len(),
            self.stderr
        );
        v[0]
    }
}

/// Runs `cmd` under `sockmeter run --json FILE <extra>`; stdin is empty.
pub fn run(extra: &[&str], cmd: &[&str]) -> Run {
    run_with(extra, cmd, &[])
}

/// Removes from `c` every inherited variable that changes how the shim or the reporter behaves:
/// `LD_PRELOAD` and each `SOCKMETER_*` (by prefix, so a variable added to the product later is
/// covered too). A variable already set explicitly on `c` is kept, so the order of this call and
/// the caller's own `env` calls does not matter.
pub fn strip_sockmeter_env(c: &mut Command) -> &mut Command {
    let set: Vec<std::ffi::OsString> = c
        .get_envs()
        .filter(|(_, v)| v.is_some())
        .map(|(k, _)| k.to_os_string())
        .collect();
    for (k, _) in std::env::vars_os() {
        let ours = k == "LD_PRELOAD" || k.as_encoded_bytes().starts_with(b"SOCKMETER_");
        if ours && !set.contains(&k) {
            c.env_remove(&k);
        }
    }
    c
}

/// [`strip_sockmeter_env`] as a builder step: `Command::new(..).without_sockmeter_env()`.
pub trait WithoutSockmeterEnv {
    /// Removes every inherited `LD_PRELOAD` and `SOCKMETER_*` not set explicitly.
    fn without_sockmeter_env(&mut self) -> &mut Self;
}

impl WithoutSockmeterEnv for Command {
    fn without_sockmeter_env(&mut self) -> &mut Self {
        strip_sockmeter_env(self)
    }
}

/// Runs a program directly (not under `sockmeter run`; stdin empty) with exactly the
/// sockmeter environment given in `env`: every inherited `LD_PRELOAD` and `SOCKMETER_*` is
/// removed first.
pub fn direct(cmd: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut c = Command::new(cmd[0]);
    c.args(&cmd[1..]).stdin(Stdio::null());
    strip_sockmeter_env(&mut c);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap_or_else(|e| panic!("spawn {}: {e}", cmd[0]))
}

/// As [`run`], with extra environment variables.
pub fn run_with(extra: &[&str], cmd: &[&str], env: &[(&str, &str)]) -> Run {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let json_path = scratch().join(format!("report-{n}.json"));
    let mut c = Command::new(sockmeter());
    c.arg("run")
        .arg("--json")
        .arg(&json_path)
        .args(extra)
        .arg("--")
        .args(cmd);
    c.stdin(Stdio::null());
    // The developer's own environment must not switch the mode the tests assume (a
    // `SOCKMETER_SHIPPER=none` or a `SOCKMETER_UNIX=1` left exported, a shim preloaded into the
    // reporter itself): only what the caller passes here reaches the run.
    strip_sockmeter_env(&mut c);
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().expect("spawn sockmeter");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let text = std::fs::read_to_string(&json_path)
        .unwrap_or_else(|e| panic!("no report at {}: {e}\nstderr:\n{stderr}", json_path.display()));
    let json: Value = serde_json::from_str(&text).expect("report is JSON");
    let report: Report = serde_json::from_value(json.clone()).expect("report matches the schema types");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr,
        report,
        json,
    }
}

/// An oracle peer: a Python script from tests/peers/, not metered, that prints one line with
/// its port first and one JSON line with what it saw when it ends.
pub struct Peer {
    child: Child,
    /// The port it listens on.
    pub port: u16,
}

impl Peer {
    /// Starts `tests/peers/<script>` with `args`; waits for its port line.
    pub fn start(script: &str, args: &[&str]) -> Peer {
        let mut child = Command::new(python())
            .arg(root().join("tests/peers").join(script))
            .args(args)
            .without_sockmeter_env()
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 (an oracle peer)");
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().expect("stdout"))
            .read_line(&mut line)
            .expect("port line");
        let port = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("peer {script} printed {line:?} instead of a port"));
        Peer { child, port }
    }

    /// Waits for the peer to finish and returns its JSON verdict (it must end by itself).
    pub fn finish(mut self) -> Value {
        let mut rest = String::new();
        self.child
            .stdout
            .take()
            .expect("stdout")
            .read_to_string(&mut rest)
            .expect("read peer");
        let st = self.child.wait().expect("wait peer");
        assert!(st.success(), "peer failed: {st}");
        let last = rest.lines().last().unwrap_or_else(|| panic!("peer printed no verdict"));
        serde_json::from_str(last).unwrap_or_else(|e| panic!("peer verdict {last:?}: {e}"))
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sum of tx/rx over every process of a run.
pub fn totals(r: &Run) -> (u64, u64) {
    (r.report.totals.tx_bytes, r.report.totals.rx_bytes)
}
