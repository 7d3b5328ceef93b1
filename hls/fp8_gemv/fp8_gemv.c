/*
 * fp8_gemv.c - the wide, striped, grouped GEMV kernel in synthesizable C (Vitis HLS; the emulated
 * card calls it directly). Interface, striped layout and numerics: fp8_gemv.h; timing model at
 * the end of this file; design notes in hls/README.md "fp8_gemv".
 *
 *     gmem_t (act bank)        gmem_a (act bank)                        gmem_a (act bank)
 *          |                        |                                        ^
 *   +------v-------+   +------------v-------------+                          |
 *   | read + check |   | load_x: m rows of f32 x, |  once per group,         |
 *   | every group  |   | amax per 128; quantize   |  prefetched during the   |
 *   | (table)      |   | (or keep f32: ACT_F32 /  |  previous group          |
 *   +--------------+   | W_BF16)  -> xb[m][K]     |                          |
 *                      +------------+-------------+                          |
 *                                   | one x beat per cycle, fanned out       |
 *            +----------------------+----------------------+                 |
 *            v                      v                      v                 |
 *    gmem_l0 (PC 0)         gmem_l1 (PC 1)   ...   gmem_l{L-1} (PC L-1)      |
 *            |                      |                      |                 |
 *   +--------v--------+    +--------v--------+    +--------v--------+        |
 *   | lane 0: tiles   |    | lane 1: tiles   |    | lane L-1        |        |
 *   | 0, L, 2L, ...   |    | 1, L+1, ...     |    |                 |        |
 *   | mac: 1 beat of  |    |                 |    |                 |        |
 *   | W row x m rows  |    |      ...        |    |      ...        |        |
 *   | of x per cycle; |    |                 |    |                 |        |
 *   | block scaler    |    |                 |    |                 |        |
 *   +--------+--------+    +--------+--------+    +--------+--------+        |
 *            |  R outputs x m rows per tile               |                  |
 *            +----------------------+---------------------+                  |
 *                                   v                                        |
 *                      +------------+-------------+                          |
 *                      | store: epilogue (silu*mul,+--------------------------+
 *                      | accum, residual) -> y    |
 *                      +--------------------------+
 *
 * In hardware the L lanes are parallel dataflow processes, each with its own m_axi port on its
 * own HBM pseudo-channel; they advance in lockstep through a group (same local tile, row and
 * beat), so one read of the on-chip x buffer per cycle feeds every lane. In C simulation the
 * lanes are a loop over the lane index, in order; the results are the same because every output
 * element is produced by exactly one lane and groups run in table order.
 *
 * A lane's PE takes one beat of weight codes per cycle (axi_bits/8 E4M3 codes, or half as many
 * bf16 weights) and multiplies it with the same k-range of each of the m rows of x, so the m
 * rows reuse every weight beat: axi_bits/8 MACs per x row per cycle. FP8 weights with quantized
 * x use fp8_gemm's exact int64 block sum; ACT_F32 and W_BF16 use its 8-lane f32 partial sums.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "fp8_gemv.h"
#include "e4m3.h"
#include "hls_math.h"
#include "hls_quant.h"
#include "hls_rms.h"
#include "hls_strict.h"

#ifndef __SYNTHESIS__
#pragma GCC diagnostic ignored "-Wunknown-pragmas"
#pragma GCC diagnostic ignored "-Wunused-label"
#endif

#ifndef FP8_GEMV_AXI_BITS
#define FP8_GEMV_AXI_BITS 512 /* m_axi width of every port (hls/fp8_gemv/build.cfg) */
#endif

#define V_R FP8_GEMV_R
#define V_BK 128			  /* block size of the scales */
#define V_BEAT (FP8_GEMV_AXI_BITS / 8)	  /* bytes per AXI beat */
#define V_LANES (V_BEAT / 4)		  /* f32 per beat */
#define V_MAXKB (FP8_GEMV_MAX_K / V_BK)	  /* scale blocks of the longest row */
#define V_RAW (FP8_GEMV_ACT_F32 | FP8_GEMV_W_BF16) /* flags that keep x in f32 */
#define V_F32 (FP8_GEMV_F32 ? FP8_GEMV_F32 : V_BEAT) /* f32 products a cycle and PE row */

_Static_assert(V_BK % V_R == 0, "FP8_GEMV_R must divide 128 (one weight scale per tile)");
_Static_assert(V_BK % V_BEAT == 0, "an AXI beat must divide the 128-byte block row");
_Static_assert((V_F32 & (V_F32 - 1)) == 0, "FP8_GEMV_F32 must be a power of two");
_Static_assert(V_R * 4 <= 1024, "a tile's outputs of one x row fit a few beats");

/* The x buffer holds m rows of up to FP8_GEMV_MAX_K words (2 MB): on-chip URAM in hardware. In C
 * simulation it is too large for a thread's stack, and as thread-local storage it would be
 * carved out of every thread's stack (2 MB by default where the stack limit is unlimited), so it
 * is static: fp8_gemv_run is not reentrant in C simulation (its callers serialize it, as one CU
 * runs one command at a time). */
#ifndef __SYNTHESIS__
#define V_XBUF static
#endif
#ifndef V_XBUF
#define V_XBUF
#endif

static int v_min(int a, int b) { return a < b ? a : b; }
static int v_cdiv(int a, int b) { return (a + b - 1) / b; }
static uint64_t v_align64(uint64_t a) { return (a + 63) & ~(uint64_t)63; }

/* Little-endian accesses to the banks (the table, f32 operands and bf16 weights). */
static uint32_t v_rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t v_rd64(const uint8_t *p) { return v_rd32(p) | (uint64_t)v_rd32(p + 4) << 32; }
static float v_rdf(const uint8_t *p) { return e4m3_bits_f32(v_rd32(p)); }
static void v_wrf(uint8_t *p, float f)
{
	uint32_t u = e4m3_f32_bits(f);
	p[0] = (uint8_t)u;
	p[1] = (uint8_t)(u >> 8);
	p[2] = (uint8_t)(u >> 16);
	p[3] = (uint8_t)(u >> 24);
}

/* Geometry of one matrix in the striped layout (fp8_gemv.h). */
struct v_geo {
	int nt;		   /* tiles: ceil(N / R) */
	int nt_max;	   /* tiles of the fullest lane: ceil(nt / L) */
	int halves;	   /* 2 with SILU_MUL (gate, up), else 1 */
	int eb;		   /* bytes per weight: 2 (bf16) or 1 */
	int kb;		   /* scale blocks per row: ceil(K / 128) */
	uint64_t half;	   /* code bytes of one half of a tile: R K eb */
	uint64_t tile;	   /* code bytes of one tile: halves R K eb */
	uint64_t scales;   /* offset of the scales from w_off (FP8 only) */
	uint64_t bytes;	   /* bytes per lane */
};

static void v_geometry(int N, int K, int L, uint32_t flags, struct v_geo *g)
{
	int bf = (flags & FP8_GEMV_W_BF16) != 0;
	g->nt = v_cdiv(N, V_R);
	g->nt_max = v_cdiv(g->nt, L);
	g->halves = (flags & FP8_GEMV_SILU_MUL) ? 2 : 1;
	g->eb = bf ? 2 : 1;
	g->kb = v_cdiv(K, V_BK);
	g->half = (uint64_t)V_R * K * g->eb;
	g->tile = g->half * g->halves;
	g->scales = v_align64((uint64_t)g->nt_max * g->tile);
	g->bytes = bf ? (uint64_t)g->nt_max * g->tile
		      : g->scales + (uint64_t)g->nt_max * g->halves * g->kb * 4;
}

uint64_t fp8_gemv_stripe_bytes(int N, int K, int L, uint32_t flags)
{
	struct v_geo g;
	if (N < 1 || N > FP8_GEMV_MAX_N || K < 1 || K > FP8_GEMV_MAX_K || L < 1 ||
	    L > FP8_GEMV_MAX_LANES || (flags & ~FP8_GEMV_FLAGS_ALL))
		return 0;
	v_geometry(N, K, L, flags, &g);
	return g.bytes;
}

/* Flag and shape rules of one group: 0, FP8_GEMV_E_FLAGS or FP8_GEMV_E_SHAPE. UE8M0 only
 * applies to quantize-inside; W_BF16 has no SiLU pair (there is no bf16 expert). The unused
 * offsets (res_off without RESIDUAL, rw_off without ACCUM) are ignored. */
static uint32_t v_check_grp(const struct fp8_gemv_grp *g, int m)
{
	uint32_t f = g->flags;
	if ((f & ~FP8_GEMV_FLAGS_ALL) || ((f & FP8_GEMV_UE8M0) && (f & V_RAW)) ||
	    ((f & FP8_GEMV_W_BF16) && (f & FP8_GEMV_SILU_MUL)) ||
	    ((f & FP8_GEMV_RES_OUT) && !(f & FP8_GEMV_RESIDUAL)) ||
	    ((f & FP8_GEMV_RMSNORM) && (f & (FP8_GEMV_RESIDUAL | FP8_GEMV_ACCUM))) ||
	    ((f & FP8_GEMV_RMSNORM) && !(f & (FP8_GEMV_ARGMAX | FP8_GEMV_XIDX)) &&
	     (g->rw_off >> 32)) ||
	    ((f & FP8_GEMV_ARGMAX) && (f & (FP8_GEMV_ACCUM | FP8_GEMV_SILU_MUL))) ||
	    ((f & FP8_GEMV_XIDX) && (f & (FP8_GEMV_ARGMAX | FP8_GEMV_ACCUM))) ||
	    ((f & FP8_GEMV_CONT) && (f & (FP8_GEMV_ACCUM | FP8_GEMV_SILU_MUL | FP8_GEMV_RMSNORM |
					  FP8_GEMV_ARGMAX | FP8_GEMV_XIDX))))
		return FP8_GEMV_E_FLAGS;
	if (g->n < 1 || g->n > FP8_GEMV_MAX_N || g->k < 1 || g->k > FP8_GEMV_MAX_K ||
	    (m > 1 && (g->ldx < g->k || g->ldy < g->n)))
		return FP8_GEMV_E_SHAPE;
	return 0;
}

/* 1 when [off, off + len) is not inside a bank of `bank` bytes. */
static int v_outside(uint64_t off, uint64_t len, uint64_t bank)
{
	return off > bank || len > bank - off;
}

/* Bytes spanned by an f32 [m][ld] operand of which `cols` columns are used. */
static uint64_t v_span(int m, uint32_t ld, uint32_t cols)
{
	return ((uint64_t)(m - 1) * (m > 1 ? ld : 0) + cols) * 4;
}

/* Byte offset in the activation bank of x row i of group g (XIDX: row idx[i]). */
static uint64_t v_xrow(const uint8_t *act, const struct fp8_gemv_grp *g, int i)
{
	uint64_t r = (uint64_t)i;
	if (g->flags & FP8_GEMV_XIDX)
		r = v_rd32(act + (g->rw_off >> 32) + 4 * (uint64_t)i);
	return g->x_off + r * g->ldx * 4;
}

/* Every operand of a checked group inside its bank: 0 or FP8_GEMV_E_BOUNDS. */
static uint32_t v_check_bounds(const uint8_t *act, const struct fp8_gemv_grp *g, int m, int L,
			       uint64_t act_bytes, uint64_t lane_bytes)
{
	uint64_t xs = v_span(m, g->ldx, g->k), ys = v_span(m, g->ldy, g->n);
	if (g->flags & FP8_GEMV_XIDX) { /* the index list, then every row it names */
		if (v_outside(g->rw_off >> 32, (uint64_t)m * 4, act_bytes))
			return FP8_GEMV_E_BOUNDS;
	check_xidx:
		for (int i = 0; i < m; i++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=16
			uint64_t r = v_rd32(act + (g->rw_off >> 32) + 4 * (uint64_t)i);
			if (r > act_bytes / 4 || v_outside(g->x_off + r * g->ldx * 4,
							 (uint64_t)g->k * 4, act_bytes))
				return FP8_GEMV_E_BOUNDS;
		}
		xs = (uint64_t)g->k * 4; /* (each row checked above) */
	}
	if (v_outside(g->x_off, xs, act_bytes) || v_outside(g->y_off, ys, act_bytes) ||
	    ((g->flags & FP8_GEMV_RESIDUAL) && v_outside(g->res_off, ys, act_bytes)) ||
	    ((g->flags & FP8_GEMV_ACCUM) && v_outside(g->rw_off, (uint64_t)m * 4, act_bytes)) ||
	    ((g->flags & FP8_GEMV_CONT) && v_outside(g->rw_off, ys, act_bytes)) ||
	    ((g->flags & FP8_GEMV_RMSNORM) && v_outside(g->res_off, (uint64_t)g->k * 4, act_bytes)) ||
	    ((g->flags & FP8_GEMV_ARGMAX) && v_outside(g->rw_off >> 32, (uint64_t)m * 8, act_bytes)) ||
	    v_outside(g->w_off, fp8_gemv_stripe_bytes((int)g->n, (int)g->k, L, g->flags),
		      lane_bytes))
		return FP8_GEMV_E_BOUNDS;
	return 0;
}

/* Where a group writes: res with RES_OUT, else y. */
static uint64_t v_out_off(const struct fp8_gemv_grp *g)
{
	return (g->flags & FP8_GEMV_RES_OUT) ? g->res_off : g->y_off;
}

/* Whether the outputs of groups a and b meet: their extents overlap and, when both have m > 1
 * rows at one stride, a row of one lies on a row of the other (the heads of a rows command
 * interleave their rows without meeting). Rows r of a and s of b meet when
 * -nb < d + (s - r) ld < na, with d the distance of their starts (bytes). */
static int v_overlap(const struct fp8_gemv_grp *a, const struct fp8_gemv_grp *b, int m)
{
	uint64_t y0 = v_out_off(a), y1 = y0 + v_span(m, a->ldy, a->n);
	uint64_t z0 = v_out_off(b), z1 = z0 + v_span(m, b->ldy, b->n);
	if (!(y0 < z1 && z0 < y1))
		return 0;
	if (m == 1 || a->ldy != b->ldy)
		return 1;
	int64_t ld = (int64_t)a->ldy * 4, na = (int64_t)a->n * 4, nb = (int64_t)b->n * 4;
	int64_t d = (int64_t)(z0 - y0);
overlap_rows:
	for (int q = -(m - 1); q <= m - 1; q++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=31
		int64_t o = d + q * ld;
		if (o > -nb && o < na)
			return 1;
	}
	return 0;
}

/* Whether group b loads the same x as group a (the same rows, the same loader mode and norm):
 * the x buffer then already holds it, and b's loader does not run. */
static int v_same_x(const struct fp8_gemv_grp *a, const struct fp8_gemv_grp *b)
{
	uint32_t mode = V_RAW | FP8_GEMV_UE8M0 | FP8_GEMV_RMSNORM | FP8_GEMV_XIDX;
	if (a->x_off != b->x_off || a->ldx != b->ldx || a->k != b->k ||
	    (a->flags & mode) != (b->flags & mode) ||
	    ((a->flags & FP8_GEMV_XIDX) && (a->rw_off >> 32) != (b->rw_off >> 32)))
		return 0;
	return !(a->flags & FP8_GEMV_RMSNORM) || (a->res_off == b->res_off && a->rw_off == b->rw_off);
}

/* CONT group g's start values meet earlier group h's output without being exactly it (offset,
 * n, ldy) from the same lanes (lane0): a lane would read a start another lane writes. */
static int v_cont_bad(const struct fp8_gemv_grp *g, const struct fp8_gemv_grp *h, int m)
{
	struct fp8_gemv_grp s = *g;
	s.y_off = g->rw_off;
	s.flags &= ~FP8_GEMV_RES_OUT;
	if (!v_overlap(&s, h, m))
		return 0;
	return v_out_off(h) != g->rw_off || h->n != g->n || (m > 1 && h->ldy != g->ldy) ||
	       h->lane0 != g->lane0;
}

/* The rules between the groups of a command: outputs that meet an earlier group's have its
 * lane0 (one lane writes each output row), a CONT group's start that meets an earlier output is
 * exactly it (v_cont_bad), and the x of all groups fits the on-chip buffer (a group reusing the
 * one before's x counts once). 0, FP8_GEMV_E_FLAGS | g << 8 or FP8_GEMV_E_ARGS. */
static uint32_t v_check_table(const struct fp8_gemv_grp *tab, int ng, int m)
{
	uint64_t xs = 0;
check_table:
	for (int g = 0; g < ng; g++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=512
		if (g == 0 || !v_same_x(&tab[g - 1], &tab[g])) /* (a shared x is held once) */
			xs += (uint64_t)m * tab[g].k;
		for (int h = 0; h < g; h++) {
			if (tab[h].lane0 != tab[g].lane0 && v_overlap(&tab[g], &tab[h], m))
				return FP8_GEMV_E_FLAGS | (uint32_t)g << 8;
			if ((tab[g].flags & FP8_GEMV_CONT) && v_cont_bad(&tab[g], &tab[h], m))
				return FP8_GEMV_E_FLAGS | (uint32_t)g << 8;
		}
	}
	return xs > (uint64_t)FP8_GEMV_MAX_M * FP8_GEMV_MAX_K ? FP8_GEMV_E_ARGS : 0;
}


/* Reads table entry p (64 bytes, little-endian) into g. */
static void v_read_grp(const uint8_t *p, struct fp8_gemv_grp *g)
{
	g->w_off = v_rd64(p);
	g->x_off = v_rd64(p + 8);
	g->y_off = v_rd64(p + 16);
	g->res_off = v_rd64(p + 24);
	g->rw_off = v_rd64(p + 32);
	g->n = v_rd32(p + 40);
	g->k = v_rd32(p + 44);
	g->ldx = v_rd32(p + 48);
	g->ldy = v_rd32(p + 52);
	g->flags = v_rd32(p + 56);
	g->lane0 = v_rd32(p + 60);
}

/* Loads the group's m rows of x once into xb: with ACT_F32 / W_BF16 the f32 bit patterns, else
 * quantized per 128 channels exactly as fp8_gemm's FP8_GEMM_X_F32 path (hls_quant.h: amax during
 * the load, then one quantizer pass) as E4M3 fixed-point values, with the scales in xsc. With
 * RMSNORM a norm pass reads a row into xb and sums its squares (hls_rms.h), reading the norm's
 * weight into gw with the first row, and the load pass takes the row from xb, normalized.
 *
 * One pipelined loop does the three passes side by side: its step s takes block s of the rows'
 * blocks in order (row s / KB, block s % KB) through the load pass (into xf[s & 1], with the
 * block's amax), the block before it through the quantizer (from xf[(s - 1) & 1], its scale
 * known once its load ended) and, with RMSNORM, the same block of the next row through the norm
 * pass; a step takes as many cycles as the longer of its load and quantizer beats, and a last
 * step drains the last block's quantizer. Only row 0's norm pass runs alone, before the loop.
 * Each element goes through the same operations in the same order as in three separate passes,
 * so the bits are those of the passes one after another. */
static void v_load_x(const uint8_t *act, const struct fp8_gemv_grp *g, int m,
		     int32_t xb[FP8_GEMV_MAX_M][FP8_GEMV_MAX_K], float xsc[FP8_GEMV_MAX_M][V_MAXKB])
{
	int K = (int)g->k, KB = v_cdiv(K, V_BK), S = m * KB;
	int raw = (g->flags & V_RAW) != 0, ue8m0 = (g->flags & FP8_GEMV_UE8M0) != 0;
	int norm = (g->flags & FP8_GEMV_RMSNORM) != 0;
	float eps = e4m3_bits_f32((uint32_t)g->rw_off);
	V_XBUF float gw[FP8_GEMV_MAX_K]; /* the norm's weight, read with the first row */
	float xf[2][V_BK];
#pragma HLS ARRAY_PARTITION variable=xf cyclic factor=16 dim=2
	float p[HLS_RMS_P], r = 0.0f, r_next = 0.0f;
#pragma HLS ARRAY_PARTITION variable=p complete
	/* the block in the quantizer this step: row qi, block qkb of qkn elements, scale qs */
	int qi = 0, qkb = 0, qkn = 0, qnb = 0;
	float qs = 1.0f;
	if (norm) {
		const uint8_t *row = act + v_xrow(act, g, 0);
		hls_rms_clear(p);
	gemv_norm:
		for (int b = 0; b < v_cdiv(K, V_LANES); b++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=2048
#pragma HLS PIPELINE II=1
			HLS_CNT(HLS_L_GEMV_NORM);
			for (int e = 0; e < V_LANES; e++) {
				int k = b * V_LANES + e;
				if (k < K) {
					float v = v_rdf(row + (uint64_t)k * 4);
					xb[0][k] = (int32_t)e4m3_f32_bits(v);
					p[hls_rms_slot(k)] += v * v;
					gw[k] = v_rdf(act + g->res_off + (uint64_t)k * 4);
				}
			}
		}
		r_next = hls_rms_scale(hls_rms_reduce(p), K, eps);
	}
load_x_step:
	for (int s = 0; s <= S; s++) {
#pragma HLS LOOP_TRIPCOUNT min=2 max=4097
		int i = s / KB, kb = s % KB, k0 = kb * V_BK;
		int kn = s < S ? v_min(V_BK, K - k0) : 0, nb = v_cdiv(kn, V_LANES);
		int nx = norm && s < S && i + 1 < m; /* the next row's norm pass rides along */
		const uint8_t *row = s < S ? act + v_xrow(act, g, i) : act;
		const uint8_t *rnx = nx ? act + v_xrow(act, g, i + 1) : act;
		if (s < S && kb == 0) {
			r = r_next;
			if (nx)
				hls_rms_clear(p);
		}
		int steps = nb > qnb ? nb : qnb; /* (qnb stays 0 without the quantizer) */
		float amax = 0.0f;
	gemv_load_x:
		for (int b = 0; b < steps; b++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=8
#pragma HLS PIPELINE II=1
			HLS_CNT(HLS_L_GEMV_LOAD_X);
			for (int e = 0; e < V_LANES; e++) {
				int k = b * V_LANES + e;
				if (b < qnb && k < qkn)
					xb[qi][qkb * V_BK + k] =
					    e4m3_decode_fixed(e4m3_encode(xf[(s - 1) & 1][k] / qs));
				if (b >= nb)
					continue;
				if (nx && k < kn) {
					float u = v_rdf(rnx + (uint64_t)(k0 + k) * 4);
					xb[i + 1][k0 + k] = (int32_t)e4m3_f32_bits(u);
					p[hls_rms_slot(k0 + k)] += u * u;
				}
				float v = 0.0f;
				if (k < kn && norm)
					v = hls_rms_apply(e4m3_bits_f32((uint32_t)xb[i][k0 + k]), r,
							  gw[k0 + k]);
				else if (k < kn)
					v = v_rdf(row + (uint64_t)(k0 + k) * 4);
				xf[s & 1][k] = v;
				amax = hls_amax_step(amax, v);
				if (raw && k < kn)
					xb[i][k0 + k] = (int32_t)e4m3_f32_bits(v);
			}
		}
		if (nx && kb == KB - 1)
			r_next = hls_rms_scale(hls_rms_reduce(p), K, eps);
		qnb = 0;
		if (s < S && !raw) {
			qs = hls_quant_scale(amax, ue8m0);
			xsc[i][kb] = qs;
			qi = i;
			qkb = kb;
			qkn = kn;
			qnb = nb;
		}
	}
}

/* Fixed-order sum of the 8 f32 partial sums (fp8_gemm's halving tree). */
static float v_tree8(const float p[8])
{
	float a0 = p[0] + p[4], a1 = p[1] + p[5], a2 = p[2] + p[6], a3 = p[3] + p[7];
	return (a0 + a2) + (a1 + a3);
}

/* One weight row (K codes or bf16 at w) against the m rows of x: acc[i] for i < m. One beat of
 * the row against FP8_GEMV_PR rows of x per iteration (ceil(m / PR) iterations a beat); at the
 * end of each 128-block a row's block result is scaled and added to its acc in kb order
 * (fp8_gemv.h numerics), acc starting from init (+0, or CONT's start values). Each row's
 * arithmetic is the same whatever PR. */
static void v_row(const uint8_t *w, int K, uint32_t flags, int m,
		  const int32_t xb[FP8_GEMV_MAX_M][FP8_GEMV_MAX_K],
		  const float xsc[FP8_GEMV_MAX_M][V_MAXKB], const float sc[V_MAXKB],
		  const float init[FP8_GEMV_MAX_M], float acc[FP8_GEMV_MAX_M])
{
	int bf = (flags & FP8_GEMV_W_BF16) != 0, raw = (flags & V_RAW) != 0;
	int per_beat = bf ? V_BEAT / 2 : V_BEAT, nb = v_cdiv(K, per_beat);
	/* a beat's steps: the f32 modes take V_F32 of its values a cycle */
	int per_step = raw ? v_min(per_beat, V_F32) : per_beat, ns = per_beat / per_step;
	int64_t d[FP8_GEMV_MAX_M];
	float ps[FP8_GEMV_MAX_M][8];
#pragma HLS ARRAY_PARTITION variable=d complete dim=0
#pragma HLS ARRAY_PARTITION variable=ps complete dim=0
	for (int i = 0; i < FP8_GEMV_MAX_M; i++)
		acc[i] = init[i]; /* +0, or a CONT slice's start */
gemv_mac:
	for (int b = 0; b < nb; b++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=512
	gemv_mac_rows:
		for (int st = 0; st < v_cdiv(m, FP8_GEMV_PR) * ns; st++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=128
#pragma HLS PIPELINE II=1
			HLS_CNT(HLS_L_GEMV_MAC);
			int i0 = st / ns * FP8_GEMV_PR, i1 = v_min(m, i0 + FP8_GEMV_PR);
			for (int e = st % ns * per_step; e < (st % ns + 1) * per_step; e++) {
				int k = b * per_beat + e, j = k % V_BK;
				if (k >= K)
					continue;
				if (j == 0)
					for (int i = i0; i < i1; i++) {
						d[i] = 0;
						for (int l = 0; l < 8; l++)
							ps[i][l] = 0.0f;
					}
				int32_t wfix = bf ? 0 : e4m3_decode_fixed(w[k]);
				float wv = bf ? bf16_to_f32((uint16_t)(w[2 * k] | w[2 * k + 1] << 8))
					      : (float)wfix * 0x1p-9f;
				for (int i = i0; i < i1; i++) {
					if (raw)
						ps[i][j % 8] += e4m3_bits_f32((uint32_t)xb[i][k]) * wv;
					else
						d[i] += (int64_t)xb[i][k] * wfix;
				}
				if (j == V_BK - 1 || k == K - 1) { /* block end: the scaler */
					int kb = k / V_BK;
					for (int i = i0; i < i1; i++) {
						float t;
						if (bf)
							t = v_tree8(ps[i]);
						else if (raw)
							t = v_tree8(ps[i]) * sc[kb];
						else
							t = ((float)d[i] * 0x1p-18f) * (xsc[i][kb] * sc[kb]);
						acc[i] = acc[i] + t;
					}
				}
			}
		}
	}
}

/* FP8_GEMV_ARGMAX: per x row and store position e (V_LANES of them, each its own running state
 * so the II=1 store loop carries one compare-select per position), the largest stored value
 * and its output row; nan0 when output row 0 is NaN. */
struct v_am {
	float v[FP8_GEMV_MAX_M][V_LANES];
	uint32_t i[FP8_GEMV_MAX_M][V_LANES];
	uint8_t have[FP8_GEMV_MAX_M][V_LANES];
	uint8_t nan0[FP8_GEMV_MAX_M];
};

/* Folds output row n of value v into state (row x, position e): the larger value wins, the lower
 * index on equal values (-0 == +0), NaN never (a NaN row 0 is remembered). */
static void v_am_add(struct v_am *a, int x, int e, uint32_t n, float v)
{
	if (v != v) {
		if (n == 0)
			a->nan0[x] = 1;
		return;
	}
	if (!a->have[x][e] || v > a->v[x][e] || (v == a->v[x][e] && n < a->i[x][e])) {
		a->v[x][e] = v;
		a->i[x][e] = n;
		a->have[x][e] = 1;
	}
}

/* The epilogue after the SiLU pair on output byte offset o (output row n of x row x):
 * accumulate (route weight rw), residual, the store (into the residual stream with RES_OUT),
 * and with ARGMAX the value into position e's greedy state. */
static void v_out(uint8_t *act, const struct fp8_gemv_grp *g, uint64_t o, float rw, float v,
		  struct v_am *am, int x, int e, uint32_t n)
{
	uint32_t f = g->flags;
	if (f & FP8_GEMV_ACCUM)
		v = v_rdf(act + g->y_off + o) + rw * v;
	if (f & FP8_GEMV_RESIDUAL)
		v = v + v_rdf(act + g->res_off + o);
	v_wrf(act + ((f & FP8_GEMV_RES_OUT) ? g->res_off : g->y_off) + o, v);
	if (f & FP8_GEMV_ARGMAX)
		v_am_add(am, x, e, n, v);
}

/* After a group's last tile: each row's positions merged (the same rule) into its record. */
static void v_am_store(uint8_t *act, const struct fp8_gemv_grp *g, int m, const struct v_am *am)
{
am_row:
	for (int x = 0; x < m; x++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=16
		float v = 0.0f;
		uint32_t n = 0;
		int have = 0;
		for (int e = 0; e < V_LANES; e++) {
#pragma HLS UNROLL
			if (am->have[x][e] && (!have || am->v[x][e] > v ||
					       (am->v[x][e] == v && am->i[x][e] < n))) {
				v = am->v[x][e];
				n = am->i[x][e];
				have = 1;
			}
		}
		uint8_t *p = act + (g->rw_off >> 32) + (uint64_t)x * 8;
		if (am->nan0[x] || !have) { /* row 0 NaN (or every output NaN): index 0 */
			n = 0;
			v = v_rdf(act + v_out_off(g) + (uint64_t)x * g->ldy * 4);
		}
		p[0] = (uint8_t)n;
		p[1] = (uint8_t)(n >> 8);
		p[2] = (uint8_t)(n >> 16);
		p[3] = (uint8_t)(n >> 24);
		v_wrf(p + 4, v);
	}
}

/* Writes a tile's outputs (rows [n0, n0 + rows) of y for each x row) with the epilogue. */
static void v_store(uint8_t *act, const struct fp8_gemv_grp *g, int m, int n0, int rows,
		    const float acc[2][FP8_GEMV_MAX_M][V_R], struct v_am *am)
{
	uint32_t f = g->flags;
	int nb = v_cdiv(rows * 4, V_BEAT);
	if (f & FP8_GEMV_SILU_MUL) { /* through the CU's FP8_GEMV_SILU SiLU units */
	silu_row:
		for (int i = 0; i < m; i++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=16
			float rw = (f & FP8_GEMV_ACCUM) ? v_rdf(act + g->rw_off + (uint64_t)i * 4) : 0.0f;
		gemv_silu:
			for (int r0 = 0; r0 < rows; r0 += FP8_GEMV_SILU) {
#pragma HLS PIPELINE II=1
				HLS_CNT(HLS_L_GEMV_SILU);
				for (int e = 0; e < FP8_GEMV_SILU; e++) {
					int r = r0 + e;
					if (r >= rows)
						continue;
					v_out(act, g, ((uint64_t)i * g->ldy + (uint64_t)(n0 + r)) * 4, rw,
					      hls_siluf(acc[0][i][r]) * acc[1][i][r], am, i, e,
					      (uint32_t)(n0 + r));
				}
			}
		}
		return;
	}
store_row:
	for (int i = 0; i < m; i++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=16
		float rw = (f & FP8_GEMV_ACCUM) ? v_rdf(act + g->rw_off + (uint64_t)i * 4) : 0.0f;
	gemv_store:
		for (int b = 0; b < nb; b++) {
#pragma HLS PIPELINE II=1
			HLS_CNT(HLS_L_GEMV_STORE);
			for (int e = 0; e < V_LANES; e++) {
				int r = b * V_LANES + e;
				if (r >= rows)
					continue;
				v_out(act, g, ((uint64_t)i * g->ldy + (uint64_t)(n0 + r)) * 4, rw,
				      acc[0][i][r], am, i, e, (uint32_t)(n0 + r));
			}
		}
	}
}

/* The first tile of lane l (rotation lane0) and how many of nt tiles it holds. */
static int v_lane_tiles(int l, int L, int lane0, int nt, int *t0)
{
	*t0 = (l - lane0 + L) % L;
	return *t0 < nt ? (nt - *t0 + L - 1) / L : 0;
}

/* Lane l's share of one group: its tiles t = t0, t0 + L, ... in ascending order. */
static void v_lane(const uint8_t *lane, int l, int L, uint8_t *act, const struct fp8_gemv_grp *g,
		   int m, const int32_t xb[FP8_GEMV_MAX_M][FP8_GEMV_MAX_K],
		   const float xsc[FP8_GEMV_MAX_M][V_MAXKB], struct v_am *am)
{
	int N = (int)g->n, K = (int)g->k, bf = (g->flags & FP8_GEMV_W_BF16) != 0;
	struct v_geo geo;
	v_geometry(N, K, L, g->flags, &geo);
	int t0, count = v_lane_tiles(l, L, (int)g->lane0, geo.nt, &t0);
	float acc[2][FP8_GEMV_MAX_M][V_R], sc[V_MAXKB], racc[FP8_GEMV_MAX_M];
	float ini[FP8_GEMV_MAX_M][V_R], rini[FP8_GEMV_MAX_M];
	int cont = (g->flags & FP8_GEMV_CONT) != 0;
gemv_tile:
	for (int jj = 0; jj < count; jj++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=1024
		int t = t0 + jj * L, j = t / L, rows = v_min(V_R, N - t * V_R);
		/* CONT: the tile's start values, a beat of them a cycle per x row */
	init_row:
		for (int i = 0; i < (cont ? m : 0); i++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=16
		gemv_init:
			for (int b = 0; b < v_cdiv(rows * 4, V_BEAT); b++) {
#pragma HLS PIPELINE II=1
				HLS_CNT(HLS_L_GEMV_INIT);
				for (int e = 0; e < V_LANES; e++) {
					int r = b * V_LANES + e;
					if (r < rows)
						ini[i][r] = v_rdf(act + g->rw_off +
								  ((uint64_t)i * g->ldy +
								   (uint64_t)(t * V_R + r)) *
								      4);
				}
			}
		}
	gemv_half:
		for (int h = 0; h < geo.halves; h++) {
			const uint8_t *srow =
			    lane + g->w_off + geo.scales + ((uint64_t)j * geo.halves + h) * geo.kb * 4;
		gemv_load_s:
			for (int b = 0; b < (bf ? 0 : v_cdiv(geo.kb, V_LANES)); b++) {
#pragma HLS PIPELINE II=1
				HLS_CNT(HLS_L_GEMV_LOAD_S);
				for (int e = 0; e < V_LANES; e++) {
					int kb = b * V_LANES + e;
					if (kb < geo.kb)
						sc[kb] = v_rdf(srow + (uint64_t)kb * 4);
				}
			}
		gemv_row:
			for (int r = 0; r < rows; r++) {
				const uint8_t *w = lane + g->w_off + (uint64_t)j * geo.tile +
						   (uint64_t)h * geo.half + (uint64_t)r * K * geo.eb;
				for (int i = 0; i < FP8_GEMV_MAX_M; i++)
					rini[i] = cont && i < m ? ini[i][r] : 0.0f;
				v_row(w, K, g->flags, m, xb, xsc, sc, rini, racc);
				for (int i = 0; i < m; i++)
					acc[h][i][r] = racc[i];
			}
		}
		v_store(act, g, m, t * V_R, rows, (const float(*)[FP8_GEMV_MAX_M][V_R])acc, am);
	}
}

uint32_t fp8_gemv_run(uint8_t *act, uint64_t act_bytes, const uint8_t *const *lane,
		      uint64_t lane_bytes, int L, uint64_t tab_off, int ng, int m)
{
	V_XBUF int32_t xb[FP8_GEMV_MAX_M][FP8_GEMV_MAX_K];
	V_XBUF float xsc[FP8_GEMV_MAX_M][V_MAXKB];
	struct fp8_gemv_grp tab[FP8_GEMV_MAX_GROUPS];
	struct v_am am;
#pragma HLS BIND_STORAGE variable=xb type=ram_2p impl=uram
#pragma HLS ARRAY_PARTITION variable=am complete dim=0
	if (!act || !lane || L < 1 || L > FP8_GEMV_MAX_LANES || m < 1 || m > FP8_GEMV_MAX_M ||
	    ng < 1 || ng > FP8_GEMV_MAX_GROUPS ||
	    v_outside(tab_off, (uint64_t)ng * sizeof(struct fp8_gemv_grp), act_bytes))
		return FP8_GEMV_E_ARGS;
check_lanes:
	for (int l = 0; l < L; l++)
		if (!lane[l])
			return FP8_GEMV_E_ARGS;
	/* every group is read and checked before any is computed: a failed command writes nothing */
gemv_table:
	for (int g = 0; g < ng; g++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=512
#pragma HLS PIPELINE II=1
		HLS_CNT(HLS_L_GEMV_TABLE);
		v_read_grp(act + tab_off + (uint64_t)g * sizeof(struct fp8_gemv_grp), &tab[g]);
		uint32_t rc = v_check_grp(&tab[g], m);
		if (!rc && tab[g].lane0 >= (uint32_t)L)
			rc = FP8_GEMV_E_FLAGS;
		if (!rc)
			rc = v_check_bounds(act, &tab[g], m, L, act_bytes, lane_bytes);
		if (rc)
			return rc | (uint32_t)g << 8;
	}
	uint32_t rc = v_check_table(tab, ng, m);
	if (rc)
		return rc;
gemv_group:
	for (int g = 0; g < ng; g++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=512
		if (g == 0 || !v_same_x(&tab[g - 1], &tab[g]))
			v_load_x(act, &tab[g], m, xb, xsc);
		for (int x = 0; x < FP8_GEMV_MAX_M; x++) {
#pragma HLS UNROLL
			am.nan0[x] = 0;
			for (int e = 0; e < V_LANES; e++)
				am.have[x][e] = 0;
		}
	gemv_lane:
		for (int l = 0; l < L; l++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=64
			v_lane(lane[l], l, L, act, &tab[g], m, (const int32_t(*)[FP8_GEMV_MAX_K])xb,
			       (const float(*)[V_MAXKB])xsc, &am);
		}
		if (tab[g].flags & FP8_GEMV_ARGMAX)
			v_am_store(act, &tab[g], m, &am);
	}
	return 0;
}

/* The synthesis top of the 32-lane build (FP8_GEMV_SYNTH_LANES): one m_axi port per lane, each
 * bound to its own pseudo-channel by bitstream/ (connectivity from the board tree), the
 * activation bank on gmem_a. Returns fp8_gemv_run's detail. */
int fp8_gemv(uint8_t *act, const uint8_t *l0, const uint8_t *l1, const uint8_t *l2, const uint8_t *l3, const uint8_t *l4, const uint8_t *l5, const uint8_t *l6, const uint8_t *l7, const uint8_t *l8, const uint8_t *l9, const uint8_t *l10, const uint8_t *l11, const uint8_t *l12, const uint8_t *l13, const uint8_t *l14, const uint8_t *l15, const uint8_t *l16, const uint8_t *l17, const uint8_t *l18, const uint8_t *l19, const uint8_t *l20, const uint8_t *l21, const uint8_t *l22, const uint8_t *l23, const uint8_t *l24, const uint8_t *l25, const uint8_t *l26, const uint8_t *l27, const uint8_t *l28, const uint8_t *l29, const uint8_t *l30, const uint8_t *l31, unsigned int act_bytes, unsigned int lane_bytes,
	     unsigned int tab_off, int ng, int m, unsigned int x0_off, int hint)
{
#pragma HLS INTERFACE m_axi port=act bundle=gmem_a offset=slave max_widen_bitwidth=512 max_read_burst_length=64
#pragma HLS INTERFACE m_axi port=l0 bundle=gmem_l0 offset=slave max_widen_bitwidth=512 max_read_burst_length=64 num_read_outstanding=16
#pragma HLS INTERFACE m_axi port=l1 bundle=gmem_l1 offset=slave max_widen_bitwidth=512 max_read_burst_length=64 num_read_outstanding=16
#pragma HLS INTERFACE m_axi port=l2 bundle=gmem_l2 offset=slave max_widen_bitwidth=512 max_read_burst_length=64 num_read_outstanding=16
#pragma HLS INTERFACE m_axi port=l3 bundle=gmem_l3 offset=slave max_widen_bitwidth=512 max_read_burst_length=64 num_read_outstanding=16
#pragma HLS INTERFACE m_axi port=l4 bundle=gmem_l4 offset=slave max_widen_bitwidth=512 max_read_burst_length=64 num_read_outstanding=16
#pragma HLS INTERFACE m_axi port=l5 bundle=gmem_l5 offset=slave max_widen_bitwidth=512 max_read_burst_length=64 num_read_outstanding=16
#pragma HLS INTERFACE m_axi port=l6 bundle=gmem_l6 offset=slave max_widen_bitwidth=512 max_read_burst_length=64 num_read_outstanding=16
#pragma HLS INTERFACE m_axi port=l7 bundle=gmem_l7 offset=slave max_widen_bitwidth=512 max_read_burst_length=64 num_read_outstanding=16
#pragma HLS INTERFACE m_axi port=l8 bundle=gmem_l8 offset=slave max_widen_bitwidth=512 max_read_burst_length=64 num_read_outstanding=16
#pragma HLS INTERFACE m_axi port=l9 bundle=gmem_l9 offset=slave max_widen_bitwidth=512 max_read_burst_length=64 num_read_outstanding=16
#pragma HLS INTERFACE m_axi port=l10 bundle=gmem_l10 offset=slave max_widen_bitwidth=512 max_read_burst_length=64 num_read_outstanding=16
#pragma HLS INTERFACE m_axi port=l11 bundle=gmem_l11 offset=slave max_widen_bitwidth=512 max_read_burst_length=64 num_read_outstanding=16
#pragma HLS INTERFACE m_axi port=l12 bundle=gmem_l12 offset=slave max_widen_bitwidth=512 max_read_burst_length=64 num_read_outstanding=16
#pragma HLS INTERFACE m_axi port=l13 bundle=gmem_l13 offset=slave max_widen_bitwidth=512 max_read_burst_length=64 num_read_outstanding=16
#pragma HLS INTERFACE m_axi port=l14 bundle=gmem_l14 offset=slave max_widen_bitwidth=512 max_read_burst_length=64 num_read_outstanding=16
#pragma HLS INTERFACE m_axi port=l15 bundle=gmem_l15 offset=slave max_widen_bitwidth=512 max_read_burst_length=64 num_read_outstanding=16
#pragma HLS INTERFACE m_axi port=l16 bundle=gmem_l16 offset=slave max_widen_bitwidth=512 max_read_burst_length=64 num_read_outstanding=16
#pragma HLS INTERFACE m_axi port=l17 bundle=gmem_l17 offset=slave max_widen_bitwidth=512 max_read_burst_length=64 num_read_outstanding=16
#pragma HLS INTERFACE m_axi port=l18 bundle=gmem_l18 offset=slave max_widen_bitwidth=512 max_read_burst_length=64 num_read_outstanding=16
#pragma HLS INTERFACE m_axi port=l19 bundle=gmem_l19 offset=slave max_widen_bitwidth=512 max_read_burst_length=64 num_read_outstanding=16
#pragma HLS INTERFACE m_axi port=l20 bundle=gmem_l20 offset=slave max_widen_bitwidth=512 max_read_burst_length=64 num_read_outstanding=16
#pragma HLS INTERFACE m_axi port=l21 bundle=gmem_l21 offset=slave max_widen_bitwidth=512 max_read_burst_length=64 num_read_outstanding=16
#pragma HLS INTERFACE m_axi port=l22 bundle=gmem_l22 offset=slave max_widen_bitwidth=512 max_read_burst_length=64 num_read_outstanding=16
#pragma HLS INTERFACE m_axi port=l23 bundle=gmem_l23 offset=slave max_widen_bitwidth=512 max_read_burst_length=64 num_read_outstanding=16
#pragma HLS INTERFACE m_axi port=l24 bundle=gmem_l24 offset=slave max_widen_bitwidth=512 max_read_burst_length=64 num_read_outstanding=16
#pragma HLS INTERFACE m_axi port=l25 bundle=gmem_l25 offset=slave max_widen_bitwidth=512 max_read_burst_length=64 num_read_outstanding=16
#pragma HLS INTERFACE m_axi port=l26 bundle=gmem_l26 offset=slave max_widen_bitwidth=512 max_read_burst_length=64 num_read_outstanding=16
#pragma HLS INTERFACE m_axi port=l27 bundle=gmem_l27 offset=slave max_widen_bitwidth=512 max_read_burst_length=64 num_read_outstanding=16
#pragma HLS INTERFACE m_axi port=l28 bundle=gmem_l28 offset=slave max_widen_bitwidth=512 max_read_burst_length=64 num_read_outstanding=16
#pragma HLS INTERFACE m_axi port=l29 bundle=gmem_l29 offset=slave max_widen_bitwidth=512 max_read_burst_length=64 num_read_outstanding=16
#pragma HLS INTERFACE m_axi port=l30 bundle=gmem_l30 offset=slave max_widen_bitwidth=512 max_read_burst_length=64 num_read_outstanding=16
#pragma HLS INTERFACE m_axi port=l31 bundle=gmem_l31 offset=slave max_widen_bitwidth=512 max_read_burst_length=64 num_read_outstanding=16
#pragma HLS INTERFACE s_axilite port=act_bytes
#pragma HLS INTERFACE s_axilite port=lane_bytes
#pragma HLS INTERFACE s_axilite port=tab_off
#pragma HLS INTERFACE s_axilite port=ng
#pragma HLS INTERFACE s_axilite port=m
#pragma HLS INTERFACE s_axilite port=x0_off
#pragma HLS INTERFACE s_axilite port=hint
#pragma HLS INTERFACE s_axilite port=return
	const uint8_t *const lane[FP8_GEMV_SYNTH_LANES] = {l0, l1, l2, l3, l4, l5, l6, l7, l8, l9, l10, l11, l12, l13, l14, l15, l16, l17, l18, l19, l20, l21, l22, l23, l24, l25, l26, l27, l28, l29, l30, l31};
	(void)x0_off; /* the x prefetch's address (the values do not depend on it) */
	(void)hint;
	return (int)fp8_gemv_run(act, act_bytes, lane, lane_bytes, FP8_GEMV_SYNTH_LANES, tab_off,
				 ng, m);
}

#ifndef __SYNTHESIS__ /* host-side layout helper and timing model, not synthesized */
int fp8_gemv_same_x(const struct fp8_gemv_grp *a, const struct fp8_gemv_grp *b)
{
	return v_same_x(a, b);
}

static void v_wr32(uint8_t *p, uint32_t u)
{
	p[0] = (uint8_t)u;
	p[1] = (uint8_t)(u >> 8);
	p[2] = (uint8_t)(u >> 16);
	p[3] = (uint8_t)(u >> 24);
}

void fp8_gemv_stripe(uint8_t *const *dst, int L, const uint8_t *w, const float *ws,
		     const uint8_t *w2, const float *ws2, int N, int K, uint32_t flags, int lane0)
{
	struct v_geo g;
	if (!fp8_gemv_stripe_bytes(N, K, L, flags) || lane0 < 0 || lane0 >= L)
		return;
	v_geometry(N, K, L, flags, &g);
	int bf = (flags & FP8_GEMV_W_BF16) != 0;
	for (int l = 0; l < L; l++)
		memset(dst[l], 0, g.bytes); /* rows past N, unused tiles and padding are zero */
	for (int t = 0; t < g.nt; t++) {
		int l = (t + lane0) % L, j = t / L, rows = v_min(V_R, N - t * V_R);
		for (int h = 0; h < g.halves; h++) {
			const uint8_t *src = h ? w2 : w;
			const float *s = h ? ws2 : ws;
			memcpy(dst[l] + (uint64_t)j * g.tile + (uint64_t)h * g.half,
			       src + (uint64_t)t * g.half, (size_t)rows * K * g.eb);
			if (bf)
				continue;
			uint8_t *srow = dst[l] + g.scales + ((uint64_t)j * g.halves + h) * g.kb * 4;
			for (int kb = 0; kb < g.kb; kb++)
				v_wr32(srow + (uint64_t)kb * 4,
				       e4m3_f32_bits(s[(size_t)(t * V_R / V_BK) * g.kb + kb]));
		}
	}
}

/* ---- timing model ------------------------------------------------------------------------- */

/* The beats (lanes f32 each) of block kb of a K-channel x row (V_BK channels, the last fewer). */
static uint64_t v_block_beats(int K, int kb, int lanes)
{
	return hls_cdiv64((uint64_t)v_min(V_BK, K - kb * V_BK), (uint64_t)lanes);
}

/* Cycles of the x stage of group g (v_load_x): row 0's norm pass alone with RMSNORM, then the
 * one loop whose steps take a block through the load pass beside the block before it in the
 * quantizer (and the next row's block in the norm pass), as long as the longer of the two, and
 * a last step that drains the quantizer; the rows come through the activation bank (with
 * RMSNORM with the norm's weight). Adds the loop counts. */
static uint64_t v_cost_x(const struct hls_build *b, const struct fp8_gemv_grp *g, int m,
			 struct fp8_gemv_cost *c)
{
	int beat = b->axi_bits / 8, lanes = beat / 4, K = (int)g->k, KB = v_cdiv(K, V_BK);
	uint64_t xbytes = (uint64_t)m * K * 4, it = 0;
	/* a step pairs block s with block s - 1 */
	uint64_t nb0 = v_block_beats(K, 0, lanes), nbl = v_block_beats(K, KB - 1, lanes);
	if (g->flags & V_RAW) {
		for (int kb = 0; kb < KB; kb++)
			it += v_block_beats(K, kb, lanes);
		it *= (uint64_t)m;
	} else {
		uint64_t row = 0; /* a row's steps after its first: max(nb(kb), nb(kb - 1)) */
		for (int kb = 1; kb < KB; kb++)
			row += hls_max64(v_block_beats(K, kb, lanes), v_block_beats(K, kb - 1, lanes));
		it = nb0 + (uint64_t)m * row + (uint64_t)(m - 1) * hls_max64(nb0, nbl) + nbl;
	}
	c->it[HLS_L_GEMV_LOAD_X] += it;
	/* XIDX: the row indices come first, a burst in the loader's stream (the rows' addresses
	 * follow from them) */
	uint64_t xi = (g->flags & FP8_GEMV_XIDX) ? (uint64_t)m * 4 : 0, q = 0;
	if (xi) {
		c->act_bytes += xi;
		q = hls_mem_cycles(b, xi);
	}
	if (g->flags & FP8_GEMV_RMSNORM) {
		/* row 0's norm pass reads it and the weight; the loop reads the other rows */
		uint64_t nb = hls_cdiv64((uint64_t)K, lanes);
		uint64_t ub = xbytes + (uint64_t)K * 4;
		c->it[HLS_L_GEMV_NORM] += nb;
		c->act_bytes += ub;
		return b->mem_latency + hls_max64(nb + it, hls_mem_cycles(b, ub)) + q;
	}
	c->act_bytes += xbytes;
	return b->mem_latency + hls_max64(it, hls_mem_cycles(b, xbytes)) + q;
}

/* Row groups of m rows of x the PE takes a beat in (b->gemv_rows rows a cycle). */
static uint64_t v_row_groups(const struct hls_build *b, int m)
{
	return hls_cdiv64((uint64_t)m, (uint64_t)(b->gemv_rows > 0 ? b->gemv_rows : FP8_GEMV_PR));
}

/* Cycles the PE takes a beat of weights against one group of rows of x: one, or in the f32 modes
 * (ACT_F32, W_BF16) the beat's values gemv_f32 at a time (v_row's steps). */
static uint64_t v_beat_steps(const struct hls_build *b, uint32_t flags)
{
	int beat = b->axi_bits / 8, per = (flags & FP8_GEMV_W_BF16) ? beat / 2 : beat;
	int f = b->gemv_f32 > 0 && b->gemv_f32 < per ? b->gemv_f32 : per;
	return (flags & V_RAW) ? (uint64_t)(per / f) : 1;
}

/* Cycles of one tile of `rows` rows on its lane: the PE takes each beat of codes (every row of
 * every half) in v_row_groups x v_beat_steps cycles and a beat of scale rows in one, the bank
 * delivers bank_gbps. *bytes gets the bytes. */
static uint64_t v_cost_tile(const struct hls_build *b, const struct v_geo *geo, int K, int rows,
			    uint32_t flags, int m, uint64_t *bytes)
{
	int beat = b->axi_bits / 8, bf = (flags & FP8_GEMV_W_BF16) != 0;
	uint64_t rb = hls_cdiv64((uint64_t)K * geo->eb, beat) * v_row_groups(b, m) *
		      v_beat_steps(b, flags);
	uint64_t sb = bf ? 0 : hls_cdiv64((uint64_t)geo->kb * 4, beat);
	uint64_t it = (uint64_t)geo->halves * ((uint64_t)rows * rb + sb);
	*bytes = (uint64_t)geo->halves * ((uint64_t)rows * K * geo->eb + (bf ? 0 : geo->kb * 4u));
	return hls_max64(it, hls_mem_cycles(b, *bytes));
}

int64_t fp8_gemv_cycles(const struct hls_build *b, int L, const struct fp8_gemv_grp *tab, int ng,
			int m, struct fp8_gemv_cost *c)
{
	return fp8_gemv_cycles2(b, L, tab, ng, m, 0, 0, c);
}

int64_t fp8_gemv_cycles2(const struct hls_build *b, int L, const struct fp8_gemv_grp *tab, int ng,
			 int m, int hint, uint64_t x0, struct fp8_gemv_cost *c)
{
	struct fp8_gemv_cost tmp;
	uint64_t lane_sum[FP8_GEMV_MAX_LANES];
	if (!b || b->axi_bits < 64 || b->axi_bits % 64 || 1024 % b->axi_bits ||
	    b->clock_mhz <= 0 || b->bank_gbps <= 0 || !tab || L < 1 || L > FP8_GEMV_MAX_LANES ||
	    m < 1 || m > FP8_GEMV_MAX_M || ng < 1 || ng > FP8_GEMV_MAX_GROUPS)
		return -EINVAL;
	for (int g = 0; g < ng; g++)
		if (v_check_grp(&tab[g], m) || tab[g].lane0 >= (uint32_t)L)
			return -EINVAL;
	if (v_check_table(tab, ng, m))
		return -EINVAL;
	if (!c)
		c = &tmp;
	memset(c, 0, sizeof *c);
	memset(lane_sum, 0, sizeof lane_sum);
	int beat = b->axi_bits / 8;
	/* the table: read and checked before anything else starts */
	c->it[HLS_L_GEMV_TABLE] = (uint64_t)ng;
	c->act_bytes = 64u * (uint64_t)ng;
	uint64_t cyc = b->mem_latency + hls_max64((uint64_t)ng, hls_mem_cycles(b, 64u * ng));
	/* group 0's x named in the command (hint): its load started with the table's, so the
	 * x rows' first beat arrives with the table's and the table's time comes off x_at */
	int x0_early = hint && tab[0].x_off == x0;
	/* x rows arrive one group after another (x_at: when group g's x is on chip); each lane
	 * starts a group's tiles when it is done with the earlier ones and that x is there; the
	 * activation bank also carries the outputs (act_busy) */
	uint64_t lane_t[FP8_GEMV_MAX_LANES], x_at = 0, act_busy = 0, depth_max = 0, epi_t = 0;
	uint64_t first_end[FP8_GEMV_MAX_LANES] = {0}; /* each lane's first tile of its last group */
	/* each lane's weight reader issues its first bursts once the table is read (the weights
	 * do not wait for x): they arrive one burst latency later, into the lane's FIFO of
	 * FP8_GEMV_WFIFO beats, while the x rows load */
	uint64_t w_at = (uint64_t)b->mem_latency;
	memset(lane_t, 0, sizeof lane_t);
	for (int g = 0; g < ng; g++) {
		const struct fp8_gemv_grp *gr = &tab[g];
		int N = (int)gr->n, K = (int)gr->k, bf = (gr->flags & FP8_GEMV_W_BF16) != 0;
		struct v_geo geo;
		v_geometry(N, K, L, gr->flags, &geo);
		int rows_last = N - (geo.nt - 1) * V_R;
		uint64_t full_b, last_b;
		uint64_t full = v_cost_tile(b, &geo, K, V_R, gr->flags, m, &full_b);
		uint64_t last = v_cost_tile(b, &geo, K, rows_last, gr->flags, m, &last_b);
		/* loop counts: every tile once */
		c->it[HLS_L_GEMV_MAC] += (uint64_t)geo.halves * N *
					 hls_cdiv64((uint64_t)K * geo.eb, beat) * v_row_groups(b, m) *
					 v_beat_steps(b, gr->flags);
		c->it[HLS_L_GEMV_LOAD_S] += (uint64_t)geo.nt * geo.halves *
					    (bf ? 0 : hls_cdiv64((uint64_t)geo.kb * 4, beat));
		/* the CU's one epilogue: every tile's stores, a beat a cycle, or through the SiLU
		 * units FP8_GEMV_SILU outputs a cycle */
		uint64_t epi;
		if (gr->flags & FP8_GEMV_SILU_MUL) {
			epi = (uint64_t)m * ((uint64_t)(geo.nt - 1) * hls_cdiv64(V_R, FP8_GEMV_SILU) +
					     hls_cdiv64((uint64_t)rows_last, FP8_GEMV_SILU));
			c->it[HLS_L_GEMV_SILU] += epi;
		} else {
			epi = (uint64_t)m * ((uint64_t)(geo.nt - 1) * hls_cdiv64(V_R * 4, beat) +
					     hls_cdiv64((uint64_t)rows_last * 4, beat));
			c->it[HLS_L_GEMV_STORE] += epi;
		}
		/* CONT: each tile first reads its start values, a beat per x row (on its lane) */
		uint64_t ini_full = 0, ini_last = 0;
		if (gr->flags & FP8_GEMV_CONT) {
			ini_full = (uint64_t)m * hls_cdiv64(V_R * 4, beat);
			ini_last = (uint64_t)m * hls_cdiv64((uint64_t)rows_last * 4, beat);
			c->it[HLS_L_GEMV_INIT] += (uint64_t)(geo.nt - 1) * ini_full + ini_last;
			full += ini_full;
			last += ini_last;
		}
		/* a CONT group's tile reads its start values once the epilogue stored them: its
		 * lane's same tile of the group before (the lane's first, done first_end[l]),
		 * behind one tile of every lane in the epilogue's queue */
		int cont_after = (gr->flags & FP8_GEMV_CONT) && g;
		/* the x loader's bursts follow each other: the first group's pays the latency */
		uint64_t xg = g && v_same_x(&tab[g - 1], gr)
				  ? 0 /* the x buffer holds it already */
				  : v_cost_x(b, gr, m, c) - (g ? (uint64_t)b->mem_latency : 0);
		if (!g && x0_early) /* (started beside the table: its latency overlapped it) */
			xg -= xg < cyc ? xg : cyc;
		x_at += xg;
		/* the epilogue takes the group's outputs as its tiles arrive, one at a time; with
		 * ARGMAX it then merges each row's positions and writes the row's record */
		epi_t = hls_max64(epi_t, x_at) + epi;
		if (gr->flags & FP8_GEMV_ARGMAX)
			epi_t += (uint64_t)m + (uint64_t)b->depth_vec;
		/* each lane: its tiles of this group back to back once it and the x are ready */
		for (int l = 0; l < L; l++) {
			int t0;
			uint64_t cnt = (uint64_t)v_lane_tiles(l, L, (int)gr->lane0, geo.nt, &t0);
			if (!cnt)
				continue;
			int has_last = (geo.nt - 1 - t0) % L == 0;
			uint64_t cy = (cnt - has_last) * full + (has_last ? last : 0);
			uint64_t by = (cnt - has_last) * full_b + (has_last ? last_b : 0);
			lane_sum[l] += by;
			c->lane_bytes_total += by;
			uint64_t st = hls_max64(hls_max64(lane_t[l], x_at), w_at);
			if (cont_after)
				st = hls_max64(st, first_end[l] + (uint64_t)b->depth_vec +
						       (uint64_t)L * m * hls_cdiv64(V_R * 4, beat));
			first_end[l] = st + (cnt > 1 || !has_last ? full : last);
			lane_t[l] = st + cy;
		}
		uint64_t depth = (uint64_t)((gr->flags & V_RAW) ? b->depth_vec : b->depth_mac) +
				 (uint64_t)b->depth_scale;
		depth_max = hls_max64(depth_max, depth);
		/* activation-bank traffic of this group's outputs (y, y_old, rw, res) and the next
		 * group's x share the one bank */
		uint64_t ybytes = (uint64_t)m * N * 4;
		if (gr->flags & FP8_GEMV_ACCUM)
			ybytes += (uint64_t)m * N * 4 + 4u * m;
		if (gr->flags & FP8_GEMV_RESIDUAL)
			ybytes += (uint64_t)m * N * 4;
		if (gr->flags & FP8_GEMV_ARGMAX)
			ybytes += (uint64_t)m * 8;
		if (gr->flags & FP8_GEMV_CONT)
			ybytes += (uint64_t)m * N * 4;
		c->act_bytes += ybytes;
		act_busy += xg + hls_mem_cycles(b, ybytes);
	}
	/* the lanes stream without a break (their burst latency behind the x load, w_at): one
	 * pipeline fill is exposed */
	uint64_t lanes_done = 0;
	for (int l = 0; l < L; l++)
		lanes_done = hls_max64(lanes_done, lane_t[l]);
	uint64_t lat = (uint64_t)b->mem_latency, ahead = FP8_GEMV_WFIFO; /* what the FIFO hides */
	cyc += hls_max64(hls_max64(lanes_done, epi_t) + (lat > ahead ? lat - ahead : 0) + depth_max,
			 act_busy);
	/* the last tile's epilogue and store are exposed */
	const struct fp8_gemv_grp *gl = &tab[ng - 1];
	cyc += b->depth_vec + ((gl->flags & FP8_GEMV_SILU_MUL)
				   ? b->depth_exp + (uint64_t)m * hls_cdiv64(V_R, FP8_GEMV_SILU)
				   : (uint64_t)m * hls_cdiv64(V_R * 4, beat));
	if (gl->flags & FP8_GEMV_ARGMAX) /* its rows' merges and records after the last tile */
		cyc += (uint64_t)m + (uint64_t)b->depth_vec;
	for (int l = 0; l < L; l++)
		c->lane_bytes_max = hls_max64(c->lane_bytes_max, lane_sum[l]);
	c->cycles = cyc;
	c->util_bw = (double)c->lane_bytes_total / ((double)cyc * L * hls_bank_bytes_per_cycle(b));
	return (int64_t)cyc;
}
#endif
