/*
 * cli_seqs.c - B sequences decoded together for bench and profile (cli_seqs.h).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "cli/cli_seqs.h"
#include "decode/sample.h"

void cli_seqs_close(struct cli_seqs *s)
{
	for (int i = 0; s->blk && i < s->B; i++)
		free(s->blk[i]);
	free(s->blk);
	free(s->kv);
	free(s->kvp);
	free(s->tok);
	free(s->pos);
	free(s->seq);
	free(s->nxt);
	free(s->lg);
	memset(s, 0, sizeof *s);
}

/* forward_seqs of n rows (s->seq, s->pos) with the greedy token of each row lg selects into
 * ids: through forward_seqs_top1 while the engine takes it (s->top1), else the logits into s->lg
 * (the caller takes their argmax). */
static int seqs_fwd(struct cli_seqs *s, const int *tok, int n, int *ids, int lg)
{
	struct engine *m = s->m;
	if (s->top1) {
		int r = m->ops->forward_seqs_top1(m, tok, n, s->seq, s->pos, ids, lg);
		if (r != -ENOTSUP)
			return r;
		s->top1 = 0; /* (nothing ran) */
	}
	return m->ops->forward_seqs(m, tok, n, s->seq, s->pos, s->lg, lg);
}

int cli_seqs_open(struct cli_seqs *s, struct engine *m, int V, int B, int P, int gen)
{
	memset(s, 0, sizeof *s);
	s->m = m;
	s->B = B;
	s->V = V;
	s->P = P;
	s->rows = m->ops->forward_rows && m->ops->kv_block_floats;
	/* the greedy tokens instead of the logits: the card's head record, the cpu engine's head
	 * screen */
	s->top1 = s->rows ? m->ops->forward_rows_top1 != NULL : m->ops->forward_seqs_top1 != NULL;
	if (B < 1 || P < 1 || (!s->rows && !(m->ops->forward_seqs && m->max_seqs >= B)))
		return -ENOTSUP;
	int n = P > B ? P : B, bs = P + gen + 1, r = 0;
	s->tok = malloc(sizeof(int) * (size_t)n);
	s->pos = malloc(sizeof(int) * (size_t)n);
	s->seq = malloc(sizeof(int) * (size_t)n);
	s->nxt = malloc(sizeof(int) * (size_t)B);
	s->lg = malloc(sizeof(float) * (size_t)B * V);
	s->blk = calloc((size_t)B, sizeof(float *));
	s->kv = calloc((size_t)B, sizeof(struct model_kv));
	s->kvp = calloc((size_t)n, sizeof(const struct model_kv *));
	if (!s->tok || !s->pos || !s->seq || !s->nxt || !s->lg || !s->blk || !s->kv || !s->kvp)
		r = -ENOMEM;
	size_t bf = s->rows && !r ? m->ops->kv_block_floats(m, bs) : 0;
	for (int i = 0; s->rows && i < B && !r; i++) {
		if (!(s->blk[i] = malloc(sizeof(float) * bf)))
			r = -ENOMEM;
		s->kv[i] = (struct model_kv){&s->blk[i], 1, bs};
	}
	uint64_t rng = 0x9e3779b97f4a7c15ull; /* each sequence its own prompt */
	for (int i = 0; i < B && !r; i++) {
		for (int t = 0; t < P; t++) {
			rng = rng * 6364136223846793005ull + 1442695040888963407ull;
			s->tok[t] = (int)((rng >> 33) % (uint64_t)(V < 1000 ? V : 1000));
			s->pos[t] = t;
			s->seq[t] = i;
			s->kvp[t] = &s->kv[i];
		}
		r = s->rows
			? m->ops->forward_rows(m, s->tok, P, s->kvp, s->pos, s->lg, MODEL_LG_LAST)
			: seqs_fwd(s, s->tok, P, s->nxt + i, MODEL_LG_LAST);
		if (!r && (s->rows || !s->top1))
			s->nxt[i] = sampler_argmax(s->lg, V);
	}
	if (r)
		cli_seqs_close(s);
	return r;
}

int cli_seqs_step(struct cli_seqs *s)
{
	struct engine *m = s->m;
	for (int i = 0; i < s->B; i++) {
		s->seq[i] = i;
		s->pos[i] = s->P + s->step;
		s->kvp[i] = &s->kv[i];
	}
	int r, ids;
	if (!s->rows) { /* seqs_fwd: the tokens unless it found the engine cannot (top1 cleared) */
		r = seqs_fwd(s, s->nxt, s->B, s->tok, MODEL_LG_ALL);
		ids = s->top1;
	} else { /* the greedy tokens while the engine gives them this step (the cpu engine's
		  * head screen may be switched off between steps: bench --screen-ab) */
		r = s->top1 ? m->ops->forward_rows_top1(m, s->nxt, s->B, s->kvp, s->pos, s->tok,
							MODEL_LG_ALL)
			    : -ENOTSUP;
		ids = r != -ENOTSUP;
		if (!ids)
			r = m->ops->forward_rows(m, s->nxt, s->B, s->kvp, s->pos, s->lg,
						 MODEL_LG_ALL);
	}
	for (int i = 0; i < s->B && !r; i++)
		s->nxt[i] = ids ? s->tok[i] : sampler_argmax(s->lg + (size_t)i * s->V, s->V);
	s->step += !r;
	return r;
}
