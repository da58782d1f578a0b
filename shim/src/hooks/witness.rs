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
//! at that moment); for one inherited across fork, from the fork (read in the child). A socket
//! open across a fork is marked shared in both processes: the kernel's counts are per socket,
//! and every process holding it adds to them, so the reporter, which sees every holder, works
//! out what no hook saw over all of them (`sockmeter::holders`).
//!
//! Nothing here is on the per-byte path.

use libc::c_int;
use sockmeter::model::Proto;
use sockmeter::registry::{
    FdState, Record, RecordState, FLAG_NO_WITNESS, FLAG_REBASE, FLAG_SHARED, FLAG_SHUT_WR, OVERFLOW,
};

use super::kernel::{eligible, keeping_errno, kernel_now, read, reading, store};
use super::sockets;
use crate::platform;
use crate::runtime::reg;

/// Before a close of `fd`, which was `was`: when it is the socket's last fd in this process,
/// the witness is read; an fd the shim has never seen is asked whether it is a TCP socket
/// (one `getsockopt`) and, if so, registered and read. Returns what `fd` is now.
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
pub fn before_close(fd: c_int, was: FdState) -> FdState {
    keeping_errno(|| before_close_inner(fd, was))
}

#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
fn before_close_inner(fd: c_int, was: FdState) -> FdState {
    match was {
        FdState::Unknown => met_at_close(fd),
        _ => {
            if let Some((_, rec)) = last_fd(was) {
                read(fd, rec);
            }
            was
        }
    }
}

/// The record of an fd that was `was`, when that fd is the socket's last in this process.
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
fn last_fd(was: FdState) -> Option<(u32, &'static Record)> {
    let FdState::Record(idx) = was else { return None };
    let rec = reg().records.get(idx);
    (idx != OVERFLOW && rec.refs() <= 1).then_some((idx, rec))
}

/// A TCP socket the shim never saw before its close (inherited, or made by a raw system
/// call): registered as adopted and read, counted since the socket was created.
#[cold]
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
fn met_at_close(fd: c_int) -> FdState {
    // One system call answers both: is it a TCP socket, and what it moved.
    if platform::tcp_counts(fd).is_none() {
        return FdState::Unknown;
    }
    let Some(idx) = sockets::recognise(fd) else {
        return FdState::Unknown;
    };
    read(fd, reg().records.get(idx));
    FdState::Record(idx)
}

/// Before `fclose` of a stream on `fd`, which was `was`: when it is the socket's last fd in
/// this process, its witness as it will be once `fclose` has written the `pending` bytes the
/// stream holds (libc writes them itself: no hook sees them). [`after_fclose`] stores it only
/// when `fclose` succeeded, so that every pending byte was written. (coreutils close stdout
/// with `fclose` at exit: `cat file > /dev/tcp/...` had no witness.)
pub fn before_fclose(fd: c_int, was: FdState, pending: Option<u64>) -> Option<(u32, [u64; 2])> {
    keeping_errno(|| {
        let (idx, rec) = last_fd(was)?;
        Some((idx, reading(fd, rec, pending?)?))
    })
}

/// After `fclose` returned `ret`: the witness [`before_fclose`] took, if it succeeded.
pub fn after_fclose(taken: Option<(u32, [u64; 2])>, ret: c_int) {
    if let (Some((idx, w)), 0) = (taken, ret) {
        store(reg().records.get(idx), w);
    }
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

/// At exit (and before exec): reads every TCP socket still open. `flush`: first write out the
/// stdio streams on those sockets (at `exit`, where libc would do it a moment later anyway),
/// so bytes a program left in a `FILE` on a socket are in the kernel's count.
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
pub fn at_exit(flush: bool) {
    keeping_errno(|| at_exit_inner(flush));
}

#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
fn at_exit_inner(flush: bool) {
    // A process that never had a socket has nothing to witness (and its exit touches no page
    // of the tables).
    if reg().records.high_water() <= 1 {
        return;
    }
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
/// on, and the kernel's counts of it will be both processes' together. Each process still
/// reads its witness (the reporter weighs the holders against each other: `sockmeter::holders`);
/// the child reads its base at the fork.
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
pub fn before_fork() {
    let records = &reg().records;
    for idx in 1..records.high_water() {
        let rec = records.get(idx);
        if rec.state() == RecordState::Open && rec.proto() == Proto::Tcp {
            // Announced with its witness (read at its close, exit or exec).
            rec.set_flag(FLAG_SHARED | FLAG_REBASE);
        }
    }
}

/// The socket of record `idx` may be open in another process from now on (a vfork child
/// duplicated it for the program it is about to run, or a spawn's file actions will): shared.
pub fn shared_with_another(idx: u32) {
    if idx != OVERFLOW {
        let rec = reg().records.get(idx);
        if rec.proto() == Proto::Tcp {
            rec.set_flag(FLAG_SHARED);
        }
    }
}

/// Before a program is started with this process's fds (`posix_spawn`, or an exec in a vfork
/// child, whose memory is its parent's): every TCP socket whose fd is not close-on-exec will be
/// open in that program too. One `fcntl` per TCP socket, on this path only.
pub fn before_spawn() {
    keeping_errno(|| {
        reg().fds.for_each_record_in(0, u32::MAX, |fd, idx| {
            if idx == OVERFLOW || reg().records.get(idx).proto() != Proto::Tcp {
                return;
            }
            // SAFETY: F_GETFD on an fd number; a closed one gives EBADF.
            let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
            if flags >= 0 && flags & libc::FD_CLOEXEC == 0 {
                shared_with_another(idx);
            }
        })
    });
}

/// In a forked child: each inherited TCP socket is witnessed from the fork on (its base is
/// read now; the counters started from zero).
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
pub fn after_fork_child() {
    keeping_errno(after_fork_child_inner);
}

#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
fn after_fork_child_inner() {
    reg().fds.for_each_record_in(0, u32::MAX, |fd, idx| {
        let rec = reg().records.get(idx);
        if idx == OVERFLOW || rec.state() != RecordState::Open || !rec.has_flag(FLAG_REBASE) {
            return; // not inherited open, or done through another of its fds
        }
        rec.clear_flag(FLAG_REBASE);
        if !eligible(rec) {
            return;
        }
        match kernel_now(fd, rec.has_flag(FLAG_SHUT_WR), 0) {
            Some(k) => rec.set_witness_base(k),
            None => rec.set_flag(FLAG_NO_WITNESS),
        }
    });
}
