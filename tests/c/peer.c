/* The unmetered oracle for the C end-to-end tests: it is never run under the shim, and it
 * prints what it really received and sent.
 *
 *   peer server NCONN SCRIPT         listen on 127.0.0.1:0, print the port, serve NCONN
 *                                    connections (a forked child each, concurrently) with SCRIPT
 *   peer client PORTFILE SCRIPT...   wait for PORTFILE, then one concurrent connection per
 *                                    SCRIPT
 *   peer udp NEXPECT SIZES           bind 127.0.0.1:0 (UDP), print the port, receive NEXPECT
 *                                    datagrams from one sender, then send it one datagram of
 *                                    each size in SIZES (comma separated; "-" for none)
 *
 * SCRIPT is comma separated steps: sN send N bytes; rN read exactly N bytes; e read until EOF;
 * w shutdown(SHUT_WR); f wait for the file $PEER_MARKER_DIR/mark-<client port>.
 * $PEER_RCVBUF sets a client's SO_RCVBUF before it connects.
 *
 * Verdicts, one line each: "conn <client port> rx <bytes> tx <bytes>" for TCP and
 * "udp <sender port> rx <bytes> rxd <datagrams> tx <bytes> txd <datagrams>" for UDP.
 */
#include "common.h"

static char buf[1 << 16];

static void run_script(int fd, unsigned short client_port, const char *script) {
    unsigned long long rx = 0, tx = 0;
    char *copy = strdup(script);
    char *save = NULL;
    for (char *step = strtok_r(copy, ",", &save); step; step = strtok_r(NULL, ",", &save)) {
        unsigned long long n = strtoull(step + 1, NULL, 10);
        switch (step[0]) {
        case 's':
            while (n > 0) {
                size_t chunk = n < sizeof buf ? (size_t)n : sizeof buf;
                fill(buf, chunk, (unsigned)tx);
                ssize_t w = send(fd, buf, chunk, MSG_NOSIGNAL);
                if (w < 0) {
                    if (errno == EINTR) continue;
                    die("peer send");
                }
                tx += (unsigned long long)w;
                n -= (unsigned long long)w;
            }
            break;
        case 'r':
            while (n > 0) {
                size_t chunk = n < sizeof buf ? (size_t)n : sizeof buf;
                ssize_t r = recv(fd, buf, chunk, 0);
                if (r < 0 && errno == EINTR) continue;
                if (r < 0) die("peer recv");
                if (r == 0) fail("peer: EOF with %llu bytes still expected", n);
                rx += (unsigned long long)r;
                n -= (unsigned long long)r;
            }
            break;
        case 'e':
            for (;;) {
                ssize_t r = recv(fd, buf, sizeof buf, 0);
                if (r < 0 && errno == EINTR) continue;
                if (r < 0) die("peer recv to EOF");
                if (r == 0) break;
                rx += (unsigned long long)r;
            }
            break;
        case 'w':
            if (shutdown(fd, SHUT_WR) < 0) die("peer shutdown");
            break;
        case 'f': {
            const char *dir = getenv("PEER_MARKER_DIR");
            if (!dir) fail("peer: step f needs PEER_MARKER_DIR");
            char path[4096];
            snprintf(path, sizeof path, "%s/mark-%u", dir, client_port);
            int seen = 0;
            for (int i = 0; i < (LIFETIME - 10) * 100 && !seen; i++) { /* before the alarm */
                if (access(path, F_OK) == 0) seen = 1;
                else usleep(10000);
            }
            if (!seen) fail("peer: marker %s never appeared", path);
            break;
        }
        default:
            fail("peer: bad step %s", step);
        }
    }
    free(copy);
    if (close(fd) < 0) die("peer close");
    say("conn %u rx %llu tx %llu", client_port, rx, tx);
}

static int server(int nconn, const char *script) {
    unsigned short port;
    int lfd = listen_v4(0, &port);
    say("%u", port);
    for (int i = 0; i < nconn; i++) {
        int c = accept(lfd, NULL, NULL);
        if (c < 0 && errno == EINTR) { i--; continue; }
        if (c < 0) die("accept");
        pid_t pid = fork();
        if (pid < 0) die("fork");
        if (pid == 0) {
            close(lfd);
            run_script(c, remote_port(c), script);
            _exit(0);
        }
        close(c);
    }
    close(lfd);
    return wait_all(nconn);
}

static int client(const char *portfile, int n, char **scripts) {
    unsigned short port = await_port(portfile);
    for (int i = 0; i < n; i++) {
        pid_t pid = fork();
        if (pid < 0) die("fork");
        if (pid == 0) {
            int fd = socket(AF_INET, SOCK_STREAM, 0);
            if (fd < 0) die("socket");
            const char *rcv = getenv("PEER_RCVBUF");
            if (rcv) {
                int v = atoi(rcv);
                if (setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof v) < 0) die("SO_RCVBUF");
            }
            struct sockaddr_in a = lo4(port);
            if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) die("connect");
            run_script(fd, local_port(fd), scripts[i]);
            _exit(0);
        }
    }
    return wait_all(n);
}

/* One size of SIZES: a whole decimal number that fits the buffer, or fail(). */
static size_t udp_size(const char *s, const char *sizes) {
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || s[0] == '-' || s[0] == '+')
        fail("udp peer: bad size \"%s\" in %s", s, sizes);
    if (v > sizeof buf) fail("udp peer: size %llu exceeds the %zu-byte buffer", v, sizeof buf);
    return (size_t)v;
}

static int udp(int nexpect, const char *sizes) {
    /* At least one datagram: its sender is the one the answers go to. */
    if (nexpect < 1) fail("udp peer: NEXPECT must be at least 1, got %d", nexpect);
    /* Every size checked before anything is sent or received. */
    if (strcmp(sizes, "-") != 0) {
        char *copy = strdup(sizes), *save = NULL;
        if (!copy) die("strdup");
        for (char *s = strtok_r(copy, ",", &save); s; s = strtok_r(NULL, ",", &save)) udp_size(s, sizes);
        free(copy);
    }
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0) die("socket");
    struct sockaddr_in a = lo4(0);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0) die("bind");
    socklen_t alen = sizeof a;
    if (getsockname(fd, (struct sockaddr *)&a, &alen) < 0) die("getsockname");
    say("%u", ntohs(a.sin_port));
    struct sockaddr_in from, first;
    unsigned long long rx = 0, tx = 0;
    int rxd = 0, txd = 0;
    for (int i = 0; i < nexpect; i++) {
        socklen_t flen = sizeof from;
        ssize_t r = recvfrom(fd, buf, sizeof buf, 0, (struct sockaddr *)&from, &flen);
        if (r < 0 && errno == EINTR) { i--; continue; }
        if (r < 0) die("recvfrom");
        if (i == 0) first = from;
        else if (from.sin_port != first.sin_port || from.sin_addr.s_addr != first.sin_addr.s_addr)
            fail("udp peer: datagrams from two senders");
        rx += (unsigned long long)r;
        rxd++;
    }
    if (strcmp(sizes, "-") != 0) {
        char *copy = strdup(sizes), *save = NULL;
        for (char *s = strtok_r(copy, ",", &save); s; s = strtok_r(NULL, ",", &save)) {
            size_t n = udp_size(s, sizes);
            fill(buf, n, (unsigned)txd);
            ssize_t w = sendto(fd, buf, n, 0, (struct sockaddr *)&first, sizeof first);
            if (w < 0) die("sendto");
            if ((size_t)w != n) fail("udp peer: short datagram");
            tx += (unsigned long long)w;
            txd++;
        }
        free(copy);
    }
    say("udp %u rx %llu rxd %d tx %llu txd %d", ntohs(first.sin_port), rx, rxd, tx, txd);
    return 0;
}

int main(int argc, char **argv) {
    start_clock();
    if (getenv("LD_PRELOAD") && strstr(getenv("LD_PRELOAD"), "sockmeter"))
        fail("peer: the oracle must not run under the shim");
    if (argc == 4 && strcmp(argv[1], "server") == 0) return server(atoi(argv[2]), argv[3]);
    if (argc >= 4 && strcmp(argv[1], "client") == 0) return client(argv[2], argc - 3, argv + 3);
    if (argc == 4 && strcmp(argv[1], "udp") == 0) {
        char *end = NULL;
        errno = 0;
        long nexpect = strtol(argv[2], &end, 10);
        if (errno != 0 || end == argv[2] || *end != '\0' || nexpect > 1000000)
            fail("peer udp: bad NEXPECT %s", argv[2]);
        return udp((int)nexpect, argv[3]);
    }
    fail("usage: peer server NCONN SCRIPT | client PORTFILE SCRIPT... | udp NEXPECT SIZES");
    return 2;
}
