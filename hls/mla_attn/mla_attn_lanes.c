/*
 * mla_attn_lanes.c - decode MLA attention over a latent cache striped on L lanes, every head in
 * one pass over the cache, and the striped KV append (see mla_attn.h, "mla_attn_lanes").
 *
 *  gmem_q (q_lat, q_pe, all H heads) --beats--> [q broadcast: q[H][dc + dr] in every lane unit]
 *
 *  lane i bank --its blocks, ascending--> [load: dequant to f32 kv[TB][dc + dr]] (ping-pong)
 *     (one lane unit per bank,             v
 *      all L in parallel)           [score: LHP heads x LDE elements = MLA_LANE_MACS MACs/cycle]
 *                                          v
 *                                   [online softmax: chunk max, corr, p = e^(s - m'), LHP heads]
 *                                          v
 *                                   [weighted sum: acc_i[h] = acc_i[h] corr + sum_t p_t c'_t]
 *                                          v  partial (m_i, l_i, acc_i) per head, per lane
 *  [merge weights: M = max m_i, w_i = e^(m_i - M), l = sum l_i w_i, lanes ascending, per head]
 *                                          v
 *  [merge + store: out = (sum_i acc_i w_i) / l, MLA_MW elements per cycle] --> gmem_o
 *
 * FP8 datapath (fmt | MLA_ATTN_FP8, rules F1-F5 in mla_attn.h): q is quantized once after the
 * broadcast (lanes_qquant); per block the load keeps the c' codes as fixed point, the latent score
 * is an exact integer dot product per 128-channel group (lanes_iscore, MLA_LANE_IMACS integer
 * MACs) while the f32 score loop covers k_pe only; after the softmax the block weights are
 * quantized per (head, group) (lanes_wquant) and the latent sum is exact over the block's tokens
 * (lanes_iacc) before its f32 update.
 *
 * Each lane streams its cache blocks exactly once; all heads are scored against a chunk while it
 * is on chip, so the cache is read once per layer (mla_attn re-reads it per head group).
 *
 * Short contexts (fewer blocks than lanes: a lane holds MLA_TB tokens): the idle lane units help
 * the ones that own blocks. Each owner's chunk, loaded and decoded once, is broadcast to S - 1
 * helper units (MLA_MW values per beat, lanes_bcast), and the S units score and sum contiguous
 * head groups of it (ml_split: S = min(L / owners, head groups); not on the FP8 datapath). The
 * partials of a head are the ones its owner would have made, so the output is bit-identical.
 *
 * C simulation runs the lane units one after the other; the synthesized design unrolls the lane
 * loop into MLA_MAX_LANES units (the per-lane arrays are partitioned on their lane dimension),
 * each reading its own m_axi port. The buffers are static (about 14 MB with the FP8 datapath's,
 * mostly the per-lane accumulators), so the kernel is not reentrant.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "mla_attn.h"
#include "e4m3.h"
#include "hls_math.h"
#include "hls_quant.h"
#include "hls_bquant.h"
#include "hls_strict.h"
#include "hls_tree.h"

#ifndef __SYNTHESIS__
#pragma GCC diagnostic ignored "-Wunknown-pragmas"
#pragma GCC diagnostic ignored "-Wunused-label"
#endif

#define ML_BEAT 64                                  /* bytes per 512-bit beat */
#define ML_MAX_REC (4 * (MLA_MAX_DC + MLA_MAX_DR))  /* largest record (f32) */
#define ML_DK (MLA_MAX_DC + MLA_MAX_DR)             /* score vector length bound */
#define ML_LDE (MLA_LANE_MACS < MLA_DL ? MLA_LANE_MACS : MLA_DL) /* latent elements per step */
#define ML_LHP (MLA_LANE_MACS / ML_LDE)                          /* heads per step */
#define ML_SUB (MLA_DL / ML_LDE)                                 /* steps per MLA_DL tree */

#define ML_G HLS_QUANT_GROUP                                   /* channels per c' / q scale */
#define ML_NG (MLA_MAX_DC / ML_G)                                /* most groups per record */
#define ML_LIHP (MLA_LANE_IMACS / ML_G)  /* FP8 score: heads per step (one group each) */
#define ML_LPC (MLA_LANE_IMACS / MLA_TB) /* FP8 weighted sum: channels per step */

_Static_assert(MLA_LANE_IMACS >= MLA_MIN_IMACS && MLA_LANE_IMACS <= MLA_MAX_IMACS &&
		       (MLA_LANE_IMACS & (MLA_LANE_IMACS - 1)) == 0,
	       "MLA_LANE_IMACS is a power of two in MLA_MIN_IMACS..MLA_MAX_IMACS");
_Static_assert(MLA_LANE_MACS >= 1 && MLA_LANE_MACS <= MLA_DL * MLA_MAX_H &&
		       (MLA_LANE_MACS & (MLA_LANE_MACS - 1)) == 0,
	       "MLA_LANE_MACS is a power of two in 1..MLA_DL * MLA_MAX_H");

static int ml_cdiv(int a, int b) { return (a + b - 1) / b; }
static int ml_min(int a, int b) { return a < b ? a : b; }

/* Short contexts: when fewer than L lanes own a block (nl < L), each owner's blocks are shared by
 * S lane units that take contiguous head groups of them (of ng groups of ML_LHP heads): the owner
 * unit loads and decodes each chunk and broadcasts it to its S - 1 helpers. 1 for the FP8
 * datapath and when every lane owns a block. */
static int ml_split(int nl, int L, int ng, int fp8)
{
	if (fp8 || nl >= L)
		return 1;
	return ml_min(L / nl, ng);
}

/* On-chip state: q broadcast to every lane unit, then per lane its chunk and its partials. */
static float ml_q[MLA_MAX_H][ML_DK];
static float ml_acc[MLA_MAX_LANES][MLA_MAX_H][MLA_MAX_DC];
static float ml_m[MLA_MAX_LANES][MLA_MAX_H], ml_l[MLA_MAX_LANES][MLA_MAX_H];
static float ml_kv[MLA_MAX_LANES][MLA_TB][ML_DK];
static float ml_s[MLA_MAX_LANES][MLA_MAX_H][MLA_TB];
static float ml_mx[MLA_MAX_LANES][MLA_MAX_H], ml_corr[MLA_MAX_LANES][MLA_MAX_H];
static uint8_t ml_rec[MLA_MAX_LANES][ML_MAX_REC];
/* merge: per head, the lanes' weights, the merged l and the overall max */
static float ml_w[MLA_MAX_H][MLA_MAX_LANES], ml_lsum[MLA_MAX_H], ml_mm[MLA_MAX_H];
/* FP8 datapath: q as block integers (hls_bquant.h) and their scale exponents for all heads; per
 * lane the chunk's c' codes (fixed point) and group scales, the latent score sums S, the block
 * weights' integers and scale exponents */
static int32_t ml_qf[MLA_MAX_H][MLA_MAX_DC];
static int ml_kq[MLA_MAX_H][ML_NG];
static float ml_qamax[MLA_MAX_H][ML_NG];
static int32_t ml_cf[MLA_MAX_LANES][MLA_TB][MLA_MAX_DC];
static float ml_csc[MLA_MAX_LANES][MLA_TB][ML_NG];
static float ml_si[MLA_MAX_LANES][MLA_MAX_H][MLA_TB];
static int32_t ml_wf[MLA_MAX_LANES][MLA_MAX_H][ML_NG][MLA_TB];
static int ml_kw[MLA_MAX_LANES][MLA_MAX_H][ML_NG];

static float ml_rd_f32(const uint8_t *p)
{
	return e4m3_bits_f32((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
			     (uint32_t)p[3] << 24);
}
static float ml_rd_bf16(const uint8_t *p) { return bf16_to_f32((uint16_t)(p[0] | p[1] << 8)); }

/* Decodes one staged record into kv[0..dc+dr) (c' then k_pe), f32 (as mla_attn does). */
static void ml_decode(const uint8_t rec[ML_MAX_REC], int fmt, int dc, int dr, float kv[ML_DK])
{
lanes_decode:
	for (int i = 0; i < dc + dr; i++) {
#pragma HLS UNROLL factor=64
		float v;
		if (fmt == MLA_CACHE_F32)
			v = ml_rd_f32(rec + 4 * i);
		else if (fmt == MLA_CACHE_BF16)
			v = ml_rd_bf16(rec + 2 * i);
		else if (i < dc)
			v = e4m3_decode(rec[i]) * ml_rd_f32(rec + dc + 4 * (i / HLS_QUANT_GROUP));
		else
			v = ml_rd_bf16(rec + dc + 4 * (dc / HLS_QUANT_GROUP) + 2 * (i - dc));
		kv[i] = v;
	}
}

/* FP8 datapath: splits one staged FP8 record into its c' codes as fixed point, its group scales
 * and k_pe (f32, at kv[dc..dc+dr), where the rope score reads it). */
static void ml_decode8(const uint8_t rec[ML_MAX_REC], int dc, int dr, int32_t cf[MLA_MAX_DC],
		       float csc[ML_NG], float kv[ML_DK])
{
lanes_decode8:
	for (int i = 0; i < dc + dr; i++) {
#pragma HLS UNROLL factor=64
		if (i < dc) {
			cf[i] = e4m3_decode_fixed(rec[i]);
			if (i % ML_G == 0)
				csc[i / ML_G] = ml_rd_f32(rec + dc + 4 * (i / ML_G));
		} else {
			kv[i] = ml_rd_bf16(rec + dc + 4 * (dc / ML_G) + 2 * (i - dc));
		}
	}
}

/* Fixed-order lane tree of MLA_DL products (mla_attn's). */

/*
 * One lane unit (index unit): the blocks j = 0, 1, ... (global block j L + li) of owner lane li
 * in ascending order, each block one online-softmax chunk for the head groups [g0, g1) (all of
 * them unless the context is short: ml_split); leaves those heads' partials in
 * ml_m/ml_l/ml_acc[li]. Part 0 is the owner, which loads the chunks from its bank; a helper
 * (part > 0) receives each decoded chunk by broadcast (C simulation reads the owner's bank for
 * it). Every head's sums are the same whichever unit computes them.
 */
static void ml_lane(const uint8_t *bank, int li, int unit, int part, int g0, int g1, int L, int T,
		    int H, int dc, int dr, int fmt, int fp8, float scale, int rb)
{
	/* one set of ML_LHP exp units a lane: the chunk's corrections and its p values are
	 * sequential loops (lanes_softmax_exp's ML_LHP heads every MLA_LANE_EXP_II cycles) */
#pragma HLS ALLOCATION function instances=hls_expf limit=ML_LHP
	int dk = dc + dr, nbs = ml_cdiv(dk, MLA_DL), nbc = ml_cdiv(dc, MLA_DL);
	/* the f32 score covers all of c' and k_pe, the FP8 datapath's only k_pe (dc % 128 == 0) */
	int sb0 = fp8 ? nbc : 0, ngq = dc / ML_G, ngi = ml_cdiv(H, ML_LIHP);
	int rbeats = ml_cdiv(rb, ML_BEAT), dbeats = ml_cdiv(dk, MLA_MW);
	int h0 = g0 * ML_LHP, h1 = ml_min(g1 * ML_LHP, H);
	int nblk = ml_cdiv(T, MLA_TB), nj = li < nblk ? ml_cdiv(nblk - li, L) : 0;
	float(*acc)[MLA_MAX_DC] = ml_acc[li];
	float(*kv)[ML_DK] = ml_kv[unit];
	float(*s)[MLA_TB] = ml_s[unit];
	float *m = ml_m[li], *l = ml_l[li], *mx = ml_mx[unit], *corr = ml_corr[unit];
	uint8_t *rec = ml_rec[unit];
	int32_t(*cf)[MLA_MAX_DC] = ml_cf[unit];
	float(*csc)[ML_NG] = ml_csc[unit];
	float(*si)[MLA_TB] = ml_si[unit];
	int32_t(*wf)[ML_NG][MLA_TB] = ml_wf[unit];
	int(*kw)[ML_NG] = ml_kw[unit];
	for (int h = h0; h < h1; h++) {
		for (int i = 0; i < dc; i++)
			acc[h][i] = 0.0f;
		m[h] = e4m3_bits_f32(0xFF800000u);
		l[h] = 0.0f;
	}
lanes_chunk:
	for (int j = 0; j < nj; j++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=4096
		int t0 = (j * L + li) * MLA_TB, tb = ml_min(MLA_TB, T - t0);
	lanes_load:
		for (int t = 0; t < tb; t++) {
			const uint8_t *src = bank + ((size_t)j * MLA_TB + t) * (size_t)rb;
			for (int b = 0; b < rbeats; b++) {
#pragma HLS PIPELINE II=1
				if (!part)
					HLS_CNT(HLS_L_LATT_LOAD);
				for (int e = 0; e < ML_BEAT; e++)
					if (b * ML_BEAT + e < rb)
						rec[b * ML_BEAT + e] = src[b * ML_BEAT + e];
			}
			if (fp8)
				ml_decode8(rec, dc, dr, cf[t], csc[t], kv[t]);
			else
				ml_decode(rec, fmt, dc, dr, kv[t]);
		lanes_bcast: /* a helper receives the decoded token, MLA_MW values per beat */
			for (int b = 0; b < (part ? dbeats : 0); b++) {
#pragma HLS PIPELINE II=1
				HLS_CNT(HLS_L_LATT_BCAST);
			}
		}
		for (int h = h0; h < h1; h++)
			for (int t = 0; t < MLA_TB; t++)
				s[h][t] = si[h][t] = 0.0f;
	lanes_score:
		for (int g = g0; g < g1; g++)
			for (int b = sb0; b < nbs; b++)
				for (int t = 0; t < tb; t++) {
					float lv[ML_LHP][2 * ML_SUB] = {{0}};
#pragma HLS ARRAY_PARTITION variable=lv complete dim=0
					for (int sb = 0; sb < ML_SUB; sb++) {
#pragma HLS PIPELINE II=1
						HLS_CNT(HLS_L_LATT_SCORE);
						for (int hh = 0; hh < ML_LHP; hh++) {
							int h = g * ML_LHP + hh;
							float p[ML_LDE];
							for (int e = 0; e < ML_LDE; e++) {
								int i = b * MLA_DL + sb + e * ML_SUB;
								p[e] = h < H && i < dk ? ml_q[h][i] * kv[t][i] : 0.0f;
							}
							/* the MLA_DL tree in ML_SUB steps
							 * (hls_tree.h) */
							float v = hls_tree_feed(lv[hh], ML_SUB, sb,
										hls_tree(p, ML_LDE));
							if (sb == ML_SUB - 1 && h < H)
								s[h][t] += v;
						}
					}
				}
		/* FP8 latent score (rule F2): per head and group one exact integer dot product of
		 * q's 128 block integers with the token's codes, scaled by q's power of two (an
		 * exponent) and the token's group scale in f32, summed over the groups ascending */
	lanes_iscore:
		for (int gi = 0; gi < (fp8 ? ngi : 0); gi++)
			for (int b = 0; b < ngq; b++)
				for (int t = 0; t < tb; t++) {
#pragma HLS PIPELINE II=1
					HLS_CNT(HLS_L_LATT_ISCORE);
					for (int hh = 0; hh < ML_LIHP; hh++) {
						int h = gi * ML_LIHP + hh;
						if (h >= H)
							continue;
						int64_t D = 0;
						for (int e = 0; e < ML_G; e++)
							D += (int64_t)ml_qf[h][b * ML_G + e] *
							     cf[t][b * ML_G + e];
						float d = (float)D * hls_pow2i(ml_kq[h][b] - 9);
						si[h][t] = si[h][t] + d * csc[t][b];
					}
				}
	lanes_softmax_max:
		for (int t = 0; t < tb; t++)
			for (int g = g0; g < g1; g++) {
#pragma HLS PIPELINE II=1
				HLS_CNT(HLS_L_LATT_SOFTMAX);
				for (int hh = 0; hh < ML_LHP; hh++) {
					int h = g * ML_LHP + hh;
					if (h >= H)
						continue;
					float v = (fp8 ? si[h][t] + s[h][t] : s[h][t]) * scale;
					s[h][t] = v;
					float cur = t == 0 ? m[h] : mx[h];
					mx[h] = v > cur ? v : cur;
				}
			}
		for (int h = h0; h < h1; h++) {
			corr[h] = hls_expf(m[h] - mx[h]);
			l[h] = l[h] * corr[h];
			m[h] = mx[h];
		}
	lanes_softmax_exp: /* one exp unit set a lane: MLA_LANE_EXP_II cycles an exp */
		for (int t = 0; t < tb; t++)
			for (int g = g0; g < g1; g++) {
#pragma HLS PIPELINE II=MLA_LANE_EXP_II
				HLS_CNT(HLS_L_LATT_SOFTMAX);
				for (int hh = 0; hh < ML_LHP; hh++) {
					int h = g * ML_LHP + hh;
					if (h >= H)
						continue;
					float p = hls_expf(s[h][t] - m[h]);
					s[h][t] = p;
					l[h] = l[h] + p;
				}
			}
		/* FP8 weighted sum (rule F4): per head and group the block's weights as one group of
		 * tb block integers, then per channel an exact integer sum over the block's tokens */
	lanes_wquant:
		for (int h = 0; h < (fp8 ? H : 0); h++)
			for (int b = 0; b < ngq; b++) {
#pragma HLS PIPELINE II=1
				HLS_CNT(HLS_L_LATT_WQUANT);
				float w[MLA_TB], wmax = 0.0f;
				for (int t = 0; t < tb; t++) {
					w[t] = s[h][t] * csc[t][b];
					wmax = hls_amax_step(wmax, w[t]);
				}
				int k = hls_bq_exp(wmax);
				kw[h][b] = k;
				for (int t = 0; t < MLA_TB; t++)
					wf[h][b][t] = t < tb ? hls_bq_int(w[t], k) : 0;
			}
	lanes_iacc:
		for (int h = 0; h < (fp8 ? H : 0); h++)
			for (int k = 0; k < dc / ML_LPC; k++) {
#pragma HLS PIPELINE II=1
				HLS_CNT(HLS_L_LATT_IACC);
				for (int e = 0; e < ML_LPC; e++) {
					int i = k * ML_LPC + e, b = i / ML_G;
					int64_t E = 0;
					for (int t = 0; t < MLA_TB; t++)
						E += (int64_t)wf[h][b][t] * cf[t][i];
					float a = acc[h][i] * corr[h];
					float z = (float)E * hls_pow2i(kw[h][b] - 9);
					acc[h][i] = a + z;
				}
			}
	lanes_acc:
		for (int g = g0; g < (fp8 ? g0 : g1); g++)
			for (int t = 0; t < tb; t++)
				for (int b = 0; b < nbc; b++)
					for (int sb = 0; sb < ML_SUB; sb++) {
#pragma HLS PIPELINE II=1
						HLS_CNT(HLS_L_LATT_ACC);
						for (int hh = 0; hh < ML_LHP; hh++) {
							int h = g * ML_LHP + hh;
							for (int e = 0; e < ML_LDE; e++) {
								int i = b * MLA_DL + sb * ML_LDE + e;
								if (h >= H || i >= dc)
									continue;
								float a = t == 0 ? acc[h][i] * corr[h]
										 : acc[h][i];
								acc[h][i] = a + s[h][t] * kv[t][i];
							}
						}
					}
	}
}

uint64_t mla_lanes_bytes(int T, int L, int fmt, int dc, int dr)
{
	size_t rb = mla_record_bytes(fmt, dc, dr);
	if (!rb || T < 1 || T > MLA_MAX_T || L < 1 || L > MLA_MAX_LANES)
		return 0;
	uint64_t nblk = (uint64_t)ml_cdiv(T, MLA_TB);
	return (nblk + (uint64_t)L - 1) / (uint64_t)L * MLA_TB * rb;
}

/* mla_attn_lanes_run in P head passes (MLA_LANE_PASSES in the build; the tests run others). */
static int ml_run(const float *q_lat, const float *q_pe, const uint8_t *const *lane, int L,
		  uint64_t cache_off, float *out, int pos, int H, int dc, int dr, int fmt, float scale,
		  int P)
{
#pragma HLS ARRAY_PARTITION variable=ml_acc complete dim=1
#pragma HLS ARRAY_PARTITION variable=ml_kv complete dim=1
#pragma HLS ARRAY_PARTITION variable=ml_s complete dim=1
#pragma HLS ARRAY_PARTITION variable=ml_m complete dim=1
#pragma HLS ARRAY_PARTITION variable=ml_l complete dim=1
	int mode = fmt & ~0xFF, fp8 = mode == MLA_ATTN_FP8;
	fmt &= 0xFF;
	size_t rbz = mla_record_bytes(fmt, dc, dr);
	/* built without the FP8 datapath (a board's fp8-datapath 0), or with more than one head
	 * pass (the FP8 datapath needs every head's accumulators at once) */
	if (fp8 && (MLA_LANES_NO_FP8 || P > 1))
		return -EINVAL;
	fp8 = fp8 && !MLA_LANES_NO_FP8; /* a constant 0 removes the FP8 loops from such a build */
	if (!rbz || (mode && !fp8) || (fp8 && fmt != MLA_CACHE_FP8) || L < 1 || L > MLA_MAX_LANES ||
	    pos < 0 || pos >= MLA_MAX_T || H < 1 || H > MLA_MAX_H || !q_lat || (dr > 0 && !q_pe) ||
	    !lane || !out)
		return -EINVAL;
	int T = pos + 1, rb = (int)rbz;
	int nl = ml_min(L, ml_cdiv(T, MLA_TB)), ncb = ml_cdiv(dc, MLA_MW), nrb = ml_cdiv(dr, MLA_MW);
	for (int i = 0; i < nl; i++)
		if (!lane[i])
			return -EINVAL;
	for (int h = 0; h < H; h++)
		for (int b = 0; b < ML_NG; b++)
			ml_qamax[h][b] = 0.0f;
lanes_q:
	for (int h = 0; h < H; h++)
		for (int b = 0; b < ncb + nrb; b++) {
#pragma HLS PIPELINE II=1
			HLS_CNT(HLS_L_LATT_Q);
			for (int e = 0; e < MLA_MW; e++) {
				int i = b < ncb ? b * MLA_MW + e : (b - ncb) * MLA_MW + e;
				if (b < ncb && i < dc) {
					float v = q_lat[(size_t)h * dc + i];
					ml_q[h][i] = v;
					/* the FP8 q groups' amax (rule F1), as the beats arrive */
					ml_qamax[h][i / ML_G] = hls_amax_step(ml_qamax[h][i / ML_G], v);
				} else if (b >= ncb && i < dr)
					ml_q[h][dc + i] = q_pe[(size_t)h * dr + i];
			}
		}
	/* FP8 q (rule F1): the group's scale exponent from its amax, then MLA_TB block integers per
	 * step */
lanes_qquant:
	for (int h = 0; h < (fp8 ? H : 0); h++)
		for (int k = 0; k < dc / MLA_TB; k++) {
#pragma HLS PIPELINE II=1
			HLS_CNT(HLS_L_LATT_QQUANT);
			int b = k * MLA_TB / ML_G;
			int kq = hls_bq_exp(ml_qamax[h][b]);
			ml_kq[h][b] = kq;
			for (int e = 0; e < MLA_TB; e++) {
				int i = k * MLA_TB + e;
				ml_qf[h][i] = hls_bq_int(ml_q[h][i], kq);
			}
		}
	int ng = ml_cdiv(H, ML_LHP), np = ml_min(P > 1 ? P : 1, ng);
	/* the merge adds MLA_MERGE_LANES lanes a pass: each pass over the heads (and, for the
	 * outputs, their beats) carries a head's chains to the next, so no pass waits on its own
	 * adds */
	int npass = ml_cdiv(nl, MLA_MERGE_LANES);
lanes_heads: /* the head passes: groups [gp0, gp1) of ML_LHP heads, heads [hp0, hp1) */
	for (int p = 0; p < np; p++) {
		int gp0 = p * ng / np, gp1 = (p + 1) * ng / np, ngp = gp1 - gp0;
		int hp0 = gp0 * ML_LHP, hp1 = ml_min(gp1 * ML_LHP, H);
		int S = ml_split(nl, L, ngp, fp8);
	lanes_run:
		for (int u = 0; u < nl * S; u++) {
#pragma HLS UNROLL
			int li = u % nl, k = u / nl;
			ml_lane(lane[li] + cache_off, li, u, k, gp0 + k * ngp / S,
				gp0 + (k + 1) * ngp / S, L, T, H, dc, dr, fmt, fp8, scale, rb);
		}
	lanes_max:
		for (int h = hp0; h < hp1; h++) {
#pragma HLS PIPELINE II=1
			HLS_CNT(HLS_L_LATT_WEIGHT);
			float M = e4m3_bits_f32(0xFF800000u);
			for (int i = 0; i < nl; i++)
				M = ml_m[i][h] > M ? ml_m[i][h] : M;
			ml_mm[h] = M;
		}
	lanes_weight:
		for (int ps = 0; ps < npass; ps++)
			for (int h = hp0; h < hp1; h++) {
#pragma HLS PIPELINE II=1
				HLS_CNT(HLS_L_LATT_WEIGHT);
				float ls = ml_lsum[h];
				for (int ii = 0; ii < MLA_MERGE_LANES; ii++) {
					int i = ps * MLA_MERGE_LANES + ii;
					if (i >= nl)
						continue;
					float w = hls_expf(ml_m[i][h] - ml_mm[h]);
					ml_w[h][i] = w;
					ls = i == 0 ? ml_l[i][h] * w : ls + ml_l[i][h] * w;
				}
				ml_lsum[h] = ls;
			}
		/* lane 0's accumulator holds the running sums (it is not read again) */
	lanes_merge:
		for (int ps = 0; ps < npass; ps++)
			for (int h = hp0; h < hp1; h++)
				for (int b = 0; b < ncb; b++) {
#pragma HLS PIPELINE II=1
					HLS_CNT(HLS_L_LATT_MERGE);
					for (int e = 0; e < MLA_MW; e++) {
						int i = b * MLA_MW + e;
						if (i >= dc)
							continue;
						float a = ml_acc[0][h][i];
						for (int kk = 0; kk < MLA_MERGE_LANES; kk++) {
							int k = ps * MLA_MERGE_LANES + kk;
							if (k >= nl)
								continue;
							a = k == 0 ? a * ml_w[h][0]
								   : a + ml_acc[k][h][i] * ml_w[h][k];
						}
						if (ps == npass - 1)
							out[(size_t)h * dc + i] = a / ml_lsum[h];
						else
							ml_acc[0][h][i] = a;
					}
				}
	}
	return 0;
}

int mla_attn_lanes_run(const float *q_lat, const float *q_pe, const uint8_t *const *lane, int L,
		       uint64_t cache_off, float *out, int pos, int H, int dc, int dr, int fmt,
		       float scale)
{
	return ml_run(q_lat, q_pe, lane, L, cache_off, out, pos, H, dc, dr, fmt, scale,
		      MLA_LANE_PASSES);
}

/* One row's query split into the kernel's q_lat / q_pe (on chip: the q broadcast's buffer). */
static float ml_rq_lat[MLA_MAX_H * MLA_MAX_DC], ml_rq_pe[MLA_MAX_H * MLA_MAX_DR];

int mla_attn_lanes_rows_run(const float *q, const uint32_t *tab, int R,
			    const uint8_t *const *lane, int L, uint64_t lane_bytes,
			    uint64_t cache_off, uint64_t slot_bytes, int ctx_cap, float *out, int H,
			    int dc, int dr, int fmt, float scale)
{
	uint64_t need = mla_lanes_bytes(ctx_cap, L, fmt & 0xFF, dc, dr);
	if (!q || !tab || !out || R < 1 || R > MLA_MAX_ROWS || H < 1 || H > MLA_MAX_H || dc < 1 ||
	    dc > MLA_MAX_DC || dr < 0 || dr > MLA_MAX_DR || !need || need > lane_bytes)
		return -EINVAL;
	/* every row checked before any runs: its slot's stripe set inside the lane banks, its
	 * context inside the capacity */
rows_check:
	for (int r = 0; r < R; r++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=16
		uint64_t off = cache_off + (uint64_t)tab[2 * r] * slot_bytes;
		if (tab[2 * r + 1] < 1 || tab[2 * r + 1] > (uint32_t)ctx_cap || off < cache_off ||
		    off > lane_bytes - need)
			return -EINVAL;
	}
	int row = dc + dr;
rows_run:
	for (int r = 0; r < R; r++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=16
		const float *qr = q + (size_t)r * H * row;
		for (int h = 0; h < H; h++) {
			for (int i = 0; i < dc; i++)
				ml_rq_lat[h * dc + i] = qr[(size_t)h * row + i];
			for (int i = 0; i < dr; i++)
				ml_rq_pe[h * dr + i] = qr[(size_t)h * row + dc + i];
		}
		int rc = mla_attn_lanes_run(ml_rq_lat, dr ? ml_rq_pe : NULL, lane, L,
					    cache_off + (uint64_t)tab[2 * r] * slot_bytes,
					    out + (size_t)r * H * dc, (int)tab[2 * r + 1] - 1, H, dc, dr,
					    fmt, scale);
		if (rc)
			return rc;
	}
	return 0;
}

/* ---- MHA mode: the non-absorbed form over explicit K/V rows (mla_attn.h) ------------------ */

/* The units' split: np passes, S units a head (one of them is 1). */
static void mh_split(int L, int H, int *np, int *S)
{
	*np = H >= L ? ml_cdiv(H, L) : 1;
	*S = H >= L ? 1 : L / H;
}

int mla_mha_rows_max(int L, int H, int dk, int dv)
{
	int np, S;
	if (L < 1 || L > MLA_MAX_LANES || H < 1 || H > MLA_MAX_H || dk < 1 || dk > MLA_MHA_MAX_DK ||
	    dv < 1 || dv > MLA_MHA_MAX_DV)
		return 0;
	mh_split(L, H, &np, &S);
	int nr = MLA_MHA_BUF / (dk + dv); /* a unit's rows */
	return ml_min(MLA_MAX_ROWS, nr * S);
}

/* A unit's on-chip state: its rows' q and accumulators (the accumulator banks' storage), m, l;
 * the broadcast block's keys and values; the scores of LHP rows. */
static float mh_q[MLA_MAX_LANES][MLA_MAX_ROWS][MLA_MHA_MAX_DK];
static float mh_acc[MLA_MAX_LANES][MLA_MAX_ROWS][MLA_MHA_MAX_DV];
static float mh_m[MLA_MAX_LANES][MLA_MAX_ROWS], mh_l[MLA_MAX_LANES][MLA_MAX_ROWS];
static float mh_k[MLA_MAX_LANES][MLA_TB][MLA_MHA_MAX_DK];
static float mh_v[MLA_MAX_LANES][MLA_TB][MLA_MHA_MAX_DV];
static float mh_s[MLA_MAX_LANES][ML_LHP][MLA_TB];

/* Unit u of a pass: head h, its rows r = r0, r0 + S, .. < R. The first unit of the pass (lead)
 * counts the broadcast's beats (the stream is read once a pass). */
static void mh_unit(const float *q, const float *kv, const uint32_t *tab, int R, float *out,
		    int u, int h, int r0, int S, int lead, int H, int nope, int dr, int vd,
		    int nmax, int hp0, int hp1, float scale)
{
#pragma HLS ALLOCATION function instances=hls_expf limit=ML_LHP
	int dk = nope + dr, nbs = ml_cdiv(dk, MLA_DL), nbv = ml_cdiv(vd, MLA_DL);
	int hw = nope + vd, ld = H * hw + dr, nr = r0 < R ? ml_cdiv(R - r0, S) : 0;
	int qb = ml_cdiv(dk, MLA_MW), ob = ml_cdiv(vd, MLA_MW), ng = ml_cdiv(nr, ML_LHP);
	/* the beats of a position's broadcast: the pass's heads' k_nope|v slices, then k_pe */
	int sbeats = ml_cdiv((hp1 - hp0) * hw, MLA_MW) + ml_cdiv(dr, MLA_MW);
	float(*uq)[MLA_MHA_MAX_DK] = mh_q[u];
	float(*acc)[MLA_MHA_MAX_DV] = mh_acc[u];
	float(*kk)[MLA_MHA_MAX_DK] = mh_k[u];
	float(*vv)[MLA_MHA_MAX_DV] = mh_v[u];
	float(*s)[MLA_TB] = mh_s[u];
	float *m = mh_m[u], *l = mh_l[u];
mha_q: /* the unit's rows' q of head h, MLA_MW values a beat */
	for (int j = 0; j < nr; j++)
		for (int b = 0; b < qb; b++) {
#pragma HLS PIPELINE II=1
			HLS_CNT(HLS_L_MHA_Q);
			for (int e = 0; e < MLA_MW; e++) {
				int i = b * MLA_MW + e;
				if (i < dk)
					uq[j][i] = q[((size_t)(r0 + j * S) * H + h) * dk + i];
			}
		}
	for (int j = 0; j < nr; j++) {
		for (int i = 0; i < vd; i++)
			acc[j][i] = 0.0f;
		m[j] = e4m3_bits_f32(0xFF800000u);
		l[j] = 0.0f;
	}
mha_block:
	for (int t0 = 0; t0 < nmax; t0 += MLA_TB) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=4096
		int tl = ml_min(MLA_TB, nmax - t0);
	mha_load: /* the block's positions as broadcast: this unit keeps head h's k and v */
		for (int t = 0; t < tl; t++) {
			const float *row = kv + (size_t)(t0 + t) * ld;
			for (int b = 0; b < sbeats; b++) {
#pragma HLS PIPELINE II=1
				if (lead)
					HLS_CNT(HLS_L_MHA_LOAD);
			}
			for (int i = 0; i < nope; i++)
				kk[t][i] = row[(size_t)h * hw + i];
			for (int i = 0; i < dr; i++)
				kk[t][nope + i] = row[(size_t)H * hw + i];
			for (int i = 0; i < vd; i++)
				vv[t][i] = row[(size_t)h * hw + nope + i];
		}
	mha_group: /* LHP rows a step; a row sees the block's positions below its n */
		for (int g = 0; g < ng; g++) {
			int tb[ML_LHP], tg = 0;
			for (int rr = 0; rr < ML_LHP; rr++) {
				int j = g * ML_LHP + rr;
				int n = j < nr ? (int)tab[2 * (r0 + j * S) + 1] : 0;
				tb[rr] = n > t0 ? ml_min(MLA_TB, n - t0) : 0;
				tg = tb[rr] > tg ? tb[rr] : tg;
			}
			if (!tg)
				continue;
			for (int rr = 0; rr < ML_LHP; rr++)
				for (int t = 0; t < MLA_TB; t++)
					s[rr][t] = 0.0f;
		mha_score:
			for (int b = 0; b < nbs; b++)
				for (int t = 0; t < tg; t++) {
					float lv[ML_LHP][2 * ML_SUB] = {{0}};
#pragma HLS ARRAY_PARTITION variable=lv complete dim=0
					for (int sb = 0; sb < ML_SUB; sb++) {
#pragma HLS PIPELINE II=1
						HLS_CNT(HLS_L_MHA_SCORE);
						for (int rr = 0; rr < ML_LHP; rr++) {
							int j = g * ML_LHP + rr;
							float p[ML_LDE];
							for (int e = 0; e < ML_LDE; e++) {
								int i = b * MLA_DL + sb + e * ML_SUB;
								p[e] = t < tb[rr] && i < dk
									   ? uq[j][i] * kk[t][i]
									   : 0.0f;
							}
							float v = hls_tree_feed(lv[rr], ML_SUB, sb,
										hls_tree(p, ML_LDE));
							if (sb == ML_SUB - 1 && t < tb[rr])
								s[rr][t] += v;
						}
					}
				}
			float mx[ML_LHP] = {0}, corr[ML_LHP] = {0};
		mha_softmax_max:
			for (int t = 0; t < tg; t++) {
#pragma HLS PIPELINE II=1
				HLS_CNT(HLS_L_MHA_SOFTMAX);
				for (int rr = 0; rr < ML_LHP; rr++) {
					int j = g * ML_LHP + rr;
					if (t >= tb[rr])
						continue;
					float v = s[rr][t] * scale;
					s[rr][t] = v;
					float cur = t == 0 ? m[j] : mx[rr];
					mx[rr] = v > cur ? v : cur;
				}
			}
			for (int rr = 0; rr < ML_LHP; rr++) {
				int j = g * ML_LHP + rr;
				if (!tb[rr])
					continue;
				corr[rr] = hls_expf(m[j] - mx[rr]);
				l[j] = l[j] * corr[rr];
				m[j] = mx[rr];
			}
		mha_softmax_exp:
			for (int t = 0; t < tg; t++) {
#pragma HLS PIPELINE II=MLA_LANE_EXP_II
				HLS_CNT(HLS_L_MHA_SOFTMAX);
				for (int rr = 0; rr < ML_LHP; rr++) {
					int j = g * ML_LHP + rr;
					if (t >= tb[rr])
						continue;
					float p = hls_expf(s[rr][t] - m[j]);
					s[rr][t] = p;
					l[j] = l[j] + p;
				}
			}
		mha_acc:
			for (int t = 0; t < tg; t++)
				for (int b = 0; b < nbv; b++)
					for (int sb = 0; sb < ML_SUB; sb++) {
#pragma HLS PIPELINE II=1
						HLS_CNT(HLS_L_MHA_ACC);
						for (int rr = 0; rr < ML_LHP; rr++) {
							int j = g * ML_LHP + rr;
							for (int e = 0; e < ML_LDE; e++) {
								int i = b * MLA_DL + sb * ML_LDE + e;
								if (t >= tb[rr] || i >= vd)
									continue;
								float a = t == 0 ? acc[j][i] * corr[rr]
										 : acc[j][i];
								acc[j][i] = a + s[rr][t] * vv[t][i];
							}
						}
					}
		}
	}
mha_store: /* out = acc / l, MLA_MW values a beat */
	for (int j = 0; j < nr; j++)
		for (int b = 0; b < ob; b++) {
#pragma HLS PIPELINE II=1
			HLS_CNT(HLS_L_MHA_STORE);
			for (int e = 0; e < MLA_MW; e++) {
				int i = b * MLA_MW + e;
				if (i < vd)
					out[((size_t)(r0 + j * S) * H + h) * vd + i] = acc[j][i] / l[j];
			}
		}
}

int mla_attn_mha_run(const float *q, const float *kv, int n_kv, const uint32_t *tab, int R,
		     float *out, int L, int H, int nope, int dr, int vd, float scale)
{
#pragma HLS ARRAY_PARTITION variable=mh_acc complete dim=1
#pragma HLS ARRAY_PARTITION variable=mh_q complete dim=1
#pragma HLS ARRAY_PARTITION variable=mh_k complete dim=1
#pragma HLS ARRAY_PARTITION variable=mh_v complete dim=1
	int dk = nope + dr, np, S;
	if (!q || !kv || !tab || !out || nope < 0 || dr < 0 || dr % 2 || n_kv < 1 ||
	    R > mla_mha_rows_max(L, H, dk, vd) || R < 1)
		return -EINVAL;
	int nmax = 0;
mha_check: /* every row checked before any runs */
	for (int r = 0; r < R; r++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=256
		int n = (int)tab[2 * r + 1];
		if (tab[2 * r + 1] < 1 || tab[2 * r + 1] > (uint32_t)n_kv)
			return -EINVAL;
		nmax = n > nmax ? n : nmax;
	}
	mh_split(L, H, &np, &S);
mha_pass:
	for (int p = 0; p < np; p++) {
		int hp0 = p * L, hp1 = ml_min(hp0 + L, H), nu = H >= L ? hp1 - hp0 : H * S;
		/* (the units of a pass run in parallel; one broadcast stream of rows 0..nmax-1) */
	mha_units:
		for (int u = 0; u < nu; u++) {
#pragma HLS UNROLL
			int h = H >= L ? hp0 + u : u % H, r0 = H >= L ? 0 : u / H;
			mh_unit(q, kv, tab, R, out, u, h, r0, S, u == 0, H, nope, dr, vd, nmax,
				H >= L ? hp0 : 0, H >= L ? hp1 : H, scale);
		}
	}
	return 0;
}

/* The synthesis top of the MLA_SYNTH_LANES-lane build: q on gmem_q, the output on gmem_o, one
 * m_axi port per lane (bound to its own pseudo-channel by bitstream/), the stripe set's offset as
 * a 32-bit scalar. Runs mla_attn_lanes_run on every lane. */
int mla_attn_lanes(const float *q_lat, const float *q_pe, const uint8_t *l0, const uint8_t *l1, const uint8_t *l2, const uint8_t *l3, const uint8_t *l4, const uint8_t *l5, const uint8_t *l6, const uint8_t *l7, const uint8_t *l8, const uint8_t *l9, const uint8_t *l10, const uint8_t *l11, const uint8_t *l12, const uint8_t *l13, const uint8_t *l14, const uint8_t *l15, const uint8_t *l16, const uint8_t *l17, const uint8_t *l18, const uint8_t *l19, const uint8_t *l20, const uint8_t *l21, const uint8_t *l22, const uint8_t *l23, const uint8_t *l24, const uint8_t *l25, const uint8_t *l26, const uint8_t *l27, const uint8_t *l28, const uint8_t *l29, const uint8_t *l30, const uint8_t *l31, float *out,
		   unsigned int cache_off, int pos, int H, int dc, int dr, int fmt, float scale,
		   const float *q_rows, const unsigned int *tab, int rows, unsigned int slot_bytes,
		   unsigned int lane_bytes, int ctx_cap)
{
#pragma HLS INTERFACE m_axi port=q_lat bundle=gmem_q offset=slave max_widen_bitwidth=512
#pragma HLS INTERFACE m_axi port=q_pe bundle=gmem_q offset=slave max_widen_bitwidth=512
#pragma HLS INTERFACE m_axi port=q_rows bundle=gmem_q offset=slave max_widen_bitwidth=512
#pragma HLS INTERFACE m_axi port=tab bundle=gmem_q offset=slave
#pragma HLS INTERFACE m_axi port=l0 bundle=gmem_l0 offset=slave max_widen_bitwidth=512 max_read_burst_length=64
#pragma HLS INTERFACE m_axi port=l1 bundle=gmem_l1 offset=slave max_widen_bitwidth=512 max_read_burst_length=64
#pragma HLS INTERFACE m_axi port=l2 bundle=gmem_l2 offset=slave max_widen_bitwidth=512 max_read_burst_length=64
#pragma HLS INTERFACE m_axi port=l3 bundle=gmem_l3 offset=slave max_widen_bitwidth=512 max_read_burst_length=64
#pragma HLS INTERFACE m_axi port=l4 bundle=gmem_l4 offset=slave max_widen_bitwidth=512 max_read_burst_length=64
#pragma HLS INTERFACE m_axi port=l5 bundle=gmem_l5 offset=slave max_widen_bitwidth=512 max_read_burst_length=64
#pragma HLS INTERFACE m_axi port=l6 bundle=gmem_l6 offset=slave max_widen_bitwidth=512 max_read_burst_length=64
#pragma HLS INTERFACE m_axi port=l7 bundle=gmem_l7 offset=slave max_widen_bitwidth=512 max_read_burst_length=64
#pragma HLS INTERFACE m_axi port=l8 bundle=gmem_l8 offset=slave max_widen_bitwidth=512 max_read_burst_length=64
#pragma HLS INTERFACE m_axi port=l9 bundle=gmem_l9 offset=slave max_widen_bitwidth=512 max_read_burst_length=64
#pragma HLS INTERFACE m_axi port=l10 bundle=gmem_l10 offset=slave max_widen_bitwidth=512 max_read_burst_length=64
#pragma HLS INTERFACE m_axi port=l11 bundle=gmem_l11 offset=slave max_widen_bitwidth=512 max_read_burst_length=64
#pragma HLS INTERFACE m_axi port=l12 bundle=gmem_l12 offset=slave max_widen_bitwidth=512 max_read_burst_length=64
#pragma HLS INTERFACE m_axi port=l13 bundle=gmem_l13 offset=slave max_widen_bitwidth=512 max_read_burst_length=64
#pragma HLS INTERFACE m_axi port=l14 bundle=gmem_l14 offset=slave max_widen_bitwidth=512 max_read_burst_length=64
#pragma HLS INTERFACE m_axi port=l15 bundle=gmem_l15 offset=slave max_widen_bitwidth=512 max_read_burst_length=64
#pragma HLS INTERFACE m_axi port=l16 bundle=gmem_l16 offset=slave max_widen_bitwidth=512 max_read_burst_length=64
#pragma HLS INTERFACE m_axi port=l17 bundle=gmem_l17 offset=slave max_widen_bitwidth=512 max_read_burst_length=64
#pragma HLS INTERFACE m_axi port=l18 bundle=gmem_l18 offset=slave max_widen_bitwidth=512 max_read_burst_length=64
#pragma HLS INTERFACE m_axi port=l19 bundle=gmem_l19 offset=slave max_widen_bitwidth=512 max_read_burst_length=64
#pragma HLS INTERFACE m_axi port=l20 bundle=gmem_l20 offset=slave max_widen_bitwidth=512 max_read_burst_length=64
#pragma HLS INTERFACE m_axi port=l21 bundle=gmem_l21 offset=slave max_widen_bitwidth=512 max_read_burst_length=64
#pragma HLS INTERFACE m_axi port=l22 bundle=gmem_l22 offset=slave max_widen_bitwidth=512 max_read_burst_length=64
#pragma HLS INTERFACE m_axi port=l23 bundle=gmem_l23 offset=slave max_widen_bitwidth=512 max_read_burst_length=64
#pragma HLS INTERFACE m_axi port=l24 bundle=gmem_l24 offset=slave max_widen_bitwidth=512 max_read_burst_length=64
#pragma HLS INTERFACE m_axi port=l25 bundle=gmem_l25 offset=slave max_widen_bitwidth=512 max_read_burst_length=64
#pragma HLS INTERFACE m_axi port=l26 bundle=gmem_l26 offset=slave max_widen_bitwidth=512 max_read_burst_length=64
#pragma HLS INTERFACE m_axi port=l27 bundle=gmem_l27 offset=slave max_widen_bitwidth=512 max_read_burst_length=64
#pragma HLS INTERFACE m_axi port=l28 bundle=gmem_l28 offset=slave max_widen_bitwidth=512 max_read_burst_length=64
#pragma HLS INTERFACE m_axi port=l29 bundle=gmem_l29 offset=slave max_widen_bitwidth=512 max_read_burst_length=64
#pragma HLS INTERFACE m_axi port=l30 bundle=gmem_l30 offset=slave max_widen_bitwidth=512 max_read_burst_length=64
#pragma HLS INTERFACE m_axi port=l31 bundle=gmem_l31 offset=slave max_widen_bitwidth=512 max_read_burst_length=64
#pragma HLS INTERFACE m_axi port=out bundle=gmem_o offset=slave max_widen_bitwidth=512
#pragma HLS INTERFACE s_axilite port=cache_off
#pragma HLS INTERFACE s_axilite port=pos
#pragma HLS INTERFACE s_axilite port=H
#pragma HLS INTERFACE s_axilite port=dc
#pragma HLS INTERFACE s_axilite port=dr
#pragma HLS INTERFACE s_axilite port=fmt
#pragma HLS INTERFACE s_axilite port=scale
#pragma HLS INTERFACE s_axilite port=rows
#pragma HLS INTERFACE s_axilite port=slot_bytes
#pragma HLS INTERFACE s_axilite port=lane_bytes
#pragma HLS INTERFACE s_axilite port=ctx_cap
#pragma HLS INTERFACE s_axilite port=return
	const uint8_t *const lane[MLA_SYNTH_LANES] = {l0, l1, l2, l3, l4, l5, l6, l7, l8, l9, l10, l11, l12, l13, l14, l15, l16, l17, l18, l19, l20, l21, l22, l23, l24, l25, l26, l27, l28, l29, l30, l31};
	if (fmt & MLA_ATTN_MHA) /* MHA mode: the K/V rows on q_lat's port, q_rows [rows][H][slot_bytes
				   + dr], ctx_cap rows of K/V, slot_bytes = nope, dc = vd */
		return (fmt & ~MLA_ATTN_MHA) != MLA_CACHE_F32
			   ? -EINVAL
			   : mla_attn_mha_run(q_rows, q_lat, ctx_cap, tab, rows, out, MLA_SYNTH_LANES,
					      H, (int)slot_bytes, dr, dc, scale);
	if (rows > 1) /* several queries: q_rows [rows][H][dc + dr], tab [rows][2] */
		return mla_attn_lanes_rows_run(q_rows, tab, rows, lane, MLA_SYNTH_LANES, lane_bytes,
					       cache_off, slot_bytes, ctx_cap, out, H, dc, dr, fmt,
					       scale);
	return mla_attn_lanes_run(q_lat, q_pe, lane, MLA_SYNTH_LANES, cache_off, out, pos, H, dc, dr,
				  fmt, scale);
}

int mla_kv_append_lanes(const float *c, const float *k_pe, uint8_t *const *lane, int L,
			uint64_t cache_off, int pos, int n, int dc, int dr, int fmt)
{
#pragma HLS INTERFACE m_axi port=c bundle=gmem_q offset=slave max_widen_bitwidth=512
#pragma HLS INTERFACE m_axi port=k_pe bundle=gmem_q offset=slave
#pragma HLS INTERFACE m_axi port=lane bundle=gmem_l offset=slave max_widen_bitwidth=512
#pragma HLS INTERFACE s_axilite port=L
#pragma HLS INTERFACE s_axilite port=cache_off
#pragma HLS INTERFACE s_axilite port=pos
#pragma HLS INTERFACE s_axilite port=n
#pragma HLS INTERFACE s_axilite port=dc
#pragma HLS INTERFACE s_axilite port=dr
#pragma HLS INTERFACE s_axilite port=fmt
#pragma HLS INTERFACE s_axilite port=return
	size_t rb = mla_record_bytes(fmt, dc, dr);
	if (!rb || n < 1 || pos < 0 || pos > MLA_MAX_T - n || L < 1 || L > MLA_MAX_LANES || !c ||
	    (dr > 0 && !k_pe) || !lane)
		return -EINVAL;
	int b0 = pos / MLA_TB, b1 = (pos + n - 1) / MLA_TB;
	for (int b = b0; b <= b1 && b < b0 + L; b++)
		if (!lane[b % L])
			return -EINVAL;
	/* one run of tokens per block: mla_kv_append writes them at the lane-local position */
append_lanes_block:
	for (int b = b0; b <= b1; b++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=128
		int t0 = b * MLA_TB > pos ? b * MLA_TB : pos;
		int t1 = ml_min((b + 1) * MLA_TB, pos + n);
		int local = (b / L) * MLA_TB + (t0 - b * MLA_TB);
		mla_kv_append(c + (size_t)(t0 - pos) * dc, dr ? k_pe + (size_t)(t0 - pos) * dr : k_pe,
			      lane[b % L] + cache_off, local, t1 - t0, dc, dr, fmt);
	}
	return 0;
}

#ifndef __SYNTHESIS__ /* the timing model runs on the host, it is not synthesized */
/* ---- timing model ------------------------------------------------------------------------- */

/* The q broadcast stage of one query (and the FP8 datapath's q quantization): mem_latency +
 * the q beats (+ quantization). */
static uint64_t ml_q_cycles(const struct hls_build *bd, int H, int dc, int dr, int fmt)
{
	uint64_t Hu = (uint64_t)H, qbytes = Hu * (uint64_t)(dc + dr) * 4;
	uint64_t it = Hu * (hls_cdiv64((uint64_t)dc, MLA_MW) + hls_cdiv64((uint64_t)dr, MLA_MW));
	uint64_t cyc = bd->mem_latency + hls_max64(it, hls_mem_cycles(bd, qbytes));
	if ((fmt & ~0xFF) == MLA_ATTN_FP8) /* the block integers' rounding: a shift, no divide */
		cyc += Hu * (uint64_t)dc / MLA_TB + bd->depth_vec;
	return cyc;
}

/* One query's cycles with its q on chip q_at cycles after the lanes start (the q broadcast runs
 * beside the lanes' first loads: only the scoring waits for it); the lanes' first loads may have
 * started pre cycles before (a rows call: while the row before merged, its lanes idle). */
static int64_t ml_cycles_q(const struct hls_build *bd, int L, int pos, int H, int dc, int dr,
			   int fmt, int lane_macs, int lane_imacs, uint64_t q_at, uint64_t pre,
			   struct mla_attn_cost *c)
{
	struct mla_attn_cost tmp;
	int mode = fmt & ~0xFF, fp8 = mode == MLA_ATTN_FP8;
	fmt &= 0xFF;
	size_t rb = mla_record_bytes(fmt, dc, dr);
	if (!bd || !rb || (mode && !fp8) || (fp8 && fmt != MLA_CACHE_FP8) || L < 1 ||
	    L > MLA_MAX_LANES || pos < 0 || pos >= MLA_MAX_T || H < 1 || H > MLA_MAX_H ||
	    lane_macs < 1 || lane_macs > MLA_DL * MLA_MAX_H || (lane_macs & (lane_macs - 1)) ||
	    lane_imacs < MLA_MIN_IMACS || lane_imacs > MLA_MAX_IMACS ||
	    (lane_imacs & (lane_imacs - 1)))
		return -EINVAL;
	if (!c)
		c = &tmp;
	for (int i = 0; i < HLS_L_N; i++)
		c->it[i] = 0;
	c->bytes = c->macs = c->cycles = c->lane_bytes_max = c->lane_cycles = 0;
	uint64_t lde = (uint64_t)(lane_macs < MLA_DL ? lane_macs : MLA_DL);
	uint64_t lhp = (uint64_t)lane_macs / lde, sub = MLA_DL / lde;
	uint64_t ng = hls_cdiv64((uint64_t)H, lhp), rbeats = hls_cdiv64(rb, ML_BEAT);
	uint64_t nbs = hls_cdiv64((uint64_t)(dc + dr), MLA_DL), nbc = hls_cdiv64((uint64_t)dc, MLA_DL);
	uint64_t ncb = hls_cdiv64((uint64_t)dc, MLA_MW), nrb = hls_cdiv64((uint64_t)dr, MLA_MW);
	uint64_t T = (uint64_t)pos + 1, nblk = hls_cdiv64(T, MLA_TB), Hu = (uint64_t)H;
	uint64_t nl = nblk < (uint64_t)L ? nblk : (uint64_t)L;
	/* FP8 datapath: groups, integer score heads per step, weighted-sum channels per step */
	uint64_t ngq = (uint64_t)dc / ML_G, lihp = (uint64_t)lane_imacs / ML_G;
	uint64_t ngi = hls_cdiv64(Hu, lihp), lpc = (uint64_t)lane_imacs / MLA_TB;
	uint64_t nsb = fp8 ? nbs - nbc : nbs; /* f32 score blocks: all, or the rope's only */
	/* q broadcast: one bank, H heads of q_lat and q_pe beats */
	uint64_t qbytes = Hu * (uint64_t)(dc + dr) * 4, obytes = Hu * (uint64_t)dc * 4;
	c->it[HLS_L_LATT_Q] = Hu * (ncb + nrb);
	/* FP8 q quantization: MLA_TB values per step after the load pass found the amax (both
	 * in q_at, ml_q_cycles) */
	if (fp8)
		c->it[HLS_L_LATT_QQUANT] = Hu * (uint64_t)dc / MLA_TB;
	uint64_t cyc = 0;
	/* the head passes (f32 datapath): each runs the lanes over its head groups, then merges
	 * its heads */
	uint64_t np = fp8 ? 1 : (uint64_t)(bd->lane_passes > 1 ? bd->lane_passes : 1);
	uint64_t xii = (uint64_t)(bd->lane_exp_ii > 1 ? bd->lane_exp_ii : 1);
	np = np < ng ? np : ng;
	uint64_t dbeats = hls_cdiv64((uint64_t)(dc + dr), MLA_MW);
	uint64_t npass = hls_cdiv64(nl, MLA_MERGE_LANES); /* the merge's lane passes */
	uint64_t lane_b[MLA_MAX_LANES] = {0}; /* cache bytes each lane reads over the passes */
	for (uint64_t p = 0; p < np; p++) {
		uint64_t gp0 = p * ng / np, gp1 = (p + 1) * ng / np, ngp = gp1 - gp0;
		uint64_t hp = (gp1 * lhp < Hu ? gp1 * lhp : Hu) - gp0 * lhp, pass_cycles = 0;
		/* lanes in parallel: per chunk max(load, compute) after the first chunk's exposed
		 * load; at short contexts S units share an owner's blocks by head groups (ml_split),
		 * the helpers receiving each decoded chunk by broadcast instead of loading it */
		uint64_t S = (uint64_t)ml_split((int)nl, L, (int)ngp, fp8);
		for (uint64_t u = 0; u < nl * S; u++) {
			uint64_t li = u % nl, k = u / nl, ngk = (k + 1) * ngp / S - k * ngp / S;
			uint64_t lc = bd->mem_latency, lb = 0;
			for (uint64_t b = li; b < nblk; b += (uint64_t)L) {
				uint64_t tb = (b + 1) * MLA_TB <= T ? MLA_TB : T - b * MLA_TB;
				uint64_t ld = k ? 0 : tb * rbeats, sc = ngk * nsb * tb * sub;
				uint64_t sm = 2 * tb * ngk, bc = k ? tb * dbeats : 0;
				uint64_t ac = fp8 ? 0 : ngk * tb * nbc * sub;
				uint64_t isc = fp8 ? ngi * ngq * tb : 0, wq = fp8 ? Hu * ngq : 0;
				uint64_t iac = fp8 ? Hu * (uint64_t)dc / lpc : 0;
				/* the exp loop and the corrections at the exp unit's interval */
				uint64_t comp = sc + sm + ac + (xii - 1) * (tb + 1) * ngk +
						2 * (uint64_t)bd->depth_vec + 2 * bd->depth_exp;
				/* FP8: integer score (its f32 scaling drains once), the weights'
				 * block integers (a multiply, the amax and a rounding shift: a scale
				 * step's depth), integer weighted sum (its f32 update drains once) */
				if (fp8)
					comp += isc + wq + iac + 3 * (uint64_t)bd->depth_scale;
				uint64_t load = k ? bc : hls_max64(ld, hls_mem_cycles(bd, tb * rb));
				if (b == li) {
					/* the first block: its records stream into the score step
					 * as they arrive (from lc), which starts once q is on chip
					 * (the first pass); then its softmax and weighted sums */
					uint64_t pr = p ? 0 : pre, in = lc > pr ? lc - pr : 0;
					uint64_t scs = sc + isc, s0 = hls_max64(in, p ? 0 : q_at);
					uint64_t got = lc + load > pr ? lc + load - pr : 0;
					lc = hls_max64(got, s0 + scs) + (comp - scs);
				} else {
					lc += hls_max64(load, comp);
				}
				lb += k ? 0 : tb * rb;
				c->it[HLS_L_LATT_LOAD] += ld;
				c->it[HLS_L_LATT_BCAST] += bc;
				c->it[HLS_L_LATT_SCORE] += sc;
				c->it[HLS_L_LATT_SOFTMAX] += sm;
				c->it[HLS_L_LATT_ACC] += ac;
				c->it[HLS_L_LATT_ISCORE] += isc;
				c->it[HLS_L_LATT_WQUANT] += wq;
				c->it[HLS_L_LATT_IACC] += iac;
			}
			c->bytes += lb;
			lane_b[li] += lb;
			c->lane_bytes_max = hls_max64(c->lane_bytes_max, lane_b[li]);
			pass_cycles = hls_max64(pass_cycles, lc);
		}
		c->lane_cycles += pass_cycles;
		cyc += pass_cycles;
		/* merge weights: per head the max over the lanes, then passes of MLA_MERGE_LANES
		 * exps and multiply-adds over the heads */
		c->it[HLS_L_LATT_WEIGHT] += hp + npass * hp;
		cyc += hp + npass * hp + bd->depth_exp + 2 * MLA_MERGE_LANES * (uint64_t)bd->depth_vec;
		/* merge + normalize + store: passes of MLA_MERGE_LANES lanes' MLA_MW elements of one
		 * head a cycle, the last bounded by the out bank */
		c->it[HLS_L_LATT_MERGE] += npass * hp * ncb;
		cyc += (npass - 1) * hp * ncb +
		       hls_max64(hp * ncb, hls_mem_cycles(bd, hp * (uint64_t)dc * 4)) +
		       MLA_MERGE_LANES * (uint64_t)bd->depth_vec + bd->depth_exp;
	}
	c->bytes += qbytes + obytes;
	c->macs = Hu * T * (uint64_t)(2 * dc + dr);
	c->cycles = cyc;
	return (int64_t)cyc;
}

int64_t mla_attn_lanes_cycles2(const struct hls_build *bd, int L, int pos, int H, int dc, int dr,
			       int fmt, int lane_macs, int lane_imacs, struct mla_attn_cost *c)
{
	if (!bd || H < 1 || dc < 0 || dr < 0)
		return -EINVAL;
	return ml_cycles_q(bd, L, pos, H, dc, dr, fmt, lane_macs, lane_imacs,
			   ml_q_cycles(bd, H, dc, dr, fmt), 0, c);
}

int64_t mla_attn_lanes_rows_cycles(const struct hls_build *bd, int L, const uint32_t *tab, int R,
				   int H, int dc, int dr, int fmt, int lane_macs, int lane_imacs,
				   struct mla_attn_cost *c)
{
	struct mla_attn_cost one, tmp;
	if (!bd || !tab || R < 1 || R > MLA_MAX_ROWS)
		return -EINVAL;
	if (!c)
		c = &tmp;
	memset(c, 0, sizeof *c);
	if (H < 1 || dc < 0 || dr < 0)
		return -EINVAL;
	uint64_t q = ml_q_cycles(bd, H, dc, dr, fmt), prev = 0, merge = 0;
	uint64_t cyc = bd->mem_latency + hls_mem_cycles(bd, 8 * (uint64_t)R);
	int onepass = (fmt & ~0xFF) == MLA_ATTN_FP8 || bd->lane_passes <= 1;
	/* the f32 datapath in one head pass keeps two banks of the lanes' partial accumulators
	 * (MLA_ROWS_PINGPONG): a row's lanes run while the merge adds up the row before from the
	 * other bank, so the rows pipeline through the lanes and the merge (a row's lanes wait for
	 * the bank the row two before still merges from) */
	int pp = MLA_ROWS_PINGPONG && (fmt & ~0xFF) != MLA_ATTN_FP8 && bd->lane_passes <= 1;
	uint64_t lanes_end = 0, m_end1 = 0, m_end2 = 0; /* pp: lanes, row r-1's, r-2's merge */
	for (int r = 0; r < R; r++) {
		if (tab[2 * r + 1] < 1)
			return -EINVAL;
		/* a later row's q loads into the second buffer behind the row before: only what
		 * outlasts it is still to come when the row's lanes start; its lanes' first loads
		 * run while the row before merges (one head pass: the lanes idle then) */
		uint64_t q_at = !r ? q : q > prev ? q - prev : 0;
		int64_t cr = ml_cycles_q(bd, L, (int)tab[2 * r + 1] - 1, H, dc, dr, fmt, lane_macs,
					 lane_imacs, q_at, onepass && !pp ? merge : 0, &one);
		if (cr < 0)
			return cr;
		merge = (uint64_t)cr > one.lane_cycles ? (uint64_t)cr - one.lane_cycles : 0;
		if (pp) {
			lanes_end = hls_max64(lanes_end, m_end2) + one.lane_cycles;
			m_end2 = m_end1;
			m_end1 = hls_max64(lanes_end, m_end1) + merge;
			prev = one.lane_cycles;
		} else {
			cyc += (uint64_t)cr;
			prev = (uint64_t)cr;
		}
		for (int i = 0; i < HLS_L_N; i++)
			c->it[i] += one.it[i];
		c->bytes += one.bytes;
		c->macs += one.macs;
		c->lane_bytes_max = hls_max64(c->lane_bytes_max, one.lane_bytes_max);
		c->lane_cycles += one.lane_cycles;
	}
	cyc += pp ? m_end1 : 0;
	c->bytes += 8 * (uint64_t)R;
	c->cycles = cyc;
	return (int64_t)cyc;
}

int64_t mla_attn_mha_cycles(const struct hls_build *bd, int L, const uint32_t *tab, int R, int H,
			    int nope, int dr, int vd, int lane_macs, struct mla_attn_cost *c)
{
	struct mla_attn_cost tmp;
	int dk = nope + dr, np, S;
	if (!bd || !tab || nope < 0 || dr < 0 || dr % 2 || R < 1 ||
	    R > mla_mha_rows_max(L, H, dk, vd) || lane_macs < 1 || lane_macs > MLA_DL * MLA_MAX_H ||
	    (lane_macs & (lane_macs - 1)))
		return -EINVAL;
	if (!c)
		c = &tmp;
	memset(c, 0, sizeof *c);
	uint64_t lde = (uint64_t)(lane_macs < MLA_DL ? lane_macs : MLA_DL);
	uint64_t lhp = (uint64_t)lane_macs / lde, sub = MLA_DL / lde;
	uint64_t nbs = hls_cdiv64((uint64_t)dk, MLA_DL), nbv = hls_cdiv64((uint64_t)vd, MLA_DL);
	uint64_t qb = hls_cdiv64((uint64_t)dk, MLA_MW), ob = hls_cdiv64((uint64_t)vd, MLA_MW);
	uint64_t hw = (uint64_t)(nope + vd), xii = (uint64_t)(bd->lane_exp_ii > 1 ? bd->lane_exp_ii : 1);
	uint64_t nmax = 0, pairs = 0;
	for (int r = 0; r < R; r++) {
		if (tab[2 * r + 1] < 1)
			return -EINVAL;
		nmax = hls_max64(nmax, tab[2 * r + 1]);
		pairs += tab[2 * r + 1];
	}
	mh_split(L, H, &np, &S);
	uint64_t cyc = bd->mem_latency + hls_mem_cycles(bd, 8 * (uint64_t)R);
	c->bytes = 8 * (uint64_t)R;
	for (int p = 0; p < np; p++) {
		int hp0 = H >= L ? p * L : 0, hp1 = H >= L ? ml_min(hp0 + L, H) : H;
		uint64_t hp = (uint64_t)(hp1 - hp0), nu = H >= L ? hp : (uint64_t)H * (uint64_t)S;
		uint64_t sbeats = hls_cdiv64(hp * hw, MLA_MW) + hls_cdiv64((uint64_t)dr, MLA_MW);
		uint64_t sbytes = 4 * (hp * hw + (uint64_t)dr);
		/* the q loads: every unit's rows of its head through the one port */
		uint64_t qbeats = hp * (uint64_t)R * qb, qbytes = 4 * hp * (uint64_t)R * (uint64_t)dk;
		c->it[HLS_L_MHA_Q] += qbeats;
		cyc += bd->mem_latency + hls_max64(qbeats, hls_mem_cycles(bd, qbytes));
		/* the stream: block j's load beside block j - 1's compute on the busiest unit */
		uint64_t prev = 0, first = 1;
		for (uint64_t t0 = 0; t0 < nmax; t0 += MLA_TB) {
			uint64_t tl = nmax - t0 < MLA_TB ? nmax - t0 : MLA_TB;
			uint64_t ld = hls_max64(tl * sbeats, hls_mem_cycles(bd, tl * sbytes));
			c->it[HLS_L_MHA_LOAD] += tl * sbeats;
			c->bytes += tl * sbytes;
			uint64_t worst = 0;
			for (uint64_t u = 0; u < (uint64_t)S && u < nu; u++) {
				/* the row classes of a head (every unit of a class alike) */
				uint64_t comp = 0, busy = 0;
				int nr = (int)u < R ? ml_cdiv(R - (int)u, S) : 0;
				for (int g = 0; g < ml_cdiv(nr, (int)lhp); g++) {
					uint64_t tg = 0;
					for (int rr = 0; rr < (int)lhp; rr++) {
						int j = g * (int)lhp + rr;
						uint64_t n = j < nr ? tab[2 * ((int)u + j * S) + 1] : 0;
						uint64_t tb = n > t0 ? (n - t0 < MLA_TB ? n - t0 : MLA_TB) : 0;
						tg = hls_max64(tg, tb);
					}
					if (!tg)
						continue;
					busy = 1;
					uint64_t sc = nbs * tg * sub, sm = 2 * tg, ac = tg * nbv * sub;
					comp += sc + sm + ac + (xii - 1) * (tg + 1);
					/* every unit of the class (one a head of the pass) counts */
					uint64_t units = H >= L ? hp : (uint64_t)H;
					c->it[HLS_L_MHA_SCORE] += units * sc;
					c->it[HLS_L_MHA_SOFTMAX] += units * sm;
					c->it[HLS_L_MHA_ACC] += units * ac;
				}
				if (busy)
					comp += 2 * (uint64_t)bd->depth_vec + 2 * bd->depth_exp;
				worst = hls_max64(worst, comp);
			}
			cyc += first ? ld : hls_max64(ld, prev);
			first = 0;
			prev = worst;
		}
		cyc += prev;
		/* normalize and store: every unit's rows of its head through the out port */
		uint64_t obeats = hp * (uint64_t)R * ob;
		c->it[HLS_L_MHA_STORE] += obeats;
		cyc += hls_max64(obeats, hls_mem_cycles(bd, 4 * hp * (uint64_t)R * (uint64_t)vd)) +
		       bd->depth_vec + bd->depth_exp;
		c->bytes += qbytes + 4 * hp * (uint64_t)R * (uint64_t)vd;
	}
	c->macs = pairs * (uint64_t)H * (uint64_t)(dk + vd);
	c->cycles = cyc;
	return (int64_t)cyc;
}

int64_t mla_attn_lanes_cycles(const struct hls_build *bd, int L, int pos, int H, int dc, int dr,
			      int fmt, int lane_macs, struct mla_attn_cost *c)
{
	return mla_attn_lanes_cycles2(bd, L, pos, H, dc, dr, fmt, lane_macs, MLA_LANE_IMACS, c);
}

int64_t mla_kv_append_lanes_cycles(const struct hls_build *b, int n, int dc, int dr, int fmt,
				   struct mla_attn_cost *c)
{
	return mla_kv_append_cycles(b, n, dc, dr, fmt, c);
}
#endif
