/* Where a call to `send` from this program goes, before and after its first socket: under the
 * preload stage, first to the stage (libsockmeter_preload.so); once the socket has loaded the
 * shim, the program's GOT slot leads to the shim itself (libsockmeter_shim.so), with no jump
 * through the stage. Then one datagram to 127.0.0.1:PORT, counted.
 *   usage: got_after PORT
 * Prints: before=LIB after=LIB sent=N */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* The address the GOT holds for `send`, read afresh at each call. */
__attribute__((noinline)) static void *send_slot(void) {
    void *p = (void *)send;
    __asm__ volatile("" : "+r"(p));
    return p;
}

static const char *lib_of(void *p) {
    Dl_info i;
    if (!dladdr(p, &i) || !i.dli_fname) return "?";
    const char *s = strrchr(i.dli_fname, '/');
    return s ? s + 1 : i.dli_fname;
}

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: got_after PORT\n"); return 2; }
    char before[256];
    snprintf(before, sizeof before, "%s", lib_of(send_slot()));
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0) { perror("socket"); return 2; }
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(atoi(argv[1])) };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) { perror("connect"); return 2; }
    ssize_t n = send(fd, "twelve bytes", 12, 0);
    printf("before=%s after=%s sent=%zd\n", before, lib_of(send_slot()), n);
    close(fd);
    return 0;
}
