//! What the live view shows, from two successive reports: per process and per module/label
//! the totals and the current rates (bytes per second since the previous refresh), and the
//! busiest connections with their peers, sorted by a key (rx, tx or both).

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use sockmeter::report::Report;

use crate::summary::{human, process_name};

/// What rows are sorted by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortKey {
    /// Bytes received.
    Rx,
    /// Bytes sent.
    Tx,
    /// Both.
    Total,
}

impl SortKey {
    /// The next key (`s` cycles through them).
    pub fn next(self) -> SortKey {
        match self {
            SortKey::Rx => SortKey::Tx,
            SortKey::Tx => SortKey::Total,
            SortKey::Total => SortKey::Rx,
        }
    }

    /// Its name in the view.
    pub fn name(self) -> &'static str {
        match self {
            SortKey::Rx => "rx",
            SortKey::Tx => "tx",
            SortKey::Total => "total",
        }
    }

    fn of(self, rx: u64, tx: u64) -> u64 {
        match self {
            SortKey::Rx => rx,
            SortKey::Tx => tx,
            SortKey::Total => rx.saturating_add(tx),
        }
    }
}

/// One row: what it is, its rates and totals (bytes), and its connections.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Row {
    /// The process's pid.
    pub pid: u32,
    /// The process's name.
    pub process: String,
    /// What the row is about (a module, `label NAME`, or a connection's addresses).
    pub what: String,
    /// More about it (a connection's module; a process's end).
    pub detail: String,
    /// Bytes per second received, sent.
    pub rx_rate: u64,
    /// Bytes per second sent.
    pub tx_rate: u64,
    /// Bytes received in all.
    pub rx: u64,
    /// Bytes sent in all.
    pub tx: u64,
    /// Connections.
    pub connections: u64,
    /// Whether it is still open / running.
    pub live: bool,
}

/// The whole view at one refresh.
#[derive(Clone, Debug, Default)]
pub struct View {
    /// Processes known, and those running.
    pub processes_total: usize,
    /// Running ones.
    pub processes_running: usize,
    /// The run's totals and rates: rx, tx bytes, their rates, connections.
    pub total: Row,
    /// One row per process image.
    pub processes: Vec<Row>,
    /// One row per process and module, and per process and label.
    pub groups: Vec<Row>,
    /// One row per connection (and datagram socket), busiest first.
    pub connections: Vec<Row>,
}

/// Bytes received and sent so far, by row.
type Seen = HashMap<String, (u64, u64)>;

/// Turns reports into views, remembering the previous one for the rates.
#[derive(Debug, Default)]
pub struct Model {
    prev: Option<(Instant, Seen)>,
}

fn basename(p: &str) -> &str {
    Path::new(p).file_name().and_then(|s| s.to_str()).unwrap_or(p)
}

impl Model {
    /// The view of `report` (taken at `now`), sorted by `key`.
    pub fn view(&mut self, report: &Report, now: Instant, key: SortKey) -> View {
        let unix = report.unix_in_totals;
        let mut seen: Seen = HashMap::new();
        let elapsed = self
            .prev
            .as_ref()
            .map(|(t, _)| now.saturating_duration_since(*t).as_secs_f64());
        let prev = self.prev.as_ref().map(|(_, m)| m);
        // Rates against the previous refresh (none on the first).
        let mut rate = |k: String, rx: u64, tx: u64| -> (u64, u64) {
            let r = match (prev.and_then(|m| m.get(&k)), elapsed) {
                (Some(&(prx, ptx)), Some(dt)) if dt > 0.0 => (
                    (rx.saturating_sub(prx) as f64 / dt).round() as u64,
                    (tx.saturating_sub(ptx) as f64 / dt).round() as u64,
                ),
                _ => (0, 0),
            };
            seen.insert(k, (rx, tx));
            r
        };
        let mut v = View {
            processes_total: report.processes.len(),
            processes_running: report.processes.iter().filter(|p| p.end == "running").count(),
            ..View::default()
        };
        for p in &report.processes {
            let image = format!("{}@{}", p.pid, p.started_at);
            let name = process_name(p).to_string();
            let live = p.end == "running";
            let (rxr, txr) = rate(format!("p {image}"), p.totals.rx_bytes, p.totals.tx_bytes);
            v.processes.push(Row {
                pid: p.pid,
                process: name.clone(),
                what: p.exe.clone(),
                detail: p.end.clone(),
                rx_rate: rxr,
                tx_rate: txr,
                rx: p.totals.rx_bytes,
                tx: p.totals.tx_bytes,
                connections: p.totals.connections,
                live,
            });
            let groups = p
                .modules
                .iter()
                .map(|m| (basename(&m.module).to_string(), &m.stats))
                .chain(p.labels.iter().map(|l| (format!("label {}", l.label), &l.stats)));
            for (what, st) in groups {
                let (rxr, txr) = rate(format!("g {image} {what}"), st.rx_bytes, st.tx_bytes);
                v.groups.push(Row {
                    pid: p.pid,
                    process: name.clone(),
                    what,
                    detail: String::new(),
                    rx_rate: rxr,
                    tx_rate: txr,
                    rx: st.rx_bytes,
                    tx: st.tx_bytes,
                    connections: st.connections,
                    live,
                });
            }
            for s in p.sockets.iter().filter(|s| s.counts(unix) && s.folded == 0) {
                if !s.is_connection() && s.peers.is_empty() {
                    continue;
                }
                let peer = match (&s.peer, s.peers.len()) {
                    (Some(peer), _) => peer.clone(),
                    (None, 1) => s.peers[0].peer.clone(),
                    (None, n) => format!("{n} peers"),
                };
                let (rxr, txr) = rate(format!("s {image} {}", s.id), s.rx_bytes, s.tx_bytes);
                v.connections.push(Row {
                    pid: p.pid,
                    process: name.clone(),
                    what: format!("{} {} -> {peer}", s.proto, s.local.as_deref().unwrap_or("-")),
                    detail: s.module.as_deref().map(basename).unwrap_or("-").to_string(),
                    rx_rate: rxr,
                    tx_rate: txr,
                    rx: s.rx_bytes,
                    tx: s.tx_bytes,
                    connections: 1,
                    live: s.closed_at.is_none(),
                });
            }
        }
        let t = &report.totals;
        let (rxr, txr) = rate("total".into(), t.rx_bytes, t.tx_bytes);
        v.total = Row {
            what: "total".into(),
            rx_rate: rxr,
            tx_rate: txr,
            rx: t.rx_bytes,
            tx: t.tx_bytes,
            connections: t.connections,
            live: true,
            ..Row::default()
        };
        sort(&mut v, key);
        self.prev = Some((now, seen));
        v
    }
}

/// Sorts every table of `v` by `key`: the current rate, then open before closed, then the
/// total.
pub fn sort(v: &mut View, key: SortKey) {
    let order = |a: &Row, b: &Row| {
        let ka = (key.of(a.rx_rate, a.tx_rate), a.live, key.of(a.rx, a.tx));
        let kb = (key.of(b.rx_rate, b.tx_rate), b.live, key.of(b.rx, b.tx));
        kb.cmp(&ka).then_with(|| a.pid.cmp(&b.pid))
    };
    v.processes.sort_by(order);
    v.groups.sort_by(order);
    v.connections.sort_by(order);
}

/// A byte count as the view shows it: human units, or exact bytes.
pub fn bytes(n: u64, exact: bool) -> String {
    if exact {
        format!("{n} B")
    } else {
        human(n)
    }
}

/// A rate as the view shows it.
pub fn rate(n: u64, exact: bool) -> String {
    format!("{}/s", bytes(n, exact))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sockmeter::report::{GroupStats, ModuleReport, ProcessReport, ProcessTotals, SocketReport};
    use std::time::Duration;

    fn report(tx: u64, rx: u64, other_rx: u64) -> Report {
        let sock = |id, peer: &str, tx, rx| SocketReport {
            id,
            family: "inet".into(),
            proto: "tcp".into(),
            role: "connected".into(),
            local: Some("127.0.0.1:5000".into()),
            peer: Some(peer.into()),
            tx_bytes: tx,
            rx_bytes: rx,
            module: Some("/usr/lib/plugins/weather.so".into()),
            ..Default::default()
        };
        let p = ProcessReport {
            pid: 10,
            argv: vec!["/usr/bin/host".into()],
            started_at: "s".into(),
            end: "running".into(),
            totals: ProcessTotals {
                tx_bytes: tx,
                rx_bytes: rx + other_rx,
                connections: 2,
                ..Default::default()
            },
            sockets: vec![sock(1, "10.0.0.1:80", tx, rx), sock(2, "10.0.0.2:80", 0, other_rx)],
            modules: vec![ModuleReport {
                module: "/usr/lib/plugins/weather.so".into(),
                stats: GroupStats {
                    tx_bytes: tx,
                    rx_bytes: rx + other_rx,
                    connections: 2,
                    ..Default::default()
                },
                ..Default::default()
            }],
            ..Default::default()
        };
        Report::new(vec![], None, false, vec![p])
    }

    #[test]
    fn rates_are_differences_over_time_and_rows_follow_the_key() {
        let mut m = Model::default();
        let t0 = Instant::now();
        let first = m.view(&report(100, 1000, 0), t0, SortKey::Rx);
        assert_eq!(
            (first.total.rx_rate, first.total.rx),
            (0, 1000),
            "no rate without a previous refresh"
        );
        let v = m.view(&report(300, 3000, 500), t0 + Duration::from_secs(2), SortKey::Rx);
        assert_eq!((v.total.rx_rate, v.total.tx_rate), (1250, 100));
        assert_eq!(v.processes[0].process, "host");
        assert_eq!(v.groups[0].what, "weather.so");
        assert_eq!(v.groups[0].rx_rate, 1250);
        assert_eq!(v.connections.len(), 2);
        assert_eq!(
            v.connections[0].what, "tcp 127.0.0.1:5000 -> 10.0.0.1:80",
            "{:?}",
            v.connections
        );
        assert_eq!(v.connections[0].rx_rate, 1000);
        let by_tx = m.view(&report(300, 3000, 1500), t0 + Duration::from_secs(3), SortKey::Tx);
        assert_eq!(
            by_tx.connections[0].what, "tcp 127.0.0.1:5000 -> 10.0.0.1:80",
            "no tx rate: totals decide"
        );
        let by_rx = m.view(&report(300, 3000, 2500), t0 + Duration::from_secs(4), SortKey::Rx);
        assert_eq!(by_rx.connections[0].what, "tcp 127.0.0.1:5000 -> 10.0.0.2:80");
        assert_eq!(bytes(1536, false), "1.5 kB");
        assert_eq!(bytes(1536, true), "1536 B");
        assert_eq!(rate(2048, false), "2.0 kB/s");
        assert_eq!(SortKey::Rx.next().next().next(), SortKey::Rx);
    }
}
