//! The host's side of the nursery (`sockmeter::nursery`): regions made ready for forked
//! children. A process that ships through a shipper makes it before its first fork; every
//! child forked after that inherits the mapping and its memfd, and one that needs a region
//! claims a slot of it ([`claim`]) instead of making a memfd of its own (no system call, and
//! pages that an earlier child's use left allocated), and hands it over at once, silently
//! (`helper::install`). The shipper frees the slot once the child has ended and its last counts
//! are shipped. Grandchildren claim from the same nursery.

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicPtr, AtomicUsize, Ordering::*};

use sockmeter::keep::Keep;
use sockmeter::nursery::{self, Header};
use sockmeter::shared::Shared;

use crate::platform;

/// The nursery's memfd (close-on-exec, at a high fd number like the shim's other fds), in the
/// process that made it and every process forked from it.
pub static FD: AtomicI32 = AtomicI32::new(-1);
/// Its mapping.
static BASE: AtomicPtr<u8> = AtomicPtr::new(std::ptr::null_mut());
/// The offset of the slot this process counts in (0: none; its region is a memfd of its own).
static CLAIMED: AtomicUsize = AtomicUsize::new(0);

#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
fn header(base: *mut u8) -> &'static Header {
    // SAFETY: `base` is the live shared mapping of a nursery (`LEN` bytes, made by `prepare`
    // and never unmapped), whose first bytes are its header: atomics, valid when all zero.
    unsafe { &*(base as *const Header) }
}

/// Before a fork, in a parent that ships through a shipper taking hand-overs (`adoption`):
/// makes the nursery, once. Not where the address space is limited (`RLIMIT_AS`): the slots
/// are `nursery::LEN` bytes of it, which the host may need (they cost no memory until used).
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
pub fn prepare(high: libc::c_int, adoption: bool) {
    static TRIED: AtomicBool = AtomicBool::new(false);
    if !adoption || FD.load(Acquire) >= 0 || TRIED.load(Relaxed) || TRIED.swap(true, AcqRel) {
        return;
    }
    if platform::address_space_limited() {
        return;
    }
    let Some((fd, p)) = platform::create_region(c"sockmeter-nursery", nursery::LEN, high) else {
        return;
    };
    let base = p as *mut u8;
    header(base).seal();
    super::shared()
        .registry
        .fds
        .set(fd, sockmeter::registry::FdState::Ignored);
    BASE.store(base, Release);
    FD.store(fd, Release);
}

/// In a forked child (the caller holds the guard; the child has one thread): it counts in no
/// slot of its parent's.
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
pub fn fork_child() {
    CLAIMED.keep(0, Relaxed);
}

/// A free slot of the inherited nursery for this process's region, all zero (a fresh region;
/// [`claimed`] names it from then on). None when there is no nursery or every slot is taken.
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
pub fn claim() -> Option<&'static Shared> {
    let (fd, base) = (FD.load(Acquire), BASE.load(Acquire));
    if fd < 0 || base.is_null() {
        return None;
    }
    let k = header(base).claim(super::image_pid())?;
    let offset = nursery::offset_of(k);
    CLAIMED.store(offset, Release);
    // SAFETY: slot `k` lies inside the nursery's mapping (`offset_of(k) + SPAN <= LEN`), is
    // page-aligned, and is zero: never used, or zeroed by the shipper before it freed it. An
    // all-zero `Shared` is a valid empty region.
    Some(unsafe { &*(base.add(offset) as *const Shared) })
}

/// How child `pid` said it ended, if it counts in a slot of this process's nursery and said
/// so there (`Shared::set_ending`, at its exit). Its shipper's `bye` carries that ending, so a
/// `wait` that reaps the child with the same status need not write it to the endings file.
/// None when the slot was freed or taken by another child meanwhile (then its pages are zero).
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
pub fn recorded_ending(pid: u32) -> Option<sockmeter::wire::ExitStatus> {
    let base = BASE.load(Acquire);
    if base.is_null() {
        return None;
    }
    let k = header(base).holder(pid)?;
    // SAFETY: as in `claim`: slot `k` lies inside the live mapping; a region's words are
    // atomics, valid whatever the child or the shipper left there.
    let region = unsafe { &*(base.add(nursery::offset_of(k)) as *const Shared) };
    region.ending()
}

/// The slot this process counts in, as (the nursery's memfd, the slot's offset), if any.
pub fn claimed() -> Option<(libc::c_int, usize)> {
    match CLAIMED.load(Acquire) {
        0 => None,
        offset => Some((FD.load(Acquire), offset)),
    }
}
