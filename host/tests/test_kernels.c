/*
 * test_kernels.c - the cpu backend's matrix products (kernels.h) against double-precision
 * references, on every ISA path this CPU runs, for aligned and partial-block shapes:
 *  - act none: y = x . dequant(W)^T within 2e-6 relative (f32 accumulation);
 *  - act fp8: y[m,n] = sum_kb D*sa*sw with D the EXACT block dot product (docs/numerics.md), within
 *    2e-6 relative;
 *  - BF16 weights, multi-job regions with shared inputs, and the thread pool (2 threads).
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "e4m3.h"
#include "model/kernels.h"

static uint64_t rs = 88172645463325252ull;
static double urand(void)
{
	rs ^= rs << 13, rs ^= rs >> 7, rs ^= rs << 17;
	return (double)(rs >> 11) / 9007199254740992.0;
}

/* A random FP8 matrix with per-block scales amax/448. */
static void make_fp8(struct qmat *W, int rows, int cols)
{
	int sr = (rows + 127) / 128, sc = (cols + 127) / 128;
	uint8_t *w = malloc((size_t)rows * cols);
	float *s = malloc(sizeof(float) * (size_t)sr * sc);
	for (int i = 0; i < sr * sc; i++)
		s[i] = (float)(0.001 + urand() * 0.01);
	for (size_t i = 0; i < (size_t)rows * cols; i++) {
		uint8_t c = (uint8_t)(urand() * 256);
		w[i] = (c & 0x7F) == 0x7F ? 0x7E : c;
	}
	*W = (struct qmat){.rows = rows,
			   .cols = cols,
			   .fmt = QMAT_FP8,
			   .w = w,
			   .scale = s,
			   .scale_cols = sc,
			   .name = "test"};
}

static double rel_err(const float *a, const double *b, int n)
{
	double num = 0, den = 0;
	for (int i = 0; i < n; i++) {
		num += (a[i] - b[i]) * (a[i] - b[i]);
		den += b[i] * b[i];
	}
	return sqrt(num / (den > 0 ? den : 1));
}

static void check_shape(const struct kern_isa *isa, struct pool *pool, int M, int N, int K)
{
	struct qmat W;
	make_fp8(&W, N, K);
	float *x = malloc(sizeof(float) * (size_t)M * K),
	      *y = malloc(sizeof(float) * (size_t)M * N);
	double *ref = malloc(sizeof(double) * (size_t)M * N);
	for (int i = 0; i < M * K; i++)
		x[i] = (float)((urand() - 0.5) * (i % 7 == 0 ? 40 : 2));
	for (int act = 0; act < 2; act++) {
		struct kern_ctx k;
		assert_int_equal(kern_ctx_init(&k, pool, act, 0, (size_t)M * K, K), 0);
		k.isa = isa;
		assert_int_equal(kern_matmul(&k, &W, x, M, y), 0);
		int nkb = (K + 127) / 128;
		float *xq = malloc(sizeof(float) * K), *sa = malloc(sizeof(float) * nkb);
		for (int m = 0; m < M; m++) {
			kern_act_quant(x + (size_t)m * K, K, 0, xq, sa);
			for (int n = 0; n < N; n++) {
				double acc = 0;
				if (act) {
					for (int kb = 0; kb < nkb; kb++) {
						int64_t D = 0; /* exact, units of 2^-18 */
						for (int j = kb * 128; j < K && j < kb * 128 + 128;
						     j++)
							D += (int64_t)e4m3_decode_fixed(e4m3_encode(
								 x[(size_t)m * K + j] / sa[kb])) *
							     e4m3_decode_fixed(
								 ((const uint8_t *)
								      W.w)[(size_t)n * K + j]);
						acc += ldexp((double)D, -18) * sa[kb] *
						       W.scale[(n / 128) * W.scale_cols + kb];
					}
				} else {
					for (int j = 0; j < K; j++)
						acc += (double)x[(size_t)m * K + j] *
						       qmat_get(&W, n, j);
				}
				ref[(size_t)m * N + n] = acc;
			}
		}
		double e = rel_err(y, ref, M * N);
		if (e > 2e-6)
			fail_msg("%s act %s M %d N %d K %d: relative error %.3g > 2e-6", isa->name,
				 act ? "fp8" : "none", M, N, K, e);
		free(xq);
		free(sa);
		kern_ctx_free(&k);
	}
	free((void *)W.w);
	free((void *)W.scale);
	free(x);
	free(y);
	free(ref);
}

static void test_fp8_shapes(void **st)
{
	(void)st;
	const char *names[] = {"scalar", "avx2", "avx512", "avx512bf16"};
	struct pool *pool = pool_create(2);
	int shapes[][3] = {{1, 128, 128},  {1, 144, 256}, {3, 200, 320}, {5, 257, 130},
			   {8, 64, 1000},  {1, 1, 1},	  {2, 130, 127}, {9, 67, 300},
			   {12, 130, 256}, {10, 37, 131}, {17, 20, 385}, {8, 16, 33},
			   {9, 5, 1},	   {8, 3, 2}};
	for (int i = 0; i < 4; i++) {
		const struct kern_isa *isa = kern_isa_by_name(names[i]);
		if (!isa)
			continue;
		for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
			check_shape(isa, s % 2 ? pool : NULL, shapes[s][0], shapes[s][1],
				    shapes[s][2]);
	}
	pool_free(pool);
}

/* The decode GEMV path (rows_only) on input rows of very different magnitudes, among them rows
 * past 2^15 (the AVX2 path's prepared input scales those by less): each row's result is the same
 * bits alone and beside the others, and within 2e-6 relative of the double reference (act none). */
static void test_fp8_rows_magnitudes(void **st)
{
	(void)st;
	const char *names[] = {"scalar", "avx2", "avx512", "avx512bf16"};
	const double mag[] = {1, 1e6, 1e-30, 4e4, 3e38 / 2048};
	enum { M = 9 }; /* (row_bf16: a call of eight rows and one of one) */
	int shapes[][2] = {{37, 300}, {20, 1024}, {9, 31}};
	for (int i = 0; i < 4; i++) {
		const struct kern_isa *isa = kern_isa_by_name(names[i]);
		if (!isa)
			continue;
		for (int sh = 0; sh < 3; sh++) {
			int N = shapes[sh][0], K = shapes[sh][1];
			struct qmat W;
			make_fp8(&W, N, K);
			float *x = malloc(sizeof(float) * M * K),
			      *y = malloc(sizeof(float) * M * N), *y1 = malloc(sizeof(float) * N);
			for (int m = 0; m < M; m++)
				for (int k = 0; k < K; k++)
					x[m * K + k] = (float)((urand() - 0.5) * mag[m % 5] *
							       (k % 5 == 0 ? 3 : 1));
			for (int act = 0; act < 2; act++) {
				struct kern_ctx kc;
				assert_int_equal(kern_ctx_init(&kc, NULL, act, 0, (size_t)M * K, K),
						 0);
				kc.isa = isa;
				kc.rows_only = 1;
				assert_int_equal(kern_matmul(&kc, &W, x, M, y), 0);
				for (int m = 0; m < M; m++) {
					assert_int_equal(kern_matmul(&kc, &W, x + m * K, 1, y1), 0);
					if (memcmp(y1, y + m * N, sizeof(float) * N))
						fail_msg("%s act %d K %d row %d: alone != batched",
							 isa->name, act, K, m);
					if (act)
						continue;
					for (int n = 0; n < N; n++) {
						double r = 0, a = 0;
						for (int k = 0; k < K; k++) {
							double p = (double)x[m * K + k] *
								   qmat_get(&W, n, k);
							r += p;
							a += fabs(p);
						}
						if (!(fabs(y1[n] - r) <= 2e-6 * a))
							fail_msg("%s K %d row %d col %d: %g vs %g",
								 isa->name, K, m, n, y1[n], r);
					}
				}
				kern_ctx_free(&kc);
			}
			free((void *)W.w);
			free((void *)W.scale);
			free(x);
			free(y);
			free(y1);
		}
	}
}

static void test_bf16_and_jobs(void **st)
{
	(void)st;
	int N = 70, K = 300, M = 3;
	uint16_t *wb = malloc(2 * (size_t)N * K);
	float *x = malloc(sizeof(float) * M * K), *y1 = malloc(sizeof(float) * M * N);
	float *y2 = malloc(sizeof(float) * M * N);
	for (int i = 0; i < N * K; i++)
		wb[i] = f32_to_bf16((float)(urand() - 0.5));
	for (int i = 0; i < M * K; i++)
		x[i] = (float)(urand() - 0.5);
	struct qmat W = {.rows = N, .cols = K, .fmt = QMAT_BF16, .w = wb};
	struct pool *pool = pool_create(2);
	struct kern_ctx k;
	assert_int_equal(kern_ctx_init(&k, pool, 1, 0, 0, K), 0); /* act fp8 leaves BF16 alone */
	/* two jobs: y1 = xW^T, y2 = x[1..2] W^T accumulated onto 1.0 */
	for (int i = 0; i < M * N; i++)
		y2[i] = 1.0f;
	struct kern_job jobs[2] = {
	    {.W = &W, .x = x, .ldx = K, .M = M, .y = y1, .ldy = N},
	    {.W = &W, .x = x + K, .ldx = K, .M = 2, .y = y2, .ldy = N, .accumulate = 1},
	};
	assert_int_equal(kern_matmul_jobs(&k, jobs, 2), 0);
	for (int m = 0; m < M; m++)
		for (int n = 0; n < N; n++) {
			double acc = 0;
			for (int j = 0; j < K; j++)
				acc += (double)x[m * K + j] * bf16_to_f32(wb[n * K + j]);
			assert_true(fabs(y1[m * N + n] - acc) < 1e-5);
			if (m >= 1)
				assert_true(fabs(y2[(m - 1) * N + n] - (acc + 1.0)) < 1e-5);
		}
	kern_ctx_free(&k);
	pool_free(pool);
	free(wb);
	free(x);
	free(y1);
	free(y2);
}

/* The packed BF16 GEMV (the cpu engine's lm_head) on every ISA this CPU runs: a partial last
 * panel, K not a multiple of 8; within 1e-5 of double sums, each row's outputs the same bits
 * for every M and on every path (one FMA chain per output in ascending k). */
static void test_bf16_packed(void **st)
{
	(void)st;
	const char *names[] = {"scalar", "avx2", "avx512", "avx512bf16"};
	enum { N = 37, K = 100, M = 7 };
	static uint16_t w[N * K], wp[3 * K * KERN_PW];
	static float x[M * K], y[M * N], y1[N], first[M * N];
	assert_int_equal(kern_bf16p_panels(N), 3);
	for (int i = 0; i < N * K; i++) {
		float f = (float)(urand() - 0.5);
		uint32_t u;
		memcpy(&u, &f, 4);
		w[i] = (uint16_t)(u >> 16);
	}
	for (int i = 0; i < M * K; i++)
		x[i] = (float)(urand() - 0.5);
	kern_bf16p_pack(w, N, K, 0, 3, wp);
	int have = 0;
	for (int i = 0; i < 4; i++) {
		const struct kern_isa *isa = kern_isa_by_name(names[i]);
		if (!isa)
			continue;
		assert_non_null(isa->gemv_bf16p);
		for (int p = 0; p < 3; p++) {
			int nw = N - p * KERN_PW < KERN_PW ? N - p * KERN_PW : KERN_PW;
			isa->gemv_bf16p(wp + (size_t)p * K * KERN_PW, nw, x, K, M, K,
					y + p * KERN_PW, N);
		}
		for (int m = 0; m < M; m++) {
			for (int n = 0; n < N; n++) {
				double ref = 0;
				for (int k = 0; k < K; k++) {
					uint32_t u = (uint32_t)w[n * K + k] << 16;
					float f;
					memcpy(&f, &u, 4);
					ref += (double)f * x[m * K + k];
				}
				assert_true(fabs(y[m * N + n] - ref) <= 1e-5 * (1 + fabs(ref)));
			}
			for (int p = 0; p < 3; p++) { /* the row alone */
				int nw = N - p * KERN_PW < KERN_PW ? N - p * KERN_PW : KERN_PW;
				isa->gemv_bf16p(wp + (size_t)p * K * KERN_PW, nw, x + m * K, K, 1,
						K, y1 + p * KERN_PW, N);
			}
			assert_memory_equal(y1, y + m * N, sizeof y1);
		}
		/* two panels in one call: the same bits (M = 1, 2 and 7) */
		static float y2[M * N];
		for (int mm = 1; mm <= M; mm += mm < 2 ? 1 : 5) {
			memset(y2, 0, sizeof y2);
			isa->gemv_bf16p(wp, 2 * KERN_PW, x, K, mm, K, y2, N);
			for (int m = 0; m < mm; m++)
				assert_memory_equal(y2 + m * N, y + m * N,
						    sizeof(float) * 2 * KERN_PW);
		}
		if (have++)
			assert_memory_equal(first, y, sizeof y);
		else
			memcpy(first, y, sizeof y);
	}
}

/* The attention's f32 primitives on every ISA this CPU runs: dot_f32_rows against double sums
 * (a sum the same bits for every P and M, and as the scalar path's), axpy4_f32 bit-identical to
 * four axpy_f32 calls. */
static void test_f32_attention_prims(void **st)
{
	(void)st;
	const char *names[] = {"scalar", "avx2", "avx512", "avx512bf16"};
	enum { N = 300 };
	static float w[N], x[KERN_MB * N], y1[N], y2[N], xs[4][N];
	for (int i = 0; i < N; i++)
		w[i] = (float)(urand() - 0.5);
	for (int i = 0; i < KERN_MB * N; i++)
		x[i] = (float)(urand() - 0.5);
	for (int r = 0; r < 4; r++)
		for (int i = 0; i < N; i++)
			xs[r][i] = (float)(urand() - 0.5);
	for (int i = 0; i < 4; i++) {
		const struct kern_isa *isa = kern_isa_by_name(names[i]);
		if (!isa)
			continue;
		int lens[] = {1, 5, 8, 32, 256, 288, 300};
		const float *rows[2] = {w, xs[3]};
		const struct kern_isa *sc = kern_isa_by_name("scalar");
		for (size_t l = 0; l < sizeof lens / sizeof lens[0]; l++) {
			int n = lens[l];
			float one, all[2][KERN_MB], ref_all[2][KERN_MB];
			/* every path has them (avx512 runs AVX2's, chosen at start-up) */
			assert_non_null(isa->dot_f32_rows);
			isa->dot_f32_rows(rows, 2, x, N, KERN_MB, n, all[0], KERN_MB);
			sc->dot_f32_rows(rows, 2, x, N, KERN_MB, n, ref_all[0], KERN_MB);
			/* the same bits as the scalar path's */
			assert_memory_equal(all, ref_all, sizeof all);
			for (int p = 0; p < 2; p++)
				for (int m = 0; m < KERN_MB; m++) {
					double ref = 0;
					for (int k = 0; k < n; k++)
						ref += (double)rows[p][k] * x[m * N + k];
					assert_true(fabs(all[p][m] - ref) <=
						    1e-5 * (1 + fabs(ref)));
					/* and for one row against one input */
					isa->dot_f32_rows(rows + p, 1, x + m * N, N, 1, n, &one, 1);
					assert_memory_equal(&one, &all[p][m], sizeof(float));
				}
		}
		assert_non_null(isa->axpy4_f32);
		assert_non_null(isa->axpy4_rows_f32);
		const float a[4] = {0.5f, -1.25f, 3.0f, 0.0078125f};
		const float *xp[4] = {xs[0], xs[1], xs[2], xs[3]};
		for (int k = 0; k < N; k++)
			y1[k] = y2[k] = (float)(urand() - 0.5);
		for (int r = 0; r < 4; r++)
			isa->axpy_f32(y1, a[r], xs[r], N - 3);
		isa->axpy4_f32(y2, a, xp, N - 3);
		assert_memory_equal(y1, y2, sizeof y1);
		/* three rows (a pair and an odd one) against axpy4_f32 on each */
		static float yr[3][N], ys[3][N];
		const float ar[3][4] = {{0.5f, -1.25f, 3.0f, 0.0078125f},
					{-2.0f, 0.25f, 1.5f, -0.75f},
					{1.0f, 1.0f, -1.0f, 0.125f}};
		for (int r = 0; r < 3; r++)
			for (int k = 0; k < N; k++)
				yr[r][k] = ys[r][k] = (float)(urand() - 0.5);
		for (int r = 0; r < 3; r++)
			isa->axpy4_f32(ys[r], ar[r], xp, N - 3);
		isa->axpy4_rows_f32(yr[0], N, ar[0], 4, xp, 3, N - 3);
		assert_memory_equal(yr, ys, sizeof yr);
	}
}

/* rows_bf16 (the single-input decode GEMV on up to four weight rows a call) against row_bf16 on
 * each row alone, bit for bit, for every row count and partial blocks of K; then on every path
 * with rows_fp8 or rows_bf16, in a decode region (rows_only, two threads) whose claims start
 * inside a 128-row block, every output against the same job run beside a second input row (the
 * one-row-a-call kernels). */
static void test_rows_bf16(void **st)
{
	(void)st;
	const struct kern_isa *isa = kern_isa_by_name("avx512bf16");
	int bf = isa && isa->rows_bf16 && isa->row_bf16 && isa->quant_bf16; /* (this CPU has it) */
	const int Ks[] = {1, 31, 64, 128, 300, 384, 1024};
	for (size_t ki = 0; bf && ki < sizeof Ks / sizeof Ks[0]; ki++) {
		int K = Ks[ki], nkb = (K + 127) / 128, kp = (K + 1) & ~1;
		struct qmat W;
		make_fp8(&W, 4, K);
		float *x = malloc(sizeof(float) * K), sa[8];
		uint16_t *xb = calloc((size_t)kp + 64, sizeof(uint16_t));
		for (int k = 0; k < K; k++)
			x[k] = (float)((urand() - 0.5) * (k % 7 == 0 ? 40 : 1));
		for (int kb = 0; kb < nkb; kb++) {
			int n = K - kb * 128 < 128 ? K - kb * 128 : 128;
			sa[kb] = (float)(0.01 + urand() * 0.02);
			isa->quant_bf16(x + kb * 128, n, sa[kb], xb + kb * 128);
		}
		for (int nr = 1; nr <= 4; nr++) {
			float a4[4], a1[8];
			isa->rows_bf16(W.w, nr, xb, K, sa, W.scale, a4);
			for (int r = 0; r < nr; r++) {
				isa->row_bf16((const uint8_t *)W.w + (size_t)r * K, xb, kp, 1, K,
					      sa, nkb, W.scale, a1);
				uint32_t u1, u4;
				memcpy(&u1, &a1[0], 4);
				memcpy(&u4, &a4[r], 4);
				if (u1 != u4)
					fail_msg("K %d nr %d row %d: %a vs %a alone", K, nr, r,
						 a4[r], a1[0]);
			}
		}
		free((void *)W.w);
		free((void *)W.scale);
		free(x);
		free(xb);
	}
	struct pool *pool = pool_create(2);
	struct qmat A, B;
	int K = 256, NA = 37, NB = 300;
	make_fp8(&A, NA, K);
	make_fp8(&B, NB, K);
	float *x = malloc(sizeof(float) * 2 * K), *y1 = calloc((size_t)NA + NB, sizeof(float)),
	      *y2 = calloc((size_t)2 * (NA + NB), sizeof(float));
	for (int k = 0; k < 2 * K; k++)
		x[k] = (float)(urand() - 0.5);
	const char *names[] = {"avx2", "avx512", "avx512bf16"};
	for (int p = 0; p < 3; p++) {
		const struct kern_isa *pi = kern_isa_by_name(names[p]);
		if (!pi || !(pi->rows_fp8 || pi->rows_bf16))
			continue;
		struct kern_ctx kc;
		assert_int_equal(kern_ctx_init(&kc, pool, 1, 0, (size_t)2 * K, K), 0);
		kc.isa = pi;
		kc.rows_only = 1;
		for (int M = 1; M <= 2; M++) {
			float *y = M == 1 ? y1 : y2;
			struct kern_job jobs[2] = {
			    {.W = &A, .x = x, .ldx = K, .M = M, .y = y, .ldy = NA + NB},
			    {.W = &B, .x = x, .ldx = K, .M = M, .y = y + NA, .ldy = NA + NB}};
			assert_int_equal(kern_matmul_jobs(&kc, jobs, 2), 0);
		}
		if (memcmp(y1, y2, sizeof(float) * (NA + NB)))
			fail_msg("%s: one input's rows != the same rows beside a second input",
				 names[p]);
		kern_ctx_free(&kc);
	}
	pool_free(pool);
	free((void *)A.w);
	free((void *)A.scale);
	free((void *)B.w);
	free((void *)B.scale);
	free(x);
	free(y1);
	free(y2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_fp8_shapes),	  cmocka_unit_test(test_fp8_rows_magnitudes),
	    cmocka_unit_test(test_bf16_and_jobs), cmocka_unit_test(test_f32_attention_prims),
	    cmocka_unit_test(test_bf16_packed),	  cmocka_unit_test(test_rows_bf16),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
