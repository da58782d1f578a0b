/* What a metered parent's wait used to cost for every child it reaped (docs/benchmarks.md,
 * "Hot text"): one line appended to the run's endings file, as hooks/children.rs writes it
 * (open with O_APPEND, write, close), 100,000 times on a file in /tmp.
 *   usage: endings_cost */
#include <fcntl.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

int main(void) {
    const char *path = "/tmp/sockmeter-endings-cost.endings";
    int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0644);
    if (fd < 0) { perror("open"); return 1; }
    close(fd);
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (int i = 0; i < 100000; i++) {
        fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
        if (fd < 0 || write(fd, "30910 1796243543111 0\n", 22) != 22) { perror("append"); return 1; }
        close(fd);
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    printf("open+write+close: %.2f us\n", ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / 1e3 / 100000);
    unlink(path);
    return 0;
}
