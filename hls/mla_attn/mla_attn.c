/*
 * mla_attn.c - absorbed MLA attention and KV append in synthesizable C (see mla_attn.h).
 *
 *  gmem_c (cache PC) --records, 64 B beats--> [load: dequant to f32 c'[TB][dc], k_pe[TB][dr]]
 *                                                     | ping-pong
 *  gmem_q (q_lat, q_pe on chip, HG heads) ----------> [score: HG x DL MACs/cycle, per (beat, t)]
 *                                                     v
 *                                   [online softmax: chunk max, corr = e^(m-m'), p = e^(s-m')]
 *                                                     v
 *                                   [weighted sum: acc[h] = acc[h] corr + sum_t p_t c'_t]
 *                                                     v
 *                                   [store: out = acc / l] --> gmem_o
 *
 * Loop nest: for query / for head group (HG heads) / for chunk (TB tokens) / load, score,
 * softmax, weighted-sum loops. The cache is re-read per head group (HG = 16 of 128 heads: 8x),
 * which the timing model charges; attention is compute-bound at 671B sizes anyway.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include "mla_attn.h"
#include "e4m3.h"
#include "hls_math.h"
#include "hls_quant.h"
#include "hls_rms.h"
#include "hls_strict.h"
#include "hls_tree.h"

#ifndef __SYNTHESIS__
#pragma GCC diagnostic ignored "-Wunknown-pragmas"
#pragma GCC diagnostic ignored "-Wunused-label"
#endif

#define A_BEAT 64                                     /* bytes per 512-bit beat */
#define A_MAX_REC (4 * (MLA_MAX_DC + MLA_MAX_DR))     /* largest record (f32) */
#define A_DK (MLA_MAX_DC + MLA_MAX_DR)                /* score vector length bound */

static int a_cdiv(int a, int b) { return (a + b - 1) / b; }
static int a_min(int a, int b) { return a < b ? a : b; }

/* The compute width (mla_attn.h, MLA_ATTN_MACS): elements and heads a step, steps a tree. */
#define AT_LDE (MLA_ATTN_MACS < MLA_DL ? MLA_ATTN_MACS : MLA_DL)
#define AT_LHP (MLA_ATTN_MACS / AT_LDE)
#define AT_SUB (MLA_DL / AT_LDE)
_Static_assert(MLA_ATTN_MACS >= 1 && MLA_ATTN_MACS <= MLA_HG * MLA_DL &&
		   (MLA_ATTN_MACS & (MLA_ATTN_MACS - 1)) == 0,
	       "MLA_ATTN_MACS: a power of two in 1..MLA_HG * MLA_DL");

size_t mla_record_bytes(int fmt, int dc, int dr)
{
	if (dc < 1 || dc > MLA_MAX_DC || dr < 0 || dr > MLA_MAX_DR)
		return 0;
	switch (fmt) {
	case MLA_CACHE_F32: return 4u * (size_t)(dc + dr);
	case MLA_CACHE_BF16: return 2u * (size_t)(dc + dr);
	case MLA_CACHE_FP8: return dc % HLS_QUANT_GROUP ? 0 : (size_t)dc + 4u * (dc / 128) + 2u * dr;
	default: return 0;
	}
}

static float a_rd_f32(const uint8_t *p)
{
	return e4m3_bits_f32((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
			     (uint32_t)p[3] << 24);
}
static float a_rd_bf16(const uint8_t *p) { return bf16_to_f32((uint16_t)(p[0] | p[1] << 8)); }
static void a_wr_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}
static void a_wr_u16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }

/* Decodes one staged record into kv[0..dc+dr) (c' then k_pe), f32. */
static void a_decode(const uint8_t rec[A_MAX_REC], int fmt, int dc, int dr, float kv[A_DK])
{
decode:
	for (int i = 0; i < dc + dr; i++) {
#pragma HLS UNROLL factor=64
		float v;
		if (fmt == MLA_CACHE_F32)
			v = a_rd_f32(rec + 4 * i);
		else if (fmt == MLA_CACHE_BF16)
			v = a_rd_bf16(rec + 2 * i);
		else if (i < dc)
			v = e4m3_decode(rec[i]) * a_rd_f32(rec + dc + 4 * (i / HLS_QUANT_GROUP));
		else
			v = a_rd_bf16(rec + dc + 4 * (dc / HLS_QUANT_GROUP) + 2 * (i - dc));
		kv[i] = v;
	}
}

/* Fixed-order lane tree of MLA_DL products. */
int mla_attn(const float *q_lat, const float *q_pe, const uint8_t *cache, float *out, int nq,
	     int pos0, int H, int dc, int dr, int fmt, float scale)
{
#pragma HLS INTERFACE m_axi port=cache bundle=gmem_c offset=slave max_widen_bitwidth=512 max_read_burst_length=64
#pragma HLS INTERFACE m_axi port=q_lat bundle=gmem_q offset=slave max_widen_bitwidth=512
#pragma HLS INTERFACE m_axi port=q_pe bundle=gmem_q offset=slave max_widen_bitwidth=512
#pragma HLS INTERFACE m_axi port=out bundle=gmem_o offset=slave max_widen_bitwidth=512
#pragma HLS INTERFACE s_axilite port=nq
#pragma HLS INTERFACE s_axilite port=pos0
#pragma HLS INTERFACE s_axilite port=H
#pragma HLS INTERFACE s_axilite port=dc
#pragma HLS INTERFACE s_axilite port=dr
#pragma HLS INTERFACE s_axilite port=fmt
#pragma HLS INTERFACE s_axilite port=scale
#pragma HLS INTERFACE s_axilite port=return
	size_t rb = mla_record_bytes(fmt, dc, dr);
	if (!rb || nq < 1 || pos0 < 0 || pos0 > MLA_MAX_T - nq || H < 1 || H > MLA_MAX_H || !q_lat ||
	    (dr > 0 && !q_pe) || !cache || !out)
		return -EINVAL;
	/* one set of AT_LHP exp units: the chunk's corrections and its p values are sequential
	 * loops (attn_softmax_exp's AT_LHP heads a step) */
#pragma HLS ALLOCATION function instances=hls_expf limit=AT_LHP
	int dk = dc + dr, nbs = a_cdiv(dk, MLA_DL), nbc = a_cdiv(dc, MLA_DL);
	int rbeats = a_cdiv((int)rb, A_BEAT);
	float q[MLA_HG][A_DK], acc[MLA_HG][MLA_MAX_DC], kv[MLA_TB][A_DK], s[MLA_HG][MLA_TB];
	float m[MLA_HG], l[MLA_HG], corr[MLA_HG], mx[MLA_HG];
	uint8_t rec[A_MAX_REC];
#pragma HLS ARRAY_PARTITION variable=q complete dim=1
#pragma HLS ARRAY_PARTITION variable=acc complete dim=1
#pragma HLS ARRAY_PARTITION variable=s complete dim=1
attn_query:
	for (int qi = 0; qi < nq; qi++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=64
		int T = pos0 + qi + 1;
	attn_group:
		for (int h0 = 0; h0 < H; h0 += MLA_HG) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=8
			int hg = a_min(MLA_HG, H - h0);
			/* the group's steps: ngs of AT_LHP heads, hp heads computed */
			int ngs = a_cdiv(hg, AT_LHP), hp = a_min(MLA_HG, ngs * AT_LHP);
			for (int h = 0; h < MLA_HG; h++) {
				for (int i = 0; i < dk; i++) {
					const float *src = i < dc ? q_lat + ((size_t)qi * H + h0 + h) * dc + i
								  : q_pe + ((size_t)qi * H + h0 + h) * dr + (i - dc);
					q[h][i] = h < hg ? *src : 0.0f;
				}
				for (int i = 0; i < dc; i++)
					acc[h][i] = 0.0f;
				m[h] = e4m3_bits_f32(0xFF800000u);
				l[h] = 0.0f;
			}
		attn_chunk:
			for (int t0 = 0; t0 < T; t0 += MLA_TB) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=4096
				int tb = a_min(MLA_TB, T - t0);
			attn_load:
				for (int t = 0; t < tb; t++) {
					const uint8_t *src = cache + (size_t)(t0 + t) * rb;
					for (int b = 0; b < rbeats; b++) {
#pragma HLS PIPELINE II=1
						HLS_CNT(HLS_L_ATTN_LOAD);
						for (int e = 0; e < A_BEAT; e++)
							if (b * A_BEAT + e < (int)rb)
								rec[b * A_BEAT + e] = src[b * A_BEAT + e];
					}
					a_decode(rec, fmt, dc, dr, kv[t]);
				}
				for (int h = 0; h < MLA_HG; h++)
					for (int t = 0; t < MLA_TB; t++)
						s[h][t] = 0.0f;
			attn_score: /* AT_LHP heads x AT_LDE elements a step */
				for (int b = 0; b < nbs; b++)
					for (int t = 0; t < tb; t++)
						for (int g = 0; g < ngs; g++) {
							float lv[AT_LHP][2 * AT_SUB] = {{0}};
							for (int sb = 0; sb < AT_SUB; sb++) {
#pragma HLS PIPELINE II=1
								HLS_CNT(HLS_L_ATTN_SCORE);
								for (int hh = 0; hh < AT_LHP; hh++) {
									int h = g * AT_LHP + hh;
									float p[AT_LDE];
									for (int e = 0; e < AT_LDE; e++) {
										int i = b * MLA_DL + sb + e * AT_SUB;
										p[e] = h < hp && i < dk ? q[h][i] * kv[t][i] : 0.0f;
									}
									/* the MLA_DL tree in AT_SUB steps
									 * (hls_tree.h) */
									float v = hls_tree_feed(lv[hh], AT_SUB, sb,
												hls_tree(p, AT_LDE));
									if (sb == AT_SUB - 1 && h < hp)
										s[h][t] += v;
								}
							}
						}
			attn_softmax_max:
				for (int t = 0; t < tb; t++)
					for (int g = 0; g < ngs; g++) {
#pragma HLS PIPELINE II=1
						HLS_CNT(HLS_L_ATTN_SOFTMAX);
						for (int hh = 0; hh < AT_LHP; hh++) {
							int h = g * AT_LHP + hh;
							if (h >= hp)
								continue;
							float v = s[h][t] * scale;
							s[h][t] = v;
							float cur = t == 0 ? m[h] : mx[h];
							mx[h] = v > cur ? v : cur;
						}
					}
				for (int h = 0; h < hp; h++) {
					corr[h] = hls_expf(m[h] - mx[h]);
					l[h] = l[h] * corr[h];
					m[h] = mx[h];
				}
			attn_softmax_exp:
				for (int t = 0; t < tb; t++)
					for (int g = 0; g < ngs; g++) {
#pragma HLS PIPELINE II=1
						HLS_CNT(HLS_L_ATTN_SOFTMAX);
						for (int hh = 0; hh < AT_LHP; hh++) {
							int h = g * AT_LHP + hh;
							if (h >= hp)
								continue;
							float p = hls_expf(s[h][t] - m[h]);
							s[h][t] = p;
							l[h] = l[h] + p;
						}
					}
			attn_acc:
				for (int t = 0; t < tb; t++)
					for (int b = 0; b < nbc; b++)
						for (int g = 0; g < ngs; g++)
							for (int sb = 0; sb < AT_SUB; sb++) {
#pragma HLS PIPELINE II=1
								HLS_CNT(HLS_L_ATTN_ACC);
								for (int hh = 0; hh < AT_LHP; hh++) {
									int h = g * AT_LHP + hh;
									for (int e = 0; e < AT_LDE; e++) {
										int i = b * MLA_DL + sb * AT_LDE + e;
										if (h >= hp || i >= dc)
											continue;
										float a = t == 0 ? acc[h][i] * corr[h]
												 : acc[h][i];
										acc[h][i] = a + s[h][t] * kv[t][i];
									}
								}
							}
			}
		attn_store:
			for (int h = 0; h < hg; h++)
				for (int b = 0; b < a_cdiv(dc, 16); b++) {
#pragma HLS PIPELINE II=1
					HLS_CNT(HLS_L_ATTN_STORE);
					for (int e = 0; e < 16; e++) {
						int i = b * 16 + e;
						if (i < dc)
							out[((size_t)qi * H + h0 + h) * dc + i] = acc[h][i] / l[h];
					}
				}
		}
	}
	return 0;
}

int mla_kv_append_fold(const float *row, const float *w, float eps, const float *tab, int rope_pos,
		       uint8_t *cache, int pos, int dc, int dr, int fmt)
{
	float cn[MLA_MAX_DC], kr[MLA_MAX_DR > 0 ? MLA_MAX_DR : 1], p[HLS_RMS_P];
	if (!row || !w || (dr > 0 && !tab) || dc < 1 || dc > MLA_MAX_DC || dr < 0 ||
	    dr > MLA_MAX_DR || (dr & 1) || rope_pos < 0)
		return -EINVAL;
	/* kv_a_layernorm: the sum pass (hls_rms.h's partials), the scale, the products */
	hls_rms_clear(p);
fold_sum:
	for (int i = 0; i < dc; i++)
		p[hls_rms_slot(i)] += row[i] * row[i];
	float r = hls_rms_scale(hls_rms_reduce(p), dc, eps);
fold_norm:
	for (int i = 0; i < dc; i++)
		cn[i] = hls_rms_apply(row[i], r, w[i]);
	/* RoPE of k_pe: pairs (x0, x1) by (cos, sin) of the position's table row */
	const float *t = dr ? tab + (size_t)rope_pos * dr : tab;
fold_rope:
	for (int i = 0; i < dr; i += 2) {
		float x0 = row[dc + i], x1 = row[dc + i + 1], cs = t[i], sn = t[i + 1];
		kr[i] = x0 * cs - x1 * sn;
		kr[i + 1] = x0 * sn + x1 * cs;
	}
	return mla_kv_append(cn, dr ? kr : NULL, cache, pos, 1, dc, dr, fmt);
}

int mla_kv_append_fold_rows(const float *rows, int n, const float *w, float eps, const float *tab,
			    int rope_pos, uint8_t *cache, int pos, int dc, int dr, int fmt)
{
	if (!rows || n < 1 || pos < 0 || rope_pos < 0 || n > MLA_MAX_T - pos)
		return -EINVAL;
fold_rows:
	for (int i = 0; i < n; i++) {
		int r = mla_kv_append_fold(rows + (size_t)i * (size_t)(dc + dr), w, eps, tab,
					   rope_pos + i, cache, pos + i, dc, dr, fmt);
		if (r)
			return r;
	}
	return 0;
}

int mla_kv_append(const float *c, const float *k_pe, uint8_t *cache, int pos, int n, int dc, int dr,
		  int fmt)
{
#pragma HLS INTERFACE m_axi port=c bundle=gmem_q offset=slave max_widen_bitwidth=512
#pragma HLS INTERFACE m_axi port=k_pe bundle=gmem_q offset=slave
#pragma HLS INTERFACE m_axi port=cache bundle=gmem_c offset=slave max_widen_bitwidth=512
#pragma HLS INTERFACE s_axilite port=pos
#pragma HLS INTERFACE s_axilite port=n
#pragma HLS INTERFACE s_axilite port=dc
#pragma HLS INTERFACE s_axilite port=dr
#pragma HLS INTERFACE s_axilite port=fmt
#pragma HLS INTERFACE s_axilite port=return
	size_t rb = mla_record_bytes(fmt, dc, dr);
	if (!rb || n < 1 || pos < 0 || pos > MLA_MAX_T - n || !c || (dr > 0 && !k_pe) || !cache)
		return -EINVAL;
	uint8_t rec[A_MAX_REC];
	int rbeats = a_cdiv((int)rb, A_BEAT);
append_token:
	for (int t = 0; t < n; t++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=4096
		const float *ct = c + (size_t)t * dc, *kt = dr ? k_pe + (size_t)t * dr : c;
		if (fmt == MLA_CACHE_F32) {
			for (int i = 0; i < dc + dr; i++)
				a_wr_u32(rec + 4 * i, e4m3_f32_bits(i < dc ? ct[i] : kt[i - dc]));
		} else if (fmt == MLA_CACHE_BF16) {
			for (int i = 0; i < dc + dr; i++)
				a_wr_u16(rec + 2 * i, f32_to_bf16(i < dc ? ct[i] : kt[i - dc]));
		} else {
			for (int g = 0; g < dc / HLS_QUANT_GROUP; g++) {
				float sc = hls_quant_group(ct + g * HLS_QUANT_GROUP, HLS_QUANT_GROUP,
							   rec + g * HLS_QUANT_GROUP, 0);
				a_wr_u32(rec + dc + 4 * g, e4m3_f32_bits(sc));
			}
			for (int j = 0; j < dr; j++)
				a_wr_u16(rec + dc + 4 * (dc / HLS_QUANT_GROUP) + 2 * j, f32_to_bf16(kt[j]));
		}
		uint8_t *dst = cache + (size_t)(pos + t) * rb;
	append_write:
		for (int b = 0; b < rbeats; b++) {
#pragma HLS PIPELINE II=1
			HLS_CNT(HLS_L_APPEND);
			for (int e = 0; e < A_BEAT; e++)
				if (b * A_BEAT + e < (int)rb)
					dst[b * A_BEAT + e] = rec[b * A_BEAT + e];
		}
	}
	return 0;
}

#ifndef __SYNTHESIS__ /* the timing model runs on the host, it is not synthesized */
/* ---- timing models ------------------------------------------------------------------------ */

int64_t mla_attn_cycles(const struct hls_build *bd, int nq, int pos0, int H, int dc, int dr, int fmt,
			struct mla_attn_cost *c)
{
	return mla_attn_cycles2(bd, nq, pos0, H, dc, dr, fmt, MLA_ATTN_MACS, c);
}

int64_t mla_attn_cycles2(const struct hls_build *bd, int nq, int pos0, int H, int dc, int dr,
			 int fmt, int macs, struct mla_attn_cost *c)
{
	struct mla_attn_cost tmp;
	size_t rb = mla_record_bytes(fmt, dc, dr);
	if (!bd || !rb || nq < 1 || pos0 < 0 || pos0 > MLA_MAX_T - nq || H < 1 || H > MLA_MAX_H ||
	    macs < 1 || macs > MLA_HG * MLA_DL || (macs & (macs - 1)))
		return -EINVAL;
	uint64_t lde = (uint64_t)(macs < MLA_DL ? macs : MLA_DL), lhp = (uint64_t)macs / lde;
	uint64_t sub = MLA_DL / lde;
	if (!c)
		c = &tmp;
	for (int i = 0; i < HLS_L_N; i++)
		c->it[i] = 0;
	c->bytes = c->macs = c->cycles = c->lane_bytes_max = c->lane_cycles = 0;
	uint64_t groups = hls_cdiv64((uint64_t)H, MLA_HG), rbeats = hls_cdiv64(rb, A_BEAT);
	uint64_t nbs = hls_cdiv64((uint64_t)(dc + dr), MLA_DL), nbc = hls_cdiv64((uint64_t)dc, MLA_DL);
	uint64_t st_beats = hls_cdiv64((uint64_t)dc, 16), cyc = bd->mem_latency;
	for (int qi = 0; qi < nq; qi++) {
		uint64_t T = (uint64_t)pos0 + qi + 1, full = T / MLA_TB, last = T % MLA_TB;
		for (uint64_t g = 0; g < groups; g++) {
			uint64_t hg = (g + 1) * MLA_HG <= (uint64_t)H ? MLA_HG : (uint64_t)H - g * MLA_HG;
			uint64_t ngs = hls_cdiv64(hg, lhp); /* steps of lhp heads */
			for (int cls = 0; cls < 2; cls++) {
				uint64_t cnt = cls ? (last ? 1 : 0) : full, tb = cls ? last : MLA_TB;
				if (!cnt)
					continue;
				uint64_t ld = tb * rbeats, sc = nbs * tb * ngs * sub, sm = 2 * tb * ngs;
				uint64_t ac = tb * nbc * ngs * sub;
				uint64_t comp = sc + sm + ac + 2 * (uint64_t)bd->depth_vec + 2 * bd->depth_exp;
				uint64_t load = hls_max64(ld, hls_mem_cycles(bd, tb * rb));
				cyc += cnt * hls_max64(load, comp);
				c->it[HLS_L_ATTN_LOAD] += cnt * ld;
				c->it[HLS_L_ATTN_SCORE] += cnt * sc;
				c->it[HLS_L_ATTN_SOFTMAX] += cnt * sm;
				c->it[HLS_L_ATTN_ACC] += cnt * ac;
				c->bytes += cnt * tb * rb;
			}
			/* q load (hg heads) and the first chunk's load are not overlapped; store */
			uint64_t qbytes = hg * (uint64_t)(dc + dr) * 4;
			c->it[HLS_L_ATTN_STORE] += hg * st_beats;
			c->bytes += qbytes + hg * (uint64_t)dc * 4;
			c->macs += hg * T * (uint64_t)(2 * dc + dr);
			cyc += hls_mem_cycles(bd, qbytes) + hg * st_beats + bd->depth_vec + bd->depth_exp +
			       a_min(MLA_TB, (int)T) * rbeats;
		}
	}
	c->cycles = cyc;
	return (int64_t)cyc;
}

int64_t mla_kv_append_fold_cycles(const struct hls_build *bd, int dc, int dr, int fmt,
				  struct mla_attn_cost *c)
{
	int64_t cyc = mla_kv_append_cycles(bd, 1, dc, dr, fmt, c);
	if (cyc < 0)
		return cyc;
	/* the norm's sum pass (the weight and the table row arrive beside the row), the rsqrt,
	 * then its products and the RoPE ahead of the record's encoder, MLA_FOLD_LANES a cycle */
	uint64_t add = 2 * hls_cdiv64((uint64_t)dc, MLA_FOLD_LANES) + (uint64_t)bd->depth_exp +
		       bd->depth_vec;
	if (c) {
		c->bytes += (uint64_t)(dc + dr) * 4;
		c->cycles += add;
	}
	return cyc + (int64_t)add;
}

int64_t mla_kv_append_fold_rows_cycles(const struct hls_build *bd, int n, int dc, int dr, int fmt,
				       struct mla_attn_cost *c)
{
	struct mla_attn_cost one;
	if (!bd || n < 1 || n > MLA_MAX_T)
		return -EINVAL;
	int64_t cyc = mla_kv_append_fold_cycles(bd, dc, dr, fmt, &one);
	if (cyc < 0)
		return cyc;
	uint64_t N = (uint64_t)n, lat = bd->mem_latency;
	uint64_t row = (uint64_t)cyc > lat ? (uint64_t)cyc - lat : 0;
	if (c) {
		*c = one;
		for (int i = 0; i < HLS_L_N; i++)
			c->it[i] = N * one.it[i];
		c->bytes = N * one.bytes;
		c->cycles = lat + N * row;
	}
	return (int64_t)(lat + N * row);
}

int64_t mla_kv_append_cycles(const struct hls_build *bd, int n, int dc, int dr, int fmt,
			     struct mla_attn_cost *c)
{
	struct mla_attn_cost tmp;
	size_t rb = mla_record_bytes(fmt, dc, dr);
	if (!bd || !rb || n < 1 || n > MLA_MAX_T)
		return -EINVAL;
	if (!c)
		c = &tmp;
	for (int i = 0; i < HLS_L_N; i++)
		c->it[i] = 0;
	uint64_t rbeats = hls_cdiv64(rb, A_BEAT), N = (uint64_t)n;
	/* per token: read c', k_pe (f32 beats), quantize (2 passes of 16 lanes), write the record */
	uint64_t rd = hls_cdiv64((uint64_t)(dc + dr) * 4, A_BEAT);
	uint64_t q = fmt == MLA_CACHE_FP8 ? 2 * hls_cdiv64((uint64_t)dc, 16) + bd->depth_exp : 0;
	c->it[HLS_L_APPEND] = N * rbeats;
	c->bytes = N * (rb + (uint64_t)(dc + dr) * 4);
	c->macs = c->lane_bytes_max = c->lane_cycles = 0;
	c->cycles = bd->mem_latency + N * (rd + q + rbeats + bd->depth_vec);
	return (int64_t)c->cycles;
}
#endif
