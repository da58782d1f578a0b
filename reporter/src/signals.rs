//! Signal handling of `sockmeter run`.
//!
//! SIGTERM and SIGHUP sent to the reporter are forwarded to the command (the handler only
//! calls `kill`, which is async-signal-safe). SIGINT and SIGQUIT are caught and dropped while
//! the command runs: the terminal delivers Ctrl-C to the whole foreground process group, so
//! the command gets it and the reporter lives on to print the report.
//!
//! The handlers are installed *before* the command is spawned, so there is no moment where
//! Ctrl-C could kill the reporter but not the command; a caught signal is reset to its default
//! in the command by exec, so the command sees the dispositions it would see without
//! sockmeter. A signal ignored when sockmeter started (`nohup`, a background job) is left
//! ignored, for the reporter and the command alike.
//!
//! A signal that arrives when no command is running (before the spawn, or in the grace
//! period after it ended) is recorded in [`pending`], so the caller can stop waiting.

use std::sync::atomic::{AtomicI32, Ordering};

use anyhow::Result;

static CHILD: AtomicI32 = AtomicI32::new(0);
static PENDING: AtomicI32 = AtomicI32::new(0);

/// SIGTERM, SIGHUP: passed on to the command.
extern "C" fn on_forwarded(sig: libc::c_int) {
    let pid = CHILD.load(Ordering::SeqCst);
    if pid > 0 {
        // SAFETY: kill is async-signal-safe and `pid` is our own child, not yet reaped.
        unsafe { libc::kill(pid, sig) };
    } else {
        PENDING.store(sig, Ordering::SeqCst);
    }
}

/// SIGINT, SIGQUIT: the command got them from the terminal; only noted when it is not running.
extern "C" fn on_interactive(sig: libc::c_int) {
    if CHILD.load(Ordering::SeqCst) <= 0 {
        PENDING.store(sig, Ordering::SeqCst);
    }
}

/// Whether `sig` is ignored right now.
fn ignored(sig: libc::c_int) -> Result<bool> {
    // SAFETY: an all-zero sigaction is a valid buffer for sigaction to fill in.
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: a null new action only queries the current one into `old`.
    if unsafe { libc::sigaction(sig, std::ptr::null(), &mut old) } != 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    Ok(old.sa_sigaction == libc::SIG_IGN)
}

/// Installs `handler` for `sig`, unless `sig` was ignored when we started.
fn catch(sig: libc::c_int, handler: extern "C" fn(libc::c_int)) -> Result<()> {
    if ignored(sig)? {
        return Ok(());
    }
    // SAFETY: an all-zero sigaction is a valid value to fill in.
    let mut sa: libc::sigaction = unsafe { std::mem::zeroed() };
    sa.sa_sigaction = handler as libc::sighandler_t;
    sa.sa_flags = libc::SA_RESTART;
    // SAFETY: `sa.sa_mask` is a valid sigset_t owned by `sa`.
    unsafe { libc::sigemptyset(&mut sa.sa_mask) };
    // SAFETY: `sa` is fully initialised; the handlers only touch atomics and call kill.
    if unsafe { libc::sigaction(sig, &sa, std::ptr::null_mut()) } != 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    Ok(())
}

/// Installs the handlers; call before spawning the command.
pub fn install() -> Result<()> {
    catch(libc::SIGTERM, on_forwarded)?;
    catch(libc::SIGHUP, on_forwarded)?;
    catch(libc::SIGINT, on_interactive)?;
    catch(libc::SIGQUIT, on_interactive)?;
    Ok(())
}

/// The command is running as `pid`: forward to it from now on, including a SIGTERM or SIGHUP
/// that arrived during the spawn.
pub fn child_started(pid: u32) {
    let pid = libc::pid_t::try_from(pid).unwrap_or(0);
    CHILD.store(pid, Ordering::SeqCst);
    let early = PENDING.swap(0, Ordering::SeqCst);
    if pid > 0 && (early == libc::SIGTERM || early == libc::SIGHUP) {
        // SAFETY: `pid` is our child, just spawned and not yet reaped.
        unsafe { libc::kill(pid, early) };
    }
}

/// The command was reaped: stop forwarding (its pid could be reused); from now on SIGINT,
/// SIGQUIT, SIGTERM and SIGHUP only end the wait for descendants (see [`pending`]).
pub fn child_reaped() {
    CHILD.store(0, Ordering::SeqCst);
}

/// A signal that arrived while no command was running, if any.
pub fn pending() -> Option<i32> {
    match PENDING.load(Ordering::SeqCst) {
        0 => None,
        s => Some(s),
    }
}
