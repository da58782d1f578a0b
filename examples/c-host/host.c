/*
 * host.c - a C program that meters its own plugins with sockmeter's embedding API.
 *
 * Build (from the repository root, after `cargo build --workspace`):
 *
 *     cc -O2 -Wall -Iinclude -o c-host examples/c-host/host.c \
 *        -Ltarget/debug -lsockmeter_shim -Wl,-rpath,$PWD/target/debug -ldl
 *
 * The shim is linked ahead of libc (no LD_PRELOAD), so every socket call of every library
 * and plugin in this process goes through it. Built with -DSOCKMETER_HOST_DLSYM instead (and
 * without -lsockmeter_shim), the host finds the same API with dlsym at run time, which works
 * when it runs under `sockmeter run` (LD_PRELOAD).
 *
 * Run:
 *
 *     c-host [--deepbind] [--json FILE] --port PORT --weather libweather_plugin.so \
 *            --stocks libstocks_plugin.so
 *
 * It dlopens both plugins (the weather one with RTLD_DEEPBIND under --deepbind), subscribes a
 * callback that counts the shim's events, runs each plugin under its label against the
 * loopback server on 127.0.0.1:PORT (examples/server), and prints what the shim charged to
 * each module and label. --json FILE also writes the snapshot (sockmeter_snapshot_json) there.
 * Exit status: 0 when both plugins ran and the snapshot was read, 1 otherwise, 2 on usage.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sockmeter.h"

typedef int (*plugin_run_fn)(const char *url, char *err, size_t errlen);

/* ---- the embedding API: linked directly, or looked up at run time ---------------------- */

struct api {
    char *(*snapshot_json)(void);
    void (*string_free)(char *);
    void (*label_push)(const char *);
    void (*label_pop)(void);
    uint64_t (*subscribe)(sockmeter_event_fn, void *);
    int (*unsubscribe)(uint64_t);
    void (*flush)(void);
};

static int load_api(struct api *a)
{
#ifdef SOCKMETER_HOST_DLSYM
    a->snapshot_json = (char *(*)(void))dlsym(RTLD_DEFAULT, "sockmeter_snapshot_json");
    a->string_free = (void (*)(char *))dlsym(RTLD_DEFAULT, "sockmeter_string_free");
    a->label_push = (void (*)(const char *))dlsym(RTLD_DEFAULT, "sockmeter_label_push");
    a->label_pop = (void (*)(void))dlsym(RTLD_DEFAULT, "sockmeter_label_pop");
    a->subscribe = (uint64_t(*)(sockmeter_event_fn, void *))dlsym(RTLD_DEFAULT, "sockmeter_subscribe");
    a->unsubscribe = (int (*)(uint64_t))dlsym(RTLD_DEFAULT, "sockmeter_unsubscribe");
    a->flush = (void (*)(void))dlsym(RTLD_DEFAULT, "sockmeter_flush");
#else
    a->snapshot_json = sockmeter_snapshot_json;
    a->string_free = sockmeter_string_free;
    a->label_push = sockmeter_label_push;
    a->label_pop = sockmeter_label_pop;
    a->subscribe = sockmeter_subscribe;
    a->unsubscribe = sockmeter_unsubscribe;
    a->flush = sockmeter_flush;
#endif
    return a->snapshot_json && a->string_free && a->label_push && a->label_pop && a->subscribe &&
           a->unsubscribe && a->flush;
}

/* ---- the event subscriber --------------------------------------------------------------- */

struct event_counts {
    atomic_ulong all, socket, delta, closed, notice;
};

static int on_event(const char *line, size_t len, void *user)
{
    struct event_counts *c = user;
    (void)len;
    atomic_fetch_add(&c->all, 1);
    if (strstr(line, "\"type\":\"socket\"")) {
        atomic_fetch_add(&c->socket, 1);
        /* a socket that opened and closed between two passes comes as one line */
        if (strstr(line, "\"closed_at\":"))
            atomic_fetch_add(&c->closed, 1);
    } else if (strstr(line, "\"type\":\"delta\""))
        atomic_fetch_add(&c->delta, 1);
    else if (strstr(line, "\"type\":\"closed\""))
        atomic_fetch_add(&c->closed, 1);
    else if (strstr(line, "\"type\":\"notice\""))
        atomic_fetch_add(&c->notice, 1);
    return 0;
}

/* ---- a minimal JSON reader, enough for the snapshot ------------------------------------- */

static const char *ws(const char *p)
{
    while (p && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
        p++;
    return p;
}

/* p at '"': returns the character after the closing quote (NULL if unterminated). */
static const char *skip_string(const char *p)
{
    for (p++; *p; p++) {
        if (*p == '\\' && p[1])
            p++;
        else if (*p == '"')
            return p + 1;
    }
    return NULL;
}

/* Skips one value (string, number, literal, object or array). */
static const char *skip_value(const char *p)
{
    int depth = 0;
    p = ws(p);
    if (!p || !*p)
        return NULL;
    if (*p == '"')
        return skip_string(p);
    if (*p != '{' && *p != '[') {
        while (*p && *p != ',' && *p != '}' && *p != ']' && *p != ' ' && *p != '\n')
            p++;
        return p;
    }
    for (; *p; p++) {
        if (*p == '"') {
            p = skip_string(p);
            if (!p)
                return NULL;
            p--;
        } else if (*p == '{' || *p == '[') {
            depth++;
        } else if (*p == '}' || *p == ']') {
            if (--depth == 0)
                return p + 1;
        }
    }
    return NULL;
}

/* obj at '{': the value of member `key`, or NULL. */
static const char *member(const char *obj, const char *key)
{
    size_t klen = strlen(key);
    const char *p = ws(obj);
    if (!p || *p != '{')
        return NULL;
    p = ws(p + 1);
    while (p && *p == '"') {
        const char *k = p + 1, *end = skip_string(p);
        if (!end)
            return NULL;
        p = ws(end);
        if (*p != ':')
            return NULL;
        p = ws(p + 1);
        if ((size_t)(end - 1 - k) == klen && memcmp(k, key, klen) == 0)
            return p;
        p = ws(skip_value(p));
        if (p && *p == ',')
            p = ws(p + 1);
    }
    return NULL;
}

/* Copies a string value (simple escapes undone); "-" for null or a missing value. */
static void string_at(const char *v, char *out, size_t n)
{
    size_t i = 0;
    if (!v || *v != '"') {
        snprintf(out, n, "-");
        return;
    }
    for (v++; *v && *v != '"' && i + 1 < n; v++) {
        if (*v == '\\' && v[1])
            v++;
        out[i++] = *v;
    }
    out[i] = 0;
}

static unsigned long long number_at(const char *obj, const char *key)
{
    const char *v = member(obj, key);
    return v ? strtoull(v, NULL, 10) : 0;
}

/* Calls f(element) for each element of the array member `key` of `obj`. */
static void each(const char *obj, const char *key, void (*f)(const char *, void *), void *user)
{
    const char *p = member(obj, key);
    if (!p || *p != '[')
        return;
    p = ws(p + 1);
    while (p && *p && *p != ']') {
        f(p, user);
        p = ws(skip_value(p));
        if (p && *p == ',')
            p = ws(p + 1);
    }
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* ---- the table -------------------------------------------------------------------------- */

static void print_module(const char *m, void *unused)
{
    char name[4096];
    (void)unused;
    string_at(member(m, "module"), name, sizeof name);
    printf("  %-34s %10llu %10llu %6llu\n", base_name(name), number_at(m, "tx_bytes"),
           number_at(m, "rx_bytes"), number_at(m, "connections"));
}

static void print_label(const char *l, void *unused)
{
    char name[256];
    (void)unused;
    string_at(member(l, "label"), name, sizeof name);
    printf("  %-34s %10llu %10llu %6llu\n", name, number_at(l, "tx_bytes"), number_at(l, "rx_bytes"),
           number_at(l, "connections"));
}

static void print_socket(const char *s, void *unused)
{
    char module[4096], via[4096], label[256], peer[128], family[16];
    (void)unused;
    string_at(member(s, "family"), family, sizeof family);
    if (strcmp(family, "inet") != 0 && strcmp(family, "inet6") != 0)
        return;
    string_at(member(s, "module"), module, sizeof module);
    string_at(member(s, "via"), via, sizeof via);
    string_at(member(s, "label"), label, sizeof label);
    string_at(member(s, "peer"), peer, sizeof peer);
    printf("  %-24s %-22s %-8s %-16s %8llu %8llu\n", base_name(module), base_name(via), label, peer,
           number_at(s, "tx_bytes"), number_at(s, "rx_bytes"));
}

static void print_notice(const char *n, void *unused)
{
    char text[2048];
    (void)unused;
    string_at(n, text, sizeof text);
    printf("  notice: %s\n", text);
}

static void print_report(const char *snap, const struct event_counts *ev)
{
    const char *totals = member(snap, "totals");
    printf("per module                               sent   received  conns\n");
    each(snap, "modules", print_module, NULL);
    printf("per label\n");
    each(snap, "labels", print_label, NULL);
    if (totals)
        printf("  %-34s %10llu %10llu %6llu\n", "(process total)", number_at(totals, "tx_bytes"),
               number_at(totals, "rx_bytes"), number_at(totals, "connections"));
    printf("sockets\n  %-24s %-22s %-8s %-16s %8s %8s\n", "module", "via", "label", "peer", "sent",
           "received");
    each(snap, "sockets", print_socket, NULL);
    each(snap, "notices", print_notice, NULL);
    printf("events seen by the subscriber: %lu (socket %lu, delta %lu, closed %lu, notice %lu)\n",
           atomic_load(&ev->all), atomic_load(&ev->socket), atomic_load(&ev->delta),
           atomic_load(&ev->closed), atomic_load(&ev->notice));
}

/* ---- main ------------------------------------------------------------------------------- */

static int usage(void)
{
    fprintf(stderr, "usage: c-host [--deepbind] [--json FILE] --port PORT --weather SO --stocks SO\n");
    return 2;
}

static int run_plugin(const struct api *a, const char *label, const char *path, int mode,
                      const char *url)
{
    char err[512] = "";
    void *h = dlopen(path, mode);
    plugin_run_fn run;
    int n;

    if (!h) {
        fprintf(stderr, "c-host: cannot load %s: %s\n", path, dlerror());
        return -1;
    }
    run = (plugin_run_fn)dlsym(h, "plugin_run");
    if (!run) {
        fprintf(stderr, "c-host: %s has no plugin_run\n", path);
        return -1;
    }
    a->label_push(label);
    n = run(url, err, sizeof err);
    a->label_pop();
    if (n < 0)
        fprintf(stderr, "c-host: plugin %s failed: %s\n", label, err);
    else
        printf("plugin %-8s %s -> %d bytes\n", label, url, n);
    /* Plugins stay loaded: the report names them by path while the process lives. */
    return n;
}

int main(int argc, char **argv)
{
    const char *weather = NULL, *stocks = NULL, *json = NULL, *port = NULL;
    int deepbind = 0, i, ok = 1;
    struct event_counts ev = {0};
    struct api a;
    uint64_t sub;
    char url[256];
    char *snap;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--deepbind") == 0)
            deepbind = 1;
        else if (strcmp(argv[i], "--json") == 0 && i + 1 < argc)
            json = argv[++i];
        else if (strcmp(argv[i], "--port") == 0 && i + 1 < argc)
            port = argv[++i];
        else if (strcmp(argv[i], "--weather") == 0 && i + 1 < argc)
            weather = argv[++i];
        else if (strcmp(argv[i], "--stocks") == 0 && i + 1 < argc)
            stocks = argv[++i];
        else
            return usage();
    }
    if (!weather || !stocks || !port || atoi(port) <= 0 || atoi(port) > 65535)
        return usage();
    if (!load_api(&a)) {
        fprintf(stderr, "c-host: the sockmeter shim is not in this process (link -lsockmeter_shim "
                        "or run under `sockmeter run`)\n");
        return 1;
    }
    sub = a.subscribe(on_event, &ev);
    if (!sub) {
        fprintf(stderr, "c-host: sockmeter_subscribe failed\n");
        return 1;
    }

    snprintf(url, sizeof url, "http://127.0.0.1:%d/weather", atoi(port));
    if (run_plugin(&a, "weather", weather, RTLD_NOW | RTLD_LOCAL | (deepbind ? RTLD_DEEPBIND : 0),
                   url) < 0)
        ok = 0;
    snprintf(url, sizeof url, "tcp://127.0.0.1:%d/AAPL,MSFT,GOOG", atoi(port));
    if (run_plugin(&a, "stocks", stocks, RTLD_NOW | RTLD_LOCAL, url) < 0)
        ok = 0;

    a.flush(); /* delivers every pending event to the subscriber now */
    snap = a.snapshot_json();
    if (!snap) {
        fprintf(stderr, "c-host: sockmeter_snapshot_json returned NULL\n");
        a.unsubscribe(sub);
        return 1;
    }
    if (json) {
        FILE *f = fopen(json, "w");
        if (!f || fputs(snap, f) < 0 || fclose(f) != 0) {
            fprintf(stderr, "c-host: cannot write %s\n", json);
            ok = 0;
        }
    }
    print_report(snap, &ev);
    a.string_free(snap);
    a.unsubscribe(sub);
    return ok ? 0 : 1;
}
