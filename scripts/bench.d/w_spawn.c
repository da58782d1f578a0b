/* Workload "spawn": a process that starts many short programs (a shell script, a build), none
 * of which touches a socket: COUNT times posix_spawn(PROGRAM) and wait (PROGRAM: /bin/true, or
 * the program and arguments given; "spawn:grep" runs GNU grep on a file, a real tool that
 * opens, reads and installs a fault handler).  Under a preload every child loads the
 * interposer, so this prices what sockmeter costs a process that has nothing to meter:
 * loading it, its constructor, its exit.
 * Headline: us_per_spawn.
 *   usage: w_spawn COUNT [PROGRAM [ARG...]] */
#include "common.h"
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>

extern char **environ;

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: w_spawn COUNT [PROGRAM [ARG...]]\n"); return 2; }
    unsigned long long count = strtoull(argv[1], NULL, 0);
    char *dflt[] = { "/bin/true", NULL };
    char **args = argc > 2 ? argv + 2 : dflt;
    /* A given program's output goes to /dev/null (/bin/true's row is as it always was). */
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    if (argc > 2) {
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull < 0) die("open /dev/null");
        posix_spawn_file_actions_adddup2(&fa, devnull, 1);
    }
    uint64_t t0 = now_ns();
    for (unsigned long long i = 0; i < count; i++) {
        pid_t pid;
        int e = posix_spawn(&pid, args[0], argc > 2 ? &fa : NULL, NULL, args, environ);
        if (e != 0) { errno = e; die("posix_spawn"); }
        int st;
        if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            fprintf(stderr, "workload: %s failed\n", args[0]);
            return 2;
        }
    }
    uint64_t t1 = now_ns();
    printf("RESULT spawn us_per_spawn=%.2f spawns=%llu tx=0 rx=0 interposer=%s\n",
           (double)(t1 - t0) / 1e3 / (double)count, count, interposer());
    return 0;
}
