/*
 * card_engine.c - the "emu" engine (engine.h): the scheduler that runs the whole model on a card
 * through host/backend/backend.h command lists (issue 4). At load it places every FP8 matrix into card
 * banks (round-robin over the HBM pseudo-channels, so the GEMMs that run together read different
 * banks), the norm weights, a YaRN cos/sin table and one f32 latent KV cache per layer (MTP
 * included). Per token:
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
 * lm_head, the embedding and the MTP eh_proj are BF16 and must not be FP8-quantized (DESIGN.md 3);
 * the card has only the FP8 GEMM, so they run on the host (kernels.h) on the state read back
 * anyway. The absorbed attention products (W_UK^T q_nope, W_UV o_lat) run on the card's FP8 GEMM
 * in its ACT_F32 mode: f32 activations, NOT quantized, times the FP8 weights (MODEL.md 8, as the
 * cpu engine computes them); only the f32 summation order differs (hls/README.md). W_UK^T
 * contracts over kv_b's rows, so a pre-transposed copy of each head's W_UK codes and scale blocks
 * is placed at load (FP8, card memory only); W_UV is read in place.
 * Prefill runs token by token through the decode lists (the MLA command attends one query).
 * --expert-trace (expert_trace.h) records every main-model MoE layer's route after the host
 * router; its look-ahead needs the residual stream before each layer, so in trace mode (only) the
 * list is submitted at each layer start that has a MoE layer within two layers and x is read back.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "backend/backend.h"
#include "e4m3.h"
#include "engine/engine.h"
#include "sched/expert_cache.h"
#include "sched/expert_trace.h"
#include "hls/fp8_gemm/fp8_gemm.h"
#include "model/kernels.h"
#include "model/pool.h"
#include "model/router.h"
#include "sched/card_engine.h"

#define EE_MAX_TOPK 64
#define EE_TIMEOUT_MS 600000u /* host ms to wait for one list */
#define EE_CMD_TIMEOUT 200u    /* hang timeout per command, 100 us units (20 ms card time) */

/* An FP8 matrix in card memory: codes [rows][cols] (a SiLU pair: gate rows then up rows) and
 * weight_scale_inv [ceil(rows/128)][ceil(cols/128)] (pair: both arrays back to back). */
struct cmat {
	uint64_t w, sw;   /* card addresses */
	int rows, cols;   /* of one matrix of the pair */
};

/* One decoder layer on the card. */
struct ee_layer {
	uint64_t in_norm, post_norm;  /* f32 [hidden] */
	uint64_t q_a_norm, kv_a_norm; /* f32 [q_lora], [kv_lora] */
	struct cmat q_a, q_b, kv_a, o; /* q_b is q_proj when q_lora_rank is null */
	struct cmat kv_b;             /* [H*(nope+v)][kv_lora]: W_UV rows are read in place */
	uint64_t uk_t, uk_t_s;        /* W_UK^T per head: codes [H][kv_lora][nope], scales
				         [H][ceil(kv_lora/128)][ceil(nope/128)] */
	struct cmat gu, down;         /* dense FFN */
	struct cmat *ex_gu, *ex_down; /* [E] routed experts */
	struct cmat sh_gu, sh_down;   /* shared experts (rows 0 when none) */
	uint64_t kv;                  /* f32 [max_seq][kv_lora+rope] latent cache */
	const struct layer_weights *lw;
	int moe;
};

/* A command list being built. */
struct ee_list {
	struct abi_cmd cmd[BACKEND_MAX_LIST];
	const char *what[BACKEND_MAX_LIST]; /* label per command (profile) */
	uint32_t n;
};

/* One profiled command. */
struct ee_prof {
	uint64_t t0, t1;   /* card ns */
	uint32_t op, cu;   /* opcode, CU index */
	const char *what;  /* label */
	int layer;         /* layer, -1 for final */
};

struct ee {
	struct backend *be;       /* the card (NULL in dry mode) */
	const struct config *c;
	const struct weights *w;
	int dry;                  /* what-if: lists are timed, not run */
	int max_seq;
	int n_hbm;                /* banks used for weights */
	uint32_t next_bank;       /* round-robin cursor */
	uint32_t act_bank;        /* bank of activations and KV */
	struct ee_layer *L;       /* [n_layers + 1] (the last is MTP when present) */
	int n_layers;
	/* activations (card) */
	uint64_t x, xn, qa, q, kva, kvrow, qcat, lat, ao, ffn, rw, tab;
	uint64_t *hb;             /* [topk+1] FFN hidden rows, f32 [inter] each */
	uint64_t final_norm;      /* model.norm f32 [hidden] */
	uint64_t mtp_head_norm;   /* MTP shared_head.norm f32 [hidden] */
	/* host */
	struct pool *pool;
	struct kern_ctx kc;       /* lm_head / eh_proj (BF16: not quantized) */
	float *hx, *hxn, *rlog, *cat, *u; /* [hidden], [hidden], [E], [2 hidden], [hidden] */
	float *mtp_hid;           /* [hidden] MTP shared_head.norm output of the last row */
	struct ee_list list;
	struct ee_xc *xc;         /* expert cache (--expert-slots), NULL = every expert resident */
	struct expert_trace_writer *xt; /* --expert-trace (engine_ops.expert_trace), NULL = off */
	float *xt_x;              /* [hidden] residual stream read back for the trace look-ahead */
	int cur_layer;
	float softmax_scale;
	/* statistics */
	uint64_t tokens, subs0, cmds0; /* tokens since the statistics restarted, counters then */
	uint64_t card0, link0;    /* modeled card busy / link ns then */
	double t_sched, t_wait, t_host, t_wall; /* s */
	double dry_ns;            /* dry mode: modeled card ns */
	struct ee_prof *prof;     /* profile records (when --profile) */
	size_t n_prof, cap_prof;
	const char *profile;
	/* allocations to free */
	struct backend_buf **bufs;
	size_t n_bufs, cap_bufs;
};

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec * 1e-9;
}

/* --- placement ----------------------------------------------------------------------------- */

/* Allocates bytes in bank (or the next weight bank when bank < 0) and writes src (if any). */
static int ee_place(struct ee *e, int bank, const void *src, size_t bytes, uint64_t *addr)
{
	if (e->dry) {
		*addr = ABI_ADDR(0, 0);
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

static int ee_write(struct ee *e, uint64_t addr, const void *src, size_t n)
{
	size_t off;
	if (e->dry)
		return 0;
	struct backend_buf *b = ee_buf(e, addr, &off);
	return b ? backend_buf_write(e->be, b, off, src, n) : -EFAULT;
}

static int ee_read(struct ee *e, uint64_t addr, void *dst, size_t n)
{
	size_t off;
	if (e->dry) {
		memset(dst, 0, n);
		return 0;
	}
	struct backend_buf *b = ee_buf(e, addr, &off);
	return b ? backend_buf_read(e->be, b, off, dst, n) : -EFAULT;
}

static size_t scale_bytes(int rows, int cols)
{
	return (size_t)((rows + 127) / 128) * ((cols + 127) / 128) * sizeof(float);
}

/* Places one FP8 matrix, or the pair (a, b) back to back when b is given. */
static int ee_mat(struct ee *e, const struct qmat *a, const struct qmat *b, struct cmat *out,
		  char *err, size_t errlen)
{
	if (a->fmt != QMAT_FP8 || (b && (b->fmt != QMAT_FP8 || b->rows != a->rows ||
					 b->cols != a->cols))) {
		snprintf(err, errlen, "%s: the card runs FP8 weights only", a->name);
		return -EINVAL;
	}
	size_t cb = (size_t)a->rows * a->cols, sb = scale_bytes(a->rows, a->cols);
	int n = b ? 2 : 1, r;
	out->rows = a->rows;
	out->cols = a->cols;
	if ((r = ee_place(e, -1, NULL, cb * n, &out->w)) || (r = ee_place(e, -1, NULL, sb * n, &out->sw)))
		goto fail;
	if ((r = ee_write(e, out->w, a->w, cb)) || (r = ee_write(e, out->sw, a->scale, sb)))
		goto fail;
	if (b && ((r = ee_write(e, out->w + cb, b->w, cb)) ||
		  (r = ee_write(e, out->sw + sb, b->scale, sb))))
		goto fail;
	return 0;
fail:
	snprintf(err, errlen, "%s: cannot place on the card (%s)", a->name, strerror(-r));
	return r;
}

static int ee_vec(struct ee *e, const float *v, int n, uint64_t *addr)
{
	return ee_place(e, (int)e->act_bank, v, sizeof(float) * (size_t)n, addr);
}

/* Head-sliced views of kv_b need each head's W_UK / W_UV rows inside whole scale blocks. */
static int slice_ok(int r0, int n)
{
	return r0 % 128 == 0 || (r0 % 128) + n <= 128;
}

static int ee_layer_init(struct ee *e, struct ee_layer *L, const struct layer_weights *lw,
			 int is_mtp, char *err, size_t errlen)
{
	const struct config *c = e->c;
	int H = c->num_attention_heads, nope = c->qk_nope_head_dim, vd = c->v_head_dim;
	int kvl = c->kv_lora_rank, rope = c->qk_rope_head_dim, r;
	L->lw = lw;
	L->moe = lw->is_moe;
	if ((r = ee_vec(e, lw->input_layernorm, c->hidden_size, &L->in_norm)) ||
	    (r = ee_vec(e, lw->post_attention_layernorm, c->hidden_size, &L->post_norm)) ||
	    (r = ee_vec(e, lw->kv_a_layernorm, kvl, &L->kv_a_norm)))
		return r;
	if (c->q_lora_rank > 0) {
		if ((r = ee_vec(e, lw->q_a_layernorm, c->q_lora_rank, &L->q_a_norm)) ||
		    (r = ee_mat(e, &lw->q_a_proj, NULL, &L->q_a, err, errlen)) ||
		    (r = ee_mat(e, &lw->q_b_proj, NULL, &L->q_b, err, errlen)))
			return r;
	} else if ((r = ee_mat(e, &lw->q_proj, NULL, &L->q_b, err, errlen))) {
		return r;
	}
	if ((r = ee_mat(e, &lw->kv_a_proj_with_mqa, NULL, &L->kv_a, err, errlen)) ||
	    (r = ee_mat(e, &lw->kv_b_proj, NULL, &L->kv_b, err, errlen)) ||
	    (r = ee_mat(e, &lw->o_proj, NULL, &L->o, err, errlen)))
		return r;
	/* W_UK^T per head: [kvl][nope] codes, scales [ceil(kvl/128)][ceil(nope/128)] */
	int kbn = (nope + 127) / 128, kbl = (kvl + 127) / 128;
	size_t hcodes = (size_t)kvl * nope, hsc = (size_t)kbl * kbn;
	for (int h = 0; h < H; h++) {
		int r0 = h * (nope + vd);
		if (!slice_ok(r0, nope) || !slice_ok(r0 + nope, vd)) {
			snprintf(err, errlen, "%s: head %d's W_UK/W_UV rows straddle a 128-row scale "
				 "block (nope %d, v %d): not supported on the card", lw->kv_b_proj.name,
				 h, nope, vd);
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
				t[(size_t)h * hcodes + (size_t)i * nope + d] = kb[(size_t)(r0 + d) * kvl + i];
		for (int ib = 0; ib < kbl; ib++)
			for (int db = 0; db < kbn; db++)
				ts[(size_t)h * hsc + (size_t)ib * kbn + db] =
				    ks[(size_t)(r0 / 128 + db) * sc + ib];
	}
	r = ee_place(e, -1, t, hcodes * H, &L->uk_t);
	if (!r)
		r = ee_place(e, -1, ts, sizeof(float) * hsc * H, &L->uk_t_s);
	free(t);
	free(ts);
	if (r)
		return r;
	if ((r = ee_place(e, (int)e->act_bank, NULL, sizeof(float) * (size_t)e->max_seq * (kvl + rope),
			  &L->kv)))
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
	(void)is_mtp;
	return 0;
}

/* --- command builders -------------------------------------------------------------------- */

static int ee_flush(struct ee *e);
static void ee_xc_after_list(struct ee *e, int r);
static int ee_xc_dl_submit(struct ee *e);

/* Next command of the list; a full list is submitted first (a flush is also a full barrier). */
static struct abi_cmd *ee_cmd(struct ee *e, enum abi_op op, const char *what)
{
	struct ee_list *l = &e->list;
	if (l->n >= BACKEND_MAX_LIST && ee_flush(e))
		return NULL;
	struct abi_cmd *c = &l->cmd[l->n];
	memset(c, 0, sizeof *c);
	abi_cmd_hdr_set(&c->hdr, op, l->n);
	c->hdr.word2 = ABI_W2(0, EE_CMD_TIMEOUT);
	l->what[l->n++] = what;
	return c;
}

static int ee_barrier(struct ee *e)
{
	return ee_cmd(e, ABI_OP_BARRIER, "barrier") ? 0 : -E2BIG;
}

/* y[1][n] (+)= act(a[1][k] f32) W^T with the given epilogue flags; rw: route weight address. */
static int ee_gemm(struct ee *e, const char *what, uint64_t a, const struct cmat *W, uint64_t y,
		   uint32_t flags, uint64_t rw, uint64_t w_off, uint64_t sw_off, int n, int k)
{
	struct abi_cmd *c = ee_cmd(e, ABI_OP_GEMM_FP8, what);
	if (!c)
		return -E2BIG;
	c->u.gemm.a = a;
	c->u.gemm.sa = rw;
	c->u.gemm.w = W->w + w_off;
	c->u.gemm.sw = W->sw + sw_off;
	c->u.gemm.y = y;
	c->u.gemm.m = 1;
	c->u.gemm.n = (uint32_t)(n ? n : W->rows);
	c->u.gemm.k = (uint32_t)(k ? k : W->cols);
	c->u.gemm.flags = ABI_GEMM_F_X_F32 | flags |
			  (e->c->quantization_config.ue8m0 && !(flags & ABI_GEMM_F_ACT_F32)
				   ? ABI_GEMM_F_UE8M0 : 0); /* ACT_F32: nothing is quantized */
	return 0;
}

static int ee_vecop(struct ee *e, enum abi_op op, const char *what, uint64_t x, uint64_t x2,
		    uint64_t w, uint64_t out, uint32_t rows, uint32_t cols, uint32_t lda,
		    uint32_t ldo, uint32_t pu, float pf, uint64_t tab)
{
	struct abi_cmd *c = ee_cmd(e, op, what);
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

#define TRY(x)                                                                                  \
	do {                                                                                    \
		int r_ = (x);                                                                   \
		if (r_)                                                                         \
			return r_;                                                              \
	} while (0)

/* Dry mode: time the list like the card would (firmware starts commands in order, one at a time;
 * a barrier waits for everything before it; each command takes the earliest free CU of its kind). */
static void ee_dry_time(struct ee *e)
{
	const struct abi_board *blk = &e->be->blk;
	uint64_t cu_free[ABI_MAX_CUS] = { 0 }, t_fw = 0, t_all = 0;
	uint32_t nc = ABI_BOARD_N_CUS(blk->counts), kclk = blk->cu_clk_khz;
	uint32_t bw = blk->banks[0].bw_mbps;
	for (uint32_t i = 0; i < e->list.n; i++) {
		const struct abi_cmd *c = &e->list.cmd[i];
		uint32_t op = ABI_W0_OP(c->hdr.word0);
		t_fw += 400; /* EMU_FW_CMD_NS */
		if (op == ABI_OP_BARRIER) {
			t_fw = t_fw > t_all ? t_fw : t_all;
			continue;
		}
		int best = -1;
		for (uint32_t k = 0; k < nc; k++)
			if ((blk->cus[k].ops_mask >> op & 1) && (best < 0 || cu_free[k] < cu_free[best]))
				best = (int)k;
		if (best < 0)
			continue;
		int64_t cyc = backend_cmd_cycles(c, bw, kclk);
		uint64_t t0 = t_fw > cu_free[best] ? t_fw : cu_free[best];
		uint64_t t1 = t0 + (uint64_t)(cyc > 0 ? cyc : 0) * 1000000ull / kclk;
		cu_free[best] = t1;
		t_all = t1 > t_all ? t1 : t_all;
	}
	e->dry_ns += (double)(t_all > t_fw ? t_all : t_fw);
}

/* Submits the list and waits for it. */
static int ee_flush(struct ee *e)
{
	if (!e->list.n)
		return e->xc ? ee_xc_dl_submit(e) : 0;
	if (e->dry) {
		ee_dry_time(e);
		e->list.n = 0;
		return 0;
	}
	uint64_t f;
	double t0 = now_s();
	int r = backend_submit(e->be, 0, e->list.cmd, e->list.n, &f);
	/* the detached fills queued in this step start now too and run on behind this list; a
	 * failed submit has emptied their slots (misses later), which this list does not read */
	if (!r && e->xc)
		(void)ee_xc_dl_submit(e);
	if (!r)
		r = backend_wait(e->be, f, EE_TIMEOUT_MS);
	e->t_wait += now_s() - t0;
	if (r == -EIO && getenv("MOECARD_EMU_DEBUG")) {
		const struct abi_cpl *cp;
		uint32_t nn;
		backend_completions(e->be, &cp, &nn);
		for (uint32_t i = 0; i < nn; i++)
			if (ABI_CPL_STATUS(cp[i].word1))
				fprintf(stderr, "emu: layer %d cmd %u (%s): %s detail 0x%x\n", e->cur_layer,
					i, e->list.what[i], abi_status_name(ABI_CPL_STATUS(cp[i].word1)),
					cp[i].detail);
	}
	if (e->profile && r != -ETIMEDOUT) {
		const struct abi_cpl *cpl;
		uint32_t n;
		backend_completions(e->be, &cpl, &n);
		if (e->n_prof + n > e->cap_prof) {
			size_t cap = (e->cap_prof + n) * 2;
			void *p = realloc(e->prof, cap * sizeof *e->prof);
			if (p) {
				e->prof = p;
				e->cap_prof = cap;
			}
		}
		for (uint32_t i = 0; i < n && e->n_prof < e->cap_prof; i++) {
			uint32_t op = ABI_CPL_OP(cpl[i].word1);
			if (op == ABI_OP_BARRIER)
				continue;
			e->prof[e->n_prof++] = (struct ee_prof){ cpl[i].t_start, cpl[i].t_end, op,
								  ABI_CPL_CU(cpl[i].word1),
								  e->list.what[i], e->cur_layer };
		}
	}
	if (e->xc)
		ee_xc_after_list(e, r);
	e->list.n = 0;
	return r;
}

/* MLA sublayer of layer l at position p, through the post-attention norm into xn. */
static int ee_mla(struct ee *e, const struct ee_layer *L, int p)
{
	const struct config *c = e->c;
	int H = c->num_attention_heads, nope = c->qk_nope_head_dim, rope = c->qk_rope_head_dim;
	int vd = c->v_head_dim, kvl = c->kv_lora_rank, ql = c->q_lora_rank, row = kvl + rope;
	float eps = (float)c->rms_norm_eps;
	uint32_t qd = (uint32_t)(nope + rope);
	TRY(ee_vecop(e, ABI_OP_RMSNORM, "input_layernorm", e->x, 0, L->in_norm, e->xn, 1,
		     (uint32_t)c->hidden_size, 0, 0, 0, eps, 0));
	TRY(ee_barrier(e));
	if (ql > 0)
		TRY(ee_gemm(e, "q_a_proj", e->xn, &L->q_a, e->qa, 0, 0, 0, 0, 0, 0));
	else
		TRY(ee_gemm(e, "q_proj", e->xn, &L->q_b, e->q, 0, 0, 0, 0, 0, 0));
	TRY(ee_gemm(e, "kv_a_proj", e->xn, &L->kv_a, e->kva, 0, 0, 0, 0, 0, 0));
	TRY(ee_barrier(e));
	if (ql > 0)
		TRY(ee_vecop(e, ABI_OP_RMSNORM, "q_a_layernorm", e->qa, 0, L->q_a_norm, e->qa, 1,
			     (uint32_t)ql, 0, 0, 0, eps, 0));
	TRY(ee_vecop(e, ABI_OP_RMSNORM, "kv_a_layernorm", e->kva, 0, L->kv_a_norm, e->kvrow, 1,
		     (uint32_t)kvl, 0, 0, 0, eps, 0));
	TRY(ee_vecop(e, ABI_OP_ROPE, "rope k_pe", e->kva + 4 * (uint64_t)kvl, 0, 0,
		     e->kvrow + 4 * (uint64_t)kvl, 1, (uint32_t)rope, 0, 0, (uint32_t)p,
		     (float)c->rope_theta, e->tab));
	TRY(ee_barrier(e));
	if (ql > 0)
		TRY(ee_gemm(e, "q_b_proj", e->qa, &L->q_b, e->q, 0, 0, 0, 0, 0, 0));
	struct abi_cmd *k = ee_cmd(e, ABI_OP_KV_APPEND, "kv_append");
	if (!k)
		return -E2BIG;
	k->u.kv.src = e->kvrow;
	k->u.kv.cache = L->kv;
	k->u.kv.row = (uint32_t)row;
	k->u.kv.pos = (uint32_t)p;
	k->u.kv.ctx_cap = (uint32_t)e->max_seq;
	TRY(ee_barrier(e));
	/* q_pe of every head, roped into the attention query rows [H][kvl + rope] */
	TRY(ee_vecop(e, ABI_OP_ROPE, "rope q_pe", e->q + 4 * (uint64_t)nope, 0, 0,
		     e->qcat + 4 * (uint64_t)kvl, (uint32_t)H, (uint32_t)rope, qd, (uint32_t)row,
		     (uint32_t)p, (float)c->rope_theta, e->tab));
	int kbn = (nope + 127) / 128, kbl = (kvl + 127) / 128;
	struct cmat ukt = { L->uk_t, L->uk_t_s, kvl, nope };
	for (int h = 0; h < H; h++)
		TRY(ee_gemm(e, "W_UK^T q_nope", e->q + 4 * (uint64_t)h * qd, &ukt,
			    e->qcat + 4 * (uint64_t)h * row, ABI_GEMM_F_ACT_F32, 0, (uint64_t)h * kvl * nope,
			    4 * (uint64_t)h * kbl * kbn, kvl, nope));
	TRY(ee_barrier(e));
	struct abi_cmd *m = ee_cmd(e, ABI_OP_MLA_ATTN, "mla_attn");
	if (!m)
		return -E2BIG;
	m->u.mla.q = e->qcat;
	m->u.mla.kv = L->kv;
	m->u.mla.out = e->lat;
	m->u.mla.n_heads = (uint32_t)H;
	m->u.mla.kv_lora = (uint32_t)kvl;
	m->u.mla.rope = (uint32_t)rope;
	m->u.mla.n_ctx = (uint32_t)p + 1;
	m->u.mla.ctx_cap = (uint32_t)e->max_seq;
	memcpy(&m->u.mla.scale, &e->softmax_scale, 4);
	TRY(ee_barrier(e));
	int sc = (kvl + 127) / 128;
	for (int h = 0; h < H; h++) {
		uint64_t r0 = (uint64_t)h * (nope + vd) + nope;
		TRY(ee_gemm(e, "W_UV o_lat", e->lat + 4 * (uint64_t)h * kvl, &L->kv_b,
			    e->ao + 4 * (uint64_t)h * vd, ABI_GEMM_F_ACT_F32, 0, r0 * kvl, 4 * (r0 / 128) * sc, vd, kvl));
	}
	TRY(ee_barrier(e));
	TRY(ee_gemm(e, "o_proj + residual", e->ao, &L->o, e->x, ABI_GEMM_F_RESIDUAL, 0, 0, 0, 0, 0));
	TRY(ee_barrier(e));
	TRY(ee_vecop(e, ABI_OP_RMSNORM, "post_attention_layernorm", e->x, 0, L->post_norm, e->xn, 1,
		     (uint32_t)c->hidden_size, 0, 0, 0, eps, 0));
	return ee_barrier(e);
}

/* Dense FFN: x += down(silu(gate xn) * up xn). */
static int ee_dense(struct ee *e, const struct ee_layer *L)
{
	TRY(ee_gemm(e, "gate|up silu", e->xn, &L->gu, e->hb[0], ABI_GEMM_F_SILU_MUL, 0, 0, 0, 0, 0));
	TRY(ee_barrier(e));
	TRY(ee_gemm(e, "down + residual", e->hb[0], &L->down, e->x, ABI_GEMM_F_RESIDUAL, 0, 0, 0, 0,
		    0));
	return ee_barrier(e);
}

/* --- expert cache (issue 7) ---------------------------------------------------------------
 * With --expert-slots N the routed experts stay in host memory (the checkpoint mmap) and N
 * fixed-size slots (expert_cache.h layout: gate|up codes back to back, down codes, then the three
 * scale arrays) are placed round-robin over the weight banks. After the router of a MoE layer:
 *   hit            the expert's GEMMs read its slot;
 *   miss -> DMA    the policy picks a slot; six DMA_FILL commands (one per part, SRC_HOST from the
 *                  mmap, all on one H2C channel so they land in order) go at the head of the
 *                  layer's list; the last signals a fence that the expert's gate|up GEMM waits on;
 *   miss -> host   (--expert-host) the host runs the expert with the hls fp8_gemm C function,
 *                  exactly the card's computation (DESIGN.md 3), and the card adds route_w * y
 *                  into the FFN sum at the expert's place in router order (RESIDUAL_ADD), which is
 *                  bit-identical to the ACCUM epilogue (y_old + route_w * acc, no contraction);
 *   prefetch       (--expert-prefetch) the next MoE layer's gate on the residual read back here
 *                  predicts its experts and their slots are filled ahead.
 * Prefetches and background fills of host-run misses are detached when the backend takes a list
 * per ring (BACKEND_CAP_RINGS): one list of them on ring 1 runs across layer steps (ee_xc_df_add,
 * ee_xc_dl_submit, ee_xc_dl_collect); its slots are EXPERT_SLOT_INFLIGHT until it is seen
 * complete, and GEMMs on them wait for their fence across rings. Otherwise (one list in flight,
 * or MOECARD_EXPERT_SYNC_FILLS=1) they sit in the layer's list: background fills after the demand
 * fills, prefetches spread over the down chain.
 * Slot locks end when the list completes (ee_flush). Every decision goes to the cache's event
 * trace (--expert-events). DMA time hidden is measured on the card timeline of both rings: the
 * fraction of time some fill was in flight while some CU computed (ee_xc_account). Host time is
 * MODELED (bytes / host rate) and counted where it would outlast the card's work before its
 * merge. */

/* One edge of a command's [t_start, t_end) on the card timeline. */
struct ee_xev {
	uint64_t t;   /* card ns */
	int kind;     /* +1/-1 DMA fill start/end, +2/-2 CU command start/end */
};

/* A command's [t0, t1) on the card timeline, kept until the DMA statistics account for it. */
struct ee_xiv {
	uint64_t t0, t1; /* card ns */
	int cu;          /* 1: a CU command of a ring 0 list, 0: an expert fill (either ring) */
};

/* One detached fill: expert f into slot s on H2C channel ch; its six parts are chained by fence
 * fid (part p signals v + p + 1 and part p > 0 waits for v + p), so a failed part fails every
 * later one and the GEMMs waiting for v + 6 get DEP_ERROR instead of reading a half-filled slot. */
struct ee_xdf {
	const struct ffn_weights *f;
	int s;
	uint32_t ch, fid, v;
};

#define EE_XC_REPIN 32 /* PIN: tokens between re-pinning on the measured load */
/* Fence ids: fills inside ring 0's lists (demand, pins) use 1..EE_XC_DFENCE0-1 round robin,
 * detached fills on ring 1 use EE_XC_DFENCE0..ABI_MAX_FENCES-1, one id per fill of the list (so
 * a detached list holds at most EE_XC_NDF fills: the link budget besides "one list at a time") */
#define EE_XC_DFENCE0 (ABI_MAX_FENCES / 2)
#define EE_XC_NDF ((int)(ABI_MAX_FENCES - EE_XC_DFENCE0))
#define EE_XC_RING 1u /* ring of the detached fills */

struct ee_xc {
	struct expert_cache cache;      /* keys layer * E + expert, layers [0, n_layers] incl. MTP */
	struct expert_slot_layout lay;  /* one slot's parts */
	uint64_t *slot_addr;            /* [n_slots] card address of each slot */
	int host_mode;                  /* 0 off, 1 auto (modeled cost), 2 always */
	int from_board;                 /* --expert-slots board: slots until the card is full */
	int prefetch;                   /* 1: look-ahead prefetch on */
	uint32_t h2c[ABI_MAX_DMA];      /* H2C-capable channel indices */
	int n_h2c;
	double dma_bps, dma_lat_s;      /* modeled fill rate per channel, bytes/s; per fill, s */
	double host_bps;                /* modeled host expert rate, weight bytes/s */
	double gemm_s;                  /* modeled card time of one expert's gate|up + down, s */
	uint32_t fence_val[ABI_MAX_FENCES]; /* last value signalled per fence id */
	uint32_t next_fence;            /* round-robin fence id cursor */
	/* this layer step, by router rank j */
	int slot[EE_MAX_TOPK];          /* slot read by the GEMMs, -1 = run on the host */
	uint32_t fid[EE_MAX_TOPK];      /* fence the gate|up waits on, 0 = none */
	uint32_t fval[EE_MAX_TOPK];     /* its value */
	uint64_t hres[EE_MAX_TOPK];     /* card f32 [hidden]: route_w * y of a host-run expert */
	int pf_key[EE_MAX_TOPK];        /* prefetch fills queued for the down chain: slot */
	int pf_exp[EE_MAX_TOPK], pf_layer[EE_MAX_TOPK], pf_ch[EE_MAX_TOPK], n_pf;
	uint64_t bg_fills;              /* background fills of host-run misses (--expert-host auto) */
	float *hid, *hout, *hres_x, *plog; /* host [inter], [hidden], [hidden], [E] scratch */
	int host_add_cmd;               /* list index of the first host merge, -1 none */
	double host_layer_s;            /* modeled host seconds of this layer's host experts */
	struct ee_xev *ev;              /* [2 * BACKEND_MAX_LIST] timeline sweep scratch */
	int32_t *key0;                  /* [n_slots] slot keys before a re-pin (PIN) */
	uint64_t pin_fills;             /* slots filled by re-pinning */
	FILE *events;                   /* --expert-events */
	/* statistics since the last restart */
	uint64_t accesses, hits, miss_dma, miss_host, pf_issued, pf_used, pf_wasted, evictions;
	uint64_t pf_pred, pf_pred_hit;  /* predicted experts, of which the router then chose */
	double dma_bytes;               /* bytes filled over the link */
	double dma_busy_ns, dma_exposed_ns; /* card time with a fill in flight; of it, no CU busy */
	double host_s, host_exposed_ns; /* modeled host expert time; part not hidden by the card */
	int pred[EE_MAX_TOPK], pred_layer; /* last prediction (layer, experts), for its accuracy */
	/* detached fills (backend with BACKEND_CAP_RINGS): prefetches and background fills go into
	 * a list of their own on ring 1 that runs across layer steps; a later step's GEMM on such a
	 * slot waits for its fence (cross-ring) unless the list is known complete */
	int async;                      /* 1: detached fills on; 0: every fill in ring 0's list */
	struct ee_xdf df[EE_XC_NDF];    /* fills of the list being built (submitted at the flush) */
	int n_df;
	struct ee_xdf dfly[EE_XC_NDF];  /* fills of the ring 1 list in flight */
	int n_dfly;
	uint64_t dl_fence;              /* backend fence of that list, 0 = none in flight */
	uint64_t dl_t0;                 /* card time bound before which none of its fills started */
	struct abi_cmd *dl_cmd;         /* [BACKEND_MAX_LIST] its commands */
	uint32_t next_dfence;           /* cursor over the detached fence ids */
	uint32_t *pend_fid, *pend_fval; /* [n_slots] fence of a detached fill in flight, 0 = none */
	uint64_t df_fills, df_failed;   /* detached fills issued; of them, failed (slot emptied) */
	uint64_t df_busy_steps;         /* steps that issued no detached fill: the list was busy */
	double drain_ns;                /* card time spent waiting for detached fills alone (a
					   rewind): idle card time outside ring 0's busy time */
	/* DMA statistics over the card timeline: commands not yet accounted for, time accounted */
	struct ee_xiv *iv;
	size_t n_iv, cap_iv;
	size_t cap_ev;                  /* entries of ev */
	uint64_t t_done, t_seen;        /* accounted up to; latest t_end seen */
};


/* Parses the options and sets up the cache before placement. 0 or -EINVAL/-ENOMEM (err). */
static int ee_xc_init(struct ee *e, const struct engine_extra *x, char *err, size_t errlen)
{
	const struct config *c = e->c;
	int E = c->n_routed_experts, moe = 0;
	if (!x || (x->expert_slots == 0 && x->expert_slots_pct <= 0))
		return 0;
	for (int l = 0; l < e->n_layers; l++)
		moe += l < c->num_hidden_layers ? config_layer_is_moe(c, l) : e->w->mtp->is_moe;
	if (E < 1 || !moe) {
		snprintf(err, errlen, "--expert-slots: config.json has no routed experts");
		return -EINVAL;
	}
	if (c->num_experts_per_tok >= (int)EE_XC_DFENCE0) { /* a fence id per demand fill */
		snprintf(err, errlen, "--expert-slots: at most %u experts per token",
			 EE_XC_DFENCE0 - 1);
		return -EINVAL;
	}
	int n = x->expert_slots > 0 ? x->expert_slots
		: x->expert_slots < 0 ? moe * E /* board: the cap; ee_xc_place places what fits */
				      : (int)((int64_t)moe * E * x->expert_slots_pct / 100);
	if (n < c->num_experts_per_tok)
		n = c->num_experts_per_tok; /* one layer's choice must fit */
	if (n > moe * E)
		n = moe * E;
	enum expert_policy pol = EXPERT_POLICY_LRU;
	const char *pn = x->expert_policy ? x->expert_policy : "lru";
	for (int p = 0; p < EXPERT_POLICY_N; p++)
		if (!strcmp(pn, expert_policy_name((enum expert_policy)p)))
			pol = (enum expert_policy)p;
	if (strcmp(pn, expert_policy_name(pol))) {
		snprintf(err, errlen, "--expert-policy: expected lru, lfu, pin or belady, got '%s'", pn);
		return -EINVAL;
	}
	if (pol == EXPERT_POLICY_BELADY) {
		snprintf(err, errlen, "--expert-policy belady: the offline optimum needs the future; "
				      "replay a routing trace with moecard cache-sim");
		return -EINVAL;
	}
	const char *hm = x->expert_host ? x->expert_host : "off";
	int host = !strcmp(hm, "off") ? 0 : !strcmp(hm, "auto") ? 1 : !strcmp(hm, "always") ? 2 : -1;
	if (host < 0) {
		snprintf(err, errlen, "--expert-host: expected off, auto or always, got '%s'", hm);
		return -EINVAL;
	}
	struct ee_xc *xc = calloc(1, sizeof *xc);
	if (!xc)
		return -ENOMEM;
	e->xc = xc;
	int D = c->hidden_size, I = c->moe_intermediate_size;
	xc->host_mode = host;
	xc->from_board = x->expert_slots < 0;
	xc->prefetch = x->expert_prefetch;
	xc->host_add_cmd = -1;
	xc->pred_layer = -1;
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
	xc->async = !e->dry && (e->be->caps & BACKEND_CAP_RINGS) && !(sync && atoi(sync));
	xc->dl_cmd = xc->async ? calloc(BACKEND_MAX_LIST, sizeof *xc->dl_cmd) : NULL;
	if (!xc->slot_addr || !xc->hid || !xc->hout || !xc->hres_x || !xc->plog || !xc->ev ||
	    !xc->key0 || !xc->pend_fid || !xc->pend_fval || (xc->async && !xc->dl_cmd))
		return -ENOMEM;
	if (x->expert_events && !(xc->events = fopen(x->expert_events, "w"))) {
		snprintf(err, errlen, "--expert-events %s: %s", x->expert_events, strerror(errno));
		return -errno;
	}
	xc->cache.events = xc->events;
	const struct abi_board *blk = &e->be->blk;
	uint32_t nd = ABI_BOARD_N_DMA(blk->counts);
	for (uint32_t i = 0; i < nd; i++)
		if (blk->dma[i].word & ABI_DMA_CAP_H2C) {
			xc->h2c[xc->n_h2c++] = i;
			xc->dma_bps = blk->dma[i].bw_mbps * 1e6;
		}
	if (!xc->n_h2c) {
		snprintf(err, errlen, "%s: --expert-slots needs a host-to-card DMA channel",
			 e->be->board.model);
		return -EINVAL;
	}
	xc->dma_lat_s = 1e-6; /* per descriptor (board dts latency-ns of the emu channels) */
	xc->host_bps = x->expert_host_gbps > 0 ? x->expert_host_gbps * 1e9 : 0;
	if (!xc->host_bps) {
		/* measured: one expert's three GEMVs with the cpu kernels (f32 accumulate; the exact
		 * fp8_gemm the host really runs costs the same memory traffic) */
		struct timespec a, b;
		const struct ffn_weights *f = NULL;
		for (int l = 0; l < c->num_hidden_layers && !f; l++)
			if (e->w->layers[l].is_moe)
				f = &e->w->layers[l].experts[0];
		for (int i = 0; i < D; i++)
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
		xc->host_bps = dt > 0 ? reps * (double)xc->lay.payload / dt : 1e9;
	}
	struct abi_cmd g;
	memset(&g, 0, sizeof g);
	abi_cmd_hdr_set(&g.hdr, ABI_OP_GEMM_FP8, 0);
	g.u.gemm = (struct abi_gemm){ .m = 1, .n = (uint32_t)I, .k = (uint32_t)D,
				      .flags = ABI_GEMM_F_X_F32 | ABI_GEMM_F_SILU_MUL };
	uint32_t kclk = blk->cu_clk_khz, bw = blk->banks[0].bw_mbps;
	int64_t c1 = backend_cmd_cycles(&g, bw, kclk);
	g.u.gemm = (struct abi_gemm){ .m = 1, .n = (uint32_t)D, .k = (uint32_t)I,
				      .flags = ABI_GEMM_F_X_F32 | ABI_GEMM_F_ACCUM };
	int64_t c2 = backend_cmd_cycles(&g, bw, kclk);
	xc->gemm_s = kclk ? (double)((c1 > 0 ? c1 : 0) + (c2 > 0 ? c2 : 0)) / (kclk * 1e3) : 0;
	return 0;
}

/* Places the slots and the host-result buffers after the resident weights. */
static int ee_xc_place(struct ee *e)
{
	struct ee_xc *xc = e->xc;
	int r;
	for (int j = 0; j < e->c->num_experts_per_tok; j++)
		if ((r = ee_place(e, (int)e->act_bank, NULL, sizeof(float) * (size_t)e->c->hidden_size,
				  &xc->hres[j])))
			return r;
	for (int s = 0; s < xc->cache.n_slots; s++) {
		r = ee_place(e, -1, NULL, (size_t)xc->lay.bytes, &xc->slot_addr[s]);
		if (r == -ENOMEM && xc->from_board && s >= e->c->num_experts_per_tok) {
			xc->cache.n_slots = s; /* the card is full: these many slots */
			break;
		}
		if (r)
			return r;
	}
	return 0;
}

static void ee_xc_free(struct ee *e)
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

static int ee_cmd_count(const struct ee *e) { return (int)e->list.n; }

/* Queues the six fills of expert f into slot s on H2C channel ch; the last signals fence fid
 * (0 = none) with value fval. */
static int ee_xc_fill_cmds(struct ee *e, const struct ffn_weights *f, int s, uint32_t ch,
			   uint32_t fid, uint32_t fval)
{
	struct ee_xc *xc = e->xc;
	struct dma_sg sg[EXPERT_SLOT_PARTS];
	int n = expert_slot_sg(f, &xc->lay, 0, 0, sg);
	if (n != EXPERT_SLOT_PARTS)
		return -EINVAL;
	for (int p = 0; p < n; p++) {
		struct abi_cmd *c = ee_cmd(e, ABI_OP_DMA_FILL, p == n - 1 ? "expert fill (signal)"
									  : "expert fill");
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
	xc->iv[xc->n_iv++] = (struct ee_xiv){ t0, t1, cu };
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
		xc->ev[ne++] = (struct ee_xev){ a, v->cu ? 2 : 1 };
		xc->ev[ne++] = (struct ee_xev){ b, v->cu ? -2 : -1 };
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
	xc->df[xc->n_df++] = (struct ee_xdf){ f, s, ch, fid, v };
	xc->cache.flags[s] |= EXPERT_SLOT_INFLIGHT;
	xc->pend_fid[s] = fid;
	xc->pend_fval[s] = v + EXPERT_SLOT_PARTS;
	xc->dma_bytes += (double)xc->lay.payload;
	xc->df_fills++;
	return 0;
}

/* Submits the detached fills queued in this step as one list on ring EE_XC_RING (called by
 * ee_flush right after ring 0's list, so this step's demand fills reach the channels first).
 * Parts go out part by part over the fills: each part waits for the previous part of its own
 * fill, so fill-major order would let one fill's wait block the ring for the others. */
static int ee_xc_dl_submit(struct ee *e)
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
			if (e->profile && e->n_prof < e->cap_prof)
				e->prof[e->n_prof++] = (struct ee_prof){
					c->t_start, c->t_end, ABI_OP_DMA_FILL, 0xFFu,
					"detached expert fill", -1 };
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
static void ee_xc_drain(struct ee *e)
{
	struct ee_xc *xc = e->xc;
	if (!xc || !xc->async)
		return;
	ee_xc_df_drop(xc, xc->df, xc->n_df);
	xc->n_df = 0;
	if (!xc->dl_fence)
		return;
	struct backend_stats s0, s1;
	e->be->iface->stats(e->be, &s0);
	int r = ee_xc_dl_collect(e, EE_TIMEOUT_MS);
	e->be->iface->stats(e->be, &s1);
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
	int r = fp8_gemm(e->hxn, NULL, f->gate.w, f->gate.scale, f->up.w, f->up.scale, xc->hid, NULL,
			 NULL, 1, I, D, FP8_GEMM_X_F32 | FP8_GEMM_SILU_MUL | ue);
	memset(out, 0, sizeof(float) * (size_t)D);
	if (!r)
		r = fp8_gemm(xc->hid, NULL, f->down.w, f->down.scale, NULL, NULL, out, NULL, &rw, 1, D,
			     I, FP8_GEMM_X_F32 | FP8_GEMM_ACCUM | ue);
	return r;
}

/* After routing layer li: hits, misses (DMA or host), prefetch of the next MoE layer. */
static int ee_xc_route(struct ee *e, int li, int pos, const int *idx, const float *w)
{
	struct ee_xc *xc = e->xc;
	const struct config *c = e->c;
	const struct ee_layer *L = &e->L[li];
	int k = c->num_experts_per_tok, D = c->hidden_size, r;
	double eb = (double)xc->lay.payload;
	xc->cache.ev_pos = pos;
	xc->host_add_cmd = -1;
	xc->host_layer_s = 0;
	xc->n_pf = 0;
	/* the detached list of earlier steps: when it completed, its slots need no wait and failed
	 * fills are misses now; while it runs, this step issues no detached fill (link budget: one
	 * list of them at a time) */
	int df_free = 0;
	if (xc->async && (df_free = ee_xc_dl_collect(e, 0)) == 0)
		xc->df_busy_steps++;
	/* PIN: every EE_XC_REPIN tokens, at the first MoE layer (nothing locked then), pin the
	 * hottest half of the slots by measured load; the fills land before a barrier */
	if (xc->cache.policy == EXPERT_POLICY_PIN && li == c->first_k_dense_replace && pos > 0 &&
	    pos % EE_XC_REPIN == 0) {
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
			TRY(ee_xc_fill_cmds(e, f, s, xc->h2c[nf++ % xc->n_h2c], 0, 0));
			xc->pin_fills++;
		}
		if (nf)
			TRY(ee_barrier(e));
	}
	if (xc->pred_layer == li) {
		for (int j = 0; j < k; j++)
			for (int i = 0; i < k; i++)
				xc->pf_pred_hit += xc->pred[i] == idx[j];
		xc->pf_pred += (uint64_t)k;
	}
	/* demand lookups: hits lock their slots first so that no fill of this step evicts them */
	int miss[EE_MAX_TOPK], n_miss = 0;
	for (int j = 0; j < k; j++) {
		xc->fid[j] = 0;
		uint64_t pu0 = xc->cache.st.prefetch_used;
		int s = expert_cache_access(&xc->cache, li, idx[j], UINT64_MAX);
		xc->accesses++;
		xc->slot[j] = s;
		if (s >= 0 && (xc->cache.flags[s] & EXPERT_SLOT_INFLIGHT)) {
			xc->fid[j] = xc->pend_fid[s]; /* its detached fill is still on its way */
			xc->fval[j] = xc->pend_fval[s];
		}
		if (s >= 0) {
			xc->hits++;
			xc->pf_used += xc->cache.st.prefetch_used - pu0;
			expert_cache_event(&xc->cache, EXPERT_EV_HIT, li, idx[j]);
		} else {
			miss[n_miss++] = j;
		}
	}
	/* misses: modeled DMA finish vs when the card needs the expert vs the host finishing it */
	int hits = k - n_miss, n_host = 0, host_key[EE_MAX_TOPK];
	double ahead = ((1 + hits + 3) / 4) * xc->gemm_s; /* shared + hits over 4 GEMM CUs */
	double host_t = 0, ch_t[ABI_MAX_DMA] = { 0 };
	int n_fill = 0;
	for (int m = 0; m < n_miss; m++) {
		int j = miss[m];
		const struct ffn_weights *f = &L->lw->experts[idx[j]];
		int ci = n_fill % xc->n_h2c;
		double dma_end = ch_t[ci] + eb / xc->dma_bps + EXPERT_SLOT_PARTS * xc->dma_lat_s;
		double need = ahead + m * xc->gemm_s / 4;
		double h_end = host_t + eb / xc->host_bps;
		int on_host = xc->host_mode == 2 ||
			      (xc->host_mode == 1 && dma_end > need && h_end < dma_end);
		if (!on_host) {
			int victim = -1;
			int s = expert_cache_fill(&xc->cache, li, idx[j], UINT64_MAX, 0, &victim);
			if (s < 0)
				on_host = 1; /* every slot locked: run it on the host */
			else {
				if (victim >= 0) {
					xc->evictions++;
					expert_cache_event(&xc->cache, EXPERT_EV_EVICT,
							   victim / xc->cache.n_experts,
							   victim % xc->cache.n_experts);
				}
				/* fence ids 1..EE_XC_DFENCE0-1, round robin (the rest are the
				 * detached fills'); a list holds at most k signalling fills and
				 * every ring 0 list completes before the next one */
				uint32_t fid = xc->next_fence % (EE_XC_DFENCE0 - 1) + 1;
				xc->next_fence = fid;
				xc->fid[j] = fid;
				xc->fval[j] = ++xc->fence_val[fid];
				xc->slot[j] = s;
				TRY(ee_xc_fill_cmds(e, f, s, xc->h2c[ci], fid, xc->fval[j]));
				ch_t[ci] = dma_end;
				n_fill++;
				xc->miss_dma++;
				expert_cache_event(&xc->cache, EXPERT_EV_MISS_DMA, li, idx[j]);
			}
		}
		if (on_host) {
			double t0 = now_s();
			if ((r = ee_xc_host_expert(e, f, w[j], xc->hout)))
				return r;
			TRY(ee_write(e, xc->hres[j], xc->hout, sizeof(float) * (size_t)D));
			e->t_host += now_s() - t0;
			xc->slot[j] = -1;
			host_t = h_end;
			xc->host_layer_s = h_end;
			xc->miss_host++;
			expert_cache_event(&xc->cache, EXPERT_EV_MISS_HOST, li, idx[j]);
			n_host++;
			host_key[n_host - 1] = j;
		}
	}
	/* auto: a host-run miss is filled behind the card's work (a background fill at the head of
	 * the list after the demand fills, flagged like a prefetch) when a channel can land it before
	 * this list's GEMMs end (link budget); the slot stays locked until the list completes, so
	 * no other fill of the list takes it over */
	double budget = (1 + k - n_host) * xc->gemm_s;
	for (int m = 0; xc->host_mode == 1 && m < n_host; m++) {
		/* the least loaded channel; detached: the fill runs on across the next layers; in
		 * the list: only on a channel no demand fill uses, landing within the list */
		int ci = 0;
		for (int q = 1; q < xc->n_h2c; q++)
			ci = ch_t[q] < ch_t[ci] ? q : ci;
		double end = ch_t[ci] + eb / xc->dma_bps + EXPERT_SLOT_PARTS * xc->dma_lat_s;
		if (xc->async ? !df_free || xc->n_df >= EE_XC_NDF : ch_t[ci] > 0 || end > budget)
			break;
		int victim = -1, j = host_key[m];
		uint64_t w0 = xc->cache.st.prefetch_wasted;
		int s = expert_cache_fill(&xc->cache, li, idx[j], UINT64_MAX, 1, &victim);
		if (s < 0)
			break;
		expert_cache_lock(&xc->cache, s);
		xc->pf_wasted += xc->cache.st.prefetch_wasted - w0;
		if (victim >= 0)
			xc->evictions++;
		ch_t[ci] = end;
		if (xc->async)
			TRY(ee_xc_df_add(e, &L->lw->experts[idx[j]], s, xc->h2c[ci]));
		else
			TRY(ee_xc_fill_cmds(e, &L->lw->experts[idx[j]], s, xc->h2c[ci], 0, 0));
		xc->bg_fills++;
	}
	xc->host_s += xc->host_layer_s;
	/* look-ahead: the next MoE layer's gate on this residual (after attention), its post-attention
	 * norm first, as the trace writer predicts (expert_trace.h pred1) */
	int nl = li + 1;
	xc->pred_layer = -1;
	if (!xc->prefetch || nl >= c->num_hidden_layers || !e->L[nl].moe)
		return 0;
	const struct layer_weights *nw = e->L[nl].lw;
	TRY(ee_read(e, e->x, xc->hres_x, sizeof(float) * (size_t)D));
	TRY(expert_trace_predict(c, nw, &e->kc, xc->hres_x, 1, xc->hout, xc->plog, xc->pred));
	xc->pred_layer = nl;
	/* predicted experts already resident are kept for their use: no fill of this list may
	 * evict them (locks end when the list completes) */
	for (int j = 0; j < k; j++)
		if (xc->pred[j] >= 0 && xc->pred[j] < c->n_routed_experts)
			expert_cache_lock(&xc->cache, expert_cache_lookup(&xc->cache, nl, xc->pred[j]));
	for (int j = 0; j < k; j++) {
		int pe = xc->pred[j];
		if (pe < 0 || pe >= c->n_routed_experts || expert_cache_lookup(&xc->cache, nl, pe) >= 0)
			continue;
		if (xc->async && (!df_free || xc->n_df >= EE_XC_NDF))
			break;
		int victim = -1;
		uint64_t w0 = xc->cache.st.prefetch_wasted;
		int s = expert_cache_fill(&xc->cache, nl, pe, UINT64_MAX, 1, &victim);
		if (s < 0)
			break;
		xc->pf_wasted += xc->cache.st.prefetch_wasted - w0;
		if (victim >= 0) {
			xc->evictions++;
			expert_cache_event(&xc->cache, EXPERT_EV_EVICT, victim / xc->cache.n_experts,
					   victim % xc->cache.n_experts);
		}
		expert_cache_lock(&xc->cache, s);
		if (xc->async) { /* detached, on the least loaded channel */
			int ci = 0;
			for (int q = 1; q < xc->n_h2c; q++)
				ci = ch_t[q] < ch_t[ci] ? q : ci;
			ch_t[ci] += eb / xc->dma_bps + EXPERT_SLOT_PARTS * xc->dma_lat_s;
			TRY(ee_xc_df_add(e, &nw->experts[pe], s, xc->h2c[ci]));
			xc->pf_issued++;
			expert_cache_event(&xc->cache, EXPERT_EV_PREFETCH, nl, pe);
			continue;
		}
		xc->pf_key[xc->n_pf] = s;
		xc->pf_exp[xc->n_pf] = pe;
		xc->pf_ch[xc->n_pf] = xc->n_pf % xc->n_h2c;
		xc->pf_layer[xc->n_pf++] = nl;
		xc->pf_issued++;
		expert_cache_event(&xc->cache, EXPERT_EV_PREFETCH, nl, pe);
	}
	return 0;
}

/* After a ring 0 list: its CU commands and fills go to the DMA statistics (ee_xc_account); the
 * modeled host time not covered by the card's work before the first host merge. A failed list
 * empties the slots whose fills did not land (all of the list's when its completions are
 * unknown), so no later step takes them for resident. */
static void ee_xc_after_list(struct ee *e, int r)
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
		int kind = op == ABI_OP_DMA_FILL ? 1 : ABI_CPL_CU(cp[i].word1) != ABI_CPL_CU_NONE ? 2 : 0;
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

/* MoE FFN after the host routed: ffn = shared + sum_j w_j expert_j (chosen order); x += ffn.
 * The shared expert goes first (it needs no expert DMA); with the cache, gate|ups that wait on a
 * fill follow the ones that do not, and the fills of this step's prefetch are spread over the
 * down chain. The down accumulation keeps router order (f32 sums are order-dependent). */
static int ee_moe(struct ee *e, const struct ee_layer *L, const int *idx)
{
	const struct config *c = e->c;
	struct ee_xc *xc = e->xc;
	int k = c->num_experts_per_tok;
	struct cmat gu[EE_MAX_TOPK], dn[EE_MAX_TOPK];
	for (int j = 0; j < k; j++) {
		if (xc && xc->slot[j] >= 0) {
			uint64_t b = xc->slot_addr[xc->slot[j]];
			const struct expert_slot_layout *l = &xc->lay;
			gu[j] = (struct cmat){ b + l->off[0], b + l->off[3], c->moe_intermediate_size,
					       c->hidden_size };
			dn[j] = (struct cmat){ b + l->off[2], b + l->off[5], c->hidden_size,
					       c->moe_intermediate_size };
		} else if (!xc) {
			gu[j] = L->ex_gu[idx[j]];
			dn[j] = L->ex_down[idx[j]];
		}
	}
	if (L->sh_gu.rows)
		TRY(ee_gemm(e, "shared gate|up silu", e->xn, &L->sh_gu, e->hb[0], ABI_GEMM_F_SILU_MUL,
			    0, 0, 0, 0, 0));
	for (int pass = 0; pass < 2; pass++)
		for (int j = 0; j < k; j++) {
			int wait = xc && xc->fid[j];
			if ((xc && xc->slot[j] < 0) || wait != pass)
				continue;
			TRY(ee_gemm(e, "expert gate|up silu", e->xn, &gu[j], e->hb[j + 1],
				    ABI_GEMM_F_SILU_MUL, 0, 0, 0, 0, 0));
			if (wait) {
				struct abi_cmd *g = &e->list.cmd[e->list.n - 1];
				g->hdr.word2 |= ABI_CMD_F_WAIT;
				g->hdr.word3 = ABI_W3(xc->fid[j], 0);
				g->hdr.wait_value = xc->fval[j];
			}
		}
	TRY(ee_barrier(e));
	if (L->sh_gu.rows) {
		TRY(ee_gemm(e, "shared down", e->hb[0], &L->sh_down, e->ffn, 0, 0, 0, 0, 0, 0));
	} else {
		struct abi_cmd *f = ee_cmd(e, ABI_OP_RESIDUAL_ADD, "zero ffn");
		(void)f;
		return -ENOTSUP; /* TODO(issue 4): a model without shared experts needs a zero fill */
	}
	int pf = 0;
	for (int j = 0; j < k; j++) {
		if (xc && pf < xc->n_pf) { /* one prefetch per down step keeps the DMA queue fed */
			const struct ffn_weights *f = &e->L[xc->pf_layer[pf]].lw->experts[xc->pf_exp[pf]];
			TRY(ee_xc_fill_cmds(e, f, xc->pf_key[pf], xc->h2c[xc->pf_ch[pf]], 0, 0));
			pf++;
		}
		TRY(ee_barrier(e)); /* the accumulating downs share y: one at a time, in order */
		if (xc && xc->slot[j] < 0) {
			if (xc->host_add_cmd < 0)
				xc->host_add_cmd = ee_cmd_count(e);
			TRY(ee_vecop(e, ABI_OP_RESIDUAL_ADD, "host expert merge", e->ffn, xc->hres[j], 0,
				     e->ffn, 1, (uint32_t)c->hidden_size, 0, 0, 0, 0, 0));
		} else {
			TRY(ee_gemm(e, "expert down (accumulate)", e->hb[j + 1], &dn[j], e->ffn,
				    ABI_GEMM_F_ACCUM, e->rw + 4 * (uint64_t)j, 0, 0, 0, 0));
		}
	}
	for (; xc && pf < xc->n_pf; pf++) {
		const struct ffn_weights *f = &e->L[xc->pf_layer[pf]].lw->experts[xc->pf_exp[pf]];
		TRY(ee_xc_fill_cmds(e, f, xc->pf_key[pf], xc->h2c[xc->pf_ch[pf]], 0, 0));
	}
	TRY(ee_barrier(e));
	TRY(ee_vecop(e, ABI_OP_RESIDUAL_ADD, "residual", e->x, e->ffn, 0, e->x, 1,
		     (uint32_t)c->hidden_size, 0, 0, 0, 0, 0));
	return ee_barrier(e);
}

/* One decoder layer (list continues from the previous one; a MoE layer flushes once). */
static int ee_layer_run(struct ee *e, int li, int p)
{
	const struct ee_layer *L = &e->L[li];
	const struct config *c = e->c;
	/* --expert-trace: the look-ahead from the residual stream after layer li-1, where the cpu
	 * engine's layer hook makes it (none from the embedding, none in the MTP layer) */
	int trace = e->xt && li < c->num_hidden_layers;
	if (trace && li > 0 && expert_trace_writer_wants(e->xt, li - 1)) {
		TRY(ee_flush(e));
		double t0 = now_s();
		TRY(ee_read(e, e->x, e->xt_x, sizeof(float) * (size_t)c->hidden_size));
		/* a trace error is kept in the writer and reported when it closes, as on cpu */
		(void)expert_trace_writer_predict(e->xt, &e->kc, li - 1, e->xt_x, 1);
		e->t_host += now_s() - t0;
	}
	e->cur_layer = li;
	TRY(ee_mla(e, L, p));
	if (!L->moe)
		return ee_dense(e, L);
	TRY(ee_flush(e));
	double t0 = now_s();
	int D = c->hidden_size, E = c->n_routed_experts, k = c->num_experts_per_tok;
	int idx[EE_MAX_TOPK];
	float w[EE_MAX_TOPK];
	TRY(ee_read(e, e->xn, e->hxn, sizeof(float) * (size_t)D));
	TRY(kern_matmul(&e->kc, &L->lw->gate, e->hxn, 1, e->rlog));
	router_route_token(c, L->lw->e_score_correction_bias, e->rlog, idx, w);
	for (int j = 0; j < k; j++)
		if (idx[j] < 0 || idx[j] >= E)
			idx[j] = 0;
	TRY(ee_write(e, e->rw, w, sizeof(float) * (size_t)k));
	if (trace) /* the layer's gate is re-run on hxn: self_mismatch checks the trace's router */
		(void)expert_trace_writer_record(e->xt, &e->kc, li, p, 1, idx, w, e->hxn);
	e->t_host += now_s() - t0;
	if (e->xc)
		TRY(ee_xc_route(e, li, p, idx, w));
	return ee_moe(e, L, idx);
}


static void embed_host(const struct qmat *E, int t, float *out)
{
	for (int i = 0; i < E->cols; i++)
		out[i] = E->fmt == QMAT_BF16 ? bf16_to_f32(((const uint16_t *)E->w)[(size_t)t * E->cols + i])
					     : qmat_get(E, t, i);
}

/* Final norm on the card, read back into hidden (optional) and head logits on the host. */
static int ee_head(struct ee *e, uint64_t norm_w, const struct qmat *head, float *logits,
		   float *hidden)
{
	int D = e->c->hidden_size;
	e->cur_layer = -1;
	TRY(ee_vecop(e, ABI_OP_RMSNORM, "final norm", e->x, 0, norm_w, e->xn, 1, (uint32_t)D, 0, 0,
		     0, (float)e->c->rms_norm_eps, 0));
	TRY(ee_flush(e));
	double t0 = now_s();
	TRY(ee_read(e, e->xn, e->hxn, sizeof(float) * (size_t)D));
	if (hidden)
		memcpy(hidden, e->hxn, sizeof(float) * (size_t)D);
	int r = logits ? kern_matmul(&e->kc, head, e->hxn, 1, logits) : 0;
	e->t_host += now_s() - t0;
	return r;
}

/* --- engine ops ------------------------------------------------------------------------- */

static struct ee *ee_of(struct engine *en) { return en->impl; }

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
	for (int t = 0; t < T; t++) {
		int p = en->pos, r;
		embed_host(&e->w->embed_tokens, tok[t], e->hx);
		TRY(ee_write(e, e->x, e->hx, sizeof(float) * (size_t)D));
		e->list.n = 0;
		for (int l = 0; l < c->num_hidden_layers; l++)
			if ((r = ee_layer_run(e, l, p))) {
				e->list.n = 0;
				return r;
			}
		float *lg = logits && (all || t == T - 1) ? logits + (all ? (size_t)t * V : 0) : NULL;
		if ((r = ee_head(e, e->final_norm, &e->w->lm_head,
				 lg, hidden ? hidden + (size_t)t * D : NULL))) {
			e->list.n = 0;
			return r;
		}
		en->pos++;
		e->tokens++;
	}
	double dt = now_s() - t0;
	e->t_wall += dt;
	e->t_sched += dt - (e->t_wait - w0) - (e->t_host - h0);
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
	for (int t = 0; t < T; t++) {
		int p = en->mtp_pos;
		if (nt[t] < 0 || nt[t] >= V)
			return -EINVAL;
		double t0 = now_s();
		/* MODEL.md 9: [enorm(embed(t_{i+1})) (0 at position 0) | hnorm(h_i)] -> eh_proj (BF16) */
		if (p == 0) {
			memset(e->cat, 0, sizeof(float) * (size_t)D);
		} else {
			embed_host(lw->embed_tokens.w ? &lw->embed_tokens : &e->w->embed_tokens, nt[t],
				   e->hx);
			model_rmsnorm(e->cat, e->hx, lw->enorm, D, c->rms_norm_eps);
		}
		model_rmsnorm(e->cat + D, hidden + (size_t)t * D, lw->hnorm, D, c->rms_norm_eps);
		TRY(kern_matmul(&e->kc, &lw->eh_proj, e->cat, 1, e->u));
		TRY(ee_write(e, e->x, e->u, sizeof(float) * (size_t)D));
		e->t_host += now_s() - t0;
		e->list.n = 0;
		if ((r = ee_layer_run(e, ml, p))) {
			e->list.n = 0;
			return r;
		}
		float *lg = logits && (all || t == T - 1) ? logits + (all ? (size_t)t * V : 0) : NULL;
		if ((r = ee_head(e, e->mtp_head_norm,
				 lw->shared_head_head.w ? &lw->shared_head_head : &e->w->lm_head, lg,
				 e->mtp_hid))) {
			e->list.n = 0;
			return r;
		}
		en->mtp_pos++;
	}
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
	ee_xc_drain(e); /* detached fills land before the sequence rewinds */
	if (pos >= 0 && pos < en->pos)
		en->pos = pos;
	if (mtp_pos >= 0 && mtp_pos < en->mtp_pos)
		en->mtp_pos = mtp_pos;
	if (pos == 0 && mtp_pos == 0 && e->be) {
		/* a new sequence (bench after its warm-up): statistics restart */
		struct backend_stats s;
		e->be->iface->stats(e->be, &s);
		e->subs0 = s.submits;
		e->cmds0 = s.cmds;
		e->tokens = 0;
		e->t_sched = e->t_wait = e->t_host = e->t_wall = 0;
		e->card0 = s.busy_ns;
		e->link0 = s.h2c_ns + s.c2h_ns;
		if (e->xc) {
			struct ee_xc *xc = e->xc;
			xc->accesses = xc->hits = xc->miss_dma = xc->miss_host = 0;
			xc->pf_issued = xc->pf_used = xc->pf_wasted = xc->evictions = 0;
			xc->pf_pred = xc->pf_pred_hit = 0;
			xc->dma_bytes = xc->dma_busy_ns = xc->dma_exposed_ns = 0;
			xc->host_s = xc->host_exposed_ns = 0;
			xc->pin_fills = xc->bg_fills = 0;
			xc->df_fills = xc->df_failed = xc->df_busy_steps = 0;
			xc->drain_ns = 0;
			xc->n_iv = 0; /* the drain above left nothing in flight */
			xc->t_done = xc->t_seen;
		}
	}
}

/* Expert-cache figures of ee_stats: per main-model token (n), card ms/token card, link ms. */
static void ee_xc_stats(struct ee *e, FILE *out, int json, double n, double card, double link)
{
	struct ee_xc *xc = e->xc;
	double acc = xc->accesses ? (double)xc->accesses : 1;
	double hidden = xc->dma_busy_ns > 0 ? 1 - xc->dma_exposed_ns / xc->dma_busy_ns : 1;
	double host_ms = xc->host_exposed_ns / n / 1e6;
	double tok_s = 1e3 / (card + link + host_ms + xc->drain_ns / n / 1e6);
	double pred = xc->pf_pred ? (double)xc->pf_pred_hit / (double)xc->pf_pred : 0;
	const char *hm[] = { "off", "auto", "always" };
	if (json) {
		fprintf(out, ",\"expert_slots\":%d,\"expert_policy\":\"%s\",\"expert_prefetch\":%d,"
			     "\"expert_host\":\"%s\",\"expert_accesses\":%llu,\"expert_hit_rate\":%.4f,"
			     "\"expert_miss_dma\":%llu,\"expert_miss_host\":%llu,\"expert_bg_fills\":%llu,"
			     "\"expert_prefetch_issued\":%llu,\"expert_prefetch_used\":%llu,"
			     "\"expert_prefetch_wasted\":%llu,\"expert_pin_fills\":%llu,\"expert_evictions\":%llu,"
			     "\"expert_prediction_recall\":%.4f,"
			     "\"expert_dma_bytes_per_tok\":%.0f,\"modeled_expert_dma_hidden\":%.4f,"
			     "\"modeled_expert_dma_ms_per_tok\":%.4f,"
			     "\"modeled_host_expert_exposed_ms_per_tok\":%.4f,"
			     "\"modeled_expert_decode_tok_s\":%.2f,\"expert_detached\":%d,"
			     "\"expert_detached_fills\":%llu,\"expert_detached_failed\":%llu,"
			     "\"expert_detached_busy_steps\":%llu,"
			     "\"modeled_expert_drain_ms_per_tok\":%.4f",
			xc->cache.n_slots, expert_policy_name(xc->cache.policy), xc->prefetch,
			hm[xc->host_mode], (unsigned long long)xc->accesses, xc->hits / acc,
			(unsigned long long)xc->miss_dma, (unsigned long long)xc->miss_host,
			(unsigned long long)xc->bg_fills,
			(unsigned long long)xc->pf_issued, (unsigned long long)xc->pf_used,
			(unsigned long long)xc->pf_wasted, (unsigned long long)xc->pin_fills,
			(unsigned long long)xc->evictions, pred,
			xc->dma_bytes / n, hidden,
			xc->dma_busy_ns / n / 1e6, host_ms, tok_s, xc->async,
			(unsigned long long)xc->df_fills, (unsigned long long)xc->df_failed,
			(unsigned long long)xc->df_busy_steps, xc->drain_ns / n / 1e6);
		return;
	}
	fprintf(out,
		"  expert cache   %d slots of %.2f MB (%s%s, host execution %s): hit rate %.1f%% of "
		"%llu accesses\n"
		"                 misses: %llu DMA'd, %llu run on the host (%llu filled behind the "
		"card); prefetch %llu issued, %llu "
		"used, %llu wasted (prediction recall %.1f%%)\n"
		"                 DMA %.2f MB/token, modeled %.4f ms/token of fills, %.1f%% of it hidden "
		"behind card compute\n"
		"                 modeled host expert time not hidden %.4f ms/token; modeled decode %.2f "
		"tok/s\n",
		xc->cache.n_slots, xc->lay.bytes / 1e6, expert_policy_name(xc->cache.policy),
		xc->prefetch ? "+prefetch" : "", hm[xc->host_mode], 100 * xc->hits / acc,
		(unsigned long long)xc->accesses, (unsigned long long)xc->miss_dma,
		(unsigned long long)xc->miss_host, (unsigned long long)xc->bg_fills,
		(unsigned long long)xc->pf_issued,
		(unsigned long long)xc->pf_used, (unsigned long long)xc->pf_wasted, 100 * pred,
		xc->dma_bytes / n / 1e6, xc->dma_busy_ns / n / 1e6, 100 * hidden, host_ms, tok_s);
	if (xc->async)
		fprintf(out,
			"                 detached fills (ring %u, across layers): %llu issued, "
			"%llu failed (slot emptied), %llu steps skipped while the list was busy\n",
			EE_XC_RING, (unsigned long long)xc->df_fills,
			(unsigned long long)xc->df_failed, (unsigned long long)xc->df_busy_steps);
}

/* Bytes an ideal decode step must read from HBM: every weight it uses once (attention, dense or
 * shared + top-k routed experts, with scales) plus the KV cache of pos tokens per layer. */
static double ee_decode_bytes(const struct config *c, int pos, int with_mtp)
{
	double D = c->hidden_size, H = c->num_attention_heads, nope = c->qk_nope_head_dim;
	double rope = c->qk_rope_head_dim, vd = c->v_head_dim, kvl = c->kv_lora_rank;
	double ql = c->q_lora_rank, qd = nope + rope;
	double attn = ql > 0 ? D * ql + ql * H * qd : D * H * qd;
	attn += D * (kvl + rope) + H * (nope + vd) * kvl + H * vd * D;
	double moe = 3.0 * D * c->moe_intermediate_size *
		     (c->num_experts_per_tok + c->n_shared_experts);
	double dense = 3.0 * D * c->intermediate_size;
	int L = c->num_hidden_layers + (with_mtp ? 1 : 0);
	double b = 0;
	for (int l = 0; l < L; l++)
		b += attn * (1 + 4.0 / (128 * 128)) + (config_layer_is_moe(c, l < c->num_hidden_layers ? l : c->num_hidden_layers - 1) ? moe : dense) * (1 + 4.0 / (128 * 128)) +
		     (double)pos * (kvl + rope) * 4;
	return b;
}

/* card_engine.h */
int card_engine_whatif(const struct config *c, const struct backend *be, int pos, double *card_ns,
		      double *hbm_bytes)
{
	struct ee *e = calloc(1, sizeof *e);
	int r = -ENOMEM;
	if (!e)
		return r;
	e->dry = 1;
	e->c = c;
	e->be = (struct backend *)be;
	e->max_seq = pos + 1;
	int k = c->num_experts_per_tok, E = c->n_routed_experts;
	struct ee_layer L = { 0 };
	struct cmat one = { 0, 0, 0, 0 };
	e->hb = calloc((size_t)k + 1, sizeof *e->hb);
	L.ex_gu = calloc((size_t)(E > 0 ? E : 1), sizeof *L.ex_gu);
	L.ex_down = calloc((size_t)(E > 0 ? E : 1), sizeof *L.ex_down);
	int *idx = calloc((size_t)k + 1, sizeof *idx);
	if (!e->hb || !L.ex_gu || !L.ex_down || !idx)
		goto out;
	int D = c->hidden_size, I = c->moe_intermediate_size, H = c->num_attention_heads;
	int qd = c->qk_nope_head_dim + c->qk_rope_head_dim;
	L.q_a = (struct cmat){ 0, 0, c->q_lora_rank, D };
	L.q_b = c->q_lora_rank > 0 ? (struct cmat){ 0, 0, H * qd, c->q_lora_rank }
				   : (struct cmat){ 0, 0, H * qd, D };
	L.kv_a = (struct cmat){ 0, 0, c->kv_lora_rank + c->qk_rope_head_dim, D };
	L.kv_b = (struct cmat){ 0, 0, H * (c->qk_nope_head_dim + c->v_head_dim), c->kv_lora_rank };
	L.o = (struct cmat){ 0, 0, D, H * c->v_head_dim };
	L.gu = (struct cmat){ 0, 0, c->intermediate_size, D };
	L.down = (struct cmat){ 0, 0, D, c->intermediate_size };
	for (int x = 0; x < E; x++) {
		L.ex_gu[x] = (struct cmat){ 0, 0, I, D };
		L.ex_down[x] = (struct cmat){ 0, 0, D, I };
	}
	L.sh_gu = (struct cmat){ 0, 0, I * c->n_shared_experts, D };
	L.sh_down = (struct cmat){ 0, 0, D, I * c->n_shared_experts };
	(void)one;
	e->softmax_scale = 0.1f;
	for (int j = 0; j < k; j++)
		idx[j] = j;
	for (int l = 0; l < c->num_hidden_layers; l++) {
		L.moe = config_layer_is_moe(c, l);
		if ((r = ee_mla(e, &L, pos)))
			goto out;
		if (L.moe) {
			ee_flush(e);
			r = ee_moe(e, &L, idx);
		} else {
			r = ee_dense(e, &L);
		}
		if (r)
			goto out;
	}
	ee_flush(e);
	*card_ns = e->dry_ns;
	*hbm_bytes = ee_decode_bytes(c, pos, 0);
	r = 0;
out:
	free(idx);
	free(L.ex_gu);
	free(L.ex_down);
	free(e->hb);
	free(e);
	return r;
}

struct backend *card_engine_backend(struct engine *en)
{
	return en->ops && en->ops->forward == ee_forward ? ee_of(en)->be : NULL;
}

static void ee_whatif_671b(const struct backend *be, FILE *out, int json)
{
	struct config c = { 0 };
	c.hidden_size = 7168;
	c.intermediate_size = 18432;
	c.moe_intermediate_size = 2048;
	c.num_hidden_layers = 61;
	c.first_k_dense_replace = 3;
	c.moe_layer_freq = 1;
	c.num_attention_heads = 128;
	c.q_lora_rank = 1536;
	c.kv_lora_rank = 512;
	c.qk_nope_head_dim = 128;
	c.qk_rope_head_dim = 64;
	c.v_head_dim = 128;
	c.n_routed_experts = 256;
	c.num_experts_per_tok = 8;
	c.n_shared_experts = 1;
	c.n_group = 8;
	c.topk_group = 4;
	c.rms_norm_eps = 1e-6;
	c.rope_theta = 10000;
	c.vocab_size = 129280;
	double ns, bytes;
	if (card_engine_whatif(&c, be, 4096, &ns, &bytes))
		return;
	double roof = bytes / (be->board.mem_bw_mbps * 1e6) * 1e9;
	if (json)
		fprintf(out, ",\"whatif_671b_modeled_card_ms_per_tok\":%.3f,"
			     "\"whatif_671b_modeled_hbm_roofline_frac\":%.4f",
			ns / 1e6, roof / ns);
	else
		fprintf(out, "what-if 671B (61 layers, 256 experts resident, ctx 4096): modeled card "
			     "%.2f ms/token decode; HBM roofline %.2f ms (%.0f MB/token at %.0f GB/s): "
			     "modeled %.1f%% of the roofline\n",
			ns / 1e6, roof / 1e6, bytes / 1e6, be->board.mem_bw_mbps / 1e3,
			100 * roof / ns);
}

static void ee_stats(struct engine *en, FILE *out, int json)
{
	struct ee *e = ee_of(en);
	struct backend_stats s;
	e->be->iface->stats(e->be, &s);
	if (strcmp(e->be->iface->name, "emu"))
		return; /* no card clock to report */
	double n = e->tokens ? (double)e->tokens : 1;
	double card = (double)(s.busy_ns - e->card0) / n / 1e6;
	double link = (double)(s.h2c_ns + s.c2h_ns - e->link0) / n / 1e6;
	double cmds = (double)(s.cmds - e->cmds0) / n, subs = (double)(s.submits - e->subs0) / n;
	double bytes = ee_decode_bytes(e->c, en->pos / 2, 0);
	double roof = bytes / (e->be->board.mem_bw_mbps * 1e6) * 1e3; /* ms */
	if (json) {
		fprintf(out, "{\"backend\":\"emu\",\"tokens\":%llu,\"modeled_card_ms_per_tok\":%.4f,"
			     "\"modeled_link_ms_per_tok\":%.4f,\"cmds_per_tok\":%.1f,"
			     "\"submits_per_tok\":%.2f,\"host_sched_us_per_tok\":%.1f,"
			     "\"host_compute_us_per_tok\":%.1f,\"host_wall_ms_per_tok\":%.3f,"
			     "\"modeled_hbm_roofline_frac\":%.4f",
			(unsigned long long)e->tokens, card, link, cmds, subs, e->t_sched / n * 1e6,
			e->t_host / n * 1e6, e->t_wall / n * 1e3, roof / card);
		if (e->xc)
			ee_xc_stats(e, out, 1, n, card, link);
		ee_whatif_671b(e->be, out, 1);
		fprintf(out, "}\n");
		return;
	}
	fprintf(out,
		"emu card (%s): %llu tokens through the main model\n"
		"  modeled card   %.4f ms/token (kernels + firmware, card clock)\n"
		"  modeled link   %.4f ms/token (host<->card transfers over PCIe)\n"
		"  commands       %.1f per token, %.2f submissions per token\n"
		"  host           %.1f us/token scheduling, %.1f us/token router + lm_head, "
		"%.3f ms/token wall (emulation included)\n"
		"  HBM roofline   %.4f ms/token for %.2f MB/token: modeled %.1f%% of it\n",
		e->be->board.model, (unsigned long long)e->tokens, card, link, cmds, subs,
		e->t_sched / n * 1e6, e->t_host / n * 1e6, e->t_wall / n * 1e3, roof, bytes / 1e6,
		100 * roof / card);
	if (e->xc)
		ee_xc_stats(e, out, 0, n, card, link);
	ee_whatif_671b(e->be, out, 0);
}

static const char *ee_op_name(uint32_t op)
{
	static const char *const n[ABI_OP_COUNT] = {
		"NOP", "GEMM_FP8", "RMSNORM", "ROPE", "ACT_QUANT", "SILU_MUL", "RESIDUAL_ADD",
		"SOFTMAX", "MLA_ATTN", "KV_APPEND", "DMA_FILL", "FENCE", "BARRIER", "TIMESTAMP" };
	return op < ABI_OP_COUNT ? n[op] : "?";
}

/* Chrome trace-event JSON: one complete event per command, card time in us, one row per CU. */
static int ee_write_profile(struct ee *e)
{
	FILE *f = fopen(e->profile, "w");
	if (!f)
		return -errno;
	fprintf(f, "{\"displayTimeUnit\":\"ns\",\"otherData\":{\"clock\":\"modeled card time\"},"
		   "\"traceEvents\":[\n");
	for (size_t i = 0; i < e->n_prof; i++) {
		const struct ee_prof *p = &e->prof[i];
		fprintf(f, "%s{\"name\":\"%s\",\"cat\":\"%s\",\"ph\":\"X\",\"pid\":0,\"tid\":%u,"
			   "\"ts\":%.3f,\"dur\":%.3f,\"args\":{\"layer\":%d}}\n",
			i ? "," : "", p->what ? p->what : "", ee_op_name(p->op), p->cu, p->t0 / 1e3,
			(p->t1 - p->t0) / 1e3, p->layer);
	}
	fprintf(f, "]}\n");
	return fclose(f) ? -EIO : 0;
}

static void ee_free(struct engine *en)
{
	struct ee *e = ee_of(en);
	if (!e)
		return;
	if (e->be)
		ee_xc_drain(e); /* no fill may still write card memory as it is released */
	if (e->profile && e->n_prof && ee_write_profile(e))
		fprintf(stderr, "moecard: %s: cannot write the profile\n", e->profile);
	if (e->be) {
		for (size_t i = e->n_bufs; i-- > 0;)
			backend_buf_free(e->be, e->bufs[i]);
		backend_close(e->be);
	}
	if (e->L)
		for (int l = 0; l < e->n_layers; l++) {
			free(e->L[l].ex_gu);
			free(e->L[l].ex_down);
		}
	free(e->L);
	ee_xc_free(e);
	free(e->bufs);
	free(e->hb);
	free(e->hx);
	free(e->hxn);
	free(e->rlog);
	free(e->cat);
	free(e->u);
	free(e->mtp_hid);
	free(e->xt_x);
	free(e->prof);
	kern_ctx_free(&e->kc);
	if (e->pool)
		pool_free(e->pool);
	free(e);
	en->impl = NULL;
}

static const struct engine_ops ee_ops = {
	.name = "emu",
	.forward = ee_forward,
	.mtp_forward = ee_mtp,
	.truncate = ee_truncate,
	.stats = ee_stats,
	.free = ee_free,
	.mtp_hidden = ee_mtp_hidden,
	.expert_trace = ee_expert_trace,
};

int card_engine_open(struct engine *en, const struct ckpt *ck, const struct model_opts *o,
		    const struct engine_extra *x, char *err, size_t errlen)
{
	const struct config *c = &ck->cfg;
	const struct weights *w = &ck->w;
	if (!w->fp8) {
		snprintf(err, errlen, "--backend emu: the card runs FP8 checkpoints only");
		return -EINVAL;
	}
	if (!o->act_fp8) {
		snprintf(err, errlen, "--backend emu: --act none is the cpu backend's reference mode; "
				      "the card quantizes activations (--act fp8)");
		return -EINVAL;
	}
	if (c->num_experts_per_tok > EE_MAX_TOPK || c->qk_rope_head_dim % 2) {
		snprintf(err, errlen, "config.json: shape not supported by the emu scheduler");
		return -EINVAL;
	}
	struct ee *e = calloc(1, sizeof *e);
	if (!e) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	en->impl = e;
	en->ops = &ee_ops;
	e->c = c;
	e->w = w;
	e->profile = x ? x->profile : NULL;
	e->max_seq = o->max_seq > 0 ? o->max_seq : 4096;
	en->max_seq = e->max_seq;
	en->max_batch = o->max_batch > 0 ? o->max_batch : 64;
	en->act_fp8 = 1;
	/* MOECARD_SCHED_BACKEND=ref runs the same command lists on the reference card backend (tests) */
	const char *bn = getenv("MOECARD_SCHED_BACKEND");
	int r = backend_open(&e->be, x && x->backend ? x->backend : bn && !strcmp(bn, "ref") ? "ref" : "emu", x ? x->board : NULL,
			     err, errlen);
	if (r)
		goto fail;
	int D = c->hidden_size, H = c->num_attention_heads, k = c->num_experts_per_tok;
	int kvl = c->kv_lora_rank, rope = c->qk_rope_head_dim, row = kvl + rope;
	int nb = (int)ABI_BOARD_N_BANKS(e->be->blk.counts);
	e->n_hbm = 0;
	for (int i = 0; i < nb; i++)
		if ((e->be->blk.banks[i].word & 0xFFu) == ABI_BANK_HBM)
			e->n_hbm = i + 1;
	if (e->n_hbm < 2) {
		snprintf(err, errlen, "%s: the scheduler needs at least 2 HBM banks", e->be->board.model);
		r = -EINVAL;
		goto fail;
	}
	e->act_bank = (uint32_t)e->n_hbm - 1; /* activations + KV; weights round-robin on the rest */
	e->n_hbm--;
	e->softmax_scale = (float)model_softmax_scale(c);
	e->pool = pool_create(o->n_threads);
	int inter = c->intermediate_size;
	int sh = c->n_shared_experts * c->moe_intermediate_size;
	inter = inter > sh ? inter : sh;
	inter = inter > c->moe_intermediate_size ? inter : c->moe_intermediate_size;
	e->hb = calloc((size_t)k + 1, sizeof *e->hb);
	e->hx = calloc((size_t)D, sizeof(float));
	e->hxn = calloc((size_t)D, sizeof(float));
	e->rlog = calloc((size_t)(c->n_routed_experts > 0 ? c->n_routed_experts : 1), sizeof(float));
	e->cat = calloc(2 * (size_t)D, sizeof(float));
	e->u = calloc((size_t)D, sizeof(float));
	e->mtp_hid = calloc((size_t)D, sizeof(float));
	r = -ENOMEM;
	if (!e->pool || !e->hb || !e->hx || !e->hxn || !e->rlog || !e->cat || !e->u || !e->mtp_hid ||
	    kern_ctx_init(&e->kc, e->pool, 1, c->quantization_config.ue8m0, 4 * (size_t)D,
			  2 * D)) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	en->threads = pool_nthreads(e->pool);
	en->isa = e->kc.isa->name;
	/* activations */
	int ab = (int)e->act_bank;
	size_t f = sizeof(float);
	if ((r = ee_place(e, ab, NULL, f * D, &e->x)) || (r = ee_place(e, ab, NULL, f * D, &e->xn)) ||
	    (r = ee_place(e, ab, NULL, f * (c->q_lora_rank > 0 ? c->q_lora_rank : 1), &e->qa)) ||
	    (r = ee_place(e, ab, NULL, f * H * (c->qk_nope_head_dim + rope), &e->q)) ||
	    (r = ee_place(e, ab, NULL, f * row, &e->kva)) ||
	    (r = ee_place(e, ab, NULL, f * row, &e->kvrow)) ||
	    (r = ee_place(e, ab, NULL, f * H * row, &e->qcat)) ||
	    (r = ee_place(e, ab, NULL, f * H * kvl, &e->lat)) ||
	    (r = ee_place(e, ab, NULL, f * H * c->v_head_dim, &e->ao)) ||
	    (r = ee_place(e, ab, NULL, f * D, &e->ffn)) ||
	    (r = ee_place(e, ab, NULL, f * (k > 0 ? k : 1), &e->rw)))
		goto fail_place;
	for (int j = 0; j <= k; j++)
		if ((r = ee_place(e, ab, NULL, f * inter, &e->hb[j])))
			goto fail_place;
	/* YaRN cos/sin table [max_seq][rope/2][2], exactly as the cpu engine builds its own */
	{
		float *tab = malloc(f * (size_t)e->max_seq * rope);
		if (!tab) {
			r = -ENOMEM;
			goto fail_place;
		}
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
		r = ee_place(e, ab, tab, f * (size_t)e->max_seq * rope, &e->tab);
		free(tab);
		if (r)
			goto fail_place;
	}
	if ((r = ee_vec(e, w->norm, D, &e->final_norm)))
		goto fail_place;
	e->n_layers = c->num_hidden_layers + (w->mtp ? 1 : 0);
	e->L = calloc((size_t)e->n_layers, sizeof *e->L);
	if (!e->L) {
		r = -ENOMEM;
		goto fail_place;
	}
	err[0] = 0;
	if ((r = ee_xc_init(e, x, err, errlen)))
		goto fail_place;
	for (int l = 0; l < e->n_layers; l++) {
		const struct layer_weights *lw = l < c->num_hidden_layers ? &w->layers[l] : w->mtp;
		if ((r = ee_layer_init(e, &e->L[l], lw, l == c->num_hidden_layers, err, errlen)))
			goto fail_place;
	}
	if (w->mtp && (r = ee_vec(e, w->mtp->shared_head_norm, D, &e->mtp_head_norm)))
		goto fail_place;
	if (e->xc && (r = ee_xc_place(e)))
		goto fail_place;
	ee_truncate(en, 0, 0);
	return 0;
fail_place:
	if (!err[0] || r == -ENOMEM)
		snprintf(err, errlen, "--backend emu: cannot place the model on %s (%s)",
			 e->be->board.model, strerror(-r));
fail:
	ee_free(en);
	en->ops = NULL;
	return r;
}
