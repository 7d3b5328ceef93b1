/*
 * card_engine.c - the "emu" engine (engine.h): the scheduler that runs the whole model on a card
 * through host/backend/backend.h command lists; this file opens and closes it, places the weights
 * and lowers every forward into command lists (card_engine_impl.h lists the other files: the
 * expert cache in card_experts.c, statistics and the what-if in card_stats.c). At load it places
 * every FP8 matrix into card banks (round-robin over the HBM pseudo-channels, so the GEMMs that
 * run together read different banks), the norm weights, a YaRN cos/sin table and one f32 latent KV
 * cache per layer (MTP included). Per token:
 *   host: embedding row -> card x
 *   list: per layer MLA (RMSNorm, q_a / kv_a GEMMs, q_a and kv_a norms, RoPE of k_pe and q_pe,
 *         KV append, W_UK^T absorption per head, MLA attention, W_UV per head, o_proj with the
 *         residual in its epilogue, post-attention RMSNorm) then
 *         dense layer: gate|up GEMM with fused SiLU*up, down GEMM + residual (same list);
 *         MoE layer: the list is submitted; the host reads back the normed hidden state, runs the
 *         router (router.h, as the cpu engine), writes the route weights and starts the next list
 *         with the shared expert and the routed experts (fused SiLU*up; down GEMMs accumulate
 *         route_w * y in the order the router chose them), the residual add, and the next layer's
 *         MLA. So a MoE layer costs one submission and one host round trip.
 *   final RMSNorm on the card; the host reads the normed state back and runs lm_head there.
 * lm_head, the embedding and the MTP eh_proj are BF16 and must not be FP8-quantized
 * (docs/numerics.md, The cpu engine's products); the card has only the FP8 GEMM, so they run on
 * the host (kernels.h) on the state read back anyway. The absorbed attention products (W_UK^T
 * q_nope, W_UV o_lat) run on the card's FP8 GEMM in its ACT_F32 mode: f32 activations, NOT
 * quantized, times the FP8 weights (docs/model.md, MLA; docs/numerics.md, Unquantized products),
 * as the cpu engine computes them; only the f32 summation order differs (hls/README.md). W_UK^T
 * contracts over kv_b's rows, so a pre-transposed copy of each head's W_UK codes and scale blocks
 * is placed at load (FP8, card memory only); W_UV is read in place.
 * A prompt of more than one token runs the batched lowering of card_prefill.c (GEMMs of M = T)
 * when the board and the options allow it; otherwise it runs token by token through the decode
 * lists.
 * --expert-trace (expert_trace.h) records every main-model MoE layer's route after the host
 * router; its look-ahead needs the residual stream before each layer, so in trace mode (only) the
 * list is submitted at each layer start that has a MoE layer within two layers and x is read back.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "backend/backend.h"
#include "e4m3.h"
#include "engine/engine.h"
#include "sched/expert_cache.h"
#include "sched/expert_trace.h"
#include "model/kernels.h"
#include "model/pool.h"
#include "model/router.h"
#include "sched/card_engine.h"
#include "sched/card_engine_impl.h"

/* --- placement ----------------------------------------------------------------------------- */

/* Allocates bytes in bank (or the next weight bank when bank < 0) and writes src (if any). */
int card_place(struct ee *e, int bank, const void *src, size_t bytes, uint64_t *addr)
{
	if (e->dry) { /* what-if: distinct addresses (the tables' overlap rules see real ranges) */
		uint32_t bk = bank >= 0 ? (uint32_t)bank
					: e->next_bank++ % (uint32_t)(e->n_hbm ? e->n_hbm : 1);
		*addr = ABI_ADDR(bk, e->dry_cur);
		e->dry_cur += (bytes + 63) & ~(size_t)63;
		return 0;
	}
	struct backend_buf *b;
	uint32_t bk = bank >= 0 ? (uint32_t)bank : e->next_bank++ % (uint32_t)e->n_hbm;
	int r = backend_buf_alloc(e->be, bk, bytes ? bytes : 64, 64, &b);
	for (int tries = 0; r == -ENOMEM && bank < 0 && tries < e->n_hbm; tries++) {
		bk = e->next_bank++ % (uint32_t)e->n_hbm;
		r = backend_buf_alloc(e->be, bk, bytes ? bytes : 64, 64, &b);
	}
	if (r)
		return r;
	if (e->n_bufs == e->cap_bufs) {
		size_t cap = e->cap_bufs ? 2 * e->cap_bufs : 256;
		// NOLINTNEXTLINE(bugprone-sizeof-expression): e->bufs is an array of pointers
		void *p = realloc(e->bufs, cap * sizeof *e->bufs);
		if (!p) {
			backend_buf_free(e->be, b);
			return -ENOMEM;
		}
		e->bufs = p;
		e->cap_bufs = cap;
	}
	e->bufs[e->n_bufs++] = b;
	if (src && (r = backend_buf_write(e->be, b, 0, src, bytes)))
		return r;
	*addr = backend_buf_addr(b, 0);
	return 0;
}

/* Host pointer-free write into a placed range: finds the buffer by address. */
static struct backend_buf *ee_buf(struct ee *e, uint64_t addr, size_t *off)
{
	for (size_t i = e->n_bufs; i-- > 0;) {
		uint64_t a = backend_buf_addr(e->bufs[i], 0);
		if (ABI_ADDR_BANK(a) == ABI_ADDR_BANK(addr) && addr >= a &&
		    addr - a < backend_buf_size(e->bufs[i])) {
			*off = (size_t)(addr - a);
			return e->bufs[i];
		}
	}
	return NULL;
}

/* One transfer over the link (dir 0: src to the card, 1: the card to dst), timed for the
 * profiler from the backend's link counters when it is on. */
static int card_xfer(struct ee *e, int dir, uint64_t addr, const void *src, void *dst, size_t n)
{
	size_t off;
	struct backend_buf *b = ee_buf(e, addr, &off);
	if (!b)
		return -EFAULT;
	struct backend_stats s0 = {0}, s1;
	int on = prof_g != NULL;
	if (on)
		backend_stats(e->be, &s0);
	int r = dir ? backend_buf_read(e->be, b, off, dst, n)
		    : backend_buf_write(e->be, b, off, src, n);
	if (on) {
		backend_stats(e->be, &s1);
		prof_link(dir, n,
			  dir ? (double)(s1.c2h_ns - s0.c2h_ns) : (double)(s1.h2c_ns - s0.h2c_ns));
	}
	return r;
}

int card_write(struct ee *e, uint64_t addr, const void *src, size_t n)
{
	return e->dry ? 0 : card_xfer(e, 0, addr, src, NULL, n);
}

int card_read(struct ee *e, uint64_t addr, void *dst, size_t n)
{
	if (e->dry) {
		memset(dst, 0, n);
		return 0;
	}
	return card_xfer(e, 1, addr, NULL, dst, n);
}

static size_t scale_bytes(int rows, int cols)
{
	return (size_t)((rows + 127) / 128) * ((cols + 127) / 128) * sizeof(float);
}

/* Places one FP8 matrix, or the pair (a, b) back to back when b is given. */
static int ee_mat(struct ee *e, const struct qmat *a, const struct qmat *b, struct cmat *out,
		  char *err, size_t errlen)
{
	if (a->fmt != QMAT_FP8 ||
	    (b && (b->fmt != QMAT_FP8 || b->rows != a->rows || b->cols != a->cols))) {
		snprintf(err, errlen, "%s: the card runs FP8 weights only", a->name);
		return -EINVAL;
	}
	size_t cb = (size_t)a->rows * a->cols, sb = scale_bytes(a->rows, a->cols);
	int n = b ? 2 : 1, r;
	out->rows = a->rows;
	out->cols = a->cols;
	if ((r = card_place(e, -1, NULL, cb * n, &out->w)) ||
	    (r = card_place(e, -1, NULL, sb * n, &out->sw)))
		goto fail;
	if ((r = card_write(e, out->w, a->w, cb)) || (r = card_write(e, out->sw, a->scale, sb)))
		goto fail;
	if (b && ((r = card_write(e, out->w + cb, b->w, cb)) ||
		  (r = card_write(e, out->sw + sb, b->scale, sb))))
		goto fail;
	return 0;
fail:
	snprintf(err, errlen, "%s: cannot place on the card (%s)", a->name, strerror(-r));
	return r;
}

static int ee_vec(struct ee *e, const float *v, int n, uint64_t *addr)
{
	return card_place(e, (int)e->act_bank, v, sizeof(float) * (size_t)n, addr);
}

/* Head-sliced views of kv_b need each head's W_UK / W_UV rows inside whole scale blocks. */
static int slice_ok(int r0, int n)
{
	return r0 % 128 == 0 || (r0 % 128) + n <= 128;
}

/* card_engine_impl.h: W_UK^T of every head, transposed from kv_b's W_UK rows (each head's W_UK /
 * W_UV rows must sit in whole scale blocks). */
int card_uk_t_build(const struct ee *e, const struct layer_weights *lw, uint8_t **codes,
		    float **scales, char *err, size_t errlen)
{
	const struct config *c = e->c;
	int H = c->num_attention_heads, nope = c->qk_nope_head_dim, vd = c->v_head_dim;
	int kvl = c->kv_lora_rank;
	int kbn = (nope + 127) / 128, kbl = (kvl + 127) / 128;
	size_t hcodes = (size_t)kvl * nope, hsc = (size_t)kbl * kbn;
	*codes = NULL;
	*scales = NULL;
	for (int h = 0; h < H; h++) {
		int r0 = h * (nope + vd);
		if (!slice_ok(r0, nope) || !slice_ok(r0 + nope, vd)) {
			snprintf(err, errlen,
				 "%s: head %d's W_UK/W_UV rows straddle a 128-row scale "
				 "block (nope %d, v %d): not supported on the card",
				 lw->kv_b_proj.name, h, nope, vd);
			return -EINVAL;
		}
	}
	uint8_t *t = malloc(hcodes * H + 1);
	float *ts = malloc(sizeof(float) * hsc * H + 1);
	if (!t || !ts) {
		free(t);
		free(ts);
		return -ENOMEM;
	}
	const uint8_t *kb = lw->kv_b_proj.w;
	const float *ks = lw->kv_b_proj.scale;
	int sc = lw->kv_b_proj.scale_cols;
	for (int h = 0; h < H; h++) {
		int r0 = h * (nope + vd);
		for (int i = 0; i < kvl; i++)
			for (int d = 0; d < nope; d++)
				t[(size_t)h * hcodes + (size_t)i * nope + d] =
				    kb[(size_t)(r0 + d) * kvl + i];
		for (int ib = 0; ib < kbl; ib++)
			for (int db = 0; db < kbn; db++)
				ts[(size_t)h * hsc + (size_t)ib * kbn + db] =
				    ks[(size_t)(r0 / 128 + db) * sc + ib];
	}
	*codes = t;
	*scales = ts;
	return 0;
}

/* W_UK^T of every head in card memory: codes [H][kvl][nope], scales [H][kbl][kbn]. 0, -EINVAL
 * (err) or a placement error. */
static int ee_place_uk_t(struct ee *e, struct ee_layer *L, const struct layer_weights *lw,
			 char *err, size_t errlen)
{
	const struct config *c = e->c;
	int H = c->num_attention_heads, nope = c->qk_nope_head_dim, kvl = c->kv_lora_rank;
	size_t hcodes = (size_t)kvl * nope;
	size_t hsc = (size_t)((kvl + 127) / 128) * ((nope + 127) / 128);
	uint8_t *t;
	float *ts;
	int r = card_uk_t_build(e, lw, &t, &ts, err, errlen);
	if (r)
		return r;
	r = card_place(e, -1, t, hcodes * H, &L->uk_t);
	if (!r)
		r = card_place(e, -1, ts, sizeof(float) * hsc * H, &L->uk_t_s);
	free(t);
	free(ts);
	return r;
}

/* Places one decoder layer: norms, attention matrices and each head's W_UK^T copy, its latent KV
 * cache, and the dense FFN or the shared and (without the expert cache) routed experts. */
static int ee_layer_init(struct ee *e, struct ee_layer *L, const struct layer_weights *lw,
			 char *err, size_t errlen)
{
	const struct config *c = e->c;
	int kvl = c->kv_lora_rank, rope = c->qk_rope_head_dim, r;
	L->lw = lw;
	// NOLINTNEXTLINE(clang-analyzer-core.NullDereference): w->mtp is passed only when set
	L->moe = lw->is_moe;
	if ((r = ee_vec(e, lw->input_layernorm, c->hidden_size, &L->in_norm)) ||
	    (r = ee_vec(e, lw->post_attention_layernorm, c->hidden_size, &L->post_norm)) ||
	    (r = ee_vec(e, lw->kv_a_layernorm, kvl, &L->kv_a_norm)))
		return r;
	if (c->q_lora_rank > 0 && (r = ee_vec(e, lw->q_a_layernorm, c->q_lora_rank, &L->q_a_norm)))
		return r;
	if (e->gv) { /* every matrix striped over the GEMV lanes (and the cache, gv_attn) */
		if (!e->gv_attn) { /* (the striped cache's slots: card_gemv_layer) */
			e->kv_slot_b = sizeof(float) * (size_t)e->max_seq * (kvl + rope);
			if ((r = card_place(e, (int)e->act_bank, NULL,
					    e->kv_slot_b * (size_t)e->n_seq, &L->kv)))
				return r;
		}
		if ((r = card_gemv_layer(e, L, lw, err, errlen)))
			return r;
		/* the batched prefill's GEMMs read the plain layout on the fp8_gemm CUs */
		return e->pf_on ? card_layer_plain(e, L, lw, err, errlen) : 0;
	}
	if (e->gv_attn) { /* the fp8_gemm lowering's latent cache striped for mla_attn_lanes */
		if ((r = card_kv_lanes_place(e, L)))
			return r;
	} else {
		e->kv_slot_b = sizeof(float) * (size_t)e->max_seq * (kvl + rope);
		if ((r = card_place(e, (int)e->act_bank, NULL, e->kv_slot_b * (size_t)e->n_seq,
				    &L->kv)))
			return r;
	}
	return card_layer_plain(e, L, lw, err, errlen);
}

/* card_engine_impl.h: the attention matrices with each head's W_UK^T copy, and the dense FFN or
 * the shared and (without the expert cache) routed experts, in the plain layout. */
int card_layer_plain(struct ee *e, struct ee_layer *L, const struct layer_weights *lw, char *err,
		     size_t errlen)
{
	const struct config *c = e->c;
	int r;
	if (c->q_lora_rank > 0) {
		if ((r = ee_mat(e, &lw->q_a_proj, NULL, &L->q_a, err, errlen)) ||
		    (r = ee_mat(e, &lw->q_b_proj, NULL, &L->q_b, err, errlen)))
			return r;
	} else if ((r = ee_mat(e, &lw->q_proj, NULL, &L->q_b, err, errlen))) {
		return r;
	}
	if ((r = ee_mat(e, &lw->kv_a_proj_with_mqa, NULL, &L->kv_a, err, errlen)) ||
	    (r = ee_mat(e, &lw->kv_b_proj, NULL, &L->kv_b, err, errlen)) ||
	    (r = ee_mat(e, &lw->o_proj, NULL, &L->o, err, errlen)))
		return r;
	if ((r = ee_place_uk_t(e, L, lw, err, errlen)))
		return r;
	if (!lw->is_moe)
		return ee_mat(e, &lw->mlp.gate, &lw->mlp.up, &L->gu, err, errlen) ||
			       ee_mat(e, &lw->mlp.down, NULL, &L->down, err, errlen)
			   ? -EINVAL
			   : 0;
	int E = c->n_routed_experts;
	L->ex_gu = calloc((size_t)E, sizeof *L->ex_gu);
	L->ex_down = calloc((size_t)E, sizeof *L->ex_down);
	if (!L->ex_gu || !L->ex_down)
		return -ENOMEM;
	for (int x = 0; x < E && !e->xc; x++) /* with the cache they stay in host memory */
		if ((r = ee_mat(e, &lw->experts[x].gate, &lw->experts[x].up, &L->ex_gu[x], err,
				errlen)) ||
		    (r = ee_mat(e, &lw->experts[x].down, NULL, &L->ex_down[x], err, errlen)))
			return r;
	if (lw->shared.gate.rows > 0 &&
	    ((r = ee_mat(e, &lw->shared.gate, &lw->shared.up, &L->sh_gu, err, errlen)) ||
	     (r = ee_mat(e, &lw->shared.down, NULL, &L->sh_down, err, errlen))))
		return r;
	return 0;
}

/* --- command builders -------------------------------------------------------------------- */

/* Next command of the list; a full list is submitted first (a flush is also a full barrier). */
struct abi_cmd *card_cmd(struct ee *e, enum abi_op op, const char *what)
{
	struct ee_list *l = &e->list;
	if (l->n >= BACKEND_MAX_LIST && card_flush(e))
		return NULL;
	struct abi_cmd *c = &l->cmd[l->n];
	memset(c, 0, sizeof *c);
	abi_cmd_hdr_set(&c->hdr, op, l->n);
	c->hdr.word2 = ABI_W2(0, EE_CMD_TIMEOUT);
	l->gt[l->n] = NULL;
	l->layer[l->n] = (int16_t)e->cur_layer;
	l->what[l->n++] = what;
	return c;
}

uint32_t card_fence_signal(struct ee *e, uint32_t i, uint32_t id)
{
	uint32_t v = ++e->pf.fv[id];
	abi_cmd_signal(&e->list.cmd[i].hdr, id, v);
	return v;
}

void card_fence_wait_at(struct ee *e, uint32_t i0, uint32_t id, uint32_t v)
{
	if (e->list.n > i0)
		abi_cmd_wait(&e->list.cmd[i0].hdr, id, v);
}

int card_barrier(struct ee *e)
{
	const struct ee_list *l = &e->list;
	if (l->n && ABI_W0_OP(l->cmd[l->n - 1].hdr.word0) == ABI_OP_BARRIER)
		return 0; /* one barrier orders as well as two in a row */
	return card_cmd(e, ABI_OP_BARRIER, "barrier") ? 0 : -E2BIG;
}

/* y[1][n] (+)= act(a[1][k] f32) W^T with the given epilogue flags; rw: route weight address. */
int card_gemm(struct ee *e, const char *what, uint64_t a, const struct cmat *W, uint64_t y,
	      uint32_t flags, uint64_t rw, uint64_t w_off, uint64_t sw_off, int n, int k)
{
	return card_gemm_m(e, what, a, 0, W, y, 0, flags, rw, w_off, sw_off, n, k, 1);
}

/* y[M][n] (+)= act(a[M][k] f32) W^T, rows of a lda and of y ldy elements apart (0: dense). */
int card_gemm_m(struct ee *e, const char *what, uint64_t a, uint32_t lda, const struct cmat *W,
		uint64_t y, uint32_t ldy, uint32_t flags, uint64_t rw, uint64_t w_off,
		uint64_t sw_off, int n, int k, int M)
{
	struct abi_cmd *c = card_cmd(e, ABI_OP_GEMM_FP8, what);
	if (!c)
		return -E2BIG;
	c->u.gemm.a = a;
	c->u.gemm.sa = rw;
	c->u.gemm.w = W->w + w_off;
	c->u.gemm.sw = W->sw + sw_off;
	c->u.gemm.y = y;
	c->u.gemm.m = (uint32_t)M;
	c->u.gemm.lda = lda;
	c->u.gemm.ldy = ldy;
	c->u.gemm.n = (uint32_t)(n ? n : W->rows);
	c->u.gemm.k = (uint32_t)(k ? k : W->cols);
	c->u.gemm.flags = ABI_GEMM_F_X_F32 | flags |
			  (e->c->quantization_config.ue8m0 && !(flags & ABI_GEMM_F_ACT_F32)
			       ? ABI_GEMM_F_UE8M0
			       : 0); /* ACT_F32: nothing is quantized */
	return 0;
}

int card_vecop(struct ee *e, enum abi_op op, const char *what, uint64_t x, uint64_t x2, uint64_t w,
	       uint64_t out, uint32_t rows, uint32_t cols, uint32_t lda, uint32_t ldo, uint32_t pu,
	       float pf, uint64_t tab)
{
	struct abi_cmd *c = card_cmd(e, op, what);
	if (!c)
		return -E2BIG;
	c->u.vec.x = x;
	c->u.vec.x2 = x2;
	c->u.vec.w = w;
	c->u.vec.out = out;
	c->u.vec.rows = rows;
	c->u.vec.cols = cols;
	c->u.vec.lda = lda;
	c->u.vec.ldo = ldo;
	c->u.vec.param_u = pu;
	memcpy(&c->u.vec.param_f, &pf, 4);
	c->u.vec.tab = tab;
	return 0;
}

int card_chain_off(void)
{
	const char *v = getenv("MOECARD_BARRIER_FENCES");
	return v && !strcmp(v, "0");
}

int card_only_cu(const struct abi_board *b, uint32_t op)
{
	int cu = -1;
	for (uint32_t k = 0; k < ABI_BOARD_N_CUS(b->counts); k++)
		if (b->cus[k].ops_mask >> op & 1) {
			if (cu >= 0)
				return -1;
			cu = (int)k;
		}
	return cu;
}

/* True when the n commands at a run on one CU, which then runs them one after another: the
 * firmware starts the next only after the CU's previous command completed, so the last one's
 * completion means all of them completed. (One command: trivially.) */
static int card_one_cu(const struct abi_board *b, const struct abi_cmd *a, uint32_t n)
{
	if (n == 1)
		return 1;
	int cu = card_only_cu(b, ABI_W0_OP(a[0].hdr.word0));
	for (uint32_t i = 1; i < n && cu >= 0; i++)
		if (card_only_cu(b, ABI_W0_OP(a[i].hdr.word0)) != cu)
			return 0;
	return cu >= 0;
}

/*
 * Drops the barriers a fence does the work of: the firmware starts a ring's commands in order, so
 * a barrier after exactly one command orders what follows it just as well when that command
 * signals a fence and the first command after the barrier waits for it (everything later starts
 * after that one started). The same holds after several commands that can only run on one CU
 * (it runs them one after another, so the last one's completion covers them all). Each such
 * barrier is a command the firmware no longer takes and completes. Barriers at the start or the
 * end of a list go too (a list starts after the one before it completed, and is waited for
 * whole). Kept: a barrier after commands that may run on different CUs, or when the command
 * before it already signals or the one after it already waits. Lists with the expert cache keep
 * theirs (its fills own the fence ids and their indices).
 */
static void card_fence_chain(struct ee *e)
{
	struct ee_list *l = &e->list;
	if (e->xc || e->chain_off || l->n < 2)
		return;
	const struct abi_board *bb = backend_abi_board(e->be);
	uint32_t out = 0, seg = 0; /* output index where the current segment starts */
	for (uint32_t i = 0; i < l->n; i++) {
		if (ABI_W0_OP(l->cmd[i].hdr.word0) == ABI_OP_BARRIER) {
			uint32_t nseg = out - seg, nxt = i + 1;
			int drop = nseg == 0 || nxt == l->n;
			if (!drop && card_one_cu(bb, &l->cmd[seg], nseg) &&
			    ABI_W0_OP(l->cmd[nxt].hdr.word0) != ABI_OP_BARRIER) {
				struct abi_cmd *a = &l->cmd[out - 1], *b = &l->cmd[nxt];
				if (!(ABI_W2_FLAGS(a->hdr.word2) & ABI_CMD_F_SIGNAL) &&
				    !(ABI_W2_FLAGS(b->hdr.word2) & ABI_CMD_F_WAIT)) {
					e->chain_val++;
					abi_cmd_signal(&a->hdr, EE_CHAIN_FENCE, e->chain_val);
					abi_cmd_wait(&b->hdr, EE_CHAIN_FENCE, e->chain_val);
					drop = 1;
				}
			}
			/* a barrier that stays goes into the command after it (DRAIN): the same
			 * order, one command fewer for the firmware to take */
			if (!drop && nxt < l->n &&
			    ABI_W0_OP(l->cmd[nxt].hdr.word0) != ABI_OP_BARRIER &&
			    !(ABI_W2_FLAGS(l->cmd[i].hdr.word2) &
			      (ABI_CMD_F_WAIT | ABI_CMD_F_SIGNAL))) {
				l->cmd[nxt].hdr.word2 |= ABI_CMD_F_DRAIN;
				drop = 1;
			}
			seg = out + !drop; /* the next segment starts after the kept barrier */
			if (drop)
				continue;
		}
		if (out != i) {
			l->cmd[out] = l->cmd[i];
			l->what[out] = l->what[i];
			l->gt[out] = l->gt[i];
			l->layer[out] = l->layer[i];
		}
		l->cmd[out].hdr.tag = out;
		out++;
	}
	l->n = out;
}

/* The list that just ran, to the profiler: its completions, labels, layers and each command's
 * bytes and banks; busy0 is the backend's busy time before the submission. */
static void card_prof_list(struct ee *e, double busy0)
{
	const struct abi_cpl *cpl;
	uint32_t n;
	struct backend_stats s1;
	static struct prof_cmd info[BACKEND_MAX_LIST];
	static uint64_t lane[BACKEND_MAX_LIST][FP8_GEMV_MAX_LANES];
	backend_completions(e->be, &cpl, &n);
	backend_stats(e->be, &s1);
	if (n > e->list.n)
		n = e->list.n;
	for (uint32_t i = 0; i < n; i++)
		card_prof_cmd(e, i, &info[i], lane[i]);
	prof_card_list(e->list.cmd, cpl, e->list.what, e->list.layer, info, n,
		       (double)s1.busy_ns - busy0);
	prof_g->other = card_prof_other;
	prof_g->other_ctx = e;
}

/* Submits the list and waits for it. */
int card_flush(struct ee *e)
{
	if (!e->list.n)
		return e->xc ? card_xc_dl_submit(e) : 0;
	card_fence_chain(e);
	if (e->dry) {
		card_dry_time(e);
		e->list.n = 0;
		return 0;
	}
	uint64_t f;
	double busy0 = 0;
	if (prof_g) {
		struct backend_stats s0;
		prof_host("schedule", "host", -1); /* building the list */
		backend_stats(e->be, &s0);
		busy0 = (double)s0.busy_ns;
	}
	double t0 = now_s();
	int r = backend_submit(e->be, 0, e->list.cmd, e->list.n, &f);
	/* the detached fills queued in this step start now too and run on behind this list; a
	 * failed submit has emptied their slots (misses later), which this list does not read */
	if (!r && e->xc)
		(void)card_xc_dl_submit(e);
	if (!r)
		r = backend_wait(e->be, f, EE_TIMEOUT_MS);
	e->t_wait += now_s() - t0;
	if (r == -EIO && getenv("MOECARD_EMU_DEBUG")) {
		const struct abi_cpl *cp;
		uint32_t nn;
		backend_completions(e->be, &cp, &nn);
		for (uint32_t i = 0; i < nn; i++)
			if (ABI_CPL_STATUS(cp[i].word1))
				fprintf(stderr, "emu: layer %d cmd %u (%s): %s detail 0x%x\n",
					e->cur_layer, i, e->list.what[i],
					abi_status_name(ABI_CPL_STATUS(cp[i].word1)), cp[i].detail);
	}
	if (prof_g && r != -ETIMEDOUT)
		card_prof_list(e, busy0);
	if (e->pf.active && !r) { /* the batched prefill's GEMMs: MACs and card time */
		const struct abi_cpl *cpl;
		uint32_t n;
		backend_completions(e->be, &cpl, &n);
		for (uint32_t i = 0; i < n && i < e->list.n; i++)
			card_pf_count(e, i, ABI_CPL_OP(cpl[i].word1),
				      (double)(cpl[i].t_end - cpl[i].t_start));
	}
	if (e->xc)
		card_xc_after_list(e, r);
	e->list.n = 0;
	return r;
}

/* The batched prefill's figures of command i of the list (op, its card time ns): the MACs and
 * time of its GEMMs, and of its GEMV commands (the rows path); the emulated list's completions
 * and the dry timer both count through here. */
void card_pf_count(struct ee *e, uint32_t i, unsigned op, double ns)
{
	if (op == ABI_OP_GEMM_FP8) {
		e->pf.macs += card_gemm_macs(&e->list.cmd[i]);
		e->pf.gemm_ns += ns;
	} else if (op == ABI_OP_GEMV) {
		e->pf.gv_macs += card_gemv_macs(e->list.gt[i]);
		e->pf.gv_ns += ns;
	}
}

double card_gemm_macs(const struct abi_cmd *c)
{
	if (ABI_W0_OP(c->hdr.word0) != ABI_OP_GEMM_FP8)
		return 0;
	const struct abi_gemm *g = &c->u.gemm;
	return (double)g->m * g->n * g->k * ((g->flags & ABI_GEMM_F_SILU_MUL) ? 2 : 1);
}

/* The KV append of e->kvrow at position p of the current sequence's cache. */
static int card_mla_append(struct ee *e, const struct ee_layer *L, int p)
{
	if (e->gv_attn)
		return card_kv_append_lanes(e, L, e->cur_seq, p, 1, e->kv_fold);
	struct abi_cmd *k = card_cmd(e, ABI_OP_KV_APPEND, "kv_append");
	if (!k)
		return -E2BIG;
	k->u.kv.src = e->kvrow;
	k->u.kv.cache = ee_kv_base(e, L, e->cur_seq);
	k->u.kv.row = (uint32_t)(e->c->kv_lora_rank + e->c->qk_rope_head_dim);
	k->u.kv.pos = (uint32_t)p;
	k->u.kv.ctx_cap = (uint32_t)e->max_seq;
	return 0;
}

static int card_mla_end(struct ee *e, const struct ee_layer *L);

/* MLA sublayer of layer L at position p, through the post-attention norm into xn where the FFN
 * reads it (card_post_norm). */
int card_mla(struct ee *e, const struct ee_layer *L, int p)
{
	const struct config *c = e->c;
	int H = c->num_attention_heads, nope = c->qk_nope_head_dim, rope = c->qk_rope_head_dim;
	int vd = c->v_head_dim, kvl = c->kv_lora_rank, ql = c->q_lora_rank, row = kvl + rope;
	float eps = (float)c->rms_norm_eps;
	uint32_t qd = (uint32_t)(nope + rope);
	if (!e->gv) { /* the GEMV CU normalizes in its loader (FP8_GEMV_RMSNORM) */
		TRY(card_vecop(e, ABI_OP_RMSNORM, "input_layernorm", e->x, 0, L->in_norm, e->xn, 1,
			       (uint32_t)c->hidden_size, 0, 0, 0, eps, 0));
		TRY(card_barrier(e));
	}
	if (e->gv)
		TRY(card_mla_gemv(e, L, GV_QKV_A));
	else if (ql > 0)
		TRY(card_gemm(e, "q_a_proj", e->xn, &L->q_a, e->qa, 0, 0, 0, 0, 0, 0));
	else
		TRY(card_gemm(e, "q_proj", e->xn, &L->q_b, e->q, 0, 0, 0, 0, 0, 0));
	if (!e->gv)
		TRY(card_gemm(e, "kv_a_proj", e->xn, &L->kv_a, e->kva, 0, 0, 0, 0, 0, 0));
	TRY(card_barrier(e));
	/* the attention in head groups (card_attn_split); with q_b in slices the groups' q_b,
	 * W_UK^T and RoPE go in the groups too */
	int split = e->gv && e->gv_attn ? card_attn_split(e, L, p) : 1;
	if (split > 1 && e->q_slices == e->o_groups) {
		TRY(card_attn_groups(e, L, e->cur_seq, p, split, 1));
		return card_mla_end(e, L);
	}
	if (ql > 0 && !e->gv)
		TRY(card_vecop(e, ABI_OP_RMSNORM, "q_a_layernorm", e->qa, 0, L->q_a_norm, e->qa, 1,
			       (uint32_t)ql, 0, 0, 0, eps, 0));
	/* with q_a_layernorm in its loader, q_b runs on the GEMV CU beside the kv norm and RoPE */
	if (ql > 0 && e->gv)
		TRY(card_mla_gemv(e, L, GV_Q_B));
	if (!e->kv_fold) { /* (folded: the append normalizes and ropes kv_a's row itself) */
		TRY(card_vecop(e, ABI_OP_RMSNORM, "kv_a_layernorm", e->kva, 0, L->kv_a_norm,
			       e->kvrow, 1, (uint32_t)kvl, 0, 0, 0, eps, 0));
		TRY(card_vecop(e, ABI_OP_ROPE, "rope k_pe", e->kva + 4 * (uint64_t)kvl, 0, 0,
			       e->kvrow + 4 * (uint64_t)kvl, 1, (uint32_t)rope, 0, 0, (uint32_t)p,
			       (float)c->rope_theta, e->tab));
	}
	TRY(card_barrier(e));
	if (ql > 0 && !e->gv)
		TRY(card_gemm(e, "q_b_proj", e->qa, &L->q_b, e->q, 0, 0, 0, 0, 0, 0));
	/* (with q_b in the section before, the append goes after W_UK^T and RoPE q_pe in the list:
	 * the firmware takes commands in list order, and the GEMV is the section's longest) */
	int late = e->gv && ql > 0;
	if (!late) {
		TRY(card_mla_append(e, L, p));
		TRY(card_barrier(e));
	}
	if (e->gv)
		TRY(card_mla_gemv(e, L, GV_UK_T));
	/* q_pe of every head, roped into the attention query rows [H][kvl + rope] */
	TRY(card_vecop(e, ABI_OP_ROPE, "rope q_pe", e->q + 4 * (uint64_t)nope, 0, 0,
		       e->qcat + 4 * (uint64_t)kvl, (uint32_t)H, (uint32_t)rope, qd, (uint32_t)row,
		       (uint32_t)p, (float)c->rope_theta, e->tab));
	if (late)
		TRY(card_mla_append(e, L, p));
	int kbn = (nope + 127) / 128, kbl = (kvl + 127) / 128;
	struct cmat ukt = {L->uk_t, L->uk_t_s, kvl, nope};
	for (int h = 0; h < H && !e->gv; h++)
		TRY(card_gemm(e, "W_UK^T q_nope", e->q + 4 * (uint64_t)h * qd, &ukt,
			      e->qcat + 4 * (uint64_t)h * row, ABI_GEMM_F_ACT_F32, 0,
			      (uint64_t)h * kvl * nope, 4 * (uint64_t)h * kbl * kbn, kvl, nope));
	TRY(card_barrier(e));
	if (split > 1) { /* head groups beside W_UV and o_proj's slices */
		TRY(card_attn_groups(e, L, e->cur_seq, p, split, 0));
		return card_mla_end(e, L);
	}
	if (e->gv_attn)
		TRY(card_attn_lanes(e, L, e->cur_seq, p));
	struct abi_cmd *m = e->gv_attn ? NULL : card_cmd(e, ABI_OP_MLA_ATTN, "mla_attn");
	if (!m && !e->gv_attn)
		return -E2BIG;
	if (m) {
		m->u.mla.q = e->qcat;
		m->u.mla.kv = ee_kv_base(e, L, e->cur_seq);
		m->u.mla.out = e->lat;
		m->u.mla.n_heads = (uint32_t)H;
		m->u.mla.kv_lora = (uint32_t)kvl;
		m->u.mla.rope = (uint32_t)rope;
		m->u.mla.n_ctx = (uint32_t)p + 1;
		m->u.mla.ctx_cap = (uint32_t)e->max_seq;
		memcpy(&m->u.mla.scale, &e->softmax_scale, 4);
	}
	TRY(card_barrier(e));
	int sc = (kvl + 127) / 128;
	if (e->gv)
		TRY(card_mla_gemv(e, L, GV_UV));
	for (int h = 0; h < H && !e->gv; h++) {
		uint64_t r0 = (uint64_t)h * (nope + vd) + nope;
		TRY(card_gemm(e, "W_UV o_lat", e->lat + 4 * (uint64_t)h * kvl, &L->kv_b,
			      e->ao + 4 * (uint64_t)h * vd, ABI_GEMM_F_ACT_F32, 0, r0 * kvl,
			      4 * (r0 / 128) * sc, vd, kvl));
	}
	TRY(card_barrier(e));
	if (e->gv)
		TRY(card_mla_gemv(e, L, GV_O));
	else
		TRY(card_gemm(e, "o_proj + residual", e->ao, &L->o, e->x, ABI_GEMM_F_RESIDUAL, 0, 0,
			      0, 0, 0));
	return card_mla_end(e, L);
}

/* The MLA sublayer's end after o_proj: the post-attention norm where the FFN reads xn. */
static int card_mla_end(struct ee *e, const struct ee_layer *L)
{
	const struct config *c = e->c;
	float eps = (float)c->rms_norm_eps;
	TRY(card_barrier(e));
	if (card_post_norm(e, L))
		TRY(card_vecop(e, ABI_OP_RMSNORM, "post_attention_layernorm", e->x, 0, L->post_norm,
			       e->xn, 1, (uint32_t)c->hidden_size, 0, 0, 0, eps, 0));
	return card_barrier(e);
}

/* Whether layer L's FFN needs xn written by a post_attention_layernorm command: the GEMV CU's
 * FFN tables normalize x in their loaders (FP8_GEMV_RMSNORM), so only the fp8_gemm CUs and the
 * host's router (a router off the card, the expert trace's look at this layer) read xn. */
int card_post_norm(const struct ee *e, const struct ee_layer *L)
{
	if (!e->gv)
		return 1;
	if (!L->moe)
		return 0;
	return !e->gv_route || (e->xt && e->cur_layer < e->c->num_hidden_layers);
}

/* Dense FFN: x += down(silu(gate xn) * up xn). */
int card_dense(struct ee *e, const struct ee_layer *L)
{
	if (e->gv)
		return card_dense_gemv(e, L);
	TRY(card_gemm(e, "gate|up silu", e->xn, &L->gu, e->hb[0], ABI_GEMM_F_SILU_MUL, 0, 0, 0, 0,
		      0));
	TRY(card_barrier(e));
	TRY(card_gemm(e, "down + residual", e->hb[0], &L->down, e->x, ABI_GEMM_F_RESIDUAL, 0, 0, 0,
		      0, 0));
	return card_barrier(e);
}

/* MoE FFN after the host routed: ffn = shared + sum_j w_j expert_j (chosen order); x += ffn.
 * The shared expert goes first (it needs no expert DMA); with the cache, gate|ups that wait on a
 * fill follow the ones that do not, and the fills of this step's prefetch are spread over the
 * down chain. The down accumulation keeps router order (f32 sums are order-dependent). */
int card_moe(struct ee *e, struct ee_layer *L, const int *idx)
{
	if (e->gv)
		return card_moe_gemv(e, L, idx);
	if (!idx)
		return -EINVAL; /* the fp8_gemm lowering routes on the host */
	const struct config *c = e->c;
	struct ee_xc *xc = e->xc;
	int k = c->num_experts_per_tok;
	struct cmat gu[EE_MAX_TOPK], dn[EE_MAX_TOPK];
	for (int j = 0; j < k; j++) {
		if (xc && xc->slot[j] >= 0) {
			uint64_t b = xc->slot_addr[xc->slot[j]];
			const struct expert_slot_layout *l = &xc->lay;
			gu[j] = (struct cmat){b + l->off[0], b + l->off[3],
					      c->moe_intermediate_size, c->hidden_size};
			dn[j] = (struct cmat){b + l->off[2], b + l->off[5], c->hidden_size,
					      c->moe_intermediate_size};
		} else if (!xc) {
			gu[j] = L->ex_gu[idx[j]];
			dn[j] = L->ex_down[idx[j]];
		}
	}
	if (L->sh_gu.rows)
		TRY(card_gemm(e, "shared gate|up silu", e->xn, &L->sh_gu, e->hb[0],
			      ABI_GEMM_F_SILU_MUL, 0, 0, 0, 0, 0));
	for (int pass = 0; pass < 2; pass++)
		for (int j = 0; j < k; j++) {
			int wait = xc && xc->fid[j];
			if ((xc && xc->slot[j] < 0) || wait != pass)
				continue;
			TRY(card_gemm(e, "expert gate|up silu", e->xn, &gu[j], e->hb[j + 1],
				      ABI_GEMM_F_SILU_MUL, 0, 0, 0, 0, 0));
			if (wait) {
				struct abi_cmd *g = &e->list.cmd[e->list.n - 1];
				g->hdr.word2 |= ABI_CMD_F_WAIT;
				g->hdr.word3 = ABI_W3(xc->fid[j], 0);
				g->hdr.wait_value = xc->fval[j];
			}
		}
	TRY(card_barrier(e));
	/* the shared down GEMM writes ffn first; a model without shared experts would need a zero
	 * fill of ffn before the accumulating downs, which the lowering does not have */
	if (!L->sh_gu.rows)
		return -ENOTSUP;
	TRY(card_gemm(e, "shared down", e->hb[0], &L->sh_down, e->ffn, 0, 0, 0, 0, 0, 0));
	int pf = 0;
	for (int j = 0; j < k; j++) {
		if (xc && pf < xc->n_pf) { /* one prefetch per down step keeps the DMA queue fed */
			const struct ffn_weights *f =
			    &e->L[xc->pf_layer[pf]].lw->experts[xc->pf_exp[pf]];
			TRY(card_xc_fill_cmds(e, f, xc->pf_key[pf], xc->h2c[xc->pf_ch[pf]], 0, 0));
			pf++;
		}
		TRY(card_barrier(e)); /* the accumulating downs share y: one at a time, in order */
		if (xc && xc->slot[j] < 0) {
			if (xc->host_add_cmd < 0)
				xc->host_add_cmd = (int)e->list.n;
			TRY(card_vecop(e, ABI_OP_RESIDUAL_ADD, "host expert merge", e->ffn,
				       xc->hres[j], 0, e->ffn, 1, (uint32_t)c->hidden_size, 0, 0, 0,
				       0, 0));
		} else {
			TRY(card_gemm(e, "expert down (accumulate)", e->hb[j + 1], &dn[j], e->ffn,
				      ABI_GEMM_F_ACCUM, e->rw + 4 * (uint64_t)j, 0, 0, 0, 0));
		}
	}
	for (; xc && pf < xc->n_pf; pf++) {
		const struct ffn_weights *f = &e->L[xc->pf_layer[pf]].lw->experts[xc->pf_exp[pf]];
		TRY(card_xc_fill_cmds(e, f, xc->pf_key[pf], xc->h2c[xc->pf_ch[pf]], 0, 0));
	}
	TRY(card_barrier(e));
	TRY(card_vecop(e, ABI_OP_RESIDUAL_ADD, "residual", e->x, e->ffn, 0, e->x, 1,
		       (uint32_t)c->hidden_size, 0, 0, 0, 0, 0));
	return card_barrier(e);
}

/* One decoder layer (list continues from the previous one; a MoE layer flushes once). */
static int ee_layer_run(struct ee *e, int li, int p)
{
	struct ee_layer *L = &e->L[li];
	const struct config *c = e->c;
	/* --expert-trace: the look-ahead from the residual stream after layer li-1, where the cpu
	 * engine's layer hook makes it (none from the embedding, none in the MTP layer) */
	int trace = e->xt && li < c->num_hidden_layers;
	if (trace && li > 0 && expert_trace_writer_wants(e->xt, li - 1)) {
		TRY(card_flush(e));
		double t0 = now_s();
		TRY(card_read(e, e->x, e->xt_x, sizeof(float) * (size_t)c->hidden_size));
		/* a trace error is kept in the writer and reported when it closes, as on cpu */
		(void)expert_trace_writer_predict(e->xt, &e->kc, li - 1, e->xt_x, 1);
		e->t_host += now_s() - t0;
	}
	e->cur_layer = li;
	TRY(card_mla(e, L, p));
	if (!L->moe)
		return card_dense(e, L);
	if (e->gv_route && !trace) /* the router on the card: no host round trip */
		return card_moe(e, L, NULL);
	TRY(card_flush(e));
	double t0 = now_s();
	int D = c->hidden_size, E = c->n_routed_experts, k = c->num_experts_per_tok;
	int idx[EE_MAX_TOPK];
	float w[EE_MAX_TOPK];
	TRY(card_read(e, e->xn, e->hxn, sizeof(float) * (size_t)D));
	TRY(kern_matmul(&e->kc, &L->lw->gate, e->hxn, 1, e->rlog));
	e->host_route_b += (double)E * D * (L->lw->gate.fmt == QMAT_BF16 ? 2 : 4);
	router_route_token(c, L->lw->e_score_correction_bias, e->rlog, idx, w);
	for (int j = 0; j < k; j++)
		if (idx[j] < 0 || idx[j] >= E)
			idx[j] = 0;
	/* the route weights where the down GEMMs read them (the GEMV tables: the route output) */
	TRY(card_write(e, e->gv ? L->gv.rout + 4 * (uint64_t)k : e->rw, w,
		       sizeof(float) * (size_t)k));
	if (trace) /* the layer's gate is re-run on hxn: self_mismatch checks the trace's router */
		(void)expert_trace_writer_record(e->xt, &e->kc, li, p, 1, idx, w, e->hxn);
	e->t_host += now_s() - t0;
	if (prof_g)
		prof_host("router (host)", "router", li);
	if (e->xc)
		TRY(card_xc_route(e, li, p, idx, w));
	return card_moe(e, L, idx);
}

static void embed_host(const struct qmat *E, int t, float *out)
{
	for (int i = 0; i < E->cols; i++)
		out[i] = E->fmt == QMAT_BF16
			     ? bf16_to_f32(((const uint16_t *)E->w)[(size_t)t * E->cols + i])
			     : qmat_get(E, t, i);
}

/* Final norm on the card, read back into hidden (optional) and head logits on the host. */
static int ee_head(struct ee *e, uint64_t norm_w, const struct qmat *head, float *logits,
		   float *hidden)
{
	int D = e->c->hidden_size;
	e->cur_layer = -1;
	/* the head on the GEMV CU normalizes x in its loader: the command only when xn is read */
	/* greedy (forward_top1): the head's record instead of the logits (card_head_gemv) */
	int top1 = e->top1 && e->gv_head && head == &e->w->lm_head && !logits;
	if (!e->gv_head || !(logits || top1) || hidden)
		TRY(card_vecop(e, ABI_OP_RMSNORM, "final norm", e->x, 0, norm_w, e->xn, 1,
			       (uint32_t)D, 0, 0, 0, (float)e->c->rms_norm_eps, 0));
	if (e->gv_head && (logits || top1)) /* the head on the GEMV CU: logits or the record back */
		TRY(card_head_gemv(e, head != &e->w->lm_head));
	TRY(card_flush(e));
	double t0 = now_s();
	int r = 0;
	if (hidden || (logits && !e->gv_head))
		TRY(card_read(e, e->xn, e->hxn, sizeof(float) * (size_t)D));
	if (hidden)
		memcpy(hidden, e->hxn, sizeof(float) * (size_t)D);
	if (top1) {
		uint32_t rec[2];
		if (!(r = card_read(e, e->gv_top1, rec, sizeof rec))) {
			e->top1_id = (int)rec[0];
			e->top1_tokens++;
		}
	} else if (logits && e->gv_head)
		r = card_read(e, e->gv_logits, logits, sizeof(float) * (size_t)e->c->vocab_size);
	else if (logits) {
		r = kern_matmul(&e->kc, head, e->hxn, 1, logits);
		e->host_head_b += (double)head->rows * head->cols * 2;
		if (prof_g)
			prof_host("lm_head (host)", "head", -1);
	}
	e->t_host += now_s() - t0;
	return r;
}

/* --- engine ops ------------------------------------------------------------------------- */

static int ee_forward_loop(struct ee *e, struct engine *en, const int *tok, int T, float *logits,
			   int all, float *hidden, int t0, int Tall);

static int ee_forward(struct engine *en, const int *tok, int T, float *logits, int all,
		      float *hidden)
{
	struct ee *e = ee_of(en);
	const struct config *c = e->c;
	int D = c->hidden_size, V = c->vocab_size;
	double t0 = now_s(), w0 = e->t_wait, h0 = e->t_host;
	if (T < 1 || en->pos + T > e->max_seq)
		return -ENOSPC;
	for (int t = 0; t < T; t++)
		if (tok[t] < 0 || tok[t] >= V)
			return -EINVAL;
	e->cur_seq = 0;		    /* the engine's own sequence */
	if (en->pos != e->pf.kvx_n) /* (a prompt's rows so far: it continues them) */
		e->pf.kvx_n = 0;
	struct backend_stats s0 = {0};
	if (T > 1 && e->be)
		backend_stats(e->be, &s0);
	double hb0 = e->host_route_b + e->host_head_b, rb0 = e->host_route_b, hh0 = e->host_head_b;
	/* a prompt: the batched path in chunks, when the card and the options allow it */
	int batched = e->pf_on && !e->xt && !(e->pf_loop && T > FP8_GEMV_MAX_M);
	for (int t = 0; T > 1 && batched && t < T;) {
		int n = T - t < e->pf.chunk ? T - t : e->pf.chunk, r;
		if (n < 2) { /* a last single token goes through the decode list */
			r = ee_forward_loop(e, en, tok + t, 1, logits, all, hidden, t, T);
		} else {
			e->pf.active = 1;
			r = card_pf_forward(e, tok + t, n, en->pos,
					    logits && (all || t + n == T)
						? logits + (all ? (size_t)t * V : 0)
						: NULL,
					    all, hidden ? hidden + (size_t)t * D : NULL);
			e->pf.active = 0;
			if (!r) {
				en->pos += n;
				e->tokens += (uint64_t)n;
				e->pf.batched += (uint64_t)n;
			}
		}
		if (r) {
			e->list.n = 0;
			return r;
		}
		t += n;
		if (t == T)
			goto done;
	}
	TRY(ee_forward_loop(e, en, tok, T, logits, all, hidden, 0, T));
done:
	if (T > 1 && e->be) { /* prompt statistics (either path) */
		struct backend_stats s1;
		backend_stats(e->be, &s1);
		e->pf.tokens += (uint64_t)T;
		e->pf.card_ns += (double)(s1.busy_ns - s0.busy_ns);
		e->pf.link_ns += (double)(s1.h2c_ns + s1.c2h_ns - s0.h2c_ns - s0.c2h_ns);
		e->pf.host_b += e->host_route_b + e->host_head_b - hb0 + (double)T * D * 2 +
				(double)V * 4; /* embeddings, sampling */
		if (e->pf.in_prompt) {	       /* the prompt's share, out of the decode figures */
			e->pf.p_tokens += (uint64_t)T;
			e->pf.p_cmds += s1.cmds - s0.cmds;
			e->pf.p_subs += s1.submits - s0.submits;
			e->pf.p_card_ns += (double)(s1.busy_ns - s0.busy_ns);
			e->pf.p_link_ns += (double)(s1.h2c_ns + s1.c2h_ns - s0.h2c_ns - s0.c2h_ns);
			e->pf.p_route_b += e->host_route_b - rb0;
			e->pf.p_head_b += e->host_head_b - hh0;
		}
	}
	if (T == 1)
		e->pf.in_prompt = 0;
	double dt = now_s() - t0;
	e->t_wall += dt;
	e->t_sched += dt - (e->t_wait - w0) - (e->t_host - h0);
	return 0;
}

/* The token loop: tokens tok[0..T) one decode list each; logits / hidden rows of the whole
 * forward's tokens t0.. (Tall of them). */
static int ee_forward_loop(struct ee *e, struct engine *en, const int *tok, int T, float *logits,
			   int all, float *hidden, int t0, int Tall)
{
	const struct config *c = e->c;
	int D = c->hidden_size, V = c->vocab_size;
	for (int i = 0; i < T; i++) {
		int p = en->pos, r, t = t0 + i;
		embed_host(&e->w->embed_tokens, tok[i], e->hx);
		if (prof_g)
			prof_host("embed", "host", -1);
		TRY(card_write(e, e->x, e->hx, sizeof(float) * (size_t)D));
		e->list.n = 0;
		for (int l = 0; l < c->num_hidden_layers; l++)
			if ((r = ee_layer_run(e, l, p))) {
				e->list.n = 0;
				return r;
			}
		float *lg =
		    logits && (all || t == Tall - 1) ? logits + (all ? (size_t)t * V : 0) : NULL;
		if ((r = ee_head(e, e->final_norm, &e->w->lm_head, lg,
				 hidden ? hidden + (size_t)t * D : NULL)) ||
		    (r = card_route_check(e, 0, c->num_hidden_layers))) {
			e->list.n = 0;
			return r;
		}
		en->pos++;
		e->tokens++;
	}
	return 0;
}

static int ee_mtp(struct engine *en, const int *nt, const float *hidden, int T, float *logits,
		  int all)
{
	struct ee *e = ee_of(en);
	const struct config *c = e->c;
	const struct layer_weights *lw = e->w->mtp;
	int D = c->hidden_size, V = c->vocab_size, ml = c->num_hidden_layers, r;
	if (!lw)
		return -ENODEV;
	if (T < 1 || en->mtp_pos + T > e->max_seq)
		return -ENOSPC;
	e->cur_seq = 0;
	e->pf.in_prompt = 0; /* a draft: decoding has begun */
	for (int t = 0; t < T; t++) {
		int p = en->mtp_pos;
		if (nt[t] < 0 || nt[t] >= V)
			return -EINVAL;
		double t0 = now_s();
		/* [enorm(embed(t_{i+1})) (0 at position 0) | hnorm(h_i)] -> eh_proj (BF16);
		 * docs/model.md, MTP */
		if (p == 0) {
			memset(e->cat, 0, sizeof(float) * (size_t)D);
		} else {
			embed_host(lw->embed_tokens.w ? &lw->embed_tokens : &e->w->embed_tokens,
				   nt[t], e->hx);
			model_rmsnorm(e->cat, e->hx, lw->enorm, D, c->rms_norm_eps);
		}
		model_rmsnorm(e->cat + D, hidden + (size_t)t * D, lw->hnorm, D, c->rms_norm_eps);
		TRY(kern_matmul(&e->kc, &lw->eh_proj, e->cat, 1, e->u));
		if (prof_g)
			prof_host("MTP eh_proj (host)", "host", ml);
		TRY(card_write(e, e->x, e->u, sizeof(float) * (size_t)D));
		e->t_host += now_s() - t0;
		e->list.n = 0;
		if ((r = ee_layer_run(e, ml, p))) {
			e->list.n = 0;
			return r;
		}
		float *lg =
		    logits && (all || t == T - 1) ? logits + (all ? (size_t)t * V : 0) : NULL;
		if ((r = ee_head(e, e->mtp_head_norm,
				 lw->shared_head_head.w ? &lw->shared_head_head : &e->w->lm_head,
				 lg, e->mtp_hid)) ||
		    (r = card_route_check(e, ml, ml + 1))) {
			e->list.n = 0;
			return r;
		}
		en->mtp_pos++;
	}
	return 0;
}

/* Rows of several sequence slots (engine_ops.forward_seqs): one slot's single row is a decode
 * step of the token loop on that slot's cache; one slot's consecutive rows are a prompt through
 * the batched path in chunks; rows of several slots go through the batched path together (at
 * most FP8_GEMV_MAX_M rows on the GEMV CU: every weight read once for all of them). */
static int seqs_forward(struct engine *en, const int *tok, int T, const int *seq, const int *pos,
			float *logits, int *ids, int lg);

static int ee_forward_seqs(struct engine *en, const int *tok, int T, const int *seq, const int *pos,
			   float *logits, int lg)
{
	return seqs_forward(en, tok, T, seq, pos, logits, NULL, lg);
}

/* forward_seqs_top1: as forward_seqs with each wanted row's greedy token in ids (the head's
 * records, FP8_GEMV_ARGMAX); -ENOTSUP without the head on the GEMV CU (nothing ran). */
static int ee_forward_seqs_top1(struct engine *en, const int *tok, int T, const int *seq,
				const int *pos, int *ids, int lg)
{
	struct ee *e = ee_of(en);
	if (!e->gv_head || e->dry || !ids)
		return -ENOTSUP;
	return seqs_forward(en, tok, T, seq, pos, NULL, ids, lg);
}

/* One token's list with the greedy head's record wanted (want: ee_head sets FP8_GEMV_ARGMAX and
 * reads the record into top1_id). */
static void top1_begin(struct ee *e, int want)
{
	e->top1 = want;
	e->top1_id = -1;
}

/* After the list of top1_begin: r, or -EIO for a record the head cannot have written; the token
 * into *id when id and r is 0. */
static int top1_end(struct ee *e, int r, int *id)
{
	e->top1 = 0;
	if (id && !r && (e->top1_id < 0 || e->top1_id >= e->c->vocab_size))
		r = -EIO;
	if (id && !r)
		*id = e->top1_id;
	return r;
}

/* forward_seqs with logits (ids NULL) or the wanted rows' greedy tokens (ids). */
static int seqs_forward(struct engine *en, const int *tok, int T, const int *seq, const int *pos,
			float *logits, int *ids, int lg)
{
	struct ee *e = ee_of(en);
	int V = e->c->vocab_size, one = 1, r = 0;
	if (!e->pf_on || e->xt)
		return -ENOTSUP;
	if (T < 1 || lg < MODEL_LG_ALL || lg > MODEL_LG_SEQ)
		return -EINVAL;
	e->pf.kvx_n = 0; /* (the slots' rows, slot 0's too, may be any positions) */
	for (int t = 0; t < T; t++) {
		if (tok[t] < 0 || tok[t] >= V || seq[t] < 0 || seq[t] >= e->n_seq)
			return -EINVAL;
		if (pos[t] < 0 || pos[t] >= e->max_seq)
			return -ENOSPC;
		if (t && (seq[t] != seq[0] || pos[t] != pos[t - 1] + 1))
			one = 0;
	}
	if (!one && T > e->pf.chunk)
		return -EINVAL;
	/* one slot's rows: the last row's logits under MODEL_LG_SEQ too */
	int last_only = lg == MODEL_LG_LAST || (one && lg == MODEL_LG_SEQ);
	double t0 = now_s(), w0 = e->t_wait, h0 = e->t_host;
	if (one && T == 1) { /* the token loop on the slot's cache, at its position */
		int p0 = en->pos;
		en->pos = pos[0];
		e->cur_seq = seq[0];
		top1_begin(e, ids != NULL);
		r = top1_end(e, ee_forward_loop(e, en, tok, 1, logits, 0, NULL, 0, 1), ids);
		en->pos = p0;
		e->cur_seq = 0;
		e->tokens -= r ? 0 : 1; /* counted below */
	} else if (one) {		/* a prompt in chunks */
		for (int t = 0; t < T && !r; t += e->pf.chunk) {
			int n = T - t < e->pf.chunk ? T - t : e->pf.chunk;
			int want = !last_only || t + n == T;
			float *out = !logits || !want ? NULL
				     : !last_only     ? logits + (size_t)t * V
						      : logits;
			e->pf.ids = ids && want ? ids + (last_only ? 0 : t) : NULL;
			r = card_pf_forward_rows(e, tok + t, n, seq + t, pos + t, out,
						 last_only ? MODEL_LG_LAST : MODEL_LG_ALL);
		}
	} else {
		e->pf.ids = ids;
		r = card_pf_forward_rows(e, tok, T, seq, pos, logits, lg);
	}
	e->pf.ids = NULL;
	if (r) {
		e->list.n = 0;
		return r;
	}
	e->tokens += (uint64_t)T;
	double dt = now_s() - t0;
	e->t_wall += dt;
	e->t_sched += dt - (e->t_wait - w0) - (e->t_host - h0);
	return 0;
}

static int ee_mtp_hidden(struct engine *en, int row, float *hidden)
{
	struct ee *e = ee_of(en);
	(void)row;
	memcpy(hidden, e->mtp_hid, sizeof(float) * (size_t)e->c->hidden_size);
	return 0;
}

static int ee_expert_trace(struct engine *en, struct expert_trace_writer *w)
{
	struct ee *e = ee_of(en);
	if (w && !e->xt_x && !(e->xt_x = calloc((size_t)e->c->hidden_size, sizeof(float))))
		return -ENOMEM;
	e->xt = w;
	return 0;
}

static void ee_truncate(struct engine *en, int pos, int mtp_pos)
{
	struct ee *e = ee_of(en);
	card_xc_drain(e); /* detached fills land before the sequence rewinds */
	if (pos >= 0 && pos < en->pos)
		en->pos = pos;
	if (pos >= 0 && pos < e->pf.kvx_n) /* (the prompt's rows past pos are no longer its) */
		e->pf.kvx_n = 0;
	if (mtp_pos >= 0 && mtp_pos < en->mtp_pos)
		en->mtp_pos = mtp_pos;
	if (pos == 0 && mtp_pos == 0 && e->be) {
		/* a new sequence (bench after its warm-up): statistics restart */
		struct backend_stats s;
		backend_stats(e->be, &s);
		e->subs0 = s.submits;
		e->cmds0 = s.cmds;
		e->tokens = 0;
		e->t_sched = e->t_wait = e->t_host = e->t_wall = 0;
		e->card0 = s.busy_ns;
		e->link0 = s.h2c_ns + s.c2h_ns;
		e->host_route_b = e->host_head_b = 0;
		e->top1_tokens = 0;
		e->route_checked = e->route_diff = 0;
		e->pf.tokens = e->pf.batched = e->pf.mha_tokens = e->pf.hyb_experts = 0;
		e->pf.handovers = e->pf.ffn_gemm = 0;
		e->pf.card_ns = e->pf.link_ns = e->pf.host_b = e->pf.macs = e->pf.gemm_ns = 0;
		e->pf.gv_macs = e->pf.gv_ns = 0;
		e->pf.in_prompt = 1;
		e->pf.p_tokens = e->pf.p_cmds = e->pf.p_subs = 0;
		e->pf.p_card_ns = e->pf.p_link_ns = e->pf.p_route_b = e->pf.p_head_b = 0;
		if (e->xc)
			card_xc_restart(e);
	}
}

struct backend *card_engine_backend(struct engine *en)
{
	return en->ops && en->ops->forward == ee_forward ? ee_of(en)->be : NULL;
}

static void ee_free(struct engine *en)
{
	struct ee *e = ee_of(en);
	if (!e)
		return;
	if (e->be)
		card_xc_drain(e); /* no fill may still write card memory as it is released */
	if (prof_g && prof_g->other_ctx == e)
		prof_g->other = NULL;
	if (e->be) {
		for (size_t i = e->n_bufs; i-- > 0;)
			backend_buf_free(e->be, e->bufs[i]);
		backend_close(e->be);
	}
	if (e->L)
		for (int l = 0; l < e->n_layers; l++) {
			free(e->L[l].ex_gu);
			free(e->L[l].ex_down);
			card_gemv_layer_free(&e->L[l]);
		}
	free(e->L);
	card_gemv_free(e);
	card_pf_free(e);
	card_xc_free(e);
	free(e->bufs);
	free(e->hb);
	free(e->hx);
	free(e->hxn);
	free(e->rlog);
	free(e->cat);
	free(e->u);
	free(e->mtp_hid);
	free(e->xt_x);
	kern_ctx_free(&e->kc);
	if (e->pool)
		pool_free(e->pool);
	free(e);
	en->impl = NULL;
}

/* forward_top1: the token's decode list with the greedy head (ee_head), T == 1 with the head on
 * the GEMV CU; -ENOTSUP otherwise (engine_forward_top1 then runs forward). */
static int ee_forward_top1(struct engine *en, const int *tok, int T, int *id)
{
	struct ee *e = ee_of(en);
	if (T != 1 || !e->gv_head || e->dry)
		return -ENOTSUP;
	top1_begin(e, 1);
	return top1_end(e, ee_forward(en, tok, 1, NULL, 0, NULL), id);
}

static const struct engine_ops ee_ops = {
    .name = "emu",
    .forward = ee_forward,
    .mtp_forward = ee_mtp,
    .truncate = ee_truncate,
    .stats = card_stats,
    .free = ee_free,
    .mtp_hidden = ee_mtp_hidden,
    .expert_trace = ee_expert_trace,
    .forward_seqs = ee_forward_seqs,
    .forward_top1 = ee_forward_top1,
    .forward_seqs_top1 = ee_forward_seqs_top1,
};

/* What the card scheduler runs: FP8 weights, FP8 activations, shapes it lowers. 0 or -EINVAL. */
static int ee_supported(const struct ckpt *ck, const struct model_opts *o, char *err, size_t errlen)
{
	const struct config *c = &ck->cfg;
	if (!ck->w.fp8) {
		snprintf(err, errlen, "--backend emu: the card runs FP8 checkpoints only");
		return -EINVAL;
	}
	if (!o->act_fp8) {
		snprintf(err, errlen,
			 "--backend emu: --act none is the cpu backend's reference mode; "
			 "the card quantizes activations (--act fp8)");
		return -EINVAL;
	}
	if (c->num_experts_per_tok > EE_MAX_TOPK || c->qk_rope_head_dim % 2) {
		snprintf(err, errlen, "config.json: shape not supported by the emu scheduler");
		return -EINVAL;
	}
	return 0;
}

/* The board's HBM banks: the last one holds activations and KV, weights go round-robin on the
 * others. 0 or -EINVAL (err). */
static int ee_banks(struct ee *e, char *err, size_t errlen)
{
	int nb = (int)ABI_BOARD_N_BANKS(backend_abi_board(e->be)->counts);
	e->n_hbm = 0;
	for (int i = 0; i < nb; i++)
		if ((backend_abi_board(e->be)->banks[i].word & 0xFFu) == ABI_BANK_HBM)
			e->n_hbm = i + 1;
	if (e->n_hbm < 2) {
		snprintf(err, errlen, "%s: the scheduler needs at least 2 HBM banks",
			 backend_board(e->be)->model);
		return -EINVAL;
	}
	e->act_bank = (uint32_t)e->n_hbm - 1;
	e->n_hbm--;
	return 0;
}

/* The host side: thread pool, kernels (lm_head, eh_proj, router) and their buffers. */
static int ee_host_init(struct ee *e, const struct model_opts *o)
{
	const struct config *c = e->c;
	int D = c->hidden_size, k = c->num_experts_per_tok;
	e->softmax_scale = (float)model_softmax_scale(c);
	e->pool = pool_create(o->n_threads);
	e->hb = calloc((size_t)k + 1, sizeof *e->hb);
	e->hx = calloc((size_t)D, sizeof(float));
	e->hxn = calloc((size_t)D, sizeof(float));
	e->rlog =
	    calloc((size_t)(c->n_routed_experts > 0 ? c->n_routed_experts : 1), sizeof(float));
	e->cat = calloc(2 * (size_t)D, sizeof(float));
	e->u = calloc((size_t)D, sizeof(float));
	e->mtp_hid = calloc((size_t)D, sizeof(float));
	if (!e->pool || !e->hb || !e->hx || !e->hxn || !e->rlog || !e->cat || !e->u ||
	    !e->mtp_hid ||
	    kern_ctx_init(&e->kc, e->pool, 1, c->quantization_config.ue8m0, 4 * (size_t)D, 2 * D))
		return -ENOMEM;
	return 0;
}

/* card_engine_impl.h: the activations in the activation bank, FFN hidden rows sized for the
 * widest FFN. */
int card_place_acts(struct ee *e)
{
	const struct config *c = e->c;
	int D = c->hidden_size, H = c->num_attention_heads, k = c->num_experts_per_tok;
	int kvl = c->kv_lora_rank, rope = c->qk_rope_head_dim, row = kvl + rope, r;
	int inter = c->intermediate_size;
	int sh = c->n_shared_experts * c->moe_intermediate_size;
	inter = inter > sh ? inter : sh;
	inter = inter > c->moe_intermediate_size ? inter : c->moe_intermediate_size;
	int ab = (int)e->act_bank;
	size_t f = sizeof(float);
	if ((r = card_place(e, ab, NULL, f * D, &e->x)) ||
	    (r = card_place(e, ab, NULL, f * D, &e->xn)) ||
	    (r = card_place(e, ab, NULL, f * (c->q_lora_rank > 0 ? c->q_lora_rank : 1), &e->qa)) ||
	    (r = card_place(e, ab, NULL, f * H * (c->qk_nope_head_dim + rope), &e->q)) ||
	    (r = card_place(e, ab, NULL, f * row, &e->kva)) ||
	    (r = card_place(e, ab, NULL, f * row, &e->kvrow)) ||
	    (r = card_place(e, ab, NULL, f * H * row, &e->qcat)) ||
	    (r = card_place(e, ab, NULL, f * H * kvl, &e->lat)) ||
	    (r = card_place(e, ab, NULL, f * H * c->v_head_dim, &e->ao)) ||
	    (r = card_place(e, ab, NULL, f * D, &e->ffn)) ||
	    (r = card_place(e, ab, NULL, f * D, &e->ob)) ||
	    (r = card_place(e, ab, NULL, f * (k > 0 ? k : 1), &e->rw)))
		return r;
	for (int j = 0; j <= k; j++)
		if ((r = card_place(e, ab, NULL, f * inter, &e->hb[j])))
			return r;
	return 0;
}

/* YaRN cos/sin table [max_seq][rope/2][2], exactly as the cpu engine builds its own. */
static int ee_place_rope(struct ee *e)
{
	const struct config *c = e->c;
	int rope = c->qk_rope_head_dim;
	size_t f = sizeof(float);
	float *tab = malloc(f * (size_t)e->max_seq * rope);
	if (!tab)
		return -ENOMEM;
	double msr = 1.0;
	if (c->rope_scaling.yarn) {
		double fa = c->rope_scaling.factor;
		double m1 = fa <= 1 ? 1 : 0.1 * c->rope_scaling.mscale * log(fa) + 1;
		double m2 = fa <= 1 ? 1 : 0.1 * c->rope_scaling.mscale_all_dim * log(fa) + 1;
		msr = m1 / m2;
	}
	for (int i = 0; i < rope / 2; i++) {
		double fr = model_rope_freq(c, i);
		for (int p = 0; p < e->max_seq; p++) {
			tab[(size_t)p * rope + 2 * i] = (float)(cos(p * fr) * msr);
			tab[(size_t)p * rope + 2 * i + 1] = (float)(sin(p * fr) * msr);
		}
	}
	int r = card_place(e, (int)e->act_bank, tab, f * (size_t)e->max_seq * rope, &e->tab);
	free(tab);
	return r;
}

/* The model's weights: final norm, every layer (MTP included), the MTP head norm, and with
 * --expert-slots the cache's slots after the resident weights. err is set when the failure has
 * its own message. */
static int ee_place_model(struct ee *e, const struct engine_extra *x, char *err, size_t errlen)
{
	const struct config *c = e->c;
	const struct weights *w = e->w;
	int D = c->hidden_size, r;
	if ((r = ee_vec(e, w->norm, D, &e->final_norm)))
		return r;
	e->n_layers = c->num_hidden_layers + (w->mtp ? 1 : 0);
	e->L = calloc((size_t)e->n_layers, sizeof *e->L);
	if (!e->L)
		return -ENOMEM;
	err[0] = 0;
	if ((r = card_xc_init(e, x, err, errlen)))
		return r;
	for (int l = 0; l < e->n_layers; l++) {
		const struct layer_weights *lw = l < c->num_hidden_layers ? &w->layers[l] : w->mtp;
		if ((r = ee_layer_init(e, &e->L[l], lw, err, errlen)))
			return r;
	}
	if (w->mtp && (r = ee_vec(e, w->mtp->shared_head_norm, D, &e->mtp_head_norm)))
		return r;
	if ((r = card_gemv_heads(e, w, err, errlen)))
		return r;
	if (e->xc && (r = card_xc_place(e)))
		return r;
	return 0;
}

/* Every op the chosen lowering issues has a CU on the board: a tree without one is refused at
 * open with the kernel it lacks, not at the first forward with the card's status. */
static int ee_check_ops(struct ee *e, const char *file, char *err, size_t errlen)
{
	const uint32_t gv_ops[] = {ABI_OP_GEMV, ABI_OP_RMSNORM, ABI_OP_ROPE, ABI_OP_KV_APPEND,
				   e->gv_attn ? ABI_OP_MLA_ATTN_LANES : ABI_OP_MLA_ATTN};
	const uint32_t gemm_ops[] = {
	    ABI_OP_GEMM_FP8,  ABI_OP_RMSNORM,
	    ABI_OP_ROPE,      ABI_OP_RESIDUAL_ADD,
	    ABI_OP_KV_APPEND, e->gv_attn ? ABI_OP_MLA_ATTN_LANES : ABI_OP_MLA_ATTN};
	const uint32_t *ops = e->gv ? gv_ops : gemm_ops;
	size_t n = e->gv ? sizeof gv_ops / sizeof gv_ops[0] : sizeof gemm_ops / sizeof gemm_ops[0];
	for (size_t i = 0; i < n; i++)
		if (!backend_supports_op(e->be, ops[i])) {
			snprintf(err, errlen,
				 "%s%s%s: no CU runs %s (a %s CU), which the %s lowering needs",
				 file ? file : "", file ? ": board " : "board ",
				 backend_board(e->be)->model, abi_op_name(ops[i]),
				 backend_op_kernel(ops[i]),
				 e->gv ? "GEMV CU's"
				       : "fp8_gemm CUs' (--expert-slots, MOECARD_CARD_GEMV=0)");
			return -ENODEV;
		}
	return 0;
}

int card_engine_open(struct engine *en, const struct ckpt *ck, const struct model_opts *o,
		     const struct engine_extra *x, char *err, size_t errlen)
{
	if (ee_supported(ck, o, err, errlen))
		return -EINVAL;
	struct ee *e = calloc(1, sizeof *e);
	if (!e) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	en->impl = e;
	en->ops = &ee_ops;
	e->c = &ck->cfg;
	e->w = &ck->w;
	e->max_seq = o->max_seq > 0 ? o->max_seq : 4096;
	en->max_seq = e->max_seq;
	en->max_batch = o->max_batch > 0 ? o->max_batch : 64;
	en->act_fp8 = 1;
	/* sequence slots (forward_seqs): each a latent cache per layer; not with the expert cache
	 * (its lists are the token loop's) */
	int xcache = x && (x->expert_slots != 0 || x->expert_slots_pct > 0);
	e->n_seq = x && x->seqs > 1 && !xcache ? x->seqs : 1;
	/* MOECARD_BARRIER_FENCES=0 keeps every barrier of the lists (card_fence_chain) */
	e->chain_off = card_chain_off();
	/* MOECARD_SCHED_BACKEND=ref runs the same command lists on the reference card backend (tests) */
	const char *bn = getenv("MOECARD_SCHED_BACKEND");
	struct backend_opts bo = {.board = x ? x->board : NULL,
				  .xclbin = x ? x->xclbin : NULL,
				  .set = x ? x->board_set : NULL};
	int r = backend_open(&e->be,
			     x && x->backend		? x->backend
			     : bn && !strcmp(bn, "ref") ? "ref"
							: "emu",
			     &bo, err, errlen);
	if (r || (r = ee_banks(e, err, errlen)))
		goto fail;
	if ((r = ee_host_init(e, o))) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	en->threads = pool_nthreads(e->pool);
	en->isa = e->kc.isa->name;
	/* the stripe arena first: it must sit at one offset in every lane bank */
	int afp8 = x && x->attn_datapath && !strcmp(x->attn_datapath, "fp8");
	if (x && x->attn_datapath && !afp8 && strcmp(x->attn_datapath, "f32")) {
		snprintf(err, errlen, "--attn-datapath %s: one of f32, fp8", x->attn_datapath);
		r = -EINVAL;
		goto fail;
	}
	if ((r = card_gemv_init(e, xcache, x ? x->kv_format : NULL, afp8, err, errlen)) ||
	    (r = ee_check_ops(e, x ? x->board : NULL, err, errlen)))
		goto fail;
	if ((r = card_place_acts(e)) || (r = card_pf_init(e, xcache)) || (r = ee_place_rope(e)) ||
	    (r = ee_place_model(e, x, err, errlen)) || (r = card_pf_rule(e)))
		goto fail_place;
	en->max_seqs = e->pf_on ? e->n_seq : 0;
	ee_truncate(en, 0, 0);
	return 0;
fail_place:
	if (!err[0] || r == -ENOMEM)
		snprintf(err, errlen, "--backend emu: cannot place the model on %s (%s)",
			 backend_board(e->be)->model, strerror(-r));
fail:
	ee_free(en);
	en->ops = NULL;
	return r;
}
