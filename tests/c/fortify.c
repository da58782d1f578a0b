/* Metered client built with -O2 -D_FORTIFY_SOURCE=2: its reads into a fixed array go through
 * __read_chk, __recv_chk and __recvfrom_chk (the length is not a compile-time constant, so
 * glibc's fortified inlines call the checking variants).
 *
 *   fortify PORT NSEND   connect to 127.0.0.1:PORT, send NSEND bytes (half write(), half
 *                        send()), shut down writing, read until EOF rotating over the three
 *                        checked reads; print how many bytes each read variant returned. */
#include "common.h"

int main(int argc, char **argv) {
    start_clock();
    if (argc != 3) fail("usage: fortify PORT NSEND");
    unsigned short port = (unsigned short)atoi(argv[1]);
    size_t nsend = strtoul(argv[2], NULL, 10);
    int fd = connect_v4(port);

    static char out[1 << 16];
    size_t sent = 0;
    while (sent < nsend) {
        size_t chunk = nsend - sent < sizeof out ? nsend - sent : sizeof out;
        fill(out, chunk, (unsigned)sent);
        ssize_t w = sent < nsend / 2 ? write(fd, out, chunk) : send(fd, out, chunk, 0);
        if (w < 0) die("send");
        sent += (size_t)w;
    }
    if (shutdown(fd, SHUT_WR) < 0) die("shutdown");

    char buf[3000];
    /* Not a constant to the compiler: the fortified inlines must call the _chk variants. */
    volatile size_t cap = sizeof buf;
    unsigned long long got[3] = {0, 0, 0};
    for (unsigned i = 0;; i++) {
        ssize_t r;
        switch (i % 3) {
        case 0: r = read(fd, buf, cap); break;
        case 1: r = recv(fd, buf, cap, 0); break;
        default: r = recvfrom(fd, buf, cap, 0, NULL, NULL); break;
        }
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) die("read");
        if (r == 0) break;
        got[i % 3] += (unsigned long long)r;
    }
    if (close(fd) < 0) die("close");
    say("via read %llu recv %llu recvfrom %llu", got[0], got[1], got[2]);
    return 0;
}
