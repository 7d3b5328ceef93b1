/*
 * abi_cmd.h - THE host <-> card command contract: command packets (host -> card command rings),
 * completion entries (card -> host completion ring) and their status codes. Included by host/,
 * drivers/ and firmware/ alike; the rings that carry these are in abi_ring.h and the board block
 * the host writes at init is in abi_board.h.
 *
 * Wire rules: little-endian, fixed size (a command is 128 bytes, a completion 32), no C bitfields:
 * packed words are built and read with the ABI_* field macros below, each with its bit range. A
 * command opens with magic + version + opcode; every reserved field and every operand an opcode
 * does not use must be zero (the firmware rejects anything else: see fw_cmd_decode()).
 *
 * Operands are card addresses (struct-free uint64): bank index in [63:56], [55] set (valid: so the
 * null operand 0 never aliases byte 0 of bank 0), [54:48] zero, bytes into that bank in [47:0]. The firmware resolves them against the board block's banks and never
 * touches memory outside [bank.base, bank.base + bank.size).
 */
#ifndef ABI_CMD_H
#define ABI_CMD_H

#include <assert.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the moecard ABI structs are little-endian; add byte swaps for a big-endian side"
#endif

#define ABI_MAGIC 0x4D43u /* "MC" in word0[15:0] of every command */
#define ABI_VERSION 1u	  /* word0[23:16]; bumped on any incompatible change */

/* Opcodes (word0[31:24]). The values are wire values: never renumber. */
enum abi_op {
	ABI_OP_NOP = 0,	     /* completes at once; exercises the path */
	ABI_OP_GEMM_FP8 = 1, /* y[m,n] f32 = A fp8 [m,k] x W fp8 [n,k]^T, block scales */
	ABI_OP_RMSNORM = 2,  /* out = w * x * rsqrt(mean(x^2) + eps), per row */
	ABI_OP_ROPE = 3,     /* interleaved-pair rotation of each row at position pos */
	ABI_OP_ACT_QUANT =
	    4,		     /* per-row, per-128 dynamic E4M3 quantization: out fp8 + out2 scales */
	ABI_OP_SILU_MUL = 5, /* out = silu(x) * x2 */
	ABI_OP_RESIDUAL_ADD = 6, /* out = x + x2 */
	ABI_OP_SOFTMAX = 7,	 /* row-wise softmax in f32 */
	ABI_OP_MLA_ATTN = 8,	 /* absorbed MLA decode attention over a latent KV cache */
	ABI_OP_KV_APPEND = 9,	 /* copy one latent row into the KV cache at position pos */
	ABI_OP_DMA_FILL = 10,	 /* fill a card region (expert slot) from host, card or a pattern */
	ABI_OP_FENCE = 11,	 /* waits on its wait fence, then signals its signal fence */
	ABI_OP_BARRIER = 12,	 /* starts after every earlier command of its queue completed */
	ABI_OP_TIMESTAMP = 13, /* completes with start = end = card time when it reached the head */
	ABI_OP_GEMV = 14,      /* grouped GEMV over weights striped on every lane bank (fp8_gemv) */
	ABI_OP_MOE_ROUTE = 15, /* MoE router: gate logits -> experts, weights, GEMV tables */
	ABI_OP_MLA_ATTN_LANES =
	    16,		     /* MLA decode attention over a cache striped on the lane banks */
	ABI_OP_GATHER = 17,  /* out[r] = x[idx[r]]: rows by index (the MoE prefill's expert rows) */
	ABI_OP_COMBINE = 18, /* out[r] += sum_j w[r][j] x[idx[r][j]] in j order (MoE combine) */
	ABI_OP_COUNT = 19
};

/* --- card addresses ------------------------------------------------------------------------ */
#define ABI_ADDR_VALID (1ull << 55) /* [55] set in every operand */
#define ABI_ADDR(bank, off)                                                                        \
	(((uint64_t)(bank) << 56) | ABI_ADDR_VALID | ((uint64_t)(off)&0xFFFFFFFFFFFFull))
#define ABI_ADDR_BANK(a) ((uint32_t)((a) >> 56))	  /* [63:56] bank index */
#define ABI_ADDR_RSVD(a) ((uint32_t)((a) >> 48) & 0xFFu)  /* [55:48]: must be 0x80 */
#define ABI_ADDR_OFF(a) ((uint64_t)(a)&0xFFFFFFFFFFFFull) /* [47:0] byte offset */

/* --- command header word0: [15:0] magic, [23:16] version, [31:24] opcode --------------------- */
#define ABI_W0(op) (ABI_MAGIC | (ABI_VERSION << 16) | ((uint32_t)(op) << 24))
#define ABI_W0_MAGIC(w) ((w)&0xFFFFu)
#define ABI_W0_VERSION(w) (((w) >> 16) & 0xFFu)
#define ABI_W0_OP(w) ((w) >> 24)

/* word2: [7:0] flags (ABI_CMD_F_*), [15:8] reserved 0, [31:16] timeout in units of 100 us
 * (0 = firmware default, FW_CFG_CU_TIMEOUT_NS) */
#define ABI_W2(flags, timeout_100us) ((uint32_t)(flags) | ((uint32_t)(timeout_100us) << 16))
#define ABI_W2_FLAGS(w) ((w)&0xFFu)
#define ABI_W2_RSVD(w) (((w) >> 8) & 0xFFu)
#define ABI_W2_TIMEOUT(w) ((w) >> 16)
#define ABI_CMD_F_WAIT 0x01u   /* wait until fence[wait_id] >= wait_value before starting */
#define ABI_CMD_F_SIGNAL 0x02u /* on success set fence[signal_id] = signal_value */
#define ABI_CMD_F_DRAIN                                                                            \
	0x04u /* start only when every earlier command of the ring has completed: a BARRIER
		 folded into the command after it (one command fewer to take) */
#define ABI_CMD_F_ALL 0x07u

/* word3: [15:0] wait fence id, [31:16] signal fence id (each < FW_CFG_MAX_FENCES, else 0) */
#define ABI_W3(wait_id, signal_id) ((uint32_t)(wait_id) | ((uint32_t)(signal_id) << 16))
#define ABI_W3_WAIT(w) ((w)&0xFFFFu)
#define ABI_W3_SIGNAL(w) ((w) >> 16)
#define ABI_MAX_FENCES 64u /* fence ids are 0..ABI_MAX_FENCES-1 */

/* Common command header: 32 bytes. */
struct abi_cmd_hdr {
	uint32_t word0;	       /* ABI_W0(): magic [15:0], version [23:16], opcode [31:24] */
	uint32_t tag;	       /* host cookie, echoed in the completion */
	uint32_t word2;	       /* ABI_W2(): flags [7:0], rsvd [15:8], timeout/100us [31:16] */
	uint32_t word3;	       /* ABI_W3(): wait fence id [15:0], signal fence id [31:16] */
	uint32_t wait_value;   /* fence value to wait for: fence - value >= 0 as int32 (wraps) */
	uint32_t signal_value; /* value stored in the signal fence when the command succeeds */
	uint32_t rsvd[2];      /* must be 0 */
};
static_assert(sizeof(struct abi_cmd_hdr) == 32, "abi_cmd_hdr is 32 bytes");

/* GEMM_FP8 (docs/numerics.md): y[m,n] = sum_kb D(m,n,kb) * sa[m,kb] * sw[n/128,kb]. 64 B used.
 * Rows of a and of y may be strided (lda, ldy; 0 = dense), so one command can read a column
 * slice of a wider matrix (one head of q for all tokens) and write into one.
 * flags (ABI_GEMM_F_*, the fp8_gemm kernel's epilogue; 0 = the plain product above):
 *   X_F32 / X_BF16  a is f32 / bf16 [m, k], quantized inside (docs/numerics.md); sa is unused
 *                   (0) unless ACCUM needs it
 *   Y_BF16          y is bf16 [m, n]
 *   SILU_MUL        y = silu(a W^T) * (a W2^T): w holds W then W2 ([2n, k] codes) and sw holds
 *                   their scales back to back (2 x [ceil(n/128), ceil(k/128)])
 *   RESIDUAL        y = y_old + ... (in place: the residual is y itself)
 *   ACCUM           y = y_old + route_w[m] * ... ; needs X_F32 or X_BF16, f32 y; sa holds
 *                   route_w f32 [m]
 *   UE8M0           quantize-inside rounds scales up to powers of two
 *   ACT_F32         with X_F32 only, not with UE8M0: a is f32 [m, k] used as is, NOT quantized
 *                   (docs/model.md, MLA: the absorbed products); y = sum_kb f32(P * sw), P the
 *                   f32 block sum of hls/fp8_gemm/fp8_gemm.h (8 strided partial sums, halving
 *                   tree). sa is unused (0) unless ACCUM needs it */
struct abi_gemm {
	uint64_t a;	/* fp8 E4M3 [m, k] row-major activations (f32/bf16 with X_F32/X_BF16) */
	uint64_t sa;	/* f32 [m, ceil(k/128)] activation scales; route_w f32 [m] with ACCUM */
	uint64_t w;	/* fp8 E4M3 [n, k] row-major, weights (an expert slot); [2n, k] SILU_MUL */
	uint64_t sw;	/* f32 [ceil(n/128), ceil(k/128)] weight_scale_inv (multiplies); x2 SILU */
	uint64_t y;	/* f32 [m, n] output (bf16 with Y_BF16) */
	uint32_t m;	/* rows of A, 1..ABI_MAX_DIM */
	uint32_t n;	/* rows of W = output columns, 1..ABI_MAX_DIM */
	uint32_t k;	/* inner dimension, 1..ABI_MAX_DIM */
	uint32_t flags; /* ABI_GEMM_F_* [7:0], [31:8] must be 0 */
	uint32_t lda;	/* row stride of a in elements: 0 = k, else k..ABI_MAX_DIM */
	uint32_t ldy;	/* row stride of y in elements: 0 = n, else n..ABI_MAX_DIM */
};
/* Values equal the fp8_gemm kernel's FP8_GEMM_* flags (hls/fp8_gemm/fp8_gemm.h). */
#define ABI_GEMM_F_X_F32 0x01u
#define ABI_GEMM_F_X_BF16 0x02u
#define ABI_GEMM_F_Y_BF16 0x04u
#define ABI_GEMM_F_SILU_MUL 0x08u
#define ABI_GEMM_F_RESIDUAL 0x10u
#define ABI_GEMM_F_ACCUM 0x20u
#define ABI_GEMM_F_UE8M0 0x40u
#define ABI_GEMM_F_ACT_F32 0x80u
#define ABI_GEMM_F_ALL 0xFFu

/* Vector ops (RMSNORM, ROPE, ACT_QUANT, SILU_MUL, RESIDUAL_ADD, SOFTMAX, GATHER, COMBINE).
 * Operand use per op:
 *   RMSNORM      x f32 [rows,cols], w f32 [cols], out f32 [rows,cols], param_f = eps
 *   ROPE         x f32 [rows,cols] (cols even), out f32 [rows,cols], param_u = position of
 *                row 0, param_f = theta base; param_k = rows per position: row r is at
 *                position param_u + r / param_k (0: every row at param_u, the decode case);
 *                with w (int32 [rows / param_k], param_k >= 1 dividing rows, tab required)
 *                row r is at position w[r / param_k] and param_u is the number of positions
 *                in tab (the CU fails a position outside it): rows of several sequences
 *   ACT_QUANT    x f32 [rows,cols], out fp8 [rows,cols], out2 f32 [rows, ceil(cols/128)]
 *   SILU_MUL     x f32 (gate), x2 f32 (up), out f32, all [rows,cols]
 *   RESIDUAL_ADD x f32, x2 f32, out f32, all [rows,cols]
 *   SOFTMAX      x f32 [rows,cols], out f32 [rows,cols]
 *   GATHER       x f32 [param_u rows, cols] (the source), w int32 [rows] row indices
 *                (< param_u, checked by the CU), out f32 [rows,cols]: out[r] = x[w[r]]
 *   COMBINE      x f32 [param_u rows, cols], w int32 [rows, param_k] row indices, x2 f32
 *                [rows, param_k] weights, out f32 [rows,cols] read and written:
 *                out[r] = out[r] + x2[r][j] * x[w[r][j]] for j = 0..param_k-1 in order (one f32
 *                multiply, one f32 add per term: the accumulating GEMM epilogue); param_k
 *                1..ABI_COMBINE_MAX_K, cols <= ABI_COMBINE_MAX_COLS
 * Operands an op does not use must be 0. Rows of x/x2 may be strided (lda) and rows of out too
 * (ldo), so an op can work on a column slice of a wider matrix (e.g. q_pe inside q). */
struct abi_vec {
	uint64_t x;	  /* first input */
	uint64_t x2;	  /* second input or 0 */
	uint64_t w;	  /* per-column weight or 0 */
	uint64_t out;	  /* output */
	uint64_t out2;	  /* second output (scales) or 0 */
	uint32_t rows;	  /* 1..ABI_MAX_DIM */
	uint32_t cols;	  /* 1..ABI_MAX_DIM */
	uint32_t param_u; /* op parameter (position), else 0 */
	uint32_t param_f; /* op parameter, f32 bit pattern (eps, theta), else 0 */
	uint32_t lda;	  /* row stride of x and x2, elements; 0 = cols, else >= cols */
	uint32_t ldo;	  /* row stride of out, elements; 0 = cols, else >= cols (not ACT_QUANT) */
	uint64_t tab;	  /* ROPE: f32 cos/sin table [last position + 1][cols/2][2] (row p =
			     position p, pairs {cos, sin}, YaRN-blended by the host); 0 = plain RoPE
			     of base param_f. Other ops: 0 */
	uint32_t param_k; /* ROPE: rows per position; COMBINE: terms per row; else 0 */
	uint32_t rsvd;	  /* 0 */
};
#define ABI_COMBINE_MAX_K 64u
#define ABI_COMBINE_MAX_COLS 16384u

/* MLA_ATTN, absorbed decode form (docs/model.md, MLA): per head h,
 * score_t = (q_lat[h]·c_t + q_pe[h]·kpe_t) * scale, p = softmax_t<n_ctx, out[h] = sum_t p c_t. */
struct abi_mla {
	uint64_t q;	  /* f32 [n_heads, kv_lora + rope]: q_lat then q_pe per head */
	uint64_t kv;	  /* f32 [ctx_cap, kv_lora + rope]: c' then k_pe per position */
	uint64_t out;	  /* f32 [n_heads, kv_lora] */
	uint32_t n_heads; /* 1..ABI_MAX_HEADS */
	uint32_t kv_lora; /* latent width, 1..ABI_MAX_DIM */
	uint32_t rope;	  /* rope width, 0..ABI_MAX_DIM, even */
	uint32_t n_ctx;	  /* positions attended, 1..ctx_cap */
	uint32_t ctx_cap; /* rows the cache region holds */
	uint32_t scale;	  /* softmax scale, f32 bit pattern */
};

/* KV_APPEND: cache[pos + i] = record(src row i) for i < n (n = rows, 0 and 1 both one row), src
 * f32 [n][row] (rows back to back), a row c' [row - rope] then k_pe [rope]; folded, row i takes
 * the RoPE table's row rope_pos + i. The record format is word [7:0] (ABI_KV_F32: the row as is,
 * [31:8] must be 0; ABI_KV_BF16 and ABI_KV_FP8, the formats of hls/mla_attn/mla_attn.h, with the
 * rope width in [23:8]). */
struct abi_kv_append {
	uint64_t src;	   /* f32 [row] */
	uint64_t cache;	   /* records [ctx_cap] */
	uint32_t row;	   /* elements per row, 1..ABI_MAX_DIM */
	uint32_t pos;	   /* 0..ctx_cap-1 */
	uint32_t ctx_cap;  /* rows the cache region holds */
	uint32_t word;	   /* [7:0] format, [23:8] rope width (not F32), [31:24] 0 */
	uint64_t norm;	   /* fold: f32 [row - fold] kv_a_layernorm weight; else 0 */
	uint64_t rope_tab; /* fold: f32 [rope_pos + 1][fold] RoPE table (cos, sin pairs); else 0 */
	uint32_t eps;	   /* fold: the norm's eps, f32 bits (finite, > 0); else 0 */
	uint32_t fold;	   /* 0: src is the finished row [c' | roped k_pe]; dr (even, 2..64, <
			      row, the word's rope width when not F32): src is kv_a's raw row [c |
			      k_pe] of that rope width, normalized and roped in the append's input
			      stage (mla_kv_append_fold) */
	uint32_t rope_pos; /* fold: the first row's position in the RoPE table; else 0 */
	uint32_t rows; /* rows appended, 0..ABI_KV_MAX_ROWS (0 and 1: one); pos + rows <= ctx_cap */
};
#define ABI_KV_MAX_ROWS 4096
enum abi_kv_fmt { ABI_KV_F32 = 0, ABI_KV_BF16 = 1, ABI_KV_FP8 = 2 };
#define ABI_KV_WORD(fmt, rope) ((uint32_t)(fmt) | ((uint32_t)(rope) << 8))
#define ABI_KV_FMT(w) ((w)&0xFFu)
#define ABI_KV_ROPE(w) (((w) >> 8) & 0xFFFFu)
/* Bytes of one record (mla_record_bytes): 0 for a layout the kernels reject. */
static inline uint64_t abi_kv_record_bytes(uint32_t fmt, uint64_t dc, uint64_t dr)
{
	if (fmt == ABI_KV_F32)
		return (dc + dr) * 4;
	if (fmt == ABI_KV_BF16)
		return (dc + dr) * 2;
	if (fmt == ABI_KV_FP8 && dc % 128 == 0)
		return dc + dc / 128 * 4 + dr * 2;
	return 0;
}

/* MLA_ATTN_LANES (hls/mla_attn/mla_attn.h, mla_attn_lanes): per head h over the cache striped on
 * the lane banks of the CU (lane i = bank i) in blocks of 32 tokens (block b in lane b % lanes),
 * at cache_off in every lane bank; q and out as MLA_ATTN. 56 B used. */
struct abi_mla_lanes {
	uint64_t q;	     /* f32 [n_heads, kv_lora + rope]: q_lat then q_pe per head */
	uint64_t out;	     /* f32 [n_heads, kv_lora] */
	uint64_t cache_off;  /* offset of the stripe set in every lane bank */
	uint32_t n_heads;    /* 1..128 */
	uint32_t kv_lora;    /* 1..512 */
	uint32_t rope;	     /* 0..64, even */
	uint32_t n_ctx;	     /* positions attended, 1..ctx_cap (rows: the most any row attends) */
	uint32_t ctx_cap;    /* positions the stripe set holds */
	uint32_t word;	     /* [7:0] format (enum abi_kv_fmt), [8] ABI_MLAL_FP8 (the FP8
			       datapath: ABI_KV_FP8 records only), [9] ABI_MLAL_MHA (MHA mode,
			       below), [31:10] 0 */
	uint32_t scale;	     /* softmax scale, f32 bit pattern */
	uint32_t rsvd;	     /* 0 (MHA mode: the k_nope width) */
	uint32_t rows;	     /* queries: 0 or 1 = one (tab, slot_bytes 0); 2..ABI_MLAL_MAX_ROWS: q
			       [rows][n_heads][kv_lora + rope], out [rows][n_heads][kv_lora] */
	uint32_t rsvd2;	     /* 0 */
	uint64_t tab;	     /* rows >= 2: u32 [rows][2] {slot, n_ctx}: row r reads the stripe set
			       at cache_off + slot * slot_bytes and attends n_ctx (1..this n_ctx) */
	uint64_t slot_bytes; /* bytes between two slots' stripe sets in every lane bank */
};
#define ABI_MLAL_MAX_ROWS 256u

/* DMA_FILL: dst[0..bytes) = src (card address, or host bus address with SRC_HOST) or the
 * pattern byte (with PATTERN). Used for expert-slot fills; signal a fence that the GEMMs on the
 * slot wait on. */
#define ABI_DMA_F_SRC_HOST 0x1u /* src is a host bus address (not checked against card banks) */
#define ABI_DMA_F_PATTERN 0x2u	/* ignore src (must be 0), fill with pattern[7:0] */
#define ABI_DMA_F_ALL 0x3u
struct abi_dma_fill {
	uint64_t src;	/* source address, see flags */
	uint64_t dst;	/* card address of the destination */
	uint64_t bytes; /* 1..bank size */
	uint32_t flags; /* ABI_DMA_F_* */
	uint32_t word;	/* [7:0] DMA channel (< board n_dma, 0xFF = any), [15:8] pattern byte,
			     [31:16] expert slot id (informational, echoed in telemetry) */
};
/* GEMV (hls/fp8_gemv/fp8_gemv.h): ng groups, each one matrix striped in row tiles over the lane
 * banks of the GEMV CU, with its own x, y, shape and flags, all reading m rows of x. The group
 * table (ng x 64-byte struct fp8_gemv_grp) is in card memory, in the bank of the CU's activation
 * port; its offsets are bytes from the start of that bank (x, y, res, rw) and of each lane bank
 * (w_off). The firmware checks the table's range; the CU checks every entry before it computes
 * and fails the command (CU error, detail = the kernel's FP8_GEMV_E_* | group << 8) otherwise.
 * 16 B used. */
struct abi_gemv {
	uint64_t tab;	 /* card address of the group table (the CU's activation bank) */
	uint32_t ng;	 /* groups, 1..ABI_GEMV_MAX_GROUPS */
	uint32_t m;	 /* rows of x per group, 1..ABI_GEMV_MAX_M */
	uint64_t x0_off; /* with ABI_GEMV_F_X0: group 0's x_off (activation-bank offset), so the x
			    loader starts group 0's x while the table arrives (a table whose group
			    0 reads another x drops the prefetch: the same values, later); else 0 */
	uint32_t flags;	 /* ABI_GEMV_F_* */
	uint32_t rsvd;	 /* 0 */
};
#define ABI_GEMV_F_X0 0x1u
#define ABI_GEMV_F_ALL 0x1u
#define ABI_GEMV_GRP_BYTES 64u

/* MOE_ROUTE (hls/moe_route/moe_route.h): the router of one token on the card. Writes idx int32
 * [k] then w f32 [k] at out; with ABI_ROUTE_F_TABLES copies the 2 (k+1)-entry GEMV template
 * tables at tmpl to tab with entry 1 + j of each pointing at expert idx_j (w_off + idx_j *
 * stride). 64 B used. */
struct abi_route {
	uint64_t logit;	 /* f32 [e] gate logits */
	uint64_t bias;	 /* f32 [e] correction bias (ABI_ROUTE_F_BIAS), else 0 */
	uint64_t out;	 /* idx int32 [k], then w f32 [k] */
	uint64_t tmpl;	 /* 2 (k+1) x 64-byte GEMV group records (ABI_ROUTE_F_TABLES), else 0 */
	uint64_t tab;	 /* where the filled tables go (same size), else 0 */
	uint32_t stride; /* bytes between two experts' stripe sets in a lane bank */
	uint32_t e;	 /* experts, 1..4096 */
	uint32_t k;	 /* chosen per token, 1..min(e, 64) */
	uint32_t groups; /* [15:0] n_group, [31:16] topk_group (ABI_ROUTE_F_GROUPS), else 0 */
	uint32_t flags;	 /* ABI_ROUTE_F_* = the kernel's MOE_ROUTE_* */
	uint32_t scale;	 /* f32 bits: routed_scaling_factor, finite */
	uint32_t rows;	 /* tokens routed: 0 or 1 = one; logit [rows][e], out [rows][2k] */
	uint32_t rsvd;	 /* must be 0 */
};
#define ABI_ROUTE_F_SOFTMAX 0x01u
#define ABI_ROUTE_F_BIAS 0x02u
#define ABI_ROUTE_F_GROUPS 0x04u
#define ABI_ROUTE_F_GROUP_TOP2 0x08u
#define ABI_ROUTE_F_NORM 0x10u
#define ABI_ROUTE_F_TABLES 0x20u
#define ABI_ROUTE_F_ALL 0x3Fu
#define ABI_ROUTE_MAX_E 4096u
#define ABI_ROUTE_MAX_K 64u
#define ABI_ROUTE_MAX_ROWS 256u /* rows of one command (not with TABLES: one) */
#define ABI_GEMV_MAX_GROUPS 512u
#define ABI_GEMV_MAX_M 16u

#define ABI_DMA_WORD(chan, pat, slot)                                                              \
	((uint32_t)(chan) | ((uint32_t)(pat) << 8) | ((uint32_t)(slot) << 16))
#define ABI_DMA_WORD_CHAN(w) ((w)&0xFFu)
#define ABI_DMA_WORD_PATTERN(w) (((w) >> 8) & 0xFFu)
#define ABI_DMA_WORD_SLOT(w) ((w) >> 16)
#define ABI_DMA_CHAN_ANY 0xFFu

#define ABI_MAX_DIM (1u << 20) /* any single dimension */
#define ABI_MAX_HEADS 1024u
#define ABI_PAYLOAD_BYTES 96u

/* A command: 128 bytes = header + payload. Unused payload bytes must be 0. */
struct abi_cmd {
	struct abi_cmd_hdr hdr; /* 32 bytes */
	union {
		struct abi_gemm gemm;
		struct abi_vec vec;
		struct abi_mla mla;
		struct abi_kv_append kv;
		struct abi_dma_fill dma;
		struct abi_gemv gemv;
		struct abi_route route;
		struct abi_mla_lanes mlal;
		uint32_t raw[ABI_PAYLOAD_BYTES / 4];
	} u; /* 96 bytes */
};
static_assert(sizeof(struct abi_gemm) == 64, "abi_gemm is 64 bytes");
static_assert(sizeof(struct abi_vec) == 80, "abi_vec is 80 bytes");
static_assert(sizeof(struct abi_mla) == 48, "abi_mla is 48 bytes");
static_assert(sizeof(struct abi_kv_append) == 64, "abi_kv_append is 64 bytes");
static_assert(sizeof(struct abi_dma_fill) == 32, "abi_dma_fill is 32 bytes");
static_assert(sizeof(struct abi_gemv) == 32, "abi_gemv is 32 bytes");
static_assert(sizeof(struct abi_route) == 72, "abi_route is 72 bytes");
static_assert(sizeof(struct abi_mla_lanes) == 80, "abi_mla_lanes is 80 bytes");
#define ABI_MLAL_FP8 0x100u /* mla_attn_lanes' FP8 datapath (block-integer q and p, exact sums) */
/* MHA mode (word == ABI_MLAL_MHA exactly: f32, the f32 datapath): the non-absorbed attention of
 * a prompt chunk over explicit K/V rows (hls/mla_attn/mla_attn.h, "MHA mode"). The fields then
 * read: cache_off the card address of the K/V rows f32 [ctx_cap][n_heads (rsvd + kv_lora) +
 * rope] (per head k_nope then v, then the shared roped k_pe); kv_lora the v width (1..256);
 * rsvd the k_nope width (rsvd + rope 1..256); q f32 [rows][n_heads][rsvd + rope] (q_nope then
 * the roped q_pe); out f32 [rows][n_heads][kv_lora]; tab and n_ctx as the rows mode's (a row's
 * slot word is not read; rows 0 or 1: one row attending n_ctx, no table); slot_bytes 0. */
#define ABI_MLAL_MHA 0x200u
static_assert(sizeof(struct abi_cmd) == 128, "abi_cmd is 128 bytes");

/* --- completions ------------------------------------------------------------------------- */
/* Completion status (cpl word1[7:0]). Wire values: never renumber. */
enum abi_status {
	ABI_ST_OK = 0,
	ABI_ST_BAD_MAGIC = 1,	/* word0 magic or version wrong */
	ABI_ST_BAD_OPCODE = 2,	/* opcode >= ABI_OP_COUNT */
	ABI_ST_BAD_FIELD = 3,	/* a field out of range / reserved not 0; detail = ABI_FIELD_* */
	ABI_ST_BAD_ADDR = 4,	/* an operand outside the banks; detail = ABI_FIELD_* */
	ABI_ST_NO_CU = 5,	/* no CU implements the op with access to all its banks */
	ABI_ST_DEP_ERROR = 6,	/* the fence it waited on was signalled by a failed command */
	ABI_ST_DMA_ERROR = 7,	/* the DMA engine reported an error; detail = engine status */
	ABI_ST_CU_TIMEOUT = 8,	/* the CU never raised ap_done; it was reset */
	ABI_ST_CU_ERROR = 9,	/* the CU finished with an error status; detail = its status reg */
	ABI_ST_RING_ERROR = 10, /* the command ring's counters were corrupted; queue disabled */
	ABI_ST_COUNT = 11
};

/* Field ids reported in cpl.detail for BAD_FIELD / BAD_ADDR: byte offset of the field within
 * struct abi_cmd (so the host can name it), e.g. offsetof(struct abi_cmd, u.gemm.w). */
#define ABI_FIELD(member) ((uint32_t)offsetof(struct abi_cmd, member))

/* word1: [7:0] status, [15:8] opcode, [23:16] queue index, [31:24] CU index (0xFF none) */
#define ABI_CPL_W1(st, op, q, cu)                                                                  \
	((uint32_t)(st) | ((uint32_t)(op) << 8) | ((uint32_t)(q) << 16) | ((uint32_t)(cu) << 24))
#define ABI_CPL_STATUS(w) ((w)&0xFFu)
#define ABI_CPL_OP(w) (((w) >> 8) & 0xFFu)
#define ABI_CPL_QUEUE(w) (((w) >> 16) & 0xFFu)
#define ABI_CPL_CU(w) ((w) >> 24)
#define ABI_CPL_CU_NONE 0xFFu

/* One completion: 32 bytes. */
struct abi_cpl {
	uint32_t tag;	  /* the command's tag */
	uint32_t word1;	  /* ABI_CPL_W1(): status [7:0], opcode [15:8], queue [23:16], CU [31:24] */
	uint32_t detail;  /* status detail: ABI_FIELD offset, CU/DMA status register, else 0 */
	uint32_t seq;	  /* free-running completion sequence number of the card */
	uint64_t t_start; /* card time (ns) when the command started (its CU got ap_start) */
	uint64_t t_end;	  /* card time (ns) when its completion was seen */
};
static_assert(sizeof(struct abi_cpl) == 32, "abi_cpl is 32 bytes");

/* Builds a command header; the payload is filled by the caller. */
static inline void abi_cmd_hdr_set(struct abi_cmd_hdr *h, enum abi_op op, uint32_t tag)
{
	h->word0 = ABI_W0(op);
	h->tag = tag;
	h->word2 = 0;
	h->word3 = 0;
	h->wait_value = 0;
	h->signal_value = 0;
	h->rsvd[0] = 0;
	h->rsvd[1] = 0;
}

/* Makes the command wait until fence[id] >= value. */
static inline void abi_cmd_wait(struct abi_cmd_hdr *h, uint32_t id, uint32_t value)
{
	h->word2 |= ABI_CMD_F_WAIT;
	h->word3 = (h->word3 & 0xFFFF0000u) | (id & 0xFFFFu);
	h->wait_value = value;
}

/* Makes the command set fence[id] = value when it succeeds. */
static inline void abi_cmd_signal(struct abi_cmd_hdr *h, uint32_t id, uint32_t value)
{
	h->word2 |= ABI_CMD_F_SIGNAL;
	h->word3 = (h->word3 & 0xFFFFu) | (id << 16);
	h->signal_value = value;
}

/* Name of an opcode, for logs, profiles and error messages. */
static inline const char *abi_op_name(uint32_t op)
{
	static const char *const names[ABI_OP_COUNT] = {
	    "NOP",	 "GEMM_FP8",	   "RMSNORM", "ROPE",	   "ACT_QUANT",
	    "SILU_MUL",	 "RESIDUAL_ADD",   "SOFTMAX", "MLA_ATTN",  "KV_APPEND",
	    "DMA_FILL",	 "FENCE",	   "BARRIER", "TIMESTAMP", "GEMV",
	    "MOE_ROUTE", "MLA_ATTN_LANES", "GATHER",  "COMBINE"};
	return op < ABI_OP_COUNT ? names[op] : "?";
}

/* Name of a status, for logs and error messages. */
static inline const char *abi_status_name(uint32_t st)
{
	static const char *const names[ABI_ST_COUNT] = {
	    "ok",	 "bad-magic", "bad-opcode", "bad-field", "bad-addr",  "no-cu",
	    "dep-error", "dma-error", "cu-timeout", "cu-error",	 "ring-error"};
	return st < ABI_ST_COUNT ? names[st] : "unknown";
}

#endif
