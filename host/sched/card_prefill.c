/*
 * card_prefill.c - the batched prefill of the card scheduler: a prompt of T tokens (in chunks of
 * at most pf.chunk) goes through each layer once, with the matrices as GEMMs of M = T on the
 * fp8_gemm CUs (PE array), instead of T decode lists.
 *
 * Per chunk (rows t = 0..T-1 at positions p0 + t, activations row-major in the activation bank):
 *   MLA   RMSNorm of the T rows; q_a, kv_a (or q_proj) as GEMMs of M = T; q_a / kv_a norms; RoPE
 *         of k_pe with position p0 + row; q_b; T KV appends; RoPE of q_pe (H rows per position);
 *         per head W_UK^T q_nope as one GEMM of M = T with strided rows (ACT_F32); the absorbed
 *         attention per query, each with its causal length p0 + t + 1; per head W_UV; o_proj
 *         with the residual; the post-attention norm.
 *   dense gate|up (SiLU) and down + residual as GEMMs of M = T.
 *   MoE   the router for every row (the card's gate GEMV and MOE_ROUTE per row when the router
 *         is on the card, else the host's gate and router on the rows read back: one round trip
 *         per MoE layer either way); the host groups the rows by expert; GATHER copies each
 *         expert's rows together; per routed expert one gate|up GEMM and one down GEMM over
 *         exactly its rows (M = n_e); the shared expert over all rows writes ffn; COMBINE adds
 *         w_tj * e_j(x_t) into ffn_t in router order j; then the residual add.
 *   head  the final norm of the rows; the logits of the rows asked for (BF16 head on the GEMV CU
 *         in groups of 16 rows, or on the host row by row).
 * Numerics: every GEMM row is computed by the kernels exactly as the M = 1 command of the token
 * loop computes it (fp8_gemm's results per row do not depend on M or on the strides, the GEMV's
 * rows do not depend on m, the fp8_gemv groups equal fp8_gemm), every vector op is per row, the
 * attention command per query is the decode command, and COMBINE applies the accumulating
 * epilogue's f32 operations in the same order; so the logits are bit-identical to the token loop
 * (host/tests/test_emu_prefill.c compares them).
 * Attention form: the absorbed form per query above; a prompt's chunks (the first one, and the
 * ones after it in the same ee_forward) take the non-absorbed form where it models faster
 * (pf_mla_mha, pf_mha_rule): kv_b over the prompt's c' rows so far, then every head over explicit
 * K/V rows; its logits are within the FP8 contract of the token loop, not its bits.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "e4m3.h"
#include "hls/mla_attn/mla_attn.h"
#include "hls/fp8_gemm/fp8_gemm.h"
#include "hls/moe_route/moe_route.h"
#include "model/kernels.h"
#include "model/router.h"
#include "sched/card_engine.h"
#include "sched/card_engine_impl.h"

#define PF_CHUNK_DEFAULT 512
#define PF_CHUNK_MAX 4096

static uint64_t f4(uint64_t base, uint64_t elems)
{
	return base + 4 * elems;
}

static int pf_env_off(const char *name)
{
	const char *v = getenv(name);
	return v && !strcmp(v, "0");
}

/* The ops the lowering issues; the attention and router ones as the decode lowering chose. */
static int pf_supported(const struct ee *e)
{
	static const enum abi_op ops[] = {ABI_OP_GEMM_FP8,     ABI_OP_RMSNORM,	 ABI_OP_ROPE,
					  ABI_OP_RESIDUAL_ADD, ABI_OP_KV_APPEND, ABI_OP_GATHER,
					  ABI_OP_COMBINE};
	for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
		if (!backend_supports_op(e->be, ops[i]))
			return 0;
	if (!backend_supports_op(e->be, e->gv_attn ? ABI_OP_MLA_ATTN_LANES : ABI_OP_MLA_ATTN))
		return 0;
	return e->c->hidden_size <= (int)ABI_COMBINE_MAX_COLS &&
	       e->c->num_experts_per_tok <= (int)ABI_COMBINE_MAX_K;
}

/*
 * The prefill rule: the batched path where it models faster. The dry what-if of a chunk-long
 * prompt from position 0 (the lists the batched path issues, timed on this board, against the
 * token loop's decode steps) decides once at open; where the token loop is faster (a board with
 * few GEMM MACs against its GEMV bandwidth: the V80 tree's one GEMM CU) prompts of more rows
 * than the GEMV CU takes at once run token by token (pf_loop); the rows path (at most
 * FP8_GEMV_MAX_M rows: short prompts, the sequences of a batched step) stays.
 * MOECARD_CARD_PREFILL=1 keeps the batched path, =0 never takes it.
 */
int card_pf_rule(struct ee *e)
{
	const char *v = getenv("MOECARD_CARD_PREFILL");
	struct card_pf_whatif w;
	e->pf_loop = 0;
	e->pf_rule_T = 0;
	if (!e->pf_on || e->dry || (v && !strcmp(v, "1")))
		return 0;
	int r = card_engine_whatif_prefill(e->c, e->be, e->pf.chunk, &w);
	if (r == -ENOTSUP)
		return 0;
	if (r)
		return r;
	e->pf_rule_w = w;
	e->pf_rule_T = e->pf.chunk;
	e->pf_loop = w.loop_tok_s > w.tok_s;
	e->pf.rows_big = w.rows_big;
	return 0;
}

int card_pf_init(struct ee *e, int cache)
{
	const struct config *c = e->c;
	struct ee_pf *pf = &e->pf;
	e->pf_on = 0;
	if (cache || pf_env_off("MOECARD_CARD_PREFILL") || !pf_supported(e))
		return 0;
	int chunk = pf->chunk > 0 ? pf->chunk : PF_CHUNK_DEFAULT;
	const char *ch = getenv("MOECARD_PREFILL_CHUNK");
	if (ch && atoi(ch) >= 2 && atoi(ch) <= PF_CHUNK_MAX)
		chunk = atoi(ch);
	if (!e->dry && chunk > e->max_seq)
		chunk = e->max_seq;
	if (chunk < 2)
		return 0;
	int D = c->hidden_size, H = c->num_attention_heads, k = c->num_experts_per_tok;
	int E = c->n_routed_experts > 0 ? c->n_routed_experts : 1;
	int rope = c->qk_rope_head_dim, kvl = c->kv_lora_rank, row = kvl + rope;
	int qd = c->qk_nope_head_dim + rope, ql = c->q_lora_rank > 0 ? c->q_lora_rank : 1;
	int Im = c->moe_intermediate_size, sh = c->n_shared_experts * Im;
	int inter = c->intermediate_size > sh ? c->intermediate_size : sh;
	int ab = (int)e->act_bank, r;
	size_t C = (size_t)chunk, C16 = (C + 15) / 16 * 16, f = sizeof(float);
	size_t kk = (size_t)(k > 0 ? k : 1);
	/* the rows path: a group per block of at most 16 of a used expert's rows (its full blocks
	 * and a tail): at most C k / 16 full blocks and a tail per expert */
	size_t xr = C * kk, xe = (xr + FP8_GEMV_MAX_M - 1) / FP8_GEMV_MAX_M + (size_t)E;
	pf->chunk = chunk;
	pf->rows16 = (int)C16;
	pf->rows_gemm = pf_env_off("MOECARD_CARD_ROWS"); /* MOECARD_CARD_ROWS=0: GEMMs for all */
	pf->rope_runs = pf_env_off("MOECARD_ROPE_TABLE");
	pf->fold_off = pf_env_off("MOECARD_PF_FOLD");
	pf->gather = pf_env_off("MOECARD_PF_XIDX");
	/* (card_pf_rule chooses; MOECARD_PF_ROWS=1 also where the rule does not run) */
	const char *rb = getenv("MOECARD_PF_ROWS");
	pf->rows_big = e->gv && rb && !strcmp(rb, "1");
	if ((r = card_place(e, ab, NULL, f * C * D, &pf->x)) ||
	    (r = card_place(e, ab, NULL, f * C16 * D, &pf->xn)) ||
	    (r = card_place(e, ab, NULL, f * C * ql, &pf->qa)) ||
	    (r = card_place(e, ab, NULL, f * C * H * qd, &pf->q)) ||
	    (r = card_place(e, ab, NULL, f * C * row, &pf->kva)) ||
	    (r = card_place(e, ab, NULL, f * C * row, &pf->kvrow)) ||
	    (r = card_place(e, ab, NULL, f * C * H * row, &pf->qcat)) ||
	    (r = card_place(e, ab, NULL, f * C * H * kvl, &pf->lat)) ||
	    (r = card_place(e, ab, NULL, f * C * H * c->v_head_dim, &pf->ao)) ||
	    (r = card_place(e, ab, NULL, f * C * D, &pf->ffn)) ||
	    (r = card_place(e, ab, NULL, f * C16 * D, &pf->ob)) ||
	    (r = card_place(e, ab, NULL, f * C * (inter > 0 ? inter : 1), &pf->hb)) ||
	    (r = card_place(e, ab, NULL, f * xr * D, &pf->xg)) ||
	    (r = card_place(e, ab, NULL, f * xr * (Im > 0 ? Im : 1), &pf->hg)) ||
	    (r = card_place(e, ab, NULL, f * xr * D, &pf->yd)) ||
	    (r = card_place(e, ab, NULL, 4 * xr, &pf->gi)) ||
	    (r = card_place(e, ab, NULL, 4 * C * kk, &pf->ci)) ||
	    (r = card_place(e, ab, NULL, 4 * C * kk, &pf->cw)) ||
	    (r = card_place(e, ab, NULL, f * C16 * E, &pf->rlog)) ||
	    (r = card_place(e, ab, NULL, 8 * C * kk, &pf->rout)) ||
	    (r = card_place(e, ab, NULL, 4 * C, &pf->posw)) ||
	    (r = card_place(e, ab, NULL, 8 * C, &pf->atab)))
		return r;
	/* the non-absorbed form's K/V rows and each layer's kv_a rows of a whole prompt (max_seq
	 * rows), so its later chunks take the form too; where the bank has no room for them, K/V
	 * rows for a chunk (its first chunk only); else the absorbed form */
	pf->mha_ok = 0;
	pf->kvp = 0;
	pf->kvx_cap = pf->kvx_n = 0;
	if (e->gv && e->gv_attn && card_pf_mha_shape(c)) {
		size_t ld = (size_t)H * (c->qk_nope_head_dim + c->v_head_dim) + (size_t)rope;
		size_t cap = (size_t)e->max_seq, nl = (size_t)c->num_hidden_layers;
		if (!e->dry && cap > C && !card_place(e, ab, NULL, f * cap * ld, &pf->kvx) &&
		    !card_place(e, ab, NULL, f * nl * cap * (size_t)row, &pf->kvp))
			pf->kvx_cap = (int)cap;
		else if (!pf->kvx)
			pf->kvx_cap = card_place(e, ab, NULL, f * C * ld, &pf->kvx) ? 0 : (int)C;
		else
			pf->kvx_cap = (int)C; /* (the whole prompt's K/V rows, without kv_a's) */
		pf->mha_ok = pf->kvx_cap > 0;
	}
	const char *mv = getenv("MOECARD_PF_MHA");
	pf->mha_force = mv && !strcmp(mv, "1");
	const char *ap = getenv("MOECARD_PF_ATT_PARTS");
	pf->att_parts = ap && atoi(ap) > 0 ? atoi(ap) : 12;
	pf->ffn_late = pf_env_off("MOECARD_PF_FFN_EARLY");
	/* a fence signalled by one op's commands takes its values in order where one CU runs them */
	const struct abi_board *bb = backend_abi_board(e->be);
	pf->one_att = card_only_cu(bb, ABI_OP_MLA_ATTN_LANES) >= 0;
	pf->one_gv = card_only_cu(bb, ABI_OP_GEMV) >= 0;
	pf->one_gath = card_only_cu(bb, ABI_OP_GATHER) >= 0 &&
		       card_only_cu(bb, ABI_OP_GATHER) == card_only_cu(bb, ABI_OP_RMSNORM);
	pf->one_vec =
	    card_only_cu(bb, ABI_OP_COMBINE) >= 0 && card_only_cu(bb, ABI_OP_RESIDUAL_ADD) >= 0;
	pf->one_rope = card_only_cu(bb, ABI_OP_ROPE) >= 0;
	pf->merge_off = pf_env_off("MOECARD_PF_MERGE");
	pf->sh_gemv = pf_env_off("MOECARD_PF_SH_GEMM");
	pf->sched_off = pf_env_off("MOECARD_PF_MOE_SCHED");
	pf->sub_off = pf_env_off("MOECARD_PF_LAST_ROWS");
	pf->kv_one = pf_env_off("MOECARD_PF_KV_ROWS");
	const char *sg = getenv("MOECARD_PF_SH_GEMM");
	pf->sh_force = sg && !strcmp(sg, "1");
	if (e->gv && e->gv_head &&
	    ((r = card_place(e, ab, NULL, f * 16 * (size_t)c->vocab_size, &pf->logits)) ||
	     (r = card_place(e, ab, NULL, 8 * 16, &pf->top1))))
		return r;
	if (e->gv && ((r = card_gemv_tab(e, &pf->t_gate, (int)(C16 / 16))) ||
		      (r = card_gemv_tab(e, &pf->t_head, 1)) ||
		      (r = card_gemv_tab(e, &pf->t_xgu, (int)xe)) ||
		      (r = card_gemv_tab(e, &pf->t_xdn, (int)xe))))
		return r;
	pf->xe = malloc(sizeof(int) * xe);
	pf->xr0 = malloc(sizeof(int) * xe);
	pf->xm = malloc(sizeof(int) * xe);
	pf->hidx = malloc(4 * C * kk);
	pf->hgi = malloc(4 * (xr + 3 * xe)); /* and pf_moe_rows's groups after it */
	pf->hseq = calloc(C, sizeof *pf->hseq);
	pf->sub = calloc(C, sizeof *pf->sub);
	pf->hpos = calloc(C, sizeof *pf->hpos);
	pf->atab_h = calloc(2 * C, sizeof *pf->atab_h);
	pf->hci = malloc(4 * C * kk);
	pf->hw = malloc(4 * C * kk);
	pf->hrow = malloc(f * (C16 * D > 2 * C * kk ? C16 * D : 2 * C * kk));
	pf->hlog = malloc(f * (size_t)E);
	pf->views = calloc(C16 / 16, sizeof *pf->views);
	if (!pf->views || !pf->hidx || !pf->hgi || !pf->hci || !pf->hw || !pf->hrow || !pf->hlog ||
	    !pf->hseq || !pf->sub || !pf->hpos || !pf->atab_h || !pf->xe || !pf->xr0 || !pf->xm)
		return -ENOMEM;
	struct hls_build b;
	hls_build_default(&b);
	uint32_t kclk = backend_abi_board(e->be)->cu_clk_khz;
	const struct board_desc *bd = backend_board(e->be);
	double macs = 0; /* the GEMM CUs' PE arrays (moecard,pe, else the build's), per cycle */
	pf->ncu = 0;
	for (uint32_t i = 0; i < bd->n_cus; i++)
		if (!strcmp(bd->cu[i].kernel, "fp8_gemm")) {
			pf->ncu++;
			macs += bd->cu[i].tm && bd->cu[i].tn ? (double)bd->cu[i].tm * bd->cu[i].tn
							     : (double)b.tm * b.tn;
		}
	pf->peak = (pf->ncu ? macs / pf->ncu : (double)b.tm * b.tn) *
		   (kclk ? kclk / 1e6 : b.clock_mhz / 1e3);
	pf->gemm_cus = pf->ncu;
	pf->ncu = pf->ncu > 0 ? pf->ncu : 1;
	pf->gemm_abi_cu = -1;
	for (uint32_t j = 0; j < ABI_BOARD_N_CUS(bb->counts) && pf->gemm_abi_cu < 0; j++)
		if (bb->cus[j].ops_mask >> ABI_OP_GEMM_FP8 & 1)
			pf->gemm_abi_cu = (int)j;
	const char *hy = getenv("MOECARD_PF_HYBRID");
	pf->hyb_off = pf_env_off("MOECARD_PF_HYBRID");
	pf->hyb_half = hy && !strcmp(hy, "half");
	e->pf_on = 1;
	return 0;
}

void card_pf_free(struct ee *e)
{
	struct ee_pf *pf = &e->pf;
	free(pf->t_gate.g);
	free(pf->t_head.g);
	free(pf->xe);
	free(pf->xr0);
	free(pf->xm);
	free(pf->t_xgu.g);
	free(pf->t_xdn.g);
	free(pf->t_xgu.views);
	free(pf->t_xdn.views);
	free(pf->hseq);
	free(pf->sub);
	free(pf->hpos);
	free(pf->atab_h);
	free(pf->hidx);
	free(pf->hgi);
	free(pf->hci);
	free(pf->hw);
	free(pf->hrow);
	free(pf->hlog);
	free(pf->views);
	memset(pf, 0, sizeof *pf);
}

/* A GEMM of M = T rows spread over the board's GEMM CUs (every output element is computed as
 * by one command, so the results do not change): a plain matrix is split by output columns in
 * multiples of 128 (its scale blocks), each CU reading its share of W; a SiLU pair (W then W2 in
 * one range) by rows in multiples of the m-block when there are enough rows, each CU streaming W
 * once. */
static int pf_gemm(struct ee *e, const char *what, uint64_t a, const struct cmat *W, uint64_t y,
		   uint32_t flags, int T)
{
	int ncu = e->pf.ncu, N = W->rows, K = W->cols, KB = (K + 127) / 128;
	if (!(flags & ABI_GEMM_F_SILU_MUL)) {
		int per = (N + ncu - 1) / ncu;
		per = (per + 127) / 128 * 128;
		for (int n0 = 0; n0 < N; n0 += per)
			TRY(card_gemm_m(e, what, a, 0, W, f4(y, (uint64_t)n0), (uint32_t)N, flags,
					0, (uint64_t)n0 * K, 4 * (uint64_t)(n0 / 128) * KB,
					N - n0 < per ? N - n0 : per, K, T));
		return 0;
	}
	int parts = T / FP8_GEMM_MB < ncu ? T / FP8_GEMM_MB : ncu;
	int per = parts > 1 ? (T + parts - 1) / parts : T;
	per = (per + FP8_GEMM_TM - 1) / FP8_GEMM_TM * FP8_GEMM_TM;
	for (int m0 = 0; m0 < T; m0 += per)
		TRY(card_gemm_m(e, what, f4(a, (uint64_t)m0 * K), 0, W, f4(y, (uint64_t)m0 * N), 0,
				flags, 0, 0, 0, 0, 0, T - m0 < per ? T - m0 : per));
	return 0;
}

/* A vector op over rows with its param_k (ROPE rows per position, COMBINE terms per row). */
static int pf_vec(struct ee *e, enum abi_op op, const char *what, uint64_t x, uint64_t x2,
		  uint64_t w, uint64_t out, uint32_t rows, uint32_t cols, uint32_t lda,
		  uint32_t ldo, uint32_t pu, float pf, uint64_t tab, uint32_t pk)
{
	TRY(card_vecop(e, op, what, x, x2, w, out, rows, cols, lda, ldo, pu, pf, tab));
	e->list.cmd[e->list.n - 1].u.vec.param_k = pk;
	return 0;
}

/* The rows path: the rows run their matrices on the GEMV CU, at most FP8_GEMV_MAX_M rows a
 * weight read (more rows with pf.rows_big: blocks of 16). */
static int pf_rows(const struct ee *e, int T)
{
	return e->gv && (T <= FP8_GEMV_MAX_M || e->pf.rows_big) && !e->pf.rows_gemm;
}

/* The KV append of n rows from src (slot s, positions p..p + n - 1; n > 1 only in one
 * 32-token block of the striped cache, pf_kv_run). */
static int pf_kv_append(struct ee *e, const struct ee_layer *L, uint64_t src, int s, int p, int n)
{
	const struct config *c = e->c;
	if (e->gv_attn) { /* the records' address in their lane, as the token loop's (folded: src
			     is kv_a's raw rows, normalized and roped in the append's input stage) */
		TRY(card_kv_append_lanes(e, L, s, p, n, e->kv_fold));
		e->list.cmd[e->list.n - 1].u.kv.src = src;
		e->list.what[e->list.n - 1] =
		    e->kv_fold ? (n > 1 ? "kv_a norm + rope k_pe + kv_append (striped, rows)"
					: "kv_a norm + rope k_pe + kv_append (striped, row)")
			       : (n > 1 ? "kv_append (striped, rows)" : "kv_append (striped, row)");
		return 0;
	}
	struct abi_cmd *k = card_cmd(e, ABI_OP_KV_APPEND, "kv_append (row)");
	if (!k)
		return -E2BIG;
	k->u.kv.src = src;
	k->u.kv.row = (uint32_t)(c->kv_lora_rank + c->qk_rope_head_dim);
	k->u.kv.cache = ee_kv_base(e, L, s);
	k->u.kv.pos = (uint32_t)p;
	k->u.kv.ctx_cap = (uint32_t)e->max_seq;
	return 0;
}

static int pf_kv_appends_rows(struct ee *e, const struct ee_layer *L, int t0, int T, uint64_t kva);

/* The KV appends of the forward's rows (pf.kvrow; folded: kv_a's rows at kva), each into its
 * sequence's cache; _rows: of rows [t0, T). */
static int pf_kv_appends(struct ee *e, const struct ee_layer *L, int T, uint64_t kva)
{
	return pf_kv_appends_rows(e, L, 0, T, kva);
}

/* Whether a KV append command takes a block's rows (the striped cache with the append's input
 * stage, block appends not turned off): the one rule pf_kv_run's commands and pf_kv_cmds's bound
 * both follow. */
static int pf_kv_blocks(const struct ee *e)
{
	return e->gv_attn && e->kv_fold && !e->pf.kv_one;
}

/* The rows from t (below T) that one KV append command takes: on the striped cache with the
 * append's input stage (the token loop's fold; a card whose append has none takes a row a
 * command), the rows of t's sequence at the positions after t's, up to the end of t's 32-token
 * block (a lane's records back to back); else 1. A prompt's 512 rows go in 16 commands, not
 * 512 (each a firmware take). */
static int pf_kv_run(const struct ee *e, int t, int T)
{
	const struct ee_pf *pf = &e->pf;
	int n = 1;
	if (!pf_kv_blocks(e))
		return 1;
	int p = pf->hpos[t], end = (p / MLA_TB + 1) * MLA_TB;
	while (t + n < T && n < ABI_KV_MAX_ROWS && pf->hseq[t + n] == pf->hseq[t] &&
	       pf->hpos[t + n] == p + n && p + n < end)
		n++;
	return n;
}

/* At most this many KV append commands for T rows whose appends go out in pieces ending at
 * `cuts` points besides the blocks' ends (the bound pf_mh_fits counts). */
static int pf_kv_cmds(const struct ee *e, int T, int cuts)
{
	if (!pf_kv_blocks(e))
		return T;
	int n = (T + MLA_TB - 1) / MLA_TB + 1 + cuts;
	return n < T ? n : T;
}

static int pf_kv_appends_rows(struct ee *e, const struct ee_layer *L, int t0, int T, uint64_t kva)
{
	struct ee_pf *pf = &e->pf;
	uint64_t row = (uint64_t)e->c->kv_lora_rank + (uint64_t)e->c->qk_rope_head_dim;
	uint64_t src = e->gv_attn && e->kv_fold ? kva : pf->kvrow;
	for (int t = t0, n; t < T; t += n) {
		n = pf_kv_run(e, t, T);
		TRY(pf_kv_append(e, L, f4(src, (uint64_t)t * row), pf->hseq[t], pf->hpos[t], n));
	}
	return 0;
}

static int pf_attn(struct ee *e, const struct ee_layer *L, uint64_t q, uint64_t out, int s, int p)
{
	const struct config *c = e->c;
	if (e->gv_attn) {
		TRY(card_attn_lanes(e, L, s, p));
		struct abi_cmd *m = &e->list.cmd[e->list.n - 1];
		m->u.mlal.q = q;
		m->u.mlal.out = out;
		return 0;
	}
	struct abi_cmd *m = card_cmd(e, ABI_OP_MLA_ATTN, "mla_attn (query)");
	if (!m)
		return -E2BIG;
	m->u.mla.q = q;
	m->u.mla.kv = ee_kv_base(e, L, s);
	m->u.mla.out = out;
	m->u.mla.n_heads = (uint32_t)c->num_attention_heads;
	m->u.mla.kv_lora = (uint32_t)c->kv_lora_rank;
	m->u.mla.rope = (uint32_t)c->qk_rope_head_dim;
	m->u.mla.n_ctx = (uint32_t)p + 1;
	m->u.mla.ctx_cap = (uint32_t)e->max_seq;
	memcpy(&m->u.mla.scale, &e->softmax_scale, 4);
	return 0;
}

/* The striped attention of rows [t0, t0 + n) in one command (their slots and contexts in
 * pf.atab, written at the forward's start). */
static int pf_attn_rows(struct ee *e, const struct ee_layer *L, int t0, int n)
{
	const struct config *c = e->c;
	const struct ee_pf *pf = &e->pf;
	uint64_t H = (uint64_t)c->num_attention_heads, kvl = (uint64_t)c->kv_lora_rank;
	uint64_t row = kvl + (uint64_t)c->qk_rope_head_dim;
	uint32_t most = 1;
	for (int t = t0; t < t0 + n; t++)
		most = pf->atab_h[2 * t + 1] > most ? pf->atab_h[2 * t + 1] : most;
	TRY(card_attn_lanes(e, L, 0, (int)most - 1));
	struct abi_cmd *m = &e->list.cmd[e->list.n - 1];
	e->list.what[e->list.n - 1] = "mla_attn (striped, all heads, rows)";
	m->u.mlal.q = f4(pf->qcat, (uint64_t)t0 * H * row);
	m->u.mlal.out = f4(pf->lat, (uint64_t)t0 * H * kvl);
	m->u.mlal.rows = (uint32_t)n;
	m->u.mlal.tab = pf->atab + 8 * (uint64_t)t0;
	m->u.mlal.slot_bytes = e->kv_slot_b;
	return 0;
}

/* RoPE of rows [t0, t0 + n) (hpr rows per position, each row's position in pf.hpos; x and out
 * address row 0): one command, at the position of row t0 onwards when the positions are one run
 * (a prompt chunk), else reading the positions table pf.posw (the rows of several sequences;
 * MOECARD_ROPE_TABLE=0: one command per run of consecutive positions). */
static int pf_rope_rows(struct ee *e, const char *what, uint64_t x, uint64_t out, int t0, int n,
			int hpr, uint32_t cols, uint32_t lda, uint32_t ldo)
{
	const int *pos = e->pf.hpos;
	float theta = (float)e->c->rope_theta;
	if (e->pf.pos_tab) {
		uint64_t r0 = (uint64_t)t0 * hpr;
		return pf_vec(e, ABI_OP_ROPE, what, f4(x, r0 * lda), 0, f4(e->pf.posw, t0),
			      f4(out, r0 * ldo), (uint32_t)(n * hpr), cols, lda, ldo,
			      (uint32_t)e->max_seq, theta, e->tab, (uint32_t)hpr);
	}
	for (int a = t0, b; a < t0 + n; a = b) {
		for (b = a + 1; b < t0 + n && pos[b] == pos[b - 1] + 1;)
			b++;
		uint64_t r0 = (uint64_t)a * hpr;
		TRY(pf_vec(e, ABI_OP_ROPE, what, f4(x, r0 * lda), 0, 0, f4(out, r0 * ldo),
			   (uint32_t)((b - a) * hpr), cols, lda, ldo, (uint32_t)pos[a], theta,
			   e->tab, (uint32_t)hpr));
	}
	return 0;
}

static int pf_rope(struct ee *e, const char *what, uint64_t x, uint64_t out, int T, int hpr,
		   uint32_t cols, uint32_t lda, uint32_t ldo)
{
	return pf_rope_rows(e, what, x, out, 0, T, hpr, cols, lda, ldo);
}

/* Rows of one of the T rows' ranges (MOECARD_PF_ATT_PARTS of them, whole GEMV row blocks). */
static int pf_range_rows(const struct ee_pf *pf, int T)
{
	int M = FP8_GEMV_MAX_M;
	return ((T + pf->att_parts - 1) / pf->att_parts + M - 1) / M * M;
}

/* The router's top-k of rows [t0, t0 + n) from their gate logits (pf.rlog) into pf.rout: one
 * command per ABI_ROUTE_MAX_ROWS rows (the kernel takes them one after another). */
static int pf_topk(struct ee *e, const struct ee_layer *L, int t0, int n)
{
	const struct config *c = e->c;
	struct ee_pf *pf = &e->pf;
	const struct ee_gv_layer *g = &L->gv;
	int E = c->n_routed_experts, k = c->num_experts_per_tok;
	uint32_t f = router_flags(c, g->bias != 0);
	float scale = (float)c->routed_scaling_factor;
	for (int r0 = t0; r0 < t0 + n; r0 += ABI_ROUTE_MAX_ROWS) {
		int m =
		    t0 + n - r0 < (int)ABI_ROUTE_MAX_ROWS ? t0 + n - r0 : (int)ABI_ROUTE_MAX_ROWS;
		struct abi_cmd *r = card_cmd(e, ABI_OP_MOE_ROUTE, "router top-k (rows)");
		if (!r)
			return -E2BIG;
		r->u.route.logit = f4(pf->rlog, (uint64_t)r0 * E);
		r->u.route.bias = (f & MOE_ROUTE_BIAS) ? g->bias : 0;
		r->u.route.out = pf->rout + 8 * (uint64_t)r0 * k;
		r->u.route.e = (uint32_t)E;
		r->u.route.k = (uint32_t)k;
		r->u.route.groups = (f & MOE_ROUTE_GROUPS)
					? (uint32_t)c->n_group | (uint32_t)c->topk_group << 16
					: 0;
		r->u.route.flags = f;
		r->u.route.rows = (uint32_t)m;
		memcpy(&r->u.route.scale, &scale, 4);
	}
	return 0;
}

/* Whether the rows path may run some of layer L's routed experts on the GEMM CUs beside the
 * GEMV CU (pf_moe_rows): the board has both, the experts are in the plain layout too, one vector
 * CU gathers their rows (in order after their norm). */
static int pf_hyb_ok(const struct ee *e, const struct ee_layer *L)
{
	const struct ee_pf *pf = &e->pf;
	return !pf->hyb_off && pf->gemm_cus > 0 && pf->gemm_abi_cu >= 0 && !pf->gather &&
	       pf->one_gath && !e->xc && L->moe && e->c->n_routed_experts > 0 && L->ex_gu &&
	       L->ex_gu[0].rows > 0;
}

/* The post-attention norm of rows [t0, t0 + n) into xn, for the routed experts the GEMM CUs
 * take (the GEMV CU's loaders fold it: pf_moe_rows). */
static int pf_xn_rows(struct ee *e, const struct ee_layer *L, int t0, int n)
{
	uint64_t D = (uint64_t)e->c->hidden_size;
	return card_vecop(e, ABI_OP_RMSNORM, "post_attention_layernorm (rows, GEMM experts)",
			  f4(e->pf.x, (uint64_t)t0 * D), 0, L->post_norm,
			  f4(e->pf.xn, (uint64_t)t0 * D), (uint32_t)n, (uint32_t)D, 0, 0, 0,
			  (float)e->c->rms_norm_eps, 0);
}

/* The steps of o_proj's row ranges (pf_o_range), each one CU's, so that another CU's command may
 * go between (pf_mh_run). */
enum pf_ostep {
	PF_O_PROJ,
	PF_O_XN,
	PF_O_GU,
	PF_O_DOWN,
	PF_O_GATE,
	PF_O_TOPK,
	PF_O_SHGU,
	PF_O_SHDOWN
};

/* Layer L's steps of a range into s[7] (gemm: its FFN that needs no routes on the GEMM CUs, the
 * last two steps, its rows normalized before); their count. */
static int pf_o_steps(const struct ee *e, const struct ee_layer *L, int gemm, enum pf_ostep *s)
{
	const struct ee_pf *pf = &e->pf;
	int n = 0;
	s[n++] = PF_O_PROJ;
	if (!pf->ffn_early)
		return n;
	/* the rows' FFN that needs no routes after their o_proj: the dense FFN (into the
	 * residual stream), or the shared expert (into ffn) */
	if (!L->moe) {
		if (gemm)
			s[n++] = PF_O_XN;
		s[n++] = PF_O_GU;
		s[n++] = PF_O_DOWN;
		return n;
	}
	if (pf->route_early) { /* first the router's gate and top-k (and the rows' norm) */
		s[n++] = PF_O_GATE;
		s[n++] = PF_O_TOPK;
	}
	s[n++] = PF_O_SHGU;
	s[n++] = PF_O_SHDOWN;
	return n;
}

/* A range's fence values between its steps: the router gate's (EE_PF_FENCE_GATE: PF_O_GATE sets
 * it, PF_O_TOPK waits for it), its rows' norm for the GEMM CUs (EE_PF_FENCE_XN), the shared
 * gate|up on a GEMM CU (id sh_id). */
struct pf_ost {
	uint32_t gate, xn, sh, sh_id;
	int gemm; /* the shared expert on the GEMM CUs (pf_handover) */
};

/* Step st of o_proj's range [t0, t0 + n) (o_proj after the attention that signalled att on
 * EE_PF_FENCE_ATT); nv: the range tables' views in use in the list. */
static int pf_o_step(struct ee *e, struct ee_layer *L, int T, int t0, int n, uint32_t att, int *nv,
		     enum pf_ostep st, struct pf_ost *os)
{
	struct ee_gv_layer *g = &L->gv;
	struct ee_pf *pf = &e->pf;
	uint64_t D = (uint64_t)e->c->hidden_size, I = (uint64_t)L->sh_down.cols;
	uint32_t i0 = e->list.n;
	switch (st) {
	case PF_O_PROJ:
		TRY(card_gemv_rows_range(e, "o_proj + residual (gemv, rows)", &g->r_o, T, t0,
					 t0 + n, nv));
		card_fence_wait_at(e, i0, EE_PF_FENCE_ATT, att);
		if (os->gemm && !L->moe) /* (the rows' norm waits for it) */
			os->gate = card_fence_signal(e, e->list.n - 1, EE_PF_FENCE_GATE);
		return 0;
	case PF_O_XN: /* the rows normalized for the GEMM CUs' FFN (x final with o_proj's) */
		TRY(pf_xn_rows(e, L, t0, n));
		card_fence_wait_at(e, i0, EE_PF_FENCE_GATE, os->gate);
		os->xn = card_fence_signal(e, e->list.n - 1, EE_PF_FENCE_XN);
		return 0;
	case PF_O_GU:
		if (!os->gemm)
			return card_gemv_rows_range(e, "gate|up silu (gemv, rows)", &g->r_gu, T, t0,
						    t0 + n, nv + 1);
		TRY(card_gemm_m(e, "gate|up silu (gemm, rows)", f4(pf->xn, t0 * D), 0, &L->gu,
				f4(pf->hb, t0 * (uint64_t)L->down.cols), 0, ABI_GEMM_F_SILU_MUL, 0,
				0, 0, 0, 0, n));
		card_fence_wait_at(e, i0, EE_PF_FENCE_XN, os->xn);
		os->sh = card_fence_signal(e, e->list.n - 1, os->sh_id);
		return 0;
	case PF_O_DOWN:
		if (!os->gemm)
			return card_gemv_rows_range(e, "down + residual (gemv, rows)", &g->r_down,
						    T, t0, t0 + n, nv + 2);
		TRY(card_gemm_m(e, "down + residual (gemm, rows)",
				f4(pf->hb, t0 * (uint64_t)L->down.cols), 0, &L->down,
				f4(pf->x, t0 * D), 0, ABI_GEMM_F_RESIDUAL, 0, 0, 0, 0, 0, n));
		card_fence_wait_at(e, i0, os->sh_id, os->sh);
		return 0;
	case PF_O_GATE: /* (the rows normalized in its loader) */
		TRY(card_gemv_rows_norm_range(e, "router gate (gemv, rows)", &g->gate, pf->x,
					      pf->rlog, T, &pf->t_gate, pf->views, pf->rows16 / 16,
					      L->post_norm, t0, t0 + n, nv + 3));
		os->gate = card_fence_signal(e, e->list.n - 1, EE_PF_FENCE_GATE);
		return 0;
	case PF_O_TOPK: /* on its CU after the gate's fence, beside the shared expert */
		TRY(pf_topk(e, L, t0, n));
		card_fence_wait_at(e, i0, EE_PF_FENCE_GATE, os->gate);
		if (pf_hyb_ok(e, L) && card_pf_fold_post(e)) {
			/* the rows normalized for the experts the GEMM CUs may take (their x is
			 * final with o_proj's residual, done before the gate on the GEMV CU) */
			i0 = e->list.n;
			TRY(pf_xn_rows(e, L, t0, n));
			card_fence_wait_at(e, i0, EE_PF_FENCE_GATE, os->gate);
			os->xn = card_fence_signal(e, e->list.n - 1, EE_PF_FENCE_XN);
			pf->xn_early = 1;
		}
		return 0;
	case PF_O_SHGU:
		if (!os->gemm)
			return card_gemv_rows_range(e, "shared gate|up silu (gemv, rows)",
						    &g->r_shgu, T, t0, t0 + n, nv + 1);
		/* (fp8_gemm's rows equal the GEMV groups') */
		TRY(card_gemm_m(e, "shared gate|up silu (gemm, rows)", f4(pf->xn, t0 * D), 0,
				&L->sh_gu, f4(pf->hb, t0 * I), 0, ABI_GEMM_F_SILU_MUL, 0, 0, 0, 0,
				0, n));
		card_fence_wait_at(e, i0, EE_PF_FENCE_XN, os->xn);
		os->sh = card_fence_signal(e, e->list.n - 1, os->sh_id);
		return 0;
	case PF_O_SHDOWN:
		if (!os->gemm)
			return card_gemv_rows_range(e, "shared down (gemv, rows)", &g->r_shdown, T,
						    t0, t0 + n, nv + 2);
		TRY(card_gemm_m(e, "shared down (gemm, rows)", f4(pf->hb, t0 * I), 0, &L->sh_down,
				f4(pf->ffn, t0 * D), 0, 0, 0, 0, 0, 0, 0, n));
		card_fence_wait_at(e, i0, os->sh_id, os->sh);
		return 0;
	}
	return -EINVAL;
}

/* o_proj + residual of rows [t0, t0 + n) on the GEMV CU, after the attention that signalled
 * att on EE_PF_FENCE_ATT, and with pf.ffn_early the rows' FFN that needs no routes (and the
 * router's gate and top-k: pf.route_early); *nv: the range tables' views in use in the list. */
static int pf_o_range(struct ee *e, struct ee_layer *L, int T, int t0, int n, uint32_t att, int *nv)
{
	enum pf_ostep st[7];
	struct pf_ost os = {0};
	for (int i = 0, ns = pf_o_steps(e, L, 0, st); i < ns; i++)
		TRY(pf_o_step(e, L, T, t0, n, att, nv, st[i], &os));
	return 0;
}

/* o_proj with the residual (unless done: o_done) and the post-attention norm (where the FFN
 * needs xn) of T rows. */
static int pf_mla_out(struct ee *e, struct ee_layer *L, int T, int gv, int o_done)
{
	struct ee_pf *pf = &e->pf;
	if (!o_done) {
		if (gv)
			TRY(card_gemv_rows_cmd(e, "o_proj + residual (gemv, rows)", &L->gv.r_o, T));
		else
			TRY(pf_gemm(e, "o_proj + residual (rows)", pf->ao, &L->o, pf->x,
				    ABI_GEMM_F_RESIDUAL, T));
		TRY(card_barrier(e));
	}
	if (gv && card_pf_fold_post(e)) /* the FFN's GEMVs normalize x in their loaders */
		return 0;
	TRY(card_vecop(e, ABI_OP_RMSNORM, "post_attention_layernorm (rows)", pf->x, 0, L->post_norm,
		       pf->xn, (uint32_t)T, (uint32_t)e->c->hidden_size, 0, 0, 0,
		       (float)e->c->rms_norm_eps, 0));
	return card_barrier(e);
}

/* The non-absorbed attention's sections of one layer in row ranges (pf_mla_mha; pf_handover
 * runs them beside the COMBINE of the layer before). */
struct pf_mh {
	struct ee_layer *L;
	int T, p0, n_kv; /* rows, the first one's position, K/V rows (p0 + T) */
	int cr, fz;	 /* rows per range; the ranges pipeline (fence EE_PF_FENCE_ATT) */
	int spread;	 /* the KV appends go with the ranges */
	int na, pt0, pn; /* appends issued; the range before (its o_proj follows) */
	int nvo[4];	 /* the o_proj range tables' views in use */
	uint32_t patt;	 /* the range before's EE_PF_FENCE_ATT value */
	uint64_t kva;	 /* this chunk's kv_a rows */
};

/* Layer L's non-absorbed section over T rows: its kv_a rows, the ranges, and whether the FFN
 * that needs no routes (and the router) goes with o_proj's ranges (pf.ffn_early, route_early). */
static int pf_mh_begin(struct ee *e, struct ee_layer *L, int T, struct pf_mh *m)
{
	const struct config *c = e->c;
	struct ee_pf *pf = &e->pf;
	struct ee_gv_layer *g = &L->gv;
	int H = c->num_attention_heads, qd = c->qk_nope_head_dim + c->qk_rope_head_dim, r = 0;
	memset(m, 0, sizeof *m);
	m->L = L;
	m->T = T;
	m->p0 = pf->hpos[0];
	m->n_kv = m->p0 + T;
	m->kva = card_pf_kva(e, L, m->p0, &r);
	if (r)
		return r;
	/* the attention in row ranges, o_proj's rows of a range on the GEMV CU beside the next
	 * range's attention (fence EE_PF_FENCE_ATT; without it, o_proj after the attention) */
	int fz = !e->xc && !e->chain_off && pf->one_att && T > 2 * FP8_GEMV_MAX_M;
	int most = mla_mha_rows_max((int)e->gv_lanes, H, qd, c->v_head_dim);
	most = most < (int)ABI_MLAL_MAX_ROWS ? most : (int)ABI_MLAL_MAX_ROWS;
	int cr = most, M = FP8_GEMV_MAX_M;
	if (fz) { /* ranges of whole GEMV row blocks */
		int want = pf_range_rows(pf, T);
		cr = want < most / M * M ? want : most / M * M;
		fz = cr >= M;
		cr = fz ? cr : most;
	}
	m->cr = cr;
	m->fz = fz;
	/* with one GEMV CU (its commands run one after another) and the FFN's norm in its
	 * loaders, the FFN that needs no routes runs in the ranges too, and the router */
	pf->ffn_early = fz && pf->one_gv && card_pf_fold_post(e) &&
			(L->moe ? g->shgu.n && g->r_shgu.ng : g->gu.n && g->r_gu.ng) &&
			!pf->ffn_late;
	pf->route_early = pf->ffn_early && L->moe && e->gv_route;
	return 0;
}

/* The RoPEs on the vector CU: the k_pe of K/V rows [k0, k1) into the K/V rows; without the
 * appends' fold, kv_a's norm and RoPE of rows [t0, t1) for their records; q_pe of rows [t0, t1)
 * in place. */
static int pf_mh_rope(struct ee *e, const struct pf_mh *m, int k0, int k1, int t0, int t1)
{
	const struct config *c = e->c;
	struct ee_pf *pf = &e->pf;
	const struct ee_gv_layer *g = &m->L->gv;
	int H = c->num_attention_heads, nope = c->qk_nope_head_dim, rope = c->qk_rope_head_dim;
	int kvl = c->kv_lora_rank, row = kvl + rope, qd = nope + rope;
	uint64_t ld = (uint64_t)H * (nope + c->v_head_dim) + (uint64_t)rope;
	uint64_t src = g->kvp ? g->kvp : m->kva; /* (kvp: the layer's prompt rows from row 0) */
	TRY(pf_vec(e, ABI_OP_ROPE, "rope k_pe -> K/V rows (rows)",
		   f4(src, (uint64_t)k0 * row + kvl), 0, 0,
		   f4(pf->kvx, (uint64_t)k0 * ld + ld - rope), (uint32_t)(k1 - k0), (uint32_t)rope,
		   (uint32_t)row, (uint32_t)ld, (uint32_t)k0, (float)c->rope_theta, e->tab, 1));
	if (!(e->gv_attn && e->kv_fold)) { /* the appends' records (folded: each append's own) */
		TRY(card_vecop(
		    e, ABI_OP_RMSNORM, "kv_a_layernorm (rows)", f4(m->kva, (uint64_t)t0 * row), 0,
		    m->L->kv_a_norm, f4(pf->kvrow, (uint64_t)t0 * row), (uint32_t)(t1 - t0),
		    (uint32_t)kvl, (uint32_t)row, (uint32_t)row, 0, (float)c->rms_norm_eps, 0));
		TRY(pf_rope_rows(e, "rope k_pe (rows)", f4(m->kva, kvl), f4(pf->kvrow, kvl), t0,
				 t1 - t0, 1, (uint32_t)rope, (uint32_t)row, (uint32_t)row));
	}
	return pf_rope_rows(e, "rope q_pe (rows, in place)", f4(pf->q, nope), f4(pf->q, nope), t0,
			    t1 - t0, H, (uint32_t)rope, (uint32_t)qd, (uint32_t)qd);
}

/* kv_b over K/V rows [k0, k1) (c' normalized in the loader) into their k_nope and v. */
static int pf_mh_kvb(struct ee *e, const struct pf_mh *m, int k0, int k1, int *nv)
{
	return card_gemv_rows_range(e, "kv_b c' -> K/V rows, all heads (gemv, rows)",
				    &m->L->gv.r_kvb, m->n_kv, k0, k1, nv);
}

/* The fields of the attention command a of rows [t0, t0 + n). */
static void pf_mh_att_fill(const struct ee *e, const struct pf_mh *m, struct abi_cmd *a, int t0,
			   int n);

/* The attention command of rows [t0, t0 + n) (waiting for value wv of fence wid first, where
 * wv > 0); with the ranges it signals EE_PF_FENCE_ATT (the value into *att). */
static int pf_mh_att(struct ee *e, const struct pf_mh *m, int t0, int n, uint32_t wid, uint32_t wv,
		     uint32_t *att)
{
	struct abi_cmd *a = card_cmd(e, ABI_OP_MLA_ATTN_LANES, "mla_attn (non-absorbed, rows)");
	if (!a)
		return -E2BIG;
	pf_mh_att_fill(e, m, a, t0, n);
	if (wv)
		abi_cmd_wait(&a->hdr, wid, wv);
	if (m->fz)
		*att = card_fence_signal(e, e->list.n - 1, EE_PF_FENCE_ATT);
	return 0;
}

/* The projected ns of the attention of rows [t0, t0 + n) (the dry timer's model). */
static double pf_mh_att_ns(const struct ee *e, const struct pf_mh *m, int t0, int n)
{
	struct abi_cmd a;
	uint32_t bw = 0, kclk = 0;
	memset(&a, 0, sizeof a);
	abi_cmd_hdr_set(&a.hdr, ABI_OP_MLA_ATTN_LANES, 0);
	pf_mh_att_fill(e, m, &a, t0, n);
	card_dry_rates(e, &bw, &kclk);
	int64_t cyc = card_attn_lanes_cycles(e, &a, bw, kclk);
	return cyc > 0 && kclk ? (double)cyc * 1e6 / kclk : 0;
}

static void pf_mh_att_fill(const struct ee *e, const struct pf_mh *m, struct abi_cmd *a, int t0,
			   int n)
{
	const struct config *c = e->c;
	const struct ee_pf *pf = &e->pf;
	int H = c->num_attention_heads, nope = c->qk_nope_head_dim, rope = c->qk_rope_head_dim;
	int vd = c->v_head_dim, qd = nope + rope;
	a->u.mlal.q = f4(pf->q, (uint64_t)t0 * H * qd);
	a->u.mlal.out = f4(pf->ao, (uint64_t)t0 * H * vd);
	a->u.mlal.cache_off = pf->kvx;
	a->u.mlal.n_heads = (uint32_t)H;
	a->u.mlal.kv_lora = (uint32_t)vd;
	a->u.mlal.rope = (uint32_t)rope;
	a->u.mlal.rsvd = (uint32_t)nope;
	a->u.mlal.n_ctx = (uint32_t)(m->p0 + t0 + n); /* (row t attends p0 + t + 1) */
	a->u.mlal.ctx_cap = (uint32_t)m->n_kv;
	a->u.mlal.word = ABI_MLAL_MHA;
	a->u.mlal.rows = n > 1 ? (uint32_t)n : 0;
	a->u.mlal.tab = n > 1 ? pf->atab + 8 * (uint64_t)t0 : 0;
	memcpy(&a->u.mlal.scale, &e->softmax_scale, 4);
}

/* The attention of rows [t0, t0 + n); with the ranges, then the range before's o_proj
 * (pf_o_range) and the KV appends' share. */
static int pf_mh_attn(struct ee *e, struct pf_mh *m, int t0, int n)
{
	uint32_t att = 0;
	int T = m->T;
	TRY(pf_mh_att(e, m, t0, n, 0, 0, &att));
	if (!m->fz)
		return 0;
	if (t0 > 0) /* the range before: its o_proj beside this attention */
		TRY(pf_o_range(e, m->L, T, m->pt0, m->pn, m->patt, m->nvo));
	/* the latent cache's appends (for the decode after the prompt: nothing in this form reads
	 * them) on their own CU beside the attention, a share of them after each range's command
	 * as large as its share of the attention's work (the rows' causal triangle): a command a
	 * 32-token block's rows (pf_kv_run), each taken by the firmware CPU in turn while the
	 * range's attention runs, not after the last one */
	double f = (double)(t0 + n) / T;
	int a1 = t0 + n >= T ? T : (int)(f * f * T);
	if (m->spread)
		TRY(pf_kv_appends_rows(e, m->L, m->na, a1, m->kva));
	m->na = m->spread && a1 > m->na ? a1 : m->na;
	m->pt0 = t0;
	m->pn = n;
	m->patt = att;
	return 0;
}

/* After the last range: the appends (where they did not go with the ranges) and the last
 * range's o_proj. */
static int pf_mh_end(struct ee *e, struct pf_mh *m)
{
	if (!m->spread) /* (the attention whole, or a section larger than a list: after it) */
		TRY(pf_kv_appends(e, m->L, m->T, m->kva));
	return m->fz ? pf_o_range(e, m->L, m->T, m->pt0, m->pn, m->patt, m->nvo) : 0;
}

/* pf_handover's streams for sections of up to this many rows only where they fitted a list
 * with an append a row */
#define PF_HO_ROWS_T 512

/* Whether the section of R ranges of T rows fits in the list after its n commands (a full list
 * is submitted and waited for whole, which would end the overlap), with `per` commands a range
 * besides the appends; row_appends counts an append a row (pf_handover's rule for short
 * sections) instead of the commands pf_kv_cmds bounds. */
static int pf_mh_fits(const struct ee *e, int T, int R, int per, int row_appends)
{
	uint32_t kv = row_appends ? (uint32_t)T : (uint32_t)pf_kv_cmds(e, T, 2 * (R + 1));
	return e->list.n + kv + (uint32_t)(per * (R + 1)) <= BACKEND_MAX_LIST;
}

/* pf_mh_run's streams: each issues its steps range after range; a step of range r of one stream
 * waits for the step of range r of the stream before it (a fence). */
enum { PF_S_COMB, PF_S_PROJ, PF_S_ROPE, PF_S_ATT, PF_S_O, PF_S_SHG, PF_S_SHD, PF_S_N };
#define PF_SLACK_NS 10e3
static int pf_ho_ranges(int T, int cr, int *rt);
static int pf_mh_run(struct ee *e, struct pf_mh *m, int from, int lc);

/*
 * MLA of a prompt's first chunk in the non-absorbed form (pf.mha; the rows path): q_a|kv_a and
 * q_b on the GEMV CU; kv_b over the chunk's c' rows (kv_a's rows normalized in the loader, f32
 * activations) writes the K/V rows (pf.kvx: per head k_nope, v), RoPE writes
 * their k_pe and ropes q_pe in place; the KV appends still fill the cache for decode; then the
 * attention per head over the K/V rows (MLA_ATTN_LANES in its MHA mode, up to
 * mla_mha_rows_max rows a command) writes the heads' outputs straight into ao: no W_UK^T, no
 * W_UV. Numerics: the same FP8 contract, not the absorbed form's bits (the scores sum q_nope .
 * k_nope instead of q_lat . c'); host/tests/test_emu_prefill.c bounds the difference.
 */
static int pf_mla_mha(struct ee *e, struct ee_layer *L, int T)
{
	struct ee_pf *pf = &e->pf;
	struct ee_gv_layer *g = &L->gv;
	struct pf_mh m;
	int nv = 0;
	TRY(pf_mh_begin(e, L, T, &m));
	if (!pf->qa_early && m.fz && !pf->merge_off && pf->one_rope && !pf->pos_tab &&
	    card_pf_fold_post(e)) { /* the whole section as pf_handover's streams */
		int Rs = pf_ho_ranges(T, m.cr, NULL);
		TRY(pf_mh_fits(e, T, Rs, 24, 0) ? card_barrier(e) : card_flush(e));
		if (pf_mh_fits(e, T, Rs, 24, 0)) {
			m.spread = 1;
			TRY(pf_mh_run(e, &m, PF_S_PROJ, e->cur_layer));
			TRY(card_barrier(e));
			return pf_mla_out(e, L, T, 1, 1);
		}
	}
	/* q_b, then the RoPEs on the vector CU beside kv_b on the GEMV CU: the commands of a ring
	 * start in list order, so the vector CU's go first (after q_b: the barrier between becomes
	 * a fence, card_fence_chain). With pf.qa_early the layer before issued q_a|kv_a and q_b
	 * in row ranges beside its COMBINE (pf_combine_ranges). */
	if (pf->qa_early) {
		pf->qa_early = 0;
	} else {
		TRY(card_gemv_rows_cmd(e, "q_a|kv_a (gemv, rows)", &g->r_qkva, T));
		if (e->c->q_lora_rank > 0) {
			TRY(card_barrier(e));
			TRY(card_gemv_rows_cmd(e, "q_b (gemv, rows)", &g->r_qb, T));
		}
	}
	TRY(card_barrier(e));
	/* (the K/V rows of every position so far: a later chunk's kv_b recomputes the rows before
	 * it from the layer's kv_a rows of the prompt; the K/V rows are one buffer for all layers) */
	TRY(pf_mh_rope(e, &m, 0, m.n_kv, 0, T));
	TRY(pf_mh_kvb(e, &m, 0, m.n_kv, &nv));
	int R = (T + m.cr - 1) / m.cr;
	if (m.fz && !pf_mh_fits(e, T, R, 16, 0))
		TRY(card_flush(e)); /* (in the barrier's place) */
	else
		TRY(card_barrier(e));
	/* the appends go with the ranges where the section fits in one list (else at its end: a
	 * full list in the middle would end the overlap) */
	m.spread = m.fz && pf_mh_fits(e, T, R, 16, 0);
	if (m.spread && !pf->merge_off) { /* the ranges as pf_handover's streams */
		TRY(pf_mh_run(e, &m, PF_S_ATT, e->cur_layer));
	} else {
		for (int t0 = 0; t0 < T; t0 += m.cr)
			TRY(pf_mh_attn(e, &m, t0, T - t0 < m.cr ? T - t0 : m.cr));
		TRY(pf_mh_end(e, &m));
	}
	TRY(card_barrier(e));
	return pf_mla_out(e, L, T, 1, m.fz);
}

/* MLA of T rows (slots pf.hseq, positions pf.hpos), through the post-attention norm into pf.xn. */
static int pf_mla(struct ee *e, struct ee_layer *L, int T)
{
	const struct config *c = e->c;
	struct ee_pf *pf = &e->pf;
	struct ee_gv_layer *g = &L->gv;
	int H = c->num_attention_heads, nope = c->qk_nope_head_dim, rope = c->qk_rope_head_dim;
	int vd = c->v_head_dim, kvl = c->kv_lora_rank, ql = c->q_lora_rank, row = kvl + rope;
	int D = c->hidden_size, qd = nope + rope, gv = pf_rows(e, T);
	uint32_t R = (uint32_t)T;
	float eps = (float)c->rms_norm_eps;
	if (gv)
		TRY(card_gemv_rows_tables(e, L));
	if (pf->mha && g->r_kvb.ng) /* (every layer has its W_UK rows, or none) */
		return pf_mla_mha(e, L, T);
	int r = 0; /* kv_a's rows: the layer's prompt rows when this forward continues them */
	uint64_t kva = gv ? card_pf_kva(e, L, pf->chain ? pf->hpos[0] : 0, &r) : pf->kva;
	if (r)
		return r;
	if (!gv) { /* the GEMV rows normalize in their loader (FP8_GEMV_RMSNORM) */
		TRY(card_vecop(e, ABI_OP_RMSNORM, "input_layernorm (rows)", pf->x, 0, L->in_norm,
			       pf->xn, R, (uint32_t)D, 0, 0, 0, eps, 0));
		TRY(card_barrier(e));
	}
	if (gv) {
		TRY(card_gemv_rows_cmd(e, "q_a|kv_a (gemv, rows)", &g->r_qkva, T));
	} else {
		if (ql > 0)
			TRY(pf_gemm(e, "q_a_proj (rows)", pf->xn, &L->q_a, pf->qa, 0, T));
		else
			TRY(pf_gemm(e, "q_proj (rows)", pf->xn, &L->q_b, pf->q, 0, T));
		TRY(pf_gemm(e, "kv_a_proj (rows)", pf->xn, &L->kv_a, pf->kva, 0, T));
	}
	TRY(card_barrier(e));
	/* with q_a_layernorm in its loader, q_b runs on the GEMV CU beside the kv norm and RoPE */
	if (ql > 0 && gv)
		TRY(card_gemv_rows_cmd(e, "q_b (gemv, rows)", &g->r_qb, T));
	if (ql > 0 && !gv)
		TRY(card_vecop(e, ABI_OP_RMSNORM, "q_a_layernorm (rows)", pf->qa, 0, L->q_a_norm,
			       pf->qa, R, (uint32_t)ql, 0, 0, 0, eps, 0));
	if (!(e->gv_attn && e->kv_fold)) { /* (folded: each row's append does both) */
		TRY(card_vecop(e, ABI_OP_RMSNORM, "kv_a_layernorm (rows)", kva, 0, L->kv_a_norm,
			       pf->kvrow, R, (uint32_t)kvl, (uint32_t)row, (uint32_t)row, 0, eps,
			       0));
		TRY(pf_rope(e, "rope k_pe (rows)", f4(kva, kvl), f4(pf->kvrow, kvl), T, 1,
			    (uint32_t)rope, (uint32_t)row, (uint32_t)row));
	}
	TRY(card_barrier(e));
	if (ql > 0 && !gv)
		TRY(pf_gemm(e, "q_b_proj (rows)", pf->qa, &L->q_b, pf->q, 0, T));
	/* (with q_b in the section before, the appends go after W_UK^T and RoPE q_pe in the list:
	 * the firmware takes commands in list order, and the GEMV is the section's longest) */
	int late = gv && ql > 0;
	if (!late) {
		TRY(pf_kv_appends(e, L, T, kva));
		TRY(card_barrier(e));
	}
	int kbn = (nope + 127) / 128, kbl = (kvl + 127) / 128, sc = (kvl + 127) / 128;
	struct cmat ukt = {L->uk_t, L->uk_t_s, kvl, nope};
	if (gv)
		TRY(card_gemv_rows_cmd(e, "W_UK^T q_nope, all heads (gemv, rows)", &g->r_ukt, T));
	/* q_pe of every head of every row: H rows per position */
	TRY(pf_rope(e, "rope q_pe (rows)", f4(pf->q, nope), f4(pf->qcat, kvl), T, H, (uint32_t)rope,
		    (uint32_t)qd, (uint32_t)row));
	for (int h = 0; h < H && !gv; h++)
		TRY(card_gemm_m(
		    e, "W_UK^T q_nope (rows)", f4(pf->q, (uint64_t)h * qd), (uint32_t)(H * qd),
		    &ukt, f4(pf->qcat, (uint64_t)h * row), (uint32_t)(H * row), ABI_GEMM_F_ACT_F32,
		    0, (uint64_t)h * kvl * nope, 4 * (uint64_t)h * kbl * kbn, kvl, nope, T));
	if (late)
		TRY(pf_kv_appends(e, L, T, kva));
	TRY(card_barrier(e));
	for (int t0 = 0; t0 < T && pf->attn_rows; t0 += ABI_MLAL_MAX_ROWS)
		TRY(pf_attn_rows(
		    e, L, t0, T - t0 < (int)ABI_MLAL_MAX_ROWS ? T - t0 : (int)ABI_MLAL_MAX_ROWS));
	for (int t = 0; t < T && !pf->attn_rows; t++)
		TRY(pf_attn(e, L, f4(pf->qcat, (uint64_t)t * H * row),
			    f4(pf->lat, (uint64_t)t * H * kvl), pf->hseq[t], pf->hpos[t]));
	TRY(card_barrier(e));
	if (gv)
		TRY(card_gemv_rows_cmd(e, "W_UV o_lat, all heads (gemv, rows)", &g->r_uv, T));
	for (int h = 0; h < H && !gv; h++) {
		uint64_t r0 = (uint64_t)h * (nope + vd) + nope;
		TRY(card_gemm_m(e, "W_UV o_lat (rows)", f4(pf->lat, (uint64_t)h * kvl),
				(uint32_t)(H * kvl), &L->kv_b, f4(pf->ao, (uint64_t)h * vd),
				(uint32_t)(H * vd), ABI_GEMM_F_ACT_F32, 0, r0 * kvl,
				4 * (r0 / 128) * sc, vd, kvl, T));
	}
	TRY(card_barrier(e));
	return pf_mla_out(e, L, T, gv, 0);
}

static int pf_dense(struct ee *e, struct ee_layer *L, int T)
{
	struct ee_pf *pf = &e->pf;
	if (pf->ffn_early) { /* (done beside the attention: pf_o_range) */
		pf->ffn_early = 0;
		return card_barrier(e);
	}
	if (pf_rows(e, T)) {
		TRY(card_gemv_rows_cmd(e, "gate|up silu (gemv, rows)", &L->gv.r_gu, T));
		TRY(card_barrier(e));
		TRY(card_gemv_rows_cmd(e, "down + residual (gemv, rows)", &L->gv.r_down, T));
		return card_barrier(e);
	}
	TRY(pf_gemm(e, "gate|up silu (rows)", pf->xn, &L->gu, pf->hb, ABI_GEMM_F_SILU_MUL, T));
	TRY(card_barrier(e));
	TRY(pf_gemm(e, "down + residual (rows)", pf->hb, &L->down, pf->x, ABI_GEMM_F_RESIDUAL, T));
	return card_barrier(e);
}

/* The routes of the T rows into pf.hidx / pf.hw ([T][k]): the card's router when it runs on the
 * card (the list is submitted, the routes read back), else the host's gate and router on the
 * rows read back; dry mode: every expert equally loaded. */
static int pf_route(struct ee *e, const struct ee_layer *L, int T)
{
	const struct config *c = e->c;
	struct ee_pf *pf = &e->pf;
	int D = c->hidden_size, E = c->n_routed_experts, k = c->num_experts_per_tok;
	if (e->gv && e->gv_route) {
		const struct ee_gv_layer *g = &L->gv;
		int fold = pf_rows(e, T) && card_pf_fold_post(e); /* x, normalized in the loader */
		if (!pf->route_early) {
			TRY(card_gemv_rows_norm(e, "router gate (gemv, rows)", &g->gate,
						fold ? pf->x : pf->xn, pf->rlog, T, &pf->t_gate,
						pf->views, pf->rows16 / 16,
						fold ? L->post_norm : 0));
			TRY(card_barrier(e));
			/* one command routes every row (the kernel takes them one after another) */
			TRY(pf_topk(e, L, 0, T));
		}
		pf->route_early = 0; /* (else the gate and top-k went with o_proj's ranges) */
		TRY(card_barrier(e));
		TRY(card_flush(e));
		double t0 = now_s();
		/* one read of every row's idx [k] then w [k] (the router's output layout) */
		if (!e->dry)
			TRY(card_read(e, pf->rout, pf->hrow, 8 * (size_t)T * k));
		for (int t = 0; t < T && !e->dry; t++) {
			memcpy(pf->hidx + (size_t)t * k, pf->hrow + (size_t)t * 2 * k,
			       4 * (size_t)k);
			memcpy(pf->hw + (size_t)t * k, pf->hrow + ((size_t)t * 2 + 1) * k,
			       4 * (size_t)k);
		}
		/* MOECARD_ROUTE_CHECK: each row's choice against the host router on the card's
		 * logits (idx and weight bits), as card_route_check does for the token loop */
		for (int t = 0; t < T && e->route_check && !e->dry && L->lw; t++) {
			TRY(card_read(e, f4(pf->rlog, (uint64_t)t * E), pf->hlog, 4 * (size_t)E));
			card_route_compare(e, L->lw->e_score_correction_bias, pf->hlog,
					   pf->hidx + (size_t)t * k, pf->hw + (size_t)t * k);
		}
		e->t_host += now_s() - t0;
	} else {
		TRY(card_flush(e));
		double t0 = now_s();
		e->host_route_b +=
		    (double)T * E * D * (!L->lw || L->lw->gate.fmt == QMAT_BF16 ? 2 : 4);
		if (!e->dry && L->lw) {
			TRY(card_read(e, pf->xn, pf->hrow, sizeof(float) * (size_t)T * D));
			for (int t = 0; t < T; t++) { /* row by row, as the token loop */
				TRY(kern_matmul(&e->kc, &L->lw->gate, pf->hrow + (size_t)t * D, 1,
						pf->hlog));
				router_route_token(c, L->lw->e_score_correction_bias, pf->hlog,
						   pf->hidx + (size_t)t * k,
						   pf->hw + (size_t)t * k);
			}
		}
		e->t_host += now_s() - t0;
	}
	for (int i = 0; i < T * k; i++) {
		if (e->dry) { /* every expert equally loaded, k distinct experts per row */
			pf->hidx[i] = (int32_t)((size_t)i % (size_t)E);
			pf->hw[i] = 1.0f / (float)k;
		}
		if (pf->hidx[i] < 0 || pf->hidx[i] >= E)
			pf->hidx[i] = 0;
	}
	return 0;
}

/* Whether the MoE rows of this layer hand over to the next layer in row ranges (pf_combine_ranges):
 * the next layer runs the non-absorbed form with its ranges, and the board has one GEMV CU and
 * one vector CU (their commands complete in order, so a fence's values do). Builds the next
 * layer's rows tables. 1, 0, or a negative errno. */
static int pf_next_early(struct ee *e, int T)
{
	struct ee_pf *pf = &e->pf;
	struct ee_layer *N = pf->next_L;
	int l = e->cur_layer, r = 0;
	if (!N || !pf->mha || pf->ffn_late || !pf->one_att || !pf->one_gv || !pf->one_vec ||
	    e->xc || e->chain_off || T <= 2 * FP8_GEMV_MAX_M)
		return 0;
	if (l >= 0) /* (its tables' kv_a rows are the next layer's; the what-if has no index) */
		e->cur_layer = l + 1;
	r = card_gemv_rows_tables(e, N);
	if (!r && N->gv.r_kvb.ng)
		card_pf_kva(e, N, pf->hpos[0], &r);
	e->cur_layer = l;
	return r ? r : N->gv.r_kvb.ng > 0;
}

/* The end of a MoE layer in row ranges, each handing its rows to the next layer: the COMBINE of
 * the range's rows (signals EE_PF_FENCE_COMB), their residual add (waits for it, signals
 * EE_PF_FENCE_RES), then the next layer's q_a|kv_a and q_b of those rows on the GEMV CU
 * (waiting for the residual): the GEMV CU starts the next layer while the vector CU combines the
 * next range. pf_mla_mha then skips its q_a|kv_a and q_b (pf.qa_early). */
static int pf_combine_ranges(struct ee *e, int T)
{
	const struct config *c = e->c;
	struct ee_pf *pf = &e->pf;
	int l = e->cur_layer, D = c->hidden_size, k = c->num_experts_per_tok;
	struct ee_gv_layer *ng = &pf->next_L->gv;
	int nv[2] = {0}, cr = pf_range_rows(pf, T);
	uint32_t RK = (uint32_t)(T * k);
	for (int t0 = 0; t0 < T; t0 += cr) {
		int n = T - t0 < cr ? T - t0 : cr;
		TRY(pf_vec(e, ABI_OP_COMBINE, "combine (router order)", pf->yd,
			   f4(pf->cw, (uint64_t)t0 * k), f4(pf->ci, (uint64_t)t0 * k),
			   f4(pf->ffn, (uint64_t)t0 * D), (uint32_t)n, (uint32_t)D, 0, 0, RK, 0, 0,
			   (uint32_t)k));
		uint32_t comb = card_fence_signal(e, e->list.n - 1, EE_PF_FENCE_COMB);
		TRY(card_vecop(e, ABI_OP_RESIDUAL_ADD, "residual (rows)",
			       f4(pf->x, (uint64_t)t0 * D), f4(pf->ffn, (uint64_t)t0 * D), 0,
			       f4(pf->x, (uint64_t)t0 * D), (uint32_t)n, (uint32_t)D, 0, 0, 0, 0,
			       0));
		abi_cmd_wait(&e->list.cmd[e->list.n - 1].hdr, EE_PF_FENCE_COMB, comb);
		uint32_t res = card_fence_signal(e, e->list.n - 1, EE_PF_FENCE_RES);
		e->cur_layer = l >= 0 ? l + 1 : l;
		uint32_t i0 = e->list.n;
		int r = card_gemv_rows_range(e, "q_a|kv_a (gemv, rows)", &ng->r_qkva, T, t0, t0 + n,
					     &nv[0]);
		if (!r)
			card_fence_wait_at(e, i0, EE_PF_FENCE_RES, res);
		if (!r && c->q_lora_rank > 0)
			r = card_gemv_rows_range(e, "q_b (gemv, rows)", &ng->r_qb, T, t0, t0 + n,
						 &nv[1]);
		e->cur_layer = l;
		if (r)
			return r;
	}
	pf->qa_early = 1;
	return 0;
}

/* pf_mh_run's row ranges of T rows (cr at most, whole GEMV row blocks) into rt[0..R] (range q:
 * rows [rt[q], rt[q + 1])) where rt is not NULL; R. The first ones smaller (PF_HO_GROW rows,
 * then as many more each up to cr): the attention starts early, and its first ranges, short
 * ones, are fed about as fast as they run (a mid prompt of 512 rows: 32, 48, 48, ...). */
#define PF_HO_GROW 32
static int pf_ho_ranges(int T, int cr, int *rt)
{
	int R = 0, at = 0;
	for (int w = PF_HO_GROW; at < T; R++, w += PF_HO_GROW) {
		at += w < cr ? w : cr;
		at = at < T ? at : T;
		if (rt)
			rt[R + 1] = at;
	}
	if (rt)
		rt[0] = 0;
	return R;
}

static double pf_gemm_ns(const struct ee *e, const struct cmat *W, int M, uint32_t flags);

/* The first K/V row of range q of rt[0..R] (R: past the last): ranges' K/V rows start at whole
 * GEMV row blocks, the first at row 0 (the rows before the chunk too) and the end at n_kv. */
static int pf_mh_krow(const struct pf_mh *m, const int *rt, int R, int q)
{
	int M = FP8_GEMV_MAX_M, k = (m->p0 + rt[q] + M - 1) / M * M;
	return !q ? 0 : q >= R || k > m->n_kv ? m->n_kv : k;
}

/* Whether layer L's FFN that needs no routes may run on the GEMM CUs in o_proj's ranges (the
 * dense FFN, or the shared expert: GEMMs of the rows normalized on the vector CU first). */
static int pf_ffn_gemm_ok(const struct ee *e, const struct ee_layer *L)
{
	const struct ee_pf *pf = &e->pf;
	if (pf->sh_gemv || !pf->ffn_early || pf->gemm_cus < 1 || pf->gemm_abi_cu < 0 ||
	    !pf->one_gath || !card_pf_fold_post(e) || e->xc)
		return 0;
	return L->moe ? pf_hyb_ok(e, L) && pf->route_early && L->sh_gu.rows > 0
		      : L->gu.rows > 0 && L->down.rows > 0;
}

/* The projected GEMV ns of layer L's FFN that needs no routes over rows [t0, t0 + n). */
static double pf_ffn_gemv_ns(const struct ee *e, const struct ee_layer *L, int t0, int n)
{
	const struct gvtab *gu = L->moe ? &L->gv.r_shgu : &L->gv.r_gu;
	const struct gvtab *dn = L->moe ? &L->gv.r_shdown : &L->gv.r_down;
	int M = FP8_GEMV_MAX_M, b0 = t0 / M, b1 = (t0 + n + M - 1) / M;
	return card_gemv_groups_ns(e, gu, b0 * gu->per, b1 * gu->per, M) +
	       card_gemv_groups_ns(e, dn, b0 * dn->per, b1 * dn->per, M);
}

/*
 * Layer m->L's attention section in its row ranges (pf_ho_ranges) as streams (PF_S_*), from stream
 * `from` on (the streams before it done; PF_S_COMB: the COMBINE of the MoE layer before, at
 * layer index lc, whose ranges hand over to this one): each issues its steps range after range,
 * a stream's range r after the stream before issued r's last step (a fence between them:
 * COMBINE and residual signal EE_PF_FENCE_RES; q_a|kv_a waits for it, kv_b signals
 * EE_PF_FENCE_KVB; the RoPEs wait for it and signal EE_PF_FENCE_ROPE; the attention waits for
 * them, then o_proj's steps (pf_o_step) and the FFN that needs no routes: on the GEMV CU, or
 * for a range whose GEMMs are projected to end before the GEMV CU would have done the rest of
 * that FFN, on the GEMM CUs (PF_S_SHG, PF_S_SHD, the rows normalized first), and the KV
 * appends. The firmware starts commands in list order, each once its CU is free: the steps go
 * into the list in the order a projection of their start times gives (card_proj; of those within
 * PF_SLACK_NS of the first, the one nearest the attention; the appends where the firmware would
 * wait anyway). Every buffer a range's commands write is read by its own range's later
 * commands only (ffn: the shared down writes a range's rows after the COMBINE before read them).
 */
static int pf_mh_run(struct ee *e, struct pf_mh *m, int from, int lc)
{
	const struct config *c = e->c;
	struct ee_pf *pf = &e->pf;
	struct ee_layer *N = m->L;
	struct ee_gv_layer *ng = &N->gv;
	const struct abi_board *bb = backend_abi_board(e->be);
	int l = e->cur_layer, D = c->hidden_size, T = m->T, r = 0, R = pf_ho_ranges(T, m->cr, NULL);
	int k = c->num_experts_per_tok, nv[3] = {0};
	int same = card_only_cu(bb, ABI_OP_COMBINE) == card_only_cu(bb, ABI_OP_RESIDUAL_ADD);
	enum pf_ostep ost[2][7]; /* o_proj's steps with the FFN on the GEMV CU, on the GEMM CUs */
	int nos[2] = {pf_o_steps(e, N, 0, ost[0]), pf_o_steps(e, N, 1, ost[1])};
	int ffg = pf_ffn_gemm_ok(e, N) && nos[1] >= 3;
	/* per stream: its next range and step, the end of its last command; per range and stream
	 * the fence value and end of its last step; per range: the GEMM CUs' FFN is decided (1) */
	int nx[PF_S_N] = {0}, st[PF_S_N] = {0};
	double lend[PF_S_N] = {0}, vrest = 0; /* the GEMV CU's FFN ns of the ranges not decided */
	uint32_t *fv = calloc((size_t)R * PF_S_N, sizeof *fv);
	double *fend = calloc((size_t)R * PF_S_N, sizeof *fend),
	       *vq = calloc((size_t)R, sizeof *vq);
	double *aq = calloc((size_t)R + 1, sizeof *aq); /* the attention's ns from range q on */
	double *gs = calloc(2 * (size_t)R, sizeof *gs); /* range q's FFN GEMMs' ns (pf_gemm_ns) */
	struct pf_ost *os = calloc((size_t)R, sizeof *os);
	struct card_proj *p = calloc(1, sizeof *p);
	char *dec = calloc((size_t)R, 1);
	int *rt = calloc((size_t)R + 1, sizeof *rt); /* range q's rows: [rt[q], rt[q + 1]) */
	if (!fv || !fend || !vq || !aq || !gs || !os || !p || !dec || !rt) {
		r = -ENOMEM;
		goto out;
	}
	pf_ho_ranges(T, m->cr, rt);
	for (int j = 0; j < from; j++)
		nx[j] = R;
	for (int q = 0; q < R; q++) {
		os[q].sh_id = EE_PF_FENCE_SH0 + (uint32_t)q % EE_PF_NSH;
		vq[q] = ffg ? pf_ffn_gemv_ns(e, N, rt[q], rt[q + 1] - rt[q]) : 0;
		vrest += vq[q];
	}
	for (int q = R - 1; q >= 0 && ffg; q--)
		aq[q] = aq[q + 1] + pf_mh_att_ns(e, m, rt[q], rt[q + 1] - rt[q]);
	p->n = e->list.n; /* (the list's commands so far: a barrier before, all done) */
	double take_kv = card_proj_start(e, p, ABI_OP_KV_APPEND, 0);
	while (!r) {
		int q = nx[PF_S_O];
		if (q < R && !dec[q]) {
			/* the range's FFN on the GEMM CUs where its GEMMs end before the section
			 * would: before the GEMV CU would have run the ranges' FFN from this one
			 * on after what it has, or the attention its ranges from the next one */
			int n = rt[q + 1] - rt[q];
			gs[2 * q] =
			    pf_gemm_ns(e, N->moe ? &N->sh_gu : &N->gu, n, ABI_GEMM_F_SILU_MUL);
			gs[2 * q + 1] = N->moe ? pf_gemm_ns(e, &N->sh_down, n, 0)
					       : pf_gemm_ns(e, &N->down, n, ABI_GEMM_F_RESIDUAL);
			double g = gs[2 * q] + gs[2 * q + 1];
			/* the GEMMs of the ranges before that went to the GEMM CUs and are not issued
			 * yet (their streams lag o_proj's): they queue there before this range's */
			double pend = 0;
			for (int q2 = 0; q2 < q; q2++)
				if (os[q2].gemm)
					pend += (nx[PF_S_SHG] <= q2 ? gs[2 * q2] : 0) +
						(nx[PF_S_SHD] <= q2 ? gs[2 * q2 + 1] : 0);
			double a0 = card_proj_start(e, p, ABI_OP_MLA_ATTN_LANES, 0);
			double ta = nx[PF_S_ATT] > q ? fend[(size_t)PF_S_ATT * R + q]
						     : a0 + aq[nx[PF_S_ATT]] - aq[q + 1];
			double now = card_proj_start(e, p, ABI_OP_GEMV, lend[PF_S_O]);
			now = ta > now ? ta : now; /* (its o_proj after its attention) */
			double gf = card_proj_start(e, p, ABI_OP_GEMM_FP8, 0) + pend / pf->gemm_cus;
			double end = now + vrest - vq[q];
			double ae = a0 + aq[nx[PF_S_ATT] > q + 1 ? nx[PF_S_ATT] : q + 1];
			os[q].gemm = ffg && ((gf > now ? gf : now) + g <= (ae > end ? ae : end) ||
					     (pf->sh_force && q + 1 < R));
			pf->ffn_gemm += (uint64_t)os[q].gemm;
			vrest -= vq[q];
			dec[q] = 1;
		}
		for (int j = PF_S_SHG; j <= PF_S_SHD; j++)
			while (nx[j] < R && dec[nx[j]] && !os[nx[j]].gemm)
				nx[j]++;
		/* the step that could start first (its stream's range r after the stream before
		 * issued r's last step: then that step's end) */
		int best = -1;
		double bs = 0, ts[PF_S_N];
		for (int j = 0; j < PF_S_N; j++) {
			ts[j] = -1;
			q = nx[j];
			if (q >= R || (j > 0 && nx[j - 1] <= q))
				continue;
			enum pf_ostep o = ost[os[q].gemm][st[j]];
			uint32_t op = j == PF_S_COMB		      ? ABI_OP_COMBINE
				      : j == PF_S_ROPE		      ? ABI_OP_ROPE
				      : j == PF_S_ATT		      ? ABI_OP_MLA_ATTN_LANES
				      : j >= PF_S_SHG		      ? ABI_OP_GEMM_FP8
				      : j == PF_S_O && o == PF_O_TOPK ? ABI_OP_MOE_ROUTE
				      : j == PF_S_O && o == PF_O_XN   ? ABI_OP_RMSNORM
								      : ABI_OP_GEMV;
			double dep = st[j] ? lend[j] : j > 0 ? fend[(size_t)(j - 1) * R + q] : 0;
			double t = card_proj_start(e, p, op, dep);
			ts[j] = t;
			if (best < 0 || t < bs) {
				best = j;
				bs = t;
			}
		}
		/* of the steps that could start within PF_SLACK_NS of it, the one nearest the
		 * attention (the long pole once its ranges grow): the stream that feeds it would
		 * else wait behind the vector CU's COMBINEs */
		static const int prio[PF_S_N] = {PF_S_ATT, PF_S_ROPE, PF_S_PROJ, PF_S_COMB,
						 PF_S_O,   PF_S_SHD,  PF_S_SHG};
		for (int j = 0; j < PF_S_N && best >= 0; j++)
			if (ts[prio[j]] >= 0 && ts[prio[j]] <= bs + PF_SLACK_NS) {
				best = prio[j];
				break;
			}
		/* the KV appends of rows whose kv_a is done (their range's RoPE waited for it)
		 * where the firmware would wait anyway */
		int lim = rt[nx[PF_S_ROPE]];
		while (m->na < lim && (best < 0 || p->t + take_kv <= bs)) {
			int kn =
			    pf_kv_run(e, m->na, lim); /* (a command's rows: to its block's end) */
			if ((r = pf_kv_appends_rows(e, N, m->na, m->na + kn, m->kva)))
				goto out;
			m->na += kn;
			card_proj_run(e, p);
		}
		if (best < 0)
			break;
		q = nx[best];
		int t0 = rt[q], n = rt[q + 1] - t0, g = os[q].gemm;
		uint32_t i0 = e->list.n, *v = &fv[(size_t)best * R + q];
		e->cur_layer = best == PF_S_COMB ? lc : l;
		switch (best) {
		case PF_S_COMB:
			if (st[best] == 0) {
				r = pf_vec(e, ABI_OP_COMBINE, "combine (router order)", pf->yd,
					   f4(pf->cw, (uint64_t)t0 * k),
					   f4(pf->ci, (uint64_t)t0 * k),
					   f4(pf->ffn, (uint64_t)t0 * D), (uint32_t)n, (uint32_t)D,
					   0, 0, (uint32_t)(T * k), 0, 0, (uint32_t)k);
				if (!r)
					*v = card_fence_signal(e, e->list.n - 1, EE_PF_FENCE_COMB);
				break;
			}
			r = card_vecop(e, ABI_OP_RESIDUAL_ADD, "residual (rows)",
				       f4(pf->x, (uint64_t)t0 * D), f4(pf->ffn, (uint64_t)t0 * D),
				       0, f4(pf->x, (uint64_t)t0 * D), (uint32_t)n, (uint32_t)D, 0,
				       0, 0, 0, 0);
			if (!r && !same) /* (one CU runs both in order) */
				card_fence_wait_at(e, i0, EE_PF_FENCE_COMB, *v);
			if (!r)
				*v = card_fence_signal(e, e->list.n - 1, EE_PF_FENCE_RES);
			break;
		case PF_S_PROJ:
			if (st[best] == 0) {
				r = card_gemv_rows_range(e, "q_a|kv_a (gemv, rows)", &ng->r_qkva, T,
							 t0, t0 + n, &nv[0]);
				if (!r && from <= PF_S_COMB)
					card_fence_wait_at(e, i0, EE_PF_FENCE_RES,
							   fv[PF_S_COMB * R + q]);
			} else if (st[best] == 1 && c->q_lora_rank > 0) {
				r = card_gemv_rows_range(e, "q_b (gemv, rows)", &ng->r_qb, T, t0,
							 t0 + n, &nv[1]);
			} else {
				r = pf_mh_kvb(e, m, pf_mh_krow(m, rt, R, q),
					      pf_mh_krow(m, rt, R, q + 1), &nv[2]);
				if (!r)
					*v = card_fence_signal(e, e->list.n - 1, EE_PF_FENCE_KVB);
			}
			break;
		case PF_S_ROPE: {
			r = pf_mh_rope(e, m, pf_mh_krow(m, rt, R, q), pf_mh_krow(m, rt, R, q + 1),
				       t0, t0 + n);
			if (!r) {
				card_fence_wait_at(e, i0, EE_PF_FENCE_KVB, fv[PF_S_PROJ * R + q]);
				*v = card_fence_signal(e, e->list.n - 1, EE_PF_FENCE_ROPE);
			}
			break;
		}
		case PF_S_ATT: /* (after the streams before it: waits for the RoPEs) */
			r = pf_mh_att(e, m, t0, n, from < PF_S_ATT ? EE_PF_FENCE_ROPE : 0,
				      fv[PF_S_ROPE * R + q], v);
			break;
		case PF_S_O:
			r = pf_o_step(e, N, T, t0, n, fv[PF_S_ATT * R + q], m->nvo,
				      ost[g][st[best]], &os[q]);
			break;
		default: /* (the FFN's two steps on the GEMM CUs) */
			r = pf_o_step(e, N, T, t0, n, 0, m->nvo,
				      ost[1][nos[1] - 2 + best - PF_S_SHG], &os[q]);
		}
		e->cur_layer = l;
		if (r)
			break;
		card_proj_run(e, p);
		lend[best] = p->end[e->list.n - 1];
		int steps = best == PF_S_COMB	? 2
			    : best == PF_S_PROJ ? (c->q_lora_rank > 0 ? 3 : 2)
			    : best == PF_S_O	? nos[g] - (g ? 2 : 0)
						: 1;
		if (++st[best] == steps) { /* the range's last step */
			fend[(size_t)best * R + q] = p->end[e->list.n - 1];
			st[best] = 0;
			nx[best]++;
		}
	}
	if (!r && m->na < T)
		r = pf_kv_appends_rows(e, N, m->na, T, m->kva);
out:
	free(fv);
	free(fend);
	free(vq);
	free(aq);
	free(gs);
	free(os);
	free(p);
	free(dec);
	free(rt);
	return r;
}

/*
 * The end of a MoE layer with the next layer's whole attention beside it (pf_mh_run from its
 * COMBINE ranges on): the vector CU combines while the attention runs, where the attention waited
 * for every COMBINE. The next layer then skips its attention (pf.mh_done). Falls back to
 * pf_combine_ranges where the next layer's section would not run in ranges whole.
 */
static int pf_handover(struct ee *e, int T)
{
	struct ee_pf *pf = &e->pf;
	struct ee_layer *N = pf->next_L;
	int l = e->cur_layer, nl = l >= 0 ? l + 1 : l;
	struct pf_mh m;
	if (pf->merge_off || !pf->mha || !N->moe || !N->gv.r_kvb.ng || pf->pos_tab ||
	    !pf->one_rope || !card_pf_fold_post(e))
		return pf_combine_ranges(e, T);
	e->cur_layer = nl;
	int r = pf_mh_begin(e, N, T, &m);
	e->cur_layer = l;
	if (r)
		return r;
	int R = pf_ho_ranges(T, m.cr, NULL);
	/* (a section of up to PF_HO_ROWS_T rows goes where it fitted with an append a row: the
	 * MoE layers the block appends bring in there, 671B's at T = 512, ran 3.5% slower beside
	 * it, their split putting fewer experts on the GEMM CUs its FFN ranges hold) */
	int fit = pf_mh_fits(e, T, R, 24, T <= PF_HO_ROWS_T);
	if (!m.fz || !pf->ffn_early || !fit)
		return pf_combine_ranges(e, T);
	m.spread = 1;
	e->cur_layer = nl;
	r = pf_mh_run(e, &m, PF_S_COMB, l);
	e->cur_layer = l;
	pf->mh_done = !r;
	pf->handovers += !r;
	return r;
}

/* The projected ns of list command i (the dry timer's model; a GEMM on the GEMM CUs' shape). */
static double pf_cmd_ns(const struct ee *e, uint32_t i)
{
	uint32_t bw = 0, kclk = 0;
	card_dry_rates(e, &bw, &kclk);
	int64_t cyc = card_cmd_cycles(e, i, e->pf.gemm_abi_cu);
	return cyc > 0 && kclk ? (double)cyc * 1e6 / kclk : 0;
}

/* The projected ns of a GEMM of M rows over W (its epilogue flags) on one GEMM CU. */
static double pf_gemm_ns(const struct ee *e, const struct cmat *W, int M, uint32_t flags)
{
	struct abi_cmd c;
	uint32_t bw = 0, kclk = 0;
	memset(&c, 0, sizeof c);
	abi_cmd_hdr_set(&c.hdr, ABI_OP_GEMM_FP8, 0);
	c.u.gemm.m = (uint32_t)M;
	c.u.gemm.n = W->rows;
	c.u.gemm.k = W->cols;
	c.u.gemm.flags = ABI_GEMM_F_X_F32 | flags;
	card_dry_rates(e, &bw, &kclk);
	int64_t cyc = backend_cmd_cycles(
	    &c, bw, kclk, backend_blk_cu(backend_board(e->be), (uint32_t)e->pf.gemm_abi_cu));
	return cyc > 0 && kclk ? (double)cyc * 1e6 / kclk : 0;
}

/*
 * The rows path's experts split between the GEMV CU and the GEMM CUs (pf_moe_rows): one gate|up
 * and one down GEMM over exactly an expert's rows (M = its rows) on the GEMM CUs, for as long as
 * that shortens the projected span of the two sides (the dry timer's cycle model of each command;
 * LPT over the GEMM CUs), taking the experts in the order of the GEMV time each saves per GEMM
 * time it costs (an expert whose rows fill their last 16-row block badly saves the most: the
 * GEMV CU reads its weights once a block). used[nu] by row count (ascending), cnt[E] rows per
 * expert, cv[nu]: each one's projected GEMV ns, v0: the GEMV CU's other ns. sel[nu]: 1 where
 * the expert goes to the GEMM CUs, cg[nu]: its GEMM ns there. Returns how many go.
 */
static int pf_hyb_pick(const struct ee *e, const struct ee_layer *L, const int *used, int nu,
		       const int *cnt, const double *cv, double v0, char *sel, double *cg)
{
	const struct ee_pf *pf = &e->pf;
	double gl[ABI_MAX_CUS] = {0}, lv = v0, lg = 0;
	int ncu = pf->gemm_cus < (int)ABI_MAX_CUS ? pf->gemm_cus : (int)ABI_MAX_CUS, n = 0;
	int *ord = malloc(sizeof *ord * ((size_t)nu + 1));
	if (!ord)
		return 0;
	for (int u = 0; u < nu; u++) {
		int x = used[u];
		lv += cv[u];
		sel[u] = 0;
		cg[u] = pf_gemm_ns(e, &L->ex_gu[x], cnt[x], ABI_GEMM_F_SILU_MUL) +
			pf_gemm_ns(e, &L->ex_down[x], cnt[x], 0);
		ord[u] = u;
	}
	for (int i = 1; i < nu; i++) /* by saving per cost, descending (ties: more rows first) */
		for (int j = i; j > 0; j--) {
			int a = ord[j - 1], b = ord[j];
			double ra = cg[a] > 0 ? cv[a] / cg[a] : 0,
			       rb = cg[b] > 0 ? cv[b] / cg[b] : 0;
			if (ra > rb || (ra == rb && a > b))
				break;
			ord[j - 1] = b;
			ord[j] = a;
		}
	for (int i = 0; i < nu && ncu > 0; i++) {
		int u = ord[i], k = 0;
		for (int j = 1; j < ncu; j++)
			k = gl[j] < gl[k] ? j : k;
		double span = lv > lg ? lv : lg, nlg = gl[k] + cg[u] > lg ? gl[k] + cg[u] : lg;
		if ((lv - cv[u] > nlg ? lv - cv[u] : nlg) >= span)
			continue; /* (a later, shorter one may still fit) */
		lv -= cv[u];
		gl[k] += cg[u];
		lg = nlg;
		sel[u] = 1;
		n++;
	}
	free(ord);
	return n;
}

/* One phase of the split experts (the gate|ups, or the downs): the GEMV commands of table t
 * (groups [0, ng), fill: their rows) and the GEMM experts' (gm [ngm][3]: expert, first row,
 * rows), each next command the one of the side the projection frees first (the firmware starts
 * them in list order: a command whose CU is busy holds back the ones behind it); tv: when the
 * GEMV side is free (ns, projected). A gate|up GEMM waits for its own rows' GATHER, issued on
 * the vector CU right before it (EE_PF_FENCE_GATH). */
static int pf_moe_phase(struct ee *e, struct ee_layer *L, int T, struct gvtab *t, const int *fill,
			int ng, const int *gm, int ngm, int down, double tv)
{
	struct ee_pf *pf = &e->pf;
	uint64_t D = (uint64_t)e->c->hidden_size, Im = (uint64_t)e->c->moe_intermediate_size;
	int ncu = pf->gemm_cus < (int)ABI_MAX_CUS ? pf->gemm_cus : (int)ABI_MAX_CUS, nv = 0;
	double tg[ABI_MAX_CUS] = {0};
	if (ncu < 1)
		return -EINVAL;
	for (int g = 0, x = 0; g < ng || x < ngm;) {
		int k = 0;
		for (int j = 1; j < ncu; j++)
			k = tg[j] < tg[k] ? j : k;
		if (g < ng && (x >= ngm || tv <= tg[k])) {
			TRY(card_moe_gemv_rows_one(e,
						   down ? "experts down (gemv, rows)"
							: "experts gate|up silu (gemv, rows)",
						   t, fill, &g, &nv));
			tv += pf_cmd_ns(e, e->list.n - 1);
			continue;
		}
		int xe = gm[3 * x], n = gm[3 * x + 2];
		uint64_t r0 = (uint64_t)gm[3 * x + 1];
		uint32_t wait = 0;
		if (!down) { /* the expert's rows together (the vector CU, in order) */
			TRY(pf_vec(e, ABI_OP_GATHER, "gather expert rows (GEMM CU)", pf->xn, 0,
				   f4(pf->gi, r0), f4(pf->xg, r0 * D), (uint32_t)n, (uint32_t)D, 0,
				   0, (uint32_t)T, 0, 0, 0));
			wait = card_fence_signal(e, e->list.n - 1, EE_PF_FENCE_GATH);
		}
		uint32_t i0 = e->list.n;
		if (down)
			TRY(card_gemm_m(e, "expert down (gemm, rows)", f4(pf->hg, r0 * Im), 0,
					&L->ex_down[xe], f4(pf->yd, r0 * D), 0, 0, 0, 0, 0, 0, 0,
					n));
		else
			TRY(card_gemm_m(e, "expert gate|up silu (gemm, rows)", f4(pf->xg, r0 * D),
					0, &L->ex_gu[xe], f4(pf->hg, r0 * Im), 0,
					ABI_GEMM_F_SILU_MUL, 0, 0, 0, 0, 0, n));
		x++;
		if (wait)
			card_fence_wait_at(e, i0, EE_PF_FENCE_GATH, wait);
		tg[k] += pf_cmd_ns(e, e->list.n - 1);
	}
	return 0;
}

/*
 * The rows path's experts after the routes, both sides in one schedule (the split's, pf_moe_rows):
 * the GEMV CU's commands in order (the shared gate|up where it goes here, the GEMV experts'
 * gate|up groups, the shared down, their downs' groups: one CU runs them in order, so a down
 * follows its gate|up), and per GEMM CU expert (gm[3 ngm] {expert, first row, rows}, most rows
 * first) its rows' gather on the vector CU, its gate|up GEMM (waits for the gather, signals
 * EE_PF_FENCE_EX0 + its index) and its down GEMM (waits for that), in the order a projection of
 * their start times gives (card_proj): an expert's down starts once its own gate|up is done,
 * where a barrier between the phases held every CU until the last gate|up. Without fence ids for
 * every GEMM expert, -ENOSPC (the caller runs the phases).
 */
static int pf_moe_sched(struct ee *e, struct ee_layer *L, int T, const int *fill, int ng,
			const int *gm, int ngm, int sh)
{
	struct ee_pf *pf = &e->pf;
	struct ee_gv_layer *g = &L->gv;
	uint64_t D = (uint64_t)e->c->hidden_size, Im = (uint64_t)e->c->moe_intermediate_size;
	if (ngm > (int)EE_PF_NEX || e->xc)
		return -ENOSPC;
	/* the GEMV CU's step (0 the shared gate|up, 1 the gate|up groups, 2 the shared down, 3
	 * the down groups, 4 done), its next group; the next GEMM expert's gate|up and down */
	int sv = sh ? 0 : 1, ig = 0, xg = 0, xd = 0, nvu = 0, nvd = 0, r = 0;
	uint32_t *fx = calloc((size_t)ngm + 1, sizeof *fx);
	double *gend = calloc((size_t)ngm + 1, sizeof *gend);
	struct card_proj *p = calloc(1, sizeof *p);
	if (!fx || !gend || !p) {
		r = -ENOMEM;
		goto out;
	}
	card_proj_run(e, p); /* (the list since the routes' read) */
	while (sv < 4 || xg < ngm || xd < ngm) {
		double tv = sv < 4 ? card_proj_start(e, p, ABI_OP_GEMV, 0) : -1;
		double tg = -1, td = -1;
		if (xg < ngm) {
			double a = card_proj_start(e, p, ABI_OP_GATHER, 0);
			double b = card_proj_start(e, p, ABI_OP_GEMM_FP8, 0);
			tg = a > b ? a : b;
		}
		if (xd < xg)
			td = card_proj_start(e, p, ABI_OP_GEMM_FP8, gend[xd]);
		int best = 0; /* 0 GEMV, 1 a gate|up GEMM, 2 a down GEMM: the first to start */
		double bs = tv;
		if (tg >= 0 && (bs < 0 || tg < bs)) {
			best = 1;
			bs = tg;
		}
		if (td >= 0 && (bs < 0 || td <= bs))
			best = 2;
		if (best == 0) {
			if (sv == 0 || sv == 2) {
				r = card_gemv_rows_cmd(e,
						       sv ? "shared down (gemv, rows)"
							  : "shared gate|up silu (gemv, rows)",
						       sv ? &g->r_shdown : &g->r_shgu, T);
				sv++;
			} else {
				int dn = sv == 3;
				r = ig < ng ? card_moe_gemv_rows_one(
						  e,
						  dn ? "experts down (gemv, rows)"
						     : "experts gate|up silu (gemv, rows)",
						  dn ? &pf->t_xdn : &pf->t_xgu, fill, &ig,
						  dn ? &nvd : &nvu)
					    : 0;
				if (ig >= ng) {
					ig = 0;
					sv += sv == 1 && !sh
						  ? 2
						  : 1; /* (the shared down where it goes) */
				}
			}
		} else {
			int x = best == 1 ? xg : xd, xe = gm[3 * x], n = gm[3 * x + 2];
			uint64_t r0 = (uint64_t)gm[3 * x + 1];
			uint32_t i0 = e->list.n, id = EE_PF_FENCE_EX0 + (uint32_t)x;
			if (best == 1) { /* the expert's rows together (the vector CU, in order) */
				r = pf_vec(e, ABI_OP_GATHER, "gather expert rows (GEMM CU)", pf->xn,
					   0, f4(pf->gi, r0), f4(pf->xg, r0 * D), (uint32_t)n,
					   (uint32_t)D, 0, 0, (uint32_t)T, 0, 0, 0);
				uint32_t gath =
				    r ? 0 : card_fence_signal(e, e->list.n - 1, EE_PF_FENCE_GATH);
				i0 = e->list.n;
				if (!r)
					r = card_gemm_m(e, "expert gate|up silu (gemm, rows)",
							f4(pf->xg, r0 * D), 0, &L->ex_gu[xe],
							f4(pf->hg, r0 * Im), 0, ABI_GEMM_F_SILU_MUL,
							0, 0, 0, 0, 0, n);
				if (!r) {
					card_fence_wait_at(e, i0, EE_PF_FENCE_GATH, gath);
					fx[x] = card_fence_signal(e, e->list.n - 1, id);
				}
			} else {
				r = card_gemm_m(e, "expert down (gemm, rows)", f4(pf->hg, r0 * Im),
						0, &L->ex_down[xe], f4(pf->yd, r0 * D), 0, 0, 0, 0,
						0, 0, 0, n);
				if (!r)
					card_fence_wait_at(e, i0, id, fx[x]);
			}
		}
		if (r)
			break;
		card_proj_run(e, p);
		if (best == 1)
			gend[xg++] = p->end[e->list.n - 1];
		else if (best == 2)
			xd++;
	}
out:
	free(fx);
	free(gend);
	free(p);
	return r;
}

/* The rows path's MoE after the routes: the used experts in order of their row count, each
 * one's rows gathered together (token order), one GEMV command for the shared gate|up (m = T,
 * in blocks of 16) and for the used experts' gate|up one per run of groups with the same row
 * count (a group per block of at most 16 of an expert's rows: its full blocks, m = 16, and its
 * tail; no expert reads its weights more often than its blocks), the same for the downs, then
 * the combine in router order. Where the board has GEMM CUs, some experts run on them beside
 * the GEMV CU (pf_hyb_pick; MOECARD_PF_HYBRID=0: never): their rows normalized and gathered on
 * the vector CU first. Every row's bits are the same on either CU (fp8_gemm's rows
 * equal the GEMV groups'). uof: [E] scratch (an expert's place among the used ones). */
static int pf_moe_rows(struct ee *e, struct ee_layer *L, int T, const int *cnt, int *uof)
{
	const struct config *c = e->c;
	struct ee_pf *pf = &e->pf;
	struct ee_gv_layer *g = &L->gv;
	int D = c->hidden_size, E = c->n_routed_experts, k = c->num_experts_per_tok;
	int M = FP8_GEMV_MAX_M, nu = 0, ng = 0, r = 0;
	int *used = pf->xe, *base = pf->xr0, *fill = pf->xm; /* by used expert, then the groups */
	int hyb = pf_hyb_ok(e, L);
	for (int m = 1; m <= T; m++) /* by row count, then expert */
		for (int x = 0; x < E; x++)
			if (cnt[x] == m) {
				uof[x] = nu;
				used[nu++] = x;
			}
	for (int u = 0, rr = 0; u < nu; rr += cnt[used[u++]]) {
		base[u] = rr;
		fill[u] = 0;
	}
	for (int i = 0; i < (pf->nsub ? pf->nsub : T); i++) /* an expert's rows in token order */
		for (int j = 0, t = pf->nsub ? pf->sub[i] : i; j < k; j++) {
			int u = uof[pf->hidx[t * k + j]];
			int rr = base[u] + fill[u]++;
			pf->hgi[rr] = t;
			pf->hci[t * k + j] = rr;
		}
	/* the groups, in order of their rows: the tails (1..15 rows), then every full block (split:
	 * the full blocks first, the GEMV CU's longest commands before the GEMM CUs') */
	int *ge = pf->hgi + (size_t)T * k; /* (scratch past the gather index: see card_pf_init) */
	for (int mi = 1; mi <= M; mi++)
		for (int u = 0; u < nu; u++) {
			/* expert u's groups of m rows: its tail (m < M) or its full blocks (m == M) */
			int m = hyb ? M + 1 - mi : mi;
			int n = cnt[used[u]], full = n / M;
			int nb = m < M ? n % M == m : full, r0 = base[u] + (m < M ? full * M : 0);
			for (int b = 0; b < nb; b++) {
				if (ng + 1 > pf->t_xgu.cap)
					return -E2BIG;
				ge[3 * ng] = used[u];
				ge[3 * ng + 1] = r0 + b * M;
				ge[3 * ng++ + 2] = m;
			}
		}
	/* the split: the experts from cut on (the most rows) to the GEMM CUs */
	int ngm = 0, *gm = NULL;
	double *cv = NULL;
	if (hyb) {
		int sh = !pf->ffn_early;
		cv = calloc((size_t)nu + 1, sizeof *cv);
		gm = malloc(sizeof(int) * 3 * ((size_t)nu + 1));
		if (!cv || !gm) {
			r = -ENOMEM;
			goto out;
		}
		for (int i = 0; i < ng; i++) {
			used[i] = ge[3 * i];
			base[i] = ge[3 * i + 1];
			fill[i] = ge[3 * i + 2];
		}
		if ((r = card_moe_gemv_rows_build(e, L, used, base, fill, ng)))
			goto out;
		for (int a = 0, b; a < ng; a = b) { /* a run of one row count: its share each */
			for (b = a + 1; b < ng && fill[b] == fill[a];)
				b++;
			double ns = (card_gemv_groups_ns(e, &pf->t_xgu, a, b, fill[a]) +
				     card_gemv_groups_ns(e, &pf->t_xdn, a, b, fill[a])) /
				    (b - a);
			for (int i = a; i < b; i++)
				cv[uof[used[i]]] += ns;
		}
		/* (the used experts by row count again, for the cut) */
		for (int x = 0; x < E; x++)
			if (cnt[x] > 0)
				used[uof[x]] = x;
		double v0 = 0; /* the shared expert's rows on the GEMV CU in these phases */
		if (sh)
			v0 = 3.0 * T * D * c->n_shared_experts * c->moe_intermediate_size /
			     card_gemv_peak(e);
		char *sel = calloc((size_t)nu + 1, 1);
		double *cg = calloc((size_t)nu + 1, sizeof *cg);
		if (!sel || !cg) {
			free(sel);
			free(cg);
			r = -ENOMEM;
			goto out;
		}
		if (pf->hyb_half) /* (the half of most rows) */
			for (int u = 0; u < nu; u++)
				sel[u] = u >= nu / 2;
		else
			pf_hyb_pick(e, L, used, nu, cnt, cv, v0, sel, cg);
		/* the r-space holds the used experts in order; the GEMM CUs' by their GEMM time,
		 * longest first (LPT), each from its first row */
		ngm = 0;
		for (int u = 0, rr = 0; u < nu; rr += cnt[used[u++]])
			if (sel[u]) {
				int i = ngm++;
				for (; i > 0 && cg[uof[gm[3 * (i - 1)]]] < cg[u]; i--)
					memcpy(gm + 3 * i, gm + 3 * (i - 1), 3 * sizeof *gm);
				gm[3 * i] = used[u];
				gm[3 * i + 1] = rr;
				gm[3 * i + 2] = cnt[used[u]];
			}
		pf->hyb_experts += (uint64_t)ngm;
		int nk = 0; /* the GEMV CU's groups: those of the other experts */
		for (int i = 0; i < ng; i++)
			if (!sel[uof[ge[3 * i]]]) {
				ge[3 * nk] = ge[3 * i];
				ge[3 * nk + 1] = ge[3 * i + 1];
				ge[3 * nk++ + 2] = ge[3 * i + 2];
			}
		free(sel);
		free(cg);
		ng = nk;
	}
	for (int i = 0; i < ng; i++) {
		used[i] = ge[3 * i];
		base[i] = ge[3 * i + 1];
		fill[i] = ge[3 * i + 2];
	}
	uint32_t R = (uint32_t)T, RK = (uint32_t)(T * k);
	double t0 = now_s();
	if ((r = card_write(e, pf->gi, pf->hgi, 4 * (size_t)T * k)) ||
	    (r = card_write(e, pf->ci, pf->hci, 4 * (size_t)T * k)) ||
	    (r = card_write(e, pf->cw, pf->hw, 4 * (size_t)T * k)) ||
	    (ng > 0 && (r = card_moe_gemv_rows(e, L, used, base, fill, ng))))
		goto out;
	e->t_host += now_s() - t0;
	int sh = !pf->ffn_early; /* (else done beside the attention: pf_o_range) */
	pf->ffn_early = 0;
	double tv = 0;
	if (sh && !ngm) { /* (with the split: in its schedule) */
		if ((r = card_gemv_rows_cmd(e, "shared gate|up silu (gemv, rows)", &g->r_shgu, T)))
			goto out;
		tv += pf_cmd_ns(e, e->list.n - 1);
	}
	/* (folded norm: the rows before it; the experts' loaders normalize them; without
	 * MOECARD_PF_XIDX=0 the experts' loaders read their rows in place through gi) */
	if (pf->gather && (r = pf_vec(e, ABI_OP_GATHER, "gather expert rows",
				      card_pf_fold_post(e) ? pf->x : pf->xn, 0, pf->gi, pf->xg, RK,
				      (uint32_t)D, 0, 0, R, 0, 0, 0)))
		goto out;
	if (!ngm) {
		if ((r = card_barrier(e)) ||
		    (r = card_moe_gemv_rows_cmds(e, "experts gate|up silu (gemv, rows)", &pf->t_xgu,
						 fill, ng)) ||
		    (r = card_barrier(e)) ||
		    (sh &&
		     (r = card_gemv_rows_cmd(e, "shared down (gemv, rows)", &g->r_shdown, T))) ||
		    (r = card_moe_gemv_rows_cmds(e, "experts down (gemv, rows)", &pf->t_xdn, fill,
						 ng)) ||
		    (r = card_barrier(e)))
			goto out;
	} else {
		/* the GEMM experts' rows normalized where the GEMV CU's loaders fold the norm (unless
		 * done with o_proj's ranges), then each one's gathered before its gate|up */
		if (card_pf_fold_post(e) && !pf->xn_early && (r = pf_xn_rows(e, L, 0, T)))
			goto out;
		r = pf->sched_off ? -ENOSPC : pf_moe_sched(e, L, T, fill, ng, gm, ngm, sh);
		if (!r)
			r = card_barrier(e);
		if (r && r != -ENOSPC)
			goto out;
	}
	if (ngm && r == -ENOSPC) { /* the two phases, a barrier between */
		if (sh && ((r = card_gemv_rows_cmd(e, "shared gate|up silu (gemv, rows)",
						   &g->r_shgu, T))))
			goto out;
		if (sh)
			tv = pf_cmd_ns(e, e->list.n - 1);
		if ((r = pf_moe_phase(e, L, T, &pf->t_xgu, fill, ng, gm, ngm, 0, tv)) ||
		    (r = card_barrier(e)))
			goto out;
		tv = 0;
		if (sh) {
			if ((r = card_gemv_rows_cmd(e, "shared down (gemv, rows)", &g->r_shdown,
						    T)))
				goto out;
			tv += pf_cmd_ns(e, e->list.n - 1);
		}
		if ((r = pf_moe_phase(e, L, T, &pf->t_xdn, fill, ng, gm, ngm, 1, tv)) ||
		    (r = card_barrier(e)))
			goto out;
	}
	free(cv);
	free(gm);
	int early = pf_next_early(e, T);
	if (early < 0)
		return early;
	if (early)
		return pf_handover(e, T);
	for (int i = 0; i < pf->nsub; i++) { /* the rows read after it, each alone */
		uint64_t t = (uint64_t)pf->sub[i];
		TRY(pf_vec(e, ABI_OP_COMBINE, "combine (router order, a row read after it)", pf->yd,
			   f4(pf->cw, t * k), f4(pf->ci, t * k), f4(pf->ffn, t * D), 1, (uint32_t)D,
			   0, 0, RK, 0, 0, (uint32_t)k));
		TRY(card_barrier(e));
		TRY(card_vecop(e, ABI_OP_RESIDUAL_ADD, "residual (a row read after it)",
			       f4(pf->x, t * D), f4(pf->ffn, t * D), 0, f4(pf->x, t * D), 1,
			       (uint32_t)D, 0, 0, 0, 0, 0));
	}
	if (pf->nsub)
		return card_barrier(e);
	TRY(pf_vec(e, ABI_OP_COMBINE, "combine (router order)", pf->yd, pf->cw, pf->ci, pf->ffn, R,
		   (uint32_t)D, 0, 0, RK, 0, 0, (uint32_t)k));
	TRY(card_barrier(e));
	TRY(card_vecop(e, ABI_OP_RESIDUAL_ADD, "residual (rows)", pf->x, pf->ffn, 0, pf->x, R,
		       (uint32_t)D, 0, 0, 0, 0, 0));
	return card_barrier(e);
out:
	free(cv);
	free(gm);
	return r;
}

/* MoE FFN of T rows: routes, the rows grouped by expert, one gate|up and one down GEMM per
 * routed expert over its rows, the shared expert over all rows, the combine in router order. */
static int pf_moe(struct ee *e, struct ee_layer *L, int T)
{
	const struct config *c = e->c;
	struct ee_pf *pf = &e->pf;
	int D = c->hidden_size, E = c->n_routed_experts, k = c->num_experts_per_tok;
	int Im = c->moe_intermediate_size;
	if (!L->sh_gu.rows)
		return -ENOTSUP; /* the shared down writes ffn first (as card_moe) */
	TRY(pf_route(e, L, T));
	int *cnt = calloc((size_t)E + 1, sizeof *cnt), *base = calloc((size_t)E + 1, sizeof *base);
	if (!cnt || !base) {
		free(cnt);
		free(base);
		return -ENOMEM;
	}
	if (!pf_rows(e, T) || pf->gather)
		pf->nsub = 0; /* (the subset: the rows path reading rows in place) */
	for (int i = 0; i < T * k; i++)
		cnt[pf->hidx[i]] += !pf->nsub;
	for (int i = 0; i < pf->nsub; i++)
		for (int j = 0; j < k; j++)
			cnt[pf->hidx[pf->sub[i] * k + j]]++;
	if (pf_rows(e, T)) {
		int r = pf_moe_rows(e, L, T, cnt, base);
		free(cnt);
		free(base);
		return r;
	}
	for (int x = 0; x < E; x++)
		base[x + 1] = base[x] + cnt[x];
	memset(cnt, 0, sizeof *cnt * ((size_t)E + 1));
	for (int t = 0; t < T; t++) /* an expert's rows in token order */
		for (int j = 0; j < k; j++) {
			int x = pf->hidx[t * k + j], at = base[x] + cnt[x]++;
			pf->hgi[at] = t;
			pf->hci[t * k + j] = at;
		}
	int r = 0;
	double t0 = now_s();
	if ((r = card_write(e, pf->gi, pf->hgi, 4 * (size_t)T * k)) ||
	    (r = card_write(e, pf->ci, pf->hci, 4 * (size_t)T * k)) ||
	    (r = card_write(e, pf->cw, pf->hw, 4 * (size_t)T * k)))
		goto out;
	e->t_host += now_s() - t0;
	uint32_t R = (uint32_t)T, RK = (uint32_t)(T * k);
	if ((r = pf_gemm(e, "shared gate|up silu (rows)", pf->xn, &L->sh_gu, pf->hb,
			 ABI_GEMM_F_SILU_MUL, T)) ||
	    (r = pf_vec(e, ABI_OP_GATHER, "gather expert rows", pf->xn, 0, pf->gi, pf->xg, RK,
			(uint32_t)D, 0, 0, R, 0, 0, 0)) ||
	    (r = card_barrier(e)))
		goto out;
	for (int x = 0; x < E && !r; x++)
		if (base[x + 1] > base[x])
			r = card_gemm_m(e, "expert gate|up silu (rows)",
					f4(pf->xg, (uint64_t)base[x] * D), 0, &L->ex_gu[x],
					f4(pf->hg, (uint64_t)base[x] * Im), 0, ABI_GEMM_F_SILU_MUL,
					0, 0, 0, 0, 0, base[x + 1] - base[x]);
	if (r || (r = card_barrier(e)) ||
	    (r = pf_gemm(e, "shared down (rows)", pf->hb, &L->sh_down, pf->ffn, 0, T)))
		goto out;
	for (int x = 0; x < E && !r; x++)
		if (base[x + 1] > base[x])
			r = card_gemm_m(e, "expert down (rows)", f4(pf->hg, (uint64_t)base[x] * Im),
					0, &L->ex_down[x], f4(pf->yd, (uint64_t)base[x] * D), 0, 0,
					0, 0, 0, 0, 0, base[x + 1] - base[x]);
	if (r || (r = card_barrier(e)) ||
	    (r = pf_vec(e, ABI_OP_COMBINE, "combine (router order)", pf->yd, pf->cw, pf->ci,
			pf->ffn, R, (uint32_t)D, 0, 0, RK, 0, 0, (uint32_t)k)) ||
	    (r = card_barrier(e)) ||
	    (r = card_vecop(e, ABI_OP_RESIDUAL_ADD, "residual (rows)", pf->x, pf->ffn, 0, pf->x, R,
			    (uint32_t)D, 0, 0, 0, 0, 0)))
		goto out;
	r = card_barrier(e);
out:
	free(cnt);
	free(base);
	return r;
}

int card_pf_layer(struct ee *e, struct ee_layer *L, int T)
{
	struct ee_pf *pf = &e->pf;
	if (pf->mh_done) { /* (its attention went beside the layer before's COMBINE) */
		pf->mh_done = 0;
	} else {
		pf->xn_early = 0; /* (set by this layer's o_proj ranges, read by its MoE) */
		TRY(pf_mla(e, L, T));
	}
	return L->moe ? pf_moe(e, L, T) : pf_dense(e, L, T);
}

/* Whether row t of T gets logits under lg (MODEL_LG_*; MODEL_LG_SEQ: the last row of each
 * sequence slot's run in pf.hseq). */
static int pf_wanted(const struct ee_pf *pf, int T, int lg, int t)
{
	return lg == MODEL_LG_ALL || t == T - 1 ||
	       (lg == MODEL_LG_SEQ && pf->hseq[t + 1] != pf->hseq[t]);
}

/* The final norm of the rows, the logits asked for (lg: MODEL_LG_*, packed in row order) and the
 * normed rows (hidden). */
static int pf_head(struct ee *e, int T, float *logits, int lg, float *hidden)
{
	const struct config *c = e->c;
	struct ee_pf *pf = &e->pf;
	int D = c->hidden_size, V = c->vocab_size;
	e->cur_layer = -1;
	/* with the head on the GEMV CU and no hidden state asked for, the final norm runs in the
	 * head's loader (FP8_GEMV_RMSNORM) */
	int on = e->gv && e->gv_head, fold = on && !hidden;
	if (!fold)
		TRY(card_vecop(e, ABI_OP_RMSNORM, "final norm (rows)", pf->x, 0, e->final_norm,
			       pf->xn, (uint32_t)T, (uint32_t)D, 0, 0, 0, (float)c->rms_norm_eps,
			       0));
	int *ids = on ? pf->ids : NULL;
	if ((logits || ids) && on) { /* the head on the GEMV CU: runs of wanted rows, at most 16
					a command */
		TRY(card_barrier(e));
		for (int t0 = 0, j = 0; t0 < T;) {
			if (!pf_wanted(pf, T, lg, t0)) {
				t0++;
				continue;
			}
			int n = 1;
			while (n < 16 && t0 + n < T && pf_wanted(pf, T, lg, t0 + n))
				n++;
			/* greedy rows: the head's 8-byte record a row comes back (FP8_GEMV_ARGMAX) */
			TRY(card_gemv_rows_top1(
			    e, ids ? "lm_head (gemv, rows, greedy)" : "lm_head (gemv, rows)",
			    &e->head, f4(fold ? pf->x : pf->xn, (uint64_t)t0 * D), pf->logits, n,
			    &pf->t_head, fold ? e->final_norm : 0, ids ? pf->top1 : 0));
			TRY(card_flush(e));
			double h0 = now_s();
			if (ids) {
				uint32_t rec[2 * 16];
				TRY(card_read(e, pf->top1, rec, 8 * (size_t)n));
				for (int i = 0; i < n; i++) {
					if (rec[2 * i] >= (uint32_t)V)
						return -EIO; /* a record the head cannot write */
					ids[j + i] = (int)rec[2 * i];
				}
				e->top1_tokens += (uint64_t)n;
			} else {
				TRY(card_read(e, pf->logits, logits + (size_t)j * V,
					      sizeof(float) * (size_t)n * V));
			}
			e->t_host += now_s() - h0;
			t0 += n;
			j += n;
		}
	}
	TRY(card_flush(e));
	double h0 = now_s();
	if (hidden)
		TRY(card_read(e, pf->xn, hidden, sizeof(float) * (size_t)T * D));
	if (logits && !(e->gv && e->gv_head))
		for (int t = 0, j = 0; t < T; t++) { /* row by row, as the token loop */
			if (!pf_wanted(pf, T, lg, t))
				continue;
			TRY(card_read(e, f4(pf->xn, (uint64_t)t * D), e->hxn, sizeof(float) * D));
			TRY(kern_matmul(&e->kc, &e->w->lm_head, e->hxn, 1,
					logits + (size_t)j++ * V));
			e->host_head_b += (double)e->w->lm_head.rows * e->w->lm_head.cols * 2;
		}
	e->t_host += now_s() - h0;
	return 0;
}

static void pf_embed(const struct qmat *E, int t, float *out)
{
	for (int i = 0; i < E->cols; i++)
		out[i] = E->fmt == QMAT_BF16
			     ? bf16_to_f32(((const uint16_t *)E->w)[(size_t)t * E->cols + i])
			     : qmat_get(E, t, i);
}

const uint32_t *card_pf_atab_host(const struct ee *e, uint64_t tab)
{
	return e->pf.atab_h + (tab - e->pf.atab) / 4;
}

/* Rows [a, a + n) of a matrix with 128-row scale blocks take their scale rows whole from block
 * a / 128 on: they start a block, or fit in one. */
static int pf_block_rows(int a, int n)
{
	return a % 128 == 0 || a % 128 + n <= 128;
}

int card_pf_mha_shape(const struct config *c)
{
	int nope = c->qk_nope_head_dim, vd = c->v_head_dim, rope = c->qk_rope_head_dim;
	int H = c->num_attention_heads, ok = !pf_env_off("MOECARD_PF_MHA") && nope >= 1 &&
					     vd >= 1 && vd <= MLA_MHA_MAX_DV &&
					     nope + rope <= MLA_MHA_MAX_DK && H <= MLA_MAX_H;
	/* each head's W_UK and W_UV rows of kv_b striped with their scale rows (card_gemv.c) */
	for (int h = 0; h < H && ok; h++)
		ok = pf_block_rows(h * (nope + vd), nope) &&
		     pf_block_rows(h * (nope + vd) + nope, vd);
	return ok;
}

/* Whether the attention of the rows in pf.atab_h (at positions p0..) models faster in the
 * non-absorbed form (its commands of mla_mha_rows_max rows, plus kv_b over the p0 rows before
 * the chunk again at 90% of the GEMV CU's peak) than in the absorbed one (rows commands of
 * ABI_MLAL_MAX_ROWS): at a few rows the absorbed form's one pass wins, its MACs
 * notwithstanding. The GEMVs the forms differ in over the chunk's own rows (W_UK^T and W_UV, or
 * kv_b) do the same MACs. */
static int pf_mha_faster(const struct ee *e, int T, int p0)
{
	const struct config *c = e->c;
	struct hls_build b;
	card_attn_build(e, 0, 0, &b);
	int H = c->num_attention_heads, nope = c->qk_nope_head_dim, rope = c->qk_rope_head_dim;
	int vd = c->v_head_dim, L = (int)e->gv_lanes, R = (int)ABI_MLAL_MAX_ROWS;
	int most = mla_mha_rows_max(L, H, nope + rope, vd), mf = card_mla_fmt(e->kv_fmt);
	if (e->attn_fp8)
		mf |= MLA_ATTN_FP8;
	int64_t abs = 0, mha = 0, x;
	most = most < R ? most : R;
	for (int t0 = 0; t0 < T && most > 0; t0 += R) {
		x = mla_attn_lanes_rows_cycles(&b, L, e->pf.atab_h + 2 * t0,
					       T - t0 < R ? T - t0 : R, H, c->kv_lora_rank, rope,
					       mf, (int)e->attn_macs, (int)e->attn_imacs, NULL);
		abs += x > 0 ? x : INT64_MAX / 4;
	}
	for (int t0 = 0; t0 < T && most > 0; t0 += most) {
		x = mla_attn_mha_cycles(&b, L, e->pf.atab_h + 2 * t0, T - t0 < most ? T - t0 : most,
					H, nope, rope, vd, (int)e->attn_macs, NULL);
		mha += x > 0 ? x : INT64_MAX / 4;
	}
	uint32_t kclk = e->be ? backend_abi_board(e->be)->cu_clk_khz : 0;
	double ghz = kclk ? kclk / 1e6 : b.clock_mhz / 1e3, peak = card_gemv_peak(e);
	double redo =
	    (double)p0 * H * (nope + vd) * c->kv_lora_rank / (0.9 * (peak > 0 ? peak : 1));
	return most > 0 && (double)mha / ghz + redo < (double)abs / ghz;
}

/*
 * The attention form of a forward of T rows. pf.chain: the rows are one sequence's positions
 * p0..p0+T-1 that start a prompt (p0 = 0) or continue the one the K/V machinery holds (p0 ==
 * pf.kvx_n, each layer's kv_a rows kept in pf.kvp: the chunks and forwards of a prompt, until
 * a truncation below kvx_n or a forward_seqs call; more than 16 rows, so an MTP verification's
 * few rows after the prompt stay in the decode's absorbed form), within its
 * capacity, on the rows path, and not forward_seqs' (a sequence's rows there keep the absorbed
 * form whichever rows share their forward, so its output does not depend on the batch): its
 * kv_a rows are kept. pf.mha: the chain, and the non-absorbed form models faster
 * (pf_mha_faster; its attention always costs fewer MACs there: nope + rope + vd a
 * query-position-head against 2 kv_lora + rope, and kv_b over the rows does the MACs of W_UK^T
 * and W_UV over them).
 * MOECARD_PF_MHA=1 takes it wherever it can run, =0 never.
 */
static void pf_mha_rule(struct ee *e, int T)
{
	struct ee_pf *pf = &e->pf;
	int p0 = pf->hpos[0];
	pf->chain = pf->mha = 0;
	if (pf->seqs || !pf->mha_ok || !pf->attn_rows || !pf_rows(e, T) || p0 + T > pf->kvx_cap ||
	    (p0 != 0 && (p0 != pf->kvx_n || !pf->kvp || T <= FP8_GEMV_MAX_M)))
		return;
	for (int t = 1; t < T; t++)
		if (pf->hseq[t] != pf->hseq[0] || pf->hpos[t] != p0 + t)
			return;
	pf->chain = 1;
	pf->mha = pf->mha_force || pf_mha_faster(e, T, p0);
}

int card_pf_attn_rows(struct ee *e, int T)
{
	struct ee_pf *pf = &e->pf;
	pf->attn_rows = e->gv_attn && T > 1 && pf_env_off("MOECARD_ATTN_ROWS") == 0;
	for (int t = 0; t < T && pf->attn_rows; t++) {
		pf->atab_h[2 * t] = (uint32_t)pf->hseq[t];
		pf->atab_h[2 * t + 1] = (uint32_t)pf->hpos[t] + 1;
	}
	pf_mha_rule(e, T);
	return pf->attn_rows ? card_write(e, pf->atab, pf->atab_h, 8 * (size_t)T) : 0;
}

/* The rows in pf.hseq / pf.hpos through every layer and the head. */
static int pf_forward(struct ee *e, const int *tok, int T, float *logits, int lg, float *hidden)
{
	const struct config *c = e->c;
	struct ee_pf *pf = &e->pf;
	int D = c->hidden_size;
	double t0 = now_s();
	for (int t = 0; t < T; t++)
		pf_embed(&e->w->embed_tokens, tok[t], pf->hrow + (size_t)t * D);
	TRY(card_write(e, pf->x, pf->hrow, sizeof(float) * (size_t)T * D));
	/* positions that are not one run go to RoPE as a table */
	pf->pos_tab = 0;
	for (int t = 1; t < T && !pf->rope_runs; t++)
		pf->pos_tab |= pf->hpos[t] != pf->hpos[t - 1] + 1;
	if (pf->pos_tab)
		TRY(card_write(e, pf->posw, pf->hpos, sizeof(int) * (size_t)T));
	TRY(card_pf_attn_rows(e, T));
	e->t_host += now_s() - t0;
	e->list.n = 0;
	/* (a forward that failed midway leaves none of a layer's hand-overs behind) */
	pf->ffn_early = pf->route_early = pf->qa_early = pf->xn_early = pf->mh_done = 0;
	pf->kvx_n = 0; /* (the prompt's rows are whole again once every layer ran) */
	/* the last layer's MoE only over the rows whose logits are wanted where no hidden rows
	 * are (the prompt's other rows fed the KV caches: nothing reads their last MoE output) */
	pf->nsub = 0;
	for (int t = 0; t < T && !hidden && lg != MODEL_LG_ALL && !pf->sub_off; t++)
		if (pf_wanted(pf, T, lg, t))
			pf->sub[pf->nsub++] = t;
	int nsub = pf->nsub < T ? pf->nsub : 0;
	for (int l = 0; l < c->num_hidden_layers; l++) {
		e->cur_layer = l;
		pf->next_L = l + 1 < c->num_hidden_layers ? &e->L[l + 1] : NULL;
		pf->nsub = l + 1 == c->num_hidden_layers ? nsub : 0;
		int r = card_pf_layer(e, &e->L[l], T);
		pf->nsub = 0;
		if (r)
			return r;
	}
	pf->next_L = NULL;
	pf->kvx_n = pf->chain ? pf->hpos[T - 1] + 1 : 0;
	pf->mha_tokens += pf->mha ? (uint64_t)T : 0;
	return pf_head(e, T, logits, lg, hidden);
}

int card_pf_forward(struct ee *e, const int *tok, int T, int pos, float *logits, int all,
		    float *hidden)
{
	if (T < 1 || T > e->pf.chunk)
		return -EINVAL;
	for (int t = 0; t < T; t++) {
		e->pf.hseq[t] = 0;
		e->pf.hpos[t] = pos + t;
	}
	return pf_forward(e, tok, T, logits, all ? MODEL_LG_ALL : MODEL_LG_LAST, hidden);
}

int card_pf_forward_rows(struct ee *e, const int *tok, int T, const int *seq, const int *pos,
			 float *logits, int lg)
{
	if (T < 1 || T > e->pf.chunk || lg < MODEL_LG_ALL || lg > MODEL_LG_SEQ)
		return -EINVAL;
	memcpy(e->pf.hseq, seq, sizeof *seq * (size_t)T);
	memcpy(e->pf.hpos, pos, sizeof *pos * (size_t)T);
	e->pf.seqs = 1;
	int r = pf_forward(e, tok, T, logits, lg, NULL);
	e->pf.seqs = 0;
	return r;
}
