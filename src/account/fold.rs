//! Folding closed sockets: past the account's closed-socket limit, the oldest closed sockets
//! are folded into one report line per (family, protocol, role, module, label, peer host),
//! whose `folded` field says how many sockets it stands for. Totals, modules and labels stay
//! exact. The groups are bounded too (see [`super::Limits::folded_groups`]).

use crate::report::SocketReport;
use crate::time::rfc3339;

use super::entry::{add, Entry};
use super::ProcessAccount;

/// A group of folded sockets: the report line (without its close time) and the last close,
/// formatted only when a report is made.
#[derive(Clone, Debug)]
pub(super) struct Folded {
    pub report: SocketReport,
    pub closed_ms: Option<u64>,
}

impl Folded {
    /// The group's line in a report.
    pub fn to_report(&self) -> SocketReport {
        SocketReport {
            closed_at: self.closed_ms.map(rfc3339),
            ..self.report.clone()
        }
    }

    /// Adds another group's sockets (a later connection of the same process).
    pub fn absorb(&mut self, later: &Folded) {
        let (m, l) = (&mut self.report, &later.report);
        add(&mut m.tx_bytes, l.tx_bytes);
        add(&mut m.rx_bytes, l.rx_bytes);
        add(&mut m.tx_calls, l.tx_calls);
        add(&mut m.rx_calls, l.rx_calls);
        add(&mut m.errors, l.errors);
        add(&mut m.unseen_tx_bytes, l.unseen_tx_bytes);
        add(&mut m.unseen_rx_bytes, l.unseen_rx_bytes);
        add(&mut m.folded, l.folded);
        self.closed_ms = later.closed_ms.or(self.closed_ms);
    }
}

/// The host part of a peer address (`127.0.0.1` of `127.0.0.1:8080`, `::1` of `[::1]:80`).
fn host_of(peer: Option<&str>) -> &str {
    match peer {
        Some(p) if p.starts_with('[') => p.split(']').next().unwrap_or("").trim_start_matches('['),
        Some(p) => p.rsplit_once(':').map(|(h, _)| h).unwrap_or(p),
        None => "",
    }
}

/// How much of a socket's identity its group keeps.
#[derive(Clone, Copy)]
enum Detail {
    /// Family, protocol, role, module, label and peer host.
    Full,
    /// Without the peer host.
    NoHost,
    /// Family, protocol and role only.
    Kind,
}

fn key(e: &Entry, detail: Detail) -> String {
    let sep = '\u{1f}';
    let (module, label, host) = match detail {
        Detail::Full => (e.module.as_deref(), e.label.as_deref(), host_of(e.peer.as_deref())),
        Detail::NoHost => (e.module.as_deref(), e.label.as_deref(), ""),
        Detail::Kind => (None, None, ""),
    };
    // Pushed, not `format!`ed: a short-lived socket is folded at its close, and the
    // formatting machinery was a sixth of the cost of a closed socket in the collector.
    let parts = [
        e.origin.as_str(),
        e.family.as_str(),
        e.proto.as_str(),
        e.role.as_str(),
        module.unwrap_or(""),
        label.unwrap_or(""),
        host,
    ];
    let mut k = String::with_capacity(parts.iter().map(|p| p.len() + 1).sum());
    for (i, p) in parts.into_iter().enumerate() {
        if i > 0 {
            k.push(sep);
        }
        k.push_str(p);
    }
    k
}

impl ProcessAccount {
    /// Folds the oldest closed sockets beyond the closed-socket limit.
    pub(super) fn fold_excess(&mut self) {
        while self.closed_order.len() > self.limits.closed_sockets {
            let Some(id) = self.closed_order.pop_front() else {
                break;
            };
            let Some(e) = self.sockets.remove(&id) else {
                continue;
            };
            self.fold(&e);
        }
    }

    fn fold(&mut self, e: &Entry) {
        let cap = self.limits.folded_groups;
        // The most detailed key that names an existing group or still fits.
        let mut detail = Detail::Full;
        let mut k = key(e, detail);
        for (coarser, room) in [(Detail::NoHost, cap), (Detail::Kind, cap.saturating_mul(2))] {
            if self.folded.contains_key(&k) || self.folded.len() < room {
                break;
            }
            detail = coarser;
            k = key(e, detail);
        }
        let g = self.folded.entry(k).or_insert_with(|| {
            let (module, label, peer) = match detail {
                Detail::Full => {
                    let host = host_of(e.peer.as_deref());
                    (
                        e.module.as_deref(),
                        e.label.as_deref(),
                        (!host.is_empty()).then_some(host),
                    )
                }
                Detail::NoHost => (e.module.as_deref(), e.label.as_deref(), None),
                Detail::Kind => (None, None, None),
            };
            Folded {
                report: SocketReport {
                    family: e.family.as_str().into(),
                    proto: e.proto.as_str().into(),
                    role: e.role.as_str().into(),
                    origin: e.origin.as_str().into(),
                    module: module.map(str::to_string),
                    label: label.map(str::to_string),
                    peer: peer.map(str::to_string),
                    opened_at: rfc3339(e.opened_at),
                    ..Default::default()
                },
                closed_ms: None,
            }
        });
        let f = &mut g.report;
        let [ktx, krx] = e.kernel.unwrap_or_default();
        add(&mut f.unseen_tx_bytes, ktx.saturating_sub(e.counts[0]));
        add(&mut f.unseen_rx_bytes, krx.saturating_sub(e.counts[1]));
        let [tx_bytes, rx_bytes, tx_calls, rx_calls, errors, _] = e.counts;
        add(&mut f.tx_bytes, tx_bytes);
        add(&mut f.rx_bytes, rx_bytes);
        add(&mut f.tx_calls, tx_calls);
        add(&mut f.rx_calls, rx_calls);
        add(&mut f.errors, errors);
        add(&mut f.folded, 1);
        g.closed_ms = e.closed_at;
    }
}
