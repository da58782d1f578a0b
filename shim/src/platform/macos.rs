//! macOS (libSystem, dyld, `DYLD_INSERT_LIBRARIES`) implementation of the platform contract in
//! `platform/mod.rs`.
//!
//! **Interposition.** dyld applies an inserted library's `__DATA,__interpose` tuples
//! (replacement, original) to every image's binds, at launch and for every image loaded later,
//! except the inserted library's own (so the shim's references reach the real functions). Each
//! entry of the hook table becomes one tuple ([`replacement!`]); `$NOCANCEL` variants are entries
//! of their own (libSystem's cancellable and non-cancellable functions are distinct symbols).
//! A library's functions (`[lib]`: CoreFoundation's) are weak imports found by flat lookup: a
//! host without CoreFoundation loads no CoreFoundation for the shim (dyld skips a tuple whose
//! original is missing), and a host that loads CoreFoundation only later with `dlopen` gets
//! its CFSockets counted at the BSD layer, as `bsd` (stated in docs/architecture.md).
//!
//! **Variadic functions** (`fcntl`, `open`, `openat`): on Apple arm64 the optional argument is
//! passed on the stack, not in the register a fixed argument would use (Linux and x86_64 pass
//! both alike). The replacement dyld binds there is a two-instruction trampoline that loads the
//! stack slot into that register and jumps to the hook, which calls the real function as
//! variadic (the table declares its type with `...`).
//!
//! **Shipping**: thread mode only. A shipper process the host never sees needs a way to start a
//! process that is not the host's child (Linux: a clone with no exit signal, re-parented to
//! `sockmeter run`, a child subreaper); macOS has neither, and a child would be seen by the
//! host's `wait()` and SIGCHLD handler. A second thread costs little here: libSystem has no
//! single-threaded fast paths for a thread to switch off. [`create_region`] says no, so the
//! runtime reports from its thread; at exit, lines the reporter has not read yet are written
//! with a bounded wait ([`hand_off`]), since a writer process could not be hidden either.
//!
//! Not on macOS: the kernel witness (`TCP_INFO` is Linux's; no `unseen` bytes are reported),
//! `RTLD_DEEPBIND` (no such mode), io_uring, `syscall()` (deprecated there, not hooked).

use std::ffi::{c_void, CStr};
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering::*};

use libc::{c_char, c_int};
use sockmeter::model::{Family, Proto};

use super::posix::{peer_words, refresh_self_pid, sockopt};
use super::{FdKind, Object, Rebound};

/// Stand-ins for the C types of the table's Linux-only entries (never used here).
#[allow(non_camel_case_types)]
pub type loff_t = i64;
/// See [`loff_t`].
#[allow(non_camel_case_types)]
pub type off64_t = i64;
/// See [`loff_t`]: Linux's `struct mmsghdr`.
#[allow(non_camel_case_types)]
#[repr(C)]
pub struct mmsghdr {
    /// The message.
    pub msg_hdr: libc::msghdr,
    /// Bytes it moved.
    pub msg_len: libc::c_uint,
}

/// No `close_range` on macOS (the hooks that use this are Linux's).
pub const CLOSE_RANGE_CLOEXEC: c_int = 1 << 2;

/// No `MSG_NOSIGNAL` on macOS: the shim's own sockets have `SO_NOSIGPIPE` instead.
pub const MSG_NOSIGNAL: c_int = 0;

/// No `dlopen` mode loads an object outside interposition on macOS.
pub const DLOPEN_ISOLATED: c_int = 0;

/// The calling thread's errno.
#[inline]
pub fn errno() -> c_int {
    // SAFETY: __error always returns a valid pointer to this thread's errno.
    unsafe { *libc::__error() }
}

/// Sets the calling thread's errno.
#[inline]
pub fn set_errno(e: c_int) {
    // SAFETY: as in `errno`.
    unsafe { *libc::__error() = e }
}

/// Whether the process surely has one thread only: not known here (false; shipper mode, which
/// asks, is Linux-only).
pub fn single_threaded() -> bool {
    false
}

/// Adds `v` to a counter word (see the Linux platform): an atomic add here.
#[inline(always)]
pub fn add_counter(w: &std::sync::atomic::AtomicU64, v: u64) {
    w.fetch_add(v, std::sync::atomic::Ordering::Relaxed);
}

/// Wall-clock ms since the epoch (the commpage clock: no system call).
pub fn now_ms() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
    (ts.tv_sec as u64).saturating_mul(1000) + (ts.tv_nsec as u64) / 1_000_000
}

/// Variable `name` as the process started with it (macOS has no preload stage: the
/// environment).
pub fn start_var(name: &str) -> Option<std::ffi::OsString> {
    std::env::var_os(name)
}

/// Under a preload stage, points calls through it at the shim (macOS has none: nothing to do).
///
/// # Safety
/// None needed here; the signature is the contract's.
pub unsafe fn bind_past_stage(_lookup: &dyn Fn(&std::ffi::CStr) -> Option<usize>) -> usize {
    0
}

/// Whether the shim was loaded after the process started (macOS has no preload stage: no).
pub fn loaded_late() -> bool {
    false
}

/// When the process image started: the shim is loaded at the start (no preload stage), so now.
pub fn image_started_ms() -> u64 {
    now_ms()
}

/// The real libSystem function `name`: what the shim's own image sees (`dlsym(RTLD_NEXT)`
/// searches the shim's dependencies; dlsym never returns an interposed address).
pub fn next_symbol(name: &CStr) -> *mut c_void {
    // SAFETY: dlsym with RTLD_NEXT and a valid C string.
    unsafe { libc::dlsym(libc::RTLD_NEXT, name.as_ptr()) }
}

/// A library's function (CoreFoundation's): the shim does not depend on the library, so it is
/// looked up in every image loaded (only ever asked when the host called it: loaded).
pub fn library_symbol(name: &CStr) -> *mut c_void {
    // SAFETY: dlsym with RTLD_DEFAULT and a valid C string.
    unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) }
}

/// A Unix stream socket of the shim's own: close-on-exec, and no SIGPIPE when the reporter is
/// gone (`SO_NOSIGPIPE`; macOS has no `MSG_NOSIGNAL`). -1 on failure.
pub fn unix_stream_socket() -> c_int {
    // SAFETY: plain system calls on our own new fd.
    unsafe {
        let fd = libc::socket(libc::AF_UNIX, libc::SOCK_STREAM, 0);
        if fd >= 0 {
            libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
            let one: c_int = 1;
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_NOSIGPIPE,
                &one as *const c_int as *const c_void,
                std::mem::size_of::<c_int>() as libc::socklen_t,
            );
        }
        fd
    }
}

/// What an fd the shim has not seen created is.
pub fn classify(fd: c_int) -> FdKind {
    // SAFETY: fstat on any int is safe; `st` is a valid out-pointer.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        return FdKind::Invalid;
    }
    if st.st_mode & libc::S_IFMT != libc::S_IFSOCK {
        return FdKind::NotSocket;
    }
    // No SO_DOMAIN/SO_PROTOCOL here: the family from the local address, the protocol from the
    // type (an inet stream is TCP, an inet datagram UDP).
    // SAFETY: sockaddr_storage is plain data.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: valid out-pointers sized by `len`.
    let domain = if unsafe { libc::getsockname(fd, &mut ss as *mut _ as *mut libc::sockaddr, &mut len) } == 0 {
        c_int::from(ss.ss_family)
    } else {
        -1
    };
    let ty = sockopt(fd, libc::SO_TYPE).unwrap_or(-1);
    let listening = sockopt(fd, libc::SO_ACCEPTCONN).unwrap_or(0) != 0;
    let connected = peer_words(fd).is_some();
    let (family, proto) = super::kind_of(domain, ty, 0).unwrap_or((Family::Other, Proto::Other));
    FdKind::Socket {
        family,
        proto,
        listening,
        connected,
    }
}

/// The kernel's own TCP counters: not read on macOS (no kernel witness, see the module docs).
pub fn tcp_counts(_fd: c_int) -> Option<sockmeter::witness::TcpCounts> {
    None
}

/// Bytes queued on socket `fd` for the program to read (`ioctl(FIONREAD)`).
pub fn unread_bytes(fd: c_int) -> Option<u64> {
    let mut n: c_int = 0;
    // SAFETY: FIONREAD writes one int through a valid pointer.
    let r = unsafe { libc::ioctl(fd, libc::FIONREAD, &mut n as *mut c_int) };
    (r == 0 && n >= 0).then_some(n as u64)
}

/// No kernel TLS on macOS.
pub fn kernel_tls(_fd: c_int) -> bool {
    false
}

/// Nothing to do: the stdio streams are written out only for the kernel witness, which macOS
/// does not have.
pub fn flush_stdio_on(_wanted: impl Fn(c_int) -> bool) {}

/// Not asked: no kernel witness on macOS.
pub fn stdio_pending(_f: *mut libc::FILE) -> Option<u64> {
    None
}

/// The main executable's Mach-O header (dyld's image 0).
fn main_header() -> usize {
    extern "C" {
        fn _dyld_get_image_header(index: u32) -> *const c_void;
    }
    // SAFETY: image 0 is the main executable, loaded for the process's life.
    unsafe { _dyld_get_image_header(0) as usize }
}

/// The loaded image containing code address `ip` (`dladdr`: its Mach-O header and path; the
/// main executable's name is empty, as the contract wants).
pub fn object_at(ip: usize) -> Option<Object> {
    // SAFETY: zeroed Dl_info is valid; dladdr fills it.
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    if unsafe { libc::dladdr(ip as *const c_void, &mut info) } == 0 || info.dli_fbase.is_null() {
        return None;
    }
    let base = info.dli_fbase as usize;
    let name = if base == main_header() || info.dli_fname.is_null() {
        c"".as_ptr()
    } else {
        info.dli_fname
    };
    Some(Object { base, name })
}

/// The shim's own Mach-O header.
pub fn shim_base() -> usize {
    static BASE: AtomicUsize = AtomicUsize::new(0);
    let b = BASE.load(Relaxed);
    if b != 0 {
        return b;
    }
    let b = object_at(shim_base as *const () as usize)
        .map(|o| o.base)
        .unwrap_or(usize::MAX);
    BASE.store(b, Relaxed);
    b
}

/// The shim's code range: its header to the end of its `__TEXT` segment (read from its load
/// commands).
fn shim_range() -> (usize, usize) {
    static RANGE: std::sync::OnceLock<(usize, usize)> = std::sync::OnceLock::new();
    *RANGE.get_or_init(|| {
        let base = shim_base();
        if base == usize::MAX {
            return (0, 0);
        }
        // `mach_header_64`: `ncmds` at 16, 32 bytes; each load command: `cmd`, `cmdsize`; an
        // `LC_SEGMENT_64` (0x19) has its name at 8 (16 bytes) and `vmsize` at 32.
        const LC_SEGMENT_64: u32 = 0x19;
        // SAFETY: `base` is the shim's own mapped Mach-O header, followed by its load commands,
        // all mapped for the process's life.
        unsafe {
            let u32_at = |a: usize| std::ptr::read_unaligned(a as *const u32);
            let mut at = base + 32;
            for _ in 0..u32_at(base + 16) {
                let (cmd, size) = (u32_at(at), u32_at(at + 4) as usize);
                if cmd == LC_SEGMENT_64 && std::slice::from_raw_parts((at + 8) as *const u8, 7) == b"__TEXT\0" {
                    let vmsize = std::ptr::read_unaligned((at + 32) as *const u64);
                    return (base, base + vmsize as usize);
                }
                if size == 0 {
                    break;
                }
                at += size;
            }
        }
        (0, 0)
    })
}

/// The return address into the code that called the shim (see `posix::first_return_outside`).
#[inline(never)]
pub fn caller_ip() -> Option<usize> {
    let (lo, hi) = shim_range();
    super::posix::first_return_outside(lo, hi)
}

/// Calls `f` with dyld's name of every image loaded now (the pointer identifies the image
/// while it is loaded; `dladdr` returns the same one).
pub fn for_each_object(f: &mut dyn FnMut(*const c_char)) {
    extern "C" {
        fn _dyld_image_count() -> u32;
        fn _dyld_get_image_name(index: u32) -> *const c_char;
    }
    // SAFETY: dyld's image list; an index past the end gives null.
    unsafe {
        for i in 0.._dyld_image_count() {
            let n = _dyld_get_image_name(i);
            if !n.is_null() {
                f(n);
            }
        }
    }
}

/// The environment variable that names inserted libraries.
pub const PRELOAD_VAR: &CStr = c"DYLD_INSERT_LIBRARIES";

/// libSystem and dyld: never a module.
pub fn is_runtime_library(path: &[u8]) -> bool {
    path.starts_with(b"/usr/lib/system/") || path == b"/usr/lib/libSystem.B.dylib" || path == b"/usr/lib/dyld"
}

/// CoreFoundation: the sockets its own code makes are its own.
pub fn is_corefoundation(path: &[u8]) -> bool {
    path.ends_with(b"/CoreFoundation.framework/Versions/A/CoreFoundation")
        || path.ends_with(b"/CoreFoundation.framework/CoreFoundation")
}

/// The system's libraries and frameworks: skipped when looking for the module.
pub fn is_system_library(path: &[u8]) -> bool {
    [&b"/usr/lib/"[..], b"/System/", b"/Library/Apple/"]
        .iter()
        .any(|d| path.starts_with(d))
}

/// The executable's absolute path into `buf`; returns the length.
pub fn exe_path_into(buf: &mut [u8; 4096]) -> usize {
    extern "C" {
        fn _NSGetExecutablePath(buf: *mut c_char, size: *mut u32) -> c_int;
    }
    let mut raw = [0u8; 4096];
    let mut size = raw.len() as u32;
    // SAFETY: a buffer of `size` bytes.
    if unsafe { _NSGetExecutablePath(raw.as_mut_ptr() as *mut c_char, &mut size) } != 0 {
        let s = b"(unknown executable)";
        buf[..s.len()].copy_from_slice(s);
        return s.len();
    }
    let n = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
    super::posix::real_path(&raw[..n], buf)
}

/// The executable's absolute path.
pub fn exe_path() -> String {
    let mut buf = [0u8; 4096];
    let n = exe_path_into(&mut buf);
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

extern "C" {
    fn __ulock_wait(operation: u32, addr: *mut c_void, value: u64, timeout_us: u32) -> c_int;
    fn __ulock_wake(operation: u32, addr: *mut c_void, wake_value: u64) -> c_int;
}
/// `UL_COMPARE_AND_WAIT`: wait while the 32-bit word holds the value.
const UL_COMPARE_AND_WAIT: u32 = 1;

/// Sleeps up to `timeout` unless `word` is non-zero, waking early when [`wake_one`] is called
/// on it (`__ulock_wait`, which Rust's own std uses on macOS).
pub fn wait_while_zero(word: &std::sync::atomic::AtomicI32, timeout: std::time::Duration) {
    let us = u32::try_from(timeout.as_micros()).unwrap_or(u32::MAX).max(1);
    // SAFETY: a live, aligned 32-bit word, compared with 0.
    unsafe { __ulock_wait(UL_COMPARE_AND_WAIT, word.as_ptr() as *mut c_void, 0, us) };
}

/// Wakes a thread in [`wait_while_zero`] on `word`. Async-signal-safe (a system call).
pub fn wake_one(word: &std::sync::atomic::AtomicI32) {
    // SAFETY: a live, aligned 32-bit word.
    unsafe { __ulock_wake(UL_COMPARE_AND_WAIT, word.as_ptr() as *mut c_void, 0) };
}

/// A token that tells this process image from any other image of the same pid (random bytes
/// from the kernel, the pid and the clock).
pub fn image_token(pid: u32) -> u64 {
    // SAFETY: arc4random takes no arguments.
    let r = (u64::from(unsafe { libc::arc4random() }) << 32) | u64::from(unsafe { libc::arc4random() });
    (r ^ now_ms().rotate_left(17) ^ u64::from(pid).rotate_left(3)) | 1
}

/// What runs at exit (see [`register_process_handlers`]).
static AT_EXIT: AtomicPtr<()> = AtomicPtr::new(std::ptr::null_mut());

/// Registers the fork handlers and the exit handler. `atexit` does not tell the status (macOS
/// has no `on_exit`), so the exit handler gets `None`: the ending comes from the reporter's own
/// reaping and from a metered parent's `wait`.
pub fn register_process_handlers(prepare: extern "C" fn(), child: extern "C" fn(), at_exit: fn(Option<c_int>)) {
    extern "C" fn exiting() {
        let f = AT_EXIT.load(Acquire);
        if !f.is_null() {
            // SAFETY: only ever set below, from a `fn(Option<c_int>)`.
            let f = unsafe { std::mem::transmute::<*mut (), fn(Option<c_int>)>(f) };
            f(None);
        }
    }
    AT_EXIT.store(at_exit as *mut (), Release);
    // SAFETY: plain registrations of functions that live as long as the process.
    unsafe {
        libc::pthread_atfork(Some(prepare), None, Some(child));
        libc::atexit(exiting);
    }
}

/// Runs `$f` (a `fn()`) when the shim is loaded (a `__mod_init_func` entry: dyld passes
/// `argc`, `argv` and `envp`, as glibc does), after keeping the command line and the pid a
/// vfork child is told apart by.
macro_rules! on_load {
    ($f:path) => {
        #[used]
        #[link_section = "__DATA,__mod_init_func"]
        static ON_LOAD: extern "C" fn(libc::c_int, *const *const libc::c_char, *const *const libc::c_char) = {
            extern "C" fn init(argc: libc::c_int, argv: *const *const libc::c_char, _envp: *const *const libc::c_char) {
                $crate::platform::first_at_load();
                // SAFETY: dyld passes `argc` valid NUL-terminated strings in `argv`.
                $crate::guard::with(|| unsafe { $crate::platform::keep_cmdline(argc, argv) });
                $f();
            }
            init
        };
    };
}
pub(crate) use on_load;

/// The first thing at load: the pid a vfork child is told apart by (fork children read theirs
/// in the shim's fork handler: `posix::note_self_pid`).
#[doc(hidden)]
pub fn first_at_load() {
    refresh_self_pid();
}

/// One `__DATA,__interpose` tuple: (replacement, original).
#[repr(C)]
pub struct Interpose {
    /// The shim's function.
    pub replacement: *const (),
    /// The libSystem (or CoreFoundation) function it replaces.
    pub original: *const (),
}

// SAFETY: two function addresses, immutable.
unsafe impl Sync for Interpose {}

/// How a hook replaces the C library's function (`hooks/table.rs` wraps each hook in this): an
/// `__interpose` tuple binding the symbol to it (see the module docs), through an arm64
/// trampoline for a variadic function, and weakly for a library's function (`[lib]`).
macro_rules! replacement {
    (
        name = $name:ident, symbol = [$($sym:literal)?], library = [$($mode:ident)?], fixed = [$($arg:ident)*],
        variadic = [$($va:ident)?], $item:item
    ) => {
        #[inline(never)]
        $item

        $crate::platform::replacement!(@entry [$($va)?] [$($arg)*]);

        core::arch::global_asm!(
            $crate::platform::replacement!(@weak [$($mode)?] $name $($sym)?),
            ".section __DATA,__interpose,regular,no_dead_strip",
            ".p2align 3",
            ".quad {entry}",
            concat!(".quad \"_", $crate::platform::replacement!(@sym $name $($sym)?), "\""),
            ".text",
            entry = sym entry,
        );
    };
    (@sym $name:ident) => { stringify!($name) };
    (@sym $name:ident $sym:literal) => { $sym };
    // A library's function: a weak import (missing: dyld skips the tuple).
    (@weak [lib] $name:ident $($sym:literal)?) => {
        concat!(".weak_reference \"_", $crate::platform::replacement!(@sym $name $($sym)?), "\"")
    };
    (@weak [$($mode:ident)?] $name:ident $($sym:literal)?) => { "" };
    // The entry dyld binds: the hook itself, or for a variadic function on arm64, a trampoline
    // that moves the optional argument from the stack into the register the hook reads it from.
    (@entry [$va:ident] [$($arg:ident)*]) => {
        #[cfg(target_arch = "aarch64")]
        #[unsafe(naked)]
        unsafe extern "C" fn entry() {
            core::arch::naked_asm!(
                concat!("ldr x", $crate::platform::replacement!(@count $($arg)*), ", [sp]"),
                "b {hook}",
                hook = sym hook,
            )
        }
        #[cfg(not(target_arch = "aarch64"))]
        use self::hook as entry;
    };
    (@entry [] [$($arg:ident)*]) => {
        use self::hook as entry;
    };
    (@count) => { "0" };
    (@count $a:ident) => { "1" };
    (@count $a:ident $b:ident) => { "2" };
    (@count $a:ident $b:ident $c:ident) => { "3" };
    (@count $a:ident $b:ident $c:ident $d:ident) => { "4" };
}
pub(crate) use replacement;

/// Every image loaded now (its Mach-O header).
pub fn loaded_object_bases() -> Vec<usize> {
    extern "C" {
        fn _dyld_image_count() -> u32;
        fn _dyld_get_image_header(index: u32) -> *const c_void;
    }
    // SAFETY: dyld's image list.
    unsafe {
        (0.._dyld_image_count())
            .map(|i| _dyld_get_image_header(i) as usize)
            .collect()
    }
}

/// Never needed on macOS ([`DLOPEN_ISOLATED`] is 0: every image is interposed by dyld).
///
/// # Safety
/// None: nothing is changed.
pub unsafe fn rebind_objects_since(_before: &[usize], _lookup: &dyn Fn(&CStr) -> Option<usize>) -> Rebound {
    Rebound {
        patched: 0,
        failed: vec!["rebinding is not needed on macOS".to_string()],
    }
}

// ---- shipper mode: not on macOS (see the module docs) ----

/// No shared region for a shipper on macOS: the runtime reports from its thread.
pub fn create_region(_name: &std::ffi::CStr, _size: usize, _high: c_int) -> Option<(c_int, *mut c_void)> {
    None
}

/// Not on macOS (no shipper).
pub fn link_pair(_high: c_int) -> Option<(c_int, c_int)> {
    None
}

/// Not on macOS (no shipper).
pub fn exit_link(_high: c_int) -> Option<(c_int, c_int)> {
    None
}

/// Not on macOS (no shipper).
pub fn adoption_pair(_high: c_int) -> Option<(c_int, c_int)> {
    None
}

/// Not on macOS (no shipper).
pub fn spawn_shipper(_exe: &CStr, _args: &[std::ffi::CString], _keep: [c_int; 3]) -> Result<(), c_int> {
    Err(libc::ENOTSUP)
}

/// Not on macOS (no pidfd).
pub fn pidfd_of(_pid: u32) -> c_int {
    -1
}

/// Not on macOS (no shipper).
pub fn send_with_fds(_sock: c_int, _parts: &[&[u8]], _fds: &[c_int]) -> bool {
    false
}

/// Not on macOS (no shipper).
pub fn poke(_fd: c_int) {}

/// Moves `fd` to a close-on-exec fd number of at least `high` (keeps it where it is if that
/// fails). Returns the fd to use.
pub fn move_high(fd: c_int, high: c_int) -> c_int {
    // SAFETY: duplicating and closing our own fd.
    unsafe {
        let moved = libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, high);
        if moved < 0 {
            return fd;
        }
        libc::close(fd);
        moved
    }
}

/// Not on macOS: a writer process that waits for a reporter that is not there could not be
/// hidden from the host (see the module docs), so an exit while a `listen` is away loses the
/// lines that waited.
pub fn hand_off_later(_addrs: &[(libc::sockaddr_un, libc::socklen_t)], _bytes: &[u8], _for_ms: u64) {}

/// The last lines of a process image, written to the reporter connection `fd` before the host
/// exits or execs: a process of their own cannot be started unseen here (see the module docs),
/// so they are written with a bounded wait (2 s in all) for a reporter that is slow to read.
pub fn hand_off(fd: c_int, bytes: &[u8]) {
    let deadline = now_ms() + 2000;
    let mut rest = bytes;
    while !rest.is_empty() && now_ms() < deadline {
        // SAFETY: sending from a valid buffer on our own socket (SO_NOSIGPIPE).
        let n = unsafe { libc::send(fd, rest.as_ptr() as *const c_void, rest.len(), libc::MSG_DONTWAIT) };
        if n > 0 {
            rest = &rest[n as usize..];
            continue;
        }
        let e = errno();
        if n < 0 && (e == libc::EAGAIN || e == libc::EINTR) {
            let mut p = libc::pollfd {
                fd,
                events: libc::POLLOUT,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            unsafe { libc::poll(&mut p, 1, 100) };
            continue;
        }
        break;
    }
}

#[cfg(test)]
mod tests {
    // The macOS code cannot run here; what it decides from paths can.
    use super::*;

    #[test]
    fn system_paths() {
        assert!(is_runtime_library(b"/usr/lib/system/libsystem_kernel.dylib"));
        assert!(is_system_library(
            b"/System/Library/Frameworks/Foundation.framework/Versions/C/Foundation"
        ));
        assert!(is_corefoundation(
            b"/System/Library/Frameworks/CoreFoundation.framework/Versions/A/CoreFoundation"
        ));
        assert!(!is_system_library(b"/opt/homebrew/lib/libcurl.4.dylib"));
    }
}

/// The privileges of the program open as `fd` (see [`super::ProgramPrivileges`]); None if it
/// cannot be read. macOS has no file capabilities.
pub fn program_privileges(fd: c_int) -> Option<super::ProgramPrivileges> {
    // SAFETY: fstat and fstatvfs on the caller's fd, into zeroed structs.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        if libc::fstat(fd, &mut st) != 0 {
            return None;
        }
        let mut vfs: libc::statvfs = std::mem::zeroed();
        let nosuid = libc::fstatvfs(fd, &mut vfs) == 0 && vfs.f_flag & libc::ST_NOSUID != 0;
        Some(super::ProgramPrivileges {
            mode: u32::from(st.st_mode),
            uid: st.st_uid,
            gid: st.st_gid,
            caps: false,
            nosuid,
        })
    }
}
