/* selftest_unwind: run with the shim preloaded; asks the shim to raise and catch a panic inside
 * itself (sockmeter_selftest_unwind, not part of the API) and prints whether it was caught. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>

int main(void) {
    int (*f)(void) = (int (*)(void))dlsym(RTLD_DEFAULT, "sockmeter_selftest_unwind");
    if (!f) {
        printf("no shim\n");
        return 1;
    }
    printf("caught=%d\n", f());
    return 0;
}
