//! Every hook returns what libc returns, with the same errno (`tests/c/hookcalls.c`, and one
//! file per family of calls in `tests/c/hookcalls/`): each function in the hook table called
//! for success, EAGAIN, EBADF, ENOTSOCK, EPIPE, ECONNRESET, partial writes, MSG_PEEK, zero
//! lengths, invalid pointers (EFAULT) and its other errors; the whole output of a metered run
//! equals an unmetered run's, line by line, and every inet socket's counts are exactly the
//! bytes its calls returned.

use super::*;

/// A "ledger FD LOCAL PEER tx N rx N" line: one inet socket's bytes by the program's own count.
struct Ledger {
    /// The fd the socket was opened on (a UDP socket is found by it: its local port can change).
    fd: i32,
    local: String,
    /// None for a UDP socket (known by its local address alone).
    peer: Option<String>,
    tx: u64,
    rx: u64,
}

fn ledger(stdout: &str) -> Vec<Ledger> {
    lines_with(stdout, "ledger ")
        .into_iter()
        .map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            assert!(w.len() == 8 && w[4] == "tx" && w[6] == "rx", "bad ledger line {l:?}");
            Ledger {
                fd: num(w[1]) as i32,
                local: w[2].to_string(),
                peer: (w[3] != "-").then(|| w[3].to_string()),
                tx: num(w[5]),
                rx: num(w[7]),
            }
        })
        .collect()
}

/// Everything but the ledger (which names ports).
fn results(stdout: &str) -> Vec<&str> {
    stdout.lines().filter(|l| !l.starts_with("ledger ")).collect()
}

/// The socket of `p` a ledger line is about: a TCP socket by its addresses, a UDP socket by
/// its fd (hookcalls has one UDP socket per fd; one of them is disconnected with AF_UNSPEC,
/// after which the kernel gives it port 0 again).
fn socket_of<'a>(r: &Run, p: &'a ProcessReport, l: &Ledger) -> &'a SocketReport {
    let v: Vec<&SocketReport> = p
        .sockets
        .iter()
        .filter(|s| match &l.peer {
            Some(peer) => {
                s.proto == "tcp"
                    && s.local.as_deref() == Some(l.local.as_str())
                    && s.peer.as_deref() == Some(peer.as_str())
            }
            None => s.proto == "udp" && s.fd == l.fd,
        })
        .collect();
    assert_eq!(v.len(), 1, "one socket {} {:?}{}", l.local, l.peer, ctx(r));
    v[0]
}

fn every_hook(mode: Mode) {
    let bin = prog("hookcalls", &[]);
    let plain = unmetered(&[&bin, &path_str(&fresh_dir("hookcalls-plain"))]);
    let r = metered_in(mode, &[&bin, &path_str(&fresh_dir("hookcalls"))], &[]);
    let (want, got) = (results(&plain), results(&r.stdout));
    assert_same_lines(&want, &got, &r);
    assert_eq!(want.last(), Some(&"final"), "the run reached its end");
    check_ledger(&r);
    check_addresses(&r);
}

/// Every address in the report is one hookcalls used: all its traffic is on 127.0.0.1 (an
/// address read from past the end of a caller's buffer would not be).
pub(super) fn check_addresses(r: &Run) {
    let p = only_process(r);
    for s in p.sockets.iter().filter(|s| s.family == "inet") {
        for a in [&s.local, &s.peer].into_iter().flatten() {
            assert!(a.starts_with("127.0.0.1:"), "socket {} has address {a}{}", s.id, ctx(r));
        }
        for peer in &s.peers {
            assert!(
                peer.peer.starts_with("127.0.0.1:"),
                "socket {} peer {}{}",
                s.id,
                peer.peer,
                ctx(r)
            );
        }
    }
}

/// Counts: exactly what each call returned (hookcalls' ledger), on the socket it was made on;
/// nothing on the others.
pub(super) fn check_ledger(r: &Run) {
    let p = only_process(r);
    let led = ledger(&r.stdout);
    assert_eq!(led.len(), 8, "six TCP ends and two UDP sockets moved bytes{}", ctx(r));
    let mut counted = Vec::new();
    for l in &led {
        let s = socket_of(r, p, l);
        assert_eq!(
            (s.tx_bytes, s.rx_bytes),
            (l.tx, l.rx),
            "socket {} {:?}: (tx, rx) as its calls returned them{}",
            l.local,
            l.peer,
            ctx(r)
        );
        counted.push(s.id);
    }
    for s in p
        .sockets
        .iter()
        .filter(|s| s.family == "inet" && !counted.contains(&s.id))
    {
        assert_eq!(
            (s.tx_bytes, s.rx_bytes),
            (0, 0),
            "socket {:?} {:?} moved nothing{}",
            s.local,
            s.peer,
            ctx(r)
        );
    }
    let sum = |f: fn(&Ledger) -> u64| led.iter().map(f).sum::<u64>();
    assert_eq!(
        (p.totals.tx_bytes, p.totals.rx_bytes),
        (sum(|l| l.tx), sum(|l| l.rx)),
        "process totals{}",
        ctx(r)
    );
}

both_modes! {
    /// Every hooked function, every outcome: results and errno as without the shim, and
    /// counts exactly what the calls moved.
    fn every_hook_returns_what_libc_returns_with_its_errno_and_counts_what_moved(mode) {
        every_hook(mode);
    }
}
