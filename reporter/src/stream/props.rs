//! Property tests of the event stream: thousands of generated conversations.
//!
//! - What recording connections write (valid lines, arbitrary bytes, mutated lines, in several
//!   interleaved connections, some ended), read back by [`read`], rebuilds every connection's
//!   report exactly (counts, ends, skipped lines and their notices).
//! - Any lines given to [`read`] (arbitrary bytes, stream lines cut or with bytes flipped,
//!   hostile connection numbers, unknown and future types) never panic nor hang: they are
//!   read, skipped and counted, or (a future stream version) refused with an error.
//!
//! Each property runs in a watchdog thread. Cases: [`CASES`] each.

use proptest::prelude::*;

use super::*;
use proptest::test_runner::{Config, TestRunner};

use crate::conn::props::{segment, valid, watchdog};

/// Cases per property.
const CASES: u32 = 400;

fn runner() -> TestRunner {
    TestRunner::new(Config {
        cases: CASES,
        failure_persistence: None,
        ..Config::default()
    })
}

fn header() -> Vec<u8> {
    let mut h = Vec::new();
    event_line(
        &mut h,
        &Event::Stream {
            stream: STREAM_VERSION,
            reporter: "listen".into(),
            command: vec![],
            unix: true,
            at: 1,
        },
    );
    h
}

#[test]
fn a_recorded_stream_replays_every_connection_exactly() {
    watchdog(120, || {
        let input = (
            proptest::collection::vec((0usize..3, segment()), 0..40),
            proptest::collection::vec(any::<bool>(), 3),
        );
        runner()
            .run(&input, |(segments, ended)| {
                let mut conns: Vec<Conn> = (1..=3).map(Conn::new).collect();
                let mut stream = header();
                for c in &mut conns {
                    c.record();
                }
                for (i, seg) in segments {
                    conns[i].feed(&seg);
                    stream.extend(conns[i].take_recorded());
                }
                for (c, end) in conns.iter_mut().zip(ended) {
                    if end {
                        c.end_of_stream();
                        stream.extend(c.take_recorded());
                    }
                }
                let back = read(&stream[..]).expect("a stream the reporter wrote reads back");
                for c in &conns {
                    let live = c.report(true, "running");
                    match back.conns.iter().find(|b| b.id() == c.id()) {
                        Some(b) => prop_assert_eq!(b.report(true, "running"), live),
                        // A connection that brought nothing, not even a skipped line, left no line.
                        None => prop_assert!(c.is_empty() || live.totals == Default::default()),
                    }
                }
                Ok(())
            })
            .unwrap();
    });
}

/// One line a replay may meet: valid stream lines, cut or altered, and hostile ones.
fn stream_line() -> impl Strategy<Value = Vec<u8>> {
    let recorded = || {
        (1u64..4, valid()).prop_map(|(conn, m)| {
            let mut l = Vec::new();
            message_line(&mut l, conn, Some(7), &m);
            l
        })
    };
    prop_oneof![
        10 => recorded(),
        4 => (recorded(), any::<usize>(), any::<u8>()).prop_map(|(mut l, at, b)| {
            let at = at % l.len();
            l[at] = b;
            l
        }),
        3 => proptest::collection::vec(any::<u8>(), 0..120).prop_map(|mut v| {
            v.push(b'\n');
            v
        }),
        2 => (any::<u64>(), ".{0,20}").prop_map(|(conn, e)| format!("{{\"v\":1,\"type\":\"skipped\",\"conn\":{conn},\"error\":{e:?}}}\n").into_bytes()),
        2 => any::<u64>().prop_map(|conn| format!("{{\"v\":1,\"type\":\"eof\",\"conn\":{conn},\"released\":true}}\n").into_bytes()),
        1 => any::<u32>().prop_map(|pid| format!("{{\"v\":1,\"type\":\"ending\",\"pid\":{pid},\"at\":1,\"status\":{{\"signal\":9}}}}\n").into_bytes()),
        1 => Just(b"{\"v\":1,\"type\":\"finish\",\"at\":2,\"exit_status\":3,\"notices\":[\"n\"]}\n".to_vec()),
        1 => Just(b"{\"v\":1,\"type\":\"torn\",\"conn\":1}\n".to_vec()),
        1 => Just(b"{\"v\":1,\"type\":\"later\",\"conn\":1}\n".to_vec()),
        1 => Just(b"{\"v\":1,\"conn\":1,\"conn\":2,\"type\":\"eof\"}\n".to_vec()),
        1 => Just(header()),
    ]
}

#[test]
fn any_lines_given_to_replay_are_read_or_skipped_never_a_panic() {
    watchdog(120, || {
        let input = proptest::collection::vec(stream_line(), 0..60);
        runner()
            .run(&input, |lines| {
                let data = lines.concat();
                let back = read(&data[..]).expect("version 1 lines only: never an error");
                for c in &back.conns {
                    // A report can be made of whatever was read.
                    let _ = c.report(true, "running");
                }
                prop_assert!(back.warnings.len() <= data.len() + 1);
                Ok(())
            })
            .unwrap();
    });
}
