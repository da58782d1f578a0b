//! How the summary writes quantities and facts: byte counts (decimal units, or exact with
//! `--bytes`), rates, durations, how a process ended, a shortened command line.
//!
//! Byte counts use decimal (SI) units, as network tools and link speeds do: 3,000,000 bytes is
//! `3.0 MB`, a rate `60.1 MB/s`. `--bytes` prints every count exactly (`3000000 B`).

use std::path::Path;

use sockmeter::report::ProcessReport;

/// A byte count for people: `84 B`, `1.5 kB`, `3.0 MB`, `2.0 GB`... (powers of 1000, one
/// decimal; a value that would print as `1000.0` moves up a unit).
pub fn human(bytes: u64) -> String {
    scaled(bytes, "B")
}

fn scaled(n: u64, unit: &str) -> String {
    const PREFIXES: [&str; 6] = ["k", "M", "G", "T", "P", "E"];
    if n < 1000 {
        return format!("{n} {unit}");
    }
    let mut v = n as f64 / 1000.0;
    let mut p = 0;
    while v >= 999.95 && p + 1 < PREFIXES.len() {
        v /= 1000.0;
        p += 1;
    }
    format!("{v:.1} {}{unit}", PREFIXES[p])
}

/// The shortest life a rate is given for.
pub const MIN_RATE_MS: u64 = 10;

/// How byte counts are written: in units, or exact.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Units {
    /// `--bytes`: every count exact.
    pub exact: bool,
}

impl Units {
    /// A byte count.
    pub fn bytes(self, n: u64) -> String {
        if self.exact {
            format!("{n} B")
        } else {
            human(n)
        }
    }

    /// A rate of `bytes` over `ms` milliseconds (`None` when no byte moved, or over less than
    /// [`MIN_RATE_MS`], where a clock read in milliseconds says little).
    pub fn rate(self, bytes: u64, ms: u64) -> Option<String> {
        if bytes == 0 || ms < MIN_RATE_MS {
            return None;
        }
        let per_s = (bytes as f64 * 1000.0 / ms as f64).round() as u64;
        Some(if self.exact {
            format!("{per_s} B/s")
        } else {
            scaled(per_s, "B/s")
        })
    }
}

/// A duration: `47 ms`, `1.23 s`, `12.3 s`, `2 min 05 s`, `1 h 02 min`.
pub fn duration(ms: u64) -> String {
    match ms {
        0..=999 => format!("{ms} ms"),
        1000..=9_999 => format!("{:.2} s", ms as f64 / 1000.0),
        10_000..=59_999 => format!("{:.1} s", ms as f64 / 1000.0),
        60_000..=3_599_999 => format!("{} min {:02} s", ms / 60_000, ms / 1000 % 60),
        _ => format!("{} h {:02} min", ms / 3_600_000, ms / 60_000 % 60),
    }
}

/// A signal's name (`SIGTERM`), or `signal N`.
pub fn signal_name(n: i32) -> String {
    const NAMES: [&str; 31] = [
        "SIGHUP",
        "SIGINT",
        "SIGQUIT",
        "SIGILL",
        "SIGTRAP",
        "SIGABRT",
        "SIGBUS",
        "SIGFPE",
        "SIGKILL",
        "SIGUSR1",
        "SIGSEGV",
        "SIGUSR2",
        "SIGPIPE",
        "SIGALRM",
        "SIGTERM",
        "SIGSTKFLT",
        "SIGCHLD",
        "SIGCONT",
        "SIGSTOP",
        "SIGTSTP",
        "SIGTTIN",
        "SIGTTOU",
        "SIGURG",
        "SIGXCPU",
        "SIGXFSZ",
        "SIGVTALRM",
        "SIGPROF",
        "SIGWINCH",
        "SIGIO",
        "SIGPWR",
        "SIGSYS",
    ];
    match usize::try_from(n)
        .ok()
        .and_then(|i| i.checked_sub(1))
        .and_then(|i| NAMES.get(i))
    {
        Some(s) => (*s).to_string(),
        None => format!("signal {n}"),
    }
}

/// How a process ended: `exit 0`, `killed by SIGTERM`, `still running when sockmeter
/// stopped`...
pub fn ending(p: &ProcessReport) -> String {
    match (p.end.as_str(), p.exit_code, p.signal) {
        ("running", None, None) => "still running when sockmeter stopped".into(),
        ("lost", None, None) => {
            "ended without a goodbye: its connection broke, or it was killed while reporting from its own thread".into()
        }
        _ => ending_short(p),
    }
}

/// [`ending`] in a few words, for a table: `exit 0`, `SIGTERM`, `running`, `lost`...
pub fn ending_short(p: &ProcessReport) -> String {
    match (p.end.as_str(), p.exit_code, p.signal) {
        (_, _, Some(s)) => format!("killed by {}", signal_name(s)),
        (_, Some(c), None) => format!("exit {c}"),
        ("exit", None, None) => "exited".into(),
        ("exec", ..) => "exec'd another program".into(),
        ("running", ..) => "running".into(),
        ("lost", ..) => "lost".into(),
        (other, ..) => other.to_string(),
    }
}

/// How long the process (this image of it) ran, in ms, when both ends are known.
pub fn elapsed_ms(p: &ProcessReport) -> Option<u64> {
    let start = sockmeter::time::parse_rfc3339(&p.started_at)?;
    let end = sockmeter::time::parse_rfc3339(p.ended_at.as_deref()?)?;
    end.checked_sub(start)
}

pub(super) fn basename(p: &str) -> &str {
    Path::new(p).file_name().and_then(|s| s.to_str()).unwrap_or(p)
}

/// The longest command line shown, in characters.
pub const MAX_COMMAND: usize = 72;

/// The process's command line as a shell would show it (argv[0] without its directory,
/// arguments quoted when they need it), cut to [`MAX_COMMAND`] characters with `…`.
pub fn command_line(p: &ProcessReport) -> String {
    let mut words: Vec<String> = Vec::with_capacity(p.argv.len());
    let first = p
        .argv
        .first()
        .map(|a| basename(a))
        .filter(|a| !a.is_empty())
        .unwrap_or_else(|| basename(&p.exe));
    words.push(quote(first));
    words.extend(p.argv.iter().skip(1).map(|a| quote(a)));
    shorten(&words.join(" "), MAX_COMMAND)
}

/// An argument as a shell would need it: bare, in single quotes, or in double quotes when it
/// holds a single quote and nothing a shell expands inside double quotes.
fn quote(a: &str) -> String {
    let plain = !a.is_empty() && a.chars().all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c));
    if plain {
        a.to_string()
    } else if a.contains('\'') && !a.contains(['"', '$', '`', '\\', '!']) {
        format!("\"{a}\"")
    } else {
        format!("'{}'", a.replace('\'', r"'\''"))
    }
    .chars()
    .map(|c| if c.is_control() { '?' } else { c })
    .collect()
}

/// `s` cut to `max` characters, the last one `…`.
pub fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// `n word` or `n words`.
pub fn plural(n: u64, word: &str) -> String {
    format!("{n} {word}{}", if n == 1 { "" } else { "s" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_units_as_a_user_expects() {
        assert_eq!(human(0), "0 B");
        assert_eq!(human(999), "999 B");
        assert_eq!(human(1000), "1.0 kB");
        assert_eq!(human(1536), "1.5 kB");
        assert_eq!(human(3_000_000), "3.0 MB", "a 3,000,000-byte file");
        assert_eq!(human(3_000_205), "3.0 MB");
        assert_eq!(human(3 << 20), "3.1 MB");
        assert_eq!(human(999_949), "999.9 kB");
        assert_eq!(human(999_950), "1.0 MB", "no 1000.0 kB");
        assert_eq!(human(5_000_000_000), "5.0 GB");
        assert_eq!(human(u64::MAX), "18.4 EB");
        let exact = Units { exact: true };
        assert_eq!(exact.bytes(3_000_000), "3000000 B");
        assert_eq!(Units::default().bytes(3_000_000), "3.0 MB");
    }

    #[test]
    fn rates_and_durations() {
        let u = Units::default();
        assert_eq!(u.rate(3_000_000, 50).as_deref(), Some("60.0 MB/s"));
        assert_eq!(u.rate(85, 1000).as_deref(), Some("85 B/s"));
        assert_eq!(
            Units { exact: true }.rate(3_000_000, 50).as_deref(),
            Some("60000000 B/s")
        );
        assert_eq!(u.rate(0, 50), None);
        assert_eq!(u.rate(10, 0), None);
        assert_eq!(u.rate(3_000_000, MIN_RATE_MS - 1), None, "too short to say");
        assert_eq!(duration(47), "47 ms");
        assert_eq!(duration(0), "0 ms");
        assert_eq!(duration(1234), "1.23 s");
        assert_eq!(duration(12_345), "12.3 s");
        assert_eq!(duration(125_000), "2 min 05 s");
        assert_eq!(duration(3_725_000), "1 h 02 min");
    }

    #[test]
    fn endings_in_words() {
        let p = |end: &str, code: Option<i32>, sig: Option<i32>| ProcessReport {
            end: end.into(),
            exit_code: code,
            signal: sig,
            ..Default::default()
        };
        assert_eq!(ending(&p("exit", Some(0), None)), "exit 0");
        assert_eq!(ending(&p("exit", Some(7), None)), "exit 7");
        assert_eq!(ending(&p("exit", None, None)), "exited");
        assert_eq!(ending(&p("signal", None, Some(15))), "killed by SIGTERM");
        assert_eq!(ending(&p("signal", None, Some(64))), "killed by signal 64");
        assert_eq!(ending(&p("exec", None, None)), "exec'd another program");
        assert_eq!(
            ending(&p("running", None, None)),
            "still running when sockmeter stopped"
        );
        assert!(ending(&p("lost", None, None)).starts_with("ended without a goodbye: "));
        assert_eq!(ending_short(&p("running", None, None)), "running");
        assert_eq!(ending_short(&p("lost", None, None)), "lost");
    }

    #[test]
    fn command_lines_are_quoted_and_cut() {
        let p = |argv: &[&str]| ProcessReport {
            exe: "/usr/bin/sh".into(),
            argv: argv.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
        assert_eq!(
            command_line(&p(&[
                "/usr/bin/curl",
                "-s",
                "-o",
                "/dev/null",
                "http://127.0.0.1:8000/big.bin"
            ])),
            "curl -s -o /dev/null http://127.0.0.1:8000/big.bin"
        );
        assert_eq!(
            command_line(&p(&["sh", "-c", "for i in 1 2; do curl x; done", "it's"])),
            r#"sh -c 'for i in 1 2; do curl x; done' "it's""#
        );
        assert_eq!(command_line(&p(&["echo", "it's $HOME"])), r"echo 'it'\''s $HOME'");
        assert_eq!(command_line(&p(&[])), "sh");
        assert_eq!(command_line(&p(&["a\nb"])), "'a?b'");
        let long = command_line(&p(&["curl", &"x".repeat(200)]));
        assert_eq!(long.chars().count(), MAX_COMMAND);
        assert!(long.ends_with("x…"), "{long}");
    }
}
