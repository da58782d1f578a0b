/* execlist PORT: the execl family under the shim behaves as glibc's own.
 *   1. execl of a missing file and execlp of a missing program fail with ENOENT (printed);
 *   2. a connection: sends 2500 bytes and reads the reply to EOF (metering goes on after a
 *      failed exec);
 *   3. execle of itself with 600 extra arguments (longer than the shim gathers on its stack)
 *      and an environment of one variable: the new image prints its argc and that variable.
 *   execlist count: prints "argc N env V". */
#include "common.h"

extern char **environ;

#define A10 "a", "a", "a", "a", "a", "a", "a", "a", "a", "a"
#define A100 A10, A10, A10, A10, A10, A10, A10, A10, A10, A10
#define A600 A100, A100, A100, A100, A100, A100

int main(int argc, char **argv) {
    alarm(LIFETIME);
    if (argc >= 2 && strcmp(argv[1], "count") == 0) {
        const char *v = getenv("EXECLIST");
        printf("argc %d env %s\n", argc, v ? v : "(none)");
        return 0;
    }
    if (argc < 2) { fprintf(stderr, "usage: execlist PORT\n"); return 2; }
    errno = 0;
    int r = execl("/nonexistent/sockmeter-execlist", "x", (char *)NULL);
    printf("execl %d errno %d\n", r, errno);
    errno = 0;
    r = execlp("sockmeter-no-such-program", "x", "y", (char *)NULL);
    printf("execlp %d errno %d\n", r, errno);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)atoi(argv[1]));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) { perror("connect"); return 2; }
    char buf[2500];
    memset(buf, 'l', sizeof buf);
    if (send(fd, buf, sizeof buf, 0) != (ssize_t)sizeof buf) { perror("send"); return 2; }
    shutdown(fd, SHUT_WR);
    long got = 0;
    for (;;) {
        ssize_t k = recv(fd, buf, sizeof buf, 0);
        if (k <= 0) break;
        got += k;
    }
    close(fd);
    printf("sent 2500 received %ld\n", got);
    fflush(stdout);
    char *env[] = {"EXECLIST=one-variable", NULL};
    execle(argv[0], argv[0], "count", A600, (char *)NULL, env);
    printf("execle failed errno %d\n", errno);
    return 1;
}
