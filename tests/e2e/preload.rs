//! The preload stage (`libsockmeter_preload.so`, `shim/stage1/`): what `sockmeter run` preloads
//! where it exists (Linux, x86_64). It must stand for the shim in every call the shim
//! interposes, load the shim only in a process that meets something to meter, and then be
//! as if the shim had been there from the start, with the configuration the process started
//! with. Every other e2e test that goes through `sockmeter run` runs through it; those that
//! preload `harness::shim()` directly keep the shim-only path tested.

use std::collections::BTreeSet;

use crate::harness::{self, both_modes, compile_c, direct, python, run_in, Counter};

fn preload() -> std::path::PathBuf {
    harness::built("libsockmeter_preload.so")
}

/// The functions a library defines, as `nm -D --defined-only` lists them.
fn exported(lib: &std::path::Path) -> BTreeSet<String> {
    let out = std::process::Command::new("nm")
        .args(["-D", "--defined-only"])
        .arg(lib)
        .output()
        .expect("nm (binutils) is needed");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (_addr, kind, name) = (f.next()?, f.next()?, f.next()?);
            (kind == "T" || kind == "W").then(|| name.to_string())
        })
        .filter(|n| n != "_init" && n != "_fini")
        .collect()
}

/// Every function the shim exports, the preload stage exports too (so nothing a host calls
/// skips the shim once it is loaded), and the stage exports nothing else but the function the
/// shim asks it for and `vfork`.
#[test]
fn the_preload_stage_exports_every_function_the_shim_exports() {
    let shim = exported(&harness::shim());
    let mut stage = exported(&preload());
    assert!(stage.remove("sockmeter_stage1_start"), "{stage:?}");
    // The stage's own: it loads the shim before libc's vfork (see `shim/stage1/lib.rs`).
    assert!(stage.remove("vfork"), "{stage:?}");
    assert!(shim.contains("recv") && shim.contains("dlopen") && shim.contains("sockmeter_version"));
    assert_eq!(
        shim.difference(&stage).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "exported by the shim only"
    );
    assert_eq!(
        stage.difference(&shim).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "exported by the stage only"
    );
}

/// The stage needs libc alone, and imports none of the functions it exports (it would call
/// itself).
#[test]
fn the_preload_stage_needs_only_libc_and_never_calls_its_own_exports() {
    let out = std::process::Command::new("readelf")
        .args(["-d", "--dyn-syms", "-W"])
        .arg(preload())
        .output()
        .expect("readelf (binutils) is needed");
    let text = String::from_utf8_lossy(&out.stdout);
    let needed: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("(NEEDED)"))
        .filter_map(|l| l.split('[').nth(1)?.split(']').next())
        .collect();
    assert_eq!(needed, ["libc.so.6"], "{text}");
    let stage = exported(&preload());
    let imports: Vec<&str> = text
        .lines()
        .filter(|l| l.contains(" UND ") && !l.contains(" WEAK "))
        .filter_map(|l| l.split_whitespace().last()?.split('@').next())
        .filter(|n| !n.is_empty() && stage.contains(*n))
        .collect();
    assert_eq!(imports, Vec::<&str>::new(), "{text}");
}

/// Runs `tests/c/late_handler.c` (a handler for `signal`, then one connection sending
/// `bytes`): the host reads back its own handler, the kernel holds the shim's trampoline, the
/// signal arrives, the peer got every byte and the report says so; `at_install` says whether
/// the shim was loaded right after the handler was installed.
fn late_handler(mode: harness::Mode, signal: &str, bytes: u64, at_install: &str) {
    let peer = Counter::start(1, 0);
    let prog = compile_c("late_handler", &[]).display().to_string();
    let r = run_in(
        mode,
        &[],
        &[&prog, &peer.port.to_string(), &bytes.to_string(), signal],
        &[],
    );
    let seen = peer.finish();
    assert_eq!(r.code, 0, "{}", r.stderr);
    let want = format!("{at_install} same=1 function=1 kernel_differs=1 caught=1 sent={bytes}");
    assert_eq!(r.stdout.trim(), want, "{}", r.stderr);
    assert_eq!(seen.rx, bytes);
    assert_eq!(r.proc(&prog).totals.tx_bytes, bytes, "{}", r.stderr);
}

/// The sockmeter libraries `grep` has mapped, as `/proc/self/maps` lists them (grep opens and
/// reads that file and writes to a pipe: calls the stage passes to libc).
fn mapped(r: &harness::Run) -> Vec<String> {
    let mut v: Vec<String> = r.stdout.lines().map(str::to_string).collect();
    v.sort();
    v.dedup();
    v
}

const MAPS: &str = "import re\n\
print(' '.join(sorted(set(re.findall(r'libsockmeter_\\w+\\.so', open('/proc/self/maps').read())))))\n";

both_modes! {
    /// A program that reads and writes files but meets no socket never loads the shim: only
    /// the stage is mapped, and the run reports no process.
    fn a_program_without_sockets_never_loads_the_shim(mode) {
        let r = run_in(mode, &[], &["grep", "-o", "libsockmeter_[a-z]*\\.so", "/proc/self/maps"], &[]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert_eq!(mapped(&r), ["libsockmeter_preload.so"], "{}", r.stderr);
        assert!(r.report.processes.is_empty(), "{}", r.stderr);
    }

    /// The first socket loads the shim, and the connection is counted to the byte against
    /// what the peer saw.
    fn the_first_socket_loads_the_shim_and_is_counted_exactly(mode) {
        let peer = Counter::start(1, 4321);
        let script = format!(
            "import socket\ns = socket.create_connection(('127.0.0.1', {}))\ns.sendall(b'q' * 12345)\n\
             s.shutdown(socket.SHUT_WR)\ngot = 0\nwhile True:\n    b = s.recv(65536)\n    if not b: break\n    got += len(b)\n\
             s.close()\nassert got == 4321, got\n{MAPS}",
            peer.port
        );
        let r = run_in(mode, &[], &[python(), "-c", &script], &[]);
        let seen = peer.finish();
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert_eq!(r.stdout.trim(), "libsockmeter_preload.so libsockmeter_shim.so", "{}", r.stderr);
        assert_eq!((seen.rx, seen.tx), (12345, 4321));
        let p = r.proc(python());
        assert_eq!((p.totals.tx_bytes, p.totals.rx_bytes), (seen.rx, seen.tx), "{}", r.stderr);
    }

    /// A handler for a fault (SIGSEGV: GNU tools install one to report a stack overflow) is
    /// installed before the first socket without loading the shim (the stage passes the call
    /// to libc); when the first socket loads it, the shim puts that handler behind its
    /// trampoline: the kernel then holds another address (`rt_sigaction` asked directly), the
    /// host reads back its own handler through libc's `sigaction`, and the signal still
    /// reaches it.
    fn a_fault_handler_installed_before_the_shim_loads_is_adopted(mode) {
        late_handler(mode, "segv", 5555, "shim_at_install=0");
    }

    /// A handler for a signal a process is sent loads the shim before it is installed (so that
    /// no handler can be the first to meet a socket, loading the shim inside a signal handler),
    /// and goes to the kernel behind the trampoline.
    fn a_handler_for_a_sent_signal_loads_the_shim_first(mode) {
        late_handler(mode, "usr1", 777, "shim_at_install=1");
    }

    /// Once the first socket has loaded the shim, the program's GOT leads to the shim itself:
    /// a hooked call no longer jumps through the stage (what `scripts/bench`'s paired rows
    /// price), and the datagram is counted.
    fn after_the_load_calls_go_to_the_shim_directly(mode) {
        let peer = std::net::UdpSocket::bind("127.0.0.1:0").expect("udp peer");
        let port = peer.local_addr().expect("addr").port().to_string();
        let prog = compile_c("got_after", &["-ldl"]).display().to_string();
        let r = run_in(mode, &[], &[&prog, &port], &[]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        let want = "before=libsockmeter_preload.so after=libsockmeter_shim.so sent=12";
        assert_eq!(r.stdout.trim(), want, "{}", r.stderr);
        let mut buf = [0u8; 64];
        assert_eq!(peer.recv(&mut buf).expect("the datagram"), 12);
        assert_eq!(r.proc(&prog).totals.tx_bytes, 12, "{}", r.stderr);
    }

    /// A host that empties its environment before its first socket is still metered, with the
    /// configuration it started with: the stage kept it.
    fn a_host_that_clears_its_environment_first_is_still_metered(mode) {
        let peer = Counter::start(1, 100);
        let script = format!(
            "import os, socket\nos.environ.clear()\nassert not any(k.startswith('SOCKMETER') for k in os.environ)\n\
             s = socket.create_connection(('127.0.0.1', {}))\ns.sendall(b'e' * 777)\ns.shutdown(socket.SHUT_WR)\n\
             while s.recv(65536): pass\ns.close()\nprint('done')\n",
            peer.port
        );
        let r = run_in(mode, &[], &[python(), "-c", &script], &[]);
        let seen = peer.finish();
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert_eq!(r.stdout.trim(), "done");
        assert_eq!((seen.rx, seen.tx), (777, 100));
        let p = r.proc(python());
        assert_eq!((p.totals.tx_bytes, p.totals.rx_bytes), (777, 100), "{}", r.stderr);
    }
}

/// A stage without its shim beside it says so once on stderr, and the host runs as it would
/// without either: same output, same exit status.
#[test]
fn a_stage_without_its_shim_says_so_and_harms_nothing() {
    let dir = harness::fresh_dir("preload-alone");
    let alone = dir.join("libsockmeter_preload.so");
    std::fs::copy(preload(), &alone).expect("copy the stage");
    let peer = Counter::start(1, 10);
    let script = format!(
        "import socket, sys\ns = socket.create_connection(('127.0.0.1', {}))\ns.sendall(b'z' * 99)\n\
         s.shutdown(socket.SHUT_WR)\nprint(len(s.recv(100)))\nsys.exit(3)\n",
        peer.port
    );
    let alone = alone.display().to_string();
    let out = direct(&[python(), "-c", &script], &[("LD_PRELOAD", alone.as_str())]);
    let seen = peer.finish();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "10\n");
    assert_eq!((seen.rx, seen.tx), (99, 10));
    let lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with("sockmeter:")).collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(
        lines[0].contains("cannot load the shim") && lines[0].contains("libsockmeter_shim.so"),
        "{stderr}"
    );
    assert!(lines[0].ends_with("this process is not metered"), "{stderr}");
}
