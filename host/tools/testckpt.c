/*
 * testckpt.c - `moecard gen`: writes a random DeepSeek-V3-layout checkpoint (config.json, FP8 weights
 * with 128x128 weight_scale_inv, BF16 embeddings/norms/router/heads, F32 router bias, the MTP
 * layer) exactly as the official release names and shapes them (docs/model.md, Checkpoint
 * tensors). It is the source of every test model: its output goes through the same config -> safetensors ->
 * ckpt_bind path as a real checkpoint.
 *
 * Values (chosen so that the model is not degenerate):
 *   - projections W ~ N(0, 1/in), then per 128x128 block scale = amax/448 (ue8m0: rounded up to a
 *     power of two) and codes = e4m3(W / scale);
 *   - embeddings ~ N(0, 1); lm_head ~ N(0, 4/hidden) so that logits have std ~2;
 *   - norm weights ~ 1 + N(0, 0.1^2); router ~ N(0, (1.5^2)/hidden) so that logits of a unit-RMS
 *     input have std ~1.5; e_score_correction_bias ~ N(0, TC_BIAS_STD^2);
 *   - the MTP layer's embed_tokens and shared_head.head repeat the main embedding and lm_head.
 * Normals are a sum of four 16-bit uniforms of one xoshiro256** draw (no libm in the hot loop);
 * every tensor has its own generator seeded from (seed, name), so tensors are generated in
 * parallel and the output does not depend on thread timing.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <jansson.h>
#include "util/errmsg.h"
#include "load/ckpt.h"
#include "e4m3.h"

#define TC_BIAS_STD 0.05f   /* router bias: moves some but not all top-k choices */
#define TC_ROUTER_GAIN 1.5f /* router logit std for unit-RMS inputs */
#define TC_HEAD_GAIN 2.0f   /* lm_head logit std for unit-RMS inputs */
#define TC_NORM_STD 0.1f    /* norm weights around 1 */
#define TC_THREADS 2
#define TC_MID_SHARD_BYTES (300ull << 20)

/* ---- random numbers ---- */

struct testckpt_rng {
	uint64_t s[4]; /* xoshiro256** state */
};

static uint64_t testckpt_splitmix(uint64_t *x)
{
	uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static void testckpt_rng_seed(struct testckpt_rng *r, uint64_t seed, const char *name)
{
	uint64_t h = 0xCBF29CE484222325ull; /* FNV-1a of the name */
	for (const char *p = name; *p; p++)
		h = (h ^ (uint8_t)*p) * 0x100000001B3ull;
	uint64_t x = seed ^ h;
	for (int i = 0; i < 4; i++)
		r->s[i] = testckpt_splitmix(&x);
}

static inline uint64_t testckpt_rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static inline uint64_t testckpt_next(struct testckpt_rng *r)
{
	uint64_t *s = r->s, res = testckpt_rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = testckpt_rotl(s[3], 45);
	return res;
}

/* Approximately N(0,1): sum of four U[0,65536) scaled to unit variance (|z| < 3.47). */
static inline float testckpt_normal(struct testckpt_rng *r)
{
	uint64_t x = testckpt_next(r);
	uint32_t s = (uint32_t)(x & 0xFFFF) + (uint32_t)((x >> 16) & 0xFFFF) +
		     (uint32_t)((x >> 32) & 0xFFFF) + (uint32_t)(x >> 48);
	return ((float)s - 131070.0f) * (1.7320508f / 65536.0f);
}

/* ---- the tensor plan ---- */

enum testckpt_kind {
	TC_PROJ, /* Linear: FP8 + scale_inv, or BF16 for dtype=bf16; N(0, std^2) */
	TC_MAT,	 /* BF16 matrix N(0, std^2) */
	TC_NORM, /* BF16 vector 1 + N(0, std^2) */
	TC_BIAS, /* F32 vector N(0, std^2) */
};

struct testckpt_tensor {
	char name[ST_NAME_MAX];	     /* tensor name */
	char seed_name[ST_NAME_MAX]; /* name that seeds its generator (copies share it) */
	enum testckpt_kind kind;
	int rows, cols; /* [rows, cols]; vectors have cols == 0 */
	float std;	/* of the drawn values */
	int shard;	/* output file index */
	size_t bytes;	/* file bytes incl. the FP8 scale tensor */
	void *data;	/* generated payload (while its shard is written) */
	float *scale;	/* FP8: [ceil(rows/128)][ceil(cols/128)] */
};

struct testckpt_plan {
	struct testckpt_tensor *t; /* [n] in file order */
	int n, cap;
	int fp8;   /* projections in FP8 */
	int ue8m0; /* power-of-two weight scales */
	uint64_t seed;
};

static int testckpt_add(struct testckpt_plan *p, enum testckpt_kind kind, int rows, int cols,
			float std, const char *seed_name, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));
static int testckpt_add(struct testckpt_plan *p, enum testckpt_kind kind, int rows, int cols,
			float std, const char *seed_name, const char *fmt, ...)
{
	if (p->n == p->cap) {
		int nc = p->cap ? p->cap * 2 : 256;
		struct testckpt_tensor *t = realloc(p->t, (size_t)nc * sizeof *t);
		if (!t)
			return -ENOMEM;
		p->t = t;
		p->cap = nc;
	}
	struct testckpt_tensor *t = &p->t[p->n++];
	memset(t, 0, sizeof *t);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(t->name, sizeof t->name, fmt, ap);
	va_end(ap);
	snprintf(t->seed_name, sizeof t->seed_name, "%s", seed_name ? seed_name : t->name);
	t->kind = kind;
	t->rows = rows;
	t->cols = cols;
	t->std = std;
	size_t numel = (size_t)rows * (size_t)(cols ? cols : 1);
	switch (kind) {
	case TC_PROJ:
		t->bytes = p->fp8 ? numel + (size_t)((rows + 127) / 128) * ((cols + 127) / 128) * 4
				  : numel * 2;
		break;
	case TC_MAT:
	case TC_NORM:
		t->bytes = numel * 2;
		break;
	case TC_BIAS:
		t->bytes = numel * 4;
		break;
	}
	return 0;
}

static int testckpt_plan_ffn(struct testckpt_plan *p, const char *prefix, int hidden, int inter)
{
	int rc;
	if ((rc = testckpt_add(p, TC_PROJ, inter, hidden, 1.0f / sqrtf((float)hidden), NULL,
			       "%s.gate_proj.weight", prefix)) ||
	    (rc = testckpt_add(p, TC_PROJ, inter, hidden, 1.0f / sqrtf((float)hidden), NULL,
			       "%s.up_proj.weight", prefix)))
		return rc;
	return testckpt_add(p, TC_PROJ, hidden, inter, 1.0f / sqrtf((float)inter), NULL,
			    "%s.down_proj.weight", prefix);
}

static int testckpt_plan_layer(struct testckpt_plan *p, const struct config *c, int l)
{
	const int h = c->hidden_size, H = c->num_attention_heads, qk = config_qk_head_dim(c);
	const float sh = 1.0f / sqrtf((float)h);
	char pre[ST_NAME_MAX];
	int rc = 0;

#define ADD(...)                                                                                   \
	do {                                                                                       \
		if ((rc = testckpt_add(p, __VA_ARGS__)))                                           \
			return rc;                                                                 \
	} while (0)
	ADD(TC_NORM, h, 0, TC_NORM_STD, NULL, "model.layers.%d.input_layernorm.weight", l);
	if (c->q_lora_rank > 0) {
		ADD(TC_PROJ, c->q_lora_rank, h, sh, NULL,
		    "model.layers.%d.self_attn.q_a_proj.weight", l);
		ADD(TC_NORM, c->q_lora_rank, 0, TC_NORM_STD, NULL,
		    "model.layers.%d.self_attn.q_a_layernorm.weight", l);
		ADD(TC_PROJ, H * qk, c->q_lora_rank, 1.0f / sqrtf((float)c->q_lora_rank), NULL,
		    "model.layers.%d.self_attn.q_b_proj.weight", l);
	} else {
		ADD(TC_PROJ, H * qk, h, sh, NULL, "model.layers.%d.self_attn.q_proj.weight", l);
	}
	ADD(TC_PROJ, c->kv_lora_rank + c->qk_rope_head_dim, h, sh, NULL,
	    "model.layers.%d.self_attn.kv_a_proj_with_mqa.weight", l);
	ADD(TC_NORM, c->kv_lora_rank, 0, TC_NORM_STD, NULL,
	    "model.layers.%d.self_attn.kv_a_layernorm.weight", l);
	ADD(TC_PROJ, H * (c->qk_nope_head_dim + c->v_head_dim), c->kv_lora_rank,
	    1.0f / sqrtf((float)c->kv_lora_rank), NULL,
	    "model.layers.%d.self_attn.kv_b_proj.weight", l);
	ADD(TC_PROJ, h, H * c->v_head_dim, 1.0f / sqrtf((float)(H * c->v_head_dim)), NULL,
	    "model.layers.%d.self_attn.o_proj.weight", l);
	ADD(TC_NORM, h, 0, TC_NORM_STD, NULL, "model.layers.%d.post_attention_layernorm.weight", l);
	if (!config_layer_is_moe(c, l)) {
		snprintf(pre, sizeof pre, "model.layers.%d.mlp", l);
		return testckpt_plan_ffn(p, pre, h, c->intermediate_size);
	}
	ADD(TC_MAT, c->n_routed_experts, h, TC_ROUTER_GAIN * sh, NULL,
	    "model.layers.%d.mlp.gate.weight", l);
	if (c->topk_method == CONFIG_TOPK_NOAUX_TC)
		ADD(TC_BIAS, c->n_routed_experts, 0, TC_BIAS_STD, NULL,
		    "model.layers.%d.mlp.gate.e_score_correction_bias", l);
	for (int e = 0; e < c->n_routed_experts; e++) {
		snprintf(pre, sizeof pre, "model.layers.%d.mlp.experts.%d", l, e);
		if ((rc = testckpt_plan_ffn(p, pre, h, c->moe_intermediate_size)))
			return rc;
	}
	if (c->n_shared_experts > 0) {
		snprintf(pre, sizeof pre, "model.layers.%d.mlp.shared_experts", l);
		return testckpt_plan_ffn(p, pre, h, c->n_shared_experts * c->moe_intermediate_size);
	}
	return 0;
}

static int testckpt_plan_build(struct testckpt_plan *p, const struct config *c)
{
	const int h = c->hidden_size, V = c->vocab_size, L = c->num_hidden_layers;
	const float sh = 1.0f / sqrtf((float)h);
	int rc;

	ADD(TC_MAT, V, h, 1.0f, NULL, "model.embed_tokens.weight");
	for (int l = 0; l < L; l++)
		if ((rc = testckpt_plan_layer(p, c, l)))
			return rc;
	if (c->num_nextn_predict_layers > 0) {
		ADD(TC_MAT, V, h, 1.0f, "model.embed_tokens.weight",
		    "model.layers.%d.embed_tokens.weight", L);
		ADD(TC_NORM, h, 0, TC_NORM_STD, NULL, "model.layers.%d.enorm.weight", L);
		ADD(TC_NORM, h, 0, TC_NORM_STD, NULL, "model.layers.%d.hnorm.weight", L);
		ADD(TC_MAT, h, 2 * h, 1.0f / sqrtf(2.0f * (float)h), NULL,
		    "model.layers.%d.eh_proj.weight", L);
		if ((rc = testckpt_plan_layer(p, c, L)))
			return rc;
		ADD(TC_NORM, h, 0, TC_NORM_STD, NULL, "model.layers.%d.shared_head.norm.weight", L);
		ADD(TC_MAT, V, h, TC_HEAD_GAIN * sh, "lm_head.weight",
		    "model.layers.%d.shared_head.head.weight", L);
	}
	ADD(TC_NORM, h, 0, TC_NORM_STD, NULL, "model.norm.weight");
	ADD(TC_MAT, V, h, TC_HEAD_GAIN * sh, NULL, "lm_head.weight");
	return 0;
#undef ADD
}

/* ---- value generation ---- */

/*
 * e4m3_encode with a short path for the normal range [2^-6, 448): the RNE carry of the 20
 * dropped mantissa bits propagates into the exponent by integer addition. Identical to
 * e4m3_encode for every float (checked exhaustively when this was written).
 */
static inline uint8_t testckpt_e4m3(float f)
{
	uint32_t u = e4m3_f32_bits(f), s = (u >> 24) & 0x80, a = u & 0x7FFFFFFFu;
	if (a < 0x3C800000u || a >= 0x43E00000u)
		return e4m3_encode(f);
	uint32_t code = ((a + 0x7FFFFu + ((a >> 20) & 1)) >> 20) - (120u << 3);
	return (uint8_t)(s | (code > 0x7E ? 0x7E : code));
}

/* 2^ceil(log2 s) for s > 0 (ue8m0 scales). */
static float testckpt_pow2_ceil(float s)
{
	int e;
	float m = frexpf(s, &e); /* s = m * 2^e, m in [0.5, 1) */
	return m == 0.5f ? s : ldexpf(1.0f, e);
}

static int testckpt_tensor_fill(struct testckpt_tensor *t, const struct testckpt_plan *p)
{
	struct testckpt_rng r;
	size_t numel = (size_t)t->rows * (size_t)(t->cols ? t->cols : 1);

	testckpt_rng_seed(&r, p->seed, t->seed_name);
	if (t->kind == TC_BIAS) {
		float *v = malloc(numel * 4);
		if (!v)
			return -ENOMEM;
		for (size_t i = 0; i < numel; i++)
			v[i] = t->std * testckpt_normal(&r);
		t->data = v;
		return 0;
	}
	if (t->kind != TC_PROJ || !p->fp8) {
		uint16_t *v = malloc(numel * 2);
		float mean = t->kind == TC_NORM ? 1.0f : 0.0f;
		if (!v)
			return -ENOMEM;
		for (size_t i = 0; i < numel; i++)
			v[i] = f32_to_bf16(mean + t->std * testckpt_normal(&r));
		t->data = v;
		return 0;
	}
	/* FP8: one 128-row band at a time; per 128x128 block scale = amax / 448. */
	const int rows = t->rows, cols = t->cols, sc = (cols + 127) / 128;
	if (rows < 1 || cols < 1)
		return -EINVAL; /* a projection has both dimensions */
	uint8_t *q = malloc(numel);
	float *s = malloc((size_t)((rows + 127) / 128) * (size_t)sc * 4);
	float *band = calloc((size_t)128 * (size_t)cols, 4);
	if (!q || !s || !band) {
		free(q);
		free(s);
		free(band);
		return -ENOMEM;
	}
	for (int r0 = 0; r0 < rows; r0 += 128) {
		int nr = rows - r0 < 128 ? rows - r0 : 128;
		for (size_t i = 0; i < (size_t)nr * (size_t)cols; i++)
			band[i] = t->std * testckpt_normal(&r);
		for (int cb = 0; cb < sc; cb++) {
			int c0 = cb * 128, nc = cols - c0 < 128 ? cols - c0 : 128;
			float amax = 0;
			for (int i = 0; i < nr; i++)
				for (int j = 0; j < nc; j++) {
					float a = fabsf(band[(size_t)i * cols + c0 + j]);
					amax = a > amax ? a : amax;
				}
			float scale = amax > 0 ? amax / E4M3_MAX : 1.0f;
			if (p->ue8m0)
				scale = testckpt_pow2_ceil(scale);
			float inv = 1.0f / scale;
			s[(r0 / 128) * sc + cb] = scale;
			for (int i = 0; i < nr; i++) {
				const float *src = band + (size_t)i * cols + c0;
				uint8_t *dst = q + (size_t)(r0 + i) * cols + c0;
				for (int j = 0; j < nc; j++)
					dst[j] = testckpt_e4m3(src[j] * inv);
			}
		}
	}
	free(band);
	t->data = q;
	t->scale = s;
	return 0;
}

static void (*tc_progress)(void *ctx, int done, int total);
static void *tc_progress_ctx;

void testckpt_progress(void (*fn)(void *ctx, int done, int total), void *ctx)
{
	tc_progress = fn;
	tc_progress_ctx = ctx;
}

/* Work queue of one shard, shared by the generator threads. */
struct testckpt_work {
	struct testckpt_plan *p;
	int *idx; /* [n] plan indices of this shard */
	int n;
	atomic_int next;   /* next entry to take */
	atomic_int failed; /* first error (negative errno) */
};

static void *testckpt_worker(void *arg)
{
	struct testckpt_work *w = arg;
	for (;;) {
		int i = atomic_fetch_add(&w->next, 1);
		if (i >= w->n || atomic_load(&w->failed))
			return NULL;
		int rc = testckpt_tensor_fill(&w->p->t[w->idx[i]], w->p);
		if (rc) {
			int z = 0;
			atomic_compare_exchange_strong(&w->failed, &z, rc);
		}
	}
}

/* ---- config: preset + overrides ---- */

static json_t *testckpt_preset(const char *name)
{
	const int tiny = !strcmp(name, "tiny");
	if (!tiny && strcmp(name, "mid"))
		return NULL;
	json_t *c = json_object();
#define SI(k, v) json_object_set_new(c, k, json_integer(v))
#define SR(k, v) json_object_set_new(c, k, json_real(v))
#define SS(k, v) json_object_set_new(c, k, json_string(v))
	json_t *arch = json_array();
	json_array_append_new(arch, json_string("DeepseekV3ForCausalLM"));
	json_object_set_new(c, "architectures", arch);
	SS("model_type", "deepseek_v3");
	SI("hidden_size", tiny ? 256 : 1024);
	SI("intermediate_size", tiny ? 512 : 2816);
	SI("moe_intermediate_size", tiny ? 128 : 512);
	SI("num_hidden_layers", tiny ? 4 : 12);
	SI("first_k_dense_replace", 1);
	SI("moe_layer_freq", 1);
	SI("num_attention_heads", tiny ? 4 : 16);
	SI("num_key_value_heads", tiny ? 4 : 16);
	SI("q_lora_rank", tiny ? 192 : 384);
	SI("kv_lora_rank", tiny ? 128 : 256);
	SI("qk_nope_head_dim", tiny ? 32 : 64);
	SI("qk_rope_head_dim", tiny ? 16 : 32);
	SI("v_head_dim", tiny ? 32 : 64);
	SI("n_routed_experts", tiny ? 16 : 64);
	SI("num_experts_per_tok", tiny ? 4 : 6);
	SI("n_shared_experts", 1);
	SI("n_group", tiny ? 4 : 8);
	SI("topk_group", tiny ? 2 : 4);
	SR("routed_scaling_factor", 2.5);
	SS("scoring_func", "sigmoid");
	SS("topk_method", "noaux_tc");
	json_object_set_new(c, "norm_topk_prob", json_true());
	SS("hidden_act", "silu");
	json_object_set_new(c, "attention_bias", json_false());
	SR("rope_theta", 10000.0);
	json_t *rs = json_object();
	json_object_set_new(rs, "type", json_string("yarn"));
	json_object_set_new(rs, "factor", json_real(40.0));
	json_object_set_new(rs, "original_max_position_embeddings", json_integer(4096));
	json_object_set_new(rs, "beta_fast", json_integer(32));
	json_object_set_new(rs, "beta_slow", json_integer(1));
	json_object_set_new(rs, "mscale", json_real(1.0));
	json_object_set_new(rs, "mscale_all_dim", json_real(1.0));
	json_object_set_new(c, "rope_scaling", rs);
	SR("rms_norm_eps", 1e-6);
	SI("max_position_embeddings", 163840);
	SI("vocab_size", tiny ? 1024 : 129280);
	SI("bos_token_id", 0);
	SI("eos_token_id", 1);
	json_object_set_new(c, "tie_word_embeddings", json_false());
	SI("num_nextn_predict_layers", 1);
	SS("torch_dtype", "bfloat16");
	json_t *q = json_object();
	json_object_set_new(q, "quant_method", json_string("fp8"));
	json_object_set_new(q, "fmt", json_string("e4m3"));
	json_object_set_new(q, "activation_scheme", json_string("dynamic"));
	json_t *bs = json_array();
	json_array_append_new(bs, json_integer(128));
	json_array_append_new(bs, json_integer(128));
	json_object_set_new(q, "weight_block_size", bs);
	json_object_set_new(c, "quantization_config", q);
	/* read by config.c: `info` and the terminal say the weights are random */
	json_object_set_new(c, "moecard_random_weights", json_true());
#undef SI
#undef SR
#undef SS
	return c;
}

/* Parses an override value: null, true/false, integer, number, JSON array/object, or string. */
static json_t *testckpt_value(const char *v)
{
	char *end;
	if (!strcmp(v, "null"))
		return json_null();
	if (!strcmp(v, "true"))
		return json_true();
	if (!strcmp(v, "false"))
		return json_false();
	if (*v == '[' || *v == '{')
		return json_loads(v, 0, NULL);
	errno = 0;
	long long i = strtoll(v, &end, 10);
	if (*v && !*end && !errno)
		return json_integer(i);
	double d = strtod(v, &end);
	if (*v && !*end)
		return json_real(d);
	return json_string(v);
}

/* Applies one "key=value" (dotted keys reach into objects; pseudo-keys handled by the caller). */
static int testckpt_override(json_t *cfg, const char *kv, char *err, size_t errlen)
{
	const char *eq = strchr(kv, '=');
	char key[128];
	json_t *obj = cfg;

	if (!eq || eq == kv || (size_t)(eq - kv) >= sizeof key)
		return errmsg_fail(err, errlen, -EINVAL, "--set %s: expected key=value", kv);
	memcpy(key, kv, (size_t)(eq - kv));
	key[eq - kv] = 0;
	char *k = key, *dot;
	while ((dot = strchr(k, '.'))) {
		*dot = 0;
		json_t *sub = json_object_get(obj, k);
		if (!json_is_object(sub))
			return errmsg_fail(err, errlen, -EINVAL, "--set %s: %s is not an object",
					   kv, k);
		obj = sub;
		k = dot + 1;
	}
	json_t *v = testckpt_value(eq + 1);
	if (!v)
		return errmsg_fail(err, errlen, -EINVAL, "--set %s: bad value", kv);
	json_object_set_new(obj, k, v);
	return 0;
}

/* Writes a small text file atomically (temp + rename). */
static int testckpt_write_text(const char *path, const char *text, char *err, size_t errlen)
{
	char *tmp = NULL;
	if (asprintf(&tmp, "%s.tmp.%d", path, (int)getpid()) < 0)
		return errmsg_fail(err, errlen, -ENOMEM, "%s: out of memory", path);
	FILE *f = fopen(tmp, "wb");
	int rc = 0;
	if (!f) {
		rc = -errno;
	} else {
		if (fputs(text, f) < 0 || fputc('\n', f) < 0)
			rc = -EIO;
		if (fclose(f) && !rc)
			rc = -errno;
		if (!rc && rename(tmp, path))
			rc = -errno;
		if (rc)
			unlink(tmp);
	}
	free(tmp);
	if (rc)
		return errmsg_fail(err, errlen, rc, "%s: write: %s", path, strerror(-rc));
	return 0;
}

static int testckpt_mkdirs(const char *dir)
{
	char buf[4096];
	if (strlen(dir) >= sizeof buf)
		return -ENAMETOOLONG;
	strcpy(buf, dir);
	for (char *s = buf + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = 0;
		if (mkdir(buf, 0755) && errno != EEXIST)
			return -errno;
		*s = '/';
	}
	if (mkdir(buf, 0755) && errno != EEXIST)
		return -errno;
	return 0;
}

/* Frees the generated payloads of shard s. */
static void testckpt_shard_free(struct testckpt_plan *p, int s)
{
	for (int i = 0; i < p->n; i++) {
		struct testckpt_tensor *t = &p->t[i];
		if (t->shard != s)
			continue;
		free(t->data);
		free(t->scale);
		t->data = NULL;
		t->scale = NULL;
	}
}

/* Generates the tensors of shard s on TC_THREADS threads. */
static int testckpt_shard_fill(struct testckpt_plan *p, int s, const char *path, char *err,
			       size_t errlen)
{
	struct testckpt_work w = {.p = p};
	pthread_t th[TC_THREADS];
	int nth = 0, rc;

	w.idx = malloc((size_t)p->n * sizeof *w.idx);
	if (!w.idx)
		return errmsg_fail(err, errlen, -ENOMEM, "%s: out of memory", path);
	for (int i = 0; i < p->n; i++)
		if (p->t[i].shard == s)
			w.idx[w.n++] = i;
	atomic_init(&w.next, 0);
	atomic_init(&w.failed, 0);
	for (int i = 0; i < TC_THREADS; i++)
		if (!pthread_create(&th[nth], NULL, testckpt_worker, &w))
			nth++;
	if (!nth)
		testckpt_worker(&w);
	for (int i = 0; i < nth; i++)
		pthread_join(th[i], NULL);
	free(w.idx);
	rc = atomic_load(&w.failed);
	if (rc) {
		testckpt_shard_free(p, s);
		return errmsg_fail(err, errlen, rc, "%s: generate: %s", path, strerror(-rc));
	}
	return 0;
}

/* Writing one shard, on its own thread while the next shard is generated. */
struct testckpt_store {
	struct testckpt_plan *p;
	int shard;
	char *path;    /* owned */
	int rc;	       /* 0 or negative errno */
	char err[512]; /* message when rc != 0 */
};

/* Writes shard s->shard (st_writer: temp file + rename) and frees its payloads. */
static void *testckpt_shard_store(void *arg)
{
	struct testckpt_store *st = arg;
	struct testckpt_plan *p = st->p;
	struct st_writer wr = {0};
	char sname[ST_NAME_MAX + 16];
	int rc = 0;

	for (int i = 0; i < p->n && !rc; i++) {
		struct testckpt_tensor *t = &p->t[i];
		if (t->shard != st->shard)
			continue;
		int64_t shape[2] = {t->rows, t->cols};
		int nd = t->cols ? 2 : 1;
		enum st_dtype dt = t->kind == TC_BIAS		  ? ST_F32
				   : t->kind == TC_PROJ && p->fp8 ? ST_F8_E4M3
								  : ST_BF16;
		rc = st_writer_add(&wr, t->name, dt, nd, shape, t->data);
		if (!rc && t->scale) {
			int64_t ss[2] = {(t->rows + 127) / 128, (t->cols + 127) / 128};
			snprintf(sname, sizeof sname, "%s_scale_inv", t->name);
			rc = st_writer_add(&wr, sname, ST_F32, 2, ss, t->scale);
		}
		if (rc)
			errmsg_fail(st->err, sizeof st->err, rc, "%s: %s: cannot add", st->path,
				    t->name);
	}
	if (!rc)
		rc = st_writer_finish(&wr, st->path, st->err, sizeof st->err);
	st_writer_free(&wr);
	testckpt_shard_free(p, st->shard);
	st->rc = rc;
	return NULL;
}

/* Waits for a running store; returns its result (message into err). */
static int testckpt_store_join(pthread_t th, struct testckpt_store *st, char *err, size_t errlen)
{
	pthread_join(th, NULL);
	free(st->path);
	st->path = NULL;
	if (st->rc)
		snprintf(err, errlen, "%s", st->err);
	return st->rc;
}

int testckpt_write(const char *outdir, const char *preset, uint64_t seed, const char **overrides,
		   int n_overrides, char *err, size_t errlen)
{
	json_t *cfg = testckpt_preset(preset), *index = NULL;
	struct testckpt_plan p = {0};
	struct config c;
	char *text = NULL, *path = NULL, **shard_names = NULL;
	uint64_t shard_bytes = !strcmp(preset, "mid") ? TC_MID_SHARD_BYTES : 0, total = 0;
	int rc = 0, n_shards = 1;
	int dtype_bf16 = 0, ue8m0 = 0;

	if (!cfg)
		return errmsg_fail(err, errlen, -EINVAL, "--preset: \"%s\" is not tiny or mid",
				   preset);
	for (int i = 0; i < n_overrides; i++) {
		const char *o = overrides[i];
		if (!strncmp(o, "dtype=", 6)) {
			if (!strcmp(o + 6, "bf16"))
				dtype_bf16 = 1;
			else if (!strcmp(o + 6, "fp8"))
				dtype_bf16 = 0;
			else {
				rc = errmsg_fail(err, errlen, -EINVAL,
						 "--set %s: dtype is bf16 or fp8", o);
				goto out;
			}
		} else if (!strncmp(o, "scale_fmt=", 10)) {
			if (strcmp(o + 10, "ue8m0")) {
				rc = errmsg_fail(err, errlen, -EINVAL,
						 "--set %s: only ue8m0 is supported", o);
				goto out;
			}
			ue8m0 = 1;
		} else if (!strncmp(o, "shard_bytes=", 12)) {
			char *end;
			shard_bytes = strtoull(o + 12, &end, 10);
			if (!o[12] || *end) {
				rc = errmsg_fail(err, errlen, -EINVAL,
						 "--set %s: expected a byte count", o);
				goto out;
			}
		} else if ((rc = testckpt_override(cfg, o, err, errlen))) {
			goto out;
		}
	}
	if (dtype_bf16) {
		if (ue8m0) {
			rc = errmsg_fail(err, errlen, -EINVAL,
					 "--set scale_fmt=ue8m0: a bf16 checkpoint has no scales");
			goto out;
		}
		json_object_del(cfg, "quantization_config");
	} else if (ue8m0) {
		json_t *q = json_object_get(cfg, "quantization_config");
		if (!json_is_object(q)) {
			rc = errmsg_fail(err, errlen, -EINVAL,
					 "--set scale_fmt=ue8m0: no quantization_config");
			goto out;
		}
		json_object_set_new(q, "scale_fmt", json_string("ue8m0"));
	}
	text = json_dumps(cfg, JSON_INDENT(2));
	if (!text) {
		rc = errmsg_fail(err, errlen, -ENOMEM, "config.json: out of memory");
		goto out;
	}
	if ((rc = config_parse(text, strlen(text), "config.json", &c, err, errlen)))
		goto out;
	p.fp8 = c.quantization_config.present;
	p.ue8m0 = c.quantization_config.ue8m0;
	p.seed = seed;
	if ((rc = testckpt_plan_build(&p, &c))) {
		errmsg_fail(err, errlen, rc, "gen: out of memory");
		goto out;
	}
	/* Shards: consecutive tensors, a new file when the next would exceed shard_bytes. */
	{
		uint64_t cur = 0;
		int s = 0;
		for (int i = 0; i < p.n; i++) {
			total += p.t[i].bytes;
			if (shard_bytes && cur && cur + p.t[i].bytes > shard_bytes) {
				s++;
				cur = 0;
			}
			cur += p.t[i].bytes;
			p.t[i].shard = s;
		}
		n_shards = shard_bytes ? s + 1 : 1;
	}
	if ((rc = testckpt_mkdirs(outdir))) {
		errmsg_fail(err, errlen, rc, "%s: mkdir: %s", outdir, strerror(-rc));
		goto out;
	}
	shard_names = calloc((size_t)n_shards, sizeof *shard_names);
	if (!shard_names) {
		rc = errmsg_fail(err, errlen, -ENOMEM, "gen: out of memory");
		goto out;
	}
	for (int s = 0; s < n_shards; s++) {
		int r = shard_bytes ? asprintf(&shard_names[s], "model-%05d-of-%05d.safetensors",
					       s + 1, n_shards)
				    : asprintf(&shard_names[s], "model.safetensors");
		if (r < 0) {
			shard_names[s] = NULL;
			rc = errmsg_fail(err, errlen, -ENOMEM, "gen: out of memory");
			goto out;
		}
	}
	/* A stale index would redirect readers to other files; an unsharded model has none. */
	if (asprintf(&path, "%s/model.safetensors.index.json", outdir) < 0) {
		path = NULL;
		rc = errmsg_fail(err, errlen, -ENOMEM, "gen: out of memory");
		goto out;
	}
	if (unlink(path) && errno != ENOENT) {
		rc = errmsg_fail(err, errlen, -errno, "%s: remove: %s", path, strerror(errno));
		goto out;
	}
	free(path);
	path = NULL;
	/* So is an old config.json while new shards are being written. */
	if (asprintf(&path, "%s/config.json", outdir) < 0) {
		path = NULL;
		rc = errmsg_fail(err, errlen, -ENOMEM, "gen: out of memory");
		goto out;
	}
	if (unlink(path) && errno != ENOENT) {
		rc = errmsg_fail(err, errlen, -errno, "%s: remove: %s", path, strerror(errno));
		goto out;
	}
	free(path);
	path = NULL;
	/* Shard s is written on a second thread while shard s+1 is generated. */
	{
		struct testckpt_store store = {.p = &p};
		pthread_t wth;
		int writing = 0;
		for (int s = 0; s < n_shards && !rc; s++) {
			if (asprintf(&path, "%s/%s", outdir, shard_names[s]) < 0) {
				path = NULL;
				rc = errmsg_fail(err, errlen, -ENOMEM, "gen: out of memory");
				break;
			}
			rc = testckpt_shard_fill(&p, s, path, err, errlen);
			if (!rc && tc_progress)
				tc_progress(tc_progress_ctx, s + 1, n_shards);
			if (writing) {
				int wrc = testckpt_store_join(wth, &store, err, errlen);
				writing = 0;
				rc = rc ? rc : wrc;
			}
			if (rc) {
				testckpt_shard_free(&p, s);
				break;
			}
			store.shard = s;
			store.path = path;
			path = NULL;
			if (pthread_create(&wth, NULL, testckpt_shard_store, &store)) {
				testckpt_shard_store(&store);
				free(store.path);
				store.path = NULL;
				if ((rc = store.rc))
					snprintf(err, errlen, "%s", store.err);
			} else {
				writing = 1;
			}
		}
		if (writing) {
			int wrc = testckpt_store_join(wth, &store, err, errlen);
			rc = rc ? rc : wrc;
		}
		if (rc)
			goto out;
	}
	if (shard_bytes) {
		json_t *wm = json_object(), *meta = json_object();
		index = json_object();
		if (!wm || !meta || !index) {
			json_decref(wm);
			json_decref(meta);
			rc = errmsg_fail(err, errlen, -ENOMEM, "gen: out of memory");
			goto out;
		}
		json_object_set_new(meta, "total_size", json_integer((json_int_t)total));
		json_object_set_new(index, "metadata", meta);
		for (int i = 0; i < p.n; i++) {
			char sname[ST_NAME_MAX + 16];
			json_object_set_new(wm, p.t[i].name,
					    json_string(shard_names[p.t[i].shard]));
			if (p.fp8 && p.t[i].kind == TC_PROJ) {
				snprintf(sname, sizeof sname, "%s_scale_inv", p.t[i].name);
				json_object_set_new(wm, sname,
						    json_string(shard_names[p.t[i].shard]));
			}
		}
		json_object_set_new(index, "weight_map", wm);
		char *itext = json_dumps(index, JSON_INDENT(2) | JSON_SORT_KEYS);
		if (!itext || asprintf(&path, "%s/model.safetensors.index.json", outdir) < 0) {
			free(itext);
			path = NULL;
			rc = errmsg_fail(err, errlen, -ENOMEM, "gen: out of memory");
			goto out;
		}
		rc = testckpt_write_text(path, itext, err, errlen);
		free(itext);
		free(path);
		path = NULL;
		if (rc)
			goto out;
	}
	/* config.json last: until it exists the directory does not look like a checkpoint. */
	if (asprintf(&path, "%s/config.json", outdir) < 0) {
		path = NULL;
		rc = errmsg_fail(err, errlen, -ENOMEM, "gen: out of memory");
		goto out;
	}
	rc = testckpt_write_text(path, text, err, errlen);
out:
	if (shard_names)
		for (int s = 0; s < n_shards; s++)
			free(shard_names[s]);
	free(shard_names);
	free(path);
	free(text);
	free(p.t);
	json_decref(index);
	json_decref(cfg);
	return rc;
}
