//! Reporter connections a shipper keeps between hosts.
//!
//! A forking server's shipper serves a host per child, one after another. A connection per
//! host cost each child a `connect` and a `close` here and an `accept`, an admission check and
//! a `close` in the reporter: for a child that makes one short connection, more than its own
//! traffic. So when a host has ended and the reporter has all of it (its `bye` included), its
//! connection is kept for the next host, which says its own `hello` on it: the wire allows
//! images in turn on one connection (docs/wire.md). There are as many connections as hosts
//! alive at once, not as hosts.

use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;

use sockmeter::outbox::{self, Heard};

/// Connections kept beyond this many are closed (a burst of children ended at once).
const MAX_IDLE: usize = 4;

/// The connections no host uses now.
#[derive(Default)]
pub struct Pool {
    idle: Vec<UnixStream>,
}

impl Pool {
    /// Keeps a connection whose host ended with nothing left to send.
    pub fn put(&mut self, stream: UnixStream) {
        if self.idle.len() < MAX_IDLE {
            self.idle.push(stream);
        }
    }

    /// The kept connections, to poll with the hosts' fds: a reporter that ends the run, asks
    /// to be reached again (a `listen` that stops waits for its connections to close) or goes
    /// away is heard at once, not when the next host comes.
    pub fn poll_fds(&self) -> Vec<libc::pollfd> {
        self.idle
            .iter()
            .map(|s| libc::pollfd {
                fd: s.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            })
            .collect()
    }

    /// After a poll, with the entries [`Pool::poll_fds`] gave (before any other change to the
    /// pool): drops the connections the reporter said something on or closed.
    pub fn serve(&mut self, polled: &[libc::pollfd]) {
        let mut i = 0;
        self.idle.retain_mut(|s| {
            let ready = polled.get(i).is_some_and(|p| p.revents != 0);
            i += 1;
            !ready || outbox::listen(|b| s.read(b)) == Heard::Nothing
        });
    }

    /// A kept connection the reporter still listens on. One on which it ended the run, asked
    /// to be reached again or closed its end is dropped: the new host then connects itself,
    /// and hears the same thing there.
    pub fn take(&mut self) -> Option<UnixStream> {
        while let Some(mut s) = self.idle.pop() {
            if outbox::listen(|b| s.read(b)) == Heard::Nothing {
                return Some(s);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_connection_the_reporter_ended_or_closed_is_not_reused() {
        let mut pool = Pool::default();
        let (ours, mut theirs) = UnixStream::pair().unwrap();
        ours.set_nonblocking(true).unwrap();
        pool.put(ours);
        let (ours2, theirs2) = UnixStream::pair().unwrap();
        ours2.set_nonblocking(true).unwrap();
        pool.put(ours2);
        drop(theirs2);
        let (ours3, mut theirs3) = UnixStream::pair().unwrap();
        ours3.set_nonblocking(true).unwrap();
        pool.put(ours3);
        theirs3.write_all(outbox::END_LINE).unwrap();
        // The newest first: ended, then closed; the first one is still listened to.
        let mut got = pool.take().expect("the live one");
        assert!(pool.take().is_none());
        got.write_all(b"x").unwrap();
        let mut b = [0u8; 1];
        theirs.read_exact(&mut b).unwrap();
        assert_eq!(&b, b"x");
    }

    #[test]
    fn a_connection_the_reporter_asks_to_reconnect_is_let_go_at_once() {
        let mut pool = Pool::default();
        let mut peers = Vec::new();
        for _ in 0..2 {
            let (ours, theirs) = UnixStream::pair().unwrap();
            ours.set_nonblocking(true).unwrap();
            pool.put(ours);
            peers.push(theirs);
        }
        peers[0].write_all(outbox::RECONNECT_LINE).unwrap();
        let mut fds = pool.poll_fds();
        // SAFETY: polling our own fds.
        unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 1000) };
        pool.serve(&fds);
        // Closed on our side: the reporter's end reads EOF.
        peers[0]
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        let mut b = [0u8; 8];
        assert_eq!(
            peers[0].read(&mut b).unwrap(),
            0,
            "the connection asked to reconnect is closed"
        );
        assert!(pool.take().is_some(), "the other one is kept");
        assert!(pool.take().is_none());
    }

    #[test]
    fn only_a_few_are_kept() {
        let mut pool = Pool::default();
        let mut peers = Vec::new();
        for _ in 0..MAX_IDLE + 3 {
            let (ours, theirs) = UnixStream::pair().unwrap();
            ours.set_nonblocking(true).unwrap();
            pool.put(ours);
            peers.push(theirs);
        }
        let mut n = 0;
        while pool.take().is_some() {
            n += 1;
        }
        assert_eq!(n, MAX_IDLE);
    }
}
