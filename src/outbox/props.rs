//! Property tests of what a shim hears from its reporter ([`listen`]) and of the preamble of a
//! new connection ([`resume::preamble`]): thousands of generated inputs.
//!
//! - Whatever bytes a reporter (or anything else at its socket) sends, in any reads, [`listen`]
//!   never panics and ends; a whole `end` line (`run`: the run is over) wins over a whole
//!   `reconnect` line (`listen` stopping); an end of stream without either is `Gone`.
//! - A conversation cut anywhere (the waiting lines from any line on): a reporter that heard
//!   only the preamble and the waiting lines counts exactly what those lines carry, and knows
//!   every socket they name.

use std::io;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use super::*;
use crate::account::ProcessAccount;
use crate::model::{Family, Proto, Role};
use crate::wire::{self, Closed, Delta, Hello, Message, Origin, SocketDelta, SocketInfo};

const CASES: u32 = 1000;

fn runner() -> TestRunner {
    TestRunner::new(Config {
        cases: CASES,
        failure_persistence: None,
        ..Config::default()
    })
}

/// A piece of what may come from the reporter's side.
fn piece() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => proptest::collection::vec(any::<u8>(), 0..300),
        2 => Just(END_LINE.to_vec()),
        2 => Just(RECONNECT_LINE.to_vec()),
        1 => Just(b"{\"v\":1,\"type\":\"ending\"}\n".to_vec()),
    ]
}

/// `pieces` read whole, one per read (as a reporter writes its lines), then the stream's end
/// (`eof`) or nothing more for now.
fn hear(pieces: &[Vec<u8>], eof: bool) -> Heard {
    // A read of nothing is the stream's end: only the last one may be.
    let pieces: Vec<&Vec<u8>> = pieces.iter().filter(|p| !p.is_empty()).collect();
    let mut at = 0;
    listen(|buf| {
        let Some(p) = pieces.get(at) else {
            return if eof {
                Ok(0)
            } else {
                Err(io::ErrorKind::WouldBlock.into())
            };
        };
        at += 1;
        let n = p.len().min(buf.len());
        buf[..n].copy_from_slice(&p[..n]);
        Ok(n)
    })
}

#[test]
fn whatever_the_reporter_sends_the_shim_hears_it_right() {
    let input = (proptest::collection::vec(piece(), 0..12), any::<bool>());
    runner()
        .run(&input, |(pieces, eof)| {
            let heard = hear(&pieces, eof);
            let end = pieces.iter().any(|p| p.as_slice() == END_LINE);
            let again = pieces.iter().any(|p| p.as_slice() == RECONNECT_LINE);
            if end {
                prop_assert_eq!(heard, Heard::End);
            } else if again && heard != Heard::End {
                prop_assert_eq!(heard, Heard::Reconnect);
            } else if eof && !again && heard != Heard::End && heard != Heard::Reconnect {
                prop_assert_eq!(heard, Heard::Gone);
            }
            if !eof && !end && !again {
                // Random bytes may spell a line's type; silence is never taken for an end.
                prop_assert_ne!(heard, Heard::Gone);
            }
            Ok(())
        })
        .unwrap();
}

fn socket(id: u64) -> Message {
    Message::Socket(SocketInfo {
        id,
        fd: 3,
        family: if id & 1 == 0 { Family::Inet } else { Family::Inet6 },
        proto: Proto::Tcp,
        role: Role::Connected,
        peer: Some(format!("10.0.0.{id}:80")),
        module: Some(format!("/m{}.so", id % 3)),
        opened_at: 1,
        ..Default::default()
    })
}

/// A conversation of one process: sockets opened, counted and closed.
fn conversation() -> impl Strategy<Value = Vec<Message>> {
    proptest::collection::vec((0u8..3, 1u64..8, 0u64..5000), 1..60).prop_map(|steps| {
        let mut open = std::collections::BTreeSet::new();
        let mut msgs = Vec::new();
        for (what, id, n) in steps {
            match what {
                0 if !open.contains(&id) => {
                    open.insert(id);
                    msgs.push(socket(id));
                }
                1 if open.contains(&id) => msgs.push(Message::Delta(Delta {
                    at: 2,
                    sockets: vec![SocketDelta {
                        id,
                        tx_bytes: n,
                        rx_bytes: n / 2,
                        ..Default::default()
                    }],
                })),
                2 if open.remove(&id) => msgs.push(Message::Closed(Closed { id, closed_at: 3 })),
                _ => {}
            }
        }
        msgs
    })
}

#[test]
fn a_conversation_cut_anywhere_resumes_exactly_on_a_new_connection() {
    let hello = Hello {
        pid: 9,
        ppid: 1,
        exe: "/bin/p".into(),
        argv: vec![],
        started_at: 1,
        origin: Origin::Start,
        shim_version: "t".into(),
        interval_ms: 1000,
        image: 5,
    };
    runner()
        .run(&(conversation(), any::<usize>()), |(msgs, cut)| {
            let cut = cut % (msgs.len() + 1);
            // The sender's account, kept as it encodes (every message).
            let mut mine = ProcessAccount::new();
            mine.apply(&Message::Hello(hello.clone())).unwrap();
            for m in &msgs {
                mine.apply(m).unwrap();
            }
            let waiting: Vec<u8> = msgs[cut..].iter().flat_map(wire::encode).collect();
            let pre = resume::preamble(&hello, &mine, &waiting);
            let mut theirs = ProcessAccount::new();
            for line in pre.split(|b| *b == b'\n').chain(waiting.split(|b| *b == b'\n')) {
                if line.is_empty() {
                    continue;
                }
                let m = wire::decode(line).unwrap();
                prop_assert!(theirs.apply(&m).is_ok(), "every line names a known socket: {:?}", m);
            }
            // Exactly the waiting lines' counts.
            let want: u64 = msgs[cut..]
                .iter()
                .map(|m| match m {
                    Message::Delta(d) => d.sockets.iter().map(|s| s.tx_bytes).sum(),
                    _ => 0,
                })
                .sum();
            let r = theirs.report(false, "running");
            prop_assert_eq!(r.totals.tx_bytes, want);
            prop_assert!(r.sockets.iter().all(|s| s.family != "other"));
            Ok(())
        })
        .unwrap();
}
