/*
 * vec_ops.h - the card's vector kernel: RMSNorm, RoPE (interleaved pairs, YaRN tables),
 * dynamic 1x128 activation quantization to E4M3, SiLU*mul, residual add and row softmax, on rows
 * of f32 in card memory. The firmware starts it for the vector opcodes of firmware/abi; the
 * emulated card calls vec_ops() as C; Vitis HLS synthesizes the same source
 * (hls/vec_ops/run_hls.tcl).
 *
 * Lanes: each loop handles VEC_LANES f32 per cycle (one 512-bit beat). Reductions are defined
 * bit for bit: lane l of beat b adds into partial sum [b % VEC_ILV][l], and the VEC_ILV x
 * VEC_LANES partials are then added by halving (p[i] += p[i + half], half = 64, 32, ..., 1).
 * exp / rsqrt / sigmoid are hls_math.h's own code.
 */
#ifndef MOECARD_VEC_OPS_H
#define MOECARD_VEC_OPS_H

#include <stdint.h>
#include "hls_timing.h"

#define VEC_LANES 16 /* f32 lanes per beat (512-bit AXI) */
#define VEC_ILV 8    /* interleaved partial sums per lane (covers the f32 adder latency) */
/* exp units (with their divide): SOFTMAX's sum and write passes and SILU_MUL's write pass take
 * VEC_EXP elements a cycle, every other pass a beat of VEC_LANES. */
#ifndef VEC_EXP
#define VEC_EXP 2
#endif
#define VEC_MAX_N 262144 /* longest accepted row */

enum vec_op {
	VEC_OP_RMSNORM = 1,   /* y = (a * rsqrt(mean(a^2) + eps)) * b;  b = weight [n] */
	VEC_OP_ROPE = 2,      /* pairs (a[2i], a[2i+1]) of the first n elements rotated by the table
			       row b + pos[r] * n = {cos_0, sin_0, cos_1, sin_1, ...} [n/2][2]:
			       y0 = a0 c - a1 s, y1 = a0 s + a1 c. Only those n elements of y are
			       written; y may equal a. n must be even. */
	VEC_OP_ACT_QUANT = 3, /* q [rows][n] codes, qs [rows][ceil(n/128)] (hls_quant.h rule) */
	VEC_OP_SILU_MUL = 4,  /* y = hls_siluf(a) * b  (b row r at b + r * lda) */
	VEC_OP_ADD = 5,	      /* y = a + b             (b row r at b + r * lda) */
	VEC_OP_SOFTMAX = 6,   /* y = e^(a - max) / sum e^(a - max) per row */
	VEC_OP_GATHER = 7,    /* y[r] = a[pos[r]] (rows of a by index, pos[r] < src_rows) */
	VEC_OP_COMBINE = 8,   /* y[r] = y[r] + b[r k + j] * a[pos[r k + j]] for j = 0..k-1 in order:
			       f32 multiply then f32 add per term, y read and written in place
			       (the MoE combine in router order; n <= VEC_COMBINE_MAX_N) */
};
#define VEC_COMBINE_MAX_N 16384 /* COMBINE's on-chip row accumulator (64 KB) */
#define VEC_COMBINE_MAX_K 64
#define VEC_FLAG_UE8M0 0x1u /* ACT_QUANT: power-of-two scales */

/*
 * vec_ops - the kernel top. a [rows][lda] f32 input, b second operand (see enum), y [rows][ldy]
 * f32 output, q/qs act-quant outputs, pos [rows] RoPE positions (>= 0). GATHER and COMBINE read
 * a as [src_rows][lda] and pos as row indices ([rows], [rows][k] with COMBINE; b is then the
 * f32 weights [rows][k]); every index is checked (0 <= idx < src_rows) before anything is
 * written. k and src_rows are 0 for the other ops.
 * NaN behaviour: elementwise ops propagate NaN per element; a NaN in a row makes that row's
 * RMSNorm and softmax outputs NaN; ACT_QUANT encodes NaN elements as 0x7F and ignores them for
 * the group amax. RMSNorm sums squares in f32: when that sum overflows (|a| around 1e19 and up)
 * the row's output is 0, as an f32 reference would give.
 * Returns 0, or -EINVAL for an unknown op or flag, rows < 1, n < 1 or > VEC_MAX_N, lda/ldy < n,
 * an odd RoPE n, a negative position, an index out of range, k outside 1..VEC_COMBINE_MAX_K
 * (COMBINE), or a NULL pointer the op needs.
 */
int vec_ops(int op, const float *a, const float *b, float *y, uint8_t *q, float *qs,
	    const int32_t *pos, int rows, int n, int lda, int ldy, float eps, uint32_t flags, int k,
	    int src_rows);

/* Modeled cost of one vec_ops call. */
struct vec_ops_cost {
	uint64_t it[HLS_L_N]; /* pipelined-loop iterations (HLS_L_VEC_*), count */
	uint64_t bytes;	      /* bytes moved over all bundles */
	uint64_t cycles;      /* modeled cycles */
};

/* vec_ops_cycles - timing model: per row, the passes of VEC_LANES-wide II=1 loops plus their
 * depths, against the busiest bundle's memory time (a, b and y are separate bundles).
 * Returns cycles > 0 or -EINVAL (same argument rules as vec_ops; pointers are not checked). */
int64_t vec_ops_cycles(const struct hls_build *bld, int op, int rows, int n, uint32_t flags,
		       struct vec_ops_cost *c);
/* vec_ops_cycles2 - the same with COMBINE's k (vec_ops_cycles is it with k = 1). */
int64_t vec_ops_cycles2(const struct hls_build *bld, int op, int rows, int n, int k, uint32_t flags,
			struct vec_ops_cost *c);

/*
 * vec_rope_yarn_table - host-side helper (double precision libm; not synthesized): fills
 * tab [n_pos][d/2][2] with cos/sin of pos * theta_i, theta_i = base^(-2i/d) blended by YaRN
 * (docs/model.md, YaRN) when factor > 1, times mscale_ratio. Also returns low/high of the ramp
 * when they are not NULL. Returns 0 or -EINVAL (d odd or < 2, n_pos < 1, base <= 1).
 */
int vec_rope_yarn_table(float *tab, int n_pos, int d, double base, double factor, int orig_max_pos,
			double beta_fast, double beta_slow, double mscale_ratio, int *low,
			int *high);

#endif
