//! No silent zero: every way a program can move bytes through a TCP socket is either counted
//! by a hook, exactly, or reported by the kernel witness as unseen, exactly.
//!
//! `tests/c/silentzero.c` moves TX bytes out and RX bytes in through one chosen path each way
//! (splice, sendfile into a pipe, the v2 vectored calls, `syscall()`, stdio, raw system call
//! instructions, io_uring through liburing in `tests/c/uring.c`), against the unmetered peer
//! `tests/c/peer.c`, which says what it really received and sent. For each socket:
//! `tx_bytes + unseen_tx_bytes` is what the peer received and `rx_bytes + unseen_rx_bytes` what
//! it sent, and the split between the two is the one the path implies (a hooked path: all
//! counted, none unseen; an unhooked one: none counted, all unseen). The harness checks on every
//! run of every test that the hooks never count more than the kernel, and, outside the runs
//! here that move bytes past the hooks on purpose, that they count everything it saw.

use crate::cprogs::{fields, get, kv, prog, Oracle, Seen};
use crate::harness::{self, both_modes, Mode, Run};
use sockmeter::report::{ProcessReport, SocketReport};

/// A datagram peer's (address, tx bytes, rx bytes).
type PeerCounts = (String, u64, u64);

/// What one run of `silentzero` did: the run, the peer's view, the program's own line.
struct Moved {
    run: Run,
    seen: Seen,
    own: std::collections::HashMap<String, String>,
    /// The peer's listening port.
    peer_port: u16,
}

impl Moved {
    /// The process that moved the bytes (the only one).
    fn proc(&self) -> &ProcessReport {
        self.run.proc("silentzero")
    }

    /// Its socket to the peer.
    fn sock(&self) -> &SocketReport {
        let port = self.seen.port;
        let p = self.proc();
        let v: Vec<&SocketReport> = p
            .sockets
            .iter()
            .filter(|s| s.local.as_deref() == Some(&format!("127.0.0.1:{port}")))
            .collect();
        assert_eq!(v.len(), 1, "one socket from port {port}\n{}", self.run.stderr);
        v[0]
    }

    /// Every byte the peer saw is either counted by the hooks or unseen, and the socket's
    /// counted and unseen bytes are `counted` and `unseen` (tx, rx).
    fn assert_split(&self, counted: (u64, u64), unseen: (u64, u64)) {
        let s = self.sock();
        let ctx = format!("\n{}\n{:#?}", self.run.stderr, s);
        assert_eq!(
            (s.tx_bytes + s.unseen_tx_bytes, s.rx_bytes + s.unseen_rx_bytes),
            (self.seen.rx, self.seen.tx),
            "every byte the peer saw is counted or unseen{ctx}"
        );
        assert_eq!((s.tx_bytes, s.rx_bytes), counted, "counted by the hooks{ctx}");
        assert_eq!((s.unseen_tx_bytes, s.unseen_rx_bytes), unseen, "reported unseen{ctx}");
        assert_eq!(
            (s.kernel_tx_bytes, s.kernel_rx_bytes),
            (Some(self.seen.rx), Some(self.seen.tx)),
            "the kernel witness is what the peer saw{ctx}"
        );
        let t = &self.proc().totals;
        assert_eq!((t.unseen_tx_bytes, t.unseen_rx_bytes), unseen, "process totals{ctx}");
        let r = &self.run.report.totals;
        assert_eq!((r.unseen_tx_bytes, r.unseen_rx_bytes), unseen, "run totals{ctx}");
    }
}

/// Runs `silentzero OPEN TXPATH RXPATH END PORT TX RX` in `mode` against a peer that reads
/// TX bytes, sends RX and reads to EOF (`script` replaces that).
fn moved(mode: Mode, args: [&str; 4], tx: u64, rx: u64, script: Option<&str>) -> Moved {
    let bin = prog("silentzero", &[]);
    let default = format!("r{tx},s{rx},e");
    let peer = Oracle::server(1, script.unwrap_or(&default));
    let peer_port = peer.port;
    let port = peer.port.to_string();
    let (tx_s, rx_s) = (tx.to_string(), rx.to_string());
    let cmd = [bin.as_str(), args[0], args[1], args[2], args[3], &port, &tx_s, &rx_s];
    let run = harness::expecting_unseen(|| harness::run_in(mode, &[], &cmd, &[]));
    let conns = peer.conns();
    assert_eq!(conns.len(), 1, "the peer saw one connection\n{}", run.stderr);
    let own = fields(&run.stdout, "moved");
    assert_eq!(get(&own, "local") as u16, conns[0].port, "the program's socket");
    Moved {
        run,
        seen: conns[0],
        own,
        peer_port,
    }
}

/// The summary says how many bytes moved outside the hooked calls, and on which socket.
fn assert_said_unseen(m: &Moved, what: &str) {
    let want = format!("{what} moved outside the calls sockmeter sees");
    let line = m
        .run
        .stderr
        .lines()
        .find(|l| l.contains(&want))
        .unwrap_or_else(|| panic!("no line saying {want:?}:\n{}", m.run.stderr));
    let place = format!(
        "127.0.0.1:{} -> {}",
        m.seen.port,
        m.sock().peer.as_deref().unwrap_or("?")
    );
    assert!(line.contains(&place) && line.contains("(silentzero)"), "{line}");
}

both_modes! {
    /// splice() from a pipe to the socket (filled with vmsplice and tee, which only ever touch
    /// pipes) and from the socket to a pipe: both counted exactly, nothing unseen.
    fn splice_both_ways_is_counted(mode) {
        let m = moved(mode, ["libc", "splice", "splice", "close"], 100_000, 50_000, None);
        m.assert_split((100_000, 50_000), (0, 0));
        assert!(m.sock().tx_calls >= 25 && m.sock().rx_calls >= 13, "{:?}", m.sock());
    }

    /// sendfile() with the socket as its input (into a pipe) is a receive.
    fn sendfile_from_a_socket_is_counted(mode) {
        let m = moved(mode, ["libc", "send", "sendfile", "close"], 20_000, 30_000, None);
        m.assert_split((20_000, 30_000), (0, 0));
    }

    /// pwritev2/preadv2 with offset -1 are writev/readv: counted. preadv/pwritev (and their
    /// 64 names) with an offset fail on a socket (ESPIPE): four failed calls, no bytes.
    fn v2_vectored_calls_are_counted(mode) {
        let m = moved(mode, ["libc", "pwritev2", "preadv2", "close"], 40_000, 25_000, None);
        m.assert_split((40_000, 25_000), (0, 0));
        assert_eq!(get(&m.own, "espipe"), 4);
        assert_eq!(m.sock().errors, 4, "each ESPIPE is a failed call\n{}", m.run.stderr);
        let m = moved(mode, ["libc", "pwritev64v2", "preadv64v2", "close"], 9_000, 7_000, None);
        m.assert_split((9_000, 7_000), (0, 0));
        assert_eq!(m.sock().errors, 0);
    }

    /// glibc's public aliases __send, __write and __read are the same functions: counted.
    fn glibc_aliases_are_counted(mode) {
        let m = moved(mode, ["libc", "aliases", "aliases", "close"], 12_000, 9_000, None);
        m.assert_split((12_000, 9_000), (0, 0));
    }

    /// syscall(SYS_socket), syscall(SYS_connect), then every data call through syscall():
    /// sendto, write, writev, sendmsg, pwritev2 out; recvfrom, read, readv, recvmsg, preadv2 in.
    fn syscall_data_calls_are_counted(mode) {
        let m = moved(mode, ["sys", "sys", "sys", "close"], 30_000, 30_000, None);
        m.assert_split((30_000, 30_000), (0, 0));
        assert_eq!(m.sock().role, "connected");
        assert!(!m.sock().adopted, "seen being created, through syscall()");
        assert!(m.sock().module.as_deref().is_some_and(|p| p.ends_with("/silentzero")));
    }

    /// A socket closed with `fclose` (coreutils close stdout that way at exit): its witness is
    /// read before, plus what the stream still held and `fclose` wrote (no hook sees libc write
    /// it), so those bytes are unseen, exactly, and the socket has a witness.
    fn a_socket_closed_by_fclose_is_witnessed_with_what_the_stream_held(mode) {
        let m = moved(mode, ["libc", "stdio_unflushed", "recv", "fclose"], 3000, 0, Some("e"));
        m.assert_split((0, 0), (3000, 0));
        assert_said_unseen(&m, "3.0 kB out");
    }

    /// fdopen + fwrite + fflush out, fgets + fread in: libc calls itself, no hook sees a byte;
    /// the kernel witness reports every one as unseen, and the summary says so, with where.
    fn stdio_both_ways_is_reported_unseen_exactly(mode) {
        let m = moved(mode, ["libc", "stdio", "stdio", "close"], 10_000, 20_000, None);
        m.assert_split((0, 0), (10_000, 20_000));
        assert_said_unseen(&m, "20.0 kB in and 10.0 kB out");
        assert!(
            m.run.stderr.contains("; and 20.0 kB in and 10.0 kB out outside the calls sockmeter sees"),
            "{}",
            m.run.stderr
        );
        // One way through stdio, the other through recv: each counted where it was seen.
        let m = moved(mode, ["libc", "stdio", "recv", "close"], 1_000, 2_000, None);
        m.assert_split((0, 2_000), (1_000, 0));
        assert_said_unseen(&m, "1.0 kB out");
    }

    /// System call instructions (no libc call at all): unseen, exactly.
    fn raw_system_call_instructions_are_reported_unseen(mode) {
        let m = moved(mode, ["libc", "asm", "asm", "close"], 5_000, 6_000, None);
        m.assert_split((0, 0), (5_000, 6_000));
    }

    /// A socket made and connected with system call instructions: the shim first meets it at
    /// its close, recognises it there and reads its witness (from its creation).
    fn a_socket_first_met_at_its_close_is_witnessed(mode) {
        let m = moved(mode, ["asm", "asm", "asm", "close"], 4_000, 3_000, None);
        m.assert_split((0, 0), (4_000, 3_000));
        let s = m.sock();
        assert!(s.adopted && s.role == "connected", "{s:?}");
        assert_eq!(s.peer, Some(format!("127.0.0.1:{}", m.peer_port)), "recognised with its peer");
    }

    /// shutdown(SHUT_WR), then the reply and the peer's FIN: the socket is in CLOSE with its fd
    /// open, where the FIN counts in the kernel's received bytes.
    fn after_shutdown_and_eof_the_witness_is_exact(mode) {
        let m = moved(mode, ["libc", "stdio", "recv", "shut"], 3_000, 4_000, None);
        m.assert_split((0, 4_000), (3_000, 0));
    }

    /// Bytes that arrived but were never read are not "read": the witness asks FIONREAD when
    /// the hooks have not seen everything that arrived read.
    fn unread_bytes_are_not_counted_as_read(mode) {
        let m = moved(mode, ["libc", "send", "unread", "close"], 2_000, 8_000, Some("r2000,s8000"));
        let s = m.sock();
        assert_eq!(m.seen.tx, 8_000);
        assert_eq!((s.rx_bytes, s.kernel_rx_bytes, s.unseen_rx_bytes), (4_000, Some(4_000), 0), "{s:?}");
        assert_eq!((s.tx_bytes, s.kernel_tx_bytes, s.unseen_tx_bytes), (2_000, Some(2_000), 0));
    }

    /// Sockets still open when the process ends: witnessed at exit (after stdio is flushed,
    /// so bytes left in a FILE count too) and at _exit.
    fn sockets_open_at_exit_are_witnessed(mode) {
        let m = moved(mode, ["libc", "stdio", "recv", "exit"], 1_500, 2_500, None);
        m.assert_split((0, 2_500), (1_500, 0));
        let m = moved(mode, ["libc", "stdio", "recv", "_exit"], 1_600, 2_600, None);
        m.assert_split((0, 2_600), (1_600, 0));
        // Written into a FILE and never flushed by the program: exit flushes it.
        let m = moved(mode, ["libc", "stdio_unflushed", "recv", "exit"], 7_000, 0, Some("e"));
        m.assert_split((0, 0), (7_000, 0));
        // The same while another thread is blocked in fgets(stdin), holding stdin's lock: the
        // shim flushes only the streams on its sockets, without locks, as libc's exit does (a
        // fflush(NULL) would wait for that lock forever).
        let m = moved(mode, ["libc", "stdio_unflushed", "recv", "exit_reader"], 3_000, 0, Some("e"));
        m.assert_split((0, 0), (3_000, 0));
    }

    /// liburing: every byte through the ring is unseen, exactly, and the process is named as
    /// using io_uring, once, in the report and the summary.
    fn io_uring_traffic_is_reported_unseen_and_named(mode) {
        let bin = prog("uring", &["-luring"]);
        let peer = Oracle::server(1, "r70000,s30000,e");
        let port = peer.port.to_string();
        let r = harness::expecting_unseen(|| harness::run_in(mode, &[], &[&bin, &port, "70000", "30000"], &[]));
        let seen = peer.conns()[0];
        let p = r.proc("uring");
        assert!(p.uses_io_uring, "{}", r.stderr);
        assert!(p.notices.is_empty(), "said once, as uses_io_uring: {:?}", p.notices);
        let s = p.sockets.iter().find(|s| s.proto == "tcp").expect("the socket");
        assert_eq!((seen.rx, seen.tx), (70_000, 30_000));
        assert_eq!((s.tx_bytes, s.rx_bytes), (0, 0), "{s:?}");
        assert_eq!((s.unseen_tx_bytes, s.unseen_rx_bytes), (70_000, 30_000), "{s:?}");
        let said: Vec<&str> = r.stderr.lines().filter(|l| l.contains("uses io_uring")).collect();
        assert_eq!(said.len(), 1, "{}", r.stderr);
        assert!(said[0].contains("its socket I/O is seen only by the kernel witness"));
    }

    /// An io_uring made with syscall(SYS_io_uring_setup) is named too.
    fn an_io_uring_made_with_syscall_is_named(mode) {
        let bin = prog("silentzero", &[]);
        let peer = Oracle::server(1, "r100");
        let r = harness::run_in(mode, &[], &[&bin, "uring", &peer.port.to_string()], &[]);
        assert_eq!(peer.conns()[0].rx, 100);
        let p = r.proc("silentzero");
        assert!(p.uses_io_uring, "{}", r.stderr);
        assert_eq!(p.totals.tx_bytes, 100);
    }

    /// Every socket and fd call through syscall(): a socketpair, a listener, a connection to it
    /// accepted with accept4, dup, fcntl(F_DUPFD_CLOEXEC), dup3 (and dup2 on x86_64), shutdown,
    /// close; each socket reported with the bytes it moved and its kernel witness agreeing.
    fn syscall_socket_and_fd_calls_are_followed(mode) {
        let bin = prog("silentzero", &[]);
        let peer = Oracle::server(1, "r1000,s500");
        let r = harness::run_in(mode, &["--unix"], &[&bin, "syscalls", &peer.port.to_string()], &[]);
        let seen = peer.conns()[0];
        assert_eq!((seen.rx, seen.tx), (1000, 500));
        let p = r.proc("silentzero");
        let ctx = format!("{mode:?}\n{}", r.stderr);
        let find = |proto: &str, role: &str| -> Vec<&SocketReport> {
            p.sockets
                .iter()
                .filter(|s| s.proto == proto && s.role == role)
                .collect()
        };
        let pair = find("stream", "connected");
        assert_eq!(pair.len(), 2, "{ctx}");
        assert!(pair.iter().all(|s| (s.tx_bytes, s.rx_bytes) == (10, 10)), "{ctx}");
        assert_eq!(find("tcp", "listening").len(), 1, "{ctx}");
        let accepted = find("tcp", "accepted");
        assert_eq!(accepted.len(), 1, "{ctx}");
        // 100 in; 60 and 40 out through its dups (dup2 or dup3, and dup3).
        assert_eq!((accepted[0].tx_bytes, accepted[0].rx_bytes), (100, 100), "{ctx}");
        assert_eq!(
            (accepted[0].kernel_tx_bytes, accepted[0].kernel_rx_bytes),
            (Some(100), Some(100)),
            "{ctx}"
        );
        let to_peer = find("tcp", "connected");
        assert_eq!(to_peer.len(), 2, "{ctx}");
        let own = kv(r.stdout.lines().find(|l| l.starts_with("local")).expect("local line"));
        let ps = to_peer
            .iter()
            .find(|s| s.local.as_deref() == Some(&format!("127.0.0.1:{}", get(&own, "local"))))
            .expect("the socket to the peer");
        assert_eq!((ps.tx_bytes, ps.rx_bytes), (seen.rx, seen.tx), "{ctx}");
        assert!(
            p.sockets.iter().all(|s| s.closed_at.is_some()),
            "every one closed through SYS_close: {ctx}"
        );
        assert_eq!((p.totals.unseen_tx_bytes, p.totals.unseen_rx_bytes), (0, 0), "{ctx}");
        // UDP through syscall(): the sixth argument (the address length) reached the kernel
        // and the hook alike, so each datagram is counted against the right peer.
        let udp = fields(&r.stdout, "udp");
        let (sender, receiver) = (get(&udp, "sender"), get(&udp, "receiver"));
        let udp: Vec<(Option<&str>, Vec<PeerCounts>)> = p
            .sockets
            .iter()
            .filter(|s| s.proto == "udp")
            .map(|s| {
                let peers = s.peers.iter().map(|q| (q.peer.clone(), q.tx_bytes, q.rx_bytes)).collect();
                (s.local.as_deref(), peers)
            })
            .collect();
        let recv_local = format!("127.0.0.1:{receiver}");
        // The sender was bound implicitly by its sendto: its local address is not known.
        assert!(
            udp.contains(&(None, vec![(recv_local.clone(), 20, 0)])),
            "the sender, to the receiver: {udp:?}\n{ctx}"
        );
        assert!(
            udp.contains(&(Some(recv_local.as_str()), vec![(format!("127.0.0.1:{sender}"), 0, 20)])),
            "the receiver, from the sender: {udp:?}\n{ctx}"
        );
    }

    /// A process killed with its socket open: what the hooks counted is kept (shipper mode), no
    /// witness is claimed for the socket, and the summary says the connection has none.
    fn a_killed_process_claims_no_witness(mode) {
        let m = moved(mode, ["libc", "stdio", "recv", "kill"], 1_000, 2_000, None);
        assert_eq!(m.run.code, 128 + libc::SIGKILL, "{}", m.run.stderr);
        for p in &m.run.report.processes {
            for s in &p.sockets {
                assert_eq!((s.kernel_tx_bytes, s.unseen_tx_bytes), (None, 0), "{mode:?} {s:?}");
            }
        }
        if mode == Mode::Shipper {
            // Its shipper saw it go: the hooks' counts are there, the witness is not.
            let s = m.sock();
            assert_eq!((s.tx_bytes, s.rx_bytes), (0, 2_000), "{s:?}");
            assert!(
                m.run.stderr.contains("1 TCP connection without a kernel witness"),
                "{}",
                m.run.stderr
            );
        }
    }
}
