//! The live accounting state of one process: an fd table and a table of socket records, all
//! atomics in fixed-size, statically allocated arrays.
//!
//! This is what the hooks touch, so it obeys their rules: no allocation, no lock, no system
//! call, and it works before any constructor has run (a `static Registry` is all zeros, which
//! is a valid empty registry). Untouched pages of the arrays cost no memory.
//!
//! * [`FdTable`] maps an fd number to what we know about it: unknown, not a socket, ignored
//!   (ours, or a family we do not meter), or the index of its [`Record`]. `dup` makes several
//!   fds share one record (its `refs`).
//! * [`Record`] holds one socket's metadata (family, protocol, role, addresses, module, label,
//!   times) and its counters: one packed word per direction (calls and bytes), so the per-byte
//!   path is one atomic add. The one reader takes them with an atomic swap (never a read and
//!   a later store of zero, which loses what was added in between) and ships what it took.
//! * A record's life: `FREE` → claimed (`OPENING`) → `OPEN` → all fds closed (`CLOSED`) → the
//!   reporting thread ships its last delta and frees it ([`Records::free`]). Record 0 is the
//!   overflow pseudo-socket that absorbs traffic when every record is in use, so totals stay
//!   exact even then.
//!
//! The parts: [`fds`] (the fd table), [`counters`] (per-socket and per-peer counters),
//! [`records`] (socket records and their table); this file ties them into a [`Registry`].

mod counters;
mod fds;
mod records;

pub use counters::{CounterValues, Counters, PeerSlot, Peers, Taken, BYTE_BITS, CALL_BITS};
pub use fds::{FdState, FdTable};
pub use records::{
    NewSocket, Record, RecordMeta, RecordState, Records, FLAG_ADOPTED, FLAG_CFSOCKET, FLAG_INHERITED, FLAG_NO_WITNESS,
    FLAG_REBASE, FLAG_SHARED, FLAG_SHUT_WR, FLAG_WITNESSED,
};

/// fds at or above this number are not metered (the fd table would grow too large).
pub const MAX_FDS: usize = 1 << 20;
/// How many sockets can be open (or closed but not yet reported) at once.
pub const MAX_RECORDS: usize = 1 << 15;
/// Per-peer counters kept for an unconnected datagram socket; more peers share "other".
pub const MAX_PEERS: usize = 4;
/// The overflow pseudo-socket's record index.
pub const OVERFLOW: u32 = 0;

/// The fd table and the records of one process.
#[repr(C)]
pub struct Registry {
    /// fd → record.
    pub fds: FdTable,
    /// Socket records.
    pub records: Records,
}

impl Registry {
    /// An empty registry, usable as a `static`.
    pub const fn new() -> Self {
        Registry {
            fds: FdTable::new(),
            records: Records::new(),
        }
    }

    /// Makes this registry a copy of `other` (moving the process's accounting into a new
    /// region: at load time, and around fork). Only what either ever used is visited, and only
    /// what differs is written (`crate::keep`): the parent's snapshot before each fork leaves
    /// the pages that did not change clean (no copy-on-write fault for them after the fork),
    /// and a fresh region gets no page for a word that stays zero.
    #[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
    pub fn copy_from(&self, other: &Registry) {
        self.copy_forgetting(other, &[]);
    }

    /// As [`Registry::copy_from`], the copy knowing nothing of the fds in `forget`
    /// ([`fds::FdTable::copy_forgetting`]).
    pub fn copy_forgetting(&self, other: &Registry, forget: &[i32]) {
        self.records.copy_from(&other.records);
        self.fds.copy_forgetting(&other.fds, forget);
    }

    /// Registers a new socket on `s.fd` and returns its record index, and the index of a
    /// socket the table still held on that number and that this closed (see [`Registry::claim`]).
    #[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
    pub fn open(&self, s: &NewSocket, now_ms: impl FnOnce() -> u64) -> (u32, Option<u32>) {
        let idx = self.records.open(s);
        (idx, self.claim(s.fd, FdState::Record(idx), now_ms))
    }

    /// A hooked call has just made `fd` (a socket, a dup, a file, a pipe...): the table now says
    /// `state` for it. If it still said a socket for that number, that socket was closed behind
    /// the shim's back (a raw close system call, an io_uring close; the number could not have
    /// been handed out again otherwise): it is closed now, at `now_ms()`, and its index is
    /// returned when that was its last fd. One atomic swap when there was nothing stale.
    ///
    /// A close that raced with the reuse ([`Registry::close`] finding the number already
    /// claimed) leaves the old socket to this call, so it is closed exactly once.
    #[inline]
    pub fn claim(&self, fd: i32, state: FdState, now_ms: impl FnOnce() -> u64) -> Option<u32> {
        match self.fds.swap(fd, state) {
            FdState::Record(idx) if idx != OVERFLOW => self.records.get(idx).drop_ref(now_ms()).then_some(idx),
            _ => None,
        }
    }

    /// Registers a socket found on `s.fd` on first use, unless another thread registered it
    /// first (then that record is returned). `None` if the fd changed meanwhile.
    pub fn adopt(&self, s: &NewSocket) -> Option<u32> {
        let idx = self.records.open(s);
        if self.fds.replace(s.fd, FdState::Unknown, FdState::Record(idx)) {
            return Some(idx);
        }
        self.records.discard(idx);
        match self.fds.get(s.fd) {
            FdState::Record(i) => Some(i),
            _ => None,
        }
    }

    /// `newfd` now refers to the same file as `oldfd` (dup family). Whatever `newfd` was
    /// before must have been closed by the caller already (see [`Registry::close`]); a socket the
    /// table still held on `newfd` was closed behind the shim and is closed now
    /// ([`Registry::claim`], whose result this returns).
    pub fn dup(&self, oldfd: i32, newfd: i32, now_ms: impl FnOnce() -> u64) -> Option<u32> {
        let st = self.fds.get(oldfd);
        if let FdState::Record(idx) = st {
            self.records.get(idx).add_ref();
        }
        self.claim(newfd, st, now_ms)
    }

    /// `fd` was closed, having been `was` before the close. Returns the record index when that
    /// was the socket's last fd. If the number was already handed out again (another thread's
    /// hooked call claimed it first), that call closed the socket ([`Registry::claim`]).
    #[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
    pub fn close(&self, fd: i32, was: FdState, now_ms: u64) -> Option<u32> {
        if !self.fds.replace(fd, was, FdState::Unknown) {
            return None;
        }
        match was {
            FdState::Record(idx) if idx != OVERFLOW => self.records.get(idx).drop_ref(now_ms).then_some(idx),
            _ => None,
        }
    }
}

impl Default for Registry {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::ADDR_WORDS;
    use crate::model::{Dir, Family, Proto, Role};

    fn reg() -> &'static Registry {
        // Large: a static, as in the shim (never on the stack).
        static R: Registry = Registry::new();
        &R
    }

    pub(super) fn sock(fd: i32) -> NewSocket {
        NewSocket {
            fd,
            family: Family::Inet,
            proto: Proto::Tcp,
            role: Role::Unconnected,
            flags: 0,
            module: 1,
            via: 1,
            label: 0,
            local: [0; ADDR_WORDS],
            peer: [0; ADDR_WORDS],
            opened_ms: 5,
        }
    }

    #[test]
    fn open_count_dup_close() {
        let r = reg();
        let (idx, _) = r.open(&sock(7), || 1);
        assert_eq!(r.fds.get(7), FdState::Record(idx));
        r.records.get(idx).counters.count(Dir::Tx, 10, false);
        assert_eq!(r.dup(7, 9, || 1), None);
        r.records.get(idx).counters.count(Dir::Rx, 3, false);
        assert_eq!(r.close(7, FdState::Record(idx), 6), None, "one alias left");
        assert_eq!(r.close(9, FdState::Record(idx), 7), Some(idx));
        let rec = r.records.get(idx);
        assert_eq!(rec.state(), RecordState::Closed);
        let c = rec.counters.peek();
        assert_eq!((c.tx_bytes, c.rx_bytes, c.tx_calls, c.rx_calls), (10, 3, 1, 1));
        assert_eq!(rec.meta().closed_ms, 7);
        r.records.free(idx);
        assert_eq!(rec.state(), RecordState::Free);
    }

    #[test]
    fn freed_records_are_reused_lowest_first() {
        static OWN: Registry = Registry::new();
        let opened: Vec<u32> = (0..50).map(|fd| OWN.open(&sock(100 + fd), || 1).0).collect();
        // Close and free two in the middle, as the shipper does after its pass.
        for &i in &[opened[10], opened[20]] {
            let fd = OWN.records.get(i).meta().socket.fd;
            assert_eq!(OWN.close(fd, FdState::Record(i), 1), Some(i));
            OWN.records.free(i);
        }
        assert_eq!(OWN.open(&sock(200), || 1).0, opened[10], "the lowest free record first");
        assert_eq!(OWN.open(&sock(201), || 1).0, opened[20]);
        assert_eq!(OWN.records.high_water(), opened[49] + 1, "no new records touched");
    }

    #[test]
    fn close_loses_to_a_concurrent_reuse() {
        let r = reg();
        let (a, _) = r.open(&sock(20), || 1);
        // The number was closed and handed out again before the close hook ran: the new
        // socket's registration closes the old one, and the late close changes nothing.
        let (b, stale) = r.open(&sock(20), || 2);
        assert_eq!(stale, Some(a));
        assert_eq!(r.records.get(a).state(), RecordState::Closed);
        assert_eq!(r.close(20, FdState::Record(a), 3), None);
        assert_eq!(r.fds.get(20), FdState::Record(b));
        assert_eq!(r.records.get(b).state(), RecordState::Open);
        assert_eq!(r.records.get(a).meta().closed_ms, 2);
    }

    #[test]
    fn a_number_reused_after_a_close_behind_the_shim_closes_the_stale_socket() {
        let r = reg();
        let (a, _) = r.open(&sock(40), || 1);
        assert_eq!(r.dup(40, 41, || 1), None);
        // fd 41 was closed by a raw system call; a file (a hooked open) takes its number.
        assert_eq!(r.claim(41, FdState::NotSocket, || 5), None, "fd 40 still holds it");
        assert_eq!(r.fds.get(41), FdState::NotSocket);
        assert_eq!(r.records.get(a).state(), RecordState::Open);
        // fd 40 too, and a dup of a file takes that number: the socket is closed now.
        assert_eq!(r.dup(41, 40, || 6), Some(a));
        assert_eq!(r.fds.get(40), FdState::NotSocket);
        assert_eq!(r.records.get(a).state(), RecordState::Closed);
        assert_eq!(r.records.get(a).meta().closed_ms, 6);
        // Nothing stale: one swap, and the clock is not read.
        assert_eq!(r.claim(40, FdState::NotSocket, || unreachable!()), None);
    }

    #[test]
    fn a_dup_onto_a_stale_alias_of_the_same_socket_keeps_its_count() {
        let r = reg();
        let (a, _) = r.open(&sock(50), || 1);
        assert_eq!(r.dup(50, 51, || 1), None);
        // 51 closed behind the shim, then dup(50) hands out 51 again: still two fds.
        assert_eq!(r.dup(50, 51, || 2), None);
        assert_eq!(r.close(50, FdState::Record(a), 3), None, "51 still holds it");
        assert_eq!(r.close(51, FdState::Record(a), 4), Some(a));
    }

    #[test]
    fn peers_are_counted_separately_up_to_the_limit() {
        let r = reg();
        let (idx, _) = r.open(&sock(30), || 1);
        let peers = r.records.peers(idx);
        for p in 0..(MAX_PEERS as u64 + 2) {
            let a = [1, p, 0, 0, 0];
            peers.count(&a, Dir::Tx, 100 + p, false);
            peers.count(&a, Dir::Tx, 1, false);
        }
        let kept: Vec<_> = peers
            .iter()
            .filter_map(|p| p.addr().map(|a| (a[1], p.counters.peek().tx_bytes)))
            .collect();
        assert_eq!(kept.len(), MAX_PEERS);
        assert_eq!(kept[0], (0, 101));
    }

    #[test]
    fn out_of_range_fds_are_ignored() {
        let r = reg();
        assert_eq!(r.fds.get(-1), FdState::Ignored);
        assert_eq!(r.fds.get(MAX_FDS as i32), FdState::Ignored);
        r.fds.set(MAX_FDS as i32, FdState::NotSocket);
        assert_eq!(
            r.fds.get(MAX_FDS as i32),
            FdState::Ignored,
            "an out-of-range set is dropped"
        );
    }
}

#[cfg(test)]
mod copy_tests {
    use super::*;
    use crate::addr::ADDR_WORDS;
    use crate::model::{Dir, Family, Proto, Role};

    static A: Registry = Registry::new();
    static B: Registry = Registry::new();

    #[test]
    fn a_copy_has_the_same_sockets_and_fds() {
        let s = NewSocket {
            fd: 9,
            family: Family::Inet,
            proto: Proto::Tcp,
            role: Role::Accepted,
            flags: 0,
            module: 1,
            via: 0,
            label: 0,
            local: [0; ADDR_WORDS],
            peer: [0; ADDR_WORDS],
            opened_ms: 1,
        };
        let (idx, _) = A.open(&s, || 1);
        A.records.get(idx).counters.count(Dir::Tx, 5, false);
        B.copy_from(&A);
        assert_eq!(B.fds.get(9), FdState::Record(idx));
        assert_eq!(B.records.get(idx).role(), Role::Accepted);
        assert_eq!(B.records.get(idx).counters.peek().tx_bytes, 5);
        B.records.reset_after_fork();
        assert_eq!(B.records.get(idx).counters.peek().tx_bytes, 0);
        assert_eq!(B.records.get(idx).state(), RecordState::Open);
        assert_eq!(
            A.records.get(idx).counters.peek().tx_bytes,
            5,
            "the original is untouched"
        );
    }

    static C: Registry = Registry::new();
    static D: Registry = Registry::new();

    /// Copied again after the source changed (the parent's snapshot at its next fork), the copy
    /// is the source again: what the source freed or forgot is gone from the copy too, though
    /// only what differs is written.
    #[test]
    fn a_copy_made_again_follows_the_source() {
        use super::tests::sock;
        let (a, _) = C.open(&sock(40), || 1);
        let (b, _) = C.open(&sock(7), || 1);
        C.fds.set(3, FdState::NotSocket);
        D.copy_from(&C);
        assert_eq!(
            (D.fds.get(40), D.fds.get(7), D.fds.get(3)),
            (FdState::Record(a), FdState::Record(b), FdState::NotSocket)
        );
        // The source closes and frees both, forgets fd 3, and opens another socket on fd 5.
        for (fd, idx) in [(40, a), (7, b)] {
            C.fds.set(fd, FdState::Unknown);
            C.records
                .get(idx)
                .state
                .store(records::REC_CLOSED, std::sync::atomic::Ordering::Release);
            C.records.free(idx);
        }
        C.fds.set(3, FdState::Unknown);
        let (c, _) = C.open(&sock(5), || 2);
        D.copy_from(&C);
        for fd in [40, 7, 3] {
            assert_eq!(D.fds.get(fd), FdState::Unknown, "fd {fd}");
        }
        assert_eq!(D.fds.get(5), FdState::Record(c));
        assert_eq!(D.records.high_water(), C.records.high_water());
        for idx in 1..D.records.high_water().max(3) {
            assert_eq!(D.records.get(idx).state(), C.records.get(idx).state(), "record {idx}");
        }
        assert_eq!(D.records.get(c).id(), C.records.get(c).id());
    }

    static E: Registry = Registry::new();
    static F: Registry = Registry::new();

    #[test]
    fn a_copy_forgetting_fds_says_unknown_for_them_and_keeps_the_rest() {
        use super::tests::sock;
        let (a, _) = E.open(&sock(9), || 1);
        E.fds.set(230, FdState::Ignored);
        E.fds.set(231, FdState::Ignored);
        E.fds.set(232, FdState::Ignored);
        for _ in 0..2 {
            F.copy_forgetting(&E, &[230, 231, -1]);
            assert_eq!(
                (F.fds.get(9), F.fds.get(230), F.fds.get(231), F.fds.get(232)),
                (FdState::Record(a), FdState::Unknown, FdState::Unknown, FdState::Ignored)
            );
        }
        F.copy_from(&E);
        assert_eq!((F.fds.get(230), F.fds.get(231)), (FdState::Ignored, FdState::Ignored));
    }
}
