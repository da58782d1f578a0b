//! Linux (glibc) implementation of the platform contract in `platform/mod.rs`.

use std::ffi::{c_void, CStr};
use std::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering::*};

use libc::{c_char, c_int, socklen_t};
use sockmeter::model::{Family, Proto};

use super::posix::{file_name, peer_words, refresh_self_pid, sockopt};
use super::{FdKind, Object};

/// The C types of the table's Linux-only entries (`platform/macos.rs` has stand-ins).
pub use libc::{loff_t, mmsghdr, off64_t};

/// The environment variable that names preloaded libraries.
pub const PRELOAD_VAR: &CStr = c"LD_PRELOAD";

/// `send` flag: no SIGPIPE when the other end is gone.
pub const MSG_NOSIGNAL: c_int = libc::MSG_NOSIGNAL;

/// A Unix stream socket of the shim's own (close-on-exec), or -1.
pub fn unix_stream_socket() -> c_int {
    // SAFETY: a plain system call.
    unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) }
}

/// `CLOSE_RANGE_CLOEXEC`: close_range only marks the fds close-on-exec.
pub const CLOSE_RANGE_CLOEXEC: c_int = 1 << 2;

/// The calling thread's errno.
#[inline]
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
pub fn errno() -> c_int {
    // SAFETY: __errno_location always returns a valid pointer to this thread's errno.
    unsafe { *libc::__errno_location() }
}

/// Sets the calling thread's errno.
#[inline]
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
pub fn set_errno(e: c_int) {
    // SAFETY: as in `errno`.
    unsafe { *libc::__errno_location() = e }
}

/// Wall-clock ms since the epoch (vDSO, no system call).
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
pub fn now_ms() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
    (ts.tv_sec as u64).saturating_mul(1000) + (ts.tv_nsec as u64) / 1_000_000
}

/// The next definition of `name` after the shim (libc's).
pub fn next_symbol(name: &CStr) -> *mut c_void {
    // SAFETY: dlsym with RTLD_NEXT and a valid C string.
    unsafe { libc::dlsym(libc::RTLD_NEXT, name.as_ptr()) }
}

/// The definition of `name` in a library other than the C library (CoreFoundation, liburing):
/// the first object loaded after the shim that exports it, as `dlsym(RTLD_NEXT)` would find it,
/// but also in a library a plugin loaded with `RTLD_LOCAL` (which `dlsym` cannot see: the
/// host's call would fail), found through the objects' own hash tables, so that no failed
/// `dlsym` leaves an error behind in the host's `dlerror()`. Called once per symbol, when the
/// host first calls it (its library is loaded then).
/// Under the preload stage the search starts after the stage (the shim itself, loaded later by
/// it, is left out).
pub fn library_symbol(name: &CStr) -> *mut c_void {
    let front = super::stage1().map_or(shim_base(), |s| s.base);
    super::elf_got::find_function_after_skipping(name, front, shim_base())
        .map_or(std::ptr::null_mut(), |a| a as *mut c_void)
}

/// What an fd the shim has not seen created is.
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
pub fn classify(fd: c_int) -> FdKind {
    // SAFETY: fstat on any int is safe; `st` is a valid out-pointer.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        return FdKind::Invalid;
    }
    if st.st_mode & libc::S_IFMT != libc::S_IFSOCK {
        return FdKind::NotSocket;
    }
    let domain = sockopt(fd, libc::SO_DOMAIN).unwrap_or(-1);
    let ty = sockopt(fd, libc::SO_TYPE).unwrap_or(-1);
    let protocol = sockopt(fd, libc::SO_PROTOCOL).unwrap_or(0);
    let listening = sockopt(fd, libc::SO_ACCEPTCONN).unwrap_or(0) != 0;
    let connected = peer_words(fd).is_some();
    let (family, proto) = super::kind_of(domain, ty, protocol).unwrap_or((Family::Other, Proto::Other));
    FdKind::Socket {
        family,
        proto,
        listening,
        connected,
    }
}

/// The kernel's own counters of TCP socket `fd` (`getsockopt(TCP_INFO)`, one system call).
/// None when `fd` is not a TCP socket (ENOTSOCK, EOPNOTSUPP) or the kernel is older than 4.19.
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
pub fn tcp_counts(fd: c_int) -> Option<sockmeter::witness::TcpCounts> {
    let mut raw = [0u8; 256];
    let mut len = raw.len() as socklen_t;
    // SAFETY: a valid out-buffer of `len` bytes and its length.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            raw.as_mut_ptr() as *mut c_void,
            &mut len,
        )
    };
    if r != 0 {
        return None;
    }
    sockmeter::witness::TcpCounts::parse(&raw[..(len as usize).min(raw.len())])
}

/// Bytes queued on socket `fd` for the program to read (`ioctl(FIONREAD)`).
pub fn unread_bytes(fd: c_int) -> Option<u64> {
    let mut n: c_int = 0;
    // SAFETY: FIONREAD writes one int through a valid pointer.
    let r = unsafe { libc::ioctl(fd, libc::FIONREAD, &mut n as *mut c_int) };
    (r == 0 && n >= 0).then_some(n as u64)
}

/// Whether TCP socket `fd` runs kernel TLS (its upper-layer protocol is `tls`): the kernel's
/// counters then count TLS records, not the bytes the program wrote and read.
pub fn kernel_tls(fd: c_int) -> bool {
    let mut name = [0u8; 16];
    let mut len = name.len() as socklen_t;
    // SAFETY: a valid out-buffer of `len` bytes and its length.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_ULP,
            name.as_mut_ptr() as *mut c_void,
            &mut len,
        )
    };
    r == 0 && name.starts_with(b"tls")
}

/// The public head of glibc's `struct _IO_FILE` (bits/types/struct_FILE.h), up to `_fileno`.
#[repr(C)]
struct IoFileHead {
    flags: c_int,
    /// `_IO_read_ptr` ... `_IO_save_end`.
    ptrs: [*mut c_char; 11],
    markers: *mut c_void,
    chain: *mut IoFileHead,
    fileno: c_int,
}

extern "C" {
    /// glibc's own answer to "is this process single-threaded?" (exported since 2.32; it only
    /// ever goes from 1 to 0 while more than one thread may exist).
    static __libc_single_threaded: c_char;
    /// glibc's list of open streams (exported since 2.2.5).
    static _IO_list_all: *mut IoFileHead;
    fn __fpending(fp: *mut libc::FILE) -> libc::size_t;
    fn fflush_unlocked(fp: *mut libc::FILE) -> c_int;
}

/// The bytes `f` holds that are not written yet (`fclose` writes them before it closes). Called
/// only with the stream the host is passing to `fclose`, as the other hooks' pointer arguments.
#[allow(clippy::not_unsafe_ptr_arg_deref)]
pub fn stdio_pending(f: *mut libc::FILE) -> Option<u64> {
    // SAFETY: a stream the host is passing to fclose (which requires a valid one); __fpending
    // only reads its buffer pointers.
    Some(unsafe { __fpending(f) } as u64)
}

/// Whether the process surely has one thread only (glibc's `__libc_single_threaded`).
pub fn single_threaded() -> bool {
    // SAFETY: a byte glibc exports for exactly this question; read once.
    unsafe { std::ptr::read_volatile(&raw const __libc_single_threaded) != 0 }
}

/// Adds `v` to a counter word the reader only reads (`sockmeter::registry::Counters`). In a
/// process with one thread, one plain `add` instruction: no other thread can add meanwhile,
/// this thread's signal handlers run between instructions, and a reader in another process
/// sees the old or the new word (an aligned 8-byte store). A locked add right after a system
/// call costs tens of nanoseconds on some machines (docs/benchmarks.md); this is the per-byte
/// path's one write. Otherwise an atomic add.
#[inline(always)]
pub fn add_counter(w: &std::sync::atomic::AtomicU64, v: u64) {
    #[cfg(target_arch = "x86_64")]
    if single_threaded() {
        // SAFETY: `w` is a valid, aligned u64 that only this thread writes now (see above);
        // the instruction touches nothing else (it sets the flags, which are not preserved).
        unsafe {
            core::arch::asm!("add qword ptr [{p}], {v}", p = in(reg) w.as_ptr(), v = in(reg) v, options(nostack));
        }
        return;
    }
    w.fetch_add(v, std::sync::atomic::Ordering::Relaxed);
}

/// Writes out the pending output of every stdio stream whose fd `wanted` says, the way libc
/// itself does at exit (`_IO_cleanup`, after the last atexit handler): walking its list of
/// streams without locks. Not `fflush(NULL)`, which takes every stream's lock, and a thread
/// blocked reading one (stdin, say) holds its lock: the exit would hang. Every other stream is
/// left as it is.
pub fn flush_stdio_on(wanted: impl Fn(c_int) -> bool) {
    // SAFETY: `_IO_list_all` and each `_chain` are glibc's NULL-terminated list of live
    // streams, whose public head `IoFileHead` mirrors; at exit nothing frees them. Walked
    // unlocked exactly as glibc's own exit path walks it; bounded in case it is corrupt.
    unsafe {
        let mut fp = _IO_list_all;
        for _ in 0..65_536 {
            if fp.is_null() {
                break;
            }
            let f = fp as *mut libc::FILE;
            if wanted((*fp).fileno) && __fpending(f) > 0 {
                fflush_unlocked(f);
            }
            fp = (*fp).chain;
        }
    }
}

/// glibc's `struct dl_find_object` (2.35+), with room to spare for later fields.
#[repr(C)]
struct DlFindObject {
    flags: u64,
    map_start: *mut c_void,
    map_end: *mut c_void,
    link_map: *mut LinkMap,
    eh_frame: *mut c_void,
    reserved: [u64; 16],
}

/// The public head of glibc's `struct link_map`.
#[repr(C)]
struct LinkMap {
    l_addr: usize,
    l_name: *const c_char,
    l_ld: *mut c_void,
    l_next: *mut LinkMap,
    l_prev: *mut LinkMap,
}

type FindObject = unsafe extern "C" fn(*mut c_void, *mut DlFindObject) -> c_int;
static FIND_OBJECT: AtomicPtr<c_void> = AtomicPtr::new(std::ptr::null_mut());
static FIND_OBJECT_LOOKED: AtomicUsize = AtomicUsize::new(0);

#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
fn find_object_fn() -> Option<FindObject> {
    if FIND_OBJECT_LOOKED.load(Acquire) == 0 {
        // SAFETY: dlsym with a valid C string.
        let p = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"_dl_find_object".as_ptr()) };
        FIND_OBJECT.store(p, Relaxed);
        FIND_OBJECT_LOOKED.store(1, Release);
    }
    let p = FIND_OBJECT.load(Relaxed);
    // SAFETY: null or glibc's _dl_find_object, whose signature is FindObject.
    unsafe { std::mem::transmute::<*mut c_void, Option<FindObject>>(p) }
}

/// The loaded object containing code address `ip`.
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
pub fn object_at(ip: usize) -> Option<Object> {
    if let Some(find) = find_object_fn() {
        // SAFETY: zeroed is a valid DlFindObject; find writes into it.
        let mut r: DlFindObject = unsafe { std::mem::zeroed() };
        // SAFETY: _dl_find_object is async-signal-safe and takes any address.
        if unsafe { find(ip as *mut c_void, &mut r) } != 0 || r.link_map.is_null() {
            return None;
        }
        // SAFETY: glibc returned a live link_map.
        let name = unsafe { (*r.link_map).l_name };
        return Some(Object {
            base: r.map_start as usize,
            name: if name.is_null() { c"".as_ptr() } else { name },
        });
    }
    // SAFETY: zeroed Dl_info is valid; dladdr fills it.
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    if unsafe { libc::dladdr(ip as *const c_void, &mut info) } == 0 {
        return None;
    }
    let main = object_of_main();
    let name = if info.dli_fbase as usize == main {
        c"".as_ptr()
    } else {
        info.dli_fname
    };
    Some(Object {
        base: info.dli_fbase as usize,
        name,
    })
}

fn object_of_main() -> usize {
    static MAIN_BASE: AtomicUsize = AtomicUsize::new(0);
    let b = MAIN_BASE.load(Relaxed);
    if b != 0 {
        return b;
    }
    // SAFETY: getauxval is always safe; AT_PHDR is the main program's program headers.
    let phdr = unsafe { libc::getauxval(libc::AT_PHDR) } as usize;
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    if unsafe { libc::dladdr(phdr as *const c_void, &mut info) } != 0 {
        MAIN_BASE.store(info.dli_fbase as usize, Relaxed);
    }
    info.dli_fbase as usize
}

/// The shim's own load address.
pub fn shim_base() -> usize {
    static BASE: AtomicUsize = AtomicUsize::new(0);
    let b = BASE.load(Relaxed);
    if b != 0 {
        return b;
    }
    let here = shim_base as *const () as usize;
    let b = object_at(here).map(|o| o.base).unwrap_or(usize::MAX);
    BASE.store(b, Relaxed);
    b
}

/// Calls `f` with the loader's name (`l_name`, the pointer itself: it identifies the object
/// while it is loaded) of every object loaded now, the main program included.
pub fn for_each_object(f: &mut dyn FnMut(*const c_char)) {
    type Each<'a> = &'a mut dyn FnMut(*const c_char);
    unsafe extern "C" fn each(info: *mut libc::dl_phdr_info, _size: usize, data: *mut c_void) -> c_int {
        // SAFETY: `data` is the `Each` passed below, alive for the whole dl_iterate_phdr call.
        let f = unsafe { &mut *(data as *mut Each<'_>) };
        // SAFETY: dl_iterate_phdr passes a valid info for the callback's duration.
        if let Some(info) = unsafe { info.as_ref() } {
            f(info.dlpi_name);
        }
        0
    }
    let mut f: Each<'_> = f;
    // SAFETY: `each` only reads the info it is given and calls `f`.
    unsafe { libc::dl_iterate_phdr(Some(each), &mut f as *mut Each<'_> as *mut c_void) };
}

/// The return address into the code that called the shim: found by following the shim's own
/// frame-pointer chain (the workspace builds with frame pointers) up to the first return
/// address outside the shim. `None` when the chain looks wrong (then the caller is found by the
/// unwinder instead).
#[inline(never)]
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
pub fn caller_ip() -> Option<usize> {
    let (lo, hi) = shim_range();
    super::posix::first_return_outside(lo, hi)
}

/// The shim's code range (start, end) from the loader.
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
fn shim_range() -> (usize, usize) {
    static RANGE: std::sync::OnceLock<(usize, usize)> = std::sync::OnceLock::new();
    *RANGE.get_or_init(|| {
        // SAFETY: zeroed DlFindObject is valid; _dl_find_object fills it for an address in us.
        let mut r: DlFindObject = unsafe { std::mem::zeroed() };
        match find_object_fn() {
            // SAFETY: as in `object_at`.
            Some(f) if unsafe { f(shim_range as *const () as *mut c_void, &mut r) } == 0 => {
                (r.map_start as usize, r.map_end as usize)
            }
            _ => (0, 0),
        }
    })
}

/// The C runtime and the loader: never a module.
pub fn is_runtime_library(path: &[u8]) -> bool {
    let f = file_name(path);
    [
        &b"libc.so"[..],
        b"libc-",
        b"ld-linux",
        b"ld64.so",
        b"libpthread",
        b"libdl.so",
        b"libdl-",
        b"linux-vdso",
        b"linux-gate",
    ]
    .iter()
    .any(|p| f.starts_with(p))
}

/// CoreFoundation (swift-corelibs-foundation's `libCoreFoundation.so`): the sockets its own code
/// makes are its own.
pub fn is_corefoundation(path: &[u8]) -> bool {
    file_name(path).starts_with(b"libCoreFoundation.so")
}

/// Libraries in the system library directories: skipped when looking for the module.
pub fn is_system_library(path: &[u8]) -> bool {
    [
        &b"/lib/"[..],
        b"/lib32/",
        b"/lib64/",
        b"/libx32/",
        b"/usr/lib/",
        b"/usr/lib32/",
        b"/usr/lib64/",
        b"/usr/libx32/",
    ]
    .iter()
    .any(|d| path.starts_with(d))
}

/// The executable's absolute path into `buf`; returns the length.
pub fn exe_path_into(buf: &mut [u8; 4096]) -> usize {
    // SAFETY: readlink writes at most buf.len() bytes.
    let n = unsafe { libc::readlink(c"/proc/self/exe".as_ptr(), buf.as_mut_ptr() as *mut c_char, buf.len()) };
    if n <= 0 {
        let s = b"(unknown executable)";
        buf[..s.len()].copy_from_slice(s);
        return s.len();
    }
    n as usize
}

/// The executable's absolute path.
pub fn exe_path() -> String {
    let mut buf = [0u8; 4096];
    let n = exe_path_into(&mut buf);
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// Sleeps up to `timeout` unless `word` is non-zero, waking early when [`wake_one`] is called
/// on it (a futex).
pub fn wait_while_zero(word: &std::sync::atomic::AtomicI32, timeout: std::time::Duration) {
    let ts = libc::timespec {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: FUTEX_WAIT on a live, aligned i32 with a valid relative timeout.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
            0,
            &ts as *const libc::timespec,
        )
    };
}

/// Wakes a thread in [`wait_while_zero`] on `word`. Async-signal-safe.
pub fn wake_one(word: &std::sync::atomic::AtomicI32) {
    // SAFETY: FUTEX_WAKE on a live, aligned i32.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
            1,
        )
    };
}

/// A token that tells this process image from any other image of the same pid: the first 8
/// of the 16 random bytes the kernel gives every exec (`AT_RANDOM`), with the pid and the
/// clock mixed in (a forked child inherits the bytes). No system call.
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
pub fn image_token(pid: u32) -> u64 {
    // Read once per image (a forked child's token comes from its fork handler, which would
    // otherwise fault in `getauxval`'s page of libc for it).
    static RANDOM: AtomicU64 = AtomicU64::new(0);
    let mut r = RANDOM.load(Relaxed);
    if r == 0 {
        // SAFETY: getauxval is always safe; AT_RANDOM points at 16 bytes for the process's life.
        let p = unsafe { libc::getauxval(libc::AT_RANDOM) } as *const u8;
        if !p.is_null() {
            let mut b = [0u8; 8];
            // SAFETY: AT_RANDOM's 16 bytes are readable.
            unsafe { std::ptr::copy_nonoverlapping(p, b.as_mut_ptr(), 8) };
            r = u64::from_ne_bytes(b);
            RANDOM.store(r, Relaxed);
        }
    }
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: a valid out-pointer (vDSO).
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (r ^ (ts.tv_nsec as u64).rotate_left(17) ^ (ts.tv_sec as u64).rotate_left(41) ^ u64::from(pid).rotate_left(3)) | 1
}

#[used]
#[link_section = ".init_array"]
static SELF_PID_INIT: extern "C" fn() = {
    extern "C" fn init() {
        refresh_self_pid();
    }
    init
};

/// What runs at `exit()`, given the status (see [`register_process_handlers`]).
static AT_EXIT: AtomicPtr<()> = AtomicPtr::new(std::ptr::null_mut());

/// Registers the fork handlers and the exit handler, which is given the exit status (`on_exit`,
/// unlike `atexit`, knows it).
pub fn register_process_handlers(prepare: extern "C" fn(), child: extern "C" fn(), at_exit: fn(Option<c_int>)) {
    extern "C" {
        fn on_exit(f: extern "C" fn(c_int, *mut c_void), arg: *mut c_void) -> c_int;
    }
    #[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
    extern "C" fn exiting(status: c_int, _arg: *mut c_void) {
        let f = AT_EXIT.load(Acquire);
        if !f.is_null() {
            // SAFETY: only ever set below, from a `fn(Option<c_int>)`.
            let f = unsafe { std::mem::transmute::<*mut (), fn(Option<c_int>)>(f) };
            f(Some(status));
        }
    }
    AT_EXIT.store(at_exit as *mut (), Release);
    // SAFETY: plain registrations of functions that live as long as the process.
    unsafe {
        libc::pthread_atfork(Some(prepare), None, Some(child));
        on_exit(exiting, std::ptr::null_mut());
    }
}

/// Runs `$f` (a `fn()`) when the shim is loaded (an `.init_array` entry), after keeping the
/// command line (with the re-entrancy guard held: it allocates).
macro_rules! on_load {
    ($f:path) => {
        #[used]
        #[link_section = ".init_array"]
        static ON_LOAD: extern "C" fn(libc::c_int, *const *const libc::c_char, *const *const libc::c_char) = {
            extern "C" fn init(argc: libc::c_int, argv: *const *const libc::c_char, _envp: *const *const libc::c_char) {
                // SAFETY: the loader passes `argc` valid NUL-terminated strings in `argv`.
                $crate::guard::with(|| unsafe { $crate::platform::keep_cmdline(argc, argv) });
                $f();
            }
            init
        };
    };
}
pub(crate) use on_load;

/// How a hook replaces the C library's function (`hooks/table.rs` wraps each hook in this): on
/// Linux, by exporting it under the function's name from a library loaded ahead of libc
/// (`LD_PRELOAD`, or linked first). The optional argument of a variadic function (`...NAME`)
/// arrives in the register a fixed argument in its place would use (x86_64, aarch64), so the
/// hook takes it as one.
macro_rules! replacement {
    (
        name = $name:ident, symbol = [$($sym:literal)?], library = [$($mode:ident)?], fixed = [$($arg:ident)*],
        variadic = [$($va:ident)?], $item:item
    ) => {
        #[export_name = $crate::platform::replacement!(@sym $name $($sym)?)]
        $item
    };
    (@sym $name:ident) => { stringify!($name) };
    (@sym $name:ident $sym:literal) => { $sym };
}
pub(crate) use replacement;

/// `dlopen` mode bits that load an object outside interposition: glibc's `RTLD_DEEPBIND`.
pub const DLOPEN_ISOLATED: c_int = libc::RTLD_DEEPBIND;

/// The load addresses of every object loaded now that has a dynamic section (to tell, after a
/// `dlopen`, which objects it added).
pub fn loaded_object_bases() -> Vec<usize> {
    super::elf_got::loaded_objects().into_iter().map(|o| o.base).collect()
}

/// Rebinds the imports of every object loaded since `before` (load addresses from
/// [`loaded_object_bases`]) whose names `lookup` maps to an address (the shim and the C
/// runtime are left alone): each such GOT slot then points there.
///
/// # Safety
/// Every address `lookup` returns must be a function that can stand in for the named symbol
/// (same ABI and contract). `lookup` runs under the loader's lock: a plain look-up only.
pub unsafe fn rebind_objects_since(before: &[usize], lookup: &dyn Fn(&CStr) -> Option<usize>) -> super::Rebound {
    let shim = shim_base();
    let mut out = super::Rebound::default();
    for obj in super::elf_got::loaded_objects() {
        if before.contains(&obj.base) || obj.base == shim || is_runtime_library(obj.name.as_bytes()) {
            continue;
        }
        // SAFETY: the caller's promise about `lookup`.
        match unsafe { super::elf_got::patch_object(&obj, lookup) } {
            Ok(n) => out.patched += n,
            Err(e) => out.failed.push(format!("{}: {e}", obj.name.to_string_lossy())),
        }
    }
    out
}

/// The privileges of the program open as `fd` (see [`super::ProgramPrivileges`]); None if it
/// cannot be read.
pub fn program_privileges(fd: c_int) -> Option<super::ProgramPrivileges> {
    // SAFETY: fstat, fgetxattr (a size query: null buffer, size 0) and fstatvfs on the caller's
    // fd, into zeroed structs.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        if libc::fstat(fd, &mut st) != 0 {
            return None;
        }
        let caps = libc::fgetxattr(fd, c"security.capability".as_ptr(), std::ptr::null_mut(), 0) >= 0;
        let mut vfs: libc::statvfs = std::mem::zeroed();
        let nosuid = libc::fstatvfs(fd, &mut vfs) == 0 && vfs.f_flag & libc::ST_NOSUID != 0;
        Some(super::ProgramPrivileges {
            mode: st.st_mode,
            uid: st.st_uid,
            gid: st.st_gid,
            caps,
            nosuid,
        })
    }
}
