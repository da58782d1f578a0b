/* Workloads "threads", "plugin-threads" and "dlopen": what the shim's pthread_create and
 * dlopen hooks cost (docs/benchmarks.md).
 *   w_threads threads COUNT          the program creates and joins COUNT threads that return at
 *                                    once (the creator's module is the executable: no trampoline)
 *   w_threads plugin-threads COUNT PLUGIN   the same, created by a dlopen'ed plugin (PLUGIN, this
 *                                    file built with -DPLUGIN): the new threads carry its origin
 *   w_threads dlopen COUNT PLUGIN    COUNT times dlopen(PLUGIN, RTLD_NOW) + dlclose (the plugin is
 *                                    unloaded each time, so every dlopen maps it again); also prints
 *                                    what one dl_iterate_phdr pass over the loaded objects costs
 *   w_threads paired WHAT ROUNDS BLOCK PLUGIN   WHAT (threads, plugin-threads, dlopen) in one
 *                                    process, alternating blocks of BLOCK operations through the
 *                                    symbol the program binds to (the interposer's) and straight
 *                                    into libc (dlsym on libc's handle): the per-operation ratio,
 *                                    median over ROUNDS pairs (as w_paired.c does for the data path)
 * Headline: us_per_thread / us_per_dlopen / ratio. */
#include "common.h"
#include <link.h>
#include <pthread.h>

static void *nothing(void *a) { return a; }

typedef int (*create_fn)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);

#ifdef PLUGIN
double spawn_join_via(unsigned long long n, create_fn create);
double spawn_join_via(unsigned long long n, create_fn create) {
#else
static double spawn_join_via(unsigned long long n, create_fn create) {
#endif
    uint64_t t0 = now_ns();
    for (unsigned long long i = 0; i < n; i++) {
        pthread_t t;
        int e = create(&t, NULL, nothing, NULL);
        if (e != 0) { errno = e; die("pthread_create"); }
        pthread_join(t, NULL);
    }
    return (double)(now_ns() - t0) / 1e3 / (double)n;
}

#ifdef PLUGIN
double spawn_join(unsigned long long n);
double spawn_join(unsigned long long n) { return spawn_join_via(n, pthread_create); }
#else
static double spawn_join(unsigned long long n) { return spawn_join_via(n, pthread_create); }
#endif

#ifndef PLUGIN
static int count_one(struct dl_phdr_info *info, size_t size, void *data) {
    (void)info; (void)size;
    ++*(int *)data;
    return 0;
}

typedef void *(*open_fn)(const char *, int);

static double open_close_via(unsigned long long n, const char *path, open_fn open) {
    uint64_t t0 = now_ns();
    for (unsigned long long i = 0; i < n; i++) {
        void *h = open(path, RTLD_NOW);
        if (!h) { fprintf(stderr, "dlopen: %s\n", dlerror()); exit(2); }
        dlclose(h);
    }
    return (double)(now_ns() - t0) / 1e3 / (double)n;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The paired mode (see the header). */
static int paired(const char *what, int rounds, unsigned long long block, const char *plugin) {
    void *libc = dlopen("libc.so.6", RTLD_LAZY | RTLD_NOLOAD);
    if (!libc) { fprintf(stderr, "libc: %s\n", dlerror()); return 2; }
    void *pc_hooked = dlsym(RTLD_DEFAULT, "pthread_create"), *pc_direct = dlsym(libc, "pthread_create");
    void *do_hooked = dlsym(RTLD_DEFAULT, "dlopen"), *do_direct = dlsym(libc, "dlopen");
    double (*via)(unsigned long long, create_fn) = spawn_join_via;
    if (strcmp(what, "plugin-threads") == 0) {
        void *h = dlopen(plugin, RTLD_NOW);
        void *p = h ? dlsym(h, "spawn_join_via") : NULL;
        if (!p) { fprintf(stderr, "plugin: %s\n", dlerror()); return 2; }
        memcpy(&via, &p, sizeof via);
    }
    double ratios[64], a_sum = 0, b_sum = 0;
    if (rounds > 64) rounds = 64;
    for (int r = 0; r < rounds; r++) {
        double a = 0, b = 0;
        for (int k = 0; k < 2; k++) {
            int hooked_first = (r + k) % 2 == 0;
            for (int side = 0; side < 2; side++) {
                int hooked = side == 0 ? hooked_first : !hooked_first;
                double us;
                if (strcmp(what, "dlopen") == 0) {
                    open_fn f;
                    memcpy(&f, hooked ? &do_hooked : &do_direct, sizeof f);
                    us = open_close_via(block, plugin, f);
                } else {
                    create_fn f;
                    memcpy(&f, hooked ? &pc_hooked : &pc_direct, sizeof f);
                    us = via(block, f);
                }
                if (hooked) a += us; else b += us;
            }
        }
        ratios[r] = a / b;
        a_sum += a / 2;
        b_sum += b / 2;
    }
    qsort(ratios, (size_t)rounds, sizeof ratios[0], cmp_double);
    printf("RESULT %s-paired ratio=%.4f hooked_us=%.3f direct_us=%.3f rounds=%d block=%llu tx=0 rx=0 interposer=%s\n",
           what, ratios[rounds / 2], a_sum / rounds, b_sum / rounds, rounds, block, interposer());
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 6 && strcmp(argv[1], "paired") == 0)
        return paired(argv[2], atoi(argv[3]), strtoull(argv[4], NULL, 0), argv[5]);
    if (argc < 3) { fprintf(stderr, "usage: w_threads threads|plugin-threads|dlopen COUNT [PLUGIN]\n"); return 2; }
    unsigned long long n = strtoull(argv[2], NULL, 0);
    if (strcmp(argv[1], "threads") == 0) {
        printf("RESULT threads us_per_thread=%.3f threads=%llu tx=0 rx=0 interposer=%s\n", spawn_join(n), n, interposer());
        return 0;
    }
    if (argc < 4) { fprintf(stderr, "w_threads: PLUGIN needed\n"); return 2; }
    if (strcmp(argv[1], "plugin-threads") == 0) {
        void *h = dlopen(argv[3], RTLD_NOW);
        if (!h) { fprintf(stderr, "dlopen: %s\n", dlerror()); return 2; }
        double (*f)(unsigned long long);
        void *p = dlsym(h, "spawn_join");
        memcpy(&f, &p, sizeof f);
        printf("RESULT plugin-threads us_per_thread=%.3f threads=%llu tx=0 rx=0 interposer=%s\n", f(n), n, interposer());
        return 0;
    }
    uint64_t t0 = now_ns();
    for (unsigned long long i = 0; i < n; i++) {
        void *h = dlopen(argv[3], RTLD_NOW);
        if (!h) { fprintf(stderr, "dlopen: %s\n", dlerror()); return 2; }
        dlclose(h);
    }
    double us = (double)(now_ns() - t0) / 1e3 / (double)n;
    int objects = 0;
    uint64_t w0 = now_ns();
    for (int i = 0; i < 1000; i++) dl_iterate_phdr(count_one, &objects);
    double walk_us = (double)(now_ns() - w0) / 1e3 / 1000.0;
    printf("RESULT dlopen us_per_dlopen=%.3f opens=%llu phdr_walk_us=%.3f objects=%d tx=0 rx=0 interposer=%s\n",
           us, n, walk_us, objects / 1000, interposer());
    return 0;
}
#endif
