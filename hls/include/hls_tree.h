/*
 * hls_tree.h - the f32 halving tree of the attention kernels' scores (mla_attn, mla_attn_lanes):
 * n values (a power of two) added as p[i] = p[i] + p[i + n/2] for i < n/2, then the same over the
 * first half, down to p[0] (docs/numerics.md, MLA attention).
 *
 * A kernel narrower than the tree computes it in SUB steps: step sb takes the elements
 * sb, sb + SUB, sb + 2 SUB, ... (n / SUB of them), whose halving tree (hls_tree) is the whole
 * tree's first log2(n / SUB) levels restricted to them; the SUB step sums are then the rest of
 * the tree, which hls_tree_feed builds as they arrive: at most one add per level a step, so
 * log2(SUB) adders instead of SUB - 1. The same additions of the same operands in the same order
 * as one tree of n values, at every SUB.
 */
#ifndef MOECARD_HLS_TREE_H
#define MOECARD_HLS_TREE_H

/* The halving tree of p[0..n), in place; returns the sum. */
static inline float hls_tree(float *p, int n)
{
	for (int half = n / 2; half >= 1; half /= 2)
		for (int i = 0; i < half; i++)
			p[i] = p[i] + p[i + half];
	return p[0];
}

/* Step sum v of step sb (0, 1, .. n - 1 in order) into the halving tree of n step sums; lv holds
 * 2 n floats of the levels' waiting values between steps. Returns the tree's sum at sb = n - 1
 * (0 before). */
static inline float hls_tree_feed(float *lv, int n, int sb, float v)
{
	int idx = sb, base = 0;
	for (int span = n / 2; span >= 1; span /= 2) {
		if (idx < span) {
			lv[base + idx] = v;
			return 0.0f;
		}
		v = lv[base + idx - span] + v;
		idx -= span;
		base += 2 * span;
	}
	return v;
}

#endif
