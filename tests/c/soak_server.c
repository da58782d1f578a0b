/* Metered soak server: one thread, nonblocking, epoll, many short connections.
 *
 *   soak_server PORTFILE
 *
 * Listens (SOCK_NONBLOCK) on 127.0.0.1:0 and writes "<port> <pid>" to PORTFILE. Each
 * connection sends a 4-byte length L (network order) and L bytes; the server answers with
 * 3*L + 7 bytes and closes. A length of 0xffffffff means "stop": the server closes that
 * connection and exits. Reads with read/recv, writes with write/send (alternating), accepts
 * with accept4 until EAGAIN. */
#include "common.h"
#include <sys/epoll.h>

#define MAXC 4096
#define QUIT 0xffffffffu

struct conn {
    int fd;
    unsigned char head[4];
    size_t got, want, sent, reply;
    int replying;
};

static struct conn *conns[MAXC * 16];
static char buf[1 << 16];

static void drop(int ep, struct conn *c) {
    if (epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL) < 0) die("epoll_ctl DEL");
    if (close(c->fd) < 0) die("close");
    conns[c->fd] = NULL;
    free(c);
}

/* Returns 1 when the connection asked the server to stop. */
static int pump(int ep, struct conn *c) {
    while (!c->replying) {
        size_t room = c->got < 4 ? 4 - c->got : c->want - (c->got - 4);
        if (room > sizeof buf) room = sizeof buf;
        ssize_t r = (c->got & 1) ? recv(c->fd, buf, room, 0) : read(c->fd, buf, room);
        if (r < 0 && (errno == EAGAIN || errno == EINTR)) return 0;
        if (r <= 0) die("read request");
        if (c->got < 4) memcpy(c->head + c->got, buf, (size_t)r);
        c->got += (size_t)r;
        if (c->got == 4) {
            unsigned len = (unsigned)c->head[0] << 24 | (unsigned)c->head[1] << 16 | (unsigned)c->head[2] << 8 |
                           c->head[3];
            if (len == QUIT) {
                drop(ep, c);
                return 1;
            }
            c->want = len;
        }
        if (c->got >= 4 && c->got - 4 == c->want) {
            c->replying = 1;
            c->reply = 3 * c->want + 7;
            struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = c};
            if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) < 0) die("epoll_ctl MOD");
        }
    }
    while (c->sent < c->reply) {
        size_t n = c->reply - c->sent < sizeof buf ? c->reply - c->sent : sizeof buf;
        ssize_t w = (c->sent & 1) ? send(c->fd, buf, n, MSG_NOSIGNAL) : write(c->fd, buf, n);
        if (w < 0 && (errno == EAGAIN || errno == EINTR)) return 0;
        if (w <= 0) die("write reply");
        c->sent += (size_t)w;
    }
    drop(ep, c);
    return 0;
}

int main(int argc, char **argv) {
    signal(SIGPIPE, SIG_IGN);
    alarm(LIFETIME);
    if (argc != 2) fail("usage: soak_server PORTFILE");
    fill(buf, sizeof buf, 2);
    unsigned short port;
    int lfd = listen_v4(SOCK_NONBLOCK, &port);
    if (listen(lfd, 1024) < 0) die("listen");
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) die("epoll_create1");
    struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev) < 0) die("epoll_ctl listener");
    char text[64];
    snprintf(text, sizeof text, "%u %d", port, (int)getpid());
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", argv[1]);
    FILE *f = fopen(tmp, "w");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0 || rename(tmp, argv[1]) != 0) die("port file");

    for (int stop = 0; !stop;) {
        struct epoll_event evs[64];
        int n = epoll_wait(ep, evs, 64, -1);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) die("epoll_wait");
        for (int i = 0; i < n && !stop; i++) {
            struct conn *c = evs[i].data.ptr;
            if (c != NULL) {
                stop = pump(ep, c);
                continue;
            }
            for (;;) {
                int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (fd < 0 && (errno == EAGAIN || errno == EINTR)) break;
                if (fd < 0) die("accept4");
                if (fd >= (int)(sizeof conns / sizeof conns[0])) fail("fd %d too high", fd);
                c = calloc(1, sizeof *c);
                if (!c) die("calloc");
                c->fd = fd;
                conns[fd] = c;
                struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
                if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) die("epoll_ctl ADD");
            }
        }
    }
    if (close(ep) < 0 || close(lfd) < 0) die("close");
    return 0;
}
