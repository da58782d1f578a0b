// The one hook table (see `hooks/mod.rs`): included by the shim, which makes each entry a
// real-function slot, an export and a wrapper (`table.rs`), and by the preload stage
// (`shim/stage1/`), which makes each entry an export that forwards to the shim once it is
// loaded. Every hooked function is declared here and nowhere else.

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
    /// glibc's public aliases of send, read and write (`__send@GLIBC_2.2.5`, ...): the same
    /// functions under another name a program can link against.
    #[cfg(target_os = "linux")]
    fn __send(fd: c_int, buf: *const c_void, len: size_t, flags: c_int) -> ssize_t [data fd] => after io::send;
    #[cfg(target_os = "linux")]
    fn __read(fd: c_int, buf: *mut c_void, len: size_t) -> ssize_t [data fd] => after io::read;
    #[cfg(target_os = "linux")]
    fn __write(fd: c_int, buf: *const c_void, len: size_t) -> ssize_t [data fd] => after io::write;
    fn readv(fd: c_int, iov: *const iovec, n: c_int) -> ssize_t [data fd] => after io::readv;
    fn writev(fd: c_int, iov: *const iovec, n: c_int) -> ssize_t [data fd] => after io::writev;
    #[cfg(target_os = "linux")]
    fn sendmmsg(fd: c_int, vec: *mut mmsghdr, vlen: c_uint, flags: c_int) -> c_int [data fd] => after io::sendmmsg;
    #[cfg(target_os = "linux")]
    fn recvmmsg(fd: c_int, vec: *mut mmsghdr, vlen: c_uint, flags: c_int, timeout: *mut timespec) -> c_int [data fd] => after io::recvmmsg;
    /// Either end may be a socket: a socket read into a pipe works too (Linux 5.12+).
    #[cfg(target_os = "linux")]
    fn sendfile(out_fd: c_int, in_fd: c_int, off: *mut off_t, count: size_t) -> ssize_t [fd out_fd in_fd] => after io::sendfile;
    #[cfg(target_os = "linux")]
    fn sendfile64(out_fd: c_int, in_fd: c_int, off: *mut off_t, count: size_t) -> ssize_t [fd out_fd in_fd] => after io::sendfile;
    /// A socket at either end (the other is a pipe). `vmsplice` and `tee` need pipes at every
    /// end (the kernel refuses a socket), so they never move a socket's bytes and are not hooked.
    #[cfg(target_os = "linux")]
    fn splice(fd_in: c_int, off_in: *mut loff_t, fd_out: c_int, off_out: *mut loff_t, len: size_t, flags: c_uint) -> ssize_t [fd fd_in fd_out] => after io::splice;
    /// The vectored calls with an offset: on a socket `preadv`/`pwritev` always fail (ESPIPE),
    /// and the v2 calls with offset -1 are `readv`/`writev` with flags. glibc exports each under
    /// a `64` name too (the same function on 64-bit targets).
    fn preadv(fd: c_int, iov: *const iovec, n: c_int, off: off_t) -> ssize_t [data fd] => after io::preadv;
    #[cfg(target_os = "linux")]
    fn preadv64(fd: c_int, iov: *const iovec, n: c_int, off: off64_t) -> ssize_t [data fd] => after io::preadv;
    fn pwritev(fd: c_int, iov: *const iovec, n: c_int, off: off_t) -> ssize_t [data fd] => after io::pwritev;
    #[cfg(target_os = "linux")]
    fn pwritev64(fd: c_int, iov: *const iovec, n: c_int, off: off64_t) -> ssize_t [data fd] => after io::pwritev;
    #[cfg(target_os = "linux")]
    fn preadv2(fd: c_int, iov: *const iovec, n: c_int, off: off_t, flags: c_int) -> ssize_t [data fd] => after io::preadv2;
    #[cfg(target_os = "linux")]
    fn preadv64v2(fd: c_int, iov: *const iovec, n: c_int, off: off64_t, flags: c_int) -> ssize_t [data fd] => after io::preadv2;
    #[cfg(target_os = "linux")]
    fn pwritev2(fd: c_int, iov: *const iovec, n: c_int, off: off_t, flags: c_int) -> ssize_t [data fd] => after io::pwritev2;
    #[cfg(target_os = "linux")]
    fn pwritev64v2(fd: c_int, iov: *const iovec, n: c_int, off: off64_t, flags: c_int) -> ssize_t [data fd] => after io::pwritev2;
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
    /// `fcntl` is variadic in C; every command takes at most one integer or pointer argument
    /// (read from where the platform's calling convention puts it, even when the caller passed
    /// none: the real call then ignores it, as it would).
    fn fcntl(fd: c_int, cmd: c_int, ...arg: c_ulong) -> c_int [fd fd] => after lifecycle::fcntl;
    #[cfg(target_os = "linux")]
    fn fcntl64(fd: c_int, cmd: c_int, ...arg: c_ulong) -> c_int [fd fd] => after lifecycle::fcntl;

    // ---- new fds that are not sockets, stdio closing a stream's fd (files.rs) ----
    /// `open` and `openat` are variadic in C; the optional mode is an integer (read by the real
    /// call only with O_CREAT or O_TMPFILE, as when called directly).
    fn open(path: *const c_char, flags: c_int, ...mode: c_uint) -> c_int => after files::open;
    #[cfg(target_os = "linux")]
    fn open64(path: *const c_char, flags: c_int, ...mode: c_uint) -> c_int => after files::open;
    fn openat(dir: c_int, path: *const c_char, flags: c_int, ...mode: c_uint) -> c_int => after files::openat;
    #[cfg(target_os = "linux")]
    fn openat64(dir: c_int, path: *const c_char, flags: c_int, ...mode: c_uint) -> c_int => after files::openat;
    #[cfg(target_os = "linux")]
    fn __open_2(path: *const c_char, flags: c_int) -> c_int => after files::open_2;
    #[cfg(target_os = "linux")]
    fn __open64_2(path: *const c_char, flags: c_int) -> c_int => after files::open_2;
    #[cfg(target_os = "linux")]
    fn __openat_2(dir: c_int, path: *const c_char, flags: c_int) -> c_int => after files::openat_2;
    #[cfg(target_os = "linux")]
    fn __openat64_2(dir: c_int, path: *const c_char, flags: c_int) -> c_int => after files::openat_2;
    fn creat(path: *const c_char, mode: mode_t) -> c_int => after files::creat;
    #[cfg(target_os = "linux")]
    fn creat64(path: *const c_char, mode: mode_t) -> c_int => after files::creat;
    fn pipe(fds: *mut c_int) -> c_int => after files::pipe;
    #[cfg(target_os = "linux")]
    fn pipe2(fds: *mut c_int, flags: c_int) -> c_int => after files::pipe2;
    #[cfg(target_os = "linux")]
    fn eventfd(init: c_uint, flags: c_int) -> c_int => after files::eventfd;
    #[cfg(target_os = "linux")]
    fn memfd_create(name: *const c_char, flags: c_uint) -> c_int => after files::memfd_create;
    #[cfg(target_os = "linux")]
    fn epoll_create(size: c_int) -> c_int => after files::epoll_create;
    #[cfg(target_os = "linux")]
    fn epoll_create1(flags: c_int) -> c_int => after files::epoll_create1;
    #[cfg(target_os = "linux")]
    fn timerfd_create(clock: c_int, flags: c_int) -> c_int => after files::timerfd_create;
    #[cfg(target_os = "linux")]
    fn signalfd(fd: c_int, mask: *const sigset_t, flags: c_int) -> c_int => after files::signalfd;
    #[cfg(target_os = "linux")]
    fn inotify_init() -> c_int => after files::inotify_init;
    #[cfg(target_os = "linux")]
    fn inotify_init1(flags: c_int) -> c_int => after files::inotify_init1;
    fn fopen(path: *const c_char, mode: *const c_char) -> *mut FILE => after files::fopen;
    #[cfg(target_os = "linux")]
    fn fopen64(path: *const c_char, mode: *const c_char) -> *mut FILE => after files::fopen;
    fn freopen(path: *const c_char, mode: *const c_char, f: *mut FILE) -> *mut FILE => around files::freopen_before, files::freopen_after;
    #[cfg(target_os = "linux")]
    fn freopen64(path: *const c_char, mode: *const c_char, f: *mut FILE) -> *mut FILE => around files::freopen_before, files::freopen_after;
    fn fclose(f: *mut FILE) -> c_int => around files::fclose_before, files::fclose_after;

    // ---- the host's signal handlers, behind the trampoline (signals.rs) ----
    fn sigaction(sig: c_int, act: *const libc::sigaction, old: *mut libc::sigaction) -> c_int => rewrite signals::sigaction;
    #[cfg(target_os = "linux")]
    fn __sigaction(sig: c_int, act: *const libc::sigaction, old: *mut libc::sigaction) -> c_int => rewrite signals::sigaction;
    fn signal(sig: c_int, handler: sighandler_t) -> sighandler_t => rewrite signals::signal;
    fn bsd_signal(sig: c_int, handler: sighandler_t) -> sighandler_t => rewrite signals::signal;
    #[cfg(target_os = "linux")]
    fn ssignal(sig: c_int, handler: sighandler_t) -> sighandler_t => rewrite signals::signal;
    #[cfg(target_os = "linux")]
    fn sysv_signal(sig: c_int, handler: sighandler_t) -> sighandler_t => rewrite signals::signal;
    #[cfg(target_os = "linux")]
    fn __sysv_signal(sig: c_int, handler: sighandler_t) -> sighandler_t => rewrite signals::signal;
    fn sigset(sig: c_int, disp: sighandler_t) -> sighandler_t => rewrite signals::signal;

    // ---- the host's children ending (children.rs) ----
    fn wait(status: *mut c_int) -> libc::pid_t => rewrite children::wait;
    fn waitpid(pid: libc::pid_t, status: *mut c_int, options: c_int) -> libc::pid_t => rewrite children::waitpid;
    fn wait3(status: *mut c_int, options: c_int, usage: *mut libc::rusage) -> libc::pid_t => rewrite children::wait3;
    fn wait4(pid: libc::pid_t, status: *mut c_int, options: c_int, usage: *mut libc::rusage) -> libc::pid_t => rewrite children::wait4;
    fn waitid(idtype: libc::idtype_t, id: libc::id_t, info: *mut libc::siginfo_t, options: c_int) -> c_int => after children::waitid;

    // ---- syscall() itself (syscalls.rs) ----
    /// `syscall` is variadic in C: the number and six `long` arguments, read and passed on in
    /// the registers (and, on x86_64, the one stack slot) glibc's own `syscall` uses, on x86_64
    /// and aarch64 Linux (see `syscalls.rs`).
    #[cfg(target_os = "linux")]
    fn syscall(n: c_long, a1: c_long, a2: c_long, a3: c_long, a4: c_long, a5: c_long, a6: c_long) -> c_long [sys n] => around syscalls::before, syscalls::after;

    // ---- io_uring rings being created (uring.rs): liburing's entry points ----
    #[cfg(target_os = "linux")]
    fn io_uring_queue_init(entries: c_uint, ring: *mut c_void, flags: c_uint) -> c_int [lib] => after uring::queue_init;
    #[cfg(target_os = "linux")]
    fn io_uring_queue_init_params(entries: c_uint, ring: *mut c_void, p: *mut c_void) -> c_int [lib] => after uring::queue_init_params;
    #[cfg(target_os = "linux")]
    fn io_uring_queue_init_mem(entries: c_uint, ring: *mut c_void, p: *mut c_void, buf: *mut c_void, size: size_t) -> c_int [lib] => after uring::queue_init_mem;
    #[cfg(target_os = "linux")]
    fn io_uring_setup(entries: c_uint, p: *mut c_void) -> c_int [lib] => after uring::setup;

    // ---- CoreFoundation's CFSocket (cfsocket.rs): labels sockets, counts nothing ----
    fn CFSocketCreate(alloc: CFRef, family: i32, ty: i32, protocol: i32, callbacks: CFOptionFlags, callout: CFRef, context: CFRef) -> CFSocketRef [lib] => around cfsocket::create_before, cfsocket::create_after;
    fn CFSocketCreateWithNative(alloc: CFRef, fd: c_int, callbacks: CFOptionFlags, callout: CFRef, context: CFRef) -> CFSocketRef [lib] => around cfsocket::with_native_before, cfsocket::with_native_after;
    fn CFSocketCreateWithSocketSignature(alloc: CFRef, sig: CFRef, callbacks: CFOptionFlags, callout: CFRef, context: CFRef) -> CFSocketRef [lib] => around cfsocket::with_signature_before, cfsocket::with_signature_after;
    fn CFSocketCreateConnectedToSocketSignature(alloc: CFRef, sig: CFRef, callbacks: CFOptionFlags, callout: CFRef, context: CFRef, timeout: CFTimeInterval) -> CFSocketRef [lib] => around cfsocket::connected_before, cfsocket::connected_after;
    fn CFSocketSetAddress(s: CFSocketRef, address: CFRef) -> CFSocketError [lib] => after cfsocket::set_address;
    fn CFSocketConnectToAddress(s: CFSocketRef, address: CFRef, timeout: CFTimeInterval) -> CFSocketError [lib] => after cfsocket::connect_to_address;
    fn CFSocketSendData(s: CFSocketRef, address: CFRef, data: CFRef, timeout: CFTimeInterval) -> CFSocketError [lib] => after cfsocket::send_data;
    fn CFSocketInvalidate(s: CFSocketRef) -> () [lib] => around cfsocket::invalidate_before, cfsocket::invalidate_after;

    // ---- macOS: libSystem's non-cancellable variants (distinct symbols a program or libSystem
    // itself binds to: `recv` calls `__recvfrom_nocancel`, not these) and BSD sendfile ----
    #[cfg(target_os = "macos")]
    fn send_nocancel = "send$NOCANCEL" (fd: c_int, buf: *const c_void, len: size_t, flags: c_int) -> ssize_t [data fd] => after io::send;
    #[cfg(target_os = "macos")]
    fn sendto_nocancel = "sendto$NOCANCEL" (fd: c_int, buf: *const c_void, len: size_t, flags: c_int, addr: *const sockaddr, alen: socklen_t) -> ssize_t [data fd] => after io::sendto;
    #[cfg(target_os = "macos")]
    fn sendmsg_nocancel = "sendmsg$NOCANCEL" (fd: c_int, msg: *const msghdr, flags: c_int) -> ssize_t [data fd] => after io::sendmsg;
    #[cfg(target_os = "macos")]
    fn recv_nocancel = "recv$NOCANCEL" (fd: c_int, buf: *mut c_void, len: size_t, flags: c_int) -> ssize_t [data fd] => after io::recv;
    #[cfg(target_os = "macos")]
    fn recvfrom_nocancel = "recvfrom$NOCANCEL" (fd: c_int, buf: *mut c_void, len: size_t, flags: c_int, addr: *mut sockaddr, alen: *mut socklen_t) -> ssize_t [data fd] => after io::recvfrom;
    #[cfg(target_os = "macos")]
    fn recvmsg_nocancel = "recvmsg$NOCANCEL" (fd: c_int, msg: *mut msghdr, flags: c_int) -> ssize_t [data fd] => after io::recvmsg;
    #[cfg(target_os = "macos")]
    fn read_nocancel = "read$NOCANCEL" (fd: c_int, buf: *mut c_void, len: size_t) -> ssize_t [data fd] => after io::read;
    #[cfg(target_os = "macos")]
    fn write_nocancel = "write$NOCANCEL" (fd: c_int, buf: *const c_void, len: size_t) -> ssize_t [data fd] => after io::write;
    #[cfg(target_os = "macos")]
    fn readv_nocancel = "readv$NOCANCEL" (fd: c_int, iov: *const iovec, n: c_int) -> ssize_t [data fd] => after io::readv;
    #[cfg(target_os = "macos")]
    fn writev_nocancel = "writev$NOCANCEL" (fd: c_int, iov: *const iovec, n: c_int) -> ssize_t [data fd] => after io::writev;
    #[cfg(target_os = "macos")]
    fn preadv_nocancel = "preadv$NOCANCEL" (fd: c_int, iov: *const iovec, n: c_int, off: off_t) -> ssize_t [data fd] => after io::preadv;
    #[cfg(target_os = "macos")]
    fn pwritev_nocancel = "pwritev$NOCANCEL" (fd: c_int, iov: *const iovec, n: c_int, off: off_t) -> ssize_t [data fd] => after io::pwritev;
    /// BSD sendfile: a file (and headers and trailers) to socket `s`.
    #[cfg(target_os = "macos")]
    fn sendfile(fd: c_int, s: c_int, offset: off_t, len: *mut off_t, hdtr: *mut c_void, flags: c_int) -> c_int [fd s] => after io::sendfile_bsd;
    #[cfg(target_os = "macos")]
    fn connect_nocancel = "connect$NOCANCEL" (fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int [fd fd] => after lifecycle::connect;
    #[cfg(target_os = "macos")]
    fn accept_nocancel = "accept$NOCANCEL" (fd: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> c_int [fd fd] => after lifecycle::accept;
    #[cfg(target_os = "macos")]
    fn close_nocancel = "close$NOCANCEL" (fd: c_int) -> c_int => around lifecycle::close_before, lifecycle::close_after;
    #[cfg(target_os = "macos")]
    fn fcntl_nocancel = "fcntl$NOCANCEL" (fd: c_int, cmd: c_int, ...arg: c_ulong) -> c_int [fd fd] => after lifecycle::fcntl;
    #[cfg(target_os = "macos")]
    fn open_nocancel = "open$NOCANCEL" (path: *const c_char, flags: c_int, ...mode: c_uint) -> c_int => after files::open;
    #[cfg(target_os = "macos")]
    fn openat_nocancel = "openat$NOCANCEL" (dir: c_int, path: *const c_char, flags: c_int, ...mode: c_uint) -> c_int => after files::openat;
    #[cfg(target_os = "macos")]
    fn creat_nocancel = "creat$NOCANCEL" (path: *const c_char, mode: mode_t) -> c_int => after files::creat;
    /// `fopen` under `_DARWIN_C_SOURCE` (the default): the same function with extensions.
    #[cfg(target_os = "macos")]
    fn fopen_darwin_extsn = "fopen$DARWIN_EXTSN" (path: *const c_char, mode: *const c_char) -> *mut FILE => after files::fopen;
    #[cfg(target_os = "macos")]
    fn wait_nocancel = "wait$NOCANCEL" (status: *mut c_int) -> libc::pid_t => rewrite children::wait;
    #[cfg(target_os = "macos")]
    fn waitpid_nocancel = "waitpid$NOCANCEL" (pid: libc::pid_t, status: *mut c_int, options: c_int) -> libc::pid_t => rewrite children::waitpid;
    #[cfg(target_os = "macos")]
    fn waitid_nocancel = "waitid$NOCANCEL" (idtype: libc::idtype_t, id: libc::id_t, info: *mut libc::siginfo_t, options: c_int) -> c_int => after children::waitid;

    // ---- the process ending or being replaced (process.rs) ----
    fn _exit(status: c_int) -> () => around process::exit_before, process::after_nothing;
    fn _Exit(status: c_int) -> () => around process::exit_before, process::after_nothing;
    fn execve(path: *const c_char, argv: *const *const c_char, envp: *const *const c_char) -> c_int => around process::execve_before, process::exec3_after;
    fn execv(path: *const c_char, argv: *const *const c_char) -> c_int => around process::execv_before, process::exec2_after;
    fn execvp(file: *const c_char, argv: *const *const c_char) -> c_int => around process::execvp_before, process::exec2_after;
    #[cfg(target_os = "linux")]
    fn execvpe(file: *const c_char, argv: *const *const c_char, envp: *const *const c_char) -> c_int => around process::execvpe_before, process::exec3_after;
    #[cfg(target_os = "linux")]
    fn fexecve(fd: c_int, argv: *const *const c_char, envp: *const *const c_char) -> c_int => around process::fexecve_before, process::exec3_after;
    /// A spawned program gets the host's inheritable fds: its TCP sockets are shared.
    fn posix_spawn(pid: *mut libc::pid_t, path: *const c_char, actions: *const libc::posix_spawn_file_actions_t, attr: *const libc::posix_spawnattr_t, argv: *const *mut c_char, envp: *const *mut c_char) -> c_int => around process::spawn_before, process::spawn_after;
    fn posix_spawnp(pid: *mut libc::pid_t, file: *const c_char, actions: *const libc::posix_spawn_file_actions_t, attr: *const libc::posix_spawnattr_t, argv: *const *mut c_char, envp: *const *mut c_char) -> c_int => around process::spawn_before, process::spawn_after;
    fn posix_spawn_file_actions_adddup2(actions: *mut libc::posix_spawn_file_actions_t, fd: c_int, newfd: c_int) -> c_int => after process::spawn_adddup2;

    // ---- the names the program looks up (resolver.rs): which name each address came from ----
    fn getaddrinfo(node: *const c_char, service: *const c_char, hints: *const addrinfo, res: *mut *mut addrinfo) -> c_int => after resolver::getaddrinfo;
    fn gethostbyname(name: *const c_char) -> *mut hostent => after resolver::gethostbyname;
    #[cfg(target_os = "linux")]
    fn gethostbyname2(name: *const c_char, af: c_int) -> *mut hostent => after resolver::gethostbyname2;
    #[cfg(target_os = "linux")]
    fn gethostbyname_r(name: *const c_char, h: *mut hostent, buf: *mut c_char, len: size_t, result: *mut *mut hostent, herr: *mut c_int) -> c_int => after resolver::gethostbyname_r;
    #[cfg(target_os = "linux")]
    fn gethostbyname2_r(name: *const c_char, af: c_int, h: *mut hostent, buf: *mut c_char, len: size_t, result: *mut *mut hostent, herr: *mut c_int) -> c_int => after resolver::gethostbyname2_r;
    /// glibc's asynchronous lookups (in libc since 2.34, libanl before): requests are read when
    /// they are done (`GAI_WAIT`, or `gai_error` returning 0).
    #[cfg(target_os = "linux")]
    fn getaddrinfo_a(mode: c_int, list: *mut *mut resolver::Gaicb, n: c_int, sev: *mut c_void) -> c_int => after resolver::getaddrinfo_a;
    #[cfg(target_os = "linux")]
    fn gai_error(req: *mut resolver::Gaicb) -> c_int => after resolver::gai_error;

    // ---- threads carry the module that created them (threads.rs) ----
    fn pthread_create(thread: *mut pthread_t, attr: *const pthread_attr_t, start: *mut c_void, arg: *mut c_void) -> c_int => rewrite threads::pthread_create;
}
