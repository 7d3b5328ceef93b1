/*
 * card_engine_impl.h - what the files of the card scheduler share (private to host/sched/card_*.c):
 * the engine state (struct ee), the card-side matrices and layers, the expert cache's scheduler
 * state (struct ee_xc), and the functions one file calls in another:
 *   card_engine.c   open/close, weight placement, command builders, the forward lowering;
 *   card_experts.c  the expert cache on the card: slots, fills, detached ring-1 lists, routing;
 *   card_stats.c    statistics, the profile, dry-mode timing and the what-if.
 * Data flow: engine ops (card_engine.c) -> per layer the lowering builds command lists ->
 * card_flush submits them (backend.h) -> after each MoE router card_xc_route decides hits,
 * fills and host runs (card_experts.c) -> card_stats reports what the card clock measured.
 */
#ifndef MOECARD_CARD_ENGINE_IMPL_H
#define MOECARD_CARD_ENGINE_IMPL_H

#include <stdint.h>
#include <stdio.h>
#include <time.h>
#include "backend/backend.h"
#include "engine/engine.h"
#include "load/ckpt.h"
#include "model/kernels.h"
#include "sched/card_engine.h"
#include "sched/expert_cache.h"
#include "hls/fp8_gemv/fp8_gemv.h"
#include "prof/prof.h"

#define EE_MAX_TOPK 64
#define EE_TIMEOUT_MS 600000u /* host ms to wait for one list */
/* Host memory traffic rate of the modeled host parts of a token (router and lm_head when they
 * run on the host, sampling over the logits, the embedding row): a modeled figure, so that the
 * end-to-end time does not depend on how busy the host running the emulation is. */
#define EE_HOST_MODEL_GBPS 20.0
#define EE_CMD_TIMEOUT 200u /* hang timeout per command, 100 us units (20 ms card time) */

#define TRY(x)                                                                                     \
	do {                                                                                       \
		int r_ = (x);                                                                      \
		if (r_)                                                                            \
			return r_;                                                                 \
	} while (0)

/* An FP8 matrix in card memory: codes [rows][cols] (a SiLU pair: gate rows then up rows) and
 * weight_scale_inv [ceil(rows/128)][ceil(cols/128)] (pair: both arrays back to back). */
struct cmat {
	uint64_t w, sw; /* card addresses */
	int rows, cols; /* of one matrix of the pair */
};

/* A matrix striped over the GEMV CU's lanes (hls/fp8_gemv/fp8_gemv.h): the same offset in every
 * lane bank, its shape and its layout flags (FP8_GEMV_SILU_MUL pair, FP8_GEMV_W_BF16). */
struct smat {
	uint64_t off;	/* bytes into each lane bank */
	int n, k;	/* rows (of one half of a pair), columns */
	uint32_t lay;	/* layout flags */
	uint32_t lane0; /* the lane of tile 0 (the stripe set's rotation) */
};

/* A GEMV group table: card address (activation bank) and the host copy the dry timing reads. */
struct gvtab {
	uint64_t addr;		/* card address */
	struct fp8_gemv_grp *g; /* [cap] host copy */
	int ng, cap;		/* entries used, allocated */
	int m;			/* rows of x per group (0: 1) */
	struct gvtab *views;	/* card_gemv_rows_cmd: the commands' views when one command's x
				   would pass the CU's x buffer (NULL until needed) */
	int n_views;
	int per; /* a rows table: groups per block of 16 rows (block b's at b * per; 0: ng) */
};

/* Most head groups the decode's attention runs in, o_proj a slice of K each (ee.o_groups). */
#define EE_MAX_OG 16
#define EE_ATTN_GROUPS 8 /* the default (MOECARD_ATTN_GROUPS) */
#define EE_OG_VIEWS (EE_MAX_OG * (EE_MAX_OG + 1) / 2)
#define EE_OG_VIEW(d) ((d) * ((d)-1) / 2)

/* The striped matrices and static group tables of one layer (card_gemv.c). */
struct ee_gv_layer {
	struct smat qa, kva, gu, down, shgu, shdown;
	struct smat qb[EE_MAX_OG]; /* q_b in ee.q_slices slices of rows (a head group's each; q_proj
				      without q_lora, then one) */
	struct smat o[EE_MAX_OG];  /* o_proj in ee.o_groups slices of K (a head group's columns
				     each), chained by FP8_GEMV_CONT */
	/* views of t_uv, t_o: for d head groups (d dividing ee.o_groups), group j's heads and
	 * o_proj slices at EE_OG_VIEW(d) + j */
	struct gvtab v_uv[EE_OG_VIEWS], v_o[EE_OG_VIEWS], v_qb[EE_OG_VIEWS], v_ukt[EE_OG_VIEWS];
	struct smat *ukt, *uv;					   /* [H] per-head W_UK^T, W_UV */
	struct smat *exgu, *exdn;				   /* [E] routed experts */
	struct gvtab t_qkva, t_qb, t_ukt, t_uv, t_o, t_gu, t_down; /* static */
	struct gvtab t_mgu, t_mdn; /* MoE: rewritten after each routing (back to back) */
	/* the router on the card (ee.gv_route) */
	struct smat gate;    /* mlp.gate.weight, bf16 striped */
	struct gvtab t_gate; /* the gate GEMV: xn -> rlog */
	uint64_t bias;	     /* e_score_correction_bias f32 [E], 0 when absent */
	uint64_t rlog;	     /* f32 [E] the gate's logits */
	uint64_t rout;	     /* the route's output: idx int32 [k], then w f32 [k] */
	uint64_t tmpl;	     /* the MoE tables' templates, 2 (k+1) records */
	uint32_t stride;     /* bytes between two experts' stripe sets */
	/* the rows path (card_prefill.c, at most FP8_GEMV_MAX_M rows): the same matrices over the
	 * batched forward's row buffers (pf), built on first use; r_on 1 once built */
	struct gvtab r_qkva, r_qb, r_ukt, r_uv, r_o, r_gu, r_down, r_shgu, r_shdown;
	struct smat *kn;    /* [H] W_UK rows of kv_b per head (the non-absorbed prefill) */
	struct gvtab r_kvb; /* kv_b over the rows' c' into the K/V rows: kn[h], uv[h] */
	uint64_t kvp;	    /* this layer's kv_a rows of the prompt (in pf.kvp; 0: pf.kva) */
	int kvp_p0;	    /* the row of kvp r_qkva's kv_a groups write first (card_pf_kva) */
	int r_on;
};

/* One decoder layer on the card. */
struct ee_layer {
	uint64_t in_norm, post_norm;   /* f32 [hidden] */
	uint64_t q_a_norm, kv_a_norm;  /* f32 [q_lora], [kv_lora] */
	struct cmat q_a, q_b, kv_a, o; /* q_b is q_proj when q_lora_rank is null */
	struct cmat kv_b;	       /* [H*(nope+v)][kv_lora]: W_UV rows are read in place */
	uint64_t uk_t, uk_t_s;	       /* W_UK^T per head: codes [H][kv_lora][nope], scales
				         [H][ceil(kv_lora/128)][ceil(nope/128)] */
	struct cmat gu, down;	       /* dense FFN */
	struct cmat *ex_gu, *ex_down;  /* [E] routed experts */
	struct cmat sh_gu, sh_down;    /* shared experts (rows 0 when none) */
	uint64_t kv;		       /* f32 [max_seq][kv_lora+rope] latent cache (act bank) */
	uint64_t kv_off;	       /* the striped cache's stripe set (ee.gv_attn) */
	/* both: sequence slot s's cache is at kv (kv_off) + s * ee.kv_slot_b */
	const struct layer_weights *lw;
	int moe;
	struct ee_gv_layer gv; /* with the GEMV CU (ee.gv) */
};

/* A command list being built. */
struct ee_list {
	struct abi_cmd cmd[BACKEND_MAX_LIST];
	const char *what[BACKEND_MAX_LIST];	  /* label per command (profile) */
	const struct gvtab *gt[BACKEND_MAX_LIST]; /* GEMV: its table (dry timing) */
	int16_t layer[BACKEND_MAX_LIST];	  /* decoder layer per command (profile) */
	uint32_t n;
};

/* The non-absorbed prefill's pipeline (lists without the expert cache): the attention's row
 * ranges done (signalled by one CU's commands, which complete in order) */
#define EE_PF_FENCE_ATT 1u
#define EE_PF_FENCE_GATE 2u /* the router gate's row ranges done (the GEMV CU's, in order) */
#define EE_PF_FENCE_COMB 3u /* a MoE layer's COMBINE ranges done (the vector CU's, in order) */
#define EE_PF_FENCE_RES 4u  /* and their residual adds */
#define EE_PF_FENCE_GATH 5u /* the rows the GEMM CUs' experts read, gathered (pf_moe_hyb) */
#define EE_PF_FENCE_KVB 6u /* the next layer's kv_b ranges done, beside a COMBINE (the GEMV CU's) */
#define EE_PF_FENCE_ROPE 7u /* and their RoPEs (the vector CU's, in order) */
#define EE_PF_FENCE_XN 8u   /* the rows the GEMM CUs' shared expert reads, normalized */
#define EE_PF_FENCE_SH0 9u  /* a range's shared gate|up on a GEMM CU done: id SH0 + range % NSH */
#define EE_PF_NSH 16u
#define EE_PF_NFENCE 25u /* (ids below it: EE_CHAIN_FENCE and those above) */
/* a GEMM CU expert's gate|up done (pf_moe_sched): id EX0 + its index, up to NEX experts; the ids
 * of the expert cache's DMA fences, which lists of the split never hold (it runs without) */
#define EE_PF_FENCE_EX0 EE_PF_NFENCE
#define EE_PF_NEX (ABI_MAX_FENCES - EE_PF_NFENCE)

/* Batched prefill (card_prefill.c): the activations of up to `chunk` tokens, row-major in the
 * activation bank, and the index tables of the MoE's gather / combine. */
struct ee_pf {
	int chunk;	 /* rows per batched forward (MOECARD_PREFILL_CHUNK, default 512) */
	int rows16;	 /* chunk rounded up to 16 (the GEMV groups' m) */
	int ncu;	 /* GEMM CUs of the board (pf_gemm spreads a GEMM over them) */
	int gemm_cus;	 /* of them really there (ncu is at least 1) */
	int gemm_abi_cu; /* the ABI index of the first of them (the cycle model's shape) */
	int hyb_off;	 /* MOECARD_PF_HYBRID=0: the rows path's experts all on the GEMV CU */
	int hyb_half;	 /* MOECARD_PF_HYBRID=half: the half with most rows on the GEMM CUs
			    wherever the split may run (the tests' both sides) */
	int one_gath;	 /* one vector CU runs GATHER and RMSNORM (in order) */
	int xn_early;	 /* this layer's xn was normalized with o_proj's ranges (pf_o_range) */
	uint64_t x, xn, qa, q, kva, kvrow, qcat, lat, ao, ffn, hb; /* [chunk][...] f32 */
	uint64_t ob; /* [chunk][hidden] f32: o_proj's sums between its slices (FP8_GEMV_CONT) */
	uint64_t xg, hg, yd; /* MoE: gathered rows [chunk k][D], hidden, down outputs */
	uint64_t gi, ci, cw; /* gather index [chunk k], combine index and weight [chunk][k] */
	uint64_t rlog, rout; /* router logits [rows16][E], routes [chunk][2 k] (card router) */
	uint64_t logits;     /* head logits [16][V] (head on the card) */
	uint64_t top1;	     /* the head's greedy records [16] {u32 index, f32 value} (ARGMAX) */
	int *ids;	     /* this forward wants each wanted row's greedy token here, not its
				logits (forward_seqs_top1; the head on the GEMV CU) */
	struct gvtab t_gate; /* the gate over the rows (rows16 / 16 groups) */
	struct gvtab t_head; /* the head over up to 16 rows */
	struct gvtab t_xgu, t_xdn; /* rows path: the used experts' gate|up and downs */
	int rows_gemm;		   /* MOECARD_CARD_ROWS=0: at most 16 rows take the GEMMs too */
	int rows_big;		   /* more than 16 rows run on the GEMV CU too, in blocks of 16
				      (the rows tables hold rows16 / 16 blocks; card_pf_rule) */
	int fold_off;		   /* MOECARD_PF_FOLD=0 (card_pf_fold_post) */
	int gather;		   /* MOECARD_PF_XIDX=0: the rows path's experts read GATHER's copy
				      xg, not their rows in place (FP8_GEMV_XIDX over gi) */
	int *xe, *xr0, *xm;	   /* host [t_xgu.cap] the experts' groups: expert, first row
				      of xg, rows (<= 16) */
	uint64_t posw;		   /* int32 [chunk] the rows' positions (ROPE's position table) */
	int pos_tab;	  /* this forward's RoPE reads posw (its positions are not one run) */
	int rope_runs;	  /* MOECARD_ROPE_TABLE=0: a RoPE command per run of positions instead */
	int *hseq, *hpos; /* host [chunk] each row's sequence slot and position */
	int *sub, nsub;	  /* host [chunk]: the last layer's MoE runs only these nsub rows (those
			     whose logits the forward wants, no hidden rows asked for; 0: all) */
	int sub_off;	  /* MOECARD_PF_LAST_ROWS=0: the last layer's MoE over every row */
	uint64_t atab;	  /* u32 [chunk][2] {slot, n_ctx}: the striped attention's rows */
	uint32_t *atab_h; /* host copy of atab as this forward wrote it */
	int attn_rows;	  /* this forward's attention runs as rows commands (atab written) */
	/* the non-absorbed attention (pf_mla_mha): the K/V rows kv_b expands from a prompt's c'
	 * rows, [kvx_cap][H (nope + vd) + rope] f32; kv_a's raw rows of the prompt per layer,
	 * [layers][kvx_cap][kv_lora + rope] f32 (0: only a chunk's, in kva); the prompt's rows so
	 * far (kvx_n: the chunks of one ee_forward continue it; chain: this forward does) */
	uint64_t kvx, kvp;
	int kvx_cap, kvx_n, chain;
	int mha_ok;	     /* the K/V rows are placed (MOECARD_PF_MHA=0: never) */
	int mha;	     /* this forward runs the non-absorbed form */
	int mha_force;	     /* MOECARD_PF_MHA=1 at open: wherever it can run, not where faster */
	int seqs;	     /* the forward is forward_seqs' (card_pf_forward_rows) */
	struct gvtab *views; /* [rows16 / 16] the gate's commands (card_gemv_rows) */
	int32_t *hidx, *hgi, *hci; /* host [chunk k] routes, gather, combine index */
	float *hw, *hrow, *hlog;   /* host [chunk k] weights, [chunk D] rows, [E] logits */
	/* statistics of forwards of more than one token (either path) since the restart */
	uint64_t tokens, batched;    /* prompt tokens; of them through the batched path */
	uint64_t mha_tokens;	     /* rows of forwards in the non-absorbed form (pf.mha) */
	uint64_t hyb_experts;	     /* routed experts (per layer) the GEMM CUs ran (pf_moe_rows) */
	uint64_t handovers;	     /* layers whose attention went beside the COMBINE before */
	uint64_t ffn_gemm;	     /* o_proj ranges whose FFN that needs no routes ran on the GEMM
				      CUs (pf_mh_run) */
	uint32_t fv[ABI_MAX_FENCES]; /* the last value signalled on each EE_PF_FENCE_* id */
	int att_parts;		     /* MOECARD_PF_ATT_PARTS: the attention's row ranges (12) */
	int one_att;	 /* one striped attention CU (the ranges' fence completes in order) */
	int one_gv;	 /* the board has one GEMV CU (its commands run in order) */
	int ffn_late;	 /* MOECARD_PF_FFN_EARLY=0: the FFN after the attention */
	int ffn_early;	 /* this layer's route-free FFN went with o_proj's ranges */
	int route_early; /* and its router's gate and top-k */
	int one_vec;	 /* one vector CU for COMBINE and one for RESIDUAL_ADD */
	int qa_early;	 /* q_a|kv_a, q_b went beside the layer before's COMBINE */
	int mh_done;	 /* this layer's whole attention went beside it (pf_handover) */
	int merge_off;	 /* MOECARD_PF_MERGE=0: no pf_handover (the attention after the COMBINE) */
	int sh_gemv;	 /* MOECARD_PF_SH_GEMM=0: the FFN that needs no routes (the dense FFN, the
			    shared expert) stays on the GEMV CU in o_proj's ranges (pf_mh_run) */
	int sched_off;	 /* MOECARD_PF_MOE_SCHED=0: the split's gate|up and down phases with a
			    barrier between (pf_moe_phase), not one schedule (pf_moe_sched) */
	int sh_force;	 /* MOECARD_PF_SH_GEMM=1: on the GEMM CUs in every range but the last,
			    wherever it may (the tests' both sides) */
	int one_rope;	 /* one CU runs ROPE (in order) */
	int kv_one;	 /* MOECARD_PF_KV_ROWS=0: a KV append command a row (pf_kv_run) */
	struct ee_layer *next_L;    /* the forward's next layer (pf_next_early), NULL: the last */
	double card_ns, link_ns;    /* modeled card busy / link time of those forwards */
	double host_b;		    /* bytes the modeled host parts read */
	double macs, gemm_ns, peak; /* GEMM MACs, GEMM card ns, MACs per ns of one GEMM CU */
	double gv_macs, gv_ns;	    /* the same of the GEMV commands (the rows path) */
	int active;		    /* a batched forward is being lowered (GEMM accounting) */
	/* the prompt: the forwards of more than one token since the restart before the first
	 * decode forward (one token, or an MTP draft); the per-token figures of card_stats are the
	 * other forwards' (decode, MTP verify) */
	int in_prompt;
	uint64_t p_tokens, p_cmds, p_subs;
	double p_card_ns, p_link_ns, p_route_b, p_head_b;
};

struct ee {
	struct backend *be; /* the card (NULL in dry mode) */
	const struct config *c;
	const struct weights *w;
	int dry; /* what-if: lists are timed, not run */
	/* the GEMV CU (card_gemv.c): every resident matrix striped over its lanes */
	int gv;			  /* 1: lowering through GEMV commands */
	uint32_t gv_lanes;	  /* lanes = lane banks 0..gv_lanes-1 */
	uint32_t gv_axi_bits;	  /* lane port width */
	uint32_t gv_rows;	  /* rows of x per GEMV PE cycle (moecard,gemv-rows) */
	uint32_t gv_f32;	  /* its f32 products a lane a cycle (moecard,gemv-f32-macs) */
	uint64_t gv_base, gv_cap; /* the stripe arena: offset in every lane bank, bytes */
	uint64_t gv_cur;	  /* bytes of the arena used */
	uint64_t gv_tiles;	  /* tiles placed: the next rotation, so small matrices spread */
	int gv_attn;		  /* 1: the latent cache striped over the lanes (mla_attn_lanes) */
	int o_groups;		  /* o_proj's slices of K (1..EE_MAX_OG, a head group's v columns
				     each; with gv_attn), chained by FP8_GEMV_CONT: the decode's
				     attention may run in head groups of whole slices, the GEMV CU
				     taking W_UV and the o_proj slices of each group while the
				     next one's attention runs (card_attn_split chooses) */
	int split_p, split_g;	  /* card_attn_split's last choice: position + 1 and groups */
	int q_slices;		  /* q_b's slices of rows: o_groups when its head groups' rows are
				     whole 128-row blocks, q_lora and the folded append, else 1; with
				     them the groups' q_b, W_UK^T and RoPE run beside the attention
				     of the group before too */
	int kv_fold;		  /* 1: the token loop's append takes kv_a's raw row and does the
				     kv_a_layernorm and RoPE in its input stage (needs gv_attn;
				     MOECARD_KV_FOLD=0 turns it off) */
	uint32_t attn_macs;	  /* its f32 MACs per lane per cycle (board) */
	uint32_t attn_imacs;	  /* its FP8 datapath's integer MACs per lane per cycle (board) */
	uint32_t attn_passes;	  /* its head passes (board) */
	uint32_t attn_exp_ii;	  /* its exp unit's cycles per exp (board) */
	uint32_t kv_fmt;	  /* enum abi_kv_fmt of the cache records */
	int attn_fp8;		  /* the attention's FP8 datapath (--attn-datapath fp8) */
	int gv_route;		  /* 1: the MoE router runs on the card (moe_route CU) */
	int gv_head;		  /* 1: lm_head (and the MTP head) run on the GEMV CU */
	uint64_t gv_logits;	  /* f32 [vocab] logits on the card */
	uint64_t gv_top1;	  /* the head's greedy record {u32 index, f32 value} (ARGMAX) */
	int top1;	      /* ee_head: the greedy token instead of the logits (forward_top1) */
	int top1_id;	      /* ... read back here */
	uint64_t top1_tokens; /* decode tokens whose logits stayed on the card */
	struct smat head, mtp_head; /* bf16 striped lm_head, MTP shared head (may equal head) */
	struct gvtab t_head, t_mtp_head;
	struct gvtab t_head_top1;	  /* t_head with FP8_GEMV_ARGMAX into gv_top1 */
	double host_route_b, host_head_b; /* bytes the host's router / lm_head read (modeled) */
	int route_check; /* MOECARD_ROUTE_CHECK=1: each card routing re-run on the host */
	uint64_t route_checked, route_diff; /* decisions checked, differing (idx or w bits) */
	int max_seq;
	int n_seq;	    /* sequence slots: a latent cache each (engine_ops.forward_seqs); slot 0
			       is the engine's own sequence */
	uint64_t kv_slot_b; /* bytes between two slots' caches of a layer */
	int cur_seq;	    /* the slot the token loop's lists append to and attend over */
	int n_hbm;	    /* banks used for weights */
	uint32_t next_bank; /* round-robin cursor */
	uint32_t act_bank;  /* bank of activations and KV */
	struct ee_layer *L; /* [n_layers + 1] (the last is MTP when present) */
	int n_layers;
	/* activations (card) */
	uint64_t x, xn, qa, q, kva, kvrow, qcat, lat, ao, ffn, rw, tab;
	uint64_t ob;		/* f32 [hidden]: o_proj's sums between its slices (FP8_GEMV_CONT) */
	uint64_t *hb;		/* [topk+1] FFN hidden rows, f32 [inter] each */
	uint64_t final_norm;	/* model.norm f32 [hidden] */
	uint64_t mtp_head_norm; /* MTP shared_head.norm f32 [hidden] */
	int pf_on;		/* 1: prompts of more than one token go through the batched path */
	/* the prefill rule (card_pf_rule): the dry what-if at the chunk found the token loop
	 * faster on this board, so prompts past the rows path run token by token */
	int pf_loop;
	/* the rule's what-if (its two rates) and its prompt length (0: none ran), which --stats
	 * reuses when it asks for the same length */
	struct card_pf_whatif pf_rule_w;
	int pf_rule_T;
	struct ee_pf pf; /* its buffers and statistics */
	/* host */
	struct pool *pool;
	struct kern_ctx kc;		  /* lm_head / eh_proj (BF16: not quantized) */
	float *hx, *hxn, *rlog, *cat, *u; /* [hidden], [hidden], [E], [2 hidden], [hidden] */
	float *mtp_hid;			  /* [hidden] MTP shared_head.norm output of the last row */
	struct ee_list list;
	int chain_off;	    /* MOECARD_BARRIER_FENCES=0: keep every barrier (card_fence_chain) */
	uint32_t chain_val; /* the last value signalled on EE_CHAIN_FENCE */
	struct ee_xc *xc;   /* expert cache (--expert-slots), NULL = every expert resident */
	struct expert_trace_writer *xt; /* --expert-trace (engine_ops.expert_trace), NULL = off */
	float *xt_x; /* [hidden] residual stream read back for the trace look-ahead */
	int cur_layer;
	float softmax_scale;
	/* statistics */
	uint64_t tokens, subs0, cmds0; /* tokens since the statistics restarted, counters then */
	uint64_t card0, link0;	       /* modeled card busy / link ns then */
	double t_sched, t_wait, t_host, t_wall; /* s */
	double dry_ns;				/* dry mode: modeled card ns */
	double dry_op_ns[ABI_OP_COUNT];		/* dry mode: command ns by opcode (summed) */
	double dry_side_ns; /* dry mode: ns the GEMV CU and the striped attention ran at once */
	uint64_t dry_cur;   /* dry mode: the next fake address's offset */
	int dry_bad;	    /* dry mode: a command the timing models reject */
	/* allocations to free */
	struct backend_buf **bufs;
	size_t n_bufs, cap_bufs;
};

/* --- expert cache state (card_experts.c) --------------------------------------------------- */

/* One edge of a command's [t_start, t_end) on the card timeline. */
struct ee_xev {
	uint64_t t; /* card ns */
	int kind;   /* +1/-1 DMA fill start/end, +2/-2 CU command start/end */
};

/* A command's [t0, t1) on the card timeline, kept until the DMA statistics account for it. */
struct ee_xiv {
	uint64_t t0, t1; /* card ns */
	int cu;		 /* 1: a CU command of a ring 0 list, 0: an expert fill (either ring) */
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
/* The fence of card_fence_chain (lists without the expert cache, which owns the ids above) */
#define EE_CHAIN_FENCE 0u
/* The decode's head groups (card_attn_groups) signal on prefill fence ids, never in the same list
 * (each id's values rise: EE_PF_* counters): W_UK^T of a group done, the append, a group's RoPE. */
#define EE_DEC_FENCE_UK EE_PF_FENCE_KVB
#define EE_DEC_FENCE_AP EE_PF_FENCE_ROPE
#define EE_DEC_FENCE_RP EE_PF_FENCE_XN
/* MOECARD_BARRIER_FENCES=0: lists keep every barrier (A/B of card_fence_chain) */
int card_chain_off(void);
/* The one CU of the board that implements op (the firmware can start op nowhere else), or -1. */
int card_only_cu(const struct abi_board *b, uint32_t op);

struct ee_xc {
	struct expert_cache cache;     /* keys layer * E + expert, layers [0, n_layers] incl. MTP */
	struct expert_slot_layout lay; /* one slot's parts */
	uint64_t *slot_addr;	       /* [n_slots] card address of each slot */
	int host_mode;		       /* 0 off, 1 auto (modeled cost), 2 always */
	int from_board;		       /* --expert-slots board: slots until the card is full */
	int prefetch;		       /* 1: look-ahead prefetch on */
	uint32_t h2c[ABI_MAX_DMA];     /* H2C-capable channel indices */
	int n_h2c;
	double dma_bps, dma_lat_s; /* modeled fill rate per channel, bytes/s; per fill, s */
	double host_bps;	   /* modeled host expert rate, weight bytes/s */
	double gemm_s;		   /* modeled card time of one expert's gate|up + down, s */
	int gemm_cus;		   /* the board's GEMM CUs (>= 1), which run the experts */
	uint32_t fence_val[ABI_MAX_FENCES]; /* last value signalled per fence id */
	uint32_t next_fence;		    /* round-robin fence id cursor */
	/* this layer step, by router rank j */
	int slot[EE_MAX_TOPK];	    /* slot read by the GEMMs, -1 = run on the host */
	uint32_t fid[EE_MAX_TOPK];  /* fence the gate|up waits on, 0 = none */
	uint32_t fval[EE_MAX_TOPK]; /* its value */
	uint64_t hres[EE_MAX_TOPK]; /* card f32 [hidden]: route_w * y of a host-run expert */
	int pf_key[EE_MAX_TOPK];    /* prefetch fills queued for the down chain: slot */
	int pf_exp[EE_MAX_TOPK], pf_layer[EE_MAX_TOPK], pf_ch[EE_MAX_TOPK], n_pf;
	uint64_t bg_fills; /* background fills of host-run misses (--expert-host auto) */
	float *hid, *hout, *hres_x, *plog; /* host [inter], [hidden], [hidden], [E] scratch */
	int host_add_cmd;		   /* list index of the first host merge, -1 none */
	double host_layer_s;		   /* modeled host seconds of this layer's host experts */
	struct ee_xev *ev;		   /* [2 * BACKEND_MAX_LIST] timeline sweep scratch */
	int32_t *key0;			   /* [n_slots] slot keys before a re-pin (PIN) */
	uint64_t pin_fills;		   /* slots filled by re-pinning */
	FILE *events;			   /* --expert-events */
	/* statistics since the last restart */
	uint64_t accesses, hits, miss_dma, miss_host, pf_issued, pf_used, pf_wasted, evictions;
	uint64_t pf_pred, pf_pred_hit;	    /* predicted experts, of which the router then chose */
	double dma_bytes;		    /* bytes filled over the link */
	double dma_busy_ns, dma_exposed_ns; /* card time with a fill in flight; of it, no CU busy */
	double host_s, host_exposed_ns; /* modeled host expert time; part not hidden by the card */
	int pred[EE_MAX_TOPK], pred_layer; /* last prediction (layer, experts), for its accuracy */
	/* detached fills (backend with BACKEND_CAP_RINGS): prefetches and background fills go into
	 * a list of their own on ring 1 that runs across layer steps; a later step's GEMM on such a
	 * slot waits for its fence (cross-ring) unless the list is known complete */
	int async;		     /* 1: detached fills on; 0: every fill in ring 0's list */
	struct ee_xdf df[EE_XC_NDF]; /* fills of the list being built (submitted at the flush) */
	int n_df;
	struct ee_xdf dfly[EE_XC_NDF]; /* fills of the ring 1 list in flight */
	int n_dfly;
	uint64_t dl_fence;		/* backend fence of that list, 0 = none in flight */
	uint64_t dl_t0;			/* card time bound before which none of its fills started */
	struct abi_cmd *dl_cmd;		/* [BACKEND_MAX_LIST] its commands */
	uint32_t next_dfence;		/* cursor over the detached fence ids */
	uint32_t *pend_fid, *pend_fval; /* [n_slots] fence of a detached fill in flight, 0 = none */
	uint64_t df_fills, df_failed;	/* detached fills issued; of them, failed (slot emptied) */
	uint64_t df_busy_steps;		/* steps that issued no detached fill: the list was busy */
	double drain_ns;		/* card time spent waiting for detached fills alone (a
					   rewind): idle card time outside ring 0's busy time */
	/* DMA statistics over the card timeline: commands not yet accounted for, time accounted */
	struct ee_xiv *iv;
	size_t n_iv, cap_iv;
	size_t cap_ev;		 /* entries of ev */
	uint64_t t_done, t_seen; /* accounted up to; latest t_end seen */
};

static inline double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec * 1e-9;
}

static inline struct ee *ee_of(struct engine *en)
{
	return en->impl;
}

/* --- card_engine.c: placement, command lists, lowering ----------------------------------- */

/* Allocates bytes in bank (or the next weight bank when bank < 0) and writes src (if any). */
int card_place(struct ee *e, int bank, const void *src, size_t bytes, uint64_t *addr);
/* The activation buffers (ee.x, xn, ..., hb[]) in the activation bank. */
int card_place_acts(struct ee *e);
/* Writes / reads n bytes at a placed card address. 0 or a negative errno. */
int card_write(struct ee *e, uint64_t addr, const void *src, size_t n);
int card_read(struct ee *e, uint64_t addr, void *dst, size_t n);
/* Next command of the list (NULL: the list was full and its submission failed). */
struct abi_cmd *card_cmd(struct ee *e, enum abi_op op, const char *what);
/* Signals the next value of fence id (its EE_PF_* counter, e->pf.fv) on command i of the list;
 * returns it. */
uint32_t card_fence_signal(struct ee *e, uint32_t i, uint32_t id);
/* Makes the command issued at list index i0 wait for value v of fence id; none when the list
 * was submitted since (then it completed whole, and the value with it). */
void card_fence_wait_at(struct ee *e, uint32_t i0, uint32_t id, uint32_t v);
int card_barrier(struct ee *e);
int card_gemm(struct ee *e, const char *what, uint64_t a, const struct cmat *W, uint64_t y,
	      uint32_t flags, uint64_t rw, uint64_t w_off, uint64_t sw_off, int n, int k);
/* card_gemm over M rows of a (row stride lda elements, 0 = dense) into y (ldy). */
int card_gemm_m(struct ee *e, const char *what, uint64_t a, uint32_t lda, const struct cmat *W,
		uint64_t y, uint32_t ldy, uint32_t flags, uint64_t rw, uint64_t w_off,
		uint64_t sw_off, int n, int k, int M);
/* Places one layer's plain FP8 matrices for the fp8_gemm CUs (also beside the striped copies
 * when the batched prefill runs on a GEMV board). */
int card_layer_plain(struct ee *e, struct ee_layer *L, const struct layer_weights *lw, char *err,
		     size_t errlen);
int card_vecop(struct ee *e, enum abi_op op, const char *what, uint64_t x, uint64_t x2, uint64_t w,
	       uint64_t out, uint32_t rows, uint32_t cols, uint32_t lda, uint32_t ldo, uint32_t pu,
	       float pf, uint64_t tab);
/* Submits the list and waits for it (dry mode: times it). */
int card_flush(struct ee *e);
/* The lowering of one layer's MLA, dense FFN and MoE FFN into the list. */
int card_mla(struct ee *e, const struct ee_layer *L, int p);
int card_post_norm(const struct ee *e, const struct ee_layer *L);
int card_dense(struct ee *e, const struct ee_layer *L);
int card_moe(struct ee *e, struct ee_layer *L, const int *idx);

/* --- card_prefill.c: batched prefill ------------------------------------------------------ */

/* Decides whether prompts go through the batched path (fp8_gemm, GATHER and COMBINE on the
 * board, no expert cache, MOECARD_CARD_PREFILL not 0) and places its buffers. Call after the
 * decode activations; 0 or a negative errno. */
int card_pf_init(struct ee *e, int cache);
int card_pf_rule(struct ee *e);
void card_pf_free(struct ee *e);
/* One chunk of T (2..chunk) prompt tokens at positions pos.. through the batched lowering:
 * logits as engine_ops.forward (all rows or the last), hidden [T][D] when not NULL. */
int card_pf_forward(struct ee *e, const int *tok, int T, int pos, float *logits, int all,
		    float *hidden);
/* Rows of several sequences in one forward: row t is token tok[t] of sequence slot seq[t] at
 * position pos[t] (each slot's rows at consecutive positions after its cached ones); T at most
 * pf.chunk. At most FP8_GEMV_MAX_M rows run their matrices on the GEMV CU with m = T (every
 * weight read once for all rows). Logits lg (MODEL_LG_*, model.h): every row's, the last row's,
 * or each slot's last row's (MODEL_LG_SEQ, in row order); -EINVAL for another lg. */
int card_pf_forward_rows(struct ee *e, const int *tok, int T, const int *seq, const int *pos,
			 float *logits, int lg);
/* One layer of a chunk (also the dry what-if's): rows T in pf.x at the slots and positions in
 * pf.hseq / pf.hpos (dry mode routes every expert equally loaded). */
int card_pf_layer(struct ee *e, struct ee_layer *L, int T);
/* The striped attention's rows table for rows pf.hseq / pf.hpos [0, T) (pf.attn_rows: the
 * forward runs its attention as rows commands), written to the card. */
int card_pf_attn_rows(struct ee *e, int T);
/* 1 when the model's shape lets the prefill run the non-absorbed form (MOECARD_PF_MHA=0: never):
 * kv_b's per-head rows on scale blocks, the MHA mode's widths. */
int card_pf_mha_shape(const struct config *c);
/* Where this forward's kv_a rows go in layer L: its prompt rows at row p0 (the kv_a GEMV's
 * groups moved there when they pointed elsewhere), or pf.kva. *err: a failed table write. */
uint64_t card_pf_kva(struct ee *e, struct ee_layer *L, int p0, int *err);

/* card_pf_atab_host - the host copy of the rows table at card address tab (within pf.atab): the
 * {slot, n_ctx} pairs a rows command of this forward reads. */
const uint32_t *card_pf_atab_host(const struct ee *e, uint64_t tab);
/* MACs of a GEMM command (0 for other commands). */
double card_gemm_macs(const struct abi_cmd *c);
void card_pf_count(struct ee *e, uint32_t i, unsigned op, double ns);

/* --- card_experts.c: the expert cache ------------------------------------------------------ */

/* Lifetime: options and setup before placement, slots after the resident weights, teardown. */
int card_xc_init(struct ee *e, const struct engine_extra *x, char *err, size_t errlen);
int card_xc_place(struct ee *e);
void card_xc_free(struct ee *e);
/* The six fills of expert f into slot s on channel ch in the list (the last signals fid). */
int card_xc_fill_cmds(struct ee *e, const struct ffn_weights *f, int s, uint32_t ch, uint32_t fid,
		      uint32_t fval);
/* The detached ring-1 list: submitted at each flush; landed before a rewind or the end. */
int card_xc_dl_submit(struct ee *e);
void card_xc_drain(struct ee *e);
/* After a MoE layer's router: hits, misses, background fills, look-ahead prefetch. */
int card_xc_route(struct ee *e, int li, int pos, const int *idx, const float *w);
/* After each ring 0 list: statistics, failed fills, unlocks. */
void card_xc_after_list(struct ee *e, int r);
/* A new sequence: the statistics restart. */
void card_xc_restart(struct ee *e);

/* --- card_stats.c: statistics, profile, dry mode -------------------------------------------- */

/* Dry mode (what-if): adds the list's modeled card time to dry_ns. */
void card_dry_time(struct ee *e);
/* engine_ops.stats: the modeled card, link, host and expert-cache figures per token. */
void card_stats(struct engine *en, FILE *out, int json);
/* The profiler's view of command i of the list (bytes, banks, MACs); lane[] holds the per-lane
 * bytes of a GEMV (pc_bytes points into it). */
void card_prof_cmd(const struct ee *e, uint32_t i, struct prof_cmd *pc, uint64_t *lane);
/* The trace's otherData members of the card (ctx: the struct ee): its DMA driver's figures. */
void card_prof_other(void *ctx, FILE *f);

/* --- the GEMV CU (card_gemv.c) ------------------------------------------------------------ */

/* Decides whether the lowering uses the board's GEMV CU (a backend that runs GEMV, every expert
 * resident (cache 0), the activation bank on the CU's gmem_a) and reserves the stripe arena in every lane
 * bank; without it, the fp8_gemm lowering's attention on the striped-attention CU where the board
 * has one (the arena holds the latent caches). Call before anything else is placed. 0, or a
 * negative errno with err set. */
int card_gemv_init(struct ee *e, int cache, const char *kv_format, int attn_fp8, char *err,
		   size_t errlen);
/* Places layer L's latent cache (n_seq slots) striped in the arena (ee.gv_attn): L->kv_off. */
int card_kv_lanes_place(struct ee *e, struct ee_layer *L);
/* Places layer L's matrices striped (lw NULL: shapes only, for the dry what-if) and builds its
 * static group tables. */
int card_gemv_layer(struct ee *e, struct ee_layer *L, const struct layer_weights *lw, char *err,
		    size_t errlen);
void card_gemv_layer_free(struct ee_layer *L);
/* Places lm_head and the MTP head striped (w NULL: shapes only) with their tables. */
int card_gemv_heads(struct ee *e, const struct weights *w, char *err, size_t errlen);
void card_gemv_free(struct ee *e);
/* The head GEMV of the list: xn -> gv_logits (mtp: the MTP head). */
int card_head_gemv(struct ee *e, int mtp);
/* MOECARD_ROUTE_CHECK: reads back every MoE layer's gate logits and the card's choice after a
 * forward and compares the host router's choice on those logits (idx and weight bits). */
int card_route_check(struct ee *e, int n_layers_from, int n_layers_to);
/* One token of MOECARD_ROUTE_CHECK: routes the card's gate logits lg (scratch: overwritten) on the
 * host and counts the
 * token in route_checked, and in route_diff when an expert or a weight's bits differ from the
 * card's choice (cidx, cw: [k]). */
void card_route_compare(struct ee *e, const float *bias, float *lg, const int32_t *cidx,
			const float *cw);
/* GEMVs of matrix m over rows of x (stride m->k) into y (stride m->n): groups of 16 rows
 * (m = rows when rows <= 16, else 16: x and y then need rows rounded up to 16), table t (cap
 * >= the groups) written to the card; as many commands as the CU's x buffer needs, each on a
 * view of t (views: nviews entries, kept until the list is flushed). */
int card_gemv_rows(struct ee *e, const char *what, const struct smat *m, uint64_t x, uint64_t y,
		   int rows, struct gvtab *t, struct gvtab *views, int nviews);
/* card_gemv_rows of at most 16 rows (one group) that normalizes them in its loader when norm
 * is not 0 (FP8_GEMV_RMSNORM, the norm weight at norm) and, when rec is not 0, writes each row's
 * greedy record {u32 index, f32 value} at rec + 8 i (FP8_GEMV_ARGMAX): the head of the rows. */
int card_gemv_rows_top1(struct ee *e, const char *what, const struct smat *m, uint64_t x,
			uint64_t y, int rows, struct gvtab *t, uint64_t norm, uint64_t rec);
/* card_gemv_rows whose every group normalizes its rows in the loader (norm: the weight). */
int card_gemv_rows_norm(struct ee *e, const char *what, const struct smat *m, uint64_t x,
			uint64_t y, int rows, struct gvtab *t, struct gvtab *views, int nviews,
			uint64_t norm);
/* card_gemv_rows_norm's commands for rows [r0, r1) (r0 a multiple of 16, r1 too or rows); the
 * range from row 0 builds and writes the table. *nv: the views in use (0 before the first). */
int card_gemv_rows_norm_range(struct ee *e, const char *what, const struct smat *m, uint64_t x,
			      uint64_t y, int rows, struct gvtab *t, struct gvtab *views,
			      int nviews, uint64_t norm, int r0, int r1, int *nv);
/* Whether the rows path folds the post_attention_layernorm into the FFN's GEMVs (their loaders
 * normalize x: no RMSNORM command, no xn): with the router on the card (the host router reads xn
 * back); MOECARD_PF_FOLD=0 turns it off. */
static inline int card_pf_fold_post(const struct ee *e)
{
	return e->gv && e->gv_route && !e->pf.fold_off;
}
int card_gemv_tab(struct ee *e, struct gvtab *t, int cap);
/* The multiply-adds of the GEMV command of table t (m rows x every group's n x k, a SiLU pair's
 * both halves), and the GEMV CU's peak of them per ns (lanes x beat bytes x PE rows a cycle:
 * E4M3 products; a BF16 beat holds half as many). */
double card_gemv_macs(const struct gvtab *t);
double card_gemv_peak(const struct ee *e);
struct hls_build;
/* The mla_attn record format of an abi_kv_fmt. */
int card_mla_fmt(uint32_t kv_fmt);
/* The striped attention's timing build: the defaults, the board's bank rate and CU clock where
 * given (0: the defaults'), the tree's head passes and exp interval. */
void card_attn_build(const struct ee *e, uint32_t bw_mbps, uint32_t clk_khz, struct hls_build *b);
/* The MLA sublayer's GEMV commands, in the order card_mla issues them. */
enum card_gv_step { GV_QKV_A, GV_Q_B, GV_UK_T, GV_UV, GV_O };
int card_mla_gemv(struct ee *e, const struct ee_layer *L, enum card_gv_step step);
int card_dense_gemv(struct ee *e, const struct ee_layer *L);
int card_moe_gemv(struct ee *e, struct ee_layer *L, const int *idx);
/* The per-head W_UK^T copies of kv_b (codes [H][kvl][nope], scales [H][kbl][kbn]); malloc'd. */
int card_uk_t_build(const struct ee *e, const struct layer_weights *lw, uint8_t **codes,
		    float **scales, char *err, size_t errlen);
/* The KV_APPEND and MLA_ATTN_LANES commands of the striped cache (card_mla). */
/* The rows path (card_prefill.c): layer L's rows tables over the pf buffers (built once: one
 * block of 16 rows, or with pf.rows_big rows16 / 16 blocks, block-major); the commands of table
 * t over T rows (T <= 16: block 0 with m = T; else the full blocks with m = 16 and the tail
 * block with m = T % 16; split where the x of one command would not fit on chip); the used
 * experts' gate|up and down tables (pf.t_xgu, pf.t_xdn), group u expert used[u] over cnt[u]
 * (<= 16) rows of xg from row r0[u] (each expert's rows gathered together: xg, hg, yd), written
 * to the card; their commands, one per run of groups with the same row count (m = that count).
 * 0 or a negative errno. */
int card_gemv_rows_tables(struct ee *e, struct ee_layer *L);
int card_gemv_rows_cmd(struct ee *e, const char *what, struct gvtab *t, int T);
/* card_gemv_rows_cmd for rows [r0, r1) of the T rows the table holds (r0 a multiple of
 * FP8_GEMV_MAX_M, r1 too or T); *nv counts the table's views in use in the list (0 before its
 * first range: the views of the list's earlier ranges stay as their commands need them). */
int card_gemv_rows_range(struct ee *e, const char *what, struct gvtab *t, int T, int r0, int r1,
			 int *nv);
int card_moe_gemv_rows(struct ee *e, const struct ee_layer *L, const int *used, const int *r0,
		       const int *cnt, int n_used);
/* card_moe_gemv_rows without writing the two tables to the card (card_moe_gemv_rows_write). */
int card_moe_gemv_rows_build(struct ee *e, const struct ee_layer *L, const int *used, const int *r0,
			     const int *cnt, int n_used);
int card_moe_gemv_rows_write(struct ee *e);
/* The modeled ns of groups [a, b) of table t in one command, over m rows each (as if the x
 * buffer took them all). */
double card_gemv_groups_ns(const struct ee *e, const struct gvtab *t, int a, int b, int m);
/* One command of the groups from *g on with its row count (card_moe_gemv_rows_cmds' runs), as
 * many groups as it takes; advances *g; *nv counts the table's views. */
int card_moe_gemv_rows_one(struct ee *e, const char *what, struct gvtab *t, const int *cnt, int *g,
			   int *nv);
int card_moe_gemv_rows_cmds(struct ee *e, const char *what, struct gvtab *t, const int *cnt,
			    int n_used);
/* Sequence slot s's latent cache of layer L (its stripe set with the striped attention). */
static inline uint64_t ee_kv_base(const struct ee *e, const struct ee_layer *L, int s)
{
	return (e->gv_attn ? L->kv_off : L->kv) + (uint64_t)s * e->kv_slot_b;
}
/* The striped cache's KV append of e->kvrow and the attention of e->qcat into e->lat, on slot s
 * at position p (the rows path then points src / q / out at its row; n rows from p, all in p's
 * 32-token block: one lane's records back to back). With fold the append reads kv_a's raw row
 * e->kva and normalizes and ropes it itself (ABI kv fold). */
int card_kv_append_lanes(struct ee *e, const struct ee_layer *L, int s, int p, int n, int fold);
int card_attn_lanes(struct ee *e, const struct ee_layer *L, int s, int p);
/* The decode's attention a head group at a time (d groups), each group's W_UV and o_proj slices
 * on the GEMV CU while the next group's attention runs (fence EE_PF_FENCE_ATT); with front
 * (ee.q_slices > 1) also group j's q_b, W_UK^T and RoPE of q_pe beside group j - 1's attention,
 * the append before group 0's RoPE (from after q_a|kv_a on; else from after W_UK^T). The same
 * bits as card_attn_lanes, then W_UV and o_proj over all heads. */
int card_attn_groups(struct ee *e, const struct ee_layer *L, int s, int p, int d, int front);
/* The head groups d (dividing ee.o_groups; 1: one pass, then W_UV and o_proj) for a decode
 * step at position p: MOECARD_ATTN_SPLIT when it names a divisor, else the d with the least
 * modeled time (the kernels' timing models, the firmware's take per command). */
int card_attn_split(struct ee *e, const struct ee_layer *L, int p);
/* Modeled cycles of an MLA_ATTN_LANES command (dry timing). */
int64_t card_attn_lanes_cycles(const struct ee *e, const struct abi_cmd *c, uint32_t bw_mbps,
			       uint32_t clk_khz);
/* The dry timer's memory rate of a bank (the board's efficiency applied), MB/s, and CU clock,
 * kHz. */
void card_dry_rates(const struct ee *e, uint32_t *bw_mbps, uint32_t *clk_khz);
/* The modeled cycles of list command i, on ABI CU cu (its kernel's shape). */
int64_t card_cmd_cycles(const struct ee *e, uint32_t i, int cu);
/* Modeled cycles of a GEMV command of the list (dry timing). */
int64_t card_gemv_cycles(const struct ee *e, const struct gvtab *t, uint32_t bw_mbps,
			 uint32_t clk_khz);
/* A projection of the list's command times by the dry timer's rules in brief: commands start in
 * list order, each once the firmware took it, its CU is free and the fence it waits for was
 * signalled (no decode window, no dispatch engine). card_proj_run advances it over the commands
 * added since (from the start when the list went). */
struct card_proj {
	uint32_t n;		      /* commands projected */
	double t;		      /* the last one's start, ns */
	double cu[ABI_MAX_CUS];	      /* when each CU is free */
	double end[BACKEND_MAX_LIST]; /* when each command ends */
};
void card_proj_run(const struct ee *e, struct card_proj *p);
/* When a command of op could start next on its first CU (its take included), after dep. */
double card_proj_start(const struct ee *e, const struct card_proj *p, uint32_t op, double dep);

#endif
