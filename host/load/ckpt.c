/*
 * ckpt.c - binds safetensors tensors to struct weights (ckpt.h), validating every tensor's
 * dtype and shape against the config first (docs/model.md, Checkpoint tensors). Third stage of
 * the host data flow: config.json + *.safetensors -> [struct weights] -> model forward.
 *
 * Matrices stay in the mmap (FP8 codes with their F32 weight_scale_inv, or BF16/F16/F32); norm
 * vectors and the router bias become f32 copies owned by struct weights. Every error is one line
 * "<file>: <tensor>: <what>", where file is the shard holding the tensor (or, for a missing
 * tensor, the index / single file / directory) and config.json for config problems.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "load/ckpt.h"
#include "e4m3.h"

/* Binding context: what is bound and where errors go. */
struct ckpt_ctx {
	const struct config *c;
	const struct st_model *st;
	struct weights *w;
	char *err;
	size_t errlen;
};

static int ckpt_fail(struct ckpt_ctx *x, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int ckpt_fail(struct ckpt_ctx *x, int rc, const char *fmt, ...)
{
	if (x->err && x->errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(x->err, x->errlen, fmt, ap);
		va_end(ap);
	}
	return rc;
}

/* The file to name for a tensor (its shard) or for a missing one (index, single file, dir). */
static const char *ckpt_where(const struct st_model *st, const struct st_tensor *t)
{
	if (t && t->file >= 0 && t->file < st->n_files)
		return st->files[t->file].path;
	if (st->index_path)
		return st->index_path;
	if (st->n_files == 1)
		return st->files[0].path;
	return st->dir ? st->dir : "checkpoint";
}

/* Allocation owned by w (freed by ckpt_free). */
static void *ckpt_alloc(struct ckpt_ctx *x, size_t bytes)
{
	struct weights *w = x->w;
	if (w->n_owned == w->cap_owned) {
		int nc = w->cap_owned ? w->cap_owned * 2 : 64;
		void **o = realloc(w->owned, (size_t)nc * sizeof *o);
		if (!o)
			return NULL;
		w->owned = o;
		w->cap_owned = nc;
	}
	void *p = calloc(1, bytes ? bytes : 1);
	if (p)
		w->owned[w->n_owned++] = p;
	return p;
}

static void ckpt_shape_str(char *buf, size_t n, int ndim, const int64_t *shape)
{
	size_t o = 0;
	o += (size_t)snprintf(buf + o, n - o, "[");
	for (int i = 0; i < ndim && o < n; i++)
		o += (size_t)snprintf(buf + o, n - o, "%s%lld", i ? "," : "", (long long)shape[i]);
	if (o < n)
		snprintf(buf + o, n - o, "]");
}

/* Looks a tensor up and checks its shape ([d0] or [d0,d1]); dtype is checked by the caller. */
static int ckpt_get(struct ckpt_ctx *x, const char *name, int ndim, int64_t d0, int64_t d1,
		    const char *what, const struct st_tensor **out)
{
	const struct st_tensor *t = st_find(x->st, name);
	int64_t want[2] = {d0, d1};
	char a[64], b[64];

	ckpt_shape_str(b, sizeof b, ndim, want);
	if (!t)
		return ckpt_fail(x, -EINVAL, "%s: %s: missing (expected %s %s)",
				 ckpt_where(x->st, NULL), name, what, b);
	if (t->ndim != ndim || t->shape[0] != d0 || (ndim == 2 && t->shape[1] != d1)) {
		ckpt_shape_str(a, sizeof a, t->ndim, t->shape);
		return ckpt_fail(x, -EINVAL, "%s: %s: shape %s, expected %s", ckpt_where(x->st, t),
				 name, a, b);
	}
	*out = t;
	return 0;
}

static int ckpt_is_float(enum st_dtype d)
{
	return d == ST_BF16 || d == ST_F16 || d == ST_F32;
}

static float ckpt_elem(const struct st_tensor *t, size_t i)
{
	const uint8_t *p = (const uint8_t *)t->data;
	uint16_t h;
	float f;
	switch (t->dtype) {
	case ST_BF16:
		memcpy(&h, p + 2 * i, 2);
		return bf16_to_f32(h);
	case ST_F16:
		memcpy(&h, p + 2 * i, 2);
		return f16_to_f32(h);
	default:
		memcpy(&f, p + 4 * i, 4);
		return f;
	}
}

/* A vector [n] (norm weight or bias) converted to an owned f32 copy; values must be finite. */
static int ckpt_vec(struct ckpt_ctx *x, const char *name, int n, float **out)
{
	const struct st_tensor *t;
	int rc = ckpt_get(x, name, 1, n, 0, "BF16", &t);
	if (rc)
		return rc;
	// NOLINTNEXTLINE(clang-analyzer-core.NullDereference): ckpt_get returned 0, so t is set
	if (!ckpt_is_float(t->dtype))
		return ckpt_fail(x, -EINVAL, "%s: %s: dtype %s, expected BF16, F16 or F32",
				 ckpt_where(x->st, t), name, st_dtype_name(t->dtype));
	float *v = ckpt_alloc(x, (size_t)n * sizeof *v);
	if (!v)
		return ckpt_fail(x, -ENOMEM, "%s: %s: out of memory", ckpt_where(x->st, t), name);
	for (int i = 0; i < n; i++) {
		v[i] = ckpt_elem(t, (size_t)i);
		if (!isfinite(v[i]))
			return ckpt_fail(x, -EINVAL, "%s: %s: value %g at [%d] is not finite",
					 ckpt_where(x->st, t), name, v[i], i);
	}
	*out = v;
	return 0;
}

/*
 * A matrix [rows, cols]. proj != 0: a Linear that the release stores in FP8 (with
 * <name>_scale_inv) when config.json has a quantization_config, else BF16/F16/F32.
 * proj == 0: always BF16/F16/F32 (router, embeddings, heads, eh_proj).
 */
static int ckpt_mat(struct ckpt_ctx *x, const char *name, int rows, int cols, int proj,
		    struct qmat *q)
{
	const struct st_tensor *t, *s;
	const bool quant = x->c->quantization_config.present;
	int rc = ckpt_get(x, name, 2, rows, cols, proj && quant ? "F8_E4M3" : "BF16", &t);
	if (rc)
		return rc;
	memset(q, 0, sizeof *q);
	q->rows = rows;
	q->cols = cols;
	q->name = t->name; // NOLINT(clang-analyzer-core.uninitialized.Assign): ckpt_get set t
	q->w = t->data;
	if (t->dtype == ST_F8_E4M3) {
		if (!proj)
			return ckpt_fail(x, -EINVAL,
					 "%s: %s: dtype F8_E4M3, expected BF16, F16 or F32 (never "
					 "quantized)",
					 ckpt_where(x->st, t), name);
		if (!quant)
			return ckpt_fail(x, -EINVAL,
					 "%s: %s: dtype F8_E4M3, but config.json has no "
					 "quantization_config",
					 ckpt_where(x->st, t), name);
	} else if (!ckpt_is_float(t->dtype)) {
		return ckpt_fail(x, -EINVAL, "%s: %s: dtype %s, expected %s", ckpt_where(x->st, t),
				 name, st_dtype_name(t->dtype),
				 proj && quant ? "F8_E4M3" : "BF16, F16 or F32");
	} else if (proj && quant) {
		return ckpt_fail(x, -EINVAL,
				 "%s: %s: dtype %s, expected F8_E4M3 (config.json has "
				 "quantization_config)",
				 ckpt_where(x->st, t), name, st_dtype_name(t->dtype));
	}
	if ((uintptr_t)t->data % st_dtype_size(t->dtype))
		return ckpt_fail(x, -EINVAL, "%s: %s: data is not aligned to %zu bytes",
				 ckpt_where(x->st, t), name, st_dtype_size(t->dtype));
	q->fmt = t->dtype == ST_F8_E4M3 ? QMAT_FP8
		 : t->dtype == ST_BF16	? QMAT_BF16
		 : t->dtype == ST_F16	? QMAT_F16
					: QMAT_F32;
	if (q->fmt != QMAT_FP8)
		return 0;

	/* FP8: weight_scale_inv [ceil(rows/128), ceil(cols/128)] F32, finite and > 0. */
	char sname[ST_NAME_MAX + 16];
	int sr = (rows + 127) / 128, sc = (cols + 127) / 128;
	snprintf(sname, sizeof sname, "%s_scale_inv", name);
	if ((rc = ckpt_get(x, sname, 2, sr, sc, "F32", &s)))
		return rc;
	// NOLINTNEXTLINE(clang-analyzer-core.NullDereference): ckpt_get returned 0, so s is set
	if (s->dtype != ST_F32)
		return ckpt_fail(x, -EINVAL, "%s: %s: dtype %s, expected F32", ckpt_where(x->st, s),
				 sname, st_dtype_name(s->dtype));
	const float *sv = s->data;
	if ((uintptr_t)s->data % 4) {
		float *cp = ckpt_alloc(x, s->nbytes);
		if (!cp)
			return ckpt_fail(x, -ENOMEM, "%s: %s: out of memory", ckpt_where(x->st, s),
					 sname);
		memcpy(cp, s->data, s->nbytes);
		sv = cp;
	}
	for (int i = 0; i < sr * sc; i++) {
		float v;
		memcpy(&v, &sv[i], 4);
		if (!isfinite(v) || !(v > 0))
			return ckpt_fail(x, -EINVAL,
					 "%s: %s: scale %g at [%d,%d] is not finite and "
					 "positive",
					 ckpt_where(x->st, s), sname, v, i / sc, i % sc);
	}
	q->scale = sv;
	q->scale_cols = sc;
	return 0;
}

static int ckpt_ffn(struct ckpt_ctx *x, const char *prefix, int inter, struct ffn_weights *f)
{
	char n[ST_NAME_MAX + 32];
	int h = x->c->hidden_size, rc;
	snprintf(n, sizeof n, "%s.gate_proj.weight", prefix);
	if ((rc = ckpt_mat(x, n, inter, h, 1, &f->gate)))
		return rc;
	snprintf(n, sizeof n, "%s.up_proj.weight", prefix);
	if ((rc = ckpt_mat(x, n, inter, h, 1, &f->up)))
		return rc;
	snprintf(n, sizeof n, "%s.down_proj.weight", prefix);
	return ckpt_mat(x, n, h, inter, 1, &f->down);
}

/* One decoder layer model.layers.<l> (l == num_hidden_layers: the MTP layer). */
static int ckpt_layer(struct ckpt_ctx *x, int l, struct layer_weights *lw)
{
	const struct config *c = x->c;
	const int h = c->hidden_size, H = c->num_attention_heads;
	const int qk = config_qk_head_dim(c), E = c->n_routed_experts;
	char p[64], n[ST_NAME_MAX + 32];
	int rc;

#define NAME(fmt) (snprintf(n, sizeof n, "%s." fmt, p), n)
	snprintf(p, sizeof p, "model.layers.%d", l);
	if ((rc = ckpt_vec(x, NAME("input_layernorm.weight"), h, &lw->input_layernorm)) ||
	    (rc = ckpt_vec(x, NAME("post_attention_layernorm.weight"), h,
			   &lw->post_attention_layernorm)))
		return rc;
	if (c->q_lora_rank > 0) {
		if ((rc = ckpt_mat(x, NAME("self_attn.q_a_proj.weight"), c->q_lora_rank, h, 1,
				   &lw->q_a_proj)) ||
		    (rc = ckpt_vec(x, NAME("self_attn.q_a_layernorm.weight"), c->q_lora_rank,
				   &lw->q_a_layernorm)) ||
		    (rc = ckpt_mat(x, NAME("self_attn.q_b_proj.weight"), H * qk, c->q_lora_rank, 1,
				   &lw->q_b_proj)))
			return rc;
	} else if ((rc = ckpt_mat(x, NAME("self_attn.q_proj.weight"), H * qk, h, 1, &lw->q_proj))) {
		return rc;
	}
	if ((rc = ckpt_mat(x, NAME("self_attn.kv_a_proj_with_mqa.weight"),
			   c->kv_lora_rank + c->qk_rope_head_dim, h, 1, &lw->kv_a_proj_with_mqa)) ||
	    (rc = ckpt_vec(x, NAME("self_attn.kv_a_layernorm.weight"), c->kv_lora_rank,
			   &lw->kv_a_layernorm)) ||
	    (rc = ckpt_mat(x, NAME("self_attn.kv_b_proj.weight"),
			   H * (c->qk_nope_head_dim + c->v_head_dim), c->kv_lora_rank, 1,
			   &lw->kv_b_proj)) ||
	    (rc = ckpt_mat(x, NAME("self_attn.o_proj.weight"), h, H * c->v_head_dim, 1,
			   &lw->o_proj)))
		return rc;

	lw->is_moe = config_layer_is_moe(c, l);
	if (!lw->is_moe) {
		snprintf(n, sizeof n, "%s.mlp", p);
		return ckpt_ffn(x, n, c->intermediate_size, &lw->mlp);
	}
	if ((rc = ckpt_mat(x, NAME("mlp.gate.weight"), E, h, 0, &lw->gate)))
		return rc;
	snprintf(n, sizeof n, "%s.mlp.gate.e_score_correction_bias", p);
	/* V2 routing ignores a bias; bind it anyway so nothing is silently dropped. */
	if (c->topk_method == CONFIG_TOPK_NOAUX_TC || st_find(x->st, n)) {
		if ((rc = ckpt_vec(x, n, E, &lw->e_score_correction_bias)))
			return rc;
	}
	lw->experts = ckpt_alloc(x, (size_t)E * sizeof *lw->experts);
	if (!lw->experts)
		return ckpt_fail(x, -ENOMEM, "%s: %s.mlp.experts: out of memory",
				 ckpt_where(x->st, NULL), p);
	for (int e = 0; e < E; e++) {
		snprintf(n, sizeof n, "%s.mlp.experts.%d", p, e);
		if ((rc = ckpt_ffn(x, n, c->moe_intermediate_size, &lw->experts[e])))
			return rc;
	}
	if (c->n_shared_experts > 0) {
		snprintf(n, sizeof n, "%s.mlp.shared_experts", p);
		if ((rc = ckpt_ffn(x, n, c->n_shared_experts * c->moe_intermediate_size,
				   &lw->shared)))
			return rc;
	}
	return 0;
#undef NAME
}

/* The MTP-only members of model.layers.<num_hidden_layers>. */
static int ckpt_mtp(struct ckpt_ctx *x, struct layer_weights *lw)
{
	const struct config *c = x->c;
	const int h = c->hidden_size, V = c->vocab_size;
	char p[64], n[ST_NAME_MAX + 32];
	int rc;
#define NAME(fmt) (snprintf(n, sizeof n, "%s." fmt, p), n)
	snprintf(p, sizeof p, "model.layers.%d", c->num_hidden_layers);
	if ((rc = ckpt_vec(x, NAME("enorm.weight"), h, &lw->enorm)) ||
	    (rc = ckpt_vec(x, NAME("hnorm.weight"), h, &lw->hnorm)) ||
	    (rc = ckpt_mat(x, NAME("eh_proj.weight"), h, 2 * h, 0, &lw->eh_proj)) ||
	    (rc = ckpt_vec(x, NAME("shared_head.norm.weight"), h, &lw->shared_head_norm)))
		return rc;
	/* DeepSeek-V3 stores copies of the main head and embedding here; absent, they are shared */
	if (!st_find(x->st, NAME("shared_head.head.weight")))
		lw->shared_head_head = x->w->lm_head;
	else if ((rc = ckpt_mat(x, n, V, h, 0, &lw->shared_head_head)))
		return rc;
	if (st_find(x->st, NAME("embed_tokens.weight")))
		return ckpt_mat(x, n, V, h, 0, &lw->embed_tokens);
	lw->embed_tokens = x->w->embed_tokens; /* absent: share the main embedding */
	return 0;
#undef NAME
}

int ckpt_bind(const struct config *c, const struct st_model *st, struct weights *w, char *err,
	      size_t errlen)
{
	struct ckpt_ctx x = {c, st, w, err, errlen};
	int rc;

	memset(w, 0, sizeof *w);
	w->fp8 = c->quantization_config.present;
	if ((rc = ckpt_mat(&x, "model.embed_tokens.weight", c->vocab_size, c->hidden_size, 0,
			   &w->embed_tokens)) ||
	    (rc = ckpt_vec(&x, "model.norm.weight", c->hidden_size, &w->norm)) ||
	    (rc = ckpt_mat(&x, "lm_head.weight", c->vocab_size, c->hidden_size, 0, &w->lm_head)))
		goto fail;
	w->layers = ckpt_alloc(&x, (size_t)c->num_hidden_layers * sizeof *w->layers);
	if (!w->layers) {
		rc =
		    ckpt_fail(&x, -ENOMEM, "%s: model.layers: out of memory", ckpt_where(st, NULL));
		goto fail;
	}
	for (int l = 0; l < c->num_hidden_layers; l++)
		if ((rc = ckpt_layer(&x, l, &w->layers[l])))
			goto fail;
	if (c->num_nextn_predict_layers > 0) {
		char n[64];
		int any = 0;
		size_t nl = (size_t)snprintf(n, sizeof n, "model.layers.%d.", c->num_hidden_layers);
		for (int i = 0; i < st->n_tensors && !any; i++)
			any = !strncmp(st->tensors[i].name, n, nl);
		if (any) { /* some MTP tensor exists: then all of them must */
			w->mtp = ckpt_alloc(&x, sizeof *w->mtp);
			if (!w->mtp) {
				rc = ckpt_fail(&x, -ENOMEM, "%s: MTP layer: out of memory",
					       ckpt_where(st, NULL));
				goto fail;
			}
			if ((rc = ckpt_layer(&x, c->num_hidden_layers, w->mtp)) ||
			    (rc = ckpt_mtp(&x, w->mtp)))
				goto fail;
		}
	}
	return 0;
fail:
	ckpt_free(w, c);
	return rc;
}

void ckpt_free(struct weights *w, const struct config *c)
{
	(void)c;
	for (int i = 0; i < w->n_owned; i++)
		free(w->owned[i]);
	free(w->owned);
	memset(w, 0, sizeof *w);
}

int ckpt_open(const char *dir, struct ckpt *ck, char *err, size_t errlen)
{
	char *path = NULL;
	int rc;

	memset(ck, 0, sizeof *ck);
	if (asprintf(&path, "%s/config.json", dir) < 0) {
		snprintf(err, errlen, "%s: out of memory", dir);
		return -ENOMEM;
	}
	rc = config_load(path, &ck->cfg, err, errlen);
	free(path);
	if (rc)
		return rc;
	if ((rc = st_open_dir(dir, &ck->st, err, errlen)))
		return rc;
	if ((rc = ckpt_bind(&ck->cfg, &ck->st, &ck->w, err, errlen))) {
		st_close(&ck->st);
		return rc;
	}
	return 0;
}

void ckpt_close(struct ckpt *ck)
{
	ckpt_free(&ck->w, &ck->cfg);
	st_close(&ck->st);
	memset(ck, 0, sizeof *ck);
}

/* Parts of a checkpoint, by tensor name. */
enum ckpt_part { P_ATTN, P_DENSE, P_SHARED, P_ROUTED, P_ROUTER, P_EMBED_HEAD, P_MTP, P_OTHER };

static enum ckpt_part ckpt_classify(const struct config *c, const char *name)
{
	int l;
	if (!strncmp(name, "model.layers.", 13)) {
		l = atoi(name + 13);
		if (l >= c->num_hidden_layers)
			return P_MTP;
		if (strstr(name, ".mlp.experts."))
			return P_ROUTED;
		if (strstr(name, ".mlp.shared_experts."))
			return P_SHARED;
		if (strstr(name, ".mlp.gate."))
			return P_ROUTER;
		if (strstr(name, ".mlp."))
			return P_DENSE;
		return P_ATTN; /* self_attn.* and the two layer norms */
	}
	if (!strcmp(name, "model.embed_tokens.weight") || !strcmp(name, "lm_head.weight") ||
	    !strcmp(name, "model.norm.weight"))
		return P_EMBED_HEAD;
	return P_OTHER;
}

void ckpt_stats(const struct ckpt *ck, struct ckpt_stats *s)
{
	const struct config *c = &ck->cfg;
	uint64_t p[8] = {0}, b[8] = {0};
	int n_moe = 0;

	memset(s, 0, sizeof *s);
	for (int i = 0; i < ck->st.n_tensors; i++) {
		const struct st_tensor *t = &ck->st.tensors[i];
		enum ckpt_part k = ckpt_classify(c, t->name);
		size_t nl = strlen(t->name);
		uint64_t numel = 1;
		for (int d = 0; d < t->ndim; d++)
			numel *= (uint64_t)t->shape[d];
		b[k] += t->nbytes;
		if (!(nl > 10 && !strcmp(t->name + nl - 10, "_scale_inv")))
			p[k] += numel; /* scales are bytes, not parameters */
	}
	for (int l = 0; l < c->num_hidden_layers; l++)
		n_moe += config_layer_is_moe(c, l);
	s->params_attn = p[P_ATTN], s->bytes_attn = b[P_ATTN];
	s->params_dense = p[P_DENSE], s->bytes_dense = b[P_DENSE];
	s->params_shared = p[P_SHARED], s->bytes_shared = b[P_SHARED];
	s->params_routed = p[P_ROUTED], s->bytes_routed = b[P_ROUTED];
	s->params_router = p[P_ROUTER], s->bytes_router = b[P_ROUTER];
	s->params_embed_head = p[P_EMBED_HEAD], s->bytes_embed_head = b[P_EMBED_HEAD];
	s->params_mtp = p[P_MTP], s->bytes_mtp = b[P_MTP];
	if (n_moe && c->n_routed_experts) {
		uint64_t k = (uint64_t)n_moe * (uint64_t)c->n_routed_experts;
		s->params_expert = s->params_routed / k;
		s->bytes_expert = s->bytes_routed / k;
	}
	for (int k = 0; k < 8; k++) {
		s->params_total += p[k];
		s->bytes_total += b[k];
	}
	s->kv_bytes_per_token = (uint64_t)(c->kv_lora_rank + c->qk_rope_head_dim) * sizeof(float) *
				(uint64_t)(c->num_hidden_layers + (ck->w.mtp ? 1 : 0));
}
