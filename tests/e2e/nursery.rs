//! The nursery (`sockmeter::nursery`): a parent in shipper mode makes, at its first fork, a
//! memfd of a few spare regions that its forked children count in instead of making a memfd
//! each; the shipper gives a slot back once its child has ended. Seen as the kernel shows it
//! (`/proc/self/maps` of each child and of the parent, `tests/c/nursery.c`), with every child's
//! counts against what the server received and sent. Shipper mode only: thread mode has no
//! shipper to hand a region to.

use crate::harness::{compile_c, run_in, Counter, Mode, Run};

/// How many children a nursery holds at once (`sockmeter::nursery::SLOTS`).
const SLOTS: usize = sockmeter::nursery::SLOTS;

/// How many of `kids` counted in a nursery slot (they map one region: their parent's).
fn in_slots(kids: &[(u32, u32, u32)]) -> usize {
    kids.iter().filter(|&&(_, regions, _)| regions == 1).count()
}

/// How many children's lines end with `what` (` live=1`, ` snap=1`).
fn children_saying(r: &Run, what: &str) -> u64 {
    r.stdout
        .lines()
        .filter(|l| l.starts_with("child ") && l.ends_with(what))
        .count() as u64
}

/// Asserts that more of `r`'s `n` children counted in a slot than the nursery has: slots were
/// given back and taken again. (A child that found every slot taken, the shipper not having
/// seen its predecessors end yet on a loaded machine, made a region of its own, and is exact
/// all the same: `run`.)
fn assert_slots_came_back(r: &Run, n: u64) {
    let in_slots = in_slots(&children(r));
    assert!(
        in_slots > SLOTS,
        "{in_slots} of {n} children counted in a slot: slots are not given back\n{}",
        r.stdout
    );
}

/// Each child's `(pid, regions, nurseries)` from its line.
fn children(r: &Run) -> Vec<(u32, u32, u32)> {
    let field = |l: &str, k: &str| -> u32 {
        l.split_whitespace()
            .find_map(|w| w.strip_prefix(k))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{k} in {l:?}"))
    };
    r.stdout
        .lines()
        .filter(|l| l.starts_with("child "))
        .map(|l| {
            (
                l.split_whitespace().nth(1).unwrap().parse().unwrap(),
                field(l, "regions="),
                field(l, "nurseries="),
            )
        })
        .collect()
}

/// Runs `nursery PORT n size mode` metered (through `prefix`, a command it is run by, if any)
/// and checks what holds in any case: every child that touched a socket (`n` of them; 1 in
/// mode `inherit`) and the parent are exact against the server.
fn run(n: u64, mode: &str, prefix: &[&str]) -> Run {
    run_with(n, mode, prefix, &[], &[])
}

/// [`run`], with more arguments for `sockmeter run` and more environment for the program.
fn run_with(n: u64, mode: &str, prefix: &[&str], extra: &[&str], env: &[(&str, &str)]) -> Run {
    let (size, reply) = (700u64, 300usize);
    let counter = Counter::start(if mode == "inherit" { 2 } else { n + 1 }, reply);
    let prog = compile_c("nursery", &["-pthread"]).display().to_string();
    let (port, count, size_s) = (counter.port.to_string(), n.to_string(), size.to_string());
    let mut cmd: Vec<&str> = prefix.to_vec();
    cmd.extend([prog.as_str(), &port, &count, &size_s, mode]);
    let r = run_in(Mode::Shipper, extra, &cmd, env);
    let seen = counter.finish();
    let n = if mode == "inherit" { 1 } else { n };
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(seen.conns, n + 1);
    // Every forked process of the run is one of the program's children (`sh` execs it, and
    // the children that exec /bin/true in mode `inherit` must not be processes of the report).
    r.assert_each_forked_child(n, (size, reply as u64, 1));
    assert_eq!(
        (r.report.totals.tx_bytes, r.report.totals.rx_bytes),
        (seen.rx, seen.tx),
        "{}",
        r.stderr
    );
    assert_eq!(children(&r).len() as u64, n, "{}", r.stdout);
    r
}

/// Children forked one after another count in the nursery, which the parent makes once: no
/// child maps a region of its own beyond the one it inherited, and more children than the
/// nursery has slots used one, so slots were given back and taken again.
#[test]
fn children_one_after_another_count_in_the_nursery_and_its_slots_come_back() {
    let n = 30;
    let r = run(n, "serial", &[]);
    assert!(r.stdout.contains("parent regions=1 nurseries=1\n"), "{}", r.stdout);
    assert!(
        children(&r).iter().all(|&(_, _, m)| m == 1),
        "every child inherited the nursery:\n{}",
        r.stdout
    );
    assert_slots_came_back(&r, n);
}

/// More children alive at once than the nursery has slots: at most that many count in it,
/// the others make regions of their own, and every one is exact.
#[test]
fn children_beyond_the_nurserys_slots_make_regions_of_their_own() {
    let n = 3 * SLOTS as u64;
    let r = run(n, "concurrent", &[]);
    let kids = children(&r);
    let in_slots = in_slots(&kids);
    let own = kids.iter().filter(|&&(_, regions, _)| regions == 2).count();
    assert!(
        (1..=SLOTS).contains(&in_slots),
        "{in_slots} children in {SLOTS} slots:\n{}",
        r.stdout
    );
    assert_eq!(in_slots + own, n as usize, "{}", r.stdout);
}

/// A process whose address space is limited (`ulimit -v`) gets no nursery (its slots are
/// address space the host may need): its children make regions of their own, as before.
#[test]
fn a_limited_address_space_gets_no_nursery() {
    let n = 6;
    // 16 GiB: far more than the program needs, but not unlimited.
    let r = run(n, "serial", &["sh", "-c", "ulimit -v 16777216 && exec \"$@\"", "sh"]);
    assert!(r.stdout.contains("parent regions=1 nurseries=0\n"), "{}", r.stdout);
    let kids = children(&r);
    assert!(
        kids.iter().all(|&(_, regions, m)| (regions, m) == (2, 0)),
        "{}",
        r.stdout
    );
}

/// Children that hold their parent's socket from their first instruction take a slot at the
/// fork, handed over silently; those that exec without touching a socket appear nowhere in the
/// report (only the last child is a process of it), and their slots come back: the child after
/// them finds one free.
#[test]
fn children_that_exec_without_a_socket_give_their_slots_back_silently() {
    let r = run(2 * SLOTS as u64, "inherit", &[]);
    let kids = children(&r);
    assert_eq!(kids.len(), 1, "{}", r.stdout);
    assert_eq!(
        (kids[0].1, kids[0].2),
        (1, 1),
        "the last child counts in a slot:\n{}",
        r.stdout
    );
}

/// A forking server's children serve the connection their parent made (here: connected; an
/// accepted one is the same to them), inherited at the fork: each counts in a nursery slot
/// from the fork on, and is exact; the slots come back.
#[test]
fn a_forking_servers_children_count_in_the_nursery() {
    let n = 3 * SLOTS as u64;
    let r = run(n, "server", &[]);
    assert_slots_came_back(&r, n);
}

/// Children that start a thread before any socket make their region then (the last moment the
/// process surely has one thread): in a slot too, handed over silently at once and spoken for
/// at their first socket; each is exact and the slots come back.
#[test]
fn children_that_start_a_thread_first_count_in_the_nursery() {
    let n = 3 * SLOTS as u64;
    let r = run(n, "threads", &[]);
    assert_slots_came_back(&r, n);
}

/// A child handed over silently (here: at its first thread, 300 ms before its first socket) is
/// not woken for when it starts shipping (`Shared::start_shipping`); its shipper finds it at its
/// next tick. So it is reported while it lives: each child here waits, after its exchange, until
/// the run's event stream has its hello, and says whether it came (within 20 s; the tick is at
/// most 100 ms). A shipper that looked only at the child's end fails this.
#[test]
fn a_silently_handed_over_child_is_reported_while_it_lives() {
    let stream = crate::harness::scratch_path("nursery-live").with_extension("ndjson");
    let path = stream.display().to_string();
    let n = 3;
    let r = run_with(n, "live", &[], &["--json-stream", &path], &[("NURSERY_STREAM", &path)]);
    assert!(
        in_slots(&children(&r)) >= 1,
        "no child counted in a slot:\n{}",
        r.stdout
    );
    assert_eq!(
        children_saying(&r, " live=1"),
        n,
        "every child's hello while it lived:\n{}",
        r.stdout
    );
}

/// A child handed over to its parent's shipper asks for its own report through the API a host
/// embeds (`sockmeter_snapshot_json`): the shipper, woken through the adoption channel (the
/// child's link is a pipe it never writes), answers with the child's own counts, and reads the
/// wake-up as one (no complaint about a hand-over it could not read).
#[test]
fn a_handed_over_child_gets_its_own_snapshot() {
    let n = 3;
    let r = run(n, "snapshot", &[]);
    assert!(
        in_slots(&children(&r)) >= 1,
        "no child counted in a slot:\n{}",
        r.stdout
    );
    assert_eq!(
        children_saying(&r, " snap=1"),
        n,
        "every child's own report:\n{}",
        r.stdout
    );
    assert!(!r.stderr.contains("hand-over"), "{}", r.stderr);
}

/// Children that count in the nursery end in four ways: `exit(3)`, `_exit(5)`, killed by
/// SIGTERM, and `exit(4)` followed by an exit handler (registered by the parent before the shim
/// was loaded, so it runs after the shim's) that kills the child with SIGKILL. The report has
/// how each really ended, as the parent's `wait` saw it: the parent skips writing an ending to
/// the endings file only when the child recorded the same one in its slot (its shipper's `bye`
/// carries it), so the last child's exit code 4, recorded before the SIGKILL, must not stand.
#[test]
fn a_nursery_childs_ending_is_the_one_its_parent_reaped() {
    let n = 8;
    let r = run(n, "endings", &[]);
    assert!(
        in_slots(&children(&r)) >= 1,
        "no child counted in a slot:\n{}",
        r.stdout
    );
    let want = |i: usize| match i % 4 {
        0 => ("exit", Some(3), None),
        1 => ("exit", Some(5), None),
        2 => ("signal", None, Some(libc::SIGTERM)),
        _ => ("signal", None, Some(libc::SIGKILL)),
    };
    for (i, (pid, _, _)) in children(&r).into_iter().enumerate() {
        let p = r
            .report
            .processes
            .iter()
            .find(|p| p.pid == pid)
            .unwrap_or_else(|| panic!("child {pid} is not in the report:\n{}", r.stderr));
        assert_eq!(
            (p.end.as_str(), p.exit_code, p.signal),
            want(i),
            "child {i} (pid {pid}):\n{}",
            r.stderr
        );
        assert!(p.ended_at.is_some(), "child {pid}");
    }
}
