//! # The preload stage (`libsockmeter_preload.so`): free for a program with nothing to meter
//!
//! `sockmeter run` preloads this small library, not the shim. It exports every function the
//! shim exports (the one hook table, `shim/src/hooks/list.rs`, included below, plus the few
//! exports outside the table: `dlopen`, the `execl` family and the C API), and each export is
//! a few instructions:
//!
//! * once the shim is loaded, a jump to the shim's export of the same name (one load, one
//!   test, one indirect jump: the host's registers, stack and return address untouched);
//! * before that, what a process with nothing to meter needs, and no more:
//!   - a call on an fd (the table's `[fd x]` and `[data x]`) goes to libc when the fd is not a
//!     socket: known from a table of one byte per fd, or asked of the kernel once (`fstat`);
//!   - the calls that make fds that are never sockets (the `files` family: `open`, `pipe`,
//!     `fopen`, ...) go to libc and mark the new fd "not a socket", as the shim does;
//!   - the calls that release fd numbers (`close`, `close_range`, `closefrom`, `dup2`,
//!     `dup3`, `fclose`, `freopen`) forget what the number was, after the same socket check;
//!   - `syscall()` goes to libc for a number the shim does not meter (the shim's own test,
//!     `hooks/syscalls.rs`, on the same table);
//!   - `sigaction`, `signal` and their kin go to libc: the shim, once loaded, puts the
//!     handlers it finds installed behind its trampoline (`hooks/signals.rs`);
//!   - `_exit` and `_Exit` go to libc: a process without the shim has nothing to flush;
//!   - everything else (a socket met on any of those paths, `socket`, the resolver, `wait`,
//!     `exec` and `posix_spawn` (the shim checks the program first), threads, `dlopen`,
//!     io_uring, CFSocket, the C API) loads the shim with `dlopen` first and then jumps to it,
//!     as if it had been there from the start.
//!
//! So a program that never meets a socket (a compiler, `sed`, `/bin/true`) maps one small
//! library with a dozen imports and runs a constructor of a few hundred instructions, instead
//! of loading a Rust library with `std` (docs/benchmarks.md, issue 14).
//!
//! The constructor keeps what the shim would have read at the start and may no longer find
//! later: the `SOCKMETER_*` and `LD_PRELOAD` variables as they were (a host may change its
//! environment), the time the process image started, and its pid (a fork child's, through a
//! fork handler). The shim asks for them with `sockmeter_stage1_start`.
//!
//! The shim is never loaded in a vfork child (it shares its parent's memory: a load there
//! would be its parent's, with the child's pid), nor from inside the load itself (a hook the
//! loader or the shim's constructor calls goes straight to libc). If the shim cannot be loaded
//! (a missing file), one line says so on stderr and every call goes straight to libc: the host
//! keeps working, unmetered.
//!
//! No `std`, no allocation, no panics (`panic = "abort"`, and nothing here can panic but an
//! index the code checks first); `shim/build.rs` compiles it with `rustc`.
#![no_std]
#![allow(
    non_camel_case_types,
    non_snake_case,
    non_upper_case_globals,
    dead_code,
    unused_imports
)]

use core::ffi::{c_char, c_int, c_long, c_uint, c_ulong, c_void};
use core::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering::*};

mod sys;
#[path = "../src/hooks/sysclass.rs"]
mod sysclass;
mod trampoline;

use sys::*;

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    // SAFETY: abort never returns; nothing here panics (see the module's docs).
    unsafe { abort() }
}

/// What an export does before the shim is loaded.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Load the shim and jump to it.
    Load,
    /// A call on the fds its probe returns: libc unless one is a socket.
    Fds,
    /// `syscall()`: libc unless the shim meters the number (or the fd is a socket).
    Sys,
    /// Makes an fd that is never a socket: libc, then the new fd is "not a socket".
    Makes,
    /// `pipe`/`pipe2`: as [`Class::Makes`], for the two fds in the array.
    MakesPair,
    /// `fopen` and its kin: as [`Class::Makes`], for the stream's fd.
    MakesStream,
    /// `close`: libc unless the fd is a socket; the number is forgotten.
    Close,
    /// `dup2`/`dup3`: as [`Class::Fds`] for the old fd; the new number is forgotten.
    DupTo,
    /// `close_range(first, last, flags)`: every number in the range is forgotten.
    CloseRange,
    /// `closefrom(low)`: every number from `low` up is forgotten.
    CloseFrom,
    /// `fclose`/`freopen`: as [`Class::Close`] for the stream's fd (`freopen`: the third
    /// argument).
    StdioClose,
    /// `sigaction`, `signal` and its kin: a handler for a signal a process is sent (SIGINT,
    /// SIGALRM, SIGCHLD...) loads the shim first, so that no such handler can be the first to
    /// meet a socket, loading the shim inside a signal handler; asking, the default, "ignore",
    /// and a handler for the faults of a bad instruction (SIGSEGV, SIGBUS, SIGILL, SIGFPE,
    /// SIGTRAP, SIGSYS: GNU tools install one to report a stack overflow) go to libc. The shim,
    /// once loaded, puts the handlers it finds installed behind its trampoline, as if they had
    /// come through its hooks.
    Signals,
    /// `_exit`/`_Exit`: libc (a process that never loaded the shim has nothing to flush).
    Pass,
}

/// The longest name an export may have, with its NUL.
pub const NAME_MAX: usize = 48;

/// `s` (NUL-terminated) in a fixed array.
const fn name(s: &str) -> [u8; NAME_MAX] {
    let b = s.as_bytes();
    assert!(b.len() <= NAME_MAX, "an export's name is longer than NAME_MAX");
    let mut out = [0u8; NAME_MAX];
    let mut i = 0;
    while i < b.len() {
        out[i] = b[i];
        i += 1;
    }
    out
}

/// The fds (or `syscall()`'s number and first argument) an entry's probe found.
#[repr(C)]
pub struct Probe {
    pub a: i64,
    pub b: i64,
}

/// Builds the exports from the hook table: an index per entry (`Hook`), their names, classes
/// and argument probes in the same order, and per entry a naked export
/// (`trampoline::export!`).
macro_rules! hook_table {
    ($(
        $(#[$doc:meta])*
        fn $name:ident $(= $sym:literal)? ($($arg:ident : $ty:ty),* $(, ... $va:ident : $vty:ty)? $(,)?) -> $ret:ty $([$mode:ident $($fd:ident)*])? => $kind:ident $($fam:ident :: $h:ident),+;
    )*) => {
        /// The table's entries, numbered.
        #[repr(usize)]
        pub enum Hook { $($(#[$doc])* $name,)* Extra }

        /// The table's names, in [`Hook`]'s order (arrays, not pointers: nothing to relocate
        /// when the library loads).
        #[allow(unused_doc_comments)]
        pub static NAMES: [[u8; NAME_MAX]; Hook::Extra as usize] = [$(
            $(#[$doc])*
            name(concat!(stringify!($name), "\0")),
        )*];

        /// What each entry does before the shim is loaded, in [`Hook`]'s order.
        #[allow(unused_doc_comments)]
        pub static CLASSES: [Class; Hook::Extra as usize] = [$(
            $(#[$doc])*
            hook_table!(@class [$($mode)?] $kind $($fam $h)+),
        )*];

        /// The fds (or `syscall()`'s number and first argument, or a signal and its handler)
        /// in entry `i`'s arguments, given the six argument registers.
        #[allow(unused_doc_comments)]
        pub fn probe(i: usize, r: [usize; 6]) -> Probe {
            match i {
                $(
                $(#[$doc])*
                x if x == Hook::$name as usize => {
                    #[allow(unused_variables, clippy::too_many_arguments)]
                    extern "C" fn p($($arg: usize,)* $($va: usize)?) -> Probe {
                        hook_table!(@probe [$($mode $($fd)*)?] $kind $($fam $h)+ ; $($arg)*)
                    }
                    // SAFETY: `p` reads at most six integer arguments; called with six.
                    let f = unsafe {
                        core::mem::transmute::<*const (), extern "C" fn(usize, usize, usize, usize, usize, usize) -> Probe>(
                            p as *const (),
                        )
                    };
                    f(r[0], r[1], r[2], r[3], r[4], r[5])
                }
                )*
                _ => Probe { a: -1, b: -1 },
            }
        }

        /// The exports.
        #[allow(unused_doc_comments)]
        pub mod exports {
            use super::trampoline;
            $(
            $(#[$doc])*
            trampoline::export!(
                $name,
                super::Hook::$name as usize,
                super::fast_path(
                    hook_table!(@class [$($mode)?] $kind $($fam $h)+),
                    hook_table!(@first [$($mode $($fd)*)?] $($arg)*)
                )
            );
            )*
        }
    };

    (@class [data] $($rest:tt)*) => { $crate::Class::Fds };
    (@class [fd] $($rest:tt)*) => { $crate::Class::Fds };
    (@class [sys] $($rest:tt)*) => { $crate::Class::Sys };
    (@class [lib] $($rest:tt)*) => { $crate::Class::Load };
    (@class [] after files pipe) => { $crate::Class::MakesPair };
    (@class [] after files pipe2) => { $crate::Class::MakesPair };
    (@class [] after files fopen) => { $crate::Class::MakesStream };
    (@class [] after files $h:ident) => { $crate::Class::Makes };
    (@class [] around files $b:ident files $a:ident) => { $crate::Class::StdioClose };
    (@class [] around lifecycle close_before lifecycle $a:ident) => { $crate::Class::Close };
    (@class [] around lifecycle dup2_before lifecycle $a:ident) => { $crate::Class::DupTo };
    (@class [] around lifecycle dup3_before lifecycle $a:ident) => { $crate::Class::DupTo };
    (@class [] around lifecycle close_range_before lifecycle $a:ident) => { $crate::Class::CloseRange };
    (@class [] around lifecycle closefrom_before lifecycle $a:ident) => { $crate::Class::CloseFrom };
    (@class [] rewrite signals $h:ident) => { $crate::Class::Signals };
    (@class [] around process exit_before process $a:ident) => { $crate::Class::Pass };
    (@class [] after process spawn_adddup2) => { $crate::Class::Fds };
    (@class [] $($rest:tt)*) => { $crate::Class::Load };

    (@first [data $fd:ident] $a0:ident $($rest:ident)*) => { $crate::same_name(stringify!($fd), stringify!($a0)) };
    (@first [fd $fd:ident] $a0:ident $($rest:ident)*) => { $crate::same_name(stringify!($fd), stringify!($a0)) };
    (@first [$($x:tt)*] $($rest:tt)*) => { false };

    (@probe [data $fd:ident] $($rest:tt)*) => { Probe { a: $fd as c_int as i64, b: -1 } };
    (@probe [fd $fd:ident] $($rest:tt)*) => { Probe { a: $fd as c_int as i64, b: -1 } };
    (@probe [fd $x:ident $y:ident] $($rest:tt)*) => { Probe { a: $x as c_int as i64, b: $y as c_int as i64 } };
    (@probe [sys $n:ident] $kind:ident $($f:ident $h:ident)+ ; $a0:ident $a1:ident $($more:ident)*) => {
        Probe { a: $a0 as c_long as i64, b: $a1 as c_long as i64 }
    };
    (@probe [] around lifecycle $b:ident lifecycle $a:ident ; $a0:ident $($more:ident)*) => {
        Probe { a: $a0 as i64, b: -1 }
    };
    (@probe [] around files freopen_before files $a:ident ; $p:ident $m:ident $f:ident) => {
        Probe { a: stream_fd($f), b: -1 }
    };
    (@probe [] around files fclose_before files $a:ident ; $f:ident) => {
        Probe { a: stream_fd($f), b: -1 }
    };
    (@probe [] rewrite signals sigaction ; $sig:ident $act:ident $($more:ident)*) => {
        $crate::Probe { a: $sig as c_int as i64, b: $crate::handler_of($act) }
    };
    (@probe [] rewrite signals signal ; $sig:ident $handler:ident) => {
        $crate::Probe { a: $sig as c_int as i64, b: $handler as i64 }
    };
    (@probe [] after process spawn_adddup2 ; $actions:ident $fd:ident $new:ident) => {
        Probe { a: $fd as c_int as i64, b: -1 }
    };
    (@probe [$($x:tt)*] $($rest:tt)*) => { Probe { a: -1, b: -1 } };
}

include!("../src/hooks/list.rs");

/// The exports outside the hook table (each made by its own module in the shim):
/// `hooks/dlopen.rs`, `hooks/execlist.rs` and `capi.rs`. `shim/tests/stage1.rs` checks that
/// the two libraries export the same names.
pub static EXTRA: &[&[u8]] = &[
    b"dlopen\0",
    b"execl\0",
    b"execle\0",
    b"execlp\0",
    b"sockmeter_flush\0",
    b"sockmeter_label_pop\0",
    b"sockmeter_label_push\0",
    b"sockmeter_selftest_unwind\0",
    b"sockmeter_snapshot_json\0",
    b"sockmeter_string_free\0",
    b"sockmeter_subscribe\0",
    b"sockmeter_unsubscribe\0",
    b"sockmeter_version\0",
    b"vfork\0",
];

/// Exports outside the table, numbered after it.
pub mod extra_exports {
    use super::trampoline;
    trampoline::export_extra!(dlopen, "dlopen", 0);
    trampoline::export_extra!(execl, "execl", 1);
    trampoline::export_extra!(execle, "execle", 2);
    trampoline::export_extra!(execlp, "execlp", 3);
    trampoline::export_extra!(sockmeter_flush, "sockmeter_flush", 4);
    trampoline::export_extra!(sockmeter_label_pop, "sockmeter_label_pop", 5);
    trampoline::export_extra!(sockmeter_label_push, "sockmeter_label_push", 6);
    trampoline::export_extra!(sockmeter_selftest_unwind, "sockmeter_selftest_unwind", 7);
    trampoline::export_extra!(sockmeter_snapshot_json, "sockmeter_snapshot_json", 8);
    trampoline::export_extra!(sockmeter_string_free, "sockmeter_string_free", 9);
    trampoline::export_extra!(sockmeter_subscribe, "sockmeter_subscribe", 10);
    trampoline::export_extra!(sockmeter_unsubscribe, "sockmeter_unsubscribe", 11);
    trampoline::export_extra!(sockmeter_version, "sockmeter_version", 12);
    trampoline::export_extra!(vfork, "vfork", super::VFORK);
}

/// `vfork`, the one export the shim does not have: it loads the shim first (in the parent, an
/// ordinary context), then jumps to libc's. A vfork child shares its parent's memory and must
/// never load the shim itself, yet its `exec` is where the shim checks the program about to
/// run: so the parent has the shim before the child exists.
pub const VFORK: usize = 13;

/// Every export: the table's, then [`EXTRA`].
pub const TOTAL: usize = Hook::Extra as usize + 14;

/// Per export, the shim's function once it is loaded (0 before). The exports read it first.
pub static SOCKMETER_STAGE2: [AtomicUsize; TOTAL] = [const { AtomicUsize::new(0) }; TOTAL];
/// Per export, libc's function (resolved on first use).
pub static REAL: [AtomicUsize; TOTAL] = [const { AtomicUsize::new(0) }; TOTAL];

fn name_of(i: usize) -> &'static [u8] {
    if i < Hook::Extra as usize {
        &NAMES[i]
    } else {
        EXTRA[i - Hook::Extra as usize]
    }
}

/// The shim's state: not loaded, being loaded, loaded, could not be loaded.
static STATE: AtomicU8 = AtomicU8::new(0);
const NONE: u8 = 0;
const LOADING: u8 = 1;
const LOADED: u8 = 2;
const FAILED: u8 = 3;
/// The thread loading it (its kernel id): its own hooked calls go to libc meanwhile.
static LOADER_TID: AtomicU32 = AtomicU32::new(0);

/// What `s1_route` tells the naked slow path: jump to `target` with the host's registers
/// (`call == 0`), or call it and then `s1_mark` (`call == 1`).
#[repr(C)]
pub struct Route {
    target: usize,
    call: usize,
}

/// Whether two names are the same (for the table's macro, at compile time).
pub const fn same_name(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// The export's own path to libc before the shim is loaded, without `s1_slow`
/// (`trampoline.rs`): 1 for a call whose one fd is its first argument (to libc when the table
/// says "not a socket"), 2 for `close` (the same, and the number is forgotten), 0 for none.
pub const fn fast_path(class: Class, fd_first: bool) -> usize {
    match class {
        Class::Fds if fd_first => 1,
        Class::Close => 2,
        Class::Makes => 3,
        _ => 0,
    }
}

/// The fd table: 0 unknown, 1 not a socket. Numbers past it are always asked.
pub const MAX_FD: usize = 1 << 16;
pub static FDS: [AtomicU8; MAX_FD] = [const { AtomicU8::new(0) }; MAX_FD];
const NOT_SOCKET: u8 = 1;

fn forget(fd: i64) {
    if (0..MAX_FD as i64).contains(&fd) {
        FDS[fd as usize].store(0, Relaxed);
    }
}

fn mark(fd: i64) {
    if (0..MAX_FD as i64).contains(&fd) {
        FDS[fd as usize].store(NOT_SOCKET, Relaxed);
    }
}

/// Whether `fd` is a socket (asked of the kernel once per number, while it stays open). An
/// invalid fd is not one: the real call reports it.
fn is_socket(fd: i64) -> bool {
    if fd < 0 {
        return false;
    }
    if fd < MAX_FD as i64 && FDS[fd as usize].load(Relaxed) == NOT_SOCKET {
        return false;
    }
    let saved = errno();
    let kind = fd_kind(fd as c_int);
    set_errno(saved);
    match kind {
        FdKind::Socket => true,
        FdKind::Other => {
            mark(fd);
            false
        }
        FdKind::Invalid => false,
    }
}

/// The handler a `sigaction` call would set (`sa_handler` is the struct's first word), or -1
/// when it sets none.
pub extern "C" fn handler_of(act: usize) -> i64 {
    if act == 0 {
        return -1;
    }
    // SAFETY: a non-null `struct sigaction` pointer the host passes (libc reads it too); its
    // first word is read.
    unsafe { *(act as *const usize) as i64 }
}

pub extern "C" fn stream_fd(f: usize) -> i64 {
    if f == 0 {
        return -1;
    }
    // SAFETY: a non-null FILE pointer the host passes to fclose/freopen; fileno only reads it.
    unsafe { fileno(f as *mut c_void) as i64 }
}

/// libc's function for export `i`, or 0.
fn real(i: usize) -> usize {
    let p = REAL[i].load(Relaxed);
    if p != 0 {
        return p;
    }
    // SAFETY: dlsym with RTLD_NEXT and a NUL-terminated name.
    let p = unsafe { dlsym(RTLD_NEXT, name_of(i).as_ptr() as *const c_char) } as usize;
    REAL[i].store(p, Relaxed);
    p
}

/// The slow path of every export before the shim is loaded (see the module's docs). `regs`
/// holds, from its start: the index, rax, r9, r8, rcx, rdx, rsi, rdi (`trampoline.rs`).
pub extern "C" fn s1_route(i: usize, regs: *const usize) -> Route {
    // SAFETY: the naked caller saved eight words there.
    let r = unsafe { core::slice::from_raw_parts(regs, 8) };
    let args = [r[7], r[6], r[5], r[4], r[3], r[2]];
    let jump = |t: usize| Route { target: t, call: 0 };
    let to_libc = |i: usize| -> Route {
        let t = real(i);
        if t == 0 {
            return jump(missing as *const () as usize);
        }
        jump(t)
    };
    if i == Hook::Extra as usize + VFORK {
        load();
        return to_libc(i);
    }
    if i >= Hook::Extra as usize {
        return load_then(i);
    }
    let p = probe(i, args);
    match CLASSES[i] {
        Class::Load => load_then(i),
        Class::Pass => to_libc(i),
        Class::Signals => {
            // SIGILL, SIGTRAP, SIGBUS, SIGFPE, SIGSEGV, SIGSYS.
            let fault = matches!(p.a, 4 | 5 | 7 | 8 | 11 | 31);
            // A function: not SIG_DFL (0), SIG_IGN (1), SIG_HOLD (2) or SIG_ERR (-1); -1 also
            // stands for "no new action".
            let function = p.b > 2;
            if STATE.load(Acquire) != NONE || (function && !fault) {
                load_then(i)
            } else {
                to_libc(i)
            }
        }
        Class::Fds => {
            if is_socket(p.a) || is_socket(p.b) {
                load_then(i)
            } else {
                to_libc(i)
            }
        }
        Class::Sys => match sysclass::sys_class(p.a as c_long) {
            sysclass::SysClass::Pass => to_libc(i),
            sysclass::SysClass::OnFd if !is_socket(p.b) => to_libc(i),
            // sendfile/splice through syscall(): rare; the shim decides.
            _ => load_then(i),
        },
        Class::Makes | Class::MakesPair | Class::MakesStream => {
            let t = real(i);
            if t == 0 {
                return jump(missing as *const () as usize);
            }
            Route { target: t, call: 1 }
        }
        Class::Close | Class::StdioClose => {
            if is_socket(p.a) {
                return load_then(i);
            }
            forget(p.a);
            to_libc(i)
        }
        Class::DupTo => {
            if is_socket(p.a) {
                return load_then(i);
            }
            forget(args[1] as c_int as i64);
            to_libc(i)
        }
        Class::CloseRange => {
            let (first, last) = (args[0] as c_uint as i64, args[1] as c_uint as i64);
            for fd in first..=last.min(MAX_FD as i64 - 1) {
                forget(fd);
            }
            to_libc(i)
        }
        Class::CloseFrom => {
            for fd in (args[0] as c_int as i64).max(0)..MAX_FD as i64 {
                forget(fd);
            }
            to_libc(i)
        }
    }
}

/// After a call of a [`Class::Makes`] family member made through the slow path: marks what it
/// made "not a socket". Keeps errno.
pub extern "C" fn s1_mark(i: usize, ret: usize, regs: *const usize) {
    // SAFETY: the naked caller saved eight words there.
    let r = unsafe { core::slice::from_raw_parts(regs, 8) };
    match CLASSES[i] {
        Class::Makes => {
            let fd = ret as c_int as i64;
            if fd >= 0 {
                mark(fd);
            }
        }
        Class::MakesPair => {
            if ret as c_int == 0 {
                let fds = r[7] as *const c_int;
                // SAFETY: pipe succeeded, so it wrote two fds to the host's array.
                unsafe {
                    mark(*fds as i64);
                    mark(*fds.add(1) as i64);
                }
            }
        }
        Class::MakesStream => {
            if ret != 0 {
                let saved = errno();
                mark(stream_fd(ret));
                set_errno(saved);
            }
        }
        _ => {}
    }
}

/// Where a function libc lacks goes: fails with ENOSYS, as the shim does.
extern "C" fn missing() -> isize {
    set_errno(ENOSYS);
    -1
}

/// Loads the shim if it is not, then sends export `i` to it (or to libc, if the shim cannot be
/// loaded here: see the module's docs).
fn load_then(i: usize) -> Route {
    if load() {
        let t = SOCKMETER_STAGE2[i].load(Acquire);
        if t != 0 {
            return Route { target: t, call: 0 };
        }
    }
    let t = real(i);
    Route {
        target: if t == 0 { missing as *const () as usize } else { t },
        call: 0,
    }
}

/// Loads the shim once; true when it is loaded (and every slot of `SOCKMETER_STAGE2` set).
fn load() -> bool {
    let mut waited = 0u32;
    loop {
        match STATE.load(Acquire) {
            LOADED => return true,
            FAILED => return false,
            LOADING => {
                if LOADER_TID.load(Acquire) == gettid_() {
                    return false;
                }
                // Another thread is loading it. Waited for, but not forever: a thread that
                // holds a lock the load needs (a library's constructor making a socket under
                // the loader's lock) goes to libc after about a second rather than deadlock.
                waited += 1;
                if waited > 20_100 {
                    return false;
                }
                if waited <= 100 {
                    // SAFETY: sched_yield has no preconditions.
                    unsafe { sched_yield() };
                } else {
                    sys::sleep_50us();
                }
            }
            _ => {
                if in_vfork_child() {
                    return false;
                }
                if STATE.compare_exchange(NONE, LOADING, AcqRel, Acquire).is_err() {
                    continue;
                }
                LOADER_TID.store(gettid_(), Release);
                let saved = errno();
                // No signal handler runs on this thread during the load (one that met a
                // socket now would go to libc, uncounted); they run right after.
                let mask = sys::block_signals();
                let ok = sys::load_stage2();
                sys::restore_signals(&mask);
                set_errno(saved);
                STATE.store(if ok { LOADED } else { FAILED }, Release);
                return ok;
            }
        }
    }
}

/// Fills `SOCKMETER_STAGE2` from the shim's handle: every name must be there.
pub fn fill(handle: *mut c_void) -> bool {
    let mut found = [0usize; TOTAL];
    for (i, slot) in found.iter_mut().enumerate() {
        if i == Hook::Extra as usize + VFORK {
            continue;
        }
        // SAFETY: a handle from dlopen and a NUL-terminated name.
        let p = unsafe { dlsym(handle, name_of(i).as_ptr() as *const c_char) } as usize;
        if p == 0 {
            return false;
        }
        *slot = p;
    }
    for (i, p) in found.iter().enumerate() {
        if *p != 0 {
            SOCKMETER_STAGE2[i].store(*p, Release);
        }
    }
    true
}

/// The process's pid as this stage last knew it (its start, or a fork child's, set by the
/// fork handler): a vfork child's differs.
static PID: AtomicU32 = AtomicU32::new(0);

fn in_vfork_child() -> bool {
    let own = PID.load(Relaxed);
    own != 0 && own != getpid()
}

extern "C" fn after_fork_child() {
    PID.store(getpid(), Relaxed);
}

/// What the constructor kept for the shim (see `sockmeter_stage1_start`).
#[repr(C)]
pub struct Start {
    /// The kept variables: `NAME=value` entries, each ended by a NUL.
    pub env: *const u8,
    /// Their length in bytes.
    pub env_len: usize,
    /// When the process image started (ms since the Unix epoch).
    pub started_ms: u64,
}

const ENV_CAP: usize = 16 * 1024;
static mut ENV: [u8; ENV_CAP] = [0; ENV_CAP];
static ENV_LEN: AtomicUsize = AtomicUsize::new(0);
static STARTED_MS: AtomicU64 = AtomicU64::new(0);
static mut START: Start = Start {
    env: core::ptr::null(),
    env_len: 0,
    started_ms: 0,
};

/// What the constructor kept: the shim reads its configuration and start time from here
/// rather than from an environment the host may have changed since.
#[no_mangle]
pub extern "C" fn sockmeter_stage1_start() -> *const Start {
    // SAFETY: written once by the constructor, before any hook can load the shim; only read
    // after.
    unsafe {
        let s = &raw mut START;
        (*s).env = (&raw const ENV) as *const u8;
        (*s).env_len = ENV_LEN.load(Acquire);
        (*s).started_ms = STARTED_MS.load(Acquire);
        s
    }
}

fn kept(entry: &[u8]) -> bool {
    entry.starts_with(b"SOCKMETER_") || entry.starts_with(b"LD_PRELOAD=")
}

extern "C" fn at_load(_argc: c_int, _argv: *const *const c_char, envp: *const *const c_char) {
    PID.store(getpid(), Relaxed);
    // SAFETY: pthread_atfork with a valid function.
    unsafe { pthread_atfork(None, None, Some(after_fork_child)) };
    STARTED_MS.store(now_ms(), Relaxed);
    if envp.is_null() {
        return;
    }
    let mut len = 0usize;
    let mut i = 0;
    loop {
        // SAFETY: the loader passes a NULL-terminated array of NUL-terminated strings.
        let p = unsafe { *envp.add(i) };
        if p.is_null() {
            break;
        }
        i += 1;
        // SAFETY: as above; the first bytes are compared before the rest is read.
        let first = unsafe { *p } as u8;
        if first != b'S' && first != b'L' {
            continue;
        }
        let n = unsafe { strlen(p) };
        // SAFETY: `n` bytes are there.
        let entry = unsafe { core::slice::from_raw_parts(p as *const u8, n) };
        if !kept(entry) || len + n + 1 > ENV_CAP {
            continue;
        }
        // SAFETY: only the constructor writes ENV, before anything reads it; bounds checked.
        unsafe {
            let buf = &mut *(&raw mut ENV);
            buf[len..len + n].copy_from_slice(entry);
            buf[len + n] = 0;
        }
        len += n + 1;
    }
    ENV_LEN.store(len, Release);
}

#[used]
#[link_section = ".init_array"]
static AT_LOAD: extern "C" fn(c_int, *const *const c_char, *const *const c_char) = at_load;

// `core` is built to unwind, so its code names a personality routine. Nothing here unwinds
// (`panic = "abort"`; an exception or a thread cancellation passing through an export meets
// only `s1_slow`'s call-frame information), so this one only says "continue unwinding"
// (`_URC_CONTINUE_UNWIND`). Hidden: a preloaded export of this name would replace the
// routine of a Rust library linked with `prefer-dynamic`.
core::arch::global_asm!(
    ".globl rust_eh_personality",
    ".hidden rust_eh_personality",
    ".type rust_eh_personality, @function",
    "rust_eh_personality:",
    "mov eax, 8",
    "ret",
);
