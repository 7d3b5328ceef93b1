/*
 * head_screen.h - exact greedy tokens from an 8-bit copy of the BF16 lm_head.
 *
 * A greedy step needs only the index of the largest logit, not the logits. The screen keeps the
 * head once more as int8 codes with one scale a row (s = amax / 127, q = round(w / s)) and, for
 * each row l, with r_l = w_l - s_l q_l (exact in double), gamma_n = n u / (1 - n u), u = 2^-24
 * and 2-norms, the coefficients
 *
 *     c1_l = ||r_l|| + gamma_K ||w_l||,   c2_l = s_l ||q_l||.
 *
 * exact_l(x) is the packed BF16 head's logit (gemv_bf16p: one f32 FMA chain in ascending k from
 * +0, the logit the full head gives). Two passes give an approximate a_l and a bound B_l with
 * |exact_l - a_l| <= B_l (each times 1 + 2^-20 and plus K * 2^-140 for the roundings of the
 * bound itself and underflow):
 *  - one input (f32): a_l = s_l * sum_k q_lk x_k in f32 in any order (gemv_i8p);
 *    B_l = c1_l ||x|| + c2_l gamma_(K+1) ||x||;
 *  - the integer pass (gemv_i8u8p), where the ISA has it for this many inputs (kern_isa's
 *    i8u8_one, i8u8_maxm): each input rounded with one scale to codes of n = i8u8_xmax (127:
 *    int8, AVX-512 VNNI; 63: AVX2's vpmaddubsw), x = sx xq + e (sx = amax / n), S_l =
 *    sum_k q_lk xq_k exact in int32, a_l = f32(S_l s_l sx); B_l = c1_l ||x|| + c2_l ||e|| +
 *    2^-23 |a_l|.
 * Why: w = s q + r gives D = sum w x = s sum q x + sum r x (and x = sx xq + e gives
 * s sum q x = s sx S + s sum q e); every sum of |a_k b_k| is at most ||a|| ||b|| (Cauchy-Schwarz);
 * the FMA chain is within gamma_K sum |w x| of D, the f32 sum within gamma_(K+1) s sum |q x| of
 * s sum q x, the integer sum is exact and its scaling rounds once.
 * A step reads the 8-bit copy (half the head's bytes), takes lo = max_l (a_l - B_l) and keeps as
 * candidates the rows with a_l + B_l >= lo: every other row is strictly below the largest exact
 * logit. Only rows with a_l >= max a - 2 max B can be candidates or set lo (a_t - B_t >= max a -
 * max B for the row t of the largest a), so the bounds are taken on those alone, found through
 * each panel's largest a.
 * With 7-bit codes (head_screen_terms: two code vectors an input) one code vector's error lets
 * hundreds of rows through (mid: ~290 of 129280), so the residual gets codes of its own, x =
 * sx0 xq0 + sx1 xq1 + e2, and refines the first pass's candidates alone (row_i8u8p on their rows):
 * a2_l = f32((S0 sx0 + S1 sx1) s_l) in double, B2_l = c1_l ||x|| + c2_l (||e2|| + 2^-50
 * (||sx0 xq0|| + ||sx1 xq1||)) + 2^-23 |a2_l| (the double sums' rounding), and the candidates are
 * those with a2 + B2 >= max (a2 - B2) among them (~7). The first pass runs one code vector an
 * input over the whole head, at the rate of one input on the integer pass.
 * The candidates are recomputed exactly, with the packed head's own kernel on the rows' panels.
 * The token is then the lowest index holding the largest exact value among them:
 * sampler_argmax's pick on the full logits, bit for bit. A row falls back to the full head when
 * its input is not finite or is so large that a logit could overflow, or when more than
 * head_screen_max_cands() rows are candidates; a call of several inputs runs the full head for
 * all of them when the ISA's integer pass does not serve that many (its f32 products would be no
 * fewer than the packed head's); a head with a non-finite weight gets no screen
 * (head_screen_build returns -EDOM).
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
	uint64_t refined;   /* the first pass's candidates the second code vector refined, summed */
	double s_approx;    /* seconds in the approximate pass */
	double s_pick;	    /* seconds on the bounds, the candidates and the full rows */
	double s_full;	    /* seconds on the full head (rows it took) */
};

struct head_screen {
	int V, K;
	int8_t *q;	 /* the codes in gemv_i8p's panels (kernels.h), rows padded to KERN_PW */
	float *s;	 /* [V padded] the rows' scales (0 past V) */
	int32_t *qsum;	 /* [V padded] the rows' sums of codes (gemv_i8u8p's offset) */
	double *c1, *c2; /* [V] the bound coefficients (above) */
	double wmax;	 /* max_l ||w_l||_2 */
	double c1max, c2max; /* max_l c1_l, c2_l */
	/* scratch, grown: approximate logits [rows][V padded], the integer pass's inputs and sums,
	 * a row's candidates [V], a full row's logits */
	float *a;
	size_t a_bytes;
	uint8_t *xu;
	size_t xu_bytes;
	int32_t *ai;
	size_t ai_bytes;
	double *r; /* an input's residual as it is rounded */
	size_t r_bytes;
	int *cand; /* an input's rows at or above the threshold, then its candidates */
	size_t cand_bytes;
	float *a2; /* the refined candidates' approximations and bounds */
	size_t a2_bytes;
	double *b2;
	size_t b2_bytes;
	float *full;
	size_t full_bytes;
	double *tlo; /* per thread and input: the pass's largest a and largest |a| */
	size_t tlo_bytes;
	float *pmax; /* [input][panel] the largest approximate logit of the panel's rows */
	size_t pmax_bytes;
	struct head_screen_stats st;
};

/* head_screen_build - the screen of a BF16 head of V rows and K columns packed in panels (wp,
 * kern_bf16p_pack), on the pool's threads: 0, -ENOMEM, -EINVAL (bad shape) or -EDOM (a weight
 * is not finite; nothing kept). */
int head_screen_build(struct head_screen *h, struct pool *p, const uint16_t *wp, int V, int K);
void head_screen_free(struct head_screen *h);

/* The integer pass's largest K (its int32 sums of K products of 127 x 255 cannot overflow). */
#define HEAD_SCREEN_MAX_K_INT 65536

/* Rows past which a step stops recomputing candidates and runs the full head for the row. */
static inline int head_screen_max_cands(int V)
{
	return V / 64 > 64 ? V / 64 : 64;
}

/* The integer pass's code vectors an input (0: the f32 pass): 7-bit codes leave a rounding error
 * whose bound lets hundreds of rows through, so there the residual gets codes of its own (x =
 * sx0 xq0 + sx1 xq1 + e), which refine the first pass's candidates; 8-bit codes, one. */
static inline int head_screen_terms(const struct kern_isa *isa, int integer)
{
	return !integer ? 0 : isa->i8u8_xmax < 127 && isa->row_i8u8p ? 2 : 1;
}

/*
 * head_screen_top1 - ids[m] = the greedy token of the packed head's logits for x[m*K ..] (M rows,
 * the index sampler_argmax gives on them), with the approximate logits on kc's pool and ISA and
 * the exact candidates on kc's ISA. 0 or -ENOMEM.
 */
int head_screen_top1(struct head_screen *h, struct kern_ctx *kc, const uint16_t *wp, const float *x,
		     int M, int *ids);

/* head_screen_refined - for tests: the refining pass's approximations a2[i] and bounds b2[i] of
 * rows[i] for one input x, with the rounding and arithmetic head_screen_top1 uses on an ISA whose
 * inputs take two code vectors (|exact - a2| <= b2 for every row). 0, -EINVAL (isa's take one)
 * or -ENOMEM. */
int head_screen_refined(struct head_screen *h, const struct kern_isa *isa, const float *x,
			const int *rows, int n, float *a2, double *b2);

#endif
