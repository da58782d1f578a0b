//! `sockmeter run --live`, driven as a person would: in a terminal (tmux), typing keys and
//! reading the screen. The view shows the traffic as it flows, sorts and changes units on a key,
//! `q` gives the terminal back as it was (not in raw mode, the main screen), Ctrl-C reaches the
//! command as it would without the view, and the counts stay exact. Without a terminal: one
//! plain line per interval.

use std::path::Path;
use std::time::Duration;

use crate::harness::{self, both_modes, compile_c, read_report, scratch_path, Counter, Mode};
use crate::reporters::Tmux;

const WAIT: Duration = Duration::from_secs(30);

/// The shell line that runs `sockmeter run --live ... -- CMD` in mode `mode`, then prints its
/// status.
fn run_line(mode: Mode, json: &Path, cmd: &str) -> String {
    let env: String = mode.env().iter().map(|(k, v)| format!("{k}={v} ")).collect();
    format!(
        "{env}{} run --live --interval 200 --json {} -- {cmd}; echo EXIT=$?",
        harness::sockmeter().display(),
        json.display()
    )
}

/// Whether the terminal is back in its ordinary mode: `stty -a` in the shell shows `icanon`
/// and `echo` (raw mode turns both off: `-icanon`, `-echo`).
fn assert_terminal_sane(t: &Tmux) {
    // `ST""TY` typed, `STTY` printed.
    t.line("clear; stty -a | tr ' ;' '\\n\\n' | grep -x -e icanon -e -icanon -e echo -e -echo | sort | tr '\\n' ' '; echo ST\"\"TY");
    let printed = |s: &str| s.lines().any(|l| l.ends_with("STTY"));
    let screen = t
        .wait_for(WAIT, printed)
        .unwrap_or_else(|s| panic!("stty did not answer:\n{s}"));
    let line = screen.lines().find(|l| l.ends_with("STTY")).unwrap_or_default();
    assert_eq!(line.trim(), "echo icanon STTY", "the terminal is as it was:\n{screen}");
}

/// The view draws the process, its module and its connection (with its peer) while it runs;
/// `t` sorts by bytes sent, `b` shows exact bytes, `q` leaves the view while the command goes
/// on; the summary follows when it ends, the terminal is as it was, the report exact.
#[test]
fn the_live_view_shows_the_traffic_and_q_gives_the_terminal_back() {
    let counter = Counter::start(1, 0);
    let (json, stop) = (scratch_path("live").with_extension("json"), scratch_path("stop"));
    let t = Tmux::start(160, 45);
    let drip = format!(
        "{} {} --port {} --until {} --size 1000 --every 0.01",
        harness::python(),
        harness::root().join("tests/peers/drip.py").display(),
        counter.port,
        stop.display()
    );
    t.line(&run_line(Mode::Shipper, &json, &drip));
    let peer = format!("127.0.0.1:{}", counter.port);
    let screen = t
        .wait_for(WAIT, |s| {
            s.contains("busiest connections") && s.contains(&peer) && s.contains("kB/s")
        })
        .unwrap_or_else(|s| panic!("the view did not show the connection:\n{s}"));
    assert!(
        screen.contains("processes") && screen.contains("modules and labels"),
        "{screen}"
    );
    assert!(screen.contains("1 process (1 running), 1 connection"), "{screen}");
    t.key("t");
    t.wait_for(WAIT, |s| s.contains("sort: tx"))
        .unwrap_or_else(|s| panic!("t sorts by tx:\n{s}"));
    t.key("b");
    let exact = t
        .wait_for(WAIT, |s| s.contains("units: bytes"))
        .unwrap_or_else(|s| panic!("b shows bytes:\n{s}"));
    let total = exact.lines().find(|l| l.starts_with("total: in")).unwrap_or_default();
    assert!(total.contains(" B (") && !total.contains("kB"), "exact bytes: {total}");
    t.key("q");
    t.wait_for(WAIT, |s| !s.contains("busiest connections"))
        .unwrap_or_else(|s| panic!("q leaves the view:\n{s}"));
    std::fs::write(&stop, b"").unwrap();
    let end = t
        .wait_for(WAIT, |s| s.contains("EXIT=0"))
        .unwrap_or_else(|s| panic!("the command ended and the summary came:\n{s}"));
    assert!(end.contains("sockmeter: total:"), "the summary after the view:\n{end}");
    let seen = counter.finish();
    let r = read_report(&json);
    assert_eq!(r.totals.tx_bytes, seen.rx, "exact");
    assert!(seen.rx > 0);
    assert_terminal_sane(&t);
}

both_modes! {
    /// Ctrl-C in the view (read as a key: the view has the terminal in raw mode) reaches the
    /// command as the terminal's would: the command dies of SIGINT, sockmeter collects its last
    /// counts, prints the summary after the view and exits 130; the terminal is as it was.
    fn ctrl_c_in_the_live_view_interrupts_the_command_and_keeps_every_byte(mode) {
        let counter = Counter::start(1, 0);
        let json = scratch_path("live").with_extension("json");
        let t = Tmux::start(160, 45);
        let prog = compile_c("streamer", &[]);
        t.line(&run_line(mode, &json, &format!("{} {} 700", prog.display(), counter.port)));
        t.wait_for(WAIT, |s| s.contains("busiest connections") && s.contains("kB/s"))
            .unwrap_or_else(|s| panic!("the view did not show the stream:\n{s}"));
        t.key("C-c");
        // `EXIT=` and a digit: the typed line itself holds `EXIT=$?`.
        let end = t
            .wait_for(WAIT, |s| s.match_indices("EXIT=").any(|(i, _)| s[i + 5..].starts_with(|c: char| c.is_ascii_digit())))
            .unwrap_or_else(|s| panic!("sockmeter did not end:\n{s}"));
        assert!(end.contains("EXIT=130"), "the command's status:\n{end}");
        assert!(end.contains("sockmeter: total:"), "{end}");
        let seen = counter.finish();
        let r = read_report(&json);
        assert_eq!(r.exit_status, Some(130));
        assert_eq!(r.processes.len(), 1);
        assert_eq!((r.processes[0].end.as_str(), r.processes[0].signal), ("signal", Some(libc::SIGINT)));
        assert!(seen.rx > 0);
        // Every byte but, at most, the one call the signal cut short: a SIGINT that arrives
        // during a send kills the process before the call returns to be counted (README,
        // "Limits"; the kernel witness cannot tell either, the process being gone).
        let lost = seen.rx.checked_sub(r.totals.tx_bytes);
        assert!(lost == Some(0) || lost == Some(700), "every byte sent before the Ctrl-C (server {}, report {})", seen.rx, r.totals.tx_bytes);
        assert_terminal_sane(&t);
    }
}

/// Not on a terminal, `--live` prints one plain line per interval on stderr (the summary
/// follows as always).
#[test]
fn without_a_terminal_the_live_view_is_one_line_per_interval() {
    let counter = Counter::start(3, 0);
    let r = harness::run(
        &["--live", "--interval", "100"],
        &[
            harness::python(),
            &harness::root().join("tests/peers/drip.py").display().to_string(),
            "--port",
            &counter.port.to_string(),
            "--conns",
            "3",
            "--size",
            "500",
        ],
    );
    let seen = counter.finish();
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lines: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| l.starts_with("sockmeter: ") && l.contains(" running), ") && l.contains("; total "))
        .collect();
    assert!(!lines.is_empty(), "a line per interval:\n{}", r.stderr);
    let clock = &lines[0]["sockmeter: ".len().."sockmeter: 12:00:00".len()];
    assert!(clock.chars().filter(|c| *c == ':').count() == 2, "{}", lines[0]);
    assert_eq!(r.report.totals.tx_bytes, seen.rx);
    assert!(
        r.stderr.contains("sockmeter: total: 0 B in, 1.5 kB out"),
        "{}",
        r.stderr
    );
}

/// A terminal that goes away under the live view (its window closed): `listen --live` leaves
/// the view, stops on the hang-up (SIGHUP) and writes its report, like any `listen` told to
/// stop; it neither spins on the dead terminal nor dies of it.
#[test]
fn a_terminal_that_hangs_up_stops_listen_cleanly() {
    let dir = crate::harness::fresh_dir("hangup");
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let (socket, json) = (dir.join("s.sock"), dir.join("r.json"));
    let t = Tmux::start(120, 40);
    t.line(&format!(
        "{} listen --socket {} --live --json {} > {}",
        harness::sockmeter().display(),
        socket.display(),
        json.display(),
        dir.join("env").display()
    ));
    t.wait_for(WAIT, |s| s.contains("busiest connections"))
        .unwrap_or_else(|s| panic!("the live view:\n{s}"));
    let pid = t.shell_child().expect("listen runs in the terminal");
    t.kill();
    assert!(
        crate::reporters::eventually(WAIT, || !std::path::Path::new(&format!("/proc/{pid}")).exists()
            || std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.contains(") Z "))),
        "listen still runs after its terminal went away"
    );
    let r = read_report(&json);
    assert!(r.processes.is_empty());
    assert!(!socket.exists(), "it removed its socket as at any stop");
}
