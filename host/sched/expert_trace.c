/*
 * expert_trace.c - routing trace writer (a model layer hook), validating reader, prediction
 * accuracy (expert_trace.h). The look-ahead gates use the model's router (router.h).
 * Data flow: model_forward -> layer_hook -> records -> file -> expert_trace_load -> cache-sim.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "engine/engine.h"
#include "sched/expert_trace.h"
#include "model/kernels.h"
#include "model/model.h"
#include "model/router.h"

/* ---- byte counts by formula -------------------------------------------------------------- */

/* FP8 matrix [rows][cols] with 128x128 F32 scale blocks, bytes. */
static uint64_t fp8_bytes(uint64_t rows, uint64_t cols)
{
	return rows * cols + ((rows + 127) / 128) * ((cols + 127) / 128) * 4;
}

static uint64_t attn_bytes(const struct config *c)
{
	uint64_t D = c->hidden_size, H = c->num_attention_heads, qk = config_qk_head_dim(c);
	uint64_t b = 0;
	if (c->q_lora_rank > 0)
		b += fp8_bytes(c->q_lora_rank, D) + fp8_bytes(H * qk, c->q_lora_rank);
	else
		b += fp8_bytes(H * qk, D);
	b += fp8_bytes(c->kv_lora_rank + c->qk_rope_head_dim, D);
	b += fp8_bytes(H * (c->qk_nope_head_dim + c->v_head_dim), c->kv_lora_rank);
	b += fp8_bytes(D, H * c->v_head_dim);
	return b + 2 * D * 2; /* two BF16 norm vectors */
}

int expert_trace_shape_from_config(const struct config *c, struct expert_trace_shape *s)
{
	memset(s, 0, sizeof *s);
	if (c->n_routed_experts <= 0 || c->first_k_dense_replace >= c->num_hidden_layers)
		return -EINVAL;
	uint64_t D = c->hidden_size, I = c->moe_intermediate_size;
	s->n_layers = (uint32_t)c->num_hidden_layers;
	s->first_dense = (uint32_t)c->first_k_dense_replace;
	s->n_experts = (uint32_t)c->n_routed_experts;
	s->k = (uint32_t)c->num_experts_per_tok;
	s->hidden = (uint32_t)D;
	s->moe_inter = (uint32_t)I;
	s->expert_bytes = 2 * fp8_bytes(I, D) + fp8_bytes(D, I);
	uint64_t shI = (uint64_t)c->n_shared_experts * I;
	s->layer_bytes = attn_bytes(c) + (shI ? 2 * fp8_bytes(shI, D) + fp8_bytes(D, shI) : 0) +
			 (uint64_t)c->n_routed_experts * D * 2 + (uint64_t)c->n_routed_experts * 4;
	uint64_t dense = attn_bytes(c) + 2 * fp8_bytes(c->intermediate_size, D) +
			 fp8_bytes(D, c->intermediate_size);
	s->other_bytes =
	    (uint64_t)c->first_k_dense_replace * dense + (uint64_t)c->vocab_size * D * 2 + D * 2;
	return 0;
}

/* ---- little-endian fields ---------------------------------------------------------------- */

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}
static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}
static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t get64(const uint8_t *p)
{
	return get32(p) | (uint64_t)get32(p + 4) << 32;
}
static float getf(const uint8_t *p)
{
	uint32_t u = get32(p);
	float f;
	memcpy(&f, &u, 4);
	return f;
}
static void putf(uint8_t *p, float f)
{
	uint32_t u;
	memcpy(&u, &f, 4);
	put32(p, u);
}

static size_t rec_bytes(uint32_t k)
{
	return 8 + 16 * (size_t)k;
}

void expert_trace_encode_header(const struct expert_trace_shape *s,
				uint8_t h[EXPERT_TRACE_HDR_BYTES])
{
	memset(h, 0, EXPERT_TRACE_HDR_BYTES);
	put32(h + 0, EXPERT_TRACE_MAGIC);
	h[4] = EXPERT_TRACE_VERSION & 0xFF;
	h[5] = EXPERT_TRACE_VERSION >> 8;
	h[6] = EXPERT_TRACE_HDR_BYTES & 0xFF;
	h[7] = EXPERT_TRACE_HDR_BYTES >> 8;
	put32(h + 8, s->n_layers);
	put32(h + 12, s->first_dense);
	put32(h + 16, s->n_experts);
	put32(h + 20, s->k);
	put32(h + 24, s->hidden);
	put32(h + 28, s->moe_inter);
	put64(h + 32, s->expert_bytes);
	put64(h + 40, s->layer_bytes);
	put64(h + 48, s->other_bytes);
	put32(h + 56, (uint32_t)rec_bytes(s->k));
	put32(h + 60, 0);
}

size_t expert_trace_encode_record(uint32_t k, int32_t layer, int32_t pos, const int32_t *expert,
				  const float *weight, const int32_t *pred1, const int32_t *pred2,
				  uint8_t *out)
{
	put32(out, (uint32_t)layer);
	put32(out + 4, (uint32_t)pos);
	for (uint32_t j = 0; j < k; j++) {
		put32(out + 8 + 4 * j, (uint32_t)expert[j]);
		putf(out + 8 + 4 * (k + j), weight ? weight[j] : 1.0f);
		put32(out + 8 + 4 * (2 * k + j), (uint32_t)(pred1 ? pred1[j] : -1));
		put32(out + 8 + 4 * (3 * k + j), (uint32_t)(pred2 ? pred2[j] : -1));
	}
	return rec_bytes(k);
}

/* ---- reader ------------------------------------------------------------------------------ */

void expert_trace_free(struct expert_trace *t)
{
	free(t->layer);
	free(t->pos);
	free(t->expert);
	free(t->weight);
	free(t->pred1);
	free(t->pred2);
	memset(t, 0, sizeof *t);
}

#define BAD(...)                                                                                   \
	do {                                                                                       \
		if (errlen)                                                                        \
			snprintf(err, errlen, __VA_ARGS__);                                        \
		expert_trace_free(t);                                                              \
		return -EINVAL;                                                                    \
	} while (0)

int expert_trace_parse(const void *buf, size_t len, const char *src, struct expert_trace *t,
		       char *err, size_t errlen)
{
	const uint8_t *b = buf;
	memset(t, 0, sizeof *t);
	if (len < EXPERT_TRACE_HDR_BYTES)
		BAD("%s: header: %zu bytes, need %d", src, len, EXPERT_TRACE_HDR_BYTES);
	if (get32(b) != EXPERT_TRACE_MAGIC)
		BAD("%s: magic: 0x%08x is not an expert trace (0x%08x)", src, get32(b),
		    EXPERT_TRACE_MAGIC);
	unsigned ver = b[4] | b[5] << 8, hb = b[6] | b[7] << 8;
	if (ver != EXPERT_TRACE_VERSION)
		BAD("%s: version: %u, this build reads %d", src, ver, EXPERT_TRACE_VERSION);
	if (hb != EXPERT_TRACE_HDR_BYTES)
		BAD("%s: header_bytes: %u, expected %d", src, hb, EXPERT_TRACE_HDR_BYTES);
	struct expert_trace_shape *s = &t->s;
	s->n_layers = get32(b + 8);
	s->first_dense = get32(b + 12);
	s->n_experts = get32(b + 16);
	s->k = get32(b + 20);
	s->hidden = get32(b + 24);
	s->moe_inter = get32(b + 28);
	s->expert_bytes = get64(b + 32);
	s->layer_bytes = get64(b + 40);
	s->other_bytes = get64(b + 48);
	uint32_t rb = get32(b + 56), flags = get32(b + 60);
	if (s->n_layers < 1 || s->n_layers > EXPERT_TRACE_MAX_LAYERS)
		BAD("%s: num_hidden_layers: %u out of range 1..%d", src, s->n_layers,
		    EXPERT_TRACE_MAX_LAYERS);
	if (s->first_dense >= s->n_layers)
		BAD("%s: first_k_dense_replace: %u, must be below num_hidden_layers %u", src,
		    s->first_dense, s->n_layers);
	if (s->n_experts < 1 || s->n_experts > EXPERT_TRACE_MAX_E)
		BAD("%s: n_routed_experts: %u out of range 1..%d", src, s->n_experts,
		    EXPERT_TRACE_MAX_E);
	if (s->k < 1 || s->k > EXPERT_TRACE_MAX_K || s->k > s->n_experts)
		BAD("%s: num_experts_per_tok: %u out of range 1..min(%d, %u)", src, s->k,
		    EXPERT_TRACE_MAX_K, s->n_experts);
	if (s->hidden < 1 || s->moe_inter < 1)
		BAD("%s: hidden_size/moe_intermediate_size: must be positive", src);
	if (s->expert_bytes < 1 || s->expert_bytes > (1ull << 40) ||
	    s->layer_bytes > (1ull << 44) || s->other_bytes > (1ull << 44))
		BAD("%s: expert_bytes/layer_bytes/other_bytes: out of range", src);
	if (rb != rec_bytes(s->k))
		BAD("%s: record_bytes: %u, expected %zu for k = %u", src, rb, rec_bytes(s->k),
		    s->k);
	if (flags)
		BAD("%s: flags: 0x%x, expected 0", src, flags);
	size_t body = len - EXPERT_TRACE_HDR_BYTES;
	if (body % rb)
		BAD("%s: records: %zu bytes is not a whole number of %u-byte records", src, body,
		    rb);
	size_t n = body / rb, k = s->k;
	t->n = n;
	t->layer = malloc(sizeof(int32_t) * (n ? n : 1));
	t->pos = malloc(sizeof(int32_t) * (n ? n : 1));
	t->expert = malloc(sizeof(int32_t) * (n ? n : 1) * k);
	t->weight = malloc(sizeof(float) * (n ? n : 1) * k);
	t->pred1 = malloc(sizeof(int32_t) * (n ? n : 1) * k);
	t->pred2 = malloc(sizeof(int32_t) * (n ? n : 1) * k);
	uint8_t *seen = calloc(s->n_experts, 1);
	if (!t->layer || !t->pos || !t->expert || !t->weight || !t->pred1 || !t->pred2 || !seen) {
		free(seen);
		expert_trace_free(t);
		if (errlen)
			snprintf(err, errlen, "%s: out of memory for %zu records", src, n);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		const uint8_t *r = b + EXPERT_TRACE_HDR_BYTES + i * rb;
		int32_t L = (int32_t)get32(r), p = (int32_t)get32(r + 4);
		if (L < (int32_t)s->first_dense || L >= (int32_t)s->n_layers) {
			free(seen);
			BAD("%s: record %zu: layer: %d is not a MoE layer (%u..%u)", src, i, L,
			    s->first_dense, s->n_layers - 1);
		}
		if (p < 0) {
			free(seen);
			BAD("%s: record %zu: pos: %d is negative", src, i, p);
		}
		t->layer[i] = L;
		t->pos[i] = p;
		for (size_t j = 0; j < k; j++) {
			int32_t e = (int32_t)get32(r + 8 + 4 * j);
			float w = getf(r + 8 + 4 * (k + j));
			int32_t p1 = (int32_t)get32(r + 8 + 4 * (2 * k + j));
			int32_t p2 = (int32_t)get32(r + 8 + 4 * (3 * k + j));
			const char *bad = NULL;
			if (e < 0 || e >= (int32_t)s->n_experts)
				bad = "expert out of range";
			else if (seen[e])
				bad = "expert chosen twice";
			else if (!isfinite(w))
				bad = "weight not finite";
			else if (p1 < -1 || p1 >= (int32_t)s->n_experts || p2 < -1 ||
				 p2 >= (int32_t)s->n_experts)
				bad = "prediction out of range";
			if (bad) {
				free(seen);
				BAD("%s: record %zu: expert[%zu]: %s (%d)", src, i, j, bad, e);
			}
			seen[e] = 1;
			t->expert[i * k + j] = e;
			t->weight[i * k + j] = w;
			t->pred1[i * k + j] = p1;
			t->pred2[i * k + j] = p2;
		}
		for (size_t j = 0; j < k; j++)
			seen[t->expert[i * k + j]] = 0;
	}
	free(seen);
	return 0;
}
#undef BAD

int expert_trace_load(const char *path, struct expert_trace *t, char *err, size_t errlen)
{
	memset(t, 0, sizeof *t);
	FILE *f = fopen(path, "rb");
	if (!f) {
		int e = errno;
		snprintf(err, errlen, "%s: %s", path, strerror(e));
		return -e;
	}
	size_t cap = 1 << 16, len = 0;
	uint8_t *buf = malloc(cap);
	for (;;) {
		if (!buf) {
			fclose(f);
			snprintf(err, errlen, "%s: out of memory", path);
			return -ENOMEM;
		}
		len += fread(buf + len, 1, cap - len, f);
		if (len < cap)
			break;
		uint8_t *nb = realloc(buf, cap * 2);
		if (!nb)
			free(buf);
		buf = nb;
		cap *= 2;
	}
	int rd_err = ferror(f);
	fclose(f);
	if (rd_err) {
		free(buf);
		snprintf(err, errlen, "%s: read error", path);
		return -EIO;
	}
	int r = expert_trace_parse(buf, len, path, t, err, errlen);
	free(buf);
	return r;
}

void expert_trace_accuracy(const struct expert_trace *t, struct expert_trace_acc *a)
{
	memset(a, 0, sizeof *a);
	size_t k = t->s.k;
	for (int d = 0; d < 2; d++) {
		const int32_t *pred = d ? t->pred2 : t->pred1;
		size_t n = 0;
		double rec = 0, ex = 0;
		for (size_t i = 0; i < t->n; i++) {
			const int32_t *p = pred + i * k, *e = t->expert + i * k;
			if (p[0] < 0)
				continue;
			int hit = 0;
			for (size_t j = 0; j < k; j++)
				for (size_t q = 0; q < k; q++)
					hit += p[q] == e[j];
			n++;
			rec += (double)hit / (double)k;
			ex += hit == (int)k;
		}
		if (d) {
			a->n2 = n;
			a->recall2 = n ? rec / (double)n : 0;
			a->exact2 = n ? ex / (double)n : 0;
		} else {
			a->n1 = n;
			a->recall1 = n ? rec / (double)n : 0;
			a->exact1 = n ? ex / (double)n : 0;
		}
	}
}

/* ---- writer ------------------------------------------------------------------------------ */

/* Gate of MoE layer lw on normed rows xn[T][hidden] -> out[T][k]: the engines' router call. */
static int gate_route(const struct config *c, const struct layer_weights *lw, struct kern_ctx *kc,
		      const float *xn, int T, float *logit, int32_t *out)
{
	int E = c->n_routed_experts, k = c->num_experts_per_tok;
	int r = kern_matmul(kc, &lw->gate, xn, T, logit);
	if (r)
		return r;
	for (int t = 0; t < T; t++) {
		int idx[EXPERT_TRACE_MAX_K];
		float rw[EXPERT_TRACE_MAX_K];
		router_route_token(c, lw->e_score_correction_bias, logit + (size_t)t * E, idx, rw);
		for (int j = 0; j < k; j++)
			out[(size_t)t * k + j] = idx[j];
	}
	return 0;
}

int expert_trace_predict(const struct config *c, const struct layer_weights *lw,
			 struct kern_ctx *kc, const float *x, int T, float *xn, float *logit,
			 int32_t *out)
{
	int D = c->hidden_size;
	for (int t = 0; t < T; t++)
		model_rmsnorm(xn + (size_t)t * D, x + (size_t)t * D, lw->post_attention_layernorm,
			      D, c->rms_norm_eps);
	return gate_route(c, lw, kc, xn, T, logit, out);
}

static int32_t *pred_at(struct expert_trace_writer *w, int d, int layer, int t)
{
	return w->pred + (((size_t)d * w->s.n_layers + layer) * w->max_batch + t) * w->s.k;
}

/* A write error: the errno of the failed write when there is one. */
static int write_err(void)
{
	return errno > 0 ? -errno : -EIO;
}

int expert_trace_writer_record(struct expert_trace_writer *w, struct kern_ctx *kc, int layer,
			       int pos0, int T, const int *idx, const float *rw, const float *xn)
{
	int k = (int)w->s.k, r = 0;
	if (w->error || T > w->max_batch || layer < 0 || layer >= (int)w->s.n_layers ||
	    !w->layers[layer].is_moe)
		return w->error;
	/* self-check: the layer's own gate on its normed input gives the engine's choice */
	if (xn && !(r = gate_route(w->c, &w->layers[layer], kc, xn, T, w->logit, w->idx)))
		for (int t = 0; t < T; t++)
			if (memcmp(w->idx + (size_t)t * k, idx + (size_t)t * k, sizeof(int) * k))
				w->self_mismatch++;
	for (int t = 0; t < T && !r; t++) {
		for (int j = 0; j < k; j++)
			w->idx[j] = idx[(size_t)t * k + j];
		expert_trace_encode_record(w->s.k, layer, pos0 + t, w->idx, rw + (size_t)t * k,
					   pred_at(w, 0, layer, t), pred_at(w, 1, layer, t),
					   w->rec);
		for (int d = 0; d < 2; d++)
			for (int j = 0; j < k; j++)
				pred_at(w, d, layer, t)[j] = -1;
		errno = 0;
		if (fwrite(w->rec, 1, rec_bytes(w->s.k), w->f) != rec_bytes(w->s.k))
			r = write_err();
		w->records++;
	}
	return w->error = r;
}

int expert_trace_writer_wants(const struct expert_trace_writer *w, int layer)
{
	for (int d = 1; d <= 2; d++)
		if (layer + d >= 0 && layer + d < (int)w->s.n_layers && w->layers[layer + d].is_moe)
			return 1;
	return 0;
}

int expert_trace_writer_predict(struct expert_trace_writer *w, struct kern_ctx *kc, int layer,
				const float *x, int T)
{
	int r = 0;
	if (w->error || T > w->max_batch)
		return w->error;
	/* look-ahead: the gates of the next two layers on the residual stream after this one */
	for (int d = 1; d <= 2 && !r; d++) {
		int L = layer + d;
		if (L < 0 || L >= (int)w->s.n_layers || !w->layers[L].is_moe)
			continue;
		r = expert_trace_predict(w->c, &w->layers[L], kc, x, T, w->xn, w->logit,
					 pred_at(w, d - 1, L, 0));
	}
	return w->error = r;
}

/* model.layer_hook of the cpu engine: after decoder layer `layer` of model_forward. */
static void trace_hook(void *ctx, struct model *m, int layer, int pos0, int T)
{
	struct expert_trace_writer *w = ctx;
	if (w->prev_hook)
		w->prev_hook(w->prev_ctx, m, layer, pos0, T);
	if (!expert_trace_writer_record(w, &m->kc, layer, pos0, T, m->ridx, m->rw, m->xn))
		expert_trace_writer_predict(w, &m->kc, layer, m->x, T);
}

int expert_trace_writer_init(struct expert_trace_writer *w, const struct config *c,
			     const struct layer_weights *layers, int max_batch, const char *path,
			     char *err, size_t errlen)
{
	memset(w, 0, sizeof *w);
	if (expert_trace_shape_from_config(c, &w->s)) {
		snprintf(err, errlen, "--expert-trace %s: the model has no MoE layers", path);
		return -EINVAL;
	}
	if (w->s.k > EXPERT_TRACE_MAX_K || w->s.n_experts > 4096) {
		snprintf(err, errlen,
			 "--expert-trace %s: num_experts_per_tok/n_routed_experts too "
			 "large for a trace",
			 path);
		return -EINVAL;
	}
	w->c = c;
	w->layers = layers;
	w->path = path;
	w->max_batch = max_batch > 0 ? max_batch : 1;
	size_t np = (size_t)2 * w->s.n_layers * w->max_batch * w->s.k;
	w->pred = malloc(sizeof(int32_t) * np);
	w->xn = malloc(sizeof(float) * (size_t)w->max_batch * w->s.hidden);
	w->logit = malloc(sizeof(float) * (size_t)w->max_batch * w->s.n_experts);
	w->idx = malloc(sizeof(int32_t) * (size_t)w->max_batch * w->s.k);
	w->rec = malloc(rec_bytes(w->s.k));
	if (!w->pred || !w->xn || !w->logit || !w->idx || !w->rec) {
		snprintf(err, errlen, "--expert-trace %s: out of memory", path);
		expert_trace_writer_close(w);
		return -ENOMEM;
	}
	for (size_t i = 0; i < np; i++)
		w->pred[i] = -1;
	w->f = fopen(path, "wb");
	if (!w->f) {
		int e = errno;
		snprintf(err, errlen, "--expert-trace %s: %s", path, strerror(e));
		expert_trace_writer_close(w);
		return -e;
	}
	uint8_t h[EXPERT_TRACE_HDR_BYTES];
	expert_trace_encode_header(&w->s, h);
	errno = 0;
	if (fwrite(h, 1, sizeof h, w->f) != sizeof h) {
		int r = write_err();
		snprintf(err, errlen, "--expert-trace %s: write error: %s", path, strerror(-r));
		expert_trace_writer_close(w);
		return r;
	}
	return 0;
}

int expert_trace_writer_open(struct expert_trace_writer *w, struct model *m, const char *path,
			     char *err, size_t errlen)
{
	int r = expert_trace_writer_init(w, m->c, m->w->layers, m->o.max_batch, path, err, errlen);
	if (r)
		return r;
	w->m = m;
	w->prev_hook = m->layer_hook;
	w->prev_ctx = m->layer_hook_ctx;
	m->layer_hook = trace_hook;
	m->layer_hook_ctx = w;
	return 0;
}

int expert_trace_writer_close(struct expert_trace_writer *w)
{
	int r = w->error;
	if (w->m && w->m->layer_hook == trace_hook && w->m->layer_hook_ctx == w) {
		w->m->layer_hook = w->prev_hook;
		w->m->layer_hook_ctx = w->prev_ctx;
	}
	if (w->f) {
		errno = 0;
		if (fclose(w->f) && !r)
			r = write_err();
	}
	free(w->pred);
	free(w->xn);
	free(w->logit);
	free(w->idx);
	free(w->rec);
	memset(w, 0, sizeof *w);
	return r;
}

int expert_trace_attach(struct engine *e, const char *path, struct expert_trace_writer **out,
			char *err, size_t errlen)
{
	*out = NULL;
	int cpu = e->ops && !strcmp(e->ops->name, "cpu") && e->impl;
	if (!cpu && (!e->ops || !e->ops->expert_trace)) {
		snprintf(err, errlen, "--expert-trace: backend %s does not route on the host",
			 e->ops ? e->ops->name : "?");
		return -ENOTSUP;
	}
	struct expert_trace_writer *w = calloc(1, sizeof *w);
	if (!w) {
		snprintf(err, errlen, "--expert-trace %s: out of memory", path);
		return -ENOMEM;
	}
	int r =
	    cpu ? expert_trace_writer_open(w, e->impl, path, err, errlen)
		: expert_trace_writer_init(w, e->c, e->w->layers, e->max_batch, path, err, errlen);
	if (!r && !cpu) {
		if ((r = e->ops->expert_trace(e, w))) {
			snprintf(err, errlen, "--expert-trace %s: %s", path, strerror(-r));
			expert_trace_writer_close(w);
		} else {
			w->e = e;
		}
	}
	if (r) {
		free(w);
		return r;
	}
	*out = w;
	return 0;
}

int expert_trace_detach(struct expert_trace_writer *w)
{
	if (!w)
		return 0;
	if (w->e)
		w->e->ops->expert_trace(w->e, NULL);
	int r = expert_trace_writer_close(w);
	free(w);
	return r;
}
