/* cf_client PORT MSGS SIZE create|signature: a CoreFoundation host that talks to an echo peer
 * through a CFSocket on its run loop (cf_common.h), then prints CoreFoundation's results. */
#include "cf_common.h"

#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: cf_client PORT MSGS SIZE create|signature\n");
        return 2;
    }
    alarm(90);
    struct cf_exchange x = {atoi(argv[1]), atoi(argv[2]), atoi(argv[3]), 0, 0, 0, 0, 0, 0, 0};
    int rc = cf_exchange_run(&x, argv[4]);
    cf_exchange_print(&x, stdout);
    return rc;
}
