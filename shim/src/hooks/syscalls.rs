//! `syscall()` itself: a program that calls `syscall(SYS_sendto, ...)` (old libuv did so for
//! `accept4`, some programs for everything) is counted as if it had called the libc function.
//! The numbers metered are the socket calls (socket, socketpair, connect, accept, accept4, bind,
//! listen, shutdown), the data calls (read, write, readv, writev, preadv, pwritev, preadv2,
//! pwritev2, sendto, recvfrom, sendmsg, recvmsg, sendmmsg, recvmmsg, sendfile, splice), the fd
//! calls (close, close_range, dup, dup2, dup3, fcntl), `io_uring_setup` and `exit_group`. Every
//! other number (futex above all: Rust's and C++'s locks call `syscall(SYS_futex, ...)`) passes
//! straight through after one `match`, and so does a metered data call on an fd known not to
//! be a socket.
//!
//! `syscall` is variadic in C; the hook takes the number and six `long` arguments, which is
//! how glibc's own `syscall` reads them: on x86_64 the number and the first five arguments
//! come in registers and the sixth from the stack (where a caller that passed fewer leaves
//! whatever was there, which the kernel ignores for such a call, as it would without the shim);
//! on aarch64 Linux, variadic and fixed integer arguments are passed alike, in x0-x6. The real
//! `syscall` gets all seven back in the same places.
//!
//! The handlers are the libc functions' own (`io`, `lifecycle`, `process`); on failure
//! `syscall()` returns -1 with errno set, like them.

// Handlers are called only by the wrappers `hook_table!` generates, with exactly the arguments
// the host passed to `syscall` (which the real call has just accepted), so pointer arguments
// are as valid as the kernel required them to be.
#![allow(clippy::not_unsafe_ptr_arg_deref, clippy::too_many_arguments)]
// The system call numbers are libc's `SYS_*` constants, named as in C.
#![allow(non_upper_case_globals)]

use libc::{c_int, c_long};
use sockmeter::registry::FdState;

use super::sysclass::{sys_class, SysClass};

use super::{io, lifecycle, process, sockets, uring};

/// Whether `syscall(n, a1, ...)` goes straight to libc: not a number the shim meters, or a
/// data or fd call on an fd known not to be a socket.
#[inline(always)]
pub fn passes(n: c_long, a1: c_long, _a2: c_long, a3: c_long, _a4: c_long, _a5: c_long, _a6: c_long) -> bool {
    match sys_class(n) {
        SysClass::OnFd => sockets::passes(a1 as c_int),
        SysClass::OnTwoFds => sockets::passes(a1 as c_int) && sockets::passes(a3 as c_int),
        SysClass::Always => false,
        SysClass::Pass => true,
    }
}

/// What the before-part of an fd call saw (for its after-part).
pub enum Pre {
    /// Nothing to remember.
    Nothing,
    /// The fd state before a close or dup2/dup3 (None in a vfork child: its fds are its
    /// parent's, see `sockets::parents`).
    Was(Option<FdState>),
    /// Whether a close_range sweep is the process's own.
    Own(bool),
}

pub fn before(n: c_long, a1: c_long, a2: c_long, a3: c_long, _a4: c_long, _a5: c_long, _a6: c_long) -> Pre {
    use libc::*;
    match n {
        SYS_close => Pre::Was(lifecycle::close_before(a1 as c_int)),
        #[cfg(target_arch = "x86_64")]
        SYS_dup2 => Pre::Was(lifecycle::dup2_before(a1 as c_int, a2 as c_int)),
        SYS_dup3 => Pre::Was(lifecycle::dup3_before(a1 as c_int, a2 as c_int, a3 as c_int)),
        SYS_close_range => Pre::Own(lifecycle::close_range_before(a1 as c_uint, a2 as c_uint, a3 as c_int)),
        SYS_exit_group => {
            process::exit_before(a1 as c_int);
            Pre::Nothing
        }
        _ => Pre::Nothing,
    }
}

pub fn after(
    pre: Pre,
    ret: c_long,
    e: c_int,
    n: c_long,
    a1: c_long,
    a2: c_long,
    a3: c_long,
    a4: c_long,
    a5: c_long,
    a6: c_long,
) {
    use libc::*;
    let (r, ri, fd) = (ret as isize, ret as c_int, a1 as c_int);
    let p = |a: c_long| a as *mut c_void;
    match (n, pre) {
        (SYS_read, _) => io::read(None, r, e, fd, p(a2), a3 as size_t),
        (SYS_write, _) => io::write(None, r, e, fd, p(a2), a3 as size_t),
        (SYS_readv, _) => io::readv(None, r, e, fd, a2 as *const iovec, a3 as c_int),
        (SYS_writev, _) => io::writev(None, r, e, fd, a2 as *const iovec, a3 as c_int),
        (SYS_preadv, _) => io::preadv(None, r, e, fd, a2 as *const iovec, a3 as c_int, a4),
        (SYS_pwritev, _) => io::pwritev(None, r, e, fd, a2 as *const iovec, a3 as c_int, a4),
        (SYS_preadv2, _) => io::preadv2(None, r, e, fd, a2 as *const iovec, a3 as c_int, a4, 0),
        (SYS_pwritev2, _) => io::pwritev2(None, r, e, fd, a2 as *const iovec, a3 as c_int, a4, 0),
        (SYS_sendto, _) => io::sendto(
            None,
            r,
            e,
            fd,
            p(a2),
            a3 as size_t,
            a4 as c_int,
            a5 as *const sockaddr,
            a6 as socklen_t,
        ),
        (SYS_recvfrom, _) => io::recvfrom(
            None,
            r,
            e,
            fd,
            p(a2),
            a3 as size_t,
            a4 as c_int,
            a5 as *mut sockaddr,
            a6 as *mut socklen_t,
        ),
        (SYS_sendmsg, _) => io::sendmsg(None, r, e, fd, a2 as *const msghdr, a3 as c_int),
        (SYS_recvmsg, _) => io::recvmsg(None, r, e, fd, a2 as *mut msghdr, a3 as c_int),
        (SYS_sendmmsg, _) => io::sendmmsg(None, ri, e, fd, a2 as *mut mmsghdr, a3 as c_uint, a4 as c_int),
        (SYS_recvmmsg, _) => io::recvmmsg(
            None,
            ri,
            e,
            fd,
            a2 as *mut mmsghdr,
            a3 as c_uint,
            a4 as c_int,
            a5 as *mut timespec,
        ),
        (SYS_sendfile, _) => io::sendfile(r, e, fd, a2 as c_int, a3 as *mut off_t, a4 as size_t),
        (SYS_splice, _) => io::splice(
            r,
            e,
            fd,
            a2 as *mut loff_t,
            a3 as c_int,
            a4 as *mut loff_t,
            a5 as size_t,
            a6 as c_uint,
        ),
        (SYS_socket, _) => lifecycle::socket(ri, e, a1 as c_int, a2 as c_int, a3 as c_int),
        (SYS_socketpair, _) => lifecycle::socketpair(ri, e, a1 as c_int, a2 as c_int, a3 as c_int, a4 as *mut c_int),
        (SYS_connect, _) => lifecycle::connect(ri, e, fd, a2 as *const sockaddr, a3 as socklen_t),
        (SYS_accept, _) => lifecycle::accept(ri, e, fd, a2 as *mut sockaddr, a3 as *mut socklen_t),
        (SYS_accept4, _) => lifecycle::accept4(ri, e, fd, a2 as *mut sockaddr, a3 as *mut socklen_t, a4 as c_int),
        (SYS_bind, _) => lifecycle::bind(ri, e, fd, a2 as *const sockaddr, a3 as socklen_t),
        (SYS_listen, _) => lifecycle::listen(ri, e, fd, a2 as c_int),
        (SYS_shutdown, _) => lifecycle::shutdown(ri, e, fd, a2 as c_int),
        (SYS_dup, _) => lifecycle::dup(ri, e, fd),
        (SYS_fcntl, _) => lifecycle::fcntl(ri, e, fd, a2 as c_int, a3 as c_ulong),
        (SYS_close, Pre::Was(was)) => lifecycle::close_after(was, ri, e, fd),
        #[cfg(target_arch = "x86_64")]
        (SYS_dup2, Pre::Was(was)) => lifecycle::dup2_after(was, ri, e, fd, a2 as c_int),
        (SYS_dup3, Pre::Was(was)) => lifecycle::dup3_after(was, ri, e, fd, a2 as c_int, a3 as c_int),
        (SYS_close_range, Pre::Own(own)) => {
            lifecycle::close_range_after(own, ri, e, a1 as c_uint, a2 as c_uint, a3 as c_int)
        }
        (SYS_io_uring_setup, _) if ret >= 0 => uring::created(),
        _ => {}
    }
}
