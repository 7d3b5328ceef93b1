/*
 * moe_route.c - the MoE router kernel in synthesizable C (moe_route.h). The loops are short
 * (E <= a few hundred on real models): scores through MOE_ROUTE_EXP exp units, the group scores,
 * the group choice, then k arg-max passes over E; the tables are 2 (k+1) 64-byte copies.
 */
#include <math.h>
#include <stddef.h>
#include <string.h>
#include "moe_route.h"
#include "hls/fp8_gemv/fp8_gemv.h"
#include "hls_math.h"

#ifndef __SYNTHESIS__
#pragma GCC diagnostic ignored "-Wunknown-pragmas"
#pragma GCC diagnostic ignored "-Wunused-label"
#endif

int moe_route_check(int E, int k, int G, int topk_group, uint32_t flags)
{
	if (E < 1 || E > MOE_ROUTE_MAX_E || k < 1 || k > E || k > MOE_ROUTE_MAX_K ||
	    (flags & ~MOE_ROUTE_FLAGS_ALL))
		return 1;
	if ((flags & MOE_ROUTE_GROUPS) && (G < 1 || E % G || topk_group < 1 || topk_group > G))
		return 1;
	return 0;
}

float moe_route_core(const float *logit, const float *bias, int E, int k, int G, int topk_group,
		     uint32_t flags, float scale, int32_t *idx, float *w)
{
	float s[MOE_ROUTE_MAX_E], sel[MOE_ROUTE_MAX_E];
	unsigned char taken[MOE_ROUTE_MAX_E];
	if (moe_route_check(E, k, G, topk_group, flags) || ((flags & MOE_ROUTE_BIAS) && !bias))
		return NAN;
	if (flags & MOE_ROUTE_SOFTMAX) {
		float mx = -INFINITY, sum = 0;
		for (int e = 0; e < E; e++)
			mx = logit[e] > mx ? logit[e] : mx;
		for (int e = 0; e < E; e++)
			sum += (s[e] = hls_expf(logit[e] - mx));
		for (int e = 0; e < E; e++)
			s[e] /= sum;
	} else {
	route_sigmoid:
		for (int e = 0; e < E; e++) {
#pragma HLS PIPELINE II=1
			s[e] = hls_sigmoidf(logit[e]);
		}
	}
route_select:
	for (int e = 0; e < E; e++) {
#pragma HLS PIPELINE II=1
		sel[e] = s[e] + ((flags & MOE_ROUTE_BIAS) ? bias[e] : 0.0f);
		taken[e] = 0;
	}
	float margin = INFINITY;
	if (flags & MOE_ROUTE_GROUPS) {
		int per = E / G;
		float gs[MOE_ROUTE_MAX_E];
		unsigned char keep[MOE_ROUTE_MAX_E];
		for (int g = 0; g < G; g++) {
			float b1 = -INFINITY, b2 = -INFINITY;
			for (int e = g * per; e < (g + 1) * per; e++) {
				float v = sel[e];
				if (v > b1) {
					b2 = b1;
					b1 = v;
				} else if (v > b2) {
					b2 = v;
				}
			}
			gs[g] = (flags & MOE_ROUTE_GROUP_TOP2) ? b1 + (per > 1 ? b2 : 0) : b1;
			keep[g] = 0;
		}
		for (int i = 0; i < topk_group; i++) {
			int best = -1;
			for (int g = 0; g < G; g++)
				if (!keep[g] && (best < 0 || gs[g] > gs[best]))
					best = g;
			if (best < 0)
				break;
			keep[best] = 1;
		}
		float worst_kept = INFINITY, best_dropped = -INFINITY;
		for (int g = 0; g < G; g++) {
			if (keep[g])
				worst_kept = gs[g] < worst_kept ? gs[g] : worst_kept;
			else
				best_dropped = gs[g] > best_dropped ? gs[g] : best_dropped;
		}
		if (best_dropped > -INFINITY)
			margin = worst_kept - best_dropped;
		for (int g = 0; g < G; g++)
			if (!keep[g])
				for (int e = g * per; e < (g + 1) * per; e++)
					sel[e] = -INFINITY;
	}
route_topk:
	for (int j = 0; j < k; j++) {
		int best = -1;
	route_argmax:
		for (int e = 0; e < E; e++) {
#pragma HLS PIPELINE II=1
			if (!taken[e] && (best < 0 || sel[e] > sel[best]))
				best = e;
		}
		if (best < 0)
			best = 0;
		taken[best] = 1;
		idx[j] = best;
	}
	float next = -INFINITY;
	for (int e = 0; e < E; e++)
		if (!taken[e] && sel[e] > next)
			next = sel[e];
	if (next > -INFINITY && sel[idx[k - 1]] - next < margin)
		margin = sel[idx[k - 1]] - next;
	float sum = 0;
	for (int j = 0; j < k; j++)
		sum += (w[j] = s[idx[j]]);
	for (int j = 0; j < k; j++) {
		if ((flags & MOE_ROUTE_NORM) && k > 1)
			w[j] /= sum;
		w[j] *= scale;
	}
	return margin;
}

int moe_route(const float *logit, const float *bias, uint8_t *out, const uint8_t *tmpl,
	      uint8_t *tab, unsigned int stride, int E, int k, int G, int topk_group,
	      unsigned int flags, float scale, int rows)
{
#pragma HLS INTERFACE m_axi port=logit bundle=gmem_a
#pragma HLS INTERFACE m_axi port=bias bundle=gmem_a
#pragma HLS INTERFACE m_axi port=out bundle=gmem_a
#pragma HLS INTERFACE m_axi port=tmpl bundle=gmem_a
#pragma HLS INTERFACE m_axi port=tab bundle=gmem_a
#pragma HLS INTERFACE s_axilite port=stride
#pragma HLS INTERFACE s_axilite port=E
#pragma HLS INTERFACE s_axilite port=k
#pragma HLS INTERFACE s_axilite port=G
#pragma HLS INTERFACE s_axilite port=topk_group
#pragma HLS INTERFACE s_axilite port=flags
#pragma HLS INTERFACE s_axilite port=scale
#pragma HLS INTERFACE s_axilite port=rows
#pragma HLS INTERFACE s_axilite port=return
	int32_t idx[MOE_ROUTE_MAX_K];
	float w[MOE_ROUTE_MAX_K];
	if (moe_route_check(E, k, G, topk_group, flags) || !logit || !out ||
	    ((flags & MOE_ROUTE_BIAS) && !bias) || ((flags & MOE_ROUTE_TABLES) && (!tmpl || !tab)) ||
	    rows < 1 || rows > ((flags & MOE_ROUTE_TABLES) ? 1 : MOE_ROUTE_MAX_ROWS))
		return 1;
route_row:
	for (int r = 0; r < rows; r++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=16
		uint8_t *o = out + (size_t)r * 8 * (size_t)k;
		(void)moe_route_core(logit + (size_t)r * E, bias, E, k, G, topk_group,
				     flags & ~MOE_ROUTE_TABLES, scale, idx, w);
		memcpy(o, idx, sizeof(int32_t) * (size_t)k);
		memcpy(o + sizeof(int32_t) * (size_t)k, w, sizeof(float) * (size_t)k);
	}
	if (!(flags & MOE_ROUTE_TABLES))
		return 0;
	size_t gb = sizeof(struct fp8_gemv_grp), n = (size_t)k + 1;
	memcpy(tab, tmpl, 2 * n * gb);
	for (int t = 0; t < 2; t++)
		for (int j = 0; j < k; j++) {
			uint8_t *rec = tab + ((size_t)t * n + 1 + (size_t)j) * gb;
			uint64_t off;
			memcpy(&off, rec, 8); /* w_off, the record's first field */
			off += (uint64_t)idx[j] * stride;
			memcpy(rec, &off, 8);
		}
	return 0;
}

int64_t moe_route_cycles(const struct hls_build *b, int E, int k, int G, int topk_group,
			 uint32_t flags, int rows)
{
	if (!b || moe_route_check(E, k, G, topk_group, flags) || rows < 1 ||
	    rows > ((flags & MOE_ROUTE_TABLES) ? 1 : MOE_ROUTE_MAX_ROWS))
		return -1;
	uint64_t P = MOE_ROUTE_P, ep = hls_cdiv64((uint64_t)E, P);
	/* the bias and every row's logits through the bank, then each row's selection */
	uint64_t cyc =
	    (uint64_t)b->mem_latency + hls_mem_cycles(b, (uint64_t)E * 4 * ((uint64_t)rows + 1));
	/* scores through the MOE_ROUTE_EXP units, selection */
	uint64_t row = hls_cdiv64((uint64_t)E, MOE_ROUTE_EXP) + (uint64_t)b->depth_exp + b->depth_vec;
	if (flags & MOE_ROUTE_SOFTMAX)
		row += 2 * ep + b->depth_exp; /* max, normalize */
	if (flags & MOE_ROUTE_GROUPS)
		row += ep + (uint64_t)topk_group * (uint64_t)G + b->depth_vec; /* groups */
	row += (uint64_t)k * (ep + b->depth_vec) + (uint64_t)k * 2 + b->depth_exp; /* top-k, w */
	cyc += (uint64_t)rows * row;
	if (flags & MOE_ROUTE_TABLES)
		cyc += 2 * (uint64_t)(k + 1) + b->mem_latency; /* one beat per 64-byte record */
	return (int64_t)cyc;
}
