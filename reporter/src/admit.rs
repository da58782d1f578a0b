//! Who may talk to the reporter: each connection's credentials (`SO_PEERCRED`, taken by the
//! kernel when the peer called `connect`) against a [`Policy`].
//!
//! The socket lives in a directory only the user can enter, so only that user (or root) can
//! connect at all; the policy keeps out the user's *other* programs, which would otherwise add
//! made-up counts or processes to the run. It is not a wall against the user themself: the same
//! user can stop or trace the reporter anyway.
//!
//! `sockmeter run` admits the run's own processes: descendants of the reporter. The command
//! and its descendants are; so are orphans and the shim's shipper processes, which the kernel
//! re-parents to the reporter (a child subreaper, see `reap.rs`). A peer that has already
//! exited and been reaped when its connection is accepted cannot be checked (its `/proc` entry
//! is gone): it is admitted, because refusing it would lose real counts whenever the reporter
//! falls behind a short-lived process; it said all it will say before it exited.
//!
//! The pid the kernel recorded names the peer only while the peer lives: once it has exited
//! and been reaped, the pid may be given to another process (with `pid_max` at 32,768, a busy
//! machine recycles pids within seconds), and the walk would judge that one. So the peer is
//! also pinned by a pidfd the kernel takes at `connect` (`SO_PEERPIDFD`, Linux 6.5+,
//! [`Pinned`]): a peer that has exited, before the walk or during it, is taken unchecked, and a
//! refusal stands only when the pinned peer still lives after the walk (its pid cannot have
//! been reused then). A short-lived shipper of the run was once refused that way, and its
//! host's counts lost.

use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;

/// The most parents walked up from a peer (a process tree is never this deep; a loop, which
/// the kernel cannot make, would end here).
const MAX_DEPTH: usize = 4096;

/// The kernel's record of who connected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cred {
    /// The process that called `connect` (its process id, not a thread's).
    pub pid: u32,
    /// Its effective uid then.
    pub uid: u32,
}

/// The peer credentials of a connected Unix socket.
#[cfg(target_os = "linux")]
pub fn peer_cred(stream: &UnixStream) -> io::Result<Cred> {
    let mut cred = libc::ucred { pid: 0, uid: 0, gid: 0 };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: a live socket fd, and an out-buffer of `len` bytes for SO_PEERCRED's ucred.
    let r = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast::<libc::c_void>(),
            &mut len,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(Cred {
        pid: u32::try_from(cred.pid).unwrap_or(0),
        uid: cred.uid,
    })
}

/// The peer credentials of a connected Unix socket (macOS: `LOCAL_PEERPID`, and `getpeereid`).
#[cfg(target_os = "macos")]
pub fn peer_cred(stream: &UnixStream) -> io::Result<Cred> {
    let mut pid: libc::pid_t = 0;
    let mut len = std::mem::size_of::<libc::pid_t>() as libc::socklen_t;
    // SAFETY: a live socket fd, and an out-buffer of `len` bytes for LOCAL_PEERPID's pid_t.
    let r = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::SOL_LOCAL,
            libc::LOCAL_PEERPID,
            (&mut pid as *mut libc::pid_t).cast::<libc::c_void>(),
            &mut len,
        )
    };
    let (mut uid, mut gid) = (0, 0);
    // SAFETY: a live socket fd and two valid out-pointers.
    if r != 0 || unsafe { libc::getpeereid(stream.as_raw_fd(), &mut uid, &mut gid) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(Cred {
        pid: u32::try_from(pid).unwrap_or(0),
        uid,
    })
}

/// The peer's process as the kernel pinned it at `connect` (see the module docs); nothing where
/// the kernel cannot (before Linux 6.5, macOS): then the pid alone is judged, as before.
pub struct Pinned(Option<std::os::fd::OwnedFd>);

impl Pinned {
    /// The pidfd of `stream`'s peer, when the kernel gives one.
    #[cfg(target_os = "linux")]
    pub fn of(stream: &UnixStream) -> Pinned {
        use std::os::fd::FromRawFd;
        /// `SO_PEERPIDFD` (include/uapi/asm-generic/socket.h).
        const SO_PEERPIDFD: libc::c_int = 77;
        let mut fd: libc::c_int = -1;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: a live socket fd and an out-buffer of `len` bytes for one int.
        let r = unsafe {
            libc::getsockopt(
                stream.as_raw_fd(),
                libc::SOL_SOCKET,
                SO_PEERPIDFD,
                (&mut fd as *mut libc::c_int).cast::<libc::c_void>(),
                &mut len,
            )
        };
        // SAFETY: on success the kernel installed a new fd that only we own.
        Pinned((r == 0 && fd >= 0).then(|| unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) }))
    }

    /// No pidfd on macOS.
    #[cfg(not(target_os = "linux"))]
    pub fn of(_stream: &UnixStream) -> Pinned {
        Pinned(None)
    }

    /// Whether the pinned peer has exited (a pidfd turns readable then); false when unknown.
    fn exited(&self) -> bool {
        let Some(fd) = &self.0 else { return false };
        let mut p = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, no waiting.
        unsafe { libc::poll(&mut p, 1, 0) == 1 && p.revents & libc::POLLIN != 0 }
    }
}

/// Which connections a reporter takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    /// Processes descending from this pid (`sockmeter run`: the reporter's own).
    DescendantsOf(u32),
    /// Any process of this effective uid (for a reporter that serves processes started
    /// elsewhere: `sockmeter listen`, to come).
    #[allow(dead_code)]
    SameUid(u32),
}

/// What a policy says about one peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Take it.
    Admit,
    /// Take it, unchecked: it exited before it could be checked.
    Unchecked,
    /// Close it; the reason names the peer (`pid 4711 (python3), uid 1000: ...`).
    Refuse(String),
}

impl Policy {
    /// The rule of `sockmeter run`: this process's descendants.
    pub fn run() -> Policy {
        Policy::DescendantsOf(std::process::id())
    }

    /// Judges the peer `cred`, pinned by `pin` (see the module docs).
    pub fn check_pinned(&self, cred: &Cred, pin: &Pinned) -> Verdict {
        if pin.exited() {
            return Verdict::Unchecked;
        }
        match self.check(cred) {
            // Its pid may have named another process during the walk.
            Verdict::Refuse(_) if pin.exited() => Verdict::Unchecked,
            v => v,
        }
    }

    /// Judges the peer `cred`.
    pub fn check(&self, cred: &Cred) -> Verdict {
        match *self {
            Policy::SameUid(uid) if cred.uid == uid => Verdict::Admit,
            Policy::SameUid(uid) => Verdict::Refuse(format!("{}: not uid {uid}", describe(cred))),
            Policy::DescendantsOf(root) => match descends_from(cred.pid, root) {
                Some(true) => Verdict::Admit,
                None => Verdict::Unchecked,
                Some(false) => Verdict::Refuse(format!("{}: not a process of this run", describe(cred))),
            },
        }
    }
}

/// `pid 4711 (python3), uid 1000`.
fn describe(cred: &Cred) -> String {
    match stat(cred.pid) {
        Ok((_, name)) => format!("pid {} ({name}), uid {}", cred.pid, cred.uid),
        Err(_) => format!("pid {}, uid {}", cred.pid, cred.uid),
    }
}

/// A process's parent and name, from `/proc/<pid>/stat`.
#[cfg(target_os = "linux")]
fn stat(pid: u32) -> io::Result<(u32, String)> {
    let text = std::fs::read(format!("/proc/{pid}/stat"))?;
    // "pid (name) state ppid ...": the name may hold spaces and parentheses, so it ends at
    // the last ')'.
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "unreadable /proc stat");
    let open = text.iter().position(|b| *b == b'(').ok_or_else(bad)?;
    let close = text.iter().rposition(|b| *b == b')').ok_or_else(bad)?;
    let name = String::from_utf8_lossy(text.get(open + 1..close).ok_or_else(bad)?).into_owned();
    let rest = std::str::from_utf8(text.get(close + 1..).ok_or_else(bad)?).map_err(|_| bad())?;
    let ppid = rest
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .ok_or_else(bad)?;
    Ok((ppid, name))
}

/// A process's parent and name (macOS: `proc_pidinfo`, `PROC_PIDTBSDINFO`).
#[cfg(target_os = "macos")]
fn stat(pid: u32) -> io::Result<(u32, String)> {
    // SAFETY: proc_bsdinfo is plain data; proc_pidinfo fills at most its size.
    let mut info: libc::proc_bsdinfo = unsafe { std::mem::zeroed() };
    let size = std::mem::size_of::<libc::proc_bsdinfo>() as libc::c_int;
    // SAFETY: a valid out-buffer of `size` bytes.
    let n = unsafe {
        libc::proc_pidinfo(
            pid as libc::c_int,
            libc::PROC_PIDTBSDINFO,
            0,
            (&mut info as *mut libc::proc_bsdinfo).cast::<libc::c_void>(),
            size,
        )
    };
    if n != size {
        return Err(io::Error::from_raw_os_error(libc::ESRCH));
    }
    let name: Vec<u8> = info
        .pbi_comm
        .iter()
        .take_while(|c| **c != 0)
        .map(|c| *c as u8)
        .collect();
    Ok((info.pbi_ppid, String::from_utf8_lossy(&name).into_owned()))
}

/// Whether process `pid` is `ancestor` or descends from it, by its chain of parents; `None`
/// when `pid` no longer exists (it cannot be told). A parent that exits during the walk
/// re-parents its children, so the walk starts over (a few times) when one vanishes under it.
pub fn descends_from(pid: u32, ancestor: u32) -> Option<bool> {
    descends_from_by(pid, ancestor, |p| stat(p).map(|(parent, _)| parent))
}

/// [`descends_from`], with each process's parent read by `parent_of`. A process being reaped
/// still has its `/proc` entry for a moment, with parent 0 (the kernel's `stat` says 0 once the
/// task is unhashed): that is a parent vanishing too, not the end of the chain. (A run's
/// shipper was once refused so: its double fork's middle process was being reaped by the host
/// while the walk read it.)
fn descends_from_by(pid: u32, ancestor: u32, parent_of: impl Fn(u32) -> io::Result<u32>) -> Option<bool> {
    for _ in 0..4 {
        let mut at = pid;
        let mut vanished = false;
        for depth in 0..MAX_DEPTH {
            if at == ancestor {
                return Some(true);
            }
            if at <= 1 {
                return Some(false);
            }
            match parent_of(at) {
                Ok(0) | Err(_) if depth == 0 => return None,
                Ok(0) | Err(_) => {
                    vanished = true;
                    break;
                }
                Ok(parent) => at = parent,
            }
        }
        if !vanished {
            return Some(false);
        }
    }
    Some(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};

    #[test]
    fn descendants_and_not() {
        let me = std::process::id();
        // sh -> sleep: a grandchild of this test.
        let mut sh = Command::new("sh")
            .args(["-c", "sleep 30 & echo $!; wait"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(sh.stdout.as_mut().unwrap()), &mut line).unwrap();
        let sleep: u32 = line.trim().parse().unwrap();
        assert_eq!(descends_from(sleep, me), Some(true));
        assert_eq!(descends_from(sleep, sh.id()), Some(true));
        assert_eq!(descends_from(me, me), Some(true));
        assert_eq!(descends_from(me, sleep), Some(false), "a parent is not a descendant");
        assert_eq!(descends_from(1, me), Some(false));
        // pid_max is at most 2^22: this pid cannot exist.
        assert_eq!(descends_from(4_999_999, me), None);

        let cred = |pid| Cred { pid, uid: 0 };
        assert_eq!(Policy::DescendantsOf(me).check(&cred(sleep)), Verdict::Admit);
        assert_eq!(Policy::DescendantsOf(me).check(&cred(4_999_999)), Verdict::Unchecked);
        match Policy::DescendantsOf(sleep).check(&cred(me)) {
            Verdict::Refuse(why) => assert!(
                why.starts_with(&format!("pid {me} (")) && why.ends_with("uid 0: not a process of this run"),
                "{why}"
            ),
            v => panic!("{v:?}"),
        }
        assert_eq!(Policy::SameUid(7).check(&Cred { pid: me, uid: 7 }), Verdict::Admit);
        assert!(
            matches!(Policy::SameUid(7).check(&Cred { pid: me, uid: 8 }), Verdict::Refuse(w) if w.ends_with("not uid 7"))
        );
        let _ = Command::new("kill").arg(sleep.to_string()).status();
        sh.wait().unwrap();
    }

    /// A parent read as 0 (a process being reaped) is a parent vanishing: the walk starts over
    /// and finds the new parent; a chain that really ends outside is still refused.
    #[test]
    fn a_parent_being_reaped_is_walked_around() {
        use std::cell::Cell;
        // 30 -> 20 -> 10 (the ancestor); 20 is being reaped on the first read (parent 0), and
        // 30 has been re-parented to 10 by the second.
        let reads = Cell::new(0);
        let chain = |p: u32| -> io::Result<u32> {
            reads.set(reads.get() + 1);
            Ok(match (p, reads.get()) {
                (30, 1) => 20,
                (20, _) => 0,
                (30, _) => 10,
                _ => 1,
            })
        };
        assert_eq!(descends_from_by(30, 10, chain), Some(true));
        assert_eq!(
            descends_from_by(30, 10, |p| Ok(if p == 30 { 5 } else { 1 })),
            Some(false)
        );
        assert_eq!(
            descends_from_by(30, 10, |_| Ok(0)),
            None,
            "the peer itself is being reaped"
        );
    }

    #[test]
    fn names_with_spaces_and_parentheses_are_read() {
        // A process's name is its program's file name: a copy of sleep named "x) (y z".
        let dir = crate::private_dir::PrivateDir::new().unwrap();
        let odd_name = dir.path().join("x) (y z");
        std::fs::copy("/bin/sleep", &odd_name).unwrap();
        // Another test's fork may briefly hold the copy open for writing (ETXTBSY): try again.
        let mut odd = (0..50)
            .find_map(|_| match Command::new(&odd_name).arg("30").spawn() {
                Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) => {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                    None
                }
                r => Some(r.unwrap()),
            })
            .expect("the copy of sleep stayed busy");
        let (ppid, name) = stat(odd.id()).unwrap();
        assert_eq!((ppid, name.as_str()), (std::process::id(), "x) (y z"));
        odd.kill().unwrap();
        odd.wait().unwrap();
    }

    #[test]
    fn a_refusal_stands_only_while_the_pinned_peer_lives() {
        // A peer that is alive and not a descendant: refused. Once it has exited, its pid may
        // name another process: taken unchecked.
        let dir = crate::private_dir::PrivateDir::new().unwrap();
        let path = dir.path().join("s");
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let mut peer = Command::new("python3")
            .args([
                "-c",
                "import socket,sys,time; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); print(flush=True); sys.stdin.read()",
                path.to_str().unwrap(),
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let (stream, _) = listener.accept().unwrap();
        let (cred, pin) = (peer_cred(&stream).unwrap(), Pinned::of(&stream));
        assert!(pin.0.is_some(), "SO_PEERPIDFD (Linux 6.5+)");
        // The root: a pid that is not an ancestor of the peer (the peer's own child, never).
        let not_ancestor = Policy::DescendantsOf(4_999_999);
        assert!(matches!(not_ancestor.check_pinned(&cred, &pin), Verdict::Refuse(_)));
        drop(peer.stdin.take());
        peer.wait().unwrap();
        assert_eq!(not_ancestor.check_pinned(&cred, &pin), Verdict::Unchecked);
    }

    #[test]
    fn credentials_of_a_socket_pair_are_ours() {
        let (a, _b) = UnixStream::pair().unwrap();
        let c = peer_cred(&a).unwrap();
        // SAFETY: geteuid cannot fail.
        assert_eq!((c.pid, c.uid), (std::process::id(), unsafe { libc::geteuid() }));
    }
}
