/* Where a forked child's cost is (docs/benchmarks.md, issue 14): a parent that made one
 * request first (so, metered, it has a shipper before it forks) forks COUNT children one after
 * another; each child times its first socket() (the shim makes the child's region and hands it
 * to the shipper there), closes it and exits. Prints the mean time of that socket() call, of
 * fork to reaped, and of the child's last close to reaped.
 *   usage: forkfirst PORT COUNT   (PORT: the peer of scripts/bench) */
#include "common.h"
#include <sys/wait.h>

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: forkfirst PORT COUNT\n"); return 2; }
    int port = atoi(argv[1]);
    int n = atoi(argv[2]);
    int s0 = connect_loopback(port);
    char q[REQ1_SIZE], r[REQ1_SIZE];
    req1_init(q);
    send_all(s0, q, sizeof q);
    recv_all(s0, r, sizeof r);
    close(s0);
    int pp[2];
    if (pipe(pp) < 0) die("pipe");
    double first = 0, whole = 0, tail = 0;
    for (int i = 0; i < n; i++) {
        uint64_t f0 = now_ns();
        pid_t p = fork();
        if (p < 0) die("fork");
        if (p == 0) {
            uint64_t t[3];
            t[0] = now_ns();
            int s = socket(AF_INET, SOCK_STREAM, 0);
            t[1] = now_ns();
            close(s);
            t[2] = now_ns();
            if (write(pp[1], t, sizeof t) != sizeof t) _exit(1);
            _exit(0);
        }
        uint64_t t[3];
        if (read(pp[0], t, sizeof t) != sizeof t) die("read");
        int st;
        if (waitpid(p, &st, 0) != p || !WIFEXITED(st) || WEXITSTATUS(st) != 0) die("child");
        uint64_t f1 = now_ns();
        first += (double)(t[1] - t[0]);
        whole += (double)(f1 - f0);
        tail += (double)(f1 - t[2]);
    }
    printf("first socket in a child %.1f us, fork to reaped %.1f us, last close to reaped %.1f us\n",
           first / n / 1e3, whole / n / 1e3, tail / n / 1e3);
    return 0;
}
