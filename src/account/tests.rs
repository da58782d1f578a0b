//! The account's unit tests: sums, merging, folding, and what hostile input cannot do.

use super::*;
use crate::model::{Proto, Role};
use crate::wire::{Bye, Closed, Delta, Origin, SocketDelta, SocketInfo};

fn info(id: u64, family: Family, module: &str) -> Message {
    Message::Socket(SocketInfo {
        id,
        fd: 3,
        family,
        proto: if family == Family::Unix {
            Proto::Stream
        } else {
            Proto::Tcp
        },
        role: Role::Connected,
        peer: Some(format!("127.0.0.1:{}", 1000 + id)),
        module: Some(module.into()),
        opened_at: 1,
        ..Default::default()
    })
}

fn delta(id: u64, tx: u64, rx: u64) -> Message {
    Message::Delta(Delta {
        at: 2,
        sockets: vec![SocketDelta {
            id,
            tx_bytes: tx,
            rx_bytes: rx,
            tx_calls: 1,
            rx_calls: 1,
            ..Default::default()
        }],
    })
}

fn hello() -> Message {
    Message::Hello(Hello {
        pid: 9,
        ppid: 1,
        exe: "/x".into(),
        argv: vec![],
        started_at: 0,
        origin: Origin::Start,
        shim_version: "t".into(),
        interval_ms: 1000,
        image: 0,
    })
}

#[test]
fn deltas_add_up_and_modules_sum_to_totals() {
    let mut a = ProcessAccount::new();
    for m in [
        hello(),
        info(1, Family::Inet, "/a.so"),
        info(2, Family::Inet6, "/b.so"),
        info(3, Family::Unix, "/a.so"),
    ] {
        a.apply(&m).unwrap();
    }
    for m in [delta(1, 10, 20), delta(1, 5, 0), delta(2, 1, 2), delta(3, 100, 100)] {
        a.apply(&m).unwrap();
    }
    a.apply(&Message::Bye(Bye {
        at: 3,
        reason: ByeReason::Exit,
        dropped_events: 0,
        status: None,
    }))
    .unwrap();
    let r = a.report(false, "running");
    assert_eq!(
        (r.totals.tx_bytes, r.totals.rx_bytes, r.totals.connections),
        (16, 22, 2)
    );
    assert_eq!((r.unix.tx_bytes, r.unix.rx_bytes), (100, 100));
    assert_eq!(r.modules.iter().map(|m| m.stats.tx_bytes).sum::<u64>(), 16);
    assert_eq!(r.end, "exit");
    let with_unix = a.report(true, "running");
    assert_eq!(with_unix.totals.tx_bytes, 116);
}

#[test]
fn unknown_socket_is_reported_but_kept() {
    let mut a = ProcessAccount::new();
    assert_eq!(a.apply(&delta(7, 1, 1)), Err(AccountError::UnknownSocket(7)));
    a.apply(&info(7, Family::Inet, "/m")).unwrap();
    assert_eq!(a.report(false, "running").totals.tx_bytes, 1);
}

#[test]
fn a_later_connection_of_the_same_image_adds_up() {
    let mut first = ProcessAccount::new();
    for m in [hello(), info(1, Family::Inet, "/m"), delta(1, 10, 1)] {
        first.apply(&m).unwrap();
    }
    let mut later = ProcessAccount::new();
    for m in [
        hello(),
        info(1, Family::Inet, "/m"),
        delta(1, 5, 2),
        info(2, Family::Inet, "/m"),
        delta(2, 7, 0),
    ] {
        later.apply(&m).unwrap();
    }
    later
        .apply(&Message::Bye(Bye {
            at: 3,
            reason: ByeReason::Exit,
            dropped_events: 0,
            status: None,
        }))
        .unwrap();
    first.absorb(&later);
    let r = first.report(false, "lost");
    assert_eq!((r.totals.tx_bytes, r.totals.rx_bytes, r.totals.connections), (22, 3, 2));
    assert_eq!(r.end, "exit");
    assert_eq!(r.sockets.len(), 2);
}

#[test]
fn folding_keeps_sums_exact() {
    let mut a = ProcessAccount::with_closed_limit(2);
    a.apply(&hello()).unwrap();
    for id in 1..=10 {
        a.apply(&info(id, Family::Inet, "/m")).unwrap();
        a.apply(&delta(id, id, 1)).unwrap();
        a.apply(&Message::Closed(Closed { id, closed_at: 5 })).unwrap();
    }
    let r = a.report(false, "running");
    assert_eq!(r.totals.tx_bytes, 55);
    assert_eq!(r.totals.connections, 10);
    assert_eq!(r.sockets.len(), 3, "two kept, eight folded into one group");
    assert_eq!(r.sockets.iter().map(|s| s.folded.max(1)).sum::<u64>(), 10);
    let g = r.sockets.iter().find(|s| s.folded > 0).expect("a folded group");
    assert_eq!(g.closed_at.as_deref(), Some(rfc3339(5).as_str()), "{g:?}");
    assert_eq!(
        (g.peer.as_deref(), g.module.as_deref()),
        (Some("127.0.0.1"), Some("/m"))
    );
}

fn small() -> Limits {
    Limits {
        live_sockets: 3,
        closed_sockets: 2,
        folded_groups: 2,
        peers_per_socket: 2,
        names: 3,
        name_bytes: 40,
        notices: 2,
    }
}

fn totals(a: &ProcessAccount) -> (u64, u64) {
    let r = a.report(true, "running");
    (r.totals.tx_bytes, r.totals.rx_bytes)
}

fn two(id: u64, a: u64, b: u64) -> Message {
    Message::Delta(Delta {
        at: 2,
        sockets: vec![
            SocketDelta {
                id,
                tx_bytes: a,
                ..Default::default()
            },
            SocketDelta {
                id: id + 1,
                tx_bytes: b,
                ..Default::default()
            },
        ],
    })
}

#[test]
fn a_line_that_would_overflow_is_rejected_whole_and_the_rest_kept() {
    let mut a = ProcessAccount::new();
    for m in [
        hello(),
        info(1, Family::Inet, "/m"),
        info(2, Family::Inet, "/m"),
        delta(1, 10, 20),
    ] {
        a.apply(&m).unwrap();
    }
    // Socket 2 alone would fit; with socket 1 in the same line the sum cannot.
    assert_eq!(a.apply(&two(1, 5, u64::MAX - 12)), Err(AccountError::Overflow));
    assert_eq!(totals(&a), (10, 20), "nothing of the rejected line was added");
    // Two halves that each fit but overflow together, on one socket, in one line.
    assert_eq!(
        a.apply(&two(1, u64::MAX / 2, u64::MAX / 2 + 1)),
        Err(AccountError::Overflow)
    );
    assert_eq!(a.apply(&delta(2, u64::MAX, 0)), Err(AccountError::Overflow));
    assert!(AccountError::Overflow.rejected() && !AccountError::UnknownSocket(1).rejected());
    // The largest that fits is taken, exactly.
    a.apply(&delta(2, u64::MAX - 10, 0)).unwrap();
    assert_eq!(totals(&a), (u64::MAX, 20));
    assert_eq!(a.apply(&delta(1, 1, 0)), Err(AccountError::Overflow));
    a.apply(&delta(1, 0, 7)).unwrap();
    assert_eq!(totals(&a), (u64::MAX, 27), "later lines still count");
    // Calls and a whole-life socket line are checked the same way.
    let whole = Message::Socket(SocketInfo {
        closed_at: Some(3),
        counts: Some(SocketDelta {
            id: 9,
            tx_bytes: 1,
            ..Default::default()
        }),
        ..match info(9, Family::Inet, "/m") {
            Message::Socket(s) => s,
            _ => unreachable!(),
        }
    });
    assert_eq!(a.apply(&whole), Err(AccountError::Overflow));
    assert_eq!(
        a.report(true, "x").sockets.len(),
        2,
        "the rejected socket line announced nothing"
    );
}

#[test]
fn peer_counts_cannot_overflow_either() {
    let mut a = ProcessAccount::new();
    a.apply(&info(1, Family::Inet, "/m")).unwrap();
    let peer = |rx: u64| {
        Message::Delta(Delta {
            at: 2,
            sockets: vec![SocketDelta {
                id: 1,
                rx_bytes: 1,
                peers: vec![crate::wire::PeerDelta {
                    peer: "10.0.0.1:53".into(),
                    rx_bytes: rx,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        })
    };
    a.apply(&peer(u64::MAX)).unwrap();
    assert_eq!(a.apply(&peer(1)), Err(AccountError::Overflow));
    let r = a.report(true, "x");
    assert_eq!((r.totals.rx_bytes, r.sockets[0].peers[0].rx_bytes), (1, u64::MAX));
}

#[test]
fn open_sockets_peers_names_notices_and_text_are_bounded() {
    let mut a = ProcessAccount::with_limits(small());
    a.apply(&hello()).unwrap();
    for id in 1..=3 {
        a.apply(&info(id, Family::Inet, "/m")).unwrap();
    }
    assert_eq!(
        a.apply(&info(4, Family::Inet, "/m")),
        Err(AccountError::TooManySockets(3))
    );
    assert_eq!(
        a.apply(&delta(5, 1, 1)),
        Err(AccountError::TooManySockets(3)),
        "a placeholder is an open socket too"
    );
    a.apply(&info(3, Family::Inet, "/m")).unwrap();
    a.apply(&Message::Closed(Closed { id: 3, closed_at: 4 })).unwrap();
    a.apply(&Message::Closed(Closed { id: 3, closed_at: 5 })).unwrap();
    assert_eq!(a.closed_order.len(), 1, "closing twice keeps one closed socket");
    a.apply(&info(4, Family::Inet, "/m")).unwrap();
    assert_eq!(a.footprint().live_sockets, 3);

    let peers = |names: &[&str]| {
        Message::Delta(Delta {
            at: 2,
            sockets: vec![SocketDelta {
                id: 1,
                peers: names
                    .iter()
                    .map(|p| crate::wire::PeerDelta {
                        peer: p.to_string(),
                        tx_bytes: 1,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
        })
    };
    a.apply(&peers(&["a:1", "b:1", "a:1"])).unwrap();
    assert_eq!(
        a.apply(&peers(&["a:1", "c:1"])),
        Err(AccountError::TooManyPeers { id: 1, limit: 2 })
    );
    let long_peer = "x".repeat(MAX_ADDR_LEN + 1);
    assert_eq!(
        a.apply(&peers(&[&long_peer])),
        Err(AccountError::TooLong("a peer address", MAX_ADDR_LEN))
    );
    assert_eq!(
        a.report(true, "x").sockets[0]
            .peers
            .iter()
            .map(|p| p.tx_bytes)
            .sum::<u64>(),
        3
    );

    // Names: "/m" is one; two more fit, a fourth does not.
    a.apply(&info(1, Family::Inet, "/n")).unwrap();
    a.apply(&info(1, Family::Inet, "/o")).unwrap();
    assert_eq!(
        a.apply(&info(1, Family::Inet, "/p")),
        Err(AccountError::TooManyNames(3, 40))
    );
    assert_eq!(
        a.report(true, "x").sockets[0].module.as_deref(),
        Some("/o"),
        "unchanged"
    );
    // A module line names a module: a known name is taken, a new one past the limit refused.
    let module = |m: &str| {
        Message::Module(crate::wire::ModuleInfo {
            module: m.into(),
            load: crate::model::Load::Dlopen,
            loaded_at: Some(5),
        })
    };
    a.apply(&module("/o")).unwrap();
    assert_eq!(a.apply(&module("/q")), Err(AccountError::TooManyNames(3, 40)));
    let r = a.report(true, "x");
    let o = r.modules.iter().find(|m| m.module == "/o").expect("/o");
    assert_eq!((o.load.as_deref(), o.loaded_at.is_some()), (Some("dlopen"), true));
    assert!(r.modules.iter().all(|m| m.module != "/q"));

    let notice = |m: &str| {
        Message::Notice(crate::wire::Notice {
            kind: "k".into(),
            message: m.into(),
        })
    };
    a.apply(&notice("one")).unwrap();
    a.apply(&notice("two")).unwrap();
    a.apply(&notice("two")).unwrap();
    assert_eq!(a.apply(&notice("three")), Err(AccountError::TooManyNotices(2)));
    assert_eq!(
        a.apply(&notice(&"n".repeat(MAX_NOTICE_LEN))),
        Err(AccountError::TooLong("a notice", MAX_NOTICE_LEN))
    );
    let f = a.footprint();
    assert_eq!((f.max_peers, f.names, f.notices), (2, 3, 2), "{f:?}");
}

#[test]
fn folded_groups_are_bounded_and_sums_stay_exact() {
    let mut a = ProcessAccount::with_limits(Limits {
        names: 10_000,
        name_bytes: 1 << 20,
        ..small()
    });
    let n = 500u64;
    for id in 1..=n {
        // Every socket a different module and peer host: the worst case for grouping.
        let mut m = info(id, Family::Inet, &format!("/m{}", id % 50));
        if let Message::Socket(s) = &mut m {
            s.peer = Some(format!("10.0.{}.{}:80", id / 256, id % 256));
        }
        a.apply(&m).unwrap();
        a.apply(&delta(id, id, 1)).unwrap();
        a.apply(&Message::Closed(Closed { id, closed_at: 5 })).unwrap();
    }
    let f = a.footprint();
    assert!(
        f.closed_sockets <= 2 && f.folded_groups <= 2 * 2 + 1,
        "closed kept and groups are bounded: {f:?}"
    );
    let r = a.report(false, "running");
    assert_eq!(r.totals.tx_bytes, n * (n + 1) / 2);
    assert_eq!((r.totals.connections, r.totals.rx_bytes), (n, n));
    assert_eq!(r.sockets.iter().map(|s| s.folded.max(1)).sum::<u64>(), n);
    assert_eq!(r.modules.iter().map(|m| m.stats.tx_bytes).sum::<u64>(), n * (n + 1) / 2);
}

#[test]
fn a_merge_of_two_full_accounts_saturates() {
    let mut first = ProcessAccount::new();
    let mut later = ProcessAccount::new();
    for a in [&mut first, &mut later] {
        a.apply(&info(1, Family::Inet, "/m")).unwrap();
        a.apply(&delta(1, u64::MAX, 0)).unwrap();
    }
    first.absorb(&later);
    assert_eq!(first.report(false, "x").totals.tx_bytes, u64::MAX);
}

#[test]
fn the_kernel_witness_gives_unseen_bytes_per_socket_module_and_process() {
    let mut a = ProcessAccount::with_closed_limit(1);
    a.apply(&hello()).unwrap();
    let witnessed = |id, tx, rx| {
        let Message::Socket(mut s) = info(id, Family::Inet, "/m") else {
            unreachable!()
        };
        s.kernel_tx_bytes = Some(tx);
        s.kernel_rx_bytes = Some(rx);
        s.closed_at = Some(3);
        Message::Socket(s)
    };
    // Socket 1: the hooks saw 10 of 1000 out and all 20 in; socket 2 (folded later): 5 of
    // 7 out; socket 3: the hooks saw everything.
    for m in [delta(1, 10, 20), delta(2, 5, 0), delta(3, 4, 4)] {
        let _ = a.apply(&m);
    }
    for m in [witnessed(1, 1000, 20), witnessed(2, 7, 0), witnessed(3, 4, 4)] {
        a.apply(&m).unwrap();
    }
    a.apply(&Message::Notice(crate::wire::Notice {
        kind: crate::wire::IO_URING_NOTICE.into(),
        message: "uses io_uring".into(),
    }))
    .unwrap();
    let r = a.report(false, "running");
    let s1 = r.sockets.iter().find(|s| s.id == 3).expect("socket 3 kept");
    assert_eq!(
        (s1.kernel_tx_bytes, s1.unseen_tx_bytes, s1.unseen_rx_bytes),
        (Some(4), 0, 0)
    );
    assert_eq!(
        (r.totals.unseen_tx_bytes, r.totals.unseen_rx_bytes),
        (990 + 2, 0),
        "the folded socket's unseen bytes stay in the totals"
    );
    assert_eq!(r.modules[0].stats.unseen_tx_bytes, 992);
    assert!(r.uses_io_uring);
    assert!(r.notices.is_empty(), "io_uring is said once, as uses_io_uring");
}

#[test]
fn peer_names_socketpairs_and_matched_globs() {
    use crate::wire::{Notice, ATTRIBUTE_NOTICE};
    let mut a = ProcessAccount::with_limits(small());
    a.apply(&hello()).unwrap();
    let named = |id: u64, name: &str| match info(id, Family::Inet, "/a.so") {
        Message::Socket(mut s) => {
            s.peer_name = Some(name.into());
            Message::Socket(s)
        }
        _ => unreachable!(),
    };
    a.apply(&named(1, "localhost")).unwrap();
    assert_eq!(
        a.apply(&named(2, &"x".repeat(MAX_PEER_NAME_LEN + 1))),
        Err(AccountError::TooLong("a peer name", MAX_PEER_NAME_LEN))
    );
    // A socketpair: two connected Unix sockets with no name; not connections, even counted.
    for id in [3, 4] {
        let Message::Socket(mut s) = info(id, Family::Unix, "/a.so") else {
            unreachable!()
        };
        s.local = Some("(unnamed)".into());
        s.peer = Some("(unnamed)".into());
        a.apply(&Message::Socket(s)).unwrap();
        a.apply(&delta(id, 5, 5)).unwrap();
    }
    for glob in ["libcurl*", "!*/gst/*", "libcurl*"] {
        a.apply(&Message::Notice(Notice {
            kind: ATTRIBUTE_NOTICE.into(),
            message: glob.into(),
        }))
        .unwrap();
    }
    let r = a.report(true, "running");
    assert_eq!(r.sockets[0].peer_name.as_deref(), Some("localhost"));
    assert_eq!(r.sockets.len(), 3, "the rejected line announced nothing");
    assert_eq!((r.totals.connections, r.totals.sockets, r.totals.tx_bytes), (1, 3, 10));
    assert!(r.sockets[1].is_socketpair() && !r.sockets[1].is_connection());
    assert_eq!(r.attribute_matched, ["!*/gst/*", "libcurl*"]);
    assert!(r.notices.is_empty(), "matched globs are not notices: {:?}", r.notices);
    for i in 0..small().notices {
        let _ = a.apply(&Message::Notice(Notice {
            kind: ATTRIBUTE_NOTICE.into(),
            message: format!("g{i}"),
        }));
    }
    assert!(
        a.report(true, "x").attribute_matched.len() <= small().notices,
        "bounded"
    );
}

/// Module lines in any order, and a later line for a module already known: the account keeps
/// one entry per module, sorted by name, the later line's (`ProcessAccount::module_infos`).
#[test]
fn module_lines_are_kept_one_per_name_sorted_and_replaced() {
    let mut a = ProcessAccount::new();
    a.apply(&hello()).unwrap();
    let module = |m: &str, load: crate::model::Load| {
        Message::Module(crate::wire::ModuleInfo {
            module: m.into(),
            load,
            loaded_at: None,
        })
    };
    a.apply(&module("/z", crate::model::Load::Linked)).unwrap();
    a.apply(&module("/a", crate::model::Load::Linked)).unwrap();
    a.apply(&module("/m", crate::model::Load::Linked)).unwrap();
    a.apply(&module("/a", crate::model::Load::Dlopen)).unwrap();
    let seen: Vec<(&str, crate::model::Load)> = a.module_infos().map(|m| (m.module.as_str(), m.load)).collect();
    assert_eq!(
        seen,
        [
            ("/a", crate::model::Load::Dlopen),
            ("/m", crate::model::Load::Linked),
            ("/z", crate::model::Load::Linked)
        ]
    );
}
