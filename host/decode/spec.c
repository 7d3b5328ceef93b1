/*
 * spec.c - MTP speculative decoding (spec.h): the rejection rule and one draft/verify/rollback
 * step on the generation state of generate.h.
 */
#include <errno.h>
#include <string.h>
#include "decode/spec.h"

int spec_accept(const struct gen_dist *p, const struct gen_dist *q, int d, uint64_t *rng,
		float *dense, int *tok)
{
	float pd = 0, qd = 0;
	for (int i = 0; i < p->n; i++)
		if (p->id[i] == d) {
			pd = p->p[i];
			break;
		}
	for (int i = 0; i < q->n; i++)
		if (q->id[i] == d) {
			qd = q->p[i];
			break;
		}
	/* accept with probability min(1, p(d)/q(d)); u*q < p is exact for point masses (greedy) */
	double u = gen_rand(rng);
	if (qd > 0 && u * qd < pd) {
		*tok = d;
		return 1;
	}
	/* residual norm(max(0, p - q)) over p's support */
	for (int i = 0; i < q->n; i++)
		dense[q->id[i]] = q->p[i];
	double tot = 0;
	for (int i = 0; i < p->n; i++) {
		double r = (double)p->p[i] - dense[p->id[i]];
		tot += r > 0 ? r : 0;
	}
	double x = gen_rand(rng), acc = 0;
	int pick = -1;
	if (tot > 0) {
		x *= tot;
		for (int i = 0; i < p->n && pick < 0; i++) {
			double r = (double)p->p[i] - dense[p->id[i]];
			acc += r > 0 ? r : 0;
			if (x < acc)
				pick = p->id[i];
		}
		if (pick < 0) /* rounding at the very end: the last token with positive residual */
			for (int i = p->n - 1; i >= 0 && pick < 0; i--)
				if ((double)p->p[i] - dense[p->id[i]] > 0)
					pick = p->id[i];
	}
	if (pick < 0)
		pick = gen_dist_sample(p, x);
	for (int i = 0; i < q->n; i++)
		dense[q->id[i]] = 0;
	*tok = pick;
	return 0;
}

int spec_step(struct gen *g, int depth, int *out, int *n_out)
{
	struct engine *e = g->e;
	int P = e->pos, V = g->V, D = g->D, r;
	*n_out = 0;
	if (P < 1 || P != g->n_hist - 1 || g->n_mq < 1 || e->mtp_pos + g->n_mq != P || depth < 1)
		return -EINVAL;
	const struct gen_sampling *s = &g->o.s;
	int greedy = s->temp <= 0;
	/* history as the target sees it: hist[0..P] then the drafts so far (hist has room) */
	int *h = g->hist;
	g->drafts[0] = h[P];

	/* 1. draft: the pending MTP rows (real hidden states) give the first draft, then chain */
	int k = g->n_mq;
	if ((r = gen_mtp_flush(g, k, 1)))
		return r;
	for (int i = 0; i < depth; i++) {
		if (i > 0) {
			/* chained step: MTP row P+i-1 on its own previous output state and draft */
			r = engine_mtp_forward(e, &g->drafts[i], g->mtp_hid, 1, g->mtp_lg, 0);
			g->st.mtp_forwards++;
			if (!r && i + 1 < depth)
				r = e->ops->mtp_hidden(e, 0, g->mtp_hid);
			if (r)
				return r;
		}
		/* q_i is conditioned on the history plus the drafts before it */
		memcpy(h + P + 1, g->drafts + 1, sizeof(int) * (size_t)i);
		gen_dist_build(&g->q[i], g->mtp_lg, V, s, h, P + 1 + i, g->w, g->cand);
		g->drafts[i + 1] = gen_dist_sample(&g->q[i], greedy ? 0 : gen_rand(&g->rng));
	}
	g->st.drafted += depth;
	/* drop the chained rows: only rows < P saw real hidden states */
	engine_truncate(e, e->pos, P);

	/* 2. verify: pending token + drafts in one forward, logits and hidden states of every row */
	r = engine_forward(e, g->drafts, depth + 1, g->logits, 1, g->hid);
	g->st.decode_forwards++;
	g->st.spec_steps++;
	if (r)
		return r;

	/* 3. accept drafts left to right; the first rejection draws from the residual */
	memcpy(h + P + 1, g->drafts + 1, sizeof(int) * (size_t)depth);
	int a = 0, tok = -1;
	for (; a < depth; a++) {
		gen_dist_build(&g->p, g->logits + (size_t)a * V, V, s, h, P + 1 + a, g->w, g->cand);
		if (!spec_accept(&g->p, &g->q[a], g->drafts[a + 1], &g->rng, g->dense, &tok))
			break;
	}
	if (a == depth) {
		/* every draft accepted: the bonus token from the last row */
		gen_dist_build(&g->p, g->logits + (size_t)depth * V, V, s, h, P + 1 + depth, g->w,
			       g->cand);
		tok = gen_dist_sample(&g->p, greedy ? 0 : gen_rand(&g->rng));
	}
	g->st.accepted += a;

	/* 4. keep the pending token and the accepted drafts in the main cache; their hidden states
	 * become the pending MTP rows P .. P+a */
	engine_truncate(e, P + 1 + a, e->mtp_pos);
	memcpy(g->mq_h + (size_t)g->n_mq * D, g->hid, sizeof(float) * (size_t)(a + 1) * D);
	g->n_mq += a + 1;
	h[P + 1 + a] = tok;
	g->n_hist = P + 2 + a;
	g->lg_valid = 0;
	for (int i = 0; i < a; i++)
		out[i] = g->drafts[i + 1];
	out[a] = tok;
	*n_out = a + 1;
	g->st.spec_tokens += a + 1;
	return 0;
}
