/* What the kernel witness adds to a TCP close, in isolation: the time of one
 * getsockopt(TCP_INFO) (the one call on the common close path), of one ioctl(FIONREAD)
 * (added only when the hooks have not seen every byte that arrived read), and, for scale, of
 * getppid() (about the cheapest system call), each in a loop on a connected loopback socket;
 * the best of ROUNDS rounds of N calls.
 *   usage: close_cost [N [ROUNDS]]   (not part of scripts/bench: run it by hand, unmetered) */
#include "common.h"
#include <sys/ioctl.h>

int main(int argc, char **argv) {
    unsigned long n = arg_ull(argc, argv, 1, 200000), rounds = arg_ull(argc, argv, 2, 7);
    int port;
    int l = listen_loopback(&port, 1);
    int c = connect_loopback(port);
    int a = accept(l, NULL, NULL);
    if (a < 0) die("accept");
    double best[3] = { 1e18, 1e18, 1e18 };
    unsigned char info[256];
    for (unsigned long r = 0; r < rounds; r++) {
        uint64_t t0 = now_ns();
        for (unsigned long i = 0; i < n; i++) {
            socklen_t len = sizeof info;
            if (getsockopt(c, IPPROTO_TCP, TCP_INFO, info, &len) != 0) die("TCP_INFO");
        }
        uint64_t t1 = now_ns();
        for (unsigned long i = 0; i < n; i++) {
            int q;
            if (ioctl(c, FIONREAD, &q) != 0) die("FIONREAD");
        }
        uint64_t t2 = now_ns();
        for (unsigned long i = 0; i < n; i++) getppid();
        uint64_t t3 = now_ns();
        double d[3] = { (double)(t1 - t0) / n, (double)(t2 - t1) / n, (double)(t3 - t2) / n };
        for (int k = 0; k < 3; k++)
            if (d[k] < best[k]) best[k] = d[k];
    }
    printf("RESULT close_cost tcp_info_ns=%.0f fionread_ns=%.0f getppid_ns=%.0f\n", best[0], best[1], best[2]);
    return 0;
}
