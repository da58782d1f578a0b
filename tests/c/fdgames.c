/* Metered client playing games with fd numbers: dup family onto and from sockets, a socket at
 * the highest fd the open-files limit allows, and fd numbers reused for files, pipes and
 * other non-socket fds right after a socket was closed behind the shim's back (a raw
 * close system call, or fclose of an fdopen'ed socket, which glibc closes internally).
 *
 *   fdgames PORT DIR   (the peer serves every connection with "s1000,e")
 *
 * Every connection first reads the peer's 1000 bytes with read(), then sends what the
 * scenario says. Prints:
 *   "sock <name> fd <n> port <local port> tx <bytes this program sent on it>" per connection;
 *   "r <what> <ret> <errno name>" for results that must be the same without the shim;
 *   "high <fd>", the fd number the high-fd scenario used.
 * Bytes moved through the non-socket fds that reuse a socket's number must not be counted:
 * the sockets' counts must equal what the peer saw. */
#include "common.h"
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>

static unsigned short port;
static const char *dir;
static char data[65536];

static void show(const char *what, long ret) {
    int e = errno;
    const char *name = e ? strerrorname_np(e) : "0";
    say("r %s %ld %s", what, ret, name ? name : "?");
}

/* Prints a call's result and errno (cleared first). */
#define RESULT(what, expr) do { errno = 0; long r_ = (long)(expr); show(what, r_); } while (0)

static void put(int fd, size_t n) {
    for (size_t done = 0; done < n;) {
        size_t chunk = n - done < sizeof data ? n - done : sizeof data;
        ssize_t w = write(fd, data, chunk);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) die("write");
        done += (size_t)w;
    }
}

static void get(int fd, size_t n) {
    char buf[4096];
    for (size_t done = 0; done < n;) {
        ssize_t r = read(fd, buf, n - done < sizeof buf ? n - done : sizeof buf);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) die("read");
        if (r == 0) fail("EOF with %zu bytes still expected", n - done);
        done += (size_t)r;
    }
}

/* A connection with the peer's greeting read. */
static int conn(void) {
    int fd = connect_v4(port);
    get(fd, 1000);
    return fd;
}

static void sock(const char *name, int fd, unsigned long long tx) {
    say("sock %s fd %d port %u tx %llu", name, fd, local_port(fd), tx);
}

static void must(int ok, const char *what) {
    if (!ok) fail("%s", what);
}

/* ---- the dup family onto and from sockets ---- */

/* A socket dup'd over itself (no-op, or EINVAL for dup3), and F_DUPFD_CLOEXEC. */
static void self_dup(void) {
    int s = conn();
    RESULT("dup2 self", dup2(s, s));
    RESULT("dup3 self", dup3(s, s, 0));
    int d = fcntl(s, F_DUPFD_CLOEXEC, 0);
    must(d > s, "F_DUPFD_CLOEXEC");
    RESULT("dupfd_cloexec flag", fcntl(d, F_GETFD) & FD_CLOEXEC);
    sock("self", s, 3000 + 4000 + 500);
    put(s, 3000);
    put(d, 4000);
    if (close(s) < 0) die("close s");
    put(d, 500);
    if (close(d) < 0) die("close d");
}

/* A socket dup'd over a file's fd and the file dup'd back over it. */
static void over_file(void) {
    char path[4096];
    snprintf(path, sizeof path, "%s/overfile", dir);
    int f = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (f < 0) die("open overfile");
    int saved = dup(f);
    if (saved < 0) die("dup file");
    int s = conn();
    sock("overfile", s, 2000 + 100);
    RESULT("dup2 socket over file", dup2(s, f) == f);
    put(f, 2000); /* the socket */
    RESULT("dup2 file back", dup2(saved, f) == f);
    put(f, 3333); /* the file */
    if (close(saved) < 0) die("close saved");
    put(s, 100);
    if (close(s) < 0) die("close s");
    if (lseek(f, 0, SEEK_SET) != 0) die("lseek");
    get(f, 3333);
    if (close(f) < 0) die("close f");
}

/* One socket dup'd over another (closing it), and fd numbers moved with dup3/F_DUPFD. */
static void over_socket(void) {
    int a = conn();
    int b = conn();
    sock("A", a, 1000 + 700 + 300 + 200);
    sock("B", b, 500);
    put(a, 1000);
    put(b, 500);
    RESULT("dup2 A over B", dup2(a, b) == b);
    put(b, 700); /* A now */
    int c = dup3(b, 90, O_CLOEXEC);
    must(c == 90, "dup3 to 90");
    if (close(a) < 0) die("close a");
    put(b, 300);
    int e = fcntl(90, F_DUPFD, 95);
    must(e >= 95, "F_DUPFD 95");
    if (close(b) < 0 || close(90) < 0) die("close b, 90");
    put(e, 200);
    if (close(e) < 0) die("close e");
}

/* A socket living only at the highest fd the hard open-files limit allows. */
static void high_fd(void) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0) die("getrlimit");
    rlim_t top = rl.rlim_max;
    if (top == RLIM_INFINITY || top > (1 << 20)) top = 1 << 20; /* the registry's range */
    rl.rlim_cur = top;
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0) die("setrlimit");
    int hi = (int)top - 1;
    say("high %d", hi);
    int s = conn();
    sock("high", s, 4444 + 555);
    must(dup2(s, hi) == hi, "dup2 to the top");
    if (close(s) < 0) die("close s");
    put(hi, 4444);
    int lower = fcntl(hi, F_DUPFD, hi - 1);
    must(lower == hi - 1, "F_DUPFD below the top");
    if (close(hi) < 0) die("close hi");
    put(lower, 555);
    if (close(lower) < 0) die("close lower");
}

/* ---- fd numbers reused after a close the shim did not see ---- */

/* A socket with its traffic done, closed by a raw system call. */
static int closed_behind(const char *name, size_t tx) {
    int s = conn();
    sock(name, s, tx);
    put(s, tx);
    if (syscall(SYS_close, s) != 0) die("raw close");
    return s;
}

static void same(int got, int want, const char *what) {
    if (got != want) fail("%s got fd %d, not the closed socket's %d", what, got, want);
}

static void reuse_open(void) {
    int s = closed_behind("open", 1111);
    char path[4096];
    snprintf(path, sizeof path, "%s/reuse-open", dir);
    int f = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    same(f, s, "open");
    put(f, 5555);
    if (lseek(f, 0, SEEK_SET) != 0) die("lseek");
    get(f, 5555);
    if (close(f) < 0) die("close");
}

static void reuse_openat_creat(void) {
    int s = closed_behind("openat", 1212);
    int d = open(dir, O_RDONLY | O_DIRECTORY);
    if (d < 0) die("open dir");
    /* The directory took the socket's number: use that, then close it behind the shim too. */
    same(d, s, "open dir");
    int f = openat(d, "reuse-openat", O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (f < 0) die("openat");
    put(f, 100);
    if (syscall(SYS_close, d) != 0) die("raw close dir");
    char path[4096];
    snprintf(path, sizeof path, "%s/reuse-creat", dir);
    int c = creat(path, 0644);
    same(c, s, "creat");
    put(c, 200);
    if (close(c) < 0 || close(f) < 0) die("close");
}

static void reuse_pipe(void) {
    int s = closed_behind("pipe", 1313);
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0) die("pipe2");
    same(p[0], s, "pipe2 read end");
    put(p[1], 3000);
    get(p[0], 3000);
    if (close(p[0]) < 0 || close(p[1]) < 0) die("close pipe");
    /* The write end on the socket's number: a free number below it takes the read end. */
    int x = open("/dev/null", O_RDONLY);
    if (x < 0) die("open /dev/null");
    int t = closed_behind("pipe-w", 1414);
    if (close(x) < 0) die("close /dev/null");
    int q[2];
    if (pipe(q) < 0) die("pipe");
    same(q[0], x, "pipe read end");
    same(q[1], t, "pipe write end");
    put(q[1], 10);
    get(q[0], 10);
    if (close(q[0]) < 0 || close(q[1]) < 0) die("close pipe 2");
}

static void reuse_special(void) {
    unsigned long long v = 1;
    int s = closed_behind("eventfd", 1515);
    int ev = eventfd(0, 0);
    same(ev, s, "eventfd");
    if (write(ev, &v, 8) != 8 || read(ev, &v, 8) != 8) die("eventfd io");
    if (close(ev) < 0) die("close eventfd");

    s = closed_behind("memfd", 1616);
    int m = memfd_create("fdgames", 0);
    same(m, s, "memfd_create");
    put(m, 7000);
    if (lseek(m, 0, SEEK_SET) != 0) die("lseek memfd");
    get(m, 7000);
    if (close(m) < 0) die("close memfd");

    s = closed_behind("epoll", 1717);
    int ep = epoll_create1(0);
    same(ep, s, "epoll_create1");
    RESULT("read on an epoll fd", read(ep, data, 8));
    if (close(ep) < 0) die("close epoll");
    s = closed_behind("epoll-old", 1718);
    ep = epoll_create(4);
    same(ep, s, "epoll_create");
    RESULT("write on an epoll fd", write(ep, data, 8));
    if (close(ep) < 0) die("close epoll 2");

    s = closed_behind("timerfd", 1819);
    int tf = timerfd_create(CLOCK_MONOTONIC, 0);
    same(tf, s, "timerfd_create");
    struct itimerspec its = {.it_value = {.tv_sec = 0, .tv_nsec = 1000}};
    if (timerfd_settime(tf, 0, &its, NULL) < 0) die("timerfd_settime");
    if (read(tf, &v, 8) != 8) die("timerfd read");
    if (close(tf) < 0) die("close timerfd");

    s = closed_behind("signalfd", 1920);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    if (sigprocmask(SIG_BLOCK, &set, NULL) < 0) die("sigprocmask");
    int sf = signalfd(-1, &set, 0);
    same(sf, s, "signalfd");
    if (raise(SIGUSR1) != 0) die("raise");
    struct signalfd_siginfo si;
    if (read(sf, &si, sizeof si) != sizeof si) die("signalfd read");
    if (close(sf) < 0) die("close signalfd");

    s = closed_behind("inotify", 2019);
    int in = inotify_init1(IN_NONBLOCK);
    same(in, s, "inotify_init1");
    RESULT("read on an idle inotify fd", read(in, data, sizeof data));
    if (close(in) < 0) die("close inotify");
    s = closed_behind("inotify-old", 2020);
    in = inotify_init();
    same(in, s, "inotify_init");
    if (close(in) < 0) die("close inotify 2");
}

/* A file opened by a raw system call (no hook sees it). */
static int raw_open(const char *path, int flags) {
    return (int)syscall(SYS_openat, AT_FDCWD, path, flags, 0644);
}

/* A socket created over a number whose socket was closed behind the shim. */
static void reuse_socket(void) {
    int s = closed_behind("stale", 2021);
    int t = conn();
    same(t, s, "socket");
    sock("fresh", t, 2122);
    put(t, 2122);
    if (close(t) < 0) die("close");
}

/* stdio: fopen and freopen take numbers from glibc's own open(), not the hooked one; fclose
 * and freopen close a socket stream's fd inside glibc, not through the hooked close. */
static void reuse_stdio(void) {
    int s = closed_behind("fopen", 2223);
    char path[4096];
    snprintf(path, sizeof path, "%s/reuse-fopen", dir);
    FILE *fp = fopen(path, "w+");
    if (!fp) die("fopen");
    same(fileno(fp), s, "fopen");
    put(fileno(fp), 800);
    if (fclose(fp) != 0) die("fclose file");

    int t = conn();
    sock("fdopen", t, 2324);
    FILE *sp = fdopen(t, "r+");
    if (!sp) die("fdopen");
    put(t, 2324); /* write() on the stream's fd: counted */
    if (fclose(sp) != 0) die("fclose socket stream");
    int f = raw_open(path, O_RDWR);
    same(f, t, "raw open after fclose");
    get(f, 800);
    put(f, 900);
    if (close(f) < 0) die("close");

    int v = conn();
    sock("freopen", v, 2526);
    FILE *vp = fdopen(v, "w");
    if (!vp) die("fdopen 2");
    put(v, 2526);
    FILE *np = freopen(path, "r", vp);
    if (!np) die("freopen");
    same(fileno(np), v, "freopen");
    get(fileno(np), 1700);
    if (fclose(np) != 0) die("fclose reopened");
}

/* ---- close_range with CLOSE_RANGE_CLOEXEC, then closefrom over everything ---- */

static void sweep(void) {
    int a = conn();
    int b = conn();
    sock("sweepA", a, 600 + 601);
    sock("sweepB", b, 602);
    put(a, 600);
    RESULT("close_range cloexec", close_range(3, ~0U, CLOSE_RANGE_CLOEXEC));
    RESULT("cloexec set", fcntl(a, F_GETFD) & FD_CLOEXEC);
    put(a, 601);
    put(b, 602);
    closefrom(3);
    RESULT("write after closefrom", write(a, data, 1));
    int c = conn();
    sock("after", c, 603);
    put(c, 603);
    if (close(c) < 0) die("close c");
}

int main(int argc, char **argv) {
    start_clock();
    if (argc != 3) fail("usage: fdgames PORT DIR");
    port = (unsigned short)atoi(argv[1]);
    dir = argv[2];
    fill(data, sizeof data, 3);
    self_dup();
    over_file();
    over_socket();
    high_fd();
    reuse_open();
    reuse_openat_creat();
    reuse_pipe();
    reuse_special();
    reuse_socket();
    reuse_stdio();
    sweep();
    return 0;
}
