//! The process ending, forking or being replaced: `_exit`/`_Exit` skip atexit handlers, and
//! exec replaces the image, so both read the kernel witness of the TCP sockets still open and
//! ship what is pending first. Before an exec, the program about to run is checked: a static or
//! setuid one cannot be metered, and the run's notes file says so (`super::preflight`).
//! `exit()` and a return from main reach [`at_exit`], and fork the `pthread_atfork` handlers
//! [`before_fork`] and [`fork_child`], which [`register_handlers`] installs at load.

// Handlers are called only by the wrappers `hook_table!` generates, with exactly the arguments
// the host passed to the libc function (which the real call has just accepted), so pointer
// arguments are as valid as libc required them to be; and they mirror C signatures.
#![allow(clippy::not_unsafe_ptr_arg_deref, clippy::too_many_arguments)]

use std::sync::atomic::{AtomicBool, Ordering::*};

use libc::c_int;
use sockmeter::wire::{ByeReason, ExitStatus};

use super::preflight::{self, Target};
use crate::{guard, platform, runtime};

/// Installs the fork handlers and the exit handler (at load).
pub fn register_handlers() {
    platform::register_process_handlers(before_fork, fork_child, at_exit);
}

/// `exit()` or a return from `main`: the ending (where the platform tells the status), the
/// witness of the TCP sockets still open (after writing out the stdio streams on them), the last
/// pass and `bye`.
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
fn at_exit(status: Option<c_int>) {
    guard::with(|| {
        if let (Some(status), true) = (status, runtime::owns_region()) {
            runtime::shared().set_ending(ExitStatus {
                exit_code: Some(status & 0xff),
                signal: None,
            });
        }
        super::witness::at_exit(true);
        runtime::finish(ByeReason::Exit)
    });
}

/// Before a fork, in the parent: every real function is resolved once (a child would look
/// each up itself), the TCP sockets open now are marked shared (the child holds them too, and
/// reads its witness base), and the runtime prepares the child's region.
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
extern "C" fn before_fork() {
    // The host's errno is as its `fork` left it, whatever the handlers' own calls do (the
    // parent's first fork makes the nursery: `runtime/nursery.rs`).
    super::kernel::keeping_errno(|| {
        guard::with(|| {
            static RESOLVED: AtomicBool = AtomicBool::new(false);
            if !RESOLVED.load(Relaxed) && !RESOLVED.swap(true, Relaxed) {
                super::resolve_all();
            }
            super::witness::before_fork();
            runtime::fork_prepare();
        })
    });
}

/// In a forked child: the runtime starts over (its own accounting, no reporting thread yet),
/// then the hooks' own per-process state.
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
extern "C" fn fork_child() {
    super::kernel::keeping_errno(|| {
        let pid = platform::note_self_pid();
        guard::with(|| {
            runtime::fork_child(pid);
            super::after_fork_child();
            // The child starts reporting when it touches a socket itself (a child that only
            // execs or exits costs nothing more).
        })
    });
}

#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
pub fn exit_before(status: c_int) {
    // A vfork child shares the parent's memory: its _exit is not the parent's ending, and its
    // sockets are its parent's: they are not ending.
    if runtime::owns_region() {
        runtime::shared().set_ending(ExitStatus {
            exit_code: Some(status & 0xff),
            signal: None,
        });
        // `_exit` does not flush stdio: what is in a buffer never reaches the kernel.
        super::witness::at_exit(false);
    }
    runtime::finish(ByeReason::Exit);
}

pub fn after_nothing(_pre: (), _ret: (), _e: c_int, _status: c_int) {}

/// What the before-part of an exec did, so a failed exec can resume metering.
pub struct Pending(bool);

fn exec_before(target: Target) -> Pending {
    preflight::check(target);
    if runtime::owns_region() {
        super::witness::at_exit(false);
    } else {
        // A vfork child: the sockets it keeps across the exec are its parent's too.
        super::witness::before_spawn();
    }
    Pending(runtime::finish(ByeReason::Exec))
}

fn exec_after(pending: Pending, _ret: c_int) {
    // Still here: the exec failed. Metering goes on; the next report starts a new connection.
    if pending.0 {
        runtime::resume_after_failed_exec();
    }
}

/// `execv(path, argv)`.
pub fn execv_before(path: *const libc::c_char, _argv: *const *const libc::c_char) -> Pending {
    exec_before(Target::Path(path))
}

/// `execvp(file, argv)`: `file` is searched for in `PATH`.
pub fn execvp_before(file: *const libc::c_char, _argv: *const *const libc::c_char) -> Pending {
    exec_before(Target::Search(file))
}

pub fn exec2_after<A, B>(p: Pending, ret: c_int, _e: c_int, _a: A, _b: B) {
    exec_after(p, ret);
}

/// `execve(path, argv, envp)`.
pub fn execve_before(
    path: *const libc::c_char,
    _argv: *const *const libc::c_char,
    _envp: *const *const libc::c_char,
) -> Pending {
    exec_before(Target::Path(path))
}

/// `execvpe(file, argv, envp)`: `file` is searched for in `PATH`.
pub fn execvpe_before(
    file: *const libc::c_char,
    _argv: *const *const libc::c_char,
    _envp: *const *const libc::c_char,
) -> Pending {
    exec_before(Target::Search(file))
}

/// `fexecve(fd, argv, envp)`.
pub fn fexecve_before(fd: c_int, _argv: *const *const libc::c_char, _envp: *const *const libc::c_char) -> Pending {
    exec_before(Target::Fd(fd))
}

pub fn exec3_after<A, B, C>(p: Pending, ret: c_int, _e: c_int, _a: A, _b: B, _c: C) {
    exec_after(p, ret);
}

/// `posix_spawn`/`posix_spawnp`: the program started shares every TCP socket whose fd is not
/// close-on-exec (glibc's child runs no hook: it duplicates and execs with internal calls).
pub fn spawn_before(
    _pid: *mut libc::pid_t,
    _path: *const libc::c_char,
    _actions: *const libc::posix_spawn_file_actions_t,
    _attr: *const libc::posix_spawnattr_t,
    _argv: *const *mut libc::c_char,
    _envp: *const *mut libc::c_char,
) {
    super::witness::before_spawn();
}

pub fn spawn_after<A, B, C, D, E, F>(_p: (), _ret: c_int, _e: c_int, _a: A, _b: B, _c: C, _d: D, _x: E, _f: F) {}

/// `posix_spawn_file_actions_adddup2(actions, fd, newfd)`: a spawn with these actions gives
/// `fd` to the program it starts (even a close-on-exec one).
pub fn spawn_adddup2(ret: c_int, _e: c_int, _actions: *mut libc::posix_spawn_file_actions_t, fd: c_int, _new: c_int) {
    if ret == 0 {
        if let sockmeter::registry::FdState::Record(idx) = runtime::reg().fds.get(fd) {
            super::witness::shared_with_another(idx);
        }
    }
}
