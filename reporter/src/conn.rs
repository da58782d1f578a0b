//! One metered process image as the reporter sees it: the bytes of its connection, cut into
//! lines, decoded with [`sockmeter::wire::decode`] and fed to a [`ProcessAccount`].
//!
//! Nothing here touches a socket, so the same code can read a recorded NDJSON stream
//! (`replay`) as well as a live connection. Hostile input never costs counts: a line that
//! fails to decode, or one longer than [`MAX_LINE`], is skipped with one warning naming the
//! connection (later bad lines of the same connection are only counted, then summed up when
//! it ends), and everything read before and after it is kept.
//!
//! A reader may also *record* what it takes in ([`Conn::record`]): each message it accepted,
//! each line it skipped and its end, as lines of the event stream (`--json-stream`, see
//! [`crate::stream`]), which `replay` reads back through the same code.

use sockmeter::wire::{self, ByeReason, Message, MAX_LINE};
use sockmeter::{ProcessAccount, ProcessReport};

/// How a connection's process ended, as far as the reporter can tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Still talking (no `bye`, no end of stream).
    Open,
    /// Said `bye` (exit or exec); the stream may still be open (e.g. inherited by a child).
    SaidBye(ByeReason),
    /// The stream ended without a `bye`: the process was killed or the connection broke.
    Lost,
}

/// The reader of one connection.
#[derive(Debug)]
pub struct Conn {
    id: u64,
    account: ProcessAccount,
    buf: Vec<u8>,
    skipping: bool,
    eof: bool,
    bad_lines: u64,
    first_error: Option<String>,
    lines: u64,
    /// The process images (pid, start, image token) every connection of the reporter has said
    /// hello for, shared by them: a hello already there is a reconnection of that image.
    images: Images,
    /// This connection is a reconnection: its first lines may name sockets announced on the
    /// earlier connection (their counts are kept and merged; that is not an error).
    reconnection: bool,
    /// Event-stream lines not taken yet, when recording.
    recorded: Option<Vec<u8>>,
    /// The reporter asked the process to reconnect later (a `listen` stopping): its stream's
    /// end is no loss, the process runs on.
    released: bool,
}

/// The process images seen by a reporter's connections (see [`Conn::with_images`]).
pub type Images = std::sync::Arc<std::sync::Mutex<std::collections::HashSet<(u32, u64, u64)>>>;

impl Conn {
    /// A new reader; `id` numbers connections in the order they were accepted.
    pub fn new(id: u64) -> Self {
        Self::with_images(id, Images::default())
    }

    /// A new reader sharing `images` with the reporter's other connections, so that a process
    /// image that connects again (its connection was taken by a close sweep, or its reporter
    /// restarted) is known for one.
    pub fn with_images(id: u64, images: Images) -> Self {
        Conn {
            images,
            reconnection: false,
            id,
            account: ProcessAccount::new(),
            buf: Vec::new(),
            skipping: false,
            eof: false,
            bad_lines: 0,
            first_error: None,
            lines: 0,
            recorded: None,
            released: false,
        }
    }

    /// The reporter asked the process to connect again later: when the stream ends, the process
    /// is still running (reported `running`, not `lost`).
    pub fn release(&mut self) {
        self.released = true;
    }

    /// Whether [`Conn::release`] was called.
    pub fn released(&self) -> bool {
        self.released
    }

    /// From now on, keeps the event-stream lines of what this connection brings
    /// ([`Conn::take_recorded`]).
    pub fn record(&mut self) {
        self.recorded.get_or_insert_with(Vec::new);
    }

    /// The event-stream lines recorded since the last call (empty when not recording).
    pub fn take_recorded(&mut self) -> Vec<u8> {
        self.recorded.as_mut().map(std::mem::take).unwrap_or_default()
    }

    fn pid(&self) -> Option<u32> {
        self.account.hello().map(|h| h.pid)
    }

    /// A reader whose account keeps to `limits`.
    #[cfg(test)]
    pub fn with_limits(id: u64, limits: sockmeter::account::Limits) -> Self {
        Conn {
            account: ProcessAccount::with_limits(limits),
            ..Conn::new(id)
        }
    }

    /// The connection's number.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The account so far.
    pub fn account(&self) -> &ProcessAccount {
        &self.account
    }

    /// Who is talking, for messages: `pid 4711 (connection 3)` or `connection 3 (no hello yet)`.
    pub fn who(&self) -> String {
        match self.account.hello() {
            Some(h) => format!("pid {} (connection {})", h.pid, self.id),
            None => format!("connection {} (no hello yet)", self.id),
        }
    }

    /// Where the process stands.
    pub fn status(&self) -> Status {
        match (self.account.ended(), self.eof) {
            (Some(r), _) => Status::SaidBye(r),
            (None, true) => Status::Lost,
            (None, false) => Status::Open,
        }
    }

    /// Whether the reporter still has to wait for this connection.
    pub fn is_open(&self) -> bool {
        self.status() == Status::Open
    }

    /// Whether anything at all was received (a connection that sent nothing is not a process).
    pub fn is_empty(&self) -> bool {
        self.lines == 0 && self.bad_lines == 0 && self.buf.is_empty()
    }

    /// Feeds bytes read from the connection; returns the warnings to show the user.
    pub fn feed(&mut self, data: &[u8]) -> Vec<String> {
        self.feed_lines(data, false).0
    }

    /// As [`Conn::feed`], but stops after the line that said `bye` when more follows: a
    /// shipper sends its next host's image on a connection whose image said `bye`
    /// (docs/wire.md), and what follows is that image's. Returns the warnings and how many
    /// bytes of `data` this image took.
    pub fn feed_image(&mut self, data: &[u8]) -> (Vec<String>, usize) {
        self.feed_lines(data, true)
    }

    fn feed_lines(&mut self, data: &[u8], image_ends_at_bye: bool) -> (Vec<String>, usize) {
        let whole = data.len();
        let mut data = data;
        let mut warnings = Vec::new();
        while !data.is_empty() {
            if image_ends_at_bye && self.account.ended().is_some() && self.buf.is_empty() && !self.skipping {
                return (warnings, whole - data.len());
            }
            let nl = data.iter().position(|&b| b == b'\n');
            let (chunk, rest, complete) = match nl {
                Some(i) => (&data[..i], &data[i + 1..], true),
                None => (data, &[][..], false),
            };
            data = rest;
            if self.skipping {
                self.skipping = !complete;
                continue;
            }
            if self.buf.len() + chunk.len() > MAX_LINE {
                self.buf = Vec::new();
                self.skipping = !complete;
                self.bad_line(&wire::WireError::TooLong.to_string(), &mut warnings);
                continue;
            }
            if complete && self.buf.is_empty() {
                // The common case: a whole line inside this read, decoded where it lies.
                self.line(chunk, &mut warnings);
                continue;
            }
            self.buf.extend_from_slice(chunk);
            if complete {
                let line = std::mem::take(&mut self.buf);
                self.line(&line, &mut warnings);
            }
        }
        (warnings, whole)
    }

    /// The stream ended; returns the warnings to show the user. A last line without its
    /// newline is still read (a process killed mid-write leaves a torn line: noted, not warned).
    pub fn end_of_stream(&mut self) -> Vec<String> {
        let mut warnings = Vec::new();
        if self.eof {
            return warnings;
        }
        self.eof = true;
        let rest = std::mem::take(&mut self.buf);
        // Asked to reconnect, the shim sends a line it had not finished (newline included)
        // whole again on its next connection: it is not read here, or it would count twice.
        if !rest.is_empty() && !self.skipping && !self.released {
            self.lines += 1;
            match wire::decode(&rest) {
                Ok(msg) => self.apply(&msg, &mut warnings),
                Err(_) => self.torn(),
            }
        }
        let (id, pid, released) = (self.id, self.pid(), self.released);
        if let Some(r) = &mut self.recorded {
            crate::stream::event_line(
                r,
                &crate::stream::Event::Eof {
                    conn: id,
                    pid,
                    released,
                },
            );
        }
        if self.bad_lines > 1 {
            warnings.push(format!(
                "{}: {} more unreadable lines were skipped",
                self.who(),
                self.bad_lines - 1
            ));
        }
        warnings
    }

    fn line(&mut self, line: &[u8], warnings: &mut Vec<String>) {
        if line.iter().all(|b| b.is_ascii_whitespace()) {
            return;
        }
        self.lines += 1;
        match wire::decode(line) {
            Ok(msg) => self.apply(&msg, warnings),
            Err(e) => self.bad_line(&e.to_string(), warnings),
        }
    }

    fn apply(&mut self, msg: &Message, warnings: &mut Vec<String>) {
        if self.account.hello().is_none() && !matches!(msg, Message::Hello(_)) {
            self.bad_line("a message before the hello (refused)", warnings);
            return;
        }
        if let (Message::Hello(h), None) = (msg, self.account.hello()) {
            if let Ok(mut seen) = self.images.lock() {
                self.reconnection = !seen.insert((h.pid, h.started_at, h.image));
            }
        }
        let kept = match self.account.apply(msg) {
            Ok(()) => true,
            // Counts for a socket the earlier connection of this image announced: kept, merged
            // at the end, and no slip.
            Err(sockmeter::account::AccountError::UnknownSocket(_)) if self.reconnection => true,
            // A slip whose counts were kept: recorded as the message itself (its replay makes
            // the same slip).
            Err(e) if !e.rejected() => {
                self.count_bad(&e.to_string(), warnings);
                true
            }
            Err(e) => {
                self.bad_line(&e.to_string(), warnings);
                false
            }
        };
        if kept {
            let (id, pid) = (self.id, self.pid());
            if let Some(r) = &mut self.recorded {
                crate::stream::message_line(r, id, pid, msg);
            }
        }
    }

    /// The connection ended in the middle of a message (noted, not warned).
    fn torn(&mut self) {
        self.account
            .add_notice("the connection ended in the middle of a message".into());
        let (id, pid) = (self.id, self.pid());
        if let Some(r) = &mut self.recorded {
            crate::stream::event_line(r, &crate::stream::Event::Torn { conn: id, pid });
        }
    }

    /// Replays a recorded end: the stream ended in the middle of a message.
    pub fn replay_torn(&mut self) {
        self.torn();
    }

    /// Replays a recorded skipped line (`error` says why it was skipped).
    pub fn replay_skipped(&mut self, error: &str) -> Vec<String> {
        let mut warnings = Vec::new();
        self.bad_line(error, &mut warnings);
        warnings
    }

    /// A line skipped (recorded as such).
    fn bad_line(&mut self, error: &str, warnings: &mut Vec<String>) {
        let (id, pid) = (self.id, self.pid());
        if let Some(r) = &mut self.recorded {
            crate::stream::event_line(
                r,
                &crate::stream::Event::Skipped {
                    conn: id,
                    pid,
                    error: error.to_string(),
                },
            );
        }
        self.count_bad(error, warnings);
    }

    fn count_bad(&mut self, error: &str, warnings: &mut Vec<String>) {
        self.bad_lines += 1;
        if self.first_error.is_none() {
            self.first_error = Some(error.to_string());
            warnings.push(format!(
                "{}: skipped a bad message: {error}; its other counts are kept",
                self.who()
            ));
        }
    }

    /// The process report. `end_hint` names an open connection's end (`running`); a stream
    /// that ended without a `bye` is `lost` whatever the hint.
    pub fn report(&self, include_unix: bool, end_hint: &str) -> ProcessReport {
        self.report_with(&self.account, include_unix, end_hint)
    }

    /// As [`Conn::report`], for `account` (this connection's, or the merge of several
    /// connections of one process image, this one the last).
    pub fn report_with(&self, account: &ProcessAccount, include_unix: bool, end_hint: &str) -> ProcessReport {
        let hint = if self.eof && !self.released { "lost" } else { end_hint };
        let mut r = account.report(include_unix, hint);
        if let Some(first) = &self.first_error {
            let n = self.bad_lines;
            r.notices.push(format!(
                "the reporter skipped {n} bad message{} (first: {first})",
                if n == 1 { "" } else { "s" }
            ));
        }
        r
    }
}

#[cfg(test)]
pub(crate) mod props;

#[cfg(test)]
mod tests {
    use super::*;
    use sockmeter::model::{Family, Proto, Role};
    use sockmeter::wire::{encode, Bye, Delta, Hello, Origin, SocketDelta, SocketInfo};

    fn hello(pid: u32) -> Message {
        Message::Hello(Hello {
            pid,
            ppid: 1,
            exe: "/usr/bin/curl".into(),
            argv: vec!["curl".into()],
            started_at: 1_000,
            origin: Origin::Start,
            shim_version: "test".into(),
            interval_ms: 1000,
            image: 0,
        })
    }

    fn socket(id: u64) -> Message {
        Message::Socket(SocketInfo {
            id,
            fd: 3,
            family: Family::Inet,
            proto: Proto::Tcp,
            role: Role::Connected,
            local: Some("127.0.0.1:5000".into()),
            peer: Some("127.0.0.1:8080".into()),
            module: Some("/usr/bin/curl".into()),
            opened_at: 1_001,
            ..Default::default()
        })
    }

    fn delta(id: u64, tx: u64, rx: u64) -> Message {
        Message::Delta(Delta {
            at: 1_002,
            sockets: vec![SocketDelta {
                id,
                tx_bytes: tx,
                rx_bytes: rx,
                ..Default::default()
            }],
        })
    }

    fn bye() -> Message {
        Message::Bye(Bye {
            at: 1_003,
            reason: ByeReason::Exit,
            dropped_events: 0,
            status: None,
        })
    }

    #[test]
    fn lines_split_anywhere_are_joined() {
        let mut c = Conn::new(1);
        let all: Vec<u8> = [hello(7), socket(1), delta(1, 84, 3 << 20), bye()]
            .iter()
            .flat_map(encode)
            .collect();
        for piece in all.chunks(7) {
            assert!(c.feed(piece).is_empty());
        }
        assert_eq!(c.status(), Status::SaidBye(ByeReason::Exit));
        assert!(c.end_of_stream().is_empty());
        let r = c.report(false, "running");
        assert_eq!(
            (r.pid, r.totals.tx_bytes, r.totals.rx_bytes, r.end.as_str()),
            (7, 84, 3 << 20, "exit")
        );
        assert!(r.notices.is_empty());
    }

    #[test]
    fn hostile_lines_do_not_lose_other_counts() {
        let mut c = Conn::new(3);
        let mut w = c.feed(&encode(&hello(42)));
        w.extend(c.feed(&encode(&socket(1))));
        w.extend(c.feed(&encode(&delta(1, 10, 20))));
        w.extend(c.feed(b"{\"v\":1,\"type\":\"delta\",\"at\":1,\"sockets\":[{\"id\":-1}]}\n"));
        w.extend(c.feed(b"garbage\n\n{\"v\":99,\"type\":\"bye\"}\n"));
        w.extend(c.feed(&encode(&delta(1, 1, 2))));
        assert_eq!(w.len(), 1, "one warning per connection: {w:?}");
        assert!(
            w[0].contains("pid 42 (connection 3)") && w[0].contains("malformed"),
            "{}",
            w[0]
        );
        let end = c.end_of_stream();
        assert_eq!(
            end,
            vec!["pid 42 (connection 3): 2 more unreadable lines were skipped".to_string()]
        );
        assert_eq!(c.status(), Status::Lost);
        let r = c.report(false, "running");
        assert_eq!((r.totals.tx_bytes, r.totals.rx_bytes), (11, 22));
        assert_eq!(r.end, "lost");
        assert!(
            r.notices.iter().any(|n| n.contains("skipped 3 bad messages")),
            "{:?}",
            r.notices
        );
    }

    #[test]
    fn an_overlong_line_is_skipped_up_to_its_newline() {
        let mut c = Conn::new(1);
        c.feed(&encode(&hello(5)));
        c.feed(&encode(&socket(1)));
        let big = vec![b'x'; MAX_LINE / 2 + 1];
        let mut w = c.feed(&big);
        w.extend(c.feed(&big));
        w.extend(c.feed(&big));
        w.extend(c.feed(b"tail of the long line\n"));
        w.extend(c.feed(&encode(&delta(1, 5, 6))));
        assert_eq!(w.len(), 1);
        assert!(w[0].contains("longer than"), "{}", w[0]);
        assert_eq!(c.report(false, "running").totals.tx_bytes, 5);
        assert!(c.is_open());
    }

    #[test]
    fn a_reconnection_may_count_sockets_its_first_connection_announced() {
        let images = Images::default();
        let mut first = Conn::with_images(1, images.clone());
        assert!(first
            .feed(&[encode(&hello(5)), encode(&socket(1)), encode(&delta(1, 10, 0))].concat())
            .is_empty());
        // The host took the connection (a close sweep); the image connects again and sends what
        // waited, naming socket 1 before announcing it anew.
        let mut again = Conn::with_images(2, images);
        assert!(
            again
                .feed(&[encode(&hello(5)), encode(&delta(1, 7, 0))].concat())
                .is_empty(),
            "no warning"
        );
        // Kept, and merged with the first connection's socket as the report does.
        let mut merged = first.account().clone();
        merged.absorb(again.account());
        assert_eq!(again.report_with(&merged, false, "running").totals.tx_bytes, 17);
        // A new image of another process naming an unknown socket is still warned about.
        let mut other = Conn::new(3);
        assert_eq!(
            other.feed(&[encode(&hello(6)), encode(&delta(9, 1, 0))].concat()).len(),
            1
        );
    }

    #[test]
    fn unknown_socket_and_second_hello_warn_but_count() {
        let mut c = Conn::new(2);
        c.feed(&encode(&hello(5)));
        let w = c.feed(&encode(&delta(9, 100, 0)));
        assert_eq!(w.len(), 1);
        assert!(w[0].contains("never announced"));
        assert!(c.feed(&encode(&hello(6))).is_empty(), "second warning is only counted");
        let r = c.report(true, "running");
        assert_eq!((r.pid, r.sockets.len(), r.end.as_str()), (5, 1, "running"));
        assert_eq!(r.sockets[0].tx_bytes, 100, "the unannounced socket's bytes are kept");
    }

    #[test]
    fn a_torn_last_line_is_noted_not_warned() {
        let mut c = Conn::new(1);
        c.feed(&encode(&hello(5)));
        let mut torn = encode(&socket(1));
        torn.truncate(20);
        c.feed(&torn);
        assert!(c.end_of_stream().is_empty());
        let r = c.report(false, "running");
        assert_eq!(r.end, "lost");
        assert!(r.notices.iter().any(|n| n.contains("middle of a message")));
    }

    #[test]
    fn a_last_line_without_newline_still_counts() {
        let mut c = Conn::new(1);
        let mut data: Vec<u8> = [hello(5), socket(1), delta(1, 1, 1), bye()]
            .iter()
            .flat_map(encode)
            .collect();
        data.pop();
        c.feed(&data);
        assert!(c.is_open());
        c.end_of_stream();
        assert_eq!(c.report(false, "running").end, "exit");
        assert!(!c.is_empty());
        assert!(Conn::new(9).is_empty());
    }
}
