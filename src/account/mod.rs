//! Turning a stream of wire messages into a process report.
//!
//! [`ProcessAccount`] is the one place where deltas are added up. The reporter keeps one per
//! connection; the shim keeps one for its own process (for `SOCKMETER_REPORT` and the
//! embedding API's snapshot) and feeds it the very messages it ships, so every consumer sees
//! the same numbers.
//!
//! A long-running server opens millions of sockets: closed sockets beyond
//! [`Limits::closed_sockets`] are folded, oldest first, into one entry per (family, protocol,
//! role, module, label, peer host), whose `folded` field says how many sockets it stands for.
//! Totals, modules and labels stay exact.
//!
//! The stream may be hostile (a reporter reads whatever its socket is sent): every message is
//! checked before it changes anything ([`check`]), counters never wrap or panic, and what one
//! account holds is bounded ([`Limits`]). A rejected message changes nothing.

mod check;
mod entry;
mod fold;

use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};
use std::sync::Arc;

pub use check::{Limits, MAX_ADDR_LEN, MAX_NOTICE_LEN, MAX_PEER_NAME_LEN};
use entry::{add, add_all, counts_of, peer_counts_of, Counts, Entry, PeerCounts};
use fold::Folded;

use crate::model::{Family, Role};
use crate::report::{GroupStats, LabelReport, ModuleReport, ProcessReport, ProcessTotals, SocketReport, UnixTotals};
use crate::time::rfc3339;
use crate::wire::{ByeReason, ExitStatus, Hello, Message, ModuleInfo, SocketDelta, SocketInfo};

/// Closed sockets kept one by one before folding starts.
pub const DEFAULT_CLOSED_LIMIT: usize = 20_000;

/// A message that does not fit the conversation so far, or that the account refuses.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AccountError {
    /// A delta or close for a socket never announced (its counts are kept under a placeholder).
    #[error("message for socket {0}, which was never announced")]
    UnknownSocket(u64),
    /// A second hello on one connection (ignored).
    #[error("a second hello on one connection")]
    DuplicateHello,
    /// Counts that would overflow a total: the line is rejected.
    #[error("counts that would overflow a total (rejected)")]
    Overflow,
    /// More open sockets than a shim can have: the line is rejected.
    #[error("more than {0} open sockets (rejected)")]
    TooManySockets(usize),
    /// More peers on one socket than a shim tracks: the line is rejected.
    #[error("more than {limit} peers on socket {id} (rejected)")]
    TooManyPeers {
        /// The socket.
        id: u64,
        /// The limit.
        limit: usize,
    },
    /// A text field longer than any a shim sends: the line is rejected.
    #[error("{0} longer than {1} bytes (rejected)")]
    TooLong(&'static str, usize),
    /// More distinct module and label names than a shim's table holds: the line is rejected.
    #[error("more than {0} module and label names or {1} bytes of them (rejected)")]
    TooManyNames(usize, usize),
    /// More distinct notices than kept: the line is rejected.
    #[error("more than {0} notices (rejected)")]
    TooManyNotices(usize),
}

impl AccountError {
    /// Whether the message was rejected whole (it changed nothing); the others are protocol
    /// slips whose counts were kept.
    pub fn rejected(&self) -> bool {
        !matches!(self, AccountError::UnknownSocket(_))
    }
}

/// The running account of one process image.
#[derive(Clone, Debug)]
pub struct ProcessAccount {
    hello: Option<Hello>,
    sockets: BTreeMap<u64, Box<Entry>>,
    /// How many of `sockets` are open.
    live: usize,
    names: HashSet<Arc<str>>,
    name_bytes: usize,
    /// Closed sockets kept one by one, oldest first (each id once).
    closed_order: VecDeque<u64>,
    limits: Limits,
    /// Folded groups by key: family, protocol, role, module, label, peer host, joined by
    /// `\u{1f}` (one allocation per fold, and sorted as the tuple would be).
    folded: BTreeMap<String, Folded>,
    /// Every socket counter ever added (open, closed and folded sockets): every total of the
    /// report is a part of these, so checking them is checking all.
    sums: Counts,
    /// The same for every peer counter.
    peer_sums: PeerCounts,
    end: Option<(u64, ByeReason)>,
    /// How the process ended, when its `bye` said.
    status: Option<ExitStatus>,
    dropped_events: u64,
    notices: Vec<String>,
    /// A `notice` of kind `io_uring` came (the report says so once, not as a notice).
    io_uring: bool,
    /// How each module came in (`module` lines), sorted by name ([`ProcessAccount::module`]).
    /// A sorted `Vec`, not a `BTreeMap`: a process has a few modules, and a map's first node
    /// took ~720 bytes, a third of what a reporter kept per forked child.
    modules: Vec<(Arc<str>, ModuleInfo)>,
    /// The `--attribute` globs that matched an object (`attribute` notices).
    attribute_matched: BTreeSet<String>,
}

impl Default for ProcessAccount {
    fn default() -> Self {
        Self::new()
    }
}

/// How much an account holds, for tests and for readers that watch memory.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Footprint {
    /// Open sockets.
    pub live_sockets: usize,
    /// Closed sockets kept one by one.
    pub closed_sockets: usize,
    /// Groups of folded sockets.
    pub folded_groups: usize,
    /// The most peers any socket has.
    pub max_peers: usize,
    /// Distinct names.
    pub names: usize,
    /// Bytes of names.
    pub name_bytes: usize,
    /// Notices.
    pub notices: usize,
}

impl ProcessAccount {
    /// An empty account with the default limits.
    pub fn new() -> Self {
        Self::with_limits(Limits::default())
    }

    /// An empty account that folds closed sockets beyond `limit`.
    pub fn with_closed_limit(limit: usize) -> Self {
        Self::with_limits(Limits {
            closed_sockets: limit,
            ..Limits::default()
        })
    }

    /// An empty account with these limits.
    pub fn with_limits(limits: Limits) -> Self {
        ProcessAccount {
            hello: None,
            sockets: BTreeMap::new(),
            live: 0,
            names: HashSet::new(),
            name_bytes: 0,
            closed_order: VecDeque::new(),
            limits,
            folded: BTreeMap::new(),
            sums: [0; 6],
            peer_sums: [0; 4],
            end: None,
            status: None,
            dropped_events: 0,
            notices: Vec::new(),
            io_uring: false,
            modules: Vec::new(),
            attribute_matched: BTreeSet::new(),
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

    /// The limits this account keeps to.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// How much it holds now.
    pub fn footprint(&self) -> Footprint {
        Footprint {
            live_sockets: self.live,
            closed_sockets: self.sockets.len() - self.live,
            folded_groups: self.folded.len(),
            max_peers: self.sockets.values().map(|e| e.peers.len()).max().unwrap_or(0),
            names: self.names.len(),
            name_bytes: self.name_bytes,
            notices: self.notices.len(),
        }
    }

    /// The ids of the sockets open now, in id order.
    pub fn open_ids(&self) -> Vec<u64> {
        self.sockets
            .iter()
            .filter(|(_, e)| e.closed_at.is_none())
            .map(|(id, _)| *id)
            .collect()
    }

    /// Socket `id` announced again, as an open socket with its latest metadata and no counts
    /// (for a new connection of the same process: `outbox::resume`); None when this account
    /// does not hold it one by one (never announced, or folded).
    pub fn announcement(&self, id: u64) -> Option<SocketInfo> {
        let e = self.sockets.get(&id)?;
        Some(SocketInfo {
            id,
            fd: e.fd,
            family: e.family,
            proto: e.proto,
            role: e.role,
            local: e.local.as_deref().map(str::to_string),
            peer: e.peer.as_deref().map(str::to_string),
            module: e.module.as_deref().map(str::to_string),
            via: e.via.as_deref().map(str::to_string),
            label: e.label.as_deref().map(str::to_string),
            opened_at: e.opened_at,
            inherited: e.inherited,
            adopted: e.adopted,
            closed_at: None,
            counts: None,
            kernel_tx_bytes: e.kernel.map(|k| k[0]),
            kernel_rx_bytes: e.kernel.map(|k| k[1]),
            kernel_base_tx_bytes: e.kernel_base[0],
            kernel_base_rx_bytes: e.kernel_base[1],
            shared: e.shared,
            origin: e.origin,
            peer_name: e.peer_name.as_deref().map(str::to_string),
        })
    }

    /// How each module came in, as the `module` lines said.
    pub fn module_infos(&self) -> impl Iterator<Item = &ModuleInfo> {
        self.modules.iter().map(|(_, m)| m)
    }

    /// How module `name` came in, if a `module` line said.
    fn module(&self, name: &str) -> Option<&ModuleInfo> {
        let i = self.modules.binary_search_by(|(k, _)| k.as_ref().cmp(name)).ok()?;
        Some(&self.modules[i].1)
    }

    /// Records how module `name` came in (a later line for the same name replaces it).
    fn set_module(&mut self, name: Arc<str>, info: ModuleInfo) {
        match self.modules.binary_search_by(|(k, _)| k.as_ref().cmp(&name)) {
            Ok(i) => self.modules[i].1 = info,
            Err(i) => self.modules.insert(i, (name, info)),
        }
    }

    /// Adds a notice of the reader's own (e.g. "the connection broke").
    pub fn add_notice(&mut self, text: String) {
        if !self.notices.contains(&text) {
            self.notices.push(text);
        }
    }

    fn intern(&mut self, s: &Option<String>) -> Option<Arc<str>> {
        let s = s.as_deref()?;
        if let Some(a) = self.names.get(s) {
            return Some(a.clone());
        }
        let a: Arc<str> = Arc::from(s);
        self.names.insert(a.clone());
        self.name_bytes += s.len();
        Some(a)
    }

    /// The socket `id`, made a placeholder (open) when never announced; and whether it was
    /// known.
    fn entry(&mut self, id: u64) -> (&mut Entry, bool) {
        use std::collections::btree_map::Entry as Slot;
        match self.sockets.entry(id) {
            Slot::Occupied(o) => (o.into_mut(), true),
            Slot::Vacant(v) => {
                self.live += 1;
                (v.insert(Entry::placeholder(id)), false)
            }
        }
    }

    /// Adds one socket's counter differences (already checked); false when the socket was
    /// never announced (the counts are kept under a placeholder).
    fn add(&mut self, id: u64, sd: &SocketDelta) -> bool {
        add_all(&mut self.sums, counts_of(sd));
        for pd in &sd.peers {
            add_all(&mut self.peer_sums, peer_counts_of(pd));
        }
        let (e, known) = self.entry(id);
        e.add(sd);
        known
    }

    /// Marks a socket closed; false when it was never announced.
    fn close(&mut self, id: u64, at: u64) -> bool {
        let known = match self.sockets.get_mut(&id) {
            Some(e) => {
                let was_open = e.closed_at.is_none();
                e.closed_at = Some(at);
                if !was_open {
                    return true;
                }
                self.live -= 1;
                true
            }
            None => {
                let mut e = Entry::placeholder(id);
                e.closed_at = Some(at);
                self.sockets.insert(id, e);
                false
            }
        };
        self.closed_order.push_back(id);
        self.fold_excess();
        known
    }

    /// Applies one message. An error describes a protocol slip whose counts were kept, or a
    /// message rejected whole ([`AccountError::rejected`]), which changed nothing.
    pub fn apply(&mut self, msg: &Message) -> Result<(), AccountError> {
        match msg {
            Message::Hello(h) => {
                if self.hello.is_some() {
                    return Err(AccountError::DuplicateHello);
                }
                self.hello = Some(h.clone());
            }
            Message::Socket(s) => {
                self.check_socket(s)?;
                let module = self.intern(&s.module);
                let via = self.intern(&s.via);
                let label = self.intern(&s.label);
                let (e, _) = self.entry(s.id);
                e.fd = s.fd;
                e.family = s.family;
                e.proto = s.proto;
                e.role = s.role;
                e.local = s.local.as_deref().map(Box::from);
                e.peer = s.peer.as_deref().map(Box::from);
                e.peer_name = s.peer_name.as_deref().map(Box::from);
                e.module = module;
                e.via = via;
                e.label = label;
                e.opened_at = s.opened_at;
                e.inherited = s.inherited;
                e.adopted = s.adopted;
                e.origin = s.origin;
                if let (Some(tx), Some(rx)) = (s.kernel_tx_bytes, s.kernel_rx_bytes) {
                    e.kernel = Some([tx, rx]);
                }
                e.kernel_base = [s.kernel_base_tx_bytes, s.kernel_base_rx_bytes];
                e.shared = s.shared;
                // A socket whose whole life fits in one line.
                if let Some(c) = &s.counts {
                    self.add(s.id, c);
                }
                if let Some(at) = s.closed_at {
                    self.close(s.id, at);
                }
            }
            Message::Delta(d) => {
                let fresh = self.check_counts(d.sockets.iter().map(|sd| (sd.id, sd)))?;
                self.check_live(fresh.len())?;
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
            Message::Notice(n) if n.kind == crate::wire::ATTRIBUTE_NOTICE => {
                self.check_attribute_notice(n)?;
                self.attribute_matched.insert(n.message.clone());
            }
            Message::Module(m) => {
                self.check_module(m)?;
                if let Some(name) = self.intern(&Some(m.module.clone())) {
                    self.set_module(name, m.clone());
                }
            }
            Message::Notice(n) => {
                let text = format!("{}: {}", n.kind, n.message);
                self.check_notice(n, &text)?;
                self.add_notice(text);
            }
            Message::Bye(b) => {
                self.end = Some((b.at, b.reason));
                self.status = b.status.filter(|st| st.exit_code.is_some() != st.signal.is_some());
                self.dropped_events = b.dropped_events;
            }
        }
        Ok(())
    }

    /// Takes in what a later connection of the same process image reported (the shim
    /// reconnects, announcing its sockets again, when a host took its connection): counts add
    /// up (saturating: each account is bounded, their sum need not be), metadata and the ending
    /// come from the later one. The result is for a report; it is not fed further.
    pub fn absorb(&mut self, later: &ProcessAccount) {
        for (id, e) in &later.sockets {
            match self.sockets.get_mut(id) {
                Some(mine) => {
                    add_all(&mut mine.counts, e.counts);
                    if e.family != Family::Other || e.opened_at != 0 {
                        let (counts, peers) = (mine.counts, std::mem::take(&mut mine.peers));
                        **mine = (**e).clone();
                        mine.counts = counts;
                        mine.peers = peers;
                    }
                    mine.closed_at = e.closed_at.or(mine.closed_at);
                    for p in &e.peers {
                        match mine.peers.iter_mut().find(|q| q.peer == p.peer) {
                            Some(q) => entry::add_peer(q, [p.tx_bytes, p.rx_bytes, p.tx_calls, p.rx_calls]),
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
            match self.folded.get_mut(k) {
                Some(mine) => mine.absorb(f),
                None => {
                    self.folded.insert(k.clone(), f.clone());
                }
            }
        }
        add_all(&mut self.sums, later.sums);
        add_all(&mut self.peer_sums, later.peer_sums);
        self.live = self.sockets.values().filter(|e| e.closed_at.is_none()).count();
        self.closed_order.extend(later.closed_order.iter().copied());
        self.end = later.end.or(self.end);
        self.status = later.status.or(self.status);
        self.io_uring |= later.io_uring;
        self.attribute_matched.extend(later.attribute_matched.iter().cloned());
        self.dropped_events = self.dropped_events.max(later.dropped_events);
        for n in &later.notices {
            self.add_notice(n.clone());
        }
        for (k, m) in &later.modules {
            self.set_module(k.clone(), m.clone());
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
                add(&mut unix.tx_bytes, s.tx_bytes);
                add(&mut unix.rx_bytes, s.rx_bytes);
                add(&mut unix.sockets, n);
            }
            if !s.counts(include_unix) {
                continue;
            }
            // The overflow record: `folded` counts the connections that shared it.
            let conns = if s.is_connection() {
                n
            } else if s.role == Role::Overflow.as_str() {
                s.folded
            } else {
                0
            };
            add(&mut totals.tx_bytes, s.tx_bytes);
            add(&mut totals.rx_bytes, s.rx_bytes);
            add(&mut totals.tx_calls, s.tx_calls);
            add(&mut totals.rx_calls, s.rx_calls);
            add(&mut totals.errors, s.errors);
            add(&mut totals.connections, conns);
            add(&mut totals.sockets, n);
            add(&mut totals.unseen_tx_bytes, s.unseen_tx_bytes);
            add(&mut totals.unseen_rx_bytes, s.unseen_rx_bytes);
            let group = |g: &mut (GroupStats, BTreeSet<String>)| {
                add(&mut g.0.tx_bytes, s.tx_bytes);
                add(&mut g.0.rx_bytes, s.rx_bytes);
                add(&mut g.0.tx_calls, s.tx_calls);
                add(&mut g.0.rx_calls, s.rx_calls);
                add(&mut g.0.connections, conns);
                add(&mut g.0.sockets, n);
                add(&mut g.0.unseen_tx_bytes, s.unseen_tx_bytes);
                add(&mut g.0.unseen_rx_bytes, s.unseen_rx_bytes);
                if let Some(p) = &s.peer {
                    g.1.insert(p.clone());
                }
                for p in &s.peers {
                    g.1.insert(p.peer.clone());
                }
            };
            group(
                modules
                    .entry(s.module.clone().unwrap_or_else(|| "(unknown)".into()))
                    .or_default(),
            );
            if let Some(l) = &s.label {
                group(labels.entry(l.clone()).or_default());
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
            image: 0,
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
            end: match (self.end, self.status) {
                (Some((_, ByeReason::Exit)), Some(st)) if st.signal.is_some() => "signal".into(),
                (Some((_, ByeReason::Exit)), _) => "exit".into(),
                (Some((_, ByeReason::Exec)), _) => "exec".into(),
                (None, _) => end_hint.into(),
            },
            exit_code: self.status.and_then(|st| st.exit_code),
            signal: self.status.and_then(|st| st.signal),
            totals,
            sockets,
            modules: modules
                .into_iter()
                .map(|(module, g)| {
                    let info = self.module(module.as_str());
                    ModuleReport {
                        load: info.map(|m| m.load.as_str().to_string()),
                        loaded_at: info.and_then(|m| m.loaded_at).map(rfc3339),
                        module,
                        stats: finish(g),
                    }
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
            attribute_matched: self.attribute_matched.iter().cloned().collect(),
        }
    }
}

#[cfg(test)]
mod tests;
