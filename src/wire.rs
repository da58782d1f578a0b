//! The wire protocol between a metered process and a reporter: versioned NDJSON.
//!
//! Each metered process opens one stream connection to the Unix socket named by
//! `SOCKMETER_SOCKET` and writes one JSON object per line. Every line carries `"v"` (the
//! protocol version, [`WIRE_VERSION`]) and `"type"`. The first line is a `hello`; then come
//! `socket` (a socket appeared or its metadata changed), `delta` (counters that grew since the
//! last delta), `closed`, `module` (how a module came in, once per module before the first
//! socket charged to it), `notice` and, last, `bye`. A process that execs sends `bye` with
//! reason `exec`, and its new image connects again with a new `hello`. docs/wire.md is the
//! reference; [`Message`] is the source of truth.
//!
//! Counters on the wire are *differences*: a reporter adds them up. The sender takes what the
//! hooks counted with an atomic swap and ships exactly that, so nothing is lost at a boundary.

use serde::{Deserialize, Serialize};

use crate::model::{Family, Load, Proto, Role};

/// The protocol version this crate speaks.
pub const WIRE_VERSION: u32 = 1;
/// How every line starts: the version field (a test ties it to [`WIRE_VERSION`]).
const LINE_HEAD: &[u8] = b"{\"v\":1,";
/// The longest line a reader accepts.
pub const MAX_LINE: usize = 4 << 20;

/// One line on the wire.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// Protocol version.
    pub v: u32,
    /// The message.
    #[serde(flatten)]
    pub msg: Message,
}

/// The messages a metered process sends.
// `socket` is the largest variant and the most frequent one: a pass's batch is mostly `socket`
// lines, so boxing it would add an allocation per line without making a batch smaller.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Message {
    /// First message of a connection: who is talking.
    Hello(Hello),
    /// A socket appeared, or its metadata changed (full metadata each time).
    Socket(SocketInfo),
    /// Counters that grew since the previous delta.
    Delta(Delta),
    /// A socket's last fd was closed (its final delta came before).
    Closed(Closed),
    /// How a module came into the process, and when (once per module and connection, before
    /// the first `socket` charged to it).
    Module(ModuleInfo),
    /// Something the user should know (a plugin that could not be metered, a full table...).
    Notice(Notice),
    /// Last message: the process exits or execs.
    Bye(Bye),
}

/// How the process came to be metered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// Loaded at program start (including after an exec).
    Start,
    /// A forked child of a metered process.
    Fork,
}

/// `hello`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// Process id.
    pub pid: u32,
    /// Parent process id.
    pub ppid: u32,
    /// Absolute path of the executable.
    pub exe: String,
    /// Command line.
    pub argv: Vec<String>,
    /// When this process image started (its load, or its fork), ms since the epoch.
    pub started_at: u64,
    /// Start or fork.
    pub origin: Origin,
    /// The shim's version.
    pub shim_version: String,
    /// How often deltas are sent, in ms.
    pub interval_ms: u64,
    /// The image's identity, drawn at load (a forked child keeps its parent's: its pid tells
    /// it apart). A reconnection of the same image repeats it; two images of one pid that start
    /// in the same millisecond (an exec chain) differ. 0 from older shims.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub image: u64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// `socket`. (`Default`: an unconnected socket of no known family, nothing else known.)
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SocketInfo {
    /// Socket id, unique within the process image.
    pub id: u64,
    /// The fd it was first seen on.
    pub fd: i32,
    /// Address family.
    pub family: Family,
    /// Protocol.
    pub proto: Proto,
    /// Role.
    pub role: Role,
    /// Local address, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local: Option<String>,
    /// Peer address, when connected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer: Option<String>,
    /// The name the process looked up to get the peer's address (its resolver calls:
    /// `getaddrinfo`, `gethostbyname`...), when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_name: Option<String>,
    /// The module charged for the socket (absolute path).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub module: Option<String>,
    /// The object that made the call (often a system library such as libcurl).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
    /// The label pushed by the host when the socket was opened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Open time, ms since the epoch.
    pub opened_at: u64,
    /// Existed before this process (inherited across fork or exec).
    #[serde(default)]
    pub inherited: bool,
    /// Recognised on first use rather than seen being created.
    #[serde(default)]
    pub adopted: bool,
    /// Made with the BSD calls or with CoreFoundation's CFSocket (absent from an older shim:
    /// `bsd`).
    #[serde(default)]
    pub origin: crate::model::SocketOrigin,
    /// Set when the socket had already closed when it was first announced (it opened and
    /// closed between two passes, as most short connections do): this one line is its whole
    /// life, `counts` holds everything it counted, and no `delta` or `closed` follows for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_at: Option<u64>,
    /// With `closed_at`: the socket's counts, as a `delta` would carry them (absent when zero).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counts: Option<SocketDelta>,
    /// The kernel witness (TCP): the data bytes the kernel says the program wrote to this
    /// socket since sockmeter began counting it, by any path, as of the last reading (its
    /// close, or the process's exit or exec). Absent until read. Not a difference: the latest
    /// value replaces the one before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel_tx_bytes: Option<u64>,
    /// The same for the data bytes the program read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel_rx_bytes: Option<u64>,
    /// The kernel's count of written bytes when this process began counting the socket (the
    /// fork, for a socket a forked child inherited; its first use, for one recognised then): the
    /// witness is counted from there. Absent when zero.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub kernel_base_tx_bytes: u64,
    /// The same for the bytes read.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub kernel_base_rx_bytes: u64,
    /// The socket was open in another process too (across a fork, in the parent or the
    /// child): its witness counts every holder's bytes, and the reporter weighs it against the
    /// other holders' (`crate::holders`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub shared: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// Counter differences of one socket.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SocketDelta {
    /// Socket id.
    pub id: u64,
    /// Bytes sent.
    #[serde(default)]
    pub tx_bytes: u64,
    /// Bytes received.
    #[serde(default)]
    pub rx_bytes: u64,
    /// Send calls.
    #[serde(default)]
    pub tx_calls: u64,
    /// Receive calls.
    #[serde(default)]
    pub rx_calls: u64,
    /// Failed calls.
    #[serde(default)]
    pub errors: u64,
    /// Connections that joined this socket line since the last delta: only the overflow record
    /// (sockets opened while the registry was full share it) has any.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub connections: u64,
    /// Per-peer differences (datagram sockets).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub peers: Vec<PeerDelta>,
}

/// Counter differences of one peer of a datagram socket.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerDelta {
    /// The peer's address.
    pub peer: String,
    /// Bytes sent to it.
    #[serde(default)]
    pub tx_bytes: u64,
    /// Bytes received from it.
    #[serde(default)]
    pub rx_bytes: u64,
    /// Calls sending to it.
    #[serde(default)]
    pub tx_calls: u64,
    /// Calls receiving from it.
    #[serde(default)]
    pub rx_calls: u64,
}

/// `delta`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delta {
    /// When the counters were read, ms since the epoch.
    pub at: u64,
    /// Sockets whose counters grew.
    pub sockets: Vec<SocketDelta>,
}

/// `closed`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Closed {
    /// Socket id.
    pub id: u64,
    /// Close time, ms since the epoch.
    pub closed_at: u64,
}

/// The `notice` kind a process sends, once, when it creates an io_uring. A reader does not
/// list it among the notices: the report says `uses_io_uring` instead.
pub const IO_URING_NOTICE: &str = "io_uring";

/// The `notice` kind a process sends, once per glob, when an `--attribute` /
/// `SOCKMETER_ATTRIBUTE` glob (the message, as given) first matches an object it looks at. A
/// reader lists the globs as the report's `attribute_matched`, not as notices; the reporter
/// names the globs that matched nothing in the whole run.
pub const ATTRIBUTE_NOTICE: &str = "attribute";

/// `module`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModuleInfo {
    /// The module's absolute path, as `socket` lines name it.
    pub module: String,
    /// How it came in.
    pub load: Load,
    /// When it was loaded, ms since the epoch (the image's start for objects loaded at start;
    /// absent when not known).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loaded_at: Option<u64>,
}

/// `notice`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    /// A stable key: `deepbind`, `table_full`, `config`, `dropped_events`, ...
    pub kind: String,
    /// One human sentence.
    pub message: String,
}

/// Why a process said goodbye.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ByeReason {
    /// exit(), return from main, or _exit().
    Exit,
    /// The image is replaced by exec; a new hello follows on a new connection.
    Exec,
}

/// `bye`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bye {
    /// When, ms since the epoch.
    pub at: u64,
    /// Exit or exec.
    pub reason: ByeReason,
    /// Change hints the hooks could not queue. Always 0 from this shim (hooks signal changes
    /// through a counter, which cannot overflow); kept so that readers of older streams parse.
    #[serde(default)]
    pub dropped_events: u64,
    /// How the process ended, when the process itself knew (`_exit(code)`, a fatal signal its
    /// reporting thread saw); absent otherwise (the reporter may learn it elsewhere).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ExitStatus>,
}

/// How a process ended: its exit code, or the signal that killed it (exactly one is set).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitStatus {
    /// The exit code (0-255), for a process that exited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// The signal number, for a process a signal killed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
}

impl ExitStatus {
    /// From a `wait` status word; None for a stop or a continue (not an end).
    pub fn from_wait(status: i32) -> Option<ExitStatus> {
        // The encoding every Linux and BSD libc uses: low 7 bits the signal (0: exited, 0x7f:
        // stopped), next 8 bits the exit code; 0xffff: continued.
        let sig = status & 0x7f;
        if status == 0xffff || sig == 0x7f {
            None
        } else if sig == 0 {
            Some(ExitStatus {
                exit_code: Some((status >> 8) & 0xff),
                signal: None,
            })
        } else {
            Some(ExitStatus {
                exit_code: None,
                signal: Some(sig),
            })
        }
    }

    /// The code a shell reports: the exit code, or 128 + the signal.
    pub fn shell_code(&self) -> Option<i32> {
        self.exit_code.or(self.signal.map(|s| 128 + s))
    }
}

/// The endings file: beside the reporter's socket (`<SOCKMETER_SOCKET>.endings`), created by
/// the reporter, appended to by metered parents when `wait` gives them a child's ending (a
/// shell that never touches a socket ships nothing, yet it is the only one that sees how its
/// children ended). One line per ending, `<pid> <ms since the epoch> <wait status word>`,
/// written with one `write` (atomic with `O_APPEND`).
pub fn endings_path(socket: &str) -> String {
    format!("{socket}.endings")
}

/// The notes file: beside the reporter's socket (`<SOCKMETER_SOCKET>.notes`), created by the
/// reporter, appended to by metered processes about to exec a program the shim cannot be
/// preloaded into (a static or setuid program: `crate::preload`), which therefore never
/// reports itself. One line per exec, `<pid> <kind> <sentence>`, written with one `write`.
pub fn notes_path(socket: &str) -> String {
    format!("{socket}{NOTES_SUFFIX}")
}

/// What [`notes_path`] appends to the socket's path.
pub const NOTES_SUFFIX: &str = ".notes";

/// Parses the notes file: (pid, kind, sentence) for each well-formed line.
pub fn parse_notes(text: &str) -> Vec<(u32, String, String)> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.splitn(3, ' ');
            let pid = f.next()?.parse().ok()?;
            let kind = f.next()?;
            let sentence = f.next()?;
            (!kind.is_empty() && !sentence.is_empty()).then(|| (pid, kind.to_string(), sentence.to_string()))
        })
        .collect()
}

/// Formats one line of the endings file into `buf` without allocating (a `wait` may run in a
/// signal handler); returns its length.
pub fn ending_line(buf: &mut [u8; 64], pid: u32, at_ms: u64, status: i32) -> usize {
    fn put(buf: &mut [u8; 64], at: &mut usize, mut v: u64) {
        let mut digits = [0u8; 20];
        let mut n = 0;
        loop {
            digits[n] = b'0' + (v % 10) as u8;
            n += 1;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        for d in digits[..n].iter().rev() {
            buf[*at] = *d;
            *at += 1;
        }
    }
    let mut at = 0;
    put(buf, &mut at, u64::from(pid));
    buf[at] = b' ';
    at += 1;
    put(buf, &mut at, at_ms);
    buf[at] = b' ';
    at += 1;
    put(buf, &mut at, u64::from(status as u32));
    buf[at] = b'\n';
    at + 1
}

/// Parses the endings file: (pid, when, how) for each well-formed line that is an ending (a
/// stop or continue is not); anything else is skipped.
pub fn parse_endings(text: &str) -> Vec<(u32, u64, ExitStatus)> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split(' ');
            let pid = f.next()?.parse().ok()?;
            let at = f.next()?.parse().ok()?;
            let word: u32 = f.next()?.parse().ok()?;
            if f.next().is_some() {
                return None;
            }
            Some((pid, at, ExitStatus::from_wait(word as i32)?))
        })
        .collect()
}

/// Why a line could not be read.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// Not JSON, or not a message we know.
    #[error("malformed message: {0}")]
    Malformed(#[from] serde_json::Error),
    /// A protocol version this reader does not speak.
    #[error("unsupported protocol version {0} (this reporter speaks {WIRE_VERSION})")]
    Version(u32),
    /// Longer than [`MAX_LINE`].
    #[error("message longer than {MAX_LINE} bytes")]
    TooLong,
}

/// Serialises a message as one line (with the trailing newline).
pub fn encode(msg: &Message) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    encode_into(msg, &mut out);
    out
}

/// Appends a message as one line (with the trailing newline) to `out`: `{"v":1,` followed by
/// the message's own object without its opening brace (the same text as serialising an
/// [`Envelope`], without copying the message into one).
pub fn encode_into(msg: &Message, out: &mut Vec<u8>) {
    if fast::encode_into(msg, out) {
        return;
    }
    encode_with_serde(msg, out);
}

/// [`encode_into`] through serde_json alone (the messages `fast.rs` does not write, and the
/// oracle its tests compare with).
fn encode_with_serde(msg: &Message, out: &mut Vec<u8>) {
    let start = out.len();
    if serde_json::to_writer(&mut *out, msg).is_err() || out.get(start) != Some(&b'{') {
        out.truncate(start);
        return;
    }
    out.splice(start..start + 1, LINE_HEAD.iter().copied());
    out.push(b'\n');
}

/// The two fields every line has; everything else is skipped at this stage.
#[derive(Deserialize)]
struct Head<'a> {
    v: u32,
    #[serde(rename = "type", borrow)]
    kind: std::borrow::Cow<'a, str>,
}

/// The type of a line that begins as [`encode_into`] begins every line (`{"v":1,"type":"socket",`),
/// read without parsing the line: the first of the two reads below scanned the whole line, and
/// was two fifths of the reporter's cost of decoding it. Any other beginning (another writer's
/// field order, another version) takes the full read.
fn written_head(line: &[u8]) -> Option<&str> {
    let rest = line.strip_prefix(LINE_HEAD)?.strip_prefix(b"\"type\":\"")?;
    let end = rest.iter().position(|&c| c == b'"')?;
    let kind = &rest[..end];
    if kind.is_empty() || !kind.iter().all(|&c| c.is_ascii_lowercase() || c == b'_') {
        return None;
    }
    std::str::from_utf8(kind).ok()
}

/// Parses one line (without or with its newline).
///
/// The line is read twice: once for its version and type, then straight into that type's
/// struct (whose fields serde picks out by name, skipping `v` and `type`). That avoids the
/// buffering of serde's internally tagged enums, which made decoding the reporter's main
/// cost under a stream of short-lived sockets.
pub fn decode(line: &[u8]) -> Result<Message, WireError> {
    if line.len() > MAX_LINE {
        return Err(WireError::TooLong);
    }
    let kind = match written_head(line) {
        Some(kind) => std::borrow::Cow::Borrowed(kind),
        None => {
            let head: Head = serde_json::from_slice(line)?;
            if head.v != WIRE_VERSION {
                return Err(WireError::Version(head.v));
            }
            head.kind
        }
    };
    fn body<'a, T: Deserialize<'a>>(line: &'a [u8]) -> Result<T, WireError> {
        Ok(serde_json::from_slice(line)?)
    }
    Ok(match kind.as_ref() {
        "hello" => Message::Hello(body(line)?),
        "socket" => Message::Socket(body(line)?),
        "delta" => Message::Delta(body(line)?),
        "closed" => Message::Closed(body(line)?),
        "module" => Message::Module(body(line)?),
        "notice" => Message::Notice(body(line)?),
        "bye" => Message::Bye(body(line)?),
        other => {
            return Err(WireError::Malformed(
                <serde_json::Error as serde::de::Error>::unknown_variant(
                    other,
                    &["hello", "socket", "delta", "closed", "module", "notice", "bye"],
                ),
            ))
        }
    })
}

mod fast;

#[cfg(test)]
mod props;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_in_another_field_order_or_version_takes_the_full_read() {
        let closed = Message::Closed(Closed { id: 7, closed_at: 9 });
        assert_eq!(written_head(&encode(&closed)), Some("closed"));
        let reordered = br#"{"type":"closed","id":7,"v":1,"closed_at":9}"#;
        assert_eq!(written_head(reordered), None);
        assert_eq!(decode(reordered).unwrap(), closed);
        assert!(matches!(
            decode(br#"{"v":2,"type":"closed","id":7,"closed_at":9}"#),
            Err(WireError::Version(2))
        ));
        assert!(matches!(
            decode(br#"{"v":1,"type":"Closed","id":7,"closed_at":9}"#),
            Err(WireError::Malformed(_))
        ));
        assert!(
            decode(br#"{"v":1,"type":"closed","id":7}"#).is_err(),
            "a missing field is still an error"
        );
    }

    #[test]
    fn endings_lines_round_trip_and_junk_is_skipped() {
        let mut buf = [0u8; 64];
        let mut text = String::new();
        for (pid, at, word) in [
            (4_194_303u32, u64::MAX, 0x0300),
            (7, 1, 9),
            (8, 2, 0x137f),
            (9, 3, 0xffff),
        ] {
            let n = ending_line(&mut buf, pid, at, word);
            text.push_str(std::str::from_utf8(&buf[..n]).unwrap());
        }
        text.push_str("garbage\n1 2\n1 2 3 4\n");
        let e = parse_endings(&text);
        assert_eq!(e.len(), 2, "a stop and a continue are not endings: {e:?}");
        assert_eq!(
            e[0],
            (
                4_194_303,
                u64::MAX,
                ExitStatus {
                    exit_code: Some(3),
                    signal: None
                }
            )
        );
        assert_eq!(
            e[1],
            (
                7,
                1,
                ExitStatus {
                    exit_code: None,
                    signal: Some(9)
                }
            )
        );
        assert_eq!(ExitStatus::from_wait(0x0200).and_then(|s| s.shell_code()), Some(2));
        assert_eq!(ExitStatus::from_wait(2).and_then(|s| s.shell_code()), Some(130));
    }

    #[test]
    fn notes_lines() {
        let text = "12 static /tmp/a b is statically linked: x\nbad\n13 privileged\nx y z\n14 privileged /usr/bin/su is setuid: y\n";
        assert_eq!(
            parse_notes(text),
            [
                (12, "static".to_string(), "/tmp/a b is statically linked: x".to_string()),
                (14, "privileged".to_string(), "/usr/bin/su is setuid: y".to_string())
            ]
        );
        assert_eq!(
            notes_path("/tmp/sockmeter.x/sockmeter.sock"),
            "/tmp/sockmeter.x/sockmeter.sock.notes"
        );
    }

    #[test]
    fn round_trip() {
        let msgs = vec![
            Message::Hello(Hello {
                pid: 1,
                ppid: 0,
                exe: "/bin/x".into(),
                argv: vec!["x".into()],
                started_at: 3,
                origin: Origin::Fork,
                shim_version: "0.1.0".into(),
                interval_ms: 1000,
                image: 0,
            }),
            Message::Delta(Delta {
                at: 9,
                sockets: vec![SocketDelta {
                    id: 4,
                    tx_bytes: 5,
                    ..Default::default()
                }],
            }),
            Message::Module(ModuleInfo {
                module: "/usr/lib/x86_64-linux-gnu/gstreamer-1.0/libgstsoup.so".into(),
                load: Load::Dlopen,
                loaded_at: Some(8),
            }),
            Message::Bye(Bye {
                at: 10,
                reason: ByeReason::Exec,
                dropped_events: 0,
                status: None,
            }),
        ];
        for m in msgs {
            let line = encode(&m);
            assert_eq!(*line.last().unwrap(), b'\n');
            assert_eq!(decode(&line).unwrap(), m);
        }
    }

    #[test]
    fn encoding_is_the_envelope_and_any_field_order_decodes() {
        assert_eq!(LINE_HEAD, format!("{{\"v\":{WIRE_VERSION},").as_bytes());
        let m = Message::Closed(Closed { id: 7, closed_at: 8 });
        let env = Envelope {
            v: WIRE_VERSION,
            msg: m.clone(),
        };
        let mut want = serde_json::to_vec(&env).unwrap();
        want.push(b'\n');
        assert_eq!(encode(&m), want);
        let mut two = Vec::new();
        encode_into(&m, &mut two);
        encode_into(&m, &mut two);
        assert_eq!(two, [want.clone(), want].concat());
        let reordered = br#"{"closed_at":8,"type":"closed","id":7,"extra":[1,{"a":2}],"v":1}"#;
        assert_eq!(decode(reordered).unwrap(), m);
        let escaped = br#"{"v":1,"type":"clos\u0065d","id":7,"closed_at":8}"#;
        assert_eq!(decode(escaped).unwrap(), m);
    }

    #[test]
    fn hostile_input_is_an_error_not_a_panic() {
        assert!(matches!(
            decode(b"{\"v\":2,\"type\":\"bye\"}"),
            Err(WireError::Version(2))
        ));
        assert!(decode(b"not json").is_err());
        assert!(decode(b"{\"v\":1,\"type\":\"nope\"}").is_err());
        assert!(decode(b"{\"v\":1,\"type\":\"delta\",\"at\":1,\"sockets\":[{\"id\":-1}]}").is_err());
        assert!(matches!(decode(&vec![b' '; MAX_LINE + 1]), Err(WireError::TooLong)));
    }
}
