/* The unmetered peer of the TCP workloads (w_stream, w_short).
 *
 * scripts/bench starts it once, *without* any preload, so only the workload side is
 * metered: it listens on 127.0.0.1 (kernel-chosen port, printed as "PORT <n>" on
 * stdout) and serves connections that open with a struct peer_hdr (common.h):
 *   SINK size count  read size*count bytes, answer one byte, wait for EOF;
 *   SRCE size count  write size*count bytes, wait for EOF;
 *   REQ1             read the rest of a REQ1_SIZE request, write a REQ1_SIZE reply, close
 *                    (the peer closes first, so the client side never sits in TIME_WAIT).
 * It dies with its parent (PR_SET_PDEATHSIG). */
#include "common.h"
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>

#define CHUNK (256 * 1024)

static ssize_t read_full(int fd, void *buf, size_t n) {
    size_t got = 0;
    while (got < n) {
        ssize_t r = recv(fd, (char *)buf + got, n - got, MSG_WAITALL);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return r;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

static int write_full(int fd, const void *buf, size_t n) {
    const char *p = buf;
    while (n > 0) {
        ssize_t r = send(fd, p, n, MSG_NOSIGNAL);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

static void drain_to_eof(int fd, char *buf) {
    while (recv(fd, buf, CHUNK, 0) > 0) {}
}

struct job { int fd; struct peer_hdr h; };

static void *stream_thread(void *arg) {
    struct job *j = arg;
    char *buf = malloc(CHUNK);
    memset(buf, 'p', CHUNK);
    uint64_t total = (uint64_t)j->h.size * j->h.count;
    if (memcmp(j->h.mode, "SINK", 4) == 0) {
        uint64_t got = 0;
        while (got < total) {
            size_t want = total - got < CHUNK ? (size_t)(total - got) : CHUNK;
            ssize_t r = recv(j->fd, buf, want, 0);
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) goto out;
            got += (uint64_t)r;
        }
        if (write_full(j->fd, "k", 1) < 0) goto out;
    } else { /* SRCE */
        uint64_t sent = 0;
        while (sent < total) {
            size_t n = total - sent < CHUNK ? (size_t)(total - sent) : CHUNK;
            if (write_full(j->fd, buf, n) < 0) goto out;
            sent += n;
        }
    }
    drain_to_eof(j->fd, buf);
out:
    close(j->fd);
    free(buf);
    free(j);
    return NULL;
}

int main(void) {
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    signal(SIGPIPE, SIG_IGN);
    raise_nofile(65536);
    int port;
    int l = listen_loopback(&port, 4096);
    printf("PORT %d\n", port);
    fflush(stdout);
    char req[REQ1_SIZE];
    memset(req, 'r', sizeof req);
    for (;;) {
        int c = accept(l, NULL, NULL);
        if (c < 0) {
            if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE) continue;
            die("accept");
        }
        struct peer_hdr h;
        if (read_full(c, &h, sizeof h) != (ssize_t)sizeof h) { close(c); continue; }
        if (memcmp(h.mode, "REQ1", 4) == 0) {
            if (read_full(c, req, REQ1_SIZE - sizeof h) == (ssize_t)(REQ1_SIZE - sizeof h))
                write_full(c, req, REQ1_SIZE);
            close(c);
        } else if (memcmp(h.mode, "SINK", 4) == 0 || memcmp(h.mode, "SRCE", 4) == 0) {
            struct job *j = malloc(sizeof *j);
            j->fd = c;
            j->h = h;
            pthread_t t;
            pthread_attr_t at;
            pthread_attr_init(&at);
            pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
            if (pthread_create(&t, &at, stream_thread, j) != 0) { close(c); free(j); }
            pthread_attr_destroy(&at);
        } else {
            close(c);
        }
    }
}
