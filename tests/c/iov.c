/* Metered client using only writev() and readv() on its socket, with several iovecs each.
 *
 *   iov PORT   connect to 127.0.0.1:PORT, writev() three batches of iovecs (one with an empty
 *              element), shut down writing, readv() into five iovecs until EOF; print totals. */
#include "common.h"
#include <sys/uio.h>

static char data[200000];

/* writev() the whole batch, resuming after a partial write. Returns the calls made. */
static unsigned writev_all(int fd, const size_t *sizes, int n, unsigned long long *total) {
    struct iovec iov[8];
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        iov[i].iov_base = data + off;
        iov[i].iov_len = sizes[i];
        off += sizes[i];
    }
    unsigned calls = 0;
    struct iovec *v = iov;
    int left = n;
    while (left > 0) {
        ssize_t w = writev(fd, v, left);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) die("writev");
        calls++;
        *total += (unsigned long long)w;
        size_t k = (size_t)w;
        while (left > 0 && k >= v->iov_len) {
            k -= v->iov_len;
            v++;
            left--;
        }
        if (left > 0) {
            v->iov_base = (char *)v->iov_base + k;
            v->iov_len -= k;
        }
    }
    return calls;
}

int main(int argc, char **argv) {
    start_clock();
    if (argc != 2) fail("usage: iov PORT");
    fill(data, sizeof data, 5);
    int fd = connect_v4((unsigned short)atoi(argv[1]));

    static const size_t a[] = {1, 100, 0, 4096, 70000};
    static const size_t b[] = {3, 5, 7};
    static const size_t c[] = {65536, 65536, 1, 2};
    unsigned long long wrote = 0;
    unsigned wcalls = writev_all(fd, a, 5, &wrote);
    wcalls += writev_all(fd, b, 3, &wrote);
    wcalls += writev_all(fd, c, 4, &wrote);
    if (shutdown(fd, SHUT_WR) < 0) die("shutdown");

    static char r1[7], r2[1000], r3[1], r4[30000], r5[13];
    unsigned long long got = 0;
    unsigned rcalls = 0;
    for (;;) {
        struct iovec iov[5] = {
            {r1, sizeof r1}, {r2, sizeof r2}, {r3, 0}, {r4, sizeof r4}, {r5, sizeof r5},
        };
        ssize_t r = readv(fd, iov, 5);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) die("readv");
        rcalls++;
        if (r == 0) break;
        got += (unsigned long long)r;
    }
    if (close(fd) < 0) die("close");
    say("wrote %llu in %u writev, read %llu in %u readv", wrote, wcalls, got, rcalls);
    return 0;
}
