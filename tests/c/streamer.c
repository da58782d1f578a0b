/* Streams to a peer until a signal ends it (tests/e2e/faults.rs: Ctrl-C).
 *
 *   streamer PORT CHUNK [CHILD]
 *
 * Connects to 127.0.0.1:PORT and sends CHUNK bytes every 2 ms, forever, with every signal at
 * its default disposition: Ctrl-C (SIGINT) kills it. With CHILD=1 it first forks a child that
 * does the same on a connection of its own. */
#include "common.h"

static void stream(unsigned short port, size_t chunk) {
    static char buf[65536];
    int fd = connect_v4(port);
    fill(buf, chunk < sizeof buf ? chunk : sizeof buf, 3);
    for (;;) {
        ssize_t w = send(fd, buf, chunk, 0);
        if (w < 0 && errno != EINTR) die("send");
        usleep(2000);
    }
}

int main(int argc, char **argv) {
    if (argc < 3) fail("usage: streamer PORT CHUNK [CHILD]");
    unsigned short port = (unsigned short)atoi(argv[1]);
    size_t chunk = (size_t)atol(argv[2]);
    alarm(LIFETIME);
    if (argc > 3 && atoi(argv[3])) {
        pid_t c = fork();
        if (c < 0) die("fork");
        if (c == 0) stream(port, chunk);
    }
    stream(port, chunk);
    return 0;
}
