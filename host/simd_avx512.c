/*
 * simd_avx512.c - AVX-512 (F, BW, VL) row-dot primitives for kernels.h. Compiled with AVX-512
 * flags (host.mk) and called only when kern_isa_get() found the CPU supports them.
 * E4M3 -> f32 decoding goes through binary16: the code's sign moves to bit 15 and its 7
 * exponent+mantissa bits to bits 13..7, which is the same number times 2^-8 (subnormals included,
 * decoded by the hardware's exact vcvtph2ps); the 2^8 is applied once per block. NaN codes decode
 * to a finite value here (checkpoints hold none; kern_act_quant never produces them from finite x).
 */
#include <immintrin.h>
#include <stdint.h>
#include "kernels.h"

static inline __m512 dec16(const uint8_t *w, __mmask16 mk)
{
	__m128i b = _mm_maskz_loadu_epi8(mk, w);
	__m256i h = _mm256_cvtepu8_epi16(b);
	__m256i s = _mm256_slli_epi16(_mm256_and_si256(h, _mm256_set1_epi16(0x80)), 8);
	__m256i v = _mm256_slli_epi16(_mm256_and_si256(h, _mm256_set1_epi16(0x7F)), 7);
	return _mm512_cvtph_ps(_mm256_or_si256(s, v));
}

static void dot_fp8_avx512(const uint8_t *w, const float *x, int ldx, int M, int n, float *acc)
{
	__m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
	for (int k = 0; k < n; k += 16) {
		int rem = n - k;
		__mmask16 mk = rem >= 16 ? 0xFFFF : (__mmask16)((1u << rem) - 1);
		__m512 wd = dec16(w + k, mk);
		a0 = _mm512_fmadd_ps(wd, _mm512_maskz_loadu_ps(mk, x + k), a0);
		if (M > 1)
			a1 = _mm512_fmadd_ps(wd, _mm512_maskz_loadu_ps(mk, x + ldx + k), a1);
		if (M > 2)
			a2 = _mm512_fmadd_ps(wd, _mm512_maskz_loadu_ps(mk, x + 2 * ldx + k), a2);
		if (M > 3)
			a3 = _mm512_fmadd_ps(wd, _mm512_maskz_loadu_ps(mk, x + 3 * ldx + k), a3);
	}
	acc[0] = _mm512_reduce_add_ps(a0) * 256.0f;
	if (M > 1)
		acc[1] = _mm512_reduce_add_ps(a1) * 256.0f;
	if (M > 2)
		acc[2] = _mm512_reduce_add_ps(a2) * 256.0f;
	if (M > 3)
		acc[3] = _mm512_reduce_add_ps(a3) * 256.0f;
}

static inline __m512 bf16x16(const uint16_t *w, __mmask16 mk)
{
	__m256i h = _mm256_maskz_loadu_epi16(mk, w);
	return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

static void dot_bf16_avx512(const uint16_t *w, const float *x, int ldx, int M, int n, float *acc)
{
	/* Two accumulators per row in the same order for every M, so a row's result does not depend
	 * on how many rows share the call (batch-invariant: speculative verification batches of 2
	 * reproduce the decode path's logits bit for bit). */
	__m512 a0[KERN_MB], a1[KERN_MB];
	for (int m = 0; m < M; m++)
		a0[m] = a1[m] = _mm512_setzero_ps();
	int k = 0;
	for (; k + 32 <= n; k += 32) {
		__m512 w0 = bf16x16(w + k, 0xFFFF), w1 = bf16x16(w + k + 16, 0xFFFF);
		for (int m = 0; m < M; m++) {
			const float *xm = x + (size_t)m * ldx + k;
			a0[m] = _mm512_fmadd_ps(w0, _mm512_loadu_ps(xm), a0[m]);
			a1[m] = _mm512_fmadd_ps(w1, _mm512_loadu_ps(xm + 16), a1[m]);
		}
	}
	for (; k < n; k += 16) {
		int rem = n - k;
		__mmask16 mk = rem >= 16 ? 0xFFFF : (__mmask16)((1u << rem) - 1);
		__m512 wd = bf16x16(w + k, mk);
		for (int m = 0; m < M; m++)
			a0[m] = _mm512_fmadd_ps(wd, _mm512_maskz_loadu_ps(mk, x + (size_t)m * ldx + k),
						a0[m]);
	}
	for (int m = 0; m < M; m++)
		acc[m] = _mm512_reduce_add_ps(_mm512_add_ps(a0[m], a1[m]));
}

static void axpy_fp8_avx512(float *y, float a, const uint8_t *w, int n)
{
	__m512 va = _mm512_set1_ps(a * 256.0f);
	for (int k = 0; k < n; k += 16) {
		int rem = n - k;
		__mmask16 mk = rem >= 16 ? 0xFFFF : (__mmask16)((1u << rem) - 1);
		__m512 yv = _mm512_maskz_loadu_ps(mk, y + k);
		_mm512_mask_storeu_ps(y + k, mk, _mm512_fmadd_ps(va, dec16(w + k, mk), yv));
	}
}

/* 32 codes -> two f32 vectors (times 2^-8). */
static inline void dec32(const uint8_t *w, __m512 *lo, __m512 *hi)
{
	__m512i h = _mm512_cvtepu8_epi16(_mm256_loadu_si256((const __m256i *)w));
	__m512i s = _mm512_slli_epi16(_mm512_and_si512(h, _mm512_set1_epi16(0x80)), 8);
	__m512i v = _mm512_slli_epi16(_mm512_and_si512(h, _mm512_set1_epi16(0x7F)), 7);
	h = _mm512_or_si512(s, v);
	*lo = _mm512_cvtph_ps(_mm512_castsi512_si256(h));
	*hi = _mm512_cvtph_ps(_mm512_extracti64x4_epi64(h, 1));
}

static void row_fp8_avx512(const uint8_t *w, const float *x, int ldx, int M, int K,
			   const float *sw, float *acc)
{
	__m512 A[KERN_MB], P[KERN_MB], Q[KERN_MB];
	for (int m = 0; m < M; m++)
		A[m] = _mm512_setzero_ps();
	for (int kb = 0; kb * 128 < K; kb++) {
		int k0 = kb * 128, len = K - k0 < 128 ? K - k0 : 128, k = 0;
		for (int m = 0; m < M; m++)
			P[m] = Q[m] = _mm512_setzero_ps();
		for (; k + 32 <= len; k += 32) {
			__m512 lo, hi;
			dec32(w + k0 + k, &lo, &hi);
			for (int m = 0; m < M; m++) {
				const float *xm = x + (size_t)m * ldx + k0 + k;
				P[m] = _mm512_fmadd_ps(lo, _mm512_loadu_ps(xm), P[m]);
				Q[m] = _mm512_fmadd_ps(hi, _mm512_loadu_ps(xm + 16), Q[m]);
			}
		}
		for (; k < len; k += 16) {
			int rem = len - k;
			__mmask16 mk = rem >= 16 ? 0xFFFF : (__mmask16)((1u << rem) - 1);
			__m512 wd = dec16(w + k0 + k, mk);
			for (int m = 0; m < M; m++)
				P[m] = _mm512_fmadd_ps(
					wd, _mm512_maskz_loadu_ps(mk, x + (size_t)m * ldx + k0 + k), P[m]);
		}
		__m512 sc = _mm512_set1_ps(sw[kb] * 256.0f);
		for (int m = 0; m < M; m++)
			A[m] = _mm512_fmadd_ps(_mm512_add_ps(P[m], Q[m]), sc, A[m]);
	}
	for (int m = 0; m < M; m++)
		acc[m] = _mm512_reduce_add_ps(A[m]);
}

static void dec_fp8_avx512(const uint8_t *w, int K, const float *sw, float *out)
{
	for (int kb = 0; kb * 128 < K; kb++) {
		int k0 = kb * 128, len = K - k0 < 128 ? K - k0 : 128;
		__m512 sc = _mm512_set1_ps(sw[kb] * 256.0f);
		for (int k = 0; k < len; k += 16) {
			int rem = len - k;
			__mmask16 mk = rem >= 16 ? 0xFFFF : (__mmask16)((1u << rem) - 1);
			_mm512_mask_storeu_ps(out + k0 + k, mk, _mm512_mul_ps(dec16(w + k0 + k, mk), sc));
		}
	}
}

static void tile_f32_avx512(const float *wt, int ldw, int nw, const float *x, int ldx, int M,
			    int K, float *y, int ldy)
{
	for (int m = 0; m < M; m++) {
		const float *xm = x + (size_t)m * ldx;
		__m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
		for (int k = 0; k < K; k += 16) {
			int rem = K - k;
			__mmask16 mk = rem >= 16 ? 0xFFFF : (__mmask16)((1u << rem) - 1);
			__m512 xv = _mm512_maskz_loadu_ps(mk, xm + k);
			a0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mk, wt + k), xv, a0);
			if (nw > 1)
				a1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mk, wt + ldw + k), xv, a1);
			if (nw > 2)
				a2 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mk, wt + 2 * (size_t)ldw + k),
						     xv, a2);
			if (nw > 3)
				a3 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mk, wt + 3 * (size_t)ldw + k),
						     xv, a3);
		}
		float *ym = y + (size_t)m * ldy;
		ym[0] = _mm512_reduce_add_ps(a0);
		if (nw > 1)
			ym[1] = _mm512_reduce_add_ps(a1);
		if (nw > 2)
			ym[2] = _mm512_reduce_add_ps(a2);
		if (nw > 3)
			ym[3] = _mm512_reduce_add_ps(a3);
	}
}

const struct kern_isa kern_isa_avx512 = { "avx512",	   dot_fp8_avx512, dot_bf16_avx512,
					  axpy_fp8_avx512, row_fp8_avx512, dec_fp8_avx512,
					  tile_f32_avx512 };
