/* Shared helpers of the sockmeter benchmark workloads (scripts/bench.d/w_*.c).
 *
 * Every workload prints exactly one result line on stdout:
 *   RESULT <workload> key=value key=value ...
 * The first numeric key after the workload name that the driver knows (see
 * scripts/bench) is the headline metric; the others are details.  Each line also
 * carries `interposer=<object that provides recv()>` so the driver can check that
 * the preload condition really was in effect, and the inet bytes the workload itself
 * moved (`tx=`/`rx=`) so the driver can check sockmeter's totals are exact. */
#ifndef SOCKMETER_BENCH_COMMON_H
#define SOCKMETER_BENCH_COMMON_H
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static __attribute__((unused)) inline uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts); /* vDSO: no system call */
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static __attribute__((unused)) void die(const char *what) {
    fprintf(stderr, "workload: %s: %s\n", what, strerror(errno));
    exit(2);
}

/* Basename of the object that recv() resolves to in this process: libc.so.6 when
 * nothing is preloaded, the interposer's file name otherwise. */
static __attribute__((unused)) const char *interposer(void) {
    static char name[256];
    void *p = dlsym(RTLD_DEFAULT, "recv");
    Dl_info info;
    if (!p || !dladdr(p, &info) || !info.dli_fname) return "unknown";
    const char *slash = strrchr(info.dli_fname, '/');
    snprintf(name, sizeof name, "%s", slash ? slash + 1 : info.dli_fname);
    return name;
}

static __attribute__((unused)) unsigned long long arg_ull(int argc, char **argv, int i, unsigned long long dflt) {
    return i < argc ? strtoull(argv[i], NULL, 0) : dflt;
}

static __attribute__((unused)) struct sockaddr_in loopback(int port) {
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

/* A TCP listener on 127.0.0.1 with a kernel-chosen port; returns the fd, sets *port. */
static __attribute__((unused)) int listen_loopback(int *port, int backlog) {
    int l = socket(AF_INET, SOCK_STREAM, 0);
    if (l < 0) die("socket");
    int one = 1;
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = loopback(0);
    if (bind(l, (struct sockaddr *)&a, sizeof a) < 0) die("bind");
    if (listen(l, backlog) < 0) die("listen");
    socklen_t len = sizeof a;
    if (getsockname(l, (struct sockaddr *)&a, &len) < 0) die("getsockname");
    *port = ntohs(a.sin_port);
    return l;
}

static __attribute__((unused)) int connect_loopback(int port) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    if (s < 0) die("socket");
    struct sockaddr_in a = loopback(port);
    if (connect(s, (struct sockaddr *)&a, sizeof a) < 0) die("connect");
    return s;
}

static __attribute__((unused)) void send_all(int fd, const void *buf, size_t n) {
    const char *p = buf;
    while (n > 0) {
        ssize_t r = send(fd, p, n, 0);
        if (r < 0) {
            if (errno == EINTR) continue;
            die("send");
        }
        p += r;
        n -= (size_t)r;
    }
}

static __attribute__((unused)) void recv_all(int fd, void *buf, size_t n) {
    char *p = buf;
    while (n > 0) {
        ssize_t r = recv(fd, p, n, 0);
        if (r < 0) {
            if (errno == EINTR) continue;
            die("recv");
        }
        if (r == 0) { errno = ECONNRESET; die("recv: early EOF"); }
        p += r;
        n -= (size_t)r;
    }
}

/* Raise the soft limit on open files as far as the hard limit allows. */
static __attribute__((unused)) void raise_nofile(rlim_t want) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < want) {
        rl.rlim_cur = want < rl.rlim_max ? want : rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* Stream-peer protocol (see peer.c): a 16-byte header opens each connection. */
struct peer_hdr {
    char mode[4];      /* "SINK", "SRCE" or "REQ1" */
    uint32_t size;     /* message size */
    uint64_t count;    /* number of messages */
};
#define REQ1_SIZE 64   /* a short connection's request and reply, header included */

/* Connects to the peer and opens a SINK or SRCE stream of `count` messages of `size` bytes;
 * returns the socket. The header is `sizeof(struct peer_hdr)` bytes the workload sends. */
static __attribute__((unused)) int peer_open(int port, const char mode[4], size_t size, unsigned long long count) {
    int s = connect_loopback(port);
    struct peer_hdr h = { {mode[0], mode[1], mode[2], mode[3]}, (uint32_t)size, count };
    send_all(s, &h, sizeof h);
    return s;
}

/* A REQ1 request (header included) in `req`. */
static __attribute__((unused)) void req1_init(char req[REQ1_SIZE]) {
    memset(req, 'q', REQ1_SIZE);
    struct peer_hdr h = { {'R','E','Q','1'}, REQ1_SIZE, 1 };
    memcpy(req, &h, sizeof h);
}

#endif
