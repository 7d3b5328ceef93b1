/*
 * hls_quant.h - the dynamic 1x128 activation quantizer of docs/numerics.md, shared by the
 * vec_ops ACT_QUANT op, the fp8_gemm quantize-inside input path and the FP8 KV-cache append of
 * mla_attn, so all three produce the same codes and scales bit for bit (and the same as the host
 * engine's kern_act_quant).
 *
 * Rule: s = max(amax, 1e-4) / 448 in f32; with ue8m0 (V3.1) s is rounded UP to a power of two
 * (exponent + 1 when any mantissa bit is set); q = e4m3(x / s) (f32 division, RNE, saturating).
 * NaN: amax ignores NaN elements (compare-and-select), and a NaN element encodes to 0x7F.
 * +-inf: amax = inf, s = inf, every element of the group divides to 0 or NaN.
 */
#ifndef MOECARD_HLS_QUANT_H
#define MOECARD_HLS_QUANT_H

#include <stdint.h>
#include "e4m3.h"

#define HLS_QUANT_GROUP 128 /* channels per activation scale */

/* |x| by clearing the sign bit (NaN stays NaN). */
static inline float hls_fabsf(float x)
{
	return e4m3_bits_f32(e4m3_f32_bits(x) & 0x7FFFFFFFu);
}

/* Running amax step: NaN never wins the compare. */
static inline float hls_amax_step(float amax, float x)
{
	float a = hls_fabsf(x);
	return a > amax ? a : amax;
}

/* Scale of a group from its amax. */
static inline float hls_quant_scale(float amax, int ue8m0)
{
	float s = (amax > 1e-4f ? amax : 1e-4f) / 448.0f;
	if (ue8m0) {
		uint32_t u = e4m3_f32_bits(s);
		if (u & 0x7FFFFFu)
			u = (u & 0xFF800000u) + 0x800000u;
		s = e4m3_bits_f32(u);
	}
	return s;
}

/* Quantizes n <= 128 values of one group: q[n] codes, returns the scale. */
static inline float hls_quant_group(const float *x, int n, uint8_t *q, int ue8m0)
{
	float amax = 0.0f, s;
	for (int i = 0; i < n; i++)
		amax = hls_amax_step(amax, x[i]);
	s = hls_quant_scale(amax, ue8m0);
	for (int i = 0; i < n; i++)
		q[i] = e4m3_encode(x[i] / s);
	return s;
}

#endif
