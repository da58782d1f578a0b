//! `dlopen`: which objects are plugins, and RTLD_DEEPBIND plugins (Linux).
//!
//! Every `dlopen` is noted before it runs (`crate::loads`: the file name, the time, and the
//! plugin asking for it, if a plugin loads a library for itself), so attribution can tell the
//! object named in a dlopen call (a plugin) from the libraries it pulls in. The call itself is
//! not changed: see below.
//!
//! A plugin opened with `RTLD_DEEPBIND` binds its imports to its own dependencies first, so
//! its `send`, `connect`, ... go straight to libc, past the preloaded hooks. The shim's
//! `dlopen` therefore notes which objects are loaded, lets the real `dlopen` run, and rewrites
//! the GOT of every object it added (`elf_got`) so their imports of hooked functions point at
//! the hooks again. The plugin is then metered like any other module, and a `notice` says so.
//!
//! Every other `dlopen` must behave exactly as if the shim were not there. glibc finds the
//! *caller* of `dlopen` from its return address (for the caller's RUNPATH and namespace), so
//! a wrapper that calls `dlopen` would change which plugins a host finds. Our `dlopen` is
//! therefore a naked function: without RTLD_DEEPBIND in the mode it calls [`note`] with the
//! host's arguments (saved and restored around the call), then *jumps* to the real `dlopen`,
//! leaving the host's return address in place. Its call-frame information (`.cfi_*`) lets the
//! unwinder walk through it from `note` to the host's frames. Other ways of learning what was
//! loaded were weighed (docs/architecture.md, "Plugins"): the loader's private `link_map`
//! fields (which object was opened directly) differ between glibc versions, an audit library
//! (`la_objopen`) needs `LD_AUDIT`, and diffing `dl_iterate_phdr` around the call would need
//! the call to return to the shim. Only a DEEPBIND open goes through
//! Rust code; there the caller seen by glibc is the shim, which matters only for a bare
//! library name that relies on the caller's RUNPATH (stated in docs/architecture.md).

use std::ffi::{c_void, CStr};
use std::sync::atomic::{AtomicPtr, Ordering::*};

use libc::{c_char, c_int};

use super::elf_got;

/// The real dlopen, resolved by `resolve` (at load time) or by the slow path.
static REAL_DLOPEN: AtomicPtr<c_void> = AtomicPtr::new(std::ptr::null_mut());

type DlopenFn = unsafe extern "C" fn(*const c_char, c_int) -> *mut c_void;

/// Resolves the real dlopen (called from the constructor).
pub fn resolve() -> Option<DlopenFn> {
    let mut p = REAL_DLOPEN.load(Acquire);
    if p.is_null() {
        p = super::next_symbol(c"dlopen");
        REAL_DLOPEN.store(p, Release);
    }
    // SAFETY: null or libc's dlopen.
    unsafe { std::mem::transmute::<*mut c_void, Option<DlopenFn>>(p) }
}

/// The exported `dlopen`: a tail jump to the real one unless the mode has RTLD_DEEPBIND.
///
/// # Safety
/// Called by C code with dlopen's contract.
#[cfg(target_arch = "x86_64")]
#[unsafe(naked)]
#[export_name = "dlopen"]
pub unsafe extern "C" fn dlopen_hook(file: *const c_char, mode: c_int) -> *mut c_void {
    core::arch::naked_asm!(
        ".cfi_startproc",
        "test esi, {deep}",
        "jnz 2f",
        // note(file, mode), keeping the arguments (and a 16-byte aligned stack at the call).
        "push rdi",
        ".cfi_adjust_cfa_offset 8",
        "push rsi",
        ".cfi_adjust_cfa_offset 8",
        "sub rsp, 8",
        ".cfi_adjust_cfa_offset 8",
        "call {note}",
        "add rsp, 8",
        ".cfi_adjust_cfa_offset -8",
        "pop rsi",
        ".cfi_adjust_cfa_offset -8",
        "pop rdi",
        ".cfi_adjust_cfa_offset -8",
        "mov rax, qword ptr [rip + {real}]",
        "test rax, rax",
        "jz 2f",
        "jmp rax",
        "2:",
        "jmp {slow}",
        ".cfi_endproc",
        deep = const libc::RTLD_DEEPBIND,
        note = sym note,
        real = sym REAL_DLOPEN,
        slow = sym dlopen_slow,
    )
}

/// The exported `dlopen` on aarch64: as on x86_64.
///
/// # Safety
/// Called by C code with dlopen's contract.
#[cfg(target_arch = "aarch64")]
#[unsafe(naked)]
#[export_name = "dlopen"]
pub unsafe extern "C" fn dlopen_hook(file: *const c_char, mode: c_int) -> *mut c_void {
    core::arch::naked_asm!(
        ".cfi_startproc",
        "tst w1, #{deep}",
        "b.ne 2f",
        // note(file, mode), keeping the arguments and the link register.
        "stp x29, x30, [sp, #-32]!",
        ".cfi_def_cfa_offset 32",
        ".cfi_offset x29, -32",
        ".cfi_offset x30, -24",
        "mov x29, sp",
        "stp x0, x1, [sp, #16]",
        "bl {note}",
        "ldp x0, x1, [sp, #16]",
        "ldp x29, x30, [sp], #32",
        ".cfi_def_cfa_offset 0",
        ".cfi_restore x29",
        ".cfi_restore x30",
        "adrp x16, {real}",
        "ldr x16, [x16, :lo12:{real}]",
        "cbz x16, 2f",
        "br x16",
        "2:",
        "b {slow}",
        ".cfi_endproc",
        deep = const libc::RTLD_DEEPBIND,
        note = sym note,
        real = sym REAL_DLOPEN,
        slow = sym dlopen_slow,
    )
}

/// Notes a dlopen of `file` before the real call (`crate::loads`): never changes errno, never
/// unwinds into the naked caller.
extern "C" fn note(file: *const c_char, mode: c_int) {
    // RTLD_NOLOAD only asks whether an object is loaded: it loads nothing, and must not be the
    // call a later load is matched to.
    if file.is_null() || mode & libc::RTLD_NOLOAD != 0 || !crate::runtime::active() {
        return;
    }
    let e = super::errno();
    if crate::guard::enter() {
        crate::hooks::table::shield(|| {
            // SAFETY: dlopen's contract: a NUL-terminated file name.
            let name = unsafe { CStr::from_ptr(file) }.to_bytes();
            crate::loads::note_dlopen(name, crate::modules::dlopen_requester());
        });
        crate::guard::leave();
    }
    super::set_errno(e);
}

/// A DEEPBIND open (or any open before the real dlopen was resolved).
unsafe extern "C" fn dlopen_slow(file: *const c_char, mode: c_int) -> *mut c_void {
    if mode & libc::RTLD_DEEPBIND != 0 {
        note(file, mode);
    }
    let Some(real) = resolve() else {
        return std::ptr::null_mut();
    };
    if mode & libc::RTLD_DEEPBIND == 0 || !crate::runtime::active() || !crate::guard::enter() {
        // SAFETY: forwarding the caller's arguments unchanged.
        return unsafe { real(file, mode) };
    }
    let before = crate::hooks::table::shield(|| {
        elf_got::loaded_objects()
            .into_iter()
            .map(|o| o.base)
            .collect::<Vec<_>>()
    });
    // SAFETY: forwarding the caller's arguments unchanged.
    let handle = unsafe { real(file, mode) };
    let e = super::errno();
    if let (false, Some(before)) = (handle.is_null(), before) {
        crate::hooks::table::shield(|| rebind_new_objects(&before, file));
    }
    crate::guard::leave();
    super::set_errno(e);
    handle
}

fn rebind_new_objects(before: &[usize], file: *const c_char) {
    let shim = super::shim_base();
    let mut patched = 0usize;
    let mut failed = Vec::new();
    for obj in elf_got::loaded_objects() {
        if before.contains(&obj.base) || obj.base == shim || super::is_runtime_library(obj.name.as_bytes()) {
            continue;
        }
        let lookup = |name: &CStr| crate::hooks::table::replacement(name.to_bytes());
        // SAFETY: every replacement is our hook for that exact libc symbol (same signature).
        match unsafe { elf_got::patch_object(&obj, &lookup) } {
            Ok(n) => patched += n,
            Err(e) => failed.push(format!("{}: {e}", obj.name.to_string_lossy())),
        }
    }
    let name = if file.is_null() {
        "(main program)".to_string()
    } else {
        // SAFETY: the caller's NUL-terminated file name.
        unsafe { CStr::from_ptr(file) }.to_string_lossy().into_owned()
    };
    let text = if failed.is_empty() {
        format!(
            "{name} was opened with RTLD_DEEPBIND; {patched} of its imports were rebound to the shim, so it is metered"
        )
    } else {
        format!(
            "{name} was opened with RTLD_DEEPBIND and could not be fully rebound ({}); its traffic may be missing",
            failed.join("; ")
        )
    };
    crate::runtime::add_notice("deepbind", text);
}
