/*
 * simd_avx512bf16.c - the act-fp8 prefill tile on AVX-512 BF16 dot products (vdpbf16ps) for the
 * avx512bf16 path (kernels.h). Compiled with AVX-512 BF16 flags (host.mk) and called only when
 * kern_isa_get() found the CPU supports them.
 *
 * E4M3 values are exact in bf16 (3 mantissa bits, exponents 2^-9..2^8), so the weights' codes and
 * the activations' codes e4m3(x / sa) go in as bf16 and each product is exact (two 4-bit
 * significands); a 128-block's products are summed in f32 (D: the instruction adds a pair's two
 * products to the accumulator one after the other, round to nearest even; no product or sum of
 * them is small enough for its flush of subnormals: every one is a multiple of 2^-18), then
 * y = fma(D, sa * sw, y): the numerics of kernels.h, each block's dot product scaled once.
 */
#include <immintrin.h>
#include <stdint.h>
#include <string.h>
#include "model/kernels.h"
#include "model/simd_avx512.h"

/* Sixteen E4M3 codes as bf16 bits: dec16's values times 2^8 (exact), the f32 bits' high half
 * (at most 4 significant bits). Codes past mk are zeros. */
static inline __m256i e4m3_bf16x16(const uint8_t *w, __mmask16 mk)
{
	__m512 f = _mm512_mul_ps(dec16(w, mk), _mm512_set1_ps(256.0f));
	return _mm512_cvtepi32_epi16(_mm512_srli_epi32(_mm512_castps_si512(f), 16));
}

/* The 16x16 transpose of 32-bit words r[0..15] (rows) into o[0..15] (columns): 32- and 64-bit
 * interleaves within 128-bit lanes, then a 4x4 transpose of the lanes. */
static inline void tr16(const __m512i *r, __m512i *o)
{
	__m512i t[16], u[16];
	for (int i = 0; i < 8; i++) {
		t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
		t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
	}
	for (int i = 0; i < 4; i++) { /* u[4i + c], lane L: column 4L + c of rows 4i..4i+3 */
		u[4 * i + 0] = _mm512_unpacklo_epi64(t[4 * i], t[4 * i + 2]);
		u[4 * i + 1] = _mm512_unpackhi_epi64(t[4 * i], t[4 * i + 2]);
		u[4 * i + 2] = _mm512_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
		u[4 * i + 3] = _mm512_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
	}
	for (int c = 0; c < 4; c++) {
		__m512i v0 = _mm512_shuffle_i32x4(u[c], u[4 + c], 0x88);
		__m512i v1 = _mm512_shuffle_i32x4(u[c], u[4 + c], 0xDD);
		__m512i v2 = _mm512_shuffle_i32x4(u[8 + c], u[12 + c], 0x88);
		__m512i v3 = _mm512_shuffle_i32x4(u[8 + c], u[12 + c], 0xDD);
		o[c] = _mm512_shuffle_i32x4(v0, v2, 0x88);
		o[4 + c] = _mm512_shuffle_i32x4(v1, v3, 0x88);
		o[8 + c] = _mm512_shuffle_i32x4(v0, v2, 0xDD);
		o[12 + c] = _mm512_shuffle_i32x4(v1, v3, 0xDD);
	}
}

/* The codes of rows r < nr (rows >= nr zeros) in pairs: wpb[(k/2)*KERN_PW + r] = bf16(w[r][k]) |
 * bf16(w[r][k+1]) << 16, the last pair of an odd K with a zero. Thirty-two codes of each row a
 * step (sixteen pairs, one vector), transposed in registers into sixteen lines. */
static void decpack_bf16_avx512(const uint8_t *w, int K, int nr, uint32_t *wpb)
{
	for (int k = 0; k < K; k += 32) {
		int rem = K - k, np = rem >= 32 ? 16 : (rem + 1) / 2;
		__mmask16 m0 = lanes16(rem);
		__mmask16 m1 = rem <= 16 ? 0 : lanes16(rem - 16);
		__m512i r[16], o[16];
		for (int i = 0; i < KERN_PW; i++) {
			if (i >= nr) {
				r[i] = _mm512_setzero_si512();
				continue;
			}
			const uint8_t *wr = w + (size_t)i * K + k;
			r[i] = _mm512_inserti64x4(_mm512_castsi256_si512(e4m3_bf16x16(wr, m0)),
						  e4m3_bf16x16(wr + 16, m1), 1);
		}
		tr16(r, o);
		uint32_t *out = wpb + (size_t)(k / 2) * KERN_PW;
		for (int p = 0; p < np; p++)
			_mm512_storeu_si512((void *)(out + (size_t)p * KERN_PW), o[p]);
	}
}

/* xb[k] = bf16(e4m3(x[k] / s)) for one block of n <= 128 (roundtrip_fp8's rounding,
 * e4m3_rne512, without the multiply by s: the value has at most 4 significant bits, so its f32
 * bits' high half is its bf16), and a zero after an odd n (the pair's second half). */
static void quant_bf16_avx512(const float *x, int n, float s, uint16_t *xb)
{
	const __m512 vs = _mm512_set1_ps(s);
	for (int k = 0; k < n; k += 16) {
		__mmask16 mk = lanes16(n - k);
		__m512 r = e4m3_rne512(_mm512_div_ps(_mm512_maskz_loadu_ps(mk, x + k), vs));
		_mm256_mask_storeu_epi16(
		    xb + k, mk,
		    _mm512_cvtepi32_epi16(_mm512_srli_epi32(_mm512_castps_si512(r), 16)));
	}
	if (n & 1)
		xb[n] = 0;
}

/* MB input rows against a packed pair tile, block by block: per 128-block MB accumulators of D
 * (one vdpbf16ps a pair of k per row, the weights' pair line loaded once for all rows, the row's
 * pair broadcast), then y += D * (sa * sw) per row. */
static inline __attribute__((always_inline)) void
bf16_rows(const uint32_t *wpb, int nw, const uint16_t *xb, int ldx, const int MB, int K,
	  const float *sa, int lds, const float *swt, float *y, int ldy, int acc)
{
	__m512 c[8], t[8];
#pragma GCC unroll 8
	for (int m = 0; m < MB; m++)
		t[m] = _mm512_setzero_ps();
	for (int k0 = 0, kb = 0; k0 < K; k0 += 128, kb++) {
		int p1 = (K - k0 < 128 ? K - k0 + 1 : 128) / 2;
		const uint32_t *wb = wpb + (size_t)(k0 / 2) * KERN_PW;
#pragma GCC unroll 8
		for (int m = 0; m < MB; m++)
			c[m] = _mm512_setzero_ps();
		for (int p = 0; p < p1; p++) {
			__m512bh wv =
			    (__m512bh)_mm512_loadu_si512((const void *)(wb + (size_t)p * KERN_PW));
#pragma GCC unroll 8
			for (int m = 0; m < MB; m++) {
				uint32_t xv;
				memcpy(&xv, xb + (size_t)m * ldx + k0 + 2 * p, 4);
				c[m] = _mm512_dpbf16_ps(c[m], wv,
							(__m512bh)_mm512_set1_epi32((int)xv));
			}
		}
		__m512 sw = _mm512_loadu_ps(swt + (size_t)kb * KERN_PW);
#pragma GCC unroll 8
		for (int m = 0; m < MB; m++)
			t[m] = _mm512_fmadd_ps(
			    c[m], _mm512_mul_ps(_mm512_set1_ps(sa[(size_t)m * lds + kb]), sw),
			    t[m]);
	}
#pragma GCC unroll 8
	for (int m = 0; m < MB; m++)
		tile_store16(y + (size_t)m * ldy, nw, t[m], acc);
}

/* Eight input rows at a time (as tile_p16_avx512: more rows 8 KiB apart share one L1 set). */
static void tile_bf16_avx512(const uint32_t *wpb, int nw, const uint16_t *xb, int ldx, int M, int K,
			     const float *sa, int lds, const float *swt, float *y, int ldy, int acc)
{
	int m = 0;
	for (; m + 8 <= M; m += 8)
		bf16_rows(wpb, nw, xb + (size_t)m * ldx, ldx, 8, K, sa + (size_t)m * lds, lds, swt,
			  y + (size_t)m * ldy, ldy, acc);
	const uint16_t *xm = xb + (size_t)m * ldx;
	const float *sm = sa + (size_t)m * lds;
	float *ym = y + (size_t)m * ldy;
	switch (M - m) {
#define BF16_CASE(r)                                                                               \
	case r:                                                                                    \
		bf16_rows(wpb, nw, xm, ldx, r, K, sm, lds, swt, ym, ldy, acc);                     \
		break;
		KERN_M_CASES_7(BF16_CASE)
#undef BF16_CASE
	}
}

/* The bf16 bits of the E4M3 magnitudes 0..127 (their exact values; 0x7F, a NaN code, as the
 * finite 480 that dec16 gives it), split into high and low bytes for two 128-entry byte lookups:
 * exponent field e >= 1 is the normal (e + 120) << 7 | m << 4, e = 0 the subnormals m * 2^-9
 * normalized. */
#define E4_HI(e) (((e) + 120) >> 1)
#define E4_LO(e, m) ((((e) + 120) & 1) << 7 | (m) << 4)
#define E4_HROW(e) E4_HI(e), E4_HI(e), E4_HI(e), E4_HI(e), E4_HI(e), E4_HI(e), E4_HI(e), E4_HI(e)
#define E4_LROW(e)                                                                                 \
	E4_LO(e, 0), E4_LO(e, 1), E4_LO(e, 2), E4_LO(e, 3), E4_LO(e, 4), E4_LO(e, 5), E4_LO(e, 6), \
	    E4_LO(e, 7)
static const uint8_t e4m3_bf16_hi[128] __attribute__((aligned(64))) = {
    0x00,	 0x3B,	      0x3B,	   0x3B,	0x3C,	    0x3C,
    0x3C,	 0x3C,	      E4_HROW(1),  E4_HROW(2),	E4_HROW(3), E4_HROW(4),
    E4_HROW(5),	 E4_HROW(6),  E4_HROW(7),  E4_HROW(8),	E4_HROW(9), E4_HROW(10),
    E4_HROW(11), E4_HROW(12), E4_HROW(13), E4_HROW(14), E4_HROW(15)};
static const uint8_t e4m3_bf16_lo[128] __attribute__((aligned(64))) = {
    0x00,	 0x00,	      0x80,	   0xC0,	0x00,	    0x20,
    0x40,	 0x60,	      E4_LROW(1),  E4_LROW(2),	E4_LROW(3), E4_LROW(4),
    E4_LROW(5),	 E4_LROW(6),  E4_LROW(7),  E4_LROW(8),	E4_LROW(9), E4_LROW(10),
    E4_LROW(11), E4_LROW(12), E4_LROW(13), E4_LROW(14), E4_LROW(15)};

/*
 * The act-fp8 decode GEMV: one FP8 weight row against M <= KERN_MB_ROWB rows of activation codes xb
 * (quant_bf16's layout, row stride ldx) with block scales sa[m*lds + kb]. Sixty-four codes a step
 * become bf16 through the two byte lookups (vpermi2b on the low seven bits, the sign or-ed into
 * the high byte) and are interleaved into codes 0..31 and 32..63 as bf16 words, the order of xb, so
 * lane i of a vdpbf16ps adds codes 2i and 2i + 1 of its half. Per 128-block and row the two halves'
 * lane sums are added (D in sixteen lanes: exact products, f32 sums), then t = fma(D, sa * sw, t)
 * per lane, kb ascending, and the row's result is the sum across t's lanes: kernels.h's numerics
 * with the block sum in lanes. The same operations for every M (a row's result does not depend
 * on the rows beside it); the last K % 64 codes and activations by masked loads (zeros past K).
 * NR <= KERN_NR consecutive weight rows w + r*K (one block row of scales sw) against M inputs,
 * acc[r*M + m]: several weight rows a call (NR > 1, M = 1: rows_bf16) or several inputs (NR = 1:
 * row_bf16), each sum the same operations.
 */
static inline __attribute__((always_inline)) void rowb_t(const uint8_t *w, const int NR,
							 const uint16_t *xb, int ldx, const int M,
							 int K, const float *sa, int lds,
							 const float *sw, float *acc)
{
	const __m512i th0 = _mm512_load_si512((const void *)e4m3_bf16_hi);
	const __m512i th1 = _mm512_load_si512((const void *)(e4m3_bf16_hi + 64));
	const __m512i tl0 = _mm512_load_si512((const void *)e4m3_bf16_lo);
	const __m512i tl1 = _mm512_load_si512((const void *)(e4m3_bf16_lo + 64));
	const __m512i sgn = _mm512_set1_epi8((char)0x80);
	/* word 2i of A is (lo, hi) of code i, of B of code 32 + i */
	const __m512i ia = _mm512_set_epi8(
	    95, 31, 94, 30, 93, 29, 92, 28, 91, 27, 90, 26, 89, 25, 88, 24, 87, 23, 86, 22, 85, 21,
	    84, 20, 83, 19, 82, 18, 81, 17, 80, 16, 79, 15, 78, 14, 77, 13, 76, 12, 75, 11, 74, 10,
	    73, 9, 72, 8, 71, 7, 70, 6, 69, 5, 68, 4, 67, 3, 66, 2, 65, 1, 64, 0);
	const __m512i ib = _mm512_add_epi8(ia, _mm512_set1_epi8(32));
	__m512 t[KERN_NR][KERN_MB_ROWB];
#pragma GCC unroll 4
	for (int r = 0; r < NR; r++)
#pragma GCC unroll 8
		for (int m = 0; m < M; m++)
			t[r][m] = _mm512_setzero_ps();
	for (int k0 = 0, kb = 0; k0 < K; k0 += 128, kb++) {
		int k1 = K - k0 < 128 ? K : k0 + 128;
		__m512 a[KERN_NR][KERN_MB_ROWB], b[KERN_NR][KERN_MB_ROWB];
#pragma GCC unroll 4
		for (int r = 0; r < NR; r++)
#pragma GCC unroll 8
			for (int m = 0; m < M; m++)
				a[r][m] = b[r][m] = _mm512_setzero_ps();
		for (int k = k0; k < k1; k += 64) {
			int n = k1 - k;
			__mmask32 ma = n >= 32 ? 0xFFFFFFFFu : ((__mmask32)1 << n) - 1;
			__mmask32 mb = n >= 64	 ? 0xFFFFFFFFu
				       : n <= 32 ? 0
						 : ((__mmask32)1 << (n - 32)) - 1;
#pragma GCC unroll 4
			for (int r = 0; r < NR; r++) {
				const uint8_t *wr = w + (size_t)r * K + k;
				/* rows read side by side are no stream for the hardware prefetcher:
				 * the next NR rows a line a step per row, in address order */
				if (NR > 1)
					_mm_prefetch((const char *)(w + (size_t)NR * K +
								    (size_t)(k / 64 * NR + r) * 64),
						     _MM_HINT_T0);
				__m512i cw =
				    n >= 64 ? _mm512_loadu_si512((const void *)wr)
					    : _mm512_maskz_loadu_epi8(((__mmask64)1 << n) - 1, wr);
				__m512i hi = _mm512_permutex2var_epi8(th0, cw, th1);
				__m512i lo = _mm512_permutex2var_epi8(tl0, cw, tl1);
				hi = _mm512_ternarylogic_epi32(hi, cw, sgn,
							       0xF8); /* hi | (cw & sgn) */
				__m512bh va = (__m512bh)_mm512_permutex2var_epi8(lo, ia, hi);
				__m512bh vb = (__m512bh)_mm512_permutex2var_epi8(lo, ib, hi);
#pragma GCC unroll 8
				for (int m = 0; m < M; m++) {
					const uint16_t *xm = xb + (size_t)m * ldx + k;
					__m512i x0 = n >= 64 ? _mm512_loadu_si512((const void *)xm)
							     : _mm512_maskz_loadu_epi16(ma, xm);
					__m512i x1 =
					    n >= 64 ? _mm512_loadu_si512((const void *)(xm + 32))
						    : _mm512_maskz_loadu_epi16(mb, xm + 32);
					a[r][m] = _mm512_dpbf16_ps(a[r][m], va, (__m512bh)x0);
					b[r][m] = _mm512_dpbf16_ps(b[r][m], vb, (__m512bh)x1);
				}
			}
		}
#pragma GCC unroll 8
		for (int m = 0; m < M; m++) {
			__m512 sc = _mm512_set1_ps(sa[(size_t)m * lds + kb] * sw[kb]);
#pragma GCC unroll 4
			for (int r = 0; r < NR; r++)
				t[r][m] =
				    _mm512_fmadd_ps(_mm512_add_ps(a[r][m], b[r][m]), sc, t[r][m]);
		}
	}
#pragma GCC unroll 4
	for (int r = 0; r < NR; r++)
#pragma GCC unroll 8
		for (int m = 0; m < M; m++)
			acc[r * M + m] = _mm512_reduce_add_ps(t[r][m]);
}

static void row_bf16_avx512(const uint8_t *w, const uint16_t *xb, int ldx, int M, int K,
			    const float *sa, int lds, const float *sw, float *acc)
{
	switch (M) {
#define ROWB_CASE(r)                                                                               \
	case r:                                                                                    \
		rowb_t(w, 1, xb, ldx, r, K, sa, lds, sw, acc);                                     \
		break;
		KERN_M_CASES_7(ROWB_CASE)
#undef ROWB_CASE
	default:
		rowb_t(w, 1, xb, ldx, 8, K, sa, lds, sw, acc);
		break;
	}
}

/* row_bf16_avx512 with one input on nr <= KERN_NR consecutive weight rows w + r*K that share the
 * scales sw (one 128-row block): each row's sum with the same operations in the same order (the
 * same bits), the input's codes, the lookup tables and the block's scale product loaded once for
 * all of them, their reductions overlapping. */
static void rows_bf16_avx512(const uint8_t *w, int nr, const uint16_t *xb, int K, const float *sa,
			     const float *sw, float *acc)
{
#define CALL_NR(r) rowb_t(w, r, xb, K, 1, K, sa, 1, sw, acc)
	KERN_PER_M(nr, CALL_NR);
#undef CALL_NR
}

/* gemv_i8u8p on AVX-512 VNNI: a panel's step is four vectors of four rows' sixteen codes (one
 * row a 128-bit lane); an input's sixteen codes broadcast to the four lanes, vpdpbusd adds four
 * products into each int32 lane (exact: K * 127 * 255 < 2^31); a row's sum is its lane's four
 * words. Up to four inputs a pass share the code vectors. */
static inline __attribute__((always_inline)) void u8p_t(const int8_t *pq, int nkb,
							const uint8_t *xu, int ldx, const int M,
							int32_t *y, int ldy, const int32_t *qsum,
							int off)
{
	__m512i a[4][4];
#pragma GCC unroll 4
	for (int m = 0; m < M; m++)
#pragma GCC unroll 4
		for (int j = 0; j < 4; j++)
			a[m][j] = _mm512_setzero_si512();
	for (int kb = 0; kb < nkb; kb++) {
		const int8_t *g = pq + (size_t)kb * 256;
		__m512i c0 = _mm512_loadu_si512((const void *)g);
		__m512i c1 = _mm512_loadu_si512((const void *)(g + 64));
		__m512i c2 = _mm512_loadu_si512((const void *)(g + 128));
		__m512i c3 = _mm512_loadu_si512((const void *)(g + 192));
#pragma GCC unroll 4
		for (int m = 0; m < M; m++) {
			__m512i xb = _mm512_broadcast_i32x4(
			    _mm_loadu_si128((const __m128i *)(xu + (size_t)m * ldx + kb * 16)));
			a[m][0] = _mm512_dpbusd_epi32(a[m][0], xb, c0);
			a[m][1] = _mm512_dpbusd_epi32(a[m][1], xb, c1);
			a[m][2] = _mm512_dpbusd_epi32(a[m][2], xb, c2);
			a[m][3] = _mm512_dpbusd_epi32(a[m][3], xb, c3);
		}
	}
#pragma GCC unroll 4
	for (int m = 0; m < M; m++)
#pragma GCC unroll 4
		for (int j = 0; j < 4; j++) {
			/* each 128-bit lane's four words summed into its first */
			__m512i t = _mm512_add_epi32(a[m][j], _mm512_shuffle_epi32(a[m][j], 0x4E));
			t = _mm512_add_epi32(t, _mm512_shuffle_epi32(t, 0xB1));
			int32_t w[16];
			_mm512_storeu_si512((void *)w, t);
			for (int i = 0; i < 4; i++)
				y[(size_t)m * ldy + 4 * j + i] = w[4 * i] - off * qsum[4 * j + i];
		}
}

static void gemv_i8u8p_avx512(const int8_t *qp, const int32_t *qsum, int np, int K,
			      const uint8_t *xu, int ldx, int M, int off, int32_t *y, int ldy)
{
	int nkb = (K + 15) / 16;
	for (int p = 0; p < np; p++) {
		const int8_t *pq = qp + (size_t)p * nkb * 256;
		for (int m0 = 0; m0 < M; m0 += 4) {
			const uint8_t *xm = xu + (size_t)m0 * ldx;
			int32_t *ym = y + (size_t)m0 * ldy + p * 16;
			switch (M - m0 < 4 ? M - m0 : 4) {
			case 1:
				u8p_t(pq, nkb, xm, ldx, 1, ym, ldy, qsum + p * 16, off);
				break;
			case 2:
				u8p_t(pq, nkb, xm, ldx, 2, ym, ldy, qsum + p * 16, off);
				break;
			case 3:
				u8p_t(pq, nkb, xm, ldx, 3, ym, ldy, qsum + p * 16, off);
				break;
			default:
				u8p_t(pq, nkb, xm, ldx, 4, ym, ldy, qsum + p * 16, off);
				break;
			}
		}
	}
}

const struct kern_isa kern_isa_avx512bf16 = {
    .name = "avx512bf16",
    .quant_bf16 = quant_bf16_avx512,
    .decpack_bf16 = decpack_bf16_avx512,
    .tile_bf16 = tile_bf16_avx512,
    .row_bf16 = row_bf16_avx512,
    .rows_bf16 = rows_bf16_avx512,
    .gemv_i8u8p = gemv_i8u8p_avx512,
    .i8u8_xmax = 127,
};
