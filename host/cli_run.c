/*
 * cli_run.c - `moecard run` and `moecard bench` (DESIGN.md section 5): loads a checkpoint
 * (ckpt.h), builds the model (model.h) on the chosen backend, and generates, dumps logits, or
 * measures prefill/decode speed. Only the cpu backend runs the model in this build.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "cli.h"
#include "ckpt.h"
#include "engine.h"
#include "model.h"
#include "npy.h"
#include "sample.h"

struct run_args {
	const char *model, *prompt, *tokens, *backend, *act, *board, *dump_logits, *dump_mtp;
	const char *profile;
	int n, threads, ctx, naive, json, prompt_len, gen, top_k;
	float temp, top_p, min_p, rep;
	uint64_t seed;
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void run_usage(FILE *f, const char *cmd)
{
	if (!strcmp(cmd, "bench"))
		fprintf(f, "usage: moecard bench --model DIR [--backend cpu] [--act fp8|none] "
			   "[--prompt-len N] [--gen N] [--threads N] [--json]\n");
	else
		fprintf(f,
			"usage: moecard run --model DIR (--prompt TEXT | --tokens 1,2,3) [-n N]\n"
			"         [--backend cpu|emu|xrt] [--act fp8|none] [--board FILE.dtb]\n"
			"         [--dump-logits F.npy] [--dump-mtp-logits F.npy] [--profile F.json]\n"
			"         [--seed S --temp T --top-p P --top-k K --min-p P --repeat-penalty R]\n"
			"         [--threads N] [--ctx N] [--attn absorbed|naive]\n");
}

/* Parses options shared by run and bench. Returns 0, or 2 on a usage error (printed). */
static int parse_args(int argc, char **argv, struct run_args *a, const char *cmd)
{
	memset(a, 0, sizeof *a);
	a->n = 16;
	a->backend = "cpu";
	a->temp = 0;
	a->top_p = 1;
	a->rep = 1;
	a->seed = 1;
	a->prompt_len = 64;
	a->gen = 32;
	for (int i = 1; i < argc; i++) {
		const char *o = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define OPT(name) (!strcmp(o, name) && (v ? (i++, 1) : (fprintf(stderr, "moecard: %s: %s needs a value\n", cmd, o), run_usage(stderr, cmd), 0)))
		if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
			run_usage(stdout, cmd);
			exit(0);
		} else if (!strcmp(o, "--json")) {
			a->json = 1;
		} else if (OPT("--model")) {
			a->model = v;
		} else if (OPT("--prompt")) {
			a->prompt = v;
		} else if (OPT("--tokens")) {
			a->tokens = v;
		} else if (OPT("-n")) {
			a->n = atoi(v);
		} else if (OPT("--backend")) {
			a->backend = v;
		} else if (OPT("--act")) {
			a->act = v;
		} else if (OPT("--board")) {
			a->board = v;
		} else if (OPT("--dump-logits")) {
			a->dump_logits = v;
		} else if (OPT("--dump-mtp-logits")) {
			a->dump_mtp = v;
		} else if (OPT("--profile")) {
			a->profile = v;
		} else if (OPT("--seed")) {
			a->seed = strtoull(v, NULL, 10);
		} else if (OPT("--temp")) {
			a->temp = strtof(v, NULL);
		} else if (OPT("--top-p")) {
			a->top_p = strtof(v, NULL);
		} else if (OPT("--top-k")) {
			a->top_k = atoi(v);
		} else if (OPT("--min-p")) {
			a->min_p = strtof(v, NULL);
		} else if (OPT("--repeat-penalty")) {
			a->rep = strtof(v, NULL);
		} else if (OPT("--threads")) {
			a->threads = atoi(v);
		} else if (OPT("--ctx")) {
			a->ctx = atoi(v);
		} else if (OPT("--attn")) {
			if (strcmp(v, "naive") && strcmp(v, "absorbed")) {
				fprintf(stderr, "moecard: %s: --attn: expected absorbed or naive, got '%s'\n", cmd, v);
				return 2;
			}
			a->naive = !strcmp(v, "naive");
		} else if (OPT("--prompt-len")) {
			a->prompt_len = atoi(v);
		} else if (OPT("--gen")) {
			a->gen = atoi(v);
		} else {
			if (v || strncmp(o, "-", 1))
				fprintf(stderr, "moecard: %s: unknown option '%s'\n", cmd, o);
			run_usage(stderr, cmd);
			return 2;
		}
#undef OPT
	}
	if (!a->model) {
		fprintf(stderr, "moecard: %s: --model DIR is required\n", cmd);
		return 2;
	}
	if (a->act && strcmp(a->act, "fp8") && strcmp(a->act, "none")) {
		fprintf(stderr, "moecard: %s: --act: expected fp8 or none, got '%s'\n", cmd, a->act);
		return 2;
	}
	return 0;
}

/* Parses "1,2,3" into a malloc'd array. Returns count, or -1 with a message. */
static int parse_tokens(const char *s, int **out, int vocab)
{
	int n = 1, k = 0;
	for (const char *p = s; *p; p++)
		n += *p == ',';
	int *t = malloc(sizeof(int) * (size_t)n);
	if (!t)
		return -1;
	const char *p = s;
	while (*p) {
		char *end;
		long v = strtol(p, &end, 10);
		if (end == p || v < 0 || v >= vocab || (*end && *end != ',')) {
			fprintf(stderr, "moecard: run: --tokens: bad token id at '%.16s' (vocab %d)\n", p,
				vocab);
			free(t);
			return -1;
		}
		t[k++] = (int)v;
		p = *end ? end + 1 : end;
	}
	if (!k) {
		fprintf(stderr, "moecard: run: --tokens: empty list\n");
		free(t);
		return -1;
	}
	*out = t;
	return k;
}

/* Loads the checkpoint and builds the engine; prints the error and returns 1 on failure. */
static int open_model(const struct run_args *a, struct ckpt *ck, struct engine *m, int need_seq,
		      int batch)
{
	char err[512];
	int r = ckpt_open(a->model, ck, err, sizeof err);
	if (r) {
		fprintf(stderr, "moecard: %s\n", err);
		return 1;
	}
	struct model_opts o = { 0 };
	if (a->act)
		o.act_fp8 = !strcmp(a->act, "fp8");
	else
		o.act_fp8 = ck->w.fp8 && ck->cfg.quantization_config.present &&
			    ck->cfg.quantization_config.dynamic;
	o.naive_attn = a->naive;
	o.n_threads = a->threads;
	o.max_seq = a->ctx > 0 ? a->ctx : need_seq;
	o.max_batch = batch;
	if (o.max_seq < need_seq) {
		fprintf(stderr, "moecard: --ctx %d: the run needs %d positions\n", o.max_seq, need_seq);
		ckpt_close(ck);
		return 1;
	}
	struct engine_extra x = { .board = a->board, .profile = a->profile };
	r = engine_open(m, a->backend, ck, &o, &x, err, sizeof err);
	if (r) {
		fprintf(stderr, "moecard: %s\n", err);
		ckpt_close(ck);
		return 1;
	}
	return 0;
}

static int fail_fwd(int r)
{
	fprintf(stderr, "moecard: forward failed: %s\n", strerror(-r));
	return 1;
}

int cli_run(int argc, char **argv)
{
	struct run_args a;
	struct ckpt ck;
	struct engine m;
	struct sampler smp;
	char err[512];
	int r = parse_args(argc, argv, &a, "run"), rc = 1;
	if (r)
		return r;
	if (!a.tokens && !a.prompt) {
		fprintf(stderr, "moecard: run: give --prompt TEXT or --tokens 1,2,3\n");
		return 2;
	}
	if (a.prompt) {
		fprintf(stderr, "moecard: run: --prompt needs the tokenizer, not in this build yet; "
				"use --tokens\n");
		return 2;
	}
	if (a.n < 0) {
		fprintf(stderr, "moecard: run: -n: must be >= 0\n");
		return 2;
	}
	/* count tokens before loading to size the caches */
	int ntok_est = 1;
	for (const char *p = a.tokens; *p; p++)
		ntok_est += *p == ',';
	if (open_model(&a, &ck, &m, ntok_est + a.n + 1, 64))
		return 1;
	const struct config *c = &ck.cfg;
	int *toks = NULL, V = c->vocab_size, D = c->hidden_size;
	float *logits = NULL, *hid = NULL, *mtp = NULL;
	int nt = parse_tokens(a.tokens, &toks, V);
	if (nt < 0)
		goto out;
	if (sampler_init(&smp, V, a.temp, a.top_k, a.top_p, a.min_p, a.rep, a.seed))
		goto out;
	int want_rows = a.dump_logits || a.dump_mtp;
	logits = malloc(sizeof(float) * (size_t)V * (want_rows ? (size_t)nt : 1));
	hid = malloc(sizeof(float) * (size_t)D * (size_t)nt);
	if (!logits || !hid)
		goto out_s;
	if (want_rows) {
		/* row i = logits after consuming tokens[0..i], each fed through the decode path */
		for (int i = 0; i < nt; i++)
			if ((r = engine_forward(&m, toks + i, 1, logits + (size_t)i * V, 0,
					       hid + (size_t)i * D))) {
				rc = fail_fwd(r);
				goto out_s;
			}
		if (a.dump_logits && npy_write_f32(a.dump_logits, logits, (size_t)nt, (size_t)V, err,
						   sizeof err)) {
			fprintf(stderr, "moecard: %s\n", err);
			goto out_s;
		}
		if (a.dump_mtp) {
			if (!ck.w.mtp) {
				fprintf(stderr, "moecard: %s: model.layers.%d: the checkpoint has no MTP "
						"layer (--dump-mtp-logits)\n", a.model, c->num_hidden_layers);
				goto out_s;
			}
			mtp = malloc(sizeof(float) * (size_t)V * (size_t)(nt > 1 ? nt - 1 : 1));
			if (!mtp)
				goto out_s;
			for (int i = 0; i + 1 < nt; i++)
				if ((r = engine_mtp_forward(&m, toks + i + 1, hid + (size_t)i * D, 1,
							   mtp + (size_t)i * V, 0))) {
					rc = fail_fwd(r);
					goto out_s;
				}
			if (npy_write_f32(a.dump_mtp, mtp, (size_t)(nt - 1), (size_t)V, err,
					  sizeof err)) {
				fprintf(stderr, "moecard: %s\n", err);
				goto out_s;
			}
		}
		memmove(logits, logits + (size_t)(nt - 1) * V, sizeof(float) * V);
	} else {
		for (int i = 0; i < nt; i += m.max_batch) {
			int T = nt - i < m.max_batch ? nt - i : m.max_batch;
			if ((r = engine_forward(&m, toks + i, T, logits, 0, NULL))) {
				rc = fail_fwd(r);
				goto out_s;
			}
		}
	}
	/* generation: print ids as they come */
	for (int g = 0; g < a.n; g++) {
		int t = sampler_pick(&smp, logits, toks, nt);
		printf("%s%d", g ? " " : "", t);
		fflush(stdout);
		if (t == c->eos_token_id || g + 1 == a.n)
			break;
		if ((r = engine_forward(&m, &t, 1, logits, 0, NULL))) {
			rc = fail_fwd(r);
			goto out_s;
		}
	}
	if (a.n > 0)
		printf("\n");
	rc = 0;
out_s:
	sampler_free(&smp);
out:
	free(toks);
	free(logits);
	free(hid);
	free(mtp);
	engine_free(&m);
	ckpt_close(&ck);
	return rc;
}

int cli_bench(int argc, char **argv)
{
	struct run_args a;
	struct ckpt ck;
	struct engine m;
	int r = parse_args(argc, argv, &a, "bench"), rc = 1;
	if (r)
		return r;
	if (a.prompt_len < 1 || a.gen < 1) {
		fprintf(stderr, "moecard: bench: --prompt-len and --gen must be >= 1\n");
		return 2;
	}
	int batch = a.prompt_len < 256 ? a.prompt_len : 256;
	double t0 = now_s();
	if (open_model(&a, &ck, &m, a.prompt_len + a.gen + 1, batch))
		return 1;
	double t_load = now_s() - t0;
	int V = ck.cfg.vocab_size;
	int *toks = malloc(sizeof(int) * (size_t)a.prompt_len);
	float *logits = malloc(sizeof(float) * (size_t)V);
	if (!toks || !logits)
		goto out;
	uint64_t s = a.seed * 0x9E3779B97F4A7C15ull + 1;
	for (int i = 0; i < a.prompt_len; i++) {
		s ^= s << 13, s ^= s >> 7, s ^= s << 17;
		toks[i] = (int)(s % (uint64_t)V);
	}
	/* warm-up: touch the weights once so page faults are not timed */
	if ((r = engine_forward(&m, toks, 1, logits, 0, NULL)))
		goto fail;
	engine_truncate(&m, 0, 0);
	double tp = now_s();
	for (int i = 0; i < a.prompt_len; i += batch) {
		int T = a.prompt_len - i < batch ? a.prompt_len - i : batch;
		if ((r = engine_forward(&m, toks + i, T, logits, 0, NULL)))
			goto fail;
	}
	tp = now_s() - tp;
	double td = now_s();
	for (int g = 0; g < a.gen; g++) {
		int t = sampler_argmax(logits, V);
		if ((r = engine_forward(&m, &t, 1, logits, 0, NULL)))
			goto fail;
	}
	td = now_s() - td;
	const char *isa = m.isa ? m.isa : "-";
	if (a.json)
		printf("{\"backend\":\"%s\",\"model\":\"%s\",\"act\":\"%s\",\"threads\":%d,"
		       "\"isa\":\"%s\",\"prompt_len\":%d,\"gen\":%d,\"load_s\":%.3f,"
		       "\"prefill_tok_s\":%.2f,\"decode_tok_s\":%.2f}\n",
		       a.backend, a.model, m.act_fp8 ? "fp8" : "none", m.threads, isa,
		       a.prompt_len, a.gen, t_load, a.prompt_len / tp, a.gen / td);
	else
		printf("backend %s  act %s  threads %d  isa %s\n"
		       "load      %.3f s\n"
		       "prefill   %d tokens in %.3f s: %.2f tok/s\n"
		       "decode    %d tokens in %.3f s: %.2f tok/s\n",
		       a.backend, m.act_fp8 ? "fp8" : "none", m.threads, isa, t_load,
		       a.prompt_len, tp, a.prompt_len / tp, a.gen, td, a.gen / td);
	if (m.ops->stats)
		m.ops->stats(&m, stdout, a.json);
	rc = 0;
	goto out;
fail:
	rc = fail_fwd(r);
out:
	free(toks);
	free(logits);
	engine_free(&m);
	ckpt_close(&ck);
	return rc;
}
