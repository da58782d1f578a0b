//! `sockmeter replay FILE [--json OUT]`: the summary and report of a recorded event stream
//! (`--json-stream`), made by the same code from the same messages: a stream recorded by `run`
//! replays to the report that run wrote; one recorded by `listen` (restarts included, which
//! continue the same file) to the report of the last `listen`.

use std::ffi::OsString;
use std::io::BufReader;

use anyhow::{Context, Result};

use crate::cli::ReplayArgs;
use crate::{report_out, stream, summary};

/// Runs `sockmeter replay`; exit status 0 (an unreadable file is an error: 2).
pub fn replay(args: &ReplayArgs) -> Result<i32> {
    if let Some(json) = &args.json {
        report_out::check_writable(json)?;
    }
    let replayed = if args.file.as_os_str() == "-" {
        stream::read(std::io::stdin().lock())?
    } else {
        let f = std::fs::File::open(&args.file)
            .with_context(|| format!("cannot read the event stream {}", args.file.display()))?;
        stream::read(BufReader::new(f))?
    };
    for w in &replayed.warnings {
        say!("sockmeter: warning: {w}");
    }
    if replayed.segments == 0 {
        anyhow::bail!(
            "{} is not an event stream (no `stream` header line; write one with --json-stream)",
            args.file.display()
        );
    }
    let command: Vec<OsString> = replayed.command.iter().map(OsString::from).collect();
    let mut report = report_out::assemble(
        &command,
        replayed.exit_status,
        replayed.unix,
        &replayed.conns,
        "running",
        &replayed.endings,
    );
    report.notices = replayed.notices.clone();
    if !replayed.finished {
        say!("sockmeter: the stream ends without the reporter's end (it was stopped, or is still writing): processes still connected are reported as running");
    }
    say!("{}", summary::render(&report).trim_end());
    if let Some(json) = &args.json {
        report_out::write_json(json, &report)?;
    }
    Ok(0)
}
