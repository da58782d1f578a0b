//! fd games (`tests/c/fdgames.c`): the dup family onto and from sockets (over a file and back,
//! over another socket, over itself, F_DUPFD_CLOEXEC), a socket at the highest fd the
//! open-files limit allows, close_range with CLOSE_RANGE_CLOEXEC and then closefrom over
//! everything, and fd numbers reused for files, pipes, eventfd, memfd, epoll, timerfd,
//! signalfd, inotify, stdio streams and new sockets right after a socket was closed behind
//! the shim (a raw close system call; fclose and freopen of an fdopen'ed socket, which glibc
//! closes internally). Bytes moved through a reused number must never be counted on the
//! socket that held it before, and that socket must end closed.

use super::*;

/// Connections fdgames makes (its "sock" lines).
const CONNS: usize = 25;

fn fd_games(mode: Mode) {
    let bin = prog("fdgames", &[]);
    let plain = {
        let server = Oracle::server(CONNS, "s1000,e");
        let dir = fresh_dir("fdgames-plain");
        let out = unmetered(&[&bin, &server.port.to_string(), &path_str(&dir)]);
        assert_eq!(server.conns().len(), CONNS, "the unmetered run's connections");
        out
    };
    let server = Oracle::server(CONNS, "s1000,e");
    let dir = fresh_dir("fdgames");
    let r = metered_in(mode, &[&bin, &server.port.to_string(), &path_str(&dir)], &[]);
    let seen = by_port(server.conns());
    assert_same_results(&plain, &r, "r ");
    assert_eq!(
        lines_with(&r.stdout, "high "),
        lines_with(&plain, "high "),
        "the same top fd{}",
        ctx(&r)
    );

    let own = own_socks(&r.stdout);
    assert_eq!(own.len(), CONNS, "{}", ctx(&r));
    let p = only_process(&r);
    let inet: Vec<&SocketReport> = p.sockets.iter().filter(|s| s.family == "inet").collect();
    assert_eq!(
        inet.len(),
        CONNS,
        "one socket per connection: no socket split in two, none invented{}",
        ctx(&r)
    );
    for o in &own {
        let c = seen
            .get(&o.port)
            .unwrap_or_else(|| panic!("the peer never saw {} (port {}){}", o.name, o.port, ctx(&r)));
        assert_eq!((c.rx, c.tx), (o.tx, 1000), "{}: the exchange itself", o.name);
        let s = by_local(&r, p, o.port);
        // Counts (and no errors) exactly as the peer saw them: nothing done on a non-socket fd
        // that reused the socket's number is in them.
        assert_mirror(&r, s, c);
        assert!(
            s.closed_at.is_some(),
            "socket {} (port {}) was closed and must be reported closed{}",
            o.name,
            o.port,
            ctx(&r)
        );
    }
    assert_sum_mirror(&r, Some(p), &seen.values().copied().collect::<Vec<_>>());
}

both_modes! {
    /// Every connection of fdgames counts exactly what the peer saw, each ends closed, and
    /// every result the program prints is the unmetered run's.
    fn fd_games_count_exactly_what_the_peer_saw_and_reused_numbers_are_not_sockets(mode) {
        fd_games(mode);
    }
}
