/* Small helpers shared by the end-to-end C programs (tests/e2e/cprogs.rs).
 *
 * Every program arms alarm() so it ends by itself, talks over loopback only, and listens on
 * port 0. Helpers here use only the calls named in their comments, so a program's choice of
 * libc function for its metered traffic stays visible in the program itself. */
#ifndef SOCKMETER_TEST_COMMON_H
#define SOCKMETER_TEST_COMMON_H

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Seconds any test program may live. */
#define LIFETIME 90

static inline void die(const char *what) {
    char line[512];
    int n = snprintf(line, sizeof line, "%s: %s (errno %d)\n", what, strerror(errno), errno);
    if (n > 0) {
        ssize_t w = write(2, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
        (void)w;
    }
    exit(2);
}

/* Formats one line (newline added, cut to fit) into `line`; returns its length. */
static inline size_t vline(char *line, size_t cap, const char *fmt, va_list ap) {
    int n = vsnprintf(line, cap - 1, fmt, ap);
    if (n < 0) n = 0;
    if ((size_t)n > cap - 2) n = (int)cap - 2;
    line[n++] = '\n';
    return (size_t)n;
}

static inline void fail(const char *fmt, ...) {
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    size_t n = vline(line, sizeof line, fmt, ap);
    va_end(ap);
    ssize_t w = write(2, line, n);
    (void)w;
    exit(3);
}

/* One line on stdout with a single write() (atomic on a pipe, so forked writers never
 * interleave inside a line). stdout is a pipe, never a socket: the shim does not count it. */
static inline void say(const char *fmt, ...) {
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    size_t n = vline(line, sizeof line, fmt, ap);
    va_end(ap);
    if (write(1, line, n) != (ssize_t)n) die("write stdout");
}

/* The shim's own fd below `limit`: its reporter connection (a Unix stream socket) when it
 * reports from a thread, or the link pipe to its shipper process. The test programs make
 * neither. -1 if there is none. */
static inline int find_shim_fd(int limit) {
    for (int fd = 3; fd < limit; fd++) {
        int dom = 0, type = 0;
        socklen_t l1 = sizeof dom, l2 = sizeof type;
        if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &dom, &l1) == 0 &&
            getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &l2) == 0 && dom == AF_UNIX && type == SOCK_STREAM)
            return fd;
        struct stat st;
        if (fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode)) return fd;
    }
    return -1;
}

static inline void start_clock(void) {
    alarm(LIFETIME);
    signal(SIGPIPE, SIG_IGN);
}

/* 127.0.0.1:port. */
static inline struct sockaddr_in lo4(unsigned short port) {
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    return a;
}

/* Waits for `n` children; 1 if any did not exit with status 0. */
static inline int wait_all(int n) {
    int bad = 0;
    for (int i = 0; i < n; i++) {
        int st;
        if (wait(&st) < 0) die("wait");
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) bad = 1;
    }
    return bad;
}

/* A TCP listener on 127.0.0.1, port 0 (socket, bind, listen). `flags` go to socket()'s type. */
static inline int listen_v4(int flags, unsigned short *port) {
    int fd = socket(AF_INET, SOCK_STREAM | flags, 0);
    if (fd < 0) die("socket");
    struct sockaddr_in a = lo4(0);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0) die("bind");
    if (listen(fd, 64) < 0) die("listen");
    socklen_t len = sizeof a;
    if (getsockname(fd, (struct sockaddr *)&a, &len) < 0) die("getsockname");
    *port = ntohs(a.sin_port);
    return fd;
}

/* A TCP connection to 127.0.0.1:port (socket, connect). */
static inline int connect_v4(unsigned short port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) die("socket");
    struct sockaddr_in a = lo4(port);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) die("connect");
    return fd;
}

static inline unsigned short local_port(int fd) {
    struct sockaddr_storage a;
    socklen_t len = sizeof a;
    if (getsockname(fd, (struct sockaddr *)&a, &len) < 0) die("getsockname");
    if (a.ss_family == AF_INET6) return ntohs(((struct sockaddr_in6 *)&a)->sin6_port);
    return ntohs(((struct sockaddr_in *)&a)->sin_port);
}

static inline unsigned short remote_port(int fd) {
    struct sockaddr_storage a;
    socklen_t len = sizeof a;
    if (getpeername(fd, (struct sockaddr *)&a, &len) < 0) die("getpeername");
    if (a.ss_family == AF_INET6) return ntohs(((struct sockaddr_in6 *)&a)->sin6_port);
    return ntohs(((struct sockaddr_in *)&a)->sin_port);
}

/* Writes the port to `path` atomically (a regular file: open, write, close, rename), for an
 * unmetered peer that polls for it. */
static inline void publish_port(const char *path, unsigned short port) {
    char tmp[4096], text[32];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) die("open port file");
    int n = snprintf(text, sizeof text, "%u\n", port);
    if (write(fd, text, (size_t)n) != n) die("write port file");
    if (close(fd) < 0) die("close port file");
    if (rename(tmp, path) < 0) die("rename port file");
}

/* Polls (bounded) for a file written by publish_port and returns the port. */
static inline unsigned short await_port(const char *path) {
    for (int i = 0; i < (LIFETIME - 10) * 50; i++) { /* gives up before the alarm, to say why */
        FILE *f = fopen(path, "r");
        if (f) {
            unsigned p = 0;
            int ok = fscanf(f, "%u", &p);
            fclose(f);
            if (ok == 1 && p > 0 && p < 65536) return (unsigned short)p;
        }
        usleep(20000);
    }
    fail("no port file at %s", path);
    return 0;
}

/* Deterministic payload bytes. */
static inline void fill(char *buf, size_t n, unsigned seed) {
    for (size_t i = 0; i < n; i++) buf[i] = (char)('a' + (i * 7 + seed) % 26);
}

/* Sends `bytes` bytes on `fd`, all of them, in blocks of 4 KiB of fill(seed). */
static inline void send_filled(int fd, size_t bytes, unsigned seed) {
    char buf[4096];
    fill(buf, sizeof buf, seed);
    for (size_t sent = 0; sent < bytes;) {
        size_t n = bytes - sent < sizeof buf ? bytes - sent : sizeof buf;
        ssize_t w = send(fd, buf, n, 0);
        if (w < 0) die("send");
        sent += (size_t)w;
    }
}

/* Installs `handler` for `sig`, with SA_RESTART and nothing blocked. */
static inline void catch_restarting(int sig, void (*handler)(int)) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    if (sigaction(sig, &sa, NULL) < 0) die("sigaction");
}

#endif
