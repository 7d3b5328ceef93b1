/*
 * generate.h - the generation loop shared by `moecard run`, `moecard chat` and `moecard bench`:
 * token history, prompt prefill in chunks, sampling distributions, plain or MTP-speculative decode
 * steps (host/decode/spec.h), KV rollback, and streaming of decoded text with stop strings.
 *
 * Data flow: token ids (tokenizer / chat template) -> gen_append -> gen_step (engine_forward on
 * the main model, engine_mtp_forward drafts when speculating) -> new ids -> gen_text_push ->
 * UTF-8 text on the caller's FILE.
 *
 * State kept between calls (the invariants every function preserves):
 *   hist[0..n_hist)       every token of the conversation, fed or not;
 *   e->pos <= n_hist      tokens hist[0..e->pos) are in the main KV cache;
 *   e->mtp_pos <= e->pos  MTP rows 0..mtp_pos-1 are in the MTP KV cache (row i = MTP step on the
 *                         main hidden state of position i and token hist[i+1], docs/model.md, MTP);
 *   mq_h[0..n_mq)         main post-norm hidden states of positions mtp_pos..mtp_pos+n_mq-1 whose
 *                         MTP rows are not computed yet (speculation only; n_mq == pos - mtp_pos).
 * Nothing is allocated after gen_init.
 */
#ifndef MOECARD_GENERATE_H
#define MOECARD_GENERATE_H

#include <stdint.h>
#include <stdio.h>
#include "engine/engine.h"
#include "text/tokenizer.h"

/* Sampling settings. temp 0 is greedy. Order: repetition penalty, temperature, min-p (relative to
 * the most likely token), then top-k and top-p over the sorted survivors (gen_dist_build). */
struct gen_sampling {
	float temp;  /* softmax temperature; <= 0: greedy (argmax) */
	int top_k;   /* keep the k most likely tokens; 0: off */
	float top_p; /* keep the smallest prefix with cumulative probability >= top_p; 1: off */
	float min_p; /* drop tokens with p < min_p * p_max; 0: off */
	float
	    rep_penalty; /* 1: off; divides positive / multiplies negative logits of recent tokens */
	int rep_window;	 /* tokens of history the penalty looks at (each distinct token once) */
	uint64_t seed;	 /* xorshift64* seed (0 picks a fixed non-zero one) */
	int ban;	 /* 1: token ban_id is never sampled (--ignore-eos bans the EOS) */
	int ban_id;
};

/* A sparse probability distribution over token ids (the candidates that survive the filters). */
struct gen_dist {
	int n;	  /* candidates in use, 1..vocab */
	int *id;  /* [vocab] candidate token ids */
	float *p; /* [vocab] their probabilities, summing to 1 */
};

/* Progress of a long prefill: done of total tokens. */
typedef void (*gen_progress_fn)(void *ctx, int done, int total);

struct gen_opts {
	struct gen_sampling s;
	int spec_depth;	 /* 0: plain decoding; N >= 1: N chained MTP drafts per forward */
	int max_prefill; /* tokens per prefill forward (<= engine max_batch); 0: max_batch */
	gen_progress_fn
	    progress; /* called after each prefill chunk when the prefill has > 1 chunk */
	void *progress_ctx;
};

/* Counters since gen_init / gen_stats_reset. Times are host wall seconds. */
struct gen_stats {
	long prefill_tokens;  /* tokens fed by gen_sync before decoding */
	double prefill_s;     /* time in those forwards */
	long decode_tokens;   /* tokens produced by gen_step */
	long decode_forwards; /* main-model forward calls made by gen_step */
	double decode_s;      /* time in gen_step */
	long spec_steps;      /* verify forwards (one per speculative step) */
	long spec_tokens;     /* tokens produced by speculative steps (accepted drafts + 1 each) */
	long drafted;	      /* draft tokens proposed by the MTP module */
	long accepted;	      /* of which the main model accepted */
	long mtp_forwards;    /* engine_mtp_forward calls */
};

struct gen {
	struct engine *e; /* the model (not owned) */
	int V, D;	  /* vocab_size, hidden_size */
	int eos;	  /* end-of-sequence id (config eos_token_id) or -1 */
	struct gen_opts o;
	int depth; /* speculation depth in use (o.spec_depth clamped to what fits) */
	int *hist; /* [cap_hist] token history */
	int n_hist, cap_hist;
	float *logits; /* [depth+1][V] main logits of the last forward */
	int lg_valid;  /* 1: logits row 0 predicts hist[e->pos] and e->pos == n_hist */
	float *hid;    /* [max_batch][D] main post-norm hidden states of the last forward */
	float *mq_h;   /* [cap_mq][D] hidden states of pending MTP rows */
	int n_mq, cap_mq;
	float *mtp_lg;	    /* [V] draft logits */
	float *mtp_hid;	    /* [D] MTP post-norm state (input of a chained draft) */
	struct gen_dist p;  /* target distribution scratch */
	struct gen_dist *q; /* [depth] draft distributions of one step */
	int *drafts;	    /* [depth+1] verify batch: pending token, then the drafts */
	float *w;	    /* [V] unnormalised weights scratch */
	int *cand;	    /* [V] candidate scratch */
	float *dense;	    /* [V] zeros between uses: dense view of a gen_dist */
	uint64_t rng;	    /* xorshift64* state */
	struct gen_stats st;
};

/*
 * gen_init - sets up generation on engine e with room for cap_hist tokens of history.
 * spec_depth > 0 needs an MTP layer (e->w->mtp); depths above 1 need the engine's mtp_hidden op.
 * Errors: -EINVAL bad options (top_p outside (0,1], negative top_k/min_p, rep_penalty <= 0);
 * -ENODEV speculation asked on a checkpoint or engine without MTP; -ENOMEM.
 */
int gen_init(struct gen *g, struct engine *e, const struct gen_opts *o, int cap_hist);
void gen_free(struct gen *g);

/* gen_append - appends tokens to the history (they are fed by the next gen_sync / gen_step).
 * Errors: -ENOSPC history or KV capacity exceeded; -EINVAL a token id outside the vocab. */
int gen_append(struct gen *g, const int *tokens, int n);

/* gen_sync - feeds every unfed token (prefill in chunks); afterwards the logits of the last token
 * are valid. Errors: the engine's (-ENOSPC KV full, -EINVAL). */
int gen_sync(struct gen *g);

/*
 * gen_step - produces the next token(s): one plain decode step, or one speculative step (MTP
 * drafts verified in one main forward) that yields 1..depth+1 tokens. out[] must hold depth+1
 * ids; *n_out gets the count. The tokens are appended to the history.
 * Errors: -ENOSPC KV cache or history full; the engine's errors.
 */
int gen_step(struct gen *g, int *out, int *n_out);

/* gen_rollback - keeps hist[0..n) and drops the rest, rolling the KV caches back (main and MTP).
 * n == 0 resets the conversation. Tokens before n that must be recomputed are re-fed lazily. */
void gen_rollback(struct gen *g, int n);

/* gen_mtp_flush - (for spec.c) runs the k oldest pending MTP rows, whose next tokens are in the
 * history; with want_logits the last row's draft logits go to mtp_lg and, for chained drafts, its
 * MTP state to mtp_hid. Errors: the engine's. */
int gen_mtp_flush(struct gen *g, int k, int want_logits);

/* gen_stats_reset - zeroes the counters. */
void gen_stats_reset(struct gen *g);

/*
 * gen_dist_build - the sampling distribution of one logits row (modified in place by the
 * repetition penalty) with settings s, given the history hist[0..n_hist) for the penalty.
 * w and cand are [V] scratch. Greedy gives a point mass on the argmax (lowest id on ties).
 * Candidates are pre-filtered (min-p, a log-probability histogram for top-k/top-p), so only the
 * head of the distribution is sorted, never the whole vocab.
 */
void gen_dist_build(struct gen_dist *d, float *logits, int V, const struct gen_sampling *s,
		    const int *hist, int n_hist, float *w, int *cand);

/* gen_dist_sample - the candidate that a uniform u in [0,1) selects (inverse CDF). */
int gen_dist_sample(const struct gen_dist *d, double u);

/* gen_dist_alloc / gen_dist_release - storage for V candidates. 0 or -ENOMEM. */
int gen_dist_alloc(struct gen_dist *d, int V);
void gen_dist_release(struct gen_dist *d);

/* gen_rand - the next uniform double in [0,1) of a xorshift64* state. */
double gen_rand(uint64_t *state);

/*
 * gen_sampling_flag - parses one sampling command-line flag (--temp --top-k --top-p --min-p
 * --repeat-penalty --seed) into s. Returns 1 consumed, 0 not a sampling flag, -EINVAL a bad value.
 */
int gen_sampling_flag(struct gen_sampling *s, const char *flag, const char *value);
void gen_sampling_default(struct gen_sampling *s);

/*
 * Streaming text output: generated ids -> UTF-8 on out, holding back split multi-byte characters
 * (tokenizer_stream) and any tail that may be the start of a stop string; the stop string itself
 * is never printed.
 */
struct gen_text {
	struct tokenizer_stream ts; /* UTF-8 reassembly */
	const char *const *stops;   /* [n_stops] stop strings (not owned) */
	int n_stops;
	size_t max_stop; /* longest stop string, bytes */
	char *buf;	 /* [cap] decoded text not yet written */
	size_t len, cap;
	char *piece; /* [piece_cap] one token's decoded bytes */
	size_t piece_cap;
	int stopped;	/* 1 once a stop string was seen */
	size_t written; /* bytes written to out so far */
};

/* gen_text_init - for tokenizer tok (special tokens are not printed). 0 or -ENOMEM. */
int gen_text_init(struct gen_text *t, const struct tokenizer *tok, const char *const *stops,
		  int n_stops);
void gen_text_free(struct gen_text *t);
/* gen_text_push - decodes id and writes what is safe to out (flushed). Returns 1 when a stop
 * string completed (nothing after it is written), 0 otherwise, -ENOMEM. */
int gen_text_push(struct gen_text *t, int id, FILE *out);
/* gen_text_finish - writes the held-back tail (unless stopped) and resets for the next reply. */
void gen_text_finish(struct gen_text *t, FILE *out);

/* gen_progress_bar - a gen_progress_fn drawing "label [=====>   ] done/total" on the FILE ctx
 * (stderr), erased when done == total. Callers install it only when the FILE is a terminal. */
void gen_progress_bar(void *ctx, int done, int total);

#endif
