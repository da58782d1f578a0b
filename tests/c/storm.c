/* Metered process storms: forks with grandchildren, vfork + exec, posix_spawn, exec chains.
 *
 *   storm PORT fork CHILDREN GRAND   the parent makes a connection, then forks CHILDREN
 *                                    children at once; each forks GRAND grandchildren; every
 *                                    third child and grandchild touches no socket at all
 *   storm PORT vfork N               the parent makes a connection (kept open), then N times:
 *                                    vfork, and in the child close the parent's socket, dup2
 *                                    it onto another number, and exec "storm PORT client SIZE";
 *                                    the parent sends on its socket after each child, and
 *                                    makes one more connection at the end
 *   storm PORT spawn N               as vfork, with posix_spawn (a close and a dup2 as file
 *                                    actions) instead
 *   storm PORT chain DEPTH           a connection of its own (close-on-exec) and one shared
 *                                    down the chain (inherited: opened by the first image,
 *                                    used by each, closed by the last); execs
 *                                    "storm PORT chain DEPTH-1" until DEPTH is 0
 *   storm PORT lchain DEPTH          as chain, each image exec'ing the next with a function of
 *                                    the variadic family by depth (execl, execle with environ,
 *                                    execlp), which glibc runs on its internal execve
 *   storm PORT client SIZE           one connection: send SIZE bytes, half-close, read to EOF
 *
 * The peer serves every connection with "e,s1000". Every process that makes a connection
 * prints "proc <pid> ppid <ppid> image <name> sock <local port> tx <bytes>" per connection;
 * a process that touches no socket prints "quiet <pid>". The chain also prints
 * "shared sock <local port>" (once) and "share image <name> tx <bytes>" (each image's part of
 * the shared connection; the last image also reads the reply). */
#include "common.h"
#include <spawn.h>

extern char **environ;
static unsigned short port;
static char data[65536];
static const char *self;

/* Sends `n` bytes on `fd` (send), without closing. */
static void put(int fd, size_t n) {
    for (size_t done = 0; done < n;) {
        ssize_t w = send(fd, data, n - done < sizeof data ? n - done : sizeof data, 0);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) die("send");
        done += (size_t)w;
    }
}

/* Half-closes `fd`, reads the peer's reply to EOF (it must be 1000 bytes) and closes. */
static void finish(int fd) {
    if (shutdown(fd, SHUT_WR) < 0) die("shutdown");
    char buf[4096];
    size_t got = 0;
    for (;;) {
        ssize_t r = recv(fd, buf, sizeof buf, 0);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) die("recv");
        if (r == 0) break;
        got += (size_t)r;
    }
    if (got != 1000) fail("reply of %zu bytes", got);
    if (close(fd) < 0) die("close");
}

static void report(const char *image, int fd, size_t tx) {
    say("proc %d ppid %d image %s sock %u tx %zu", (int)getpid(), (int)getppid(), image, local_port(fd), tx);
}

/* One whole connection of `n` bytes. */
static void one(const char *image, size_t n) {
    int fd = connect_v4(port);
    report(image, fd, n);
    put(fd, n);
    finish(fd);
}

static int storm_fork(int children, int grand) {
    one("parent", 1111);
    for (int c = 0; c < children; c++) {
        pid_t pid = fork();
        if (pid < 0) die("fork");
        if (pid > 0) continue;
        for (int g = 0; g < grand; g++) {
            pid_t gp = fork();
            if (gp < 0) die("fork grandchild");
            if (gp > 0) continue;
            if ((c * grand + g) % 3 == 2) say("quiet %d", (int)getpid());
            else one("grandchild", 500 + 10 * (size_t)c + (size_t)g);
            _exit(0);
        }
        if (c % 3 == 2) say("quiet %d", (int)getpid());
        else one("child", 2000 + 100 * (size_t)c);
        _exit(wait_all(grand));
    }
    return wait_all(children);
}

/* The parent's socket, kept open across children that exec. */
static int storm_vfork(int n, int spawn) {
    int keep = connect_v4(port);
    report(spawn ? "spawner" : "vforker", keep, 700 + 300 * (size_t)n);
    put(keep, 700);
    for (int i = 0; i < n; i++) {
        char size[32];
        snprintf(size, sizeof size, "%d", 3000 + 100 * i);
        char *av[] = {(char *)self, NULL, "client", size, NULL};
        char portarg[16];
        snprintf(portarg, sizeof portarg, "%u", port);
        av[1] = portarg;
        pid_t pid;
        if (spawn) {
            posix_spawn_file_actions_t fa;
            posix_spawn_file_actions_init(&fa);
            posix_spawn_file_actions_adddup2(&fa, keep, 60);
            posix_spawn_file_actions_addclose(&fa, keep);
            posix_spawn_file_actions_addclose(&fa, 60);
            int e = posix_spawn(&pid, self, &fa, NULL, av, environ);
            posix_spawn_file_actions_destroy(&fa);
            if (e != 0) {
                errno = e;
                die("posix_spawn");
            }
        } else {
            pid = vfork();
            if (pid < 0) die("vfork");
            if (pid == 0) {
                /* What a vfork child commonly does before exec: move and close fds. */
                if (dup2(keep, 60) != 60) _exit(41);
                if (close(keep) != 0) _exit(42);
                if (close(60) != 0) _exit(43);
                execv(self, av);
                _exit(44);
            }
        }
        int st;
        if (waitpid(pid, &st, 0) != pid) die("waitpid");
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) fail("child %d ended with status %d", (int)pid, st);
        put(keep, 300);
    }
    finish(keep);
    /* A socket the parent makes after its children are gone. */
    one(spawn ? "spawner" : "vforker", 4444);
    return 0;
}

static int storm_chain(int depth, int shared_fd, int list) {
    char name[32];
    snprintf(name, sizeof name, "chain%d", depth);
    int own = connect_v4(port);
    if (fcntl(own, F_SETFD, FD_CLOEXEC) < 0) die("FD_CLOEXEC");
    size_t n = 1000 + 200 * (size_t)depth;
    report(name, own, n);
    put(own, n);
    finish(own);
    if (shared_fd < 0) {
        shared_fd = connect_v4(port);
        say("shared sock %u", local_port(shared_fd));
    }
    say("share image %s tx %zu", name, (size_t)(50 + depth));
    put(shared_fd, 50 + (size_t)depth);
    if (depth == 0) {
        finish(shared_fd);
        return 0;
    }
    char d[16], p[16], f[16];
    snprintf(d, sizeof d, "%d", depth - 1);
    snprintf(p, sizeof p, "%u", port);
    snprintf(f, sizeof f, "%d", shared_fd);
    if (list) {
        switch (depth % 3) {
        case 0: execl(self, self, p, "lchain", d, f, (char *)NULL); die("execl");
        case 1: execle(self, self, p, "lchain", d, f, (char *)NULL, environ); die("execle");
        default: execlp(self, self, p, "lchain", d, f, (char *)NULL); die("execlp");
        }
    }
    char *av[] = {(char *)self, p, "chain", d, f, NULL};
    execv(self, av);
    die("execv");
    return 1;
}

int main(int argc, char **argv) {
    start_clock();
    if (argc < 4) fail("usage: storm PORT fork|vfork|spawn|chain|client ARGS");
    self = argv[0];
    port = (unsigned short)atoi(argv[1]);
    fill(data, sizeof data, 9);
    const char *mode = argv[2];
    if (!strcmp(mode, "fork") && argc == 5) return storm_fork(atoi(argv[3]), atoi(argv[4]));
    if (!strcmp(mode, "vfork") && argc == 4) return storm_vfork(atoi(argv[3]), 0);
    if (!strcmp(mode, "spawn") && argc == 4) return storm_vfork(atoi(argv[3]), 1);
    if (!strcmp(mode, "chain") && (argc == 4 || argc == 5))
        return storm_chain(atoi(argv[3]), argc == 5 ? atoi(argv[4]) : -1, 0);
    if (!strcmp(mode, "lchain") && (argc == 4 || argc == 5))
        return storm_chain(atoi(argv[3]), argc == 5 ? atoi(argv[4]) : -1, 1);
    if (!strcmp(mode, "client") && argc == 4) {
        one("client", (size_t)atoi(argv[3]));
        return 0;
    }
    fail("bad arguments");
    return 2;
}
