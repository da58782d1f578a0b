//! `sockmeter __ship`: the shipper process the shim starts in a metered process.
//!
//! The host counts into a shared memory region (`sockmeter::shared::Shared`) and starts this
//! program, once, when it first touches a socket (see the shim's `runtime/helper.rs` for why
//! a process and not a thread). The shipper maps the region and, every tick, ships what changed
//! to the reporter (`SOCKMETER_SOCKET`), exactly as the shim's in-process thread would: the same
//! `Shipper` pass, the same wire messages. It watches the host with a pidfd: when the host has
//! exited, however it exited (even SIGKILL), the counters are still in the region, so the last
//! pass is exact; then `bye`. When the link pipe closes while the host announced an exec, the
//! old image is gone: last pass, `bye` with reason exec. It also answers the embedding API's
//! snapshot requests and copies its lines to in-process subscribers.

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use sockmeter::collect::Shipper;
use sockmeter::config::Config;
use sockmeter::shared::Shared;
use sockmeter::wire::{self, Bye, ByeReason, Hello, Message, Notice, Origin};
use sockmeter::{ProcessAccount, Report};

/// The arguments the shim passes.
#[derive(Debug, clap::Args)]
pub struct ShipArgs {
    /// The region's memfd.
    #[arg(long)]
    pub mem: i32,
    /// The read end of the link pipe.
    #[arg(long)]
    pub link: i32,
    /// The host's pid.
    #[arg(long)]
    pub pid: u32,
    /// The host's parent.
    #[arg(long)]
    pub ppid: u32,
    /// The host's executable.
    #[arg(long)]
    pub exe: String,
    /// `start` or `fork`.
    #[arg(long)]
    pub origin: String,
    /// The host's command line.
    #[arg(last = true)]
    pub argv: Vec<String>,
}

const MAX_TICK_MS: u64 = 100;

fn now_ms() -> u64 {
    sockmeter::time::now_ms()
}

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

fn pidfd_open(pid: u32) -> i32 {
    // SAFETY: the pidfd_open system call; -1 when unsupported.
    unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) as i32 }
}

fn host_alive(pid: u32) -> bool {
    // SAFETY: kill with signal 0 only checks.
    unsafe { libc::kill(pid as libc::pid_t, 0) == 0 || *libc::__errno_location() != libc::ESRCH }
}

fn hello(a: &ShipArgs, interval_ms: u64) -> Hello {
    Hello {
        pid: a.pid,
        ppid: a.ppid,
        exe: a.exe.clone(),
        argv: a.argv.clone(),
        started_at: now_ms(),
        origin: if a.origin == "fork" {
            Origin::Fork
        } else {
            Origin::Start
        },
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
        // One write for the whole batch (a pass over many short-lived sockets would otherwise
        // cost the shipper and the reporter a system call per line).
        let subscribed = self.region.subscribed.load(std::sync::atomic::Ordering::Acquire) != 0;
        let mut lines = Vec::with_capacity(msgs.len() * 96);
        for m in msgs {
            let _ = self.account.apply(&m);
            let start = lines.len();
            wire::encode_into(&m, &mut lines);
            if subscribed {
                let line = &lines[start..];
                self.region.events.push(line.strip_suffix(b"\n").unwrap_or(line));
            }
        }
        if let Some(s) = &mut self.stream {
            if let Err(e) = s.write_all(&lines) {
                say!("sockmeter: the connection to the reporter at SOCKMETER_SOCKET={} failed ({e}); counts are no longer sent", self.path);
                self.stream = None;
            }
        }
    }
}

/// Runs the shipper until the host exits or execs. Exit status 0, or 2 when the region or the
/// reporter cannot be used.
pub fn ship(a: &ShipArgs) -> i32 {
    let (cfg, _) = Config::from_lookup(|k| std::env::var_os(k));
    let Some(region) = map(a.mem) else {
        say!("sockmeter: the shipper for pid {} cannot map the shim's region", a.pid);
        return 2;
    };
    let path = cfg.socket.clone().unwrap_or_default();
    let stream = match UnixStream::connect(&path) {
        Ok(s) => {
            let _ = s.set_write_timeout(Some(Duration::from_secs(2)));
            Some(s)
        }
        Err(e) => {
            say!("sockmeter: cannot reach the reporter at SOCKMETER_SOCKET={path}: {e}; pid {} is still metered, but its counts are not sent", a.pid);
            None
        }
    };
    let h = hello(a, cfg.interval_ms);
    let mut out = Out {
        region,
        stream,
        account: ProcessAccount::new(),
        path,
    };
    out.emit(vec![Message::Hello(h.clone())]);
    let pidfd = pidfd_open(a.pid);
    let mut link = a.link;
    let interval = Duration::from_millis(cfg.interval_ms);
    let tick = cfg.interval_ms.min(MAX_TICK_MS) as i32;
    let mut shipper = Shipper::new();
    let mut last = Instant::now();
    let mut seen = u64::MAX;
    let reason = loop {
        let mut fds = [
            libc::pollfd {
                fd: pidfd,
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: link,
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: polling our own fds (negative ones are ignored by poll).
        unsafe { libc::poll(fds.as_mut_ptr(), 2, tick) };
        let exited = if pidfd >= 0 {
            fds[0].revents != 0
        } else {
            !host_alive(a.pid)
        };
        let mut hup = false;
        if link >= 0 && fds[1].revents != 0 {
            let mut buf = [0u8; 256];
            // SAFETY: reading into a valid buffer from our non-blocking pipe end.
            let n = unsafe { libc::read(link, buf.as_mut_ptr() as *mut libc::c_void, buf.len()) };
            if n == 0 || (n < 0 && fds[1].revents & (libc::POLLHUP | libc::POLLERR) != 0) {
                hup = true;
            }
        }
        if exited {
            break ByeReason::Exit;
        }
        if hup {
            if region.exec_pending.load(std::sync::atomic::Ordering::Acquire) != 0 {
                break ByeReason::Exec;
            }
            // The host closed the link itself: only the pidfd tells the end now.
            // SAFETY: our own fd.
            unsafe { libc::close(link) };
            link = -1;
        }
        let changes = region.changes.load(std::sync::atomic::Ordering::Acquire);
        let asked = region.snapshot.asked.load(std::sync::atomic::Ordering::Acquire);
        let answered = region.snapshot.answered.load(std::sync::atomic::Ordering::Acquire);
        if changes != seen || last.elapsed() >= interval || asked > answered {
            seen = changes;
            last = Instant::now();
            pass(&mut shipper, &mut out);
        }
        if asked > answered {
            let report = out.account.report(cfg.unix_in_totals, "running");
            let json = serde_json::to_vec(&report).unwrap_or_default();
            region.snapshot.answer(asked, &json);
        }
    };
    pass(&mut shipper, &mut out);
    out.emit(vec![Message::Bye(Bye {
        at: now_ms(),
        reason,
        dropped_events: 0,
    })]);
    if let Some(path) = cfg.report_path(a.pid) {
        let per_process = cfg.report.as_deref().is_some_and(|r| r.contains("%p"));
        let report = Report::new(
            Vec::new(),
            None,
            cfg.unix_in_totals,
            vec![out.account.report(cfg.unix_in_totals, "exit")],
        );
        let json = serde_json::to_string(&report).unwrap_or_default();
        let mut opts = std::fs::OpenOptions::new();
        if per_process {
            opts.write(true).create(true).truncate(true);
        } else {
            opts.append(true).create(true);
        }
        if let Err(e) = opts
            .open(&path)
            .and_then(|mut f| f.write_all(format!("{json}\n").as_bytes()))
        {
            say!("sockmeter: cannot write SOCKMETER_REPORT={path}: {e}");
        }
    }
    0
}

fn pass(shipper: &mut Shipper, out: &mut Out) {
    let region = out.region;
    shipper.pass_in_batches(&region.registry, &|id| region.names.name(id), now_ms(), &mut |batch| {
        out.emit(batch)
    });
    let text = region.notices.take();
    let notices: Vec<Message> = String::from_utf8_lossy(&text)
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(kind, message)| {
            Message::Notice(Notice {
                kind: kind.to_string(),
                message: message.to_string(),
            })
        })
        .collect();
    if !notices.is_empty() {
        out.emit(notices);
    }
}
