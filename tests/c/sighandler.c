/* Sockets made inside signal handlers, at any nesting, while the host is inside a socket call.
 * Used by tests/e2e/invisible.rs.
 *
 *   sighandler PORT RESTART ROUNDS
 *
 * PORT: an unmetered counting peer (tcp_peer.py --mode reply --reply 0) that accepts
 * 1 + 2*ROUNDS + 1 connections. RESTART: 1 to install the handlers with SA_RESTART, 0 without.
 *
 * The main thread blocks in accept() on a listener of its own. A forked helper (it makes no
 * socket of its own before the signal) sends SIGUSR1 to it, ROUNDS times. The SIGUSR1 handler
 * opens a socket, connects to PORT and, between its connect and its send, raises SIGUSR2; the
 * SIGUSR2 handler (nested) opens, connects, sends 300 bytes and closes a socket of its own; then
 * the SIGUSR1 handler sends 1000 bytes and closes. After the rounds, the helper connects to the
 * listener, which ends the accept; main then sends 77 bytes to PORT on a socket of its own, and
 * before that a socket is opened and closed at the fd number a handler socket had, so a count
 * that stuck to the fd number (not the socket) would show.
 *
 * Prints: {"usr1": N, "usr2": N, "handler_fds": [..], "accept_eintr": N} */
#include "common.h"

static unsigned short peer_port;
static volatile sig_atomic_t usr1, usr2, bad;
static int handler_fds[64];
static volatile sig_atomic_t nfds;

static void send_all(int fd, size_t n, char c) {
    char buf[1000];
    memset(buf, c, sizeof buf);
    while (n > 0) {
        ssize_t w = send(fd, buf, n < sizeof buf ? n : sizeof buf, 0);
        if (w < 0) {
            if (errno == EINTR) continue;
            bad = 1;
            return;
        }
        n -= (size_t)w;
    }
}

static int open_conn(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) {
        bad = 1;
        return -1;
    }
    struct sockaddr_in a = lo4(peer_port);
    while (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        if (errno != EINTR) {
            bad = 1;
            close(fd);
            return -1;
        }
    }
    return fd;
}

static void on_usr2(int sig) {
    (void)sig;
    int e = errno;
    int fd = open_conn();
    if (fd >= 0) {
        send_all(fd, 300, 'b');
        close(fd);
    }
    usr2++;
    errno = e;
}

static void on_usr1(int sig, siginfo_t *info, void *uc) {
    (void)sig;
    (void)info;
    (void)uc;
    int e = errno;
    int fd = open_conn();
    if (fd >= 0) {
        if (nfds < 64) handler_fds[nfds++] = fd;
        raise(SIGUSR2); /* nested: runs now, inside this handler */
        send_all(fd, 1000, 'a');
        close(fd);
    }
    usr1++;
    errno = e;
}

int main(int argc, char **argv) {
    if (argc < 4) fail("usage: sighandler PORT RESTART ROUNDS");
    peer_port = (unsigned short)atoi(argv[1]);
    int restart = atoi(argv[2]);
    int rounds = atoi(argv[3]);
    start_clock();

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_SIGINFO | (restart ? SA_RESTART : 0);
    sa.sa_sigaction = on_usr1;
    if (sigaction(SIGUSR1, &sa, NULL) < 0) die("sigaction USR1");
    struct sigaction sb;
    memset(&sb, 0, sizeof sb);
    sigemptyset(&sb.sa_mask);
    sb.sa_flags = restart ? SA_RESTART : 0;
    sb.sa_handler = on_usr2;
    if (sigaction(SIGUSR2, &sb, NULL) < 0) die("sigaction USR2");

    /* The host's view of its handlers is its own. */
    struct sigaction q;
    if (sigaction(SIGUSR1, NULL, &q) < 0) die("sigaction query");
    if (q.sa_sigaction != on_usr1 || !(q.sa_flags & SA_SIGINFO)) fail("SIGUSR1's handler reads back wrong");
    if (signal(SIGUSR2, on_usr2) != on_usr2) fail("SIGUSR2's handler reads back wrong");
    if (sigaction(SIGUSR2, &sb, NULL) < 0) die("sigaction USR2 again");

    /* A first connection of main's own, so the first metered call precedes the handlers. */
    int first = open_conn();
    if (first < 0) die("first connection");
    send_all(first, 50, 'm');
    close(first);

    unsigned short lport;
    int l = listen_v4(0, &lport);
    pid_t me = getpid();
    pid_t helper = fork();
    if (helper < 0) die("fork");
    if (helper == 0) {
        for (int i = 0; i < rounds; i++) {
            /* Paced so each handler has long run before the next signal (they do not queue;
             * a lost one would show as usr1 < ROUNDS, not as a wrong count). */
            usleep(100 * 1000);
            kill(me, SIGUSR1);
        }
        int c = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = lo4(lport);
        if (c < 0 || connect(c, (struct sockaddr *)&a, sizeof a) < 0) _exit(2);
        close(c);
        _exit(0);
    }
    int eintr = 0;
    int conn;
    while ((conn = accept(l, NULL, NULL)) < 0) {
        if (errno != EINTR) die("accept");
        eintr++;
    }
    close(conn);
    close(l);
    if (wait_all(1)) fail("helper failed");

    /* The fd number the first handler socket had, reused by main for a socket of its own that
     * moves nothing, then main's last 77 bytes on yet another socket. */
    int reuse = socket(AF_INET, SOCK_STREAM, 0);
    if (reuse < 0) die("socket");
    close(reuse);
    int last = open_conn();
    if (last < 0) die("last connection");
    send_all(last, 77, 'z');
    close(last);
    if (bad) fail("a handler's socket call failed");

    printf("{\"usr1\": %d, \"usr2\": %d, \"accept_eintr\": %d, \"handler_fds\": [", (int)usr1, (int)usr2, eintr);
    for (int i = 0; i < nfds; i++) printf("%s%d", i ? ", " : "", handler_fds[i]);
    printf("]}\n");
    return 0;
}
