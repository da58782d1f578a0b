/* hookcalls: every data call on sockets, files and pipes (see tests/c/hookcalls.c). */
#include "hookcalls.h"

/* A connection whose server end closes with `n` bytes it never read: the client's end is reset
 * (returned once the reset has arrived). */
static int reset_pair(int l, unsigned short lport, size_t n, const char *send_what, const char *close_what) {
    int c, s;
    pair(l, lport, &c, &s);
    TX(send_what, c, send(c, buf, n, 0));
    await_in(s);
    CALL(close_what, close(s));
    await_in(c);
    return c;
}

void data_path(const char *dir) {
    unsigned short lport;
    int l = listen_v4(0, &lport);
    int c, s;
    pair(l, lport, &c, &s);
    struct iovec iov[3] = {{buf, 100}, {buf + 100, 0}, {buf + 100, 900}};
    struct msghdr mh;

    /* send / recv and their variants: success, zero length, MSG_PEEK */
    TX("send 1000", c, send(c, buf, 1000, 0));
    TX("send zero", c, send(c, buf, 0, 0));
    await_in(s);
    CALL("recv MSG_PEEK 10", recv(s, buf, 10, MSG_PEEK));
    RX("recv zero", s, recv(s, buf, 0, 0));
    RX("recv MSG_WAITALL 400", s, recv(s, buf, 400, MSG_WAITALL));
    RX("__recv_chk 100", s, __recv_chk(s, buf, 100, sizeof buf, 0));
    RX("read 200", s, read(s, buf, 200));
    RX("__read_chk 100", s, __read_chk(s, buf, 100, sizeof buf));
    RX("readv 200", s, readv(s, iov, 2));
    RX("__recvfrom_chk 100", s, __recvfrom_chk(s, buf, 100, sizeof buf, MSG_WAITALL, NULL, NULL));
    TX("write 300", c, write(c, buf, 300));
    TX("write zero", c, write(c, buf, 0));
    TX("writev 1000", c, writev(c, iov, 3));
    TX("writev none", c, writev(c, iov, 0));
    memset(&mh, 0, sizeof mh);
    mh.msg_iov = iov;
    mh.msg_iovlen = 3;
    TX("sendmsg 1000", c, sendmsg(c, &mh, 0));
    TX("sendto connected tcp", c, sendto(c, buf, 50, 0, NULL, 0));
    drain_pair(c, s);
    CALL("unread after drain", unread(s));
    memset(&mh, 0, sizeof mh);
    mh.msg_iov = iov;
    mh.msg_iovlen = 1;
    TX("send 100 more", c, send(c, buf, 100, 0));
    await_in(s);
    CALL("recvmsg MSG_PEEK", recvmsg(s, &mh, MSG_PEEK));
    RX("recvmsg 100", s, recvmsg(s, &mh, MSG_WAITALL));
    RX("recvfrom 0 left nonblocking", s, recvfrom(s, buf, 10, MSG_DONTWAIT, NULL, NULL));

    /* EFAULT: invalid pointers, before and after data is pending */
    TX("send EFAULT", c, send(c, BAD, 10, 0));
    TX("write EFAULT", c, write(c, BAD, 10));
    TX("sendmsg msghdr EFAULT", c, sendmsg(c, BAD, 0));
    struct iovec badv = {BAD, 10};
    memset(&mh, 0, sizeof mh);
    mh.msg_iov = &badv;
    mh.msg_iovlen = 1;
    TX("sendmsg iov EFAULT", c, sendmsg(c, &mh, 0));
    TX("writev EFAULT", c, writev(c, BAD, 2));
    TX("send 20", c, send(c, buf, 20, 0));
    await_in(s);
    RX("recv EFAULT", s, recv(s, BAD, 10, 0));
    RX("read EFAULT", s, read(s, BAD, 10));
    RX("readv EFAULT", s, readv(s, BAD, 1));
    RX("recvmsg EFAULT", s, recvmsg(s, BAD, 0));
    /* the address is not wanted: its length pointer is never used */
    RX("recvfrom no address, bad length", s, recvfrom(s, buf, 20, 0, NULL, BAD));
    RX("readv EINVAL", s, readv(s, iov, minus_one));

    /* EAGAIN and partial writes: a nonblocking socket with a small send buffer */
    int c2, s2;
    pair(l, lport, &c2, &s2);
    /* Fixed buffers (no autotuning): 1 MiB never fits, so a nonblocking send is partial. */
    int small = 4096, rcv = 65536;
    if (setsockopt(c2, SOL_SOCKET, SO_SNDBUF, &small, sizeof small) < 0) die("SO_SNDBUF");
    if (setsockopt(s2, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv) < 0) die("SO_RCVBUF");
    fcntl(c2, F_SETFL, O_NONBLOCK);
    fcntl(s2, F_SETFL, O_NONBLOCK);
    RX("recv EAGAIN", s2, recv(s2, buf, 10, 0));
    RX("read EAGAIN", s2, read(s2, buf, 10));
    RX("readv EAGAIN", s2, readv(s2, iov, 1));
    RX("__read_chk EAGAIN", s2, __read_chk(s2, buf, 10, sizeof buf));
    RX("__recv_chk EAGAIN", s2, __recv_chk(s2, buf, 10, sizeof buf, 0));
    RX("__recvfrom_chk EAGAIN", s2, __recvfrom_chk(s2, buf, 10, sizeof buf, 0, NULL, NULL));
    memset(&mh, 0, sizeof mh);
    mh.msg_iov = iov;
    mh.msg_iovlen = 1;
    RX("recvmsg EAGAIN", s2, recvmsg(s2, &mh, 0));
    TXP("send 1 MiB nonblocking", c2, send(c2, big, sizeof big, 0), sizeof big);
    long r;
    for (struct entry *e = entry_of(c2); (r = send(c2, big, sizeof big, 0)) > 0;) e->tx += (unsigned long long)r;
    show("send until full", r);
    fill_up(c2);
    FULL("write full", c2, write(c2, big, 100));
    fill_up(c2);
    FULL("writev full", c2, writev(c2, iov, 3));
    memset(&mh, 0, sizeof mh);
    mh.msg_iov = iov;
    mh.msg_iovlen = 3;
    fill_up(c2);
    FULL("sendmsg full", c2, sendmsg(c2, &mh, 0));
    fill_up(c2);
    FULL("sendto full", c2, sendto(c2, buf, 10, 0, NULL, 0));
    int f = open(dir, O_RDONLY | O_DIRECTORY);
    char fpath[4096];
    snprintf(fpath, sizeof fpath, "%s/payload", dir);
    int pf = open(fpath, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (f < 0 || pf < 0) die("open");
    if (write(pf, big, sizeof big) != sizeof big) die("write payload");
    off_t off = 0;
    fill_up(c2);
    FULL("sendfile full", c2, sendfile(c2, pf, &off, 100));
    drain_pair(c2, s2);
    TXP("write 1 MiB nonblocking", c2, write(c2, big, sizeof big), sizeof big);
    drain_pair(c2, s2);
    off = 0;
    TXP("sendfile 1 MiB nonblocking", c2, sendfile(c2, pf, &off, sizeof big), sizeof big);
    drain_pair(c2, s2);

    /* sendfile: success, EINVAL (a socket as the source), EBADF */
    off = 0;
    TX("sendfile 20000", c, sendfile(c, pf, &off, 20000));
    off64_t off64 = 0;
    TX("sendfile64 3000", c, sendfile64(c, pf, &off64, 3000));
    TX("sendfile socket source", c, sendfile(c, s, NULL, 10));
    TX("sendfile directory source", c, sendfile(c, f, NULL, 10));
    drain_pair(c, s);

    /* EPIPE and ECONNRESET */
    int c3, s3;
    pair(l, lport, &c3, &s3);
    KEEP("shutdown SHUT_WR", shutdown(c3, SHUT_WR));
    TX("send after SHUT_WR", c3, send(c3, buf, 10, 0));
    TX("write after SHUT_WR", c3, write(c3, buf, 10));
    TX("sendmsg after SHUT_WR", c3, sendmsg(c3, &mh, 0));
    RX("recv EOF", s3, recv(s3, buf, 10, 0));
    /* The peer closes with data unread: a reset. */
    int c4 = reset_pair(l, lport, 40, "send 40 never read", "close with unread data");
    RX("recv ECONNRESET", c4, recv(c4, buf, 10, 0));
    TX("send after reset", c4, send(c4, buf, 10, 0));
    RX("recv after reset", c4, recv(c4, buf, 10, 0));
    int c5 = reset_pair(l, lport, 50, "send 50 never read", "close with unread data 2");
    TX("send ECONNRESET", c5, send(c5, buf, 10, 0));
    TX("writev after reset", c5, writev(c5, iov, 3));
    RX("read after reset", c5, read(c5, buf, 10));

    /* EBADF and ENOTSOCK */
    int dead = socket(AF_INET, SOCK_STREAM, 0);
    CALL("close a fresh socket", close(dead));
    TX("send EBADF", dead, send(dead, buf, 1, 0));
    TX("sendto EBADF", dead, sendto(dead, buf, 1, 0, NULL, 0));
    TX("sendmsg EBADF", dead, sendmsg(dead, &mh, 0));
    RX("recv EBADF", dead, recv(dead, buf, 1, 0));
    RX("recvfrom EBADF", dead, recvfrom(dead, buf, 1, 0, NULL, NULL));
    RX("recvmsg EBADF", dead, recvmsg(dead, &mh, 0));
    RX("read EBADF", dead, read(dead, buf, 1));
    TX("write EBADF", dead, write(dead, buf, 1));
    RX("readv EBADF", dead, readv(dead, iov, 1));
    TX("writev EBADF", dead, writev(dead, iov, 1));
    TX("sendfile EBADF", dead, sendfile(dead, pf, NULL, 1));
    RX("__read_chk EBADF", dead, __read_chk(dead, buf, 1, sizeof buf));
    RX("__recv_chk EBADF", dead, __recv_chk(dead, buf, 1, sizeof buf, 0));
    CALL("send ENOTSOCK", send(pf, buf, 1, 0));
    CALL("recv ENOTSOCK", recv(pf, buf, 1, 0));
    CALL("sendmsg ENOTSOCK", sendmsg(pf, &mh, 0));
    CALL("recvmsg ENOTSOCK", recvmsg(pf, &mh, 0));
    CALL("sendto ENOTSOCK", sendto(pf, buf, 1, 0, NULL, 0));
    CALL("recvfrom ENOTSOCK", recvfrom(pf, buf, 1, 0, NULL, NULL));
    CALL("__recv_chk ENOTSOCK", __recv_chk(pf, buf, 1, sizeof buf, 0));
    CALL("__recvfrom_chk ENOTSOCK", __recvfrom_chk(pf, buf, 1, sizeof buf, 0, NULL, NULL));
    CALL("read EISDIR", read(f, buf, 1));
    CALL("__read_chk EISDIR", __read_chk(f, buf, 1, sizeof buf));

    /* UDP: sendto/recvfrom with and without addresses, *mmsg, truncation */
    int u1 = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    int u2 = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a1 = lo4(0), a2 = lo4(0);
    KEEP("bind udp 1", bind(u1, (struct sockaddr *)&a1, sizeof a1));
    KEEP("bind udp 2", bind(u2, (struct sockaddr *)&a2, sizeof a2));
    socklen_t al = sizeof a1;
    getsockname(u1, (struct sockaddr *)&a1, &al);
    al = sizeof a2;
    getsockname(u2, (struct sockaddr *)&a2, &al);
    TX("sendto udp 700", u2, sendto(u2, buf, 700, 0, (struct sockaddr *)&a1, sizeof a1));
    TX("sendto udp zero", u2, sendto(u2, buf, 0, 0, (struct sockaddr *)&a1, sizeof a1));
    TX("sendto udp no address", u2, sendto(u2, buf, 10, 0, NULL, 0));
    TX("sendto udp address EFAULT", u2, sendto(u2, buf, 10, 0, BAD, sizeof a1));
    TX("sendto udp short address", u2, sendto(u2, buf, 10, 0, (struct sockaddr *)&a1, 3));
    TX("sendto udp too big", u2, sendto(u2, big, 70000, 0, (struct sockaddr *)&a1, sizeof a1));
    struct sockaddr_in from;
    socklen_t fl = sizeof from;
    await_in(u1);
    CALL("recvfrom udp MSG_PEEK", recvfrom(u1, buf, sizeof buf, MSG_PEEK, (struct sockaddr *)&from, &fl));
    fl = sizeof from;
    RX("recvfrom udp 700", u1, recvfrom(u1, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl));
    fl = sizeof from;
    RX("recvfrom udp zero datagram", u1, recvfrom(u1, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl));
    RX("recvfrom udp EAGAIN", u1, recvfrom(u1, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl));
    RX("__recvfrom_chk udp EAGAIN", u1, __recvfrom_chk(u1, buf, 10, sizeof buf, 0, (struct sockaddr *)&from, &fl));
    struct mmsghdr mm[2];
    struct iovec mv[2] = {{buf, 300}, {buf + 300, 400}};
    memset(mm, 0, sizeof mm);
    for (int i = 0; i < 2; i++) {
        mm[i].msg_hdr.msg_iov = &mv[i];
        mm[i].msg_hdr.msg_iovlen = 1;
        mm[i].msg_hdr.msg_name = &a1;
        mm[i].msg_hdr.msg_namelen = sizeof a1;
    }
    MMSG("sendmmsg 2", u2, sendmmsg(u2, mm, 2, 0), mm, 1, 0);
    MMSG("sendmmsg vlen 0", u2, sendmmsg(u2, mm, 0, 0), mm, 1, 0);
    MMSG("sendmmsg EFAULT", u2, sendmmsg(u2, BAD, 2, 0), mm, 1, 0);
    struct mmsghdr rm[4];
    struct iovec rv[4] = {{buf, 1000}, {buf + 1000, 1000}, {buf + 2000, 1000}, {buf + 3000, 1000}};
    struct sockaddr_in names[4];
    memset(rm, 0, sizeof rm);
    for (int i = 0; i < 4; i++) {
        rm[i].msg_hdr.msg_iov = &rv[i];
        rm[i].msg_hdr.msg_iovlen = 1;
        rm[i].msg_hdr.msg_name = &names[i];
        rm[i].msg_hdr.msg_namelen = sizeof names[i];
    }
    await_in(u1);
    usleep(20000); /* both datagrams were sent before: give the second one time to be queued */
    MMSG("recvmmsg MSG_PEEK", u1, recvmmsg(u1, rm, 1, MSG_PEEK, NULL), rm, 0, 1);
    MMSG("recvmmsg 2", u1, recvmmsg(u1, rm, 4, 0, NULL), rm, 0, 0);
    MMSG("recvmmsg EAGAIN", u1, recvmmsg(u1, rm, 4, 0, NULL), rm, 0, 0);
    MMSG("recvmmsg EFAULT", u1, recvmmsg(u1, BAD, 4, 0, NULL), rm, 0, 0);
    TX("sendto udp 900", u2, sendto(u2, buf, 900, 0, (struct sockaddr *)&a1, sizeof a1));
    struct iovec tv = {buf, 100};
    memset(&mh, 0, sizeof mh);
    mh.msg_iov = &tv;
    mh.msg_iovlen = 1;
    mh.msg_name = &from;
    mh.msg_namelen = sizeof from;
    await_in(u1);
    RX("recvmsg MSG_TRUNC", u1, recvmsg(u1, &mh, MSG_TRUNC));
    say("recvmsg MSG_TRUNC flags %d", mh.msg_flags & MSG_TRUNC ? 1 : 0);
    mh.msg_name = BAD;
    TX("sendmsg name EFAULT", u2, sendmsg(u2, &mh, 0));
    mh.msg_name = &a1;
    mh.msg_namelen = sizeof a1;
    TX("sendmsg udp 100", u2, sendmsg(u2, &mh, 0));
    await_in(u1);
    RX("read udp", u1, read(u1, buf, sizeof buf));
    KEEP("connect udp", connect(u2, (struct sockaddr *)&a1, sizeof a1));
    TX("send connected udp", u2, send(u2, buf, 33, 0));
    TX("sendto connected udp other address", u2, sendto(u2, buf, 44, 0, (struct sockaddr *)&a2, sizeof a2));
    await_in(u1);
    RX("recv udp 33", u1, recv(u1, buf, sizeof buf, 0));
    struct sockaddr_in un = {.sin_family = AF_UNSPEC};
    KEEP("connect udp AF_UNSPEC", connect(u2, (struct sockaddr *)&un, sizeof un));
    RX("recv udp from itself, filtered while connected", u2, recv(u2, buf, sizeof buf, MSG_DONTWAIT));

    /* AF_UNIX pair */
    int sv[2];
    KEEP("socketpair", socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
    CALL("send unix", send(sv[0], buf, 77, 0));
    CALL("recv unix", recv(sv[1], buf, 100, 0));

    for (int i = 0; i < nledger; i++)
        say("ledger %d %s %s tx %llu rx %llu", ledger[i].fd, ledger[i].local, ledger[i].peer, ledger[i].tx,
            ledger[i].rx);
    int all[] = {c, s, c2, s2, c3, s3, c4, c5, u1, u2, sv[0], sv[1], l, f, pf};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (close(all[i]) != 0) die("close");
}
