//! The Rust embedding API: a host reads its own accounting in-process.
//!
//! The counting itself is done by the shim library, which must be in the process: linked
//! ahead of libc (a Rust host adds `-l sockmeter_shim`, see `examples/rust-host/build.rs`) or
//! preloaded. This module finds the shim's C API (`include/sockmeter.h`) in the running
//! process and wraps it:
//!
//! ```no_run
//! let meter = sockmeter::embed::start()?;
//! let events = meter.subscribe()?;                       // opened, changed, deltas, closed
//! sockmeter::embed::label("weather", || { /* the plugin's work */ });
//! let me = meter.snapshot()?;                            // typed report of this process
//! for m in &me.modules { println!("{}: {} B in", m.module, m.stats.rx_bytes); }
//! # Ok::<(), sockmeter::embed::EmbedError>(())
//! ```

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::sync::OnceLock;

use crossbeam_channel::{Receiver, Sender};

use crate::report::ProcessReport;
use crate::wire::{self, Message};

/// Why the embedding API cannot answer.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    /// The shim library is not in this process.
    #[error("the sockmeter shim is not loaded in this process: link libsockmeter_shim ahead of libc or run under LD_PRELOAD")]
    NotLoaded,
    /// The shim returned nothing (re-entered from a callback, or out of memory).
    #[error("the shim returned no snapshot")]
    NoSnapshot,
    /// The shim's JSON did not parse (a version mismatch between this crate and the shim).
    #[error("the shim's snapshot does not parse: {0}")]
    Parse(#[from] serde_json::Error),
    /// The subscription was refused.
    #[error("the shim refused the subscription")]
    Subscribe,
}

type EventFn = extern "C" fn(*const c_char, usize, *mut c_void) -> c_int;

struct Api {
    snapshot: SnapshotFn,
    free: FreeFn,
    push: PushFn,
    pop: VoidFn,
    subscribe: SubscribeFn,
    flush: VoidFn,
}

fn sym(name: &CStr) -> Option<*mut c_void> {
    // SAFETY: dlsym with a valid C string; RTLD_DEFAULT searches the global scope.
    let p = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) };
    (!p.is_null()).then_some(p)
}

type SnapshotFn = unsafe extern "C" fn() -> *mut c_char;
type FreeFn = unsafe extern "C" fn(*mut c_char);
type PushFn = unsafe extern "C" fn(*const c_char);
type VoidFn = unsafe extern "C" fn();
type SubscribeFn = unsafe extern "C" fn(Option<EventFn>, *mut c_void) -> u64;

fn api() -> Option<&'static Api> {
    static API: OnceLock<Option<Api>> = OnceLock::new();
    API.get_or_init(|| {
        // SAFETY: each symbol, when present, is the shim's function with the signature in
        // include/sockmeter.h, which these types mirror.
        unsafe {
            Some(Api {
                snapshot: std::mem::transmute::<*mut c_void, SnapshotFn>(sym(c"sockmeter_snapshot_json")?),
                free: std::mem::transmute::<*mut c_void, FreeFn>(sym(c"sockmeter_string_free")?),
                push: std::mem::transmute::<*mut c_void, PushFn>(sym(c"sockmeter_label_push")?),
                pop: std::mem::transmute::<*mut c_void, VoidFn>(sym(c"sockmeter_label_pop")?),
                subscribe: std::mem::transmute::<*mut c_void, SubscribeFn>(sym(c"sockmeter_subscribe")?),
                flush: std::mem::transmute::<*mut c_void, VoidFn>(sym(c"sockmeter_flush")?),
            })
        }
    })
    .as_ref()
}

/// A handle on the shim in this process.
#[derive(Clone, Copy)]
pub struct Meter {
    api: &'static Api,
}

/// Finds the shim in this process. Metering itself started when the shim was loaded.
pub fn start() -> Result<Meter, EmbedError> {
    api().map(|api| Meter { api }).ok_or(EmbedError::NotLoaded)
}

/// Whether the shim is in this process.
pub fn is_loaded() -> bool {
    api().is_some()
}

impl Meter {
    /// This process's report, with counters read now.
    pub fn snapshot(&self) -> Result<ProcessReport, EmbedError> {
        // SAFETY: the shim's function; the result is freed with the shim's free below.
        let p = unsafe { (self.api.snapshot)() };
        if p.is_null() {
            return Err(EmbedError::NoSnapshot);
        }
        // SAFETY: a NUL-terminated string from the shim, valid until freed.
        let parsed = serde_json::from_slice(unsafe { CStr::from_ptr(p) }.to_bytes());
        // SAFETY: returned by sockmeter_snapshot_json, freed once.
        unsafe { (self.api.free)(p) };
        Ok(parsed?)
    }

    /// Every wire message from now on (sockets opened and changed, deltas, closes, notices),
    /// delivered from the shim's reporting thread. Drop the receiver to unsubscribe. The
    /// channel is unbounded: a receiver that is never read grows.
    pub fn subscribe(&self) -> Result<Receiver<Message>, EmbedError> {
        let (tx, rx) = crossbeam_channel::unbounded::<Message>();
        let user = Box::into_raw(Box::new(tx)) as *mut c_void;
        // SAFETY: `forward` matches the callback type; `user` is a leaked Box<Sender> that
        // `forward` frees when it unsubscribes itself.
        let id = unsafe { (self.api.subscribe)(Some(forward), user) };
        if id == 0 {
            // SAFETY: not registered, still ours.
            drop(unsafe { Box::from_raw(user as *mut Sender<Message>) });
            return Err(EmbedError::Subscribe);
        }
        Ok(rx)
    }

    /// Ships pending counts now (reporter and subscribers) instead of at the next tick.
    pub fn flush(&self) {
        // SAFETY: the shim's function, no arguments.
        unsafe { (self.api.flush)() }
    }
}

extern "C" fn forward(line: *const c_char, len: usize, user: *mut c_void) -> c_int {
    // SAFETY: the shim passes `len` valid bytes and the `user` pointer we registered.
    let bytes = unsafe { std::slice::from_raw_parts(line as *const u8, len) };
    // SAFETY: `user` is the Box<Sender> leaked in `subscribe`, alive until we return 1.
    let tx = unsafe { &*(user as *const Sender<Message>) };
    let Ok(msg) = wire::decode(bytes) else {
        return 0;
    };
    if tx.send(msg).is_err() {
        // The receiver is gone: free our box and unsubscribe.
        // SAFETY: last use of the box; the shim drops the subscription on our non-zero return.
        drop(unsafe { Box::from_raw(user as *mut Sender<Message>) });
        return 1;
    }
    0
}

/// Runs `f` with `label` pushed on this thread: sockets it opens, connects or accepts are
/// labelled (the report groups them under `labels`). Without the shim, just runs `f`.
pub fn label<R>(label: &str, f: impl FnOnce() -> R) -> R {
    let Some(api) = api() else { return f() };
    let c = CString::new(label.replace('\0', "")).unwrap_or_default();
    // SAFETY: a valid C string; pop matches push even if `f` unwinds (below).
    unsafe { (api.push)(c.as_ptr()) };
    struct Pop(&'static Api);
    impl Drop for Pop {
        fn drop(&mut self) {
            // SAFETY: the shim's function.
            unsafe { (self.0.pop)() }
        }
    }
    let _pop = Pop(api);
    f()
}

#[cfg(test)]
mod tests {
    #[test]
    fn without_the_shim_the_api_says_so_and_labels_still_run() {
        assert!(matches!(super::start(), Err(super::EmbedError::NotLoaded)));
        assert_eq!(super::label("x", || 5), 5);
    }
}
