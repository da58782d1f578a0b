/* Forked children and the nursery their parent keeps for them (docs/architecture.md,
 * "The nursery"), as the kernel shows it in /proc/self/maps.
 *
 *   nursery PORT N SIZE MODE
 *
 * The parent makes one connection first (SIZE bytes out, the reply read to EOF), so, metered in
 * shipper mode, it has a shipper before its first fork. Then N children:
 *   MODE serial:     one after another: each connects, sends SIZE bytes, reads the reply to EOF,
 *                    closes, prints its line and _exits; the parent waits for it, and 3 ms more,
 *                    before the next.
 *   MODE threads:    as serial, but each child first starts a thread and joins it (its region
 *                    is made then, before any socket).
 *   MODE concurrent: all at once: each connects, then waits until every child has connected
 *                    (a pipe that the parent closes once N children said so), then as above.
 *   MODE server:     as a forking server: one after another, the parent connects, forks a child
 *                    that serves that connection (inherited: it sends SIZE bytes, reads the
 *                    reply to EOF, closes, prints its line, _exits), closes its own copy and
 *                    waits for the child, and 3 ms more.
 *   MODE live:       as threads, but each child waits 300 ms after its thread (its shipper takes
 *                    the region it handed over silently then, before the child ships), and,
 *                    after its connection closed, waits (up to 20 s)
 *                    until the run's event stream (the file $NURSERY_STREAM) has its hello: it
 *                    must be reported while it lives, though it handed its region over silently
 *                    and nothing woke its shipper when it started shipping. Its line then ends
 *                    with " live=1" (seen) or " live=0" (not within 20 s).
 *   MODE snapshot:   as serial, but each child, after its connection closed, asks the shim for
 *                    its own report (sockmeter_snapshot_json, found with dlsym: the API a host
 *                    embeds): the shipper it was handed to must answer, woken through the
 *                    adoption channel. Its line ends with " snap=1" when the answer names its
 *                    pid and its SIZE bytes sent, else " snap=0".
 *   MODE endings:    as serial, but child i ends in one of four ways, by i % 4: exit(3);
 *                    _exit(5); raise(SIGTERM); exit(4) through an exit handler the parent
 *                    registered before its first socket that then kills the child with SIGKILL
 *                    (it runs after the shim's own, which has recorded exit code 4 by then: the
 *                    kernel's word, SIGKILL, must win). The parent reaps each with wait() and
 *                    does not count these endings as failures.
 *   MODE inherit:    the parent's connection stays open while N children, one after another,
 *                    inherit it and exec /bin/true without touching a socket; then the parent's
 *                    exchange on it, and one more child as in serial (the only child line).
 * Each child's line, printed after its connection closed: "child PID regions=R nurseries=M",
 * where R is how many mappings of a shim region ("/memfd:sockmeter (deleted)") it has (its
 * parent's, inherited, and one of its own if it made one: 1 means it counted in a slot of the
 * nursery) and M how many of a nursery ("/memfd:sockmeter-nursery (deleted)"). The parent then
 * prints "parent regions=R nurseries=M" and "tx=T rx=X" (its own connection's bytes). */
#include "common.h"
#include <dlfcn.h>
#include <pthread.h>
#include <sys/wait.h>

static void *nothing(void *arg) { return arg; }

/* Mode endings: set in a child that must die of SIGKILL in its exit handlers. */
static volatile int kill_at_exit;

static void killer(void) {
    if (kill_at_exit) kill(getpid(), SIGKILL);
}

static void maps(int *regions, int *nurseries) {
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f) die("maps");
    char line[512];
    *regions = *nurseries = 0;
    while (fgets(line, sizeof line, f)) {
        if (strstr(line, "/memfd:sockmeter (deleted)")) (*regions)++;
        if (strstr(line, "/memfd:sockmeter-nursery (deleted)")) (*nurseries)++;
    }
    fclose(f);
}

static unsigned long long exchange(int fd, size_t size, unsigned long long *rx) {
    static char buf[65536];
    fill(buf, size < sizeof buf ? size : sizeof buf, 7);
    unsigned long long tx = 0;
    for (size_t sent = 0; sent < size;) {
        size_t n = size - sent < sizeof buf ? size - sent : sizeof buf;
        ssize_t w = send(fd, buf, n, 0);
        if (w < 0) die("send");
        sent += (size_t)w;
        tx += (unsigned long long)w;
    }
    if (shutdown(fd, SHUT_WR) < 0) die("shutdown");
    for (;;) {
        ssize_t r = recv(fd, buf, sizeof buf, 0);
        if (r < 0) die("recv");
        if (r == 0) break;
        *rx += (unsigned long long)r;
    }
    if (close(fd) < 0) die("close");
    return tx;
}

static void child_line(void) {
    int r, m;
    maps(&r, &m);
    say("child %d regions=%d nurseries=%d\n", (int)getpid(), r, m);
}

/* Whether this process's own report, asked of the shim, names it and SIZE bytes sent. */
static int snapshot_ok(size_t size) {
    char *(*snap)(void) = (char *(*)(void))dlsym(RTLD_DEFAULT, "sockmeter_snapshot_json");
    void (*release)(char *) = (void (*)(char *))dlsym(RTLD_DEFAULT, "sockmeter_string_free");
    if (!snap || !release) return 0;
    char *json = snap();
    if (!json) return 0;
    char pid[32], tx[48];
    snprintf(pid, sizeof pid, "\"pid\":%d,", (int)getpid());
    snprintf(tx, sizeof tx, "\"tx_bytes\":%zu", size);
    int ok = strstr(json, pid) && strstr(json, tx);
    release(json);
    return ok;
}

/* Whether this process's hello shows in the event stream file `path` within 20 s. */
static int hello_seen(const char *path) {
    char want[64], line[4096];
    snprintf(want, sizeof want, "\"type\":\"hello\",\"pid\":%d,", (int)getpid());
    for (int i = 0; i < 2000; i++) {
        FILE *f = fopen(path, "r");
        if (f) {
            int seen = 0;
            while (!seen && fgets(line, sizeof line, f)) seen = strstr(line, want) != NULL;
            fclose(f);
            if (seen) return 1;
        }
        usleep(10000);
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 5) fail("usage: nursery PORT N SIZE serial|concurrent\n");
    start_clock();
    unsigned short port = (unsigned short)atoi(argv[1]);
    int n = atoi(argv[2]);
    size_t size = (size_t)atol(argv[3]);
    int concurrent = strcmp(argv[4], "concurrent") == 0;
    int threads = strcmp(argv[4], "threads") == 0 || strcmp(argv[4], "live") == 0;
    const char *live = strcmp(argv[4], "live") == 0 ? getenv("NURSERY_STREAM") : NULL;
    int snapshot = strcmp(argv[4], "snapshot") == 0;
    int endings = strcmp(argv[4], "endings") == 0;
    if (endings && atexit(killer) != 0) fail("atexit\n");
    if (strcmp(argv[4], "live") == 0 && !live) fail("mode live needs NURSERY_STREAM\n");
    unsigned long long rx = 0, tx = 0;
    if (strcmp(argv[4], "inherit") == 0) {
        int held = connect_v4(port);
        for (int i = 0; i < n; i++) {
            pid_t p = fork();
            if (p < 0) die("fork");
            if (p == 0) {
                execl("/bin/true", "true", (char *)NULL);
                _exit(127);
            }
            if (wait_all(1)) fail("/bin/true failed\n");
        }
        /* Closed now: the last child inherits no socket, so it takes its region lazily, at its
         * first socket: a slot, if the children before left them free. */
        tx = exchange(held, size, &rx);
        pid_t p = fork();
        if (p < 0) die("fork");
        if (p == 0) {
            unsigned long long crx = 0;
            exchange(connect_v4(port), size, &crx);
            child_line();
            _exit(0);
        }
        int bad = wait_all(1);
        int r, m;
        maps(&r, &m);
        say("parent regions=%d nurseries=%d\n", r, m);
        say("tx=%llu rx=%llu\n", tx, rx);
        return bad;
    }
    tx = exchange(connect_v4(port), size, &rx);
    if (strcmp(argv[4], "server") == 0) {
        int bad = 0;
        for (int i = 0; i < n; i++) {
            int fd = connect_v4(port);
            pid_t p = fork();
            if (p < 0) die("fork");
            if (p == 0) {
                unsigned long long crx = 0;
                exchange(fd, size, &crx);
                child_line();
                _exit(0);
            }
            if (close(fd) < 0) die("close");
            bad |= wait_all(1);
            usleep(3000);
        }
        int r, m;
        maps(&r, &m);
        say("parent regions=%d nurseries=%d\n", r, m);
        say("tx=%llu rx=%llu\n", tx, rx);
        return bad;
    }
    int connected[2], go[2];
    if (pipe(connected) < 0 || pipe(go) < 0) die("pipe");
    int bad = 0;
    for (int i = 0; i < n; i++) {
        pid_t p = fork();
        if (p < 0) die("fork");
        if (p == 0) {
            unsigned long long crx = 0;
            if (threads) {
                pthread_t t;
                if (pthread_create(&t, NULL, nothing, NULL) != 0 || pthread_join(t, NULL) != 0) die("thread");
                if (live) usleep(300000);
            }
            int fd = connect_v4(port);
            if (concurrent) {
                close(go[1]);
                char c = 1, x;
                if (write(connected[1], &c, 1) != 1) die("write");
                if (read(go[0], &x, 1) != 0) die("go");
            }
            exchange(fd, size, &crx);
            if (live) {
                int seen = hello_seen(live);
                int r, m;
                maps(&r, &m);
                say("child %d regions=%d nurseries=%d live=%d\n", (int)getpid(), r, m, seen);
            } else if (snapshot) {
                int ok = snapshot_ok(size);
                int r, m;
                maps(&r, &m);
                say("child %d regions=%d nurseries=%d snap=%d\n", (int)getpid(), r, m, ok);
            } else {
                child_line();
            }
            if (endings) {
                switch (i % 4) {
                case 0: exit(3);
                case 1: _exit(5);
                case 2: raise(SIGTERM); break;
                default: kill_at_exit = 1; exit(4);
                }
            }
            _exit(0);
        }
        if (endings) {
            int st;
            if (wait(&st) < 0) die("wait");
            usleep(3000);
        } else if (!concurrent) {
            bad |= wait_all(1);
            /* A moment for the shipper to see the child's end and give its slot back (one that
             * has not yet is no error: the next child takes another slot, or makes a region). */
            usleep(3000);
        }
    }
    if (concurrent) {
        for (int i = 0; i < n; i++) {
            char c;
            if (read(connected[0], &c, 1) != 1) die("connected");
        }
        close(go[1]);
        bad |= wait_all(n);
    }
    int r, m;
    maps(&r, &m);
    say("parent regions=%d nurseries=%d\n", r, m);
    say("tx=%llu rx=%llu\n", tx, rx);
    return bad;
}
