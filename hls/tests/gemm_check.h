/*
 * gemm_check.h - the fp8_gemm C-simulation test body, shared by the per-configuration tests
 * (test_fp8_gemm.c: the library build; test_fp8_gemm_t*.c: other TM/TN/MB tilings compiled from
 * the same kernel source). It checks the kernel bit for bit against an exact double-precision
 * reference of docs/numerics.md (rounding as in fp8_gemm.h) on random and adversarial data,
 * and against a plain scalar f32 reference of the unquantized FP8_GEMM_ACT_F32 mode (products,
 * 8 strided partial sums and the halving tree written out as fp8_gemm.h defines them).
 */
#ifndef MOECARD_GEMM_CHECK_H
#define MOECARD_GEMM_CHECK_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "e4m3.h"
#include "hls/fp8_gemm/fp8_gemm.h"
#include "hls_math.h"

typedef int (*gemm_fn)(const void *, const float *, const uint8_t *, const float *, const uint8_t *,
		       const float *, void *, const float *, const float *, int, int, int, uint32_t,
		       int, int);

static uint64_t gc_rng = 0x2545F4914F6CDD1Dull;
static uint64_t gc_next(void)
{
	gc_rng ^= gc_rng >> 12;
	gc_rng ^= gc_rng << 25;
	gc_rng ^= gc_rng >> 27;
	return gc_rng * 0x2545F4914F6CDD1Dull;
}
static float gc_unif(void)
{
	return (float)((gc_next() >> 40) * (1.0 / 16777216.0));
}
static float gc_normal(void)
{
	float a = gc_unif() + 1e-7f, b = gc_unif();
	return (float)(sqrt(-2.0 * log(a)) * cos(6.283185307179586 * b));
}

/* data kinds */
enum { GC_RANDOM, GC_ALLCODES, GC_MAXMAG, GC_SUBNORM, GC_ZEROGRP, GC_NAN, GC_N };
static const char *gc_kind_name[GC_N] = {"random",    "all-codes",   "max-magnitude",
					 "subnormal", "zero-groups", "nan"};

static uint8_t gc_code(int kind)
{
	switch (kind) {
	case GC_ALLCODES:
		return (uint8_t)gc_next();
	case GC_MAXMAG:
		return (gc_next() & 1) ? 0xFE : 0x7E;
	case GC_SUBNORM:
		return (uint8_t)((gc_next() & 0x80) | (gc_next() & 7));
	default:
		return e4m3_encode(gc_normal() * 64.0f);
	}
}

/* Independent reference quantizer (libm): s = max(amax,1e-4)/448, ue8m0 = 2^ceil(log2 s). */
static void gc_ref_quant(const float *x, int n, int ue8m0, uint8_t *q, float *s_out)
{
	float amax = 0;
	for (int i = 0; i < n; i++)
		if (!isnan(x[i]) && fabsf(x[i]) > amax)
			amax = fabsf(x[i]);
	float s = fmaxf(amax, 1e-4f) / 448.0f;
	if (ue8m0) {
		int e;
		float f = frexpf(s, &e); /* s = f 2^e, f in [0.5,1) */
		if (isfinite(s) && f != 0.5f)
			s = ldexpf(1.0f, e);
	}
	for (int i = 0; i < n; i++)
		q[i] = e4m3_encode(x[i] / s);
	*s_out = s;
}

static double gc_dec(uint8_t c)
{
	float v = e4m3_decode(c);
	return isnan(v) ? 0.0 : (double)v;
}

/* ACT_F32 block sum of fp8_gemm.h over k in [k0, k0 + n): 8 strided f32 partial sums of the
 * f32 products x * e4m3(w) (NaN code = 0), then ((s0+s4)+(s2+s6)) + ((s1+s5)+(s3+s7)). */
static float gc_f32_block(const float *x, const uint8_t *w, int n)
{
	float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
	for (int j = 0; j < n; j++) {
		float wv = (float)gc_dec(w[j]);
		float p = x[j] * wv;
		s[j % 8] = s[j % 8] + p;
	}
	float a = s[0] + s[4], b = s[2] + s[6], c = s[1] + s[5], d = s[3] + s[7];
	return (a + b) + (c + d);
}

/* Exact reference of one GEMM (f32 output before bf16 conversion handled by caller flags).
 * xf: the f32 activations, used as is with FP8_GEMM_ACT_F32 (xq/xs are then unused). */
static void gc_ref(const uint8_t *xq, const float *xs, const float *xf, const uint8_t *w,
		   const float *ws, const uint8_t *w2, const float *ws2, float *yref,
		   const float *yold, const float *res, const float *rw, int M, int N, int K,
		   uint32_t flags)
{
	int KB = (K + 127) / 128;
	for (int m = 0; m < M; m++)
		for (int n = 0; n < N; n++) {
			float accs[2] = {0, 0};
			for (int h = 0; h < ((flags & FP8_GEMM_SILU_MUL) ? 2 : 1); h++) {
				const uint8_t *ww = h ? w2 : w;
				const float *wws = h ? ws2 : ws;
				float acc = 0.0f;
				for (int kb = 0; kb < KB; kb++) {
					if (flags & FP8_GEMM_ACT_F32) {
						int k0 = kb * 128, kn = K - k0 < 128 ? K - k0 : 128;
						float P = gc_f32_block(xf + (size_t)m * K + k0,
								       ww + (size_t)n * K + k0, kn);
						acc = acc + P * wws[(size_t)(n / 128) * KB + kb];
						continue;
					}
					double D = 0;
					for (int k = kb * 128; k < K && k < kb * 128 + 128; k++)
						D += gc_dec(xq[(size_t)m * K + k]) *
						     gc_dec(ww[(size_t)n * K + k]);
					float s = xs[(size_t)m * KB + kb] *
						  wws[(size_t)(n / 128) * KB + kb];
					acc = acc + (float)D * s;
				}
				accs[h] = acc;
			}
			float v = accs[0];
			if (flags & FP8_GEMM_SILU_MUL)
				v = hls_siluf(v) * accs[1];
			if (flags & FP8_GEMM_ACCUM)
				v = yold[(size_t)m * N + n] + rw[m] * v;
			if (flags & FP8_GEMM_RESIDUAL)
				v = v + res[(size_t)m * N + n];
			if (flags & FP8_GEMM_Y_BF16)
				v = bf16_to_f32(f32_to_bf16(v));
			yref[(size_t)m * N + n] = v;
		}
}

static int gc_same(float a, float b)
{
	if (isnan(a) && isnan(b))
		return 1;
	return e4m3_f32_bits(a) == e4m3_f32_bits(b);
}

/* Runs one case; returns 1 when bit-identical. */
static int gc_case(gemm_fn fn, const char *label, int M, int N, int K, uint32_t flags, int kind)
{
	int KB = (K + 127) / 128, NB = (N + 127) / 128, ok = 1;
	size_t mk = (size_t)M * K, nk = (size_t)N * K, mn = (size_t)M * N;
	uint8_t *xq = malloc(mk), *w = malloc(nk), *w2 = malloc(nk);
	float *xf = malloc(mk * 4), *xs = malloc((size_t)M * KB * 4),
	      *ws = malloc((size_t)NB * KB * 4);
	float *ws2 = malloc((size_t)NB * KB * 4), *y = malloc(mn * 4), *yold = malloc(mn * 4);
	float *res = malloc(mn * 4), *yref = malloc(mn * 4), *rw = malloc((size_t)M * 4);
	uint16_t *xb = malloc(mk * 2), *y16 = malloc(mn * 2);
	uint32_t xfmt = flags & FP8_GEMM_X_MASK;
	for (size_t i = 0; i < nk; i++) {
		w[i] = gc_code(kind);
		w2[i] = gc_code(kind);
	}
	for (int i = 0; i < NB * KB; i++) {
		ws[i] = kind == GC_MAXMAG ? 1e30f : 1e-3f * (0.5f + gc_unif());
		ws2[i] = 1e-3f * (0.5f + gc_unif());
	}
	for (size_t i = 0; i < mk; i++) {
		float v = gc_normal() * (kind == GC_MAXMAG    ? 3e38f
					 : kind == GC_SUBNORM ? 1e-6f
							      : 2.0f);
		if (kind == GC_ZEROGRP && ((i % (size_t)K) / 128) % 2 == 0)
			v = 0.0f;
		if (kind == GC_NAN && gc_next() % 17 == 0)
			v = NAN;
		xf[i] = v;
		xb[i] = f32_to_bf16(v);
	}
	/* x as the kernel sees it, and its exact quantization for the reference */
	for (int m = 0; m < M; m++)
		for (int kb = 0; kb < KB; kb++) {
			int k0 = kb * 128, n = K - k0 < 128 ? K - k0 : 128;
			float tmp[128] = {0};
			for (int i = 0; i < n; i++)
				tmp[i] = xfmt == FP8_GEMM_X_BF16
					     ? bf16_to_f32(xb[(size_t)m * K + k0 + i])
					     : xf[(size_t)m * K + k0 + i];
			gc_ref_quant(tmp, n, (flags & FP8_GEMM_UE8M0) != 0, xq + (size_t)m * K + k0,
				     &xs[(size_t)m * KB + kb]);
		}
	if (xfmt == FP8_GEMM_X_FP8 && kind == GC_ALLCODES)
		for (size_t i = 0; i < mk; i++)
			xq[i] = (uint8_t)gc_next(); /* every code incl. NaN and subnormals */
	for (size_t i = 0; i < mn; i++) {
		yold[i] = gc_normal();
		res[i] = gc_normal();
		y[i] = yold[i];
	}
	for (int m = 0; m < M; m++)
		rw[m] = gc_unif() * 2.5f;
	gc_ref(xq, xs, xf, w, ws, w2, ws2, yref, yold, res, rw, M, N, K, flags);
	const void *xin = xfmt == FP8_GEMM_X_FP8   ? (const void *)xq
			  : xfmt == FP8_GEMM_X_F32 ? (const void *)xf
						   : (const void *)xb;
	void *yout = (flags & FP8_GEMM_Y_BF16) ? (void *)y16 : (void *)y;
	int rc = fn(xin, xs, w, ws, w2, ws2, yout, res, rw, M, N, K, flags, 0, 0);
	long bad = 0, first = -1;
	for (size_t i = 0; i < mn && !rc; i++) {
		float got = (flags & FP8_GEMM_Y_BF16) ? bf16_to_f32(y16[i]) : y[i];
		if (!gc_same(got, yref[i])) {
			if (first < 0)
				first = (long)i;
			bad++;
		}
	}
	if (rc || bad) {
		ok = 0;
		printf(
		    "FAIL %s: M=%d N=%d K=%d flags=0x%x data=%s: rc=%d, %ld of %zu outputs differ",
		    label, M, N, K, flags, gc_kind_name[kind], rc, bad, mn);
		if (first >= 0) {
			float got = (flags & FP8_GEMM_Y_BF16) ? bf16_to_f32(y16[first]) : y[first];
			printf("; first at m=%ld n=%ld: got %.9g want %.9g (diff %.3g)", first / N,
			       first % N, got, yref[first], (double)got - yref[first]);
		}
		printf("\n");
	}
	free(xq);
	free(w);
	free(w2);
	free(xf);
	free(xs);
	free(ws);
	free(ws2);
	free(y);
	free(yold);
	free(res);
	free(yref);
	free(rw);
	free(xb);
	free(y16);
	return ok;
}

struct gc_shape {
	int M, N, K;
};

/* The suite: shapes x flags x data kinds. Prints one line per group and returns failures. */
/* sub > 1 runs every sub-th (shape, flag set) pair only (the extra tilings, to keep run time). */
static int gc_suite(gemm_fn fn, const char *label, int sub, int *passed)
{
	static const struct gc_shape shapes[] = {
	    {1, 1, 1},	    {1, 64, 128},   {1, 576, 896}, {2, 130, 257},
	    {3, 200, 129},  {8, 192, 256},  {5, 17, 1000}, {9, 300, 300},
	    {40, 129, 384}, {130, 70, 200}, {1, 1, 2049},  {257, 3, 130},
	};
	static const uint32_t flagsets[] = {
	    FP8_GEMM_X_FP8,
	    FP8_GEMM_X_F32,
	    FP8_GEMM_X_BF16,
	    FP8_GEMM_X_F32 | FP8_GEMM_UE8M0,
	    FP8_GEMM_X_FP8 | FP8_GEMM_Y_BF16,
	    FP8_GEMM_X_F32 | FP8_GEMM_SILU_MUL,
	    FP8_GEMM_X_FP8 | FP8_GEMM_ACCUM,
	    FP8_GEMM_X_F32 | FP8_GEMM_RESIDUAL,
	    FP8_GEMM_X_BF16 | FP8_GEMM_SILU_MUL | FP8_GEMM_ACCUM | FP8_GEMM_RESIDUAL,
	    FP8_GEMM_X_F32 | FP8_GEMM_ACT_F32,
	    FP8_GEMM_X_F32 | FP8_GEMM_ACT_F32 | FP8_GEMM_Y_BF16,
	    FP8_GEMM_X_F32 | FP8_GEMM_ACT_F32 | FP8_GEMM_SILU_MUL | FP8_GEMM_ACCUM |
		FP8_GEMM_RESIDUAL,
	    FP8_GEMM_X_BF16 | FP8_GEMM_Y_BF16 | FP8_GEMM_UE8M0,
	}; /* 13 sets: prime to the tilings' subsampling by 3, so each set meets some shapes there */
	int nsh = (int)(sizeof shapes / sizeof shapes[0]), nfl = (int)(sizeof flagsets / 4);
	int fails = 0, cases = 0;
	for (int s = 0; s < nsh; s++)
		for (int f = 0; f < nfl; f++) {
			if ((s * nfl + f) % sub)
				continue;
			/* every shape with every flag set on random data; adversarial kinds rotate */
			int kinds[2] = {GC_RANDOM, 1 + (s * nfl + f) % (GC_N - 1)};
			for (int k = 0; k < 2; k++) {
				cases++;
				if (gc_case(fn, label, shapes[s].M, shapes[s].N, shapes[s].K,
					    flagsets[f], kinds[k]))
					(*passed)++;
				else
					fails++;
			}
		}
	printf("%s: %d GEMM cases (%d shapes x %d flag sets%s x random+adversarial data) "
	       "bit-identical to the exact reference: %d, differing: %d\n",
	       label, cases, nsh, nfl, sub > 1 ? " (a subset)" : "", cases - fails, fails);
	return fails;
}

/* -EINVAL checks for bad arguments. */
static int gc_bad_args(gemm_fn fn, int *passed)
{
	uint8_t c[4] = {0};
	float f[4] = {0};
	int fails = 0;
	struct {
		int M, N, K;
		uint32_t flags;
		int null_xs;
	} bad[] = {{0, 1, 1, 0, 0},
		   {1, -1, 1, 0, 0},
		   {1, 1, 0, 0, 0},
		   {1, 1, 1, 0x100, 0},
		   {1, 1, 1, FP8_GEMM_X_MASK, 0},
		   {1, 1, 1, FP8_GEMM_ACCUM | FP8_GEMM_Y_BF16, 0},
		   {1, 1, 1, FP8_GEMM_X_FP8, 1},
		   {1, 1, 1, FP8_GEMM_ACT_F32, 0},
		   {1, 1, 1, FP8_GEMM_X_BF16 | FP8_GEMM_ACT_F32, 0},
		   {1, 1, 1, FP8_GEMM_X_F32 | FP8_GEMM_ACT_F32 | FP8_GEMM_UE8M0, 0}};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int rc = fn(c, bad[i].null_xs ? NULL : f, c, f, c, f, f, f, f, bad[i].M, bad[i].N,
			    bad[i].K, bad[i].flags, 0, 0);
		if (rc != -22) {
			printf("FAIL bad-args case %zu: rc=%d, want -EINVAL\n", i, rc);
			fails++;
		} else {
			(*passed)++;
		}
	}
	printf("bad arguments rejected with -EINVAL: %d of %zu\n",
	       (int)(sizeof bad / sizeof bad[0]) - fails, sizeof bad / sizeof bad[0]);
	/* strides below the row length */
	fails += fn(c, f, c, f, c, f, f, f, f, 2, 4, 8, FP8_GEMM_X_FP8, 7, 0) != -22;
	fails += fn(c, f, c, f, c, f, f, f, f, 2, 4, 8, FP8_GEMM_X_FP8, 0, 3) != -22;
	*passed += 2;
	return fails;
}

/* Strided rows (lda > K, ldy > N): each row of y equals the dense run's row bit for bit, and the
 * gaps between rows are not written (the scheduler's column slices: one head of q, one head's
 * slot of the attention query). Returns the failures. */
static int gc_strided(gemm_fn fn, int *passed)
{
	static const struct {
		int M, N, K;
		uint32_t flags;
	} cs[] = {{1, 40, 130, FP8_GEMM_X_F32},
		  {9, 70, 256, FP8_GEMM_X_F32 | FP8_GEMM_SILU_MUL},
		  {17, 64, 128, FP8_GEMM_X_F32 | FP8_GEMM_ACT_F32},
		  {5, 33, 200, FP8_GEMM_X_F32 | FP8_GEMM_ACCUM | FP8_GEMM_RESIDUAL},
		  {130, 20, 64, FP8_GEMM_X_F32 | FP8_GEMM_RESIDUAL}};
	int fails = 0;
	for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) {
		int M = cs[i].M, N = cs[i].N, K = cs[i].K, lda = K + 3, ldy = N + 5;
		int KB = (K + 127) / 128, NB = (N + 127) / 128;
		size_t nx = (size_t)M * lda, ny = (size_t)M * ldy;
		float *x = malloc(4 * nx), *xd = malloc(4 * (size_t)M * K);
		float *y = malloc(4 * ny), *yd = malloc(4 * (size_t)M * N), *rw = malloc(4 * M);
		uint8_t *w = malloc(2 * (size_t)N * K);
		float *ws = malloc(4 * 2 * (size_t)NB * KB);
		if (!x || !xd || !y || !yd || !rw || !w || !ws) {
			fails++;
			goto next;
		}
		for (size_t j = 0; j < nx; j++)
			x[j] = (float)((int)(gc_next() % 2001) - 1000) / 250.0f;
		for (size_t j = 0; j < 2 * (size_t)N * K; j++)
			w[j] = (uint8_t)(gc_next() % 0x7E) | (uint8_t)(gc_next() & 0x80);
		for (int j = 0; j < 2 * NB * KB; j++)
			ws[j] = 1.0f / (float)(1 + gc_next() % 64);
		for (int m = 0; m < M; m++)
			rw[m] = 0.25f * (float)(m + 1);
		for (size_t j = 0; j < ny; j++)
			y[j] = (float)(j % 7) - 3.0f;
		for (int m = 0; m < M; m++) {
			memcpy(xd + (size_t)m * K, x + (size_t)m * lda, 4 * (size_t)K);
			memcpy(yd + (size_t)m * N, y + (size_t)m * ldy, 4 * (size_t)N);
		}
		uint32_t fl = cs[i].flags;
		int sm = (fl & FP8_GEMM_SILU_MUL) != 0;
		int r1 =
		    fn(xd, NULL, w, ws, sm ? w + (size_t)N * K : NULL, sm ? ws + NB * KB : NULL, yd,
		       (fl & FP8_GEMM_RESIDUAL) ? yd : NULL, rw, M, N, K, fl, 0, 0);
		int r2 = fn(x, NULL, w, ws, sm ? w + (size_t)N * K : NULL, sm ? ws + NB * KB : NULL,
			    y, (fl & FP8_GEMM_RESIDUAL) ? y : NULL, rw, M, N, K, fl, lda, ldy);
		int bad = r1 || r2;
		for (int m = 0; m < M && !bad; m++) {
			bad |= memcmp(y + (size_t)m * ldy, yd + (size_t)m * N, 4 * (size_t)N) != 0;
			for (int j = N; j < ldy && m + 1 < M; j++)
				bad |= y[(size_t)m * ldy + j] !=
				       (float)(((size_t)m * ldy + j) % 7) - 3.0f;
		}
		if (bad) {
			printf("FAIL strided case %zu (M %d N %d K %d flags 0x%x)\n", i, M, N, K,
			       fl);
			fails++;
		} else {
			(*passed)++;
		}
	next:
		free(x);
		free(xd);
		free(y);
		free(yd);
		free(rw);
		free(w);
		free(ws);
	}
	printf("strided rows equal the dense rows bit for bit: %d of %zu\n",
	       (int)(sizeof cs / sizeof cs[0]) - fails, sizeof cs / sizeof cs[0]);
	return fails;
}

#endif
