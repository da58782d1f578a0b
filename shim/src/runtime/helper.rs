//! Shipper mode: the host keeps counting into a shared region; a separate process ships.
//!
//! Under a reporter (`SOCKMETER_SOCKET`), the shim does not start a thread in the host: a
//! second thread would switch glibc to its multi-threaded paths for the whole process (atomic
//! cancellation bookkeeping around every system call, locked malloc), which costs a
//! single-threaded host far more than the hooks do. Instead:
//!
//! * the first time the process needs it (before its first socket is registered, or its first
//!   thread is created), the region (`sockmeter::shared::Shared`: registry, names, mailboxes)
//!   moves into a memfd mapping ([`settle`]); a program that never touches a socket never makes
//!   one;
//! * the first time the process touches a socket, `sockmeter __ship` is started by a double
//!   fork (never the host's child: no SIGCHLD, nothing for `wait()`, in any image), with the
//!   memfd and the read end of a "link" pipe. The host keeps only the pipe's write end (moved to
//!   a high fd, protected from the host's close sweeps like the reporter connection);
//! * the shipper maps the region, reads the counters every tick and talks to the reporter. It
//!   sees the host exit through a pidfd (so even SIGKILL loses nothing) and an exec through the
//!   link pipe closing (close-on-exec) while `exec_pending` is set;
//! * a forked child moves its accounting into a region of its own (copying the parent's open
//!   sockets, counters zeroed; a child that inherited none makes it when it first needs one):
//!   a free slot of the nursery its parent made at its first fork (`nursery.rs`), else a memfd.
//!   When it first touches a socket it hands that region to the shipper its parent already
//!   has, over the inherited *adoption channel* (a socketpair: the memfd and the region's offset
//!   in it, a link pipe of its own and a pidfd of itself, passed with `SCM_RIGHTS`); only
//!   if that fails (no channel, the shipper gone, its queue full) does it start its own.
//!   Starting a shipper is a clone and an exec, ~1 ms of CPU mostly while the child waits; a
//!   hand-over is one message.
//!
//! The embedding API still works: a snapshot is asked of the shipper through the region's
//! mailbox, and subscribers get the shipper's lines through a ring read by a small thread that
//! only a process with subscribers has. When the shipper cannot be used (no `sockmeter` binary
//! found, `SOCKMETER_SHIPPER=none`, no memfd) the shim falls back to its in-process thread.

use std::ffi::{c_void, CString};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicPtr, AtomicU8, Ordering::*};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sockmeter::keep::Keep;
use sockmeter::shared::Shared;

use super::collector::{EventCallback, Subscribers};
use super::{config, reg, say, shared, REGION};
use crate::platform;

/// The lowest fd number the region's memfd and the link pipe live at.
const HIGH_FD: libc::c_int = 230;

static HELPER_MODE: AtomicBool = AtomicBool::new(false);
/// The region's memfd, until a shipper has it.
pub static MEM_FD: AtomicI32 = AtomicI32::new(-1);
/// The host's end of the link to the shipper (a socketpair to a shipper it started, a pipe to
/// one it was handed to: `platform::exit_link`).
pub static LINK_FD: AtomicI32 = AtomicI32::new(-1);
/// The longest hand-over message a child sends (the shipper reads up to 64 KiB).
const MAX_ADOPTION_MESSAGE: usize = 60 * 1024;

/// The host's end of the adoption channel to the shipper (inherited by forked children, which
/// hand their regions to that shipper instead of starting one each).
pub static ADOPT_FD: AtomicI32 = AtomicI32::new(-1);
/// Set in a forked child that handed its nursery slot over as soon as it took it ([`install`]):
/// its shipper stays silent until the child starts shipping (`Shared::shipping`).
static SILENT: AtomicBool = AtomicBool::new(false);

/// Whether this process ships through a shipper process.
#[inline]
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
pub fn on() -> bool {
    HELPER_MODE.load(Relaxed)
}

fn shipper_exe() -> Option<CString> {
    let path = match platform::start_var("SOCKMETER_SHIPPER") {
        Some(p) if p == "none" => return None,
        Some(p) => std::path::PathBuf::from(p),
        None => platform::shim_dir()?.join("sockmeter"),
    };
    let meta = std::fs::metadata(&path).ok()?;
    use std::os::unix::fs::PermissionsExt;
    if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
        return None;
    }
    CString::new(path.into_os_string().into_encoded_bytes()).ok()
}

/// The shipper's path, published once (`crate::publish`): read with one load, so a forked child that
/// finds it set writes nothing (a lock's word would be one more page copied on write) and
/// never waits on a lock another thread of its parent held at the fork.
static EXE: AtomicPtr<CString> = AtomicPtr::new(std::ptr::null_mut());

fn exe() -> Option<&'static CString> {
    crate::publish::get(&EXE)
}

/// Where a region lives: a memfd of its own (until a shipper has it, `MEM_FD`), or a slot of
/// the nursery this process was forked with (`nursery::claimed`).
enum Place {
    Own(libc::c_int),
    Slot,
}

/// Moves the accounting into a fresh region, copying `from`: when `slot` (see
/// [`may_take_slot`]), a free slot of the nursery a forked child inherited, else a memfd of its
/// own. None if no region can be made.
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
fn new_region(from: &Shared, slot: bool) -> Option<(Place, &'static Shared)> {
    let claimed = if slot { super::nursery::claim() } else { None };
    let (place, region) = match claimed {
        Some(slot) => (Place::Slot, slot),
        None => {
            let (fd, p) = platform::create_region(c"sockmeter", std::mem::size_of::<Shared>(), HIGH_FD)?;
            // SAFETY: a fresh, zero-filled, writable shared mapping of exactly one `Shared`; an
            // all-zero `Shared` is a valid empty one (every field is an atomic or an array of
            // them).
            let region: &'static Shared = unsafe { &*(p as *const Shared) };
            (Place::Own(fd), region)
        }
    };
    region.registry.copy_from(&from.registry);
    region.names.copy_into_empty(&from.names);
    region.quiet.store(from.quiet.load(Acquire), Release);
    region.started_ms.store(from.started_ms.load(Acquire), Release);
    region.image.store(from.image.load(Acquire), Release);
    region.ending.store(from.ending.load(Acquire), Release);
    if let Place::Own(fd) = place {
        region.registry.fds.set(fd, sockmeter::registry::FdState::Ignored);
    }
    region.seal();
    Some((place, region))
}

fn reg_ignore(fd: libc::c_int) {
    shared().registry.fds.set(fd, sockmeter::registry::FdState::Ignored);
}

/// Shipper mode's region, by state: not configured, configured but not made yet, being made,
/// made (or found impossible: then `HELPER_MODE` stays false and the in-process thread ships).
const NONE: u8 = 0;
const PENDING: u8 = 1;
const MAKING: u8 = 2;
const SETTLED: u8 = 3;
static REGION_STATE: AtomicU8 = AtomicU8::new(NONE);

/// At load time: note whether a shipper is wanted (a reporter is configured). The region is made
/// by [`settle`] when the process first needs it (its first socket, its first thread), so a
/// program that never touches a socket pays nothing for it; made now when the process already
/// has threads (a host that loaded the shim late), since the switch must happen while nothing
/// else runs (see [`settle`]).
pub fn setup() {
    let cfg = config();
    if cfg.socket.is_none() || cfg.disabled {
        return;
    }
    REGION_STATE.store(PENDING, Release);
    if !platform::single_threaded() {
        settle();
    }
}

/// Whether shipper mode is configured and its region not made yet.
pub fn pending() -> bool {
    REGION_STATE.load(Acquire) == PENDING
}

/// Makes shipper mode's region if it is wanted and not made yet: moves the accounting from the
/// static region into a memfd mapping the shipper can map. Called before the first socket is
/// registered (`runtime::start_now`, from the hook that met it) and before the first thread is
/// created (the `pthread_create` hook), so the process is single-threaded when the region
/// pointer switches: no other thread can hold a record of the static region, and the copy
/// takes everything the static region held (fds known not to be sockets, names, notices).
/// Not in a vfork child (it shares our memory but not our fds).
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
pub fn settle() {
    if REGION_STATE.load(Acquire) == SETTLED || !super::owns_region() {
        return;
    }
    match REGION_STATE.compare_exchange(PENDING, MAKING, AcqRel, Acquire) {
        Ok(_) => {
            // No signal handler of the host's runs on this thread meanwhile: one that opened a
            // socket would find the region half made (and this thread waiting on itself).
            platform::spawn_blocking_signals(make_region);
            REGION_STATE.store(SETTLED, Release);
        }
        // Another thread (one the `pthread_create` hook did not see) is making it: wait for
        // it, briefly, so that nothing is registered in the static region after the copy.
        Err(MAKING) => {
            for _ in 0..(1 << 22) {
                if REGION_STATE.load(Acquire) != MAKING {
                    return;
                }
                std::hint::spin_loop();
            }
        }
        Err(_) => {}
    }
}

/// The region and the shipper's path, when one can be found.
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
fn make_region() {
    // A forked child knows the path already, from its parent.
    let found = match exe() {
        Some(_) => None,
        None => match shipper_exe() {
            Some(path) => Some(path),
            None => {
                // `sockmeter run` checks the variable before it runs anything; a host started
                // by hand (for `sockmeter listen`) hears it here, once, at its first socket.
                if let Some(p) = platform::start_var("SOCKMETER_SHIPPER").filter(|p| p != "none") {
                    let shown: String = p.to_string_lossy().chars().take(200).collect();
                    say(&format!(
                        "SOCKMETER_SHIPPER={shown:?}: not an executable file; this process ships from a thread of its own instead"
                    ));
                }
                return;
            }
        },
    };
    let Some((place, region)) = new_region(shared(), may_take_slot(shared())) else {
        return;
    };
    if let Some(path) = found {
        crate::publish::once(&EXE, || path);
    }
    install(place, region);
    HELPER_MODE.store(true, Release);
}

/// Starts this process's shipper. False if it could not be started (the caller falls back to
/// the in-process thread).
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
pub fn spawn(origin_fork: bool) -> bool {
    if SILENT.load(Acquire) {
        // Handed over silently: the shipper has the region and finds it shipping at its next
        // tick or at this process's end (`Shared::start_shipping`: no wake-up).
        shared().start_shipping();
        return true;
    }
    if origin_fork && adopt(false) {
        return true;
    }
    spawn_own(origin_fork)
}

/// Starts a shipper of this process's own (out of line: a handed-over child never runs it).
#[inline(never)]
fn spawn_own(origin_fork: bool) -> bool {
    let (mem, offset) = region_fd();
    let (Some(exe), true) = (exe(), mem >= 0) else {
        return false;
    };
    let Some((r, w)) = platform::link_pair(HIGH_FD) else {
        return false;
    };
    // A new adoption channel for this process's future children (an inherited one, whose
    // shipper did not take us, is dropped).
    let (adopt_host, adopt_shipper) = platform::adoption_pair(HIGH_FD).unwrap_or((-1, -1));
    let arg = |s: String| CString::new(s).unwrap_or_default();
    // Who we are, from us (the shipper may start after a short-lived host has exited).
    let mut args = vec![
        arg("sockmeter".into()),
        arg("__ship".into()),
        arg(format!("--mem={mem}")),
        arg(format!("--offset={offset}")),
        arg(format!("--link={r}")),
        arg(format!("--adopt={adopt_shipper}")),
        arg(format!("--pid={}", platform::pid())),
        arg(format!("--ppid={}", platform::ppid())),
        arg(format!("--exe={}", platform::exe_path_cached())),
        arg(format!("--origin={}", if origin_fork { "fork" } else { "start" })),
        arg("--".into()),
    ];
    args.extend(platform::cmdline().into_iter().map(arg));
    let spawned = platform::spawn_shipper(exe, &args, [mem, r, adopt_shipper]);
    // SAFETY: closing our own fds: the shipper has its copies.
    unsafe {
        libc::close(r);
        if adopt_shipper >= 0 {
            libc::close(adopt_shipper);
        }
    }
    match spawned {
        Ok(()) => {
            handed_over(w);
            replace_adopt_fd(adopt_host);
            true
        }
        Err(e) => {
            // SAFETY: our own fds.
            unsafe {
                libc::close(w);
                if adopt_host >= 0 {
                    libc::close(adopt_host);
                }
            }
            say(&format!(
                "cannot start the shipper {} ({}); reporting from a thread in the process instead",
                exe.to_string_lossy(),
                std::io::Error::from_raw_os_error(e)
            ));
            false
        }
    }
}

/// The shipper has the region: the host keeps only the link's write end `w`.
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
fn handed_over(w: libc::c_int) {
    let mem = MEM_FD.swap(-1, AcqRel);
    if mem >= 0 {
        // SAFETY: our own fd.
        unsafe { libc::close(mem) };
        reg().fds.set(mem, sockmeter::registry::FdState::Unknown);
    }
    reg_ignore(w);
    LINK_FD.store(w, Release);
}

fn replace_adopt_fd(new: libc::c_int) {
    let old = ADOPT_FD.swap(new, AcqRel);
    if old >= 0 && old != new {
        // SAFETY: our own fd, replaced.
        unsafe { libc::close(old) };
        reg().fds.set(old, sockmeter::registry::FdState::Unknown);
    }
    if new >= 0 {
        reg_ignore(new);
    }
}

/// A forked child hands its region to the shipper its parent already has: one message on the
/// inherited adoption channel carrying the region's memfd, the read end of a new link pipe of
/// its own (its exec; wake-ups go on the channel) and a pidfd of itself (its exit), and its pid,
/// parent and command line. Sending does not wait for the shipper: a message that was queued
/// is read before the shipper can see the channel end, and the shipper holds the region (so a
/// child that exits first still has its last counts shipped). False when there is no channel
/// or the message could not be queued (the shipper is gone, or its queue is full): then the
/// child starts a shipper of its own.
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
fn adopt(silent: bool) -> bool {
    let chan = ADOPT_FD.load(Acquire);
    let (mem, offset) = region_fd();
    if chan < 0 || mem < 0 {
        return false;
    }
    let pidfd = platform::pidfd_of(super::image_pid());
    if pidfd < 0 {
        return false;
    }
    let Some((r, w)) = platform::exit_link(HIGH_FD) else {
        // SAFETY: our own fd.
        unsafe { libc::close(pidfd) };
        return false;
    };
    // Built by hand: in a forked child, the formatting machinery's first use costs page faults.
    let mut head = Head::new();
    head.decimal(u64::from(super::image_pid()));
    head.decimal(u64::from(platform::ppid()));
    head.decimal(offset as u64);
    head.decimal(u64::from(silent));
    let sent = platform::send_with_fds(chan, &[head.bytes(), identity()], &[mem, r, pidfd]);
    // SAFETY: our copies; the message holds its own.
    unsafe {
        libc::close(r);
        libc::close(pidfd);
    }
    if !sent {
        // SAFETY: our own fd.
        unsafe { libc::close(w) };
        return false;
    }
    handed_over(w);
    true
}

/// The memfd the shipper maps for this process's region, and where in it the region starts: a
/// slot of the nursery, or a memfd of its own (offset 0).
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
fn region_fd() -> (libc::c_int, usize) {
    super::nursery::claimed().unwrap_or((MEM_FD.load(Acquire), 0))
}

/// The hand-over message's head (pid, parent, offset, silent: decimals, each ended by a NUL), on
/// the stack. By hand, not with `itoa` or the formatter: this runs in a forked child, to which
/// no page of the shim is mapped until it touches it, and itoa's code and digit table were two
/// more page faults there (`perf record -e page-faults`: ~2.5 µs each on this VM); the digits
/// go straight to their place (a copy would be a call to libc's `memcpy`, one more page).
/// The longest head: four numbers of up to 20 digits, each with its NUL.
const HEAD_MAX: usize = 4 * 21;

struct Head {
    buf: [u8; HEAD_MAX],
    len: usize,
}

impl Head {
    fn new() -> Self {
        Self {
            buf: [0; HEAD_MAX],
            len: 0,
        }
    }

    /// Appends `n` in decimal and a NUL (at most four numbers).
    #[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
    fn decimal(&mut self, n: u64) {
        let digits = n.checked_ilog10().unwrap_or(0) as usize + 1;
        let Some(room) = self.buf.get_mut(self.len..self.len + digits + 1) else {
            return;
        };
        let mut v = n;
        for d in room[..digits].iter_mut().rev() {
            *d = b'0' + (v % 10) as u8;
            v /= 10;
        }
        room[digits] = 0;
        self.len += digits + 1;
    }

    fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// The rest of every hand-over message of this image: the executable and the command line,
/// each ended by a NUL. Made once (the parent makes it before its first fork, so its children
/// send it as it is, without copying it).
static IDENTITY: AtomicPtr<Vec<u8>> = AtomicPtr::new(std::ptr::null_mut());

#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
fn identity() -> &'static [u8] {
    crate::publish::once(&IDENTITY, || {
        identity_of(platform::exe_path_cached(), platform::cmdline_ref())
    })
    .as_slice()
}

/// `exe` and `args`, each ended by a NUL; a command line too long for the shipper's read (64
/// KiB: a longer message would be cut, and with it the fds) is shortened, ending with "…".
fn identity_of(exe: &str, args: &[String]) -> Vec<u8> {
    let mut out = Vec::with_capacity(exe.len() + 1 + args.iter().map(|a| a.len() + 1).sum::<usize>());
    out.extend_from_slice(exe.as_bytes());
    out.push(0);
    const CUT: &[u8] = "…\0".as_bytes();
    for a in args {
        // Room for the head, and for the mark of a cut after this argument.
        if out.len() + a.len() + 1 + CUT.len() > MAX_ADOPTION_MESSAGE - HEAD_MAX {
            out.extend_from_slice(CUT);
            break;
        }
        out.extend_from_slice(a.as_bytes());
        out.push(0);
    }
    out
}

/// Before an exec: the shipper ships the last counts and says `bye` (reason exec) when the
/// link closes. After a failed exec: cleared again.
pub fn exec_pending(pending: bool) {
    shared().exec_pending.store(u32::from(pending), Release);
}

/// Before a fork, in the parent: a private snapshot of the region (the child inherits the
/// shared mapping, which the parent keeps changing; it needs the state as of the fork).
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
pub fn before_fork() {
    super::nursery::prepare(HIGH_FD, ADOPT_FD.load(Acquire) >= 0 && LINK_FD.load(Acquire) >= 0);
    let (local, now) = (super::local(), shared());
    if !std::ptr::eq(local, now) {
        // Made here, once, so that a child's hand-over sends it without copying it.
        if ADOPT_FD.load(Acquire) >= 0 {
            identity();
        }
        // The memfd and the link are closed in the child (`fork_child`).
        local
            .registry
            .copy_forgetting(&now.registry, &[MEM_FD.load(Acquire), LINK_FD.load(Acquire)]);
        local.names.copy_from(&now.names);
        local.quiet.keep(now.quiet.load(Acquire), Release);
    }
}

/// In a forked child: a region of its own (from the snapshot), and none of the parent's fds.
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
pub fn fork_child() {
    // The parent's subscribers and event thread are the parent's (there are some only if it
    // ever subscribed: a lock taken for nothing would cost the child a page copy).
    if EVENT_THREAD.load(Acquire) {
        EVENT_THREAD.store(false, Release);
        if let Ok(mut subs) = SUBSCRIBERS.try_lock() {
            *subs = Subscribers::new();
        }
    }
    super::nursery::fork_child();
    SILENT.keep(false, Relaxed);
    let local = super::local();
    // From here on the child counts into its private snapshot, never the parent's region.
    REGION.store(local as *const Shared as *mut Shared, Release);
    // The adoption channel stays: it is how this child reaches the parent's shipper.
    for fd in [&MEM_FD, &LINK_FD] {
        let f = fd.swap(-1, AcqRel);
        if f >= 0 {
            local.registry.fds.set(f, sockmeter::registry::FdState::Unknown);
            // SAFETY: the child's copy of the parent's fd.
            unsafe { libc::close(f) };
        }
    }
    // A child that holds none of its parent's sockets (most fork+exec children) is like a
    // fresh process: its region is made when it first needs one (`settle`), or never. One that
    // holds some counts on them from its first instruction: its region is made now.
    if local.registry.records.reset_after_fork() == 0 {
        HELPER_MODE.store(false, Release);
        REGION_STATE.store(PENDING, Release);
        return;
    }
    match new_region(local, on() && may_take_slot(local)) {
        Some((place, region)) => install(place, region),
        // No region: count privately and report from a thread.
        None => HELPER_MODE.store(false, Release),
    }
}

/// Whether a region made now from `from` may be a slot of an inherited nursery: a slot is
/// handed over as soon as it is taken (`install`), which needs the adoption channel, and a
/// quiet process (its run's reporter is gone) hands nothing over.
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
fn may_take_slot(from: &Shared) -> bool {
    ADOPT_FD.load(Acquire) >= 0 && from.quiet.load(Acquire) == 0
}

/// Makes `region` this process's (the caller has the process to itself: a fork child, or
/// `settle`). A slot of the nursery is handed over at once, *silently*: the process may exec or
/// exit without ever shipping (a child that holds its parent's sockets, or starts a thread
/// first), and the shipper, which says nothing for it until it ships (`Shared::shipping`),
/// gives the slot back then. If that hand-over cannot be made (the shipper is gone, its queue
/// is full), the process's first socket call tries again, as any child's does.
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
fn install(place: Place, region: &'static Shared) {
    REGION.store(region as *const Shared as *mut Shared, Release);
    match place {
        Place::Own(fd) => MEM_FD.store(fd, Release),
        Place::Slot => SILENT.store(adopt(true), Release),
    }
}

/// Whether this process handed its region over silently and has not started shipping: an exec
/// then ends it for the shipper as it does a shipping one.
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
pub fn handed_over_silently() -> bool {
    SILENT.load(Acquire) && !shared().ships()
}

/// Wakes the shipper: a byte on the adoption channel, which the shipper of every process that
/// has one reads (a handed-over child's link is a pipe it never writes), else on the link
/// (never blocks). Not from a signal handler that interrupted this thread while it held the fd
/// lock: the shipper's own timer wakes it.
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
fn wake() {
    let _ = super::sink::with_fd_lock(|| {
        if LINK_FD.load(Acquire) < 0 {
            return;
        }
        let chan = ADOPT_FD.load(Acquire);
        platform::poke(if chan >= 0 { chan } else { LINK_FD.load(Acquire) });
    });
}

/// Gives up on the shipper for this process (it could not be started).
pub fn disable() {
    HELPER_MODE.store(false, Release);
}

/// This process's report as JSON, asked of the shipper (None if it does not answer in time).
/// As in the in-process mode, what the shipper's pass produced has reached the subscribers
/// when this returns.
pub fn snapshot_json() -> Option<Vec<u8>> {
    let answer = ask_snapshot();
    if EVENT_THREAD.load(Acquire) {
        deliver_once();
    }
    answer
}

fn ask_snapshot() -> Option<Vec<u8>> {
    let s = shared();
    let n = s.snapshot.asked.fetch_add(1, AcqRel) + 1;
    wake();
    let deadline = Instant::now() + Duration::from_secs(5);
    while s.snapshot.answered.load(Acquire) < n {
        if Instant::now() > deadline || LINK_FD.load(Acquire) < 0 {
            return None;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Some(s.snapshot.read())
}

static SUBSCRIBERS: Mutex<Subscribers> = Mutex::new(Subscribers::new());
static EVENT_THREAD: AtomicBool = AtomicBool::new(false);

/// Registers a subscriber; the first one starts the thread that delivers the shipper's lines.
pub fn subscribe(cb: EventCallback, user: *mut c_void) -> u64 {
    let id = SUBSCRIBERS.lock().map(|mut subs| subs.add(cb, user)).unwrap_or(0);
    shared().subscribed.store(1, Release);
    if !EVENT_THREAD.swap(true, AcqRel) {
        let _ = platform::spawn_blocking_signals(|| {
            std::thread::Builder::new()
                .name("sockmeter-events".into())
                .spawn(deliver)
        });
    }
    id
}

/// Removes a subscriber; true if it existed. When it returns, its callback is not running.
pub fn unsubscribe(id: u64) -> bool {
    SUBSCRIBERS.lock().is_ok_and(|mut subs| subs.remove(id))
}

fn deliver() {
    crate::guard::enter_forever();
    loop {
        std::thread::sleep(Duration::from_millis(20));
        deliver_once();
    }
}

/// Hands every line the shipper queued to the subscribers (the subscriber lock makes this the
/// ring's only reader at a time).
fn deliver_once() {
    let Ok(mut subs) = SUBSCRIBERS.lock() else { return };
    let text = shared().events.take();
    for line in text.split_inclusive(|&b| b == b'\n') {
        subs.deliver(line);
    }
}

#[cfg(test)]
mod tests {
    use super::{identity_of, Head, HEAD_MAX, MAX_ADOPTION_MESSAGE};

    #[test]
    fn decimals_are_written_as_the_formatter_writes_them() {
        let all = [0, 1, 9, 10, 99, 100, 65_536, u64::from(u32::MAX), u64::MAX];
        for pair in all.chunks(2) {
            let mut head = Head::new();
            let mut want = String::new();
            for n in pair {
                head.decimal(*n);
                want.push_str(&format!("{n}\0"));
            }
            assert_eq!(head.bytes(), want.as_bytes());
        }
        let mut full = Head::new();
        for _ in 0..4 {
            full.decimal(u64::MAX);
        }
        assert_eq!(full.bytes().len(), HEAD_MAX);
    }

    #[test]
    fn an_identity_is_the_executable_and_the_arguments_and_a_long_one_is_cut() {
        let args: Vec<String> = ["w_forks", "4000"].iter().map(|s| s.to_string()).collect();
        assert_eq!(identity_of("/bin/w", &args), b"/bin/w\0w_forks\x004000\0");
        let long: Vec<String> = (0..20_000).map(|i| format!("a{i}")).collect();
        let cut = identity_of("/bin/w", &long);
        assert!(cut.len() + HEAD_MAX <= MAX_ADOPTION_MESSAGE, "the whole message fits");
        assert!(
            cut.len() > MAX_ADOPTION_MESSAGE - HEAD_MAX - 10,
            "cut only where it must be"
        );
        assert!(cut.ends_with("…\0".as_bytes()));
    }
}
