/* Workload "file": read()/write() of BS-byte blocks on a regular file (page cache),
 * i.e. what an interposer adds to I/O that is not on a socket.  The file is kept at
 * 1 MiB by an lseek() back to 0 every 1 MiB (the lseeks are counted in the time but
 * are 1 call in 256 at BS=4096).
 *   usage: w_file PATH BS CALLS    prints ns_per_call (mean of write and read) */
#include "common.h"
#include <fcntl.h>

#define SPAN (1024 * 1024)

int main(int argc, char **argv) {
    if (argc < 4) { fprintf(stderr, "usage: w_file PATH BS CALLS\n"); return 2; }
    const char *path = argv[1];
    size_t bs = strtoull(argv[2], NULL, 0);
    unsigned long long calls = strtoull(argv[3], NULL, 0);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) die("open");
    unlink(path);
    char *buf = malloc(bs);
    memset(buf, 'f', bs);
    unsigned long long per_span = SPAN / bs ? SPAN / bs : 1;
    /* prefill so reads never hit EOF */
    for (unsigned long long i = 0; i < per_span; i++) if (write(fd, buf, bs) != (ssize_t)bs) die("write");
    lseek(fd, 0, SEEK_SET);

    uint64_t t0 = now_ns();
    for (unsigned long long i = 0; i < calls; i++) {
        if (__builtin_expect(write(fd, buf, bs) != (ssize_t)bs, 0)) die("write");
        if ((i + 1) % per_span == 0) lseek(fd, 0, SEEK_SET);
    }
    uint64_t t1 = now_ns();
    lseek(fd, 0, SEEK_SET);
    uint64_t t2 = now_ns();
    for (unsigned long long i = 0; i < calls; i++) {
        if (__builtin_expect(read(fd, buf, bs) != (ssize_t)bs, 0)) die("read");
        if ((i + 1) % per_span == 0) lseek(fd, 0, SEEK_SET);
    }
    uint64_t t3 = now_ns();
    close(fd);
    printf("RESULT file ns_per_call=%.2f bs=%zu calls=%llu write_ns=%.2f read_ns=%.2f tx=0 rx=0 interposer=%s\n",
           (double)((t1 - t0) + (t3 - t2)) / (2.0 * (double)calls), bs, calls,
           (double)(t1 - t0) / (double)calls, (double)(t3 - t2) / (double)calls, interposer());
    free(buf);
    return 0;
}
