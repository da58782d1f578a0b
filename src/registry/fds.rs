//! The fd table: fd number → what is known about it ([`FdState`]).

use std::sync::atomic::{AtomicU32, Ordering::*};

use crate::keep::Keep;

use super::MAX_FDS;

pub(super) const FD_UNKNOWN: u32 = 0;
pub(super) const FD_NOT_SOCKET: u32 = 1;
pub(super) const FD_IGNORED: u32 = 2;
pub(super) const FD_RECORD_BASE: u32 = 3;

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
    pub(super) const fn to_raw(self) -> u32 {
        match self {
            FdState::Unknown => FD_UNKNOWN,
            FdState::NotSocket => FD_NOT_SOCKET,
            FdState::Ignored => FD_IGNORED,
            FdState::Record(i) => FD_RECORD_BASE + i,
        }
    }
    pub(super) const fn from_raw(v: u32) -> Self {
        match v {
            FD_UNKNOWN => FdState::Unknown,
            FD_NOT_SOCKET => FdState::NotSocket,
            FD_IGNORED => FdState::Ignored,
            n => FdState::Record(n - FD_RECORD_BASE),
        }
    }
}

/// fd number → [`FdState`].
///
/// `repr(C)`, scalars first: they share a page with the start of the array after them (the
/// part a process uses), and a forked child faults on each such page of its region once.
#[repr(C)]
pub struct FdTable {
    /// One past the highest fd ever set to something other than unknown.
    pub(super) top: AtomicU32,
    pub(super) slots: [AtomicU32; MAX_FDS],
}

impl FdTable {
    /// An empty table (everything unknown).
    pub const fn new() -> Self {
        FdTable {
            slots: [const { AtomicU32::new(0) }; MAX_FDS],
            top: AtomicU32::new(0),
        }
    }

    pub(super) fn slot(&self, fd: i32) -> Option<&AtomicU32> {
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
            // Written only when it differs: in a forked child, a store of what is there would
            // cost a page copy.
            s.keep(st.to_raw(), Release);
            self.raise_top(fd);
        }
    }

    #[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
    pub(super) fn raise_top(&self, fd: i32) {
        let t = fd as u32 + 1;
        if self.top.load(Relaxed) < t {
            self.top.fetch_max(t, Relaxed);
        }
    }

    /// Makes this table a copy of `other` (a forked child's fresh table starts with its
    /// parent's), writing only the entries that differ.
    pub fn copy_from(&self, other: &FdTable) {
        self.copy_forgetting(other, &[]);
    }

    /// As [`FdTable::copy_from`], except that the copy knows nothing of the fds in `forget`
    /// (the copier's own, which the copy's process closes at once: written here, in the copy
    /// the parent keeps for its children, they are not written again in every child).
    #[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
    pub fn copy_forgetting(&self, other: &FdTable, forget: &[i32]) {
        let top = (other.top.load(Acquire) as usize).min(MAX_FDS);
        let upto = top.max((self.top.load(Acquire) as usize).min(MAX_FDS));
        for (i, d) in self.slots[..upto].iter().enumerate() {
            let v = if i < top && !forget.contains(&(i as i32)) {
                other.slots[i].load(Relaxed)
            } else {
                FD_UNKNOWN
            };
            d.keep(v, Relaxed);
        }
        self.top.keep(top as u32, Release);
    }

    /// Records what `fd` is and returns what the table said before (out of range: nothing is
    /// stored and [`FdState::Ignored`] is returned).
    #[inline]
    pub fn swap(&self, fd: i32, st: FdState) -> FdState {
        match self.slot(fd) {
            Some(s) => {
                let prev = FdState::from_raw(s.swap(st.to_raw(), AcqRel));
                self.raise_top(fd);
                prev
            }
            None => FdState::Ignored,
        }
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

    /// Calls `f` for every fd in `first..=last` that maps to a record (bounded by the table,
    /// and by the highest fd ever set: no fd above it can map to one).
    #[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
    pub fn for_each_record_in(&self, first: u32, last: u32, mut f: impl FnMut(i32, u32)) {
        let top = (self.top.load(Acquire) as usize).min(MAX_FDS);
        if top == 0 {
            return;
        }
        let end = (last as usize).min(top - 1);
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
