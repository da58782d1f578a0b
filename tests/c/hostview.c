/* What a host sees of its own process: children, SIGCHLD, wait(). Used by tests/e2e/invisible.rs.
 *
 *   hostview PORT BYTES [STAGE]
 *
 * Stage 1 (default) and stage 2 (the same program after an execve of itself) each: connect to
 * 127.0.0.1:PORT, send BYTES bytes, close (so the shim has something to meter and, in shipper
 * mode, starts its shipper); wait a moment; then report what the host sees:
 *
 *   children=N   the kernel's list of this process's children (/proc/self/task/<tid>/children,
 *                every thread), and `ps --ppid` run from here (its own pid left out);
 *   sigchld=N    SIGCHLD signals received (a handler counts them);
 *   waitpid=..   waitpid(-1, WNOHANG) and wait(): "ECHILD" when the host has no child, as
 *                without the shim; "pid" or "hang" otherwise (an alarm bounds the wait).
 *
 * Stage 1 then execs stage 2 (same pid, a new image: it must not inherit a child either). */
#include "common.h"

#include <dirent.h>

static volatile sig_atomic_t sigchld;
static volatile sig_atomic_t hung;

static void on_chld(int sig) {
    (void)sig;
    sigchld++;
}

static void on_alarm(int sig) {
    (void)sig;
    hung = 1;
}

/* Children the kernel lists for every thread of this process. */
static int kernel_children(void) {
    DIR *d = opendir("/proc/self/task");
    if (!d) die("opendir /proc/self/task");
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char path[300], buf[4096];
        snprintf(path, sizeof path, "/proc/self/task/%s/children", e->d_name);
        int fd = open(path, O_RDONLY);
        if (fd < 0) die("open children");
        ssize_t k = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (k < 0) die("read children");
        buf[k] = 0;
        for (char *t = strtok(buf, " \n"); t; t = strtok(NULL, " \n")) n++;
    }
    closedir(d);
    return n;
}

/* Processes whose parent is us according to `ps --ppid`, not counting the ps we started. */
static int ps_children(void) {
    int p[2];
    if (pipe(p) < 0) die("pipe");
    char me[32];
    snprintf(me, sizeof me, "%d", (int)getpid());
    pid_t ps = fork();
    if (ps < 0) die("fork");
    if (ps == 0) {
        dup2(p[1], 1);
        close(p[0]);
        close(p[1]);
        execlp("ps", "ps", "--no-headers", "-o", "pid=", "--ppid", me, (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    char buf[4096];
    size_t len = 0;
    ssize_t k;
    while ((k = read(p[0], buf + len, sizeof buf - 1 - len)) > 0) len += (size_t)k;
    close(p[0]);
    buf[len] = 0;
    int st;
    if (waitpid(ps, &st, 0) != ps) die("waitpid ps");
    if (!WIFEXITED(st) || WEXITSTATUS(st) > 1) fail("ps failed (status %d)", st);
    int n = 0;
    for (char *t = strtok(buf, " \n"); t; t = strtok(NULL, " \n"))
        if (atoi(t) != (int)ps) n++;
    return n;
}

/* The dispositions the host reads back: D default (no flags), I ignored, C its own SIGCHLD
 * handler with its own flags, ? anything else. */
static void dispositions(char *out) {
    int sigs[] = {SIGINT, SIGTERM, SIGPIPE, SIGUSR1, SIGHUP, SIGCHLD};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        struct sigaction q;
        if (sigaction(sigs[i], NULL, &q) < 0) die("sigaction query");
        char c = '?';
        if (q.sa_handler == SIG_DFL && q.sa_flags == 0) c = 'D';
        else if (q.sa_handler == SIG_IGN) c = 'I';
        else if (q.sa_handler == on_chld && (q.sa_flags & SA_RESTART)) c = 'C';
        out[i] = c;
    }
    out[sizeof sigs / sizeof sigs[0]] = 0;
}

static const char *wait_result(pid_t r) {
    if (hung) return "hang";
    if (r < 0 && errno == ECHILD) return "ECHILD";
    if (r < 0) return strerror(errno);
    return r == 0 ? "running-child" : "pid";
}

int main(int argc, char **argv) {
    if (argc < 3) fail("usage: hostview PORT BYTES [STAGE]");
    int stage = argc > 3 ? atoi(argv[3]) : 1;
    unsigned short port = (unsigned short)atoi(argv[1]);
    size_t bytes = (size_t)atol(argv[2]);
    start_clock();

    catch_restarting(SIGCHLD, on_chld);

    int fd = connect_v4(port);
    send_filled(fd, bytes, (unsigned)stage);
    if (close(fd) < 0) die("close");
    /* Long enough for a shipper to be started and settled, if there is one. */
    usleep(300 * 1000);

    int kids = kernel_children();
    int got = sigchld;
    pid_t r1 = waitpid(-1, NULL, WNOHANG);
    const char *nohang = wait_result(r1);
    /* No SA_RESTART: the alarm must end a wait() that would block forever. */
    struct sigaction al;
    memset(&al, 0, sizeof al);
    al.sa_handler = on_alarm;
    sigemptyset(&al.sa_mask);
    if (sigaction(SIGALRM, &al, NULL) < 0) die("sigaction SIGALRM");
    alarm(5);
    pid_t r2 = wait(NULL);
    alarm(0);
    const char *blocking = wait_result(r2);
    int ps = ps_children();
    char disp[16];
    dispositions(disp);
    say("stage=%d children=%d ps=%d sigchld=%d waitpid=%s wait=%s signals=%s", stage, kids, ps, got, nohang, blocking, disp);

    if (stage == 1) {
        char *next[] = {argv[0], argv[1], argv[2], "2", NULL};
        extern char **environ;
        execve("/proc/self/exe", next, environ);
        die("execve");
    }
    return 0;
}
