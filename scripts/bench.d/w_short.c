/* Workload "short": many short connections to the unmetered peer: socket(),
 * connect(), send() one REQ1_SIZE-byte request, recv() the REQ1_SIZE-byte reply,
 * close().  The per-socket cost of an interposer, attribution included.  The peer
 * closes first, so this side never holds TIME_WAIT ports.
 *   usage: w_short PORT CONNS     prints us_per_conn, conns_per_s, and cpu_us_per_conn (the
 *   CPU time this process itself spent per connection, user and system: what the hooks add
 *   in-process, less sensitive to a busy machine than the elapsed time) */
#include "common.h"
#include <sys/resource.h>

static double cpu_us(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 + (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: w_short PORT CONNS\n"); return 2; }
    int port = atoi(argv[1]);
    unsigned long long conns = strtoull(argv[2], NULL, 0);
    char req[REQ1_SIZE], rep[REQ1_SIZE];
    req1_init(req);
    struct sockaddr_in a = loopback(port);
    uint64_t t0 = now_ns();
    double c0 = cpu_us();
    for (unsigned long long i = 0; i < conns; i++) {
        int s = socket(AF_INET, SOCK_STREAM, 0);
        if (s < 0) die("socket");
        if (connect(s, (struct sockaddr *)&a, sizeof a) < 0) die("connect");
        send_all(s, req, sizeof req);
        recv_all(s, rep, sizeof rep);
        close(s);
    }
    uint64_t t1 = now_ns();
    double cpu = (cpu_us() - c0) / (double)conns;
    double us = (double)(t1 - t0) / 1e3 / (double)conns;
    printf("RESULT short us_per_conn=%.3f cpu_us_per_conn=%.3f conns=%llu conns_per_s=%.0f tx=%llu rx=%llu "
           "interposer=%s\n",
           us, cpu, conns, 1e6 / us, conns * REQ1_SIZE, conns * REQ1_SIZE, interposer());
    return 0;
}
