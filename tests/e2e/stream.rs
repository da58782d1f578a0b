//! The event stream (`--json-stream`) and `sockmeter replay`: every line is a wire line of one
//! connection (with its `conn` and `pid`) or one of the reporter's own, and replaying the
//! stream gives the report `run` wrote, byte for byte.

use std::process::{Command, Stdio};

use crate::harness::{self, both_modes, read_report, scratch_path, Counter, WithoutSockmeterEnv};

both_modes! {
    /// A shell runs three metered clients (one forks a child that sends too) under
    /// `run --json-stream`; `replay` of the stream writes the same report as `run` did, and
    /// the stream's lines are what docs/wire.md says.
    fn replay_gives_the_runs_report(mode) {
        let counter = Counter::start(3, 10);
        let stream = scratch_path("stream").with_extension("ndjson");
        let s = stream.display().to_string();
        let client = |size: usize, fork: bool| {
            let fork = if fork { "True" } else { "False" };
            format!(
                "{} -c \"import os, socket\nif {fork}:\n    os.fork()\ns = socket.create_connection(('127.0.0.1', {}))\ns.sendall(b'q' * {size})\ns.shutdown(socket.SHUT_WR)\ns.recv(100)\ns.close()\"",
                harness::python(),
                counter.port
            )
        };
        let script = format!("{}; {}; {}", client(1000, false), client(2000, true), "exit 3");
        let r = harness::run_in(mode, &["--json-stream", &s], &["sh", "-c", &script], &[]);
        let seen = counter.finish();
        assert_eq!(r.code, 3, "{}", r.stderr);
        assert_eq!((seen.rx, seen.tx, seen.conns), (5000, 30, 3), "the clients did their part");
        assert_eq!(harness::totals(&r), (seen.rx, seen.tx), "{}", r.stderr);
        assert_eq!(r.report.processes.len(), 3, "{}", r.stderr);
        let text = std::fs::read_to_string(&stream).expect("the stream");
        let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect();
        assert_eq!(lines[0]["type"], "stream");
        assert_eq!(lines[0]["reporter"], "run");
        assert_eq!(lines.last().unwrap()["type"], "finish");
        assert_eq!(lines.last().unwrap()["exit_status"], 3);
        for (l, v) in text.lines().zip(&lines) {
            assert_eq!(v["v"], 1, "{l}");
            let t = v["type"].as_str().unwrap();
            if ["hello", "socket", "delta", "closed", "module", "notice", "bye"].contains(&t) {
                assert!(v["conn"].as_u64().is_some(), "a connection's line names it: {l}");
                assert!(v["pid"].as_u64().is_some(), "and its process: {l}");
                sockmeter::wire::decode(l.as_bytes()).unwrap_or_else(|e| panic!("a wire line: {e}: {l}"));
            }
        }
        let hellos = lines.iter().filter(|v| v["type"] == "hello").count();
        assert_eq!(hellos, r.report.processes.len(), "one hello per process image");
        let replayed = scratch_path("replayed").with_extension("json");
        let out = Command::new(harness::sockmeter())
            .arg("replay")
            .arg(&stream)
            .arg("--json")
            .arg(&replayed)
            .without_sockmeter_env()
            .output()
            .expect("replay");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{err}");
        assert_eq!(read_report(&replayed), r.report, "the same report");
        let run_summary: Vec<&str> = r.stderr.lines().filter(|l| l.starts_with("sockmeter: pid") || l.starts_with("sockmeter: total")).collect();
        let replay_summary: Vec<&str> = err.lines().filter(|l| l.starts_with("sockmeter: pid") || l.starts_with("sockmeter: total")).collect();
        assert_eq!(replay_summary, run_summary, "the same summary");
    }
}

/// `--json-stream -` writes the stream on stdout (the command's own output is there too).
#[test]
fn the_stream_can_go_to_stdout() {
    let counter = Counter::start(1, 0);
    let out = Command::new(harness::sockmeter())
        .args(["run", "--json-stream", "-", "--"])
        .arg(harness::python())
        .arg("-c")
        .arg(format!(
            "import socket; s = socket.create_connection(('127.0.0.1', {})); s.sendall(b'w' * 123); s.close()",
            counter.port
        ))
        .without_sockmeter_env()
        .stdin(Stdio::null())
        .output()
        .expect("run");
    assert!(out.status.success());
    assert_eq!(counter.finish().rx, 123);
    let text = String::from_utf8_lossy(&out.stdout);
    let r = crate::reporters::replay_text(&text);
    assert_eq!(r.totals.tx_bytes, 123, "{text}");
}

/// A file that is not a stream is a clear error.
#[test]
fn replay_of_something_else_is_a_clear_error() {
    let p = scratch_path("not-a-stream");
    std::fs::write(&p, b"hello\n").unwrap();
    let out = Command::new(harness::sockmeter())
        .arg("replay")
        .arg(&p)
        .without_sockmeter_env()
        .output()
        .expect("replay");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is not an event stream"), "{err}");
    let missing = Command::new(harness::sockmeter())
        .args(["replay", "/nonexistent/stream"])
        .without_sockmeter_env()
        .output()
        .expect("replay");
    assert_eq!(missing.status.code(), Some(2));
}
