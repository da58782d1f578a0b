//! The `execl` family (`execl`, `execle`, `execlp`): glibc runs them on its internal execve,
//! so the hooked `execve`/`execvp` never see them, and an image that ended that way lost what
//! it had not shipped yet (thread mode: its last interval). Their argument list has no fixed
//! length, which a Rust function cannot take: each is a naked function
//! (`platform::exec_list_trampoline!`, machine code per architecture) that hands its argument
//! registers and the caller's stack arguments to [`collect`], which gathers the list into an
//! `argv` (on the stack, or in a mapping for a very long list: no allocation, as in a vfork
//! child) and makes the call through the hooked `execv`, `execve` (`execle`'s environment) or
//! `execvp`: the same exec, seen as any other, with its errno when it fails.
//!
//! Outside the hook table for the same reason as `dlopen`: the table's wrappers have fixed
//! arguments. Linux only (on macOS the family goes through the interposed functions' own
//! paths, and arm64's variadic convention differs).

use libc::{c_char, c_int};

use crate::platform;

/// `execl(path, arg0, ..., NULL)`: `execv(path, argv)`.
pub const KIND_EXECL: c_int = 0;
/// `execle(path, arg0, ..., NULL, envp)`: `execve(path, argv, envp)`.
pub const KIND_EXECLE: c_int = 1;
/// `execlp(file, arg0, ..., NULL)`: `execvp(file, argv)`.
pub const KIND_EXECLP: c_int = 2;

/// The longest list gathered on the stack (4 KiB); a longer one is gathered in a mapping.
const ON_STACK: usize = 512;

extern "C" {
    static environ: *const *const c_char;
}

platform::exec_list_trampoline!(execl_hook, "execl", kind = KIND_EXECL, collect = collect);
platform::exec_list_trampoline!(execle_hook, "execle", kind = KIND_EXECLE, collect = collect);
platform::exec_list_trampoline!(execlp_hook, "execlp", kind = KIND_EXECLP, collect = collect);

/// Gathers the list (word `i` is `regs[i]` below `nregs`, then `stack[i - nregs]`) and execs.
///
/// # Safety
/// Called only by the trampolines, with `regs` holding `nregs` words and `stack` the caller's
/// stack arguments, of a call whose list ends with a null pointer (and, for `execle`, is
/// followed by the environment), as the C contract of the family requires.
unsafe extern "C" fn collect(
    kind: c_int,
    path: *const c_char,
    regs: *const usize,
    nregs: usize,
    stack: *const usize,
) -> c_int {
    // SAFETY: within the caller's list, by the contract above.
    let word = |i: usize| unsafe {
        if i < nregs {
            *regs.add(i)
        } else {
            *stack.add(i - nregs)
        }
    };
    let mut n = 0usize;
    while word(n) != 0 {
        n += 1;
        if n >= c_int::MAX as usize {
            // As glibc's own execl.
            platform::set_errno(libc::E2BIG);
            return -1;
        }
    }
    let envp = if kind == KIND_EXECLE {
        word(n + 1) as *const *const c_char
    } else {
        // SAFETY: glibc's environment pointer, read once.
        unsafe { environ }
    };
    let mut local = [std::ptr::null::<c_char>(); ON_STACK];
    let mut mapped: *mut libc::c_void = std::ptr::null_mut();
    let bytes = (n + 1) * std::mem::size_of::<*const c_char>();
    let argv: *mut *const c_char = if n < ON_STACK {
        local.as_mut_ptr()
    } else {
        // SAFETY: an anonymous private mapping of `bytes`; checked below.
        mapped = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if mapped == libc::MAP_FAILED {
            platform::set_errno(libc::ENOMEM);
            return -1;
        }
        mapped.cast()
    };
    for i in 0..n {
        // SAFETY: `argv` holds n + 1 slots.
        unsafe { *argv.add(i) = word(i) as *const c_char };
    }
    // SAFETY: as above.
    unsafe { *argv.add(n) = std::ptr::null() };
    // SAFETY: the hooked functions, with the list as an argv: what the family's own code does.
    let ret = unsafe {
        match kind {
            KIND_EXECLE => super::execve::hook(path, argv as *const *const c_char, envp),
            KIND_EXECLP => super::execvp::hook(path, argv as *const *const c_char),
            _ => super::execv::hook(path, argv as *const *const c_char),
        }
    };
    if !mapped.is_null() {
        let e = platform::errno();
        // SAFETY: the mapping made above (the exec failed: we are still here).
        unsafe { libc::munmap(mapped, bytes) };
        platform::set_errno(e);
    }
    ret
}
