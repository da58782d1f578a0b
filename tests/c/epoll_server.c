/* Metered nonblocking epoll server.
 *
 *   epoll_server PORTFILE NCLIENTS MARKERDIR
 *
 * Listens (SOCK_NONBLOCK) on 127.0.0.1:0 and publishes the port in PORTFILE. Accepts with
 * accept4(SOCK_NONBLOCK) until EAGAIN. For each connection:
 *   1. recv() at once: the client waits for the greeting, so this is always EAGAIN;
 *   2. send a 6-byte greeting;
 *   3. read() until EOF, each time until EAGAIN (epoll for more);
 *   4. reply 600000 + 3*received bytes with send() in 64 KiB pieces on a small SO_SNDBUF
 *      (partial writes), until EAGAIN; at the first EAGAIN touch MARKERDIR/mark-<client port>
 *      (the client reads nothing until then, so EAGAIN is certain); epoll for EPOLLOUT;
 *   5. close.
 * Prints, per connection, its own count of every call it made on that connection:
 *   "served <client port> rx <bytes> tx <bytes> rxcalls <n> txcalls <n> eagain_rx <n>
 *    eagain_tx <n> partial <n>" */
#include "common.h"
#include <sys/epoll.h>

#define MAXC 64

struct conn {
    int fd;
    unsigned short port;
    int writing, marked;
    unsigned long long rx, tx, target;
    unsigned long long rxcalls, txcalls, eagain_rx, eagain_tx, partial;
};

static struct conn conns[MAXC];
static int nconns;
static const char *markers;
static char buf[1 << 16];

static void finish(struct conn *c) {
    say("served %u rx %llu tx %llu rxcalls %llu txcalls %llu eagain_rx %llu eagain_tx %llu partial %llu",
        c->port, c->rx, c->tx, c->rxcalls, c->txcalls, c->eagain_rx, c->eagain_tx, c->partial);
    if (close(c->fd) < 0) die("close");
    c->fd = -1;
}

static void mark(struct conn *c) {
    char path[4096];
    snprintf(path, sizeof path, "%s/mark-%u", markers, c->port);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) die("open marker");
    if (write(fd, "x", 1) != 1) die("write marker");
    if (close(fd) < 0) die("close marker");
    c->marked = 1;
}

/* Returns 1 when the connection is finished. */
static int pump_write(int ep, struct conn *c) {
    while (c->tx < c->target) {
        size_t want = c->target - c->tx < sizeof buf ? (size_t)(c->target - c->tx) : sizeof buf;
        fill(buf, want, (unsigned)c->tx);
        ssize_t w = send(c->fd, buf, want, MSG_NOSIGNAL);
        c->txcalls++;
        if (w < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                c->eagain_tx++;
                if (!c->marked) mark(c);
                struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = c};
                if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) < 0) die("epoll_ctl MOD");
                return 0;
            }
            if (errno == EINTR) continue;
            die("send reply");
        }
        if ((size_t)w < want) c->partial++;
        c->tx += (unsigned long long)w;
    }
    finish(c);
    return 1;
}

/* Returns 1 when the connection is finished. */
static int pump_read(int ep, struct conn *c) {
    for (;;) {
        ssize_t r = read(c->fd, buf, sizeof buf);
        c->rxcalls++;
        if (r > 0) {
            c->rx += (unsigned long long)r;
            continue;
        }
        if (r == 0) {
            c->writing = 1;
            c->target = 600000 + 3 * c->rx;
            return pump_write(ep, c);
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            c->eagain_rx++;
            return 0;
        }
        if (errno == EINTR) continue;
        die("read");
    }
}

int main(int argc, char **argv) {
    start_clock();
    if (argc != 4) fail("usage: epoll_server PORTFILE NCLIENTS MARKERDIR");
    int want = atoi(argv[2]);
    if (want < 1 || want > MAXC) fail("bad NCLIENTS");
    markers = argv[3];
    unsigned short port;
    int lfd = listen_v4(SOCK_NONBLOCK, &port);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) die("epoll_create1");
    struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev) < 0) die("epoll_ctl listener");
    publish_port(argv[1], port);

    int done = 0;
    while (done < want) {
        struct epoll_event evs[16];
        int n = epoll_wait(ep, evs, 16, -1);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) die("epoll_wait");
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if (c == NULL) {
                for (;;) {
                    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                    if (fd < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
                    if (fd < 0 && errno == EINTR) continue;
                    if (fd < 0) die("accept4");
                    if (nconns == MAXC) fail("too many connections");
                    c = &conns[nconns++];
                    memset(c, 0, sizeof *c);
                    c->fd = fd;
                    c->port = remote_port(fd);
                    int small = 4096;
                    if (setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof small) < 0) die("SO_SNDBUF");
                    ssize_t r = recv(fd, buf, sizeof buf, 0);
                    c->rxcalls++;
                    if (r >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
                        fail("first recv before the greeting returned %zd (errno %d), not EAGAIN", r, errno);
                    c->eagain_rx++;
                    ssize_t w = send(fd, "HELLO\n", 6, MSG_NOSIGNAL);
                    c->txcalls++;
                    if (w != 6) die("greeting");
                    c->tx += 6;
                    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
                    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) die("epoll_ctl ADD");
                }
                continue;
            }
            if (c->fd < 0) continue;
            done += c->writing ? pump_write(ep, c) : pump_read(ep, c);
        }
    }
    if (close(ep) < 0) die("close epoll");
    if (close(lfd) < 0) die("close listener");
    return 0;
}
