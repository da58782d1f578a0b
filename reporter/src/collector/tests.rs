//! Tests of the collector: many connections (hostile ones among them), exec hand-overs, the
//! admission policy and connections that never say hello.

use super::*;
use crate::private_dir::PrivateDir;
use sockmeter::model::{Family, Proto, Role};
use sockmeter::wire::{encode, Bye, Delta, Hello, Message, Origin, SocketDelta, SocketInfo};
use std::io::Write;

fn hello(pid: u32) -> Vec<u8> {
    encode(&Message::Hello(Hello {
        pid,
        ppid: 1,
        exe: "/bin/x".into(),
        argv: vec!["x".into()],
        started_at: 5,
        origin: Origin::Start,
        shim_version: "t".into(),
        interval_ms: 1000,
        image: 0,
    }))
}

fn traffic(id: u64, family: Family, tx: u64) -> Vec<u8> {
    let mut v = encode(&Message::Socket(SocketInfo {
        id,
        fd: 4,
        family,
        proto: Proto::Tcp,
        role: Role::Connected,
        peer: Some("10.0.0.1:443".into()),
        opened_at: 6,
        ..Default::default()
    }));
    v.extend(encode(&Message::Delta(Delta {
        at: 7,
        sockets: vec![SocketDelta {
            id,
            tx_bytes: tx,
            ..Default::default()
        }],
    })));
    v
}

fn bye(reason: ByeReason) -> Vec<u8> {
    encode(&Message::Bye(Bye {
        at: 8,
        reason,
        dropped_events: 0,
        status: None,
    }))
}

fn pump(c: &mut Collector, until: impl Fn(&Collector) -> bool) {
    for _ in 0..200 {
        c.poll(Duration::from_millis(10)).unwrap();
        if until(c) {
            return;
        }
    }
    panic!("collector did not get there");
}

#[test]
fn many_connections_hostile_ones_included() {
    let dir = PrivateDir::new().unwrap();
    let mut c = Collector::bind(&dir.path().join("s")).unwrap();
    let me = std::process::id();

    let mut a = UnixStream::connect(c.socket_path()).unwrap();
    a.write_all(&[hello(me), traffic(1, Family::Inet, 100), bye(ByeReason::Exit)].concat())
        .unwrap();
    let mut b = UnixStream::connect(c.socket_path()).unwrap();
    b.write_all(
        &[
            hello(me + 1),
            traffic(1, Family::Inet6, 10),
            b"\xff\xfe not json\n".to_vec(),
            traffic(2, Family::Inet, 5),
        ]
        .concat(),
    )
    .unwrap();
    let silent = UnixStream::connect(c.socket_path()).unwrap();
    pump(&mut c, |c| {
        c.conns().count() == 3 && c.conns().nth(1).unwrap().report(false, "x").totals.tx_bytes == 15
    });

    assert_eq!(
        c.awaited(),
        2,
        "b is open, the silent one too; a said bye (still connected)"
    );
    let w = c.take_warnings();
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].starts_with(&format!("pid {} (connection 2)", me + 1)), "{}", w[0]);
    drop(b);
    drop(silent);
    pump(&mut c, |c| c.awaited() == 0);
    drop(a);

    let conns = c.finish();
    assert_eq!(conns.len(), 2, "the silent connection is not a process");
    let r: Vec<_> = conns.iter().map(|c| c.report(false, "running")).collect();
    assert_eq!((r[0].totals.tx_bytes, r[0].end.as_str()), (100, "exit"));
    assert_eq!((r[1].totals.tx_bytes, r[1].end.as_str()), (15, "lost"));
}

#[test]
fn an_exec_bye_is_awaited_until_the_new_image_connects() {
    let dir = PrivateDir::new().unwrap();
    let mut c = Collector::bind(&dir.path().join("s")).unwrap();
    let me = std::process::id();
    let mut old = UnixStream::connect(c.socket_path()).unwrap();
    old.write_all(&[hello(me), bye(ByeReason::Exec)].concat()).unwrap();
    drop(old);
    pump(&mut c, |c| c.conns().next().is_some_and(|k| !k.is_open()));
    assert_eq!(c.awaited(), 1, "our own pid is alive and has not reconnected");
    let mut new = UnixStream::connect(c.socket_path()).unwrap();
    new.write_all(&[hello(me), bye(ByeReason::Exit)].concat()).unwrap();
    pump(&mut c, |c| c.awaited() == 0);
    let ends: Vec<_> = c.finish().iter().map(|k| k.report(false, "running").end).collect();
    assert_eq!(ends, ["exec", "exit"]);
}

#[test]
fn an_exec_bye_of_a_dead_pid_is_not_awaited() {
    let dir = PrivateDir::new().unwrap();
    let mut c = Collector::bind(&dir.path().join("s")).unwrap();
    let mut old = UnixStream::connect(c.socket_path()).unwrap();
    // pid_max is at most 2^22, so this pid cannot exist.
    old.write_all(&[hello(4_999_999), bye(ByeReason::Exec)].concat())
        .unwrap();
    pump(&mut c, |c| {
        c.conns().count() == 1 && !c.conns().next().unwrap().is_open()
    });
    assert_eq!(c.awaited(), 0);
    let open = UnixStream::connect(c.socket_path()).unwrap();
    let mut w = open.try_clone().unwrap();
    w.write_all(&hello(4_999_998)).unwrap();
    pump(&mut c, |c| {
        c.conns().count() == 2 && c.conns().nth(1).unwrap().account().hello().is_some()
    });
    assert_eq!(c.awaited(), 1);
    let r: Vec<_> = c.finish().iter().map(|k| k.report(false, "running").end).collect();
    assert_eq!(r, ["exec", "running"], "still connected at the end: running");
}

#[test]
fn only_the_policys_processes_are_taken_and_refusals_are_counted() {
    let dir = PrivateDir::new().unwrap();
    let mut c = Collector::bind(&dir.path().join("s")).unwrap();
    let me = std::process::id();
    let mut ours = UnixStream::connect(c.socket_path()).unwrap();
    ours.write_all(&[hello(me), traffic(1, Family::Inet, 100)].concat())
        .unwrap();
    pump(&mut c, |c| c.conns().count() == 1);

    // From now on only the descendants of a sleeping child are the run: this test is not.
    let mut child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
    c.set_policy(Policy::DescendantsOf(child.id()));
    let mut strangers = Vec::new();
    for forged in [4242, 4243] {
        let mut s = UnixStream::connect(c.socket_path()).unwrap();
        s.write_all(&[hello(forged), traffic(1, Family::Inet, 1 << 40)].concat())
            .unwrap();
        strangers.push(s);
    }
    pump(&mut c, |c| c.refused == 2);
    for s in &mut strangers {
        let mut buf = [0u8; 1];
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        // Closed by the reporter (with unread data: a reset).
        match std::io::Read::read(s, &mut buf) {
            Ok(0) => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
            r => panic!("the refused connection is still open: {r:?}"),
        }
    }
    ours.write_all(&traffic(2, Family::Inet, 5)).unwrap();
    pump(&mut c, |c| {
        c.conns().next().unwrap().report(false, "x").totals.tx_bytes == 105
    });
    let w = c.take_warnings();
    assert_eq!(w.len(), 1, "one warning for the run: {w:?}");
    assert!(
        w[0].starts_with(&format!("refused a connection to the reporter from pid {me} ("))
            && w[0].contains("not a process of this run"),
        "{}",
        w[0]
    );
    let notes = c.notices();
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(
        notes[0].starts_with("refused 2 connections to the reporter from processes outside this run (first: pid "),
        "{}",
        notes[0]
    );
    assert_eq!(c.conns().count(), 1, "a refused connection is no connection");
    drop(ours);
    let conns = c.finish();
    assert_eq!(conns.len(), 1);
    assert!(conns.iter().all(|k| k.account().hello().unwrap().pid == me));
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn a_connection_without_hello_is_no_process() {
    let dir = PrivateDir::new().unwrap();
    let mut c = Collector::bind(&dir.path().join("s")).unwrap();
    let mut mute = UnixStream::connect(c.socket_path()).unwrap();
    // Counts before any hello are refused, and so is the connection as a process.
    mute.write_all(&traffic(1, Family::Inet, 100)).unwrap();
    drop(mute);
    let empty = UnixStream::connect(c.socket_path()).unwrap();
    drop(empty);
    pump(&mut c, |c| c.conns().count() == 2 && c.awaited() == 0);
    let w = c.take_warnings();
    assert!(
        w.iter()
            .any(|w| w.contains("connection 1 (no hello yet)") && w.contains("before the hello")),
        "{w:?}"
    );
    assert_eq!(
        c.notices(),
        ["1 connection sent messages but never a hello; it is not counted"]
    );
    assert!(c.finish().is_empty());
}

/// A shipper sends its hosts' images in turn on one connection: each `bye` ends an image and
/// the next `hello` starts another, a process of its own with its own counts, whether the two
/// arrive in one read or split anywhere; nothing is warned, and the connection stays open for
/// a third.
#[test]
fn images_in_turn_on_one_connection_are_processes_of_their_own() {
    let dir = PrivateDir::new().unwrap();
    let mut c = Collector::bind(&dir.path().join("s")).unwrap();
    let me = std::process::id();
    let first = [hello(me), traffic(1, Family::Inet, 100), bye(ByeReason::Exit)].concat();
    let second = [hello(me + 1), traffic(1, Family::Inet, 7), bye(ByeReason::Exit)].concat();
    let third = [hello(me + 2), traffic(1, Family::Inet, 3)].concat();
    let mut s = UnixStream::connect(c.socket_path()).unwrap();
    // The second image begins in the same write as the first one's bye, and is cut mid-line.
    let both = [first, second.clone()].concat();
    let cut = both.len() - second.len() + 9;
    s.write_all(&both[..cut]).unwrap();
    pump(&mut c, |c| c.conns().count() == 2);
    s.write_all(&both[cut..]).unwrap();
    pump(&mut c, |c| {
        c.conns()
            .filter(|k| k.status() == Status::SaidBye(ByeReason::Exit))
            .count()
            == 2
    });
    s.write_all(&third).unwrap();
    pump(&mut c, |c| {
        c.conns().count() == 3 && c.conns().last().is_some_and(|k| k.account().hello().is_some())
    });
    pump(&mut c, |c| {
        c.conns()
            .last()
            .is_some_and(|k| k.account().report(false, "running").totals.tx_bytes == 3)
    });
    assert!(c.take_warnings().is_empty());
    let conns: Vec<&Conn> = c.conns().collect();
    let seen: Vec<(u32, u64, bool)> = conns
        .iter()
        .map(|k| {
            let r = k.account().report(false, "running");
            (r.pid, r.totals.tx_bytes, k.is_open())
        })
        .collect();
    assert_eq!(seen, vec![(me, 100, false), (me + 1, 7, false), (me + 2, 3, true)]);
    assert_eq!(c.open_connections(), 1, "one connection, still open");
    assert_eq!(c.awaited(), 1, "only the third image is waited for");
    drop(s);
    pump(&mut c, |c| c.open_connections() == 0);
    assert_eq!(c.conns().last().map(|k| k.status()), Some(Status::Lost));
}

/// A wait polls the open connections only: a shipper's connection that carried a hundred images
/// in turn leaves a hundred slots (the report has each process) and one connection to poll; a
/// connection that closes leaves the poll set.
#[test]
fn a_wait_polls_the_open_connections_not_every_image() {
    let dir = PrivateDir::new().unwrap();
    let mut c = Collector::bind(&dir.path().join("s")).unwrap();
    let me = std::process::id();
    let images: Vec<u8> = (0..100)
        .flat_map(|k| [hello(me + k), traffic(1, Family::Inet, 1), bye(ByeReason::Exit)].concat())
        .collect();
    let mut shipper = UnixStream::connect(c.socket_path()).unwrap();
    let mut other = UnixStream::connect(c.socket_path()).unwrap();
    shipper.write_all(&images).unwrap();
    other.write_all(&hello(me + 1000)).unwrap();
    pump(&mut c, |c| {
        c.conns().count() == 101
            && c.conns()
                .filter(|k| k.status() == Status::SaidBye(ByeReason::Exit))
                .count()
                == 100
    });
    c.refresh_open();
    assert_eq!((c.open.len(), c.open_connections()), (2, 2));
    drop(other);
    pump(&mut c, |c| c.open_connections() == 1);
    c.refresh_open();
    assert_eq!(c.open.len(), 1);
    assert!(c.take_warnings().is_empty());
}
