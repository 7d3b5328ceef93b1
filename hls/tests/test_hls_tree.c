/*
 * test_hls_tree.c - hls_tree.h: an attention score's 32-element halving tree computed in SUB
 * steps of strided elements (hls_tree per step, hls_tree_feed over the steps) gives the one-tree
 * bits at every SUB from 1 to 32, on values spread over many magnitudes (so that the order of the
 * additions shows in the result).
 */
#include <stdint.h>
#include <string.h>
#include "tests/harness.h"
#include "hls_tree.h"

#define TEST_RNG_SEED 88172645463325252ull
#include "test_rng.h"

/* A value of random sign, mantissa and exponent in 2^-20 .. 2^20. */
static float value(void)
{
	uint64_t r = rnext();
	float m = 1.0f + (float)(r & 0xFFFFFF) / 16777216.0f;
	int e = (int)((r >> 24) % 41) - 20;
	float v = m;
	for (; e > 0; e--)
		v *= 2.0f;
	for (; e < 0; e++)
		v *= 0.5f;
	return (r >> 40) & 1 ? -v : v;
}

int main(void)
{
	enum { N = 32, TRIALS = 2000 };
	for (int sub = 1; sub <= N; sub *= 2) {
		int lde = N / sub, bad = 0, differs = 0;
		for (int t = 0; t < TRIALS; t++) {
			float x[N], full[N], lv[2 * N], got = 0.0f, seq = 0.0f;
			for (int i = 0; i < N; i++)
				x[i] = full[i] = value();
			float want = hls_tree(full, N);
			memset(lv, 0, sizeof lv);
			for (int sb = 0; sb < sub; sb++) {
				float p[N];
				for (int e = 0; e < lde; e++)
					p[e] = x[sb + e * sub];
				got = hls_tree_feed(lv, sub, sb, hls_tree(p, lde));
			}
			for (int i = 0; i < N; i++)
				seq += x[i];
			bad += memcmp(&got, &want, sizeof got) != 0;
			differs += memcmp(&seq, &want, sizeof seq) != 0;
		}
		CHECK(bad == 0, "SUB %d (%d elements a step): %d of %d trees differ from one tree",
		      sub, lde, bad, TRIALS);
		/* the values are such that the order matters: a left-to-right sum differs often */
		CHECK(differs > TRIALS / 10,
		      "SUB %d: the left-to-right sum differs from the tree on only %d of %d", sub,
		      differs, TRIALS);
	}
	return harness_done();
}
