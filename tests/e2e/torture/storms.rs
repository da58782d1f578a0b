//! Process storms (`tests/c/storm.c`): forks with grandchildren (some of which never touch a
//! socket), vfork children that move and close the parent's socket before exec, posix_spawn
//! with file actions, and an exec chain sharing one connection down three images. The report
//! has exactly the processes (images) that metered something, each with exactly its own bytes.

use super::*;

/// A "proc PID ppid PPID image NAME sock PORT tx N" line.
#[derive(Debug)]
struct ProcLine {
    pid: u32,
    ppid: u32,
    image: String,
    port: u16,
    tx: u64,
}

fn proc_lines(stdout: &str) -> Vec<ProcLine> {
    lines_with(stdout, "proc ")
        .into_iter()
        .map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            assert!(w.len() == 10 && w[2] == "ppid" && w[6] == "sock", "bad line {l:?}");
            ProcLine {
                pid: num(w[1]) as u32,
                ppid: num(w[3]) as u32,
                image: w[5].to_string(),
                port: num(w[7]) as u16,
                tx: num(w[9]),
            }
        })
        .collect()
}

fn quiet_pids(stdout: &str) -> Vec<u32> {
    lines_with(stdout, "quiet ")
        .into_iter()
        .map(|l| num(&l["quiet ".len()..]) as u32)
        .collect()
}

/// The one report entry of process `pid` (one image).
fn process(r: &Run, pid: u32) -> &ProcessReport {
    let v: Vec<&ProcessReport> = r.report.processes.iter().filter(|p| p.pid == pid).collect();
    assert_eq!(v.len(), 1, "one report entry for pid {pid}{}", ctx(r));
    v[0]
}

/// Each line's connection is exactly what the peer saw, on the process that printed it, and
/// each such process moved exactly its connections' bytes.
fn check_connections(r: &Run, lines: &[ProcLine], seen: &HashMap<u16, Seen>, entry: impl Fn(&ProcLine) -> u32) {
    let mut per_proc: HashMap<u32, Vec<Seen>> = HashMap::new();
    for l in lines {
        let c = seen
            .get(&l.port)
            .unwrap_or_else(|| panic!("the peer never saw {l:?}{}", ctx(r)));
        assert_eq!((c.rx, c.tx), (l.tx, 1000), "{l:?}: the exchange itself");
        let p = process(r, entry(l));
        let s = by_local(r, p, l.port);
        assert_mirror(r, s, c);
        per_proc.entry(entry(l)).or_default().push(*c);
    }
    for (pid, conns) in per_proc {
        let p = process(r, pid);
        let own: Vec<&SocketReport> = p.sockets.iter().filter(|s| s.family == "inet").collect();
        assert_eq!(own.len(), conns.len(), "pid {pid}: one socket per connection{}", ctx(r));
        assert_eq!(
            (p.totals.tx_bytes, p.totals.rx_bytes),
            (conns.iter().map(|c| c.rx).sum(), conns.iter().map(|c| c.tx).sum()),
            "pid {pid} totals{}",
            ctx(r)
        );
        assert_eq!(p.end, "exit", "pid {pid} ended by itself{}", ctx(r));
    }
}

fn fork_storm(mode: Mode) {
    let (children, grand) = (12usize, 2usize);
    let bin = prog("storm", &[]);
    // The parent, 2 of every 3 children and 2 of every 3 grandchildren connect.
    let metering =
        1 + (0..children).filter(|c| c % 3 != 2).count() + (0..children * grand).filter(|g| g % 3 != 2).count();
    let server = Oracle::server(metering, "e,s1000");
    let r = metered_in(
        mode,
        &[
            &bin,
            &server.port.to_string(),
            "fork",
            &children.to_string(),
            &grand.to_string(),
        ],
        &[],
    );
    let seen = by_port(server.conns());
    let lines = proc_lines(&r.stdout);
    assert_eq!(lines.len(), metering, "{}", ctx(&r));
    let quiet = quiet_pids(&r.stdout);
    assert_eq!(quiet.len(), 1 + children + children * grand - metering, "{}", ctx(&r));

    let mut want: Vec<u32> = lines.iter().map(|l| l.pid).collect();
    want.sort_unstable();
    let mut got: Vec<u32> = r.report.processes.iter().map(|p| p.pid).collect();
    got.sort_unstable();
    assert_eq!(
        got,
        want,
        "exactly the processes that metered something, each once (quiet ones: {quiet:?}){}",
        ctx(&r)
    );
    check_connections(&r, &lines, &seen, |l| l.pid);
    let parent = lines.iter().find(|l| l.image == "parent").expect("the parent's line");
    for l in &lines {
        let p = process(&r, l.pid);
        assert_eq!(p.ppid, l.ppid, "{l:?}: its parent{}", ctx(&r));
        if l.image == "child" {
            assert_eq!(l.ppid, parent.pid, "{l:?}");
        }
    }
    assert_sum_mirror(&r, None, &seen.values().copied().collect::<Vec<_>>());
}

/// vfork or posix_spawn: the parent's kept connection is one socket with exactly its bytes,
/// whatever its children did with their copies of the fd before exec; a socket it opens after
/// its children is seen like any other; each child's exec'd image is reported with exactly
/// its own connection.
fn spawn_storm(mode: Mode, how: &str) {
    let n = 6usize;
    let bin = prog("storm", &[]);
    // The parent's kept connection and its last one, and one per child.
    let server = Oracle::server(n + 2, "e,s1000");
    let r = metered_in(mode, &[&bin, &server.port.to_string(), how, &n.to_string()], &[]);
    let seen = by_port(server.conns());
    let lines = proc_lines(&r.stdout);
    assert_eq!(lines.len(), n + 2, "{}", ctx(&r));
    let mut want: Vec<u32> = lines.iter().map(|l| l.pid).collect();
    want.sort_unstable();
    want.dedup();
    let mut got: Vec<u32> = r.report.processes.iter().map(|p| p.pid).collect();
    got.sort_unstable();
    assert_eq!(
        got,
        want,
        "the parent and each child's exec'd image, once each{}",
        ctx(&r)
    );
    check_connections(&r, &lines, &seen, |l| l.pid);
    // The parent's sockets were seen being created, and closed, and its goodbye arrived.
    let parent = process(&r, lines.iter().find(|l| l.image != "client").expect("parent").pid);
    for s in &parent.sockets {
        assert!(s.closed_at.is_some() && !s.adopted, "{:?}{}", s.local, ctx(&r));
    }
    assert_sum_mirror(&r, None, &seen.values().copied().collect::<Vec<_>>());
}

fn exec_chain(mode: Mode, how: &str) {
    let depth = 3usize;
    let bin = prog("storm", &[]);
    let server = Oracle::server(depth + 2, "e,s1000");
    let r = metered_in(mode, &[&bin, &server.port.to_string(), how, &depth.to_string()], &[]);
    let seen = by_port(server.conns());
    let lines = proc_lines(&r.stdout);
    assert_eq!(lines.len(), depth + 1, "{}", ctx(&r));
    let pid = lines[0].pid;
    assert!(lines.iter().all(|l| l.pid == pid), "one process, several images");
    assert_eq!(
        r.report.processes.len(),
        depth + 1,
        "one report entry per image{}",
        ctx(&r)
    );
    // The image an entry is: its argv's depth.
    let image_of = |p: &ProcessReport| format!("chain{}", p.argv.get(3).map(String::as_str).unwrap_or("?"));
    let shared_port = get(&fields(&r.stdout, "shared "), "sock") as u16;
    let shared = seen[&shared_port];
    let mut share_sum = 0;
    for p in &r.report.processes {
        assert_eq!(p.pid, pid, "{}", ctx(&r));
        let image = image_of(p);
        let own = lines
            .iter()
            .find(|l| l.image == image)
            .unwrap_or_else(|| panic!("no line for image {image}{}", ctx(&r)));
        let c = seen[&own.port];
        assert_eq!((c.rx, c.tx), (own.tx, 1000), "{image}: the exchange itself");
        assert_mirror(&r, by_local(&r, p, own.port), &c);
        let share = get(&fields(&r.stdout, &format!("share image {image} ")), "tx");
        share_sum += share;
        let s = by_local(&r, p, shared_port);
        let last = image == "chain0";
        assert_eq!(
            (s.tx_bytes, s.rx_bytes),
            (share, if last { shared.tx } else { 0 }),
            "{image}: its part of the shared connection{}",
            ctx(&r)
        );
        assert_eq!(
            (p.totals.tx_bytes, p.totals.rx_bytes),
            (c.rx + share, c.tx + if last { shared.tx } else { 0 }),
            "{image} totals{}",
            ctx(&r)
        );
    }
    assert_eq!(
        (shared.rx, shared.tx),
        (share_sum, 1000),
        "the shared connection itself"
    );
    assert_sum_mirror(&r, None, &seen.values().copied().collect::<Vec<_>>());
}

both_modes! {
    /// 12 children forked at once, 24 grandchildren; a third of them touch no socket.
    fn fork_storm_reports_exactly_the_processes_that_metered_with_their_bytes(mode) {
        fork_storm(mode);
    }

    /// vfork children dup2 and close the parent's socket before exec.
    fn vfork_children_leave_the_parents_socket_whole_and_their_images_are_exact(mode) {
        spawn_storm(mode, "vfork");
    }

    /// posix_spawn with close and dup2 file actions.
    fn posix_spawn_children_are_exact_and_the_parent_keeps_its_socket(mode) {
        spawn_storm(mode, "spawn");
    }
}

both_modes! {
    /// Four images of one process, each with a connection of its own and a part of one inherited
    /// connection, each reported as its own entry with exactly its own bytes.
    fn exec_chain_images_each_count_their_own_part_exactly(mode) {
        exec_chain(mode, "chain");
    }

    /// The same chain through `execl`, `execle` and `execlp`, which glibc runs on its internal
    /// execve (no call to the hooked one): each image still ends with its last counts shipped.
    fn an_execl_family_chain_counts_each_image_exactly(mode) {
        exec_chain(mode, "lchain");
    }
}
