//! From the live registry to wire messages: the reporting thread's one pass.
//!
//! [`Shipper`] remembers, per record, the socket id it last announced and the metadata
//! generation it announced. A pass announces new or changed sockets (`socket`), takes what the
//! counters counted since the last pass (an atomic swap per direction, see
//! `registry::Counters`) and ships it (`delta`), and for a record whose last fd was closed ships
//! its final delta, a `closed`, and frees the record for reuse. Bytes added while a pass runs
//! are simply part of the next take: nothing is lost at a report boundary. The first socket
//! charged to a module is preceded by one `module` line saying how that module came in.

use crate::account::ProcessAccount;
use crate::addr::Addr;
use crate::model::Load;
use crate::model::Role;
use crate::model::SocketOrigin;
use crate::names::Names;
use crate::registry::{RecordState, Registry, Taken, FLAG_ADOPTED, FLAG_CFSOCKET, FLAG_INHERITED, FLAG_SHARED};
use crate::wire::{Closed, Delta, Message, ModuleInfo, PeerDelta, SocketDelta, SocketInfo};

/// Where a pass finds the text of a name id and what is known of a module: the region's
/// [`Names`], or a plain function of the id (which knows no more than the text).
pub trait NameSource {
    /// The text of name `id`.
    fn name(&self, id: u32) -> Option<String>;
    /// How module `id` came in and when (ms since the epoch), when known.
    fn module(&self, _id: u32) -> Option<(Load, Option<u64>)> {
        None
    }
    /// The name the process looked up the peer at `addr` by, when it did.
    fn peer_name(&self, _addr: &[u64; crate::addr::ADDR_WORDS]) -> Option<String> {
        None
    }
}

impl<F: Fn(u32) -> Option<String>> NameSource for F {
    fn name(&self, id: u32) -> Option<String> {
        self(id)
    }
}

impl NameSource for Names {
    fn name(&self, id: u32) -> Option<String> {
        Names::name(self, id)
    }
    fn module(&self, id: u32) -> Option<(Load, Option<u64>)> {
        let m = self.meta(id);
        (m.load != 0).then(|| (Load::from_code(m.load), (m.loaded_ms != 0).then_some(m.loaded_ms)))
    }
    fn peer_name(&self, addr: &[u64; crate::addr::ADDR_WORDS]) -> Option<String> {
        self.hosts.name_of_addr(addr)
    }
}

#[derive(Clone, Default)]
struct Shipped {
    announced: bool,
    id: u64,
    generation: u32,
    /// The socket's counters as last taken.
    taken: Taken,
}

/// About how many sockets' messages go into one batch.
pub const BATCH: usize = 256;

fn flush(
    out: &mut Vec<Message>,
    deltas: &mut Vec<SocketDelta>,
    closed: &mut Vec<Closed>,
    now_ms: u64,
    emit: &mut dyn FnMut(Vec<Message>),
) {
    let mut batch = std::mem::take(out);
    if !deltas.is_empty() {
        batch.push(Message::Delta(Delta {
            at: now_ms,
            sockets: std::mem::take(deltas),
        }));
    }
    batch.extend(closed.drain(..).map(Message::Closed));
    if !batch.is_empty() {
        emit(batch);
    }
}

/// Applies a batch of messages to the process's `account` and appends them to `lines` as wire
/// lines, for one write of the whole batch (a pass over many short-lived sockets would
/// otherwise cost a system call per line); `each` sees every line (newline included), for
/// in-process subscribers.
pub fn encode_batch(
    account: &mut ProcessAccount,
    msgs: Vec<Message>,
    lines: &mut Vec<u8>,
    mut each: impl FnMut(&[u8]),
) {
    lines.reserve(msgs.len() * 96);
    for m in msgs {
        let _ = account.apply(&m);
        let start = lines.len();
        crate::wire::encode_into(&m, lines);
        each(&lines[start..]);
    }
}

/// The reporting thread's memory of what it has shipped.
#[derive(Default)]
pub struct Shipper {
    slots: Vec<Shipped>,
    /// Module ids whose `module` line was sent on this connection.
    modules_sent: Vec<bool>,
}

fn addr_text(w: &[u64; crate::addr::ADDR_WORDS]) -> Option<String> {
    Addr::decode(w).map(|a| a.text())
}

impl Shipper {
    /// A shipper that has shipped nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// One pass over `reg`, returning every message. `names` turns module and label ids into
    /// text (and, given the region's [`Names`], says how each module came in).
    pub fn pass(&mut self, reg: &Registry, names: &dyn NameSource, now_ms: u64) -> Vec<Message> {
        let mut all = Vec::new();
        self.pass_in_batches(reg, names, now_ms, &mut |batch| all.extend(batch));
        all
    }

    /// One pass over `reg`, handing messages to `emit` in batches of about [`BATCH`] sockets
    /// (so a process with many sockets never holds all their messages at once). Within a
    /// batch, a socket is announced before its delta, and its delta comes before its close.
    pub fn pass_in_batches(
        &mut self,
        reg: &Registry,
        names: &dyn NameSource,
        now_ms: u64,
        emit: &mut dyn FnMut(Vec<Message>),
    ) {
        let hw = reg.records.high_water() as usize;
        if self.slots.len() < hw {
            self.slots.resize(hw, Shipped::default());
        }
        let mut out = Vec::new();
        let mut deltas = Vec::new();
        let mut closed = Vec::new();
        for (idx, sh) in self.slots.iter_mut().enumerate().take(hw) {
            let rec = reg.records.get(idx as u32);
            let state = rec.state();
            if matches!(state, RecordState::Free | RecordState::Opening) {
                if sh.announced {
                    // Vanished without a close we saw (a discarded duplicate, or a reset).
                    closed.push(Closed {
                        id: sh.id,
                        closed_at: now_ms,
                    });
                    *sh = Shipped::default();
                }
                continue;
            }
            // Nothing new since the last pass (an idle socket, most of a busy process's): the
            // same socket and metadata, still open, not a single count. Such a record costs a
            // few loads, not a copy of its metadata and a look at its peer slots. Sockets that
            // count per peer (unconnected datagram sockets) and the overflow record, which
            // also counts connections, are always looked at.
            if sh.announced
                && state == RecordState::Open
                && idx as u32 != crate::registry::OVERFLOW
                && !matches!(rec.role(), Role::Unconnected | Role::Datagram)
                && rec.id() == sh.id
                && rec.generation() == sh.generation
                && rec.counters.unchanged_since(&sh.taken)
            {
                continue;
            }
            let meta = rec.meta();
            let s = &meta.socket;
            let name = |id: u32| if id == 0 { None } else { names.name(id) };
            if sh.announced && sh.id != meta.id {
                closed.push(Closed {
                    id: sh.id,
                    closed_at: now_ms,
                });
                *sh = Shipped::default();
            }
            let d = rec.counters.take_since(&mut sh.taken);
            rec.note_taken(&sh.taken, d.tx_bytes, d.rx_bytes);
            let mut peers = Vec::new();
            for p in reg.records.peers(idx as u32).iter() {
                let Some(addr) = p.addr() else { continue };
                let pd = p.counters.take();
                if !pd.is_zero() {
                    peers.push(PeerDelta {
                        peer: addr_text(&addr).unwrap_or_default(),
                        tx_bytes: pd.tx_bytes,
                        rx_bytes: pd.rx_bytes,
                        tx_calls: pd.tx_calls,
                        rx_calls: pd.rx_calls,
                    });
                }
            }
            // The overflow record: connections that shared it since the last pass.
            let shared = if idx as u32 == crate::registry::OVERFLOW {
                reg.records.take_overflow_connections()
            } else {
                0
            };
            let counts = (!d.is_zero() || !peers.is_empty() || shared > 0).then_some(SocketDelta {
                id: meta.id,
                tx_bytes: d.tx_bytes,
                rx_bytes: d.rx_bytes,
                tx_calls: d.tx_calls,
                rx_calls: d.rx_calls,
                errors: d.errors,
                connections: shared,
                peers,
            });
            let is_closed = state == RecordState::Closed;
            // A socket that opened and closed since the last pass (most short connections) is
            // shipped as one line: metadata, counts and close together.
            let whole_life = !sh.announced && is_closed;
            let (mut in_line, in_delta) = if whole_life { (counts, None) } else { (None, counts) };
            if !sh.announced || sh.generation != meta.generation {
                sh.announced = true;
                sh.id = meta.id;
                sh.generation = meta.generation;
                let m = s.module as usize;
                if m != 0 && !self.modules_sent.get(m).copied().unwrap_or(false) {
                    if let (Some(module), Some((load, loaded_at))) = (name(s.module), names.module(s.module)) {
                        out.push(Message::Module(ModuleInfo {
                            module,
                            load,
                            loaded_at,
                        }));
                    }
                    if self.modules_sent.len() <= m {
                        self.modules_sent.resize(m + 1, false);
                    }
                    self.modules_sent[m] = true;
                }
                out.push(Message::Socket(SocketInfo {
                    id: meta.id,
                    fd: s.fd,
                    family: s.family,
                    proto: s.proto,
                    role: s.role,
                    local: addr_text(&s.local),
                    peer: addr_text(&s.peer),
                    peer_name: names.peer_name(&s.peer),
                    module: name(s.module),
                    via: name(s.via),
                    label: name(s.label),
                    opened_at: s.opened_ms,
                    inherited: s.flags & FLAG_INHERITED != 0,
                    adopted: s.flags & FLAG_ADOPTED != 0,
                    origin: if s.flags & FLAG_CFSOCKET != 0 {
                        SocketOrigin::Cfsocket
                    } else {
                        SocketOrigin::Bsd
                    },
                    closed_at: whole_life.then_some(meta.closed_ms),
                    counts: in_line.take(),
                    kernel_tx_bytes: meta.witness.map(|w| w[0]),
                    kernel_rx_bytes: meta.witness.map(|w| w[1]),
                    kernel_base_tx_bytes: meta.witness_base[0],
                    kernel_base_rx_bytes: meta.witness_base[1],
                    shared: s.flags & FLAG_SHARED != 0,
                }));
            }
            deltas.extend(in_delta);
            if is_closed {
                if !whole_life {
                    closed.push(Closed {
                        id: meta.id,
                        closed_at: meta.closed_ms,
                    });
                }
                reg.records.free(idx as u32);
                *sh = Shipped::default();
            }
            if out.len() + deltas.len() + closed.len() >= BATCH {
                flush(&mut out, &mut deltas, &mut closed, now_ms, emit);
            }
        }
        flush(&mut out, &mut deltas, &mut closed, now_ms, emit);
    }

    /// Announces every socket again at the next pass (a new connection knows none of them);
    /// counters already shipped are not sent again.
    pub fn reannounce(&mut self) {
        for s in &mut self.slots {
            s.generation = s.generation.wrapping_sub(1);
        }
        self.modules_sent.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::account::ProcessAccount;
    use crate::addr::{encode_v4, ADDR_WORDS};
    use crate::model::{Dir, Family, Proto, Role};
    use crate::registry::{FdState, NewSocket};

    static REG: Registry = Registry::new();

    fn names(id: u32) -> Option<String> {
        Some(format!("/m{id}.so"))
    }

    /// A connected TCP socket on `fd` to 127.0.0.1:`port`, opened by module 2.
    fn connected(fd: i32, port: u16) -> NewSocket {
        NewSocket {
            fd,
            family: Family::Inet,
            proto: Proto::Tcp,
            role: Role::Connected,
            flags: 0,
            module: 2,
            via: 0,
            label: 0,
            local: [0; ADDR_WORDS],
            peer: encode_v4([127, 0, 0, 1], port),
            opened_ms: 1,
        }
    }

    #[test]
    fn passes_ship_differences_and_close_frees() {
        let s = connected(5, 80);
        let idx = REG.open(&s, || 1).0;
        let rec = REG.records.get(idx);
        let mut sh = Shipper::new();
        let mut acct = ProcessAccount::new();
        rec.counters.count(Dir::Tx, 100, false);
        for m in sh.pass(&REG, &names, 2) {
            acct.apply(&m).unwrap();
        }
        rec.counters.count(Dir::Tx, 23, false);
        rec.counters.count(Dir::Rx, 7, false);
        assert_eq!(REG.close(5, FdState::Record(idx), 3), Some(idx));
        let msgs = sh.pass(&REG, &names, 4);
        assert!(matches!(msgs.last(), Some(Message::Closed(_))));
        for m in msgs {
            acct.apply(&m).unwrap();
        }
        assert!(sh.pass(&REG, &names, 5).is_empty(), "nothing new, nothing sent");
        let r = acct.report(false, "running");
        assert_eq!((r.totals.tx_bytes, r.totals.rx_bytes, r.totals.tx_calls), (123, 7, 2));
        assert_eq!(r.sockets[0].peer.as_deref(), Some("127.0.0.1:80"));
        assert_eq!(r.sockets[0].module.as_deref(), Some("/m2.so"));
        assert_eq!(r.sockets[0].closed_at, Some(crate::time::rfc3339(3)));
        assert_eq!(REG.records.get(idx).state(), RecordState::Free);
    }

    /// An idle socket is skipped (no message), and what it does later is shipped: a count, a
    /// change of metadata, its close.
    #[test]
    fn idle_sockets_are_skipped_and_woken_by_a_count_a_change_or_a_close() {
        static OWN: Registry = Registry::new();
        let idx = OWN.open(&connected(6, 81), || 1).0;
        let rec = OWN.records.get(idx);
        let mut sh = Shipper::new();
        let mut acct = ProcessAccount::new();
        let mut apply = |msgs: Vec<Message>| {
            let n = msgs.len();
            for m in msgs {
                acct.apply(&m).unwrap();
            }
            n
        };
        assert_eq!(apply(sh.pass(&OWN, &names, 1)), 1, "announced");
        assert_eq!(apply(sh.pass(&OWN, &names, 2)), 0, "idle: nothing");
        rec.counters.count(Dir::Rx, 9, false);
        assert_eq!(apply(sh.pass(&OWN, &names, 3)), 1, "a count: its delta");
        assert_eq!(apply(sh.pass(&OWN, &names, 4)), 0, "idle again");
        rec.set_peer(&[0; ADDR_WORDS]);
        assert_eq!(apply(sh.pass(&OWN, &names, 5)), 1, "a change: announced again");
        assert_eq!(OWN.close(6, FdState::Record(idx), 6), Some(idx));
        assert_eq!(apply(sh.pass(&OWN, &names, 7)), 1, "the close");
        let r = acct.report(false, "running");
        assert_eq!((r.totals.rx_bytes, r.totals.rx_calls), (9, 1));
        assert_eq!(OWN.records.get(idx).state(), RecordState::Free);
    }

    #[test]
    fn the_first_socket_of_a_module_is_preceded_by_its_module_line() {
        static REG3: Registry = Registry::new();
        static NAMES: Names = Names::new();
        let text = "/usr/lib/x86_64-linux-gnu/gstreamer-1.0/libgstsoup.so";
        let meta = crate::names::Meta {
            load: Load::Dlopen.code(),
            loaded_ms: 7,
            ..Default::default()
        };
        let id = NAMES.intern(
            1,
            text.as_bytes(),
            |b| {
                b[..text.len()].copy_from_slice(text.as_bytes());
                text.len()
            },
            |_| meta,
        );
        let mut s = connected(7, 82);
        s.module = id;
        let mut sh = Shipper::new();
        let mut acct = ProcessAccount::new();
        REG3.open(&s, || 1);
        s.fd = 8;
        REG3.open(&s, || 1);
        let msgs = sh.pass(&REG3, &NAMES, 9);
        let modules: Vec<_> = msgs.iter().filter(|m| matches!(m, Message::Module(_))).collect();
        assert_eq!(modules.len(), 1, "one module line for two sockets: {msgs:?}");
        assert!(matches!(msgs[0], Message::Module(_)), "before the sockets: {msgs:?}");
        for m in &msgs {
            acct.apply(m).unwrap();
        }
        let r = acct.report(false, "running");
        assert_eq!(r.modules.len(), 1);
        assert_eq!(r.modules[0].module, text);
        assert_eq!(r.modules[0].load.as_deref(), Some("dlopen"));
        assert_eq!(r.modules[0].loaded_at, Some(crate::time::rfc3339(7)));
        assert!(sh
            .pass(&REG3, &NAMES, 10)
            .iter()
            .all(|m| !matches!(m, Message::Module(_))));
        sh.reannounce();
        let again = sh.pass(&REG3, &NAMES, 11);
        assert!(
            matches!(again[0], Message::Module(_)),
            "a new connection hears it again: {again:?}"
        );
    }

    #[test]
    fn a_peer_the_process_looked_up_is_announced_with_its_name() {
        static REG4: Registry = Registry::new();
        static NAMES: Names = Names::new();
        NAMES
            .hosts
            .record(b"localhost", crate::hostnames::key_v4([127, 0, 0, 1]));
        let mut sh = Shipper::new();
        REG4.open(&connected(9, 8080), || 1);
        let mut other = connected(10, 80);
        other.peer = encode_v4([10, 1, 2, 3], 80);
        REG4.open(&other, || 1);
        let names: Vec<(Option<String>, Option<String>)> = sh
            .pass(&REG4, &NAMES, 2)
            .into_iter()
            .filter_map(|m| match m {
                Message::Socket(s) => Some((s.peer, s.peer_name)),
                _ => None,
            })
            .collect();
        assert_eq!(
            names,
            [
                (Some("127.0.0.1:8080".into()), Some("localhost".into())),
                (Some("10.1.2.3:80".into()), None)
            ]
        );
    }

    #[test]
    fn a_socket_born_and_closed_between_passes_is_one_line() {
        static REG2: Registry = Registry::new();
        let s = connected(6, 81);
        let mut sh = Shipper::new();
        let mut acct = ProcessAccount::new();
        for (tx, rx) in [(64, 64), (0, 0)] {
            let idx = REG2.open(&s, || 1).0;
            let rec = REG2.records.get(idx);
            if tx > 0 {
                rec.counters.count(Dir::Tx, tx, false);
                rec.counters.count(Dir::Rx, rx, false);
            }
            assert_eq!(REG2.close(6, FdState::Record(idx), 3), Some(idx));
            let msgs = sh.pass(&REG2, &names, 4);
            assert_eq!(msgs.len(), 1, "{msgs:?}");
            let Message::Socket(info) = &msgs[0] else {
                panic!("{msgs:?}")
            };
            assert_eq!(info.closed_at, Some(3));
            assert_eq!(
                info.counts.as_ref().map(|c| (c.tx_bytes, c.rx_bytes)),
                (tx > 0).then_some((tx, rx))
            );
            acct.apply(&msgs[0]).unwrap();
            assert_eq!(REG2.records.get(idx).state(), RecordState::Free);
        }
        let r = acct.report(false, "running");
        assert_eq!(
            (r.totals.tx_bytes, r.totals.rx_bytes, r.totals.connections),
            (64, 64, 2)
        );
        assert!(r.sockets.iter().all(|s| s.closed_at == Some(crate::time::rfc3339(3))));
    }

    #[test]
    fn connections_that_shared_the_overflow_record_still_count() {
        static FULL: Registry = Registry::new();
        let mut sh = Shipper::new();
        let mut acct = ProcessAccount::new();
        let n = crate::registry::MAX_RECORDS as u32 - 1;
        for fd in 0..n {
            let (idx, _) = FULL.open(&connected(fd as i32, 80), || 1);
            assert_ne!(idx, crate::registry::OVERFLOW);
        }
        // The registry is full: two more connections share the overflow record.
        for fd in n..n + 2 {
            let (idx, _) = FULL.open(&connected(fd as i32, 80), || 1);
            assert_eq!(idx, crate::registry::OVERFLOW);
            FULL.records.count_overflow_connection();
            FULL.records.get(idx).counters.count(Dir::Tx, 10, false);
        }
        for m in sh.pass(&FULL, &names, 2) {
            acct.apply(&m).unwrap();
        }
        let r = acct.report(false, "running");
        assert_eq!(
            r.totals.connections,
            u64::from(n) + 2,
            "every connection, the shared ones too"
        );
        assert_eq!(r.totals.tx_bytes, 20);
        let o = r
            .sockets
            .iter()
            .find(|s| s.role == "overflow")
            .expect("the overflow line");
        assert_eq!((o.folded, o.tx_bytes), (2, 20));
    }
}
