//! One TCP connection held by several processes: what no hook saw, worked out over all of them.
//!
//! A socket that is open across a fork is one socket in two processes (and more, if they fork
//! again or exec a program that uses it). The kernel keeps one set of counts for it, so each
//! holder's witness (`crate::witness`: read at its close, exit or exec) counts what *every*
//! holder moved in that holder's window. Alone, no holder can say which of those bytes were its
//! own: a bash that writes to a `/dev/tcp` connection with `echo` (stdio, past the hooks) after
//! a `$(...)` subshell forked would report its bytes as counted by nobody, and a forked child's
//! reading includes whatever its parent sent meanwhile.
//!
//! The run's report has every metered holder, so it can. For one connection (the same local and
//! peer address, the holders' lifetimes overlapping), in each direction, with every holder's
//! window `[base, base + witness]` on the kernel's count (`kernel_base_*`: zero for the process
//! that made the socket, the count at the fork for a child, at first use for a process that
//! recognised it):
//!
//! * **unseen** = (the latest end of any window − the earliest start) − every holder's counted
//!   bytes: exact whenever each holder's window was read (the usual case: every holder closes it,
//!   exits or execs);
//! * less what holders that are not marked shared already report as their own unseen (a program
//!   that a child exec'd, and which recognised the socket on first use, has a witness of its own);
//! * the rest is charged holder by holder, narrowest window first (on a tie, the later holder):
//!   each takes what its window holds beyond its own counted bytes and beyond the counted and
//!   charged bytes of the holders whose windows lie inside its own. A subshell's bytes stay the
//!   subshell's; a parent's bytes after its child ended are the parent's.
//!
//! When two holders moved bytes past the hooks at the same time, the kernel cannot tell whose
//! they were: the total is still exact, the split is the rule above. A holder whose window was
//! never read (killed by SIGKILL in thread mode, still open) still has its counted bytes
//! subtracted, so the total is never more than the truth.

use std::collections::HashMap;

use crate::report::{ProcessReport, SocketReport};

/// One holder of a connection: where it is in the report and its numbers in one direction.
#[derive(Clone, Copy, Debug)]
struct Holder {
    process: usize,
    socket: usize,
    shared: bool,
    /// `(start, end)` of its window on the kernel's count, when its witness was read.
    window: Option<(u64, u64)>,
    counted: u64,
    /// What it already reports as unseen on its own (a holder not marked shared).
    own_unseen: u64,
    /// When its process (image) started: a forked child's copy of a socket keeps the parent's
    /// open time, its process starts later.
    started: u64,
}

impl Holder {
    fn width(&self) -> u64 {
        self.window.map_or(u64::MAX, |(s, e)| e - s)
    }

    fn inside(&self, outer: &Holder) -> bool {
        matches!((self.window, outer.window), (Some((s, e)), Some((os, oe))) if os <= s && e <= oe)
    }
}

/// Works out what no hook saw on every connection open in more than one of `processes`, and
/// adds it to the socket, the process totals and the socket's module and label.
pub fn reconcile(processes: &mut [ProcessReport]) {
    let mut by_conn: HashMap<(&str, &str), Vec<(usize, usize)>> = HashMap::new();
    for (p, proc_) in processes.iter().enumerate() {
        for (s, sock) in proc_.sockets.iter().enumerate() {
            if let (true, Some(l), Some(r)) = (candidate(sock), sock.local.as_deref(), sock.peer.as_deref()) {
                by_conn.entry((l, r)).or_default().push((p, s));
            }
        }
    }
    let mut charges: Vec<(usize, usize, [u64; 2])> = Vec::new();
    let mut covered: Vec<(usize, usize, u32)> = Vec::new();
    for members in by_conn.into_values() {
        if !members.iter().any(|&(p, s)| processes[p].sockets[s].shared) {
            continue;
        }
        for group in overlapping(processes, members) {
            covered.extend(cover(processes, &group));
            let mut charge: HashMap<(usize, usize), [u64; 2]> = HashMap::new();
            for dir in 0..2 {
                let holders: Vec<Holder> = group.iter().map(|&(p, s)| holder(processes, p, s, dir)).collect();
                for (h, n) in split(&holders) {
                    charge.entry((h.process, h.socket)).or_default()[dir] += n;
                }
            }
            charges.extend(charge.into_iter().map(|((p, s), n)| (p, s, n)));
        }
    }
    for (p, s, n) in charges {
        charge(&mut processes[p], s, n);
    }
    for (p, s, by) in covered {
        processes[p].sockets[s].witnessed_by = Some(by);
    }
}

/// The holders of one connection that have no reading, each with the pid of a holder whose
/// reading covers them (the first with one), when a shared holder has one.
fn cover(processes: &[ProcessReport], group: &[(usize, usize)]) -> Vec<(usize, usize, u32)> {
    let read = |&(p, s): &(usize, usize)| processes[p].sockets[s].kernel_tx_bytes.is_some();
    let Some(&(wp, _)) = group
        .iter()
        .find(|&&(p, s)| read(&(p, s)) && processes[p].sockets[s].shared)
    else {
        return Vec::new();
    };
    group
        .iter()
        .filter(|m| !read(m))
        .map(|&(p, s)| (p, s, processes[wp].pid))
        .collect()
}

/// A TCP connection of one socket's own line (not a folded group).
fn candidate(s: &SocketReport) -> bool {
    s.proto == crate::model::Proto::Tcp.as_str() && s.is_connection() && s.folded == 0
}

fn millis(t: Option<&str>) -> u64 {
    t.and_then(crate::time::parse_rfc3339).unwrap_or(u64::MAX)
}

/// Splits one address pair's sockets into groups whose lifetimes overlap (the same pair of
/// addresses used again later is another connection).
fn overlapping(processes: &[ProcessReport], mut members: Vec<(usize, usize)>) -> Vec<Vec<(usize, usize)>> {
    let life = |&(p, s): &(usize, usize)| {
        let sock = &processes[p].sockets[s];
        (millis(Some(&sock.opened_at)), millis(sock.closed_at.as_deref()))
    };
    members.sort_by_key(life);
    let mut groups: Vec<Vec<(usize, usize)>> = Vec::new();
    let mut until = 0;
    for m in members {
        let (open, close) = life(&m);
        match groups.last_mut() {
            Some(g) if open <= until => {
                g.push(m);
                until = until.max(close);
            }
            _ => {
                groups.push(vec![m]);
                until = close;
            }
        }
    }
    groups
}

fn holder(processes: &[ProcessReport], p: usize, s: usize, dir: usize) -> Holder {
    let sock = &processes[p].sockets[s];
    let (kernel, base, counted, own_unseen) = if dir == 0 {
        (
            sock.kernel_tx_bytes,
            sock.kernel_base_tx_bytes,
            sock.tx_bytes,
            sock.unseen_tx_bytes,
        )
    } else {
        (
            sock.kernel_rx_bytes,
            sock.kernel_base_rx_bytes,
            sock.rx_bytes,
            sock.unseen_rx_bytes,
        )
    };
    Holder {
        process: p,
        socket: s,
        shared: sock.shared,
        window: kernel.map(|k| (base, base.saturating_add(k))),
        counted,
        own_unseen: if sock.shared { 0 } else { own_unseen },
        started: millis(Some(&processes[p].started_at)),
    }
}

/// What each shared holder of one connection is charged in one direction (see the module
/// docs); none when no shared holder's window was read.
fn split(holders: &[Holder]) -> Vec<(Holder, u64)> {
    let read: Vec<&Holder> = holders.iter().filter(|h| h.window.is_some()).collect();
    if !read.iter().any(|h| h.shared) {
        return Vec::new();
    }
    let start = read.iter().filter_map(|h| h.window).map(|w| w.0).min().unwrap_or(0);
    let end = read.iter().filter_map(|h| h.window).map(|w| w.1).max().unwrap_or(0);
    let counted = holders.iter().fold(0u64, |a, h| a.saturating_add(h.counted));
    let already = holders.iter().fold(0u64, |a, h| a.saturating_add(h.own_unseen));
    let mut rest = (end - start).saturating_sub(counted).saturating_sub(already);
    let mut order: Vec<usize> = (0..holders.len())
        .filter(|&i| holders[i].shared && holders[i].window.is_some())
        .collect();
    order.sort_by_key(|&i| (holders[i].width(), std::cmp::Reverse(holders[i].started)));
    let mut charged = vec![0u64; holders.len()];
    for i in order {
        if rest == 0 {
            break;
        }
        let h = &holders[i];
        let mut own = h.width().saturating_sub(h.counted);
        for (j, other) in holders.iter().enumerate() {
            if j != i && other.inside(h) {
                own = own
                    .saturating_sub(other.counted)
                    .saturating_sub(other.own_unseen)
                    .saturating_sub(charged[j]);
            }
        }
        charged[i] = own.min(rest);
        rest -= charged[i];
    }
    holders
        .iter()
        .zip(charged)
        .filter(|(_, n)| *n > 0)
        .map(|(h, n)| (*h, n))
        .collect()
}

/// Adds `n` (tx, rx) unseen bytes to socket `s` of `p` and to its totals, module and label.
fn charge(p: &mut ProcessReport, s: usize, n: [u64; 2]) {
    let add = |tx: &mut u64, rx: &mut u64| {
        *tx = tx.saturating_add(n[0]);
        *rx = rx.saturating_add(n[1]);
    };
    let sock = &mut p.sockets[s];
    add(&mut sock.unseen_tx_bytes, &mut sock.unseen_rx_bytes);
    let (module, label) = (
        sock.module.clone().unwrap_or_else(|| "(unknown)".into()),
        sock.label.clone(),
    );
    add(&mut p.totals.unseen_tx_bytes, &mut p.totals.unseen_rx_bytes);
    if let Some(m) = p.modules.iter_mut().find(|m| m.module == module) {
        add(&mut m.stats.unseen_tx_bytes, &mut m.stats.unseen_rx_bytes);
    }
    if let Some(l) = label.and_then(|l| p.labels.iter_mut().find(|g| g.label == l)) {
        add(&mut l.stats.unseen_tx_bytes, &mut l.stats.unseen_rx_bytes);
    }
}

#[cfg(test)]
mod tests;
