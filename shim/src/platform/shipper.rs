//! Linux mechanisms of shipper mode (see `runtime/helper.rs`): the shared region (a memfd),
//! the link pipe, starting the shipper as a clone child, and handing a forked child's region to
//! the shipper that already exists (a socketpair carrying fds with `SCM_RIGHTS`, and a pidfd).

use std::ffi::{c_void, CStr};

use libc::{c_char, c_int};

use super::linux::{errno, CLOSE_RANGE_CLOEXEC};

/// Creates a shared region: a memfd called `name` of `size` bytes, mapped shared. Returns the memfd (moved
/// to an fd number of at least `high`, close-on-exec) and the mapping.
pub fn create_region(name: &CStr, size: usize, high: c_int) -> Option<(c_int, *mut c_void)> {
    // SAFETY: plain system calls on our own fds; every failure path closes what it opened.
    unsafe {
        let fd = libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC);
        if fd < 0 {
            return None;
        }
        let fd = move_high(fd, high);
        if libc::ftruncate(fd, size as libc::off_t) != 0 {
            libc::close(fd);
            return None;
        }
        let p = libc::mmap(
            std::ptr::null_mut(),
            size,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            fd,
            0,
        );
        if p == libc::MAP_FAILED {
            libc::close(fd);
            return None;
        }
        Some((fd, p))
    }
}

/// The link to a new shipper: a Unix stream socketpair (so that a write to a shipper that is
/// gone can be made without SIGPIPE), both ends close-on-exec and non-blocking, each moved to an
/// fd number of at least `high`. Returns (the shipper's end, the host's end). The shipper sees
/// the host's end close when the host execs (close-on-exec) or exits.
pub fn link_pair(high: c_int) -> Option<(c_int, c_int)> {
    let mut fds = [0 as c_int; 2];
    // SAFETY: plain system calls on our own fds.
    unsafe {
        if libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            0,
            fds.as_mut_ptr(),
        ) != 0
        {
            return None;
        }
        let w = libc::fcntl(fds[1], libc::F_DUPFD_CLOEXEC, high);
        if w < 0 {
            libc::close(fds[0]);
            libc::close(fds[1]);
            return None;
        }
        libc::close(fds[1]);
        let r = libc::fcntl(fds[0], libc::F_DUPFD_CLOEXEC, high);
        libc::close(fds[0]);
        if r < 0 {
            libc::close(w);
            return None;
        }
        Some((r, w))
    }
}

/// The link of a forked child handed to a running shipper: a pipe, close-on-exec, whose write
/// end (the host's, moved to at least `high`) the shipper sees close when the child execs or
/// exits. Nothing is written to it: the child wakes its shipper through the adoption channel
/// (a pipe would raise SIGPIPE in a host whose shipper is gone). The read end is sent and
/// closed at once, so it is not moved. Half the cost of a socketpair (a pair made and closed:
/// 5.0 against 9.7 µs, `scripts/bench.d/handover_cost.c`). Returns (the shipper's end, the
/// host's end).
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
pub fn exit_link(high: c_int) -> Option<(c_int, c_int)> {
    let mut fds = [0 as c_int; 2];
    // SAFETY: plain system calls on our own fds.
    unsafe {
        if libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) != 0 {
            return None;
        }
        let w = libc::fcntl(fds[1], libc::F_DUPFD_CLOEXEC, high);
        libc::close(fds[1]);
        if w < 0 {
            libc::close(fds[0]);
            return None;
        }
        Some((fds[0], w))
    }
}

/// Wakes the shipper with one byte on the host's end of the link: never blocks, and never
/// raises SIGPIPE (the shipper may be gone).
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
pub fn poke(fd: c_int) {
    // SAFETY: sending one byte from a valid buffer on our own socket.
    unsafe {
        libc::send(
            fd,
            b"!".as_ptr() as *const c_void,
            1,
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
        )
    };
}

/// What the shipper's two spawning halves need (they run on their own stacks in our memory,
/// before exec).
struct SpawnArgs {
    exe: *const c_char,
    argv: *const *const c_char,
    envp: *const *const c_char,
    keep: [c_int; 3],
    /// The shipper's stack (it grows down from here).
    stack_top: *mut c_void,
    /// The exec's errno if it failed (written by the shipper's half before it exits).
    errno: c_int,
    /// The clone's errno if the middle could not start the shipper.
    clone_errno: c_int,
}

/// The middle of the double fork: starts the shipper as its own child and exits at once. The
/// host waits for this process (a clone child with no exit signal, so the host's own `wait()`
/// never sees it); its child, orphaned at birth, is re-parented to the nearest child subreaper
/// (`sockmeter run`) or to init, never to the host.
extern "C" fn spawn_middle(arg: *mut c_void) -> c_int {
    // SAFETY: `arg` is the SpawnArgs of `spawn_shipper`, alive while the host waits (vfork);
    // only the clone wrapper and raw system calls run here.
    unsafe {
        let a = &mut *(arg as *mut SpawnArgs);
        // CLONE_VFORK: this process resumes once the shipper has exec'd (or failed to), so the
        // exec's errno is in `a` before the host reads it. The shipper's exit signal would go to
        // this process, which is gone by then: its new parent reaps it.
        let pid = libc::clone(
            spawn_child,
            a.stack_top,
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
            arg,
        );
        if pid < 0 {
            a.clone_errno = *libc::__errno_location();
        }
        libc::syscall(libc::SYS_exit, 0);
    }
    0
}

extern "C" fn spawn_child(arg: *mut c_void) -> c_int {
    // SAFETY: `arg` is the SpawnArgs of `spawn_shipper`, alive while the parent waits (vfork).
    // Only async-signal-safe system calls happen here; errno is written in our shared memory
    // but the host restores its own errno afterwards.
    unsafe {
        let a = &mut *(arg as *mut SpawnArgs);
        // The shipper must hold none of the host's fds: a socket or pipe end it kept open would
        // outlive the host's close (no FIN for the peer, no EOF for a reader). Everything but
        // stderr and the fds it needs is closed at exec; stdin and stdout become /dev/null.
        // The kept fds, sorted (an unused slot is -1 and keeps nothing).
        let mut keep = a.keep;
        keep.sort_unstable();
        let cloexec = CLOSE_RANGE_CLOEXEC as libc::c_uint;
        let mut first: libc::c_uint = 3;
        for k in keep {
            if k < 0 {
                continue;
            }
            let k = k as libc::c_uint;
            if first < k {
                libc::syscall(libc::SYS_close_range, first, k - 1, cloexec);
            }
            first = first.max(k + 1);
        }
        libc::syscall(libc::SYS_close_range, first, libc::c_uint::MAX, cloexec);
        for fd in a.keep {
            if fd >= 0 {
                libc::syscall(libc::SYS_fcntl, fd, libc::F_SETFD, 0);
            }
        }
        let null = libc::syscall(libc::SYS_openat, libc::AT_FDCWD, c"/dev/null".as_ptr(), libc::O_RDWR) as c_int;
        if null >= 0 {
            libc::syscall(libc::SYS_dup3, null, 0, 0);
            libc::syscall(libc::SYS_dup3, null, 1, 0);
            if null > 2 {
                libc::syscall(libc::SYS_close, null);
            }
        }
        // A session of its own: the terminal's Ctrl-C, Ctrl-\ and hang-up go to the host's
        // process group, not to the shipper, which must live on to ship the host's last counts
        // (it ends by itself once its hosts have ended). And none of the host's blocked signals.
        libc::syscall(libc::SYS_setsid);
        let empty: [u64; 1] = [0];
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            empty.as_ptr(),
            std::ptr::null_mut::<u64>(),
            std::mem::size_of_val(&empty),
        );
        libc::syscall(libc::SYS_execve, a.exe, a.argv, a.envp);
        a.errno = *libc::__errno_location();
        libc::syscall(libc::SYS_exit, 127);
    }
    127
}

/// Starts the shipper: `exe` with `args`, keeping fds `keep` open across the exec.
///
/// The shipper is never the host's child, in this image or any later one: a *double fork*.
/// The host starts a middle process (a clone child with no exit signal: no SIGCHLD, invisible
/// to `wait()`), which starts the shipper and exits; the host collects the middle at once with
/// `waitpid(pid, __WCLONE)`, which touches no other child. The orphaned shipper is re-parented
/// to the nearest child subreaper (`sockmeter run` is one, and reaps it) or to init. As with
/// posix_spawn, the host is suspended only until the shipper has exec'd. A host that is itself
/// a child subreaper would be given the shipper: it stops being one for the moment of the spawn.
pub fn spawn_shipper(exe: &CStr, args: &[std::ffi::CString], keep: [c_int; 3]) -> Result<(), c_int> {
    extern "C" {
        static environ: *const *const c_char;
    }
    let mut argv: Vec<*const c_char> = args.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    // The shipper's environment: the host's, without LD_PRELOAD (the shipper must not load the
    // shim: it would meter itself and start a shipper of its own), with SOCKMETER_DISABLE, and
    // with the SOCKMETER_* variables as the process started with them (the shim's
    // configuration, which a host that changed its environment no longer carries).
    let disable = c"SOCKMETER_DISABLE=1";
    let mut envp: Vec<*const c_char> = vec![disable.as_ptr()];
    let start = super::start_env();
    let mut at = 0;
    for entry in start.split(|b| *b == 0) {
        if entry.starts_with(b"SOCKMETER_") && !entry.starts_with(b"SOCKMETER_DISABLE=") {
            // Each entry of `start_env` is NUL-terminated, and the buffer lives for the process.
            envp.push(start[at..].as_ptr() as *const c_char);
        }
        at += entry.len() + 1;
    }
    // SAFETY: `environ` is the process's NULL-terminated array of NUL-terminated strings.
    unsafe {
        let mut p = environ;
        while !p.is_null() && !(*p).is_null() {
            let entry = CStr::from_ptr(*p).to_bytes();
            if !entry.starts_with(b"LD_PRELOAD=") && !entry.starts_with(b"SOCKMETER_") {
                envp.push(*p);
            }
            p = p.add(1);
        }
    }
    envp.push(std::ptr::null());
    const STACK: usize = 64 * 1024;
    const MIDDLE_STACK: usize = 16 * 1024;
    let mut stack = vec![0u8; STACK];
    let mut middle_stack = vec![0u8; MIDDLE_STACK];
    let mut a = SpawnArgs {
        exe: exe.as_ptr(),
        argv: argv.as_ptr(),
        envp: envp.as_ptr(),
        keep,
        // SAFETY: one past the end of `stack`, which outlives both clones.
        stack_top: unsafe { stack.as_mut_ptr().add(STACK) } as *mut c_void,
        errno: 0,
        clone_errno: 0,
    };
    let subreaper = SubreaperPause::begin();
    // SAFETY: the middle runs `spawn_middle` on `middle_stack` (top of it; it grows down) with
    // CLONE_VM | CLONE_VFORK, so we are suspended until it exits, and `a`, `argv`, `envp` and
    // both stacks outlive it and the shipper's exec. No exit signal (the flags' low byte is 0).
    let pid = unsafe {
        libc::clone(
            spawn_middle,
            middle_stack.as_mut_ptr().add(MIDDLE_STACK) as *mut c_void,
            libc::CLONE_VM | libc::CLONE_VFORK,
            &mut a as *mut SpawnArgs as *mut c_void,
        )
    };
    if pid < 0 {
        let e = errno();
        subreaper.end();
        return Err(e);
    }
    // The middle has exited (a vfork parent resumes at the child's exit); collect it: only this
    // pid, a clone child, so none of the host's own children is ever touched.
    // SAFETY: waiting for our own clone child.
    while unsafe { libc::waitpid(pid, std::ptr::null_mut(), libc::__WCLONE) } < 0 && errno() == libc::EINTR {}
    subreaper.end();
    match (a.clone_errno, a.errno) {
        (0, 0) => Ok(()),
        (0, e) | (e, _) => Err(e),
    }
}

/// A host that is a child subreaper would inherit the orphaned shipper: it stops being one
/// while the middle process exits (the re-parenting happens then), and is one again after.
struct SubreaperPause(bool);

impl SubreaperPause {
    fn begin() -> SubreaperPause {
        let mut on: c_int = 0;
        // SAFETY: PR_GET_CHILD_SUBREAPER writes one int through the pointer.
        let was = unsafe { libc::prctl(libc::PR_GET_CHILD_SUBREAPER, &mut on as *mut c_int) } == 0 && on != 0;
        if was {
            // SAFETY: PR_SET_CHILD_SUBREAPER takes one integer.
            unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 0 as libc::c_ulong, 0, 0, 0) };
        }
        SubreaperPause(was)
    }

    fn end(self) {
        if self.0 {
            // SAFETY: as in `begin`.
            unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1 as libc::c_ulong, 0, 0, 0) };
        }
    }
}

/// Moves `fd` to a close-on-exec fd number of at least `high` (keeps it where it is if that
/// fails). Returns the fd to use.
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
pub fn move_high(fd: c_int, high: c_int) -> c_int {
    // SAFETY: duplicating and closing our own fd.
    unsafe {
        let moved = libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, high);
        if moved < 0 {
            return fd;
        }
        libc::close(fd);
        moved
    }
}

/// The adoption channel: a Unix `SOCK_SEQPACKET` socketpair, both ends close-on-exec and at fd
/// numbers of at least `high`. Returns (the host's end, the shipper's end). Forked children
/// inherit the host's end and hand their regions to the shipper through it.
pub fn adoption_pair(high: c_int) -> Option<(c_int, c_int)> {
    let mut fds = [0 as c_int; 2];
    // SAFETY: socketpair into a valid array.
    if unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    } != 0
    {
        return None;
    }
    Some((move_high(fds[0], high), move_high(fds[1], high)))
}

/// A pidfd of the calling process, whose pid is `pid` (close-on-exec), or -1.
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
pub fn pidfd_of(pid: u32) -> c_int {
    // SAFETY: pidfd_open of our own pid; -1 when the kernel does not have it.
    unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) as c_int }
}

/// Sends one message, `parts` one after another, with `fds` attached (`SCM_RIGHTS`) on
/// `sock`, without blocking and without SIGPIPE. True when the whole message was queued: the
/// receiver then owns copies of the fds.
#[cfg_attr(target_os = "linux", link_section = ".text.hot.sockmeter")]
pub fn send_with_fds(sock: c_int, parts: &[&[u8]], fds: &[c_int]) -> bool {
    const MAX_FDS: usize = 4;
    const MAX_PARTS: usize = 4;
    if fds.len() > MAX_FDS || parts.len() > MAX_PARTS {
        return false;
    }
    let mut iov = [libc::iovec {
        iov_base: std::ptr::null_mut(),
        iov_len: 0,
    }; MAX_PARTS];
    for (v, p) in iov.iter_mut().zip(parts) {
        v.iov_base = p.as_ptr() as *mut c_void;
        v.iov_len = p.len();
    }
    let total: usize = parts.iter().map(|p| p.len()).sum();
    // Room for the control message, aligned as cmsghdr needs.
    let mut control = [0u64; 8];
    let fd_bytes = std::mem::size_of_val(fds) as u32;
    // SAFETY: building a msghdr over our own buffers; CMSG_* compute offsets inside `control`,
    // which is large enough for MAX_FDS ints (CMSG_SPACE(16) = 32 bytes < 64).
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = iov.as_mut_ptr();
        msg.msg_iovlen = parts.len() as _;
        msg.msg_control = control.as_mut_ptr() as *mut c_void;
        msg.msg_controllen = libc::CMSG_SPACE(fd_bytes) as usize;
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        if cmsg.is_null() {
            return false;
        }
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(fd_bytes) as usize;
        std::ptr::copy_nonoverlapping(fds.as_ptr(), libc::CMSG_DATA(cmsg) as *mut c_int, fds.len());
        let n = libc::sendmsg(sock, &msg, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL);
        n == total as isize
    }
}

/// Hands the last lines of a process image to a writer process: `bytes` are written to the
/// reporter connection `fd` by a process of their own, which waits for a reporter that is
/// slow to read, so the host can exit (or exec) at once without losing them (thread mode;
/// a shipper process does this itself).
///
/// A double fork, as for the shipper: the middle is a clone child with no exit signal, collected
/// here at once; the writer, orphaned, belongs to the nearest subreaper (`sockmeter run`) or to
/// init. The writer keeps only `fd` (a socket or pipe of the host's kept open by it would delay
/// the peer's end of file), takes a session of its own (the terminal's Ctrl-C is for the host)
/// and makes system calls only: it is a copy of a process that may have had other threads.
pub fn hand_off(fd: c_int, bytes: &[u8]) {
    // SAFETY: `write_out` makes system calls only, on the writer's copies of `fd` and `bytes`.
    in_writer(|| unsafe { write_out(fd, bytes) });
}

/// Runs `writer` in an orphaned grandchild (the double fork of [`hand_off`]) and returns once
/// the middle child is collected. `writer` must make system calls only (it exits when done).
fn in_writer(writer: impl FnOnce()) {
    // SAFETY: a fork-like clone (no CLONE_VM: the children have copies of this memory, what
    // `writer` captured included, and run only system calls); the host waits only for the
    // middle, its own clone child, which exits at once.
    unsafe {
        let middle = libc::syscall(libc::SYS_clone, 0 as libc::c_ulong, 0usize, 0usize, 0usize, 0usize);
        if middle < 0 {
            return;
        }
        if middle == 0 {
            let child = libc::syscall(
                libc::SYS_clone,
                libc::SIGCHLD as libc::c_ulong,
                0usize,
                0usize,
                0usize,
                0usize,
            );
            if child == 0 {
                writer();
            }
            libc::syscall(libc::SYS_exit, 0);
        }
        while libc::waitpid(middle as libc::pid_t, std::ptr::null_mut(), libc::__WCLONE) < 0 && errno() == libc::EINTR {
        }
    }
}

/// Hands `bytes` to a writer process that reaches the reporter itself, for a reporter that is
/// not there now (a `sockmeter listen` that reconnects): the same double fork as
/// [`hand_off`] ([`in_writer`]), and the writer tries each address in `addrs` in turn, again after a growing
/// pause (200 ms to 1 s), for up to `for_ms`, and writes everything to the first that accepts
/// (or gives up); an address after the first is tried only when the one before it refused
/// this user (`EACCES`: the run's second door, as `runtime::sink` connects). It keeps none of
/// the host's fds, so nothing of the host's waits for it.
pub fn hand_off_later(addrs: &[(libc::sockaddr_un, libc::socklen_t)], bytes: &[u8], for_ms: u64) {
    // SAFETY: `reach_and_write` makes system calls only, on the writer's copies of the
    // addresses and `bytes`.
    in_writer(|| unsafe { reach_and_write(addrs, bytes, for_ms) });
}

/// The later writer's life (see [`hand_off_later`]).
unsafe fn reach_and_write(addrs: &[(libc::sockaddr_un, libc::socklen_t)], bytes: &[u8], for_ms: u64) -> ! {
    // SAFETY: raw system calls on our own fds, addresses and memory.
    unsafe {
        libc::syscall(libc::SYS_close_range, 0u32, u32::MAX, 0u32);
        libc::syscall(libc::SYS_setsid);
        let (mut waited, mut pause) = (0u64, sockmeter::outbox::Backoff::FIRST_MS);
        loop {
            for (sa, len) in addrs {
                let fd = libc::syscall(
                    libc::SYS_socket,
                    libc::AF_UNIX,
                    libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
                    0,
                ) as c_int;
                if fd < 0 {
                    break;
                }
                if libc::syscall(libc::SYS_connect, fd, sa as *const libc::sockaddr_un, *len) == 0 {
                    write_out(fd, bytes);
                }
                let refused_us = errno() == libc::EACCES;
                libc::syscall(libc::SYS_close, fd);
                if !refused_us {
                    break;
                }
            }
            if waited >= for_ms {
                libc::syscall(libc::SYS_exit, 0);
            }
            let ts = libc::timespec {
                tv_sec: (pause / 1000) as libc::time_t,
                tv_nsec: ((pause % 1000) * 1_000_000) as libc::c_long,
            };
            libc::syscall(
                libc::SYS_nanosleep,
                &ts as *const libc::timespec,
                std::ptr::null_mut::<libc::timespec>(),
            );
            waited += pause;
            pause = (pause * 2).min(sockmeter::outbox::Backoff::MAX_MS);
        }
    }
}

/// The writer's life: only `fd` open, its own session, every byte written (waiting for room
/// as long as the reporter lives), then exit.
unsafe fn write_out(fd: c_int, bytes: &[u8]) -> ! {
    // SAFETY: raw system calls on our own copies of the fds and memory.
    unsafe {
        if fd > 0 {
            libc::syscall(libc::SYS_close_range, 0u32, (fd - 1) as u32, 0u32);
        }
        libc::syscall(libc::SYS_close_range, (fd + 1) as u32, u32::MAX, 0u32);
        libc::syscall(libc::SYS_setsid);
        let mut rest = bytes;
        while !rest.is_empty() {
            let n = libc::syscall(
                libc::SYS_sendto,
                fd,
                rest.as_ptr(),
                rest.len(),
                libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT,
                0usize,
                0usize,
            );
            if n > 0 {
                rest = &rest[n as usize..];
                continue;
            }
            let e = *libc::__errno_location();
            if n < 0 && (e == libc::EAGAIN || e == libc::EINTR) {
                let mut p = libc::pollfd {
                    fd,
                    events: libc::POLLOUT,
                    revents: 0,
                };
                libc::syscall(
                    libc::SYS_ppoll,
                    &mut p as *mut libc::pollfd,
                    1usize,
                    std::ptr::null::<libc::timespec>(),
                    std::ptr::null::<libc::sigset_t>(),
                    0usize,
                );
                continue;
            }
            break;
        }
        libc::syscall(libc::SYS_exit, 0);
    }
    unreachable!()
}
