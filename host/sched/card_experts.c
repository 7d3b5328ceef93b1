/*
 * card_experts.c - the expert cache on the card, the scheduler's side (docs/expert-cache.md): the
 * slots, their fills, the detached ring-1 lists and the decision for every routed expert after
 * the host router of a MoE layer (expert_cache.h holds the cache and its policies; the command
 * lists are built in card_engine.c, card_moe reads the slots this file chose).
 * With --expert-slots N the routed experts stay in host memory (the checkpoint mmap) and N
 * fixed-size slots (expert_cache.h layout: gate|up codes back to back, down codes, then the three
 * scale arrays) are placed round-robin over the weight banks. After the router of a MoE layer:
 *   hit            the expert's GEMMs read its slot;
 *   miss -> DMA    the policy picks a slot; six DMA_FILL commands (one per part, SRC_HOST from the
 *                  mmap, all on one H2C channel so they land in order) go at the head of the
 *                  layer's list; the last signals a fence that the expert's gate|up GEMM waits on;
 *   miss -> host   (--expert-host) the host runs the expert with the hls fp8_gemm C function,
 *                  exactly the card's computation, and the card adds route_w * y into the FFN
 *                  sum at the expert's place in router order (RESIDUAL_ADD), which is
 *                  bit-identical to the ACCUM epilogue (y_old + route_w * acc, no contraction;
 *                  docs/numerics.md, What agrees and how closely);
 *   prefetch       (--expert-prefetch) the next MoE layer's gate on the residual read back here
 *                  predicts its experts and their slots are filled ahead.
 * Prefetches and background fills of host-run misses are detached when the backend takes a list
 * per ring (BACKEND_CAP_RINGS): one list of them on ring 1 runs across layer steps (ee_xc_df_add,
 * card_xc_dl_submit, ee_xc_dl_collect); its slots are EXPERT_SLOT_INFLIGHT until it is seen
 * complete, and GEMMs on them wait for their fence across rings. Otherwise (one list in flight,
 * or MOECARD_EXPERT_SYNC_FILLS=1) they sit in the layer's list: background fills after the demand
 * fills, prefetches spread over the down chain.
 * Slot locks end when the list completes (card_flush). Every decision goes to the cache's event
 * trace (--expert-events). DMA time hidden is measured on the card timeline of both rings: the
 * fraction of time some fill was in flight while some CU computed (ee_xc_account). Host time is
 * MODELED (bytes / host rate) and counted where it would outlast the card's work before its
 * merge.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "backend/backend.h"
#include "hls/fp8_gemm/fp8_gemm.h"
#include "model/kernels.h"
#include "sched/card_engine_impl.h"
#include "sched/expert_cache.h"
#include "sched/expert_trace.h"

/* The MoE layers of the engine (main model and MTP). */
static int ee_xc_moe_layers(const struct ee *e)
{
	const struct config *c = e->c;
	int moe = 0;
	for (int l = 0; l < e->n_layers; l++)
		moe += l < c->num_hidden_layers ? config_layer_is_moe(c, l) : e->w->mtp->is_moe;
	return moe;
}

/* The options: slots (n), policy and host execution (0 off, 1 auto, 2 always). 0 or -EINVAL
 * with the message in err. */
static int ee_xc_options(const struct ee *e, const struct engine_extra *x, int *n,
			 enum expert_policy *policy, int *host, char *err, size_t errlen)
{
	const struct config *c = e->c;
	int E = c->n_routed_experts, moe = ee_xc_moe_layers(e);
	if (E < 1 || !moe) {
		snprintf(err, errlen, "--expert-slots: config.json has no routed experts");
		return -EINVAL;
	}
	if (c->num_experts_per_tok >= (int)EE_XC_DFENCE0) { /* a fence id per demand fill */
		snprintf(err, errlen, "--expert-slots: at most %u experts per token",
			 EE_XC_DFENCE0 - 1);
		return -EINVAL;
	}
	*n = x->expert_slots > 0   ? x->expert_slots
	     : x->expert_slots < 0 ? moe * E /* board: the cap; card_xc_place places what fits */
				   : (int)((int64_t)moe * E * x->expert_slots_pct / 100);
	if (*n < c->num_experts_per_tok)
		*n = c->num_experts_per_tok; /* one layer's choice must fit */
	if (*n > moe * E)
		*n = moe * E;
	enum expert_policy pol = EXPERT_POLICY_LRU;
	const char *pn = x->expert_policy ? x->expert_policy : "lru";
	for (int p = 0; p < EXPERT_POLICY_N; p++)
		if (!strcmp(pn, expert_policy_name((enum expert_policy)p)))
			pol = (enum expert_policy)p;
	if (strcmp(pn, expert_policy_name(pol))) {
		snprintf(err, errlen, "--expert-policy: expected lru, lfu, pin or belady, got '%s'",
			 pn);
		return -EINVAL;
	}
	if (pol == EXPERT_POLICY_BELADY) {
		snprintf(err, errlen,
			 "--expert-policy belady: the offline optimum needs the future; "
			 "replay a routing trace with moecard cache-sim");
		return -EINVAL;
	}
	*policy = pol;
	const char *hm = x->expert_host ? x->expert_host : "off";
	*host = !strcmp(hm, "off") ? 0 : !strcmp(hm, "auto") ? 1 : !strcmp(hm, "always") ? 2 : -1;
	if (*host < 0) {
		snprintf(err, errlen, "--expert-host: expected off, auto or always, got '%s'", hm);
		return -EINVAL;
	}
	return 0;
}

/* The cache of n slots and the scratch of the decisions. 0 or a negative errno. */
static int ee_xc_alloc(struct ee *e, struct ee_xc *xc, int n, enum expert_policy pol)
{
	const struct config *c = e->c;
	int D = c->hidden_size, I = c->moe_intermediate_size, E = c->n_routed_experts;
	int r = expert_cache_init(&xc->cache, e->n_layers, E, n, pol);
	if (r || (r = expert_slot_layout_init(c, &xc->lay)))
		return r;
	xc->slot_addr = calloc((size_t)n, sizeof *xc->slot_addr);
	xc->hid = calloc((size_t)I, sizeof(float));
	xc->hout = calloc((size_t)D, sizeof(float));
	xc->hres_x = calloc((size_t)D, sizeof(float));
	xc->plog = calloc((size_t)E, sizeof(float));
	xc->cap_ev = 2 * BACKEND_MAX_LIST;
	xc->ev = calloc(xc->cap_ev, sizeof *xc->ev);
	xc->key0 = calloc((size_t)n, sizeof *xc->key0);
	xc->pend_fid = calloc((size_t)n, sizeof *xc->pend_fid);
	xc->pend_fval = calloc((size_t)n, sizeof *xc->pend_fval);
	/* detached fills need a second list in flight (emu); MOECARD_EXPERT_SYNC_FILLS=1 keeps
	 * every fill in ring 0's lists as a backend without it does (the comparison, its tests) */
	const char *sync = getenv("MOECARD_EXPERT_SYNC_FILLS");
	xc->async = !e->dry && (backend_caps(e->be) & BACKEND_CAP_RINGS) && !(sync && atoi(sync));
	xc->dl_cmd = xc->async ? calloc(BACKEND_MAX_LIST, sizeof *xc->dl_cmd) : NULL;
	if (!xc->slot_addr || !xc->hid || !xc->hout || !xc->hres_x || !xc->plog || !xc->ev ||
	    !xc->key0 || !xc->pend_fid || !xc->pend_fval || (xc->async && !xc->dl_cmd))
		return -ENOMEM;
	return 0;
}

/* The board's host-to-card DMA channels and their modeled rate. 0 or -EINVAL (err). */
static int ee_xc_channels(struct ee *e, struct ee_xc *xc, char *err, size_t errlen)
{
	const struct abi_board *blk = backend_abi_board(e->be);
	uint32_t nd = ABI_BOARD_N_DMA(blk->counts);
	for (uint32_t i = 0; i < nd; i++)
		if (blk->dma[i].word & ABI_DMA_CAP_H2C) {
			xc->h2c[xc->n_h2c++] = i;
			xc->dma_bps = blk->dma[i].bw_mbps * 1e6;
		}
	if (!xc->n_h2c) {
		snprintf(err, errlen, "%s: --expert-slots needs a host-to-card DMA channel",
			 backend_board(e->be)->model);
		return -EINVAL;
	}
	xc->dma_lat_s = 1e-6; /* per descriptor (board dts latency-ns of the emu channels) */
	return 0;
}

/* The host's expert rate, weight bytes/s, measured: one expert's three GEMVs with the cpu kernels
 * (f32 accumulate; the exact fp8_gemm the host really runs costs the same memory traffic). */
static double ee_xc_measure_host(struct ee *e, struct ee_xc *xc)
{
	const struct config *c = e->c;
	struct timespec a, b;
	const struct ffn_weights *f = NULL;
	for (int l = 0; l < c->num_hidden_layers && !f; l++)
		if (e->w->layers[l].is_moe)
			f = &e->w->layers[l].experts[0];
	for (int i = 0; i < c->hidden_size; i++)
		xc->hres_x[i] = (float)((i % 7) - 3) * 0.1f;
	clock_gettime(CLOCK_MONOTONIC, &a);
	int reps = 4;
	for (int rr = 0; rr < reps; rr++)
		if (kern_matmul(&e->kc, &f->gate, xc->hres_x, 1, xc->hid) ||
		    kern_matmul(&e->kc, &f->up, xc->hres_x, 1, xc->hid) ||
		    kern_matmul(&e->kc, &f->down, xc->hid, 1, xc->hout))
			break;
	clock_gettime(CLOCK_MONOTONIC, &b);
	double dt = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) * 1e-9;
	return dt > 0 ? reps * (double)xc->lay.payload / dt : 1e9;
}

/* The card's modeled time of one expert: its gate|up (fused SiLU) and down GEMVs, s. */
static double ee_xc_gemm_s(const struct ee *e)
{
	const struct config *c = e->c;
	const struct abi_board *blk = backend_abi_board(e->be);
	int D = c->hidden_size, I = c->moe_intermediate_size;
	struct abi_cmd g;
	memset(&g, 0, sizeof g);
	abi_cmd_hdr_set(&g.hdr, ABI_OP_GEMM_FP8, 0);
	g.u.gemm = (struct abi_gemm){.m = 1,
				     .n = (uint32_t)I,
				     .k = (uint32_t)D,
				     .flags = ABI_GEMM_F_X_F32 | ABI_GEMM_F_SILU_MUL};
	uint32_t kclk = blk->cu_clk_khz, bw = blk->banks[0].bw_mbps;
	int64_t c1 = backend_cmd_cycles(&g, bw, kclk, NULL);
	g.u.gemm = (struct abi_gemm){.m = 1,
				     .n = (uint32_t)D,
				     .k = (uint32_t)I,
				     .flags = ABI_GEMM_F_X_F32 | ABI_GEMM_F_ACCUM};
	int64_t c2 = backend_cmd_cycles(&g, bw, kclk, NULL);
	return kclk ? (double)((c1 > 0 ? c1 : 0) + (c2 > 0 ? c2 : 0)) / (kclk * 1e3) : 0;
}

/* Parses the options and sets up the cache before placement. 0 or -EINVAL/-ENOMEM (err). */
int card_xc_init(struct ee *e, const struct engine_extra *x, char *err, size_t errlen)
{
	int n, host, r;
	enum expert_policy pol;
	if (!x || (x->expert_slots == 0 && x->expert_slots_pct <= 0))
		return 0;
	if ((r = ee_xc_options(e, x, &n, &pol, &host, err, errlen)))
		return r;
	struct ee_xc *xc = calloc(1, sizeof *xc);
	if (!xc)
		return -ENOMEM;
	e->xc = xc;
	xc->host_mode = host;
	xc->from_board = x->expert_slots < 0;
	xc->prefetch = x->expert_prefetch;
	xc->host_add_cmd = -1;
	xc->pred_layer = -1;
	if ((r = ee_xc_alloc(e, xc, n, pol)))
		return r;
	if (x->expert_events && !(xc->events = fopen(x->expert_events, "w"))) {
		snprintf(err, errlen, "--expert-events %s: %s", x->expert_events, strerror(errno));
		return -errno;
	}
	xc->cache.events = xc->events;
	if ((r = ee_xc_channels(e, xc, err, errlen)))
		return r;
	xc->host_bps = x->expert_host_gbps > 0 ? x->expert_host_gbps * 1e9 : 0;
	if (!xc->host_bps)
		xc->host_bps = ee_xc_measure_host(e, xc);
	xc->gemm_s = ee_xc_gemm_s(e);
	const struct abi_board *blk = backend_abi_board(e->be);
	xc->gemm_cus = 0;
	for (uint32_t i = 0; i < ABI_BOARD_N_CUS(blk->counts); i++)
		xc->gemm_cus += (blk->cus[i].ops_mask >> ABI_OP_GEMM_FP8) & 1;
	xc->gemm_cus = xc->gemm_cus > 0 ? xc->gemm_cus : 1;
	return 0;
}

/* Places the slots and the host-result buffers after the resident weights. */
int card_xc_place(struct ee *e)
{
	struct ee_xc *xc = e->xc;
	int r;
	for (int j = 0; j < e->c->num_experts_per_tok; j++)
		if ((r = card_place(e, (int)e->act_bank, NULL,
				    sizeof(float) * (size_t)e->c->hidden_size, &xc->hres[j])))
			return r;
	for (int s = 0; s < xc->cache.n_slots; s++) {
		r = card_place(e, -1, NULL, (size_t)xc->lay.bytes, &xc->slot_addr[s]);
		if (r == -ENOMEM && xc->from_board && s >= e->c->num_experts_per_tok) {
			xc->cache.n_slots = s; /* the card is full: these many slots */
			break;
		}
		if (r)
			return r;
	}
	return 0;
}

void card_xc_free(struct ee *e)
{
	struct ee_xc *xc = e->xc;
	if (!xc)
		return;
	if (xc->events)
		fclose(xc->events);
	expert_cache_free(&xc->cache);
	free(xc->slot_addr);
	free(xc->hid);
	free(xc->hout);
	free(xc->hres_x);
	free(xc->plog);
	free(xc->ev);
	free(xc->key0);
	free(xc->pend_fid);
	free(xc->pend_fval);
	free(xc->dl_cmd);
	free(xc->iv);
	free(xc);
	e->xc = NULL;
}
/* Queues the six fills of expert f into slot s on H2C channel ch; the last signals fence fid
 * (0 = none) with value fval. */
int card_xc_fill_cmds(struct ee *e, const struct ffn_weights *f, int s, uint32_t ch, uint32_t fid,
		      uint32_t fval)
{
	struct ee_xc *xc = e->xc;
	struct dma_sg sg[EXPERT_SLOT_PARTS];
	int n = expert_slot_sg(f, &xc->lay, 0, 0, sg);
	if (n != EXPERT_SLOT_PARTS)
		return -EINVAL;
	for (int p = 0; p < n; p++) {
		struct abi_cmd *c = card_cmd(e, ABI_OP_DMA_FILL,
					     p == n - 1 ? "expert fill (signal)" : "expert fill");
		if (!c)
			return -E2BIG;
		c->u.dma.src = (uint64_t)(uintptr_t)sg[p].host;
		c->u.dma.dst = xc->slot_addr[s] + sg[p].card_off;
		c->u.dma.bytes = sg[p].len;
		c->u.dma.flags = ABI_DMA_F_SRC_HOST;
		c->u.dma.word = ABI_DMA_WORD(ch, 0, (uint32_t)s & 0xFFFFu);
		if (p == n - 1 && fid) {
			c->hdr.word2 |= ABI_CMD_F_SIGNAL;
			c->hdr.word3 = ABI_W3(0, fid);
			c->hdr.signal_value = fval;
		}
		xc->dma_bytes += (double)sg[p].len;
	}
	return 0;
}

/* Keeps [t0, t1) of a command for the DMA statistics (ee_xc_account). */
static void ee_xc_iv_add(struct ee_xc *xc, uint64_t t0, uint64_t t1, int cu)
{
	if (t1 > xc->t_seen)
		xc->t_seen = t1;
	if (t1 <= t0 || t1 <= xc->t_done)
		return;
	if (xc->n_iv == xc->cap_iv) {
		size_t cap = xc->cap_iv ? 2 * xc->cap_iv : 4096;
		void *p = realloc(xc->iv, cap * sizeof *xc->iv);
		if (!p)
			return; /* the statistics lose one command; the run goes on */
		xc->iv = p;
		xc->cap_iv = cap;
	}
	xc->iv[xc->n_iv++] = (struct ee_xiv){t0, t1, cu};
}

/* Ends before starts at equal times, so back-to-back commands leave no gap. */
static int ee_xev_cmp(const void *pa, const void *pb)
{
	const struct ee_xev *a = pa, *b = pb;
	if (a->t != b->t)
		return a->t < b->t ? -1 : 1;
	return (a->kind > 0) - (b->kind > 0);
}

/*
 * DMA time hidden, over the card timeline of both rings: from the time accounted so far up to
 * the latest time no command still to be reported can start before (the clock only moves inside
 * a wait, so the next list starts after every t_end seen; a detached list in flight started after
 * dl_t0), the time with some fill in flight is DMA busy, and of it the time with no CU command
 * running is exposed. Commands that ended before that time are dropped.
 */
static void ee_xc_account(struct ee_xc *xc)
{
	uint64_t h = xc->t_seen;
	if (xc->dl_fence && xc->dl_t0 < h)
		h = xc->dl_t0;
	if (h <= xc->t_done)
		return;
	if (xc->cap_ev < 2 * xc->n_iv) {
		void *p = realloc(xc->ev, 2 * xc->n_iv * sizeof *xc->ev);
		if (!p)
			return; /* accounted later, when memory allows */
		xc->ev = p;
		xc->cap_ev = 2 * xc->n_iv;
	}
	size_t ne = 0;
	for (size_t i = 0; i < xc->n_iv; i++) {
		const struct ee_xiv *v = &xc->iv[i];
		uint64_t a = v->t0 > xc->t_done ? v->t0 : xc->t_done, b = v->t1 < h ? v->t1 : h;
		if (a >= b)
			continue;
		xc->ev[ne++] = (struct ee_xev){a, v->cu ? 2 : 1};
		xc->ev[ne++] = (struct ee_xev){b, v->cu ? -2 : -1};
	}
	qsort(xc->ev, ne, sizeof *xc->ev, ee_xev_cmp);
	int dma = 0, cu = 0;
	for (size_t i = 0; i < ne; i++) {
		if (i && dma > 0) {
			double dt = (double)(xc->ev[i].t - xc->ev[i - 1].t);
			xc->dma_busy_ns += dt;
			if (!cu)
				xc->dma_exposed_ns += dt;
		}
		int kd = xc->ev[i].kind;
		if (kd == 1 || kd == -1)
			dma += kd;
		else
			cu += kd / 2;
	}
	xc->t_done = h;
	size_t k = 0;
	for (size_t i = 0; i < xc->n_iv; i++)
		if (xc->iv[i].t1 > h)
			xc->iv[k++] = xc->iv[i];
	xc->n_iv = k;
}

/* Empties the slots of detached fills that did not land (failed, or never submitted). */
static void ee_xc_df_drop(struct ee_xc *xc, const struct ee_xdf *d, int n)
{
	for (int i = 0; i < n; i++) {
		xc->pend_fid[d[i].s] = 0;
		expert_cache_drop(&xc->cache, d[i].s);
	}
}

/* Queues a detached fill of expert f into slot s (already taken by expert_cache_fill) on channel
 * ch: the slot is in flight until the list completes; GEMMs on it wait for its fence. */
static int ee_xc_df_add(struct ee *e, const struct ffn_weights *f, int s, uint32_t ch)
{
	struct ee_xc *xc = e->xc;
	struct dma_sg sg[EXPERT_SLOT_PARTS];
	if (xc->n_df >= EE_XC_NDF || expert_slot_sg(f, &xc->lay, 0, 0, sg) != EXPERT_SLOT_PARTS)
		return -EINVAL;
	uint32_t fid = EE_XC_DFENCE0 + xc->next_dfence++ % (uint32_t)EE_XC_NDF;
	uint32_t v = xc->fence_val[fid];
	xc->fence_val[fid] = v + EXPERT_SLOT_PARTS;
	xc->df[xc->n_df++] = (struct ee_xdf){f, s, ch, fid, v};
	xc->cache.flags[s] |= EXPERT_SLOT_INFLIGHT;
	xc->pend_fid[s] = fid;
	xc->pend_fval[s] = v + EXPERT_SLOT_PARTS;
	xc->dma_bytes += (double)xc->lay.payload;
	xc->df_fills++;
	return 0;
}

/* Submits the detached fills queued in this step as one list on ring EE_XC_RING (called by
 * card_flush right after ring 0's list, so this step's demand fills reach the channels first).
 * Parts go out part by part over the fills: each part waits for the previous part of its own
 * fill, so fill-major order would let one fill's wait block the ring for the others. */
int card_xc_dl_submit(struct ee *e)
{
	struct ee_xc *xc = e->xc;
	int nf = xc->n_df;
	uint32_t n = 0;
	struct dma_sg sg[EXPERT_SLOT_PARTS];
	if (!nf)
		return 0;
	for (int p = 0; p < EXPERT_SLOT_PARTS; p++)
		for (int i = 0; i < nf; i++) {
			const struct ee_xdf *d = &xc->df[i];
			expert_slot_sg(d->f, &xc->lay, 0, 0, sg); /* checked by ee_xc_df_add */
			struct abi_cmd *c = &xc->dl_cmd[n];
			memset(c, 0, sizeof *c);
			abi_cmd_hdr_set(&c->hdr, ABI_OP_DMA_FILL, n++);
			uint32_t fl = ABI_CMD_F_SIGNAL | (p ? ABI_CMD_F_WAIT : 0);
			c->hdr.word2 = ABI_W2(fl, EE_CMD_TIMEOUT);
			c->hdr.word3 = ABI_W3(p ? d->fid : 0, d->fid);
			c->hdr.wait_value = p ? d->v + (uint32_t)p : 0;
			c->hdr.signal_value = d->v + (uint32_t)p + 1;
			c->u.dma.src = (uint64_t)(uintptr_t)sg[p].host;
			c->u.dma.dst = xc->slot_addr[d->s] + sg[p].card_off;
			c->u.dma.bytes = sg[p].len;
			c->u.dma.flags = ABI_DMA_F_SRC_HOST;
			c->u.dma.word = ABI_DMA_WORD(d->ch, 0, (uint32_t)d->s & 0xFFFFu);
		}
	uint64_t f;
	int r = backend_submit(e->be, EE_XC_RING, xc->dl_cmd, n, &f);
	xc->n_df = 0;
	if (r) {
		ee_xc_df_drop(xc, xc->df, nf);
		return r;
	}
	memcpy(xc->dfly, xc->df, sizeof(*xc->df) * (size_t)nf);
	xc->n_dfly = nf;
	xc->dl_fence = f;
	xc->dl_t0 = xc->t_seen;
	return 0;
}

/* The detached list in flight: polls it (timeout_ms 0) or waits for it. When it is complete,
 * its slots are usable without a wait, and a fill with any failed part empties its slot (a miss
 * next time). Returns 1 when no detached list is in flight any more, 0 when it still is (poll),
 * or -ETIMEDOUT. */
static int ee_xc_dl_collect(struct ee *e, uint32_t timeout_ms)
{
	struct ee_xc *xc = e->xc;
	if (!xc->dl_fence)
		return 1;
	int r = backend_wait(e->be, xc->dl_fence, timeout_ms);
	if (r == -ETIMEDOUT)
		return timeout_ms ? r : 0;
	const struct abi_cpl *cp = NULL;
	uint32_t n = 0;
	int nf = xc->n_dfly;
	if ((r && r != -EIO) || backend_completions(e->be, &cp, &n) ||
	    n != (uint32_t)nf * EXPERT_SLOT_PARTS)
		n = 0;
	for (int i = 0; i < nf; i++) {
		const struct ee_xdf *d = &xc->dfly[i];
		int ok = n > 0;
		for (int p = 0; p < EXPERT_SLOT_PARTS && n; p++) {
			const struct abi_cpl *c = &cp[p * nf + i];
			ok &= ABI_CPL_STATUS(c->word1) == ABI_ST_OK;
			ee_xc_iv_add(xc, c->t_start, c->t_end, 0);
			if (prof_g)
				prof_card_async("detached expert fill", d->ch, c->t_start, c->t_end,
						xc->lay.len[p], d->s);
		}
		xc->cache.flags[d->s] &= (uint8_t)~EXPERT_SLOT_INFLIGHT;
		xc->pend_fid[d->s] = 0;
		if (!ok) {
			expert_cache_drop(&xc->cache, d->s);
			xc->df_failed++;
		}
	}
	xc->dl_fence = 0;
	xc->n_dfly = 0;
	ee_xc_account(xc);
	return 1;
}

/* Before the sequence rewinds or ends: fills never submitted are undone, the list in flight
 * lands (or its slots are emptied when it does not). */
void card_xc_drain(struct ee *e)
{
	struct ee_xc *xc = e->xc;
	if (!xc || !xc->async)
		return;
	ee_xc_df_drop(xc, xc->df, xc->n_df);
	xc->n_df = 0;
	if (!xc->dl_fence)
		return;
	struct backend_stats s0, s1;
	backend_stats(e->be, &s0);
	int r = ee_xc_dl_collect(e, EE_TIMEOUT_MS);
	backend_stats(e->be, &s1);
	xc->drain_ns += (double)(s1.card_ns - s0.card_ns);
	if (r < 0) {
		/* the card never finished it: nothing in those slots can be trusted; the list stays
		 * in flight, so the slots stay out of use (flagged) */
		for (int i = 0; i < xc->n_dfly; i++)
			expert_cache_drop(&xc->cache, xc->dfly[i].s);
		for (int i = 0; i < xc->n_dfly; i++)
			xc->cache.flags[xc->dfly[i].s] |= EXPERT_SLOT_INFLIGHT;
	}
}

/* The host run of expert f for router rank j: out = route_w * down(silu(gate x) * up x), the
 * card's fp8_gemm calls exactly (X_F32 quantizes inside; ACCUM onto zeros gives route_w * acc). */
static int ee_xc_host_expert(struct ee *e, const struct ffn_weights *f, float rw, float *out)
{
	struct ee_xc *xc = e->xc;
	const struct config *c = e->c;
	int D = c->hidden_size, I = c->moe_intermediate_size;
	uint32_t ue = c->quantization_config.ue8m0 ? FP8_GEMM_UE8M0 : 0;
	int r = fp8_gemm(e->hxn, NULL, f->gate.w, f->gate.scale, f->up.w, f->up.scale, xc->hid,
			 NULL, NULL, 1, I, D, FP8_GEMM_X_F32 | FP8_GEMM_SILU_MUL | ue, 0, 0);
	memset(out, 0, sizeof(float) * (size_t)D);
	if (!r)
		r = fp8_gemm(xc->hid, NULL, f->down.w, f->down.scale, NULL, NULL, out, NULL, &rw, 1,
			     D, I, FP8_GEMM_X_F32 | FP8_GEMM_ACCUM | ue, 0, 0);
	return r;
}

/* One layer step of the cache after the router (card_xc_route). */
struct ee_xc_step {
	int li;			       /* layer */
	const int *idx;		       /* [k] experts the router chose, in its order */
	const float *w;		       /* [k] their route weights */
	int df_free;		       /* no detached list in flight: this step may add fills */
	int miss[EE_MAX_TOPK], n_miss; /* router ranks not resident */
	int host[EE_MAX_TOPK], n_host; /* router ranks run on the host */
	int n_fill;		       /* demand fills queued */
	double ch_t[ABI_MAX_DMA];      /* modeled s from the route each H2C channel is busy for */
	double host_t;		       /* modeled s from the route the host is busy for */
};

/* The H2C channel whose queued fills end first. */
static int ee_xc_least_loaded(const struct ee_xc *xc, const double *ch_t)
{
	int ci = 0;
	for (int q = 1; q < xc->n_h2c; q++)
		ci = ch_t[q] < ch_t[ci] ? q : ci;
	return ci;
}

/* PIN: every EE_XC_REPIN tokens, at the first MoE layer (nothing locked then), pins the hottest
 * half of the slots by measured load; the fills land before a barrier. */
static int ee_xc_repin(struct ee *e, int li, int pos)
{
	struct ee_xc *xc = e->xc;
	int r;
	if (xc->cache.policy != EXPERT_POLICY_PIN || li != e->c->first_k_dense_replace ||
	    pos <= 0 || pos % EE_XC_REPIN)
		return 0;
	memcpy(xc->key0, xc->cache.slot_key, sizeof(int32_t) * (size_t)xc->cache.n_slots);
	if ((r = expert_cache_repin(&xc->cache, xc->cache.n_slots / 2)) < 0 && r != -ENOSPC)
		return r;
	int nf = 0;
	for (int s = 0; s < xc->cache.n_slots; s++) {
		int key = xc->cache.slot_key[s];
		if (key < 0 || key == xc->key0[s])
			continue;
		const struct ffn_weights *f =
		    &e->L[key / xc->cache.n_experts].lw->experts[key % xc->cache.n_experts];
		TRY(card_xc_fill_cmds(e, f, s, xc->h2c[nf++ % xc->n_h2c], 0, 0));
		xc->pin_fills++;
	}
	return nf ? card_barrier(e) : 0;
}

/* The last look-ahead's recall: of the experts it predicted for layer li, those chosen. */
static void ee_xc_score_prediction(struct ee_xc *xc, int li, const int *idx, int k)
{
	if (xc->pred_layer != li)
		return;
	for (int j = 0; j < k; j++)
		for (int i = 0; i < k; i++)
			xc->pf_pred_hit += xc->pred[i] == idx[j];
	xc->pf_pred += (uint64_t)k;
}

/* Demand lookups: hits lock their slots first so that no fill of this step evicts them; a hit
 * whose detached fill is still on its way waits for its fence. The misses go to st->miss. */
static void ee_xc_lookup(struct ee *e, struct ee_xc_step *st)
{
	struct ee_xc *xc = e->xc;
	for (int j = 0; j < e->c->num_experts_per_tok; j++) {
		xc->fid[j] = 0;
		uint64_t pu0 = xc->cache.st.prefetch_used;
		int s = expert_cache_access(&xc->cache, st->li, st->idx[j], UINT64_MAX);
		xc->accesses++;
		xc->slot[j] = s;
		if (s >= 0 && (xc->cache.flags[s] & EXPERT_SLOT_INFLIGHT)) {
			xc->fid[j] = xc->pend_fid[s];
			xc->fval[j] = xc->pend_fval[s];
		}
		if (s >= 0) {
			xc->hits++;
			xc->pf_used += xc->cache.st.prefetch_used - pu0;
			expert_cache_event(&xc->cache, EXPERT_EV_HIT, st->li, st->idx[j]);
		} else {
			st->miss[st->n_miss++] = j;
		}
	}
}

/* Miss j by DMA on channel ci: the policy's slot, six fills whose last signals a fresh fence that
 * the gate|up GEMM waits on. Returns 0, 1 when every slot is locked (the host runs it), or a
 * negative errno. */
static int ee_xc_miss_dma(struct ee *e, struct ee_xc_step *st, int j, int ci)
{
	struct ee_xc *xc = e->xc;
	int victim = -1, li = st->li, x = st->idx[j];
	int s = expert_cache_fill(&xc->cache, li, x, UINT64_MAX, 0, &victim);
	if (s < 0)
		return 1;
	if (victim >= 0) {
		xc->evictions++;
		expert_cache_event(&xc->cache, EXPERT_EV_EVICT, victim / xc->cache.n_experts,
				   victim % xc->cache.n_experts);
	}
	/* fence ids 1..EE_XC_DFENCE0-1, round robin (the rest are the detached fills'); a list
	 * holds at most k signalling fills and every ring 0 list completes before the next one */
	uint32_t fid = xc->next_fence % (EE_XC_DFENCE0 - 1) + 1;
	xc->next_fence = fid;
	xc->fid[j] = fid;
	xc->fval[j] = ++xc->fence_val[fid];
	xc->slot[j] = s;
	TRY(card_xc_fill_cmds(e, &e->L[li].lw->experts[x], s, xc->h2c[ci], fid, xc->fval[j]));
	xc->miss_dma++;
	expert_cache_event(&xc->cache, EXPERT_EV_MISS_DMA, li, x);
	return 0;
}

/* Miss j on the host (ee_xc_host_expert): route_w * y goes to its card buffer for the merge;
 * the host is modeled busy until h_end. */
static int ee_xc_miss_host(struct ee *e, struct ee_xc_step *st, int j, double h_end)
{
	struct ee_xc *xc = e->xc;
	const struct ffn_weights *f = &e->L[st->li].lw->experts[st->idx[j]];
	double t0 = now_s();
	if (prof_g)
		prof_host("schedule", "host", -1);
	int r = ee_xc_host_expert(e, f, st->w[j], xc->hout);
	if (prof_g)
		prof_host("expert on the host (miss)", "host expert", st->li);
	if (r)
		return r;
	TRY(card_write(e, xc->hres[j], xc->hout, sizeof(float) * (size_t)e->c->hidden_size));
	e->t_host += now_s() - t0;
	xc->slot[j] = -1;
	st->host_t = h_end;
	xc->host_layer_s = h_end;
	xc->miss_host++;
	expert_cache_event(&xc->cache, EXPERT_EV_MISS_HOST, st->li, st->idx[j]);
	st->host[st->n_host++] = j;
	return 0;
}

/* Every miss, DMA'd or run on the host: off, always, or auto by expert_miss_on_host on the modeled
 * DMA finish (the channels in turn), the time the card needs the expert (after the shared expert
 * and the hits, over the board's GEMM CUs) and the host finishing it. */
static int ee_xc_misses(struct ee *e, struct ee_xc_step *st)
{
	struct ee_xc *xc = e->xc;
	int hits = e->c->num_experts_per_tok - st->n_miss;
	double eb = (double)xc->lay.payload;
	int ncu = xc->gemm_cus;
	int rounds = (1 + hits + ncu - 1) / ncu; /* the shared expert and the hits, ncu at a time */
	double ahead = rounds * xc->gemm_s;
	/* the host's output reaches the card as one f32 row over the link */
	double merge = (double)e->c->hidden_size * 4 / xc->dma_bps + xc->dma_lat_s;
	for (int m = 0; m < st->n_miss; m++) {
		int j = st->miss[m], ci = st->n_fill % xc->n_h2c, r;
		double dma_end =
		    st->ch_t[ci] + eb / xc->dma_bps + EXPERT_SLOT_PARTS * xc->dma_lat_s;
		double need = ahead + m * xc->gemm_s / ncu;
		double h_end = st->host_t + eb / xc->host_bps;
		int on_host = xc->host_mode == 2 ||
			      (xc->host_mode == 1 &&
			       expert_miss_on_host(dma_end, need, h_end, merge, xc->gemm_s));
		if (!on_host) {
			if ((r = ee_xc_miss_dma(e, st, j, ci)) < 0)
				return r;
			on_host = r; /* every slot locked: run it on the host */
			if (!on_host) {
				st->ch_t[ci] = dma_end;
				st->n_fill++;
			}
		}
		if (on_host)
			TRY(ee_xc_miss_host(e, st, j, h_end));
	}
	return 0;
}

/* auto: a host-run miss is filled behind the card's work (a background fill at the head of the
 * list after the demand fills, flagged like a prefetch) when a channel can land it before this
 * list's GEMMs end (link budget); the slot stays locked until the list completes, so no other
 * fill of the list takes it over. Detached: the fill runs on across the next layers; in the list:
 * only on a channel no demand fill uses, landing within the list. */
static int ee_xc_bg_fills(struct ee *e, struct ee_xc_step *st)
{
	struct ee_xc *xc = e->xc;
	double eb = (double)xc->lay.payload;
	double budget = (1 + e->c->num_experts_per_tok - st->n_host) * xc->gemm_s;
	for (int m = 0; xc->host_mode == 1 && m < st->n_host; m++) {
		int ci = ee_xc_least_loaded(xc, st->ch_t);
		double end = st->ch_t[ci] + eb / xc->dma_bps + EXPERT_SLOT_PARTS * xc->dma_lat_s;
		if (xc->async ? !st->df_free || xc->n_df >= EE_XC_NDF
			      : st->ch_t[ci] > 0 || end > budget)
			break;
		int victim = -1, x = st->idx[st->host[m]];
		uint64_t w0 = xc->cache.st.prefetch_wasted;
		int s = expert_cache_fill(&xc->cache, st->li, x, UINT64_MAX, 1, &victim);
		if (s < 0)
			break;
		expert_cache_lock(&xc->cache, s);
		xc->pf_wasted += xc->cache.st.prefetch_wasted - w0;
		if (victim >= 0)
			xc->evictions++;
		st->ch_t[ci] = end;
		const struct ffn_weights *f = &e->L[st->li].lw->experts[x];
		if (xc->async)
			TRY(ee_xc_df_add(e, f, s, xc->h2c[ci]));
		else
			TRY(card_xc_fill_cmds(e, f, s, xc->h2c[ci], 0, 0));
		xc->bg_fills++;
	}
	return 0;
}

/* Look-ahead (--expert-prefetch): the next MoE layer's gate on this residual (after attention),
 * its post-attention norm first, as the trace writer predicts (expert_trace.h pred1); the
 * predicted experts not resident are filled ahead, detached on the least loaded channel or
 * queued for card_moe to spread over the down chain. */
static int ee_xc_prefetch(struct ee *e, struct ee_xc_step *st)
{
	struct ee_xc *xc = e->xc;
	const struct config *c = e->c;
	int k = c->num_experts_per_tok, nl = st->li + 1;
	double eb = (double)xc->lay.payload;
	xc->pred_layer = -1;
	if (!xc->prefetch || nl >= c->num_hidden_layers || !e->L[nl].moe)
		return 0;
	const struct layer_weights *nw = e->L[nl].lw;
	TRY(card_read(e, e->x, xc->hres_x, sizeof(float) * (size_t)c->hidden_size));
	TRY(expert_trace_predict(c, nw, &e->kc, xc->hres_x, 1, xc->hout, xc->plog, xc->pred));
	xc->pred_layer = nl;
	/* predicted experts already resident are kept for their use: no fill of this list may
	 * evict them (locks end when the list completes) */
	for (int j = 0; j < k; j++)
		if (xc->pred[j] >= 0 && xc->pred[j] < c->n_routed_experts)
			expert_cache_lock(&xc->cache,
					  expert_cache_lookup(&xc->cache, nl, xc->pred[j]));
	for (int j = 0; j < k; j++) {
		int pe = xc->pred[j];
		if (pe < 0 || pe >= c->n_routed_experts ||
		    expert_cache_lookup(&xc->cache, nl, pe) >= 0)
			continue;
		if (xc->async && (!st->df_free || xc->n_df >= EE_XC_NDF))
			break;
		int victim = -1;
		uint64_t w0 = xc->cache.st.prefetch_wasted;
		int s = expert_cache_fill(&xc->cache, nl, pe, UINT64_MAX, 1, &victim);
		if (s < 0)
			break;
		xc->pf_wasted += xc->cache.st.prefetch_wasted - w0;
		if (victim >= 0) {
			xc->evictions++;
			expert_cache_event(&xc->cache, EXPERT_EV_EVICT,
					   victim / xc->cache.n_experts,
					   victim % xc->cache.n_experts);
		}
		expert_cache_lock(&xc->cache, s);
		if (xc->async) {
			int ci = ee_xc_least_loaded(xc, st->ch_t);
			st->ch_t[ci] += eb / xc->dma_bps + EXPERT_SLOT_PARTS * xc->dma_lat_s;
			TRY(ee_xc_df_add(e, &nw->experts[pe], s, xc->h2c[ci]));
		} else {
			xc->pf_key[xc->n_pf] = s;
			xc->pf_exp[xc->n_pf] = pe;
			xc->pf_ch[xc->n_pf] = xc->n_pf % xc->n_h2c;
			xc->pf_layer[xc->n_pf++] = nl;
		}
		xc->pf_issued++;
		expert_cache_event(&xc->cache, EXPERT_EV_PREFETCH, nl, pe);
	}
	return 0;
}

/* After routing layer li: hits, misses (DMA or host), background fills of host-run misses,
 * prefetch of the next MoE layer. */
int card_xc_route(struct ee *e, int li, int pos, const int *idx, const float *w)
{
	struct ee_xc *xc = e->xc;
	struct ee_xc_step st = {.li = li, .idx = idx, .w = w};
	xc->cache.ev_pos = pos;
	xc->host_add_cmd = -1;
	xc->host_layer_s = 0;
	xc->n_pf = 0;
	/* the detached list of earlier steps: when it completed, its slots need no wait and failed
	 * fills are misses now; while it runs, this step issues no detached fill (link budget: one
	 * list of them at a time) */
	if (xc->async && (st.df_free = ee_xc_dl_collect(e, 0)) == 0)
		xc->df_busy_steps++;
	TRY(ee_xc_repin(e, li, pos));
	ee_xc_score_prediction(xc, li, idx, e->c->num_experts_per_tok);
	ee_xc_lookup(e, &st);
	TRY(ee_xc_misses(e, &st));
	TRY(ee_xc_bg_fills(e, &st));
	xc->host_s += xc->host_layer_s;
	return ee_xc_prefetch(e, &st);
}

/* After a ring 0 list: its CU commands and fills go to the DMA statistics (ee_xc_account); the
 * modeled host time not covered by the card's work before the first host merge. A failed list
 * empties the slots whose fills did not land (all of the list's when its completions are
 * unknown), so no later step takes them for resident. */
void card_xc_after_list(struct ee *e, int r)
{
	struct ee_xc *xc = e->xc;
	const struct abi_cpl *cp = NULL;
	uint32_t n = 0;
	if ((r && r != -EIO) || backend_completions(e->be, &cp, &n) || n != e->list.n)
		n = 0;
	if (r) {
		for (uint32_t i = 0; i < e->list.n; i++) {
			const struct abi_cmd *c = &e->list.cmd[i];
			if (ABI_W0_OP(c->hdr.word0) == ABI_OP_DMA_FILL &&
			    (!n || ABI_CPL_STATUS(cp[i].word1) != ABI_ST_OK))
				expert_cache_drop(&xc->cache,
						  (int)ABI_DMA_WORD_SLOT(c->u.dma.word));
		}
	}
	uint64_t t_first = UINT64_MAX;
	for (uint32_t i = 0; i < n; i++) {
		uint32_t op = ABI_CPL_OP(cp[i].word1);
		int kind = op == ABI_OP_DMA_FILL			? 1
			   : ABI_CPL_CU(cp[i].word1) != ABI_CPL_CU_NONE ? 2
									: 0;
		if (cp[i].t_start < t_first)
			t_first = cp[i].t_start;
		if (kind)
			ee_xc_iv_add(xc, cp[i].t_start, cp[i].t_end, kind == 2);
		else if (cp[i].t_end > xc->t_seen)
			xc->t_seen = cp[i].t_end;
	}
	ee_xc_account(xc);
	if (xc->host_add_cmd >= 0 && (uint32_t)xc->host_add_cmd < n && t_first != UINT64_MAX) {
		double avail = (double)(cp[xc->host_add_cmd].t_start - t_first);
		double need = xc->host_layer_s * 1e9;
		xc->host_exposed_ns += need > avail ? need - avail : 0;
	}
	xc->host_add_cmd = -1;
	expert_cache_unlock(&xc->cache);
}

/* A new sequence: the cache's statistics restart (the slots keep their experts). */
void card_xc_restart(struct ee *e)
{
	struct ee_xc *xc = e->xc;
	xc->accesses = xc->hits = xc->miss_dma = xc->miss_host = 0;
	xc->pf_issued = xc->pf_used = xc->pf_wasted = xc->evictions = 0;
	xc->pf_pred = xc->pf_pred_hit = 0;
	xc->dma_bytes = xc->dma_busy_ns = xc->dma_exposed_ns = 0;
	xc->host_s = xc->host_exposed_ns = 0;
	xc->pin_fills = xc->bg_fills = 0;
	xc->df_fills = xc->df_failed = xc->df_busy_steps = 0;
	xc->drain_ns = 0;
	xc->n_iv = 0; /* the drain before a rewind left nothing in flight */
	xc->t_done = xc->t_seen;
}
