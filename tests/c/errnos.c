/* Prints the return value and errno of calls that fail (and of some that succeed, with errno
 * preset to a marker value, which a successful libc call leaves alone). Run with and without
 * the shim, the output must be identical. Every result printed is deterministic.
 *
 *   errnos DIR   (DIR: any directory, read() on it gives EISDIR) */
#include "common.h"
#include <sys/ioctl.h>
#include <sys/sendfile.h>
#include <sys/uio.h>
#include <sys/wait.h>

static void show(const char *what, long ret) {
    int e = errno;
    const char *name = e ? strerrorname_np(e) : "0";
    say("%-34s ret=%ld errno=%s", what, ret, name ? name : "?");
}

#define CALL(what, expr) do { errno = 0; long r_ = (long)(expr); show(what, r_); } while (0)
/* Successful calls: errno preset to a marker that must survive. */
#define KEEP(what, expr) do { errno = EDOM; long r_ = (long)(expr); show(what, r_ >= 0 ? 1 : r_); } while (0)

int main(int argc, char **argv) {
    start_clock();
    if (argc != 2) fail("usage: errnos DIR");
    char buf[256];
    memset(buf, 'x', sizeof buf);

    /* A listener and a connected pair inside this process (loopback). */
    unsigned short lport;
    int lfd = listen_v4(0, &lport);
    int cli;
    KEEP("socket (success keeps errno)", cli = socket(AF_INET, SOCK_STREAM, 0));
    struct sockaddr_in to = lo4(lport);
    KEEP("connect (success keeps errno)", connect(cli, (struct sockaddr *)&to, sizeof to));
    int srv;
    KEEP("accept (success keeps errno)", srv = accept(lfd, NULL, NULL));
    KEEP("send 10 (success keeps errno)", send(cli, buf, 10, 0));
    /* Wait (bounded) until the 10 bytes are there, without a hooked call. */
    for (int i = 0; i < 5000; i++) {
        int avail = 0;
        if (ioctl(srv, FIONREAD, &avail) == 0 && avail >= 10) break;
        usleep(1000);
    }
    CALL("recv MSG_PEEK 100", recv(srv, buf, 100, MSG_PEEK));
    KEEP("recv 100 (success keeps errno)", recv(srv, buf, 100, 0));

    /* EAGAIN: nonblocking sockets with nothing to read. */
    int flags = fcntl(srv, F_GETFL);
    fcntl(srv, F_SETFL, flags | O_NONBLOCK);
    CALL("recv on empty nonblocking tcp", recv(srv, buf, sizeof buf, 0));
    CALL("read on empty nonblocking tcp", read(srv, buf, sizeof buf));
    int u = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in ua = lo4(0);
    CALL("bind udp", bind(u, (struct sockaddr *)&ua, sizeof ua));
    CALL("recv on empty nonblocking udp", recv(u, buf, sizeof buf, 0));
    CALL("recvfrom on empty nonblocking udp", recvfrom(u, buf, sizeof buf, 0, NULL, NULL));
    struct iovec iov = {buf, sizeof buf};
    struct msghdr mh;
    memset(&mh, 0, sizeof mh);
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    CALL("recvmsg on empty nonblocking udp", recvmsg(u, &mh, 0));
    struct mmsghdr mm;
    memset(&mm, 0, sizeof mm);
    mm.msg_hdr = mh;
    CALL("recvmmsg on empty nonblocking udp", recvmmsg(u, &mm, 1, 0, NULL));
    CALL("readv on empty nonblocking udp", readv(u, &iov, 1));

    /* EBADF: a socket that was closed. */
    int dead = socket(AF_INET, SOCK_STREAM, 0);
    CALL("close socket", close(dead));
    CALL("send on closed fd", send(dead, buf, 1, 0));
    CALL("write on closed fd", write(dead, buf, 1));
    CALL("recv on closed fd", recv(dead, buf, 1, 0));
    CALL("writev on closed fd", writev(dead, &iov, 1));
    CALL("close closed fd", close(dead));
    CALL("dup closed fd", dup(dead));
    CALL("dup2 closed fd", dup2(dead, 77));
    CALL("shutdown closed fd", shutdown(dead, SHUT_RDWR));

    /* ECONNREFUSED: a port bound (so nobody else takes it) but not listening. */
    int held = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in ha = lo4(0);
    CALL("bind unlistened port", bind(held, (struct sockaddr *)&ha, sizeof ha));
    socklen_t hl = sizeof ha;
    getsockname(held, (struct sockaddr *)&ha, &hl);
    int refused = socket(AF_INET, SOCK_STREAM, 0);
    CALL("connect to a closed port", connect(refused, (struct sockaddr *)&ha, sizeof ha));
    CALL("send on the refused socket", send(refused, buf, 1, MSG_NOSIGNAL));

    /* EISDIR: read() on a directory. */
    int dir = open(argv[1], O_RDONLY | O_DIRECTORY);
    CALL("read on a directory", read(dir, buf, sizeof buf));
    CALL("readv on a directory", readv(dir, &iov, 1));
    CALL("sendfile from a directory", sendfile(cli, dir, NULL, 10));

    /* ENOTSOCK / EINVAL / EPIPE and friends. */
    CALL("send on a directory fd", send(dir, buf, 1, 0));
    CALL("shutdown on a directory fd", shutdown(dir, SHUT_RD));
    CALL("accept on a connected socket", accept(cli, NULL, NULL));
    CALL("listen on a connected socket", listen(cli, 1));
    CALL("connect with a short address", connect(refused, (struct sockaddr *)&ha, 3));
    CALL("close_range first > last", close_range(10, 5, 0));
    CALL("dup2 to -1", dup2(cli, -1));
    CALL("shutdown SHUT_WR", shutdown(cli, SHUT_WR));
    CALL("send after SHUT_WR", send(cli, buf, 1, MSG_NOSIGNAL));
    CALL("sendto on connected tcp after SHUT_WR", sendto(cli, buf, 1, MSG_NOSIGNAL, NULL, 0));
    CALL("sendmmsg with vlen 0", sendmmsg(u, &mm, 0, 0));
    CALL("socket with a bad family", socket(12345, SOCK_STREAM, 0));
    CALL("fcntl F_DUPFD on a bad fd", fcntl(9999, F_DUPFD, 100));
    CALL("read with a bad fd", read(-1, buf, 1));
    /* An fd the shim has never seen (no hooked call used it): a successful close keeps errno. */
    int fresh = open(argv[1], O_RDONLY | O_DIRECTORY);
    KEEP("close of a never used fd (success keeps errno)", close(fresh));
    errno = ERANGE;
    KEEP("close (success keeps errno)", close(srv));
    KEEP("close udp (success keeps errno)", close(u));
    /* fork keeps errno in both processes (the shim's fork handlers make calls of their own:
     * a metered parent's first fork makes the nursery for its children). */
    errno = EDOM;
    pid_t kid = fork();
    if (kid == 0) {
        show("fork, in the child (success keeps errno)", 1);
        _exit(0);
    }
    int fork_errno = errno;
    if (kid > 0) waitpid(kid, NULL, 0);
    errno = fork_errno;
    show("fork, in the parent (success keeps errno)", kid > 0 ? 1 : kid);
    close(cli);
    close(lfd);
    close(held);
    close(refused);
    close(dir);
    return 0;
}
