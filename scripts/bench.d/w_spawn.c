/* Workload "spawn": a process that starts many short programs (a shell script, a build), none
 * of which touches a socket: COUNT times posix_spawn("/bin/true") and wait.  Under a preload
 * every child loads the interposer, so this prices what the shim costs a process that has
 * nothing to meter: loading it, its constructor, its exit.
 * Headline: us_per_spawn.
 *   usage: w_spawn COUNT */
#include "common.h"
#include <spawn.h>
#include <sys/wait.h>

extern char **environ;

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: w_spawn COUNT\n"); return 2; }
    unsigned long long count = strtoull(argv[1], NULL, 0);
    char *args[] = { "/bin/true", NULL };
    uint64_t t0 = now_ns();
    for (unsigned long long i = 0; i < count; i++) {
        pid_t pid;
        int e = posix_spawn(&pid, "/bin/true", NULL, NULL, args, environ);
        if (e != 0) { errno = e; die("posix_spawn"); }
        int st;
        if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            fprintf(stderr, "workload: /bin/true failed\n");
            return 2;
        }
    }
    uint64_t t1 = now_ns();
    printf("RESULT spawn us_per_spawn=%.2f spawns=%llu tx=0 rx=0 interposer=%s\n",
           (double)(t1 - t0) / 1e3 / (double)count, count, interposer());
    return 0;
}
