//! The adoption channel, shipper side: forked children of a metered process hand their
//! regions to the shipper that already exists, instead of each starting one (a clone and an
//! exec per child: ~1 ms of CPU, most of it while the child waits).
//!
//! The host that started this shipper holds one end of a `SOCK_SEQPACKET` socketpair; its
//! forked children inherit it. A child that touches a socket sends one message: its pid,
//! parent, where its region starts in the memfd it sends (0, or a slot of its parent's nursery:
//! `sockmeter::nursery`), whether it is silent (1: handed over at its fork, before it ships;
//! else 0), executable and command line (NUL-separated), with three fds attached
//! (`SCM_RIGHTS`): that memfd, the read end of its own link pipe, and a pidfd of itself. A host that
//! has the channel (every handed-over child, whose link is a pipe it never writes, and the
//! process that started the shipper) wakes it with a one-byte message `!` on it. The channel ends (`recv` returns 0) only when no process
//! holds the host's end any more and every queued message was read, so a child whose message
//! was queued is never missed.

/// One forked child asking to be shipped.
#[derive(Debug)]
pub struct Adoptee {
    /// Its pid.
    pub pid: u32,
    /// Its parent.
    pub ppid: u32,
    /// Its executable.
    pub exe: String,
    /// Its command line.
    pub argv: Vec<String>,
    /// Its region's memfd.
    pub mem: i32,
    /// Where its region starts in that memfd (0, or a slot of its parent's nursery).
    pub offset: usize,
    /// Handed over at its fork, before it ships (`Handover::silent`).
    pub silent: bool,
    /// The read end of its link pipe.
    pub link: i32,
    /// A pidfd of it.
    pub pidfd: i32,
}

/// What one read of the channel gave.
pub enum Received {
    /// A child to ship.
    Adoptee(Adoptee),
    /// A wake-up from a host (one byte, `!`, no fds: a snapshot asked): every host gets its
    /// tick again in the round that read it.
    Wake,
    /// A message that was not one (its fds are closed).
    Malformed,
    /// Nothing queued right now.
    Nothing,
    /// The channel ended: no process can send any more.
    Ended,
}

fn close_all(fds: &[i32]) {
    for &fd in fds {
        // SAFETY: fds we received and own.
        unsafe { libc::close(fd) };
    }
}

/// Reads one message from the channel without blocking.
pub fn receive(chan: i32) -> Received {
    let mut buf = vec![0u8; 64 * 1024];
    let mut control = [0u64; 16];
    // SAFETY: recvmsg into our own buffers; the CMSG_* walk stays inside `control`
    // (msg_controllen as the kernel set it); received fds are taken with CLOEXEC.
    let (n, fds) = unsafe {
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr() as *mut libc::c_void,
            iov_len: buf.len(),
        };
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr() as *mut libc::c_void;
        msg.msg_controllen = std::mem::size_of_val(&control) as _;
        // (macOS has no shipper process: nothing is ever adopted there.)
        #[cfg(target_os = "linux")]
        let cloexec = libc::MSG_CMSG_CLOEXEC;
        #[cfg(not(target_os = "linux"))]
        let cloexec = 0;
        let n = libc::recvmsg(chan, &mut msg, libc::MSG_DONTWAIT | cloexec);
        let mut fds = Vec::new();
        if n >= 0 {
            let mut c = libc::CMSG_FIRSTHDR(&msg);
            while !c.is_null() {
                if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                    let data = libc::CMSG_DATA(c) as *const i32;
                    let count = ((*c).cmsg_len as usize - libc::CMSG_LEN(0) as usize) / std::mem::size_of::<i32>();
                    for i in 0..count {
                        fds.push(std::ptr::read_unaligned(data.add(i)));
                    }
                }
                c = libc::CMSG_NXTHDR(&msg, c);
            }
            if msg.msg_flags & (libc::MSG_TRUNC | libc::MSG_CTRUNC) != 0 {
                close_all(&fds);
                return Received::Malformed;
            }
        }
        (n, fds)
    };
    if n < 0 {
        let e = std::io::Error::last_os_error();
        return match e.kind() {
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted => Received::Nothing,
            _ => Received::Ended,
        };
    }
    if n == 0 && fds.is_empty() {
        return Received::Ended;
    }
    if fds.is_empty() && buf[..n as usize] == *b"!" {
        return Received::Wake;
    }
    match parse(&buf[..n as usize], &fds) {
        Some(a) => Received::Adoptee(a),
        None => {
            close_all(&fds);
            Received::Malformed
        }
    }
}

fn parse(bytes: &[u8], fds: &[i32]) -> Option<Adoptee> {
    let &[mem, link, pidfd] = fds else { return None };
    let mut parts = bytes
        .split(|&b| b == 0)
        .map(|p| String::from_utf8_lossy(p).into_owned());
    let pid = parts.next()?.parse().ok()?;
    let ppid = parts.next()?.parse().ok()?;
    let offset = parts.next()?.parse().ok()?;
    let silent = match parts.next()?.as_str() {
        "0" => false,
        "1" => true,
        _ => return None,
    };
    let exe = parts.next()?;
    let mut argv: Vec<String> = parts.collect();
    // The message ends with a NUL: the split's last piece is empty.
    if argv.last().is_some_and(String::is_empty) {
        argv.pop();
    }
    Some(Adoptee {
        pid,
        ppid,
        exe,
        argv,
        mem,
        offset,
        silent,
        link,
        pidfd,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_is_parsed_and_a_bad_one_refused() {
        let a = parse(b"12\x0034\x00655360\x001\x00/bin/x\x00x\x00-v\x00", &[5, 6, 7]).unwrap();
        assert_eq!(
            (a.pid, a.ppid, a.offset, a.silent, a.exe.as_str()),
            (12, 34, 655360, true, "/bin/x")
        );
        assert_eq!(a.argv, ["x", "-v"]);
        assert_eq!((a.mem, a.link, a.pidfd), (5, 6, 7));
        assert!(
            parse(b"12\x0034\x000\x000\x00/bin/x\x00", &[5, 6]).is_none(),
            "three fds"
        );
        assert!(parse(b"12\x0034\x00/bin/x\x00", &[5, 6, 7]).is_none(), "an offset");
        assert!(
            parse(b"12\x0034\x000\x00/bin/x\x00", &[5, 6, 7]).is_none(),
            "a silent flag"
        );
        assert!(parse(b"x\x0034\x00", &[5, 6, 7]).is_none(), "a pid");
    }
}
