/* Workload "paired": the per-call cost of an interposer, measured inside one process.
 *
 * A process-level comparison (run the workload without preload, then with it) carries the
 * machine's run-to-run noise, which on a small VM is larger than the few nanoseconds a hook
 * adds.  This workload cancels that noise: it alternates short blocks of the same calls made
 *   A: through the function the program's own calls reach: its GOT entry for the name (the
 *      interposer's, when one is preloaded), read once the program has its first socket
 *      (sockmeter's preload stage binds the program's GOT to the shim when it loads it,
 *      at the first socket), and
 *   B: straight into libc (dlsym on libc.so.6's own handle: no interposer on the way),
 * in the order A B, B A, A B, ... for ROUNDS rounds of BLOCK calls each, both through a
 * function pointer (the same code shape), and reports the ratio of A's time per call to B's:
 * the median over rounds of (A block / B block), and the ratio of the sums.  Without
 * preload A and B are the same function: the ratio is the method's own bias (a control,
 * ~1.000).  Under `sockmeter run` the shipper and the reporter run as they always do; only
 * the calls in B bypass the hooks.  What this cannot see is a cost that is not per call
 * (another process's CPU time, process start-up): the process-level rows price that.
 *
 *   usage: w_paired eagain ROUNDS BLOCK
 *          w_paired stream PORT SIZE ROUNDS BLOCK     (send phase, then recv phase)
 *          w_paired file PATH ROUNDS BLOCK            (4 KiB write + read on a regular file)
 *          w_paired open PATH ROUNDS BLOCK            (open + close of a regular file)
 *          w_paired short PORT ROUNDS BLOCK           (short connections: socket, connect,
 *                                                      64 B request, reply, close; the "call"
 *                                                      is the whole connection)
 *
 * tx/rx: the inet bytes moved through the A calls (and the connection headers, and the
 * ack), i.e. what an interposer that counts bytes should have counted. */
#include "common.h"
#include <fcntl.h>

typedef ssize_t (*send_fn)(int, const void *, size_t, int);
typedef ssize_t (*recv_fn)(int, void *, size_t, int);
typedef ssize_t (*read_fn)(int, void *, size_t);
typedef ssize_t (*write_fn)(int, const void *, size_t);

static void *libc_handle(void) {
    void *h = dlopen("libc.so.6", RTLD_NOLOAD | RTLD_LAZY);
    if (!h) { fprintf(stderr, "workload: dlopen libc.so.6: %s\n", dlerror()); exit(2); }
    return h;
}

static void *sym(void *handle, const char *name) {
    void *p = dlsym(handle, name);
    if (!p) { fprintf(stderr, "workload: dlsym %s: %s\n", name, dlerror()); exit(2); }
    return p;
}

/* `p` (a function's address, read from the program's GOT where this is called), kept from
 * being read earlier. */
static void *bound(void *p) {
    __asm__ volatile("" : "+r"(p));
    return p;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Per-round A/B ratios, and the sums. */
struct tally {
    double *ratio;
    unsigned long rounds;
    double a_ns, b_ns;      /* total time */
    double a_calls, b_calls;
};

static void tally_init(struct tally *t, unsigned long rounds) {
    memset(t, 0, sizeof *t);
    t->ratio = calloc(rounds, sizeof(double));
    if (!t->ratio) die("calloc");
}

static void tally_add(struct tally *t, double a_ns, double a_calls, double b_ns, double b_calls) {
    t->a_ns += a_ns; t->b_ns += b_ns; t->a_calls += a_calls; t->b_calls += b_calls;
    if (a_calls > 0 && b_calls > 0 && b_ns > 0)
        t->ratio[t->rounds++] = (a_ns / a_calls) / (b_ns / b_calls);
}

static void tally_print(struct tally *t, const char *name, unsigned long long tx, unsigned long long rx,
                        const char *extra) {
    qsort(t->ratio, t->rounds, sizeof(double), cmp_double);
    double med = t->rounds ? t->ratio[t->rounds / 2] : 0;
    double a = t->a_ns / t->a_calls, b = t->b_ns / t->b_calls;
    printf("RESULT %s ratio=%.4f sum_ratio=%.4f a_ns_per_call=%.2f b_ns_per_call=%.2f rounds=%lu%s "
           "tx=%llu rx=%llu interposer=%s\n",
           name, med, a / b, a, b, t->rounds, extra, tx, rx, interposer());
}

/* ---- eagain: recv() on a connected nonblocking socket with nothing to read ---- */
static int eagain(int argc, char **argv) {
    unsigned long rounds = arg_ull(argc, argv, 2, 400), block = arg_ull(argc, argv, 3, 2000);
    recv_fn rb = (recv_fn)sym(libc_handle(), "recv");
    int l, port;
    l = listen_loopback(&port, 1);
    int c = connect_loopback(port);
    int s = accept(l, NULL, NULL);
    if (s < 0) die("accept");
    recv_fn ra = (recv_fn)bound((void *)recv);
    if (fcntl(c, F_SETFL, O_NONBLOCK) < 0) die("fcntl");
    char b[64];
    struct tally t;
    tally_init(&t, rounds);
    for (unsigned long r = 0; r < rounds; r++) {
        double ns[2];
        for (int k = 0; k < 2; k++) {
            int use_a = (k == 0) == (r % 2 == 0);
            recv_fn f = use_a ? ra : rb;
            uint64_t t0 = now_ns();
            for (unsigned long i = 0; i < block; i++)
                if (f(c, b, sizeof b, 0) != -1 || errno != EAGAIN) die("recv: expected EAGAIN");
            ns[use_a ? 0 : 1] = (double)(now_ns() - t0);
        }
        tally_add(&t, ns[0], (double)block, ns[1], (double)block);
    }
    tally_print(&t, "paired_eagain", 0, 0, "");
    close(c); close(s); close(l);
    return 0;
}

/* ---- stream: send() blocks to a SINK, then recv() blocks from a SRCE ---- */
static int stream(int argc, char **argv) {
    if (argc < 6) { fprintf(stderr, "usage: w_paired stream PORT SIZE ROUNDS BLOCK\n"); return 2; }
    int port = atoi(argv[2]);
    size_t size = strtoull(argv[3], NULL, 0);
    unsigned long rounds = strtoull(argv[4], NULL, 0), block = strtoull(argv[5], NULL, 0);
    void *libc = libc_handle();
    send_fn sb = (send_fn)sym(libc, "send");
    recv_fn rb = (recv_fn)sym(libc, "recv");
    char *buf = malloc(size);
    if (!buf) die("malloc");
    memset(buf, 'p', size);
    /* tx/rx: the bytes of the A calls (what sockmeter counts); direct_*: the B calls', which
     * only the kernel witness sees (sockmeter reports them as unseen) */
    unsigned long long tx = 0, rx = 0, direct_tx = 0, direct_rx = 0, count = 2ull * rounds * block;
    struct tally ts, tr;
    tally_init(&ts, rounds);
    tally_init(&tr, rounds);

    /* send phase: every call sends a whole message (blocking socket) */
    int s = peer_open(port, "SINK", size, count);
    tx += sizeof(struct peer_hdr);
    send_fn sa = (send_fn)bound((void *)send);
    recv_fn ra = (recv_fn)bound((void *)recv);
    for (unsigned long r = 0; r < rounds; r++) {
        double ns[2];
        for (int k = 0; k < 2; k++) {
            int use_a = (k == 0) == (r % 2 == 0);
            send_fn f = use_a ? sa : sb;
            uint64_t t0 = now_ns();
            for (unsigned long i = 0; i < block; i++) {
                size_t off = 0;
                while (off < size) {
                    ssize_t n = f(s, buf + off, size - off, 0);
                    if (n < 0) { if (errno == EINTR) continue; die("send"); }
                    off += (size_t)n;
                }
            }
            ns[use_a ? 0 : 1] = (double)(now_ns() - t0);
            if (use_a) tx += (unsigned long long)size * block;
            else direct_tx += (unsigned long long)size * block;
        }
        tally_add(&ts, ns[0], (double)block, ns[1], (double)block);
    }
    char ack;
    recv_all(s, &ack, 1);
    rx += 1;
    close(s);

    /* recv phase: recv(SIZE) calls; a call may return less, so time per call */
    int q = peer_open(port, "SRCE", size, count);
    tx += sizeof(struct peer_hdr);
    unsigned long long left = (unsigned long long)size * count;
    for (unsigned long r = 0; r < rounds; r++) {
        double ns[2], calls[2];
        for (int k = 0; k < 2; k++) {
            int use_a = (k == 0) == (r % 2 == 0);
            recv_fn f = use_a ? ra : rb;
            /* the last round takes whatever is left, so the stream is drained exactly */
            unsigned long long want = r + 1 == rounds && k == 1 ? left : (unsigned long long)size * block;
            unsigned long long got = 0, n_calls = 0;
            uint64_t t0 = now_ns();
            while (got < want) {
                size_t n = want - got < size ? (size_t)(want - got) : size;
                ssize_t k2 = f(q, buf, n, 0);
                if (k2 < 0) { if (errno == EINTR) continue; die("recv"); }
                if (k2 == 0) { errno = ECONNRESET; die("recv: early EOF"); }
                got += (unsigned long long)k2;
                n_calls++;
            }
            ns[use_a ? 0 : 1] = (double)(now_ns() - t0);
            calls[use_a ? 0 : 1] = (double)n_calls;
            left -= got;
            if (use_a) rx += got;
            else direct_rx += got;
        }
        tally_add(&tr, ns[0], calls[0], ns[1], calls[1]);
    }
    close(q);

    /* the headline: both phases' per-round ratios together */
    struct tally all;
    tally_init(&all, 2 * rounds);
    for (unsigned long i = 0; i < ts.rounds; i++) all.ratio[all.rounds++] = ts.ratio[i];
    for (unsigned long i = 0; i < tr.rounds; i++) all.ratio[all.rounds++] = tr.ratio[i];
    all.a_ns = ts.a_ns / ts.a_calls + tr.a_ns / tr.a_calls; all.a_calls = 1;
    all.b_ns = ts.b_ns / ts.b_calls + tr.b_ns / tr.b_calls; all.b_calls = 1;
    char extra[256];
    qsort(ts.ratio, ts.rounds, sizeof(double), cmp_double);
    qsort(tr.ratio, tr.rounds, sizeof(double), cmp_double);
    snprintf(extra, sizeof extra, " size=%zu send_ratio=%.4f recv_ratio=%.4f direct_tx=%llu direct_rx=%llu", size,
             ts.ratio[ts.rounds / 2], tr.ratio[tr.rounds / 2], direct_tx, direct_rx);
    tally_print(&all, "paired_stream", tx, rx, extra);
    free(buf);
    return 0;
}

/* ---- file: 4 KiB write() then read() on a regular file (not a socket) ---- */
static int file(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: w_paired file PATH ROUNDS BLOCK\n"); return 2; }
    unsigned long rounds = arg_ull(argc, argv, 3, 400), block = arg_ull(argc, argv, 4, 1000);
    void *libc = libc_handle();
    write_fn wa = (write_fn)bound((void *)write), wb = (write_fn)sym(libc, "write");
    read_fn rda = (read_fn)bound((void *)read), rdb = (read_fn)sym(libc, "read");
    int fd = open(argv[2], O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) die("open");
    char b[4096];
    memset(b, 'f', sizeof b);
    struct tally t;
    tally_init(&t, rounds);
    for (unsigned long r = 0; r < rounds; r++) {
        double ns[2];
        for (int k = 0; k < 2; k++) {
            int use_a = (k == 0) == (r % 2 == 0);
            write_fn w = use_a ? wa : wb;
            read_fn rd = use_a ? rda : rdb;
            if (lseek(fd, 0, SEEK_SET) < 0) die("lseek");
            uint64_t t0 = now_ns();
            for (unsigned long i = 0; i < block; i++)
                if (w(fd, b, sizeof b) != (ssize_t)sizeof b) die("write");
            if (lseek(fd, 0, SEEK_SET) < 0) die("lseek");
            for (unsigned long i = 0; i < block; i++)
                if (rd(fd, b, sizeof b) < 0) die("read");
            ns[use_a ? 0 : 1] = (double)(now_ns() - t0);
            if (lseek(fd, 0, SEEK_SET) < 0) die("lseek");
        }
        tally_add(&t, ns[0], 2.0 * block, ns[1], 2.0 * block);
    }
    close(fd);
    unlink(argv[2]);
    tally_print(&t, "paired_file", 0, 0, "");
    return 0;
}

/* ---- short: whole short connections (socket, connect, send, recv, close) ---- */
typedef int (*socket_fn)(int, int, int);
typedef int (*connect_fn)(int, const struct sockaddr *, socklen_t);
typedef int (*close_fn)(int);
typedef int (*open_fn)(const char *, int, ...);

struct conn_fns {
    socket_fn so;
    connect_fn co;
    send_fn se;
    recv_fn re;
    close_fn cl;
};

static void one_conn(const struct conn_fns *f, const struct sockaddr_in *a, const char *req, char *rep) {
    int s = f->so(AF_INET, SOCK_STREAM, 0);
    if (s < 0) die("socket");
    if (f->co(s, (const struct sockaddr *)a, sizeof *a) < 0) die("connect");
    for (size_t off = 0; off < REQ1_SIZE;) {
        ssize_t n = f->se(s, req + off, REQ1_SIZE - off, 0);
        if (n < 0) { if (errno == EINTR) continue; die("send"); }
        off += (size_t)n;
    }
    for (size_t off = 0; off < REQ1_SIZE;) {
        ssize_t n = f->re(s, rep + off, REQ1_SIZE - off, 0);
        if (n < 0) { if (errno == EINTR) continue; die("recv"); }
        if (n == 0) { errno = ECONNRESET; die("recv: early EOF"); }
        off += (size_t)n;
    }
    f->cl(s);
}

static int short_conns(int argc, char **argv) {
    if (argc < 5) { fprintf(stderr, "usage: w_paired short PORT ROUNDS BLOCK\n"); return 2; }
    int port = atoi(argv[2]);
    unsigned long rounds = strtoull(argv[3], NULL, 0), block = strtoull(argv[4], NULL, 0);
    void *libc = libc_handle();
    const struct conn_fns fa = {
        (socket_fn)bound((void *)socket), (connect_fn)bound((void *)connect),
        (send_fn)bound((void *)send), (recv_fn)bound((void *)recv), (close_fn)bound((void *)close),
    };
    const struct conn_fns fb = {
        (socket_fn)sym(libc, "socket"), (connect_fn)sym(libc, "connect"),
        (send_fn)sym(libc, "send"), (recv_fn)sym(libc, "recv"), (close_fn)sym(libc, "close"),
    };
    struct sockaddr_in a = loopback(port);
    char req[REQ1_SIZE], rep[REQ1_SIZE];
    req1_init(req);
    struct tally t;
    tally_init(&t, rounds);
    unsigned long long tx = 0, rx = 0;
    for (unsigned long r = 0; r < rounds; r++) {
        double ns[2];
        for (int k = 0; k < 2; k++) {
            int use_a = (k == 0) == (r % 2 == 0);
            uint64_t t0 = now_ns();
            for (unsigned long i = 0; i < block; i++) one_conn(use_a ? &fa : &fb, &a, req, rep);
            ns[use_a ? 0 : 1] = (double)(now_ns() - t0);
            /* Only the A connections are the shim's to count: it never sees the B sockets. */
            if (use_a) { tx += (unsigned long long)REQ1_SIZE * block; rx += (unsigned long long)REQ1_SIZE * block; }
        }
        tally_add(&t, ns[0], (double)block, ns[1], (double)block);
    }
    tally_print(&t, "paired_short", tx, rx, "");
    return 0;
}

/* ---- open: open() + close() of a regular file, the fd-making calls' own cost ---- */
static int open_close(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: w_paired open PATH ROUNDS BLOCK\n"); return 2; }
    unsigned long rounds = arg_ull(argc, argv, 3, 400), block = arg_ull(argc, argv, 4, 1000);
    void *libc = libc_handle();
    open_fn oa = (open_fn)bound((void *)open), ob = (open_fn)sym(libc, "open");
    close_fn ca = (close_fn)bound((void *)close), cb = (close_fn)sym(libc, "close");
    int fd = open(argv[2], O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) die("create");
    close(fd);
    struct tally t;
    tally_init(&t, rounds);
    for (unsigned long r = 0; r < rounds; r++) {
        double ns[2];
        for (int k = 0; k < 2; k++) {
            int use_a = (k == 0) == (r % 2 == 0);
            open_fn o = use_a ? oa : ob;
            close_fn c = use_a ? ca : cb;
            uint64_t t0 = now_ns();
            for (unsigned long i = 0; i < block; i++) {
                int f = o(argv[2], O_RDONLY);
                if (f < 0 || c(f) != 0) die("open/close");
            }
            ns[use_a ? 0 : 1] = (double)(now_ns() - t0);
        }
        tally_add(&t, ns[0], (double)block, ns[1], (double)block);
    }
    unlink(argv[2]);
    tally_print(&t, "paired_open", 0, 0, "");
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: w_paired eagain|stream|file|short|open ...\n"); return 2; }
    if (strcmp(argv[1], "short") == 0) return short_conns(argc, argv);
    if (strcmp(argv[1], "eagain") == 0) return eagain(argc, argv);
    if (strcmp(argv[1], "stream") == 0) return stream(argc, argv);
    if (strcmp(argv[1], "file") == 0) return file(argc, argv);
    if (strcmp(argv[1], "open") == 0) return open_close(argc, argv);
    fprintf(stderr, "w_paired: unknown kind %s\n", argv[1]);
    return 2;
}
