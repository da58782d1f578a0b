//! The per-process collector: turns registry passes into messages and delivers them to the
//! reporter connection, the process's own account (for the report file and the embedding
//! API's snapshot) and any in-process subscribers.

use std::ffi::c_void;

use sockmeter::collect::{encode_batch, Shipper};
use sockmeter::outbox::resume;
use sockmeter::wire::{Bye, ByeReason, Hello, Message, Origin};
use sockmeter::{ProcessAccount, ProcessReport};

use super::reg;
use super::sink::Sink;
use crate::platform;

/// A C callback receiving each wire message as one NDJSON line (`len` bytes, newline
/// included, then a NUL) and the user pointer given at registration; a non-zero return
/// unsubscribes it.
pub type EventCallback = extern "C" fn(line: *const std::ffi::c_char, len: usize, user: *mut c_void) -> std::ffi::c_int;

struct Subscriber {
    id: u64,
    cb: EventCallback,
    user: usize,
}

/// In-process subscribers (the embedding API): C callbacks that each get every wire line.
/// The collector holds one (thread mode); shipper mode keeps one behind a lock.
pub struct Subscribers {
    list: Vec<Subscriber>,
    next: u64,
}

impl Default for Subscribers {
    fn default() -> Self {
        Self::new()
    }
}

impl Subscribers {
    /// None yet.
    pub const fn new() -> Self {
        Subscribers {
            list: Vec::new(),
            next: 1,
        }
    }

    /// Registers a callback; returns its id (never 0).
    pub fn add(&mut self, cb: EventCallback, user: *mut c_void) -> u64 {
        let id = self.next;
        self.next += 1;
        self.list.push(Subscriber {
            id,
            cb,
            user: user as usize,
        });
        id
    }

    /// Removes a subscriber; true if it existed.
    pub fn remove(&mut self, id: u64) -> bool {
        let before = self.list.len();
        self.list.retain(|s| s.id != id);
        before != self.list.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Hands one line (newline included) to every subscriber, NUL-terminated; a callback that
    /// returns non-zero is dropped.
    pub fn deliver(&mut self, line: &[u8]) {
        if self.list.is_empty() {
            return;
        }
        let mut z = line.to_vec();
        z.push(0);
        self.list
            .retain(|s| (s.cb)(z.as_ptr() as *const std::ffi::c_char, line.len(), s.user as *mut c_void) == 0);
    }
}

/// Closed sockets the in-process account keeps one by one (see `Collector::new`).
const CLOSED_KEPT: usize = 256;

/// One process image's collector.
pub struct Collector {
    shipper: Shipper,
    account: ProcessAccount,
    sink: Sink,
    hello: Hello,
    subscribers: Subscribers,
    finished: bool,
}

/// When this process image started (see `Shared::started_ms`); now, if that was never set.
fn started_ms() -> u64 {
    match super::shared().started_ms.load(std::sync::atomic::Ordering::Relaxed) {
        0 => platform::now_ms(),
        t => t,
    }
}

impl Collector {
    /// A collector for this process, as it is now.
    pub fn new(origin: Origin) -> Self {
        let cfg = super::config();
        let hello = Hello {
            pid: platform::pid(),
            ppid: platform::ppid(),
            exe: platform::exe_path_cached().to_string(),
            argv: platform::cmdline(),
            started_at: started_ms(),
            origin,
            shim_version: env!("CARGO_PKG_VERSION").to_string(),
            interval_ms: cfg.interval_ms,
            image: super::shared().image.load(std::sync::atomic::Ordering::Relaxed),
        };
        // The host's own account (for SOCKMETER_REPORT and the snapshot) keeps few closed
        // sockets one by one: the reporter has them all, and a long-running host must not
        // grow with every connection it ever made (later ones are folded, totals exact).
        let mut account = ProcessAccount::with_closed_limit(CLOSED_KEPT);
        let _ = account.apply(&Message::Hello(hello.clone()));
        Collector {
            shipper: Shipper::new(),
            account,
            sink: Sink::new(cfg.socket.clone()),
            hello,
            subscribers: Subscribers::new(),
            finished: false,
        }
    }

    /// Writes what waits for the reporter and hears what it said, and tries to reach a reporter
    /// that was not there (every tick of the thread).
    pub fn service(&mut self) {
        self.sink.listen();
        self.connect(false);
        self.sink.flush();
    }

    /// Whether the reporter has read (nearly) all that was sent: a pass may run. While it
    /// has not, the counters keep what is not shipped.
    pub fn ready(&self) -> bool {
        self.sink.accepts_more() && self.sink.room_for_closes(resume::closes_kept(&self.account))
    }

    /// One pass: ship what changed.
    pub fn pass(&mut self) {
        if self.finished {
            return;
        }
        let mut shipper = std::mem::take(&mut self.shipper);
        shipper.pass_in_batches(reg(), &super::shared().names, platform::now_ms(), &mut |batch| {
            self.emit(batch)
        });
        self.shipper = shipper;
        let notices = super::shared().take_notices();
        self.emit(notices);
    }

    /// Connects to the reporter if one is configured and the connection is not made (or was
    /// lost), and puts the new connection's preamble first: the hello, the modules and the
    /// sockets the waiting lines need (`sockmeter::outbox::resume`; the reporter merges the
    /// connections of one image). `may_open`: called in a host thread (see `Sink::connect`).
    pub fn connect(&mut self, may_open: bool) {
        // The host closed our connection: a new one, as after any break.
        self.sink.taken_by_host();
        if self.sink.wanted() && self.sink.connect(may_open) && self.sink.needs_greeting() {
            let preamble = resume::preamble(&self.hello, &self.account, self.sink.waiting());
            self.sink.greet(&preamble);
        }
    }

    fn emit(&mut self, msgs: Vec<Message>) {
        if msgs.is_empty() {
            return;
        }
        self.connect(false);
        if !self.sink.wanted() && self.subscribers.is_empty() {
            // No reporter and no subscriber reads the lines (a report file only): the account
            // is all there is to keep, and encoding them was half of a pass's cost.
            for m in &msgs {
                let _ = self.account.apply(m);
            }
            return;
        }
        let closes = msgs.iter().filter(|m| matches!(m, Message::Closed(_))).count();
        let mut lines = Vec::new();
        let subscribers = &mut self.subscribers;
        encode_batch(&mut self.account, msgs, &mut lines, |line| subscribers.deliver(line));
        // Queued while a reporter is wanted, connected or not (one that reconnects gets them
        // later); dropped once there is none.
        self.sink.send(&lines, closes);
    }

    /// The last pass, the goodbye, the report file. Returns false if already finished.
    pub fn finish(&mut self, reason: ByeReason) -> bool {
        if self.finished {
            return false;
        }
        // A host thread: a reporter that is back may be reached with a new socket, now.
        self.sink.try_now();
        self.connect(true);
        self.pass();
        let bye = Bye {
            at: platform::now_ms(),
            reason,
            dropped_events: 0,
            status: (reason == ByeReason::Exit).then(|| super::shared().ending()).flatten(),
        };
        if self.sink.wanted() || !self.subscribers.is_empty() {
            self.emit(vec![Message::Bye(bye)]);
        } else {
            let _ = self.account.apply(&Message::Bye(bye));
        }
        if self.sink.away_with_lines() {
            let preamble = resume::preamble(&self.hello, &self.account, self.sink.waiting());
            self.sink.hand_off_later(&preamble);
        } else {
            self.sink.hand_off();
        }
        self.finished = true;
        // The image's report, at exit and before an exec (with `%p`, the next image of the
        // same pid writes the same file later; without it, both are appended).
        self.write_report_file();
        true
    }

    /// After a failed exec: carry on, as a new connection.
    pub fn resume(&mut self) {
        self.finished = false;
        self.sink.reopen();
    }

    fn write_report_file(&self) {
        if let Some((path, Err(e))) = super::config().write_report(self.hello.pid, || self.snapshot_report()) {
            if super::report_path_was_fine() {
                super::say(&format!("cannot write SOCKMETER_REPORT={path}: {e}"));
            }
        }
    }

    /// This process's report as of the last pass.
    pub fn snapshot_report(&self) -> ProcessReport {
        let end = if self.finished { "exit" } else { "running" };
        self.account.report(super::config().unix_in_totals, end)
    }

    /// Registers a subscriber; returns its id (never 0).
    pub fn subscribe(&mut self, cb: EventCallback, user: *mut c_void) -> u64 {
        self.subscribers.add(cb, user)
    }

    /// Removes a subscriber; true if it existed.
    pub fn unsubscribe(&mut self, id: u64) -> bool {
        self.subscribers.remove(id)
    }
}
