//! io_uring: a process that creates a ring is named once in the report (`uses_io_uring`) and
//! the summary. I/O through the ring never passes a hooked call; for TCP sockets the kernel
//! witness (`witness.rs`) still sees it, as unseen bytes.
//!
//! A ring is created by the `io_uring_setup` system call: through `syscall()` (hooked, see
//! `syscalls.rs`), or through liburing, which makes the system call itself with a `syscall`
//! instruction, so its public entry points that create a ring are hooked instead:
//! `io_uring_queue_init`, `io_uring_queue_init_params`, `io_uring_queue_init_mem` (2.5+) and
//! liburing's own `io_uring_setup` wrapper (2.3+). They return a negative errno on failure.

// Handlers are called only by the wrappers `hook_table!` generates, with exactly the arguments
// the host passed; they mirror C signatures.
#![allow(clippy::not_unsafe_ptr_arg_deref, clippy::too_many_arguments)]

use std::sync::atomic::{AtomicBool, Ordering::*};

use libc::{c_int, c_uint, c_void, size_t};
use sockmeter::wire::IO_URING_NOTICE;

use crate::runtime;

/// Whether this process image said it uses io_uring.
static SAID: AtomicBool = AtomicBool::new(false);

/// A ring was created: say so, once per process.
pub fn created() {
    if !SAID.swap(true, AcqRel) {
        runtime::add_notice(
            IO_URING_NOTICE,
            "uses io_uring: its socket I/O is seen only by the kernel witness".into(),
        );
    }
}

/// A forked child is a process of its own: it says so when it creates a ring itself.
pub fn after_fork_child() {
    SAID.store(false, Release);
}

pub fn queue_init(ret: c_int, _e: c_int, _entries: c_uint, _ring: *mut c_void, _flags: c_uint) {
    if ret >= 0 {
        created();
    }
}

pub fn queue_init_params(ret: c_int, _e: c_int, _entries: c_uint, _ring: *mut c_void, _p: *mut c_void) {
    if ret >= 0 {
        created();
    }
}

pub fn queue_init_mem(
    ret: c_int,
    _e: c_int,
    _entries: c_uint,
    _ring: *mut c_void,
    _p: *mut c_void,
    _buf: *mut c_void,
    _size: size_t,
) {
    if ret >= 0 {
        created();
    }
}

pub fn setup(ret: c_int, _e: c_int, _entries: c_uint, _p: *mut c_void) {
    if ret >= 0 {
        created();
    }
}
