//! End-to-end tests with C programs (`tests/c/*.c`) run under `sockmeter run`.
//!
//! The oracle is always the other end of the traffic, run as a separate process that is NOT
//! metered (`tests/c/peer.c`, started here with a plain `Command` without `LD_PRELOAD`): it
//! prints what it really received and sent on each connection, identified by the client's
//! port. When the metered program is the server, it publishes its port (it listens on port 0)
//! in a file the unmetered client polls for. Call counts are compared with the metered
//! program's own count of the calls it made. No number here mirrors the shim's output.

pub(super) use std::collections::HashMap;
pub(super) use std::path::Path;
pub(super) use std::process::{Command, Stdio};

pub(super) use sockmeter::report::{ProcessReport, SocketReport};

pub(super) use crate::harness::{self, fresh_dir, Peer, Run, WithoutSockmeterEnv};

mod data;
mod host;

/// Compiles `tests/c/<name>.c` (the harness makes parallel compiles safe).
pub(crate) fn prog(name: &str, flags: &[&str]) -> String {
    path_str(&harness::compile_c(name, flags))
}

pub(crate) fn path_str(p: &Path) -> String {
    p.to_str().expect("utf-8 path").to_string()
}

/// One TCP connection as the unmetered peer saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Seen {
    /// The client's port (the metered socket's local port, or its peer port when the metered
    /// program is the server).
    pub(crate) port: u16,
    /// Bytes the peer received.
    pub(crate) rx: u64,
    /// Bytes the peer sent.
    pub(crate) tx: u64,
}

/// What the UDP peer saw.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SeenUdp {
    pub(crate) sender: u16,
    pub(crate) rx: u64,
    pub(crate) rxd: u64,
    pub(crate) tx: u64,
    pub(crate) txd: u64,
}

/// The unmetered peer (`tests/c/peer.c`), an oracle [`Peer`]: `port` is its listening port
/// (server and udp modes; 0 in client mode, where it prints none).
pub(crate) struct Oracle(Peer);

impl std::ops::Deref for Oracle {
    type Target = Peer;
    fn deref(&self) -> &Peer {
        &self.0
    }
}

impl Oracle {
    /// `peer ARGS...` with `env` added; `listens`: it prints its port first.
    pub(crate) fn spawn(args: &[&str], env: &[(&str, &str)], listens: bool) -> Oracle {
        let mut c = Command::new(prog("peer", &[]));
        c.args(args).envs(env.iter().copied());
        Oracle(if listens { Peer::spawn(c) } else { Peer::launch(c) })
    }

    /// `peer server NCONN SCRIPT`.
    pub(crate) fn server(nconn: usize, script: &str) -> Oracle {
        Oracle::spawn(&["server", &nconn.to_string(), script], &[], true)
    }

    /// `peer client PORTFILE SCRIPT...`: one concurrent connection per script.
    pub(crate) fn clients(portfile: &Path, scripts: &[String], env: &[(&str, &str)]) -> Oracle {
        let mut args = vec!["client".to_string(), path_str(portfile)];
        args.extend(scripts.iter().cloned());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Oracle::spawn(&args, env, false)
    }

    /// `peer udp NEXPECT SIZES`.
    pub(crate) fn udp(nexpect: usize, sizes: &str) -> Oracle {
        Oracle::spawn(&["udp", &nexpect.to_string(), sizes], &[], true)
    }

    /// The connections it reports.
    pub(crate) fn conns(self) -> Vec<Seen> {
        let text = self.0.output();
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
    pub(crate) fn udp_verdict(self) -> SeenUdp {
        let text = self.0.output();
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

pub(crate) fn num(s: &str) -> u64 {
    s.parse().unwrap_or_else(|_| panic!("not a number: {s:?}"))
}

/// `key value` pairs of the first stdout line starting with `tag` (after the tag's words).
pub(crate) fn fields(text: &str, tag: &str) -> HashMap<String, String> {
    let l = text
        .lines()
        .find(|l| l.starts_with(tag))
        .unwrap_or_else(|| panic!("no line {tag:?} in:\n{text}"));
    kv(&l[tag.len()..])
}

pub(crate) fn kv(s: &str) -> HashMap<String, String> {
    let w: Vec<&str> = s.split_whitespace().collect();
    w.chunks(2)
        .filter(|c| c.len() == 2)
        .map(|c| (c[0].to_string(), c[1].to_string()))
        .collect()
}

pub(crate) fn get(m: &HashMap<String, String>, k: &str) -> u64 {
    num(m.get(k).unwrap_or_else(|| panic!("no {k} in {m:?}")))
}

/// Runs a metered command and checks it succeeded.
pub(crate) fn metered(cmd: &[&str]) -> Run {
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
pub(crate) fn ctx(r: &Run) -> String {
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
pub(crate) fn only_process(r: &Run) -> &ProcessReport {
    assert_eq!(r.report.processes.len(), 1, "expected exactly one process{}", ctx(r));
    &r.report.processes[0]
}

pub(crate) fn v4(port: u16) -> Option<String> {
    Some(format!("127.0.0.1:{port}"))
}

/// The one socket of `p` whose local address is 127.0.0.1:`port`.
pub(crate) fn by_local<'a>(r: &Run, p: &'a ProcessReport, port: u16) -> &'a SocketReport {
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
pub(crate) fn by_peer<'a>(r: &Run, p: &'a ProcessReport, port: u16) -> &'a SocketReport {
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
pub(crate) fn assert_mirror(r: &Run, s: &SocketReport, seen: &Seen) {
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

/// The run's (tx, rx) totals, and the process's `p` when given, are the mirror of everything
/// the unmetered peer saw: the sums of its (rx, tx) over `seen`.
pub(crate) fn assert_sum_mirror(r: &Run, p: Option<&ProcessReport>, seen: &[Seen]) {
    let want = (seen.iter().map(|s| s.rx).sum(), seen.iter().map(|s| s.tx).sum());
    if let Some(p) = p {
        assert_eq!((p.totals.tx_bytes, p.totals.rx_bytes), want, "process totals{}", ctx(r));
    }
    assert_eq!(harness::totals(r), want, "run totals{}", ctx(r));
}

/// The dynamic symbols `bin` imports.
pub(crate) fn imports(bin: &str) -> Vec<String> {
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
