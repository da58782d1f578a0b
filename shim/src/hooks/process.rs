//! The process ending or being replaced: `_exit`/`_Exit` skip atexit handlers, and exec
//! replaces the image, so both ship what is pending first. (`exit()` and a return from main
//! are handled by the atexit handler the runtime registers; fork by `pthread_atfork`.)

// Handlers are called only by the wrappers `hook_table!` generates, with exactly the arguments
// the host passed to the libc function (which the real call has just accepted), so pointer
// arguments are as valid as libc required them to be; and they mirror C signatures.
#![allow(clippy::not_unsafe_ptr_arg_deref, clippy::too_many_arguments)]

use libc::c_int;
use sockmeter::wire::ByeReason;

use crate::{guard, platform, runtime};

/// A vfork child runs on its parent's thread-local memory too, and the wrapper holds the
/// re-entrancy guard across the real call, which never returns from a successful exec or an
/// `_exit`: the parent thread would resume with the guard still held, and every later hook
/// of that thread would pass straight through (its closes and new sockets unseen, its
/// atexit report never sent). So a vfork child lets the guard go before the real call; the
/// wrapper's own release after a failed exec finds it already released.
fn release_guard_in_vfork_child() {
    if platform::in_vfork_child() {
        guard::leave();
    }
}

pub fn exit_before(_status: c_int) {
    runtime::finish(ByeReason::Exit);
    release_guard_in_vfork_child();
}

pub fn after_nothing(_pre: (), _ret: (), _e: c_int, _status: c_int) {}

/// What the before-part of an exec did, so a failed exec can resume metering.
pub struct Pending(bool);

fn exec_before() -> Pending {
    let pending = Pending(runtime::finish(ByeReason::Exec));
    release_guard_in_vfork_child();
    pending
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
