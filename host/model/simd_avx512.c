/*
 * simd_avx512.c - AVX-512 (F, BW, VL) row-dot primitives for kernels.h. Compiled with AVX-512
 * flags (host.mk) and called only when kern_isa_get() found the CPU supports them.
 * E4M3 -> f32 decoding goes through binary16: the code's sign moves to bit 15 and its 7
 * exponent+mantissa bits to bits 13..7, which is the same number times 2^-8 (subnormals included,
 * decoded by the hardware's exact vcvtph2ps); the 2^8 is applied once per block. NaN codes decode
 * to a finite value here (checkpoints hold none; kern_act_quant never produces them from finite x).
 */
#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include "model/kernels.h"
#include "model/simd_avx512.h"

#ifndef MOE_PF_BYTES
#define MOE_PF_BYTES 1024 /* software prefetch distance in the GEMV streams */
#endif

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
#pragma GCC unroll 4
	for (int m = 0; m < M; m++)
		a0[m] = a1[m] = _mm512_setzero_ps();
	int k = 0;
	for (; k + 32 <= n; k += 32) {
		/* software prefetch runs ahead across 4 KiB pages of the mmapped checkpoint, which
		 * the hardware stream prefetcher does not cross */
		_mm_prefetch((const char *)(w + k) + MOE_PF_BYTES, _MM_HINT_T0);
		__m512 w0 = bf16x16(w + k, 0xFFFF), w1 = bf16x16(w + k + 16, 0xFFFF);
#pragma GCC unroll 4
		for (int m = 0; m < M; m++) {
			const float *xm = x + (size_t)m * ldx + k;
			a0[m] = _mm512_fmadd_ps(w0, _mm512_loadu_ps(xm), a0[m]);
			a1[m] = _mm512_fmadd_ps(w1, _mm512_loadu_ps(xm + 16), a1[m]);
		}
	}
	for (; k < n; k += 16) {
		int rem = n - k;
		__mmask16 mk = lanes16(rem);
		__m512 wd = bf16x16(w + k, mk);
#pragma GCC unroll 4
		for (int m = 0; m < M; m++)
			a0[m] = _mm512_fmadd_ps(
			    wd, _mm512_maskz_loadu_ps(mk, x + (size_t)m * ldx + k), a0[m]);
	}
#pragma GCC unroll 4
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

static void dec_fp8_avx512(const uint8_t *w, int K, const float *sw, float *out)
{
	for (int kb = 0; kb * 128 < K; kb++) {
		int k0 = kb * 128, len = K - k0 < 128 ? K - k0 : 128;
		__m512 sc = _mm512_set1_ps(sw[kb] * 256.0f);
		for (int k = 0; k < len; k += 16) {
			int rem = len - k;
			__mmask16 mk = lanes16(rem);
			_mm512_mask_storeu_ps(out + k0 + k, mk,
					      _mm512_mul_ps(dec16(w + k0 + k, mk), sc));
		}
	}
}

/*
 * The decode GEMV on an input prepared by prep_fp8_avx512, without binary16 conversion (the
 * placing of simd_avx2.c's rowp_fp8_t, 64 codes a step): an E4M3 code's bits placed as f32 bits,
 * sign to bit 31 and the seven others to bits 26..20, are the f32 of its value * 2^-120 exactly
 * (f32 subnormals for E4M3's); the input is scaled by 2^(112-d), so each product is
 * x * e4m3 / 2^(8+d) exactly, and the caller multiplies the row's sum by 2^d. The sixteen-bit
 * words of 64 loaded codes are (odd code << 8 | even code): an arithmetic shift right by four
 * (after a shift left by eight for the even code) and the mask 0x87F0 leave the high half of the
 * f32, so the four vectors of a step hold codes 4i + 0..3 of lane i and prep_fp8_avx512 stores
 * each whole 64-value chunk of x as xp[64t + 16j + i] = x[64t + 4i + j]. Per 128-block four
 * accumulators per row (one per vector), added as (a + b) + (c + d) and scaled by sw[kb] (times
 * 256, exact) into one running vector per row, summed across lanes once. The same operations for
 * every M: a row's result does not depend on the rows beside it. NR <= KERN_NR consecutive weight rows
 * w + r*K (one block row of scales sw) against M inputs, acc[r*M + m]: several weight rows a call
 * (NR > 1, M = 1: rows_fp8) or several inputs (NR = 1: row_fp8), each sum the same operations.
 */
static inline __attribute__((always_inline)) void rowp512_t(const uint8_t *w, const int NR,
							    const float *x, int ldx, const int M,
							    int K, const float *sw, float *acc)
{
	const __m512i mk = _mm512_set1_epi32((int)0x87F00000);
	__m512 t[KERN_NR][KERN_MB];
	float tail[KERN_NR][KERN_MB];
#pragma GCC unroll 4
	for (int r = 0; r < NR; r++)
#pragma GCC unroll 4
		for (int m = 0; m < M; m++) {
			t[r][m] = _mm512_setzero_ps();
			tail[r][m] = 0;
		}
	for (int k0 = 0; k0 < K; k0 += 128) {
		int k1 = K - k0 < 128 ? K : k0 + 128, k = k0;
		__m512 a[KERN_NR][KERN_MB], b[KERN_NR][KERN_MB], c[KERN_NR][KERN_MB],
		    d[KERN_NR][KERN_MB];
#pragma GCC unroll 4
		for (int r = 0; r < NR; r++)
#pragma GCC unroll 4
			for (int m = 0; m < M; m++)
				a[r][m] = b[r][m] = c[r][m] = d[r][m] = _mm512_setzero_ps();
		if (NR == 1) {
			/* the stream's next lines, ahead of the hardware prefetcher (which stops at 4
			 * KiB pages) */
			_mm_prefetch((const char *)(w + k0) + MOE_PF_BYTES, _MM_HINT_T0);
			_mm_prefetch((const char *)(w + k0) + MOE_PF_BYTES + 64, _MM_HINT_T0);
		}
		for (; k + 64 <= k1; k += 64) {
#pragma GCC unroll 4
			for (int r = 0; r < NR; r++) {
				/* rows read side by side are no stream for the hardware prefetcher:
				 * the next NR rows a line a step per row, in address order */
				if (NR > 1)
					_mm_prefetch((const char *)(w + (size_t)NR * K +
								    (size_t)(k / 64 * NR + r) * 64),
						     _MM_HINT_T0);
				__m512i cw =
				    _mm512_loadu_si512((const void *)(w + (size_t)r * K + k));
				__m512i o = _mm512_srai_epi16(cw, 4);
				__m512i e = _mm512_srai_epi16(_mm512_slli_epi16(cw, 8), 4);
				__m512 v0 = _mm512_castsi512_ps(
				    _mm512_and_si512(_mm512_slli_epi32(e, 16), mk));
				__m512 v1 = _mm512_castsi512_ps(
				    _mm512_and_si512(_mm512_slli_epi32(o, 16), mk));
				__m512 v2 = _mm512_castsi512_ps(_mm512_and_si512(e, mk));
				__m512 v3 = _mm512_castsi512_ps(_mm512_and_si512(o, mk));
#pragma GCC unroll 4
				for (int m = 0; m < M; m++) {
					const float *xm = x + (size_t)m * ldx + k;
					a[r][m] = _mm512_fmadd_ps(v0, _mm512_loadu_ps(xm), a[r][m]);
					b[r][m] =
					    _mm512_fmadd_ps(v1, _mm512_loadu_ps(xm + 16), b[r][m]);
					c[r][m] =
					    _mm512_fmadd_ps(v2, _mm512_loadu_ps(xm + 32), c[r][m]);
					d[r][m] =
					    _mm512_fmadd_ps(v3, _mm512_loadu_ps(xm + 48), d[r][m]);
				}
			}
		}
		float s = sw[k0 / 128] * 256.0f;
		__m512 vs = _mm512_set1_ps(s);
#pragma GCC unroll 4
		for (int r = 0; r < NR; r++)
#pragma GCC unroll 4
			for (int m = 0; m < M; m++) {
				__m512 bs = _mm512_add_ps(_mm512_add_ps(a[r][m], b[r][m]),
							  _mm512_add_ps(c[r][m], d[r][m]));
				t[r][m] = _mm512_fmadd_ps(bs, vs, t[r][m]);
				if (k < k1) { /* the row's last K % 64 values, in order */
					float dd = 0;
					for (int i = k; i < k1; i++)
						dd += kern_placed1(w[(size_t)r * K + i]) *
						      x[(size_t)m * ldx + i];
					tail[r][m] += dd * s;
				}
			}
	}
#pragma GCC unroll 4
	for (int r = 0; r < NR; r++)
#pragma GCC unroll 4
		for (int m = 0; m < M; m++)
			acc[r * M + m] = _mm512_reduce_add_ps(t[r][m]) + tail[r][m];
}

static void rowp_fp8_avx512(const uint8_t *w, const float *x, int ldx, int M, int K,
			    const float *sw, float *acc)
{
#define CALL_M(m) rowp512_t(w, 1, x, ldx, m, K, sw, acc)
	KERN_PER_M(M, CALL_M);
#undef CALL_M
}

/* rowp_fp8_avx512 with one input on nr <= KERN_NR consecutive weight rows w + r*K that share the
 * scales sw (one 128-row block): each row's sum with the same operations in the same order (the
 * same bits), the input's vectors and the block's scale loaded once for all of them, their
 * reductions overlapping. */
static void rows_fp8_avx512(const uint8_t *w, int nr, const float *x, int K, const float *sw,
			    float *acc)
{
#define CALL_NR(r) rowp512_t(w, r, x, K, 1, K, sw, acc)
	KERN_PER_M(nr, CALL_NR);
#undef CALL_NR
}

/* xp in rowp512_t's layout: each whole 64-value chunk as xp[64t + 16j + i] = x[64t + 4i + j]
 * within each 128-block (a block's last K % 64 values in order), all times 2^(112-d); returns
 * 2^d (d = 0 unless max |x| >= 2^15). */
static float prep_fp8_avx512(const float *x, int K, float *xp)
{
	__m512 am = _mm512_setzero_ps();
	int k = 0;
	for (; k + 16 <= K; k += 16)
		am = _mm512_max_ps(am, _mm512_abs_ps(_mm512_loadu_ps(x + k)));
	float amax = _mm512_reduce_max_ps(am);
	for (; k < K; k++) {
		float a = x[k] < 0 ? -x[k] : x[k];
		amax = a > amax ? a : amax;
	}
	int d = kern_prep_shift(amax);
	float s = ldexpf(1.0f, 112 - d);
	for (int k0 = 0; k0 < K; k0 += 128) {
		int k1 = K - k0 < 128 ? K : k0 + 128;
		for (k = k0; k + 64 <= k1; k += 64)
			for (int i = 0; i < 16; i++)
				for (int j = 0; j < 4; j++)
					xp[k + 16 * j + i] = x[k + 4 * i + j] * s;
		for (; k < k1; k++)
			xp[k] = x[k] * s;
	}
	return ldexpf(1.0f, d);
}

/* MB input rows against a packed tile (16 outputs a row, one vector): MB accumulators, the
 * weight line loaded once per k for all MB rows, each input element broadcast; one FMA chain per
 * output in ascending k, as tile_p16_scalar and the AVX2 tile (the same bits). */
static inline __attribute__((always_inline)) void p16_rows512(const float *wp, int nw,
							      const float *x, int ldx, const int MB,
							      int K, float *y, int ldy, int acc)
{
	__m512 c[8];
#pragma GCC unroll 8
	for (int m = 0; m < MB; m++)
		c[m] = _mm512_setzero_ps();
	for (int k = 0; k < K; k++) {
		__m512 wv = _mm512_loadu_ps(wp + (size_t)k * KERN_PW);
#pragma GCC unroll 8
		for (int m = 0; m < MB; m++)
			c[m] = _mm512_fmadd_ps(wv, _mm512_set1_ps(x[(size_t)m * ldx + k]), c[m]);
	}
#pragma GCC unroll 8
	for (int m = 0; m < MB; m++)
		tile_store16(y + (size_t)m * ldy, nw, c[m], acc);
}

/* Eight input rows at a time (8 accumulators, the weight line and broadcasts): twelve ran at
 * a third of the speed where the rows are 8 KiB apart (K = 2048), their lines all in one set of
 * an 8-way L1. */
static void tile_p16_avx512(const float *wp, int nw, const float *x, int ldx, int M, int K,
			    float *y, int ldy, int acc)
{
	int m = 0;
	for (; m + 8 <= M; m += 8)
		p16_rows512(wp, nw, x + (size_t)m * ldx, ldx, 8, K, y + (size_t)m * ldy, ldy, acc);
	const float *xm = x + (size_t)m * ldx;
	float *ym = y + (size_t)m * ldy;
	switch (M - m) {
#define P16_CASE(r)                                                                                \
	case r:                                                                                    \
		p16_rows512(wp, nw, xm, ldx, r, K, ym, ldy, acc);                                  \
		break;
		KERN_M_CASES_7(P16_CASE)
#undef P16_CASE
	}
}

/* Packed BF16 panels (kern_bf16p_pack) against M inputs, P (1 or 2) panels at once: per k a
 * panel's 16 weights widened into one vector (lane i is the panel's row kern_bf16p_row[i]), each
 * input broadcast into one FMA per panel: one FMA chain per output in ascending k from +0, the
 * AVX2 kernel's operations on whole panels (the same bits); M <= 8 inputs a pass. */
static inline __attribute__((always_inline)) void gemv_bf16p512_m(const uint16_t *wp,
								  const float *x, int ldx,
								  const int M, const int P, int K,
								  float *y, int ldy, int nw)
{
	__m512 acc[8][2];
	const size_t ps = (size_t)K * KERN_PW;
#pragma GCC unroll 8
	for (int m = 0; m < M; m++)
#pragma GCC unroll 2
		for (int p = 0; p < P; p++)
			acc[m][p] = _mm512_setzero_ps();
	for (int k = 0; k < K; k++) {
		__m512 w[2];
#pragma GCC unroll 2
		for (int p = 0; p < P; p++) {
			__m256i v = _mm256_loadu_si256(
			    (const __m256i *)(wp + (size_t)p * ps + (size_t)k * KERN_PW));
			w[p] = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(v), 16));
		}
#pragma GCC unroll 8
		for (int m = 0; m < M; m++) {
			__m512 xb = _mm512_set1_ps(x[(size_t)m * ldx + k]);
#pragma GCC unroll 2
			for (int p = 0; p < P; p++)
				acc[m][p] = _mm512_fmadd_ps(w[p], xb, acc[m][p]);
		}
	}
	/* lane i holds row kern_bf16p_row[i], an involution: row j is lane kern_bf16p_row[j] */
	const __m512i ord = _mm512_setr_epi32(0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, 12, 13, 14, 15);
#pragma GCC unroll 8
	for (int m = 0; m < M; m++)
#pragma GCC unroll 2
		for (int p = 0; p < P; p++) {
			int n = nw - p * KERN_PW > KERN_PW ? KERN_PW : nw - p * KERN_PW;
			__mmask16 mk = lanes16(n);
			_mm512_mask_storeu_ps(y + (size_t)m * ldy + p * KERN_PW, mk,
					      _mm512_permutexvar_ps(ord, acc[m][p]));
		}
}

static void gemv_bf16p_avx512(const uint16_t *wp, int nw, const float *x, int ldx, int M, int K,
			      float *y, int ldy)
{
	if (nw > KERN_PW && M > 8) { /* two panels, one after the other */
		gemv_bf16p_avx512(wp, KERN_PW, x, ldx, M, K, y, ldy);
		gemv_bf16p_avx512(wp + (size_t)K * KERN_PW, nw - KERN_PW, x, ldx, M, K, y + KERN_PW,
				  ldy);
		return;
	}
	/* inputs in passes of at most eight (two panels: four), balanced */
	int cap = 8, nb = (M + cap - 1) / cap;
	for (int b = 0, m0 = 0; b < nb; b++) {
		int mb = (M - m0 + (nb - b) - 1) / (nb - b);
		const float *xm = x + (size_t)m0 * ldx;
		float *ym = y + (size_t)m0 * ldy;
#define CALL_M(mm, pp) gemv_bf16p512_m(wp, xm, ldx, mm, pp, K, ym, ldy, nw)
		if (nw > KERN_PW && mb <= 4)
			mb == 1	  ? CALL_M(1, 2)
			: mb == 2 ? CALL_M(2, 2)
			: mb == 3 ? CALL_M(3, 2)
				  : CALL_M(4, 2);
		else if (nw > KERN_PW)
			mb == 5	  ? CALL_M(5, 2)
			: mb == 6 ? CALL_M(6, 2)
			: mb == 7 ? CALL_M(7, 2)
				  : CALL_M(8, 2);
		else if (mb <= 4)
			mb == 1	  ? CALL_M(1, 1)
			: mb == 2 ? CALL_M(2, 1)
			: mb == 3 ? CALL_M(3, 1)
				  : CALL_M(4, 1);
		else
			mb == 5	  ? CALL_M(5, 1)
			: mb == 6 ? CALL_M(6, 1)
			: mb == 7 ? CALL_M(7, 1)
				  : CALL_M(8, 1);
#undef CALL_M
		m0 += mb;
	}
}

/* The FMAs of axpy_f32_avx2 on the same elements (sixteen, then eight at a time) and its scalar
 * tail (a multiply and an add) on the last n % 8: the same bits as AVX2's axpy4_f32, which this
 * path runs. */
static void axpy_f32_avx512(float *y, float a, const float *x, int n)
{
	__m512 va = _mm512_set1_ps(a);
	int k = 0;
	for (; k + 16 <= n; k += 16)
		_mm512_storeu_ps(
		    y + k, _mm512_fmadd_ps(va, _mm512_loadu_ps(x + k), _mm512_loadu_ps(y + k)));
	if (k + 8 <= n) {
		_mm256_storeu_ps(y + k,
				 _mm256_fmadd_ps(_mm512_castps512_ps256(va), _mm256_loadu_ps(x + k),
						 _mm256_loadu_ps(y + k)));
		k += 8;
	}
	for (; k < n; k++)
		y[k] += a * x[k];
}

/* x / s rounded to E4M3 (e4m3_rne512), times s: e4m3(x/s)*s. */
static void roundtrip_fp8_avx512(const float *x, int n, float s, float *xr)
{
	const __m512 vs = _mm512_set1_ps(s);
	for (int k = 0; k < n; k += 16) {
		__mmask16 mk = lanes16(n - k);
		__m512 r = e4m3_rne512(_mm512_div_ps(_mm512_maskz_loadu_ps(mk, x + k), vs));
		_mm512_mask_storeu_ps(xr + k, mk, _mm512_mul_ps(r, vs));
	}
}

/* gemv_i8p: per panel and input sixteen accumulators, one a row; a step widens the sixteen
 * codes of each row's group to f32 (exact) against the input's group (masked past K). M inputs
 * one after another over the panel (the later ones from the cache). */
static void gemv_i8p_avx512(const int8_t *qp, const float *s, int np, int K, const float *x,
			    int ldx, int M, float *y, int ldy)
{
	int nkb = (K + 15) / 16;
	for (int p = 0; p < np; p++) {
		const int8_t *pq = qp + (size_t)p * nkb * 256;
		for (int m = 0; m < M; m++) {
			const float *xm = x + (size_t)m * ldx;
			__m512 a[16];
#pragma GCC unroll 16
			for (int i = 0; i < 16; i++)
				a[i] = _mm512_setzero_ps();
			for (int kb = 0; kb < nkb; kb++) {
				__mmask16 mk = K - kb * 16 >= 16
						   ? (__mmask16)0xFFFF
						   : (__mmask16)((1u << (K - kb * 16)) - 1);
				__m512 xv = _mm512_maskz_loadu_ps(mk, xm + kb * 16);
				const int8_t *g = pq + (size_t)kb * 256;
#pragma GCC unroll 16
				for (int i = 0; i < 16; i++)
					a[i] = _mm512_fmadd_ps(
					    _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(
						_mm_loadu_si128((const __m128i *)(g + i * 16)))),
					    xv, a[i]);
			}
#pragma GCC unroll 16
			for (int i = 0; i < 16; i++)
				y[(size_t)m * ldy + p * 16 + i] =
				    _mm512_reduce_add_ps(a[i]) * s[p * 16 + i];
		}
	}
}

const struct kern_isa kern_isa_avx512 = {
    .name = "avx512",
    .dot_bf16 = dot_bf16_avx512,
    .row_fp8 = rowp_fp8_avx512,
    .rows_fp8 = rows_fp8_avx512,
    .prep_fp8 = prep_fp8_avx512,
    .tile_p16 = tile_p16_avx512,
    .gemv_bf16p = gemv_bf16p_avx512,
    .dec_fp8 = dec_fp8_avx512,
    .axpy_f32 = axpy_f32_avx512,
    .roundtrip_fp8 = roundtrip_fp8_avx512,
    .gemv_i8p = gemv_i8p_avx512,
};
