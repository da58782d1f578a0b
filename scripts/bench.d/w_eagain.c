/* Workload "eagain": a nonblocking recv() on a connected TCP socket with nothing to
 * read, i.e. the cheapest socket system call there is (returns -1/EAGAIN).  Measures
 * the fixed per-call cost an interposer adds.  The connection is to a listener in the
 * same process that never sends.
 *   usage: w_eagain CALLS          prints ns_per_call */
#include "common.h"
#include <fcntl.h>

int main(int argc, char **argv) {
    unsigned long long calls = arg_ull(argc, argv, 1, 5000000);
    int port;
    int l = listen_loopback(&port, 16);
    int c = connect_loopback(port);
    int a = accept(l, NULL, NULL);
    if (a < 0) die("accept");
    if (fcntl(c, F_SETFL, fcntl(c, F_GETFL) | O_NONBLOCK) < 0) die("fcntl");
    char buf[64];
    for (int i = 0; i < 10000; i++) recv(c, buf, sizeof buf, 0); /* warm up */
    uint64_t t0 = now_ns();
    unsigned long long unexpected = 0;
    for (unsigned long long i = 0; i < calls; i++) {
        ssize_t r = recv(c, buf, sizeof buf, 0);
        if (__builtin_expect(r != -1, 0)) unexpected++;
    }
    uint64_t t1 = now_ns();
    if (unexpected) { fprintf(stderr, "w_eagain: %llu recv calls did not fail\n", unexpected); return 3; }
    printf("RESULT eagain ns_per_call=%.2f calls=%llu elapsed_s=%.3f tx=0 rx=0 interposer=%s\n",
           (double)(t1 - t0) / (double)calls, calls, (t1 - t0) / 1e9, interposer());
    close(a); close(c); close(l);
    return 0;
}
