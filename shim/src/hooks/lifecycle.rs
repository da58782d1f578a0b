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
use sockmeter::model::{Dir, Family, Proto, Role};
use sockmeter::registry::{FdState, NewSocket, FLAG_ADOPTED, FLAG_NO_WITNESS, FLAG_SHUT_WR, OVERFLOW};

use crate::modules;
use crate::platform::{self, FdKind};
use crate::runtime::{self, reg};

/// Family and protocol of a `socket(domain, type, protocol)` call; `None` for families not
/// metered (netlink, packet, ...).
pub fn kind_of(domain: c_int, ty: c_int, protocol: c_int) -> Option<(Family, Proto)> {
    let family = match domain {
        libc::AF_INET => Family::Inet,
        libc::AF_INET6 => Family::Inet6,
        libc::AF_UNIX => Family::Unix,
        _ => return None,
    };
    let base = ty & 0xf;
    let proto = match (family, base) {
        (Family::Unix, libc::SOCK_STREAM) => Proto::Stream,
        (Family::Unix, libc::SOCK_DGRAM) => Proto::Dgram,
        (_, libc::SOCK_SEQPACKET) => Proto::Seqpacket,
        (_, libc::SOCK_RAW) => Proto::Raw,
        (_, libc::SOCK_STREAM) => Proto::Tcp,
        (_, libc::SOCK_DGRAM) if protocol == libc::IPPROTO_ICMP || protocol == libc::IPPROTO_ICMPV6 => Proto::Raw,
        (_, libc::SOCK_DGRAM) => Proto::Udp,
        _ => Proto::Other,
    };
    Some((family, proto))
}

fn new_socket(fd: c_int, family: Family, proto: Proto, role: Role, flags: u32) -> NewSocket {
    let who = modules::attribute();
    NewSocket {
        fd,
        family,
        proto,
        role,
        flags,
        module: who.module,
        via: who.via,
        label: who.label,
        local: [0; ADDR_WORDS],
        peer: [0; ADDR_WORDS],
        opened_ms: platform::now_ms(),
    }
}

/// A socket was registered: tell the reporting side, and start it if this is the first.
fn opened() {
    runtime::notify();
    runtime::ensure_started();
}

/// Registers a new socket on `s.fd` (closing a socket the table still held on that number:
/// [`sockmeter::registry::Registry::claim`]).
fn register(s: &NewSocket) {
    let (idx, _) = reg().open(s, platform::now_ms);
    // The registry was full: the socket shares the overflow record, and an accepted one is
    // still a connection.
    if idx == OVERFLOW && s.role == Role::Accepted {
        reg().records.count_overflow_connection();
    }
    opened();
}

/// A hooked call has just made `fd`, which is `state`: a socket the table still held on that
/// number was closed behind the shim and is closed now.
pub fn claim(fd: c_int, state: FdState) {
    if parents(reg().fds.get(fd)) {
        return;
    }
    if reg().claim(fd, state, platform::now_ms).is_some() {
        runtime::notify();
    }
}

/// Whether a call that would change what the table says about an fd that is `st` runs in a
/// vfork child, and must leave the table alone: a vfork child runs in its parent's memory, so
/// the table is the parent's, whose fds the child's close, dup2 or open do not change (the
/// child has its own copy of the fd table). Asked (one getpid) only about a socket or one of
/// the shim's own fds; changes to what is known about other fds are harmless either way.
pub fn parents(st: FdState) -> bool {
    matches!(st, FdState::Record(_) | FdState::Ignored) && platform::in_vfork_child()
}

/// Recognises an fd the shim did not see being created (inherited across exec, made by a raw
/// system call, or duplicated by an unhooked path): classifies it once and, if it is a metered
/// socket, gives it a record, and the kernel witness its starting point (a TCP socket is
/// witnessed from now on).
pub fn adopt(fd: c_int) -> Option<u32> {
    adopt_in_call(fd, Dir::Tx, 0)
}

/// [`adopt`] inside a call that has just moved `bytes` in `dir` on `fd` (the hooks count them,
/// so the witness's starting point leaves them out).
pub fn adopt_in_call(fd: c_int, dir: Dir, bytes: u64) -> Option<u32> {
    let idx = recognise(fd)?;
    super::witness::base_on_first_use(fd, reg().records.get(idx), dir, bytes);
    Some(idx)
}

/// [`adopt`] without the witness's starting point (a socket met at its close is counted from
/// its creation).
pub fn recognise(fd: c_int) -> Option<u32> {
    match platform::classify(fd) {
        FdKind::Invalid => None,
        FdKind::NotSocket => {
            reg().fds.replace(fd, FdState::Unknown, FdState::NotSocket);
            None
        }
        // A vfork child's memory is its parent's: a socket it meets is not registered there
        // (one getpid, on this rare path only).
        FdKind::Socket { .. } if platform::in_vfork_child() => None,
        FdKind::Socket {
            family,
            proto,
            listening,
            connected,
        } => {
            if family == Family::Other {
                reg().fds.replace(fd, FdState::Unknown, FdState::Ignored);
                return None;
            }
            let role = if listening {
                Role::Listening
            } else if connected {
                Role::Connected
            } else {
                Role::Unconnected
            };
            let mut s = new_socket(fd, family, proto, role, FLAG_ADOPTED);
            s.local = platform::local_words(fd).unwrap_or([0; ADDR_WORDS]);
            s.peer = platform::peer_words(fd).unwrap_or([0; ADDR_WORDS]);
            let idx = reg().adopt(&s)?;
            opened();
            Some(idx)
        }
    }
}

pub fn socket(ret: c_int, _e: c_int, domain: c_int, ty: c_int, protocol: c_int) {
    if ret < 0 {
        return;
    }
    match kind_of(domain, ty, protocol) {
        Some((family, proto)) => {
            let mut s = new_socket(ret, family, proto, Role::Unconnected, 0);
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
    let Some((family, proto)) = kind_of(domain, ty, protocol) else {
        fds.iter().for_each(|fd| claim(*fd, FdState::Ignored));
        return;
    };
    let unnamed = sockmeter::addr::encode_unix(&[], false, false);
    for fd in fds {
        let mut s = new_socket(fd, family, proto, Role::Connected, 0);
        s.local = unnamed;
        s.peer = unnamed;
        register(&s);
    }
}

/// The record of socket `fd` whose metadata a hook may change (not the shared overflow
/// record's).
fn record(fd: c_int) -> Option<&'static sockmeter::registry::Record> {
    super::io::record_of(fd).filter(|s| s.idx != OVERFLOW).map(|s| s.rec)
}

/// Whether `addr` names a peer (not AF_UNSPEC, which dissolves an association).
fn addr_family(addr: *const sockaddr, len: socklen_t) -> Option<()> {
    // SAFETY: the caller's address, as passed to connect.
    unsafe { platform::sockaddr_words(addr, len) }.map(|_| ())
}

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

fn accepted(ret: c_int, listener: c_int) {
    if ret < 0 {
        return;
    }
    let (family, proto) = match record(listener) {
        Some(l) => (l.family(), l.proto()),
        None => match platform::classify(ret) {
            FdKind::Socket { family, proto, .. } if family != Family::Other => (family, proto),
            _ => {
                claim(ret, FdState::Ignored);
                return;
            }
        },
    };
    let mut s = new_socket(ret, family, proto, Role::Accepted, 0);
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

/// `fd`, which was `was`, has been closed.
pub fn closed(fd: c_int, was: FdState) {
    if reg().close(fd, was, platform::now_ms()).is_some() {
        runtime::notify();
    }
}

/// Whether a failed close still released the fd (Linux releases it on every error but EBADF).
fn released(ret: c_int, e: c_int) -> bool {
    ret == 0 || e != libc::EBADF
}

/// What `fd` is before a call that closes it, or None when this is a vfork child (see
/// [`parents`]) closing its copy of a socket or of one of the shim's fds.
pub fn close_before(fd: c_int) -> Option<FdState> {
    let was = reg().fds.get(fd);
    if parents(was) {
        return None;
    }
    runtime::protect_own_fd(fd);
    Some(super::witness::before_close(fd, reg().fds.get(fd)))
}

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
        super::witness::before_close_span(first, last);
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
    super::witness::before_close_span(low.max(0) as c_uint, c_uint::MAX);
    true
}

pub fn closefrom_after(own: bool, _ret: (), _e: c_int, low: c_int) {
    if own {
        close_span(low.max(0) as c_uint, c_uint::MAX);
    }
}

/// `new` is now what `old` is (the dup family), unless this is a vfork child (see
/// [`parents`]).
fn duped(old: c_int, new: c_int) {
    if parents(reg().fds.get(old)) || parents(reg().fds.get(new)) {
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
    if parents(was) || parents(reg().fds.get(old)) {
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
        FdState::Record(_) => super::witness::before_close(new, was),
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
