/*
 * head_screen.h - exact greedy tokens from an 8-bit copy of the BF16 lm_head.
 *
 * A greedy step needs only the index of the largest logit, not the logits. The screen keeps the
 * head once more as int8 codes with one scale a row (s = amax / 127, q = round(w / s)) and, for
 * each row l, a bound coefficient c_l such that for every finite input x
 *
 *     |exact_l(x) - approx_l(x)| <= B_l = c_l * ||x||_2 (times 1 + 2^-20, plus K * 2^-140)
 *
 * where exact_l is the packed BF16 head's logit (gemv_bf16p: one f32 FMA chain in ascending k
 * from +0, the logit the full head gives) and approx_l = s_l * sum_k q_lk x_k in f32 in any order
 * (gemv_i8). With r_l = w_l - s_l q_l (exact in double), gamma_n = n u / (1 - n u), u = 2^-24:
 *
 *     c_l = ||r_l||_2 + gamma_K ||w_l||_2 + gamma_(K+1) s_l ||q_l||_2
 *
 * (the residual's product by Cauchy-Schwarz, the FMA chain's rounding, the approximate sum's and
 * its scaling's rounding; each sum of |a_k x_k| bounded by ||a|| ||x||). A step reads the 8-bit
 * copy (half the head's bytes), takes lo = max_l (approx_l - B_l) and recomputes exactly, with
 * the packed head's own kernel on the rows' panels, only the candidates approx_l + B_l >= lo:
 * every other row is strictly below the largest exact logit. The token is then the lowest index
 * holding the largest exact value among them: sampler_argmax's pick on the full logits, bit for
 * bit. A row falls back to the full head when its input is not finite or is so large that a
 * logit could overflow, or when more than head_screen_max_cands() rows are candidates, and a call
 * of more than HEAD_SCREEN_MAX_M inputs runs the full head for all of them; a head with a
 * non-finite weight gets no screen (head_screen_build returns -EDOM).
 */
#ifndef MOECARD_HEAD_SCREEN_H
#define MOECARD_HEAD_SCREEN_H

#include <stddef.h>
#include <stdint.h>
#include "model/kernels.h"
#include "model/pool.h"

struct head_screen_stats {
	uint64_t rows;	    /* greedy rows picked */
	uint64_t cands;	    /* candidate rows recomputed exactly, summed */
	uint64_t cand_max;  /* the most of one row */
	uint64_t panels;    /* head panels run for them */
	uint64_t fallbacks; /* rows that ran the full head */
	double s_approx;    /* seconds in the approximate pass */
	double s_pick;	    /* seconds on the bounds, the candidates and the full rows */
	double s_full;	    /* seconds on the full head (rows it took) */
};

struct head_screen {
	int V, K;
	int8_t *q;    /* the codes in gemv_i8p's panels (kernels.h), rows padded to KERN_PW */
	float *s;     /* [V padded] the rows' scales (0 past V) */
	double *c;    /* [V] the bound coefficients */
	double wmax;  /* max_l ||w_l||_2 */
	float *a;     /* [rows][V padded] approximate logits (grown) */
	size_t a_cap; /* floats */
	int *cand;    /* [V] a row's candidates */
	float *full;  /* [V] a fallback row's logits */
	float *xpad;  /* the inputs copied apart (grown) */
	size_t xpad_cap;
	struct head_screen_stats st;
};

/* head_screen_build - the screen of a BF16 head of V rows and K columns packed in panels (wp,
 * kern_bf16p_pack), on the pool's threads: 0, -ENOMEM, -EINVAL (bad shape) or -EDOM (a weight
 * is not finite; nothing kept). */
int head_screen_build(struct head_screen *h, struct pool *p, const uint16_t *wp, int V, int K);
void head_screen_free(struct head_screen *h);

/* Inputs a call screens at most: more run the full head, whose packed kernel shares each widened
 * weight vector among them (mid, 2 threads, AVX-512: the screen 0.70x the full head's step at 1
 * input, 1.15x at 2, 1.0x at 4, 1.14x at 8, its f32 FMAs no fewer; integer dot products would
 * change that). */
#define HEAD_SCREEN_MAX_M 1

/* Rows past which a step stops recomputing candidates and runs the full head for the row. */
static inline int head_screen_max_cands(int V)
{
	return V / 64 > 64 ? V / 64 : 64;
}

/*
 * head_screen_top1 - ids[m] = the greedy token of the packed head's logits for x[m*K ..] (M rows,
 * the index sampler_argmax gives on them), with the approximate logits on kc's pool and ISA and
 * the exact candidates on kc's ISA. 0 or -ENOMEM.
 */
int head_screen_top1(struct head_screen *h, struct kern_ctx *kc, const uint16_t *wp, const float *x,
		     int M, int *ids);

#endif
