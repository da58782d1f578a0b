//! Socket addresses as the report shows them, and their fixed-size encoding.
//!
//! The hooks must record a peer or local address without allocating, into atomics that the
//! reporting thread reads later. An [`Addr`] is therefore encoded into [`ADDR_WORDS`] `u64`
//! words ([`Addr::encode`]) and decoded back ([`Addr::decode`]). IPv4 and IPv6 addresses fit
//! exactly; a Unix-domain path longer than [`UNIX_PATH_MAX`] bytes is kept truncated and shown
//! with a trailing `…`.
//!
//! Text forms: `127.0.0.1:8080`, `[::1]:8080` (with `%scope` when the scope id is not zero),
//! `/run/app.sock`, `@abstract-name` and `(unnamed)` for a Unix socket with no name.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

/// How many `u64` words an encoded address takes.
pub const ADDR_WORDS: usize = 5;
/// The longest Unix-domain path kept whole.
pub const UNIX_PATH_MAX: usize = (ADDR_WORDS - 1) * 8;

/// A socket address, as far as accounting cares.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Addr {
    /// An IPv4 address and port.
    V4(Ipv4Addr, u16),
    /// An IPv6 address, port and scope id.
    V6(Ipv6Addr, u16, u32),
    /// A Unix-domain path (possibly truncated) and whether it was truncated.
    Unix(Vec<u8>, bool),
    /// A Linux abstract Unix-domain name (without the leading NUL), possibly truncated.
    Abstract(Vec<u8>, bool),
    /// A Unix-domain socket with no name (socketpair, unbound client).
    Unnamed,
}

const TAG_NONE: u64 = 0;
const TAG_V4: u64 = 1;
const TAG_V6: u64 = 2;
const TAG_UNIX: u64 = 3;
const TAG_ABSTRACT: u64 = 4;
const TAG_UNNAMED: u64 = 5;
const TRUNCATED: u64 = 1 << 7;

impl Addr {
    /// Encodes the address into words; `[0; ADDR_WORDS]` means "no address".
    pub fn encode(&self) -> [u64; ADDR_WORDS] {
        match self {
            Addr::V4(ip, port) => encode_v4(ip.octets(), *port),
            Addr::V6(ip, port, scope) => encode_v6(ip.octets(), *port, *scope),
            Addr::Unix(path, truncated) => encode_unix(path, false, *truncated),
            Addr::Abstract(path, truncated) => encode_unix(path, true, *truncated),
            Addr::Unnamed => encode_unix(&[], false, false),
        }
    }

    /// Decodes words written by [`Addr::encode`]; `None` for "no address" or garbage.
    pub fn decode(w: &[u64; ADDR_WORDS]) -> Option<Addr> {
        match w[0] & 0x7f {
            TAG_NONE => None,
            TAG_V4 => Some(Addr::V4(Ipv4Addr::from(w[1] as u32), (w[0] >> 8) as u16)),
            TAG_V6 => {
                let mut o = [0u8; 16];
                o[..8].copy_from_slice(&w[1].to_be_bytes());
                o[8..].copy_from_slice(&w[2].to_be_bytes());
                Some(Addr::V6(Ipv6Addr::from(o), (w[0] >> 8) as u16, (w[0] >> 32) as u32))
            }
            tag @ (TAG_UNIX | TAG_ABSTRACT) => {
                let len = ((w[0] >> 8) as usize & 0xff).min(UNIX_PATH_MAX);
                let path: Vec<u8> = (0..len).map(|i| (w[1 + i / 8] >> ((i % 8) * 8)) as u8).collect();
                let trunc = w[0] & TRUNCATED != 0;
                Some(if tag == TAG_UNIX {
                    Addr::Unix(path, trunc)
                } else {
                    Addr::Abstract(path, trunc)
                })
            }
            TAG_UNNAMED => Some(Addr::Unnamed),
            _ => None,
        }
    }
}

/// Encodes an IPv4 address (octets in network order) without allocating.
pub const fn encode_v4(octets: [u8; 4], port: u16) -> [u64; ADDR_WORDS] {
    [TAG_V4 | (port as u64) << 8, u32::from_be_bytes(octets) as u64, 0, 0, 0]
}

/// Encodes an IPv6 address without allocating.
pub fn encode_v6(o: [u8; 16], port: u16, scope: u32) -> [u64; ADDR_WORDS] {
    let mut hi = [0u8; 8];
    let mut lo = [0u8; 8];
    hi.copy_from_slice(&o[..8]);
    lo.copy_from_slice(&o[8..]);
    [
        TAG_V6 | u64::from(port) << 8 | u64::from(scope) << 32,
        u64::from_be_bytes(hi),
        u64::from_be_bytes(lo),
        0,
        0,
    ]
}

/// Encodes a Unix-domain name (a path, or an abstract name without its leading NUL; an empty
/// path is an unnamed socket) without allocating.
pub fn encode_unix(path: &[u8], abstract_name: bool, truncated: bool) -> [u64; ADDR_WORDS] {
    let mut w = [0u64; ADDR_WORDS];
    if path.is_empty() && !abstract_name {
        w[0] = TAG_UNNAMED;
        return w;
    }
    let tag = if abstract_name { TAG_ABSTRACT } else { TAG_UNIX };
    let len = path.len().min(UNIX_PATH_MAX);
    let trunc = truncated || path.len() > UNIX_PATH_MAX;
    w[0] = tag | if trunc { TRUNCATED } else { 0 } | ((len as u64) << 8);
    for (i, b) in path.iter().take(len).enumerate() {
        w[1 + i / 8] |= u64::from(*b) << ((i % 8) * 8);
    }
    w
}

impl Addr {
    /// The address as text, the same as its `Display`, without the formatting machinery on the
    /// common IPv4 path: a pass writes one or two addresses per socket, and `Ipv4Addr`'s
    /// `Display` was most of the collector's cost per short connection (~3,700 instructions of
    /// ~20,000 per socket under callgrind; docs/benchmarks.md).
    pub fn text(&self) -> String {
        match self {
            Addr::V4(ip, port) => {
                let mut s = String::with_capacity(21);
                for (i, o) in ip.octets().into_iter().enumerate() {
                    if i > 0 {
                        s.push('.');
                    }
                    push_decimal(&mut s, u32::from(o));
                }
                s.push(':');
                push_decimal(&mut s, u32::from(*port));
                s
            }
            other => other.to_string(),
        }
    }
}

/// Appends `n` in decimal.
fn push_decimal(s: &mut String, n: u32) {
    s.push_str(itoa::Buffer::new().format(n));
}

impl fmt::Display for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Addr::V4(ip, port) => write!(f, "{ip}:{port}"),
            Addr::V6(ip, port, 0) => write!(f, "[{ip}]:{port}"),
            Addr::V6(ip, port, scope) => write!(f, "[{ip}%{scope}]:{port}"),
            Addr::Unix(p, t) => write!(f, "{}{}", String::from_utf8_lossy(p), if *t { "…" } else { "" }),
            Addr::Abstract(p, t) => {
                write!(f, "@{}{}", String::from_utf8_lossy(p), if *t { "…" } else { "" })
            }
            Addr::Unnamed => f.write_str("(unnamed)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let cases = [
            Addr::V4(Ipv4Addr::new(127, 0, 0, 1), 8080),
            Addr::V6(Ipv6Addr::LOCALHOST, 443, 0),
            Addr::V6("fe80::1".parse().unwrap(), 1, 7),
            Addr::Unix(b"/run/x.sock".to_vec(), false),
            Addr::Abstract(b"bus".to_vec(), false),
            Addr::Unnamed,
        ];
        for a in cases {
            assert_eq!(Addr::decode(&a.encode()), Some(a.clone()), "{a}");
        }
        assert_eq!(Addr::decode(&[0; ADDR_WORDS]), None);
    }

    proptest::proptest! {
        #[test]
        fn text_is_the_display(a in proptest::prelude::any::<[u8; 4]>(), port in proptest::prelude::any::<u16>(),
                               b in proptest::prelude::any::<[u8; 16]>(), scope in 0u32..3) {
            let v4 = Addr::V4(Ipv4Addr::from(a), port);
            proptest::prop_assert_eq!(v4.text(), v4.to_string());
            let v6 = Addr::V6(Ipv6Addr::from(b), port, scope);
            proptest::prop_assert_eq!(v6.text(), v6.to_string());
        }
    }

    #[test]
    fn text_of_the_edges() {
        for (a, port, text) in [
            ([0, 0, 0, 0], 0, "0.0.0.0:0"),
            ([255, 255, 255, 255], 65535, "255.255.255.255:65535"),
            ([10, 0, 20, 100], 80, "10.0.20.100:80"),
        ] {
            assert_eq!(Addr::V4(Ipv4Addr::from(a), port).text(), text);
        }
    }

    #[test]
    fn long_unix_paths_are_truncated_visibly() {
        let long = vec![b'a'; 100];
        let d = Addr::decode(&Addr::Unix(long, false).encode()).unwrap();
        assert_eq!(d, Addr::Unix(vec![b'a'; UNIX_PATH_MAX], true));
        assert!(d.to_string().ends_with('…'));
    }

    #[test]
    fn text_forms() {
        assert_eq!(Addr::V4(Ipv4Addr::LOCALHOST, 80).to_string(), "127.0.0.1:80");
        assert_eq!(Addr::V6(Ipv6Addr::LOCALHOST, 80, 0).to_string(), "[::1]:80");
        assert_eq!(Addr::Abstract(b"x".to_vec(), false).to_string(), "@x");
    }
}
