/* A program that gives up root before its first socket (a daemon dropping privileges), for
 * tests/e2e/faults.rs.
 *
 *   dropuid PORT UID BYTES [EXEC...]
 *
 * Runs as root: clears its groups, sets its gid and uid to UID, then connects to
 * 127.0.0.1:PORT, sends BYTES bytes, reads the reply to EOF and closes. With EXEC..., it
 * instead execs EXEC... after dropping (a new image, started as UID). Already running as UID,
 * it changes nothing. */
#include "common.h"

#include <grp.h>

int main(int argc, char **argv) {
    if (argc < 4) fail("usage: dropuid PORT UID BYTES [EXEC...]");
    unsigned short port = (unsigned short)atoi(argv[1]);
    uid_t uid = (uid_t)atoi(argv[2]);
    size_t bytes = (size_t)atol(argv[3]);
    start_clock();
    if (getuid() != uid) {
        if (setgroups(0, NULL) < 0) die("setgroups");
        if (setgid(uid) < 0) die("setgid");
        if (setuid(uid) < 0) die("setuid");
    }
    if (getuid() != uid || geteuid() != uid) fail("still privileged");
    if (argc > 4) {
        execvp(argv[4], argv + 4);
        die("execvp");
    }
    int fd = connect_v4(port);
    send_filled(fd, bytes, 5);
    if (shutdown(fd, SHUT_WR) < 0) die("shutdown");
    char buf[4096];
    while (recv(fd, buf, sizeof buf, 0) > 0) {
    }
    close(fd);
    say("uid=%d", (int)getuid());
    return 0;
}
