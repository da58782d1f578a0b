/* Metered program whose blocking socket calls are interrupted by a signal every 500 us
 * (setitimer), with SA_RESTART on or off. The handler only counts (no socket calls).
 *
 *   eintr PORT DIR RESTART      (the peer is tests/peers/eintr_peer.py DIR; RESTART 0 or 1)
 *
 * The peer holds each call blocked until the program leaves a marker in DIR, so what each
 * call returns is certain: without SA_RESTART the first blocking connect, recv and accept
 * each fail with EINTR (the marker is left only after they returned), and a blocking send
 * that moved some bytes returns a partial count; with SA_RESTART the marker is left first and
 * connect, recv and accept are restarted by the kernel until they complete. The program then
 * finishes each exchange, retrying after EINTR. Every line it prints is the same in every run:
 *   "<call> <what> ..." results, and the byte totals it moved;
 *   "sock main port <local port>" and "accepted from <peer address>" identify its sockets;
 *   "handler on another thread <0|1>": whether a tick's handler ever ran on a thread other
 *   than the main one (the program has no other thread of its own; at the end its main thread
 *   blocks the signal for 20 ms, during which ticks must wait for it). */
#include "common.h"
#include <poll.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/uio.h>

static volatile sig_atomic_t ticks, elsewhere;
static pid_t main_tid;
static const char *dir;
static char buf[1 << 20];

static void on_tick(int sig) {
    (void)sig;
    ticks++;
    if ((pid_t)syscall(SYS_gettid) != main_tid) elsewhere = 1;
}

static void mark(const char *name, const char *text) {
    char path[4096], tmp[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) die("open marker");
    size_t n = strlen(text);
    if (write(fd, text, n) != (ssize_t)n) die("write marker");
    if (close(fd) < 0) die("close marker");
    if (rename(tmp, path) < 0) die("rename marker");
}

static void show(const char *what, long ret) {
    int e = errno;
    say("%s ret=%ld errno=%s", what, ret, e ? strerrorname_np(e) : "0");
}

static int wait_for(int fd, short events) {
    struct pollfd p = {.fd = fd, .events = events};
    for (;;) {
        int r = poll(&p, 1, 30000);
        if (r < 0 && errno == EINTR) continue;
        return r;
    }
}

/* The first call of each kind, then the rest of the exchange with EINTR retried. */
static int do_connect(unsigned short port, int restart) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) die("socket");
    struct sockaddr_in a = lo4(port);
    if (restart) mark("connect", "go");
    errno = 0;
    int r = connect(fd, (struct sockaddr *)&a, sizeof a);
    show("connect first", r);
    if (r != 0) {
        if (errno != EINTR) die("connect");
        mark("connect", "go");
        if (wait_for(fd, POLLOUT) != 1) fail("connect never completed");
        int err = -1;
        socklen_t l = sizeof err;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &l) < 0 || err != 0) fail("connect failed late: %d", err);
        say("connect completed later");
    }
    say("sock main port %u", local_port(fd));
    return fd;
}

static void do_recv(int fd, int restart, size_t want) {
    if (restart) mark("send", "go");
    size_t got = 0;
    int eintr = 0, first = 1, how = 0;
    while (got < want) {
        errno = 0;
        ssize_t r;
        struct iovec v = {buf, 4096};
        struct msghdr m;
        memset(&m, 0, sizeof m);
        m.msg_iov = &v;
        m.msg_iovlen = 1;
        switch (how++ % 4) {
        case 0: r = recv(fd, buf, 4096, 0); break;
        case 1: r = read(fd, buf, 4096); break;
        case 2: r = readv(fd, &v, 1); break;
        default: r = recvmsg(fd, &m, 0); break;
        }
        if (first) {
            if (restart) say("recv first got data=%d", r > 0);
            else show("recv first", r);
            first = 0;
        }
        if (r < 0 && errno == EINTR) {
            eintr++;
            if (!restart && eintr == 1) mark("send", "go");
            continue;
        }
        if (r <= 0) die("recv");
        got += (size_t)r;
    }
    say("recv total %zu eintr seen=%d", got, restart ? eintr : eintr > 0);
}

static size_t do_send(int fd, size_t total) {
    int small = 8192;
    if (setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof small) < 0) die("SO_SNDBUF");
    size_t done = 0;
    int first = 1, how = 0;
    while (done < total) {
        size_t n = total - done;
        errno = 0;
        ssize_t w = (how++ % 2) ? write(fd, buf, n) : send(fd, buf, n, 0);
        if (first) {
            /* The peer reads nothing yet: the call fills the buffers, blocks, and a tick ends
             * it with what it moved. */
            say("send first partial=%d", w > 0 && (size_t)w < n);
            mark("drain", "go");
            first = 0;
        }
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) die("send");
        done += (size_t)w;
    }
    say("send total %zu", done);
    if (shutdown(fd, SHUT_WR) < 0) die("shutdown");
    return done;
}

static void do_accept(int restart) {
    unsigned short port;
    int l = listen_v4(0, &port);
    char text[16];
    snprintf(text, sizeof text, "%u", port);
    if (restart) mark("dial", text);
    int c;
    errno = 0;
    c = accept(l, NULL, NULL);
    show("accept first", c < 0 ? -1 : 0);
    if (c < 0) {
        if (errno != EINTR) die("accept");
        mark("dial", text);
        while ((c = accept(l, NULL, NULL)) < 0)
            if (errno != EINTR) die("accept again");
    }
    struct sockaddr_in from;
    socklen_t fl = sizeof from;
    if (getpeername(c, (struct sockaddr *)&from, &fl) < 0) die("getpeername");
    say("accepted from 127.0.0.1:%u", ntohs(from.sin_port));
    size_t got = 0;
    for (;;) {
        ssize_t r = recv(c, buf, sizeof buf, 0);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) die("recv accepted");
        if (r == 0) break;
        got += (size_t)r;
    }
    say("accepted total %zu", got);
    if (close(c) < 0 || close(l) < 0) die("close");
}

int main(int argc, char **argv) {
    start_clock();
    if (argc != 4) fail("usage: eintr PORT DIR RESTART");
    unsigned short port = (unsigned short)atoi(argv[1]);
    dir = argv[2];
    int restart = atoi(argv[3]);
    main_tid = (pid_t)syscall(SYS_gettid);
    fill(buf, sizeof buf, 4);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_tick;
    sa.sa_flags = restart ? SA_RESTART : 0;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGALRM, &sa, NULL) < 0) die("sigaction");
    struct itimerval it = {.it_interval = {0, 500}, .it_value = {0, 500}};
    if (setitimer(ITIMER_REAL, &it, NULL) < 0) die("setitimer");

    int fd = do_connect(port, restart);
    do_recv(fd, restart, 40000);
    do_send(fd, sizeof buf);
    /* The peer closes after reading everything. */
    for (;;) {
        ssize_t r = recv(fd, buf, 16, 0);
        if (r < 0 && errno == EINTR) continue;
        if (r != 0) fail("expected EOF, got %zd", r);
        break;
    }
    if (close(fd) < 0) die("close main");
    do_accept(restart);

    /* The main thread blocks the signal for a while: a tick must then wait for it (the
     * program has no other thread to take it). */
    sigset_t alrm;
    sigemptyset(&alrm);
    sigaddset(&alrm, SIGALRM);
    if (sigprocmask(SIG_BLOCK, &alrm, NULL) < 0) die("sigprocmask");
    struct timespec pause = {0, 20 * 1000 * 1000};
    while (nanosleep(&pause, &pause) < 0 && errno == EINTR) {}
    if (sigprocmask(SIG_UNBLOCK, &alrm, NULL) < 0) die("sigprocmask");
    struct itimerval off;
    memset(&off, 0, sizeof off);
    setitimer(ITIMER_REAL, &off, NULL);
    say("ticks seen=%d", ticks > 0);
    say("handler on another thread %d", (int)elsewhere);
    return 0;
}
