/* Workload "rss": a process that holds N sockets, then reports its peak RSS.
 * Each socket is a UDP socket connect()ed to a receiver socket in the same process
 * and sends one 1-byte datagram, so an interposer sees socket, connect and send for
 * every one of them (peer attribution included).  The process then holds them for
 * HOLD_MS (default 1100, i.e. past sockmeter's first 1-second report) and prints
 * VmHWM (peak RSS) from /proc/self/status.
 *   usage: w_rss N [HOLD_MS]     prints hwm_kib
 * With PROCS > 1 (w_rss N HOLD_MS PROCS; scripts/bench.d/scale.sh), the process first sends
 * one datagram of its own (so that, metered, it has its shipper), then forks PROCS children
 * that each do the above with N/PROCS sockets, at the same time, and waits for them: N may
 * then pass one process's limit on open files (all of them served by one shipper). Each child
 * prints its own RESULT line. */
#include "common.h"
#include <sys/wait.h>

static long status_kib(const char *key) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    long v = -1;
    size_t kl = strlen(key);
    while (fgets(line, sizeof line, f))
        if (strncmp(line, key, kl) == 0 && line[kl] == ':') { v = strtol(line + kl + 1, NULL, 10); break; }
    fclose(f);
    return v;
}

static int hold(unsigned long long n, unsigned long long hold_ms);

/* In a child of PROCS > 1: its sockets are bound to 127.1.0.<k+1> first. A connected UDP
 * socket takes an ephemeral port of its local address (~28,000 of them), so 100,000 sockets
 * need several addresses. */
static unsigned long long child_index;

int main(int argc, char **argv) {
    unsigned long long n = arg_ull(argc, argv, 1, 10);
    unsigned long long hold_ms = arg_ull(argc, argv, 2, 1100);
    unsigned long long procs = arg_ull(argc, argv, 3, 1);
    if (procs <= 1) return hold(n, hold_ms);
    int one = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = loopback(9); /* discard: nobody listens, the datagram still leaves */
    if (one < 0 || sendto(one, "x", 1, 0, (struct sockaddr *)&a, sizeof a) != 1) die("sendto");
    close(one);
    fflush(stdout);
    for (unsigned long long k = 0; k < procs; k++) {
        pid_t c = fork();
        if (c < 0) die("fork");
        if (c == 0) {
            child_index = k + 1;
            _exit(hold(n / procs + (k < n % procs), hold_ms));
        }
    }
    int failed = 0, st;
    while (wait(&st) > 0)
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) failed = 1;
    return failed;
}

static int hold(unsigned long long n, unsigned long long hold_ms) {
    raise_nofile(n + 64);
    int rcv = socket(AF_INET, SOCK_DGRAM, 0);
    if (rcv < 0) die("socket");
    struct sockaddr_in a = loopback(0);
    if (bind(rcv, (struct sockaddr *)&a, sizeof a) < 0) die("bind");
    socklen_t len = sizeof a;
    getsockname(rcv, (struct sockaddr *)&a, &len);
    int *fds = malloc(n * sizeof *fds);
    for (unsigned long long i = 0; i < n; i++) {
        fds[i] = socket(AF_INET, SOCK_DGRAM, 0);
        if (fds[i] < 0) die("socket (raise ulimit -n?)");
        if (child_index) {
            struct sockaddr_in local = loopback(0);
            local.sin_addr.s_addr = htonl(0x7f010000u | (unsigned)child_index);
            if (bind(fds[i], (struct sockaddr *)&local, sizeof local) < 0) die("bind");
        }
        if (connect(fds[i], (struct sockaddr *)&a, sizeof a) < 0) die("connect");
        if (send(fds[i], "x", 1, 0) != 1) die("send");
    }
    if (hold_ms) {
        struct timespec ts = { (time_t)(hold_ms / 1000), (long)(hold_ms % 1000) * 1000000L };
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {}
    }
    printf("RESULT rss hwm_kib=%ld sockets=%llu rss_kib=%ld tx=%llu rx=0 interposer=%s\n",
           status_kib("VmHWM"), n, status_kib("VmRSS"), n, interposer());
    fflush(stdout);
    for (unsigned long long i = 0; i < n; i++) close(fds[i]);
    close(rcv);
    free(fds);
    return 0;
}
