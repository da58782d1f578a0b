//! The host never notices: the shim adds no system call to the data path. The same workload
//! runs under `strace -f` without the shim and under `sockmeter run`; the calls the workload's
//! own thread makes on its own fds (every read, write, send, receive) must be the same list,
//! call for call. The shim's reporting thread and its reporter connection (fd >= 200) are left
//! out: they are the shim's, not the host's.

use std::collections::BTreeMap;
use std::process::Command;

use crate::harness::{compile_c, scratch, shim, sockmeter};

const DATA_CALLS: &[&str] = &[
    "read", "write", "readv", "writev", "sendto", "recvfrom", "sendmsg", "recvmsg", "pread64", "pwrite64",
];

/// (syscall, fd) → calls, for the workload's thread (the one that calls `socketpair`), from
/// its `socketpair` on (before that, the loader reads the shared objects it maps, the shim's
/// included: that is loading, not the data path), on fds below 200.
fn data_calls(trace: &str) -> BTreeMap<(String, i64), usize> {
    let mut main_pid: Option<String> = None;
    let mut out = BTreeMap::new();
    for line in trace.lines() {
        let Some((pid, rest)) = line.split_once(char::is_whitespace) else {
            continue;
        };
        let rest = rest.trim_start();
        let Some((name, args)) = rest.split_once('(') else {
            continue;
        };
        if main_pid.is_none() && name == "socketpair" {
            main_pid = Some(pid.to_string());
        }
        if main_pid.as_deref() != Some(pid) || !DATA_CALLS.contains(&name) {
            continue;
        }
        let fd: i64 = args.split(',').next().and_then(|f| f.trim().parse().ok()).unwrap_or(-1);
        if (0..200).contains(&fd) {
            *out.entry((name.to_string(), fd)).or_default() += 1;
        }
    }
    out
}

fn strace_available() -> bool {
    Command::new("strace")
        .arg("-V")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

#[test]
fn the_shim_adds_no_system_call_to_the_data_path() {
    assert!(
        strace_available(),
        "strace is required (apt-get install strace; .ci/run installs it)"
    );
    let prog = compile_c("syscall_workload", &[]);
    let _ = shim();
    let trace = |metered: bool| -> String {
        let out = scratch().join(format!("strace-{metered}.txt"));
        let mut cmd = if metered {
            let mut c = Command::new(sockmeter());
            c.args(["run", "--unix", "--json"])
                .arg(scratch().join("strace-metered.json"))
                .arg("--");
            c.arg("strace");
            c
        } else {
            Command::new("strace")
        };
        cmd.args(["-f", "-qq", "-o"])
            .arg(&out)
            .arg(&prog)
            .arg("200")
            .env_remove("LD_PRELOAD");
        let o = cmd.output().expect("run strace");
        assert!(
            o.status.success(),
            "workload failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        // 200 rounds of 64+64+100+100+10+10+12+12+12+12 socket bytes and 32+16+16 file bytes.
        assert_eq!(
            String::from_utf8_lossy(&o.stdout).trim(),
            "moved 92000",
            "the workload's own result changed"
        );
        std::fs::read_to_string(&out).expect("trace")
    };
    let plain = data_calls(&trace(false));
    let metered = data_calls(&trace(true));
    let total: usize = plain.values().sum();
    assert!(total >= 200 * 12, "the trace shows the workload's calls ({total})");
    assert_eq!(plain, metered, "the shim changed the workload's data-path system calls");

    // And the shim really was there, counting: identical traces would prove nothing otherwise.
    // Each of the 200 rounds moves 64 bytes on the socketpair and 100+10+12+12 bytes over TCP,
    // both ends in this one process, so every byte is counted once sent and once received.
    let text = std::fs::read_to_string(scratch().join("strace-metered.json")).expect("report");
    let report: sockmeter::Report = serde_json::from_str(&text).expect("report JSON");
    let (tx, rx): (u64, u64) = report
        .processes
        .iter()
        .map(|p| (p.totals.tx_bytes, p.totals.rx_bytes))
        .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
    assert_eq!(
        (tx, rx),
        (200 * 198, 200 * 198),
        "the metered run counted every socket byte"
    );
}
