/*
 * card_gemv.c - the card scheduler on the wide GEMV CU (hls/fp8_gemv/fp8_gemv.h): every resident
 * matrix striped in row tiles over the CU's lanes (lane i = bank i, one HBM pseudo-channel each),
 * so one command reads every pseudo-channel at once, and the lowering's GEMMs grouped into few
 * commands: q_a with kv_a, all heads' W_UK^T, all heads' W_UV, o_proj with its residual, the
 * shared expert with the routed experts' gate|up, and the downs accumulating in router order.
 *
 * Placement. card_gemv_init reserves, before anything else is placed, one arena of the same size
 * in every lane bank; banks of one size filled in the same order give it the same offset in each
 * (checked), which is the offset the kernel's stripe sets need. card_gemv_layer stripes a layer's
 * matrices into it (fp8_gemv_stripe) and writes its static group tables into the activation bank;
 * the MoE tables are rewritten after each routing (card_moe_gemv).
 * Numerics: each group computes exactly what the fp8_gemm command it replaces computed (same
 * quantization, block sums and epilogue order), so the logits do not change (tests compare them).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "hls/mla_attn/mla_attn.h"
#include "hls/moe_route/moe_route.h"
#include "model/router.h"
#include "sched/card_engine_impl.h"

static uint64_t al64(uint64_t x)
{
	return (x + 63) & ~63ull;
}

/* Layout flag of gv_place only: the stripe set on rotation 0. */
#define GV_ROT0 0x80000000u

static uint64_t gv_bytes(const struct ee *e, int n, int k, uint32_t lay)
{
	return al64(fp8_gemv_stripe_bytes(n, k, (int)e->gv_lanes, lay & ~GV_ROT0));
}

/* Arena bytes one layer needs (moe: the MoE FFN, else the dense one). */
static uint64_t gv_layer_need(const struct ee *e, int moe)
{
	const struct config *c = e->c;
	int D = c->hidden_size, H = c->num_attention_heads, ql = c->q_lora_rank;
	int qd = c->qk_nope_head_dim + c->qk_rope_head_dim, kvl = c->kv_lora_rank;
	int vd = c->v_head_dim, Im = c->moe_intermediate_size, ns = c->n_shared_experts;
	uint64_t b = 0;
	int qs = e->q_slices;
	if (ql > 0)
		b += gv_bytes(e, ql, D, 0) + (uint64_t)qs * gv_bytes(e, H * qd / qs, ql, 0);
	else
		b += gv_bytes(e, H * qd, D, 0);
	int og = e->o_groups;
	b += gv_bytes(e, kvl + c->qk_rope_head_dim, D, 0) +
	     (uint64_t)og * gv_bytes(e, D, H * vd / og, 0);
	b += (uint64_t)H * (gv_bytes(e, kvl, c->qk_nope_head_dim, 0) + gv_bytes(e, vd, kvl, 0));
	if (e->gv_attn && card_pf_mha_shape(c)) /* the non-absorbed prefill's W_UK rows */
		b += (uint64_t)H * gv_bytes(e, c->qk_nope_head_dim, kvl, 0);
	if (!moe)
		return b + gv_bytes(e, c->intermediate_size, D, FP8_GEMV_SILU_MUL) +
		       gv_bytes(e, D, c->intermediate_size, 0);
	b += (uint64_t)c->n_routed_experts *
	     (gv_bytes(e, Im, D, FP8_GEMV_SILU_MUL) + gv_bytes(e, D, Im, 0));
	if (e->gv_route)
		b += gv_bytes(e, c->n_routed_experts, D, FP8_GEMV_W_BF16);
	if (ns > 0)
		b += gv_bytes(e, Im * ns, D, FP8_GEMV_SILU_MUL) + gv_bytes(e, D, Im * ns, 0);
	return b;
}

static int gv_env_off(const char *name)
{
	const char *v = getenv(name);
	return v && !strcmp(v, "0");
}

/* The MTP layer has a shared head of its own (not the main lm_head's tensor). */
static int gv_mtp_head_own(const struct ee *e)
{
	const struct layer_weights *m = e->w ? e->w->mtp : NULL;
	return m && m->shared_head_head.w && m->shared_head_head.w != e->w->lm_head.w;
}

/* Router and heads on the card: with the CUs, bf16 weights (the checkpoint's gate and heads; the
 * dry what-if assumes them), MOECARD_CARD_ROUTE / MOECARD_CARD_HEAD not 0. */
static void gv_decide(struct ee *e)
{
	const struct config *c = e->c;
	const struct weights *w = e->w;
	int route = backend_supports_op(e->be, ABI_OP_MOE_ROUTE) &&
		    !gv_env_off("MOECARD_CARD_ROUTE") &&
		    !moe_route_check(c->n_routed_experts, c->num_experts_per_tok, c->n_group,
				     c->topk_group, router_flags(c, 1));
	int nl = c->num_hidden_layers + (w && w->mtp ? 1 : 0);
	for (int l = 0; w && route && l < nl; l++) {
		const struct layer_weights *lw = l < c->num_hidden_layers ? &w->layers[l] : w->mtp;
		if (lw->is_moe &&
		    (lw->gate.fmt != QMAT_BF16 || lw->gate.rows != c->n_routed_experts))
			route = 0;
	}
	int head = c->vocab_size >= 1 && !gv_env_off("MOECARD_CARD_HEAD") &&
		   (!w || (w->lm_head.fmt == QMAT_BF16 &&
			   (!gv_mtp_head_own(e) || w->mtp->shared_head_head.fmt == QMAT_BF16)));
	e->gv_route = route;
	e->gv_head = head;
	const char *chk = getenv("MOECARD_ROUTE_CHECK");
	e->route_check = route && chk && !strcmp(chk, "1");
}

/* The board's GEMV CU: lanes, port width, rows of x per PE cycle, f32 products a lane a cycle and
 * activation bank; 0 when there is none. */
static uint32_t gv_cu(const struct ee *e, uint32_t *axi_bits, uint32_t *rows, uint32_t *f32,
		      uint32_t *act)
{
	const struct board_desc *bd = backend_board(e->be);
	for (uint32_t i = 0; i < bd->n_cus; i++) {
		const struct board_cu *cu = &bd->cu[i];
		int pa = board_cu_port_find(cu, "gmem_a");
		if (strcmp(cu->kernel, "fp8_gemv") || pa < 0)
			continue;
		uint32_t n = 0;
		char name[BOARD_NAME_MAX];
		for (;; n++) {
			snprintf(name, sizeof name, "gmem_l%u", n);
			if (board_cu_port_find(cu, name) < 0)
				break;
		}
		*axi_bits = cu->axi_bits;
		*rows = cu->gemv_rows ? cu->gemv_rows : FP8_GEMV_PR;
		*f32 = cu->gemv_f32 ? cu->gemv_f32 : FP8_GEMV_F32;
		*act = cu->port_bank[pa];
		return n;
	}
	return 0;
}

int card_mla_fmt(uint32_t kv_fmt)
{
	return kv_fmt == ABI_KV_BF16  ? MLA_CACHE_BF16
	       : kv_fmt == ABI_KV_FP8 ? MLA_CACHE_FP8
				      : MLA_CACHE_F32;
}

void card_attn_build(const struct ee *e, uint32_t bw_mbps, uint32_t clk_khz, struct hls_build *b)
{
	hls_build_default(b);
	if (clk_khz)
		b->clock_mhz = clk_khz / 1000.0;
	if (bw_mbps)
		b->bank_gbps = bw_mbps / 1000.0;
	b->lane_passes = (int)e->attn_passes;
	b->lane_exp_ii = (int)e->attn_exp_ii;
}

/* Bytes of one layer's striped latent cache (max_seq tokens). */
static uint64_t gv_kv_bytes(const struct ee *e)
{
	const struct config *c = e->c;
	return al64(mla_lanes_bytes(e->max_seq, (int)e->gv_lanes, card_mla_fmt(e->kv_fmt),
				    c->kv_lora_rank, c->qk_rope_head_dim));
}

/* The board's striped-attention CU (*cup, NULL = none) and its lanes (0 = none). */
static uint32_t gv_attn_cu(const struct ee *e, const struct board_cu **cup)
{
	const struct board_desc *bd = backend_board(e->be);
	for (uint32_t i = 0; i < bd->n_cus; i++) {
		const struct board_cu *cu = &bd->cu[i];
		uint32_t n = 0;
		char name[BOARD_NAME_MAX];
		if (strcmp(cu->kernel, "mla_attn_lanes"))
			continue;
		for (;; n++) {
			snprintf(name, sizeof name, "gmem_l%u", n);
			if (board_cu_port_find(cu, name) < 0)
				break;
		}
		*cup = cu;
		return n;
	}
	return 0;
}

static double attn_heads_ns(const struct ee *e, int p, int nh);
static double split_est(double a, double gv, int d, double take);
static double split_take(const struct ee *e);

/* Whether the heads divide into d groups whose w-wide parts (o_proj's v columns, q_b's rows)
 * are whole 128-blocks. */
static int gv_og_ok(const struct config *c, int d, int w)
{
	return c->num_attention_heads % d == 0 && (c->num_attention_heads / d * w) % 128 == 0;
}

/* o_proj's slices (ee.o_groups): MOECARD_ATTN_GROUPS when set (1..EE_MAX_OG, lowered to a
 * valid count), else the head groups card_attn_split's rule would take at the longest context
 * (max_seq), W_UV and o_proj timed at their bytes over the lanes at the board's rate (no slices
 * when one pass wins even there: a slice's partial sums cross the activation bank); 1 without
 * the striped attention. */
static int gv_o_groups(const struct ee *e)
{
	const struct config *c = e->c;
	const char *v = getenv("MOECARD_ATTN_GROUPS");
	int og = v && *v ? atoi(v) : EE_ATTN_GROUPS;
	og = og < 1 ? 1 : og > EE_MAX_OG ? EE_MAX_OG : og;
	if (!e->gv_attn)
		return 1;
	while (og > 1 && !gv_og_ok(c, og, c->v_head_dim))
		og--;
	if (v && *v)
		return og;
	uint32_t bw = 0, kclk = 0;
	card_dry_rates(e, &bw, &kclk);
	double H = c->num_attention_heads, vd = c->v_head_dim;
	double bytes = (double)c->hidden_size * H * vd + H * vd * c->kv_lora_rank;
	double gv = bw ? bytes / ((double)e->gv_lanes * bw * 1e6) * 1e9 : 0, best = 0;
	int pick = 1;
	for (int d = 1; d <= og; d++) {
		if (og % d || !gv_og_ok(c, d, c->v_head_dim))
			continue;
		double est = split_est(attn_heads_ns(e, e->max_seq - 1, (int)H / d), gv / d, d,
				       split_take(e));
		if (d == 1 || est < best) {
			best = est;
			pick = d;
		}
	}
	return pick;
}

/* The striped attention's build parameters: the tree's (acu's), else the kernel's. */
static void gv_attn_params(struct ee *e, const struct board_cu *acu)
{
	e->attn_macs = acu && acu->lane_macs ? acu->lane_macs : MLA_LANE_MACS;
	e->attn_imacs = acu && acu->lane_imacs ? acu->lane_imacs : MLA_LANE_IMACS;
	e->attn_passes = acu && acu->lane_passes ? acu->lane_passes : MLA_LANE_PASSES;
	e->attn_exp_ii = acu && acu->lane_exp_ii ? acu->lane_exp_ii : MLA_LANE_EXP_II;
}

/* Whether the model's attention shape fits the striped-attention kernel (and the switch
 * MOECARD_CARD_ATTN=0 leaves it on). */
static int gv_attn_shape_ok(const struct ee *e)
{
	const struct config *c = e->c;
	return !gv_env_off("MOECARD_CARD_ATTN") && c->kv_lora_rank <= MLA_MAX_DC &&
	       c->qk_rope_head_dim <= MLA_MAX_DR && c->num_attention_heads <= MLA_MAX_H &&
	       e->max_seq <= MLA_MAX_T;
}

/* A board built without the attention's FP8 datapath runs it only in a what-if (e->dry). */
static int gv_attn_fp8_check(struct ee *e, const struct board_cu *acu, char *err, size_t errlen)
{
	if (e->attn_fp8 && e->gv_attn && acu && acu->no_fp8 && !e->dry) {
		snprintf(err, errlen,
			 "--attn-datapath fp8: board %s: CU %s is built without the FP8 datapath "
			 "(moecard,fp8-datapath = <0>)",
			 backend_board(e->be)->model, acu->name);
		return -EINVAL;
	}
	return 0;
}

/* The arena of need bytes at one offset in each of the lane banks 0..gv_lanes-1 (the dry
 * what-if: offsets only). */
static int gv_arena(struct ee *e, uint64_t need, const char *what, char *err, size_t errlen)
{
	e->gv_cur = 0;
	e->gv_tiles = 0;
	e->gv_cap = need;
	if (e->dry) { /* shapes only: one layer's tables are reused for all */
		e->gv_base = 0;
		e->gv_cap = UINT64_MAX;
		return 0;
	}
	for (uint32_t i = 0; i < e->gv_lanes; i++) {
		uint64_t a;
		int r = card_place(e, (int)i, NULL, need ? need : 64, &a);
		if (r) {
			snprintf(err, errlen, "%s: the %s need %.1f MB in each of %u banks (%s)",
				 backend_board(e->be)->model, what, need / 1e6, e->gv_lanes,
				 strerror(-r));
			return r;
		}
		if (i == 0) {
			e->gv_base = ABI_ADDR_OFF(a);
		} else if (ABI_ADDR_OFF(a) != e->gv_base) {
			snprintf(err, errlen,
				 "%s: the stripe arena is not at one offset in every bank",
				 backend_board(e->be)->model);
			return -EINVAL;
		}
	}
	return 0;
}

/* The fp8_gemm lowering's attention (the expert cache's, MOECARD_CARD_GEMV=0): the board's
 * striped-attention CU where it has one whose lane l reads bank l, the latent caches striped
 * over those banks in an arena of their own; else the mla_attn CU, on the f32 cache only. */
static int gv_attn_only(struct ee *e, const char *kv_format, char *err, size_t errlen)
{
	const struct config *c = e->c;
	const struct board_cu *acu = NULL;
	uint32_t al = gv_attn_cu(e, &acu);
	e->gv_attn = 0;
	e->gv_lanes = 0;
	int ok = al > 0 && al <= FP8_GEMV_MAX_LANES &&
		 backend_supports_op(e->be, ABI_OP_MLA_ATTN_LANES) && gv_attn_shape_ok(e);
	for (uint32_t i = 0; ok && i < al; i++) {
		char name[BOARD_NAME_MAX];
		snprintf(name, sizeof name, "gmem_l%u", i);
		ok = acu->port_bank[board_cu_port_find(acu, name)] == i;
	}
	if (!ok) {
		if (e->kv_fmt == ABI_KV_F32)
			return 0;
		snprintf(err, errlen,
			 "--kv-format %s: %s has no striped attention CU (mla_attn_lanes) that "
			 "reads it",
			 kv_format, backend_board(e->be)->model);
		return -EINVAL;
	}
	e->gv_lanes = al;
	e->gv_attn = 1;
	gv_attn_params(e, acu);
	int r = gv_attn_fp8_check(e, acu, err, errlen);
	if (r)
		return r;
	if (e->kv_fmt == ABI_KV_FP8 && c->kv_lora_rank % 128) {
		snprintf(err, errlen, "--kv-format fp8: kv_lora_rank %d is not a multiple of 128",
			 c->kv_lora_rank);
		return -EINVAL;
	}
	int L = c->num_hidden_layers + (e->w && e->w->mtp ? 1 : 0);
	uint64_t need = (uint64_t)L * gv_kv_bytes(e) * (uint64_t)(e->n_seq > 1 ? e->n_seq : 1);
	return gv_arena(e, need, "striped latent caches", err, errlen);
}

int card_gemv_init(struct ee *e, int cache, const char *kv_format, int attn_fp8, char *err,
		   size_t errlen)
{
	const struct config *c = e->c;
	uint32_t act = 0;
	const char *off = getenv("MOECARD_CARD_GEMV");
	e->gv = 0;
	e->o_groups = e->q_slices = 1; /* (gv_o_groups chooses, with the striped attention) */
	e->kv_fmt = ABI_KV_F32;
	if (kv_format && strcmp(kv_format, "f32")) {
		if (!strcmp(kv_format, "bf16")) {
			e->kv_fmt = ABI_KV_BF16;
		} else if (!strcmp(kv_format, "fp8")) {
			e->kv_fmt = ABI_KV_FP8;
		} else {
			snprintf(err, errlen, "--kv-format %s: one of f32, bf16, fp8", kv_format);
			return -EINVAL;
		}
	}
	e->attn_fp8 = attn_fp8;
	if (attn_fp8 && e->kv_fmt != ABI_KV_FP8) {
		snprintf(err, errlen, "--attn-datapath fp8 needs --kv-format fp8");
		return -EINVAL;
	}
	if ((off && !strcmp(off, "0")) || cache || !backend_supports_op(e->be, ABI_OP_GEMV))
		return gv_attn_only(e, kv_format, err, errlen);
	e->gv_lanes = gv_cu(e, &e->gv_axi_bits, &e->gv_rows, &e->gv_f32, &act);
	if (!e->gv_lanes || (!e->dry && act != e->act_bank) ||
	    c->num_experts_per_tok + 1 > EE_MAX_TOPK)
		return gv_attn_only(e, kv_format, err, errlen);
	int nmoe = 0, L = c->num_hidden_layers + (e->w && e->w->mtp ? 1 : 0);
	for (int l = 0; l < L; l++)
		nmoe +=
		    config_layer_is_moe(c, l < c->num_hidden_layers ? l : c->num_hidden_layers - 1);
	gv_decide(e);
	const struct board_cu *acu = NULL;
	uint32_t al = gv_attn_cu(e, &acu);
	const struct config *cc = e->c;
	e->gv_attn = backend_supports_op(e->be, ABI_OP_MLA_ATTN_LANES) && al == e->gv_lanes &&
		     gv_attn_shape_ok(e);
	/* the token loop's append normalizes and ropes kv_a's row itself (rope width even) */
	e->kv_fold = e->gv_attn && cc->qk_rope_head_dim > 0 && !(cc->qk_rope_head_dim & 1) &&
		     !gv_env_off("MOECARD_KV_FOLD");
	gv_attn_params(e, acu);
	int r = gv_attn_fp8_check(e, acu, err, errlen);
	if (r)
		return r;
	if (e->kv_fmt != ABI_KV_F32 && !e->gv_attn) {
		snprintf(err, errlen,
			 "--kv-format %s: %s has no striped attention CU (mla_attn_lanes) that "
			 "reads it",
			 kv_format, backend_board(e->be)->model);
		e->gv = 0;
		return -EINVAL;
	}
	if (e->kv_fmt == ABI_KV_FP8 && cc->kv_lora_rank % 128) {
		snprintf(err, errlen, "--kv-format fp8: kv_lora_rank %d is not a multiple of 128",
			 cc->kv_lora_rank);
		e->gv = 0;
		return -EINVAL;
	}
	e->o_groups = gv_o_groups(e);
	if (e->o_groups > 1 && cc->q_lora_rank > 0 && e->kv_fold &&
	    gv_og_ok(cc, e->o_groups, cc->qk_nope_head_dim + cc->qk_rope_head_dim))
		e->q_slices = e->o_groups;
	uint64_t need =
	    (uint64_t)nmoe * gv_layer_need(e, 1) + (uint64_t)(L - nmoe) * gv_layer_need(e, 0);
	if (e->gv_attn)
		need += (uint64_t)L * gv_kv_bytes(e) * (uint64_t)(e->n_seq > 1 ? e->n_seq : 1);
	if (e->gv_head)
		need += gv_bytes(e, c->vocab_size, c->hidden_size, FP8_GEMV_W_BF16) *
			(e->w && e->w->mtp && gv_mtp_head_own(e) ? 2 : 1);
	e->gv = 1;
	return gv_arena(e, need, "striped weights", err, errlen);
}

static int gv_place_rot(struct ee *e, struct smat *m, int n, int k, uint32_t lay,
			const struct qmat *a, const struct qmat *b, const uint8_t *codes,
			const float *scales, int lane0);

/* Stripes the matrix (a, with b the up half of a SiLU pair; a NULL: shapes only) into the arena. */
static int gv_place(struct ee *e, struct smat *m, int n, int k, uint32_t lay, const struct qmat *a,
		    const struct qmat *b, const uint8_t *codes, const float *scales)
{
	return gv_place_rot(e, m, n, k, lay, a, b, codes, scales, -1);
}

/* gv_place on rotation lane0 (-1: the next one): the slices of a matrix whose outputs chain
 * (FP8_GEMV_CONT) share the first slice's, so each output row stays on one lane. */
static int gv_place_rot(struct ee *e, struct smat *m, int n, int k, uint32_t lay,
			const struct qmat *a, const struct qmat *b, const uint8_t *codes,
			const float *scales, int lane0)
{
	uint64_t bytes = gv_bytes(e, n, k, lay);
	m->n = n;
	m->k = k;
	m->lay = lay;
	/* rotation: after the tiles placed so far, except for the matrices GV_ROT0 asks to share
	 * lane 0 (the MoE experts: their downs accumulate into one y, and the router's tables
	 * move only w_off from expert 0's) */
	m->lane0 = lane0 >= 0	     ? (uint32_t)lane0
		   : (lay & GV_ROT0) ? 0
				     : (uint32_t)(e->gv_tiles % e->gv_lanes);
	lay &= ~GV_ROT0;
	m->lay = lay;
	e->gv_tiles += (uint64_t)(n + FP8_GEMV_R - 1) / FP8_GEMV_R;
	m->off = e->gv_base + e->gv_cur;
	if (e->gv_cur + bytes > e->gv_cap)
		return -ENOSPC;
	e->gv_cur += bytes;
	if (e->dry || (!a && !codes))
		return 0;
	enum qmat_fmt fmt = (lay & FP8_GEMV_W_BF16) ? QMAT_BF16 : QMAT_FP8;
	if (a && (a->fmt != fmt || a->rows != n || a->cols != k ||
		  (b && (b->fmt != fmt || b->rows != n || b->cols != k))))
		return -EINVAL;
	uint32_t L = e->gv_lanes;
	uint8_t *buf = calloc(L, bytes);
	uint8_t *dst[FP8_GEMV_MAX_LANES];
	if (!buf)
		return -ENOMEM;
	for (uint32_t i = 0; i < L; i++)
		dst[i] = buf + (size_t)i * bytes;
	fp8_gemv_stripe(dst, (int)L, a ? a->w : codes, a ? a->scale : scales, b ? b->w : NULL,
			b ? b->scale : NULL, n, k, lay, (int)m->lane0);
	int r = 0;
	for (uint32_t i = 0; i < L && !r; i++)
		r = card_write(e, ABI_ADDR(i, m->off), dst[i], bytes);
	free(buf);
	return r;
}

/* A table of ng groups in the activation bank (ng entries of host copy). */
static int gv_tab(struct ee *e, struct gvtab *t, int ng)
{
	t->g = calloc((size_t)ng, sizeof *t->g);
	t->cap = ng;
	t->ng = 0;
	if (!t->g)
		return -ENOMEM;
	return card_place(e, (int)e->act_bank, NULL, (size_t)ng * sizeof *t->g, &t->addr);
}

/* Appends a group: matrix m reads x (f32 [k]) and writes y (f32 [n]) with flags; res / rw 0 when
 * unused. Quantize-inside groups take the checkpoint's UE8M0 rule. */
static void gv_add(const struct ee *e, struct gvtab *t, const struct smat *m, uint64_t x,
		   uint64_t y, uint64_t res, uint64_t rw, uint32_t flags)
{
	struct fp8_gemv_grp *g = &t->g[t->ng++];
	memset(g, 0, sizeof *g);
	if (!(flags & FP8_GEMV_ACT_F32) && !(m->lay & FP8_GEMV_W_BF16) &&
	    e->c->quantization_config.ue8m0)
		flags |= FP8_GEMV_UE8M0;
	g->w_off = m->off;
	g->x_off = ABI_ADDR_OFF(x);
	g->y_off = ABI_ADDR_OFF(y);
	g->res_off = res ? ABI_ADDR_OFF(res) : 0;
	g->rw_off = rw ? ABI_ADDR_OFF(rw) : 0;
	g->n = (uint32_t)m->n;
	g->k = (uint32_t)m->k;
	g->ldx = (uint32_t)m->k;
	g->ldy = (uint32_t)m->n;
	g->flags = flags | m->lay;
	g->lane0 = m->lane0;
}

/* The last group added normalizes its x rows in the loader (FP8_GEMV_RMSNORM) with the norm
 * weight at w: the RMSNORM command before it is folded away. */
static void gv_norm_last(const struct ee *e, struct gvtab *t, uint64_t w)
{
	struct fp8_gemv_grp *g = &t->g[t->ng - 1];
	float eps = (float)e->c->rms_norm_eps;
	uint32_t eb;
	memcpy(&eb, &eps, sizeof eb);
	g->flags |= FP8_GEMV_RMSNORM;
	g->res_off = ABI_ADDR_OFF(w);
	g->rw_off = eb;
}

/* The last group added also takes flag, whose list sits at a in the activation bank: its rows'
 * greedy records (FP8_GEMV_ARGMAX) or their x row indices (FP8_GEMV_XIDX), at rw_off's high word
 * (the low word stays RMSNORM's eps). */
static void gv_list_last(struct gvtab *t, uint32_t flag, uint64_t a)
{
	struct fp8_gemv_grp *g = &t->g[t->ng - 1];
	g->flags |= flag;
	g->rw_off |= ABI_ADDR_OFF(a) << 32;
}

static int gv_write(struct ee *e, const struct gvtab *t)
{
	return card_write(e, t->addr, t->g, (size_t)t->ng * sizeof *t->g);
}

/* o_proj in e->o_groups slices of K (a head group's v columns each) on one rotation. */
static int gv_place_o(struct ee *e, struct ee_gv_layer *g, const struct layer_weights *lw)
{
	const struct config *c = e->c;
	int D = c->hidden_size, K = c->num_attention_heads * c->v_head_dim, og = e->o_groups;
	int kg = K / og, kbk = (K + 127) / 128, kbn = (D + 127) / 128;
	const struct qmat *o = lw && !e->dry ? &lw->o_proj : NULL;
	if (og <= 1)
		return gv_place(e, &g->o[0], D, K, 0, o, NULL, NULL, NULL);
	if (o && (o->fmt != QMAT_FP8 || o->rows != D || o->cols != K))
		return -EINVAL;
	uint8_t *w = o ? malloc((size_t)D * kg) : NULL;
	float *ws = o ? malloc((size_t)kbn * (kg / 128) * sizeof *ws) : NULL;
	int r = o && (!w || !ws) ? -ENOMEM : 0;
	for (int s = 0; s < og && !r; s++) {
		int k0 = s * kg;
		for (int n = 0; o && n < D; n++)
			memcpy(w + (size_t)n * kg, (const uint8_t *)o->w + (size_t)n * K + k0,
			       (size_t)kg);
		for (int b = 0; o && b < kbn; b++)
			for (int j = 0; j < kg / 128; j++)
				ws[b * (kg / 128) + j] = o->scale[(size_t)b * kbk + k0 / 128 + j];
		r = gv_place_rot(e, &g->o[s], D, kg, 0, NULL, NULL, w, ws,
				 s ? (int)g->o[0].lane0 : -1);
	}
	free(w);
	free(ws);
	return r;
}

/* o_proj's slices into table t (rows 0: one x row; else rows of ldx / ldy elements): slice s
 * reads its columns of ao, each continues the one before (FP8_GEMV_CONT from ob), the last
 * adds the residual into x. */
static void gv_add_o(struct ee *e, struct gvtab *t, const struct ee_gv_layer *g, uint64_t ao,
		     uint64_t ob, uint64_t x, uint32_t ldx, uint32_t ldy)
{
	int og = e->o_groups;
	for (int s = 0; s < og; s++) {
		int last = s == og - 1;
		uint32_t f = (s ? FP8_GEMV_CONT : 0) | (last ? FP8_GEMV_RESIDUAL : 0);
		gv_add(e, t, &g->o[s], ao + 4 * (uint64_t)s * g->o[s].k, last ? x : ob,
		       last ? x : 0, s ? ob : 0, f);
		if (ldx) {
			t->g[t->ng - 1].ldx = ldx;
			t->g[t->ng - 1].ldy = ldy;
		}
	}
}

/* A view of groups [a, a + n) of t (one command's table). */
static struct gvtab gv_view(const struct gvtab *t, int a, int n)
{
	struct gvtab v = {t->addr + (uint64_t)a * sizeof *t->g, t->g + a, n, n, 0, NULL, 0, 0};
	return v;
}

/* MLA: striped matrices and the five static tables. */
static int gv_attn(struct ee *e, struct ee_layer *L, const struct layer_weights *lw, char *err,
		   size_t errlen)
{
	const struct config *c = e->c;
	struct ee_gv_layer *g = &L->gv;
	int D = c->hidden_size, H = c->num_attention_heads, ql = c->q_lora_rank;
	int nope = c->qk_nope_head_dim, rope = c->qk_rope_head_dim, qd = nope + rope;
	int kvl = c->kv_lora_rank, vd = c->v_head_dim, row = kvl + rope, r = 0;
	g->ukt = calloc((size_t)H, sizeof *g->ukt);
	g->uv = calloc((size_t)H, sizeof *g->uv);
	if (!g->ukt || !g->uv)
		return -ENOMEM;
	if (ql > 0)
		TRY(gv_place(e, &g->qa, ql, D, 0, lw ? &lw->q_a_proj : NULL, NULL, NULL, NULL));
	int qs = e->q_slices, qr = H * qd / qs;
	const struct qmat *qm = lw ? (ql > 0 ? &lw->q_b_proj : &lw->q_proj) : NULL;
	if (qs == 1)
		TRY(gv_place(e, &g->qb[0], H * qd, ql > 0 ? ql : D, 0, qm, NULL, NULL, NULL));
	else if (qm && !e->dry && (qm->fmt != QMAT_FP8 || qm->rows != H * qd || qm->cols != ql))
		return -EINVAL;
	for (int s = 0; s < qs && qs > 1; s++) /* rows of a head group each, whole 128-row blocks */
		TRY(gv_place(e, &g->qb[s], qr, ql, 0, NULL, NULL,
			     qm && !e->dry ? (const uint8_t *)qm->w + (size_t)s * qr * ql : NULL,
			     qm && !e->dry ? qm->scale + (size_t)s * qr / 128 * qm->scale_cols
					   : NULL));
	TRY(gv_place(e, &g->kva, row, D, 0, lw ? &lw->kv_a_proj_with_mqa : NULL, NULL, NULL, NULL));
	TRY(gv_place_o(e, g, lw));
	uint8_t *t = NULL;
	float *ts = NULL;
	if (lw && !e->dry)
		TRY(card_uk_t_build(e, lw, &t, &ts, err, errlen));
	int kbn = (nope + 127) / 128, kbl = (kvl + 127) / 128, sc = (kvl + 127) / 128;
	for (int h = 0; h < H; h++) {
		if ((r = gv_place(e, &g->ukt[h], kvl, nope, 0, NULL, NULL,
				  t ? t + (size_t)h * kvl * nope : NULL,
				  ts ? ts + (size_t)h * kbl * kbn : NULL)))
			break;
		int r0 = h * (nope + vd) + nope; /* W_UV rows of head h in kv_b */
		const uint8_t *uv =
		    lw && !e->dry ? (const uint8_t *)lw->kv_b_proj.w + (size_t)r0 * kvl : NULL;
		if ((r = gv_place(e, &g->uv[h], vd, kvl, 0, NULL, NULL, uv,
				  uv ? lw->kv_b_proj.scale + (size_t)(r0 / 128) * sc : NULL)))
			break;
	}
	free(t);
	free(ts);
	if (r)
		return r;
	/* the non-absorbed prefill's W_UK rows of kv_b per head (its W_UV rows are uv[h]); where
	 * the arena has no room for them, the prefill keeps the absorbed form */
	if (e->gv_attn && card_pf_mha_shape(c)) {
		if (!(g->kn = calloc((size_t)H, sizeof *g->kn)))
			return -ENOMEM;
		for (int h = 0; h < H && !r; h++) {
			int r0 = h * (nope + vd);
			const uint8_t *kn =
			    lw && !e->dry ? (const uint8_t *)lw->kv_b_proj.w + (size_t)r0 * kvl
					  : NULL;
			r = gv_place(e, &g->kn[h], nope, kvl, 0, NULL, NULL, kn,
				     kn ? lw->kv_b_proj.scale + (size_t)(r0 / 128) * sc : NULL);
		}
		if (r == -ENOSPC) {
			free(g->kn);
			g->kn = NULL;
			r = 0;
		}
		if (r)
			return r;
	}
	TRY(gv_tab(e, &g->t_qkva, 2));
	TRY(gv_tab(e, &g->t_qb, qs));
	TRY(gv_tab(e, &g->t_ukt, H));
	TRY(gv_tab(e, &g->t_uv, H));
	TRY(gv_tab(e, &g->t_o, e->o_groups));
	/* input_layernorm and q_a_layernorm run in the loaders of the GEMVs that read them */
	if (ql > 0)
		gv_add(e, &g->t_qkva, &g->qa, e->x, e->qa, 0, 0, 0);
	else
		gv_add(e, &g->t_qkva, &g->qb[0], e->x, e->q, 0, 0, 0);
	gv_norm_last(e, &g->t_qkva, L->in_norm);
	gv_add(e, &g->t_qkva, &g->kva, e->x, e->kva, 0, 0, 0);
	gv_norm_last(e, &g->t_qkva, L->in_norm);
	for (int s = 0; s < qs; s++) {
		gv_add(e, &g->t_qb, &g->qb[s], e->qa, e->q + 4 * (uint64_t)s * qr, 0, 0, 0);
		if (ql > 0)
			gv_norm_last(e, &g->t_qb, L->q_a_norm);
	}
	for (int h = 0; h < H; h++) {
		gv_add(e, &g->t_ukt, &g->ukt[h], e->q + 4 * (uint64_t)h * qd,
		       e->qcat + 4 * (uint64_t)h * row, 0, 0, FP8_GEMV_ACT_F32);
		gv_add(e, &g->t_uv, &g->uv[h], e->lat + 4 * (uint64_t)h * kvl,
		       e->ao + 4 * (uint64_t)h * vd, 0, 0, FP8_GEMV_ACT_F32);
	}
	gv_add_o(e, &g->t_o, g, e->ao, e->ob, e->x, 0, 0);
	/* for d head groups, group j's views: its heads' W_UK^T and W_UV groups, its q_b and
	 * o_proj slices */
	for (int d = 1, og = e->o_groups; d <= og; d++)
		for (int j = 0, hg = H / d, k = og / d; j < d && og % d == 0; j++) {
			g->v_uv[EE_OG_VIEW(d) + j] = gv_view(&g->t_uv, j * hg, hg);
			g->v_ukt[EE_OG_VIEW(d) + j] = gv_view(&g->t_ukt, j * hg, hg);
			g->v_o[EE_OG_VIEW(d) + j] = gv_view(&g->t_o, j * k, k);
			if (qs == og) /* (q_b in slices) */
				g->v_qb[EE_OG_VIEW(d) + j] = gv_view(&g->t_qb, j * k, k);
		}
	if ((r = gv_write(e, &g->t_qkva)) || (r = gv_write(e, &g->t_qb)) ||
	    (r = gv_write(e, &g->t_ukt)) || (r = gv_write(e, &g->t_uv)) ||
	    (r = gv_write(e, &g->t_o)))
		return r;
	return 0;
}

static void gv_fill_moe(const struct ee *e, struct ee_layer *L, const int *idx);

/* The MoE layer's two expert tables back to back (the router writes both at once), the route's
 * output, and with the router on the card the gate, the bias and the tables' templates. */
static int gv_moe_tables(struct ee *e, struct ee_layer *L, const struct layer_weights *lw)
{
	const struct config *c = e->c;
	struct ee_gv_layer *g = &L->gv;
	int k = c->num_experts_per_tok, E = c->n_routed_experts, r;
	size_t n = (size_t)k + 1, gb = sizeof(struct fp8_gemv_grp);
	g->t_mgu.g = calloc(n, gb);
	g->t_mdn.g = calloc(n, gb);
	if (!g->t_mgu.g || !g->t_mdn.g)
		return -ENOMEM;
	g->t_mgu.cap = g->t_mdn.cap = (int)n;
	TRY(card_place(e, (int)e->act_bank, NULL, 2 * n * gb, &g->t_mgu.addr));
	g->t_mdn.addr = g->t_mgu.addr + n * gb;
	TRY(card_place(e, (int)e->act_bank, NULL, 8 * (size_t)k, &g->rout));
	if (!e->gv_route)
		return 0;
	TRY(gv_place(e, &g->gate, E, c->hidden_size, FP8_GEMV_W_BF16, lw ? &lw->gate : NULL, NULL,
		     NULL, NULL));
	TRY(card_place(e, (int)e->act_bank, NULL, sizeof(float) * (size_t)E, &g->rlog));
	TRY(gv_tab(e, &g->t_gate, 1));
	gv_add(e, &g->t_gate, &g->gate, e->x, g->rlog, 0, 0, 0);
	gv_norm_last(e, &g->t_gate, L->post_norm);
	TRY(gv_write(e, &g->t_gate));
	/* the correction bias (the dry what-if assumes one, as DeepSeek-V3 has) */
	if (!lw || lw->e_score_correction_bias)
		TRY(card_place(e, (int)e->act_bank, lw ? lw->e_score_correction_bias : NULL,
			       sizeof(float) * (size_t)E, &g->bias));
	/* the templates: every routed slot on expert 0's stripe sets; the router adds idx * stride */
	g->stride = E > 1 ? (uint32_t)(g->exgu[1].off - g->exgu[0].off) : 0;
	for (int x = 1; x < E; x++)
		if (g->exgu[x].off - g->exgu[0].off != (uint64_t)x * g->stride ||
		    g->exdn[x].off - g->exdn[0].off != (uint64_t)x * g->stride)
			return -EINVAL; /* the placement keeps experts evenly spaced */
	gv_fill_moe(e, L, NULL);
	TRY(card_place(e, (int)e->act_bank, NULL, 2 * n * gb, &g->tmpl));
	TRY(card_write(e, g->tmpl, g->t_mgu.g, n * gb));
	if ((r = card_write(e, g->tmpl + n * gb, g->t_mdn.g, n * gb)))
		return r;
	return 0;
}

int card_kv_lanes_place(struct ee *e, struct ee_layer *L)
{
	uint64_t kb = gv_kv_bytes(e) * (uint64_t)(e->n_seq > 1 ? e->n_seq : 1);
	if (e->gv_cur + kb > e->gv_cap)
		return -ENOSPC;
	L->kv_off = e->gv_base + e->gv_cur;
	e->kv_slot_b = gv_kv_bytes(e);
	e->gv_cur += kb;
	return 0;
}

int card_gemv_layer(struct ee *e, struct ee_layer *L, const struct layer_weights *lw, char *err,
		    size_t errlen)
{
	const struct config *c = e->c;
	struct ee_gv_layer *g = &L->gv;
	int r;
	if (e->gv_attn && (r = card_kv_lanes_place(e, L)))
		return r;
	int D = c->hidden_size, Im = c->moe_intermediate_size, ns = c->n_shared_experts;
	int E = c->n_routed_experts;
	int dense = !lw || !lw->is_moe, moe = !lw || lw->is_moe;
	if ((r = gv_attn(e, L, lw, err, errlen)))
		goto fail;
	if (dense) {
		int I = c->intermediate_size;
		if ((r = gv_place(e, &g->gu, I, D, FP8_GEMV_SILU_MUL, lw ? &lw->mlp.gate : NULL,
				  lw ? &lw->mlp.up : NULL, NULL, NULL)) ||
		    (r = gv_place(e, &g->down, D, I, 0, lw ? &lw->mlp.down : NULL, NULL, NULL,
				  NULL)) ||
		    (r = gv_tab(e, &g->t_gu, 1)) || (r = gv_tab(e, &g->t_down, 1)))
			goto fail;
		gv_add(e, &g->t_gu, &g->gu, e->x, e->hb[0], 0, 0, 0);
		gv_norm_last(e, &g->t_gu, L->post_norm);
		gv_add(e, &g->t_down, &g->down, e->hb[0], e->x, e->x, 0, FP8_GEMV_RESIDUAL);
		if ((r = gv_write(e, &g->t_gu)) || (r = gv_write(e, &g->t_down)))
			goto fail;
	}
	if (moe) {
		g->exgu = calloc((size_t)(E > 0 ? E : 1), sizeof *g->exgu);
		g->exdn = calloc((size_t)(E > 0 ? E : 1), sizeof *g->exdn);
		if (!g->exgu || !g->exdn) {
			r = -ENOMEM;
			goto fail;
		}
		for (int x = 0; x < E; x++) {
			const struct ffn_weights *f = lw ? &lw->experts[x] : NULL;
			if ((r = gv_place(e, &g->exgu[x], Im, D, FP8_GEMV_SILU_MUL | GV_ROT0,
					  f ? &f->gate : NULL, f ? &f->up : NULL, NULL, NULL)) ||
			    (r = gv_place(e, &g->exdn[x], D, Im, GV_ROT0, f ? &f->down : NULL, NULL,
					  NULL, NULL)))
				goto fail;
		}
		if (ns > 0 && ((r = gv_place(e, &g->shgu, Im * ns, D, FP8_GEMV_SILU_MUL,
					     lw ? &lw->shared.gate : NULL,
					     lw ? &lw->shared.up : NULL, NULL, NULL)) ||
			       (r = gv_place(e, &g->shdown, D, Im * ns, GV_ROT0,
					     lw ? &lw->shared.down : NULL, NULL, NULL, NULL))))
			goto fail;
		if ((r = gv_moe_tables(e, L, lw)))
			goto fail;
	}
	return 0;
fail:
	if (!err[0])
		snprintf(err, errlen, "%s: cannot place the striped weights (%s)",
			 lw ? lw->o_proj.name : "layer", strerror(-r));
	return r;
}

void card_gemv_layer_free(struct ee_layer *L)
{
	struct ee_gv_layer *g = &L->gv;
	struct gvtab *t[] = {&g->t_qkva, &g->t_qb,   &g->t_ukt,	 &g->t_uv,     &g->t_o,
			     &g->t_gu,	 &g->t_down, &g->t_mgu,	 &g->t_mdn,    &g->t_gate,
			     &g->r_qkva, &g->r_qb,   &g->r_ukt,	 &g->r_uv,     &g->r_o,
			     &g->r_gu,	 &g->r_down, &g->r_shgu, &g->r_shdown, &g->r_kvb};
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		free(t[i]->g);
		free(t[i]->views);
	}
	free(g->ukt);
	free(g->uv);
	free(g->kn);
	free(g->exgu);
	free(g->exdn);
	memset(g, 0, sizeof *g);
}

/* One GEMV command over table (or view) t: its t->ng groups, t->m rows (0: 1), group 0's x
 * named so the x loader starts it beside the table read (card_gemv_cycles times it so). */
static int gv_cmd(struct ee *e, const char *what, const struct gvtab *t)
{
	struct abi_cmd *c = card_cmd(e, ABI_OP_GEMV, what);
	if (!c)
		return -E2BIG;
	c->u.gemv.tab = t->addr;
	c->u.gemv.ng = (uint32_t)t->ng;
	c->u.gemv.m = t->m > 0 ? (uint32_t)t->m : 1;
	c->u.gemv.x0_off = t->g[0].x_off;
	c->u.gemv.flags = ABI_GEMV_F_X0;
	e->list.gt[e->list.n - 1] = t;
	return 0;
}

static int gv_rows(struct ee *e, const char *what, const struct smat *m, uint64_t x, uint64_t y,
		   int rows, struct gvtab *t, struct gvtab *views, int nviews, uint64_t norm,
		   uint64_t rec);

int card_gemv_rows(struct ee *e, const char *what, const struct smat *m, uint64_t x, uint64_t y,
		   int rows, struct gvtab *t, struct gvtab *views, int nviews)
{
	return gv_rows(e, what, m, x, y, rows, t, views, nviews, 0, 0);
}

int card_gemv_rows_norm(struct ee *e, const char *what, const struct smat *m, uint64_t x,
			uint64_t y, int rows, struct gvtab *t, struct gvtab *views, int nviews,
			uint64_t norm)
{
	return gv_rows(e, what, m, x, y, rows, t, views, nviews, norm, 0);
}

int card_gemv_rows_top1(struct ee *e, const char *what, const struct smat *m, uint64_t x,
			uint64_t y, int rows, struct gvtab *t, uint64_t norm, uint64_t rec)
{
	if (rows > (int)ABI_GEMV_MAX_M)
		return -EINVAL; /* one group: its records at rec + 8 i */
	return gv_rows(e, what, m, x, y, rows, t, NULL, 0, norm, rec);
}

/* gv_rows' groups [g0, g1) of the table t (groups of mm rows): as many commands as the CU's x
 * buffer needs, each on a view of t (views[*nv..]) unless one command takes the whole table. */
static int gv_rows_issue(struct ee *e, const char *what, const struct smat *m, struct gvtab *t,
			 int mm, int g0, int g1, struct gvtab *views, int nviews, int *nv)
{
	/* the groups of one command share the CU's x buffer (FP8_GEMV_MAX_M x FP8_GEMV_MAX_K) */
	int per = (int)((uint64_t)FP8_GEMV_MAX_M * FP8_GEMV_MAX_K / ((uint64_t)mm * m->k));
	if (per < 1)
		return -EINVAL;
	for (int a = g0; a < g1; a += per) {
		int n = g1 - a < per ? g1 - a : per;
		struct gvtab *v = t;
		if (n < t->ng) { /* a view of the table: groups a.. */
			if (!views || *nv >= nviews)
				return -EINVAL;
			v = &views[(*nv)++];
			*v = (struct gvtab){
			    t->addr + (uint64_t)a * sizeof *t->g, t->g + a, n, n, mm, NULL, 0, 0};
		}
		TRY(gv_cmd(e, what, v));
	}
	return 0;
}

/* gv_rows' table: groups of mm rows over rows of x into y (norm, rec as gv_rows), written. */
static int gv_rows_build(struct ee *e, const struct smat *m, uint64_t x, uint64_t y, int rows,
			 struct gvtab *t, uint64_t norm, uint64_t rec, int *mm_out)
{
	int mm = rows < (int)ABI_GEMV_MAX_M ? rows : (int)ABI_GEMV_MAX_M;
	int ng = (rows + mm - 1) / mm;
	if (rows < 1 || ng > t->cap)
		return -EINVAL;
	t->ng = 0;
	for (int g = 0; g < ng; g++) {
		gv_add(e, t, m, x + 4 * (uint64_t)g * mm * m->k, y + 4 * (uint64_t)g * mm * m->n, 0,
		       0, 0);
		if (norm)
			gv_norm_last(e, t, norm);
	}
	if (rec && ng == 1) /* each row's greedy record */
		gv_list_last(t, FP8_GEMV_ARGMAX, rec);
	t->m = mm;
	*mm_out = mm;
	return gv_write(e, t);
}

static int gv_rows(struct ee *e, const char *what, const struct smat *m, uint64_t x, uint64_t y,
		   int rows, struct gvtab *t, struct gvtab *views, int nviews, uint64_t norm,
		   uint64_t rec)
{
	int mm = 0, nv = 0;
	TRY(gv_rows_build(e, m, x, y, rows, t, norm, rec, &mm));
	return gv_rows_issue(e, what, m, t, mm, 0, t->ng, views, nviews, &nv);
}

int card_gemv_rows_norm_range(struct ee *e, const char *what, const struct smat *m, uint64_t x,
			      uint64_t y, int rows, struct gvtab *t, struct gvtab *views,
			      int nviews, uint64_t norm, int r0, int r1, int *nv)
{
	int mm = rows < (int)ABI_GEMV_MAX_M ? rows : (int)ABI_GEMV_MAX_M;
	if (r0 < 0 || r0 % mm || r1 <= r0 || r1 > rows || (r1 % mm && r1 != rows))
		return -EINVAL;
	if (r0 == 0)
		TRY(gv_rows_build(e, m, x, y, rows, t, norm, 0, &mm));
	return gv_rows_issue(e, what, m, t, mm, r0 / mm, (r1 + mm - 1) / mm, views, nviews, nv);
}

double card_gemv_macs(const struct gvtab *t)
{
	double s = 0;
	for (int i = 0; t && i < t->ng; i++)
		s += (double)t->g[i].n * t->g[i].k * (t->g[i].flags & FP8_GEMV_SILU_MUL ? 2 : 1);
	return t ? s * (t->m > 0 ? t->m : 1) : 0;
}

double card_gemv_peak(const struct ee *e)
{
	uint32_t kclk = e->be ? backend_abi_board(e->be)->cu_clk_khz : 0;
	return (double)e->gv_lanes * (e->gv_axi_bits / 8.0) * (e->gv_rows ? e->gv_rows : 1) *
	       (kclk ? kclk / 1e6 : 0.3);
}

/* A table of cap groups for card_gemv_rows. */
int card_gemv_tab(struct ee *e, struct gvtab *t, int cap)
{
	return gv_tab(e, t, cap);
}

int card_mla_gemv(struct ee *e, const struct ee_layer *L, enum card_gv_step step)
{
	const struct ee_gv_layer *g = &L->gv;
	switch (step) {
	case GV_QKV_A:
		return gv_cmd(e, "q_a|kv_a (gemv)", &g->t_qkva);
	case GV_Q_B:
		return gv_cmd(e, "q_b (gemv)", &g->t_qb);
	case GV_UK_T:
		return gv_cmd(e, "W_UK^T q_nope, all heads (gemv)", &g->t_ukt);
	case GV_UV:
		return gv_cmd(e, "W_UV o_lat, all heads (gemv)", &g->t_uv);
	default:
		return gv_cmd(e, "o_proj + residual (gemv)", &g->t_o);
	}
}

int card_dense_gemv(struct ee *e, const struct ee_layer *L)
{
	TRY(gv_cmd(e, "gate|up silu (gemv)", &L->gv.t_gu));
	TRY(card_barrier(e));
	TRY(gv_cmd(e, "down + residual (gemv)", &L->gv.t_down));
	return card_barrier(e);
}

/* The MoE tables: entry 0 the shared expert, entry 1 + j the j-th routed expert (idx NULL: expert
 * 0, the templates); the downs accumulate route_w * y into ffn in router order, the route
 * weights read from the route's output. */
static void gv_fill_moe(const struct ee *e, struct ee_layer *L, const int *idx)
{
	struct ee_gv_layer *g = &L->gv;
	int k = e->c->num_experts_per_tok;
	g->t_mgu.ng = g->t_mdn.ng = 0;
	/* post_attention_layernorm in the loaders (card_post_norm: the host router still gets xn) */
	gv_add(e, &g->t_mgu, &g->shgu, e->x, e->hb[0], 0, 0, 0);
	gv_norm_last(e, &g->t_mgu, L->post_norm);
	gv_add(e, &g->t_mdn, &g->shdown, e->hb[0], e->ffn, 0, 0, 0);
	for (int j = 0; j < k; j++) {
		int x = idx ? idx[j] : 0, last = j == k - 1;
		gv_add(e, &g->t_mgu, &g->exgu[x], e->x, e->hb[j + 1], 0, 0, 0);
		gv_norm_last(e, &g->t_mgu, L->post_norm);
		/* the last down adds each finished row of ffn into x (RES_OUT: x = ffn + x) */
		gv_add(e, &g->t_mdn, &g->exdn[x], e->hb[j + 1], e->ffn, last ? e->x : 0,
		       g->rout + 4 * (uint64_t)(k + j),
		       FP8_GEMV_ACCUM | (last ? FP8_GEMV_RESIDUAL | FP8_GEMV_RES_OUT : 0));
	}
}

/* The router on the card: gate GEMV, then MOE_ROUTE writes idx, w and the filled tables. */
static int gv_route_cmds(struct ee *e, const struct ee_layer *L)
{
	const struct config *c = e->c;
	const struct ee_gv_layer *g = &L->gv;
	uint32_t f = router_flags(c, g->bias != 0) | MOE_ROUTE_TABLES;
	float scale = (float)c->routed_scaling_factor;
	TRY(gv_cmd(e, "router gate (gemv)", &g->t_gate));
	TRY(card_barrier(e));
	struct abi_cmd *r = card_cmd(e, ABI_OP_MOE_ROUTE, "router top-k");
	if (!r)
		return -E2BIG;
	r->u.route.logit = g->rlog;
	r->u.route.bias = (f & MOE_ROUTE_BIAS) ? g->bias : 0;
	r->u.route.out = g->rout;
	r->u.route.tmpl = g->tmpl;
	r->u.route.tab = g->t_mgu.addr;
	r->u.route.stride = g->stride;
	r->u.route.e = (uint32_t)c->n_routed_experts;
	r->u.route.k = (uint32_t)c->num_experts_per_tok;
	r->u.route.groups =
	    (f & MOE_ROUTE_GROUPS) ? (uint32_t)c->n_group | (uint32_t)c->topk_group << 16 : 0;
	r->u.route.flags = f;
	memcpy(&r->u.route.scale, &scale, 4);
	return card_barrier(e);
}

/* MoE FFN: the router (on the card, idx NULL; or the host's choice idx, whose weights the host
 * wrote to the route output), one GEMV for the shared and the chosen experts' gate|up, one for
 * the downs (the shared one writes ffn, the routed ones accumulate route_w * y in router order
 * inside each lane, the last one adds the finished row into x: x += ffn). */
int card_moe_gemv(struct ee *e, struct ee_layer *L, const int *idx)
{
	struct ee_gv_layer *g = &L->gv;
	if (!g->shgu.n)
		return -ENOTSUP; /* the shared down writes ffn first (as card_moe) */
	if (idx) {
		gv_fill_moe(e, L, idx);
		TRY(gv_write(e, &g->t_mgu));
		TRY(gv_write(e, &g->t_mdn));
	} else {
		TRY(gv_route_cmds(e, L));
	}
	TRY(gv_cmd(e, "experts gate|up silu (gemv)", &g->t_mgu));
	TRY(card_barrier(e));
	TRY(gv_cmd(e, "experts down + residual (gemv, router order)", &g->t_mdn));
	return card_barrier(e);
}

/* --- the rows path: at most FP8_GEMV_MAX_M rows of the batched forward's buffers ----------- */

/* Groups of a rows table: x rows ldx apart, y (and res) rows ldy apart. */
static void gv_add_rows(const struct ee *e, struct gvtab *t, const struct smat *m, uint64_t x,
			uint32_t ldx, uint64_t y, uint32_t ldy, uint64_t res, uint32_t flags)
{
	gv_add(e, t, m, x, y, res, 0, flags);
	t->g[t->ng - 1].ldx = ldx;
	t->g[t->ng - 1].ldy = ldy;
}

/* A gate|up and down pair's groups of row block r (r: the block's byte offset per element of a
 * row): gate|up over xn (folded: x, normalized in the loader) into hb, the down from hb into y,
 * adding res (0: none). */
static void rows_pair(const struct ee *e, const struct ee_layer *L, struct gvtab *tgu,
		      const struct smat *gu, struct gvtab *tdn, const struct smat *dn, uint64_t r,
		      uint64_t y, uint64_t res, int fold)
{
	const struct ee_pf *pf = &e->pf;
	uint32_t uD = (uint32_t)e->c->hidden_size, n = (uint32_t)gu->n;
	gv_add_rows(e, tgu, gu, (fold ? pf->x : pf->xn) + r * uD, uD, pf->hb + r * n, n, 0, 0);
	if (fold)
		gv_norm_last(e, tgu, L->post_norm);
	gv_add_rows(e, tdn, dn, pf->hb + r * n, n, y + r * uD, uD, res ? res + r * uD : 0,
		    res ? FP8_GEMV_RESIDUAL : 0);
}

int card_gemv_rows_tables(struct ee *e, struct ee_layer *L)
{
	const struct config *c = e->c;
	const struct ee_pf *pf = &e->pf;
	struct ee_gv_layer *g = &L->gv;
	if (g->r_on)
		return 0;
	int D = c->hidden_size, H = c->num_attention_heads, ql = c->q_lora_rank;
	int nope = c->qk_nope_head_dim, rope = c->qk_rope_head_dim, qd = nope + rope;
	int kvl = c->kv_lora_rank, vd = c->v_head_dim, row = kvl + rope;
	int nb = pf->rows_big ? pf->rows16 / FP8_GEMV_MAX_M : 1;
	int fold = card_pf_fold_post(e); /* the FFN's GEMVs normalize x themselves */
	uint32_t uD = (uint32_t)D, uH = (uint32_t)H;
	TRY(gv_tab(e, &g->r_qkva, 2 * nb));
	TRY(gv_tab(e, &g->r_qb, nb * e->q_slices));
	TRY(gv_tab(e, &g->r_ukt, H * nb));
	TRY(gv_tab(e, &g->r_uv, H * nb));
	TRY(gv_tab(e, &g->r_o, nb * e->o_groups));
	/* the kv_b table covers the K/V rows' capacity (a later chunk recomputes the rows before
	 * it), reading kv_a's rows where the forward keeps them: the layer's prompt rows (pf.kvp)
	 * or the chunk's (pf.kva) */
	g->kvp = pf->kvp && e->cur_layer >= 0 && e->cur_layer < c->num_hidden_layers
		     ? pf->kvp + 4 * (uint64_t)e->cur_layer * (uint64_t)pf->kvx_cap * row
		     : 0;
	g->kvp_p0 = 0;
	int nbk = g->kvp ? (pf->kvx_cap + FP8_GEMV_MAX_M - 1) / FP8_GEMV_MAX_M : nb;
	uint64_t kva = g->kvp ? g->kvp : pf->kva;
	if (g->kn && pf->kvx)
		TRY(gv_tab(e, &g->r_kvb, 2 * H * nbk));
	struct gvtab *w[] = {&g->r_qkva, &g->r_qb, &g->r_ukt, &g->r_uv, &g->r_o,
			     NULL,	 NULL,	   NULL,      NULL,	&g->r_kvb};
	if (g->gu.n) { /* dense FFN */
		TRY(gv_tab(e, &g->r_gu, nb));
		TRY(gv_tab(e, &g->r_down, nb));
		w[5] = &g->r_gu;
		w[6] = &g->r_down;
	}
	if (g->shgu.n) { /* the shared expert: writes ffn, the routed ones are combined */
		TRY(gv_tab(e, &g->r_shgu, nb));
		TRY(gv_tab(e, &g->r_shdown, nb));
		w[7] = &g->r_shgu;
		w[8] = &g->r_shdown;
	}
	for (int b = 0; b < nb; b++) { /* block b: rows 16 b .. of every buffer */
		uint64_t r = (uint64_t)b * FP8_GEMV_MAX_M * 4; /* a row's byte offset per element */
		/* input_layernorm and q_a_layernorm folded into the loaders, as in the decode
		 * tables */
		if (ql > 0) {
			gv_add_rows(e, &g->r_qkva, &g->qa, pf->x + r * uD, uD,
				    pf->qa + r * (uint32_t)ql, (uint32_t)ql, 0, 0);
			gv_norm_last(e, &g->r_qkva, L->in_norm);
			for (int s = 0; s < e->q_slices; s++) {
				gv_add_rows(e, &g->r_qb, &g->qb[s], pf->qa + r * (uint32_t)ql,
					    (uint32_t)ql,
					    pf->q + r * uH * qd + 4 * (uint64_t)s * g->qb[s].n,
					    uH * qd, 0, 0);
				gv_norm_last(e, &g->r_qb, L->q_a_norm);
			}
		} else {
			gv_add_rows(e, &g->r_qkva, &g->qb[0], pf->x + r * uD, uD,
				    pf->q + r * uH * qd, uH * qd, 0, 0);
			gv_norm_last(e, &g->r_qkva, L->in_norm);
		}
		gv_add_rows(e, &g->r_qkva, &g->kva, pf->x + r * uD, uD, kva + r * (uint32_t)row,
			    (uint32_t)row, 0, 0);
		gv_norm_last(e, &g->r_qkva, L->in_norm);
		for (int h = 0; h < H; h++) {
			gv_add_rows(e, &g->r_ukt, &g->ukt[h],
				    pf->q + r * uH * qd + 4 * (uint64_t)h * qd, uH * qd,
				    pf->qcat + r * uH * row + 4 * (uint64_t)h * row, uH * row, 0,
				    FP8_GEMV_ACT_F32);
			gv_add_rows(e, &g->r_uv, &g->uv[h],
				    pf->lat + r * uH * kvl + 4 * (uint64_t)h * kvl, uH * kvl,
				    pf->ao + r * uH * vd + 4 * (uint64_t)h * vd, uH * vd, 0,
				    FP8_GEMV_ACT_F32);
		}
		gv_add_o(e, &g->r_o, g, pf->ao + r * uH * vd, pf->ob + r * uD, pf->x + r * uD,
			 uH * vd, uD);
		if (g->gu.n) /* the dense FFN adds into the residual stream */
			rows_pair(e, L, &g->r_gu, &g->gu, &g->r_down, &g->down, r, pf->x, pf->x,
				  fold);
		if (g->shgu.n) /* the shared expert writes ffn */
			rows_pair(e, L, &g->r_shgu, &g->shgu, &g->r_shdown, &g->shdown, r, pf->ffn,
				  0, fold);
	}
	/* the non-absorbed prefill: kv_b over the rows' c' (kv_a's rows, normalized in the
	 * loader) into the K/V rows, per head k_nope then v */
	uint32_t hw = (uint32_t)(nope + vd), ld = uH * hw + (uint32_t)rope;
	for (int b = 0; b < nbk && g->kn && g->r_kvb.cap; b++) {
		uint64_t r = (uint64_t)b * FP8_GEMV_MAX_M * 4;
		for (int h = 0; h < H; h++) {
			uint64_t y = pf->kvx + r * ld + 4 * (uint64_t)h * hw;
			gv_add_rows(e, &g->r_kvb, &g->kn[h], kva + r * (uint32_t)row, (uint32_t)row,
				    y, ld, 0, FP8_GEMV_ACT_F32);
			gv_norm_last(e, &g->r_kvb, L->kv_a_norm);
			gv_add_rows(e, &g->r_kvb, &g->uv[h], kva + r * (uint32_t)row, (uint32_t)row,
				    y + 4 * (uint64_t)nope, ld, 0, FP8_GEMV_ACT_F32);
			gv_norm_last(e, &g->r_kvb, L->kv_a_norm);
		}
	}
	for (size_t i = 0; i < sizeof w / sizeof w[0]; i++)
		if (w[i] && w[i]->ng) {
			w[i]->per = w[i]->ng / (w[i] == &g->r_kvb ? nbk : nb);
			TRY(gv_write(e, w[i]));
		}
	g->r_on = 1;
	return 0;
}

uint64_t card_pf_kva(struct ee *e, struct ee_layer *L, int p0, int *err)
{
	const struct config *c = e->c;
	struct ee_gv_layer *g = &L->gv;
	uint64_t row = (uint64_t)c->kv_lora_rank + (uint64_t)c->qk_rope_head_dim;
	*err = 0;
	if (!g->kvp)
		return e->pf.kva;
	if (g->kvp_p0 != p0) { /* the kv_a groups (one a block, after q_a's) move to row p0 */
		int per = g->r_qkva.per;
		for (int i = per - 1; i < g->r_qkva.ng; i += per)
			g->r_qkva.g[i].y_off += 4 * row * (uint64_t)(p0 - g->kvp_p0);
		g->kvp_p0 = p0;
		if ((*err = gv_write(e, &g->r_qkva)))
			return 0;
	}
	return g->kvp + 4 * row * (uint64_t)p0;
}

/* Commands over groups [g0, g1) of t with m rows, a view each (t->views from *nv on; a command
 * ends where its x would pass the CU's on-chip x buffer). */
/* The end of the groups from a on (to g1) one command of m rows takes: as many as its x buffer
 * and group count hold. */
static int gv_rows_end(const struct gvtab *t, int a, int g1, int m)
{
	uint64_t cap = (uint64_t)FP8_GEMV_MAX_M * FP8_GEMV_MAX_K, used = 0;
	int i = a;
	for (; i < g1 && i - a < FP8_GEMV_MAX_GROUPS; i++) {
		/* (a group that reuses the one before's x adds none) */
		uint64_t x =
		    i > a && fp8_gemv_same_x(&t->g[i - 1], &t->g[i]) ? 0 : (uint64_t)m * t->g[i].k;
		if (i > a && used + x > cap)
			break;
		used += x;
	}
	return i;
}

/* One command of the groups [*g, g1) of m rows each, as many as its x buffer and group count
 * take (from *g, which it advances). */
static int gv_rows_one(struct ee *e, const char *what, struct gvtab *t, int *g, int g1, int m,
		       int *nv)
{
	if (m < 1 || m > FP8_GEMV_MAX_M || *g >= g1 || g1 > t->ng)
		return -EINVAL;
	if (!t->views) { /* at most a command per group */
		t->views = calloc((size_t)t->cap, sizeof *t->views);
		t->n_views = t->views ? t->cap : 0;
		if (!t->views)
			return -ENOMEM;
	}
	int a = *g, i = gv_rows_end(t, a, g1, m);
	if (*nv >= t->n_views)
		return -E2BIG;
	struct gvtab *tv = &t->views[(*nv)++];
	*tv = (struct gvtab){
	    t->addr + (uint64_t)a * sizeof *t->g, t->g + a, i - a, i - a, m, NULL, 0, 0};
	*g = i;
	return gv_cmd(e, what, tv);
}

static int gv_rows_cmds(struct ee *e, const char *what, struct gvtab *t, int g0, int g1, int m,
			int *nv)
{
	if (g0 >= g1)
		return -EINVAL;
	for (int i = g0; i < g1;)
		TRY(gv_rows_one(e, what, t, &i, g1, m, nv));
	return 0;
}

int card_moe_gemv_rows_one(struct ee *e, const char *what, struct gvtab *t, const int *cnt, int *g,
			   int *nv)
{
	int a = *g, b = a;
	while (b < t->ng && cnt[b] == cnt[a])
		b++;
	return gv_rows_one(e, what, t, g, b, cnt[a], nv);
}

int card_gemv_rows_range(struct ee *e, const char *what, struct gvtab *t, int T, int r0, int r1,
			 int *nv)
{
	int per = t->per > 0 ? t->per : t->ng, M = FP8_GEMV_MAX_M;
	int full = T / M, tail = T % M;
	if (T < 1 || per < 1 || (full + (tail > 0)) * per > t->ng || r0 < 0 || r0 % M || r1 <= r0 ||
	    r1 > T || (r1 % M && r1 != T))
		return -EINVAL;
	if (T <= M)
		return gv_rows_cmds(e, what, t, 0, per, T, nv);
	int b1 = r1 / M < full ? r1 / M : full; /* the full blocks [r0 / M, b1) */
	if (b1 > r0 / M)
		TRY(gv_rows_cmds(e, what, t, r0 / M * per, b1 * per, M, nv));
	return r1 == T && tail ? gv_rows_cmds(e, what, t, full * per, (full + 1) * per, tail, nv)
			       : 0;
}

int card_gemv_rows_cmd(struct ee *e, const char *what, struct gvtab *t, int T)
{
	int nv = 0;
	return card_gemv_rows_range(e, what, t, T, 0, T, &nv);
}

int card_moe_gemv_rows(struct ee *e, const struct ee_layer *L, const int *used, const int *r0,
		       const int *cnt, int n_used)
{
	TRY(card_moe_gemv_rows_build(e, L, used, r0, cnt, n_used));
	return card_moe_gemv_rows_write(e);
}

int card_moe_gemv_rows_build(struct ee *e, const struct ee_layer *L, const int *used, const int *r0,
			     const int *cnt, int n_used)
{
	const struct config *c = e->c;
	struct ee_pf *pf = &e->pf;
	const struct ee_gv_layer *g = &L->gv;
	int D = c->hidden_size, Im = c->moe_intermediate_size;
	if (n_used < 1 || n_used > pf->t_xgu.cap)
		return -EINVAL;
	pf->t_xgu.ng = pf->t_xdn.ng = 0;
	int fold = card_pf_fold_post(e);
	for (int u = 0; u < n_used; u++) {
		uint64_t r = (uint64_t)r0[u];
		if (cnt[u] < 1 || cnt[u] > FP8_GEMV_MAX_M)
			return -EINVAL;
		/* the group's rows read where they are (XIDX: row gi[r0 + i] of x, or of xn without
		 * the fold), or as GATHER copied them to xg */
		uint64_t x = !pf->gather ? (fold ? pf->x : pf->xn) : pf->xg + 4 * r * D;
		gv_add_rows(e, &pf->t_xgu, &g->exgu[used[u]], x, (uint32_t)D, pf->hg + 4 * r * Im,
			    (uint32_t)Im, 0, 0);
		if (fold) /* x holds the rows before the norm */
			gv_norm_last(e, &pf->t_xgu, L->post_norm);
		if (!pf->gather)
			gv_list_last(&pf->t_xgu, FP8_GEMV_XIDX, pf->gi + 4 * r);
		gv_add_rows(e, &pf->t_xdn, &g->exdn[used[u]], pf->hg + 4 * r * Im, (uint32_t)Im,
			    pf->yd + 4 * r * D, (uint32_t)D, 0, 0);
	}
	return 0;
}

int card_moe_gemv_rows_write(struct ee *e)
{
	TRY(gv_write(e, &e->pf.t_xgu));
	return gv_write(e, &e->pf.t_xdn);
}

double card_gemv_groups_ns(const struct ee *e, const struct gvtab *t, int a, int b, int m)
{
	uint32_t bw = 0, kclk = 0;
	card_dry_rates(e, &bw, &kclk);
	double ns = 0;
	for (int i = a, j; i < b && kclk; i = j) { /* as the commands take them */
		j = gv_rows_end(t, i, b, m);
		struct gvtab v = {
		    t->addr + (uint64_t)i * sizeof *t->g, t->g + i, j - i, j - i, m, NULL, 0, 0};
		int64_t cyc = card_gemv_cycles(e, &v, bw, kclk);
		ns += cyc > 0 ? (double)cyc * 1e6 / kclk : 0;
	}
	return ns;
}

int card_moe_gemv_rows_cmds(struct ee *e, const char *what, struct gvtab *t, const int *cnt,
			    int n_used)
{
	int nv = 0;
	for (int u = 0; u < n_used;) {
		int a = u;
		while (u < n_used && cnt[u] == cnt[a])
			u++;
		TRY(gv_rows_cmds(e, what, t, a, u, cnt[a], &nv));
	}
	return 0;
}

int card_gemv_heads(struct ee *e, const struct weights *w, char *err, size_t errlen)
{
	const struct config *c = e->c;
	int V = c->vocab_size, D = c->hidden_size, r;
	if (!e->gv || !e->gv_head || V < 1)
		return 0;
	if ((r = card_place(e, (int)e->act_bank, NULL, sizeof(float) * (size_t)V, &e->gv_logits)) ||
	    (r = gv_place(e, &e->head, V, D, FP8_GEMV_W_BF16, w ? &w->lm_head : NULL, NULL, NULL,
			  NULL)) ||
	    (r = gv_tab(e, &e->t_head, 1)))
		goto fail;
	/* the final norm in the head's loader (ee_head keeps the command when the host wants xn) */
	gv_add(e, &e->t_head, &e->head, e->x, e->gv_logits, 0, 0, 0);
	gv_norm_last(e, &e->t_head, e->final_norm);
	if ((r = gv_write(e, &e->t_head)))
		goto fail;
	/* the same with the greedy record (a greedy decode reads 8 bytes, not the logits) */
	if ((r = card_place(e, (int)e->act_bank, NULL, 64, &e->gv_top1)) ||
	    (r = gv_tab(e, &e->t_head_top1, 1)))
		goto fail;
	gv_add(e, &e->t_head_top1, &e->head, e->x, e->gv_logits, 0, 0, 0);
	gv_norm_last(e, &e->t_head_top1, e->final_norm);
	gv_list_last(&e->t_head_top1, FP8_GEMV_ARGMAX, e->gv_top1);
	if ((r = gv_write(e, &e->t_head_top1)))
		goto fail;
	e->mtp_head = e->head;
	if (w && gv_mtp_head_own(e) &&
	    (r = gv_place(e, &e->mtp_head, V, D, FP8_GEMV_W_BF16, &w->mtp->shared_head_head, NULL,
			  NULL, NULL)))
		goto fail;
	if ((r = gv_tab(e, &e->t_mtp_head, 1)))
		goto fail;
	gv_add(e, &e->t_mtp_head, &e->mtp_head, e->x, e->gv_logits, 0, 0, 0);
	gv_norm_last(e, &e->t_mtp_head, e->mtp_head_norm);
	if ((r = gv_write(e, &e->t_mtp_head)))
		goto fail;
	return 0;
fail:
	snprintf(err, errlen, "lm_head: cannot place the striped head (%s)", strerror(-r));
	return r;
}

void card_gemv_free(struct ee *e)
{
	free(e->t_head.g);
	free(e->t_mtp_head.g);
	free(e->t_head_top1.g);
	e->t_head.g = e->t_mtp_head.g = e->t_head_top1.g = NULL;
}

int card_head_gemv(struct ee *e, int mtp)
{
	if (!mtp && e->top1)
		return gv_cmd(e, "lm_head (gemv, bf16, greedy)", &e->t_head_top1);
	return gv_cmd(e, mtp ? "MTP head (gemv, bf16)" : "lm_head (gemv, bf16)",
		      mtp ? &e->t_mtp_head : &e->t_head);
}

int64_t card_gemv_cycles(const struct ee *e, const struct gvtab *t, uint32_t bw_mbps,
			 uint32_t clk_khz)
{
	struct hls_build b;
	hls_build_default(&b);
	if (clk_khz)
		b.clock_mhz = clk_khz / 1000.0;
	if (bw_mbps)
		b.bank_gbps = bw_mbps / 1000.0;
	b.axi_bits = (int)e->gv_axi_bits;
	b.gemv_rows = (int)e->gv_rows;
	b.gemv_f32 = (int)e->gv_f32;
	/* every GEMV command names its group 0's x (ABI_GEMV_F_X0) */
	return t ? fp8_gemv_cycles2(&b, (int)e->gv_lanes, t->g, t->ng, t->m > 0 ? t->m : 1, 1,
				    t->g[0].x_off, NULL)
		 : 0;
}

void card_route_compare(struct ee *e, const float *bias, float *lg, const int32_t *cidx,
			const float *cw)
{
	int idx[EE_MAX_TOPK], diff = 0;
	float w[EE_MAX_TOPK];
	router_route_token(e->c, bias, lg, idx, w);
	for (int j = 0; j < e->c->num_experts_per_tok; j++) {
		uint32_t a, b; /* the weights compared bit for bit */
		memcpy(&a, &w[j], 4);
		memcpy(&b, &cw[j], 4);
		diff |= idx[j] != cidx[j] || a != b;
	}
	e->route_checked++;
	e->route_diff += (uint64_t)diff;
}

int card_route_check(struct ee *e, int from, int to)
{
	const struct config *c = e->c;
	int E = c->n_routed_experts, k = c->num_experts_per_tok;
	float lg[MOE_ROUTE_MAX_E], cw[MOE_ROUTE_MAX_K];
	int32_t cidx[MOE_ROUTE_MAX_K];
	if (!e->route_check || e->dry || E > MOE_ROUTE_MAX_E || k > MOE_ROUTE_MAX_K)
		return 0;
	for (int l = from; l < to; l++) {
		const struct ee_layer *L = &e->L[l];
		if (!L->moe)
			continue;
		TRY(card_read(e, L->gv.rlog, lg, sizeof(float) * (size_t)E));
		TRY(card_read(e, L->gv.rout, cidx, sizeof(int32_t) * (size_t)k));
		TRY(card_read(e, L->gv.rout + 4 * (uint64_t)k, cw, sizeof(float) * (size_t)k));
		card_route_compare(e, L->lw->e_score_correction_bias, lg, cidx, cw);
	}
	return 0;
}

int card_kv_append_lanes(struct ee *e, const struct ee_layer *L, int s, int p, int n, int fold)
{
	const struct config *c = e->c;
	int kvl = c->kv_lora_rank, rope = c->qk_rope_head_dim;
	uint64_t rec = abi_kv_record_bytes(e->kv_fmt, (uint64_t)kvl, (uint64_t)rope);
	uint64_t b = (uint64_t)p / MLA_TB, lane = b % e->gv_lanes;
	uint64_t local = b / e->gv_lanes * MLA_TB + (uint64_t)p % MLA_TB;
	struct abi_cmd *k =
	    card_cmd(e, ABI_OP_KV_APPEND,
		     fold ? "kv_a norm + rope k_pe + kv_append (striped)" : "kv_append (striped)");
	if (!k)
		return -E2BIG;
	k->u.kv.src = fold ? e->kva : e->kvrow;
	if (fold && rope > 0) { /* kv_a's raw row: its norm and RoPE in the append's input stage */
		float eps = (float)c->rms_norm_eps;
		memcpy(&k->u.kv.eps, &eps, 4);
		k->u.kv.norm = L->kv_a_norm;
		k->u.kv.rope_tab = e->tab;
		k->u.kv.fold = (uint32_t)rope;
		k->u.kv.rope_pos = (uint32_t)p;
	}
	k->u.kv.cache = ABI_ADDR(lane, ee_kv_base(e, L, s) + local * rec);
	k->u.kv.row = (uint32_t)(kvl + rope);
	k->u.kv.pos = 0;
	k->u.kv.ctx_cap = (uint32_t)n; /* (rows of one block: one after another in its lane) */
	k->u.kv.rows = n > 1 ? (uint32_t)n : 0;
	k->u.kv.word = e->kv_fmt == ABI_KV_F32 ? 0 : ABI_KV_WORD(e->kv_fmt, rope);
	return 0;
}

static int attn_lanes_heads(struct ee *e, const struct ee_layer *L, int s, int p, int h0, int nh,
			    const char *what);

int card_attn_lanes(struct ee *e, const struct ee_layer *L, int s, int p)
{
	return attn_lanes_heads(e, L, s, p, 0, e->c->num_attention_heads,
				"mla_attn (striped, all heads)");
}

/* The striped attention of heads [h0, h0 + nh) (their q rows and outputs; every head's sums are
 * its own, so a group's outputs are the bits the all-heads command gives them). */
static int attn_lanes_heads(struct ee *e, const struct ee_layer *L, int s, int p, int h0, int nh,
			    const char *what)
{
	const struct config *c = e->c;
	struct abi_cmd *m = card_cmd(e, ABI_OP_MLA_ATTN_LANES, what);
	if (!m)
		return -E2BIG;
	uint64_t row = (uint64_t)c->kv_lora_rank + (uint64_t)c->qk_rope_head_dim;
	m->u.mlal.q = e->qcat + 4 * (uint64_t)h0 * row;
	m->u.mlal.out = e->lat + 4 * (uint64_t)h0 * (uint64_t)c->kv_lora_rank;
	m->u.mlal.cache_off = ee_kv_base(e, L, s);
	m->u.mlal.n_heads = (uint32_t)nh;
	m->u.mlal.kv_lora = (uint32_t)c->kv_lora_rank;
	m->u.mlal.rope = (uint32_t)c->qk_rope_head_dim;
	m->u.mlal.n_ctx = (uint32_t)p + 1;
	m->u.mlal.ctx_cap = (uint32_t)e->max_seq;
	m->u.mlal.word = e->kv_fmt | (e->attn_fp8 ? ABI_MLAL_FP8 : 0);
	memcpy(&m->u.mlal.scale, &e->softmax_scale, 4);
	return 0;
}

/* Modeled ns of the striped attention of nh heads at position p (card clock and bandwidth). */
static double attn_heads_ns(const struct ee *e, int p, int nh)
{
	uint32_t bw = 0, kclk = 0;
	struct hls_build b;
	card_dry_rates(e, &bw, &kclk);
	card_attn_build(e, bw, kclk, &b);
	int mf = card_mla_fmt(e->kv_fmt) | (e->attn_fp8 ? MLA_ATTN_FP8 : 0);
	int64_t cyc = mla_attn_lanes_cycles2(&b, (int)e->gv_lanes, p, nh, e->c->kv_lora_rank,
					     e->c->qk_rope_head_dim, mf, (int)e->attn_macs,
					     (int)e->attn_imacs, NULL);
	return cyc > 0 && kclk ? (double)cyc * 1e6 / kclk : 0;
}

/* The modeled time of the attention in d head groups of a ns each (all heads' in one: d = 1)
 * beside gv ns of W_UV and o_proj a group: group j's attention beside group j - 1's GEMVs, the
 * last group's after (d = 1: one after the other); at least the firmware's take of the 3 d
 * commands (its CPU runs ahead of the CUs, so a short step is bound by it instead). */
static double split_est(double a, double gv, int d, double take)
{
	double cu = d == 1 ? a + gv : a + (d - 1) * (a > gv ? a : gv) + gv;
	return cu > 3 * d * take ? cu : 3 * d * take;
}

/* The firmware's take of one of the section's commands, ns (their mean). */
static double split_take(const struct ee *e)
{
	const struct board_desc *bd = backend_board(e->be);
	return (double)(board_fw_take_ns(bd, ABI_OP_MLA_ATTN_LANES) +
			2 * board_fw_take_ns(bd, ABI_OP_GEMV)) /
	       3;
}

int card_attn_split(struct ee *e, const struct ee_layer *L, int p)
{
	const struct ee_gv_layer *g = &L->gv;
	int og = e->o_groups, H = e->c->num_attention_heads;
	const char *v = getenv("MOECARD_ATTN_SPLIT");
	if (og <= 1)
		return 1;
	if (v && *v) {
		int d = atoi(v);
		return d >= 1 && d <= og && og % d == 0 ? d : 1;
	}
	if (e->split_p == p + 1)
		return e->split_g;
	double take = split_take(e), best = 0;
	/* the front (q_b, W_UK^T) of all heads: before the groups, unless q_b's slices put it in
	 * them (group j + 1's beside group j's attention, 7 commands a group then) */
	double f_all = card_gemv_groups_ns(e, &g->t_ukt, 0, H, 1) +
		       card_gemv_groups_ns(e, &g->t_qb, 0, g->t_qb.ng, 1);
	int bd_g = 1;
	for (int d = 1; d <= og; d++) {
		if (og % d)
			continue;
		double a = attn_heads_ns(e, p, H / d), est;
		double gv = card_gemv_groups_ns(e, &g->t_uv, 0, H / d, 1) +
			    card_gemv_groups_ns(e, &g->t_o, 0, og / d, 1);
		if (d == 1 || e->q_slices != og)
			est = f_all + split_est(a, gv, d, take);
		else
			est = split_est(a,
					gv + card_gemv_groups_ns(e, &g->t_ukt, 0, H / d, 1) +
					    card_gemv_groups_ns(e, &g->t_qb, 0, og / d, 1),
					d, 7 * take / 3);
		if (d == 1 || est < best) {
			best = est;
			bd_g = d;
		}
	}
	e->split_p = p + 1;
	e->split_g = bd_g;
	return bd_g;
}

int card_attn_groups(struct ee *e, const struct ee_layer *L, int s, int p, int d, int front)
{
	const struct config *c = e->c;
	const struct ee_gv_layer *g = &L->gv;
	int hg = c->num_attention_heads / d, v0 = EE_OG_VIEW(d), nope = c->qk_nope_head_dim;
	uint64_t kvl = (uint64_t)c->kv_lora_rank, rope = (uint64_t)c->qk_rope_head_dim;
	uint64_t qd = (uint64_t)nope + rope, row = kvl + rope;
	uint32_t att[EE_MAX_OG];
	/* group j (with the front: its q_b and W_UK^T on the GEMV CU, in order, then RoPE of its
	 * q_pe once W_UK^T is done, for group 0 after the append, which waits for it too), its
	 * attention (after the RoPE); then group j - 1's W_UV and o_proj slices after that group's
	 * attention. The firmware starts in list order, so the GEMV CU takes group j + 1's front
	 * and group j - 1's back while group j's attention runs. */
	for (int j = 0; j <= d; j++) {
		if (j < d) {
			uint64_t h0 = (uint64_t)j * (uint64_t)hg;
			uint32_t rp = 0;
			if (front) {
				TRY(gv_cmd(e, "q_b, a head group (gemv)", &g->v_qb[v0 + j]));
				TRY(gv_cmd(e, "W_UK^T q_nope, a head group (gemv)",
					   &g->v_ukt[v0 + j]));
				uint32_t dep = card_fence_signal(e, e->list.n - 1, EE_DEC_FENCE_UK);
				uint32_t id = EE_DEC_FENCE_UK;
				if (j == 0) {
					TRY(card_kv_append_lanes(e, L, s, p, 1, e->kv_fold));
					card_fence_wait_at(e, e->list.n - 1, id, dep);
					id = EE_DEC_FENCE_AP;
					dep = card_fence_signal(e, e->list.n - 1, id);
				}
				TRY(card_vecop(e, ABI_OP_ROPE, "rope q_pe, a head group",
					       e->q + 4 * (h0 * qd + (uint64_t)nope), 0, 0,
					       e->qcat + 4 * (h0 * row + kvl), (uint32_t)hg,
					       (uint32_t)rope, (uint32_t)qd, (uint32_t)row,
					       (uint32_t)p, (float)c->rope_theta, e->tab));
				card_fence_wait_at(e, e->list.n - 1, id, dep);
				rp = card_fence_signal(e, e->list.n - 1, EE_DEC_FENCE_RP);
			}
			TRY(attn_lanes_heads(e, L, s, p, (int)h0, hg,
					     "mla_attn (striped, a head group)"));
			if (front)
				card_fence_wait_at(e, e->list.n - 1, EE_DEC_FENCE_RP, rp);
			att[j] = card_fence_signal(e, e->list.n - 1, EE_PF_FENCE_ATT);
		}
		if (j == 0)
			continue;
		TRY(gv_cmd(e, "W_UV o_lat, a head group (gemv)", &g->v_uv[v0 + j - 1]));
		card_fence_wait_at(e, e->list.n - 1, EE_PF_FENCE_ATT, att[j - 1]);
		TRY(gv_cmd(
		    e, j == d ? "o_proj, last slice + residual (gemv)" : "o_proj, a slice (gemv)",
		    &g->v_o[v0 + j - 1]));
	}
	return 0;
}

int64_t card_attn_lanes_cycles(const struct ee *e, const struct abi_cmd *c, uint32_t bw_mbps,
			       uint32_t clk_khz)
{
	struct hls_build b;
	card_attn_build(e, bw_mbps, clk_khz, &b);
	const struct abi_mla_lanes *m = &c->u.mlal;
	int mf = card_mla_fmt(m->word & 0xFFu);
	if (m->word & ABI_MLAL_FP8)
		mf |= MLA_ATTN_FP8;
	if (m->word & ABI_MLAL_MHA) { /* the prefill's non-absorbed attention */
		uint32_t one[2] = {0, m->n_ctx};
		return mla_attn_mha_cycles(
		    &b, (int)e->gv_lanes, m->rows > 1 ? card_pf_atab_host(e, m->tab) : one,
		    m->rows > 1 ? (int)m->rows : 1, (int)m->n_heads, (int)m->rsvd, (int)m->rope,
		    (int)m->kv_lora, (int)e->attn_macs, NULL);
	}
	if (m->rows > 1) /* the rows' contexts: the host copy of the table the forward wrote */
		return mla_attn_lanes_rows_cycles(&b, (int)e->gv_lanes,
						  card_pf_atab_host(e, m->tab), (int)m->rows,
						  (int)m->n_heads, (int)m->kv_lora, (int)m->rope,
						  mf, (int)e->attn_macs, (int)e->attn_imacs, NULL);
	return mla_attn_lanes_cycles2(&b, (int)e->gv_lanes, (int)m->n_ctx - 1, (int)m->n_heads,
				      (int)m->kv_lora, (int)m->rope, mf, (int)e->attn_macs,
				      (int)e->attn_imacs, NULL);
}
