/* hookcalls: the calls that make, change and end sockets and fds, and the process ones (see tests/c/hookcalls.c). */
#include "hookcalls.h"
#include <spawn.h>

void lifecycle(void) {
    struct sockaddr_in a = lo4(0);
    /* socket */
    int t;
    KEEP("socket", t = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    CALL("socket EAFNOSUPPORT", socket(12345, SOCK_STREAM, 0));
    CALL("socket EINVAL type", socket(AF_INET, 99, 0));
    CALL("socket EPROTONOSUPPORT", socket(AF_INET, SOCK_STREAM, IPPROTO_UDP));
    int nl = socket(AF_NETLINK, SOCK_RAW, 0);
    say("socket netlink ok=%d", nl >= 0);
    CALL("socketpair EOPNOTSUPP", socketpair(AF_INET, SOCK_STREAM, 0, (int[2]){0, 0}));
    CALL("socketpair EFAULT", socketpair(AF_UNIX, SOCK_STREAM, 0, BAD));
    /* bind, listen */
    KEEP("bind", bind(t, (struct sockaddr *)&a, sizeof a));
    CALL("bind again EINVAL", bind(t, (struct sockaddr *)&a, sizeof a));
    CALL("bind EFAULT", bind(socket(AF_INET, SOCK_STREAM, 0), BAD, sizeof a));
    KEEP("listen", listen(t, 8));
    socklen_t al = sizeof a;
    getsockname(t, (struct sockaddr *)&a, &al);
    int taken = socket(AF_INET, SOCK_STREAM, 0);
    CALL("bind EADDRINUSE", bind(taken, (struct sockaddr *)&a, sizeof a));
    int u = socket(AF_INET, SOCK_DGRAM, 0);
    CALL("listen udp EOPNOTSUPP", listen(u, 1));
    CALL("listen EBADF", listen(999, 1));
    int pf = open("/dev/null", O_RDWR);
    CALL("listen ENOTSOCK", listen(pf, 1));
    CALL("bind ENOTSOCK", bind(pf, (struct sockaddr *)&a, sizeof a));
    /* accept, accept4 */
    CALL("accept EAGAIN", accept(t, NULL, NULL));
    CALL("accept4 EAGAIN", accept4(t, NULL, NULL, SOCK_CLOEXEC));
    CALL("accept4 bad flags", accept4(t, NULL, NULL, 12345));
    CALL("accept on udp", accept(u, NULL, NULL));
    CALL("accept EBADF", accept(999, NULL, NULL));
    CALL("accept ENOTSOCK", accept(pf, NULL, NULL));
    /* connect */
    int c;
    KEEP("socket client", c = socket(AF_INET, SOCK_STREAM, 0));
    CALL("connect EFAULT", connect(c, BAD, sizeof a));
    CALL("connect short address", connect(c, (struct sockaddr *)&a, 3));
    struct sockaddr_in6 six = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT, .sin6_port = a.sin_port};
    CALL("connect EAFNOSUPPORT", connect(c, (struct sockaddr *)&six, sizeof six));
    KEEP("connect", connect(c, (struct sockaddr *)&a, sizeof a));
    CALL("connect EISCONN", connect(c, (struct sockaddr *)&a, sizeof a));
    CALL("connect EBADF", connect(999, (struct sockaddr *)&a, sizeof a));
    CALL("connect ENOTSOCK", connect(pf, (struct sockaddr *)&a, sizeof a));
    int nb = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int held = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in h = lo4(0);
    bind(held, (struct sockaddr *)&h, sizeof h);
    al = sizeof h;
    getsockname(held, (struct sockaddr *)&h, &al);
    CALL("connect ECONNREFUSED", connect(socket(AF_INET, SOCK_STREAM, 0), (struct sockaddr *)&h, sizeof h));
    errno = 0;
    int r = connect(nb, (struct sockaddr *)&a, sizeof a);
    say("connect nonblocking in progress or done=%d", r == 0 || errno == EINPROGRESS);
    struct sockaddr_in from;
    socklen_t fl = sizeof from;
    int s;
    await_in(t);
    KEEP("accept with address", s = accept(t, (struct sockaddr *)&from, &fl));
    say("accept address length %u", fl);
    /* An address buffer smaller than the address, at the end of a heap block: the kernel
     * writes 4 bytes and reports the full length. */
    char *tiny = malloc(4);
    socklen_t tl = 4;
    await_in(t);
    KEEP("accept4 with a short address buffer", accept4(t, (struct sockaddr *)tiny, &tl, SOCK_CLOEXEC));
    say("accept4 reported length %u", tl);
    free(tiny);
    int c6 = socket(AF_INET, SOCK_STREAM, 0);
    KEEP("connect again", connect(c6, (struct sockaddr *)&a, sizeof a));
    await_in(t);
    CALL("accept address EFAULT", accept(t, BAD, &fl));
    /* shutdown */
    KEEP("shutdown SHUT_RD", shutdown(c, SHUT_RD));
    CALL("shutdown EINVAL how", shutdown(c, 99));
    CALL("shutdown ENOTCONN", shutdown(taken, SHUT_RDWR));
    CALL("shutdown EBADF", shutdown(999, SHUT_RDWR));
    CALL("shutdown ENOTSOCK", shutdown(pf, SHUT_RDWR));
    /* the dup family and fcntl */
    int d;
    KEEP("dup", d = dup(c));
    CALL("dup EBADF", dup(999));
    KEEP("dup2", dup2(c, 40));
    KEEP("dup2 onto itself", dup2(c, c));
    CALL("dup2 EBADF", dup2(999, 41));
    CALL("dup2 to -1", dup2(c, -1));
    KEEP("dup3", dup3(c, 42, O_CLOEXEC));
    CALL("dup3 onto itself", dup3(c, c, 0));
    CALL("dup3 bad flags", dup3(c, 43, 12345));
    KEEP("fcntl F_DUPFD", fcntl(c, F_DUPFD, 50));
    KEEP("fcntl F_DUPFD_CLOEXEC", fcntl(c, F_DUPFD_CLOEXEC, 50));
    KEEP("fcntl64 F_DUPFD", fcntl64(c, F_DUPFD, 50));
    KEEP("fcntl F_GETFD", fcntl(42, F_GETFD));
    KEEP("fcntl F_GETFL", fcntl(c, F_GETFL) & O_ACCMODE);
    CALL("fcntl EBADF", fcntl(999, F_GETFL));
    CALL("fcntl EINVAL cmd", fcntl(c, 99999));
    CALL("fcntl F_DUPFD EINVAL", fcntl(c, F_DUPFD, -1));
    /* close, close_range, closefrom */
    KEEP("close", close(d));
    CALL("close EBADF", close(d));
    CALL("close_range first > last", close_range(60, 50, 0));
    CALL("close_range bad flags", close_range(60, 70, 12345));
    KEEP("close_range 40..52", close_range(40, 52, 0));
    CALL("fcntl after close_range", fcntl(40, F_GETFD));
    KEEP("close_range CLOEXEC", close_range(3, 10, CLOSE_RANGE_CLOEXEC));
    errno = EDOM;
    closefrom(500);
    show("closefrom 500 (keeps errno)", 0);
    int all[] = {t, u, taken, pf, c, nb, held, s, c6};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (close(all[i]) != 0) die("close lifecycle");
    if (nl >= 0) close(nl);
    /* the rest of this function's fds (accepted, never named) */
    closefrom(3);
}

void exec_family(char **argv) {
    char *av[] = {argv[0], argv[1], "final", NULL};
    char *env[] = {NULL};
    CALL("execve ENOENT", execve("/no/such/program", av, environ));
    CALL("execv EACCES", execv(argv[1], av));
    CALL("execvp ENOENT", execvp("no-such-program-anywhere", av));
    CALL("execvpe ENOENT", execvpe("no-such-program-anywhere", av, env));
    CALL("fexecve EINVAL", fexecve(-1, av, env));
    int d = open(argv[1], O_RDONLY | O_DIRECTORY);
    CALL("fexecve EACCES", fexecve(d, av, environ));
    close(d);
    /* posix_spawn: its file actions, a program that does not exist, one that does. */
    posix_spawn_file_actions_t fa;
    if (posix_spawn_file_actions_init(&fa) != 0) die("posix_spawn_file_actions_init");
    CALL("posix_spawn_file_actions_adddup2 ok", posix_spawn_file_actions_adddup2(&fa, 2, 1));
    CALL("posix_spawn_file_actions_adddup2 EBADF", posix_spawn_file_actions_adddup2(&fa, -1, 1));
    char *tav[] = {"true", NULL};
    pid_t sp = -1;
    CALL("posix_spawn ENOENT", posix_spawn(&sp, "/no/such/program", &fa, NULL, tav, environ));
    CALL("posix_spawnp ok", posix_spawnp(&sp, "true", &fa, NULL, tav, environ));
    int sst = -1;
    if (waitpid(sp, &sst, 0) != sp) die("waitpid spawned");
    say("spawned true left: status %d", WIFEXITED(sst) ? WEXITSTATUS(sst) : -1);
    posix_spawn_file_actions_destroy(&fa);
    pid_t k = fork();
    if (k == 0) _exit(0);
    int st = -1;
    if (k < 0 || waitpid(k, &st, 0) != k) die("fork, waitpid");
    say("child left with _exit: status %d", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    execv(argv[0], av);
    die("execv self");
}
