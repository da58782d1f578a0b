//! The one hook table. Each hooked function is declared here once; [`table::hook_table!`]
//! generates its real-function slot, its export and its wrapper. The handlers are in modules
//! by family: [`io`] (the per-byte path), [`lifecycle`] (sockets appearing, changing and
//! closing), [`threads`] (a new thread carries the module that created it), [`files`] (new fds
//! that are not sockets, and stdio closing a stream's fd, so a number a socket left behind the
//! shim's back is never taken for that socket), [`signals`] (the host's signal handlers,
//! behind a trampoline), [`children`] (how the host's children ended, as its `wait` calls
//! learn), [`process`] (exit, exec, and the fork and exit handlers), [`syscalls`] (`syscall()`
//! itself, dispatched to the others), [`uring`] (io_uring rings being created), [`resolver`]
//! (the names the program looks up, so a peer is reported by name; [`preflight`] checks a
//! program about to be exec'd) and [`cfsocket`] (CoreFoundation's CFSocket calls: they label sockets, the BSD calls under them
//! count). Beneath
//! them: [`sockets`] (what the fd table says about an fd, and how a socket gets its record),
//! [`kernel`] (reading the kernel's own TCP counters) and [`witness`] (when: at close, exit,
//! exec and fork). `dlopen` is outside the table ([`dlopen`]: it must tail-call the real one),
//! and so is the `execl` family (`execlist`, Linux: a list of arguments with no fixed length);
//! its rebinding of plugins that escape interposition uses the table's list ([`replacement`]).
//!
//! `[fd x]` marks the argument whose fd decides the fast pass-through: an fd known not to be a
//! socket (a file, a pipe, a tty) costs one table load and goes straight to libc (`[fd x y]`:
//! when both are). `[data x]` (the per-byte path) also counts a known socket's bytes without
//! taking the guard. `[sys n]` (`syscall`) passes a number the shim does not meter straight
//! through.

pub mod cfsocket;
pub mod children;
pub mod dlopen;
#[cfg(target_os = "linux")]
pub mod execlist;
pub mod files;
pub mod io;
pub mod kernel;
pub mod lifecycle;
pub mod passing;
pub mod preflight;
pub mod process;
pub mod resolver;
pub mod signals;
pub mod sockets;
// The system call numbers it meters are Linux's.
#[cfg(target_os = "linux")]
pub mod syscalls;
#[cfg(target_os = "linux")]
pub mod sysclass;
pub mod table;
pub mod threads;
pub mod uring;
pub mod witness;

use libc::{addrinfo, hostent};
// Not every platform's entries use every type.
#[allow(unused_imports)]
use crate::platform::{loff_t, mmsghdr, off64_t};
#[allow(unused_imports)]
use libc::{
    c_char, c_int, c_long, c_uint, c_ulong, c_void, iovec, mode_t, msghdr, off_t, pthread_attr_t, pthread_t,
    sighandler_t, sigset_t, size_t, sockaddr, socklen_t, ssize_t, timespec, FILE,
};

use cfsocket::{CFOptionFlags, CFRef, CFSocketError, CFSocketRef, CFTimeInterval};
use table::hook_table;

/// The replacement for libc symbol `name`, if it is hooked (for rebinding the imports of
/// objects that escape interposition, `dlopen.rs`).
pub fn replacement(name: &[u8]) -> Option<usize> {
    HOOKS
        .iter()
        .find(|h| h.name.as_bytes() == name)
        .map(|h| h.addr as usize)
}

/// Resolves every real function not resolved yet. Called before the first fork: a forked
/// child inherits the slots, and one that calls, say, `_exit` would otherwise look it up itself
/// with `dlsym` (tens of microseconds, in every child).
pub fn resolve_all() {
    for h in HOOKS.iter().filter(|h| !h.library) {
        h.slot.get();
    }
}

/// At load, after the runtime is configured: the process's events go to the handlers that
/// need the hooks (exit, fork: `process.rs`), the endings file is known to the `wait` hooks,
/// the real `dlopen` is resolved (the naked `dlopen` jumps to it), and the reporting thread
/// arms the fatal-signal handlers when it starts (`signals.rs`).
pub fn at_load() {
    children::setup(crate::runtime::config().socket.as_deref());
    crate::runtime::on_thread_start(signals::arm_fatal);
    process::register_handlers();
    let _ = dlopen::resolve();
    if crate::platform::loaded_late() {
        signals::adopt_installed();
        bind_past_stage();
    }
}

/// Under the preload stage: the GOT slots of the objects loaded so far that lead through the
/// stage to a hook are pointed at the hook itself (`platform::bind_past_stage`), at load and
/// again, for objects loaded since, at each later `dlopen` (a plugin, or Python's `_socket`,
/// loaded after the shim, is bound at the next `dlopen`). Never on a socket call: it takes the
/// loader's lock, and a signal handler that makes a socket may have interrupted its holder.
pub fn bind_past_stage() {
    // SAFETY: `replacement` gives each hooked name's own hook, a plain look-up.
    unsafe { crate::platform::bind_past_stage(&|name| replacement(name.to_bytes())) };
}

/// In a forked child, after the runtime has given it its own accounting: the kernel witness
/// starts over for the sockets it inherited, and io_uring is said again if it makes a ring.
pub fn after_fork_child() {
    witness::after_fork_child();
    uring::after_fork_child();
}

include!("list.rs");
