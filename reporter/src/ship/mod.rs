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
//!
//! Forked children of the host do not start shippers of their own: they hand their regions
//! over the adoption channel (`adopt.rs`), and this shipper serves each as one more [`Host`],
//! on a reporter connection of its own while it lives (kept for the next host after: `pool.rs`).
//! It runs until every host has ended and the channel has ended too (no process left that could
//! still hand one over).
//!
//! Each round of the loop (a poll, then every host's end or tick, then the hand-overs) queues
//! what it has to say and writes it at the end, one write per host: a short-lived child's hello,
//! first pass and `bye` reach the reporter in one or two writes, not one each, and each write is
//! a wake-up of the reporter on a machine the host shares with it.

mod adopt;
mod host;
mod pool;
mod region;

use sockmeter::config::Config;
use sockmeter::wire::Origin;

use host::{Handover, Host, Who};
use pool::Pool;
use region::Regions;

/// The arguments the shim passes.
#[derive(Debug, clap::Args)]
pub struct ShipArgs {
    /// The region's memfd.
    #[arg(long)]
    pub mem: i32,
    /// Where the region starts in it (0, or a slot of a nursery).
    #[arg(long, default_value_t = 0)]
    pub offset: usize,
    /// The read end of the link pipe.
    #[arg(long)]
    pub link: i32,
    /// The shipper's end of the adoption channel (-1: none).
    #[arg(long, default_value_t = -1, allow_hyphen_values = true)]
    pub adopt: i32,
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

/// Runs the shipper until its hosts have ended. Exit status 0, or 2 when the first host's
/// region cannot be used.
pub fn ship(a: &ShipArgs) -> i32 {
    let (cfg, _) = Config::from_lookup(|k| std::env::var_os(k));
    raise_open_files();
    let who = Who {
        pid: a.pid,
        ppid: a.ppid,
        exe: a.exe.clone(),
        argv: a.argv.clone(),
        origin: if a.origin == "fork" {
            Origin::Fork
        } else {
            Origin::Start
        },
    };
    let mut pool = Pool::default();
    let mut regions = Regions::default();
    let handed = Handover {
        mem: a.mem,
        offset: a.offset,
        link: a.link,
        pidfd: crate::reap::pidfd_open(a.pid),
        silent: false,
    };
    let Some(first) = Host::start(who, handed, &cfg, &mut pool, &mut regions) else {
        say!("sockmeter: the shipper for pid {} cannot map the shim's region", a.pid);
        return 2;
    };
    let mut hosts = vec![first];
    let mut chan = a.adopt;
    let tick = host::tick(&cfg).as_millis() as i32;
    // Set once the reporter is gone or has ended the run: later hand-overs would find nobody
    // to ship to either.
    let mut quiet = false;
    let mut released = false;
    // Until every host has ended and the reporter has all of it, and no process is left that
    // could still hand one over. A host whose reporter ended the run (or went away) is left to
    // itself: it counts on, quietly, with nobody to ship to.
    while !hosts.is_empty() || chan >= 0 {
        let mut fds = Vec::with_capacity(1 + 3 * hosts.len());
        fds.push(libc::pollfd {
            fd: chan,
            events: libc::POLLIN,
            revents: 0,
        });
        for h in &hosts {
            fds.extend(h.poll_fds());
        }
        let kept = fds.len();
        fds.extend(pool.poll_fds());
        // SAFETY: polling our own fds (negative ones are ignored by poll).
        unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, tick) };
        pool.serve(&fds[kept..]);
        // Hosts that ended get their last pass and bye; the others a tick.
        let polled = &fds[1..];
        for (k, h) in hosts.iter_mut().enumerate() {
            let Some(p) = polled.get(3 * k..3 * k + 3) else { break };
            h.serve(p);
            match h.ended(p) {
                Some(reason) => h.end(reason, &mut pool),
                None => h.tick(&cfg, &mut pool),
            }
        }
        // One write per host for everything this round queued (its pass, its bye).
        for h in &mut hosts {
            h.flush();
        }
        // Every host has ended and some wait for a reporter that is away: let go of the
        // terminal the shipper inherited, so that nobody waiting for it to close (a shell, a
        // pipe's reader) waits for the reporter too.
        if !released
            && !hosts.is_empty()
            && hosts.iter().all(Host::has_ended)
            && hosts.iter().any(Host::waiting_for_reporter)
        {
            release_stdio();
            released = true;
        }
        let mut i = 0;
        while i < hosts.len() {
            if hosts[i].done() || !hosts[i].heard() {
                quiet |= !hosts[i].heard();
                let mut done = hosts.remove(i);
                if let Some(s) = done.take_connection() {
                    pool.put(s);
                }
                done.finish(&cfg);
            } else {
                i += 1;
            }
        }
        // Hand-overs last: a host that ended this round has left its connection in the pool by
        // now, for the child that follows it (a forking server's next child is often waiting
        // in the channel by the time its predecessor's end is seen).
        let known = hosts.len();
        let mut woken = false;
        if chan >= 0 && fds[0].revents != 0 {
            match take_adoptees(chan, &mut hosts, &cfg, &mut pool, &mut regions) {
                Taken::More { woken: w } => woken = w,
                Taken::Ended => {
                    // SAFETY: our own fd.
                    unsafe { libc::close(chan) };
                    chan = -1;
                }
            }
        }
        // A new host that speaks at once (not handed over silently) says its hello with its
        // first pass, in one write. A silent one waits for a later round (`Host::start`). A
        // wake-up read on the channel (a snapshot asked by a host whose hand-over may have been
        // read only now) is answered in this round: every host gets its tick again.
        for (k, h) in hosts.iter_mut().enumerate() {
            if woken || (k >= known && !h.is_silent()) {
                h.tick(&cfg, &mut pool);
                h.flush();
            }
        }
        if hosts.is_empty() && chan >= 0 && quiet {
            break;
        }
    }
    0
}

/// Points stdin, stdout and stderr at /dev/null.
fn release_stdio() {
    // SAFETY: opening /dev/null and duplicating it over our own standard fds.
    unsafe {
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC);
        if null >= 0 {
            for fd in 0..3 {
                libc::dup2(null, fd);
            }
            libc::close(null);
        }
    }
}

/// Each adopted child costs three fds here (its pidfd, its link, its reporter connection), and
/// fds that cannot be received are dropped by the kernel with the message: take the hard limit.
fn raise_open_files() {
    // SAFETY: getrlimit/setrlimit with a valid struct.
    unsafe {
        let mut rl: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) == 0 && rl.rlim_cur < rl.rlim_max {
            rl.rlim_cur = rl.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &rl);
        }
    }
}

/// What reading the adoption channel gave.
enum Taken {
    /// It is still open; `woken`: a host asked to be woken (`adopt::Received::Wake`).
    More { woken: bool },
    /// It ended: no process can hand a host over any more.
    Ended,
}

/// Reads every queued adoption message and starts a host for each.
fn take_adoptees(chan: i32, hosts: &mut Vec<Host>, cfg: &Config, pool: &mut Pool, regions: &mut Regions) -> Taken {
    let mut woken = false;
    loop {
        match adopt::receive(chan) {
            adopt::Received::Adoptee(c) => {
                let who = Who {
                    pid: c.pid,
                    ppid: c.ppid,
                    exe: c.exe,
                    argv: c.argv,
                    origin: Origin::Fork,
                };
                let pid = who.pid;
                let handed = Handover {
                    mem: c.mem,
                    offset: c.offset,
                    link: c.link,
                    pidfd: c.pidfd,
                    silent: c.silent,
                };
                match Host::start(who, handed, cfg, pool, regions) {
                    Some(h) => hosts.push(h),
                    None => {
                        say!("sockmeter: the shipper cannot map the region of forked pid {pid}; its counts are lost")
                    }
                }
            }
            adopt::Received::Wake => woken = true,
            adopt::Received::Malformed => {
                say!("sockmeter: the shipper could not read a forked child's hand-over (out of fds?); that child's counts are lost")
            }
            adopt::Received::Nothing => return Taken::More { woken },
            adopt::Received::Ended => return Taken::Ended,
        }
    }
}
