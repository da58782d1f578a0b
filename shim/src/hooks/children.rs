//! The host's `wait` family: how its children ended.
//!
//! A parent that reaps a child is the one process sure to learn how it ended (exit code or
//! signal); the child's shipper may find it already reaped. So the wait hooks write each ending
//! they see to the run's endings file (`sockmeter::wire::endings_path`), which the reporter reads
//! at the end: a shell that never touches a socket (and so ships nothing) still tells how the
//! programs it ran ended. When the host passes no status pointer, the real call gets one of
//! ours; the host's own result is untouched.
//!
//! A `wait` may run in a SIGCHLD handler: nothing here allocates or takes a lock (one open,
//! one write of a line formatted on the stack, one close; with `O_APPEND` the line lands whole).
//! A child that counted in a slot of this process's nursery and recorded there how it ended
//! (its exit code, at `exit`/`_exit`) is skipped when the status agrees: its shipper's `bye`
//! carries that ending already.

#![allow(clippy::not_unsafe_ptr_arg_deref)]

use std::ffi::CString;
use std::sync::OnceLock;

use libc::{c_int, pid_t};

use crate::hooks::table::Rewrite;
use crate::platform;

static ENDINGS: OnceLock<CString> = OnceLock::new();

/// Called at load: where endings go (only under a reporter).
pub fn setup(socket: Option<&str>) {
    if let Some(s) = socket {
        if let Ok(c) = CString::new(sockmeter::wire::endings_path(s)) {
            let _ = ENDINGS.set(c);
        }
    }
}

/// Appends child `pid`'s ending (`status`, a wait status word) to the endings file.
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
fn record(pid: pid_t, status: c_int) {
    let Some(path) = ENDINGS.get() else { return };
    let Some(ending) = sockmeter::wire::ExitStatus::from_wait(status).filter(|_| pid > 0) else {
        return;
    };
    if crate::runtime::nursery::recorded_ending(pid as u32) == Some(ending) {
        // Its shipper says the same in its `bye`: three system calls and a path lookup fewer
        // on a forking server's every child.
        return;
    }
    let mut line = [0u8; 64];
    let n = sockmeter::wire::ending_line(&mut line, pid as u32, platform::now_ms(), status);
    // SAFETY: open/write/close on a NUL-terminated path and a valid buffer; the fd is ours and
    // closed at once (the file is created by the reporter: no O_CREAT).
    unsafe {
        let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_APPEND | libc::O_CLOEXEC);
        if fd >= 0 {
            libc::write(fd, line.as_ptr() as *const libc::c_void, n);
            libc::close(fd);
        }
    }
}

/// A `wait`-family call in progress: a status word of ours when the host passed none.
pub struct WaitCall {
    own: c_int,
}

/// `wait(status)`.
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
pub fn wait(_status: *mut c_int) -> WaitCall {
    WaitCall { own: 0 }
}

impl Rewrite<(*mut c_int,), pid_t> for WaitCall {
    fn args(&mut self, (status,): (*mut c_int,)) -> (*mut c_int,) {
        (if status.is_null() { &mut self.own } else { status },)
    }

    fn result(&mut self, ret: pid_t, _e: c_int, (status,): (*mut c_int,)) -> pid_t {
        self.seen(ret, status);
        ret
    }
}

impl WaitCall {
    #[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
    fn seen(&self, ret: pid_t, status: *mut c_int) {
        if ret > 0 {
            // SAFETY: the real call succeeded and wrote the status into the host's word (when it
            // passed one) or ours.
            let word = if status.is_null() { self.own } else { unsafe { *status } };
            record(ret, word);
        }
    }
}

/// `waitpid(pid, status, options)`.
pub fn waitpid(_pid: pid_t, _status: *mut c_int, _options: c_int) -> WaitCall {
    WaitCall { own: 0 }
}

impl Rewrite<(pid_t, *mut c_int, c_int), pid_t> for WaitCall {
    fn args(&mut self, (pid, status, options): (pid_t, *mut c_int, c_int)) -> (pid_t, *mut c_int, c_int) {
        (pid, if status.is_null() { &mut self.own } else { status }, options)
    }

    fn result(&mut self, ret: pid_t, _e: c_int, (_, status, _): (pid_t, *mut c_int, c_int)) -> pid_t {
        self.seen(ret, status);
        ret
    }
}

/// `wait3(status, options, usage)`.
pub fn wait3(_status: *mut c_int, _options: c_int, _usage: *mut libc::rusage) -> WaitCall {
    WaitCall { own: 0 }
}

type Wait3 = (*mut c_int, c_int, *mut libc::rusage);

impl Rewrite<Wait3, pid_t> for WaitCall {
    fn args(&mut self, (status, options, usage): Wait3) -> Wait3 {
        (if status.is_null() { &mut self.own } else { status }, options, usage)
    }

    fn result(&mut self, ret: pid_t, _e: c_int, (status, _, _): Wait3) -> pid_t {
        self.seen(ret, status);
        ret
    }
}

/// `wait4(pid, status, options, usage)`.
pub fn wait4(_pid: pid_t, _status: *mut c_int, _options: c_int, _usage: *mut libc::rusage) -> WaitCall {
    WaitCall { own: 0 }
}

type Wait4 = (pid_t, *mut c_int, c_int, *mut libc::rusage);

impl Rewrite<Wait4, pid_t> for WaitCall {
    fn args(&mut self, (pid, status, options, usage): Wait4) -> Wait4 {
        (
            pid,
            if status.is_null() { &mut self.own } else { status },
            options,
            usage,
        )
    }

    fn result(&mut self, ret: pid_t, _e: c_int, (_, status, _, _): Wait4) -> pid_t {
        self.seen(ret, status);
        ret
    }
}

/// `waitid(idtype, id, info, options)`: the ending is in `info` (unless `WNOWAIT` left the
/// child unreaped).
pub fn waitid(
    ret: c_int,
    _e: c_int,
    _idtype: libc::idtype_t,
    _id: libc::id_t,
    info: *mut libc::siginfo_t,
    options: c_int,
) {
    if ret != 0 || info.is_null() || options & libc::WNOWAIT != 0 {
        return;
    }
    // SAFETY: waitid succeeded and filled `*info` (si_pid 0: no child was ready).
    let (pid, code, status) = unsafe { ((*info).si_pid(), (*info).si_code, (*info).si_status()) };
    let word = match code {
        libc::CLD_EXITED => (status & 0xff) << 8,
        libc::CLD_KILLED => status & 0x7f,
        libc::CLD_DUMPED => (status & 0x7f) | 0x80,
        _ => return,
    };
    record(pid, word);
}
