//! Shared helpers of the reporter's integration tests, which use a STAND-IN FOR THE SHIM.
//!
//! The real shim is not used here (its end-to-end tests live in the top-level `tests/`).
//! Instead, `LD_PRELOAD` gets an empty shared object built with `cc -shared` (so the loader
//! has something harmless to preload), and the test itself plays the shim: the command
//! prints `$SOCKMETER_SOCKET`, the test writes wire lines made with `sockmeter::wire::encode`
//! on connections a descendant made for it ([`Handoff`]: the reporter takes only the run's own
//! processes), then lets the command finish by writing to its stdin.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use sockmeter::model::{Family, Proto, Role};
use sockmeter::wire::{Bye, ByeReason, Delta, Hello, Message, Origin, SocketDelta, SocketInfo};

pub const BIN: &str = env!("CARGO_BIN_EXE_sockmeter");

/// A scratch directory removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new() -> Scratch {
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "sockmeter-it-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Scratch(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Builds the empty stand-in shim (and a second one, to play the user's own LD_PRELOAD).
pub fn standin_shims(dir: &Path) -> (PathBuf, PathBuf) {
    let src = dir.join("empty.c");
    std::fs::write(&src, "int sockmeter_standin;\n").unwrap();
    let mut out = Vec::new();
    for name in ["standin_shim.so", "users_own.so"] {
        let so = dir.join(name);
        let st = Command::new("cc")
            .args(["-shared", "-fPIC", "-o"])
            .arg(&so)
            .arg(&src)
            .status()
            .expect("cc is needed to build the stand-in shim");
        assert!(st.success(), "cc -shared failed");
        out.push(so);
    }
    (out[0].clone(), out[1].clone())
}

pub fn sockmeter(scratch: &Path) -> Command {
    let (shim, _) = standin_shims(scratch);
    let mut c = Command::new(BIN);
    c.env("SOCKMETER_SHIM", shim)
        .env_remove("LD_PRELOAD")
        .env_remove("SOCKMETER_ATTRIBUTE")
        .env_remove("SOCKMETER_DISABLE");
    c
}

pub fn hello(pid: u32, exe: &str) -> Message {
    Message::Hello(Hello {
        pid,
        ppid: 1,
        exe: exe.into(),
        argv: vec![exe.rsplit('/').next().unwrap().into()],
        started_at: 1_700_000_000_000,
        origin: Origin::Start,
        shim_version: "standin".into(),
        interval_ms: 1000,
        image: 0,
    })
}

pub fn socket(id: u64, family: Family, peer: &str) -> Message {
    Message::Socket(SocketInfo {
        id,
        fd: 3 + id as i32,
        family,
        proto: if family == Family::Unix {
            Proto::Stream
        } else {
            Proto::Tcp
        },
        role: Role::Connected,
        peer: Some(peer.into()),
        module: Some("/usr/lib/libstandin.so.1".into()),
        opened_at: 1_700_000_000_001,
        ..Default::default()
    })
}

pub fn delta(id: u64, tx: u64, rx: u64) -> Message {
    Message::Delta(Delta {
        at: 1_700_000_000_002,
        sockets: vec![SocketDelta {
            id,
            tx_bytes: tx,
            rx_bytes: rx,
            ..Default::default()
        }],
    })
}

pub fn bye() -> Message {
    Message::Bye(Bye {
        at: 1_700_000_000_003,
        reason: ByeReason::Exit,
        dropped_events: 0,
        status: None,
    })
}

/// Starts `sockmeter run ARGS -- sh -c SCRIPT` with piped stdio; the script's first line out
/// must be `$SOCKMETER_SOCKET`.
pub fn start(cmd: &mut Command, args: &[&str], script: &str) -> (Child, BufReader<ChildStdout>, PathBuf) {
    cmd.arg("run").args(args).args(["--", "sh", "-c", script]);
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    (child, out, PathBuf::from(line.trim_end()))
}

pub fn finish(child: Child, mut out: BufReader<ChildStdout>) -> (Output, String) {
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    let o = child.wait_with_output().unwrap();
    (o, rest)
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn read_json(p: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

/// The shell words that make the command (a descendant of the reporter) connect N times to
/// the reporter and hand the connections to the test: `format!("{HANDOFF} 2")`.
pub const HANDOFF: &str = r#"python3 "$SM_TEST_HANDOFF_PY""#;

/// The test's end of [`HANDOFF`]: a Unix socket in the scratch directory (named to the command
/// by `SM_TEST_HANDOFF`) on which the connections arrive as file descriptors.
pub struct Handoff {
    listener: UnixListener,
    path: PathBuf,
}

impl Handoff {
    /// Listens in `scratch` and tells `cmd` (the `sockmeter run` command) where.
    pub fn new(scratch: &Path, cmd: &mut Command) -> Handoff {
        let path = scratch.join("handoff.sock");
        let listener = UnixListener::bind(&path).unwrap();
        listener.set_nonblocking(true).unwrap();
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/common/handoff.py");
        cmd.env("SM_TEST_HANDOFF", &path).env("SM_TEST_HANDOFF_PY", script);
        Handoff { listener, path }
    }

    /// Waits (20 s at most) for the command's `HANDOFF n` and returns its n connections to the
    /// reporter.
    pub fn take(&self, n: usize) -> Vec<UnixStream> {
        let t0 = Instant::now();
        let (conn, _) = loop {
            match self.listener.accept() {
                Ok(c) => break c,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    assert!(
                        t0.elapsed() < Duration::from_secs(20),
                        "the command never handed over its connections at {}",
                        self.path.display()
                    );
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => panic!("accept on {}: {e}", self.path.display()),
            }
        };
        conn.set_nonblocking(false).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let fds = recv_fds(&conn, n);
        assert_eq!(fds.len(), n, "connections handed over");
        fds.into_iter().map(UnixStream::from).collect()
    }
}

/// Receives one message carrying up to `n` file descriptors (SCM_RIGHTS).
fn recv_fds(conn: &UnixStream, n: usize) -> Vec<OwnedFd> {
    let mut byte = [0u8; 1];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    // SAFETY: CMSG_SPACE only computes a size.
    let space = unsafe { libc::CMSG_SPACE((n * std::mem::size_of::<libc::c_int>()) as u32) } as usize;
    // u64s: the control buffer must be aligned for cmsghdr.
    let mut control = vec![0u64; space.div_ceil(8)];
    // SAFETY: an all-zero msghdr is valid; the fields that matter are set below.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = space as _;
    // SAFETY: `msg` points at live buffers of the sizes it states.
    let r = unsafe { libc::recvmsg(conn.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
    assert!(r > 0, "recvmsg: {}", std::io::Error::last_os_error());
    let mut fds = Vec::new();
    // SAFETY: the CMSG_* macros walk the control buffer recvmsg filled in, within
    // msg_controllen; each SCM_RIGHTS payload is an array of c_int fds now owned by us.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                let bytes = (*c).cmsg_len as usize - libc::CMSG_LEN(0) as usize;
                let data = libc::CMSG_DATA(c).cast::<libc::c_int>();
                for i in 0..bytes / std::mem::size_of::<libc::c_int>() {
                    fds.push(OwnedFd::from_raw_fd(data.add(i).read_unaligned()));
                }
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    fds
}
