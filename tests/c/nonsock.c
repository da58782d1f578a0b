/* Metered program doing plenty of non-socket I/O (regular file, pipe, /dev/null) with read,
 * write, readv and writev, around and during exactly one TCP exchange.
 *
 *   nonsock PORT FILE   (the peer serves the connection with "r5000,s7000,e")
 *
 * The regular file first takes the fd number the socket gets later, and takes it again after
 * the socket is closed. Prints "socket fd <n> port <local port>", "file fd <n>" lines and
 * "socket calls tx <n> rx <n>", its own count of the calls it made on the socket. */
#include "common.h"
#include <sys/uio.h>

static char buf[70000];

static void file_io(const char *path, int rounds) {
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) die("open file");
    say("file fd %d", fd);
    for (int i = 0; i < rounds; i++) {
        if (write(fd, buf, 5000) != 5000) die("file write");
        struct iovec v[3] = {{buf, 10}, {buf + 10, 0}, {buf + 10, 60000}};
        if (writev(fd, v, 3) != 60010) die("file writev");
    }
    if (lseek(fd, 0, SEEK_SET) != 0) die("lseek");
    for (;;) {
        ssize_t r = read(fd, buf, 4096);
        if (r < 0) die("file read");
        if (r == 0) break;
        struct iovec v[2] = {{buf, 100}, {buf + 100, 3000}};
        r = readv(fd, v, 2);
        if (r < 0) die("file readv");
        if (r == 0) break;
    }
    if (close(fd) < 0) die("close file");
}

static void pipe_io(void) {
    int p[2];
    if (pipe(p) < 0) die("pipe");
    for (int i = 0; i < 4; i++) {
        if (write(p[1], buf, 1000) != 1000) die("pipe write");
        struct iovec v[2] = {{buf, 24}, {buf + 24, 2000}};
        if (writev(p[1], v, 2) != 2024) die("pipe writev");
        if (read(p[0], buf, 1500) != 1500) die("pipe read");
        struct iovec r[2] = {{buf, 500}, {buf + 500, 2000}};
        if (readv(p[0], r, 2) != 1524) die("pipe readv");
    }
    if (close(p[0]) < 0 || close(p[1]) < 0) die("close pipe");
}

static void null_io(void) {
    int fd = open("/dev/null", O_RDWR);
    if (fd < 0) die("open /dev/null");
    for (int i = 0; i < 4; i++) {
        if (write(fd, buf, 65536) != 65536) die("null write");
        struct iovec v[2] = {{buf, 1}, {buf + 1, 999}};
        if (writev(fd, v, 2) != 1000) die("null writev");
        if (read(fd, buf, 100) != 0) die("null read");
        if (readv(fd, v, 2) != 0) die("null readv");
    }
    if (close(fd) < 0) die("close /dev/null");
}

int main(int argc, char **argv) {
    start_clock();
    if (argc != 3) fail("usage: nonsock PORT FILE");
    fill(buf, sizeof buf, 3);
    file_io(argv[2], 2);
    pipe_io();
    null_io();

    int s = connect_v4((unsigned short)atoi(argv[1]));
    say("socket fd %d port %u", s, local_port(s));
    pipe_io();
    if (write(s, buf, 4321) != 4321) die("socket write");
    file_io(argv[2], 1);
    struct iovec v[3] = {{buf, 600}, {buf, 0}, {buf, 79}};
    if (writev(s, v, 3) != 679) die("socket writev");
    null_io();
    unsigned txcalls = 2, rxcalls = 0;
    size_t got = 0;
    for (int i = 0; got < 7000; i++) {
        ssize_t r;
        if (i % 2 == 0) {
            r = read(s, buf, 7000 - got < 1000 ? 7000 - got : 1000);
        } else {
            size_t left = 7000 - got;
            struct iovec rv[2] = {{buf, left < 300 ? left : 300}, {buf + 300, left < 300 ? 0 : (left - 300 < 900 ? left - 300 : 900)}};
            r = readv(s, rv, 2);
        }
        rxcalls++;
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) die("socket read");
        got += (size_t)r;
    }
    if (write(s, buf, 17) != 17) die("socket write");
    txcalls++;
    if (close(s) < 0) die("close socket");
    say("socket calls tx %u rx %u", txcalls, rxcalls);

    file_io(argv[2], 3);
    pipe_io();
    null_io();
    return 0;
}
