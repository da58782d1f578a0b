//! The human summary `sockmeter run` prints on stderr: one line per process, a table of its
//! sockets under it, a table of its modules when one of them is not the executable (how each
//! came in: `dlopen`, `linked`, `preloaded`..., and when), Unix-domain sockets in their own
//! section (unless `--unix` counts them), and a total line. What the kernel witness saw move
//! outside the hooked calls (`unseen`) gets its own columns and a line saying how much and
//! where; a process that uses io_uring, and TCP connections left without a witness, are named
//! once.
//!
//! ```text
//! sockmeter: pid 4711 curl: 3.0 MiB in, 84 B out over 1 connection (127.0.0.1:8080)
//!   proto  local            peer            role       tx    rx       module
//!   tcp    127.0.0.1:53422  127.0.0.1:8080  connected  84 B  3.0 MiB  libcurl.so.4
//! sockmeter: total: 3.0 MiB in, 84 B out over 1 connection in 1 process
//! ```

use std::collections::HashMap;
use std::path::Path;

use sockmeter::report::{ProcessReport, Report, SocketReport};
use sockmeter::Family;

/// Table rows shown per process; the rest are counted in one line (the JSON has them all).
pub const MAX_ROWS: usize = 20;
/// Peers named on a process line.
const MAX_PEERS: usize = 3;

/// A byte count for people: `84 B`, `1.5 KiB`, `3.0 MiB`, `2.0 GiB`, `1.0 TiB`.
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut v = bytes as f64 / 1024.0;
    let mut unit = 0;
    // Move up while the value would print as 1024.0 or more.
    while v >= 1023.95 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

fn plural(n: u64, word: &str) -> String {
    format!("{n} {word}{}", if n == 1 { "" } else { "s" })
}

fn basename(p: &str) -> &str {
    Path::new(p).file_name().and_then(|s| s.to_str()).unwrap_or(p)
}

/// The process's short name: its argv[0] or executable, without the directory.
pub fn process_name(p: &ProcessReport) -> &str {
    let n = p
        .argv
        .first()
        .map(|a| basename(a))
        .filter(|a| !a.is_empty())
        .unwrap_or_else(|| basename(&p.exe));
    if n.is_empty() {
        "?"
    } else {
        n
    }
}

fn end_note(end: &str) -> &'static str {
    match end {
        "running" => " [still running when sockmeter stopped]",
        "lost" => {
            " [ended without a goodbye: its connection broke, or it was killed while reporting from its own thread]"
        }
        "exec" => " [replaced itself by exec]",
        _ => "",
    }
}

/// Peers of connections and datagram peers, busiest first (then in the order first seen),
/// without repeats. Linear in the sockets (a process may have tens of thousands), and the sums
/// saturate (counts from a hostile stream may be near `u64::MAX`).
fn peers(sockets: &[&SocketReport]) -> Vec<String> {
    let mut seen: Vec<(&str, u64)> = Vec::new();
    let mut index: HashMap<&str, usize> = HashMap::new();
    for s in sockets {
        let own = s.peer.as_deref().filter(|_| s.is_connection() && s.peers.is_empty());
        let each = s
            .peers
            .iter()
            .map(|p| (p.peer.as_str(), p.tx_bytes.saturating_add(p.rx_bytes)));
        for (p, bytes) in own
            .map(|p| (p, s.tx_bytes.saturating_add(s.rx_bytes)))
            .into_iter()
            .chain(each)
        {
            match index.get(p) {
                Some(&i) => seen[i].1 = seen[i].1.saturating_add(bytes),
                None => {
                    index.insert(p, seen.len());
                    seen.push((p, bytes));
                }
            }
        }
    }
    seen.sort_by_key(|p| std::cmp::Reverse(p.1));
    seen.into_iter().map(|(p, _)| p.to_string()).collect()
}

fn peer_list(peers: &[String]) -> String {
    match peers.len() {
        0 => String::new(),
        n if n <= MAX_PEERS => format!(" ({})", peers.join(", ")),
        n => format!(" ({}, +{} more)", peers[..MAX_PEERS].join(", "), n - MAX_PEERS),
    }
}

/// One process line (without the trailing newline).
pub fn process_line(p: &ProcessReport, unix_in_totals: bool) -> String {
    let counted: Vec<&SocketReport> = p.sockets.iter().filter(|s| s.counts(unix_in_totals)).collect();
    format!(
        "sockmeter: pid {} {}: {} in, {} out over {}{}{}",
        p.pid,
        process_name(p),
        human(p.totals.rx_bytes),
        human(p.totals.tx_bytes),
        plural(p.totals.connections, "connection"),
        peer_list(&peers(&counted)),
        end_note(&p.end),
    )
}

fn unseen(s: &SocketReport) -> u64 {
    s.unseen_tx_bytes.saturating_add(s.unseen_rx_bytes)
}

/// The table of `sockets` (busiest first, at most [`MAX_ROWS`]), indented, one line each. When
/// any of them moved bytes outside the hooked calls, two columns say how many.
pub fn socket_table(sockets: &[&SocketReport]) -> Vec<String> {
    let mut sorted: Vec<&SocketReport> = sockets.to_vec();
    sorted.sort_by_key(|s| std::cmp::Reverse(s.tx_bytes.saturating_add(s.rx_bytes).saturating_add(unseen(s))));
    let with_unseen = sorted.iter().any(|s| unseen(s) > 0);
    let dash = || "-".to_string();
    let mut rows: Vec<Vec<String>> = vec![["proto", "local", "peer", "role", "tx", "rx", "module"]
        .map(String::from)
        .to_vec()];
    if with_unseen {
        rows[0].splice(6..6, ["unseen tx".to_string(), "unseen rx".to_string()]);
    }
    for s in sorted.iter().take(MAX_ROWS) {
        let local = if s.folded > 0 {
            format!("({} closed sockets)", s.folded)
        } else {
            s.local.clone().unwrap_or_else(dash)
        };
        let peer = match (&s.peer, s.peers.len()) {
            (Some(p), _) => p.clone(),
            (None, 0) => dash(),
            (None, n) => plural(n as u64, "peer"),
        };
        let module = s
            .module
            .as_deref()
            .map(basename)
            .map(str::to_string)
            .unwrap_or_else(dash);
        let mut row = vec![
            s.proto.clone(),
            local,
            peer,
            if s.origin == "cfsocket" {
                format!("{} (CFSocket)", s.role)
            } else {
                s.role.clone()
            },
            human(s.tx_bytes),
            human(s.rx_bytes),
        ];
        if with_unseen {
            row.push(human(s.unseen_tx_bytes));
            row.push(human(s.unseen_rx_bytes));
        }
        row.push(module);
        rows.push(row);
    }
    let mut widths = vec![0usize; rows[0].len()];
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out: Vec<String> = rows
        .iter()
        .map(|r| {
            let cells: Vec<String> = r.iter().zip(&widths).map(|(c, &w)| format!("{c:<w$}")).collect();
            format!("  {}", cells.join("  ").trim_end())
        })
        .collect();
    if sorted.len() > MAX_ROWS {
        let n = sorted.len() - MAX_ROWS;
        out.push(format!(
            "  ... and {n} more socket{} (the JSON report has them all)",
            if n == 1 { "" } else { "s" }
        ));
    }
    out
}

/// `X in and Y out`, leaving out a zero side.
fn in_and_out(rx: u64, tx: u64) -> String {
    match (rx, tx) {
        (0, tx) => format!("{} out", human(tx)),
        (rx, 0) => format!("{} in", human(rx)),
        (rx, tx) => format!("{} in and {} out", human(rx), human(tx)),
    }
}

/// Where a socket is, for a sentence: `local -> peer (module)`.
fn place(s: &SocketReport) -> String {
    let module = s.module.as_deref().map(basename).unwrap_or("?");
    format!(
        "{} -> {} ({module})",
        s.local.as_deref().unwrap_or("?"),
        s.peer.as_deref().unwrap_or("?")
    )
}

/// The lines about what the kernel witness saw that the hooks did not, about io_uring, and
/// about TCP connections without a witness, for one process (none when there is nothing to
/// say).
pub fn witness_lines(p: &ProcessReport, counted: &[&SocketReport]) -> Vec<String> {
    let mut out = Vec::new();
    let who = format!("sockmeter: pid {} {}", p.pid, process_name(p));
    let t = &p.totals;
    if t.unseen_tx_bytes + t.unseen_rx_bytes > 0 {
        let mut where_: Vec<&SocketReport> = counted.iter().copied().filter(|s| unseen(s) > 0).collect();
        where_.sort_by_key(|s| std::cmp::Reverse(unseen(s)));
        let mut places: Vec<String> = where_.iter().take(MAX_PEERS).map(|s| place(s)).collect();
        if where_.len() > MAX_PEERS {
            places.push(format!("+{} more", where_.len() - MAX_PEERS));
        }
        out.push(format!(
            "{who}: {} moved outside the calls sockmeter sees (stdio, io_uring, raw system calls...; the kernel's TCP counters say so) on {}",
            in_and_out(t.unseen_rx_bytes, t.unseen_tx_bytes),
            places.join(", ")
        ));
    }
    if p.uses_io_uring {
        out.push(format!(
            "{who} uses io_uring: its socket I/O is seen only by the kernel witness"
        ));
    }
    let unwitnessed = counted.iter().filter(|s| s.unwitnessed_connection()).count() as u64;
    if unwitnessed > 0 && p.end != "running" {
        out.push(format!(
            "{who}: {} without a kernel witness (open across a fork, still open when the process was killed, kernel TLS, or a kernel before 4.19): what {} moved outside the hooked calls is not known",
            plural(unwitnessed, "TCP connection"),
            if unwitnessed == 1 { "it" } else { "they" }
        ));
    }
    out
}

/// The time of day of an RFC 3339 time (`2026-12-01T22:04:18.288Z` → `22:04:18.288`).
fn time_of_day(t: &str) -> &str {
    t.get(11..23).unwrap_or(t)
}

/// The modules of a process (busiest first), with how and when each came in; empty when the
/// only module is the executable (the table would say nothing the socket table does not).
pub fn module_table(p: &ProcessReport) -> Vec<String> {
    if p.modules.iter().all(|m| m.load.as_deref() == Some("executable")) {
        return Vec::new();
    }
    let mut mods: Vec<_> = p.modules.iter().collect();
    mods.sort_by_key(|m| std::cmp::Reverse(m.stats.tx_bytes.saturating_add(m.stats.rx_bytes)));
    let mut rows: Vec<[String; 6]> =
        vec![["module", "came in", "loaded at", "tx", "rx", "connections"].map(String::from)];
    for m in mods.iter().take(MAX_ROWS) {
        rows.push([
            basename(&m.module).to_string(),
            m.load.clone().unwrap_or_else(|| "-".into()),
            m.loaded_at.as_deref().map(time_of_day).unwrap_or("-").to_string(),
            human(m.stats.tx_bytes),
            human(m.stats.rx_bytes),
            m.stats.connections.to_string(),
        ]);
    }
    let mut widths = [0usize; 6];
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    rows.iter()
        .map(|r| {
            let cells: Vec<String> = r.iter().zip(widths).map(|(c, w)| format!("{c:<w$}")).collect();
            format!("  {}", cells.join("  ").trim_end())
        })
        .collect()
}

/// The whole summary, one line per `\n`.
pub fn render(report: &Report) -> String {
    let unix = report.unix_in_totals;
    let mut out: Vec<String> = Vec::new();
    if report.processes.is_empty() {
        out.push(
            "sockmeter: no network traffic: no metered process used a socket (a process appears once it touches one; a static or setuid program cannot be metered)"
                .into(),
        );
    }
    for p in &report.processes {
        out.push(process_line(p, unix));
        let counted: Vec<&SocketReport> = p.sockets.iter().filter(|s| s.counts(unix)).collect();
        if !counted.is_empty() {
            out.extend(socket_table(&counted));
            out.extend(module_table(p));
        }
        out.extend(witness_lines(p, &counted));
        for n in &p.notices {
            out.push(format!("sockmeter: pid {}: {n}", p.pid));
        }
    }
    if !unix {
        let with_unix: Vec<(&ProcessReport, Vec<&SocketReport>)> = report
            .processes
            .iter()
            .map(|p| {
                (
                    p,
                    p.sockets
                        .iter()
                        .filter(|s| s.family() == Family::Unix)
                        .collect::<Vec<_>>(),
                )
            })
            .filter(|(_, s)| !s.is_empty())
            .collect();
        if !with_unix.is_empty() {
            out.push("sockmeter: Unix-domain sockets (not in the totals; --unix counts them):".into());
        }
        for (p, socks) in with_unix {
            out.push(format!(
                "sockmeter: pid {} {}: {} in, {} out over {}",
                p.pid,
                process_name(p),
                human(p.unix.rx_bytes),
                human(p.unix.tx_bytes),
                plural(p.unix.sockets, "Unix socket")
            ));
            out.extend(socket_table(&socks));
        }
    }
    let t = &report.totals;
    let outside = if t.unseen_tx_bytes + t.unseen_rx_bytes > 0 {
        format!(
            "; and {} outside the calls sockmeter sees",
            in_and_out(t.unseen_rx_bytes, t.unseen_tx_bytes)
        )
    } else {
        String::new()
    };
    out.push(format!(
        "sockmeter: total: {} in, {} out over {} in {}{outside}",
        human(t.rx_bytes),
        human(t.tx_bytes),
        plural(t.connections, "connection"),
        match report.processes.len() {
            1 => "1 process".to_string(),
            n => format!("{n} processes"),
        },
    ));
    for n in &report.notices {
        out.push(format!("sockmeter: {n}"));
    }
    let mut s = out.join("\n");
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use sockmeter::report::{PeerReport, ProcessTotals, UnixTotals};

    #[test]
    fn human_sizes() {
        assert_eq!(human(0), "0 B");
        assert_eq!(human(84), "84 B");
        assert_eq!(human(1023), "1023 B");
        assert_eq!(human(1024), "1.0 KiB");
        assert_eq!(human(1536), "1.5 KiB");
        assert_eq!(human(3 << 20), "3.0 MiB");
        assert_eq!(human((1 << 20) - 1), "1.0 MiB", "no 1024.0 KiB");
        assert_eq!(human(5 << 30), "5.0 GiB");
        assert_eq!(human(3 << 40), "3.0 TiB");
        assert_eq!(human(u64::MAX), "16384.0 PiB");
    }

    fn tcp(local: &str, peer: &str, tx: u64, rx: u64, module: &str) -> SocketReport {
        SocketReport {
            id: 1,
            fd: 3,
            family: "inet".into(),
            proto: "tcp".into(),
            role: "connected".into(),
            local: Some(local.into()),
            peer: Some(peer.into()),
            tx_bytes: tx,
            rx_bytes: rx,
            module: Some(module.into()),
            ..Default::default()
        }
    }

    #[test]
    fn cfsocket_sockets_say_so() {
        let mut cf = tcp("127.0.0.1:5000", "127.0.0.1:80", 10, 20, "/opt/app/plugin.so");
        cf.origin = "cfsocket".into();
        let mut bsd = tcp("127.0.0.1:5001", "127.0.0.1:80", 1, 2, "/opt/app/host");
        bsd.origin = "bsd".into();
        let t = socket_table(&[&cf, &bsd]).join("\n");
        assert!(t.contains("connected (CFSocket)") && t.contains("plugin.so"), "{t}");
        assert_eq!(t.matches("(CFSocket)").count(), 1, "{t}");
    }

    fn curl() -> ProcessReport {
        let unix = SocketReport {
            family: "unix".into(),
            proto: "stream".into(),
            role: "connected".into(),
            peer: Some("/run/nscd/socket".into()),
            tx_bytes: 300,
            rx_bytes: 1200,
            module: Some("/lib/x86_64-linux-gnu/libc.so.6".into()),
            ..Default::default()
        };
        ProcessReport {
            pid: 4711,
            argv: vec!["/usr/bin/curl".into(), "-s".into()],
            exe: "/usr/bin/curl".into(),
            end: "exit".into(),
            totals: ProcessTotals {
                tx_bytes: 84,
                rx_bytes: 3 << 20,
                connections: 1,
                sockets: 1,
                ..Default::default()
            },
            unix: UnixTotals {
                tx_bytes: 300,
                rx_bytes: 1200,
                sockets: 1,
            },
            sockets: vec![
                {
                    let mut s = tcp(
                        "127.0.0.1:53422",
                        "127.0.0.1:8080",
                        84,
                        3 << 20,
                        "/usr/lib/x86_64-linux-gnu/libcurl.so.4",
                    );
                    s.set_witness(Some([84, 3 << 20]));
                    s
                },
                unix,
            ],
            ..Default::default()
        }
    }

    #[test]
    fn the_example_line() {
        assert_eq!(
            process_line(&curl(), false),
            "sockmeter: pid 4711 curl: 3.0 MiB in, 84 B out over 1 connection (127.0.0.1:8080)"
        );
    }

    #[test]
    fn a_whole_summary() {
        let mut sleeper = ProcessReport {
            pid: 4712,
            exe: "/bin/sleep".into(),
            end: "running".into(),
            ..Default::default()
        };
        sleeper.notices.push("table_full: too many sockets".into());
        let r = Report::new(vec!["curl".into()], Some(0), false, vec![curl(), sleeper]);
        let text = render(&r);
        let expected = "\
sockmeter: pid 4711 curl: 3.0 MiB in, 84 B out over 1 connection (127.0.0.1:8080)
  proto  local            peer            role       tx    rx       module
  tcp    127.0.0.1:53422  127.0.0.1:8080  connected  84 B  3.0 MiB  libcurl.so.4
sockmeter: pid 4712 sleep: 0 B in, 0 B out over 0 connections [still running when sockmeter stopped]
sockmeter: pid 4712: table_full: too many sockets
sockmeter: Unix-domain sockets (not in the totals; --unix counts them):
sockmeter: pid 4711 curl: 1.2 KiB in, 300 B out over 1 Unix socket
  proto   local  peer              role       tx     rx       module
  stream  -      /run/nscd/socket  connected  300 B  1.2 KiB  libc.so.6
sockmeter: total: 3.0 MiB in, 84 B out over 1 connection in 2 processes
";
        assert_eq!(text, expected, "\n{text}");
    }

    #[test]
    fn with_unix_the_unix_sockets_join_the_main_table() {
        let mut p = curl();
        p.totals.tx_bytes += 300;
        p.totals.rx_bytes += 1200;
        let text = render(&Report::new(vec![], Some(0), true, vec![p]));
        assert!(!text.contains("Unix-domain sockets ("), "{text}");
        assert!(
            text.lines().nth(3).unwrap().trim_start().starts_with("stream"),
            "{text}"
        );
        assert!(text.ends_with("in 1 process\n"), "{text}");
    }

    #[test]
    fn many_peers_and_many_sockets_are_cut_short() {
        let mut p = ProcessReport {
            pid: 1,
            argv: vec!["srv".into()],
            end: "lost".into(),
            ..Default::default()
        };
        for i in 0..25u64 {
            p.sockets
                .push(tcp("10.0.0.1:80", &format!("10.0.0.{}:5000", i + 2), i, 0, "/srv"));
        }
        p.sockets.push(SocketReport {
            family: "inet".into(),
            proto: "udp".into(),
            role: "datagram".into(),
            tx_bytes: 1000,
            peers: vec![PeerReport {
                peer: "9.9.9.9:53".into(),
                tx_bytes: 1000,
                ..Default::default()
            }],
            ..Default::default()
        });
        p.totals.connections = 25;
        let line = process_line(&p, false);
        assert!(line.ends_with("over 25 connections (9.9.9.9:53, 10.0.0.26:5000, 10.0.0.25:5000, +23 more) [ended without a goodbye: its connection broke, or it was killed while reporting from its own thread]"), "{line}");
        let refs: Vec<&SocketReport> = p.sockets.iter().collect();
        let table = socket_table(&refs);
        assert_eq!(table.len(), 1 + MAX_ROWS + 1);
        assert_eq!(
            table.last().unwrap(),
            "  ... and 6 more sockets (the JSON report has them all)"
        );
        assert!(table[1].contains("1 peer"), "{}", table[1]);
    }

    #[test]
    fn bytes_outside_the_hooked_calls_are_said_with_where() {
        let mut stdio = tcp("127.0.0.1:40000", "127.0.0.1:8080", 0, 2000, "/usr/bin/w_stdio");
        stdio.set_witness(Some([1000, 2000]));
        let hooked = {
            let mut s = tcp("127.0.0.1:40001", "127.0.0.1:8080", 64, 64, "/usr/bin/w_stdio");
            s.set_witness(Some([64, 64]));
            s
        };
        let killed = tcp("127.0.0.1:40002", "127.0.0.1:8080", 5, 0, "/usr/bin/w_stdio");
        let p = ProcessReport {
            pid: 7,
            argv: vec!["w_stdio".into()],
            end: "exit".into(),
            totals: ProcessTotals {
                tx_bytes: 69,
                rx_bytes: 2064,
                connections: 3,
                sockets: 3,
                unseen_tx_bytes: 1000,
                ..Default::default()
            },
            sockets: vec![stdio, hooked, killed],
            uses_io_uring: true,
            ..Default::default()
        };
        let text = render(&Report::new(vec![], Some(0), false, vec![p]));
        let expected = "\
sockmeter: pid 7 w_stdio: 2.0 KiB in, 69 B out over 3 connections (127.0.0.1:8080)
  proto  local            peer            role       tx    rx       unseen tx  unseen rx  module
  tcp    127.0.0.1:40000  127.0.0.1:8080  connected  0 B   2.0 KiB  1000 B     0 B        w_stdio
  tcp    127.0.0.1:40001  127.0.0.1:8080  connected  64 B  64 B     0 B        0 B        w_stdio
  tcp    127.0.0.1:40002  127.0.0.1:8080  connected  5 B   0 B      0 B        0 B        w_stdio
sockmeter: pid 7 w_stdio: 1000 B out moved outside the calls sockmeter sees (stdio, io_uring, raw system calls...; the kernel's TCP counters say so) on 127.0.0.1:40000 -> 127.0.0.1:8080 (w_stdio)
sockmeter: pid 7 w_stdio uses io_uring: its socket I/O is seen only by the kernel witness
sockmeter: pid 7 w_stdio: 1 TCP connection without a kernel witness (open across a fork, still open when the process was killed, kernel TLS, or a kernel before 4.19): what it moved outside the hooked calls is not known
sockmeter: total: 2.0 KiB in, 69 B out over 3 connections in 1 process; and 1000 B out outside the calls sockmeter sees
";
        assert_eq!(text, expected, "\n{text}");
    }

    #[test]
    fn nothing_reported() {
        let text = render(&Report::new(vec!["static".into()], Some(0), false, vec![]));
        assert!(text.starts_with("sockmeter: no network traffic"), "{text}");
        assert!(
            text.ends_with("total: 0 B in, 0 B out over 0 connections in 0 processes\n"),
            "{text}"
        );
    }

    #[test]
    fn counts_near_the_top_of_u64_and_many_peers_render() {
        let mut p = ProcessReport {
            pid: 1,
            argv: vec!["x".into()],
            end: "exit".into(),
            ..Default::default()
        };
        // The same peer twice, each near u64::MAX in both directions: the sums saturate.
        p.sockets.push(tcp("1.1.1.1:1", "2.2.2.2:2", u64::MAX, u64::MAX, "/m"));
        p.sockets.push(tcp("1.1.1.1:3", "2.2.2.2:2", u64::MAX, 1, "/m"));
        // 20,000 distinct peers: one pass over the sockets, not one per peer.
        for i in 0..20_000u64 {
            p.sockets.push(tcp(
                "10.0.0.1:80",
                &format!("10.{}.{}.1:5000", i / 256, i % 256),
                0,
                1,
                "/m",
            ));
        }
        let r = Report::new(vec![], Some(0), false, vec![p.clone(), p]);
        assert_eq!(
            r.totals.tx_bytes, 0,
            "each process's own totals are the caller's to fill"
        );
        let text = render(&r);
        assert!(
            text.contains("(2.2.2.2:2, 10.0.0.1:5000, 10.0.1.1:5000, +19998 more)"),
            "{text}"
        );
    }

    #[test]
    fn modules_say_how_they_came_in() {
        use sockmeter::report::{GroupStats, ModuleReport};
        let mut p = curl();
        assert!(module_table(&p).is_empty(), "no module list, no table");
        let module = |path: &str, load: &str, at: Option<&str>, rx: u64| ModuleReport {
            module: path.into(),
            load: Some(load.into()),
            loaded_at: at.map(String::from),
            stats: GroupStats {
                tx_bytes: 84,
                rx_bytes: rx,
                connections: 1,
                ..Default::default()
            },
        };
        p.modules = vec![module(
            "/usr/bin/curl",
            "executable",
            Some("2026-12-01T22:04:18.100Z"),
            5,
        )];
        assert!(module_table(&p).is_empty(), "only the executable: no table");
        p.modules.push(module(
            "/usr/lib/x86_64-linux-gnu/gstreamer-1.0/libgstsoup.so",
            "dlopen",
            Some("2026-12-01T22:04:18.288Z"),
            3 << 20,
        ));
        assert_eq!(
            module_table(&p),
            [
                "  module         came in     loaded at     tx    rx       connections",
                "  libgstsoup.so  dlopen      22:04:18.288  84 B  3.0 MiB  1",
                "  curl           executable  22:04:18.100  84 B  5 B      1",
            ]
        );
    }
}
