/* Metered forking server: one fork()ed worker per connection, which ends with _exit(0), so no
 * atexit handler runs in it.
 *
 *   forkserver PORTFILE NCONN
 *
 * The parent listens on 127.0.0.1:0, publishes the port, accepts NCONN connections, forks a
 * worker for each and closes its copy; then waits for every worker. A worker recv()s until
 * EOF, send()s 2*received+100 bytes, closes, prints "worker <pid> client <port> children <k>"
 * (k: processes whose parent it is; under sockmeter run a worker hands its counts to the
 * parent's shipper instead of starting one, so 0) and calls _exit(0). */
#include "common.h"
#include <dirent.h>

/* How many processes have this one as their parent (from /proc/<pid>/stat). */
static int own_children(void) {
    DIR *d = opendir("/proc");
    if (!d) die("opendir /proc");
    int n = 0;
    pid_t me = getpid();
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
        char path[300], line[512];
        snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        if (fgets(line, sizeof line, f)) {
            char *p = strrchr(line, ')'); /* the command name may hold spaces and parentheses */
            char state;
            int ppid;
            if (p && sscanf(p + 1, " %c %d", &state, &ppid) == 2 && ppid == (int)me) n++;
        }
        fclose(f);
    }
    closedir(d);
    return n;
}

static char buf[1 << 16];

static void serve(int c) {
    unsigned long long rx = 0, tx = 0;
    for (;;) {
        ssize_t r = recv(c, buf, sizeof buf, 0);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) die("recv");
        if (r == 0) break;
        rx += (unsigned long long)r;
    }
    unsigned long long want = 2 * rx + 100;
    fill(buf, sizeof buf, 9);
    while (tx < want) {
        size_t n = want - tx < sizeof buf ? (size_t)(want - tx) : sizeof buf;
        ssize_t w = send(c, buf, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) die("send");
        tx += (unsigned long long)w;
    }
    unsigned short port = remote_port(c);
    if (close(c) < 0) die("close");
    say("worker %d client %u children %d", (int)getpid(), port, own_children());
}

int main(int argc, char **argv) {
    start_clock();
    if (argc != 3) fail("usage: forkserver PORTFILE NCONN");
    int n = atoi(argv[2]);
    unsigned short port;
    int lfd = listen_v4(0, &port);
    publish_port(argv[1], port);
    for (int i = 0; i < n; i++) {
        int c = accept(lfd, NULL, NULL);
        if (c < 0 && errno == EINTR) { i--; continue; }
        if (c < 0) die("accept");
        pid_t pid = fork();
        if (pid < 0) die("fork");
        if (pid == 0) {
            close(lfd);
            serve(c);
            _exit(0);
        }
        if (close(c) < 0) die("close in parent");
    }
    if (close(lfd) < 0) die("close listener");
    return wait_all(n);
}
