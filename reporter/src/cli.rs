//! Command-line arguments of `sockmeter` (clap derive).
//!
//! Only parsing and validation live here; each subcommand's behaviour is in its own module.
//! Usage errors are clap's: a message on stderr and exit status 2.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

pub use sockmeter::config::DEFAULT_INTERVAL_MS;

/// What `sockmeter run --help` ends with.
const RUN_AFTER_HELP: &str = "\
The summary goes to stderr; the command's stdin, stdout and stderr are its own.
Exit status: the command's (128+N if signal N killed it); 127 if it was not found, 126 if it
could not be executed; 2 if sockmeter itself could not start it (bad usage, no shim, an
unwritable --json path). If the command succeeded but the report could not be written: 1.";

/// Network byte accounting inside a process, without root.
#[derive(Debug, Parser)]
#[command(name = "sockmeter", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a command with the shim preloaded and report its network traffic.
    #[command(
        override_usage = "sockmeter run [--json FILE] [--interval MS] [--unix] [--attribute GLOB]... -- CMD [ARGS...]",
        after_help = RUN_AFTER_HELP
    )]
    Run(RunArgs),
    /// Serve metered processes started elsewhere (daemons, GUI applications, services) until
    /// SIGINT or SIGTERM, then report.
    #[command(after_help = LISTEN_AFTER_HELP)]
    Listen(ListenArgs),
    /// Print the summary and write the report of a recorded event stream (--json-stream).
    Replay(ReplayArgs),
    /// Print the absolute path of the shim that `run` injects.
    ShimPath,
    /// Show per-plugin metering on the built examples: a host, two plugins, a loopback server.
    Demo,
    /// The shipper the shim starts in a metered process (not for direct use).
    #[command(name = "__ship", hide = true)]
    Ship(crate::ship::ShipArgs),
}

/// `sockmeter run [--json FILE] [--interval MS] [--unix] [--attribute GLOB]... -- CMD [ARGS...]`
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Write the JSON report (sockmeter.report.v1) to FILE.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,

    /// How often metered processes send their counters, in milliseconds (10 to 3600000).
    #[arg(
        long,
        value_name = "MS",
        default_value_t = DEFAULT_INTERVAL_MS,
        value_parser = clap::value_parser!(u64).range(10..=3_600_000)
    )]
    pub interval: u64,

    /// Count Unix-domain sockets in the totals (they are always listed in their own section).
    #[arg(long)]
    pub unix: bool,

    /// Change which objects count as modules; repeatable. By default a module is a plugin (any
    /// object the program loaded with dlopen, system directories included; not the libraries
    /// a plugin pulls in, nor an interpreter's own extensions such as Python's _socket), the
    /// executable, or a library it links from outside the system directories. GLOB adds the
    /// objects it matches; !GLOB removes them (GLOB wins over !GLOB). A glob without `/`
    /// matches file names, one with `/` whole paths (`*` crosses `/`; `?`, `[a-z]`).
    #[arg(long = "attribute", value_name = "GLOB", value_parser = parse_glob)]
    pub attribute: Vec<String>,

    /// After the command exits, wait for every descendant it left running (a daemon, a
    /// background job) to end too, and count all of it; Ctrl-C stops waiting and writes the
    /// report. Without it, sockmeter waits 2 s and reports those still running as `running`.
    #[arg(long)]
    pub wait_all: bool,

    /// Show a live view while the command runs (on a terminal: a table refreshing in place,
    /// `q` leaves it, Ctrl-C goes to the command; otherwise one line per interval on stderr).
    #[arg(long)]
    pub live: bool,

    /// Write the event stream (NDJSON, docs/wire.md) to FILE, or to stdout with `-`.
    #[arg(long, value_name = "FILE")]
    pub json_stream: Option<PathBuf>,

    /// Serve Prometheus metrics at http://ADDR/metrics (e.g. 127.0.0.1:9464).
    #[arg(long, value_name = "ADDR")]
    pub prometheus: Option<std::net::SocketAddr>,

    /// The command to run and its arguments (after `--`).
    #[arg(
        value_name = "CMD",
        required = true,
        num_args = 1..,
        trailing_var_arg = true,
        value_parser = clap::value_parser!(OsString)
    )]
    pub command: Vec<OsString>,
}

/// What `sockmeter listen --help` ends with.
const LISTEN_AFTER_HELP: &str = "\
listen prints the environment to give the programs to meter on stdout, one line:
  LD_PRELOAD=... SOCKMETER_SOCKET=... SOCKMETER_SHIPPER=...
They may start before or after it, come and go, and keep counting while it restarts. The socket
lives in a directory only you can enter (created 0700; one owned by someone else or open to
others is refused). The report is written on SIGINT or SIGTERM. With --json-stream, a listen
started again on the same FILE continues it: its report, live view and metrics go on from what
the file holds.";

/// `sockmeter listen [--socket PATH] [--json FILE] [--json-stream FILE] [--live] [--prometheus ADDR]`
#[derive(Debug, Args)]
pub struct ListenArgs {
    /// The socket to listen on (default: $XDG_RUNTIME_DIR/sockmeter/sockmeter.sock, or
    /// /tmp/sockmeter-UID/sockmeter.sock); its directory must be yours and closed to others.
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,

    /// Write the JSON report (sockmeter.report.v1) to FILE when stopped.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,

    /// Append the event stream (NDJSON, docs/wire.md) to FILE (continuing what it holds), or
    /// write it to stdout with `-`.
    #[arg(long, value_name = "FILE")]
    pub json_stream: Option<PathBuf>,

    /// Show a live view (on a terminal: a table refreshing in place, `q` or Ctrl-C stops;
    /// otherwise one line per interval on stderr).
    #[arg(long)]
    pub live: bool,

    /// Serve Prometheus metrics at http://ADDR/metrics (e.g. 127.0.0.1:9464).
    #[arg(long, value_name = "ADDR")]
    pub prometheus: Option<std::net::SocketAddr>,

    /// How often the live view refreshes, in milliseconds; also given to the programs as
    /// SOCKMETER_INTERVAL when set.
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(10..=3_600_000))]
    pub interval: Option<u64>,

    /// Count Unix-domain sockets in the totals.
    #[arg(long)]
    pub unix: bool,
}

/// `sockmeter replay FILE [--json OUT]`
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The event stream (written with --json-stream), or `-` for stdin.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,

    /// Write the JSON report (sockmeter.report.v1) to OUT.
    #[arg(long, value_name = "OUT")]
    pub json: Option<PathBuf>,
}

/// Validates one `--attribute` glob: not empty, and without `:` (the list separator of
/// `SOCKMETER_ATTRIBUTE`) or a NUL byte.
fn parse_glob(s: &str) -> Result<String, String> {
    if s.is_empty() || s == "!" {
        return Err("the glob is empty".into());
    }
    if s.contains(':') {
        return Err(format!(
            "`{s}` contains `:`, which separates globs in SOCKMETER_ATTRIBUTE; give each glob its own --attribute"
        ));
    }
    if s.contains('\0') {
        return Err("the glob contains a NUL byte".into());
    }
    Ok(s.to_string())
}

impl RunArgs {
    /// The value of `SOCKMETER_ATTRIBUTE`, when any `--attribute` was given.
    pub fn attribute_env(&self) -> Option<String> {
        (!self.attribute.is_empty()).then(|| self.attribute.join(":"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::error::ErrorKind;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("sockmeter").chain(args.iter().copied()))
    }

    fn run_args(args: &[&str]) -> RunArgs {
        match parse(args).expect("parses").command {
            Command::Run(r) => r,
            other => panic!("not run: {other:?}"),
        }
    }

    #[test]
    fn run_with_every_flag() {
        let r = run_args(&[
            "run",
            "--json",
            "r.json",
            "--interval",
            "250",
            "--unix",
            "--attribute",
            "*/libfoo*.so",
            "--attribute",
            "/opt/x/*",
            "--attribute",
            "!*/gstreamer-1.0/*",
            "--",
            "curl",
            "-s",
            "--json",
            "x",
        ]);
        assert_eq!(r.json, Some(PathBuf::from("r.json")));
        assert_eq!(r.interval, 250);
        assert!(r.unix);
        assert_eq!(
            r.attribute_env().as_deref(),
            Some("*/libfoo*.so:/opt/x/*:!*/gstreamer-1.0/*")
        );
        assert_eq!(r.command, ["curl", "-s", "--json", "x"].map(OsString::from));
    }

    #[test]
    fn defaults_and_command_without_double_dash() {
        let r = run_args(&["run", "sh", "-c", "exit 3"]);
        assert_eq!(r.interval, DEFAULT_INTERVAL_MS);
        assert!(!r.unix && r.json.is_none() && r.attribute_env().is_none());
        assert_eq!(r.command, ["sh", "-c", "exit 3"].map(OsString::from));
    }

    #[test]
    fn bad_input_is_a_usage_error() {
        assert_eq!(
            parse(&["run", "--bogus", "--", "true"]).unwrap_err().kind(),
            ErrorKind::UnknownArgument
        );
        assert_eq!(
            parse(&["run", "--interval", "9", "--", "true"]).unwrap_err().kind(),
            ErrorKind::ValueValidation
        );
        assert_eq!(
            parse(&["run", "--interval", "fast", "--", "true"]).unwrap_err().kind(),
            ErrorKind::ValueValidation
        );
        assert_eq!(
            parse(&["run", "--attribute", "a:b", "--", "true"]).unwrap_err().kind(),
            ErrorKind::ValueValidation
        );
        assert_eq!(
            parse(&["run", "--attribute", "", "--", "true"]).unwrap_err().kind(),
            ErrorKind::ValueValidation
        );
        assert_eq!(
            parse(&["run", "--attribute", "!", "--", "true"]).unwrap_err().kind(),
            ErrorKind::ValueValidation
        );
        assert!(parse(&["run"]).is_err());
        assert!(parse(&["run", "--"]).is_err());
        assert!(parse(&["frobnicate"]).is_err());
        assert_eq!(parse(&["run", "--bogus", "--", "true"]).unwrap_err().exit_code(), 2);
    }

    #[test]
    fn listen_replay_and_the_live_options_parse() {
        let r = run_args(&[
            "run",
            "--live",
            "--json-stream",
            "-",
            "--prometheus",
            "127.0.0.1:9464",
            "--",
            "x",
        ]);
        assert!(r.live);
        assert_eq!(r.json_stream, Some(PathBuf::from("-")));
        assert_eq!(r.prometheus, Some("127.0.0.1:9464".parse().unwrap()));
        match parse(&[
            "listen",
            "--socket",
            "/s",
            "--json",
            "r",
            "--json-stream",
            "f",
            "--live",
            "--prometheus",
            "[::1]:9",
        ])
        .unwrap()
        .command
        {
            Command::Listen(l) => {
                assert_eq!(l.socket, Some(PathBuf::from("/s")));
                assert!(l.live && l.interval.is_none());
                assert_eq!(l.prometheus, Some("[::1]:9".parse().unwrap()));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse(&["replay", "f", "--json", "o"]).unwrap().command,
            Command::Replay(_)
        ));
        assert_eq!(
            parse(&["run", "--prometheus", "localhost", "--", "x"])
                .unwrap_err()
                .kind(),
            ErrorKind::ValueValidation
        );
        assert!(parse(&["replay"]).is_err());
    }

    #[test]
    fn shim_path_parses() {
        assert!(matches!(parse(&["shim-path"]).unwrap().command, Command::ShimPath));
    }
}
