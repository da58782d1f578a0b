//! `sockmeter demo`: the plugin example, end to end, in a few seconds.
//!
//! It starts the loopback server (`sockmeter-example-server`, a separate process that is
//! not metered and counts what it really received from and sent to each plugin), runs the
//! Rust host (`sockmeter-rust-host`, which has the shim linked ahead of libc, loads the
//! `weather` (C, libcurl) and `stocks` (Rust) plugins with `dlopen` and writes its own
//! snapshot), and prints, per plugin, the bytes sockmeter charged to the plugin's module next
//! to the bytes the server saw. Both programs are built by `cargo build --workspace` into the
//! directory of this executable. Exit status: 0 when every number matches, 1 otherwise.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{bail, Context, Result};
use serde_json::Value;
use sockmeter::report::ProcessReport;

/// The plugins, by label (the label the host pushes is the plugin's name).
const PLUGINS: [&str; 2] = ["weather", "stocks"];

fn sibling(name: &str) -> Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot tell where the sockmeter executable is")?;
    let p = exe.parent().unwrap_or(Path::new(".")).join(name);
    if !p.is_file() {
        bail!(
            "{} is missing: the demo needs the workspace's examples, built by `cargo build --workspace`",
            p.display()
        );
    }
    Ok(p)
}

/// Kills the server if the demo stops early (it would otherwise wait for its timeout).
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn base(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

fn get(v: &Value, plugin: &str, key: &str) -> u64 {
    v["plugins"][plugin][key].as_u64().unwrap_or(0)
}

/// Runs the demo; returns the exit status.
pub fn demo() -> Result<i32> {
    let server_bin = sibling("sockmeter-example-server")?;
    let host_bin = sibling("sockmeter-rust-host")?;

    let mut server = Server(
        Command::new(&server_bin)
            .args(["--conns", "2", "--timeout-secs", "30"])
            .env_remove("LD_PRELOAD")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("cannot start {}", server_bin.display()))?,
    );
    let mut out = BufReader::new(server.0.stdout.take().context("server stdout")?);
    let mut line = String::new();
    out.read_line(&mut line).context("reading the server's port")?;
    let port: u16 = line
        .trim()
        .parse()
        .with_context(|| format!("the server printed {line:?} instead of its port"))?;

    let json = std::env::temp_dir().join(format!("sockmeter-demo-{}.json", std::process::id()));
    let host = Command::new(&host_bin)
        .arg("--port")
        .arg(port.to_string())
        .arg("--json")
        .arg(&json)
        .env_remove("LD_PRELOAD")
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {}", host_bin.display()))?;
    if !host.status.success() {
        eprint!("{}", String::from_utf8_lossy(&host.stdout));
        eprint!("{}", String::from_utf8_lossy(&host.stderr));
        let _ = std::fs::remove_file(&json);
        bail!("the example host failed ({})", host.status);
    }
    let text = std::fs::read_to_string(&json);
    let _ = std::fs::remove_file(&json);
    let me: ProcessReport = serde_json::from_str(&text.context("the host wrote no snapshot")?)
        .context("the host's snapshot does not parse")?;

    let mut rest = String::new();
    out.read_to_string(&mut rest).context("reading the server's verdict")?;
    let _ = server.0.wait();
    let verdict: Value = serde_json::from_str(rest.lines().last().unwrap_or(""))
        .with_context(|| format!("the server's verdict does not parse: {rest:?}"))?;

    println!("sockmeter demo: examples/rust-host loads two plugins with dlopen and meters them in-process");
    println!("(libsockmeter_shim.so linked ahead of libc, no LD_PRELOAD); a separate server on");
    println!("127.0.0.1:{port} counts what it really received from and sent to each plugin.\n");
    println!(
        "{:<8} {:<24} {:<18} {:>9} {:>9}   {:>10} {:>11}",
        "plugin", "charged to module", "via", "sent", "received", "server got", "server sent"
    );
    let mut all_exact = !verdict["timed_out"].as_bool().unwrap_or(true);
    let mut labels_ok = true;
    let (mut sum_tx, mut sum_rx) = (0, 0);
    for plugin in PLUGINS {
        let sock = me
            .sockets
            .iter()
            .find(|s| s.label.as_deref() == Some(plugin) && s.is_connection());
        let module = sock.and_then(|s| s.module.as_deref()).unwrap_or("");
        let via = sock.and_then(|s| s.via.as_deref()).unwrap_or("-");
        let m = me.modules.iter().find(|m| m.module == module);
        let l = me.labels.iter().find(|l| l.label == plugin);
        let (tx, rx) = m.map_or((0, 0), |m| (m.stats.tx_bytes, m.stats.rx_bytes));
        let (got, sent) = (get(&verdict, plugin, "rx"), get(&verdict, plugin, "tx"));
        let label_ok = l.is_some_and(|l| (l.stats.tx_bytes, l.stats.rx_bytes) == (got, sent));
        labels_ok &= label_ok;
        let exact = m.is_some() && (tx, rx) == (got, sent) && label_ok;
        all_exact &= exact;
        sum_tx += got;
        sum_rx += sent;
        println!(
            "{:<8} {:<24} {:<18} {:>9} {:>9}   {:>10} {:>11}   {}",
            plugin,
            if module.is_empty() { "(none)" } else { base(module) },
            base(via),
            tx,
            rx,
            got,
            sent,
            if exact { "exact" } else { "MISMATCH" }
        );
    }
    let total_ok = (me.totals.tx_bytes, me.totals.rx_bytes) == (sum_tx, sum_rx);
    all_exact &= total_ok;
    println!(
        "{:<8} {:<24} {:<18} {:>9} {:>9}   {:>10} {:>11}   {}",
        "total",
        "(the whole process)",
        "",
        me.totals.tx_bytes,
        me.totals.rx_bytes,
        sum_tx,
        sum_rx,
        if total_ok { "exact" } else { "MISMATCH" }
    );
    if labels_ok {
        println!("\nThe labels the host pushed (embed::label) carry the same bytes.");
    } else {
        println!("\nThe labels the host pushed (embed::label) do NOT carry the same bytes.");
    }
    if all_exact {
        println!("Every byte is accounted for, per plugin.");
        Ok(0)
    } else {
        println!("Some numbers differ from what the server saw: this is a bug, please report it.");
        Ok(1)
    }
}
