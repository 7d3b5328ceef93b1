/*
 * test_emu_prefill.c - the card scheduler's batched prefill (host/sched/card_prefill.c) on the
 * emulated card: the logits (every row) and the final hidden rows of a prompt through the batched
 * path must be bit-identical to the token loop (MOECARD_CARD_PREFILL=0) for T = 1, 2, 7, across
 * chunk boundaries (MOECARD_PREFILL_CHUNK=4: chunks of 4 + 3 and 4 + 4 + a last single token),
 * and for a prompt after existing context (pos > 0); on the GEMV lowering (router and head on
 * the card, striped attention) and on the fp8_gemm lowering (MOECARD_CARD_GEMV=0: host router,
 * MLA_ATTN); and within the FP8 contract of the cpu engine (docs/numerics.md: median relative
 * error and argmax agreement, the golden test's bound). Also: the statistics count the batched
 * tokens, and the modeled card time of the batched prefill is below the token loop's.
 * Sequence slots (engine_ops.forward_seqs): three sequences prefilled in their slots, then decoded
 * together (rows of three slots at three positions in one forward), one of them alone (the token
 * loop on its slot), then together again: every row's logits bit-identical to each sequence run
 * alone through the token loop; and the rows' modeled card time below three single steps.
 * The non-absorbed form (pf_mla_mha, a prompt's chunks within one forward call; the engines
 * above run with MOECARD_PF_MHA=0): within the FP8 contract of the token loop (relative error
 * and argmax agreement), the statistics counting its rows, its modeled card time below the
 * token loop's, a prompt in chunks (of more than 16 rows: fewer after the first keep the
 * absorbed form) bit-identical to it in one chunk (the later chunk recomputes the K/V rows
 * before it), and forward_seqs keeping the absorbed form (its rows bit-identical to each
 * sequence alone).
 * Generates its own tiny checkpoint.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "tests/harness.h"
#include "backend/backend.h"
#include "load/ckpt.h"
#include "engine/engine.h"
#include "sched/card_engine.h"

static const char *board_path(void)
{
	static char p[512];
	const char *b = getenv("B");
	snprintf(p, sizeof p, "%s/board/emu.dtb", b ? b : "build");
	return p;
}

static double rel_err(const float *a, const float *b, int n)
{
	double d = 0, s = 0;
	for (int i = 0; i < n; i++) {
		d += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
		s += (double)b[i] * b[i];
	}
	return sqrt(d / (s > 0 ? s : 1));
}

static int argmax(const float *x, int n)
{
	int b = 0;
	for (int i = 1; i < n; i++)
		if (x[i] > x[b])
			b = i;
	return b;
}

#define NTOK 16
static int g_max_seq = 32, g_max_batch = 16; /* the engines' context and rows a forward */
static const char *g_mha = "0"; /* MOECARD_PF_MHA at open (NULL: unset, the default rule) */

static struct engine *eng_open_x(const struct ckpt *ck, const char *engine, const char *prefill,
				 const char *chunk, int seqs)
{
	struct engine_extra x = {.seqs = seqs};
	struct model_opts o = {
	    .act_fp8 = 1, .max_seq = g_max_seq, .max_batch = g_max_batch, .n_threads = 1};
	struct engine *e = calloc(1, sizeof *e);
	char err[512];
	if (prefill)
		setenv("MOECARD_CARD_PREFILL", prefill, 1);
	else
		unsetenv("MOECARD_CARD_PREFILL");
	if (chunk)
		setenv("MOECARD_PREFILL_CHUNK", chunk, 1);
	else
		unsetenv("MOECARD_PREFILL_CHUNK");
	if (g_mha)
		setenv("MOECARD_PF_MHA", g_mha, 1);
	else
		unsetenv("MOECARD_PF_MHA");
	int r = e ? engine_open(e, engine, ck, &o, seqs ? &x : NULL, err, sizeof err) : -ENOMEM;
	CHECK(r == 0, "engine_open %s: %s", engine, r == -ENOMEM ? "out of memory" : err);
	unsetenv("MOECARD_CARD_PREFILL");
	unsetenv("MOECARD_PREFILL_CHUNK");
	unsetenv("MOECARD_PF_MHA");
	if (r) {
		free(e);
		return NULL;
	}
	return e;
}

static struct engine *eng_open(const struct ckpt *ck, const char *engine, const char *prefill,
			       const char *chunk)
{
	return eng_open_x(ck, engine, prefill, chunk, 0);
}

static void eng_close(struct engine *e)
{
	if (e)
		engine_free(e);
	free(e);
}

/* One run from position 0: a prompt of n0 tokens, then (n1 > 0) n1 more after it; all logits
 * and hidden rows of both forwards into lg / hid ([n0 + n1] rows). Returns the modeled card ns
 * (0 on the cpu engine), or < 0; *batched: the statistics' count of batched prompt tokens. */
/* A counter of the engine's statistics JSON (key with its quotes and colon), or -1. */
static long stat_long(struct engine *e, const char *key)
{
	char *buf = NULL;
	size_t len = 0;
	long v = -1;
	FILE *f = open_memstream(&buf, &len);
	if (f) {
		e->ops->stats(e, f, 1);
		fclose(f);
		const char *p = buf ? strstr(buf, key) : NULL;
		if (p)
			v = strtol(p + strlen(key), NULL, 10);
	}
	free(buf);
	return v;
}

static double run(struct engine *e, int V, int D, const int *tok, int n0, int n1, float *lg,
		  float *hid, long *batched)
{
	engine_truncate(e, 0, 0);
	struct backend *be = card_engine_backend(e);
	struct backend_stats s0, s1;
	if (be)
		backend_stats(be, &s0);
	int r = engine_forward(e, tok, n0, lg, 1, hid);
	if (!r && n1 > 0)
		r = engine_forward(e, tok + n0, n1, lg + (size_t)n0 * V, 1, hid + (size_t)n0 * D);
	CHECK(r == 0, "%s forward of %d + %d tokens: %d", e->ops->name, n0, n1, r);
	CHECK(r || e->pos == n0 + n1, "%s: pos %d after %d tokens", e->ops->name, e->pos, n0 + n1);
	double ns = 0;
	if (be) {
		backend_stats(be, &s1);
		ns = (double)(s1.busy_ns - s0.busy_ns);
	}
	if (batched && be)
		*batched = stat_long(e, "\"prefill_batched_tokens\":");
	return r ? -1 : ns;
}

/* Batched (engine eb, chunks of ch) vs the token loop (el) bit for bit, and vs the cpu engine
 * (ec) within the FP8 contract, for one prompt shape. */
static void compare(const struct ckpt *ck, struct engine *eb, int ch, struct engine *el,
		    struct engine *ec, const char *what, const int *tok, int n0, int n1)
{
	int V = ck->cfg.vocab_size, D = ck->cfg.hidden_size, T = n0 + n1;
	size_t nl = (size_t)T * V, nh = (size_t)T * D;
	float *a = calloc(nl, 4), *b = calloc(nl, 4), *c = calloc(nl, 4);
	float *ha = calloc(nh, 4), *hb = calloc(nh, 4), *hc = calloc(nh, 4);
	if (!eb || !el || !ec || !a || !b || !c || !ha || !hb || !hc) {
		CHECK(0, "%s: no engine or out of memory", what);
		goto out;
	}
	long nb = -1, nb0 = -1;
	double t_loop = run(el, V, D, tok, n0, n1, b, hb, &nb0);
	double t_batch = run(eb, V, D, tok, n0, n1, a, ha, &nb);
	double t_cpu = run(ec, V, D, tok, n0, n1, c, hc, NULL);
	if (t_loop < 0 || t_batch < 0 || t_cpu < 0)
		goto out;
	/* the batched path takes every chunk of 2 or more tokens */
	long want = 0;
	for (int part = 0; part < 2; part++) {
		int n = part ? n1 : n0;
		for (int t = 0; t < n; t += ch)
			want += n - t >= 2 ? (n - t < ch ? n - t : ch) : 0;
	}
	CHECK(nb == want, "%s: %ld tokens through the batched path, want %ld", what, nb, want);
	CHECK(nb0 == 0, "%s: MOECARD_CARD_PREFILL=0 batched %ld tokens", what, nb0);
	CHECK(!memcmp(a, b, nl * 4), "%s: batched logits differ from the token loop (rel %g)", what,
	      rel_err(a, b, (int)nl));
	CHECK(!memcmp(ha, hb, nh * 4),
	      "%s: batched hidden rows differ from the token loop (rel %g)", what,
	      rel_err(ha, hb, (int)nh));
	/* vs the cpu engine: the FP8 contract (median row error, argmax agreement) */
	double errs[64] = {0}, med; /* (T <= 64) */
	int agree = 0;
	for (int t = 0; t < T; t++) {
		errs[t] = rel_err(a + (size_t)t * V, c + (size_t)t * V, V);
		agree += argmax(a + (size_t)t * V, V) == argmax(c + (size_t)t * V, V);
	}
	for (int i = 1; i < T; i++) /* insertion sort for the median */
		for (int j = i; j > 0 && errs[j] < errs[j - 1]; j--) {
			double x = errs[j];
			errs[j] = errs[j - 1];
			errs[j - 1] = x;
		}
	med = errs[T / 2];
	CHECK(med <= 0.3 && agree * 10 >= 4 * T,
	      "%s: vs cpu median rel err %g, argmax agreement %d of %d", what, med, agree, T);
	if (n1 == 0 && n0 > 2 && ch >= n0)
		CHECK(t_batch < t_loop, "%s: modeled card %.1f us batched vs %.1f us token loop",
		      what, t_batch / 1e3, t_loop / 1e3);
	printf("%s: bit-identical to the token loop; vs cpu median rel err %.3g, argmax %d/%d; "
	       "modeled card %.1f us (token loop %.1f us)\n",
	       what, med, agree, T, t_batch / 1e3, t_loop / 1e3);
out:
	free(a);
	free(b);
	free(c);
	free(ha);
	free(hb);
	free(hc);
}

/* The non-absorbed form (engine em, the default rule) against the token loop (el): want_mha rows
 * in that form, the logits within tol (relative, the whole array) with argmax agreement on 90%
 * of the rows, the modeled card time below the token loop's. */
static void compare_mha(const struct ckpt *ck, struct engine *em, struct engine *el,
			const char *what, const int *tok, int n0, int n1, long want_mha, double tol)
{
	int V = ck->cfg.vocab_size, D = ck->cfg.hidden_size, T = n0 + n1;
	size_t nl = (size_t)T * V, nh = (size_t)T * D;
	float *a = calloc(nl, 4), *b = calloc(nl, 4), *ha = calloc(nh, 4), *hb = calloc(nh, 4);
	if (!em || !el || !a || !b || !ha || !hb) {
		CHECK(0, "%s: no engine or out of memory", what);
		goto out;
	}
	long nb = -1;
	double t_loop = run(el, V, D, tok, n0, n1, b, hb, NULL);
	double t_mha = run(em, V, D, tok, n0, n1, a, ha, &nb);
	if (t_loop < 0 || t_mha < 0)
		goto out;
	long nm = stat_long(em, "\"prefill_mha_tokens\":");
	int agree = 0;
	for (int t = 0; t < T; t++)
		agree += argmax(a + (size_t)t * V, V) == argmax(b + (size_t)t * V, V);
	double rel = rel_err(a, b, (int)nl);
	CHECK(nm == want_mha, "%s: %ld rows in the non-absorbed form, want %ld", what, nm,
	      want_mha);
	CHECK(rel <= tol && agree * 10 >= 9 * T,
	      "%s: vs the token loop rel err %g (bound %g), argmax agreement %d of %d", what, rel,
	      tol, agree, T);
	CHECK(t_mha < t_loop, "%s: modeled card %.1f us vs %.1f us token loop", what, t_mha / 1e3,
	      t_loop / 1e3);
	printf("%s: %ld rows non-absorbed; vs the token loop rel err %.3g, argmax %d/%d; modeled "
	       "card %.1f us (token loop %.1f us)\n",
	       what, nm, rel, agree, T, t_mha / 1e3, t_loop / 1e3);
out:
	free(a);
	free(b);
	free(ha);
	free(hb);
}

/* An emulated-card engine of 64 rows with the rows path on the GEMV CU (MOECARD_PF_ROWS=1) and
 * MOECARD_PF_HYBRID=hybrid; the globals back at 32 positions and 16 rows after. */
static struct engine *eng_open_rows64(const struct ckpt *ck, const char *hybrid)
{
	g_max_seq = g_max_batch = 64;
	setenv("MOECARD_PF_ROWS", "1", 1);
	setenv("MOECARD_PF_HYBRID", hybrid, 1);
	struct engine *e = eng_open(ck, "emu", NULL, NULL);
	unsetenv("MOECARD_PF_HYBRID");
	unsetenv("MOECARD_PF_ROWS");
	g_max_seq = 32;
	g_max_batch = 16;
	return e;
}

/* Two engines' logits and hidden rows for T rows (pair_new; NULL when out of memory), and
 * whether they are the same bits. */
struct pair {
	size_t nl, nh;
	float *a, *b, *ha, *hb;
};

static void pair_free(struct pair *p)
{
	free(p->a);
	free(p->b);
	free(p->ha);
	free(p->hb);
}

static int pair_new(struct pair *p, const struct ckpt *ck, int T)
{
	p->nl = (size_t)T * ck->cfg.vocab_size;
	p->nh = (size_t)T * ck->cfg.hidden_size;
	p->a = calloc(p->nl, 4);
	p->b = calloc(p->nl, 4);
	p->ha = calloc(p->nh, 4);
	p->hb = calloc(p->nh, 4);
	if (p->a && p->b && p->ha && p->hb)
		return 1;
	pair_free(p);
	return 0;
}

static int pair_same(const struct pair *p, const char *what)
{
	int same = !memcmp(p->a, p->b, p->nl * 4) && !memcmp(p->ha, p->hb, p->nh * 4);
	CHECK(same, "%s: logits differ (rel %g)", what, rel_err(p->a, p->b, (int)p->nl));
	return same;
}

/* A prompt through engines ea and eb (the same form, other chunks): every row's logits bit for
 * bit. */
static void same_logits(const struct ckpt *ck, struct engine *ea, struct engine *eb,
			const char *what, const int *tok, int T)
{
	int V = ck->cfg.vocab_size, D = ck->cfg.hidden_size;
	struct pair p;
	if (ea && eb && pair_new(&p, ck, T)) {
		if (run(ea, V, D, tok, T, 0, p.a, p.ha, NULL) >= 0 &&
		    run(eb, V, D, tok, T, 0, p.b, p.hb, NULL) >= 0 && pair_same(&p, what))
			printf("%s: bit-identical\n", what);
		pair_free(&p);
	} else {
		CHECK(0, "%s: no engine or out of memory", what);
	}
}

/* A prompt as forwards of n0 and n1 rows, then one row more, through engines ea and eb that
 * differ in how they append the latent cache's rows (MOECARD_PF_KV_ROWS): every row's logits
 * bit for bit (the absorbed form's attention and the last row's token loop read the cache), and
 * eb's cards took fewer commands. */
static void same_cache(const struct ckpt *ck, struct engine *ea, struct engine *eb,
		       const char *what, const int *tok, int n0, int n1)
{
	int V = ck->cfg.vocab_size, D = ck->cfg.hidden_size, T = n0 + n1 + 1;
	struct backend_stats sa0, sa1, sb0, sb1;
	struct pair p;
	if (!ea || !eb || !pair_new(&p, ck, T)) {
		CHECK(0, "%s: no engine or out of memory", what);
		return;
	}
	backend_stats(card_engine_backend(ea), &sa0);
	backend_stats(card_engine_backend(eb), &sb0);
	/* (then one row more, each engine after its own cache) */
	int ok = run(ea, V, D, tok, n0, n1, p.a, p.ha, NULL) >= 0 &&
		 run(eb, V, D, tok, n0, n1, p.b, p.hb, NULL) >= 0 &&
		 !engine_forward(ea, tok + n0 + n1, 1, p.a + (size_t)(T - 1) * V, 1,
				 p.ha + (size_t)(T - 1) * D) &&
		 !engine_forward(eb, tok + n0 + n1, 1, p.b + (size_t)(T - 1) * V, 1,
				 p.hb + (size_t)(T - 1) * D);
	CHECK(ok, "%s: a failed run", what);
	if (ok) {
		backend_stats(card_engine_backend(ea), &sa1);
		backend_stats(card_engine_backend(eb), &sb1);
		unsigned long long na = sa1.cmds - sa0.cmds, nb = sb1.cmds - sb0.cmds;
		CHECK(nb < na, "%s: %llu commands against %llu with an append a row", what, nb, na);
		if (pair_same(&p, what))
			printf("%s: bit-identical (%llu commands, %llu with an append a row)\n",
			       what, nb, na);
	}
	pair_free(&p);
}

/* A prompt's last row's logits alone (no hidden rows asked for: the last layer's MoE runs that
 * row only) against the same row of a forward with every row's logits, bit for bit. */
static void same_last(const struct ckpt *ck, struct engine *e, const char *what, const int *tok,
		      int T)
{
	int V = ck->cfg.vocab_size, D = ck->cfg.hidden_size;
	float *a = calloc((size_t)V, 4), *all = calloc((size_t)T * V, 4),
	      *h = calloc((size_t)T * D, 4);
	if (e && a && all && h && run(e, V, D, tok, T, 0, all, h, NULL) >= 0) {
		engine_truncate(e, 0, 0);
		int r = engine_forward(e, tok, T, a, 0, NULL);
		int same = !r && !memcmp(a, all + (size_t)(T - 1) * V, 4 * (size_t)V);
		CHECK(same, "%s: the last row's logits differ (%d)", what, r);
		if (same)
			printf("%s: bit-identical\n", what);
	} else {
		CHECK(0, "%s: no engine, out of memory or a failed run", what);
	}
	free(a);
	free(all);
	free(h);
}

/* A prompt continued across forward calls (20 then 40 tokens) gives the bits of one call (the
 * second continues the K/V rows); after a truncation below them and other tokens decoded, a
 * prompt chunk must not meet the old tokens' K/V rows: its logits against a fresh run of the
 * new sequence within the FP8 contract (the old rows would put them far off). ea: one chunk,
 * eb: chunks of 20 (engines of max_seq 64). */
static void chain_test(const struct ckpt *ck, struct engine *ea, struct engine *eb, const int *t64)
{
	int V = ck->cfg.vocab_size, D = ck->cfg.hidden_size, alt[64];
	size_t nl = (size_t)60 * V, nh = (size_t)60 * D;
	float *a = calloc(nl, 4), *b = calloc(nl, 4), *ha = calloc(nh, 4), *hb = calloc(nh, 4);
	if (!ea || !eb || !a || !b || !ha || !hb) {
		CHECK(0, "chain: no engine or out of memory");
		goto out;
	}
	if (run(ea, V, D, t64, 60, 0, a, ha, NULL) >= 0 &&
	    run(eb, V, D, t64, 20, 40, b, hb, NULL) >= 0) {
		long nm = stat_long(eb, "\"prefill_mha_tokens\":");
		CHECK(!memcmp(a, b, nl * 4) && nm == 60,
		      "non-absorbed across calls: 20 + 40 tokens differ from one call (rel %g, %ld "
		      "rows non-absorbed)",
		      rel_err(a, b, (int)nl), nm);
		printf("non-absorbed, 20 + 40 tokens in two calls: bit-identical to one call\n");
	}
	for (int i = 0; i < 64; i++)
		alt[i] = i < 10 ? t64[i] : (int)((91u * (unsigned)i + 7u) % 1000u);
	/* the old sequence (K/V rows of positions 0..39), truncated to 10, the new tokens to 40
	 * one at a time, then a prompt chunk at 40: the K/V rows of 10..39 are the old tokens' */
	engine_truncate(eb, 0, 0);
	int r = engine_forward(eb, t64, 40, NULL, 0, NULL);
	engine_truncate(eb, 10, 0);
	for (int p = 10; p < 40 && !r; p++)
		r = engine_forward(eb, alt + p, 1, NULL, 0, NULL);
	if (!r)
		r = engine_forward(eb, alt + 40, 20, b, 1, NULL);
	CHECK(r == 0, "chain truncation: forwards %d", r);
	if (!r && run(ea, V, D, alt, 60, 0, a, ha, NULL) >= 0) {
		double e = rel_err(b, a + (size_t)40 * V, 20 * V);
		CHECK(e < 0.1, "after a truncation: rel err %g against a fresh run", e);
		printf("non-absorbed, truncated to 10, 30 other tokens decoded, a chunk at 40: rel "
		       "err %.3g against a fresh run\n",
		       e);
	}
out:
	free(a);
	free(b);
	free(ha);
	free(hb);
}

static uint64_t busy_ns(struct engine *e)
{
	struct backend_stats s;
	backend_stats(card_engine_backend(e), &s);
	return s.busy_ns;
}

/* forward_seqs_top1 on the rows forward_seqs just ran (the same tokens at the same positions
 * write the same cache records again): each wanted row's greedy token must be sampler_argmax of
 * the logits forward_seqs gave (lg, nl rows); -ENOTSUP without the head on the card. Returns the
 * rows that differ, or -1 on an error. */
static int top1_again(struct engine *es, const int *t, int nr, const int *seq, const int *pos,
		      const float *lg, int nl, int lg_mode, int V, int *nt)
{
	int ids[8];
	if (!es->ops->forward_seqs_top1)
		return -1;
	int r = es->ops->forward_seqs_top1(es, t, nr, seq, pos, ids, lg_mode);
	if (r == -ENOTSUP)
		return 0;
	if (r)
		return -1;
	int bad = 0;
	for (int i = 0; i < nl; i++)
		bad += ids[i] != sampler_argmax(lg + (size_t)i * V, V);
	*nt += nl;
	return bad;
}

/* Sequence slots: es (3 slots) against the token loop el, sequence by sequence; the greedy
 * tokens of forward_seqs_top1 against the argmax of the same rows' logits. */
#define NSEQ 3
#define NSTEP 5
static void seqs_test(const struct ckpt *ck, struct engine *es, struct engine *el, const int *tok,
		      const char *low)
{
	int V = ck->cfg.vocab_size;
	static const int plen[NSEQ] = {5, 7, 2};
	int hist[NSEQ][32], n[NSEQ], seq[8], pos[8], t[8], bad = 0, rows = 0, r = 0;
	int tbad = 0, nt = 0, want_top1 = strstr(low, "gemv lowering") != NULL;
	unsigned char have[NSEQ][32] = {{0}}; /* rows of got that hold logits */
	float *lg = calloc((size_t)NSEQ * V, 4), *ref = calloc((size_t)32 * V, 4);
	/* every row's logits as produced: [seq][position] */
	float *got = calloc((size_t)NSEQ * 32 * V, 4);
	uint64_t ns_rows = 0, ns_one = 0;
	if (!es || !el || !lg || !ref || !got || es->max_seqs < NSEQ) {
		CHECK(0, "%s: sequence slots: no engine (max_seqs %d) or out of memory", low,
		      es ? es->max_seqs : -1);
		goto out;
	}
	for (int s = 0, o = 0; s < NSEQ && !r; o += plen[s++]) { /* the prompts, slot by slot */
		int sq[8], ps[8];
		for (int i = 0; i < plen[s]; i++) {
			hist[s][i] = tok[o + i];
			sq[i] = s;
			ps[i] = i;
		}
		n[s] = plen[s];
		r = es->ops->forward_seqs(es, hist[s], n[s], sq, ps, lg, MODEL_LG_LAST);
		int b = r ? 0 : top1_again(es, hist[s], n[s], sq, ps, lg, 1, MODEL_LG_LAST, V, &nt);
		tbad += b < 0 ? 1000 : b;
		memcpy(got + ((size_t)s * 32 + n[s] - 1) * V, lg, sizeof(float) * V);
		have[s][n[s] - 1] = 1;
	}
	for (int step = 0; step < NSTEP && !r; step++) {
		int nr = 0; /* step 2: slot 1 alone */
		for (int s = 0; s < NSEQ; s++) {
			if (step == 2 && s != 1)
				continue;
			seq[nr] = s;
			pos[nr] = n[s];
			t[nr] = hist[s][n[s]] = tok[(7 * step + 3 * s + 1) % NTOK];
			n[s]++;
			nr++;
		}
		uint64_t b0 = busy_ns(es);
		r = es->ops->forward_seqs(es, t, nr, seq, pos, lg, MODEL_LG_ALL);
		int b = r ? 0 : top1_again(es, t, nr, seq, pos, lg, nr, MODEL_LG_ALL, V, &nt);
		tbad += b < 0 ? 1000 : b;
		if (nr == 1)
			ns_one = busy_ns(es) - b0;
		else
			ns_rows = busy_ns(es) - b0;
		rows += nr;
		for (int i = 0; i < nr && !r; i++) {
			memcpy(got + ((size_t)seq[i] * 32 + pos[i]) * V, lg + (size_t)i * V,
			       sizeof(float) * V);
			have[seq[i]][pos[i]] = 1;
		}
	}
	/* MODEL_LG_SEQ: a decode row of slot 0, three rows of slot 1 (as a prompt's tail joins the
	 * decode rows in serve), a row of slot 2: the logits of each slot's last row, packed */
	static const int per[NSEQ] = {1, 3, 1};
	int nr = 0;
	for (int s = 0; s < NSEQ && !r; s++)
		for (int i = 0; i < per[s]; i++) {
			seq[nr] = s;
			pos[nr] = n[s];
			t[nr] = hist[s][n[s]] = tok[(5 * i + 3 * s + 2) % NTOK];
			n[s]++;
			nr++;
		}
	if (!r)
		r = es->ops->forward_seqs(es, t, nr, seq, pos, lg, MODEL_LG_SEQ);
	if (!r) {
		int b = top1_again(es, t, nr, seq, pos, lg, NSEQ, MODEL_LG_SEQ, V, &nt);
		tbad += b < 0 ? 1000 : b;
	}
	for (int s = 0; s < NSEQ && !r; s++) {
		memcpy(got + ((size_t)s * 32 + n[s] - 1) * V, lg + (size_t)s * V,
		       sizeof(float) * V);
		have[s][n[s] - 1] = 1;
	}
	CHECK(r == 0, "%s: forward_seqs: %d", low, r);
	for (int s = 0; s < NSEQ && !r; s++) { /* each sequence alone through the token loop */
		engine_truncate(el, 0, 0);
		r = engine_forward(el, hist[s], n[s], ref, 1, NULL);
		CHECK(r == 0, "%s: token loop of sequence %d: %d", low, s, r);
		for (int p = plen[s] - 1; p < n[s] && !r; p++)
			bad += have[s][p] && memcmp(got + ((size_t)s * 32 + p) * V,
						    ref + (size_t)p * V, sizeof(float) * V) != 0;
	}
	CHECK(!r && !bad, "%s: %d of the sequences' rows differ from each sequence alone", low,
	      bad);
	/* the head on the card: 3 prompts, 2 + 2 + 1 + 2 + 2 decode rows, 3 LG_SEQ rows */
	CHECK(!tbad && nt == (want_top1 ? 3 + 2 * NSEQ + 1 + 2 * NSEQ + NSEQ : 0),
	      "%s: forward_seqs_top1: %d of %d greedy tokens differ from the logits' argmax "
	      "(>= 1000: an error)",
	      low, tbad, nt);
	if (nt && !tbad)
		printf("%s: forward_seqs_top1: %d greedy tokens == the argmax of the same rows' "
		       "logits\n",
		       low, nt);
	CHECK(!r && ns_rows > 0 && ns_rows < NSEQ * ns_one,
	      "%s: %d rows of %d slots take %.1f us modeled, one row alone %.1f us", low, NSEQ,
	      NSEQ, ns_rows / 1e3, ns_one / 1e3);
	if (!r && !bad)
		printf(
		    "%s, %d sequence slots: %d decode rows bit-identical to each sequence alone; "
		    "%d rows in one forward %.1f us modeled, one row %.1f us\n",
		    low, NSEQ, rows, NSEQ, ns_rows / 1e3, ns_one / 1e3);
out:
	free(lg);
	free(ref);
	free(got);
}

int main(void)
{
	char dir[512];
	if (!harness_mkdtemp(dir, sizeof dir, "moecard-prefill")) {
		printf("mkdtemp failed\n0 passed, 1 failed\n");
		return 1;
	}
	char err[512];
	struct ckpt ck;
	int r = testckpt_write(dir, "tiny", 5, NULL, 0, err, sizeof err);
	CHECK(r == 0, "gen tiny: %s", err);
	if (!r && (r = ckpt_open(dir, &ck, err, sizeof err)))
		CHECK(0, "ckpt_open: %s", err);
	if (!r) {
		int tok[NTOK] = {5, 77, 300, 1, 999, 42, 42, 618, 3, 250, 800, 17, 64, 512, 2, 101};
		setenv("MOECARD_BOARD", board_path(), 1);
		struct engine *ec = eng_open(&ck, "cpu", NULL, NULL);
		for (int gemv = 1; gemv >= 0; gemv--) {
			char w[96];
			if (gemv)
				unsetenv("MOECARD_CARD_GEMV");
			else
				setenv("MOECARD_CARD_GEMV", "0", 1);
			struct engine *el = eng_open(&ck, "emu", "0", NULL);
			struct engine *eb = eng_open(&ck, "emu", NULL, NULL);
			struct engine *e4 = eng_open(&ck, "emu", NULL, "4");
			const char *low = gemv ? "gemv lowering" : "fp8_gemm lowering";
			snprintf(w, sizeof w, "%s, T=1", low);
			compare(&ck, eb, 512, el, ec, w, tok, 1, 0);
			snprintf(w, sizeof w, "%s, T=2", low);
			compare(&ck, eb, 512, el, ec, w, tok, 2, 0);
			snprintf(w, sizeof w, "%s, T=7", low);
			compare(&ck, eb, 512, el, ec, w, tok, 7, 0);
			snprintf(w, sizeof w, "%s, T=7 in chunks of 4", low);
			compare(&ck, e4, 4, el, ec, w, tok, 7, 0);
			snprintf(w, sizeof w, "%s, T=9 in chunks of 4 (a last single token)", low);
			compare(&ck, e4, 4, el, ec, w, tok, 9, 0);
			snprintf(w, sizeof w, "%s, 5 tokens then 6 after them (pos 5)", low);
			compare(&ck, eb, 512, el, ec, w, tok, 5, 6);
			if (gemv) { /* at most 16 rows on the GEMM CUs instead of the GEMV */
				setenv("MOECARD_CARD_ROWS", "0", 1);
				struct engine *eg = eng_open(&ck, "emu", NULL, NULL);
				unsetenv("MOECARD_CARD_ROWS");
				compare(&ck, eg, 512, el, ec,
					"gemv lowering, T=7 on the GEMM CUs (MOECARD_CARD_ROWS=0)",
					tok, 7, 0);
				eng_close(eg);
				/* more than 16 rows on the GEMV CU, in blocks of 16 (a full block
				 * and a tail of every matrix; experts with full blocks and tails) */
				int t64[64];
				for (int i = 0; i < 64; i++)
					t64[i] = (int)((37u * (unsigned)i + 11u) % 1000u);
				g_max_seq = g_max_batch = 64;
				setenv("MOECARD_PF_ROWS", "1", 1);
				struct engine *er = eng_open(&ck, "emu", NULL, NULL);
				unsetenv("MOECARD_PF_ROWS");
				struct engine *el64 = eng_open(&ck, "emu", "0", NULL);
				struct engine *ec64 = eng_open(&ck, "cpu", NULL, NULL);
				g_max_seq = 32;
				g_max_batch = 16;
				compare(&ck, er, 512, el64, ec64,
					"gemv lowering, T=60 on the GEMV CU in blocks of 16 "
					"(MOECARD_PF_ROWS=1)",
					t64, 60, 0);
				compare(
				    &ck, er, 512, el64, ec64,
				    "gemv lowering, 21 tokens then 40 after them on the GEMV CU "
				    "(MOECARD_PF_ROWS=1)",
				    t64, 21, 40);
				/* the experts split: the half with most rows on the GEMM CUs, their
				 * rows normalized and gathered on the vector CU (bit-identical) */
				struct engine *eh = eng_open_rows64(&ck, "half");
				compare(&ck, eh, 512, el64, ec64,
					"gemv lowering, T=60, half the experts on the GEMM CUs "
					"(MOECARD_PF_HYBRID=half)",
					t64, 60, 0);
				long nx = stat_long(eh, "\"prefill_gemm_experts\":");
				CHECK(nx > 0, "MOECARD_PF_HYBRID=half: %ld experts on the GEMM CUs",
				      nx);
				eng_close(eh);
				/* the non-absorbed form: a fresh prompt's first chunk */
				g_mha = NULL;
				g_max_seq = g_max_batch = 64;
				setenv("MOECARD_PF_ROWS", "1", 1);
				struct engine *em64 = eng_open(&ck, "emu", NULL, NULL);
				struct engine *em16 = eng_open(&ck, "emu", NULL, "20");
				setenv("MOECARD_KV_FOLD", "0", 1);
				struct engine *em16f = eng_open(&ck, "emu", NULL, "20");
				unsetenv("MOECARD_KV_FOLD");
				unsetenv("MOECARD_PF_ROWS");
				g_max_seq = 32;
				g_max_batch = 16;
				struct engine *em = eng_open(&ck, "emu", NULL, NULL);
				struct engine *em4 = eng_open(&ck, "emu", NULL, "4");
				setenv("MOECARD_KV_FOLD", "0", 1); /* the appends' own norm, RoPE */
				struct engine *emf = eng_open(&ck, "emu", NULL, NULL);
				unsetenv("MOECARD_KV_FOLD");
				g_mha = "0";
				compare_mha(&ck, em, el, "non-absorbed, T=2", tok, 2, 0, 2, 1e-4);
				compare_mha(&ck, em, el, "non-absorbed, T=7", tok, 7, 0, 7, 1e-4);
				compare_mha(
				    &ck, em4, el,
				    "non-absorbed, T=7 in chunks of 4 (the second, of 3 rows, "
				    "absorbed)",
				    tok, 7, 0, 4, 1e-4);
				compare_mha(
				    &ck, em, el,
				    "non-absorbed, 5 tokens then 6 after them in a second call",
				    tok, 5, 6, 5, 1e-4);
				compare_mha(&ck, emf, el,
					    "non-absorbed, 5 tokens then 6 after them, KV fold off",
					    tok, 5, 6, 5, 1e-4);
				eng_close(emf);
				compare_mha(&ck, em64, el64,
					    "non-absorbed, T=60 on the GEMV CU in blocks of 16",
					    t64, 60, 0, 60, 0.1);
				compare_mha(&ck, em16, el64, "non-absorbed, T=60 in chunks of 20",
					    t64, 60, 0, 60, 0.1);
				same_logits(&ck, em64, em16,
					    "non-absorbed, T=60 in one chunk and in chunks of 20",
					    t64, 60);
				g_mha = NULL;
				struct engine *emh = eng_open_rows64(&ck, "half");
				struct engine *emh0 = eng_open_rows64(&ck, "0");
				g_mha = "0";
				same_logits(&ck, em64, emh,
					    "non-absorbed, T=60, half the experts on the GEMM CUs "
					    "(MOECARD_PF_HYBRID=half) and as chosen",
					    t64, 60);
				long nxm = stat_long(emh, "\"prefill_gemm_experts\":");
				CHECK(nxm > 0,
				      "non-absorbed, MOECARD_PF_HYBRID=half: %ld experts on "
				      "the GEMM CUs",
				      nxm);
				same_logits(
				    &ck, emh0, emh,
				    "non-absorbed, T=60, half the experts on the GEMM CUs and "
				    "none (MOECARD_PF_HYBRID=0)",
				    t64, 60);
				long nho = stat_long(emh, "\"prefill_handovers\":");
				CHECK(nho > 0,
				      "non-absorbed, T=60: %ld layers' attention beside the "
				      "COMBINE before",
				      nho);
				eng_close(emh);
				eng_close(emh0);
				/* the next layer's attention beside a MoE layer's COMBINE, and after it */
				setenv("MOECARD_PF_MERGE", "0", 1);
				g_mha = NULL;
				struct engine *emn = eng_open_rows64(&ck, "half");
				unsetenv("MOECARD_PF_MERGE");
				emh = eng_open_rows64(&ck, "half");
				g_mha = "0";
				same_logits(&ck, emh, emn,
					    "non-absorbed, T=60, the attention beside the COMBINE "
					    "before and after it (MOECARD_PF_MERGE=0)",
					    t64, 60);
				CHECK(stat_long(emn, "\"prefill_handovers\":") == 0,
				      "MOECARD_PF_MERGE=0: no hand-over");
				eng_close(emh);
				eng_close(emn);
				/* the FFN that needs no routes (layer 0's dense FFN, the shared
				 * expert) on the GEMM CUs in o_proj's ranges, and on the GEMV CU */
				setenv("MOECARD_PF_SH_GEMM", "1", 1);
				g_mha = NULL;
				emh = eng_open_rows64(&ck, "half");
				setenv("MOECARD_PF_SH_GEMM", "0", 1);
				emn = eng_open_rows64(&ck, "half");
				unsetenv("MOECARD_PF_SH_GEMM");
				g_mha = "0";
				same_logits(
				    &ck, emh, emn,
				    "non-absorbed, T=60, the FFN that needs no routes on the "
				    "GEMM CUs and on the GEMV CU (MOECARD_PF_SH_GEMM=1, 0)",
				    t64, 60);
				long nfg = stat_long(emh, "\"prefill_ffn_gemm_ranges\":");
				CHECK(nfg > 0,
				      "MOECARD_PF_SH_GEMM=1: %ld ranges' FFN on the GEMM CUs", nfg);
				CHECK(stat_long(emn, "\"prefill_ffn_gemm_ranges\":") == 0,
				      "MOECARD_PF_SH_GEMM=0: no FFN on the GEMM CUs");
				eng_close(emh);
				eng_close(emn);
				/* the last layer's MoE over the row whose logits are wanted */
				g_mha = NULL;
				emh = eng_open_rows64(&ck, "half");
				g_mha = "0";
				same_last(
				    &ck, emh,
				    "non-absorbed, T=60, the last row's logits alone (the last "
				    "layer's MoE over that row) and with every row's",
				    t64, 60);
				eng_close(emh);
				emh = eng_open_rows64(&ck, "half");
				same_last(
				    &ck, emh,
				    "absorbed, T=60, the last row's logits alone and with every "
				    "row's",
				    t64, 60);
				eng_close(emh);
				/* a block's KV appends in one command, and one a row: the same
				 * cache, in both forms, from positions that start mid-block */
				for (int f = 0; f < 2; f++) {
					g_mha = f ? NULL : "0";
					setenv("MOECARD_PF_KV_ROWS", "0", 1);
					emn = eng_open_rows64(&ck, "half");
					unsetenv("MOECARD_PF_KV_ROWS");
					emh = eng_open_rows64(&ck, "half");
					same_cache(
					    &ck, emn, emh,
					    f ? "non-absorbed, T=41 + 18 + 1, a block's KV "
						"appends in one command and one a row"
					      : "absorbed, T=41 + 18 + 1, a block's KV appends "
						"in one command and one a row "
						"(MOECARD_PF_KV_ROWS=0)",
					    t64, 41, 18);
					eng_close(emh);
					eng_close(emn);
				}
				g_mha = "0";
				/* the split's two sides in one schedule, and in two phases */
				setenv("MOECARD_PF_MOE_SCHED", "0", 1);
				emn = eng_open_rows64(&ck, "half");
				unsetenv("MOECARD_PF_MOE_SCHED");
				emh = eng_open_rows64(&ck, "half");
				same_logits(&ck, emh, emn,
					    "absorbed, T=60, half the experts on the GEMM CUs, the "
					    "split in one schedule and in two phases "
					    "(MOECARD_PF_MOE_SCHED=0)",
					    t64, 60);
				eng_close(emh);
				eng_close(emn);
				same_logits(
				    &ck, em64, em16f,
				    "non-absorbed, T=60 in one chunk and in chunks of 20, KV "
				    "fold off",
				    t64, 60);
				chain_test(&ck, em64, em16, t64);
				eng_close(em16);
				eng_close(em16f);
				/* forward_seqs keeps the absorbed form (bit-identical to alone) */
				g_mha = NULL;
				struct engine *ems = eng_open_x(&ck, "emu", NULL, NULL, NSEQ);
				g_mha = "0";
				seqs_test(&ck, ems, el, tok, "gemv lowering, non-absorbed rule on");
				eng_close(ems);
				eng_close(em);
				eng_close(em4);
				eng_close(em64);
				eng_close(er);
				eng_close(el64);
				eng_close(ec64);
			}
			struct engine *es = eng_open_x(&ck, "emu", NULL, NULL, NSEQ);
			seqs_test(&ck, es, el, tok, low);
			eng_close(es);
			eng_close(el);
			eng_close(eb);
			eng_close(e4);
		}
		eng_close(ec);
		unsetenv("MOECARD_CARD_GEMV");
		ckpt_close(&ck);
	}
	char cmd[600];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd))
		printf("note: could not remove %s\n", dir);
	return harness_done();
}
