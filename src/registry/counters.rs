//! Counters: a socket's traffic in one packed word per direction, and per-peer counters of
//! datagram sockets.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::*};

use crate::keep::Keep;

use super::MAX_PEERS;
use crate::addr::ADDR_WORDS;
use crate::model::Dir;

/// Traffic counters: one word per direction, so counting a call is one add.
///
/// Each direction's word packs the calls (high [`CALL_BITS`] bits) and the bytes (low
/// [`BYTE_BITS`] bits). A socket's words only grow (wrapping): its one reader (the shipper, or
/// the reporting thread) never writes them, it keeps the words as of its last take
/// ([`Taken`]) and ships the difference ([`Counters::take_since`]). So a writer that is the
/// process's only thread may add with a plain instruction instead of a locked one
/// ([`Counters::count_by`]; the shim does, where a locked add after a system call costs tens of
/// nanoseconds: docs/benchmarks.md). Between two takes (at most 100 ms apart while a reader
/// runs) a direction can move 2^40 bytes (1 TiB) and 2^24 calls. Per-peer counters
/// ([`PeerSlot`]) are still taken by an atomic swap ([`Counters::take`]), and their writers
/// always add atomically.
#[derive(Default)]
pub struct Counters {
    pub(super) tx: AtomicU64,
    pub(super) rx: AtomicU64,
    pub(super) errors: AtomicU64,
}

/// Bits of a direction word that count bytes.
pub const BYTE_BITS: u32 = 40;
/// Bits of a direction word that count calls.
pub const CALL_BITS: u32 = 64 - BYTE_BITS;
pub(super) const ONE_CALL: u64 = 1 << BYTE_BITS;
pub(super) const BYTE_MASK: u64 = ONE_CALL - 1;

/// A reader's memory of one socket's counters: the words as of its last take.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Taken {
    words: [u64; 3],
}

impl Taken {
    /// The send and receive words as taken.
    pub fn direction_words(&self) -> [u64; 2] {
        [self.words[0], self.words[1]]
    }
}

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

    pub(super) fn from_words(tx: u64, rx: u64, errors: u64) -> Self {
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
    pub(super) const fn new() -> Self {
        Counters {
            tx: AtomicU64::new(0),
            rx: AtomicU64::new(0),
            errors: AtomicU64::new(0),
        }
    }

    /// Counts one call: `bytes` moved (0 for a failure or a peek), `failed` for a real error.
    #[inline]
    pub fn count(&self, dir: Dir, bytes: u64, failed: bool) {
        self.count_by(dir, bytes, failed, |w, v| {
            w.fetch_add(v, Relaxed);
        });
    }

    /// As [`Counters::count`], adding with `add` (an atomic add, or, for a writer that is the
    /// only one, a plain add instruction: see the type's docs).
    #[inline(always)]
    pub fn count_by(&self, dir: Dir, bytes: u64, failed: bool, add: impl Fn(&AtomicU64, u64)) {
        let w = match dir {
            Dir::Tx => &self.tx,
            Dir::Rx => &self.rx,
        };
        add(w, ONE_CALL | (bytes & BYTE_MASK));
        if failed {
            add(&self.errors, 1);
        }
    }

    /// What was counted since `last` (the reader's previous take of this socket; zero for a
    /// socket it has not taken yet), and `last` becomes now. Never writes the counters.
    pub fn take_since(&self, last: &mut Taken) -> CounterValues {
        let now = [self.tx.load(Acquire), self.rx.load(Acquire), self.errors.load(Acquire)];
        let d = |i: usize| now[i].wrapping_sub(last.words[i]);
        let v = CounterValues::from_words(d(0), d(1), d(2));
        last.words = now;
        v
    }

    /// Whether nothing was counted since `last` (the reader's previous take).
    #[inline]
    pub fn unchanged_since(&self, last: &Taken) -> bool {
        self.tx.load(Acquire) == last.words[0]
            && self.rx.load(Acquire) == last.words[1]
            && self.errors.load(Acquire) == last.words[2]
    }

    /// The bytes counted since `words` (a direction's word as a reader took it), by direction.
    pub(super) fn bytes_since(&self, words: [u64; 2]) -> [u64; 2] {
        [
            self.tx.load(Acquire).wrapping_sub(words[0]) & BYTE_MASK,
            self.rx.load(Acquire).wrapping_sub(words[1]) & BYTE_MASK,
        ]
    }

    /// Takes what was counted since the last take by swapping the words to zero (per-peer
    /// counters; see the type's docs). Only the one reader calls this.
    pub fn take(&self) -> CounterValues {
        let take = |w: &AtomicU64| if w.load(Relaxed) == 0 { 0 } else { w.swap(0, Relaxed) };
        CounterValues::from_words(take(&self.tx), take(&self.rx), take(&self.errors))
    }

    /// What was counted since the last take, without taking it (tests, diagnostics).
    pub fn peek(&self) -> CounterValues {
        CounterValues::from_words(self.tx.load(Relaxed), self.rx.load(Relaxed), self.errors.load(Relaxed))
    }

    pub(super) fn copy_from(&self, o: &Counters) {
        self.tx.keep(o.tx.load(Relaxed), Relaxed);
        self.rx.keep(o.rx.load(Relaxed), Relaxed);
        self.errors.keep(o.errors.load(Relaxed), Relaxed);
    }

    pub(super) fn reset(&self) {
        for c in [&self.tx, &self.rx, &self.errors] {
            c.store(0, Relaxed);
        }
    }
}

/// Counters for one peer of a datagram socket.
pub struct PeerSlot {
    pub(super) state: AtomicU32,
    pub(super) addr: [AtomicU64; ADDR_WORDS],
    /// This peer's traffic.
    pub counters: Counters,
}

pub(super) const PEER_FREE: u32 = 0;
pub(super) const PEER_WRITING: u32 = 1;
pub(super) const PEER_READY: u32 = 2;

impl PeerSlot {
    pub(super) const fn new() -> Self {
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

/// Per-peer counters of one datagram socket: the first [`MAX_PEERS`] peers it talks to. Kept
/// beside the records, not in them, so the pages of sockets that never use them (every TCP
/// socket) are never touched.
pub struct Peers {
    pub(super) slots: [PeerSlot; MAX_PEERS],
}

impl Peers {
    pub(super) const fn new() -> Self {
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

    pub(super) fn copy_from(&self, o: &Peers) {
        for (d, s) in self.slots.iter().zip(&o.slots) {
            let st = s.state.load(Acquire);
            if st == PEER_FREE && d.state.load(Relaxed) == PEER_FREE {
                continue;
            }
            keep_words(&d.addr, &load_words(&s.addr));
            d.counters.copy_from(&s.counters);
            d.state.keep(st, Release);
        }
    }

    /// Empties the slots, writing only to slots that were used (untouched pages stay so).
    pub(super) fn reset(&self) {
        for p in &self.slots {
            if p.state.load(Relaxed) != PEER_FREE {
                p.state.store(PEER_FREE, Relaxed);
                p.counters.reset();
            }
        }
    }

    /// Zeroes the counters of used slots (a forked child starts from zero).
    pub(super) fn zero(&self) {
        for p in &self.slots {
            if p.state.load(Relaxed) != PEER_FREE {
                p.counters.reset();
            }
        }
    }
}

pub(super) fn load_words(w: &[AtomicU64; ADDR_WORDS]) -> [u64; ADDR_WORDS] {
    let mut out = [0u64; ADDR_WORDS];
    for (o, a) in out.iter_mut().zip(w) {
        *o = a.load(Relaxed);
    }
    out
}

/// As [`store_words`], writing only the words that differ (`crate::keep`).
pub(super) fn keep_words(w: &[AtomicU64; ADDR_WORDS], v: &[u64; ADDR_WORDS]) {
    for (a, x) in w.iter().zip(v) {
        a.keep(*x, Relaxed);
    }
}

pub(super) fn store_words(w: &[AtomicU64; ADDR_WORDS], v: &[u64; ADDR_WORDS]) {
    for (a, x) in w.iter().zip(v) {
        a.store(*x, Relaxed);
    }
}

#[cfg(test)]
mod counter_tests {
    use super::*;

    /// Four threads count while `take` reads, until they are done and once more: what was
    /// taken, in total.
    fn taken_while_four_count(c: &std::sync::Arc<Counters>, mut take: impl FnMut() -> CounterValues) -> CounterValues {
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
        let mut add = |d: CounterValues| {
            total.tx_bytes += d.tx_bytes;
            total.rx_bytes += d.rx_bytes;
            total.tx_calls += d.tx_calls;
            total.rx_calls += d.rx_calls;
            total.errors += d.errors;
        };
        while !writers.iter().all(|w| w.is_finished()) {
            add(take());
        }
        for w in writers {
            w.join().unwrap();
        }
        add(take());
        total
    }

    /// What four threads counted, exactly.
    fn assert_all_of_four(total: CounterValues) {
        let per_thread_tx: u64 = (0..100_000u64).map(|i| i % 7).sum();
        assert_eq!(total.tx_bytes, 4 * per_thread_tx);
        assert_eq!(total.rx_bytes, 4 * 300_000);
        assert_eq!((total.tx_calls, total.rx_calls, total.errors), (400_000, 400_000, 400));
    }

    /// Per-peer counters: taken by a swap to zero while writers count, nothing lost.
    #[test]
    fn takes_while_counting_lose_nothing() {
        let c = std::sync::Arc::new(Counters::new());
        assert_all_of_four(taken_while_four_count(&c, || c.take()));
        assert!(c.take().is_zero());
    }

    /// The reader's side of a socket's counters: deltas since its last take, while writers
    /// count, lose nothing and never write the words.
    #[test]
    fn takes_since_while_counting_lose_nothing() {
        let c = std::sync::Arc::new(Counters::new());
        let mut last = Taken::default();
        assert_all_of_four(taken_while_four_count(&c, || c.take_since(&mut last)));
        assert!(c.take_since(&mut last).is_zero());
        assert_eq!(c.peek().rx_calls, 400_000, "the words were never reset");
    }

    /// A word that wraps past 2^64 between two takes still gives the exact difference.
    #[test]
    fn a_word_that_wraps_gives_the_exact_difference() {
        let c = Counters::new();
        c.tx.store(u64::MAX - ONE_CALL, Relaxed);
        let mut last = Taken::default();
        let _ = c.take_since(&mut last);
        for _ in 0..3 {
            c.count(Dir::Tx, 1_000_000, false);
        }
        let d = c.take_since(&mut last);
        assert_eq!((d.tx_calls, d.tx_bytes), (3, 3_000_000));
    }
}
