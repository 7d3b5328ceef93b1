/*
 * vec_ops.c - the vector kernel in synthesizable C (see vec_ops.h). Each op streams its rows
 * through one to three II=1 passes of VEC_LANES lanes:
 *
 *   gmem_a --read--> [pass 1: reduce (sum a^2 | amax | max, sum e)] --row scalar-->
 *   gmem_a,gmem_b --read--> [pass 2: lanes compute] --write--> gmem_y / gmem_q
 *
 * vec_rope_yarn_table() at the end is a host helper (libm), excluded from synthesis.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include "vec_ops.h"
#include "e4m3.h"
#include "hls_math.h"
#include "hls_quant.h"
#include "hls_rms.h"
#include "hls_strict.h"

#ifndef __SYNTHESIS__
#pragma GCC diagnostic ignored "-Wunknown-pragmas"
#pragma GCC diagnostic ignored "-Wunused-label"
#endif

#define V_P (VEC_ILV * VEC_LANES)
_Static_assert(VEC_LANES == HLS_RMS_LANES && VEC_ILV == HLS_RMS_ILV,
	       "vec_ops' reductions are hls_rms.h's (the GEMV's folded norm matches RMSNORM)");

static int v_cdiv(int a, int b) { return (a + b - 1) / b; }

/* Fixed-order sum of the partials (halving tree). */
static float vec_reduce_sum(float p[V_P])
{
	return hls_rms_reduce(p);
}

/* Sum of squares (ss = 1) or of e^(a - mx) (ss = 0) over a row, lane-structured. The exps go
 * through the VEC_EXP units, each element into the partial sum of its lane and beat as in the
 * squares' pass (the same order of additions in every partial). */
static float vec_row_sum(const float *a, int n, int ss, float mx)
{
	float p[V_P];
#pragma HLS ARRAY_PARTITION variable=p complete
	hls_rms_clear(p);
	if (!ss) {
	row_expsum:
		for (int i0 = 0; i0 < n; i0 += VEC_EXP) {
#pragma HLS PIPELINE II=1
			HLS_CNT(HLS_L_VEC_EXP);
			for (int e = 0; e < VEC_EXP; e++) {
				int i = i0 + e;
				if (i < n)
					p[(i / VEC_LANES % VEC_ILV) * VEC_LANES + i % VEC_LANES] +=
					    hls_expf(a[i] - mx);
			}
		}
		return vec_reduce_sum(p);
	}
row_sum:
	for (int b = 0; b < v_cdiv(n, VEC_LANES); b++) {
#pragma HLS PIPELINE II=1
		HLS_CNT(HLS_L_VEC_READ);
		for (int l = 0; l < VEC_LANES; l++) {
			int i = b * VEC_LANES + l;
			if (i < n) {
				p[(b % VEC_ILV) * VEC_LANES + l] += a[i] * a[i];
			}
		}
	}
	return vec_reduce_sum(p);
}

static float vec_row_max(const float *a, int n)
{
	float p[VEC_LANES];
	for (int l = 0; l < VEC_LANES; l++)
		p[l] = e4m3_bits_f32(0xFF800000u); /* -inf */
row_max:
	for (int b = 0; b < v_cdiv(n, VEC_LANES); b++) {
#pragma HLS PIPELINE II=1
		HLS_CNT(HLS_L_VEC_READ);
		for (int l = 0; l < VEC_LANES; l++) {
			int i = b * VEC_LANES + l;
			if (i < n && a[i] > p[l])
				p[l] = a[i];
		}
	}
	float m = p[0];
	for (int l = 1; l < VEC_LANES; l++)
		m = p[l] > m ? p[l] : m;
	return m;
}

/* GATHER and COMBINE (indices already checked). COMBINE keeps one row of y on chip and adds the
 * k weighted source rows into it in order, one beat per cycle: each element sees the f32
 * operations y + w_0 a_0, then + w_1 a_1, ... exactly as a chain of accumulating GEMM epilogues
 * (fp8_gemm.h, ACCUM) would apply them. */
static void vec_rows(int op, const float *a, const float *b, float *y, const int32_t *idx, int rows,
		     int n, int lda, int ldy, int k)
{
	float acc[VEC_COMBINE_MAX_N];
#pragma HLS ARRAY_PARTITION variable=acc cyclic factor=16
	int nb = v_cdiv(n, VEC_LANES);
rows_row:
	for (int r = 0; r < rows; r++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=4096
		float *yr = y + (size_t)r * ldy;
		if (op == VEC_OP_GATHER) {
			const float *ar = a + (size_t)idx[r] * lda;
		gather_beat:
			for (int bb = 0; bb < nb; bb++) {
#pragma HLS PIPELINE II=1
				HLS_CNT(HLS_L_VEC_WRITE);
				for (int l = 0; l < VEC_LANES; l++)
					if (bb * VEC_LANES + l < n)
						yr[bb * VEC_LANES + l] = ar[bb * VEC_LANES + l];
			}
			continue;
		}
	comb_load:
		for (int bb = 0; bb < nb; bb++) {
#pragma HLS PIPELINE II=1
			HLS_CNT(HLS_L_VEC_READ);
			for (int l = 0; l < VEC_LANES; l++)
				if (bb * VEC_LANES + l < n)
					acc[bb * VEC_LANES + l] = yr[bb * VEC_LANES + l];
		}
	comb_term:
		for (int j = 0; j < k; j++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=64
			const float *ar = a + (size_t)idx[(size_t)r * k + j] * lda;
			float wj = b[(size_t)r * k + j];
		comb_beat:
			for (int bb = 0; bb < nb; bb++) {
#pragma HLS PIPELINE II=1
				HLS_CNT(HLS_L_VEC_READ);
				for (int l = 0; l < VEC_LANES; l++) {
					int i = bb * VEC_LANES + l;
					if (i < n) {
						float t = wj * ar[i];
						acc[i] = acc[i] + t;
					}
				}
			}
		}
	comb_store:
		for (int bb = 0; bb < nb; bb++) {
#pragma HLS PIPELINE II=1
			HLS_CNT(HLS_L_VEC_WRITE);
			for (int l = 0; l < VEC_LANES; l++)
				if (bb * VEC_LANES + l < n)
					yr[bb * VEC_LANES + l] = acc[bb * VEC_LANES + l];
		}
	}
}

static int vec_check(int op, const float *a, const float *b, const float *y, const uint8_t *q,
		     const float *qs, const int32_t *pos, int rows, int n, int lda, int ldy,
		     uint32_t flags, int k, int src_rows)
{
	if (op < VEC_OP_RMSNORM || op > VEC_OP_COMBINE || rows < 1 || n < 1 || n > VEC_MAX_N ||
	    (flags & ~VEC_FLAG_UE8M0) || !a)
		return -EINVAL;
	if (op == VEC_OP_GATHER || op == VEC_OP_COMBINE) {
		int ni = op == VEC_OP_COMBINE ? k : 1;
		if (!y || !pos || lda < n || ldy < n || src_rows < 1 || flags ||
		    (op == VEC_OP_COMBINE &&
		     (!b || k < 1 || k > VEC_COMBINE_MAX_K || n > VEC_COMBINE_MAX_N)))
			return -EINVAL;
	idx_check:
		for (int i = 0; i < rows * ni; i++) {
#pragma HLS PIPELINE II=1
			HLS_CNT(HLS_L_VEC_ROW);
			if (pos[i] < 0 || pos[i] >= src_rows)
				return -EINVAL;
		}
		return 0;
	}
	if (op == VEC_OP_ACT_QUANT)
		return (!q || !qs || lda < n) ? -EINVAL : 0;
	if (!y || lda < n || ldy < n)
		return -EINVAL;
	if ((op == VEC_OP_RMSNORM || op == VEC_OP_ROPE || op == VEC_OP_SILU_MUL || op == VEC_OP_ADD) &&
	    !b)
		return -EINVAL;
	if (op == VEC_OP_ROPE) {
		if ((n & 1) || !pos)
			return -EINVAL;
		for (int r = 0; r < rows; r++)
			if (pos[r] < 0)
				return -EINVAL;
	}
	return 0;
}

int vec_ops(int op, const float *a, const float *b, float *y, uint8_t *q, float *qs,
	    const int32_t *pos, int rows, int n, int lda, int ldy, float eps, uint32_t flags, int k,
	    int src_rows)
{
#pragma HLS INTERFACE m_axi port=a bundle=gmem_a offset=slave max_widen_bitwidth=512
#pragma HLS INTERFACE m_axi port=b bundle=gmem_b offset=slave max_widen_bitwidth=512
#pragma HLS INTERFACE m_axi port=pos bundle=gmem_b offset=slave
#pragma HLS INTERFACE m_axi port=y bundle=gmem_y offset=slave max_widen_bitwidth=512
#pragma HLS INTERFACE m_axi port=q bundle=gmem_y offset=slave max_widen_bitwidth=512
#pragma HLS INTERFACE m_axi port=qs bundle=gmem_y offset=slave
#pragma HLS INTERFACE s_axilite port=op
#pragma HLS INTERFACE s_axilite port=rows
#pragma HLS INTERFACE s_axilite port=n
#pragma HLS INTERFACE s_axilite port=lda
#pragma HLS INTERFACE s_axilite port=ldy
#pragma HLS INTERFACE s_axilite port=eps
#pragma HLS INTERFACE s_axilite port=flags
#pragma HLS INTERFACE s_axilite port=k
#pragma HLS INTERFACE s_axilite port=src_rows
#pragma HLS INTERFACE s_axilite port=return
	int rc = vec_check(op, a, b, y, q, qs, pos, rows, n, lda, ldy, flags, k, src_rows);
	if (rc)
		return rc;
	if (op == VEC_OP_GATHER || op == VEC_OP_COMBINE) {
		vec_rows(op, a, b, y, pos, rows, n, lda, ldy, k);
		return 0;
	}
	int nb = v_cdiv(n, VEC_LANES), kb_n = v_cdiv(n, HLS_QUANT_GROUP);
vec_row:
	for (int r = 0; r < rows; r++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=4096
		const float *ar = a + (size_t)r * lda;
		float *yr = y ? y + (size_t)r * ldy : 0;
		const float *br = b;
		float k1 = 0.0f, k2 = 0.0f;
		if (op == VEC_OP_SILU_MUL || op == VEC_OP_ADD)
			br = b + (size_t)r * lda;
		if (op == VEC_OP_ROPE)
			br = b + (size_t)pos[r] * n;
		if (op == VEC_OP_RMSNORM) {
			float ss = vec_row_sum(ar, n, 1, 0.0f);
			HLS_CNT(HLS_L_VEC_ROW);
			k1 = hls_rms_scale(ss, n, eps);
		} else if (op == VEC_OP_SOFTMAX) {
			k2 = vec_row_max(ar, n);
			float s = vec_row_sum(ar, n, 0, k2);
			HLS_CNT(HLS_L_VEC_ROW);
			k1 = s;
		} else if (op == VEC_OP_ACT_QUANT) {
			/* per 128-group: amax pass then quantize pass (8 beats each) */
		quant_group:
			for (int g = 0; g < kb_n; g++) {
				int g0 = g * HLS_QUANT_GROUP;
				int gn = n - g0 < HLS_QUANT_GROUP ? n - g0 : HLS_QUANT_GROUP;
				float amax = 0.0f;
			quant_amax:
				for (int bb = 0; bb < v_cdiv(gn, VEC_LANES); bb++) {
#pragma HLS PIPELINE II=1
					HLS_CNT(HLS_L_VEC_READ);
					for (int l = 0; l < VEC_LANES; l++)
						if (bb * VEC_LANES + l < gn)
							amax = hls_amax_step(amax, ar[g0 + bb * VEC_LANES + l]);
				}
				HLS_CNT(HLS_L_VEC_ROW);
				float s = hls_quant_scale(amax, (flags & VEC_FLAG_UE8M0) != 0);
				qs[(size_t)r * kb_n + g] = s;
			quant_write:
				for (int bb = 0; bb < v_cdiv(gn, VEC_LANES); bb++) {
#pragma HLS PIPELINE II=1
					HLS_CNT(HLS_L_VEC_WRITE);
					for (int l = 0; l < VEC_LANES; l++) {
						int i = g0 + bb * VEC_LANES + l;
						if (bb * VEC_LANES + l < gn)
							q[(size_t)r * n + i] = e4m3_encode(ar[i] / s);
					}
				}
			}
			continue;
		}
		if (op == VEC_OP_SILU_MUL || op == VEC_OP_SOFTMAX) {
		vec_write_exp: /* through the VEC_EXP exp units */
			for (int i0 = 0; i0 < n; i0 += VEC_EXP) {
#pragma HLS PIPELINE II=1
				HLS_CNT(HLS_L_VEC_EXP);
				for (int e = 0; e < VEC_EXP; e++) {
					int i = i0 + e;
					if (i >= n)
						continue;
					if (op == VEC_OP_SILU_MUL)
						yr[i] = hls_siluf(ar[i]) * br[i];
					else
						yr[i] = hls_expf(ar[i] - k2) / k1;
				}
			}
			continue;
		}
	vec_write:
		for (int bb = 0; bb < nb; bb++) {
#pragma HLS PIPELINE II=1
			HLS_CNT(HLS_L_VEC_WRITE);
			for (int l = 0; l < VEC_LANES; l++) {
				int i = bb * VEC_LANES + l;
				if (i >= n)
					continue;
				switch (op) {
				case VEC_OP_RMSNORM:
					yr[i] = hls_rms_apply(ar[i], k1, br[i]);
					break;
				case VEC_OP_ROPE:
					if ((i & 1) == 0) {
						float x0 = ar[i], x1 = ar[i + 1];
						float c = br[i], s = br[i + 1];
						yr[i] = x0 * c - x1 * s;
						yr[i + 1] = x0 * s + x1 * c;
					}
					break;
				default: /* VEC_OP_ADD */
					yr[i] = ar[i] + br[i];
					break;
				}
			}
		}
	}
	return 0;
}

/* ---- timing model (host side, not synthesized) ---- */
#ifndef __SYNTHESIS__
int64_t vec_ops_cycles(const struct hls_build *bld, int op, int rows, int n, uint32_t flags,
		       struct vec_ops_cost *c)
{
	return vec_ops_cycles2(bld, op, rows, n, 1, flags, c);
}

int64_t vec_ops_cycles2(const struct hls_build *bld, int op, int rows, int n, int k,
			uint32_t flags, struct vec_ops_cost *c)
{
	struct vec_ops_cost tmp;
	if (!bld || op < VEC_OP_RMSNORM || op > VEC_OP_COMBINE || rows < 1 || n < 1 ||
	    n > VEC_MAX_N || (flags & ~VEC_FLAG_UE8M0) || (op == VEC_OP_ROPE && (n & 1)) ||
	    (op == VEC_OP_COMBINE && (k < 1 || k > VEC_COMBINE_MAX_K || n > VEC_COMBINE_MAX_N)) ||
	    ((op == VEC_OP_GATHER || op == VEC_OP_COMBINE) && flags))
		return -EINVAL;
	if (!c)
		c = &tmp;
	for (int i = 0; i < HLS_L_N; i++)
		c->it[i] = 0;
	uint64_t nb = hls_cdiv64((uint64_t)n, VEC_LANES), R = (uint64_t)rows, un = (uint64_t)n;
	uint64_t rd = 0, wr = 0, rowf = 0, depth = 0, ba = 0, bb = 0, by = 0, ex = 0;
	uint64_t ne = hls_cdiv64((uint64_t)n, VEC_EXP); /* cycles of a pass through the exp units */
	switch (op) {
	case VEC_OP_RMSNORM: /* sum pass, rsqrt, write pass; a read twice, weight, y */
		rd = nb; rowf = 1; wr = nb;
		depth = 2 * (uint64_t)bld->depth_vec + bld->depth_exp;
		ba = 8 * un; bb = 4 * un; by = 4 * un;
		break;
	case VEC_OP_ROPE:
		wr = nb; depth = bld->depth_vec;
		ba = 4 * un; bb = 4 * un; by = 4 * un;
		break;
	case VEC_OP_ACT_QUANT: {
		uint64_t g = hls_cdiv64(un, HLS_QUANT_GROUP), full = un / HLS_QUANT_GROUP;
		uint64_t last = un % HLS_QUANT_GROUP;
		uint64_t gb = full * (HLS_QUANT_GROUP / VEC_LANES) + hls_cdiv64(last, VEC_LANES);
		rd = gb; wr = gb; rowf = g;
		depth = g * (2 * (uint64_t)bld->depth_vec + bld->depth_exp);
		ba = 8 * un; by = un + 4 * g;
		break;
	}
	case VEC_OP_SILU_MUL:
		ex = ne; depth = bld->depth_vec + bld->depth_exp;
		ba = 4 * un; bb = 4 * un; by = 4 * un;
		break;
	case VEC_OP_ADD:
		wr = nb; depth = bld->depth_vec;
		ba = 4 * un; bb = 4 * un; by = 4 * un;
		break;
	case VEC_OP_GATHER: /* one index (checked first: one row step), one row copied */
		wr = nb; rowf = 1; depth = bld->depth_vec + 1;
		ba = 4 * un; bb = 4; by = 4 * un;
		break;
	case VEC_OP_COMBINE: /* k indices checked; y row in, k weighted rows added, y row out */
		rd = nb + (uint64_t)k * nb; wr = nb; rowf = (uint64_t)k;
		depth = 2 * (uint64_t)bld->depth_vec + (uint64_t)k;
		ba = 4 * un * (uint64_t)k; bb = 8 * (uint64_t)k; by = 8 * un;
		break;
	default: /* softmax: max pass, sum pass, write pass (a read three times; two exp passes) */
		rd = nb; rowf = 1; ex = 2 * ne;
		depth = 3 * (uint64_t)bld->depth_vec + 2 * bld->depth_exp;
		ba = 12 * un; by = 4 * un;
		break;
	}
	c->it[HLS_L_VEC_READ] = R * rd;
	c->it[HLS_L_VEC_WRITE] = R * wr;
	c->it[HLS_L_VEC_ROW] = R * rowf;
	c->it[HLS_L_VEC_EXP] = R * ex;
	c->bytes = R * (ba + bb + by);
	uint64_t comp = rd + wr + ex + depth;
	uint64_t mem = hls_max64(hls_max64(hls_mem_cycles(bld, ba), hls_mem_cycles(bld, bb)),
				 hls_mem_cycles(bld, by));
	c->cycles = bld->mem_latency + R * hls_max64(comp, mem);
	return (int64_t)c->cycles;
}

#endif

#ifndef __SYNTHESIS__
#include <math.h>

int vec_rope_yarn_table(float *tab, int n_pos, int d, double base, double factor, int orig_max_pos,
			double beta_fast, double beta_slow, double mscale_ratio, int *low, int *high)
{
	if (!tab || d < 2 || (d & 1) || n_pos < 1 || base <= 1.0)
		return -EINVAL;
	double lo = 0, hi = 0;
	int yarn = factor > 1.0;
	if (yarn) {
		double pi = 3.14159265358979323846;
		lo = floor(d * log(orig_max_pos / (beta_fast * 2 * pi)) / (2 * log(base)));
		hi = ceil(d * log(orig_max_pos / (beta_slow * 2 * pi)) / (2 * log(base)));
		if (lo < 0)
			lo = 0;
		if (hi > d - 1)
			hi = d - 1;
		if (low)
			*low = (int)lo;
		if (high)
			*high = (int)hi;
		if (lo == hi)
			hi += 0.001;
	}
	for (int i = 0; i < d / 2; i++) {
		double th = pow(base, -2.0 * i / d);
		if (yarn) {
			double ramp = (i - lo) / (hi - lo);
			ramp = ramp < 0 ? 0 : ramp > 1 ? 1 : ramp;
			th = th / factor * ramp + th * (1 - ramp);
		}
		for (int p = 0; p < n_pos; p++) {
			double ang = p * th;
			tab[((size_t)p * (d / 2) + i) * 2] = (float)(cos(ang) * mscale_ratio);
			tab[((size_t)p * (d / 2) + i) * 2 + 1] = (float)(sin(ang) * mscale_ratio);
		}
	}
	return 0;
}
#endif
