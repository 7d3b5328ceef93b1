/*
 * fp8_gemm.h - the card's block-scaled FP8 GEMM kernel, y = act(x) . W^T.
 *
 * Data flow: the host/firmware places x (E4M3 codes + 1x128 scales, or f32/bf16 rows to be
 * quantized inside), W (E4M3 codes [N][K] + weight_scale_inv [ceil(N/128)][ceil(K/128)]) and y in
 * card memory (one HBM pseudo-channel per m_axi bundle); a GEMM_FP8 command starts fp8_gemm(),
 * which the emulated card calls as this C function and Vitis HLS synthesizes (hls/fp8_gemm/run_hls.tcl).
 *
 * Numerics (docs/numerics.md, exact rounding in hls/README.md "GEMM numerics"):
 *   D(m,n,kb) = sum over the block of e4m3_fixed(x) * e4m3_fixed(w)   (int64, exact, 2^-18 units)
 *   s        = f32( sa[m][kb] * sw[n/128][kb] )
 *   t        = f32( f32(D) * s )                 f32(D): D * 2^-18 rounded once to nearest even
 *   acc      = f32( acc + t ), kb ascending, acc starting at +0
 * Every tiling (TM, TN, MB) gives the same bits. NaN E4M3 codes (S.1111.111) in x or W count as 0
 * in D (the fixed-point adder tree has no NaN); NaN or inf scales propagate through s.
 *
 * FP8_GEMM_ACT_F32 (with FP8_GEMM_X_F32): x stays f32, NOT quantized (docs/model.md, MLA: the
 * absorbed products W_UK^T q_nope and W_UV lat). Per 128-block kb, with j = k - 128 kb (0..127):
 *   p_k      = f32( x[m,k] * e4m3(w[n,k]) )     one f32 multiply (e4m3 exact in f32, NaN code = 0)
 *   s_l      = f32 sum of p_k over j = l, l+8, l+16, ... ascending, s_l starting at +0 (l = 0..7:
 *              FP8_GEMM_FL partial sums, one per slot of the f32 adder's pipeline)
 *   P        = ((s_0 + s_4) + (s_2 + s_6)) + ((s_1 + s_5) + (s_3 + s_7))   (halving tree)
 *   t        = f32( P * sw[n/128][kb] );  acc = f32( acc + t ), kb ascending, acc starting at +0
 * Again every tiling gives the same bits; NaN/inf in x propagate (IEEE f32 arithmetic).
 *
 * Epilogue, per output element, in this order (f32 ops):
 *   v = acc                           or v = hls_siluf(acc_W) * acc_W2 with FP8_GEMM_SILU_MUL
 *   v = y_old + route_w[m] * v        with FP8_GEMM_ACCUM   (f32 output only)
 *   v = v + res[m][n]                 with FP8_GEMM_RESIDUAL
 *   y = v, or bf16(v) (RNE) with FP8_GEMM_Y_BF16
 */
#ifndef MOECARD_FP8_GEMM_H
#define MOECARD_FP8_GEMM_H

#include <stdint.h>
#include "hls_timing.h"

/* Build parameters (hls/fp8_gemm/build.cfg holds the same defaults for bitstream/). */
#ifndef FP8_GEMM_TM
#define FP8_GEMM_TM 8 /* PE array rows (x rows per m-tile) */
#endif
#ifndef FP8_GEMM_TN
#define FP8_GEMM_TN 64 /* PE array columns (W rows per n-tile); divides 128 */
#endif
#ifndef FP8_GEMM_MB
#define FP8_GEMM_MB 128 /* x rows held on chip per W tile (multiple of TM) */
#endif
#ifndef FP8_GEMM_AXI_BITS
#define FP8_GEMM_AXI_BITS 512 /* m_axi width */
#endif
/* SiLU units of the epilogue (hls_siluf: an exp, an add, a divide, a multiply by the up value),
 * shared by the output beat's lanes: a SILU_MUL store computes FP8_GEMM_SILU outputs a cycle, any
 * other store a beat a cycle. The store overlaps the next tile's steps (ping-pong accumulators). */
#ifndef FP8_GEMM_SILU
#define FP8_GEMM_SILU 2
#endif
#define FP8_GEMM_BK 128		/* block size of scales (docs/numerics.md) */
#define FP8_GEMM_MAX_DIM 262144 /* largest accepted M, N or K */

/* flags */
#define FP8_GEMM_X_FP8 0x0u  /* x: uint8 E4M3 codes [M][K], xs: f32 [M][ceil(K/128)] */
#define FP8_GEMM_X_F32 0x1u  /* x: f32 [M][K], quantized inside (xs unused) */
#define FP8_GEMM_X_BF16 0x2u /* x: bf16 [M][K], quantized inside (xs unused) */
#define FP8_GEMM_X_MASK 0x3u
#define FP8_GEMM_Y_BF16 0x4u	/* y is bf16 [M][N] (else f32) */
#define FP8_GEMM_SILU_MUL 0x8u	/* y = silu(x W^T) * (x W2^T) */
#define FP8_GEMM_RESIDUAL 0x10u /* y = ... + res */
#define FP8_GEMM_ACCUM 0x20u	/* y = y_old + route_w[m] * ... (f32 y only) */
#define FP8_GEMM_UE8M0 0x40u	/* quantize-inside rounds scales up to powers of two */
#define FP8_GEMM_ACT_F32                                                                           \
	0x80u /* x f32 used as is, not quantized (needs FP8_GEMM_X_F32, not
				   UE8M0); the f32 block sum of the header comment */
#define FP8_GEMM_FLAGS_ALL 0xFFu
#define FP8_GEMM_FL 8 /* ACT_F32 partial sums per PE (f32 adder latency <= 8 cycles) */

/*
 * fp8_gemm - the kernel top. Matrices are row-major; the rows of x and of y (and res) may be
 * strided: row m of x starts at element m * lda, row m of y and res at m * ldy (0 = K and N, the
 * dense layout), so a GEMM can read a column slice of a wider matrix (one head of q) and write
 * into one. xs stays dense.
 *   x      [M][lda] per FP8_GEMM_X_*        xs  [M][ceil(K/128)] f32 (FP8 input only)
 *   w      [N][K] E4M3                      ws  [ceil(N/128)][ceil(K/128)] f32 (multiplies)
 *   w2,ws2 same shapes, the "up" matrix of FP8_GEMM_SILU_MUL (else unused, may be NULL)
 *   y      [M][ldy] f32 or bf16             res [M][ldy] f32 (FP8_GEMM_RESIDUAL; may alias y
 *                                           when y is f32)
 *   route_w [M] f32 (FP8_GEMM_ACCUM)
 * Returns 0, or -EINVAL when a dimension is < 1 or > FP8_GEMM_MAX_DIM, lda < K or ldy < N (after
 * the 0 defaults), a flag is unknown, a
 * pointer the flags need is NULL, FP8_GEMM_ACCUM is combined with a bf16 output, or
 * FP8_GEMM_ACT_F32 comes without FP8_GEMM_X_F32 or with FP8_GEMM_UE8M0.
 * C-simulation stack use: about 200 KB (the on-chip buffers).
 */
int fp8_gemm(const void *x, const float *xs, const uint8_t *w, const float *ws, const uint8_t *w2,
	     const float *ws2, void *y, const float *res, const float *route_w, int M, int N, int K,
	     uint32_t flags, int lda, int ldy);

/* Modeled cost of one fp8_gemm call: loop trip counts (as an HLS_COUNT build counts them),
 * bytes per m_axi bundle and the cycle total. */
struct fp8_gemm_cost {
	uint64_t it[HLS_L_N]; /* iterations of each pipelined loop (HLS_L_GEMM_*), count */
	uint64_t bytes_w;     /* W (+W2) bytes read incl. scales, bundle gmem_w */
	uint64_t bytes_x;     /* x bytes read (re-read per n-tile), bundle gmem_x */
	uint64_t bytes_y;     /* y bytes written + y/res bytes read, bundle gmem_y */
	uint64_t macs;	      /* useful MACs: M*N*K (x2 with SILU_MUL) */
	uint64_t cycles;      /* modeled kernel cycles, start to done */
	double util_pe;	      /* macs / (cycles * TM * TN) */
	double util_bw;	      /* bytes_w / (cycles * bank bytes per cycle): W-bank utilization */
};

/*
 * fp8_gemm_cycles - the timing model (hls/README.md "Timing model"). The loop-count part assumes
 * b->tm/tn/mb equal the compiled FP8_GEMM_TM/TN/MB when compared with an HLS_COUNT build; the
 * cycle part works for any build. Returns the modeled cycles (> 0), or -EINVAL for the argument
 * errors fp8_gemm() rejects or a build whose tn does not divide 128 or mb is not a multiple of tm.
 * c may be NULL.
 */
int64_t fp8_gemm_cycles(const struct hls_build *b, int M, int N, int K, uint32_t flags,
			struct fp8_gemm_cost *c);

#endif
