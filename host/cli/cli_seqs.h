/*
 * cli_seqs.h - B sequences decoded together, as `serve --max-batch B` runs them, for
 * `bench --seqs` and `profile --seqs` (docs/cli.md, docs/profiling.md): each sequence's prompt of
 * P pseudo-random token ids prefilled into its own cache, then greedy steps that decode one token
 * of every sequence in one forward. The cpu engine's rows path (forward_rows: a KV cache of one
 * block per sequence) or a card engine's sequence slots (forward_seqs: a latent cache per slot;
 * forward_seqs_top1 where the engine has it: each row's greedy token, not its logits, comes
 * back).
 */
#ifndef MOECARD_CLI_SEQS_H
#define MOECARD_CLI_SEQS_H

#include "engine/engine.h"
#include "model/model.h"

struct cli_seqs {
	struct engine *m;
	int B, V, P, rows; /* rows: forward_rows, else forward_seqs */
	int step;	   /* decode steps done */
	int top1;	   /* forward_seqs_top1: the greedy tokens come back, not the logits */
	int *tok, *pos, *seq, *nxt;
	float *lg; /* [B][V] */
	float **blk;
	struct model_kv *kv;
	const struct model_kv **kvp;
};

/* cli_seqs_open - B sequences of P prompt tokens each, prefilled one after another, with room
 * for gen decode steps. 0; -ENOTSUP when the engine has no batched path for B sequences;
 * -ENOMEM; or the forward's error. */
int cli_seqs_open(struct cli_seqs *s, struct engine *m, int V, int B, int P, int gen);
/* cli_seqs_step - one greedy step of all B sequences in one forward. 0 or the forward's error. */
int cli_seqs_step(struct cli_seqs *s);
void cli_seqs_close(struct cli_seqs *s);

#endif
