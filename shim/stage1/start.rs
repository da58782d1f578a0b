//! What the preload stage keeps at load for the shim it may load later (the start
//! environment's `SOCKMETER_*` and `LD_PRELOAD` variables, when the image started), and the pid
//! that tells a vfork child, kept current across forks.

use core::ffi::{c_char, c_int};
use core::sync::atomic::{AtomicU32, Ordering::*};

use crate::sys::{getpid, now_ms, pthread_atfork, strlen};

/// The process's pid as this stage last knew it (its start, or a fork child's, set by the
/// fork handler): a vfork child's differs.
pub static PID: AtomicU32 = AtomicU32::new(0);

pub fn in_vfork_child() -> bool {
    let own = PID.load(Relaxed);
    own != 0 && own != getpid()
}

extern "C" fn after_fork_child() {
    // Only a stage that has not loaded the shim yet asks whether it runs in a vfork child: once
    // the shim is loaded (or failed to load), a forked child leaves the pid alone (no system
    // call, and no page of this library copied on write in every child of a metered parent).
    if crate::shim_settled() {
        return;
    }
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
/// Filled by the constructor, before any hook can load the shim; never written after.
static mut START: Start = Start {
    env: core::ptr::null(),
    env_len: 0,
    started_ms: 0,
};

/// What the constructor kept: the shim reads its configuration and start time from here
/// rather than from an environment the host may have changed since.
#[no_mangle]
pub extern "C" fn sockmeter_stage1_start() -> *const Start {
    &raw const START
}

fn kept(entry: &[u8]) -> bool {
    entry.starts_with(b"SOCKMETER_") || entry.starts_with(b"LD_PRELOAD=")
}

extern "C" fn at_load(_argc: c_int, _argv: *const *const c_char, envp: *const *const c_char) {
    PID.store(getpid(), Relaxed);
    // SAFETY: pthread_atfork with a valid function.
    unsafe { pthread_atfork(None, None, Some(after_fork_child)) };
    let started_ms = now_ms();
    let mut len = 0usize;
    let mut i = 0;
    while !envp.is_null() {
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
    // SAFETY: only the constructor writes START, before any hook can load the shim.
    unsafe {
        START = Start {
            env: (&raw const ENV) as *const u8,
            env_len: len,
            started_ms,
        };
    }
}

#[used]
#[link_section = ".init_array"]
static AT_LOAD: extern "C" fn(c_int, *const *const c_char, *const *const c_char) = at_load;
