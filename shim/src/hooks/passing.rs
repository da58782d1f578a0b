//! Sockets passed to another process (`SCM_RIGHTS` on a Unix socket): after the message, one
//! socket is open in two processes, like one open across a fork, and the kernel's TCP counts
//! are both holders' together. So the sender marks each TCP socket it passes shared, and the
//! receiver registers each TCP socket it receives at once (its witness counting from now) and
//! marks it shared: the reporter weighs the holders against each other (`sockmeter::holders`).
//! Without this, a receiver's counted bytes reappeared as the sender's unseen bytes (counted
//! twice).
//!
//! Runs after a successful `sendmsg`/`recvmsg` whose message carries control data, only: the
//! per-byte path of every other message is one comparison longer.

// `msg_controllen` and `cmsg_len` are `usize` on Linux and `socklen_t` on macOS.
#![allow(clippy::unnecessary_cast)]

use libc::{c_int, cmsghdr, msghdr};
use sockmeter::model::Proto;
use sockmeter::registry::{FdState, FLAG_SHARED, OVERFLOW};

use super::kernel::keeping_errno;
use super::sockets;
use crate::guard;
use crate::runtime::reg;

/// Whether a message the kernel just accepted or filled may carry fds.
#[inline]
pub fn carries_control(m: &msghdr) -> bool {
    !m.msg_control.is_null() && m.msg_controllen as usize >= std::mem::size_of::<cmsghdr>()
}

/// After `sendmsg` of `m` (accepted by the kernel): every TCP socket passed is shared now.
/// `guarded`: the caller holds the guard already.
#[cold]
pub fn sent(m: &msghdr, guarded: bool) {
    run(guarded, || {
        each_fd(m, |fd| {
            if let FdState::Record(idx) = reg().fds.get(fd) {
                let rec = reg().records.get(idx);
                if idx != OVERFLOW && rec.proto() == Proto::Tcp {
                    rec.set_flag(FLAG_SHARED);
                }
            }
        })
    });
}

/// After `recvmsg` filled `m`: every TCP socket received is registered now (counted and
/// witnessed from here) and shared.
#[cold]
pub fn received(m: &msghdr, guarded: bool) {
    run(guarded, || {
        each_fd(m, |fd| {
            if reg().fds.get(fd) != FdState::Unknown {
                return;
            }
            if let Some(idx) = sockets::adopt(fd) {
                let rec = reg().records.get(idx);
                if idx != OVERFLOW && rec.proto() == Proto::Tcp {
                    rec.set_flag(FLAG_SHARED);
                }
            }
        })
    });
}

/// Runs `f` with the guard held and errno kept (the known-socket path runs without the guard).
fn run(guarded: bool, f: impl FnOnce()) {
    keeping_errno(|| {
        if guarded {
            f();
        } else {
            let _ = guard::with(f);
        }
    });
}

/// Calls `f` with each fd of the `SCM_RIGHTS` messages in `m`'s control data.
fn each_fd(m: &msghdr, mut f: impl FnMut(c_int)) {
    // SAFETY: the control buffer is the caller's, `msg_controllen` bytes long, and the kernel
    // has just read it (sendmsg succeeded) or written it (recvmsg); CMSG_FIRSTHDR/CMSG_NXTHDR
    // stay inside `msg_controllen`, and each header's `cmsg_len` bounds its data.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(m);
        while !c.is_null() {
            let h = &*c;
            if h.cmsg_level == libc::SOL_SOCKET && h.cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(c) as *const u8;
                let head = data.offset_from(c as *const u8) as usize;
                let n = (h.cmsg_len as usize).saturating_sub(head) / std::mem::size_of::<c_int>();
                for i in 0..n {
                    let fd = std::ptr::read_unaligned((data as *const c_int).add(i));
                    f(fd);
                }
            }
            c = libc::CMSG_NXTHDR(m, c);
        }
    }
}
