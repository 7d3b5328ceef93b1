/*
 * hls_rms.h - RMSNorm's row scale, shared by the vec_ops RMSNORM op and the fp8_gemv kernel's
 * normalizing x loader (FP8_GEMV_RMSNORM), so a norm folded into a GEMV's input stage gives the
 * same f32 values bit for bit as the separate RMSNORM command it replaces.
 *
 * Rule (docs/numerics.md): element k of a row adds k^2 into partial sum
 * p[((k / HLS_RMS_LANES) % HLS_RMS_ILV) * HLS_RMS_LANES + k % HLS_RMS_LANES] in ascending k (the
 * 16 lanes of a 512-bit beat, 8 interleaved sums a lane to cover the adder's latency); the
 * partials are added by halving (p[i] += p[i + half], half = 64, 32, ..., 1); then
 * r = rsqrt(ss / n + eps) (hls_rsqrtf) and y[k] = (x[k] * r) * w[k].
 */
#ifndef MOECARD_HLS_RMS_H
#define MOECARD_HLS_RMS_H

#include "hls_math.h"

#define HLS_RMS_LANES 16 /* f32 lanes of a 512-bit beat */
#define HLS_RMS_ILV 8	 /* interleaved partial sums per lane */
#define HLS_RMS_P (HLS_RMS_LANES * HLS_RMS_ILV)

/* Zeroes the partial sums. */
static inline void hls_rms_clear(float p[HLS_RMS_P])
{
	for (int i = 0; i < HLS_RMS_P; i++)
		p[i] = 0.0f;
}

/* The partial sum element k adds into. */
static inline int hls_rms_slot(int k)
{
	return ((k / HLS_RMS_LANES) % HLS_RMS_ILV) * HLS_RMS_LANES + k % HLS_RMS_LANES;
}

/* Fixed-order sum of the partials (halving tree); p is consumed. */
static inline float hls_rms_reduce(float p[HLS_RMS_P])
{
	for (int half = HLS_RMS_P / 2; half >= 1; half /= 2)
		for (int i = 0; i < half; i++)
			p[i] = p[i] + p[i + half];
	return p[0];
}

/* The row's scale from its sum of squares over n elements. */
static inline float hls_rms_scale(float ss, int n, float eps)
{
	return hls_rsqrtf(ss / (float)n + eps);
}

/* One normalized element. */
static inline float hls_rms_apply(float x, float r, float w)
{
	return (x * r) * w;
}

#endif
