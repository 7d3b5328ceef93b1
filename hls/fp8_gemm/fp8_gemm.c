/*
 * fp8_gemm.c - the FP8 block-scaled GEMM kernel in synthesizable C (Vitis HLS; the emulated card
 * calls it directly). Interface, numerics and epilogue order: fp8_gemm.h; timing model at the end
 * of this file; design notes in hls/README.md.
 *
 *            gmem_x (HBM PC)        gmem_w (HBM PC)               gmem_y (HBM PC)
 *                 |                      |                             ^
 *      +----------v---------+  +---------v----------+                  |
 *      | load_x: MB rows x  |  | load_w: TN rows x  |   per step       |
 *      | 128 codes (+scale) |  | 128 codes, 64 B/   |   (n-tile, kb)   |
 *      | or f32 -> quantize |  | beat bursts, decode|                  |
 *      +----------+---------+  +---------+----------+                  |
 *                 |  xt[MB][128]          | wt[TN][128]  (ping-pong)   |
 *                 +-----------+-----------+                            |
 *                             v                                        |
 *        +--------------------------------------------+                |
 *        | gemm_mac (II=1): for each m-tile of TM rows |               |
 *        |   k = 0..127:  d[TM][TN] += x[i][k] w[j][k] |  int64, exact |
 *        |   (ACT_F32: df[k%8][TM][TN] += f32 x * w)   |  f32 lanes    |
 *        |   overlapped scaler: row i of the previous  |               |
 *        |   tile: acc[i][j] += f32(d) * (sa_i * sw)   |  f32          |
 *        |   (ACT_F32: acc += tree8(df) * sw)          |               |
 *        +---------------------+----------------------+                |
 *                              | acc[MB][TN] (f32, output-stationary)  |
 *                              v                                       |
 *                  +-----------------------+                           |
 *                  | store: epilogue       +---------------------------+
 *                  | silu*mul, accum, res  |
 *                  +-----------------------+
 *
 * Loop nest: for m-block (MB rows) / for n-tile (TN cols) / for kb (128-block of K) /
 * [for half (W, W2)] / gemm_mac over m-tiles x 128 k. Each W tile is read once per m-block and
 * reused by all MB/TM m-tiles; decode (M <= 8) streams W exactly once.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include "fp8_gemm.h"
#include "e4m3.h"
#include "hls_math.h"
#include "hls_quant.h"
#include "hls_strict.h"

#ifndef __SYNTHESIS__
#pragma GCC diagnostic ignored "-Wunknown-pragmas"
#pragma GCC diagnostic ignored "-Wunused-label"
#endif

#define G_TM FP8_GEMM_TM
#define G_TN FP8_GEMM_TN
#define G_MB FP8_GEMM_MB
#define G_BK FP8_GEMM_BK
#define G_BEAT (FP8_GEMM_AXI_BITS / 8) /* bytes per AXI beat */
#define G_LANES (G_BEAT / 4)           /* f32 lanes per beat */

_Static_assert(G_BK % G_TN == 0, "FP8_GEMM_TN must divide 128 (one weight scale per n-tile)");
_Static_assert(G_MB % G_TM == 0, "FP8_GEMM_MB must be a multiple of FP8_GEMM_TM");
_Static_assert(G_BK % G_BEAT == 0, "AXI beat must divide the 128-byte block row");

static int g_min(int a, int b) { return a < b ? a : b; }
static int g_cdiv(int a, int b) { return (a + b - 1) / b; }

/* Loads the W tile of n-tile n0, block kb: TN rows x 128 codes decoded to fixed point (rows and
 * columns past N/K are zero), and the tile's weight scale. */
static void gemm_load_w(const uint8_t *w, const float *ws, int N, int K, int n0, int kb,
			int32_t wt[G_TN][G_BK], float *sw)
{
	int rows = g_min(G_TN, N - n0), k0 = kb * G_BK, kn = g_min(G_BK, K - k0);
	int beats = g_cdiv(kn, G_BEAT);
	*sw = ws[(size_t)(n0 / G_BK) * g_cdiv(K, G_BK) + kb];
load_w_row:
	for (int r = 0; r < G_TN; r++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=64
	load_w_beat:
		for (int b = 0; b < G_BK / G_BEAT; b++) {
#pragma HLS PIPELINE II=1
			int live = r < rows && b < beats;
			if (live)
				HLS_CNT(HLS_L_GEMM_LOAD_W);
			for (int e = 0; e < G_BEAT; e++) {
				int k = b * G_BEAT + e;
				wt[r][k] = live && k < kn
					? e4m3_decode_fixed(w[(size_t)(n0 + r) * K + k0 + k]) : 0;
			}
		}
	}
}

/* Loads mb rows of x for block kb into xt (fixed point) and xsc (scales); quantizes f32/bf16
 * rows on the way (hls_quant.h rule). With FP8_GEMM_ACT_F32 xt holds the f32 bit patterns of the
 * row as read (no quantizer pass) and the scale is 1. Rows mb..MB-1 are zero with scale 0. */
static void gemm_load_x(const void *x, const float *xs, int K, int lda, int m0, int mb, int kb,
			uint32_t flags, int32_t xt[G_MB][G_BK], float xsc[G_MB])
{
	int k0 = kb * G_BK, kn = g_min(G_BK, K - k0), KB = g_cdiv(K, G_BK);
	uint32_t fmt = flags & FP8_GEMM_X_MASK;
	int ue8m0 = (flags & FP8_GEMM_UE8M0) != 0, raw = (flags & FP8_GEMM_ACT_F32) != 0;
	float xf[G_BK];
#pragma HLS ARRAY_PARTITION variable=xf cyclic factor=16
load_x_row:
	for (int r = 0; r < G_MB; r++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=128
		if (r >= mb) {
			for (int k = 0; k < G_BK; k++)
				xt[r][k] = 0;
			xsc[r] = 0.0f;
			continue;
		}
		size_t row = (size_t)(m0 + r) * lda + k0;
		if (fmt == FP8_GEMM_X_FP8) {
			const uint8_t *xq = (const uint8_t *)x;
		load_x_beat8:
			for (int b = 0; b < G_BK / G_BEAT; b++) {
#pragma HLS PIPELINE II=1
				if (b * G_BEAT < kn)
					HLS_CNT(HLS_L_GEMM_LOAD_X);
				for (int e = 0; e < G_BEAT; e++) {
					int k = b * G_BEAT + e;
					xt[r][k] = k < kn ? e4m3_decode_fixed(xq[row + k]) : 0;
				}
			}
			HLS_CNT(HLS_L_GEMM_LOAD_XS);
			xsc[r] = xs[(size_t)(m0 + r) * KB + kb];
		} else {
			int per_beat = fmt == FP8_GEMM_X_F32 ? G_LANES : 2 * G_LANES;
			float amax = 0.0f;
		load_x_beatf:
			for (int b = 0; b < G_BK / G_LANES; b++) {
#pragma HLS PIPELINE II=1
				if (b * G_LANES < kn && (b * G_LANES) % per_beat == 0)
					HLS_CNT(HLS_L_GEMM_LOAD_X);
				for (int e = 0; e < G_LANES; e++) {
					int k = b * G_LANES + e;
					float v = 0.0f;
					if (k < kn)
						v = fmt == FP8_GEMM_X_F32 ? ((const float *)x)[row + k]
							: bf16_to_f32(((const uint16_t *)x)[row + k]);
					xf[k] = v;
					amax = hls_amax_step(amax, v);
					if (raw)
						xt[r][k] = (int32_t)e4m3_f32_bits(v);
				}
			}
			if (raw) {
				xsc[r] = 1.0f;
				continue;
			}
			float s = hls_quant_scale(amax, ue8m0);
		quant_x:
			for (int b = 0; b < G_BK / G_LANES; b++) {
#pragma HLS PIPELINE II=1
				if (b * G_LANES < kn)
					HLS_CNT(HLS_L_GEMM_QUANT);
				for (int e = 0; e < G_LANES; e++) {
					int k = b * G_LANES + e;
					xt[r][k] = k < kn ? e4m3_decode_fixed(e4m3_encode(xf[k] / s)) : 0;
				}
			}
			xsc[r] = s;
		}
	}
}

/* Fixed-order sum of the FP8_GEMM_FL = 8 ACT_F32 partial sums (halving tree, fp8_gemm.h). */
static float gemm_tree8(const float p[FP8_GEMM_FL])
{
	float a0 = p[0] + p[4], a1 = p[1] + p[5], a2 = p[2] + p[6], a3 = p[3] + p[7];
	return (a0 + a2) + (a1 + a3);
}

/* One step: the PE array over all m-tiles of the slab against one W tile, with the block scaler
 * of the previous m-tile folded into the first TM iterations of the next (and TM drain
 * iterations), so the whole step is one II=1 loop of n_mt*128 + TM iterations. raw
 * (FP8_GEMM_ACT_F32): the PEs multiply f32 x by the decoded weight and add into lane k % 8 of
 * df, so each lane's f32 add chain has a distance of 8 iterations; the scaler reduces the lanes. */
static void gemm_mac(const int32_t xt[G_MB][G_BK], const float xsc[G_MB], const int32_t wt[G_TN][G_BK],
		     float sw, int mb, int raw, float acc[G_MB][G_TN])
{
	int n_mt = g_cdiv(mb, G_TM);
	int64_t d[G_TM][G_TN], snap[G_TM][G_TN];
	float df[FP8_GEMM_FL][G_TM][G_TN], snapf[FP8_GEMM_FL][G_TM][G_TN];
#pragma HLS ARRAY_PARTITION variable=d complete dim=0
#pragma HLS ARRAY_PARTITION variable=snap complete dim=0
#pragma HLS ARRAY_PARTITION variable=df complete dim=0
#pragma HLS ARRAY_PARTITION variable=snapf complete dim=0
#pragma HLS DEPENDENCE variable=df inter distance=8 true
#pragma HLS ARRAY_PARTITION variable=wt complete dim=1
#pragma HLS ARRAY_PARTITION variable=xt cyclic factor=8 dim=1
#pragma HLS ARRAY_PARTITION variable=acc complete dim=2
gemm_mac:
	for (int it = 0; it < n_mt * G_BK + G_TM; it++) {
#pragma HLS LOOP_TRIPCOUNT min=136 max=2056
#pragma HLS PIPELINE II=1
		int mt = it / G_BK, k = it - mt * G_BK;
		HLS_CNT(HLS_L_GEMM_MAC);
		if (k == 0) {
			for (int i = 0; i < G_TM; i++)
				for (int j = 0; j < G_TN; j++) {
					if (mt > 0)
						snap[i][j] = d[i][j];
					d[i][j] = 0;
					for (int l = 0; l < FP8_GEMM_FL && raw; l++) {
						if (mt > 0)
							snapf[l][i][j] = df[l][i][j];
						df[l][i][j] = 0.0f;
					}
				}
		}
		/* rows of the m-tile past mb are never stored: their PEs are gated off (in C
		 * simulation the decode-shaped M = 1 GEMMs skip 7 of 8 rows of work) */
		int rv = mb - mt * G_TM;
		if (mt < n_mt && raw) {
			for (int i = 0; i < G_TM; i++) {
				if (i >= rv)
					continue;
				float xv = e4m3_bits_f32((uint32_t)xt[mt * G_TM + i][k]);
				for (int j = 0; j < G_TN; j++)
					df[k % FP8_GEMM_FL][i][j] += xv * ((float)wt[j][k] * 0x1p-9f);
			}
		} else if (mt < n_mt) {
			for (int i = 0; i < G_TM; i++) {
				if (i >= rv)
					continue;
				int64_t xv = xt[mt * G_TM + i][k];
				for (int j = 0; j < G_TN; j++)
					d[i][j] += xv * wt[j][k];
			}
		}
		if (mt > 0 && k < G_TM) {
			int r = (mt - 1) * G_TM + k;
			float s = xsc[r] * sw;
			HLS_CNT(HLS_L_GEMM_SCALE);
			for (int j = 0; j < G_TN; j++) {
				float lanes[FP8_GEMM_FL];
				for (int l = 0; l < FP8_GEMM_FL; l++)
					lanes[l] = raw ? snapf[l][k][j] : 0.0f;
				float blk = raw ? gemm_tree8(lanes) * sw : ((float)snap[k][j] * 0x1p-18f) * s;
				acc[r][j] = acc[r][j] + blk;
			}
		}
	}
}

/* The epilogue after the SiLU pair (fp8_gemm.h's order) on output o of row m: accumulate,
 * residual, the store. */
static void gemm_out(void *y, const float *res, const float *route_w, size_t o, int m, float v,
		     uint32_t flags, int ybf)
{
	if (flags & FP8_GEMM_ACCUM)
		v = ((float *)y)[o] + route_w[m] * v;
	if (flags & FP8_GEMM_RESIDUAL)
		v = v + res[o];
	if (ybf)
		((uint16_t *)y)[o] = f32_to_bf16(v);
	else
		((float *)y)[o] = v;
}

/* Writes the mb x cols output tile with the epilogue of fp8_gemm.h. */
static void gemm_store(const float acc[2][G_MB][G_TN], void *y, const float *res, const float *route_w,
		       int N, int ldy, int m0, int mb, int n0, uint32_t flags)
{
	int cols = g_min(G_TN, N - n0);
	int ybf = (flags & FP8_GEMM_Y_BF16) != 0;
	int per_beat = ybf ? 2 * G_LANES : G_LANES;
	int beats = g_cdiv(cols, per_beat);
	if (flags & FP8_GEMM_SILU_MUL) { /* through the FP8_GEMM_SILU SiLU units */
	silu_row:
		for (int r = 0; r < mb; r++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=128
		silu_step:
			for (int c0 = 0; c0 < cols; c0 += FP8_GEMM_SILU) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=32
#pragma HLS PIPELINE II=1
				HLS_CNT(HLS_L_GEMM_SILU);
				for (int e = 0; e < FP8_GEMM_SILU; e++) {
					int c = c0 + e;
					if (c >= cols)
						continue;
					gemm_out(y, res, route_w, (size_t)(m0 + r) * ldy + n0 + c,
						 m0 + r, hls_siluf(acc[0][r][c]) * acc[1][r][c],
						 flags, ybf);
				}
			}
		}
		return;
	}
store_row:
	for (int r = 0; r < mb; r++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=128
	store_beat:
		for (int b = 0; b < beats; b++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=4
#pragma HLS PIPELINE II=1
			HLS_CNT(HLS_L_GEMM_STORE);
			for (int e = 0; e < per_beat; e++) {
				int c = b * per_beat + e;
				if (c >= cols)
					continue;
				gemm_out(y, res, route_w, (size_t)(m0 + r) * ldy + n0 + c, m0 + r,
					 acc[0][r][c], flags, ybf);
			}
		}
	}
}

static int gemm_check(const void *x, const float *xs, const uint8_t *w, const float *ws,
		      const uint8_t *w2, const float *ws2, const void *y, const float *res,
		      const float *route_w, int M, int N, int K, uint32_t flags, int lda, int ldy)
{
	if (M < 1 || N < 1 || K < 1 || lda < K || ldy < N || lda > FP8_GEMM_MAX_DIM ||
	    ldy > FP8_GEMM_MAX_DIM || M > FP8_GEMM_MAX_DIM || N > FP8_GEMM_MAX_DIM ||
	    K > FP8_GEMM_MAX_DIM || (flags & ~FP8_GEMM_FLAGS_ALL) ||
	    (flags & FP8_GEMM_X_MASK) == FP8_GEMM_X_MASK)
		return -EINVAL;
	if ((flags & FP8_GEMM_ACCUM) && (flags & FP8_GEMM_Y_BF16))
		return -EINVAL;
	if ((flags & FP8_GEMM_ACT_F32) &&
	    ((flags & FP8_GEMM_X_MASK) != FP8_GEMM_X_F32 || (flags & FP8_GEMM_UE8M0)))
		return -EINVAL;
	if (!x || !w || !ws || !y || ((flags & FP8_GEMM_X_MASK) == FP8_GEMM_X_FP8 && !xs) ||
	    ((flags & FP8_GEMM_SILU_MUL) && (!w2 || !ws2)) || ((flags & FP8_GEMM_RESIDUAL) && !res) ||
	    ((flags & FP8_GEMM_ACCUM) && !route_w))
		return -EINVAL;
	return 0;
}

int fp8_gemm(const void *x, const float *xs, const uint8_t *w, const float *ws, const uint8_t *w2,
	     const float *ws2, void *y, const float *res, const float *route_w, int M, int N, int K,
	     uint32_t flags, int lda, int ldy)
{
#pragma HLS INTERFACE m_axi port=x bundle=gmem_x offset=slave max_widen_bitwidth=512 max_read_burst_length=64
#pragma HLS INTERFACE m_axi port=xs bundle=gmem_x offset=slave
#pragma HLS INTERFACE m_axi port=w bundle=gmem_w offset=slave max_widen_bitwidth=512 max_read_burst_length=64 num_read_outstanding=16
#pragma HLS INTERFACE m_axi port=ws bundle=gmem_w offset=slave
#pragma HLS INTERFACE m_axi port=w2 bundle=gmem_w offset=slave max_widen_bitwidth=512 max_read_burst_length=64 num_read_outstanding=16
#pragma HLS INTERFACE m_axi port=ws2 bundle=gmem_w offset=slave
#pragma HLS INTERFACE m_axi port=y bundle=gmem_y offset=slave max_widen_bitwidth=512
#pragma HLS INTERFACE m_axi port=res bundle=gmem_y offset=slave max_widen_bitwidth=512
#pragma HLS INTERFACE m_axi port=route_w bundle=gmem_y offset=slave
#pragma HLS INTERFACE s_axilite port=M
#pragma HLS INTERFACE s_axilite port=N
#pragma HLS INTERFACE s_axilite port=K
#pragma HLS INTERFACE s_axilite port=flags
#pragma HLS INTERFACE s_axilite port=lda
#pragma HLS INTERFACE s_axilite port=ldy
#pragma HLS INTERFACE s_axilite port=return
	lda = lda ? lda : K;
	ldy = ldy ? ldy : N;
	int rc = gemm_check(x, xs, w, ws, w2, ws2, y, res, route_w, M, N, K, flags, lda, ldy);
	if (rc)
		return rc;
	int KB = g_cdiv(K, G_BK), halves = (flags & FP8_GEMM_SILU_MUL) ? 2 : 1;
	int raw = (flags & FP8_GEMM_ACT_F32) != 0;
	int32_t xt[G_MB][G_BK], wt[G_TN][G_BK];
	float xsc[G_MB], acc[2][G_MB][G_TN], sw;
#pragma HLS BIND_STORAGE variable=acc type=ram_2p impl=uram
gemm_m:
	for (int m0 = 0; m0 < M; m0 += G_MB) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=32
		int mb = g_min(G_MB, M - m0);
	gemm_n:
		for (int n0 = 0; n0 < N; n0 += G_TN) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=2020
			for (int h = 0; h < 2; h++)
				for (int r = 0; r < G_MB; r++)
					for (int j = 0; j < G_TN; j++)
						acc[h][r][j] = 0.0f;
		gemm_kb:
			for (int kb = 0; kb < KB; kb++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=144
#pragma HLS DATAFLOW
				gemm_load_x(x, xs, K, lda, m0, mb, kb, flags, xt, xsc);
			gemm_half:
				for (int h = 0; h < halves; h++) {
					gemm_load_w(h ? w2 : w, h ? ws2 : ws, N, K, n0, kb, wt, &sw);
					gemm_mac((const int32_t(*)[G_BK])xt, xsc, (const int32_t(*)[G_BK])wt,
						 sw, mb, raw, acc[h]);
				}
			}
			gemm_store((const float(*)[G_MB][G_TN])acc, y, res, route_w, N, ldy, m0, mb, n0, flags);
		}
	}
	return 0;
}

#ifndef __SYNTHESIS__ /* the timing model runs on the host, it is not synthesized */
/* ---- timing model ------------------------------------------------------------------------- */

/* Adds the cost of `count` identical tasks (mb rows x cols, KB full steps of 128 plus, when
 * kl > 0, one last step of kl) to c. Returns the cycles of those tasks' steps + stores. */
static uint64_t gemm_cost_tasks(const struct hls_build *b, struct fp8_gemm_cost *c, uint64_t count,
				int mb, int cols, int kfull, int klast, uint32_t flags, uint64_t *store_last)
{
	int beat = b->axi_bits / 8, lanes = beat / 4;
	uint32_t fmt = flags & FP8_GEMM_X_MASK;
	int halves = (flags & FP8_GEMM_SILU_MUL) ? 2 : 1, raw = (flags & FP8_GEMM_ACT_F32) != 0;
	uint64_t n_mt = hls_cdiv64((uint64_t)mb, (uint64_t)b->tm), steps_cyc = 0;
	for (int cls = 0; cls < 2; cls++) {
		uint64_t nsteps = cls ? (klast ? 1 : 0) : (uint64_t)kfull;
		int kn = cls ? klast : 128;
		if (!nsteps)
			continue;
		uint64_t n = count * nsteps;
		/* loads of one step */
		uint64_t wbeats = (uint64_t)cols * hls_cdiv64(kn, beat);
		uint64_t wbytes = (uint64_t)cols * kn + 4;
		uint64_t xbeats, xq = 0, xsw = 0, xbytes;
		if (fmt == FP8_GEMM_X_FP8) {
			xbeats = (uint64_t)mb * hls_cdiv64(kn, beat);
			xsw = mb;
			xbytes = (uint64_t)mb * kn + 4u * mb;
		} else {
			int eb = fmt == FP8_GEMM_X_F32 ? 4 : 2;
			/* f32 rows are 4x the bytes of codes; ACT_F32 skips the quantizer pass */
			xbeats = (uint64_t)mb * hls_cdiv64((uint64_t)kn * eb, beat);
			xq = raw ? 0 : (uint64_t)mb * hls_cdiv64(kn, lanes);
			xbytes = (uint64_t)mb * kn * eb;
		}
		uint64_t mac = n_mt * 128 + b->tm;
		c->it[HLS_L_GEMM_LOAD_W] += n * halves * wbeats;
		c->it[HLS_L_GEMM_LOAD_X] += n * xbeats;
		c->it[HLS_L_GEMM_LOAD_XS] += n * xsw;
		c->it[HLS_L_GEMM_QUANT] += n * xq;
		c->it[HLS_L_GEMM_MAC] += n * halves * mac;
		c->it[HLS_L_GEMM_SCALE] += n * halves * n_mt * b->tm;
		c->bytes_w += n * halves * wbytes;
		c->bytes_x += n * xbytes;
		uint64_t lw = hls_max64(halves * wbeats, hls_mem_cycles(b, halves * wbytes));
		uint64_t lx = hls_max64(xbeats + xsw + xq, hls_mem_cycles(b, xbytes));
		/* ACT_F32: the PE is an f32 multiply-add chain, depth_vec deep instead of depth_mac */
		uint64_t comp = halves * (mac + (raw ? b->depth_vec : b->depth_mac));
		steps_cyc += nsteps * hls_max64(hls_max64(lw, lx), comp);
	}
	/* store of one task, overlapped with the next task's steps (ping-pong accumulators) */
	int ybytes_el = (flags & FP8_GEMM_Y_BF16) ? 2 : 4;
	uint64_t sbeats = (uint64_t)mb * hls_cdiv64((uint64_t)cols * ybytes_el, beat);
	uint64_t sbytes = (uint64_t)mb * cols * ybytes_el;
	if (flags & FP8_GEMM_ACCUM)
		sbytes += (uint64_t)mb * cols * 4 + 4u * mb;
	if (flags & FP8_GEMM_RESIDUAL)
		sbytes += (uint64_t)mb * cols * 4;
	uint64_t scyc = sbeats;
	if (flags & FP8_GEMM_SILU_MUL) { /* FP8_GEMM_SILU outputs a cycle */
		scyc = (uint64_t)mb * hls_cdiv64((uint64_t)cols, FP8_GEMM_SILU);
		c->it[HLS_L_GEMM_SILU] += count * scyc;
	} else {
		c->it[HLS_L_GEMM_STORE] += count * sbeats;
	}
	c->bytes_y += count * sbytes;
	uint64_t st = hls_max64(scyc + b->depth_vec, hls_mem_cycles(b, sbytes));
	*store_last = st;
	return count * hls_max64(steps_cyc, st);
}

int64_t fp8_gemm_cycles(const struct hls_build *b, int M, int N, int K, uint32_t flags,
			struct fp8_gemm_cost *c)
{
	struct fp8_gemm_cost tmp;
	static const uint8_t dummy[1];
	static const float dummyf[1];
	int rc = gemm_check(dummy, dummyf, dummy, dummyf, dummy, dummyf, dummy, dummyf, dummyf, M,
			    N, K, flags, K, N);
	if (rc)
		return rc;
	if (!b || b->tn < 1 || 128 % b->tn || b->tm < 1 || b->mb < b->tm || b->mb % b->tm ||
	    b->axi_bits < 64 || b->axi_bits % 64 || 1024 % b->axi_bits || b->clock_mhz <= 0 ||
	    b->bank_gbps <= 0)
		return -EINVAL;
	if (!c)
		c = &tmp;
	for (int i = 0; i < HLS_L_N; i++)
		c->it[i] = 0;
	c->bytes_w = c->bytes_x = c->bytes_y = 0;
	int halves = (flags & FP8_GEMM_SILU_MUL) ? 2 : 1;
	int kfull = K / 128, klast = K % 128;
	uint64_t mfull = (uint64_t)(M / b->mb), nfull = (uint64_t)(N / b->tn);
	int mlast = M % b->mb, nlast = N % b->tn;
	uint64_t cyc = 0, st = 0;
	/* the four task classes: full/partial m-block x full/partial n-tile */
	for (int mc = 0; mc < 2; mc++)
		for (int nc = 0; nc < 2; nc++) {
			uint64_t cnt = (mc ? (mlast ? 1 : 0) : mfull) * (nc ? (nlast ? 1 : 0) : nfull);
			if (cnt)
				cyc += gemm_cost_tasks(b, c, cnt, mc ? mlast : b->mb, nc ? nlast : b->tn,
						       kfull, klast, flags, &st);
		}
	/* first load is not overlapped; last store and scaler drain are not either */
	int mb0 = M < b->mb ? M : b->mb, cols0 = N < b->tn ? N : b->tn, kn0 = K < 128 ? K : 128;
	uint64_t first = hls_max64((uint64_t)cols0 * hls_cdiv64(kn0, b->axi_bits / 8),
				   hls_mem_cycles(b, (uint64_t)cols0 * kn0 * halves));
	(void)mb0;
	/* ACT_F32: the scaler's lane tree (3 f32 adds) lengthens the drain by an f32 chain */
	cyc += b->mem_latency + first + st + b->depth_scale +
	       ((flags & FP8_GEMM_ACT_F32) ? (uint64_t)b->depth_vec : 0);
	c->macs = (uint64_t)M * N * K * halves;
	c->cycles = cyc;
	c->util_pe = (double)c->macs / ((double)cyc * b->tm * b->tn);
	c->util_bw = (double)c->bytes_w / ((double)cyc * hls_bank_bytes_per_cycle(b));
	return (int64_t)cyc;
}
#endif
