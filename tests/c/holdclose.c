/* Metered client for the "nothing else holds the host's fds" test: a socket made WITHOUT
 * SOCK_CLOEXEC (so a process started by the host would inherit it unless someone took care),
 * 5000 bytes sent, closed; then it waits (bounded) for the unmetered peer to report through
 * FLAGFILE that it saw EOF. Prints "threads <n>" (this process's threads at that moment).
 *
 *   holdclose PORT FLAGFILE     exit 0 when the peer saw EOF, 1 if it never did */
#include "common.h"
#include <dirent.h>
#include <sys/stat.h>

int main(int argc, char **argv) {
    if (argc != 3) fail("usage: holdclose PORT FLAGFILE");
    int fd = connect_v4((unsigned short)atoi(argv[1]));
    static char buf[5000];
    memset(buf, 'x', sizeof buf);
    if (send(fd, buf, sizeof buf, 0) != (ssize_t)sizeof buf) die("send");
    int threads = 0;
    DIR *d = opendir("/proc/self/task");
    if (!d) die("opendir");
    for (struct dirent *e; (e = readdir(d));)
        if (e->d_name[0] != '.') threads++;
    closedir(d);
    if (close(fd) < 0) die("close");
    for (int i = 0; i < 1000; i++) {
        struct stat st;
        if (stat(argv[2], &st) == 0) {
            printf("threads %d\n", threads);
            return 0;
        }
        usleep(10000);
    }
    return 1;
}
