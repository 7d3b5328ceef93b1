/*
 * hls_math.h - the kernels' own deterministic elementary functions (exp, rsqrt, sigmoid, SiLU),
 * shared by hls/vec_ops, hls/mla_attn and the fp8_gemm SiLU epilogue. They use only f32 adds,
 * multiplies, divides, compares and exponent-field manipulation, with fixed polynomial
 * coefficients, so Vitis HLS, the emulated card (which calls the same C) and the tests get the
 * same bits. No libm, no tables, no loops: each is a short pipeline in hardware.
 *
 * Accuracy against glibc's libm (measured by hls/tests/test_vec_ops over a sweep, see
 * hls/README.md): hls_expf <= 2 ulp on [-87, 88]; hls_rsqrtf <= 2 ulp on normal and subnormal
 * inputs; hls_sigmoidf / hls_siluf <= 4 ulp (relative 5e-7) where the result is normal.
 * Special values: expf(NaN)=NaN, expf(+inf)=+inf, expf(-inf)=0, results below 2^-126 flush to 0;
 * rsqrtf(x<0)=NaN, rsqrtf(+-0)=+inf, rsqrtf(+inf)=0.
 */
#ifndef MOECARD_HLS_MATH_H
#define MOECARD_HLS_MATH_H

#include <stdint.h>
#include "e4m3.h"

#define HLS_F32_INF 0x7F800000u

/* 2^n as a float for -149 <= n <= 127 (exponent field assembly; below -126 the subnormal's one
 * bit): a product with it is the exact scaling by 2^n, rounded once where it leaves the normal
 * range. */
static inline float hls_pow2i(int n)
{
	return n >= -126 ? e4m3_bits_f32((uint32_t)(n + 127) << 23)
			 : e4m3_bits_f32(1u << (n + 149));
}

/* e^x. Cody-Waite reduction x = n ln2 + r, |r| <= ln2/2, then a degree-7 Taylor polynomial
 * (truncation error < 6e-9 relative) and 2^n by exponent assembly. */
static inline float hls_expf(float x)
{
	if (x != x)
		return x;
	if (x > 88.7228f)
		return e4m3_bits_f32(HLS_F32_INF);
	if (x < -87.33f) /* result would be below 2^-126: flushed to zero */
		return 0.0f;
	float kf = x * 1.44269504088896341f;
	int n = (int)(kf >= 0.0f ? kf + 0.5f : kf - 0.5f);
	/* ln2 split: hi has 16 significant bits so n*hi is exact for |n| < 256 */
	float r = (x - (float)n * 0.693145751953125f) - (float)n * 1.42860682030941723e-6f;
	float p = 1.0f / 5040.0f;
	p = p * r + 1.0f / 720.0f;
	p = p * r + 1.0f / 120.0f;
	p = p * r + 1.0f / 24.0f;
	p = p * r + 1.0f / 6.0f;
	p = p * r + 0.5f;
	p = p * r + 1.0f;
	p = p * r + 1.0f;
	if (n > 127) { /* x in (88.38, 88.72]: p * 2^128 */
		p *= 2.0f;
		n -= 1;
	}
	if (n < -126) { /* -127: p * 2^-127, only when the result is still >= 2^-126 */
		float v = p * hls_pow2i(-126) * 0.5f;
		return v < hls_pow2i(-126) ? 0.0f : v;
	}
	return p * hls_pow2i(n);
}

/* 1/sqrt(x). Exponent-halving initial guess (the classic 0x5F3759DF bit trick) and three
 * Newton steps y = y (1.5 - 0.5 x y^2); subnormal inputs are first scaled by 2^24. */
static inline float hls_rsqrtf(float x)
{
	float post = 1.0f;
	if (x != x || x < 0.0f)
		return e4m3_bits_f32(0x7FC00000u);
	if (x == 0.0f)
		return e4m3_bits_f32(HLS_F32_INF);
	if (e4m3_f32_bits(x) >= HLS_F32_INF)
		return 0.0f;
	if (x < hls_pow2i(-126)) {
		x *= 16777216.0f; /* 2^24 */
		post = 4096.0f;	  /* 2^12 */
	}
	float h = 0.5f * x;
	float y = e4m3_bits_f32(0x5F3759DFu - (e4m3_f32_bits(x) >> 1));
	y = y * (1.5f - h * y * y);
	y = y * (1.5f - h * y * y);
	y = y * (1.5f - h * y * y);
	/* one more Newton step in residual form, y += y (1 - x y^2) / 2, for the last ulp */
	float y2 = y * y;
	float e = 1.0f - x * y2;
	y = y + y * 0.5f * e;
	return y * post;
}

/* 1 / (1 + e^-x). */
static inline float hls_sigmoidf(float x)
{
	return 1.0f / (1.0f + hls_expf(-x));
}

/* SiLU x * sigmoid(x), computed as x / (1 + e^-x); -0 when e^-x overflows. */
static inline float hls_siluf(float x)
{
	float e = hls_expf(-x);
	if (e4m3_f32_bits(e) == HLS_F32_INF)
		return -0.0f;
	return x / (1.0f + e);
}

#endif
