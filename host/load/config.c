/*
 * config.c - parses a DeepSeek-V3/V2-family config.json (jansson) into struct config and checks it
 * for consistency. First stage of the host data flow (config.h): config.json -> struct config ->
 * ckpt_bind -> model. Every error is one line "<file>: <key>: <what>" and -EINVAL.
 *
 * Defaults for absent optional keys: moe_layer_freq 1, first_k_dense_replace 0, n_group and
 * topk_group 1, n_shared_experts 0, n_routed_experts 0 (dense model), routed_scaling_factor 1,
 * scoring_func/topk_method/norm_topk_prob sigmoid/noaux_tc/true for deepseek_v3 and
 * softmax/greedy/false for deepseek_v2, rope_theta 10000, rms_norm_eps 1e-6, bos 0, eos 1,
 * num_nextn_predict_layers 0, q_lora_rank absent or null = plain q_proj, rope_scaling absent = no
 * YaRN, quantization_config absent = BF16 checkpoint.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "load/config.h"
#include "util/errmsg.h"

/* Upper bounds that keep every derived product far from int overflow. */
#define CONFIG_DIM_MAX (1 << 20) /* any width: hidden, ffn, vocab, lora ranks */
#define CONFIG_HEADS_MAX 1024
#define CONFIG_HEAD_DIM_MAX 4096
#define CONFIG_LAYERS_MAX 1024
#define CONFIG_EXPERTS_MAX 4096

static int config_fail(char *err, size_t errlen, const char *fname, const char *key,
		       const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static int config_fail(char *err, size_t errlen, const char *fname, const char *key,
		       const char *fmt, ...)
{
	if (err && errlen) {
		int n = snprintf(err, errlen, "%s: %s: ", fname, key);
		if (n >= 0 && (size_t)n < errlen) {
			va_list ap;
			va_start(ap, fmt);
			vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
			va_end(ap);
		}
		errmsg_oneline(err);
	}
	return -EINVAL;
}

/* Parsing context: the JSON object being read, its path prefix for messages, error sink. */
struct config_ctx {
	json_t *obj;	    /* object whose keys are read */
	const char *prefix; /* "" or "rope_scaling." */
	const char *fname;  /* file name for messages */
	char *err;
	size_t errlen;
};

static const char *config_key(const struct config_ctx *x, const char *key, char *buf, size_t n)
{
	snprintf(buf, n, "%s%s", x->prefix, key);
	return buf;
}

/* Integer key. Absent or null -> def (or -EINVAL when required). */
static int config_get_int(const struct config_ctx *x, const char *key, int required, int def,
			  int *out)
{
	char kb[96];
	json_t *v = json_object_get(x->obj, key);
	if (!v || json_is_null(v)) {
		if (required)
			return config_fail(x->err, x->errlen, x->fname,
					   config_key(x, key, kb, sizeof kb),
					   "missing (required integer)");
		*out = def;
		return 0;
	}
	if (json_is_real(v)) {
		double d = json_real_value(v);
		if (d != floor(d) || d < -2147483648.0 || d > 2147483647.0)
			return config_fail(x->err, x->errlen, x->fname,
					   config_key(x, key, kb, sizeof kb),
					   "expected an integer, got %g", d);
		*out = (int)d;
		return 0;
	}
	if (!json_is_integer(v))
		return config_fail(x->err, x->errlen, x->fname, config_key(x, key, kb, sizeof kb),
				   "expected an integer");
	json_int_t i = json_integer_value(v);
	if (i < -2147483647 || i > 2147483647)
		return config_fail(x->err, x->errlen, x->fname, config_key(x, key, kb, sizeof kb),
				   "%lld is out of range", (long long)i);
	*out = (int)i;
	return 0;
}

/* Number key (integer or real). Absent or null -> def. */
static int config_get_num(const struct config_ctx *x, const char *key, int required, double def,
			  double *out)
{
	char kb[96];
	json_t *v = json_object_get(x->obj, key);
	if (!v || json_is_null(v)) {
		if (required)
			return config_fail(x->err, x->errlen, x->fname,
					   config_key(x, key, kb, sizeof kb),
					   "missing (required number)");
		*out = def;
		return 0;
	}
	if (!json_is_number(v))
		return config_fail(x->err, x->errlen, x->fname, config_key(x, key, kb, sizeof kb),
				   "expected a number");
	*out = json_number_value(v);
	if (!isfinite(*out))
		return config_fail(x->err, x->errlen, x->fname, config_key(x, key, kb, sizeof kb),
				   "not finite");
	return 0;
}

static int config_get_bool(const struct config_ctx *x, const char *key, bool def, bool *out)
{
	char kb[96];
	json_t *v = json_object_get(x->obj, key);
	if (!v || json_is_null(v)) {
		*out = def;
		return 0;
	}
	if (!json_is_boolean(v))
		return config_fail(x->err, x->errlen, x->fname, config_key(x, key, kb, sizeof kb),
				   "expected true or false");
	*out = json_is_true(v);
	return 0;
}

/* String key; *out = NULL when absent or null. */
static int config_get_str(const struct config_ctx *x, const char *key, const char **out)
{
	char kb[96];
	json_t *v = json_object_get(x->obj, key);
	*out = NULL;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v))
		return config_fail(x->err, x->errlen, x->fname, config_key(x, key, kb, sizeof kb),
				   "expected a string");
	*out = json_string_value(v);
	return 0;
}

static int config_parse_rope(const struct config_ctx *root, struct config *c)
{
	json_t *rs = json_object_get(root->obj, "rope_scaling");
	struct config_rope_scaling *r = &c->rope_scaling;
	const char *type = NULL, *rtype = NULL;
	int rc;

	memset(r, 0, sizeof *r);
	if (!rs || json_is_null(rs))
		return 0;
	if (!json_is_object(rs))
		return config_fail(root->err, root->errlen, root->fname, "rope_scaling",
				   "expected an object or null");
	struct config_ctx x = {rs, "rope_scaling.", root->fname, root->err, root->errlen};
	if ((rc = config_get_str(&x, "type", &type)) ||
	    (rc = config_get_str(&x, "rope_type", &rtype)))
		return rc;
	if (!type)
		type = rtype;
	if (!type)
		return config_fail(x.err, x.errlen, x.fname, "rope_scaling.type", "missing");
	if (strcmp(type, "yarn"))
		return config_fail(x.err, x.errlen, x.fname, "rope_scaling.type",
				   "\"%.32s\" is not supported (only yarn or null)", type);
	r->yarn = true;
	if ((rc = config_get_num(&x, "factor", 1, 1.0, &r->factor)) ||
	    (rc = config_get_int(&x, "original_max_position_embeddings", 0, 4096,
				 &r->original_max_position_embeddings)) ||
	    (rc = config_get_num(&x, "beta_fast", 0, 32.0, &r->beta_fast)) ||
	    (rc = config_get_num(&x, "beta_slow", 0, 1.0, &r->beta_slow)) ||
	    (rc = config_get_num(&x, "mscale", 0, 1.0, &r->mscale)) ||
	    (rc = config_get_num(&x, "mscale_all_dim", 0, 0.0, &r->mscale_all_dim)))
		return rc;
	return 0;
}

static int config_parse_quant(const struct config_ctx *root, struct config *c)
{
	json_t *qc = json_object_get(root->obj, "quantization_config");
	struct config_quant *q = &c->quantization_config;
	const char *s;
	int rc;

	memset(q, 0, sizeof *q);
	if (!qc || json_is_null(qc))
		return 0;
	if (!json_is_object(qc))
		return config_fail(root->err, root->errlen, root->fname, "quantization_config",
				   "expected an object or null");
	struct config_ctx x = {qc, "quantization_config.", root->fname, root->err, root->errlen};
	q->present = true;
	if ((rc = config_get_str(&x, "quant_method", &s)))
		return rc;
	if (!s || strcmp(s, "fp8"))
		return config_fail(x.err, x.errlen, x.fname, "quantization_config.quant_method",
				   "\"%.32s\" is not supported (only fp8)", s ? s : "(missing)");
	if ((rc = config_get_str(&x, "fmt", &s)))
		return rc;
	if (s && strcmp(s, "e4m3"))
		return config_fail(x.err, x.errlen, x.fname, "quantization_config.fmt",
				   "\"%.32s\" is not supported (only e4m3)", s);
	if ((rc = config_get_str(&x, "activation_scheme", &s)))
		return rc;
	if (s && strcmp(s, "dynamic") && strcmp(s, "static"))
		return config_fail(x.err, x.errlen, x.fname,
				   "quantization_config.activation_scheme",
				   "\"%.32s\" is not dynamic or static", s);
	q->dynamic = !s || !strcmp(s, "dynamic");
	if ((rc = config_get_str(&x, "scale_fmt", &s)))
		return rc;
	if (s && strcmp(s, "ue8m0"))
		return config_fail(x.err, x.errlen, x.fname, "quantization_config.scale_fmt",
				   "\"%.32s\" is not supported (only ue8m0 or absent)", s);
	q->ue8m0 = s != NULL;
	json_t *bs = json_object_get(qc, "weight_block_size");
	q->weight_block_size[0] = q->weight_block_size[1] = 128;
	if (bs && !json_is_null(bs)) {
		if (!json_is_array(bs) || json_array_size(bs) != 2 ||
		    !json_is_integer(json_array_get(bs, 0)) ||
		    !json_is_integer(json_array_get(bs, 1)))
			return config_fail(x.err, x.errlen, x.fname,
					   "quantization_config.weight_block_size",
					   "expected an array of two integers");
		for (int i = 0; i < 2; i++) {
			json_int_t v = json_integer_value(json_array_get(bs, i));
			q->weight_block_size[i] = v < 0 || v > 65536 ? -1 : (int)v;
		}
	}
	return 0;
}

int config_parse(const char *text, size_t len, const char *fname, struct config *c, char *err,
		 size_t errlen)
{
	json_error_t je;
	json_t *root;
	int rc;
	const char *s;

	if (!fname)
		fname = "config.json";
	memset(c, 0, sizeof *c);
	root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
	if (!root)
		return config_fail(err, errlen, fname, "json", "line %d column %d: %s", je.line,
				   je.column, je.text);
	if (!json_is_object(root)) {
		json_decref(root);
		return config_fail(err, errlen, fname, "json", "top level is not an object");
	}
	struct config_ctx x = {root, "", fname, err, errlen};

	if ((rc = config_get_str(&x, "model_type", &s)))
		goto out;
	if (!s)
		s = "deepseek_v3";
	if (strcmp(s, "deepseek_v3") && strcmp(s, "deepseek_v2") && strcmp(s, "kimi_k2")) {
		rc = config_fail(err, errlen, fname, "model_type",
				 "\"%.32s\" is not deepseek_v3, deepseek_v2 or kimi_k2", s);
		goto out;
	}
	snprintf(c->model_type, sizeof c->model_type, "%s", s);
	bool v2 = !strcmp(s, "deepseek_v2");

	if ((rc = config_get_int(&x, "hidden_size", 1, 0, &c->hidden_size)) ||
	    (rc = config_get_int(&x, "intermediate_size", 1, 0, &c->intermediate_size)) ||
	    (rc = config_get_int(&x, "moe_intermediate_size", 0, 0, &c->moe_intermediate_size)) ||
	    (rc = config_get_int(&x, "num_hidden_layers", 1, 0, &c->num_hidden_layers)) ||
	    (rc = config_get_int(&x, "first_k_dense_replace", 0, 0, &c->first_k_dense_replace)) ||
	    (rc = config_get_int(&x, "moe_layer_freq", 0, 1, &c->moe_layer_freq)) ||
	    (rc = config_get_int(&x, "num_attention_heads", 1, 0, &c->num_attention_heads)) ||
	    (rc = config_get_int(&x, "q_lora_rank", 0, 0, &c->q_lora_rank)) ||
	    (rc = config_get_int(&x, "kv_lora_rank", 1, 0, &c->kv_lora_rank)) ||
	    (rc = config_get_int(&x, "qk_nope_head_dim", 1, 0, &c->qk_nope_head_dim)) ||
	    (rc = config_get_int(&x, "qk_rope_head_dim", 1, 0, &c->qk_rope_head_dim)) ||
	    (rc = config_get_int(&x, "v_head_dim", 1, 0, &c->v_head_dim)) ||
	    (rc = config_get_int(&x, "n_routed_experts", 0, 0, &c->n_routed_experts)) ||
	    (rc = config_get_int(&x, "num_experts_per_tok", 0, 0, &c->num_experts_per_tok)) ||
	    (rc = config_get_int(&x, "n_shared_experts", 0, 0, &c->n_shared_experts)) ||
	    (rc = config_get_int(&x, "n_group", 0, 1, &c->n_group)) ||
	    (rc = config_get_int(&x, "topk_group", 0, 1, &c->topk_group)) ||
	    (rc = config_get_num(&x, "routed_scaling_factor", 0, 1.0, &c->routed_scaling_factor)) ||
	    (rc = config_get_bool(&x, "norm_topk_prob", !v2, &c->norm_topk_prob)) ||
	    (rc = config_get_num(&x, "rope_theta", 0, 10000.0, &c->rope_theta)) ||
	    (rc = config_get_num(&x, "rms_norm_eps", 0, 1e-6, &c->rms_norm_eps)) ||
	    (rc = config_get_int(&x, "vocab_size", 1, 0, &c->vocab_size)) ||
	    (rc = config_get_int(&x, "max_position_embeddings", 0, 4096,
				 &c->max_position_embeddings)) ||
	    (rc = config_get_int(&x, "bos_token_id", 0, 0, &c->bos_token_id)) ||
	    (rc = config_get_int(&x, "eos_token_id", 0, 1, &c->eos_token_id)) ||
	    (rc = config_get_bool(&x, "tie_word_embeddings", false, &c->tie_word_embeddings)) ||
	    (rc = config_get_int(&x, "num_nextn_predict_layers", 0, 0,
				 &c->num_nextn_predict_layers)) ||
	    (rc = config_get_bool(&x, "moecard_random_weights", false, &c->random_weights)))
		goto out;

	if ((rc = config_get_str(&x, "scoring_func", &s)))
		goto out;
	if (!s)
		c->scoring_func = v2 ? CONFIG_SCORING_SOFTMAX : CONFIG_SCORING_SIGMOID;
	else if (!strcmp(s, "sigmoid"))
		c->scoring_func = CONFIG_SCORING_SIGMOID;
	else if (!strcmp(s, "softmax"))
		c->scoring_func = CONFIG_SCORING_SOFTMAX;
	else {
		rc = config_fail(err, errlen, fname, "scoring_func",
				 "\"%.32s\" is not sigmoid or softmax", s);
		goto out;
	}
	if ((rc = config_get_str(&x, "topk_method", &s)))
		goto out;
	if (!s)
		c->topk_method = v2 ? CONFIG_TOPK_GREEDY : CONFIG_TOPK_NOAUX_TC;
	else if (!strcmp(s, "noaux_tc"))
		c->topk_method = CONFIG_TOPK_NOAUX_TC;
	else if (!strcmp(s, "greedy"))
		c->topk_method = CONFIG_TOPK_GREEDY;
	else if (!strcmp(s, "group_limited_greedy"))
		c->topk_method = CONFIG_TOPK_GROUP_LIMITED_GREEDY;
	else {
		rc = config_fail(err, errlen, fname, "topk_method",
				 "\"%.32s\" is not noaux_tc, greedy or group_limited_greedy", s);
		goto out;
	}

	/* Keys that only have to agree with the MLA dimensions (HF writes them for tools). */
	int nkv = c->num_attention_heads, hd = 0;
	if ((rc = config_get_int(&x, "num_key_value_heads", 0, c->num_attention_heads, &nkv)) ||
	    (rc = config_get_int(&x, "head_dim", 0, 0, &hd)))
		goto out;
	if (nkv != c->num_attention_heads) {
		rc = config_fail(err, errlen, fname, "num_key_value_heads",
				 "%d, but MLA needs num_attention_heads (%d)", nkv,
				 c->num_attention_heads);
		goto out;
	}
	if (hd && hd != c->qk_rope_head_dim && hd != config_qk_head_dim(c)) {
		rc = config_fail(err, errlen, fname, "head_dim",
				 "%d is neither qk_rope_head_dim (%d) nor qk_nope_head_dim + "
				 "qk_rope_head_dim (%d)",
				 hd, c->qk_rope_head_dim, config_qk_head_dim(c));
		goto out;
	}

	if ((rc = config_parse_rope(&x, c)) || (rc = config_parse_quant(&x, c)))
		goto out;
	rc = config_validate(c, fname, err, errlen);
out:
	json_decref(root);
	return rc;
}

int config_load(const char *path, struct config *c, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t n = 0, cap = 0;
	int rc;

	if (!f) {
		rc = -errno;
		snprintf(err, errlen, "%s: open: %s", path, strerror(errno));
		return rc;
	}
	for (;;) {
		if (n == cap) {
			if (cap >= (64u << 20)) {
				fclose(f);
				free(buf);
				return config_fail(err, errlen, path, "size", "larger than 64 MiB");
			}
			char *nb = realloc(buf, cap ? cap * 2 : 65536);
			if (!nb) {
				fclose(f);
				free(buf);
				snprintf(err, errlen, "%s: read: out of memory", path);
				return -ENOMEM;
			}
			buf = nb;
			cap = cap ? cap * 2 : 65536;
		}
		size_t r = fread(buf + n, 1, cap - n, f);
		n += r;
		if (r == 0)
			break;
	}
	if (ferror(f)) {
		rc = -EIO;
		snprintf(err, errlen, "%s: read: I/O error", path);
		fclose(f);
		free(buf);
		return rc;
	}
	fclose(f);
	rc = config_parse(buf, n, path, c, err, errlen);
	free(buf);
	return rc;
}

/* A positive size within [1, max]. */
static int config_check_pos(int v, int max, const char *key, const char *fname, char *err,
			    size_t errlen)
{
	if (v <= 0)
		return config_fail(err, errlen, fname, key, "%d, must be positive", v);
	if (v > max)
		return config_fail(err, errlen, fname, key, "%d is larger than %d", v, max);
	return 0;
}

int config_validate(const struct config *c, const char *fname, char *err, size_t errlen)
{
	int rc;

	if (!fname)
		fname = "config.json";
#define POS(field, max)                                                                            \
	do {                                                                                       \
		if ((rc = config_check_pos(c->field, max, #field, fname, err, errlen)))            \
			return rc;                                                                 \
	} while (0)
	POS(hidden_size, CONFIG_DIM_MAX);
	POS(num_hidden_layers, CONFIG_LAYERS_MAX);
	POS(num_attention_heads, CONFIG_HEADS_MAX);
	POS(kv_lora_rank, CONFIG_DIM_MAX);
	POS(qk_nope_head_dim, CONFIG_HEAD_DIM_MAX);
	POS(qk_rope_head_dim, CONFIG_HEAD_DIM_MAX);
	POS(v_head_dim, CONFIG_HEAD_DIM_MAX);
	POS(vocab_size, CONFIG_DIM_MAX);
	POS(moe_layer_freq, CONFIG_LAYERS_MAX);
	if (c->q_lora_rank < 0 || c->q_lora_rank > CONFIG_DIM_MAX)
		return config_fail(err, errlen, fname, "q_lora_rank",
				   "%d, must be null or in [1, %d]", c->q_lora_rank,
				   CONFIG_DIM_MAX);
	if (c->qk_rope_head_dim % 2)
		return config_fail(err, errlen, fname, "qk_rope_head_dim",
				   "%d is odd (RoPE rotates pairs)", c->qk_rope_head_dim);
	/* The flattened head dimensions feed matrices of int rows/cols. */
	long long hq = (long long)c->num_attention_heads * config_qk_head_dim(c);
	long long hv = (long long)c->num_attention_heads * (c->qk_nope_head_dim + c->v_head_dim);
	if (hq > CONFIG_DIM_MAX || hv > CONFIG_DIM_MAX)
		return config_fail(err, errlen, fname, "num_attention_heads",
				   "%d heads x (%d+%d or %d+%d) dims is larger than %d",
				   c->num_attention_heads, c->qk_nope_head_dim, c->qk_rope_head_dim,
				   c->qk_nope_head_dim, c->v_head_dim, CONFIG_DIM_MAX);
	if (c->first_k_dense_replace < 0 || c->first_k_dense_replace > c->num_hidden_layers)
		return config_fail(err, errlen, fname, "first_k_dense_replace",
				   "%d is outside [0, num_hidden_layers=%d]",
				   c->first_k_dense_replace, c->num_hidden_layers);
	if (c->n_routed_experts < 0 || c->n_routed_experts > CONFIG_EXPERTS_MAX)
		return config_fail(err, errlen, fname, "n_routed_experts", "%d is outside [0, %d]",
				   c->n_routed_experts, CONFIG_EXPERTS_MAX);
	bool any_dense = false, any_moe = false;
	for (int l = 0; l <= c->num_hidden_layers; l++) {
		if (l == c->num_hidden_layers && c->num_nextn_predict_layers <= 0)
			break;
		if (config_layer_is_moe(c, l))
			any_moe = true;
		else
			any_dense = true;
	}
	if (any_dense)
		POS(intermediate_size, CONFIG_DIM_MAX);
	else if (c->intermediate_size < 0)
		return config_fail(err, errlen, fname, "intermediate_size", "%d is negative",
				   c->intermediate_size);
	if (any_moe) {
		POS(moe_intermediate_size, CONFIG_DIM_MAX);
		if (c->num_experts_per_tok <= 0 || c->num_experts_per_tok > c->n_routed_experts)
			return config_fail(err, errlen, fname, "num_experts_per_tok",
					   "%d is outside [1, n_routed_experts=%d]",
					   c->num_experts_per_tok, c->n_routed_experts);
		if (c->n_shared_experts < 0 || c->n_shared_experts > 64)
			return config_fail(err, errlen, fname, "n_shared_experts",
					   "%d is outside [0, 64]", c->n_shared_experts);
		if ((long long)c->n_shared_experts * c->moe_intermediate_size > CONFIG_DIM_MAX)
			return config_fail(err, errlen, fname, "n_shared_experts",
					   "%d x moe_intermediate_size is larger than %d",
					   c->n_shared_experts, CONFIG_DIM_MAX);
		bool grouped = c->topk_method != CONFIG_TOPK_GREEDY;
		if (c->n_group <= 0 || c->n_routed_experts % c->n_group)
			return config_fail(err, errlen, fname, "n_group",
					   "%d does not divide n_routed_experts=%d", c->n_group,
					   c->n_routed_experts);
		if (c->topk_group <= 0 || c->topk_group > c->n_group)
			return config_fail(err, errlen, fname, "topk_group",
					   "%d is outside [1, n_group=%d]", c->topk_group,
					   c->n_group);
		int per_group = c->n_routed_experts / c->n_group;
		if (grouped && c->num_experts_per_tok > c->topk_group * per_group)
			return config_fail(err, errlen, fname, "num_experts_per_tok",
					   "%d is more than topk_group x experts per group = %d",
					   c->num_experts_per_tok, c->topk_group * per_group);
		if (c->topk_method == CONFIG_TOPK_NOAUX_TC && c->n_group > 1 && per_group < 2)
			return config_fail(err, errlen, fname, "n_group",
					   "%d groups of %d expert: noaux_tc scores a group by its "
					   "top-2",
					   c->n_group, per_group);
		if (!(c->routed_scaling_factor > 0))
			return config_fail(err, errlen, fname, "routed_scaling_factor",
					   "%g, must be positive", c->routed_scaling_factor);
	}
	if (!(c->rms_norm_eps > 0) || c->rms_norm_eps > 1)
		return config_fail(err, errlen, fname, "rms_norm_eps", "%g is outside (0, 1]",
				   c->rms_norm_eps);
	if (!(c->rope_theta > 1))
		return config_fail(err, errlen, fname, "rope_theta", "%g, must be > 1",
				   c->rope_theta);
	if (c->max_position_embeddings <= 0)
		return config_fail(err, errlen, fname, "max_position_embeddings",
				   "%d, must be positive", c->max_position_embeddings);
	if (c->bos_token_id < 0 || c->bos_token_id >= c->vocab_size)
		return config_fail(err, errlen, fname, "bos_token_id",
				   "%d is outside [0, vocab_size=%d)", c->bos_token_id,
				   c->vocab_size);
	if (c->eos_token_id < 0 || c->eos_token_id >= c->vocab_size)
		return config_fail(err, errlen, fname, "eos_token_id",
				   "%d is outside [0, vocab_size=%d)", c->eos_token_id,
				   c->vocab_size);
	if (c->tie_word_embeddings)
		return config_fail(
		    err, errlen, fname, "tie_word_embeddings",
		    "true is not supported (DeepSeek checkpoints have their own lm_head)");
	if (c->num_nextn_predict_layers < 0 || c->num_nextn_predict_layers > 1)
		return config_fail(err, errlen, fname, "num_nextn_predict_layers",
				   "%d, only 0 or 1 is supported", c->num_nextn_predict_layers);
	if (c->rope_scaling.yarn) {
		const struct config_rope_scaling *r = &c->rope_scaling;
		if (!(r->factor >= 1) || r->factor > 1e6)
			return config_fail(err, errlen, fname, "rope_scaling.factor",
					   "%g is outside [1, 1e6]", r->factor);
		if (r->original_max_position_embeddings <= 0)
			return config_fail(
			    err, errlen, fname, "rope_scaling.original_max_position_embeddings",
			    "%d, must be positive", r->original_max_position_embeddings);
		if (!(r->beta_fast > 0) || !(r->beta_slow > 0) || r->beta_slow > r->beta_fast)
			return config_fail(err, errlen, fname, "rope_scaling.beta_fast",
					   "beta_fast %g and beta_slow %g must be positive with "
					   "beta_slow <= beta_fast",
					   r->beta_fast, r->beta_slow);
		if (!(r->mscale >= 0) || !(r->mscale_all_dim >= 0))
			return config_fail(err, errlen, fname, "rope_scaling.mscale",
					   "mscale %g and mscale_all_dim %g must be >= 0",
					   r->mscale, r->mscale_all_dim);
	}
	if (c->quantization_config.present && (c->quantization_config.weight_block_size[0] != 128 ||
					       c->quantization_config.weight_block_size[1] != 128))
		return config_fail(err, errlen, fname, "quantization_config.weight_block_size",
				   "[%d,%d], only [128,128] is supported",
				   c->quantization_config.weight_block_size[0],
				   c->quantization_config.weight_block_size[1]);
#undef POS
	return 0;
}

void config_deepseek_v3_671b(struct config *c)
{
	memset(c, 0, sizeof *c);
	snprintf(c->model_type, sizeof c->model_type, "deepseek_v3");
	c->hidden_size = 7168;
	c->intermediate_size = 18432;
	c->moe_intermediate_size = 2048;
	c->num_hidden_layers = 61;
	c->first_k_dense_replace = 3;
	c->moe_layer_freq = 1;
	c->num_attention_heads = 128;
	c->q_lora_rank = 1536;
	c->kv_lora_rank = 512;
	c->qk_nope_head_dim = 128;
	c->qk_rope_head_dim = 64;
	c->v_head_dim = 128;
	c->n_routed_experts = 256;
	c->num_experts_per_tok = 8;
	c->n_shared_experts = 1;
	c->n_group = 8;
	c->topk_group = 4;
	c->routed_scaling_factor = 2.5;
	c->scoring_func = CONFIG_SCORING_SIGMOID;
	c->topk_method = CONFIG_TOPK_NOAUX_TC;
	c->norm_topk_prob = true;
	c->rope_theta = 10000;
	c->rope_scaling.yarn = true;
	c->rope_scaling.factor = 40;
	c->rope_scaling.original_max_position_embeddings = 4096;
	c->rope_scaling.beta_fast = 32;
	c->rope_scaling.beta_slow = 1;
	c->rope_scaling.mscale = 1;
	c->rope_scaling.mscale_all_dim = 1;
	c->rms_norm_eps = 1e-6;
	c->vocab_size = 129280;
	c->max_position_embeddings = 163840;
	c->bos_token_id = 0;
	c->eos_token_id = 1;
	c->num_nextn_predict_layers = 1;
	c->quantization_config.present = true;
	c->quantization_config.dynamic = true;
	c->quantization_config.weight_block_size[0] = 128;
	c->quantization_config.weight_block_size[1] = 128;
}
