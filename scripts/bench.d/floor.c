/* The floor: the least an LD_PRELOAD byte counter can do.
 *
 * It interposes send, recv, read and write -- nothing else -- and adds each positive
 * return value to an fd-indexed array of relaxed atomics (one for bytes out, one for
 * bytes in).  No allocation, no lock, no system call, no reporting on the call path.
 * Whatever sockmeter's shim costs above this is the price of its features.
 *
 * With FLOOR_REPORT set in the environment it prints its totals to stderr at exit
 * (from a destructor, off the measured path) so the bench can check it was loaded.
 *   build: cc -O2 -shared -fPIC -o libfloor.so floor.c -ldl
 *          cc -O2 -shared -fPIC -DFLOOR_THREAD -o libfloor-thread.so floor.c -ldl -lpthread */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/types.h>

#define FLOOR_MAXFD 65536

static _Atomic unsigned long long out_bytes[FLOOR_MAXFD];
static _Atomic unsigned long long in_bytes[FLOOR_MAXFD];

static ssize_t (*real_send)(int, const void *, size_t, int);
static ssize_t (*real_recv)(int, void *, size_t, int);
static ssize_t (*real_read)(int, void *, size_t);
static ssize_t (*real_write)(int, const void *, size_t);

static void resolve(void) {
    real_send = (ssize_t (*)(int, const void *, size_t, int))dlsym(RTLD_NEXT, "send");
    real_recv = (ssize_t (*)(int, void *, size_t, int))dlsym(RTLD_NEXT, "recv");
    real_read = (ssize_t (*)(int, void *, size_t))dlsym(RTLD_NEXT, "read");
    real_write = (ssize_t (*)(int, const void *, size_t))dlsym(RTLD_NEXT, "write");
}

#ifdef FLOOR_THREAD
/* The "floor + thread" variant: also starts one thread that only sleeps, as a reporting
 * thread would.  A process with a second thread pays more per fd system call in the
 * kernel (fdget() must take a reference on the file when the fd table is shared), so this
 * variant prices the thread apart from the hooks. */
#include <pthread.h>
#include <unistd.h>
static void *idle_thread(void *arg) {
    (void)arg;
    for (;;) sleep(3600);
    return NULL;
}
#endif

__attribute__((constructor)) static void floor_init(void) {
    resolve();
#ifdef FLOOR_THREAD
    pthread_t t;
    if (pthread_create(&t, NULL, idle_thread, NULL) == 0) pthread_detach(t);
#endif
}

static inline void count(_Atomic unsigned long long *arr, int fd, ssize_t r) {
    if (r > 0 && (unsigned)fd < FLOOR_MAXFD)
        atomic_fetch_add_explicit(&arr[fd], (unsigned long long)r, memory_order_relaxed);
}

ssize_t send(int fd, const void *buf, size_t n, int flags) {
    if (__builtin_expect(!real_send, 0)) resolve();
    ssize_t r = real_send(fd, buf, n, flags);
    count(out_bytes, fd, r);
    return r;
}

ssize_t recv(int fd, void *buf, size_t n, int flags) {
    if (__builtin_expect(!real_recv, 0)) resolve();
    ssize_t r = real_recv(fd, buf, n, flags);
    count(in_bytes, fd, r);
    return r;
}

ssize_t read(int fd, void *buf, size_t n) {
    if (__builtin_expect(!real_read, 0)) resolve();
    ssize_t r = real_read(fd, buf, n);
    count(in_bytes, fd, r);
    return r;
}

ssize_t write(int fd, const void *buf, size_t n) {
    if (__builtin_expect(!real_write, 0)) resolve();
    ssize_t r = real_write(fd, buf, n);
    count(out_bytes, fd, r);
    return r;
}

__attribute__((destructor)) static void floor_fini(void) {
    if (!getenv("FLOOR_REPORT")) return;
    unsigned long long o = 0, i = 0;
    for (int fd = 0; fd < FLOOR_MAXFD; fd++) {
        o += atomic_load_explicit(&out_bytes[fd], memory_order_relaxed);
        i += atomic_load_explicit(&in_bytes[fd], memory_order_relaxed);
    }
    fprintf(stderr, "floor: out=%llu in=%llu\n", o, i);
}
