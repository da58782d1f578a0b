/* Workload of the system-call proof (syscalls-same.sh): a single-threaded program
 * whose every system call is deterministic, so that the same program run with and
 * without an interposer must show exactly the same system calls in its main thread.
 *
 * Two measured phases, each fenced by marker calls that strace shows verbatim:
 *   access("/nonexistent/sockmeter-bench-marker/<phase>-begin", F_OK) ... -end
 *   data       the send/recv path on sockets that already exist: send, recv, sendto,
 *              recvfrom, sendmsg, recvmsg, sendmmsg, recvmmsg, read, write, readv,
 *              writev, sendfile, __read_chk, pwritev2/preadv2, splice both ways,
 *              sendfile from a socket into a pipe, syscall(SYS_sendto/SYS_recvfrom),
 *              on TCP and UDP, an EAGAIN recv, and read/write on a regular file and a pipe;
 *   lifecycle  per-socket calls: socket, connect, accept, accept4, bind, listen,
 *              dup, dup2, dup3, fcntl(F_DUPFD), shutdown, close, with one request and
 *              reply on each connection.
 * Before the first marker the same work runs once as a warm-up, so one-time lazy
 * initialisation of an interposer is not counted.
 *   usage: w_syscalls [DATA_ITERS [LIFECYCLE_ITERS]] */
#include "common.h"
#include <fcntl.h>
#include <sys/sendfile.h>
#include <sys/syscall.h>
#include <sys/uio.h>

extern ssize_t __read_chk(int fd, void *buf, size_t nbytes, size_t buflen);

static void marker(const char *phase, const char *edge) {
    char path[128];
    snprintf(path, sizeof path, "/nonexistent/sockmeter-bench-marker/%s-%s", phase, edge);
    access(path, F_OK);
}

static void expect(ssize_t got, ssize_t want, const char *what) {
    if (got != want) {
        fprintf(stderr, "w_syscalls: %s returned %zd, expected %zd (%s)\n", what, got, want, strerror(errno));
        exit(3);
    }
}

struct fixture {
    int l, c, a;          /* TCP listener, client end, accepted end */
    int nb_c, nb_a;       /* an idle TCP pair, client end nonblocking */
    int u1, u2;           /* UDP: u1<->u2 connected to each other */
    int u3, u4;           /* UDP: unconnected sender and receiver */
    struct sockaddr_in u4addr;
    int file;
    int port;
    int pipe[2];          /* a pipe: splice and sendfile between it and TCP */
};

static void data_phase(struct fixture *f, int iters) {
    char buf[256], big[4096];
    memset(buf, 'd', sizeof buf);
    memset(big, 'D', sizeof big);
    for (int i = 0; i < iters; i++) {
        /* TCP, both directions, several APIs */
        expect(send(f->c, buf, 64, 0), 64, "send");
        expect(recv(f->a, buf, 64, MSG_WAITALL), 64, "recv");
        expect(write(f->a, buf, 64), 64, "write");
        expect(read(f->c, buf, 64), 64, "read");
        expect(sendto(f->c, buf, 32, MSG_NOSIGNAL, NULL, 0), 32, "sendto");
        expect(recvfrom(f->a, buf, 32, MSG_WAITALL, NULL, NULL), 32, "recvfrom");
        struct iovec iov[2] = { { buf, 16 }, { buf + 16, 48 } };
        expect(writev(f->c, iov, 2), 64, "writev");
        expect(readv(f->a, iov, 2), 64, "readv");
        struct msghdr mh;
        memset(&mh, 0, sizeof mh);
        mh.msg_iov = iov;
        mh.msg_iovlen = 2;
        expect(sendmsg(f->a, &mh, 0), 64, "sendmsg");
        expect(recvmsg(f->c, &mh, MSG_WAITALL), 64, "recvmsg");
        expect(send(f->c, buf, 8, MSG_DONTWAIT), 8, "send MSG_DONTWAIT");
        expect(recv(f->a, buf, 8, MSG_PEEK | MSG_WAITALL), 8, "recv MSG_PEEK");
        expect(__read_chk(f->a, buf, 8, sizeof buf), 8, "__read_chk");
        /* sendfile from the file to TCP */
        off_t off = 0;
        expect(sendfile(f->c, f->file, &off, 128), 128, "sendfile");
        expect(recv(f->a, buf, 128, MSG_WAITALL), 128, "recv after sendfile");
        /* the v2 vectored calls, splice both ways, sendfile into a pipe, syscall() */
        expect(pwritev2(f->c, iov, 2, -1, 0), 64, "pwritev2");
        expect(preadv2(f->a, iov, 2, -1, 0), 64, "preadv2");
        expect(write(f->pipe[1], buf, 100), 100, "pipe write");
        expect(splice(f->pipe[0], NULL, f->c, NULL, 100, 0), 100, "splice pipe to tcp");
        expect(recv(f->a, buf, 100, MSG_WAITALL), 100, "recv after splice");
        expect(send(f->a, buf, 50, 0), 50, "send for splice");
        expect(splice(f->c, NULL, f->pipe[1], NULL, 50, 0), 50, "splice tcp to pipe");
        expect(read(f->pipe[0], buf, 50), 50, "pipe read");
        expect(send(f->a, buf, 40, 0), 40, "send for sendfile");
        expect(sendfile(f->pipe[1], f->c, NULL, 40), 40, "sendfile tcp to pipe");
        expect(read(f->pipe[0], buf, 40), 40, "pipe read after sendfile");
        expect(syscall(SYS_sendto, f->c, buf, 30, 0, NULL, 0), 30, "syscall sendto");
        expect(syscall(SYS_recvfrom, f->a, buf, 30, MSG_WAITALL, NULL, NULL), 30, "syscall recvfrom");
        /* EAGAIN */
        expect(recv(f->nb_c, buf, 64, 0), -1, "recv EAGAIN");
        expect(recv(f->nb_c, buf, 64, MSG_DONTWAIT), -1, "recv MSG_DONTWAIT EAGAIN");
        /* UDP */
        expect(send(f->u1, buf, 100, 0), 100, "udp send");
        expect(recv(f->u2, buf, sizeof buf, 0), 100, "udp recv");
        expect(sendto(f->u3, buf, 50, 0, (struct sockaddr *)&f->u4addr, sizeof f->u4addr), 50, "udp sendto");
        struct sockaddr_in from;
        socklen_t fl = sizeof from;
        expect(recvfrom(f->u4, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl), 50, "udp recvfrom");
        struct mmsghdr mm[4];
        struct iovec miov[4];
        memset(mm, 0, sizeof mm);
        for (int k = 0; k < 4; k++) {
            miov[k].iov_base = buf + 32 * k;
            miov[k].iov_len = 32;
            mm[k].msg_hdr.msg_iov = &miov[k];
            mm[k].msg_hdr.msg_iovlen = 1;
        }
        expect(sendmmsg(f->u2, mm, 4, 0), 4, "sendmmsg");
        expect(recvmmsg(f->u1, mm, 4, MSG_DONTWAIT, NULL), 4, "recvmmsg");
        expect(write(f->u1, buf, 20), 20, "udp write");
        expect(read(f->u2, buf, sizeof buf), 20, "udp read");
        /* regular file */
        expect(lseek(f->file, 0, SEEK_SET), 0, "lseek");
        expect(write(f->file, big, sizeof big), (ssize_t)sizeof big, "file write");
        expect(lseek(f->file, 0, SEEK_SET), 0, "lseek");
        expect(read(f->file, big, sizeof big), (ssize_t)sizeof big, "file read");
    }
}

static void lifecycle_phase(struct fixture *f, int iters) {
    char req[64], rep[64];
    memset(req, 'q', sizeof req);
    struct sockaddr_in to = loopback(f->port);
    for (int i = 0; i < iters; i++) {
        int s = socket(AF_INET, SOCK_STREAM, 0);
        expect(s >= 0, 1, "socket");
        expect(connect(s, (struct sockaddr *)&to, sizeof to), 0, "connect");
        int a = (i & 1) ? accept4(f->l, NULL, NULL, SOCK_CLOEXEC) : accept(f->l, NULL, NULL);
        expect(a >= 0, 1, "accept");
        expect(send(s, req, sizeof req, 0), 64, "send");
        expect(recv(a, rep, sizeof rep, MSG_WAITALL), 64, "recv");
        int d1 = dup(a);
        expect(send(d1, rep, sizeof rep, 0), 64, "send on dup");
        expect(recv(s, rep, sizeof rep, MSG_WAITALL), 64, "recv reply");
        int d2 = fcntl(s, F_DUPFD_CLOEXEC, 0);
        expect(d2 >= 0, 1, "fcntl F_DUPFD_CLOEXEC");
        expect(dup2(d2, d2 + 1), d2 + 1, "dup2");
        expect(dup3(d2, d2 + 2, O_CLOEXEC), d2 + 2, "dup3");
        expect(write(d2 + 2, req, 10), 10, "write on dup3");
        expect(read(d1, rep, 10), 10, "read on dup");
        expect(shutdown(s, SHUT_WR), 0, "shutdown");
        expect(recv(a, rep, sizeof rep, 0), 0, "recv EOF");
        close(d2 + 2); close(d2 + 1); close(d2); close(d1); close(a); close(s);
        /* a UDP socket of its own: bind, connect, send, close */
        int u = socket(AF_INET, SOCK_DGRAM, 0);
        struct sockaddr_in any = loopback(0);
        expect(bind(u, (struct sockaddr *)&any, sizeof any), 0, "udp bind");
        expect(connect(u, (struct sockaddr *)&f->u4addr, sizeof f->u4addr), 0, "udp connect");
        expect(send(u, req, 12, 0), 12, "udp send");
        expect(recv(f->u4, rep, sizeof rep, 0), 12, "udp recv");
        close(u);
        /* a listener that never accepts */
        int pl;
        int lis = listen_loopback(&pl, 1);
        close(lis);
    }
}

int main(int argc, char **argv) {
    int data_iters = (int)arg_ull(argc, argv, 1, 200);
    int life_iters = (int)arg_ull(argc, argv, 2, 50);
    struct fixture f;
    f.l = listen_loopback(&f.port, 64);
    f.c = connect_loopback(f.port);
    f.a = accept(f.l, NULL, NULL);
    int one = 1; /* no Nagle: sendfile()'s segment must not wait for an ACK */
    setsockopt(f.c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(f.a, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    f.nb_c = connect_loopback(f.port);
    f.nb_a = accept(f.l, NULL, NULL);
    fcntl(f.nb_c, F_SETFL, fcntl(f.nb_c, F_GETFL) | O_NONBLOCK);
    struct sockaddr_in a1 = loopback(0), a2 = loopback(0);
    socklen_t len = sizeof a1;
    f.u1 = socket(AF_INET, SOCK_DGRAM, 0);
    f.u2 = socket(AF_INET, SOCK_DGRAM, 0);
    f.u3 = socket(AF_INET, SOCK_DGRAM, 0);
    bind(f.u1, (struct sockaddr *)&a1, sizeof a1);
    bind(f.u2, (struct sockaddr *)&a2, sizeof a2);
    getsockname(f.u1, (struct sockaddr *)&a1, &len);
    len = sizeof a2;
    getsockname(f.u2, (struct sockaddr *)&a2, &len);
    connect(f.u1, (struct sockaddr *)&a2, sizeof a2);
    connect(f.u2, (struct sockaddr *)&a1, sizeof a1);
    f.u4 = socket(AF_INET, SOCK_DGRAM, 0);
    f.u4addr = loopback(0);
    bind(f.u4, (struct sockaddr *)&f.u4addr, sizeof f.u4addr);
    len = sizeof f.u4addr;
    getsockname(f.u4, (struct sockaddr *)&f.u4addr, &len);
    char path[] = "/tmp/sockmeter-bench-syscalls-XXXXXX";
    f.file = mkstemp(path);
    if (f.file < 0) die("mkstemp");
    unlink(path);
    if (pipe(f.pipe) < 0) die("pipe");
    char blk[4096];
    memset(blk, 'F', sizeof blk);
    expect(write(f.file, blk, sizeof blk), (ssize_t)sizeof blk, "file prefill");

    /* warm-up: the same calls once, unmeasured */
    data_phase(&f, 1);
    lifecycle_phase(&f, 1);

    marker("data", "begin");
    data_phase(&f, data_iters);
    marker("data", "end");
    marker("lifecycle", "begin");
    lifecycle_phase(&f, life_iters);
    marker("lifecycle", "end");

    printf("RESULT syscalls data_iters=%d lifecycle_iters=%d interposer=%s\n", data_iters, life_iters, interposer());
    return 0;
}
