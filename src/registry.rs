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

use crate::addr::ADDR_WORDS;
use crate::model::{Dir, Family, Proto, Role};
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, Ordering::*};

/// fds at or above this number are not metered (the fd table would grow too large).
pub const MAX_FDS: usize = 1 << 20;
/// How many sockets can be open (or closed but not yet reported) at once.
pub const MAX_RECORDS: usize = 1 << 15;
/// Per-peer counters kept for an unconnected datagram socket; more peers share "other".
pub const MAX_PEERS: usize = 4;
/// The overflow pseudo-socket's record index.
pub const OVERFLOW: u32 = 0;

const FD_UNKNOWN: u32 = 0;
const FD_NOT_SOCKET: u32 = 1;
const FD_IGNORED: u32 = 2;
const FD_RECORD_BASE: u32 = 3;

/// What the fd table knows about one fd.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FdState {
    /// Never seen, or closed since: classify on first use.
    Unknown,
    /// A file, pipe, tty, ...: never counted.
    NotSocket,
    /// A socket we do not count (sockmeter's own, or an unmetered family), or an fd out of range.
    Ignored,
    /// A metered socket: the index of its record.
    Record(u32),
}

impl FdState {
    const fn to_raw(self) -> u32 {
        match self {
            FdState::Unknown => FD_UNKNOWN,
            FdState::NotSocket => FD_NOT_SOCKET,
            FdState::Ignored => FD_IGNORED,
            FdState::Record(i) => FD_RECORD_BASE + i,
        }
    }
    const fn from_raw(v: u32) -> Self {
        match v {
            FD_UNKNOWN => FdState::Unknown,
            FD_NOT_SOCKET => FdState::NotSocket,
            FD_IGNORED => FdState::Ignored,
            n => FdState::Record(n - FD_RECORD_BASE),
        }
    }
}

/// fd number → [`FdState`].
pub struct FdTable {
    slots: [AtomicU32; MAX_FDS],
    /// One past the highest fd ever set to something other than unknown.
    top: AtomicU32,
}

impl FdTable {
    /// An empty table (everything unknown).
    pub const fn new() -> Self {
        FdTable {
            slots: [const { AtomicU32::new(0) }; MAX_FDS],
            top: AtomicU32::new(0),
        }
    }

    fn slot(&self, fd: i32) -> Option<&AtomicU32> {
        usize::try_from(fd).ok().and_then(|i| self.slots.get(i))
    }

    /// What is known about `fd`; out-of-range fds are [`FdState::Ignored`].
    #[inline]
    pub fn get(&self, fd: i32) -> FdState {
        match self.slot(fd) {
            Some(s) => FdState::from_raw(s.load(Acquire)),
            None => FdState::Ignored,
        }
    }

    /// Records what `fd` is.
    #[inline]
    pub fn set(&self, fd: i32, st: FdState) {
        if let Some(s) = self.slot(fd) {
            s.store(st.to_raw(), Release);
            self.raise_top(fd);
        }
    }

    fn raise_top(&self, fd: i32) {
        let t = fd as u32 + 1;
        if self.top.load(Relaxed) < t {
            self.top.fetch_max(t, Relaxed);
        }
    }

    /// Copies every entry of `other` (a forked child's fresh table starts with its parent's).
    pub fn copy_from(&self, other: &FdTable) {
        let top = (other.top.load(Acquire) as usize).min(MAX_FDS);
        for (d, s) in self.slots[..top].iter().zip(&other.slots[..top]) {
            let v = s.load(Relaxed);
            if v != FD_UNKNOWN || d.load(Relaxed) != FD_UNKNOWN {
                d.store(v, Relaxed);
            }
        }
        self.top.fetch_max(top as u32, Release);
    }

    /// Sets `fd` to `new` only if it still is `old` (a concurrent reuse of the number wins).
    pub fn replace(&self, fd: i32, old: FdState, new: FdState) -> bool {
        let done = self
            .slot(fd)
            .map(|s| s.compare_exchange(old.to_raw(), new.to_raw(), AcqRel, Acquire).is_ok())
            .unwrap_or(false);
        if done {
            self.raise_top(fd);
        }
        done
    }

    /// Forgets every fd (in tests).
    pub fn clear(&self) {
        for s in &self.slots {
            if s.load(Relaxed) != FD_UNKNOWN {
                s.store(FD_UNKNOWN, Relaxed);
            }
        }
    }

    /// Calls `f` for every fd in `first..=last` that maps to a record (bounded by the table).
    pub fn for_each_record_in(&self, first: u32, last: u32, mut f: impl FnMut(i32, u32)) {
        let end = (last as usize).min(MAX_FDS - 1);
        for fd in first as usize..=end {
            if let FdState::Record(i) = FdState::from_raw(self.slots[fd].load(Acquire)) {
                f(fd as i32, i);
            }
        }
    }
}

impl Default for FdTable {
    fn default() -> Self {
        Self::new()
    }
}

/// Traffic counters: one word per direction, so counting a call is one atomic add.
///
/// Each direction's word packs the calls (high [`CALL_BITS`] bits) and the bytes (low
/// [`BYTE_BITS`] bits). The one reader (the shipper, or the reporting thread) takes the words
/// with an atomic swap every tick: what it takes it ships, and an add that lands after the
/// swap is part of the next take, so nothing is lost at a boundary. Between two takes (at most
/// 100 ms apart while a reader runs) a direction can hold 2^40 bytes (1 TiB) and 2^24 calls.
#[derive(Default)]
pub struct Counters {
    tx: AtomicU64,
    rx: AtomicU64,
    errors: AtomicU64,
}

/// Bits of a direction word that count bytes.
pub const BYTE_BITS: u32 = 40;
/// Bits of a direction word that count calls.
pub const CALL_BITS: u32 = 64 - BYTE_BITS;
const ONE_CALL: u64 = 1 << BYTE_BITS;
const BYTE_MASK: u64 = ONE_CALL - 1;

/// A plain copy of [`Counters`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CounterValues {
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Send-side calls.
    pub tx_calls: u64,
    /// Receive-side calls.
    pub rx_calls: u64,
    /// Failed calls.
    pub errors: u64,
}

impl CounterValues {
    /// True when nothing happened.
    pub fn is_zero(&self) -> bool {
        *self == CounterValues::default()
    }

    fn from_words(tx: u64, rx: u64, errors: u64) -> Self {
        CounterValues {
            tx_bytes: tx & BYTE_MASK,
            rx_bytes: rx & BYTE_MASK,
            tx_calls: tx >> BYTE_BITS,
            rx_calls: rx >> BYTE_BITS,
            errors,
        }
    }
}

impl Counters {
    const fn new() -> Self {
        Counters {
            tx: AtomicU64::new(0),
            rx: AtomicU64::new(0),
            errors: AtomicU64::new(0),
        }
    }

    /// Counts one call: `bytes` moved (0 for a failure or a peek), `failed` for a real error.
    #[inline]
    pub fn count(&self, dir: Dir, bytes: u64, failed: bool) {
        let w = match dir {
            Dir::Tx => &self.tx,
            Dir::Rx => &self.rx,
        };
        w.fetch_add(ONE_CALL | (bytes & BYTE_MASK), Relaxed);
        if failed {
            self.errors.fetch_add(1, Relaxed);
        }
    }

    /// Takes what was counted since the last take (see the type's docs). Only the one reader
    /// calls this.
    pub fn take(&self) -> CounterValues {
        let take = |w: &AtomicU64| if w.load(Relaxed) == 0 { 0 } else { w.swap(0, Relaxed) };
        CounterValues::from_words(take(&self.tx), take(&self.rx), take(&self.errors))
    }

    /// What was counted since the last take, without taking it (tests, diagnostics).
    pub fn peek(&self) -> CounterValues {
        CounterValues::from_words(self.tx.load(Relaxed), self.rx.load(Relaxed), self.errors.load(Relaxed))
    }

    fn copy_from(&self, o: &Counters) {
        self.tx.store(o.tx.load(Relaxed), Relaxed);
        self.rx.store(o.rx.load(Relaxed), Relaxed);
        self.errors.store(o.errors.load(Relaxed), Relaxed);
    }

    fn reset(&self) {
        for c in [&self.tx, &self.rx, &self.errors] {
            c.store(0, Relaxed);
        }
    }
}

/// Counters for one peer of a datagram socket.
pub struct PeerSlot {
    state: AtomicU32,
    addr: [AtomicU64; ADDR_WORDS],
    /// This peer's traffic.
    pub counters: Counters,
}

const PEER_FREE: u32 = 0;
const PEER_WRITING: u32 = 1;
const PEER_READY: u32 = 2;

impl PeerSlot {
    const fn new() -> Self {
        PeerSlot {
            state: AtomicU32::new(PEER_FREE),
            addr: [const { AtomicU64::new(0) }; ADDR_WORDS],
            counters: Counters::new(),
        }
    }
    /// The peer's encoded address, once the slot is in use.
    pub fn addr(&self) -> Option<[u64; ADDR_WORDS]> {
        (self.state.load(Acquire) == PEER_READY).then(|| load_words(&self.addr))
    }
}

const REC_FREE: u32 = 0;
const REC_OPENING: u32 = 1;
const REC_OPEN: u32 = 2;
const REC_CLOSED: u32 = 3;

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

/// One socket's accounting.
pub struct Record {
    state: AtomicU32,
    refs: AtomicU32,
    id: AtomicU64,
    kind: AtomicU32,
    flags: AtomicU32,
    meta_gen: AtomicU32,
    module: AtomicU32,
    via: AtomicU32,
    label: AtomicU32,
    fd: AtomicI32,
    opened_ms: AtomicU64,
    closed_ms: AtomicU64,
    local: [AtomicU64; ADDR_WORDS],
    peer: [AtomicU64; ADDR_WORDS],
    /// All of this socket's traffic.
    pub counters: Counters,
}

/// Per-peer counters of one datagram socket: the first [`MAX_PEERS`] peers it talks to. Kept
/// beside the records, not in them, so the pages of sockets that never use them (every TCP
/// socket) are never touched.
pub struct Peers {
    slots: [PeerSlot; MAX_PEERS],
}

impl Peers {
    const fn new() -> Self {
        Peers {
            slots: [const { PeerSlot::new() }; MAX_PEERS],
        }
    }

    /// The slots (a free slot has no address).
    pub fn iter(&self) -> impl Iterator<Item = &PeerSlot> {
        self.slots.iter()
    }

    /// Counts traffic to or from one peer. Peers beyond [`MAX_PEERS`] are only in the
    /// socket's own counters.
    pub fn count(&self, addr: &[u64; ADDR_WORDS], dir: Dir, bytes: u64, failed: bool) {
        for p in &self.slots {
            match p.state.load(Acquire) {
                PEER_READY if load_words(&p.addr) == *addr => {
                    p.counters.count(dir, bytes, failed);
                    return;
                }
                PEER_FREE
                    if p.state
                        .compare_exchange(PEER_FREE, PEER_WRITING, Acquire, Relaxed)
                        .is_ok() =>
                {
                    store_words(&p.addr, addr);
                    p.state.store(PEER_READY, Release);
                    p.counters.count(dir, bytes, failed);
                    return;
                }
                _ => {}
            }
        }
    }

    fn copy_from(&self, o: &Peers) {
        for (d, s) in self.slots.iter().zip(&o.slots) {
            let st = s.state.load(Acquire);
            if st == PEER_FREE && d.state.load(Relaxed) == PEER_FREE {
                continue;
            }
            store_words(&d.addr, &load_words(&s.addr));
            d.counters.copy_from(&s.counters);
            d.state.store(st, Release);
        }
    }

    /// Empties the slots, writing only to slots that were used (untouched pages stay so).
    fn reset(&self) {
        for p in &self.slots {
            if p.state.load(Relaxed) != PEER_FREE {
                p.state.store(PEER_FREE, Relaxed);
                p.counters.reset();
            }
        }
    }

    /// Zeroes the counters of used slots (a forked child starts from zero).
    fn zero(&self) {
        for p in &self.slots {
            if p.state.load(Relaxed) != PEER_FREE {
                p.counters.reset();
            }
        }
    }
}

fn load_words(w: &[AtomicU64; ADDR_WORDS]) -> [u64; ADDR_WORDS] {
    let mut out = [0u64; ADDR_WORDS];
    for (o, a) in out.iter_mut().zip(w) {
        *o = a.load(Relaxed);
    }
    out
}

fn store_words(w: &[AtomicU64; ADDR_WORDS], v: &[u64; ADDR_WORDS]) {
    for (a, x) in w.iter().zip(v) {
        a.store(*x, Relaxed);
    }
}

/// A consistent-enough copy of a record's metadata, for the reporting thread.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordMeta {
    /// Process-unique socket id.
    pub id: u64,
    /// First fd it was seen on.
    pub fd: i32,
    /// Address family.
    pub family: Family,
    /// Protocol.
    pub proto: Proto,
    /// Role.
    pub role: Role,
    /// `FLAG_*` bits.
    pub flags: u32,
    /// Module id (see the shim's module table); 0 = unknown.
    pub module: u32,
    /// Immediate caller's object id; 0 = unknown.
    pub via: u32,
    /// Label id; 0 = none.
    pub label: u32,
    /// Encoded local address.
    pub local: [u64; ADDR_WORDS],
    /// Encoded peer address.
    pub peer: [u64; ADDR_WORDS],
    /// Open time, ms since the epoch.
    pub opened_ms: u64,
    /// Close time, ms since the epoch; 0 while open.
    pub closed_ms: u64,
    /// Bumped on every metadata change.
    pub generation: u32,
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
    pub now_ms: u64,
}

fn pack_kind(f: Family, p: Proto, r: Role) -> u32 {
    u32::from(f.code()) | u32::from(p.code()) << 8 | u32::from(r.code()) << 16
}

impl Record {
    const fn new() -> Self {
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
        }
    }

    /// Where the record is in its life.
    pub fn state(&self) -> RecordState {
        match self.state.load(Acquire) {
            REC_OPENING => RecordState::Opening,
            REC_OPEN => RecordState::Open,
            REC_CLOSED => RecordState::Closed,
            _ => RecordState::Free,
        }
    }

    /// The process-unique id of the socket in this record.
    pub fn id(&self) -> u64 {
        self.id.load(Acquire)
    }

    /// The role.
    pub fn role(&self) -> Role {
        Role::from_code((self.kind.load(Relaxed) >> 16) as u8)
    }

    /// The family.
    pub fn family(&self) -> Family {
        Family::from_code(self.kind.load(Relaxed) as u8)
    }

    /// The protocol.
    pub fn proto(&self) -> Proto {
        Proto::from_code((self.kind.load(Relaxed) >> 8) as u8)
    }

    fn bump(&self) {
        self.meta_gen.fetch_add(1, Release);
    }

    /// Sets the role.
    pub fn set_role(&self, role: Role) {
        let k = self.kind.load(Relaxed);
        self.kind
            .store((k & !0xff_0000) | u32::from(role.code()) << 16, Relaxed);
        self.bump();
    }

    /// Sets the local address.
    pub fn set_local(&self, w: &[u64; ADDR_WORDS]) {
        store_words(&self.local, w);
        self.bump();
    }

    /// Sets the peer address.
    pub fn set_peer(&self, w: &[u64; ADDR_WORDS]) {
        store_words(&self.peer, w);
        self.bump();
    }

    /// Re-attributes the socket (connect and accept attribute again).
    pub fn set_module(&self, module: u32, via: u32, label: u32) {
        self.module.store(module, Relaxed);
        self.via.store(via, Relaxed);
        self.label.store(label, Relaxed);
        self.bump();
    }

    /// The module id the socket is charged to.
    pub fn module(&self) -> u32 {
        self.module.load(Relaxed)
    }

    /// The encoded peer address.
    pub fn peer(&self) -> [u64; ADDR_WORDS] {
        load_words(&self.peer)
    }

    /// Adds an fd alias (dup).
    pub fn add_ref(&self) {
        self.refs.fetch_add(1, AcqRel);
    }

    /// Drops one fd alias; when it was the last, marks the record closed at `now_ms` and
    /// returns true.
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

    /// A copy of the metadata.
    pub fn meta(&self) -> RecordMeta {
        let kind = self.kind.load(Relaxed);
        RecordMeta {
            id: self.id.load(Acquire),
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
            closed_ms: self.closed_ms.load(Relaxed),
            generation: self.meta_gen.load(Acquire),
        }
    }

    /// The metadata generation (bumped by every `set_*`).
    pub fn generation(&self) -> u32 {
        self.meta_gen.load(Acquire)
    }

    fn copy_from(&self, o: &Record) {
        self.refs.store(o.refs.load(Relaxed), Relaxed);
        self.id.store(o.id.load(Relaxed), Relaxed);
        self.kind.store(o.kind.load(Relaxed), Relaxed);
        self.flags.store(o.flags.load(Relaxed), Relaxed);
        self.meta_gen.store(o.meta_gen.load(Relaxed), Relaxed);
        self.module.store(o.module.load(Relaxed), Relaxed);
        self.via.store(o.via.load(Relaxed), Relaxed);
        self.label.store(o.label.load(Relaxed), Relaxed);
        self.fd.store(o.fd.load(Relaxed), Relaxed);
        self.opened_ms.store(o.opened_ms.load(Relaxed), Relaxed);
        self.closed_ms.store(o.closed_ms.load(Relaxed), Relaxed);
        store_words(&self.local, &load_words(&o.local));
        store_words(&self.peer, &load_words(&o.peer));
        self.counters.copy_from(&o.counters);
        self.state.store(o.state.load(Acquire), Release);
    }

    fn fill(&self, id: u64, s: &NewSocket) {
        self.id.store(id, Relaxed);
        self.refs.store(1, Relaxed);
        self.kind.store(pack_kind(s.family, s.proto, s.role), Relaxed);
        self.flags.store(s.flags, Relaxed);
        self.module.store(s.module, Relaxed);
        self.via.store(s.via, Relaxed);
        self.label.store(s.label, Relaxed);
        self.fd.store(s.fd, Relaxed);
        self.opened_ms.store(s.now_ms, Relaxed);
        self.closed_ms.store(0, Relaxed);
        store_words(&self.local, &s.local);
        store_words(&self.peer, &s.peer);
        self.counters.reset();
        self.meta_gen.fetch_add(1, Relaxed);
    }
}

/// The table of socket records.
pub struct Records {
    recs: [Record; MAX_RECORDS],
    peers: [Peers; MAX_RECORDS],
    cursor: AtomicU32,
    high_water: AtomicU32,
    next_id: AtomicU64,
    /// Times a socket could not get a record and was counted under the overflow record.
    pub overflowed: AtomicU64,
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
            overflowed: AtomicU64::new(0),
        }
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
    pub fn high_water(&self) -> u32 {
        self.high_water.load(Acquire)
    }

    /// Claims a free record for a new socket and returns its index, or [`OVERFLOW`] when the
    /// table is full (the overflow record is opened on first use).
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
        self.overflowed.fetch_add(1, Relaxed);
        self.open_overflow(s.now_ms);
        OVERFLOW
    }

    fn open_overflow(&self, now_ms: u64) {
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
                now_ms,
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

    /// Copies every record of `other` (see [`Registry::copy_from`]).
    pub fn copy_from(&self, other: &Records) {
        let hw = other.high_water();
        for idx in 0..hw as usize {
            if other.recs[idx].state.load(Acquire) == REC_FREE && self.recs[idx].state.load(Relaxed) == REC_FREE {
                continue;
            }
            self.recs[idx].copy_from(&other.recs[idx]);
            self.peers[idx].copy_from(&other.peers[idx]);
        }
        self.cursor.store(other.cursor.load(Relaxed), Relaxed);
        self.next_id.fetch_max(other.next_id.load(Relaxed), Relaxed);
        self.overflowed.store(other.overflowed.load(Relaxed), Relaxed);
        self.high_water.fetch_max(hw, Release);
    }

    /// Frees a closed record after its final delta was shipped.
    pub fn free(&self, idx: u32) {
        if idx == OVERFLOW {
            return;
        }
        let r = self.get(idx);
        let _ = r.state.compare_exchange(REC_CLOSED, REC_FREE, AcqRel, Relaxed);
    }

    /// In a forked child: every open socket starts again from zero (the child is a new process
    /// with its own counters) and is marked inherited; closed records the parent had not yet
    /// reported are dropped (they are the parent's to report).
    pub fn reset_after_fork(&self) {
        for idx in 0..self.high_water() {
            let r = &self.recs[idx as usize];
            match r.state.load(Acquire) {
                REC_OPEN => {
                    r.counters.reset();
                    self.peers[idx as usize].zero();
                    r.flags.fetch_or(FLAG_INHERITED, Relaxed);
                    r.bump();
                }
                REC_CLOSED | REC_OPENING => r.state.store(REC_FREE, Release),
                _ => {}
            }
        }
    }
}

impl Default for Records {
    fn default() -> Self {
        Self::new()
    }
}

/// The fd table and the records of one process.
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
    /// region: at load time, and around fork). Only what was ever used is copied; what this
    /// registry held before is forgotten first.
    pub fn copy_from(&self, other: &Registry) {
        self.clear_used();
        self.records.copy_from(&other.records);
        self.fds.copy_from(&other.fds);
    }

    /// Forgets everything (touching only what was used).
    fn clear_used(&self) {
        let top = (self.fds.top.load(Acquire) as usize).min(MAX_FDS);
        for s in &self.fds.slots[..top] {
            if s.load(Relaxed) != FD_UNKNOWN {
                s.store(FD_UNKNOWN, Relaxed);
            }
        }
        self.fds.top.store(0, Release);
        let hw = (self.records.high_water() as usize).min(MAX_RECORDS);
        for r in &self.records.recs[..hw] {
            if r.state.load(Relaxed) != REC_FREE {
                r.state.store(REC_FREE, Release);
            }
        }
        self.records.high_water.store(0, Release);
    }

    /// Registers a new socket on `s.fd` and returns its record index.
    pub fn open(&self, s: &NewSocket) -> u32 {
        let idx = self.records.open(s);
        if idx != OVERFLOW {
            self.fds.set(s.fd, FdState::Record(idx));
        } else {
            self.fds.set(s.fd, FdState::Record(OVERFLOW));
        }
        idx
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

    /// `newfd` now refers to the same socket as `oldfd` (dup family). Whatever `newfd` was
    /// before must have been closed by the caller already (see [`Registry::close`]).
    pub fn dup(&self, oldfd: i32, newfd: i32) {
        match self.fds.get(oldfd) {
            FdState::Record(idx) => {
                self.records.get(idx).add_ref();
                self.fds.set(newfd, FdState::Record(idx));
            }
            other => self.fds.set(newfd, other),
        }
    }

    /// `fd` was closed, having been `was` before the close. Returns the record index when that
    /// was the socket's last fd.
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

    fn reg() -> &'static Registry {
        // Large: a static, as in the shim (never on the stack).
        static R: Registry = Registry::new();
        &R
    }

    fn sock(fd: i32) -> NewSocket {
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
            now_ms: 5,
        }
    }

    #[test]
    fn open_count_dup_close() {
        let r = reg();
        let idx = r.open(&sock(7));
        assert_eq!(r.fds.get(7), FdState::Record(idx));
        r.records.get(idx).counters.count(Dir::Tx, 10, false);
        r.dup(7, 9);
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
    fn close_loses_to_a_concurrent_reuse() {
        let r = reg();
        let a = r.open(&sock(20));
        let b = r.open(&sock(20)); // the number was reused behind our back
        assert_eq!(r.close(20, FdState::Record(a), 1), None);
        assert_eq!(r.fds.get(20), FdState::Record(b));
    }

    #[test]
    fn peers_are_counted_separately_up_to_the_limit() {
        let r = reg();
        let idx = r.open(&sock(30));
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
    }
}

#[cfg(test)]
mod copy_tests {
    use super::*;

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
            now_ms: 1,
        };
        let idx = A.open(&s);
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
}

#[cfg(test)]
mod counter_tests {
    use super::*;

    #[test]
    fn takes_while_counting_lose_nothing() {
        let c = std::sync::Arc::new(Counters::new());
        let writers: Vec<_> = (0..4)
            .map(|_| {
                let c = c.clone();
                std::thread::spawn(move || {
                    for i in 0..100_000u64 {
                        c.count(Dir::Tx, i % 7, false);
                        c.count(Dir::Rx, 3, i % 1000 == 0);
                    }
                })
            })
            .collect();
        let mut total = CounterValues::default();
        let add = |t: &mut CounterValues, d: CounterValues| {
            t.tx_bytes += d.tx_bytes;
            t.rx_bytes += d.rx_bytes;
            t.tx_calls += d.tx_calls;
            t.rx_calls += d.rx_calls;
            t.errors += d.errors;
        };
        while !writers.iter().all(|w| w.is_finished()) {
            add(&mut total, c.take());
        }
        for w in writers {
            w.join().unwrap();
        }
        add(&mut total, c.take());
        let per_thread_tx: u64 = (0..100_000u64).map(|i| i % 7).sum();
        assert_eq!(total.tx_bytes, 4 * per_thread_tx);
        assert_eq!(total.rx_bytes, 4 * 300_000);
        assert_eq!((total.tx_calls, total.rx_calls, total.errors), (400_000, 400_000, 400));
        assert!(c.take().is_zero());
    }
}
