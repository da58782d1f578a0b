//! Bad configuration never harms the host: an unreachable reporter socket and an unwritable
//! report path each get one clear line on stderr naming the variable, while the program's own
//! output, exit status and network exchange are exactly what they are without the shim.

use crate::harness::{direct, python, scratch, shim, Sink};

/// Runs a python3 client that sends 3000 bytes to a local peer and prints a line; returns
/// (exit code, stdout, stderr, bytes the peer received).
fn client(env: &[(&str, &str)]) -> (Option<i32>, String, String, usize) {
    let sink = Sink::start();
    let port = sink.port;
    let script = format!(
        "import socket, sys\nc = socket.create_connection(('127.0.0.1', {port}))\nc.sendall(b'z' * 3000)\nc.close()\nprint('sent 3000')\nsys.exit(4)\n"
    );
    let out = direct(&[python(), "-c", &script], env);
    let got = sink.received();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        got,
    )
}

fn check(var: &str, env: &[(&str, &str)]) {
    let plain = client(&[]);
    let metered = client(env);
    assert_eq!(metered.0, plain.0, "exit status unchanged");
    assert_eq!(metered.0, Some(4));
    assert_eq!(metered.1, plain.1, "stdout unchanged");
    assert_eq!(plain.3, 3000, "the plain exchange");
    assert_eq!(metered.3, 3000, "the exchange is unchanged");
    let lines: Vec<&str> = metered.2.lines().filter(|l| !plain.2.contains(*l)).collect();
    assert_eq!(lines.len(), 1, "exactly one line of ours on stderr:\n{}", metered.2);
    assert!(
        lines[0].starts_with("sockmeter: ") && lines[0].contains(var),
        "names {var}: {}",
        lines[0]
    );
}

#[test]
fn an_unreachable_reporter_gets_one_line_and_the_host_is_unharmed() {
    let shim = shim().to_string_lossy().into_owned();
    let gone = scratch()
        .join("no-such-dir/reporter.sock")
        .to_string_lossy()
        .into_owned();
    check(
        "SOCKMETER_SOCKET",
        &[("LD_PRELOAD", &shim), ("SOCKMETER_SOCKET", &gone)],
    );
}

#[test]
fn an_unwritable_report_path_gets_one_line_and_the_host_is_unharmed() {
    let shim = shim().to_string_lossy().into_owned();
    let bad = scratch()
        .join("no-such-dir/report-%p.json")
        .to_string_lossy()
        .into_owned();
    check("SOCKMETER_REPORT", &[("LD_PRELOAD", &shim), ("SOCKMETER_REPORT", &bad)]);
}
