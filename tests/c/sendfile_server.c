/* Metered server that sends a file with sendfile().
 *
 *   sendfile_server PORTFILE FILE SIZE
 *
 * Writes FILE with SIZE bytes (regular-file I/O, never counted), listens on 127.0.0.1:0,
 * publishes the port, accepts one connection, reads a 100-byte request with recv(), sends the
 * first half of FILE with sendfile() and the rest with sendfile64(), and closes. */
#include "common.h"
#include <sys/sendfile.h>

int main(int argc, char **argv) {
    start_clock();
    if (argc != 4) fail("usage: sendfile_server PORTFILE FILE SIZE");
    size_t size = strtoul(argv[3], NULL, 10);

    int out = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (out < 0) die("open file for writing");
    static char chunk[1 << 16];
    for (size_t done = 0; done < size;) {
        size_t n = size - done < sizeof chunk ? size - done : sizeof chunk;
        fill(chunk, n, (unsigned)done);
        ssize_t w = write(out, chunk, n);
        if (w <= 0) die("write file");
        done += (size_t)w;
    }
    if (close(out) < 0) die("close file");

    unsigned short port;
    int lfd = listen_v4(0, &port);
    publish_port(argv[1], port);
    int c = accept(lfd, NULL, NULL);
    if (c < 0) die("accept");
    char req[100];
    for (size_t got = 0; got < sizeof req;) {
        ssize_t r = recv(c, req + got, sizeof req - got, 0);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) die("recv request");
        got += (size_t)r;
    }

    int in = open(argv[2], O_RDONLY);
    if (in < 0) die("open file");
    off_t off = 0;
    unsigned calls = 0, calls64 = 0;
    while ((size_t)off < size / 2) {
        ssize_t s = sendfile(c, in, &off, size / 2 - (size_t)off);
        if (s < 0 && errno == EINTR) continue;
        if (s <= 0) die("sendfile");
        calls++;
    }
    off64_t off64 = off;
    while ((size_t)off64 < size) {
        ssize_t s = sendfile64(c, in, &off64, size - (size_t)off64);
        if (s < 0 && errno == EINTR) continue;
        if (s <= 0) die("sendfile64");
        calls64++;
    }
    if (close(in) < 0) die("close file");
    if (close(c) < 0) die("close connection");
    if (close(lfd) < 0) die("close listener");
    say("sent %zu bytes of %s with %u sendfile and %u sendfile64 calls", size, argv[2], calls, calls64);
    return 0;
}
