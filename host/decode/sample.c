/*
 * sample.c - greedy token selection (sample.h).
 */
#include "decode/sample.h"
#include "model/kernels.h"

int sampler_argmax(const float *logits, int n)
{
	return kern_argmax(logits, n);
}
