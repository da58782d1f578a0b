//! Property tests of [`Conn::feed`]: thousands of generated streams, cut into reads at any
//! byte.
//!
//! - Any stream (valid lines, arbitrary bytes, mutated lines, lines past `MAX_LINE`), in any
//!   reads: never panics, holds at most one line of buffer and what the account's limits allow
//!   (small limits here, so that they are reached), and ends exactly as the same bytes read in
//!   one piece.
//! - A valid conversation interleaved with hostile lines that must be refused (unparsable,
//!   mutated, overflowing, oversized, a second hello, a wrong version, messages before the
//!   hello): every valid count is kept exactly, and every hostile line is one bad line.
//!
//! Each property runs in a watchdog thread (a hang fails it). Cases: [`CASES`] each.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use sockmeter::account::Limits;
use sockmeter::model::{Family, Proto, Role};
use sockmeter::wire::{
    encode, Bye, ByeReason, Closed, Delta, Hello, Message, Origin, SocketDelta, SocketInfo, MAX_LINE,
};

use super::{Conn, Status};

/// Cases per property.
const CASES: u32 = 600;

/// Runs `body` in a thread (with room for proptest's value trees) and fails if it has not
/// finished within `secs`.
pub(crate) fn watchdog(secs: u64, body: impl FnOnce() + Send + 'static) {
    let (tx, rx) = std::sync::mpsc::channel();
    let t = std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(move || {
            body();
            let _ = tx.send(());
        })
        .unwrap();
    match rx.recv_timeout(std::time::Duration::from_secs(secs)) {
        Ok(()) => t.join().unwrap(),
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            if let Err(e) = t.join() {
                std::panic::resume_unwind(e);
            }
        }
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => panic!("not finished after {secs} s: a hang"),
    }
}

fn runner() -> TestRunner {
    TestRunner::new(Config {
        cases: CASES,
        failure_persistence: None,
        ..Config::default()
    })
}

fn small() -> Limits {
    Limits {
        live_sockets: 4,
        closed_sockets: 3,
        folded_groups: 2,
        peers_per_socket: 2,
        names: 4,
        name_bytes: 64,
        notices: 3,
    }
}

fn hello(pid: u32) -> Message {
    Message::Hello(Hello {
        pid,
        ppid: 1,
        exe: "/bin/p".into(),
        argv: vec!["p".into()],
        started_at: 1,
        origin: Origin::Start,
        shim_version: "t".into(),
        interval_ms: 1000,
        image: 0,
    })
}

fn socket(id: u64, peer: String, module: String) -> Message {
    Message::Socket(SocketInfo {
        id,
        fd: 3,
        family: Family::Inet,
        proto: Proto::Tcp,
        role: Role::Connected,
        peer: Some(peer),
        module: Some(module),
        opened_at: 1,
        ..Default::default()
    })
}

fn delta(id: u64, tx: u64, rx: u64, peers: Vec<(String, u64)>) -> Message {
    Message::Delta(Delta {
        at: 2,
        sockets: vec![SocketDelta {
            id,
            tx_bytes: tx,
            rx_bytes: rx,
            tx_calls: 1,
            peers: peers
                .into_iter()
                .map(|(peer, tx_bytes)| sockmeter::wire::PeerDelta {
                    peer,
                    tx_bytes,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }],
    })
}

fn bye() -> Message {
    Message::Bye(Bye {
        at: 3,
        reason: ByeReason::Exit,
        dropped_events: 0,
        status: None,
    })
}

fn count() -> impl Strategy<Value = u64> {
    prop_oneof![4 => 0..10_000u64, 1 => Just(u64::MAX), 1 => Just(u64::MAX / 2), 1 => any::<u64>()]
}

/// A valid message about a few sockets, names and peers (so the small limits are reached).
pub(crate) fn valid() -> impl Strategy<Value = Message> {
    let name = || (0u8..8).prop_map(|n| format!("/m{n}.so"));
    let peer = || (0u8..6).prop_map(|n| format!("10.0.0.{n}:53"));
    prop_oneof![
        1 => (0u32..3).prop_map(hello),
        4 => (1u64..10, peer(), name()).prop_map(|(id, p, m)| socket(id, p, m)),
        4 => (1u64..10, count(), count(), proptest::collection::vec((peer(), count()), 0..3))
            .prop_map(|(id, tx, rx, peers)| delta(id, tx, rx, peers)),
        2 => (1u64..10).prop_map(|id| Message::Closed(Closed { id, closed_at: 4 })),
        1 => (0u8..6).prop_map(|n| Message::Notice(sockmeter::wire::Notice { kind: "k".into(), message: n.to_string() })),
        1 => Just(bye()),
    ]
}

/// One line of a hostile stream (with its newline, or none when `MAX_LINE` is passed).
pub(crate) fn segment() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        30 => valid().prop_map(|m| encode(&m)),
        10 => proptest::collection::vec(any::<u8>(), 0..200),
        10 => (valid(), any::<usize>(), any::<usize>(), proptest::collection::vec(any::<u8>(), 0..6)).prop_map(
            |(m, cut, at, junk)| {
                let mut l = encode(&m);
                l.truncate(cut % (l.len() + 1));
                let at = at % (l.len() + 1);
                l.splice(at..at, junk);
                l
            }
        ),
        3 => Just(b"\n\n  \r\n".to_vec()),
    ]
}

/// A line past `MAX_LINE` (4 MiB: put in a few cases only, to keep the suite fast), with its
/// newline or, at the end of a stream, without.
fn overlong(extra: usize) -> Vec<u8> {
    let mut l = vec![b'{'; MAX_LINE + extra];
    l.push(b'\n');
    l
}

/// Feeds `data` in pieces of the given sizes (cycled), checking the bounds after each.
fn feed_in_pieces(c: &mut Conn, data: &[u8], sizes: &[usize]) -> Result<(), TestCaseError> {
    let mut at = 0;
    let mut i = 0;
    while at < data.len() {
        let n = sizes[i % sizes.len()].min(data.len() - at);
        c.feed(&data[at..at + n]);
        at += n;
        i += 1;
        prop_assert!(c.buf.len() <= MAX_LINE, "one line of buffer at most: {}", c.buf.len());
        let (f, l) = (c.account.footprint(), c.account.limits());
        prop_assert!(
            f.live_sockets <= l.live_sockets
                && f.closed_sockets <= l.closed_sockets
                && f.folded_groups <= 2 * l.folded_groups + 4 * 7 * 6
                && f.max_peers <= l.peers_per_socket
                && f.names <= l.names
                && f.name_bytes <= l.name_bytes
                && f.notices <= l.notices + 2,
            "{f:?} past {l:?}"
        );
    }
    Ok(())
}

#[test]
fn any_stream_in_any_reads_is_bounded_and_read_as_in_one_piece() {
    watchdog(120, || {
        let input = (
            proptest::collection::vec(segment(), 0..40),
            proptest::collection::vec(1usize..400, 1..8),
            proptest::option::weighted(0.03, (any::<usize>(), 0usize..3)),
        );
        runner()
            .run(&input, |(mut segments, sizes, long)| {
                if let Some((at, extra)) = long {
                    let at = at % (segments.len() + 1);
                    segments.insert(at, overlong(extra));
                }
                let data: Vec<u8> = segments.concat();
                let mut pieces = Conn::with_limits(1, small());
                feed_in_pieces(&mut pieces, &data, &sizes)?;
                let mut whole = Conn::with_limits(1, small());
                whole.feed(&data);
                prop_assert_eq!(pieces.end_of_stream(), whole.end_of_stream());
                prop_assert_eq!(pieces.bad_lines, whole.bad_lines);
                prop_assert_eq!(pieces.status(), whole.status());
                prop_assert_eq!(pieces.report(true, "running"), whole.report(true, "running"));
                Ok(())
            })
            .unwrap();
    });
}

/// A line that must be refused, whatever came before it (never containing a newline but its
/// last byte); a second hello only `after_hello`.
fn hostile(after_hello: bool) -> impl Strategy<Value = Vec<u8>> {
    let nul_inside = (valid(), any::<usize>(), any::<usize>()).prop_map(|(m, cut, at)| {
        // A raw NUL is invalid anywhere in JSON, inside a string or out.
        let mut l = encode(&m);
        l.pop();
        l.truncate(cut % (l.len() + 1));
        let at = at % (l.len() + 1);
        l.insert(at, 0);
        l
    });
    let junk = proptest::collection::vec(any::<u8>(), 0..100).prop_map(|mut b| {
        b.push(0);
        b
    });
    let overflow = (1u64..10).prop_map(|id| {
        // Two deltas of u64::MAX in one line: the line's own sum overflows.
        format!(r#"{{"v":1,"type":"delta","at":1,"sockets":[{{"id":{id},"tx_bytes":18446744073709551615}},{{"id":{id},"tx_bytes":18446744073709551615}}]}}"#)
            .into_bytes()
    });
    let long_peer = (1u64..10).prop_map(|id| {
        let mut l = encode(&socket(id, "p".repeat(200), "/m.so".into()));
        l.pop();
        l
    });
    let too_many_peers = (1u64..10).prop_map(|id| {
        let peers = (0..5).map(|n| (format!("10.9.9.{n}:1"), 1)).collect();
        let mut l = encode(&delta(id, 1, 1, peers));
        l.pop();
        l
    });
    let second_hello = (0u32..5).prop_map(|p| {
        let mut l = encode(&hello(p));
        l.pop();
        l
    });
    let version = Just(br#"{"v":2,"type":"delta","at":1,"sockets":[{"id":1,"tx_bytes":5}]}"#.to_vec());
    prop_oneof![
        10 => nul_inside,
        5 => junk,
        3 => overflow,
        3 => long_peer,
        3 => too_many_peers,
        if after_hello { 2 } else { 0 } => second_hello,
        2 => version,
    ]
    .prop_map(|mut l| {
        for b in l.iter_mut() {
            if *b == b'\n' {
                *b = b'x';
            }
        }
        l.push(b'\n');
        l
    })
}

/// A socket's valid traffic: (id, [(tx, rx)], closed).
type Plan = Vec<(u64, Vec<(u64, u64)>, bool)>;

fn plan() -> impl Strategy<Value = Plan> {
    proptest::collection::vec(
        (
            proptest::collection::vec((0..1_000_000u64, 0..1_000_000u64), 0..4),
            any::<bool>(),
        ),
        1..6,
    )
    .prop_map(|v| {
        v.into_iter()
            .enumerate()
            .map(|(i, (d, closed))| (i as u64 + 1, d, closed))
            .collect()
    })
}

#[test]
fn valid_counts_after_hostile_lines_are_exact() {
    watchdog(120, || {
        let input = (
            plan(),
            proptest::collection::vec(hostile(false), 0..4),
            proptest::collection::vec(hostile(true), 1..30),
            any::<u64>(),
            proptest::collection::vec(1usize..300, 1..8),
            proptest::bool::weighted(0.03),
        );
        runner()
            .run(&input, |(plan, before_hello, mut hostile, seed, sizes, long)| {
                if long {
                    hostile.push(overlong(1));
                }
                // Before the hello even valid messages are refused.
                let mut lines: Vec<Vec<u8>> = Vec::new();
                let mut refused = before_hello.len() as u64;
                lines.extend(before_hello);
                lines.push(encode(&socket(1, "10.0.0.1:1".into(), "/x.so".into())));
                refused += 1;
                lines.push(encode(&hello(42)));
                let mut valid: Vec<Vec<u8>> = Vec::new();
                for (id, deltas, closed) in &plan {
                    valid.push(encode(&socket(*id, format!("127.0.0.1:{id}"), "/m.so".into())));
                    for (tx, rx) in deltas {
                        valid.push(encode(&delta(*id, *tx, *rx, Vec::new())));
                    }
                    if *closed {
                        valid.push(encode(&Message::Closed(Closed { id: *id, closed_at: 5 })));
                    }
                }
                // Interleave: hostile lines at positions drawn from the seed.
                let mut rest = hostile.into_iter();
                let mut s = seed;
                for v in valid {
                    s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    if s >> 62 != 0 {
                        if let Some(h) = rest.next() {
                            lines.push(h);
                            refused += 1;
                        }
                    }
                    lines.push(v);
                }
                for h in rest {
                    lines.push(h);
                    refused += 1;
                }
                lines.push(encode(&bye()));
                let data = lines.concat();
                let mut c = Conn::new(7);
                feed_in_pieces(&mut c, &data, &sizes)?;
                c.end_of_stream();

                let r = c.report(false, "running");
                let tx: u64 = plan.iter().flat_map(|p| &p.1).map(|d| d.0).sum();
                let rx: u64 = plan.iter().flat_map(|p| &p.1).map(|d| d.1).sum();
                prop_assert_eq!((r.totals.tx_bytes, r.totals.rx_bytes), (tx, rx));
                prop_assert_eq!(r.totals.connections, plan.len() as u64);
                for (id, deltas, closed) in &plan {
                    let s = r.sockets.iter().find(|s| s.id == *id).expect("every socket");
                    prop_assert_eq!(s.tx_bytes, deltas.iter().map(|d| d.0).sum::<u64>());
                    prop_assert_eq!(s.closed_at.is_some(), *closed);
                }
                prop_assert_eq!(r.pid, 42);
                prop_assert_eq!(c.status(), Status::SaidBye(ByeReason::Exit));
                prop_assert_eq!(c.bad_lines, refused, "each hostile line is one bad line");
                Ok(())
            })
            .unwrap();
    });
}
