/* What a forked child's hand-over to its parent's shipper is made of, in isolation: the time
 * of each kernel primitive it uses, made and closed as the child and the shipper do, so that
 * a choice between them is measured here and not guessed (docs/benchmarks.md, issue 14):
 *   - a link made as a socketpair (both ends closed),
 *   - a link made as a pipe (both ends closed),
 *   - a pidfd of the calling process (opened and closed),
 *   - the hand-over message: a SOCK_SEQPACKET send of 64 bytes with three fds, received and
 *     the fds closed,
 *   - the same message with no fds.
 * The best of ROUNDS rounds of N each.
 *   usage: handover_cost [N [ROUNDS]]   (not part of scripts/bench: run it by hand, unmetered) */
#include "common.h"
#include <fcntl.h>
#include <sys/syscall.h>

static void send_with(int sock, int nfds) {
    char buf[64] = "12345";
    int fds[3] = { 0, 1, 2 };
    char control[CMSG_SPACE(sizeof fds)];
    struct iovec iov = { buf, sizeof buf };
    struct msghdr m = { 0 };
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    if (nfds) {
        m.msg_control = control;
        m.msg_controllen = sizeof control;
        struct cmsghdr *c = CMSG_FIRSTHDR(&m);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof fds);
        memcpy(CMSG_DATA(c), fds, sizeof fds);
    }
    if (sendmsg(sock, &m, MSG_DONTWAIT) != (ssize_t)sizeof buf) die("sendmsg");
}

static void receive(int sock) {
    char buf[64];
    char control[CMSG_SPACE(3 * sizeof(int))];
    struct iovec iov = { buf, sizeof buf };
    struct msghdr m = { 0 };
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = control;
    m.msg_controllen = sizeof control;
    if (recvmsg(sock, &m, MSG_CMSG_CLOEXEC) < 0) die("recvmsg");
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
        int n = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        for (int i = 0; i < n; i++) close(((int *)CMSG_DATA(c))[i]);
    }
}

int main(int argc, char **argv) {
    unsigned long n = arg_ull(argc, argv, 1, 20000), rounds = arg_ull(argc, argv, 2, 5);
    const char *what[5] = { "socketpair + 2 close", "pipe2 + 2 close", "pidfd_open + close",
                            "hand-over, 3 fds (send, receive, 3 close)", "hand-over, no fds" };
    double best[5] = { 1e18, 1e18, 1e18, 1e18, 1e18 };
    int chan[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, chan) < 0) die("socketpair");
    pid_t self = getpid();
    for (unsigned long r = 0; r < rounds; r++) {
        for (int k = 0; k < 5; k++) {
            uint64_t t0 = now_ns();
            for (unsigned long i = 0; i < n; i++) {
                int fds[2];
                switch (k) {
                case 0:
                    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, fds) < 0) die("socketpair");
                    close(fds[0]);
                    close(fds[1]);
                    break;
                case 1:
                    if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) < 0) die("pipe2");
                    close(fds[0]);
                    close(fds[1]);
                    break;
                case 2:
                    fds[0] = (int)syscall(SYS_pidfd_open, self, 0);
                    if (fds[0] < 0) die("pidfd_open");
                    close(fds[0]);
                    break;
                default:
                    send_with(chan[0], k == 3 ? 3 : 0);
                    receive(chan[1]);
                }
            }
            double us = (double)(now_ns() - t0) / 1e3 / (double)n;
            if (us < best[k]) best[k] = us;
        }
    }
    for (int k = 0; k < 5; k++) printf("%-44s %6.2f us\n", what[k], best[k]);
    return 0;
}
