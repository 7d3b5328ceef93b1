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
	if (M == 1) {
		__m512 a0 = _mm512_setzero_ps(), a1 = a0;
		int k = 0;
		for (; k + 32 <= n; k += 32) {
			a0 = _mm512_fmadd_ps(bf16x16(w + k, 0xFFFF), _mm512_loadu_ps(x + k), a0);
			a1 = _mm512_fmadd_ps(bf16x16(w + k + 16, 0xFFFF), _mm512_loadu_ps(x + k + 16),
					     a1);
		}
		for (; k < n; k += 16) {
			int rem = n - k;
			__mmask16 mk = rem >= 16 ? 0xFFFF : (__mmask16)((1u << rem) - 1);
			a0 = _mm512_fmadd_ps(bf16x16(w + k, mk), _mm512_maskz_loadu_ps(mk, x + k), a0);
		}
		acc[0] = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
		return;
	}
	__m512 a[KERN_MB];
	for (int m = 0; m < M; m++)
		a[m] = _mm512_setzero_ps();
	for (int k = 0; k < n; k += 16) {
		int rem = n - k;
		__mmask16 mk = rem >= 16 ? 0xFFFF : (__mmask16)((1u << rem) - 1);
		__m512 wd = bf16x16(w + k, mk);
		for (int m = 0; m < M; m++)
			a[m] = _mm512_fmadd_ps(wd, _mm512_maskz_loadu_ps(mk, x + (size_t)m * ldx + k),
					       a[m]);
	}
	for (int m = 0; m < M; m++)
		acc[m] = _mm512_reduce_add_ps(a[m]);
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

const struct kern_isa kern_isa_avx512 = { "avx512", dot_fp8_avx512, dot_bf16_avx512,
					  axpy_fp8_avx512 };
