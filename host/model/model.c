/*
 * model.c - the host forward pass (model.h): embedding, MLA with decoupled RoPE/YaRN and a
 * compressed KV cache, dense FFN and MoE (router: noaux_tc / greedy / group_limited_greedy with
 * sigmoid or softmax scores), the final norm and lm_head, and the MTP module. Matrix products go
 * through kernels.h; everything else is here, in f32, parallel over tokens/heads/rows.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include "e4m3.h"
#include "model/model.h"
#include "prof/prof.h"
#include "model/router.h"
#include "load/safetensors.h"

#define MODEL_MAX_TOPK 64
/* Most heads per attention work item (m->attn_hg, set at open): the absorbed form reads each
 * cached latent row once for all of them (from L1 after the first four), not once per head. */
#define ATTN_HG 16

/* ---- small vector ops ------------------------------------------------------------------------ */

/* RMSNorm (docs/model.md, Block): w * x * rsqrt(mean(x^2) + eps); sum of squares in double. */
void model_rmsnorm(float *out, const float *x, const float *w, int n, double eps)
{
	double ss = 0;
	for (int i = 0; i < n; i++)
		ss += (double)x[i] * x[i];
	float r = (float)(1.0 / sqrt(ss / n + eps));
	for (int i = 0; i < n; i++)
		out[i] = w[i] * (x[i] * r);
}

/* Interleaved-pair RoPE (GPT-J convention, docs/model.md, RoPE) at a precomputed table row. */
static void rope_apply(float *v, int d, const float *cs, const float *sn)
{
	for (int i = 0; i < d / 2; i++) {
		float a = v[2 * i], b = v[2 * i + 1];
		v[2 * i] = a * cs[i] - b * sn[i];
		v[2 * i + 1] = a * sn[i] + b * cs[i];
	}
}

static float silu(float x)
{
	return x / (1.0f + expf(-x));
}

/* Softmax over n scores in place, in f32 with the max subtracted (docs/model.md, MLA). */
static void softmax_inplace(float *sc, int n)
{
	float mx = -INFINITY, sum = 0;
	for (int s = 0; s < n; s++)
		mx = sc[s] > mx ? sc[s] : mx;
	for (int s = 0; s < n; s++)
		sum += (sc[s] = expf(sc[s] - mx));
	float inv = 1.0f / sum;
	for (int s = 0; s < n; s++)
		sc[s] *= inv;
}

/* Embedding row of token t into out[hidden] (any qmat format, no scale for BF16). */
static void embed_row(const struct qmat *E, int t, float *out)
{
	int n = E->cols;
	if (E->fmt == QMAT_BF16) {
		const uint16_t *r = (const uint16_t *)E->w + (size_t)t * n;
		for (int i = 0; i < n; i++)
			out[i] = bf16_to_f32(r[i]);
	} else {
		for (int i = 0; i < n; i++)
			out[i] = qmat_get(E, t, i);
	}
}

/* ---- RoPE / YaRN (docs/model.md, RoPE; YaRN) -------------------------------------------- */

static double yarn_corr_dim(double rot, int d, double base, double L0)
{
	return d * log(L0 / (rot * 2 * M_PI)) / (2 * log(base));
}

static double yarn_mscale(double f, double ms)
{
	return f <= 1 ? 1.0 : 0.1 * ms * log(f) + 1.0;
}

double model_rope_freq(const struct config *c, int i)
{
	int d = c->qk_rope_head_dim;
	double base = c->rope_theta;
	double th = pow(base, -2.0 * i / d);
	const struct config_rope_scaling *rs = &c->rope_scaling;
	if (!rs->yarn)
		return th;
	double L0 = rs->original_max_position_embeddings;
	double low = floor(yarn_corr_dim(rs->beta_fast, d, base, L0));
	double high = ceil(yarn_corr_dim(rs->beta_slow, d, base, L0));
	if (low < 0)
		low = 0;
	if (high > d - 1)
		high = d - 1;
	if (low == high)
		high += 0.001;
	double ramp = (i - low) / (high - low);
	ramp = ramp < 0 ? 0 : ramp > 1 ? 1 : ramp;
	return th / rs->factor * ramp + th * (1 - ramp);
}

double model_softmax_scale(const struct config *c)
{
	double s = 1.0 / sqrt((double)config_qk_head_dim(c));
	if (c->rope_scaling.yarn && c->rope_scaling.factor > 1) {
		double m = yarn_mscale(c->rope_scaling.factor, c->rope_scaling.mscale_all_dim);
		s *= m * m;
	}
	return s;
}

/* ---- init / free ------------------------------------------------------------------------------ */

static int layers_total(const struct model *m)
{
	return m->c->num_hidden_layers + 1;
}

static float *kv_row(struct model *m, int layer, int pos)
{
	return m->kv + ((size_t)layer * m->o.max_seq + pos) * m->kv_dim;
}

/* Row t of a forward: its position, and the KV cache it reads and appends to (model_forward_rows
 * gives each row its own; otherwise every row is the model's own cache at pos0 + t). */
static int row_pos(const struct model *m, int pos0, int t)
{
	return m->row_pos ? m->row_pos[t] : pos0 + t;
}

static float *row_kv(struct model *m, int t, int layer, int pos)
{
	if (!m->row_kv)
		return kv_row(m, layer, pos);
	const struct model_kv *k = m->row_kv[t];
	return k->blocks[pos / k->bs] + ((size_t)layer * k->bs + pos % k->bs) * m->kv_dim;
}

void model_free(struct model *m)
{
	if (m->pool)
		pool_free(m->pool);
	kern_ctx_free(&m->kc);
	kern_ctx_free(&m->kc_f32);
	float **bufs[] = {
	    &m->kv,   &m->rope_cos,   &m->rope_sin,	&m->x,	  &m->xn, &m->tmp,    &m->qa,
	    &m->q,    &m->kva,	      &m->qlat,		&m->lat,  &m->ao, &m->scores, &m->kexp,
	    &m->vexp, &m->kvexp_full, &m->gbuf,		&m->ubuf, &m->xg, &m->eout,   &m->rlogits,
	    &m->rw,   &m->cat,	      &m->route.margin, &m->wub};
	for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) {
		free(*bufs[i]);
		*bufs[i] = NULL;
	}
	free((void *)m->head8.w);
	free((void *)m->head8.scale);
	free(m->headp);
	head_screen_free(&m->hs);
	free(m->ridx);
	free(m->slot_of);
	free(m->route.idx);
	free(m->jobs);
	memset(m, 0, sizeof *m);
}

static int imax(int a, int b)
{
	return a > b ? a : b;
}

/* --head fp8: h quantized to E4M3 with one scale per 128x128 block (amax / 448, the release
 * layout's weight_scale_inv), into out. 0 or -ENOMEM. */
struct head8_ctx {
	const struct qmat *h;
	uint8_t *w;
	float *s;
	int b0; /* first block row of this pass */
};

/* Block rows [b, e) of head_to_fp8: each 128x128 block's amax, scale and codes. */
static void head8_task(void *vc, int b, int e, int tid)
{
	const struct head8_ctx *hc = vc;
	const struct qmat *h = hc->h;
	int R = h->rows, C = h->cols, sc = (C + 127) / 128;
	float row[128];
	for (int br = hc->b0 + b; br < hc->b0 + e; br++)
		for (int bc = 0; bc < sc; bc++) {
			int r1 = R - br * 128 < 128 ? R - br * 128 : 128;
			int c1 = C - bc * 128 < 128 ? C - bc * 128 : 128;
			float amax = 0;
			for (int r = 0; r < r1; r++)
				for (int c = 0; c < c1; c++) {
					float v = fabsf(qmat_get(h, br * 128 + r, bc * 128 + c));
					amax = v > amax ? v : amax;
				}
			float scale = amax > 0 ? amax / 448.0f : 1.0f;
			hc->s[(size_t)br * sc + bc] = scale;
			for (int r = 0; r < r1; r++) {
				for (int c = 0; c < c1; c++)
					row[c] = qmat_get(h, br * 128 + r, bc * 128 + c);
				uint8_t *o = hc->w + (size_t)(br * 128 + r) * C + bc * 128;
				for (int c = 0; c < c1; c++)
					o[c] = e4m3_encode(row[c] / scale);
			}
		}
}

/* The passes of a head copy (head_to_fp8, head_pack) over 8192 rows at a time (16 MiB of a BF16
 * head of 1024 columns) in units of unit_rows rows: fn runs units [*u0 + b, *u0 + e) of ctx on
 * the pool, and with release each pass's source rows are dropped once done (st_release), so
 * the checkpoint's head is never resident whole. */
static void head_passes(struct pool *p, const struct qmat *h, int release, int unit_rows, int grain,
			pool_fn fn, void *ctx, int *u0)
{
	int nu = (h->rows + unit_rows - 1) / unit_rows, per = 8192 / unit_rows;
	size_t es = h->fmt == QMAT_F32 ? 4 : 2;
	for (int b0 = 0; b0 < nu; b0 += per) {
		int n = nu - b0 < per ? nu - b0 : per;
		*u0 = b0;
		pool_for(p, n, grain, fn, ctx);
		if (release) {
			size_t r0 = (size_t)b0 * unit_rows, r1 = (size_t)(b0 + n) * unit_rows;
			r1 = r1 < (size_t)h->rows ? r1 : (size_t)h->rows;
			st_release((const char *)h->w + r0 * h->cols * es,
				   (r1 - r0) * h->cols * es);
		}
	}
}

/* --head fp8: lm_head quantized to E4M3 with one scale per 128x128 block (amax / 448), on the
 * pool's threads. */
static int head_to_fp8(struct pool *p, const struct qmat *h, int release, struct qmat *out)
{
	int R = h->rows, C = h->cols, sc = (C + 127) / 128, sr = (R + 127) / 128;
	uint8_t *w = malloc((size_t)R * C);
	float *s = malloc(sizeof(float) * (size_t)sr * sc);
	if (!w || !s) {
		free(w);
		free(s);
		return -ENOMEM;
	}
	struct head8_ctx hc = {h, w, s, 0};
	head_passes(p, h, release, 128, 1, head8_task, &hc, &hc.b0);
	*out = (struct qmat){.rows = R,
			     .cols = C,
			     .fmt = QMAT_FP8,
			     .w = w,
			     .scale = s,
			     .scale_cols = sc,
			     .name = "lm_head.weight (fp8)"};
	return 0;
}

struct headp_ctx {
	const struct qmat *h;
	uint16_t *wp;
	int p0; /* first panel of this pass */
};

static void headp_task(void *vc, int b, int e, int tid)
{
	const struct headp_ctx *hc = vc;
	(void)tid;
	kern_bf16p_pack((const uint16_t *)hc->h->w, hc->h->rows, hc->h->cols, hc->p0 + b,
			hc->p0 + e, hc->wp);
}

/* A BF16 lm_head packed in panels of KERN_PW rows, k-major (kern_bf16p_pack), on the pool's
 * threads: every logit one FMA chain in ascending k, the same bits for every batch size (serve's
 * rows) and, unlike the rows path's two-accumulator dots, the FMAs of several inputs share each
 * widened weight vector in registers. */
static int head_pack(struct pool *p, const struct qmat *h, int release, uint16_t **out)
{
	size_t bytes = (size_t)kern_bf16p_panels(h->rows) * h->cols * KERN_PW * sizeof(uint16_t);
	void *wp = NULL;
	if (posix_memalign(&wp, (size_t)2 << 20, bytes))
		return -ENOMEM;
#ifdef MADV_HUGEPAGE
	madvise(wp, bytes, MADV_HUGEPAGE);
#endif
	struct headp_ctx c = {h, wp, 0};
	head_passes(p, h, release, KERN_PW, 8, headp_task, &c, &c.p0);
	*out = wp;
	return 0;
}

int model_init(struct model *m, const struct config *c, const struct weights *w,
	       const struct model_opts *o, char *err, size_t errlen)
{
	memset(m, 0, sizeof *m);
	m->c = c;
	m->w = w;
	m->o = *o;
	if (m->o.max_seq <= 0)
		m->o.max_seq = 4096;
	if (m->o.max_batch <= 0)
		m->o.max_batch = 64;
	if (o->act_fp8 && !w->fp8) {
		snprintf(err, errlen,
			 "--act fp8: the checkpoint has no FP8 weights (use --act none)");
		return -EINVAL;
	}
	if (c->num_experts_per_tok > MODEL_MAX_TOPK) {
		snprintf(err, errlen, "config.json: num_experts_per_tok: more than %d",
			 MODEL_MAX_TOPK);
		return -EINVAL;
	}
	int B = m->o.max_batch, S = m->o.max_seq, D = c->hidden_size, H = c->num_attention_heads;
	int nope = c->qk_nope_head_dim, rope = c->qk_rope_head_dim, vd = c->v_head_dim;
	int kvl = c->kv_lora_rank, E = c->n_routed_experts, k = c->num_experts_per_tok;
	int sh_inter = c->n_shared_experts * c->moe_intermediate_size;
	int inter = imax(c->intermediate_size, imax(c->moe_intermediate_size, sh_inter));
	int kk = E > 0 ? k : 0;
	m->kv_dim = kvl + rope;
	m->pool = pool_create(o->n_threads);
	if (!m->pool)
		goto nomem;
	int nt = pool_nthreads(m->pool);
	int maxdim = imax(imax(2 * D, inter), imax(H * vd, imax(c->q_lora_rank, kvl)));
	size_t qfloats = (size_t)B * (kk + 2) * maxdim * 2;
	if (kern_ctx_init(&m->kc, m->pool, o->act_fp8, c->quantization_config.ue8m0, qfloats,
			  maxdim) ||
	    kern_ctx_init(&m->kc_f32, m->pool, 0, 0, 0, maxdim))
		goto nomem;
	if (o->head_fp8 && w->lm_head.fmt != QMAT_FP8 &&
	    head_to_fp8(m->pool, &w->lm_head, o->head_release, &m->head8))
		goto nomem;
	if (!o->head_fp8 && w->lm_head.fmt == QMAT_BF16 && w->lm_head.w &&
	    head_pack(m->pool, &w->lm_head, o->head_release, &m->headp))
		goto nomem;
	/* the 8-bit screen of the packed head (a head with a non-finite weight gets none) */
	if (o->head_screen && m->headp &&
	    head_screen_build(&m->hs, m->pool, m->headp, w->lm_head.rows, w->lm_head.cols) ==
		-ENOMEM)
		goto nomem;
#define ALLOC(p, n)                                                                                \
	do {                                                                                       \
		(p) = calloc((size_t)(n) > 0 ? (size_t)(n) : 1, sizeof(*(p)));                     \
		if (!(p))                                                                          \
			goto nomem;                                                                \
	} while (0)
	ALLOC(m->kv, (size_t)layers_total(m) * S * m->kv_dim);
	ALLOC(m->rope_cos, (size_t)S * (rope / 2));
	ALLOC(m->rope_sin, (size_t)S * (rope / 2));
	ALLOC(m->x, (size_t)B * D);
	ALLOC(m->xn, (size_t)B * D);
	ALLOC(m->tmp, (size_t)B * D);
	ALLOC(m->qa, (size_t)B * imax(c->q_lora_rank, 1));
	ALLOC(m->q, (size_t)B * H * (nope + rope));
	ALLOC(m->kva, (size_t)B * m->kv_dim);
	ALLOC(m->qlat, (size_t)B * H * (kvl + c->qk_rope_head_dim));
	ALLOC(m->lat, (size_t)B * H * kvl);
	ALLOC(m->ao, (size_t)B * H * vd);
	/* a decode step's heads split over the threads (a multiple of four heads an item, the
	 * products' group), so each thread reads the latent cache once, not once per four heads */
	m->attn_hg = (H + nt - 1) / nt;
	m->attn_hg = m->attn_hg < 4 ? 4 : m->attn_hg > ATTN_HG ? ATTN_HG : (m->attn_hg + 3) & ~3;
	ALLOC(m->scores, (size_t)nt * m->attn_hg * S);
	m->wub_floats = (size_t)imax(nope, vd) * kvl;
	ALLOC(m->wub, (size_t)nt * m->wub_floats);
	if (o->naive_attn) {
		ALLOC(m->kexp, (size_t)S * H * nope);
		ALLOC(m->vexp, (size_t)S * H * vd);
		ALLOC(m->kvexp_full, (size_t)S * H * (nope + vd));
	}
	ALLOC(m->gbuf, (size_t)B * (kk + 1) * inter);
	ALLOC(m->ubuf, (size_t)B * (kk + 1) * inter);
	ALLOC(m->xg, (size_t)B * imax(kk, 1) * D);
	ALLOC(m->eout, (size_t)B * imax(kk, 1) * D);
	ALLOC(m->rlogits, (size_t)B * imax(E, 1));
	ALLOC(m->ridx, (size_t)B * imax(kk, 1));
	ALLOC(m->rw, (size_t)B * imax(kk, 1));
	ALLOC(m->slot_of, (size_t)B * imax(kk, 1));
	ALLOC(m->cat, (size_t)B * 2 * D);
	ALLOC(m->jobs, 2 * (size_t)E + 2);
	ALLOC(m->route.idx, (size_t)B * layers_total(m) * imax(kk, 1));
	ALLOC(m->route.margin, (size_t)B);
#undef ALLOC
	/* RoPE tables: angle in double, cos/sin times the YaRN mscale ratio (1 for V3). */
	double msr = 1.0;
	if (c->rope_scaling.yarn)
		msr = yarn_mscale(c->rope_scaling.factor, c->rope_scaling.mscale) /
		      yarn_mscale(c->rope_scaling.factor, c->rope_scaling.mscale_all_dim);
	for (int i = 0; i < rope / 2; i++) {
		double f = model_rope_freq(c, i);
		for (int p = 0; p < S; p++) {
			m->rope_cos[(size_t)p * (rope / 2) + i] = (float)(cos(p * f) * msr);
			m->rope_sin[(size_t)p * (rope / 2) + i] = (float)(sin(p * f) * msr);
		}
	}
	m->softmax_scale = (float)model_softmax_scale(c);
	return 0;
nomem:
	model_free(m);
	snprintf(err, errlen, "out of memory allocating the run state (max_seq %d, batch %d)",
		 o->max_seq, o->max_batch);
	return -ENOMEM;
}

void model_set_isa(struct model *m, const struct kern_isa *isa)
{
	m->kc.isa = isa;
	m->kc_f32.isa = isa;
}

void model_truncate(struct model *m, int pos, int mtp_pos)
{
	if (pos >= 0 && pos < m->pos)
		m->pos = pos;
	if (mtp_pos >= 0 && mtp_pos < m->mtp_pos)
		m->mtp_pos = mtp_pos;
}

/* A profiler slice of the cpu engine's forward (docs/profiling.md): the host time since the
 * previous one, under name (class cat, layer), with the bytes of weights and cache it read. One
 * NULL test when the profiler is off. */
static void cpu_slice(const char *name, const char *cat, int layer, double bytes)
{
	if (prof_g)
		prof_host_bytes(name, cat, layer, (uint64_t)bytes);
}

/* ---- attention ---------------------------------------------------------------------------- */

struct attn_ctx {
	struct model *m;
	const struct layer_weights *lw;
	int layer; /* KV slot */
	int pos0, T;
};

/* One (token, group of m->attn_hg heads): RoPE q_pe, then absorbed or naive attention over
 * positions <= pos0+t. Each head's arithmetic is the same whatever the group (the scores and the
 * weighted sum of a head in ascending position), the products taking four heads a call while the
 * cache rows are in L1. */
static void attn_task(void *vc, int b, int e, int tid)
{
	struct attn_ctx *a = vc;
	struct model *m = a->m;
	const struct config *c = m->c;
	const struct kern_isa *isa = m->kc.isa;
	int H = c->num_attention_heads, nope = c->qk_nope_head_dim, rope = c->qk_rope_head_dim;
	int vd = c->v_head_dim, kvl = c->kv_lora_rank, qd = nope + rope;
	int HG = m->attn_hg, G = (H + HG - 1) / HG;
	float *scb = m->scores + (size_t)tid * HG * m->o.max_seq;
	for (int it = b; it < e; it++) {
		int t = it / G, h0 = it % G * HG, p = row_pos(m, a->pos0, t), S = p + 1;
		int nh = H - h0 < HG ? H - h0 : HG;
		if (nh < 1)
			continue; /* (h0 < H by construction) */
		float *qh[ATTN_HG], *ql[ATTN_HG], *lt[ATTN_HG], *sc[ATTN_HG];
		for (int i = 0; i < nh; i++) {
			int h = h0 + i;
			qh[i] = m->q + ((size_t)t * H + h) * qd;
			sc[i] = scb + (size_t)i * m->o.max_seq;
			if (m->o.naive_attn) /* (absorbed: absorb_in_task ropes q_pe) */
				rope_apply(qh[i] + nope, rope, m->rope_cos + (size_t)p * (rope / 2),
					   m->rope_sin + (size_t)p * (rope / 2));
		}
		if (m->o.naive_attn) {
			for (int i = 0; i < nh; i++) {
				int h = h0 + i;
				float *out = m->ao + ((size_t)t * H + h) * vd;
				for (int s = 0; s < S; s++) {
					const float *kn = m->kexp + ((size_t)s * H + h) * nope;
					const float *kv = kv_row(m, a->layer, s);
					float d1 = 0, d2 = 0;
					for (int k = 0; k < nope; k++)
						d1 += qh[i][k] * kn[k];
					for (int k = 0; k < rope; k++)
						d2 += qh[i][nope + k] * kv[kvl + k];
					sc[i][s] = (d1 + d2) * m->softmax_scale;
				}
				softmax_inplace(sc[i], S);
				memset(out, 0, sizeof(float) * vd);
				for (int s = 0; s < S; s++) {
					const float *vv = m->vexp + ((size_t)s * H + h) * vd;
					for (int j = 0; j < vd; j++)
						out[j] += sc[i][s] * vv[j];
				}
			}
			continue;
		}
		/* each head's query against a cache row [c_kv | k_pe]: [W_UK^T q_nope | q_pe]
		 * (absorb_in_task) */
		int ldq = kvl + rope;
		for (int i = 0; i < nh; i++) {
			int h = h0 + i;
			ql[i] = m->qlat + ((size_t)t * H + h) * ldq;
			lt[i] = m->lat + ((size_t)t * H + h) * kvl;
		}
		for (int s = 0; s < S; s += 2) {
			/* two cache rows against the group's heads (consecutive rows of qlat) */
			const float *kv[2] = {row_kv(m, t, a->layer, s),
					      s + 1 < S ? row_kv(m, t, a->layer, s + 1) : NULL};
			float d[2][ATTN_HG];
			for (int g = 0; g < nh; g += KERN_MB)
				isa->dot_f32_rows(kv, s + 1 < S ? 2 : 1, ql[g], ldq,
						  nh - g < KERN_MB ? nh - g : KERN_MB, ldq,
						  d[0] + g, ATTN_HG);
			for (int r = 0; r < 2 && s + r < S; r++)
				for (int i = 0; i < nh; i++)
					sc[i][s + r] = d[r][i] * m->softmax_scale;
		}
		for (int i = 0; i < nh; i++) {
			softmax_inplace(sc[i], S);
			memset(lt[i], 0, sizeof(float) * kvl);
		}
		int s0 = 0;
		for (; s0 + 4 <= S; s0 += 4) { /* the group's rows of lat are consecutive */
			const float *xs[4] = {
			    row_kv(m, t, a->layer, s0), row_kv(m, t, a->layer, s0 + 1),
			    row_kv(m, t, a->layer, s0 + 2), row_kv(m, t, a->layer, s0 + 3)};
			for (int g = 0; g < nh; g += KERN_MB)
				isa->axpy4_rows_f32(lt[g], kvl, sc[g] + s0, m->o.max_seq, xs,
						    nh - g < KERN_MB ? nh - g : KERN_MB, kvl);
		}
		for (int s = s0; s < S; s++) {
			const float *kv = row_kv(m, t, a->layer, s);
			for (int i = 0; i < nh; i++)
				isa->axpy_f32(lt[i], sc[i][s], kv, kvl);
		}
	}
}

/* One row and an FP8 kv_b: the ISA's products on the codes, the same bits without the f32 copy
 * (kernels.h axpy_fp8s, dot_fp8s_rows). */
static int absorb_fused(const struct model *m, const struct qmat *kvb, int T)
{
	return T == 1 && kvb->fmt == QMAT_FP8 && m->kc.isa->axpy_fp8s && m->kc.isa->dot_fp8s_rows;
}

/*
 * The absorbed form's products with kv_b, one head a work item over all T rows, so each head's
 * W_UK and W_UV rows are dequantized once per forward however many rows it has (prefill chunks,
 * batched decode). In: RoPE on q_pe, then qlat[t][h] = [W_UK^T q_nope | q_pe], the axpys of the
 * rows d = 0.. in order (axpy4_f32 is four axpy_f32 calls). Out: ao[t][h][j] = W_UV[j] . lat[t][h]
 * (dot_f32_rows: the same bits for any grouping of rows and inputs). A row's results are its own.
 */
static void absorb_in_task(void *vc, int b, int e, int tid)
{
	struct attn_ctx *a = vc;
	struct model *m = a->m;
	const struct config *c = m->c;
	const struct kern_isa *isa = m->kc.isa;
	int H = c->num_attention_heads, nope = c->qk_nope_head_dim, rope = c->qk_rope_head_dim;
	int vd = c->v_head_dim, kvl = c->kv_lora_rank, qd = nope + rope, ldq = kvl + rope;
	const struct qmat *kvb = &a->lw->kv_b_proj;
	float *wk = m->wub + (size_t)tid * m->wub_floats;
	int fused = absorb_fused(m, kvb, a->T);
	for (int h = b; h < e; h++) {
		for (int d = 0; d < nope && !fused; d++)
			kern_dec_row(isa, kvb, h * (nope + vd) + d, wk + (size_t)d * kvl);
		for (int t = 0; t < a->T; t++) {
			int p = row_pos(m, a->pos0, t);
			float *q = m->q + ((size_t)t * H + h) * qd;
			float *ql = m->qlat + ((size_t)t * H + h) * ldq;
			rope_apply(q + nope, rope, m->rope_cos + (size_t)p * (rope / 2),
				   m->rope_sin + (size_t)p * (rope / 2));
			memset(ql, 0, sizeof(float) * kvl);
			int d = 0;
			for (; fused && isa->axpy4_fp8s && d + 4 <= nope; d += 4) {
				int r = h * (nope + vd) + d;
				const uint8_t *wr[4] = {
				    qmat_fp8_row(kvb, r), qmat_fp8_row(kvb, r + 1),
				    qmat_fp8_row(kvb, r + 2), qmat_fp8_row(kvb, r + 3)};
				const float *sr[4] = {
				    qmat_fp8_scales(kvb, r), qmat_fp8_scales(kvb, r + 1),
				    qmat_fp8_scales(kvb, r + 2), qmat_fp8_scales(kvb, r + 3)};
				isa->axpy4_fp8s(ql, q + d, wr, sr, kvl);
			}
			for (; fused && d < nope; d++) {
				int r = h * (nope + vd) + d;
				isa->axpy_fp8s(ql, q[d], qmat_fp8_row(kvb, r),
					       qmat_fp8_scales(kvb, r), kvl);
			}
			for (; d + 4 <= nope; d += 4) {
				const float *xs[4] = {
				    wk + (size_t)d * kvl, wk + (size_t)(d + 1) * kvl,
				    wk + (size_t)(d + 2) * kvl, wk + (size_t)(d + 3) * kvl};
				isa->axpy4_f32(ql, q + d, xs, kvl);
			}
			for (; d < nope; d++)
				isa->axpy_f32(ql, q[d], wk + (size_t)d * kvl, kvl);
			memcpy(ql + kvl, q + nope, sizeof(float) * rope);
		}
	}
}

static void absorb_out_task(void *vc, int b, int e, int tid)
{
	struct attn_ctx *a = vc;
	struct model *m = a->m;
	const struct config *c = m->c;
	const struct kern_isa *isa = m->kc.isa;
	int H = c->num_attention_heads, nope = c->qk_nope_head_dim;
	int vd = c->v_head_dim, kvl = c->kv_lora_rank;
	const struct qmat *kvb = &a->lw->kv_b_proj;
	float *wv = m->wub + (size_t)tid * m->wub_floats;
	int fused = absorb_fused(m, kvb, a->T);
	for (int h = b; h < e; h++) {
		for (int j = 0; j < vd && !fused; j++)
			kern_dec_row(isa, kvb, h * (nope + vd) + nope + j, wv + (size_t)j * kvl);
		for (int t0 = 0; t0 < a->T; t0 += KERN_MB) {
			int M = a->T - t0 < KERN_MB ? a->T - t0 : KERN_MB;
			const float *x = m->lat + ((size_t)t0 * H + h) * kvl;
			for (int j = 0; j < vd; j += 2) {
				int P = j + 1 < vd ? 2 : 1, r0 = h * (nope + vd) + nope + j;
				float acc[2][KERN_MB];
				if (fused) {
					const uint8_t *wc[2] = {qmat_fp8_row(kvb, r0),
								qmat_fp8_row(kvb, r0 + P - 1)};
					const float *ws[2] = {qmat_fp8_scales(kvb, r0),
							      qmat_fp8_scales(kvb, r0 + P - 1)};
					isa->dot_fp8s_rows(wc, ws, P, x, H * kvl, M, kvl, acc[0],
							   KERN_MB);
				} else {
					const float *w[2] = {wv + (size_t)j * kvl,
							     wv + (size_t)(j + P - 1) * kvl};
					isa->dot_f32_rows(w, P, x, H * kvl, M, kvl, acc[0],
							  KERN_MB);
				}
				for (int r = 0; r < P; r++)
					for (int i = 0; i < M; i++)
						m->ao[((size_t)(t0 + i) * H + h) * vd + j + r] =
						    acc[r][i];
			}
		}
	}
}

/* MLA sublayer: m->xn[T] -> m->tmp[T] (o_proj output). */
static int mla_forward(struct model *m, const struct layer_weights *lw, int layer, int pos0, int T)
{
	const struct config *c = m->c;
	int D = c->hidden_size, H = c->num_attention_heads, nope = c->qk_nope_head_dim;
	int rope = c->qk_rope_head_dim, vd = c->v_head_dim, kvl = c->kv_lora_rank;
	int r;
	/* q_a (or q) and kv_a both read xn: one parallel region */
	struct kern_job jobs[2];
	int nj = 0;
	if (c->q_lora_rank > 0)
		jobs[nj++] = (struct kern_job){.W = &lw->q_a_proj,
					       .x = m->xn,
					       .ldx = D,
					       .M = T,
					       .y = m->qa,
					       .ldy = c->q_lora_rank};
	else
		jobs[nj++] = (struct kern_job){.W = &lw->q_proj,
					       .x = m->xn,
					       .ldx = D,
					       .M = T,
					       .y = m->q,
					       .ldy = H * (nope + rope)};
	jobs[nj++] = (struct kern_job){.W = &lw->kv_a_proj_with_mqa,
				       .x = m->xn,
				       .ldx = D,
				       .M = T,
				       .y = m->kva,
				       .ldy = m->kv_dim};
	if ((r = kern_matmul_jobs(&m->kc, jobs, nj)))
		return r;
	cpu_slice(c->q_lora_rank > 0 ? "q_a|kv_a (cpu)" : "q|kv_a (cpu)", "attention", layer,
		  qmat_bytes(jobs[0].W) + qmat_bytes(&lw->kv_a_proj_with_mqa));
	if (c->q_lora_rank > 0) {
		for (int t = 0; t < T; t++) {
			float *qa = m->qa + (size_t)t * c->q_lora_rank;
			model_rmsnorm(qa, qa, lw->q_a_layernorm, c->q_lora_rank, c->rms_norm_eps);
		}
		if ((r = kern_matmul(&m->kc, &lw->q_b_proj, m->qa, T, m->q)))
			return r;
		cpu_slice("q_b (cpu)", "attention", layer, qmat_bytes(&lw->q_b_proj));
	}
	/* cache c' = norm(c) and roped k_pe */
	for (int t = 0; t < T; t++) {
		int p = row_pos(m, pos0, t);
		float *kva = m->kva + (size_t)t * m->kv_dim, *dst = row_kv(m, t, layer, p);
		model_rmsnorm(dst, kva, lw->kv_a_layernorm, kvl, c->rms_norm_eps);
		memcpy(dst + kvl, kva + kvl, sizeof(float) * rope);
		rope_apply(dst + kvl, rope, m->rope_cos + (size_t)p * (rope / 2),
			   m->rope_sin + (size_t)p * (rope / 2));
	}
	cpu_slice("kv cache append (cpu)", "attention", layer, 0);
	double cache = 0, kvb = qmat_bytes(&lw->kv_b_proj); /* the cache rows the rows attend to */
	for (int t = 0; prof_g && t < T; t++)		    /* (the profiler's figure only) */
		cache += (double)(row_pos(m, pos0, t) + 1) * m->kv_dim * sizeof(float);
	if (m->o.naive_attn) {
		/* expand k_nope / v for every cached position: [S][H*(nope+v)] rows of kv_b c' */
		int S = pos0 + T, rows = H * (nope + vd);
		float *full = m->kvexp_full;
		struct kern_job j = {.W = &lw->kv_b_proj,
				     .x = kv_row(m, layer, 0),
				     .ldx = m->kv_dim,
				     .M = S,
				     .y = full,
				     .ldy = rows};
		r = kern_matmul_jobs(&m->kc_f32, &j, 1);
		for (int s = 0; s < S && !r; s++)
			for (int h = 0; h < H; h++) {
				memcpy(m->kexp + ((size_t)s * H + h) * nope,
				       full + (size_t)s * rows + h * (nope + vd),
				       sizeof(float) * nope);
				memcpy(m->vexp + ((size_t)s * H + h) * vd,
				       full + (size_t)s * rows + h * (nope + vd) + nope,
				       sizeof(float) * vd);
			}
		if (r)
			return r;
		cpu_slice("kv_b expand (cpu)", "attention", layer,
			  kvb + (double)(pos0 + T) * m->kv_dim * sizeof(float));
	}
	struct attn_ctx ac = {m, lw, layer, pos0, T};
	if (!m->o.naive_attn) {
		pool_for(m->pool, H, 1, absorb_in_task, &ac);
		cpu_slice("W_UK^T q_nope (cpu)", "attention", layer, kvb * nope / (nope + vd));
	}
	pool_for(m->pool, T * ((H + m->attn_hg - 1) / m->attn_hg), 1, attn_task, &ac);
	cpu_slice("mla scores, softmax, sums (cpu)", "attention", layer, cache);
	if (!m->o.naive_attn) {
		pool_for(m->pool, H, 1, absorb_out_task, &ac);
		cpu_slice("W_UV o_lat (cpu)", "attention", layer, kvb * vd / (nope + vd));
	}
	r = kern_matmul(&m->kc, &lw->o_proj, m->ao, T, m->tmp);
	cpu_slice("o_proj (cpu)", "attention", layer, qmat_bytes(&lw->o_proj));
	return r;
}

/* ---- FFN / MoE ----------------------------------------------------------------------------- */

/* g = silu(g) * u over rows of n, and after rows of them (MoE: the routed experts' rows) rows2
 * rows of n2 of a second pair (the shared experts'), in one parallel region. */
struct silu_ctx {
	float *g;
	const float *u;
	int n, rows;
	float *g2;
	const float *u2;
	int n2;
};
static void silu_task(void *vc, int b, int e, int tid)
{
	struct silu_ctx *s = vc;
	(void)tid;
	for (int r = b; r < e; r++) {
		int two = r >= s->rows, n = two ? s->n2 : s->n;
		size_t o = (size_t)(two ? r - s->rows : r) * (size_t)n;
		float *g = (two ? s->g2 : s->g) + o;
		const float *u = (two ? s->u2 : s->u) + o;
		for (int i = 0; i < n; i++)
			g[i] = silu(g[i]) * u[i];
	}
}

/* Dense FFN: xn[T] -> tmp[T]. */
static int dense_forward(struct model *m, const struct ffn_weights *f, int layer, int T)
{
	int D = m->c->hidden_size, I = f->gate.rows, r;
	struct kern_job jobs[2] = {
	    {.W = &f->gate, .x = m->xn, .ldx = D, .M = T, .y = m->gbuf, .ldy = I},
	    {.W = &f->up, .x = m->xn, .ldx = D, .M = T, .y = m->ubuf, .ldy = I},
	};
	if ((r = kern_matmul_jobs(&m->kc, jobs, 2)))
		return r;
	cpu_slice("gate|up (cpu)", "ffn", layer, qmat_bytes(&f->gate) + qmat_bytes(&f->up));
	struct silu_ctx sc = {m->gbuf, m->ubuf, I, T, NULL, NULL, 0};
	pool_for(m->pool, T, 1, silu_task, &sc);
	r = kern_matmul(&m->kc, &f->down, m->gbuf, T, m->tmp);
	cpu_slice("down (cpu)", "ffn", layer, qmat_bytes(&f->down));
	return r;
}

/* MoE FFN: xn[T] -> tmp[T]; routes recorded into route.idx[t][layer]. */
static int moe_forward(struct model *m, const struct layer_weights *lw, int layer, int T)
{
	const struct config *c = m->c;
	int D = c->hidden_size, E = c->n_routed_experts, k = c->num_experts_per_tok;
	int I = c->moe_intermediate_size, r;
	int count[4096], start[4097];
	if (E > 4096)
		return -EINVAL;
	/* router: f32 activations, BF16/F32 weights, never quantized */
	if ((r = kern_matmul(&m->kc, &lw->gate, m->xn, T, m->rlogits)))
		return r;
	memset(count, 0, sizeof(int) * E);
	for (int t = 0; t < T; t++) {
		float mg =
		    router_route_token(c, lw->e_score_correction_bias, m->rlogits + (size_t)t * E,
				       m->ridx + (size_t)t * k, m->rw + (size_t)t * k);
		if (mg < m->route.margin[t])
			m->route.margin[t] = mg;
		for (int j = 0; j < k; j++) {
			int e = m->ridx[(size_t)t * k + j];
			count[e]++;
			m->route.idx[((size_t)t * layers_total(m) + layer) * k + j] = e;
		}
	}
	cpu_slice("router (cpu)", "ffn", layer, qmat_bytes(&lw->gate));
	start[0] = 0;
	for (int e = 0; e < E; e++)
		start[e + 1] = start[e] + count[e];
	memset(count, 0, sizeof(int) * E);
	for (int t = 0; t < T; t++)
		for (int j = 0; j < k; j++) {
			int e = m->ridx[(size_t)t * k + j], row = start[e] + count[e]++;
			m->slot_of[(size_t)t * k + j] = row;
			if (T > 1) /* (one token's experts read its row: below) */
				memcpy(m->xg + (size_t)row * D, m->xn + (size_t)t * D,
				       sizeof(float) * D);
		}
	/* gate/up of every active expert and of the shared experts: one parallel region */
	struct kern_job *jobs = m->jobs;
	int nj = 0, shI = lw->shared.gate.rows;
	float *shg = m->gbuf + (size_t)T * k * I, *shu = m->ubuf + (size_t)T * k * I;
	for (int e = 0; e < E; e++) {
		int M = start[e + 1] - start[e];
		if (!M)
			continue;
		const struct ffn_weights *f = &lw->experts[e];
		/* one token: every expert's input is that token's row, so all the jobs (and the
		 * shared expert's) share one input and kern_matmul_jobs quantizes it once */
		const float *xe = T == 1 ? m->xn : m->xg + (size_t)start[e] * D;
		jobs[nj++] = (struct kern_job){.W = &f->gate,
					       .x = xe,
					       .ldx = D,
					       .M = M,
					       .y = m->gbuf + (size_t)start[e] * I,
					       .ldy = I};
		jobs[nj++] = (struct kern_job){.W = &f->up,
					       .x = xe,
					       .ldx = D,
					       .M = M,
					       .y = m->ubuf + (size_t)start[e] * I,
					       .ldy = I};
	}
	if (shI > 0) {
		jobs[nj++] = (struct kern_job){
		    .W = &lw->shared.gate, .x = m->xn, .ldx = D, .M = T, .y = shg, .ldy = shI};
		jobs[nj++] = (struct kern_job){
		    .W = &lw->shared.up, .x = m->xn, .ldx = D, .M = T, .y = shu, .ldy = shI};
	}
	if ((r = kern_matmul_jobs(&m->kc, jobs, nj)))
		return r;
	double gub = shI > 0 ? qmat_bytes(&lw->shared.gate) + qmat_bytes(&lw->shared.up) : 0;
	double dnb = shI > 0 ? qmat_bytes(&lw->shared.down) : 0;
	for (int e = 0; prof_g && e < E; e++) /* (the profiler's figures only) */
		if (start[e + 1] > start[e]) {
			gub += qmat_bytes(&lw->experts[e].gate) + qmat_bytes(&lw->experts[e].up);
			dnb += qmat_bytes(&lw->experts[e].down);
		}
	cpu_slice("experts gate|up (cpu)", "ffn", layer, gub);
	struct silu_ctx sc = {m->gbuf, m->ubuf, I, T * k, shg, shu, shI};
	pool_for(m->pool, T * k + (shI > 0 ? T : 0), 4, silu_task, &sc);
	cpu_slice("experts silu (cpu)", "ffn", layer, 0);
	/* down projections */
	nj = 0;
	for (int e = 0; e < E; e++) {
		int M = start[e + 1] - start[e];
		if (!M)
			continue;
		jobs[nj++] = (struct kern_job){.W = &lw->experts[e].down,
					       .x = m->gbuf + (size_t)start[e] * I,
					       .ldx = I,
					       .M = M,
					       .y = m->eout + (size_t)start[e] * D,
					       .ldy = D};
	}
	if (shI > 0)
		jobs[nj++] = (struct kern_job){
		    .W = &lw->shared.down, .x = shg, .ldx = shI, .M = T, .y = m->tmp, .ldy = D};
	if ((r = kern_matmul_jobs(&m->kc, jobs, nj)))
		return r;
	if (shI == 0)
		memset(m->tmp, 0, sizeof(float) * (size_t)T * D);
	/* y = shared + sum_j w_j expert_j, in the order the experts were chosen */
	for (int t = 0; t < T; t++) {
		float *y = m->tmp + (size_t)t * D;
		for (int j = 0; j < k; j++) {
			float wj = m->rw[(size_t)t * k + j];
			const float *eo = m->eout + (size_t)m->slot_of[(size_t)t * k + j] * D;
			for (int i = 0; i < D; i++)
				y[i] += wj * eo[i];
		}
	}
	cpu_slice("experts down (cpu)", "ffn", layer, dnb);
	return 0;
}

/* One decoder layer on m->x[T] (in place). */
static int layer_forward(struct model *m, const struct layer_weights *lw, int layer, int pos0,
			 int T)
{
	const struct config *c = m->c;
	int D = c->hidden_size, r;
	for (int t = 0; t < T; t++)
		model_rmsnorm(m->xn + (size_t)t * D, m->x + (size_t)t * D, lw->input_layernorm, D,
			      c->rms_norm_eps);
	if ((r = mla_forward(m, lw, layer, pos0, T)))
		return r;
	for (size_t i = 0; i < (size_t)T * D; i++)
		m->x[i] += m->tmp[i];
	for (int t = 0; t < T; t++)
		model_rmsnorm(m->xn + (size_t)t * D, m->x + (size_t)t * D,
			      lw->post_attention_layernorm, D, c->rms_norm_eps);
	r = lw->is_moe ? moe_forward(m, lw, layer, T) : dense_forward(m, &lw->mlp, layer, T);
	if (r)
		return r;
	for (size_t i = 0; i < (size_t)T * D; i++)
		m->x[i] += m->tmp[i];
	return 0;
}

/* Final norm into xn (and hidden), then head logits for all rows or the last; with ids (the
 * main head, model_has_top1) the rows' greedy tokens instead, from the head's screen. */
static int head_forward(struct model *m, const float *norm_w, const struct qmat *head, int T,
			float *logits, int all_logits, float *hidden, int *ids)
{
	int D = m->c->hidden_size;
	for (int t = 0; t < T; t++)
		model_rmsnorm(m->xn + (size_t)t * D, m->x + (size_t)t * D, norm_w, D,
			      m->c->rms_norm_eps);
	if (hidden)
		memcpy(hidden, m->xn, sizeof(float) * (size_t)T * D);
	if (ids) {
		int n = all_logits ? T : 1;
		int r = head_screen_top1(&m->hs, &m->kc, m->headp,
					 all_logits ? m->xn : m->xn + (size_t)(T - 1) * D, n, ids);
		cpu_slice("lm_head (cpu, 8-bit screen)", "head", -1,
			  (double)head->rows * head->cols);
		return r;
	}
	if (!logits)
		return 0;
	/* --head fp8: the quantized copy of lm_head (the MTP layer's shared head too when it is
	 * lm_head), its input unquantized */
	struct kern_ctx *kc = &m->kc;
	if (m->head8.w && head == &m->w->lm_head) {
		head = &m->head8;
		kc = &m->kc_f32;
	}
	int r = 0;
	const float *xh = all_logits ? m->xn : m->xn + (size_t)(T - 1) * D;
	if (m->headp && head == &m->w->lm_head) /* the packed BF16 head */
		kern_matmul_bf16p(kc, m->headp, head->rows, head->cols, xh, all_logits ? T : 1,
				  logits);
	else
		r = kern_matmul(kc, head, xh, all_logits ? T : 1, logits);
	cpu_slice("lm_head (cpu)", "head", -1,
		  m->headp && head == &m->w->lm_head ? 2.0 * head->rows * head->cols
						     : qmat_bytes(head));
	return r;
}

static int forward_x(struct model *m, const int *tokens, int T, float *logits, int all_logits,
		     float *hidden, int *ids)
{
	const struct config *c = m->c;
	int D = c->hidden_size, r;
	if (T < 1 || T > m->o.max_batch || m->pos + T > m->o.max_seq)
		return -ENOSPC;
	for (int t = 0; t < T; t++) {
		if (tokens[t] < 0 || tokens[t] >= c->vocab_size)
			return -EINVAL;
		embed_row(&m->w->embed_tokens, tokens[t], m->x + (size_t)t * D);
		m->route.margin[t] = INFINITY;
	}
	if (prof_g)
		prof_host("embed", "host", -1);
	for (int l = 0; l < c->num_hidden_layers; l++) {
		if ((r = layer_forward(m, &m->w->layers[l], l, m->pos, T)))
			return r;
		if (m->layer_hook)
			m->layer_hook(m->layer_hook_ctx, m, l, m->pos, T);
	}
	m->pos += T;
	return head_forward(m, m->w->norm, &m->w->lm_head, T, logits, all_logits, hidden, ids);
}

int model_forward(struct model *m, const int *tokens, int T, float *logits, int all_logits,
		  float *hidden)
{
	return forward_x(m, tokens, T, logits, all_logits, hidden, NULL);
}

int model_forward_top1(struct model *m, const int *tokens, int T, int *id)
{
	if (!model_has_top1(m))
		return -ENOTSUP;
	return forward_x(m, tokens, T, NULL, 0, NULL, id);
}

size_t model_kv_block_floats(const struct model *m, int bs)
{
	return (size_t)layers_total(m) * (size_t)bs * (size_t)m->kv_dim;
}

static int forward_rows_x(struct model *m, const int *tokens, int T,
			  const struct model_kv *const *kv, const int *pos, float *logits, int lg,
			  int *ids)
{
	const struct config *c = m->c;
	int D = c->hidden_size, r = 0, last_only = lg == MODEL_LG_LAST;
	if (m->o.naive_attn || lg < MODEL_LG_ALL || lg > MODEL_LG_SEQ)
		return -EINVAL;
	if (T < 1 || T > m->o.max_batch)
		return -ENOSPC;
	for (int t = 0; t < T; t++) {
		if (pos[t] < 0 || pos[t] >= m->o.max_seq || !kv[t] || kv[t]->bs < 1 ||
		    pos[t] >= kv[t]->n_blocks * kv[t]->bs || !kv[t]->blocks[pos[t] / kv[t]->bs])
			return -ENOSPC;
		if (tokens[t] < 0 || tokens[t] >= c->vocab_size)
			return -EINVAL;
		embed_row(&m->w->embed_tokens, tokens[t], m->x + (size_t)t * D);
		m->route.margin[t] = INFINITY;
	}
	m->row_kv = kv;
	m->row_pos = pos;
	/* decode rows: each as it would run alone (kc_f32 too: the --head fp8 head, the naive
	 * form's expansion) */
	m->kc.rows_only = m->kc_f32.rows_only = !last_only;
	for (int l = 0; l < c->num_hidden_layers && !r; l++)
		r = layer_forward(m, &m->w->layers[l], l, 0, T);
	int n = T;
	if (lg == MODEL_LG_SEQ) /* each sequence's last row, moved up to row n (n <= t) */
		for (int t = n = 0; t < T; t++)
			if (t == T - 1 || kv[t + 1] != kv[t]) {
				if (n != t)
					memcpy(m->x + (size_t)n * D, m->x + (size_t)t * D,
					       sizeof(float) * D);
				n++;
			}
	if (!r)
		r = head_forward(m, m->w->norm, &m->w->lm_head, n, logits, !last_only, NULL, ids);
	m->row_kv = NULL;
	m->row_pos = NULL;
	m->kc.rows_only = m->kc_f32.rows_only = 0;
	return r;
}

int model_forward_rows(struct model *m, const int *tokens, int T, const struct model_kv *const *kv,
		       const int *pos, float *logits, int lg)
{
	return forward_rows_x(m, tokens, T, kv, pos, logits, lg, NULL);
}

int model_forward_rows_top1(struct model *m, const int *tokens, int T,
			    const struct model_kv *const *kv, const int *pos, int *ids, int lg)
{
	if (!model_has_top1(m))
		return -ENOTSUP;
	return forward_rows_x(m, tokens, T, kv, pos, NULL, lg, ids);
}

int model_mtp_forward(struct model *m, const int *next_tokens, const float *hidden, int T,
		      float *logits, int all_logits)
{
	const struct config *c = m->c;
	const struct layer_weights *lw = m->w->mtp;
	int D = c->hidden_size, r;
	if (!lw)
		return -ENODEV;
	if (T < 1 || T > m->o.max_batch || m->mtp_pos + T > m->o.max_seq)
		return -ENOSPC;
	for (int t = 0; t < T; t++) {
		float *cat = m->cat + (size_t)t * 2 * D;
		int p = m->mtp_pos + t;
		if (next_tokens[t] < 0 || next_tokens[t] >= c->vocab_size)
			return -EINVAL;
		/* docs/model.md, MTP: embedding first (0 at position 0), then the hidden state */
		if (p == 0) {
			memset(cat, 0, sizeof(float) * D);
		} else {
			embed_row(lw->embed_tokens.w ? &lw->embed_tokens : &m->w->embed_tokens,
				  next_tokens[t], m->tmp);
			model_rmsnorm(cat, m->tmp, lw->enorm, D, c->rms_norm_eps);
		}
		model_rmsnorm(cat + D, hidden + (size_t)t * D, lw->hnorm, D, c->rms_norm_eps);
		m->route.margin[t] = INFINITY;
	}
	if ((r = kern_matmul(&m->kc, &lw->eh_proj, m->cat, T, m->x)))
		return r;
	if ((r = layer_forward(m, lw, c->num_hidden_layers, m->mtp_pos, T)))
		return r;
	m->mtp_pos += T;
	return head_forward(m, lw->shared_head_norm,
			    lw->shared_head_head.w ? &lw->shared_head_head : &m->w->lm_head, T,
			    logits, all_logits, NULL, NULL);
}
