/* Workloads "threads", "plugin-threads" and "dlopen": what the shim's pthread_create and
 * dlopen hooks cost (docs/benchmarks.md).
 *   w_threads threads COUNT          the program creates and joins COUNT threads that return at
 *                                    once (the creator's module is the executable: no trampoline)
 *   w_threads plugin-threads COUNT PLUGIN   the same, created by a dlopen'ed plugin (PLUGIN, this
 *                                    file built with -DPLUGIN): the new threads carry its origin
 *   w_threads dlopen COUNT PLUGIN    COUNT times dlopen(PLUGIN, RTLD_NOW) + dlclose (the plugin is
 *                                    unloaded each time, so every dlopen maps it again); also prints
 *                                    what one dl_iterate_phdr pass over the loaded objects costs
 * Headline: us_per_thread / us_per_dlopen. */
#include "common.h"
#include <link.h>
#include <pthread.h>

static void *nothing(void *a) { return a; }

#ifdef PLUGIN
double spawn_join(unsigned long long n);
double spawn_join(unsigned long long n) {
#else
static double spawn_join(unsigned long long n) {
#endif
    uint64_t t0 = now_ns();
    for (unsigned long long i = 0; i < n; i++) {
        pthread_t t;
        int e = pthread_create(&t, NULL, nothing, NULL);
        if (e != 0) { errno = e; die("pthread_create"); }
        pthread_join(t, NULL);
    }
    return (double)(now_ns() - t0) / 1e3 / (double)n;
}

#ifndef PLUGIN
static int count_one(struct dl_phdr_info *info, size_t size, void *data) {
    (void)info; (void)size;
    ++*(int *)data;
    return 0;
}

int main(int argc, char **argv) {
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
