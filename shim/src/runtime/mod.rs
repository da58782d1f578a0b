//! The shim's process-wide state and its reporting thread.
//!
//! * [`reg()`]: the fd table and socket records the hooks write into (`sockmeter::registry`),
//!   a zero-initialised static that works before any constructor runs.
//! * The configuration, read once by [`init`] at load ([`ready`] ends the loading).
//! * Who ships: a shipper process (`helper`, under a reporter), or else the collector
//!   ([`collector::Collector`]) and its thread, started lazily the first time the process
//!   touches a socket (the reporter connection is made right then, by that hook, so the host's
//!   fd numbering is not disturbed by another thread). Either wakes every
//!   `min(interval, 100 ms)` and runs a pass when the region's change counter moved (hooks bump
//!   it when sockets appear, change or close) or the interval has passed.
//! * Process events, for the hooks' handlers (`hooks/process.rs`, which registers them):
//!   [`finish`] at exit and exec, [`fork_prepare`] and [`fork_child`] around a fork (the child
//!   is a new process with its own counters from the fork on, and a new connection; it must not
//!   touch the parent's lock or connection).
//!
//! The runtime calls nothing above it (`hooks`, `modules`): what it must run for them it is
//! given ([`on_thread_start`]).

pub mod collector;
pub mod helper;
pub mod nursery;
pub mod sink;

use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering::*};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use sockmeter::config::Config;
use sockmeter::keep::Keep;
use sockmeter::registry::Registry;
use sockmeter::shared::Shared;
use sockmeter::wire::{ByeReason, Origin};

use crate::{guard, platform};
use collector::Collector;

/// The region the hooks count into before a shared one exists, and when there is no shipper.
static LOCAL: Shared = Shared::new();
/// The region in use: `LOCAL` until a shared one exists (never null, so the per-byte path
/// reads it with one load and no test).
static REGION: AtomicPtr<Shared> = AtomicPtr::new(&LOCAL as *const Shared as *mut Shared);

/// The static region (before a shared one exists, and as a last resort in a forked child).
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
fn local() -> &'static Shared {
    &LOCAL
}

/// The region the hooks count into: registry, names, mailboxes.
#[inline]
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
pub fn shared() -> &'static Shared {
    // SAFETY: REGION only ever holds `LOCAL` or a mapping of a whole `Shared` that is never
    // unmapped.
    unsafe { &*REGION.load(Acquire) }
}

/// The fd table and socket records in use.
#[inline]
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
pub fn reg() -> &'static Registry {
    &shared().registry
}

static DISABLED: AtomicBool = AtomicBool::new(false);
static INITED: AtomicBool = AtomicBool::new(false);
static STARTED: AtomicBool = AtomicBool::new(false);
static FORKED: AtomicBool = AtomicBool::new(false);
/// The process whose region this is (set at load and in a forked child): a vfork child, which
/// shares our memory, has another pid.
static IMAGE_PID: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
/// The process the collector speaks for (set when it starts).
static OWNER_PID: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
static CONFIG: OnceLock<Config> = OnceLock::new();
static COLLECTOR: AtomicPtr<Mutex<Collector>> = AtomicPtr::new(std::ptr::null_mut());

const MAX_TICK_MS: u64 = 100;

/// False once the shim is disabled (by configuration, or after an internal panic).
#[inline]
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
pub fn active() -> bool {
    !DISABLED.load(Relaxed)
}

/// Whether the calling process owns the region (not a vfork child sharing our memory): one
/// `getpid`.
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
pub fn owns_region() -> bool {
    platform::pid() == IMAGE_PID.load(Acquire)
}

/// This image's pid (set at load and in the fork handler), without a system call: for code
/// that runs where [`owns_region`] holds (the region's making, a fork child's handler).
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
pub fn image_pid() -> u32 {
    IMAGE_PID.load(Acquire)
}

/// The configuration (defaults before `init`).
pub fn config() -> &'static Config {
    static DEFAULT: OnceLock<Config> = OnceLock::new();
    CONFIG.get().unwrap_or_else(|| DEFAULT.get_or_init(Config::default))
}

/// The module globs (`SOCKMETER_ATTRIBUTE`).
pub fn attribute_globs() -> &'static [String] {
    CONFIG.get().map(|c| c.attribute.as_slice()).unwrap_or(&[])
}

/// Queues a notice for the reporter (kind, one sentence). Not for the per-byte path. Both
/// modes read it from the region's notice ring (the shipper, or the reporting thread): a
/// notice queued before the mode is settled is found either way.
pub fn add_notice(kind: &str, text: String) {
    push_notice(kind, &text);
    ensure_started();
    notify();
}

/// Queues a notice in the region in use, made first if it is still to be made (a notice before
/// the first socket must not stay behind in the static region).
pub fn push_notice(kind: &str, text: &str) {
    settle_region();
    shared().push_notice(kind, text);
}

/// Before a socket is registered, or a thread created: shipper mode's region is made now if it
/// is wanted and not made yet (`helper::settle`, which says why then).
#[inline]
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
pub fn settle_region() {
    if helper::pending() {
        helper::settle();
    }
}

/// One line on stderr, prefixed `sockmeter:`. Only from shim code (guard held).
pub fn say(msg: &str) {
    // A host may have closed stderr and reused fd 2 for a socket: never write into that.
    // SAFETY: fstat with a valid out-pointer.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(2, &mut st) } != 0 || st.st_mode & libc::S_IFMT == libc::S_IFSOCK {
        return;
    }
    let line = format!("sockmeter: {msg}\n");
    // SAFETY: writing a valid buffer to fd 2; a failure is ignored (nowhere else to report).
    unsafe { libc::write(2, line.as_ptr() as *const c_void, line.len()) };
}

/// Called when a handler panicked: stop metering, keep the host running.
pub fn disable_after_panic() {
    if !DISABLED.swap(true, AcqRel) {
        say("internal error: metering is switched off for this process (the program is unaffected)");
    }
}

/// The configuration and the region, at load ([`ready`] ends the loading).
pub fn init() {
    guard::with(|| {
        std::panic::set_hook(Box::new(|_| {}));
        let (cfg, errs) = Config::from_lookup(platform::start_var);
        // Said when the process first touches a socket (`complain_once`), not here: under a
        // plain LD_PRELOAD every process of a script loads the shim, and only those with
        // something to meter should speak.
        let mut problems: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        if cfg.disabled && !problems.is_empty() {
            problems.clear();
        }
        let _ = PROBLEMS.set(problems);
        DISABLED.store(cfg.disabled, Relaxed);
        let _ = CONFIG.set(cfg);
        let loaded = platform::image_started_ms();
        let pid = platform::pid();
        IMAGE_PID.store(pid, Release);
        helper::setup();
        shared().started_ms.store(loaded, Relaxed);
        shared().image.store(platform::image_token(pid), Relaxed);
    });
}

/// The end of loading, once the layers above have set up what they need ([`init`] first):
/// the reporting side may start from now on, and starts now if a socket was met already (by a
/// hook that ran before the constructor).
pub fn ready() {
    guard::with(|| {
        INITED.store(true, Release);
        if EARLY.load(Acquire) {
            ensure_started();
        }
    });
}

/// Called once reporting has started (the reporting thread, or the shipper): set at load by the
/// hooks (the fatal-signal handlers behind the host's defaults, `hooks/signals.rs`).
static ON_THREAD_START: AtomicPtr<()> = AtomicPtr::new(std::ptr::null_mut());

/// Sets what runs when the reporting thread has started (see [`ON_THREAD_START`]).
pub fn on_thread_start(f: fn()) {
    ON_THREAD_START.store(f as *mut (), Release);
}

/// Runs what [`on_thread_start`] set, once reporting has started (either mode).
fn run_on_start() {
    let f = ON_THREAD_START.load(Acquire);
    if !f.is_null() {
        // SAFETY: only ever set by `on_thread_start`, from a `fn()`.
        let f = unsafe { std::mem::transmute::<*mut (), fn()>(f) };
        f();
    }
}

static PROBLEMS: OnceLock<Vec<String>> = OnceLock::new();
static REPORT_PATH_BAD: AtomicBool = AtomicBool::new(false);

/// False when the report path was already found unwritable (and said so).
pub fn report_path_was_fine() -> bool {
    !REPORT_PATH_BAD.load(Relaxed)
}

/// Says, once per process, what is wrong with the configuration (the first time the process
/// touches a socket).
fn complain_once() {
    for p in PROBLEMS.get().map(Vec::as_slice).unwrap_or(&[]) {
        say(p);
    }
    if let Some(r) = &config().report {
        check_report_path(r, &config().report_path(0).unwrap_or_default());
    }
}

fn check_report_path(pattern: &str, path: &str) {
    let dir = match std::path::Path::new(&path).parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let c = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).unwrap_or_default();
    // SAFETY: access with a valid C string.
    if unsafe { libc::access(c.as_ptr(), libc::W_OK) } != 0 {
        REPORT_PATH_BAD.store(true, Relaxed);
        say(&format!(
            "SOCKMETER_REPORT={pattern}: cannot write in {}: {}; the report will be lost unless that changes before exit",
            dir.display(),
            std::io::Error::last_os_error()
        ));
    }
}

/// Tells the reporting side something changed: the shipper or the reporting thread runs a
/// pass soon after the region's change counter moves. Never blocks, never allocates.
#[inline]
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
pub fn notify() {
    shared().changes.fetch_add(1, Relaxed);
    // A host thread opening or closing a socket: the moment to make the reporter connection's
    // spare, when one is wanted (thread mode, a reporter that reconnects; see `sink`).
    sink::spare_if_wanted();
}

fn collector() -> &'static Mutex<Collector> {
    // Reset to null (never freed) only in a fork child, which makes its own.
    crate::publish::once(&COLLECTOR, || {
        let origin = if FORKED.load(Relaxed) {
            Origin::Fork
        } else {
            Origin::Start
        };
        Mutex::new(Collector::new(origin))
    })
}

fn lock() -> MutexGuard<'static, Collector> {
    collector().lock().unwrap_or_else(|e| e.into_inner())
}

/// Starts the reporting thread if it is not running in this process yet.
#[inline]
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
pub fn ensure_started() {
    if STARTED.load(Relaxed) {
        return;
    }
    start();
}

/// A socket was met before the constructor ran (`ready` starts the reporting side then).
static EARLY: AtomicBool = AtomicBool::new(false);

#[cold]
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
fn start() {
    if !INITED.load(Acquire) {
        EARLY.store(true, Release);
        return;
    }
    // A vfork child shares our memory but not our fds: it must not make the region, nor mark
    // the process started for its parent.
    if helper::pending() && !owns_region() {
        return;
    }
    if STARTED.swap(true, AcqRel) {
        return;
    }
    // Called from the per-byte path, which does not restore errno itself.
    let e = platform::errno();
    guard::hold(start_now);
    platform::set_errno(e);
}

#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
fn start_now() {
    settle_region();
    OWNER_PID.store(platform::pid(), Release);
    if !FORKED.load(Relaxed) {
        complain_once();
    }
    // The run's reporter is gone or ended the run (a forked child of a process that learnt
    // it): count on, quietly, with nobody to ship to.
    if shared().quiet.load(Acquire) != 0 {
        return;
    }
    if helper::on() {
        if helper::spawn(FORKED.load(Relaxed)) {
            // The shipper reads a dead host's counters, but not what the call a fatal signal
            // interrupted moved: the handler behind the defaults reads the kernel's witness.
            run_on_start();
            return;
        }
        helper::disable();
    }
    // Connect now, in the calling thread (a hook, with the guard held): the socket briefly takes
    // the lowest free fd before moving to a high number, and doing that here, rather than in
    // the reporting thread, means no host thread can be handed a different fd number meanwhile
    // (a single-threaded host sees exactly the fd numbers it would without the shim).
    lock().connect(true);
    let spawned = platform::spawn_blocking_signals(|| {
        std::thread::Builder::new()
            .name("sockmeter".into())
            .stack_size(256 * 1024)
            .spawn(reporting_thread)
    });
    match spawned {
        Ok(_) => {
            THREAD_PID.store(platform::pid(), Release);
            run_on_start();
        }
        Err(_) => say("cannot start the reporting thread; counts are kept and written at exit"),
    }
}

/// The process whose reporting thread is running (a forked child has none until it starts
/// its own).
static THREAD_PID: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
/// A fatal signal asked the reporting thread for its last pass.
static DYING: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);
/// The reporting thread has done it.
static DIED: AtomicBool = AtomicBool::new(false);

/// Called from the handler behind a fatal signal's default (thread mode): records how the
/// process ends and waits, at most 2 s, for the reporting thread's last pass and `bye`. Only
/// atomics and nanosleep: async-signal-safe.
pub fn last_pass_before_dying(sig: libc::c_int) {
    if THREAD_PID.load(Acquire) != platform::pid() || !owns_region() {
        return;
    }
    shared().set_ending(sockmeter::wire::ExitStatus {
        exit_code: None,
        signal: Some(sig),
    });
    DYING.store(sig, Release);
    platform::wake_one(&DYING);
    for _ in 0..2000 {
        if DIED.load(Acquire) {
            return;
        }
        let ms = libc::timespec {
            tv_sec: 0,
            tv_nsec: 1_000_000,
        };
        // SAFETY: nanosleep with a valid timespec.
        unsafe { libc::nanosleep(&ms, std::ptr::null_mut()) };
    }
}

fn reporting_thread() {
    guard::enter_forever();
    let interval = Duration::from_millis(config().interval_ms);
    let tick = Duration::from_millis(config().interval_ms.min(MAX_TICK_MS));
    let mut last = Instant::now();
    let mut seen = u64::MAX;
    loop {
        if DYING.load(Acquire) != 0 {
            lock().finish(ByeReason::Exit);
            DIED.store(true, Release);
            return;
        }
        let changes = shared().changes.load(Acquire);
        {
            let mut c = lock();
            c.service();
            if (changes != seen || last.elapsed() >= interval) && c.ready() {
                seen = changes;
                last = Instant::now();
                c.pass();
            }
        }
        // A nap that a fatal signal cuts short (its last pass starts at once).
        platform::wait_while_zero(&DYING, tick);
    }
}

/// Ships everything pending and says goodbye (exit or exec). Returns whether anything was
/// finished (false when the process never touched a socket).
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
pub fn finish(reason: ByeReason) -> bool {
    if helper::on() {
        // The shipper sees the exit (pidfd) or the exec (the link closing) itself; an exec
        // it learns of from `exec_pending`.
        if reason != ByeReason::Exec {
            return false;
        }
        let ships = STARTED.load(Acquire) && platform::pid() == OWNER_PID.load(Acquire);
        // A child handed over silently (not a vfork child in its memory) is ended by its exec
        // for the shipper too: its nursery slot goes back.
        let silent = helper::handed_over_silently() && owns_region();
        if ships || silent {
            helper::exec_pending(true);
            return true;
        }
        return false;
    }
    if !STARTED.load(Acquire) || COLLECTOR.load(Acquire).is_null() {
        return false;
    }
    // A vfork child shares our memory (and must not take our lock or allocate): it must not
    // speak for us.
    if platform::pid() != OWNER_PID.load(Acquire) {
        return false;
    }
    lock().finish(reason)
}

/// After an exec that failed: metering goes on, on a new connection.
pub fn resume_after_failed_exec() {
    if helper::on() {
        helper::exec_pending(false);
        return;
    }
    if !COLLECTOR.load(Acquire).is_null() {
        lock().resume();
    }
}

/// Before a fork, in the parent (the caller holds the guard): a shipper's region is
/// snapshotted for the child.
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
pub fn fork_prepare() {
    if helper::on() {
        helper::before_fork();
    }
}

/// In a forked child, whose pid is `pid` (the caller holds the guard): the parent's thread,
/// lock and connection are not ours; the child gets accounting of its own and starts over.
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
pub fn fork_child(pid: u32) {
    // `keep`: a store of what is there already would cost the child a page copy.
    STARTED.keep(false, Relaxed);
    FORKED.keep(true, Relaxed);
    COLLECTOR.keep(std::ptr::null_mut(), Release);
    sink::Sink::abandon_inherited();
    let forked = platform::now_ms();
    IMAGE_PID.store(pid, Release);
    if helper::on() {
        helper::fork_child();
    } else {
        let _ = reg().records.reset_after_fork();
    }
    shared().started_ms.store(forked, Relaxed);
    shared().image.store(platform::image_token(pid), Relaxed);
}

/// Whether `fd` is one of the shim's own (the reporter connection, the shipper's region, link
/// and adoption channel).
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
pub fn owns_fd(fd: libc::c_int) -> bool {
    fd >= 0 && sink::own_fds().iter().any(|s| s.load(Acquire) == fd)
}

/// If the host is about to close or replace the reporter connection's fd, move it first.
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
pub fn protect_own_fd(fd: libc::c_int) {
    sink::protect(fd, 0);
}

/// As [`protect_own_fd`], for a range of fds: each of the shim's own fds (the reporter
/// connection, the shipper's link and region) moves above the range if it can.
pub fn protect_own_fd_range(first: libc::c_uint, last: libc::c_uint) {
    let above = libc::c_int::try_from(last)
        .ok()
        .and_then(|l| l.checked_add(1))
        .unwrap_or(libc::c_int::MAX);
    for own in sink::own_fds() {
        let fd = own.load(Acquire);
        if fd >= 0 && (fd as libc::c_uint) >= first && (fd as libc::c_uint) <= last {
            sink::protect(fd, above);
        }
    }
}

/// This process's report as JSON, after a fresh pass (the embedding API).
pub fn snapshot_json() -> Option<String> {
    settle_region();
    if helper::on() {
        ensure_started();
        if helper::on() {
            let text = helper::snapshot_json()?;
            return (!text.is_empty()).then(|| String::from_utf8_lossy(&text).into_owned());
        }
    }
    let mut c = lock();
    c.pass();
    serde_json::to_string(&c.snapshot_report()).ok()
}

/// Registers an in-process subscriber (the embedding API).
pub fn subscribe(cb: collector::EventCallback, user: *mut c_void) -> u64 {
    ensure_started();
    if helper::on() {
        return helper::subscribe(cb, user);
    }
    lock().subscribe(cb, user)
}

/// Removes an in-process subscriber.
pub fn unsubscribe(id: u64) -> bool {
    if helper::on() {
        return helper::unsubscribe(id);
    }
    lock().unsubscribe(id)
}
