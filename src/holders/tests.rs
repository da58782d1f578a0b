//! The holders' split on the situations that make shared sockets: a subshell, a forking
//! server, a child that execs a program, a parent writing after its child ended.

use super::reconcile;
use crate::report::{GroupStats, ModuleReport, ProcessReport, SocketReport};

const MODULE: &str = "/usr/bin/prog";

/// One holder: its process start (s), socket open/close (s), counted and kernel (tx, rx), base.
struct H {
    started: u64,
    closed: Option<u64>,
    shared: bool,
    counted: [u64; 2],
    kernel: Option<[u64; 2]>,
    base: [u64; 2],
}

fn at(s: u64) -> String {
    crate::time::rfc3339(1_790_000_000_000 + s * 1000)
}

fn process(pid: u32, h: &H) -> ProcessReport {
    let mut s = SocketReport {
        proto: "tcp".into(),
        family: "inet".into(),
        role: "connected".into(),
        local: Some("127.0.0.1:40000".into()),
        peer: Some("127.0.0.1:80".into()),
        tx_bytes: h.counted[0],
        rx_bytes: h.counted[1],
        module: Some(MODULE.into()),
        opened_at: at(0),
        closed_at: h.closed.map(at),
        shared: h.shared,
        kernel_base_tx_bytes: h.base[0],
        kernel_base_rx_bytes: h.base[1],
        ..Default::default()
    };
    s.set_witness(h.kernel);
    let mut p = ProcessReport {
        pid,
        started_at: at(h.started),
        modules: vec![ModuleReport {
            module: MODULE.into(),
            stats: GroupStats::default(),
            ..Default::default()
        }],
        ..Default::default()
    };
    p.totals.unseen_tx_bytes = s.unseen_tx_bytes;
    p.totals.unseen_rx_bytes = s.unseen_rx_bytes;
    p.modules[0].stats.unseen_tx_bytes = s.unseen_tx_bytes;
    p.modules[0].stats.unseen_rx_bytes = s.unseen_rx_bytes;
    p.sockets.push(s);
    p
}

/// Each holder's (socket unseen tx, rx) after the split; checks the totals and module agree.
fn split(holders: &[H]) -> Vec<(u64, u64)> {
    let mut ps: Vec<ProcessReport> = holders
        .iter()
        .enumerate()
        .map(|(i, h)| process(100 + i as u32, h))
        .collect();
    reconcile(&mut ps);
    ps.iter()
        .map(|p| {
            let s = &p.sockets[0];
            let u = (s.unseen_tx_bytes, s.unseen_rx_bytes);
            assert_eq!((p.totals.unseen_tx_bytes, p.totals.unseen_rx_bytes), u, "totals");
            let m = &p.modules[0].stats;
            assert_eq!((m.unseen_tx_bytes, m.unseen_rx_bytes), u, "module");
            u
        })
        .collect()
}

fn shared(started: u64, counted: [u64; 2], kernel: [u64; 2], base: [u64; 2]) -> H {
    H {
        started,
        closed: Some(9),
        shared: true,
        counted,
        kernel: Some(kernel),
        base,
    }
}

/// A holder that was never read (killed by SIGKILL; still open when `closed` is None), its
/// socket `shared` or recognised on first use after an exec.
fn unread(started: u64, closed: Option<u64>, shared: bool, counted: [u64; 2]) -> H {
    H {
        started,
        closed,
        shared,
        counted,
        kernel: None,
        base: [0, 0],
    }
}

#[test]
fn a_shell_writing_past_the_hooks_after_a_subshell_is_charged_for_it() {
    // bash: `exec 3<>/dev/tcp/...`, `x=$(...)` (the subshell never touched the socket and
    // reported nothing), then `echo ... >&3` 200,000 bytes through stdio.
    assert_eq!(split(&[shared(0, [0, 0], [200_000, 0], [0, 0])]), [(200_000, 0)]);
}

#[test]
fn a_child_and_its_parent_each_keep_their_own_unseen_bytes() {
    // The child wrote 1,200 through stdio and read 3,400 through recv, then exited; the parent
    // then wrote 500 through stdio and closed.
    let parent = shared(0, [0, 0], [1_700, 3_400], [0, 0]);
    let child = shared(1, [0, 3_400], [1_200, 3_400], [0, 0]);
    assert_eq!(split(&[parent, child]), [(500, 0), (1_200, 0)]);
}

#[test]
fn a_child_that_wrote_past_the_hooks_while_the_parent_waited_is_charged() {
    let parent = shared(0, [0, 0], [1_200, 3_400], [0, 0]);
    let child = shared(1, [0, 3_400], [1_200, 3_400], [0, 0]);
    assert_eq!(split(&[parent, child]), [(0, 0), (1_200, 0)]);
}

#[test]
fn a_forking_servers_child_owns_what_it_sent_after_the_parent_closed() {
    // The parent read the 64-byte request, forked and closed its copy at once; the child wrote
    // 5,000 through stdio (base: the parent's count at the fork).
    let parent = shared(0, [0, 64], [0, 64], [0, 0]);
    let child = shared(1, [0, 0], [5_000, 0], [0, 64]);
    assert_eq!(split(&[parent, child]), [(0, 0), (5_000, 0)]);
}

#[test]
fn a_program_a_child_execd_keeps_its_own_witness_and_is_not_charged_twice() {
    // bash forked, the child exec'd cat, which wrote 600 through write() (counted) and 100
    // through stdio (its own witness: unseen 100); then bash wrote 300 through stdio.
    let bash = shared(0, [0, 0], [1_000, 0], [0, 0]);
    let cat = H {
        kernel: Some([700, 0]),
        ..unread(1, Some(2), false, [600, 0])
    };
    assert_eq!(split(&[bash, cat]), [(300, 0), (100, 0)]);
}

#[test]
fn holders_that_counted_everything_have_nothing_unseen() {
    let parent = shared(0, [100, 0], [300, 50], [0, 0]);
    let child = shared(1, [200, 50], [200, 50], [100, 0]);
    assert_eq!(split(&[parent, child]), [(0, 0), (0, 0)]);
}

#[test]
fn without_a_reading_nothing_is_charged() {
    let killed = unread(0, None, true, [0, 0]);
    assert_eq!(split(&[killed]), [(0, 0)]);
}

#[test]
fn a_holder_without_a_reading_still_has_its_counted_bytes_subtracted() {
    // The child was killed (no reading) after sending 400 through send; the parent's reading
    // covers them.
    let parent = shared(0, [0, 0], [400, 0], [0, 0]);
    let child = unread(1, None, true, [400, 0]);
    assert_eq!(split(&[parent, child]), [(0, 0), (0, 0)]);
}

#[test]
fn a_holder_without_a_reading_is_covered_by_one_that_has_one() {
    // python handed its connection to cat, which was killed by SIGKILL (no reading of its own).
    let python = shared(0, [0, 0], [700, 0], [0, 0]);
    let cat = unread(1, Some(2), false, [600, 0]);
    let mut ps = vec![process(10, &python), process(11, &cat)];
    reconcile(&mut ps);
    assert_eq!(ps[1].sockets[0].witnessed_by, Some(10));
    assert!(!ps[1].sockets[0].unwitnessed_connection());
    assert_eq!(ps[0].sockets[0].unseen_tx_bytes, 100);
    // Alone, it is a connection without a witness.
    let mut alone = vec![process(11, &cat)];
    reconcile(&mut alone);
    assert!(alone[0].sockets[0].unwitnessed_connection());
}

#[test]
fn the_same_addresses_later_are_another_connection() {
    let mut first = shared(0, [0, 0], [100, 0], [0, 0]);
    first.closed = Some(1);
    let mut ps = vec![process(1, &first), process(2, &shared(5, [0, 0], [70, 0], [0, 0]))];
    ps[1].sockets[0].opened_at = at(3);
    reconcile(&mut ps);
    assert_eq!(ps[0].sockets[0].unseen_tx_bytes, 100);
    assert_eq!(ps[1].sockets[0].unseen_tx_bytes, 70);
}
