//! Which `syscall()` numbers the shim meters, by number alone: shared by the shim
//! (`syscalls::passes`) and the preload stage (`shim/stage1/`), which has no `libc` crate, so
//! the numbers are written out per architecture here (a test checks them against libc's
//! `SYS_*` constants).

/// A system call number, as `syscall()` takes it.
pub type Nr = core::ffi::c_long;

/// What `syscall(n, a1, ...)` is to the shim.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum SysClass {
    /// Not metered: straight to libc.
    Pass,
    /// A data or fd call on `a1`: straight to libc when `a1` is not a socket.
    OnFd,
    /// `sendfile`/`splice`: straight to libc when neither `a1` nor `a3` is a socket.
    OnTwoFds,
    /// Always metered (it makes, closes or duplicates fds, or ends the process).
    Always,
}

/// The class of system call `n`.
pub const fn sys_class(n: Nr) -> SysClass {
    use nr::*;
    match n {
        READ | WRITE | READV | WRITEV | PREADV | PWRITEV | PREADV2 | PWRITEV2 | SENDTO | RECVFROM | SENDMSG
        | RECVMSG | SENDMMSG | RECVMMSG | CONNECT | ACCEPT | ACCEPT4 | BIND | LISTEN | SHUTDOWN | DUP | FCNTL => {
            SysClass::OnFd
        }
        SENDFILE | SPLICE => SysClass::OnTwoFds,
        SOCKET | SOCKETPAIR | CLOSE | CLOSE_RANGE | DUP3 | IO_URING_SETUP | EXIT_GROUP | DUP2 => SysClass::Always,
        _ => SysClass::Pass,
    }
}

/// The numbers (`<asm/unistd_64.h>`).
#[cfg(target_arch = "x86_64")]
pub mod nr {
    use super::Nr;
    pub const READ: Nr = 0;
    pub const WRITE: Nr = 1;
    pub const CLOSE: Nr = 3;
    pub const READV: Nr = 19;
    pub const WRITEV: Nr = 20;
    pub const DUP: Nr = 32;
    pub const DUP2: Nr = 33;
    pub const SENDFILE: Nr = 40;
    pub const SOCKET: Nr = 41;
    pub const CONNECT: Nr = 42;
    pub const ACCEPT: Nr = 43;
    pub const SENDTO: Nr = 44;
    pub const RECVFROM: Nr = 45;
    pub const SENDMSG: Nr = 46;
    pub const RECVMSG: Nr = 47;
    pub const SHUTDOWN: Nr = 48;
    pub const BIND: Nr = 49;
    pub const LISTEN: Nr = 50;
    pub const SOCKETPAIR: Nr = 53;
    pub const FCNTL: Nr = 72;
    pub const EXIT_GROUP: Nr = 231;
    pub const SPLICE: Nr = 275;
    pub const ACCEPT4: Nr = 288;
    pub const DUP3: Nr = 292;
    pub const PREADV: Nr = 295;
    pub const PWRITEV: Nr = 296;
    pub const RECVMMSG: Nr = 299;
    pub const SENDMMSG: Nr = 307;
    pub const PREADV2: Nr = 327;
    pub const PWRITEV2: Nr = 328;
    pub const IO_URING_SETUP: Nr = 425;
    pub const CLOSE_RANGE: Nr = 436;
}

/// The numbers (`<asm-generic/unistd.h>`; aarch64 has no `dup2`, which is never matched here).
#[cfg(target_arch = "aarch64")]
pub mod nr {
    use super::Nr;
    pub const DUP: Nr = 23;
    pub const DUP3: Nr = 24;
    pub const FCNTL: Nr = 25;
    pub const CLOSE: Nr = 57;
    pub const READ: Nr = 63;
    pub const WRITE: Nr = 64;
    pub const READV: Nr = 65;
    pub const WRITEV: Nr = 66;
    pub const PREADV: Nr = 69;
    pub const PWRITEV: Nr = 70;
    pub const SENDFILE: Nr = 71;
    pub const SPLICE: Nr = 76;
    pub const EXIT_GROUP: Nr = 94;
    pub const SOCKET: Nr = 198;
    pub const SOCKETPAIR: Nr = 199;
    pub const BIND: Nr = 200;
    pub const LISTEN: Nr = 201;
    pub const ACCEPT: Nr = 202;
    pub const CONNECT: Nr = 203;
    pub const SENDTO: Nr = 206;
    pub const RECVFROM: Nr = 207;
    pub const SHUTDOWN: Nr = 210;
    pub const SENDMSG: Nr = 211;
    pub const RECVMSG: Nr = 212;
    pub const ACCEPT4: Nr = 242;
    pub const RECVMMSG: Nr = 243;
    pub const SENDMMSG: Nr = 269;
    pub const PREADV2: Nr = 286;
    pub const PWRITEV2: Nr = 287;
    pub const IO_URING_SETUP: Nr = 425;
    pub const CLOSE_RANGE: Nr = 436;
    /// Not a system call on aarch64.
    pub const DUP2: Nr = -2;
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::nr::*;

    #[test]
    fn the_numbers_are_libcs() {
        let pairs: &[(super::Nr, libc::c_long)] = &[
            (READ, libc::SYS_read),
            (WRITE, libc::SYS_write),
            (CLOSE, libc::SYS_close),
            (READV, libc::SYS_readv),
            (WRITEV, libc::SYS_writev),
            (DUP, libc::SYS_dup),
            (SENDFILE, libc::SYS_sendfile),
            (SOCKET, libc::SYS_socket),
            (CONNECT, libc::SYS_connect),
            (ACCEPT, libc::SYS_accept),
            (SENDTO, libc::SYS_sendto),
            (RECVFROM, libc::SYS_recvfrom),
            (SENDMSG, libc::SYS_sendmsg),
            (RECVMSG, libc::SYS_recvmsg),
            (SHUTDOWN, libc::SYS_shutdown),
            (BIND, libc::SYS_bind),
            (LISTEN, libc::SYS_listen),
            (SOCKETPAIR, libc::SYS_socketpair),
            (FCNTL, libc::SYS_fcntl),
            (EXIT_GROUP, libc::SYS_exit_group),
            (SPLICE, libc::SYS_splice),
            (ACCEPT4, libc::SYS_accept4),
            (DUP3, libc::SYS_dup3),
            (PREADV, libc::SYS_preadv),
            (PWRITEV, libc::SYS_pwritev),
            (RECVMMSG, libc::SYS_recvmmsg),
            (SENDMMSG, libc::SYS_sendmmsg),
            (PREADV2, libc::SYS_preadv2),
            (PWRITEV2, libc::SYS_pwritev2),
            (IO_URING_SETUP, libc::SYS_io_uring_setup),
            (CLOSE_RANGE, libc::SYS_close_range),
        ];
        for (ours, theirs) in pairs {
            assert_eq!(*ours, *theirs);
        }
        #[cfg(target_arch = "x86_64")]
        assert_eq!(DUP2, libc::SYS_dup2);
    }
}
