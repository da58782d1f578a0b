//! What an account takes in: the limits that bound what a hostile stream can cost, and the
//! checks a message passes *before* it changes anything, so that a rejected line has no effect
//! at all (never half of one).
//!
//! Counters are checked against the account's grand sums (every counter of every socket, open,
//! closed or folded, and every peer's): a line whose counts would overflow them is rejected.
//! Every total a report shows (per process, module, label, socket, peer) is a part of those
//! sums, so none of them can overflow either.

use std::collections::{BTreeMap, BTreeSet};

use super::entry::{checked, counts_of, peer_counts_of};
use super::{AccountError, ProcessAccount};
use crate::wire::{ModuleInfo, Notice, SocketDelta, SocketInfo};

/// The longest address text accepted (`local`, `peer`, a datagram peer). The shim's longest is
/// about 100 bytes: a 32-byte Unix path whose every byte is not UTF-8, with `@` and `…`.
pub const MAX_ADDR_LEN: usize = 128;
/// The longest peer name accepted: a DNS name is at most 253 bytes; the shim sends none longer
/// than 255.
pub const MAX_PEER_NAME_LEN: usize = 255;
/// The longest notice accepted (kind and message together).
pub const MAX_NOTICE_LEN: usize = 4096;

/// How much one account holds at most. The defaults are what a real shim can send, with room:
/// past a limit, lines are rejected (and the reader counts them as bad lines).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Sockets announced and not closed. A shim has at most [`crate::registry::MAX_RECORDS`]
    /// records and the overflow pseudo-socket; within one batch, up to
    /// [`crate::collect::BATCH`] sockets may be announced before the `closed` of the ones whose
    /// records they reuse.
    pub live_sockets: usize,
    /// Closed sockets kept one by one; older ones are folded into groups.
    pub closed_sockets: usize,
    /// Groups of folded sockets, one per (family, protocol, role, module, label, peer host).
    /// Past it, new groups leave out the peer host; past twice it, module and label too (at
    /// most one group per family, protocol and role: a few hundred).
    pub folded_groups: usize,
    /// Peers per socket (the shim counts [`crate::registry::MAX_PEERS`] per datagram socket).
    pub peers_per_socket: usize,
    /// Distinct names (modules, `via`, labels): the shim's name table holds
    /// [`crate::names::MAX_NAMES`].
    pub names: usize,
    /// Bytes of those names ([`crate::names::ARENA`] in the shim).
    pub name_bytes: usize,
    /// Distinct notices.
    pub notices: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            live_sockets: crate::registry::MAX_RECORDS + 1 + crate::collect::BATCH,
            closed_sockets: super::DEFAULT_CLOSED_LIMIT,
            folded_groups: 4096,
            peers_per_socket: crate::registry::MAX_PEERS,
            names: crate::names::MAX_NAMES,
            name_bytes: crate::names::ARENA,
            notices: 256,
        }
    }
}

fn long(what: &'static str, text: Option<&str>, max: usize) -> Result<(), AccountError> {
    match text {
        Some(t) if t.len() > max => Err(AccountError::TooLong(what, max)),
        _ => Ok(()),
    }
}

impl ProcessAccount {
    /// Checks the counters of `deltas` (socket id, delta) against the grand sums and each
    /// socket's peer list; returns the ids of the sockets they would create.
    pub(super) fn check_counts<'a>(
        &self,
        deltas: impl Iterator<Item = (u64, &'a SocketDelta)>,
    ) -> Result<BTreeSet<u64>, AccountError> {
        let mut sum = [0u64; 6];
        let mut peer_sum = [0u64; 4];
        let mut fresh = BTreeSet::new();
        let mut new_peers: BTreeMap<u64, Vec<&str>> = BTreeMap::new();
        for (id, sd) in deltas {
            sum = checked(sum, counts_of(sd)).ok_or(AccountError::Overflow)?;
            let entry = self.sockets.get(&id);
            if entry.is_none() {
                fresh.insert(id);
            }
            for pd in &sd.peers {
                long("a peer address", Some(&pd.peer), MAX_ADDR_LEN)?;
                peer_sum = checked(peer_sum, peer_counts_of(pd)).ok_or(AccountError::Overflow)?;
                if entry.is_some_and(|e| e.has_peer(&pd.peer)) {
                    continue;
                }
                let added = new_peers.entry(id).or_default();
                if !added.contains(&pd.peer.as_str()) {
                    added.push(&pd.peer);
                    if entry.map_or(0, |e| e.peers.len()) + added.len() > self.limits.peers_per_socket {
                        return Err(AccountError::TooManyPeers {
                            id,
                            limit: self.limits.peers_per_socket,
                        });
                    }
                }
            }
        }
        checked(self.sums, sum).ok_or(AccountError::Overflow)?;
        checked(self.peer_sums, peer_sum).ok_or(AccountError::Overflow)?;
        Ok(fresh)
    }

    /// Checks that `fresh` more open sockets fit.
    pub(super) fn check_live(&self, fresh: usize) -> Result<(), AccountError> {
        if self.live + fresh > self.limits.live_sockets {
            return Err(AccountError::TooManySockets(self.limits.live_sockets));
        }
        Ok(())
    }

    /// Checks a `socket` line: its text fields, the names it would add, the open socket it
    /// would add, and the counts it carries.
    pub(super) fn check_socket(&self, s: &SocketInfo) -> Result<(), AccountError> {
        long("a local address", s.local.as_deref(), MAX_ADDR_LEN)?;
        long("a peer address", s.peer.as_deref(), MAX_ADDR_LEN)?;
        long("a peer name", s.peer_name.as_deref(), MAX_PEER_NAME_LEN)?;
        let (mut count, mut bytes) = (self.names.len(), self.name_bytes);
        let mut new: Vec<&str> = Vec::new();
        for name in [&s.module, &s.via, &s.label].into_iter().flatten() {
            if !self.names.contains(name.as_str()) && !new.contains(&name.as_str()) {
                new.push(name);
                count += 1;
                bytes = bytes.saturating_add(name.len());
            }
        }
        if count > self.limits.names || bytes > self.limits.name_bytes {
            return Err(AccountError::TooManyNames(self.limits.names, self.limits.name_bytes));
        }
        if s.closed_at.is_none() && !self.sockets.contains_key(&s.id) {
            self.check_live(1)?;
        }
        if let Some(c) = &s.counts {
            self.check_counts(std::iter::once((s.id, c)))?;
        }
        Ok(())
    }

    /// Checks a `module` line: its name must fit the name limits (one name per module, shared
    /// with the `socket` lines that name it), so what it adds is bounded like they are.
    pub(super) fn check_module(&self, m: &ModuleInfo) -> Result<(), AccountError> {
        if !self.names.contains(m.module.as_str())
            && (self.names.len() + 1 > self.limits.names
                || self.name_bytes.saturating_add(m.module.len()) > self.limits.name_bytes)
        {
            return Err(AccountError::TooManyNames(self.limits.names, self.limits.name_bytes));
        }
        Ok(())
    }

    /// Checks an `attribute` notice (a glob that matched): as long as a notice may be, and no
    /// more distinct globs than notices.
    pub(super) fn check_attribute_notice(&self, n: &Notice) -> Result<(), AccountError> {
        if n.kind.len() + n.message.len() > MAX_NOTICE_LEN {
            return Err(AccountError::TooLong("a notice", MAX_NOTICE_LEN));
        }
        if self.attribute_matched.len() >= self.limits.notices && !self.attribute_matched.contains(&n.message) {
            return Err(AccountError::TooManyNotices(self.limits.notices));
        }
        Ok(())
    }

    /// Checks a `notice` line (its text as the report would show it is `text`).
    pub(super) fn check_notice(&self, n: &Notice, text: &str) -> Result<(), AccountError> {
        if n.kind.len() + n.message.len() > MAX_NOTICE_LEN {
            return Err(AccountError::TooLong("a notice", MAX_NOTICE_LEN));
        }
        if self.notices.len() >= self.limits.notices && !self.notices.iter().any(|t| t == text) {
            return Err(AccountError::TooManyNotices(self.limits.notices));
        }
        Ok(())
    }
}
