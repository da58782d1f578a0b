/* Workload "rss": a process that holds N sockets, then reports its peak RSS.
 * Each socket is a UDP socket connect()ed to a receiver socket in the same process
 * and sends one 1-byte datagram, so an interposer sees socket, connect and send for
 * every one of them (peer attribution included).  The process then holds them for
 * HOLD_MS (default 1100, i.e. past sockmeter's first 1-second report) and prints
 * VmHWM (peak RSS) from /proc/self/status.
 *   usage: w_rss N [HOLD_MS]     prints hwm_kib */
#include "common.h"

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

int main(int argc, char **argv) {
    unsigned long long n = arg_ull(argc, argv, 1, 10);
    unsigned long long hold_ms = arg_ull(argc, argv, 2, 1100);
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
