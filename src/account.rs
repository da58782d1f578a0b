//! Turning a stream of wire messages into a process report.
//!
//! [`ProcessAccount`] is the one place where deltas are added up. The reporter keeps one per
//! connection; the shim keeps one for its own process (for `SOCKMETER_REPORT` and the
//! embedding API's snapshot) and feeds it the very messages it ships, so every consumer sees
//! the same numbers.
//!
//! A long-running server opens millions of sockets: closed sockets beyond
//! [`ProcessAccount::with_closed_limit`] are folded, oldest first, into one entry per
//! (family, protocol, role, module, label, peer host), whose `folded` field says how many
//! sockets it stands for. Totals, modules and labels stay exact.

use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};
use std::sync::Arc;

use crate::model::{Family, Proto, Role};
use crate::report::{
    GroupStats, LabelReport, ModuleReport, PeerReport, ProcessReport, ProcessTotals, SocketReport, UnixTotals,
};
use crate::time::rfc3339;
use crate::wire::{ByeReason, Hello, Message, SocketDelta};

/// Closed sockets kept one by one before folding starts.
pub const DEFAULT_CLOSED_LIMIT: usize = 20_000;

/// A message that does not fit the conversation so far.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AccountError {
    /// A delta or close for a socket never announced (its counts are kept under a placeholder).
    #[error("message for socket {0}, which was never announced")]
    UnknownSocket(u64),
    /// A second hello on one connection.
    #[error("a second hello on one connection")]
    DuplicateHello,
}

/// One socket, compactly (an account may hold tens of thousands; the shim keeps one too, so
/// its size is memory the host pays): enums instead of strings, module names shared.
#[derive(Clone, Debug)]
struct Entry {
    id: u64,
    fd: i32,
    family: Family,
    proto: Proto,
    role: Role,
    inherited: bool,
    adopted: bool,
    local: Option<Box<str>>,
    peer: Option<Box<str>>,
    module: Option<Arc<str>>,
    via: Option<Arc<str>>,
    label: Option<Arc<str>>,
    opened_at: u64,
    closed_at: Option<u64>,
    counts: [u64; 5],
    peers: Vec<PeerReport>,
    /// The kernel witness's (written, read), once shipped (TCP).
    kernel: Option<[u64; 2]>,
}

impl Entry {
    fn placeholder(id: u64) -> Box<Entry> {
        Box::new(Entry {
            id,
            fd: 0,
            family: Family::Other,
            proto: Proto::Other,
            role: Role::Unconnected,
            inherited: false,
            adopted: false,
            local: None,
            peer: None,
            module: None,
            via: None,
            label: None,
            opened_at: 0,
            closed_at: None,
            counts: [0; 5],
            peers: Vec::new(),
            kernel: None,
        })
    }

    fn to_report(&self) -> SocketReport {
        let [tx_bytes, rx_bytes, tx_calls, rx_calls, errors] = self.counts;
        let mut r = SocketReport {
            id: self.id,
            fd: self.fd,
            family: self.family.as_str().into(),
            proto: self.proto.as_str().into(),
            role: self.role.as_str().into(),
            local: self.local.as_deref().map(str::to_string),
            peer: self.peer.as_deref().map(str::to_string),
            tx_bytes,
            rx_bytes,
            tx_calls,
            rx_calls,
            errors,
            module: self.module.as_deref().map(str::to_string),
            via: self.via.as_deref().map(str::to_string),
            label: self.label.as_deref().map(str::to_string),
            opened_at: rfc3339(self.opened_at),
            closed_at: self.closed_at.map(rfc3339),
            inherited: self.inherited,
            adopted: self.adopted,
            peers: self.peers.clone(),
            ..Default::default()
        };
        r.set_witness(self.kernel);
        r
    }
}

/// The running account of one process image.
#[derive(Clone, Debug)]
pub struct ProcessAccount {
    hello: Option<Hello>,
    sockets: BTreeMap<u64, Box<Entry>>,
    names: HashSet<Arc<str>>,
    closed_order: VecDeque<u64>,
    closed_limit: usize,
    /// Folded groups by key: family, protocol, role, module, label, peer host, joined by
    /// `\u{1f}` (one allocation per fold, and sorted as the tuple would be).
    folded: BTreeMap<String, Folded>,
    end: Option<(u64, ByeReason)>,
    dropped_events: u64,
    notices: Vec<String>,
    /// A `notice` of kind `io_uring` came (the report says so once, not as a notice).
    io_uring: bool,
}

impl Default for ProcessAccount {
    fn default() -> Self {
        Self::new()
    }
}

/// A group of folded sockets: the report line (without its close time) and the last close,
/// formatted only when a report is made.
#[derive(Clone, Debug)]
struct Folded {
    report: SocketReport,
    closed_ms: Option<u64>,
}

impl Folded {
    fn to_report(&self) -> SocketReport {
        SocketReport {
            closed_at: self.closed_ms.map(rfc3339),
            ..self.report.clone()
        }
    }
}

fn host_of(peer: Option<&str>) -> &str {
    match peer {
        Some(p) if p.starts_with('[') => p.split(']').next().unwrap_or("").trim_start_matches('['),
        Some(p) => p.rsplit_once(':').map(|(h, _)| h).unwrap_or(p),
        None => "",
    }
}

impl ProcessAccount {
    /// An empty account with the default closed-socket limit.
    pub fn new() -> Self {
        Self::with_closed_limit(DEFAULT_CLOSED_LIMIT)
    }

    /// An empty account that folds closed sockets beyond `limit`.
    pub fn with_closed_limit(limit: usize) -> Self {
        ProcessAccount {
            hello: None,
            sockets: BTreeMap::new(),
            names: HashSet::new(),
            closed_order: VecDeque::new(),
            closed_limit: limit,
            folded: BTreeMap::new(),
            end: None,
            dropped_events: 0,
            notices: Vec::new(),
            io_uring: false,
        }
    }

    /// The hello, once received.
    pub fn hello(&self) -> Option<&Hello> {
        self.hello.as_ref()
    }

    /// Whether a bye was received.
    pub fn ended(&self) -> Option<ByeReason> {
        self.end.map(|(_, r)| r)
    }

    /// Adds a notice of the reader's own (e.g. "the connection broke").
    pub fn add_notice(&mut self, text: String) {
        if !self.notices.contains(&text) {
            self.notices.push(text);
        }
    }

    fn entry(&mut self, id: u64) -> (&mut Entry, bool) {
        use std::collections::btree_map::Entry as Slot;
        match self.sockets.entry(id) {
            Slot::Occupied(o) => (o.into_mut(), true),
            Slot::Vacant(v) => (v.insert(Entry::placeholder(id)), false),
        }
    }

    fn intern(names: &mut HashSet<Arc<str>>, s: &Option<String>) -> Option<Arc<str>> {
        let s = s.as_deref()?;
        if let Some(a) = names.get(s) {
            return Some(a.clone());
        }
        let a: Arc<str> = Arc::from(s);
        names.insert(a.clone());
        Some(a)
    }

    /// Adds one socket's counter differences; false when the socket was never announced (the
    /// counts are kept under a placeholder).
    fn add(&mut self, id: u64, sd: &SocketDelta) -> bool {
        let (e, known) = self.entry(id);
        for (c, d) in e
            .counts
            .iter_mut()
            .zip([sd.tx_bytes, sd.rx_bytes, sd.tx_calls, sd.rx_calls, sd.errors])
        {
            *c += d;
        }
        for pd in &sd.peers {
            let i = match e.peers.iter().position(|p| p.peer == pd.peer) {
                Some(i) => i,
                None => {
                    e.peers.push(PeerReport {
                        peer: pd.peer.clone(),
                        ..Default::default()
                    });
                    e.peers.len() - 1
                }
            };
            let p = &mut e.peers[i];
            p.tx_bytes += pd.tx_bytes;
            p.rx_bytes += pd.rx_bytes;
            p.tx_calls += pd.tx_calls;
            p.rx_calls += pd.rx_calls;
        }
        known
    }

    /// Marks a socket closed; false when it was never announced.
    fn close(&mut self, id: u64, at: u64) -> bool {
        let (e, known) = self.entry(id);
        e.closed_at = Some(at);
        self.closed_order.push_back(id);
        self.fold_excess();
        known
    }

    /// Applies one message. An error describes a protocol slip; nothing counted is dropped.
    pub fn apply(&mut self, msg: &Message) -> Result<(), AccountError> {
        match msg {
            Message::Hello(h) => {
                if self.hello.is_some() {
                    return Err(AccountError::DuplicateHello);
                }
                self.hello = Some(h.clone());
            }
            Message::Socket(s) => {
                let module = Self::intern(&mut self.names, &s.module);
                let via = Self::intern(&mut self.names, &s.via);
                let label = Self::intern(&mut self.names, &s.label);
                let (e, _) = self.entry(s.id);
                e.fd = s.fd;
                e.family = s.family;
                e.proto = s.proto;
                e.role = s.role;
                e.local = s.local.as_deref().map(Box::from);
                e.peer = s.peer.as_deref().map(Box::from);
                e.module = module;
                e.via = via;
                e.label = label;
                e.opened_at = s.opened_at;
                e.inherited = s.inherited;
                e.adopted = s.adopted;
                if let (Some(tx), Some(rx)) = (s.kernel_tx_bytes, s.kernel_rx_bytes) {
                    e.kernel = Some([tx, rx]);
                }
                // A socket whose whole life fits in one line.
                if let Some(c) = &s.counts {
                    self.add(s.id, c);
                }
                if let Some(at) = s.closed_at {
                    self.close(s.id, at);
                }
            }
            Message::Delta(d) => {
                let mut unknown = None;
                for sd in &d.sockets {
                    if !self.add(sd.id, sd) {
                        unknown = Some(sd.id);
                    }
                }
                if let Some(id) = unknown {
                    return Err(AccountError::UnknownSocket(id));
                }
            }
            Message::Closed(c) => {
                if !self.close(c.id, c.closed_at) {
                    return Err(AccountError::UnknownSocket(c.id));
                }
            }
            Message::Notice(n) if n.kind == crate::wire::IO_URING_NOTICE => self.io_uring = true,
            Message::Notice(n) => self.add_notice(format!("{}: {}", n.kind, n.message)),
            Message::Bye(b) => {
                self.end = Some((b.at, b.reason));
                self.dropped_events = b.dropped_events;
            }
        }
        Ok(())
    }

    /// Takes in what a later connection of the same process image reported (the shim
    /// reconnects, announcing its sockets again, when a host took its connection): counts add
    /// up, metadata and the ending come from the later one.
    pub fn absorb(&mut self, later: &ProcessAccount) {
        for (id, e) in &later.sockets {
            match self.sockets.get_mut(id) {
                Some(mine) => {
                    for (c, d) in mine.counts.iter_mut().zip(e.counts) {
                        *c += d;
                    }
                    if e.family != Family::Other || e.opened_at != 0 {
                        let (counts, peers) = (mine.counts, std::mem::take(&mut mine.peers));
                        **mine = (**e).clone();
                        mine.counts = counts;
                        mine.peers = peers;
                    }
                    mine.closed_at = e.closed_at.or(mine.closed_at);
                    for p in &e.peers {
                        match mine.peers.iter_mut().find(|q| q.peer == p.peer) {
                            Some(q) => {
                                q.tx_bytes += p.tx_bytes;
                                q.rx_bytes += p.rx_bytes;
                                q.tx_calls += p.tx_calls;
                                q.rx_calls += p.rx_calls;
                            }
                            None => mine.peers.push(p.clone()),
                        }
                    }
                }
                None => {
                    self.sockets.insert(*id, e.clone());
                }
            }
        }
        for (k, f) in &later.folded {
            let mine = self.folded.entry(k.clone()).or_insert_with(|| Folded {
                report: SocketReport {
                    folded: 0,
                    ..f.report.clone()
                },
                closed_ms: None,
            });
            if mine.report.folded != 0 {
                let (m, l) = (&mut mine.report, &f.report);
                m.tx_bytes += l.tx_bytes;
                m.rx_bytes += l.rx_bytes;
                m.tx_calls += l.tx_calls;
                m.rx_calls += l.rx_calls;
                m.errors += l.errors;
                m.unseen_tx_bytes += l.unseen_tx_bytes;
                m.unseen_rx_bytes += l.unseen_rx_bytes;
            }
            mine.report.folded += f.report.folded;
            mine.closed_ms = f.closed_ms;
        }
        self.closed_order.extend(later.closed_order.iter().copied());
        self.end = later.end.or(self.end);
        self.dropped_events = self.dropped_events.max(later.dropped_events);
        self.io_uring |= later.io_uring;
        for n in &later.notices {
            self.add_notice(n.clone());
        }
    }

    fn fold_excess(&mut self) {
        while self.closed_order.len() > self.closed_limit {
            let Some(id) = self.closed_order.pop_front() else {
                break;
            };
            let Some(e) = self.sockets.remove(&id) else {
                continue;
            };
            let host = host_of(e.peer.as_deref());
            let sep = '\u{1f}';
            let key = format!(
                "{}{sep}{}{sep}{}{sep}{}{sep}{}{sep}{host}",
                e.family.as_str(),
                e.proto.as_str(),
                e.role.as_str(),
                e.module.as_deref().unwrap_or(""),
                e.label.as_deref().unwrap_or(""),
            );
            let g = self.folded.entry(key).or_insert_with(|| Folded {
                report: SocketReport {
                    family: e.family.as_str().into(),
                    proto: e.proto.as_str().into(),
                    role: e.role.as_str().into(),
                    module: e.module.as_deref().map(str::to_string),
                    label: e.label.as_deref().map(str::to_string),
                    peer: (!host.is_empty()).then(|| host.to_string()),
                    opened_at: rfc3339(e.opened_at),
                    ..Default::default()
                },
                closed_ms: None,
            });
            let f = &mut g.report;
            let [ktx, krx] = e.kernel.unwrap_or_default();
            f.unseen_tx_bytes += ktx.saturating_sub(e.counts[0]);
            f.unseen_rx_bytes += krx.saturating_sub(e.counts[1]);
            let [tx_bytes, rx_bytes, tx_calls, rx_calls, errors] = e.counts;
            f.tx_bytes += tx_bytes;
            f.rx_bytes += rx_bytes;
            f.tx_calls += tx_calls;
            f.rx_calls += rx_calls;
            f.errors += errors;
            g.closed_ms = e.closed_at;
            f.folded += 1;
        }
    }

    /// The process report as of now. `end_hint` names how it ended when no bye came
    /// (`running` or `lost`).
    pub fn report(&self, include_unix: bool, end_hint: &str) -> ProcessReport {
        let mut sockets: Vec<SocketReport> = self.sockets.values().map(|e| e.to_report()).collect();
        sockets.extend(self.folded.values().map(Folded::to_report));

        let mut totals = ProcessTotals::default();
        let mut unix = UnixTotals::default();
        let mut modules: BTreeMap<String, (GroupStats, BTreeSet<String>)> = BTreeMap::new();
        let mut labels: BTreeMap<String, (GroupStats, BTreeSet<String>)> = BTreeMap::new();
        for s in &sockets {
            let n = s.folded.max(1);
            if s.family() == Family::Unix {
                unix.tx_bytes += s.tx_bytes;
                unix.rx_bytes += s.rx_bytes;
                unix.sockets += n;
            }
            if !s.counts(include_unix) {
                continue;
            }
            let conns = if s.is_connection() { n } else { 0 };
            totals.tx_bytes += s.tx_bytes;
            totals.rx_bytes += s.rx_bytes;
            totals.tx_calls += s.tx_calls;
            totals.rx_calls += s.rx_calls;
            totals.errors += s.errors;
            totals.connections += conns;
            totals.sockets += n;
            totals.unseen_tx_bytes += s.unseen_tx_bytes;
            totals.unseen_rx_bytes += s.unseen_rx_bytes;
            let add = |g: &mut (GroupStats, BTreeSet<String>)| {
                g.0.tx_bytes += s.tx_bytes;
                g.0.rx_bytes += s.rx_bytes;
                g.0.tx_calls += s.tx_calls;
                g.0.rx_calls += s.rx_calls;
                g.0.connections += conns;
                g.0.sockets += n;
                g.0.unseen_tx_bytes += s.unseen_tx_bytes;
                g.0.unseen_rx_bytes += s.unseen_rx_bytes;
                if let Some(p) = &s.peer {
                    g.1.insert(p.clone());
                }
                for p in &s.peers {
                    g.1.insert(p.peer.clone());
                }
            };
            add(modules
                .entry(s.module.clone().unwrap_or_else(|| "(unknown)".into()))
                .or_default());
            if let Some(l) = &s.label {
                add(labels.entry(l.clone()).or_default());
            }
        }
        let finish = |(mut g, peers): (GroupStats, BTreeSet<String>)| {
            g.peers = peers.into_iter().collect();
            g
        };
        let h = self.hello.clone().unwrap_or_else(|| Hello {
            pid: 0,
            ppid: 0,
            exe: String::new(),
            argv: Vec::new(),
            started_at: 0,
            origin: crate::wire::Origin::Start,
            shim_version: String::new(),
            interval_ms: 0,
        });
        ProcessReport {
            pid: h.pid,
            ppid: h.ppid,
            exe: h.exe,
            argv: h.argv,
            origin: match h.origin {
                crate::wire::Origin::Start => "start".into(),
                crate::wire::Origin::Fork => "fork".into(),
            },
            started_at: rfc3339(h.started_at),
            ended_at: self.end.map(|(at, _)| rfc3339(at)),
            end: match self.end {
                Some((_, ByeReason::Exit)) => "exit".into(),
                Some((_, ByeReason::Exec)) => "exec".into(),
                None => end_hint.into(),
            },
            totals,
            sockets,
            modules: modules
                .into_iter()
                .map(|(module, g)| ModuleReport {
                    module,
                    stats: finish(g),
                })
                .collect(),
            labels: labels
                .into_iter()
                .map(|(label, g)| LabelReport {
                    label,
                    stats: finish(g),
                })
                .collect(),
            unix,
            dropped_events: self.dropped_events,
            notices: self.notices.clone(),
            uses_io_uring: self.io_uring,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Proto, Role};
    use crate::wire::{Bye, Closed, Delta, Origin, SocketDelta, SocketInfo};

    fn info(id: u64, family: Family, module: &str) -> Message {
        Message::Socket(SocketInfo {
            id,
            fd: 3,
            family,
            proto: if family == Family::Unix {
                Proto::Stream
            } else {
                Proto::Tcp
            },
            role: Role::Connected,
            local: None,
            peer: Some(format!("127.0.0.1:{}", 1000 + id)),
            module: Some(module.into()),
            via: None,
            label: None,
            opened_at: 1,
            inherited: false,
            adopted: false,
            closed_at: None,
            counts: None,
            kernel_tx_bytes: None,
            kernel_rx_bytes: None,
        })
    }

    fn delta(id: u64, tx: u64, rx: u64) -> Message {
        Message::Delta(Delta {
            at: 2,
            sockets: vec![SocketDelta {
                id,
                tx_bytes: tx,
                rx_bytes: rx,
                tx_calls: 1,
                rx_calls: 1,
                ..Default::default()
            }],
        })
    }

    fn hello() -> Message {
        Message::Hello(Hello {
            pid: 9,
            ppid: 1,
            exe: "/x".into(),
            argv: vec![],
            started_at: 0,
            origin: Origin::Start,
            shim_version: "t".into(),
            interval_ms: 1000,
        })
    }

    #[test]
    fn deltas_add_up_and_modules_sum_to_totals() {
        let mut a = ProcessAccount::new();
        for m in [
            hello(),
            info(1, Family::Inet, "/a.so"),
            info(2, Family::Inet6, "/b.so"),
            info(3, Family::Unix, "/a.so"),
        ] {
            a.apply(&m).unwrap();
        }
        for m in [delta(1, 10, 20), delta(1, 5, 0), delta(2, 1, 2), delta(3, 100, 100)] {
            a.apply(&m).unwrap();
        }
        a.apply(&Message::Bye(Bye {
            at: 3,
            reason: ByeReason::Exit,
            dropped_events: 0,
        }))
        .unwrap();
        let r = a.report(false, "running");
        assert_eq!(
            (r.totals.tx_bytes, r.totals.rx_bytes, r.totals.connections),
            (16, 22, 2)
        );
        assert_eq!((r.unix.tx_bytes, r.unix.rx_bytes), (100, 100));
        assert_eq!(r.modules.iter().map(|m| m.stats.tx_bytes).sum::<u64>(), 16);
        assert_eq!(r.end, "exit");
        let with_unix = a.report(true, "running");
        assert_eq!(with_unix.totals.tx_bytes, 116);
    }

    #[test]
    fn unknown_socket_is_reported_but_kept() {
        let mut a = ProcessAccount::new();
        assert_eq!(a.apply(&delta(7, 1, 1)), Err(AccountError::UnknownSocket(7)));
        a.apply(&info(7, Family::Inet, "/m")).unwrap();
        assert_eq!(a.report(false, "running").totals.tx_bytes, 1);
    }

    #[test]
    fn a_later_connection_of_the_same_image_adds_up() {
        let mut first = ProcessAccount::new();
        for m in [hello(), info(1, Family::Inet, "/m"), delta(1, 10, 1)] {
            first.apply(&m).unwrap();
        }
        let mut later = ProcessAccount::new();
        for m in [
            hello(),
            info(1, Family::Inet, "/m"),
            delta(1, 5, 2),
            info(2, Family::Inet, "/m"),
            delta(2, 7, 0),
        ] {
            later.apply(&m).unwrap();
        }
        later
            .apply(&Message::Bye(Bye {
                at: 3,
                reason: ByeReason::Exit,
                dropped_events: 0,
            }))
            .unwrap();
        first.absorb(&later);
        let r = first.report(false, "lost");
        assert_eq!((r.totals.tx_bytes, r.totals.rx_bytes, r.totals.connections), (22, 3, 2));
        assert_eq!(r.end, "exit");
        assert_eq!(r.sockets.len(), 2);
    }

    #[test]
    fn the_kernel_witness_gives_unseen_bytes_per_socket_module_and_process() {
        let mut a = ProcessAccount::with_closed_limit(1);
        a.apply(&hello()).unwrap();
        let witnessed = |id, tx, rx| {
            let Message::Socket(mut s) = info(id, Family::Inet, "/m") else {
                unreachable!()
            };
            s.kernel_tx_bytes = Some(tx);
            s.kernel_rx_bytes = Some(rx);
            s.closed_at = Some(3);
            Message::Socket(s)
        };
        // Socket 1: the hooks saw 10 of 1000 out and all 20 in; socket 2 (folded later): 5 of
        // 7 out; socket 3: the hooks saw everything.
        for m in [delta(1, 10, 20), delta(2, 5, 0), delta(3, 4, 4)] {
            let _ = a.apply(&m);
        }
        for m in [witnessed(1, 1000, 20), witnessed(2, 7, 0), witnessed(3, 4, 4)] {
            a.apply(&m).unwrap();
        }
        a.apply(&Message::Notice(crate::wire::Notice {
            kind: crate::wire::IO_URING_NOTICE.into(),
            message: "uses io_uring".into(),
        }))
        .unwrap();
        let r = a.report(false, "running");
        let s1 = r.sockets.iter().find(|s| s.id == 3).expect("socket 3 kept");
        assert_eq!(
            (s1.kernel_tx_bytes, s1.unseen_tx_bytes, s1.unseen_rx_bytes),
            (Some(4), 0, 0)
        );
        assert_eq!(
            (r.totals.unseen_tx_bytes, r.totals.unseen_rx_bytes),
            (990 + 2, 0),
            "the folded socket's unseen bytes stay in the totals"
        );
        assert_eq!(r.modules[0].stats.unseen_tx_bytes, 992);
        assert!(r.uses_io_uring);
        assert!(r.notices.is_empty(), "io_uring is said once, as uses_io_uring");
    }

    #[test]
    fn folding_keeps_sums_exact() {
        let mut a = ProcessAccount::with_closed_limit(2);
        a.apply(&hello()).unwrap();
        for id in 1..=10 {
            a.apply(&info(id, Family::Inet, "/m")).unwrap();
            a.apply(&delta(id, id, 1)).unwrap();
            a.apply(&Message::Closed(Closed { id, closed_at: 5 })).unwrap();
        }
        let r = a.report(false, "running");
        assert_eq!(r.totals.tx_bytes, 55);
        assert_eq!(r.totals.connections, 10);
        assert_eq!(r.sockets.len(), 3, "two kept, eight folded into one group");
        assert_eq!(r.sockets.iter().map(|s| s.folded.max(1)).sum::<u64>(), 10);
        let g = r.sockets.iter().find(|s| s.folded > 0).expect("a folded group");
        assert_eq!(g.closed_at.as_deref(), Some(rfc3339(5).as_str()), "{g:?}");
        assert_eq!(
            (g.peer.as_deref(), g.module.as_deref()),
            (Some("127.0.0.1"), Some("/m"))
        );
    }
}
