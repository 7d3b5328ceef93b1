/*
 * fp8_gemv.h - the card's wide, striped, grouped GEMV kernel: y = act(x) . W^T for a few rows of
 * x (decode, MTP verify, small batches), with every weight matrix striped in row tiles over the
 * lanes, one lane per HBM pseudo-channel, so that one command reads every pseudo-channel at once.
 *
 * Lanes. The kernel has L lanes (L <= FP8_GEMV_MAX_LANES). Lane i has its own m_axi port bound to
 * its own memory bank (on the card: HBM pseudo-channel i) and reads only that bank. Activations,
 * outputs and the group table are in one more bank, the activation bank (ports gmem_a / gmem_t).
 * Every matrix sits at the same offset w_off in every lane bank (a "stripe set").
 *
 * Striped layout of one matrix of N rows and K columns (R = FP8_GEMV_R rows per tile):
 *   tile t holds rows [t R, min(N, (t+1) R)) and lives in lane (t + lane0) % L as that lane's
 *   local tile j = t / L (lane0, the matrix's rotation, spreads the tiles of small matrices over
 *   all lanes). In each lane bank, from w_off:
 *     codes:  nt_max tiles of R x K bytes (E4M3; BF16 mode: R x K x 2 bytes, little-endian bf16),
 *             tile j at j * tile_code_bytes; rows past N are zero;
 *             SILU_MUL pair: a tile holds R gate rows then R up rows (2 R x K codes);
 *     scales: FP8 only, from align64(nt_max * tile_code_bytes): nt_max x KB f32 (KB = ceil(K/128)),
 *             local tile j's row = weight_scale_inv[(t R) / 128][0..KB-1] (SILU: gate row, then
 *             up row: 2 KB f32 per tile).
 *   nt_max = ceil(ceil(N/R) / L); fp8_gemv_stripe_bytes() gives the bytes per lane.
 *   R divides 128, so every tile lies inside one 128-row scale block.
 *
 * Groups. One command runs ng groups (a table of struct fp8_gemv_grp in the activation bank).
 * Each group is one matrix with its own x, y, shape and flags; all groups share m, the rows of x.
 * Every lane runs the groups in table order and, inside a group, its tiles in ascending order;
 * the lanes run free of each other (each streams its own tiles back to back; the x of every
 * group of the command is held on chip, at most FP8_GEMV_MAX_M x FP8_GEMV_MAX_K values in all).
 * A group whose x is its predecessor's (the same x_off, ldx, k, loader mode and norm: the MoE's
 * gate|up groups, q_a and kv_a, q_b's slices) reuses it: its x is loaded and held once, and
 * counts once against that bound.
 * Groups whose outputs overlap must have the same lane0, so an output row is written by one lane
 * (with m > 1 and one ldy, the outputs overlap where a row of one group meets a row of the other:
 * the heads of a rows command interleave their rows with any lane0) and groups that accumulate into the same y (FP8_GEMV_ACCUM: the MoE downs) add in table order,
 * element by element: router order, with no barrier between them.
 *
 * Numerics, per group, per x row m and output row n (exactly fp8_gemm's, hls/fp8_gemm/fp8_gemm.h):
 *   FP8 weights, x quantized inside (flags without ACT_F32): x [m] f32 quantized per 128 channels
 *     with hls_quant.h (UE8M0 with FP8_GEMV_UE8M0); then the block-exact integer sums, scale
 *     products and kb-ascending f32 accumulation of fp8_gemm with FP8_GEMM_X_F32. Bit-identical
 *     to fp8_gemm(x, NULL, W, ws, ..., M = m, flags = FP8_GEMM_X_F32 | ...).
 *   FP8_GEMV_ACT_F32: x used as f32, fp8_gemm's FP8_GEMM_ACT_F32 formula (8 partial sums, halving
 *     tree, times the block's scale, kb ascending). Bit-identical to fp8_gemm with ACT_F32.
 *   FP8_GEMV_W_BF16: W is bf16 (the lm_head, never quantized); the ACT_F32 formula with
 *     p_k = f32(x[m,k] * bf16(w[n,k])) and no scale (t = P). No SILU_MUL, no scales stored.
 * Continuation (FP8_GEMV_CONT): acc starts from the start value instead of +0 (below); the
 *   blocks then add as above.
 * Epilogue, per output element, in this order (f32): v = acc, or silu(acc_gate) * acc_up with
 *   SILU_MUL (hls_siluf); v = y_old + rw[m] * v with ACCUM; v = v + res[m][n] with RESIDUAL; y = v.
 *   (fp8_gemm's order.) y is f32 [m][ldy]; res may alias y.
 * Input stage: with FP8_GEMV_RMSNORM each row of x is first normalized by hls_rms.h's rule
 *   (the vec_ops RMSNORM op's sums, scale and products, bit for bit), then used or quantized as
 *   above: the same y as an RMSNORM command writing xn followed by the GEMV on xn. The norm's
 *   weight (f32 [k]) sits at res_off and eps (f32 bits) in the low word of rw_off, so the flag
 *   excludes RESIDUAL and ACCUM. With RES_OUT (RESIDUAL only) the
 *   last step writes res = v + res instead of y (y is read by ACCUM, not written): the MoE's last
 *   routed down adds the finished sum of its row into the residual stream, bit-identical to a
 *   RESIDUAL_ADD x + ffn after the downs (f32 addition commutes). Its output range is res.
 * Greedy token (FP8_GEMV_ARGMAX, the lm_head of a greedy decode): the epilogue also keeps, per x
 *   row and per store position, the largest stored value and its row index (order-independent:
 *   the larger value, the lower index on equal values, NaN skipped), merges the positions after
 *   the group's last tile and writes one 8-byte record per row, so the host reads 8 bytes a
 *   token instead of the vocabulary's logits (y is written all the same).
 */
#ifndef MOECARD_FP8_GEMV_H
#define MOECARD_FP8_GEMV_H

#include <stdint.h>
#include "hls_timing.h"

#define FP8_GEMV_R 8	      /* rows per tile; divides 128 */
#define FP8_GEMV_MAX_LANES 64 /* lanes of one CU */
#define FP8_GEMV_MAX_M 16     /* rows of x per weight read */
/* Rows of x the PE multiplies a beat against per cycle (the synthesized build's; a board tree
 * sets its own with moecard,gemv-rows): a beat of m rows takes ceil(m / PR) cycles. */
#ifndef FP8_GEMV_PR
#define FP8_GEMV_PR 2
#endif
/* f32 products a lane multiplies per cycle and PE row in the f32 modes (FP8_GEMV_ACT_F32: E4M3
 * weights against f32 x; FP8_GEMV_W_BF16: the bf16 lm_head and router gate), each a product
 * rounded to f32 and an f32 add into one of the 8 partial sums (the synthesized build's; a board
 * tree sets its own with moecard,gemv-f32-macs). 0: a whole beat a cycle (64 E4M3 or 32 bf16
 * products at 512 bits). A beat then takes ceil(beat's values / FP8_GEMV_F32) cycles; the
 * products and their order do not change, so neither do the bits. */
#ifndef FP8_GEMV_F32
#define FP8_GEMV_F32 0
#endif
/* SiLU units of the CU's one epilogue (hls_siluf: an exp, an add, a divide, a multiply by the up
 * value), shared by every lane's tiles: a SILU_MUL group's outputs go through it FP8_GEMV_SILU a
 * cycle, other stores a beat a cycle. */
#ifndef FP8_GEMV_SILU
#define FP8_GEMV_SILU 2
#endif
/* The weight reader of each lane runs ahead of its MACs: it issues the lane's bursts once the
 * group table is read, up to this many beats ahead (at least a bank's first-beat latency of
 * beats, so the stream's latency hides behind the x load); they land in the lane port's m_axi
 * read buffer (512 beats deep, board_res.c counts it with the ports). */
#define FP8_GEMV_WFIFO 128
#define FP8_GEMV_MAX_K 32768  /* largest K (the on-chip x buffer) */
#define FP8_GEMV_MAX_N 262144 /* largest N */
#define FP8_GEMV_MAX_GROUPS 512

/* group flags */
#define FP8_GEMV_ACT_F32 0x01u	/* x used as f32, not quantized */
#define FP8_GEMV_W_BF16 0x02u	/* W bf16 (implies the ACT_F32 formula without scales) */
#define FP8_GEMV_SILU_MUL 0x04u /* y = silu(x Wg^T) * (x Wu^T), the pair layout */
#define FP8_GEMV_ACCUM 0x08u	/* y = y_old + rw[m] * v */
#define FP8_GEMV_RESIDUAL 0x10u /* y = v + res */
#define FP8_GEMV_UE8M0 0x20u	/* quantize-inside rounds scales up to powers of two */
#define FP8_GEMV_RES_OUT                                                                           \
	0x40u /* with RESIDUAL: the result goes to res (res += v), y is only read */
#define FP8_GEMV_RMSNORM                                                                           \
	0x80u /* x is normalized in the loader: xn = (x * rsqrt(mean(x^2) + eps)) * w, w f32 [k]
		 at res_off, eps the f32 bits in rw_off's low word (not with RESIDUAL or ACCUM) */
#define FP8_GEMV_ARGMAX                                                                            \
	0x100u /* also the greedy token of each x row: per row i an 8-byte record {u32 index,
		  f32 value} at act + (rw_off >> 32) + 8 i, the index of the largest output of the
		  group's row (the lowest on ties, -0 == +0; NaN never wins, and a NaN output 0
		  gives index 0: host/decode/sample.c's sampler_argmax over y's row, bit for bit);
		  rw_off's low word stays RMSNORM's eps (not with ACCUM or SILU_MUL) */
#define FP8_GEMV_XIDX                                                                              \
	0x200u /* x row i is row idx[i] of x (stride ldx): idx u32 [m] at act + (rw_off >> 32)
		  (the MoE's rows of an expert read where they are, no GATHER); not with ARGMAX
		  or ACCUM; rw_off's low word stays RMSNORM's eps */
#define FP8_GEMV_CONT                                                                              \
	0x400u /* a slice of K continuing the slices before it: each output's sum starts from the
		  f32 at act + rw_off (row i, output n: rw_off + 4 (i ldy + n)) instead of +0 and
		  adds this group's blocks in kb order, so slices of a matrix's K at multiples of
		  128 chained this way (each slice's y the next one's start) give one pass's bits
		  (o_proj a head group at a time beside the attention of the next); not with ACCUM,
		  SILU_MUL, RMSNORM, ARGMAX or XIDX. A start that lies on an earlier group's output
		  must be exactly that output (offset, n, ldy) and have its lane0 */
#define FP8_GEMV_FLAGS_ALL 0x7FFu

/* One group: 64 bytes, little-endian, in the activation bank. Offsets are bytes from the start
 * of the bank the field names. */
struct fp8_gemv_grp {
	uint64_t w_off;	  /* the matrix's stripe set: offset in every lane bank */
	uint64_t x_off;	  /* activation bank: x f32 [m][ldx] */
	uint64_t y_off;	  /* activation bank: y f32 [m][ldy] */
	uint64_t res_off; /* activation bank: res f32 [m][ldy] (RESIDUAL), else 0 */
	uint64_t rw_off;  /* activation bank: route weights f32 [m] (ACCUM), else 0 */
	uint32_t n, k;	  /* output rows (matrix rows; of one half with SILU_MUL), inner dim */
	uint32_t ldx;	  /* x row stride, elements (>= k; unused when m = 1) */
	uint32_t ldy;	  /* y / res row stride, elements (>= n; unused when m = 1) */
	uint32_t flags;	  /* FP8_GEMV_* */
	uint32_t lane0;	  /* the lane of tile 0, 0..L-1 (the stripe set's rotation) */
};
_Static_assert(sizeof(struct fp8_gemv_grp) == 64, "fp8_gemv_grp is 64 bytes");

/* Error details the kernel returns (negative errno is never used: the CU has a status register).
 * 0 = ok; else FP8_GEMV_E_* | (group index << 8). */
#define FP8_GEMV_E_ARGS                                                                            \
	1 /* L, m or ng out of range, a table outside the activation bank, or
			       more x values in the command than the on-chip x buffer holds */
#define FP8_GEMV_E_FLAGS                                                                           \
	2		    /* unknown flag, a bad flag combination, lane0 >= L, or outputs that
			       overlap an earlier group's with another lane0 */
#define FP8_GEMV_E_SHAPE 3  /* n or k out of range, ldx < k or ldy < n with m > 1 */
#define FP8_GEMV_E_BOUNDS 4 /* an operand outside its bank */

/* Host side: whether group b reuses group a's x (the same rows, loader mode and norm: loaded and
 * held once; the x buffer's bound counts it once). */
int fp8_gemv_same_x(const struct fp8_gemv_grp *a, const struct fp8_gemv_grp *b);

/* Bytes one lane holds of an N x K matrix (codes + scales) in the striped layout, for L lanes. */
uint64_t fp8_gemv_stripe_bytes(int N, int K, int L, uint32_t flags);

/*
 * fp8_gemv_run - the kernel (C simulation entry: the lanes as an array).
 *   act, act_bytes        the activation bank (x, y, res, rw, the table)
 *   lane[L], lane_bytes   the lane banks (each of lane_bytes bytes)
 *   tab_off, ng           the group table: ng entries at act + tab_off
 *   m                     rows of x, 1..FP8_GEMV_MAX_M
 * Returns 0 or an error detail (above). Every group is checked before any is computed, so a
 * failed command writes nothing.
 */
uint32_t fp8_gemv_run(uint8_t *act, uint64_t act_bytes, const uint8_t *const *lane,
		      uint64_t lane_bytes, int L, uint64_t tab_off, int ng, int m);

/* The synthesis top of the FP8_GEMV_SYNTH_LANES-lane build: act, then one pointer per lane
 * (l0 .. l31), the bank sizes, the table offset, ng and m, and group 0's x offset with its hint
 * (bitstream/kernels.c lists the same arguments); it runs fp8_gemv_run. On the card the x loader
 * starts the x at x0_off (hint 1) while the table arrives and keeps it when the table's group 0
 * reads that x (fp8_gemv_cycles2); the values are the same either way, so C simulation loads
 * x after the table. */
#define FP8_GEMV_SYNTH_LANES 32
int fp8_gemv(uint8_t *act, const uint8_t *l0, const uint8_t *l1, const uint8_t *l2,
	     const uint8_t *l3, const uint8_t *l4, const uint8_t *l5, const uint8_t *l6,
	     const uint8_t *l7, const uint8_t *l8, const uint8_t *l9, const uint8_t *l10,
	     const uint8_t *l11, const uint8_t *l12, const uint8_t *l13, const uint8_t *l14,
	     const uint8_t *l15, const uint8_t *l16, const uint8_t *l17, const uint8_t *l18,
	     const uint8_t *l19, const uint8_t *l20, const uint8_t *l21, const uint8_t *l22,
	     const uint8_t *l23, const uint8_t *l24, const uint8_t *l25, const uint8_t *l26,
	     const uint8_t *l27, const uint8_t *l28, const uint8_t *l29, const uint8_t *l30,
	     const uint8_t *l31, unsigned int act_bytes, unsigned int lane_bytes,
	     unsigned int tab_off, int ng, int m, unsigned int x0_off, int hint);

/* Host-side helper (not synthesized): lays out one matrix (codes [N][K] E4M3 or bf16, scales
 * [ceil(N/128)][ceil(K/128)] f32 or NULL for BF16; with SILU_MUL w2/ws2 the up half) into the
 * striped layout with rotation lane0: dst[i] receives lane i's fp8_gemv_stripe_bytes() bytes. */
void fp8_gemv_stripe(uint8_t *const *dst, int L, const uint8_t *w, const float *ws,
		     const uint8_t *w2, const float *ws2, int N, int K, uint32_t flags, int lane0);

/* Modeled cost of one command (struct hls_build: clock, bank bandwidth and latency; the lane
 * port width is axi_bits). Lanes run in parallel and free of each other: a lane starts a group's
 * tiles when it is done with the earlier groups and the group's x has arrived (the x rows load
 * one group after another through the activation bank); its weight reader issued its first
 * bursts when the table was read, so their latency passes while x loads (FP8_GEMV_WFIFO); the
 * command ends with its slowest lane (plus the pipeline depth) or with the activation bank's
 * traffic. */
struct fp8_gemv_cost {
	uint64_t it[HLS_L_N];	   /* iterations of each pipelined loop, count */
	uint64_t lane_bytes_max;   /* bytes the busiest lane read */
	uint64_t lane_bytes_total; /* bytes all lanes read */
	uint64_t act_bytes;	   /* activation-bank bytes read + written */
	uint64_t cycles;	   /* modeled kernel cycles, start to done */
	double util_bw;		   /* lane_bytes_total / (cycles * L * bank bytes per cycle) */
};

/* Timing model from the group table (host copy: tab[ng]). Returns cycles > 0, or -EINVAL for
 * arguments fp8_gemv rejects. c may be NULL. */
int64_t fp8_gemv_cycles(const struct hls_build *b, int L, const struct fp8_gemv_grp *tab, int ng,
			int m, struct fp8_gemv_cost *c);
/* fp8_gemv_cycles for a command that names group 0's x (x0: the synthesis top's x0_off with
 * hint 1): the x loader starts group 0's x beside the table read, so its latency overlaps the
 * table's; a table whose group 0 reads another x (tab[0].x_off != x0) costs what
 * fp8_gemv_cycles gives. hint 0: fp8_gemv_cycles. */
int64_t fp8_gemv_cycles2(const struct hls_build *b, int L, const struct fp8_gemv_grp *tab, int ng,
			 int m, int hint, uint64_t x0, struct fp8_gemv_cost *c);

#endif
