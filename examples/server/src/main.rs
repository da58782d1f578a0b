//! `sockmeter-example-server`: the loopback server the plugin examples talk to, and the
//! independent oracle their byte counts are checked against.
//!
//! ```text
//! sockmeter-example-server [--conns N] [--timeout-secs S] [--weather-bytes B] [--stocks-bytes B]
//! ```
//!
//! It listens on 127.0.0.1 (an ephemeral port), prints the port alone on the first line of
//! stdout, and serves `N` connections (default 2) one after another. It tells the plugins
//! apart by what they ask:
//!
//! * `GET /weather...` (HTTP, from the C plugin through libcurl): reads the request head,
//!   answers `200 OK` with a body of `--weather-bytes` bytes, `Content-Length` and
//!   `Connection: close`;
//! * a `STOCKS ...` line (the Rust plugin): reads until the client's end of stream, then
//!   answers `--stocks-bytes` bytes of quotes.
//!
//! Either way it then reads until the client closes, so that every byte the client sent is
//! counted. It is a separate process that is never metered: its counts are what really
//! crossed the wire. When it has served `N` connections, or after `--timeout-secs` (default
//! 30) in all, it prints one JSON line and exits:
//!
//! ```text
//! {"plugins":{"weather":{"rx":..,"tx":..,"connections":1},"stocks":{...}},
//!  "connections":2,"timed_out":false,"per_conn":[{"plugin","peer","rx","tx","request","error"}]}
//! ```
//!
//! `rx` is what the server received from that plugin (the plugin's `tx`), `tx` what it sent.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

/// Command-line settings.
struct Args {
    conns: usize,
    timeout: Duration,
    weather_bytes: usize,
    stocks_bytes: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        conns: 2,
        timeout: Duration::from_secs(30),
        weather_bytes: 20_000,
        stocks_bytes: 6_000,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut num = |max: usize| -> Result<usize, String> {
            let v = it.next().ok_or(format!("{flag} needs a value"))?;
            match v.parse::<usize>() {
                Ok(n) if n <= max => Ok(n),
                _ => Err(format!("{flag} {v}: expected a number up to {max}")),
            }
        };
        match flag.as_str() {
            "--conns" => a.conns = num(1000)?,
            "--timeout-secs" => a.timeout = Duration::from_secs(num(3600)?.max(1) as u64),
            "--weather-bytes" => a.weather_bytes = num(64 << 20)?,
            "--stocks-bytes" => a.stocks_bytes = num(64 << 20)?,
            "-h" | "--help" => {
                println!("usage: sockmeter-example-server [--conns N] [--timeout-secs S] [--weather-bytes B] [--stocks-bytes B]");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(a)
}

/// What one connection did.
struct Conn {
    plugin: &'static str,
    peer: String,
    rx: u64,
    tx: u64,
    request: String,
    error: Option<String>,
}

/// Repeats `line`-shaped records until exactly `n` bytes.
fn payload(n: usize, line: impl Fn(usize) -> String) -> Vec<u8> {
    let mut out = Vec::with_capacity(n + 64);
    let mut i = 0;
    while out.len() < n {
        out.extend_from_slice(line(i).as_bytes());
        i += 1;
    }
    out.truncate(n);
    out
}

fn weather_response(body_len: usize) -> Vec<u8> {
    let body = payload(body_len, |i| {
        format!(
            "{{\"day\":{i},\"city\":\"Springfield\",\"high_c\":{},\"sky\":\"{}\"}}\n",
            12 + i % 17,
            ["sunny", "cloudy", "rain", "fog"][i % 4]
        )
    });
    let mut r = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(&body);
    r
}

fn stocks_response(len: usize, request: &str) -> Vec<u8> {
    let symbols: Vec<&str> = request.split_whitespace().skip(1).collect();
    let symbols = if symbols.is_empty() { vec!["ACME"] } else { symbols };
    payload(len, |i| {
        let s = symbols[i % symbols.len()];
        format!(
            "{s} {}.{:02} {:+}\n",
            100 + (i * 37) % 400,
            (i * 13) % 100,
            (i % 7) as i64 - 3
        )
    })
}

/// Reads into `buf` until `done(buf)` or end of stream; counts into `rx`.
fn read_until(s: &mut TcpStream, buf: &mut Vec<u8>, rx: &mut u64, done: impl Fn(&[u8]) -> bool) -> std::io::Result<()> {
    let mut chunk = [0u8; 16384];
    while !done(buf) {
        let n = s.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        *rx += n as u64;
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(())
}

/// Reads and counts until the client closes.
fn drain(s: &mut TcpStream, rx: &mut u64) -> std::io::Result<()> {
    let mut chunk = [0u8; 16384];
    loop {
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return Ok(());
        }
        *rx += n as u64;
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn serve(s: &mut TcpStream, a: &Args, c: &mut Conn) -> std::io::Result<()> {
    let mut head = Vec::new();
    read_until(s, &mut head, &mut c.rx, |b| b.contains(&b'\n'))?;
    let first = head.split(|&b| b == b'\n').next().unwrap_or(&[]);
    c.request = String::from_utf8_lossy(first).trim_end().to_string();
    if c.request.starts_with("GET /weather") {
        c.plugin = "weather";
        read_until(s, &mut head, &mut c.rx, |b| contains(b, b"\r\n\r\n"))?;
        let r = weather_response(a.weather_bytes);
        s.write_all(&r)?;
        c.tx += r.len() as u64;
        s.shutdown(Shutdown::Write)?;
        drain(s, &mut c.rx)
    } else if c.request.starts_with("STOCKS") {
        c.plugin = "stocks";
        drain(s, &mut c.rx)?;
        let r = stocks_response(a.stocks_bytes, &c.request);
        s.write_all(&r)?;
        c.tx += r.len() as u64;
        s.shutdown(Shutdown::Write)
    } else {
        c.plugin = "unknown";
        drain(s, &mut c.rx)
    }
}

fn main() {
    let a = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("sockmeter-example-server: {e}");
            std::process::exit(2);
        }
    };
    let listener = match TcpListener::bind("127.0.0.1:0") {
        Ok(l) => l,
        Err(e) => {
            eprintln!("sockmeter-example-server: cannot listen on 127.0.0.1: {e}");
            std::process::exit(1);
        }
    };
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
    println!("{port}");
    let _ = std::io::stdout().flush();
    let deadline = Instant::now() + a.timeout;
    let _ = listener.set_nonblocking(true);

    let mut conns: Vec<Conn> = Vec::new();
    let mut timed_out = false;
    while conns.len() < a.conns {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            timed_out = true;
            break;
        }
        let (mut s, peer) = match listener.accept() {
            Ok(x) => x,
            Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::Interrupted => {
                std::thread::sleep(Duration::from_millis(5));
                continue;
            }
            Err(e) => {
                eprintln!("sockmeter-example-server: accept: {e}");
                break;
            }
        };
        let _ = s.set_nonblocking(false);
        let _ = s.set_read_timeout(Some(left));
        let _ = s.set_write_timeout(Some(left));
        let mut c = Conn {
            plugin: "unknown",
            peer: peer.to_string(),
            rx: 0,
            tx: 0,
            request: String::new(),
            error: None,
        };
        if let Err(e) = serve(&mut s, &a, &mut c) {
            if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) {
                timed_out = true;
            }
            c.error = Some(e.to_string());
        }
        conns.push(c);
    }

    let mut plugins = Map::new();
    for c in &conns {
        let e = plugins
            .entry(c.plugin)
            .or_insert_with(|| json!({"rx": 0, "tx": 0, "connections": 0}));
        for (k, v) in [("rx", c.rx), ("tx", c.tx), ("connections", 1)] {
            let cur = e[k].as_u64().unwrap_or(0);
            e[k] = Value::from(cur + v);
        }
    }
    let per_conn: Vec<Value> = conns
        .iter()
        .map(|c| {
            json!({"plugin": c.plugin, "peer": c.peer, "rx": c.rx, "tx": c.tx,
                   "request": c.request, "error": c.error})
        })
        .collect();
    let verdict = json!({
        "plugins": plugins,
        "connections": conns.len(),
        "timed_out": timed_out,
        "per_conn": per_conn,
    });
    println!("{verdict}");
}
