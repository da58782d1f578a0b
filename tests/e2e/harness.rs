//! The small harness every end-to-end test uses: where the built binaries are, running a
//! command under `sockmeter run --json`, compiling a C program, and starting an oracle peer
//! (a Python server, not metered, that reports what it really received and sent).

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::thread::JoinHandle;
use std::time::Duration;

use serde::de::DeserializeOwned;
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

/// A file `cargo build --workspace` puts in target/<profile>/ (a binary, the shim, a plugin,
/// the example server). The README's test command builds them first; a missing one is a clear
/// failure, never a skip.
pub fn built(name: &str) -> PathBuf {
    let p = target_dir().join(name);
    assert!(
        p.exists(),
        "{} is missing: run `cargo build --workspace` before `cargo test` (scripts/test does both)",
        p.display()
    );
    p
}

/// The `sockmeter` binary.
pub fn sockmeter() -> PathBuf {
    built("sockmeter")
}

/// The shim library.
pub fn shim() -> PathBuf {
    built("libsockmeter_shim.so")
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

/// A fresh path in the scratch directory, `<tag>-<n>` (one counter for the whole test binary,
/// so no two calls ever return the same path). Nothing is created.
pub fn scratch_path(tag: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    scratch().join(format!("{tag}-{n}"))
}

/// A fresh, empty directory in the scratch directory ([`scratch_path`], created).
pub fn fresh_dir(tag: &str) -> PathBuf {
    let d = scratch_path(tag);
    std::fs::create_dir_all(&d).unwrap_or_else(|e| panic!("create {}: {e}", d.display()));
    d
}

/// Reads a JSON file something under test wrote (a report, a snapshot) into `T`; a missing
/// or malformed file fails, showing its text.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> T {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("no file at {}: {e}", path.display()));
    serde_json::from_str(text.trim())
        .unwrap_or_else(|e| panic!("{} does not parse as expected: {e}\n{text}", path.display()))
}

/// A run report file (`--json FILE`, or `SOCKMETER_REPORT` without the reporter).
pub fn read_report(path: &Path) -> Report {
    read_json(path)
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

/// Compiles `tests/c/<name>.c` (and the `.c` files of `tests/c/<name>/`, if there is such a
/// directory) with `cc -O2 -Wall <flags>` (`-l` flags after the sources; once
/// per name+flags) and returns
/// the executable. Safe to call from parallel tests: each compile writes its own temporary file
/// (a [`scratch_path`]) and puts it in place with [`put_in_place`], so a caller never sees a
/// half-written executable, and the first of two racing compiles stays.
pub fn compile_c(name: &str, flags: &[&str]) -> PathBuf {
    let src = root().join("tests/c").join(format!("{name}.c"));
    // A program too large for one file keeps the rest in `tests/c/NAME/`, compiled with it.
    let mut parts: Vec<PathBuf> = std::fs::read_dir(root().join("tests/c").join(name))
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "c"))
                .collect()
        })
        .unwrap_or_default();
    parts.sort();
    let tag: String = flags
        .iter()
        .map(|f| f.replace(|c: char| !c.is_ascii_alphanumeric(), ""))
        .collect();
    let out = scratch().join(format!("{name}{tag}"));
    if out.exists() {
        return out;
    }
    let tmp = scratch_path(&format!("{name}{tag}.tmp"));
    // Libraries (`-lNAME`) after the source, where a linker that drops unneeded ones wants them.
    let (libs, opts): (Vec<&str>, Vec<&str>) = flags.iter().partition(|f| f.starts_with("-l"));
    let st = Command::new("cc")
        .arg("-O2")
        .arg("-Wall")
        .args(opts)
        .arg("-o")
        .arg(&tmp)
        .arg(&src)
        .args(&parts)
        .args(libs)
        .status()
        .expect("cc");
    assert!(st.success(), "compiling {} failed", src.display());
    put_in_place(&tmp, &out);
    out
}

/// Moves the finished file `tmp` to `out` unless `out` already exists (another test built the
/// same file at the same time): the first stays. Replacing it would pull the file from under a
/// program another test is running from it, whose executable then reads `… (deleted)` in its
/// report (`cfsocket::a_plugins_cfsocket_is_charged_to_the_plugin` once failed so, when its two
/// modes compiled the same host at once).
pub fn put_in_place(tmp: &Path, out: &Path) {
    match std::fs::hard_link(tmp, out) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => panic!("link {} to {}: {e}", tmp.display(), out.display()),
    }
    let _ = std::fs::remove_file(tmp);
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

    /// Asserts that the run has `n` forked processes (origin `fork`) and that each moved exactly
    /// `tx` bytes out and `rx` in over `conns` connections.
    pub fn assert_each_forked_child(&self, n: u64, (tx, rx, conns): (u64, u64, u64)) {
        let children: Vec<&ProcessReport> = self.report.processes.iter().filter(|p| p.origin == "fork").collect();
        assert_eq!(children.len() as u64, n, "a process per child:\n{}", self.stderr);
        for p in children {
            assert_eq!(
                (p.totals.tx_bytes, p.totals.rx_bytes, p.totals.connections),
                (tx, rx, conns),
                "child {}:\n{}",
                p.pid,
                self.stderr
            );
        }
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
    let json_path = scratch_path("report").with_extension("json");
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
    assert_hooks_within_witness(&report, &stderr);
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr,
        report,
        json,
    }
}

thread_local! {
    static UNSEEN_EXPECTED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f`, whose runs may report bytes moved outside the hooked calls (the tests of paths no
/// hook sees); every other run must report none.
pub fn expecting_unseen<R>(f: impl FnOnce() -> R) -> R {
    UNSEEN_EXPECTED.with(|c| c.set(true));
    let r = f();
    UNSEEN_EXPECTED.with(|c| c.set(false));
    r
}

/// The kernel witness's checks, made on every run of every test: on a TCP socket whose kernel
/// counts were read, the hooks never counted more than the kernel says the program moved (that
/// would be a sockmeter bug: a byte counted twice, or a byte that never was); and, unless the
/// test moves bytes outside the hooked calls on purpose ([`expecting_unseen`]), the hooks
/// counted every byte the kernel saw (real programs, curl and python included, use no data path
/// sockmeter misses).
pub fn assert_hooks_within_witness(report: &Report, stderr: &str) {
    let unseen_expected = UNSEEN_EXPECTED.with(|c| c.get());
    for p in &report.processes {
        for s in &p.sockets {
            assert!(
                unseen_expected || s.unseen_tx_bytes + s.unseen_rx_bytes == 0,
                "pid {} {:?} socket {:?} -> {:?}: {} bytes out and {} in moved outside the hooked calls\n{stderr}",
                p.pid,
                p.argv,
                s.local,
                s.peer,
                s.unseen_tx_bytes,
                s.unseen_rx_bytes
            );
            if let (Some(ktx), Some(krx)) = (s.kernel_tx_bytes, s.kernel_rx_bytes) {
                assert!(
                    s.tx_bytes <= ktx && s.rx_bytes <= krx,
                    "pid {} socket {:?} -> {:?}: the hooks counted tx {} rx {}, more than the kernel's \
                     tx {ktx} rx {krx}\n{stderr}",
                    p.pid,
                    s.local,
                    s.peer,
                    s.tx_bytes,
                    s.rx_bytes
                );
            }
        }
    }
}

/// An oracle peer: a process that is not metered (a Python script from tests/peers/, the
/// example server, tests/c/peer.c), that prints its port first when it listens and what it saw
/// when it ends. Killed if dropped before it is finished.
pub struct Peer {
    child: Child,
    out: BufReader<ChildStdout>,
    /// The port it listens on (0 for a peer started with [`Peer::launch`]).
    pub port: u16,
}

impl Peer {
    /// Starts `tests/peers/<script>` with `args`; waits for its port line.
    pub fn start(script: &str, args: &[&str]) -> Peer {
        let mut c = Command::new(python());
        c.arg(root().join("tests/peers").join(script)).args(args);
        Peer::spawn(c)
    }

    /// Starts `cmd` as an oracle peer ([`Peer::launch`]) and waits for its port line.
    pub fn spawn(cmd: Command) -> Peer {
        let what = format!("{cmd:?}");
        let mut peer = Peer::launch(cmd);
        let mut line = String::new();
        peer.out.read_line(&mut line).expect("port line");
        peer.port = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("peer {what} printed {line:?} instead of a port"));
        peer
    }

    /// Starts `cmd` unmetered (no inherited `LD_PRELOAD` or `SOCKMETER_*`), stdin empty, stdout
    /// read by [`Peer::output`], stderr inherited; reads no port line (a peer that connects).
    pub fn launch(mut cmd: Command) -> Peer {
        let mut child = cmd
            .without_sockmeter_env()
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("start the oracle peer {cmd:?}: {e}"));
        let out = BufReader::new(child.stdout.take().expect("stdout"));
        Peer { child, out, port: 0 }
    }

    /// Waits for the peer to finish (it must end by itself, successfully) and returns the rest
    /// of what it printed.
    pub fn output(mut self) -> String {
        let mut rest = String::new();
        self.out.read_to_string(&mut rest).expect("read peer");
        let st = self.child.wait().expect("wait peer");
        assert!(st.success(), "peer failed ({st}); it printed:\n{rest}");
        rest
    }

    /// [`Peer::output`]'s last line: the peer's JSON verdict.
    pub fn finish(self) -> Value {
        let rest = self.output();
        let last = rest.lines().last().unwrap_or_else(|| panic!("peer printed no verdict"));
        serde_json::from_str(last).unwrap_or_else(|e| panic!("peer verdict {last:?}: {e}"))
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        // Only matters when a test panics before `finish` or `output`: the peer is our own child.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An in-process peer, not metered: accepts one TCP connection on 127.0.0.1 and reads it to
/// EOF (each read bounded by 20 s), counting the bytes.
pub struct Sink {
    /// The port it listens on.
    pub port: u16,
    thread: JoinHandle<usize>,
}

impl Sink {
    /// Listens (on return the port accepts connections) and reads in a thread.
    pub fn start() -> Sink {
        Sink::start_then(|_| {})
    }

    /// As [`Sink::start`], calling `on_eof` with the byte count as soon as it sees EOF.
    pub fn start_then(on_eof: impl FnOnce(usize) + Send + 'static) -> Sink {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let thread = std::thread::spawn(move || {
            let (mut c, _) = listener.accept().expect("accept");
            c.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
            let mut got = Vec::new();
            c.read_to_end(&mut got).expect("read to EOF");
            on_eof(got.len());
            got.len()
        });
        Sink { port, thread }
    }

    /// Waits for the connection's EOF; the bytes received.
    pub fn received(self) -> usize {
        self.thread.join().expect("sink")
    }
}

/// Sum of tx/rx over every process of a run.
pub fn totals(r: &Run) -> (u64, u64) {
    (r.report.totals.tx_bytes, r.report.totals.rx_bytes)
}

/// How the shim ships its counts during a test: through a shipper process (the default under
/// `sockmeter run`), or from a thread inside the metered process (`SOCKMETER_SHIPPER=none`,
/// what an embedding host and a run without the `sockmeter` binary get). Tests of the host's
/// view and of faults run in both ([`both_modes!`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// A `sockmeter __ship` process reads the counters.
    Shipper,
    /// A reporting thread in the process reads them.
    Thread,
}

impl Mode {
    /// The environment that selects this mode for `sockmeter run`.
    pub fn env(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Mode::Shipper => &[],
            Mode::Thread => &[("SOCKMETER_SHIPPER", "none")],
        }
    }

    /// `env` with this mode's variables added.
    pub fn with<'a>(self, env: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
        let mut all: Vec<(&'a str, &'a str)> = self.env().to_vec();
        all.extend_from_slice(env);
        all
    }
}

/// As [`run_with`], in shipping mode `mode`.
pub fn run_in(mode: Mode, extra: &[&str], cmd: &[&str], env: &[(&str, &str)]) -> Run {
    run_with(extra, cmd, &mode.with(env))
}

/// Declares a test that runs once per shipping mode, as `<name>::shipper` and `<name>::thread`:
///
/// ```ignore
/// both_modes! {
///     /// What it proves.
///     fn wait_sees_no_extra_child(mode) {
///         let r = harness::run_in(mode, &[], &[...], &[]);
///     }
/// }
/// ```
#[allow(unused_macros)]
macro_rules! both_modes {
    ($($(#[$meta:meta])* fn $name:ident($mode:ident) $body:block)*) => {$(
        $(#[$meta])*
        #[allow(non_snake_case)]
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            fn body($mode: $crate::harness::Mode) $body

            #[test]
            fn shipper() {
                body($crate::harness::Mode::Shipper)
            }

            #[test]
            fn thread() {
                body($crate::harness::Mode::Thread)
            }
        }
    )*};
}
#[allow(unused_imports)]
pub(crate) use both_modes;

/// What a [`Counter`] saw.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counted {
    /// Bytes received, over every connection.
    pub rx: u64,
    /// Bytes sent.
    pub tx: u64,
    /// Connections served.
    pub conns: u64,
}

/// An in-process TCP server on 127.0.0.1, not metered: serves `conns` connections (each on a
/// thread of its own: read to EOF, then send `reply` bytes and close) and totals what it
/// received and sent. Gives up after 120 s (then [`Counter::finish`] shows fewer connections).
pub struct Counter {
    /// The port it listens on.
    pub port: u16,
    accepted: std::sync::Arc<AtomicUsize>,
    thread: JoinHandle<Counted>,
}

impl Counter {
    /// Listens (on return the port accepts connections) and serves in a thread.
    pub fn start(conns: u64, reply: usize) -> Counter {
        use std::io::Write;
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        listener.set_nonblocking(true).expect("nonblocking");
        let accepted = std::sync::Arc::new(AtomicUsize::new(0));
        let seen = accepted.clone();
        let thread = std::thread::spawn(move || {
            let deadline = std::time::Instant::now() + Duration::from_secs(120);
            let mut served = Vec::new();
            while (served.len() as u64) < conns && std::time::Instant::now() < deadline {
                let (mut c, _) = match listener.accept() {
                    Ok(a) => a,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(2));
                        continue;
                    }
                    Err(e) => panic!("accept: {e}"),
                };
                seen.fetch_add(1, Ordering::Relaxed);
                served.push(std::thread::spawn(move || {
                    c.set_nonblocking(false).expect("blocking");
                    c.set_read_timeout(Some(Duration::from_secs(60))).expect("timeout");
                    let mut got = Vec::new();
                    let rx = c.read_to_end(&mut got).map(|n| n as u64).unwrap_or(0);
                    let tx = c.write_all(&vec![b'r'; reply]).map(|_| reply as u64).unwrap_or(0);
                    (rx, tx)
                }));
            }
            let mut total = Counted::default();
            for t in served {
                let (rx, tx) = t.join().expect("connection thread");
                total.rx += rx;
                total.tx += tx;
                total.conns += 1;
            }
            total
        });
        Counter { port, accepted, thread }
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::Relaxed)
    }

    /// Waits until every connection was served (or the 120 s are up); the totals.
    pub fn finish(self) -> Counted {
        self.thread.join().expect("counter")
    }
}
