//! `sockmeter listen`: a reporter for processes started elsewhere (a daemon, a GUI application,
//! a service), kept running until SIGINT or SIGTERM (or `q` in the live view), then the report.
//!
//! It listens on a socket in a directory only the user can enter ([`crate::user_dir`]), prints
//! on stdout the environment to give the programs to meter (`LD_PRELOAD=... SOCKMETER_SOCKET=...
//! SOCKMETER_SHIPPER=...`), and takes every process of the same user as it comes and goes
//! (`admit::Policy::SameUid`), any number at once. Those processes reconnect
//! (`sockmeter::outbox::reconnects`): one may start before `listen` does, and one that is
//! running when `listen` stops keeps counting and sends what it has to the next `listen` at the
//! same socket. At its end `listen` tells each connection to connect again later
//! (`outbox::RECONNECT_LINE`) and reads until each has closed, so nothing sent is lost.
//!
//! With `--json-stream FILE`, a `listen` started again on the same file reads it back first and
//! continues it: the report, the live view and the metrics go on from what it holds (the
//! connections of one process image, before and after the restart, are one process).

use std::ffi::OsString;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::admit::Policy;
use crate::cli::ListenArgs;
use crate::collector::Collector;
use crate::endings::Endings;
use crate::live::Action;
use crate::outputs::{Options, Outputs};
use crate::private_dir::MAX_SOCKET_PATH;
use crate::{report_out, shim_path, signals, stream, summary, user_dir};

/// The longest the loop sleeps when nothing else wakes it.
const TICK: Duration = Duration::from_secs(1);
/// How long connections have, at the end, to close after being asked to reconnect later.
const CLOSE_GRACE: Duration = Duration::from_secs(3);

/// A value as a shell reads it back: as is when it is plain, else in single quotes.
fn shell_word(v: &[u8]) -> String {
    let plain = !v.is_empty() && v.iter().all(|b| b.is_ascii_alphanumeric() || b"/._:=+-,@%".contains(b));
    let s = String::from_utf8_lossy(v);
    if plain {
        s.into_owned()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// The environment line for the programs to meter.
pub fn env_line(shim: &Path, socket: &Path, shipper: &OsString, interval: Option<u64>) -> String {
    let mut line = format!(
        "LD_PRELOAD={} SOCKMETER_SOCKET={} SOCKMETER_SHIPPER={}",
        shell_word(shim.as_os_str().as_bytes()),
        shell_word(socket.as_os_str().as_bytes()),
        shell_word(shipper.as_bytes())
    );
    if let Some(ms) = interval {
        line.push_str(&format!(" SOCKMETER_INTERVAL={ms}"));
    }
    line
}

/// Makes room for the socket at `path`: a socket nobody listens on any more (a `listen` that
/// was killed) is removed; one somebody listens on, or anything else, is an error.
fn clear_stale(path: &Path) -> Result<()> {
    let Ok(m) = std::fs::symlink_metadata(path) else {
        return Ok(());
    };
    if !m.file_type().is_socket() {
        bail!("{} exists and is not a socket", path.display());
    }
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(_) => bail!("another reporter listens at {} already", path.display()),
        Err(_) => {
            std::fs::remove_file(path).with_context(|| format!("cannot remove the stale socket {}", path.display()))
        }
    }
}

/// Reads back the stream a previous `listen` left in `file` (none, empty, or stdout: nothing).
fn resume(file: Option<&PathBuf>) -> Result<Option<stream::Replayed>> {
    let Some(file) = file.filter(|f| f.as_os_str() != "-") else {
        return Ok(None);
    };
    let f = match std::fs::File::open(file) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read the event stream {}", file.display())),
    };
    let mut r = stream::read(std::io::BufReader::new(f))?;
    if r.segments == 0 && r.conns.is_empty() {
        return Ok(None);
    }
    // Every connection it holds belongs to a reporter that is gone.
    for c in &mut r.conns {
        c.end_of_stream();
    }
    for w in &r.warnings {
        say!("sockmeter: warning: {}: {w}", file.display());
    }
    Ok(Some(r))
}

/// Runs `sockmeter listen` until SIGINT, SIGTERM, SIGHUP or SIGQUIT (or `q` / Ctrl-C in the live
/// view); exit status 0 (1 if the report could not be written).
pub fn listen(args: &ListenArgs) -> Result<i32> {
    let shim = shim_path::find_preload()?;
    if let Some(json) = &args.json {
        report_out::check_writable(json)?;
    }
    let socket = args.socket.clone().unwrap_or_else(user_dir::default_socket);
    let socket = if socket.is_absolute() {
        socket
    } else {
        std::env::current_dir()
            .context("cannot tell the current directory")?
            .join(socket)
    };
    if socket.as_os_str().len() > MAX_SOCKET_PATH {
        bail!(
            "{}: longer than a Unix socket path may be ({MAX_SOCKET_PATH} bytes)",
            socket.display()
        );
    }
    let dir = socket.parent().context("the socket needs a directory")?;
    user_dir::prepare(dir)?;
    clear_stale(&socket)?;
    let resumed = resume(args.json_stream.as_ref())?;
    let interval = Duration::from_millis(args.interval.unwrap_or(sockmeter::config::DEFAULT_INTERVAL_MS));
    let mut outputs = Outputs::new(Options {
        stream: args.json_stream.clone(),
        append: true,
        live: args
            .live
            .then(|| (format!("sockmeter listen at {}", socket.display()), interval)),
        repaint: false,
        prometheus: args.prometheus,
        unix: args.unix,
    })?;

    let mut collector = Collector::bind(&socket)?;
    // SAFETY: geteuid cannot fail.
    collector.set_policy(Policy::SameUid(unsafe { libc::geteuid() }));
    let socket_text = socket.to_string_lossy().into_owned();
    // A new reporter: the next absence is said again.
    let _ = std::fs::remove_file(format!("{socket_text}.unreachable"));
    let endings_file = PathBuf::from(sockmeter::wire::endings_path(&socket_text));
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(&endings_file)
        .with_context(|| format!("cannot create {}", endings_file.display()))?;
    let mut endings = Endings::new();
    if let Some(r) = resumed {
        say!(
            "sockmeter: continuing the event stream in {}: {} connection{} so far",
            args.json_stream.as_deref().unwrap_or(Path::new("")).display(),
            r.conns.len(),
            if r.conns.len() == 1 { "" } else { "s" }
        );
        for (pid, at, st) in r.endings.all() {
            endings.add(pid, at, st);
        }
        collector.add_history(r.conns);
    }

    let shipper = std::env::var_os("SOCKMETER_SHIPPER")
        .or_else(|| std::env::current_exe().ok().map(PathBuf::into_os_string))
        .unwrap_or_default();
    // Before the environment line: whoever reads it may stop us at once (a service manager, a
    // test), and SIGTERM must then write the report rather than kill us.
    signals::install().context("cannot install signal handlers")?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", env_line(&shim, &socket, &shipper, args.interval))
            .and_then(|()| out.flush())
            .context("cannot print the environment")?;
    }
    say!(
        "sockmeter: listening at {}; give the programs to meter the environment above (they may start before or after this, and come and go); Ctrl-C or SIGTERM writes the report",
        socket.display()
    );
    if let Some(addr) = outputs.metrics_addr() {
        say!("sockmeter: Prometheus metrics at http://{addr}/metrics");
    }
    outputs.start(&mut collector, "listen", &[]);

    let mut broken = false;
    loop {
        let wait = TICK.min(outputs.max_wait());
        if broken {
            std::thread::sleep(wait);
        } else if let Err(e) = collector.poll(wait) {
            say!("sockmeter: warning: {e:#}; counts sent from now on are lost");
            broken = true;
        }
        outputs.warn(collector.take_warnings());
        match outputs.after_poll(&mut collector, &endings) {
            Some(Action::Leave | Action::Interrupt) => break,
            None => {}
        }
        if signals::pending().is_some() {
            break;
        }
    }
    outputs.leave_view();
    // Everything each process wrote before it heard the line arrives.
    collector.ask_to_reconnect(CLOSE_GRACE);
    for w in collector.take_warnings() {
        say!("sockmeter: warning: {w}");
    }
    let notices = collector.notices();
    let records = collector.take_records();
    endings.add_file(&endings_file);
    let conns = collector.finish_saying(None);
    let mut report = report_out::assemble(&[], None, args.unix, &conns, "running", &endings);
    report.notices.extend(notices);
    outputs.finish(&records, &endings, &report);
    say!("{}", summary::render(&report).trim_end());
    if let Some(json) = &args.json {
        if let Err(e) = report_out::write_json(json, &report) {
            say!("sockmeter: error: {e:#}");
            return Ok(1);
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environment_line_reads_back_in_a_shell() {
        let line = env_line(
            Path::new("/opt/sm/libsockmeter_shim.so"),
            Path::new("/run/user/1000/sockmeter/sockmeter.sock"),
            &OsString::from("/opt/sm/sock meter"),
            Some(250),
        );
        assert_eq!(
            line,
            "LD_PRELOAD=/opt/sm/libsockmeter_shim.so SOCKMETER_SOCKET=/run/user/1000/sockmeter/sockmeter.sock SOCKMETER_SHIPPER='/opt/sm/sock meter' SOCKMETER_INTERVAL=250"
        );
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("env -i {line} sh -c 'printf %s \"$SOCKMETER_SHIPPER\"'"))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "/opt/sm/sock meter");
        assert_eq!(shell_word(b"it's"), "'it'\\''s'");
    }

    #[test]
    fn a_stale_socket_is_cleared_a_live_one_is_not() {
        let d = crate::private_dir::PrivateDir::new().unwrap();
        let p = d.path().join("s");
        let l = std::os::unix::net::UnixListener::bind(&p).unwrap();
        assert!(format!("{:#}", clear_stale(&p).unwrap_err()).contains("another reporter listens"));
        drop(l);
        clear_stale(&p).unwrap();
        assert!(!p.exists());
        std::fs::write(&p, b"x").unwrap();
        assert!(format!("{:#}", clear_stale(&p).unwrap_err()).contains("not a socket"));
        clear_stale(&d.path().join("none")).unwrap();
    }
}
