//! `sockmeter run`: run a command under the shim and report what it and every descendant sent
//! and received.
//!
//! Order of events: find the shim, check the `--json` destination, say whether the shim can
//! be preloaded into the command at all, listen on a socket in a private directory, start the
//! command (stdin, stdout and stderr inherited) with the shim prepended to `LD_PRELOAD`, and
//! serve connections until the command exits. Then wait at most [`GRACE`] for descendants
//! that outlive it (each connection must say `bye` or close; a process that exec'd must
//! connect again; a descendant re-parented to the reporter must exit, see [`crate::reap`]);
//! whoever is still connected then is reported as `running`. Finally print
//! the summary on stderr, write the JSON, and exit with the command's status (128+N for
//! signal N).
//!
//! What cannot be metered is said once: the command itself before it starts (`elf.rs`), a
//! static or setuid program a descendant execs at the end (the shim's exec check writes it to
//! the notes file beside the socket; one line per distinct program however often it ran).

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use sockmeter::config::Config;

use crate::cli::RunArgs;
use crate::collector::Collector;
use crate::endings::Endings;
use crate::live::Action;
use crate::outputs::{Options, Outputs};
use crate::private_dir::PrivateDir;
use crate::{elf, reap, report_out, shim_path, signals, summary};

/// How long to wait for descendants once the command itself has exited.
pub const GRACE: Duration = Duration::from_secs(2);
/// The longest the loop sleeps before checking on the command again, when nothing tells it
/// the command ended (no pidfd: kernels before 5.3), and while it waits for descendants.
const TICK: Duration = Duration::from_millis(20);
/// The same with a pidfd of the command in the poll set: the loop wakes when the command ends,
/// so it only wakes otherwise for the metered processes' data (on 2 cores, a reporter that
/// wakes 50 times a second is a cost the host sees).
const TICK_WITH_PIDFD: Duration = Duration::from_secs(1);
/// How long a shipper whose host has ended may go without sending before sockmeter stops
/// waiting for its backlog (it is still alive: a slow last pass on a loaded machine).
const DRAIN_STALL: Duration = Duration::from_secs(30);
/// How often `--wait-all` looks for descendants that ended (data wakes it sooner).
const WAIT_ALL_TICK: Duration = Duration::from_millis(200);
/// The socket's name inside the private directory.
const SOCKET_NAME: &str = "sockmeter.sock";
/// The variable that makes the loader load the shim into the command: `LD_PRELOAD` (glibc's
/// ld.so), `DYLD_INSERT_LIBRARIES` (macOS's dyld).
#[cfg(not(target_os = "macos"))]
pub const PRELOAD_VAR: &str = "LD_PRELOAD";
/// See the other platforms' `PRELOAD_VAR`.
#[cfg(target_os = "macos")]
pub const PRELOAD_VAR: &str = "DYLD_INSERT_LIBRARIES";

/// `LD_PRELOAD` for the command: the shim first, then whatever the user had (which ld.so
/// separates with colons or spaces), without a second copy of the shim.
pub fn preload_value(shim: &Path, existing: Option<&OsStr>) -> OsString {
    let shim = shim.as_os_str().as_bytes();
    let mut out = shim.to_vec();
    let rest = existing.map(OsStr::as_bytes).unwrap_or_default();
    for entry in rest
        .split(|b| *b == b':' || *b == b' ')
        .filter(|e| !e.is_empty() && *e != shim)
    {
        out.push(b':');
        out.extend_from_slice(entry);
    }
    OsString::from_vec(out)
}

/// The variables the command gets on top of the reporter's environment.
pub fn child_env(
    shim: &Path,
    existing_preload: Option<&OsStr>,
    socket: &Path,
    interval_ms: u64,
    attribute: Option<&str>,
) -> Vec<(&'static str, OsString)> {
    let mut env = vec![
        (PRELOAD_VAR, preload_value(shim, existing_preload)),
        ("SOCKMETER_SOCKET", socket.as_os_str().to_owned()),
        ("SOCKMETER_INTERVAL", OsString::from(interval_ms.to_string())),
    ];
    if let Some(a) = attribute {
        env.push(("SOCKMETER_ATTRIBUTE", OsString::from(a)));
    }
    // The shim starts this very program as each process's shipper (`sockmeter __ship`), unless
    // the user chose otherwise (`SOCKMETER_SHIPPER=none`: ship from a thread in the process).
    if std::env::var_os("SOCKMETER_SHIPPER").is_none() {
        if let Ok(me) = std::env::current_exe() {
            env.push(("SOCKMETER_SHIPPER", me.into_os_string()));
        }
    }
    env
}

/// A command's exit status as a shell reports it: its code, or 128+N if signal N killed it.
pub fn exit_code(status: ExitStatus) -> i32 {
    match (status.code(), status.signal()) {
        (Some(c), _) => c,
        (None, Some(s)) => 128 + s,
        (None, None) => 1,
    }
}

/// Checks the `SOCKMETER_*` variables the command will see (the inherited ones, with `env`
/// on top) the way the shim reads them: a malformed one is an error before anything runs
/// (the shim would only fall back to a default, once per process); returns warnings.
pub fn check_shim_env(
    env: &[(&'static str, OsString)],
    inherited: impl Fn(&str) -> Option<OsString>,
) -> Result<Vec<String>> {
    let lookup = |k: &str| {
        env.iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| v.clone())
            .or_else(|| inherited(k))
    };
    let (config, errors) = Config::from_lookup(lookup);
    if !errors.is_empty() {
        let list: Vec<String> = errors
            .iter()
            .map(|e| format!("{}={:?}: {}", e.var, e.value, e.problem))
            .collect();
        bail!("malformed environment for the shim: {}", list.join("; "));
    }
    let mut warnings = Vec::new();
    if config.disabled {
        warnings.push("SOCKMETER_DISABLE is set: the shim will pass every call through and count nothing".to_string());
    }
    Ok(warnings)
}

/// What a shell would say and return when a command cannot be started.
fn spawn_failure(cmd: &OsStr, e: &std::io::Error) -> (String, i32) {
    let name = cmd.to_string_lossy();
    let is_dir = cmd.as_bytes().contains(&b'/') && Path::new(cmd).is_dir();
    match e.kind() {
        std::io::ErrorKind::NotFound => (format!("sockmeter: {name}: command not found"), 127),
        _ if is_dir => (format!("sockmeter: {name}: is a directory"), 126),
        std::io::ErrorKind::PermissionDenied => (format!("sockmeter: {name}: permission denied (not executable)"), 126),
        _ if e.raw_os_error() == Some(libc::ENOEXEC) => (format!("sockmeter: {name}: cannot execute: {e}"), 126),
        _ => (format!("sockmeter: {name}: cannot start: {e}"), 126),
    }
}

/// Runs `sockmeter run`; returns the exit status to leave with. An error means nothing ran.
pub fn run(args: &RunArgs) -> Result<i32> {
    let shim = shim_path::find_preload()?;
    if shim.as_os_str().as_bytes().iter().any(|b| *b == b':' || *b == b' ') {
        bail!("the shim's path {} contains a colon or a space, which LD_PRELOAD cannot carry; install it elsewhere or set SOCKMETER_SHIM", shim.display());
    }
    if let Some(json) = &args.json {
        report_out::check_writable(json)?;
    }
    // The stream's file and the metrics' port are checked (and taken) before anything runs.
    let mut outputs = Outputs::new(Options {
        stream: args.json_stream.clone(),
        append: false,
        live: args.live.then(|| {
            let cmd: Vec<String> = args.command.iter().map(|a| a.to_string_lossy().into_owned()).collect();
            (
                format!("sockmeter run: {}", cmd.join(" ")),
                Duration::from_millis(args.interval),
            )
        }),
        repaint: true,
        prometheus: args.prometheus,
        unix: args.unix,
    })?;
    let program = &args.command[0];
    let notes = elf::preflight(program, std::env::var_os("PATH").as_deref(), &shim);
    for n in &notes {
        use std::io::Write as _;
        // Through anstream: yellow on a terminal, plain elsewhere.
        let warn = summary::Paint { color: true }.warn(&format!("sockmeter: {n}"));
        let _ = writeln!(anstream::stderr(), "{warn}");
    }

    let dir = PrivateDir::new()?;
    let mut collector = Collector::bind(&dir.path().join(SOCKET_NAME))?;
    // For the run's processes that give up their privileges (they cannot enter `dir` then).
    if let Err(e) = collector.open_door() {
        say!("sockmeter: warning: {e:#}; a process that changes its user will not be metered");
    }
    // Where metered parents write how their children ended (they only append to it).
    let endings_file = std::path::PathBuf::from(sockmeter::wire::endings_path(
        &collector.socket_path().to_string_lossy(),
    ));
    // Where the shim says a descendant exec'd a program it cannot reach (static, setuid).
    let notes_file = std::path::PathBuf::from(sockmeter::wire::notes_path(&collector.socket_path().to_string_lossy()));
    for f in [&endings_file, &notes_file] {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(f)
            .with_context(|| format!("cannot create {}", f.display()))?;
    }
    let env = child_env(
        &shim,
        std::env::var_os(PRELOAD_VAR).as_deref(),
        collector.socket_path(),
        args.interval,
        args.attribute_env().as_deref(),
    );
    for w in check_shim_env(&env, |k| std::env::var_os(k))? {
        say!("sockmeter: warning: {w}");
    }
    signals::install().context("cannot install signal handlers")?;
    reap::become_subreaper();
    let mut cmd = Command::new(program);
    cmd.args(&args.command[1..]).envs(env);
    // The command is waited for with waitpid(-1) (see reap.rs), not through `Child`.
    let pid = match cmd.spawn() {
        Ok(child) => child.id(),
        Err(e) => {
            let (msg, code) = spawn_failure(program, &e);
            say!("{msg}");
            return Ok(code);
        }
    };
    signals::child_started(pid);

    outputs.start(&mut collector, "run", &args.command);
    let mut server = Server {
        collector,
        broken: false,
        outputs,
    };
    // Our own child, not yet reaped: the pidfd is for it.
    let pidfd = reap::pidfd_open(pid);
    let tick = if pidfd >= 0 {
        server.collector.wake_on(Some(pidfd));
        TICK_WITH_PIDFD
    } else {
        TICK
    };
    let mut endings = Endings::new();
    let status = loop {
        server.serve(tick, &endings);
        let r = reap::reap(pid)?;
        for (p, at, st) in r.ended {
            endings.add(p, at, st);
        }
        if let Some(st) = r.command {
            break st;
        }
    };
    signals::child_reaped();
    if pidfd >= 0 {
        // Readable for good now that the command ended.
        server.collector.wake_on(None);
        // SAFETY: our own pidfd, used by nothing else.
        unsafe { libc::close(pidfd) };
    }
    wait_for_descendants(&mut server, pid, &mut endings, args.wait_all)?;
    let mut outputs = server.outputs;
    outputs.leave_view();
    let mut collector = server.collector;
    let running: Vec<String> = collector.conns().filter(|c| c.is_open()).map(|c| c.who()).collect();
    if !running.is_empty() {
        say!(
            "sockmeter: still running after the command exited, reported as running: {}",
            running.join(", ")
        );
    }

    let code = exit_code(status);
    let collector_notices = collector.notices();
    let records = collector.take_records();
    let conns = collector.finish();
    endings.add_file(&endings_file);
    let exec_notes = descendant_notes(&notes_file, &notes);
    drop(dir);
    let mut report = report_out::assemble(&args.command, Some(code), args.unix, &conns, "running", &endings);
    report.notices.extend(notes.iter().cloned());
    report.notices.extend(exec_notes);
    report.notices.extend(collector_notices);
    outputs.finish(&records, &endings, &report);
    let opts = summary_options(args, notes);
    let text = if args.summary.quiet {
        summary::warnings(&report, &opts)
    } else {
        summary::render_with(&report, &opts)
    };
    if !text.is_empty() {
        use std::io::Write as _;
        let _ = write!(anstream::stderr(), "{text}");
    }
    if let Some(json) = &args.json {
        if let Err(e) = report_out::write_json(json, &report) {
            say!("sockmeter: error: {e:#}");
            return Ok(if code == 0 { 1 } else { code });
        }
    }
    Ok(code)
}

/// The summary's options from the command line; `said`: what was already said before the
/// command ran.
fn summary_options(args: &RunArgs, said: Vec<String>) -> summary::Options {
    summary::Options {
        all: args.summary.all,
        units: summary::Units {
            exact: args.summary.bytes,
        },
        group_by: args.summary.group_by,
        top: args.summary.top,
        // Written through anstream, which drops the styles where colour is not wanted (not a
        // terminal, NO_COLOR).
        paint: summary::Paint { color: true },
        said,
        globs: args.attribute.clone(),
    }
}

/// What the shim's exec checks wrote to the notes file: each distinct sentence once, with who
/// exec'd it (and how often), and none that the reporter already said itself (`said`: the
/// command's own preflight).
pub fn descendant_notes(path: &Path, said: &[String]) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut by: Vec<(String, Vec<u32>)> = Vec::new();
    for (pid, _kind, sentence) in sockmeter::wire::parse_notes(&text) {
        if said.contains(&sentence) {
            continue;
        }
        match by.iter_mut().find(|(s, _)| *s == sentence) {
            Some((_, pids)) => pids.push(pid),
            None => by.push((sentence, vec![pid])),
        }
    }
    by.into_iter()
        .map(|(s, pids)| match pids.len() {
            1 => format!("{s} (exec'd by pid {})", pids[0]),
            n => format!("{s} (exec'd {n} times, first by pid {})", pids[0]),
        })
        .collect()
}

/// The collector as `run` drives it: a failure of the socket loop (which should not happen)
/// is reported once and then only costs the counts still to come, never the command's run
/// or the counts already read.
struct Server {
    collector: Collector,
    broken: bool,
    /// The stream, the live view and the metrics.
    outputs: Outputs,
}

impl Server {
    /// Serves connections for up to `timeout` (or just sleeps, once the loop has failed), then
    /// brings the outputs up to date.
    fn serve(&mut self, timeout: Duration, endings: &Endings) {
        let timeout = timeout.min(self.outputs.max_wait());
        if self.broken {
            std::thread::sleep(timeout);
            self.after(endings);
            return;
        }
        let r = self.collector.poll(timeout);
        self.after(endings);
        self.outputs.warn(self.collector.take_warnings());
        if let Err(e) = r {
            say!("sockmeter: warning: {e:#}; counts sent from now on are lost");
            self.broken = true;
        }
    }

    /// The outputs after a round; what the user asked in the live view: `q` leaves it, Ctrl-C
    /// (read as a key in raw mode) goes to the terminal's foreground process group as the
    /// terminal would have sent it, so the command gets it as it would without the view.
    fn after(&mut self, endings: &Endings) {
        match self.outputs.after_poll(&mut self.collector, endings) {
            None => {}
            Some(Action::Leave) => self.outputs.leave_view(),
            Some(Action::Interrupt) => {
                self.outputs.leave_view();
                interrupt_foreground();
            }
        }
    }
}

/// Sends SIGINT to the foreground process group of the terminal on stderr (ours when it
/// cannot be told), as the terminal does for Ctrl-C.
fn interrupt_foreground() {
    // SAFETY: tcgetpgrp on our own stderr; kill with a process group id.
    unsafe {
        let pgrp = libc::tcgetpgrp(2);
        let target = if pgrp > 0 { -pgrp } else { 0 };
        libc::kill(target, libc::SIGINT);
    }
}

/// After the command exited: serve until no connection is awaited and no descendant is
/// alive, until [`GRACE`] is over (never, with `--wait-all`; and not while a process that has
/// ended still has its shipper sending its backlog), or until the user sends a signal (SIGINT,
/// SIGQUIT, SIGTERM or SIGHUP). Orphaned descendants are reaped on the way.
fn wait_for_descendants(server: &mut Server, command: u32, endings: &mut Endings, wait_all: bool) -> Result<()> {
    if wait_all {
        return wait_for_all(server, command, endings);
    }
    let deadline = Instant::now() + GRACE;
    loop {
        server.serve(Duration::ZERO, endings);
        let r = reap::reap(command)?;
        for (p, at, st) in r.ended {
            endings.add(p, at, st);
        }
        let descendants = r.children_left;
        let awaited = if server.broken { 0 } else { server.collector.awaited() };
        if (awaited == 0 && !descendants) || signals::pending().is_some() {
            return Ok(());
        }
        let now = Instant::now();
        if now >= deadline {
            // A process that ended but whose shipper is still catching up (it sent data within
            // the grace period) is waited for as long as it keeps sending: its counts are
            // real, and stopping now would lose them.
            match server.collector.draining_since() {
                Some(t) if !server.broken && t.elapsed() < DRAIN_STALL => {}
                _ => return Ok(()),
            }
        }
        let wait = if now < deadline {
            (deadline - now).min(TICK)
        } else {
            TICK
        };
        server.serve(wait, endings);
    }
}

/// `--wait-all`: as [`wait_for_descendants`] without the deadline. Every descendant the command
/// left (re-parented to sockmeter, the run's child subreaper) is waited for, however long it
/// runs: daemons included. The loop wakes for data, and every [`WAIT_ALL_TICK`] to reap.
fn wait_for_all(server: &mut Server, command: u32, endings: &mut Endings) -> Result<()> {
    loop {
        let r = reap::reap(command)?;
        for (p, at, st) in r.ended {
            endings.add(p, at, st);
        }
        let awaited = if server.broken { 0 } else { server.collector.awaited() };
        if (awaited == 0 && !r.children_left) || signals::pending().is_some() {
            return Ok(());
        }
        server.serve(WAIT_ALL_TICK, endings);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn an_existing_ld_preload_is_kept_after_the_shim() {
        let shim = Path::new("/opt/sm/libsockmeter_shim.so");
        assert_eq!(preload_value(shim, None), "/opt/sm/libsockmeter_shim.so");
        assert_eq!(
            preload_value(shim, Some(OsStr::new(""))),
            "/opt/sm/libsockmeter_shim.so"
        );
        assert_eq!(
            preload_value(shim, Some(OsStr::new("/usr/lib/libfoo.so"))),
            "/opt/sm/libsockmeter_shim.so:/usr/lib/libfoo.so"
        );
        assert_eq!(
            preload_value(
                shim,
                Some(OsStr::new("liba.so libb.so:/opt/sm/libsockmeter_shim.so::/x/libc.so"))
            ),
            "/opt/sm/libsockmeter_shim.so:liba.so:libb.so:/x/libc.so"
        );
    }

    #[test]
    fn the_child_environment() {
        let env = child_env(
            Path::new("/s.so"),
            Some(OsStr::new("/u.so")),
            Path::new("/tmp/sockmeter.x/sockmeter.sock"),
            250,
            Some("*/libfoo.so:/opt/*"),
        );
        let get = |k: &str| env.iter().find(|(n, _)| *n == k).map(|(_, v)| PathBuf::from(v));
        assert_eq!(get(PRELOAD_VAR).unwrap(), PathBuf::from("/s.so:/u.so"));
        assert_eq!(
            get("SOCKMETER_SOCKET").unwrap(),
            PathBuf::from("/tmp/sockmeter.x/sockmeter.sock")
        );
        assert_eq!(get("SOCKMETER_INTERVAL").unwrap(), PathBuf::from("250"));
        assert_eq!(get("SOCKMETER_ATTRIBUTE").unwrap(), PathBuf::from("*/libfoo.so:/opt/*"));
        let env = child_env(Path::new("/s.so"), None, Path::new("/k"), 1000, None);
        assert!(
            !env.iter().any(|(k, _)| *k == "SOCKMETER_ATTRIBUTE"),
            "an inherited SOCKMETER_ATTRIBUTE is left alone"
        );
    }

    #[test]
    fn malformed_shim_variables_are_caught_before_running() {
        let ours = child_env(Path::new("/s.so"), None, Path::new("/k"), 1000, None);
        let inherit = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| OsString::from(v))
        };
        assert!(check_shim_env(&ours, inherit(&[("SOCKMETER_UNIX", "1")]))
            .unwrap()
            .is_empty());
        let e = check_shim_env(
            &ours,
            inherit(&[("SOCKMETER_DISABLE", "maybe"), ("SOCKMETER_INTERVAL", "soon")]),
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            e,
            "malformed environment for the shim: SOCKMETER_DISABLE=\"maybe\": expected 1 or 0"
        );
        let w = check_shim_env(&ours, inherit(&[("SOCKMETER_DISABLE", "1")])).unwrap();
        assert!(w[0].contains("count nothing"));
    }

    #[test]
    fn exit_codes_like_a_shell() {
        let st = |cmd: &str| Command::new("sh").arg("-c").arg(cmd).status().unwrap();
        assert_eq!(exit_code(st("exit 0")), 0);
        assert_eq!(exit_code(st("exit 3")), 3);
        assert_eq!(exit_code(st("kill -TERM $$")), 128 + libc::SIGTERM);
        assert_eq!(exit_code(st("kill -KILL $$")), 128 + libc::SIGKILL);
    }

    #[test]
    fn spawn_failures_like_a_shell() {
        let nf = std::io::Error::from(std::io::ErrorKind::NotFound);
        assert_eq!(
            spawn_failure(OsStr::new("nope"), &nf),
            ("sockmeter: nope: command not found".into(), 127)
        );
        let pd = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        assert_eq!(spawn_failure(OsStr::new("./x"), &pd).1, 126);
        assert_eq!(
            spawn_failure(OsStr::new("/tmp"), &pd),
            ("sockmeter: /tmp: is a directory".into(), 126),
            "what bash says"
        );
    }

    #[test]
    fn descendant_notes_are_said_once_each_and_not_again() {
        let d = crate::private_dir::PrivateDir::new().unwrap();
        let f = d.path().join("s.notes");
        let st = "/tmp/st is statically linked: the shim cannot be preloaded, its traffic will not be counted";
        let su = "/usr/bin/su is setuid: the dynamic loader ignores LD_PRELOAD for it, its traffic will not be counted";
        let top = "/tmp/top is statically linked: the shim cannot be preloaded, its traffic will not be counted";
        std::fs::write(
            &f,
            format!("11 static {st}\n12 privileged {su}\n13 static {st}\n14 static {top}\ngarbage\n15 static {st}\n"),
        )
        .unwrap();
        assert_eq!(
            descendant_notes(&f, &[top.to_string()]),
            [
                format!("{st} (exec'd 3 times, first by pid 11)"),
                format!("{su} (exec'd by pid 12)")
            ]
        );
        assert!(descendant_notes(&d.path().join("missing"), &[]).is_empty());
    }
}
