/*
 * sample.h - next-token selection from a logits row: greedy (temperature 0) or sampling with
 * temperature, top-k, top-p, min-p and a repetition penalty, from a seeded xorshift generator so
 * that runs are reproducible. Last stage of the host data flow before detokenization.
 */
#ifndef MOECARD_SAMPLE_H
#define MOECARD_SAMPLE_H

#include <stdint.h>

struct sampler {
	float temp;        /* 0: greedy */
	int top_k;         /* 0: off */
	float top_p;       /* 1: off */
	float min_p;       /* 0: off */
	float rep_penalty; /* 1: off; divides positive / multiplies negative logits of seen tokens */
	uint64_t rng;      /* xorshift64* state, never 0 */
	int vocab;
	float *prob;       /* [vocab] scratch */
	int *order;        /* [vocab] scratch */
};

/* sampler_init - allocates scratch for vocab entries. 0 or -ENOMEM. */
int sampler_init(struct sampler *s, int vocab, float temp, int top_k, float top_p, float min_p,
		 float rep_penalty, uint64_t seed);
void sampler_free(struct sampler *s);

/* sampler_pick - chooses a token from logits[vocab] (modified in place by the penalty);
 * recent[n_recent] are the tokens the repetition penalty applies to. */
int sampler_pick(struct sampler *s, float *logits, const int *recent, int n_recent);

/* sampler_argmax - index of the largest logit (lowest index on ties). */
int sampler_argmax(const float *logits, int n);

#endif
