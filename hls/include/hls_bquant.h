/*
 * hls_bquant.h - the block-integer quantizer of mla_attn_lanes' FP8 datapath (rules F1 and F4 in
 * hls/mla_attn/mla_attn.h): a group of f32 values as signed integers of at most HLS_BQ_BITS
 * magnitude bits and one power-of-two scale 2^k, so that a product with an E4M3 code is an
 * exact integer and the scale is an exponent, not a divide.
 *
 * Rule: e = the binary exponent of the group's amax (floor(log2 amax); NaN elements ignored as
 * in hls_quant.h; -126 for a zero or subnormal amax, 127 for an infinite one); k = e -
 * HLS_BQ_BITS + 1, so every |x| / 2^k < 2^HLS_BQ_BITS; v = x / 2^k rounded to the nearest
 * integer, ties to even (exact: the scaling is a power of two), clamped to +-(2^HLS_BQ_BITS - 1)
 * (only the rounding of the amax itself can reach 2^HLS_BQ_BITS); a NaN element is 0 and an
 * infinite one the clamp. A value's error is at most 2^(k-1), 2^-HLS_BQ_BITS of the amax: with
 * HLS_BQ_BITS = 11 about 180 times finer than an E4M3 code's 2^-4 of its own magnitude is for
 * values near the amax, and for every value no worse than 2^-12 of the amax.
 * Header-only and synthesizable: integer shifts on the f32 fields, no libm, no divide.
 */
#ifndef MOECARD_HLS_BQUANT_H
#define MOECARD_HLS_BQUANT_H

#include <stdint.h>
#include "e4m3.h"

#ifndef HLS_BQ_BITS
#define HLS_BQ_BITS 11 /* magnitude bits of a block integer (12-bit two's complement) */
#endif
#define HLS_BQ_MAX ((1 << HLS_BQ_BITS) - 1)

/* k of a group from its amax (|x| of its elements, NaN never the max). */
static inline int hls_bq_exp(float amax)
{
	int e = (int)((e4m3_f32_bits(amax) >> 23) & 0xFF) - 127;
	e = e < -126 ? -126 : e > 127 ? 127 : e;
	return e - HLS_BQ_BITS + 1;
}

/* x / 2^k rounded to the nearest integer, ties to even, clamped to +-HLS_BQ_MAX; NaN -> 0. */
static inline int32_t hls_bq_int(float x, int k)
{
	uint32_t u = e4m3_f32_bits(x), E = (u >> 23) & 0xFF, M = u & 0x7FFFFFu;
	uint64_t q; /* |x| / 2^k rounded */
	if (E == 0xFF) {
		if (M)
			return 0;
		q = HLS_BQ_MAX; /* an infinity: the clamp */
	} else {
		/* |x| = M' 2^(E' - 150) with M' the 24-bit significand (E' = 1 for subnormals);
		 * |x| / 2^k = M' 2^-r */
		uint32_t Mf = E ? M | 0x800000u : M;
		int r = 150 + k - (int)(E ? E : 1);
		if (r <= 0) /* an integer (above the clamp for every k hls_bq_exp gives) */
			q = (uint64_t)Mf << (r < -32 ? 32 : -r);
		else if (r > 25)
			q = 0;
		else {
			uint32_t rem = Mf & ((1u << r) - 1), half = 1u << (r - 1);
			q = Mf >> r;
			if (rem > half || (rem == half && (q & 1)))
				q++;
		}
	}
	int32_t v = q > (uint64_t)HLS_BQ_MAX ? HLS_BQ_MAX : (int32_t)q;
	return (u >> 31) ? -v : v;
}

#endif
