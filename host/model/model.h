/*
 * model.h - the DeepSeek-V3 forward pass on the host (cpu backend), in the shape of llama2.c's
 * run.c: a config, the bound weights (ckpt.h), a run state allocated once at init, and forward
 * functions that read top to bottom (docs/model.md). Nothing is allocated per token.
 *
 * Data flow per layer: x -> RMSNorm -> MLA (q/kv projections, RoPE+YaRN, compressed KV cache of
 * c' + k_pe, absorbed or naive attention, o_proj) -> residual -> RMSNorm -> dense FFN or MoE
 * (router on host, routed + shared experts) -> residual. Then the final norm and lm_head, and the
 * MTP module (docs/model.md, MTP) on the main model's post-norm hidden states.
 */
#ifndef MOECARD_MODEL_H
#define MOECARD_MODEL_H

#include <stdint.h>
#include "load/ckpt.h"
#include "model/head_screen.h"
#include "model/kernels.h"

struct model_opts {
	int act_fp8;	  /* 1: dynamic 1x128 FP8 activations into FP8 GEMMs (docs/numerics.md) */
	int naive_attn;	  /* 1: naive MLA (k_nope, v expanded from c') instead of absorbed */
	int n_threads;	  /* <= 0: all online CPUs */
	int max_seq;	  /* KV capacity in tokens (main model and MTP each) */
	int max_batch;	  /* most tokens per forward call (prefill chunk) */
	int head_fp8;	  /* 1: lm_head quantized to E4M3 with 128x128 block scales at init (--head
			   fp8: half the head's bytes; its input stays f32); 0: the checkpoint's */
	int head_release; /* the checkpoint's head is file-mapped (st_populate skipped it) and its
			     pages are dropped as the FP8 quantization (head_fp8) or the packing of
			     a BF16 head passes them */
	int head_screen;  /* 1: with a packed BF16 head, its 8-bit screen for greedy tokens
			     (head_screen.h; --head-screen on) */
};

/* Routing of the last forward call, for traces and tests. */
struct model_route {
	int *idx;      /* [max_batch][n_layers][topk] chosen experts (-1 for dense layers) */
	float *margin; /* [max_batch] min over MoE layers of the selection margin */
};

struct model {
	const struct config *c;
	const struct weights *w;
	struct model_opts o;
	struct pool *pool;
	struct kern_ctx kc;	/* numerics per o.act_fp8 */
	struct kern_ctx kc_f32; /* unquantized products (naive-form kv_b expansion, FP8 head) */
	struct qmat head8;	/* --head fp8: lm_head as E4M3 codes + block scales (w NULL off) */
	uint16_t *headp;       /* a BF16 lm_head packed for gemv_bf16p (kern_bf16p_pack), or NULL */
	struct head_screen hs; /* its 8-bit screen (hs.q NULL: none) */
	int hs_off;	       /* 1: the screen is built but not used (bench's side by side) */
	int kv_dim;	       /* kv_lora_rank + qk_rope_head_dim floats per token per layer */
	float *kv;	       /* [n_layers+1][max_seq][kv_dim]: c' then roped k_pe; the last
	                             layer slot is the MTP layer's */
	int pos;	       /* tokens in the main KV cache */
	int mtp_pos;	       /* rows in the MTP layer's KV cache */
	float *rope_cos, *rope_sin; /* [max_seq][rope/2], YaRN-blended, times the mscale ratio */
	float softmax_scale;	    /* (nope+rope)^-0.5 * m^2 */
	/* run state, [max_batch] rows each */
	float *x;	       /* [B][hidden] residual stream */
	float *xn;	       /* [B][hidden] normed input of a sublayer */
	float *tmp;	       /* [B][hidden] sublayer output */
	float *qa;	       /* [B][q_lora] */
	float *q;	       /* [B][H][nope+rope] */
	float *kva;	       /* [B][kv_lora+rope] */
	float *qlat;	       /* [B][H][kv_lora + rope] absorbed query (W_UK^T q_nope), q_pe */
	float *wub;	       /* [threads][wub_floats] a head's W_UK or W_UV rows dequantized */
	size_t wub_floats;     /* max(nope, v) * kv_lora */
	int attn_hg;	       /* heads per attention work item (attn_task) */
	float *lat;	       /* [B][H][kv_lora] attention-weighted latent sum */
	float *ao;	       /* [B][H][v] attention output before o_proj */
	float *scores;	       /* [nthreads][attn_hg][max_seq] */
	float *kexp, *vexp;    /* naive form only: [max_seq][H][nope], [max_seq][H][v] */
	float *kvexp_full;     /* naive form only: [max_seq][H*(nope+v)] kv_b_proj . c' */
	float *gbuf, *ubuf;    /* [B*(topk+1)][max(inter, moe_inter*(shared+?))] gate/up outs */
	float *xg;	       /* [B*topk][hidden] gathered expert inputs */
	float *eout;	       /* [B*topk][hidden] expert outputs */
	float *rlogits;	       /* [B][E] router scores */
	int *ridx;	       /* [B][topk] */
	float *rw;	       /* [B][topk] */
	int *slot_of;	       /* [B][topk] row in xg for (token, j) */
	float *cat;	       /* [B][2*hidden] MTP concat */
	struct kern_job *jobs; /* [2*E+2] MoE job list */
	struct model_route route;
	/* optional observer, called after every decoder layer of model_forward with the residual
	 * stream m->x [T][hidden] at positions pos0..pos0+T-1 (expert-cache prediction, traces) */
	void (*layer_hook)(void *ctx, struct model *m, int layer, int pos0, int T);
	void *layer_hook_ctx;
	/* model_forward_rows only: each row's KV cache and position (NULL otherwise) */
	const struct model_kv *const *row_kv;
	const int *row_pos;
};

/*
 * model_init - allocates the run state and KV caches and starts the thread pool.
 * Returns 0, -ENOMEM, or -EINVAL (act_fp8 on a checkpoint without FP8 weights; message in err).
 */
int model_init(struct model *m, const struct config *c, const struct weights *w,
	       const struct model_opts *o, char *err, size_t errlen);
void model_free(struct model *m);

/*
 * model_forward - consumes tokens[0..T) at positions pos..pos+T-1 (1 <= T <= max_batch,
 * pos+T <= max_seq) and appends them to the KV caches; T == 1 is the decode path.
 * logits: NULL, or [T][vocab] when all_logits, else [vocab] for the last token only.
 * hidden: NULL or [T][hidden] final post-norm hidden states (the MTP input).
 * Returns 0, -ENOSPC (KV cache full / batch too large) or -EINVAL (token id out of range).
 */
int model_forward(struct model *m, const int *tokens, int T, float *logits, int all_logits,
		  float *hidden);

/*
 * model_mtp_forward - MTP rows i = mtp_pos..mtp_pos+T-1: row i takes hidden[i] (main post-norm
 * state of token i) and next_tokens[i] (= t_{i+1}; its embedding is masked at position 0) and
 * predicts t_{i+2}. logits as in model_forward. -ENODEV when the checkpoint has no MTP layer.
 */
/* A sequence's KV cache for model_forward_rows, in blocks of bs positions (paged): position p
 * of layer l is at blocks[p / bs] + (l * bs + p % bs) * kv_dim. Each block holds
 * model_kv_block_floats(m, bs) floats; blocks may sit anywhere (a pool). One block of
 * bs = max_seq is a contiguous cache. */
struct model_kv {
	float *const *blocks; /* [n_blocks]; NULL past what the sequence holds */
	int n_blocks;
	int bs;
};

/*
 * model_forward_rows - one forward of T rows that may belong to different sequences: row t is
 * token tokens[t] at position pos[t] of the KV cache kv[t] (its positions < pos[t] hold that
 * sequence's earlier tokens), which it appends to. Rows of one sequence come in position order.
 * The model's own cache and m->pos are untouched; the layer hook is not called. lg (the logits
 * wanted, MODEL_LG_*):
 *  - MODEL_LG_ALL: decode rows; logits [T][vocab]. Every row takes the per-row GEMV path
 *    whatever T is (kern_ctx.rows_only), so a sequence's logits do not depend on what it is
 *    batched with;
 *  - MODEL_LG_LAST: a prompt chunk of one sequence; the last row's logits [vocab]. The rows are
 *    those of model_forward (the tile path from KERN_TILE_MIN_M rows on);
 *  - MODEL_LG_SEQ: rows of several sequences, each sequence's rows consecutive (decode rows and
 *    short prompt tails together), every row on the per-row path as MODEL_LG_ALL; logits only
 *    of each sequence's last row in the forward (row t with t == T - 1 or kv[t + 1] != kv[t]),
 *    [those rows][vocab] in row order. A chunk of fewer than KERN_TILE_MIN_M rows gives the
 *    same bits here as in a forward of its own.
 * The absorbed MLA form only (-EINVAL under naive_attn, or lg out of range); -ENOSPC T >
 * max_batch, or a position outside max_seq or the sequence's blocks.
 */
enum { MODEL_LG_ALL = 0, MODEL_LG_LAST = 1, MODEL_LG_SEQ = 2 };
int model_forward_rows(struct model *m, const int *tokens, int T, const struct model_kv *const *kv,
		       const int *pos, float *logits, int lg);
/*
 * model_forward_top1 / model_forward_rows_top1 - model_forward with logits of the last row only,
 * and model_forward_rows, but each wanted row's greedy token (the index sampler_argmax gives on
 * its logits) instead of its logits, picked by the head's 8-bit screen (head_screen.h: the same
 * token). -ENOTSUP (nothing ran) when the model has no screen or it is switched off.
 */
int model_forward_top1(struct model *m, const int *tokens, int T, int *id);
int model_forward_rows_top1(struct model *m, const int *tokens, int T,
			    const struct model_kv *const *kv, const int *pos, int *ids, int lg);
/* Whether model_forward_top1 runs (the screen is built and on). */
static inline int model_has_top1(const struct model *m)
{
	return m->hs.q && !m->hs_off;
}

/* model_kv_block_floats - floats in one KV block of bs positions (every layer and the MTP's). */
size_t model_kv_block_floats(const struct model *m, int bs);

int model_mtp_forward(struct model *m, const int *next_tokens, const float *hidden, int T,
		      float *logits, int all_logits);

/* model_truncate - rolls the KV caches back to pos / mtp_pos tokens (speculative rejection). */
void model_truncate(struct model *m, int pos, int mtp_pos);
/* model_set_isa - the SIMD path of the model's products from the next forward on (bench
 * --isa-ab alternates paths token by token; the packed head and the buffers suit every path). */
void model_set_isa(struct model *m, const struct kern_isa *isa);

/* RMSNorm (docs/model.md, Block): w * x * rsqrt(mean(x^2) + eps), sum of squares in double; out may
 * alias x. The one definition every host path uses (cpu engine, emu host side, traces). */
void model_rmsnorm(float *out, const float *x, const float *w, int n, double eps);

/* YaRN helpers, exposed for tests: the per-pair frequency and the softmax scale. */
double model_rope_freq(const struct config *c, int i);
double model_softmax_scale(const struct config *c);

#endif
