/*
 * router.c - the MoE router (router.h, docs/model.md, Router): the configuration's routing rule
 * as moe_route flags, and the one implementation of the algorithm, moe_route_core
 * (hls/moe_route/), which the card's moe_route CU runs too, so the cpu engine, the card scheduler
 * routing on the host and the card route bit-identically.
 */
#include "hls/moe_route/moe_route.h"
#include "model/router.h"

uint32_t router_flags(const struct config *c, int has_bias)
{
	uint32_t f = 0;
	if (c->scoring_func != CONFIG_SCORING_SIGMOID)
		f |= MOE_ROUTE_SOFTMAX;
	if (c->topk_method == CONFIG_TOPK_NOAUX_TC && has_bias)
		f |= MOE_ROUTE_BIAS;
	if (c->topk_method != CONFIG_TOPK_GREEDY && c->n_group > 1)
		f |= MOE_ROUTE_GROUPS;
	if (c->topk_method == CONFIG_TOPK_NOAUX_TC)
		f |= MOE_ROUTE_GROUP_TOP2;
	if (c->norm_topk_prob)
		f |= MOE_ROUTE_NORM;
	return f;
}

float router_route_token(const struct config *c, const float *bias, float *logit, int *idx,
			 float *w)
{
	int32_t ix[MOE_ROUTE_MAX_K];
	int k = c->num_experts_per_tok;
	uint32_t f = router_flags(c, bias != NULL);
	if (moe_route_check(c->n_routed_experts, k, c->n_group, c->topk_group, f))
		return 0; /* config_validate keeps the routing configuration in range */
	float m = moe_route_core(logit, bias, c->n_routed_experts, k, c->n_group, c->topk_group, f,
				 (float)c->routed_scaling_factor, ix, w);
	for (int j = 0; j < k; j++)
		idx[j] = ix[j];
	return m;
}
