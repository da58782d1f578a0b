/* Many short connections, for the reporter-fault tests (tests/e2e/faults.rs).
 *
 *   manyconns PORT N SIZE GOFILE DONEFILE FORK
 *
 * Waits for GOFILE to exist (so the test can stop or kill the reporter first), then makes N
 * connections to 127.0.0.1:PORT one after another: each sends SIZE bytes, shuts down its write
 * side, reads the reply to EOF and closes. With FORK=1 each connection is made by a forked
 * child (which exits with _exit); with FORK=2 the parent first makes one connection of its own (so,
 * metered, it has a shipper before its first fork: tests/e2e/net/processes.rs). Then creates
 * DONEFILE and prints {"tx": N, "rx": N}: what the process itself moved. */
#include "common.h"

static unsigned long long tx, rx;

static void one(unsigned short port, size_t size) {
    static char buf[65536];
    int fd = connect_v4(port);
    fill(buf, size < sizeof buf ? size : sizeof buf, 1);
    for (size_t sent = 0; sent < size;) {
        size_t n = size - sent < sizeof buf ? size - sent : sizeof buf;
        ssize_t w = send(fd, buf, n, 0);
        if (w < 0) {
            if (errno == EINTR) continue;
            die("send");
        }
        sent += (size_t)w;
        tx += (unsigned long long)w;
    }
    if (shutdown(fd, SHUT_WR) < 0) die("shutdown");
    for (;;) {
        ssize_t r = recv(fd, buf, sizeof buf, 0);
        if (r < 0) {
            if (errno == EINTR) continue;
            die("recv");
        }
        if (r == 0) break;
        rx += (unsigned long long)r;
    }
    if (close(fd) < 0) die("close");
}

int main(int argc, char **argv) {
    if (argc < 7) fail("usage: manyconns PORT N SIZE GOFILE DONEFILE FORK");
    unsigned short port = (unsigned short)atoi(argv[1]);
    long n = atol(argv[2]);
    size_t size = (size_t)atol(argv[3]);
    int forking = atoi(argv[6]);
    start_clock();
    for (int i = 0; access(argv[4], F_OK) != 0; i++) {
        if (i > (LIFETIME - 10) * 100) fail("no go file at %s", argv[4]);
        usleep(10000);
    }
    if (forking == 2) one(port, size);
    for (long i = 0; i < n; i++) {
        if (!forking) {
            one(port, size);
            continue;
        }
        pid_t c = fork();
        if (c < 0) die("fork");
        if (c == 0) {
            one(port, size);
            _exit(0);
        }
        int st;
        if (waitpid(c, &st, 0) != c) die("waitpid");
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) fail("child failed");
    }
    int d = open(argv[5], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (d < 0) die("open done file");
    close(d);
    say("{\"tx\": %llu, \"rx\": %llu}", tx, rx);
    return 0;
}
