/*
 * config.h - a DeepSeek-V3/V2-family Hugging Face config.json, parsed (jansson) and validated.
 *
 * First stage of the host data flow: config.json -> struct config -> checkpoint binding (ckpt.h)
 * -> model (model.h). Field names follow the config.json keys exactly (docs/model.md, Config keys).
 */
#ifndef MOECARD_CONFIG_H
#define MOECARD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

enum config_scoring { CONFIG_SCORING_SIGMOID, CONFIG_SCORING_SOFTMAX };
enum config_topk { CONFIG_TOPK_NOAUX_TC, CONFIG_TOPK_GREEDY, CONFIG_TOPK_GROUP_LIMITED_GREEDY };

/* rope_scaling: type "yarn" or absent/null (plain RoPE). */
struct config_rope_scaling {
	bool yarn;     /* true when rope_scaling.type (or rope_type) is yarn */
	double factor; /* f, e.g. 40 */
	int original_max_position_embeddings; /* L0, e.g. 4096 */
	double beta_fast, beta_slow;	      /* 32, 1 */
	double mscale, mscale_all_dim;	      /* 1, 1 */
};

/* quantization_config; present == false for BF16 checkpoints. */
struct config_quant {
	bool present;
	bool dynamic;		  /* activation_scheme == "dynamic" */
	bool ue8m0;		  /* scale_fmt == "ue8m0" (V3.1): act scales rounded up to 2^k */
	int weight_block_size[2]; /* [128, 128] */
};

struct config {
	char model_type[32];	      /* "deepseek_v3" or "deepseek_v2" */
	int hidden_size;	      /* 7168 */
	int intermediate_size;	      /* dense FFN width, 18432 */
	int moe_intermediate_size;    /* per-expert FFN width, 2048 */
	int num_hidden_layers;	      /* 61 */
	int first_k_dense_replace;    /* layers [0, k) dense */
	int moe_layer_freq;	      /* 1 */
	int num_attention_heads;      /* H, 128 */
	int q_lora_rank;	      /* 1536; 0 when null (plain q_proj) */
	int kv_lora_rank;	      /* 512 */
	int qk_nope_head_dim;	      /* 128 */
	int qk_rope_head_dim;	      /* 64 */
	int v_head_dim;		      /* 128 */
	int n_routed_experts;	      /* 256; 0 for a model without MoE layers */
	int num_experts_per_tok;      /* 8 */
	int n_shared_experts;	      /* 1 */
	int n_group;		      /* 8 (1 when absent) */
	int topk_group;		      /* 4 (1 when absent) */
	double routed_scaling_factor; /* 2.5 */
	enum config_scoring scoring_func;
	enum config_topk topk_method;
	bool norm_topk_prob;
	double rope_theta; /* 10000 */
	struct config_rope_scaling rope_scaling;
	double rms_norm_eps;		/* 1e-6 */
	int vocab_size;			/* 129280 */
	int max_position_embeddings;	/* 163840 */
	int bos_token_id, eos_token_id; /* 0, 1 */
	bool tie_word_embeddings;	/* must be false */
	int num_nextn_predict_layers;	/* 1: an MTP layer at model.layers.<num_hidden_layers> */
	bool random_weights; /* "moecard_random_weights": true: written by `moecard gen` */
	struct config_quant quantization_config;
};

/*
 * config_parse - parses config.json text of len bytes (need not be NUL-terminated) into *c and
 * validates it (config_validate). fname names the file in error messages.
 * On error returns a negative errno (-EINVAL malformed/contradictory, -ENOMEM) and writes one
 * line "<fname>: <key>: <what is wrong>" into err (errlen bytes).
 */
int config_parse(const char *text, size_t len, const char *fname, struct config *c, char *err,
		 size_t errlen);

/* config_load - reads and parses the file at path. Errors as config_parse, plus -errno of I/O. */
int config_load(const char *path, struct config *c, char *err, size_t errlen);

/*
 * config_validate - consistency rules: positive sizes, topk <= experts, n_group divides experts,
 * topk_group <= n_group, first_k_dense_replace <= layers, rope dims even, block size 128x128, ...
 * Returns 0 or -EINVAL with the message in err.
 */
int config_validate(const struct config *c, const char *fname, char *err, size_t errlen);

/*
 * config_deepseek_v3_671b - the shapes of DeepSeek-V3 671B as its config.json gives them (hidden
 * 7168, 61 layers of which the first 3 dense, 256 routed experts of width 2048, 8 per token, 1
 * shared, MLA with q_lora 1536 and kv_lora 512, YaRN factor 40, FP8 128x128 blocks): the model
 * the what-if figures (card_engine.h, moecard cache-sim) are computed for, without a checkpoint.
 */
void config_deepseek_v3_671b(struct config *c);

/* Helpers derived from the config. */
static inline int config_qk_head_dim(const struct config *c)
{
	return c->qk_nope_head_dim + c->qk_rope_head_dim;
}
static inline bool config_layer_is_moe(const struct config *c, int l)
{
	return c->n_routed_experts > 0 && l >= c->first_k_dense_replace &&
	       (c->moe_layer_freq <= 1 || l % c->moe_layer_freq == 0);
}

#endif
