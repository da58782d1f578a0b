//! The nursery: regions a metered parent makes ready, once, for the children it forks.
//!
//! A forked child that touches a socket needs a region of its own (`shared::Shared`), and
//! making one per child was most of what a child cost: a memfd, its size, a mapping, and every
//! page the child then writes allocated and zeroed on its own fault, in the child, then
//! mapped, read and unmapped again by the shipper (docs/benchmarks.md, "Where a forked child's
//! time goes"). A parent in shipper mode instead makes one *nursery* at its first fork: a
//! memfd of [`SLOTS`] regions behind a header page of claim words, mapped shared, so every
//! child it forks from then on has it mapped already. A child claims a free slot (one
//! compare-and-swap of its pid into the header), counts there, and hands the shipper the
//! nursery's memfd with the slot's offset instead of a memfd of its own. When that child has
//! ended (exited, or exec'd: its mapping is gone either way) and its last counts are shipped,
//! the shipper zeroes the pages the child touched and frees the slot: the next child finds the
//! pages allocated and zero, and the shipper finds them mapped already.
//!
//! A slot looks exactly like a fresh region (all zero) when it is claimed; a child that finds
//! none free makes a region of its own as before. The layout is fixed by this build: the shim
//! and the shipper that share a nursery are the same build (as for the region, `LAYOUT`).

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::*};

use crate::shared::Shared;

/// Regions in one nursery: children of one parent that can count in it at once (a serial
/// forking server needs two; more than this many live children make regions of their own).
pub const SLOTS: usize = 4;

/// Offsets in the nursery are multiples of this (the largest page size Linux uses), so that a
/// slot's pages are its own and its offset can be handed to `lseek` and `mmap` alike.
pub const ALIGN: usize = 64 * 1024;

/// The bytes one slot takes: a region, rounded up to [`ALIGN`].
pub const SPAN: usize = std::mem::size_of::<Shared>().div_ceil(ALIGN) * ALIGN;

/// The nursery's whole length: the header, then the slots.
pub const LEN: usize = ALIGN + SLOTS * SPAN;

/// "SMNURSE1": a nursery this build made.
const MAGIC: u64 = u64::from_le_bytes(*b"SMNURSE1");

/// The nursery's first bytes.
#[repr(C)]
pub struct Header {
    magic: AtomicU64,
    /// The pid of the process counting in each slot; 0 when it is free.
    claims: [AtomicU32; SLOTS],
}

impl Header {
    /// Marks a fresh (all-zero) nursery as made.
    pub fn seal(&self) {
        self.magic.store(MAGIC, Release);
    }

    /// Whether this nursery was made by this build.
    pub fn is_valid(&self) -> bool {
        self.magic.load(Acquire) == MAGIC
    }

    /// The slot process `pid` holds, if any.
    pub fn holder(&self, pid: u32) -> Option<usize> {
        if pid == 0 || !self.is_valid() {
            return None;
        }
        self.claims.iter().position(|c| c.load(Acquire) == pid)
    }

    /// Takes a free slot for process `pid`: its index, or None when every slot is taken.
    #[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
    pub fn claim(&self, pid: u32) -> Option<usize> {
        if pid == 0 || !self.is_valid() {
            return None;
        }
        self.claims
            .iter()
            .position(|c| c.load(Relaxed) == 0 && c.compare_exchange(0, pid, AcqRel, Relaxed).is_ok())
    }

    /// Frees slot `k` (the caller has zeroed it: whoever claims it next finds a fresh region).
    pub fn release(&self, k: usize) {
        if let Some(c) = self.claims.get(k) {
            c.store(0, Release);
        }
    }
}

/// Where slot `k` starts, from the nursery's start.
pub const fn offset_of(k: usize) -> usize {
    ALIGN + k * SPAN
}

/// The slot a hand-over's offset names, if it names one.
pub fn slot_at(offset: usize) -> Option<usize> {
    let k = offset.checked_sub(ALIGN)? / SPAN;
    (k < SLOTS && offset_of(k) == offset).then_some(k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_aligned_whole_regions_after_the_header() {
        assert!(std::mem::size_of::<Header>() <= ALIGN);
        assert!(SPAN >= std::mem::size_of::<Shared>() && SPAN.is_multiple_of(ALIGN));
        assert_eq!(offset_of(SLOTS - 1) + SPAN, LEN);
        for k in 0..SLOTS {
            assert_eq!(slot_at(offset_of(k)), Some(k));
        }
        for bad in [
            0,
            ALIGN - 1,
            ALIGN + 1,
            offset_of(1) - ALIGN,
            offset_of(SLOTS),
            usize::MAX,
        ] {
            assert_eq!(slot_at(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_holder_is_found_by_its_pid_until_it_releases_its_slot() {
        let h = Header {
            magic: AtomicU64::new(0),
            claims: [const { AtomicU32::new(0) }; SLOTS],
        };
        h.seal();
        let (a, b) = (h.claim(7).unwrap(), h.claim(8).unwrap());
        assert_eq!(
            (h.holder(7), h.holder(8), h.holder(9), h.holder(0)),
            (Some(a), Some(b), None, None)
        );
        h.release(a);
        assert_eq!(h.holder(7), None);
    }

    #[test]
    fn each_slot_has_one_holder_until_it_is_released() {
        let h = Header {
            magic: AtomicU64::new(0),
            claims: [const { AtomicU32::new(0) }; SLOTS],
        };
        assert_eq!(h.claim(7), None, "an unsealed nursery is not used");
        h.seal();
        let got: Vec<usize> = (1..=SLOTS as u32).filter_map(|pid| h.claim(pid)).collect();
        assert_eq!(got, (0..SLOTS).collect::<Vec<_>>());
        assert_eq!(h.claim(99), None, "all taken");
        h.release(2);
        assert_eq!(h.claim(42), Some(2), "the one freed slot");
        assert_eq!(h.claim(43), None);
        assert_eq!(h.claim(0), None, "pid 0 would look free");
        h.release(SLOTS + 3); // out of range: nothing
    }

    #[test]
    fn concurrent_claims_never_share_a_slot() {
        let h = std::sync::Arc::new(Header {
            magic: AtomicU64::new(MAGIC),
            claims: [const { AtomicU32::new(0) }; SLOTS],
        });
        let threads: Vec<_> = (1..=8u32)
            .map(|pid| {
                let h = h.clone();
                std::thread::spawn(move || h.claim(pid))
            })
            .collect();
        let mut won: Vec<usize> = threads.into_iter().filter_map(|t| t.join().unwrap()).collect();
        won.sort_unstable();
        assert_eq!(won, (0..SLOTS).collect::<Vec<_>>());
    }
}
