/* hookcalls' shared part (tests/c/hookcalls.c has the program's description): the ledger of
 * the bytes each inet socket moved, the macros that make and print each call, and the helpers
 * the families share. One file per family of hooked calls: data_path.c (every data call),
 * lifecycle.c (sockets, fds, signals, fork, threads, exec), files.c (the calls that make fds),
 * resolver.c (the name lookups). */
#ifndef HOOKCALLS_H
#define HOOKCALLS_H
#include "../common.h"
#include <netdb.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/uio.h>


extern ssize_t __read_chk(int fd, void *buf, size_t n, size_t buflen);
extern ssize_t __recv_chk(int fd, void *buf, size_t n, size_t buflen, int flags);
extern ssize_t __recvfrom_chk(int fd, void *buf, size_t n, size_t buflen, int flags, struct sockaddr *addr,
                              socklen_t *alen);
extern int __open_2(const char *path, int flags);
extern int __open64_2(const char *path, int flags);
extern int __openat_2(int dir, const char *path, int flags);
extern int __openat64_2(int dir, const char *path, int flags);
extern int fcntl64(int fd, int cmd, ...);
extern int open64(const char *path, int flags, ...);
extern int openat64(int dir, const char *path, int flags, ...);
extern int creat64(const char *path, mode_t mode);
extern FILE *fopen64(const char *path, const char *mode);
extern FILE *freopen64(const char *path, const char *mode, FILE *f);
extern ssize_t sendfile64(int out, int in, off64_t *off, size_t n);

/* An address no process maps: every call given it fails with EFAULT. */
extern void *volatile bad_address;
#define BAD bad_address
/* -1, hidden from the compiler's own checks. */
extern volatile int minus_one;
/* Data to send, and room to receive it. */
extern char buf[1 << 20];
extern char big[1 << 20];

/* ---- the ledger: bytes each inet socket moved, as the calls returned them ---- */

struct entry {
    int fd;
    char local[64], peer[64]; /* peer "-" for a datagram socket */
    unsigned long long tx, rx;
};
extern struct entry ledger[64];
extern int nledger;

/* The ledger's entry for socket `fd` (made at its first use). */
struct entry *entry_of(int fd);
/* Called for every data call on a socket: what it moved. */
void moved(int fd, long ret, int tx);
/* Prints `what`, the result and errno. */
void show(const char *what, long ret);
/* Waits (bounded) until `fd` is readable or has an error. */
void await_in(int fd);
/* Reads (untracked by the printout, tracked by the ledger) until `n` bytes came. */
void drain(int fd, unsigned long long n);
/* Sends on nonblocking `fd` until the connection is full for good. */
void fill_up(int fd);
/* Reads on `s` until it has received everything `c` sent it (by the ledger). */
void drain_pair(int c, int s);
/* A connected pair over loopback: *c connects to the listener, *s is accepted. */
void pair(int l, unsigned short lport, int *c, int *s);
/* The bytes waiting to be read on `fd`. */
unsigned long long unread(int fd);

/* A call whose result and errno are printed (errno cleared first). */
#define CALL(what, expr) do { errno = 0; long r_ = (long)(expr); show(what, r_); } while (0)
/* A call expected to succeed: errno preset to a marker a success must leave alone. */
#define KEEP(what, expr) do { errno = EDOM; long r_ = (long)(expr); show(what, r_); } while (0)
/* A data call on socket `fd`: printed, and what it moved goes to the ledger (a MSG_PEEK read
 * moves nothing: CALL). */
#define TX(what, fd, expr) do { errno = 0; long r_ = (long)(expr); moved(fd, r_, 1); show(what, r_); } while (0)
#define RX(what, fd, expr) do { errno = 0; long r_ = (long)(expr); moved(fd, r_, 0); show(what, r_); } while (0)
/* sendmmsg/recvmmsg on `fd`: what they moved is the sum of the messages' lengths (none for a
 * MSG_PEEK receive). */
#define MMSG(what, fd, expr, vec, tx, peek) do { errno = 0; long r_ = (long)(expr); int e_ = errno; \
        for (long i_ = 0; !(peek) && i_ < r_; i_++) moved(fd, (long)(vec)[i_].msg_len, tx); \
        errno = e_; show(what, r_); } while (0)
/* A send on a connection the program filled up (fill_up): EAGAIN, or a count when an
 * acknowledgement made room after all (on a slow run: under valgrind). Which of the two is
 * timing, not the shim; printed is whether it was one of them. */
#define FULL(what, fd, expr) do { errno = 0; long r_ = (long)(expr); moved(fd, r_, 1); \
        say("%s eagain-or-count=%d", what, (r_ == -1 && errno == EAGAIN) || r_ > 0); } while (0)
/* As TX/RX, printing only whether the result was a partial count (0 < ret < len). */
#define TXP(what, fd, expr, len) do { errno = 0; long r_ = (long)(expr); moved(fd, r_, 1); \
        say("%s partial=%d errno=%s", what, r_ > 0 && r_ < (long)(len), errno ? strerrorname_np(errno) : "0"); } while (0)

/* The families, in the order main runs them. */
void data_path(const char *dir);
void lifecycle(void);
void files(const char *dir);
void resolver(void);
void exec_family(char **argv);

#endif
