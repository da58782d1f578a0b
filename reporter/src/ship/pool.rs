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
