//! Shared helpers of the reporter's integration tests, which use a STAND-IN FOR THE SHIM.
//!
//! The real shim is not used here (its end-to-end tests live in the top-level `tests/`).
//! Instead, `LD_PRELOAD` gets an empty shared object built with `cc -shared` (so the loader
//! has something harmless to preload), and the test itself plays the shim: the command
//! prints `$SOCKMETER_SOCKET`, the test connects there and writes wire lines made with
//! `sockmeter::wire::encode`, then lets the command finish by writing to its stdin.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

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
        local: None,
        peer: Some(peer.into()),
        module: Some("/usr/lib/libstandin.so.1".into()),
        via: None,
        label: None,
        opened_at: 1_700_000_000_001,
        inherited: false,
        adopted: false,
        closed_at: None,
        counts: None,
        kernel_tx_bytes: None,
        kernel_rx_bytes: None,
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
