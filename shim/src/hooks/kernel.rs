//! The kernel's own TCP counters, read (see `witness.rs` for when, and `sockmeter::witness`
//! for the formulas): one reading that agrees with the socket's state, what the program has
//! written and read since the socket was created, and a socket's starting point when the shim
//! meets it on first use. Used by `sockets` (a socket recognised on first use) and by `witness`
//! (close, exit, exec, fork); calls no family of handlers.
//!
//! Nothing here is on the per-byte path.

use libc::c_int;
use sockmeter::model::{Dir, Proto, Role};
use sockmeter::registry::{Record, FLAG_NO_WITNESS, FLAG_SHUT_WR};

use sockmeter::witness::TcpCounts;

use crate::platform;
use crate::runtime;

/// Runs `f` and puts errno back as it was: the witness runs in the before-part of close and
/// its kin, where a failed `getsockopt` (ENOTSOCK, on a file the shim never saw) would
/// otherwise be what a successful close leaves in errno.
pub fn keeping_errno<R>(f: impl FnOnce() -> R) -> R {
    let e = platform::errno();
    let r = f();
    platform::set_errno(e);
    r
}

/// Whether `rec` is a socket the witness reads: TCP, not listening, not shared across a fork.
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
pub fn eligible(rec: &Record) -> bool {
    rec.proto() == Proto::Tcp && rec.role() != Role::Listening && !rec.has_flag(FLAG_NO_WITNESS)
}

/// A reading of `fd`'s counters that agrees with its state. The kernel reads `tcpi_state`
/// before it locks the socket to read the counters, so a FIN that arrives in between (the
/// peer closing as the program closes: common with short connections) is counted in
/// `bytes_received` while the state does not show it. That only matters when the FIN would
/// decide the result: when, by the state, no FIN came and more arrived than the hooks saw read
/// (`read_at_least`); or when `force`d. Then the counters are read again until the state is the
/// same before and after one reading (at most a few times; none if it never holds still).
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
fn settled(fd: c_int, shut_wr: bool, read_at_least: u64, force: bool) -> Option<TcpCounts> {
    let mut t = platform::tcp_counts(fd)?;
    if !force && (t.fin_received(shut_wr) || t.arrived(shut_wr) <= read_at_least) {
        return Some(t);
    }
    for _ in 0..4 {
        let next = platform::tcp_counts(fd)?;
        if next.state == t.state {
            return Some(t);
        }
        t = next;
    }
    None
}

/// What the kernel says the program has written and read on `fd` (absolute, since the socket
/// was created). `read_at_least`: a lower bound of what was read; when it already accounts
/// for every byte that arrived, nothing can be unread: one `getsockopt`, no FIONREAD.
/// Otherwise FIONREAD is asked on both sides of a settled reading, until nothing arrived in
/// between (the program is closing, but the peer may still be sending).
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
pub fn kernel_now(fd: c_int, shut_wr: bool, read_at_least: u64) -> Option<[u64; 2]> {
    let t = settled(fd, shut_wr, read_at_least, false)?;
    let arrived = t.arrived(shut_wr);
    if arrived <= read_at_least {
        return Some([t.written(shut_wr), arrived]);
    }
    for _ in 0..4 {
        let before = platform::unread_bytes(fd)?;
        let t = settled(fd, shut_wr, read_at_least, true)?;
        let after = platform::unread_bytes(fd)?;
        if before == after {
            return Some([t.written(shut_wr), t.read(shut_wr, after)]);
        }
    }
    None
}

/// Reads the witness of `rec` through `fd` and stores it (since the record's base).
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
pub fn read(fd: c_int, rec: &Record) {
    if let Some(w) = reading(fd, rec, 0) {
        store(rec, w);
    }
}

/// The witness of `rec` through `fd` (since the record's base), with `pending` bytes more
/// written that no hook will see (a stream's buffer that `fclose` is about to write). None
/// when the socket has none: not eligible, no reading that holds still, or kernel TLS.
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
pub fn reading(fd: c_int, rec: &Record, pending: u64) -> Option<[u64; 2]> {
    if !eligible(rec) {
        return None;
    }
    let seen = rec.seen_at_least();
    let base = rec.witness_base();
    let k = kernel_now(fd, rec.has_flag(FLAG_SHUT_WR), base[1] + seen[1])?;
    let w = [(k[0] + pending).saturating_sub(base[0]), k[1].saturating_sub(base[1])];
    // With kernel TLS the kernel counts TLS records, not the program's bytes: no witness.
    // Asked only when the numbers differ (one more getsockopt).
    if (w[0] > seen[0] || w[1] > seen[1]) && platform::kernel_tls(fd) {
        rec.set_flag(FLAG_NO_WITNESS);
        return None;
    }
    Some(w)
}

/// Stores a witness [`reading`] took; the next pass announces it.
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
pub fn store(rec: &Record, w: [u64; 2]) {
    rec.set_witness(w);
    runtime::notify();
}

/// The starting point of a socket recognised on first use, inside a call that just moved
/// `bytes` in `dir` (the kernel's count already has them; the hooks count them too).
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
pub fn base_on_first_use(fd: c_int, rec: &Record, dir: Dir, bytes: u64) {
    if !eligible(rec) {
        return;
    }
    if let Some(k) = keeping_errno(|| kernel_now(fd, false, 0)) {
        rec.set_witness_base(k);
        unbase(rec, dir, bytes);
    }
}

/// A socket recognised on first use inside a batch call whose bytes are only known after it
/// was recognised (sendmmsg, recvmmsg): those bytes leave the starting point.
pub fn unbase(rec: &Record, dir: Dir, bytes: u64) {
    let mut b = rec.witness_base();
    let i = match dir {
        Dir::Tx => 0,
        Dir::Rx => 1,
    };
    b[i] = b[i].saturating_sub(bytes);
    rec.set_witness_base(b);
}
