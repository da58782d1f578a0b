/* Metered client: many threads opening, streaming over and closing sockets at once, some
 * closing sockets another thread just stopped using.
 *
 *   threads PORT NTHREADS ROUNDS   (the peer serves each connection with "e,s3000")
 *
 * All threads start together (a barrier). In each round a thread connects, sends
 * 5000 + 131*thread + 17*round bytes in 1000-byte pieces with one of send, write, writev,
 * sendmsg or sendto, half-closes, and reads the 3000-byte reply until EOF with one of recv,
 * read, readv, recvmsg or recvfrom (the call families rotate with thread and round). Then it
 * either closes the socket itself or leaves it on a shared list, and closes whatever socket
 * another thread left there last (so fds are closed by threads that never used them, while
 * other threads open new ones and take the freed numbers). Prints, per connection,
 * "sock t<thread>r<round> fd <n> port <local port> tx <bytes>". */
#include "common.h"
#include <pthread.h>
#include <sys/uio.h>

static unsigned short port;
static int rounds;
static pthread_barrier_t start;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int left = -1; /* a socket another thread finished with, or -1 */

static ssize_t put(int fd, const char *buf, size_t n, int how) {
    struct iovec v[2] = {{(void *)buf, n / 2}, {(void *)(buf + n / 2), n - n / 2}};
    struct msghdr m;
    memset(&m, 0, sizeof m);
    m.msg_iov = v;
    m.msg_iovlen = 2;
    switch (how % 5) {
    case 0: return send(fd, buf, n, 0);
    case 1: return write(fd, buf, n);
    case 2: return writev(fd, v, 2);
    case 3: return sendmsg(fd, &m, 0);
    default: return sendto(fd, buf, n, 0, NULL, 0);
    }
}

static ssize_t get(int fd, char *buf, size_t n, int how) {
    struct iovec v[2] = {{buf, n / 2}, {buf + n / 2, n - n / 2}};
    struct msghdr m;
    memset(&m, 0, sizeof m);
    m.msg_iov = v;
    m.msg_iovlen = 2;
    switch (how % 5) {
    case 0: return recv(fd, buf, n, 0);
    case 1: return read(fd, buf, n);
    case 2: return readv(fd, v, 2);
    case 3: return recvmsg(fd, &m, 0);
    default: return recvfrom(fd, buf, n, 0, NULL, NULL);
    }
}

static void *worker(void *arg) {
    int t = (int)(long)arg;
    char buf[4096];
    fill(buf, sizeof buf, (unsigned)t);
    pthread_barrier_wait(&start);
    for (int r = 0; r < rounds; r++) {
        int fd = connect_v4(port);
        size_t total = 5000 + 131 * (size_t)t + 17 * (size_t)r, done = 0;
        say("sock t%dr%d fd %d port %u tx %zu", t, r, fd, local_port(fd), total);
        while (done < total) {
            size_t n = total - done < 1000 ? total - done : 1000;
            ssize_t w = put(fd, buf, n, t + r);
            if (w < 0 && errno == EINTR) continue;
            if (w <= 0) die("send");
            done += (size_t)w;
        }
        if (shutdown(fd, SHUT_WR) < 0) die("shutdown");
        size_t got = 0;
        for (;;) {
            ssize_t g = get(fd, buf, sizeof buf, t + r + 1);
            if (g < 0 && errno == EINTR) continue;
            if (g < 0) die("recv");
            if (g == 0) break;
            got += (size_t)g;
        }
        if (got != 3000) fail("thread %d round %d: reply of %zu bytes", t, r, got);
        if ((t + r) % 2 == 0) {
            if (close(fd) < 0) die("close own");
            continue;
        }
        pthread_mutex_lock(&lock);
        int other = left;
        left = fd;
        pthread_mutex_unlock(&lock);
        if (other >= 0 && close(other) < 0) die("close another thread's socket");
    }
    return NULL;
}

int main(int argc, char **argv) {
    start_clock();
    if (argc != 4) fail("usage: threads PORT NTHREADS ROUNDS");
    port = (unsigned short)atoi(argv[1]);
    int n = atoi(argv[2]);
    rounds = atoi(argv[3]);
    if (n < 1 || n > 256 || rounds < 1) fail("bad arguments");
    pthread_t th[256];
    if (pthread_barrier_init(&start, NULL, (unsigned)n) != 0) fail("barrier");
    for (int i = 0; i < n; i++)
        if (pthread_create(&th[i], NULL, worker, (void *)(long)i) != 0) fail("pthread_create");
    for (int i = 0; i < n; i++) pthread_join(th[i], NULL);
    if (left >= 0 && close(left) < 0) die("close the last one left");
    return 0;
}
