/*
 * generate.c - the shared generation loop (generate.h): history, chunked prefill that also keeps
 * the MTP cache in step, sampling distributions without sorting the vocab, plain decode steps,
 * rollback, streaming text with stop strings and the prefill progress bar. Speculative steps are
 * in spec.c.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "decode/generate.h"
#include "decode/sample.h"
#include "prof/prof.h"
#include "decode/spec.h"

static double gen_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

double gen_rand(uint64_t *state)
{
	uint64_t x = *state;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*state = x;
	return (double)((x * 0x2545F4914F6CDD1Dull) >> 11) * (1.0 / 9007199254740992.0);
}

/* ---- sampling distributions ------------------------------------------------------------------ */

int gen_dist_alloc(struct gen_dist *d, int V)
{
	d->n = 0;
	d->id = malloc(sizeof(int) * (size_t)V);
	d->p = malloc(sizeof(float) * (size_t)V);
	if (!d->id || !d->p) {
		gen_dist_release(d);
		return -ENOMEM;
	}
	return 0;
}

void gen_dist_release(struct gen_dist *d)
{
	free(d->id);
	free(d->p);
	d->id = NULL;
	d->p = NULL;
	d->n = 0;
}

void gen_sampling_default(struct gen_sampling *s)
{
	memset(s, 0, sizeof *s);
	s->top_p = 1;
	s->rep_penalty = 1;
	s->rep_window = 64;
	s->seed = 1;
}

int gen_sampling_flag(struct gen_sampling *s, const char *flag, const char *v)
{
	char *end;
	if (!strcmp(flag, "--seed")) {
		errno = 0;
		unsigned long long x = strtoull(v, &end, 10);
		if (!*v || *end || errno)
			return -EINVAL;
		s->seed = x;
		return 1;
	}
	if (!strcmp(flag, "--top-k")) {
		long x = strtol(v, &end, 10);
		if (!*v || *end || x < 0 || x > 1 << 30)
			return -EINVAL;
		s->top_k = (int)x;
		return 1;
	}
	float *dst = !strcmp(flag, "--temp")		 ? &s->temp
		     : !strcmp(flag, "--top-p")		 ? &s->top_p
		     : !strcmp(flag, "--min-p")		 ? &s->min_p
		     : !strcmp(flag, "--repeat-penalty") ? &s->rep_penalty
							 : NULL;
	if (!dst)
		return 0;
	float x = strtof(v, &end);
	if (!*v || *end || !isfinite(x) || x < 0)
		return -EINVAL;
	if ((dst == &s->top_p && (x <= 0 || x > 1)) || (dst == &s->min_p && x > 1) ||
	    (dst == &s->rep_penalty && x <= 0))
		return -EINVAL;
	*dst = x;
	return 1;
}

/* Histogram buckets of the log-probability below the maximum: GEN_BPN per nat, GEN_NB in all. */
#define GEN_BPN 4
#define GEN_NB 256

static const float *cmp_w;
static int cmp_desc(const void *a, const void *b)
{
	int ia = *(const int *)a, ib = *(const int *)b;
	float wa = cmp_w[ia], wb = cmp_w[ib];
	if (wa != wb)
		return wa < wb ? 1 : -1;
	return ia - ib;
}

void gen_dist_build(struct gen_dist *d, float *lg, int V, const struct gen_sampling *s,
		    const int *hist, int n_hist, float *w, int *cand)
{
	/* repetition penalty: each distinct token of the window once */
	if (s->rep_penalty != 1.0f && n_hist > 0) {
		int from = n_hist > s->rep_window ? n_hist - s->rep_window : 0;
		for (int i = from; i < n_hist; i++) {
			int t = hist[i], seen = 0;
			if (t < 0 || t >= V)
				continue;
			for (int j = from; j < i && !seen; j++)
				seen = hist[j] == t;
			if (!seen)
				lg[t] = lg[t] > 0 ? lg[t] / s->rep_penalty : lg[t] * s->rep_penalty;
		}
	}
	int ban = s->ban && s->ban_id >= 0 && s->ban_id < V ? s->ban_id : -1;
	if (ban >= 0) /* never the pick, never a candidate */
		lg[ban] = -INFINITY;
	int am = sampler_argmax(lg, V); /* the first maximum */
	if (s->temp <= 0) {
		d->n = 1;
		d->id[0] = am;
		d->p[0] = 1;
		return;
	}
	float mx = lg[am], inv_t = 1.0f / s->temp;
	double Z = 0;
	for (int i = 0; i < V; i++)
		Z += (w[i] = expf((lg[i] - mx) * inv_t));
	float thr = s->min_p; /* weights are relative to the maximum (w = 1) */
	int n = 0;
	if (s->top_k <= 0 && s->top_p >= 1) {
		/* no ordering needed: the candidates in id order */
		for (int i = 0; i < V; i++)
			if (w[i] >= thr && i != ban)
				cand[n++] = i;
	} else {
		/* find the histogram bucket where the top-k or top-p cut must fall */
		int cnt[GEN_NB] = {0};
		double mass[GEN_NB] = {0};
		for (int i = 0; i < V; i++) {
			if (w[i] < thr)
				continue;
			float z = (mx - lg[i]) * inv_t * GEN_BPN;
			int b = z < GEN_NB - 1 ? (int)z : GEN_NB - 1;
			cnt[b]++;
			mass[b] += w[i];
		}
		int B = GEN_NB - 1, cc = 0;
		double cm = 0, pm = (double)s->top_p * Z;
		for (int b = 0; b < GEN_NB; b++) {
			cc += cnt[b];
			cm += mass[b];
			if ((s->top_k > 0 && cc >= s->top_k) || (s->top_p < 1 && cm >= pm)) {
				B = b;
				break;
			}
		}
		/* the smallest weight in buckets <= B; every token at least as likely is a candidate */
		float wthr = INFINITY;
		for (int i = 0; i < V; i++) {
			if (w[i] < thr)
				continue;
			float z = (mx - lg[i]) * inv_t * GEN_BPN;
			int b = z < GEN_NB - 1 ? (int)z : GEN_NB - 1;
			if (b <= B && w[i] < wthr)
				wthr = w[i];
		}
		for (int i = 0; i < V; i++)
			if (w[i] >= thr && w[i] >= wthr && i != ban)
				cand[n++] = i;
		cmp_w = w;
		qsort(cand, (size_t)n, sizeof(int), cmp_desc);
		if (s->top_k > 0 && s->top_k < n)
			n = s->top_k;
		if (s->top_p < 1) {
			double cum = 0;
			for (int i = 0; i < n; i++) {
				cum += w[cand[i]];
				if (cum >= pm) {
					n = i + 1;
					break;
				}
			}
		}
	}
	if (n == 0) { /* cannot happen (the maximum has w = 1 >= min_p), kept for safety */
		cand[0] = am;
		n = 1;
	}
	double tot = 0;
	for (int i = 0; i < n; i++)
		tot += w[cand[i]];
	d->n = n;
	for (int i = 0; i < n; i++) {
		d->id[i] = cand[i];
		d->p[i] = (float)(w[cand[i]] / tot);
	}
}

int gen_dist_sample(const struct gen_dist *d, double u)
{
	double tot = 0, acc = 0;
	for (int i = 0; i < d->n; i++)
		tot += d->p[i];
	double r = u * tot;
	for (int i = 0; i < d->n; i++) {
		acc += d->p[i];
		if (r < acc)
			return d->id[i];
	}
	return d->id[d->n - 1];
}

/* ---- state ------------------------------------------------------------------------------------ */

void gen_free(struct gen *g)
{
	free(g->hist);
	free(g->logits);
	free(g->hid);
	free(g->mq_h);
	free(g->mtp_lg);
	free(g->mtp_hid);
	gen_dist_release(&g->p);
	if (g->q)
		for (int i = 0; i < g->depth; i++)
			gen_dist_release(&g->q[i]);
	free(g->q);
	free(g->drafts);
	free(g->w);
	free(g->cand);
	free(g->dense);
	memset(g, 0, sizeof *g);
}

int gen_init(struct gen *g, struct engine *e, const struct gen_opts *o, int cap_hist)
{
	memset(g, 0, sizeof *g);
	const struct gen_sampling *s = &o->s;
	if (!(s->top_p > 0 && s->top_p <= 1) || s->top_k < 0 || s->min_p < 0 || s->min_p > 1 ||
	    !(s->rep_penalty > 0) || s->rep_window < 0 || o->spec_depth < 0 || cap_hist < 1)
		return -EINVAL;
	if (o->spec_depth > 0 && (!e->w->mtp || !e->ops->mtp_forward))
		return -ENODEV;
	if (o->spec_depth > 1 && !e->ops->mtp_hidden)
		return -ENODEV;
	g->e = e;
	g->o = *o;
	g->V = e->c->vocab_size;
	g->D = e->c->hidden_size;
	g->eos = e->c->eos_token_id;
	/* a verify batch is depth+1 tokens; the tile path (>= KERN_TILE_MIN_M rows) is avoided so
	 * verification rows match the decode path bit for bit */
	g->depth = o->spec_depth;
	if (g->depth > e->max_batch - 1)
		g->depth = e->max_batch - 1;
	if (g->depth > 6)
		g->depth = 6;
	if (o->spec_depth > 0 && g->depth < 1)
		return -EINVAL;
	if (g->o.max_prefill <= 0 || g->o.max_prefill > e->max_batch)
		g->o.max_prefill = e->max_batch;
	g->rng = s->seed ? s->seed : 0x853c49e6748fea9bull;
	size_t V = (size_t)g->V, D = (size_t)g->D;
	int rows = g->depth + 1 > e->max_batch ? g->depth + 1 : e->max_batch;
	g->cap_hist = cap_hist;
	g->cap_mq = e->max_batch + g->depth + 2;
	g->hist = malloc(sizeof(int) * (size_t)cap_hist);
	g->logits = malloc(sizeof(float) * V * (size_t)(g->depth + 1));
	g->hid = malloc(sizeof(float) * D * (size_t)rows);
	g->mq_h = malloc(sizeof(float) * D * (size_t)g->cap_mq);
	g->mtp_lg = malloc(sizeof(float) * V);
	g->mtp_hid = malloc(sizeof(float) * D);
	g->drafts = malloc(sizeof(int) * (size_t)(g->depth + 1));
	g->w = malloc(sizeof(float) * V);
	g->cand = malloc(sizeof(int) * V);
	g->dense = calloc(V, sizeof(float));
	g->q = calloc((size_t)g->depth + 1, sizeof *g->q);
	int bad = !g->hist || !g->logits || !g->hid || !g->mq_h || !g->mtp_lg || !g->mtp_hid ||
		  !g->drafts || !g->w || !g->cand || !g->dense || !g->q ||
		  gen_dist_alloc(&g->p, g->V);
	for (int i = 0; i < g->depth && !bad; i++)
		bad = gen_dist_alloc(&g->q[i], g->V) != 0;
	if (bad) {
		gen_free(g);
		return -ENOMEM;
	}
	gen_rollback(g, 0);
	return 0;
}

void gen_stats_reset(struct gen *g)
{
	memset(&g->st, 0, sizeof g->st);
}

int gen_append(struct gen *g, const int *tokens, int n)
{
	if (n < 0 || g->n_hist + n > g->cap_hist || g->n_hist + n > g->e->max_seq)
		return -ENOSPC;
	for (int i = 0; i < n; i++)
		if (tokens[i] < 0 || tokens[i] >= g->V)
			return -EINVAL;
	memcpy(g->hist + g->n_hist, tokens, sizeof(int) * (size_t)n);
	g->n_hist += n;
	if (n)
		g->lg_valid = 0;
	return 0;
}

void gen_rollback(struct gen *g, int n)
{
	struct engine *e = g->e;
	if (n < 0)
		n = 0;
	if (n > g->n_hist)
		n = g->n_hist;
	/* keep main positions < r and MTP rows < r; the tokens from r on are re-fed by the next
	 * gen_sync / gen_step (speculation re-feeds one more: the next draft needs the hidden state
	 * of the token before the pending one) */
	int r = n - (g->depth > 0 ? 2 : 1);
	if (r > e->pos)
		r = e->pos;
	if (g->depth > 0 && r > e->mtp_pos)
		r = e->mtp_pos;
	if (r < 0)
		r = 0;
	engine_truncate(e, r, g->depth > 0 ? r : 0);
	g->n_hist = n;
	g->n_mq = 0;
	g->lg_valid = 0;
}

int gen_mtp_flush(struct gen *g, int k, int want_logits)
{
	struct engine *e = g->e;
	int r;
	while (k > 0) {
		int T = k < e->max_batch ? k : e->max_batch;
		int last = T == k;
		r = engine_mtp_forward(e, g->hist + e->mtp_pos + 1, g->mq_h, T,
				       last && want_logits ? g->mtp_lg : NULL, 0);
		g->st.mtp_forwards++;
		if (r)
			return r;
		if (last && want_logits && g->depth > 1 &&
		    (r = e->ops->mtp_hidden(e, T - 1, g->mtp_hid)))
			return r;
		g->n_mq -= T;
		memmove(g->mq_h, g->mq_h + (size_t)T * g->D,
			sizeof(float) * (size_t)g->n_mq * g->D);
		k -= T;
	}
	return 0;
}

/* Feeds hist[pos .. upto) to the main model in chunks (and the MTP rows that become computable). */
static int gen_feed(struct gen *g, int upto, int is_prefill)
{
	struct engine *e = g->e;
	int total = upto - e->pos, done = 0, r;
	double t0 = gen_now();
	int chunked = total > g->o.max_prefill;
	while (e->pos < upto) {
		int T = upto - e->pos < g->o.max_prefill ? upto - e->pos : g->o.max_prefill;
		int spec = g->depth > 0;
		r = engine_forward(e, g->hist + e->pos, T, g->logits, 0, spec ? g->hid : NULL);
		if (!is_prefill)
			g->st.decode_forwards++;
		if (r)
			return r;
		if (spec) {
			/* the new positions' hidden states join the pending MTP rows; every row but the
			 * one of the last fed token has its next token and can run */
			if (g->n_mq + T > g->cap_mq) {
				int k = g->n_mq;
				if ((r = gen_mtp_flush(g, k, 0)))
					return r;
			}
			memcpy(g->mq_h + (size_t)g->n_mq * g->D, g->hid,
			       sizeof(float) * (size_t)T * g->D);
			g->n_mq += T;
			int ready = e->pos - 1 - e->mtp_pos; /* row pos-1 stays: the next draft's */
			if (ready > 0 && (r = gen_mtp_flush(g, ready, 0)))
				return r;
		}
		done += T;
		if (chunked && g->o.progress)
			g->o.progress(g->o.progress_ctx, done, total);
	}
	if (is_prefill) {
		g->st.prefill_tokens += total;
		g->st.prefill_s += gen_now() - t0;
	}
	g->lg_valid = e->pos == g->n_hist && total > 0;
	return 0;
}

int gen_sync(struct gen *g)
{
	if (g->e->pos == g->n_hist && g->lg_valid)
		return 0;
	if (g->n_hist == 0)
		return -EINVAL;
	return gen_feed(g, g->n_hist, 1);
}

int gen_step(struct gen *g, int *out, int *n_out)
{
	struct engine *e = g->e;
	int r;
	double t0 = gen_now();
	*n_out = 0;
	if (g->n_hist == 0)
		return -EINVAL;
	int P = e->pos;
	/* room for a verify batch of depth+1 tokens at positions P .. P+depth */
	int depth = g->depth;
	if (depth > e->max_seq - g->n_hist)
		depth = e->max_seq - g->n_hist;
	if (depth > g->cap_hist - g->n_hist - 1)
		depth = g->cap_hist - g->n_hist - 1;
	if (depth > 0 && g->n_hist >= 2 && !(P == g->n_hist && g->lg_valid)) {
		/* feed everything but the last token (it goes into the verify batch), then speculate */
		if (P < g->n_hist - 1 && (r = gen_feed(g, g->n_hist - 1, 0)))
			return r;
		r = spec_step(g, depth, out, n_out);
		if (prof_g && !r) {
			prof_host("speculative step (host)", "sampling", -1);
			prof_token_end();
		}
	} else {
		/* plain step: feed what is unfed, sample from the last logits */
		if (g->n_hist >= g->cap_hist)
			return -ENOSPC;
		/* greedy without a penalty, one token to feed: the engine picks the token where
		 * the logits are (the card's head record) and only the token comes back */
		int t = -1;
		if (g->o.s.temp <= 0 && g->o.s.rep_penalty == 1.0f && !g->o.s.ban &&
		    e->ops->forward_top1 && !(e->pos == g->n_hist && g->lg_valid) &&
		    e->pos == g->n_hist - 1) {
			r = engine_forward_top1(e, g->hist + e->pos, 1, &t, g->logits);
			g->st.decode_forwards++;
			if (r)
				return r;
		} else if (!(e->pos == g->n_hist && g->lg_valid) &&
			   (r = gen_feed(g, g->n_hist, 0))) {
			return r;
		}
		if (prof_g)
			prof_host("engine (host rest)", "host", -1);
		if (t < 0) {
			gen_dist_build(&g->p, g->logits, g->V, &g->o.s, g->hist, g->n_hist, g->w,
				       g->cand);
			t = gen_dist_sample(&g->p, g->o.s.temp > 0 ? gen_rand(&g->rng) : 0);
		}
		if (prof_g) {
			prof_host("sampling", "sampling", -1);
			prof_token_end();
		}
		g->hist[g->n_hist++] = t;
		g->lg_valid = 0;
		out[0] = t;
		*n_out = 1;
		r = 0;
	}
	if (r)
		return r;
	g->st.decode_tokens += *n_out;
	g->st.decode_s += gen_now() - t0;
	return 0;
}

/* ---- streaming text ----------------------------------------------------------------------------- */

int gen_text_init(struct gen_text *t, const struct tokenizer *tok, const char *const *stops,
		  int n_stops)
{
	memset(t, 0, sizeof *t);
	tokenizer_stream_init(&t->ts, tok, TOKENIZER_DEC_SKIP_SPECIAL);
	t->stops = stops;
	t->n_stops = n_stops;
	for (int i = 0; i < n_stops; i++)
		if (strlen(stops[i]) > t->max_stop)
			t->max_stop = strlen(stops[i]);
	t->piece_cap = tokenizer_stream_cap(tok);
	t->cap = t->piece_cap + t->max_stop + 64;
	t->piece = malloc(t->piece_cap);
	t->buf = malloc(t->cap);
	if (!t->piece || !t->buf) {
		gen_text_free(t);
		return -ENOMEM;
	}
	return 0;
}

void gen_text_free(struct gen_text *t)
{
	free(t->piece);
	free(t->buf);
	t->piece = t->buf = NULL;
}

static void gen_text_write(struct gen_text *t, size_t n, FILE *out)
{
	if (n) {
		fwrite(t->buf, 1, n, out);
		t->written += n;
		memmove(t->buf, t->buf + n, t->len - n);
		t->len -= n;
	}
	fflush(out);
}

int gen_text_push(struct gen_text *t, int id, FILE *out)
{
	size_t pl = 0;
	if (t->stopped)
		return 1;
	int r = tokenizer_stream_push(&t->ts, id, t->piece, t->piece_cap, &pl);
	if (r)
		return r;
	if (t->len + pl > t->cap) {
		size_t nc = (t->len + pl) * 2;
		char *nb = realloc(t->buf, nc);
		if (!nb)
			return -ENOMEM;
		t->buf = nb;
		t->cap = nc;
	}
	size_t old = t->len;
	memcpy(t->buf + t->len, t->piece, pl);
	t->len += pl;
	/* a stop string that ends in the new bytes */
	size_t first = t->len;
	for (int i = 0; i < t->n_stops; i++) {
		size_t sl = strlen(t->stops[i]);
		if (!sl || sl > t->len)
			continue;
		size_t from = old + 1 > sl ? old + 1 - sl : 0;
		for (size_t k = from; k + sl <= t->len; k++)
			if (!memcmp(t->buf + k, t->stops[i], sl)) {
				if (k < first)
					first = k;
				break;
			}
	}
	if (first < t->len) {
		t->len = first;
		gen_text_write(t, first, out);
		t->stopped = 1;
		return 1;
	}
	/* hold back the longest tail that starts a stop string */
	size_t hold = 0;
	for (int i = 0; i < t->n_stops; i++) {
		size_t sl = strlen(t->stops[i]);
		for (size_t h = sl - (sl > 0); h > hold; h--)
			if (h <= t->len && !memcmp(t->buf + t->len - h, t->stops[i], h)) {
				hold = h;
				break;
			}
	}
	gen_text_write(t, t->len - hold, out);
	return 0;
}

void gen_text_finish(struct gen_text *t, FILE *out)
{
	size_t pl = 0;
	if (!t->stopped && !tokenizer_stream_flush(&t->ts, t->piece, t->piece_cap, &pl) &&
	    t->len + pl <= t->cap) {
		memcpy(t->buf + t->len, t->piece, pl);
		t->len += pl;
	}
	if (!t->stopped)
		gen_text_write(t, t->len, out);
	t->len = 0;
	t->stopped = 0;
	t->written = 0;
	tokenizer_stream_init(&t->ts, t->ts.tok, t->ts.flags);
}

void gen_progress_bar(void *ctx, int done, int total)
{
	FILE *f = ctx;
	int W = 30, k = total > 0 ? (int)((long)W * done / total) : W;
	if (done >= total) {
		fprintf(f, "\r%*s\r", W + 40, "");
		fflush(f);
		return;
	}
	fprintf(f, "\rprefill [");
	for (int i = 0; i < W; i++)
		fputc(i < k ? '=' : i == k ? '>' : ' ', f);
	fprintf(f, "] %d/%d tokens", done, total);
	fflush(f);
}
