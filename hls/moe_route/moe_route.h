/*
 * moe_route.h - the MoE router as a card kernel (docs/model.md, Router): gate logits -> the k
 * chosen experts in choice order and their weights, and, for the GEMV CU, the layer's expert
 * group tables with the chosen experts' stripe sets filled in, so a whole token runs as one
 * command list with no host round trip per MoE layer.
 *
 * One implementation for host and card: the host's router (host/model/router.c, used by the cpu
 * engine and by the card scheduler when it routes on the host) calls moe_route_core, the card's
 * moe_route CU runs moe_route, which calls the same function. Given the same logits, the card and
 * the host choose the same experts with the same weights, ties included (the lowest index wins).
 *
 * Algorithm (flags from the checkpoint's config, moe_route_flags in router.h):
 *   s_e   = hls_sigmoidf(l_e) = 1 / (1 + hls_expf(-l_e)) or softmax over e (MOE_ROUTE_SOFTMAX):
 *           mx = max l, p_e = hls_expf(l_e - mx), s_e = p_e / sum (sum in e order)
 *   sel_e = s_e + bias_e (MOE_ROUTE_BIAS) else s_e
 *   groups (MOE_ROUTE_GROUPS, G groups of E/G): group score = top-1 sel, or top-1 + top-2 with
 *           MOE_ROUTE_GROUP_TOP2 (when E/G > 1); topk_group groups kept, highest first, ties to the
 *           lower group; the others' sel = -inf
 *   idx_j = argmax over the not yet taken e of sel (lowest e on ties), j = 0..k-1
 *   w_j   = s_{idx_j}; with MOE_ROUTE_NORM and k > 1 divided by their sum (summed in j order);
 *           then times scale (routed_scaling_factor)
 * NaN logits compare false everywhere (as the host code always did).
 */
#ifndef MOECARD_MOE_ROUTE_H
#define MOECARD_MOE_ROUTE_H

#include <stdint.h>
#include "hls_timing.h"

#define MOE_ROUTE_MAX_E 4096 /* experts */
#define MOE_ROUTE_MAX_K 64   /* experts per token */
#define MOE_ROUTE_P 16	     /* compare lanes per cycle (timing model) */
/* Sigmoid/exp units: the scores pass takes MOE_ROUTE_EXP experts a cycle (timing model). */
#ifndef MOE_ROUTE_EXP
#define MOE_ROUTE_EXP 2
#endif

#define MOE_ROUTE_SOFTMAX 0x01u	   /* scores = softmax (else sigmoid) */
#define MOE_ROUTE_BIAS 0x02u	   /* selection scores add the correction bias (noaux_tc) */
#define MOE_ROUTE_GROUPS 0x04u	   /* group-limited choice */
#define MOE_ROUTE_GROUP_TOP2 0x08u /* group score = best + second best selection score */
#define MOE_ROUTE_NORM 0x10u	   /* renormalize the k weights */
#define MOE_ROUTE_TABLES 0x20u	   /* write the GEMV group tables (moe_route) */
#define MOE_ROUTE_FLAGS_ALL 0x3Fu

/* 0 when the arguments are in range (below), else 1. */
int moe_route_check(int E, int k, int G, int topk_group, uint32_t flags);

/* The router for one token: logit [E] (read only), bias [E] (MOE_ROUTE_BIAS) -> idx [k], w [k].
 * Returns the selection margin (last chosen minus best unchosen selection score, or the group
 * margin if smaller; +inf when nothing was left out), or NaN for arguments out of range
 * (E 1..MOE_ROUTE_MAX_E, k 1..min(E, MOE_ROUTE_MAX_K), G dividing E with topk_group 1..G when
 * grouped, an unknown flag). */
float moe_route_core(const float *logit, const float *bias, int E, int k, int G, int topk_group,
		     uint32_t flags, float scale, int32_t *idx, float *w);

/*
 * moe_route - the kernel top (CU moe_route, one m_axi bundle on the activation bank). Routes each
 * of `rows` tokens (logit [rows][E]) as moe_route_core, writes idx [k] int32 then w [k] f32 per
 * row at out ([rows][2k] words), and with MOE_ROUTE_TABLES (rows = 1 only) copies
 * the two template tables at tmpl (2 x (k+1) struct fp8_gemv_grp: gate|up then down, entry 0 the
 * shared expert, entry 1 + j the j-th routed slot with the stripe set of expert 0) to tab, adding
 * idx_j * stride to the w_off of entries 1 + j of both. Returns 0, or 1 for arguments out of range
 * (nothing written).
 */
int moe_route(const float *logit, const float *bias, uint8_t *out, const uint8_t *tmpl,
	      uint8_t *tab, unsigned int stride, int E, int k, int G, int topk_group,
	      unsigned int flags, float scale, int rows);
#define MOE_ROUTE_MAX_ROWS 256

/* Modeled cycles of one moe_route call of `rows` tokens (MOE_ROUTE_P lanes of compare and exp
 * units; the rows one after another, the bias read once, one burst latency exposed). */
int64_t moe_route_cycles(const struct hls_build *b, int E, int k, int G, int topk_group,
			 uint32_t flags, int rows);

#endif
