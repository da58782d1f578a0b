//! 64 threads at once (`tests/c/threads.c`): each opens, streams over (every send and receive
//! call family in turn) and closes three connections, and half the sockets are closed by a
//! thread that never used them while the others open new ones on the freed numbers. Every
//! connection is one socket in the report, counted exactly as the peer saw it, and closed.

use super::*;

const THREADS: usize = 64;
const ROUNDS: usize = 3;

fn threads(mode: Mode) {
    let bin = prog("threads", &["-pthread"]);
    let conns = THREADS * ROUNDS;
    let server = Oracle::server(conns, "e,s3000");
    let r = metered_in(
        mode,
        &[
            &bin,
            &server.port.to_string(),
            &THREADS.to_string(),
            &ROUNDS.to_string(),
        ],
        &[],
    );
    let seen = by_port(server.conns());
    assert_eq!(seen.len(), conns, "the peer's connections");
    let own = own_socks(&r.stdout);
    assert_eq!(own.len(), conns, "the program's connections{}", ctx(&r));

    let p = only_process(&r);
    let inet: Vec<&SocketReport> = p.sockets.iter().filter(|s| s.family == "inet").collect();
    assert_eq!(
        inet.len(),
        conns,
        "one socket per connection, none split or invented{}",
        ctx(&r)
    );
    for o in &own {
        let c = seen
            .get(&o.port)
            .unwrap_or_else(|| panic!("the peer never saw {} (port {}){}", o.name, o.port, ctx(&r)));
        assert_eq!((c.rx, c.tx), (o.tx, 3000), "{}: the exchange itself", o.name);
        let s = by_local(&r, p, o.port);
        assert_mirror(&r, s, c);
        assert!(
            s.closed_at.is_some(),
            "{} (port {}) was closed{}",
            o.name,
            o.port,
            ctx(&r)
        );
    }
    assert_sum_mirror(&r, Some(p), &seen.values().copied().collect::<Vec<_>>());
    assert_eq!(p.totals.connections, conns as u64, "{}", ctx(&r));
}

both_modes! {
    /// 64 threads opening, streaming and closing (some closing sockets other threads just
    /// stopped using): exact per socket and in total, every socket closed.
    fn sixty_four_threads_streaming_and_closing_are_exact_per_socket(mode) {
        threads(mode);
    }
}
