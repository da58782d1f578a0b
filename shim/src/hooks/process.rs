//! The process ending or being replaced: `_exit`/`_Exit` skip atexit handlers, and exec
//! replaces the image, so both read the kernel witness of the TCP sockets still open and ship
//! what is pending first. Before an exec, the program about to run is checked: a static or
//! setuid one cannot be metered, and the run's notes file says so (`super::preflight`).
//! (`exit()` and a return from main are handled by the atexit handler the runtime registers;
//! fork by `pthread_atfork`.)

// Handlers are called only by the wrappers `hook_table!` generates, with exactly the arguments
// the host passed to the libc function (which the real call has just accepted), so pointer
// arguments are as valid as libc required them to be; and they mirror C signatures.
#![allow(clippy::not_unsafe_ptr_arg_deref, clippy::too_many_arguments)]

use libc::c_int;
use sockmeter::wire::{ByeReason, ExitStatus};

use super::preflight::{self, Target};
use crate::runtime;

pub fn exit_before(status: c_int) {
    // A vfork child shares the parent's memory: its _exit is not the parent's ending.
    if runtime::owns_region() {
        runtime::shared().set_ending(ExitStatus {
            exit_code: Some(status & 0xff),
            signal: None,
        });
    }
    // `_exit` does not flush stdio: what is in a buffer never reaches the kernel. (A vfork
    // child's sockets are its parent's: they are not ending.)
    if runtime::owns_region() {
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
