//! One socket as an account keeps it, and the arithmetic on its counters.

use std::sync::Arc;

use crate::model::{Family, Proto, Role, SocketOrigin};
use crate::report::{PeerReport, SocketReport};
use crate::time::rfc3339;
use crate::wire::{PeerDelta, SocketDelta};

/// A socket's counters: tx bytes, rx bytes, tx calls, rx calls, errors, and (the overflow
/// record only) the connections that shared it.
pub(super) type Counts = [u64; 6];
/// A peer's counters: tx bytes, rx bytes, tx calls, rx calls.
pub(super) type PeerCounts = [u64; 4];

/// The counters a delta carries.
pub(super) fn counts_of(sd: &SocketDelta) -> Counts {
    [
        sd.tx_bytes,
        sd.rx_bytes,
        sd.tx_calls,
        sd.rx_calls,
        sd.errors,
        sd.connections,
    ]
}

/// The counters a peer delta carries.
pub(super) fn peer_counts_of(pd: &PeerDelta) -> PeerCounts {
    [pd.tx_bytes, pd.rx_bytes, pd.tx_calls, pd.rx_calls]
}

/// `a + b` field by field, or `None` when any field would overflow.
pub(super) fn checked<const N: usize>(a: [u64; N], b: [u64; N]) -> Option<[u64; N]> {
    let mut out = a;
    for (o, d) in out.iter_mut().zip(b) {
        *o = o.checked_add(d)?;
    }
    Some(out)
}

/// `*to += by`, saturating: for sums of values each already bounded (a report's totals, a merge
/// of two connections), where overflowing means hostile input and must not panic.
pub(super) fn add(to: &mut u64, by: u64) {
    *to = to.saturating_add(by);
}

/// [`add`] for each field.
pub(super) fn add_all<const N: usize>(to: &mut [u64; N], by: [u64; N]) {
    for (t, b) in to.iter_mut().zip(by) {
        add(t, b);
    }
}

/// Adds a peer's counters to a report line, saturating.
pub(super) fn add_peer(p: &mut PeerReport, c: PeerCounts) {
    add(&mut p.tx_bytes, c[0]);
    add(&mut p.rx_bytes, c[1]);
    add(&mut p.tx_calls, c[2]);
    add(&mut p.rx_calls, c[3]);
}

/// One socket, compactly (an account may hold tens of thousands; the shim keeps one too, so
/// its size is memory the host pays): enums instead of strings, module names shared.
#[derive(Clone, Debug)]
pub(super) struct Entry {
    pub id: u64,
    pub fd: i32,
    pub family: Family,
    pub proto: Proto,
    pub role: Role,
    pub inherited: bool,
    pub adopted: bool,
    pub origin: SocketOrigin,
    pub local: Option<Box<str>>,
    pub peer: Option<Box<str>>,
    /// The name the process looked the peer up by.
    pub peer_name: Option<Box<str>>,
    pub module: Option<Arc<str>>,
    pub via: Option<Arc<str>>,
    pub label: Option<Arc<str>>,
    pub opened_at: u64,
    pub closed_at: Option<u64>,
    pub counts: Counts,
    pub peers: Vec<PeerReport>,
    /// The kernel witness's (written, read), once shipped (TCP).
    pub kernel: Option<[u64; 2]>,
    /// The kernel's (written, read) when the process began counting the socket.
    pub kernel_base: [u64; 2],
    /// Open in another process too (across a fork).
    pub shared: bool,
}

impl Entry {
    /// A socket known only by its id (a delta or close came before its announcement).
    pub fn placeholder(id: u64) -> Box<Entry> {
        Box::new(Entry {
            id,
            fd: 0,
            family: Family::Other,
            proto: Proto::Other,
            role: Role::Unconnected,
            inherited: false,
            adopted: false,
            origin: SocketOrigin::Bsd,
            local: None,
            peer: None,
            peer_name: None,
            module: None,
            via: None,
            label: None,
            opened_at: 0,
            closed_at: None,
            counts: [0; 6],
            peers: Vec::new(),
            kernel: None,
            kernel_base: [0, 0],
            shared: false,
        })
    }

    /// Whether `peer` is one of this socket's peers already.
    pub fn has_peer(&self, peer: &str) -> bool {
        self.peers.iter().any(|p| p.peer == peer)
    }

    /// Adds counters already checked not to overflow (see `check.rs`).
    pub fn add(&mut self, sd: &SocketDelta) {
        add_all(&mut self.counts, counts_of(sd));
        for pd in &sd.peers {
            let i = match self.peers.iter().position(|p| p.peer == pd.peer) {
                Some(i) => i,
                None => {
                    self.peers.push(PeerReport {
                        peer: pd.peer.clone(),
                        ..Default::default()
                    });
                    self.peers.len() - 1
                }
            };
            add_peer(&mut self.peers[i], peer_counts_of(pd));
        }
    }

    /// The socket's line in a report.
    pub fn to_report(&self) -> SocketReport {
        let [tx_bytes, rx_bytes, tx_calls, rx_calls, errors, shared] = self.counts;
        let mut r = SocketReport {
            id: self.id,
            fd: self.fd,
            family: self.family.as_str().into(),
            proto: self.proto.as_str().into(),
            role: self.role.as_str().into(),
            local: self.local.as_deref().map(str::to_string),
            peer: self.peer.as_deref().map(str::to_string),
            peer_name: self.peer_name.as_deref().map(str::to_string),
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
            origin: self.origin.as_str().into(),
            peers: self.peers.clone(),
            // The overflow record's line stands for the connections that shared it.
            folded: if self.role == Role::Overflow { shared } else { 0 },
            kernel_base_tx_bytes: self.kernel_base[0],
            kernel_base_rx_bytes: self.kernel_base[1],
            shared: self.shared,
            ..Default::default()
        };
        r.set_witness(self.kernel);
        r
    }
}
