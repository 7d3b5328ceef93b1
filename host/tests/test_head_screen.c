/*
 * test_head_screen.c - the head's 8-bit screen (head_screen.h) on every ISA path this CPU runs:
 *  - the greedy token equals sampler_argmax on the packed head's full logits, for random inputs
 *    of every scale, batches of rows, exact ties (identical rows: the lowest index), rows one
 *    bf16 step apart and inputs aimed at them, a zero input, and inputs that are not finite
 *    (the full head);
 *  - the bound holds for every row: |exact - approx| <= c ||x|| (approx from gemv_i8p);
 *  - a head with a non-finite weight gets no screen (-EDOM);
 *  - a random head keeps few candidates (the screen is worth its pass).
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "decode/sample.h"
#include "e4m3.h"
#include "model/head_screen.h"
#include "model/kernels.h"
#include "model/pool.h"

static uint64_t rs = 0x9E3779B97F4A7C15ull;
static double urand(void)
{
	rs ^= rs << 13, rs ^= rs >> 7, rs ^= rs << 17;
	return (double)(rs >> 11) / 9007199254740992.0;
}
static double nrand(void)
{
	double u = urand() + 1e-300, v = urand();
	return sqrt(-2 * log(u)) * cos(6.283185307179586 * v);
}

enum { V = 1003, K = 200, MAXM = 9 };
static uint16_t w[V * K];
static uint16_t *wp;

static const char *const isas[] = {"scalar", "avx2", "avx512", "avx512bf16"};

/* The packed head of w (rows scaled like a trained head's: a spread of row norms). */
static void make_head(void)
{
	for (int n = 0; n < V; n++) {
		double g = 0.02 * (0.5 + urand());
		for (int k = 0; k < K; k++)
			w[n * K + k] = f32_to_bf16((float)(g * nrand()));
	}
	/* ties and near-ties: rows 700 and 5 the same, 701 one bf16 step off in one element */
	memcpy(w + 700 * K, w + 5 * K, sizeof(uint16_t) * K);
	memcpy(w + 701 * K, w + 5 * K, sizeof(uint16_t) * K);
	w[701 * K + 17] = (uint16_t)(w[701 * K + 17] + 1);
	/* and rows 900.. 911 the same direction with tiny scale changes */
	for (int n = 900; n < 912; n++)
		for (int k = 0; k < K; k++)
			w[n * K + k] =
			    f32_to_bf16(bf16_to_f32(w[9 * K + k]) * (1.0f + (n - 900) * 1e-3f));
	free(wp);
	wp = aligned_alloc(64, sizeof(uint16_t) * (size_t)kern_bf16p_panels(V) * K * KERN_PW);
	kern_bf16p_pack(w, V, K, 0, kern_bf16p_panels(V), wp);
}

/* The norm of an input's rounding error as round_inputs leaves it: codes in -n..n with one scale
 * a vector, T vectors (the second the first's residual). */
static double ref_rounding_err(const float *xm, int n, int T)
{
	static double r[K];
	for (int k = 0; k < K; k++)
		r[k] = xm[k];
	for (int t = 0; t < T; t++) {
		double amax = 0;
		for (int k = 0; k < K; k++)
			amax = fabs(r[k]) > amax ? fabs(r[k]) : amax;
		float fa = (float)amax;
		if ((double)fa < amax)
			fa = nextafterf(fa, INFINITY);
		float sx = fa / (float)n, inv = fa > 0 ? (float)n / fa : 0;
		for (int k = 0; k < K; k++) {
			float v = ((float)r[k] * inv + 12582912.0f) - 12582912.0f;
			v = v > n ? (float)n : v < -n ? (float)-n : v;
			r[k] -= (double)sx * v;
		}
	}
	double ee = 0;
	for (int k = 0; k < K; k++)
		ee += r[k] * r[k];
	return sqrt(ee);
}

/* The refining pass (two code vectors an input, AVX2's 7-bit codes): its bound holds row by row,
 * on every row, for inputs of every scale; an ISA with one code vector says so. */
static void check_refined(const struct kern_isa *isa, struct pool *pool)
{
	struct head_screen h;
	assert_int_equal(head_screen_build(&h, pool, wp, V, K), 0);
	struct kern_ctx kc;
	assert_int_equal(kern_ctx_init(&kc, NULL, 0, 0, 0, K), 0);
	kc.isa = isa;
	static float x[K], full[V], a2[V];
	static double b2[V];
	static int rows[V];
	for (int l = 0; l < V; l++)
		rows[l] = V - 1 - l; /* any order */
	if (head_screen_terms(isa, isa->gemv_i8u8p != NULL) < 2) {
		assert_int_equal(head_screen_refined(&h, isa, x, rows, V, a2, b2), -EINVAL);
		goto out;
	}
	for (int round = 0; round < 20; round++) {
		double scale = pow(10.0, -6 + (round % 13));
		for (int k = 0; k < K; k++)
			x[k] = (float)(scale * (round % 3 == 1 ? bf16_to_f32(w[5 * K + k])
							       : nrand() * (k % 17 ? 1 : 30)));
		kern_matmul_bf16p(&kc, wp, V, K, x, 1, full);
		assert_int_equal(head_screen_refined(&h, isa, x, rows, V, a2, b2), 0);
		for (int i = 0; i < V; i++)
			assert_true(fabs((double)full[rows[i]] - a2[i]) <= b2[i]);
	}
out:
	head_screen_free(&h);
	kern_ctx_free(&kc);
}

static void check_isa(const struct kern_isa *isa, struct pool *pool)
{
	struct kern_ctx kc;
	assert_int_equal(kern_ctx_init(&kc, pool, 0, 0, 0, K), 0);
	kc.isa = isa;
	struct head_screen h;
	assert_int_equal(head_screen_build(&h, pool, wp, V, K), 0);
	static float x[MAXM * K], full[MAXM * V];
	static float ap[MAXM * 1024];
	int ids[MAXM], multi = 0;
	for (int round = 0; round < 60; round++) {
		/* one input a call, now and then several (the integer pass where the path has it,
		 * else the full head for all) */
		int M = round % 7 == 6 || round % 11 == 1 ? 2 + round % (MAXM - 1) : 1;
		multi +=
		    M > 1 && (!isa->gemv_i8u8p || (isa->i8u8_maxm && M > isa->i8u8_maxm)) ? M : 0;
		double scale = pow(10.0, -6 + (round % 13)); /* 1e-6 .. 1e6 */
		for (int m = 0; m < M; m++)
			for (int k = 0; k < K; k++)
				x[m * K + k] = (float)(scale * nrand());
		if (round % 5 == 1) /* aimed at rows 5 / 700 / 701: the largest logit a near-tie */
			for (int k = 0; k < K; k++)
				x[k] = (float)(scale * bf16_to_f32(w[5 * K + k]));
		if (round % 5 == 2) /* aimed at rows 900..911 */
			for (int k = 0; k < K; k++)
				x[k] = (float)(scale * bf16_to_f32(w[9 * K + k]));
		if (round == 3) /* every logit 0: every row a candidate, so the full head */
			memset(x, 0, sizeof(float) * K);
		if (round == 4)
			x[K / 2] = NAN;
		if (round == 5)
			x[0] = INFINITY;
		if (round == 6)
			x[3] = 3e38f;
		kern_matmul_bf16p(&kc, wp, V, K, x, M, full);
		assert_int_equal(head_screen_top1(&h, &kc, wp, x, M, ids), 0);
		for (int m = 0; m < M; m++)
			assert_int_equal(ids[m], sampler_argmax(full + (size_t)m * V, V));
		/* the bounds, row by row, for finite inputs: the f32 pass on the first input, the
		 * integer pass's approximations of every input it ran */
		isa->gemv_i8p(h.q, h.s, kern_bf16p_panels(V), K, x, K, 1, ap, 1024);
		double u = 0x1p-24, g1 = (K + 1) * u / (1 - (K + 1) * u);
		/* the integer pass ran (its values in h.a when one pass took every input) */
		int ran = isa->gemv_i8u8p && (M > 1 || isa->i8u8_one) &&
			  (!isa->i8u8_maxm || M <= isa->i8u8_maxm);
		int per = KERN_MB_ROWB; /* inputs a pass, whatever its code vectors */
		int ip = ran && M <= per, mi = ip ? M : 1;
		for (int m = 0; m < mi; m++) {
			const float *xm = x + (size_t)m * K;
			double nx = 0, E;
			for (int k = 0; k < K; k++)
				nx += (double)xm[k] * xm[k];
			nx = sqrt(nx);
			if (!isfinite(nx) || nx * h.wmax >= 1e37)
				continue;
			const float *am = ap;
			if (ip) {
				/* the pass's values take the first code vector alone (a second one
				 * refines only its candidates) */
				E = ref_rounding_err(xm, isa->i8u8_xmax, 1);
				am = h.a + (size_t)m * kern_bf16p_panels(V) * KERN_PW;
			} else {
				E = g1 * nx;
			}
			for (int l = 0; l < V; l++) {
				double B = (h.c1[l] * nx + h.c2[l] * E) * (1 + 0x1p-20) +
					   (ip ? 0x1p-23 * fabsf(am[l]) : 0) + K * 0x1p-140;
				assert_true(fabs((double)full[(size_t)m * V + l] - am[l]) <= B);
			}
		}
	}
	/* identical rows 5 and 700: the lowest index wins, 701 (one step off) decided exactly */
	for (int k = 0; k < K; k++)
		x[k] = bf16_to_f32(w[5 * K + k]);
	kern_matmul_bf16p(&kc, wp, V, K, x, 1, full);
	assert_int_equal(head_screen_top1(&h, &kc, wp, x, 1, ids), 0);
	assert_int_equal(ids[0], sampler_argmax(full, V));
	assert_true(ids[0] == 5 || ids[0] == 701);
	/* the screen kept few candidates on random rows */
	assert_true(h.st.rows > 0);
	assert_true(h.st.cands < h.st.rows * (uint64_t)(V / 8));
	assert_true(h.st.fallbacks >= 3 + (uint64_t)multi && h.st.fallbacks < 8 + (uint64_t)multi);
	print_message("  %s: %llu rows, %.1f candidates a row (max %llu), %llu full\n", isa->name,
		      (unsigned long long)h.st.rows,
		      (double)h.st.cands / (double)(h.st.rows - h.st.fallbacks),
		      (unsigned long long)h.st.cand_max, (unsigned long long)h.st.fallbacks);
	head_screen_free(&h);
	kern_ctx_free(&kc);
	check_refined(isa, pool);
}

static void test_top1_every_isa(void **st)
{
	(void)st;
	make_head();
	struct pool *pool = pool_create(2);
	assert_non_null(pool);
	int have = 0;
	for (int i = 0; i < 4; i++) {
		const struct kern_isa *isa = kern_isa_by_name(isas[i]);
		if (!isa)
			continue;
		assert_non_null(isa->gemv_i8p);
		check_isa(isa, i % 2 ? pool : NULL);
		have++;
	}
	assert_true(have >= 1);
	pool_free(pool);
}

/* gemv_i8p on every path: within the f32 rounding of a double sum of the same codes. */
static void test_gemv_i8p(void **st)
{
	(void)st;
	enum { NP = 3, KK = 75, MM = 5 };
	int nkb = (KK + 15) / 16;
	static int8_t q[NP * 5 * 256];
	static float s[NP * 16], x[MM * KK], y[MM * NP * 16];
	for (size_t i = 0; i < sizeof q; i++)
		q[i] = (int8_t)(urand() * 255 - 127);
	for (int p = 0; p < NP; p++) /* zeros past K, as the layout says */
		for (int kb = 0; kb < nkb; kb++)
			for (int i = 0; i < 16; i++)
				for (int j = 0; j < 16; j++)
					if (kb * 16 + j >= KK)
						q[((p * nkb + kb) * 16 + i) * 16 + j] = 0;
	for (int i = 0; i < NP * 16; i++)
		s[i] = (float)(urand() * 0.01);
	for (int i = 0; i < MM * KK; i++)
		x[i] = (float)nrand();
	for (int n = 0; n < 4; n++) {
		const struct kern_isa *isa = kern_isa_by_name(isas[n]);
		if (!isa)
			continue;
		for (int M = 1; M <= MM; M += 2) {
			memset(y, 0, sizeof y);
			isa->gemv_i8p(q, s, NP, KK, x, KK, M, y, NP * 16);
			for (int m = 0; m < M; m++)
				for (int r = 0; r < NP * 16; r++) {
					double ref = 0, abs = 0;
					int p = r / 16, i = r % 16;
					for (int k = 0; k < KK; k++) {
						int at =
						    ((p * nkb + k / 16) * 16 + i) * 16 + k % 16;
						double t = q[at] * (double)x[m * KK + k];
						ref += t;
						abs += fabs(t);
					}
					ref *= s[r];
					assert_true(fabs(y[m * NP * 16 + r] - ref) <=
						    1e-5 * abs * s[r] + 1e-30);
				}
		}
	}
}

/* gemv_i8u8p and row_i8u8p on every path that has them: the exact integer sums (KK = 75: an odd
 * number of groups, the last partly past K). */
static void test_gemv_i8u8p(void **st)
{
	(void)st;
	enum { NP = 3, KK = 75, MM = 7, LDX = 100 };
	int nkb = (KK + 15) / 16, have = 0;
	static int8_t q[NP * 5 * 256];
	static uint8_t xu[MM * LDX];
	static int32_t qs[NP * 16], y[MM * NP * 16];
	for (size_t i = 0; i < sizeof q; i++)
		q[i] = (int8_t)(i % 13 == 0 ? -127 : i % 23 == 0 ? 127 : urand() * 255 - 127);
	for (int p = 0; p < NP; p++)
		for (int i = 0; i < 16; i++) {
			qs[p * 16 + i] = 0;
			for (int k = 0; k < nkb * 16; k++)
				qs[p * 16 + i] += q[((p * nkb + k / 16) * 16 + i) * 16 + k % 16];
		}
	for (int n = 0; n < 4; n++) {
		const struct kern_isa *isa = kern_isa_by_name(isas[n]);
		if (!isa || !isa->gemv_i8u8p)
			continue;
		have++;
		/* inputs over the path's whole range, its ends among them */
		int off = isa->i8u8_xmax + 1;
		for (int i = 0; i < MM * LDX; i++)
			xu[i] = (uint8_t)(i % 17 == 0	? 2 * off - 1
					  : i % 19 == 0 ? 1
							: 1 + urand() * (2 * off - 2));
		for (int M = 1; M <= MM; M++) {
			memset(y, 0, sizeof y);
			isa->gemv_i8u8p(q, qs, NP, KK, xu, LDX, M, off, y, NP * 16);
			for (int m = 0; m < M; m++)
				for (int r = 0; r < NP * 16; r++) {
					int32_t ref = 0;
					int p = r / 16, i = r % 16;
					for (int k = 0; k < nkb * 16; k++) {
						int at =
						    ((p * nkb + k / 16) * 16 + i) * 16 + k % 16;
						ref += q[at] * (xu[m * LDX + k] - off);
					}
					assert_int_equal(y[m * NP * 16 + r], ref);
					/* one row alone (the refining pass): without the offset */
					if (!isa->row_i8u8p)
						continue;
					int32_t ru = 0;
					for (int k = 0; k < nkb * 16; k++)
						ru +=
						    q[((p * nkb + k / 16) * 16 + i) * 16 + k % 16] *
						    xu[m * LDX + k];
					assert_int_equal(isa->row_i8u8p(q + (size_t)p * nkb * 256,
									nkb, i, xu + m * LDX),
							 ru);
				}
		}
	}
	assert_true(have >= 1); /* the scalar path at least */
}

static void test_nonfinite_head(void **st)
{
	(void)st;
	make_head();
	w[17 * K + 3] = 0x7FC0; /* NaN */
	kern_bf16p_pack(w, V, K, 0, kern_bf16p_panels(V), wp);
	struct head_screen h;
	assert_int_equal(head_screen_build(&h, NULL, wp, V, K), -EDOM);
	assert_null(h.q);
	assert_int_equal(head_screen_build(&h, NULL, wp, 0, K), -EINVAL);
	free(wp);
	wp = NULL;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_gemv_i8p),
	    cmocka_unit_test(test_gemv_i8u8p),
	    cmocka_unit_test(test_top1_every_isa),
	    cmocka_unit_test(test_nonfinite_head),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
