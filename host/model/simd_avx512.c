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
#include "model/kernels.h"

#ifndef MOE_PF_BYTES
#define MOE_PF_BYTES 1024 /* software prefetch distance in the GEMV streams */
#endif

static inline __m512 dec16(const uint8_t *w, __mmask16 mk)
{
	__m128i b = _mm_maskz_loadu_epi8(mk, w);
	__m256i h = _mm256_cvtepu8_epi16(b);
	__m256i s = _mm256_slli_epi16(_mm256_and_si256(h, _mm256_set1_epi16(0x80)), 8);
	__m256i v = _mm256_slli_epi16(_mm256_and_si256(h, _mm256_set1_epi16(0x7F)), 7);
	return _mm512_cvtph_ps(_mm256_or_si256(s, v));
}

static inline __m512 bf16x16(const uint16_t *w, __mmask16 mk)
{
	__m256i h = _mm256_maskz_loadu_epi16(mk, w);
	return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

/* Two accumulators per row in the same order for every M, so a row's result does not depend on
 * how many rows share the call (batch-invariant: speculative verification batches reproduce the
 * decode path's logits bit for bit). M is a constant in each instance, so the accumulators stay
 * in registers. */
static inline __attribute__((always_inline)) void
dot_bf16_tmpl(const uint16_t *w, const float *x, int ldx, const int M, int n, float *acc)
{
	__m512 a0[KERN_MB], a1[KERN_MB];
	for (int m = 0; m < M; m++)
		a0[m] = a1[m] = _mm512_setzero_ps();
	int k = 0;
	for (; k + 32 <= n; k += 32) {
		/* software prefetch runs ahead across 4 KiB pages of the mmapped checkpoint, which
		 * the hardware stream prefetcher does not cross */
		_mm_prefetch((const char *)(w + k) + MOE_PF_BYTES, _MM_HINT_T0);
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
			a0[m] = _mm512_fmadd_ps(
			    wd, _mm512_maskz_loadu_ps(mk, x + (size_t)m * ldx + k), a0[m]);
	}
	for (int m = 0; m < M; m++)
		acc[m] = _mm512_reduce_add_ps(_mm512_add_ps(a0[m], a1[m]));
}

static void dot_bf16_avx512(const uint16_t *w, const float *x, int ldx, int M, int n, float *acc)
{
	switch (M) {
	case 1:
		dot_bf16_tmpl(w, x, ldx, 1, n, acc);
		break;
	case 2:
		dot_bf16_tmpl(w, x, ldx, 2, n, acc);
		break;
	case 3:
		dot_bf16_tmpl(w, x, ldx, 3, n, acc);
		break;
	default:
		dot_bf16_tmpl(w, x, ldx, 4, n, acc);
		break;
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

/* 32 codes -> two f32 vectors (times 2^-8), three integer ops: move the code to the high byte,
 * arithmetic shift right by one (sign to bits 15 and 14, magnitude to 13..7), clear bit 14. */
static inline void dec32s(const uint8_t *w, __m512 *lo, __m512 *hi)
{
	__m512i h =
	    _mm512_slli_epi16(_mm512_cvtepu8_epi16(_mm256_loadu_si256((const __m256i *)w)), 8);
	h = _mm512_and_si512(_mm512_srai_epi16(h, 1), _mm512_set1_epi16((short)0xBFFF));
	*lo = _mm512_cvtph_ps(_mm512_castsi512_si256(h));
	*hi = _mm512_cvtph_ps(_mm512_extracti64x4_epi64(h, 1));
}

/* One weight row against M input rows. Blocks go in pairs with separate accumulators to keep
 * more loads in flight; each input row is summed in the same order whatever M is, so a row's
 * result does not depend on the batch it came in (speculative verification relies on that). */
static inline __attribute__((always_inline)) void row_fp8_tmpl(const uint8_t *w, const float *x,
							       int ldx, const int M, int K,
							       const float *sw, float *acc)
{
	__m512 A[KERN_MB], B[KERN_MB];
	for (int m = 0; m < M; m++)
		A[m] = B[m] = _mm512_setzero_ps();
	int nfull = K / 128, kb = 0;
	for (; kb + 2 <= nfull; kb += 2) {
		__m512 P0[KERN_MB], Q0[KERN_MB], P1[KERN_MB], Q1[KERN_MB];
		for (int m = 0; m < M; m++)
			P0[m] = Q0[m] = P1[m] = Q1[m] = _mm512_setzero_ps();
		const uint8_t *w0 = w + kb * 128;
		_mm_prefetch((const char *)w0 + MOE_PF_BYTES, _MM_HINT_T0);
		_mm_prefetch((const char *)w0 + MOE_PF_BYTES + 64, _MM_HINT_T0);
		_mm_prefetch((const char *)w0 + MOE_PF_BYTES + 128, _MM_HINT_T0);
		_mm_prefetch((const char *)w0 + MOE_PF_BYTES + 192, _MM_HINT_T0);
		for (int k = 0; k < 128; k += 32) {
			__m512 l0, h0, l1, h1;
			dec32s(w0 + k, &l0, &h0);
			dec32s(w0 + 128 + k, &l1, &h1);
			for (int m = 0; m < M; m++) {
				const float *xm = x + (size_t)m * ldx + kb * 128 + k;
				P0[m] = _mm512_fmadd_ps(l0, _mm512_loadu_ps(xm), P0[m]);
				Q0[m] = _mm512_fmadd_ps(h0, _mm512_loadu_ps(xm + 16), Q0[m]);
				P1[m] = _mm512_fmadd_ps(l1, _mm512_loadu_ps(xm + 128), P1[m]);
				Q1[m] = _mm512_fmadd_ps(h1, _mm512_loadu_ps(xm + 144), Q1[m]);
			}
		}
		__m512 s0 = _mm512_set1_ps(sw[kb] * 256.0f),
		       s1 = _mm512_set1_ps(sw[kb + 1] * 256.0f);
		for (int m = 0; m < M; m++) {
			A[m] = _mm512_fmadd_ps(_mm512_add_ps(P0[m], Q0[m]), s0, A[m]);
			B[m] = _mm512_fmadd_ps(_mm512_add_ps(P1[m], Q1[m]), s1, B[m]);
		}
	}
	for (; kb * 128 < K; kb++) { /* a last odd block, or a partial one */
		int k0 = kb * 128, len = K - k0 < 128 ? K - k0 : 128;
		__m512 P[KERN_MB];
		for (int m = 0; m < M; m++)
			P[m] = _mm512_setzero_ps();
		for (int k = 0; k < len; k += 16) {
			int rem = len - k;
			__mmask16 mk = rem >= 16 ? 0xFFFF : (__mmask16)((1u << rem) - 1);
			__m512 wd = dec16(w + k0 + k, mk);
			for (int m = 0; m < M; m++)
				P[m] = _mm512_fmadd_ps(
				    wd, _mm512_maskz_loadu_ps(mk, x + (size_t)m * ldx + k0 + k),
				    P[m]);
		}
		__m512 sc = _mm512_set1_ps(sw[kb] * 256.0f);
		for (int m = 0; m < M; m++)
			A[m] = _mm512_fmadd_ps(P[m], sc, A[m]);
	}
	for (int m = 0; m < M; m++)
		acc[m] = _mm512_reduce_add_ps(_mm512_add_ps(A[m], B[m]));
}

static void row_fp8_avx512(const uint8_t *w, const float *x, int ldx, int M, int K, const float *sw,
			   float *acc)
{
	switch (M) {
	case 1:
		row_fp8_tmpl(w, x, ldx, 1, K, sw, acc);
		break;
	case 2:
		row_fp8_tmpl(w, x, ldx, 2, K, sw, acc);
		break;
	case 3:
		row_fp8_tmpl(w, x, ldx, 3, K, sw, acc);
		break;
	default:
		row_fp8_tmpl(w, x, ldx, 4, K, sw, acc);
		break;
	}
}

static void dec_fp8_avx512(const uint8_t *w, int K, const float *sw, float *out)
{
	for (int kb = 0; kb * 128 < K; kb++) {
		int k0 = kb * 128, len = K - k0 < 128 ? K - k0 : 128;
		__m512 sc = _mm512_set1_ps(sw[kb] * 256.0f);
		for (int k = 0; k < len; k += 16) {
			int rem = len - k;
			__mmask16 mk = rem >= 16 ? 0xFFFF : (__mmask16)((1u << rem) - 1);
			_mm512_mask_storeu_ps(out + k0 + k, mk,
					      _mm512_mul_ps(dec16(w + k0 + k, mk), sc));
		}
	}
}

/* One input row against nw <= 4 weight rows. */
static void tile_f32_row(const float *wt, int ldw, int nw, const float *xm, int K, float *ym)
{
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
	ym[0] = _mm512_reduce_add_ps(a0);
	if (nw > 1)
		ym[1] = _mm512_reduce_add_ps(a1);
	if (nw > 2)
		ym[2] = _mm512_reduce_add_ps(a2);
	if (nw > 3)
		ym[3] = _mm512_reduce_add_ps(a3);
}

/* Prefill tile: every input row against nw <= KERN_NW dequantized weight rows (L1-resident),
 * four rows at a time (measured faster here than 8-row or 4x4 register blocks). */
static void tile_f32_avx512(const float *wt, int ldw, int nw, const float *x, int ldx, int M, int K,
			    float *y, int ldy)
{
	for (int m = 0; m < M; m++)
		for (int j0 = 0; j0 < nw; j0 += 4)
			tile_f32_row(wt + (size_t)j0 * ldw, ldw, nw - j0 < 4 ? nw - j0 : 4,
				     x + (size_t)m * ldx, K, y + (size_t)m * ldy + j0);
}

static void axpy_f32_avx512(float *y, float a, const float *x, int n)
{
	__m512 va = _mm512_set1_ps(a);
	for (int k = 0; k < n; k += 16) {
		int rem = n - k;
		__mmask16 mk = rem >= 16 ? 0xFFFF : (__mmask16)((1u << rem) - 1);
		_mm512_mask_storeu_ps(y + k, mk,
				      _mm512_fmadd_ps(va, _mm512_maskz_loadu_ps(mk, x + k),
						      _mm512_maskz_loadu_ps(mk, y + k)));
	}
}

/* RNE to E4M3 on the f32 bits: subnormals (|v| < 2^-6) by adding and subtracting 2^14 (whose
 * ulp is the E4M3 subnormal quantum 2^-9), normals by rounding away 20 mantissa bits; then
 * saturation at 448. Bit-identical to e4m3_decode(e4m3_encode(v)) for finite v. */
static void roundtrip_fp8_avx512(const float *x, int n, float s, float *xr)
{
	const __m512 vs = _mm512_set1_ps(s), big = _mm512_set1_ps(16384.0f);
	const __m512 maxv = _mm512_set1_ps(448.0f), sub_lim = _mm512_set1_ps(0.015625f);
	const __m512i absm = _mm512_set1_epi32(0x7FFFFFFF), rb = _mm512_set1_epi32(0x7FFFF);
	const __m512i one = _mm512_set1_epi32(1), clr = _mm512_set1_epi32(~0xFFFFF);
	for (int k = 0; k < n; k += 16) {
		int rem = n - k;
		__mmask16 mk = rem >= 16 ? 0xFFFF : (__mmask16)((1u << rem) - 1);
		__m512 v = _mm512_div_ps(_mm512_maskz_loadu_ps(mk, x + k), vs);
		__m512i vb = _mm512_castps_si512(v);
		__m512i ab = _mm512_and_si512(vb, absm);
		__m512i sg = _mm512_andnot_si512(absm, vb);
		__m512 a = _mm512_castsi512_ps(ab);
		__m512 rs = _mm512_sub_ps(_mm512_add_ps(a, big), big);
		__m512i lsb = _mm512_and_si512(_mm512_srli_epi32(ab, 20), one);
		__m512i nb = _mm512_and_si512(_mm512_add_epi32(ab, _mm512_add_epi32(rb, lsb)), clr);
		__mmask16 is_sub = _mm512_cmp_ps_mask(a, sub_lim, _CMP_LT_OQ);
		__m512 r = _mm512_mask_blend_ps(is_sub, _mm512_castsi512_ps(nb), rs);
		r = _mm512_min_ps(r, maxv);
		r = _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(r), sg));
		_mm512_mask_storeu_ps(xr + k, mk, _mm512_mul_ps(r, vs));
	}
}

const struct kern_isa kern_isa_avx512 = {
    .name = "avx512",
    .dot_bf16 = dot_bf16_avx512,
    .row_fp8 = row_fp8_avx512,
    .dec_fp8 = dec_fp8_avx512,
    .tile_f32 = tile_f32_avx512,
    .axpy_f32 = axpy_f32_avx512,
    .roundtrip_fp8 = roundtrip_fp8_avx512,
};
