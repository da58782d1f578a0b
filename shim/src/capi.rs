//! The C embedding API, declared in `include/sockmeter.h`.
//!
//! A host links `libsockmeter_shim.so` ahead of libc (or runs preloaded) and calls these to
//! read its own accounting: a snapshot of this process's report, labels that name the plugin
//! a thread is working for, and a callback receiving every wire message as it is produced.
//! Every function is safe to call from any thread, at any time after load; none of them
//! panics across the boundary, and none of them is metered itself.

use std::ffi::{c_char, c_int, c_void, CStr};

use crate::runtime::collector::EventCallback;
use crate::{guard, modules, runtime};

fn to_c_string(s: &str) -> *mut c_char {
    // SAFETY: malloc of len+1 bytes; we write exactly that many.
    unsafe {
        let p = libc::malloc(s.len() + 1) as *mut u8;
        if p.is_null() {
            return std::ptr::null_mut();
        }
        std::ptr::copy_nonoverlapping(s.as_ptr(), p, s.len());
        *p.add(s.len()) = 0;
        p as *mut c_char
    }
}

/// This process's report (one entry of a report's `processes[]`) as JSON, after a fresh
/// pass. malloc'd; free it with `sockmeter_string_free`. NULL if the shim is re-entered or out
/// of memory.
#[no_mangle]
pub extern "C" fn sockmeter_snapshot_json() -> *mut c_char {
    guard::with(|| runtime::snapshot_json().map(|j| to_c_string(&j)))
        .flatten()
        .unwrap_or(std::ptr::null_mut())
}

/// Frees a string returned by this API.
///
/// # Safety
/// `s` must be NULL or a pointer this API returned, not yet freed.
#[no_mangle]
pub unsafe extern "C" fn sockmeter_string_free(s: *mut c_char) {
    if !s.is_null() {
        // SAFETY: allocated with malloc by `to_c_string`.
        unsafe { libc::free(s as *mut c_void) };
    }
}

/// Sockets this thread opens, connects or accepts from now on carry `label` (until the
/// matching `sockmeter_label_pop`). Labels nest; the innermost wins. NULL is ignored.
///
/// # Safety
/// `label` must be NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn sockmeter_label_push(label: *const c_char) {
    if label.is_null() {
        return;
    }
    // SAFETY: the caller promises a NUL-terminated string.
    let bytes = unsafe { CStr::from_ptr(label) }.to_bytes();
    guard::with(|| modules::label_push(bytes));
}

/// Ends the innermost label of this thread.
#[no_mangle]
pub extern "C" fn sockmeter_label_pop() {
    guard::with(modules::label_pop);
}

/// Calls `cb(line, len, user)` for every wire message from now on (`len` bytes of one NDJSON
/// line, newline included, followed by a NUL). The callback runs on the shim's reporting
/// thread, with the collector locked: it must be quick and must not call this API. Its own
/// socket traffic is not metered. A non-zero return value unsubscribes it. Returns a
/// subscription id (never 0), or 0 on failure.
#[no_mangle]
pub extern "C" fn sockmeter_subscribe(cb: Option<EventCallback>, user: *mut c_void) -> u64 {
    let Some(cb) = cb else { return 0 };
    guard::with(|| runtime::subscribe(cb, user)).unwrap_or(0)
}

/// Removes a subscription; returns 1 if it existed, else 0. When it returns, the callback is
/// not running and will not run again.
#[no_mangle]
pub extern "C" fn sockmeter_unsubscribe(id: u64) -> c_int {
    guard::with(|| c_int::from(runtime::unsubscribe(id))).unwrap_or(0)
}

/// Ships what is pending now (to the reporter and the subscribers) instead of at the next
/// interval.
#[no_mangle]
pub extern "C" fn sockmeter_flush() {
    guard::with(|| {
        let _ = runtime::snapshot_json();
    });
}

/// The shim's version, a static string.
#[no_mangle]
pub extern "C" fn sockmeter_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr() as *const c_char
}

/// Not part of the API (no declaration in `include/sockmeter.h`): proves, in the shipped
/// library, that a panic inside the shim is caught before it reaches the host. Panics inside
/// the same guard every entry point uses and returns 1 when the panic was caught (the shim's
/// own unwinder works), 0 if the guard was already held. `tests/e2e/loading.rs` calls it.
#[no_mangle]
pub extern "C" fn sockmeter_selftest_unwind() -> c_int {
    let caught = guard::with(|| {
        let r = std::panic::catch_unwind(|| {
            if std::hint::black_box(true) {
                panic!("sockmeter self-test: a deliberate panic");
            }
        });
        c_int::from(r.is_err())
    });
    caught.unwrap_or(0)
}
