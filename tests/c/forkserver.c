/* Metered forking server: one fork()ed worker per connection, which ends with _exit(0), so no
 * atexit handler runs in it.
 *
 *   forkserver PORTFILE NCONN
 *
 * The parent listens on 127.0.0.1:0, publishes the port, accepts NCONN connections, forks a
 * worker for each and closes its copy; then waits for every worker. A worker recv()s until
 * EOF, send()s 2*received+100 bytes, closes, prints "worker <pid> client <port>" and calls
 * _exit(0). */
#include "common.h"

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
    say("worker %d client %u", (int)getpid(), port);
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
    int bad = 0;
    for (int i = 0; i < n; i++) {
        int st;
        if (wait(&st) < 0) die("wait");
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) bad = 1;
    }
    return bad;
}
