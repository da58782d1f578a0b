//! The per-byte path: send, receive, read and write handlers, and the calls that move bytes
//! between an fd and a socket inside the kernel (splice, sendfile).
//!
//! Each runs after the real call with its return value and errno, and does only this: find
//! the fd's record (one atomic load; a socket the shim never saw created is recognised here,
//! once), add the call and the bytes the kernel accepted or delivered to the socket's counter
//! word for that direction (one atomic add), and, for a
//! datagram socket given an address, to that peer's counters. No allocation, no lock, no
//! system call (after an fd's first use; and a `recvmsg` that receives sockets registers them:
//! `passing.rs`). `MSG_PEEK` reads count as calls with no bytes;
//! `EAGAIN`/`EWOULDBLOCK` count as calls, not errors.

// Handlers are called only by the wrappers `hook_table!` generates, with exactly the arguments
// the host passed to the libc function (which the real call has just accepted), so pointer
// arguments are as valid as libc required them to be; and they mirror C signatures.
#![allow(clippy::not_unsafe_ptr_arg_deref, clippy::too_many_arguments)]

use libc::{c_int, c_uint, c_void, iovec, msghdr, off_t, size_t, sockaddr, socklen_t, ssize_t, timespec};
use sockmeter::model::{Dir, Proto, Role};
use sockmeter::registry::{FdState, Record};

use super::kernel;
use super::passing;
use super::sockets::{record_in_call, record_of, Sock};
use crate::platform::{self, loff_t, mmsghdr};
use crate::runtime::{self, reg};

/// True for the errno values that mean "try again", which are not errors.
#[inline]
pub fn would_block(e: c_int) -> bool {
    e == libc::EAGAIN || e == libc::EWOULDBLOCK || e == libc::EINTR
}

/// What one call did, as the counters see it.
#[derive(Clone, Copy)]
struct Outcome {
    /// Bytes moved (0 for a failure or a `MSG_PEEK` read).
    bytes: u64,
    /// A failure that counts as an error (not a would-block).
    failed: bool,
}

#[inline(always)]
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
fn outcome(ret: isize, e: c_int, peek: bool) -> Outcome {
    Outcome {
        bytes: if ret > 0 && !peek { ret as u64 } else { 0 },
        failed: ret < 0 && !would_block(e),
    }
}

/// Counts one call of `ret` bytes (negative: failed) on `fd`; returns the socket and what was
/// counted, for the per-peer counters.
#[inline(always)]
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
fn count(known: Option<Sock>, fd: c_int, dir: Dir, ret: isize, e: c_int, peek: bool) -> Option<(Sock, Outcome)> {
    let out = outcome(ret, e, peek);
    let sock = match known {
        Some(s) => s,
        None => record_in_call(fd, dir, out.bytes)?,
    };
    sock.rec
        .counters
        .count_by(dir, out.bytes, out.failed, platform::add_counter);
    runtime::ensure_started();
    Some((sock, out))
}

/// Whether a socket keeps per-peer counts: a datagram socket that names its peer on each call.
#[inline]
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
fn counts_peers(rec: &Record) -> bool {
    matches!(rec.proto(), Proto::Udp | Proto::Dgram | Proto::Raw)
        && matches!(rec.role(), Role::Unconnected | Role::Datagram)
}

/// Per-peer counting of one call (or one message of a batch) on a socket that
/// [`counts_peers`].
#[inline]
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
fn count_peer(sock: Sock, addr: *const sockaddr, len: socklen_t, dir: Dir, out: Outcome) {
    if addr.is_null() || len == 0 {
        return;
    }
    // SAFETY: `addr` and `len` describe a sockaddr the caller passed to (or received from)
    // the real call; `sockaddr_words` reads at most `len` bytes and checks the family.
    let Some(words) = (unsafe { platform::sockaddr_words(addr, len) }) else {
        return;
    };
    if sock.rec.role() == Role::Unconnected {
        sock.rec.set_role(Role::Datagram);
    }
    reg().records.peers(sock.idx).count(&words, dir, out.bytes, out.failed);
}

/// Whether the caller's pointer arguments (a message header, an address) may be read after a
/// call that returned `ret` with errno `e`. A success means the kernel read them; so does any
/// failure but these: EFAULT (one of them is not readable), and EBADF, ENOTSOCK and EINVAL,
/// which the kernel may return before it looked at them. The host may pass anything to a call
/// that fails: reading a pointer it gave would crash it.
#[inline]
fn args_were_read(ret: isize, e: c_int) -> bool {
    ret >= 0 || !matches!(e, libc::EFAULT | libc::EBADF | libc::ENOTSOCK | libc::EINVAL)
}

/// [`count_peer`] for the single-message calls, when the call's own arguments were read
/// ([`args_were_read`]).
#[inline]
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
fn count_one_peer(counted: (Sock, Outcome), addr: *const sockaddr, len: socklen_t, dir: Dir) {
    let (sock, out) = counted;
    if counts_peers(sock.rec) {
        count_peer(sock, addr, len, dir, out);
    }
}

fn peek(flags: c_int) -> bool {
    flags & libc::MSG_PEEK != 0
}

/// Reads `*p` if `p` is not null.
fn read_len(p: *const socklen_t) -> socklen_t {
    if p.is_null() {
        0
    } else {
        // SAFETY: a non-null `addrlen` passed to recvfrom points to a socklen_t the kernel
        // just wrote.
        unsafe { *p }
    }
}

#[inline]
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
pub fn send(known: Option<Sock>, ret: ssize_t, e: c_int, fd: c_int, _buf: *const c_void, _len: size_t, _flags: c_int) {
    count(known, fd, Dir::Tx, ret, e, false);
}

#[inline]
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
pub fn sendto(
    known: Option<Sock>,
    ret: ssize_t,
    e: c_int,
    fd: c_int,
    _buf: *const c_void,
    _len: size_t,
    _flags: c_int,
    addr: *const sockaddr,
    alen: socklen_t,
) {
    if let Some(c) = count(known, fd, Dir::Tx, ret, e, false) {
        if args_were_read(ret, e) {
            count_one_peer(c, addr, alen, Dir::Tx);
        }
    }
}

#[inline]
pub fn sendmsg(known: Option<Sock>, ret: ssize_t, e: c_int, fd: c_int, msg: *const msghdr, _flags: c_int) {
    let guarded = known.is_none();
    if let Some(c) = count(known, fd, Dir::Tx, ret, e, false) {
        if counts_peers(c.0.rec) && args_were_read(ret, e) && !msg.is_null() {
            // SAFETY: the caller's msghdr, which the kernel has just read (`args_were_read`).
            let m = unsafe { &*msg };
            count_one_peer(c, m.msg_name as *const sockaddr, m.msg_namelen, Dir::Tx);
        }
    }
    if ret >= 0 && !msg.is_null() {
        // SAFETY: as above: the kernel accepted the message, control data included.
        let m = unsafe { &*msg };
        if passing::carries_control(m) {
            passing::sent(m, guarded);
        }
    }
}

#[inline]
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
pub fn recv(known: Option<Sock>, ret: ssize_t, e: c_int, fd: c_int, _buf: *mut c_void, _len: size_t, flags: c_int) {
    count(known, fd, Dir::Rx, ret, e, peek(flags));
}

#[inline]
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
pub fn recvfrom(
    known: Option<Sock>,
    ret: ssize_t,
    e: c_int,
    fd: c_int,
    _buf: *mut c_void,
    _len: size_t,
    flags: c_int,
    addr: *mut sockaddr,
    alen: *mut socklen_t,
) {
    if let Some(c) = count(known, fd, Dir::Rx, ret, e, peek(flags)) {
        // Without an address buffer the kernel never touches the length pointer: it may be
        // anything.
        if ret >= 0 && !addr.is_null() {
            count_one_peer(c, addr, read_len(alen), Dir::Rx);
        }
    }
}

#[inline]
pub fn recvmsg(known: Option<Sock>, ret: ssize_t, e: c_int, fd: c_int, msg: *mut msghdr, flags: c_int) {
    let guarded = known.is_none();
    let c = count(known, fd, Dir::Rx, ret, e, peek(flags));
    if ret < 0 || msg.is_null() {
        return;
    }
    // SAFETY: the caller's msghdr, just filled in by the kernel.
    let m = unsafe { &*msg };
    if let Some(c) = c {
        count_one_peer(c, m.msg_name as *const sockaddr, m.msg_namelen, Dir::Rx);
    }
    if passing::carries_control(m) {
        passing::received(m, guarded);
    }
}

/// Sums `msg_len` of the first `n` messages and, on a socket that [`counts_peers`], counts
/// each message's peer.
fn count_mmsg(sock: Sock, vec: *const mmsghdr, n: c_int, dir: Dir, peekf: bool) -> u64 {
    if vec.is_null() || n <= 0 {
        return 0;
    }
    let peers = counts_peers(sock.rec);
    let mut total = 0u64;
    for i in 0..n as usize {
        // SAFETY: the kernel filled the first `n` (the return value) entries of the caller's
        // array of at least `vlen >= n` entries.
        let m = unsafe { &*vec.add(i) };
        total += u64::from(m.msg_len);
        if peers {
            let out = outcome(m.msg_len as isize, 0, peekf);
            count_peer(
                sock,
                m.msg_hdr.msg_name as *const sockaddr,
                m.msg_hdr.msg_namelen,
                dir,
                out,
            );
        }
    }
    total
}

#[inline]
pub fn sendmmsg(known: Option<Sock>, ret: c_int, e: c_int, fd: c_int, vec: *mut mmsghdr, _vlen: c_uint, _flags: c_int) {
    mmsg(known, ret, e, fd, vec, Dir::Tx, false);
}

#[inline]
pub fn recvmmsg(
    known: Option<Sock>,
    ret: c_int,
    e: c_int,
    fd: c_int,
    vec: *mut mmsghdr,
    _vlen: c_uint,
    flags: c_int,
    _t: *mut timespec,
) {
    mmsg(known, ret, e, fd, vec, Dir::Rx, peek(flags));
}

fn mmsg(known: Option<Sock>, ret: c_int, e: c_int, fd: c_int, vec: *const mmsghdr, dir: Dir, peekf: bool) {
    let fresh = known.is_none() && reg().fds.get(fd) == FdState::Unknown;
    let sock = match known {
        Some(s) => s,
        None => match record_of(fd) {
            Some(s) => s,
            None => return,
        },
    };
    let bytes = if ret > 0 {
        count_mmsg(sock, vec, ret, dir, peekf)
    } else {
        0
    };
    if fresh && !peekf {
        kernel::unbase(sock.rec, dir, bytes);
    }
    let out = outcome(ret as isize, e, peekf);
    sock.rec
        .counters
        .count_by(dir, if peekf { 0 } else { bytes }, out.failed, platform::add_counter);
    runtime::ensure_started();
}

#[inline]
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
pub fn read(known: Option<Sock>, ret: ssize_t, e: c_int, fd: c_int, _buf: *mut c_void, _len: size_t) {
    count(known, fd, Dir::Rx, ret, e, false);
}

#[inline]
pub fn read_chk(
    known: Option<Sock>,
    ret: ssize_t,
    e: c_int,
    fd: c_int,
    buf: *mut c_void,
    len: size_t,
    _buflen: size_t,
) {
    read(known, ret, e, fd, buf, len);
}

#[inline]
pub fn recv_chk(
    known: Option<Sock>,
    ret: ssize_t,
    e: c_int,
    fd: c_int,
    buf: *mut c_void,
    len: size_t,
    _buflen: size_t,
    flags: c_int,
) {
    recv(known, ret, e, fd, buf, len, flags);
}

#[inline]
pub fn recvfrom_chk(
    known: Option<Sock>,
    ret: ssize_t,
    e: c_int,
    fd: c_int,
    buf: *mut c_void,
    len: size_t,
    _buflen: size_t,
    flags: c_int,
    addr: *mut sockaddr,
    alen: *mut socklen_t,
) {
    recvfrom(known, ret, e, fd, buf, len, flags, addr, alen);
}

#[inline]
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
pub fn write(known: Option<Sock>, ret: ssize_t, e: c_int, fd: c_int, _buf: *const c_void, _len: size_t) {
    count(known, fd, Dir::Tx, ret, e, false);
}

#[inline]
pub fn readv(known: Option<Sock>, ret: ssize_t, e: c_int, fd: c_int, _iov: *const iovec, _n: c_int) {
    count(known, fd, Dir::Rx, ret, e, false);
}

#[inline]
pub fn writev(known: Option<Sock>, ret: ssize_t, e: c_int, fd: c_int, _iov: *const iovec, _n: c_int) {
    count(known, fd, Dir::Tx, ret, e, false);
}

/// A call that moves bytes from `fd_in` to `fd_out` in the kernel (splice, sendfile): a send
/// when the out end is a socket, a receive when the in end is (splice needs a pipe at one
/// end; sendfile reads a file, or a socket into a pipe), counted on the one socket.
fn between(ret: isize, e: c_int, fd_in: c_int, fd_out: c_int) {
    if count(None, fd_out, Dir::Tx, ret, e, false).is_none() {
        count(None, fd_in, Dir::Rx, ret, e, false);
    }
}

pub fn sendfile(ret: ssize_t, e: c_int, out_fd: c_int, in_fd: c_int, _off: *mut off_t, _count: size_t) {
    between(ret, e, in_fd, out_fd);
}

pub fn splice(
    ret: ssize_t,
    e: c_int,
    fd_in: c_int,
    _off_in: *mut loff_t,
    fd_out: c_int,
    _off_out: *mut loff_t,
    _len: size_t,
    _flags: c_uint,
) {
    between(ret, e, fd_in, fd_out);
}

/// BSD `sendfile(fd, s, offset, len, hdtr, flags)` (macOS): sends from the file `fd` (and the
/// headers and trailers in `hdtr`) to the socket `s`; `*len` says how many bytes went, also when
/// the call was interrupted or would block (EINTR, EAGAIN) after sending some.
#[allow(clippy::too_many_arguments)]
pub fn sendfile_bsd(
    ret: c_int,
    e: c_int,
    _fd: c_int,
    s: c_int,
    _offset: off_t,
    len: *mut off_t,
    _hdtr: *mut c_void,
    _flags: c_int,
) {
    let sent = if len.is_null() || (ret != 0 && !would_block(e)) {
        0
    } else {
        // SAFETY: the caller's `off_t *len`, which the kernel has just written (the call
        // succeeded, or was cut short after sending).
        unsafe { *len }
    };
    let counted = if sent > 0 { sent as isize } else { ret as isize };
    count(None, s, Dir::Tx, counted, e, false);
}

/// `preadv`/`preadv64`: on a socket it always fails (ESPIPE: a socket has no offset), and
/// counts as a failed receive; `O` is the offset type (`off_t`, `off64_t`).
#[inline]
pub fn preadv<O>(known: Option<Sock>, ret: ssize_t, e: c_int, fd: c_int, _iov: *const iovec, _n: c_int, _off: O) {
    count(known, fd, Dir::Rx, ret, e, false);
}

/// `pwritev`/`pwritev64`: as [`preadv`], a failed send.
#[inline]
pub fn pwritev<O>(known: Option<Sock>, ret: ssize_t, e: c_int, fd: c_int, _iov: *const iovec, _n: c_int, _off: O) {
    count(known, fd, Dir::Tx, ret, e, false);
}

/// `preadv2`/`preadv64v2`: with offset -1 a `readv` with flags, which works on a socket.
#[inline]
pub fn preadv2<O>(
    known: Option<Sock>,
    ret: ssize_t,
    e: c_int,
    fd: c_int,
    _iov: *const iovec,
    _n: c_int,
    _off: O,
    _flags: c_int,
) {
    count(known, fd, Dir::Rx, ret, e, false);
}

/// `pwritev2`/`pwritev64v2`: with offset -1 a `writev` with flags.
#[inline]
pub fn pwritev2<O>(
    known: Option<Sock>,
    ret: ssize_t,
    e: c_int,
    fd: c_int,
    _iov: *const iovec,
    _n: c_int,
    _off: O,
    _flags: c_int,
) {
    count(known, fd, Dir::Tx, ret, e, false);
}
