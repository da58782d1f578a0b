//! Plugin hosts no one here wrote, from Debian's packages, each loading its plugin with
//! `dlopen` from a system directory: GStreamer (`gst-launch-1.0` fetching over HTTP with
//! `souphttpsrc`, from /usr/lib/<triplet>/gstreamer-1.0/libgstsoup.so) and Apache httpd
//! (proxying through `mod_proxy`/`mod_proxy_http` from /usr/lib/apache2/modules). Each is
//! checked two ways: the socket is charged to the plugin by default (and the report says it
//! came in by dlopen), and its bytes equal what the other end counted (an unmetered oracle).
//!
//! Needs gstreamer1.0-tools, gstreamer1.0-plugins-good and apache2-bin (`.ci/run` installs them).
//! Every server is started and stopped by the test itself, on loopback, on ports chosen at run
//! time.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sockmeter::report::{ModuleReport, ProcessReport, SocketReport};

use crate::harness::{self, run_with, Peer, WithoutSockmeterEnv};
use crate::net::{assert_ok, assert_peer_complete, mirror};

/// The module a process charged `sock` to, from its module list (exactly one).
fn module_of<'a>(p: &'a ProcessReport, sock: &SocketReport) -> &'a ModuleReport {
    let name = sock.module.as_deref().unwrap_or_else(|| panic!("no module: {sock:#?}"));
    let m: Vec<_> = p.modules.iter().filter(|m| m.module == name).collect();
    assert_eq!(m.len(), 1, "one module named {name}: {:#?}", p.modules);
    m[0]
}

/// The plugin `sock` is charged to: `expect` (a path under a system directory), loaded by
/// dlopen after the process started, and charged exactly `(tx, rx)` over one connection.
fn assert_charged_to_plugin(p: &ProcessReport, sock: &SocketReport, expect: &Path, tx: u64, rx: u64) {
    let ctx = serde_json::to_string_pretty(p).unwrap_or_default();
    let expect = expect.canonicalize().expect("plugin path");
    assert!(
        expect.starts_with("/usr/lib"),
        "the plugin lives in a system directory: {}",
        expect.display()
    );
    assert_eq!(
        sock.module.as_deref(),
        Some(expect.to_str().expect("utf-8")),
        "the socket is charged to the plugin by default:\n{ctx}"
    );
    assert_eq!(
        (sock.tx_bytes, sock.rx_bytes),
        (tx, rx),
        "the socket vs the other end:\n{ctx}"
    );
    let m = module_of(p, sock);
    assert_eq!(
        m.load.as_deref(),
        Some("dlopen"),
        "the plugin came in by dlopen:\n{ctx}"
    );
    let at = m.loaded_at.as_deref().unwrap_or_else(|| panic!("no loaded_at:\n{ctx}"));
    assert!(
        at >= p.started_at.as_str() && p.ended_at.as_deref().is_none_or(|e| at <= e),
        "loaded while the process ran ({at}, process {} .. {:?})",
        p.started_at,
        p.ended_at
    );
    assert_eq!(
        (m.stats.tx_bytes, m.stats.rx_bytes, m.stats.connections),
        (tx, rx, 1),
        "the plugin's module = its one connection, exactly:\n{ctx}"
    );
    let sum = p
        .modules
        .iter()
        .fold((0, 0), |(t, r), m| (t + m.stats.tx_bytes, r + m.stats.rx_bytes));
    assert_eq!(
        sum,
        (p.totals.tx_bytes, p.totals.rx_bytes),
        "modules sum to the process:\n{ctx}"
    );
}

/// The one inet connection of `p` to the peer on `port`.
fn connection_to(p: &ProcessReport, port: u16) -> &SocketReport {
    let peer = format!("127.0.0.1:{port}");
    let c: Vec<_> = p
        .sockets
        .iter()
        .filter(|s| s.role == "connected" && s.peer.as_deref() == Some(peer.as_str()))
        .collect();
    assert_eq!(c.len(), 1, "one connection to {peer}: {:#?}", p.sockets);
    c[0]
}

/// The file `gst-inspect-1.0` says souphttpsrc lives in (its registry in `registry`, a scratch
/// file, so nothing is written to the user's cache).
fn gst_soup_plugin(registry: &Path) -> PathBuf {
    let o = Command::new("gst-inspect-1.0")
        .arg("souphttpsrc")
        .env("GST_REGISTRY", registry)
        .without_sockmeter_env()
        .output()
        .expect("gst-inspect-1.0 (apt-get install gstreamer1.0-tools gstreamer1.0-plugins-good)");
    assert!(
        o.status.success(),
        "gst-inspect-1.0 souphttpsrc failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("Filename"))
        .unwrap_or_else(|| panic!("no Filename in gst-inspect-1.0 souphttpsrc:\n{text}"));
    PathBuf::from(line.split_whitespace().last().expect("path"))
}

#[test]
fn gstreamer_souphttpsrc_is_charged_to_the_soup_plugin() {
    let registry = harness::scratch_path("gst-registry.bin");
    let plugin = gst_soup_plugin(&registry);
    let peer = Peer::start("http_peer.py", &["--size", "300000"]);
    let port = peer.port;
    let location = format!("location=http://127.0.0.1:{}/media.bin", peer.port);
    let r = run_with(
        &[],
        &["gst-launch-1.0", "-q", "souphttpsrc", &location, "!", "fakesink"],
        &[("GST_REGISTRY", registry.to_str().expect("utf-8"))],
    );
    let verdict = peer.finish();
    assert_ok(&r);
    assert_peer_complete(&verdict, 1);
    let p = r.proc("gst-launch-1.0");
    let (tx, rx) = mirror(&verdict);
    let sock = connection_to(p, port);
    assert_charged_to_plugin(p, sock, &plugin, tx, rx);
    assert_eq!(
        (p.totals.tx_bytes, p.totals.rx_bytes),
        (tx, rx),
        "the process did nothing else"
    );
    assert!(
        !p.modules.iter().any(|m| m.module.contains("libsoup")),
        "libsoup, which the plugin loads for itself, is not a module of its own: {:#?}",
        p.modules
    );
}

/// `--attribute` changes the rule in both directions on the same host: `GLOB` adds (libsoup,
/// which the plugin loads for itself, becomes the module), `!GLOB` removes (with GStreamer's
/// plugins excluded the traffic is the host's, thread origins included). Exact either way.
#[test]
fn gstreamer_under_attribute_globs_that_add_and_that_remove() {
    let registry = harness::scratch_path("gst-registry.bin");
    for (glob, want) in [("libsoup*", "libsoup"), ("!*/gstreamer-1.0/*", "/gst-launch-1.0")] {
        let peer = Peer::start("http_peer.py", &["--size", "40000"]);
        let port = peer.port;
        let location = format!("location=http://127.0.0.1:{port}/glob.bin");
        let r = run_with(
            &["--attribute", glob],
            &["gst-launch-1.0", "-q", "souphttpsrc", &location, "!", "fakesink"],
            &[("GST_REGISTRY", registry.to_str().expect("utf-8"))],
        );
        let verdict = peer.finish();
        assert_ok(&r);
        assert_peer_complete(&verdict, 1);
        let p = r.proc("gst-launch-1.0");
        let sock = connection_to(p, port);
        let module = sock.module.as_deref().unwrap_or_default();
        assert!(
            module.contains(want),
            "--attribute {glob}: charged to {module}, want {want}"
        );
        assert_eq!(
            (sock.tx_bytes, sock.rx_bytes),
            mirror(&verdict),
            "--attribute {glob}: exact"
        );
        let m = module_of(p, sock);
        assert_eq!((m.stats.tx_bytes, m.stats.rx_bytes), mirror(&verdict));
    }
}

/// A loopback port free right now (the kernel's pick, released for the server to take).
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// `sockmeter run -- apache2 -X ...` in the background; if the test fails before stopping it,
/// dropping this kills the apache2 process (named by its pid file) and the reporter.
struct Apache {
    run: Option<std::process::Child>,
    pid_file: PathBuf,
}

impl Apache {
    fn pid(&self) -> Option<i32> {
        std::fs::read_to_string(&self.pid_file).ok()?.trim().parse().ok()
    }

    /// SIGTERM to apache2 (it ends cleanly); the reporter's stderr once it is done.
    fn stop(mut self) -> String {
        let pid = self.pid().expect("apache2's pid file");
        // SAFETY: signalling the apache2 process this test started (its pid file names it).
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let out = self
            .run
            .take()
            .expect("running")
            .wait_with_output()
            .expect("sockmeter run");
        String::from_utf8_lossy(&out.stderr).into_owned()
    }
}

impl Drop for Apache {
    fn drop(&mut self) {
        if let Some(mut run) = self.run.take() {
            if let Some(pid) = self.pid() {
                // SAFETY: as in `stop`: the apache2 this test started.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            let _ = run.kill();
            let _ = run.wait();
        }
    }
}

/// Waits (bounded) for `path` to exist.
fn wait_for(path: &Path, what: &str, log: &Path) {
    let start = Instant::now();
    while !path.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{what} did not start; its log:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn apache_mod_proxy_is_charged_for_the_backend_connection() {
    let backend = Peer::start("http_peer.py", &["--size", "250000"]);
    let backend_port = backend.port;
    let dir = harness::fresh_dir("apache");
    let port = free_port();
    let (pid_file, log) = (dir.join("httpd.pid"), dir.join("error.log"));
    let modules = Path::new("/usr/lib/apache2/modules");
    let conf = format!(
        "ServerRoot {d}\nServerName 127.0.0.1\nListen 127.0.0.1:{port}\nPidFile {pid}\nErrorLog {log}\n\
         LogLevel warn\nMutex file:{d} default\nDefaultRuntimeDir {d}\n\
         LoadModule mpm_prefork_module {m}/mod_mpm_prefork.so\n\
         LoadModule authz_core_module {m}/mod_authz_core.so\n\
         LoadModule proxy_module {m}/mod_proxy.so\n\
         LoadModule proxy_http_module {m}/mod_proxy_http.so\n\
         ProxyPass \"/\" \"http://127.0.0.1:{b}/\"\n",
        d = dir.display(),
        pid = pid_file.display(),
        log = log.display(),
        m = modules.display(),
        b = backend_port,
    );
    let conf_path = dir.join("httpd.conf");
    std::fs::write(&conf_path, conf).expect("write httpd.conf");
    let json = dir.join("report.json");

    // `sockmeter run -- apache2 -X` (one process, in the foreground), stopped by SIGTERM once
    // the one proxied request is done.
    let run = Command::new(harness::sockmeter())
        .arg("run")
        .arg("--json")
        .arg(&json)
        .args(["--", "/usr/sbin/apache2", "-X", "-f"])
        .arg(&conf_path)
        .without_sockmeter_env()
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sockmeter run apache2 (apt-get install apache2-bin)");
    let server = Apache {
        run: Some(run),
        pid_file: pid_file.clone(),
    };
    wait_for(&pid_file, "apache2", &log);

    // The client: curl, not metered, says what it sent and received.
    let client = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{size_request} %{size_header} %{size_download}",
        ])
        .arg(format!("http://127.0.0.1:{port}/via-proxy.bin"))
        .without_sockmeter_env()
        .output()
        .expect("curl");
    let stderr = server.stop();
    let verdict = backend.finish();
    let said = String::from_utf8_lossy(&client.stdout).into_owned();
    let nums: Vec<u64> = said.split_whitespace().filter_map(|w| w.parse().ok()).collect();
    assert_eq!(nums.len(), 4, "curl -w said {said:?}");
    assert_eq!(nums[0], 200, "the proxied request succeeded: {said}\n{stderr}");
    assert_peer_complete(&verdict, 1);

    let report = harness::read_report(&json);
    let procs: Vec<_> = report
        .processes
        .iter()
        .filter(|p| p.exe.ends_with("/apache2"))
        .collect();
    assert_eq!(procs.len(), 1, "one apache2 process (-X):\n{stderr}");
    let p = procs[0];
    let (tx, rx) = mirror(&verdict);
    let sock = connection_to(p, backend_port);
    assert_charged_to_plugin(p, sock, &modules.join("mod_proxy.so"), tx, rx);

    // The client's side: the accepted connection carries exactly what curl sent and received.
    let accepted: Vec<_> = p.sockets.iter().filter(|s| s.role == "accepted").collect();
    assert_eq!(accepted.len(), 1, "{:#?}", p.sockets);
    assert_eq!(
        (accepted[0].rx_bytes, accepted[0].tx_bytes),
        (nums[1], nums[2] + nums[3]),
        "the accepted connection vs curl's own counts (request; header + body)"
    );
}
