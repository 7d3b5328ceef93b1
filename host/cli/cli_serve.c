/*
 * cli_serve.c - `moecard serve --model DIR [options]`: loads the model and its tokenizer, opens
 * one engine for --max-batch sequence slots (the cpu engine: a paged KV pool; a card engine: a
 * latent cache per slot in card memory) and runs the OpenAI-compatible server of
 * host/serve/serve.h until SIGTERM or SIGINT.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli/cli.h"
#include "cli/cli_opts.h"
#include "prof/prof.h"
#include "backend/backend.h"
#include "load/ckpt.h"
#include "sched/card_engine.h"
#include "serve/serve.h"
#include "text/tokenizer.h"

static void serve_usage(FILE *f)
{
	fprintf(f, "usage: moecard serve --model DIR [options]\n"
		   "  POST /v1/chat/completions, POST /v1/completions (stream or not),\n"
		   "  GET /v1/models, /health, /metrics (Prometheus)\n");
	cli_opts_help(f, CLI_SET_SERVE);
}

static int serve_check(const struct cli_opts *a)
{
	if (a->port > 65535) {
		fprintf(stderr, "moecard: serve: --port: expected 0..65535, got %d\n", a->port);
		return 2;
	}
	if (a->max_batch > SERVE_MAX_SLOTS) {
		fprintf(stderr, "moecard: serve: --max-batch: at most %d, got %d\n",
			SERVE_MAX_SLOTS, a->max_batch);
		return 2;
	}
	if (a->kv_tokens && a->backend && strcmp(a->backend, "cpu")) {
		fprintf(stderr, "moecard: serve: --kv-tokens: the paged KV pool is the cpu "
				"backend's (a card engine keeps its own cache)\n");
		return 2;
	}
	if (a->max_body_kb > 1 << 20) {
		fprintf(stderr, "moecard: serve: --max-body-kb: at most %d, got %d\n", 1 << 20,
			a->max_body_kb);
		return 2;
	}
	return 0;
}

static const struct cli_cmd serve_cmd = {"serve", CLI_SET_SERVE, 0, serve_usage, serve_check};

/* The model id: --name, else the folder's last component. */
static const char *serve_name(const struct cli_opts *a, char *buf, size_t n)
{
	if (a->name)
		return a->name;
	snprintf(buf, n, "%s", a->model);
	size_t l = strlen(buf);
	while (l > 1 && buf[l - 1] == '/')
		buf[--l] = 0;
	const char *s = strrchr(buf, '/');
	return s ? s + 1 : buf;
}

int cli_serve(int argc, char **argv)
{
	struct cli_opts a;
	cli_opts_init(&a);
	a.host = "127.0.0.1";
	a.port = 8080;
	a.max_queue = 64;
	a.max_conns = 256;
	a.max_body_kb = 1024;
	a.timeout = 30;
	a.drain = 10;
	int r = cli_opts_parse(argc, argv, &serve_cmd, &a);
	if (r)
		return r == 1 ? 0 : r;
	if (!a.max_batch)
		a.max_batch = 4;
	if (a.prefill_chunk > 256) {
		fprintf(stderr, "moecard: serve: --prefill-chunk: must be <= 256, got %d\n",
			a.prefill_chunk);
		return 2;
	}
	if (!a.api_key)
		a.api_key = getenv("MOECARD_API_KEY");
	if (a.api_key && !*a.api_key)
		a.api_key = NULL;

	/* SIGTERM and SIGINT go to serve_wait's sigwait: blocked in every thread from here on */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	char name[256], err[512];
	struct serve_opts so = {
	    .host = a.host,
	    .port = a.port,
	    .api_key = a.api_key,
	    .name = serve_name(&a, name, sizeof name),
	    .backend = a.backend,
	    .max_queue = a.max_queue,
	    .max_conns = a.max_conns,
	    .timeout_s = a.timeout,
	    .drain_s = a.drain,
	    .chunk = a.prefill_chunk ? a.prefill_chunk : 64,
	    .max_body = (size_t)a.max_body_kb * 1024,
	    .kv_tokens = a.kv_tokens,
	    .quiet = a.quiet,
	};
	struct serve *s = NULL;
	if (a.profile && prof_start_wall()) { /* every thread's slices at their own times */
		fprintf(stderr, "moecard: serve: out of memory (--profile)\n");
		return 1;
	}
	prof_thread_name("serve: main (load, self-test)");
	if (serve_start(&so, &s, err, sizeof err)) {
		fprintf(stderr, "moecard: serve: %s\n", err);
		return 1;
	}
	struct ckpt ck;
	struct tokenizer *tok = NULL;
	struct engine eng[1];
	struct engine *ep[1];
	int n_eng = 0, rc = 1;
	if (cli_load_ckpt(&a, &ck)) {
		serve_free(s);
		return 1;
	}
	if (tokenizer_load(a.model, &tok, err, sizeof err)) {
		fprintf(stderr, "moecard: serve: %s\n", err);
		goto out;
	}
	int ctx = a.ctx > 0				  ? a.ctx
		  : ck.cfg.max_position_embeddings < 4096 ? ck.cfg.max_position_embeddings
							  : 4096;
	if (a.max_tokens > ctx) {
		fprintf(stderr, "moecard: serve: --max-tokens %d: more than the context (%d)\n",
			a.max_tokens, ctx);
		rc = 2;
		goto out;
	}
	/* one engine decodes every slot together: the cpu engine's KV blocks come from serve's
	 * pool (forward_rows), a card engine holds a latent cache per slot (forward_seqs) */
	a.ex.seqs = strcmp(a.backend, "cpu") ? a.max_batch : 0;
	a.ex.long_run = 1; /* a server: weights in huge pages unless --huge-pages off */
	if ((r = cli_engine_open(&a, &ck, &eng[0], ctx, 2, so.chunk))) {
		rc = r;
		goto out;
	}
	ep[n_eng++] = &eng[0];
	if (a.ex.seqs > 1 && !(eng[0].ops->forward_seqs && eng[0].max_seqs >= a.ex.seqs)) {
		fprintf(
		    stderr,
		    "moecard: serve: --max-batch %d: this %s engine runs one sequence at a time "
		    "(its batched path is off: MOECARD_CARD_PREFILL=0); give 1\n",
		    a.max_batch, a.backend);
		rc = 2;
		goto out;
	}
	/* MOECARD_SERVE_FAULT=cu_bad:N (emulated card): the N-th CU run from now on fails, so a
	 * test sees one request fail and the server go on (docs/cli.md) */
	const char *fault = getenv("MOECARD_SERVE_FAULT");
	if (fault && *fault) {
		unsigned n = 0;
		struct backend *b = strcmp(a.backend, "emu") ? NULL : card_engine_backend(&eng[0]);
		if (!b || sscanf(fault, "cu_bad:%u", &n) != 1 || !n) {
			fprintf(stderr,
				"moecard: serve: MOECARD_SERVE_FAULT: expected cu_bad:N (N >= 1) "
				"with --backend emu, got '%s'\n",
				fault);
			rc = 2;
			goto out;
		}
		backend_fault_set(b, BACKEND_FAULT_CU_BAD, n);
	}
	int eos = tokenizer_eos_id(tok);
	if (eos < 0)
		eos = ck.cfg.eos_token_id;
	if (serve_attach(s, ep, n_eng, a.max_batch, tok, eos, a.max_tokens ? a.max_tokens : ctx,
			 err, sizeof err)) {
		fprintf(stderr, "moecard: serve: %s\n", err);
		goto out;
	}
	rc = serve_wait(s);
	s = NULL; /* serve_wait freed it */
	if (prof_g && (r = prof_write_trace(prof_g, a.profile))) {
		fprintf(stderr, "moecard: serve: %s: cannot write the profile: %s\n", a.profile,
			strerror(-r));
		rc = 1;
	}
out:
	serve_free(s);
	for (int i = 0; i < n_eng; i++)
		engine_free(&eng[i]);
	tokenizer_free(tok);
	ckpt_close(&ck);
	prof_stop();
	return rc;
}
