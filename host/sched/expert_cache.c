/*
 * expert_cache.c - expert slots (layout, DMA scatter-gather, placement over HBM channels), the
 * replacement policies, and the modeled replay of routing traces (expert_cache.h).
 * Data flow: router choice -> lookup -> hit | fill (DMA) | host execution -> slot for the GEMM.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "sched/expert_cache.h"

/* ---- 1. slot layout and placement -------------------------------------------------------- */

static uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

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
	const struct qmat *q[3] = { &f->gate, &f->up, &f->down };
	for (int i = 0; i < 3; i++)
		if (!qmat_matches(q[i], l->len[i], l->len[3 + i]))
			return -EINVAL;
	for (int p = 0; p < EXPERT_SLOT_PARTS; p++) {
		const struct qmat *m = q[p % 3];
		sg[p] = (struct dma_sg){ .host = (void *)(p < 3 ? m->w : (const void *)m->scale),
					 .bank = bank,
					 .card_off = card_off + l->off[p],
					 .len = (size_t)l->len[p] };
	}
	return EXPERT_SLOT_PARTS;
}

int expert_slot_view(const struct expert_slot_layout *l, const void *base,
		     const struct ffn_weights *like, struct ffn_weights *out)
{
	const struct qmat *q[3] = { &like->gate, &like->up, &like->down };
	struct qmat *o[3] = { &out->gate, &out->up, &out->down };
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

int expert_slots_place(const struct board_desc *b, const uint64_t *used, uint64_t slot_bytes,
		       int want, struct expert_slot_map *m)
{
	memset(m, 0, sizeof *m);
	if (!b || !slot_bytes)
		return -EINVAL;
	uint32_t kind = BOARD_MEM_DDR, bi[BOARD_MAX_BANKS];
	uint64_t cap[BOARD_MAX_BANKS], total = 0;
	int nb = 0;
	for (uint32_t i = 0; i < b->n_banks; i++)
		if (b->bank[i].kind == BOARD_MEM_HBM)
			kind = BOARD_MEM_HBM;
	for (uint32_t i = 0; i < b->n_banks; i++) {
		if (b->bank[i].kind != kind)
			continue;
		uint64_t u = used ? align_up(used[i], EXPERT_SLOT_PAGE) : 0;
		cap[nb] = u < b->bank[i].size ? (b->bank[i].size - u) / slot_bytes : 0;
		bi[nb++] = i;
		total += cap[nb - 1];
	}
	if (want < 0 || (uint64_t)want > total)
		want = total > (uint64_t)INT32_MAX ? INT32_MAX : (int)total;
	m->bank = malloc(sizeof(uint32_t) * (size_t)(want ? want : 1));
	m->off = malloc(sizeof(uint64_t) * (size_t)(want ? want : 1));
	if (!m->bank || !m->off) {
		expert_slots_free(m);
		return -ENOMEM;
	}
	uint64_t taken[BOARD_MAX_BANKS] = { 0 };
	int n = 0;
	while (n < want) {
		for (int j = 0; j < nb && n < want; j++) {
			if (taken[j] >= cap[j])
				continue;
			uint32_t i = bi[j];
			uint64_t u = used ? align_up(used[i], EXPERT_SLOT_PAGE) : 0;
			m->bank[n] = i;
			m->off[n] = u + taken[j] * slot_bytes;
			taken[j]++;
			n++;
		}
	}
	m->n_slots = n;
	return n;
}

void expert_slots_free(struct expert_slot_map *m)
{
	free(m->bank);
	free(m->off);
	memset(m, 0, sizeof *m);
}

/* ---- 2. the cache ------------------------------------------------------------------------ */

const char *expert_policy_name(enum expert_policy p)
{
	static const char *n[] = { "lru", "lfu", "pin", "belady" };
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

void expert_cache_free(struct expert_cache *c)
{
	free(c->slot_key);
	free(c->key_slot);
	free(c->stamp);
	free(c->next);
	free(c->count);
	free(c->flags);
	free(c->locked);
	memset(c, 0, sizeof *c);
}

void expert_cache_event(struct expert_cache *c, enum expert_event ev, int layer, int e)
{
	static const char *n[] = { "hit",	   "miss_dma",	      "miss_host", "prefetch",
				   "prefetch_used", "prefetch_wasted", "evict",	   "pin" };
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
			s = expert_cache_fill(c, best / c->n_experts, best % c->n_experts, UINT64_MAX,
					      0, NULL);
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

static double dmax(double a, double b) { return a > b ? a : b; }

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
	struct expert_sim_result *r;
	struct expert_cache c;
	double *ready;           /* [n_slots] time the slot's weights have landed */
	double link_free, eb, sc, t_dma;
};

/*
 * Fills (layer, e) ahead of its use (prefetch or background fill) when the link can land it by
 * deadline (hybrid; deadline < 0: no budget) and, for BELADY, when the key is used before the
 * victim would be (optimal admission). Returns 1 when issued.
 */
static int sim_fill_ahead(struct sim *s, int layer, int e, uint64_t nu, double now,
			  double deadline)
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

int expert_sim_run(const struct expert_trace *t, const struct expert_sim_cfg *cfg,
		   struct expert_sim_result *r)
{
	memset(r, 0, sizeof *r);
	if (cfg->n_slots < 1 || !(cfg->card_bw > 0) || !(cfg->link_bw > 0) || !(cfg->host_bw > 0) ||
	    cfg->lookahead < 0 || cfg->lookahead > 2)
		return -EINVAL;
	const size_t n = t->n, k = t->s.k;
	const int L = (int)t->s.n_layers, E = (int)t->s.n_experts;
	if (cfg->lookahead) {
		const int32_t *p = cfg->lookahead == 1 ? t->pred1 : t->pred2;
		size_t have = 0;
		for (size_t i = 0; i < n; i++)
			have += p[i * k] >= 0;
		if (!have)
			return -EINVAL;
	}
	struct sim s = { .cfg = cfg, .r = r };
	s.eb = (double)(cfg->expert_bytes ? cfg->expert_bytes : t->s.expert_bytes);
	double lb = (double)(cfg->layer_bytes ? cfg->layer_bytes : t->s.layer_bytes);
	double ob = (double)(cfg->other_bytes ? cfg->other_bytes : t->s.other_bytes);
	s.sc = cfg->layer_scale > 0 ? cfg->layer_scale : 1;
	const double sc = s.sc, eb = s.eb;
	double t_attn = lb / cfg->card_bw * sc, t_exp = eb / cfg->card_bw * sc;
	s.t_dma = (eb / cfg->link_bw + cfg->desc_lat) * sc;
	const double t_dma = s.t_dma;
	double t_host = eb / cfg->host_bw * sc;
	double t_merge = ((double)t->s.hidden * 4 / cfg->link_bw + cfg->desc_lat) * sc;
	double t_other = ob / cfg->card_bw;
	double t_layer = t_attn + (double)k * t_exp; /* one MoE layer, all resident */

	const size_t nk = (size_t)L * E;
	struct sim_order *ord = malloc(sizeof *ord * (n ? n : 1));
	uint64_t *nextu = malloc(sizeof(uint64_t) * (n ? n : 1) * k);
	uint64_t *lastu = malloc(sizeof(uint64_t) * nk);
	struct sim_uses u = { calloc(nk + 1, sizeof(size_t)), malloc(sizeof(size_t) * (n ? n : 1) * k) };
	s.ready = malloc(sizeof(double) * (size_t)cfg->n_slots);
	double *cready = malloc(sizeof(double) * k);
	size_t *at = malloc(sizeof(size_t) * (size_t)L); /* record of layer l in this token */
	int rc = expert_cache_init(&s.c, L, E, cfg->n_slots, cfg->policy);
	if (!ord || !nextu || !lastu || !u.start || !u.acc || !s.ready || !cready || !at || rc) {
		rc = rc ? rc : -ENOMEM;
		goto out;
	}
	s.c.events = cfg->events;
	for (size_t i = 0; i < n; i++)
		ord[i] = (struct sim_order){ t->pos[i], t->layer[i], i };
	qsort(ord, n, sizeof *ord, order_cmp);
	/* next use of every access, in replay order (Belady), and every key's accesses */
	for (size_t q = 0; q < nk; q++)
		lastu[q] = UINT64_MAX;
	for (size_t a = n * k; a-- > 0;) {
		size_t i = ord[a / k].i;
		size_t key = (size_t)t->layer[i] * E + t->expert[i * k + a % k];
		nextu[a] = lastu[key];
		lastu[key] = a;
		u.start[key + 1]++;
	}
	for (size_t q = 0; q < nk; q++)
		u.start[q + 1] += u.start[q];
	for (size_t q = 0; q < nk; q++)
		lastu[q] = u.start[q]; /* reused as the fill cursor */
	for (size_t a = 0; a < n * k; a++) {
		size_t i = ord[a / k].i;
		size_t key = (size_t)t->layer[i] * E + t->expert[i * k + a % k];
		u.acc[lastu[key]++] = a;
	}
	for (int q = 0; q < cfg->n_slots; q++)
		s.ready[q] = 0;
	int pin_n = cfg->pin_slots > 0 ? cfg->pin_slots : cfg->n_slots / 2;
	if (pin_n >= cfg->n_slots)
		pin_n = cfg->n_slots - 1;
	int repin = cfg->repin_every > 0 ? cfg->repin_every : 32;
	double now = 0, host_free = 0, ideal = 0, t_tok = 0;
	for (size_t g = 0; g < n;) {
		/* one token: records g..h with the same position */
		size_t h = g;
		while (h < n && ord[h].pos == ord[g].pos)
			h++;
		for (int l = 0; l < L; l++)
			at[l] = SIZE_MAX;
		for (size_t q = g; q < h; q++)
			at[ord[q].layer] = q;
		t_tok = (double)(h - g) * t_layer + t_other; /* this token, all resident */
		s.c.ev_pos = ord[g].pos;
		if (cfg->policy == EXPERT_POLICY_PIN && r->tokens && r->tokens % (uint64_t)repin == 0) {
			int f = expert_cache_repin(&s.c, pin_n);
			if (f > 0) {
				/* pins are loaded between tokens, on the link; the next token waits for
				 * them (the emu engine puts a barrier after the pin fills) */
				s.link_free = dmax(s.link_free, now) + f * t_dma;
				r->dma_bytes += f * eb * sc;
				r->dma_busy_s += f * t_dma;
				r->dma_wait_s += dmax(0, s.link_free - now);
				now = dmax(now, s.link_free);
			}
		}
		for (size_t q = g; q < h; q++) {
			size_t i = ord[q].i;
			int layer = ord[q].layer;
			double start = now, t_route = start + t_attn;
			/* look-ahead prefetch issued when this layer starts: this layer's predicted
			 * experts (distance 1) or the next MoE layer's (distance 2) */
			if (cfg->lookahead) {
				int tl = cfg->lookahead == 1 ? layer : layer + 1;
				size_t pq = tl < L ? at[tl] : SIZE_MAX;
				if (pq != SIZE_MAX) {
					const int32_t *pred = cfg->lookahead == 1 ? t->pred1 : t->pred2;
					size_t pi = ord[pq].i;
					/* needed when that layer routes; after that the host is sooner */
					double need = (cfg->lookahead == 1 ? t_route : start + t_layer + t_attn) +
						      t_host;
					/* predicted experts already resident are kept for their use: no
					 * prefetch of the same step may evict them */
					for (size_t j = 0; j < k; j++) {
						int e = pred[pi * k + j];
						if (e >= 0 && e < E)
							expert_cache_lock(&s.c, expert_cache_lookup(&s.c, tl, e));
					}
					for (size_t j = 0; j < k; j++) {
						int e = pred[pi * k + j];
						if (e < 0 || e >= E || expert_cache_lookup(&s.c, tl, e) >= 0)
							continue;
						uint64_t nu = next_use_from(&u, (size_t)tl * E + (size_t)e,
									    pq * k);
						sim_fill_ahead(&s, tl, e, nu, start,
							       cfg->host_exec ? need : -1);
					}
				}
			}
			double host_end = 0;
			size_t nc = 0;
			for (size_t j = 0; j < k; j++) {
				int e = t->expert[i * k + j];
				uint64_t nu = nextu[q * k + j];
				r->accesses++;
				int slot = expert_cache_access(&s.c, layer, e, nu);
				double h_end = dmax(host_free, t_route) + t_host;
				if (slot >= 0) {
					r->hits++;
					if (s.ready[slot] <= t_route) {
						r->ready++;
					} else if (cfg->host_exec && h_end + t_merge <= s.ready[slot] + t_exp) {
						/* still in flight and the host is sooner */
						host_free = h_end;
						host_end = dmax(host_end, h_end + t_merge);
						r->late_host++;
						continue;
					}
					cready[nc++] = dmax(s.ready[slot], t_route);
					continue;
				}
				double dma_end = dmax(s.link_free, t_route) + t_dma;
				int host = cfg->host_exec && h_end + t_merge <= dma_end + t_exp;
				int slot2 = -1;
				if (!host && (slot2 = expert_cache_fill(&s.c, layer, e, nu, 0, NULL)) < 0)
					host = 1; /* every slot pinned or locked: the host runs it */
				if (host) {
					host_free = h_end;
					host_end = dmax(host_end, h_end + t_merge);
					r->miss_host++;
					expert_cache_event(&s.c, EXPERT_EV_MISS_HOST, layer, e);
					/* hybrid: fill it behind the card's work when the link can land
					 * it before the next token reaches this layer */
					if (cfg->host_exec &&
					    sim_fill_ahead(&s, layer, e, nu, t_route, t_route + t_tok))
						r->bg_fills++;
					continue;
				}
				s.link_free = dma_end;
				s.ready[slot2] = dma_end;
				r->miss_dma++;
				r->dma_bytes += eb * sc;
				r->dma_busy_s += t_dma;
				cready[nc++] = dma_end;
			}
			/* the card runs its experts in the order their weights arrive */
			for (size_t x = 1; x < nc; x++)
				for (size_t y = x; y > 0 && cready[y] < cready[y - 1]; y--) {
					double tmp = cready[y];
					cready[y] = cready[y - 1];
					cready[y - 1] = tmp;
				}
			double card = t_route;
			for (size_t x = 0; x < nc; x++) {
				if (cready[x] > card) {
					r->dma_wait_s += cready[x] - card;
					card = cready[x];
				}
				card += t_exp;
			}
			if (host_end > card)
				r->host_wait_s += host_end - card;
			now = dmax(card, host_end);
			ideal += t_layer;
			expert_cache_unlock(&s.c);
		}
		now += t_other;
		ideal += t_other;
		r->tokens++;
		g = h;
	}
	r->prefetch_issued = s.c.st.prefetch_issued - r->bg_fills;
	r->prefetch_used = s.c.st.prefetch_used;
	r->prefetch_wasted = s.c.st.prefetch_wasted;
	r->pin_fills = s.c.st.pin_fills;
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
	double per_tok_moe = r->tokens ? (double)n / (double)r->tokens : 0;
	double host_tok = (per_tok_moe * (lb + (double)k * eb) * sc + ob) / cfg->host_bw;
	r->host_tok_s = host_tok > 0 ? 1 / host_tok : 0;
	rc = 0;
out:
	expert_cache_free(&s.c);
	free(ord);
	free(nextu);
	free(lastu);
	free(u.start);
	free(u.acc);
	free(s.ready);
	free(cready);
	free(at);
	return rc;
}
