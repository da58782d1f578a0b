//! The reporter's end of the wire: a Unix stream socket that metered processes connect to,
//! served by a single `poll(2)` loop the caller drives with [`Collector::poll`].
//!
//! Every accepted connection is one process image ([`Conn`]). The loop never blocks on one
//! connection, so a silent or hostile process cannot stall the others, and the caller keeps
//! control between calls: `run` waits for its child there, a future `listen` could serve
//! forever, and a live view or an exporter can read [`Collector::conns`] at any time.
//!
//! Each connection is checked when it is accepted ([`crate::admit`]): `run` takes only its own
//! processes. A refused one is closed at once and counted; the first gets one warning, and the
//! report a notice with the count ([`Collector::notices`]). A connection that never says
//! `hello` is not a process: it is left out of the report (and counted in the notices if it
//! sent anything).
//!
//! `run` also opens a second *door* ([`Collector::open_door`]): an abstract Unix socket named
//! after the socket's path (`sockmeter::config::door_name`). A run's process that gave up its
//! privileges (a daemon that switches to its own user, a program started through setpriv or
//! su) can no longer enter the private directory, and knocks there instead. An abstract socket
//! has no permissions of its own, but the admission check is the same: only the run's own
//! processes get in, so no other user can add to the counts.

use std::collections::HashMap;
use std::io::{ErrorKind, Read};
use std::os::fd::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use sockmeter::wire::ByeReason;

use crate::admit::{self, Policy, Verdict};
use crate::conn::{Conn, Status};

/// Bytes read from one connection per [`Collector::poll`] before turning to the others.
const READ_BUDGET: usize = 1 << 20;

struct Slot {
    conn: Conn,
    stream: Option<UnixStream>,
    /// When data last came on this connection.
    last_data: Option<std::time::Instant>,
    /// The process at the other end (a shipper, or the process itself), from `SO_PEERCRED`.
    peer_pid: u32,
}

/// The listening socket and every connection accepted on it.
pub struct Collector {
    listener: UnixListener,
    /// The second door, for the run's processes that changed user (see the module docs).
    door: Option<UnixListener>,
    path: PathBuf,
    slots: Vec<Slot>,
    next_id: u64,
    warnings: Vec<String>,
    accept_error: Option<String>,
    /// An fd whose readiness ends a wait early (`run`: a pidfd of the command).
    wake: Option<std::os::fd::RawFd>,
    /// Who may connect.
    policy: Policy,
    /// The process images the connections have said hello for (a reconnection is known).
    images: crate::conn::Images,
    /// Connections refused, and why the first one was.
    refused: u64,
    first_refused: Option<String>,
    /// Event-stream lines of every connection, when recording ([`Collector::record`]).
    records: Option<Vec<u8>>,
}

impl Collector {
    /// Listens on a new socket at `path` (which must not exist), taking connections from this
    /// process's descendants only ([`Policy::run`]; see [`Collector::set_policy`]).
    pub fn bind(path: &Path) -> Result<Self> {
        let listener = UnixListener::bind(path).with_context(|| format!("cannot listen on {}", path.display()))?;
        listener
            .set_nonblocking(true)
            .context("cannot make the listening socket non-blocking")?;
        Ok(Collector {
            listener,
            door: None,
            path: path.to_path_buf(),
            slots: Vec::new(),
            next_id: 1,
            warnings: Vec::new(),
            accept_error: None,
            wake: None,
            policy: Policy::run(),
            images: Default::default(),
            refused: 0,
            first_refused: None,
            records: None,
        })
    }

    /// Records the event stream of every connection from now on ([`Collector::take_records`]).
    pub fn record(&mut self) {
        self.records.get_or_insert_with(Vec::new);
    }

    /// The event-stream lines recorded since the last call.
    pub fn take_records(&mut self) -> Vec<u8> {
        self.records.as_mut().map(std::mem::take).unwrap_or_default()
    }

    fn keep_records(&mut self, i: usize) {
        if let Some(r) = &mut self.records {
            r.extend(self.slots[i].conn.take_recorded());
        }
    }

    /// Takes connections an earlier reporter had (read back from its event stream): they are
    /// part of every report from now on, and new connections are numbered after them.
    pub fn add_history(&mut self, conns: Vec<Conn>) {
        for conn in conns {
            self.next_id = self.next_id.max(conn.id() + 1);
            self.slots.push(Slot {
                conn,
                stream: None,
                last_data: None,
                peer_pid: 0,
            });
        }
    }

    /// How many connections are open now.
    pub fn open_connections(&self) -> usize {
        self.slots.iter().filter(|s| s.stream.is_some()).count()
    }

    /// A `listen` reporter stops: every open connection is asked to connect again later
    /// (`outbox::RECONNECT_LINE`), and read until it closes its end (so everything its shim
    /// wrote before it heard that arrives) or until `grace` is over.
    pub fn ask_to_reconnect(&mut self, grace: Duration) {
        use std::io::Write;
        let deadline = std::time::Instant::now() + grace;
        loop {
            // Connections waiting to be accepted are told too (closing the listener would
            // reset them, with what they wrote).
            self.accept_all(false);
            for s in &mut self.slots {
                if let (Some(st), false) = (&mut s.stream, s.conn.released()) {
                    let _ = st.write(sockmeter::outbox::RECONNECT_LINE);
                    s.conn.release();
                }
            }
            let now = std::time::Instant::now();
            if self.open_connections() == 0 || now >= deadline {
                break;
            }
            let _ = self.poll_with((deadline - now).min(Duration::from_millis(50)), true);
        }
    }

    /// Opens the second door (see the module docs). Only for a policy that checks who the peer
    /// is beyond its uid (`run`'s: the run's own processes).
    /// macOS has no abstract sockets: no second door there (a process that changes its user is
    /// not metered; stated in the README).
    #[cfg(not(target_os = "linux"))]
    pub fn open_door(&mut self) -> Result<()> {
        Ok(())
    }

    /// Opens the second door (see the module docs). Only for a policy that checks who the peer
    /// is beyond its uid (`run`'s: the run's own processes).
    #[cfg(target_os = "linux")]
    pub fn open_door(&mut self) -> Result<()> {
        use std::os::linux::net::SocketAddrExt;
        let name = sockmeter::config::door_name(&self.path.to_string_lossy());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(&name).context("the door's name")?;
        let door = UnixListener::bind_addr(&addr).context("cannot open the reporter's second door")?;
        door.set_nonblocking(true)
            .context("cannot make the door non-blocking")?;
        self.door = Some(door);
        Ok(())
    }

    /// Changes who may connect from now on.
    pub fn set_policy(&mut self, policy: Policy) {
        self.policy = policy;
    }

    /// What the run's report should say about the connections themselves: those refused, and
    /// those that sent something but never a `hello` (not in the report).
    pub fn notices(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(first) = &self.first_refused {
            let n = self.refused;
            out.push(format!(
                "refused {n} connection{} to the reporter from processes outside this run (first: {first}); nothing they sent is counted",
                if n == 1 { "" } else { "s" }
            ));
        }
        let silent: Vec<&Conn> = self
            .conns()
            .filter(|c| c.account().hello().is_none() && !c.is_empty())
            .collect();
        if !silent.is_empty() {
            let n = silent.len();
            out.push(format!(
                "{n} connection{} sent messages but never a hello; {} not counted",
                if n == 1 { "" } else { "s" },
                if n == 1 { "it is" } else { "they are" }
            ));
        }
        out
    }

    /// The socket's path (what `SOCKMETER_SOCKET` names).
    pub fn socket_path(&self) -> &Path {
        &self.path
    }

    /// Every connection so far, in the order they were accepted.
    pub fn conns(&self) -> impl Iterator<Item = &Conn> {
        self.slots.iter().map(|s| &s.conn)
    }

    /// Warnings produced since the last call (bad messages, accept failures).
    pub fn take_warnings(&mut self) -> Vec<String> {
        std::mem::take(&mut self.warnings)
    }

    /// How many process images the reporter should still wait for: connections that neither
    /// said `bye` nor ended, and processes that said `bye` to exec but whose new image has
    /// not connected yet (while that pid is alive).
    pub fn awaited(&self) -> usize {
        // The last connection that said hello for each pid (one pass, not one per slot).
        let mut last: HashMap<u32, usize> = HashMap::new();
        for (i, s) in self.slots.iter().enumerate() {
            if let Some(h) = s.conn.account().hello() {
                last.insert(h.pid, i);
            }
        }
        let waiting = |(i, s): &(usize, &Slot)| match s.conn.status() {
            Status::Open => true,
            Status::SaidBye(ByeReason::Exec) => s
                .conn
                .account()
                .hello()
                .is_some_and(|h| last.get(&h.pid) == Some(i) && crate::reap::pid_alive(h.pid)),
            _ => false,
        };
        self.slots.iter().enumerate().filter(waiting).count()
    }

    /// When a process that has ended (its pid is gone) last sent data on a connection that is
    /// still open while its shipper still runs: the shipper is still shipping what it counted
    /// before the host ended (a server faster than its shipper leaves a backlog, and the last
    /// pass over a large registry takes a while). None when there is no such connection.
    pub fn draining_since(&self) -> Option<std::time::Instant> {
        self.slots
            .iter()
            .filter(|s| s.stream.is_some() && s.conn.is_open())
            .filter(|s| s.conn.account().hello().is_some_and(|h| !crate::reap::pid_alive(h.pid)))
            // The shipper itself is still there (the peer is another process than the host).
            .filter(|s| {
                let host = s.conn.account().hello().map_or(0, |h| h.pid);
                s.peer_pid != host && crate::reap::pid_alive(s.peer_pid)
            })
            .map(|s| s.last_data.unwrap_or_else(std::time::Instant::now))
            .max()
    }

    /// Makes [`Collector::poll`] return as soon as `fd` is readable (a pidfd: the process
    /// ended), so its caller needs no short timeout to notice; `None` stops that.
    pub fn wake_on(&mut self, fd: Option<std::os::fd::RawFd>) {
        self.wake = fd;
    }

    /// Waits up to `timeout` for activity, then accepts every pending connection and reads
    /// what every ready connection has sent. A signal cuts the wait short.
    pub fn poll(&mut self, timeout: Duration) -> Result<()> {
        self.poll_with(timeout, true)
    }

    fn poll_with(&mut self, timeout: Duration, accept: bool) -> Result<()> {
        let mut fds = Vec::with_capacity(self.slots.len() + 2);
        fds.push(libc::pollfd {
            fd: if accept { self.listener.as_raw_fd() } else { -1 },
            events: libc::POLLIN,
            revents: 0,
        });
        fds.push(libc::pollfd {
            fd: self.door.as_ref().filter(|_| accept).map_or(-1, |d| d.as_raw_fd()),
            events: libc::POLLIN,
            revents: 0,
        });
        let mut which = Vec::with_capacity(self.slots.len());
        for (i, s) in self.slots.iter().enumerate() {
            if let Some(st) = &s.stream {
                fds.push(libc::pollfd {
                    fd: st.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                });
                which.push(i);
            }
        }
        if let Some(w) = self.wake {
            fds.push(libc::pollfd {
                fd: w,
                events: libc::POLLIN,
                revents: 0,
            });
        }
        let ms = timeout.as_millis().min(i32::MAX as u128) as libc::c_int;
        // SAFETY: `fds` is a live, properly initialised array of `fds.len()` pollfd structs
        // that poll only writes `revents` into.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == ErrorKind::Interrupted {
                return Ok(());
            }
            return Err(e).context("poll on the reporter socket failed");
        }
        for (fd, &i) in fds[2..2 + which.len()].iter().zip(&which) {
            if fd.revents != 0 {
                self.read_slot(i);
            }
        }
        if fds[0].revents != 0 {
            self.accept_all(false);
        }
        if fds[1].revents != 0 {
            self.accept_all(true);
        }
        Ok(())
    }

    fn accept_all(&mut self, door: bool) {
        loop {
            let accepted = match (door, &self.door) {
                (true, Some(d)) => d.accept(),
                (true, None) => return,
                (false, _) => self.listener.accept(),
            };
            match accepted {
                Ok((stream, _)) => {
                    let Some(peer_pid) = self.admit(&stream) else {
                        continue;
                    };
                    if let Err(e) = stream.set_nonblocking(true) {
                        self.warn_accept(format!("cannot use a new connection: {e}"));
                        continue;
                    }
                    let id = self.next_id;
                    self.next_id += 1;
                    let mut conn = Conn::with_images(id, self.images.clone());
                    if self.records.is_some() {
                        conn.record();
                    }
                    self.slots.push(Slot {
                        conn,
                        stream: Some(stream),
                        last_data: None,
                        peer_pid,
                    });
                    self.read_slot(self.slots.len() - 1);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.warn_accept(format!("cannot accept a connection from a metered process: {e}"));
                    break;
                }
            }
        }
    }

    /// Checks a new connection against the policy; a refused one is counted (and the first
    /// said) and closed when the caller drops it.
    fn admit(&mut self, stream: &UnixStream) -> Option<u32> {
        let (verdict, pid) = match admit::peer_cred(stream) {
            Ok(cred) => (self.policy.check(&cred), cred.pid),
            Err(e) => (
                Verdict::Refuse(format!("a peer whose credentials cannot be read ({e})")),
                0,
            ),
        };
        let Verdict::Refuse(why) = verdict else {
            return Some(pid);
        };
        self.refused += 1;
        if self.first_refused.is_none() {
            self.warnings.push(format!(
                "refused a connection to the reporter from {why}; it and any more are closed and only counted"
            ));
            self.first_refused = Some(why);
        }
        None
    }

    fn warn_accept(&mut self, text: String) {
        if self.accept_error.as_deref() != Some(text.as_str()) {
            self.warnings.push(text.clone());
            self.accept_error = Some(text);
        }
    }

    fn read_slot(&mut self, i: usize) {
        let slot = &mut self.slots[i];
        let Some(stream) = slot.stream.as_mut() else {
            return;
        };
        let mut buf = [0u8; 64 * 1024];
        let mut budget = READ_BUDGET;
        let ended = loop {
            match stream.read(&mut buf) {
                Ok(0) => break true,
                Ok(n) => {
                    slot.last_data = Some(std::time::Instant::now());
                    self.warnings.extend(slot.conn.feed(&buf[..n]));
                    budget = budget.saturating_sub(n);
                    if budget == 0 {
                        break false;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break false,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                // A reset or other failure ends the connection like an EOF: counts are kept.
                Err(_) => break true,
            }
        };
        if ended {
            slot.stream = None;
            self.warnings.extend(slot.conn.end_of_stream());
        }
        self.keep_records(i);
    }

    /// Stops listening and hands over every connection that said `hello` (a process).
    /// Connections still open stay unfinished (their processes are reported as `running`).
    pub fn finish(self) -> Vec<Conn> {
        self.finish_saying(Some(sockmeter::outbox::END_LINE))
    }

    /// As [`Collector::finish`], saying `last` (or nothing) to each connection still open.
    pub fn finish_saying(mut self, last: Option<&[u8]>) -> Vec<Conn> {
        use std::io::Write;
        for s in &mut self.slots {
            // The run is over: a process still connected (a daemon that outlives the command)
            // goes quiet rather than telling the user's terminal later that the reporter went
            // away. Best effort: a connection that cannot take one line now is closed anyway.
            if let Some(mut st) = s.stream.take() {
                if let Some(line) = last {
                    let _ = st.write(line);
                }
            }
        }
        let _ = std::fs::remove_file(&self.path);
        self.slots
            .into_iter()
            .map(|s| s.conn)
            .filter(|c| c.account().hello().is_some())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::private_dir::PrivateDir;
    use sockmeter::model::{Family, Proto, Role};
    use sockmeter::wire::{encode, Bye, Delta, Hello, Message, Origin, SocketDelta, SocketInfo};
    use std::io::Write;

    fn hello(pid: u32) -> Vec<u8> {
        encode(&Message::Hello(Hello {
            pid,
            ppid: 1,
            exe: "/bin/x".into(),
            argv: vec!["x".into()],
            started_at: 5,
            origin: Origin::Start,
            shim_version: "t".into(),
            interval_ms: 1000,
            image: 0,
        }))
    }

    fn traffic(id: u64, family: Family, tx: u64) -> Vec<u8> {
        let mut v = encode(&Message::Socket(SocketInfo {
            id,
            fd: 4,
            family,
            proto: Proto::Tcp,
            role: Role::Connected,
            local: None,
            peer: Some("10.0.0.1:443".into()),
            peer_name: None,
            module: None,
            via: None,
            label: None,
            opened_at: 6,
            inherited: false,
            adopted: false,
            origin: sockmeter::SocketOrigin::Bsd,
            closed_at: None,
            counts: None,
            kernel_tx_bytes: None,
            kernel_rx_bytes: None,
        }));
        v.extend(encode(&Message::Delta(Delta {
            at: 7,
            sockets: vec![SocketDelta {
                id,
                tx_bytes: tx,
                ..Default::default()
            }],
        })));
        v
    }

    fn bye(reason: ByeReason) -> Vec<u8> {
        encode(&Message::Bye(Bye {
            at: 8,
            reason,
            dropped_events: 0,
            status: None,
        }))
    }

    fn pump(c: &mut Collector, until: impl Fn(&Collector) -> bool) {
        for _ in 0..200 {
            c.poll(Duration::from_millis(10)).unwrap();
            if until(c) {
                return;
            }
        }
        panic!("collector did not get there");
    }

    #[test]
    fn many_connections_hostile_ones_included() {
        let dir = PrivateDir::new().unwrap();
        let mut c = Collector::bind(&dir.path().join("s")).unwrap();
        let me = std::process::id();

        let mut a = UnixStream::connect(c.socket_path()).unwrap();
        a.write_all(&[hello(me), traffic(1, Family::Inet, 100), bye(ByeReason::Exit)].concat())
            .unwrap();
        let mut b = UnixStream::connect(c.socket_path()).unwrap();
        b.write_all(
            &[
                hello(me + 1),
                traffic(1, Family::Inet6, 10),
                b"\xff\xfe not json\n".to_vec(),
                traffic(2, Family::Inet, 5),
            ]
            .concat(),
        )
        .unwrap();
        let silent = UnixStream::connect(c.socket_path()).unwrap();
        pump(&mut c, |c| {
            c.conns().count() == 3 && c.conns().nth(1).unwrap().report(false, "x").totals.tx_bytes == 15
        });

        assert_eq!(
            c.awaited(),
            2,
            "b is open, the silent one too; a said bye (still connected)"
        );
        let w = c.take_warnings();
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].starts_with(&format!("pid {} (connection 2)", me + 1)), "{}", w[0]);
        drop(b);
        drop(silent);
        pump(&mut c, |c| c.awaited() == 0);
        drop(a);

        let conns = c.finish();
        assert_eq!(conns.len(), 2, "the silent connection is not a process");
        let r: Vec<_> = conns.iter().map(|c| c.report(false, "running")).collect();
        assert_eq!((r[0].totals.tx_bytes, r[0].end.as_str()), (100, "exit"));
        assert_eq!((r[1].totals.tx_bytes, r[1].end.as_str()), (15, "lost"));
    }

    #[test]
    fn an_exec_bye_is_awaited_until_the_new_image_connects() {
        let dir = PrivateDir::new().unwrap();
        let mut c = Collector::bind(&dir.path().join("s")).unwrap();
        let me = std::process::id();
        let mut old = UnixStream::connect(c.socket_path()).unwrap();
        old.write_all(&[hello(me), bye(ByeReason::Exec)].concat()).unwrap();
        drop(old);
        pump(&mut c, |c| c.conns().next().is_some_and(|k| !k.is_open()));
        assert_eq!(c.awaited(), 1, "our own pid is alive and has not reconnected");
        let mut new = UnixStream::connect(c.socket_path()).unwrap();
        new.write_all(&[hello(me), bye(ByeReason::Exit)].concat()).unwrap();
        pump(&mut c, |c| c.awaited() == 0);
        let ends: Vec<_> = c.finish().iter().map(|k| k.report(false, "running").end).collect();
        assert_eq!(ends, ["exec", "exit"]);
    }

    #[test]
    fn an_exec_bye_of_a_dead_pid_is_not_awaited() {
        let dir = PrivateDir::new().unwrap();
        let mut c = Collector::bind(&dir.path().join("s")).unwrap();
        let mut old = UnixStream::connect(c.socket_path()).unwrap();
        // pid_max is at most 2^22, so this pid cannot exist.
        old.write_all(&[hello(4_999_999), bye(ByeReason::Exec)].concat())
            .unwrap();
        pump(&mut c, |c| {
            c.conns().count() == 1 && !c.conns().next().unwrap().is_open()
        });
        assert_eq!(c.awaited(), 0);
        let open = UnixStream::connect(c.socket_path()).unwrap();
        let mut w = open.try_clone().unwrap();
        w.write_all(&hello(4_999_998)).unwrap();
        pump(&mut c, |c| {
            c.conns().count() == 2 && c.conns().nth(1).unwrap().account().hello().is_some()
        });
        assert_eq!(c.awaited(), 1);
        let r: Vec<_> = c.finish().iter().map(|k| k.report(false, "running").end).collect();
        assert_eq!(r, ["exec", "running"], "still connected at the end: running");
    }

    #[test]
    fn only_the_policys_processes_are_taken_and_refusals_are_counted() {
        let dir = PrivateDir::new().unwrap();
        let mut c = Collector::bind(&dir.path().join("s")).unwrap();
        let me = std::process::id();
        let mut ours = UnixStream::connect(c.socket_path()).unwrap();
        ours.write_all(&[hello(me), traffic(1, Family::Inet, 100)].concat())
            .unwrap();
        pump(&mut c, |c| c.conns().count() == 1);

        // From now on only the descendants of a sleeping child are the run: this test is not.
        let mut child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        c.set_policy(Policy::DescendantsOf(child.id()));
        let mut strangers = Vec::new();
        for forged in [4242, 4243] {
            let mut s = UnixStream::connect(c.socket_path()).unwrap();
            s.write_all(&[hello(forged), traffic(1, Family::Inet, 1 << 40)].concat())
                .unwrap();
            strangers.push(s);
        }
        pump(&mut c, |c| c.refused == 2);
        for s in &mut strangers {
            let mut buf = [0u8; 1];
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            // Closed by the reporter (with unread data: a reset).
            match std::io::Read::read(s, &mut buf) {
                Ok(0) => {}
                Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
                r => panic!("the refused connection is still open: {r:?}"),
            }
        }
        ours.write_all(&traffic(2, Family::Inet, 5)).unwrap();
        pump(&mut c, |c| {
            c.conns().next().unwrap().report(false, "x").totals.tx_bytes == 105
        });
        let w = c.take_warnings();
        assert_eq!(w.len(), 1, "one warning for the run: {w:?}");
        assert!(
            w[0].starts_with(&format!("refused a connection to the reporter from pid {me} ("))
                && w[0].contains("not a process of this run"),
            "{}",
            w[0]
        );
        let notes = c.notices();
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(
            notes[0].starts_with("refused 2 connections to the reporter from processes outside this run (first: pid "),
            "{}",
            notes[0]
        );
        assert_eq!(c.conns().count(), 1, "a refused connection is no connection");
        drop(ours);
        let conns = c.finish();
        assert_eq!(conns.len(), 1);
        assert!(conns.iter().all(|k| k.account().hello().unwrap().pid == me));
        child.kill().unwrap();
        child.wait().unwrap();
    }

    #[test]
    fn a_connection_without_hello_is_no_process() {
        let dir = PrivateDir::new().unwrap();
        let mut c = Collector::bind(&dir.path().join("s")).unwrap();
        let mut mute = UnixStream::connect(c.socket_path()).unwrap();
        // Counts before any hello are refused, and so is the connection as a process.
        mute.write_all(&traffic(1, Family::Inet, 100)).unwrap();
        drop(mute);
        let empty = UnixStream::connect(c.socket_path()).unwrap();
        drop(empty);
        pump(&mut c, |c| c.conns().count() == 2 && c.awaited() == 0);
        let w = c.take_warnings();
        assert!(
            w.iter()
                .any(|w| w.contains("connection 1 (no hello yet)") && w.contains("before the hello")),
            "{w:?}"
        );
        assert_eq!(
            c.notices(),
            ["1 connection sent messages but never a hello; it is not counted"]
        );
        assert!(c.finish().is_empty());
    }
}
