/* A plugin whose network work runs on threads it starts (tests/e2e/origins.rs), built with
 * -shared -fPIC -lcurl and loaded by plugin_host.c with dlopen.
 *
 * run(port) fetches http://127.0.0.1:port/ twice, each on a thread whose stack holds no code
 * of this plugin when the socket opens: the threads' start routine is libcurl's own
 * curl_easy_perform (found with dlsym), as a library's worker thread would run only library
 * code. Thread A is started by run() itself; thread C by thread B, a thread of the plugin's
 * that ends with pthread_exit (a forced unwind through whatever frames sit under it). Both
 * sockets must be charged to this plugin: the module that created the thread (or the thread
 * that created it). Returns 0 when both transfers succeeded. */
#define _GNU_SOURCE
#include <curl/curl.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

typedef void *(*start_fn)(void *);

static size_t discard(char *p, size_t size, size_t n, void *user) {
    (void)p;
    *(size_t *)user += size * n;
    return size * n;
}

static size_t got[2];
static CURL *handles[2];

static CURL *request(int port, size_t *counter) {
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/thread", port);
    CURL *h = curl_easy_init();
    if (!h) return NULL;
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, counter);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 30L);
    return h;
}

/* libcurl's curl_easy_perform as a thread's start routine: CURL * in, CURLcode out (read back
 * with curl_easy_getinfo, not from the thread's return value). */
static start_fn libcurl_start(void) {
    start_fn f;
    void *p = dlsym(RTLD_DEFAULT, "curl_easy_perform");
    memcpy(&f, &p, sizeof f);
    return f;
}

static void *thread_b(void *h) {
    pthread_t c;
    if (pthread_create(&c, NULL, libcurl_start(), h) != 0) pthread_exit((void *)1);
    pthread_join(c, NULL);
    pthread_exit(NULL);
}

int run(int port) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    handles[0] = request(port, &got[0]);
    handles[1] = request(port, &got[1]);
    if (!handles[0] || !handles[1] || !libcurl_start()) return 1;
    pthread_t a, b;
    if (pthread_create(&a, NULL, libcurl_start(), handles[0]) != 0) return 2;
    pthread_join(a, NULL);
    if (pthread_create(&b, NULL, thread_b, handles[1]) != 0) return 3;
    void *rb = (void *)1;
    pthread_join(b, &rb);
    if (rb != NULL) return 4;
    for (int i = 0; i < 2; i++) {
        long code = 0;
        curl_easy_getinfo(handles[i], CURLINFO_RESPONSE_CODE, &code);
        printf("transfer %d: HTTP %ld, %zu body bytes\n", i, code, got[i]);
        if (code != 200) return 5;
        curl_easy_cleanup(handles[i]);
    }
    fflush(stdout);
    return 0;
}
