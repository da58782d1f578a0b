//! `--prometheus ADDR`: the counts as Prometheus metrics at `http://ADDR/metrics`.
//!
//! ```text
//! sockmeter_tx_bytes_total{pid="4711",exe="/usr/bin/curl",module="/usr/bin/curl",label=""} 85
//! sockmeter_rx_bytes_total{...} 3145933
//! sockmeter_connections_total{...} 1
//! sockmeter_processes{state="running"} 1
//! ```
//!
//! One series per process image and module/label pair: each counted socket (inet, and Unix with
//! `--unix`) is in exactly one, so summing a metric over its series gives the report's totals.
//! The values come from the same accounts as the report ([`crate::report_out::assemble_refs`]),
//! the connections of one image merged, and a series never goes down: a metered process that
//! reconnects keeps its series, one that restarts gets new ones (a new pid) and the old stay,
//! and a `listen` that continues its event stream starts where the last one was.
//!
//! **Bounded.** No per-peer labels. At most [`MAX_PROCESSES`] process images have series of
//! their own (running ones first, then the most recently seen); the rest are folded, for good,
//! into `pid="ended"` series, one per executable, module and label, which only grow. A process
//! has at most as many module and label names as the wire allows (2,048).
//!
//! The text is the Prometheus exposition format (0.0.4), written by the Prometheus project's
//! own Rust client (`prometheus-client`). It is served by a minimal HTTP/1.1 server on a
//! `std::net::TcpListener` in a thread of its own (one route, `GET /metrics`, one response per
//! connection, bounded reads with a timeout): the small HTTP crates would bring more code than
//! this needs, and nothing here parses more than a request line.

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use sockmeter::report::{ProcessReport, Report};

/// Process images with series of their own (see the module docs).
pub const MAX_PROCESSES: usize = 200;
/// The longest request head read.
const MAX_REQUEST: usize = 8192;

/// Counts of one series: tx bytes, rx bytes, connections.
type Counts = [u64; 3];
/// A module (or `(unknown)`) and a label (or empty).
type Group = (String, String);

/// One process image's series.
#[derive(Debug, Default)]
struct Proc {
    pid: u32,
    exe: String,
    running: bool,
    /// The update in which it was last running (recent processes keep their series).
    last_running: u64,
    folded: bool,
    groups: BTreeMap<Group, Counts>,
}

/// A process image: its pid and start.
type ProcKey = (u32, String);

/// What `/metrics` says, updated by the reporter's loop.
#[derive(Debug, Default)]
pub struct Metrics {
    /// By image.
    procs: HashMap<ProcKey, Proc>,
    updates: u64,
}

fn counts_of(p: &ProcessReport, unix: bool) -> BTreeMap<Group, Counts> {
    let mut out: BTreeMap<Group, Counts> = BTreeMap::new();
    for s in p.sockets.iter().filter(|s| s.counts(unix)) {
        let n = s.folded.max(1);
        let conns = if s.is_connection() {
            n
        } else if s.role == "overflow" {
            s.folded
        } else {
            0
        };
        let key = (
            s.module.clone().unwrap_or_else(|| "(unknown)".into()),
            s.label.clone().unwrap_or_default(),
        );
        let c = out.entry(key).or_default();
        c[0] = c[0].saturating_add(s.tx_bytes);
        c[1] = c[1].saturating_add(s.rx_bytes);
        c[2] = c[2].saturating_add(conns);
    }
    out
}

impl Metrics {
    /// Takes in the report as it is now.
    pub fn update(&mut self, report: &Report) {
        self.updates += 1;
        let unix = report.unix_in_totals;
        for p in &report.processes {
            let e = self.procs.entry((p.pid, p.started_at.clone())).or_default();
            e.pid = p.pid;
            e.exe = p.exe.clone();
            e.running = p.end == "running";
            if e.running {
                e.last_running = self.updates;
            }
            for (g, c) in counts_of(p, unix) {
                let mine = e.groups.entry(g).or_default();
                // Never down (see the module docs).
                for (m, v) in mine.iter_mut().zip(c) {
                    *m = (*m).max(v);
                }
            }
        }
        // Past the bound, the least recent fold for good: ended before running, then those
        // last seen running longest ago, then the oldest.
        type Recency = (bool, u64, String);
        let mut shown: Vec<(Recency, ProcKey)> = self
            .procs
            .iter()
            .filter(|(_, p)| !p.folded)
            .map(|(k, p)| ((p.running, p.last_running, k.1.clone()), k.clone()))
            .collect();
        if shown.len() > MAX_PROCESSES {
            shown.sort();
            let excess = shown.len() - MAX_PROCESSES;
            for (_, k) in shown.into_iter().take(excess) {
                if let Some(p) = self.procs.get_mut(&k) {
                    p.folded = true;
                }
            }
        }
    }

    /// The series: labels and counts, the folded ones summed per executable, module, label.
    fn series(&self) -> Vec<(Vec<(&'static str, String)>, Counts)> {
        let mut out = Vec::new();
        let mut folded: BTreeMap<(String, String, String), Counts> = BTreeMap::new();
        let mut procs: Vec<&Proc> = self.procs.values().collect();
        procs.sort_by(|a, b| (a.pid, &a.exe).cmp(&(b.pid, &b.exe)));
        for p in procs {
            for ((module, label), c) in &p.groups {
                if p.folded {
                    let f = folded
                        .entry((p.exe.clone(), module.clone(), label.clone()))
                        .or_default();
                    for (m, v) in f.iter_mut().zip(c) {
                        *m = m.saturating_add(*v);
                    }
                } else {
                    out.push((labels(&p.pid.to_string(), &p.exe, module, label), *c));
                }
            }
        }
        for ((exe, module, label), c) in folded {
            out.push((labels("ended", &exe, &module, &label), c));
        }
        out
    }
}

fn labels(pid: &str, exe: &str, module: &str, label: &str) -> Vec<(&'static str, String)> {
    vec![
        ("pid", pid.to_string()),
        ("exe", exe.to_string()),
        ("module", module.to_string()),
        ("label", label.to_string()),
    ]
}

#[derive(Debug)]
struct Scrape(Arc<Mutex<Metrics>>);

impl Collector for Scrape {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let series = m.series();
        let metrics: [(&str, &str, usize); 3] = [
            (
                "sockmeter_tx_bytes",
                "Bytes the metered processes sent (successful send calls), by process and module/label.",
                0,
            ),
            (
                "sockmeter_rx_bytes",
                "Bytes the metered processes received (successful receive calls), by process and module/label.",
                1,
            ),
            (
                "sockmeter_connections",
                "Connections (connected and accepted sockets) the metered processes opened, by process and module/label.",
                2,
            ),
        ];
        for (name, help, i) in metrics {
            let mut fam =
                encoder.encode_descriptor(name, help, None, prometheus_client::metrics::MetricType::Counter)?;
            for (labels, c) in &series {
                let me = fam.encode_family(labels)?;
                ConstCounter::new(c[i]).encode(me)?;
            }
        }
        let (running, ended) = m.procs.values().fold(
            (0i64, 0i64),
            |(r, e), p| {
                if p.running {
                    (r + 1, e)
                } else {
                    (r, e + 1)
                }
            },
        );
        let mut fam = encoder.encode_descriptor(
            "sockmeter_processes",
            "Metered process images the reporter knows, running or ended.",
            None,
            prometheus_client::metrics::MetricType::Gauge,
        )?;
        for (state, n) in [("running", running), ("ended", ended)] {
            let l = vec![("state", state.to_string())];
            let me = fam.encode_family(&l)?;
            ConstGauge::new(n).encode(me)?;
        }
        Ok(())
    }
}

/// The exporter: the metrics, and the thread serving them.
pub struct Exporter {
    metrics: Arc<Mutex<Metrics>>,
    addr: SocketAddr,
}

impl Exporter {
    /// Listens at `addr` (before anything runs: a port in use is a usage error) and serves
    /// `/metrics` from a thread.
    pub fn start(addr: SocketAddr) -> Result<Exporter> {
        let listener = TcpListener::bind(addr).with_context(|| format!("cannot serve Prometheus metrics at {addr}"))?;
        let addr = listener.local_addr().unwrap_or(addr);
        let metrics = Arc::new(Mutex::new(Metrics::default()));
        let mut registry = Registry::default();
        registry.register_collector(Box::new(Scrape(metrics.clone())));
        std::thread::Builder::new()
            .name("prometheus".into())
            .spawn(move || serve(listener, registry))
            .context("cannot start the Prometheus thread")?;
        Ok(Exporter { metrics, addr })
    }

    /// Where it serves.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Takes in the report as it is now.
    pub fn update(&self, report: &Report) {
        self.metrics.lock().unwrap_or_else(|e| e.into_inner()).update(report);
    }
}

fn serve(listener: TcpListener, registry: Registry) {
    for conn in listener.incoming() {
        let Ok(mut conn) = conn else { continue };
        let _ = answer(&mut conn, &registry);
        // Closing with unread bytes would reset the connection before the client has read the
        // answer: say the end, and take what the client still sends (a little, briefly).
        let _ = conn.shutdown(std::net::Shutdown::Write);
        let _ = conn.set_read_timeout(Some(Duration::from_millis(500)));
        let mut sink = [0u8; 4096];
        let mut left = 1 << 16;
        while let Ok(n @ 1..) = conn.read(&mut sink) {
            left -= n.min(left);
            if left == 0 {
                break;
            }
        }
    }
}

/// Reads a request head (bounded in size and time) and answers it, then closes.
fn answer(conn: &mut TcpStream, registry: &Registry) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(5)))?;
    conn.set_write_timeout(Some(Duration::from_secs(10)))?;
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && !head.windows(2).any(|w| w == b"\n\n") {
        let n = conn.read(&mut buf)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
        if head.len() > MAX_REQUEST {
            return respond(
                conn,
                "431 Request Header Fields Too Large",
                "text/plain",
                b"request too large\n",
                false,
            );
        }
    }
    let line = head.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    let head_only = method == "HEAD";
    match (method, path) {
        ("GET" | "HEAD", "/metrics") => {
            let mut text = String::new();
            if prometheus_client::encoding::prometheus_text::encode(&mut text, registry).is_err() {
                return respond(
                    conn,
                    "500 Internal Server Error",
                    "text/plain",
                    b"cannot encode\n",
                    head_only,
                );
            }
            respond(
                conn,
                "200 OK",
                prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
                text.as_bytes(),
                head_only,
            )
        }
        ("GET" | "HEAD", "/") => respond(
            conn,
            "200 OK",
            "text/plain; charset=utf-8",
            b"sockmeter: metrics at /metrics\n",
            head_only,
        ),
        ("GET" | "HEAD", _) => respond(
            conn,
            "404 Not Found",
            "text/plain",
            b"not found; try /metrics\n",
            head_only,
        ),
        _ => respond(conn, "405 Method Not Allowed", "text/plain", b"GET /metrics\n", false),
    }
}

fn respond(conn: &mut TcpStream, status: &str, kind: &str, body: &[u8], head_only: bool) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes())?;
    if !head_only {
        conn.write_all(body)?;
    }
    conn.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use sockmeter::report::SocketReport;

    fn process(pid: u32, end: &str, tx: u64, module: &str, label: Option<&str>) -> ProcessReport {
        ProcessReport {
            pid,
            exe: "/usr/bin/x \"odd\"".into(),
            started_at: format!("2026-01-01T00:00:{:02}.000Z", pid % 60),
            end: end.into(),
            sockets: vec![
                SocketReport {
                    family: "inet".into(),
                    proto: "tcp".into(),
                    role: "connected".into(),
                    tx_bytes: tx,
                    rx_bytes: 2 * tx,
                    module: Some(module.into()),
                    label: label.map(String::from),
                    ..Default::default()
                },
                SocketReport {
                    family: "unix".into(),
                    proto: "stream".into(),
                    role: "connected".into(),
                    tx_bytes: 1000,
                    module: Some(module.into()),
                    ..Default::default()
                },
            ],
            ..Default::default()
        }
    }

    fn scrape(m: Metrics) -> String {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(Scrape(Arc::new(Mutex::new(m)))));
        let mut text = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut text, &registry).unwrap();
        text
    }

    fn sum(text: &str, metric: &str) -> u64 {
        text.lines()
            .filter(|l| l.starts_with(&format!("{metric}{{")))
            .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
            .sum()
    }

    #[test]
    fn series_sum_to_the_totals_with_help_and_type() {
        let mut m = Metrics::default();
        let r = Report::new(
            vec![],
            None,
            false,
            vec![
                process(1, "running", 10, "/m/a.so", Some("weather")),
                process(2, "exit", 5, "/m/b.so", None),
            ],
        );
        m.update(&r);
        let text = scrape(m);
        assert!(
            text.contains("# HELP sockmeter_tx_bytes_total Bytes the metered processes sent"),
            "{text}"
        );
        assert!(text.contains("# TYPE sockmeter_tx_bytes_total counter"), "{text}");
        assert!(text.contains("# TYPE sockmeter_processes gauge"), "{text}");
        assert!(
            text.contains(
                r#"sockmeter_tx_bytes_total{pid="1",exe="/usr/bin/x \"odd\"",module="/m/a.so",label="weather"} 10"#
            ),
            "{text}"
        );
        assert_eq!(
            sum(&text, "sockmeter_tx_bytes_total"),
            15,
            "Unix sockets are not in the totals"
        );
        assert_eq!(sum(&text, "sockmeter_rx_bytes_total"), 30);
        assert_eq!(sum(&text, "sockmeter_connections_total"), 2);
        assert!(text.contains("sockmeter_processes{state=\"running\"} 1"), "{text}");
    }

    /// Past the bound, processes fold into `pid="ended"` series; sums never go down, however
    /// the processes come and go.
    #[test]
    fn many_processes_are_bounded_and_sums_never_go_down() {
        let mut m = Metrics::default();
        let mut procs = Vec::new();
        let mut last = 0;
        for pid in 1..=(MAX_PROCESSES as u32 + 50) {
            procs.push(process(pid, "exit", 1, "/m/a.so", None));
            m.update(&Report::new(vec![], None, false, procs.clone()));
            let total: u64 = m.series().iter().map(|(_, c)| c[0]).sum();
            assert!(total >= last);
            last = total;
        }
        assert_eq!(last, MAX_PROCESSES as u64 + 50);
        let series = m.series();
        assert!(series.len() <= MAX_PROCESSES + 1, "{}", series.len());
        let ended: Vec<_> = series.iter().filter(|(l, _)| l[0].1 == "ended").collect();
        assert_eq!(ended.len(), 1);
        assert_eq!(ended[0].1[0], 50);
        // A process whose counts the report no longer shows (it cannot, but a reader must not
        // care) keeps what it had.
        m.update(&Report::new(
            vec![],
            None,
            false,
            vec![process(1, "exit", 0, "/m/a.so", None)],
        ));
        assert_eq!(m.series().iter().map(|(_, c)| c[0]).sum::<u64>(), last);
    }

    #[test]
    fn the_http_server_answers_metrics_and_refuses_the_rest() {
        let e = Exporter::start("127.0.0.1:0".parse().unwrap()).unwrap();
        e.update(&Report::new(
            vec![],
            None,
            false,
            vec![process(7, "running", 3, "/m", None)],
        ));
        let get = |req: &str| {
            let mut c = TcpStream::connect(e.addr()).unwrap();
            c.write_all(req.as_bytes()).unwrap();
            let mut out = String::new();
            c.read_to_string(&mut out).unwrap();
            out
        };
        let ok = get("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        assert!(ok.contains("Content-Type: text/plain; version=0.0.4"), "{ok}");
        assert!(ok.contains(r#"sockmeter_tx_bytes_total{pid="7""#), "{ok}");
        assert!(get("GET /nope HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404"));
        assert!(get("POST /metrics HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 405"));
        assert!(get(&format!("GET /{} HTTP/1.1\r\n\r\n", "x".repeat(10_000))).starts_with("HTTP/1.1 431"));
    }
}
