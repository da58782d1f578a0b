//! Where the messages go: the reporter's Unix socket and, at exit, the report file.
//!
//! The connection is made when the process first touches a socket, close-on-exec,
//! moved to a high fd number out of the host's way. It is non-blocking, and what the reporter
//! has not read yet waits in an [`Outbox`]: a reporter that stops reading never blocks the
//! host's reporting thread (nor, through it, the host's exit), and while lines wait no new
//! pass runs, so the counters keep what is not shipped. At exit, lines the reporter has not
//! taken yet are handed to a small writer process (see `platform::hand_off`), so the host exits
//! at once and loses nothing. A reporter that went away is said once for the whole run
//! (`outbox::first_to_say`), and the process then goes quiet.
//!
//! The fd is marked *ignored* in the fd table, so its traffic is never counted. If the host
//! closes or `dup2`s over it (a daemon closing every fd, from any thread), the close-family
//! hooks first move it elsewhere (`protect`).
//!
//! Moving and using the fd must not interleave: a write that read the old number just before
//! the host's close released it would fail, or worse, write into whatever the host opens next
//! at that number. So every system call on the fd (connecting, each write or read, moving it)
//! happens under [`FdLock`], a spin lock the host's close waits on only when it targets our
//! fd. The lock is held for one system call at a time, never across anything that takes it
//! again.
//!
//! **Reconnecting** (a `sockmeter listen` reporter, or any socket that is not a `sockmeter
//! run`'s: `sockmeter::outbox::reconnects`). Such a reporter may not be there yet, go away, or
//! stop and start again. The sink then keeps the waiting lines (rewound to a whole line), tries
//! again with a growing pause (200 ms to 1 s) from the reporting thread, and a new connection
//! first hears the collector's preamble (`sockmeter::outbox::resume`). The reporting thread
//! must not make an fd: a new socket briefly takes the lowest free number, which a host thread
//! opening a file at that moment would otherwise have got. So it connects a *spare*: an
//! unconnected socket made beforehand in a host thread, in a hook that opens or closes a socket
//! (`spare_if_wanted`, from `runtime::notify`), or by the hook that starts reporting, exactly as
//! the first connection is made; an unconnected Unix socket can be connected again after a
//! failed try, so one spare serves a whole outage. A broken connection uses it up; the next
//! spare comes with the host's next socket call.

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering::*};

use libc::c_int;
use sockmeter::outbox::{self, Backoff, Flushed, Heard, Outbox};

use crate::platform;
use crate::runtime::reg;
use sockmeter::keep::Keep;
use sockmeter::registry::FdState;

/// The reporter connection's fd, -1 when none. Read by the close-family hooks.
pub static OWN_FD: AtomicI32 = AtomicI32::new(-1);

/// The temporary fd of a connection being made (-1 when none).
static TEMP_FD: AtomicI32 = AtomicI32::new(-1);
/// Set when the host took the connection (closed it with no number left to move it to).
static TAKEN: AtomicBool = AtomicBool::new(false);
/// Held while the reporter fd is used or moved.
static FD_LOCK: AtomicBool = AtomicBool::new(false);
/// An unconnected socket, at a high fd number, for the next connection to a reporter that
/// reconnects (-1 when none; see the module docs).
pub static SPARE_FD: AtomicI32 = AtomicI32::new(-1);
/// Set when a spare is wanted: the next host thread that opens or closes a socket makes one.
static SPARE_WANTED: AtomicBool = AtomicBool::new(false);

thread_local! {
    /// Whether this thread holds [`FD_LOCK`]: a signal handler that interrupted the holder
    /// must never wait for it (it would wait forever).
    static HOLDING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// The lock around every use of the reporter fd (see the module docs). Released on drop.
struct FdLock;

impl FdLock {
    fn take() -> FdLock {
        while FD_LOCK.compare_exchange_weak(false, true, Acquire, Relaxed).is_err() {
            std::thread::yield_now();
        }
        HOLDING.set(true);
        FdLock
    }

    /// The lock, unless this thread holds it already: then a hook runs in a signal handler
    /// that interrupted the holder (the shim making its connection while the host's timer
    /// fires, `invisible::handlers_that_interrupt_the_shim_are_counted`), and gets `None`.
    fn take_unless_held() -> Option<FdLock> {
        (!HOLDING.get()).then(FdLock::take)
    }

    /// The lock if it is free now (a hook, which may run in a signal handler that interrupted
    /// the lock's holder on the same thread, never waits for it).
    fn try_take() -> Option<FdLock> {
        FD_LOCK.compare_exchange(false, true, Acquire, Relaxed).ok().map(|_| {
            HOLDING.set(true);
            FdLock
        })
    }
}

impl Drop for FdLock {
    fn drop(&mut self) {
        HOLDING.set(false);
        FD_LOCK.store(false, Release);
    }
}

/// The lowest fd number the connection is moved to.
const HIGH_FD: c_int = 200;

/// The reporter connection.
pub struct Sink {
    path: Option<String>,
    /// No more connections: the reporter could not be reached, went away, or ended the run.
    gave_up: bool,
    outbox: Outbox,
    /// The reporter may come and go: try again rather than give up (see the module docs).
    reconnects: bool,
    /// When to try again.
    backoff: Backoff,
    /// The reporter's absence was said (once per absence).
    said: bool,
    /// A new connection was made and has not heard its preamble yet.
    greet: bool,
}

impl Sink {
    /// A sink for the socket at `path` (none: messages are only kept in-process).
    pub fn new(path: Option<String>) -> Self {
        Sink {
            reconnects: path.as_deref().is_some_and(outbox::reconnects),
            path,
            gave_up: false,
            outbox: Outbox::new(outbox::THREAD_HOLD),
            backoff: Backoff::new(),
            said: false,
            greet: false,
        }
    }

    /// Whether a new connection waits for its preamble ([`Sink::greet`]).
    pub fn needs_greeting(&self) -> bool {
        self.greet && OWN_FD.load(Acquire) >= 0
    }

    /// The lines waiting for the reporter (whole lines once a connection broke).
    pub fn waiting(&self) -> &[u8] {
        self.outbox.unsent()
    }

    /// Puts a new connection's preamble before the waiting lines, and writes.
    pub fn greet(&mut self, preamble: &[u8]) {
        self.greet = false;
        self.outbox.prepend(preamble);
        self.flush();
    }

    /// Whether a reporter is configured and reachable so far.
    pub fn wanted(&self) -> bool {
        self.path.is_some() && !self.gave_up
    }

    /// Whether a new pass may run: the reporter has read (nearly) all that was sent.
    pub fn accepts_more(&self) -> bool {
        self.outbox.accepts_more()
    }

    /// Connects if needed; true when connected. `may_open`: the caller is a host thread (a
    /// hook, the exit or exec path), which may make a new socket; the reporting thread only
    /// connects a spare (see the module docs).
    pub fn connect(&mut self, may_open: bool) -> bool {
        if OWN_FD.load(Acquire) >= 0 {
            return true;
        }
        let Some(path) = self.path.clone() else { return false };
        if self.gave_up || super::shared().quiet.load(Acquire) != 0 {
            self.gave_up = true;
            return false;
        }
        if self.reconnects {
            return self.reconnect(&path, may_open);
        }
        // A host thread sweeping fds may close our temporary fd before we move it: try again.
        let mut last = None;
        for _ in 0..3 {
            let lock = FdLock::take();
            match connect_unix(&path) {
                Ok(fd) => {
                    OWN_FD.store(fd, Release);
                    reg().fds.set(fd, FdState::Ignored);
                    self.greet = true;
                    return true;
                }
                Err(e) => {
                    drop(lock);
                    let retry = matches!(e.raw_os_error(), Some(libc::EBADF) | Some(libc::ENOTSOCK));
                    last = Some(e);
                    if !retry {
                        break;
                    }
                }
            }
        }
        let what = last.map(|e| e.to_string()).unwrap_or_default();
        if outbox::first_to_say(&path) {
            crate::runtime::say(&format!(
                "cannot reach the reporter at SOCKMETER_SOCKET={path}: {what}; this run's processes are still metered, but their counts are not reported"
            ));
        }
        self.quiet();
        false
    }

    /// The next [`Sink::connect`] tries at once, whatever the pause (the process is ending: its
    /// last lines have no later try).
    pub fn try_now(&mut self) {
        self.backoff = Backoff::new();
    }

    /// One try to reach a reporter that reconnects (when the pause since the last try is over):
    /// the spare is connected; true when it was.
    fn reconnect(&mut self, path: &str, may_open: bool) -> bool {
        let now = crate::platform::now_ms();
        if !self.backoff.due(now) {
            return false;
        }
        match connect_spare(path, may_open) {
            Ok(fd) => {
                OWN_FD.store(fd, Release);
                self.greet = true;
                self.said = false;
                self.backoff = Backoff::new();
                true
            }
            Err(e) if outbox::worth_retrying(&e) => {
                self.backoff.failed(now);
                // No spare yet (the reporting thread waits for a host thread to make one) is
                // not worth a line.
                if e.kind() != std::io::ErrorKind::WouldBlock || e.raw_os_error().is_some() {
                    self.absent(&format!(
                        "cannot reach the reporter at SOCKMETER_SOCKET={path}: {e}; counting on: the counts go to it once it is there"
                    ));
                }
                false
            }
            Err(e) => {
                if outbox::first_to_say(path) {
                    crate::runtime::say(&format!(
                        "cannot reach the reporter at SOCKMETER_SOCKET={path}: {e}; this process is still metered, but its counts are not reported"
                    ));
                }
                self.quiet();
                false
            }
        }
    }

    /// Says (once per absence, and once for every process of the reporter's) that the
    /// reporter is not there.
    fn absent(&mut self, line: &str) {
        if !self.said {
            self.said = true;
            if let Some(p) = &self.path {
                if outbox::first_to_say(p) {
                    crate::runtime::say(line);
                }
            }
        }
    }

    /// The connection broke, or the reporter asked to be reached again later (`why` is None):
    /// the waiting lines are kept whole for the next connection, which comes after a pause.
    fn broke(&mut self, why: Option<&str>) {
        self.outbox.rewind_to_line();
        self.close();
        self.greet = false;
        if SPARE_FD.load(Acquire) < 0 {
            SPARE_WANTED.store(true, Release);
        }
        let now = crate::platform::now_ms();
        match why {
            Some(why) => {
                self.backoff.failed(now);
                let p = self.path.clone().unwrap_or_default();
                self.absent(&format!(
                    "the reporter at SOCKMETER_SOCKET={p} went away ({why}); counting on: the counts go to it once it is back"
                ));
            }
            // The reporter stops and asked for this: its absence is no news.
            None => {
                self.said = true;
                self.backoff.soon(now);
            }
        }
    }

    /// Whether the host took the connection since the last call; if it did, the waiting lines
    /// are rewound for a new connection, which will hear the preamble first.
    pub fn taken_by_host(&mut self) -> bool {
        let taken = TAKEN.swap(false, AcqRel);
        if taken {
            self.outbox.rewind_to_line();
            self.greet = false;
        }
        taken
    }

    /// Queues lines (holding `closes` `closed` lines) and writes what the reporter takes now,
    /// never waiting for it.
    pub fn send(&mut self, lines: &[u8], closes: usize) {
        if !self.wanted() {
            return;
        }
        self.outbox.push_counting(lines, closes);
        self.flush();
    }

    /// Whether a new pass may run without queueing more closes than `kept` (the closed sockets
    /// the collector's account keeps one by one): a reporter that reconnects hears every socket
    /// the waiting lines name announced again, from that account (`outbox::resume`).
    pub fn room_for_closes(&self, kept: usize) -> bool {
        !self.reconnects || self.outbox.closes_waiting() < kept
    }

    /// Writes what waits, as far as the reporter takes it (one system call at a time under the
    /// fd lock).
    pub fn flush(&mut self) {
        if self.outbox.is_empty() {
            return;
        }
        let result = self.outbox.flush(|b| {
            let _lock = FdLock::take();
            let fd = OWN_FD.load(Acquire);
            if fd < 0 {
                return Err(std::io::ErrorKind::NotConnected.into());
            }
            // SAFETY: sending from a valid buffer on our own socket. MSG_NOSIGNAL: a reporter
            // that went away must not kill the host with SIGPIPE.
            let n = unsafe {
                libc::send(
                    fd,
                    b.as_ptr() as *const libc::c_void,
                    b.len(),
                    platform::MSG_NOSIGNAL | libc::MSG_DONTWAIT,
                )
            };
            if n < 0 {
                Err(std::io::Error::last_os_error())
            } else {
                Ok(n as usize)
            }
        });
        if let Flushed::Broken(e) = result {
            if e.kind() == std::io::ErrorKind::NotConnected {
                // The host took the connection (or it broke): the next pass connects again.
                self.outbox.rewind_to_line();
            } else if self.reconnects && outbox::worth_retrying(&e) {
                self.broke(Some(&format!("the connection failed: {e}")));
            } else {
                self.gone(&format!("the connection failed ({e})"));
            }
        }
    }

    /// Hears what the reporter said: the end of the run, or its own end.
    pub fn listen(&mut self) {
        let heard = outbox::listen(|b| {
            let _lock = FdLock::take();
            let fd = OWN_FD.load(Acquire);
            if fd < 0 {
                return Err(std::io::ErrorKind::WouldBlock.into());
            }
            // SAFETY: receiving into a valid buffer from our own socket.
            let n = unsafe { libc::recv(fd, b.as_mut_ptr() as *mut libc::c_void, b.len(), libc::MSG_DONTWAIT) };
            if n < 0 {
                Err(std::io::Error::last_os_error())
            } else {
                Ok(n as usize)
            }
        });
        match heard {
            Heard::Nothing => {}
            Heard::End => self.quiet(),
            Heard::Gone if self.reconnects => self.broke(Some("it closed the connection")),
            Heard::Gone => self.gone("it closed the connection"),
            Heard::Reconnect if self.reconnects => self.broke(None),
            Heard::Reconnect => self.quiet(),
        }
    }

    /// The reporter went away: said once for the run, then quiet.
    fn gone(&mut self, why: &str) {
        if let Some(p) = &self.path {
            if !self.gave_up && outbox::first_to_say(p) {
                crate::runtime::say(&format!(
                    "the reporter at SOCKMETER_SOCKET={p} went away ({why}); counts from now on are not reported"
                ));
            }
        }
        self.quiet();
    }

    /// Nothing more is sent, by this process or the children it forks later.
    fn quiet(&mut self) {
        self.gave_up = true;
        self.outbox.clear();
        super::shared().quiet.store(1, Release);
        self.close();
    }

    /// The last lines of this image: what the reporter has not read yet goes to a writer
    /// process that waits for it (the host does not), then the connection is closed.
    pub fn hand_off(&mut self) {
        self.flush();
        if !self.outbox.is_empty() && !self.gave_up {
            let _lock = FdLock::take();
            let fd = OWN_FD.load(Acquire);
            if fd >= 0 {
                crate::platform::hand_off(fd, self.outbox.unsent());
            }
        }
        self.outbox.clear();
        self.close();
    }

    /// Whether the process ends with lines waiting for a reporter that reconnects and is not
    /// there now (a `listen` that is away): [`Sink::hand_off_later`] keeps them then.
    pub fn away_with_lines(&self) -> bool {
        self.reconnects && !self.gave_up && OWN_FD.load(Acquire) < 0 && !self.outbox.is_empty()
    }

    /// The last lines of this image, for a reporter that is away: `preamble` (what a new
    /// connection hears first) and the waiting lines go to a writer process that tries to
    /// reach it for [`outbox::LINGER`], as a shipper keeps an ended host's lines; the host does
    /// not wait.
    pub fn hand_off_later(&mut self, preamble: &[u8]) {
        let Some(path) = self.path.clone() else { return };
        let mut addrs = Vec::with_capacity(2);
        if let Ok(a) = unix_addr(path.as_bytes(), false) {
            addrs.push(a);
        }
        // A process that gave up its user's rights knocks at the run's second door.
        if let Ok(a) = unix_addr(&sockmeter::config::door_name(&path), true) {
            addrs.push(a);
        }
        let mut bytes = Vec::with_capacity(preamble.len() + self.outbox.unsent().len());
        bytes.extend_from_slice(preamble);
        bytes.extend_from_slice(self.outbox.unsent());
        crate::platform::hand_off_later(&addrs, &bytes, outbox::LINGER.as_millis() as u64);
        self.outbox.clear();
    }

    /// Closes the connection (the reporter sees EOF).
    pub fn close(&mut self) {
        let _lock = FdLock::take();
        let fd = OWN_FD.swap(-1, AcqRel);
        if fd >= 0 {
            reg().fds.set(fd, FdState::Unknown);
            // SAFETY: closing our own fd.
            unsafe { libc::close(fd) };
        }
    }

    /// Forgets an inherited connection (and spare) without writing to it (a forked child must
    /// not talk on its parent's stream).
    #[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
    pub fn abandon_inherited() {
        // The parent's thread may have held the lock at fork time; in the child it is ours.
        // (`keep`: a store of what is there already would cost the child a page copy.)
        FD_LOCK.keep(false, Release);
        TEMP_FD.keep(-1, Release);
        SPARE_WANTED.keep(false, Release);
        for slot in [&OWN_FD, &SPARE_FD] {
            if slot.load(Acquire) < 0 {
                continue;
            }
            let fd = slot.swap(-1, AcqRel);
            if fd >= 0 {
                reg().fds.set(fd, FdState::Unknown);
                // SAFETY: closing the child's copy of the parent's fd; the parent keeps its own.
                unsafe { libc::close(fd) };
            }
        }
    }

    /// Allows a new connection after a failed exec closed the old one.
    pub fn reopen(&mut self) {
        if super::shared().quiet.load(Acquire) == 0 {
            self.gave_up = false;
        }
    }
}

/// Clears [`TEMP_FD`] when the connection attempt ends, however it ends.
struct ClearTemp;

impl Drop for ClearTemp {
    fn drop(&mut self) {
        TEMP_FD.store(-1, Release);
    }
}

/// Makes a spare when one is wanted (see the module docs). Called by hooks that open or close
/// a socket, in a host thread with the guard held; one relaxed load when none is wanted.
#[inline]
pub fn spare_if_wanted() {
    if SPARE_WANTED.load(Relaxed) {
        make_spare();
    }
}

#[cold]
fn make_spare() {
    // A vfork child shares our memory but not our fds; a signal handler may have interrupted
    // the lock's holder: neither waits, the next call makes it.
    if !super::owns_region() {
        return;
    }
    let Some(_lock) = FdLock::try_take() else { return };
    if SPARE_FD.load(Acquire) < 0 {
        if let Ok(fd) = open_spare() {
            SPARE_FD.store(fd, Release);
        }
    }
    SPARE_WANTED.store(false, Release);
}

/// A new unconnected, non-blocking Unix stream socket at a high fd number, marked ignored
/// (the caller holds [`FdLock`] and is a host thread).
fn open_spare() -> std::io::Result<c_int> {
    // Close-on-exec from the start (platform::unix_stream_socket), non-blocking just after.
    let fd = crate::platform::unix_stream_socket();
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fcntl on our own new fd.
    unsafe {
        let fl = libc::fcntl(fd, libc::F_GETFL);
        libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK);
    }
    TEMP_FD.store(fd, Release);
    let _clear = ClearTemp;
    let fd = crate::platform::move_high(fd, HIGH_FD);
    reg().fds.set(fd, FdState::Ignored);
    Ok(fd)
}

/// Connects the spare to the reporter at `path` (making the spare first when `may_open` and
/// there is none); the connected fd. A failed try keeps the spare for the next one; without a
/// spare the error is `WouldBlock` (no OS error).
fn connect_spare(path: &str, may_open: bool) -> std::io::Result<c_int> {
    let _lock = FdLock::take();
    let mut fd = SPARE_FD.load(Acquire);
    if fd < 0 {
        if !may_open {
            SPARE_WANTED.store(true, Release);
            return Err(std::io::ErrorKind::WouldBlock.into());
        }
        fd = open_spare()?;
        SPARE_FD.store(fd, Release);
    }
    let (sa, len) = unix_addr(path.as_bytes(), false)?;
    // SAFETY: connecting our own socket with a valid address; non-blocking, so a reporter
    // whose queue is full is EAGAIN, not a wait.
    if unsafe { libc::connect(fd, &sa as *const libc::sockaddr_un as *const libc::sockaddr, len) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    SPARE_FD.store(-1, Release);
    // The next break needs another: made now in a host thread, else by the host's next socket
    // call.
    let next = if may_open { open_spare().ok() } else { None };
    match next {
        Some(next) => SPARE_FD.store(next, Release),
        None => SPARE_WANTED.store(true, Release),
    }
    Ok(fd)
}

/// A Unix socket address for `name` (a path, or an abstract name without its leading NUL).
fn unix_addr(name: &[u8], abstract_name: bool) -> std::io::Result<(libc::sockaddr_un, libc::socklen_t)> {
    // SAFETY: sockaddr_un is plain data.
    let mut sa: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    let skip = usize::from(abstract_name);
    if name.len() + skip >= sa.sun_path.len() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "path too long for a Unix socket",
        ));
    }
    sa.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (d, s) in sa.sun_path.iter_mut().skip(skip).zip(name) {
        *d = *s as libc::c_char;
    }
    let len = if abstract_name {
        // An abstract name is exactly as long as given (no terminating NUL).
        (std::mem::size_of::<libc::sa_family_t>() + 1 + name.len()) as libc::socklen_t
    } else {
        std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t
    };
    Ok((sa, len))
}

/// Makes the connection (the caller holds [`FdLock`]).
fn connect_unix(path: &str) -> std::io::Result<c_int> {
    match connect_to(path.as_bytes(), false) {
        // This process changed its user and cannot enter the reporter's private directory:
        // the run's second door (it admits only the run's own processes).
        Err(e) if e.raw_os_error() == Some(libc::EACCES) => connect_to(&sockmeter::config::door_name(path), true),
        other => other,
    }
}

/// Connects to the Unix socket at `name` (a path, or an abstract name without its leading NUL).
fn connect_to(name: &[u8], abstract_name: bool) -> std::io::Result<c_int> {
    let (sa, len) = unix_addr(name, abstract_name)?;
    // SAFETY: plain socket calls on our own fd with valid pointers.
    unsafe {
        let fd = platform::unix_stream_socket();
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        TEMP_FD.store(fd, Release);
        let _clear = ClearTemp;
        if libc::connect(fd, &sa as *const libc::sockaddr_un as *const libc::sockaddr, len) != 0 {
            let e = std::io::Error::last_os_error();
            libc::close(fd);
            return Err(e);
        }
        let fd = crate::platform::move_high(fd, HIGH_FD);
        // Connected (a Unix stream connect completes at once); from now on nothing waits.
        let fl = libc::fcntl(fd, libc::F_GETFL);
        libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK);
        Ok(fd)
    }
}

/// Every fd the shim keeps open in the host (the slots hold -1 when unused): the reporter
/// connection and its spare (thread mode), and in shipper mode the region's memfd, the link to
/// the shipper, the adoption channel and the forked children's nursery.
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
pub fn own_fds() -> [&'static std::sync::atomic::AtomicI32; 6] {
    use super::helper::{ADOPT_FD, LINK_FD, MEM_FD};
    [&OWN_FD, &MEM_FD, &LINK_FD, &ADOPT_FD, &SPARE_FD, &super::nursery::FD]
}

/// Moves the reporter connection away from `fd` if the host is about to close or replace it
/// (waiting for a send or a connection in progress to finish first). The connection moves to
/// an fd number at least `min_fd` (and at least 264).
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
pub fn protect(fd: c_int, min_fd: c_int) {
    let ours = |f: c_int| own_fds().iter().any(|s| s.load(Acquire) == f);
    if fd < 0 || (!ours(fd) && TEMP_FD.load(Acquire) != fd) {
        return;
    }
    // Nested in a signal handler on the thread that holds the lock (making or moving the
    // connection): the number the host closes is its own now, or the host closes ours, which
    // the next report makes again; waiting would never end.
    let Some(_lock) = FdLock::take_unless_held() else {
        return;
    };
    for slot in own_fds() {
        if slot.load(Acquire) != fd {
            continue;
        }
        // SAFETY: duplicating our own fd to a free number.
        let moved = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, min_fd.max(HIGH_FD + 64)) };
        if moved >= 0 {
            reg().fds.set(moved, FdState::Ignored);
            slot.store(moved, Release);
        } else {
            // Nowhere to go: the host's call takes it. A reporter connection is made again at
            // the next report; a lost link only means the shipper learns of an exec later.
            slot.store(-1, Release);
            if std::ptr::eq(slot, &OWN_FD) {
                TAKEN.store(true, Release);
            } else if std::ptr::eq(slot, &SPARE_FD) {
                SPARE_WANTED.store(true, Release);
            }
        }
    }
    // The host's close or dup2 will now release `fd` itself.
    reg().fds.set(fd, FdState::Unknown);
}

/// Runs `f` with the fd lock held (for a write to one of our fds that a host thread might be
/// closing at the same moment); not when this thread holds it already (a signal handler that
/// interrupted the holder: the fds may be mid-move), then `None`.
pub fn with_fd_lock<R>(f: impl FnOnce() -> R) -> Option<R> {
    let _lock = FdLock::take_unless_held()?;
    Some(f())
}
