/* A fixed socket and file workload for the "no added system calls" test: every data-path
 * call the shim hooks, on a socketpair and a TCP loopback pair (both ends in this thread),
 * pwritev2/preadv2 and syscall() among them, plus regular-file I/O. Prints the bytes it moved. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

static void die(const char *m) { perror(m); exit(1); }

int main(int argc, char **argv) {
    int rounds = argc > 1 ? atoi(argv[1]) : 200;
    char buf[256], in[256];
    memset(buf, 'x', sizeof buf);
    long moved = 0;

    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv)) die("socketpair");

    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t al = sizeof a;
    if (bind(l, (struct sockaddr *)&a, sizeof a) || listen(l, 1) || getsockname(l, (struct sockaddr *)&a, &al)) die("listen");
    int c = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(c, (struct sockaddr *)&a, sizeof a)) die("connect");
    int s = accept(l, NULL, NULL);
    if (s < 0) die("accept");

    char path[] = "/tmp/sockmeter-syscalls-XXXXXX";
    int f = mkstemp(path);
    if (f < 0) die("mkstemp");
    unlink(path);

    for (int i = 0; i < rounds; i++) {
        moved += write(sv[0], buf, 64);
        moved += read(sv[1], in, 64);
        moved += send(c, buf, 100, 0);
        moved += recv(s, in, 100, MSG_WAITALL);
        moved += sendto(s, buf, 10, 0, NULL, 0);
        moved += recvfrom(c, in, 10, MSG_WAITALL, NULL, NULL);
        struct iovec iov[2] = { { buf, 5 }, { buf, 7 } };
        moved += writev(c, iov, 2);
        struct iovec iv[2] = { { in, 5 }, { in + 5, 7 } };
        moved += readv(s, iv, 2);
        struct msghdr m = { .msg_iov = iov, .msg_iovlen = 2 };
        moved += sendmsg(s, &m, 0);
        struct msghdr r = { .msg_iov = iv, .msg_iovlen = 2 };
        moved += recvmsg(c, &r, MSG_WAITALL);
        moved += pwritev2(c, iov, 2, -1, 0);
        moved += preadv2(s, iv, 2, -1, 0);
        moved += syscall(SYS_sendto, s, buf, 10, 0, NULL, 0);
        moved += syscall(SYS_recvfrom, c, in, 10, MSG_WAITALL, NULL, NULL);
        moved += pwrite(f, buf, 32, 0);
        moved += write(f, buf, 16);
        moved += pread(f, in, 16, 0);
    }
    close(f);
    close(s);
    close(c);
    close(l);
    close(sv[0]);
    close(sv[1]);
    printf("moved %ld\n", moved);
    return 0;
}
