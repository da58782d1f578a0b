/* A handler installed before the first socket, then one connection: afterwards the host must
 * read back its own handler through sigaction, the kernel must hold the shim's trampoline in
 * its place, and the signal (raised) must still reach the host's handler. SIGNAL is "segv" (a
 * fault's handler: the preload stage passes its installation to libc, and the shim adopts it
 * when it loads) or "usr1" (the stage loads the shim first). Also says whether the shim was
 * mapped right after the handler was installed.
 *   usage: late_handler PORT BYTES SIGNAL
 * Prints: shim_at_install=0|1 same=1 function=1 kernel_differs=1 caught=1 sent=BYTES */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

static volatile sig_atomic_t caught;

static void on_signal(int s) {
    (void)s;
    caught++;
}

static int sig = SIGUSR1;

static unsigned long handler_now(void) {
    struct sigaction old;
    if (sigaction(sig, NULL, &old) != 0) { perror("sigaction"); exit(2); }
    return (unsigned long)old.sa_handler;
}

/* Whether libsockmeter_shim.so is mapped (read with the raw system calls: no hooked call). */
static int shim_mapped(void) {
    static char buf[1 << 16];
    int fd = (int)syscall(SYS_openat, AT_FDCWD, "/proc/self/maps", O_RDONLY);
    if (fd < 0) return -1;
    size_t n = 0;
    for (;;) {
        long r = syscall(SYS_read, fd, buf + n, sizeof buf - 1 - n);
        if (r <= 0) break;
        n += (size_t)r;
        if (n == sizeof buf - 1) break;
    }
    syscall(SYS_close, fd);
    buf[n] = 0;
    return strstr(buf, "libsockmeter_shim.so") != NULL;
}

int main(int argc, char **argv) {
    if (argc < 4) { fprintf(stderr, "usage: late_handler PORT BYTES SIGNAL\n"); return 2; }
    sig = strcmp(argv[3], "segv") == 0 ? SIGSEGV : SIGUSR1;
    struct sigaction act;
    memset(&act, 0, sizeof act);
    act.sa_handler = on_signal;
    if (sigaction(sig, &act, NULL) != 0) { perror("sigaction"); return 2; }
    int at_install = shim_mapped();
    unsigned long before = handler_now();

    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(atoi(argv[1])) };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) { perror("connect"); return 2; }
    size_t n = strtoul(argv[2], NULL, 10), sent = 0;
    char buf[4096];
    memset(buf, 'h', sizeof buf);
    while (sent < n) {
        size_t k = n - sent < sizeof buf ? n - sent : sizeof buf;
        ssize_t w = send(fd, buf, k, 0);
        if (w <= 0) { perror("send"); return 2; }
        sent += (size_t)w;
    }
    close(fd);

    unsigned long after = handler_now();
    /* The kernel's own view: rt_sigaction asked directly (the kernel's struct starts with the
     * handler). */
    unsigned long kernel[4] = {0};
    if (syscall(SYS_rt_sigaction, sig, NULL, kernel, 8) != 0) { perror("rt_sigaction"); return 2; }
    raise(sig);
    printf("shim_at_install=%d same=%d function=%d kernel_differs=%d caught=%d sent=%zu\n", at_install,
           before == after, before == (unsigned long)on_signal, kernel[0] != before, (int)caught, sent);
    return 0;
}
