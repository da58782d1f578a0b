/* Metered client for the "no silent zero" tests (tests/e2e/silentzero.rs): moves bytes to and
 * from a TCP peer through one chosen path each way, so that every byte is either counted by a
 * hook or reported by the kernel witness as unseen.
 *
 *   silentzero OPEN TXPATH RXPATH END PORT TX RX
 *
 * OPEN: how the socket is made: libc (socket, connect), sys (syscall(SYS_socket),
 *   syscall(SYS_connect)), asm (system call instructions: the shim never sees it before close).
 * TXPATH: how TX bytes are written: send, splice (vmsplice into a pipe, tee to a second pipe,
 *   splice from it to the socket), pwritev2, pwritev64v2, sys (syscall(): sendto, write,
 *   writev, sendmsg, pwritev2 in turn), stdio (fdopen + fwrite + fflush), stdio_unflushed
 *   (fwrite only: the bytes reach the socket when exit flushes), asm (a raw write), aliases
 *   (glibc's public __send and __write in turn).
 * RXPATH: how RX bytes are read: recv, splice (socket to a pipe), sendfile (socket to a pipe),
 *   preadv2, preadv64v2, sys (recvfrom, read, readv, recvmsg, preadv2 in turn), stdio (fgets,
 *   then fread), asm, unread (recv half of them and close with the rest unread), aliases
 *   (glibc's public __read).
 * END: close, fclose (fclose of the stdio stream TXPATH wrote through, which writes out what
 *   it holds, then closes), shut (shutdown(SHUT_WR) before reading, then read to EOF, then close), exit
 *   (return from main, socket open), exit_reader (the same while another thread is blocked
 *   reading stdin, holding its stdio lock), _exit (socket open), kill (SIGKILL, socket open).
 *
 * The peer (tests/c/peer.c, unmetered) reads TX bytes, sends RX, reads to EOF. Prints
 * "moved tx TX rx RX port LOCALPORT" and, for the calls that fail on a socket by design,
 * "espipe N" (preadv/pwritev with an offset).
 *
 *   silentzero syscalls PORT   every socket and fd call through syscall(): see below.
 *   silentzero uring PORT      syscall(SYS_io_uring_setup), then one send through libc.
 *   silentzero fork PORT TX RX [PTX [CHILDTX]]
 *                              connect, fork; the child writes TX through CHILDTX (stdio, the
 *                              default, or send), reads RX through recv, closes, exits; the
 *                              parent waits, writes PTX (default 0) through stdio, then
 *                              closes its copy. Prints "child local LOCALPORT".
 *   silentzero pass PORT TX PTX  make a socketpair, fork, then connect; pass the socket to the
 *                              child (SCM_RIGHTS), which writes TX through send, closes it and
 *                              exits; the parent waits, writes PTX through stdio, closes. */
#include "common.h"
#include <poll.h>
#include <pthread.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/sendfile.h>
#include <linux/io_uring.h>

/* ---- raw system calls: an instruction, not a call sockmeter can hook ---- */

static long raw6(long n, long a, long b, long c, long d, long e, long f) {
#if defined(__x86_64__)
    long ret;
    register long r10 __asm__("r10") = d;
    register long r8 __asm__("r8") = e;
    register long r9 __asm__("r9") = f;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    return ret;
#elif defined(__aarch64__)
    register long x8 __asm__("x8") = n;
    register long x0 __asm__("x0") = a;
    register long x1 __asm__("x1") = b;
    register long x2 __asm__("x2") = c;
    register long x3 __asm__("x3") = d;
    register long x4 __asm__("x4") = e;
    register long x5 __asm__("x5") = f;
    __asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5) : "memory");
    return x0;
#else
#error "raw system calls are written for x86_64 and aarch64"
#endif
}

/* -errno as errno and -1, like libc. */
static long raw(long n, long a, long b, long c) {
    long r = raw6(n, a, b, c, 0, 0, 0);
    if (r < 0 && r > -4096) {
        errno = (int)-r;
        return -1;
    }
    return r;
}

/* ---- one path each way: move up to n bytes, return how many (or -1) ---- */

typedef ssize_t (*mover)(int fd, char *buf, size_t n);

static FILE *wfile, *rfile;
static int espipe;

static ssize_t tx_send(int fd, char *b, size_t n) { return send(fd, b, n, MSG_NOSIGNAL); }

static ssize_t tx_splice(int fd, char *b, size_t n) {
    if (n > 4096) n = 4096;
    int a[2], t[2];
    if (pipe(a) < 0 || pipe(t) < 0) die("pipe");
    struct iovec v = { b, n };
    ssize_t put = vmsplice(a[1], &v, 1, 0);
    if (put <= 0) die("vmsplice");
    ssize_t dup_ = tee(a[0], t[1], (size_t)put, 0);
    if (dup_ != put) die("tee");
    ssize_t moved = 0;
    while (moved < dup_) {
        ssize_t s = splice(t[0], NULL, fd, NULL, (size_t)(dup_ - moved), 0);
        if (s <= 0) die("splice to the socket");
        moved += s;
    }
    close(a[0]); close(a[1]); close(t[0]); close(t[1]);
    return moved;
}

static ssize_t tx_pwritev2(int fd, char *b, size_t n) {
    struct iovec v[2] = { { b, n / 2 }, { b + n / 2, n - n / 2 } };
    return pwritev2(fd, v, 2, -1, 0);
}

static ssize_t tx_pwritev64v2(int fd, char *b, size_t n) {
    struct iovec v = { b, n };
    return pwritev64v2(fd, &v, 1, -1, 0);
}

static int turn;

static ssize_t tx_sys(int fd, char *b, size_t n) {
    struct iovec v[2] = { { b, n / 2 }, { b + n / 2, n - n / 2 } };
    struct msghdr m;
    memset(&m, 0, sizeof m);
    m.msg_iov = v;
    m.msg_iovlen = 2;
    switch (turn++ % 5) {
    case 0: return syscall(SYS_sendto, fd, b, n, MSG_NOSIGNAL, NULL, 0);
    case 1: return syscall(SYS_write, fd, b, n);
    case 2: return syscall(SYS_writev, fd, v, 2);
    case 3: return syscall(SYS_sendmsg, fd, &m, MSG_NOSIGNAL);
    default: return syscall(SYS_pwritev2, fd, v, 2, -1L, -1L, 0);
    }
}

static ssize_t tx_stdio(int fd, char *b, size_t n) {
    if (!wfile && !(wfile = fdopen(fd, "w"))) die("fdopen w");
    size_t w = fwrite(b, 1, n, wfile);
    if (fflush(wfile) != 0) die("fflush");
    return (ssize_t)w;
}

static ssize_t tx_stdio_unflushed(int fd, char *b, size_t n) {
    if (!wfile) {
        /* A buffer larger than what is written: nothing reaches the socket before exit. */
        static char big[1 << 20];
        if (!(wfile = fdopen(fd, "w")) || setvbuf(wfile, big, _IOFBF, sizeof big) != 0) die("fdopen w");
    }
    return (ssize_t)fwrite(b, 1, n, wfile);
}

static ssize_t tx_asm(int fd, char *b, size_t n) { return raw(SYS_write, fd, (long)b, (long)n); }

/* glibc's public aliases (__send@GLIBC_2.2.5, __write, __read). */
extern ssize_t __send(int fd, const void *buf, size_t n, int flags);
extern ssize_t __write(int fd, const void *buf, size_t n);
extern ssize_t __read(int fd, void *buf, size_t n);

static ssize_t tx_aliases(int fd, char *b, size_t n) {
    return turn++ % 2 ? __send(fd, b, n, MSG_NOSIGNAL) : __write(fd, b, n);
}

static ssize_t rx_aliases(int fd, char *b, size_t n) { return __read(fd, b, n); }

static ssize_t rx_recv(int fd, char *b, size_t n) { return recv(fd, b, n, 0); }

static int rx_pipe[2] = { -1, -1 };

static ssize_t drain(ssize_t got, char *b) {
    ssize_t have = 0;
    while (have < got) {
        ssize_t r = read(rx_pipe[0], b + have, (size_t)(got - have));
        if (r <= 0) die("read the pipe");
        have += r;
    }
    return got;
}

static ssize_t rx_splice(int fd, char *b, size_t n) {
    if (rx_pipe[0] < 0 && pipe(rx_pipe) < 0) die("pipe");
    if (n > 4096) n = 4096;
    ssize_t s = splice(fd, NULL, rx_pipe[1], NULL, n, 0);
    return s <= 0 ? s : drain(s, b);
}

static ssize_t rx_sendfile(int fd, char *b, size_t n) {
    if (rx_pipe[0] < 0 && pipe(rx_pipe) < 0) die("pipe");
    if (n > 4096) n = 4096;
    ssize_t s = sendfile(rx_pipe[1], fd, NULL, n);
    return s <= 0 ? s : drain(s, b);
}

static ssize_t rx_preadv2(int fd, char *b, size_t n) {
    struct iovec v[2] = { { b, n / 2 }, { b + n / 2, n - n / 2 } };
    return preadv2(fd, v, 2, -1, 0);
}

static ssize_t rx_preadv64v2(int fd, char *b, size_t n) {
    struct iovec v = { b, n };
    return preadv64v2(fd, &v, 1, -1, 0);
}

static ssize_t rx_sys(int fd, char *b, size_t n) {
    struct iovec v[2] = { { b, n / 2 }, { b + n / 2, n - n / 2 } };
    struct msghdr m;
    memset(&m, 0, sizeof m);
    m.msg_iov = v;
    m.msg_iovlen = 2;
    switch (turn++ % 5) {
    case 0: return syscall(SYS_recvfrom, fd, b, n, 0, NULL, NULL);
    case 1: return syscall(SYS_read, fd, b, n);
    case 2: return syscall(SYS_readv, fd, v, 2);
    case 3: return syscall(SYS_recvmsg, fd, &m, 0);
    default: return syscall(SYS_preadv2, fd, v, 2, -1L, -1L, 0);
    }
}

static ssize_t rx_stdio(int fd, char *b, size_t n) {
    if (!rfile && !(rfile = fdopen(fd, "r"))) die("fdopen r");
    static int lines;
    if (lines++ % 2 == 0) {
        /* The payload has no newline: fgets fills the buffer, less its NUL. */
        size_t cap = n < 100 ? n : 100;
        if (!fgets(b, (int)cap + 1, rfile)) return 0;
        return (ssize_t)strlen(b);
    }
    size_t r = fread(b, 1, n, rfile);
    return (ssize_t)r;
}

static ssize_t rx_asm(int fd, char *b, size_t n) { return raw(SYS_read, fd, (long)b, (long)n); }

static mover pick(const char *name, int tx) {
    static const struct { const char *name; mover tx, rx; } paths[] = {
        { "send", tx_send, NULL }, { "recv", NULL, rx_recv },
        { "splice", tx_splice, rx_splice }, { "sendfile", NULL, rx_sendfile },
        { "pwritev2", tx_pwritev2, NULL }, { "pwritev64v2", tx_pwritev64v2, NULL },
        { "preadv2", NULL, rx_preadv2 }, { "preadv64v2", NULL, rx_preadv64v2 },
        { "sys", tx_sys, rx_sys }, { "stdio", tx_stdio, rx_stdio },
        { "stdio_unflushed", tx_stdio_unflushed, NULL }, { "asm", tx_asm, rx_asm },
        { "unread", NULL, rx_recv }, { "aliases", tx_aliases, rx_aliases },
    };
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        mover m = tx ? paths[i].tx : paths[i].rx;
        if (strcmp(paths[i].name, name) == 0 && m) return m;
    }
    fail("silentzero: no %s path %s", tx ? "TX" : "RX", name);
    return NULL;
}

static void move_all(int fd, mover m, size_t total, int tx) {
    static char buf[1 << 16];
    size_t done = 0;
    while (done < total) {
        size_t chunk = total - done < 3000 ? total - done : 3000;
        if (tx) fill(buf, chunk, (unsigned)done);
        ssize_t r = m(fd, buf, chunk);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) die(tx ? "write path" : "read path");
        if (r == 0) fail("silentzero: EOF with %zu bytes still expected", total - done);
        done += (size_t)r;
    }
}

static int open_socket(const char *how, unsigned short port) {
    struct sockaddr_in a = lo4(port);
    if (strcmp(how, "libc") == 0) return connect_v4(port);
    if (strcmp(how, "sys") == 0) {
        int fd = (int)syscall(SYS_socket, AF_INET, SOCK_STREAM, 0);
        if (fd < 0) die("syscall(SYS_socket)");
        if (syscall(SYS_connect, fd, &a, sizeof a) < 0) die("syscall(SYS_connect)");
        return fd;
    }
    if (strcmp(how, "asm") == 0) {
        int fd = (int)raw(SYS_socket, AF_INET, SOCK_STREAM, 0);
        if (fd < 0) die("raw socket");
        if (raw(SYS_connect, fd, (long)&a, sizeof a) < 0) die("raw connect");
        return fd;
    }
    fail("silentzero: no OPEN %s", how);
    return -1;
}

/* The calls that fail on any socket (a socket has no offset): ESPIPE, each a failed call. */
static void offsets_fail(int fd) {
    char b[8];
    struct iovec v = { b, sizeof b };
    if (preadv(fd, &v, 1, 0) != -1 || errno != ESPIPE) fail("preadv on a socket did not fail with ESPIPE");
    if (pwritev(fd, &v, 1, 0) != -1 || errno != ESPIPE) fail("pwritev on a socket did not fail with ESPIPE");
    if (preadv64(fd, &v, 1, 0) != -1 || errno != ESPIPE) fail("preadv64 did not fail with ESPIPE");
    if (pwritev64(fd, &v, 1, 0) != -1 || errno != ESPIPE) fail("pwritev64 did not fail with ESPIPE");
    espipe += 4;
}

/* Every socket and fd call through syscall(): a socketpair (10 bytes each way), a listener
 * and a loopback connection to it (100 bytes each way) accepted with accept4, dup, fcntl
 * F_DUPFD_CLOEXEC, dup3 (and dup2 on x86_64), shutdown, close; and a connection to the peer
 * with 1000 bytes out and PORT's reply in, as the main mode does. */
static int syscalls_mode(unsigned short port) {
    char b[1000];
    fill(b, sizeof b, 0);
    int sv[2];
    if (syscall(SYS_socketpair, AF_UNIX, SOCK_STREAM, 0, sv) < 0) die("SYS_socketpair");
    if (syscall(SYS_write, sv[0], b, 10) != 10 || syscall(SYS_read, sv[1], b, 10) != 10) die("pair");
    if (syscall(SYS_write, sv[1], b, 10) != 10 || syscall(SYS_read, sv[0], b, 10) != 10) die("pair back");
    int l = (int)syscall(SYS_socket, AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = lo4(0);
    socklen_t alen = sizeof a;
    if (l < 0 || syscall(SYS_bind, l, &a, sizeof a) < 0 || syscall(SYS_listen, l, 4) < 0) die("listener");
    if (getsockname(l, (struct sockaddr *)&a, &alen) < 0) die("getsockname");
    int c = (int)syscall(SYS_socket, AF_INET, SOCK_STREAM, 0);
    if (c < 0 || syscall(SYS_connect, c, &a, sizeof a) < 0) die("connect to self");
    int s = (int)syscall(SYS_accept4, l, NULL, NULL, SOCK_CLOEXEC);
    if (s < 0) die("SYS_accept4");
    if (syscall(SYS_sendto, c, b, 100, 0, NULL, 0) != 100) die("sendto");
    if (syscall(SYS_recvfrom, s, b, 100, MSG_WAITALL, NULL, NULL) != 100) die("recvfrom");
    int d = (int)syscall(SYS_dup, s);
    int e = (int)syscall(SYS_fcntl, d, F_DUPFD_CLOEXEC, 50);
    if (d < 0 || e < 50) die("dup, fcntl");
    if (syscall(SYS_dup3, e, e + 1, O_CLOEXEC) != e + 1) die("dup3");
#if defined(SYS_dup2)
    if (syscall(SYS_dup2, e, e + 2) != e + 2) die("dup2");
    if (syscall(SYS_write, e + 2, b, 60) != 60) die("write on the dup2");
#else
    if (syscall(SYS_write, e + 1, b, 60) != 60) die("write on the dup3");
#endif
    if (syscall(SYS_write, e + 1, b, 40) != 40) die("write on the dup3");
    if (syscall(SYS_recvfrom, c, b, 100, MSG_WAITALL, NULL, NULL) != 100) die("recvfrom back");
    if (syscall(SYS_shutdown, c, SHUT_WR) < 0) die("shutdown");
    if (syscall(SYS_read, s, b, 10) != 0) die("EOF");
    int fds[] = { sv[0], sv[1], c, s, d, e, e + 1,
#if defined(SYS_dup2)
                  e + 2,
#endif
                  l };
    for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++)
        if (syscall(SYS_close, fds[i]) < 0) die("SYS_close");
    /* UDP through syscall(): sendto and recvfrom take six arguments, the sixth (the address
     * length, and a pointer to it) from the stack on x86_64. */
    int ur = (int)syscall(SYS_socket, AF_INET, SOCK_DGRAM, 0), us = (int)syscall(SYS_socket, AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in ua = lo4(0), from;
    socklen_t ulen = sizeof ua, flen = sizeof from;
    if (ur < 0 || us < 0 || syscall(SYS_bind, ur, &ua, sizeof ua) < 0) die("udp sockets");
    if (getsockname(ur, (struct sockaddr *)&ua, &ulen) < 0) die("getsockname udp");
    if (syscall(SYS_sendto, us, b, 20, 0, &ua, sizeof ua) != 20) die("SYS_sendto udp");
    memset(&from, 0, sizeof from);
    if (syscall(SYS_recvfrom, ur, b, sizeof b, 0, &from, &flen) != 20) die("SYS_recvfrom udp");
    if (flen != sizeof from || from.sin_port != htons(local_port(us))) fail("recvfrom's address");
    say("udp sender %u receiver %u", local_port(us), ntohs(ua.sin_port));
    if (syscall(SYS_close, us) < 0 || syscall(SYS_close, ur) < 0) die("SYS_close udp");
    /* Not metered, straight through. */
    if (syscall(SYS_getpid) != getpid()) fail("syscall(SYS_getpid)");
    int p = open_socket("sys", port);
    move_all(p, tx_sys, 1000, 1);
    say("local %u", local_port(p));
    char r[64];
    while (syscall(SYS_read, p, r, sizeof r) > 0) {}
    if (syscall(SYS_close, p) < 0) die("SYS_close");
    return 0;
}

/* An io_uring made with syscall(), closed again; then a send through libc. */
static int uring_mode(unsigned short port) {
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    int ring = (int)syscall(SYS_io_uring_setup, 4, &p);
    if (ring < 0) die("SYS_io_uring_setup");
    close(ring);
    int fd = connect_v4(port);
    char b[100];
    fill(b, sizeof b, 0);
    if (send(fd, b, sizeof b, 0) != (ssize_t)sizeof b) die("send");
    say("local %u", local_port(fd));
    close(fd);
    return 0;
}

/* A socket shared across fork (see the usage above). */
static int fork_mode(unsigned short port, size_t tx, size_t rx, size_t ptx, const char *child_tx) {
    int fd = connect_v4(port);
    pid_t pid = fork();
    if (pid < 0) die("fork");
    if (pid == 0) {
        move_all(fd, pick(child_tx, 1), tx, 1);
        move_all(fd, rx_recv, rx, 0);
        say("child local %u", local_port(fd));
        if (close(fd) < 0) die("close in the child");
        _exit(0);
    }
    int st;
    if (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) fail("silentzero: the child failed");
    move_all(fd, tx_stdio, ptx, 1);
    if (close(fd) < 0) die("close in the parent");
    return 0;
}

/* A TCP socket passed to another process (see the usage above). */
static int pass_mode(unsigned short port, size_t tx, size_t ptx) {
    int sp[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sp) < 0) die("socketpair");
    pid_t pid = fork();
    if (pid < 0) die("fork");
    char one = 'x';
    struct iovec iov = { &one, 1 };
    union { char buf[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } u;
    struct msghdr m;
    memset(&m, 0, sizeof m);
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = u.buf;
    m.msg_controllen = sizeof u.buf;
    if (pid == 0) {
        close(sp[0]);
        if (recvmsg(sp[1], &m, 0) != 1) die("recvmsg");
        struct cmsghdr *c = CMSG_FIRSTHDR(&m);
        if (!c || c->cmsg_type != SCM_RIGHTS) fail("silentzero: no fd received");
        int fd;
        memcpy(&fd, CMSG_DATA(c), sizeof fd);
        move_all(fd, pick("send", 1), tx, 1);
        if (close(fd) < 0) die("close in the child");
        _exit(0);
    }
    close(sp[1]);
    int fd = connect_v4(port);
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof fd);
    if (sendmsg(sp[0], &m, 0) != 1) die("sendmsg");
    int st;
    if (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) fail("silentzero: the child failed");
    move_all(fd, tx_stdio, ptx, 1);
    say("local %u", local_port(fd));
    if (close(fd) < 0) die("close in the parent");
    return 0;
}

/* Blocks in fgets(stdin), holding stdin's lock, until the process ends. */
static void *read_stdin(void *arg) {
    (void)arg;
    char b[16];
    if (fgets(b, sizeof b, stdin)) say("stdin gave a line");
    return NULL;
}

/* stdin becomes a pipe nobody writes to, and a thread blocks reading it. */
static void block_a_reader(void) {
    int p[2];
    if (pipe(p) < 0 || dup2(p[0], 0) < 0) die("pipe for stdin");
    pthread_t t;
    if (pthread_create(&t, NULL, read_stdin, NULL) != 0) fail("pthread_create");
    usleep(100000); /* it is in read() now, with the lock */
}

int main(int argc, char **argv) {
    start_clock();
    if (argc == 3 && strcmp(argv[1], "syscalls") == 0) return syscalls_mode((unsigned short)atoi(argv[2]));
    if (argc == 3 && strcmp(argv[1], "uring") == 0) return uring_mode((unsigned short)atoi(argv[2]));
    if (argc == 5 && strcmp(argv[1], "pass") == 0)
        return pass_mode((unsigned short)atoi(argv[2]), strtoul(argv[3], NULL, 10), strtoul(argv[4], NULL, 10));
    if (argc >= 5 && argc <= 7 && strcmp(argv[1], "fork") == 0)
        return fork_mode((unsigned short)atoi(argv[2]), strtoul(argv[3], NULL, 10), strtoul(argv[4], NULL, 10),
                         argc > 5 ? strtoul(argv[5], NULL, 10) : 0, argc > 6 ? argv[6] : "stdio");
    if (argc != 8) fail("usage: silentzero OPEN TXPATH RXPATH END PORT TX RX");
    const char *end = argv[4];
    size_t tx = strtoul(argv[6], NULL, 10), rxn = strtoul(argv[7], NULL, 10);
    int fd = open_socket(argv[1], (unsigned short)atoi(argv[5]));
    mover w = pick(argv[2], 1), r = pick(argv[3], 0);
    if (strcmp(argv[2], "pwritev2") == 0 || strcmp(argv[3], "preadv2") == 0) offsets_fail(fd);
    move_all(fd, w, tx, 1);
    int shut = strcmp(end, "shut") == 0;
    if (shut && shutdown(fd, SHUT_WR) < 0) die("shutdown");
    size_t want = strcmp(argv[3], "unread") == 0 ? rxn / 2 : rxn;
    move_all(fd, r, want, 0);
    if (want < rxn) {
        /* The rest arrives (the peer closes after it) and stays unread. */
        struct pollfd pf = { fd, POLLRDHUP, 0 };
        if (poll(&pf, 1, 20000) != 1) fail("silentzero: the peer never closed");
    }
    if (shut) {
        char b[16];
        if (recv(fd, b, sizeof b, 0) != 0) fail("silentzero: no EOF after the reply");
    }
    say("moved tx %zu rx %zu local %u espipe %d", tx, want, local_port(fd), espipe);
    if (strcmp(end, "fclose") == 0) {
        if (!wfile) fail("silentzero: fclose needs a stdio TXPATH");
        if (fclose(wfile) != 0) die("fclose");
    } else if (strcmp(end, "close") == 0 || shut) {
        if (close(fd) < 0) die("close");
    } else if (strcmp(end, "_exit") == 0) {
        _exit(0);
    } else if (strcmp(end, "kill") == 0) {
        raise(SIGKILL);
    } else if (strcmp(end, "exit_reader") == 0) {
        block_a_reader();
    } else if (strcmp(end, "exit") != 0) {
        fail("silentzero: no END %s", end);
    }
    return 0;
}
