//! A soak (`tests/c/soak_server.c` under `sockmeter run`, `tests/c/soak_client.c` unmetered):
//! 9,600 short connections at 800 a second from 4 client threads to a single-threaded epoll
//! server, each a request of 1 to 2,000 bytes and an answer three times as long plus 7.
//!
//! * Counts: the server's totals are exactly the client's own (its bytes sent and received,
//!   its connections), and every connection's counts fit the protocol (answer = 3 x request
//!   + 7; the request has a 4-byte length in front).
//! * Memory: the server's resident size (`VmRSS`, read from `/proc/<pid>/status` after every
//!   1,000 connections) grows by at most [`FLAT_KIB`] after the first 2,000 connections (the
//!   warm-up: the shim's region, the shipper's link, the pages the first records touch). Why
//!   that bound: without the shim the server's RSS does not move at all (measured: 1,580 kB
//!   throughout), so all growth is the shim's. Its memory in the host is the registry, whose
//!   pages are touched up to the most socket records alive at once: a closed socket's record
//!   is reused once its final counts are shipped (a pass every 100 ms at most), so at 800
//!   connections a second about a hundred records (~50 KiB) are alive. 1 MiB is ~2,200
//!   records: room for a shipper held up ~2.7 s on a busy machine, while any growth per
//!   connection of 140 bytes or more (less than one record) over the 7,600 connections after
//!   the warm-up exceeds it. No timing is asserted: the rate only keeps the load realistic.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use super::*;
use crate::harness::WithoutSockmeterEnv;

const CONNECTIONS: usize = 9_600;
const RATE: usize = 800;
const WARM_UP: u64 = 2_000;
/// Growth allowed after the warm-up (see the module docs).
const FLAT_KIB: u64 = 1_024;

/// The server's `VmRSS` in KiB, if it is still running.
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// What the client said: its "done" line's (connections, tx, rx), and the server's RSS after
/// each 1,000 connections.
struct Load {
    conns: u64,
    tx: u64,
    rx: u64,
    samples: Vec<(u64, u64)>,
}

/// The load: connections, client threads, connections a second at most (0: no limit), and
/// whether the server's memory is checked.
struct Shape {
    connections: usize,
    threads: usize,
    rate: usize,
    memory: bool,
}

/// The soak of the module docs.
const PACED: Shape = Shape {
    connections: CONNECTIONS,
    threads: 4,
    rate: RATE,
    memory: true,
};

/// As fast as 8 client threads go, for 40,000 connections: faster than a debug build's shipper
/// ships them, so the shipper is still behind when the server exits.
const FLAT_OUT: Shape = Shape {
    connections: 40_000,
    threads: 8,
    rate: 0,
    memory: false,
};

fn soak(mode: Mode, shape: &Shape) {
    let server = prog("soak_server", &[]);
    let client = prog("soak_client", &["-pthread"]);
    let dir = fresh_dir("soak");
    let portfile = dir.join("port");
    let mut c = Command::new(&client);
    c.arg(&portfile)
        .args([
            shape.connections.to_string(),
            shape.threads.to_string(),
            shape.rate.to_string(),
        ])
        .without_sockmeter_env()
        .stdin(Stdio::null())
        .stdout(Stdio::piped());
    let mut child = c.spawn().expect("start soak_client");
    let out = BufReader::new(child.stdout.take().expect("stdout"));
    let pf = portfile.clone();
    let sampler = std::thread::spawn(move || {
        let mut load = Load {
            conns: 0,
            tx: 0,
            rx: 0,
            samples: Vec::new(),
        };
        let mut pid = None;
        for line in out.lines() {
            let line = line.expect("client output");
            if let Some(n) = line.strip_prefix("progress ") {
                let pid = *pid.get_or_insert_with(|| {
                    let text = std::fs::read_to_string(&pf).expect("port file");
                    num(text.split_whitespace().nth(1).expect("pid")) as u32
                });
                if let Some(kib) = rss_kib(pid) {
                    load.samples.push((num(n), kib));
                }
            } else if let Some(rest) = line.strip_prefix("done ") {
                let f = crate::cprogs::kv(rest);
                load.conns = get(&f, "conns");
                load.tx = get(&f, "tx");
                load.rx = get(&f, "rx");
            }
        }
        load
    });
    let r = metered_in(mode, &[&server, &path_str(&portfile)], &[]);
    let load = sampler.join().expect("sampler");
    assert!(child.wait().expect("client").success(), "soak_client failed");
    assert_eq!(load.conns, shape.connections as u64 + 1, "the client's own count");

    // Counts: exactly the client's, and each connection as the protocol says.
    let p = only_process(&r);
    assert_eq!(
        (p.totals.tx_bytes, p.totals.rx_bytes, p.totals.connections),
        (load.rx, load.tx, load.conns),
        "the server's totals are the client's, mirrored{}",
        ctx(&r)
    );
    let mut quit = 0;
    for s in p.sockets.iter().filter(|s| s.role == "accepted") {
        if s.folded > 0 {
            // k connections folded into one line (the report keeps 20,000 closed sockets one
            // by one): out = sum of 3 x (in_i - 4) + 7 = 3 x in - 5k; the connection that said
            // stop (4 B in, nothing out) may be among them, 7 B short of that.
            let short = (3 * s.rx_bytes).checked_sub(s.tx_bytes + 5 * s.folded);
            if short == Some(7) {
                quit += 1;
                continue;
            }
            assert_eq!(
                short,
                Some(0),
                "{} folded connections do not fit the protocol{}",
                s.folded,
                ctx(&r)
            );
            continue;
        }
        if (s.rx_bytes, s.tx_bytes) == (4, 0) {
            quit += 1;
            continue;
        }
        assert!(
            s.rx_bytes > 4 && s.tx_bytes == 3 * (s.rx_bytes - 4) + 7,
            "connection from {:?}: {} B in, {} B out does not fit the protocol{}",
            s.peer,
            s.rx_bytes,
            s.tx_bytes,
            ctx(&r)
        );
    }
    assert!(quit <= 1, "one connection said stop");
    if !shape.memory {
        return;
    }

    // Memory: flat after the warm-up.
    let after: Vec<&(u64, u64)> = load.samples.iter().filter(|(n, _)| *n >= WARM_UP).collect();
    assert!(after.len() >= 5, "too few RSS samples: {:?}", load.samples);
    let base = after[0].1;
    let top = after.iter().map(|(_, k)| *k).max().unwrap_or(base);
    assert!(
        top <= base + FLAT_KIB,
        "the server's RSS grew by {} KiB after {WARM_UP} connections (bound {FLAT_KIB} KiB): {:?}",
        top - base,
        load.samples
    );
}

both_modes! {
    /// [`PACED`]: a server soaked with connections counts exactly and its memory stays flat.
    fn a_soaked_server_counts_exactly_and_its_memory_stays_flat(mode) {
        soak(mode, &PACED);
    }
}

both_modes! {
    /// [`FLAT_OUT`]: the counts are exact however far behind the shipper is when the server exits.
    fn a_server_faster_than_its_shipper_loses_nothing_when_it_exits(mode) {
        soak(mode, &FLAT_OUT);
    }
}
