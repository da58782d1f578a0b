/* A minimal plugin host (tests/e2e/origins.rs): plugin_host PLUGIN PORT loads PLUGIN with
 * dlopen and calls its `int run(int port)`; exits with run's result. The host itself makes no
 * socket, so every socket of the run is the plugin's doing. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
    alarm(90);
    if (argc != 3) {
        fprintf(stderr, "usage: plugin_host PLUGIN PORT\n");
        return 2;
    }
    void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        fprintf(stderr, "dlopen: %s\n", dlerror());
        return 2;
    }
    int (*run)(int);
    void *p = dlsym(h, "run");
    if (!p) {
        fprintf(stderr, "dlsym run: %s\n", dlerror());
        return 2;
    }
    memcpy(&run, &p, sizeof run);
    return run(atoi(argv[2]));
}
