/*
 * test_spec.c - MTP speculative decoding (host/decode/spec.c) and the sampling distributions it relies on
 * (host/decode/generate.c), checked without trusting either:
 *   1. the rejection rule on synthetic distributions: chi-square of the output against p, the
 *      acceptance rate against sum min(p, q), and a negative control (always accepting) that the
 *      same test must reject;
 *   2. gen_dist_build (pre-filtered top-k / top-p / min-p) against a full sort of the vocab;
 *   3. greedy speculative == greedy plain, token for token (72 tokens, 3 prompts, depth 1 and 2)
 *      on a random tiny model (drafts nearly always rejected) and on a "draft-friendly" tiny model
 *      (MTP layer made to predict like the main model: most drafts accepted);
 *   4. KV rollback: after speculative steps (accepts and rejects), the main and MTP logits of the
 *      next position equal those of a fresh engine fed the same tokens one at a time;
 *   5. sampled speculative output follows the main model's distribution: chi-square of the second
 *      generated token over many seeded runs against its exact marginal (enumerating the first
 *      token), on a 64-token vocab, depth 1 and 2.
 * Models are generated with testckpt_write into a temporary folder. Checks with tests/harness.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "load/ckpt.h"
#include "e4m3.h"
#include "engine/engine.h"
#include "decode/generate.h"
#include "load/safetensors.h"
#include "decode/spec.h"
#include "tests/harness.h"

#if defined(__SANITIZE_ADDRESS__)
#define SLOW 1
#else
#define SLOW 0
#endif

/* chi-square statistic of counts against probabilities, cells with expected < 5 merged; df out. */
static double chi_square(const long *cnt, const double *p, int n, long N, int *df)
{
	double chi = 0, e_acc = 0, o_acc = 0;
	int cells = 0;
	for (int i = 0; i < n; i++) {
		e_acc += p[i] * N;
		o_acc += cnt[i];
		if (e_acc >= 5) {
			chi += (o_acc - e_acc) * (o_acc - e_acc) / e_acc;
			cells++;
			e_acc = o_acc = 0;
		}
	}
	if (e_acc > 0 || o_acc > 0) {
		if (e_acc > 0)
			chi += (o_acc - e_acc) * (o_acc - e_acc) / e_acc;
		else
			chi += 1e9; /* observations where none are possible */
		cells++;
	}
	*df = cells > 1 ? cells - 1 : 1;
	return chi;
}

/* 99.9% quantile of chi-square with df degrees of freedom (Wilson-Hilferty). */
static double chi_q999(int df)
{
	double z = 3.0902, a = 2.0 / (9.0 * df);
	double t = 1 - a + z * sqrt(a);
	return df * t * t * t;
}

static void dist_set(struct gen_dist *d, const double *p, int V)
{
	d->n = 0;
	for (int i = 0; i < V; i++)
		if (p[i] > 0) {
			d->id[d->n] = i;
			d->p[d->n++] = (float)p[i];
		}
}

/* ---- 1. rejection rule on synthetic distributions ------------------------------------------------ */
static void test_rule(void)
{
	enum { V = 6 };
	static const double P[][V] = {{.4, .3, .1, .1, .05, .05},
				      {.5, .5, 0, 0, 0, 0},
				      {.1, .2, .3, .4, 0, 0},
				      {1, 0, 0, 0, 0, 0}};
	static const double Q[][V] = {{.1, .1, .1, .1, .3, .3},
				      {0, .2, .2, .2, .2, .2},
				      {.1, .2, .3, .4, 0, 0},
				      {.25, .25, .25, .25, 0, 0}};
	struct gen_dist p, q;
	gen_dist_alloc(&p, V);
	gen_dist_alloc(&q, V);
	float dense[V] = {0};
	long N = SLOW ? 60000 : 200000;
	for (size_t c = 0; c < sizeof P / sizeof P[0]; c++) {
		dist_set(&p, P[c], V);
		dist_set(&q, Q[c], V);
		uint64_t rng = 1234 + c, rq = 99 + c;
		long cnt[V] = {0}, bad[V] = {0}, acc = 0;
		for (long k = 0; k < N; k++) {
			int d = gen_dist_sample(&q, gen_rand(&rq)), tok;
			acc += spec_accept(&p, &q, d, &rng, dense, &tok);
			cnt[tok]++;
			bad[d]++; /* negative control: the draft itself, always accepted */
		}
		int df, dfb, clean = 1;
		double chi = chi_square(cnt, P[c], V, N, &df),
		       chib = chi_square(bad, P[c], V, N, &dfb);
		for (int i = 0; i < V; i++)
			clean &= dense[i] == 0;
		double want = 0;
		for (int i = 0; i < V; i++)
			want += fmin(P[c][i], Q[c][i]);
		double rate = (double)acc / N, sd = sqrt(want * (1 - want) / N) + 1e-12;
		printf(
		    "rule case %zu: output vs p chi2 %.1f (df %d, 99.9%% bound %.1f), acceptance "
		    "%.4f vs sum min(p,q) %.4f, always-accept control chi2 %.0f\n",
		    c, chi, df, chi_q999(df), rate, want, chib);
		CHECK(chi < chi_q999(df),
		      "rule case %zu: output vs p: chi2 %.1f (df %d, 99.9%% bound %.1f)", c, chi,
		      df, chi_q999(df));
		CHECK(clean, "rule case %zu: the dense scratch is all zeros again", c);
		CHECK_NEAR(rate, want, 5 * sd + 1e-9,
			   "rule case %zu: acceptance rate vs the expected sum min(p,q) (5 sigma)",
			   c);
		int same = 1;
		for (int i = 0; i < V; i++)
			same &= P[c][i] == Q[c][i];
		if (!same)
			CHECK(chib > chi_q999(dfb),
			      "rule case %zu: negative control (always accept) detected: chi2 %.0f "
			      "> %.1f",
			      c, chib, chi_q999(dfb));
	}
	gen_dist_release(&p);
	gen_dist_release(&q);
}

/* ---- 2. pre-filtered distributions against a full sort ------------------------------------------- */
static const float *ref_w;
static int ref_cmp(const void *a, const void *b)
{
	int ia = *(const int *)a, ib = *(const int *)b;
	if (ref_w[ia] != ref_w[ib])
		return ref_w[ia] < ref_w[ib] ? 1 : -1;
	return ia - ib;
}

static void test_dist(void)
{
	enum { V = 5000 };
	float *lg = malloc(sizeof(float) * V), *l2 = malloc(sizeof(float) * V);
	float *w = malloc(sizeof(float) * V), *rw = malloc(sizeof(float) * V);
	int *cand = malloc(sizeof(int) * V), *ord = malloc(sizeof(int) * V);
	double *dense = calloc(V, sizeof(double));
	struct gen_dist d;
	gen_dist_alloc(&d, V);
	uint64_t rng = 7;
	for (int i = 0; i < V; i++)
		lg[i] = (float)(floor(gen_rand(&rng) * 400) / 40.0); /* many exact ties */
	static const float temps[] = {0, 0.7f, 1.5f};
	static const int ks[] = {0, 1, 5, 50};
	static const float ps[] = {1, 0.5f, 0.9f};
	static const float mps[] = {0, 0.05f};
	int cases = 0, bad = 0;
	double worst = 0;
	for (size_t a = 0; a < 3; a++)
		for (size_t b = 0; b < 4; b++)
			for (size_t c = 0; c < 3; c++)
				for (size_t e = 0; e < 2; e++) {
					struct gen_sampling s;
					gen_sampling_default(&s);
					s.temp = temps[a];
					s.top_k = ks[b];
					s.top_p = ps[c];
					s.min_p = mps[e];
					memcpy(l2, lg, sizeof(float) * V);
					gen_dist_build(&d, l2, V, &s, NULL, 0, w, cand);
					/* reference */
					int n = 0;
					if (s.temp <= 0) {
						int am = 0;
						for (int i = 1; i < V; i++)
							if (lg[i] > lg[am])
								am = i;
						ord[n++] = am;
						rw[am] = 1;
					} else {
						float mx = lg[0];
						for (int i = 1; i < V; i++)
							mx = fmaxf(mx, lg[i]);
						double Z = 0;
						for (int i = 0; i < V; i++)
							Z += (rw[i] = expf((lg[i] - mx) / s.temp));
						for (int i = 0; i < V; i++)
							if (rw[i] >= s.min_p)
								ord[n++] = i;
						ref_w = rw;
						qsort(ord, (size_t)n, sizeof(int), ref_cmp);
						if (s.top_k > 0 && s.top_k < n)
							n = s.top_k;
						double cum = 0;
						for (int i = 0; i < n; i++) {
							cum += rw[ord[i]];
							if (cum >= s.top_p * Z && s.top_p < 1) {
								n = i + 1;
								break;
							}
						}
					}
					double tot = 0;
					for (int i = 0; i < n; i++)
						tot += rw[ord[i]];
					for (int i = 0; i < n; i++)
						dense[ord[i]] = rw[ord[i]] / tot;
					int ok = d.n == n;
					double err = 0;
					for (int i = 0; i < d.n; i++) {
						err = fmax(err, fabs(dense[d.id[i]] - d.p[i]));
						ok &= dense[d.id[i]] > 0;
					}
					for (int i = 0; i < n; i++)
						dense[ord[i]] = 0;
					ok &= err < 1e-6;
					worst = fmax(worst, err);
					cases++;
					if (!ok) {
						bad++;
						printf("  dist mismatch: temp %.1f top_k %d top_p "
						       "%.2f min_p %.2f: "
						       "%d candidates vs %d, max |dp| %.2e\n",
						       s.temp, s.top_k, s.top_p, s.min_p, d.n, n,
						       err);
					}
				}
	printf("gen_dist_build: %d of %d settings equal to a full sort (max |dp| %.1e)\n",
	       cases - bad, cases, worst);
	CHECK_EQ(bad, 0, "gen_dist_build: settings (of %d) unlike a full sort (max |dp| %.1e)",
		 cases, worst);
	/* repetition penalty: each distinct token once */
	struct gen_sampling s;
	gen_sampling_default(&s);
	s.rep_penalty = 2;
	float l3[4] = {4, -2, 1, 0.5f};
	int hist[] = {0, 0, 1, 3};
	float w3[4];
	int c3[4];
	struct gen_dist d3;
	gen_dist_alloc(&d3, 4);
	gen_dist_build(&d3, l3, 4, &s, hist, 4, w3, c3);
	CHECK_NEAR(l3[0], 2, 0, "penalty: logit 4 of a token seen twice is divided by 2 once");
	CHECK_NEAR(l3[1], -4, 0, "penalty: logit -2 of a token seen once is multiplied by 2");
	CHECK_NEAR(l3[2], 1, 0, "penalty: logit 1 of a token never seen is unchanged");
	CHECK_NEAR(l3[3], 0.25f, 0, "penalty: logit 0.5 of a token seen once is divided by 2");
	CHECK_EQ(d3.id[0], 0, "penalty: the first candidate after the penalty");
	/* a banned token (--ignore-eos) is never a candidate: greedy takes the next best, sampling
	 * gives it no mass */
	struct gen_sampling sb;
	gen_sampling_default(&sb);
	sb.ban = 1;
	sb.ban_id = 2;
	float l4[4] = {0.5f, -1, 3, 2};
	gen_dist_build(&d3, l4, 4, &sb, NULL, 0, w3, c3);
	CHECK(d3.n == 1 && d3.id[0] == 3,
	      "ban, greedy: token 3 after the banned maximum 2 (got %d)", d3.id[0]);
	sb.temp = 1;
	float l5[4] = {0.5f, -1, 3, 2};
	gen_dist_build(&d3, l5, 4, &sb, NULL, 0, w3, c3);
	int has2 = 0;
	double mass = 0;
	for (int i = 0; i < d3.n; i++) {
		has2 |= d3.id[i] == 2;
		mass += d3.p[i];
	}
	CHECK(d3.n == 3 && !has2, "ban, temp 1: 3 candidates without token 2 (%d)", d3.n);
	CHECK_NEAR(mass, 1, 1e-6, "ban, temp 1: the candidates' mass");
	sb.top_k = 2;
	float l6[4] = {0.5f, -1, 3, 2};
	gen_dist_build(&d3, l6, 4, &sb, NULL, 0, w3, c3);
	CHECK(d3.n == 2 && d3.id[0] == 3 && d3.id[1] == 0, "ban, top-k 2: tokens 3, 0 (%d: %d %d)",
	      d3.n, d3.id[0], d3.id[1]);
	gen_dist_release(&d3);
	gen_dist_release(&d);
	free(lg);
	free(l2);
	free(w);
	free(rw);
	free(cand);
	free(ord);
	free(dense);
}

/* ---- models ------------------------------------------------------------------------------------------ */

/*
 * Makes a generated checkpoint draft-friendly, in place: the sublayer outputs are damped (o_proj and
 * down_proj scales times damp) so each position's logits depend mostly on its own token, and the MTP
 * layer reads only the embedding (eh_proj = [I | 0], enorm = 1) with the main model's final norm and
 * head. Its drafts then usually equal the main model's next prediction; nothing else is changed.
 */
static int make_friendly(const char *dir, int n_layers, float damp)
{
	struct st_model st;
	char err[256], nm[160];
	memset(&st, 0, sizeof st);
	if (st_open_dir(dir, &st, err, sizeof err)) {
		printf("  %s\n", err);
		return -1;
	}
	int rc = 0;
	const struct st_tensor *lm = st_find(&st, "lm_head.weight"),
			       *nw = st_find(&st, "model.norm.weight"),
			       *emb = st_find(&st, "model.embed_tokens.weight");
	for (int i = 0; i < st.n_tensors && !rc; i++) {
		const struct st_tensor *t = &st.tensors[i];
		const struct st_file *f = &st.files[t->file];
		off_t off = (const char *)t->data - (const char *)f->map;
		void *buf = malloc(t->nbytes ? t->nbytes : 1);
		const void *src = NULL;
		memcpy(buf, t->data, t->nbytes);
		int dirty = 0;
		size_t ln = strlen(t->name);
		const char *suf = ".weight_scale_inv";
		if (ln > 30 && !strcmp(t->name + ln - strlen(suf), suf) &&
		    (strstr(t->name, "o_proj") || strstr(t->name, "down_proj"))) {
			float *x = buf;
			for (size_t k = 0; k < t->nbytes / 4; k++)
				x[k] *= damp;
			dirty = 1;
		}
		snprintf(nm, sizeof nm, "model.layers.%d.eh_proj.weight", n_layers);
		if (!strcmp(t->name, nm)) {
			uint16_t *x = buf;
			int64_t R = t->shape[0], C = t->shape[1];
			for (int64_t r = 0; r < R; r++)
				for (int64_t c = 0; c < C; c++)
					x[r * C + c] = f32_to_bf16(c == r ? 1.0f : 0.0f);
			dirty = 1;
		}
		snprintf(nm, sizeof nm, "model.layers.%d.enorm.weight", n_layers);
		if (!strcmp(t->name, nm)) {
			uint16_t *x = buf;
			for (size_t k = 0; k < t->nbytes / 2; k++)
				x[k] = f32_to_bf16(1.0f);
			dirty = 1;
		}
		snprintf(nm, sizeof nm, "model.layers.%d.shared_head.norm.weight", n_layers);
		if (!strcmp(t->name, nm))
			src = nw;
		snprintf(nm, sizeof nm, "model.layers.%d.shared_head.head.weight", n_layers);
		if (!strcmp(t->name, nm))
			src = lm;
		snprintf(nm, sizeof nm, "model.layers.%d.embed_tokens.weight", n_layers);
		if (!strcmp(t->name, nm))
			src = emb;
		if (src) {
			const struct st_tensor *s = src;
			if (s->nbytes != t->nbytes || s->dtype != t->dtype)
				rc = -1;
			else
				memcpy(buf, s->data, t->nbytes);
			dirty = 1;
		}
		if (dirty && !rc) {
			int fd = open(f->path, O_WRONLY);
			if (fd < 0 || pwrite(fd, buf, t->nbytes, off) != (ssize_t)t->nbytes)
				rc = -1;
			if (fd >= 0)
				close(fd);
		}
		free(buf);
	}
	st_close(&st);
	return rc;
}

struct tmodel {
	struct ckpt ck;
	struct engine e;
};

static int model_load(struct tmodel *m, const char *dir, int max_seq, int max_batch, int threads)
{
	char err[512];
	if (ckpt_open(dir, &m->ck, err, sizeof err)) {
		printf("  %s\n", err);
		return -1;
	}
	struct model_opts o = {0};
	o.act_fp8 = 1;
	o.max_seq = max_seq;
	o.max_batch = max_batch;
	o.n_threads = threads;
	if (engine_open(&m->e, "cpu", &m->ck, &o, NULL, err, sizeof err)) {
		printf("  %s\n", err);
		ckpt_close(&m->ck);
		return -1;
	}
	return 0;
}

static void model_unload(struct tmodel *m)
{
	engine_free(&m->e);
	ckpt_close(&m->ck);
}

/* Generates n tokens after prompt; returns 0 and the stats. */
static int generate(struct engine *e, const struct gen_opts *o, const int *prompt, int np, int n,
		    int *out, struct gen_stats *st)
{
	struct gen g;
	engine_truncate(e, 0, 0);
	int r = gen_init(&g, e, o, np + n + 16);
	if (r)
		return r;
	int made = 0, ids[8], k;
	if (!(r = gen_append(&g, prompt, np)) && !(r = gen_sync(&g)))
		while (made < n && !(r = gen_step(&g, ids, &k)))
			for (int i = 0; i < k && made < n; i++)
				out[made++] = ids[i];
	if (st)
		*st = g.st;
	gen_free(&g);
	return r;
}

/* ---- 3. greedy speculative == greedy plain ------------------------------------------------------- */
static void test_greedy(const char *dir, const char *label, int want_accepts)
{
	struct tmodel m;
	if (model_load(&m, dir, 256, 16, 2)) {
		CHECK(0, "greedy %s: model load failed", label);
		return;
	}
	enum { N = 72, NP = 5 };
	int V = m.ck.cfg.vocab_size;
	long acc_all = 0, dr_all = 0;
	for (int seed = 1; seed <= 3; seed++) {
		int prompt[NP], plain[N], spec[N];
		uint64_t rng = (uint64_t)seed * 77;
		for (int i = 0; i < NP; i++)
			prompt[i] = (int)(gen_rand(&rng) * V);
		struct gen_opts o = {0};
		gen_sampling_default(&o.s);
		struct gen_stats st;
		int r = generate(&m.e, &o, prompt, NP, N, plain, &st);
		CHECK_RC(r, "greedy %s seed %d: plain greedy generation", label, seed);
		for (int depth = 1; depth <= 2 && !r; depth++) {
			o.spec_depth = depth;
			r = generate(&m.e, &o, prompt, NP, N, spec, &st);
			int first = -1;
			for (int i = 0; i < N && first < 0; i++)
				if (plain[i] != spec[i])
					first = i;
			printf(
			    "greedy %s seed %d depth %d: accepted %ld/%ld drafts, %.2f tokens per "
			    "verify forward\n",
			    label, seed, depth, st.accepted, st.drafted,
			    st.spec_steps ? (double)st.spec_tokens / st.spec_steps : 0);
			CHECK_RC(r, "greedy %s seed %d depth %d: speculative generation", label,
				 seed, depth);
			CHECK_EQ(
			    first, -1,
			    "greedy %s seed %d depth %d: the first of %d tokens that differs from "
			    "plain greedy (plain %d, speculative %d)",
			    label, seed, depth, N, first >= 0 ? plain[first] : -1,
			    first >= 0 ? spec[first] : -1);
			acc_all += st.accepted;
			dr_all += st.drafted;
		}
	}
	if (want_accepts)
		CHECK(acc_all * 4 > dr_all,
		      "greedy %s: drafts accepted %ld of %ld (want > 25%% so the accept path is "
		      "exercised)",
		      label, acc_all, dr_all);
	else
		printf("  %s: random model, drafts accepted %ld of %ld\n", label, acc_all, dr_all);
	model_unload(&m);
}

/* ---- 4. KV rollback: logits after speculative steps equal a fresh run --------------------------- */
static double max_rel(const float *a, const float *b, int n)
{
	double m = 0, s = 0;
	for (int i = 0; i < n; i++)
		s = fmax(s, fabs(b[i]));
	for (int i = 0; i < n; i++)
		m = fmax(m, fabs(a[i] - b[i]));
	return m / (s > 0 ? s : 1);
}

static void test_rollback(const char *dir)
{
	struct tmodel a, b;
	if (model_load(&a, dir, 256, 16, 2) || model_load(&b, dir, 256, 16, 2)) {
		CHECK(0, "rollback: model load failed");
		return;
	}
	int V = a.ck.cfg.vocab_size, D = a.ck.cfg.hidden_size;
	float *lb = calloc((size_t)V, sizeof(float)), *mb = calloc((size_t)V, sizeof(float));
	float *hb = malloc(sizeof(float) * (size_t)D * 256);
	struct gen_opts o = {0};
	gen_sampling_default(&o.s);
	o.s.temp = 0.8f; /* sampled: a mix of accepted and rejected drafts */
	o.s.seed = 5;
	o.spec_depth = 2;
	o.max_prefill = 4; /* row-path forwards everywhere, as in the fresh run */
	struct gen g;
	int prompt[6] = {3, 14, 15, 92, 65, 35}, ids[8], k, r;
	r = gen_init(&g, &a.e, &o, 200);
	if (!r)
		r = gen_append(&g, prompt, 6);
	if (!r)
		r = gen_sync(&g);
	int steps = 0, rej_seen = 0, inv_ok = 1;
	double worst_main = 0, worst_mtp = 0;
	while (!r && g.n_hist < 60) {
		long acc0 = g.st.accepted, dr0 = g.st.drafted;
		if ((r = gen_step(&g, ids, &k)))
			break;
		steps++;
		int rejected = g.st.drafted - dr0 > g.st.accepted - acc0;
		rej_seen += rejected;
		inv_ok &= g.e->pos == g.n_hist - 1 && g.e->mtp_pos + g.n_mq == g.e->pos;
		if (!rejected || (steps % 3))
			continue;
		/* fresh engine, tokens one at a time: main logits after hist[0..n_hist) and the MTP
		 * logits of row n_hist-2 */
		int n = g.n_hist;
		engine_truncate(&b.e, 0, 0);
		for (int i = 0; i < n && !r; i++)
			r = engine_forward(&b.e, g.hist + i, 1, lb, 0, hb + (size_t)i * D);
		for (int i = 0; i + 1 < n && !r; i++)
			r = engine_mtp_forward(&b.e, g.hist + i + 1, hb + (size_t)i * D, 1, mb, 0);
		/* speculative engine: its pending MTP rows, then the pending token */
		if (!r)
			r = gen_mtp_flush(&g, g.n_mq, 1);
		if (r)
			break;
		worst_mtp = fmax(worst_mtp, max_rel(g.mtp_lg, mb, V));
		if ((r = gen_sync(&g)))
			break;
		worst_main = fmax(worst_main, max_rel(g.logits, lb, V));
	}
	printf("rollback: %d steps, %d rejected; logits vs a fresh run: max rel diff main %.2e, "
	       "mtp %.2e\n",
	       steps, rej_seen, worst_main, worst_mtp);
	CHECK_RC(r, "rollback: speculative steps and the fresh runs (%d steps)", steps);
	CHECK(inv_ok,
	      "rollback invariants: pos == n_hist-1 and mtp_pos+pending == pos after each "
	      "of %d steps",
	      steps);
	CHECK(rej_seen > 0, "rollback: %d rejected steps compared (want at least 1)", rej_seen);
	CHECK_NEAR(worst_main, 0, 1e-6,
		   "rollback main: next-token logits vs a fresh run, max rel diff");
	CHECK_NEAR(worst_mtp, 0, 1e-6,
		   "rollback mtp: MTP draft logits vs a fresh run, max rel diff");
	gen_free(&g);
	free(lb);
	free(mb);
	free(hb);
	model_unload(&a);
	model_unload(&b);
}

/* ---- 5. sampled output distribution ----------------------------------------------------------------- */
static void test_sampled(const char *dir)
{
	struct tmodel m;
	if (model_load(&m, dir, 64, 8, 2)) {
		CHECK(0, "sampled: model load failed");
		return;
	}
	int V = m.ck.cfg.vocab_size;
	enum { NP = 4 };
	int prompt[NP] = {5, 9, 2, 33};
	struct gen_sampling s;
	gen_sampling_default(&s);
	s.temp = 1.0f;
	s.top_k = 40; /* some filtering, so draft and target supports differ */
	float *lg = malloc(sizeof(float) * V), *w = malloc(sizeof(float) * V);
	int *cand = malloc(sizeof(int) * V), hist[NP + 1];
	double *marg = calloc((size_t)V, sizeof(double));
	struct gen_dist d1, d2;
	gen_dist_alloc(&d1, V);
	gen_dist_alloc(&d2, V);
	/* exact marginal of the second generated token */
	int r = 0;
	engine_truncate(&m.e, 0, 0);
	for (int i = 0; i < NP && !r; i++)
		r = engine_forward(&m.e, prompt + i, 1, lg, 0, NULL);
	memcpy(hist, prompt, sizeof prompt);
	gen_dist_build(&d1, lg, V, &s, hist, NP, w, cand);
	for (int a = 0; a < d1.n && !r; a++) {
		engine_truncate(&m.e, NP, 0);
		hist[NP] = d1.id[a];
		r = engine_forward(&m.e, &hist[NP], 1, lg, 0, NULL);
		gen_dist_build(&d2, lg, V, &s, hist, NP + 1, w, cand);
		for (int b = 0; b < d2.n; b++)
			marg[d2.id[b]] += (double)d1.p[a] * d2.p[b];
	}
	CHECK_RC(r, "sampled: the forwards of the exact marginal");
	long N = SLOW ? 600 : 3000;
	long *cnt = malloc(sizeof(long) * V);
	for (int depth = 1; depth <= 2 && !r; depth++) {
		struct gen_opts o = {.s = s, .spec_depth = depth};
		struct gen g;
		memset(cnt, 0, sizeof(long) * V);
		r = gen_init(&g, &m.e, &o, 32);
		if (!r)
			r = gen_append(&g, prompt, NP);
		int ids[8], k;
		for (long run = 0; run < N && !r; run++) {
			gen_rollback(&g, NP);
			g.rng = 0x9E3779B97F4A7C15ull * (uint64_t)(run + 1) + (uint64_t)depth;
			if ((r = gen_sync(&g)) || (r = gen_step(&g, ids, &k)) ||
			    (r = gen_step(&g, ids, &k)))
				break;
			cnt[ids[0]]++; /* the first token of the speculative step is token 2 */
		}
		int df;
		double chi = chi_square(cnt, marg, V, N, &df);
		printf("sampled depth %d: chi2 %.1f (df %d, 99.9%% bound %.1f), accepted %ld/%ld "
		       "drafts\n",
		       depth, chi, df, chi_q999(df), g.st.accepted, g.st.drafted);
		CHECK_RC(r, "sampled depth %d: %ld seeded runs", depth, N);
		if (!r)
			CHECK(chi < chi_q999(df),
			      "sampled depth %d: second token over %ld seeded runs vs its exact "
			      "marginal: chi2 %.1f (df %d, 99.9%% bound %.1f); accepted %ld/%ld "
			      "drafts",
			      depth, N, chi, df, chi_q999(df), g.st.accepted, g.st.drafted);
		gen_free(&g);
	}
	free(cnt);
	free(lg);
	free(w);
	free(cand);
	free(marg);
	gen_dist_release(&d1);
	gen_dist_release(&d2);
	model_unload(&m);
}

int main(void)
{
	char tmp[256], dir[3][600], err[512] = "";
	setvbuf(stdout, NULL, _IOLBF, 0); /* a crash mid-run keeps the lines before it */
	if (!harness_mkdtemp(tmp, sizeof tmp, "moecard_spec")) {
		CHECK(0, "mkdtemp %s", tmp);
		return harness_done();
	}
	test_rule();
	test_dist();
	static const char *ov_small[] = {"vocab_size=64", "num_hidden_layers=2", "hidden_size=128",
					 "moe_intermediate_size=64", "intermediate_size=128"};
	snprintf(dir[0], sizeof dir[0], "%s/random", tmp);
	snprintf(dir[1], sizeof dir[1], "%s/friendly", tmp);
	snprintf(dir[2], sizeof dir[2], "%s/small", tmp);
	int ok = !testckpt_write(dir[0], "tiny", 21, NULL, 0, err, sizeof err) &&
		 !testckpt_write(dir[1], "tiny", 22, NULL, 0, err, sizeof err) &&
		 !testckpt_write(dir[2], "tiny", 23, ov_small, 5, err, sizeof err) &&
		 !make_friendly(dir[1], 4, 0.05f) && !make_friendly(dir[2], 2, 0.5f);
	CHECK(ok, "models: tiny random, tiny draft-friendly, 64-vocab draft-friendly generated: %s",
	      err);
	if (ok) {
		test_greedy(dir[0], "random", 0);
		test_greedy(dir[1], "friendly", 1);
		test_rollback(dir[1]);
		test_sampled(dir[2]);
	}
	char cmd[700];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
	if (system(cmd))
		printf("  could not remove %s\n", tmp);
	return harness_done();
}
