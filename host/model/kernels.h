/*
 * kernels.h - the cpu backend's compute kernels: block-scaled FP8 / BF16 matrix products with
 * optional dynamic FP8 activation quantization (docs/numerics.md), on a thread pool, with SIMD
 * row-dot primitives chosen at run time (scalar, AVX2+F16C+FMA, AVX-512).
 *
 * Numerics: with act_fp8 the input rows are quantized per 128 channels (s = max(amax,1e-4)/448,
 * ue8m0: s = 2^ceil(log2 s)), and y[m,n] = sum_kb f32(D(m,n,kb) * sa[m,kb] * sw[n/128,kb]) with
 * D accumulated in f32 (agrees with the exact definition to ~1e-6 relative). Without act_fp8 the
 * input stays f32 and W is dequantized on the fly (code * scale_inv).
 */
#ifndef MOECARD_KERNELS_H
#define MOECARD_KERNELS_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include "load/ckpt.h"
#include "model/pool.h"

/* SIMD primitives. M <= KERN_MB rows of x (row_bf16: M <= KERN_MB_ROWB, one conversion of the
 * weight codes for all of them). */
#define KERN_MB 4
#define KERN_MB_ROWB 8
/* Width of a packed prefill tile (tile_p16): KERN_PW dequantized weight rows stored k-major. */
#define KERN_PW 16
/* Weight rows a one-input decode GEMV call takes (rows_fp8, rows_bf16): nr <= KERN_NR. */
#define KERN_NR 4
/* CALL(n) with n a constant 1..4 (KERN_MB, KERN_NR) for a count of 1..4 (larger counts take 4):
 * each instantiation of a per-count SIMD kernel keeps its accumulators in registers (with a
 * run-time count they live on the stack). */
#define KERN_PER_M(M, CALL)                                                                        \
	do {                                                                                       \
		switch (M) {                                                                       \
		case 1:                                                                            \
			CALL(1);                                                                   \
			break;                                                                     \
		case 2:                                                                            \
			CALL(2);                                                                   \
			break;                                                                     \
		case 3:                                                                            \
			CALL(3);                                                                   \
			break;                                                                     \
		default:                                                                           \
			CALL(4);                                                                   \
		}                                                                                  \
	} while (0)
struct kern_isa {
	const char *name;
	/* acc[m] = sum_{k<n} bf16(w[k]) * x[m*ldx+k] */
	void (*dot_bf16)(const uint16_t *w, const float *x, int ldx, int M, int n, float *acc);
	/* one FP8 weight row against M <= KERN_MB inputs, whole K, block scales sw[ceil(K/128)]:
	 * acc[m] = sum_kb sw[kb] * sum_{k in kb} e4m3(w[k]) * x[m*ldx+k] (the decode/GEMV path) */
	void (*row_fp8)(const uint8_t *w, const float *x, int ldx, int M, int K, const float *sw,
			float *acc);
	/* NULL, or the input layout row_fp8 reads: xp[K] from x[K], returning the power of two f
	 * that row_fp8's acc on xp is multiplied by to give the sum above (avx2) */
	float (*prep_fp8)(const float *x, int K, float *xp);
	/* NULL, or row_fp8 with M = 1 on the prepared input (prep_fp8), nr <= KERN_NR consecutive weight
	 * rows w + r*K that share the scales sw (one 128-row block): acc[r] the same bits as
	 * row_fp8 of row r alone */
	void (*rows_fp8)(const uint8_t *w, int nr, const float *xp, int K, const float *sw,
			 float *acc);
	/* out[k] = e4m3(w[k]) * sw[k/128] for k < K (dequantize one row) */
	void (*dec_fp8)(const uint8_t *w, int K, const float *sw, float *out);
	/* y[m*ldy+j] = sum_k wp[k*KERN_PW+j] * x[m*ldx+k] (y += that with acc) for j < nw <= KERN_PW,
	 * m < M: the prefill tile over KERN_PW weight rows packed k-major (columns >= nw zero), each
	 * output one f32 sum in ascending k (every path has it) */
	void (*tile_p16)(const float *wp, int nw, const float *x, int ldx, int M, int K, float *y,
			 int ldy, int acc);
	/* wp[k*KERN_PW + i0 + r] = rows[r*K + k] for r < 8, k < K (0 for r >= nr): eight rows into
	 * columns i0..i0+7 of a packed tile (with tile_p16) */
	void (*pack_p16)(const float *rows, int K, int nr, int i0, float *wp);
	/* NULL, or dec_fp8 of the FP8 rows w + r*K (block scales sw[r]) for r < nr <= 8, then
	 * pack_p16 of them, in one pass: the same bits as the two steps */
	void (*decpack_fp8)(const uint8_t *w, int K, int nr, const float *const *sw, int i0,
			    float *wp);
	/* The attention's inner loops. acc[p*lda + m] = sum_{k<n} w[p][k] * x[m*ldx+k] for
	 * p < P <= 2, m < M <= KERN_MB: P f32 rows (cache rows) against M inputs (the queries of a
	 * group of heads), each row loaded once for all M. Each sum is eight FMA chains over the
	 * lanes k % 8 of the whole 8-value steps, added as ((l0+l1)+(l2+l3))+((l4+l5)+(l6+l7)), then
	 * the last n % 8 products in order: the same bits for every P and M and on every path
	 * (scalar uses fmaf; avx512 runs AVX2's) */
	void (*dot_f32_rows)(const float *const *w, int P, const float *x, int ldx, int M, int n,
			     float *acc, int lda);
	void (*axpy_f32)(float *y, float a, const float *x, int n);
	/* NULL, or on an FP8 row w[n] with block scales sw: axpy_f32 of its dequantized values
	 * (dec_fp8) and dot_f32_rows of P <= 2 such rows, the same bits without the f32 copy */
	void (*axpy_fp8s)(float *y, float a, const uint8_t *w, const float *sw, int n);
	void (*dot_fp8s_rows)(const uint8_t *const *w, const float *const *sw, int P,
			      const float *x, int ldx, int M, int n, float *acc, int lda);
	/* NULL, or four axpy_fp8s calls in their order (rows w[i], scales sw[i], coefficients
	 * a[i]), y loaded and stored once: the same bits */
	void (*axpy4_fp8s)(float *y, const float *a, const uint8_t *const *w,
			   const float *const *sw, int n);
	/* y[k] += a[0]*x[0][k], then a[1]*x[1][k], a[2]*x[2][k], a[3]*x[3][k], for k < n: four
	 * axpy_f32 calls in one pass over y, bit-identical to them (every path) */
	void (*axpy4_f32)(float *y, const float *a, const float *const *x, int n);
	/* axpy4_f32 on M <= KERN_MB rows y + m*ldy with coefficients a + m*lda, the four x rows
	 * loaded once for all of them (the weighted sums of a group of heads); bit-identical to
	 * axpy4_f32 on each row (every path) */
	void (*axpy4_rows_f32)(float *y, int ldy, const float *a, int lda, const float *const *x,
			       int M, int n);
	/* xr[k] = e4m3(x[k]/s)*s for one block of n <= 128 with scale s (act quant round trip;
	 * saturating RNE, finite x) */
	void (*roundtrip_fp8)(const float *x, int n, float s, float *xr);
	/* y[m*ldy+j] = sum_k bf16(row j of the panels)[k] * x[m*ldx+k] for j < nw <= 2 * KERN_PW,
	 * m < M: one or two consecutive packed BF16 panels (kern_bf16p_pack) against M inputs, each
	 * output one f32 FMA chain in ascending k from +0: the same bits on every path, for every M
	 * and however the panels are grouped */
	void (*gemv_bf16p)(const uint16_t *wp, int nw, const float *x, int ldx, int M, int K,
			   float *y, int ldy);
	/* y[m*ldy + 16p + i] ~ s[16p + i] * sum_k q(16p + i, k) * x[m*ldx + k] for the np panels of
	 * an 8-bit matrix with one scale a row, laid out in panels of 16 rows and groups of 16
	 * codes: qp[((p*nkb + kb)*16 + i)*16 + j] = q(16p + i, 16kb + j), nkb = ceil(K/16), zeros
	 * past K; M <= KERN_MB_ROWB inputs, summed in f32 in any order (the screened head's
	 * approximate logits, head_screen.h: only their error bound is defined, not their bits) */
	void (*gemv_i8p)(const int8_t *qp, const float *s, int np, int K, const float *x, int ldx,
			 int M, float *y, int ldy);
	/* NULL, or on gemv_i8p's panels the exact integer dot products with M <= KERN_MB_ROWB
	 * inputs of unsigned codes xu (xq + off, xq in -i8u8_xmax..i8u8_xmax, off = i8u8_xmax + 1;
	 * xu[m*ldx + k] for k < 16 nkb): y[m*ldy + 16p + i] = sum_k q(16p + i, k) xq_k, via
	 * sum q xu - off qsum[16p + i] (int32, K <= 65536) */
	void (*gemv_i8u8p)(const int8_t *qp, const int32_t *qsum, int np, int K, const uint8_t *xu,
			   int ldx, int M, int off, int32_t *y, int ldy);
	/* NULL, or row r of one of gemv_i8u8p's panels pq (nkb groups) against the unsigned codes
	 * xu[16 nkb]: sum_k q(r, k) xu_k in int32 (exact; the head screen's second code vector on
	 * the first pass's candidates) */
	int32_t (*row_i8u8p)(const int8_t *pq, int nkb, int r, const uint8_t *xu);
	/* gemv_i8u8p's largest input code (127: 8-bit inputs; AVX2's vpmaddubsw pairs stay exact
	 * only for codes up to 127, so its inputs are 7-bit: 63) */
	int i8u8_xmax;
	/* The head screen's integer pass serves from one input (i8u8_one: gemv_i8p's f32 pass is
	 * the slower on this path) or two, up to i8u8_maxm inputs (0: any number); beyond, the
	 * packed head's FMAs would be the faster */
	int i8u8_one, i8u8_maxm;
	/* NULL, or the act-fp8 prefill tile on BF16 dot products (avx512bf16), the FP8 weights' and
	 * the activations' codes as bf16 (exact), each 128-block's dot product D summed in f32 and
	 * scaled once: y[m*ldy+j] (+)= sum_kb D(m,j,kb) * (sa[m*lds+kb] * swt[kb*KERN_PW+j]).
	 * quant_bf16: xb[k] = bf16(e4m3(x[k]/s)) for one block of n <= 128, a zero after an odd n;
	 * decpack_bf16: rows r < nr <= KERN_PW of the codes w + r*K (rows >= nr zeros) as pairs,
	 * wpb[(k/2)*KERN_PW + r] = bf16(w[r][k]) | bf16(w[r][k+1]) << 16 (zero past K);
	 * tile_bf16: M input rows xb + m*ldx (ldx even) against that tile, j < nw <= KERN_PW. */
	void (*quant_bf16)(const float *x, int n, float s, uint16_t *xb);
	void (*decpack_bf16)(const uint8_t *w, int K, int nr, uint32_t *wpb);
	void (*tile_bf16)(const uint32_t *wpb, int nw, const uint16_t *xb, int ldx, int M, int K,
			  const float *sa, int lds, const float *swt, float *y, int ldy, int acc);
	/* NULL, or the act-fp8 decode GEMV on BF16 dot products (avx512bf16): one FP8 weight row
	 * (block scales sw) against M <= KERN_MB_ROWB rows of quant_bf16's codes xb + m*ldx with scales
	 * sa[m*lds + kb]: acc[m] = sum_kb D(m,kb) * (sa * sw[kb]), D summed in f32 lanes */
	void (*row_bf16)(const uint8_t *w, const uint16_t *xb, int ldx, int M, int K,
			 const float *sa, int lds, const float *sw, float *acc);
	/* NULL, or row_bf16 with M = 1 on nr <= KERN_NR consecutive weight rows w + r*K that share the
	 * scales sw (one 128-row block): acc[r] the same bits as row_bf16 of row r alone */
	void (*rows_bf16)(const uint8_t *w, int nr, const uint16_t *xb, int K, const float *sa,
			  const float *sw, float *acc);
};

/* For the SIMD files' decode GEMVs on a prepared input (docs/numerics.md): an E4M3 code's bits
 * placed as f32 bits (sign to bit 31, the other seven to bits 26..20) are its value times 2^-120
 * exactly (subnormal codes as f32 subnormals); kern_prep_shift is the prepared input's d for the
 * row's max |x|: 0 unless amax >= 2^15 (finite), then the d with amax * 2^(112-d) < 2^127. */
static inline float kern_placed1(uint8_t c)
{
	uint32_t u = (uint32_t)(c & 0x80) << 24 | (uint32_t)(c & 0x7F) << 20;
	float f;
	__builtin_memcpy(&f, &u, 4);
	return f;
}

static inline int kern_prep_shift(float amax)
{
	int ex = 0;
	if (!(amax >= 32768.0f && amax <= 3.4e38f))
		return 0;
	frexpf(amax, &ex); /* amax < 2^ex */
	return ex - 15;
}

/* A BF16 matrix packed for gemv_bf16p (the cpu engine's lm_head): rows in panels of KERN_PW,
 * each panel k-major, wp[(p*K + k)*KERN_PW + i] = w[p*KERN_PW + kern_bf16p_row[i]][k] (0 past
 * the last row); the order within a step lets AVX2 widen 16 values with two in-lane unpacks. */
extern const int kern_bf16p_row[KERN_PW];
/* kern_bf16p_pack - panels [p0, p1) of w [N][K] into wp (kern_bf16p_panels(N) * K * KERN_PW). */
void kern_bf16p_pack(const uint16_t *w, int N, int K, int p0, int p1, uint16_t *wp);
static inline int kern_bf16p_panels(int N)
{
	return (N + KERN_PW - 1) / KERN_PW;
}

/* kern_isa_get - the best ISA this CPU supports, or the one named by MOECARD_ISA
 * (scalar|avx2|avx512|avx512bf16) when set and supported (else a one-time warning on stderr and
 * the best). avx2 = AVX2 + FMA + F16C; avx512 = AVX-512 F/BW/VL/DQ + FMA + F16C; avx512bf16 =
 * avx512 + AVX-512 BF16 (its act-fp8 prefill tile on vdpbf16ps). */
const struct kern_isa *kern_isa_get(void);
const struct kern_isa *kern_isa_by_name(const char *name); /* NULL when unsupported */
/* kern_isa_describe - "cpu: <features>; paths this CPU runs: <names>" (for --version). */
void kern_isa_describe(char *buf, size_t len);

/* One matrix product y[m][n] = sum_k W[n][k] x[m][k] for m < M, n < W->rows. */
struct kern_job {
	const struct qmat *W;
	const float *x; /* [M][ldx] */
	int ldx;
	int M;
	float *y; /* [M][ldy] */
	int ldy;
	int accumulate; /* 1: y += result */
	/* filled by kern_matmul: quantized input */
	const float *xq;    /* [M][K] FP8 round trip of x: e4m3(x/sa)*sa (act fp8), or NULL */
	const float *xp;    /* [M][K] the row path's input in isa->prep_fp8's layout, or NULL */
	const float *xpf;   /* [M] prep_fp8's factors */
	const uint16_t *xb; /* [M][K rounded up to even] the tile_bf16 path's activation codes, or
			       NULL */
	const float *sab;   /* [M][ceil(K/128)] their block scales */
};

/* Execution context: pool, numerics mode and scratch for quantized activations. */
struct kern_ctx {
	struct pool *pool;
	const struct kern_isa *isa;
	int act_fp8;	/* quantize activations feeding FP8 weights */
	int ue8m0;	/* power-of-two activation scales */
	float *scratch; /* quantization scratch, scratch_floats long */
	size_t scratch_floats;
	float *wbuf; /* per thread (KERN_PW + 8) x max_k + 32 floats: the prefill tiles' weights */
	int max_k;
	int rows_only; /* 1: never the tile path: every input row takes the per-row GEMV path, so
			  its result does not depend on the other rows (batched decode) */
	float *prep;   /* the row path's prepared inputs (isa->prep_fp8), prep_bytes long, grown */
	size_t prep_bytes;
	uint16_t
	    *xbuf; /* the tile_bf16 path's activation codes and scales, xbuf_bytes long, grown */
	size_t xbuf_bytes;
	float *xpad; /* kern_matmul_bf16p's input rows copied apart, xpad_bytes long, grown */
	size_t xpad_bytes;
};

/* Inputs with at least this many rows use the dequantize-then-tile path. */
#define KERN_TILE_MIN_M 8

/* kern_ctx_init - quantization scratch of max_floats floats and per-thread weight tiles for
 * matrices up to max_k columns (larger ones take the row path). 0 or -ENOMEM. */
int kern_ctx_init(struct kern_ctx *k, struct pool *p, int act_fp8, int ue8m0, size_t max_floats,
		  int max_k);
void kern_ctx_free(struct kern_ctx *k);

/* kern_matmul_jobs - runs all jobs in one parallel region. Returns 0, -ENOSPC when the
 * quantization scratch is too small (a sizing bug), or -ENOMEM (the prepared inputs). */
int kern_matmul_jobs(struct kern_ctx *k, struct kern_job *jobs, int n_jobs);

/* kern_matmul - one job: y[M][W->rows] = x[M][W->cols] W^T (dense, ldx = cols, ldy = rows). */
int kern_matmul(struct kern_ctx *k, const struct qmat *W, const float *x, int M, float *y);
/* kern_matmul_bf16p - y[M][N] = x[M][K] W^T for a packed BF16 W (kern_bf16p_pack), panels in
 * parallel on the pool; a row's result does not depend on M. */
void kern_matmul_bf16p(struct kern_ctx *k, const uint16_t *wp, int N, int K, const float *x, int M,
		       float *y);

/* kern_grow - grows a 64-byte aligned scratch buffer *buf of *have bytes to need bytes (contents
 * not kept): 0 or -ENOMEM (the buffer kept as it was). */
int kern_grow(void **buf, size_t *have, size_t need);
/* kern_argmax - the index of the largest of logits[0..n): the lowest index on ties, -0 and +0
 * alike, NaN never wins, 0 when logits[0] is NaN (one strict-greater scan from logits[0]);
 * sampler_argmax, the greedy pick. */
int kern_argmax(const float *logits, int n);

/* kern_act_quant - quantizes x[K] per 128 channels: xq[K] decoded codes, sa[ceil(K/128)]. */
void kern_act_quant(const float *x, int K, int ue8m0, float *xq, float *sa);
/* kern_act_roundtrip - x[K] -> xr[K] = e4m3(x/s)*s with the scales of kern_act_quant. */
void kern_act_roundtrip(const float *x, int K, int ue8m0, float *xr);

/* Row helpers on a qmat (any format): dequantized element and row. */
float qmat_get(const struct qmat *W, int r, int c);
/* kern_dec_row - row r of W as f32: FP8 through isa->dec_fp8 (e4m3 * scale), others converted. */
void kern_dec_row(const struct kern_isa *isa, const struct qmat *W, int r, float *out);
/* A matrix's element bytes, its block scales' (FP8; 0 for the others), and both. */
static inline size_t qmat_code_bytes(const struct qmat *W)
{
	size_t elt = W->fmt == QMAT_FP8 ? 1 : W->fmt == QMAT_F32 ? 4 : 2;
	return (size_t)W->rows * (size_t)W->cols * elt;
}
static inline size_t qmat_scale_bytes(const struct qmat *W)
{
	return W->fmt == QMAT_FP8
		   ? sizeof(float) * (size_t)((W->rows + 127) / 128) * (size_t)W->scale_cols
		   : 0;
}
static inline double qmat_bytes(const struct qmat *W)
{
	return (double)qmat_code_bytes(W) + (double)qmat_scale_bytes(W);
}

/* An FP8 qmat's row r: its codes and its block scales ([scale_cols]). */
static inline const uint8_t *qmat_fp8_row(const struct qmat *W, int r)
{
	return (const uint8_t *)W->w + (size_t)r * W->cols;
}
static inline const float *qmat_fp8_scales(const struct qmat *W, int r)
{
	return W->scale + (size_t)(r / 128) * W->scale_cols;
}

/* kern_matmul_simple - single-threaded convenience form (tests, tools): y[M][rows] = x W^T with
 * the given numerics. Returns 0 or -ENOMEM. */
int kern_matmul_simple(const struct qmat *W, const float *x, int M, float *y, int act_fp8,
		       int ue8m0);
#endif
