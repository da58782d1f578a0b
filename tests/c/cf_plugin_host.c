/* cf_plugin_host PLUGIN CF_PORT BSD_PORT MSGS SIZE: a host that dlopens a plugin which makes its
 * own CFSocket (cf_plugin.c) and talks to an echo peer on CF_PORT, while the host itself talks
 * to another echo peer on BSD_PORT with plain send/recv, MSGS messages of SIZE bytes each way.
 * The host does not link CoreFoundation: only the plugin brings it in. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dlfcn.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int bsd_echo(int port, int msgs, int size) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {0};
    sin.sin_family = AF_INET;
    sin.sin_port = htons((unsigned short)port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sin, sizeof sin) != 0)
        return -1;
    char *buf = malloc((size_t)size);
    long got = 0;
    for (int m = 0; m < msgs; m++) {
        memset(buf, 'A' + m % 26, (size_t)size);
        if (send(fd, buf, (size_t)size, 0) != size)
            return -1;
        for (int have = 0; have < size;) {
            ssize_t n = recv(fd, buf, (size_t)(size - have), 0);
            if (n <= 0)
                return -1;
            have += (int)n;
            got += n;
        }
    }
    free(buf);
    close(fd);
    return (int)got;
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: cf_plugin_host PLUGIN CF_PORT BSD_PORT MSGS SIZE\n");
        return 2;
    }
    alarm(90);
    int msgs = atoi(argv[4]), size = atoi(argv[5]);
    void *h = dlopen(argv[1], RTLD_NOW);
    if (!h) {
        fprintf(stderr, "dlopen: %s\n", dlerror());
        return 2;
    }
    int (*run)(int, int, int, const char *) = (int (*)(int, int, int, const char *))dlsym(h, "cf_plugin_run");
    if (!run)
        return 2;
    int rc = run(atoi(argv[2]), msgs, size, "create");
    int host = bsd_echo(atoi(argv[3]), msgs, size);
    printf("host received %d\n", host);
    return rc != 0 || host != msgs * size;
}
