//! Command-line arguments of `sockmeter` (clap derive).
//!
//! Only parsing and validation live here; each subcommand's behaviour is in its own module.
//! Usage errors are clap's: a message on stderr and exit status 2. The `SOCKMETER_*`
//! environment follows one rule, stated in `--help` ([`ENVIRONMENT`]): every variable is checked
//! before anything runs, a malformed one is an error (exit 2), and `--interval`, `--unix` and
//! `--attribute` take their defaults from theirs ([`RunArgs::apply_environment`]).

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

pub use sockmeter::config::DEFAULT_INTERVAL_MS;

/// The one rule for the `SOCKMETER_*` variables, as `--help` states it (a macro, so that
/// `run --help` can append it with `concat!`).
macro_rules! environment_help {
    () => {
        "\
Environment: SOCKMETER_INTERVAL, SOCKMETER_UNIX and SOCKMETER_ATTRIBUTE are the defaults of
--interval, --unix and --attribute (an option given wins). Every SOCKMETER_* variable
(SOCKMETER_DISABLE, SOCKMETER_REPORT, SOCKMETER_SHIPPER, SOCKMETER_SHIM too) is checked before
anything runs: a malformed one is an error, exit status 2, whichever subcommand reads it.
(Without sockmeter, under a bare LD_PRELOAD, the shim names a malformed one once on stderr and
uses the default.) SOCKMETER_SHIM: the shim to inject, instead of the one beside this
executable or the copy embedded in it."
    };
}

/// The environment's rule (the end of `sockmeter --help`).
pub const ENVIRONMENT: &str = environment_help!();

/// What `sockmeter run --help` ends with.
const RUN_AFTER_HELP: &str = concat!(
    "\
The summary goes to stderr; the command's stdin, stdout and stderr are its own. Bytes are what
the program read or wrote (data the kernel received that the program never read is not
counted, unlike a packet capture). Colour only on a terminal (NO_COLOR turns it off).
Exit status: the command's (128+N if signal N killed it); 127 if it was not found, 126 if it
could not be executed; 2 if sockmeter itself could not start it (bad usage, a malformed
SOCKMETER_* variable, no shim, an unwritable --json path). If the command succeeded but the
report could not be written: 1.

",
    environment_help!()
);

/// Network byte accounting inside a process, without root.
#[derive(Debug, Parser)]
#[command(name = "sockmeter", version, about, long_about = None, after_help = ENVIRONMENT)]
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
        override_usage = "sockmeter run [OPTIONS] [--] CMD [ARGS...]",
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

/// `sockmeter run [OPTIONS] [--] CMD [ARGS...]`
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Write the JSON report (sockmeter.report.v1) to FILE; `-` writes it to stdout, after
    /// the command's own output.
    #[arg(short = 'j', long, value_name = "FILE")]
    pub json: Option<PathBuf>,

    /// How often metered processes send their counters, in milliseconds (10 to 3600000)
    /// [env: SOCKMETER_INTERVAL].
    #[arg(
        short = 'i',
        long,
        value_name = "MS",
        default_value_t = DEFAULT_INTERVAL_MS,
        allow_negative_numbers = true,
        value_parser = parse_interval
    )]
    pub interval: u64,

    /// Count Unix-domain sockets in the totals (they are otherwise listed in their own
    /// section); a socketpair is never a connection [env: SOCKMETER_UNIX].
    #[arg(short = 'u', long)]
    pub unix: bool,

    /// Change which objects count as modules; repeatable. By default a module is a plugin (any
    /// object the program loaded with dlopen, system directories included; not the libraries
    /// a plugin pulls in, nor an interpreter's own extensions such as Python's _socket), the
    /// executable, or a library it links from outside the system directories. GLOB adds the
    /// objects it matches; !GLOB removes them (GLOB wins over !GLOB). A glob without `/`
    /// matches file names, one with `/` whole paths; `*` matches any characters, `/`
    /// included; `?` one character; `[a-z]` a class. A malformed glob is an error; one that
    /// matched nothing is named at the end [env: SOCKMETER_ATTRIBUTE, `:`-separated].
    #[arg(long = "attribute", value_name = "GLOB", value_parser = parse_glob)]
    pub attribute: Vec<String>,

    /// After the command exits, wait for every descendant it left running (a daemon, a
    /// background job) to end too, and count all of it; Ctrl-C stops waiting and writes the
    /// report. Without it, sockmeter waits 2 s and reports those still running as `running`.
    #[arg(short = 'w', long)]
    pub wait_all: bool,

    /// How the summary looks.
    #[command(flatten)]
    pub summary: SummaryArgs,

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

/// The summary's options (`run`'s; a subcommand that prints a summary can flatten them too).
#[derive(Debug, Default, Args)]
pub struct SummaryArgs {
    /// Print no summary (warnings and errors are still said; --json still writes the report).
    #[arg(short = 'q', long)]
    pub quiet: bool,

    /// Show the sockets and processes that moved nothing too (a program's internal
    /// socketpair, a listening socket nobody connected to).
    #[arg(short = 'a', long)]
    pub all: bool,

    /// Exact byte counts (`3000000 B`) instead of decimal units (`3.0 MB`).
    #[arg(short = 'b', long)]
    pub bytes: bool,

    /// One block per process, or one row per executable, module or peer. By default each
    /// process gets a block, up to 8; more are grouped by executable.
    #[arg(short = 'g', long, value_name = "HOW", value_enum)]
    pub group_by: Option<crate::summary::GroupBy>,

    /// Only the N busiest processes (or rows, grouped); the rest are summed in one line.
    #[arg(short = 'n', long, value_name = "N", allow_negative_numbers = true, value_parser = parse_top)]
    pub top: Option<usize>,
}

/// `--interval`: milliseconds from 10 to 3600000 (the same words as the shim's check of
/// `SOCKMETER_INTERVAL`; a negative number is out of range, not an option).
fn parse_interval(s: &str) -> Result<u64, String> {
    match s.trim().parse::<i128>() {
        Ok(ms) if (10..=3_600_000).contains(&ms) => Ok(ms as u64),
        _ => Err("expected milliseconds from 10 to 3600000".into()),
    }
}

/// `--top`: a number of rows, at least 1.
fn parse_top(s: &str) -> Result<usize, String> {
    match s.trim().parse::<i128>() {
        Ok(n) if n >= 1 => Ok(usize::try_from(n).unwrap_or(usize::MAX)),
        _ => Err("expected a number of processes or rows, 1 or more".into()),
    }
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
    #[arg(long, value_name = "MS", value_parser = parse_interval)]
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

/// Validates one `--attribute` glob (`sockmeter::glob::check`): not empty, no `:` (the list
/// separator of `SOCKMETER_ATTRIBUTE`) or NUL byte, every `[` closed, no backwards range.
fn parse_glob(s: &str) -> Result<String, String> {
    sockmeter::glob::check(s)?;
    Ok(s.to_string())
}

impl RunArgs {
    /// The value of `SOCKMETER_ATTRIBUTE`, when any `--attribute` was given.
    pub fn attribute_env(&self) -> Option<String> {
        (!self.attribute.is_empty()).then(|| self.attribute.join(":"))
    }

    /// Fills the options not given on the command line from the environment's configuration
    /// (`SOCKMETER_INTERVAL`, `SOCKMETER_UNIX`, `SOCKMETER_ATTRIBUTE`), already checked.
    pub fn apply_environment(&mut self, given: &clap::ArgMatches, env: &sockmeter::config::Config) {
        let from_cli = |id: &str| given.value_source(id) == Some(clap::parser::ValueSource::CommandLine);
        if !from_cli("interval") {
            self.interval = env.interval_ms;
        }
        if !from_cli("unix") {
            self.unix |= env.unix_in_totals;
        }
        if !from_cli("attribute") {
            self.attribute = env.attribute.clone();
        }
    }
}

/// Checks every `SOCKMETER_*` variable sockmeter or the shim reads, through `get` (the
/// environment): the shim's own (`sockmeter::config`), `SOCKMETER_SHIPPER` (`none` or an
/// executable file) and `SOCKMETER_SHIM` (a file). Returns the shim's configuration, or one
/// error naming every malformed variable.
pub fn check_environment(get: impl Fn(&str) -> Option<OsString>) -> anyhow::Result<sockmeter::config::Config> {
    use std::os::unix::fs::PermissionsExt;
    let (config, errors) = sockmeter::config::Config::from_lookup(&get);
    let mut bad: Vec<String> = errors
        .iter()
        .map(|e| format!("{}={:?}: {}", e.var, e.value, e.problem))
        .collect();
    if let Some(v) = get("SOCKMETER_SHIPPER").filter(|v| v != "none") {
        let ok = std::fs::metadata(&v).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
        if !ok {
            bad.push(format!(
                "SOCKMETER_SHIPPER={:?}: expected `none` or the path of an executable sockmeter",
                sockmeter::config::shown(v.to_string_lossy().into_owned())
            ));
        }
    }
    if let Some(v) = get(crate::shim_path::SHIM_ENV) {
        if let Some(problem) = crate::shim_path::env_problem(&v) {
            let v = sockmeter::config::shown(v.to_string_lossy().into_owned());
            bad.push(format!("{}={v:?}: {problem}", crate::shim_path::SHIM_ENV));
        }
    }
    if !bad.is_empty() {
        anyhow::bail!("malformed environment: {}", bad.join("; "));
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::error::ErrorKind;
    use clap::{CommandFactory, FromArgMatches};

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
            "--all",
            "--bytes",
            "--group-by",
            "peer",
            "--top",
            "5",
            "--quiet",
            "--wait-all",
            "--",
            "curl",
            "-s",
            "--json",
            "x",
        ]);
        assert_eq!(r.json, Some(PathBuf::from("r.json")));
        assert_eq!(r.interval, 250);
        assert!(r.unix && r.wait_all);
        let s = &r.summary;
        assert!(s.all && s.bytes && s.quiet);
        assert_eq!((s.group_by, s.top), (Some(crate::summary::GroupBy::Peer), Some(5)));
        assert_eq!(
            r.attribute_env().as_deref(),
            Some("*/libfoo*.so:/opt/x/*:!*/gstreamer-1.0/*")
        );
        assert_eq!(r.command, ["curl", "-s", "--json", "x"].map(OsString::from));
    }

    #[test]
    fn short_flags_for_the_common_options() {
        let r = run_args(&[
            "run", "-j", "-", "-i", "50", "-u", "-w", "-q", "-a", "-b", "-g", "exe", "-n", "3", "sh",
        ]);
        assert_eq!(r.json, Some(PathBuf::from("-")));
        assert_eq!(r.interval, 50);
        assert!(r.unix && r.wait_all && r.summary.quiet && r.summary.all && r.summary.bytes);
        assert_eq!(r.summary.group_by, Some(crate::summary::GroupBy::Exe));
        assert_eq!(r.summary.top, Some(3));
        assert_eq!(r.command, ["sh"].map(OsString::from));
    }

    #[test]
    fn a_negative_interval_is_out_of_range_not_an_option() {
        for bad in ["-5", "9", "3600001", "soon", "-99999999999999999999999"] {
            let e = parse(&["run", "--interval", bad, "--", "true"]).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::ValueValidation, "{bad}");
            let text = e.to_string();
            assert!(
                text.contains(&format!(
                    "invalid value '{bad}' for '--interval <MS>': expected milliseconds from 10 to 3600000"
                )),
                "{text}"
            );
            assert!(
                !text.contains(&format!("-- {bad}")) && !text.contains("tip"),
                "{bad}: no tip to pass `-- {bad}`: {text}"
            )
        }
        let e = parse(&["run", "--top", "-1", "--", "true"]).unwrap_err().to_string();
        assert!(e.contains("expected a number of processes or rows, 1 or more"), "{e}");
    }

    #[test]
    fn the_environment_gives_defaults_the_command_line_wins_and_malformed_is_an_error() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| OsString::from(v))
        };
        let with = |args: &[&str], pairs: &'static [(&'static str, &'static str)]| {
            let m = Cli::command()
                .try_get_matches_from(std::iter::once("sockmeter").chain(args.iter().copied()))
                .unwrap();
            let Command::Run(mut r) = Cli::from_arg_matches(&m).unwrap().command else {
                panic!()
            };
            let config = check_environment(env(pairs)).unwrap();
            r.apply_environment(m.subcommand_matches("run").unwrap(), &config);
            r
        };
        let vars: &'static [(&'static str, &'static str)] = &[
            ("SOCKMETER_INTERVAL", "250"),
            ("SOCKMETER_UNIX", "yes"),
            ("SOCKMETER_ATTRIBUTE", "libcurl*:!*/gst/*"),
        ];
        let r = with(&["run", "true"], vars);
        assert_eq!((r.interval, r.unix), (250, true));
        assert_eq!(r.attribute, ["libcurl*", "!*/gst/*"]);
        let r = with(&["run", "-i", "40", "--attribute", "libssl*", "true"], vars);
        assert_eq!((r.interval, r.attribute.as_slice()), (40, &["libssl*".to_string()][..]));
        let r = with(&["run", "true"], &[]);
        assert_eq!((r.interval, r.unix, r.attribute.len()), (DEFAULT_INTERVAL_MS, false, 0));

        let e = check_environment(env(&[
            ("SOCKMETER_INTERVAL", "abc"),
            ("SOCKMETER_UNIX", "maybe"),
            ("SOCKMETER_ATTRIBUTE", "lib[x"),
            ("SOCKMETER_SHIPPER", "/nonexistent/sockmeter"),
            ("SOCKMETER_SHIM", ""),
        ]))
        .unwrap_err()
        .to_string();
        for part in [
            "SOCKMETER_UNIX=\"maybe\": expected 1 or 0",
            "SOCKMETER_INTERVAL=\"abc\": expected milliseconds from 10 to 3600000",
            "SOCKMETER_ATTRIBUTE=\"lib[x\": `lib[x`: the `[` at byte 4 opens a class that no `]` closes",
            "SOCKMETER_SHIPPER=\"/nonexistent/sockmeter\": expected `none` or the path of an executable sockmeter",
            "SOCKMETER_SHIM=\"\": empty",
        ] {
            assert!(e.contains(part), "{part}\n{e}");
        }
        assert!(check_environment(env(&[("SOCKMETER_SHIPPER", "none")])).is_ok());
    }

    #[test]
    fn help_states_the_environment_rule_and_that_star_crosses_slash() {
        let mut c = Cli::command();
        let run = c.find_subcommand_mut("run").unwrap();
        let help = run.render_long_help().to_string();
        assert!(
            help.contains("`*` matches any characters, `/`\n") || help.contains("`/` included"),
            "{help}"
        );
        assert!(help.contains("a malformed one is an error, exit status 2"), "{help}");
        assert!(
            help.contains("-q, --quiet") && help.contains("-j, --json <FILE>"),
            "{help}"
        );
        let top = Cli::command().render_long_help().to_string();
        assert!(top.contains("Every SOCKMETER_* variable"), "{top}");
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
        let e = parse(&["run", "--attribute", "lib[z-a]", "--", "true"]).unwrap_err();
        assert!(e.to_string().contains("the range `z-a` is backwards"), "{e}");
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
