/*
 * router.c - the MoE router (router.h, docs/model.md, Router), one function for the cpu engine
 * (model.c) and the card scheduler (card_engine.c), so both route bit-identically.
 */
#include <math.h>
#include "model/router.h"

/* Router for one token (docs/model.md, Router): scores -> chosen idx[k] and weights w[k];
 * returns the selection margin (last chosen minus best unchosen, on the selection scores). */
float router_route_token(const struct config *c, const float *bias, float *logit, int *idx,
			 float *w)
{
	int E = c->n_routed_experts, k = c->num_experts_per_tok;
	float s[4096], sel[4096];
	int use_groups = c->topk_method != CONFIG_TOPK_GREEDY && c->n_group > 1;
	if (E < 1 || E > 4096 || k < 1 || k > E)
		return 0; /* config_validate keeps k in [1, E] (E > 0 when routing) */
	if (c->scoring_func == CONFIG_SCORING_SIGMOID) {
		for (int e = 0; e < E; e++)
			s[e] = 1.0f / (1.0f + expf(-logit[e]));
	} else {
		float mx = -INFINITY, sum = 0;
		for (int e = 0; e < E; e++)
			mx = logit[e] > mx ? logit[e] : mx;
		for (int e = 0; e < E; e++)
			sum += (s[e] = expf(logit[e] - mx));
		for (int e = 0; e < E; e++)
			s[e] /= sum;
	}
	for (int e = 0; e < E; e++)
		sel[e] = s[e] + (c->topk_method == CONFIG_TOPK_NOAUX_TC && bias ? bias[e] : 0.0f);
	float margin = INFINITY;
	if (use_groups) {
		int G = c->n_group, per = E / G;
		float gs[4096];
		int keep[4096];
		for (int g = 0; g < G; g++) {
			float b1 = -INFINITY, b2 = -INFINITY;
			for (int e = g * per; e < (g + 1) * per; e++) {
				/* e < G * per <= E: sel[e] was set above */
				// NOLINTNEXTLINE(clang-analyzer-core.uninitialized.Assign): e < E
				float v = sel[e];
				if (v > b1) {
					b2 = b1;
					b1 = v;
				} else if (v > b2) {
					b2 = v;
				}
			}
			gs[g] =
			    c->topk_method == CONFIG_TOPK_NOAUX_TC ? b1 + (per > 1 ? b2 : 0) : b1;
			keep[g] = 0;
		}
		for (int i = 0; i < c->topk_group; i++) {
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
	unsigned char taken[4096] = {0};
	for (int j = 0; j < k; j++) {
		int best = -1;
		for (int e = 0; e < E; e++)
			if (!taken[e] && (best < 0 || sel[e] > sel[best]))
				best = e;
		if (best < 0)
			best = 0; /* k > E is rejected by config_validate */
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
		if (c->norm_topk_prob && k > 1)
			w[j] /= sum;
		w[j] *= (float)c->routed_scaling_factor;
	}
	return margin;
}
