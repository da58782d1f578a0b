//! One metered process image as the shipper serves it: its region, its reporter connection
//! (its own `hello`), its exit (a pidfd) and its exec (its link pipe closing while
//! `exec_pending` is set), its passes, its snapshot answers and, at the end, `bye` and its
//! `SOCKMETER_REPORT` file. The first host is the process that started the shipper; forked
//! children adopted through the adoption channel (`adopt.rs`) are hosts too.
//!
//! A reporter that reconnects (`sockmeter listen`, any socket not in a `sockmeter run`'s
//! private directory: `sockmeter::outbox::reconnects`) may not be there yet, go away, or stop
//! and start again: the host is then *away*. Its lines wait (rewound to a whole line), passes
//! go on while little enough waits, a new connection is tried after a growing pause, and once
//! made it hears the preamble first (`sockmeter::outbox::resume`: hello, modules, the sockets
//! the waiting lines need), then the waiting lines. A host that has ended keeps its last lines
//! for a reporter that is away for up to [`LINGER`].

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use sockmeter::collect::{encode_batch, Shipper};
use sockmeter::config::Config;
use sockmeter::outbox::{self, resume, Backoff, Flushed, Heard, Outbox};
use sockmeter::shared::Shared;
use sockmeter::time::now_ms;
use sockmeter::wire::{Bye, ByeReason, ExitStatus, Hello, Message, Origin};
use sockmeter::ProcessAccount;

use super::pool::Pool;
use super::region::{Region, Regions};

/// How process `pid` ended, read from its `/proc` entry while it is a zombie its parent has not
/// reaped yet (field 52 of `stat`, a `wait` status word). Best effort: once the parent has
/// reaped it, the entry is gone (the reporter may still learn it from the parent's `wait`).
fn zombie_status(pid: u32) -> Option<ExitStatus> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // After the command's closing parenthesis: field 3 (state) is fields[0], field 52 is
    // fields[49].
    if fields.first() != Some(&"Z") {
        return None;
    }
    ExitStatus::from_wait(fields.get(49)?.parse().ok()?)
}

/// Connects to the reporter at `path`; a shipper that runs as a user who cannot enter the
/// reporter's private directory (its host gave up its privileges) knocks at the run's second
/// door instead, which admits only the run's own processes.
fn connect(path: &str) -> std::io::Result<UnixStream> {
    match UnixStream::connect(path) {
        #[cfg(target_os = "linux")]
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            use std::os::linux::net::SocketAddrExt;
            let door = std::os::unix::net::SocketAddr::from_abstract_name(sockmeter::config::door_name(path))?;
            UnixStream::connect_addr(&door)
        }
        other => other,
    }
}

/// Who a host is (from the shim's arguments, or from an adoption message).
pub struct Who {
    /// Its pid.
    pub pid: u32,
    /// Its parent.
    pub ppid: u32,
    /// Its executable.
    pub exe: String,
    /// Its command line.
    pub argv: Vec<String>,
    /// Started with the program, or forked.
    pub origin: Origin,
}

fn hello(w: &Who, region: &Shared, interval_ms: u64) -> Hello {
    // When the image started, as the shim recorded it (its load, or the fork), not now: the
    // shipper starts after the host's first socket.
    let started_at = match region.started_ms.load(Ordering::Relaxed) {
        0 => now_ms(),
        t => t,
    };
    Hello {
        pid: w.pid,
        ppid: w.ppid,
        exe: w.exe.clone(),
        argv: w.argv.clone(),
        started_at,
        origin: w.origin,
        shim_version: env!("CARGO_PKG_VERSION").to_string(),
        interval_ms,
        image: region.image.load(Ordering::Relaxed),
    }
}

/// The longest the shipper's loop waits for something to happen.
const MAX_TICK_MS: u64 = 100;

/// The shipper's tick: how long its loop waits for something to happen, and the least time
/// between two passes of a host whose only news is a change. A forking server's children wake
/// the shipper far more often than that (each hand-over and end); without the gap the server's
/// own lines went out at each of those wake-ups, one write and one reporter wake-up per child.
pub fn tick(cfg: &Config) -> Duration {
    Duration::from_millis(cfg.interval_ms.min(MAX_TICK_MS))
}

/// How long a host that has ended keeps its last lines for a reporter that is away (one that
/// reconnects: restarting, or not started yet) before they are given up.
pub const LINGER: Duration = outbox::LINGER;

/// Where the connection to the reporter stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Talk {
    /// Talking (lines may be waiting in the outbox).
    Up,
    /// A reporter that reconnects is not there now: lines wait, a connection is tried again.
    Away,
    /// The reporter ended the run, or went away: nothing more is sent.
    Down,
}

struct Out {
    region: &'static Shared,
    stream: Option<UnixStream>,
    outbox: Outbox,
    talk: Talk,
    account: ProcessAccount,
    path: String,
    /// The host's hello, the first line of every connection.
    hello: Hello,
    /// The reporter may come and go (see the module docs).
    reconnects: bool,
    backoff: Backoff,
    /// The reporter's absence was said (once per absence).
    said: bool,
}

impl Out {
    /// Queues a batch for the reporter (and gives it to the host's subscribers now). It is
    /// written with the rest of the round's lines by [`Out::flush`]: one write per host and
    /// round, so the reporter wakes once for a child's hello, first pass and `bye` when the
    /// shipper sees them together.
    fn emit(&mut self, msgs: Vec<Message>) {
        let region = self.region;
        let subscribed = region.subscribed.load(Ordering::Acquire) != 0;
        let closes = msgs.iter().filter(|m| matches!(m, Message::Closed(_))).count();
        let mut lines = Vec::new();
        encode_batch(&mut self.account, msgs, &mut lines, |line| {
            if subscribed {
                region.events.push(line.strip_suffix(b"\n").unwrap_or(line));
            }
        });
        if self.talk != Talk::Down {
            self.outbox.push_counting(&lines, closes);
        }
    }

    /// Whether a new pass may run: little enough waits (for a reporter that reconnects, also
    /// no more closes than the account can announce again: `outbox::resume`).
    fn accepts_more(&self) -> bool {
        self.outbox.accepts_more()
            && (!self.reconnects || self.outbox.closes_waiting() < resume::closes_kept(&self.account))
    }

    /// Writes what waits, as far as the reporter takes it.
    fn flush(&mut self) {
        let Some(s) = &mut self.stream else { return };
        if let Flushed::Broken(e) = self.outbox.flush(|b| s.write(b)) {
            if self.reconnects && outbox::worth_retrying(&e) {
                self.broke(Some(&format!("the connection failed: {e}")));
            } else {
                self.gone(&format!("the connection failed ({e})"));
            }
        }
    }

    /// Reads what the reporter said: the end of the run, its own end, or that it restarts.
    fn listen(&mut self) {
        let Some(s) = &mut self.stream else { return };
        match outbox::listen(|b| s.read(b)) {
            Heard::Nothing => {}
            Heard::End => self.down(),
            Heard::Gone if self.reconnects => self.broke(Some("it closed the connection")),
            Heard::Gone => self.gone("it closed the connection"),
            Heard::Reconnect if self.reconnects => self.broke(None),
            Heard::Reconnect => self.down(),
        }
    }

    /// One try to reach a reporter that is away, when the pause since the last is over; a new
    /// connection hears the preamble, then the waiting lines.
    fn retry(&mut self) {
        if self.talk != Talk::Away || !self.backoff.due(now_ms()) {
            return;
        }
        match connect(&self.path).and_then(|s| s.set_nonblocking(true).map(|()| s)) {
            Ok(s) => self.connected(s),
            Err(e) if self.reconnects && outbox::worth_retrying(&e) => {
                self.backoff.failed(now_ms());
                let line = format!(
                    "sockmeter: cannot reach the reporter at SOCKMETER_SOCKET={}: {e}; counting on: the counts go to it once it is there",
                    self.path
                );
                self.absent(&line);
            }
            Err(e) => {
                if self.region.quiet.load(Ordering::Acquire) == 0 && outbox::first_to_say(&self.path) {
                    say!("sockmeter: cannot reach the reporter at SOCKMETER_SOCKET={}: {e}; this run's processes are still metered, but their counts are not reported", self.path);
                }
                self.down();
            }
        }
    }

    /// A connection to the reporter, new or kept from a host that ended (`pool.rs`): it hears
    /// the preamble (this host's hello first), then the waiting lines (at the round's flush).
    fn connected(&mut self, s: UnixStream) {
        self.stream = Some(s);
        self.talk = Talk::Up;
        self.said = false;
        self.backoff = Backoff::new();
        let preamble = resume::preamble(&self.hello, &self.account, self.outbox.unsent());
        self.outbox.prepend(&preamble);
    }

    /// Says (once per absence, and once for all the reporter's processes) that it is not there.
    fn absent(&mut self, line: &str) {
        if !self.said {
            self.said = true;
            if outbox::first_to_say(&self.path) {
                say!("{line}");
            }
        }
    }

    /// A reporter that reconnects went away (`why`), or asked to be reached again later
    /// (None): the waiting lines are kept whole for the next connection.
    fn broke(&mut self, why: Option<&str>) {
        self.outbox.rewind_to_line();
        self.stream = None;
        self.talk = Talk::Away;
        match why {
            Some(why) => {
                self.backoff.failed(now_ms());
                let line = format!(
                    "sockmeter: the reporter at SOCKMETER_SOCKET={} went away ({why}); counting on: the counts go to it once it is back",
                    self.path
                );
                self.absent(&line);
            }
            // The reporter stops and asked for this: its absence is no news.
            None => {
                self.said = true;
                self.backoff.soon(now_ms());
            }
        }
    }

    /// The reporter went away: said once for the whole run (not by every process), and then
    /// this host and the children it forks later go quiet.
    fn gone(&mut self, why: &str) {
        if self.talk == Talk::Up && outbox::first_to_say(&self.path) {
            say!(
                "sockmeter: the reporter at SOCKMETER_SOCKET={} went away ({why}); counts from now on are not reported",
                self.path
            );
        }
        self.down();
    }

    /// Nothing more is sent: the run is over or the reporter is gone.
    fn down(&mut self) {
        self.talk = Talk::Down;
        self.stream = None;
        self.outbox.clear();
        self.region.quiet.store(1, Ordering::Release);
    }
}

/// What the shipper is handed for a host (each fd is the shipper's to close).
pub struct Handover {
    /// The memfd that holds its region.
    pub mem: i32,
    /// Where in it the region starts (0, or a nursery's slot: `sockmeter::nursery`).
    pub offset: usize,
    /// The read end of its link pipe.
    pub link: i32,
    /// A pidfd of it (-1: none).
    pub pidfd: i32,
    /// Handed over when it took a nursery slot, before it may ship (at the fork, for a child
    /// holding its parent's sockets; at its first socket or thread otherwise): nothing is said
    /// for it until a round finds its region shipping (`Shared::shipping`), and if it ends
    /// first, nothing at all.
    pub silent: bool,
}

/// A host being shipped.
pub struct Host {
    pid: u32,
    out: Out,
    pidfd: i32,
    link: i32,
    shipper: Shipper,
    /// When its last pass was (None: none yet).
    last: Option<Instant>,
    seen: u64,
    /// Set once the host ended: its last pass and `bye` are queued.
    ended: bool,
    /// When it ended.
    ended_at: Option<Instant>,
    /// Not speaking yet (see [`Handover::silent`]).
    silent: bool,
    /// The region `out` reads; last, so that it is unmapped after everything else is dropped.
    region: Region,
}

impl Host {
    /// Maps the region, connects to the reporter and says hello. None when the region cannot
    /// be mapped (the hand-over's fds are closed then).
    pub fn start(who: Who, h: Handover, cfg: &Config, pool: &mut Pool, regions: &mut Regions) -> Option<Host> {
        let Handover {
            mem,
            offset,
            link,
            pidfd,
            silent,
        } = h;
        let Some(mapping) = regions.open(mem, offset) else {
            for fd in [link, pidfd] {
                if fd >= 0 {
                    // SAFETY: fds we own.
                    unsafe { libc::close(fd) };
                }
            }
            return None;
        };
        let region = mapping.get();
        let path = cfg.socket.clone().unwrap_or_default();
        let out = Out {
            region,
            stream: None,
            outbox: Outbox::new(outbox::SHIPPER_HOLD),
            talk: Talk::Away,
            account: ProcessAccount::new(),
            reconnects: outbox::reconnects(&path),
            path,
            hello: hello(&who, region, cfg.interval_ms),
            backoff: Backoff::new(),
            said: false,
        };
        let mut host = Host {
            pid: who.pid,
            out,
            pidfd,
            link,
            shipper: Shipper::new(),
            last: None,
            seen: u64::MAX,
            ended: false,
            ended_at: None,
            silent,
            region: mapping,
        };
        // A silent hand-over is spoken for at a later round in which it ships (`tick`), or at
        // its end: a child that connects and exits at once then reaches the reporter in one
        // write (hello, its pass, bye), and one that never ships, in none.
        if !silent {
            host.speak(Some(pool));
        }
        Some(host)
    }

    /// Starts speaking for the host: its hello goes to the account and the subscribers here,
    /// and to each connection in its preamble; a connection is taken from the pool, or made.
    fn speak(&mut self, pool: Option<&mut Pool>) {
        self.silent = false;
        let region = self.out.region;
        let mut line = Vec::new();
        encode_batch(
            &mut self.out.account,
            vec![Message::Hello(self.out.hello.clone())],
            &mut line,
            |l| {
                if region.subscribed.load(Ordering::Acquire) != 0 {
                    region.events.push(l.strip_suffix(b"\n").unwrap_or(l));
                }
            },
        );
        match pool.and_then(Pool::take) {
            Some(s) => self.out.connected(s),
            None => self.out.retry(),
        }
    }

    /// The fds to poll for this host: its pidfd, its link and its reporter connection
    /// (negative ones are ignored; the connection is polled for room to write while lines
    /// wait).
    pub fn poll_fds(&self) -> [libc::pollfd; 3] {
        let p = |fd, events| libc::pollfd { fd, events, revents: 0 };
        let (pidfd, link) = if self.ended { (-1, -1) } else { (self.pidfd, self.link) };
        let conn = self.out.stream.as_ref().map_or(-1, |s| s.as_raw_fd());
        let want = if self.out.outbox.is_empty() {
            libc::POLLIN
        } else {
            libc::POLLIN | libc::POLLOUT
        };
        [p(pidfd, libc::POLLIN), p(link, libc::POLLIN), p(conn, want)]
    }

    /// After a poll, with this host's entries: writes what waits if the reporter has room,
    /// and hears what it said.
    pub fn serve(&mut self, polled: &[libc::pollfd]) {
        if self.silent {
            return;
        }
        if polled[2].revents != 0 {
            self.out.listen();
            self.out.flush();
        }
        self.out.retry();
    }

    /// Writes what this round queued, as far as the reporter takes it now (never waiting):
    /// called once per host at the end of each round of the shipper's loop.
    pub fn flush(&mut self) {
        self.out.flush();
    }

    /// After a poll, with this host's entries: how it ended, if it did.
    pub fn ended(&mut self, polled: &[libc::pollfd]) -> Option<ByeReason> {
        if self.ended {
            return None;
        }
        let exited = if self.pidfd >= 0 {
            polled[0].revents != 0
        } else {
            !crate::reap::pid_alive(self.pid)
        };
        if exited {
            return Some(ByeReason::Exit);
        }
        if self.link >= 0 && polled[1].revents != 0 {
            let mut buf = [0u8; 256];
            // SAFETY: reading into a valid buffer from our non-blocking pipe end.
            let n = unsafe { libc::read(self.link, buf.as_mut_ptr() as *mut libc::c_void, buf.len()) };
            if n == 0 || (n < 0 && polled[1].revents & (libc::POLLHUP | libc::POLLERR) != 0) {
                if self.out.region.exec_pending.load(Ordering::Acquire) != 0 {
                    return Some(ByeReason::Exec);
                }
                // The host closed the link itself: only the pidfd tells the end now.
                // SAFETY: our own fd.
                unsafe { libc::close(self.link) };
                self.link = -1;
            }
        }
        None
    }

    /// A pass when something changed (at most once a [`tick`]), the interval passed or a
    /// snapshot was asked for (and the reporter has read what the last one sent: until then the
    /// counters keep the rest); then the snapshot's answer.
    pub fn tick(&mut self, cfg: &Config, pool: &mut Pool) {
        if self.ended {
            return;
        }
        let region = self.out.region;
        if self.silent {
            if !region.ships() {
                return;
            }
            self.speak(Some(pool));
        }
        let changes = region.changes.load(Ordering::Acquire);
        let asked = region.snapshot.asked.load(Ordering::Acquire);
        let answered = region.snapshot.answered.load(Ordering::Acquire);
        let due = match self.last {
            None => true,
            Some(t) => {
                let since = t.elapsed();
                (changes != self.seen && since >= tick(cfg)) || since >= Duration::from_millis(cfg.interval_ms)
            }
        };
        if (due || asked > answered) && self.out.accepts_more() {
            self.seen = changes;
            self.last = Some(Instant::now());
            self.pass();
        }
        if asked > answered {
            let report = self.out.account.report(cfg.unix_in_totals, "running");
            let json = serde_json::to_vec(&report).unwrap_or_default();
            region.snapshot.answer(asked, &json);
        }
    }

    /// The host ended: the last pass and `bye` are queued (they go out as the reporter reads).
    pub fn end(&mut self, reason: ByeReason, pool: &mut Pool) {
        if self.ended {
            return;
        }
        self.ended = true;
        self.ended_at = Some(Instant::now());
        if self.silent {
            if !self.out.region.ships() {
                // It never shipped: nothing to say (its slot goes back in `finish`).
                self.close_fds();
                return;
            }
            // It started shipping just before it ended (at its exit: bytes its witness saw).
            self.speak(Some(pool));
        }
        self.pass();
        let status = match reason {
            ByeReason::Exit => self.out.region.ending().or_else(|| zombie_status(self.pid)),
            ByeReason::Exec => None,
        };
        self.out.emit(vec![Message::Bye(Bye {
            at: now_ms(),
            reason,
            dropped_events: 0,
            status,
        })]);
        self.close_fds();
    }

    fn close_fds(&mut self) {
        for fd in [&mut self.pidfd, &mut self.link] {
            if *fd >= 0 {
                // SAFETY: fds we own.
                unsafe { libc::close(*fd) };
                *fd = -1;
            }
        }
    }

    /// Whether this host's part is done: it ended and the reporter has everything (or is
    /// gone, or ended the run, or has been away for longer than [`LINGER`] since the end).
    pub fn done(&self) -> bool {
        let lingered = self.ended_at.is_some_and(|t| t.elapsed() >= LINGER);
        self.ended
            && (self.out.outbox.is_empty() || self.out.talk == Talk::Down || (self.out.talk == Talk::Away && lingered))
    }

    /// Whether the host is handed over silently and not spoken for yet.
    pub fn is_silent(&self) -> bool {
        self.silent
    }

    /// Whether the host has ended (its last pass and `bye` are queued).
    pub fn has_ended(&self) -> bool {
        self.ended
    }

    /// Whether the host has ended and waits for a reporter that is away.
    pub fn waiting_for_reporter(&self) -> bool {
        self.ended && self.out.talk == Talk::Away && !self.out.outbox.is_empty()
    }

    /// Whether the reporter is still listening to this host (or will, once back).
    pub fn heard(&self) -> bool {
        self.out.talk != Talk::Down
    }

    /// The connection of a host that is done, when the reporter has everything it sent and
    /// still listens: for the next host (`pool.rs`).
    pub fn take_connection(&mut self) -> Option<UnixStream> {
        if self.ended && self.out.talk == Talk::Up && self.out.outbox.is_empty() {
            self.out.stream.take()
        } else {
            None
        }
    }

    /// The report file, once done.
    pub fn finish(self, cfg: &Config) {
        for fd in [self.pidfd, self.link] {
            if fd >= 0 {
                // SAFETY: fds we own (a host dropped before it ended still has them).
                unsafe { libc::close(fd) };
            }
        }
        if self.silent {
            // A host that never spoke has no report either.
        } else if let Some((path, Err(e))) =
            cfg.write_report(self.pid, || self.out.account.report(cfg.unix_in_totals, "exit"))
        {
            say!("sockmeter: cannot write SOCKMETER_REPORT={path}: {e}");
        }
        // A nursery's slot goes to the next child once its process is gone (exited or
        // exec'd); one whose process still runs (the reporter ended the run) stays its.
        let Host { out, region, ended, .. } = self;
        drop(out);
        if ended {
            region.release();
        }
    }

    fn pass(&mut self) {
        let region = self.region.get();
        let out = &mut self.out;
        self.shipper
            .pass_in_batches(&region.registry, &region.names, now_ms(), &mut |batch| out.emit(batch));
        let notices = region.take_notices();
        if !notices.is_empty() {
            self.out.emit(notices);
        }
    }
}
