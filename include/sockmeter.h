/*
 * sockmeter.h - the embedding API of libsockmeter_shim.so.
 *
 * A host meters its own plugins without LD_PRELOAD by linking the shim library ahead of libc:
 *
 *     cc host.c -L<dir> -lsockmeter_shim -Wl,-rpath,<dir> -ldl
 *
 * (a library on the link line comes before libc in the global symbol scope, so its socket
 * functions are the ones every library and every dlopen'ed plugin binds to). Running the host
 * under LD_PRELOAD=libsockmeter_shim.so works the same. Sockets are attributed to the module
 * (plugin) whose code opened them; labels name what a thread is working for.
 *
 * All functions are thread-safe, never block on the network and are not themselves metered.
 */
#ifndef SOCKMETER_H
#define SOCKMETER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* This process's report as JSON: the same object as one entry of a sockmeter report's
 * "processes" array (totals, sockets, modules, labels, unix). Counters are read fresh.
 * Returns a malloc'd string to release with sockmeter_string_free, or NULL. */
char *sockmeter_snapshot_json(void);

/* Frees a string returned by this API (NULL is fine). */
void sockmeter_string_free(char *s);

/* Sockets this thread opens, connects or accepts while a label is pushed carry the innermost
 * label; the report groups traffic by label in "labels". Labels nest (up to 16 deep). */
void sockmeter_label_push(const char *label);
void sockmeter_label_pop(void);

/* Receives every wire message (docs/wire.md) as it is produced: `line` is one NDJSON line of
 * `len` bytes (newline included), NUL-terminated. Called on the shim's reporting thread: be
 * quick and do not call this API from the callback. Return 0 to stay subscribed, non-zero to
 * unsubscribe. */
typedef int (*sockmeter_event_fn)(const char *line, size_t len, void *user);

/* Returns a subscription id (never 0), or 0 on failure. */
uint64_t sockmeter_subscribe(sockmeter_event_fn cb, void *user);

/* Returns 1 if the subscription existed. When it returns, the callback is not running. */
int sockmeter_unsubscribe(uint64_t id);

/* Ships pending counts now (to the reporter and subscribers) instead of at the next tick. */
void sockmeter_flush(void);

/* The library's version, e.g. "0.1.0". */
const char *sockmeter_version(void);

#ifdef __cplusplus
}
#endif

#endif /* SOCKMETER_H */
