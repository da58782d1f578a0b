/* lazystart PORT MODE: what a process that starts without sockets sees of the shim, and what its
 * first sockets are counted as.
 *
 *   MODE none:    never touches a socket; prints how many memfd regions it holds (the shim's
 *                 shared region is made only for a process that needs it: expect 0).
 *   MODE single:  prints the memfd count, resolves "localhost" (getaddrinfo notes the name
 *                 before any socket exists), then one connection: sends 3000 bytes, reads the
 *                 reply to EOF. Prints what it sent and received.
 *   MODE threads: starts two threads before any socket exists; each makes one connection as
 *                 above (sending 2000 and 5000 bytes), at the same time. Prints the totals.
 *   MODE fork:    one connection (3000 bytes), closed; then forks a child, which prints how
 *                 many memfd regions it holds before touching a socket (it inherited no open
 *                 socket: expect 0), makes one connection (2000 bytes) and exits; the parent
 *                 waits. The child prints "child sent=2000 received=R".
 *   MODE many N:  one connection (3000 bytes), then N children one after the other, each
 *                 making one connection (100 bytes) and calling _exit. Then the parent finds
 *                 its shipper (the process running `sockmeter __ship ... --pid=<parent>`) and
 *                 waits (up to 60 s) until the shipper holds at most one region mapped (its own
 *                 memfd "sockmeter" mappings, from /proc/<shipper>/maps): prints
 *                 "shipper_regions=K", or "shipper=none" when there is no shipper.
 */
#include <sys/wait.h>
#include "common.h"
#include <dirent.h>
#include <netdb.h>
#include <pthread.h>

static int memfds(void) {
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    struct dirent *e;
    char path[64], target[256];
    if (!d) return -1;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
        ssize_t k = readlink(path, target, sizeof target - 1);
        if (k > 0) {
            target[k] = 0;
            /* A region is "/memfd:sockmeter"; the nursery a forking parent keeps for its
             * children ("/memfd:sockmeter-nursery") is not one of the process's own. */
            if (strcmp(target, "/memfd:sockmeter (deleted)") == 0) n++;
        }
    }
    closedir(d);
    return n;
}

static const char *port;
static long sent_total, recv_total;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

static void one(size_t n) {
    struct addrinfo hints = {0}, *ai;
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo("localhost", port, &hints, &ai) != 0) { fprintf(stderr, "getaddrinfo\n"); exit(2); }
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) { perror("connect"); exit(2); }
    freeaddrinfo(ai);
    char buf[4096];
    memset(buf, 'x', sizeof buf);
    size_t left = n;
    long s = 0, r = 0;
    while (left > 0) {
        ssize_t k = send(fd, buf, left < sizeof buf ? left : sizeof buf, 0);
        if (k <= 0) { perror("send"); exit(2); }
        left -= (size_t)k;
        s += k;
    }
    shutdown(fd, SHUT_WR);
    for (;;) {
        ssize_t k = recv(fd, buf, sizeof buf, 0);
        if (k < 0) { perror("recv"); exit(2); }
        if (k == 0) break;
        r += k;
    }
    close(fd);
    pthread_mutex_lock(&mu);
    sent_total += s;
    recv_total += r;
    pthread_mutex_unlock(&mu);
}

static pthread_barrier_t bar;
static void *worker(void *arg) {
    pthread_barrier_wait(&bar);
    one((size_t)(long)arg);
    return NULL;
}

/* The pid of this process's shipper, or 0. */
static pid_t find_shipper(void) {
    char want[64];
    snprintf(want, sizeof want, "--pid=%d", (int)getpid());
    DIR *d = opendir("/proc");
    pid_t found = 0;
    struct dirent *e;
    if (!d) return 0;
    while (!found && (e = readdir(d))) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
        char path[300], cmd[4096];
        snprintf(path, sizeof path, "/proc/%s/cmdline", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        size_t n = fread(cmd, 1, sizeof cmd - 1, f);
        fclose(f);
        int ship = 0, mine = 0;
        for (size_t i = 0; i < n; i += strlen(cmd + i) + 1) {
            cmd[n] = 0;
            if (strcmp(cmd + i, "__ship") == 0) ship = 1;
            if (strcmp(cmd + i, want) == 0) mine = 1;
        }
        if (ship && mine) found = (pid_t)atoi(e->d_name);
    }
    closedir(d);
    return found;
}

/* How many of the shim's regions process `pid` has mapped. */
static int regions_mapped(pid_t pid) {
    char path[64], line[512];
    snprintf(path, sizeof path, "/proc/%d/maps", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    int n = 0;
    while (fgets(line, sizeof line, f))
        if (strstr(line, "/memfd:sockmeter (deleted)")) n++;
    fclose(f);
    return n;
}

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: lazystart PORT none|single|threads|fork|many N\n"); return 2; }
    port = argv[1];
    const char *mode = argv[2];
    alarm(LIFETIME);
    printf("memfds_at_start=%d\n", memfds());
    if (strcmp(mode, "single") == 0) {
        one(3000);
    } else if (strcmp(mode, "fork") == 0) {
        one(3000);
        fflush(stdout);
        pid_t c = fork();
        if (c == 0) {
            sent_total = recv_total = 0;
            printf("child memfds=%d\n", memfds());
            one(2000);
            printf("child sent=%ld received=%ld\n", sent_total, recv_total);
            fflush(stdout);
            _exit(0);
        }
        int st;
        waitpid(c, &st, 0);
    } else if (strcmp(mode, "many") == 0 && argc > 3) {
        one(3000);
        int n = atoi(argv[3]);
        fflush(stdout);
        for (int i = 0; i < n; i++) {
            pid_t c = fork();
            if (c < 0) { perror("fork"); return 2; }
            if (c == 0) {
                one(100);
                _exit(0);
            }
            int st;
            if (waitpid(c, &st, 0) != c || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
                fprintf(stderr, "child %d failed\n", i);
                return 2;
            }
        }
        pid_t sp = find_shipper();
        if (sp == 0) {
            printf("shipper=none\n");
        } else {
            int k = regions_mapped(sp);
            for (int i = 0; i < 6000 && k > 1; i++) {
                usleep(10000);
                k = regions_mapped(sp);
            }
            printf("shipper_regions=%d\n", k);
        }
    } else if (strcmp(mode, "threads") == 0) {
        pthread_t a, b;
        pthread_barrier_init(&bar, NULL, 2);
        pthread_create(&a, NULL, worker, (void *)2000L);
        pthread_create(&b, NULL, worker, (void *)5000L);
        pthread_join(a, NULL);
        pthread_join(b, NULL);
    }
    printf("memfds_at_end=%d\n", memfds());
    printf("sent=%ld received=%ld\n", sent_total, recv_total);
    return 0;
}
