/* Signal handlers that interrupt the shim's own code. Used by tests/e2e/invisible.rs.
 *
 *   sigstorm PORT MILLIS
 *   sigstorm PORT MILLIS shared
 *
 * A timer fires SIGALRM every 300 us for MILLIS ms while the main thread opens and closes
 * sockets in a loop (so most signals land while a hook's handler is running: attributing a new
 * socket, recording a close). The handler opens a UDP socket, sends 10 bytes to 127.0.0.1:PORT
 * (an unmetered counting peer) and closes it. Prints {"sent": BYTES, "signals": N, "loops": N}.
 *
 * With "shared", one TCP connection to PORT (a peer that reads to EOF) carries everything: the
 * main thread sends 1 byte at a time on it in the loop, and the handler sends 10 bytes on the
 * same socket, so handlers land between the main flow's call and its count of that call. */
#include "common.h"

#include <sys/time.h>

static unsigned short peer_port;
static volatile sig_atomic_t signals, bad;
static volatile long sent;
static int shared_fd = -1;
static long main_sent; /* the main flow's own bytes on the shared socket (the handler's: sent) */

static void on_alarm_shared(int sig) {
    (void)sig;
    int e = errno;
    ssize_t w = send(shared_fd, "0123456789", 10, 0);
    if (w > 0)
        sent += w;
    if (w != 10) bad = 1;
    signals++;
    errno = e;
}

static void on_alarm(int sig) {
    (void)sig;
    int e = errno;
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0) {
        bad = 1;
    } else {
        struct sockaddr_in a = lo4(peer_port);
        ssize_t w = sendto(fd, "0123456789", 10, 0, (struct sockaddr *)&a, sizeof a);
        if (w == 10)
            sent += w;
        else
            bad = 1;
        close(fd);
    }
    signals++;
    errno = e;
}

int main(int argc, char **argv) {
    if (argc < 3) fail("usage: sigstorm PORT MILLIS [shared]");
    peer_port = (unsigned short)atoi(argv[1]);
    long millis = atol(argv[2]);
    int shared = argc > 3 && strcmp(argv[3], "shared") == 0;
    if (shared) {
        shared_fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = lo4(peer_port);
        if (shared_fd < 0 || connect(shared_fd, (struct sockaddr *)&a, sizeof a) < 0) die("connect");
    }
    alarm(0);
    signal(SIGPIPE, SIG_IGN);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sa.sa_handler = shared ? on_alarm_shared : on_alarm;
    if (sigaction(SIGALRM, &sa, NULL) < 0) die("sigaction");

    struct itimerval it = {{0, 300}, {0, 300}};
    if (setitimer(ITIMER_REAL, &it, NULL) < 0) die("setitimer");
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    long loops = 0;
    for (;;) {
        if (shared) {
            ssize_t w = send(shared_fd, "x", 1, 0);
            if (w < 0 && errno != EINTR) die("send");
            if (w > 0) main_sent += w;
            loops++;
            if (loops % 64) continue;
            clock_gettime(CLOCK_MONOTONIC, &t);
            if ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 >= millis) break;
            continue;
        }
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0) {
            if (errno == EINTR) continue;
            die("socket");
        }
        close(fd);
        loops++;
        clock_gettime(CLOCK_MONOTONIC, &t);
        if ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 >= millis) break;
    }
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    if (bad) fail("a handler's socket call failed");
    if (shared) close(shared_fd);
    say("{\"sent\": %ld, \"signals\": %d, \"loops\": %ld}", (long)sent + main_sent, (int)signals, loops);
    return 0;
}
