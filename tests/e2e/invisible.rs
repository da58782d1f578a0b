//! The host's own view of itself does not change under the shim: the same children (none it did
//! not make, in any image), the same SIGCHLDs, the same answers from `wait()`, as the kernel and
//! `ps` report them from inside the host. Each test compares a metered run with an unmetered one
//! of the same program, and runs in both shipping modes.

use crate::harness::{self, both_modes, compile_c, direct, python, run_in, Mode, Peer, Run, Sink};

/// The lines `tests/c/hostview.c` prints for stages 1 and 2 when nothing is preloaded.
fn unmetered_view(prog: &str, bytes: &str) -> String {
    let peer = Peer::start("tcp_peer.py", &["--conns", "2", "--mode", "reply", "--reply", "0"]);
    let out = direct(&[prog, &peer.port.to_string(), bytes], &[]);
    assert!(out.status.success(), "unmetered hostview failed: {out:?}");
    peer.finish();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Whether this test process has `sig` ignored (inherited from whoever started the suite).
fn inherited_ignored(sig: libc::c_int) -> bool {
    // SAFETY: a query (no new action) into a zeroed sigaction, which is plain data.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        libc::sigaction(sig, std::ptr::null(), &mut old) == 0 && old.sa_sigaction == libc::SIG_IGN
    }
}

both_modes! {
    /// A host that touched a socket still has no child it did not make, before and after an
    /// exec of itself: the kernel's children list and `ps --ppid` are empty, no SIGCHLD
    /// arrives, `waitpid(-1, WNOHANG)` and `wait()` say ECHILD at once (in shipper mode the
    /// shipper used to be the host's child: `wait()` blocked forever, and the exec'd image got
    /// the old image's shipper from `waitpid`). It reads back the signal dispositions it left
    /// (the defaults, though in thread mode a last-pass handler sits behind them) and its own
    /// SIGCHLD handler. The bytes are still exact.
    fn the_host_has_no_child_it_did_not_make(mode) {
        let prog = compile_c("hostview", &[]).display().to_string();
        let bytes = "7000";
        let expected = unmetered_view(&prog, bytes);
        // SIGHUP as this test found it: ignored when the suite runs under `nohup` (children
        // inherit that), the default otherwise.
        let hup = if inherited_ignored(libc::SIGHUP) { 'I' } else { 'D' };
        assert_eq!(
            expected,
            format!(
                "stage=1 children=0 ps=0 sigchld=0 waitpid=ECHILD wait=ECHILD signals=DDID{hup}C\n\
                 stage=2 children=0 ps=0 sigchld=0 waitpid=ECHILD wait=ECHILD signals=DDID{hup}C\n"
            ),
            "the unmetered program's own view"
        );
        let peer = Peer::start("tcp_peer.py", &["--conns", "2", "--mode", "reply", "--reply", "0"]);
        let r = run_in(mode, &[], &[&prog, &peer.port.to_string(), bytes], &[]);
        let v = peer.finish();
        assert_eq!(r.stdout, expected, "the metered host's view of itself:\n{}", r.stderr);
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert_eq!(v["rx"], 14_000, "the peer got both stages' bytes");
        let images = r.procs("hostview");
        assert_eq!(images.len(), 2, "two images of one process:\n{}", r.stderr);
        for p in images {
            assert_eq!(p.totals.tx_bytes, 7000, "each image's bytes, exact:\n{}", r.stderr);
        }
        assert_eq!(harness::totals(&r), (14_000, 0), "both images, exact");
    }

    /// A host that forks with a socket open (a forking server: its child holds the connection
    /// from the fork on, and under the shim hands its region over inside `fork`) sees what it
    /// sees unmetered: in the child, errno as `fork` left it, the same next fd and the same fds
    /// below 200; in the parent, its child's own status from `waitpid`, one SIGCHLD per child,
    /// no other child, the same fds. Twice (the first fork makes the nursery). The bytes the
    /// first child sends on the inherited connection are its own, exact; the second child,
    /// which sends nothing, is no process of the report.
    fn a_forking_host_sees_its_children_as_unmetered(mode) {
        let prog = compile_c("forkview", &[]).display().to_string();
        let peer = Peer::start("tcp_peer.py", &["--conns", "3", "--mode", "reply", "--reply", "0"]);
        let out = direct(&[&prog, &peer.port.to_string(), "5000"], &[]);
        assert!(out.status.success(), "unmetered forkview failed: {out:?}");
        assert_eq!(peer.finish()["rx"], 10_000, "the parent's and the first child's bytes");
        let expected = String::from_utf8_lossy(&out.stdout).into_owned();
        for round in ["round=1", "round=2"] {
            assert!(
                expected.lines().any(|l| l.starts_with(round)
                    && l.contains("errno=EDOM")
                    && l.contains("status=7 sigchld=1 waitpid=ECHILD")),
                "the unmetered program's own view:\n{expected}"
            );
        }
        let peer = Peer::start("tcp_peer.py", &["--conns", "3", "--mode", "reply", "--reply", "0"]);
        let r = run_in(mode, &[], &[&prog, &peer.port.to_string(), "5000"], &[]);
        assert_eq!(peer.finish()["rx"], 10_000);
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert_eq!(r.stdout, expected, "the metered host's view:\n{}", r.stderr);
        r.assert_each_forked_child(1, (5000, 0, 1));
        assert_eq!(harness::totals(&r), (10_000, 0), "exact");
    }

    /// The issue's own reproduction: `import socket, os; socket.socket(); os.wait()` raises
    /// ChildProcessError (it hung forever in shipper mode).
    fn python_os_wait_raises_child_process_error(mode) {
        let script = "import os, signal, socket\n\
                      signal.alarm(10)\n\
                      socket.socket()\n\
                      try:\n    os.wait()\n    print('a child')\n\
                      except ChildProcessError:\n    print('ChildProcessError')\n";
        let r = run_in(mode, &[], &[python(), "-c", script], &[]);
        assert_eq!(r.stdout.trim(), "ChildProcessError", "{}", r.stderr);
        assert_eq!(r.code, 0, "{}", r.stderr);
    }
}

/// Runs `tests/c/sighandler.c` (see there) and checks every handler's socket against the peer.
fn sockets_made_in_signal_handlers(mode: harness::Mode, restart: &str) {
    let rounds = 3u64;
    let conns = 2 + 2 * rounds;
    let peer = Peer::start(
        "tcp_peer.py",
        &["--conns", &conns.to_string(), "--mode", "reply", "--reply", "0"],
    );
    let port = peer.port;
    let prog = compile_c("sighandler", &[]).display().to_string();
    let r = run_in(
        mode,
        &[],
        &[&prog, &port.to_string(), restart, &rounds.to_string()],
        &[],
    );
    let v = peer.finish();
    assert_eq!(r.code, 0, "{}", r.stderr);
    let own: serde_json::Value = serde_json::from_str(r.stdout.trim()).expect("the program's line");
    assert_eq!(
        (own["usr1"].as_u64(), own["usr2"].as_u64()),
        (Some(rounds), Some(rounds)),
        "{own}"
    );
    let sent = 50 + rounds * (1000 + 300) + 77;
    assert_eq!(v["rx"], sent, "the peer's count");
    let p = r
        .procs("sighandler")
        .into_iter()
        .find(|p| p.totals.tx_bytes > 0)
        .unwrap_or_else(|| panic!("no metered sighandler with traffic:\n{}", r.stderr));
    assert_eq!(p.totals.tx_bytes, sent, "every handler's bytes, exact:\n{}", r.stderr);
    // Each connection to the peer is its own socket with its own exact count, as the peer saw
    // each connection: a handler's socket is neither lost nor merged into the socket that had
    // its fd number before.
    let suffix = format!(":{port}");
    let mut ours: Vec<u64> = p
        .sockets
        .iter()
        .filter(|s| s.peer.as_deref().is_some_and(|a| a.ends_with(&suffix)))
        .map(|s| s.tx_bytes)
        .collect();
    ours.sort_unstable();
    let mut theirs: Vec<u64> = v["per_conn"]
        .as_array()
        .expect("per_conn")
        .iter()
        .map(|c| c["rx"].as_u64().expect("rx"))
        .collect();
    theirs.sort_unstable();
    assert_eq!(
        ours, theirs,
        "one socket per connection, as the peer saw them:\n{}",
        r.stderr
    );
}

both_modes! {
    /// Handlers (SA_RESTART) that open, connect, send and close sockets while the host is
    /// blocked in accept(), one handler nested in the other: every socket counts, exactly, on
    /// its own record (they used to pass through untracked while the host's accept held the
    /// shim's guard).
    fn sockets_made_in_signal_handlers_with_sa_restart(mode) {
        sockets_made_in_signal_handlers(mode, "1");
    }

    /// The same without SA_RESTART: the host's accept() sees EINTR, as it would unmetered.
    fn sockets_made_in_signal_handlers_without_sa_restart(mode) {
        sockets_made_in_signal_handlers(mode, "0");
    }
}

both_modes! {
    /// A timer's handler sends on a UDP socket of its own while the host opens and closes
    /// sockets in a loop, so most signals interrupt the shim's own code (a hook's handler): the
    /// trampoline makes the handler's calls host calls, counted exactly (the unmetered peer's
    /// count), not passed through as the shim's own.
    fn handlers_that_interrupt_the_shim_are_counted(mode) {
        let peer = std::net::UdpSocket::bind("127.0.0.1:0").expect("udp peer");
        let port = peer.local_addr().expect("addr").port();
        peer.set_read_timeout(Some(std::time::Duration::from_millis(200))).expect("timeout");
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = stop.clone();
        let counter = std::thread::spawn(move || {
            let mut buf = [0u8; 64];
            let mut got = 0u64;
            // Until the program has ended and the socket is drained (a read timed out after).
            loop {
                match peer.recv(&mut buf) {
                    Ok(n) => got += n as u64,
                    Err(_) if stopped.load(std::sync::atomic::Ordering::Acquire) => return got,
                    Err(_) => {}
                }
            }
        });
        sigstorm(mode, port, &[], || {
            stop.store(true, std::sync::atomic::Ordering::Release);
            counter.join().expect("peer")
        });
    }
}

/// Runs `sigstorm PORT 400 <extra>` in `mode`; `received` gives what the unmetered peer got
/// once the program has ended. Checks that the storm happened, that the peer got what the
/// program says it sent, and that the report's bytes sent are exactly that.
fn sigstorm(mode: Mode, port: u16, extra: &[&str], received: impl FnOnce() -> u64) -> (Run, serde_json::Value) {
    let prog = compile_c("sigstorm", &[]).display().to_string();
    let port = port.to_string();
    let mut cmd = vec![prog.as_str(), port.as_str(), "400"];
    cmd.extend_from_slice(extra);
    let r = run_in(mode, &[], &cmd, &[]);
    let received = received();
    assert_eq!(r.code, 0, "{}", r.stderr);
    let own: serde_json::Value = serde_json::from_str(r.stdout.trim()).expect("the program's line");
    assert!(own["signals"].as_u64().unwrap_or(0) >= 50, "the storm happened: {own}");
    assert_eq!(
        own["sent"].as_u64(),
        Some(received),
        "the peer got what the program sent"
    );
    let p = r.proc("sigstorm");
    assert_eq!(p.totals.tx_bytes, received, "every byte sent, exact:\n{}", r.stderr);
    (r, own)
}

both_modes! {
    /// The handler and the main flow send on the same TCP connection, so handlers land between
    /// the main flow's send and its count of it (in a single-threaded host, a plain add: one
    /// instruction, which a handler cannot split): the report equals what the peer received.
    fn a_handler_sending_on_the_main_flows_socket_is_counted_exactly(mode) {
        let sink = Sink::start();
        let port = sink.port;
        let (r, own) = sigstorm(mode, port, &["shared"], || sink.received() as u64);
        let p = r.proc("sigstorm");
        assert_eq!(p.totals.tx_calls, own["loops"].as_u64().unwrap() + own["signals"].as_u64().unwrap(), "every call of both");
    }
}

/// When a process started, by the kernel's own clock (`/proc/<pid>/stat` field 22, in clock
/// ticks since boot, converted with CLOCK_BOOTTIME vs CLOCK_REALTIME), as ms since the epoch,
/// rounded down to the tick. Python, so that the metered program computes it about itself.
const KERNEL_START: &str = r#"
def kernel_start_ms(pid):
    import os, time
    with open('/proc/%d/stat' % pid) as f:
        ticks = int(f.read().rsplit(')', 1)[1].split()[19])
    hz = os.sysconf('SC_CLK_TCK')
    boot_ms = time.clock_gettime(time.CLOCK_REALTIME) * 1000 - time.clock_gettime(time.CLOCK_BOOTTIME) * 1000
    return int(boot_ms + ticks * 1000 // hz)
"#;

both_modes! {
    /// A process's `started_at` is when it started (its exec, or its fork), not when the shim
    /// first shipped: never after its first socket was opened, and never before the kernel's own
    /// start time for it (to the clock tick). It used to be 2-5 ms after the first socket.
    fn started_at_is_when_the_process_started(mode) {
        let peer = Peer::start("tcp_peer.py", &["--conns", "2", "--mode", "reply", "--reply", "0"]);
        let script = format!(
            r#"{KERNEL_START}
import json, os, socket
def conn():
    s = socket.create_connection(('127.0.0.1', {port}))
    s.sendall(b'x' * 10)
    s.close()
conn()
pid = os.fork()
if pid == 0:
    conn()
    os._exit(0)
os.waitpid(pid, 0)
print(json.dumps({{'parent': kernel_start_ms(os.getpid())}}))
"#,
            port = peer.port
        );
        let r = run_in(mode, &[], &[python(), "-c", &script], &[]);
        peer.finish();
        assert_eq!(r.code, 0, "{}", r.stderr);
        let own: serde_json::Value = serde_json::from_str(r.stdout.trim()).expect("the program's line");
        let kernel = sockmeter::time::rfc3339(own["parent"].as_u64().expect("kernel start"));
        assert_eq!(r.report.processes.len(), 2, "parent and child:\n{}", r.stderr);
        for p in &r.report.processes {
            let first = p.sockets.iter().filter(|s| !s.inherited).map(|s| s.opened_at.clone()).min();
            let first = first.unwrap_or_else(|| panic!("pid {} has a socket of its own", p.pid));
            // RFC 3339 with ms, always the same width: text order is time order.
            assert!(p.started_at <= first, "pid {} started at {} after its first socket at {first}", p.pid, p.started_at);
            assert!(p.started_at >= kernel, "pid {} started at {} before the kernel's start {kernel}", p.pid, p.started_at);
        }
    }
}
