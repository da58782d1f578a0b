//! The plugin examples as tests: a C host and a Rust host that meter their own dlopen'ed
//! plugins (`weather`, C through libcurl; `stocks`, a Rust cdylib), the C host with its
//! weather plugin opened with RTLD_DEEPBIND, a plain host under `sockmeter run` (preloaded),
//! and `sockmeter demo`.
//!
//! The oracle is `sockmeter-example-server` (examples/server), a separate process that is
//! never metered: it tells the plugins apart by what they ask and prints what it really
//! received from and sent to each one. Every byte count charged to a plugin's module and to
//! its label must equal those numbers exactly, and the modules must add up to the process.
//!
//! Needs `cargo build --workspace` (the hosts, plugins and server) and libcurl's headers
//! (`libcurl4-openssl-dev`) for the C plugin.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use serde_json::Value;
use sockmeter::report::ProcessReport;

use crate::harness::{self, Peer, WithoutSockmeterEnv};

// ---------------------------------------------------------------------------------------
// Building and finding the pieces
// ---------------------------------------------------------------------------------------

/// Runs `cc -O2 -Wall -Wextra -Werror <args> -o out` once (warnings are errors: the examples
/// must compile cleanly).
fn cc(out: &Path, args: &[&str]) {
    let tmp = out.with_extension("tmp");
    let o = Command::new("cc")
        .args(["-O2", "-g", "-Wall", "-Wextra", "-Werror"])
        .arg("-o")
        .arg(&tmp)
        .args(args)
        .output()
        .expect("cc");
    assert!(
        o.status.success(),
        "cc {args:?} failed (libcurl headers: apt-get install libcurl4-openssl-dev):\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    harness::put_in_place(&tmp, out);
}

fn src(rel: &str) -> String {
    harness::root().join(rel).to_string_lossy().into_owned()
}

/// examples/plugins/weather.c, built as a plugin.
fn weather_so() -> &'static Path {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| {
        let out = harness::scratch().join("libweather_plugin.so");
        cc(
            &out,
            &["-shared", "-fPIC", &src("examples/plugins/weather.c"), "-lcurl"],
        );
        out.canonicalize().expect("canonical")
    })
}

/// The Rust plugin.
fn stocks_so() -> PathBuf {
    harness::built("libstocks_plugin.so").canonicalize().expect("canonical")
}

/// examples/c-host/host.c linked with the shim (`-lsockmeter_shim`, rpath, no LD_PRELOAD).
fn c_host_linked() -> &'static Path {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| {
        let dir = harness::shim()
            .parent()
            .expect("target dir")
            .to_string_lossy()
            .into_owned();
        let out = harness::scratch().join("c-host");
        cc(
            &out,
            &[
                &format!("-I{}", src("include")),
                &src("examples/c-host/host.c"),
                &format!("-L{dir}"),
                "-lsockmeter_shim",
                &format!("-Wl,-rpath,{dir}"),
                "-ldl",
            ],
        );
        out
    })
}

/// The same host without the shim: it finds the API with dlsym, for `sockmeter run`.
fn c_host_plain() -> &'static Path {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| {
        let out = harness::scratch().join("c-host-plain");
        cc(
            &out,
            &[
                "-DSOCKMETER_HOST_DLSYM",
                &format!("-I{}", src("include")),
                &src("examples/c-host/host.c"),
                "-ldl",
            ],
        );
        out
    })
}

/// The dynamic section's NEEDED entries and RUNPATH of an executable (`readelf -d`).
fn dynamic(exe: &Path) -> (Vec<String>, String) {
    let o = Command::new("readelf")
        .arg("-d")
        .arg(exe)
        .output()
        .expect("readelf (binutils)");
    assert!(o.status.success(), "readelf -d {} failed", exe.display());
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    let bracket = |l: &str| l.split('[').nth(1).and_then(|r| r.split(']').next()).map(String::from);
    let needed = text
        .lines()
        .filter(|l| l.contains("(NEEDED)"))
        .filter_map(bracket)
        .collect();
    let runpath = text
        .lines()
        .find(|l| l.contains("(RUNPATH)") || l.contains("(RPATH)"))
        .and_then(bracket)
        .unwrap_or_default();
    (needed, runpath)
}

// ---------------------------------------------------------------------------------------
// The oracle server
// ---------------------------------------------------------------------------------------

/// `sockmeter-example-server`, expecting one connection per plugin (an oracle [`Peer`]).
fn start_server() -> Peer {
    let mut c = Command::new(harness::built("sockmeter-example-server"));
    c.args(["--conns", "2", "--timeout-secs", "60"]);
    Peer::spawn(c)
}

/// The server's verdict (it ends by itself after two connections, or its timeout): both
/// connections served without an error. Its records always carry `error`, null when there was
/// none, so this is not `net::assert_peer_complete` (which wants the key absent).
fn verdict(server: Peer) -> Value {
    let v = server.finish();
    assert_eq!(v["timed_out"], Value::Bool(false), "server timed out: {v}");
    assert_eq!(v["connections"], 2, "server: {v}");
    for c in v["per_conn"].as_array().expect("per_conn") {
        assert!(c["error"].is_null(), "server connection failed: {c}");
    }
    v
}

/// The snapshot a host wrote with `--json`: its own process report, through the API.
fn read_snapshot(path: &Path) -> ProcessReport {
    harness::read_json(path)
}

/// Runs a host to completion (every wait in the hosts and plugins is bounded).
fn run_host(cmd: &mut Command) -> Output {
    let out = cmd
        .without_sockmeter_env()
        .stdin(Stdio::null())
        .output()
        .expect("run host");
    assert!(
        out.status.success(),
        "host failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

// ---------------------------------------------------------------------------------------
// The checks
// ---------------------------------------------------------------------------------------

/// Asserts that the process's accounting per plugin equals the server's, exactly.
/// `weather`/`stocks` are the plugins' canonical paths when known, else only their file
/// names are checked.
fn check_plugins(me: &ProcessReport, v: &Value, weather: Option<&Path>, stocks: &Path) {
    let ctx = serde_json::to_string_pretty(me).unwrap_or_default();
    let plugins: [(&str, &str, Option<PathBuf>); 2] = [
        ("weather", "libweather_plugin.so", weather.map(Path::to_path_buf)),
        ("stocks", "libstocks_plugin.so", Some(stocks.to_path_buf())),
    ];
    let (mut all_rx, mut all_tx) = (0, 0);
    for (name, file, path) in &plugins {
        let server_rx = v["plugins"][name]["rx"].as_u64().expect("server rx");
        let server_tx = v["plugins"][name]["tx"].as_u64().expect("server tx");
        assert_eq!(v["plugins"][name]["connections"], 1, "server: {v}");
        assert!(server_rx > 0 && server_tx > 0, "server saw nothing of {name}: {v}");
        all_rx += server_rx;
        all_tx += server_tx;

        // The module: the plugin's own .so, charged exactly what the server saw.
        let mods: Vec<_> = me
            .modules
            .iter()
            .filter(|m| m.module.ends_with(&format!("/{file}")))
            .collect();
        assert_eq!(mods.len(), 1, "one module for {name}:\n{ctx}");
        let m = mods[0];
        if let Some(p) = path {
            assert_eq!(Path::new(&m.module), p.as_path(), "{name}'s module path");
        }
        assert_eq!(
            (m.stats.tx_bytes, m.stats.rx_bytes),
            (server_rx, server_tx),
            "{name}: module (tx, rx) vs what the server received and sent:\n{ctx}"
        );
        assert_eq!(m.stats.connections, 1, "{name}'s connections:\n{ctx}");

        // The label the host pushed around the call: the same bytes.
        let l = me
            .labels
            .iter()
            .find(|l| l.label == *name)
            .unwrap_or_else(|| panic!("no label {name}:\n{ctx}"));
        assert_eq!(
            (l.stats.tx_bytes, l.stats.rx_bytes, l.stats.connections),
            (server_rx, server_tx, 1),
            "{name}: label vs server:\n{ctx}"
        );

        // The one TCP connection: charged to the plugin, labelled, via libcurl for weather.
        let conns: Vec<_> = me
            .sockets
            .iter()
            .filter(|s| s.is_connection() && s.family.starts_with("inet"))
            .filter(|s| s.module.as_deref() == Some(m.module.as_str()))
            .collect();
        assert_eq!(conns.len(), 1, "{name}: one connection:\n{ctx}");
        let s = conns[0];
        assert_eq!(s.label.as_deref(), Some(*name), "{name}'s socket label");
        assert_eq!((s.tx_bytes, s.rx_bytes), (server_rx, server_tx), "{name}'s socket");
        if *name == "weather" {
            let via = s.via.as_deref().unwrap_or("");
            assert!(
                via.contains("/libcurl"),
                "the weather socket is opened by libcurl, so `via` names it, got {via:?}:\n{ctx}"
            );
        } else {
            assert_eq!(s.via, None, "the stocks plugin calls libc itself:\n{ctx}");
        }
    }
    assert!(
        !me.modules.iter().any(|m| m.module.contains("libcurl")),
        "libcurl is never the module, the plugin that uses it is:\n{ctx}"
    );

    // The modules add up to the process, and the process did nothing but the plugins' traffic.
    let sum = me
        .modules
        .iter()
        .fold((0, 0), |(t, r), m| (t + m.stats.tx_bytes, r + m.stats.rx_bytes));
    assert_eq!(
        sum,
        (me.totals.tx_bytes, me.totals.rx_bytes),
        "modules vs totals:\n{ctx}"
    );
    assert_eq!(
        (me.totals.tx_bytes, me.totals.rx_bytes),
        (all_rx, all_tx),
        "totals vs server"
    );
    assert_eq!(me.totals.connections, 2, "connections:\n{ctx}");
    let lsum = me
        .labels
        .iter()
        .fold((0, 0), |(t, r), l| (t + l.stats.tx_bytes, r + l.stats.rx_bytes));
    assert_eq!(lsum, (all_rx, all_tx), "labels vs server:\n{ctx}");
}

/// The host's line `events seen by the subscriber: N (socket S, delta D, closed C, notice K)`.
fn events_line(stdout: &str) -> [u64; 5] {
    let line = stdout
        .lines()
        .find(|l| l.starts_with("events seen by the subscriber:"))
        .unwrap_or_else(|| panic!("no events line in:\n{stdout}"));
    let nums: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().expect("number"))
        .collect();
    nums.try_into().unwrap_or_else(|_| panic!("events line {line:?}"))
}

/// The subscriber saw both connections open and close (a connection that opened and closed
/// between two passes is one `socket` line carrying `closed_at`, counted under both).
fn check_events(stdout: &str) {
    let [all, socket, delta, closed, notice] = events_line(stdout);
    assert!(socket >= 2 && closed >= 2 && all >= socket + delta + notice, "{stdout}");
}

/// Runs the linked C host; returns its snapshot, stdout and the server's verdict.
fn c_host(extra: &[&str], env: &[(&str, &str)]) -> (ProcessReport, String, Value) {
    let server = start_server();
    let json = harness::scratch_path("c-host.json");
    let out = run_host(
        Command::new(c_host_linked())
            .args(extra)
            .arg("--port")
            .arg(server.port.to_string())
            .arg("--weather")
            .arg(weather_so())
            .arg("--stocks")
            .arg(stocks_so())
            .arg("--json")
            .arg(&json)
            .envs(env.iter().copied()),
    );
    let v = verdict(server);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    (read_snapshot(&json), stdout, v)
}

/// The RTLD_DEEPBIND notice, as the shim words it.
fn has_deepbind_notice(notices: &[String], plugin: &Path) -> bool {
    let name = plugin.to_string_lossy();
    notices
        .iter()
        .any(|n| n.contains(name.as_ref()) && n.contains("RTLD_DEEPBIND") && n.contains("metered"))
}

// ---------------------------------------------------------------------------------------
// The tests
// ---------------------------------------------------------------------------------------

#[test]
fn c_host_linked_with_the_shim_meters_each_plugin_exactly() {
    let (needed, _) = dynamic(c_host_linked());
    let shim = needed.iter().position(|n| n == "libsockmeter_shim.so");
    let libc = needed.iter().position(|n| n == "libc.so.6");
    assert!(shim.is_some() && shim < libc, "shim NEEDED before libc: {needed:?}");

    let (me, stdout, v) = c_host(&[], &[]);
    check_plugins(&me, &v, Some(weather_so()), &stocks_so());
    check_events(&stdout);
    assert!(
        stdout.contains("plugin weather") && stdout.contains("plugin stocks"),
        "{stdout}"
    );
    assert!(
        stdout.contains("per module") && stdout.contains("per label"),
        "{stdout}"
    );
}

#[test]
fn c_host_deepbind_plugin_is_still_metered_exactly() {
    // LD_DEBUG shows where the loader bound libcurl's `send`: with RTLD_DEEPBIND it is libc's,
    // past the shim (so this test really exercises the rebinding, not a no-op).
    let ld_debug = harness::scratch_path("ld-debug");
    let (me, stdout, v) = c_host(
        &["--deepbind"],
        &[
            ("LD_DEBUG", "bindings"),
            ("LD_DEBUG_OUTPUT", ld_debug.to_str().expect("utf-8")),
        ],
    );
    let prefix = ld_debug.file_name().expect("name").to_string_lossy().into_owned();
    let mut debug = String::new();
    for e in std::fs::read_dir(harness::scratch()).expect("scratch") {
        let e = e.expect("entry");
        if e.file_name().to_string_lossy().starts_with(&format!("{prefix}.")) {
            debug += &std::fs::read_to_string(e.path()).unwrap_or_default();
            let _ = std::fs::remove_file(e.path());
        }
    }
    let bound_to_libc = debug.lines().any(|l| {
        l.contains("binding file") && l.contains("libcurl.so") && l.contains("libc.so.6 [0]: normal symbol `send'")
    });
    assert!(
        bound_to_libc,
        "RTLD_DEEPBIND did not bind libcurl's send to libc (LD_DEBUG output of {} bytes)",
        debug.len()
    );

    check_plugins(&me, &v, Some(weather_so()), &stocks_so());
    check_events(&stdout);
}

#[test]
fn c_host_deepbind_notice_says_the_plugin_was_rebound() {
    let (me, stdout, v) = c_host(&["--deepbind"], &[]);
    check_plugins(&me, &v, Some(weather_so()), &stocks_so());
    assert!(
        has_deepbind_notice(&me.notices, weather_so()),
        "no RTLD_DEEPBIND notice for {} in the snapshot's notices {:?}\nhost output:\n{stdout}",
        weather_so().display(),
        me.notices
    );
    let [.., notices] = events_line(&stdout);
    assert!(notices >= 1, "the subscriber saw no notice:\n{stdout}");
}

#[test]
fn rust_host_links_the_shim_ahead_of_libc_and_meters_each_plugin_exactly() {
    let host = harness::built("sockmeter-rust-host");
    let (needed, runpath) = dynamic(&host);
    let shim = needed.iter().position(|n| n == "libsockmeter_shim.so");
    let libc = needed.iter().position(|n| n == "libc.so.6");
    assert!(shim.is_some() && shim < libc, "shim NEEDED before libc: {needed:?}");
    assert!(runpath.split(':').any(|p| p == "$ORIGIN"), "RUNPATH {runpath:?}");

    let server = start_server();
    let json = harness::scratch_path("rust-host.json");
    let out = run_host(
        Command::new(&host)
            .arg("--port")
            .arg(server.port.to_string())
            .arg("--json")
            .arg(&json),
    );
    let v = verdict(server);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let me = read_snapshot(&json);
    // The weather plugin is the one the host's build.rs compiled (its path is checked by
    // file name); the stocks plugin is the workspace's cdylib next to the host.
    check_plugins(&me, &v, None, &stocks_so());
    check_events(&stdout);
    assert!(stdout.contains("linked ahead of libc"), "{stdout}");
    for name in ["weather", "stocks"] {
        assert!(
            stdout.lines().any(|l| l.starts_with(name) && l.contains(".so")),
            "no table row for {name}:\n{stdout}"
        );
    }
}

/// `sockmeter run -- c-host-plain ...`: the shim is preloaded, the host finds the API with
/// dlsym; the reporter's own report must carry the same exact numbers.
fn preloaded(deepbind: bool) {
    let server = start_server();
    let json = harness::scratch_path("plain.json");
    let port = server.port.to_string();
    let host = c_host_plain().to_string_lossy().into_owned();
    let weather = weather_so().to_string_lossy().into_owned();
    let stocks = stocks_so().to_string_lossy().into_owned();
    let mut cmd = vec![host.as_str()];
    if deepbind {
        cmd.push("--deepbind");
    }
    cmd.extend([
        "--port",
        &port,
        "--weather",
        &weather,
        "--stocks",
        &stocks,
        "--json",
        json.to_str().expect("utf-8"),
    ]);
    let r = harness::run(&[], &cmd);
    assert_eq!(r.code, 0, "stdout:\n{}\nstderr:\n{}", r.stdout, r.stderr);
    let v = verdict(server);
    let p = r.proc("c-host-plain");
    check_plugins(p, &v, Some(weather_so()), &stocks_so());
    assert_eq!(r.report.processes.len(), 1, "only the host is metered");
    assert_eq!(harness::totals(&r), (p.totals.tx_bytes, p.totals.rx_bytes));
    // The host's own snapshot (through the API found with dlsym) agrees.
    check_plugins(&read_snapshot(&json), &v, Some(weather_so()), &stocks_so());
    check_events(&r.stdout);
    if deepbind {
        let mut all = p.notices.clone();
        all.extend(r.report.notices.iter().cloned());
        assert!(
            has_deepbind_notice(&all, weather_so()),
            "no RTLD_DEEPBIND notice in the report: process {:?}, run {:?}\nstderr:\n{}",
            p.notices,
            r.report.notices,
            r.stderr
        );
    }
}

#[test]
fn plain_c_host_under_sockmeter_run_meters_each_plugin_exactly() {
    preloaded(false);
}

#[test]
fn plain_c_host_under_sockmeter_run_meters_a_deepbind_plugin_exactly_and_says_so() {
    preloaded(true);
}

#[test]
fn demo_shows_exact_bytes_per_plugin() {
    let out = Command::new(harness::sockmeter())
        .arg("demo")
        .without_sockmeter_env()
        .stdin(Stdio::null())
        .output()
        .expect("sockmeter demo");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "sockmeter demo failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let row = |name: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no {name} row:\n{stdout}"))
            .to_string()
    };
    let weather = row("weather");
    assert!(
        weather.contains("libweather_plugin.so") && weather.contains("libcurl") && weather.ends_with("exact"),
        "{weather}"
    );
    let stocks = row("stocks");
    assert!(
        stocks.contains("libstocks_plugin.so") && stocks.ends_with("exact"),
        "{stocks}"
    );
    assert!(row("total").ends_with("exact"), "{stdout}");
    // The printed numbers are the module's and the server's, and they are the same.
    for l in [weather, stocks] {
        let nums: Vec<&str> = l.split_whitespace().filter(|w| w.parse::<u64>().is_ok()).collect();
        assert_eq!(nums.len(), 4, "{l}");
        assert_eq!((nums[0], nums[1]), (nums[2], nums[3]), "{l}");
        assert_ne!(nums[0], "0", "{l}");
    }
}
