//! The summary grouped: one table row per executable, module or peer, summed over every
//! process (`--group-by exe|module|peer`; by executable by default when a run has many
//! processes, such as a script that runs curl thirty times).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use sockmeter::report::{ProcessReport, SocketReport};

use super::table::Table;
use super::units::{basename, ending_short};
use super::{peer_text, Options};

/// What rows are made of.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum GroupBy {
    /// One block per process, with its sockets.
    Process,
    /// One row per executable.
    Exe,
    /// One row per module (the plugin or executable charged).
    Module,
    /// One row per peer (by name when the program looked it up).
    Peer,
}

/// One row being summed.
#[derive(Default)]
struct Row {
    processes: BTreeSet<usize>,
    /// How the processes ended, and how many ended so.
    endings: BTreeMap<String, u64>,
    rx: u64,
    tx: u64,
    connections: u64,
    /// Peers (address → name, bytes), for the peers column.
    peers: HashMap<String, (Option<String>, u64)>,
    /// Process names and how many of them (the peer table's last column).
    names: BTreeMap<String, u64>,
}

impl Row {
    fn add_socket(&mut self, s: &SocketReport) {
        self.rx = self.rx.saturating_add(s.rx_bytes);
        self.tx = self.tx.saturating_add(s.tx_bytes);
    }

    fn add_peer(&mut self, addr: &str, name: Option<&str>, bytes: u64) {
        let e = self.peers.entry(addr.to_string()).or_insert((None, 0));
        e.1 = e.1.saturating_add(bytes);
        if e.0.is_none() {
            e.0 = name.map(str::to_string);
        }
    }

    fn peers_text(&self) -> String {
        let mut v: Vec<(&String, &(Option<String>, u64))> = self.peers.iter().collect();
        v.sort_by(|a, b| b.1 .1.cmp(&a.1 .1).then(a.0.cmp(b.0)));
        let shown: Vec<String> = v.iter().take(2).map(|(a, (n, _))| peer_text(a, n.as_deref())).collect();
        match v.len() {
            0 => "-".into(),
            n if n <= 2 => shown.join(", "),
            n => format!("{}, +{} more", shown.join(", "), n - 2),
        }
    }

    fn endings_text(&self) -> String {
        if self.endings.len() == 1 {
            return self.endings.keys().next().cloned().unwrap_or_default();
        }
        let mut v: Vec<(&String, &u64)> = self.endings.iter().collect();
        v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        v.iter()
            .map(|(e, n)| format!("{e}: {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn names_text(&self) -> String {
        let mut v: Vec<(&String, &u64)> = self.names.iter().collect();
        v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        v.iter()
            .map(|(n, c)| if **c == 1 { n.to_string() } else { format!("{n} ({c})") })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The socket's peers with the bytes each moved (a connection's own peer, or a datagram
/// socket's per-peer counts), as (address, name, in, out).
fn socket_peers(s: &SocketReport) -> Vec<(&str, Option<&str>, u64, u64)> {
    if s.peers.is_empty() {
        match (&s.peer, s.is_socketpair()) {
            (Some(p), false) => vec![(p.as_str(), s.peer_name.as_deref(), s.rx_bytes, s.tx_bytes)],
            _ => Vec::new(),
        }
    } else {
        s.peers
            .iter()
            .map(|p| (p.peer.as_str(), None, p.rx_bytes, p.tx_bytes))
            .collect()
    }
}

/// The grouped table's lines (`by` is not [`GroupBy::Process`]); `processes` are the ones
/// shown, `sockets(p)` the sockets of each that count.
pub fn table<'a>(
    by: GroupBy,
    processes: &[&'a ProcessReport],
    sockets: impl Fn(&'a ProcessReport) -> Vec<&'a SocketReport>,
    opts: &Options,
) -> Vec<String> {
    let u = opts.units;
    let mut rows: BTreeMap<String, Row> = BTreeMap::new();
    for (i, p) in processes.iter().enumerate() {
        let name = super::process_name(p).to_string();
        let socks = sockets(p);
        match by {
            GroupBy::Exe | GroupBy::Process => {
                let key = if p.exe.is_empty() {
                    name.clone()
                } else {
                    basename(&p.exe).to_string()
                };
                let r = rows.entry(key).or_default();
                r.processes.insert(i);
                *r.endings.entry(ending_short(p)).or_default() += 1;
                r.connections = r.connections.saturating_add(p.totals.connections);
                for s in &socks {
                    r.add_socket(s);
                    for (a, n, rx, tx) in socket_peers(s) {
                        r.add_peer(a, n, rx.saturating_add(tx));
                    }
                }
            }
            GroupBy::Module => {
                for s in &socks {
                    let key = s.module.as_deref().map(basename).unwrap_or("(unknown)").to_string();
                    let r = rows.entry(key).or_default();
                    r.processes.insert(i);
                    r.add_socket(s);
                    if s.is_connection() {
                        r.connections += s.folded.max(1);
                    }
                    for (a, n, rx, tx) in socket_peers(s) {
                        r.add_peer(a, n, rx.saturating_add(tx));
                    }
                }
            }
            GroupBy::Peer => {
                for s in &socks {
                    for (a, n, rx, tx) in socket_peers(s) {
                        let r = rows.entry(a.to_string()).or_default();
                        if !r.processes.contains(&i) {
                            *r.names.entry(name.clone()).or_default() += 1;
                        }
                        r.processes.insert(i);
                        r.rx = r.rx.saturating_add(rx);
                        r.tx = r.tx.saturating_add(tx);
                        if s.is_connection() {
                            r.connections += s.folded.max(1);
                        }
                        r.add_peer(a, n, 0);
                    }
                }
            }
        }
    }
    let mut sorted: Vec<(String, Row)> = rows
        .into_iter()
        .filter(|(_, r)| opts.all || r.rx > 0 || r.tx > 0)
        .collect();
    sorted.sort_by(|a, b| {
        (b.1.rx.saturating_add(b.1.tx))
            .cmp(&a.1.rx.saturating_add(a.1.tx))
            .then(a.0.cmp(&b.0))
    });
    let keep = opts.top.unwrap_or(usize::MAX);
    let rest: Vec<(String, Row)> = if sorted.len() > keep {
        sorted.split_off(keep)
    } else {
        Vec::new()
    };
    let mut t = match by {
        GroupBy::Exe | GroupBy::Process => {
            Table::new(["executable", "processes", "ended", "in", "out", "connections", "peers"])
        }
        GroupBy::Module => Table::new(["module", "processes", "in", "out", "connections", "peers"]),
        GroupBy::Peer => Table::new(["peer", "in", "out", "connections", "processes"]),
    };
    for (key, r) in &sorted {
        let (rx, tx) = (u.bytes(r.rx), u.bytes(r.tx));
        let n = r.processes.len().to_string();
        let c = r.connections.to_string();
        t.row(match by {
            GroupBy::Exe | GroupBy::Process => vec![key.clone(), n, r.endings_text(), rx, tx, c, r.peers_text()],
            GroupBy::Module => vec![key.clone(), n, rx, tx, c, r.peers_text()],
            GroupBy::Peer => {
                let name = r.peers.get(key).and_then(|(n, _)| n.as_deref());
                vec![peer_text(key, name), rx, tx, c, r.names_text()]
            }
        });
    }
    if !rest.is_empty() {
        let (rx, tx, c) = rest.iter().fold((0u64, 0u64, 0u64), |(a, b, c), (_, r)| {
            (
                a.saturating_add(r.rx),
                b.saturating_add(r.tx),
                c.saturating_add(r.connections),
            )
        });
        let procs: BTreeSet<usize> = rest.iter().flat_map(|(_, r)| r.processes.iter().copied()).collect();
        let label = format!("({} more)", rest.len());
        let (rx, tx, c, n) = (u.bytes(rx), u.bytes(tx), c.to_string(), procs.len().to_string());
        t.row(match by {
            GroupBy::Exe | GroupBy::Process => vec![label, n, String::new(), rx, tx, c, String::new()],
            GroupBy::Module => vec![label, n, rx, tx, c, String::new()],
            GroupBy::Peer => vec![label, rx, tx, c, String::new()],
        });
    }
    if t.len() == 0 {
        return Vec::new();
    }
    t.lines(opts.paint)
}
