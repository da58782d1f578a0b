//! What Linux and macOS do alike (POSIX, and the C runtime's unwinder): socket addresses,
//! the stack walk, paths, the command line kept at load, signal masks, process identity. Part
//! of both platforms' implementation of the contract (`mod.rs`); nothing here is the contract
//! by itself.

use std::ffi::{c_void, CStr};
use std::sync::atomic::{AtomicU32, Ordering::*};

use libc::{c_char, c_int, sockaddr, socklen_t};
use sockmeter::addr::{self, ADDR_WORDS};

/// Encodes a sockaddr without allocating; `None` for AF_UNSPEC or unknown families.
///
/// # Safety
/// `sa` must be null or point to at least `len` readable bytes.
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
pub unsafe fn sockaddr_words(sa: *const sockaddr, len: socklen_t) -> Option<[u64; ADDR_WORDS]> {
    if sa.is_null() || (len as usize) < std::mem::size_of::<libc::sa_family_t>() {
        return None;
    }
    // SAFETY: at least the family field is readable (checked above).
    let family = c_int::from(unsafe { (*sa).sa_family });
    match family {
        libc::AF_INET if len as usize >= std::mem::size_of::<libc::sockaddr_in>() => {
            // SAFETY: family and length say this is a sockaddr_in.
            let s = unsafe { std::ptr::read_unaligned(sa as *const libc::sockaddr_in) };
            Some(addr::encode_v4(
                s.sin_addr.s_addr.to_ne_bytes(),
                u16::from_be(s.sin_port),
            ))
        }
        libc::AF_INET6 if len as usize >= std::mem::size_of::<libc::sockaddr_in6>() => {
            // SAFETY: family and length say this is a sockaddr_in6.
            let s = unsafe { std::ptr::read_unaligned(sa as *const libc::sockaddr_in6) };
            Some(addr::encode_v6(
                s.sin6_addr.s6_addr,
                u16::from_be(s.sin6_port),
                s.sin6_scope_id,
            ))
        }
        libc::AF_UNIX => {
            let off = std::mem::size_of::<libc::sa_family_t>();
            // SAFETY: sockaddr_un is plain data; only the size of its path is asked.
            let max = std::mem::size_of_val(&unsafe { std::mem::zeroed::<libc::sockaddr_un>() }.sun_path);
            let n = (len as usize).saturating_sub(off).min(max);
            // SAFETY: `len` bytes are readable; the path follows the family field.
            let path = unsafe { std::slice::from_raw_parts((sa as *const u8).add(off), n) };
            // A Linux abstract name starts with a NUL (macOS has none).
            if cfg!(target_os = "linux") && path.first() == Some(&0) && n > 0 {
                Some(addr::encode_unix(&path[1..], true, false))
            } else {
                let end = path.iter().position(|&b| b == 0).unwrap_or(path.len());
                Some(addr::encode_unix(&path[..end], false, false))
            }
        }
        _ => None,
    }
}

#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
pub(super) fn sockopt(fd: c_int, opt: c_int) -> Option<c_int> {
    let mut v: c_int = 0;
    let mut len = std::mem::size_of::<c_int>() as socklen_t;
    // SAFETY: valid out-pointers of the right size.
    let r = unsafe { libc::getsockopt(fd, libc::SOL_SOCKET, opt, &mut v as *mut c_int as *mut c_void, &mut len) };
    (r == 0).then_some(v)
}

#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
fn name_words(fd: c_int, peer: bool) -> Option<[u64; ADDR_WORDS]> {
    // SAFETY: sockaddr_storage is plain data; zeroed is valid.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as socklen_t;
    let p = &mut ss as *mut libc::sockaddr_storage as *mut sockaddr;
    // SAFETY: valid out-pointers sized by `len`.
    let r = unsafe {
        if peer {
            libc::getpeername(fd, p, &mut len)
        } else {
            libc::getsockname(fd, p, &mut len)
        }
    };
    if r != 0 {
        return None;
    }
    // SAFETY: the kernel wrote `len` bytes into `ss`.
    unsafe { sockaddr_words(p, len.min(std::mem::size_of::<libc::sockaddr_storage>() as socklen_t)) }
}

/// getsockname, encoded.
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
pub fn local_words(fd: c_int) -> Option<[u64; ADDR_WORDS]> {
    name_words(fd, false)
}

/// getpeername, encoded.
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
pub fn peer_words(fd: c_int) -> Option<[u64; ADDR_WORDS]> {
    name_words(fd, true)
}

#[repr(C)]
struct UnwindContext {
    _private: [u8; 0],
}

extern "C" {
    fn _Unwind_Backtrace(trace: extern "C" fn(*mut UnwindContext, *mut c_void) -> c_int, arg: *mut c_void) -> c_int;
    fn _Unwind_GetIP(ctx: *mut UnwindContext) -> usize;
}

type Visit<'a> = &'a mut dyn FnMut(usize) -> bool;

#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
extern "C" fn walk_one(ctx: *mut UnwindContext, arg: *mut c_void) -> c_int {
    // SAFETY: `arg` is the `Visit` passed to _Unwind_Backtrace by `walk_stack`, alive and
    // exclusively borrowed for its duration.
    let visit = unsafe { &mut *(arg as *mut Visit<'_>) };
    // SAFETY: ctx is the unwinder's live context.
    let ip = unsafe { _Unwind_GetIP(ctx) };
    if ip == 0 || !visit(ip) {
        return 5; // _URC_END_OF_STACK: stop
    }
    0 // _URC_NO_REASON: go on
}

/// Calls `visit` with each return address on this thread's stack, innermost first, until it
/// returns false (so a walk that has found what it looks for stops there: each frame costs the
/// unwinder a table lookup).
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
pub fn walk_stack(mut visit: Visit<'_>) {
    // SAFETY: walk_one only calls `visit`, which lives for the whole call.
    unsafe { _Unwind_Backtrace(walk_one, &mut visit as *mut Visit<'_> as *mut c_void) };
}

#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
pub(super) fn file_name(path: &[u8]) -> &[u8] {
    path.rsplit(|&b| b == b'/').next().unwrap_or(path)
}

/// realpath of `raw` into `buf`; the raw name if that fails. Returns the length.
pub fn real_path(raw: &[u8], buf: &mut [u8; 4096]) -> usize {
    let mut c = [0u8; 4096];
    let n = raw.len().min(c.len() - 1);
    c[..n].copy_from_slice(&raw[..n]);
    let mut out = [0 as c_char; libc::PATH_MAX as usize + 1];
    // SAFETY: `c` is NUL-terminated; `out` has PATH_MAX+1 bytes as realpath requires.
    let r = unsafe { libc::realpath(c.as_ptr() as *const c_char, out.as_mut_ptr()) };
    if r.is_null() {
        buf[..n].copy_from_slice(&raw[..n]);
        return n;
    }
    // SAFETY: realpath wrote a NUL-terminated string into `out`.
    let s = unsafe { CStr::from_ptr(out.as_ptr()) }.to_bytes();
    let m = s.len().min(buf.len());
    buf[..m].copy_from_slice(&s[..m]);
    m
}

static ARGV: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();

/// The command line, as the loader passed it to the shim's constructor (no file is opened:
/// the shim must not take an fd number the host would otherwise get).
pub fn cmdline() -> Vec<String> {
    cmdline_ref().to_vec()
}

/// [`cmdline`] without a copy.
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
pub fn cmdline_ref() -> &'static [String] {
    ARGV.get().map_or(&[], Vec::as_slice)
}

static EXE_PATH: std::sync::atomic::AtomicPtr<String> = std::sync::atomic::AtomicPtr::new(std::ptr::null_mut());

/// The executable's absolute path, asked of the system once per process image: a forked child
/// runs the same file (a forking server's child hands its region over without a `readlink`).
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
pub fn exe_path_cached() -> &'static str {
    crate::publish::once(&EXE_PATH, super::exe_path).as_str()
}

/// Runs `f` (which starts one of the shim's own threads) with every signal blocked in the
/// calling thread, so the new thread is born blocking them all (a thread inherits its creator's
/// mask) and no process-directed signal can reach it, not even before it runs: such a signal
/// goes to one of the host's threads, as without the shim (a host that blocks a signal
/// everywhere and takes it with `sigwait` must still find it pending). The caller's mask is
/// put back after.
///
/// The full set is made here rather than by `sigfillset`: a forked child's first socket comes
/// this way, and `sigfillset`'s page of libc would be one more fault for it (`pthread_sigmask`
/// leaves out the signals the C library keeps for itself, as it does for `sigfillset`'s set).
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
pub fn spawn_blocking_signals<R>(f: impl FnOnce() -> R) -> R {
    // SAFETY: a `sigset_t` is plain bits (all set: every signal); pthread_sigmask on our own
    // sets, for the calling thread.
    unsafe {
        let all: libc::sigset_t = std::mem::transmute([0xffu8; std::mem::size_of::<libc::sigset_t>()]);
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::pthread_sigmask(libc::SIG_BLOCK, &all, &mut old);
        let r = f();
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
        r
    }
}

/// This process's id.
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
pub fn pid() -> u32 {
    // SAFETY: getpid is always safe.
    unsafe { libc::getpid() as u32 }
}

/// The pid of the process this memory belongs to: read at load time and again in every fork
/// child ([`note_self_pid`]). A vfork child runs in its parent's memory until it execs or
/// exits, so it reads its parent's pid here (and no atfork handler runs for it).
static SELF_PID: AtomicU32 = AtomicU32::new(0);

pub(super) extern "C" fn refresh_self_pid() {
    note_self_pid();
}

/// Reads this process's id into the memory [`in_vfork_child`] compares with, and returns it:
/// at load, and first thing in every fork child (`hooks::process`, whose fork handler then
/// passes it on: one `getpid` per fork for everything that keeps the pid).
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
pub fn note_self_pid() -> u32 {
    let p = pid();
    SELF_PID.store(p, Relaxed);
    p
}

/// Whether this is a vfork child (or any child sharing its parent's memory without being a
/// thread of it): everything the shim holds in memory is its parent's, which it must leave
/// alone. One system call (getpid); callers ask only before changing what the parent knows
/// about a socket. False before the shim's constructor ran.
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
pub fn in_vfork_child() -> bool {
    let own = SELF_PID.load(Relaxed);
    own != 0 && own != pid()
}

/// The parent's id.
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
pub fn ppid() -> u32 {
    // SAFETY: getppid is always safe.
    unsafe { libc::getppid() as u32 }
}

/// Keeps the command line the loader passed to the shim's constructor (glibc passes `argc`,
/// `argv` and `envp` to `.init_array` functions): no file is opened for it.
///
/// # Safety
/// `argv` must hold `argc` valid NUL-terminated strings (as the loader passes them).
#[doc(hidden)]
pub unsafe fn keep_cmdline(argc: c_int, argv: *const *const c_char) {
    let mut args = Vec::new();
    for i in 0..argc.max(0) as usize {
        // SAFETY: the caller's promise.
        let p = unsafe { *argv.add(i) };
        if p.is_null() {
            break;
        }
        // SAFETY: as above.
        args.push(unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned());
    }
    let _ = ARGV.set(args);
}

/// The directory the shim was loaded from.
pub fn shim_dir() -> Option<std::path::PathBuf> {
    // SAFETY: zeroed Dl_info is valid; dladdr fills it for an address inside the shim.
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    if unsafe { libc::dladdr(shim_dir as *const () as *const c_void, &mut info) } == 0 || info.dli_fname.is_null() {
        return None;
    }
    // SAFETY: dladdr returned a NUL-terminated file name.
    let path = unsafe { CStr::from_ptr(info.dli_fname) }.to_string_lossy().into_owned();
    std::fs::canonicalize(path).ok()?.parent().map(|p| p.to_path_buf())
}

/// The first return address outside `[lo, hi)` (the shim's code) on this thread's
/// frame-pointer chain, starting from the caller's frame: the code that called the shim.
/// `None` when the chain looks wrong (then the unwinder finds the caller instead).
#[inline(never)]
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
pub fn first_return_outside(lo: usize, hi: usize) -> Option<usize> {
    let mut fp: usize;
    // SAFETY: reading the frame-pointer register.
    #[cfg(target_arch = "x86_64")]
    unsafe {
        core::arch::asm!("mov {}, rbp", out(reg) fp, options(nomem, nostack, preserves_flags))
    };
    // SAFETY: as above (x29 is the frame pointer on aarch64).
    #[cfg(target_arch = "aarch64")]
    unsafe {
        core::arch::asm!("mov {}, x29", out(reg) fp, options(nomem, nostack, preserves_flags))
    };
    let start = fp;
    for _ in 0..32 {
        // A frame record lives above the current one on this thread's stack.
        if fp == 0 || !fp.is_multiple_of(std::mem::align_of::<usize>()) || fp < start || fp - start > (1 << 20) {
            return None;
        }
        // SAFETY: `fp` points at a frame record of the shim's own code (checked to be on this
        // stack, above our frame, aligned): [fp] is the caller's frame pointer, [fp + 8] the
        // return address.
        let (next, ret) = unsafe { (*(fp as *const usize), *((fp + 8) as *const usize)) };
        if ret < lo || ret >= hi {
            return (ret != 0).then_some(ret);
        }
        if next <= fp {
            return None;
        }
        fp = next;
    }
    None
}

/// Whether the process's address space is limited (`RLIMIT_AS` is not infinite): then the shim
/// maps no more than it must (the host may need what is left).
pub fn address_space_limited() -> bool {
    // SAFETY: getrlimit with a valid out-pointer.
    let mut rl: libc::rlimit = unsafe { std::mem::zeroed() };
    unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut rl) != 0 || rl.rlim_cur != libc::RLIM_INFINITY }
}
