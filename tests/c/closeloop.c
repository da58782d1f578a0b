/* Metered client that wipes every fd from 3 to 1023 in the middle of its work, the way some
 * daemons do, and then carries on with a new connection.
 *
 *   closeloop PORT close|dup2|range   (the peer serves each connection with "r3000,s2000,e")
 *
 * A = connect; send 3000 bytes, recv the 2000-byte reply. Wait (bounded) until the shim's
 * own fd (its reporter connection or the link pipe to its shipper, which the program never
 * made) is open among fds 3..1023 and print "reporter fd <n>". Then, in mode close, close() every fd 3..1023; in mode
 * dup2, open /dev/null and dup2() it over every other fd 3..1023; in mode range, one
 * close_range(3, ~0U, 0). A is gone with them.
 * B = connect; send 3000, recv 2000, send 1234 more, close.
 * Prints "sock A port <p>" and "sock B port <p> fd <n>". */
#include "common.h"
#include <sys/resource.h>
#include <sys/stat.h>

static char buf[4096];

static void put(int fd, size_t n) {
    for (size_t done = 0; done < n;) {
        ssize_t w = send(fd, buf, n - done < sizeof buf ? n - done : sizeof buf, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) die("send");
        done += (size_t)w;
    }
}

static void get(int fd, size_t n) {
    for (size_t done = 0; done < n;) {
        ssize_t r = recv(fd, buf, n - done < sizeof buf ? n - done : sizeof buf, 0);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) die("recv");
        if (r == 0) fail("EOF with %zu bytes still expected", n - done);
        done += (size_t)r;
    }
}

int main(int argc, char **argv) {
    start_clock();
    if (argc != 3) fail("usage: closeloop PORT close|dup2");
    unsigned short port = (unsigned short)atoi(argv[1]);
    int use_dup2 = strcmp(argv[2], "dup2") == 0;
    int use_range = strcmp(argv[2], "range") == 0;
    if (!use_dup2 && !use_range && strcmp(argv[2], "close") != 0) fail("mode is close, dup2 or range");
    fill(buf, sizeof buf, 4);
    /* Mode dup2 fills 3..1023; B (and the shim's moved connection) need numbers above. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0) die("getrlimit");
    if (rl.rlim_cur < 2048 && rl.rlim_max > rl.rlim_cur) {
        rl.rlim_cur = rl.rlim_max < 2048 ? rl.rlim_max : 2048;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0) die("setrlimit");
    }
    if (use_dup2 && rl.rlim_cur < 1100) fail("RLIMIT_NOFILE hard limit %lu is too low for mode dup2", (unsigned long)rl.rlim_max);

    int a = connect_v4(port);
    say("sock A port %u", local_port(a));
    put(a, 3000);
    get(a, 2000);

    int rep = -1;
    for (int i = 0; i < 2000 && rep < 0; i++) {
        rep = find_shim_fd(1024);
        if (rep < 0) usleep(10000);
    }
    say("reporter fd %d", rep);

    if (use_dup2) {
        int null = open("/dev/null", O_RDWR);
        if (null < 0) die("open /dev/null");
        for (int fd = 3; fd < 1024; fd++) {
            if (fd != null && dup2(null, fd) != fd) die("dup2");
        }
    } else if (use_range) {
        /* Everything from 3 up, in one call: nowhere above to move the shim's fd to. */
        if (close_range(3, ~0U, 0) < 0) die("close_range");
    } else {
        for (int fd = 3; fd < 1024; fd++) close(fd);
    }
    if (fcntl(a, F_GETFD) >= 0 && !use_dup2) fail("A still open after the loop");

    int b = connect_v4(port);
    say("sock B port %u fd %d", local_port(b), b);
    put(b, 3000);
    get(b, 2000);
    put(b, 1234);
    if (close(b) < 0) die("close B");
    return 0;
}
