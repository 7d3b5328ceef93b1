/*
 * cli_perplexity.c - `moecard perplexity --model DIR --file F [--ctx N] [--limit N] [--json]`
 * (docs/cli.md): the perplexity of a text file under a model, on any backend (--backend
 * cpu|emu|xrt, --act fp8|none).
 *
 * The file is tokenized as `run --prompt` does (BOS per tokenizer_config.json), cut to --limit
 * tokens, and split into windows of --ctx tokens (default 256); each window starts from an empty
 * cache and every token but its first is scored: perplexity = exp(mean -log p(token | window
 * so far)), log-softmax in double. tools/train/moetrain.py perplexity computes the same.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "cli/cli.h"
#include "cli/cli_opts.h"
#include "engine/engine.h"
#include "text/tokenizer.h"

#define PPL_DEFAULT_CTX 256

static void ppl_usage(FILE *f)
{
	fprintf(f, "usage: moecard perplexity --model DIR --file F [options]\n");
	cli_opts_help(f, CLI_SET_PPL);
}

static int ppl_check(const struct cli_opts *a)
{
	if (!a->file) {
		fprintf(stderr, "moecard: perplexity: --file F is required\n");
		return 2;
	}
	if (a->ctx < 0 || a->ctx == 1 || a->ctx > 1 << 20) {
		fprintf(stderr, "moecard: perplexity: --ctx: expected 2..%d, got %d\n", 1 << 20,
			a->ctx);
		return 2;
	}
	if (a->limit < 0) {
		fprintf(stderr, "moecard: perplexity: --limit: must be >= 0, got %d\n", a->limit);
		return 2;
	}
	return 0;
}

/* -log softmax(row)[target], in double. */
static double ppl_nll(const float *row, int V, int target)
{
	double mx = -INFINITY, s = 0;
	for (int i = 0; i < V; i++)
		mx = row[i] > mx ? row[i] : mx;
	for (int i = 0; i < V; i++)
		s += exp((double)row[i] - mx);
	return s > 0 ? mx + log(s) - (double)row[target] : INFINITY; /* s >= 1 when V >= 1 */
}

static double ppl_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

int cli_perplexity(int argc, char **argv)
{
	static const struct cli_cmd cmd = {"perplexity", CLI_SET_PPL, 0, ppl_usage, ppl_check};
	struct cli_opts a;
	cli_opts_init(&a);
	int rc = cli_opts_parse(argc, argv, &cmd, &a);
	if (rc)
		return rc == 1 ? 0 : rc;
	int W = a.ctx ? a.ctx : PPL_DEFAULT_CTX;
	char err[512];
	struct tokenizer *tok = NULL;
	if (tokenizer_load(a.model, &tok, err, sizeof err)) {
		fprintf(stderr, "moecard: %s\n", err);
		return 1;
	}
	size_t len = 0;
	char *text = NULL;
	int32_t *ids = NULL;
	size_t n = 0;
	int r = cli_read_file(a.file, &text, &len);
	if (r) {
		fprintf(stderr, "moecard: %s: %s\n", a.file, strerror(-r));
		tokenizer_free(tok);
		return 1;
	}
	r = tokenizer_encode(tok, text, len, TOKENIZER_ENC_ADD_SPECIAL, &ids, &n);
	free(text);
	tokenizer_free(tok);
	if (r) {
		fprintf(stderr, "moecard: %s: tokenize: %s\n", a.file, strerror(-r));
		return 1;
	}
	if (a.limit > 0 && n > (size_t)a.limit)
		n = (size_t)a.limit;
	if (n < 2) {
		fprintf(stderr, "moecard: %s: %zu token(s): nothing to score (need 2 or more)\n",
			a.file, n);
		free(ids);
		return 1;
	}
	if ((size_t)W > n)
		W = (int)n;
	struct ckpt ck;
	struct engine m;
	struct cli_opts o = a;
	o.ctx = W;
	o.ex.long_run = n >= ENGINE_HUGE_MIN_SEQ; /* many windows: weights in huge pages */
	if ((rc = cli_open_model(&o, &ck, &m, W, W))) {
		free(ids);
		return rc;
	}
	int V = ck.cfg.vocab_size;
	const char *act = m.act_fp8 ? "fp8" : "none";
	float *logits = malloc(sizeof(float) * (size_t)V * (size_t)W);
	int *win = malloc(sizeof(int) * (size_t)W);
	double nll = 0, t0 = ppl_now();
	size_t scored = 0, windows = (n + (size_t)W - 1) / (size_t)W, wi = 0;
	int tty = isatty(2) && !a.quiet;
	rc = 0;
	if (!logits || !win) {
		fprintf(stderr, "moecard: perplexity: out of memory (%d x %d logits)\n", W, V);
		rc = 1;
	}
	for (size_t s = 0; !rc && s < n; s += (size_t)W, wi++) {
		int T = (int)(n - s < (size_t)W ? n - s : (size_t)W);
		if (T < 2)
			break;
		for (int i = 0; i < T; i++) {
			win[i] = ids[s + (size_t)i];
			if (win[i] < 0 || win[i] >= V) {
				fprintf(stderr,
					"moecard: %s: token %d at %zu is outside the model's vocab "
					"(%d)\n",
					a.file, win[i], s + (size_t)i, V);
				rc = 1;
				break;
			}
		}
		if (rc)
			break;
		engine_truncate(&m, 0, 0);
		if ((r = engine_forward(&m, win, T, logits, 1, NULL))) {
			fprintf(stderr, "moecard: perplexity: forward failed: %s\n", strerror(-r));
			rc = 1;
			break;
		}
		for (int i = 0; i + 1 < T; i++)
			nll += ppl_nll(logits + (size_t)i * V, V, win[i + 1]);
		scored += (size_t)T - 1;
		if (tty) {
			double el = ppl_now() - t0;
			fprintf(stderr,
				"\rperplexity: window %zu/%zu, %zu tokens scored, ppl %.3f, %.0f "
				"tok/s   ",
				wi + 1, windows, scored, exp(nll / (double)scored),
				el > 0 ? (double)(s + (size_t)T) / el : 0.0);
			fflush(stderr);
		}
	}
	if (tty)
		fprintf(stderr, "\n");
	if (!rc && scored) {
		double mean = nll / (double)scored, el = ppl_now() - t0;
		if (a.json)
			printf(
			    "{\"file\": \"%s\", \"backend\": \"%s\", \"act\": \"%s\", \"tokens\": "
			    "%zu, \"scored\": %zu, \"ctx\": %d, \"nll\": %.9f, \"perplexity\": "
			    "%.6f, \"seconds\": %.3f}\n",
			    a.file, a.backend, act, n, scored, W, mean, exp(mean), el);
		else
			printf(
			    "%s: perplexity %.4f (%.6f nats/token) over %zu tokens in windows of "
			    "%d, backend %s, act %s, %.1f s\n",
			    a.file, exp(mean), mean, scored, W, a.backend, act, el);
	}
	free(logits);
	free(win);
	free(ids);
	engine_free(&m);
	ckpt_close(&ck);
	return rc;
}
