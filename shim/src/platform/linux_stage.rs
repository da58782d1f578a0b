//! The shim under the preload stage (`shim/stage1/`, Linux x86_64): finding the stage that
//! loaded it, what the stage kept from the start (the `SOCKMETER_*` and `LD_PRELOAD`
//! variables, when the image started), and pointing the GOT slots that lead through the stage
//! at the shim's hooks once it is loaded (docs/architecture.md, "Loading in two stages").

use std::ffi::CStr;
use std::sync::atomic::Ordering::Relaxed;

use libc::{c_int, c_void};

use super::{is_runtime_library, now_ms, object_at, shim_base};

/// What the preload stage (`shim/stage1/`) kept at the start, when it loaded the shim.
#[repr(C)]
struct Stage1Start {
    env: *const u8,
    env_len: usize,
    started_ms: u64,
}

/// The preload stage, when it is the one that loaded the shim: its load address, the
/// environment variables it kept at the start (`NAME=value\0` entries) and when the process
/// image started.
#[derive(Clone, Copy)]
pub struct Stage1 {
    /// Its load address.
    pub base: usize,
    /// The `SOCKMETER_*` and `LD_PRELOAD` variables as they were at the start.
    pub env: &'static [u8],
    /// When the process image started (ms since the epoch).
    pub started_ms: u64,
}

/// The preload stage, found once (through the objects' own symbol tables: no failed `dlsym`
/// is left in the host's `dlerror()`).
pub fn stage1() -> Option<Stage1> {
    static FOUND: std::sync::OnceLock<Option<Stage1>> = std::sync::OnceLock::new();
    *FOUND.get_or_init(|| {
        let f = super::elf_got::find_function_after_skipping(c"sockmeter_stage1_start", 0, shim_base())?;
        let base = object_at(f)?.base;
        // SAFETY: the stage's function, which takes nothing and returns a pointer to a static
        // `Stage1Start` its constructor filled before any hook could load the shim.
        let s = unsafe {
            let start: extern "C" fn() -> *const Stage1Start = std::mem::transmute(f);
            &*start()
        };
        let env = if s.env.is_null() {
            &[][..]
        } else {
            // SAFETY: `env_len` bytes of a static buffer, never written again.
            unsafe { std::slice::from_raw_parts(s.env, s.env_len) }
        };
        Some(Stage1 {
            base,
            env,
            started_ms: s.started_ms,
        })
    })
}

/// The `SOCKMETER_*` and `LD_PRELOAD` variables as the process started with them, each
/// `NAME=value` and NUL-terminated: the preload stage's copy when the stage loaded the shim
/// (the host may have changed its environment since), else the shim's own, taken the first
/// time it is asked (`runtime::init`, at load).
pub fn start_env() -> &'static [u8] {
    use std::os::unix::ffi::OsStrExt;
    if let Some(s) = stage1() {
        return s.env;
    }
    static OWN: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    OWN.get_or_init(|| {
        let mut out = Vec::new();
        for (k, v) in std::env::vars_os() {
            let k = k.as_bytes();
            if k.starts_with(b"SOCKMETER_") || k == b"LD_PRELOAD" {
                out.extend_from_slice(k);
                out.push(b'=');
                out.extend_from_slice(v.as_bytes());
                out.push(0);
            }
        }
        out
    })
}

/// Variable `name` (a `SOCKMETER_*` one, or `LD_PRELOAD`) as the process started with it
/// ([`start_env`]).
pub fn start_var(name: &str) -> Option<std::ffi::OsString> {
    use std::os::unix::ffi::OsStrExt;
    start_env().split(|b| *b == 0).find_map(|e| {
        let v = e.strip_prefix(name.as_bytes())?.strip_prefix(b"=")?;
        Some(std::ffi::OsStr::from_bytes(v).to_owned())
    })
}

/// Whether the preload stage loaded the shim (after the process started, at its first call
/// with something to meter).
pub fn loaded_late() -> bool {
    stage1().is_some()
}

/// When the process image started: the preload stage's time when it loaded the shim, else now.
pub fn image_started_ms() -> u64 {
    stage1().map_or_else(now_ms, |s| s.started_ms)
}

/// Under the preload stage: points the GOT slots that lead to the stage's exports (or, not
/// bound yet, into their own object's PLT) at the functions `lookup` gives for their names, in
/// every object loaded now and not done before, but the stage, the shim and the C runtime. A
/// hooked call from those objects then costs what it costs without the stage (no jump through
/// it). Cheap when no object was loaded since the last call (the loader's count of loads).
/// Returns how many slots changed.
///
/// # Safety
/// As [`rebind_objects_since`]: `lookup` gives functions that stand in for the named symbols,
/// and runs under the loader's lock.
pub unsafe fn bind_past_stage(lookup: &dyn Fn(&CStr) -> Option<usize>) -> usize {
    let Some(stage) = stage1() else { return 0 };
    // No handler of this thread's runs while the loader's lock is held below (one that called
    // `dl_iterate_phdr` or `dlopen` would wait for it forever).
    let mask = block_signals();
    // SAFETY: the caller's promise.
    let changed = unsafe { bind_past(stage, lookup) };
    restore_signals(&mask);
    changed
}

/// [`bind_past_stage`] with the signals blocked.
///
/// # Safety
/// As [`bind_past_stage`].
unsafe fn bind_past(stage: Stage1, lookup: &dyn Fn(&CStr) -> Option<usize>) -> usize {
    use std::sync::atomic::AtomicU64;
    use std::sync::Mutex;
    static ADDS: AtomicU64 = AtomicU64::new(u64::MAX);
    static DONE: Mutex<Vec<(usize, usize)>> = Mutex::new(Vec::new());
    let adds = loads_count();
    if adds == ADDS.load(Relaxed) {
        return 0;
    }
    // Not while another thread does it (nor in a fork child of one that was): the next call
    // does it.
    let Ok(mut done) = DONE.try_lock() else { return 0 };
    let Some((s_lo, s_hi)) = super::elf_got::object_extent(stage.base) else {
        return 0;
    };
    let shim = shim_base();
    let mut changed = 0;
    for obj in super::elf_got::loaded_objects() {
        let key = (obj.base, obj.dynamic as usize);
        if done.contains(&key) || obj.base == shim || obj.base == stage.base || is_runtime_library(obj.name.as_bytes())
        {
            continue;
        }
        let rep = |name: &CStr, current: usize, (lo, hi): (usize, usize)| {
            let through_stage = (s_lo..s_hi).contains(&current);
            let not_bound_yet = (lo..hi).contains(&current);
            if through_stage || not_bound_yet {
                lookup(name)
            } else {
                None
            }
        };
        // SAFETY: the caller's promise about `lookup`; a slot is changed only from the stage's
        // export (or the object's own lazy stub) to the shim's function of the same name,
        // which the stage's export would jump to.
        if let Ok(n) = unsafe { super::elf_got::patch_object_with(&obj, &rep) } {
            changed += n;
        }
        done.push(key);
    }
    ADDS.store(adds, Relaxed);
    changed
}

/// Blocks every signal of this thread but the faults of a bad instruction; the mask to put
/// back.
fn block_signals() -> libc::sigset_t {
    // SAFETY: sigset operations on our own sets; pthread_sigmask with valid pointers.
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        for sig in [
            libc::SIGILL,
            libc::SIGTRAP,
            libc::SIGBUS,
            libc::SIGFPE,
            libc::SIGSEGV,
            libc::SIGSYS,
        ] {
            libc::sigdelset(&mut all, sig);
        }
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
        old
    }
}

/// Puts back a mask [`block_signals`] returned.
fn restore_signals(old: &libc::sigset_t) {
    // SAFETY: a mask pthread_sigmask filled.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, old, std::ptr::null_mut()) };
}

/// The loader's count of objects loaded so far (`dlpi_adds`).
fn loads_count() -> u64 {
    unsafe extern "C" fn first(info: *mut libc::dl_phdr_info, size: usize, data: *mut c_void) -> c_int {
        if size >= std::mem::size_of::<libc::dl_phdr_info>() {
            // SAFETY: the loader passes a valid info of `size` bytes; `data` is our u64.
            unsafe { *(data as *mut u64) = (*info).dlpi_adds };
        }
        1
    }
    let mut adds = 0u64;
    // SAFETY: the callback matches the ABI and writes only our u64.
    unsafe { libc::dl_iterate_phdr(Some(first), (&mut adds as *mut u64).cast()) };
    adds
}
