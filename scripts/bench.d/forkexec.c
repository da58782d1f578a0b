/* Not a scripts/bench row (built by hand): cc -O2 -o /tmp/forkexec scripts/bench.d/forkexec.c;
   run as `sockmeter run -- /tmp/forkexec PORT 1000` against target/bench/peer, before and after
   a change, alternating (docs/benchmarks.md, issue 14: forks). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
/* forkexec PORT N: one connection (so, metered, the process has a shipper), then N times fork +
   exec /bin/true + wait; prints microseconds per child. */
int main(int argc, char **argv) {
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET; a.sin_port = htons(atoi(argv[1])); a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0) { write(fd, "REQ1", 4); }
    close(fd);
    int n = atoi(argv[2]);
    struct timespec t0, t1; clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < n; i++) {
        pid_t c = fork();
        if (c == 0) { execl("/bin/true", "true", (char *)NULL); _exit(127); }
        int st; waitpid(c, &st, 0);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("%.1f us per fork+exec\n", ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) / 1e3 / n);
    return 0;
}
