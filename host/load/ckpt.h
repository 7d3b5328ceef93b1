/*
 * ckpt.h - binds the tensors of a safetensors checkpoint to the model's weight structs, after
 * checking every tensor's dtype and shape against the config (docs/model.md, Checkpoint tensors).
 * Third stage of the host data flow: config.h + safetensors.h -> struct weights -> model.h forward.
 * Matrices stay in the checkpoint's mmap (FP8 codes + block scales, or BF16); only small vectors
 * (norm weights, router bias) are converted to f32 copies.
 */
#ifndef MOECARD_CKPT_H
#define MOECARD_CKPT_H

#include <stdint.h>
#include "load/config.h"
#include "load/safetensors.h"

enum qmat_fmt { QMAT_FP8, QMAT_BF16, QMAT_F16, QMAT_F32 };

/* A weight matrix W [rows = out features, cols = in features], row-major, y = W x. */
struct qmat {
	int rows, cols; /* out, in */
	enum qmat_fmt fmt;
	const void *w;	    /* [rows][cols] codes (FP8: uint8 E4M3; BF16/F16: uint16; F32) */
	const float *scale; /* FP8 only: weight_scale_inv [ceil(rows/128)][ceil(cols/128)],
	                               multiplies; NULL otherwise */
	int scale_cols;	    /* ceil(cols/128) */
	const char *name;   /* tensor name, for messages */
};

/* One routed or shared expert (or a dense FFN): down(silu(gate x) * up x). */
struct ffn_weights {
	struct qmat gate, up; /* [inter, hidden] */
	struct qmat down;     /* [hidden, inter] */
};

/* One decoder layer (also the MTP layer, which adds the mtp_* members). */
struct layer_weights {
	float *input_layernorm;		 /* [hidden] f32 copy */
	float *post_attention_layernorm; /* [hidden] f32 copy */
	/* MLA */
	struct qmat q_a_proj;		/* [q_lora, hidden]; rows == 0 when q_lora_rank is null */
	float *q_a_layernorm;		/* [q_lora] */
	struct qmat q_b_proj;		/* [H*(nope+rope), q_lora] */
	struct qmat q_proj;		/* [H*(nope+rope), hidden]; only when q_lora_rank is null */
	struct qmat kv_a_proj_with_mqa; /* [kv_lora+rope, hidden] */
	float *kv_a_layernorm;		/* [kv_lora] */
	struct qmat kv_b_proj;		/* [H*(nope+v), kv_lora] */
	struct qmat o_proj;		/* [hidden, H*v] */
	/* FFN: dense (is_moe == 0) or MoE */
	int is_moe;
	struct ffn_weights mlp;		/* dense FFN [intermediate_size] */
	struct qmat gate;		/* router mlp.gate.weight [E, hidden], BF16/F32 */
	float *e_score_correction_bias; /* [E] f32 copy; NULL when absent (V2) */
	struct ffn_weights *experts;	/* [E] */
	struct ffn_weights shared;	/* width n_shared*moe_inter; rows == 0 when none */
	/* MTP layer only (model.layers.<num_hidden_layers>) */
	float *enorm, *hnorm;	      /* [hidden] */
	struct qmat eh_proj;	      /* [hidden, 2*hidden] BF16 */
	float *shared_head_norm;      /* [hidden] */
	struct qmat shared_head_head; /* [vocab, hidden] BF16 */
	struct qmat embed_tokens;     /* [vocab, hidden] BF16 (MTP copy; may alias the main one) */
};

struct weights {
	struct qmat embed_tokens;     /* [vocab, hidden] BF16 */
	struct layer_weights *layers; /* [num_hidden_layers] */
	float *norm;		      /* model.norm [hidden] */
	struct qmat lm_head;	      /* [vocab, hidden] BF16 */
	struct layer_weights *mtp;    /* NULL when num_nextn_predict_layers == 0 or absent */
	int fp8;		      /* 1 when projections are FP8 (else BF16/F16/F32) */
	void **owned;		      /* [n_owned] f32 copies made by ckpt_bind (ckpt_free) */
	int n_owned, cap_owned;
};

/*
 * ckpt_bind - fills *w from the tensors of *st for config *c. Every tensor of docs/model.md,
 * Checkpoint tensors, must be present with the right dtype and shape; FP8 scales must be finite
 * and positive. The MTP layer is bound when num_nextn_predict_layers > 0 and its tensors exist
 * (a checkpoint without them is accepted; w->mtp stays NULL).
 * Returns 0, or -EINVAL/-ENOMEM with "<file>: <tensor>: <what>" in err.
 */
int ckpt_bind(const struct config *c, const struct st_model *st, struct weights *w, char *err,
	      size_t errlen);

/* ckpt_free - frees what ckpt_bind allocated (not the mmaps). Safe on a zeroed struct. */
void ckpt_free(struct weights *w, const struct config *c);

/*
 * ckpt_open - config_load(dir/config.json) + st_open_dir(dir) + ckpt_bind. On error everything is
 * released and err names the file and field.
 */
struct ckpt {
	struct config cfg;
	struct st_model st;
	struct weights w;
};
int ckpt_open(const char *dir, struct ckpt *ck, char *err, size_t errlen);
void ckpt_close(struct ckpt *ck);

/* Byte and parameter counts per part, for `moecard info`. */
struct ckpt_stats {
	uint64_t params_attn, bytes_attn;     /* all layers' MLA projections + norms */
	uint64_t params_dense, bytes_dense;   /* dense FFN layers */
	uint64_t params_shared, bytes_shared; /* shared experts, all MoE layers */
	uint64_t params_expert, bytes_expert; /* ONE routed expert (gate+up+down + scales) */
	uint64_t params_routed, bytes_routed; /* all routed experts */
	uint64_t params_router, bytes_router; /* gates + biases */
	uint64_t params_embed_head, bytes_embed_head;
	uint64_t params_mtp, bytes_mtp; /* MTP layer incl. its head/embedding */
	uint64_t params_total, bytes_total;
	uint64_t kv_bytes_per_token; /* (kv_lora + rope) * f32 * layers (incl. MTP) */
};
void ckpt_stats(const struct ckpt *ck, struct ckpt_stats *s);

/*
 * gen - writes a random checkpoint in the official layout (config.json, FP8 weights with 128x128
 * scale_inv, BF16 embed/norms/router/head, F32 bias, MTP layer), sharded when the model is larger
 * than shard_bytes (index.json with weight_map). Preset "tiny" or "mid" (docs/cli.md, gen);
 * overrides are "key=value" config.json settings applied after the preset
 * (e.g. "hidden_size=320", "q_lora_rank=null", "scoring_func=softmax", "rope_scaling=null",
 * "scale_fmt=ue8m0", "dtype=bf16" for a BF16 checkpoint).
 * Returns 0 or a negative errno with the message in err.
 */
int testckpt_write(const char *outdir, const char *preset, uint64_t seed, const char **overrides,
		   int n_overrides, char *err, size_t errlen);

/* testckpt_progress - called by testckpt_write after each shard is generated (done of total);
 * NULL (the default) for none. `moecard gen` draws a progress line with it on a terminal. */
void testckpt_progress(void (*fn)(void *ctx, int done, int total), void *ctx);

#endif
