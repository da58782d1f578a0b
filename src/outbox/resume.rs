//! What a new connection to a reporter must hear first.
//!
//! A shim whose connection broke (the reporter went away, restarted, or the host closed the
//! connection's fd) keeps the lines the reporter had not read ([`super::Outbox`], rewound to a
//! whole line) and sends them on its next connection. That connection is a stranger to the
//! reporter until it says `hello`; and the waiting lines may count on sockets announced on the
//! old connection, which the new reporter never heard of (a `delta` or `closed` for a socket
//! never announced is kept only under a placeholder, outside the totals). So a new connection
//! starts with [`preamble`]: the `hello` (the same one: the reporter merges the connections of
//! one process image by pid, start and image token), a `module` line for every module, and a
//! `socket` line for every socket that is open, or that the waiting lines name before they
//! announce it. The account the sender keeps of its own messages has them all: it holds every
//! open socket, and the most recent closed ones (a sender that reconnects runs no pass while
//! more closes wait to be written than its account keeps one by one, see [`closes_kept`] and
//! `Outbox::closes_waiting`).

use std::collections::HashSet;

use crate::account::ProcessAccount;
use crate::wire::{self, Hello, Message};

/// How many closes may wait to be written before a sender runs no new pass: the closed sockets
/// its `account` keeps one by one (older ones are folded, and a folded socket can no longer
/// be announced again).
pub fn closes_kept(account: &ProcessAccount) -> usize {
    account.limits().closed_sockets
}

/// The first lines of a new connection (see the module docs): `hello`, the modules, and the
/// sockets that the `waiting` lines (complete wire lines) or later deltas may name.
pub fn preamble(hello: &Hello, account: &ProcessAccount, waiting: &[u8]) -> Vec<u8> {
    let mut ids: Vec<u64> = account.open_ids();
    let mut wanted: HashSet<u64> = ids.iter().copied().collect();
    let mut announced: HashSet<u64> = HashSet::new();
    let mut need = |id: u64, announced: &HashSet<u64>| {
        if !announced.contains(&id) && wanted.insert(id) {
            ids.push(id);
        }
    };
    for line in waiting.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        match wire::decode(line) {
            Ok(Message::Socket(s)) => {
                announced.insert(s.id);
            }
            Ok(Message::Delta(d)) => {
                for sd in &d.sockets {
                    need(sd.id, &announced);
                }
            }
            Ok(Message::Closed(c)) => need(c.id, &announced),
            _ => {}
        }
    }
    let mut out = wire::encode(&Message::Hello(hello.clone()));
    for m in account.module_infos() {
        wire::encode_into(&Message::Module(m.clone()), &mut out);
    }
    for id in ids {
        if let Some(s) = account.announcement(id) {
            wire::encode_into(&Message::Socket(s), &mut out);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Family, Load, Proto, Role};
    use crate::wire::{Closed, Delta, ModuleInfo, Origin, SocketDelta, SocketInfo};

    fn hello() -> Hello {
        Hello {
            pid: 7,
            ppid: 1,
            exe: "/bin/h".into(),
            argv: vec!["h".into()],
            started_at: 5,
            origin: Origin::Start,
            shim_version: "t".into(),
            interval_ms: 1000,
            image: 99,
        }
    }

    fn socket(id: u64, port: u16) -> Message {
        Message::Socket(SocketInfo {
            id,
            fd: 3,
            family: Family::Inet,
            proto: Proto::Tcp,
            role: Role::Connected,
            peer: Some(format!("127.0.0.1:{port}")),
            module: Some("/bin/h".into()),
            opened_at: 6,
            ..Default::default()
        })
    }

    fn delta(id: u64, tx: u64) -> Message {
        Message::Delta(Delta {
            at: 8,
            sockets: vec![SocketDelta {
                id,
                tx_bytes: tx,
                ..Default::default()
            }],
        })
    }

    /// A conversation broken after its first lines: the new connection gets the preamble and
    /// the waiting lines, and a reporter that heard nothing of the old connection counts
    /// exactly what the waiting lines carry, under the sockets' real metadata.
    #[test]
    fn a_new_reporter_counts_the_waiting_lines_exactly() {
        let mut mine = ProcessAccount::new();
        let sent = [
            Message::Hello(hello()),
            Message::Module(ModuleInfo {
                module: "/bin/h".into(),
                load: Load::Executable,
                loaded_at: Some(4),
            }),
            socket(1, 80),
            socket(2, 81),
            socket(3, 82),
            delta(1, 10),
        ];
        // Waiting: socket 1 grows and closes, socket 4 is announced and counts; 2 and 3 stay
        // open and quiet (the next pass's deltas will need them).
        let waiting = [
            delta(1, 5),
            Message::Closed(Closed { id: 1, closed_at: 9 }),
            socket(4, 83),
            delta(4, 7),
        ];
        for m in sent.iter().chain(&waiting) {
            mine.apply(m).unwrap();
        }
        let text: Vec<u8> = waiting.iter().flat_map(wire::encode).collect();
        let pre = preamble(&hello(), &mine, &text);
        let mut theirs = ProcessAccount::new();
        let mut announced = Vec::new();
        for line in pre.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            let m = wire::decode(line).unwrap();
            if let Message::Socket(s) = &m {
                announced.push(s.id);
            }
            theirs.apply(&m).unwrap();
        }
        announced.sort();
        assert_eq!(
            announced,
            [1, 2, 3, 4],
            "open sockets and the closed one the waiting lines need"
        );
        for m in &waiting {
            theirs.apply(m).expect("every waiting line names a known socket");
        }
        theirs
            .apply(&delta(2, 3))
            .expect("a later delta of an open socket is known too");
        let r = theirs.report(false, "running");
        assert_eq!(r.totals.tx_bytes, 5 + 7 + 3, "exactly what the new reporter was sent");
        assert_eq!(r.totals.connections, 4);
        assert_eq!(r.pid, 7);
        assert_eq!(r.modules[0].load.as_deref(), Some("executable"));
        assert!(r.sockets.iter().all(|s| s.family == "inet"), "{:?}", r.sockets);
    }
}
