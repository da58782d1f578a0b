//! The one hook table. Each hooked function is declared here once; [`table::hook_table!`]
//! generates its real-function slot, its export and its wrapper. The handlers are in modules
//! by family: [`io`] (the per-byte path), [`lifecycle`] (sockets appearing, changing and
//! closing), [`signals`] (the host's signal handlers, behind a trampoline), [`process`]
//! (exit and exec) and [`threads`] (a new thread carries the module that created it). `fork` is handled with `pthread_atfork` (see
//! `runtime`), and Linux's `dlopen` (for RTLD_DEEPBIND plugins) lives with the platform code
//! because it must tail-call.
//!
//! `[fd x]` marks the argument whose fd decides the fast pass-through: an fd known not to be a
//! socket (a file, a pipe, a tty) costs one table load and goes straight to libc. `[data x]`
//! (the per-byte path) also counts a known socket's bytes without taking the guard.

pub mod io;
pub mod lifecycle;
pub mod process;
pub mod signals;
pub mod table;
pub mod threads;

use libc::{
    c_char, c_int, c_uint, c_ulong, c_void, iovec, mmsghdr, msghdr, off_t, pthread_attr_t, pthread_t, sighandler_t,
    size_t, sockaddr, socklen_t, ssize_t, timespec,
};
use sockmeter::registry::FdState;

use table::hook_table;

/// True when a call on `fd` goes straight to libc: the fd is known not to be a metered socket.
#[inline]
pub fn passes(fd: c_int) -> bool {
    matches!(crate::runtime::reg().fds.get(fd), FdState::NotSocket | FdState::Ignored)
}

hook_table! {
    // ---- the per-byte path (io.rs) ----
    fn send(fd: c_int, buf: *const c_void, len: size_t, flags: c_int) -> ssize_t [data fd] => after io::send;
    fn sendto(fd: c_int, buf: *const c_void, len: size_t, flags: c_int, addr: *const sockaddr, alen: socklen_t) -> ssize_t [data fd] => after io::sendto;
    fn sendmsg(fd: c_int, msg: *const msghdr, flags: c_int) -> ssize_t [data fd] => after io::sendmsg;
    fn recv(fd: c_int, buf: *mut c_void, len: size_t, flags: c_int) -> ssize_t [data fd] => after io::recv;
    fn recvfrom(fd: c_int, buf: *mut c_void, len: size_t, flags: c_int, addr: *mut sockaddr, alen: *mut socklen_t) -> ssize_t [data fd] => after io::recvfrom;
    fn recvmsg(fd: c_int, msg: *mut msghdr, flags: c_int) -> ssize_t [data fd] => after io::recvmsg;
    fn read(fd: c_int, buf: *mut c_void, len: size_t) -> ssize_t [data fd] => after io::read;
    fn write(fd: c_int, buf: *const c_void, len: size_t) -> ssize_t [data fd] => after io::write;
    fn readv(fd: c_int, iov: *const iovec, n: c_int) -> ssize_t [data fd] => after io::readv;
    fn writev(fd: c_int, iov: *const iovec, n: c_int) -> ssize_t [data fd] => after io::writev;
    #[cfg(target_os = "linux")]
    fn sendmmsg(fd: c_int, vec: *mut mmsghdr, vlen: c_uint, flags: c_int) -> c_int [data fd] => after io::sendmmsg;
    #[cfg(target_os = "linux")]
    fn recvmmsg(fd: c_int, vec: *mut mmsghdr, vlen: c_uint, flags: c_int, timeout: *mut timespec) -> c_int [data fd] => after io::recvmmsg;
    #[cfg(target_os = "linux")]
    fn sendfile(out_fd: c_int, in_fd: c_int, off: *mut off_t, count: size_t) -> ssize_t [data out_fd] => after io::sendfile;
    #[cfg(target_os = "linux")]
    fn sendfile64(out_fd: c_int, in_fd: c_int, off: *mut off_t, count: size_t) -> ssize_t [data out_fd] => after io::sendfile;
    #[cfg(target_os = "linux")]
    fn __read_chk(fd: c_int, buf: *mut c_void, len: size_t, buflen: size_t) -> ssize_t [data fd] => after io::read_chk;
    #[cfg(target_os = "linux")]
    fn __recv_chk(fd: c_int, buf: *mut c_void, len: size_t, buflen: size_t, flags: c_int) -> ssize_t [data fd] => after io::recv_chk;
    #[cfg(target_os = "linux")]
    fn __recvfrom_chk(fd: c_int, buf: *mut c_void, len: size_t, buflen: size_t, flags: c_int, addr: *mut sockaddr, alen: *mut socklen_t) -> ssize_t [data fd] => after io::recvfrom_chk;

    // ---- sockets appearing, changing, closing (lifecycle.rs) ----
    fn socket(domain: c_int, ty: c_int, protocol: c_int) -> c_int => after lifecycle::socket;
    fn socketpair(domain: c_int, ty: c_int, protocol: c_int, sv: *mut c_int) -> c_int => after lifecycle::socketpair;
    fn connect(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int [fd fd] => after lifecycle::connect;
    fn accept(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> c_int [fd fd] => after lifecycle::accept;
    #[cfg(target_os = "linux")]
    fn accept4(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t, flags: c_int) -> c_int [fd fd] => after lifecycle::accept4;
    fn bind(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int [fd fd] => after lifecycle::bind;
    fn listen(fd: c_int, backlog: c_int) -> c_int [fd fd] => after lifecycle::listen;
    fn shutdown(fd: c_int, how: c_int) -> c_int [fd fd] => after lifecycle::shutdown;
    fn close(fd: c_int) -> c_int => around lifecycle::close_before, lifecycle::close_after;
    #[cfg(target_os = "linux")]
    fn close_range(first: c_uint, last: c_uint, flags: c_int) -> c_int => around lifecycle::close_range_before, lifecycle::close_range_after;
    #[cfg(target_os = "linux")]
    fn closefrom(low: c_int) -> () => around lifecycle::closefrom_before, lifecycle::closefrom_after;
    fn dup(fd: c_int) -> c_int [fd fd] => after lifecycle::dup;
    fn dup2(old: c_int, new: c_int) -> c_int => around lifecycle::dup2_before, lifecycle::dup2_after;
    #[cfg(target_os = "linux")]
    fn dup3(old: c_int, new: c_int, flags: c_int) -> c_int => around lifecycle::dup3_before, lifecycle::dup3_after;
    /// `fcntl` is variadic in C; every command takes at most one integer or pointer argument,
    /// which the Linux calling conventions pass in the same register as a fixed third argument.
    #[cfg(target_os = "linux")]
    fn fcntl(fd: c_int, cmd: c_int, arg: c_ulong) -> c_int [fd fd] => after lifecycle::fcntl;
    #[cfg(target_os = "linux")]
    fn fcntl64(fd: c_int, cmd: c_int, arg: c_ulong) -> c_int [fd fd] => after lifecycle::fcntl;

    // ---- the host's signal handlers, behind the trampoline (signals.rs) ----
    fn sigaction(sig: c_int, act: *const libc::sigaction, old: *mut libc::sigaction) -> c_int => rewrite signals::sigaction;
    #[cfg(target_os = "linux")]
    fn __sigaction(sig: c_int, act: *const libc::sigaction, old: *mut libc::sigaction) -> c_int => rewrite signals::sigaction;
    fn signal(sig: c_int, handler: sighandler_t) -> sighandler_t => rewrite signals::signal;
    #[cfg(target_os = "linux")]
    fn bsd_signal(sig: c_int, handler: sighandler_t) -> sighandler_t => rewrite signals::signal;
    #[cfg(target_os = "linux")]
    fn ssignal(sig: c_int, handler: sighandler_t) -> sighandler_t => rewrite signals::signal;
    #[cfg(target_os = "linux")]
    fn sysv_signal(sig: c_int, handler: sighandler_t) -> sighandler_t => rewrite signals::signal;
    #[cfg(target_os = "linux")]
    fn __sysv_signal(sig: c_int, handler: sighandler_t) -> sighandler_t => rewrite signals::signal;
    fn sigset(sig: c_int, disp: sighandler_t) -> sighandler_t => rewrite signals::signal;

    // ---- the process ending or being replaced (process.rs) ----
    fn _exit(status: c_int) -> () => around process::exit_before, process::after_nothing;
    fn _Exit(status: c_int) -> () => around process::exit_before, process::after_nothing;
    fn execve(path: *const c_char, argv: *const *const c_char, envp: *const *const c_char) -> c_int => around process::exec3_before, process::exec3_after;
    fn execv(path: *const c_char, argv: *const *const c_char) -> c_int => around process::exec2_before, process::exec2_after;
    fn execvp(file: *const c_char, argv: *const *const c_char) -> c_int => around process::exec2_before, process::exec2_after;
    #[cfg(target_os = "linux")]
    fn execvpe(file: *const c_char, argv: *const *const c_char, envp: *const *const c_char) -> c_int => around process::exec3_before, process::exec3_after;
    #[cfg(target_os = "linux")]
    fn fexecve(fd: c_int, argv: *const *const c_char, envp: *const *const c_char) -> c_int => around process::exec3_before, process::exec3_after;

    // ---- threads carry the module that created them (threads.rs) ----
    #[cfg(target_os = "linux")]
    fn pthread_create(thread: *mut pthread_t, attr: *const pthread_attr_t, start: *mut c_void, arg: *mut c_void) -> c_int => rewrite threads::pthread_create;
}
