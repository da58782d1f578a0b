//! What loading the shim costs a process, and what it must not cost: the shim needs no library
//! but libc and the loader (its unwinder is linked in, `shim/build.rs`), a panic inside it is
//! still caught in the shipped library, and shipper mode's shared region is made only when a
//! process first needs it (its first socket or its first thread), with everything noted before
//! that (a name from `getaddrinfo`) carried into it. `scripts/bench`'s `spawn` row prices the
//! loading; these tests hold the behaviour.

use crate::harness::{self, both_modes, compile_c, direct, run_in, Counter};

/// The shim's dynamic section names only libc and the loader: no `libgcc_s.so.1`, which every
/// process loading the shim used to map and initialise.
#[test]
fn the_shim_needs_only_libc_and_the_loader() {
    let out = std::process::Command::new("readelf")
        .args(["-d", &harness::shim().display().to_string()])
        .output()
        .expect("readelf (binutils) is needed");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let mut needed: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("(NEEDED)"))
        .filter_map(|l| l.split('[').nth(1)?.split(']').next())
        .collect();
    needed.sort();
    assert_eq!(needed, ["ld-linux-x86-64.so.2", "libc.so.6"], "{text}");
}

/// A panic inside the shim, raised and caught in the loaded library itself (its own unwinder,
/// not libgcc_s's): the host goes on, and so does metering.
#[test]
fn a_panic_inside_the_shipped_shim_is_caught() {
    let prog = compile_c("selftest_unwind", &["-ldl"]).display().to_string();
    let shim = harness::shim().display().to_string();
    let out = direct(&[&prog], &[("LD_PRELOAD", shim.as_str())]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(stdout.trim(), "caught=1", "{}", String::from_utf8_lossy(&out.stderr));
}

both_modes! {
    /// A process that never touches a socket holds no region of the shim's (no memfd), in
    /// either mode.
    fn a_process_without_sockets_gets_no_region(mode) {
        let prog = compile_c("lazystart", &["-pthread"]).display().to_string();
        let r = run_in(mode, &[], &[&prog, "1", "none"], &[]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert!(r.stdout.contains("memfds_at_start=0\n"), "{}", r.stdout);
        assert!(r.stdout.contains("memfds_at_end=0\n"), "{}", r.stdout);
    }

    /// The first socket makes the region: the connection is counted to the byte, and the name
    /// `getaddrinfo` noted before any socket existed is the peer's name.
    fn the_first_socket_is_counted_and_named(mode) {
        let peer = Counter::start(1, 700);
        let prog = compile_c("lazystart", &["-pthread"]).display().to_string();
        let port = peer.port.to_string();
        let r = run_in(mode, &[], &[&prog, &port, "single"], &[]);
        let seen = peer.finish();
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert!(r.stdout.contains("memfds_at_start=0\n"), "{}", r.stdout);
        assert_eq!((seen.rx, seen.tx), (3000, 700));
        assert!(r.stdout.contains("sent=3000 received=700"), "{}", r.stdout);
        let p = r.proc(&prog);
        assert_eq!((p.totals.tx_bytes, p.totals.rx_bytes), (seen.rx, seen.tx), "{}", r.stderr);
        let s = p.sockets.iter().find(|s| s.tx_bytes > 0).expect("the connection");
        assert_eq!((s.peer_name.as_deref(), s.tx_bytes, s.rx_bytes), (Some("localhost"), 3000, 700));
    }

    /// A forked child that inherited no open socket makes no region until it needs one (a
    /// fork+exec child never does); when it then connects, that connection is its own, exact.
    fn a_forked_child_without_sockets_gets_its_region_when_it_needs_one(mode) {
        let peer = Counter::start(2, 500);
        let prog = compile_c("lazystart", &["-pthread"]).display().to_string();
        let port = peer.port.to_string();
        let r = run_in(mode, &[], &[&prog, &port, "fork"], &[]);
        let seen = peer.finish();
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert!(r.stdout.contains("child memfds=0\n"), "{}", r.stdout);
        assert!(r.stdout.contains("child sent=2000 received=500"), "{}", r.stdout);
        assert_eq!((seen.rx, seen.tx, seen.conns), (5000, 1000, 2));
        let procs = r.procs(&prog);
        assert_eq!(procs.len(), 2, "{}", r.stderr);
        let mut sent: Vec<(u64, u64)> = procs.iter().map(|p| (p.totals.tx_bytes, p.totals.rx_bytes)).collect();
        sent.sort();
        assert_eq!(sent, [(2000, 500), (3000, 500)], "{}", r.stderr);
    }

    /// A forking server's shipper serves a host per child and lets each one go: 300 children,
    /// one connection each, every one exact, and afterwards the shipper holds only the
    /// parent's region (it used to keep every child's mapped: one mapping and the touched
    /// pages per child, until `vm.max_map_count` made the next adoption fail).
    fn a_shipper_lets_each_forked_childs_region_go(mode) {
        const CHILDREN: u64 = 300;
        let peer = Counter::start(CHILDREN + 1, 50);
        let prog = compile_c("lazystart", &["-pthread"]).display().to_string();
        let port = peer.port.to_string();
        let r = run_in(mode, &[], &[&prog, &port, "many", &CHILDREN.to_string()], &[]);
        let seen = peer.finish();
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert_eq!((seen.rx, seen.tx, seen.conns), (3000 + 100 * CHILDREN, 50 * (CHILDREN + 1), CHILDREN + 1));
        match mode {
            harness::Mode::Shipper => assert!(r.stdout.contains("shipper_regions=1\n"), "{}", r.stdout),
            harness::Mode::Thread => assert!(r.stdout.contains("shipper=none\n"), "{}", r.stdout),
        }
        let procs = r.procs(&prog);
        assert_eq!(procs.len() as u64, CHILDREN + 1, "{}", r.stderr);
        let children: Vec<(u64, u64)> = procs
            .iter()
            .filter(|p| p.origin == "fork")
            .map(|p| (p.totals.tx_bytes, p.totals.rx_bytes))
            .collect();
        assert_eq!(children, vec![(100, 50); CHILDREN as usize], "{}", r.stderr);
        let (tx, rx) = procs.iter().fold((0, 0), |(t, x), p| (t + p.totals.tx_bytes, x + p.totals.rx_bytes));
        assert_eq!((tx, rx), (seen.rx, seen.tx), "{}", r.stderr);
    }

    /// Threads started before any socket (the region is made before the first of them): two
    /// connections made at the same time on two threads are both counted to the byte.
    fn threads_started_before_any_socket_are_counted(mode) {
        let peer = Counter::start(2, 900);
        let prog = compile_c("lazystart", &["-pthread"]).display().to_string();
        let port = peer.port.to_string();
        let r = run_in(mode, &[], &[&prog, &port, "threads"], &[]);
        let seen = peer.finish();
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert_eq!((seen.rx, seen.tx, seen.conns), (7000, 1800, 2));
        let p = r.proc(&prog);
        assert_eq!((p.totals.tx_bytes, p.totals.rx_bytes), (7000, 1800), "{}", r.stderr);
        let mut sent: Vec<u64> = p.sockets.iter().filter(|s| s.tx_bytes > 0).map(|s| s.tx_bytes).collect();
        sent.sort();
        assert_eq!(sent, [2000, 5000]);
    }
}

both_modes! {
    /// The `execl` family (shim/src/hooks/execlist.rs) behaves as glibc's own: a failed
    /// `execl`/`execlp` returns -1 with ENOENT and metering goes on (the connection after it is
    /// exact), and an `execle` with 600 extra arguments and its own environment runs the new
    /// image with exactly those; the same output as without the shim.
    fn the_execl_family_behaves_as_glibcs_own(mode) {
        let prog = compile_c("execlist", &[]).display().to_string();
        let plain_peer = Counter::start(1, 400);
        let plain = direct(&[&prog, &plain_peer.port.to_string()], &[]);
        plain_peer.finish();
        let peer = Counter::start(1, 400);
        let port = peer.port.to_string();
        let r = run_in(mode, &[], &[&prog, &port], &[]);
        let seen = peer.finish();
        assert_eq!(r.code, 0, "{}", r.stderr);
        let expected = "execl -1 errno 2\nexeclp -1 errno 2\nsent 2500 received 400\nargc 602 env one-variable\n";
        assert_eq!(String::from_utf8_lossy(&plain.stdout), expected, "without the shim");
        assert_eq!(r.stdout, expected, "under the shim{}", r.stderr);
        assert_eq!((seen.rx, seen.tx), (2500, 400));
        let p = r
            .report
            .processes
            .iter()
            .find(|p| p.totals.tx_bytes > 0)
            .unwrap_or_else(|| panic!("the image that made the connection:\n{}", r.stderr));
        assert_eq!((p.totals.tx_bytes, p.totals.rx_bytes), (2500, 400), "{}", r.stderr);
    }
}
