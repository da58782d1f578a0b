/* Metered client that moves its bytes through io_uring (liburing), which no hooked call sees:
 * the kernel witness must report every byte as unseen, and the process as using io_uring.
 *
 *   uring PORT TX RX   connect (libc), send TX bytes and receive RX bytes through one ring
 *                      (IORING_OP_SEND / IORING_OP_RECV), close (libc). Prints
 *                      "moved tx TX rx RX local LOCALPORT". */
#include "common.h"
#include <liburing.h>

static struct io_uring ring;

/* One operation through the ring: its result (bytes, or -errno). */
static int one(int fd, char *buf, size_t n, int send) {
    struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
    if (!sqe) fail("uring: no sqe");
    if (send) io_uring_prep_send(sqe, fd, buf, n, MSG_NOSIGNAL);
    else io_uring_prep_recv(sqe, fd, buf, n, 0);
    if (io_uring_submit(&ring) != 1) fail("uring: submit");
    struct io_uring_cqe *cqe;
    int r = io_uring_wait_cqe(&ring, &cqe);
    if (r < 0) fail("uring: wait_cqe %d", r);
    int res = cqe->res;
    io_uring_cqe_seen(&ring, cqe);
    return res;
}

int main(int argc, char **argv) {
    start_clock();
    if (argc != 4) fail("usage: uring PORT TX RX");
    size_t tx = strtoul(argv[2], NULL, 10), rx = strtoul(argv[3], NULL, 10);
    int r = io_uring_queue_init(8, &ring, 0);
    if (r < 0) fail("io_uring_queue_init: %s", strerror(-r));
    int fd = connect_v4((unsigned short)atoi(argv[1]));
    static char buf[1 << 16];
    for (size_t done = 0; done < tx;) {
        size_t n = tx - done < sizeof buf ? tx - done : sizeof buf;
        fill(buf, n, (unsigned)done);
        int w = one(fd, buf, n, 1);
        if (w <= 0) fail("uring send: %d", w);
        done += (size_t)w;
    }
    for (size_t done = 0; done < rx;) {
        int g = one(fd, buf, sizeof buf < rx - done ? sizeof buf : rx - done, 0);
        if (g <= 0) fail("uring recv: %d", g);
        done += (size_t)g;
    }
    say("moved tx %zu rx %zu local %u", tx, rx, local_port(fd));
    io_uring_queue_exit(&ring);
    if (close(fd) < 0) die("close");
    return 0;
}
