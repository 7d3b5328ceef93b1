/*
 * simd_avx512.h - inline pieces shared by the AVX-512 kernel files (simd_avx512.c,
 * simd_avx512bf16.c); included only by files compiled with AVX-512 flags.
 */
#ifndef MOECARD_SIMD_AVX512_H
#define MOECARD_SIMD_AVX512_H
#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>

/* The E4M3 value nearest v (RNE, saturating at 448; finite v) as f32, sign included: subnormals
 * (|v| < 2^-6) by adding and subtracting 2^14 (whose ulp is the E4M3 subnormal quantum 2^-9),
 * normals by rounding away 20 mantissa bits on the f32 bits. Bit-identical to
 * e4m3_decode(e4m3_encode(v)). */
static inline __m512 e4m3_rne512(__m512 v)
{
	const __m512 big = _mm512_set1_ps(16384.0f), maxv = _mm512_set1_ps(448.0f);
	const __m512 sub_lim = _mm512_set1_ps(0.015625f);
	const __m512i absm = _mm512_set1_epi32(0x7FFFFFFF), rb = _mm512_set1_epi32(0x7FFFF);
	const __m512i one = _mm512_set1_epi32(1), clr = _mm512_set1_epi32(~0xFFFFF);
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
	return _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(r), sg));
}

/* Sixteen E4M3 codes (those past mk as zeros) as f32, each its value times 2^-8 exactly: the
 * code's sign to bit 15 and its 7 exponent+mantissa bits to bits 13..7 of a binary16, decoded by
 * vcvtph2ps (subnormals included; NaN codes as a finite value). */
static inline __m512 dec16(const uint8_t *w, __mmask16 mk)
{
	__m128i b = _mm_maskz_loadu_epi8(mk, w);
	__m256i h = _mm256_cvtepu8_epi16(b);
	__m256i s = _mm256_slli_epi16(_mm256_and_si256(h, _mm256_set1_epi16(0x80)), 8);
	__m256i v = _mm256_slli_epi16(_mm256_and_si256(h, _mm256_set1_epi16(0x7F)), 7);
	return _mm512_cvtph_ps(_mm256_or_si256(s, v));
}

/* The cases 1..7 of a switch on a row count, each CASE(r) with r a constant, so that an
 * always-inline kernel is specialized for every count (its accumulators stay in registers). */
#define KERN_M_CASES_7(CASE) CASE(7) CASE(6) CASE(5) CASE(4) CASE(3) CASE(2) CASE(1)

/* The mask of the first n < 16 lanes, or all 16. */
static inline __mmask16 lanes16(int n)
{
	return n >= 16 ? 0xFFFF : (__mmask16)((1u << n) - 1);
}

/* A tile's row of nw <= 16 outputs: y = r, or y += r with acc. */
static inline void tile_store16(float *y, int nw, __m512 r, int acc)
{
	__mmask16 mk = lanes16(nw);
	if (acc)
		r = _mm512_add_ps(_mm512_maskz_loadu_ps(mk, y), r);
	_mm512_mask_storeu_ps(y, mk, r);
}
#endif
