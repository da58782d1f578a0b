//! The re-entrancy guard: a per-thread flag that is set while shim code runs.
//!
//! Our own work calls hooked functions (std writes to fds, `dlsym` and the unwinder read
//! files, the reporting thread sends on its socket). A hook that finds the flag set passes
//! straight through to libc.
//!
//! The flag is set only while *shim code* runs, never across the host's real call: a signal
//! handler that interrupts a host blocked in `accept()` or `connect()` is host code, and its
//! socket calls must be counted. And a handler can interrupt shim code too, so the signal
//! trampoline (`hooks/signals.rs`) clears the flag for the host's handler and puts it back
//! afterwards ([`suspend`], [`restore`]): every call a handler makes, at any nesting, is the
//! host's. The flag is a `const`-initialised `Cell<bool>` with no `Drop`,
//! so touching it never registers a TLS destructor (which would call `calloc`) and
//! `try_with` cannot fail for want of initialisation. `enter`/`leave` are explicit calls, not
//! a guard object, so nothing runs at unwind or thread exit.

use std::cell::Cell;

thread_local! {
    static INSIDE: Cell<bool> = const { Cell::new(false) };
}

/// Marks this thread as running shim code. Returns false if it already was (the caller must
/// then pass through and must not call [`leave`]).
#[inline]
pub fn enter() -> bool {
    INSIDE
        .try_with(|c| {
            if c.get() {
                false
            } else {
                c.set(true);
                true
            }
        })
        .unwrap_or(false)
}

/// Whether this thread is running shim code now (a hook then passes straight through).
#[inline]
pub fn held() -> bool {
    INSIDE.try_with(Cell::get).unwrap_or(true)
}

/// Marks this thread as running shim code, whatever it was (a hook that checked [`held`]).
#[inline]
pub fn set() {
    let _ = INSIDE.try_with(|c| c.set(true));
}

/// For a signal handler of the host's: clears the flag (the handler is host code, even when it
/// interrupted shim code) and returns what it was, for [`restore`].
#[inline]
pub fn suspend() -> bool {
    INSIDE.try_with(|c| c.replace(false)).unwrap_or(false)
}

/// Puts back what [`suspend`] returned, when the host's handler returns.
#[inline]
pub fn restore(was: bool) {
    let _ = INSIDE.try_with(|c| c.set(was));
}

/// Ends what [`enter`] began.
#[inline]
pub fn leave() {
    let _ = INSIDE.try_with(|c| c.set(false));
}

/// Marks this thread as shim code for good (the reporting thread).
pub fn enter_forever() {
    let _ = INSIDE.try_with(|c| c.set(true));
}

/// Runs `f` with the guard held, whether or not this thread already held it (then it stays
/// held afterwards). For work a guard-less fast path may trigger.
pub fn hold<R>(f: impl FnOnce() -> R) -> R {
    let entered = enter();
    let r = f();
    if entered {
        leave();
    }
    r
}

/// Runs `f` with the guard held, unless it already is (then `f` does not run). For the few
/// shim entry points that are not hooks (constructor, atexit, fork handlers, the C API).
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
pub fn with<R>(f: impl FnOnce() -> R) -> Option<R> {
    if !enter() {
        return None;
    }
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).ok();
    leave();
    r
}
