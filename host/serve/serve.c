/*
 * serve.c - `moecard serve` (serve.h): the HTTP front (libmicrohttpd), the request life cycle and
 * the scheduler thread.
 *
 * Locking: one mutex (s->mu) guards the queue, the slots' request pointers and every request's
 * output and state; s->out_cv is broadcast whenever a request got text or ended, s->work_cv when
 * the scheduler has something new. The scheduler never holds s->mu during an engine call. The
 * tokenizer's encoder is not reentrant: s->tok_mu serializes encodes (decoding is read-only).
 */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <microhttpd.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "backend/backend.h"
#include "decode/generate.h"
#include "sched/card_engine.h"
#include "serve/serve.h"
#include "prof/prof.h"
#include "serve/serve_metrics.h"
#include "serve/serve_req.h"
#include "text/chat_template.h"
#include "util/errmsg.h"

/* A generation request, shared by its connection's thread and the scheduler (refs). */
struct sreq {
	struct serve_params p;
	int32_t *ids; /* the prompt's tokens */
	int n_ids;
	int max_new;		 /* tokens it may generate */
	char *out;		 /* text generated so far */
	size_t out_len, out_cap; /* (under mu) */
	int n_gen;		 /* tokens generated */
	int done;		 /* ended (finish or error) */
	const char *finish;	 /* "stop" or "length" when done without error */
	int err_status;		 /* an error after acceptance (500, 503) */
	char err_msg[160];	 /* ... its message */
	int cancelled;		 /* the client left, or shutdown */
	int refs;		 /* connection + scheduler */
	double t_arrive, t_first, t_last;
	char id[48];
	long long created;
	struct sreq *next; /* the waiting queue */
};

/* A sequence slot. With an engine that batches rows (forward_rows: the cpu engine) every slot
 * is a KV cache of that one engine and the scheduler samples itself; otherwise a slot is an
 * engine of its own, driven through generate.h. */
struct slot {
	struct serve *s;
	struct engine *e;
	struct gen g;	    /* one engine per slot: its generation loop */
	struct gen_text tx; /* text and stop strings */
	FILE *f;	    /* gen_text writes here: appends to r->out */
	struct sreq *r;
	int fed; /* prompt tokens in the KV cache */ /* rows mode */
	struct model_kv kv; /* this sequence's KV cache: blocks of the pool, reserved at start */
	float **blocks;	    /* [kv.n_blocks] kv.blocks, NULL where none is held */
	int n_held;	    /* blocks held, blocks[0..n_held) */
	int *hist;	    /* [max_seq] prompt and generated tokens */
	int n_hist;
	float *lg; /* [vocab] logits of the last token fed */
	int has_lg;
	int top1; /* with has_lg: the next token (greedy, picked on the card) instead of lg */
	struct gen_sampling smp;
	uint64_t rng;
};

/* rows of one decode forward (model_forward_rows keeps every decode row on the per-row path,
 * so that a sequence's logits are the same alone or batched) */
#define SERVE_DECODE_ROWS 16

struct serve {
	struct serve_opts o;
	struct MHD_Daemon *d;
	int port;
	pthread_mutex_t mu, tok_mu;
	pthread_cond_t out_cv, work_cv;
	struct sreq *q_head, *q_tail;
	int q_len;
	struct slot *slots;
	int n_slots;
	int rows;	     /* batched rows mode (one engine for every slot) */
	int seqs;	     /* rows mode on an engine that keeps each slot's KV cache itself
				(forward_seqs: a card); a slot is then one block of the pool */
	float *pool;	     /* rows mode: the KV blocks of every sequence */
	int bs, n_blocks;    /* positions per block, blocks in the pool */
	size_t block_floats; /* floats per block */
	int *free_blk;	     /* [n_blocks] stack of free block indices */
	int n_free;
	struct gen_dist dist; /* sampling scratch (rows mode) */
	float *w, *rows_lg;
	int *cand;
	struct tokenizer *tok;
	int eos;
	int ready, draining, stopping;
	int inflight; /* generation requests whose connection has not completed */
	pthread_t sched;
	int sched_on;
	struct serve_metrics m;
	unsigned long long next_id;
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Waits on out_cv (mu held) for at most ms milliseconds. */
static void out_wait(struct serve *s, long ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_nsec += ms * 1000000L;
	ts.tv_sec += ts.tv_nsec / 1000000000L;
	ts.tv_nsec %= 1000000000L;
	pthread_cond_timedwait(&s->out_cv, &s->mu, &ts);
}

static void req_unref(struct serve *s, struct sreq *r)
{
	(void)s;
	if (--r->refs > 0)
		return;
	serve_params_free(&r->p);
	free(r->ids);
	free(r->out);
	free(r);
}

/* Appends n bytes to the NUL-terminated buffer *b (*len bytes, *cap allocated). 0 or -ENOMEM. */
static int buf_append(char **b, size_t *len, size_t *cap, const char *src, size_t n)
{
	if (*len + n + 1 > *cap) {
		size_t nc = (*len + n + 1) * 2;
		char *nb = realloc(*b, nc);
		if (!nb)
			return -ENOMEM;
		*b = nb;
		*cap = nc;
	}
	memcpy(*b + *len, src, n);
	*len += n;
	(*b)[*len] = 0;
	return 0;
}

/* --- the scheduler ---------------------------------------------------------------------- */

/* gen_text's output: appends to the slot's request (fopencookie write). */
static ssize_t slot_write(void *cookie, const char *buf, size_t n)
{
	struct slot *sl = cookie;
	struct serve *s = sl->s;
	pthread_mutex_lock(&s->mu);
	struct sreq *r = sl->r;
	if (r && n) {
		if (buf_append(&r->out, &r->out_len, &r->out_cap, buf, n)) {
			pthread_mutex_unlock(&s->mu);
			return -1;
		}
		pthread_cond_broadcast(&s->out_cv);
	}
	pthread_mutex_unlock(&s->mu);
	return (ssize_t)n;
}

/* KV blocks (rows mode, mu held): the blocks a request reserves (its prompt and every token it
 * may generate), taking them, giving them back. */
static int blocks_need(const struct serve *s, const struct sreq *r)
{
	return s->seqs ? 1 : (r->n_ids + r->max_new + s->bs - 1) / s->bs;
}

static void blocks_take(struct serve *s, struct slot *sl, int n)
{
	if (s->seqs) /* the slot's own cache on the engine */
		s->n_free -= n - sl->n_held, sl->n_held = n;
	for (; sl->n_held < n; sl->n_held++)
		sl->blocks[sl->n_held] =
		    s->pool + (size_t)s->free_blk[--s->n_free] * s->block_floats;
	pthread_mutex_lock(&s->m.mu);
	s->m.kv_blocks_used = s->n_blocks - s->n_free;
	pthread_mutex_unlock(&s->m.mu);
}

static void blocks_release(struct serve *s, struct slot *sl)
{
	if (!s->rows)
		return;
	if (s->seqs)
		s->n_free += sl->n_held, sl->n_held = 0;
	for (; sl->n_held > 0; sl->n_held--) {
		float *b = sl->blocks[sl->n_held - 1];
		s->free_blk[s->n_free++] = (int)((size_t)(b - s->pool) / s->block_floats);
		sl->blocks[sl->n_held - 1] = NULL;
	}
	pthread_mutex_lock(&s->m.mu);
	s->m.kv_blocks_used = s->n_blocks - s->n_free;
	pthread_mutex_unlock(&s->m.mu);
}

/* Ends the slot's request (mu not held): its status, the metrics, the slot freed. */
static void slot_end(struct slot *sl, const char *finish, int status, const char *msg)
{
	struct serve *s = sl->s;
	if (!status)
		gen_text_finish(&sl->tx, sl->f);
	fflush(sl->f);
	pthread_mutex_lock(&s->mu);
	struct sreq *r = sl->r;
	r->done = 1;
	r->finish = finish;
	if (status) {
		r->err_status = status;
		snprintf(r->err_msg, sizeof r->err_msg, "%s", msg);
	}
	pthread_mutex_lock(&s->m.mu);
	s->m.running--;
	if (r->cancelled)
		s->m.cancelled++;
	else if (!status)
		serve_hist_observe(&s->m.duration, now_s() - r->t_arrive);
	pthread_mutex_unlock(&s->m.mu);
	if (!s->o.quiet) {
		/* the access log: one line per generation request */
		double now = now_s(), dec = r->n_gen > 1 ? r->t_last - r->t_first : 0;
		fprintf(stderr,
			"moecard: serve: %s %s: prompt %d, generated %d, TTFT %.1f ms, %.1f tok/s, "
			"%.1f ms in all%s\n",
			r->id,
			r->cancelled ? "cancelled"
			: status     ? "error"
				     : finish,
			r->n_ids, r->n_gen, r->n_gen ? (r->t_first - r->t_arrive) * 1e3 : 0.0,
			dec > 0 ? (r->n_gen - 1) / dec : 0.0, (now - r->t_arrive) * 1e3,
			r->p.stream ? ", streamed" : "");
	}
	sl->r = NULL;
	blocks_release(s, sl);
	req_unref(s, r);
	pthread_cond_broadcast(&s->out_cv);
	pthread_cond_broadcast(&s->work_cv);
	pthread_mutex_unlock(&s->mu);
}

/* Starts request r on slot sl (mu held): a fresh conversation with r's sampling. */
static int slot_begin(struct slot *sl, struct sreq *r)
{
	struct serve *s = sl->s;
	sl->r = r;
	sl->fed = 0;
	struct gen_sampling sm;
	gen_sampling_default(&sm);
	sm.temp = (float)r->p.temperature;
	sm.top_p = (float)r->p.top_p;
	sm.seed = r->p.has_seed ? r->p.seed : 0x9e3779b97f4a7c15ull ^ (uint64_t)(now_s() * 1e9);
	sm.ban = r->p.ignore_eos && s->eos >= 0; /* the text runs to max_tokens or a stop */
	sm.ban_id = s->eos;
	sl->smp = sm;
	sl->rng = sm.seed ? sm.seed : 0x853c49e6748fea9bull; /* as gen_init seeds */
	if (!s->rows) { /* the slot's own generation loop samples */
		gen_rollback(&sl->g, 0);
		gen_stats_reset(&sl->g);
		sl->g.o.s = sm;
		sl->g.rng = sl->rng;
	}
	sl->n_hist = 0;
	sl->has_lg = 0;
	sl->top1 = -1;
	gen_text_free(&sl->tx);
	int rc = gen_text_init(&sl->tx, s->tok, (const char *const *)r->p.stops, r->p.n_stops);
	pthread_mutex_lock(&s->m.mu);
	s->m.running++;
	pthread_mutex_unlock(&s->m.mu);
	return rc;
}

static void busy_add(struct serve *s, double dt, int forwards)
{
	pthread_mutex_lock(&s->m.mu);
	s->m.engine_busy_s += dt;
	s->m.forwards += (uint64_t)forwards;
	pthread_mutex_unlock(&s->m.mu);
}

/* A generated token: the end (EOS), or its text, counts and times; then the end when a stop
 * string completed or max_tokens is reached. 1 when the slot's request ended. mu not held. */
static int slot_emit(struct slot *sl, int tok, double t1)
{
	struct serve *s = sl->s;
	struct sreq *r = sl->r;
	if (tok == s->eos) {
		slot_end(sl, "stop", 0, NULL);
		return 1;
	}
	int st = gen_text_push(&sl->tx, tok, sl->f);
	pthread_mutex_lock(&s->mu);
	r->n_gen++;
	pthread_mutex_lock(&s->m.mu);
	s->m.gen_tokens++;
	if (r->n_gen == 1)
		serve_hist_observe(&s->m.ttft, t1 - r->t_arrive);
	else
		serve_hist_observe(&s->m.itl, t1 - r->t_last);
	pthread_mutex_unlock(&s->m.mu);
	if (r->n_gen == 1)
		r->t_first = t1;
	r->t_last = t1;
	int full = r->n_gen >= r->max_new;
	pthread_mutex_unlock(&s->mu);
	if (st < 0) {
		slot_end(sl, NULL, 500, strerror(-st));
		return 1;
	}
	if (st == 1 || full) {
		slot_end(sl, st == 1 ? "stop" : "length", 0, NULL);
		return 1;
	}
	return 0;
}

/* Whether slot sl's next token is the logits' argmax (temperature 0 without a repetition
 * penalty: gen_dist_build's pick), which a card's head returns instead of the logits
 * (forward_seqs_top1: 8 bytes a sequence over the link, no sampling pass). */
static int slot_greedy(const struct serve *s, const struct slot *sl)
{
	const struct engine_ops *o = s->slots[0].e->ops;
	return sl->smp.temp <= 0 && sl->smp.rep_penalty == 1.0f && !sl->smp.ban &&
	       (s->seqs ? o->forward_seqs_top1 != NULL : o->forward_rows_top1 != NULL);
}

/* Rows mode: one forward of n rows, row i of the sequence whose KV cache is kv[i] (a slot's),
 * at position pos[i]: forward_rows on the pool's blocks, or forward_seqs on the slots' caches,
 * into the logits lg; when every row's sequence is greedy (slot_greedy), their greedy tokens
 * into ids instead, packed as the logits would be (forward_rows_top1, forward_seqs_top1:
 * *top1 = 1). */
static int rows_forward(struct serve *s, const int *tk, int n, const struct model_kv *const *kv,
			const int *pos, float *lg, int *ids, int lg_mode, int *top1)
{
	struct engine *e = s->slots[0].e;
	int seq[256], g = 1, rc = -ENOTSUP;
	*top1 = 0;
	if (s->seqs && n > 256)
		return -EINVAL;
	for (int i = 0; i < n; i++) { /* the slot whose cache kv[i] is */
		const struct slot *sl =
		    (const struct slot *)((const char *)kv[i] - offsetof(struct slot, kv));
		if (s->seqs)
			seq[i] = (int)(sl - s->slots);
		g = g && slot_greedy(s, sl);
	}
	if (g)
		rc = s->seqs ? e->ops->forward_seqs_top1(e, tk, n, seq, pos, ids, lg_mode)
			     : e->ops->forward_rows_top1(e, tk, n, kv, pos, ids, lg_mode);
	if (rc != -ENOTSUP) {
		*top1 = !rc;
		return rc;
	}
	return s->seqs ? e->ops->forward_seqs(e, tk, n, seq, pos, lg, lg_mode)
		       : e->ops->forward_rows(e, tk, n, kv, pos, lg, lg_mode);
}

/* Rows mode: one forward of nr rows of different sequences, each sequence's rows consecutive
 * (decode rows, prompt tails); each sequence gets the logits of its last row (MODEL_LG_SEQ), or
 * its greedy token when all of them are greedy (rows_forward), or ends with the error. */
static void rows_feed(struct serve *s, const int *tk, int nr, const struct model_kv *const *kv,
		      const int *pos, struct slot *const *row_slot)
{
	struct engine *e = s->slots[0].e;
	size_t V = (size_t)e->c->vocab_size;
	int ids[SERVE_MAX_SLOTS], top1;
	double t0 = now_s();
	int rc = rows_forward(s, tk, nr, kv, pos, s->rows_lg, ids, MODEL_LG_SEQ, &top1);
	busy_add(s, now_s() - t0, 1);
	for (int t = 0, j = 0; t < nr; t++) {
		struct slot *sl = row_slot[t];
		if (t < nr - 1 && row_slot[t + 1] == sl) /* not the sequence's last row */
			continue;
		if (rc) {
			slot_end(sl, NULL, 500, strerror(-rc));
			continue;
		}
		sl->top1 = top1 ? ids[j++] : -1;
		if (!top1)
			memcpy(sl->lg, s->rows_lg + (size_t)j++ * V, sizeof(float) * V);
		sl->has_lg = 1;
	}
}

/* Prompt tokens of a sequence that join the step's decode rows rather than run a forward of
 * their own: fewer than KERN_TILE_MIN_M (such a chunk takes the per-row path either way, so the
 * bits are the same) and at most the rows of one forward. */
static int tail_max(const struct serve *s)
{
	int cap = s->slots[0].e->max_batch < SERVE_DECODE_ROWS ? s->slots[0].e->max_batch
							       : SERVE_DECODE_ROWS;
	return cap < KERN_TILE_MIN_M - 1 ? cap : KERN_TILE_MIN_M - 1;
}

/* Rows mode: the length of the slot's next prompt chunk of its own (0: none; a prompt's last
 * tail_max() tokens or fewer join the decode rows). Chunk lengths depend on the prompt only. */
static int chunk_len(const struct serve *s, const struct slot *sl)
{
	int n = sl->r ? sl->r->n_ids - sl->fed : 0, cap = s->o.chunk;
	cap = cap < s->slots[0].e->max_batch ? cap : s->slots[0].e->max_batch;
	cap = cap < 256 ? cap : 256;
	return n <= tail_max(s) ? 0 : n < cap ? n : cap;
}

/* n prompt tokens are in a sequence's KV cache: the metric. */
static void prompt_fed(struct serve *s, int n)
{
	pthread_mutex_lock(&s->m.mu);
	s->m.prompt_tokens += (uint64_t)n;
	pthread_mutex_unlock(&s->m.mu);
}

/* Rows mode, one step of every running sequence. Sequences with more than tail_max() prompt
 * tokens left run a chunk of them (chunk_len: serve_opts.chunk, --prefill-chunk) as a forward of
 * its own (from KERN_TILE_MIN_M rows the tile path), oldest request first, at most
 * serve_opts.chunk prompt tokens a step in all (at least one chunk; the others wait for later steps, their chunks unchanged); the
 * last few of a prompt (a short prompt whole) join the step's decode rows instead, so a joining
 * request costs the running ones little more than its rows. Every sequence with logits samples
 * its next token; the decode rows and the tails go through forwards of at most
 * SERVE_DECODE_ROWS rows together, each sequence's rows in one of them, logits only of each
 * sequence's last row. A request's rows take the same path whatever runs beside it, so its
 * output does not depend on it. mu not held. */
static void sched_step_rows(struct serve *s)
{
	struct engine *e = s->slots[0].e;
	int V = e->c->vocab_size;
	enum { MAXR = SERVE_MAX_SLOTS * KERN_TILE_MIN_M };
	int tk[MAXR], pos[MAXR];
	const struct model_kv *kv[MAXR];
	struct slot *row_slot[MAXR] = {NULL};
	int nr = 0;
	unsigned char go[SERVE_MAX_SLOTS] = {0}; /* the prompt chunks of this step */
	for (int used = 0;;) {
		int best = -1;
		for (int i = 0; i < s->n_slots; i++)
			if (!go[i] && chunk_len(s, &s->slots[i]) &&
			    (best < 0 || s->slots[i].r->t_arrive < s->slots[best].r->t_arrive))
				best = i;
		if (best < 0 || (used && used + chunk_len(s, &s->slots[best]) > s->o.chunk))
			break;
		go[best] = 1;
		used += chunk_len(s, &s->slots[best]);
	}
	for (int i = 0; i < s->n_slots; i++) {
		struct slot *sl = &s->slots[i];
		struct sreq *r = sl->r;
		if (!r)
			continue;
		pthread_mutex_lock(&s->mu);
		int cancelled = r->cancelled;
		pthread_mutex_unlock(&s->mu);
		if (cancelled) {
			slot_end(sl, NULL, 499,
				 "cancelled (the client left, or the server shut down)");
			continue;
		}
		if (sl->fed < r->n_ids) { /* in its prompt */
			int n = chunk_len(s, sl), ptk[256], ppos[256];
			const struct model_kv *pkv[256];
			if (!n) { /* the prompt's tail: with the decode rows */
				prompt_fed(s, r->n_ids - sl->fed);
				for (; sl->fed < r->n_ids; sl->fed++) {
					tk[nr] = r->ids[sl->fed];
					pos[nr] = sl->fed;
					kv[nr] = &sl->kv;
					row_slot[nr++] = sl;
					sl->hist[sl->n_hist++] = r->ids[sl->fed];
				}
				continue;
			}
			if (!go[i]) /* its chunk waits for a later step */
				continue;
			for (int t = 0; t < n; t++) {
				ptk[t] = r->ids[sl->fed + t];
				ppos[t] = sl->fed + t;
				pkv[t] = &sl->kv;
				sl->hist[sl->n_hist++] = ptk[t];
			}
			int top1, id = -1;
			double t0 = now_s();
			int rc =
			    rows_forward(s, ptk, n, pkv, ppos, sl->lg, &id, MODEL_LG_LAST, &top1);
			busy_add(s, now_s() - t0, 1);
			sl->top1 = top1 ? id : -1;
			if (rc) {
				slot_end(sl, NULL, 500, strerror(-rc));
				continue;
			}
			sl->fed += n;
			sl->has_lg = sl->fed == r->n_ids;
			prompt_fed(s, n);
			continue;
		}
		if (!sl->has_lg)
			continue;
		/* sample as generate.h's plain step does (a greedy token the card picked: as is) */
		int t = sl->top1;
		if (t < 0) {
			gen_dist_build(&s->dist, sl->lg, V, &sl->smp, sl->hist, sl->n_hist, s->w,
				       s->cand);
			t = gen_dist_sample(&s->dist, sl->smp.temp > 0 ? gen_rand(&sl->rng) : 0);
		}
		sl->has_lg = 0;
		if (slot_emit(sl, t, now_s()))
			continue;
		tk[nr] = t;
		pos[nr] = sl->n_hist;
		kv[nr] = &sl->kv;
		row_slot[nr++] = sl;
		sl->hist[sl->n_hist++] = t;
		sl->fed++;
	}
	/* the rows in about equal forwards of at most SERVE_DECODE_ROWS (20 rows are 10 + 10, not
	 * 16 + 4), a sequence's rows never split */
	int cap = e->max_batch < SERVE_DECODE_ROWS ? e->max_batch : SERVE_DECODE_ROWS;
	if (cap < 1 || nr < 1)
		return;
	int groups = (nr + cap - 1) / cap, target = (nr + groups - 1) / groups;
	for (int at = 0, n = 0, t = 0; t < nr;) {
		int u = 1; /* the sequence's rows from t */
		while (t + u < nr && row_slot[t + u] == row_slot[t])
			u++;
		if (n && n + u > target) {
			rows_feed(s, tk + at, n, kv + at, pos + at, row_slot + at);
			at += n;
			n = 0;
		}
		n += u;
		t += u;
		if (t == nr)
			rows_feed(s, tk + at, n, kv + at, pos + at, row_slot + at);
	}
}

/* One step of the slot's sequence: a prefill chunk, or one decode step. mu not held. */
static void slot_advance(struct slot *sl)
{
	struct serve *s = sl->s;
	struct sreq *r = sl->r;
	pthread_mutex_lock(&s->mu);
	int cancelled = r->cancelled;
	pthread_mutex_unlock(&s->mu);
	if (cancelled) {
		slot_end(sl, NULL, 499, "cancelled (the client left, or the server shut down)");
		return;
	}
	double t0 = now_s();
	if (sl->fed < r->n_ids) {
		int n = r->n_ids - sl->fed;
		if (n > s->o.chunk)
			n = s->o.chunk;
		int rc = gen_append(&sl->g, r->ids + sl->fed, n);
		if (!rc)
			rc = gen_sync(&sl->g);
		busy_add(s, now_s() - t0, 1);
		if (rc) {
			slot_end(sl, NULL, 500, strerror(-rc));
			return;
		}
		sl->fed += n;
		prompt_fed(s, n);
		return;
	}
	int out[8], n_out = 0;
	int rc = gen_step(&sl->g, out, &n_out);
	double t1 = now_s();
	busy_add(s, t1 - t0, 1);
	if (rc) {
		slot_end(sl, NULL, 500, strerror(-rc));
		return;
	}
	for (int i = 0; i < n_out; i++)
		if (slot_emit(sl, out[i], t1))
			return;
}

/* The card figures of /metrics, read by the thread that drives the engines. */
static void card_metrics(struct serve *s)
{
	uint64_t busy = 0, clock = 0, cmds = 0, lists = 0, dma = 0, link = 0;
	int card = 0;
	for (int i = 0; i < s->n_slots; i++) {
		/* rows mode: one engine for every slot (a card's with forward_seqs) */
		struct backend *b = s->rows && i ? NULL : card_engine_backend(s->slots[i].e);
		if (!b)
			continue;
		struct backend_stats st;
		backend_stats(b, &st);
		card = 1;
		busy += st.busy_ns;
		clock = st.card_ns > clock ? st.card_ns : clock;
		cmds += st.cmds;
		lists += st.submits;
		dma += st.fill_bytes;
		link += st.h2c_bytes + st.c2h_bytes;
	}
	if (!card)
		return;
	pthread_mutex_lock(&s->m.mu);
	s->m.card = 1;
	s->m.card_busy_s = busy * 1e-9;
	s->m.card_clock_s = clock * 1e-9;
	s->m.card_cmds = cmds;
	s->m.card_lists = lists;
	s->m.card_dma_bytes = dma;
	s->m.card_link_bytes = link;
	pthread_mutex_unlock(&s->m.mu);
}

static void *sched_main(void *arg)
{
	struct serve *s = arg;
	prof_thread_name("serve: scheduler");
	pthread_mutex_lock(&s->mu);
	for (;;) {
		int busy = 0;
		for (int i = 0; i < s->n_slots; i++) {
			struct slot *sl = &s->slots[i];
			/* FIFO: the head waits until the pool has the KV blocks it reserves */
			int need = s->rows && s->q_head && !s->q_head->cancelled
				       ? blocks_need(s, s->q_head)
				       : 0;
			if (!sl->r && s->q_head && need <= s->n_free) {
				struct sreq *r = s->q_head;
				s->q_head = r->next;
				if (!s->q_head)
					s->q_tail = NULL;
				s->q_len--;
				if (slot_begin(sl, r)) {
					r->done = 1;
					r->err_status = 500;
					snprintf(r->err_msg, sizeof r->err_msg, "out of memory");
					sl->r = NULL;
					pthread_mutex_lock(&s->m.mu);
					s->m.running--;
					pthread_mutex_unlock(&s->m.mu);
					req_unref(s, r);
					pthread_cond_broadcast(&s->out_cv);
				} else if (s->rows) {
					blocks_take(s, sl, need);
				}
			}
			busy += sl->r != NULL;
		}
		pthread_mutex_lock(&s->m.mu);
		s->m.queue_depth = s->q_len;
		pthread_mutex_unlock(&s->m.mu);
		if (!busy) {
			if (s->stopping)
				break;
			pthread_cond_wait(&s->work_cv, &s->mu);
			continue;
		}
		pthread_mutex_unlock(&s->mu);
		prof_mark(); /* (--profile) the wait for work is not the step's host time */
		/* every running sequence advances one step: sequences join and leave between steps */
		if (s->rows)
			sched_step_rows(s);
		else
			for (int i = 0; i < s->n_slots; i++)
				if (s->slots[i].r)
					slot_advance(&s->slots[i]);
		card_metrics(s);
		pthread_mutex_lock(&s->mu);
	}
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

/* --- HTTP ------------------------------------------------------------------------------- */

/* Per connection: the request body as it arrives. */
struct conn {
	char *body;
	size_t len, cap;
	int too_big;
	int endpoint;
	int gen;     /* a generation request was queued: counted in s->inflight until completed */
	uint64_t t0; /* --profile: when the request arrived (host CLOCK_MONOTONIC ns) */
};

static enum MHD_Result send_buf(struct serve *s, struct MHD_Connection *c, int endpoint, int status,
				const char *type, char *body, int retry_after)
{
	struct MHD_Response *rsp =
	    MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
	if (!rsp) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(rsp, "Content-Type", type);
	if (retry_after)
		MHD_add_response_header(rsp, "Retry-After", "1");
	enum MHD_Result ok = MHD_queue_response(c, (unsigned)status, rsp);
	MHD_destroy_response(rsp);
	serve_metrics_request(&s->m, endpoint, status);
	return ok;
}

static enum MHD_Result send_json(struct serve *s, struct MHD_Connection *c, int endpoint,
				 int status, json_t *j, int retry_after)
{
	char *body = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	if (!body)
		return MHD_NO;
	return send_buf(s, c, endpoint, status, "application/json", body, retry_after);
}

static const char *err_type(int status)
{
	switch (status) {
	case 401:
		return "authentication_error";
	case 404:
		return "not_found_error";
	case 429:
		return "rate_limit_error";
	case 500:
	case 503:
		return "server_error";
	default:
		return "invalid_request_error";
	}
}

/* OpenAI's error object. */
static json_t *err_json(int status, const char *msg, const char *param, const char *code)
{
	return json_pack("{s:{s:s, s:s, s:s?, s:s?}}", "error", "message", msg, "type",
			 err_type(status), "param", param, "code", code);
}

static enum MHD_Result send_err(struct serve *s, struct MHD_Connection *c, int endpoint, int status,
				const char *msg, const char *param, const char *code)
{
	return send_json(s, c, endpoint, status, err_json(status, msg, param, code), status == 429);
}

/* "Authorization: Bearer KEY", compared in time independent of where it differs. */
static int auth_ok(const struct serve *s, struct MHD_Connection *c)
{
	if (!s->o.api_key)
		return 1;
	const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
	const char *k = s->o.api_key;
	if (!h || strncmp(h, "Bearer ", 7))
		return 0;
	h += 7;
	size_t hl = strlen(h), kl = strlen(k);
	unsigned char d = (unsigned char)(hl != kl);
	for (size_t i = 0; i < kl; i++)
		d |= (unsigned char)(k[i] ^ (i < hl ? h[i] : 0));
	return d == 0;
}

/* The peer closed its end (a client that left). */
static int peer_gone(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
	if (!ci)
		return 0;
	struct pollfd p = {.fd = ci->connect_fd, .events = POLLRDHUP};
	if (poll(&p, 1, 0) <= 0)
		return 0;
	if (p.revents & (POLLRDHUP | POLLHUP | POLLERR))
		return 1;
	char b;
	return recv(ci->connect_fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
}

static json_t *usage_json(const struct sreq *r)
{
	return json_pack("{s:i, s:i, s:i}", "prompt_tokens", r->n_ids, "completion_tokens",
			 r->n_gen, "total_tokens", r->n_ids + r->n_gen);
}

/* A whole (non-streamed) answer. mu held. */
static json_t *answer_json(const struct serve *s, const struct sreq *r)
{
	json_t *text = json_stringn(r->out ? r->out : "", r->out_len);
	json_t *choice;
	if (r->p.kind == SERVE_CHAT)
		choice =
		    json_pack("{s:i, s:{s:s, s:o}, s:s, s:n}", "index", 0, "message", "role",
			      "assistant", "content", text, "finish_reason", r->finish, "logprobs");
	else
		choice = json_pack("{s:i, s:o, s:s, s:n}", "index", 0, "text", text,
				   "finish_reason", r->finish, "logprobs");
	return json_pack("{s:s, s:s, s:I, s:s, s:[o], s:o}", "id", r->id, "object",
			 r->p.kind == SERVE_CHAT ? "chat.completion" : "text_completion", "created",
			 (json_int_t)r->created, "model", s->o.name, "choices", choice, "usage",
			 usage_json(r));
}

/* A streamed answer: the SSE events of one request. */
struct stream {
	struct serve *s;
	struct sreq *r;
	struct MHD_Connection *c;
	size_t sent;   /* bytes of r->out already in events */
	double t_last; /* when the last event was made */
	int phase;     /* 0 role chunk (chat), 1 text, 2 final chunk, 3 usage, 4 [DONE], 5 end */
	char *pend;    /* an event not yet handed to MHD */
	size_t pend_len, pend_off;
};

static int stream_event(struct stream *st, json_t *j)
{
	st->t_last = now_s();
	uint64_t tp = prof_g ? prof_now() : 0;
	char *body = j ? json_dumps(j, JSON_COMPACT) : NULL;
	if (prof_g)
		prof_span("http: SSE event", "http", tp, prof_now());
	json_decref(j);
	if (!body)
		return -ENOMEM;
	size_t n = strlen(body);
	free(st->pend);
	st->pend = malloc(n + 9);
	if (!st->pend) {
		free(body);
		return -ENOMEM;
	}
	memcpy(st->pend, "data: ", 6);
	memcpy(st->pend + 6, body, n);
	memcpy(st->pend + 6 + n, "\n\n", 3);
	st->pend_len = n + 8;
	st->pend_off = 0;
	free(body);
	return 0;
}

static void stream_raw(struct stream *st, const char *txt)
{
	free(st->pend);
	st->pend = strdup(txt);
	st->pend_len = st->pend ? strlen(txt) : 0;
	st->pend_off = 0;
}

/* One chunk: text (or NULL), the finish reason (or NULL), the chat role chunk. mu held. */
static json_t *chunk_json(const struct stream *st, const char *text, size_t n, const char *finish,
			  int role)
{
	const struct sreq *r = st->r;
	json_t *choice;
	json_t *fin = finish ? json_string(finish) : json_null();
	if (r->p.kind == SERVE_CHAT) {
		json_t *delta = role   ? json_pack("{s:s, s:s}", "role", "assistant", "content", "")
				: text ? json_pack("{s:o}", "content", json_stringn(text, n))
				       : json_object();
		choice = json_pack("{s:i, s:o, s:o, s:n}", "index", 0, "delta", delta,
				   "finish_reason", fin, "logprobs");
	} else {
		choice = json_pack("{s:i, s:o, s:o, s:n}", "index", 0, "text",
				   json_stringn(text ? text : "", text ? n : 0), "finish_reason",
				   fin, "logprobs");
	}
	return json_pack("{s:s, s:s, s:I, s:s, s:[o]}", "id", r->id, "object",
			 r->p.kind == SERVE_CHAT ? "chat.completion.chunk" : "text_completion",
			 "created", (json_int_t)r->created, "model", st->s->o.name, "choices",
			 choice);
}

/* Makes the next event (mu held). 0, 1 nothing yet (waited), -1 the stream must end. */
static int stream_next(struct stream *st)
{
	struct serve *s = st->s;
	struct sreq *r = st->r;
	if (st->phase == 0) {
		st->phase = 1;
		if (r->p.kind == SERVE_CHAT)
			return stream_event(st, chunk_json(st, NULL, 0, NULL, 1)) ? -1 : 0;
	}
	if (st->phase == 1) {
		if (r->out_len > st->sent) {
			int rc = stream_event(
			    st, chunk_json(st, r->out + st->sent, r->out_len - st->sent, NULL, 0));
			st->sent = r->out_len;
			return rc ? -1 : 0;
		}
		if (!r->done) {
			/* out_cv wakes on every token of every request: a client whose request
			 * waits (queued, or in a long prefill) gets a comment every second by the
			 * clock, so neither it nor the idle timeout takes the silence for a hang */
			if (now_s() - st->t_last >= 1.0) {
				if (peer_gone(st->c))
					return -1;
				st->t_last = now_s();
				stream_raw(st, ": keep-alive\n\n"); /* an SSE comment */
				return 0;
			}
			out_wait(s, 250);
			return 1;
		}
		st->phase = 2;
		if (r->err_status) {
			st->phase = 4;
			return stream_event(st, err_json(r->err_status, r->err_msg, NULL, NULL))
				   ? -1
				   : 0;
		}
	}
	if (st->phase == 2) {
		st->phase = r->p.include_usage ? 3 : 4;
		return stream_event(st, chunk_json(st, NULL, 0, r->finish, 0)) ? -1 : 0;
	}
	if (st->phase == 3) {
		st->phase = 4;
		json_t *j =
		    json_pack("{s:s, s:s, s:I, s:s, s:[], s:o}", "id", r->id, "object",
			      r->p.kind == SERVE_CHAT ? "chat.completion.chunk" : "text_completion",
			      "created", (json_int_t)r->created, "model", s->o.name, "choices",
			      "usage", usage_json(r));
		return stream_event(st, j) ? -1 : 0;
	}
	if (st->phase == 4) {
		st->phase = 5;
		stream_raw(st, "data: [DONE]\n\n");
		return 0;
	}
	return -1;
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	(void)pos;
	struct stream *st = cls;
	struct serve *s = st->s;
	pthread_mutex_lock(&s->mu);
	while (st->pend_off >= st->pend_len) {
		if (st->phase == 5) {
			pthread_mutex_unlock(&s->mu);
			return MHD_CONTENT_READER_END_OF_STREAM;
		}
		int rc = stream_next(st);
		if (rc < 0) {
			st->r->cancelled |= !st->r->done;
			pthread_cond_broadcast(&s->work_cv);
			pthread_mutex_unlock(&s->mu);
			return MHD_CONTENT_READER_END_WITH_ERROR;
		}
	}
	size_t n = st->pend_len - st->pend_off;
	if (n > max)
		n = max;
	memcpy(buf, st->pend + st->pend_off, n);
	st->pend_off += n;
	pthread_mutex_unlock(&s->mu);
	return (ssize_t)n;
}

static void stream_free(void *cls)
{
	struct stream *st = cls;
	struct serve *s = st->s;
	pthread_mutex_lock(&s->mu);
	if (!st->r->done)
		st->r->cancelled = 1; /* the connection ended first: the client left */
	req_unref(s, st->r);
	pthread_mutex_unlock(&s->mu);
	free(st->pend);
	free(st);
}

/* Tokenizes the request's prompt. 0, or an HTTP status with the error sent. */
static enum MHD_Result gen_request(struct serve *s, struct MHD_Connection *c, struct conn *cn,
				   enum serve_kind kind)
{
	int ep = cn->endpoint;
	if (!s->ready || s->draining)
		return send_err(s, c, ep, 503,
				s->draining ? "the server is shutting down"
					    : "the model is still loading",
				NULL, NULL);
	struct sreq *r = calloc(1, sizeof *r);
	if (!r)
		return send_err(s, c, ep, 500, "out of memory", NULL, NULL);
	r->t_arrive = now_s();
	uint64_t tp = prof_g ? prof_now() : 0;
	int rc = serve_params_parse(cn->body ? cn->body : "", cn->len, kind, &r->p);
	if (prof_g)
		prof_span("http: parse request", "http", tp, prof_now());
	if (rc) {
		enum MHD_Result res = rc == -ENOMEM
					  ? send_err(s, c, ep, 500, "out of memory", NULL, NULL)
					  : send_err(s, c, ep, 400, r->p.err, r->p.err_param, NULL);
		free(r);
		return res;
	}
	r->refs = 1;
	enum MHD_Result res;
	if (r->p.model && strcmp(r->p.model, s->o.name)) {
		char msg[256];
		snprintf(msg, sizeof msg,
			 "the model '%.80s' does not exist: this server has '%.80s'", r->p.model,
			 s->o.name);
		res = send_err(s, c, ep, 404, msg, "model", "model_not_found");
		goto out;
	}
	size_t n_ids = 0;
	pthread_mutex_lock(&s->tok_mu);
	if (kind == SERVE_CHAT)
		rc = chat_template_encode(s->tok, r->p.msgs, r->p.n_msgs, 1,
					  CHAT_TEMPLATE_LITERAL_CONTENT, &r->ids, &n_ids);
	else
		rc = tokenizer_encode(s->tok, r->p.prompt, strlen(r->p.prompt),
				      TOKENIZER_ENC_ADD_SPECIAL, &r->ids, &n_ids);
	pthread_mutex_unlock(&s->tok_mu);
	const char *pp = kind == SERVE_CHAT ? "messages" : "prompt";
	if (rc) {
		res = send_err(s, c, ep, 400, "the prompt could not be tokenized", pp, NULL);
		goto out;
	}
	int ctx = s->slots[0].e->max_seq;
	char msg[200];
	if (n_ids < 1 || (long)n_ids >= ctx) {
		snprintf(msg, sizeof msg,
			 "the prompt has %zu tokens; this server's context is %d tokens", n_ids,
			 ctx);
		res = send_err(s, c, ep, 400, msg, pp, "context_length_exceeded");
		goto out;
	}
	r->n_ids = (int)n_ids;
	int room = ctx - r->n_ids;
	if (r->p.max_tokens > s->o.max_tokens || r->p.max_tokens > room) {
		snprintf(msg, sizeof msg,
			 "max_tokens %d: at most %d (server limit %d, context %d minus %d prompt "
			 "tokens)",
			 r->p.max_tokens, room < s->o.max_tokens ? room : s->o.max_tokens,
			 s->o.max_tokens, ctx, r->n_ids);
		res = send_err(s, c, ep, 400, msg, "max_tokens", "context_length_exceeded");
		goto out;
	}
	r->max_new = r->p.max_tokens > 0	? r->p.max_tokens
		     : kind == SERVE_COMPLETION ? 16 /* OpenAI's default for completions */
						: s->o.max_tokens;
	if (r->max_new > room)
		r->max_new = room;
	r->created = (long long)time(NULL);
	pthread_mutex_lock(&s->mu);
	if (s->q_len >= s->o.max_queue) {
		pthread_mutex_unlock(&s->mu);
		res = send_err(s, c, ep, 429, "the queue is full: retry later", NULL, "queue_full");
		goto out;
	}
	snprintf(r->id, sizeof r->id, "%s-%llu", kind == SERVE_CHAT ? "chatcmpl" : "cmpl",
		 ++s->next_id);
	r->refs = 2; /* this connection and the scheduler */
	cn->gen = 1;
	s->inflight++;
	if (s->q_tail)
		s->q_tail->next = r;
	else
		s->q_head = r;
	s->q_tail = r;
	s->q_len++;
	pthread_mutex_lock(&s->m.mu);
	s->m.queue_depth = s->q_len;
	pthread_mutex_unlock(&s->m.mu);
	pthread_cond_broadcast(&s->work_cv);
	if (r->p.stream) {
		pthread_mutex_unlock(&s->mu);
		struct stream *st = calloc(1, sizeof *st);
		struct MHD_Response *rsp =
		    st ? MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, stream_read, st,
							   stream_free)
		       : NULL;
		if (!rsp) {
			free(st);
			pthread_mutex_lock(&s->mu);
			r->cancelled = 1;
			req_unref(s, r);
			pthread_mutex_unlock(&s->mu);
			return MHD_NO;
		}
		st->s = s;
		st->r = r;
		st->c = c;
		st->t_last = now_s();
		MHD_add_response_header(rsp, "Content-Type", "text/event-stream");
		MHD_add_response_header(rsp, "Cache-Control", "no-cache");
		res = MHD_queue_response(c, 200, rsp);
		MHD_destroy_response(rsp);
		serve_metrics_request(&s->m, ep, 200);
		return res; /* stream_free drops the connection's reference */
	}
	/* not streamed: wait for the end, looking every 200 ms for a client that left (out_cv
	 * wakes on every token of every request, so the look goes by the clock) */
	double look = now_s() + 0.2;
	while (!r->done) {
		out_wait(s, 200);
		if (r->done || now_s() < look)
			continue;
		look = now_s() + 0.2;
		if (peer_gone(c)) {
			r->cancelled = 1;
			pthread_cond_broadcast(&s->work_cv);
			req_unref(s, r);
			pthread_mutex_unlock(&s->mu);
			return MHD_NO;
		}
	}
	if (r->err_status) {
		int st = r->err_status == 499 ? 503 : r->err_status;
		json_t *j = err_json(st, r->err_msg, NULL, NULL);
		req_unref(s, r);
		pthread_mutex_unlock(&s->mu);
		return send_json(s, c, ep, st, j, 0);
	}
	json_t *j = answer_json(s, r);
	req_unref(s, r);
	pthread_mutex_unlock(&s->mu);
	return send_json(s, c, ep, 200, j, 0);
out:
	pthread_mutex_lock(&s->mu);
	req_unref(s, r);
	pthread_mutex_unlock(&s->mu);
	return res;
}

static int endpoint_of(const char *url)
{
	if (!strcmp(url, "/v1/chat/completions"))
		return SERVE_EP_CHAT;
	if (!strcmp(url, "/v1/completions"))
		return SERVE_EP_COMPLETIONS;
	if (!strcmp(url, "/v1/models"))
		return SERVE_EP_MODELS;
	if (!strcmp(url, "/health"))
		return SERVE_EP_HEALTH;
	if (!strcmp(url, "/metrics"))
		return SERVE_EP_METRICS;
	return SERVE_EP_OTHER;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version, const char *upload,
				  size_t *upload_size, void **con_cls)
{
	(void)version;
	struct serve *s = cls;
	struct conn *cn = *con_cls;
	if (!cn) {
		if (!(cn = calloc(1, sizeof *cn)))
			return MHD_NO;
		cn->endpoint = endpoint_of(url);
		*con_cls = cn;
		if (prof_g) { /* one thread per connection: its own track */
			prof_thread_name("http: connection");
			cn->t0 = prof_now();
		}
		return MHD_YES;
	}
	if (*upload_size) {
		if (cn->len + *upload_size > s->o.max_body)
			cn->too_big = 1;
		if (!cn->too_big && buf_append(&cn->body, &cn->len, &cn->cap, upload, *upload_size))
			return MHD_NO;
		*upload_size = 0;
		return MHD_YES;
	}
	int ep = cn->endpoint, get = !strcmp(method, "GET"), post = !strcmp(method, "POST");
	if (cn->too_big) {
		char msg[96];
		snprintf(msg, sizeof msg, "the request body is larger than %zu bytes",
			 s->o.max_body);
		return send_err(s, c, ep, 413, msg, NULL, NULL);
	}
	if (ep == SERVE_EP_HEALTH && get) {
		int ok = s->ready && !s->draining;
		return send_json(s, c, ep, ok ? 200 : 503,
				 json_pack("{s:s}", "status",
					   ok		 ? "ok"
					   : s->draining ? "draining"
							 : "loading"),
				 0);
	}
	if (ep == SERVE_EP_METRICS && get) {
		char *t = serve_metrics_render(&s->m, s->o.backend, s->o.name);
		if (!t)
			return MHD_NO;
		return send_buf(s, c, ep, 200, "text/plain; version=0.0.4", t, 0);
	}
	if (ep == SERVE_EP_OTHER)
		return send_err(s, c, ep, 404, "no such endpoint", NULL, NULL);
	if (ep == SERVE_EP_MODELS ? !get : !post)
		return send_err(s, c, ep, 405, "method not allowed", NULL, NULL);
	if (!auth_ok(s, c))
		return send_err(s, c, ep, 401,
				"a valid API key is required (Authorization: Bearer)", NULL,
				"invalid_api_key");
	if (ep == SERVE_EP_MODELS)
		return send_json(s, c, ep, 200,
				 json_pack("{s:s, s:[{s:s, s:s, s:I, s:s}]}", "object", "list",
					   "data", "id", s->o.name, "object", "model", "created",
					   (json_int_t)0, "owned_by", "moecard"),
				 0);
	return gen_request(s, c, cn, ep == SERVE_EP_CHAT ? SERVE_CHAT : SERVE_COMPLETION);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	(void)c;
	(void)toe;
	struct serve *s = cls;
	struct conn *cn = *con_cls;
	if (cn && prof_g && cn->t0)
		prof_span("http: request", "http", cn->t0, prof_now());
	if (cn && cn->gen) {
		pthread_mutex_lock(&s->mu);
		s->inflight--;
		pthread_mutex_unlock(&s->mu);
	}
	if (cn) {
		free(cn->body);
		free(cn);
	}
	*con_cls = NULL;
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_ctx,
			  enum MHD_ConnectionNotificationCode toe)
{
	(void)c;
	(void)socket_ctx;
	struct serve *s = cls;
	pthread_mutex_lock(&s->m.mu);
	s->m.connections += toe == MHD_CONNECTION_NOTIFY_STARTED ? 1 : -1;
	pthread_mutex_unlock(&s->m.mu);
}

/* --- life cycle ------------------------------------------------------------------------- */

int serve_start(const struct serve_opts *o, struct serve **out, char *err, size_t errlen)
{
	struct serve *s = calloc(1, sizeof *s);
	if (!s)
		return errmsg_fail(err, errlen, -ENOMEM, "out of memory");
	s->o = *o;
	pthread_mutex_init(&s->mu, NULL);
	pthread_mutex_init(&s->tok_mu, NULL);
	pthread_cond_init(&s->out_cv, NULL);
	pthread_cond_init(&s->work_cv, NULL);
	serve_metrics_init(&s->m, 0);
	struct sockaddr_in sa;
	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)o->port);
	if (inet_pton(AF_INET, o->host, &sa.sin_addr) != 1) {
		snprintf(err, errlen, "--host: '%s' is not an IPv4 address", o->host);
		serve_free(s);
		return -EINVAL;
	}
	s->d = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
				    MHD_USE_ITC | MHD_USE_ERROR_LOG,
				0, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR,
				(struct sockaddr *)&sa, MHD_OPTION_CONNECTION_LIMIT,
				(unsigned)o->max_conns, MHD_OPTION_CONNECTION_TIMEOUT,
				(unsigned)o->timeout_s, MHD_OPTION_NOTIFY_COMPLETED, on_completed,
				s, MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
				MHD_OPTION_LISTENING_ADDRESS_REUSE, 1, MHD_OPTION_END);
	if (!s->d) {
		snprintf(err, errlen, "cannot listen on %s:%d (in use, or not allowed)", o->host,
			 o->port);
		serve_free(s);
		return -EADDRINUSE;
	}
	const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
	s->port = di ? di->port : o->port;
	fprintf(stderr, "moecard: serve: listening on http://%s:%d\n", o->host, s->port);
	fflush(stderr);
	*out = s;
	return 0;
}

static cookie_io_functions_t slot_io = {.write = slot_write};

/* The self-test of an engine: one forward of one token, every logit finite. */
static int self_test(struct engine *e, int tok)
{
	float *lg = malloc(sizeof(float) * (size_t)e->c->vocab_size);
	int rc = lg ? engine_forward(e, &tok, 1, lg, 0, NULL) : -ENOMEM;
	for (int v = 0; !rc && v < e->c->vocab_size; v++)
		if (!isfinite(lg[v]))
			rc = -EIO;
	free(lg);
	engine_truncate(e, 0, 0);
	return rc;
}

int serve_attach(struct serve *s, struct engine *const *engines, int n_engines, int n_slots,
		 struct tokenizer *tok, int eos, int max_tokens, char *err, size_t errlen)
{
	s->o.max_tokens = max_tokens;
	s->rows =
	    n_engines == 1 && engines[0]->ops->forward_rows && engines[0]->ops->kv_block_floats;
	s->seqs = !s->rows && n_engines == 1 && engines[0]->ops->forward_seqs &&
		  engines[0]->max_seqs >= n_slots;
	s->rows |= s->seqs;
	if (!s->rows)
		n_slots = n_engines;
	if (n_slots < 1 || n_slots > SERVE_MAX_SLOTS) {
		return errmsg_fail(err, errlen, -EINVAL, "%d sequence slots: expected 1..%d",
				   n_slots, SERVE_MAX_SLOTS);
	}
	s->slots = calloc((size_t)n_slots, sizeof *s->slots);
	if (!s->slots)
		return errmsg_fail(err, errlen, -ENOMEM, "out of memory");
	s->tok = tok;
	s->eos = eos;
	int t0 = tokenizer_bos_id(tok) >= 0 ? tokenizer_bos_id(tok) : 0, rc;
	for (int i = 0; i < n_engines; i++)
		if ((rc = self_test(engines[i], t0))) {
			return errmsg_fail(err, errlen, rc, "self-test of engine %d: %s", i,
					   strerror(-rc));
		}
	size_t V = (size_t)engines[0]->c->vocab_size;
	int ctx = engines[0]->max_seq;
	if (s->seqs) { /* the engine's caches: a full context per slot, one block each */
		s->bs = ctx;
		s->n_blocks = s->n_free = n_slots;
	} else if (s->rows) {
		/* the KV pool: --kv-tokens (default a full context per slot), in blocks of 16 */
		s->bs = 16;
		long tokens = s->o.kv_tokens > 0 ? s->o.kv_tokens : (long)n_slots * ctx;
		if (tokens < ctx)
			tokens = ctx; /* any one request fits */
		s->n_blocks = (int)((tokens + s->bs - 1) / s->bs);
		size_t bf = s->block_floats = engines[0]->ops->kv_block_floats(engines[0], s->bs);
		s->pool = calloc((size_t)s->n_blocks * bf, sizeof(float));
		s->free_blk = malloc(sizeof(int) * (size_t)s->n_blocks);
		if (!s->pool || !s->free_blk)
			return errmsg_fail(err, errlen, -ENOMEM,
					   "out of memory for a KV pool of %d blocks (%.0f MB)",
					   s->n_blocks, (double)s->n_blocks * bf * 4 / 1e6);
		for (int b = 0; b < s->n_blocks; b++)
			s->free_blk[b] = s->n_blocks - 1 - b;
		s->n_free = s->n_blocks;
	}
	if (s->rows && (gen_dist_alloc(&s->dist, (int)V) || !(s->w = malloc(sizeof(float) * V)) ||
			!(s->cand = malloc(sizeof(int) * V)) ||
			!(s->rows_lg = malloc(sizeof(float) * V * SERVE_DECODE_ROWS))))
		return errmsg_fail(err, errlen, -ENOMEM, "out of memory");
	for (int i = 0; i < n_slots; i++) {
		struct slot *sl = &s->slots[i];
		sl->s = s;
		sl->e = engines[s->rows ? 0 : i];
		s->n_slots = i + 1;
		if (s->rows) {
			int nb = (ctx + s->bs - 1) / s->bs;
			sl->blocks = calloc((size_t)nb, sizeof *sl->blocks);
			sl->kv = (struct model_kv){sl->blocks, nb, s->bs};
			sl->hist = malloc(sizeof(int) * (size_t)sl->e->max_seq);
			sl->lg = malloc(sizeof(float) * V);
			rc = sl->blocks && sl->hist && sl->lg ? 0 : -ENOMEM;
		} else {
			struct gen_opts go = {0};
			gen_sampling_default(&go.s);
			rc = gen_init(&sl->g, sl->e, &go, sl->e->max_seq);
		}
		if (!rc)
			rc = gen_text_init(&sl->tx, tok, NULL, 0);
		if (!rc && !(sl->f = fopencookie(sl, "w", slot_io)))
			rc = -ENOMEM;
		if (rc) {
			return errmsg_fail(err, errlen, rc, "slot %d: %s", i, strerror(-rc));
		}
		setvbuf(sl->f, NULL, _IONBF, 0);
	}
	pthread_mutex_lock(&s->m.mu);
	s->m.kv_slots = n_slots;
	s->m.kv_blocks = s->n_blocks;
	pthread_mutex_unlock(&s->m.mu);
	if (pthread_create(&s->sched, NULL, sched_main, s)) {
		return errmsg_fail(err, errlen, -EAGAIN, "cannot start the scheduler thread");
	}
	s->sched_on = 1;
	s->ready = 1;
	fprintf(stderr,
		"moecard: serve: ready: model %s, %d sequence slot%s of %d tokens (%s), on %s\n",
		s->o.name, n_slots, n_slots == 1 ? "" : "s", engines[0]->max_seq,
		s->seqs
		    ? "decoded together on the card, a latent cache each, one weight read per step"
		: s->rows ? "decoded together, one weight read per step"
			  : "an engine each",
		s->o.backend);
	fflush(stderr);
	return 0;
}

/* Cancels every request (mu held): queued ones end with 503, running ones at their next step. */
static void cancel_all(struct serve *s)
{
	while (s->q_head) {
		struct sreq *r = s->q_head;
		s->q_head = r->next;
		r->cancelled = 1;
		r->done = 1;
		r->err_status = 503;
		snprintf(r->err_msg, sizeof r->err_msg, "the server shut down");
		req_unref(s, r);
	}
	s->q_tail = NULL;
	s->q_len = 0;
	for (int i = 0; i < s->n_slots; i++)
		if (s->slots[i].r)
			s->slots[i].r->cancelled = 1;
	pthread_cond_broadcast(&s->out_cv);
	pthread_cond_broadcast(&s->work_cv);
}

static int idle(struct serve *s)
{
	int busy = s->q_len + s->inflight;
	for (int i = 0; i < s->n_slots; i++)
		busy += s->slots[i].r != NULL;
	return !busy;
}

/* Waits (mu held) at most `seconds` for idle(s); 1 when it got there. */
static int wait_idle(struct serve *s, double seconds)
{
	double end = now_s() + seconds;
	while (!idle(s) && now_s() < end) {
		pthread_mutex_unlock(&s->mu);
		usleep(20000);
		pthread_mutex_lock(&s->mu);
	}
	return idle(s);
}

int serve_wait(struct serve *s)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	int sig = 0;
	sigwait(&set, &sig);
	fprintf(stderr, "moecard: serve: %s: draining (at most %d s)\n",
		sig == SIGTERM ? "SIGTERM" : "SIGINT", s->o.drain_s);
	pthread_mutex_lock(&s->mu);
	s->draining = 1;
	pthread_mutex_unlock(&s->mu);
	MHD_socket ls = MHD_quiesce_daemon(s->d); /* no new connections */
	if (ls != MHD_INVALID_SOCKET)
		close(ls);
	pthread_mutex_lock(&s->mu);
	int left = !wait_idle(s, s->o.drain_s);
	if (left) {
		cancel_all(s);
		/* the cancelled answers (503) reach their clients before the daemon stops */
		wait_idle(s, 2);
	}
	pthread_mutex_unlock(&s->mu);
	if (left)
		fprintf(stderr, "moecard: serve: cancelled what was still running\n");
	serve_free(s);
	fprintf(stderr, "moecard: serve: stopped\n");
	return 0;
}

void serve_free(struct serve *s)
{
	if (!s)
		return;
	if (s->sched_on) {
		pthread_mutex_lock(&s->mu);
		cancel_all(s);
		s->stopping = 1;
		pthread_cond_broadcast(&s->work_cv);
		pthread_mutex_unlock(&s->mu);
		pthread_join(s->sched, NULL);
	}
	if (s->d)
		MHD_stop_daemon(s->d);
	for (int i = 0; i < s->n_slots; i++) {
		struct slot *sl = &s->slots[i];
		if (sl->f)
			fclose(sl->f);
		gen_text_free(&sl->tx);
		if (!s->rows)
			gen_free(&sl->g);
		free(sl->blocks);
		free(sl->hist);
		free(sl->lg);
	}
	free(s->slots);
	gen_dist_release(&s->dist);
	free(s->w);
	free(s->cand);
	free(s->rows_lg);
	free(s->pool);
	free(s->free_blk);
	serve_metrics_destroy(&s->m);
	pthread_cond_destroy(&s->out_cv);
	pthread_cond_destroy(&s->work_cv);
	pthread_mutex_destroy(&s->mu);
	pthread_mutex_destroy(&s->tok_mu);
	free(s);
}
