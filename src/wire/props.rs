//! Property tests of [`decode`] and [`encode_into`]: thousands of generated lines, valid and
//! hostile.
//!
//! Properties: decoding never panics (arbitrary bytes; valid lines truncated, with bytes
//! flipped or inserted, non-UTF-8, a value replaced by an extreme number, a wrong type, a huge
//! string or deep nesting); a line that decodes re-encodes to a line that decodes the same;
//! every message survives encode → decode unchanged; the hand-written lines (`fast.rs`) are
//! serde_json's, byte for byte. Each test runs in a watchdog thread, so a hang fails it instead
//! of stalling the suite. Cases: [`CASES`] per property.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use super::*;

/// Cases per property.
pub const CASES: u32 = 1500;

/// Runs `body` in a thread and fails if it has not finished within `secs` (a hang). The thread
/// has a large stack: proptest's value trees for these strategies are big in a debug build
/// (decoding itself needs little, see `decoding_needs_little_stack`).
pub fn watchdog(secs: u64, body: impl FnOnce() + Send + 'static) {
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
        // The body panicked: join says how.
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

fn number() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0u64),
        Just(u64::MAX),
        Just(u64::MAX - 1),
        Just(1u64 << 63),
        0..1000u64,
        any::<u64>(),
    ]
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => proptest::collection::vec(any::<char>(), 0..24).prop_map(String::from_iter),
        1 => Just("\u{0}\"\\\n\u{1f}\u{7f}\u{fffd}\u{10ffff}".to_string()),
        1 => (1000usize..20_000).prop_map(|n| "é".repeat(n)),
    ]
}

fn opt_text() -> impl Strategy<Value = Option<String>> {
    proptest::option::of(text())
}

fn socket_delta() -> impl Strategy<Value = SocketDelta> {
    (
        number(),
        [number(), number(), number(), number(), number(), number()],
        proptest::collection::vec((text(), [number(), number(), number(), number()]), 0..3),
    )
        .prop_map(|(id, c, peers)| SocketDelta {
            id,
            tx_bytes: c[0],
            rx_bytes: c[1],
            tx_calls: c[2],
            rx_calls: c[3],
            errors: c[4],
            connections: c[5],
            peers: peers
                .into_iter()
                .map(|(peer, p)| PeerDelta {
                    peer,
                    tx_bytes: p[0],
                    rx_bytes: p[1],
                    tx_calls: p[2],
                    rx_calls: p[3],
                })
                .collect(),
        })
}

/// Any message, with extreme numbers and strange strings.
pub fn message() -> impl Strategy<Value = Message> {
    let hello = (
        any::<u32>(),
        any::<u32>(),
        text(),
        proptest::collection::vec(text(), 0..4),
        number(),
        any::<bool>(),
        text(),
        number(),
    )
        .prop_map(|(pid, ppid, exe, argv, started_at, fork, shim_version, interval_ms)| {
            Message::Hello(Hello {
                pid,
                ppid,
                exe,
                argv,
                started_at,
                origin: if fork { Origin::Fork } else { Origin::Start },
                shim_version,
                interval_ms,
                image: 0,
            })
        });
    let socket = (
        (number(), any::<i32>(), 0u8..4, 0u8..7, 0u8..6),
        (opt_text(), opt_text(), opt_text(), opt_text(), opt_text()),
        (number(), any::<bool>(), any::<bool>(), opt_text()),
        (proptest::option::of(number()), proptest::option::of(socket_delta())),
        (
            proptest::option::of(number()),
            proptest::option::of(number()),
            prop_oneof![Just(0u64), number()],
            prop_oneof![Just(0u64), number()],
            any::<bool>(),
        ),
    )
        .prop_map(
            |(
                (id, fd, f, p, r),
                (local, peer, module, via, label),
                (opened_at, inherited, adopted, peer_name),
                (closed_at, counts),
                (kernel_tx_bytes, kernel_rx_bytes, kernel_base_tx_bytes, kernel_base_rx_bytes, shared),
            )| {
                Message::Socket(SocketInfo {
                    id,
                    fd,
                    family: Family::from_code(f),
                    proto: Proto::from_code(p),
                    role: Role::from_code(r),
                    local,
                    peer,
                    peer_name,
                    module,
                    via,
                    label,
                    opened_at,
                    inherited,
                    adopted,
                    origin: crate::model::SocketOrigin::from_code((id % 2) as u8),
                    closed_at,
                    counts,
                    kernel_tx_bytes,
                    kernel_rx_bytes,
                    kernel_base_tx_bytes,
                    kernel_base_rx_bytes,
                    shared,
                })
            },
        );
    let delta = (number(), proptest::collection::vec(socket_delta(), 0..4))
        .prop_map(|(at, sockets)| Message::Delta(Delta { at, sockets }));
    let closed = (number(), number()).prop_map(|(id, closed_at)| Message::Closed(Closed { id, closed_at }));
    let notice = (text(), text()).prop_map(|(kind, message)| Message::Notice(Notice { kind, message }));
    let bye = (number(), any::<bool>(), number()).prop_map(|(at, exec, dropped_events)| {
        Message::Bye(Bye {
            at,
            reason: if exec { ByeReason::Exec } else { ByeReason::Exit },
            dropped_events,
            status: None,
        })
    });
    let module = (text(), 0u8..6, proptest::option::of(number())).prop_map(|(module, load, loaded_at)| {
        Message::Module(ModuleInfo {
            module,
            load: Load::from_code(load),
            loaded_at,
        })
    });
    prop_oneof![hello, socket, delta, closed, module, notice, bye]
}

/// What to do to a valid line.
#[derive(Clone, Debug)]
pub enum Mutation {
    /// Keep the first n bytes.
    Truncate(usize),
    /// Replace the byte at i.
    Flip(usize, u8),
    /// Insert bytes at i (may be non-UTF-8).
    Insert(usize, Vec<u8>),
    /// Replace the n-th JSON number with this text.
    Number(usize, &'static str),
    /// Replace the n-th value after a colon with a wrong type.
    WrongType(usize, &'static str),
    /// Add a field holding a huge string.
    HugeString(usize),
    /// Add a field nested this deep.
    Deep(usize),
}

/// Any mutation.
pub fn mutation() -> impl Strategy<Value = Mutation> {
    let extreme = prop_oneof![
        Just("18446744073709551615"),
        Just("18446744073709551616"),
        Just("-1"),
        Just("-9223372036854775809"),
        Just("1e999"),
        Just("1.5"),
        Just("0x10"),
        Just("00"),
        Just("4294967296"),
        Just("99999999999999999999999999999999999999999"),
    ];
    let wrong = prop_oneof![
        Just("\"x\""),
        Just("[]"),
        Just("{}"),
        Just("null"),
        Just("true"),
        Just("[1,2,3]"),
        Just("{\"id\":1}")
    ];
    prop_oneof![
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Flip(i, b)),
        (any::<usize>(), proptest::collection::vec(any::<u8>(), 1..8)).prop_map(|(i, b)| Mutation::Insert(i, b)),
        (0usize..12, extreme).prop_map(|(n, t)| Mutation::Number(n, t)),
        (0usize..12, wrong).prop_map(|(n, t)| Mutation::WrongType(n, t)),
        prop_oneof![9 => 1usize..1000, 1 => 1000usize..100_000].prop_map(Mutation::HugeString),
        prop_oneof![9 => 1usize..200, 1 => Just(100_000)].prop_map(Mutation::Deep),
    ]
}

/// Applies `m` to `line` (without its newline); the result may contain any byte.
pub fn mutate(line: &[u8], m: &Mutation) -> Vec<u8> {
    let mut out = line.to_vec();
    let at = |i: usize| if out.is_empty() { 0 } else { i % (out.len() + 1) };
    match m {
        Mutation::Truncate(n) => out.truncate(at(*n)),
        Mutation::Flip(i, b) => {
            if !out.is_empty() {
                let i = i % out.len();
                out[i] = *b;
            }
        }
        Mutation::Insert(i, bytes) => {
            let i = at(*i);
            out.splice(i..i, bytes.iter().copied());
        }
        Mutation::Number(n, t) => {
            if let Some((s, e)) = nth_span(&out, *n, |b| b.is_ascii_digit()) {
                out.splice(s..e, t.bytes());
            }
        }
        Mutation::WrongType(n, t) => {
            // The value after the n-th colon, up to the next comma or brace.
            if let Some(c) = out
                .iter()
                .enumerate()
                .filter(|(_, b)| **b == b':')
                .nth(*n)
                .map(|(i, _)| i)
            {
                let end = out[c + 1..]
                    .iter()
                    .position(|b| *b == b',' || *b == b'}')
                    .map_or(out.len(), |p| c + 1 + p);
                out.splice(c + 1..end, t.bytes());
            }
        }
        Mutation::HugeString(n) => {
            let field = format!("\"zz\":\"{}\",", "a".repeat(*n));
            out.splice(1.min(out.len())..1.min(out.len()), field.bytes());
        }
        Mutation::Deep(n) => {
            let field = format!("\"deep\":{}{},", "[".repeat(*n), "]".repeat(*n));
            out.splice(1.min(out.len())..1.min(out.len()), field.bytes());
        }
    }
    out
}

/// The span of the n-th run of bytes matching `is`.
fn nth_span(b: &[u8], n: usize, is: impl Fn(u8) -> bool) -> Option<(usize, usize)> {
    let mut runs = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if is(b[i]) {
            let s = i;
            while i < b.len() && is(b[i]) {
                i += 1;
            }
            runs.push((s, i));
        } else {
            i += 1;
        }
    }
    runs.get(n).copied()
}

#[test]
fn arbitrary_bytes_never_panic() {
    watchdog(120, || {
        runner()
            .run(&proptest::collection::vec(any::<u8>(), 0..512), |bytes| {
                let _ = decode(&bytes);
                Ok(())
            })
            .unwrap();
    });
}

#[test]
fn every_message_round_trips() {
    watchdog(120, || {
        runner()
            .run(&message(), |m| {
                let line = encode(&m);
                prop_assert_eq!(line.iter().filter(|b| **b == b'\n').count(), 1, "one line");
                prop_assert_eq!(decode(&line).unwrap(), m);
                Ok(())
            })
            .unwrap();
    });
}

/// The hand-written lines (`fast.rs`) are serde_json's, byte for byte, for every message drawn
/// (the others are serde_json's by construction).
#[test]
fn hand_written_lines_are_serdes() {
    watchdog(120, || {
        runner()
            .run(&message(), |m| {
                let mut fast = Vec::new();
                encode_into(&m, &mut fast);
                let mut slow = Vec::new();
                super::encode_with_serde(&m, &mut slow);
                prop_assert_eq!(String::from_utf8_lossy(&fast), String::from_utf8_lossy(&slow));
                Ok(())
            })
            .unwrap();
    });
}

#[test]
fn mutated_lines_never_panic_and_what_decodes_is_consistent() {
    watchdog(120, || {
        runner()
            .run(
                &(message(), proptest::collection::vec(mutation(), 1..4)),
                |(m, muts)| {
                    let mut line = encode(&m);
                    line.pop();
                    for mu in &muts {
                        line = mutate(&line, mu);
                    }
                    if let Ok(back) = decode(&line) {
                        // Whatever decodes is a message like any other.
                        prop_assert_eq!(decode(&encode(&back)).unwrap(), back);
                    }
                    Ok(())
                },
            )
            .unwrap();
    });
}

#[test]
fn extreme_numbers_are_errors_never_wrapped() {
    watchdog(120, || {
        let over = (1u128 << 64)..(u128::MAX);
        runner()
            .run(&(over, 0usize..5), |(big, field)| {
                let names = ["tx_bytes", "rx_bytes", "tx_calls", "rx_calls", "errors"];
                let line = format!(
                    r#"{{"v":1,"type":"delta","at":1,"sockets":[{{"id":1,"{}":{big}}}]}}"#,
                    names[field]
                );
                prop_assert!(matches!(decode(line.as_bytes()), Err(WireError::Malformed(_))));
                let neg = format!(r#"{{"v":1,"type":"closed","id":-{big},"closed_at":1}}"#);
                prop_assert!(decode(neg.as_bytes()).is_err());
                Ok(())
            })
            .unwrap();
    });
}

#[test]
fn decoding_needs_little_stack() {
    // What the reporter's thread needs to decode the nastiest lines: nesting in every place a
    // line can nest, deep past serde_json's recursion limit.
    let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
    let deep_obj = |n: usize| format!("{}1{}", "{\"a\":".repeat(n), "}".repeat(n));
    let mut lines = Vec::new();
    for d in [
        deep(100_000),
        deep_obj(100_000),
        deep(127),
        deep_obj(127),
        "[".repeat(100_000),
    ] {
        lines.push(format!(r#"{{"x":{d},"v":1,"type":"closed","id":1,"closed_at":2}}"#));
        lines.push(format!(r#"{{"v":{d},"type":"closed"}}"#));
        lines.push(format!(
            r#"{{"v":1,"type":"delta","at":1,"sockets":[{{"id":1,"peers":[{{"peer":"p","x":{d}}}]}}]}}"#
        ));
        lines.push(format!(r#"{{"v":1,"type":"delta","at":1,"sockets":{d}}}"#));
        lines.push(format!(r#"{{"v":1,"type":"hello","pid":1,"ppid":1,"exe":"e","argv":{d},"started_at":1,"origin":"start","shim_version":"s","interval_ms":1}}"#));
    }
    std::thread::Builder::new()
        .stack_size(256 << 10)
        .spawn(move || {
            for l in &lines {
                let _ = decode(l.as_bytes());
            }
        })
        .unwrap()
        .join()
        .expect("decoding fits in 256 KiB of stack");
}
