//! Who opened a socket: attribution to a *module*, and host-given labels.
//!
//! When a socket is created, connected, accepted or first recognised, [`attribute`] walks the
//! caller's stack (a few frames, about a microsecond; never on the per-byte path) and maps
//! each return address to the loaded object that contains it. It skips the shim itself, the C
//! runtime and the loader, and every library in the system library directories, so a plugin
//! that talks through libcurl is charged, not libcurl; the first remaining object is the
//! module. With `SOCKMETER_ATTRIBUTE` globs, the first object matching a glob is the module
//! instead. The main executable is the fallback. The first object outside the shim and the C
//! runtime is kept too, as `via` (libcurl, in that example).
//!
//! A socket opened by one module and used by another stays charged to the module that opened,
//! connected or accepted it.
//!
//! Names (module paths and labels) are interned once into the name table of the shared region
//! (`sockmeter::names`), so the hooks never allocate and a shipper process can read them; ids
//! start at 1, 0 means unknown.

use std::cell::Cell;
use std::sync::atomic::{AtomicU32, Ordering::*};

use crate::platform;

/// The attribution of one socket.
#[derive(Clone, Copy, Debug, Default)]
pub struct Who {
    /// Module id.
    pub module: u32,
    /// Immediate caller's object id.
    pub via: u32,
    /// Label id.
    pub label: u32,
}

const MAX_FRAMES: usize = 48;
const MAX_LABEL_DEPTH: usize = 16;

const CLASS_CANDIDATE: u8 = 1;
const CLASS_SYSTEM: u8 = 2;
const CLASS_RUNTIME: u8 = 3;
const CLASS_SHIM: u8 = 4;
const CLASS_LABEL: u8 = 5;

fn names() -> &'static sockmeter::names::Names {
    &crate::runtime::shared().names
}

/// Finds or adds a name (see `sockmeter::names`).
fn intern(
    key: usize,
    raw: &[u8],
    resolve: impl FnOnce(&mut [u8; 4096]) -> usize,
    class: impl FnOnce(&[u8]) -> (u8, bool),
) -> u32 {
    names().intern(key, raw, resolve, class)
}

/// The text of a name id (module path or label), for the reporting thread.
pub fn name(id: u32) -> Option<String> {
    names().name(id)
}

fn class_of(id: u32) -> (u8, bool) {
    names().class(id)
}

fn classify_path(path: &[u8], is_shim: bool) -> (u8, bool) {
    let globs = crate::runtime::attribute_globs();
    let text = String::from_utf8_lossy(path);
    let glob = globs.iter().any(|g| sockmeter::glob::matches(g, &text));
    let class = if is_shim {
        CLASS_SHIM
    } else if platform::is_runtime_library(path) {
        CLASS_RUNTIME
    } else if platform::is_system_library(path) {
        CLASS_SYSTEM
    } else {
        CLASS_CANDIDATE
    };
    (class, glob)
}

fn object_id(obj: platform::Object) -> u32 {
    // SAFETY: `obj.name` is the loader's NUL-terminated name of an object that is loaded now
    // (we hold a return address inside it).
    let raw = unsafe { std::ffi::CStr::from_ptr(obj.name) }.to_bytes();
    let is_shim = obj.base == platform::shim_base();
    if raw.is_empty() {
        return main_id();
    }
    intern(
        obj.base,
        raw,
        |buf| platform::real_path(raw, buf),
        |p| classify_path(p, is_shim),
    )
}

/// The main executable's id (the fallback module).
pub fn main_id() -> u32 {
    static MAIN: AtomicU32 = AtomicU32::new(0);
    let id = MAIN.load(Relaxed);
    if id != 0 {
        return id;
    }
    let id = intern(usize::MAX, b"(main)", platform::exe_path_into, |p| {
        classify_path(p, false)
    });
    MAIN.store(id, Relaxed);
    id
}

thread_local! {
    static LABELS: [Cell<u32>; MAX_LABEL_DEPTH] = const { [const { Cell::new(0) }; MAX_LABEL_DEPTH] };
    static DEPTH: Cell<usize> = const { Cell::new(0) };
}

/// The innermost label pushed on this thread, 0 for none.
pub fn current_label() -> u32 {
    let d = DEPTH.try_with(Cell::get).unwrap_or(0);
    if d == 0 {
        return 0;
    }
    LABELS
        .try_with(|l| l[(d - 1).min(MAX_LABEL_DEPTH - 1)].get())
        .unwrap_or(0)
}

/// Pushes a label for the sockets this thread opens from now on.
pub fn label_push(label: &[u8]) {
    let id = intern(
        0,
        label,
        |buf| {
            let n = label.len().min(buf.len());
            buf[..n].copy_from_slice(&label[..n]);
            n
        },
        |_| (CLASS_LABEL, false),
    );
    let d = DEPTH.try_with(Cell::get).unwrap_or(0);
    if d < MAX_LABEL_DEPTH {
        let _ = LABELS.try_with(|l| l[d].set(id));
    }
    let _ = DEPTH.try_with(|c| c.set(d + 1));
}

/// Pops the innermost label (no-op when none is pushed).
pub fn label_pop() {
    let _ = DEPTH.try_with(|c| c.set(c.get().saturating_sub(1)));
}

/// Attributes a socket being opened now by this thread (see the module docs).
pub fn attribute() -> Who {
    // Most sockets are opened by code that calls libc directly: its return address, found by
    // following the shim's own frame chain, settles it. Only when that caller is a system
    // library (a plugin going through libcurl) or the runtime does the unwinder walk further.
    let use_globs = !crate::runtime::attribute_globs().is_empty();
    if let Some(obj) = platform::caller_ip().and_then(|ip| platform::object_at(ip.saturating_sub(1))) {
        let id = object_id(obj);
        let (class, glob) = class_of(id);
        if (use_globs && glob) || (!use_globs && class == CLASS_CANDIDATE) {
            return Who {
                module: id,
                via: 0,
                label: current_label(),
            };
        }
    }
    attribute_by_unwinding()
}

fn attribute_by_unwinding() -> Who {
    let mut frames = [0usize; MAX_FRAMES];
    let n = platform::return_addresses(&mut frames);
    let use_globs = !crate::runtime::attribute_globs().is_empty();
    let mut who = Who {
        label: current_label(),
        ..Who::default()
    };
    for &ip in &frames[..n] {
        let Some(obj) = platform::object_at(ip.saturating_sub(1)) else {
            continue;
        };
        let id = object_id(obj);
        let (class, glob) = class_of(id);
        if class == CLASS_SHIM {
            continue;
        }
        if who.via == 0 && class != CLASS_RUNTIME {
            who.via = id;
        }
        if (use_globs && glob) || (!use_globs && class == CLASS_CANDIDATE) {
            who.module = id;
            break;
        }
    }
    if who.module == 0 {
        who.module = main_id();
    }
    if who.via == who.module {
        who.via = 0;
    }
    who
}
