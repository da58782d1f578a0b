//! The kernel as the witness (TCP): what a socket's own counters say the program wrote and
//! read, by any path (`sockmeter::witness` has the formulas), read at the last moments the
//! shim can still ask:
//!
//! * just before the close that releases a socket in this process (`close`, `close_range`,
//!   `closefrom`, `dup2`/`dup3` over it): one `getsockopt(TCP_INFO)` when the hooks have seen
//!   everything that arrived read (a lower bound of what they counted is in the record:
//!   [`Record::seen_at_least`]); otherwise a few more calls (FIONREAD, a second reading: see
//!   [`kernel_now`]);
//! * at exit (`exit`, a return from `main`, `_exit`, `_Exit`, `syscall(SYS_exit_group)`) and
//!   before exec, for every TCP socket still open;
//! * a TCP socket the shim never saw until its close (inherited, made by a raw system call)
//!   is recognised there and read too, counted from its creation.
//!
//! The reporting side compares the numbers with what the hooks counted and reports the
//! difference as `unseen_tx_bytes` / `unseen_rx_bytes`. The numbers cover what the socket
//! moved since the shim began counting it in this process image: for a socket seen being
//! created, its whole life; for one recognised on first use, from then on (the *base*, read
//! at that moment); for one inherited across fork, from the fork (read in the child). A parent
//! does not witness a socket that was open when it forked: the kernel's counts are per socket,
//! and every process holding it adds to them.
//!
//! Nothing here is on the per-byte path.

use libc::c_int;
use sockmeter::model::{Dir, Proto, Role};
use sockmeter::registry::{FdState, Record, RecordState, FLAG_NO_WITNESS, FLAG_SHUT_WR, FLAG_WITNESSED, OVERFLOW};

use sockmeter::witness::TcpCounts;

use crate::platform;
use crate::runtime::{self, reg};

/// Runs `f` and puts errno back as it was: the witness runs in the before-part of close and
/// its kin, where a failed `getsockopt` (ENOTSOCK, on a file the shim never saw) would
/// otherwise be what a successful close leaves in errno.
fn keeping_errno<R>(f: impl FnOnce() -> R) -> R {
    let e = platform::errno();
    let r = f();
    platform::set_errno(e);
    r
}

/// Whether `rec` is a socket the witness reads: TCP, not listening, not shared across a fork.
fn eligible(rec: &Record) -> bool {
    rec.proto() == Proto::Tcp && rec.role() != Role::Listening && !rec.has_flag(FLAG_NO_WITNESS)
}

/// A reading of `fd`'s counters that agrees with its state. The kernel reads `tcpi_state`
/// before it locks the socket to read the counters, so a FIN that arrives in between (the
/// peer closing as the program closes: common with short connections) is counted in
/// `bytes_received` while the state does not show it. That only matters when the FIN would
/// decide the result: when, by the state, no FIN came and more arrived than the hooks saw read
/// (`read_at_least`); or when `force`d. Then the counters are read again until the state is the
/// same before and after one reading (at most a few times; none if it never holds still).
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
fn kernel_now(fd: c_int, shut_wr: bool, read_at_least: u64) -> Option<[u64; 2]> {
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
fn read(fd: c_int, rec: &Record) {
    if !eligible(rec) {
        return;
    }
    let seen = rec.seen_at_least();
    let base = rec.witness_base();
    let Some(k) = kernel_now(fd, rec.has_flag(FLAG_SHUT_WR), base[1] + seen[1]) else {
        return;
    };
    let w = [k[0].saturating_sub(base[0]), k[1].saturating_sub(base[1])];
    // With kernel TLS the kernel counts TLS records, not the program's bytes: no witness.
    // Asked only when the numbers differ (one more getsockopt).
    if (w[0] > seen[0] || w[1] > seen[1]) && platform::kernel_tls(fd) {
        rec.set_flag(FLAG_NO_WITNESS);
        return;
    }
    rec.set_witness(w);
    runtime::notify();
}

/// Before a close of `fd`, which was `was`: when it is the socket's last fd in this process,
/// the witness is read; an fd the shim has never seen is asked whether it is a TCP socket
/// (one `getsockopt`) and, if so, registered and read. Returns what `fd` is now.
pub fn before_close(fd: c_int, was: FdState) -> FdState {
    keeping_errno(|| before_close_inner(fd, was))
}

fn before_close_inner(fd: c_int, was: FdState) -> FdState {
    match was {
        FdState::Record(idx) if idx != OVERFLOW => {
            let rec = reg().records.get(idx);
            if rec.refs() <= 1 {
                read(fd, rec);
            }
            was
        }
        FdState::Unknown => met_at_close(fd),
        _ => was,
    }
}

/// A TCP socket the shim never saw before its close (inherited, or made by a raw system
/// call): registered as adopted and read, counted since the socket was created.
#[cold]
fn met_at_close(fd: c_int) -> FdState {
    // One system call answers both: is it a TCP socket, and what it moved.
    if platform::tcp_counts(fd).is_none() {
        return FdState::Unknown;
    }
    let Some(idx) = super::lifecycle::recognise(fd) else {
        return FdState::Unknown;
    };
    read(fd, reg().records.get(idx));
    FdState::Record(idx)
}

/// Before `close_range`/`closefrom` over `first..=last`: reads every TCP socket there (a
/// socket with another fd outside the range is read again at its last close).
pub fn before_close_span(first: u32, last: u32) {
    keeping_errno(|| {
        reg().fds.for_each_record_in(first, last, |fd, idx| {
            if idx != OVERFLOW {
                read(fd, reg().records.get(idx));
            }
        })
    });
}

/// The starting point of a socket recognised on first use, inside a call that just moved
/// `bytes` in `dir` (the kernel's count already has them; the hooks count them too).
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

/// At exit (and before exec): reads every TCP socket still open. `flush`: first write out the
/// stdio streams on those sockets (at `exit`, where libc would do it a moment later anyway),
/// so bytes a program left in a `FILE` on a socket are in the kernel's count.
pub fn at_exit(flush: bool) {
    keeping_errno(|| at_exit_inner(flush));
}

fn at_exit_inner(flush: bool) {
    let open_tcp = |fd: c_int| match reg().fds.get(fd) {
        FdState::Record(idx) if idx != OVERFLOW => {
            let rec = reg().records.get(idx);
            rec.state() == RecordState::Open && eligible(rec)
        }
        _ => false,
    };
    if flush {
        platform::flush_stdio_on(open_tcp);
    }
    reg().fds.for_each_record_in(0, u32::MAX, |fd, _| {
        if let FdState::Record(idx) = reg().fds.get(fd) {
            if open_tcp(fd) {
                read(fd, reg().records.get(idx));
            }
        }
    });
}

/// In the parent, before a fork: every TCP socket open now is shared with the child from here
/// on, and the kernel's counts of it will be both processes' together: no witness for it here.
pub fn before_fork() {
    let records = &reg().records;
    for idx in 1..records.high_water() {
        let rec = records.get(idx);
        if rec.state() == RecordState::Open && rec.proto() == Proto::Tcp {
            rec.set_flag(FLAG_NO_WITNESS);
        }
    }
}

/// In a forked child: each inherited TCP socket is witnessed from the fork on (its base is
/// read now; the counters started from zero).
pub fn after_fork_child() {
    keeping_errno(after_fork_child_inner);
}

fn after_fork_child_inner() {
    reg().fds.for_each_record_in(0, u32::MAX, |fd, idx| {
        let rec = reg().records.get(idx);
        if idx == OVERFLOW || rec.state() != RecordState::Open || rec.proto() != Proto::Tcp {
            return;
        }
        if rec.has_flag(FLAG_WITNESSED) || !rec.has_flag(FLAG_NO_WITNESS) {
            return; // done through another of its fds
        }
        rec.clear_flag(FLAG_NO_WITNESS);
        if !eligible(rec) {
            return;
        }
        match kernel_now(fd, rec.has_flag(FLAG_SHUT_WR), 0) {
            Some(k) => rec.set_witness_base(k),
            None => rec.set_flag(FLAG_NO_WITNESS),
        }
    });
}
