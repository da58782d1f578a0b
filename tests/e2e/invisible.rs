//! The host's own view of itself does not change under the shim: the same children (none it did
//! not make, in any image), the same SIGCHLDs, the same answers from `wait()`, as the kernel and
//! `ps` report them from inside the host. Each test compares a metered run with an unmetered one
//! of the same program, and runs in both shipping modes.

use crate::harness::{self, both_modes, compile_c, direct, python, run_in, Peer};

/// The lines `tests/c/hostview.c` prints for stages 1 and 2 when nothing is preloaded.
fn unmetered_view(prog: &str, bytes: &str) -> String {
    let peer = Peer::start("tcp_peer.py", &["--conns", "2", "--mode", "reply", "--reply", "0"]);
    let out = direct(&[prog, &peer.port.to_string(), bytes], &[]);
    assert!(out.status.success(), "unmetered hostview failed: {out:?}");
    peer.finish();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

both_modes! {
    /// A host that touched a socket still has no child it did not make, before and after an
    /// exec of itself: the kernel's children list and `ps --ppid` are empty, no SIGCHLD
    /// arrives, `waitpid(-1, WNOHANG)` and `wait()` say ECHILD at once (in shipper mode the
    /// shipper used to be the host's child: `wait()` blocked forever, and the exec'd image got
    /// the old image's shipper from `waitpid`). The bytes are still exact.
    fn the_host_has_no_child_it_did_not_make(mode) {
        let prog = compile_c("hostview", &[]).display().to_string();
        let bytes = "7000";
        let expected = unmetered_view(&prog, bytes);
        assert_eq!(
            expected,
            "stage=1 children=0 ps=0 sigchld=0 waitpid=ECHILD wait=ECHILD\n\
             stage=2 children=0 ps=0 sigchld=0 waitpid=ECHILD wait=ECHILD\n",
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
