/* What a forking host sees of its children and of itself: a fork while a socket is open (a
 * forking server's child holds it from the fork on, and under the shim hands its region over
 * inside fork). Used by tests/e2e/invisible.rs, which compares the output with an unmetered run.
 *
 *   forkview PORT BYTES
 *
 * The parent connects, sends BYTES and closes (so, metered, it has a shipper before it forks).
 * Then twice: it connects again and forks with that connection open, errno preset to EDOM. The
 * child reports errno as fork left it, the fd number open() gives it next and the fds it holds
 * below 200 (the host's own range), then sends BYTES on the inherited connection (the first
 * child) or nothing (the second), and exits 7. The parent closes its copy, reaps the child
 * with waitpid(pid) and reports the status it got, how many SIGCHLDs arrived, then what
 * waitpid(-1, WNOHANG) says (ECHILD: no other child) and the fds it holds below 200. */
#include "common.h"

#include <dirent.h>

static volatile sig_atomic_t sigchld;

static void on_chld(int sig) {
    (void)sig;
    sigchld++;
}

/* The fds below 200 this process holds, as "0,1,2,...". */
static void low_fds(char *out, size_t cap) {
    DIR *d = opendir("/proc/self/fd");
    if (!d) die("opendir /proc/self/fd");
    int dfd = dirfd(d);
    int have[200] = {0};
    struct dirent *e;
    while ((e = readdir(d))) {
        int fd = atoi(e->d_name);
        if (e->d_name[0] != '.' && fd != dfd && fd < 200) have[fd] = 1;
    }
    closedir(d);
    size_t len = 0;
    out[0] = 0;
    for (int fd = 0; fd < 200; fd++)
        if (have[fd]) len += (size_t)snprintf(out + len, cap - len, "%s%d", len ? "," : "", fd);
}

int main(int argc, char **argv) {
    if (argc != 3) fail("usage: forkview PORT BYTES");
    unsigned short port = (unsigned short)atoi(argv[1]);
    size_t bytes = (size_t)atol(argv[2]);
    start_clock();
    catch_restarting(SIGCHLD, on_chld);

    int first = connect_v4(port);
    send_filled(first, bytes, 3);
    if (close(first) < 0) die("close");

    for (int round = 1; round <= 2; round++) {
        int held = connect_v4(port);
        int report[2];
        if (pipe(report) < 0) die("pipe");
        int before = sigchld;
        errno = EDOM;
        pid_t kid = fork();
        if (kid < 0) die("fork");
        if (kid == 0) {
            int e = errno;
            close(report[0]);
            int next = open("/dev/null", O_RDONLY);
            char fds[1024];
            low_fds(fds, sizeof fds);
            close(next);
            char line[1200];
            int n = snprintf(line, sizeof line, "errno=%s next=%d fds=%s", e == EDOM ? "EDOM" : strerrorname_np(e),
                             next, fds);
            if (write(report[1], line, (size_t)n) != n) _exit(1);
            close(report[1]);
            if (round == 1) send_filled(held, bytes, 3);
            _exit(7);
        }
        close(report[1]);
        char child[1200];
        ssize_t k = read(report[0], child, sizeof child - 1);
        if (k < 0) die("read");
        child[k] = 0;
        close(report[0]);
        if (close(held) < 0) die("close held");
        int st;
        pid_t w = waitpid(kid, &st, 0);
        const char *status = w == kid && WIFEXITED(st) ? (WEXITSTATUS(st) == 7 ? "7" : "other") : "none";
        errno = 0;
        pid_t more = waitpid(-1, NULL, WNOHANG);
        const char *rest = more < 0 && errno == ECHILD ? "ECHILD" : "a-child";
        char fds[1024];
        low_fds(fds, sizeof fds);
        say("round=%d child: %s parent: status=%s sigchld=%d waitpid=%s fds=%s", round, child, status,
            sigchld - before, rest, fds);
    }
    return 0;
}
