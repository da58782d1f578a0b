//! One TCP socket open in several processes: across a fork (a child, a `$(...)` subshell), passed
//! with `SCM_RIGHTS`, or handed to a program a vfork child or `posix_spawn` starts. The kernel
//! keeps one count for the socket, so each holder's witness counts every holder's bytes; the
//! report weighs them against each other (`sockmeter::holders`) so that every byte the peer saw
//! is counted once: by a hook, or as one holder's unseen bytes.
//!
//! `tests/c/silentzero.c` (`fork` and `pass` modes) and `tests/peers/spawn_child.py` move the
//! bytes, against the unmetered peer `tests/c/peer.c`. The harness fails any run whose report
//! has unseen bytes outside the tests that bypass the hooks on purpose, so a byte counted by one
//! holder and reported unseen by another fails every test here.

use crate::cprogs::{prog, Oracle};
use crate::harness::{self, both_modes, Mode};
use sockmeter::report::{ProcessReport, SocketReport};

/// `silentzero fork PORT TX RX PTX CHILDTX`: the child writes TX (through `child_tx`) and
/// reads RX, the parent writes PTX through stdio after it. Checks that every byte the peer saw
/// is counted or unseen in one of the two, that both sockets are marked shared and have a
/// witness, and that the summary names no connection without one. Returns (parent, child),
/// each ((counted tx, rx), (unseen tx, rx)).
#[allow(clippy::type_complexity)]
fn shared_across_fork(
    mode: Mode,
    tx: u64,
    rx: u64,
    ptx: u64,
    child_tx: &str,
) -> (((u64, u64), (u64, u64)), ((u64, u64), (u64, u64))) {
    let bin = prog("silentzero", &[]);
    let peer = Oracle::server(1, &format!("r{tx},s{rx},e"));
    let port = peer.port.to_string();
    let args = [tx.to_string(), rx.to_string(), ptx.to_string()];
    let r = harness::expecting_unseen(|| {
        harness::run_in(
            mode,
            &[],
            &[&bin, "fork", &port, &args[0], &args[1], &args[2], child_tx],
            &[],
        )
    });
    let seen = peer.conns()[0];
    assert_eq!((seen.rx, seen.tx), (tx + ptx, rx));
    let procs = r.procs("silentzero");
    assert_eq!(procs.len(), 2, "{}", r.stderr);
    let split = |origin: &str| {
        let p = procs.iter().find(|p| p.origin == origin).expect(origin);
        let s = &p.sockets[0];
        assert!(s.shared && s.kernel_tx_bytes.is_some(), "{origin}: {s:?}");
        assert_eq!(
            (p.totals.unseen_tx_bytes, p.totals.unseen_rx_bytes),
            (s.unseen_tx_bytes, s.unseen_rx_bytes)
        );
        ((s.tx_bytes, s.rx_bytes), (s.unseen_tx_bytes, s.unseen_rx_bytes))
    };
    let (parent, child) = (split("start"), split("fork"));
    let all = |f: fn(&((u64, u64), (u64, u64))) -> u64| f(&parent) + f(&child);
    assert_eq!(
        (all(|h| h.0 .0 + h.1 .0), all(|h| h.0 .1 + h.1 .1)),
        (seen.rx, seen.tx),
        "every byte counted or unseen once\n{}",
        r.stderr
    );
    assert!(!r.stderr.contains("without a kernel witness"), "{}", r.stderr);
    (parent, child)
}

/// `silentzero pass PORT TX PTX`: the parent passes its connection to its child over a Unix
/// socket; the child sends TX, then the parent writes PTX through stdio. Checks the peer's
/// count against both processes' and that both sockets are marked shared. Returns (sender,
/// receiver), each ((counted tx, rx), (unseen tx, rx)).
#[allow(clippy::type_complexity)]
fn passed(mode: Mode, tx: u64, ptx: u64) -> (((u64, u64), (u64, u64)), ((u64, u64), (u64, u64))) {
    let bin = prog("silentzero", &[]);
    let peer = Oracle::server(1, "e");
    let port = peer.port.to_string();
    let (tx_s, ptx_s) = (tx.to_string(), ptx.to_string());
    let cmd = [bin.as_str(), "pass", &port, &tx_s, &ptx_s];
    let r = if ptx > 0 {
        harness::expecting_unseen(|| harness::run_in(mode, &[], &cmd, &[]))
    } else {
        harness::run_in(mode, &[], &cmd, &[])
    };
    let seen = peer.conns()[0];
    assert_eq!(seen.rx, tx + ptx);
    let procs = r.procs("silentzero");
    assert_eq!(procs.len(), 2, "{}", r.stderr);
    let split = |origin: &str| {
        let p = procs.iter().find(|p| p.origin == origin).expect(origin);
        let tcp: Vec<&SocketReport> = p.sockets.iter().filter(|s| s.proto == "tcp").collect();
        assert_eq!(tcp.len(), 1, "{origin}: {:?}", p.sockets);
        let s = tcp[0];
        assert_eq!(
            s.local.as_deref(),
            Some(format!("127.0.0.1:{}", seen.port).as_str()),
            "{s:?}"
        );
        assert!(s.shared && s.kernel_tx_bytes.is_some(), "{origin}: {s:?}\n{}", r.stderr);
        ((s.tx_bytes, s.rx_bytes), (s.unseen_tx_bytes, s.unseen_rx_bytes))
    };
    let (sender, receiver) = (split("start"), split("fork"));
    assert_eq!(
        sender.0 .0 + sender.1 .0 + receiver.0 .0 + receiver.1 .0,
        seen.rx,
        "every byte counted or unseen once\n{}",
        r.stderr
    );
    (sender, receiver)
}

/// `spawn_child.py --how HOW`: python hands its connection to `cat FILE` (40,000 bytes) as its
/// stdout, then sends AFTER bytes itself. Every byte counted once (the harness fails any unseen
/// byte), cat's by its hooks and python's by its own; python's socket is marked shared.
fn handed_to_a_program(mode: Mode, how: &str) {
    let dir = harness::fresh_dir("spawn-child");
    let file = dir.join("blob");
    std::fs::write(&file, vec![b'c'; 40_000]).expect("write the file");
    let peer = Oracle::server(1, "e");
    let peer_addr = format!("127.0.0.1:{}", peer.port);
    let script = harness::root().join("tests/peers/spawn_child.py");
    let r = harness::run_in(
        mode,
        &[],
        &[
            harness::python(),
            script.to_str().expect("utf-8"),
            "--port",
            &peer.port.to_string(),
            "--how",
            how,
            "--file",
            file.to_str().expect("utf-8"),
            "--after",
            "700",
        ],
        &[],
    );
    let seen = peer.conns()[0];
    assert_eq!(seen.rx, 40_700);
    let conn = |p: &ProcessReport| -> Option<SocketReport> {
        p.sockets
            .iter()
            .find(|s| s.peer.as_deref() == Some(peer_addr.as_str()))
            .cloned()
    };
    let cat = r.proc("cat");
    let py: Vec<&ProcessReport> = r
        .report
        .processes
        .iter()
        .filter(|p| p.argv.iter().any(|a| a.ends_with("spawn_child.py")))
        .collect();
    assert_eq!(py.len(), 1, "{}", r.stderr);
    let (c, p) = (conn(cat).expect("cat's socket"), conn(py[0]).expect("python's socket"));
    assert_eq!((c.tx_bytes, p.tx_bytes), (40_000, 700), "{}", r.stderr);
    assert!(p.shared, "{p:?}");
    assert_eq!(r.report.totals.tx_bytes, seen.rx, "{}", r.stderr);
    // cat closes its stdout with fclose at exit: witnessed there (or, were it not, covered by
    // python's reading); the summary calls it no connection without a witness.
    assert!(
        c.kernel_tx_bytes.is_some() || c.witnessed_by == Some(py[0].pid),
        "{c:?}\n{}",
        r.stderr
    );
    assert!(!r.stderr.contains("without a kernel witness"), "{}", r.stderr);
}

both_modes! {
    /// A socket shared across fork: the child's bytes (stdio out, recv in) are its own, from
    /// the fork on; the parent, whose kernel counts include the child's, is weighed against
    /// the child (`sockmeter::holders`) and has nothing unseen.
    fn a_socket_shared_across_fork_is_witnessed_in_both_holders(mode) {
        let (parent, child) = shared_across_fork(mode, 1200, 3400, 0, "stdio");
        assert_eq!(child, ((0, 3400), (1200, 0)));
        assert_eq!(parent, ((0, 0), (0, 0)));
    }

    /// The parent writes through stdio after its child ended: each holder is charged with
    /// its own unseen bytes, out of one kernel count.
    fn a_parent_writing_past_the_hooks_after_its_child_is_charged_for_it(mode) {
        let (parent, child) = shared_across_fork(mode, 1200, 3400, 700, "stdio");
        assert_eq!(child, ((0, 3400), (1200, 0)));
        assert_eq!(parent, ((0, 0), (700, 0)));
    }

    /// The child's bytes are counted by the hooks; the parent's stdio bytes are its unseen.
    fn a_childs_counted_bytes_are_not_the_parents_unseen(mode) {
        let (parent, child) = shared_across_fork(mode, 1200, 3400, 700, "send");
        assert_eq!(child, ((1200, 3400), (0, 0)));
        assert_eq!(parent, ((0, 0), (700, 0)));
    }

    /// bash writing to a `/dev/tcp` connection with `echo` (stdio inside bash: past the hooks)
    /// after a command substitution forked a subshell that held the socket too: every byte the
    /// peer got is in the report, as bash's unseen bytes, and the summary says so.
    fn a_shell_writing_to_dev_tcp_after_a_subshell_is_not_a_silent_zero(mode) {
        let peer = Oracle::server(1, "e");
        let script = format!(
            "exec 3<>/dev/tcp/127.0.0.1/{}; x=$(echo sub); for i in $(seq 1 400); do echo \"line $i $x of the shell's own output\" >&3; done; exec 3>&-",
            peer.port
        );
        let r = harness::expecting_unseen(|| harness::run_in(mode, &[], &["bash", "-c", &script], &[]));
        let seen = peer.conns()[0];
        assert!(seen.rx > 10_000, "{seen:?}");
        let bash: Vec<&ProcessReport> = r.procs("bash").into_iter().filter(|p| p.origin == "start").collect();
        assert_eq!(bash.len(), 1, "{}", r.stderr);
        let s = bash[0]
            .sockets
            .iter()
            .find(|s| s.local.as_deref() == Some(&format!("127.0.0.1:{}", seen.port)))
            .unwrap_or_else(|| panic!("bash's connection\n{}", r.stderr));
        assert!(s.shared, "{s:?}");
        assert_eq!((s.tx_bytes, s.unseen_tx_bytes), (0, seen.rx), "{s:?}\n{}", r.stderr);
        assert_eq!(r.report.totals.unseen_tx_bytes, seen.rx, "{}", r.stderr);
        assert!(!r.stderr.contains("without a kernel witness"), "{}", r.stderr);
        assert!(r.stderr.contains("moved outside the calls sockmeter sees"), "{}", r.stderr);
    }

    /// A TCP socket passed to another process (SCM_RIGHTS): the receiver's bytes are counted
    /// once, by its hooks; they used to come back as the sender's unseen bytes (its kernel
    /// count includes the receiver's). The harness fails any unseen byte here.
    fn a_passed_sockets_bytes_are_counted_once(mode) {
        let (sender, receiver) = passed(mode, 40_000, 0);
        assert_eq!(receiver, ((40_000, 0), (0, 0)));
        assert_eq!(sender, ((0, 0), (0, 0)));
    }

    /// The sender's own stdio bytes after the receiver's are the sender's unseen bytes.
    fn a_sender_writing_past_the_hooks_after_passing_a_socket_is_charged_for_it(mode) {
        let (sender, receiver) = passed(mode, 40_000, 900);
        assert_eq!(receiver, ((40_000, 0), (0, 0)));
        assert_eq!(sender, ((0, 0), (900, 0)));
    }

    /// python's `subprocess.run(..., stdout=sock)`: a vfork child dup2s the socket to fd 1 and
    /// execs cat. cat's bytes were counted by its hooks and reported unseen by python too.
    fn a_socket_a_subprocess_writes_to_is_counted_once(mode) {
        handed_to_a_program(mode, "subprocess");
    }

    /// `os.posix_spawn` with a dup2 file action: glibc's child runs no hook at all.
    fn a_socket_handed_to_posix_spawn_is_counted_once(mode) {
        handed_to_a_program(mode, "posix_spawn");
    }
}
