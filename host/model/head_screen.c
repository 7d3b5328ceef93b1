/*
 * head_screen.c - exact greedy tokens from an 8-bit copy of the BF16 lm_head (head_screen.h).
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "e4m3.h"
#include "model/head_screen.h"

static double hs_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

struct build_ctx {
	struct head_screen *h;
	const uint16_t *wp;
	int *bad;     /* [threads] a weight is not finite */
	double *wmax; /* [threads] the largest row norm */
};

/* The reciprocal of a scale amax / n (0 for a zero or non-finite amax: every code 0). */
static float inv_n(float amax, int n)
{
	return amax > 0 && isfinite(amax) ? (float)n / amax : 0;
}

/* v * inv rounded to the nearest integer, ties to even, within -n..n (NaN: 0). Adding and
 * subtracting 2^23 + 2^22 rounds a float of magnitude < 2^22 (no libm call). Any code is sound
 * (the bound takes the residual it leaves); the nearest one keeps the bound small. */
static float code_n(float v, float inv, int n)
{
	float c = (v * inv + 12582912.0f) - 12582912.0f;
	return c > n ? (float)n : c < -n ? (float)-n : c == c ? c : 0;
}

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
				float w = bf16_to_f32(pw[(size_t)k * KERN_PW + i]);
				if (!isfinite(w))
					bc->bad[tid] = 1;
				amax[i] = fabsf(w) > amax[i] ? fabsf(w) : amax[i];
			}
		for (int i = 0; i < KERN_PW; i++) {
			sc[i] = amax[i] / 127.0f;
			inv[i] = inv_n(amax[i], 127);
		}
		for (int k = 0; k < K; k++)
			for (int i = 0; i < KERN_PW; i++) {
				float w = bf16_to_f32(pw[(size_t)k * KERN_PW + i]);
				float v = code_n(w, inv[i], 127);
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
			if (wn > bc->wmax[tid])
				bc->wmax[tid] = wn;
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
	int nt = p ? pool_nthreads(p) : 1, bad = 0;
	struct build_ctx bc = {h, wp, calloc((size_t)nt, sizeof(int)),
			       calloc((size_t)nt, sizeof(double))};
	if (!bc.bad || !bc.wmax) {
		free(bc.bad);
		free(bc.wmax);
		head_screen_free(h);
		return -ENOMEM;
	}
	if (p)
		pool_for(p, np, 16, build_task, &bc);
	else
		build_task(&bc, 0, np, 0);
	for (int i = 0; i < nt; i++) {
		bad |= bc.bad[i];
		h->wmax = bc.wmax[i] > h->wmax ? bc.wmax[i] : h->wmax;
	}
	free(bc.bad);
	free(bc.wmax);
	if (bad) {
		head_screen_free(h);
		return -EDOM;
	}
	return 0;
}

void head_screen_free(struct head_screen *h)
{
	free(h->q);
	free(h->r);
	free(h->s);
	free(h->c1);
	free(h->c2);
	free(h->qsum);
	free(h->ai);
	free(h->xu);
	free(h->a);
	free(h->cand);
	free(h->full);
	free(h->tlo);
	free(h->tc);
	free(h->tn);
	memset(h, 0, sizeof *h);
}

enum { HS_M = KERN_MB_ROWB }; /* inputs a pass */

/* One call's passes over the panels, on the pool's threads: 1. the approximate logits and each
 * thread's max of a - B per input; 2. each thread's candidates a + B >= lo per input. */
struct pass_ctx {
	struct head_screen *h;
	const struct kern_isa *isa;
	int M, integer, cap, nt;
	const float *x; /* the f32 pass's input (M == 1) */
	int ldu;	/* the integer pass's inputs h->xu, their stride */
	int terms;	/* the integer pass's code vectors an input (1, or 2: its residual's too) */
	float sx[HS_M][2];
	double nx[HS_M], E[HS_M], rho, tiny; /* the bound's terms per input (head_screen.h) */
	int ok[HS_M];			     /* the input is screened (finite, no overflow) */
	double lo[HS_M];
	double *tlo; /* [nt][HS_M] */
	int *tc;     /* [nt][HS_M][cap + 1] candidates */
	int *tn;     /* [nt][HS_M] their counts */
};

static double bound_at(const struct pass_ctx *pc, int m, int l, float a)
{
	const struct head_screen *h = pc->h;
	return h->c1[l] * pc->nx[m] + h->c2[l] * pc->E[m] + pc->rho * fabsf(a) + pc->tiny;
}

static void pass1_task(void *vc, int b, int e, int tid)
{
	struct pass_ctx *pc = vc;
	struct head_screen *h = pc->h;
	int V = h->V, K = h->K, Vp = kern_bf16p_panels(V) * KERN_PW, nkb = (K + 15) / 16;
	int r0 = b * KERN_PW, r1 = e * KERN_PW < V ? e * KERN_PW : V;
	if (pc->integer) {
		int T = pc->terms;
		pc->isa->gemv_i8u8p(h->q + (size_t)b * nkb * 256, h->qsum + r0, e - b, K, h->xu,
				    pc->ldu, pc->M * T, pc->isa->i8u8_xmax + 1, h->ai + r0, Vp);
		for (int m = 0; m < pc->M; m++) {
			const int32_t *s0 = h->ai + (size_t)m * T * Vp,
				      *s1 = T > 1 ? s0 + Vp : NULL;
			double x0 = pc->sx[m][0], x1 = pc->sx[m][1];
			for (int l = r0; l < r1; l++)
				h->a[(size_t)m * Vp + l] =
				    (float)(((double)s0[l] * x0 + (s1 ? (double)s1[l] * x1 : 0)) *
					    h->s[l]);
		}
	} else {
		pc->isa->gemv_i8p(h->q + (size_t)b * nkb * 256, h->s + r0, e - b, K, pc->x, K, 1,
				  h->a + r0, Vp);
	}
	for (int m = 0; m < pc->M; m++) {
		const float *am = h->a + (size_t)m * Vp;
		double lo = pc->tlo[tid * HS_M + m];
		for (int l = r0; pc->ok[m] && l < r1; l++) {
			double v = (double)am[l] - bound_at(pc, m, l, am[l]);
			lo = v > lo ? v : lo;
		}
		pc->tlo[tid * HS_M + m] = lo;
	}
}

static void pass2_task(void *vc, int b, int e, int tid)
{
	struct pass_ctx *pc = vc;
	const struct head_screen *h = pc->h;
	int V = h->V, Vp = kern_bf16p_panels(V) * KERN_PW;
	int r0 = b * KERN_PW, r1 = e * KERN_PW < V ? e * KERN_PW : V;
	for (int m = 0; m < pc->M; m++) {
		const float *am = h->a + (size_t)m * Vp;
		int *n = &pc->tn[tid * HS_M + m],
		    *c = pc->tc + ((size_t)tid * HS_M + m) * (pc->cap + 1);
		for (int l = r0; pc->ok[m] && l < r1 && *n <= pc->cap; l++)
			if ((double)am[l] + bound_at(pc, m, l, am[l]) >= pc->lo[m])
				c[(*n)++] = l;
	}
}

/* Codes xq in -n..n of v with one scale into u as xq + n + 1 (n = the ISA's i8u8_xmax: int8, or
 * 7-bit on AVX2), r = v - sx xq in double (exact: a float minus a float times a small integer):
 * the scale sx, and in *nq the norm of sx xq. */
static float round_codes(const double *v, int K, int n, uint8_t *u, double *r, double *nq)
{
	double amax = 0, qq = 0;
	for (int k = 0; k < K; k++)
		amax = fabs(v[k]) > amax ? fabs(v[k]) : amax;
	float fa = (float)amax;
	if ((double)fa < amax) /* (the residual's amax, rounded up: every code within -n..n) */
		fa = nextafterf(fa, INFINITY);
	float sx = fa / (float)n, inv = inv_n(fa, n);
	for (int k = 0; k < K; k++) {
		float c = code_n((float)v[k], inv, n);
		u[k] = (uint8_t)(c + (float)(n + 1));
		r[k] = v[k] - (double)sx * c;
		qq += (double)c * c;
	}
	*nq = sx * sqrt(qq);
	return sx;
}

/* Rounds the M inputs into h->xu (the stride pc->ldu), pc->terms code vectors each: the input's
 * codes, then (two terms) its residual's with a scale of their own, so x = sx0 xq0 + sx1 xq1 + e.
 * Their scales and the norms of e in pc (with the double sums' own rounding, head_screen.h). */
static void round_inputs(struct head_screen *h, struct pass_ctx *pc, const float *x, double *r)
{
	int K = h->K, n = pc->isa->i8u8_xmax;
	for (int m = 0; m < pc->M; m++) {
		double nq = 0;
		for (int k = 0; k < K; k++)
			r[k] = x[(size_t)m * K + k];
		pc->sx[m][1] = 0;
		for (int t = 0; t < pc->terms; t++) {
			uint8_t *u = h->xu + (size_t)(m * pc->terms + t) * pc->ldu;
			double q1;
			pc->sx[m][t] = round_codes(r, K, n, u, r, &q1);
			nq += q1;
			memset(u + K, n + 1, (size_t)(pc->ldu - K));
		}
		double ee = 0;
		for (int k = 0; k < K; k++)
			ee += r[k] * r[k];
		pc->E[m] = sqrt(ee) * (1 + 0x1p-30) + (pc->terms > 1 ? 0x1p-50 * nq : 0);
	}
}

static int cmp_int(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;
	return (x > y) - (x < y);
}

/* Inputs m0 .. m0 + M - 1 (M * max(terms, 1) <= HS_M; terms 0: the f32 pass, else the integer
 * pass on that many code vectors an input): ids, or -ENOMEM. */
static int top1_pass(struct head_screen *h, struct kern_ctx *kc, const uint16_t *wp, const float *x,
		     int M, int terms, int *ids)
{
	int integer = terms > 0;
	int V = h->V, K = h->K, np = kern_bf16p_panels(V), Vp = np * KERN_PW;
	int nt = kc->pool ? pool_nthreads(kc->pool) : 1, cap = head_screen_max_cands(V);
	struct pass_ctx pc = {.h = h,
			      .isa = kc->isa,
			      .M = M,
			      .integer = integer,
			      .terms = terms,
			      .cap = cap,
			      .nt = nt,
			      .x = x,
			      .tiny = K * 0x1p-140};
	pc.ldu = (K + 15) / 16 * 16 + 64; /* 64 bytes apart beyond the groups */
	if (kern_grow((void **)&h->tlo, &h->tlo_bytes, sizeof(double) * nt * HS_M) ||
	    kern_grow((void **)&h->tn, &h->tn_bytes, sizeof(int) * nt * HS_M) ||
	    kern_grow((void **)&h->tc, &h->tc_bytes, sizeof(int) * nt * HS_M * (cap + 1)) ||
	    (integer &&
	     (kern_grow((void **)&h->xu, &h->xu_bytes, (size_t)M * terms * pc.ldu) ||
	      kern_grow((void **)&h->ai, &h->ai_bytes, sizeof(int32_t) * M * terms * Vp) ||
	      kern_grow((void **)&h->r, &h->r_bytes, sizeof(double) * K))))
		return -ENOMEM;
	pc.tlo = h->tlo;
	pc.tn = h->tn;
	pc.tc = h->tc;
	double t0 = hs_now(), u = 0x1p-24;
	if (integer)
		round_inputs(h, &pc, x, h->r);
	pc.rho = integer ? 0x1p-23 * (1 + 0x1p-20) : 0;
	for (int m = 0; m < M; m++) {
		const float *xm = x + (size_t)m * K;
		double nx = 0;
		for (int k = 0; k < K; k++)
			nx += (double)xm[k] * xm[k];
		pc.nx[m] = sqrt(nx) * (1 + 0x1p-20);
		if (!integer)
			pc.E[m] = (K + 1) * u / (1 - (K + 1) * u) * pc.nx[m];
		pc.ok[m] = isfinite(pc.nx[m]) && isfinite(pc.E[m]) && pc.nx[m] * h->wmax < 1e37;
	}
	for (int i = 0; i < nt * HS_M; i++) {
		h->tlo[i] = -INFINITY;
		h->tn[i] = 0;
	}
	if (kc->pool)
		pool_for(kc->pool, np, 16, pass1_task, &pc);
	else
		pass1_task(&pc, 0, np, 0);
	double t1 = hs_now();
	h->st.s_approx += t1 - t0;
	for (int m = 0; m < M; m++) {
		double lo = -INFINITY;
		for (int t = 0; t < nt; t++)
			lo = h->tlo[t * HS_M + m] > lo ? h->tlo[t * HS_M + m] : lo;
		pc.lo[m] = lo - (fabs(lo) * 0x1p-40 + pc.tiny); /* the double sums' own rounding */
	}
	if (kc->pool)
		pool_for(kc->pool, np, 16, pass2_task, &pc);
	else
		pass2_task(&pc, 0, np, 0);
	for (int m = 0; m < M; m++) {
		const float *xm = x + (size_t)m * K;
		int nc = 0;
		for (int t = 0; t < nt; t++)
			nc += h->tn[t * HS_M + m];
		h->st.rows++;
		if (pc.ok[m] && nc <= cap) {
			for (int t = 0, j = 0; t < nt; t++) {
				const int *c = h->tc + ((size_t)t * HS_M + m) * (cap + 1);
				for (int i = 0; i < h->tn[t * HS_M + m]; i++)
					h->cand[j++] = c[i];
			}
			qsort(h->cand, (size_t)nc, sizeof(int), cmp_int); /* ascending rows */
			float y[KERN_PW], best = -INFINITY;
			int id = -1, pcur = -1;
			for (int i = 0; i < nc; i++) {
				int l = h->cand[i], p = l / KERN_PW;
				if (p != pcur) { /* the panel's exact logits */
					int nw =
					    V - p * KERN_PW < KERN_PW ? V - p * KERN_PW : KERN_PW;
					kc->isa->gemv_bf16p(wp + (size_t)p * K * KERN_PW, nw, xm, K,
							    1, K, y, KERN_PW);
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
			continue;
		}
		/* the full head for this row: not finite, a logit could overflow, or too many
		 * candidates */
		if (kern_grow((void **)&h->full, &h->full_bytes, sizeof(float) * V))
			return -ENOMEM;
		double tf = hs_now();
		kern_matmul_bf16p(kc, wp, V, K, xm, 1, h->full);
		ids[m] = kern_argmax(h->full, V);
		h->st.fallbacks++;
		h->st.s_full += hs_now() - tf;
		t1 += hs_now() - tf;
	}
	h->st.s_pick += hs_now() - t1;
	return 0;
}

int head_screen_top1(struct head_screen *h, struct kern_ctx *kc, const uint16_t *wp, const float *x,
		     int M, int *ids)
{
	int V = h->V, K = h->K, Vp = kern_bf16p_panels(V) * KERN_PW;
	if (M < 1)
		return 0;
	const struct kern_isa *isa = kc->isa;
	int integer = isa->gemv_i8u8p && K <= HEAD_SCREEN_MAX_K_INT && (M > 1 || isa->i8u8_one) &&
		      (!isa->i8u8_maxm || M <= isa->i8u8_maxm);
	if (kern_grow((void **)&h->a, &h->a_bytes, sizeof(float) * (M > HS_M ? M : HS_M) * Vp))
		return -ENOMEM;
	if (M > 1 && !integer) { /* the full head's FMAs serve these inputs better */
		double t0 = hs_now();
		kern_matmul_bf16p(kc, wp, V, K, x, M, h->a);
		for (int m = 0; m < M; m++)
			ids[m] = kern_argmax(h->a + (size_t)m * V, V);
		h->st.rows += (uint64_t)M;
		h->st.fallbacks += (uint64_t)M;
		h->st.s_full += hs_now() - t0;
		return 0;
	}
	int terms = head_screen_terms(isa, integer), per = HS_M / (terms ? terms : 1);
	for (int m0 = 0; m0 < M; m0 += per) {
		int r = top1_pass(h, kc, wp, x + (size_t)m0 * K, M - m0 < per ? M - m0 : per, terms,
				  ids + m0);
		if (r)
			return r;
	}
	return 0;
}
