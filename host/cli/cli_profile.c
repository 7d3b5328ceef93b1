/*
 * cli_profile.c - `moecard profile`: a run of --prompt-len tokens and --gen decode steps with the
 * profiler on (host/prof/prof.h: one timeline of host parts, link transfers and card commands),
 * written to --out as trace.json, summary.txt, summary.json and report.html; --sweep times one
 * board key's values with the what-if lists (mid and the 671B shapes); `moecard profile diff A B`
 * compares two summaries (docs/profiling.md).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "backend/backend.h"
#include "cli/cli.h"
#include "cli/cli_opts.h"
#include "cli/cli_seqs.h"
#include "decode/generate.h"
#include "engine/engine.h"
#include "load/ckpt.h"
#include "load/config.h"
#include "prof/prof.h"
#include "sched/card_engine.h"
#include "text/tokenizer.h"

static void profile_usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: moecard profile --model DIR --out DIR [--backend emu|xrt|cpu] "
	    "[--prompt-len P] [--gen N] [--seqs B] [--set KEY=V]... [--sweep KEY=V1,V2,...]\n"
	    "       moecard profile diff A B [--tol PCT] [--min-us U] [--only card|host|all]\n"
	    "Runs a prompt of P tokens and N decode steps with the profiler on and writes\n"
	    "DIR/trace.json (Chrome trace events: open in Perfetto), DIR/summary.txt,\n"
	    "DIR/summary.json and DIR/report.html. --seqs B profiles B sequences decoded\n"
	    "together instead (as serve --max-batch B runs them: each sequence's P random\n"
	    "prompt tokens prefilled before the timeline, then N steps of all B rows).\n"
	    "--sweep writes DIR/sweep.txt, sweep.json and\n"
	    "sweep.html instead (the what-if lists, no run). diff compares two profiles' folders\n"
	    "or summary.json files, largest differences first, and exits 1 when an op or layer\n"
	    "differs by more than --tol percent (default 5; ops and layers under --min-us\n"
	    "microseconds per step, default 1, do not count); --only card compares the card's\n"
	    "ops alone (their modeled times do not depend on the host). profile's --backend\n"
	    "defaults to emu.\n");
	cli_opts_help(f, CLI_SET_PROF);
}

static int profile_check(const struct cli_opts *a)
{
	if (!a->out) {
		fprintf(stderr, "moecard: profile: --out DIR is required\n");
		return 2;
	}
	if (a->seqs > 64) {
		fprintf(stderr, "moecard: profile: --seqs %d: 1..64 sequences\n", a->seqs);
		return 2;
	}
	if (a->seqs && a->overhead) {
		fprintf(stderr, "moecard: profile: --seqs: not with --overhead\n");
		return 2;
	}
	return 0;
}

static const struct cli_cmd profile_cmd = {"profile", CLI_SET_PROF, 0, profile_usage,
					   profile_check};

/* The board's figures the summary compares against. */
static void profile_card(struct engine *m, struct prof_card *pc)
{
	struct backend *be = card_engine_backend(m);
	memset(pc, 0, sizeof *pc);
	if (!be)
		return;
	const struct board_desc *bd = backend_board(be);
	pc->valid = 1;
	snprintf(pc->model, sizeof pc->model, "%s", bd->model);
	pc->n_pcs = (int)(bd->n_banks < PROF_MAX_PCS ? bd->n_banks : PROF_MAX_PCS);
	for (int b = 0; b < pc->n_pcs; b++)
		pc->pc_gbps[b] = bd->bank[b].bw_mbps / 1e3;
	pc->eff = bd->mem_eff_pct ? bd->mem_eff_pct / 100.0 : 1;
	pc->link_gbps = bd->pcie_bw_mbps / 1e3;
	for (uint32_t i = 0; i < bd->n_cus; i++) {
		const struct board_cu *cu = &bd->cu[i];
		uint32_t lanes = 0;
		for (uint32_t j = 0; j < cu->n_ports; j++)
			lanes += !strncmp(cu->port[j], "gmem_l", 6);
		if (!strcmp(cu->kernel, "fp8_gemv")) {
			pc->lanes = (int)lanes;
			pc->clock_mhz = bd->clock[cu->clock].freq_hz / 1e6;
		}
		if (cu->lane_macs)
			pc->attn_lane_macs = (int)cu->lane_macs;
	}
	if (!pc->clock_mhz && bd->n_cus)
		pc->clock_mhz = bd->clock[bd->cu[0].clock].freq_hz / 1e6;
}

/* A prompt of exactly P ids: a text through the tokenizer (its time is a host slice), repeated
 * and cut to P; without a tokenizer, ids from a fixed pseudo-random sequence. */
static int profile_prompt(struct tokenizer *tok, int V, int P, int *out)
{
	static const char text[] =
	    "The jury further said in term-end presentments that the City Executive Committee, "
	    "which had over-all charge of the election, deserves the praise and thanks of the "
	    "City of Atlanta for the manner in which the election was conducted. ";
	int n = 0;
	if (tok) {
		int32_t *ids = NULL;
		size_t k = 0;
		int r =
		    tokenizer_encode(tok, text, strlen(text), TOKENIZER_ENC_ADD_SPECIAL, &ids, &k);
		if (r || !k) {
			free(ids);
			return r ? r : -EINVAL;
		}
		for (; n < P; n++)
			out[n] = ids[(size_t)n % k] < V ? ids[(size_t)n % k] : 0;
		free(ids);
		prof_host("tokenize", "host", -1);
		return 0;
	}
	uint64_t s = 0x9E3779B97F4A7C15ull;
	for (; n < P; n++) {
		s = s * 6364136223846793005ull + 1442695040888963407ull;
		out[n] = (int)((s >> 33) % (uint64_t)V);
	}
	return 0;
}

static int profile_path(char *buf, size_t n, const char *dir, const char *file)
{
	return snprintf(buf, n, "%s/%s", dir, file) >= (int)n ? -ENAMETOOLONG : 0;
}

/* One pass: the engine rewound, the prompt (tokenized when the model has a tokenizer) and
 * --gen decode steps after the first token, each detokenized; its host wall time into *wall.
 * 0, or 1 with the message printed. */
static int profile_pass(const struct cli_opts *a, struct engine *m, const struct gen_opts *go,
			struct tokenizer *tok, int V, int *ids, double *wall)
{
	int P = a->prompt_len, N = a->gen, r, rc = 1;
	struct gen g;
	memset(&g, 0, sizeof g);
	engine_truncate(m, 0, 0);
	if ((r = gen_init(&g, m, go, P + N + 8))) {
		fprintf(stderr, "moecard: profile: %s\n", strerror(-r));
		return 1;
	}
	uint64_t t0 = prof_now();
	prof_mark();
	if ((r = profile_prompt(tok, V, P, ids))) {
		fprintf(stderr, "moecard: profile: %s: the tokenizer failed: %s\n", a->model,
			strerror(-r));
		goto out;
	}
	if ((r = gen_append(&g, ids, P)) || (r = gen_sync(&g))) {
		fprintf(stderr, "moecard: profile: the prompt's forward failed: %s\n",
			strerror(-r));
		goto out;
	}
	for (int made = 0; made <= N;) { /* the first token, then N decode steps */
		int out_ids[8], n;
		if ((r = gen_step(&g, out_ids, &n))) {
			fprintf(stderr, "moecard: profile: decode step %d failed: %s\n", made,
				strerror(-r));
			goto out;
		}
		if (tok) {
			char *txt = NULL;
			size_t tl;
			int32_t id32[8];
			for (int i = 0; i < n; i++)
				id32[i] = out_ids[i];
			if (!tokenizer_decode(tok, id32, (size_t)n, 0, &txt, &tl))
				free(txt);
			if (prof_g)
				prof_host("detokenize", "host", -1);
		}
		made += n;
	}
	*wall = (double)(prof_now() - t0) / 1e9;
	rc = 0;
out:
	gen_free(&g);
	return rc;
}

/* --seqs B: B sequences of P random prompt tokens each prefilled (before the timeline's mark),
 * then N steps that decode all B together, one forward of B rows a step, as serve runs them
 * (cli_seqs.h). Each step ends a token of the timeline. 0, or 1 with the message printed. */
static int profile_seqs_pass(const struct cli_opts *a, struct engine *m, int V)
{
	int B = a->seqs, r;
	struct cli_seqs sq;
	if ((r = cli_seqs_open(&sq, m, V, B, a->prompt_len, a->gen))) {
		if (r == -ENOTSUP)
			fprintf(
			    stderr,
			    "moecard: profile: --seqs %d: this engine decodes one sequence at a "
			    "time (its batched path is off)\n",
			    B);
		else
			fprintf(stderr,
				"moecard: profile: --seqs %d: a prompt's forward failed: %s\n", B,
				strerror(-r));
		return 1;
	}
	prof_mark();
	prof_token_end(); /* the steps below are the timeline's decode steps */
	for (int g = 0; g < a->gen && !r; g++)
		if (!(r = cli_seqs_step(&sq)) && prof_g) {
			prof_host("sample", "host", -1);
			prof_token_end();
		}
	cli_seqs_close(&sq);
	if (r)
		fprintf(stderr, "moecard: profile: --seqs %d: a decode step failed: %s\n", B,
			strerror(-r));
	return r ? 1 : 0;
}

/* The run: prompt, decode steps, summary and files. */
static int profile_run(const struct cli_opts *a)
{
	struct ckpt ck;
	struct engine m;
	struct tokenizer *tok = NULL;
	char err[512], path[4096];
	int P = a->prompt_len, N = a->gen, rc = 1, r;
	if (cli_load_ckpt(a, &ck))
		return 1;
	struct cli_opts ao = *a;
	int batch = P > 512 ? 512 : P < 8 ? 8 : P; /* the prompt's forwards as bench's and run's */
	if (a->seqs && batch < a->seqs)
		batch = a->seqs; /* cpu: the B rows of a step in one forward */
	if (a->seqs && strcmp(a->backend, "cpu"))
		ao.ex.seqs = a->seqs; /* a card: a latent cache per sequence slot */
	if ((rc = cli_engine_open(&ao, &ck, &m, P + N + 8, P + N + 8, batch))) {
		ckpt_close(&ck);
		return rc;
	}
	rc = 1;
	if (tokenizer_load(a->model, &tok, err, sizeof err))
		tok = NULL; /* a model without a tokenizer: ids */
	int *ids = malloc(sizeof(int) * (size_t)(P + N + 8));
	struct gen_opts go = {.s = a->smp, .spec_depth = a->spec == 1 ? 1 : 0};
	double wall;
	if (!ids || prof_start()) {
		fprintf(stderr, "moecard: profile: out of memory\n");
		goto out;
	}
	profile_card(&m, &prof_g->card);
	if (a->seqs ? profile_seqs_pass(a, &m, ck.cfg.vocab_size)
		    : profile_pass(a, &m, &go, tok, ck.cfg.vocab_size, ids, &wall))
		goto out;
	/* --overhead: the same passes with the profiler off and on again, in turn */
	double off = INFINITY, on = INFINITY;
	struct prof *keep = prof_g;
	prof_g = NULL;
	for (int k = 0; a->overhead && !a->seqs && k < 6; k++) {
		prof_g = NULL;
		if ((k & 1) && prof_start())
			break;
		if (k & 1)
			prof_g->card = keep->card;
		r = profile_pass(a, &m, &go, tok, ck.cfg.vocab_size, ids, &wall);
		prof_stop();
		if (r)
			break;
		if (k & 1)
			on = fmin(on, wall);
		else
			off = fmin(off, wall);
	}
	prof_stop();
	prof_g = keep;
	struct prof_summary s;
	if (prof_summarize(prof_g, &s)) {
		fprintf(stderr, "moecard: profile: out of memory (summary)\n");
		goto out;
	}
	snprintf(s.backend, sizeof s.backend, "%s", a->backend);
	snprintf(s.model, sizeof s.model, "%s", a->model);
	s.prompt_len = P;
	s.gen = N;
	s.seqs = a->seqs;
	if (a->seqs)
		s.ttft_ns = 0; /* the prompts ran before the timeline's mark */
	if (a->overhead && isfinite(on) && isfinite(off)) {
		s.ovh_on_s = on;
		s.ovh_off_s = off;
	}
	const char *files[] = {"trace.json", "summary.json", "summary.txt", "report.html"};
	for (int i = 0; i < 4; i++) {
		if ((r = profile_path(path, sizeof path, a->out, files[i])))
			break;
		if (i == 0)
			r = prof_write_trace(prof_g, path);
		else if (i == 1)
			r = prof_write_summary_json(&s, path);
		else if (i == 2) {
			FILE *f = fopen(path, "w");
			r = f ? prof_write_summary_txt(&s, f) : -errno;
			if (f && fclose(f) && !r)
				r = -EIO;
		} else
			r = prof_write_report(prof_g, &s, path);
		if (r) {
			fprintf(stderr, "moecard: profile: %s: %s\n", path, strerror(-r));
			break;
		}
	}
	if (!r) {
		prof_write_summary_txt(&s, stdout);
		printf("\nwrote %s/trace.json, summary.txt, summary.json, report.html\n", a->out);
		rc = 0;
	}
	prof_summary_free(&s);
out:
	prof_stop();
	free(ids);
	tokenizer_free(tok);
	engine_free(&m);
	ckpt_close(&ck);
	return rc;
}

/* --- sweep ----------------------------------------------------------------------------------- */
struct sweep_pt {
	double v;
	double dec_ms[2], ttft_ms[2]; /* [0] the model's shapes, [1] 671B */
	int ok[2];
};

static int sweep_point(const struct cli_opts *a, const struct config *cfg, const char *key,
		       const char *val, struct sweep_pt *pt)
{
	char set[640], err[512];
	struct backend *be;
	/* kv_format is the engine's: f32, or fp8 (the FP8 cache with the attention's FP8 datapath,
	 * the what-if's card_e2e.fp8_attn); every other key is the board's */
	int kv = !strcmp(key, "kv_format"), fp8 = kv && !strcmp(val, "fp8");
	if (kv && !fp8 && strcmp(val, "f32")) {
		fprintf(
		    stderr,
		    "moecard: profile: --sweep kv_format=%s: f32 or fp8 (the FP8 cache with the "
		    "FP8 attention datapath)\n",
		    val);
		return -EINVAL;
	}
	if (!strcmp(key, "expert_slots")) {
		fprintf(stderr,
			"moecard: profile: --sweep expert_slots: the what-if keeps every expert "
			"resident; profile runs with --set expert_slots=N instead\n");
		return -EINVAL;
	}
	snprintf(set, sizeof set, "%s%s%s=%s", a->board_set ? a->board_set : "",
		 a->board_set ? "," : "", kv ? "" : key, kv ? "" : val);
	if (kv) /* no board change of its own */
		snprintf(set, sizeof set, "%s", a->board_set ? a->board_set : "");
	struct backend_opts bo = {.board = a->board, .set = set};
	int r = backend_open(&be, "emu", &bo, err, sizeof err);
	if (r) {
		fprintf(stderr, "moecard: profile: --sweep: %s\n", err);
		return r;
	}
	struct config c671;
	config_deepseek_v3_671b(&c671);
	const struct config *cs[2] = {cfg, &c671};
	int pos[2] = {a->prompt_len, 4096}, T[2] = {a->prompt_len, 512};
	for (int k = 0; k < 2; k++) {
		double ns, bytes;
		struct card_e2e e2 = {.fp8_attn = fp8};
		struct card_pf_whatif w;
		pt->ok[k] = !card_engine_whatif2(cs[k], be, pos[k], 1, &ns, &bytes, &e2);
		pt->dec_ms[k] = e2.e2e_ms;
		if (T[k] > 1 && !card_engine_whatif_prefill(cs[k], be, T[k], &w))
			pt->ttft_ms[k] = w.e2e_ms;
		else
			pt->ttft_ms[k] = (double)T[k] * e2.e2e_ms; /* the token loop */
	}
	backend_close(be);
	return 0;
}

static int profile_sweep(const struct cli_opts *a)
{
	char key[64], vals[512], path[4096];
	const char *eq = strchr(a->sweep, '=');
	if (!eq || eq == a->sweep || (size_t)(eq - a->sweep) >= sizeof key || !eq[1] ||
	    strlen(eq + 1) >= sizeof vals) {
		fprintf(stderr, "moecard: profile: --sweep: expected KEY=V1,V2,..., got '%s'\n",
			a->sweep);
		return 2;
	}
	snprintf(key, sizeof key, "%.*s", (int)(eq - a->sweep), a->sweep);
	snprintf(vals, sizeof vals, "%s", eq + 1);
	struct config cfg;
	char err[512];
	snprintf(path, sizeof path, "%s/config.json", a->model);
	if (config_load(path, &cfg, err, sizeof err)) {
		fprintf(stderr, "moecard: %s\n", err);
		return 1;
	}
	struct sweep_pt pt[32];
	const char *vs[32];
	int n = 0;
	for (char *save = NULL, *t = strtok_r(vals, ",", &save); t;
	     t = strtok_r(NULL, ",", &save)) {
		if (n == 32) {
			fprintf(stderr, "moecard: profile: --sweep: at most 32 values\n");
			return 2;
		}
		vs[n] = t;
		char *end;
		pt[n].v = strtod(t, &end);
		if (end == t || *end) /* a name (kv_format): its place in the list on the chart */
			pt[n].v = n;
		if (sweep_point(a, &cfg, key, t, &pt[n]))
			return 2;
		n++;
	}
	double tok_s[32][2], ttft[32][2], v[32];
	FILE *tf = NULL, *jf = NULL;
	if (!profile_path(path, sizeof path, a->out, "sweep.txt"))
		tf = fopen(path, "w");
	if (!profile_path(path, sizeof path, a->out, "sweep.json"))
		jf = fopen(path, "w");
	if (!tf || !jf) {
		fprintf(stderr, "moecard: profile: %s: cannot write: %s\n", path, strerror(errno));
		if (tf)
			fclose(tf);
		if (jf)
			fclose(jf);
		return 1;
	}
	FILE *outs[2] = {stdout, tf};
	for (int o = 0; o < 2; o++) {
		fprintf(outs[o],
			"what-if sweep of %s (modeled, the engine's lists timed dry; end to end: "
			"card + link + host parts)\n"
			"  %-10s %14s %14s %16s %16s\n",
			key, key, "model tok/s", "model TTFT ms", "671B tok/s", "671B TTFT ms");
		for (int i = 0; i < n; i++)
			fprintf(outs[o], "  %-10s %14.2f %14.3f %16.2f %16.1f\n", vs[i],
				pt[i].ok[0] ? 1e3 / pt[i].dec_ms[0] : 0, pt[i].ttft_ms[0],
				pt[i].ok[1] ? 1e3 / pt[i].dec_ms[1] : 0, pt[i].ttft_ms[1]);
		fprintf(
		    outs[o],
		    "  (model: %s at context %d, TTFT of a %d-token prompt; 671B: context 4096, "
		    "TTFT of 512 tokens)\n",
		    a->model, a->prompt_len, a->prompt_len);
	}
	fprintf(jf, "{\"key\":\"%s\",\"points\":[", key);
	for (int i = 0; i < n; i++) {
		v[i] = pt[i].v;
		for (int k = 0; k < 2; k++) {
			tok_s[i][k] =
			    pt[i].ok[k] && pt[i].dec_ms[k] > 0 ? 1e3 / pt[i].dec_ms[k] : 0;
			ttft[i][k] = pt[i].ttft_ms[k];
		}
		fprintf(jf,
			"%s{\"value\":\"%s\",\"model_tok_s\":%.4f,\"model_ttft_ms\":%.4f,"
			"\"b671_tok_s\":%.4f,\"b671_ttft_ms\":%.4f}",
			i ? "," : "", vs[i], tok_s[i][0], ttft[i][0], tok_s[i][1], ttft[i][1]);
	}
	fprintf(jf, "]}\n");
	int bad = fclose(tf) | fclose(jf);
	if (!profile_path(path, sizeof path, a->out, "sweep.html"))
		bad |= prof_write_sweep_html(path, key, a->model, v, tok_s, ttft, n) != 0;
	if (bad) {
		fprintf(stderr, "moecard: profile: %s: write failed\n", a->out);
		return 1;
	}
	printf("wrote %s/sweep.txt, sweep.json, sweep.html\n", a->out);
	return 0;
}

/* --- diff ------------------------------------------------------------------------------------ */
static int profile_diff(int argc, char **argv)
{
	const char *p[2] = {NULL, NULL};
	double tol = 5, min_us = 1;
	const char *only = NULL;
	int np = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			profile_usage(stdout);
			return 0;
		}
		if (!strcmp(argv[i], "--only") && i + 1 < argc) {
			only = argv[++i];
			if (!strcmp(only, "all"))
				only = NULL;
			else if (strcmp(only, "card") && strcmp(only, "host")) {
				fprintf(
				    stderr,
				    "moecard: profile diff: --only: expected card, host or all, "
				    "got '%s'\n",
				    only);
				return 2;
			}
		} else if ((!strcmp(argv[i], "--tol") || !strcmp(argv[i], "--min-us")) &&
			   i + 1 < argc) {
			int t = !strcmp(argv[i], "--tol");
			if (cli_number("profile diff", argv[i], argv[i + 1], 0, 1e9,
				       t ? &tol : &min_us))
				return 2;
			i++;
		} else if (argv[i][0] == '-' || np == 2) {
			fprintf(stderr,
				"moecard: profile diff: %s: unknown option or extra argument\n",
				argv[i]);
			return 2;
		} else {
			p[np++] = argv[i];
		}
	}
	if (np != 2) {
		fprintf(stderr, "moecard: profile diff: expected two profiles (folders or "
				"summary.json files)\n");
		return 2;
	}
	char fa[4096], fb[4096], err[512];
	const char *f[2] = {fa, fb};
	for (int k = 0; k < 2; k++) {
		struct stat st;
		if (!stat(p[k], &st) && S_ISDIR(st.st_mode))
			snprintf((char *)f[k], 4096, "%s/summary.json", p[k]);
		else
			snprintf((char *)f[k], 4096, "%s", p[k]);
	}
	double worst = 0;
	int r = prof_diff(fa, fb, only, stdout, min_us * 1e3, &worst, err, sizeof err);
	if (r) {
		fprintf(stderr, "moecard: %s\n", err);
		return 2;
	}
	if (100 * worst > tol) {
		printf("profile diff: the largest difference is %.2f%%, above --tol %.2f%%\n",
		       100 * worst, tol);
		return 1;
	}
	printf("profile diff: within --tol %.2f%% (largest %.2f%%)\n", tol, 100 * worst);
	return 0;
}

int cli_profile(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "diff"))
		return profile_diff(argc - 1, argv + 1);
	struct cli_opts a;
	cli_opts_init(&a);
	a.backend = "emu";
	a.prompt_len = 32;
	a.gen = 8;
	int rc = cli_opts_parse(argc, argv, &profile_cmd, &a);
	if (rc)
		return rc == 1 ? 0 : rc;
	char dir[4096];
	snprintf(dir, sizeof dir, "%s", a.out);
	for (char *sl = dir + 1; (sl = strchr(sl, '/')); *sl++ = '/') { /* its parents first */
		*sl = 0;
		if (mkdir(dir, 0777) && errno != EEXIST)
			break;
	}
	if (mkdir(a.out, 0777) && errno != EEXIST) {
		fprintf(stderr, "moecard: profile: --out %s: %s\n", a.out, strerror(errno));
		return 1;
	}
	if (a.sweep)
		return profile_sweep(&a);
	return profile_run(&a);
}
