//! The kernel as the witness: what a TCP socket's own counters say the program moved.
//!
//! Some bytes never pass a call sockmeter can hook: stdio on a socket (libc calls its own
//! `write`), io_uring, raw `syscall` instructions, a statically linked helper. For TCP the kernel
//! keeps counts of its own per socket (`getsockopt(TCP_INFO)`), and from them this module
//! derives exactly two numbers, at any moment of the socket's life:
//!
//! * **written**: every data byte the program handed to the socket, by any path, =
//!   `tcpi_bytes_sent - tcpi_bytes_retrans + tcpi_notsent_bytes`, less one when our FIN is
//!   queued but not sent yet (it sits in `notsent`). `bytes_sent` counts each transmission of
//!   data (SYN and FIN carry none), `bytes_retrans` the retransmissions among them, so their
//!   difference is every byte sent once; `notsent` is what is queued behind them (`write_seq -
//!   snd_nxt`, which includes a queued FIN).
//! * **read**: every data byte the program took out of the socket, by any path, =
//!   `tcpi_bytes_received - FIN - unread`, where `bytes_received` advances with the in-order
//!   receive point (`rcv_nxt`, which a received FIN advances by one) and `unread` is what is
//!   still queued for the program (`ioctl(FIONREAD)`, which already leaves the FIN out).
//!
//! Whether a FIN was queued or received follows from `tcpi_state`, except in `CLOSE` with the
//! descriptor still open: that is either an orderly end after our own `shutdown(SHUT_WR)` (both
//! FINs: the kernel moves the socket from FIN_WAIT2 straight to CLOSE when the peer's FIN
//! arrives) or a reset; the caller says whether the program shut its side down. The kernel
//! reads `tcpi_state` before it takes the socket's lock to read the counters, so a FIN that
//! arrives in between is counted while the state does not show it yet: a caller that depends
//! on it reads again until the state holds still across one reading (the shim's
//! `hooks/witness.rs`).
//!
//! The numbers are exact for what the kernel accepted and delivered, with limits stated in
//! docs/architecture.md: an allocation failure in the middle of a retransmission (memory
//! pressure) counts the retransmission without sending it, so **written** comes out short by
//! that segment (less unseen than there was, never more); a reset after `shutdown(SHUT_WR)` is
//! taken for an orderly end, so **read** comes out one byte short; and a socket in CLOSE that
//! never transmitted a byte has written nothing, as far as the witness is concerned (a failed
//! connect leaves a meaningless `notsent`; bytes queued behind a zero window and then reset are
//! not counted).

/// The TCP states of `tcpi_state` (include/net/tcp_states.h).
pub mod state {
    /// ESTABLISHED.
    pub const ESTABLISHED: u8 = 1;
    /// SYN_SENT.
    pub const SYN_SENT: u8 = 2;
    /// SYN_RECV.
    pub const SYN_RECV: u8 = 3;
    /// FIN_WAIT1: our FIN queued or sent, not acknowledged.
    pub const FIN_WAIT1: u8 = 4;
    /// FIN_WAIT2: our FIN acknowledged.
    pub const FIN_WAIT2: u8 = 5;
    /// TIME_WAIT.
    pub const TIME_WAIT: u8 = 6;
    /// CLOSE.
    pub const CLOSE: u8 = 7;
    /// CLOSE_WAIT: the peer's FIN received.
    pub const CLOSE_WAIT: u8 = 8;
    /// LAST_ACK: the peer's FIN received, ours sent.
    pub const LAST_ACK: u8 = 9;
    /// LISTEN.
    pub const LISTEN: u8 = 10;
    /// CLOSING: both FINs sent, ours not acknowledged.
    pub const CLOSING: u8 = 11;
}

/// The fields of a `struct tcp_info` the witness needs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpCounts {
    /// `tcpi_state`.
    pub state: u8,
    /// `tcpi_bytes_sent`: data bytes transmitted, retransmissions included (Linux 4.19+).
    pub bytes_sent: u64,
    /// `tcpi_bytes_retrans`: data bytes retransmitted (Linux 4.19+).
    pub bytes_retrans: u64,
    /// `tcpi_notsent_bytes`: queued, not yet transmitted (a queued FIN counts one).
    pub notsent_bytes: u64,
    /// `tcpi_bytes_received`: in-order bytes received (a received FIN counts one).
    pub bytes_received: u64,
}

/// `struct tcp_info` offsets (include/uapi/linux/tcp.h), fixed since the fields were added.
pub mod offsets {
    /// `tcpi_state` (u8).
    pub const STATE: usize = 0;
    /// `tcpi_bytes_received` (u64).
    pub const BYTES_RECEIVED: usize = 128;
    /// `tcpi_notsent_bytes` (u32).
    pub const NOTSENT_BYTES: usize = 144;
    /// `tcpi_bytes_sent` (u64).
    pub const BYTES_SENT: usize = 200;
    /// `tcpi_bytes_retrans` (u64).
    pub const BYTES_RETRANS: usize = 208;
    /// The shortest `tcp_info` that has every field above (Linux 4.19+).
    pub const NEEDED: usize = 216;
}

impl TcpCounts {
    /// Reads the fields from the first `len` bytes of a `struct tcp_info` the kernel filled
    /// (native byte order). None when it is too short (a kernel before 4.19).
    #[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
    pub fn parse(raw: &[u8]) -> Option<TcpCounts> {
        use offsets::*;
        if raw.len() < NEEDED {
            return None;
        }
        let u64_at = |o: usize| raw[o..o + 8].try_into().ok().map(u64::from_ne_bytes);
        let u32_at = |o: usize| raw[o..o + 4].try_into().ok().map(u32::from_ne_bytes);
        Some(TcpCounts {
            state: raw[STATE],
            bytes_sent: u64_at(BYTES_SENT)?,
            bytes_retrans: u64_at(BYTES_RETRANS)?,
            notsent_bytes: u64::from(u32_at(NOTSENT_BYTES)?),
            bytes_received: u64_at(BYTES_RECEIVED)?,
        })
    }

    /// Whether our FIN is queued (sent or not): the program shut down its sending side, or
    /// closed it in another process.
    fn fin_queued(&self, shut_wr: bool) -> bool {
        use state::*;
        matches!(self.state, FIN_WAIT1 | FIN_WAIT2 | CLOSING | LAST_ACK | TIME_WAIT) || (self.state == CLOSE && shut_wr)
    }

    /// Whether the peer's FIN was received (it is counted in `bytes_received`).
    pub fn fin_received(&self, shut_wr: bool) -> bool {
        use state::*;
        matches!(self.state, CLOSE_WAIT | LAST_ACK | CLOSING | TIME_WAIT) || (self.state == CLOSE && shut_wr)
    }

    /// Data bytes the program wrote to the socket, by any path. `shut_wr`: the program shut
    /// down its sending side (`shutdown(SHUT_WR)` or `SHUT_RDWR`).
    pub fn written(&self, shut_wr: bool) -> u64 {
        // A connect that failed (refused, timed out, interrupted) or a `connect(AF_UNSPEC)`
        // disconnects the socket: the kernel zeroes its byte counters and moves `write_seq`
        // on by the peer's largest window plus two without touching `snd_nxt`, so `notsent`
        // then counts nothing the program wrote. A closed socket that never sent a byte has
        // written none that the kernel can vouch for.
        if self.state == state::CLOSE && self.bytes_sent == 0 {
            return 0;
        }
        let once = self.bytes_sent.saturating_sub(self.bytes_retrans);
        // A FIN waiting in the queue is in notsent; everything queued is before it, so any
        // notsent at all means the FIN has not gone out.
        let fin_waiting = u64::from(self.notsent_bytes > 0 && self.fin_queued(shut_wr));
        once + self.notsent_bytes - fin_waiting
    }

    /// Data bytes that arrived in order: what the program has read plus what it has not read
    /// yet.
    pub fn arrived(&self, shut_wr: bool) -> u64 {
        self.bytes_received
            .saturating_sub(u64::from(self.fin_received(shut_wr)))
    }

    /// Data bytes the program read from the socket, by any path, given `unread` (FIONREAD).
    pub fn read(&self, shut_wr: bool, unread: u64) -> u64 {
        self.arrived(shut_wr).saturating_sub(unread)
    }
}

#[cfg(test)]
mod tests {
    use super::state::*;
    use super::*;

    /// The numbers `getsockopt(TCP_INFO)` and FIONREAD gave on Linux 6.x for a loopback
    /// connection (a client that wrote 1000 bytes, shut down, and got 50 back; its server),
    /// at each step.
    #[test]
    fn the_formulas_on_the_kernels_own_numbers() {
        let c = |state, sent, notsent, received| TcpCounts {
            state,
            bytes_sent: sent,
            bytes_retrans: 0,
            notsent_bytes: notsent,
            bytes_received: received,
        };
        // Fresh: nothing either way.
        assert_eq!(c(ESTABLISHED, 0, 0, 0).written(false), 0);
        // The client wrote 1000, the server read 300 of them (700 unread).
        assert_eq!(c(ESTABLISHED, 1000, 0, 0).written(false), 1000);
        assert_eq!(c(ESTABLISHED, 0, 0, 1000).read(false, 700), 300);
        // The client shut down (FIN_WAIT2); the server got the FIN (CLOSE_WAIT): bytes_received
        // 1001, FIONREAD still 700 (the FIN is not data).
        assert_eq!(c(FIN_WAIT2, 1000, 0, 0).written(true), 1000);
        assert_eq!(c(CLOSE_WAIT, 0, 0, 1001).read(false, 700), 300);
        assert_eq!(c(CLOSE_WAIT, 0, 0, 1001).read(false, 0), 1000);
        // The server sent 50 and closed: the client, shut down, is in CLOSE with its fd open;
        // bytes_received 51 (the FIN), 50 unread, then 40 after reading 10.
        assert_eq!(c(CLOSE, 1000, 0, 51).read(true, 50), 0);
        assert_eq!(c(CLOSE, 1000, 0, 51).read(true, 40), 10);
        // The same CLOSE after a reset, without a shutdown: no FIN in the count.
        assert_eq!(c(CLOSE, 1000, 0, 50).read(false, 40), 10);
    }

    #[test]
    fn a_failed_connect_wrote_nothing() {
        // Linux 6.x after connect() to a port nobody listens on: CLOSE, counters zeroed,
        // notsent 2 (write_seq moved on by max_window 0 + 2).
        let t = TcpCounts {
            state: CLOSE,
            bytes_sent: 0,
            bytes_retrans: 0,
            notsent_bytes: 2,
            bytes_received: 0,
        };
        assert_eq!((t.written(false), t.read(false, 0)), (0, 0));
    }

    #[test]
    fn queued_data_counts_and_a_queued_fin_does_not() {
        // 3000 written, 1000 sent, 2000 queued: no FIN.
        let t = TcpCounts {
            state: ESTABLISHED,
            bytes_sent: 1000,
            bytes_retrans: 0,
            notsent_bytes: 2000,
            bytes_received: 0,
        };
        assert_eq!(t.written(false), 3000);
        // Shut down with the 2000 still queued: the FIN is behind them (notsent 2001).
        let t = TcpCounts {
            state: FIN_WAIT1,
            notsent_bytes: 2001,
            ..t
        };
        assert_eq!(t.written(true), 3000);
        // Everything sent, the FIN too: notsent 0.
        let t = TcpCounts {
            bytes_sent: 3000,
            notsent_bytes: 0,
            ..t
        };
        assert_eq!(t.written(true), 3000);
        // Retransmissions are sent bytes that were written once.
        let t = TcpCounts {
            bytes_sent: 4460,
            bytes_retrans: 1460,
            ..t
        };
        assert_eq!(t.written(true), 3000);
    }

    #[test]
    fn parse_reads_the_fields_at_their_offsets() {
        let mut raw = vec![0u8; 232];
        raw[0] = CLOSE_WAIT;
        raw[128..136].copy_from_slice(&51u64.to_ne_bytes());
        raw[144..148].copy_from_slice(&7u32.to_ne_bytes());
        raw[200..208].copy_from_slice(&1000u64.to_ne_bytes());
        raw[208..216].copy_from_slice(&3u64.to_ne_bytes());
        assert_eq!(
            TcpCounts::parse(&raw),
            Some(TcpCounts {
                state: CLOSE_WAIT,
                bytes_sent: 1000,
                bytes_retrans: 3,
                notsent_bytes: 7,
                bytes_received: 51,
            })
        );
        assert_eq!(TcpCounts::parse(&raw[..215]), None, "a kernel before 4.19");
    }
}
