//! How each loaded object came into the process: at start (the executable, a linked or a
//! preloaded library) or later, named in a `dlopen` call (a plugin), or neither (a plugin's
//! dependency, a library libc loaded on its own).
//!
//! Two records, both fixed tables that need no allocation:
//!
//! * **the start set**: the loader's name pointer (`l_name`) of every object loaded when the
//!   shim's constructor ran (or when the first `dlopen` was called, if that came first), and
//!   whether `LD_PRELOAD` named it. Objects loaded at start are never unloaded, so the pointer
//!   identifies them for the life of the image.
//! * **the dlopen calls**: the shim's `dlopen` notes each file name it is given (before the
//!   call, without changing it: see `hooks/dlopen.rs`), with the time and the plugin that
//!   asked for it, if any ([`crate::modules::dlopen_requester`]).
//!
//! An object loaded later is matched to the first call that named it: by its whole name (the
//! loader keeps a name with a `/` as given) or, for a bare name such as `libsoup-2.4.so.1`
//! (which the loader found on its search path) and a name with `$ORIGIN`-style tokens, by file
//! name. Lookups happen once per object, when attribution first meets it on a stack.

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering::*};

use libc::c_char;
use sockmeter::Load;

use crate::platform;

/// Objects remembered from the start (a program links a few dozen).
const MAX_START: usize = 1024;
/// Distinct file names remembered from dlopen calls.
const MAX_DLOPENS: usize = 4096;

static START: [AtomicUsize; MAX_START] = [const { AtomicUsize::new(0) }; MAX_START];
static START_PRELOADED: [AtomicU8; MAX_START] = [const { AtomicU8::new(0) }; MAX_START];
static START_N: AtomicUsize = AtomicUsize::new(0);
/// 0: not taken, 1: being taken, 2: taken.
static START_STATE: AtomicU8 = AtomicU8::new(0);
static START_MS: AtomicU64 = AtomicU64::new(0);

struct Call {
    ready: AtomicU8,
    /// Hash of the whole name as given.
    full: AtomicU64,
    /// Hash of its file name.
    file: AtomicU64,
    /// Matched by file name too (a bare name, or one with `$` tokens).
    by_file: AtomicU8,
    ms: AtomicU64,
    owner: AtomicU32,
}

static CALLS: [Call; MAX_DLOPENS] = [const {
    Call {
        ready: AtomicU8::new(0),
        full: AtomicU64::new(0),
        file: AtomicU64::new(0),
        by_file: AtomicU8::new(0),
        ms: AtomicU64::new(0),
        owner: AtomicU32::new(0),
    }
}; MAX_DLOPENS];
static CALLS_N: AtomicUsize = AtomicUsize::new(0);

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
    })
}

fn file_name(path: &[u8]) -> &[u8] {
    path.rsplit(|&b| b == b'/').next().unwrap_or(path)
}

/// Called by the load-time constructor: the image's start time and the start set.
pub fn at_load() {
    START_MS.store(platform::now_ms(), Relaxed);
    take_start_set();
}

/// When the image started (the shim's load), ms since the epoch.
pub fn start_ms() -> u64 {
    START_MS.load(Relaxed)
}

/// Whether `LD_PRELOAD` (as it was at start) names the object the loader calls `name`.
fn preloaded(list: &[u8], name: &[u8]) -> bool {
    list.split(|&b| b == b':' || b == b' ')
        .filter(|e| !e.is_empty())
        .any(|e| e == name || (!e.contains(&b'/') && e == file_name(name)))
}

/// Takes the start set once (later callers wait for the first).
fn take_start_set() {
    match START_STATE.compare_exchange(0, 1, AcqRel, Acquire) {
        Ok(_) => {}
        Err(_) => {
            for _ in 0..(1 << 22) {
                if START_STATE.load(Acquire) == 2 {
                    return;
                }
                std::hint::spin_loop();
            }
            return;
        }
    }
    if START_MS.load(Relaxed) == 0 {
        START_MS.store(platform::now_ms(), Relaxed);
    }
    // The variable as the process started with it (the preload stage's copy, when it loaded
    // the shim later).
    let pre = platform::PRELOAD_VAR.to_str().ok().and_then(platform::start_var);
    let list: &[u8] = pre
        .as_deref()
        .map(std::os::unix::ffi::OsStrExt::as_bytes)
        .unwrap_or_default();
    let mut n = 0;
    platform::for_each_object(&mut |name| {
        if n < MAX_START && !name.is_null() {
            START[n].store(name as usize, Relaxed);
            // SAFETY: the loader's NUL-terminated l_name of a loaded object.
            let text = unsafe { std::ffi::CStr::from_ptr(name) }.to_bytes();
            START_PRELOADED[n].store(u8::from(preloaded(list, text)), Relaxed);
            n += 1;
        }
    });
    START_N.store(n, Release);
    START_STATE.store(2, Release);
}

/// Notes a `dlopen` of `file` asked for by plugin `owner` (0: by the program or a library
/// framework). Called before the real dlopen; the first call naming a file is kept.
pub fn note_dlopen(file: &[u8], owner: u32) {
    take_start_set();
    let full = fnv(file);
    let n = CALLS_N.load(Acquire).min(MAX_DLOPENS);
    if CALLS[..n]
        .iter()
        .any(|c| c.ready.load(Acquire) == 1 && c.full.load(Relaxed) == full)
    {
        return;
    }
    let i = CALLS_N.fetch_add(1, AcqRel);
    let Some(c) = CALLS.get(i) else {
        CALLS_N.store(MAX_DLOPENS, Relaxed);
        return;
    };
    c.full.store(full, Relaxed);
    c.file.store(fnv(file_name(file)), Relaxed);
    c.by_file
        .store(u8::from(!file.contains(&b'/') || file.contains(&b'$')), Relaxed);
    c.ms.store(platform::now_ms(), Relaxed);
    c.owner.store(owner, Relaxed);
    c.ready.store(1, Release);
}

/// How an object came in.
#[derive(Clone, Copy, Debug)]
pub struct Origin {
    /// Executable, linked, preloaded, dlopen or dependency.
    pub load: Load,
    /// When, ms since the epoch (0: not known).
    pub ms: u64,
    /// For an object named in a dlopen call that a plugin made: that plugin's name id.
    pub owner: u32,
}

/// How the object the loader calls `name` (its `l_name` pointer; `raw` is the text) came in.
/// Not for the main program (always [`Load::Executable`]).
pub fn origin(name: *const c_char, raw: &[u8]) -> Origin {
    take_start_set();
    let n = START_N.load(Acquire).min(MAX_START);
    if let Some(i) = START[..n].iter().position(|p| p.load(Relaxed) == name as usize) {
        let load = if START_PRELOADED[i].load(Relaxed) == 1 {
            Load::Preloaded
        } else {
            Load::Linked
        };
        return Origin {
            load,
            ms: start_ms(),
            owner: 0,
        };
    }
    let (full, file) = (fnv(raw), fnv(file_name(raw)));
    let calls = CALLS_N.load(Acquire).min(MAX_DLOPENS);
    let hit = CALLS[..calls].iter().find(|c| {
        c.ready.load(Acquire) == 1
            && (c.full.load(Relaxed) == full || (c.by_file.load(Relaxed) == 1 && c.file.load(Relaxed) == file))
    });
    match hit {
        Some(c) => Origin {
            load: Load::Dlopen,
            ms: c.ms.load(Relaxed),
            owner: c.owner.load(Relaxed),
        },
        None => Origin {
            load: Load::Dependency,
            ms: 0,
            owner: 0,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::preloaded;

    #[test]
    fn ld_preload_entries_by_path_or_bare_name() {
        let list = b"/opt/x/libsockmeter_shim.so libfoo.so:";
        assert!(preloaded(list, b"/opt/x/libsockmeter_shim.so"));
        assert!(preloaded(list, b"/usr/lib/libfoo.so"));
        assert!(!preloaded(list, b"/usr/lib/libbar.so"));
        assert!(!preloaded(list, b"/other/libsockmeter_shim.so"));
        assert!(!preloaded(b"", b"/usr/lib/libfoo.so"));
    }
}
