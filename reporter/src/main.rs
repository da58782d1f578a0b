//! `sockmeter`: runs a program with the shim preloaded and reports its network traffic.
//!
//! This file only parses the command line and maps the outcome to an exit status; each
//! subcommand lives in its own module. Exit statuses: the command's own for `run` (128+N for
//! signal N; 127 if it is not found, 126 if it cannot be executed; 1 if it succeeded but the
//! JSON report could not be written), 2 for usage errors and for problems found before
//! anything ran (no shim, an unwritable `--json` path, a malformed `SOCKMETER_*` variable).

/// Prints a line on stderr, ignoring errors: a closed stderr must not cost the JSON report
/// or the exit status (`eprintln!` would panic).
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

mod admit;
mod cli;
mod collector;
mod conn;
mod demo;
mod elf;
mod endings;
mod listen;
mod live;
mod macho;
mod outputs;
mod private_dir;
mod prometheus;
mod reap;
mod replay;
mod report_out;
mod run;
mod shim_path;
mod ship;
mod signals;
mod stream;
mod summary;
mod user_dir;

use std::io::Write;
use std::os::unix::ffi::OsStrExt;

use anyhow::{Context, Result};
use clap::{CommandFactory, FromArgMatches};

use crate::cli::{Cli, Command};

/// Exit status for errors of the reporter itself, before the command ran.
const EXIT_USAGE: i32 = 2;

fn shim_path() -> Result<i32> {
    let p = shim_path::find_preload()?;
    let mut out = std::io::stdout().lock();
    out.write_all(p.as_os_str().as_bytes())
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush())
        .context("cannot print the shim's path")?;
    Ok(0)
}

fn main() {
    let matches = Cli::command().get_matches();
    let mut cli = match Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    // One rule for the environment, whatever the subcommand (the shipper is started by the
    // shim, under the environment the run has already checked).
    if !matches!(cli.command, Command::Ship(_)) {
        match cli::check_environment(|k| std::env::var_os(k)) {
            Ok(config) => {
                if let (Command::Run(args), Some(("run", m))) = (&mut cli.command, matches.subcommand()) {
                    args.apply_environment(m, &config);
                }
            }
            Err(e) => {
                say!("sockmeter: error: {e:#}");
                std::process::exit(EXIT_USAGE);
            }
        }
    }
    let outcome = match &cli.command {
        Command::Run(args) => run::run(args),
        Command::Listen(args) => listen::listen(args),
        Command::Replay(args) => replay::replay(args),
        Command::ShimPath => shim_path(),
        Command::Demo => demo::demo(),
        Command::Ship(args) => Ok(ship::ship(args)),
    };
    let code = match outcome {
        Ok(code) => code,
        Err(e) => {
            say!("sockmeter: error: {e:#}");
            EXIT_USAGE
        }
    };
    std::process::exit(code);
}
