//! The event stream (`--json-stream FILE|-`): everything a reporter took in, as NDJSON, for
//! other tools and for `sockmeter replay`.
//!
//! Each line of a metered process is written as the wire line it was (re-encoded, so the field
//! order is the wire's own) with the reporter's connection number added, `"conn":N`, and on
//! every line but a `hello` (which names it already) the process's `"pid":P`. A stream line of
//! a metered process is therefore itself a valid wire line, and a reader of the wire reads it.
//! The reporter adds lines of its own: a header (`stream`), where each connection ended
//! (`eof`), lines it skipped (`skipped`, `torn`), how processes ended (`ending`), and its end
//! (`finish`). docs/wire.md describes the format; [`STREAM_VERSION`] versions it.
//!
//! Only what the reporter *accepted* is written: a message refused whole appears as `skipped`
//! (with why), never as itself, so replaying a stream rebuilds exactly the accounts the
//! reporter had ([`read`]).

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use sockmeter::wire::{self, ExitStatus, Message, MAX_LINE};

use crate::conn::Conn;
use crate::endings::Endings;

/// The version of the stream's own lines (the `stream` header says it).
pub const STREAM_VERSION: u32 = 1;
/// The wire types, whose lines are a connection's own.
const WIRE_TYPES: [&str; 7] = ["hello", "socket", "delta", "closed", "module", "notice", "bye"];

/// A line the reporter adds to the stream.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// The first line of a reporter's stream (a stream a `listen` continues has several).
    Stream {
        /// [`STREAM_VERSION`].
        stream: u32,
        /// `run` or `listen`.
        reporter: String,
        /// The command `run` ran (empty for `listen`).
        #[serde(default)]
        command: Vec<String>,
        /// Whether Unix-domain traffic counts in the totals.
        #[serde(default)]
        unix: bool,
        /// When the reporter started, ms since the epoch.
        at: u64,
    },
    /// Connection `conn` ended (its process's stream is complete).
    Eof {
        /// The connection.
        conn: u64,
        /// Its process, once it said hello.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pid: Option<u32>,
        /// The reporter had asked it to reconnect later (a `listen` stopping): the process
        /// runs on.
        #[serde(default, skip_serializing_if = "is_false")]
        released: bool,
    },
    /// A line of connection `conn` was skipped, for `error`.
    Skipped {
        /// The connection.
        conn: u64,
        /// Its process, once it said hello.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pid: Option<u32>,
        /// Why.
        error: String,
    },
    /// Connection `conn` ended in the middle of a line.
    Torn {
        /// The connection.
        conn: u64,
        /// Its process, once it said hello.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pid: Option<u32>,
    },
    /// How process `pid` ended, learnt outside its own stream (reaped, or its parent's wait).
    Ending {
        /// The process.
        pid: u32,
        /// When, ms since the epoch.
        at: u64,
        /// How.
        status: ExitStatus,
    },
    /// The reporter wrote its report: the run's status and the report's own notices.
    Finish {
        /// When, ms since the epoch.
        at: u64,
        /// The command's exit status (`run`).
        #[serde(default)]
        exit_status: Option<i32>,
        /// The report's notices.
        #[serde(default)]
        notices: Vec<String>,
    },
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// Appends `ev` as one stream line.
pub fn event_line(out: &mut Vec<u8>, ev: &Event) {
    let Ok(json) = serde_json::to_vec(ev) else { return };
    out.extend_from_slice(b"{\"v\":1,");
    out.extend_from_slice(&json[1..]);
    out.push(b'\n');
}

/// Appends a metered process's message, taken on connection `conn`, as one stream line.
pub fn message_line(out: &mut Vec<u8>, conn: u64, pid: Option<u32>, msg: &Message) {
    let start = out.len();
    wire::encode_into(msg, out);
    if out.len() == start {
        return;
    }
    let mut tag = format!("\"conn\":{conn},");
    if let (Some(p), false) = (pid, matches!(msg, Message::Hello(_))) {
        tag.push_str(&format!("\"pid\":{p},"));
    }
    // After `{"v":1,`.
    let at = start + 7;
    out.splice(at..at, tag.bytes());
}

/// Where the stream goes.
pub struct StreamOut {
    out: Box<dyn Write + Send>,
    what: String,
    broken: bool,
}

impl StreamOut {
    /// Opens `path` (`-`: stdout): a new file gets mode 0600, and a symbolic link owned by
    /// another user is not followed. `append` keeps what the file holds (a `listen` that
    /// continues its stream); otherwise it is replaced.
    pub fn create(path: &Path, append: bool) -> Result<StreamOut> {
        if path.as_os_str() == "-" {
            return Ok(StreamOut {
                out: Box::new(std::io::stdout()),
                what: "stdout".into(),
                broken: false,
            });
        }
        if path.as_os_str().is_empty() {
            bail!("--json-stream needs a file name, or - for stdout");
        }
        let how = if append { libc::O_APPEND } else { libc::O_TRUNC };
        let file = sockmeter::safe_open::open(path, libc::O_WRONLY | libc::O_CREAT | how)
            .with_context(|| format!("cannot write the event stream to {}", path.display()))?
            .file;
        Ok(StreamOut {
            out: Box::new(std::io::BufWriter::with_capacity(1 << 16, file)),
            what: path.display().to_string(),
            broken: false,
        })
    }

    /// Writes lines and flushes them (a reader may follow the file); the first failure is said
    /// once and the stream stops (the report is not affected).
    pub fn write(&mut self, lines: &[u8]) {
        if self.broken || lines.is_empty() {
            return;
        }
        if let Err(e) = self.out.write_all(lines).and_then(|()| self.out.flush()) {
            self.broken = true;
            say!(
                "sockmeter: warning: cannot write the event stream to {}: {e}; it stops here",
                self.what
            );
        }
    }

    /// Writes one of the reporter's own lines.
    pub fn event(&mut self, ev: &Event) {
        let mut line = Vec::new();
        event_line(&mut line, ev);
        self.write(&line);
    }
}

/// What a stream held: the connections (with their accounts rebuilt), how processes ended,
/// and what the reporter said of itself.
#[derive(Debug, Default)]
pub struct Replayed {
    /// Every connection, in the order first seen.
    pub conns: Vec<Conn>,
    /// How processes ended.
    pub endings: Endings,
    /// The command (the first header's).
    pub command: Vec<String>,
    /// Whether Unix-domain traffic counts in the totals (the last header's).
    pub unix: bool,
    /// The command's status, from the last `finish`.
    pub exit_status: Option<i32>,
    /// The report's notices, from the last `finish`.
    pub notices: Vec<String>,
    /// Headers seen (a `listen` that continued a stream adds one each time).
    pub segments: u32,
    /// The highest connection number seen.
    pub max_conn: u64,
    /// Whether the last reporter wrote its `finish`.
    pub finished: bool,
    /// Lines that could not be read, said once with a count.
    pub warnings: Vec<String>,
}

#[derive(Deserialize)]
struct Head<'a> {
    v: u32,
    #[serde(rename = "type", borrow)]
    kind: std::borrow::Cow<'a, str>,
    #[serde(default)]
    conn: Option<u64>,
}

/// Reads a stream. Lines that cannot be read (not JSON, another version, an unknown type, a
/// connection's line without `conn`, longer than a wire line may be) are skipped and counted;
/// the rest is read as the reporter read it. A connection still open when its reporter's
/// segment ends (a later header follows: that reporter is gone) is ended there.
pub fn read(mut input: impl BufRead) -> Result<Replayed> {
    let mut r = Replayed::default();
    let mut index: HashMap<(u32, u64), usize> = HashMap::new();
    let mut bad = 0u64;
    let mut first_bad: Option<String> = None;
    let mut line = Vec::new();
    let mut number = 0u64;
    loop {
        line.clear();
        let n = std::io::Read::take(&mut input, MAX_LINE as u64 + 4096)
            .read_until(b'\n', &mut line)
            .context("cannot read the event stream")?;
        if n == 0 {
            break;
        }
        number += 1;
        if line.last() != Some(&b'\n') && n as u64 == MAX_LINE as u64 + 4096 {
            // Too long: skip to the end of the line.
            let mut rest = Vec::new();
            input
                .read_until(b'\n', &mut rest)
                .context("cannot read the event stream")?;
            bad += 1;
            first_bad.get_or_insert_with(|| format!("line {number}: longer than a wire line"));
            continue;
        }
        let text = line.strip_suffix(b"\n").unwrap_or(&line);
        if text.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let mut skip = |why: String| {
            bad += 1;
            first_bad.get_or_insert_with(|| format!("line {number}: {why}"));
        };
        let head: Head = match serde_json::from_slice(text) {
            Ok(h) => h,
            Err(e) => {
                skip(e.to_string());
                continue;
            }
        };
        if head.v != wire::WIRE_VERSION {
            skip(format!("version {}", head.v));
            continue;
        }
        let kind = head.kind.to_string();
        if WIRE_TYPES.contains(&kind.as_str()) {
            let Some(conn) = head.conn else {
                skip(format!("a {kind} line without `conn`"));
                continue;
            };
            let mut bytes = text.to_vec();
            bytes.push(b'\n');
            let w = conn_for(&mut r, &mut index, conn).feed(&bytes);
            r.warnings.extend(w);
            continue;
        }
        let ev: Event = match serde_json::from_slice(text) {
            Ok(ev) => ev,
            Err(e) => {
                skip(e.to_string());
                continue;
            }
        };
        match ev {
            Event::Stream {
                stream, command, unix, ..
            } => {
                if stream > STREAM_VERSION {
                    bail!("the event stream is version {stream}; this sockmeter reads version {STREAM_VERSION}");
                }
                // The previous reporter is gone: what it left open is ended.
                let seg = r.segments;
                for (&(s, _), &i) in &index {
                    if s == seg {
                        r.warnings.extend(r.conns[i].end_of_stream());
                    }
                }
                if r.segments == 0 {
                    r.command = command;
                }
                r.unix = unix;
                r.segments += 1;
                r.finished = false;
            }
            Event::Eof { conn, released, .. } => {
                let c = conn_for(&mut r, &mut index, conn);
                if released {
                    c.release();
                }
                let w = c.end_of_stream();
                r.warnings.extend(w);
            }
            Event::Skipped { conn, error, .. } => {
                let w = conn_for(&mut r, &mut index, conn).replay_skipped(&error);
                r.warnings.extend(w);
            }
            Event::Torn { conn, .. } => conn_for(&mut r, &mut index, conn).replay_torn(),
            Event::Ending { pid, at, status } => r.endings.add(pid, at, status),
            Event::Finish {
                exit_status, notices, ..
            } => {
                r.exit_status = exit_status;
                r.notices = notices;
                r.finished = true;
            }
        }
    }
    if let Some(first) = first_bad {
        r.warnings.push(format!(
            "skipped {bad} unreadable line{} of the event stream (first: {first})",
            if bad == 1 { "" } else { "s" }
        ));
    }
    Ok(r)
}

fn conn_for<'a>(r: &'a mut Replayed, index: &mut HashMap<(u32, u64), usize>, conn: u64) -> &'a mut Conn {
    let key = (r.segments, conn);
    let i = *index.entry(key).or_insert_with(|| {
        r.conns.push(Conn::new(conn));
        r.conns.len() - 1
    });
    r.max_conn = r.max_conn.max(conn);
    &mut r.conns[i]
}

#[cfg(test)]
mod props;

#[cfg(test)]
mod tests {
    use super::*;
    use sockmeter::model::{Family, Proto, Role};
    use sockmeter::wire::{encode, Bye, ByeReason, Delta, Hello, Origin, SocketDelta, SocketInfo};

    fn hello(pid: u32) -> Message {
        Message::Hello(Hello {
            pid,
            ppid: 1,
            exe: "/bin/x".into(),
            argv: vec!["x".into()],
            started_at: 5,
            origin: Origin::Start,
            shim_version: "t".into(),
            interval_ms: 1000,
            image: 3,
        })
    }

    fn socket(id: u64) -> Message {
        Message::Socket(SocketInfo {
            id,
            fd: 4,
            family: Family::Inet,
            proto: Proto::Tcp,
            role: Role::Connected,
            peer: Some("10.0.0.1:443".into()),
            module: Some("/bin/x".into()),
            opened_at: 6,
            origin: Default::default(),
            ..Default::default()
        })
    }

    fn delta(id: u64, tx: u64) -> Message {
        Message::Delta(Delta {
            at: 7,
            sockets: vec![SocketDelta {
                id,
                tx_bytes: tx,
                ..Default::default()
            }],
        })
    }

    #[test]
    fn a_stream_line_is_a_wire_line_with_its_connection() {
        let mut out = Vec::new();
        message_line(&mut out, 3, Some(42), &delta(1, 9));
        message_line(&mut out, 3, Some(42), &hello(42));
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].starts_with("{\"v\":1,\"conn\":3,\"pid\":42,\"type\":\"delta\""),
            "{}",
            lines[0]
        );
        assert!(
            lines[1].starts_with("{\"v\":1,\"conn\":3,\"type\":\"hello\""),
            "{}",
            lines[1]
        );
        assert_eq!(wire::decode(lines[0].as_bytes()).unwrap(), delta(1, 9));
        assert_eq!(wire::decode(lines[1].as_bytes()).unwrap(), hello(42));
        let mut ev = Vec::new();
        event_line(
            &mut ev,
            &Event::Eof {
                conn: 3,
                pid: Some(42),
                released: false,
            },
        );
        assert_eq!(ev, b"{\"v\":1,\"type\":\"eof\",\"conn\":3,\"pid\":42}\n");
    }

    /// What a recording connection writes, read back, makes the same report: counts, the
    /// end, a skipped line and its notice; two segments (a `listen` that continued) with a
    /// connection the first left open, ended at the boundary.
    #[test]
    fn a_recorded_connection_replays_to_the_same_report() {
        let mut live = Conn::new(1);
        live.record();
        let mut input: Vec<u8> = [hello(42), socket(1), delta(1, 100)].iter().flat_map(encode).collect();
        input.extend_from_slice(b"garbage\n");
        input.extend(encode(&delta(1, 5)));
        input.extend(encode(&Message::Bye(Bye {
            at: 9,
            reason: ByeReason::Exit,
            dropped_events: 0,
            status: None,
        })));
        live.feed(&input);
        live.end_of_stream();
        let mut stream = Vec::new();
        event_line(
            &mut stream,
            &Event::Stream {
                stream: STREAM_VERSION,
                reporter: "listen".into(),
                command: vec![],
                unix: false,
                at: 1,
            },
        );
        stream.extend(live.take_recorded());
        let mut open = Conn::new(2);
        open.record();
        open.feed(
            &[hello(43), socket(1), delta(1, 7)]
                .iter()
                .flat_map(encode)
                .collect::<Vec<u8>>(),
        );
        stream.extend(open.take_recorded());
        event_line(
            &mut stream,
            &Event::Stream {
                stream: STREAM_VERSION,
                reporter: "listen".into(),
                command: vec![],
                unix: false,
                at: 2,
            },
        );
        event_line(
            &mut stream,
            &Event::Finish {
                at: 3,
                exit_status: None,
                notices: vec!["n".into()],
            },
        );
        let r = read(&stream[..]).unwrap();
        assert_eq!((r.segments, r.max_conn, r.finished), (2, 2, true));
        assert_eq!(r.notices, ["n"]);
        assert_eq!(r.conns.len(), 2);
        assert_eq!(r.conns[0].report(false, "running"), live.report(false, "running"));
        let second = r.conns[1].report(false, "running");
        assert_eq!((second.totals.tx_bytes, second.end.as_str()), (7, "lost"));
        assert_eq!(r.warnings.len(), 1, "the skipped line is said again: {:?}", r.warnings);
        assert!(r.warnings[0].contains("skipped a bad message"), "{:?}", r.warnings);
    }

    #[test]
    fn unreadable_lines_are_counted_and_the_rest_is_read() {
        let mut stream = b"not json\n{\"v\":2,\"type\":\"eof\",\"conn\":1}\n{\"v\":1,\"type\":\"hello\"}\n".to_vec();
        message_line(&mut stream, 1, None, &hello(5));
        message_line(&mut stream, 1, Some(5), &socket(1));
        message_line(&mut stream, 1, Some(5), &delta(1, 11));
        let r = read(&stream[..]).unwrap();
        assert_eq!(r.conns.len(), 1);
        assert_eq!(r.conns[0].report(false, "running").totals.tx_bytes, 11);
        assert_eq!(r.warnings.len(), 1, "{:?}", r.warnings);
        assert!(
            r.warnings[0].starts_with("skipped 3 unreadable lines of the event stream (first: line 1:"),
            "{}",
            r.warnings[0]
        );
        let future = b"{\"v\":1,\"type\":\"stream\",\"stream\":99,\"reporter\":\"run\",\"at\":1}\n";
        assert!(read(&future[..]).is_err());
    }
}
