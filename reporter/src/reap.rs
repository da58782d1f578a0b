//! Keeping track of the command's descendants.
//!
//! The reporter makes itself a *child subreaper* (Linux `PR_SET_CHILD_SUBREAPER`): a
//! descendant whose parent exits (a background job, a double-forking daemon) is re-parented
//! to the reporter instead of to init. So after the command exits, "do I still have
//! children?" tells whether any descendant is alive — including one that has not connected to
//! the socket yet — and the reporter reaps them all, the command and the orphans, with one
//! `waitpid(-1)` loop.

use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;

use anyhow::Result;

/// Asks the kernel to re-parent orphaned descendants to this process. Without it (another
/// OS, an old kernel) sockmeter only waits for descendants that are connected.
pub fn become_subreaper() -> bool {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: PR_SET_CHILD_SUBREAPER takes one integer argument and touches no memory.
        unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1 as libc::c_ulong, 0, 0, 0) == 0 }
    }
    #[cfg(not(target_os = "linux"))]
    {
        false
    }
}

/// What a round of reaping found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Reaped {
    /// The command's status, if it was reaped in this round.
    pub command: Option<ExitStatus>,
    /// Whether children (the command, or re-parented descendants) are still alive.
    pub children_left: bool,
    /// Every process reaped in this round (the command included): pid, when, how it ended.
    pub ended: Vec<(u32, u64, sockmeter::wire::ExitStatus)>,
}

/// Reaps every child that has exited, without blocking; `command` is the command's pid.
pub fn reap(command: u32) -> Result<Reaped> {
    let mut out = Reaped::default();
    loop {
        let mut status: libc::c_int = 0;
        // SAFETY: `status` is a valid out-pointer; WNOHANG makes the call non-blocking.
        // __WALL: every kind of child. The shim's shipper processes are orphaned at birth (a
        // double fork) and re-parented here; they are descendants to wait for too (each ends
        // once it has shipped its hosts' last counts).
        #[cfg(target_os = "linux")]
        let every_kind = libc::__WALL;
        #[cfg(not(target_os = "linux"))]
        let every_kind = 0;
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG | every_kind) };
        match pid {
            0 => {
                out.children_left = true;
                return Ok(out);
            }
            p if p > 0 => {
                if u32::try_from(p).ok() == Some(command) {
                    out.command = Some(ExitStatus::from_raw(status));
                }
                if let Some(st) = sockmeter::wire::ExitStatus::from_wait(status) {
                    out.ended.push((p as u32, sockmeter::time::now_ms(), st));
                }
            }
            _ => {
                let e = std::io::Error::last_os_error();
                match e.raw_os_error() {
                    Some(libc::ECHILD) => return Ok(out),
                    Some(libc::EINTR) => continue,
                    _ => return Err(anyhow::Error::new(e).context("waitpid failed")),
                }
            }
        }
    }
}

// No unit test here: waitpid(-1) in the test binary would reap other tests' children.
// The integration tests (tests/standin_shim.rs) exercise it through the binary.

/// An fd that becomes readable (for `poll`) when process `pid` ends, or -1: a pidfd (Linux 5.3+,
/// close-on-exec) or, on macOS, a kqueue watching the process (`EVFILT_PROC`, `NOTE_EXIT`; a
/// kqueue is readable while an event is pending). The caller closes it.
#[cfg(target_os = "linux")]
pub fn pidfd_open(pid: u32) -> i32 {
    // SAFETY: the pidfd_open system call; -1 when unsupported.
    unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) as i32 }
}

/// See the Linux version: a kqueue watching `pid`'s exit.
#[cfg(target_os = "macos")]
pub fn pidfd_open(pid: u32) -> i32 {
    // SAFETY: kqueue and kevent on our own new fd with one valid change record.
    unsafe {
        let kq = libc::kqueue();
        if kq < 0 {
            return -1;
        }
        libc::fcntl(kq, libc::F_SETFD, libc::FD_CLOEXEC);
        let ev = libc::kevent {
            ident: pid as libc::uintptr_t,
            filter: libc::EVFILT_PROC,
            flags: libc::EV_ADD | libc::EV_ONESHOT,
            fflags: libc::NOTE_EXIT,
            data: 0,
            udata: std::ptr::null_mut(),
        };
        if libc::kevent(kq, &ev, 1, std::ptr::null_mut(), 0, std::ptr::null()) != 0 {
            libc::close(kq);
            return -1;
        }
        kq
    }
}

/// Whether process `pid` exists (one we may not signal counts).
pub fn pid_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // SAFETY: signal 0 sends nothing; kill only checks that the process exists.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}
