/* Metered, two threads: one keeps opening and closing UDP sockets (so the shim keeps
 * reporting), the other repeatedly finds the shim's own fd (its reporter connection, a Unix
 * stream socket, or the link pipe to its shipper process; the program makes neither) and
 * close()s it, the way a daemon's fd sweep would while other threads work. Then one TCP exchange whose counts must arrive exactly.
 *
 *   fdstorm PORT ROUNDS   (the peer serves the connection with "r3000,s2000,e")
 *
 * Prints "storm closed <n> churned <sockets>" and "sock B port <p> fd <n>". */
#include "common.h"
#include <sys/stat.h>
#include <pthread.h>

#define CHURN_MAX 5000

static volatile int stop;
static int churned;

static void *churn(void *arg) {
    (void)arg;
    while (!stop && churned < CHURN_MAX) {
        int s = socket(AF_INET, SOCK_DGRAM, 0);
        if (s < 0) die("socket");
        if (close(s) < 0) die("close");
        churned++;
        usleep(300);
    }
    return NULL;
}

int main(int argc, char **argv) {
    start_clock();
    if (argc != 3) fail("usage: fdstorm PORT ROUNDS");
    unsigned short port = (unsigned short)atoi(argv[1]);
    int rounds = atoi(argv[2]);

    pthread_t t;
    if (pthread_create(&t, NULL, churn, NULL) != 0) fail("pthread_create");
    int closed = 0;
    for (int i = 0; i < rounds; i++) {
        int fd = find_shim_fd(1100);
        if (fd >= 0) {
            close(fd);
            closed++;
        }
        usleep(200);
    }
    stop = 1;
    if (pthread_join(t, NULL) != 0) fail("pthread_join");
    say("storm closed %d churned %d", closed, churned);

    static char buf[4096];
    fill(buf, sizeof buf, 6);
    int b = connect_v4(port);
    say("sock B port %u fd %d", local_port(b), b);
    if (send(b, buf, 3000, 0) != 3000) die("send");
    for (size_t got = 0; got < 2000;) {
        ssize_t r = recv(b, buf, 2000 - got, 0);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) die("recv");
        got += (size_t)r;
    }
    if (send(b, buf, 1234, 0) != 1234) die("send");
    if (close(b) < 0) die("close B");
    return 0;
}
