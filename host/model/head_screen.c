/*
 * head_screen.c - exact greedy tokens from an 8-bit copy of the BF16 lm_head (head_screen.h).
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "model/head_screen.h"

static double hs_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static float bf16f(uint16_t b)
{
	uint32_t u = (uint32_t)b << 16;
	float f;
	memcpy(&f, &u, 4);
	return f;
}

struct build_ctx {
	struct head_screen *h;
	const uint16_t *wp;
	int bad; /* a weight is not finite (set by any thread; read after the pool) */
	double wmax[64];
};

/* 2^23 + 2^22: adding and subtracting it rounds a float of magnitude < 2^22 to the nearest
 * integer, ties to even (no libm call) */
#define RND_MAGIC 12582912.0f

/* Panels [b, e): per row its amax, scale, codes and bound coefficient (head_screen.h), the
 * panel read k-major as it is packed. */
static void build_task(void *vc, int b, int e, int tid)
{
	struct build_ctx *bc = vc;
	struct head_screen *h = bc->h;
	int K = h->K, nkb = (K + 15) / 16, rows[KERN_PW];
	for (int i = 0; i < KERN_PW; i++)
		rows[i] = kern_bf16p_row[i]; /* lane i holds the panel's row rows[i] */
	/* gamma_n = n u / (1 - n u), u = 2^-24 */
	double u = 0x1p-24, gk = K * u / (1 - K * u);
	for (int p = b; p < e; p++) {
		const uint16_t *pw = bc->wp + (size_t)p * K * KERN_PW;
		int8_t *pq = h->q + (size_t)p * nkb * 256;
		float amax[KERN_PW] = {0}, inv[KERN_PW], sc[KERN_PW];
		double rr[KERN_PW] = {0}, ww[KERN_PW] = {0}, qq[KERN_PW] = {0};
		int32_t qs[KERN_PW] = {0};
		for (int k = 0; k < K; k++)
			for (int i = 0; i < KERN_PW; i++) {
				float w = bf16f(pw[(size_t)k * KERN_PW + i]);
				if (!isfinite(w))
					bc->bad = 1;
				amax[i] = fabsf(w) > amax[i] ? fabsf(w) : amax[i];
			}
		for (int i = 0; i < KERN_PW; i++) {
			sc[i] = amax[i] / 127.0f;
			inv[i] = sc[i] > 0 && isfinite(amax[i]) ? 127.0f / amax[i] : 0;
		}
		for (int k = 0; k < K; k++)
			for (int i = 0; i < KERN_PW; i++) {
				float w = bf16f(pw[(size_t)k * KERN_PW + i]);
				/* any code is sound (the residual is what it leaves); the nearest one
				 * keeps the bound small */
				float v = (w * inv[i] + RND_MAGIC) - RND_MAGIC;
				v = v > 127 ? 127 : v < -127 ? -127 : v == v ? v : 0;
				pq[((size_t)(k / 16) * 16 + rows[i]) * 16 + k % 16] = (int8_t)v;
				double r = (double)w - (double)sc[i] * v; /* exact */
				rr[i] += r * r;
				ww[i] += (double)w * w;
				qq[i] += (double)v * v;
				qs[i] += (int32_t)v;
			}
		for (int i = 0; i < KERN_PW; i++) {
			int n = p * KERN_PW + rows[i];
			if (n >= h->V)
				continue;
			h->s[n] = sc[i];
			h->qsum[n] = qs[i];
			/* the square roots and sums in double: a margin far above their rounding */
			h->c1[n] = (sqrt(rr[i]) + gk * sqrt(ww[i])) * (1 + 0x1p-30);
			h->c2[n] = sc[i] * sqrt(qq[i]) * (1 + 0x1p-30);
			double wn = sqrt(ww[i]);
			if (wn > bc->wmax[tid & 63])
				bc->wmax[tid & 63] = wn;
		}
	}
}

int head_screen_build(struct head_screen *h, struct pool *p, const uint16_t *wp, int V, int K)
{
	memset(h, 0, sizeof *h);
	if (!wp || V < 1 || K < 1 || K > (1 << 22))
		return -EINVAL;
	h->V = V;
	h->K = K;
	int np = kern_bf16p_panels(V), Vp = np * KERN_PW;
	h->q = calloc((size_t)np * ((K + 15) / 16) * 256, 1); /* zeros past K */
	h->s = calloc((size_t)Vp, sizeof(float));
	h->c1 = malloc(sizeof(double) * (size_t)V);
	h->c2 = malloc(sizeof(double) * (size_t)V);
	h->qsum = calloc((size_t)Vp, sizeof(int32_t));
	h->cand = malloc(sizeof(int) * (size_t)V);
	if (!h->q || !h->s || !h->c1 || !h->c2 || !h->qsum || !h->cand) {
		head_screen_free(h);
		return -ENOMEM;
	}
	struct build_ctx bc = {h, wp, 0, {0}};
	if (p)
		pool_for(p, np, 16, build_task, &bc);
	else
		build_task(&bc, 0, np, 0);
	if (bc.bad) {
		head_screen_free(h);
		return -EDOM;
	}
	for (int i = 0; i < 64; i++)
		h->wmax = bc.wmax[i] > h->wmax ? bc.wmax[i] : h->wmax;
	return 0;
}

void head_screen_free(struct head_screen *h)
{
	free(h->q);
	free(h->s);
	free(h->c1);
	free(h->c2);
	free(h->qsum);
	free(h->ai);
	free(h->xu);
	free(h->a);
	free(h->cand);
	free(h->full);
	memset(h, 0, sizeof *h);
}

struct approx_ctx {
	const struct head_screen *h;
	const struct kern_isa *isa;
	const float *x;
	int ldx;
	float *a; /* [M][V] */
	int M;
};

static void approx_task(void *vc, int b, int e, int tid)
{
	const struct approx_ctx *ac = vc;
	const struct head_screen *h = ac->h;
	(void)tid;
	int Vp = kern_bf16p_panels(h->V) * KERN_PW;
	ac->isa->gemv_i8p(h->q + (size_t)b * ((h->K + 15) / 16) * 256, h->s + b * KERN_PW, e - b,
			  h->K, ac->x, ac->ldx, ac->M, ac->a + b * KERN_PW, Vp);
}

/* sampler_argmax's pick: a strict-greater scan from v[0] (0 when v[0] is NaN). */
static int argmax_scan(const float *v, int n)
{
	int id = 0;
	float best = v[0];
	if (best != best)
		return 0;
	for (int i = 1; i < n; i++)
		if (v[i] > best) {
			best = v[i];
			id = i;
		}
	return id;
}

/* Grows *p to n elements of size sz (contents not kept): 0 or -ENOMEM. */
static int grow(void **p, size_t *cap, size_t n, size_t sz)
{
	if (n <= *cap)
		return 0;
	void *q = malloc(n * sz);
	if (!q)
		return -ENOMEM;
	free(*p);
	*p = q;
	*cap = n;
	return 0;
}

struct int_ctx {
	const struct head_screen *h;
	const struct kern_isa *isa;
	const uint8_t *xu;
	int ldx, M;
	int32_t *ai; /* [M][Vp] */
};

static void int_task(void *vc, int b, int e, int tid)
{
	const struct int_ctx *ic = vc;
	const struct head_screen *h = ic->h;
	(void)tid;
	int Vp = kern_bf16p_panels(h->V) * KERN_PW;
	ic->isa->gemv_i8u8p(h->q + (size_t)b * ((h->K + 15) / 16) * 256, h->qsum + b * KERN_PW,
			    e - b, h->K, ic->xu, ic->ldx, ic->M, ic->ai + b * KERN_PW, Vp);
}

/* The integer pass of M inputs (head_screen.h): each input rounded to int8 with one scale,
 * the exact integer dot products, then a = s_l * sx * S in f32; per input the norm of its
 * rounding error in ex. */
static int approx_int(struct head_screen *h, struct kern_ctx *kc, const float *x, int M,
		      double *ex)
{
	int V = h->V, K = h->K, np = kern_bf16p_panels(V), Vp = np * KERN_PW;
	int Kp = (K + 15) / 16 * 16 + 64; /* 64 bytes apart beyond the groups */
	if (grow((void **)&h->xu, &h->xu_cap, (size_t)M * Kp, 1) ||
	    grow((void **)&h->ai, &h->ai_cap, (size_t)M * Vp, sizeof(int32_t)))
		return -ENOMEM;
	float sx[KERN_MB_ROWB];
	for (int m = 0; m < M; m++) {
		const float *xm = x + (size_t)m * K;
		uint8_t *u = h->xu + (size_t)m * Kp;
		float amax = 0;
		for (int k = 0; k < K; k++)
			amax = fabsf(xm[k]) > amax ? fabsf(xm[k]) : amax;
		sx[m] = amax / 127.0f;
		float inv = sx[m] > 0 && isfinite(amax) ? 127.0f / amax : 0;
		double ee = 0;
		for (int k = 0; k < K; k++) {
			float v = (xm[k] * inv + RND_MAGIC) - RND_MAGIC;
			v = v > 127 ? 127 : v < -127 ? -127 : v == v ? v : 0;
			u[k] = (uint8_t)(v + 128);
			double e = (double)xm[k] - (double)sx[m] * v;
			ee += e * e;
		}
		memset(u + K, 128, (size_t)(Kp - K));
		ex[m] = sqrt(ee) * (1 + 0x1p-30);
	}
	struct int_ctx ic = {h, kc->isa, h->xu, Kp, M, h->ai};
	if (kc->pool)
		pool_for(kc->pool, np, 16, int_task, &ic);
	else
		int_task(&ic, 0, np, 0);
	for (int m = 0; m < M; m++)
		for (int l = 0; l < V; l++)
			h->a[(size_t)m * Vp + l] =
			    (float)((double)h->ai[(size_t)m * Vp + l] * h->s[l] * sx[m]);
	return 0;
}

/* The f32 pass of one input (gemv_i8p on the pool's threads). */
static void approx_f32(struct head_screen *h, struct kern_ctx *kc, const float *x)
{
	int np = kern_bf16p_panels(h->V);
	struct approx_ctx ac = {h, kc->isa, x, h->K, h->a, 1};
	if (kc->pool)
		pool_for(kc->pool, np, 16, approx_task, &ac);
	else
		approx_task(&ac, 0, np, 0);
}

int head_screen_top1(struct head_screen *h, struct kern_ctx *kc, const uint16_t *wp, const float *x,
		     int M, int *ids)
{
	int V = h->V, K = h->K, np = kern_bf16p_panels(V), Vp = np * KERN_PW;
	if (M < 1)
		return 0;
	if (grow((void **)&h->a, &h->a_cap, (size_t)M * Vp, sizeof(float)))
		return -ENOMEM;
	double t0 = hs_now();
	int integer = M > 1 && kc->isa->gemv_i8u8p && K <= HEAD_SCREEN_MAX_K_INT;
	if (M > 1 && !integer) { /* the full head's FMAs serve several inputs better */
		kern_matmul_bf16p(kc, wp, V, K, x, M, h->a);
		for (int m = 0; m < M; m++)
			ids[m] = argmax_scan(h->a + (size_t)m * V, V);
		h->st.rows += (uint64_t)M;
		h->st.fallbacks += (uint64_t)M;
		h->st.s_full += hs_now() - t0;
		return 0;
	}
	/* per input the error terms beside c1 ||x||: c2 E (E the rounding error's norm, or the f32
	 * sum's gamma_(K+1) ||x||) and rho |a| (the integer path's f32 scaling) */
	double ex[KERN_MB_ROWB], rho = integer ? 0x1p-23 * (1 + 0x1p-20) : 0;
	for (int m0 = 0; m0 < M; m0 += KERN_MB_ROWB) {
		int mm = M - m0 < KERN_MB_ROWB ? M - m0 : KERN_MB_ROWB;
		double t1 = hs_now();
		if (integer) {
			float *a = h->a;
			h->a = a + (size_t)m0 * Vp; /* approx_int writes from h->a */
			int r = approx_int(h, kc, x + (size_t)m0 * K, mm, ex);
			h->a = a;
			if (r)
				return r;
		} else {
			approx_f32(h, kc, x);
		}
		double t2 = hs_now();
		h->st.s_approx += t2 - t1;
		for (int j = 0; j < mm; j++, t2 = hs_now()) {
			int m = m0 + j;
			const float *xm = x + (size_t)m * K, *am = h->a + (size_t)m * Vp;
			double nx = 0, u = 0x1p-24;
			for (int k = 0; k < K; k++)
				nx += (double)xm[k] * xm[k];
			nx = sqrt(nx) * (1 + 0x1p-20);
			double E = integer ? ex[j] : (K + 1) * u / (1 - (K + 1) * u) * nx;
			int nc = 0;
			h->st.rows++;
			if (isfinite(nx) && isfinite(E) && nx * h->wmax < 1e37) {
				double tiny = K * 0x1p-140, lo = -INFINITY;
				for (int l = 0; l < V; l++) {
					double v = (double)am[l] - (h->c1[l] * nx + h->c2[l] * E +
								   rho * fabsf(am[l]) + tiny);
					lo = v > lo ? v : lo;
				}
				lo -= fabs(lo) * 0x1p-40 + tiny; /* the double sums' own rounding */
				int cap = head_screen_max_cands(V);
				for (int l = 0; l < V && nc <= cap; l++)
					if ((double)am[l] + (h->c1[l] * nx + h->c2[l] * E +
							     rho * fabsf(am[l]) + tiny) >=
					    lo)
						h->cand[nc++] = l;
			} else {
				nc = V + 1; /* not finite, or a logit could overflow */
			}
			if (nc <= head_screen_max_cands(V)) {
				float y[KERN_PW], best = -INFINITY;
				int id = -1, pcur = -1;
				for (int i = 0; i < nc; i++) {
					int l = h->cand[i], p = l / KERN_PW;
					if (p != pcur) { /* the panel's exact logits */
						int nw = V - p * KERN_PW < KERN_PW ? V - p * KERN_PW
										   : KERN_PW;
						kc->isa->gemv_bf16p(wp + (size_t)p * K * KERN_PW,
								    nw, xm, K, 1, K, y, KERN_PW);
						pcur = p;
						h->st.panels++;
					}
					float v = y[l - p * KERN_PW];
					if (id < 0 || v > best) {
						best = v;
						id = l;
					}
				}
				ids[m] = id;
				h->st.cands += (uint64_t)nc;
				if ((uint64_t)nc > h->st.cand_max)
					h->st.cand_max = (uint64_t)nc;
				h->st.s_pick += hs_now() - t2;
				continue;
			}
			/* the full head for this row */
			if (grow((void **)&h->full, &h->full_cap, (size_t)V, sizeof(float)))
				return -ENOMEM;
			double tf = hs_now();
			h->st.s_pick += tf - t2;
			kern_matmul_bf16p(kc, wp, V, K, xm, 1, h->full);
			ids[m] = argmax_scan(h->full, V);
			h->st.fallbacks++;
			h->st.s_full += hs_now() - tf;
		}
	}
	return 0;
}
