/* Workload "eagain": a nonblocking recv() on a connected TCP socket with nothing to
 * read, i.e. the cheapest socket system call there is (returns -1/EAGAIN).  Measures
 * the fixed per-call cost an interposer adds.  The connection is to a listener in the
 * same process that never sends.
 * With MT=1 the program first starts one idle thread of its own, i.e. it is a
 * multi-threaded host: then a preloaded library's own thread costs nothing more, and the
 * difference to no preload is the hooks alone.
 *   usage: w_eagain CALLS [MT]     prints ns_per_call */
#include "common.h"
#include <fcntl.h>
#include <pthread.h>

static void *idle(void *arg) {
    (void)arg;
    for (;;) sleep(3600);
    return NULL;
}

int main(int argc, char **argv) {
    unsigned long long calls = arg_ull(argc, argv, 1, 5000000);
    int mt = (int)arg_ull(argc, argv, 2, 0);
    if (mt) {
        pthread_t t;
        if (pthread_create(&t, NULL, idle, NULL) != 0) die("pthread_create");
        pthread_detach(t);
    }
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
    printf("RESULT eagain ns_per_call=%.2f calls=%llu mt=%d elapsed_s=%.3f tx=0 rx=0 interposer=%s\n",
           (double)(t1 - t0) / (double)calls, calls, mt, (t1 - t0) / 1e9, interposer());
    close(a); close(c); close(l);
    return 0;
}
