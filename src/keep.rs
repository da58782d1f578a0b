//! Copies that write only what differs. The region copies around a fork (the parent's snapshot
//! before each fork, the child's region from it) used to store every word they copied, and a
//! store dirties its page even when it writes what is there: after a fork each such page costs
//! a copy-on-write fault (the parent's snapshot, at every fork), and in a fresh region an
//! allocated, zeroed page. [`Keep::keep`] stores only a value that differs, so a page whose
//! words already say the same stays clean. The shim's fork handlers use it on its own statics
//! for the same reason.

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicPtr, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering};

/// An atomic that can be set to a value only if it does not hold it already.
pub trait Keep<T> {
    /// Stores `v` with `order` unless the atomic holds `v` (read relaxed) already.
    fn keep(&self, v: T, order: Ordering);
}

macro_rules! keep {
    ($($atomic:ty => $t:ty),*) => {$(
        impl Keep<$t> for $atomic {
            #[inline]
            fn keep(&self, v: $t, order: Ordering) {
                if self.load(Ordering::Relaxed) != v {
                    self.store(v, order);
                }
            }
        }
    )*};
}

keep!(AtomicBool => bool, AtomicU8 => u8, AtomicU32 => u32, AtomicI32 => i32, AtomicU64 => u64, AtomicUsize => usize);

impl<T> Keep<*mut T> for AtomicPtr<T> {
    #[inline]
    fn keep(&self, v: *mut T, order: Ordering) {
        if self.load(Ordering::Relaxed) != v {
            self.store(v, order);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering::Relaxed;

    #[test]
    fn keep_stores_what_differs() {
        let a = AtomicU64::new(5);
        a.keep(5, Relaxed);
        assert_eq!(a.load(Relaxed), 5);
        a.keep(7, Relaxed);
        assert_eq!(a.load(Relaxed), 7);
        let b = AtomicU8::new(0);
        b.keep(3, Relaxed);
        assert_eq!(b.load(Relaxed), 3);
    }
}
