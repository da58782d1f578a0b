//! One metered process image as the shipper serves it: its region, its reporter connection
//! (its own `hello`), its exit (a pidfd) and its exec (its link pipe closing while
//! `exec_pending` is set), its passes, its snapshot answers and, at the end, `bye` and its
//! `SOCKMETER_REPORT` file. The first host is the process that started the shipper; forked
//! children adopted through the adoption channel (`adopt.rs`) are hosts too.

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use sockmeter::collect::{encode_batch, Shipper};
use sockmeter::config::Config;
use sockmeter::shared::Shared;
use sockmeter::time::now_ms;
use sockmeter::wire::{Bye, ByeReason, Hello, Message, Origin};
use sockmeter::ProcessAccount;

fn map(fd: i32) -> Option<&'static Shared> {
    let size = std::mem::size_of::<Shared>();
    // SAFETY: fstat with a valid out-pointer.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(fd, &mut st) } != 0 || (st.st_size as usize) < size {
        return None;
    }
    // SAFETY: mapping the shim's region read-write and shared, at its full size.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            size,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            fd,
            0,
        )
    };
    // SAFETY: our copy of the memfd; the mapping keeps the memory.
    unsafe { libc::close(fd) };
    if p == libc::MAP_FAILED {
        return None;
    }
    // SAFETY: a mapping of exactly one `Shared`, made by the shim, never unmapped; every field
    // is atomics, so sharing it with the host is sound.
    let s: &'static Shared = unsafe { &*(p as *const Shared) };
    s.is_valid().then_some(s)
}

/// Who a host is (from the shim's arguments, or from an adoption message).
pub struct Who {
    /// Its pid.
    pub pid: u32,
    /// Its parent.
    pub ppid: u32,
    /// Its executable.
    pub exe: String,
    /// Its command line.
    pub argv: Vec<String>,
    /// Started with the program, or forked.
    pub origin: Origin,
}

fn hello(w: &Who, region: &Shared, interval_ms: u64) -> Hello {
    // When the image started, as the shim recorded it (its load, or the fork), not now: the
    // shipper starts after the host's first socket.
    let started_at = match region.started_ms.load(Ordering::Relaxed) {
        0 => now_ms(),
        t => t,
    };
    Hello {
        pid: w.pid,
        ppid: w.ppid,
        exe: w.exe.clone(),
        argv: w.argv.clone(),
        started_at,
        origin: w.origin,
        shim_version: env!("CARGO_PKG_VERSION").to_string(),
        interval_ms,
    }
}

struct Out {
    region: &'static Shared,
    stream: Option<UnixStream>,
    account: ProcessAccount,
    path: String,
}

impl Out {
    fn emit(&mut self, msgs: Vec<Message>) {
        let region = self.region;
        let subscribed = region.subscribed.load(Ordering::Acquire) != 0;
        let mut lines = Vec::new();
        encode_batch(&mut self.account, msgs, &mut lines, |line| {
            if subscribed {
                region.events.push(line.strip_suffix(b"\n").unwrap_or(line));
            }
        });
        if let Some(s) = &mut self.stream {
            if let Err(e) = s.write_all(&lines) {
                say!("sockmeter: the connection to the reporter at SOCKMETER_SOCKET={} failed ({e}); counts are no longer sent", self.path);
                self.stream = None;
            }
        }
    }
}

/// A host being shipped.
pub struct Host {
    pid: u32,
    out: Out,
    pidfd: i32,
    link: i32,
    shipper: Shipper,
    last: Instant,
    seen: u64,
}

impl Host {
    /// Maps the region (`mem`, which this closes), connects to the reporter and says hello.
    /// None when the region cannot be mapped (`mem`, `link` and `pidfd` are closed then).
    pub fn start(who: Who, mem: i32, link: i32, pidfd: i32, cfg: &Config) -> Option<Host> {
        let Some(region) = map(mem) else {
            for fd in [link, pidfd] {
                if fd >= 0 {
                    // SAFETY: fds we own.
                    unsafe { libc::close(fd) };
                }
            }
            return None;
        };
        let path = cfg.socket.clone().unwrap_or_default();
        let stream = match UnixStream::connect(&path) {
            Ok(s) => {
                let _ = s.set_write_timeout(Some(Duration::from_secs(2)));
                Some(s)
            }
            Err(e) => {
                say!("sockmeter: cannot reach the reporter at SOCKMETER_SOCKET={path}: {e}; pid {} is still metered, but its counts are not sent", who.pid);
                None
            }
        };
        let mut out = Out {
            region,
            stream,
            account: ProcessAccount::new(),
            path,
        };
        out.emit(vec![Message::Hello(hello(&who, region, cfg.interval_ms))]);
        Some(Host {
            pid: who.pid,
            out,
            pidfd,
            link,
            shipper: Shipper::new(),
            last: Instant::now(),
            seen: u64::MAX,
        })
    }

    /// The fds to poll for this host: its pidfd and its link (negative ones are ignored).
    pub fn poll_fds(&self) -> [libc::pollfd; 2] {
        let p = |fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        [p(self.pidfd), p(self.link)]
    }

    /// After a poll, with this host's entries: how it ended, if it did.
    pub fn ended(&mut self, polled: &[libc::pollfd]) -> Option<ByeReason> {
        let exited = if self.pidfd >= 0 {
            polled[0].revents != 0
        } else {
            !crate::reap::pid_alive(self.pid)
        };
        if exited {
            return Some(ByeReason::Exit);
        }
        if self.link >= 0 && polled[1].revents != 0 {
            let mut buf = [0u8; 256];
            // SAFETY: reading into a valid buffer from our non-blocking pipe end.
            let n = unsafe { libc::read(self.link, buf.as_mut_ptr() as *mut libc::c_void, buf.len()) };
            if n == 0 || (n < 0 && polled[1].revents & (libc::POLLHUP | libc::POLLERR) != 0) {
                if self.out.region.exec_pending.load(Ordering::Acquire) != 0 {
                    return Some(ByeReason::Exec);
                }
                // The host closed the link itself: only the pidfd tells the end now.
                // SAFETY: our own fd.
                unsafe { libc::close(self.link) };
                self.link = -1;
            }
        }
        None
    }

    /// A pass when something changed, the interval passed or a snapshot was asked for; then
    /// the snapshot's answer.
    pub fn tick(&mut self, cfg: &Config) {
        let region = self.out.region;
        let changes = region.changes.load(Ordering::Acquire);
        let asked = region.snapshot.asked.load(Ordering::Acquire);
        let answered = region.snapshot.answered.load(Ordering::Acquire);
        if changes != self.seen || self.last.elapsed() >= Duration::from_millis(cfg.interval_ms) || asked > answered {
            self.seen = changes;
            self.last = Instant::now();
            self.pass();
        }
        if asked > answered {
            let report = self.out.account.report(cfg.unix_in_totals, "running");
            let json = serde_json::to_vec(&report).unwrap_or_default();
            region.snapshot.answer(asked, &json);
        }
    }

    /// The last pass, `bye`, and the report file.
    pub fn finish(mut self, reason: ByeReason, cfg: &Config) {
        self.pass();
        self.out.emit(vec![Message::Bye(Bye {
            at: now_ms(),
            reason,
            dropped_events: 0,
        })]);
        for fd in [self.pidfd, self.link] {
            if fd >= 0 {
                // SAFETY: fds we own.
                unsafe { libc::close(fd) };
            }
        }
        if let Some((path, Err(e))) = cfg.write_report(self.pid, self.out.account.report(cfg.unix_in_totals, "exit")) {
            say!("sockmeter: cannot write SOCKMETER_REPORT={path}: {e}");
        }
    }

    fn pass(&mut self) {
        let region = self.out.region;
        let out = &mut self.out;
        self.shipper
            .pass_in_batches(&region.registry, &|id| region.names.name(id), now_ms(), &mut |batch| {
                out.emit(batch)
            });
        let notices = region.take_notices();
        if !notices.is_empty() {
            self.out.emit(notices);
        }
    }
}
