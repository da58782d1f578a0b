//! The memory a metered process shares with its shipper.
//!
//! When the shim runs preloaded under a reporter, the counting stays in the host but the
//! shipping does not: the registry, the name table and a few mailboxes live in one [`Shared`]
//! region (a memfd mapping), and a separate *shipper* process (`sockmeter __ship`) maps the same
//! memory, reads the counters, and talks to the reporter. The host gains no thread (a second
//! thread would switch glibc to its multi-threaded paths: atomic cancellation bookkeeping on
//! every system call, locked malloc) and no fd besides one pipe end that tells the shipper when
//! the host execs; the shipper notices the host's exit with a pidfd, so even a process killed
//! by SIGKILL loses nothing.
//!
//! Everything here is atomics in fixed arrays, all zeros when empty: the same type is a
//! `static` in the shim (before the region exists, and when there is no shipper) and a mapping.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering::*};

use crate::names::Names;
use crate::registry::Registry;
use crate::wire::{ExitStatus, Message, Notice};

/// `Shared::magic` once initialised.
pub const MAGIC: u64 = u64::from_le_bytes(*b"SOCKMTR1");
/// Layout version (bumped on any change of this file's types).
pub const LAYOUT: u64 = 10;

/// Bytes of the snapshot mailbox.
pub const SNAPSHOT_MAX: usize = 16 << 20;
/// Bytes of each text ring.
pub const RING: usize = 1 << 20;

/// A byte ring of whole lines: many writers (under a spin lock), one reader.
pub struct TextRing {
    lock: AtomicBool,
    head: AtomicU64,
    tail: AtomicU64,
    /// Lines that did not fit.
    pub dropped: AtomicU64,
    buf: [AtomicU8; RING],
}

impl TextRing {
    const fn new() -> Self {
        TextRing {
            lock: AtomicBool::new(false),
            head: AtomicU64::new(0),
            tail: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            buf: [const { AtomicU8::new(0) }; RING],
        }
    }

    /// Appends one line (a `\n` is added). False, and counted as dropped, when it does not fit.
    pub fn push(&self, line: &[u8]) -> bool {
        while self.lock.compare_exchange_weak(false, true, Acquire, Relaxed).is_err() {
            std::hint::spin_loop();
        }
        let head = self.head.load(Relaxed);
        let tail = self.tail.load(Acquire);
        let need = line.len() as u64 + 1;
        let ok = head - tail + need <= RING as u64;
        if ok {
            for (i, b) in line.iter().chain(std::iter::once(&b'\n')).enumerate() {
                self.buf[((head + i as u64) % RING as u64) as usize].store(*b, Relaxed);
            }
            self.head.store(head + need, Release);
        } else {
            self.dropped.fetch_add(1, Relaxed);
        }
        self.lock.store(false, Release);
        ok
    }

    /// Takes everything written so far (whole lines).
    pub fn take(&self) -> Vec<u8> {
        let head = self.head.load(Acquire);
        let tail = self.tail.load(Relaxed);
        let out = (tail..head)
            .map(|p| self.buf[(p % RING as u64) as usize].load(Relaxed))
            .collect();
        self.tail.store(head, Release);
        out
    }
}

/// The snapshot mailbox: the host asks, the shipper answers with a JSON process report.
pub struct Mailbox {
    /// Requests made.
    pub asked: AtomicU64,
    /// Requests answered.
    pub answered: AtomicU64,
    len: AtomicU64,
    buf: [AtomicU8; SNAPSHOT_MAX],
}

impl Mailbox {
    const fn new() -> Self {
        Mailbox {
            asked: AtomicU64::new(0),
            answered: AtomicU64::new(0),
            len: AtomicU64::new(0),
            buf: [const { AtomicU8::new(0) }; SNAPSHOT_MAX],
        }
    }

    /// The shipper's side: answers request `n` with `text` (truncated answers are refused: an
    /// empty answer means "too large").
    pub fn answer(&self, n: u64, text: &[u8]) {
        let len = if text.len() <= SNAPSHOT_MAX { text.len() } else { 0 };
        for (d, s) in self.buf.iter().zip(&text[..len]) {
            d.store(*s, Relaxed);
        }
        self.len.store(len as u64, Relaxed);
        self.answered.store(n, Release);
    }

    /// The host's side: the answer, once `answered` reached the request number.
    pub fn read(&self) -> Vec<u8> {
        let len = (self.len.load(Acquire) as usize).min(SNAPSHOT_MAX);
        self.buf[..len].iter().map(|b| b.load(Relaxed)).collect()
    }
}

/// The shared region.
#[repr(C)]
pub struct Shared {
    /// [`MAGIC`] once the region is set up.
    pub magic: AtomicU64,
    /// [`LAYOUT`].
    pub layout: AtomicU64,
    /// Bumped by the hooks when sockets appear, change or close (the shipper ships soon).
    pub changes: AtomicU64,
    /// When this process image started, ms since the epoch: the shim's load (an exec'd image,
    /// the command) or the fork (a forked child). 0 until set.
    pub started_ms: AtomicU64,
    /// This image's identity (`wire::Hello::image`), drawn at load.
    pub image: AtomicU64,
    /// Set by the exec hooks just before exec (cleared if exec fails).
    pub exec_pending: AtomicU32,
    /// How the process is ending, when the shim knows ([`Shared::set_ending`]): `_exit(code)`,
    /// or a fatal signal its reporting thread's handler saw. 0 while unknown.
    pub ending: AtomicU32,
    /// Set while an in-process subscriber wants the shipper's lines in `events`.
    pub subscribed: AtomicU32,
    /// Set once the run's reporter is gone or has ended the run: this process (and children it
    /// forks later) keep counting but start no shipper and say nothing more.
    pub quiet: AtomicU32,
    /// Whether the process ships (1) or not yet (0): [`Shared::start_shipping`]. A forked
    /// child that counts in a nursery slot hands its region over when it takes the slot, before
    /// it may ever ship: its shipper stays silent (no `hello`, nothing in the report) until it
    /// finds the child shipping (its first socket call), and if the child exits or execs first,
    /// only gives the slot back.
    pub shipping: AtomicU32,
    /// Sockets and counters. Right after the scalars above, so that they, the fd table's
    /// scalars and its first entries share one page (a forked child faults on each page of its
    /// region it touches); the rings and the mailbox, which it rarely touches, come last.
    pub registry: Registry,
    /// Module and label names.
    pub names: Names,
    /// Notices from the host (`kind\tmessage` lines) for the shipper to send.
    pub notices: TextRing,
    /// Wire lines from the shipper for in-process subscribers.
    pub events: TextRing,
    /// The snapshot mailbox.
    pub snapshot: Mailbox,
}

impl Shared {
    /// Queues a notice (a stable `kind` and one sentence) for whoever ships this region. False
    /// when the ring is full (the notice is dropped and counted there).
    pub fn push_notice(&self, kind: &str, message: &str) -> bool {
        self.notices.push(format!("{kind}\t{message}").as_bytes())
    }

    /// Takes the queued notices, as wire messages.
    pub fn take_notices(&self) -> Vec<Message> {
        let text = self.notices.take();
        String::from_utf8_lossy(&text)
            .lines()
            .filter_map(|l| l.split_once('\t'))
            .map(|(kind, message)| {
                Message::Notice(Notice {
                    kind: kind.to_string(),
                    message: message.to_string(),
                })
            })
            .collect()
    }
    /// An empty region.
    pub const fn new() -> Self {
        Shared {
            magic: AtomicU64::new(0),
            layout: AtomicU64::new(0),
            changes: AtomicU64::new(0),
            started_ms: AtomicU64::new(0),
            image: AtomicU64::new(0),
            exec_pending: AtomicU32::new(0),
            ending: AtomicU32::new(0),
            subscribed: AtomicU32::new(0),
            quiet: AtomicU32::new(0),
            shipping: AtomicU32::new(0),
            notices: TextRing::new(),
            events: TextRing::new(),
            snapshot: Mailbox::new(),
            registry: Registry::new(),
            names: Names::new(),
        }
    }

    /// The host starts shipping. A shipper that holds it silently is not woken for this: it
    /// looks at every tick (at most 100 ms apart) and at the host's end, and says the host's
    /// `hello` then, with its first pass. A forked child that connects and exits within a tick
    /// (a forking server's) so costs its shipper one wake-up (its exit) and the reporter one
    /// write, not three of each.
    #[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
    pub fn start_shipping(&self) {
        self.shipping.store(1, Release);
    }

    /// Whether the host ships (not only handed over silently).
    pub fn ships(&self) -> bool {
        self.shipping.load(Acquire) != 0
    }

    /// Records how the process is ending (the first record wins).
    #[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
    pub fn set_ending(&self, st: ExitStatus) {
        let word = match (st.exit_code, st.signal) {
            (Some(c), None) => 0x100 | (c as u32 & 0xff),
            (None, Some(s)) => 0x200 | (s as u32 & 0xff),
            _ => return,
        };
        let _ = self.ending.compare_exchange(0, word, AcqRel, Acquire);
    }

    /// How the process ended, if the shim recorded it.
    pub fn ending(&self) -> Option<ExitStatus> {
        let w = self.ending.load(Acquire);
        let v = (w & 0xff) as i32;
        match w & 0x300 {
            0x100 => Some(ExitStatus {
                exit_code: Some(v),
                signal: None,
            }),
            0x200 => Some(ExitStatus {
                exit_code: None,
                signal: Some(v),
            }),
            _ => None,
        }
    }

    /// Marks the region set up.
    #[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
    pub fn seal(&self) {
        self.layout.store(LAYOUT, Relaxed);
        self.magic.store(MAGIC, Release);
    }

    /// Whether a mapped region is one this build understands.
    pub fn is_valid(&self) -> bool {
        self.magic.load(Acquire) == MAGIC && self.layout.load(Relaxed) == LAYOUT
    }
}

impl Default for Shared {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_ships_once_it_starts() {
        // A static: a region is tens of MB, too large for a test thread's stack.
        static H: Shared = Shared::new();
        assert!(!H.ships());
        H.start_shipping();
        assert!(H.ships());
        H.start_shipping();
        assert!(H.ships());
    }

    static S: Shared = Shared::new();

    #[test]
    fn rings_and_mailbox() {
        assert!(!S.is_valid());
        S.seal();
        assert!(S.is_valid());
        assert!(S.notices.push(b"deepbind\tx"));
        assert!(S.notices.push(b"a"));
        assert_eq!(S.notices.take(), b"deepbind\tx\na\n");
        assert!(S.notices.take().is_empty());
        assert!(!S.events.push(&vec![b'x'; RING]), "too big is dropped");
        assert_eq!(S.events.dropped.load(Relaxed), 1);
        S.snapshot.answer(1, b"{}");
        assert_eq!(S.snapshot.read(), b"{}");
    }
}
