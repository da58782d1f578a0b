/* Workload "forks": a process that forks a child per connection, as a forking server or a
 * shell loop does.  The parent opens one connection first (so, metered, it has a shipper
 * before the first fork), then COUNT times: fork; the child opens a connection to the peer,
 * sends a REQ1_SIZE request, reads the REQ1_SIZE reply, closes and _exit()s; the parent
 * waits for it.  Headline: us_per_child (fork to reaped).
 * With "inherit" (workload "forks:inherit"), as a forking server: the parent connects, then
 * forks a child that serves that connection (inherited: it sends the request, reads the
 * reply, closes, _exit()s); the parent closes its copy and waits for the child.
 *   usage: w_forks PORT COUNT [inherit]
 * tx/rx: every byte of the parent and of all the children. */
#include "common.h"
#include <sys/wait.h>

static void request_on(int s) {
    char req[REQ1_SIZE], rep[REQ1_SIZE];
    req1_init(req);
    send_all(s, req, sizeof req);
    recv_all(s, rep, sizeof rep);
    close(s);
}

static void one_request(int port) { request_on(connect_loopback(port)); }

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: w_forks PORT COUNT [inherit]\n"); return 2; }
    int port = atoi(argv[1]);
    unsigned long long count = strtoull(argv[2], NULL, 0);
    int inherit = argc > 3 && strcmp(argv[3], "inherit") == 0;
    one_request(port); /* the parent is a metered process before it forks */
    uint64_t t0 = now_ns();
    for (unsigned long long i = 0; i < count; i++) {
        int s = inherit ? connect_loopback(port) : -1;
        pid_t pid = fork();
        if (pid < 0) die("fork");
        if (pid == 0) {
            if (inherit) request_on(s);
            else one_request(port);
            _exit(0);
        }
        if (inherit) close(s);
        int st;
        if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            fprintf(stderr, "workload: child %d failed\n", (int)pid);
            return 2;
        }
    }
    uint64_t t1 = now_ns();
    unsigned long long bytes = (count + 1) * (unsigned long long)REQ1_SIZE;
    printf("RESULT %s us_per_child=%.2f children=%llu tx=%llu rx=%llu interposer=%s\n",
           inherit ? "forks:inherit" : "forks", (double)(t1 - t0) / 1e3 / (double)count, count, bytes, bytes,
           interposer());
    return 0;
}
