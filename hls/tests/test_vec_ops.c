/*
 * test_vec_ops.c - C simulation of the vec_ops kernel and of hls_math.h: the kernel's own
 * exp/rsqrt/sigmoid/SiLU are swept against libm (max error in ulp printed and bounded), special
 * values checked, and every op compared with a double-precision libm reference on random and
 * adversarial rows (max magnitude, subnormals, all-zero groups, NaN, partial lanes/groups).
 * Checks with tests/harness.h.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "e4m3.h"
#include "hls_math.h"
#include "hls/vec_ops/vec_ops.h"
#include "tests/harness.h"

#define TEST_RNG_SEED 88172645463325252ull
#include "test_rng.h"

/* error of got against the exact value ref, in ulps of the f32 nearest ref */
static double ulp_err(float got, double ref)
{
	float r = (float)ref;
	if (r == 0.0f)
		return got == 0.0f ? 0.0 : 1e9;
	int e;
	frexp(fabs(ref), &e);
	double ulp = ldexp(1.0, e - 24);
	if (ulp < ldexp(1.0, -149))
		ulp = ldexp(1.0, -149);
	return fabs((double)got - ref) / ulp;
}

static void test_math(void)
{
	double e_exp = 0, e_rs = 0, e_sig = 0, e_silu = 0;
	int n = 400000;
	for (int i = 0; i < n; i++) {
		float x = -87.0f + 175.0f * (float)i / n;
		e_exp = fmax(e_exp, ulp_err(hls_expf(x), exp((double)x)));
		float xs = -30.0f + 60.0f * (float)i / n;
		double sg = 1.0 / (1.0 + exp(-(double)xs));
		e_sig = fmax(e_sig, ulp_err(hls_sigmoidf(xs), sg));
		if (fabs(xs * sg) > 1e-30)
			e_silu = fmax(e_silu, ulp_err(hls_siluf(xs), xs * sg));
		float xr = (float)exp(-110.0 + 200.0 * i / n) * (1.0f + unif());
		e_rs = fmax(e_rs, ulp_err(hls_rsqrtf(xr), 1.0 / sqrt((double)xr)));
	}
	for (int i = 0; i < 20000; i++) { /* subnormal rsqrt inputs */
		float xr = e4m3_bits_f32(1 + (uint32_t)(rnext() % 0x7FFFFF));
		e_rs = fmax(e_rs, ulp_err(hls_rsqrtf(xr), 1.0 / sqrt((double)xr)));
	}
	printf("hls_math vs libm (max error, ulp): expf %.2f on [-87,88], rsqrtf %.2f on "
	       "[1e-45,1e39], sigmoidf %.2f and siluf %.2f on [-30,30]\n",
	       e_exp, e_rs, e_sig, e_silu);
	CHECK_NEAR(e_exp, 0, 2.0, "hls_expf max error vs libm on [-87,88], ulp");
	CHECK_NEAR(e_rs, 0, 2.0, "hls_rsqrtf max error vs libm on [1e-45,1e39], ulp");
	CHECK_NEAR(e_sig, 0, 4.0, "hls_sigmoidf max error vs libm on [-30,30], ulp");
	CHECK_NEAR(e_silu, 0, 4.0, "hls_siluf max error vs libm on [-30,30], ulp");
	/* special values */
	CHECK(isnan(hls_expf(NAN)), "hls_expf(NaN) is NaN (got %g)", hls_expf(NAN));
	CHECK(isinf(hls_expf(INFINITY)), "hls_expf(inf) is inf (got %g)", hls_expf(INFINITY));
	CHECK_NEAR(hls_expf(-INFINITY), 0.0f, 0, "hls_expf(-inf) is 0");
	CHECK_NEAR(hls_expf(-100.0f), 0.0f, 0, "hls_expf(-100) underflows to 0");
	CHECK(isinf(hls_expf(89.0f)), "hls_expf(89) overflows to inf (got %g)", hls_expf(89.0f));
	CHECK_NEAR(hls_expf(0.0f), 1.0f, 0, "hls_expf(0) is exactly 1");
	CHECK(isnan(hls_rsqrtf(-1.0f)), "hls_rsqrtf(-1) is NaN (got %g)", hls_rsqrtf(-1.0f));
	CHECK(isinf(hls_rsqrtf(0.0f)), "hls_rsqrtf(0) is inf (got %g)", hls_rsqrtf(0.0f));
	CHECK_NEAR(hls_rsqrtf(INFINITY), 0.0f, 0, "hls_rsqrtf(inf) is 0");
	CHECK(isnan(hls_rsqrtf(NAN)), "hls_rsqrtf(NaN) is NaN (got %g)", hls_rsqrtf(NAN));
	CHECK_NEAR(hls_rsqrtf(4.0f), 0.5f, 0, "hls_rsqrtf(4) is exactly 0.5");
	CHECK_NEAR(hls_siluf(-200.0f), 0.0f, 0, "hls_siluf(-200) is 0");
	CHECK_NEAR(hls_siluf(200.0f), 200.0f, 0, "hls_siluf(200) is exactly 200");
	CHECK_NEAR(hls_sigmoidf(0.0f), 0.5f, 0, "hls_sigmoidf(0) is exactly 0.5");
}

enum { K_RANDOM, K_MAX, K_SUB, K_ZERO, K_NAN, K_N };
static const char *kname[K_N] = {"random", "max-magnitude", "subnormal", "zero-groups", "nan"};

static void fill(float *a, int rows, int n, int lda, int kind)
{
	for (int r = 0; r < rows; r++)
		for (int i = 0; i < lda; i++) {
			float v = normal();
			if (kind == K_MAX)
				v *= 1e16f; /* large, with the f32 sum of squares still finite */
			if (kind == K_SUB)
				v *= 1e-39f;
			if (kind == K_ZERO && (i / 128) % 2 == 0)
				v = 0.0f;
			if (kind == K_NAN && i == n / 2)
				v = NAN;
			a[(size_t)r * lda + i] = v;
		}
}

/* max |got - ref| / (|ref| + floor) over a row set, NaN-aware: NaN must match NaN */
static double rel_err(const float *got, const double *ref, size_t n, double floor_, int *nan_bad)
{
	double e = 0;
	for (size_t i = 0; i < n; i++) {
		if (isnan(ref[i]) || isnan(got[i])) {
			if (isnan(ref[i]) != isnan(got[i]))
				(*nan_bad)++;
			continue;
		}
		e = fmax(e, fabs(got[i] - ref[i]) / (fabs(ref[i]) + floor_));
	}
	return e;
}

static void test_ops(void)
{
	static const int ns[] = {1, 15, 16, 130, 256, 1000, 7168};
	double worst[7] = {0};
	for (size_t si = 0; si < sizeof ns / sizeof ns[0]; si++)
		for (int kind = 0; kind < K_N; kind++) {
			int n = ns[si], rows = 3, lda = n + 3, nb = (n + 127) / 128;
			size_t sz = (size_t)rows * lda;
			float *a = malloc(sz * 4), *b = malloc(sz * 4), *w = malloc((size_t)n * 4);
			float *y = malloc(sz * 4), *qs = malloc((size_t)rows * nb * 4);
			double *ref = malloc(sz * 8);
			uint8_t *q = malloc((size_t)rows * n);
			char what[128];
			int nanbad = 0, rc;
			fill(a, rows, n, lda, kind);
			fill(b, rows, n, lda, K_RANDOM);
			for (int i = 0; i < n; i++)
				w[i] = 1.0f + 0.1f * normal();
			/* RMSNorm */
			rc = vec_ops(VEC_OP_RMSNORM, a, w, y, 0, 0, 0, rows, n, lda, lda, 1e-6f, 0,
				     0, 0);
			for (int r = 0; r < rows; r++) {
				double ss = 0;
				for (int i = 0; i < n; i++)
					ss += (double)a[r * lda + i] * a[r * lda + i];
				double k = 1.0 / sqrt(ss / n + (double)1e-6f);
				for (int i = 0; i < n; i++)
					ref[r * n + i] = a[r * lda + i] * k * w[i];
			}
			{
				float *yc = malloc((size_t)rows * n * 4);
				for (int r = 0; r < rows; r++)
					memcpy(yc + r * n, y + r * lda, (size_t)n * 4);
				double e = rel_err(yc, ref, (size_t)rows * n, 1e-30, &nanbad);
				worst[0] = fmax(worst[0], e);
				snprintf(what, sizeof what, "rmsnorm n=%d %s", n, kname[kind]);
				CHECK_RC(rc, "%s: vec_ops", what);
				CHECK_NEAR(e, 0, 2e-6, "%s: max rel err vs the double reference",
					   what);
				CHECK_EQ(nanbad, 0,
					 "%s: elements where NaN-ness differs from the reference",
					 what);
				/* softmax */
				nanbad = 0;
				rc = vec_ops(VEC_OP_SOFTMAX, a, 0, y, 0, 0, 0, rows, n, lda, lda, 0,
					     0, 0, 0);
				for (int r = 0; r < rows; r++) {
					double mx = -INFINITY, s = 0;
					int hasnan = 0;
					for (int i = 0; i < n; i++) {
						hasnan |= isnan(a[r * lda + i]);
						mx = fmax(mx, a[r * lda + i]);
					}
					for (int i = 0; i < n; i++)
						s += exp(a[r * lda + i] - mx);
					for (int i = 0; i < n; i++) {
						ref[r * n + i] =
						    hasnan ? NAN : exp(a[r * lda + i] - mx) / s;
						yc[r * n + i] = y[r * lda + i];
					}
				}
				e = rel_err(yc, ref, (size_t)rows * n, 1e-30, &nanbad);
				/* elements far below the max underflow differently: judge those absolutely */
				worst[5] = fmax(worst[5], e);
				snprintf(what, sizeof what, "softmax n=%d %s", n, kname[kind]);
				CHECK_RC(rc, "%s: vec_ops", what);
				if (kind != K_MAX)
					CHECK_NEAR(e, 0, 2e-6,
						   "%s: max rel err vs the double reference", what);
				CHECK_EQ(nanbad, 0,
					 "%s: elements where NaN-ness differs from the reference",
					 what);
				free(yc);
			}
			/* RoPE on the first n' = even part of each row, in place, positions 0..rows-1 */
			if (n % 2 == 0) {
				int npos = 300, d = n;
				float *tab = malloc((size_t)npos * d * 4);
				int32_t pos[3] = {0, 7, 299};
				vec_rope_yarn_table(tab, npos, d, 10000.0, 40.0, 4096, 32, 1, 1.0,
						    0, 0);
				memcpy(y, a, sz * 4);
				rc = vec_ops(VEC_OP_ROPE, y, tab, y, 0, 0, pos, rows, n, lda, lda,
					     0, 0, 0, 0);
				double e = 0;
				nanbad = 0;
				for (int r = 0; r < rows; r++)
					for (int i = 0; i < n; i += 2) {
						double x0 = a[r * lda + i], x1 = a[r * lda + i + 1];
						double c = tab[((size_t)pos[r] * d + i)],
						       s = tab[((size_t)pos[r] * d + i + 1)];
						double r0 = x0 * c - x1 * s, r1 = x0 * s + x1 * c;
						double mag = fabs(x0) + fabs(x1) + 1e-38;
						if (isnan(r0) != isnan(y[r * lda + i]))
							nanbad++;
						else if (!isnan(r0))
							e = fmax(
							    e, fmax(fabs(y[r * lda + i] - r0),
								    fabs(y[r * lda + i + 1] - r1)) /
								   mag);
					}
				worst[1] = fmax(worst[1], e);
				snprintf(what, sizeof what, "rope n=%d %s", n, kname[kind]);
				CHECK_RC(rc, "%s: vec_ops", what);
				CHECK_NEAR(e, 0, 2e-7, "%s: max err/|x| vs the double reference",
					   what);
				CHECK_EQ(nanbad, 0,
					 "%s: pairs where NaN-ness differs from the reference",
					 what);
				CHECK_NEAR(y[lda - 1], a[lda - 1], 0,
					   "%s: row 0's padding past n is left as it was", what);
				free(tab);
			}
			/* act quant: codes and scales exact against an independent quantizer */
			for (int ue = 0; ue < 2; ue++) {
				rc = vec_ops(VEC_OP_ACT_QUANT, a, 0, 0, q, qs, 0, rows, n, lda, 0,
					     0, ue, 0, 0);
				long bad = 0;
				for (int r = 0; r < rows; r++)
					for (int g = 0; g < nb; g++) {
						int g0 = g * 128, gn = n - g0 < 128 ? n - g0 : 128;
						float amax = 0;
						for (int i = 0; i < gn; i++)
							if (fabsf(a[r * lda + g0 + i]) > amax)
								amax = fabsf(a[r * lda + g0 + i]);
						float s = fmaxf(amax, 1e-4f) / 448.0f;
						if (ue && isfinite(s)) {
							int ex;
							float f = frexpf(s, &ex);
							if (f != 0.5f)
								s = ldexpf(1.0f, ex);
						}
						bad += e4m3_f32_bits(qs[r * nb + g]) !=
						       e4m3_f32_bits(s);
						for (int i = 0; i < gn; i++)
							bad += q[r * n + g0 + i] !=
							       e4m3_encode(a[r * lda + g0 + i] / s);
					}
				snprintf(what, sizeof what, "act-quant%s n=%d %s",
					 ue ? " ue8m0" : "", n, kname[kind]);
				CHECK_RC(rc, "%s: vec_ops", what);
				CHECK_EQ(bad, 0,
					 "%s: codes and scales (of %d) unlike an independent "
					 "quantizer's",
					 what, rows * (n + nb));
			}
			/* SiLU*mul and add */
			rc = vec_ops(VEC_OP_SILU_MUL, a, b, y, 0, 0, 0, rows, n, lda, lda, 0, 0, 0,
				     0);
			double e3 = 0, e4 = 0;
			nanbad = 0;
			for (int r = 0; r < rows; r++)
				for (int i = 0; i < n; i++) {
					double x = a[r * lda + i], u = b[r * lda + i];
					double rf = x / (1.0 + exp(-x)) * u;
					float g = y[r * lda + i];
					if (isnan(rf) != isnan(g))
						nanbad++;
					else if (!isnan(rf) && fabs(rf) > 1e-35)
						e3 = fmax(e3, fabs(g - rf) / fabs(rf));
				}
			worst[3] = fmax(worst[3], e3);
			snprintf(what, sizeof what, "silu*mul n=%d %s", n, kname[kind]);
			CHECK_RC(rc, "%s: vec_ops", what);
			CHECK_NEAR(e3, 0, 1e-6, "%s: max rel err vs the double reference", what);
			CHECK_EQ(nanbad, 0,
				 "%s: elements where NaN-ness differs from the reference", what);
			rc = vec_ops(VEC_OP_ADD, a, b, y, 0, 0, 0, rows, n, lda, lda, 0, 0, 0, 0);
			for (int r = 0; r < rows; r++)
				for (int i = 0; i < n; i++) {
					float want = a[r * lda + i] + b[r * lda + i];
					if (e4m3_f32_bits(want) != e4m3_f32_bits(y[r * lda + i]) &&
					    !isnan(want))
						e4++;
				}
			snprintf(what, sizeof what, "add n=%d %s", n, kname[kind]);
			CHECK_RC(rc, "%s: vec_ops", what);
			CHECK_EQ(e4, 0, "%s: elements not bit-exact against the f32 sum", what);
			free(a);
			free(b);
			free(w);
			free(y);
			free(qs);
			free(ref);
			free(q);
		}
	printf("vec_ops worst errors vs double libm reference: rmsnorm %.3g rel, rope %.3g of |x|, "
	       "silu*mul %.3g rel, softmax %.3g rel; act-quant and add exact\n",
	       worst[0], worst[1], worst[3], worst[5]);
}

static void test_yarn_and_args(void)
{
	int lo = -1, hi = -1;
	float tab[64 * 2];
	int rc = vec_rope_yarn_table(tab, 2, 64, 10000.0, 40.0, 4096, 32, 1, 1.0, &lo, &hi);
	CHECK_RC(rc, "vec_rope_yarn_table for 671B");
	CHECK_EQ(lo, 10, "YaRN ramp for 671B: low dimension");
	CHECK_EQ(hi, 23, "YaRN ramp for 671B: high dimension");
	CHECK_NEAR(tab[0], 1.0f, 0, "table position 0: cos is exactly 1");
	CHECK_NEAR(tab[1], 0.0f, 0, "table position 0: sin is exactly 0");
	float a[4] = {1, 2, 3, 4}, y[4];
	int32_t pos[1] = {-1};
	/* bad arguments give -EINVAL (-22) */
	CHECK_EQ(vec_ops(0, a, a, y, 0, 0, 0, 1, 4, 4, 4, 0, 0, 0, 0), -22, "unknown op 0");
	CHECK_EQ(vec_ops(VEC_OP_ADD, a, a, y, 0, 0, 0, 0, 4, 4, 4, 0, 0, 0, 0), -22,
		 "add with 0 rows");
	CHECK_EQ(vec_ops(VEC_OP_ADD, a, a, y, 0, 0, 0, 1, 4, 3, 4, 0, 0, 0, 0), -22,
		 "add with an input stride below n");
	CHECK_EQ(vec_ops(VEC_OP_ROPE, a, a, y, 0, 0, pos, 1, 4, 4, 4, 0, 0, 0, 0), -22,
		 "rope at position -1");
	CHECK_EQ(vec_ops(VEC_OP_ROPE, a, a, y, 0, 0, 0, 1, 3, 4, 4, 0, 0, 0, 0), -22,
		 "rope on odd n without positions");
	CHECK_EQ(vec_ops(VEC_OP_ACT_QUANT, a, 0, 0, 0, 0, 0, 1, 4, 4, 4, 0, 0, 0, 0), -22,
		 "act-quant without code and scale outputs");
	CHECK_EQ(vec_ops(VEC_OP_RMSNORM, a, 0, y, 0, 0, 0, 1, 4, 4, 4, 0, 0, 0, 0), -22,
		 "rmsnorm without weights");
	CHECK_EQ(vec_ops(VEC_OP_ADD, a, a, y, 0, 0, 0, 1, 4, 4, 4, 0, 2, 0, 0), -22,
		 "add with an unknown flag (2)");
}

/* GATHER copies rows by index; COMBINE adds k weighted rows into y in index order with one f32
 * multiply and one f32 add per term (the accumulating GEMM epilogue, applied k times); both
 * refuse an index out of range before writing anything. */
static void test_gather_combine(void)
{
	enum { SRC = 7, ROWS = 5, K = 3, N = 37, LDA = 40, LDY = 41 };
	float a[SRC * LDA], y[ROWS * LDY], y0[ROWS * LDY], w[ROWS * K];
	int32_t gi[ROWS] = {6, 0, 3, 3, 1}, ci[ROWS * K];
	for (int i = 0; i < SRC * LDA; i++)
		a[i] = (float)normal();
	for (int i = 0; i < ROWS * LDY; i++)
		y0[i] = (float)normal();
	for (int i = 0; i < ROWS * K; i++) {
		ci[i] = (int32_t)((i * 5 + 2) % SRC);
		w[i] = (float)normal();
	}
	memcpy(y, y0, sizeof y);
	int rc = vec_ops(VEC_OP_GATHER, a, 0, y, 0, 0, gi, ROWS, N, LDA, LDY, 0, 0, 0, SRC);
	int bad = rc != 0;
	for (int r = 0; r < ROWS; r++)
		for (int i = 0; i < LDY; i++)
			bad += y[r * LDY + i] !=
			       (i < N ? a[gi[r] * LDA + i] : y0[r * LDY + i]); /* gaps untouched */
	CHECK_EQ(bad, 0, "GATHER copies rows by index: elements wrong of %d", ROWS * LDY);
	memcpy(y, y0, sizeof y);
	rc = vec_ops(VEC_OP_COMBINE, a, w, y, 0, 0, ci, ROWS, N, LDA, LDY, 0, 0, K, SRC);
	bad = rc != 0;
	for (int r = 0; r < ROWS; r++)
		for (int i = 0; i < N; i++) {
			volatile float v = y0[r * LDY + i];
			for (int j = 0; j < K; j++) {
				volatile float t = w[r * K + j] * a[ci[r * K + j] * LDA + i];
				v = v + t;
			}
			bad += e4m3_f32_bits(v) != e4m3_f32_bits(y[r * LDY + i]);
		}
	CHECK_EQ(bad, 0, "COMBINE adds w * row in order, bit for bit: elements wrong of %d",
		 ROWS * N);
	memcpy(y, y0, sizeof y);
	gi[4] = SRC;
	ci[7] = -1;
	bad = vec_ops(VEC_OP_GATHER, a, 0, y, 0, 0, gi, ROWS, N, LDA, LDY, 0, 0, 0, SRC) != -22;
	bad += vec_ops(VEC_OP_COMBINE, a, w, y, 0, 0, ci, ROWS, N, LDA, LDY, 0, 0, K, SRC) != -22;
	bad += vec_ops(VEC_OP_COMBINE, a, w, y, 0, 0, gi, ROWS, N, LDA, LDY, 0, 0, 0, SRC) != -22;
	bad += memcmp(y, y0, sizeof y) != 0;
	CHECK_EQ(bad, 0, "GATHER / COMBINE refuse a bad index or k and write nothing: of %d cases",
		 4);
}

int main(void)
{
	test_math();
	test_ops();
	test_yarn_and_args();
	test_gather_combine();
	return harness_done();
}
