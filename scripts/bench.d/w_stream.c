/* Workload "stream": a TCP loopback stream of SIZE-byte messages to and from the
 * unmetered peer (peer.c, started by scripts/bench without any preload).
 *   phase 1: COUNT send(SIZE) calls to a SINK connection, then wait for its 1-byte ack;
 *   phase 2: recv(SIZE) calls from a SRCE connection until COUNT*SIZE bytes arrived.
 * Headline: ns_per_msg = (phase 1 + phase 2 time) / (2*COUNT); also MB/s per phase.
 *   usage: w_stream PORT SIZE COUNT */
#include "common.h"

int main(int argc, char **argv) {
    if (argc < 4) { fprintf(stderr, "usage: w_stream PORT SIZE COUNT\n"); return 2; }
    int port = atoi(argv[1]);
    size_t size = strtoull(argv[2], NULL, 0);
    unsigned long long count = strtoull(argv[3], NULL, 0);
    char *buf = malloc(size);
    memset(buf, 'w', size);
    unsigned long long tx = 0, rx = 0, recv_calls = 0;

    /* phase 1: send */
    int s = peer_open(port, "SINK", size, count);
    tx += sizeof(struct peer_hdr);
    uint64_t t0 = now_ns();
    for (unsigned long long i = 0; i < count; i++) send_all(s, buf, size);
    char ack;
    recv_all(s, &ack, 1);
    uint64_t t1 = now_ns();
    tx += size * count;
    rx += 1;
    close(s);

    /* phase 2: recv */
    int r = peer_open(port, "SRCE", size, count);
    tx += sizeof(struct peer_hdr);
    uint64_t want = (uint64_t)size * count, got = 0;
    uint64_t t2 = now_ns();
    while (got < want) {
        size_t n = want - got < size ? (size_t)(want - got) : size;
        ssize_t k = recv(r, buf, n, 0);
        if (k < 0) { if (errno == EINTR) continue; die("recv"); }
        if (k == 0) { errno = ECONNRESET; die("recv: early EOF"); }
        got += (uint64_t)k;
        recv_calls++;
    }
    uint64_t t3 = now_ns();
    rx += got;
    close(r);

    double send_s = (t1 - t0) / 1e9, recv_s = (t3 - t2) / 1e9;
    printf("RESULT stream ns_per_msg=%.2f size=%zu count=%llu send_ns_per_msg=%.2f recv_ns_per_msg=%.2f "
           "send_MBps=%.1f recv_MBps=%.1f recv_calls=%llu tx=%llu rx=%llu interposer=%s\n",
           (double)((t1 - t0) + (t3 - t2)) / (2.0 * (double)count), size, count,
           (double)(t1 - t0) / (double)count, (double)(t3 - t2) / (double)count,
           (double)want / send_s / 1e6, (double)want / recv_s / 1e6, recv_calls, tx, rx, interposer());
    free(buf);
    return 0;
}
