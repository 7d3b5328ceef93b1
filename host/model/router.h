/*
 * router.h - the MoE router (docs/model.md, Router) for one token, shared by the cpu engine
 * (model.c) and the card scheduler (card_engine.c), which runs it on the host between the two
 * command lists of a MoE layer: scores (sigmoid or softmax) of the gate logits, bias for the
 * choice only (noaux_tc), group-limited top-k, renormalised and scaled weights.
 */
#ifndef MOECARD_ROUTER_H
#define MOECARD_ROUTER_H

#include <stdint.h>
#include "load/config.h"

/* The moe_route flags (hls/moe_route/moe_route.h) of c's routing rule; has_bias: the layer has
 * an e_score_correction_bias. */
uint32_t router_flags(const struct config *c, int has_bias);

/*
 * router_route_token - logit [E] gate outputs (modified: scratch) -> idx [k] chosen experts in
 * choice order and w [k] their weights. bias [E] or NULL. Returns the selection margin (last
 * chosen minus best unchosen selection score, or the group margin if smaller); 0 when E > 4096
 * or k > 64. The algorithm is moe_route_core's (hls/moe_route/moe_route.h).
 */
float router_route_token(const struct config *c, const float *bias, float *logit, int *idx,
			 float *w);

#endif
