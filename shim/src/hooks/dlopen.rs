//! `dlopen`: which objects are plugins, and plugins loaded outside interposition (glibc's
//! `RTLD_DEEPBIND`).
//!
//! Every `dlopen` is noted before it runs (`crate::loads`: the file name, the time, and the
//! plugin asking for it, if a plugin loads a library for itself), so attribution can tell the
//! object named in a dlopen call (a plugin) from the libraries it pulls in. The call itself is
//! not changed: see below.
//!
//! A plugin opened with `RTLD_DEEPBIND` (`platform::DLOPEN_ISOLATED`; macOS has no such mode)
//! binds its imports to its own dependencies first, so its `send`, `connect`, ... go straight
//! to libc, past the preloaded hooks. The shim's `dlopen` therefore notes which objects are
//! loaded, lets the real `dlopen` run, and has the platform rebind the imports of every object
//! it added (`platform::rebind_objects_since`: the GOT, on Linux) to the hooks of this table.
//! The plugin is then metered like any other module, and a `notice` says so.
//!
//! Every other `dlopen` must behave exactly as if the shim were not there. The loader finds
//! the *caller* of `dlopen` from its return address (glibc: the caller's RUNPATH and
//! namespace; dyld: `@loader_path` and `@rpath`), so a wrapper that calls `dlopen` would
//! change which plugins a host finds. Our `dlopen` is therefore a naked function
//! (`platform::dlopen_trampoline!`: its machine code is the platform's): it calls [`note`]
//! with the host's arguments (saved and restored around the call), then *jumps* to the real
//! `dlopen`, leaving the host's return address in place. Its call-frame information
//! (`.cfi_*`) lets the unwinder walk through it from `note` to the host's frames. Other ways
//! of learning what was loaded were weighed (docs/architecture.md, "Plugins"): the loader's
//! private `link_map` fields (which object was opened directly) differ between glibc
//! versions, an audit library (`la_objopen`) needs `LD_AUDIT`, and diffing `dl_iterate_phdr`
//! around the call would need the call to return to the shim. Only an isolated open goes
//! through Rust code; there the caller seen by the loader is the shim, which matters only for
//! a bare library name that relies on the caller's RUNPATH (stated in docs/architecture.md).

use std::ffi::{c_void, CStr};
use std::sync::atomic::{AtomicPtr, Ordering::*};

use libc::{c_char, c_int};

use crate::platform;

/// The real dlopen, resolved by `resolve` (at load time) or by the slow path.
static REAL_DLOPEN: AtomicPtr<c_void> = AtomicPtr::new(std::ptr::null_mut());

type DlopenFn = unsafe extern "C" fn(*const c_char, c_int) -> *mut c_void;

/// Resolves the real dlopen (called at load time, before the host's first call).
pub fn resolve() -> Option<DlopenFn> {
    let mut p = REAL_DLOPEN.load(Acquire);
    if p.is_null() {
        p = platform::next_symbol(c"dlopen");
        REAL_DLOPEN.store(p, Release);
    }
    // SAFETY: null or libc's dlopen.
    unsafe { std::mem::transmute::<*mut c_void, Option<DlopenFn>>(p) }
}

platform::dlopen_trampoline!(dlopen_hook, note = note, real = REAL_DLOPEN, slow = dlopen_slow);

/// Notes a dlopen of `file` before the real call (`crate::loads`): never changes errno, never
/// unwinds into the naked caller.
extern "C" fn note(file: *const c_char, mode: c_int) {
    // RTLD_NOLOAD only asks whether an object is loaded: it loads nothing, and must not be the
    // call a later load is matched to.
    if file.is_null() || mode & libc::RTLD_NOLOAD != 0 || !crate::runtime::active() {
        return;
    }
    let e = platform::errno();
    if crate::guard::enter() {
        super::table::shield(|| {
            // SAFETY: dlopen's contract: a NUL-terminated file name.
            let name = unsafe { CStr::from_ptr(file) }.to_bytes();
            crate::loads::note_dlopen(name, crate::modules::dlopen_requester());
            // Under the preload stage: the objects earlier dlopens brought in call the hooks
            // directly from now (here, where the host takes the loader's locks itself next:
            // never on a socket call, which a signal handler may make while the interrupted
            // code holds them).
            super::bind_past_stage();
        });
        crate::guard::leave();
    }
    platform::set_errno(e);
}

/// Whether an open with `mode` escapes interposition (glibc's RTLD_DEEPBIND; never on a
/// platform without such a mode).
fn is_isolated(mode: c_int) -> bool {
    let mask = platform::DLOPEN_ISOLATED;
    mask != 0 && (mode & mask) == mask
}

/// An isolated open (or any open before the real dlopen was resolved).
unsafe extern "C" fn dlopen_slow(file: *const c_char, mode: c_int) -> *mut c_void {
    let isolated = is_isolated(mode);
    if isolated {
        note(file, mode);
    }
    let Some(real) = resolve() else {
        return std::ptr::null_mut();
    };
    if !isolated || !crate::runtime::active() || !crate::guard::enter() {
        // SAFETY: forwarding the caller's arguments unchanged.
        return unsafe { real(file, mode) };
    }
    let before = super::table::shield(platform::loaded_object_bases);
    // SAFETY: forwarding the caller's arguments unchanged.
    let handle = unsafe { real(file, mode) };
    let e = platform::errno();
    if let (false, Some(before)) = (handle.is_null(), before) {
        super::table::shield(|| rebind_new_objects(&before, file));
    }
    crate::guard::leave();
    platform::set_errno(e);
    handle
}

fn rebind_new_objects(before: &[usize], file: *const c_char) {
    let lookup = |name: &CStr| super::replacement(name.to_bytes());
    // SAFETY: every replacement is our hook for that exact libc symbol (same signature).
    let rebound = unsafe { platform::rebind_objects_since(before, &lookup) };
    let name = if file.is_null() {
        "(main program)".to_string()
    } else {
        // SAFETY: the caller's NUL-terminated file name.
        unsafe { CStr::from_ptr(file) }.to_string_lossy().into_owned()
    };
    let text = if rebound.failed.is_empty() {
        format!(
            "{name} was opened with RTLD_DEEPBIND; {} of its imports were rebound to the shim, so it is metered",
            rebound.patched
        )
    } else {
        format!(
            "{name} was opened with RTLD_DEEPBIND and could not be fully rebound ({}); its traffic may be missing",
            rebound.failed.join("; ")
        )
    };
    crate::runtime::add_notice("deepbind", text);
}
