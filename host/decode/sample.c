/*
 * sample.c - greedy token selection (sample.h).
 */
#include "decode/sample.h"

int sampler_argmax(const float *logits, int n)
{
	int b = 0;
	for (int i = 1; i < n; i++)
		if (logits[i] > logits[b])
			b = i;
	return b;
}
