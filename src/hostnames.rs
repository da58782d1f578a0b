//! Which name each address came from: the host names a process looked up.
//!
//! The shim's resolver hooks (`getaddrinfo`, `gethostbyname`...) record, for every address a
//! lookup returned, the name the program asked for; when a socket is announced, its peer's
//! address is looked up here, and the report says `example.org (93.184.215.14:443)`. The
//! program's own lookups only: nothing is ever resolved, forward or reverse, by sockmeter.
//!
//! A fixed table of atomics (all zeros when empty, like the rest of the shared region): no
//! allocation and no lock in a hook, readable by a shipper process. [`MAX_HOSTS`] entries used
//! as a ring: an address already in the table is updated in place (the latest name the
//! program asked for wins), a new one takes the next slot, overwriting the oldest. Each entry
//! is a seqlock: a reader that meets an entry being written skips it.

use std::sync::atomic::{fence, AtomicU32, AtomicU64, AtomicU8, Ordering::*};

use crate::keep::Keep;

use crate::addr::{Addr, ADDR_WORDS};

/// Addresses remembered per process.
pub const MAX_HOSTS: usize = 256;
/// The longest name kept (a DNS name is at most 253 bytes); longer ones are not recorded.
pub const MAX_HOST_NAME: usize = 255;

/// An IP address as the table keys it: 16 bytes, IPv4 as its IPv4-mapped IPv6 form (so a
/// mapped address and the plain one are the same host).
pub type IpKey = [u8; 16];

/// The key of an IPv4 address.
pub fn key_v4(o: [u8; 4]) -> IpKey {
    let mut k = [0u8; 16];
    k[10] = 0xff;
    k[11] = 0xff;
    k[12..].copy_from_slice(&o);
    k
}

/// The key of an IPv6 address.
pub fn key_v6(o: [u8; 16]) -> IpKey {
    o
}

/// The key of an encoded socket address (`crate::addr`), for IPv4 and IPv6 only.
pub fn key_of(words: &[u64; ADDR_WORDS]) -> Option<IpKey> {
    match Addr::decode(words)? {
        Addr::V4(ip, _) => Some(key_v4(ip.octets())),
        Addr::V6(ip, _, _) => Some(key_v6(ip.octets())),
        _ => None,
    }
}

struct Entry {
    /// 0: never written; odd: being written; even: stable.
    seq: AtomicU32,
    ip: [AtomicU64; 2],
    len: AtomicU32,
    name: [AtomicU8; MAX_HOST_NAME],
}

/// The table (see the module docs).
pub struct Hosts {
    next: AtomicU32,
    entries: [Entry; MAX_HOSTS],
}

fn words(k: &IpKey) -> [u64; 2] {
    let mut a = [0u8; 8];
    let mut b = [0u8; 8];
    a.copy_from_slice(&k[..8]);
    b.copy_from_slice(&k[8..]);
    [u64::from_ne_bytes(a), u64::from_ne_bytes(b)]
}

impl Hosts {
    /// An empty table (all zeros).
    pub const fn new() -> Self {
        Hosts {
            next: AtomicU32::new(0),
            entries: [const {
                Entry {
                    seq: AtomicU32::new(0),
                    ip: [AtomicU64::new(0), AtomicU64::new(0)],
                    len: AtomicU32::new(0),
                    name: [const { AtomicU8::new(0) }; MAX_HOST_NAME],
                }
            }; MAX_HOSTS],
        }
    }

    /// Records that a lookup of `name` returned `ip`. A name that is empty or longer than
    /// [`MAX_HOST_NAME`] is not recorded. Never blocks: an entry another thread is writing at
    /// this instant is left to it.
    pub fn record(&self, name: &[u8], ip: IpKey) {
        if name.is_empty() || name.len() > MAX_HOST_NAME {
            return;
        }
        let w = words(&ip);
        let mut slot = None;
        for (i, e) in self.entries.iter().enumerate() {
            if let Some(same) = self.read_if(e, &w, |n| n == name) {
                if same {
                    return;
                }
                slot = Some(i);
                break;
            }
        }
        let i = slot.unwrap_or_else(|| self.next.fetch_add(1, Relaxed) as usize % MAX_HOSTS);
        let e = &self.entries[i];
        let s = e.seq.load(Relaxed);
        if s & 1 == 1 || e.seq.compare_exchange(s, s + 1, Acquire, Relaxed).is_err() {
            return;
        }
        fence(Release);
        e.ip[0].store(w[0], Relaxed);
        e.ip[1].store(w[1], Relaxed);
        e.len.store(name.len() as u32, Relaxed);
        for (d, b) in e.name.iter().zip(name) {
            d.store(*b, Relaxed);
        }
        e.seq.store(s + 2, Release);
    }

    /// Reads entry `e` if it is stable and holds `w`: `Some(f(name))`; `None` otherwise.
    fn read_if<R>(&self, e: &Entry, w: &[u64; 2], f: impl FnOnce(&[u8]) -> R) -> Option<R> {
        let s1 = e.seq.load(Acquire);
        if s1 == 0 || s1 & 1 == 1 {
            return None;
        }
        if e.ip[0].load(Relaxed) != w[0] || e.ip[1].load(Relaxed) != w[1] {
            return None;
        }
        let len = (e.len.load(Relaxed) as usize).min(MAX_HOST_NAME);
        let mut buf = [0u8; MAX_HOST_NAME];
        for (d, s) in buf.iter_mut().zip(&e.name[..len]) {
            *d = s.load(Relaxed);
        }
        fence(Acquire);
        (e.seq.load(Relaxed) == s1).then(|| f(&buf[..len]))
    }

    /// The name `ip` was looked up by, if it is in the table.
    pub fn name_of(&self, ip: &IpKey) -> Option<String> {
        let w = words(ip);
        // Only the slots ever taken: a reader in another process (the shipper, for each socket
        // it announces) would otherwise fault in the whole table of every region it maps. A
        // name recorded before the socket was registered is seen: the registration published it.
        self.entries[..self.used()]
            .iter()
            .find_map(|e| self.read_if(e, &w, |n| String::from_utf8_lossy(n).into_owned()))
    }

    /// The name of the peer at `addr` (an encoded socket address), if it was looked up.
    pub fn name_of_addr(&self, addr: &[u64; ADDR_WORDS]) -> Option<String> {
        self.name_of(&key_of(addr)?)
    }

    /// Copies every entry of `other` (a forked child's table starts with its parent's; the
    /// copy is made in a single-threaded moment).
    #[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
    pub fn copy_from(&self, other: &Hosts) {
        // Only the entries either table ever used (slots are taken in order), and of each name
        // only its bytes: a fork copies this table twice, and the whole of it is 70 KB.
        let used = self.used().max(other.used());
        self.next.keep(other.next.load(Relaxed), Relaxed);
        for (d, s) in self.entries[..used].iter().zip(&other.entries[..used]) {
            let seq = s.seq.load(Acquire);
            if seq == 0 || seq & 1 == 1 {
                // Never written, or caught mid-write: left empty.
                d.seq.keep(0, Release);
                continue;
            }
            d.ip[0].keep(s.ip[0].load(Relaxed), Relaxed);
            d.ip[1].keep(s.ip[1].load(Relaxed), Relaxed);
            let len = (s.len.load(Relaxed) as usize).min(MAX_HOST_NAME);
            d.len.keep(len as u32, Relaxed);
            for (a, b) in d.name[..len].iter().zip(&s.name[..len]) {
                a.keep(b.load(Relaxed), Relaxed);
            }
            d.seq.keep(seq, Release);
        }
    }

    /// Whether no name was ever recorded.
    pub fn is_empty(&self) -> bool {
        self.next.load(Acquire) == 0
    }

    /// How many slots were ever taken (they are taken in order, then reused round the ring).
    #[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
    fn used(&self) -> usize {
        (self.next.load(Acquire) as usize).min(MAX_HOSTS)
    }
}

impl Default for Hosts {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::{encode_v4, encode_v6};

    #[test]
    fn names_by_address_latest_wins_and_v4_mapped_is_v4() {
        static H: Hosts = Hosts::new();
        let lo = key_v4([127, 0, 0, 1]);
        assert_eq!(H.name_of(&lo), None);
        H.record(b"localhost", lo);
        H.record(b"localhost", key_v6(std::net::Ipv6Addr::LOCALHOST.octets()));
        assert_eq!(
            H.name_of_addr(&encode_v4([127, 0, 0, 1], 8080)).as_deref(),
            Some("localhost")
        );
        let mapped = std::net::Ipv4Addr::new(127, 0, 0, 1).to_ipv6_mapped().octets();
        assert_eq!(H.name_of_addr(&encode_v6(mapped, 80, 0)).as_deref(), Some("localhost"));
        assert_eq!(
            H.name_of_addr(&encode_v6(std::net::Ipv6Addr::LOCALHOST.octets(), 1, 0))
                .as_deref(),
            Some("localhost")
        );
        H.record(b"other.test", lo);
        assert_eq!(H.name_of(&lo).as_deref(), Some("other.test"), "the latest lookup wins");
        assert_eq!(H.next.load(Relaxed), 2, "updated in place, no new slot");
        H.record(b"", key_v4([1, 1, 1, 1]));
        H.record(&[b'a'; MAX_HOST_NAME + 1], key_v4([1, 1, 1, 1]));
        assert_eq!(
            H.name_of(&key_v4([1, 1, 1, 1])),
            None,
            "empty and too long are not kept"
        );
        H.record(&[b'b'; MAX_HOST_NAME], key_v4([1, 1, 1, 1]));
        assert_eq!(H.name_of(&key_v4([1, 1, 1, 1])).map(|n| n.len()), Some(MAX_HOST_NAME));
        let unix = crate::addr::encode_unix(b"/run/x", false, false);
        assert_eq!(H.name_of_addr(&unix), None);
    }

    #[test]
    fn a_full_ring_forgets_the_oldest_and_a_copy_keeps_all() {
        static H: Hosts = Hosts::new();
        static C: Hosts = Hosts::new();
        for i in 0..(MAX_HOSTS as u32 + 10) {
            H.record(format!("h{i}.test").as_bytes(), key_v4(i.to_be_bytes()));
        }
        assert_eq!(H.name_of(&key_v4(0u32.to_be_bytes())), None, "overwritten");
        assert_eq!(H.name_of(&key_v4(9u32.to_be_bytes())), None);
        assert_eq!(H.name_of(&key_v4(10u32.to_be_bytes())).as_deref(), Some("h10.test"));
        let last = MAX_HOSTS as u32 + 9;
        assert_eq!(H.name_of(&key_v4(last.to_be_bytes())), Some(format!("h{last}.test")));
        C.copy_from(&H);
        for i in 10..=last {
            assert_eq!(C.name_of(&key_v4(i.to_be_bytes())), Some(format!("h{i}.test")));
        }
    }

    #[test]
    fn writers_and_a_reader_at_once_never_see_a_torn_name() {
        let h: &'static Hosts = Box::leak(Box::new(Hosts::new()));
        let ip = key_v4([10, 0, 0, 1]);
        let names = ["a.example", "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb.example"];
        let writers: Vec<_> = (0..2)
            .map(|t| {
                std::thread::spawn(move || {
                    for i in 0..20_000 {
                        h.record(names[(i + t) % 2].as_bytes(), ip);
                    }
                })
            })
            .collect();
        // Reads for as long as the writers write (a scan is short: it must not end first).
        let mut seen = 0;
        while seen < 20_000 && writers.iter().any(|w| !w.is_finished()) {
            if let Some(n) = h.name_of(&ip) {
                assert!(names.contains(&n.as_str()), "torn: {n}");
                seen += 1;
            }
        }
        for w in writers {
            w.join().unwrap();
        }
        assert!(seen > 0 && h.name_of(&ip).is_some());
        let used = h.entries.iter().filter(|e| e.seq.load(Relaxed) != 0).count();
        assert!(
            used <= 2,
            "one address takes one entry (two, when a race adds it twice): {used}"
        );
    }
}
