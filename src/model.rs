//! The small vocabulary of the accounting model: address family, protocol, role and traffic
//! direction, each with a compact numeric form (stored in atomics by the hooks) and the
//! lower-case name the report and wire format use.

use serde::{Deserialize, Serialize};

macro_rules! named_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $var:ident = $num:literal => $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($(#[$vm])* $var = $num),+ }

        impl $name {
            /// The compact numeric form (what the hooks store).
            pub const fn code(self) -> u8 { self as u8 }
            /// Back from [`Self::code`]; unknown codes map to the first variant.
            pub const fn from_code(c: u8) -> Self {
                match c { $($num => Self::$var,)+ _ => first_variant!($(Self::$var),+) }
            }
            /// The name used in reports and on the wire.
            pub const fn as_str(self) -> &'static str { match self { $(Self::$var => $text),+ } }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str(self.as_str()) }
        }
    };
}

macro_rules! first_variant {
    ($first:expr $(, $rest:expr)*) => {
        $first
    };
}

named_enum! {
    /// Address family of a socket.
    #[derive(Default)]
    Family {
        /// Any family sockmeter does not meter in detail.
        #[default]
        Other = 0 => "other",
        /// IPv4.
        Inet = 1 => "inet",
        /// IPv6.
        Inet6 = 2 => "inet6",
        /// Unix domain.
        Unix = 3 => "unix",
    }
}

named_enum! {
    /// Transport protocol (for Unix sockets, the socket type).
    #[derive(Default)]
    Proto {
        /// Unknown or other.
        #[default]
        Other = 0 => "other",
        /// TCP (inet stream).
        Tcp = 1 => "tcp",
        /// UDP (inet datagram).
        Udp = 2 => "udp",
        /// Unix stream.
        Stream = 3 => "stream",
        /// Unix datagram.
        Dgram = 4 => "dgram",
        /// Sequenced packets (Unix or SCTP).
        Seqpacket = 5 => "seqpacket",
        /// Raw or ICMP sockets.
        Raw = 6 => "raw",
    }
}

named_enum! {
    /// What a socket is doing.
    #[derive(Default)]
    Role {
        /// Created, not yet connected, bound to listen, or known as a datagram endpoint.
        #[default]
        Unconnected = 0 => "unconnected",
        /// Connected by this process (connect).
        Connected = 1 => "connected",
        /// Returned by accept.
        Accepted = 2 => "accepted",
        /// Listening for connections.
        Listening = 3 => "listening",
        /// A datagram socket sending to or receiving from several peers (per-peer counts).
        Datagram = 4 => "datagram",
        /// The pseudo-socket that absorbs traffic when the socket table is full.
        Overflow = 5 => "overflow",
    }
}

named_enum! {
    /// How a loaded object (a module) came into the process.
    Load {
        /// Not known (an older shim, or an object the loader no longer lists).
        Unknown = 0 => "unknown",
        /// The program itself.
        Executable = 1 => "executable",
        /// A library the program was linked against (loaded at start).
        Linked = 2 => "linked",
        /// A library named in `LD_PRELOAD` (loaded at start, before the linked ones).
        Preloaded = 3 => "preloaded",
        /// Named in a `dlopen` call made by the program or a library framework: a plugin.
        Dlopen = 4 => "dlopen",
        /// Loaded at run time without being named in a `dlopen` call of the program: a
        /// dependency of a plugin, a library a plugin loaded for itself, or one libc loaded
        /// on its own (NSS, iconv).
        Dependency = 5 => "dependency",
    }
}

named_enum! {
    /// Through which interface the program made a socket: the BSD calls, or CoreFoundation's
    /// CFSocket (whose bytes still pass the BSD calls, and are counted there once).
    #[derive(Default)]
    SocketOrigin {
        /// `socket()`, `accept()`, ... (or recognised on first use).
        #[default]
        Bsd = 0 => "bsd",
        /// `CFSocketCreate*` (and sockets a CFSocket listener accepted).
        Cfsocket = 1 => "cfsocket",
    }
}

impl Family {
    /// Inet and inet6 sockets count in the totals; Unix ones only with `--unix`.
    pub const fn is_inet(self) -> bool {
        matches!(self, Family::Inet | Family::Inet6)
    }
}

/// Direction of traffic as seen by the metered process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    /// Sent by the process (tx).
    Tx,
    /// Received by the process (rx).
    Rx,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_unknown_codes_are_safe() {
        for r in [
            Role::Unconnected,
            Role::Connected,
            Role::Accepted,
            Role::Listening,
            Role::Datagram,
            Role::Overflow,
        ] {
            assert_eq!(Role::from_code(r.code()), r);
        }
        assert_eq!(Family::from_code(200), Family::Other);
        assert_eq!(Proto::Tcp.as_str(), "tcp");
        assert_eq!(serde_json::to_string(&Family::Inet6).unwrap(), "\"inet6\"");
    }
}
