/* A deliberately bad interposer, for the self-test of syscalls-same.sh only: its
 * send() adds a system call (getppid), which the proof must catch.
 *   build: cc -O2 -shared -fPIC -o libbad.so bad.c -ldl */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

ssize_t send(int fd, const void *buf, size_t n, int flags) {
    static ssize_t (*real)(int, const void *, size_t, int);
    if (!real) real = (ssize_t (*)(int, const void *, size_t, int))dlsym(RTLD_NEXT, "send");
    syscall(SYS_getppid);
    return real(fd, buf, n, flags);
}

ssize_t recv(int fd, void *buf, size_t n, int flags) {
    static ssize_t (*real)(int, void *, size_t, int);
    if (!real) real = (ssize_t (*)(int, void *, size_t, int))dlsym(RTLD_NEXT, "recv");
    return real(fd, buf, n, flags);
}
