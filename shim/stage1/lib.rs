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
// The hook table's names are C's.
#![allow(non_camel_case_types, non_snake_case, non_upper_case_globals)]

use core::ffi::{c_char, c_int, c_long, c_uint, c_void};
use core::sync::atomic::{AtomicU32, AtomicU8, AtomicUsize, Ordering::*};

mod start;
mod sys;
#[path = "../src/hooks/sysclass.rs"]
mod sysclass;
mod table;
mod trampoline;

pub use table::*;

use sys::*;

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    // SAFETY: abort never returns; nothing here panics (see the module's docs).
    unsafe { abort() }
}

/// Per export, the shim's function once it is loaded (0 before). The exports read it first.
pub static SOCKMETER_STAGE2: [AtomicUsize; TOTAL] = [const { AtomicUsize::new(0) }; TOTAL];
/// Per export, libc's function (resolved on first use).
pub static REAL: [AtomicUsize; TOTAL] = [const { AtomicUsize::new(0) }; TOTAL];

/// The shim's state: not loaded, being loaded, loaded, could not be loaded.
static STATE: AtomicU8 = AtomicU8::new(0);
const NONE: u8 = 0;
const LOADING: u8 = 1;
const LOADED: u8 = 2;
const FAILED: u8 = 3;

/// Whether loading the shim is over, one way or the other (`start::in_vfork_child` is asked
/// only before).
pub(crate) fn shim_settled() -> bool {
    matches!(STATE.load(Acquire), LOADED | FAILED)
}

/// The thread loading it (its kernel id): its own hooked calls go to libc meanwhile.
static LOADER_TID: AtomicU32 = AtomicU32::new(0);

/// What `s1_route` tells the naked slow path: jump to `target` with the host's registers
/// (`call == 0`), or call it and then `s1_mark` (`call == 1`).
#[repr(C)]
pub struct Route {
    target: usize,
    call: usize,
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
                if start::in_vfork_child() {
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
