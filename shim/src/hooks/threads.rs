//! Threads carry their origin: a socket opened on a thread whose stack shows no module is
//! charged to the module that created the thread.
//!
//! Libraries run plugins' network work on threads of their own: GLib's thread pools and main
//! loops, libsoup's session thread, a gRPC core's pollers. When such a thread opens a socket,
//! its stack holds only system libraries, and attribution would fall back to the executable.
//! The `pthread_create` hook therefore finds the module on the *creating* thread's stack (or,
//! when there is none, the creating thread's own origin, so the rule carries through a chain
//! of threads) and starts the new thread through [`trampoline`], which records that origin in
//! a thread-local (`modules::set_thread_origin`) before calling the host's start routine. Attribution uses it only when the
//! stack shows no module ([`crate::modules::attribute`]).
//!
//! Cost (docs/benchmarks.md, `threads`): one stack look-up on the creating thread, usually
//! settled by the caller's return address; when the module found is the executable (the
//! fallback anyway) the thread is started exactly as the host asked, with no trampoline and no
//! allocation. Otherwise one small allocation, freed by the new thread before it runs the
//! host's routine. The trampoline's frame has nothing to drop, so `pthread_exit` and
//! cancellation unwind through it as through any C frame. A pool thread created on behalf of
//! one plugin and later reused by another keeps the first one's origin (stated in
//! docs/architecture.md).

#![allow(clippy::not_unsafe_ptr_arg_deref)]

use libc::{c_int, c_void, pthread_attr_t, pthread_t};

use crate::hooks::table::Rewrite;
use crate::modules;

/// What the new thread needs before it runs the host's routine.
struct Start {
    start: *mut c_void,
    arg: *mut c_void,
    origin: u32,
}

/// A `pthread_create` call in progress: null when the thread starts as the host asked.
pub struct Spawn {
    start: *mut Start,
}

type Args = (*mut pthread_t, *const pthread_attr_t, *mut c_void, *mut c_void);

/// `pthread_create`: finds the origin the new thread will carry.
pub fn pthread_create(
    _thread: *mut pthread_t,
    _attr: *const pthread_attr_t,
    start: *mut c_void,
    arg: *mut c_void,
) -> Spawn {
    // The last moment the process is surely single-threaded: shipper mode's region is made
    // now if it is still to be made (`runtime::settle_region`).
    crate::runtime::settle_region();
    let none = Spawn {
        start: std::ptr::null_mut(),
    };
    if start.is_null() {
        return none;
    }
    let origin = modules::origin_for_new_thread();
    if origin == 0 || origin == modules::main_id() {
        return none;
    }
    Spawn {
        start: Box::into_raw(Box::new(Start { start, arg, origin })),
    }
}

impl Rewrite<Args, c_int> for Spawn {
    fn args(&mut self, (thread, attr, start, arg): Args) -> Args {
        if self.start.is_null() {
            (thread, attr, start, arg)
        } else {
            (thread, attr, trampoline as *mut c_void, self.start as *mut c_void)
        }
    }

    fn result(&mut self, ret: c_int, _errno: c_int, _args: Args) -> c_int {
        if ret != 0 && !self.start.is_null() {
            // SAFETY: the thread was not created, so nothing else owns the box made above.
            drop(unsafe { Box::from_raw(self.start) });
        }
        ret
    }
}

/// The new thread's first frame: records the origin, frees the hand-over, runs the host's
/// routine with the host's argument and returns its result. `C-unwind` and nothing to drop
/// across the call: a forced unwind (`pthread_exit`, cancellation) passes straight through.
unsafe extern "C-unwind" fn trampoline(p: *mut c_void) -> *mut c_void {
    // SAFETY: `p` is the box `pthread_create` made for this thread, handed over once.
    let s = unsafe { Box::from_raw(p as *mut Start) };
    let (start, arg, origin) = (s.start, s.arg, s.origin);
    drop(s);
    modules::set_thread_origin(origin);
    // SAFETY: `start` is the host's start routine, `void *(*)(void *)`.
    let f =
        unsafe { std::mem::transmute::<*mut c_void, unsafe extern "C-unwind" fn(*mut c_void) -> *mut c_void>(start) };
    // SAFETY: calling the host's routine as pthread_create would have.
    unsafe { f(arg) }
}
