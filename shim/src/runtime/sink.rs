//! Where the messages go: the reporter's Unix socket and, at exit, the report file.
//!
//! The connection is made when the process first touches a socket, with `SOCK_CLOEXEC`,
//! moved to a high fd number out of the host's way, with a send timeout so a stuck reporter
//! cannot stall the host for long. The fd is marked *ignored* in the fd table, so its traffic
//! is never counted. If the host closes or `dup2`s over it (a daemon closing every fd, from any
//! thread), the close-family hooks first move it elsewhere (`protect`).
//!
//! Moving and sending must not interleave: a send that read the old number just before the
//! host's close released it would fail, or worse, write into whatever the host opens next at
//! that number. So every use of the fd (connecting, each `send`, moving it) happens under
//! [`FdLock`], a spin lock the host's close waits on only when it targets our fd.

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering::*};

use libc::c_int;

use crate::runtime::reg;
use sockmeter::registry::FdState;

/// The reporter connection's fd, -1 when none. Read by the close-family hooks.
pub static OWN_FD: AtomicI32 = AtomicI32::new(-1);

/// The temporary fd of a connection being made (-1 when none).
static TEMP_FD: AtomicI32 = AtomicI32::new(-1);
/// Set when the host took the connection (closed it with no number left to move it to).
static TAKEN: AtomicBool = AtomicBool::new(false);
/// Held while the reporter fd is used or moved.
static FD_LOCK: AtomicBool = AtomicBool::new(false);

/// The lock around every use of the reporter fd (see the module docs). Released on drop.
struct FdLock;

impl FdLock {
    fn take() -> FdLock {
        while FD_LOCK.compare_exchange_weak(false, true, Acquire, Relaxed).is_err() {
            std::thread::yield_now();
        }
        FdLock
    }
}

impl Drop for FdLock {
    fn drop(&mut self) {
        FD_LOCK.store(false, Release);
    }
}

/// The lowest fd number the connection is moved to.
const HIGH_FD: c_int = 200;
/// How long one write may block on a reporter that does not read.
const SEND_TIMEOUT_S: libc::time_t = 2;

/// The reporter connection.
pub struct Sink {
    path: Option<String>,
    gave_up: bool,
}

/// Why the reporter could not be reached (printed once).
fn complain(path: &str, what: &str) {
    crate::runtime::say(&format!(
        "cannot reach the reporter at SOCKMETER_SOCKET={path}: {what}; this process is still metered, but its counts are not sent"
    ));
}

impl Sink {
    /// A sink for the socket at `path` (none: messages are only kept in-process).
    pub fn new(path: Option<String>) -> Self {
        Sink { path, gave_up: false }
    }

    /// Whether a reporter is configured and reachable so far.
    pub fn wanted(&self) -> bool {
        self.path.is_some() && !self.gave_up
    }

    /// Connects if needed; true when connected.
    pub fn connect(&mut self) -> bool {
        if OWN_FD.load(Acquire) >= 0 {
            return true;
        }
        let Some(path) = self.path.clone() else { return false };
        if self.gave_up {
            return false;
        }
        // A host thread sweeping fds may close our temporary fd before we move it: try again.
        let mut last = None;
        for _ in 0..3 {
            let _lock = FdLock::take();
            match connect_unix(&path) {
                Ok(fd) => {
                    OWN_FD.store(fd, Release);
                    reg().fds.set(fd, FdState::Ignored);
                    return true;
                }
                Err(e) => {
                    let retry = matches!(e.raw_os_error(), Some(libc::EBADF) | Some(libc::ENOTSOCK));
                    last = Some(e);
                    if !retry {
                        break;
                    }
                }
            }
        }
        self.gave_up = true;
        complain(&path, &last.map(|e| e.to_string()).unwrap_or_default());
        false
    }

    /// Whether the host took the connection since the last call (then a new connection, with
    /// a new hello and every socket announced again, is needed).
    pub fn taken_by_host(&self) -> bool {
        TAKEN.swap(false, AcqRel)
    }

    /// Writes one line; on failure the connection is dropped (and not retried).
    pub fn send(&mut self, line: &[u8]) {
        let mut rest = line;
        while !rest.is_empty() {
            let _lock = FdLock::take();
            let fd = OWN_FD.load(Acquire);
            if fd < 0 {
                return;
            }
            // SAFETY: sending from a valid buffer on our own socket. MSG_NOSIGNAL: a reporter
            // that went away must not kill the host with SIGPIPE.
            let n = unsafe { libc::send(fd, rest.as_ptr() as *const libc::c_void, rest.len(), libc::MSG_NOSIGNAL) };
            if n < 0 {
                if crate::platform::errno() == libc::EINTR {
                    continue;
                }
                let e = std::io::Error::last_os_error();
                if let Some(p) = self.path.clone() {
                    complain(&p, &format!("the connection failed ({e})"));
                }
                self.close();
                self.gave_up = true;
                return;
            }
            rest = &rest[n as usize..];
        }
    }

    /// Closes the connection (the reporter sees EOF).
    pub fn close(&mut self) {
        let _lock = FdLock::take();
        let fd = OWN_FD.swap(-1, AcqRel);
        if fd >= 0 {
            reg().fds.set(fd, FdState::Unknown);
            // SAFETY: closing our own fd.
            unsafe { libc::close(fd) };
        }
    }

    /// Forgets an inherited connection without writing to it (a forked child must not talk
    /// on its parent's stream).
    pub fn abandon_inherited() {
        // The parent's thread may have held the lock at fork time; in the child it is ours.
        FD_LOCK.store(false, Release);
        TEMP_FD.store(-1, Release);
        let fd = OWN_FD.swap(-1, AcqRel);
        if fd >= 0 {
            reg().fds.set(fd, FdState::Unknown);
            // SAFETY: closing the child's copy of the parent's fd; the parent keeps its own.
            unsafe { libc::close(fd) };
        }
    }

    /// Allows a new connection after a failed exec closed the old one.
    pub fn reopen(&mut self) {
        self.gave_up = false;
    }
}

/// Clears [`TEMP_FD`] when the connection attempt ends, however it ends.
struct ClearTemp;

impl Drop for ClearTemp {
    fn drop(&mut self) {
        TEMP_FD.store(-1, Release);
    }
}

/// Makes the connection (the caller holds [`FdLock`]).
fn connect_unix(path: &str) -> std::io::Result<c_int> {
    let bytes = path.as_bytes();
    // SAFETY: sockaddr_un is plain data.
    let mut sa: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    if bytes.len() >= sa.sun_path.len() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "path too long for a Unix socket",
        ));
    }
    sa.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (d, s) in sa.sun_path.iter_mut().zip(bytes) {
        *d = *s as libc::c_char;
    }
    // SAFETY: plain socket calls on our own fd with valid pointers.
    unsafe {
        let fd = libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        TEMP_FD.store(fd, Release);
        let _clear = ClearTemp;
        let len = std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
        if libc::connect(fd, &sa as *const libc::sockaddr_un as *const libc::sockaddr, len) != 0 {
            let e = std::io::Error::last_os_error();
            libc::close(fd);
            return Err(e);
        }
        let fd = crate::platform::move_high(fd, HIGH_FD);
        let tv = libc::timeval {
            tv_sec: SEND_TIMEOUT_S,
            tv_usec: 0,
        };
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_SNDTIMEO,
            &tv as *const libc::timeval as *const libc::c_void,
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        );
        Ok(fd)
    }
}

/// Every fd the shim keeps open in the host (the slots hold -1 when unused): the reporter
/// connection (thread mode), and in shipper mode the region's memfd, the link to the shipper
/// and the adoption channel.
pub fn own_fds() -> [&'static std::sync::atomic::AtomicI32; 4] {
    use super::helper::{ADOPT_FD, LINK_FD, MEM_FD};
    [&OWN_FD, &MEM_FD, &LINK_FD, &ADOPT_FD]
}

/// Moves the reporter connection away from `fd` if the host is about to close or replace it
/// (waiting for a send or a connection in progress to finish first). The connection moves to
/// an fd number at least `min_fd` (and at least 264).
pub fn protect(fd: c_int, min_fd: c_int) {
    let ours = |f: c_int| own_fds().iter().any(|s| s.load(Acquire) == f);
    if fd < 0 || (!ours(fd) && TEMP_FD.load(Acquire) != fd) {
        return;
    }
    let _lock = FdLock::take();
    for slot in own_fds() {
        if slot.load(Acquire) != fd {
            continue;
        }
        // SAFETY: duplicating our own fd to a free number.
        let moved = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, min_fd.max(HIGH_FD + 64)) };
        if moved >= 0 {
            reg().fds.set(moved, FdState::Ignored);
            slot.store(moved, Release);
        } else {
            // Nowhere to go: the host's call takes it. A reporter connection is made again at
            // the next report; a lost link only means the shipper learns of an exec later.
            slot.store(-1, Release);
            if std::ptr::eq(slot, &OWN_FD) {
                TAKEN.store(true, Release);
            }
        }
    }
    // The host's close or dup2 will now release `fd` itself.
    reg().fds.set(fd, FdState::Unknown);
}

/// Runs `f` with the fd lock held (for a write to one of our fds that a host thread might be
/// closing at the same moment).
pub fn with_fd_lock<R>(f: impl FnOnce() -> R) -> R {
    let _lock = FdLock::take();
    f()
}
