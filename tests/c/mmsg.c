/* Metered UDP socket using sendmmsg() and recvmmsg() only.
 *
 *   mmsg PORT1 PORT2 NREPLY
 *
 * Binds 127.0.0.1:0 (unconnected), sends seven datagrams of varied sizes in one sendmmsg()
 * (resuming if the kernel takes fewer), alternating between 127.0.0.1:PORT1 (four) and
 * 127.0.0.1:PORT2 (three); then receives NREPLY datagrams with recvmmsg(MSG_WAITFORONE)
 * batches, each message with its own source-address buffer. */
#include "common.h"

#define K 7
#define BATCH 16

static char payload[K][65000];
static char inbuf[BATCH][65536];

int main(int argc, char **argv) {
    start_clock();
    if (argc != 4) fail("usage: mmsg PORT1 PORT2 NREPLY");
    int nreply = atoi(argv[3]);
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0) die("socket");
    struct sockaddr_in me = lo4(0);
    if (bind(fd, (struct sockaddr *)&me, sizeof me) < 0) die("bind");
    struct timeval tv = {.tv_sec = LIFETIME, .tv_usec = 0};
    if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) < 0) die("SO_RCVTIMEO");

    struct sockaddr_in dst[2];
    for (int i = 0; i < 2; i++) dst[i] = lo4((unsigned short)atoi(argv[1 + i]));
    static const size_t sizes[K] = {100, 2000, 1, 65000, 777, 1472, 4096};
    struct iovec iov[K];
    struct mmsghdr msgs[K];
    memset(msgs, 0, sizeof msgs);
    for (int i = 0; i < K; i++) {
        fill(payload[i], sizes[i], (unsigned)i);
        iov[i].iov_base = payload[i];
        iov[i].iov_len = sizes[i];
        msgs[i].msg_hdr.msg_name = &dst[i % 2];
        msgs[i].msg_hdr.msg_namelen = sizeof dst[i % 2];
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
    }
    int sent = 0, scalls = 0;
    while (sent < K) {
        int n = sendmmsg(fd, msgs + sent, (unsigned)(K - sent), 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) die("sendmmsg");
        scalls++;
        sent += n;
    }

    int got = 0, rcalls = 0;
    unsigned long long rbytes = 0;
    while (got < nreply) {
        struct mmsghdr in[BATCH];
        struct iovec riov[BATCH];
        struct sockaddr_in from[BATCH];
        memset(in, 0, sizeof in);
        for (int i = 0; i < BATCH; i++) {
            riov[i].iov_base = inbuf[i];
            riov[i].iov_len = sizeof inbuf[i];
            in[i].msg_hdr.msg_name = &from[i];
            in[i].msg_hdr.msg_namelen = sizeof from[i];
            in[i].msg_hdr.msg_iov = &riov[i];
            in[i].msg_hdr.msg_iovlen = 1;
        }
        int want = nreply - got < BATCH ? nreply - got : BATCH;
        int n = recvmmsg(fd, in, (unsigned)want, MSG_WAITFORONE, NULL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) die("recvmmsg");
        rcalls++;
        for (int i = 0; i < n; i++) rbytes += in[i].msg_len;
        got += n;
    }
    if (close(fd) < 0) die("close");
    say("sent %d datagrams in %d sendmmsg, received %d (%llu bytes) in %d recvmmsg", sent, scalls, got, rbytes, rcalls);
    return 0;
}
