//! What the hooks know about an fd: the fd table's answer (a known socket's record, not a
//! socket, unknown), and how a socket gets its record: registered when a hooked call makes it,
//! recognised on first use when the shim did not see it made, claimed when its number is taken
//! by a new fd, closed. Every family of handlers (`io`, `lifecycle`, `files`, `witness`,
//! `cfsocket`) goes through here; nothing here calls a family.
//!
//! Not on the per-byte path except [`passes`] and [`record_of`] (one table load each).

use libc::c_int;
use sockmeter::addr::ADDR_WORDS;
use sockmeter::model::{Dir, Family, Proto, Role};
use sockmeter::registry::{FdState, NewSocket, Record, FLAG_ADOPTED, OVERFLOW};

use super::kernel;
use crate::modules;
use crate::platform::{self, FdKind};
use crate::runtime::{self, reg};

/// True when a call on `fd` goes straight to libc: the fd is known not to be a metered socket.
#[inline]
pub fn passes(fd: c_int) -> bool {
    matches!(reg().fds.get(fd), FdState::NotSocket | FdState::Ignored)
}

/// A socket's record and its index (for its per-peer counters).
#[derive(Clone, Copy)]
pub struct Sock {
    /// The record index.
    pub idx: u32,
    /// The record.
    pub rec: &'static Record,
}

/// The record of `fd`, recognising a socket created behind the shim's back on first use.
#[inline(always)]
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
pub fn record_of(fd: c_int) -> Option<Sock> {
    let idx = match reg().fds.get(fd) {
        FdState::Record(i) => i,
        FdState::Unknown => adopt(fd)?,
        _ => return None,
    };
    Some(Sock {
        idx,
        rec: reg().records.get(idx),
    })
}

/// [`record_of`] inside a call that just moved `bytes` in `dir` on `fd`: a socket recognised
/// here has those bytes left out of its kernel witness's starting point (the hooks count them).
#[inline(always)]
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
pub fn record_in_call(fd: c_int, dir: Dir, bytes: u64) -> Option<Sock> {
    let idx = match reg().fds.get(fd) {
        FdState::Record(i) => i,
        FdState::Unknown => adopt_in_call(fd, dir, bytes)?,
        _ => return None,
    };
    Some(Sock {
        idx,
        rec: reg().records.get(idx),
    })
}

/// The record of socket `fd` whose metadata a hook may change (not the shared overflow
/// record's).
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
pub fn record(fd: c_int) -> Option<&'static Record> {
    record_of(fd).filter(|s| s.idx != OVERFLOW).map(|s| s.rec)
}

/// A socket about to be registered on `fd`, attributed to `who`.
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
pub fn described(fd: c_int, family: Family, proto: Proto, role: Role, flags: u32, who: modules::Who) -> NewSocket {
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

/// A socket about to be registered on `fd`, attributed to the module on this thread's stack.
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
pub fn new_socket(fd: c_int, family: Family, proto: Proto, role: Role, flags: u32) -> NewSocket {
    described(fd, family, proto, role, flags, modules::attribute())
}

/// A socket was registered: tell the reporting side, and start it if this is the first.
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
pub fn opened() {
    runtime::notify();
    runtime::ensure_started();
}

/// Registers a new socket on `s.fd` (closing a socket the table still held on that number:
/// [`sockmeter::registry::Registry::claim`]).
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
pub fn register(s: &NewSocket) {
    runtime::settle_region();
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
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
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
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
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
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
pub fn adopt_in_call(fd: c_int, dir: Dir, bytes: u64) -> Option<u32> {
    let idx = recognise(fd)?;
    kernel::base_on_first_use(fd, reg().records.get(idx), dir, bytes);
    Some(idx)
}

/// [`adopt`] without the witness's starting point (a socket met at its close is counted from
/// its creation).
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
pub fn recognise(fd: c_int) -> Option<u32> {
    recognise_as(fd, FLAG_ADOPTED, None)
}

/// Registers the socket on `fd` as it is now (family, protocol, role and addresses asked of
/// the kernel), with flags `flags`, attributed to `who` (or to the stack, when `None`).
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
pub fn recognise_as(fd: c_int, flags: u32, who: Option<modules::Who>) -> Option<u32> {
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
            let who = who.unwrap_or_else(modules::attribute);
            let mut s = described(fd, family, proto, role, flags, who);
            s.local = platform::local_words(fd).unwrap_or([0; ADDR_WORDS]);
            s.peer = platform::peer_words(fd).unwrap_or([0; ADDR_WORDS]);
            runtime::settle_region();
            let idx = reg().adopt(&s)?;
            opened();
            Some(idx)
        }
    }
}

/// `fd`, which was `was`, has been closed.
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
pub fn closed(fd: c_int, was: FdState) {
    if reg().close(fd, was, platform::now_ms()).is_some() {
        runtime::notify();
    }
}
