//! Signal handling of `sockmeter run`.
//!
//! SIGTERM and SIGHUP sent to the reporter are forwarded to the command (the handler only
//! calls `kill`, which is async-signal-safe). SIGINT and SIGQUIT are ignored once the command
//! runs: the terminal delivers Ctrl-C to the whole foreground process group, so the command
//! gets it and the reporter lives on to print the report. A signal that arrives when no
//! command is running (SIGINT included once the command has ended) (before the spawn, or in the grace period after it ended) is recorded
//! in [`pending`], so the caller can stop waiting.

use std::sync::atomic::{AtomicI32, Ordering};

use anyhow::Result;

static CHILD: AtomicI32 = AtomicI32::new(0);
static PENDING: AtomicI32 = AtomicI32::new(0);

extern "C" fn forward(sig: libc::c_int) {
    let pid = CHILD.load(Ordering::SeqCst);
    if pid > 0 {
        // SAFETY: kill is async-signal-safe and `pid` is our own child, not yet reaped.
        unsafe { libc::kill(pid, sig) };
    } else {
        PENDING.store(sig, Ordering::SeqCst);
    }
}

fn set_handler(sig: libc::c_int, handler: libc::sighandler_t) -> Result<()> {
    // SAFETY: an all-zero sigaction is a valid value to fill in; sigemptyset initialises the mask.
    let mut sa: libc::sigaction = unsafe { std::mem::zeroed() };
    sa.sa_sigaction = handler;
    sa.sa_flags = libc::SA_RESTART;
    // SAFETY: `sa.sa_mask` is a valid sigset_t owned by `sa`.
    unsafe { libc::sigemptyset(&mut sa.sa_mask) };
    // SAFETY: `sa` is fully initialised; the handler (if any) only touches atomics and kill.
    if unsafe { libc::sigaction(sig, &sa, std::ptr::null_mut()) } != 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    Ok(())
}

/// Installs the SIGTERM/SIGHUP forwarders (before spawning: handlers reset to the default in
/// the child at exec, so the command is unaffected).
pub fn install_forwarders() -> Result<()> {
    let handler = forward as extern "C" fn(libc::c_int) as libc::sighandler_t;
    set_handler(libc::SIGTERM, handler)?;
    set_handler(libc::SIGHUP, handler)?;
    Ok(())
}

/// The command is running as `pid`: forward to it from now on, including a signal that
/// arrived during the spawn; and ignore SIGINT/SIGQUIT in the reporter.
pub fn child_started(pid: u32) -> Result<()> {
    let pid = libc::pid_t::try_from(pid).unwrap_or(0);
    CHILD.store(pid, Ordering::SeqCst);
    let early = PENDING.swap(0, Ordering::SeqCst);
    if early != 0 && pid > 0 {
        // SAFETY: `pid` is our child, just spawned and not yet reaped.
        unsafe { libc::kill(pid, early) };
    }
    set_handler(libc::SIGINT, libc::SIG_IGN)?;
    set_handler(libc::SIGQUIT, libc::SIG_IGN)?;
    Ok(())
}

/// The command was reaped: stop forwarding (its pid could be reused), and let SIGINT as
/// well as SIGTERM/SIGHUP end the wait for its descendants (see [`pending`]).
pub fn child_reaped() -> Result<()> {
    CHILD.store(0, Ordering::SeqCst);
    let handler = forward as extern "C" fn(libc::c_int) as libc::sighandler_t;
    set_handler(libc::SIGINT, handler)
}

/// A signal that arrived while no command was running, if any.
pub fn pending() -> Option<i32> {
    match PENDING.load(Ordering::SeqCst) {
        0 => None,
        s => Some(s),
    }
}
