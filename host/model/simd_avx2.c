/*
 * simd_avx2.c - AVX2 + FMA + F16C row-dot primitives for kernels.h (the x86-64 baseline SIMD
 * path). E4M3 codes are decoded by placing their bits as f32 bits (rowp_fp8_t), not through
 * binary16 as simd_avx512.c does; partial tails go value by value.
 */
#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#include "model/kernels.h"

#ifndef ROW_PF_BYTES
#define ROW_PF_BYTES 1024 /* software prefetch distance of the FP8 row GEMV */
#endif

static inline float hsum8(__m256 v)
{
	__m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
	lo = _mm_add_ps(lo, hi);
	lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
	lo = _mm_add_ss(lo, _mm_movehdup_ps(lo));
	return _mm_cvtss_f32(lo);
}

static inline __m256 bf16x8(const uint16_t *w)
{
	__m128i h = _mm_loadu_si128((const __m128i *)w);
	return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

/* Eight weights as f32: BF16 (wbf16) or f32, element k of w. */
static inline __m256 w8(const void *w, const int wbf16, int k)
{
	return wbf16 ? bf16x8((const uint16_t *)w + k) : _mm256_loadu_ps((const float *)w + k);
}

static inline float w1(const void *w, const int wbf16, int k)
{
	if (!wbf16)
		return ((const float *)w)[k];
	uint32_t u = (uint32_t)((const uint16_t *)w)[k] << 16;
	float f;
	memcpy(&f, &u, 4);
	return f;
}

/* One BF16 or f32 weight row against M inputs: two accumulators per input (16 weights a step),
 * each weight vector loaded once for all M; the same for every M, instantiated per M (and per
 * format) so the accumulators stay in registers. */
static inline __attribute__((always_inline)) void
dot_rows_m(const void *w, const int wbf16, const float *x, int ldx, const int M, int n, float *acc)
{
	__m256 a[KERN_MB], b[KERN_MB];
#pragma GCC unroll 6
	for (int m = 0; m < M; m++)
		a[m] = b[m] = _mm256_setzero_ps();
	int k = 0;
	for (; k + 16 <= n; k += 16) {
		__m256 w0 = w8(w, wbf16, k), w1v = w8(w, wbf16, k + 8);
#pragma GCC unroll 6
		for (int m = 0; m < M; m++) {
			const float *xm = x + (size_t)m * ldx + k;
			a[m] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(xm), a[m]);
			b[m] = _mm256_fmadd_ps(w1v, _mm256_loadu_ps(xm + 8), b[m]);
		}
	}
	for (; k + 8 <= n; k += 8) {
		__m256 wd = w8(w, wbf16, k);
#pragma GCC unroll 6
		for (int m = 0; m < M; m++)
			a[m] = _mm256_fmadd_ps(wd, _mm256_loadu_ps(x + (size_t)m * ldx + k), a[m]);
	}
#pragma GCC unroll 6
	for (int m = 0; m < M; m++) {
		float s = hsum8(_mm256_add_ps(a[m], b[m]));
		for (int i = k; i < n; i++)
			s += w1(w, wbf16, i) * x[(size_t)m * ldx + i];
		acc[m] = s;
	}
}

static inline __attribute__((always_inline)) void
dot_bf16_m(const uint16_t *w, const float *x, int ldx, const int M, int n, float *acc)
{
	dot_rows_m(w, 1, x, ldx, M, n, acc);
}

static void dot_bf16_avx2(const uint16_t *w, const float *x, int ldx, int M, int n, float *acc)
{
#define CALL_M(m) dot_bf16_m(w, x, ldx, m, n, acc)
	KERN_PER_M(M, CALL_M);
#undef CALL_M
}

/* Codes w[0..7] placed as kern_placed1 places one: a sign-extending widen puts the sign in bit 31 after the shift. */
static inline __m256 place8(const uint8_t *w)
{
	__m256i c = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)w));
	return _mm256_castsi256_ps(
	    _mm256_and_si256(_mm256_slli_epi32(c, 20), _mm256_set1_epi32((int)0x87F00000)));
}

/* Codes k..k+7 of an FP8 row dequantized (dec_fp8_avx2's values: the rounding of e4m3 * s). */
static inline __m256 dq8(const uint8_t *w, float s)
{
	if (s < 256.0f && s > -256.0f)
		return _mm256_mul_ps(place8(w), _mm256_set1_ps(s * 0x1p120f));
	float v[8];
	for (int i = 0; i < 8; i++)
		v[i] = kern_placed1(w[i]) * 0x1p120f * s;
	return _mm256_loadu_ps(v);
}

/* dq8's vector path with its factor vs = s * 2^120 broadcast once (for a whole 128-block: the
 * same bits), and whether a block's scale takes that path. */
static inline int dq8_vec(float s)
{
	return s < 256.0f && s > -256.0f;
}

static inline __m256 dq8v(const uint8_t *w, __m256 vs)
{
	return _mm256_mul_ps(place8(w), vs);
}

/*
 * The decode GEMV, on an input prepared by prep_fp8, without binary16 conversion. An E4M3 code's
 * bits placed as f32 bits, sign to bit 31 and the seven others to bits 26..20, are the f32 of its
 * value * 2^-120 exactly: exponent field e with f32's bias 127 against E4M3's 7, and for e = 0 the
 * f32 subnormal m/8 * 2^-126 = (m/8 * 2^-6) * 2^-120. prep_fp8 scales the input by 2^(112-d), so
 * each product is x * e4m3 / 2^(8+d) exactly; d > 0 only for a row with |x| >= 2^15 (the scaled
 * input stays finite), and the row's sum is multiplied by 2^d by the caller.
 *
 * The placing takes shifts and masks alone. Sixteen-bit words of the loaded codes are
 * (odd code << 8 | even code); an arithmetic shift right by four of a word (after a shift left by
 * eight for the even code) leaves sign, four sign copies, exponent, mantissa, four bits below; the
 * mask 0x87F0 keeps sign, exponent and mantissa: the high half of the f32. The two halves of each
 * 32-bit lane then hold the codes 4i + 0..3, so prep_fp8 stores each whole 32-value chunk of x as
 * xp[32t + 8j + i] = x[32t + 4i + j]. Per 128-block two accumulators per row; the block's vector
 * sum is scaled by sw[kb] (times 256, exact) into one running vector per row, summed across lanes
 * once per row. The same operations for every M, so a row's result does not depend on the rows
 * beside it (nor on their magnitudes: d is the row's own). NR <= KERN_NR consecutive weight rows w + r*K
 * (one block row of scales sw) against M inputs, acc[r*M + m]: a call takes several weight rows
 * (NR > 1, M = 1: rows_fp8) or several inputs (NR = 1: row_fp8), each sum the same operations.
 */
static inline __attribute__((always_inline)) void rowp_fp8_t(const uint8_t *w, const int NR,
							     const float *x, int ldx, const int M,
							     int K, const float *sw, float *acc)
{
	const __m256i mk = _mm256_set1_epi32((int)0x87F00000);
	__m256 t[KERN_NR][KERN_MB];
	float tail[KERN_NR][KERN_MB];
#pragma GCC unroll 4
	for (int r = 0; r < NR; r++)
#pragma GCC unroll 4
		for (int m = 0; m < M; m++) {
			t[r][m] = _mm256_setzero_ps();
			tail[r][m] = 0;
		}
	for (int k0 = 0; k0 < K; k0 += 128) {
		int k1 = K - k0 < 128 ? K : k0 + 128, k = k0;
		__m256 a[KERN_NR][KERN_MB], b[KERN_NR][KERN_MB];
#pragma GCC unroll 4
		for (int r = 0; r < NR; r++)
#pragma GCC unroll 4
			for (int m = 0; m < M; m++)
				a[r][m] = b[r][m] = _mm256_setzero_ps();
		if (NR == 1) {
			/* the stream's next lines, ahead of the hardware prefetcher (which stops at 4
			 * KiB pages, and on short rows barely starts) */
			_mm_prefetch((const char *)(w + k0) + ROW_PF_BYTES, _MM_HINT_T0);
			_mm_prefetch((const char *)(w + k0) + ROW_PF_BYTES + 64, _MM_HINT_T0);
		}
		for (; k + 32 <= k1; k += 32) {
#pragma GCC unroll 4
			for (int r = 0; r < NR; r++) {
				/* rows read side by side are no stream for the hardware prefetcher:
				 * the next NR rows a line every other step per row, in address order */
				if (NR > 1 && !(k & 32))
					_mm_prefetch((const char *)(w + (size_t)NR * K +
								    (size_t)(k / 64 * NR + r) * 64),
						     _MM_HINT_T0);
				__m256i c =
				    _mm256_loadu_si256((const __m256i *)(w + (size_t)r * K + k));
				__m256i o = _mm256_srai_epi16(c, 4);
				__m256i e = _mm256_srai_epi16(_mm256_slli_epi16(c, 8), 4);
				__m256 v0 = _mm256_castsi256_ps(
				    _mm256_and_si256(_mm256_slli_epi32(e, 16), mk));
				__m256 v1 = _mm256_castsi256_ps(
				    _mm256_and_si256(_mm256_slli_epi32(o, 16), mk));
				__m256 v2 = _mm256_castsi256_ps(_mm256_and_si256(e, mk));
				__m256 v3 = _mm256_castsi256_ps(_mm256_and_si256(o, mk));
#pragma GCC unroll 4
				for (int m = 0; m < M; m++) {
					const float *xm = x + (size_t)m * ldx + k;
					a[r][m] = _mm256_fmadd_ps(v0, _mm256_loadu_ps(xm), a[r][m]);
					b[r][m] =
					    _mm256_fmadd_ps(v1, _mm256_loadu_ps(xm + 8), b[r][m]);
					a[r][m] =
					    _mm256_fmadd_ps(v2, _mm256_loadu_ps(xm + 16), a[r][m]);
					b[r][m] =
					    _mm256_fmadd_ps(v3, _mm256_loadu_ps(xm + 24), b[r][m]);
				}
			}
		}
		float s = sw[k0 / 128] * 256.0f;
		__m256 vs = _mm256_set1_ps(s);
#pragma GCC unroll 4
		for (int r = 0; r < NR; r++)
#pragma GCC unroll 4
			for (int m = 0; m < M; m++) {
				t[r][m] =
				    _mm256_fmadd_ps(_mm256_add_ps(a[r][m], b[r][m]), vs, t[r][m]);
				if (k < k1) { /* the row's last K % 32 values, in order */
					float d = 0;
					for (int i = k; i < k1; i++)
						d += kern_placed1(w[(size_t)r * K + i]) *
						     x[(size_t)m * ldx + i];
					tail[r][m] += d * s;
				}
			}
	}
#pragma GCC unroll 4
	for (int r = 0; r < NR; r++)
#pragma GCC unroll 4
		for (int m = 0; m < M; m++)
			acc[r * M + m] = hsum8(t[r][m]) + tail[r][m];
}

static void row_fp8_avx2(const uint8_t *w, const float *x, int ldx, int M, int K, const float *sw,
			 float *acc)
{
#define CALL_M(m) rowp_fp8_t(w, 1, x, ldx, m, K, sw, acc)
	KERN_PER_M(M, CALL_M);
#undef CALL_M
}

/* row_fp8_avx2 with one input on nr <= KERN_NR consecutive weight rows w + r*K that share the scales sw
 * (one 128-row block): each row's sum with the same operations in the same order (the same
 * bits), the input's vectors and the block's scale loaded once for all of them, their reductions
 * overlapping. */
static void rows_fp8_avx2(const uint8_t *w, int nr, const float *x, int K, const float *sw,
			  float *acc)
{
#define CALL_NR(r) rowp_fp8_t(w, r, x, K, 1, K, sw, acc)
	KERN_PER_M(nr, CALL_NR);
#undef CALL_NR
}

/* xp in rowp_fp8_t's layout: each whole 32-value chunk as xp[32t + 8j + i] = x[32t + 4i + j], the
 * last K % 32 values in order, all times 2^(112-d); returns 2^d (d = 0 unless max |x| >= 2^15). */
static float prep_fp8_avx2(const float *x, int K, float *xp)
{
	float amax = 0;
	for (int k = 0; k < K; k++) {
		float a = x[k] < 0 ? -x[k] : x[k];
		amax = a > amax ? a : amax;
	}
	int d = kern_prep_shift(amax);
	float s = ldexpf(1.0f, 112 - d);
	int k = 0;
	for (; k + 32 <= K; k += 32)
		for (int i = 0; i < 8; i++)
			for (int j = 0; j < 4; j++)
				xp[k + 8 * j + i] = x[k + 4 * i + j] * s;
	for (; k < K; k++)
		xp[k] = x[k] * s;
	return ldexpf(1.0f, d);
}

/* Dequantizes one row (dq8 eight codes at a time, the rest value by value): every value the
 * rounding of e4m3 * sw[kb]. */
static void dec_fp8_avx2(const uint8_t *w, int K, const float *sw, float *out)
{
	int k = 0;
	for (; k + 8 <= K; k += 8)
		_mm256_storeu_ps(out + k, dq8(w + k, sw[k / 128]));
	for (; k < K; k++)
		out[k] = kern_placed1(w[k]) * 0x1p120f * sw[k / 128];
}

/* MB input rows against a packed tile: 2 x MB accumulators (16 outputs per row), each weight
 * vector loaded once per k for all MB rows, each input element broadcast once; one FMA chain per
 * output, k ascending (as tile_p16_scalar). */
static inline __attribute__((always_inline)) void p16_rows(const float *wp, int nw, const float *x,
							   int ldx, const int MB, int K, float *y,
							   int ldy, int acc)
{
	__m256 c0[6], c1[6];
#pragma GCC unroll 6
	for (int m = 0; m < MB; m++)
		c0[m] = c1[m] = _mm256_setzero_ps();
	for (int k = 0; k < K; k++) {
		__m256 w0 = _mm256_loadu_ps(wp + (size_t)k * KERN_PW);
		__m256 w1 = _mm256_loadu_ps(wp + (size_t)k * KERN_PW + 8);
#pragma GCC unroll 6
		for (int m = 0; m < MB; m++) {
			__m256 xb = _mm256_broadcast_ss(x + (size_t)m * ldx + k);
			c0[m] = _mm256_fmadd_ps(w0, xb, c0[m]);
			c1[m] = _mm256_fmadd_ps(w1, xb, c1[m]);
		}
	}
#pragma GCC unroll 6
	for (int m = 0; m < MB; m++) {
		float *ym = y + (size_t)m * ldy;
		if (nw == KERN_PW && !acc) {
			_mm256_storeu_ps(ym, c0[m]);
			_mm256_storeu_ps(ym + 8, c1[m]);
			continue;
		}
		float t[KERN_PW];
		_mm256_storeu_ps(t, c0[m]);
		_mm256_storeu_ps(t + 8, c1[m]);
		for (int j = 0; j < nw; j++)
			ym[j] = acc ? ym[j] + t[j] : t[j];
	}
}

/* Six input rows at a time (12 accumulators, 2 weight vectors and a broadcast: 15 registers). */
static void tile_p16_avx2(const float *wp, int nw, const float *x, int ldx, int M, int K, float *y,
			  int ldy, int acc)
{
	int m = 0;
	for (; m + 6 <= M; m += 6)
		p16_rows(wp, nw, x + (size_t)m * ldx, ldx, 6, K, y + (size_t)m * ldy, ldy, acc);
	const float *xm = x + (size_t)m * ldx;
	float *ym = y + (size_t)m * ldy;
	switch (M - m) {
	case 5:
		p16_rows(wp, nw, xm, ldx, 5, K, ym, ldy, acc);
		break;
	case 4:
		p16_rows(wp, nw, xm, ldx, 4, K, ym, ldy, acc);
		break;
	case 3:
		p16_rows(wp, nw, xm, ldx, 3, K, ym, ldy, acc);
		break;
	case 2:
		p16_rows(wp, nw, xm, ldx, 2, K, ym, ldy, acc);
		break;
	case 1:
		p16_rows(wp, nw, xm, ldx, 1, K, ym, ldy, acc);
		break;
	}
}

/* The 8x8 transpose of v[0..7] (rows) stored as 8 lines of a packed tile at o, o + KERN_PW, ... */
static inline void tr8_store(const __m256 *v, float *o)
{
	__m256 t0 = _mm256_unpacklo_ps(v[0], v[1]), t1 = _mm256_unpackhi_ps(v[0], v[1]);
	__m256 t2 = _mm256_unpacklo_ps(v[2], v[3]), t3 = _mm256_unpackhi_ps(v[2], v[3]);
	__m256 t4 = _mm256_unpacklo_ps(v[4], v[5]), t5 = _mm256_unpackhi_ps(v[4], v[5]);
	__m256 t6 = _mm256_unpacklo_ps(v[6], v[7]), t7 = _mm256_unpackhi_ps(v[6], v[7]);
	__m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
	__m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
	__m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
	__m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
	_mm256_storeu_ps(o + 0 * KERN_PW, _mm256_permute2f128_ps(u0, u4, 0x20));
	_mm256_storeu_ps(o + 1 * KERN_PW, _mm256_permute2f128_ps(u1, u5, 0x20));
	_mm256_storeu_ps(o + 2 * KERN_PW, _mm256_permute2f128_ps(u2, u6, 0x20));
	_mm256_storeu_ps(o + 3 * KERN_PW, _mm256_permute2f128_ps(u3, u7, 0x20));
	_mm256_storeu_ps(o + 4 * KERN_PW, _mm256_permute2f128_ps(u0, u4, 0x31));
	_mm256_storeu_ps(o + 5 * KERN_PW, _mm256_permute2f128_ps(u1, u5, 0x31));
	_mm256_storeu_ps(o + 6 * KERN_PW, _mm256_permute2f128_ps(u2, u6, 0x31));
	_mm256_storeu_ps(o + 7 * KERN_PW, _mm256_permute2f128_ps(u3, u7, 0x31));
}

/* 8x8 transposes: rows r < nr at k..k+7 (rows >= nr as zeros) become the packed tile's lines
 * k..k+7, columns i0..i0+7. */
static void pack_p16_avx2(const float *rows, int K, int nr, int i0, float *wp)
{
	int k = 0;
	for (; k + 8 <= K; k += 8) {
		__m256 r[8];
		for (int i = 0; i < 8; i++)
			r[i] = i < nr ? _mm256_loadu_ps(rows + (size_t)i * K + k)
				      : _mm256_setzero_ps();
		tr8_store(r, wp + (size_t)k * KERN_PW + i0);
	}
	for (; k < K; k++)
		for (int i = 0; i < 8; i++)
			wp[(size_t)k * KERN_PW + i0 + i] = i < nr ? rows[(size_t)i * K + k] : 0.0f;
}

/* dec_fp8 on nr <= 8 rows then pack_p16, in one pass: eight rows' codes k..k+7 placed as f32
 * bits (sign-extending widen, as dec_fp8_avx2), times each row's sw * 2^120, transposed in
 * registers and stored as lines k..k+7. The same bits as the two steps: every value is the
 * rounding of e4m3 * sw (a block where a row's sw * 2^120 is not finite goes value by value). */
static void decpack_fp8_avx2(const uint8_t *w, int K, int nr, const float *const *sw, int i0,
			     float *wp)
{
	for (int k0 = 0; k0 < K; k0 += 128) {
		int k1 = K - k0 < 128 ? K : k0 + 128, k = k0, big = 0;
		float s[8];
		__m256 vs[8];
		for (int r = 0; r < 8; r++) {
			s[r] = r < nr ? sw[r][k0 / 128] : 0.0f;
			big |= !(s[r] < 256.0f && s[r] > -256.0f);
			vs[r] = _mm256_set1_ps(s[r] * 0x1p120f);
		}
		for (; !big && k + 8 <= k1; k += 8) {
			__m256 v[8];
			if (!(k & 63)) /* the next eight rows' line at k: the caller's next call */
				for (int r = 0; r < 8; r++)
					_mm_prefetch((const char *)(w + (size_t)(8 + r) * K + k),
						     _MM_HINT_T0);
			for (int r = 0; r < 8; r++) {
				if (r >= nr) {
					v[r] = _mm256_setzero_ps();
					continue;
				}
				v[r] = _mm256_mul_ps(place8(w + (size_t)r * K + k), vs[r]);
			}
			tr8_store(v, wp + (size_t)k * KERN_PW + i0);
		}
		for (; k < k1;
		     k++) /* value by value: (code * 2^-120) * 2^120 is the code, exactly */
			for (int r = 0; r < 8; r++)
				wp[(size_t)k * KERN_PW + i0 + r] =
				    r < nr ? kern_placed1(w[(size_t)r * K + k]) * 0x1p120f * s[r]
					   : 0.0f;
	}
}

/* Four vectors' lane sums as one vector's lanes 0..3, each ((l0+l1)+(l2+l3))+((l4+l5)+(l6+l7)). */
static inline __m128 hsum4x8(__m256 a, __m256 b, __m256 c, __m256 d)
{
	__m256 h = _mm256_hadd_ps(_mm256_hadd_ps(a, b), _mm256_hadd_ps(c, d));
	return _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
}

/* axpy_f32_avx2 on the dequantized row (its FMAs, its scalar tail) */
static void axpy_fp8s_avx2(float *y, float a, const uint8_t *w, const float *sw, int n)
{
	__m256 va = _mm256_set1_ps(a);
	int k = 0;
	for (int k0 = 0; k + 8 <= n; k0 += 128) { /* a block's scale checked and broadcast once */
		int k1 = n - k0 < 128 ? n : k0 + 128;
		float s0 = sw[k0 / 128];
		__m256 v0 = _mm256_set1_ps(s0 * 0x1p120f);
		int vec = dq8_vec(s0);
		for (; k + 8 <= k1; k += 8)
			_mm256_storeu_ps(y + k,
					 _mm256_fmadd_ps(va, vec ? dq8v(w + k, v0) : dq8(w + k, s0),
							 _mm256_loadu_ps(y + k)));
	}
	for (; k < n; k++)
		y[k] += a * (kern_placed1(w[k]) * 0x1p120f * sw[k / 128]);
}

/* Four axpy_fp8s_avx2 calls in their order, y loaded and stored once (the same bits). */
static void axpy4_fp8s_avx2(float *y, const float *a, const uint8_t *const *w,
			    const float *const *sw, int n)
{
	__m256 a0 = _mm256_set1_ps(a[0]), a1 = _mm256_set1_ps(a[1]);
	__m256 a2 = _mm256_set1_ps(a[2]), a3 = _mm256_set1_ps(a[3]);
	int k = 0;
	for (int k0 = 0; k + 8 <= n;
	     k0 += 128) { /* the block's scales checked and broadcast once */
		int k1 = n - k0 < 128 ? n : k0 + 128, kb = k0 / 128;
		float s0 = sw[0][kb], s1 = sw[1][kb], s2 = sw[2][kb], s3 = sw[3][kb];
		if (dq8_vec(s0) && dq8_vec(s1) && dq8_vec(s2) && dq8_vec(s3)) {
			__m256 v0 = _mm256_set1_ps(s0 * 0x1p120f),
			       v1 = _mm256_set1_ps(s1 * 0x1p120f);
			__m256 v2 = _mm256_set1_ps(s2 * 0x1p120f),
			       v3 = _mm256_set1_ps(s3 * 0x1p120f);
			for (; k + 8 <= k1; k += 8) {
				__m256 v =
				    _mm256_fmadd_ps(a0, dq8v(w[0] + k, v0), _mm256_loadu_ps(y + k));
				v = _mm256_fmadd_ps(a1, dq8v(w[1] + k, v1), v);
				v = _mm256_fmadd_ps(a2, dq8v(w[2] + k, v2), v);
				_mm256_storeu_ps(y + k, _mm256_fmadd_ps(a3, dq8v(w[3] + k, v3), v));
			}
		}
		for (; k + 8 <= k1; k += 8) {
			__m256 v = _mm256_fmadd_ps(a0, dq8(w[0] + k, s0), _mm256_loadu_ps(y + k));
			v = _mm256_fmadd_ps(a1, dq8(w[1] + k, s1), v);
			v = _mm256_fmadd_ps(a2, dq8(w[2] + k, s2), v);
			_mm256_storeu_ps(y + k, _mm256_fmadd_ps(a3, dq8(w[3] + k, s3), v));
		}
	}
	for (; k < n; k++)
		for (int i = 0; i < 4; i++)
			y[k] += a[i] * (kern_placed1(w[i][k]) * 0x1p120f * sw[i][k / 128]);
}

/* Element i of row p: f32 (fp8 = 0) or an FP8 code dequantized (dq8's value). */
static inline float row1(const void *const *w, const float *const *sw, const int fp8, int p, int i)
{
	if (!fp8)
		return ((const float *)w[p])[i];
	return kern_placed1(((const uint8_t *)w[p])[i]) * 0x1p120f * sw[p][i / 128];
}

static inline __m256 row8(const void *const *w, const float *const *sw, const int fp8, int p, int k)
{
	if (!fp8)
		return _mm256_loadu_ps((const float *)w[p] + k);
	return dq8((const uint8_t *)w[p] + k, sw[p][k / 128]);
}

/* P (1 or 2) rows (f32, or FP8 with block scales sw) against M inputs: one accumulator per
 * (row, input), every row vector loaded once; rows past P and inputs past M are zero
 * accumulators that are never stored. */
static inline __attribute__((always_inline)) void
dot_rows8_m(const void *const *w, const float *const *sw, const int fp8, const int P,
	    const float *x, int ldx, const int M, int n, float *acc, int lda)
{
	__m256 a[2][KERN_MB];
	for (int p = 0; p < 2; p++)
		for (int m = 0; m < KERN_MB; m++)
			a[p][m] = _mm256_setzero_ps();
	int k = 0;
	for (int k0 = 0; k + 8 <= n; k0 += 128) {
		/* FP8 rows: the block's scales checked and broadcast once (row8's values) */
		int k1 = !fp8 || n - k0 < 128 ? n : k0 + 128;
		float s0 = fp8 ? sw[0][k0 / 128] : 0, s1 = fp8 && P > 1 ? sw[1][k0 / 128] : s0;
		__m256 v0 = _mm256_set1_ps(s0 * 0x1p120f), v1 = _mm256_set1_ps(s1 * 0x1p120f);
		int vec = fp8 && dq8_vec(s0) && dq8_vec(s1);
		for (; k + 8 <= k1; k += 8) {
			const uint8_t *c0 = (const uint8_t *)w[0] + k,
				      *c1 = (const uint8_t *)w[1] + k;
			__m256 r0 = vec ? dq8v(c0, v0) : row8(w, sw, fp8, 0, k);
			__m256 r1 = P < 2 ? r0 : vec ? dq8v(c1, v1) : row8(w, sw, fp8, 1, k);
#pragma GCC unroll 4
			for (int m = 0; m < M; m++) {
				__m256 xv = _mm256_loadu_ps(x + (size_t)m * ldx + k);
				a[0][m] = _mm256_fmadd_ps(r0, xv, a[0][m]);
				if (P > 1)
					a[1][m] = _mm256_fmadd_ps(r1, xv, a[1][m]);
			}
		}
	}
	for (int p = 0; p < P; p++) {
		float t[4];
		_mm_storeu_ps(t, hsum4x8(a[p][0], a[p][1], a[p][2], a[p][3]));
		for (int m = 0; m < M; m++) {
			float v = t[m];
			for (int i = k; i < n; i++)
				v = fmaf(row1(w, sw, fp8, p, i), x[(size_t)m * ldx + i], v);
			acc[(size_t)p * lda + m] = v;
		}
	}
}

#define DOT_ROWS8()                                                                                \
	do {                                                                                       \
		if (P > 1)                                                                         \
			KERN_PER_M(M, CALL_M2);                                                    \
		else                                                                               \
			KERN_PER_M(M, CALL_M1);                                                    \
	} while (0)

static void dot_f32_rows_avx2(const float *const *w, int P, const float *x, int ldx, int M, int n,
			      float *acc, int lda)
{
	const void *r[2] = {w[0], P > 1 ? w[1] : w[0]};
#define CALL_M2(m) dot_rows8_m(r, NULL, 0, 2, x, ldx, m, n, acc, lda)
#define CALL_M1(m) dot_rows8_m(r, NULL, 0, 1, x, ldx, m, n, acc, lda)
	DOT_ROWS8();
#undef CALL_M1
#undef CALL_M2
}

static void dot_fp8s_rows_avx2(const uint8_t *const *w, const float *const *sw, int P,
			       const float *x, int ldx, int M, int n, float *acc, int lda)
{
	const void *r[2] = {w[0], P > 1 ? w[1] : w[0]};
	const float *s[2] = {sw[0], P > 1 ? sw[1] : sw[0]};
#define CALL_M2(m) dot_rows8_m(r, s, 1, 2, x, ldx, m, n, acc, lda)
#define CALL_M1(m) dot_rows8_m(r, s, 1, 1, x, ldx, m, n, acc, lda)
	DOT_ROWS8();
#undef CALL_M1
#undef CALL_M2
}
#undef DOT_ROWS8

static void axpy_f32_avx2(float *y, float a, const float *x, int n)
{
	__m256 va = _mm256_set1_ps(a);
	int k = 0;
	for (; k + 8 <= n; k += 8)
		_mm256_storeu_ps(
		    y + k, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + k), _mm256_loadu_ps(y + k)));
	for (; k < n; k++)
		y[k] += a * x[k];
}

/* The FMAs of four axpy_f32 calls in their order, y loaded and stored once. */
static void axpy4_f32_avx2(float *y, const float *a, const float *const *x, int n)
{
	__m256 a0 = _mm256_set1_ps(a[0]), a1 = _mm256_set1_ps(a[1]);
	__m256 a2 = _mm256_set1_ps(a[2]), a3 = _mm256_set1_ps(a[3]);
	int k = 0;
	for (; k + 8 <= n; k += 8) {
		__m256 v = _mm256_fmadd_ps(a0, _mm256_loadu_ps(x[0] + k), _mm256_loadu_ps(y + k));
		v = _mm256_fmadd_ps(a1, _mm256_loadu_ps(x[1] + k), v);
		v = _mm256_fmadd_ps(a2, _mm256_loadu_ps(x[2] + k), v);
		_mm256_storeu_ps(y + k, _mm256_fmadd_ps(a3, _mm256_loadu_ps(x[3] + k), v));
	}
	for (; k < n; k++)
		for (int i = 0; i < 4; i++)
			y[k] += a[i] * x[i][k];
}

/* Rows in pairs: the four x vectors of a step loaded once for both rows, each row's FMAs those
 * of axpy4_f32_avx2 in its order (an odd last row through axpy4_f32_avx2). */
static void axpy4_rows_f32_avx2(float *y, int ldy, const float *a, int lda, const float *const *x,
				int M, int n)
{
	int m = 0;
	for (; m + 2 <= M; m += 2) {
		float *y0 = y + (size_t)m * ldy, *y1 = y0 + ldy;
		const float *p = a + (size_t)m * lda, *q = p + lda;
		__m256 a0 = _mm256_set1_ps(p[0]), a1 = _mm256_set1_ps(p[1]);
		__m256 a2 = _mm256_set1_ps(p[2]), a3 = _mm256_set1_ps(p[3]);
		__m256 b0 = _mm256_set1_ps(q[0]), b1 = _mm256_set1_ps(q[1]);
		__m256 b2 = _mm256_set1_ps(q[2]), b3 = _mm256_set1_ps(q[3]);
		int k = 0;
		for (; k + 8 <= n; k += 8) {
			__m256 x0 = _mm256_loadu_ps(x[0] + k), x1 = _mm256_loadu_ps(x[1] + k);
			__m256 x2 = _mm256_loadu_ps(x[2] + k), x3 = _mm256_loadu_ps(x[3] + k);
			__m256 v = _mm256_fmadd_ps(a0, x0, _mm256_loadu_ps(y0 + k));
			__m256 u = _mm256_fmadd_ps(b0, x0, _mm256_loadu_ps(y1 + k));
			v = _mm256_fmadd_ps(a1, x1, v);
			u = _mm256_fmadd_ps(b1, x1, u);
			v = _mm256_fmadd_ps(a2, x2, v);
			u = _mm256_fmadd_ps(b2, x2, u);
			_mm256_storeu_ps(y0 + k, _mm256_fmadd_ps(a3, x3, v));
			_mm256_storeu_ps(y1 + k, _mm256_fmadd_ps(b3, x3, u));
		}
		for (; k < n; k++)
			for (int i = 0; i < 4; i++) {
				y0[k] += p[i] * x[i][k];
				y1[k] += q[i] * x[i][k];
			}
	}
	if (m < M)
		axpy4_f32_avx2(y + (size_t)m * ldy, a + (size_t)m * lda, x, n);
}

/* Same rounding as roundtrip_fp8_avx512, 8 lanes; the tail goes through a padded copy. */
static void roundtrip8(const float *x, float s, float *xr)
{
	const __m256 vs = _mm256_set1_ps(s), big = _mm256_set1_ps(16384.0f);
	const __m256i absm = _mm256_set1_epi32(0x7FFFFFFF);
	__m256 v = _mm256_div_ps(_mm256_loadu_ps(x), vs);
	__m256i vb = _mm256_castps_si256(v), ab = _mm256_and_si256(vb, absm);
	__m256i sg = _mm256_andnot_si256(absm, vb);
	__m256 a = _mm256_castsi256_ps(ab);
	__m256 rs = _mm256_sub_ps(_mm256_add_ps(a, big), big);
	__m256i lsb = _mm256_and_si256(_mm256_srli_epi32(ab, 20), _mm256_set1_epi32(1));
	__m256i nb = _mm256_and_si256(
	    _mm256_add_epi32(ab, _mm256_add_epi32(_mm256_set1_epi32(0x7FFFF), lsb)),
	    _mm256_set1_epi32(~0xFFFFF));
	__m256 is_sub = _mm256_cmp_ps(a, _mm256_set1_ps(0.015625f), _CMP_LT_OQ);
	__m256 r = _mm256_blendv_ps(_mm256_castsi256_ps(nb), rs, is_sub);
	r = _mm256_min_ps(r, _mm256_set1_ps(448.0f));
	r = _mm256_castsi256_ps(_mm256_or_si256(_mm256_castps_si256(r), sg));
	_mm256_storeu_ps(xr, _mm256_mul_ps(r, vs));
}

static void roundtrip_fp8_avx2(const float *x, int n, float s, float *xr)
{
	int k = 0;
	for (; k + 8 <= n; k += 8)
		roundtrip8(x + k, s, xr + k);
	if (k < n) {
		float xt[8] = {0}, rt[8];
		memcpy(xt, x + k, sizeof(float) * (size_t)(n - k));
		roundtrip8(xt, s, rt);
		memcpy(xr + k, rt, sizeof(float) * (size_t)(n - k));
	}
}

/* Packed BF16 panels (16 rows each, k-major) against M inputs: per k the 16 weights of a panel
 * widened by two in-lane unpacks (the panel's order puts rows 0..7 in the low unpack, 8..15 in
 * the high), each input broadcast, one FMA chain per output in ascending k. P panels (1 or 2:
 * with one or two inputs two panels at once, so that four or more chains hide the FMA latency)
 * against M <= 6 inputs (M * P <= 6). */
static inline __attribute__((always_inline)) void gemv_bf16p_m(const uint16_t *wp, const float *x,
							       int ldx, const int M, const int P,
							       int K, float *y, int ldy, int nw)
{
	__m256 acc[6][2][2];
	const __m256i z = _mm256_setzero_si256();
	const size_t ps = (size_t)K * KERN_PW;
#pragma GCC unroll 6
	for (int m = 0; m < M; m++)
#pragma GCC unroll 2
		for (int p = 0; p < P; p++)
			acc[m][p][0] = acc[m][p][1] = _mm256_setzero_ps();
	for (int k = 0; k < K; k++) {
		__m256 w[2][2];
#pragma GCC unroll 2
		for (int p = 0; p < P; p++) {
			__m256i v = _mm256_loadu_si256(
			    (const __m256i *)(wp + (size_t)p * ps + (size_t)k * KERN_PW));
			w[p][0] = _mm256_castsi256_ps(_mm256_unpacklo_epi16(z, v));
			w[p][1] = _mm256_castsi256_ps(_mm256_unpackhi_epi16(z, v));
		}
#pragma GCC unroll 6
		for (int m = 0; m < M; m++) {
			__m256 xb = _mm256_broadcast_ss(x + (size_t)m * ldx + k);
#pragma GCC unroll 2
			for (int p = 0; p < P; p++) {
				acc[m][p][0] = _mm256_fmadd_ps(w[p][0], xb, acc[m][p][0]);
				acc[m][p][1] = _mm256_fmadd_ps(w[p][1], xb, acc[m][p][1]);
			}
		}
	}
#pragma GCC unroll 6
	for (int m = 0; m < M; m++) {
		float t[2 * KERN_PW];
#pragma GCC unroll 2
		for (int p = 0; p < P; p++) {
			_mm256_storeu_ps(t + p * KERN_PW, acc[m][p][0]);
			_mm256_storeu_ps(t + p * KERN_PW + 8, acc[m][p][1]);
		}
		memcpy(y + (size_t)m * ldy, t, sizeof(float) * (size_t)nw);
	}
}

static void gemv_bf16p_avx2(const uint16_t *wp, int nw, const float *x, int ldx, int M, int K,
			    float *y, int ldy)
{
	if (nw > KERN_PW && M > 2) { /* two panels, one after the other */
		gemv_bf16p_avx2(wp, KERN_PW, x, ldx, M, K, y, ldy);
		gemv_bf16p_avx2(wp + (size_t)K * KERN_PW, nw - KERN_PW, x, ldx, M, K, y + KERN_PW,
				ldy);
		return;
	}
	/* inputs in blocks of at most six, balanced (8 = 4 + 4: no block with few chains) */
	int nb = (M + 5) / 6;
	for (int b = 0, m0 = 0; b < nb; b++) {
		int mb = (M - m0 + (nb - b) - 1) / (nb - b);
		const float *xm = x + (size_t)m0 * ldx;
		float *ym = y + (size_t)m0 * ldy;
#define CALL_M(mm, pp) gemv_bf16p_m(wp, xm, ldx, mm, pp, K, ym, ldy, nw)
		if (nw > KERN_PW && mb == 1)
			CALL_M(1, 2);
		else if (nw > KERN_PW)
			CALL_M(2, 2);
		else if (mb <= 3)
			mb == 1 ? CALL_M(1, 1) : mb == 2 ? CALL_M(2, 1) : CALL_M(3, 1);
		else
			mb == 4 ? CALL_M(4, 1) : mb == 5 ? CALL_M(5, 1) : CALL_M(6, 1);
#undef CALL_M
		m0 += mb;
	}
}

/* gemv_i8p: per panel, input and half panel eight accumulators, one a row; a step widens each
 * row's sixteen codes to f32 (exact, two vectors) against the input's group (its last partial
 * group through a zero-padded copy). */
static void gemv_i8p_avx2(const int8_t *qp, const float *s, int np, int K, const float *x, int ldx,
			  int M, float *y, int ldy)
{
	int nkb = (K + 15) / 16, kf = K / 16;
	for (int p = 0; p < np; p++) {
		const int8_t *pq = qp + (size_t)p * nkb * 256;
		for (int m = 0; m < M; m++) {
			const float *xm = x + (size_t)m * ldx;
			float xt[16] = {0};
			for (int k = kf * 16; k < K; k++)
				xt[k - kf * 16] = xm[k];
			for (int h = 0; h < 2; h++) {
				__m256 a[8];
#pragma GCC unroll 8
				for (int i = 0; i < 8; i++)
					a[i] = _mm256_setzero_ps();
				for (int kb = 0; kb < nkb; kb++) {
					const float *xs = kb < kf ? xm + kb * 16 : xt;
					__m256 x0 = _mm256_loadu_ps(xs),
					       x1 = _mm256_loadu_ps(xs + 8);
					const int8_t *g = pq + (size_t)kb * 256 + h * 128;
					if (!h &&
					    !m) { /* the other half's lines, for the pass after */
						_mm_prefetch((const char *)(g + 128), _MM_HINT_T0);
						_mm_prefetch((const char *)(g + 192), _MM_HINT_T0);
					}
#pragma GCC unroll 8
					for (int i = 0; i < 8; i++) {
						__m128i c =
						    _mm_loadu_si128((const __m128i *)(g + i * 16));
						a[i] = _mm256_fmadd_ps(
						    _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(c)), x0,
						    a[i]);
						a[i] = _mm256_fmadd_ps(
						    _mm256_cvtepi32_ps(
							_mm256_cvtepi8_epi32(_mm_srli_si128(c, 8))),
						    x1, a[i]);
					}
				}
#pragma GCC unroll 8
				for (int i = 0; i < 8; i++) {
					__m128 t = _mm_add_ps(_mm256_castps256_ps128(a[i]),
							      _mm256_extractf128_ps(a[i], 1));
					t = _mm_add_ps(t, _mm_movehl_ps(t, t));
					t = _mm_add_ss(t, _mm_movehdup_ps(t));
					int r = p * 16 + h * 8 + i;
					y[(size_t)m * ldy + r] = _mm_cvtss_f32(t) * s[r];
				}
			}
		}
	}
}

/* gemv_i8u8p on AVX2, inputs up to 127 (7-bit codes: i8u8_xmax = 63): a step takes a panel's
 * group (16 rows of 16 codes: eight vectors of two rows, one row a 128-bit lane) against the
 * input's sixteen codes broadcast to both lanes. vpmaddubsw's pairs are exact (2 x 127 x 127 <
 * 2^15; an 8-bit input could saturate them, hence the 7-bit codes), vpmaddwd with ones adds them
 * into int32 (exact: K x 127 x 127 < 2^31); a row's sum is its lane's four words. One input a
 * pass keeps the eight accumulators, the ones and the input in registers (two inputs sharing the
 * code vectors spilled one, and ran at half the rate); the panel stays in L1 for the next. */
static inline void u8p16_avx2(const int8_t *pq, int nkb, const uint8_t *xu, int32_t *y,
			      const int32_t *qsum, int off, const int8_t *pf)
{
	const __m256i one = _mm256_set1_epi16(1);
	__m256i a[8];
#pragma GCC unroll 8
	for (int j = 0; j < 8; j++)
		a[j] = _mm256_setzero_si256();
	for (int kb = 0; kb < nkb; kb++) {
		const int8_t *g = pq + (size_t)kb * 256;
		if (pf)
			_mm_prefetch((const char *)(pf + (size_t)kb * 64), _MM_HINT_T0);
		__m256i xb =
		    _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(xu + kb * 16)));
#pragma GCC unroll 8
		for (int j = 0; j < 8; j++) {
			a[j] = _mm256_add_epi32(
			    a[j], _mm256_madd_epi16(
				      _mm256_maddubs_epi16(
					  xb, _mm256_loadu_si256((const __m256i *)(g + 32 * j))),
				      one));
			/* each row pair's chain in turn: eight products at once would want more
			 * registers than the accumulators leave (the compiler spilled one) */
			__asm__ volatile("" : "+x"(a[j]));
		}
	}
	/* vector j holds rows 2j (low lane) and 2j + 1 (high lane): two rounds of horizontal adds
	 * leave rows 0, 2, 4, 6 in the low lane and 1, 3, 5, 7 in the high one (8.. 15 likewise) */
	const __m128i vo = _mm_set1_epi32(off);
	for (int q = 0; q < 2; q++) {
		__m256i u = _mm256_hadd_epi32(_mm256_hadd_epi32(a[4 * q], a[4 * q + 1]),
					      _mm256_hadd_epi32(a[4 * q + 2], a[4 * q + 3]));
		__m128i ev = _mm256_castsi256_si128(u), od = _mm256_extracti128_si256(u, 1);
		for (int h = 0; h < 2; h++) {
			__m128i r = h ? _mm_unpackhi_epi32(ev, od) : _mm_unpacklo_epi32(ev, od);
			__m128i qs = _mm_loadu_si128((const __m128i *)(qsum + 8 * q + 4 * h));
			_mm_storeu_si128((__m128i *)(y + 8 * q + 4 * h),
					 _mm_sub_epi32(r, _mm_mullo_epi32(qs, vo)));
		}
	}
}

static void gemv_i8u8p_avx2(const int8_t *qp, const int32_t *qsum, int np, int K, const uint8_t *xu,
			    int ldx, int M, int off, int32_t *y, int ldy)
{
	int nkb = (K + 15) / 16;
	for (int p = 0; p < np; p++) {
		const int8_t *pq = qp + (size_t)p * nkb * 256;
		for (int m = 0; m < M; m++) {
			/* with several inputs, their passes fetch the next panel a line a step
			 * (passes 0..3 the whole of it) while this one is in L1 */
			const int8_t *pf = M > 1 && m < 4 && p + 1 < np
					       ? pq + (size_t)nkb * 256 + (size_t)m * nkb * 64
					       : NULL;
			u8p16_avx2(pq, nkb, xu + (size_t)m * ldx, y + (size_t)m * ldy + p * 16,
				   qsum + p * 16, off, pf);
		}
	}
}

/* row_i8u8p on AVX2: the row's sixteen codes of a group against the input's, vpmaddubsw and
 * vpmaddwd with ones as in u8p16_avx2 (exact), two groups a step in the two lanes. */
static int32_t row_i8u8p_avx2(const int8_t *pq, int nkb, int r, const uint8_t *xu)
{
	const __m256i one = _mm256_set1_epi16(1);
	__m256i a = _mm256_setzero_si256();
	int kb = 0;
	for (; kb + 2 <= nkb; kb += 2) {
		const int8_t *g = pq + ((size_t)kb * 16 + r) * 16;
		__m256i c = _mm256_inserti128_si256(
		    _mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)g)),
		    _mm_loadu_si128((const __m128i *)(g + 256)), 1);
		__m256i xv = _mm256_loadu_si256((const __m256i *)(xu + kb * 16));
		a = _mm256_add_epi32(a, _mm256_madd_epi16(_mm256_maddubs_epi16(xv, c), one));
	}
	__m128i s = _mm_add_epi32(_mm256_castsi256_si128(a), _mm256_extracti128_si256(a, 1));
	if (kb < nkb) {
		__m128i c = _mm_loadu_si128((const __m128i *)(pq + ((size_t)kb * 16 + r) * 16));
		__m128i xv = _mm_loadu_si128((const __m128i *)(xu + kb * 16));
		s = _mm_add_epi32(s, _mm_madd_epi16(_mm_maddubs_epi16(xv, c), _mm_set1_epi16(1)));
	}
	s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
	s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
	return _mm_cvtsi128_si32(s);
}

const struct kern_isa kern_isa_avx2 = {
    .name = "avx2",
    .dot_bf16 = dot_bf16_avx2,
    .row_fp8 = row_fp8_avx2,
    .rows_fp8 = rows_fp8_avx2,
    .prep_fp8 = prep_fp8_avx2,
    .dec_fp8 = dec_fp8_avx2,
    .tile_p16 = tile_p16_avx2,
    .pack_p16 = pack_p16_avx2,
    .decpack_fp8 = decpack_fp8_avx2,
    .dot_f32_rows = dot_f32_rows_avx2,
    .axpy_f32 = axpy_f32_avx2,
    .axpy_fp8s = axpy_fp8s_avx2,
    .dot_fp8s_rows = dot_fp8s_rows_avx2,
    .axpy4_fp8s = axpy4_fp8s_avx2,
    .axpy4_f32 = axpy4_f32_avx2,
    .axpy4_rows_f32 = axpy4_rows_f32_avx2,
    .roundtrip_fp8 = roundtrip_fp8_avx2,
    .gemv_bf16p = gemv_bf16p_avx2,
    .gemv_i8p = gemv_i8p_avx2,
    .gemv_i8u8p = gemv_i8u8p_avx2,
    .row_i8u8p = row_i8u8p_avx2,
    .i8u8_xmax = 63,
    .i8u8_one = 1,
    .i8u8_maxm = 0,
};
