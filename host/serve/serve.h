/*
 * serve.h - `moecard serve`: an OpenAI-compatible HTTP server (libmicrohttpd, one thread per
 * connection) in front of a scheduler thread that owns the engines.
 *
 * Data flow: a request body -> serve_params_parse -> the chat template / tokenizer -> a waiting
 * queue (bounded: 429 past --max-queue) -> a free sequence slot (its own engine and KV cache) ->
 * prefill in chunks and decode steps, interleaved across slots at every step (sequences join and
 * leave between steps) -> text appended to the request -> the connection's thread answers (JSON,
 * or Server-Sent Events as tokens arrive). A client that disconnects cancels its sequence, whose
 * slot is free at the next step. SIGTERM or SIGINT: stop accepting, finish what runs within
 * --drain seconds, cancel the rest (503), exit 0.
 */
#ifndef MOECARD_SERVE_H
#define MOECARD_SERVE_H

#include <stddef.h>
#include "engine/engine.h"
#include "text/tokenizer.h"

#define SERVE_MAX_SLOTS 64 /* sequence slots (--max-batch) */

struct serve_opts {
	const char *host;    /* listen address (127.0.0.1) */
	int port;	     /* 0: any free port (printed) */
	const char *api_key; /* NULL: no key; else "Authorization: Bearer KEY" on /v1/ */
	const char *name;    /* the model id of /v1/models and the responses */
	const char *backend; /* for /metrics */
	int max_queue;	     /* waiting requests before 429 */
	int max_conns;	     /* open connections */
	int timeout_s;	     /* idle connection timeout */
	int drain_s;	     /* SIGTERM: seconds to finish running requests */
	int max_tokens;	     /* the most tokens one request may ask for (serve_attach) */
	int chunk;	     /* a prompt chunk's tokens, and the chunks' tokens a step */
	long kv_tokens;	     /* the KV pool in positions (cpu; 0: a context per slot) */
	size_t max_body;     /* request body bytes before 413 */
	int quiet;	     /* no request log on stderr */
};

struct serve;

/* serve_start - binds and starts answering (/health says "loading" until serve_attach).
 * Prints "moecard: serve: listening on http://HOST:PORT" on stderr. 0 or -errno (message in
 * err). */
int serve_start(const struct serve_opts *o, struct serve **out, char *err, size_t errlen);

/* serve_attach - the engines (not owned; /health is ready after a self-test forward on each)
 * and n_slots sequence slots. One engine with forward_rows (cpu): every slot is a KV cache of
 * it and the running sequences decode together, one forward per step. Otherwise one slot per
 * engine. A request may generate up to max_tokens tokens. 0 or -errno (err). */
int serve_attach(struct serve *s, struct engine *const *engines, int n_engines, int n_slots,
		 struct tokenizer *tok, int eos, int max_tokens, char *err, size_t errlen);

/* serve_wait - until SIGTERM or SIGINT (blocked by the caller in every thread before
 * serve_start); then drains and stops. Returns the exit code (0). */
int serve_wait(struct serve *s);

/* serve_free - stops everything still running and frees s (NULL is fine). */
void serve_free(struct serve *s);

#endif
