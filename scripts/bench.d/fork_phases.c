/* Where a fork's time goes, seen from the forking process (docs/benchmarks.md, "Hot text"):
 * a process that opened one connection (so, metered, it ships through a shipper and keeps a
 * nursery) forks COUNT children that do nothing but _exit(0), one after another, and prints
 * the mean of three spans per child:
 *   fork-return-in-parent   fork() called to fork() returned in the parent (the fork handlers
 *                           and the kernel's copy of the address space);
 *   child-start             fork() called to the child's first instruction after fork()
 *                           returned in it (that, the child's fork handlers and its scheduling);
 *   child-exit-to-wait      the child's last instruction to the parent's waitpid() returned
 *                           (the child's exit and the parent's wait hook).
 *   usage: fork_phases PORT COUNT          (PORT: target/bench/peer's) */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <time.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>

static double now_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: fork_phases PORT COUNT\n"); return 2; }
    int port = atoi(argv[1]), n = atoi(argv[2]);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)port);
    a.sin_addr.s_addr = htonl(0x7f000001);
    if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof a) != 0) { perror("connect"); return 1; }
    close(s);
    double *when = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (when == MAP_FAILED) { perror("mmap"); return 1; }
    double in_parent = 0, child_start = 0, to_wait = 0;
    for (int i = 0; i < n; i++) {
        double t0 = now_us();
        pid_t p = fork();
        if (p < 0) { perror("fork"); return 1; }
        if (p == 0) {
            when[0] = now_us();
            _exit(0);
        }
        double t1 = now_us();
        int st;
        if (waitpid(p, &st, 0) != p) { perror("waitpid"); return 1; }
        double t2 = now_us();
        in_parent += t1 - t0;
        child_start += when[0] - t0;
        to_wait += t2 - when[0];
    }
    printf("fork-return-in-parent %.1f us  child-start %.1f us  child-exit-to-wait %.1f us\n", in_parent / n,
           child_start / n, to_wait / n);
    return 0;
}
