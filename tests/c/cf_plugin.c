/* A plugin that talks through a CFSocket (cf_common.h); its host (cf_plugin_host.c) dlopens
 * it. Built with -shared -fPIC against CoreFoundation. */
#include "cf_common.h"

int cf_plugin_run(int port, int msgs, int size, const char *how) {
    struct cf_exchange x = {port, msgs, size, 0, 0, 0, 0, 0, 0, 0};
    int rc = cf_exchange_run(&x, how);
    cf_exchange_print(&x, stdout);
    fflush(stdout);
    return rc;
}
