/* Calls every function in the shim's hook table (shim/src/hooks/mod.rs) the ways a program
 * can: success, EAGAIN, EBADF, ENOTSOCK, EPIPE (SIGPIPE ignored), ECONNRESET, partial
 * writes (a small SO_SNDBUF, a nonblocking socket), MSG_PEEK, zero lengths, invalid pointers
 * (EFAULT), and the other errors each call has. Run with and without the shim, the output
 * must be identical: every line is deterministic (fd numbers included: a single-threaded
 * host's numbering is its own). All traffic is between this process's own sockets.
 *
 *   hookcalls DIR          (DIR: an empty scratch directory)
 *
 * Lines:
 *   "<call> <case> ret=<value> errno=<name>"   (errno cleared first; "keep" cases preset it
 *                                               to EDOM, which a success must leave alone)
 *   "<call> full eagain-or-count=1"            a send on a connection the peer does not read:
 *                                               EAGAIN, or a count if an acknowledgement made
 *                                               room after all (timing, not the shim)
 *   "<call> partial=1"                          a nonblocking 1 MiB send moved only part
 *   "ledger <fd> <local> <peer> tx <bytes> rx <bytes>" per inet socket (peer "-" for UDP): the
 *                                               bytes each call moved as the kernel reported
 *                                               them (its return values; MSG_PEEK reads move
 *                                               none); these lines name ports, which differ
 *                                               from run to run
 * It ends by exec'ing itself ("hookcalls DIR final"), which prints "final" and leaves with
 * _exit.
 *
 * The calls live in one file per family (tests/c/hookcalls/); this one has the ledger, the
 * helpers they share and main. */
#include "hookcalls/hookcalls.h"

void *volatile bad_address = (void *)16;
volatile int minus_one = -1;
char buf[1 << 20];
char big[1 << 20];

struct entry ledger[64];
int nledger;

static void addr_text(const struct sockaddr_storage *a, char *out, size_t cap) {
    const struct sockaddr_in *v4 = (const struct sockaddr_in *)a;
    char ip[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &v4->sin_addr, ip, sizeof ip);
    snprintf(out, cap, "%s:%u", ip, ntohs(v4->sin_port));
}

struct entry *entry_of(int fd) {
    struct sockaddr_storage l, p;
    socklen_t ll = sizeof l, pl = sizeof p;
    if (getsockname(fd, (struct sockaddr *)&l, &ll) != 0 || l.ss_family != AF_INET) return NULL;
    int type = 0;
    socklen_t tl = sizeof type;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) != 0) return NULL;
    char local[64], peer[64] = "-";
    addr_text(&l, local, sizeof local);
    /* A datagram socket is known by its local address alone (its peer comes and goes). */
    if (type == SOCK_STREAM && getpeername(fd, (struct sockaddr *)&p, &pl) == 0) addr_text(&p, peer, sizeof peer);
    for (int i = 0; i < nledger; i++)
        if (!strcmp(ledger[i].local, local) && !strcmp(ledger[i].peer, peer)) return &ledger[i];
    if (nledger == 64) fail("ledger full");
    struct entry *e = &ledger[nledger++];
    e->fd = fd;
    snprintf(e->local, sizeof e->local, "%s", local);
    snprintf(e->peer, sizeof e->peer, "%s", peer);
    return e;
}

/* Called for every data call on a socket: what it moved. */
void moved(int fd, long ret, int tx) {
    if (ret <= 0) return;
    int e = errno;
    struct entry *en = entry_of(fd);
    if (en) {
        if (tx) en->tx += (unsigned long long)ret;
        else en->rx += (unsigned long long)ret;
    }
    errno = e;
}

void show(const char *what, long ret) {
    int e = errno;
    const char *name = e ? strerrorname_np(e) : "0";
    say("%s ret=%ld errno=%s", what, ret, name ? name : "?");
}

/* Waits (bounded) until `fd` is readable or has an error. */
void await_in(int fd) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, 20000) != 1) fail("fd %d never became readable", fd);
}

/* Reads (untracked by the printout, tracked by the ledger) until `n` bytes came. */
void drain(int fd, unsigned long long n) {
    while (n > 0) {
        await_in(fd);
        ssize_t r = recv(fd, buf, n < sizeof buf ? (size_t)n : sizeof buf, MSG_DONTWAIT);
        if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        if (r <= 0) die("drain");
        moved(fd, r, 0);
        n -= (unsigned long long)r;
    }
}

/* Sends on nonblocking `fd` (its peer reading nothing) until the connection is full for good:
 * until EAGAIN, and again whenever an acknowledgement that was still on its way frees room,
 * so that a call made next certainly fails with EAGAIN however slowly this runs. */
void fill_up(int fd) {
    struct entry *e = entry_of(fd);
    for (;;) {
        long r;
        while ((r = send(fd, big, sizeof big, 0)) > 0) e->tx += (unsigned long long)r;
        if (errno != EAGAIN) die("fill_up");
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        if (poll(&p, 1, 50) == 0) return;
    }
}

/* Reads on `s` until it has received everything `c` sent it (by the ledger). */
void drain_pair(int c, int s) {
    drain(s, entry_of(c)->tx - entry_of(s)->rx);
}

/* A connected pair over loopback: *c connects to the listener, *s is accepted. */
void pair(int l, unsigned short lport, int *c, int *s) {
    *c = connect_v4(lport);
    *s = accept(l, NULL, NULL);
    if (*s < 0) die("accept");
}

unsigned long long unread(int fd) {
    int n = 0;
    if (ioctl(fd, FIONREAD, &n) != 0) die("FIONREAD");
    return (unsigned long long)n;
}

int main(int argc, char **argv) {
    start_clock();
    if (argc == 3 && !strcmp(argv[2], "final")) {
        say("final");
        _Exit(0);
    }
    if (argc != 2) fail("usage: hookcalls DIR");
    fill(buf, sizeof buf, 5);
    fill(big, sizeof big, 6);
    data_path(argv[1]);
    lifecycle();
    files(argv[1]);
    resolver();
    exec_family(argv);
    return 1;
}
