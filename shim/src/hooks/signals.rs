//! The host's signal handlers, behind a trampoline.
//!
//! A signal handler of the host's is host code even when the signal interrupted shim code (a
//! hook's after-handler, a stack walk): the socket calls it makes must be counted, on the right
//! socket, at any nesting. The re-entrancy guard cannot tell a handler's `socket()` from one the
//! shim made itself, so the shim installs every handler the host installs through libc
//! (`sigaction`, `signal` and its kin) behind [`trampoline`], which clears the guard for the
//! host's handler and puts it back when the handler returns (a handler that `longjmp`s out
//! leaves the guard clear, which is right: it jumps into host code).
//!
//! The host sees nothing of it: the kernel gets the host's own flags and mask, only the address
//! differs, and every way of reading a disposition back (`sigaction`'s old action, `signal`'s
//! return value) gives the host's handler. `SIG_DFL` and `SIG_IGN` go to the kernel unchanged.
//! A handler installed with a raw `rt_sigaction` system call is not seen (it runs without the
//! trampoline; only its calls made while shim code runs on its thread pass uncounted).
//!
//! The trampoline touches one atomic and the guard's thread-local flag: async-signal-safe.
//!
//! **Fatal signals.** A process killed by a signal (Ctrl-C's SIGINT, a SIGTERM, a SIGPIPE)
//! dies inside whatever call it was in: a send blocked on a full buffer never returns to its
//! hook, and what it queued is only in the kernel's count. And a process that reports from its
//! own thread would take its last interval's counts with it. So once reporting runs (either
//! mode), the signals whose default action ends the process and that the host left at
//! `SIG_DFL` get [`fatal`] as their handler ([`arm_fatal`]): it reads the kernel witness of
//! every TCP socket still open, asks the reporting thread (thread mode) for a last pass
//! (bounded), then restores the default and raises the signal again, so the process dies of
//! it as it would have (same wait status, a core dump for SIGQUIT). The host still reads
//! `SIG_DFL` back, and a host that sets `SIG_DFL` itself once reporting runs gets the handler
//! behind it, whatever the signal's disposition was when reporting started (Python dies of an
//! uncaught KeyboardInterrupt that way). Under a shipper the shipper reads the dead host's
//! counters, witness included.

#![allow(clippy::not_unsafe_ptr_arg_deref)]

use std::sync::atomic::{AtomicUsize, Ordering::*};

use libc::{c_int, c_void, sighandler_t, siginfo_t};

use crate::guard;
use crate::hooks::table::Rewrite;

/// Signals 1..=64 (index 0 unused).
const SIGNALS: usize = 65;

/// The host's handler for each signal, as it installed it (0: none seen).
static HOST: [AtomicUsize; SIGNALS] = [const { AtomicUsize::new(0) }; SIGNALS];

const SIG_ERR: sighandler_t = usize::MAX;
/// `sigset`'s "blocked" disposition.
const SIG_HOLD: sighandler_t = 2;

/// Whether `h` is a function (not `SIG_DFL`, `SIG_IGN`, `SIG_HOLD` or `SIG_ERR`).
fn is_function(h: sighandler_t) -> bool {
    h > SIG_HOLD && h != SIG_ERR
}

fn slot(sig: c_int) -> Option<&'static AtomicUsize> {
    usize::try_from(sig).ok().filter(|&s| s > 0).and_then(|s| HOST.get(s))
}

/// The address the kernel gets instead of the host's handler.
fn trampoline_addr() -> sighandler_t {
    trampoline as *const () as sighandler_t
}

/// Signals whose default action ends the process, given [`fatal`] in thread mode: the ones
/// sent to a process (and `abort()`'s SIGABRT, which it raises itself and lets a handler run
/// first). Not the faults a bad instruction raises (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP),
/// where the process's memory is suspect, nor SIGSYS (seccomp: the last pass's own calls may
/// be the ones refused), nor the real-time signals (glibc uses the first two itself).
const FATAL: [c_int; 13] = [
    libc::SIGHUP,
    libc::SIGINT,
    libc::SIGQUIT,
    libc::SIGTERM,
    libc::SIGPIPE,
    libc::SIGALRM,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGABRT,
    libc::SIGXCPU,
    libc::SIGXFSZ,
    libc::SIGVTALRM,
    libc::SIGPROF,
];

/// Which signals have [`fatal`] behind the host's `SIG_DFL`.
static ARMED: [std::sync::atomic::AtomicBool; SIGNALS] = [const { std::sync::atomic::AtomicBool::new(false) }; SIGNALS];
/// Set once reporting has started ([`arm_fatal`]): from then on a fatal signal the
/// host *sets* to `SIG_DFL` gets [`fatal`] behind it too, not only one that was at `SIG_DFL`
/// when the thread started. (Python installs its own SIGINT handler at start, and after an
/// uncaught KeyboardInterrupt sets `SIG_DFL` and raises SIGINT again to die of it: without
/// this, the counts since the last pass died with it.)
static FATAL_ON: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether a `SIG_DFL` the host asks for `sig` gets [`fatal`] behind it.
fn fatal_behind_default(sig: c_int) -> bool {
    armed(sig) || (FATAL_ON.load(Acquire) && FATAL.contains(&sig))
}

#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
fn set_armed(sig: c_int, on: bool) {
    if let Some(a) = usize::try_from(sig).ok().and_then(|s| ARMED.get(s)) {
        a.store(on, Release);
    }
}

fn fatal_addr() -> sighandler_t {
    fatal as *const () as sighandler_t
}

#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
fn armed(sig: c_int) -> bool {
    usize::try_from(sig)
        .ok()
        .and_then(|s| ARMED.get(s))
        .is_some_and(|a| a.load(Acquire))
}

/// Installs [`fatal`] for every fatal signal the host leaves at `SIG_DFL` (once reporting
/// starts, in either mode). Uses the real `sigaction` directly.
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
pub fn arm_fatal() {
    let Some(real) = crate::hooks::sigaction::real() else {
        return;
    };
    // Armed already: in a forked child, whose dispositions are its parent's.
    if FATAL_ON.swap(true, AcqRel) {
        return;
    }
    for sig in FATAL {
        // SAFETY: an all-zero sigaction is a valid value; the real sigaction reads and writes
        // our own structs.
        unsafe {
            let mut old: libc::sigaction = std::mem::zeroed();
            if real(sig, std::ptr::null(), &mut old) != 0 || old.sa_sigaction != libc::SIG_DFL {
                continue;
            }
            let mut act: libc::sigaction = std::mem::zeroed();
            act.sa_sigaction = fatal_addr();
            act.sa_flags = libc::SA_RESTART;
            libc::sigfillset(&mut act.sa_mask);
            if let Some(a) = ARMED.get(sig as usize) {
                a.store(true, Release);
            }
            if real(sig, &act, std::ptr::null_mut()) != 0 {
                if let Some(a) = ARMED.get(sig as usize) {
                    a.store(false, Release);
                }
            }
        }
    }
}

/// Puts the handlers already installed behind the trampoline, as if they had come through the
/// hooks: the preload stage loads the shim late, and passes the host's earlier `sigaction` and
/// `signal` calls straight to libc. Uses the real `sigaction`; the signals libc keeps for
/// itself refuse it and are left alone.
pub fn adopt_installed() {
    let Some(real) = crate::hooks::sigaction::real() else {
        return;
    };
    for sig in 1..SIGNALS as c_int {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        let Some(s) = slot(sig) else { continue };
        // SAFETY: an all-zero sigaction is a valid value; the real sigaction reads and writes
        // our own structs.
        unsafe {
            let mut old: libc::sigaction = std::mem::zeroed();
            if real(sig, std::ptr::null(), &mut old) != 0 || !is_function(old.sa_sigaction) {
                continue;
            }
            if old.sa_sigaction == trampoline_addr() || old.sa_sigaction == fatal_addr() {
                continue;
            }
            s.store(old.sa_sigaction, Release);
            let mut act = old;
            act.sa_sigaction = trampoline_addr();
            if real(sig, &act, std::ptr::null_mut()) != 0 {
                s.store(0, Release);
            }
        }
    }
}

/// The handler behind a fatal signal's `SIG_DFL` (see the module docs).
extern "C" fn fatal(sig: c_int) {
    let e = crate::platform::errno();
    // The call the signal interrupted (a send blocked on a full buffer) never returns to its
    // hook: what it moved is only in the kernel's counts. Read them now, for every TCP socket
    // still open, while the fds exist (a vfork child's sockets are its parent's).
    if crate::runtime::owns_region() {
        crate::hooks::witness::at_exit(false);
    }
    crate::runtime::last_pass_before_dying(sig);
    // Back to the default, then the same signal again: it is blocked while this handler runs,
    // and kills the process the moment the handler returns.
    if let Some(real) = crate::hooks::sigaction::real() {
        // SAFETY: an all-zero sigaction with SIG_DFL is a valid action.
        unsafe {
            let mut dfl: libc::sigaction = std::mem::zeroed();
            dfl.sa_sigaction = libc::SIG_DFL;
            real(sig, &dfl, std::ptr::null_mut());
        }
    }
    if let Some(a) = ARMED.get(sig as usize) {
        a.store(false, Release);
    }
    // SAFETY: raise is async-signal-safe.
    unsafe { libc::raise(sig) };
    crate::platform::set_errno(e);
}

/// Runs the host's handler for `sig` as host code (see the module docs). Called with the three
/// arguments of an `SA_SIGINFO` handler; a plain handler is called with the same registers and
/// reads only the first (C's calling conventions on the platforms the shim supports), so one
/// trampoline serves both kinds whatever flags the host chose.
extern "C" fn trampoline(sig: c_int, info: *mut siginfo_t, uc: *mut c_void) {
    let h = slot(sig).map_or(0, |s| s.load(Acquire));
    if !is_function(h) {
        return;
    }
    let was = guard::suspend();
    // SAFETY: `h` is the function the host installed for `sig` (as a handler of one of the two
    // kinds); calling either kind with these arguments is what the kernel itself would do.
    let f = unsafe { std::mem::transmute::<sighandler_t, extern "C" fn(c_int, *mut siginfo_t, *mut c_void)>(h) };
    f(sig, info, uc);
    guard::restore(was);
}

/// A `sigaction` call in progress.
pub struct SigactionCall {
    sig: c_int,
    /// The host's action with the trampoline in place of its handler.
    act: libc::sigaction,
    /// Whether the real call gets `act` instead of the host's.
    swapped: bool,
    /// The host handler recorded before this call (to read back, or to restore on failure).
    prev: sighandler_t,
    /// The real call puts [`fatal`] behind the host's `SIG_DFL`.
    arms: bool,
}

type SigactionArgs = (c_int, *const libc::sigaction, *mut libc::sigaction);

/// `sigaction` and `__sigaction`.
pub fn sigaction(sig: c_int, act: *const libc::sigaction, _old: *mut libc::sigaction) -> SigactionCall {
    // SAFETY: an all-zero sigaction is a valid value.
    let mut call = SigactionCall {
        sig,
        act: unsafe { std::mem::zeroed() },
        swapped: false,
        prev: 0,
        arms: false,
    };
    let Some(s) = slot(sig) else { return call };
    call.prev = s.load(Acquire);
    if act.is_null() {
        return call;
    }
    // SAFETY: the host passed a readable `struct sigaction` (libc reads it too).
    let a = unsafe { std::ptr::read(act) };
    if is_function(a.sa_sigaction) {
        call.act = a;
        call.act.sa_sigaction = trampoline_addr();
        call.swapped = true;
        s.store(a.sa_sigaction, Release);
    } else if a.sa_sigaction == libc::SIG_DFL && fatal_behind_default(sig) {
        // The host asks for the default: the last pass stays behind it.
        call.act = a;
        call.act.sa_sigaction = fatal_addr();
        call.act.sa_flags = libc::SA_RESTART;
        // As `arm_fatal` does: no other signal's handler runs inside the last pass.
        // SAFETY: sigfillset on our own set.
        unsafe { libc::sigfillset(&mut call.act.sa_mask) };
        call.swapped = true;
        call.arms = true;
        s.store(0, Release);
    } else if armed(sig) {
        // SIG_IGN: nothing to do at a death that will not come.
        if let Some(a) = ARMED.get(sig as usize) {
            a.store(false, Release);
        }
    }
    call
}

impl Rewrite<SigactionArgs, c_int> for SigactionCall {
    fn args(&mut self, (sig, act, old): SigactionArgs) -> SigactionArgs {
        if self.swapped {
            (sig, &self.act, old)
        } else {
            (sig, act, old)
        }
    }

    fn result(&mut self, ret: c_int, _errno: c_int, (_, _, old): SigactionArgs) -> c_int {
        if ret != 0 {
            if self.swapped {
                if let Some(s) = slot(self.sig) {
                    s.store(self.prev, Release);
                }
            }
            return ret;
        }
        if self.arms {
            set_armed(self.sig, true);
        }
        if !old.is_null() {
            // SAFETY: the real sigaction succeeded and wrote the old action into `*old`.
            let o = unsafe { &mut *old };
            if o.sa_sigaction == trampoline_addr() {
                o.sa_sigaction = self.prev;
            } else if o.sa_sigaction == fatal_addr() {
                // What the host left: the default, with no flags and an empty mask.
                // SAFETY: an all-zero sigaction is SIG_DFL with no flags and an empty mask.
                *o = unsafe { std::mem::zeroed() };
            }
        }
        ret
    }
}

/// A `signal`-family call in progress (`signal`, `bsd_signal`, `ssignal`, `sysv_signal`,
/// `__sysv_signal`, `sigset`): one handler in, the previous disposition out.
pub struct SignalCall {
    sig: c_int,
    swapped: bool,
    prev: sighandler_t,
    /// The real call puts [`fatal`] behind the host's `SIG_DFL`.
    arms: bool,
}

/// Every `signal`-family function.
pub fn signal(sig: c_int, handler: sighandler_t) -> SignalCall {
    let mut call = SignalCall {
        sig,
        swapped: false,
        prev: 0,
        arms: false,
    };
    let Some(s) = slot(sig) else { return call };
    if is_function(handler) {
        call.prev = s.swap(handler, AcqRel);
        call.swapped = true;
    } else {
        call.prev = s.load(Acquire);
        if handler != libc::SIG_DFL && armed(sig) {
            if let Some(a) = ARMED.get(sig as usize) {
                a.store(false, Release);
            }
        }
    }
    call
}

impl Rewrite<(c_int, sighandler_t), sighandler_t> for SignalCall {
    fn args(&mut self, (sig, handler): (c_int, sighandler_t)) -> (c_int, sighandler_t) {
        if self.swapped {
            (sig, trampoline_addr())
        } else if handler == libc::SIG_DFL && fatal_behind_default(sig) {
            // The host asks for the default: the last pass stays behind it.
            self.arms = true;
            (sig, fatal_addr())
        } else {
            (sig, handler)
        }
    }

    fn result(&mut self, ret: sighandler_t, _errno: c_int, _: (c_int, sighandler_t)) -> sighandler_t {
        if ret == SIG_ERR {
            if self.swapped {
                if let Some(s) = slot(self.sig) {
                    s.store(self.prev, Release);
                }
            }
            return ret;
        }
        if self.arms {
            set_armed(self.sig, true);
        }
        if ret == trampoline_addr() {
            self.prev
        } else if ret == fatal_addr() {
            libc::SIG_DFL
        } else {
            ret
        }
    }
}
