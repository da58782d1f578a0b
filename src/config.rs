//! The shim's configuration, read from the environment once at load time.
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `SOCKMETER_SOCKET` | the reporter's Unix socket; unset = no reporter | unset |
//! | `SOCKMETER_INTERVAL` | ms between deltas (10 ..= 3_600_000) | 1000 |
//! | `SOCKMETER_REPORT` | write this process's report here at exit (`%p` = pid) | unset |
//! | `SOCKMETER_UNIX` | `1`: Unix-domain traffic counts in that report's totals | 0 |
//! | `SOCKMETER_ATTRIBUTE` | `:`-separated globs: `GLOB` adds the objects it matches to the modules, `!GLOB` removes them | unset |
//! | `SOCKMETER_DISABLE` | `1`: pass every call straight through | 0 |
//!
//! A malformed value never stops the host: [`Config::from_lookup`] returns the defaults for
//! it and one [`ConfigError`] per problem, which the shim prints as one line on stderr.

use std::ffi::OsString;

/// Default delta interval.
pub const DEFAULT_INTERVAL_MS: u64 = 1000;

/// The shim's settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Reporter socket path.
    pub socket: Option<String>,
    /// Delta interval in ms.
    pub interval_ms: u64,
    /// Report file pattern.
    pub report: Option<String>,
    /// Unix traffic in the report file's totals.
    pub unix_in_totals: bool,
    /// Module globs.
    pub attribute: Vec<String>,
    /// Pass-through.
    pub disabled: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            socket: None,
            interval_ms: DEFAULT_INTERVAL_MS,
            report: None,
            unix_in_totals: false,
            attribute: Vec::new(),
            disabled: false,
        }
    }
}

/// One malformed variable.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{var}={value:?}: {problem}; {fallback}")]
pub struct ConfigError {
    /// The variable.
    pub var: &'static str,
    /// Its value, lossily decoded.
    pub value: String,
    /// What is wrong.
    pub problem: String,
    /// What happens instead.
    pub fallback: &'static str,
}

/// How much of a malformed value an error shows: enough to recognise it, and the line stays
/// one readable line whatever was set (a value can be up to 128 KiB long).
const SHOWN_CHARS: usize = 64;

/// `value` as an error shows it: its first [`SHOWN_CHARS`] characters, and its length when it
/// is longer.
pub fn shown(value: String) -> String {
    match value.char_indices().nth(SHOWN_CHARS) {
        None => value,
        Some((cut, _)) => format!("{}... ({} bytes)", &value[..cut], value.len()),
    }
}

fn flag(var: &'static str, v: Option<OsString>, errs: &mut Vec<ConfigError>) -> bool {
    match v.as_ref().map(|v| v.to_string_lossy().into_owned()) {
        None => false,
        Some(s) => match s.as_str() {
            "" | "0" | "false" | "no" | "off" => false,
            "1" | "true" | "yes" | "on" => true,
            _ => {
                errs.push(ConfigError {
                    var,
                    value: shown(s),
                    problem: "expected 1 or 0".into(),
                    fallback: "treated as 0",
                });
                false
            }
        },
    }
}

fn text(var: &'static str, v: Option<OsString>, errs: &mut Vec<ConfigError>) -> Option<String> {
    let v = v?;
    match v.into_string() {
        Ok(s) if s.is_empty() => None,
        Ok(s) => Some(s),
        Err(raw) => {
            errs.push(ConfigError {
                var,
                value: shown(raw.to_string_lossy().into_owned()),
                problem: "not valid UTF-8".into(),
                fallback: "ignored",
            });
            None
        }
    }
}

impl Config {
    /// Reads the configuration through `get` (the environment in the shim, a map in tests).
    pub fn from_lookup(get: impl Fn(&str) -> Option<OsString>) -> (Config, Vec<ConfigError>) {
        let mut errs = Vec::new();
        let mut c = Config {
            disabled: flag("SOCKMETER_DISABLE", get("SOCKMETER_DISABLE"), &mut errs),
            ..Config::default()
        };
        c.socket = text("SOCKMETER_SOCKET", get("SOCKMETER_SOCKET"), &mut errs);
        c.report = text("SOCKMETER_REPORT", get("SOCKMETER_REPORT"), &mut errs);
        c.unix_in_totals = flag("SOCKMETER_UNIX", get("SOCKMETER_UNIX"), &mut errs);
        if let Some(s) = text("SOCKMETER_INTERVAL", get("SOCKMETER_INTERVAL"), &mut errs) {
            match s.trim().parse::<u64>() {
                Ok(ms) if (10..=3_600_000).contains(&ms) => c.interval_ms = ms,
                _ => errs.push(ConfigError {
                    var: "SOCKMETER_INTERVAL",
                    value: shown(s),
                    problem: "expected milliseconds from 10 to 3600000".into(),
                    fallback: "using 1000",
                }),
            }
        }
        if let Some(s) = text("SOCKMETER_ATTRIBUTE", get("SOCKMETER_ATTRIBUTE"), &mut errs) {
            // One error for the variable however many globs are malformed: the first, shown
            // cut short, and how many more.
            let mut bad: Option<(String, usize)> = None;
            for g in s.split(':').filter(|g| !g.is_empty()) {
                match crate::glob::check(g) {
                    Ok(()) => c.attribute.push(g.to_string()),
                    Err(problem) => match &mut bad {
                        Some((_, more)) => *more += 1,
                        None => bad = Some((format!("`{}`: {problem}", shown(g.to_string())), 0)),
                    },
                }
            }
            if let Some((first, more)) = bad {
                errs.push(ConfigError {
                    var: "SOCKMETER_ATTRIBUTE",
                    value: shown(s.clone()),
                    problem: match more {
                        0 => first,
                        n => format!("{first} (and {n} more malformed globs)"),
                    },
                    fallback: "malformed globs are ignored",
                });
            }
        }
        (c, errs)
    }

    /// The report path for process `pid` (`%p` replaced by the pid).
    pub fn report_path(&self, pid: u32) -> Option<String> {
        self.report.as_ref().map(|r| r.replace("%p", &pid.to_string()))
    }

    /// Writes process `pid`'s report to `SOCKMETER_REPORT`, if that is set, as one JSON line:
    /// replacing the file when the pattern gives each process a file of its own (`%p`),
    /// appending otherwise. Returns the path and how the write went (None: no report wanted;
    /// `process` is then never called: a shipper with no report file to write used to build a
    /// report of every socket at each host's end).
    ///
    /// The file is opened with [`crate::safe_open`]: created with mode 0600, and never through
    /// a symbolic link owned by another user than this process's or root (a link in a shared
    /// directory must not make a root process overwrite a file of root's); `/dev/stderr`
    /// works.
    pub fn write_report(
        &self,
        pid: u32,
        process: impl FnOnce() -> crate::ProcessReport,
    ) -> Option<(String, std::io::Result<()>)> {
        use std::io::Write;
        let path = self.report_path(pid)?;
        let process = process();
        let per_process = self.report.as_deref().is_some_and(|r| r.contains("%p"));
        let report = crate::Report::new(Vec::new(), None, self.unix_in_totals, vec![process]);
        let mut line = serde_json::to_vec(&report).unwrap_or_default();
        line.push(b'\n');
        let how = if per_process { libc::O_TRUNC } else { libc::O_APPEND };
        let result = crate::safe_open::open(std::path::Path::new(&path), libc::O_WRONLY | libc::O_CREAT | how)
            .and_then(|mut o| o.file.write_all(&line));
        Some((path, result))
    }
}

/// The name of the reporter's second door for the socket at `socket` (an abstract Unix socket
/// name, without its leading NUL): a metered process that changed user, and can no longer
/// enter the reporter's private directory, connects there (the reporter admits only its own
/// processes). Derived from the path, so both sides know it.
pub fn door_name(socket: &str) -> Vec<u8> {
    let mut name = b"sockmeter-door:".to_vec();
    name.extend_from_slice(socket.as_bytes());
    name.truncate(107);
    name
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn read(pairs: &[(&str, &str)]) -> (Config, Vec<ConfigError>) {
        let m: HashMap<String, OsString> = pairs.iter().map(|(k, v)| (k.to_string(), OsString::from(v))).collect();
        Config::from_lookup(|k| m.get(k).cloned())
    }

    #[test]
    fn defaults_and_values() {
        assert_eq!(read(&[]).0, Config::default());
        let (c, e) = read(&[
            ("SOCKMETER_INTERVAL", "250"),
            ("SOCKMETER_ATTRIBUTE", "*.so::/opt/*"),
            ("SOCKMETER_UNIX", "1"),
        ]);
        assert!(e.is_empty());
        assert_eq!(c.interval_ms, 250);
        assert_eq!(c.attribute, vec!["*.so", "/opt/*"]);
        assert!(c.unix_in_totals);
    }

    #[test]
    fn malformed_values_fall_back_with_a_named_error() {
        let (c, e) = read(&[("SOCKMETER_INTERVAL", "soon"), ("SOCKMETER_DISABLE", "maybe")]);
        assert_eq!(c.interval_ms, DEFAULT_INTERVAL_MS);
        assert!(!c.disabled);
        assert_eq!(e.len(), 2);
        assert!(e[0].to_string().contains("SOCKMETER_DISABLE"));
        assert!(e[1].to_string().starts_with("SOCKMETER_INTERVAL=\"soon\""));
    }

    #[test]
    fn a_malformed_glob_is_named_and_the_others_kept() {
        let (c, e) = read(&[("SOCKMETER_ATTRIBUTE", "libcurl*:lib[z-a]:!*/gst/*")]);
        assert_eq!(c.attribute, ["libcurl*", "!*/gst/*"]);
        assert_eq!(
            e[0].to_string(),
            "SOCKMETER_ATTRIBUTE=\"libcurl*:lib[z-a]:!*/gst/*\": `lib[z-a]`: the range `z-a` is backwards (it matches nothing); malformed globs are ignored"
        );
        let many = format!("[{}:", "x".repeat(1000)).repeat(500);
        let (c, e) = read(&[("SOCKMETER_ATTRIBUTE", &many)]);
        assert!(c.attribute.is_empty());
        assert_eq!(e.len(), 1, "one error for the variable");
        assert!(
            e[0].problem.ends_with("(and 499 more malformed globs)"),
            "{}",
            e[0].problem
        );
        assert!(e[0].to_string().len() < 400, "bounded: {}", e[0]);
    }

    #[test]
    fn a_huge_value_is_shown_cut_short() {
        let huge = "9".repeat(100_000);
        let (c, e) = read(&[
            ("SOCKMETER_INTERVAL", &huge),
            ("SOCKMETER_UNIX", "\u{e9}".repeat(100).as_str()),
        ]);
        assert_eq!(c.interval_ms, DEFAULT_INTERVAL_MS);
        assert_eq!(e.len(), 2);
        let line = e[1].to_string();
        assert!(
            line.starts_with(&format!("SOCKMETER_INTERVAL=\"{}... (100000 bytes)\"", "9".repeat(64))),
            "{line}"
        );
        assert!(line.len() < 200, "{line}");
        assert_eq!(e[0].value, format!("{}... (200 bytes)", "\u{e9}".repeat(64)));
    }

    #[test]
    fn report_path_substitutes_pid() {
        let (c, _) = read(&[("SOCKMETER_REPORT", "/tmp/r-%p.json")]);
        assert_eq!(c.report_path(42).unwrap(), "/tmp/r-42.json");
    }

    #[test]
    fn report_files_are_private_and_replaced_or_appended() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("sockmeter-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let process = || crate::ProcessReport {
            pid: 7,
            ..Default::default()
        };
        let each = dir.join("r-%p.json").to_string_lossy().into_owned();
        let (c, _) = read(&[("SOCKMETER_REPORT", &each)]);
        for _ in 0..2 {
            let (path, r) = c.write_report(7, process).unwrap();
            r.unwrap();
            assert_eq!(path, dir.join("r-7.json").to_string_lossy());
        }
        let file = dir.join("r-7.json");
        assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
        let text = std::fs::read_to_string(&file).unwrap();
        assert_eq!(text.lines().count(), 1, "replaced: {text}");
        let back: crate::Report = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(back.processes[0].pid, 7);

        let shared = dir.join("all.json").to_string_lossy().into_owned();
        let (c, _) = read(&[("SOCKMETER_REPORT", &shared)]);
        c.write_report(7, process).unwrap().1.unwrap();
        c.write_report(8, process).unwrap().1.unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.join("all.json")).unwrap().lines().count(),
            2,
            "appended"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
