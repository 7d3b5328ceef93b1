/*
 * mla_attn.h - the card's absorbed MLA attention kernel (docs/model.md, MLA): decode
 * (and causal multi-query) attention over the compressed KV cache, plus appending to that cache.
 *
 * Data flow: the host/firmware computes q_lat = W_UK^T q_nope and the RoPE'd q_pe per head (with
 * fp8_gemm / vec_ops), the cache lives in card memory (one record per token, layouts below), and
 * mla_attn() returns o_lat[h] = sum_t p_t c'_t per head; W_UV and o_proj follow on fp8_gemm.
 *
 * Cache record per token (little-endian, tokens contiguous, record size mla_record_bytes()):
 *   MLA_CACHE_F32   c' f32 [dc], k_pe f32 [dr]
 *   MLA_CACHE_BF16  c' bf16 [dc], k_pe bf16 [dr]
 *   MLA_CACHE_FP8   c' E4M3 [dc], dc/128 f32 group scales (hls_quant.h rule), k_pe bf16 [dr]
 *                   (FlashMLA's FP8 cache: 656 bytes for dc 512, dr 64)
 *
 * Numerics: score_t = (sum_i q_lat[i] c'_t[i] + sum_j q_pe[j] k_pe_t[j]) * scale, each dot in f32
 * with MLA_DL-lane fixed trees; causal online softmax in f32 over chunks of MLA_TB tokens with
 * hls_expf; out = acc / l. FP8 records are dequantized as f32(e4m3 * scale). Error against a double
 * reference is stated in hls/README.md and printed by hls/tests/test_mla_attn. A NaN in q, q_pe or
 * a visible cache record makes that head's output NaN.
 */
#ifndef MOECARD_MLA_ATTN_H
#define MOECARD_MLA_ATTN_H

#include <stddef.h>
#include <stdint.h>
#include "hls_timing.h"

#define MLA_MAX_DC 512	    /* largest kv_lora_rank */
#define MLA_MAX_DR 64	    /* largest qk_rope_head_dim */
#define MLA_MAX_H 128	    /* most heads */
#define MLA_HG 16	    /* heads computed in parallel (one head group) */
#define MLA_DL 32	    /* latent elements per cycle per head */
#define MLA_TB 32	    /* tokens per online-softmax chunk */
#define MLA_MAX_T (1 << 20) /* longest cache, tokens */
/*
 * Compute width of mla_attn (a build parameter; a board tree gives its mla_attn CU its own with
 * moecard,lane-macs): f32 MACs a cycle, a power of two 1..MLA_HG * MLA_DL. AT_LDE = min(width,
 * MLA_DL) latent elements of AT_LHP = width / AT_LDE heads a step; below MLA_DL one
 * MLA_DL-element tree takes MLA_DL / AT_LDE steps; the softmax takes AT_LHP heads a step. The
 * sums and their order are the same at every width (the trees are MLA_DL wide).
 */
#ifndef MLA_ATTN_MACS
#define MLA_ATTN_MACS (MLA_HG * MLA_DL)
#endif

enum mla_cache_fmt { MLA_CACHE_F32 = 0, MLA_CACHE_BF16 = 1, MLA_CACHE_FP8 = 2 };

/* Bytes of one token record; 0 when fmt/dc/dr are invalid (dc 1..512, dr 0..64, FP8 needs
 * dc % 128 == 0). */
size_t mla_record_bytes(int fmt, int dc, int dr);

/*
 * mla_attn - the kernel top. q_lat [nq][H][dc] f32, q_pe [nq][H][dr] f32, cache [pos0+nq]
 * records, out [nq][H][dc] f32. Query i sits at position pos0 + i and attends to cache tokens
 * 0..pos0+i (causal); decode is nq = 1.
 * Returns 0, or -EINVAL for nq < 1, pos0 < 0, pos0 + nq > MLA_MAX_T, H outside 1..MLA_MAX_H, a bad
 * record layout (mla_record_bytes() == 0) or a NULL pointer (q_pe may be NULL when dr == 0).
 */
int mla_attn(const float *q_lat, const float *q_pe, const uint8_t *cache, float *out, int nq,
	     int pos0, int H, int dc, int dr, int fmt, float scale);

/*
 * mla_kv_append - writes n tokens' records at positions pos..pos+n-1: c [n][dc] (c' after the
 * kv_a_layernorm) and k_pe [n][dr] (after RoPE), converted to the cache format (FP8 groups
 * quantized with hls_quant.h, no ue8m0). Returns 0 or -EINVAL (n < 1, pos < 0,
 * pos + n > MLA_MAX_T, bad layout, NULL pointer).
 */
/*
 * mla_kv_append_fold - one token's append from kv_a's raw row [c | k_pe] (row [dc + dr]): the
 * kv_a_layernorm (hls_rms.h: the vec_ops RMSNORM command's sums, scale and products, weight w
 * [dc], eps) and the RoPE of k_pe at table row tab + rope_pos * dr (cos, sin pairs: the vec_ops
 * ROPE command's products) in the input stage, then mla_kv_append's record at pos: the bytes an
 * RMSNORM command, a ROPE command and mla_kv_append write, bit for bit, in one command.
 * Returns 0 or -EINVAL (mla_kv_append's, dc > MLA_MAX_DC, dr > MLA_MAX_DR or odd, rope_pos < 0,
 * a NULL pointer).
 */
int mla_kv_append_fold(const float *row, const float *w, float eps, const float *tab, int rope_pos,
		       uint8_t *cache, int pos, int dc, int dr, int fmt);
/* mla_kv_append_fold_rows - n tokens' folded appends in one call: kv_a's raw rows [n][dc + dr]
 * back to back, row i as mla_kv_append_fold at pos + i with the table's row rope_pos + i (the
 * bytes n one-row calls write; a prompt's rows in one command). Returns 0 or -EINVAL
 * (mla_kv_append_fold's, n < 1). */
int mla_kv_append_fold_rows(const float *rows, int n, const float *w, float eps, const float *tab,
			    int rope_pos, uint8_t *cache, int pos, int dc, int dr, int fmt);
int mla_kv_append(const float *c, const float *k_pe, uint8_t *cache, int pos, int n, int dc, int dr,
		  int fmt);

/* Modeled cost of one call. */
struct mla_attn_cost {
	uint64_t it[HLS_L_N];	 /* pipelined-loop iterations (HLS_L_ATTN_*, HLS_L_LATT_*,
				    HLS_L_APPEND), count */
	uint64_t bytes;		 /* cache + q + out bytes moved */
	uint64_t macs;		 /* score and weighted-sum MACs */
	uint64_t cycles;	 /* modeled cycles */
	uint64_t lane_bytes_max; /* mla_attn_lanes: cache bytes the busiest lane read */
	uint64_t lane_cycles;	 /* mla_attn_lanes: cycles of the slowest lane (its stream stage),
				    summed over the head passes */
};

/* Timing models (hls/README.md): per query and head group, chunks of max(load, score + softmax
 * + weighted sum); the cache is re-read per head group. Return cycles > 0 or -EINVAL. */
int64_t mla_attn_cycles(const struct hls_build *b, int nq, int pos0, int H, int dc, int dr, int fmt,
			struct mla_attn_cost *c);
/* The same at a compute width of macs (a power of two 1..MLA_HG * MLA_DL; mla_attn_cycles is
 * MLA_ATTN_MACS). */
int64_t mla_attn_cycles2(const struct hls_build *b, int nq, int pos0, int H, int dc, int dr,
			 int fmt, int macs, struct mla_attn_cost *c);
int64_t mla_kv_append_cycles(const struct hls_build *b, int n, int dc, int dr, int fmt,
			     struct mla_attn_cost *c);
/* The folded input stage's width: elements a cycle of the norm's sum pass and of its products
 * (one row a token: a narrow stage, its DSPs in board_res.c). */
#define MLA_FOLD_LANES 8
/* mla_kv_append_fold's cycles: mla_kv_append's for one token + the norm's sum pass and its
 * products pass, MLA_FOLD_LANES elements a cycle each (the weight and the table row read beside
 * the row), the rsqrt and the input stage's depth. */
int64_t mla_kv_append_fold_cycles(const struct hls_build *b, int dc, int dr, int fmt,
				  struct mla_attn_cost *c);
/* mla_kv_append_fold_rows's cycles: the first row's burst latency once, then each row's
 * mla_kv_append_fold cycles without it (the next row's read is issued behind the row before:
 * the rows stream), its loop counts n times one row's. */
int64_t mla_kv_append_fold_rows_cycles(const struct hls_build *b, int n, int dc, int dr, int fmt,
				       struct mla_attn_cost *c);

/*
 * ---- mla_attn_lanes: decode attention over a cache striped on L lanes, all heads in one pass ----
 *
 * Lanes. Lane i is a memory bank of its own (on the card: HBM pseudo-channel i, as for fp8_gemv)
 * read only by lane unit i. The cache of one layer sits at the same offset cache_off in every lane
 * bank (a stripe set). In C the banks are passed as an array of L base pointers; the synthesizable
 * top has one m_axi port per lane (hls/README.md, "mla_attn_lanes").
 *
 * Striped layout: token block b = tokens [b TB, (b+1) TB) (TB = MLA_TB) lives in lane b % L as
 * that lane's local block j = b / L. Lane bank, from cache_off: local block j at j * TB * rb
 * (rb = mla_record_bytes()), token t of the block at + t * rb, records in the formats above.
 * mla_lanes_bytes() gives the bytes one lane needs for a capacity of T tokens.
 *
 * Numerics (the contract; query at position pos sees tokens 0..pos, T = pos + 1):
 *  1. Lane i (only lanes holding a token, i < nl = min(L, ceil(T / TB))) runs exactly mla_attn's
 *     per-head recurrence over its own blocks in ascending order, one block = one chunk: scores
 *     with the MLA_DL-lane trees, chunk max, corr = hls_expf(m - m'), p = hls_expf(s - m'),
 *     l = l corr + sum p (token order), acc = acc corr + sum_t p_t c'_t (token order), giving a
 *     partial (m_i, l_i, acc_i[dc]) per head. The compute width (MLA_LANE_MACS) changes the
 *     schedule only, never these sums.
 *  2. Merge per head, lanes in ascending order: M = max_i m_i (compare-select v > M ? v : M from
 *     -inf); w_i = hls_expf(m_i - M); l = l_0 w_0 + l_1 w_1 + ... (left to right, starting from
 *     the lane-0 product); for each element, A = acc_0 w_0 + acc_1 w_1 + ... likewise;
 *     out = A / l.
 *  With L = 1 (or T <= TB) the result is bit-identical to mla_attn (w_0 = 1); otherwise it differs
 *  from mla_attn only by f32 rounding (the lanes' chunk sequences are interleaved differently).
 *  A NaN in q or in a visible record makes that head's output NaN.
 *
 * Compute width. MLA_LANE_MACS (a build parameter, a power of two, 1..MLA_DL * MLA_MAX_H) f32 MACs
 * per cycle per lane: LDE = min(MLA_LANE_MACS, MLA_DL) latent elements of LHP = MLA_LANE_MACS / LDE
 * heads per step; below MLA_DL one MLA_DL-element tree takes MLA_DL / LDE steps. The softmax
 * handles LHP heads of one token per step.
 *
 * FP8 datapath (mode MLA_ATTN_FP8, OR-ed into fmt; needs MLA_CACHE_FP8 records, else -EINVAL).
 * The latent products multiply the cache's E4M3 codes by block integers (hls_bquant.h: q and
 * the softmax weights as integers of HLS_BQ_BITS = 11 magnitude bits with one power-of-two scale
 * 2^k per group) and sum exactly in integers, as fp8_gemm's blocks do; fixed(c) =
 * e4m3_decode_fixed(c) (units of 2^-9, a NaN code counts 0), so a product is an integer in units
 * of 2^(k-9) and sums of them are exact in int64. The scales are exponents: no divide anywhere.
 * G = HLS_QUANT_GROUP = 128, nb = dc / G; for a token t, c8_t[i] are its codes and sc_t[b] its
 * group scales; pow2(n) is 2^n as f32 (hls_pow2i), a product with it the exact scaling.
 *  F1. q, once per call: per head h and group b, kq[h][b] = hls_bq_exp(amax of q_lat[h][b G ..
 *      b G + G)) and qi[h][i] = hls_bq_int(q_lat[h][i], kq[h][b]). q_pe stays f32.
 *  F2. Score, per head and token: D_b = sum_{i in group b} qi[h][i] fixed(c8_t[i]) (exact);
 *      d_b = f32(f32(D_b) * pow2(kq[h][b] - 9)) (one rounding, then exact unless subnormal);
 *      S = +0, then S = f32(S + f32(d_b * sc_t[b])) for b = 0, 1, .. nb-1; R = the rope part as
 *      rule 1 sums it (R = +0, then R = R + tree_k over the MLA_DL-element blocks of
 *      q_pe . k_pe, k ascending; k_pe is bf16 -> f32); score = f32(f32(S + R) * scale).
 *  F3. Online softmax per block exactly as rule 1 (chunk max, corr, p_t, l).
 *  F4. Weighted sum, per block of tb tokens (tb = MLA_TB, fewer in the last block), head h and
 *      group b: w_t = f32(p_t * sc_t[b]); kw = hls_bq_exp(amax of w_0 .. w_{tb-1}) and wi_t =
 *      hls_bq_int(w_t, kw) (one group of tb values); for each channel i of group b:
 *      E = sum_t wi_t fixed(c8_t[i]) (exact, tokens of the block);
 *      acc[h][i] = f32(f32(acc[h][i] * corr) + f32(f32(E) * pow2(kw - 9))).
 *  F5. The merge (rule 2) unchanged.
 *  A NaN in q_lat or a NaN c' code counts 0 here (hls_bq_int maps a NaN to 0, an infinity to the
 *  clamp); a NaN in q_pe, k_pe or a group scale makes the head's output NaN.
 *
 * On-chip state (static buffers in C simulation, so one call at a time per process): per lane the
 * partials acc [MLA_MAX_H][MLA_MAX_DC], m, l and a chunk [MLA_TB][dc + dr]; q for all heads; for
 * the FP8 datapath also the chunk's codes and the quantized weights.
 * About 14 MB at MLA_MAX_LANES = 32 in C simulation, mostly the accumulators (URAM on the card).
 */
#define MLA_MAX_LANES 32 /* lanes of one CU (HBM pseudo-channels) */
#ifndef MLA_LANE_MACS
#define MLA_LANE_MACS 64 /* f32 MACs per cycle per lane */
#endif
/* FP8 datapath: integer MACs (a block integer times an E4M3 code) per cycle per lane (a power of
 * two, 128..4096). The score step is LIHP = MLA_LANE_IMACS / 128 heads x one 128-element group of
 * one token; the weighted-sum step is one head x MLA_LANE_IMACS / MLA_TB channels x the MLA_TB
 * tokens of a block. */
#ifndef MLA_LANE_IMACS
#define MLA_LANE_IMACS 256
#endif
/*
 * Head passes of mla_attn_lanes (a build parameter; a board tree gives its own with
 * moecard,lane-passes): a lane's accumulators hold the heads of one pass, [MLA_MAX_H / passes]
 * [dc], and the lanes run the passes one after another, each pass reading the lane's cache blocks
 * again and merging its own heads. The f32 datapath only (the FP8 one takes every head at once:
 * a build of more than one pass refuses it). The sums do not change.
 */
#ifndef MLA_LANE_PASSES
#define MLA_LANE_PASSES 1
#endif
/*
 * Cycles a lane's exp unit takes per exp (a build parameter; a board tree gives its own with
 * moecard,lane-exp-ii): 1 is a pipelined unit (hls_expf's 9 multiplies and 8 adds each their
 * own operator); at II >= 9 the softmax's exp loop and the corrections run at that interval and
 * the unit shares one multiplier and one adder among its steps (ceil(9 / II) and ceil(8 / II)).
 * The same operations in the same order: the bits do not change, only the cycles. At a few MACs
 * a lane the exps are a small part of a chunk's cycles and most of its DSPs.
 */
#ifndef MLA_LANE_EXP_II
#define MLA_LANE_EXP_II 1
#endif

/* 1: the build leaves the FP8 datapath out (a board tree's moecard,fp8-datapath = <0>); the FP8
 * mode is then refused with -EINVAL. */
#ifndef MLA_LANES_NO_FP8
#define MLA_LANES_NO_FP8 0
#endif
#define MLA_MIN_IMACS 128
#define MLA_MAX_IMACS 4096

/* Datapath mode of mla_attn_lanes, OR-ed into its fmt argument (the record format is fmt & 0xFF). */
#define MLA_ATTN_F32 0x000 /* f32 datapath (rules 1-2) */
#define MLA_ATTN_FP8 0x100 /* FP8 datapath (rules F1-F5), MLA_CACHE_FP8 records only */
#define MLA_MW 16	   /* merge / store elements per cycle (one 64-byte beat of f32) */
/* Lanes' partials the merge adds a cycle: MLA_MERGE_LANES exps for the weights, MLA_MW x
 * MLA_MERGE_LANES multiply-adds for the outputs (a pass over the heads per MLA_MERGE_LANES
 * lanes). */
#ifndef MLA_MERGE_LANES
#define MLA_MERGE_LANES 4
#endif

/* Bytes one lane bank needs from cache_off for a capacity of T tokens striped over L lanes:
 * ceil(ceil(T / MLA_TB) / L) * MLA_TB * rb. 0 when T < 1, T > MLA_MAX_T, L outside
 * 1..MLA_MAX_LANES or the record layout is invalid. */
uint64_t mla_lanes_bytes(int T, int L, int fmt, int dc, int dr);

/*
 * mla_attn_lanes_run - the kernel (C simulation entry: the lanes as an array; decode: one query). q_lat [H][dc] f32, q_pe [H][dr] f32 (may
 * be NULL when dr == 0), lane[0..L-1] the lane banks, the cache at lane[i] + cache_off, out
 * [H][dc] f32. The query sits at position pos and attends to tokens 0..pos. Only lanes
 * i < min(L, ceil((pos + 1) / MLA_TB)) are read (others may be NULL).
 * Returns 0, or -EINVAL for L outside 1..MLA_MAX_LANES, pos < 0, pos >= MLA_MAX_T, H outside
 * 1..MLA_MAX_H, a bad record layout, or a NULL pointer among those used. fmt is the record format,
 * OR-ed with MLA_ATTN_FP8 for the FP8 datapath (then the records must be MLA_CACHE_FP8).
 */
int mla_attn_lanes_run(const float *q_lat, const float *q_pe, const uint8_t *const *lane, int L,
		       uint64_t cache_off, float *out, int pos, int H, int dc, int dr, int fmt,
		       float scale);

/*
 * mla_attn_lanes_rows_run - R queries in one call (a batched decode step's rows, a prompt's
 * tokens): row r's query at q + r H (dc + dr) (q_lat then q_pe per head), its output at
 * out + r H dc, its cache the stripe set of capacity ctx_cap at cache_off + tab[2r] * slot_bytes
 * in every lane bank (lane_bytes each), attending to tab[2r + 1] positions (1..ctx_cap). Every
 * row is checked before any runs (-EINVAL: nothing written); each row's output is the one
 * mla_attn_lanes_run gives it, bit for bit. The rows run one after another; in hardware the next
 * row's query loads into a second q buffer while the lanes work on the current one.
 */
#define MLA_MAX_ROWS 256
/* 1: the lanes keep a second bank of their partial accumulators for the rows mode (the f32
 * datapath in one head pass): row r + 1's lanes accumulate into one bank while the merge reads
 * row r's partials from the other (mla_attn_lanes_rows_cycles; board_res.c counts the bank).
 * The C simulation runs the rows one after another either way: the bits do not change. */
#ifndef MLA_ROWS_PINGPONG
#define MLA_ROWS_PINGPONG 1
#endif
int mla_attn_lanes_rows_run(const float *q, const uint32_t *tab, int R, const uint8_t *const *lane,
			    int L, uint64_t lane_bytes, uint64_t cache_off, uint64_t slot_bytes,
			    int ctx_cap, float *out, int H, int dc, int dr, int fmt, float scale);

/*
 * ---- MHA mode of mla_attn_lanes: the non-absorbed form (batched prefill) ----
 *
 * For a fresh prompt the non-absorbed MLA costs fewer MACs than the absorbed one (per query,
 * position and head nope + rope + vd instead of 2 kv_lora + rope): kv_b expands every context
 * row's c' into per-head k_nope and v (a GEMV over the rows), and the attention runs per head
 * over explicit keys and values. The mode is MLA_ATTN_MHA OR-ed into fmt (the f32 datapath;
 * fmt's record format must be MLA_CACHE_F32: the K/V rows are f32).
 *
 * Operands: kv [n_kv][ld] f32 rows, ld = H (nope + vd) + dr: row t holds head h's k_nope at
 * h (nope + vd), its v at h (nope + vd) + nope, and the shared (roped) k_pe at H (nope + vd);
 * q [R][H][nope + dr] (q_nope then the roped q_pe per head); out [R][H][vd]; tab [R][2] as the
 * rows mode's (the slot word is not read), row r attending positions 0..tab[2r + 1] - 1.
 *
 * Numerics (the contract), per (row r, head h) with n = tab[2r + 1], key k_t = [k_nope_h | k_pe]
 * (dk = nope + dr values) and value v_t: rule 1 of one lane over the positions 0..n-1 in chunks
 * of MLA_TB (ascending): score_t = (S = +0, then S = S + tree_b for each MLA_DL-element block b
 * of q . k_t, b ascending, the blocks' halving trees as hls_tree.h's) * scale; chunk max,
 * corr = hls_expf(m - m'), p_t = hls_expf(s_t - m'), l = l corr + sum p (position order),
 * acc = acc corr + sum_t p_t v_t (position order); out = acc / l. There is no merge: each (row,
 * head) is computed whole by one unit, so the output does not depend on L or on the split. (It
 * equals mla_attn_lanes_run on one lane over records [v | k] with q_lat = 0, when vd % MLA_DL ==
 * 0: the latent blocks then add only zeros; hls/tests/test_mla_attn_mha.c checks it.)
 *
 * Units. The L lane units take (head, rows) items: with H >= L, ceil(H / L) passes of L heads
 * (unit i of pass p: head p L + i, every row); with H < L, one pass of S = L / H units a head
 * (unit u < H S: head u % H, the rows r with r % S == u / H). A unit loads its rows' q for its
 * head, then the K/V rows stream once per pass from one port (gmem_q), broadcast to the units in
 * blocks of MLA_TB positions (the pass's heads' k_nope|v slices and k_pe), and each unit scores
 * LHP = MLA_LANE_MACS / min(MLA_LANE_MACS, MLA_DL) of its rows a step against each block.
 * On chip a unit keeps its rows' q [nr][dk] and accumulators [nr][vd]: the storage of the
 * absorbed mode's accumulator banks (MLA_MHA_BUF floats), so nr (dk + vd) <= MLA_MHA_BUF.
 */
#define MLA_ATTN_MHA 0x200 /* MHA mode, OR-ed into fmt (MLA_CACHE_F32 records) */
#define MLA_MHA_MAX_DK 256 /* nope + rope */
#define MLA_MHA_MAX_DV 256 /* v_head_dim */
#define MLA_MHA_BUF ((1 + MLA_ROWS_PINGPONG) * MLA_MAX_H * MLA_MAX_DC)
/* The most rows (<= MLA_MAX_ROWS) one MHA call of H heads on L units takes for dk, dv; 0 when the
 * shape is out of range. */
int mla_mha_rows_max(int L, int H, int dk, int dv);
/* mla_attn_mha_run - the MHA mode (C simulation entry). Returns 0, or -EINVAL (nothing written)
 * for L outside 1..MLA_MAX_LANES, H outside 1..MLA_MAX_H, nope < 0, dr < 0 or odd, dk = nope + dr
 * outside 1..MLA_MHA_MAX_DK, vd outside 1..MLA_MHA_MAX_DV, R outside 1..mla_mha_rows_max(),
 * n_kv < 1, a row's n outside 1..n_kv, or a NULL pointer. */
int mla_attn_mha_run(const float *q, const float *kv, int n_kv, const uint32_t *tab, int R,
		     float *out, int L, int H, int nope, int dr, int vd, float scale);
/* Its timing model for a compute width of lane_macs (as mla_attn_lanes_cycles2's): the row
 * table, then per pass the units' q loads (one port), the K/V stream (the first block exposed,
 * then per block max(load, the busiest unit's compute)) and the stores (hls/README.md). The
 * HLS_COUNT loop counts equal the model's at lane_macs == MLA_LANE_MACS. Returns cycles > 0 or
 * -EINVAL (what mla_attn_mha_run rejects, a bad width, b NULL). c may be NULL. */
int64_t mla_attn_mha_cycles(const struct hls_build *b, int L, const uint32_t *tab, int R, int H,
			    int nope, int dr, int vd, int lane_macs, struct mla_attn_cost *c);

/* The synthesis top of the MLA_SYNTH_LANES-lane build: q_lat, q_pe, one pointer per lane (l0 ..
 * l31), out, then the scalars, then the rows mode's q_rows, tab and scalars (bitstream/kernels.c
 * lists the same arguments); it runs mla_attn_lanes_run, or with rows > 1
 * mla_attn_lanes_rows_run. Not reentrant in C simulation (the on-chip buffers are static). */
#define MLA_SYNTH_LANES 32
int mla_attn_lanes(const float *q_lat, const float *q_pe, const uint8_t *l0, const uint8_t *l1,
		   const uint8_t *l2, const uint8_t *l3, const uint8_t *l4, const uint8_t *l5,
		   const uint8_t *l6, const uint8_t *l7, const uint8_t *l8, const uint8_t *l9,
		   const uint8_t *l10, const uint8_t *l11, const uint8_t *l12, const uint8_t *l13,
		   const uint8_t *l14, const uint8_t *l15, const uint8_t *l16, const uint8_t *l17,
		   const uint8_t *l18, const uint8_t *l19, const uint8_t *l20, const uint8_t *l21,
		   const uint8_t *l22, const uint8_t *l23, const uint8_t *l24, const uint8_t *l25,
		   const uint8_t *l26, const uint8_t *l27, const uint8_t *l28, const uint8_t *l29,
		   const uint8_t *l30, const uint8_t *l31, float *out, unsigned int cache_off,
		   int pos, int H, int dc, int dr, int fmt, float scale, const float *q_rows,
		   const unsigned int *tab, int rows, unsigned int slot_bytes,
		   unsigned int lane_bytes, int ctx_cap);

/*
 * mla_kv_append_lanes - writes n tokens' records at positions pos..pos+n-1 into the striped layout
 * (each record to its lane), c [n][dc], k_pe [n][dr]; the records are byte-identical to
 * mla_kv_append's. Returns 0 or -EINVAL (n < 1, pos < 0, pos + n > MLA_MAX_T, L outside
 * 1..MLA_MAX_LANES, bad layout, a NULL pointer among the lanes written).
 */
int mla_kv_append_lanes(const float *c, const float *k_pe, uint8_t *const *lane, int L,
			uint64_t cache_off, int pos, int n, int dc, int dr, int fmt);

/*
 * Timing model of mla_attn_lanes for a compute width of lane_macs f32 MACs (a power of two,
 * 1..MLA_DL * MLA_MAX_H) and, in the FP8 datapath (fmt | MLA_ATTN_FP8), lane_imacs integer MACs
 * (a power of two, MLA_MIN_IMACS..MLA_MAX_IMACS) per cycle per lane; the HLS_COUNT loop counts
 * equal the model's when both equal the compiled-in MLA_LANE_MACS / MLA_LANE_IMACS: slowest lane
 * (the q broadcast load, + q quantization, beside the lanes' first loads, the scoring waiting for
 * it; the first block's records streamed into the score step; then per chunk max(load,
 * compute)) + merge weights + merge/normalize/store (hls/README.md). Returns cycles > 0 or
 * -EINVAL (the arguments mla_attn_lanes rejects, a bad width, b NULL). c may be NULL.
 */
int64_t mla_attn_lanes_cycles2(const struct hls_build *b, int L, int pos, int H, int dc, int dr,
			       int fmt, int lane_macs, int lane_imacs, struct mla_attn_cost *c);
/* mla_attn_lanes_cycles2 with lane_imacs = MLA_LANE_IMACS. */
int64_t mla_attn_lanes_cycles(const struct hls_build *b, int L, int pos, int H, int dc, int dr,
			      int fmt, int lane_macs, struct mla_attn_cost *c);
/* mla_attn_lanes_rows_run's cycles: the row table (8 bytes a row), then per row its lanes, merge
 * weights and merge/store (mla_attn_lanes_cycles2), a later row's q broadcast exposed only where
 * it outlasts the row before it (the second q buffer); in the f32 datapath with one head pass
 * (MLA_ROWS_PINGPONG) the rows pipeline: a row's lanes run while the row before merges from the
 * other accumulator bank; otherwise (FP8, several passes) with one head pass a row's lanes'
 * first loads run while the row before merges (the lanes idle then). tab as the run's: [R][2]
 * {slot, n_ctx}. c sums the rows' loop counts and bytes. */
int64_t mla_attn_lanes_rows_cycles(const struct hls_build *b, int L, const uint32_t *tab, int R,
				   int H, int dc, int dr, int fmt, int lane_macs, int lane_imacs,
				   struct mla_attn_cost *c);
/* The striped append costs what mla_kv_append costs for the same n (one record at a time). */
int64_t mla_kv_append_lanes_cycles(const struct hls_build *b, int n, int dc, int dr, int fmt,
				   struct mla_attn_cost *c);

#endif
