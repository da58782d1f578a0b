//! Socket records: one socket's metadata and counters, and the fixed table of them with its
//! claim / close / free life cycle.

use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, Ordering::*};

use crate::keep::Keep;

use super::counters::{keep_words, load_words, store_words, Counters, Peers};
use super::{MAX_RECORDS, OVERFLOW};
use crate::addr::ADDR_WORDS;
use crate::model::{Family, Proto, Role};

pub(super) const REC_FREE: u32 = 0;
pub(super) const REC_OPENING: u32 = 1;
pub(super) const REC_OPEN: u32 = 2;
pub(super) const REC_CLOSED: u32 = 3;

/// Where a record is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordState {
    /// Unused.
    Free,
    /// Being filled in by the hook that claimed it.
    Opening,
    /// In use by at least one fd.
    Open,
    /// Every fd closed; waiting for the reporting thread.
    Closed,
}

/// Flag bit: the socket existed before this process image (inherited, or from before fork).
pub const FLAG_INHERITED: u32 = 1;
/// Flag bit: the socket was recognised on first use, not seen being created.
pub const FLAG_ADOPTED: u32 = 2;
/// Flag bit: the program shut down its sending side (`shutdown(SHUT_WR)` or `SHUT_RDWR`); the
/// kernel witness needs it to read a TCP socket in `CLOSE` (see `crate::witness`).
pub const FLAG_SHUT_WR: u32 = 4;
/// Flag bit: no kernel witness for this socket in this process image (it could not be read, or
/// the kernel counts TLS records, not the program's bytes).
pub const FLAG_NO_WITNESS: u32 = 8;
/// Flag bit: [`Record::witness`] holds the kernel's numbers.
pub const FLAG_WITNESSED: u32 = 16;
/// Flag bit: the program made the socket with CoreFoundation's CFSocket (or a CFSocket listener
/// accepted it): its origin is `cfsocket`.
pub const FLAG_CFSOCKET: u32 = 32;
/// Flag bit: the socket was open in another process too (it was open across a fork, in the
/// parent or in the child): the kernel's counts are every holder's together, so the reporter
/// weighs this process's witness against the other holders' (`crate::holders`).
pub const FLAG_SHARED: u32 = 64;
/// Flag bit, set in a parent before a fork: a child that inherits the socket reads its own
/// witness base (the kernel's counts at the fork) and clears it. Never shipped.
pub const FLAG_REBASE: u32 = 128;

/// One socket's accounting.
pub struct Record {
    pub(super) state: AtomicU32,
    pub(super) refs: AtomicU32,
    pub(super) id: AtomicU64,
    pub(super) kind: AtomicU32,
    pub(super) flags: AtomicU32,
    pub(super) meta_gen: AtomicU32,
    pub(super) module: AtomicU32,
    pub(super) via: AtomicU32,
    pub(super) label: AtomicU32,
    pub(super) fd: AtomicI32,
    pub(super) opened_ms: AtomicU64,
    pub(super) closed_ms: AtomicU64,
    pub(super) local: [AtomicU64; ADDR_WORDS],
    pub(super) peer: [AtomicU64; ADDR_WORDS],
    /// All of this socket's traffic.
    pub counters: Counters,
    /// The kernel witness (TCP): what the kernel said the program had written and read when
    /// counting began in this image (0 for a socket seen being created), ...
    pub(super) base: [AtomicU64; 2],
    /// ... what it said at the last reading (close, exit, exec), less `base` ...
    pub(super) witness: [AtomicU64; 2],
    /// ... and the bytes the reader has taken from `counters` so far (a lower bound of what
    /// the hooks counted, for the close path to skip a system call when the numbers agree) ...
    pub(super) taken: [AtomicU64; 2],
    /// ... and the direction words as it took them.
    pub(super) taken_words: [AtomicU64; 2],
}

/// A consistent-enough copy of a record's metadata, for the reporting thread: the socket as it
/// is now (role, addresses and attribution may have changed since it was opened), its id, its
/// close time and the metadata generation.
#[derive(Clone, Copy, Debug)]
pub struct RecordMeta {
    /// Process-unique socket id.
    pub id: u64,
    /// The socket's description (`opened_ms` is its open time).
    pub socket: NewSocket,
    /// Close time, ms since the epoch; 0 while open.
    pub closed_ms: u64,
    /// Bumped on every metadata change.
    pub generation: u32,
    /// The kernel witness's (written, read) bytes, once read (TCP only).
    pub witness: Option<[u64; 2]>,
    /// The kernel's (written, read) when this process image began counting the socket (zero
    /// for one it made; see [`Record::witness_base`]).
    pub witness_base: [u64; 2],
}

/// What a hook knows about a socket it is about to register.
#[derive(Clone, Copy, Debug)]
pub struct NewSocket {
    /// The fd.
    pub fd: i32,
    /// Family.
    pub family: Family,
    /// Protocol.
    pub proto: Proto,
    /// Initial role.
    pub role: Role,
    /// `FLAG_*` bits.
    pub flags: u32,
    /// Module id.
    pub module: u32,
    /// Immediate caller id.
    pub via: u32,
    /// Label id.
    pub label: u32,
    /// Encoded local address (zeros if unknown).
    pub local: [u64; ADDR_WORDS],
    /// Encoded peer address (zeros if unknown).
    pub peer: [u64; ADDR_WORDS],
    /// Open time, ms since the epoch.
    pub opened_ms: u64,
}

pub(super) fn pack_kind(f: Family, p: Proto, r: Role) -> u32 {
    u32::from(f.code()) | u32::from(p.code()) << 8 | u32::from(r.code()) << 16
}

impl Record {
    pub(super) const fn new() -> Self {
        Record {
            state: AtomicU32::new(REC_FREE),
            refs: AtomicU32::new(0),
            id: AtomicU64::new(0),
            kind: AtomicU32::new(0),
            flags: AtomicU32::new(0),
            meta_gen: AtomicU32::new(0),
            module: AtomicU32::new(0),
            via: AtomicU32::new(0),
            label: AtomicU32::new(0),
            fd: AtomicI32::new(0),
            opened_ms: AtomicU64::new(0),
            closed_ms: AtomicU64::new(0),
            local: [const { AtomicU64::new(0) }; ADDR_WORDS],
            peer: [const { AtomicU64::new(0) }; ADDR_WORDS],
            counters: Counters::new(),
            base: [const { AtomicU64::new(0) }; 2],
            witness: [const { AtomicU64::new(0) }; 2],
            taken: [const { AtomicU64::new(0) }; 2],
            taken_words: [const { AtomicU64::new(0) }; 2],
        }
    }

    /// Where the record is in its life.
    #[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
    pub fn state(&self) -> RecordState {
        match self.state.load(Acquire) {
            REC_OPENING => RecordState::Opening,
            REC_OPEN => RecordState::Open,
            REC_CLOSED => RecordState::Closed,
            _ => RecordState::Free,
        }
    }

    /// The role.
    #[inline]
    pub fn role(&self) -> Role {
        Role::from_code((self.kind.load(Relaxed) >> 16) as u8)
    }

    /// The family.
    #[inline]
    pub fn family(&self) -> Family {
        Family::from_code(self.kind.load(Relaxed) as u8)
    }

    /// The socket's id (a reused record gets a new one).
    #[inline]
    pub fn id(&self) -> u64 {
        self.id.load(Acquire)
    }

    /// The metadata generation: it moves whenever what a reader announces changes (role,
    /// addresses, attribution, flags that are shipped, the kernel witness).
    #[inline]
    pub fn generation(&self) -> u32 {
        self.meta_gen.load(Acquire)
    }

    /// The protocol.
    #[inline]
    pub fn proto(&self) -> Proto {
        Proto::from_code((self.kind.load(Relaxed) >> 8) as u8)
    }

    pub(super) fn bump(&self) {
        self.meta_gen.fetch_add(1, Release);
    }

    /// Sets the role.
    #[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
    pub fn set_role(&self, role: Role) {
        let k = self.kind.load(Relaxed);
        self.kind
            .store((k & !0xff_0000) | u32::from(role.code()) << 16, Relaxed);
        self.bump();
    }

    /// Sets the local address.
    #[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
    pub fn set_local(&self, w: &[u64; ADDR_WORDS]) {
        store_words(&self.local, w);
        self.bump();
    }

    /// Sets the peer address.
    #[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
    pub fn set_peer(&self, w: &[u64; ADDR_WORDS]) {
        store_words(&self.peer, w);
        self.bump();
    }

    /// Re-attributes the socket (connect and accept attribute again).
    #[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
    pub fn set_module(&self, module: u32, via: u32, label: u32) {
        self.module.store(module, Relaxed);
        self.via.store(via, Relaxed);
        self.label.store(label, Relaxed);
        self.bump();
    }

    /// How many of this process's fds refer to the socket (1: the next close releases it).
    #[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
    pub fn refs(&self) -> u32 {
        self.refs.load(Acquire)
    }

    /// Adds an fd alias (dup).
    #[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
    pub fn add_ref(&self) {
        self.refs.fetch_add(1, AcqRel);
    }

    /// Drops one fd alias; when it was the last, marks the record closed at `now_ms` and
    /// returns true.
    #[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
    pub fn drop_ref(&self, now_ms: u64) -> bool {
        let prev = self.refs.fetch_sub(1, AcqRel);
        if prev == 1 {
            self.closed_ms.store(now_ms, Relaxed);
            self.state.store(REC_CLOSED, Release);
            true
        } else {
            if prev == 0 {
                // Not ours to close (overflow, or a race with a reset): undo.
                self.refs.fetch_add(1, AcqRel);
            }
            false
        }
    }

    /// Whether flag bit `f` (`FLAG_*`) is set.
    #[inline]
    #[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
    pub fn has_flag(&self, f: u32) -> bool {
        self.flags.load(Acquire) & f != 0
    }

    /// Sets flag bit `f`.
    #[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
    pub fn set_flag(&self, f: u32) {
        self.flags.fetch_or(f, AcqRel);
    }

    /// Clears flag bit `f`.
    pub fn clear_flag(&self, f: u32) {
        self.flags.fetch_and(!f, AcqRel);
    }

    /// The kernel witness's (written, read) when counting began (see the field).
    #[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
    pub fn witness_base(&self) -> [u64; 2] {
        [self.base[0].load(Acquire), self.base[1].load(Acquire)]
    }

    /// Sets the kernel witness's starting point.
    #[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
    pub fn set_witness_base(&self, base: [u64; 2]) {
        self.base[0].store(base[0], Release);
        self.base[1].store(base[1], Release);
    }

    /// Records the kernel witness's (written, read) since the base; the next pass announces
    /// the socket with them.
    #[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
    pub fn set_witness(&self, w: [u64; 2]) {
        self.witness[0].store(w[0], Relaxed);
        self.witness[1].store(w[1], Relaxed);
        self.flags.fetch_or(FLAG_WITNESSED, AcqRel);
        self.bump();
    }

    /// The kernel witness's (written, read) since the base, once read.
    pub fn witness(&self) -> Option<[u64; 2]> {
        self.has_flag(FLAG_WITNESSED)
            .then(|| [self.witness[0].load(Relaxed), self.witness[1].load(Relaxed)])
    }

    /// The reader took `tx`/`rx` bytes from the counters, leaving them at `last` (see
    /// [`Record::seen_at_least`]): the words first, then the bytes, so that a reader of both in
    /// the other order can miss a take, never count one twice.
    #[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
    pub fn note_taken(&self, last: &super::counters::Taken, tx: u64, rx: u64) {
        let w = last.direction_words();
        self.taken_words[0].store(w[0], Release);
        self.taken_words[1].store(w[1], Release);
        if tx > 0 {
            self.taken[0].fetch_add(tx, Release);
        }
        if rx > 0 {
            self.taken[1].fetch_add(rx, Release);
        }
    }

    /// A lower bound of the (tx, rx) bytes the hooks have counted on this socket in this image:
    /// what the reader took, plus what was counted since its last take.
    #[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
    pub fn seen_at_least(&self) -> [u64; 2] {
        let taken = [self.taken[0].load(Acquire), self.taken[1].load(Acquire)];
        let words = [self.taken_words[0].load(Acquire), self.taken_words[1].load(Acquire)];
        let since = self.counters.bytes_since(words);
        [taken[0] + since[0], taken[1] + since[1]]
    }

    /// Forgets the kernel witness (a forked child starts its own).
    #[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
    pub(super) fn reset_witness(&self) {
        for a in self
            .base
            .iter()
            .chain(&self.witness)
            .chain(&self.taken)
            .chain(&self.taken_words)
        {
            a.store(0, Relaxed);
        }
        self.flags.fetch_and(!FLAG_WITNESSED, AcqRel);
    }

    /// A copy of the metadata.
    #[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
    pub fn meta(&self) -> RecordMeta {
        let kind = self.kind.load(Relaxed);
        RecordMeta {
            id: self.id.load(Acquire),
            socket: NewSocket {
                fd: self.fd.load(Relaxed),
                family: Family::from_code(kind as u8),
                proto: Proto::from_code((kind >> 8) as u8),
                role: Role::from_code((kind >> 16) as u8),
                flags: self.flags.load(Relaxed),
                module: self.module.load(Relaxed),
                via: self.via.load(Relaxed),
                label: self.label.load(Relaxed),
                local: load_words(&self.local),
                peer: load_words(&self.peer),
                opened_ms: self.opened_ms.load(Relaxed),
            },
            closed_ms: self.closed_ms.load(Relaxed),
            generation: self.meta_gen.load(Acquire),
            witness: self.witness(),
            witness_base: self.witness_base(),
        }
    }

    #[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
    pub(super) fn copy_from(&self, o: &Record) {
        self.refs.keep(o.refs.load(Relaxed), Relaxed);
        self.id.keep(o.id.load(Relaxed), Relaxed);
        self.kind.keep(o.kind.load(Relaxed), Relaxed);
        self.flags.keep(o.flags.load(Relaxed), Relaxed);
        self.meta_gen.keep(o.meta_gen.load(Relaxed), Relaxed);
        self.module.keep(o.module.load(Relaxed), Relaxed);
        self.via.keep(o.via.load(Relaxed), Relaxed);
        self.label.keep(o.label.load(Relaxed), Relaxed);
        self.fd.keep(o.fd.load(Relaxed), Relaxed);
        self.opened_ms.keep(o.opened_ms.load(Relaxed), Relaxed);
        self.closed_ms.keep(o.closed_ms.load(Relaxed), Relaxed);
        keep_words(&self.local, &load_words(&o.local));
        keep_words(&self.peer, &load_words(&o.peer));
        self.counters.copy_from(&o.counters);
        for (d, s) in [
            (&self.base, &o.base),
            (&self.witness, &o.witness),
            (&self.taken, &o.taken),
            (&self.taken_words, &o.taken_words),
        ] {
            d[0].keep(s[0].load(Relaxed), Relaxed);
            d[1].keep(s[1].load(Relaxed), Relaxed);
        }
        self.state.keep(o.state.load(Acquire), Release);
    }

    pub(super) fn fill(&self, id: u64, s: &NewSocket) {
        self.id.store(id, Relaxed);
        self.refs.store(1, Relaxed);
        self.kind.store(pack_kind(s.family, s.proto, s.role), Relaxed);
        self.flags.store(s.flags, Relaxed);
        self.module.store(s.module, Relaxed);
        self.via.store(s.via, Relaxed);
        self.label.store(s.label, Relaxed);
        self.fd.store(s.fd, Relaxed);
        self.opened_ms.store(s.opened_ms, Relaxed);
        self.closed_ms.store(0, Relaxed);
        store_words(&self.local, &s.local);
        store_words(&self.peer, &s.peer);
        self.counters.reset();
        self.reset_witness();
        self.meta_gen.fetch_add(1, Relaxed);
    }
}

/// The table of socket records (`repr(C)`, scalars first: see [`super::fds::FdTable`]).
#[repr(C)]
pub struct Records {
    pub(super) next_id: AtomicU64,
    /// Connections opened on the overflow record (the registry was full) since the last take.
    overflow_conns: AtomicU64,
    pub(super) cursor: AtomicU32,
    pub(super) high_water: AtomicU32,
    pub(super) recs: [Record; MAX_RECORDS],
    pub(super) peers: [Peers; MAX_RECORDS],
}

impl Records {
    /// An empty table.
    pub const fn new() -> Self {
        Records {
            recs: [const { Record::new() }; MAX_RECORDS],
            peers: [const { Peers::new() }; MAX_RECORDS],
            // All zeros, so a `static Registry` lives in .bss: untouched pages are not part of
            // the shared object's file and never count in the host's memory.
            cursor: AtomicU32::new(0),
            high_water: AtomicU32::new(0),
            next_id: AtomicU64::new(0),
            overflow_conns: AtomicU64::new(0),
        }
    }

    /// One more connection (connected or accepted) on the overflow record: its bytes go to
    /// that shared record, but it still counts as a connection.
    pub fn count_overflow_connection(&self) {
        self.overflow_conns.fetch_add(1, Relaxed);
    }

    /// Takes the connections counted on the overflow record since the last take.
    pub fn take_overflow_connections(&self) -> u64 {
        self.overflow_conns.swap(0, AcqRel)
    }

    /// The record at `idx` (the overflow record for an out-of-range index).
    #[inline]
    pub fn get(&self, idx: u32) -> &Record {
        self.recs.get(idx as usize).unwrap_or(&self.recs[OVERFLOW as usize])
    }

    /// The per-peer counters of record `idx`.
    #[inline]
    pub fn peers(&self, idx: u32) -> &Peers {
        self.peers.get(idx as usize).unwrap_or(&self.peers[OVERFLOW as usize])
    }

    /// One past the highest record index ever used: scans stop here.
    #[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
    pub fn high_water(&self) -> u32 {
        self.high_water.load(Acquire)
    }

    /// Claims a free record for a new socket and returns its index, or [`OVERFLOW`] when the
    /// table is full (the overflow record is opened on first use).
    #[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
    pub fn open(&self, s: &NewSocket) -> u32 {
        let n = MAX_RECORDS as u32 - 1;
        let start = self.cursor.load(Relaxed).max(1);
        for k in 0..n {
            let idx = 1 + (start.wrapping_sub(1).wrapping_add(k)) % n;
            let r = &self.recs[idx as usize];
            if r.state.load(Relaxed) != REC_FREE {
                continue;
            }
            if r.state
                .compare_exchange(REC_FREE, REC_OPENING, Acquire, Relaxed)
                .is_err()
            {
                continue;
            }
            let id = self.next_id.fetch_add(1, Relaxed) + 1;
            r.fill(id, s);
            self.peers[idx as usize].reset();
            r.state.store(REC_OPEN, Release);
            self.cursor.store(idx % n + 1, Relaxed);
            self.high_water.fetch_max(idx + 1, AcqRel);
            return idx;
        }
        self.open_overflow(s.opened_ms);
        OVERFLOW
    }

    pub(super) fn open_overflow(&self, now_ms: u64) {
        let r = &self.recs[OVERFLOW as usize];
        if r.state
            .compare_exchange(REC_FREE, REC_OPENING, Acquire, Relaxed)
            .is_ok()
        {
            let s = NewSocket {
                fd: -1,
                family: Family::Other,
                proto: Proto::Other,
                role: Role::Overflow,
                flags: 0,
                module: 0,
                via: 0,
                label: 0,
                local: [0; ADDR_WORDS],
                peer: [0; ADDR_WORDS],
                opened_ms: now_ms,
            };
            r.fill(0, &s);
            r.refs.store(0, Relaxed);
            r.state.store(REC_OPEN, Release);
            self.high_water.fetch_max(1, AcqRel);
        }
    }

    /// Returns a record that was opened but never published (a lost race to adopt an fd).
    pub fn discard(&self, idx: u32) {
        if idx != OVERFLOW {
            self.get(idx).state.store(REC_FREE, Release);
        }
    }

    /// Makes these records a copy of `other`'s (see [`Registry::copy_from`]): every record
    /// used in either is copied or freed, writing only what differs.
    #[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
    pub fn copy_from(&self, other: &Records) {
        let hw = other.high_water();
        for idx in 0..hw.max(self.high_water()) as usize {
            let (d, s) = (&self.recs[idx], &other.recs[idx]);
            if idx >= hw as usize || s.state.load(Acquire) == REC_FREE {
                d.state.keep(REC_FREE, Release);
                continue;
            }
            d.copy_from(s);
            self.peers[idx].copy_from(&other.peers[idx]);
        }
        self.cursor.keep(other.cursor.load(Relaxed), Relaxed);
        let next = self.next_id.load(Relaxed).max(other.next_id.load(Relaxed));
        self.next_id.keep(next, Relaxed);
        self.overflow_conns.keep(other.overflow_conns.load(Acquire), Relaxed);
        self.high_water.keep(hw, Release);
    }

    /// Frees a closed record after its final delta was shipped.
    #[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
    pub fn free(&self, idx: u32) {
        if idx == OVERFLOW {
            return;
        }
        let r = self.get(idx);
        if r.state.compare_exchange(REC_CLOSED, REC_FREE, AcqRel, Relaxed).is_ok() {
            // The next open starts looking here: records are reused lowest first, so a process
            // that churns through short connections keeps a few hot records (and the shipper
            // scans up to a low high-water mark) instead of walking all of them round-robin.
            self.cursor.fetch_min(idx.max(1), Relaxed);
        }
    }

    /// In a forked child: every open socket starts again from zero (the child is a new process
    /// with its own counters) and is marked inherited; closed records the parent had not yet
    /// reported are dropped (they are the parent's to report). Returns how many sockets the
    /// child inherited open.
    #[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
    pub fn reset_after_fork(&self) -> u32 {
        self.overflow_conns.keep(0, Relaxed);
        let mut open = 0;
        for idx in 0..self.high_water() {
            let r = &self.recs[idx as usize];
            match r.state.load(Acquire) {
                REC_OPEN => {
                    open += 1;
                    r.counters.reset();
                    r.reset_witness();
                    self.peers[idx as usize].zero();
                    r.flags.fetch_or(FLAG_INHERITED, Relaxed);
                    r.bump();
                }
                REC_CLOSED | REC_OPENING => r.state.store(REC_FREE, Release),
                _ => {}
            }
        }
        open
    }
}

impl Default for Records {
    fn default() -> Self {
        Self::new()
    }
}
