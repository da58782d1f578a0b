//! End-to-end tests with C programs (`tests/c/*.c`) run under `sockmeter run`.
//!
//! The oracle is always the other end of the traffic, run as a separate process that is NOT
//! metered (`tests/c/peer.c`, started here with a plain `Command` without `LD_PRELOAD`): it
//! prints what it really received and sent on each connection, identified by the client's
//! port. When the metered program is the server, it publishes its port (it listens on port 0)
//! in a file the unmetered client polls for. Call counts are compared with the metered
//! program's own count of the calls it made. No number here mirrors the shim's output.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::Mutex;

use sockmeter::report::{ProcessReport, SocketReport};

use crate::harness::{self, Run};

/// Compiles `tests/c/<name>.c` (serialised: the harness's temporary output name is per
/// program, and tests run in parallel threads).
fn prog(name: &str, flags: &[&str]) -> String {
    static LOCK: Mutex<()> = Mutex::new(());
    let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    path_str(&harness::compile_c(name, flags))
}

fn path_str(p: &Path) -> String {
    p.to_str().expect("utf-8 path").to_string()
}

/// A fresh scratch directory for one test.
fn fresh_dir(tag: &str) -> PathBuf {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let d = harness::scratch().join(format!("c-{tag}-{n}"));
    std::fs::create_dir_all(&d).expect("scratch dir");
    d
}

/// One TCP connection as the unmetered peer saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Seen {
    /// The client's port (the metered socket's local port, or its peer port when the metered
    /// program is the server).
    port: u16,
    /// Bytes the peer received.
    rx: u64,
    /// Bytes the peer sent.
    tx: u64,
}

/// What the UDP peer saw.
#[derive(Clone, Copy, Debug)]
struct SeenUdp {
    sender: u16,
    rx: u64,
    rxd: u64,
    tx: u64,
    txd: u64,
}

/// The unmetered peer (`tests/c/peer.c`).
struct Oracle {
    child: Child,
    out: BufReader<ChildStdout>,
    /// Its listening port (server and udp modes).
    port: u16,
}

impl Oracle {
    fn spawn(args: &[&str], env: &[(&str, &str)], listens: bool) -> Oracle {
        let mut c = Command::new(prog("peer", &[]));
        c.args(args)
            .env_remove("LD_PRELOAD")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            c.env(k, v);
        }
        let mut child = c.spawn().expect("spawn peer");
        let mut out = BufReader::new(child.stdout.take().expect("peer stdout"));
        let mut port = 0;
        if listens {
            let mut line = String::new();
            out.read_line(&mut line).expect("peer port line");
            port = line
                .trim()
                .parse()
                .unwrap_or_else(|_| panic!("peer printed {line:?} instead of its port"));
        }
        Oracle { child, out, port }
    }

    /// `peer server NCONN SCRIPT`.
    fn server(nconn: usize, script: &str) -> Oracle {
        Oracle::spawn(&["server", &nconn.to_string(), script], &[], true)
    }

    /// `peer client PORTFILE SCRIPT...`: one concurrent connection per script.
    fn clients(portfile: &Path, scripts: &[String], env: &[(&str, &str)]) -> Oracle {
        let mut args = vec!["client".to_string(), path_str(portfile)];
        args.extend(scripts.iter().cloned());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Oracle::spawn(&args, env, false)
    }

    /// `peer udp NEXPECT SIZES`.
    fn udp(nexpect: usize, sizes: &str) -> Oracle {
        Oracle::spawn(&["udp", &nexpect.to_string(), sizes], &[], true)
    }

    /// Waits for the peer (it ends by itself) and returns the rest of its output.
    fn finish(mut self) -> String {
        let mut rest = String::new();
        self.out.read_to_string(&mut rest).expect("read peer");
        let st = self.child.wait().expect("wait peer");
        assert!(st.success(), "the unmetered peer failed ({st}); it printed:\n{rest}");
        rest
    }

    /// The connections it reports.
    fn conns(self) -> Vec<Seen> {
        let text = self.finish();
        let v: Vec<Seen> = text
            .lines()
            .filter(|l| l.starts_with("conn "))
            .map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                assert!(f.len() == 6 && f[2] == "rx" && f[4] == "tx", "bad peer line {l:?}");
                Seen {
                    port: num(f[1]) as u16,
                    rx: num(f[3]),
                    tx: num(f[5]),
                }
            })
            .collect();
        v
    }

    /// The UDP verdict.
    fn udp_verdict(self) -> SeenUdp {
        let text = self.finish();
        let l = text
            .lines()
            .find(|l| l.starts_with("udp "))
            .unwrap_or_else(|| panic!("no udp verdict in {text:?}"));
        let f: Vec<&str> = l.split_whitespace().collect();
        assert!(f.len() == 10, "bad udp line {l:?}");
        SeenUdp {
            sender: num(f[1]) as u16,
            rx: num(f[3]),
            rxd: num(f[5]),
            tx: num(f[7]),
            txd: num(f[9]),
        }
    }
}

impl Drop for Oracle {
    fn drop(&mut self) {
        // Only matters when a test panics before `finish`: the peer is our own child.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn num(s: &str) -> u64 {
    s.parse().unwrap_or_else(|_| panic!("not a number: {s:?}"))
}

/// `key value` pairs of the first stdout line starting with `tag` (after the tag's words).
fn fields(text: &str, tag: &str) -> HashMap<String, String> {
    let l = text
        .lines()
        .find(|l| l.starts_with(tag))
        .unwrap_or_else(|| panic!("no line {tag:?} in:\n{text}"));
    kv(&l[tag.len()..])
}

fn kv(s: &str) -> HashMap<String, String> {
    let w: Vec<&str> = s.split_whitespace().collect();
    w.chunks(2)
        .filter(|c| c.len() == 2)
        .map(|c| (c[0].to_string(), c[1].to_string()))
        .collect()
}

fn get(m: &HashMap<String, String>, k: &str) -> u64 {
    num(m.get(k).unwrap_or_else(|| panic!("no {k} in {m:?}")))
}

/// Runs a metered command and checks it succeeded.
fn metered(cmd: &[&str]) -> Run {
    let r = harness::run(&[], cmd);
    assert_eq!(
        r.code, 0,
        "{cmd:?} failed under sockmeter:\nstdout:\n{}\nstderr:\n{}",
        r.stdout, r.stderr
    );
    r
}

/// Context for a failed assertion: the output, the summary and the JSON report (its start,
/// when it is long).
fn ctx(r: &Run) -> String {
    let mut json = serde_json::to_string_pretty(&r.json).unwrap_or_default();
    if json.len() > 20_000 {
        let mut cut = 20_000;
        while !json.is_char_boundary(cut) {
            cut -= 1;
        }
        json.truncate(cut);
        json.push_str("\n... (report truncated)");
    }
    let stderr: String = r
        .stderr
        .lines()
        .filter(|l| !l.starts_with("  udp "))
        .collect::<Vec<_>>()
        .join("\n");
    format!("\nstdout:\n{}\nstderr:\n{stderr}\nreport:\n{json}", r.stdout)
}

/// The only process of the run.
fn only_process(r: &Run) -> &ProcessReport {
    assert_eq!(r.report.processes.len(), 1, "expected exactly one process{}", ctx(r));
    &r.report.processes[0]
}

fn v4(port: u16) -> Option<String> {
    Some(format!("127.0.0.1:{port}"))
}

/// The one socket of `p` whose local address is 127.0.0.1:`port`.
fn by_local<'a>(r: &Run, p: &'a ProcessReport, port: u16) -> &'a SocketReport {
    let v: Vec<&SocketReport> = p.sockets.iter().filter(|s| s.local == v4(port)).collect();
    assert_eq!(
        v.len(),
        1,
        "expected one socket with local 127.0.0.1:{port} in pid {}{}",
        p.pid,
        ctx(r)
    );
    v[0]
}

/// The one socket of `p` whose peer is 127.0.0.1:`port`.
fn by_peer<'a>(r: &Run, p: &'a ProcessReport, port: u16) -> &'a SocketReport {
    let v: Vec<&SocketReport> = p.sockets.iter().filter(|s| s.peer == v4(port)).collect();
    assert_eq!(
        v.len(),
        1,
        "expected one socket with peer 127.0.0.1:{port} in pid {}{}",
        p.pid,
        ctx(r)
    );
    v[0]
}

/// The metered socket's counts are the mirror image of what the unmetered peer saw.
fn assert_mirror(r: &Run, s: &SocketReport, seen: &Seen) {
    assert_eq!(
        (s.tx_bytes, s.rx_bytes),
        (seen.rx, seen.tx),
        "socket {:?}->{:?} (tx, rx) must equal what the peer received and sent{}",
        s.local,
        s.peer,
        ctx(r)
    );
    assert_eq!(s.errors, 0, "socket {:?} errors{}", s.local, ctx(r));
    assert_eq!((s.family.as_str(), s.proto.as_str()), ("inet", "tcp"), "{}", ctx(r));
}

/// The dynamic symbols `bin` imports.
fn imports(bin: &str) -> Vec<String> {
    let out = Command::new("nm")
        .args(["-D", "--undefined-only", bin])
        .output()
        .expect("nm (binutils)");
    assert!(out.status.success(), "nm -D {bin} failed");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().last())
        .map(|s| s.split('@').next().unwrap_or(s).to_string())
        .collect()
}

// ---- 1. _FORTIFY_SOURCE: __read_chk, __recv_chk, __recvfrom_chk ----

#[test]
fn fortified_checked_reads_are_counted_exactly() {
    let bin = prog("fortify", &["-D_FORTIFY_SOURCE=2"]);
    let syms = imports(&bin);
    for f in ["__read_chk", "__recv_chk", "__recvfrom_chk"] {
        assert!(syms.iter().any(|s| s == f), "{bin} does not import {f}: {syms:?}");
    }
    for f in ["read", "recv", "recvfrom"] {
        assert!(
            !syms.iter().any(|s| s == f),
            "{bin} imports plain {f}, so not every read is checked: {syms:?}"
        );
    }
    let server = Oracle::server(1, "e,s300001");
    let r = metered(&[&bin, &server.port.to_string(), "250000"]);
    let seen = server.conns();
    assert_eq!(seen.len(), 1);
    let seen = seen[0];
    assert_eq!((seen.rx, seen.tx), (250000, 300001), "the exchange itself went wrong");

    let p = only_process(&r);
    let s = by_local(&r, p, seen.port);
    assert_eq!(s.role, "connected");
    assert_mirror(&r, s, &seen);
    assert_eq!(
        (p.totals.tx_bytes, p.totals.rx_bytes),
        (seen.rx, seen.tx),
        "process totals{}",
        ctx(&r)
    );
    // Each checked variant really delivered bytes (the program's own tally), so each one's
    // share is in the count above.
    let via = fields(&r.stdout, "via");
    let (a, b, c) = (get(&via, "read"), get(&via, "recv"), get(&via, "recvfrom"));
    assert!(a > 0 && b > 0 && c > 0, "every checked read must return data: {via:?}");
    assert_eq!(a + b + c, seen.tx);
}

// ---- 2. nonblocking epoll server: accept4, EAGAIN, partial writes ----

#[test]
fn epoll_server_counts_each_connection_and_eagain_is_no_error() {
    let bin = prog("epoll_server", &[]);
    let dir = fresh_dir("epoll");
    let portfile = dir.join("port");
    let sizes = [1000u64, 50000, 123457, 7];
    let scripts: Vec<String> = sizes.iter().map(|n| format!("r6,s{n},w,f,e")).collect();
    let dir_s = path_str(&dir);
    let clients = Oracle::clients(
        &portfile,
        &scripts,
        &[("PEER_RCVBUF", "4096"), ("PEER_MARKER_DIR", &dir_s)],
    );
    let r = metered(&[&bin, &path_str(&portfile), &sizes.len().to_string(), &dir_s]);
    let seen = clients.conns();
    assert_eq!(seen.len(), sizes.len(), "one verdict per client");
    let mut sent: Vec<u64> = seen.iter().map(|s| s.tx).collect();
    sent.sort_unstable();
    let mut want = sizes.to_vec();
    want.sort_unstable();
    assert_eq!(sent, want, "the clients sent what they were told to");

    let p = only_process(&r);
    let served: HashMap<u16, HashMap<String, String>> = r
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("served "))
        .map(|l| {
            let (port, rest) = l.split_once(' ').expect("served line");
            (num(port) as u16, kv(rest))
        })
        .collect();
    let (mut eagain_rx, mut eagain_tx, mut partial) = (0, 0, 0);
    for c in &seen {
        let own = served
            .get(&c.port)
            .unwrap_or_else(|| panic!("server never served client port {}{}", c.port, ctx(&r)));
        // The server's own view agrees with the client's (a check on the test itself).
        assert_eq!(
            (get(own, "rx"), get(own, "tx")),
            (c.tx, c.rx),
            "server and client disagree"
        );
        let s = by_peer(&r, p, c.port);
        assert_eq!(s.role, "accepted", "{}", ctx(&r));
        assert_mirror(&r, s, c);
        assert_eq!(
            (s.rx_calls, s.tx_calls),
            (get(own, "rxcalls"), get(own, "txcalls")),
            "calls on the connection from port {} (EAGAIN returns included), as the server counted them{}",
            c.port,
            ctx(&r)
        );
        assert!(
            get(own, "eagain_rx") >= 1 && get(own, "eagain_tx") >= 1,
            "the scenario must hit EAGAIN both ways: {own:?}"
        );
        eagain_rx += get(own, "eagain_rx");
        eagain_tx += get(own, "eagain_tx");
        partial += get(own, "partial");
    }
    assert!(
        eagain_rx >= 4 && eagain_tx >= 4 && partial >= 1,
        "EAGAIN rx {eagain_rx}, tx {eagain_tx}, partial {partial}"
    );
    let conns: Vec<&SocketReport> = p.sockets.iter().filter(|s| s.is_connection()).collect();
    assert_eq!(conns.len(), sizes.len(), "no other connections{}", ctx(&r));
    assert_eq!(p.totals.errors, 0, "EAGAIN is not an error{}", ctx(&r));
    let listeners: Vec<&SocketReport> = p.sockets.iter().filter(|s| s.role == "listening").collect();
    assert_eq!(listeners.len(), 1, "{}", ctx(&r));
    assert_eq!(
        (listeners[0].tx_bytes, listeners[0].rx_bytes, listeners[0].errors),
        (0, 0, 0)
    );
    let (tx, rx) = harness::totals(&r);
    assert_eq!(
        (tx, rx),
        (seen.iter().map(|s| s.rx).sum(), seen.iter().map(|s| s.tx).sum()),
        "run totals{}",
        ctx(&r)
    );
}

// ---- 3. sendfile / sendfile64 ----

#[test]
fn sendfile_is_counted_exactly() {
    let bin = prog("sendfile_server", &[]);
    let syms = imports(&bin);
    assert!(
        syms.iter().any(|s| s == "sendfile") && syms.iter().any(|s| s == "sendfile64"),
        "{syms:?}"
    );
    let dir = fresh_dir("sendfile");
    let portfile = dir.join("port");
    let size: u64 = 3_000_017;
    let client = Oracle::clients(&portfile, &["s100,e".to_string()], &[]);
    let r = metered(&[
        &bin,
        &path_str(&portfile),
        &path_str(&dir.join("payload")),
        &size.to_string(),
    ]);
    let seen = client.conns();
    assert_eq!(seen.len(), 1);
    let seen = seen[0];
    assert_eq!((seen.rx, seen.tx), (size, 100), "the client got the whole file");

    let p = only_process(&r);
    let s = by_peer(&r, p, seen.port);
    assert_eq!(s.role, "accepted");
    assert_mirror(&r, s, &seen);
    let line = r.stdout.lines().find(|l| l.starts_with("sent ")).expect("sent line");
    let w: Vec<&str> = line.split_whitespace().collect();
    let (calls, calls64) = (num(w[6]), num(w[9]));
    assert!(
        calls >= 1 && calls64 >= 1,
        "both sendfile and sendfile64 were used: {line}"
    );
    assert_eq!(
        s.tx_calls,
        calls + calls64,
        "every sendfile call is one send call{}",
        ctx(&r)
    );
    assert_eq!(
        (p.totals.tx_bytes, p.totals.rx_bytes),
        (size, 100),
        "process totals (the file itself is not traffic){}",
        ctx(&r)
    );
}

// ---- 4. readv / writev with several iovecs ----

#[test]
fn readv_writev_with_several_iovecs_are_exact() {
    let bin = prog("iov", &[]);
    let server = Oracle::server(1, "e,s250003");
    let r = metered(&[&bin, &server.port.to_string()]);
    let seen = server.conns();
    assert_eq!(seen.len(), 1);
    let seen = seen[0];
    // "wrote N in W writev, read M in R readv"
    let w: Vec<&str> = r.stdout.lines().next().expect("line").split_whitespace().collect();
    let (wrote, wcalls, read, rcalls) = (num(w[1]), num(w[3]), num(w[6]), num(w[8]));
    assert_eq!(
        (wrote, read),
        (seen.rx, seen.tx),
        "program and peer agree:\n{}",
        r.stdout
    );
    assert_eq!(seen.tx, 250003);

    let p = only_process(&r);
    let s = by_local(&r, p, seen.port);
    assert_mirror(&r, s, &seen);
    assert_eq!(
        (s.tx_calls, s.rx_calls),
        (wcalls, rcalls),
        "writev/readv calls as the program made them{}",
        ctx(&r)
    );
}

// ---- 5. sendmmsg / recvmmsg over UDP ----

#[test]
fn sendmmsg_recvmmsg_udp_exact_per_peer() {
    let bin = prog("mmsg", &[]);
    let one = Oracle::udp(4, "300,5000,12");
    let two = Oracle::udp(3, "65000,8");
    let (p1, p2) = (one.port, two.port);
    let r = metered(&[&bin, &p1.to_string(), &p2.to_string(), "5"]);
    let (u1, u2) = (one.udp_verdict(), two.udp_verdict());
    assert_eq!(
        (u1.rxd, u1.txd, u2.rxd, u2.txd),
        (4, 3, 3, 2),
        "datagrams each peer got and sent"
    );
    assert_eq!(u1.sender, u2.sender, "one metered socket sent to both");

    let p = only_process(&r);
    let s = by_local(&r, p, u1.sender);
    assert_eq!(
        (s.family.as_str(), s.proto.as_str(), s.role.as_str()),
        ("inet", "udp", "datagram"),
        "{}",
        ctx(&r)
    );
    assert_eq!(
        (s.tx_bytes, s.rx_bytes),
        (u1.rx + u2.rx, u1.tx + u2.tx),
        "socket bytes{}",
        ctx(&r)
    );
    assert_eq!(s.errors, 0);
    let own = r.stdout.lines().next().expect("mmsg line");
    let w: Vec<&str> = own.split_whitespace().collect();
    // "sent 7 datagrams in S sendmmsg, received 5 (B bytes) in R recvmmsg"
    let (scalls, rbytes, rcalls) = (num(w[4]), num(w[8].trim_start_matches('(')), num(w[11]));
    assert_eq!(rbytes, u1.tx + u2.tx, "program and peers agree: {own}");
    assert_eq!(
        (s.tx_calls, s.rx_calls),
        (scalls, rcalls),
        "one call per sendmmsg/recvmmsg{}",
        ctx(&r)
    );
    assert_eq!(s.peers.len(), 2, "two peers{}", ctx(&r));
    for (port, u) in [(p1, u1), (p2, u2)] {
        let pr = s
            .peers
            .iter()
            .find(|x| Some(x.peer.clone()) == v4(port))
            .unwrap_or_else(|| panic!("no peer entry for {port}{}", ctx(&r)));
        assert_eq!(
            (pr.tx_bytes, pr.rx_bytes),
            (u.rx, u.tx),
            "per-peer bytes for {port}{}",
            ctx(&r)
        );
    }
}

// ---- 6. dup, dup2, dup3, F_DUPFD and close_range; fd reuse ----

#[test]
fn dup_aliases_and_close_range_keep_one_socket_and_reused_fds_are_new_sockets() {
    let bin = prog("dups", &[]);
    let server = Oracle::server(3, "r10000,s5000,e");
    let r = metered(&[&bin, &server.port.to_string()]);
    let seen: HashMap<u16, Seen> = server.conns().into_iter().map(|s| (s.port, s)).collect();
    assert_eq!(seen.len(), 3);

    let p = only_process(&r);
    let tcp: Vec<&SocketReport> = p.sockets.iter().filter(|s| s.proto == "tcp").collect();
    assert_eq!(
        tcp.len(),
        3,
        "A (with its four aliases), B and C, nothing else{}",
        ctx(&r)
    );
    let mut socks = HashMap::new();
    for name in ["A", "B", "C"] {
        let f = fields(&r.stdout, &format!("sock {name} "));
        let port = get(&f, "port") as u16;
        let c = seen
            .get(&port)
            .unwrap_or_else(|| panic!("peer never saw {name} (port {port})"));
        let s = by_local(&r, p, port);
        assert_mirror(&r, s, c);
        assert_eq!(s.role, "connected");
        assert_eq!(
            s.fd as u64,
            get(&f, "fd"),
            "{name} is reported under the fd it was opened on{}",
            ctx(&r)
        );
        assert!(!s.adopted, "{name} was seen being created{}", ctx(&r));
        assert!(s.closed_at.is_some(), "{name} is closed{}", ctx(&r));
        socks.insert(name, s);
    }
    // The test's own design, as the peer saw it.
    let a_seen = seen[&(get(&fields(&r.stdout, "sock A "), "port") as u16)];
    assert_eq!((a_seen.rx, a_seen.tx), (10000 + 111 + 333 + 444, 5000));
    let (a, b, c) = (socks["A"], socks["B"], socks["C"]);
    assert_eq!(a.fd, b.fd, "B reused A's fd number while A's aliases were open");
    assert_eq!(a.fd, c.fd, "C reused A's fd number after A was gone");
    // A closes only with its last alias: after B (opened and closed while aliases of A were
    // still open), before C.
    let (a_closed, b_closed) = (a.closed_at.as_deref().unwrap(), b.closed_at.as_deref().unwrap());
    assert!(
        a_closed >= b_closed,
        "A closed at {a_closed}, before B closed at {b_closed}{}",
        ctx(&r)
    );
    assert!(
        c.opened_at.as_str() >= a_closed,
        "C opened at {} before A closed at {a_closed}",
        c.opened_at
    );
}

// ---- 7. non-socket I/O is never counted ----

#[test]
fn files_pipes_and_dev_null_are_never_counted() {
    let bin = prog("nonsock", &[]);
    let dir = fresh_dir("nonsock");
    let server = Oracle::server(1, "r5000,s7000,e");
    let r = metered(&[&bin, &server.port.to_string(), &path_str(&dir.join("data"))]);
    let seen = server.conns();
    assert_eq!(seen.len(), 1);
    let seen = seen[0];
    assert_eq!((seen.rx, seen.tx), (5017, 7000));

    let p = only_process(&r);
    assert_eq!(p.sockets.len(), 1, "the one TCP socket and nothing else{}", ctx(&r));
    let s = by_local(&r, p, seen.port);
    assert_mirror(&r, s, &seen);
    assert_eq!(
        (r.report.totals.tx_bytes, r.report.totals.rx_bytes),
        (seen.rx, seen.tx),
        "run totals{}",
        ctx(&r)
    );
    assert_eq!(
        (p.totals.tx_bytes, p.totals.rx_bytes),
        (seen.rx, seen.tx),
        "process totals{}",
        ctx(&r)
    );
    let calls = fields(&r.stdout, "socket calls");
    assert_eq!(
        (p.totals.tx_calls, p.totals.rx_calls),
        (get(&calls, "tx"), get(&calls, "rx")),
        "only socket calls are calls{}",
        ctx(&r)
    );
    assert_eq!(
        (p.unix.tx_bytes, p.unix.rx_bytes, p.unix.sockets),
        (0, 0, 0),
        "pipes are not Unix sockets{}",
        ctx(&r)
    );
    // The regular file really took the socket's fd number before and after it.
    let sock_fd = r
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("socket fd "))
        .and_then(|l| l.split_whitespace().next())
        .map(num)
        .expect("socket fd line");
    let file_fds: Vec<u64> = r
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("file fd "))
        .map(num)
        .collect();
    assert!(
        file_fds.first() == Some(&sock_fd) && file_fds.last() == Some(&sock_fd),
        "fd reuse scenario: socket {sock_fd}, files {file_fds:?}"
    );
}

// ---- 8. forking server, workers end with _exit ----

#[test]
fn forked_workers_that_exit_with_underscore_exit_are_reported() {
    let bin = prog("forkserver", &[]);
    let dir = fresh_dir("fork");
    let portfile = dir.join("port");
    let scripts: Vec<String> = [1000, 25000, 77777].iter().map(|n| format!("s{n},w,e")).collect();
    let clients = Oracle::clients(&portfile, &scripts, &[]);
    let r = metered(&[&bin, &path_str(&portfile), "3"]);
    let seen = clients.conns();
    assert_eq!(seen.len(), 3);

    let parents: Vec<&ProcessReport> = r.report.processes.iter().filter(|p| p.origin == "start").collect();
    assert_eq!(parents.len(), 1, "{}", ctx(&r));
    let parent = parents[0];
    let workers: Vec<&ProcessReport> = r.report.processes.iter().filter(|p| p.origin == "fork").collect();
    assert_eq!(workers.len(), 3, "one forked worker per client{}", ctx(&r));
    let pid_of: HashMap<u16, u32> = r
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("worker "))
        .map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            (num(w[2]) as u16, num(w[0]) as u32)
        })
        .collect();
    for c in &seen {
        assert_eq!((c.rx, c.tx), (2 * c.tx + 100, c.tx), "the worker's reply");
        let pid = *pid_of
            .get(&c.port)
            .unwrap_or_else(|| panic!("no worker served port {}{}", c.port, ctx(&r)));
        let w = workers
            .iter()
            .find(|p| p.pid == pid)
            .unwrap_or_else(|| panic!("worker {pid} missing from the report{}", ctx(&r)));
        assert_eq!(w.ppid, parent.pid, "worker {pid}'s parent{}", ctx(&r));
        assert_eq!(w.end, "exit", "worker {pid} said goodbye from _exit{}", ctx(&r));
        let s = by_peer(&r, w, c.port);
        assert_mirror(&r, s, c);
        assert_eq!(
            (w.totals.tx_bytes, w.totals.rx_bytes),
            (c.rx, c.tx),
            "worker {pid} totals{}",
            ctx(&r)
        );
    }
    assert_eq!(
        (parent.totals.tx_bytes, parent.totals.rx_bytes),
        (0, 0),
        "the parent moved no bytes{}",
        ctx(&r)
    );
    let (tx, rx) = harness::totals(&r);
    assert_eq!(
        (tx, rx),
        (seen.iter().map(|s| s.rx).sum(), seen.iter().map(|s| s.tx).sum()),
        "run totals{}",
        ctx(&r)
    );
}

// ---- 9. a statically linked program ----

#[test]
fn static_binary_is_warned_about_and_still_runs() {
    let bin = prog("static_hello", &["-static"]);
    let r = harness::run(&[], &[&bin, "arg-one"]);
    assert_eq!(r.code, 7, "the program's exit status is propagated{}", ctx(&r));
    assert!(r.stdout.contains("static-hello arg-one"), "the program ran{}", ctx(&r));
    let warn = r
        .stderr
        .lines()
        .position(|l| l.starts_with("sockmeter:") && l.contains("static") && l.contains(&bin))
        .unwrap_or_else(|| panic!("no warning naming the static binary on stderr{}", ctx(&r)));
    let own = r
        .stderr
        .lines()
        .position(|l| l == "static-hello on stderr")
        .unwrap_or_else(|| panic!("the program's stderr is missing{}", ctx(&r)));
    assert!(warn < own, "the warning comes before the program runs{}", ctx(&r));
    assert!(r.report.processes.is_empty(), "nothing could be metered{}", ctx(&r));
}

// ---- 10. the host closes every fd, or dup2s over it ----

fn wipe_fds(mode: &str) {
    let bin = prog("closeloop", &[]);
    let server = Oracle::server(2, "r3000,s2000,e");
    let r = metered(&[&bin, &server.port.to_string(), mode]);
    let seen: HashMap<u16, Seen> = server.conns().into_iter().map(|s| (s.port, s)).collect();
    assert_eq!(seen.len(), 2);
    let rep = fields(&r.stdout, "reporter");
    let rep_fd: i64 = rep["fd"].parse().expect("fd");
    assert!(
        (3..1024).contains(&rep_fd),
        "the reporter connection was open inside the wiped range when the loop ran: {rep:?}"
    );

    let p = only_process(&r);
    assert_eq!(p.end, "exit", "the process's goodbye arrived{}", ctx(&r));
    assert_eq!(
        p.sockets.iter().filter(|s| s.family == "inet").count(),
        2,
        "A and B{}",
        ctx(&r)
    );
    let a_port = get(&fields(&r.stdout, "sock A "), "port") as u16;
    let b = fields(&r.stdout, "sock B ");
    let b_port = get(&b, "port") as u16;
    let (sa, sb) = (seen[&a_port], seen[&b_port]);
    assert_eq!(
        (sa.rx, sa.tx, sb.rx, sb.tx),
        (3000, 2000, 4234, 2000),
        "the exchanges themselves"
    );
    let a = by_local(&r, p, a_port);
    assert_mirror(&r, a, &sa);
    assert!(a.closed_at.is_some(), "A was closed by the loop{}", ctx(&r));
    let bs = by_local(&r, p, b_port);
    assert_mirror(&r, bs, &sb);
    assert_eq!(bs.fd as u64, get(&b, "fd"));
    assert_eq!(
        (p.totals.tx_bytes, p.totals.rx_bytes),
        (sa.rx + sb.rx, sa.tx + sb.tx),
        "process totals{}",
        ctx(&r)
    );
}

#[test]
fn closing_every_fd_keeps_the_report_and_later_counts_exact() {
    wipe_fds("close");
}

#[test]
fn dup2_over_every_fd_keeps_the_report_and_later_counts_exact() {
    wipe_fds("dup2");
}

/// The same property with a second thread at work: while one thread keeps opening and
/// closing sockets (so the reporting thread keeps sending, every 10 ms), the other keeps
/// closing the reporter connection's fd wherever the shim has moved it.
#[test]
fn closing_the_reporter_fd_while_another_thread_works_keeps_the_report() {
    let bin = prog("fdstorm", &["-pthread"]);
    let server = Oracle::server(1, "r3000,s2000,e");
    let r = harness::run(&["--interval", "10"], &[&bin, &server.port.to_string(), "4000"]);
    let seen = server.conns();
    assert_eq!(r.code, 0, "fdstorm failed{}", ctx(&r));
    assert_eq!(seen.len(), 1);
    let seen = seen[0];
    assert_eq!((seen.rx, seen.tx), (4234, 2000), "the exchange itself");
    let storm = fields(&r.stdout, "storm");
    assert!(
        get(&storm, "closed") >= 1,
        "the storm never found the reporter connection: {storm:?}"
    );
    assert!(
        !r.stderr.contains("cannot reach the reporter"),
        "the shim lost its reporter connection to the host's close(){}",
        ctx(&r)
    );
    let p = only_process(&r);
    assert_eq!(p.end, "exit", "the process's goodbye arrived{}", ctx(&r));
    let b = fields(&r.stdout, "sock B ");
    let s = by_local(&r, p, get(&b, "port") as u16);
    assert_mirror(&r, s, &seen);
    assert_eq!(
        (p.totals.tx_bytes, p.totals.rx_bytes),
        (seen.rx, seen.tx),
        "process totals{}",
        ctx(&r)
    );
}

// ---- 11. results and errno are the program's own ----

#[test]
fn errno_and_return_values_are_untouched() {
    let bin = prog("errnos", &[]);
    let dir = fresh_dir("errnos");
    let d = path_str(&dir);
    let plain = Command::new(&bin)
        .arg(&d)
        .env_remove("LD_PRELOAD")
        .stdin(Stdio::null())
        .output()
        .expect("run errnos");
    assert!(
        plain.status.success(),
        "unmetered errnos failed: {}",
        String::from_utf8_lossy(&plain.stderr)
    );
    let plain = String::from_utf8(plain.stdout).expect("utf-8");
    for (what, e) in [
        ("send on closed fd", "EBADF"),
        ("recv on empty nonblocking udp", "EAGAIN"),
        ("recv on empty nonblocking tcp", "EAGAIN"),
        ("connect to a closed port", "ECONNREFUSED"),
        ("read on a directory", "EISDIR"),
        ("socket (success keeps errno)", "EDOM"),
    ] {
        assert!(
            plain
                .lines()
                .any(|l| l.starts_with(what) && l.ends_with(&format!("errno={e}"))),
            "the program itself must show {what} -> {e}:\n{plain}"
        );
    }
    let r = metered(&[&bin, &d]);
    assert_eq!(
        r.stdout,
        plain,
        "return values and errno differ under the shim{}",
        ctx(&r)
    );

    // EAGAIN is a call, not an error.
    let p = only_process(&r);
    let udp: Vec<&SocketReport> = p.sockets.iter().filter(|s| s.proto == "udp").collect();
    assert_eq!(udp.len(), 1, "{}", ctx(&r));
    assert_eq!(
        (udp[0].rx_calls, udp[0].rx_bytes, udp[0].errors),
        (5, 0, 0),
        "five EAGAIN receives, no error{}",
        ctx(&r)
    );
    let acc: Vec<&SocketReport> = p.sockets.iter().filter(|s| s.role == "accepted").collect();
    assert_eq!(acc.len(), 1, "{}", ctx(&r));
    // peek (no bytes), recv 10, then two EAGAIN reads.
    assert_eq!(
        (acc[0].rx_bytes, acc[0].rx_calls, acc[0].errors),
        (10, 4, 0),
        "{}",
        ctx(&r)
    );
}
