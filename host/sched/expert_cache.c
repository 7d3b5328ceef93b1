/*
 * expert_cache.c - expert slots (layout, DMA scatter-gather, host view), the
 * replacement policies, and the modeled replay of routing traces (expert_cache.h).
 * Data flow: router choice -> lookup -> hit | fill (DMA) | host execution -> slot for the GEMM.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "sched/expert_cache.h"

/* ---- 1. slot layout and placement -------------------------------------------------------- */

static uint64_t align_up(uint64_t x, uint64_t a)
{
	return (x + a - 1) / a * a;
}

int expert_slot_layout_init(const struct config *c, struct expert_slot_layout *l)
{
	memset(l, 0, sizeof *l);
	if (c->hidden_size <= 0 || c->moe_intermediate_size <= 0)
		return -EINVAL;
	uint64_t D = c->hidden_size, I = c->moe_intermediate_size;
	uint64_t sIg = ((I + 127) / 128) * ((D + 127) / 128) * 4;
	l->len[0] = I * D;
	l->len[1] = I * D;
	l->len[2] = D * I;
	l->len[3] = sIg;
	l->len[4] = sIg;
	l->len[5] = sIg;
	/* gate|up codes back to back and gate|up scales back to back: the operand pair of
	 * fp8_gemm's FP8_GEMM_SILU_MUL (w2 = w + rows * cols, ws2 = ws + scale entries) */
	uint64_t off = 0;
	for (int p = 0; p < EXPERT_SLOT_PARTS; p++) {
		l->off[p] = off;
		off += l->len[p];
		if (p != 0 && p != 3)
			off = align_up(off, EXPERT_SLOT_ALIGN);
		l->payload += l->len[p];
	}
	l->bytes = align_up(off, EXPERT_SLOT_PAGE);
	return 0;
}

static int qmat_matches(const struct qmat *q, uint64_t codes, uint64_t scales)
{
	return q->fmt == QMAT_FP8 && q->w && q->scale &&
	       (uint64_t)q->rows * (uint64_t)q->cols == codes &&
	       (uint64_t)((q->rows + 127) / 128) * (uint64_t)q->scale_cols * 4 == scales;
}

int expert_slot_sg(const struct ffn_weights *f, const struct expert_slot_layout *l, uint32_t bank,
		   uint64_t card_off, struct dma_sg *sg)
{
	const struct qmat *q[3] = {&f->gate, &f->up, &f->down};
	for (int i = 0; i < 3; i++)
		if (!qmat_matches(q[i], l->len[i], l->len[3 + i]))
			return -EINVAL;
	for (int p = 0; p < EXPERT_SLOT_PARTS; p++) {
		const struct qmat *m = q[p % 3];
		sg[p] = (struct dma_sg){.host = (void *)(p < 3 ? m->w : (const void *)m->scale),
					.bank = bank,
					.card_off = card_off + l->off[p],
					.len = (size_t)l->len[p]};
	}
	return EXPERT_SLOT_PARTS;
}

int expert_slot_view(const struct expert_slot_layout *l, const void *base,
		     const struct ffn_weights *like, struct ffn_weights *out)
{
	const struct qmat *q[3] = {&like->gate, &like->up, &like->down};
	struct qmat *o[3] = {&out->gate, &out->up, &out->down};
	if (!base)
		return -EINVAL;
	for (int i = 0; i < 3; i++) {
		if (!qmat_matches(q[i], l->len[i], l->len[3 + i]))
			return -EINVAL;
		*o[i] = *q[i];
		o[i]->w = (const uint8_t *)base + l->off[i];
		o[i]->scale = (const float *)(const void *)((const uint8_t *)base + l->off[3 + i]);
	}
	return 0;
}

/* ---- 2. the cache ------------------------------------------------------------------------ */

const char *expert_policy_name(enum expert_policy p)
{
	static const char *n[] = {"lru", "lfu", "pin", "belady"};
	return (unsigned)p < EXPERT_POLICY_N ? n[p] : "?";
}

int expert_cache_init(struct expert_cache *c, int n_layers, int n_experts, int n_slots,
		      enum expert_policy policy)
{
	memset(c, 0, sizeof *c);
	if (n_layers < 1 || n_experts < 1 || n_slots < 1 || (unsigned)policy >= EXPERT_POLICY_N ||
	    (int64_t)n_layers * n_experts > INT32_MAX)
		return -EINVAL;
	c->n_keys = n_layers * n_experts;
	c->n_experts = n_experts;
	c->n_slots = n_slots;
	c->policy = policy;
	c->slot_key = malloc(sizeof(int32_t) * (size_t)n_slots);
	c->key_slot = malloc(sizeof(int32_t) * (size_t)c->n_keys);
	c->stamp = calloc((size_t)n_slots, sizeof(uint64_t));
	c->next = calloc((size_t)n_slots, sizeof(uint64_t));
	c->count = calloc((size_t)c->n_keys, sizeof(uint64_t));
	c->flags = calloc((size_t)n_slots, 1);
	c->locked = malloc(sizeof(int32_t) * (size_t)n_slots);
	if (!c->slot_key || !c->key_slot || !c->stamp || !c->next || !c->count || !c->flags ||
	    !c->locked) {
		expert_cache_free(c);
		return -ENOMEM;
	}
	for (int s = 0; s < n_slots; s++)
		c->slot_key[s] = -1;
	for (int k = 0; k < c->n_keys; k++)
		c->key_slot[k] = -1;
	c->ev_pos = -1;
	return 0;
}

/* Also on a cache freed before (a failed init): its memset left only NULLs to free. */
void expert_cache_free(struct expert_cache *c)
{
	free(c->slot_key); // NOLINT(clang-analyzer-unix.Malloc): NULL after a free (memset below)
	free(c->key_slot); // NOLINT(clang-analyzer-unix.Malloc): NULL after a free (memset below)
	free(c->stamp);
	free(c->next);
	free(c->count);
	free(c->flags);
	free(c->locked);
	memset(c, 0, sizeof *c);
}

void expert_cache_event(struct expert_cache *c, enum expert_event ev, int layer, int e)
{
	static const char *n[] = {"hit",	   "miss_dma",	      "miss_host", "prefetch",
				  "prefetch_used", "prefetch_wasted", "evict",	   "pin"};
	if (c->events)
		fprintf(c->events, "{\"pos\":%lld,\"layer\":%d,\"expert\":%d,\"ev\":\"%s\"}\n",
			(long long)c->ev_pos, layer, e, n[ev]);
}

static int key_of(const struct expert_cache *c, int layer, int e)
{
	int64_t k = (int64_t)layer * c->n_experts + e;
	return e >= 0 && e < c->n_experts && k >= 0 && k < c->n_keys ? (int)k : -1;
}

int expert_cache_lookup(const struct expert_cache *c, int layer, int e)
{
	int k = key_of(c, layer, e);
	return k < 0 ? -1 : c->key_slot[k];
}

static void lock_slot(struct expert_cache *c, int s)
{
	if (!(c->flags[s] & EXPERT_SLOT_LOCKED)) {
		c->flags[s] |= EXPERT_SLOT_LOCKED;
		c->locked[c->n_locked++] = s;
	}
}

int expert_cache_access(struct expert_cache *c, int layer, int e, uint64_t next_use)
{
	int k = key_of(c, layer, e);
	if (k < 0)
		return -1;
	c->st.accesses++;
	c->count[k]++;
	int s = c->key_slot[k];
	if (s < 0)
		return -1;
	c->st.hits++;
	c->stamp[s] = ++c->clock;
	c->next[s] = next_use;
	if (c->flags[s] & EXPERT_SLOT_PREFETCH) {
		c->flags[s] &= (uint8_t)~EXPERT_SLOT_PREFETCH;
		c->st.prefetch_used++;
		expert_cache_event(c, EXPERT_EV_PREFETCH_USED, layer, e);
	}
	expert_cache_event(c, EXPERT_EV_HIT, layer, e);
	lock_slot(c, s);
	return s;
}

/* The policy's victim among unpinned, unlocked slots (an empty one first), or -1. */
int expert_cache_victim(const struct expert_cache *c)
{
	int best = -1;
	for (int s = 0; s < c->n_slots; s++) {
		if (c->flags[s] & (EXPERT_SLOT_PINNED | EXPERT_SLOT_LOCKED | EXPERT_SLOT_INFLIGHT))
			continue;
		if (c->slot_key[s] < 0)
			return s;
		if (best < 0) {
			best = s;
			continue;
		}
		int better;
		switch (c->policy) {
		case EXPERT_POLICY_LFU: {
			uint64_t a = c->count[c->slot_key[s]], b = c->count[c->slot_key[best]];
			better = a < b || (a == b && c->stamp[s] < c->stamp[best]);
			break;
		}
		case EXPERT_POLICY_BELADY:
			better = c->next[s] > c->next[best] ||
				 (c->next[s] == c->next[best] && c->stamp[s] < c->stamp[best]);
			break;
		default:
			better = c->stamp[s] < c->stamp[best];
		}
		if (better)
			best = s;
	}
	return best;
}

int expert_cache_fill(struct expert_cache *c, int layer, int e, uint64_t next_use, int prefetch,
		      int *victim)
{
	int k = key_of(c, layer, e);
	if (victim)
		*victim = -1;
	if (k < 0)
		return -EINVAL;
	if (c->key_slot[k] >= 0)
		return c->key_slot[k];
	int s = expert_cache_victim(c);
	if (s < 0)
		return -ENOSPC;
	int old = c->slot_key[s];
	if (old >= 0) {
		c->key_slot[old] = -1;
		c->st.evictions++;
		if (c->flags[s] & EXPERT_SLOT_PREFETCH) {
			c->st.prefetch_wasted++;
			expert_cache_event(c, EXPERT_EV_PREFETCH_WASTED, old / c->n_experts,
					   old % c->n_experts);
		}
		expert_cache_event(c, EXPERT_EV_EVICT, old / c->n_experts, old % c->n_experts);
		if (victim)
			*victim = old;
	}
	c->slot_key[s] = k;
	c->key_slot[k] = s;
	c->flags[s] = 0;
	c->stamp[s] = ++c->clock;
	c->next[s] = next_use;
	c->st.fills++;
	if (prefetch) {
		c->flags[s] |= EXPERT_SLOT_PREFETCH;
		c->st.prefetch_issued++;
		expert_cache_event(c, EXPERT_EV_PREFETCH, layer, e);
	} else {
		expert_cache_event(c, EXPERT_EV_MISS_DMA, layer, e);
		lock_slot(c, s);
	}
	return s;
}

void expert_cache_drop(struct expert_cache *c, int s)
{
	if (s < 0 || s >= c->n_slots)
		return;
	if (c->slot_key[s] >= 0)
		c->key_slot[c->slot_key[s]] = -1;
	c->slot_key[s] = -1;
	c->flags[s] &= EXPERT_SLOT_LOCKED; /* the lock list still holds it until the step ends */
}

void expert_cache_lock(struct expert_cache *c, int s)
{
	if (s >= 0 && s < c->n_slots)
		lock_slot(c, s);
}

void expert_cache_unlock(struct expert_cache *c)
{
	for (int i = 0; i < c->n_locked; i++)
		c->flags[c->locked[i]] &= (uint8_t)~EXPERT_SLOT_LOCKED;
	c->n_locked = 0;
}

int expert_cache_repin(struct expert_cache *c, int n_pin)
{
	if (n_pin < 0 || n_pin >= c->n_slots)
		return -ENOSPC;
	for (int s = 0; s < c->n_slots; s++)
		c->flags[s] &= (uint8_t)~EXPERT_SLOT_PINNED;
	/* top n_pin keys by count (ties: lower key), partial selection */
	int fills = 0;
	uint8_t *chosen = calloc((size_t)c->n_keys, 1);
	if (!chosen)
		return -ENOMEM;
	for (int i = 0; i < n_pin; i++) {
		int best = -1;
		for (int k = 0; k < c->n_keys; k++)
			if (!chosen[k] && c->count[k] && (best < 0 || c->count[k] > c->count[best]))
				best = k;
		if (best < 0)
			break;
		chosen[best] = 1;
		int s = c->key_slot[best];
		if (s < 0) {
			FILE *ev = c->events; /* logged as "pin" below, not as a demand miss */
			c->events = NULL;
			s = expert_cache_fill(c, best / c->n_experts, best % c->n_experts,
					      UINT64_MAX, 0, NULL);
			c->events = ev;
			if (s < 0)
				break;
			fills++;
			c->st.pin_fills++;
		}
		c->flags[s] |= EXPERT_SLOT_PINNED;
		expert_cache_event(c, EXPERT_EV_PIN, best / c->n_experts, best % c->n_experts);
	}
	free(chosen);
	expert_cache_unlock(c);
	return fills;
}

/* ---- 3. modeled replay ------------------------------------------------------------------- */

int expert_miss_on_host(double dma_end, double need, double host_end, double merge, double card_exp)
{
	return dma_end > need && host_end + merge <= dma_end + card_exp;
}

struct sim_order {
	int32_t pos, layer;
	size_t i;
};

static int order_cmp(const void *a, const void *b)
{
	const struct sim_order *x = a, *y = b;
	if (x->pos != y->pos)
		return x->pos < y->pos ? -1 : 1;
	if (x->layer != y->layer)
		return x->layer < y->layer ? -1 : 1;
	return x->i < y->i ? -1 : x->i > y->i;
}

static double dmax(double a, double b)
{
	return a > b ? a : b;
}

/* Accesses of every key in replay order (CSR), for the next use of a prefetched key. */
struct sim_uses {
	size_t *start; /* [n_keys + 1] */
	size_t *acc;   /* [n accesses] access indices, ascending per key */
};

/* The first access index >= a0 of key, UINT64_MAX = none. */
static uint64_t next_use_from(const struct sim_uses *u, size_t key, size_t a0)
{
	size_t lo = u->start[key], hi = u->start[key + 1];
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (u->acc[mid] < a0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < u->start[key + 1] ? (uint64_t)u->acc[lo] : UINT64_MAX;
}

/* State of one replay. */
struct sim {
	const struct expert_sim_cfg *cfg;
	const struct expert_trace *t;
	struct expert_sim_result *r;
	struct expert_cache c;
	size_t k; /* experts per token */
	int L, E; /* trace layers, experts per layer */
	/* sizes (bytes) and modeled durations (s) */
	double eb, lb, ob, sc; /* expert, MoE layer, other bytes; layer scale */
	double t_attn, t_exp, t_dma, t_host, t_merge, t_other;
	double t_layer; /* one MoE layer, all resident */
	/* replay order: records sorted by (pos, layer); next use of every access; uses per key */
	struct sim_order *ord;
	uint64_t *nextu; /* [n * k] access index of the same key's next use */
	struct sim_uses u;
	size_t *at;	/* [L] record of layer l in this token, SIZE_MAX = none */
	double *ready;	/* [n_slots] time the slot's weights have landed */
	double *cready; /* [k] time each card-run expert of this layer can start */
	size_t nc;	/* entries of cready */
	/* modeled clocks, s */
	double now, link_free, host_free, ideal;
	double host_end;  /* this layer: latest host-run output merged on the card */
	double t_tok;	  /* this token, all resident */
	int pin_n, repin; /* PIN: pinned slots, tokens between re-pinning */
};

/* Bad configurations, and look-ahead on a trace without predictions: -EINVAL. */
static int sim_check(const struct expert_trace *t, const struct expert_sim_cfg *cfg)
{
	if (cfg->n_slots < 1 || !(cfg->card_bw > 0) || !(cfg->link_bw > 0) || !(cfg->host_bw > 0) ||
	    cfg->lookahead < 0 || cfg->lookahead > 2)
		return -EINVAL;
	if (cfg->lookahead) {
		const int32_t *p = cfg->lookahead == 1 ? t->pred1 : t->pred2;
		size_t have = 0;
		for (size_t i = 0; i < t->n; i++)
			have += p[i * t->s.k] >= 0;
		if (!have)
			return -EINVAL;
	}
	return 0;
}

/* The sizes (cfg's, or the trace's) and the modeled durations of every step. */
static void sim_times(struct sim *s)
{
	const struct expert_sim_cfg *cfg = s->cfg;
	const struct expert_trace *t = s->t;
	s->eb = (double)(cfg->expert_bytes ? cfg->expert_bytes : t->s.expert_bytes);
	s->lb = (double)(cfg->layer_bytes ? cfg->layer_bytes : t->s.layer_bytes);
	s->ob = (double)(cfg->other_bytes ? cfg->other_bytes : t->s.other_bytes);
	s->sc = cfg->layer_scale > 0 ? cfg->layer_scale : 1;
	s->t_attn = s->lb / cfg->card_bw * s->sc;
	s->t_exp = s->eb / cfg->card_bw * s->sc;
	s->t_dma = (s->eb / cfg->link_bw + cfg->desc_lat) * s->sc;
	s->t_host = s->eb / cfg->host_bw * s->sc;
	s->t_merge = ((double)t->s.hidden * 4 / cfg->link_bw + cfg->desc_lat) * s->sc;
	s->t_other = s->ob / cfg->card_bw;
	s->t_layer = s->t_attn + (double)s->k * s->t_exp;
	s->pin_n = cfg->pin_slots > 0 ? cfg->pin_slots : cfg->n_slots / 2;
	if (s->pin_n >= cfg->n_slots)
		s->pin_n = cfg->n_slots - 1;
	s->repin = cfg->repin_every > 0 ? cfg->repin_every : 32;
}

/* Allocates the replay's arrays and the cache. 0, or -ENOMEM / expert_cache_init's error. */
static int sim_alloc(struct sim *s)
{
	size_t n = s->t->n ? s->t->n : 1, nk = (size_t)s->L * s->E;
	s->ord = malloc(sizeof *s->ord * n);
	s->nextu = malloc(sizeof(uint64_t) * n * s->k);
	s->u.start = calloc(nk + 1, sizeof(size_t));
	s->u.acc = malloc(sizeof(size_t) * n * s->k);
	s->ready = calloc((size_t)s->cfg->n_slots, sizeof(double));
	s->cready = malloc(sizeof(double) * s->k);
	s->at = malloc(sizeof(size_t) * (size_t)s->L);
	int rc = expert_cache_init(&s->c, s->L, s->E, s->cfg->n_slots, s->cfg->policy);
	if (rc)
		return rc;
	if (!s->ord || !s->nextu || !s->u.start || !s->u.acc || !s->ready || !s->cready || !s->at)
		return -ENOMEM;
	s->c.events = s->cfg->events;
	return 0;
}

static void sim_free(struct sim *s)
{
	expert_cache_free(&s->c);
	free(s->ord);
	free(s->nextu);
	free(s->u.start);
	free(s->u.acc);
	free(s->ready);
	free(s->cready);
	free(s->at);
}

/* The key of access a (record a / k of the replay order, rank a % k). */
static size_t sim_key(const struct sim *s, size_t a)
{
	size_t i = s->ord[a / s->k].i;
	return (size_t)s->t->layer[i] * s->E + s->t->expert[i * s->k + a % s->k];
}

/* Replay order, the next use of every access (BELADY) and every key's accesses. 0 or -ENOMEM. */
static int sim_index(struct sim *s)
{
	const struct expert_trace *t = s->t;
	const size_t n = t->n, k = s->k, nk = (size_t)s->L * s->E;
	uint64_t *lastu = malloc(sizeof(uint64_t) * nk);
	if (!lastu)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		s->ord[i] = (struct sim_order){t->pos[i], t->layer[i], i};
	qsort(s->ord, n, sizeof *s->ord, order_cmp);
	for (size_t q = 0; q < nk; q++)
		lastu[q] = UINT64_MAX;
	for (size_t a = n * k; a-- > 0;) {
		size_t key = sim_key(s, a);
		s->nextu[a] = lastu[key];
		lastu[key] = a;
		s->u.start[key + 1]++;
	}
	for (size_t q = 0; q < nk; q++)
		s->u.start[q + 1] += s->u.start[q];
	for (size_t q = 0; q < nk; q++)
		lastu[q] = s->u.start[q]; /* reused as the fill cursor */
	for (size_t a = 0; a < n * k; a++)
		s->u.acc[lastu[sim_key(s, a)]++] = a;
	free(lastu);
	return 0;
}

/*
 * Fills (layer, e) ahead of its use (prefetch or background fill) when the link can land it by
 * deadline (hybrid; deadline < 0: no budget) and, for BELADY, when the key is used before the
 * victim would be (optimal admission). Returns 1 when issued.
 */
static int sim_fill_ahead(struct sim *s, int layer, int e, uint64_t nu, double now, double deadline)
{
	double arrive = dmax(s->link_free, now) + s->t_dma;
	if (deadline >= 0 && arrive > deadline) {
		s->r->pf_skipped++;
		return 0;
	}
	if (s->cfg->policy == EXPERT_POLICY_BELADY) {
		int v = expert_cache_victim(&s->c);
		if (nu == UINT64_MAX || (v >= 0 && s->c.slot_key[v] >= 0 && s->c.next[v] <= nu)) {
			s->r->pf_skipped++;
			return 0;
		}
	}
	int slot = expert_cache_fill(&s->c, layer, e, nu, 1, NULL);
	if (slot < 0)
		return 0;
	expert_cache_lock(&s->c, slot); /* no later fill of this step takes it over */
	s->link_free = arrive;
	s->ready[slot] = arrive;
	s->r->dma_bytes += s->eb * s->sc;
	s->r->dma_busy_s += s->t_dma;
	return 1;
}

/* PIN, every repin tokens: the hottest experts by load are pinned; their fills are loaded
 * between tokens, on the link, and the next token waits for them (the card engine puts a barrier
 * after the pin fills). */
static void sim_repin(struct sim *s)
{
	struct expert_sim_result *r = s->r;
	if (s->cfg->policy != EXPERT_POLICY_PIN || !r->tokens || r->tokens % (uint64_t)s->repin)
		return;
	int f = expert_cache_repin(&s->c, s->pin_n);
	if (f <= 0)
		return;
	s->link_free = dmax(s->link_free, s->now) + f * s->t_dma;
	r->dma_bytes += f * s->eb * s->sc;
	r->dma_busy_s += f * s->t_dma;
	r->dma_wait_s += dmax(0, s->link_free - s->now);
	s->now = dmax(s->now, s->link_free);
}

/* Look-ahead prefetch issued when layer starts (at start, routing at t_route): this layer's
 * predicted experts (distance 1) or the next MoE layer's (distance 2). */
static void sim_prefetch(struct sim *s, int layer, double start, double t_route)
{
	const struct expert_sim_cfg *cfg = s->cfg;
	const size_t k = s->k;
	const int E = s->E;
	int tl = cfg->lookahead == 1 ? layer : layer + 1;
	size_t pq = tl < s->L ? s->at[tl] : SIZE_MAX;
	if (pq == SIZE_MAX)
		return;
	const int32_t *pred = cfg->lookahead == 1 ? s->t->pred1 : s->t->pred2;
	size_t pi = s->ord[pq].i;
	/* needed when that layer routes; after that the host is sooner */
	double need = (cfg->lookahead == 1 ? t_route : start + s->t_layer + s->t_attn) + s->t_host;
	/* predicted experts already resident are kept for their use: no prefetch of the same step
	 * may evict them */
	for (size_t j = 0; j < k; j++) {
		int e = pred[pi * k + j];
		if (e >= 0 && e < E)
			expert_cache_lock(&s->c, expert_cache_lookup(&s->c, tl, e));
	}
	for (size_t j = 0; j < k; j++) {
		int e = pred[pi * k + j];
		if (e < 0 || e >= E || expert_cache_lookup(&s->c, tl, e) >= 0)
			continue;
		uint64_t nu = next_use_from(&s->u, (size_t)tl * E + (size_t)e, pq * k);
		sim_fill_ahead(s, tl, e, nu, start, cfg->host_exec ? need : -1);
	}
}

/* A missed (or late) expert runs on the host: its output is ready at h_end, then merged into
 * the card's sum over the link. */
static void sim_run_on_host(struct sim *s, double h_end)
{
	s->host_free = h_end;
	s->host_end = dmax(s->host_end, h_end + s->t_merge);
}

/* Demand access j of record q (layer, routed at t_route): a hit on landed weights, a hit still
 * in flight, or a miss, each run on the card (cready) or on the host (hybrid). */
static void sim_access(struct sim *s, size_t q, size_t j, int layer, double t_route)
{
	const struct expert_sim_cfg *cfg = s->cfg;
	struct expert_sim_result *r = s->r;
	int e = s->t->expert[s->ord[q].i * s->k + j];
	uint64_t nu = s->nextu[q * s->k + j];
	r->accesses++;
	int slot = expert_cache_access(&s->c, layer, e, nu);
	double h_end = dmax(s->host_free, t_route) + s->t_host;
	if (slot >= 0) {
		r->hits++;
		if (s->ready[slot] <= t_route) {
			r->ready++;
		} else if (cfg->host_exec && expert_miss_on_host(s->ready[slot], t_route, h_end,
								 s->t_merge, s->t_exp)) {
			sim_run_on_host(s, h_end); /* still in flight and the host is sooner */
			r->late_host++;
			return;
		}
		s->cready[s->nc++] = dmax(s->ready[slot], t_route);
		return;
	}
	double dma_end = dmax(s->link_free, t_route) + s->t_dma;
	int host =
	    cfg->host_exec && expert_miss_on_host(dma_end, t_route, h_end, s->t_merge, s->t_exp);
	int slot2 = -1;
	if (!host && (slot2 = expert_cache_fill(&s->c, layer, e, nu, 0, NULL)) < 0)
		host = 1; /* every slot pinned or locked: the host runs it */
	if (host) {
		sim_run_on_host(s, h_end);
		r->miss_host++;
		expert_cache_event(&s->c, EXPERT_EV_MISS_HOST, layer, e);
		/* hybrid: fill it behind the card's work when the link can land it before the next
		 * token reaches this layer */
		if (cfg->host_exec && sim_fill_ahead(s, layer, e, nu, t_route, t_route + s->t_tok))
			r->bg_fills++;
		return;
	}
	s->link_free = dma_end;
	s->ready[slot2] = dma_end;
	r->miss_dma++;
	r->dma_bytes += s->eb * s->sc;
	r->dma_busy_s += s->t_dma;
	s->cready[s->nc++] = dma_end;
}

/* The card runs this layer's experts in the order their weights arrive, from t_route; returns
 * when it is done, counting the time it waited for the link. */
static double sim_card_experts(struct sim *s, double t_route)
{
	double *cr = s->cready;
	for (size_t x = 1; x < s->nc; x++)
		for (size_t y = x; y > 0 && cr[y] < cr[y - 1]; y--) {
			double tmp = cr[y];
			cr[y] = cr[y - 1];
			cr[y - 1] = tmp;
		}
	double card = t_route;
	for (size_t x = 0; x < s->nc; x++) {
		if (cr[x] > card) {
			s->r->dma_wait_s += cr[x] - card;
			card = cr[x];
		}
		card += s->t_exp;
	}
	return card;
}

/* One MoE layer: record q of the replay order. */
static void sim_layer(struct sim *s, size_t q)
{
	int layer = s->ord[q].layer;
	double start = s->now, t_route = start + s->t_attn;
	if (s->cfg->lookahead)
		sim_prefetch(s, layer, start, t_route);
	s->host_end = 0;
	s->nc = 0;
	for (size_t j = 0; j < s->k; j++)
		sim_access(s, q, j, layer, t_route);
	double card = sim_card_experts(s, t_route);
	if (s->host_end > card)
		s->r->host_wait_s += s->host_end - card;
	s->now = dmax(card, s->host_end);
	s->ideal += s->t_layer;
	expert_cache_unlock(&s->c);
}

/* One token: records g..h-1 of the replay order (same position). */
static void sim_token(struct sim *s, size_t g, size_t h)
{
	for (int l = 0; l < s->L; l++)
		s->at[l] = SIZE_MAX;
	for (size_t q = g; q < h; q++)
		s->at[s->ord[q].layer] = q;
	s->t_tok = (double)(h - g) * s->t_layer + s->t_other;
	s->c.ev_pos = s->ord[g].pos;
	sim_repin(s);
	for (size_t q = g; q < h; q++)
		sim_layer(s, q);
	s->now += s->t_other;
	s->ideal += s->t_other;
	s->r->tokens++;
}

/* The result's rates and totals after the last token. */
static void sim_results(const struct sim *s)
{
	struct expert_sim_result *r = s->r;
	double now = s->now, ideal = s->ideal;
	r->prefetch_issued = s->c.st.prefetch_issued - r->bg_fills;
	r->prefetch_used = s->c.st.prefetch_used;
	r->prefetch_wasted = s->c.st.prefetch_wasted;
	r->pin_fills = s->c.st.pin_fills;
	r->hit_rate = r->accesses ? (double)r->hits / (double)r->accesses : 0;
	r->ready_rate = r->accesses ? (double)r->ready / (double)r->accesses : 0;
	r->dma_bytes_per_token = r->tokens ? r->dma_bytes / (double)r->tokens : 0;
	r->time_s = now;
	r->ideal_s = ideal;
	r->stall_s = now - ideal;
	r->dma_hidden = r->dma_busy_s > 0 ? 1 - r->dma_wait_s / r->dma_busy_s : 1;
	if (r->dma_hidden < 0)
		r->dma_hidden = 0;
	r->tok_s = now > 0 ? (double)r->tokens / now : 0;
	r->ideal_tok_s = ideal > 0 ? (double)r->tokens / ideal : 0;
	/* all-host: every weight byte of a token read by the host CPU at host_bw */
	double per_tok_moe = r->tokens ? (double)s->t->n / (double)r->tokens : 0;
	double host_tok =
	    (per_tok_moe * (s->lb + (double)s->k * s->eb) * s->sc + s->ob) / s->cfg->host_bw;
	r->host_tok_s = host_tok > 0 ? 1 / host_tok : 0;
}

int expert_sim_run(const struct expert_trace *t, const struct expert_sim_cfg *cfg,
		   struct expert_sim_result *r)
{
	memset(r, 0, sizeof *r);
	int rc = sim_check(t, cfg);
	if (rc)
		return rc;
	struct sim s = {.cfg = cfg,
			.t = t,
			.r = r,
			.k = t->s.k,
			.L = (int)t->s.n_layers,
			.E = (int)t->s.n_experts};
	sim_times(&s);
	if (!(rc = sim_alloc(&s)) && !(rc = sim_index(&s))) {
		for (size_t g = 0, h; g < t->n; g = h) {
			for (h = g; h < t->n && s.ord[h].pos == s.ord[g].pos; h++)
				;
			sim_token(&s, g, h);
		}
		sim_results(&s);
	}
	sim_free(&s);
	return rc;
}
