//! Who opened a socket: attribution to a *module*, and host-given labels.
//!
//! When a socket is created, connected, accepted or first recognised, [`attribute`] walks the
//! caller's stack (stopping at the first module; never on the per-byte path) and maps each
//! return address to the loaded object that contains it. The first object that may be charged
//! is the module:
//!
//! * **plugins**: every object the process loaded with `dlopen`, wherever it lives (system
//!   directories too), except one that a plugin loaded for itself, which is part of that plugin
//!   (see [`dlopen_requester`]);
//! * **the executable**, and libraries loaded at start (linked or preloaded) that live outside
//!   the system library directories (a program's own libraries).
//!
//! Never charged: the shim, the C runtime and the loader, a language runtime's own objects
//! (`platform::is_interpreter_library`: its core library and its standard library's compiled
//! modules, so `_socket.cpython-311-…so` is the interpreter), system libraries loaded at start,
//! and objects loaded at run time without being named in a dlopen call of the program (a
//! plugin's dependencies: libcurl under a plugin that uses it). `SOCKMETER_ATTRIBUTE` globs
//! change the rule: an object matching `GLOB` may be charged, one matching `!GLOB` may not (a
//! plain glob wins over a `!` one). When the stack shows no module, the socket is charged to the
//! module that created the thread ([`thread_origin`], set by the `pthread_create` hook), else to
//! the executable. The first
//! object outside the shim, the C runtime and a language runtime is kept too, as `via` (libcurl,
//! in that example).
//!
//! A socket opened by one module and used by another stays charged to the module that opened,
//! connected or accepted it.
//!
//! Names (module paths and labels) are interned once into the name table of the shared region
//! (`sockmeter::names`), with what attribution needs to know of each object (its class, whether
//! it may be charged, how and when it was loaded: `crate::loads`), so the hooks never allocate
//! and a shipper process can read them; ids start at 1, 0 means unknown.

use std::cell::Cell;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::*};

use sockmeter::names::Meta;
use sockmeter::Load;

use crate::{loads, platform};

/// The attribution of one socket.
#[derive(Clone, Copy, Debug, Default)]
pub struct Who {
    /// Module id.
    pub module: u32,
    /// Immediate caller's object id.
    pub via: u32,
    /// Label id.
    pub label: u32,
    /// Made by CoreFoundation's own code (the first object past the shim): its wake-up sockets
    /// are its own, not the host's traffic (`hooks/cfsocket.rs`).
    pub internal: bool,
}

const MAX_FRAMES: usize = 48;
const MAX_LABEL_DEPTH: usize = 16;

/// Outside the system library directories.
const CLASS_OTHER: u8 = 1;
const CLASS_SYSTEM: u8 = 2;
const CLASS_RUNTIME: u8 = 3;
const CLASS_SHIM: u8 = 4;
const CLASS_LABEL: u8 = 5;
/// A language runtime's own object.
const CLASS_INTERP: u8 = 6;
/// CoreFoundation: looked past like a system library; the sockets its own code makes are its
/// own (`platform::is_corefoundation`).
const CLASS_CF: u8 = 7;

/// The name table in use (module paths, labels and what is known of each module).
pub fn names() -> &'static sockmeter::names::Names {
    &crate::runtime::shared().names
}

/// Finds or adds a name (see `sockmeter::names`).
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
fn intern(
    key: usize,
    raw: &[u8],
    resolve: impl FnOnce(&mut [u8; 4096]) -> usize,
    meta: impl FnOnce(&[u8]) -> Meta,
) -> u32 {
    names().intern(key, raw, resolve, meta)
}

/// The text of a name id (module path or label), for the reporting thread.
pub fn name(id: u32) -> Option<String> {
    names().name(id)
}

#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
fn meta(id: u32) -> Meta {
    names().meta(id)
}

/// Whether the `SOCKMETER_ATTRIBUTE` globs say the object at `path` may be charged (`Some(true)`:
/// a plain glob matches), may not (`Some(false)`: only a `!` glob matches), or leave it to the
/// default rule.
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
fn glob_verdict(path: &[u8]) -> Option<bool> {
    let globs = crate::runtime::attribute_globs();
    if globs.is_empty() {
        return None;
    }
    let text = String::from_utf8_lossy(path);
    let (mut plus, mut minus) = (false, false);
    for (i, g) in globs.iter().enumerate() {
        let hit = match g.strip_prefix('!') {
            Some(neg) => sockmeter::glob::matches(neg, &text),
            None => sockmeter::glob::matches(g, &text),
        };
        if hit {
            glob_matched(i, g);
        }
        if g.starts_with('!') {
            minus |= hit;
        } else {
            plus |= hit;
        }
    }
    if plus {
        Some(true)
    } else if minus {
        Some(false)
    } else {
        None
    }
}

/// Says, once per glob and process image, that `--attribute` glob number `i` (`g`) matched an
/// object (an `attribute` notice: the report's `attribute_matched`), so the reporter can name
/// the globs that matched nothing. The first 64 globs are followed.
fn glob_matched(i: usize, g: &str) {
    static SAID: AtomicU64 = AtomicU64::new(0);
    let Some(bit) = 1u64.checked_shl(i as u32).filter(|_| i < 64) else {
        return;
    };
    if SAID.fetch_or(bit, Relaxed) & bit == 0 {
        crate::runtime::push_notice(sockmeter::wire::ATTRIBUTE_NOTICE, g);
    }
}

/// What attribution keeps about an object: its class, whether it may be charged, how it came in.
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
fn object_meta(path: &[u8], is_shim: bool, origin: loads::Origin) -> Meta {
    let class = if origin.load == Load::Executable {
        if platform::is_interpreter_executable(path) {
            CLASS_INTERP
        } else {
            CLASS_OTHER
        }
    } else if is_shim {
        CLASS_SHIM
    } else if platform::is_corefoundation(path) {
        CLASS_CF
    } else if platform::is_runtime_library(path) {
        CLASS_RUNTIME
    } else if platform::is_interpreter_library(path) {
        CLASS_INTERP
    } else if platform::is_system_library(path) {
        CLASS_SYSTEM
    } else {
        CLASS_OTHER
    };
    let by_default = match class {
        CLASS_SHIM | CLASS_RUNTIME | CLASS_INTERP | CLASS_CF => false,
        _ => match origin.load {
            Load::Dlopen => origin.owner == 0,
            Load::Executable => true,
            Load::Linked | Load::Preloaded => class == CLASS_OTHER,
            Load::Dependency | Load::Unknown => false,
        },
    };
    let chargeable = class != CLASS_SHIM && glob_verdict(path).unwrap_or(by_default);
    Meta {
        class,
        flag: chargeable,
        load: origin.load.code(),
        loaded_ms: origin.ms,
        owner: origin.owner,
    }
}

#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
fn object_id(obj: platform::Object) -> u32 {
    // SAFETY: `obj.name` is the loader's NUL-terminated name of an object that is loaded now
    // (we hold a return address inside it): its first byte is readable. The main program's is
    // empty, told without `strlen` (a forked child's first socket would fault in its page).
    if unsafe { *obj.name } == 0 {
        return main_id();
    }
    // SAFETY: as above.
    let raw = unsafe { std::ffi::CStr::from_ptr(obj.name) }.to_bytes();
    let is_shim = obj.base == platform::shim_base();
    intern(
        obj.base,
        raw,
        |buf| platform::real_path(raw, buf),
        |p| {
            let origin = if is_shim {
                loads::Origin {
                    load: Load::Preloaded,
                    ms: loads::start_ms(),
                    owner: 0,
                }
            } else {
                loads::origin(obj.name, raw)
            };
            object_meta(p, is_shim, origin)
        },
    )
}

/// The main executable's id (the fallback module).
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
pub fn main_id() -> u32 {
    static MAIN: AtomicU32 = AtomicU32::new(0);
    let id = MAIN.load(Relaxed);
    if id != 0 {
        return id;
    }
    let id = intern(usize::MAX, b"(main)", platform::exe_path_into, |p| {
        let origin = loads::Origin {
            load: Load::Executable,
            ms: loads::start_ms(),
            owner: 0,
        };
        object_meta(p, false, origin)
    });
    MAIN.store(id, Relaxed);
    id
}

thread_local! {
    /// The module that created this thread (see `hooks/threads.rs`); 0: none, or the executable.
    static ORIGIN: Cell<u32> = const { Cell::new(0) };
    static LABELS: [Cell<u32>; MAX_LABEL_DEPTH] = const { [const { Cell::new(0) }; MAX_LABEL_DEPTH] };
    static DEPTH: Cell<usize> = const { Cell::new(0) };
}

/// This thread's origin: the module that created it (0: none, or the executable).
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
pub fn thread_origin() -> u32 {
    ORIGIN.try_with(Cell::get).unwrap_or(0)
}

/// Records this thread's origin (the new thread's first act, `hooks/threads.rs`).
pub fn set_thread_origin(origin: u32) {
    let _ = ORIGIN.try_with(|c| c.set(origin));
}

/// The innermost label pushed on this thread, 0 for none.
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
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
        |_| Meta::class(CLASS_LABEL, false),
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
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
pub fn attribute() -> Who {
    let mut who = find();
    if who.module == 0 {
        who.module = match thread_origin() {
            0 => main_id(),
            o => o,
        };
    }
    if who.via == who.module {
        who.via = 0;
    }
    who
}

/// The module a thread created now should carry as its origin: the module on this thread's
/// stack, else this thread's own origin (0: none, the executable will be the fallback).
pub fn origin_for_new_thread() -> u32 {
    match find().module {
        0 => thread_origin(),
        m => m,
    }
}

/// The first module on this thread's stack (0 when there is none) and the `via` object.
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
fn find() -> Who {
    // Most sockets are opened by code that calls libc directly: its return address, found by
    // following the shim's own frame chain, settles it. Only when that caller may not be
    // charged (a system library such as libcurl, the runtime) does the unwinder walk further.
    if let Some(obj) = platform::caller_ip().and_then(|ip| platform::object_at(ip.saturating_sub(1))) {
        let id = object_id(obj);
        let m = meta(id);
        if m.flag && m.class != CLASS_CF {
            return Who {
                module: id,
                via: 0,
                label: current_label(),
                internal: false,
            };
        }
    }
    let mut who = Who {
        label: current_label(),
        ..Who::default()
    };
    let mut frames = 0;
    let mut first = true;
    platform::walk_stack(&mut |ip| {
        frames += 1;
        let Some(obj) = platform::object_at(ip.saturating_sub(1)) else {
            return frames < MAX_FRAMES;
        };
        let id = object_id(obj);
        let m = meta(id);
        if m.class == CLASS_SHIM {
            return frames < MAX_FRAMES;
        }
        if first {
            first = false;
            who.internal = m.class == CLASS_CF;
        }
        if who.via == 0 && !matches!(m.class, CLASS_RUNTIME | CLASS_INTERP) {
            who.via = id;
        }
        if m.flag {
            who.module = id;
            return false;
        }
        frames < MAX_FRAMES
    });
    who
}

/// The plugin a loaded object belongs to: itself when it is a plugin, the plugin that loaded it
/// when a plugin loaded it for itself; `None` for anything else.
fn plugin_of(id: u32) -> Option<u32> {
    let m = meta(id);
    if m.load != Load::Dlopen.code() {
        return None;
    }
    match (m.owner, m.class) {
        (0, CLASS_SHIM | CLASS_RUNTIME | CLASS_INTERP) => None,
        (0, _) => Some(id),
        (owner, _) => Some(owner),
    }
}

/// Who is asking for a `dlopen` (called by the shim's `dlopen` before the real one): the
/// plugin whose code calls `dlopen` itself, or through one library that wraps it (GLib's
/// `g_module_open`, libltdl, APR), loads the object for itself, and the object is part of
/// that plugin (GStreamer's soup plugin loading libsoup). Anything else is the program or a
/// library framework loading a plugin (GStreamer's registry, GIO's extension points, Apache's
/// `LoadModule`, Python's import), even when a plugin is further up the stack. 0 for those.
pub fn dlopen_requester() -> u32 {
    let mut first: Option<usize> = None;
    let mut owner = 0;
    let mut frames = 0;
    platform::walk_stack(&mut |ip| {
        frames += 1;
        let Some(obj) = platform::object_at(ip.saturating_sub(1)) else {
            return frames < MAX_FRAMES;
        };
        let id = object_id(obj);
        let m = meta(id);
        if matches!(m.class, CLASS_SHIM | CLASS_RUNTIME) {
            return frames < MAX_FRAMES;
        }
        match first {
            None => {
                first = Some(obj.base);
                if let Some(p) = plugin_of(id) {
                    owner = p;
                    return false;
                }
                // A system library loaded at start may be a wrapper of dlopen: look at its caller.
                m.class == CLASS_SYSTEM && frames < MAX_FRAMES
            }
            Some(base) if base == obj.base => frames < MAX_FRAMES,
            Some(_) => {
                owner = plugin_of(id).unwrap_or(0);
                false
            }
        }
    });
    owner
}
