/*
 * spec.h - MTP speculative decoding (docs/model.md, MTP): the model's own MTP layer
 * drafts the next token(s) from the main model's post-norm hidden state, the main model verifies
 * the pending token plus the drafts in ONE forward (engine_forward with T = depth+1, all logits),
 * and the standard rejection rule (Leviathan et al. 2023, Chen et al. 2023) decides: draft d with
 * draft probability q(d) is accepted with probability min(1, p(d)/q(d)); on the first rejection the
 * token is drawn from norm(max(0, p - q)) and the KV caches (main and MTP) roll back. Sampled output
 * therefore has exactly the main model's distribution, and greedy output equals plain greedy.
 *
 * Sits inside generate.c's gen_step: gen state (generate.h) -> spec_step -> engine.h.
 */
#ifndef MOECARD_SPEC_H
#define MOECARD_SPEC_H

#include <stdint.h>
#include "decode/generate.h"

/*
 * spec_accept - the rejection rule for one draft token d ~ q against the target p.
 * Draws from *rng: u for the acceptance test and, on rejection, one more for the residual.
 * dense is [V] zeros (restored before returning). Returns 1 and sets *tok = d when accepted;
 * returns 0 and sets *tok to a draw from norm(max(0, p - q)) (from p when that is all zero, which
 * only rounding can cause) when rejected.
 */
int spec_accept(const struct gen_dist *p, const struct gen_dist *q, int d, uint64_t *rng,
		float *dense, int *tok);

/*
 * spec_step - one speculative step on g (see generate.h for the state): requires the pending
 * token hist[pos] with pos >= 1 and pos == n_hist - 1. Drafts depth tokens, verifies, appends the
 * accepted drafts and the corrected or bonus token to the history, and writes them to out
 * (*n_out = accepted + 1). Errors: the engine's.
 */
int spec_step(struct gen *g, int depth, int *out, int *n_out);

#endif
