//! Lines on their way to the reporter, and what the reporter may say back.
//!
//! Whoever ships a process's counts (the shipper process, or the reporting thread) writes to
//! the reporter without ever blocking on it: the socket is non-blocking, and what the reporter
//! has not read yet waits here, in an [`Outbox`]. A reporter that stops reading (SIGSTOP, a
//! slow terminal, a machine swapping) costs nothing but memory, and a bounded amount: once more
//! than a limit waits ([`SHIPPER_HOLD`], [`THREAD_HOLD`]), the shipper runs no pass, so the
//! counts stay in the registry's counters (which lose nothing by waiting) rather than piling
//! up as text. When the reporter reads again, the
//! waiting lines go first, then the next pass ships everything counted meanwhile.
//!
//! A connection that breaks (the reporter died) leaves its last line perhaps half written:
//! [`Outbox::rewind_to_line`] keeps that line whole for a new connection.
//!
//! The reporter speaks once, at the end of a run: [`END_LINE`] tells a shim that the run is
//! over (the command ended; it is not waiting for this process any more), so that a process
//! that outlives the run (a daemon) goes quiet instead of reporting a failure to the terminal
//! later. A connection that ends without it means the reporter went away.
//!
//! Two kinds of reporter: `sockmeter run`'s lives as long as its command, in a private
//! directory it made (`…/sockmeter.XXXXXX/`), and never comes back once gone; `sockmeter
//! listen`'s (or any socket set by hand) serves processes started elsewhere and may start
//! after them, stop and start again. [`reconnects`] tells them apart by the socket's
//! directory. A shim of a `listen` reporter never goes quiet for good: when the reporter is not
//! there, goes away, or says [`RECONNECT_LINE`] as it stops, the shim keeps counting, tries
//! again with a growing pause ([`Backoff`]), and on the new connection first sends
//! [`resume::preamble`] (its `hello`, its modules, the sockets the waiting lines need), then the
//! lines that were waiting.

use std::io::{self, ErrorKind};

/// Bytes waiting above which a shipper process runs no new pass (the counters keep what is not
/// shipped). Generous: while passes wait, closed sockets keep their records (a record is
/// reused only once its last counts are shipped), and a server churning through connections
/// would fill the registry (then new sockets share the overflow record: bytes stay exact, but
/// they are no longer told apart). One pass adds at most a line per record.
pub const SHIPPER_HOLD: usize = 16 << 20;
/// The same for the reporting thread inside a host: the waiting lines are the host's memory.
pub const THREAD_HOLD: usize = 1 << 20;
/// How long what an ended process has not delivered waits for a reporter that reconnects (a
/// `sockmeter listen` that is not there): in its shipper, or in thread mode in the writer
/// process its exit hands the lines to.
pub const LINGER: std::time::Duration = std::time::Duration::from_secs(30);
/// What the buffer keeps of lines already written before it compacts.
const COMPACT: usize = 64 * 1024;

/// What the reporter sends each connection still open when the run ends.
pub const END_LINE: &[u8] = b"{\"v\":1,\"type\":\"end\"}\n";
/// What a `listen` reporter sends each connection as it stops: keep counting, and connect
/// again (to the next reporter at the same socket) later. After it the reporter reads on until
/// the shim closes its end, so everything the shim wrote before it heard this line arrives.
pub const RECONNECT_LINE: &[u8] = b"{\"v\":1,\"type\":\"reconnect\"}\n";

pub mod resume;

/// Whether a shim whose reporter at `socket` is not there, went away or asked it to reconnect
/// tries again later: every socket but a `sockmeter run`'s, which lives in the private
/// directory the run made (`sockmeter.XXXXXX`) and has no reporter once the run is over.
pub fn reconnects(socket: &str) -> bool {
    !is_run_socket(socket)
}

/// Whether `socket` lies in a directory named like `sockmeter run`'s private ones
/// (`sockmeter.XXXXXX`): `sockmeter listen` refuses such a directory, so the name decides.
pub fn is_run_socket(socket: &str) -> bool {
    std::path::Path::new(socket)
        .parent()
        .and_then(|d| d.file_name())
        .is_some_and(|n| n.to_string_lossy().starts_with("sockmeter."))
}

/// Whether a failed connect or a broken connection to a reporter is worth trying again: the
/// socket is not there (yet), nobody listens, the queue is full, or the connection broke. A
/// path that can never be a socket address (too long, a NUL) is not.
pub fn worth_retrying(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(
            libc::ENOENT
                | libc::ECONNREFUSED
                | libc::EAGAIN
                | libc::ECONNRESET
                | libc::EPIPE
                | libc::ENOTCONN
                | libc::ETIMEDOUT
        )
    ) || matches!(
        e.kind(),
        ErrorKind::WriteZero
            | ErrorKind::BrokenPipe
            | ErrorKind::ConnectionReset
            | ErrorKind::NotConnected
            | ErrorKind::WouldBlock
    )
}

/// The pause between two tries to reach a reporter that is not there: 200 ms, doubling up to
/// 1 s; back to 200 ms once a connection is made.
#[derive(Clone, Copy, Debug)]
pub struct Backoff {
    pause_ms: u64,
    next_ms: u64,
}

impl Backoff {
    /// The first pause.
    pub const FIRST_MS: u64 = 200;
    /// The longest pause.
    pub const MAX_MS: u64 = 1000;

    /// A try is due at once.
    pub fn new() -> Self {
        Backoff {
            pause_ms: 0,
            next_ms: 0,
        }
    }

    /// Whether a try is due at `now_ms` (ms on any monotonic or wall clock).
    pub fn due(&self, now_ms: u64) -> bool {
        now_ms >= self.next_ms
    }

    /// A try failed at `now_ms`: the next one waits longer.
    pub fn failed(&mut self, now_ms: u64) {
        self.pause_ms = (self.pause_ms * 2).clamp(Self::FIRST_MS, Self::MAX_MS);
        self.next_ms = now_ms.saturating_add(self.pause_ms);
    }

    /// The reporter asked to be reached again later (it is restarting): the first pause.
    pub fn soon(&mut self, now_ms: u64) {
        self.pause_ms = Self::FIRST_MS;
        self.next_ms = now_ms.saturating_add(self.pause_ms);
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new()
    }
}

/// How far a flush got.
#[derive(Debug)]
pub enum Flushed {
    /// Everything waiting was written.
    All,
    /// The reporter is not reading now; the rest waits.
    Blocked,
    /// The connection is broken (the reporter went away).
    Broken(io::Error),
}

/// Complete wire lines not yet written, in order.
#[derive(Debug)]
pub struct Outbox {
    buf: Vec<u8>,
    /// Bytes of `buf` already written.
    done: usize,
    /// Bytes waiting above which [`Outbox::accepts_more`] says no.
    hold: usize,
    /// Where in `buf` each batch with closes in it ends, and how many closes it holds (batches
    /// not entirely written yet only).
    marks: std::collections::VecDeque<(usize, usize)>,
    /// The closes those batches hold.
    marked: usize,
}

impl Outbox {
    /// Nothing waiting; new passes wait while more than `hold` bytes do.
    pub fn new(hold: usize) -> Self {
        Outbox {
            buf: Vec::new(),
            done: 0,
            hold,
            marks: std::collections::VecDeque::new(),
            marked: 0,
        }
    }

    /// Queues complete lines (each ends with a newline).
    pub fn push(&mut self, lines: &[u8]) {
        self.buf.extend_from_slice(lines);
    }

    /// Queues complete lines holding `closes` `closed` lines, counted until written
    /// ([`Outbox::closes_waiting`]).
    pub fn push_counting(&mut self, lines: &[u8], closes: usize) {
        self.push(lines);
        if closes > 0 {
            self.marks.push_back((self.buf.len(), closes));
            self.marked += closes;
        }
    }

    /// The `closed` lines queued with [`Outbox::push_counting`] and not entirely written (a
    /// sender that reconnects runs no pass while more wait than it can announce again: see
    /// [`resume`]).
    pub fn closes_waiting(&self) -> usize {
        self.marked
    }

    /// Forgets the marks of batches written up to `done`.
    fn drop_written_marks(&mut self) {
        while let Some(&(end, n)) = self.marks.front() {
            if end > self.done {
                break;
            }
            self.marks.pop_front();
            self.marked -= n;
        }
    }

    /// `buf` lost its first `n` bytes.
    fn shift_marks(&mut self, n: usize) {
        for m in &mut self.marks {
            m.0 -= n;
        }
    }

    /// Puts complete lines before everything waiting (a new connection's first lines; call it
    /// after [`Outbox::rewind_to_line`], so that nothing waiting is a cut line).
    pub fn prepend(&mut self, lines: &[u8]) {
        self.buf.splice(self.done..self.done, lines.iter().copied());
        for m in &mut self.marks {
            m.0 += lines.len();
        }
    }

    /// Bytes not yet written.
    pub fn pending(&self) -> usize {
        self.buf.len() - self.done
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.pending() == 0
    }

    /// Whether a new pass may run (little enough waits).
    pub fn accepts_more(&self) -> bool {
        self.pending() < self.hold
    }

    /// The bytes not yet written.
    pub fn unsent(&self) -> &[u8] {
        &self.buf[self.done..]
    }

    /// Writes as much as `write` takes (a non-blocking write: `WouldBlock` when full).
    pub fn flush(&mut self, mut write: impl FnMut(&[u8]) -> io::Result<usize>) -> Flushed {
        loop {
            if self.done == self.buf.len() {
                self.buf.clear();
                self.done = 0;
                self.marks.clear();
                self.marked = 0;
                return Flushed::All;
            }
            match write(&self.buf[self.done..]) {
                Ok(0) => return Flushed::Broken(ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.done += n.min(self.buf.len() - self.done);
                    self.drop_written_marks();
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    // Keep the buffer from growing by what was already written.
                    if self.done >= COMPACT {
                        self.buf.drain(..self.done);
                        self.shift_marks(self.done);
                        self.done = 0;
                    }
                    return Flushed::Blocked;
                }
                Err(e) => return Flushed::Broken(e),
            }
        }
    }

    /// After a broken connection: forgets what was written, but keeps a line that was only
    /// partly written whole (from its start), for a new connection.
    pub fn rewind_to_line(&mut self) {
        let keep_from = self.buf[..self.done]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        self.buf.drain(..keep_from);
        // Marks end at a line's end: those not dropped yet lie beyond `keep_from`.
        self.shift_marks(keep_from);
        self.done = 0;
    }

    /// Puts `line` before everything waiting: the `hello` of a new connection, which must come
    /// first. Call on a connection that has written nothing yet (after [`Outbox::rewind_to_line`]
    /// or on a fresh outbox): a partly written line is never split.
    pub fn push_front(&mut self, line: &[u8]) {
        self.buf.drain(..self.done);
        self.done = 0;
        self.buf.splice(0..0, line.iter().copied());
    }

    /// Drops everything waiting.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.done = 0;
        self.marks.clear();
        self.marked = 0;
    }
}

/// What a shim reads from its reporter connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Heard {
    /// Nothing new.
    Nothing,
    /// The run is over ([`END_LINE`]).
    End,
    /// The connection ended without [`END_LINE`]: the reporter went away.
    Gone,
    /// The reporter is stopping and asks to be reached again later ([`RECONNECT_LINE`]).
    Reconnect,
}

/// Reads what the reporter said with `read` (a non-blocking read), without blocking.
pub fn listen(mut read: impl FnMut(&mut [u8]) -> io::Result<usize>) -> Heard {
    let mut buf = [0u8; 256];
    let mut heard = Heard::Nothing;
    // What the reporter said before its end is what counts; an end without a word is `Gone`.
    let at_end = |heard: Heard| if heard == Heard::Nothing { Heard::Gone } else { heard };
    loop {
        match read(&mut buf) {
            Ok(0) => return at_end(heard),
            Ok(n) => {
                if buf[..n].windows(5).any(|w| w == b"\"end\"") {
                    heard = Heard::End;
                } else if heard == Heard::Nothing && buf[..n].windows(11).any(|w| w == b"\"reconnect\"") {
                    heard = Heard::Reconnect;
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return heard,
            Err(_) => return at_end(heard),
        }
    }
}

/// Whether this process is the first of the run to say that the reporter at `socket` (the
/// `SOCKMETER_SOCKET` path) cannot be reached: every process of a run, and each of their
/// shippers, meets a dead reporter on its own, and the user's terminal should get one line, not
/// one per process. The first creates `<socket>.unreachable` (0600) beside the socket, in the
/// reporter's private directory; the others find it there. When that directory is gone the run
/// is over (the reporter removed it at its end): a process that outlived the run (a daemon)
/// says nothing at all.
pub fn first_to_say(socket: &str) -> bool {
    use std::os::unix::fs::OpenOptionsExt;
    if socket.is_empty() {
        // No socket named (a shipper whose host lost it): no marker, which would be
        // `.unreachable` in whatever directory the process runs in (one was once found there).
        return true;
    }
    let marker = format!("{socket}.unreachable");
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&marker)
    {
        Ok(_) => true,
        Err(e) if e.kind() == ErrorKind::AlreadyExists => false,
        Err(e) if e.kind() == ErrorKind::NotFound => !in_a_finished_run(socket),
        // The directory cannot be written (a process that changed its user): say it.
        Err(_) => true,
    }
}

/// Whether `socket` was in a `sockmeter run` private directory (`…/sockmeter.XXXXXX/…`) that
/// is gone: the run is over. A socket path set by hand that never existed is not.
fn in_a_finished_run(socket: &str) -> bool {
    let dir = std::path::Path::new(socket).parent();
    let named = dir
        .and_then(|d| d.file_name())
        .is_some_and(|n| n.to_string_lossy().starts_with("sockmeter."));
    named && dir.is_some_and(|d| !d.exists())
}

#[cfg(test)]
mod props;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_blocked_reporter_keeps_lines_in_order_and_a_cut_line_whole() {
        let mut o = Outbox::new(100);
        o.push(b"one\ntwo\n");
        let mut written = Vec::new();
        // The reporter takes 5 bytes, then is full.
        let mut room = 5usize;
        let r = o.flush(|b| {
            if room == 0 {
                return Err(ErrorKind::WouldBlock.into());
            }
            let n = b.len().min(room);
            room -= n;
            written.extend_from_slice(&b[..n]);
            Ok(n)
        });
        assert!(matches!(r, Flushed::Blocked));
        assert_eq!(written, b"one\nt");
        assert_eq!(o.pending(), 3);
        o.push(b"three\n");
        // The connection breaks: "two" was cut, so it is kept from its start.
        o.rewind_to_line();
        assert_eq!(o.unsent(), b"two\nthree\n");
        let mut again = Vec::new();
        assert!(matches!(
            o.flush(|b| {
                again.extend_from_slice(b);
                Ok(b.len())
            }),
            Flushed::All
        ));
        assert_eq!(again, b"two\nthree\n");
        assert!(o.is_empty() && o.accepts_more());
        // A new connection: its hello goes before what was waiting.
        o.push(b"delta\n");
        o.push_front(b"hello\n");
        assert_eq!(o.unsent(), b"hello\ndelta\n");
        o.clear();
        o.push(&[b'x'; 100]);
        assert!(!o.accepts_more(), "100 bytes wait: no new pass");
        o.clear();
        assert!(matches!(
            {
                o.push(b"x\n");
                o.flush(|_| Err(ErrorKind::BrokenPipe.into()))
            },
            Flushed::Broken(_)
        ));
    }

    #[test]
    fn closes_are_counted_until_written_across_rewinds_and_preambles() {
        let mut o = Outbox::new(1000);
        o.push_counting(b"a\nclosed\n", 1);
        o.push(b"delta\n");
        o.push_counting(b"closed\nclosed\n", 2);
        assert_eq!(o.closes_waiting(), 3);
        let mut room = 12usize;
        let mut take = |b: &[u8]| {
            if room == 0 {
                return Err(ErrorKind::WouldBlock.into());
            }
            let n = b.len().min(room);
            room -= n;
            Ok(n)
        };
        // "a\nclosed\n" (9 bytes) and "del" are written: the first batch is out.
        assert!(matches!(o.flush(&mut take), Flushed::Blocked));
        assert_eq!(o.closes_waiting(), 2);
        o.rewind_to_line();
        o.prepend(b"hello\n");
        assert_eq!(o.unsent(), b"hello\ndelta\nclosed\nclosed\n");
        assert_eq!(o.closes_waiting(), 2);
        let mut all = |b: &[u8]| Ok(b.len().min(13));
        assert!(matches!(o.flush(&mut all), Flushed::All));
        assert_eq!(o.closes_waiting(), 0);
        o.push_counting(b"closed\n", 1);
        o.clear();
        assert_eq!(o.closes_waiting(), 0);
    }

    #[test]
    fn only_the_first_says_and_none_once_the_run_is_over() {
        let dir = std::env::temp_dir().join(format!("sockmeter.outbox-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let sock = dir.join("sockmeter.sock").display().to_string();
        assert!(first_to_say(&sock));
        assert!(!first_to_say(&sock));
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(!first_to_say(&sock), "the run is over: nothing to say");
        let by_hand = std::env::temp_dir().join("no-such-dir-for-sockmeter/r.sock");
        assert!(
            first_to_say(&by_hand.display().to_string()),
            "a path that never existed is said"
        );
        assert!(first_to_say(""), "no socket named: said");
        assert!(
            !std::path::Path::new(".unreachable").exists(),
            "and no marker in the current directory"
        );
    }

    #[test]
    fn the_end_line_and_a_silent_end_are_told_apart() {
        let mut parts: Vec<io::Result<Vec<u8>>> = vec![Ok(END_LINE.to_vec()), Ok(Vec::new())];
        parts.reverse();
        let feed = |parts: &mut Vec<io::Result<Vec<u8>>>, buf: &mut [u8]| match parts.pop() {
            Some(Ok(v)) => {
                buf[..v.len()].copy_from_slice(&v);
                Ok(v.len())
            }
            Some(Err(e)) => Err(e),
            None => Err(ErrorKind::WouldBlock.into()),
        };
        assert_eq!(listen(|b| feed(&mut parts, b)), Heard::End);
        let mut eof: Vec<io::Result<Vec<u8>>> = vec![Ok(Vec::new())];
        assert_eq!(listen(|b| feed(&mut eof, b)), Heard::Gone);
        let mut quiet: Vec<io::Result<Vec<u8>>> = vec![];
        assert_eq!(listen(|b| feed(&mut quiet, b)), Heard::Nothing);
    }
}
