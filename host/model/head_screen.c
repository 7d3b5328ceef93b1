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
	if (!h->q || !h->s || !h->c1 || !h->c2 || !h->qsum) {
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
	for (int n = 0; n < V && !bad; n++) {
		h->c1max = h->c1[n] > h->c1max ? h->c1[n] : h->c1max;
		h->c2max = h->c2[n] > h->c2max ? h->c2[n] : h->c2max;
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
	free(h->a2);
	free(h->b2);
	free(h->a);
	free(h->cand);
	free(h->full);
	free(h->tlo);
	free(h->pmax);
	memset(h, 0, sizeof *h);
}

enum { HS_M = KERN_MB_ROWB }; /* inputs a pass */

/* One call's pass over the panels, on the pool's threads: the approximate logits (the first code
 * vector of each input on the integer pass), each panel's largest per input, and each thread's
 * largest and largest magnitude per input. The rows whose approximate logit reaches the input's
 * threshold (hs_thr: a superset of the candidates and of the row that sets lo) are then found
 * through the panels' maxima, and only their bounds are taken. With two code vectors an input
 * (AVX2's 7-bit codes), the second (the residual's) refines only the candidates of the first
 * (head_screen.h). */
struct pass_ctx {
	struct head_screen *h;
	const struct kern_isa *isa;
	int M, integer, nt;
	const float *x; /* the f32 pass's input (M == 1) */
	int ldu;	/* the integer pass's code vectors h->xu, their stride */
	int terms;	/* code vectors an input (1, or 2: its residual's too) */
	float sx[HS_M][2];
	double nx[HS_M], E[HS_M], E2[HS_M], rho, tiny; /* the bound's terms per input */
	int ok[HS_M];				       /* screened (finite, no overflow) */
	double *tmax; /* [nt][HS_M][2] each thread's max a and max |a| */
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
		/* each input's first code vector (input m's at 2m ldu with two terms) */
		pc->isa->gemv_i8u8p(h->q + (size_t)b * nkb * 256, h->qsum + r0, e - b, K, h->xu,
				    pc->ldu * pc->terms, pc->M, pc->isa->i8u8_xmax + 1, h->ai + r0,
				    Vp);
		for (int m = 0; m < pc->M; m++) {
			const int32_t *s0 = h->ai + (size_t)m * Vp;
			double x0 = pc->sx[m][0];
			float *am = h->a + (size_t)m * Vp;
			for (int l = r0; l < r1; l++)
				am[l] = (float)((double)s0[l] * x0 * h->s[l]);
		}
	} else {
		pc->isa->gemv_i8p(h->q + (size_t)b * nkb * 256, h->s + r0, e - b, K, pc->x, K, 1,
				  h->a + r0, Vp);
	}
	int np = kern_bf16p_panels(V);
	for (int m = 0; m < pc->M; m++) {
		const float *am = h->a + (size_t)m * Vp;
		double *t = pc->tmax + ((size_t)tid * HS_M + m) * 2;
		float hi = (float)t[0], lo = (float)-t[1], ab;
		for (int p = b; pc->ok[m] && p < e; p++) {
			int l1 = (p + 1) * KERN_PW < r1 ? (p + 1) * KERN_PW : r1;
			float ph = -INFINITY;
			for (int l = p * KERN_PW; l < l1; l++) {
				ph = am[l] > ph ? am[l] : ph;
				lo = am[l] < lo ? am[l] : lo;
			}
			h->pmax[(size_t)m * np + p] = ph;
			hi = ph > hi ? ph : hi;
		}
		ab = hi > -lo ? hi : -lo;
		t[0] = hi > t[0] ? hi : t[0];
		t[1] = ab > t[1] ? ab : t[1];
	}
}

/* The threshold for input m: a float at or below amax - 2 Bmax, Bmax the bound of a row with
 * the largest c1, c2 and |a| (no row's bound exceeds it; the same operations, and rounding is
 * monotone), less a margin far above the rounding of these double sums. Why it suffices: with t
 * the row of the largest a, lo >= a_t - B_t >= amax - Bmax, so a candidate (a_l + B_l >= lo) has
 * a_l >= amax - 2 Bmax, and so has the row that sets lo (a_l - B_l >= a_t - B_t). */
static float hs_thr(const struct pass_ctx *pc, int m, double amax, double maxabs)
{
	const struct head_screen *h = pc->h;
	double bm = h->c1max * pc->nx[m] + h->c2max * pc->E[m] + pc->rho * maxabs + pc->tiny;
	double t = amax - 2 * bm - (fabs(amax) + bm) * 0x1p-30 - pc->tiny;
	float f = (float)t;
	if ((double)f > t)
		f = nextafterf(f, -INFINITY);
	return f;
}

/* Codes xq in -n..n of v with one scale, stored as the bytes u = xq + n + 1; r = v - sx xq in
 * double (exact: a float minus a float times an integer below 2^24): the scale sx, in *nq the
 * norm of sx xq and in *ee the squared norm of r. v may be r. */
static float round_codes(const double *v, int K, int n, uint8_t *u, double *r, double *nq,
			 double *ee)
{
	double amax = 0, qq = 0, rr = 0;
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
		rr += r[k] * r[k];
	}
	*nq = sx * sqrt(qq);
	*ee = rr;
	return sx;
}

/* Rounds the M inputs into h->xu as xq + n + 1 (n = the ISA's i8u8_xmax: int8, or 7-bit on
 * AVX2), pc->terms code vectors each at the stride pc->ldu: the input's codes, then (two terms)
 * its residual's with a scale of their own, so x = sx0 xq0 + e1 = sx0 xq0 + sx1 xq1 + e2. The
 * scales, ||e1|| (pc->E, the first pass's) and ||e2|| (pc->E2, with the double sums' own
 * rounding, head_screen.h) in pc. */
static void round_inputs(struct head_screen *h, struct pass_ctx *pc, const float *x, double *r)
{
	int K = h->K, n = pc->isa->i8u8_xmax;
	for (int m = 0; m < pc->M; m++) {
		double nq = 0;
		for (int k = 0; k < K; k++)
			r[k] = x[(size_t)m * K + k];
		pc->sx[m][1] = 0;
		for (int t = 0; t < pc->terms; t++) {
			double q1, ee;
			uint8_t *u = h->xu + (size_t)(m * pc->terms + t) * pc->ldu;
			pc->sx[m][t] = round_codes(r, K, n, u, r, &q1, &ee);
			nq += q1;
			memset(u + K, n + 1, (size_t)(pc->ldu - K));
			if (t == 0)
				pc->E[m] = sqrt(ee) * (1 + 0x1p-30);
			else
				pc->E2[m] = sqrt(ee) * (1 + 0x1p-30) + 0x1p-50 * nq;
		}
	}
}

/* The second code vector on rows cand[0..nc) of input m: a2 = f32((S0 sx0 + S1 sx1) s) and the
 * two-term bound b2 (head_screen.h), S0 from the first pass's sums s0 (or, NULL, taken here). */
static void refine_vals(const struct head_screen *h, const struct pass_ctx *pc, int m,
			const int32_t *s0, const int *cand, int nc, float *a2, double *b2)
{
	int K = h->K, nkb = (K + 15) / 16;
	int off = pc->isa->i8u8_xmax + 1;
	const uint8_t *xu0 = h->xu + (size_t)(m * 2) * pc->ldu, *xu1 = xu0 + pc->ldu;
	double x0 = pc->sx[m][0], x1 = pc->sx[m][1];
	for (int i = 0; i < nc; i++) {
		int l = cand[i], p = l / KERN_PW, r = l - p * KERN_PW;
		const int8_t *pq = h->q + (size_t)p * nkb * 256;
		int32_t t0 = s0 ? s0[l] : pc->isa->row_i8u8p(pq, nkb, r, xu0) - off * h->qsum[l];
		int32_t t1 = pc->isa->row_i8u8p(pq, nkb, r, xu1) - off * h->qsum[l];
		a2[i] = (float)(((double)t0 * x0 + (double)t1 * x1) * h->s[l]);
		b2[i] =
		    h->c1[l] * pc->nx[m] + h->c2[l] * pc->E2[m] + pc->rho * fabsf(a2[i]) + pc->tiny;
	}
}

/* Refines input m's candidates cand[0..nc) (the first pass's): keeps in cand, in order, the rows
 * with a2 + b2 >= lo2 = max (a2 - b2). Returns their count. */
static int refine(struct head_screen *h, const struct pass_ctx *pc, int m, int *cand, int nc)
{
	int Vp = kern_bf16p_panels(h->V) * KERN_PW, n2 = 0;
	float *a2 = h->a2;
	double *b2 = h->b2, lo = -INFINITY;
	refine_vals(h, pc, m, h->ai + (size_t)m * Vp, cand, nc, a2, b2);
	for (int i = 0; i < nc; i++) {
		double v = (double)a2[i] - b2[i];
		lo = v > lo ? v : lo;
	}
	lo -= fabs(lo) * 0x1p-40 + pc->tiny; /* the double sums' own rounding */
	for (int i = 0; i < nc; i++)
		if ((double)a2[i] + b2[i] >= lo)
			cand[n2++] = cand[i];
	return n2;
}

/* The bound's terms of the M inputs x (pc->nx, pc->ok, and pc->E for the f32 pass), and their
 * codes (round_inputs) on the integer pass. */
static void inputs_prep(struct head_screen *h, struct pass_ctx *pc, const float *x)
{
	int K = h->K;
	double u = 0x1p-24;
	if (pc->integer)
		round_inputs(h, pc, x, h->r);
	pc->rho = pc->integer ? 0x1p-23 * (1 + 0x1p-20) : 0;
	pc->tiny = K * 0x1p-140;
	for (int m = 0; m < pc->M; m++) {
		const float *xm = x + (size_t)m * K;
		double nx = 0;
		for (int k = 0; k < K; k++)
			nx += (double)xm[k] * xm[k];
		pc->nx[m] = sqrt(nx) * (1 + 0x1p-20);
		if (!pc->integer)
			pc->E[m] = (K + 1) * u / (1 - (K + 1) * u) * pc->nx[m];
		pc->ok[m] = isfinite(pc->nx[m]) && isfinite(pc->E[m]) && pc->nx[m] * h->wmax < 1e37;
	}
}

int head_screen_refined(struct head_screen *h, const struct kern_isa *isa, const float *x,
			const int *rows, int n, float *a2, double *b2)
{
	if (head_screen_terms(isa, isa->gemv_i8u8p != NULL) < 2)
		return -EINVAL;
	struct pass_ctx pc = {.h = h, .isa = isa, .M = 1, .integer = 1, .terms = 2, .nt = 1};
	pc.ldu = (h->K + 15) / 16 * 16 + 64;
	if (kern_grow((void **)&h->xu, &h->xu_bytes, (size_t)2 * pc.ldu) ||
	    kern_grow((void **)&h->r, &h->r_bytes, sizeof(double) * h->K))
		return -ENOMEM;
	inputs_prep(h, &pc, x);
	refine_vals(h, &pc, 0, NULL, rows, n, a2, b2);
	return 0;
}

/* Inputs m0 .. m0 + M - 1 (M <= HS_M; terms 0: the f32 pass, else the integer pass on that many
 * code vectors an input): ids, or -ENOMEM. */
static int top1_pass(struct head_screen *h, struct kern_ctx *kc, const uint16_t *wp, const float *x,
		     int M, int terms, int *ids)
{
	int integer = terms > 0;
	int V = h->V, K = h->K, np = kern_bf16p_panels(V), Vp = np * KERN_PW;
	int nt = kc->pool ? pool_nthreads(kc->pool) : 1, cap = head_screen_max_cands(V);
	int scap = 4 * cap; /* rows at or above the threshold (a superset of the candidates) */
	struct pass_ctx pc = {
	    .h = h, .isa = kc->isa, .M = M, .integer = integer, .terms = terms, .nt = nt, .x = x};
	pc.ldu = (K + 15) / 16 * 16 + 64; /* 64 bytes apart beyond the groups */
	if (kern_grow((void **)&h->tlo, &h->tlo_bytes, sizeof(double) * nt * HS_M * 2) ||
	    kern_grow((void **)&h->pmax, &h->pmax_bytes, sizeof(float) * (size_t)M * np) ||
	    kern_grow((void **)&h->cand, &h->cand_bytes, sizeof(int) * (size_t)(scap + KERN_PW)) ||
	    kern_grow((void **)&h->a2, &h->a2_bytes, sizeof(float) * (size_t)(scap + KERN_PW)) ||
	    kern_grow((void **)&h->b2, &h->b2_bytes, sizeof(double) * (size_t)(scap + KERN_PW)) ||
	    (integer && (kern_grow((void **)&h->xu, &h->xu_bytes, (size_t)M * terms * pc.ldu) ||
			 kern_grow((void **)&h->ai, &h->ai_bytes, sizeof(int32_t) * M * Vp) ||
			 kern_grow((void **)&h->r, &h->r_bytes, sizeof(double) * K))))
		return -ENOMEM;
	pc.tmax = h->tlo;
	double t0 = hs_now();
	inputs_prep(h, &pc, x);
	for (int i = 0; i < nt * HS_M; i++)
		h->tlo[2 * i] = h->tlo[2 * i + 1] = -INFINITY;
	if (kc->pool)
		pool_for(kc->pool, np, 16, pass1_task, &pc);
	else
		pass1_task(&pc, 0, np, 0);
	double t1 = hs_now();
	h->st.s_approx += t1 - t0;
	for (int m = 0; m < M; m++) {
		const float *xm = x + (size_t)m * K, *am = h->a + (size_t)m * Vp;
		double amax = -INFINITY, maxabs = 0;
		for (int t = 0; t < nt; t++) {
			const double *tm = h->tlo + ((size_t)t * HS_M + m) * 2;
			amax = tm[0] > amax ? tm[0] : amax;
			maxabs = tm[1] > maxabs ? tm[1] : maxabs;
		}
		float thr = hs_thr(&pc, m, amax, maxabs);
		int ns = 0, nc = 0;
		h->st.rows++;
		pc.ok[m] = pc.ok[m] && isfinite(thr);
		/* the rows at or above the threshold, through the panels' maxima */
		const float *pm = h->pmax + (size_t)m * np;
		for (int p = 0; pc.ok[m] && p < np && ns <= scap; p++)
			if (pm[p] >= thr)
				for (int l = p * KERN_PW; l < (p + 1) * KERN_PW && l < V; l++)
					if (am[l] >= thr)
						h->cand[ns++] = l;
		if (pc.ok[m] && ns <= scap) {
			/* lo = the largest a - B over them, then the candidates a + B >= lo */
			double lo = -INFINITY;
			for (int i = 0; i < ns; i++) {
				int l = h->cand[i];
				double v = (double)am[l] - bound_at(&pc, m, l, am[l]);
				lo = v > lo ? v : lo;
			}
			lo -= fabs(lo) * 0x1p-40 + pc.tiny; /* the double sums' own rounding */
			for (int i = 0; i < ns; i++) {
				int l = h->cand[i];
				if ((double)am[l] + bound_at(&pc, m, l, am[l]) >= lo)
					h->cand[nc++] = l;
			}
			if (terms > 1) {
				h->st.refined += (uint64_t)nc;
				nc = refine(h, &pc, m, h->cand, nc);
			}
		}
		if (pc.ok[m] && ns <= scap && nc <= cap) {
			/* (ascending rows: the panels in order, each panel's rows in order) */
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
	int terms = head_screen_terms(isa, integer);
	for (int m0 = 0; m0 < M; m0 += HS_M) {
		int r = top1_pass(h, kc, wp, x + (size_t)m0 * K, M - m0 < HS_M ? M - m0 : HS_M,
				  terms, ids + m0);
		if (r)
			return r;
	}
	return 0;
}
