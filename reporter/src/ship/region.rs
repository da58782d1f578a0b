//! The regions the shipper reads: a host's memfd of its own, or a slot of a nursery
//! (`sockmeter::nursery`) that its parent made for the children it forks.
//!
//! A region of its own is mapped for its host alone and unmapped when the host is done: a
//! forking server's shipper serves a host per child, and kept mapped, every child's region would
//! stay (one mapping each, up to the kernel's `vm.max_map_count`). A nursery is mapped once and
//! shared by the hosts counting in its slots ([`Regions`] finds it again by its inode), so
//! the next child's slot is read through pages that are mapped already. When a slot's host has
//! ended (its process exited or exec'd: nothing writes there any more) and is done, the shipper
//! zeroes the pages it used and frees the slot ([`Region::release`]).

use std::ptr::NonNull;
use std::rc::Rc;

use sockmeter::nursery::{self, Header};
use sockmeter::shared::Shared;

/// One mapping of a memfd.
struct Mapping {
    base: NonNull<u8>,
    len: usize,
    /// A nursery's memfd (kept to find the pages a slot used); -1 for a region of its own.
    fd: i32,
    /// (device, inode) of a nursery, to find its mapping again.
    key: (libc::dev_t, libc::ino_t),
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: our own mapping of `len` bytes (made in `map_fd`) and fd; nothing refers to
        // either any more (every `Region` holding this mapping is gone).
        unsafe {
            libc::munmap(self.base.as_ptr().cast(), self.len);
            if self.fd >= 0 {
                libc::close(self.fd);
            }
        }
    }
}

/// One host's region.
pub struct Region {
    map: Rc<Mapping>,
    /// Where the region starts in the mapping: 0 for a memfd of its own, a slot's offset in a
    /// nursery.
    offset: usize,
}

impl Region {
    /// The region. The `'static` is bounded by the host that owns this `Region`: its reader
    /// holds the reference and is dropped before the region (field order), and no reference
    /// leaves the host.
    pub fn get(&self) -> &'static Shared {
        // SAFETY: `offset + size_of::<Shared>()` lies inside the live mapping (checked in
        // `Regions::open`), which stays mapped while this `Region` holds it; a `Shared` is all
        // atomics, so sharing it with the host is sound; see above for the lifetime.
        unsafe { &*(self.map.base.as_ptr().add(self.offset) as *const Shared) }
    }

    /// The host has ended (its process exited or exec'd: nothing writes to the region any
    /// more) and its last counts are shipped. A nursery's slot is zeroed and freed for the next
    /// child; a region of its own goes with its mapping.
    pub fn release(self) {
        let Some(k) = nursery::slot_at(self.offset) else { return };
        let end = self.offset + nursery::SPAN;
        // SAFETY: sysconf has no preconditions.
        let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096);
        let mut at = self.offset;
        while at < end {
            // The next page the slot used (a shmem page swapped out counts too). A child uses a
            // few pages far apart (the header, the starts of the arrays it copied), so one call
            // per page found: the page after it is asked for next, which is found at once when
            // the pages run on.
            // SAFETY: lseek on our own copy of the nursery's memfd (nobody reads it by offset).
            let data = unsafe { libc::lseek(self.map.fd, at as libc::off_t, libc::SEEK_DATA) };
            if data < 0 || data as usize >= end {
                break;
            }
            let data = data as usize;
            let stop = (data + page).min(end);
            // SAFETY: [data, stop) lies inside this slot, inside the mapping; the slot's
            // process is gone and the slot is not free yet, so nobody else touches it.
            unsafe { std::ptr::write_bytes(self.map.base.as_ptr().add(data), 0, stop - data) };
            at = stop;
        }
        header(&self.map).release(k);
    }
}

fn header(m: &Mapping) -> &Header {
    // SAFETY: a nursery's mapping starts with its header (atomics, valid when all zero).
    unsafe { &*(m.base.as_ptr() as *const Header) }
}

/// The nurseries mapped now, by inode.
#[derive(Default)]
pub struct Regions {
    nurseries: Vec<Rc<Mapping>>,
}

/// Nurseries kept mapped with no host in them (a parent's next children will need its own
/// again; one with none left costs a mapping and the pages its children touched).
const KEEP_IDLE: usize = 4;

impl Regions {
    /// The region in memfd `fd` (which this takes) at `offset`: 0 for a memfd of its own, else
    /// a slot of a nursery. None when it is not a region this build made.
    pub fn open(&mut self, fd: i32, offset: usize) -> Option<Region> {
        // SAFETY: fstat with a valid out-pointer (all-zero is a valid `stat`).
        let (stat_ok, st) = unsafe {
            let mut st: libc::stat = std::mem::zeroed();
            (libc::fstat(fd, &mut st) == 0, st)
        };
        let size = if stat_ok { st.st_size as usize } else { 0 };
        if offset == 0 {
            let map = map_fd(fd, std::mem::size_of::<Shared>(), size, false, (0, 0))?;
            let r = Region {
                map: Rc::new(map),
                offset: 0,
            };
            return r.get().is_valid().then_some(r);
        }
        if nursery::slot_at(offset).is_none() {
            // SAFETY: our copy of the memfd, which names no region.
            unsafe { libc::close(fd) };
            return None;
        }
        let key = (st.st_dev, st.st_ino);
        let map = match self.nurseries.iter().find(|m| stat_ok && m.key == key) {
            Some(m) => {
                // SAFETY: our copy of a memfd we have mapped already.
                unsafe { libc::close(fd) };
                m.clone()
            }
            None => {
                let m = Rc::new(map_fd(fd, nursery::LEN, size, true, key)?);
                if !header(&m).is_valid() {
                    return None;
                }
                self.forget_idle();
                self.nurseries.push(m.clone());
                m
            }
        };
        let r = Region { map, offset };
        r.get().is_valid().then_some(r)
    }

    /// Unmaps the nurseries no host counts in, beyond the few kept for their next children.
    fn forget_idle(&mut self) {
        let mut idle = self.nurseries.iter().filter(|m| Rc::strong_count(m) == 1).count();
        self.nurseries.retain(|m| {
            let drop = idle > KEEP_IDLE && Rc::strong_count(m) == 1;
            idle -= usize::from(drop);
            !drop
        });
    }
}

/// Maps `len` bytes of memfd `fd` (of `size` bytes) shared; the fd is kept in the mapping when
/// `keep`, else closed. None (and the fd closed) when it is too small or cannot be mapped.
fn map_fd(fd: i32, len: usize, size: usize, keep: bool, key: (libc::dev_t, libc::ino_t)) -> Option<Mapping> {
    let p = if size < len {
        libc::MAP_FAILED
    } else {
        // SAFETY: mapping the shim's memfd read-write and shared, within its size.
        unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd,
                0,
            )
        }
    };
    let Some(base) = NonNull::new(p.cast::<u8>()).filter(|_| p != libc::MAP_FAILED) else {
        // SAFETY: our copy of the memfd.
        unsafe { libc::close(fd) };
        return None;
    };
    if !keep {
        // SAFETY: our copy of the memfd; the mapping keeps the memory.
        unsafe { libc::close(fd) };
    }
    Some(Mapping {
        base,
        len,
        fd: if keep { fd } else { -1 },
        key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A nursery as the shim makes it: a memfd of `nursery::LEN` bytes, sealed.
    fn nursery_fd() -> i32 {
        // SAFETY: plain system calls on our own fd.
        unsafe {
            let fd = libc::memfd_create(c"test-nursery".as_ptr(), libc::MFD_CLOEXEC);
            assert!(fd >= 0);
            assert_eq!(libc::ftruncate(fd, nursery::LEN as libc::off_t), 0);
            fd
        }
    }

    #[test]
    fn a_released_slot_is_zero_again_and_free_and_the_nursery_is_mapped_once() {
        let fd = nursery_fd();
        // SAFETY: duplicating our own fd.
        let dup = || unsafe { libc::dup(fd) };
        let mut regions = Regions::default();
        // Unsealed: not a nursery.
        assert!(regions.open(dup(), nursery::offset_of(1)).is_none());
        // What a parent and a child do: seal the nursery, claim slot 1, count there.
        let m = map_fd(dup(), nursery::LEN, nursery::LEN, false, (0, 0)).unwrap();
        let h = header(&m);
        h.seal();
        assert_eq!(h.claim(100), Some(0));
        assert_eq!(h.claim(101), Some(1));
        // SAFETY: slot 1 lies inside the test's mapping.
        let slot: &Shared = unsafe { &*(m.base.as_ptr().add(nursery::offset_of(1)) as *const Shared) };
        // Not sealed yet: not a region.
        assert!(regions.open(dup(), nursery::offset_of(1)).is_none());
        slot.seal();
        slot.started_ms.store(12345, std::sync::atomic::Ordering::Relaxed);
        // A run of pages (the fd table's first ~12 KB), and pages far apart.
        for fd in 0..3000 {
            slot.registry.fds.set(fd, sockmeter::registry::FdState::Ignored);
        }
        let a = regions.open(dup(), nursery::offset_of(1)).expect("slot 1");
        assert_eq!(a.get().started_ms.load(std::sync::atomic::Ordering::Relaxed), 12345);
        // A second region of the same nursery shares the mapping.
        assert!(
            regions.open(dup(), nursery::offset_of(0)).is_none(),
            "slot 0 is not sealed"
        );
        assert_eq!(regions.nurseries.len(), 1);
        // An offset that names no slot, and a region of its own that is too small.
        assert!(regions.open(dup(), nursery::offset_of(1) + 8).is_none());
        assert!(regions.open(dup(), 0).is_none(), "the nursery's header is no region");
        a.release();
        // Slot 1 is free again and slot 0 still taken: the next claim gets 1.
        assert_eq!(h.claim(102), Some(1), "freed, and the other slot untouched");
        // Every byte of the slot is zero again: a fresh region for the next child.
        // SAFETY: reading the test's own mapping.
        let bytes = unsafe { std::slice::from_raw_parts(m.base.as_ptr().add(nursery::offset_of(1)), nursery::SPAN) };
        assert!(bytes.iter().all(|&b| b == 0));
        assert!(!slot.is_valid());
        // SAFETY: our fd.
        unsafe { libc::close(fd) };
    }
}
