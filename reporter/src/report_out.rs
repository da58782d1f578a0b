//! The run report: assembled from the connections with [`sockmeter::Report::new`] (which
//! computes the run totals), and written as pretty JSON to `--json FILE`.
//!
//! The destination is checked before the command runs ([`check_writable`]), so a typo in the
//! path costs nothing but a clear error, not a finished run without its report.

use std::ffi::OsString;
use std::io::{ErrorKind, Write};
use std::path::Path;

use anyhow::{bail, Context, Result};
use sockmeter::{safe_open, Report};

use crate::conn::Conn;
use crate::endings::Endings;

/// Checks that `path` can be written, without truncating an existing file. A file that did
/// not exist is created and removed again. Opened like the report itself
/// ([`sockmeter::safe_open`]): a symbolic link owned by another user is refused here, before
/// the command runs.
pub fn check_writable(path: &Path) -> Result<()> {
    let what = || format!("cannot write the JSON report to {}", path.display());
    if path.as_os_str().is_empty() {
        bail!("--json needs a file name (or `-` for stdout)");
    }
    if is_stdout(path) {
        return Ok(());
    }
    if path.is_dir() {
        bail!("{}: it is a directory", what());
    }
    // O_NONBLOCK: opening a FIFO must not wait for a reader here.
    match safe_open::open(path, libc::O_WRONLY | libc::O_NONBLOCK) {
        Ok(_) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::ENXIO) => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => {
            let probe = safe_open::open(path, libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL).with_context(what)?;
            probe.remove().with_context(what)?;
            Ok(())
        }
        Err(e) => Err(e).with_context(what),
    }
}

/// The run report: one process per connection that said `hello` (one without is no process),
/// in the order they started (then in the order they connected). Connections still open are
/// `end_hint` (`running`).
pub fn assemble(
    command: &[OsString],
    exit_status: Option<i32>,
    unix: bool,
    conns: &[Conn],
    end_hint: &str,
    endings: &Endings,
) -> Report {
    let refs: Vec<&Conn> = conns.iter().collect();
    assemble_refs(command, exit_status, unix, &refs, end_hint, endings)
}

/// [`assemble`], from borrowed connections (a live view or an exporter, while the collector
/// keeps serving them).
pub fn assemble_refs(
    command: &[OsString],
    exit_status: Option<i32>,
    unix: bool,
    conns: &[&Conn],
    end_hint: &str,
    endings: &Endings,
) -> Report {
    let mut order: Vec<&Conn> = conns.to_vec();
    order.sort_by_key(|c| (c.account().hello().map_or(u64::MAX, |h| h.started_at), c.id()));
    // A process image whose connection was taken by the host (a close sweep) reconnects with
    // the same hello (pid, start, image token): its connections make one process. Two images
    // of one pid (an exec chain) differ in their token, however close their starts.
    let mut processes: Vec<sockmeter::ProcessReport> = Vec::new();
    let mut groups: Vec<Vec<&Conn>> = Vec::new();
    let mut group_of: std::collections::HashMap<(u32, u64, u64), usize> = std::collections::HashMap::new();
    for c in &order {
        let Some(key) = c.account().hello().map(|h| (h.pid, h.started_at, h.image)) else {
            continue;
        };
        match group_of.get(&key) {
            Some(&i) => groups[i].push(c),
            None => {
                group_of.insert(key, groups.len());
                groups.push(vec![c]);
            }
        }
    }
    for g in &groups {
        let last = g[g.len() - 1];
        let started = last.account().hello().map_or(0, |h| h.started_at);
        let mut report = if g.len() == 1 {
            last.report(unix, end_hint)
        } else {
            // Only a process with several connections needs its accounts merged (a copy).
            let mut account = g[0].account().clone();
            for c in &g[1..] {
                account.absorb(c.account());
            }
            last.report_with(&account, unix, end_hint)
        };
        endings.apply(&mut report, started);
        processes.push(report);
    }
    processes.sort_by(|a, b| a.started_at.cmp(&b.started_at));
    // A connection open in several processes (across a fork): what no hook saw is worked out
    // over all of its holders here, where they are all known.
    sockmeter::holders::reconcile(&mut processes);
    let command = command.iter().map(|a| a.to_string_lossy().into_owned()).collect();
    Report::new(command, exit_status, unix, processes)
}

/// Whether `--json` names stdout (`-`).
pub fn is_stdout(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// Writes `report` to `path` as pretty-printed JSON with a final newline: a new file gets mode
/// 0600, and a symbolic link owned by another user is not followed ([`sockmeter::safe_open`]);
/// `-` is stdout. The JSON is streamed (a report of tens of thousands of sockets is hundreds of
/// megabytes of text: it is not built in memory first).
pub fn write_json(path: &Path, report: &Report) -> Result<()> {
    if is_stdout(path) {
        let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
        return serde_json::to_writer_pretty(&mut out, report)
            .map_err(std::io::Error::from)
            .and_then(|()| out.write_all(b"\n"))
            .and_then(|()| out.flush())
            .context("cannot write the JSON report to stdout");
    }
    let what = || format!("cannot write the JSON report to {}", path.display());
    let file = safe_open::open(path, libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC)
        .with_context(what)?
        .file;
    let mut out = std::io::BufWriter::with_capacity(1 << 16, file);
    serde_json::to_writer_pretty(&mut out, report)
        .map_err(std::io::Error::from)
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush())
        .with_context(what)?;
    let file = out.into_inner().map_err(|e| e.into_error()).with_context(what)?;
    file.sync_all()
        .or_else(|e| {
            if e.raw_os_error() == Some(libc::EINVAL) {
                Ok(())
            } else {
                Err(e)
            }
        })
        .with_context(what)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::private_dir::PrivateDir;
    use sockmeter::wire::{encode, Hello, Message, Origin};

    fn conn(id: u64, pid: u32, started_at: u64) -> Conn {
        let mut c = Conn::new(id);
        c.feed(&encode(&Message::Hello(Hello {
            pid,
            ppid: 1,
            exe: "/bin/sh".into(),
            argv: vec!["sh".into()],
            started_at,
            origin: Origin::Fork,
            shim_version: "t".into(),
            interval_ms: 1000,
            image: 0,
        })));
        c
    }

    #[test]
    fn processes_in_start_order() {
        let conns = vec![conn(1, 30, 500), conn(2, 10, 100), conn(3, 20, 100)];
        let r = assemble(
            &[OsString::from("sh"), OsString::from("-c")],
            Some(130),
            false,
            &conns,
            "running",
            &Endings::new(),
        );
        assert_eq!(r.processes.iter().map(|p| p.pid).collect::<Vec<_>>(), [10, 20, 30]);
        assert_eq!(
            (r.exit_status, r.command.len(), r.schema.as_str()),
            (Some(130), 2, "sockmeter.report.v1")
        );
        assert!(r.processes.iter().all(|p| p.end == "running"));
    }

    #[test]
    fn writable_checks() {
        let d = PrivateDir::new().unwrap();
        let fresh = d.path().join("r.json");
        check_writable(&fresh).unwrap();
        assert!(!fresh.exists(), "the probe leaves nothing behind");
        std::fs::write(&fresh, b"keep").unwrap();
        check_writable(&fresh).unwrap();
        assert_eq!(
            std::fs::read(&fresh).unwrap(),
            b"keep",
            "an existing file is not truncated by the check"
        );

        let e = format!("{:#}", check_writable(&d.path().join("missing/r.json")).unwrap_err());
        assert!(
            e.contains("cannot write the JSON report to") && e.contains("No such file"),
            "{e}"
        );
        let e = format!("{:#}", check_writable(d.path()).unwrap_err());
        assert!(e.contains("it is a directory"), "{e}");
        assert!(check_writable(&fresh.join("under-a-file")).is_err());
        assert!(check_writable(Path::new("")).is_err());
        check_writable(Path::new("-")).unwrap();
        assert!(!Path::new("-").exists(), "`-` is stdout, never a file");
    }

    #[test]
    fn json_round_trips() {
        let d = PrivateDir::new().unwrap();
        let p = d.path().join("r.json");
        let r = assemble(
            &[OsString::from("x")],
            Some(0),
            true,
            &[conn(1, 5, 1)],
            "running",
            &Endings::new(),
        );
        write_json(&p, &r).unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.starts_with("{\n  \"schema\"") && text.ends_with("}\n"), "{text}");
        let back: Report = serde_json::from_str(&text).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn a_new_report_is_private_and_an_own_link_is_followed() {
        use std::os::unix::fs::PermissionsExt;
        let d = PrivateDir::new().unwrap();
        let r = assemble(
            &[OsString::from("x")],
            Some(0),
            false,
            &[conn(1, 5, 1)],
            "running",
            &Endings::new(),
        );
        let p = d.path().join("r.json");
        write_json(&p, &r).unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
        // --json through a link of the user's own (into a directory of theirs).
        std::os::unix::fs::symlink(d.path().join("real.json"), d.path().join("link.json")).unwrap();
        let link = d.path().join("link.json");
        check_writable(&link).unwrap();
        assert!(
            !d.path().join("real.json").exists(),
            "the probe removes the file it made"
        );
        write_json(&link, &r).unwrap();
        let back: Report = serde_json::from_str(&std::fs::read_to_string(d.path().join("real.json")).unwrap()).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn another_users_link_is_refused_before_the_run_and_at_the_end() {
        // SAFETY: geteuid cannot fail.
        let euid = unsafe { libc::geteuid() };
        assert_eq!(
            euid, 0,
            "this test gives a symbolic link to another user (lchown), which needs root; CI runs as root"
        );
        let d = PrivateDir::new().unwrap();
        let victim = d.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let link = d.path().join("r.json");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        std::os::unix::fs::lchown(&link, Some(4242), None).unwrap();
        let e = format!("{:#}", check_writable(&link).unwrap_err());
        assert!(
            e.contains("cannot write the JSON report to")
                && e.contains(&format!("symbolic link {} owned by uid 4242", link.display())),
            "{e}"
        );
        let r = assemble(&[OsString::from("x")], Some(0), false, &[], "running", &Endings::new());
        assert!(write_json(&link, &r).is_err());
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    }
}
