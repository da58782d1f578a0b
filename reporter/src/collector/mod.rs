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
    /// The slots whose connection is open, in order ([`Collector::refresh_open`]): a wait polls
    /// these, not every slot. A forking server's reporter keeps a slot per child for the
    /// report, and going through all of them at each wake-up made each child cost more than
    /// the one before (30,000 children: 62 → 98 µs of the reporter's CPU per child).
    open: Vec<usize>,
    /// How many slots [`Collector::refresh_open`] has looked at.
    looked: usize,
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
            open: Vec::new(),
            looked: 0,
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

    /// Brings [`Collector::open`] up to date: slots whose connection ended or moved on (to the
    /// next image's slot) leave it, slots added since the last look join it. Streams change only
    /// in slots that were open or are new.
    fn refresh_open(&mut self) {
        let slots = &self.slots;
        self.open.retain(|&i| slots[i].stream.is_some());
        self.open
            .extend((self.looked..slots.len()).filter(|&i| slots[i].stream.is_some()));
        self.looked = slots.len();
    }

    fn poll_with(&mut self, timeout: Duration, accept: bool) -> Result<()> {
        self.refresh_open();
        let mut fds = Vec::with_capacity(self.open.len() + 3);
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
        let which = self.open.clone();
        for &i in &which {
            fds.push(libc::pollfd {
                fd: self.slots[i].stream.as_ref().map_or(-1, |st| st.as_raw_fd()),
                events: libc::POLLIN,
                revents: 0,
            });
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
            Ok(cred) => (self.policy.check_pinned(&cred, &admit::Pinned::of(stream)), cred.pid),
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
        let Some(mut stream) = self.slots[i].stream.take() else {
            return;
        };
        // The slot whose image the connection carries now (a shipper sends its hosts' images
        // in turn on one connection: see [`Collector::next_image`]).
        let mut cur = i;
        let mut buf = [0u8; 64 * 1024];
        let mut budget = READ_BUDGET;
        let ended = loop {
            match stream.read(&mut buf) {
                Ok(0) => break true,
                Ok(n) => {
                    let mut data = &buf[..n];
                    loop {
                        let slot = &mut self.slots[cur];
                        slot.last_data = Some(std::time::Instant::now());
                        let (warnings, used) = slot.conn.feed_image(data);
                        self.warnings.extend(warnings);
                        data = &data[used..];
                        if data.is_empty() {
                            break;
                        }
                        cur = self.next_image(cur);
                    }
                    budget = budget.saturating_sub(n);
                    // A read that did not fill the buffer took everything queued: what comes
                    // later, the next poll reports (a read to EAGAIN would be one more system
                    // call per wake-up, and a shipper's child is often one wake-up).
                    if budget == 0 || n < buf.len() {
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
            self.warnings.extend(self.slots[cur].conn.end_of_stream());
        } else {
            self.slots[cur].stream = Some(stream);
        }
        self.keep_records(cur);
    }

    /// The image on slot `cur`'s connection said `bye` and the connection goes on with another
    /// (a shipper's next host: it keeps a connection whose host ended for the next one, rather
    /// than a connection per forked child). The old image ends as if its connection had
    /// closed; the new one is a connection of its own in every report (same peer, a new id).
    /// Returns the new image's slot.
    fn next_image(&mut self, cur: usize) -> usize {
        let warnings = self.slots[cur].conn.end_of_stream();
        self.warnings.extend(warnings);
        self.keep_records(cur);
        let id = self.next_id;
        self.next_id += 1;
        let mut conn = Conn::with_images(id, self.images.clone());
        if self.records.is_some() {
            conn.record();
        }
        let peer_pid = self.slots[cur].peer_pid;
        self.slots.push(Slot {
            conn,
            stream: None,
            last_data: None,
            peer_pid,
        });
        self.slots.len() - 1
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
mod tests;
