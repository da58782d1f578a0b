//! Sockets appearing, changing and closing: socket, socketpair, accept, connect, bind, listen,
//! shutdown, the dup family, fcntl(F_DUPFD), close, close_range and closefrom.
//!
//! These are not on the per-byte path, so they may do a little more: read the clock (vDSO),
//! ask the kernel for an address (getsockname), and attribute the socket to a module by walking
//! a few stack frames (`modules::attribute`). A socket is attributed when it is created,
//! connected or accepted; the per-byte path never looks at the stack.

// Handlers are called only by the wrappers `hook_table!` generates, with exactly the arguments
// the host passed to the libc function (which the real call has just accepted), so pointer
// arguments are as valid as libc required them to be; and they mirror C signatures.
#![allow(clippy::not_unsafe_ptr_arg_deref, clippy::too_many_arguments)]

use libc::{c_int, c_uint, c_ulong, sockaddr, socklen_t};
use sockmeter::addr::ADDR_WORDS;
use sockmeter::model::{Family, Proto, Role};
use sockmeter::registry::{FdState, FLAG_CFSOCKET, FLAG_NO_WITNESS, FLAG_SHUT_WR, OVERFLOW};

use super::sockets::{claim, closed, described, new_socket, parents, record, register};
use super::witness;
use crate::modules;
use crate::platform::{self, FdKind};
use crate::runtime::{self, reg};

#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
pub fn socket(ret: c_int, _e: c_int, domain: c_int, ty: c_int, protocol: c_int) {
    if ret < 0 {
        return;
    }
    match platform::kind_of(domain, ty, protocol) {
        Some((family, proto)) => {
            let who = modules::attribute();
            // CoreFoundation's own sockets (its wake-up pair; a CFSocket's is taken back by the
            // `CFSocketCreate*` hook that returns it: `cfsocket.rs`).
            if who.internal {
                claim(ret, FdState::Ignored);
                return;
            }
            let mut s = described(ret, family, proto, Role::Unconnected, 0, who);
            if family == Family::Unix {
                s.local = sockmeter::addr::encode_unix(&[], false, false);
            }
            register(&s);
        }
        None => claim(ret, FdState::Ignored),
    }
}

pub fn socketpair(ret: c_int, _e: c_int, domain: c_int, ty: c_int, protocol: c_int, sv: *mut c_int) {
    if ret != 0 || sv.is_null() {
        return;
    }
    // SAFETY: on success the kernel wrote two fds into the caller's `int sv[2]`.
    let fds = unsafe { [*sv, *sv.add(1)] };
    let Some((family, proto)) = platform::kind_of(domain, ty, protocol) else {
        fds.iter().for_each(|fd| claim(*fd, FdState::Ignored));
        return;
    };
    let unnamed = sockmeter::addr::encode_unix(&[], false, false);
    let who = modules::attribute();
    for fd in fds {
        if who.internal {
            claim(fd, FdState::Ignored);
            continue;
        }
        let mut s = described(fd, family, proto, Role::Connected, 0, who);
        s.local = unnamed;
        s.peer = unnamed;
        register(&s);
    }
}

/// Whether `addr` names a peer (not AF_UNSPEC, which dissolves an association).
fn addr_family(addr: *const sockaddr, len: socklen_t) -> Option<()> {
    // SAFETY: the caller's address, as passed to connect.
    unsafe { platform::sockaddr_words(addr, len) }.map(|_| ())
}

#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
pub fn connect(ret: c_int, e: c_int, fd: c_int, addr: *const sockaddr, len: socklen_t) {
    // EINPROGRESS (nonblocking) and EINTR (a signal, without SA_RESTART): the kernel goes on
    // connecting to this address in the background.
    if ret != 0 && e != libc::EINPROGRESS && e != libc::EINTR {
        return;
    }
    if reg().fds.get(fd) == FdState::Record(OVERFLOW) {
        // A socket opened while the registry was full: it counts as a connection.
        if addr_family(addr, len).is_some() {
            reg().records.count_overflow_connection();
            runtime::notify();
        }
        return;
    }
    let Some(rec) = record(fd) else { return };
    // SAFETY: the caller's address, as passed to connect.
    let peer = unsafe { platform::sockaddr_words(addr, len) };
    match peer {
        None => {
            // AF_UNSPEC: a datagram socket dissolving its association, or a TCP socket being
            // disconnected, which zeroes the kernel's counters: no witness for it any more.
            rec.set_peer(&[0; ADDR_WORDS]);
            rec.set_role(Role::Unconnected);
            if rec.proto() == Proto::Tcp {
                rec.set_flag(FLAG_NO_WITNESS);
            }
        }
        Some(p) => {
            rec.set_peer(&p);
            rec.set_role(Role::Connected);
        }
    }
    if let Some(l) = platform::local_words(fd) {
        rec.set_local(&l);
    }
    let who = modules::attribute();
    rec.set_module(who.module, who.via, who.label);
    runtime::notify();
}

#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
fn accepted(ret: c_int, listener: c_int) {
    if ret < 0 {
        return;
    }
    let l = record(listener);
    let (family, proto) = match l {
        Some(l) => (l.family(), l.proto()),
        None => match platform::classify(ret) {
            FdKind::Socket { family, proto, .. } if family != Family::Other => (family, proto),
            _ => {
                claim(ret, FdState::Ignored);
                return;
            }
        },
    };
    // A CFSocket listener's connections are the CFSocket's: accepted on CoreFoundation's own
    // thread, charged to the listener's module, with its origin.
    let mut s = match l.map(|l| l.meta().socket) {
        Some(m) if m.flags & FLAG_CFSOCKET != 0 => described(
            ret,
            family,
            proto,
            Role::Accepted,
            FLAG_CFSOCKET,
            modules::Who {
                module: m.module,
                via: m.via,
                label: m.label,
                internal: false,
            },
        ),
        _ => new_socket(ret, family, proto, Role::Accepted, 0),
    };
    // Not the caller's address buffer: when it is smaller than the address, the kernel fills
    // only what fits and reports the full length, so reading that length from it would read
    // past the caller's buffer.
    s.peer = platform::peer_words(ret).unwrap_or([0; ADDR_WORDS]);
    s.local = platform::local_words(ret).unwrap_or([0; ADDR_WORDS]);
    register(&s);
}

pub fn accept(ret: c_int, _e: c_int, fd: c_int, _addr: *mut sockaddr, _len: *mut socklen_t) {
    accepted(ret, fd);
}

pub fn accept4(ret: c_int, _e: c_int, fd: c_int, _addr: *mut sockaddr, _len: *mut socklen_t, _flags: c_int) {
    accepted(ret, fd);
}

pub fn bind(ret: c_int, _e: c_int, fd: c_int, _addr: *const sockaddr, _len: socklen_t) {
    if ret != 0 {
        return;
    }
    if let (Some(rec), Some(l)) = (record(fd), platform::local_words(fd)) {
        rec.set_local(&l);
        runtime::notify();
    }
}

pub fn listen(ret: c_int, _e: c_int, fd: c_int, _backlog: c_int) {
    if ret != 0 {
        return;
    }
    if let Some(rec) = record(fd) {
        rec.set_role(Role::Listening);
        if let Some(l) = platform::local_words(fd) {
            rec.set_local(&l);
        }
        runtime::notify();
    }
}

pub fn shutdown(ret: c_int, _e: c_int, fd: c_int, how: c_int) {
    // Nothing to count; recognising the socket keeps its later traffic attributed. The
    // kernel witness needs to know the sending side was shut down (docs: `sockmeter::witness`).
    let rec = record(fd);
    if let (0, Some(rec)) = (ret, rec) {
        if how == libc::SHUT_WR || how == libc::SHUT_RDWR {
            rec.set_flag(FLAG_SHUT_WR);
        }
    }
}

/// Whether a failed close still released the fd (Linux releases it on every error but EBADF).
fn released(ret: c_int, e: c_int) -> bool {
    ret == 0 || e != libc::EBADF
}

/// What `fd` is before a call that closes it, or None when this is a vfork child (see
/// [`parents`]) closing its copy of a socket or of one of the shim's fds.
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
pub fn close_before(fd: c_int) -> Option<FdState> {
    let was = reg().fds.get(fd);
    if parents(was) {
        return None;
    }
    runtime::protect_own_fd(fd);
    Some(witness::before_close(fd, reg().fds.get(fd)))
}

#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
pub fn close_after(was: Option<FdState>, ret: c_int, e: c_int, fd: c_int) {
    if let (Some(was), true) = (was, released(ret, e)) {
        closed(fd, was);
    }
}

/// Whether a close sweep is the process's own (not a vfork child's, see [`parents`]): then its
/// range is cleared of the shim's fds first.
pub fn close_range_before(first: c_uint, last: c_uint, flags: c_int) -> bool {
    if platform::in_vfork_child() {
        return false;
    }
    if flags & platform::CLOSE_RANGE_CLOEXEC == 0 {
        runtime::protect_own_fd_range(first, last);
        witness::before_close_span(first, last);
    }
    true
}

pub fn close_range_after(own: bool, ret: c_int, _e: c_int, first: c_uint, last: c_uint, flags: c_int) {
    if !own || ret != 0 || flags & platform::CLOSE_RANGE_CLOEXEC != 0 {
        return;
    }
    close_span(first, last);
}

fn close_span(first: c_uint, last: c_uint) {
    let mut list = [(0i32, 0u32); 64];
    let mut from = first;
    // Collect in batches (no allocation), then close each: closing changes the table.
    loop {
        let mut n = 0;
        let mut next = None;
        reg().fds.for_each_record_in(from, last, |fd, idx| {
            if n < list.len() {
                list[n] = (fd, idx);
                n += 1;
            } else if next.is_none() {
                next = Some(fd as c_uint);
            }
        });
        for &(fd, idx) in &list[..n] {
            closed(fd, FdState::Record(idx));
        }
        match next {
            Some(f) => from = f,
            None => break,
        }
    }
}

pub fn closefrom_before(low: c_int) -> bool {
    if platform::in_vfork_child() {
        return false;
    }
    runtime::protect_own_fd_range(low.max(0) as c_uint, c_uint::MAX);
    witness::before_close_span(low.max(0) as c_uint, c_uint::MAX);
    true
}

pub fn closefrom_after(own: bool, _ret: (), _e: c_int, low: c_int) {
    if own {
        close_span(low.max(0) as c_uint, c_uint::MAX);
    }
}

/// Whether a dup of an fd that is `from` over one that is `over` runs in a vfork child, and
/// must leave the table alone ([`parents`]). A socket duplicated there is being handed to the
/// program the child is about to exec (a subprocess's stdout): it is open there too, so its
/// record is marked shared.
fn vfork_dup(from: FdState, over: FdState) -> bool {
    if !parents(from) && !parents(over) {
        return false;
    }
    // `parents` said yes: this is a vfork child (no second `getpid`).
    if let FdState::Record(idx) = from {
        witness::shared_with_another(idx);
    }
    true
}

/// `new` is now what `old` is (the dup family), unless this is a vfork child (see
/// [`parents`]).
fn duped(old: c_int, new: c_int) {
    if vfork_dup(reg().fds.get(old), reg().fds.get(new)) {
        return;
    }
    if reg().dup(old, new, platform::now_ms).is_some() {
        runtime::notify();
    }
}

pub fn dup(ret: c_int, _e: c_int, fd: c_int) {
    if ret >= 0 {
        duped(fd, ret);
    }
}

/// What `new` is before the dup2 that replaces it, or None in a vfork child (see [`parents`]).
pub fn dup2_before(old: c_int, new: c_int) -> Option<FdState> {
    let was = reg().fds.get(new);
    if vfork_dup(reg().fds.get(old), was) {
        return None;
    }
    runtime::protect_own_fd(new);
    let was = reg().fds.get(new);
    if old == new {
        return Some(was);
    }
    // `new` is closed by the dup: the same witness as a close (but a never-seen fd is not
    // asked: a failed dup2 would leave it open, registered).
    Some(match was {
        FdState::Record(_) => witness::before_close(new, was),
        _ => was,
    })
}

pub fn dup2_after(was: Option<FdState>, ret: c_int, _e: c_int, old: c_int, new: c_int) {
    let Some(was) = was else { return };
    if ret < 0 || old == new {
        return;
    }
    closed(new, was);
    duped(old, new);
}

pub fn dup3_before(old: c_int, new: c_int, _flags: c_int) -> Option<FdState> {
    dup2_before(old, new)
}

pub fn dup3_after(was: Option<FdState>, ret: c_int, e: c_int, old: c_int, new: c_int, _flags: c_int) {
    dup2_after(was, ret, e, old, new);
}

pub fn fcntl(ret: c_int, _e: c_int, fd: c_int, cmd: c_int, _arg: c_ulong) {
    if ret >= 0 && (cmd == libc::F_DUPFD || cmd == libc::F_DUPFD_CLOEXEC) {
        duped(fd, ret);
    }
}
