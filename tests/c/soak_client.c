/* The soak test's load (never metered): THREADS threads, together NCONN short connections
 * to soak_server, started at RATE connections per second at most (0: as fast as they go).
 *
 *   soak_client PORTFILE NCONN THREADS RATE
 *
 * Waits for PORTFILE ("<port> <pid>"). Connection i sends a 4-byte length L = 1 + (i*7919 mod
 * 2000) and L bytes, reads the 3*L + 7-byte answer to EOF, and closes. Prints
 * "progress <connections done>" after every 1000, then makes one more connection that tells
 * the server to stop, and prints "done conns <n> tx <bytes sent> rx <bytes received>" (that
 * last connection included). */
#include "common.h"
#include <pthread.h>
#include <stdatomic.h>

static unsigned short port;
static int nconn;
static double rate;
static struct timespec t0;
static atomic_int next, done;
static atomic_ullong tx, rx;
static pthread_mutex_t say_lock = PTHREAD_MUTEX_INITIALIZER;

static void put(int fd, const void *p, size_t n) {
    for (size_t off = 0; off < n;) {
        ssize_t w = send(fd, (const char *)p + off, n - off, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) die("client send");
        off += (size_t)w;
    }
    tx += n;
}

static void one(unsigned len) {
    static char req[2048];
    int fd = connect_v4(port);
    unsigned char head[4] = {len >> 24, len >> 16, len >> 8, len};
    put(fd, head, 4);
    if (len != 0xffffffffu) put(fd, req, len);
    char buf[8192];
    size_t got = 0;
    for (;;) {
        ssize_t r = recv(fd, buf, sizeof buf, 0);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) die("client recv");
        if (r == 0) break;
        got += (size_t)r;
    }
    if (len != 0xffffffffu && got != 3 * (size_t)len + 7) fail("answer of %zu bytes to %u", got, len);
    rx += got;
    if (close(fd) < 0) die("client close");
}

static void *worker(void *arg) {
    (void)arg;
    for (;;) {
        int i = atomic_fetch_add(&next, 1);
        if (i >= nconn) return NULL;
        if (rate > 0) {
            /* Connection i starts no earlier than t0 + i/RATE. */
            double at = (double)i / rate;
            struct timespec ts = {t0.tv_sec + (time_t)at, t0.tv_nsec + (long)((at - (double)(time_t)at) * 1e9)};
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {}
        }
        one(1 + (unsigned)(((unsigned long)i * 7919) % 2000));
        int d = atomic_fetch_add(&done, 1) + 1;
        if (d % 1000 == 0) {
            pthread_mutex_lock(&say_lock);
            say("progress %d", d);
            pthread_mutex_unlock(&say_lock);
        }
    }
}

int main(int argc, char **argv) {
    start_clock();
    if (argc != 5) fail("usage: soak_client PORTFILE NCONN THREADS RATE");
    port = await_port(argv[1]);
    nconn = atoi(argv[2]);
    int threads = atoi(argv[3]);
    rate = atof(argv[4]);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (nconn < 1 || threads < 1 || threads > 64) fail("bad arguments");
    pthread_t th[64];
    for (int i = 0; i < threads; i++)
        if (pthread_create(&th[i], NULL, worker, NULL) != 0) fail("pthread_create");
    for (int i = 0; i < threads; i++) pthread_join(th[i], NULL);
    one(0xffffffffu);
    say("done conns %d tx %llu rx %llu", (int)done + 1, (unsigned long long)tx, (unsigned long long)rx);
    return 0;
}
