/* Looks "localhost" up with one of the resolver entry points the shim hooks, connects to the
 * IPv4 address it returned (with PORT) and sends a number of bytes that tells the entry points
 * apart. With "none" it looks nothing up and connects to 127.0.0.1 itself. The lookups are
 * real: glibc's NSS reads /etc/hosts, no network is needed. (One entry point per process:
 * the shim knows an address by the name it was last looked up by, in this process.)
 *
 *   resolve PORT getaddrinfo|gethostbyname|gethostbyname2|gethostbyname_r|gethostbyname2_r|
 *                getaddrinfo_a-wait|getaddrinfo_a-nowait|none
 *
 * Line: "via <entry point> port <local port> sent <bytes>".
 */
#include "common.h"
#include <netdb.h>

static char buf[1 << 16];

/* Connects to `a` (its port set to `port`), sends `n` bytes, closes; prints the line. */
static void talk(const char *via, struct sockaddr_in a, unsigned short port, size_t n) {
    if (a.sin_family != AF_INET || a.sin_addr.s_addr != htonl(INADDR_LOOPBACK))
        fail("%s: localhost is not 127.0.0.1 here", via);
    a.sin_port = htons(port);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) die("socket");
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) die("connect");
    fill(buf, n, 7);
    size_t done = 0;
    while (done < n) {
        ssize_t w = send(fd, buf + done, n - done, 0);
        if (w < 0) die("send");
        done += (size_t)w;
    }
    say("via %s port %u sent %zu", via, local_port(fd), n);
    close(fd);
}

static struct sockaddr_in from_addrinfo(const char *via, struct addrinfo *res) {
    for (struct addrinfo *r = res; r; r = r->ai_next)
        if (r->ai_family == AF_INET) {
            struct sockaddr_in a;
            memcpy(&a, r->ai_addr, sizeof a);
            return a;
        }
    fail("%s: no IPv4 answer", via);
    return lo4(0);
}

static struct sockaddr_in from_hostent(const char *via, struct hostent *h) {
    if (!h || h->h_addrtype != AF_INET || !h->h_addr_list[0]) fail("%s: no IPv4 answer", via);
    struct sockaddr_in a = lo4(0);
    memcpy(&a.sin_addr, h->h_addr_list[0], 4);
    return a;
}

int main(int argc, char **argv) {
    start_clock();
    if (argc != 3) fail("usage: resolve PORT ENTRY-POINT");
    unsigned short port = (unsigned short)atoi(argv[1]);
    const char *via = argv[2];
#define IS(name) (!strcmp(via, name))
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    struct hostent h, *out = NULL;
    char space[4096];
    int herr = 0;
    if (IS("getaddrinfo")) {
        struct addrinfo *res = NULL;
        if (getaddrinfo("localhost", NULL, &hints, &res) != 0) fail("getaddrinfo");
        talk(via, from_addrinfo(via, res), port, 1001);
        freeaddrinfo(res);
    } else if (IS("gethostbyname")) {
        talk(via, from_hostent(via, gethostbyname("localhost")), port, 1002);
    } else if (IS("gethostbyname2")) {
        talk(via, from_hostent(via, gethostbyname2("localhost", AF_INET)), port, 1003);
    } else if (IS("gethostbyname_r")) {
        if (gethostbyname_r("localhost", &h, space, sizeof space, &out, &herr) != 0) fail("gethostbyname_r");
        talk(via, from_hostent(via, out), port, 1004);
    } else if (IS("gethostbyname2_r")) {
        if (gethostbyname2_r("localhost", AF_INET, &h, space, sizeof space, &out, &herr) != 0)
            fail("gethostbyname2_r");
        talk(via, from_hostent(via, out), port, 1005);
    } else if (IS("getaddrinfo_a-wait")) {
        struct gaicb req;
        memset(&req, 0, sizeof req);
        req.ar_name = "localhost";
        req.ar_request = &hints;
        struct gaicb *list[1] = {&req};
        if (getaddrinfo_a(GAI_WAIT, list, 1, NULL) != 0 || gai_error(&req) != 0) fail("getaddrinfo_a GAI_WAIT");
        talk(via, from_addrinfo(via, req.ar_result), port, 1006);
        freeaddrinfo(req.ar_result);
    } else if (IS("getaddrinfo_a-nowait")) {
        /* Asynchronous: the answer is read once gai_error says the request is done. */
        struct gaicb req;
        memset(&req, 0, sizeof req);
        req.ar_name = "localhost";
        req.ar_request = &hints;
        struct gaicb *list[1] = {&req};
        if (getaddrinfo_a(GAI_NOWAIT, list, 1, NULL) != 0) fail("getaddrinfo_a GAI_NOWAIT");
        const struct gaicb *pending[1] = {&req};
        int e;
        while ((e = gai_error(&req)) == EAI_INPROGRESS) gai_suspend(pending, 1, NULL);
        if (e != 0) fail("getaddrinfo_a GAI_NOWAIT: %s", gai_strerror(e));
        talk(via, from_addrinfo(via, req.ar_result), port, 1007);
        freeaddrinfo(req.ar_result);
    } else if (IS("none")) {
        talk(via, lo4(0), port, 1008);
    } else {
        fail("unknown entry point %s", via);
    }
    return 0;
}
