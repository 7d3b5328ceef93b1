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
int mla_kv_append(const float *c, const float *k_pe, uint8_t *cache, int pos, int n, int dc, int dr,
		  int fmt);

/* Modeled cost of one call. */
struct mla_attn_cost {
	uint64_t it[HLS_L_N]; /* pipelined-loop iterations (HLS_L_ATTN_*, HLS_L_APPEND), count */
	uint64_t bytes;	      /* cache + q + out bytes moved */
	uint64_t macs;	      /* score and weighted-sum MACs */
	uint64_t cycles;      /* modeled cycles */
};

/* Timing models (hls/README.md): per query and head group, chunks of max(load, score + softmax
 * + weighted sum); the cache is re-read per head group. Return cycles > 0 or -EINVAL. */
int64_t mla_attn_cycles(const struct hls_build *b, int nq, int pos0, int H, int dc, int dr, int fmt,
			struct mla_attn_cost *c);
int64_t mla_kv_append_cycles(const struct hls_build *b, int n, int dc, int dr, int fmt,
			     struct mla_attn_cost *c);

#endif
