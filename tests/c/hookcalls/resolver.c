/* hookcalls: the name lookups (see tests/c/hookcalls.c). */
#include "hookcalls.h"

/* The resolver's entry points (the shim only reads their answers): found, and failing without
 * a lookup (a bad family, a numeric-only flag for a name, a buffer too small, a bad mode). */
void resolver(void) {
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    CALL("getaddrinfo localhost", getaddrinfo("localhost", NULL, &hints, &res));
    if (res) freeaddrinfo(res);
    hints.ai_flags = AI_NUMERICHOST;
    CALL("getaddrinfo EAI_NONAME", getaddrinfo("localhost", NULL, &hints, &res));
    hints.ai_flags = 0;
    hints.ai_family = 12345;
    CALL("getaddrinfo EAI_FAMILY", getaddrinfo("localhost", NULL, &hints, &res));
    hints.ai_family = AF_INET;
    CALL("gethostbyname localhost", gethostbyname("localhost") != NULL);
    CALL("gethostbyname2 localhost", gethostbyname2("localhost", AF_INET) != NULL);
    CALL("gethostbyname2 EAFNOSUPPORT", gethostbyname2("localhost", AF_UNIX) != NULL);
    struct hostent h, *out = NULL;
    char space[4096], tiny[4];
    int herr = 0;
    CALL("gethostbyname_r localhost", gethostbyname_r("localhost", &h, space, sizeof space, &out, &herr));
    CALL("gethostbyname_r ERANGE", gethostbyname_r("localhost", &h, tiny, sizeof tiny, &out, &herr));
    CALL("gethostbyname2_r localhost", gethostbyname2_r("localhost", AF_INET, &h, space, sizeof space, &out, &herr));
    CALL("gethostbyname2_r ERANGE", gethostbyname2_r("localhost", AF_INET, &h, tiny, sizeof tiny, &out, &herr));
    struct gaicb req;
    memset(&req, 0, sizeof req);
    req.ar_name = "localhost";
    req.ar_request = &hints;
    struct gaicb *list[1] = {&req};
    CALL("getaddrinfo_a GAI_WAIT", getaddrinfo_a(GAI_WAIT, list, 1, NULL));
    CALL("gai_error done", gai_error(&req));
    if (req.ar_result) freeaddrinfo(req.ar_result);
    CALL("getaddrinfo_a EINVAL", getaddrinfo_a(12345, list, 1, NULL));
}
