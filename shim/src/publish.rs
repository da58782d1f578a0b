//! Values made once per process image, kept for its life and published without a lock: the
//! first caller's value wins with one compare-and-swap, a loser frees its own. Never a lock,
//! because a lock another thread of the parent held at a fork is never released in the child,
//! and these are asked in fork children (the reporting side's collector, the executable's path).

use std::sync::atomic::{AtomicPtr, Ordering::*};

/// The value in `slot`, made by `make` if there is none yet. A slot reset to null (in a fork
/// child) is made again; the old value is leaked, never freed, so no reference to it dangles.
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
pub fn once<T>(slot: &AtomicPtr<T>, make: impl FnOnce() -> T) -> &'static T {
    let known = slot.load(Acquire);
    if !known.is_null() {
        // SAFETY: published below from a leaked Box, never freed.
        return unsafe { &*known };
    }
    let mine = Box::into_raw(Box::new(make()));
    match slot.compare_exchange(std::ptr::null_mut(), mine, AcqRel, Acquire) {
        // SAFETY: `mine` is now published, leaked for the life of the image.
        Ok(_) => unsafe { &*mine },
        Err(theirs) => {
            // SAFETY: `mine` was never shared; `theirs` was published from a leaked Box.
            unsafe {
                drop(Box::from_raw(mine));
                &*theirs
            }
        }
    }
}

/// The value in `slot`, if one was published (a plain load: a reader that must not make one).
pub fn get<T>(slot: &AtomicPtr<T>) -> Option<&'static T> {
    let known = slot.load(Acquire);
    // SAFETY: null, or published by `once` from a leaked Box, never freed.
    (!known.is_null()).then(|| unsafe { &*known })
}
