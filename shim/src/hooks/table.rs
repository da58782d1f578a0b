//! The hook machinery: [`hook_table!`] turns one declaration per hooked function into
//!
//! * a real-function slot, resolved once (`dlsym(RTLD_NEXT)` on Linux) and then read with one
//!   relaxed atomic load;
//! * the exported replacement (`export_name` on Linux; an `__interpose` pair on macOS);
//! * the wrapper, which always does the same thing:
//!   1. pass straight through when the shim is disabled, when the call's fd (`[fd x]` or
//!      `[data x]`; `[fd x y]`: every one of them) is known not to be a socket, when a
//!      `syscall()` (`[sys n]`) is for a number the shim does not meter or on such an fd, or
//!      when this thread is already inside the shim
//!      (the guard). A `[data x]` hook on a *known* socket skips the guard: its `after`
//!      handler only adds to atomics and cannot re-enter (anything that might, such as
//!      starting the reporting thread, takes the guard itself);
//!   2. run the `around` handler's *before* part, if any, shielded from panics, with the guard
//!      held (a `rewrite` handler may give the real call other arguments here);
//!   3. call the real function **exactly once**, *without* the guard (a signal handler that
//!      runs while the host is blocked in the call is host code and is counted), and read
//!      errno right after it;
//!   4. run the *after* handler with the result, shielded from panics, with the guard held;
//!   5. restore errno and return the real result, untouched (the per-byte path on a known
//!      socket reads errno only after a failure and never changes it, so it skips the restore).
//!
//! The exported function itself only checks and jumps: to libc (not a socket), to `counted`
//! (a `[data x]` call on a known socket), to `slow` (steps 1-5 with the guard), or, on the
//! first call, to `unresolved` (which looks the real function up). Those are out of line so the
//! exported function saves no registers on its way to libc; that is measurable on a 64-byte
//! stream (docs/benchmarks.md, the `:paired` rows).
//!
//! A panic in a handler is caught, switches the shim off for the rest of the process (the
//! host keeps working, uncounted) and never repeats the real call. Handlers live in modules by
//! family; the table is in `hooks/list.rs`.

use std::ffi::{c_void, CStr};
use std::sync::atomic::{AtomicPtr, Ordering};

/// A real function's address, resolved on first use.
pub struct Slot {
    name: &'static [u8],
    /// A library's function (`[lib]`), found with `platform::library_symbol`.
    library: bool,
    ptr: AtomicPtr<c_void>,
}

impl Slot {
    /// A slot for the NUL-terminated symbol `name`, a library's (`library`) or the C library's.
    pub const fn new(name: &'static [u8], library: bool) -> Self {
        Slot {
            name,
            library,
            ptr: AtomicPtr::new(std::ptr::null_mut()),
        }
    }

    /// The real function, or null when the platform does not have it.
    #[inline]
    pub fn get(&self) -> *mut c_void {
        let p = self.ptr.load(Ordering::Relaxed);
        if !p.is_null() {
            return p;
        }
        self.resolve()
    }

    /// The real function if it was already resolved, else null (never resolves).
    #[inline(always)]
    pub fn loaded(&self) -> *mut c_void {
        self.ptr.load(Ordering::Relaxed)
    }

    #[cold]
    fn resolve(&self) -> *mut c_void {
        let Ok(name) = CStr::from_bytes_with_nul(self.name) else {
            return std::ptr::null_mut();
        };
        let p = if self.library {
            crate::platform::library_symbol(name)
        } else {
            crate::platform::next_symbol(name)
        };
        self.ptr.store(p, Ordering::Relaxed);
        p
    }
}

/// A hook's name, the address of its replacement function and its real-function slot.
pub struct HookAddr {
    /// The C symbol name.
    pub name: &'static str,
    /// The replacement's address.
    pub addr: *const (),
    /// The real function's slot.
    pub slot: &'static Slot,
    /// A function of a library other than the C library (`[lib]`): its real function is looked
    /// up only when the host calls it (never before a fork: a library the host did not load
    /// would only leave a failed look-up behind, in `dlerror()`).
    pub library: bool,
}

// SAFETY: the addresses are of functions, immutable and valid for the process's life.
unsafe impl Sync for HookAddr {}

/// A hooked function's return type: its failure value (returned, with errno ENOSYS, when the
/// real function does not exist) and whether a result is a failure (errno is then meaningful).
pub trait Fallback {
    /// The failure value.
    fn fallback() -> Self;
    /// Whether this result reports a failure.
    fn failed(&self) -> bool;
}
impl Fallback for i32 {
    fn fallback() -> Self {
        -1
    }
    #[inline]
    fn failed(&self) -> bool {
        *self < 0
    }
}
impl Fallback for isize {
    fn fallback() -> Self {
        -1
    }
    #[inline]
    fn failed(&self) -> bool {
        *self < 0
    }
}
impl Fallback for usize {
    /// `SIG_ERR`, the failure of `signal` and its kin (the one hooked function returning a
    /// `sighandler_t`).
    fn fallback() -> Self {
        usize::MAX
    }
    #[inline]
    fn failed(&self) -> bool {
        *self == usize::MAX
    }
}
impl Fallback for i64 {
    fn fallback() -> Self {
        -1
    }
    #[inline]
    fn failed(&self) -> bool {
        *self < 0
    }
}
impl Fallback for *mut c_void {
    /// NULL: a `CFSocketCreate*` that could not create one.
    fn fallback() -> Self {
        std::ptr::null_mut()
    }
    fn failed(&self) -> bool {
        self.is_null()
    }
}
impl Fallback for () {
    fn fallback() -> Self {}
    fn failed(&self) -> bool {
        false
    }
}

/// A `rewrite` handler's prepared value (see `hook_table!`): `A` is the hooked function's
/// argument tuple, `R` its result.
pub trait Rewrite<A, R> {
    /// The arguments for the real call (pointers into `self` stay valid until it returns).
    fn args(&mut self, original: A) -> A;
    /// The result the host gets, given the real one and its errno.
    fn result(&mut self, ret: R, errno: libc::c_int, original: A) -> R;
}

/// The failure value of a missing real function.
#[cold]
pub fn missing<R: Fallback>() -> R {
    crate::platform::set_errno(libc::ENOSYS);
    R::fallback()
}

/// Runs a handler, catching any panic; a panic switches the shim off.
#[inline]
pub fn shield<R>(f: impl FnOnce() -> R) -> Option<R> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => Some(r),
        Err(_) => {
            let e = crate::platform::errno();
            crate::runtime::disable_after_panic();
            crate::platform::set_errno(e);
            None
        }
    }
}

/// Declares the hooked functions. See the module docs for what each entry generates.
///
/// An entry is `fn NAME(ARGS) -> RET [MODE FDS] => KIND HANDLERS;` with, where needed:
/// `fn NAME = "SYMBOL" (...)` when the C symbol is not a Rust identifier (macOS's
/// `recvfrom$NOCANCEL`); a last argument `...NAME: TYPE` for a variadic C function (`fcntl`,
/// `open`: the real function is called as variadic, and the platform receives the optional
/// argument where its calling convention passes it); and the mode `[lib]` for a function of a
/// library other than the C library (CoreFoundation's): looked up only when the host calls
/// it (never before a fork), and weakly bound where the platform binds replacements at load.
macro_rules! hook_table {
    ($(
        $(#[$doc:meta])*
        fn $name:ident $(= $sym:literal)? ($($arg:ident : $ty:ty),* $(, ... $va:ident : $vty:ty)? $(,)?) -> $ret:ty $([$mode:ident $($fd:ident)*])? => $kind:ident $($h:path),+;
    )*) => {
        /// Every hook's C symbol, address and real-function slot (for rebinding the imports of
        /// objects that escape interposition, such as RTLD_DEEPBIND plugins, and for resolving
        /// the real functions before a fork).
        #[allow(unused_doc_comments)]
        pub static HOOKS: &[$crate::hooks::table::HookAddr] = &[$(
            $(#[$doc])*
            $crate::hooks::table::HookAddr {
                name: hook_table!(@sym $name $($sym)?),
                addr: $name::hook as *const (),
                slot: &$name::REAL,
                library: hook_table!(@library [$($mode)?]),
            },
        )*];

        $(
        $(#[$doc])*
        #[allow(non_snake_case, clippy::missing_safety_doc)]
        pub mod $name {
            #[allow(unused_imports)]
            use super::*;

            /// The real function's type.
            pub type Real = hook_table!(@real_type ($($ty),*) ($($vty)?) -> $ret);

            /// The real function's slot.
            pub static REAL: $crate::hooks::table::Slot =
                $crate::hooks::table::Slot::new(
                    concat!(hook_table!(@sym $name $($sym)?), "\0").as_bytes(),
                    hook_table!(@library [$($mode)?]),
                );

            /// The real function, if the platform has it.
            #[inline]
            pub fn real() -> Option<Real> {
                let p = REAL.get();
                // SAFETY: the slot holds null or the address of the libc function with this
                // exact C signature (resolved by name); `Option<fn>` has the pointer's layout.
                unsafe { std::mem::transmute::<*mut std::ffi::c_void, Option<Real>>(p) }
            }

            $crate::platform::replacement! {
                name = $name, symbol = [$($sym)?], library = [$($mode)?], fixed = [$($arg)*], variadic = [$($va)?],
                /// The replacement the host calls instead of the libc function.
                #[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
                pub unsafe extern "C" fn hook($($arg: $ty),* $(, $va: $vty)?) -> $ret {
                    // SAFETY: as in `real`: null or this exact C signature.
                    let loaded = unsafe { std::mem::transmute::<*mut std::ffi::c_void, Option<Real>>(REAL.loaded()) };
                    let Some(real) = loaded else { return unresolved($($arg,)* $($va)?) };
                    hook_table!(@pass real [$($mode $($fd)*)?] ($($arg),* $(, $va)?) $kind [$($h),+]);
                    slow(real, $($arg,)* $($va)?)
                }
            }

            /// The first call: resolve the real function, then go round again (out of line,
            /// so the wrapper's own path stays a few checks and a jump).
            #[cold]
            #[inline(never)]
            unsafe extern "C" fn unresolved($($arg: $ty),* $(, $va: $vty)?) -> $ret {
                if real().is_none() {
                    return $crate::hooks::table::missing();
                }
                hook($($arg,)* $($va)?)
            }

            hook_table!(@counted [$($mode)?] [$($h),+] ($($arg: $ty),* $(, $va: $vty)?) -> $ret);

            /// Everything but the fast pass: out of line, so the fast path saves and restores
            /// only the few registers it needs itself.
            #[inline(never)]
            #[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
            unsafe extern "C" fn slow(real: Real, $($arg: $ty),* $(, $va: $vty)?) -> $ret {
                if !$crate::runtime::active() || $crate::guard::held() {
                    return real($($arg,)* $($va)?);
                }
                hook_table!(@body $kind [$($mode)?] [$($h),+] real ($($arg),* $(, $va)?))
            }
        }
    )*};

    (@sym $name:ident) => { stringify!($name) };
    (@sym $name:ident $sym:literal) => { $sym };
    (@library [lib]) => { true };
    (@library [$($mode:ident)?]) => { false };
    (@real_type ($($ty:ty),*) () -> $ret:ty) => { unsafe extern "C" fn($($ty),*) -> $ret };
    (@real_type ($($ty:ty),*) ($vty:ty) -> $ret:ty) => { unsafe extern "C" fn($($ty),*, ...) -> $ret };

    (@pass $real:ident [] ($($arg:ident),*) $($rest:tt)*) => {};
    (@pass $real:ident [lib] ($($arg:ident),*) $($rest:tt)*) => {};
    (@pass $real:ident [fd $($fd:ident)+] ($($arg:ident),*) $($rest:tt)*) => {
        if $($crate::hooks::sockets::passes($fd))&&+ {
            return $real($($arg),*);
        }
    };
    // `syscall()`: straight through unless the call's number (and fd) is one the shim meters.
    (@pass $real:ident [sys $($n:ident)+] ($($arg:ident),*) $($rest:tt)*) => {
        if $crate::hooks::syscalls::passes($($arg),*) {
            return $real($($arg),*);
        }
    };
    (@pass $real:ident [data $fd:ident] ($($arg:ident),*) after [$after:path]) => {
        let reg = $crate::runtime::reg();
        match reg.fds.get($fd) {
            sockmeter::registry::FdState::NotSocket | sockmeter::registry::FdState::Ignored => {
                return $real($($arg),*);
            }
            sockmeter::registry::FdState::Record(idx) if $crate::runtime::active() => {
                return counted($real, idx, reg.records.get(idx), $($arg),*);
            }
            _ => {}
        }
    };

    (@counted [data] [$after:path] ($($arg:ident : $ty:ty),*) -> $ret:ty) => {
        /// The per-byte path on a known socket, out of line so that the wrapper itself only
        /// checks and jumps (no registers to save on the way to libc).
        ///
        /// The handler only adds to atomics and calls nothing that could re-enter, so no guard
        /// (and a send from a signal handler that interrupted another hook is still counted).
        /// errno matters only after a failure; the handler never changes it. The handler gets
        /// the record the check found, located before the call (the region only changes in a
        /// single-threaded moment: at load, in a fork child).
        #[inline(never)]
        #[allow(improper_ctypes_definitions)]
        #[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
        unsafe extern "C" fn counted(real: Real, idx: u32, rec: &'static sockmeter::registry::Record, $($arg: $ty),*) -> $ret {
            let known = Some($crate::hooks::sockets::Sock { idx, rec });
            let ret = real($($arg),*);
            // errno is read only after a failure, and not restored: nothing on this path can
            // change it (the handler adds to atomics; starting the shipper, the one call it may
            // make, and the panic path each preserve errno themselves), and one call to
            // `__errno_location` is a measurable part of a failing recv's cost.
            let e = if $crate::hooks::table::Fallback::failed(&ret) { $crate::platform::errno() } else { 0 };
            $crate::hooks::table::shield(|| $after(known, ret, e, $($arg),*));
            ret
        }
    };
    (@counted [$($mode:ident)?] $($rest:tt)*) => {};

    // The guard is held while handlers run and released across the real call: a signal
    // handler that interrupts a host blocked in accept() or connect() is host code.
    (@body after [data] [$after:path] $real:ident ($($arg:ident),*)) => {{
        let ret = $real($($arg),*);
        let e = $crate::platform::errno();
        $crate::guard::set();
        $crate::hooks::table::shield(|| $after(None, ret, e, $($arg),*));
        $crate::guard::leave();
        $crate::platform::set_errno(e);
        ret
    }};

    (@body after [$($mode:ident)?] [$after:path] $real:ident ($($arg:ident),*)) => {{
        let ret = $real($($arg),*);
        let e = $crate::platform::errno();
        $crate::guard::set();
        $crate::hooks::table::shield(|| $after(ret, e, $($arg),*));
        $crate::guard::leave();
        $crate::platform::set_errno(e);
        ret
    }};

    (@body around [$($mode:ident)?] [$before:path, $after:path] $real:ident ($($arg:ident),*)) => {{
        $crate::guard::set();
        // The host's errno as it was: a before-part that changes it must not leak into a real
        // call that succeeds (which leaves errno alone).
        let e0 = $crate::platform::errno();
        let pre = $crate::hooks::table::shield(|| $before($($arg),*));
        $crate::guard::leave();
        $crate::platform::set_errno(e0);
        let ret = $real($($arg),*);
        let e = $crate::platform::errno();
        $crate::guard::set();
        if let Some(pre) = pre {
            $crate::hooks::table::shield(|| $after(pre, ret, e, $($arg),*));
        }
        $crate::guard::leave();
        $crate::platform::set_errno(e);
        ret
    }};

    // `rewrite`: the handler prepares a value that may give the real call other arguments (it
    // owns what they point to, and stays in place until the call returns), and then sees the
    // result and may give the host another one (the signal hooks: the host's handler goes to
    // the kernel behind a trampoline, and reads back as the host's own).
    (@body rewrite [$($mode:ident)?] [$prepare:path] $real:ident ($($arg:ident),*)) => {{
        $crate::guard::set();
        let e0 = $crate::platform::errno();
        let mut pre = $crate::hooks::table::shield(|| $prepare($($arg),*));
        $crate::guard::leave();
        let changed = pre
            .as_mut()
            .and_then(|p| $crate::hooks::table::shield(|| $crate::hooks::table::Rewrite::args(p, ($($arg,)*))));
        $crate::platform::set_errno(e0);
        let ret = match changed {
            Some(($($arg,)*)) => $real($($arg),*),
            None => $real($($arg),*),
        };
        let e = $crate::platform::errno();
        $crate::guard::set();
        let ret = match pre.as_mut() {
            Some(p) => $crate::hooks::table::shield(|| $crate::hooks::table::Rewrite::result(p, ret, e, ($($arg,)*)))
                .unwrap_or(ret),
            None => ret,
        };
        $crate::guard::leave();
        $crate::platform::set_errno(e);
        ret
    }};
}
pub(crate) use hook_table;
