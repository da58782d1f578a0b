/* One send too big for the socket's buffers, to a peer that does not read yet: the test kills
 * it (SIGINT) while it is blocked in that call (tests/e2e/faults.rs).
 *
 *   bigsend PORT SIZE PORTFILE
 *
 * Connects to 127.0.0.1:PORT, writes its local port to PORTFILE, then sends SIZE bytes in one
 * send(), with every signal at its default disposition. */
#include "common.h"

int main(int argc, char **argv) {
    if (argc != 4) fail("usage: bigsend PORT SIZE PORTFILE");
    size_t size = strtoul(argv[2], NULL, 10);
    char *buf = malloc(size);
    if (!buf) die("malloc");
    fill(buf, size, 5);
    int fd = connect_v4((unsigned short)atoi(argv[1]));
    char port[16];
    int n = snprintf(port, sizeof port, "%u", local_port(fd));
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", argv[3]);
    FILE *f = fopen(tmp, "w");
    if (!f || fwrite(port, 1, (size_t)n, f) != (size_t)n || fclose(f) != 0 || rename(tmp, argv[3]) != 0)
        die("portfile");
    ssize_t w = send(fd, buf, size, 0);
    say("sent %zd", w);
    return 0;
}
