/* Streams to a peer until a signal ends it (tests/e2e/faults.rs: Ctrl-C, abort).
 *
 *   streamer PORT CHUNK [CHILD [ABORT_MS]]
 *
 * Connects to 127.0.0.1:PORT and sends CHUNK bytes every 2 ms, forever, with every signal at
 * its default disposition: Ctrl-C (SIGINT) kills it. With CHILD=1 it first forks a child that
 * does the same on a connection of its own. With ABORT_MS > 0 it calls abort() once it has
 * streamed that long (an assertion failing, an uncaught C++ exception). */
#include "common.h"
#include <sys/resource.h>

static long abort_ms;

static long elapsed_ms(const struct timespec *t0) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long)(t.tv_sec - t0->tv_sec) * 1000 + (t.tv_nsec - t0->tv_nsec) / 1000000;
}

static void stream(unsigned short port, size_t chunk) {
    static char buf[65536];
    int fd = connect_v4(port);
    fill(buf, chunk < sizeof buf ? chunk : sizeof buf, 3);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        ssize_t w = send(fd, buf, chunk, 0);
        if (w < 0 && errno != EINTR) die("send");
        usleep(2000);
        if (abort_ms > 0 && elapsed_ms(&t0) >= abort_ms) abort();
    }
}

int main(int argc, char **argv) {
    if (argc < 3) fail("usage: streamer PORT CHUNK [CHILD]");
    unsigned short port = (unsigned short)atoi(argv[1]);
    size_t chunk = (size_t)atol(argv[2]);
    alarm(LIFETIME);
    if (argc > 4) {
        abort_ms = atol(argv[4]);
        /* No core file left behind wherever the tests run. */
        struct rlimit none = {0, 0};
        setrlimit(RLIMIT_CORE, &none);
    }
    if (argc > 3 && atoi(argv[3])) {
        pid_t c = fork();
        if (c < 0) die("fork");
        if (c == 0) stream(port, chunk);
    }
    stream(port, chunk);
    return 0;
}
