/*
 * sample.c - token sampling (sample.h).
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "decode/sample.h"

int sampler_argmax(const float *logits, int n)
{
	int b = 0;
	for (int i = 1; i < n; i++)
		if (logits[i] > logits[b])
			b = i;
	return b;
}

int sampler_init(struct sampler *s, int vocab, float temp, int top_k, float top_p, float min_p,
		 float rep_penalty, uint64_t seed)
{
	memset(s, 0, sizeof *s);
	s->temp = temp;
	s->top_k = top_k;
	s->top_p = top_p;
	s->min_p = min_p;
	s->rep_penalty = rep_penalty;
	s->rng = seed ? seed : 0x853c49e6748fea9bull;
	s->vocab = vocab;
	s->prob = malloc(sizeof(float) * (size_t)vocab);
	s->order = malloc(sizeof(int) * (size_t)vocab);
	if (!s->prob || !s->order) {
		sampler_free(s);
		return -ENOMEM;
	}
	return 0;
}

void sampler_free(struct sampler *s)
{
	free(s->prob);
	free(s->order);
	s->prob = NULL;
	s->order = NULL;
}

static float rand_unit(struct sampler *s)
{
	s->rng ^= s->rng >> 12;
	s->rng ^= s->rng << 25;
	s->rng ^= s->rng >> 27;
	return (float)((s->rng * 0x2545F4914F6CDD1Dull) >> 40) / 16777216.0f;
}

static const float *cmp_prob;
static int cmp_desc(const void *a, const void *b)
{
	float pa = cmp_prob[*(const int *)a], pb = cmp_prob[*(const int *)b];
	if (pa != pb)
		return pa < pb ? 1 : -1;
	return *(const int *)a - *(const int *)b;
}

int sampler_pick(struct sampler *s, float *logits, const int *recent, int n_recent)
{
	int V = s->vocab;
	if (s->rep_penalty != 1.0f)
		for (int i = 0; i < n_recent; i++) {
			int t = recent[i];
			if (t >= 0 && t < V)
				logits[t] = logits[t] > 0 ? logits[t] / s->rep_penalty
							  : logits[t] * s->rep_penalty;
		}
	if (s->temp <= 0)
		return sampler_argmax(logits, V);
	float mx = logits[sampler_argmax(logits, V)], sum = 0;
	for (int i = 0; i < V; i++)
		sum += (s->prob[i] = expf((logits[i] - mx) / s->temp));
	for (int i = 0; i < V; i++)
		s->prob[i] /= sum;
	int n = 0;
	float pmax = s->prob[sampler_argmax(s->prob, V)];
	for (int i = 0; i < V; i++)
		if (s->prob[i] >= s->min_p * pmax)
			s->order[n++] = i;
	cmp_prob = s->prob;
	qsort(s->order, (size_t)n, sizeof(int), cmp_desc);
	if (s->top_k > 0 && s->top_k < n)
		n = s->top_k;
	float cum = 0;
	int cut = n;
	for (int i = 0; i < n; i++) {
		cum += s->prob[s->order[i]];
		if (cum >= s->top_p) {
			cut = i + 1;
			break;
		}
	}
	float tot = 0;
	for (int i = 0; i < cut; i++)
		tot += s->prob[s->order[i]];
	float r = rand_unit(s) * tot, acc = 0;
	for (int i = 0; i < cut; i++) {
		acc += s->prob[s->order[i]];
		if (r < acc)
			return s->order[i];
	}
	return s->order[cut - 1];
}
