//! The process ending or being replaced: `_exit`/`_Exit` skip atexit handlers, and exec
//! replaces the image, so both read the kernel witness of the TCP sockets still open and ship
//! what is pending first. (`exit()` and a return from main
//! are handled by the atexit handler the runtime registers; fork by `pthread_atfork`.)

// Handlers are called only by the wrappers `hook_table!` generates, with exactly the arguments
// the host passed to the libc function (which the real call has just accepted), so pointer
// arguments are as valid as libc required them to be; and they mirror C signatures.
#![allow(clippy::not_unsafe_ptr_arg_deref, clippy::too_many_arguments)]

use libc::c_int;
use sockmeter::wire::{ByeReason, ExitStatus};

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

fn exec_before() -> Pending {
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

pub fn exec2_before<A, B>(_a: A, _b: B) -> Pending {
    exec_before()
}

pub fn exec2_after<A, B>(p: Pending, ret: c_int, _e: c_int, _a: A, _b: B) {
    exec_after(p, ret);
}

pub fn exec3_before<A, B, C>(_a: A, _b: B, _c: C) -> Pending {
    exec_before()
}

pub fn exec3_after<A, B, C>(p: Pending, ret: c_int, _e: c_int, _a: A, _b: B, _c: C) {
    exec_after(p, ret);
}
