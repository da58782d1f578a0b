/*
 * weather.c - the `weather` example plugin: fetches a URL through libcurl.
 *
 *     cc -shared -fPIC -O2 -Wall -o libweather_plugin.so weather.c -lcurl
 *
 * (needs libcurl's headers: apt-get install libcurl4-openssl-dev). It exports the examples'
 * C ABI:
 *
 *     int plugin_run(const char *url, char *err, size_t errlen);
 *
 * which GETs `url` (e.g. http://127.0.0.1:PORT/weather) and returns the number of body bytes
 * received, or -1 with a message in `err`. Every wait is bounded (30 s), proxies from the
 * environment are ignored (the examples talk to 127.0.0.1 only), and nothing here knows
 * about sockmeter: the socket is opened by libcurl, yet sockmeter charges this plugin for it
 * (and names libcurl as `via`).
 */
#include <stdio.h>
#include <string.h>

#include <curl/curl.h>

static size_t count_body(char *data, size_t size, size_t nmemb, void *user)
{
    (void)data;
    *(size_t *)user += size * nmemb;
    return size * nmemb;
}

static void set_err(char *err, size_t errlen, const char *what, const char *detail)
{
    if (err && errlen > 0)
        snprintf(err, errlen, "%s%s%s", what, detail && *detail ? ": " : "", detail ? detail : "");
}

int plugin_run(const char *url, char *err, size_t errlen)
{
    static int global_ok = 0;
    char curl_err[CURL_ERROR_SIZE] = "";
    size_t body = 0;
    long status = 0;
    CURLcode rc;
    CURL *c;

    if (!url) {
        set_err(err, errlen, "url is NULL", NULL);
        return -1;
    }
    /* The hosts call plugins from one thread; curl_global_init once is enough. */
    if (!global_ok) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
            set_err(err, errlen, "curl_global_init failed", NULL);
            return -1;
        }
        global_ok = 1;
    }
    c = curl_easy_init();
    if (!c) {
        set_err(err, errlen, "curl_easy_init failed", NULL);
        return -1;
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(c, CURLOPT_FORBID_REUSE, 1L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "sockmeter-weather-plugin/0.1");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, count_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, curl_err);
    rc = curl_easy_perform(c);
    if (rc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    if (rc != CURLE_OK) {
        set_err(err, errlen, curl_easy_strerror(rc), curl_err);
        return -1;
    }
    if (status != 200) {
        char s[32];
        snprintf(s, sizeof s, "%ld", status);
        set_err(err, errlen, "HTTP status", s);
        return -1;
    }
    return body > 0x7fffffff ? 0x7fffffff : (int)body;
}
