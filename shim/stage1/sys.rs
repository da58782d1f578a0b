//! What the preload stage needs from libc, declared by hand (no `libc` crate here), and the
//! loading of the shim. Never a function the stage exports itself: a call to `write` or
//! `dlopen` from here would bind to the stage's own export, so those are looked up with
//! `RTLD_NEXT`.

use core::ffi::{c_char, c_int, c_void};

pub const RTLD_NEXT: *mut c_void = -1isize as *mut c_void;
pub const RTLD_NOW: c_int = 2;
pub const RTLD_LOCAL: c_int = 0;
pub const RTLD_NODELETE: c_int = 0x1000;
pub const ENOSYS: c_int = 38;

#[repr(C)]
pub struct DlInfo {
    pub dli_fname: *const c_char,
    pub dli_fbase: *mut c_void,
    pub dli_sname: *const c_char,
    pub dli_saddr: *mut c_void,
}

#[repr(C)]
pub struct Timespec {
    pub tv_sec: i64,
    pub tv_nsec: i64,
}

extern "C" {
    pub fn dlsym(handle: *mut c_void, name: *const c_char) -> *mut c_void;
    pub fn dladdr(addr: *const c_void, info: *mut DlInfo) -> c_int;
    pub fn dlerror() -> *const c_char;
    pub fn fileno(f: *mut c_void) -> c_int;
    pub fn gettid() -> c_int;
    pub fn sched_yield() -> c_int;
    pub fn abort() -> !;
    pub fn strlen(s: *const c_char) -> usize;
    pub fn pthread_atfork(
        prepare: Option<extern "C" fn()>,
        parent: Option<extern "C" fn()>,
        child: Option<extern "C" fn()>,
    ) -> c_int;
    pub fn fstat(fd: c_int, st: *mut u8) -> c_int;
    fn __errno_location() -> *mut c_int;
    fn pthread_sigmask(how: c_int, set: *const SigSet, old: *mut SigSet) -> c_int;
    fn nanosleep(req: *const Timespec, rem: *mut Timespec) -> c_int;
}

/// The kernel's signal set as glibc's `sigset_t` holds it (1024 bits).
#[repr(C)]
pub struct SigSet([u64; 16]);

const SIG_SETMASK: c_int = 2;

/// Blocks every signal but the faults of a bad instruction (which must reach the host's
/// handler, or kill, as they would), returning the mask to restore.
pub fn block_signals() -> SigSet {
    let mut all = SigSet([u64::MAX; 16]);
    // SIGILL 4, SIGTRAP 5, SIGBUS 7, SIGFPE 8, SIGSEGV 11, SIGSYS 31 (bit n-1).
    for sig in [4u32, 5, 7, 8, 11, 31] {
        all.0[0] &= !(1u64 << (sig - 1));
    }
    let mut old = SigSet([0; 16]);
    // SAFETY: valid sets; glibc leaves its own internal signals alone.
    unsafe { pthread_sigmask(SIG_SETMASK, &all, &mut old) };
    old
}

/// Puts back the mask [`block_signals`] returned.
pub fn restore_signals(old: &SigSet) {
    // SAFETY: a set pthread_sigmask filled.
    unsafe { pthread_sigmask(SIG_SETMASK, old, core::ptr::null_mut()) };
}

/// Sleeps 50 µs (waiting for another thread's load).
pub fn sleep_50us() {
    let t = Timespec {
        tv_sec: 0,
        tv_nsec: 50_000,
    };
    // SAFETY: valid timespec pointers.
    unsafe { nanosleep(&t, core::ptr::null_mut()) };
}

pub fn errno() -> c_int {
    // SAFETY: glibc's errno location is valid for the calling thread.
    unsafe { *__errno_location() }
}

pub fn set_errno(e: c_int) {
    // SAFETY: as in `errno`.
    unsafe { *__errno_location() = e }
}

pub fn gettid_() -> u32 {
    // SAFETY: gettid has no preconditions.
    unsafe { gettid() as u32 }
}

pub fn now_ms() -> u64 {
    let mut ts = Timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime(CLOCK_REALTIME, &ts) as a system call: at load, one system call
    // costs less than the first touch of libc's and the vDSO's pages that the library call
    // would make (a page fault each, in a process that may never need them).
    if unsafe { syscall2(228, 0, &mut ts as *mut Timespec as usize) } != 0 {
        return 0;
    }
    ts.tv_sec as u64 * 1000 + ts.tv_nsec as u64 / 1_000_000
}

/// The process's id (`getpid` as a system call, for the reason `now_ms` gives).
pub fn getpid() -> u32 {
    // SAFETY: getpid takes no arguments and cannot fail.
    unsafe { syscall2(39, 0, 0) as u32 }
}

/// A two-argument Linux system call (x86_64).
///
/// # Safety
/// The call's own contract for its arguments.
unsafe fn syscall2(n: usize, a: usize, b: usize) -> isize {
    let ret: isize;
    // SAFETY: the x86_64 Linux system call convention; the kernel clobbers rcx and r11.
    unsafe {
        core::arch::asm!(
            "syscall",
            inlateout("rax") n as isize => ret,
            in("rdi") a,
            in("rsi") b,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    ret
}

/// What an fd is.
pub enum FdKind {
    Socket,
    Other,
    Invalid,
}

/// `fstat`'s answer for `fd` (changes errno).
pub fn fd_kind(fd: c_int) -> FdKind {
    // `struct stat` is 144 bytes on x86_64 and 128 on aarch64; `st_mode` is at 24 and 16.
    let mut st = [0u64; 20];
    // SAFETY: a buffer larger than `struct stat`.
    if unsafe { fstat(fd, st.as_mut_ptr() as *mut u8) } != 0 {
        return FdKind::Invalid;
    }
    #[cfg(target_arch = "x86_64")]
    let mode = st[3] as u32;
    #[cfg(target_arch = "aarch64")]
    let mode = st[2] as u32;
    if mode & 0o170000 == 0o140000 {
        FdKind::Socket
    } else {
        FdKind::Other
    }
}

/// The shim's file name, looked for in the directory this library was loaded from.
const SHIM: &[u8] = b"libsockmeter_shim.so";

type DlopenFn = unsafe extern "C" fn(*const c_char, c_int) -> *mut c_void;
type WriteFn = unsafe extern "C" fn(c_int, *const c_void, usize) -> isize;

/// Loads the shim and fills the stage's table; says why on stderr when it cannot.
pub fn load_stage2() -> bool {
    let mut path = [0u8; 4096];
    let Some(len) = shim_path(&mut path) else {
        complain(
            b"cannot tell where libsockmeter_preload.so was loaded from",
            core::ptr::null(),
        );
        return false;
    };
    // SAFETY: RTLD_NEXT look-up of a NUL-terminated name.
    let real = unsafe { dlsym(RTLD_NEXT, c"dlopen".as_ptr()) };
    if real.is_null() {
        complain(b"no dlopen", core::ptr::null());
        return false;
    }
    // SAFETY: libc's dlopen, with a NUL-terminated path.
    let handle = unsafe {
        let dlopen: DlopenFn = core::mem::transmute(real);
        dlopen(path.as_ptr() as *const c_char, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE)
    };
    if handle.is_null() {
        // SAFETY: dlerror returns null or a NUL-terminated message.
        complain(&path[..len], unsafe { dlerror() });
        return false;
    }
    if !crate::fill(handle) {
        complain(b"the shim lacks a function this stage exports", core::ptr::null());
        return false;
    }
    true
}

/// `<directory of this library>/libsockmeter_shim.so`, NUL-terminated, in `buf`; its length.
fn shim_path(buf: &mut [u8; 4096]) -> Option<usize> {
    let mut info = DlInfo {
        dli_fname: core::ptr::null(),
        dli_fbase: core::ptr::null_mut(),
        dli_sname: core::ptr::null(),
        dli_saddr: core::ptr::null_mut(),
    };
    // SAFETY: an address inside this library and a valid out-pointer.
    if unsafe { dladdr(load_stage2 as *const c_void, &mut info) } == 0 || info.dli_fname.is_null() {
        return None;
    }
    // SAFETY: dladdr gave a NUL-terminated name.
    let n = unsafe { strlen(info.dli_fname) };
    // SAFETY: `n` bytes are there.
    let me = unsafe { core::slice::from_raw_parts(info.dli_fname as *const u8, n) };
    let dir = match me.iter().rposition(|&b| b == b'/') {
        Some(i) => &me[..=i],
        None => b"./",
    };
    let len = dir.len() + SHIM.len();
    if len + 1 > buf.len() {
        return None;
    }
    buf[..dir.len()].copy_from_slice(dir);
    buf[dir.len()..len].copy_from_slice(SHIM);
    buf[len] = 0;
    Some(len)
}

/// One line on stderr: `sockmeter: cannot load the shim (<what>: <why>); this process is not
/// metered`.
fn complain(what: &[u8], why: *const c_char) {
    // The line is made first: `why` is dlerror's buffer, which the `dlsym` below frees or
    // reuses (read after it, the message was once a few bytes of garbage).
    let mut line = [0u8; 1024];
    let mut n = 0;
    let mut put = |s: &[u8]| {
        let k = s.len().min(line.len() - 1 - n);
        line[n..n + k].copy_from_slice(&s[..k]);
        n += k;
    };
    put(b"sockmeter: cannot load the shim (");
    put(what);
    if !why.is_null() {
        put(b": ");
        // SAFETY: a NUL-terminated message from dlerror.
        let k = unsafe { strlen(why) };
        put(unsafe { core::slice::from_raw_parts(why as *const u8, k) });
    }
    put(b"); this process is not metered\n");
    // SAFETY: RTLD_NEXT look-up of a NUL-terminated name.
    let w = unsafe { dlsym(RTLD_NEXT, c"write".as_ptr()) };
    if w.is_null() {
        return;
    }
    // SAFETY: libc's write, with our buffer.
    unsafe {
        let write: WriteFn = core::mem::transmute(w);
        write(2, line.as_ptr() as *const c_void, n);
    }
}
