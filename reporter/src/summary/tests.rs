//! The summary's text, line for line.

use super::*;
use sockmeter::report::{GroupStats, ModuleReport, PeerReport, ProcessTotals, UnixTotals};

fn render(r: &Report) -> String {
    render_with(r, &Options::default())
}

fn tcp(local: &str, peer: &str, rx: u64, tx: u64, module: &str) -> SocketReport {
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

fn socketpair_end() -> SocketReport {
    SocketReport {
        family: "unix".into(),
        proto: "stream".into(),
        role: "connected".into(),
        local: Some("(unnamed)".into()),
        peer: Some("(unnamed)".into()),
        module: Some("/usr/bin/curl".into()),
        ..Default::default()
    }
}

/// curl fetching a 3,000,000-byte file: one connection, and its internal socketpair.
fn curl(pid: u32, started: &str, ended: &str) -> ProcessReport {
    let mut s = tcp("127.0.0.1:53422", "127.0.0.1:8000", 3_000_000, 85, "/usr/bin/curl");
    s.set_witness(Some([85, 3_000_000]));
    ProcessReport {
        pid,
        argv: ["curl", "-s", "-o", "/dev/null", "http://127.0.0.1:8000/big.bin"]
            .map(String::from)
            .to_vec(),
        exe: "/usr/bin/curl".into(),
        end: "exit".into(),
        exit_code: Some(0),
        started_at: started.into(),
        ended_at: Some(ended.into()),
        totals: ProcessTotals {
            tx_bytes: 85,
            rx_bytes: 3_000_000,
            connections: 1,
            sockets: 1,
            ..Default::default()
        },
        unix: UnixTotals {
            sockets: 2,
            ..Default::default()
        },
        sockets: vec![s, socketpair_end(), socketpair_end()],
        ..Default::default()
    }
}

const T0: &str = "2026-12-01T22:04:18.000Z";
const T1: &str = "2026-12-01T22:04:18.050Z";

#[test]
fn one_curl_the_readme_example() {
    let r = Report::new(vec!["curl".into()], Some(0), false, vec![curl(4711, T0, T1)]);
    let expected = "\
sockmeter: pid 4711 curl: 3.0 MB in, 85 B out over 1 connection with 127.0.0.1:8000
  curl -s -o /dev/null http://127.0.0.1:8000/big.bin  (exit 0 after 50 ms, 60.0 MB/s)
  proto  local            peer            role       in      out   module
  tcp    127.0.0.1:53422  127.0.0.1:8000  connected  3.0 MB  85 B  curl
sockmeter: total: 3.0 MB in, 85 B out over 1 connection in 1 process
";
    assert_eq!(render(&r), expected, "\n{}", render(&r));
}

#[test]
fn all_shows_what_moved_nothing_and_bytes_are_exact() {
    let r = Report::new(vec!["curl".into()], Some(0), false, vec![curl(4711, T0, T1)]);
    let opts = Options {
        all: true,
        units: Units { exact: true },
        ..Default::default()
    };
    let expected = "\
sockmeter: pid 4711 curl: 3000000 B in, 85 B out over 1 connection with 127.0.0.1:8000
  curl -s -o /dev/null http://127.0.0.1:8000/big.bin  (exit 0 after 50 ms, 60001700 B/s)
  proto  local            peer            role       in         out   module
  tcp    127.0.0.1:53422  127.0.0.1:8000  connected  3000000 B  85 B  curl
sockmeter: Unix-domain sockets (not in the totals; --unix counts them):
sockmeter: pid 4711 curl: 0 B in, 0 B out over 2 Unix sockets
  proto   local      peer       role       in   out  module
  stream  (unnamed)  (unnamed)  connected  0 B  0 B  curl
  stream  (unnamed)  (unnamed)  connected  0 B  0 B  curl
sockmeter: total: 3000000 B in, 85 B out over 1 connection in 1 process
";
    let text = render_with(&r, &opts);
    assert_eq!(text, expected, "\n{text}");
}

#[test]
fn with_unix_a_socketpair_is_listed_but_not_a_connection() {
    let mut p = curl(4711, T0, T1);
    // What the account computes with --unix: the socketpair counts in bytes, not connections.
    p.sockets[1].tx_bytes = 1;
    p.sockets[2].rx_bytes = 1;
    p.totals.tx_bytes += 1;
    p.totals.rx_bytes += 1;
    let text = render(&Report::new(vec![], Some(0), true, vec![p]));
    let expected = "\
sockmeter: pid 4711 curl: 3.0 MB in, 86 B out over 1 connection with 127.0.0.1:8000
  curl -s -o /dev/null http://127.0.0.1:8000/big.bin  (exit 0 after 50 ms, 60.0 MB/s)
  proto   local            peer            role       in      out   module
  tcp     127.0.0.1:53422  127.0.0.1:8000  connected  3.0 MB  85 B  curl
  stream  (unnamed)        (unnamed)       connected  0 B     1 B   curl
  stream  (unnamed)        (unnamed)       connected  1 B     0 B   curl
sockmeter: total: 3.0 MB in, 86 B out over 1 connection in 1 process
";
    assert_eq!(text, expected, "\n{text}");
}

#[test]
fn peers_by_name_endings_and_the_unix_section() {
    let mut p = curl(7, T0, "2026-12-01T22:04:20.500Z");
    p.argv = vec!["python3".into(), "fetch.py".into()];
    p.exe = "/usr/bin/python3.11".into();
    p.exit_code = None;
    p.signal = Some(15);
    p.end = "signal".into();
    p.sockets[0].peer_name = Some("localhost".into());
    p.sockets[0].module = Some("/usr/bin/python3.11".into());
    p.sockets[1] = SocketReport {
        family: "unix".into(),
        proto: "stream".into(),
        role: "connected".into(),
        local: Some("(unnamed)".into()),
        peer: Some("/run/nscd/socket".into()),
        tx_bytes: 300,
        rx_bytes: 1200,
        module: Some("/usr/bin/python3.11".into()),
        ..Default::default()
    };
    p.unix = UnixTotals {
        tx_bytes: 300,
        rx_bytes: 1200,
        sockets: 3,
    };
    let mut sleeper = ProcessReport {
        pid: 8,
        exe: "/bin/sleep".into(),
        argv: vec!["sleep".into(), "60".into()],
        end: "running".into(),
        started_at: T0.into(),
        ..Default::default()
    };
    sleeper
        .sockets
        .push(tcp("127.0.0.1:1", "10.0.0.1:80", 0, 5, "/bin/sleep"));
    sleeper.totals.tx_bytes = 5;
    sleeper.totals.connections = 1;
    let text = render(&Report::new(vec![], Some(143), false, vec![p, sleeper]));
    let expected = "\
sockmeter: pid 7 python3: 3.0 MB in, 85 B out over 1 connection with localhost (127.0.0.1:8000)
  python3 fetch.py  (killed by SIGTERM after 2.50 s, 1.2 MB/s)
  proto  local            peer                        role       in      out   module
  tcp    127.0.0.1:53422  localhost (127.0.0.1:8000)  connected  3.0 MB  85 B  python3.11
sockmeter: pid 8 sleep: 0 B in, 5 B out over 1 connection with 10.0.0.1:80
  sleep 60  (still running when sockmeter stopped)
  proto  local        peer         role       in   out  module
  tcp    127.0.0.1:1  10.0.0.1:80  connected  0 B  5 B  sleep
sockmeter: Unix-domain sockets (not in the totals; --unix counts them):
sockmeter: pid 7 python3: 1.2 kB in, 300 B out over 1 Unix socket
  proto   local      peer              role       in      out    module
  stream  (unnamed)  /run/nscd/socket  connected  1.2 kB  300 B  python3.11
sockmeter: total: 3.0 MB in, 90 B out over 2 connections in 2 processes
";
    assert_eq!(text, expected, "\n{text}");
}

/// A script that ran curl `n` times (and one that failed).
fn script(n: u32) -> Report {
    let mut ps: Vec<ProcessReport> = (0..n).map(|i| curl(100 + i, T0, T1)).collect();
    ps[0].exit_code = Some(7);
    ps[0].sockets.truncate(1);
    ps[0].sockets[0].rx_bytes = 0;
    ps[0].sockets[0].tx_bytes = 0;
    ps[0].sockets[0].errors = 1;
    ps[0].totals = ProcessTotals {
        connections: 1,
        errors: 1,
        ..Default::default()
    };
    let mut sh = ProcessReport {
        pid: 99,
        exe: "/usr/bin/dash".into(),
        argv: vec!["sh".into(), "fetch-all.sh".into()],
        end: "exit".into(),
        exit_code: Some(0),
        ..Default::default()
    };
    sh.sockets.push(socketpair_end());
    ps.insert(0, sh);
    Report::new(vec!["sh".into()], Some(0), false, ps)
}

#[test]
fn many_processes_are_grouped_by_executable() {
    let text = render(&script(30));
    let expected = "\
sockmeter: 30 processes, by executable (--group-by process lists each one):
  executable  processes  ended                  in       out     connections  peers
  curl        30         exit 0: 29, exit 7: 1  87.0 MB  2.5 kB  30           127.0.0.1:8000
sockmeter: total: 87.0 MB in, 2.5 kB out over 30 connections in 31 processes (1 moved nothing; --all shows it)
";
    assert_eq!(text, expected, "\n{text}");
    assert!(text.lines().count() < 10, "30 curls: a handful of lines, not 212");
}

#[test]
fn grouped_by_module_and_by_peer_with_top() {
    let mut r = script(3);
    r.processes[2].sockets[0].peer = Some("10.0.0.9:443".into());
    r.processes[2].sockets[0].peer_name = Some("example.org".into());
    r.processes[3].sockets[0].rx_bytes = 1_000_000;
    r.processes[3].totals.rx_bytes = 1_000_000;
    let r = Report::new(r.command, r.exit_status, r.unix_in_totals, r.processes);
    let opts = |by| Options {
        group_by: Some(by),
        ..Default::default()
    };
    let text = render_with(&r, &opts(GroupBy::Peer));
    let expected = "\
sockmeter: 3 processes, by peer:
  peer                        in      out   connections  processes
  example.org (10.0.0.9:443)  3.0 MB  85 B  1            curl
  127.0.0.1:8000              1.0 MB  85 B  2            curl (2)
sockmeter: total: 4.0 MB in, 170 B out over 3 connections in 4 processes (1 moved nothing; --all shows it)
";
    assert_eq!(text, expected, "\n{text}");
    let mut r = r;
    let mut mail = tcp("127.0.0.1:2", "127.0.0.1:25", 10, 0, "/usr/lib/libmail.so");
    mail.set_witness(Some([0, 10]));
    r.processes[0].sockets.push(mail);
    let text = render_with(
        &r,
        &Options {
            group_by: Some(GroupBy::Module),
            top: Some(1),
            all: true,
            ..Default::default()
        },
    );
    let expected = "\
sockmeter: 4 processes, by module:
  module    processes  in      out    connections  peers
  curl      3          4.0 MB  170 B  3            example.org (10.0.0.9:443), 127.0.0.1:8000
  (1 more)  1          10 B    0 B    1
sockmeter: Unix-domain sockets (not in the totals; --unix counts them): 0 B in, 0 B out over 5 sockets in 3 processes
sockmeter: total: 4.0 MB in, 170 B out over 3 connections in 4 processes
";
    assert_eq!(text, expected, "\n{text}");
}

#[test]
fn top_keeps_the_busiest_processes() {
    let mut r = script(3);
    r.processes[3].sockets[0].rx_bytes = 5_000_000;
    r.processes[3].totals.rx_bytes = 5_000_000;
    let r = Report::new(r.command, r.exit_status, r.unix_in_totals, r.processes);
    let text = render_with(
        &r,
        &Options {
            top: Some(1),
            group_by: Some(GroupBy::Process),
            ..Default::default()
        },
    );
    let expected = "\
sockmeter: pid 102 curl: 5.0 MB in, 85 B out over 1 connection with 127.0.0.1:8000
  curl -s -o /dev/null http://127.0.0.1:8000/big.bin  (exit 0 after 50 ms, 100.0 MB/s)
  proto  local            peer            role       in      out   module
  tcp    127.0.0.1:53422  127.0.0.1:8000  connected  5.0 MB  85 B  curl
sockmeter: ... and 2 more processes: 3.0 MB in, 85 B out over 2 connections (--top 1 shows the busiest)
sockmeter: total: 8.0 MB in, 170 B out over 3 connections in 4 processes (1 moved nothing; --all shows it)
";
    assert_eq!(text, expected, "\n{text}");
}

#[test]
fn a_failed_connection_is_shown_though_it_moved_no_byte() {
    let r = script(1);
    let text = render(&r);
    assert!(
        text.contains("  tcp    127.0.0.1:53422  127.0.0.1:8000  connected  0 B  0 B  curl\n"),
        "errors count as something: \n{text}"
    );
    assert!(text.contains("(exit 7 after 50 ms)"), "no rate without bytes:\n{text}");
}

#[test]
fn many_sockets_and_peers_are_cut_short() {
    let mut p = ProcessReport {
        pid: 1,
        argv: vec!["srv".into()],
        end: "lost".into(),
        ..Default::default()
    };
    for i in 0..25u64 {
        p.sockets
            .push(tcp("10.0.0.1:80", &format!("10.0.0.{}:5000", i + 2), 0, i + 1, "/srv"));
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
    let socks: Vec<&SocketReport> = p.sockets.iter().collect();
    let line = process_line(&p, &socks, Units::default());
    assert_eq!(
        line,
        "sockmeter: pid 1 srv: 0 B in, 0 B out over 25 connections with 9.9.9.9:53, 10.0.0.26:5000, 10.0.0.25:5000, +23 more"
    );
    assert!(detail_line(&p, Units::default()).ends_with(
        "(ended without a goodbye: its connection broke, or it was killed while reporting from its own thread)"
    ));
    let table = socket_table(&socks, Units::default(), Paint::default());
    assert_eq!(table.len(), 1 + MAX_ROWS + 1);
    assert_eq!(
        table.last().unwrap(),
        "  ... and 6 more sockets (the JSON report has them all)"
    );
    assert!(table[1].contains("1 peer"), "{}", table[1]);
}

#[test]
fn bytes_outside_the_hooked_calls_are_said_with_where() {
    let mut stdio = tcp("127.0.0.1:40000", "127.0.0.1:8080", 2000, 0, "/usr/bin/w_stdio");
    stdio.set_witness(Some([1000, 2000]));
    let hooked = {
        let mut s = tcp("127.0.0.1:40001", "127.0.0.1:8080", 64, 64, "/usr/bin/w_stdio");
        s.set_witness(Some([64, 64]));
        s
    };
    let killed = tcp("127.0.0.1:40002", "127.0.0.1:8080", 0, 5, "/usr/bin/w_stdio");
    let p = ProcessReport {
        pid: 7,
        argv: vec!["w_stdio".into()],
        end: "exit".into(),
        exit_code: Some(0),
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
sockmeter: pid 7 w_stdio: 2.1 kB in, 69 B out over 3 connections with 127.0.0.1:8080
  w_stdio  (exit 0)
  proto  local            peer            role       in      out   unseen in  unseen out  module
  tcp    127.0.0.1:40000  127.0.0.1:8080  connected  2.0 kB  0 B   0 B        1.0 kB      w_stdio
  tcp    127.0.0.1:40001  127.0.0.1:8080  connected  64 B    64 B  0 B        0 B         w_stdio
  tcp    127.0.0.1:40002  127.0.0.1:8080  connected  0 B     5 B   0 B        0 B         w_stdio
sockmeter: pid 7 w_stdio: 1.0 kB out moved outside the calls sockmeter sees (stdio, io_uring, raw system calls...; the kernel's TCP counters say so) on 127.0.0.1:40000 -> 127.0.0.1:8080 (w_stdio)
sockmeter: pid 7 w_stdio uses io_uring: its socket I/O is seen only by the kernel witness
sockmeter: pid 7 w_stdio: 1 TCP connection without a kernel witness (still open when the process was killed, kernel TLS, or a kernel before 4.19): what it moved outside the hooked calls is not known
sockmeter: total: 2.1 kB in, 69 B out over 3 connections in 1 process; and 1.0 kB out outside the calls sockmeter sees
";
    assert_eq!(text, expected, "\n{text}");
}

#[test]
fn bytes_a_fatal_signal_left_uncounted_name_the_signal_first() {
    let mut s = tcp("127.0.0.1:40000", "127.0.0.1:8080", 0, 1400, "/usr/bin/streamer");
    s.set_witness(Some([2100, 0]));
    let p = ProcessReport {
        pid: 9,
        argv: vec!["streamer".into()],
        end: "signal".into(),
        signal: Some(2),
        totals: ProcessTotals {
            tx_bytes: 1400,
            connections: 1,
            sockets: 1,
            unseen_tx_bytes: 700,
            ..Default::default()
        },
        sockets: vec![s],
        ..Default::default()
    };
    let lines = witness_lines(&p, &p.sockets.iter().collect::<Vec<_>>(), Units::default());
    assert_eq!(
        lines,
        vec!["sockmeter: pid 9 streamer: 700 B out moved outside the calls sockmeter sees (a call signal 2 cut short, stdio, io_uring, raw system calls...; the kernel's TCP counters say so) on 127.0.0.1:40000 -> 127.0.0.1:8080 (streamer)"]
    );
}

#[test]
fn nothing_reported() {
    let text = render(&Report::new(vec!["static".into()], Some(0), false, vec![]));
    assert_eq!(
        text,
        "\
sockmeter: no network traffic: no metered process used a socket (a process appears once it touches one; a static or setuid program cannot be metered)
sockmeter: total: 0 B in, 0 B out over 0 connections in 0 processes
"
    );
}

#[test]
fn notices_are_said_once_and_what_was_said_before_is_not_repeated() {
    let mut a = curl(1, T0, T1);
    let mut b = curl(2, T0, T1);
    a.notices
        .push("deepbind: libfoo.so was loaded with RTLD_DEEPBIND".into());
    b.notices
        .push("deepbind: libfoo.so was loaded with RTLD_DEEPBIND".into());
    let mut r = Report::new(vec![], Some(0), false, vec![a, b]);
    r.notices = vec![
        "/tmp/st is statically linked: the shim cannot be preloaded, its traffic will not be counted".into(),
        "/tmp/other is statically linked: the shim cannot be preloaded, its traffic will not be counted (exec'd 3 times, first by pid 9)".into(),
    ];
    let opts = Options {
        said: vec![r.notices[0].clone()],
        globs: vec!["libcurl*".into(), "!*/gst/*".into()],
        ..Default::default()
    };
    r.processes[1].attribute_matched = vec!["!*/gst/*".into()];
    let text = render_with(&r, &opts);
    let tail: Vec<&str> = text.lines().skip_while(|l| !l.starts_with("sockmeter: pids")).collect();
    assert_eq!(
        tail,
        [
            "sockmeter: pids 1, 2: deepbind: libfoo.so was loaded with RTLD_DEEPBIND",
            "sockmeter: total: 6.0 MB in, 170 B out over 2 connections in 2 processes",
            "sockmeter: /tmp/other is statically linked: the shim cannot be preloaded, its traffic will not be counted (exec'd 3 times, first by pid 9)",
            "sockmeter: --attribute 'libcurl*' matched no object in any metered process (a glob without `/` matches file names, one with `/` whole paths; `*` crosses `/`)",
        ],
        "\n{text}"
    );
    assert_eq!(warnings(&r, &opts).lines().count(), 2, "what --quiet still says");
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
    p.sockets.push(tcp("1.1.1.1:3", "2.2.2.2:2", 1, u64::MAX, "/m"));
    // 20,000 distinct peers: one pass over the sockets, not one per peer.
    for i in 0..20_000u64 {
        p.sockets.push(tcp(
            "10.0.0.1:80",
            &format!("10.{}.{}.1:5000", i / 256, i % 256),
            1,
            0,
            "/m",
        ));
    }
    let r = Report::new(vec![], Some(0), false, vec![p.clone(), p]);
    let text = render(&r);
    assert!(
        text.contains("with 2.2.2.2:2, 10.0.0.1:5000, 10.0.1.1:5000, +19998 more"),
        "{text}"
    );
    for by in [GroupBy::Exe, GroupBy::Module, GroupBy::Peer] {
        let t = render_with(
            &r,
            &Options {
                group_by: Some(by),
                ..Default::default()
            },
        );
        assert!(t.contains("18.4 EB"), "{by:?}: {t}");
    }
}

#[test]
fn modules_say_how_they_came_in() {
    let mut p = curl(1, T0, T1);
    let opts = Options::default();
    assert!(module_table(&p, &opts).is_empty(), "no module list, no table");
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
    assert!(module_table(&p, &opts).is_empty(), "only the executable: no table");
    p.modules.push(module(
        "/usr/lib/x86_64-linux-gnu/gstreamer-1.0/libgstsoup.so",
        "dlopen",
        Some("2026-12-01T22:04:18.288Z"),
        3_000_000,
    ));
    assert_eq!(
        module_table(&p, &opts),
        [
            "  module         came in     loaded at     in      out   connections",
            "  libgstsoup.so  dlopen      22:04:18.288  3.0 MB  84 B  1",
            "  curl           executable  22:04:18.100  5 B     84 B  1",
        ]
    );
}

#[test]
fn cfsocket_sockets_say_so() {
    let mut cf = tcp("127.0.0.1:5000", "127.0.0.1:80", 10, 20, "/opt/app/plugin.so");
    cf.origin = "cfsocket".into();
    let mut bsd = tcp("127.0.0.1:5001", "127.0.0.1:80", 1, 2, "/opt/app/host");
    bsd.origin = "bsd".into();
    let t = socket_table(&[&cf, &bsd], Units::default(), Paint::default()).join("\n");
    assert!(t.contains("connected (CFSocket)") && t.contains("plugin.so"), "{t}");
    assert_eq!(t.matches("(CFSocket)").count(), 1, "{t}");
}
