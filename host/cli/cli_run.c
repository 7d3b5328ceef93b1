/*
 * cli_run.c - `moecard run` and `moecard bench` (docs/cli.md): loads a checkpoint
 * (ckpt.h), builds the engine (engine.h) on the chosen backend, and generates (generate.h: text
 * in/out through the tokenizer beside the model, or token ids; MTP speculative decoding, spec.h),
 * dumps logits, or measures prefill/decode speed (with --spec mtp: acceptance and speed-up).
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include <time.h>
#include <sys/resource.h>
#include <unistd.h>
#include "text/chat_template.h"
#include "cli/cli.h"
#include "load/ckpt.h"
#include "engine/engine.h"
#include "sched/card_engine.h"
#include "sched/expert_trace.h"
#include "decode/generate.h"
#include "model/model.h"
#include "util/npy.h"
#include "decode/sample.h"
#include "cli/cli_opts.h"
#include "cli/cli_kernels.h"
#include "cli/cli_seqs.h"
#include "prof/prof.h"
#include "text/tokenizer.h"

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

#define BENCH_MAX_REPS 100 /* bench -r N */

static void run_usage(FILE *f)
{
	fprintf(f, "usage: moecard run --model DIR (--prompt TEXT | --tokens 1,2,3) [options]\n");
	cli_opts_help(f, CLI_SET_RUN);
}

static void bench_usage(FILE *f)
{
	fprintf(f, "usage: moecard bench --model DIR [--prompt-len N] [--gen N] [-r N] [options]\n"
		   "  (run's options; --spec is off unless given)\n");
	cli_opts_help(f, CLI_SET_RUN);
}

/* run and bench take the same options (cli_opts.c); bench ignores those it has no use for. */
static const struct cli_cmd run_cmd = {"run", CLI_SET_RUN, 0, run_usage, NULL};
static const struct cli_cmd bench_cmd = {"bench", CLI_SET_RUN, 0, bench_usage, NULL};

/* The options of run or bench with their defaults. 0, 1 after --help, 2 on a usage error. */
static int parse_args(int argc, char **argv, struct cli_opts *a, const struct cli_cmd *cmd)
{
	cli_opts_init(a);
	a->n = 16;
	a->prompt_len = 64;
	a->gen = 32;
	return cli_opts_parse(argc, argv, cmd, a);
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
			fprintf(stderr,
				"moecard: run: --tokens: bad token id at '%.16s' (vocab %d)\n", p,
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
static int cli_quiet; /* --quiet: no progress bars, notices or summary line */

/* Reads every page of the checkpoint's mappings with a progress bar on stderr (a terminal only):
 * the weights come from disk here rather than during the first tokens. */
static void load_with_progress(const struct ckpt *ck)
{
	if (!isatty(2) || cli_quiet)
		return;
	size_t total = 0, done = 0, step = (size_t)64 << 20;
	for (int f = 0; f < ck->st.n_files; f++)
		total += ck->st.files[f].size;
	volatile unsigned char sink = 0;
	for (int f = 0; f < ck->st.n_files; f++) {
		const unsigned char *p = ck->st.files[f].map;
		size_t n = ck->st.files[f].size;
		for (size_t o = 0; o < n; o += step) {
			size_t e = o + step < n ? o + step : n;
			for (size_t k = o; k < e; k += 4096)
				sink ^= p[k];
			done += e - o;
			int W = 30, k = total ? (int)((double)done / (double)total * W) : W;
			fprintf(stderr, "\rloading [");
			for (int i = 0; i < W; i++)
				fputc(i < k ? '=' : i == k ? '>' : ' ', stderr);
			fprintf(stderr, "] %zu/%zu MB", done >> 20, total >> 20);
			fflush(stderr);
		}
	}
	fprintf(stderr, "\r%70s\r", "");
	fflush(stderr);
	(void)sink;
}

/* --expert-trace writer (expert_trace.h), closed by close_trace before engine_free. */
static struct expert_trace_writer *run_xt;
static int close_trace(const struct cli_opts *a, int rc)
{
	int r = expert_trace_detach(run_xt);
	if (r) {
		fprintf(stderr, "moecard: --expert-trace %s: write failed: %s\n", a->expert_trace,
			strerror(-r));
		rc = 1;
	}
	run_xt = NULL;
	return rc;
}

/* 0 when the file path can be written (its folder exists and is writable), else 1 with the
 * message printed: --profile is checked before the run, not after it. */
static int cli_check_writable(const char *path)
{
	char dir[4096];
	const char *sl = strrchr(path, '/');
	if (!sl)
		snprintf(dir, sizeof dir, ".");
	else if (sl == path)
		snprintf(dir, sizeof dir, "/");
	else
		snprintf(dir, sizeof dir, "%.*s", (int)(sl - path), path);
	if (access(dir, W_OK)) {
		fprintf(stderr, "moecard: %s: cannot write there: %s: %s\n", path, dir,
			strerror(errno));
		return 1;
	}
	return 0;
}

/* Loads the checkpoint and builds the engine (cli_opts.h). */
int cli_engine_open(const struct cli_opts *a, const struct ckpt *ck, struct engine *m, int max_seq,
		    int need_seq, int batch)
{
	char err[512];
	struct model_opts o = {0};
	if (a->act)
		o.act_fp8 = !strcmp(a->act, "fp8");
	else
		o.act_fp8 = ck->w.fp8 && ck->cfg.quantization_config.present &&
			    ck->cfg.quantization_config.dynamic;
	o.naive_attn = a->naive;
	o.head_fp8 = a->head && !strcmp(a->head, "fp8");
	o.head_screen = !a->head_screen || !strcmp(a->head_screen, "on");
	o.n_threads = a->threads;
	o.max_seq = max_seq;
	o.max_batch = batch;
	if (o.max_seq < need_seq) {
		fprintf(stderr, "moecard: --ctx %d: the run needs %d positions\n", o.max_seq,
			need_seq);
		return 1;
	}
	if (o.max_seq > ck->cfg.max_position_embeddings) {
		fprintf(
		    stderr,
		    "moecard: %s/config.json: max_position_embeddings: the run needs %d positions "
		    "(--ctx, or the prompt and -n), the model has %d\n",
		    a->model, o.max_seq, ck->cfg.max_position_embeddings);
		return 2;
	}
	struct engine_extra x = a->ex;
	x.board = a->board;
	x.board_set = a->board_set;
	x.expert_trace = a->expert_trace;
	x.xclbin = a->xclbin;
	x.no_mtp = a->spec == 0 && !a->dump_mtp;
	int r = engine_open(m, a->backend, ck, &o, &x, err, sizeof err);
	if (r) {
		fprintf(stderr, "moecard: %s\n", err);
		return 1;
	}
	return 0;
}

int cli_load_ckpt(const struct cli_opts *a, struct ckpt *ck)
{
	char err[512];
	if (a->profile && cli_check_writable(a->profile))
		return 1;
	int r = ckpt_open(a->model, ck, err, sizeof err);
	if (r) {
		fprintf(stderr, "moecard: %s\n", err);
		return 1;
	}
	cli_quiet = a->quiet;
	load_with_progress(ck);
	if (ck->cfg.random_weights && isatty(2) && !a->quiet)
		fprintf(stderr,
			"moecard: %s: random weights (written by moecard gen): the text is "
			"noise\n",
			a->model);
	return 0;
}

int cli_open_model(const struct cli_opts *a, struct ckpt *ck, struct engine *m, int need_seq,
		   int batch)
{
	char err[512];
	int r = cli_load_ckpt(a, ck);
	if (r)
		return r;
	r = cli_engine_open(a, ck, m, a->ctx > 0 ? a->ctx : need_seq, need_seq, batch);
	if (r) {
		ckpt_close(ck);
		return r;
	}
	const char *noop = getenv("MOECARD_XRT_NOOP"), *em = getenv("XCL_EMULATION_MODE");
	if (!strcmp(a->backend, "xrt") &&
	    ((noop && !strcmp(noop, "1")) || (em && !strcmp(em, "noop"))))
		fprintf(stderr, "moecard: --backend xrt on XRT's noop device: the kernels do not "
				"compute, results are not meaningful\n");
	if (a->expert_trace && expert_trace_attach(m, a->expert_trace, &run_xt, err, sizeof err)) {
		fprintf(stderr, "moecard: %s\n", err);
		engine_free(m);
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

/* The speculation depth a run uses: --spec none -> 0; default -> --spec-depth when the
 * checkpoint has an MTP layer and the engine runs it, else 0; --spec mtp without MTP -> error. */
static int spec_depth_for(const struct cli_opts *a, const struct engine *m, const char *cmd)
{
	int can = m->w->mtp && m->ops->mtp_forward;
	if (a->spec == 0 || (a->spec < 0 && !can))
		return 0;
	if (!can) {
		fprintf(stderr,
			"moecard: %s: model.layers.%d: --spec mtp needs an MTP layer "
			"(num_nextn_predict_layers) and an engine that runs it\n",
			a->model, m->c->num_hidden_layers);
		return -1;
	}
	if (a->spec_depth > 1 && !m->ops->mtp_hidden) {
		if (a->spec > 0) {
			fprintf(stderr,
				"moecard: %s: --spec-depth %d: the %s engine cannot chain MTP "
				"drafts\n",
				cmd, a->spec_depth, m->ops->name);
			return -1;
		}
		return 1;
	}
	return a->spec_depth;
}

static void print_stats(const struct gen *g, int depth)
{
	const struct gen_stats *st = &g->st;
	fprintf(stderr,
		"moecard: prefill %ld tokens %.3f s (%.1f tok/s), decode %ld tokens %.3f s "
		"(%.1f tok/s), %ld main forwards",
		st->prefill_tokens, st->prefill_s,
		st->prefill_s > 0 ? st->prefill_tokens / st->prefill_s : 0.0, st->decode_tokens,
		st->decode_s, st->decode_s > 0 ? st->decode_tokens / st->decode_s : 0.0,
		st->decode_forwards);
	if (depth > 0)
		fprintf(stderr,
			", spec mtp depth %d: accepted %ld/%ld drafts (%.1f%%), %.2f tokens "
			"per verify forward",
			depth, st->accepted, st->drafted,
			st->drafted ? 100.0 * st->accepted / st->drafted : 0.0,
			st->spec_steps ? (double)st->spec_tokens / st->spec_steps : 0.0);
	fprintf(stderr, "\n");
}

/* Encodes --prompt (plain with BOS per tokenizer_config, or --chat) to ids. -1 on error. */
static int encode_prompt(const struct cli_opts *a, struct tokenizer *tok, int **out)
{
	int32_t *ids = NULL;
	size_t n = 0;
	int r;
	if (a->chat) {
		struct chat_msg msgs[2];
		size_t nm = 0;
		if (a->system)
			msgs[nm++] = (struct chat_msg){"system", a->system};
		msgs[nm++] = (struct chat_msg){"user", a->prompt};
		r = chat_template_encode(tok, msgs, nm, 1, CHAT_TEMPLATE_LITERAL_CONTENT, &ids, &n);
	} else {
		r = tokenizer_encode(tok, a->prompt, strlen(a->prompt), TOKENIZER_ENC_ADD_SPECIAL,
				     &ids, &n);
	}
	if (r || n == 0) {
		fprintf(stderr, "moecard: run: --prompt: %s\n", r ? strerror(-r) : "no tokens");
		free(ids);
		return -1;
	}
	*out = malloc(sizeof(int) * n);
	if (!*out) {
		free(ids);
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		(*out)[i] = ids[i];
	free(ids);
	return (int)n;
}

/* Checks the combination of run's options. 0, or 2 with the message printed. */
static int run_check(const struct cli_opts *a)
{
	if (a->reps || a->seqs) {
		fprintf(stderr, "moecard: run: %s\n",
			a->reps ? "-r: repetitions are a bench option"
				: "--seqs: sequences decoded together are a bench option");
		return 2;
	}
	if (!a->tokens == !a->prompt) {
		fprintf(stderr, "moecard: run: give --prompt TEXT or --tokens 1,2,3\n");
		return 2;
	}
	if (a->n < 0) {
		fprintf(stderr, "moecard: run: -n: must be >= 0\n");
		return 2;
	}
	if ((a->chat || a->system || a->n_stops) && !a->prompt) {
		fprintf(stderr, "moecard: run: --chat, --system and --stop need --prompt\n");
		return 2;
	}
	return 0;
}

/* --prompt: loads the tokenizer beside the checkpoint and encodes the prompt into *toks.
 * --tokens: only counts the ids (they are parsed against the model's vocab once it is open).
 * 0, or 1 with the message printed. */
static int run_prompt(const struct cli_opts *a, struct tokenizer **tok, int **toks, int *nt)
{
	char err[512];
	*tok = NULL;
	*toks = NULL;
	if (!a->prompt) {
		*nt = 1;
		for (const char *p = a->tokens; *p; p++)
			*nt += *p == ',';
		return 0;
	}
	if (tokenizer_load(a->model, tok, err, sizeof err)) {
		fprintf(stderr, "moecard: %s\n", err);
		return 1;
	}
	if ((*nt = encode_prompt(a, *tok, toks)) < 0) {
		tokenizer_free(*tok);
		*tok = NULL;
		return 1;
	}
	return 0;
}

/* The ids of the run: --tokens parsed, or the encoded prompt checked against vocab_size. */
static int run_input(const struct cli_opts *a, const struct config *c, int **toks, int *nt)
{
	int V = c->vocab_size;
	if (a->tokens)
		return (*nt = parse_tokens(a->tokens, toks, V)) < 0;
	for (int i = 0; i < *nt; i++)
		if ((*toks)[i] >= V) {
			fprintf(stderr,
				"moecard: %s/tokenizer.json: token %d of the prompt is outside "
				"the model's vocab_size %d\n",
				a->model, (*toks)[i], V);
			return 1;
		}
	return 0;
}

/* --dump-logits / --dump-mtp-logits: row i = logits after consuming toks[0..i], each fed
 * through the decode path; the MTP rows take the main model's hidden state of row i and token
 * i + 1. The engine starts over from an empty cache after it unless -n is 0 (then the engine's
 * statistics cover the dumped sequence). 0, or 1 with the message printed. */
static int run_dump(const struct cli_opts *a, struct engine *m, const struct ckpt *ck,
		    const int *toks, int nt)
{
	const struct config *c = &ck->cfg;
	int V = c->vocab_size, D = c->hidden_size, r, rc = 1;
	char err[512];
	float *logits = malloc(sizeof(float) * (size_t)V * (size_t)nt);
	float *hid = malloc(sizeof(float) * (size_t)D * (size_t)nt), *mtp = NULL;
	if (!logits || !hid)
		goto out;
	for (int i = 0; i < nt; i++)
		if ((r = engine_forward(m, toks + i, 1, logits + (size_t)i * V, 0,
					hid + (size_t)i * D))) {
			rc = fail_fwd(r);
			goto out;
		}
	if (a->dump_logits &&
	    npy_write_f32(a->dump_logits, logits, (size_t)nt, (size_t)V, err, sizeof err)) {
		fprintf(stderr, "moecard: %s\n", err);
		goto out;
	}
	if (a->dump_mtp) {
		if (!ck->w.mtp) {
			fprintf(stderr,
				"moecard: %s: model.layers.%d: the checkpoint has no MTP layer "
				"(--dump-mtp-logits)\n",
				a->model, c->num_hidden_layers);
			goto out;
		}
		mtp = malloc(sizeof(float) * (size_t)V * (size_t)(nt > 1 ? nt - 1 : 1));
		if (!mtp)
			goto out;
		for (int i = 0; i + 1 < nt; i++)
			if ((r = engine_mtp_forward(m, toks + i + 1, hid + (size_t)i * D, 1,
						    mtp + (size_t)i * V, 0))) {
				rc = fail_fwd(r);
				goto out;
			}
		if (npy_write_f32(a->dump_mtp, mtp, (size_t)(nt - 1), (size_t)V, err, sizeof err)) {
			fprintf(stderr, "moecard: %s\n", err);
			goto out;
		}
	}
	if (a->n > 0)
		engine_truncate(m, 0, 0);
	rc = 0;
out:
	free(logits);
	free(hid);
	free(mtp);
	return rc;
}

/* Generates -n tokens after toks[0..nt) and prints them as they come: ids, or text through the
 * tokenizer (until EOS or a --stop string). --stats: the summary line. 0, or 1 (printed). */
/* run --json: one object on stdout with the generated ids, their text (control tokens dropped),
 * each token's time since the decode began (ms; tokens of one speculative step share it) and
 * the prefill and decode figures. */
static void run_json(const struct cli_opts *a, struct tokenizer *tok, const struct gen *g,
		     const int *ids, const double *ms, int n, int nt)
{
	const struct gen_stats *st = &g->st;
	json_t *o = json_object(), *ji = json_array(), *jt = json_array();
	for (int i = 0; o && ji && jt && i < n; i++) {
		json_array_append_new(ji, json_integer(ids[i]));
		json_array_append_new(jt, json_real(ms[i]));
	}
	char *text = NULL;
	size_t tl = 0;
	if (tok && n > 0) {
		int32_t *v = malloc(sizeof(int32_t) * (size_t)n);
		for (int i = 0; v && i < n; i++)
			v[i] = ids[i];
		if (v &&
		    tokenizer_decode(tok, v, (size_t)n, TOKENIZER_DEC_SKIP_SPECIAL, &text, &tl))
			text = NULL;
		free(v);
	}
	json_object_set_new(o, "prompt_tokens", json_integer(nt));
	json_object_set_new(o, "ids", ji);
	json_object_set_new(o, "text", text ? json_stringn(text, tl) : json_null());
	json_object_set_new(o, "token_ms", jt);
	json_object_set_new(o, "prefill_s", json_real(st->prefill_s));
	json_object_set_new(o, "prefill_tok_s",
			    json_real(st->prefill_s > 0 ? st->prefill_tokens / st->prefill_s : 0));
	json_object_set_new(o, "decode_s", json_real(st->decode_s));
	json_object_set_new(o, "decode_tok_s",
			    json_real(st->decode_s > 0 ? st->decode_tokens / st->decode_s : 0));
	json_object_set_new(o, "main_forwards", json_integer(st->decode_forwards));
	if (g->depth > 0) {
		json_object_set_new(o, "spec_drafted", json_integer(st->drafted));
		json_object_set_new(o, "spec_accepted", json_integer(st->accepted));
	}
	json_object_set_new(o, "backend", json_string(a->backend));
	char *s = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(6));
	if (s)
		printf("%s\n", s);
	else
		fprintf(stderr, "moecard: run: out of memory (--json)\n");
	free(s);
	free(text);
	json_decref(o);
}

static int run_generate(const struct cli_opts *a, struct engine *m, struct tokenizer *tok,
			const int *toks, int nt)
{
	struct gen g;
	struct gen_text tx;
	int eos = m->c->eos_token_id, r, rc = 1;
	memset(&g, 0, sizeof g);
	memset(&tx, 0, sizeof tx);
	int depth = spec_depth_for(a, m, "run");
	if (depth < 0)
		goto out;
	struct gen_opts go = {.s = a->smp, .spec_depth = depth};
	go.s.ban = a->ignore_eos;
	go.s.ban_id = eos;
	if (isatty(2) && !a->quiet) {
		go.progress = gen_progress_bar;
		go.progress_ctx = stderr;
	}
	if ((r = gen_init(&g, m, &go, nt + a->n + 8))) {
		fprintf(stderr, "moecard: run: %s\n", strerror(-r));
		goto out;
	}
	if (tok && gen_text_init(&tx, tok, a->stops, a->n_stops))
		goto out;
	if (a->n == 0) {
		rc = 0;
		goto out;
	}
	if (a->profile && prof_start()) {
		fprintf(stderr, "moecard: run: out of memory (--profile)\n");
		goto out;
	}
	if ((r = gen_append(&g, toks, nt)) || (r = gen_sync(&g))) {
		rc = fail_fwd(r);
		goto out;
	}
	int out_ids[8], n_out, made = 0, done = 0;
	/* --json: the ids and each token's time, printed as one object at the end */
	int *jid = a->json ? malloc(sizeof(int) * (size_t)a->n) : NULL;
	double *jms = a->json ? malloc(sizeof(double) * (size_t)a->n) : NULL;
	FILE *txt = a->json ? NULL : stdout;
	double t_dec = now_s();
	if (a->json && (!jid || !jms)) {
		fprintf(stderr, "moecard: run: out of memory (--json)\n");
		goto jout;
	}
	while (!done) {
		if ((r = gen_step(&g, out_ids, &n_out))) {
			rc = fail_fwd(r);
			goto jout;
		}
		double t_now = now_s();
		for (int i = 0; i < n_out && !done; i++) {
			int t = out_ids[i];
			if (jid) {
				jid[made] = t;
				jms[made] = (t_now - t_dec) * 1e3;
			}
			made++;
			if (!tok) {
				if (txt) {
					printf("%s%d", made > 1 ? " " : "", t);
					fflush(stdout);
				}
			} else if (t != eos && txt && gen_text_push(&tx, t, txt) == 1) {
				done = 1;
			}
			if (t == eos || made == a->n)
				done = 1;
		}
	}
	if (a->json) {
		run_json(a, tok, &g, jid, jms, made, nt);
	} else {
		if (tok)
			gen_text_finish(&tx, stdout);
		printf("\n");
	}
	fflush(stdout);
	free(jid);
	free(jms);
	jid = NULL;
	jms = NULL;
	if (a->stats || (isatty(2) && !a->quiet)) /* the summary line: always on a terminal */
		print_stats(&g, g.depth);
	rc = 0;
	if (prof_g && (r = prof_write_trace(prof_g, a->profile))) {
		fprintf(stderr, "moecard: %s: cannot write the profile: %s\n", a->profile,
			strerror(-r));
		rc = 1;
	}
	goto out;
jout:
	free(jid);
	free(jms);
out:
	prof_stop();
	gen_text_free(&tx);
	gen_free(&g);
	return rc;
}

/* The end of a run: --stats prints the engine's figures (emu: card, expert cache), the
 * --expert-trace file is completed, the engine and the checkpoint closed. Returns rc, or 1 when
 * the trace could not be written. */
static int run_close(const struct cli_opts *a, struct engine *m, struct ckpt *ck, int rc)
{
	if (a->stats && m->ops && m->ops->stats)
		m->ops->stats(m, stderr, a->json);
	rc = close_trace(a, rc);
	engine_free(m);
	ckpt_close(ck);
	return rc;
}

int cli_run(int argc, char **argv)
{
	struct cli_opts a;
	struct ckpt ck;
	struct engine m;
	struct tokenizer *tok;
	int *toks, nt;
	int rc = parse_args(argc, argv, &a, &run_cmd);
	if (rc || (rc = run_check(&a)))
		return rc == 1 ? 0 : rc;
	if (run_prompt(&a, &tok, &toks, &nt))
		return 1;
	/* the prompt's forwards as long as the prompt up to 512 rows (as bench's: the card's
	 * batched prefill takes a chunk whole, the cpu engine's GEMMs reuse each weight over its
	 * rows), at least 64 (the generation loop's verify rows) */
	int batch = nt < 64 ? 64 : nt > 512 ? 512 : nt;
	if ((rc = cli_open_model(&a, &ck, &m, nt + a.n + 8, batch))) {
		free(toks);
		tokenizer_free(tok);
		return rc;
	}
	rc = run_input(&a, &ck.cfg, &toks, &nt);
	if (!rc && (a.dump_logits || a.dump_mtp))
		rc = run_dump(&a, &m, &ck, toks, nt);
	/* -n 0 with a dump: the dump only, the statistics cover the dumped sequence */
	if (!rc && !(a.n == 0 && (a.dump_logits || a.dump_mtp)))
		rc = run_generate(&a, &m, tok, toks, nt);
	tokenizer_free(tok);
	free(toks);
	return run_close(&a, &m, &ck, rc);
}

/* Modeled card time so far (kernels + firmware + host link, ns) of an engine on the emulated card;
 * 0 on engines without a card clock. */
static double bench_card_ns(struct engine *m)
{
	struct backend *be = card_engine_backend(m);
	struct backend_stats s;
	if (!be || !(backend_caps(be) & BACKEND_CAP_CARD_CLOCK))
		return 0;
	backend_stats(be, &s);
	return (double)s.busy_ns + (double)s.h2c_ns + (double)s.c2h_ns;
}

/* Greedy decode of gen tokens after prompt[0..np) through the generation loop at depth; the
 * engine is reset first. Returns 0, the decode time in st, its modeled card ns in *card_ns (0 off
 * the emulated card), tokens in out[gen]. */
static int bench_decode(struct engine *m, const int *prompt, int np, int gen, int depth, int *out,
			struct gen_stats *st, double *card_ns)
{
	struct gen g;
	struct gen_opts go = {.spec_depth = depth};
	gen_sampling_default(&go.s);
	engine_truncate(m, 0, 0);
	int r = gen_init(&g, m, &go, np + gen + 8);
	if (r)
		return r;
	*card_ns = 0;
	if (!(r = gen_append(&g, prompt, np)) && !(r = gen_sync(&g))) {
		gen_stats_reset(&g);
		double c0 = bench_card_ns(m);
		int made = 0, ids[8], n;
		while (made < gen && !(r = gen_step(&g, ids, &n)))
			for (int i = 0; i < n && made < gen; i++)
				out[made++] = ids[i];
		*card_ns = bench_card_ns(m) - c0;
	}
	*st = g.st;
	gen_free(&g);
	return r;
}

/* bench --isa-ab: the decode tokens (or the --seqs steps) alternate between the engine's own
 * SIMD path (a) and a rival (b, NULL: off), even ones on a; each side's seconds and count. */
/* Candidate rows a screened row, over the rows that did not fall back to the full head. */
/* ", N refined" (the first pass's candidates a screened row that a second code vector
 * refined), or "" when none was. */
static const char *screen_refined(const struct head_screen_stats *h)
{
	static char b[64];
	uint64_t n = h->rows - h->fallbacks;
	if (!h->refined || !n)
		return "";
	snprintf(b, sizeof b, ", of %.1f refined", (double)h->refined / (double)n);
	return b;
}

static double screen_cands(const struct head_screen_stats *h)
{
	uint64_t n = h->rows - h->fallbacks;
	return n ? (double)h->cands / (double)n : 0;
}

struct bench_ab {
	const char *a, *b;
	double t[2];
	int n[2];
};

/* The side step g runs on, its path set in the engine (0 when off). */
static int ab_pick(const struct bench_ab *ab, struct engine *m, int g)
{
	if (!ab->b)
		return 0;
	m->ops->set_isa(m, g & 1 ? ab->b : ab->a);
	return g & 1;
}

/* Each side's tok/s at rows tokens a step; 0 unless both sides ran. */
static int ab_rates(const struct bench_ab *ab, int rows, double *ra, double *rb)
{
	if (!ab->b || !ab->n[0] || !ab->n[1] || ab->t[0] <= 0 || ab->t[1] <= 0)
		return 0;
	*ra = rows * ab->n[0] / ab->t[0];
	*rb = rows * ab->n[1] / ab->t[1];
	return 1;
}

/* The comparison's JSON keys (after others), or one line of text: lead (n + n unit): .. */
static void ab_report(const struct bench_ab *ab, int rows, int json, const char *lead,
		      const char *unit)
{
	double ra, rb;
	if (!ab_rates(ab, rows, &ra, &rb))
		return;
	if (json)
		printf(",\"ab_isa_a\":\"%s\",\"ab_isa_b\":\"%s\",\"ab_decode_tok_s_a\":%.2f,"
		       "\"ab_decode_tok_s_b\":%.2f,\"ab_ratio\":%.4f",
		       ab->a, ab->b, ra, rb, ra / rb);
	else
		printf("%s (%d + %d %s): %s %.2f tok/s, %s %.2f tok/s: %.3fx\n", lead, ab->n[0],
		       ab->n[1], unit, ab->a, ra, ab->b, rb, ra / rb);
}

/* --screen-ab: the two sides' decode rates at rows tokens a step (JSON keys, or a line). */
static void screen_ab_report(const struct bench_ab *ab, int rows, int json)
{
	double ra, rb;
	if (!ab_rates(ab, rows, &ra, &rb))
		return;
	if (json)
		printf(",\"screen_ab_tok_s_screened\":%.2f,\"screen_ab_tok_s_full\":%.2f,"
		       "\"screen_ab_ratio\":%.4f",
		       ra, rb, ra / rb);
	else
		printf("decode with the head screen on and off step by step (%d + %d steps): "
		       "screened %.2f tok/s, full BF16 head %.2f tok/s: %.3fx (the same tokens)\n",
		       ab->n[0], ab->n[1], ra, rb, ra / rb);
}

/* bench --seqs B: what serve --max-batch B runs. B sequences of prompt_len random tokens are
 * prefilled one after another, each into its own cache, then gen greedy steps decode all B
 * together in one forward a step (cli_seqs.h): every matrix read once for all rows, the MoE
 * grouping the rows by expert. On the cpu engine (forward_rows, every row on the per-row path)
 * the measured host wall time of the decode steps; on a card (forward_seqs) one JSON object (or a
 * line) with their modeled time: card busy + link (the backend's clock) + the host's part per
 * row (sampling over the logits unless the greedy tokens came back instead (forward_seqs_top1),
 * the embedding row, at the modeled host rate), and the tokens
 * per second that gives. The same for B = 1 gives the baseline the ratios are taken against.
 * 0, -ENOTSUP when the engine has no batched path for B sequences, or a negative errno. */
static int bench_seqs(const struct cli_opts *a, struct engine *m, const struct config *c)
{
	int B = a->seqs, r;
	struct backend *be = card_engine_backend(m);
	struct cli_seqs sq;
	struct backend_stats s0 = {0}, s1 = {0};
	double p0 = now_s();
	if ((r = cli_seqs_open(&sq, m, c->vocab_size, B, a->prompt_len, a->gen)))
		return r;
	double prefill = now_s() - p0, w0 = now_s();
	if (be)
		backend_stats(be, &s0);
	struct bench_ab ab = {m->isa, a->isa_ab, {0, 0}, {0, 0}};
	/* --screen-ab: the head screen on for even steps, off for odd ones */
	int sab = a->screen_ab && m->ops->head_screen && !m->ops->head_screen(m, -1, NULL);
	struct bench_ab sb = {
	    sab ? "screened" : NULL, sab ? "full BF16 head" : NULL, {0, 0}, {0, 0}};
	for (int g = 0; g < a->gen && !r; g++) {
		int b = ab_pick(&ab, m, g);
		if (sab)
			m->ops->head_screen(m, !(g & 1), NULL);
		double t0 = now_s();
		r = cli_seqs_step(&sq);
		ab.t[b] += now_s() - t0;
		ab.n[b]++;
		sb.t[g & 1] += now_s() - t0;
		sb.n[g & 1]++;
	}
	ab_pick(&ab, m, 0); /* the engine's own path again */
	if (sab)
		m->ops->head_screen(m, 1, NULL);
	double wall = now_s() - w0;
	if (be)
		backend_stats(be, &s1);
	int top1 = sq.top1; /* the greedy tokens came back, not the logits */
	cli_seqs_close(&sq);
	if (r)
		return r;
	if (!be) { /* measured */
		double step = wall / a->gen * 1e3;
		if (a->json) {
			printf("{\"backend\":\"%s\",\"model\":\"%s\",\"seqs\":%d,\"prompt_len\":%d,"
			       "\"gen\":%d,\"threads\":%d,\"step_ms\":%.4f,\"decode_tok_s\":%.2f,"
			       "\"prefill_s\":%.3f",
			       a->backend, a->model, B, a->prompt_len, a->gen, m->threads, step,
			       B / step * 1e3, prefill);
			ab_report(&ab, B, 1, NULL, NULL);
			screen_ab_report(&sb, B, 1);
			printf("}\n");
		} else {
			printf(
			    "%d sequence%s decoded together: step %.3f ms, %.1f tok/s (measured, "
			    "%d thread%s)\n",
			    B, B == 1 ? "" : "s", step, B / step * 1e3, m->threads,
			    m->threads == 1 ? "" : "s");
			ab_report(&ab, B, 0, "steps with the paths alternating", "steps");
			screen_ab_report(&sb, B, 0);
			struct head_screen_stats hs;
			int ns = sab ? sb.n[0] : a->gen; /* the steps on the screen */
			if (top1 && m->ops->head_screen && !m->ops->head_screen(m, -1, &hs) &&
			    hs.rows)
				printf(
				    "head screen: %.3f ms a step on the approximate logits, %.3f "
				    "ms on the bounds and candidates (%.2f a row%s), %.3f ms on "
				    "the "
				    "full head for %llu of %llu rows (%s)\n",
				    hs.s_approx * 1e3 / ns, hs.s_pick * 1e3 / ns, screen_cands(&hs),
				    screen_refined(&hs), hs.s_full * 1e3 / ns,
				    (unsigned long long)hs.fallbacks, (unsigned long long)hs.rows,
				    B == 1 ? "one row a step"
				    : hs.s_approx > 0
					? "several rows on integer dot products"
					: "a step of several rows takes the full head on this "
					  "path");
		}
		return 0;
	}
	struct card_e2e hm;
	card_host_model(c, backend_board(be), 1, 1, top1, &hm); /* the logits or the tokens */
	double card = (double)(s1.busy_ns - s0.busy_ns) / 1e6 / a->gen;
	double link = (double)(s1.h2c_ns + s1.c2h_ns - s0.h2c_ns - s0.c2h_ns) / 1e6 / a->gen;
	double host = B * hm.host_sample_ms, step = card + link + host;
	if (a->json)
		printf("{\"backend\":\"%s\",\"model\":\"%s\",\"seqs\":%d,\"prompt_len\":%d,"
		       "\"gen\":%d,\"modeled_step_ms\":%.4f,\"modeled_card_ms_per_step\":%.4f,"
		       "\"modeled_link_ms_per_step\":%.4f,\"modeled_host_ms_per_step\":%.4f,"
		       "\"modeled_decode_tok_s\":%.2f,\"host_wall_s\":%.3f,"
		       "\"modeled_host_leaves_out\":\"list building, the rows' grouping by "
		       "expert\"}\n",
		       a->backend, a->model, B, a->prompt_len, a->gen, step, card, link, host,
		       B / step * 1e3, wall);
	else
		printf(
		    "%d sequences decoded together: modeled step %.3f ms (card %.3f + link %.3f + "
		    "host %.3f: the sampling; not counted: the host's list building and its "
		    "grouping of the rows by expert after each MoE layer's routing), %.1f tok/s "
		    "modeled; %.1f s of host wall time\n",
		    B, step, card, link, host, B / step * 1e3, wall);
	return 0;
}

/* bench on the emulated card: the statistics add the 671B prefill what-if of every board tree
 * beside the program (B/board/NAME.dtb; card_engine_whatif_prefill_boards) unless
 * MOECARD_WHATIF_PREFILL is set already (0: off). */
static void bench_whatif_env(const struct cli_opts *a)
{
	char exe[4096];
	if (strcmp(a->backend, "emu") || getenv("MOECARD_WHATIF_PREFILL"))
		return;
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	char *slash = n > 0 ? memrchr(exe, '/', (size_t)n) : NULL;
	if (slash) {
		*slash = 0;
		setenv("MOECARD_WHATIF_PREFILL", exe, 1);
	}
}

/* What bench measured. */
struct bench_res {
	double t_load, tp, td; /* load, prefill and decode seconds (the last repetition) */
	int reps;	       /* -r N: repetitions measured */
	double pp[BENCH_MAX_REPS], tg[BENCH_MAX_REPS]; /* prefill / decode tok/s of each */
	int depth;		 /* --spec mtp: the speculation depth, else 0 */
	struct gen_stats sp, ss; /* plain / speculative decode through the generation loop */
	double cp, cs;		 /* modeled card ns of the plain / speculative decode (emu) */
	int match;		 /* plain and speculative greedy output identical */
	struct bench_ab ab;	 /* --isa-ab: the decode tokens on the two paths */
	struct bench_ab sab; /* --screen-ab: the decode tokens with and without the head screen */
	int screen;	     /* the greedy decode ran on the head's 8-bit screen (cpu engine) */
	struct head_screen_stats hst; /* its statistics after the decode */
};

/* Bytes one decode token of the engine reads: the weights it uses (attention, dense FFNs, shared
 * experts, the router and experts_per_tok routed experts of each MoE layer, lm_head as the engine
 * holds it) and the latent cache at the run's mean depth. The MTP layer and the embedding (one
 * row) are left out. */
static double bench_token_bytes(const struct cli_opts *a, const struct ckpt *ck,
				const struct bench_res *res)
{
	struct ckpt_stats s;
	ckpt_stats(ck, &s);
	const struct config *c = &ck->cfg;
	const struct qmat *h = &ck->w.lm_head;
	int moe = 0;
	for (int l = 0; l < c->num_hidden_layers; l++)
		moe += config_layer_is_moe(c, l);
	double head = (double)h->rows * h->cols;
	int sr = (h->rows + 127) / 128, sc = (h->cols + 127) / 128; /* 128x128 scale blocks */
	if (h->fmt != QMAT_FP8 && a->head && !strcmp(a->head, "fp8"))
		head += 4.0 * sr * sc; /* codes + scales */
	else if (res->screen)	       /* the screen's codes and scales, the candidates' panels */
		head +=
		    4.0 * h->rows + (res->hst.rows ? (double)res->hst.panels / res->hst.rows : 0) *
					KERN_PW * h->cols * 2;
	else
		head *= h->fmt == QMAT_FP8 ? 1 : h->fmt == QMAT_F32 ? 4 : 2;
	double kv_layer = (double)(c->kv_lora_rank + c->qk_rope_head_dim) * sizeof(float);
	double depth = a->prompt_len + a->gen / 2.0;
	return (double)s.bytes_attn + (double)s.bytes_dense + (double)s.bytes_shared +
	       (double)s.bytes_router + (double)moe * c->num_experts_per_tok * s.bytes_expert +
	       head + depth * kv_layer * c->num_hidden_layers;
}

struct bw_arg {
	const unsigned char *p;
	size_t n;
	uint64_t sum;
	double t0, t1;	   /* when this thread's read began and ended */
	atomic_int *go;	   /* the threads start together when it is set, or NULL */
	atomic_int *ready; /* counts the threads waiting for go */
};

static void *bw_read(void *v)
{
	struct bw_arg *b = v;
	if (b->go) {
		atomic_fetch_add_explicit(b->ready, 1, memory_order_release);
		while (!atomic_load_explicit(b->go, memory_order_acquire))
			__asm__ volatile("" ::: "memory");
	}
	b->t0 = now_s();
	b->sum = bench_sum_words(b->p, b->n);
	b->t1 = now_s();
	return NULL;
}

/* One read pass of n bytes from p split evenly between nt threads: the bytes read (0 when the
 * part is too small) and the seconds from the first thread's start to the last one's end (the
 * threads' creation not counted) in *dt. */
static size_t bw_pass(const unsigned char *p, size_t n, int nt, double *dt)
{
	struct bw_arg b[16];
	pthread_t th[16];
	nt = nt < 1 ? 1 : nt > 16 ? 16 : nt;
	size_t part = n / (size_t)nt / 64 * 64;
	*dt = 0;
	if (part < 4096)
		return 0;
	/* the helper threads are created first and wait for go, so the pass times the reads, not
	 * the creation; a part whose thread cannot be created is read by the caller afterwards */
	atomic_int go = 0, ready = 0;
	int started = 0;
	for (int t = 0; t < nt; t++)
		b[t] = (struct bw_arg){p + (size_t)t * part, part, 0, 0, 0, t ? &go : NULL, &ready};
	while (started + 1 < nt &&
	       pthread_create(&th[started + 1], NULL, bw_read, &b[started + 1]) == 0)
		started++;
	while (atomic_load_explicit(&ready, memory_order_acquire) < started)
		__asm__ volatile("" ::: "memory");
	atomic_store_explicit(&go, 1, memory_order_release);
	bw_read(&b[0]);
	for (int t = 1; t <= started; t++)
		pthread_join(th[t], NULL);
	for (int t = started + 1; t < nt; t++) {
		b[t].go = NULL;
		bw_read(&b[t]);
	}
	double t0 = b[0].t0, t1 = b[0].t1;
	uint64_t sink = 0;
	for (int t = 0; t < nt; t++) {
		t0 = b[t].t0 < t0 ? b[t].t0 : t0;
		t1 = b[t].t1 > t1 ? b[t].t1 : t1;
		sink += b[t].sum;
	}
	__asm__ volatile("" : : "r"(sink));
	*dt = t1 - t0;
	return part * (size_t)nt;
}

/* The resident embedding table (as large as lm_head, the largest tensor a decode step streams;
 * the head itself is released under --head fp8) as the bytes the read passes take. */
static const unsigned char *bench_stream_src(const struct ckpt *ck, size_t *n)
{
	const struct qmat *h = &ck->w.embed_tokens;
	*n = (size_t)h->rows * h->cols * (h->fmt == QMAT_FP8 ? 1 : h->fmt == QMAT_F32 ? 4 : 2);
	return (const unsigned char *)h->w;
}

/* Read bandwidth of this machine in GB/s with nt threads: the best of three passes over the
 * resident embedding table, split evenly between the threads. 0 when it cannot be measured. */
static double bench_stream_gbps(const struct ckpt *ck, int nt)
{
	size_t n;
	const unsigned char *p = bench_stream_src(ck, &n);
	double best = 0, dt;
	for (int pass = 0; pass < 3; pass++) {
		size_t got = bw_pass(p, n, nt, &dt);
		if (got && dt > 0 && got / dt / 1e9 > best)
			best = got / dt / 1e9;
	}
	return best;
}

/* The read passes between decode tokens: windows of BENCH_STREAM_WIN bytes that move through the
 * embedding table (each larger than the last-level caches of the machines we run on), summed, so
 * the decode's share of the read bandwidth compares the two over the same minutes of a machine
 * whose speed drifts. */
#define BENCH_STREAM_WIN ((size_t)96 << 20)
struct bench_stream {
	const unsigned char *p;
	size_t n, off;
	int nt;
	double bytes, secs;
};

static void bench_stream_step(struct bench_stream *st)
{
	if (!st->p || st->n < 4096)
		return;
	size_t w = st->n < BENCH_STREAM_WIN ? st->n : BENCH_STREAM_WIN;
	if (st->off + w > st->n)
		st->off = 0;
	double dt;
	size_t got = bw_pass(st->p + st->off, w, st->nt, &dt);
	st->off += w;
	if (got && dt > 0) {
		st->bytes += (double)got;
		st->secs += dt;
	}
}

/* Prefill of --prompt-len pseudo-random tokens (seeded by --seed) in chunks of batch, greedy
 * decode of --gen tokens, and with --spec mtp both decodes again through the generation loop.
 * 0, 1 when out of memory, or the negative errno of a failed forward. */
static int bench_measure(const struct cli_opts *a, struct engine *m, int V, int batch,
			 struct bench_res *res, struct bench_stream *st)
{
	int *toks = malloc(sizeof(int) * (size_t)a->prompt_len);
	int *o_plain = malloc(sizeof(int) * (size_t)a->gen);
	int *o_spec = malloc(sizeof(int) * (size_t)a->gen);
	float *logits = malloc(sizeof(float) * (size_t)V);
	int r = 1, sab = 0;
	if (!toks || !logits || !o_plain || !o_spec)
		goto out;
	uint64_t s = a->smp.seed * 0x9E3779B97F4A7C15ull + 1;
	for (int i = 0; i < a->prompt_len; i++) {
		s ^= s << 13, s ^= s >> 7, s ^= s << 17;
		toks[i] = (int)(s % (uint64_t)V);
	}
	/* warm-up: touch the weights once so page faults are not timed */
	if ((r = engine_forward(m, toks, 1, logits, 0, NULL)))
		goto out;
	engine_truncate(m, 0, 0);
	double tp = now_s();
	for (int i = 0; i < a->prompt_len; i += batch) {
		int T = a->prompt_len - i < batch ? a->prompt_len - i : batch;
		if ((r = engine_forward(m, toks + i, T, logits, 0, NULL)))
			goto out;
	}
	res->tp = now_s() - tp;
	res->td = 0;
	/* greedy tokens: where the engine can pick them where the logits are (the card's head)
	 * only the token comes back (engine_forward_top1) */
	int t = sampler_argmax(logits, V);
	/* --screen-ab: the head screen on for even tokens, off for odd ones */
	sab = a->screen_ab && m->ops->head_screen && !m->ops->head_screen(m, -1, NULL);
	for (int g = 0; g < a->gen; g++) {
		int b = ab_pick(&res->ab, m, g);
		if (sab)
			m->ops->head_screen(m, !(g & 1), NULL);
		double t0 = now_s();
		if ((r = engine_forward_top1(m, &t, 1, &t, logits)))
			goto out;
		double dt = now_s() - t0;
		res->td += dt;
		res->ab.t[b] += dt;
		res->ab.n[b]++;
		res->sab.t[g & 1] += sab ? dt : 0;
		res->sab.n[g & 1] += sab;
		if (st) /* a read pass after each token, not timed with it */
			bench_stream_step(st);
	}

	/* --spec mtp: plain and speculative greedy decode through the same loop, same run */
	if (res->depth > 0) {
		if ((r = bench_decode(m, toks, a->prompt_len, a->gen, 0, o_plain, &res->sp,
				      &res->cp)) ||
		    (r = bench_decode(m, toks, a->prompt_len, a->gen, res->depth, o_spec, &res->ss,
				      &res->cs)))
			goto out;
		res->match = !memcmp(o_plain, o_spec, sizeof(int) * (size_t)a->gen);
	}
out:
	ab_pick(&res->ab, m, 0); /* the engine's own path again */
	if (sab)
		m->ops->head_screen(m, 1, NULL);
	res->screen = m->ops->head_screen && !m->ops->head_screen(m, -1, &res->hst) &&
		      engine_cpu_model(m)->hs_off == 0;
	res->sab.a = sab ? "screened" : NULL;
	res->sab.b = sab ? "full BF16 head" : NULL;
	free(toks);
	free(logits);
	free(o_plain);
	free(o_spec);
	return r;
}

/* Prints the figures on stdout: one JSON object (--json) or lines of text. */
static void bench_mean_sd(const double *v, int n, double *mean, double *sd)
{
	double s = 0, q = 0;
	for (int i = 0; i < n; i++)
		s += v[i];
	*mean = n ? s / n : 0;
	for (int i = 0; i < n; i++)
		q += (v[i] - *mean) * (v[i] - *mean);
	*sd = n > 1 ? sqrt(q / (n - 1)) : 0;
}

static void bench_report(const struct cli_opts *a, const struct engine *m, double tok_bytes,
			 double stream_gbps, double stream_best, const struct bench_res *res)
{
	const struct gen_stats *sp = &res->sp, *ss = &res->ss;
	double tp = res->tp, td = res->td, cp = res->cp, cs = res->cs;
	int depth = res->depth;
	double acc = ss->drafted ? (double)ss->accepted / ss->drafted : 0;
	double tpf = ss->spec_steps ? (double)ss->spec_tokens / ss->spec_steps : 0;
	double plain_tps = sp->decode_s > 0 ? sp->decode_tokens / sp->decode_s : 0;
	double spec_tps = ss->decode_s > 0 ? ss->decode_tokens / ss->decode_s : 0;
	const char *isa = m->isa ? m->isa : "-";
	double pp_m, pp_sd, tg_m, tg_sd;
	bench_mean_sd(res->pp, res->reps, &pp_m, &pp_sd);
	bench_mean_sd(res->tg, res->reps, &tg_m, &tg_sd);
	(void)tp;
	(void)td;
	struct rusage ru; /* the process's peak resident set so far (load and the runs) */
	double rss_mb = getrusage(RUSAGE_SELF, &ru) ? 0 : ru.ru_maxrss / 1024.0;
	if (a->json) {
		printf("{\"backend\":\"%s\",\"model\":\"%s\",\"act\":\"%s\",\"threads\":%d,"
		       "\"isa\":\"%s\",\"prompt_len\":%d,\"gen\":%d,\"load_s\":%.3f,"
		       "\"peak_rss_mb\":%.1f,"
		       "\"reps\":%d,\"prefill_tok_s\":%.2f,\"prefill_tok_s_sd\":%.2f,"
		       "\"decode_tok_s\":%.2f,\"decode_tok_s_sd\":%.2f",
		       a->backend, a->model, m->act_fp8 ? "fp8" : "none", m->threads, isa,
		       a->prompt_len, a->gen, res->t_load, rss_mb, res->reps, pp_m, pp_sd, tg_m,
		       tg_sd);
		if (stream_gbps > 0)
			printf(",\"decode_bytes_per_tok\":%.0f,\"stream_gbps\":%.2f,"
			       "\"stream_best_gbps\":%.2f,\"decode_gbps\":%.2f,"
			       "\"decode_stream_frac\":%.4f",
			       tok_bytes, stream_gbps, stream_best, tg_m * tok_bytes / 1e9,
			       tg_m * tok_bytes / 1e9 / stream_gbps);
		ab_report(&res->ab, 1, 1, NULL, NULL);
		if (res->screen)
			printf(",\"head_screen_rows\":%llu,\"head_screen_cands_per_row\":%.2f,"
			       "\"head_screen_cands_max\":%llu,\"head_screen_full_rows\":%llu",
			       (unsigned long long)res->hst.rows, screen_cands(&res->hst),
			       (unsigned long long)res->hst.cand_max,
			       (unsigned long long)res->hst.fallbacks);
		screen_ab_report(&res->sab, 1, 1);
		if (depth > 0)
			printf(
			    ",\"spec\":\"mtp\",\"spec_depth\":%d,\"drafted\":%ld,\"accepted\":%ld,"
			    "\"acceptance\":%.4f,\"tokens_per_forward\":%.3f,"
			    "\"plain_decode_tok_s\":%.2f,\"spec_decode_tok_s\":%.2f,"
			    "\"spec_speedup\":%.3f,\"spec_greedy_match\":%s",
			    depth, ss->drafted, ss->accepted, acc, tpf, plain_tps, spec_tps,
			    plain_tps > 0 ? spec_tps / plain_tps : 0,
			    res->match ? "true" : "false");
		if (depth > 0 && cp > 0 && cs > 0)
			printf(
			    ",\"modeled_card_ms_per_tok_plain\":%.4f,"
			    "\"modeled_card_ms_per_tok_spec\":%.4f,\"modeled_spec_speedup\":%.3f",
			    cp / a->gen / 1e6, cs / a->gen / 1e6, cp / cs);
		printf("}\n");
		return;
	}
	const char *name = strrchr(a->model, '/');
	name = name && name[1] ? name + 1 : a->model;
	printf("load %.3f s, peak RSS %.0f MB; %d repetition%s, mean +- sd\n\n"
	       "| model | backend | act | threads | isa | test | t/s |\n"
	       "| --- | --- | --- | --: | --- | --- | --: |\n"
	       "| %s | %s | %s | %d | %s | pp%d (prefill) | %.2f +- %.2f |\n"
	       "| %s | %s | %s | %d | %s | tg%d (decode) | %.2f +- %.2f |\n\n",
	       res->t_load, rss_mb, res->reps, res->reps == 1 ? "" : "s", name, a->backend,
	       m->act_fp8 ? "fp8" : "none", m->threads, isa, a->prompt_len, pp_m, pp_sd, name,
	       a->backend, m->act_fp8 ? "fp8" : "none", m->threads, isa, a->gen, tg_m, tg_sd);
	if (stream_gbps > 0)
		printf(
		    "decode reads %.1f MB a token: %.2f GB/s, %.1f%% of the %.2f GB/s this machine "
		    "read with %d thread%s between the decode tokens (best of three passes after "
		    "them: %.2f GB/s)\n",
		    tok_bytes / 1e6, tg_m * tok_bytes / 1e9,
		    100 * tg_m * tok_bytes / 1e9 / stream_gbps, stream_gbps, m->threads,
		    m->threads == 1 ? "" : "s", stream_best);
	ab_report(&res->ab, 1, 0, "decode with the paths alternating token by token", "tokens");
	if (res->screen)
		printf("head screen: greedy tokens from the 8-bit copy of lm_head, %.2f candidate "
		       "rows a token recomputed exactly (at most %llu), %llu of %llu tokens on the "
		       "full head\n",
		       screen_cands(&res->hst), (unsigned long long)res->hst.cand_max,
		       (unsigned long long)res->hst.fallbacks, (unsigned long long)res->hst.rows);
	screen_ab_report(&res->sab, 1, 0);
	if (depth > 0)
		printf("spec mtp  depth %d: accepted %ld of %ld drafts (%.1f%%), %.3f tokens per "
		       "main forward\n"
		       "          decode %.2f tok/s vs %.2f tok/s plain: speed-up %.3fx; greedy "
		       "output %s\n",
		       depth, ss->accepted, ss->drafted, 100 * acc, tpf, spec_tps, plain_tps,
		       plain_tps > 0 ? spec_tps / plain_tps : 0,
		       res->match ? "identical" : "DIFFERS");
	if (depth > 0 && cp > 0 && cs > 0)
		printf("          modeled card %.4f ms/token vs %.4f ms/token plain: modeled "
		       "speed-up %.3fx (card time only: the MTP layer's eh_proj runs on the "
		       "host)\n",
		       cs / a->gen / 1e6, cp / a->gen / 1e6, cp / cs);
}

int cli_bench(int argc, char **argv)
{
	struct cli_opts a;
	struct ckpt ck;
	struct engine m;
	struct bench_res res = {0};
	int r = parse_args(argc, argv, &a, &bench_cmd), rc = 1;
	if (r)
		return r == 1 ? 0 : r;
	if (a.prompt_len < 1 || a.gen < 1) {
		fprintf(stderr, "moecard: bench: --prompt-len and --gen must be >= 1\n");
		return 2;
	}
	if (a.reps > BENCH_MAX_REPS) {
		fprintf(stderr, "moecard: bench: -r: at most %d repetitions, got %d\n",
			BENCH_MAX_REPS, a.reps);
		return 2;
	}
	int batch = a.prompt_len < 512 ? a.prompt_len : 512;
	if (batch < 8)
		batch = 8; /* room for a verify batch */
	if (batch < a.seqs)
		batch = a.seqs; /* cpu: the B decode rows of a step in one forward */
	/* bench drafts only with --spec mtp: the MTP layer stays out of memory */
	if (a.spec < 0)
		a.spec = 0;
	if (a.seqs > 64) {
		fprintf(stderr, "moecard: bench: --seqs %d: 1..64 sequences\n", a.seqs);
		return 2;
	}
	if (a.isa_ab && (strcmp(a.backend, "cpu") || a.kernels)) {
		fprintf(stderr, "moecard: bench: --isa-ab: the cpu engine's decode (--backend cpu, "
				"not with --kernels)\n");
		return 2;
	}
	if (a.kernels && (strcmp(a.backend, "cpu") || a.seqs)) {
		fprintf(stderr,
			"moecard: bench: --kernels: the cpu engine's kernels (--backend cpu, "
			"no --seqs)\n");
		return 2;
	}
	int cpu_rows = a.seqs && !strcmp(a.backend, "cpu");
	a.ex.seqs = cpu_rows ? 0 : a.seqs;
	a.ex.long_run = 1; /* bench measures steady decode: weights in huge pages */
	double t0 = now_s();
	if ((r = cli_open_model(&a, &ck, &m, a.prompt_len + a.gen + 16, batch)))
		return r;
	res.t_load = now_s() - t0;
	if (a.isa_ab) {
		res.ab = (struct bench_ab){m.isa, a.isa_ab, {0, 0}, {0, 0}};
		char paths[256];
		if (!m.ops->set_isa || m.ops->set_isa(&m, a.isa_ab) ||
		    m.ops->set_isa(&m, res.ab.a)) {
			kern_isa_describe(paths, sizeof paths);
			const char *runs = strstr(paths, "paths this CPU runs: ");
			fprintf(stderr,
				"moecard: bench: --isa-ab: '%s': not a path this CPU runs (%s)\n",
				a.isa_ab, runs ? runs + 21 : "scalar");
			engine_free(&m);
			ckpt_close(&ck);
			return 2;
		}
	}
	if (a.kernels) {
		rc = bench_kernels(&a, &m);
		engine_free(&m);
		ckpt_close(&ck);
		return rc;
	}
	if (a.seqs) { /* the cpu engine's rows path, or a card's sequence slots */
		if ((r = bench_seqs(&a, &m, &ck.cfg)) == -ENOTSUP) {
			fprintf(stderr,
				"moecard: bench: --seqs %d: this engine decodes one sequence at a "
				"time (its batched path is off)\n",
				a.seqs);
			r = 2;
		} else if (r) {
			r = fail_fwd(r);
		}
		engine_free(&m);
		ckpt_close(&ck);
		return r;
	}
	res.depth = a.spec > 0 ? spec_depth_for(&a, &m, "bench") : 0;
	if (res.depth >= 0) {
		int reps = a.reps > 0 ? a.reps : 1, cpu = !strcmp(a.backend, "cpu");
		struct bench_stream st = {.nt = m.threads};
		if (cpu)
			st.p = bench_stream_src(&ck, &st.n);
		r = 0;
		for (int i = 0; i < reps && !r; i++) {
			r = bench_measure(&a, &m, ck.cfg.vocab_size, batch, &res, cpu ? &st : NULL);
			if (!r) {
				res.pp[res.reps] = a.prompt_len / res.tp;
				res.tg[res.reps++] = a.gen / res.td;
				if (isatty(2) && reps > 1)
					fprintf(stderr, "\rbench: repetition %d/%d", i + 1, reps);
			}
		}
		if (isatty(2) && reps > 1)
			fprintf(stderr, "\n");
		if (r > 0) {
			rc = 1;
		} else if (r) {
			rc = fail_fwd(r);
		} else {
			bench_report(&a, &m, cpu ? bench_token_bytes(&a, &ck, &res) : 0,
				     st.secs > 0 ? st.bytes / st.secs / 1e9 : 0,
				     cpu ? bench_stream_gbps(&ck, m.threads) : 0, &res);
			bench_whatif_env(&a);
			if (m.ops->stats)
				m.ops->stats(&m, stdout, a.json);
			rc = 0;
		}
	}
	rc = close_trace(&a, rc); /* bench parses --expert-trace too: the file must be complete */
	engine_free(&m);
	ckpt_close(&ck);
	return rc;
}
