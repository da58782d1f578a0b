//! Where traffic without a plugin frame goes: threads carry the module that created them, and a
//! language runtime's own objects are the interpreter.
//!
//! * A C plugin (tests/c/thread_plugin.c, compiled here) fetches over HTTP on threads whose
//!   start routine is libcurl's own function, one of them started from a second thread of the
//!   plugin that ends with `pthread_exit`: both sockets are the plugin's.
//! * CPython: an asyncio client (its socket opens under `_asyncio`, a compiled module of the
//!   standard library loaded with dlopen) is charged to the interpreter in every build found
//!   here (Debian's static python3, and the `python3` on PATH when it is another build, such
//!   as a version manager's shared-libpython one with `_socket` in its own `.so`), and so is a
//!   program embedding a shared libpython that lives outside the system directories; a
//!   third-party C extension that calls back into Python is a plugin above the interpreter.
//!
//! Every byte count is checked against the oracle peer's.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use sockmeter::report::ProcessReport;

use crate::harness::{self, both_modes, run, run_in, Peer, WithoutSockmeterEnv};
use crate::net::{assert_ok, assert_peer_complete, inet_connections, mirror};

/// `cc -O2 -Wall -Wextra -Werror -o OUT ARGS...` (libraries after the sources), once per output.
fn cc(out: &str, args: &[&str]) -> PathBuf {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let path = harness::scratch().join(out);
    if path.exists() {
        return path;
    }
    let tmp = harness::scratch_path(&format!("{out}.tmp"));
    let o = Command::new("cc")
        .args(["-O2", "-g", "-Wall", "-Wextra", "-Werror", "-o"])
        .arg(&tmp)
        .args(args)
        .output()
        .expect("cc");
    assert!(
        o.status.success(),
        "cc {args:?}:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    harness::put_in_place(&tmp, &path);
    path
}

fn c_src(name: &str) -> String {
    harness::root()
        .join("tests/c")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

/// The modules of `p` that carry traffic, by path.
fn busy_modules(p: &ProcessReport) -> Vec<&str> {
    p.modules
        .iter()
        .filter(|m| m.stats.tx_bytes + m.stats.rx_bytes > 0)
        .map(|m| m.module.as_str())
        .collect()
}

/// Every inet connection of `p` is charged to `module`, the module list holds exactly their
/// bytes under it, and together they equal what the oracle received and sent.
fn assert_all_charged_to(p: &ProcessReport, module: &Path, verdict: &serde_json::Value, conns: usize) {
    let ctx = serde_json::to_string_pretty(p).unwrap_or_default();
    let module = module.to_str().expect("utf-8");
    let c = inet_connections(p);
    assert_eq!(c.len(), conns, "connections:\n{ctx}");
    for s in &c {
        assert_eq!(s.module.as_deref(), Some(module), "charged to {module}:\n{ctx}");
    }
    let (tx, rx) = mirror(verdict);
    let sum = c.iter().fold((0, 0), |(t, r), s| (t + s.tx_bytes, r + s.rx_bytes));
    assert_eq!(sum, (tx, rx), "the connections vs the oracle:\n{ctx}");
    let m: Vec<_> = p.modules.iter().filter(|m| m.module == module).collect();
    assert_eq!(m.len(), 1, "{ctx}");
    assert_eq!(
        (m[0].stats.tx_bytes, m[0].stats.rx_bytes, m[0].stats.connections),
        (tx, rx, conns as u64),
        "the module's stats vs the oracle:\n{ctx}"
    );
    assert_eq!(busy_modules(p), vec![module], "no other module carries traffic:\n{ctx}");
}

fn thread_plugin() -> PathBuf {
    cc(
        "libthread_plugin.so",
        &["-shared", "-fPIC", &c_src("thread_plugin.c"), "-lcurl", "-lpthread"],
    )
    .canonicalize()
    .expect("canonical")
}

fn plugin_host() -> PathBuf {
    cc("plugin_host", &[&c_src("plugin_host.c"), "-ldl"])
}

both_modes! {
    /// A plugin's threads running only libcurl code (one of them started by a thread of the
    /// plugin's that ends with pthread_exit): both sockets are the plugin's, exactly.
    fn threads_carry_the_plugin_that_created_them(mode) {
        let (host, plugin) = (plugin_host(), thread_plugin());
        let peer = Peer::start("http_peer.py", &["--size", "120000", "--conns", "2"]);
        let port = peer.port.to_string();
        let r = run_in(
            mode,
            &[],
            &[host.to_str().expect("utf-8"), plugin.to_str().expect("utf-8"), &port],
            &[],
        );
        let verdict = peer.finish();
        assert_ok(&r);
        assert_peer_complete(&verdict, 2);
        assert_eq!(r.stdout.matches("HTTP 200, 120000 body bytes").count(), 2, "{}", r.stdout);
        let p = r.proc("plugin_host");
        assert_all_charged_to(p, &plugin, &verdict, 2);
        let m = p.modules.iter().find(|m| Path::new(&m.module) == plugin).expect("plugin module");
        assert_eq!(m.load.as_deref(), Some("dlopen"));
        for s in inet_connections(p) {
            assert!(
                s.via.as_deref().is_some_and(|v| v.contains("libcurl")),
                "the thread's socket was opened by libcurl: {s:#?}"
            );
        }
    }
}

/// A plugin named by a bare file name, which the loader finds only through the *host's*
/// RUNPATH: glibc picks the RUNPATH from `dlopen`'s caller, so the shim's `dlopen` (which notes
/// the name, then jumps) must leave the host as the caller. It is found, it is a plugin (the
/// bare name matched by file name), and its threads' bytes are its own, exactly.
#[test]
fn a_bare_name_found_through_the_hosts_runpath_is_still_found_and_is_a_plugin() {
    let dir = harness::scratch().join("runpath-plugins");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let plugin = dir.join("libthread_plugin_rp.so");
    if !plugin.exists() {
        std::fs::copy(thread_plugin(), &plugin).expect("copy plugin");
    }
    let host = cc(
        "plugin_host_runpath",
        &[
            &c_src("plugin_host.c"),
            "-ldl",
            &format!("-Wl,--enable-new-dtags,-rpath,{}", dir.display()),
        ],
    );
    let peer = Peer::start("http_peer.py", &["--size", "30000", "--conns", "2"]);
    let port = peer.port.to_string();
    let r = run(&[], &[host.to_str().expect("utf-8"), "libthread_plugin_rp.so", &port]);
    let verdict = peer.finish();
    assert_ok(&r);
    assert_peer_complete(&verdict, 2);
    let p = r.proc("plugin_host_runpath");
    let plugin = plugin.canonicalize().expect("canonical");
    assert_all_charged_to(p, &plugin, &verdict, 2);
    let m = p
        .modules
        .iter()
        .find(|m| Path::new(&m.module) == plugin)
        .expect("plugin module");
    assert_eq!(
        m.load.as_deref(),
        Some("dlopen"),
        "a bare name in the dlopen call: {m:#?}"
    );
}

/// The CPython interpreters to check: Debian's (a static build: `_socket` is inside the
/// executable) and the `python3` on PATH when it is another build.
fn interpreters() -> Vec<PathBuf> {
    let mut v = vec![Path::new("/usr/bin/python3")
        .canonicalize()
        .expect("Debian's python3 (apt-get install python3)")];
    let path_one = Path::new(harness::python()).canonicalize().expect("python3 on PATH");
    if !v.contains(&path_one) {
        v.push(path_one);
    }
    v
}

/// An asyncio HTTP client: its connection is made from a task that `_asyncio` (a compiled
/// module of the standard library, loaded with dlopen) runs.
const ASYNCIO_CLIENT: &str = r#"
import asyncio, sys
async def main(port):
    r, w = await asyncio.open_connection('127.0.0.1', port)
    w.write(b'GET /asyncio HTTP/1.0\r\n\r\n')
    await w.drain()
    n = 0
    while d := await r.read(65536):
        n += len(d)
    w.close()
    await w.wait_closed()
    print('received', n)
asyncio.run(main(int(sys.argv[1])))
"#;

#[test]
fn every_python_build_charges_its_own_traffic_to_the_interpreter() {
    for py in interpreters() {
        let peer = Peer::start("http_peer.py", &["--size", "90000"]);
        let port = peer.port.to_string();
        let r = run(&[], &[py.to_str().expect("utf-8"), "-c", ASYNCIO_CLIENT, &port]);
        let verdict = peer.finish();
        assert_ok(&r);
        assert_peer_complete(&verdict, 1);
        let p = r.proc(&py.file_name().expect("name").to_string_lossy());
        assert_all_charged_to(p, &py, &verdict, 1);
        let ctx = serde_json::to_string_pretty(p).unwrap_or_default();
        for s in &p.sockets {
            for name in [&s.module, &s.via].into_iter().flatten() {
                assert!(
                    !name.contains("lib-dynload") && !name.contains("libpython"),
                    "{} charged (or named as via) the interpreter's own object {name}:\n{ctx}",
                    py.display()
                );
            }
        }
    }
}

/// The system's shared libpython, copied outside the system directories (as a self-built or
/// version-managed interpreter keeps it); returns (include dir, library dir, library name).
fn private_libpython() -> &'static (String, PathBuf, String) {
    static P: OnceLock<(String, PathBuf, String)> = OnceLock::new();
    P.get_or_init(|| {
        let o = Command::new("/usr/bin/python3")
            .args([
                "-c",
                "import sysconfig as s; print(s.get_config_var('INCLUDEPY')); print(s.get_config_var('LIBDIR')); print(s.get_config_var('INSTSONAME'))",
            ])
            .without_sockmeter_env()
            .output()
            .expect("python3");
        let text = String::from_utf8_lossy(&o.stdout).into_owned();
        let v: Vec<&str> = text.lines().collect();
        assert_eq!(v.len(), 3, "sysconfig said {text:?}");
        let dir = harness::scratch().join("pylib");
        std::fs::create_dir_all(&dir).expect("mkdir");
        let lib = dir.join(v[2]);
        if !lib.exists() {
            let tmp = dir.join(format!("{}.tmp", v[2]));
            std::fs::copy(Path::new(v[1]).join(v[2]), &tmp).expect("copy libpython (apt-get install libpython3-dev)");
            harness::put_in_place(&tmp, &lib);
        }
        (v[0].to_string(), dir, v[2].to_string())
    })
}

#[test]
fn a_program_embedding_a_shared_libpython_is_charged_not_libpython() {
    let (include, dir, lib) = private_libpython();
    let host = cc(
        "pyhost",
        &[
            &format!("-I{include}"),
            &c_src("pyhost.c"),
            &format!("-L{}", dir.display()),
            &format!("-l:{lib}"),
            &format!("-Wl,-rpath,{}", dir.display()),
        ],
    );
    let peer = Peer::start("http_peer.py", &["--size", "70000"]);
    let code = ASYNCIO_CLIENT.replace("int(sys.argv[1])", &peer.port.to_string());
    let r = run(&[], &[host.to_str().expect("utf-8"), &code]);
    let verdict = peer.finish();
    assert_ok(&r);
    assert_peer_complete(&verdict, 1);
    let p = r.proc("pyhost");
    let loaded_from = dir.join(lib).canonicalize().expect("libpython copy");
    assert_all_charged_to(p, &host.canonicalize().expect("host"), &verdict, 1);
    assert!(
        !p.modules.iter().any(|m| Path::new(&m.module) == loaded_from),
        "the private libpython is the interpreter, never a module: {:#?}",
        p.modules
    );
}

#[test]
fn a_c_extension_calling_back_into_python_is_a_plugin_above_the_interpreter() {
    let (include, _, _) = private_libpython();
    let dir = harness::scratch().join("pyext");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let ext = cc(
        "pyext/meterext.so",
        &["-shared", "-fPIC", &format!("-I{include}"), &c_src("pyext.c")],
    )
    .canonicalize()
    .expect("canonical");
    let peer = Peer::start("http_peer.py", &["--size", "50000"]);
    let code = format!(
        "import sys, socket\nsys.path.insert(0, {dir:?})\nimport meterext\n\
         def fetch():\n    s = socket.create_connection(('127.0.0.1', {port}))\n    \
         s.sendall(b'GET /ext HTTP/1.0\\r\\n\\r\\n')\n    n = 0\n    \
         while d := s.recv(65536):\n        n += len(d)\n    s.close()\n    return n\n\
         print('received', meterext.call(fetch))\n",
        dir = dir.to_str().expect("utf-8"),
        port = peer.port
    );
    let r = run(&[], &["/usr/bin/python3", "-c", &code]);
    let verdict = peer.finish();
    assert_ok(&r);
    assert_peer_complete(&verdict, 1);
    let p = r.proc("python3");
    assert_all_charged_to(p, &ext, &verdict, 1);
    let m = p.modules.iter().find(|m| Path::new(&m.module) == ext).expect("module");
    assert_eq!(m.load.as_deref(), Some("dlopen"), "Python imported it with dlopen");
}
