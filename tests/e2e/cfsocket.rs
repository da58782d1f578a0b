//! CoreFoundation's CFSocket, against the real thing (tests/corefoundation: Apple's
//! CoreFoundation built for Linux): hosts and plugins that talk through CFSockets on a
//! CFRunLoop, with data and accept callbacks and CFSocketSendData, under `sockmeter run`, in
//! both shipping modes. Each proves, against an echo peer that is not metered:
//!
//! * the labelling: the socket's `origin` is `cfsocket` (a BSD socket's `bsd`), its role is
//!   `connected`, `listening` or `accepted`, and the summary says `(CFSocket)`;
//! * attribution by socket to the code that called `CFSocketCreate*` (the host, or the plugin
//!   it dlopen'ed), although CoreFoundation moves the bytes on a thread of its own;
//! * that CoreFoundation's own wake-up sockets (two connected loopback UDP sockets on Linux)
//!   are not listed, nor counted: the process has exactly the sockets the program made;
//! * that no byte is counted twice (CFSocketSendData sends with `send`, the helper thread
//!   reads with `recvfrom`: counted there, once): every count equals the peer's, exactly;
//! * the pass-through of results: what CoreFoundation returned to the program (printed by
//!   it) is the same with and without sockmeter, failures included.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use sockmeter::report::{ProcessReport, SocketReport};

use crate::harness::{self, both_modes, Mode, Peer, WithoutSockmeterEnv};

/// The vendored CoreFoundation (tests/corefoundation).
fn cf() -> PathBuf {
    harness::root().join("tests/corefoundation")
}

/// The compiler flags of a program (or, with `-shared -fPIC`, a plugin) using CoreFoundation.
fn cf_flags(extra: &[&str]) -> Vec<String> {
    let cf = cf();
    let mut f: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    f.extend([
        "-D__LITTLE_ENDIAN__=1".to_string(),
        format!("-I{}", cf.join("include").display()),
        format!("-L{}", cf.join("lib").display()),
        format!("-Wl,-rpath,{}", cf.join("lib").display()),
        "-lCoreFoundation".to_string(),
    ]);
    f
}

/// `tests/c/<name>.c` compiled against CoreFoundation into `<scratch>/cf/<out>` (once; the
/// file keeps its plain name, which the report shows as the module).
fn cf_program(name: &str, out: &str, extra: &[&str]) -> String {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let dir = harness::scratch().join("cf");
    let path = dir.join(out);
    if !path.exists() {
        std::fs::create_dir_all(&dir).expect("scratch");
        let tmp = dir.join(format!("{out}.tmp"));
        let o = Command::new("cc")
            .args(["-O2", "-Wall", "-Werror"])
            .args(cf_flags(extra).iter().filter(|f| !f.starts_with("-l")))
            .arg("-o")
            .arg(&tmp)
            .arg(harness::root().join("tests/c").join(format!("{name}.c")))
            .arg("-lCoreFoundation")
            .output()
            .expect("cc");
        assert!(
            o.status.success(),
            "compiling {name}.c against CoreFoundation failed:\n{}",
            String::from_utf8_lossy(&o.stderr)
        );
        harness::put_in_place(&tmp, &path);
    }
    path.to_string_lossy().into_owned()
}

fn client() -> String {
    cf_program("cf_client", "cf_client", &[])
}

fn server() -> String {
    cf_program("cf_server", "cf_server", &[])
}

fn plugin() -> String {
    cf_program("cf_plugin", "cf_plugin.so", &["-shared", "-fPIC"])
}

fn plugin_host() -> String {
    harness::compile_c("cf_plugin_host", &["-ldl"])
        .to_string_lossy()
        .into_owned()
}

/// An echo peer's verdict: (bytes it received, bytes it sent).
fn echoed(v: &serde_json::Value) -> (u64, u64) {
    (v["rx"].as_u64().expect("rx"), v["tx"].as_u64().expect("tx"))
}

/// Every socket of `p`, checked to be inet: CoreFoundation's wake-up sockets (loopback UDP)
/// and anything else the program did not make would show here.
fn sockets(p: &ProcessReport) -> Vec<&SocketReport> {
    p.sockets.iter().collect()
}

fn describe(p: &ProcessReport) -> String {
    p.sockets
        .iter()
        .map(|s| {
            format!(
                "{} {} {} {:?}->{:?} tx {} rx {} {:?}",
                s.proto, s.role, s.origin, s.local, s.peer, s.tx_bytes, s.rx_bytes, s.module
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Runs `cf_client` against a fresh echo peer, metered in `mode` (with `--unix`, so no socket
/// of any family could hide) or directly (`None`); returns the run or the direct output, and
/// the peer's verdict.
#[allow(clippy::type_complexity)]
fn client_exchange(
    mode: Option<Mode>,
    how: &str,
    msgs: u64,
    size: u64,
) -> (Result<harness::Run, String>, serde_json::Value, u16) {
    let peer = Peer::start("tcp_peer.py", &["--mode", "echo"]);
    let port = peer.port.to_string();
    let (m, s) = (msgs.to_string(), size.to_string());
    let cmd = [client(), port.clone(), m, s, how.to_string()];
    let cmd: Vec<&str> = cmd.iter().map(String::as_str).collect();
    let out = match mode {
        Some(mode) => Ok(harness::run_in(mode, &["--unix"], &cmd, &[])),
        None => {
            let o = harness::direct(&cmd, &[]);
            assert!(o.status.success(), "cf_client alone failed: {o:?}");
            Err(String::from_utf8_lossy(&o.stdout).into_owned())
        }
    };
    let p = peer.port;
    (out, peer.finish(), p)
}

both_modes! {
    /// A CoreFoundation host (CFSocketCreate + CFSocketConnectToAddress, a data callback on the
    /// run loop, CFSocketSendData): one socket, origin cfsocket, connected, charged to the host,
    /// counts equal to the peer's; no wake-up socket; the host sees what it sees alone.
    fn a_cfsocket_client_is_labelled_and_exact(mode) {
        for how in ["create", "signature"] {
            let (msgs, size) = (25, 1500);
            let (alone, _, _) = client_exchange(None, how, msgs, size);
            let (run, peer, port) = client_exchange(Some(mode), how, msgs, size);
            let (Ok(r), Err(alone)) = (run, alone) else { unreachable!("one metered run, one direct") };
            assert_eq!(r.code, 0, "{}", r.stderr);
            assert_eq!(r.stdout, alone, "CoreFoundation's results differ under sockmeter");
            let p = r.proc("cf_client");
            let all = sockets(p);
            assert_eq!(all.len(), 1, "only the CFSocket ({how}): no wake-up socket, nothing else:\n{}", describe(p));
            let s = all[0];
            let (peer_rx, peer_tx) = echoed(&peer);
            assert_eq!((peer_rx, peer_tx), (msgs * size, msgs * size), "the peer echoed everything");
            assert_eq!((s.tx_bytes, s.rx_bytes), (peer_rx, peer_tx), "{}", describe(p));
            assert_eq!((s.origin.as_str(), s.role.as_str(), s.proto.as_str()), ("cfsocket", "connected", "tcp"));
            assert_eq!(s.peer.as_deref(), Some(format!("127.0.0.1:{port}").as_str()));
            assert!(s.module.as_deref().is_some_and(|m| m.ends_with("/cf_client")), "{:?}", s.module);
            assert_eq!((p.totals.tx_bytes, p.totals.rx_bytes, p.totals.connections), (peer_rx, peer_tx, 1));
            assert!(r.stderr.contains("connected (CFSocket)"), "the summary names it:\n{}", r.stderr);
        }
    }

    /// A connection CoreFoundation cannot make (nothing listens): the host gets the same
    /// failure as without sockmeter, and nothing is counted.
    fn a_failed_cfsocket_connect_fails_the_same(mode) {
        // A port that was just free: nothing listens there.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port().to_string();
        let c = client();
        let cmd = [c.as_str(), &port, "1", "10", "signature"];
        let alone = harness::direct(&cmd, &[]);
        let r = harness::run_in(mode, &["--unix"], &cmd, &[]);
        assert_eq!(alone.status.code(), Some(1));
        assert_eq!(r.code, 1, "{}", r.stderr);
        assert_eq!(r.stdout, String::from_utf8_lossy(&alone.stdout), "same results");
        assert!(r.stdout.starts_with("connect -1 "), "{}", r.stdout);
        assert_eq!(harness::totals(&r), (0, 0));
        for p in &r.report.processes {
            assert!(p.sockets.iter().all(|s| s.family == "inet" && s.origin == "cfsocket"), "{}", describe(p));
        }
    }

    /// A CoreFoundation server: a listening CFSocket (CFSocketCreate + CFSocketSetAddress, or
    /// CFSocketCreateWithSocketSignature) whose accept callback wraps each connection with
    /// CFSocketCreateWithNative and answers with CFSocketSendData. The listener and both
    /// connections are CFSockets charged to the server; each connection's counts are its
    /// client's, mirrored.
    fn a_cfsocket_server_is_labelled_and_exact(mode) {
        for how in ["create", "signature"] {
            let portfile = harness::scratch_path("cf-port");
            let srv = server();
            let pf = portfile.to_string_lossy().into_owned();
            let how_s = how.to_string();
            let metered = std::thread::spawn(move || harness::run_in(mode, &["--unix"], &[&srv, &pf, "2", &how_s], &[]));
            let port = wait_for_port(&portfile);
            let clients: Vec<serde_json::Value> = ["1000,2500", "700"]
                .iter()
                .map(|sizes| {
                    let out = Command::new(harness::python())
                        .arg(harness::root().join("tests/peers/tcp_client.py"))
                        .args(["--port", &port.to_string(), "--sizes", sizes])
                        .without_sockmeter_env()
                        .output()
                        .expect("tcp_client.py");
                    assert!(out.status.success(), "client: {out:?}");
                    serde_json::from_slice(out.stdout.trim_ascii()).expect("client verdict")
                })
                .collect();
            let r = metered.join().expect("metered server");
            assert_eq!(r.code, 0, "{}", r.stderr);
            assert_eq!(r.stdout, "set 0 conns 2 echoed 4200 send_fail 0\n", "the server's own account");
            let p = r.proc("cf_server");
            assert_eq!(p.sockets.len(), 3, "a listener and two connections, nothing else ({how}):\n{}", describe(p));
            let listener: Vec<_> = p.sockets.iter().filter(|s| s.role == "listening").collect();
            assert_eq!(listener.len(), 1, "{}", describe(p));
            assert_eq!(listener[0].origin, "cfsocket");
            assert_eq!(listener[0].local.as_deref(), Some(format!("127.0.0.1:{port}").as_str()));
            for c in &clients {
                let local = c["local"].as_str().expect("client address");
                let s = p
                    .sockets
                    .iter()
                    .find(|s| s.peer.as_deref() == Some(local))
                    .unwrap_or_else(|| panic!("no socket for client {local}:\n{}", describe(p)));
                assert_eq!((s.role.as_str(), s.origin.as_str()), ("accepted", "cfsocket"));
                assert_eq!(
                    (s.rx_bytes, s.tx_bytes),
                    (c["tx"].as_u64().unwrap(), c["rx"].as_u64().unwrap()),
                    "mirrors the client"
                );
                assert!(s.module.as_deref().is_some_and(|m| m.ends_with("/cf_server")), "{:?}", s.module);
            }
            assert_eq!((p.totals.tx_bytes, p.totals.rx_bytes, p.totals.connections), (4200, 4200, 2));
            // The summary shows what moved bytes (the listener moved none: `--all` shows it).
            assert!(r.stderr.contains("accepted (CFSocket)"), "{}", r.stderr);
        }
    }

    /// A plugin the host dlopens makes its own CFSocket (the host does not link CoreFoundation;
    /// the plugin brings it in, with RTLD_LOCAL): the CFSocket is charged to the plugin, the
    /// host's own BSD connection to the host, each exactly as its peer saw it. (The plugin's
    /// CoreFoundation calls reach the hooks through the preloaded shim; the real functions are
    /// found although dlsym cannot see a library loaded with RTLD_LOCAL.)
    fn a_plugins_cfsocket_is_charged_to_the_plugin(mode) {
        let cf_peer = Peer::start("tcp_peer.py", &["--mode", "echo"]);
        let bsd_peer = Peer::start("tcp_peer.py", &["--mode", "echo"]);
        let (plugin, host) = (plugin(), plugin_host());
        let (cp, bp) = (cf_peer.port.to_string(), bsd_peer.port.to_string());
        let r = harness::run_in(mode, &["--unix"], &[&host, &plugin, &cp, &bp, "12", "1300"], &[]);
        assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
        let (cf_rx, cf_tx) = echoed(&cf_peer.finish());
        let (bsd_rx, bsd_tx) = echoed(&bsd_peer.finish());
        assert_eq!((cf_rx, bsd_rx), (12 * 1300, 12 * 1300));
        let p = r.proc("cf_plugin_hostldl");
        assert_eq!(p.sockets.len(), 2, "the plugin's CFSocket and the host's socket:\n{}", describe(p));
        let cfs = p.sockets.iter().find(|s| s.origin == "cfsocket").expect("the CFSocket");
        let bsd = p.sockets.iter().find(|s| s.origin == "bsd").expect("the host's socket");
        assert_eq!((cfs.tx_bytes, cfs.rx_bytes), (cf_rx, cf_tx));
        assert_eq!((bsd.tx_bytes, bsd.rx_bytes), (bsd_rx, bsd_tx));
        assert!(cfs.module.as_deref().is_some_and(|m| m.ends_with(&plugin)), "{:?} is not {plugin}", cfs.module);
        assert!(bsd.module.as_deref().is_some_and(|m| m.ends_with("/cf_plugin_hostldl")), "{:?}", bsd.module);
        let module = |name: &str| p.modules.iter().find(|m| m.module.ends_with(name)).unwrap_or_else(|| panic!("module {name}"));
        assert_eq!((module(&plugin).stats.tx_bytes, module(&plugin).stats.rx_bytes), (cf_rx, cf_tx));
        assert_eq!(module(&plugin).load.as_deref(), Some("dlopen"));
        assert_eq!((module("/cf_plugin_hostldl").stats.tx_bytes, module("/cf_plugin_hostldl").stats.rx_bytes), (bsd_rx, bsd_tx));
    }
}

/// Waits for the port a server wrote to `path`.
fn wait_for_port(path: &std::path::Path) -> u16 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(t) = std::fs::read_to_string(path) {
            if let Ok(p) = t.trim().parse() {
                return p;
            }
        }
        assert!(Instant::now() < deadline, "no port in {}", path.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The fixture's two longest headers are kept split by what each part declares
/// (`tests/corefoundation/build/split_headers.py`); put back together, they are Apple's files
/// byte for byte (the SHA-256 of the released headers), so the programs above are compiled
/// against exactly the declarations the libraries were built with.
#[test]
fn the_split_corefoundation_headers_are_apples_byte_for_byte() {
    let out = Command::new(harness::python())
        .arg(cf().join("build/split_headers.py"))
        .arg("check")
        .arg(cf().join("include"))
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
