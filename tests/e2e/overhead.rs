//! The host never notices: the shim adds no system call to the data path. The same workload
//! runs under `strace -f` without the shim and under `sockmeter run`; the calls the workload's
//! own thread makes on its own fds (every read, write, send, receive) must be the same list,
//! call for call, and between its first and its last data call the thread makes no other
//! system call of any kind but the one documented first-use classification of an fd the shim
//! did not see created. The shim's reporting thread and its reporter connection (fd >= 200)
//! are left out: they are the shim's, not the host's.
//!
//! The close path is priced too, exactly: the kernel witness reads each TCP connection's
//! counters just before the close that releases it, with one `getsockopt(TCP_INFO)` (and no
//! FIONREAD, since the hooks saw every byte that arrived read); the workload's closes are
//! otherwise the same.

use std::collections::BTreeMap;
use std::process::Command;

use crate::harness::{self, compile_c, read_report, scratch, shim, sockmeter};

const DATA_CALLS: &[&str] = &[
    "read", "write", "readv", "writev", "sendto", "recvfrom", "sendmsg", "recvmsg", "pread64", "pwrite64", "preadv2",
    "pwritev2",
];

/// One round of tests/c/syscall_workload.c, as the kernel sees it (glibc's send/recv are
/// sendto/recvfrom; pwrite/pread are pwrite64/pread64; `syscall(SYS_sendto)` is sendto).
const ROUND: &[&str] = &[
    "write", "read", "sendto", "recvfrom", "sendto", "recvfrom", "writev", "readv", "sendmsg", "recvmsg", "pwritev2",
    "preadv2", "sendto", "recvfrom", "pwrite64", "write", "pread64",
];

/// The workload's rounds.
const ROUNDS: usize = 200;

#[test]
fn a_call_cut_in_two_by_another_process_reads_whole() {
    let t = whole_calls("12 close(8 <unfinished ...>\n13 read(4, \"\", 1) = 0\n12 <... close resumed>) = 0\n12 getsockopt(7, SOL_TCP, TCP_INFO,  <unfinished ...>");
    let calls: Vec<_> = t.lines().filter_map(call).collect();
    assert_eq!(
        calls,
        vec![("12", "close", "8"), ("13", "read", "4"), ("12", "getsockopt", "7")]
    );
    assert_eq!(t.lines().last(), Some("12 getsockopt(7, SOL_TCP, TCP_INFO, ...)"));
}

/// One system call of a `strace -f` trace: the thread id, the call's name and its first
/// argument's text (the fd, for the calls that take one). None for the lines that are not the
/// start of a call: `<... resumed>` halves, signals (`---`), exits (`+++`).
fn call(line: &str) -> Option<(&str, &str, &str)> {
    let (pid, rest) = line.split_once(char::is_whitespace)?;
    let rest = rest.trim_start();
    if rest.starts_with("<...") || rest.starts_with("---") || rest.starts_with("+++") {
        return None;
    }
    let (name, args) = rest.split_once('(')?;
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return None;
    }
    let first = args.split([',', ')']).next().unwrap_or("").trim();
    Some((pid, name, first))
}

/// The trace with each call that another process's call cut in two under `strace -f`
/// (`close(8 <unfinished ...>`, its result later on a `<... close resumed>` line) closed where
/// it was cut (`close(8, ...)`), so that its name and first argument read as they do on a whole line. (The
/// shipper and its middle process are traced too; a cut `close(8` read as fd "8 <unfinished
/// ...>" once made the metered close path look one close short.)
fn whole_calls(trace: &str) -> String {
    trace
        .lines()
        .map(|l| match l.strip_suffix(" <unfinished ...>") {
            Some(head) => format!("{}, ...)", head.trim_end().trim_end_matches(',')),
            None => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The workload's thread: the one that makes the first `socketpair` (the workload's first call
/// on a socket; the shim's own machinery comes after it and uses fds >= 200).
fn main_thread(trace: &str) -> &str {
    trace
        .lines()
        .filter_map(call)
        .find(|(_, name, _)| *name == "socketpair")
        .map(|(pid, _, _)| pid)
        .unwrap_or_else(|| panic!("no socketpair in the trace:\n{trace}"))
}

fn fd_of(first: &str) -> i64 {
    first.parse().unwrap_or(-1)
}

/// (syscall, fd) → calls, for the workload's thread (the one that calls `socketpair`), from
/// its `socketpair` on (before that, the loader reads the shared objects it maps, the shim's
/// included: that is loading, not the data path), on fds below 200.
fn data_calls(trace: &str) -> BTreeMap<(String, i64), usize> {
    let main = main_thread(trace);
    let mut out = BTreeMap::new();
    let mut started = false;
    for (pid, name, first) in trace.lines().filter_map(call) {
        if pid != main {
            continue;
        }
        started |= name == "socketpair";
        if !started || !DATA_CALLS.contains(&name) {
            continue;
        }
        let fd = fd_of(first);
        if (0..200).contains(&fd) {
            *out.entry((name.to_string(), fd)).or_default() += 1;
        }
    }
    out
}

/// Every system call of any kind (name and first argument) the workload's thread makes from its
/// first data call on one of its own fds (3..200) to its last one, both included: the data path
/// with whatever lies between its calls. A call the shim added there, data or not, shows up.
fn data_path(trace: &str) -> Vec<(String, String)> {
    let main = main_thread(trace);
    // From its socketpair on: before that the loader reads the shared objects it maps.
    let calls: Vec<(&str, &str)> = trace
        .lines()
        .filter_map(call)
        .filter(|(pid, _, _)| *pid == main)
        .map(|(_, name, first)| (name, first))
        .skip_while(|(name, _)| *name != "socketpair")
        .collect();
    let own_data = |(name, first): &(&str, &str)| DATA_CALLS.contains(name) && (3..200).contains(&fd_of(first));
    let start = calls.iter().position(own_data).expect("the workload made a data call");
    let end = calls.iter().rposition(own_data).expect("the workload made a data call");
    calls[start..=end]
        .iter()
        .map(|(name, first)| (name.to_string(), first.to_string()))
        .collect()
}

/// The workload's own fd calls after its last data call (its closes, and whatever the shim
/// adds there), as `name(fd)`, with a getsockopt's level and option and an ioctl's request.
fn close_path(trace: &str) -> Vec<String> {
    let main = main_thread(trace);
    let lines: Vec<(&str, &str, &str)> = trace
        .lines()
        .filter_map(|l| call(l).map(|(pid, name, first)| (pid, name, first, l)))
        .filter(|(pid, _, _, _)| *pid == main)
        .map(|(_, name, first, l)| (name, first, l))
        .collect();
    let last_data = lines
        .iter()
        .rposition(|(name, first, _)| DATA_CALLS.contains(name) && (3..200).contains(&fd_of(first)))
        .expect("the workload made a data call");
    lines[last_data + 1..]
        .iter()
        .filter(|(_, first, _)| (3..200).contains(&fd_of(first)))
        .map(|(name, first, l)| match *name {
            "getsockopt" | "ioctl" => {
                let args: Vec<&str> = l.split_once('(').map(|(_, a)| a).unwrap_or("").split(", ").collect();
                let n = if *name == "ioctl" { 2 } else { 3 };
                format!(
                    "{name}({})",
                    args.iter().take(n).copied().collect::<Vec<_>>().join(", ")
                )
            }
            _ => format!("{name}({first})"),
        })
        .collect()
}

/// The fd a call that returns one returned, in the trace of `name(` calls whose text contains
/// `what` (e.g. the TCP `socket` and the `accept`).
fn returned_fds(trace: &str, name: &str, what: &str) -> Vec<String> {
    trace
        .lines()
        .filter(|l| l.contains(&format!(" {name}(")) && l.contains(what))
        .filter_map(|l| l.rsplit_once("= ").map(|(_, fd)| fd.trim().to_string()))
        .collect()
}

/// The listening socket's fd: the one `listen` was called on.
fn plain_listener(trace: &str) -> String {
    trace
        .lines()
        .filter_map(call)
        .find(|(_, name, _)| *name == "listen")
        .map(|(_, _, fd)| fd.to_string())
        .expect("the workload listens")
}

/// The first index where two lists differ (one may be longer), with both entries there.
fn first_difference<T: PartialEq + Clone>(a: &[T], b: &[T]) -> Option<(usize, Option<T>, Option<T>)> {
    (0..a.len().max(b.len()))
        .find(|&i| a.get(i) != b.get(i))
        .map(|i| (i, a.get(i).cloned(), b.get(i).cloned()))
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
        // Neither run may inherit a developer's LD_PRELOAD or SOCKMETER_* settings.
        harness::strip_sockmeter_env(&mut cmd);
        cmd.args(["-f", "-qq", "-o"])
            .arg(&out)
            .arg(&prog)
            .arg(ROUNDS.to_string());
        let o = cmd.output().expect("run strace");
        assert!(
            o.status.success(),
            "workload failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        // 200 rounds of 64+64+100+100+10+10+12+12+12+12+12+12+10+10 socket bytes and 32+16+16
        // file bytes.
        assert_eq!(
            String::from_utf8_lossy(&o.stdout).trim(),
            "moved 100800",
            "the workload's own result changed"
        );
        whole_calls(&std::fs::read_to_string(&out).expect("trace"))
    };
    let (plain_trace, metered_trace) = (trace(false), trace(true));
    let plain = data_calls(&plain_trace);
    let metered = data_calls(&metered_trace);
    // Exactly the workload's calls: 17 per round on its own fds, and the one write of its
    // result line to stdout.
    let total: usize = plain.values().sum();
    assert_eq!(
        total,
        ROUNDS * ROUND.len() + 1,
        "the plain trace shows exactly the workload's data calls: {plain:?}"
    );
    assert_eq!(plain.get(&("write".to_string(), 1)), Some(&1), "{plain:?}");
    assert_eq!(plain, metered, "the shim changed the workload's data-path system calls");

    // Between the first and the last data call, nothing but the workload's own calls, of any
    // kind: the plain run is exactly ROUND, ROUNDS times, and the metered run is the same list,
    // call for call and fd for fd.
    let plain_path = data_path(&plain_trace);
    let metered_path = data_path(&metered_trace);
    let names: Vec<&str> = plain_path.iter().map(|(name, _)| name.as_str()).collect();
    let want = ROUND.repeat(ROUNDS);
    assert_eq!(
        first_difference(&names, &want),
        None,
        "the plain trace's data path must be the workload's {ROUNDS} rounds and nothing else \
         (index, plain, expected)"
    );
    // The one call the shim adds there, by design (docs/architecture.md, "The per-byte path"):
    // an fd it did not see created (the workload's temporary file, opened by mkstemp, which the
    // shim does not hook) is classified once, with one fstat right after its first hooked call
    // (the round's write(); pwrite and pread are not hooked), and cached as not a socket. That
    // call, at that place, exactly once, and nothing else.
    let file_fd = plain_path
        .iter()
        .find(|(name, _)| name == "pwrite64")
        .map(|(_, fd)| fd.clone())
        .expect("the workload's file fd");
    let first_write = plain_path
        .iter()
        .position(|(name, fd)| name == "write" && *fd == file_fd)
        .expect("the workload writes its file");
    let classify = metered_path.get(first_write + 1).cloned();
    assert!(
        matches!(&classify, Some((name, fd)) if (name == "newfstatat" || name == "fstat") && *fd == file_fd),
        "expected the shim's one classification of fd {file_fd} (fstat) right after its first write, got {classify:?}"
    );
    let mut want = plain_path.clone();
    want.insert(first_write + 1, classify.expect("checked above"));
    if let Some((i, p, m)) = first_difference(&want, &metered_path) {
        panic!(
            "the shim changed the system calls of the data path at call {i} of {}: expected {p:?}, \
             metered {m:?}; metered around it: {:?}",
            want.len(),
            &metered_path[i.saturating_sub(3)..(i + 4).min(metered_path.len())]
        );
    }

    // The close path: the workload's closes, each as it was, with one getsockopt(TCP_INFO)
    // right before the close of each TCP connection (the client socket and the accepted one;
    // not the listener, not the Unix pair, not the file), and nothing else.
    let plain_close = close_path(&plain_trace);
    assert!(
        plain_close.iter().all(|c| c.starts_with("close(")),
        "the plain close path is the workload's closes: {plain_close:?}"
    );
    let mut connections = returned_fds(&plain_trace, "socket", "AF_INET, SOCK_STREAM");
    connections.retain(|fd| *fd != plain_listener(&plain_trace));
    connections.extend(returned_fds(&plain_trace, "accept", ""));
    assert_eq!(
        connections.len(),
        2,
        "the client socket and the accepted one: {connections:?}"
    );
    let mut want_close = Vec::new();
    for c in &plain_close {
        let fd = c.trim_start_matches("close(").trim_end_matches(')');
        if connections.iter().any(|x| x == fd) {
            want_close.push(format!("getsockopt({fd}, SOL_TCP, TCP_INFO)"));
        }
        want_close.push(c.clone());
    }
    assert_eq!(
        close_path(&metered_trace),
        want_close,
        "the close path: one getsockopt(TCP_INFO) per TCP connection, nothing else"
    );

    // And the shim really was there, counting: identical traces would prove nothing otherwise.
    // Each of the 200 rounds moves 64 bytes on the socketpair and 100+10+12+12+12+10 bytes over
    // TCP, both ends in this one process, so every byte is counted once sent and once received.
    let report = read_report(&scratch().join("strace-metered.json"));
    let (tx, rx): (u64, u64) = report
        .processes
        .iter()
        .map(|p| (p.totals.tx_bytes, p.totals.rx_bytes))
        .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
    assert_eq!(
        (tx, rx),
        (ROUNDS as u64 * 220, ROUNDS as u64 * 220),
        "the metered run counted every socket byte"
    );
}
