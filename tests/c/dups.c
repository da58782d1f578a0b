/* Metered client: one connected socket under five fd numbers, closed in a mixed order, and
 * later sockets that reuse the first one's fd number.
 *
 *   dups PORT   (the peer serves each connection with "r10000,s5000,e")
 *
 * A = connect; aliases: dup(A), dup2(A, 50), fcntl(A, F_DUPFD, 60), dup3(A, 51, O_CLOEXEC).
 * 10000 bytes written through all five fds, the 5000-byte reply read through fd 50, then:
 * close(A); write via dup; B = connect (takes A's old fd number) with its own exchange; close
 * the dup; write via 50; close_range(50, 55) (closes 50 and 51); write via 60; close(60), the
 * last alias; C = connect (A's number again) with its own exchange.
 * Prints "sock <name> fd <n> port <local port>" for A, B and C. */
#include "common.h"

static char data[16384];

static void put(int fd, size_t n) {
    for (size_t done = 0; done < n;) {
        ssize_t w = write(fd, data, n - done < sizeof data ? n - done : sizeof data);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) die("write");
        done += (size_t)w;
    }
}

static void get(int fd, size_t n) {
    static char buf[8192];
    for (size_t done = 0; done < n;) {
        ssize_t r = read(fd, buf, n - done < sizeof buf ? n - done : sizeof buf);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) die("read");
        if (r == 0) fail("EOF with %zu bytes still expected", n - done);
        done += (size_t)r;
    }
}

static void exchange(const char *name, int fd, size_t extra) {
    say("sock %s fd %d port %u", name, fd, local_port(fd));
    put(fd, 10000);
    get(fd, 5000);
    put(fd, extra);
    if (close(fd) < 0) die("close");
}

int main(int argc, char **argv) {
    start_clock();
    if (argc != 2) fail("usage: dups PORT");
    unsigned short port = (unsigned short)atoi(argv[1]);
    fill(data, sizeof data, 1);

    int a = connect_v4(port);
    say("sock A fd %d port %u", a, local_port(a));
    int d1 = dup(a);
    if (d1 < 0) die("dup");
    if (dup2(a, 50) != 50) die("dup2");
    int d3 = fcntl(a, F_DUPFD, 60);
    if (d3 < 60) die("fcntl F_DUPFD");
    if (dup3(a, 51, O_CLOEXEC) != 51) die("dup3");
    say("aliases %d 50 %d 51", d1, d3);

    put(a, 1000);
    put(d1, 2000);
    put(50, 3000);
    put(d3, 2500);
    put(51, 1500);
    get(50, 5000);

    if (close(a) < 0) die("close A");
    put(d1, 111);

    int b = connect_v4(port);
    if (b != a) fail("B got fd %d, not A's old %d", b, a);
    exchange("B", b, 222);

    if (close(d1) < 0) die("close dup");
    put(50, 333);
    if (close_range(50, 55, 0) < 0) die("close_range");
    if (fcntl(50, F_GETFD) != -1 || fcntl(51, F_GETFD) != -1) fail("close_range left 50 or 51 open");
    put(d3, 444);
    if (close(d3) < 0) die("close last alias");

    int c = connect_v4(port);
    if (c != a) fail("C got fd %d, not A's old %d", c, a);
    exchange("C", c, 555);
    return 0;
}
