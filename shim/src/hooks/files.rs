//! New fds that are not sockets (files, directories, pipes, eventfd, memfd, epoll, timerfd,
//! signalfd, inotify, stdio streams), and the stdio calls that close an fd inside libc.
//!
//! The fd table caches what each fd number is, so the per-byte path needs no system call. The
//! cache goes stale when a socket is closed where no hook sees it -- a raw `close` system
//! call, an io_uring close, or glibc closing a stream's fd inside `fclose`/`freopen` -- and the
//! kernel then hands the number out again: bytes written to a file would be counted on the
//! socket that held the number before. So every hooked call that makes an fd writes what it
//! is into the table (one atomic swap; nothing when the table already says "not a socket"),
//! and a socket still found there is closed at that moment
//! ([`sockmeter::registry::Registry::claim`]); `fclose` and `freopen` close the stream's fd in
//! the table as `close` does. None of this is on the per-byte path: a read or write on a file
//! still costs one table load.
//!
//! Files opened by `open()` are never sockets (opening a socket's path fails with ENXIO; an
//! `O_PATH` fd cannot be read or written), so they are marked "not a socket" outright.

// Handlers are called only by the wrappers `hook_table!` generates, with exactly the arguments
// the host passed to the libc function (which the real call has just accepted); they mirror C
// signatures.
#![allow(clippy::not_unsafe_ptr_arg_deref, clippy::too_many_arguments)]

use libc::{c_char, c_int, c_uint, mode_t, sigset_t, FILE};
use sockmeter::registry::FdState;

use super::sockets;
use super::table::Fallback;
use super::witness;
use crate::platform;
use crate::runtime::reg;

impl Fallback for *mut FILE {
    fn fallback() -> Self {
        std::ptr::null_mut()
    }
    fn failed(&self) -> bool {
        self.is_null()
    }
}

/// `fd` was just made by a hooked call and is not a socket.
#[inline]
fn made(fd: c_int) {
    if fd >= 0 && reg().fds.get(fd) != FdState::NotSocket {
        sockets::claim(fd, FdState::NotSocket);
    }
}

/// The fd under a stdio stream, if it has one (`fmemopen` streams do not).
fn stream_fd(f: *mut FILE) -> Option<c_int> {
    if f.is_null() {
        return None;
    }
    // fileno sets errno for a stream without an fd; this runs before the real call, whose
    // errno the host must see unchanged.
    let e = platform::errno();
    // SAFETY: a non-null stream the host passed to a stdio call that requires a valid one;
    // fileno only reads it.
    let fd = unsafe { libc::fileno(f) };
    platform::set_errno(e);
    (fd >= 0).then_some(fd)
}

/// The stream's fd and what the table said about it, before a call that closes it (None in a
/// vfork child: [`sockets::parents`]).
pub fn stream_before(f: *mut FILE) -> Option<(c_int, FdState)> {
    let fd = stream_fd(f)?;
    let was = reg().fds.get(fd);
    (!sockets::parents(was)).then_some((fd, was))
}

pub fn open(ret: c_int, _e: c_int, _path: *const c_char, _flags: c_int, _mode: c_uint) {
    made(ret);
}

pub fn openat(ret: c_int, _e: c_int, _dir: c_int, _path: *const c_char, _flags: c_int, _mode: c_uint) {
    made(ret);
}

pub fn open_2(ret: c_int, _e: c_int, _path: *const c_char, _flags: c_int) {
    made(ret);
}

pub fn openat_2(ret: c_int, _e: c_int, _dir: c_int, _path: *const c_char, _flags: c_int) {
    made(ret);
}

pub fn creat(ret: c_int, _e: c_int, _path: *const c_char, _mode: mode_t) {
    made(ret);
}

/// The two fds of a successful `pipe`/`pipe2`.
fn pipe_fds(ret: c_int, fds: *mut c_int) {
    if ret != 0 || fds.is_null() {
        return;
    }
    // SAFETY: on success the kernel wrote two fds into the caller's `int fds[2]`.
    let pair = unsafe { [*fds, *fds.add(1)] };
    pair.into_iter().for_each(made);
}

pub fn pipe(ret: c_int, _e: c_int, fds: *mut c_int) {
    pipe_fds(ret, fds);
}

pub fn pipe2(ret: c_int, _e: c_int, fds: *mut c_int, _flags: c_int) {
    pipe_fds(ret, fds);
}

pub fn eventfd(ret: c_int, _e: c_int, _init: c_uint, _flags: c_int) {
    made(ret);
}

pub fn memfd_create(ret: c_int, _e: c_int, _name: *const c_char, _flags: c_uint) {
    made(ret);
}

pub fn epoll_create(ret: c_int, _e: c_int, _size: c_int) {
    made(ret);
}

pub fn epoll_create1(ret: c_int, _e: c_int, _flags: c_int) {
    made(ret);
}

pub fn timerfd_create(ret: c_int, _e: c_int, _clock: c_int, _flags: c_int) {
    made(ret);
}

pub fn signalfd(ret: c_int, _e: c_int, _fd: c_int, _mask: *const sigset_t, _flags: c_int) {
    made(ret);
}

pub fn inotify_init(ret: c_int, _e: c_int) {
    made(ret);
}

pub fn inotify_init1(ret: c_int, _e: c_int, _flags: c_int) {
    made(ret);
}

pub fn fopen(ret: *mut FILE, _e: c_int, _path: *const c_char, _mode: *const c_char) {
    if let Some(fd) = stream_fd(ret) {
        made(fd);
    }
}

/// An `fclose` in progress: the stream's fd and what it was, and a socket's witness as it
/// will be once the stream's buffer is written (`witness::before_fclose`).
pub struct Fclose {
    stream: Option<(c_int, FdState)>,
    witness: Option<(u32, [u64; 2])>,
}

pub fn fclose_before(f: *mut FILE) -> Fclose {
    let stream = stream_before(f);
    let witness = stream.and_then(|(fd, was)| witness::before_fclose(fd, was, platform::stdio_pending(f)));
    Fclose { stream, witness }
}

/// `fclose` closes the stream's fd inside glibc (even when flushing fails).
pub fn fclose_after(c: Fclose, ret: c_int, _e: c_int, _f: *mut FILE) {
    witness::after_fclose(c.witness, ret);
    if let Some((fd, was)) = c.stream {
        sockets::closed(fd, was);
    }
}

pub fn freopen_before(_path: *const c_char, _mode: *const c_char, f: *mut FILE) -> Option<(c_int, FdState)> {
    stream_before(f)
}

/// `freopen` closes the stream's fd inside glibc, then opens the file (on the same number).
pub fn freopen_after(
    was: Option<(c_int, FdState)>,
    ret: *mut FILE,
    _e: c_int,
    _path: *const c_char,
    _mode: *const c_char,
    _f: *mut FILE,
) {
    if let Some((fd, was)) = was {
        sockets::closed(fd, was);
    }
    if let Some(fd) = stream_fd(ret) {
        made(fd);
    }
}
