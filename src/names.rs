//! The name table: module paths and labels, interned once, read by id.
//!
//! The hooks must name the module that opened a socket without allocating, so names live in a
//! fixed table of atomics and a byte arena (all zeros when empty, so a `static` costs nothing
//! until used). Ids start at 1; 0 means unknown. Each entry also keeps what the shim learned
//! about the object once ([`Meta`]): a class byte and a flag for attribution, how the object
//! came into the process and when, and which plugin loaded it for itself. The host names the
//! process looked up, by address, are kept beside them ([`Names::hosts`]).

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering::*};

use crate::keep::Keep;

/// How many names the table holds.
pub const MAX_NAMES: usize = 2048;
/// Bytes of name text the table holds.
pub const ARENA: usize = 512 * 1024;

/// What the shim knows about a named object, fixed when the name is added.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Meta {
    /// The shim's class byte (system library, runtime, plugin...).
    pub class: u8,
    /// The shim's attribution flag (whether the object may be charged).
    pub flag: bool,
    /// How it came in: a [`crate::model::Load`] code (0 for labels).
    pub load: u8,
    /// When it was loaded, ms since the epoch (0: not known).
    pub loaded_ms: u64,
    /// The name id of the plugin that loaded it for itself (0: none).
    pub owner: u32,
}

impl Meta {
    /// Only a class and a flag (labels, tests).
    pub const fn class(class: u8, flag: bool) -> Meta {
        Meta {
            class,
            flag,
            load: 0,
            loaded_ms: 0,
            owner: 0,
        }
    }
}

struct Name {
    ready: AtomicU8,
    class: AtomicU8,
    flag: AtomicU8,
    load: AtomicU8,
    loaded_ms: AtomicU64,
    owner: AtomicU32,
    key: AtomicUsize,
    hash: AtomicU64,
    off: AtomicU32,
    len: AtomicU32,
}

/// The table (`repr(C)`, scalars first: see `registry::fds::FdTable`).
#[repr(C)]
pub struct Names {
    used: AtomicUsize,
    count: AtomicU32,
    entries: [Name; MAX_NAMES],
    arena: [AtomicU8; ARENA],
    /// The host names the process looked up, by address (`crate::hostnames`).
    pub hosts: crate::hostnames::Hosts,
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
    })
}

impl Names {
    /// An empty table (all zeros).
    pub const fn new() -> Self {
        Names {
            entries: [const {
                Name {
                    ready: AtomicU8::new(0),
                    class: AtomicU8::new(0),
                    flag: AtomicU8::new(0),
                    load: AtomicU8::new(0),
                    loaded_ms: AtomicU64::new(0),
                    owner: AtomicU32::new(0),
                    key: AtomicUsize::new(0),
                    hash: AtomicU64::new(0),
                    off: AtomicU32::new(0),
                    len: AtomicU32::new(0),
                }
            }; MAX_NAMES],
            count: AtomicU32::new(0),
            arena: [const { AtomicU8::new(0) }; ARENA],
            used: AtomicUsize::new(0),
            hosts: crate::hostnames::Hosts::new(),
        }
    }

    /// Finds or adds a name. `key` tells apart objects with the same name at different times
    /// (their load address; labels use 0), `raw` identifies it (hashed), `resolve` writes the
    /// text to keep (once, on insertion) and `meta` computes what to keep about it from that text.
    #[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
    pub fn intern(
        &self,
        key: usize,
        raw: &[u8],
        resolve: impl FnOnce(&mut [u8; 4096]) -> usize,
        meta: impl FnOnce(&[u8]) -> Meta,
    ) -> u32 {
        let hash = fnv(raw);
        let n = (self.count.load(Acquire) as usize).min(MAX_NAMES);
        for (i, e) in self.entries[..n].iter().enumerate() {
            if e.ready.load(Acquire) == 1 && e.key.load(Relaxed) == key && e.hash.load(Relaxed) == hash {
                return i as u32 + 1;
            }
        }
        let i = self.count.fetch_add(1, AcqRel) as usize;
        let Some(e) = self.entries.get(i) else {
            self.count.store(MAX_NAMES as u32, Relaxed);
            return 0;
        };
        let mut buf = [0u8; 4096];
        let len = resolve(&mut buf).min(buf.len());
        let text = &buf[..len];
        let off = self.used.fetch_add(len, AcqRel);
        if off + len <= ARENA {
            for (k, b) in text.iter().enumerate() {
                self.arena[off + k].store(*b, Relaxed);
            }
            e.off.store(off as u32, Relaxed);
            e.len.store(len as u32, Relaxed);
        }
        let m = meta(text);
        e.class.store(m.class, Relaxed);
        e.flag.store(u8::from(m.flag), Relaxed);
        e.load.store(m.load, Relaxed);
        e.loaded_ms.store(m.loaded_ms, Relaxed);
        e.owner.store(m.owner, Relaxed);
        e.key.store(key, Relaxed);
        e.hash.store(hash, Relaxed);
        e.ready.store(1, Release);
        i as u32 + 1
    }

    /// The text of name `id`.
    pub fn name(&self, id: u32) -> Option<String> {
        let e = self.entries.get((id as usize).checked_sub(1)?)?;
        if e.ready.load(Acquire) != 1 {
            return None;
        }
        let (off, len) = (e.off.load(Relaxed) as usize, e.len.load(Relaxed) as usize);
        let bytes: Vec<u8> = self
            .arena
            .get(off..off + len)?
            .iter()
            .map(|b| b.load(Relaxed))
            .collect();
        Some(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// The class byte and flag of name `id` (0, false when unknown).
    pub fn class(&self, id: u32) -> (u8, bool) {
        match (id as usize).checked_sub(1).and_then(|i| self.entries.get(i)) {
            Some(e) => (e.class.load(Relaxed), e.flag.load(Relaxed) == 1),
            None => (0, false),
        }
    }

    /// Everything kept about name `id` (all zeros when unknown).
    #[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
    pub fn meta(&self, id: u32) -> Meta {
        match (id as usize).checked_sub(1).and_then(|i| self.entries.get(i)) {
            Some(e) if e.ready.load(Acquire) == 1 => Meta {
                class: e.class.load(Relaxed),
                flag: e.flag.load(Relaxed) == 1,
                load: e.load.load(Relaxed),
                loaded_ms: e.loaded_ms.load(Relaxed),
                owner: e.owner.load(Relaxed),
            },
            _ => Meta::default(),
        }
    }

    /// Copies every name of `other`, host names included (a forked child's fresh table starts
    /// with its parent's).
    #[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
    pub fn copy_from(&self, other: &Names) {
        self.copy_names(other);
        self.hosts.copy_from(&other.hosts);
    }

    /// As [`Names::copy_from`], into a table known to be empty (a fresh region, a nursery slot):
    /// the host names' table, which only name lookups fill, is left untouched when `other`'s
    /// is empty too (in a forked child, reading it would fault in a page of the region for
    /// nothing).
    #[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
    pub fn copy_into_empty(&self, other: &Names) {
        self.copy_names(other);
        if !other.hosts.is_empty() {
            self.hosts.copy_from(&other.hosts);
        }
    }

    /// The names themselves (not the host names), writing only what differs.
    #[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
    fn copy_names(&self, other: &Names) {
        let n = (other.count.load(Acquire) as usize).min(MAX_NAMES);
        let used = other.used.load(Acquire).min(ARENA);
        for (d, s) in self.arena[..used].iter().zip(&other.arena[..used]) {
            d.keep(s.load(Relaxed), Relaxed);
        }
        for (d, s) in self.entries[..n].iter().zip(&other.entries[..n]) {
            d.class.keep(s.class.load(Relaxed), Relaxed);
            d.flag.keep(s.flag.load(Relaxed), Relaxed);
            d.load.keep(s.load.load(Relaxed), Relaxed);
            d.loaded_ms.keep(s.loaded_ms.load(Relaxed), Relaxed);
            d.owner.keep(s.owner.load(Relaxed), Relaxed);
            d.key.keep(s.key.load(Relaxed), Relaxed);
            d.hash.keep(s.hash.load(Relaxed), Relaxed);
            d.off.keep(s.off.load(Relaxed), Relaxed);
            d.len.keep(s.len.load(Relaxed), Relaxed);
            d.ready.keep(s.ready.load(Acquire), Release);
        }
        self.used.keep(used, Release);
        self.count.keep(n as u32, Release);
    }
}

impl Default for Names {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static N: Names = Names::new();
    static M: Names = Names::new();

    fn put(t: &Names, s: &str) -> u32 {
        t.intern(
            0,
            s.as_bytes(),
            |b| {
                b[..s.len()].copy_from_slice(s.as_bytes());
                s.len()
            },
            |_| Meta {
                class: 7,
                flag: true,
                load: 4,
                loaded_ms: 99,
                owner: 1,
            },
        )
    }

    #[test]
    fn intern_once_read_back_copy() {
        let a = put(&N, "/opt/a.so");
        assert_eq!(put(&N, "/opt/a.so"), a);
        let b = put(&N, "weather");
        assert_ne!(a, b);
        assert_eq!(N.name(a).as_deref(), Some("/opt/a.so"));
        assert_eq!(N.class(b), (7, true));
        assert_eq!(N.name(0), None);
        M.copy_from(&N);
        assert_eq!(M.name(b).as_deref(), Some("weather"));
        assert_eq!(M.meta(b), N.meta(b));
        assert_eq!((M.meta(b).load, M.meta(b).loaded_ms, M.meta(b).owner), (4, 99, 1));
        assert_eq!(N.meta(0), Meta::default());
        assert_eq!(put(&M, "weather"), b);
    }

    #[test]
    fn a_copy_into_an_empty_table_has_the_names_and_any_host_names() {
        static SRC: Names = Names::new();
        static EMPTY: Names = Names::new();
        static WITH_HOSTS: Names = Names::new();
        let a = put(&SRC, "/opt/plugin.so");
        EMPTY.copy_into_empty(&SRC);
        assert_eq!(EMPTY.name(a).as_deref(), Some("/opt/plugin.so"));
        assert!(EMPTY.hosts.is_empty());
        let ip = crate::hostnames::key_v4([10, 0, 0, 1]);
        SRC.hosts.record(b"db.test", ip);
        WITH_HOSTS.copy_into_empty(&SRC);
        assert_eq!(WITH_HOSTS.name(a).as_deref(), Some("/opt/plugin.so"));
        assert_eq!(WITH_HOSTS.hosts.name_of(&ip).as_deref(), Some("db.test"));
    }
}
