/*
 * sample.c - greedy token selection (sample.h).
 */
#include <math.h>
#include "decode/sample.h"

int sampler_argmax(const float *logits, int n)
{
	/* Blocks of 1024: each block's largest value (NaN never wins: a comparison with it is
	 * false) from eight independent running maxima, branch-free (x > m ? x : m, which the
	 * compiler maps to packed max), the first block whose maximum beats all before it, then the
	 * first index in it that holds that value: the lowest index on ties, -0 and +0 alike, as one
	 * strict-greater scan from logits[0] gives (0 when logits[0] is NaN). */
	if (n <= 1 || logits[0] != logits[0])
		return 0;
	float best = logits[0];
	int bb = 0;
	for (int b0 = 0; b0 < n; b0 += 1024) {
		int b1 = n - b0 < 1024 ? n : b0 + 1024, i = b0;
		float m[8];
		for (int j = 0; j < 8; j++)
			m[j] = -INFINITY;
		for (; i + 8 <= b1; i += 8)
			for (int j = 0; j < 8; j++)
				m[j] = logits[i + j] > m[j] ? logits[i + j] : m[j];
		for (; i < b1; i++)
			m[0] = logits[i] > m[0] ? logits[i] : m[0];
		for (int j = 1; j < 8; j++)
			m[0] = m[j] > m[0] ? m[j] : m[0];
		if (m[0] > best) {
			best = m[0];
			bb = b0;
		}
	}
	for (int i = bb; i < n; i++)
		if (logits[i] == best)
			return i;
	return 0;
}
