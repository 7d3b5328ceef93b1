/*
 * kernels.c - the cpu backend's matrix products (kernels.h): activation quantization, the parallel
 * row loop over block-scaled FP8 and BF16/F16/F32 weights, ISA dispatch, and the scalar reference
 * primitives that the SIMD versions (simd_avx2.c, simd_avx512.c) must agree with.
 */
#include <cpuid.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "e4m3.h"
#include "model/kernels.h"

/* ---- scalar primitives ---------------------------------------------------------------------- */

static float dec_lut[256];
static int dec_lut_ready;

static void lut_init(void)
{
	if (dec_lut_ready)
		return;
	for (int i = 0; i < 256; i++)
		dec_lut[i] = e4m3_decode((uint8_t)i);
	dec_lut_ready = 1;
}

static void dot_fp8_scalar(const uint8_t *w, const float *x, int ldx, int M, int n, float *acc)
{
	for (int m = 0; m < M; m++) {
		const float *xm = x + (size_t)m * ldx;
		float s = 0;
		for (int k = 0; k < n; k++)
			s += dec_lut[w[k]] * xm[k];
		acc[m] = s;
	}
}

static void dot_bf16_scalar(const uint16_t *w, const float *x, int ldx, int M, int n, float *acc)
{
	for (int m = 0; m < M; m++) {
		const float *xm = x + (size_t)m * ldx;
		float s = 0;
		for (int k = 0; k < n; k++)
			s += bf16_to_f32(w[k]) * xm[k];
		acc[m] = s;
	}
}

static void row_fp8_scalar(const uint8_t *w, const float *x, int ldx, int M, int K, const float *sw,
			   float *acc)
{
	for (int m = 0; m < M; m++) {
		float a = 0, d;
		for (int kb = 0; kb * 128 < K; kb++) {
			int len = K - kb * 128 < 128 ? K - kb * 128 : 128;
			dot_fp8_scalar(w + kb * 128, x + (size_t)m * ldx + kb * 128, ldx, 1, len,
				       &d);
			a += d * sw[kb];
		}
		acc[m] = a;
	}
}

static void dec_fp8_scalar(const uint8_t *w, int K, const float *sw, float *out)
{
	for (int k = 0; k < K; k++)
		out[k] = dec_lut[w[k]] * sw[k / 128];
}

static void tile_p16_scalar(const float *wp, int nw, const float *x, int ldx, int M, int K,
			    float *y, int ldy, int acc)
{
	for (int m = 0; m < M; m++)
		for (int j = 0; j < nw; j++) {
			float s = 0;
			for (int k = 0; k < K; k++)
				s += wp[(size_t)k * KERN_PW + j] * x[(size_t)m * ldx + k];
			y[(size_t)m * ldy + j] = acc ? y[(size_t)m * ldy + j] + s : s;
		}
}

static void pack_p16_scalar(const float *rows, int K, int nr, int i0, float *wp)
{
	for (int k = 0; k < K; k++)
		for (int r = 0; r < 8; r++)
			wp[(size_t)k * KERN_PW + i0 + r] = r < nr ? rows[(size_t)r * K + k] : 0.0f;
}

const int kern_bf16p_row[KERN_PW] = {0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, 12, 13, 14, 15};

void kern_bf16p_pack(const uint16_t *w, int N, int K, int p0, int p1, uint16_t *wp)
{
	for (int p = p0; p < p1; p++) {
		uint16_t *o = wp + (size_t)p * K * KERN_PW;
		for (int i = 0; i < KERN_PW; i++) {
			int r = p * KERN_PW + kern_bf16p_row[i];
			const uint16_t *src = w + (size_t)r * K;
			for (int k = 0; k < K; k++)
				o[(size_t)k * KERN_PW + i] = r < N ? src[k] : 0;
		}
	}
}

static void gemv_bf16p_scalar(const uint16_t *wp, int nw, const float *x, int ldx, int M, int K,
			      float *y, int ldy)
{
	int at[KERN_PW]; /* the slot of row j in a step */
	for (int i = 0; i < KERN_PW; i++)
		at[kern_bf16p_row[i]] = i;
	for (int m = 0; m < M; m++)
		for (int j = 0; j < nw; j++) {
			const uint16_t *pw = wp + (size_t)(j / KERN_PW) * K * KERN_PW;
			float s = 0;
			for (int k = 0; k < K; k++) {
				uint32_t u = (uint32_t)pw[(size_t)k * KERN_PW + at[j % KERN_PW]]
					     << 16;
				float wv;
				memcpy(&wv, &u, 4);
				s = fmaf(wv, x[(size_t)m * ldx + k], s);
			}
			y[(size_t)m * ldy + j] = s;
		}
}

static void gemv_i8p_scalar(const int8_t *qp, const float *s, int np, int K, const float *x,
			    int ldx, int M, float *y, int ldy)
{
	int nkb = (K + 15) / 16;
	for (int m = 0; m < M; m++)
		for (int p = 0; p < np; p++)
			for (int i = 0; i < 16; i++) {
				const float *xm = x + (size_t)m * ldx;
				float a = 0;
				for (int k = 0; k < K; k++) {
					size_t at =
					    (((size_t)p * nkb + k / 16) * 16 + i) * 16 + k % 16;
					a = fmaf((float)qp[at], xm[k], a);
				}
				y[(size_t)m * ldy + p * 16 + i] = a * s[p * 16 + i];
			}
}

static void gemv_i8u8p_scalar(const int8_t *qp, const int32_t *qsum, int np, int K,
			      const uint8_t *xu, int ldx, int M, int off, int32_t *y, int ldy)
{
	int nkb = (K + 15) / 16;
	for (int m = 0; m < M; m++)
		for (int p = 0; p < np; p++)
			for (int i = 0; i < 16; i++) {
				int32_t a = 0;
				for (int k = 0; k < nkb * 16; k++) {
					size_t at =
					    (((size_t)p * nkb + k / 16) * 16 + i) * 16 + k % 16;
					a += (int32_t)qp[at] * xu[(size_t)m * ldx + k];
				}
				y[(size_t)m * ldy + p * 16 + i] = a - off * qsum[p * 16 + i];
			}
}

static int32_t row_i8u8p_scalar(const int8_t *pq, int nkb, int r, const uint8_t *xu)
{
	int32_t a = 0;
	for (int k = 0; k < nkb * 16; k++)
		a += (int32_t)pq[((size_t)(k / 16) * 16 + r) * 16 + k % 16] * xu[k];
	return a;
}

/* Element k of a row: f32, or an FP8 code dequantized (dec_fp8_scalar's value). */
typedef float (*row_at_fn)(const void *row, const float *sc, int k);
static float row_at_f32(const void *row, const float *sc, int k)
{
	(void)sc;
	return ((const float *)row)[k];
}
static float row_at_fp8(const void *row, const float *sc, int k)
{
	return dec_lut[((const uint8_t *)row)[k]] * sc[k / 128];
}

/* dot_f32_rows on rows read through at() */
static void dot_rows_scalar(const void *const *w, const float *const *sc, row_at_fn at, int P,
			    const float *x, int ldx, int M, int n, float *acc, int lda)
{
	for (int p = 0; p < P; p++)
		for (int m = 0; m < M; m++) {
			const float *b = x + (size_t)m * ldx, *s = sc[p];
			float l[8] = {0};
			int k = 0;
			for (; k + 8 <= n; k += 8)
				for (int i = 0; i < 8; i++)
					l[i] = fmaf(at(w[p], s, k + i), b[k + i], l[i]);
			float t = ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]));
			for (; k < n; k++)
				t = fmaf(at(w[p], s, k), b[k], t);
			acc[(size_t)p * lda + m] = t;
		}
}

static void dot_f32_rows_scalar(const float *const *w, int P, const float *x, int ldx, int M, int n,
				float *acc, int lda)
{
	static const float none[1];
	const void *r[2] = {w[0], P > 1 ? w[1] : w[0]};
	const float *sc[2] = {none, none}; /* (row_at_f32 reads no scale) */
	dot_rows_scalar(r, sc, row_at_f32, P, x, ldx, M, n, acc, lda);
}

static void dot_fp8s_rows_scalar(const uint8_t *const *w, const float *const *sw, int P,
				 const float *x, int ldx, int M, int n, float *acc, int lda)
{
	const void *r[2] = {w[0], P > 1 ? w[1] : w[0]};
	dot_rows_scalar(r, sw, row_at_fp8, P, x, ldx, M, n, acc, lda);
}

static void axpy_f32_scalar(float *y, float a, const float *x, int n)
{
	for (int k = 0; k < n; k++)
		y[k] += a * x[k];
}

static void axpy_fp8s_scalar(float *y, float a, const uint8_t *w, const float *sw, int n)
{
	for (int k = 0; k < n; k++)
		y[k] += a * (dec_lut[w[k]] * sw[k / 128]);
}

static void axpy4_fp8s_scalar(float *y, const float *a, const uint8_t *const *w,
			      const float *const *sw, int n)
{
	for (int k = 0; k < n; k++)
		for (int i = 0; i < 4; i++)
			y[k] += a[i] * (dec_lut[w[i][k]] * sw[i][k / 128]);
}

static void axpy4_f32_scalar(float *y, const float *a, const float *const *x, int n)
{
	for (int k = 0; k < n; k++)
		y[k] =
		    (((y[k] + a[0] * x[0][k]) + a[1] * x[1][k]) + a[2] * x[2][k]) + a[3] * x[3][k];
}

static void axpy4_rows_f32_scalar(float *y, int ldy, const float *a, int lda, const float *const *x,
				  int M, int n)
{
	for (int m = 0; m < M; m++)
		axpy4_f32_scalar(y + (size_t)m * ldy, a + (size_t)m * lda, x, n);
}

static void roundtrip_fp8_scalar(const float *x, int n, float s, float *xr)
{
	for (int k = 0; k < n; k++)
		xr[k] = dec_lut[e4m3_encode(x[k] / s)] * s;
}

static const struct kern_isa isa_scalar = {
    .name = "scalar",
    .dot_bf16 = dot_bf16_scalar,
    .row_fp8 = row_fp8_scalar,
    .dec_fp8 = dec_fp8_scalar,
    .tile_p16 = tile_p16_scalar,
    .pack_p16 = pack_p16_scalar,
    .dot_f32_rows = dot_f32_rows_scalar,
    .axpy_f32 = axpy_f32_scalar,
    .axpy_fp8s = axpy_fp8s_scalar,
    .dot_fp8s_rows = dot_fp8s_rows_scalar,
    .axpy4_fp8s = axpy4_fp8s_scalar,
    .axpy4_f32 = axpy4_f32_scalar,
    .axpy4_rows_f32 = axpy4_rows_f32_scalar,
    .roundtrip_fp8 = roundtrip_fp8_scalar,
    .gemv_bf16p = gemv_bf16p_scalar,
    .gemv_i8p = gemv_i8p_scalar,
    .gemv_i8u8p = gemv_i8u8p_scalar,
    .row_i8u8p = row_i8u8p_scalar,
    .i8u8_xmax = 127,
};

extern const struct kern_isa kern_isa_avx2;
extern const struct kern_isa kern_isa_avx512;
extern const struct kern_isa kern_isa_avx512bf16;

/* The avx512 path as run: its own kernels, and for the members it has none of (the attention's
 * multi-row f32 primitives, the prefill tile's packing) the AVX2 ones, which every CPU of that
 * path runs. axpy4_f32 and axpy4_rows_f32 are element-wise FMAs, so their bits equal avx512's
 * axpy_f32 calls (whose last n % 8 are AVX2's too); dot_f32_rows is then the path's one row-group
 * dot for the scores. Chosen once, per kernel, at start-up. */
static struct kern_isa isa_avx512_run;
static pthread_once_t isa_avx512_once = PTHREAD_ONCE_INIT;

static void isa_avx512_init(void)
{
	isa_avx512_run = kern_isa_avx512;
	if (!isa_avx512_run.dot_f32_rows)
		isa_avx512_run.dot_f32_rows = kern_isa_avx2.dot_f32_rows;
	if (!isa_avx512_run.axpy4_f32)
		isa_avx512_run.axpy4_f32 = kern_isa_avx2.axpy4_f32;
	if (!isa_avx512_run.axpy4_rows_f32)
		isa_avx512_run.axpy4_rows_f32 = kern_isa_avx2.axpy4_rows_f32;
	if (!isa_avx512_run.pack_p16) /* the packed tile's layout is the same */
		isa_avx512_run.pack_p16 = kern_isa_avx2.pack_p16;
	if (!isa_avx512_run.decpack_fp8)
		isa_avx512_run.decpack_fp8 = kern_isa_avx2.decpack_fp8;
	if (!isa_avx512_run.axpy_fp8s) /* the one-token absorbed kv_b products, fused */
		isa_avx512_run.axpy_fp8s = kern_isa_avx2.axpy_fp8s;
	if (!isa_avx512_run.dot_fp8s_rows)
		isa_avx512_run.dot_fp8s_rows = kern_isa_avx2.dot_fp8s_rows;
	if (!isa_avx512_run.axpy4_fp8s)
		isa_avx512_run.axpy4_fp8s = kern_isa_avx2.axpy4_fp8s;
}

/* The avx512bf16 path: the avx512 path as run, and its act-fp8 prefill tile and (with AVX-512
 * VBMI) decode GEMV on BF16 dot products. */
static struct kern_isa isa_avx512bf16_run;
static pthread_once_t isa_avx512bf16_once = PTHREAD_ONCE_INIT;

static void isa_avx512bf16_init(void)
{
	isa_avx512bf16_run = isa_avx512_run;
	isa_avx512bf16_run.name = kern_isa_avx512bf16.name;
	isa_avx512bf16_run.quant_bf16 = kern_isa_avx512bf16.quant_bf16;
	isa_avx512bf16_run.decpack_bf16 = kern_isa_avx512bf16.decpack_bf16;
	isa_avx512bf16_run.tile_bf16 = kern_isa_avx512bf16.tile_bf16;
	if (__builtin_cpu_supports("avx512vnni")) { /* the head screen's integer pass */
		isa_avx512bf16_run.gemv_i8u8p = kern_isa_avx512bf16.gemv_i8u8p;
		isa_avx512bf16_run.i8u8_xmax = kern_isa_avx512bf16.i8u8_xmax;
		isa_avx512bf16_run.i8u8_one = kern_isa_avx512bf16.i8u8_one;
		isa_avx512bf16_run.i8u8_maxm = kern_isa_avx512bf16.i8u8_maxm;
	}
	if (__builtin_cpu_supports("avx512vbmi")) { /* (their byte lookups) */
		isa_avx512bf16_run.row_bf16 = kern_isa_avx512bf16.row_bf16;
		isa_avx512bf16_run.rows_bf16 = kern_isa_avx512bf16.rows_bf16;
	}
}

/* F16C from CPUID leaf 1 (ECX bit 29): not every compiler's __builtin_cpu_supports names it. */
static int cpu_f16c(void)
{
	unsigned a, b, c, d;
	return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C);
}

const struct kern_isa *kern_isa_by_name(const char *name)
{
	lut_init();
	__builtin_cpu_init();
	if (!strcmp(name, "scalar"))
		return &isa_scalar;
	if (!strcmp(name, "avx2") && __builtin_cpu_supports("avx2") &&
	    __builtin_cpu_supports("fma") && cpu_f16c())
		return &kern_isa_avx2;
	if (!strcmp(name, "avx512") && __builtin_cpu_supports("avx512f") &&
	    __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
	    __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("fma") && cpu_f16c() &&
	    __builtin_cpu_supports("avx2")) {
		pthread_once(&isa_avx512_once, isa_avx512_init);
		return &isa_avx512_run;
	}
	if (!strcmp(name, "avx512bf16") && __builtin_cpu_supports("avx512bf16") &&
	    kern_isa_by_name("avx512")) {
		pthread_once(&isa_avx512bf16_once, isa_avx512bf16_init);
		return &isa_avx512bf16_run;
	}
	return NULL;
}

const struct kern_isa *kern_isa_get(void)
{
	static int warned;
	const char *env = getenv("MOECARD_ISA");
	const struct kern_isa *i;
	if (env && *env) {
		if ((i = kern_isa_by_name(env)))
			return i;
		if (!__atomic_exchange_n(&warned, 1, __ATOMIC_RELAXED))
			fprintf(stderr,
				"moecard: MOECARD_ISA=%s: not a path this CPU runs "
				"(scalar|avx2|avx512|avx512bf16; see moecard --version); using the "
				"best one\n",
				env);
	}
	if ((i = kern_isa_by_name("avx512bf16")))
		return i;
	if ((i = kern_isa_by_name("avx512")))
		return i;
	if ((i = kern_isa_by_name("avx2")))
		return i;
	return kern_isa_by_name("scalar");
}

void kern_isa_describe(char *buf, size_t len)
{
	static const char *const feat[] = {"avx2",	 "fma",	      "f16c",	  "avx512f",
					   "avx512bw",	 "avx512vl",  "avx512dq", "avx512vbmi",
					   "avx512bf16", "avx512vnni"};
	static const char *const paths[] = {"scalar", "avx2", "avx512", "avx512bf16"};
	size_t o = 0;
	__builtin_cpu_init();
	o += (size_t)snprintf(buf + o, len - o, "cpu:");
	for (size_t f = 0; f < sizeof feat / sizeof feat[0] && o < len; f++) {
		int has = 0;
		switch (f) { /* __builtin_cpu_supports needs a literal */
		case 0:
			has = __builtin_cpu_supports("avx2");
			break;
		case 1:
			has = __builtin_cpu_supports("fma");
			break;
		case 2:
			has = cpu_f16c();
			break;
		case 3:
			has = __builtin_cpu_supports("avx512f");
			break;
		case 4:
			has = __builtin_cpu_supports("avx512bw");
			break;
		case 5:
			has = __builtin_cpu_supports("avx512vl");
			break;
		case 6:
			has = __builtin_cpu_supports("avx512dq");
			break;
		case 7:
			has = __builtin_cpu_supports("avx512vbmi");
			break;
		case 8:
			has = __builtin_cpu_supports("avx512bf16");
			break;
		case 9:
			has = __builtin_cpu_supports("avx512vnni");
			break;
		}
		if (has)
			o += (size_t)snprintf(buf + o, len - o, " %s", feat[f]);
	}
	if (o < len)
		o += (size_t)snprintf(buf + o, len - o, "; paths this CPU runs:");
	for (size_t p = 0; p < sizeof paths / sizeof paths[0] && o < len; p++)
		if (kern_isa_by_name(paths[p]))
			o += (size_t)snprintf(buf + o, len - o, " %s", paths[p]);
}

/* ---- activation quantization ------------------------------------------------------------------ */

/* Scale of one activation block (docs/numerics.md): max(amax, 1e-4)/448, ue8m0: next power of 2. */
static float act_scale(const float *xb, int n, int ue8m0)
{
	float amax = 0;
	for (int k = 0; k < n; k++) {
		float a = fabsf(xb[k]);
		amax = a > amax ? a : amax;
	}
	float s = (amax > 1e-4f ? amax : 1e-4f) / 448.0f;
	if (ue8m0) { /* round up to a power of two: bump the exponent if any mantissa bit */
		uint32_t u = e4m3_f32_bits(s);
		if (u & 0x7FFFFFu)
			u = (u & 0xFF800000u) + 0x800000u;
		s = e4m3_bits_f32(u);
	}
	return s;
}

static void act_roundtrip_isa(const struct kern_isa *isa, const float *x, int K, int ue8m0,
			      float *xr)
{
	for (int k0 = 0; k0 < K; k0 += 128) {
		int n = K - k0 < 128 ? K - k0 : 128;
		isa->roundtrip_fp8(x + k0, n, act_scale(x + k0, n, ue8m0), xr + k0);
	}
}

void kern_act_roundtrip(const float *x, int K, int ue8m0, float *xr)
{
	act_roundtrip_isa(kern_isa_get(), x, K, ue8m0, xr);
}

void kern_act_quant(const float *x, int K, int ue8m0, float *xq, float *sa)
{
	lut_init();
	for (int kb = 0; kb * 128 < K; kb++) {
		int n = K - kb * 128 < 128 ? K - kb * 128 : 128;
		const float *xb = x + kb * 128;
		float s = act_scale(xb, n, ue8m0);
		sa[kb] = s;
		for (int k = 0; k < n; k++)
			xq[kb * 128 + k] = dec_lut[e4m3_encode(xb[k] / s)];
	}
}

/* ---- matrix products ------------------------------------------------------------------------- */

float qmat_get(const struct qmat *W, int r, int c)
{
	size_t i = (size_t)r * W->cols + c;
	switch (W->fmt) {
	case QMAT_FP8:
		return e4m3_decode(((const uint8_t *)W->w)[i]) *
		       W->scale[(size_t)(r / 128) * W->scale_cols + c / 128];
	case QMAT_BF16:
		return bf16_to_f32(((const uint16_t *)W->w)[i]);
	case QMAT_F16:
		return f16_to_f32(((const uint16_t *)W->w)[i]);
	case QMAT_F32:
		return ((const float *)W->w)[i];
	}
	return 0;
}

/* A thread's tile buffer, floats: KERN_PW packed rows and 8 dequantized ones of max_k; the BF16
 * tile's pairs (KERN_PW x ceil(K/2)) and block scales (KERN_PW x ceil(K/128)) fit it for K >= 2,
 * the 32 more for K = 1. */
static size_t wbuf_floats(int max_k)
{
	return (size_t)(KERN_PW + 8) * (size_t)max_k + 32;
}

int kern_ctx_init(struct kern_ctx *k, struct pool *p, int act_fp8, int ue8m0, size_t max_floats,
		  int max_k)
{
	memset(k, 0, sizeof *k);
	k->pool = p;
	k->isa = kern_isa_get();
	k->act_fp8 = act_fp8;
	k->ue8m0 = ue8m0;
	k->scratch_floats = max_floats;
	if (max_floats) {
		k->scratch = malloc(max_floats * sizeof(float));
		if (!k->scratch)
			return -ENOMEM;
	}
	if (max_k > 0) {
		int nt = p ? pool_nthreads(p) : 1;
		k->wbuf = malloc(sizeof(float) * (size_t)nt * wbuf_floats(max_k));
		if (!k->wbuf) {
			free(k->scratch);
			k->scratch = NULL;
			return -ENOMEM;
		}
		k->max_k = max_k;
	}
	return 0;
}

void kern_ctx_free(struct kern_ctx *k)
{
	free(k->scratch);
	free(k->wbuf);
	free(k->prep);
	free(k->xbuf);
	free(k->xpad);
	k->xbuf = NULL;
	k->xbuf_bytes = 0;
	k->xpad = NULL;
	k->xpad_bytes = 0;
	k->scratch = NULL;
	k->wbuf = NULL;
	k->prep = NULL;
	k->prep_bytes = 0;
}

void kern_dec_row(const struct kern_isa *isa, const struct qmat *W, int n, float *out)
{
	int K = W->cols;
	if (W->fmt == QMAT_FP8) {
		isa->dec_fp8(qmat_fp8_row(W, n), K, qmat_fp8_scales(W, n), out);
	} else if (W->fmt == QMAT_BF16) {
		const uint16_t *r = (const uint16_t *)W->w + (size_t)n * K;
		for (int k = 0; k < K; k++)
			out[k] = bf16_to_f32(r[k]);
	} else {
		for (int k = 0; k < K; k++)
			out[k] = qmat_get(W, n, k);
	}
}

/* Whether a job takes the prefill tiles (else the per-row GEMV path). */
static int takes_tile(const struct kern_ctx *kc, const struct kern_job *j)
{
	return j->M >= KERN_TILE_MIN_M && j->W->cols <= kc->max_k && !kc->rows_only;
}

/* Output features [n0, n0+nn) for all M inputs of a job. */
static void job_rows(const struct kern_ctx *kc, const struct kern_job *j, int n0, int nn, int tid)
{
	const struct kern_isa *isa = kc->isa;
	const struct qmat *W = j->W;
	int K = W->cols;
	const float *xs = j->xq ? j->xq : j->x;
	int ld = j->xq ? K : j->ldx;
	const float *xr = j->xp ? j->xp : xs; /* the FP8 row path's input */
	int lr = j->xp ? K : ld;
	float acc[KERN_MB_ROWB > KERN_MB ? KERN_MB_ROWB : KERN_MB];
	if (takes_tile(kc, j) && j->xb) { /* act fp8 on BF16 dot products (tile_bf16) */
		int nkb = (K + 127) / 128;
		float *wt = kc->wbuf + (size_t)tid * wbuf_floats(kc->max_k);
		uint32_t *wpb = (void *)wt;			   /* KERN_PW x ceil(K/2) pairs */
		float *swt = wt + (size_t)KERN_PW * ((K + 1) / 2); /* then the scales */
		for (int b = 0; b < nn; b += KERN_PW) {
			int nw = nn - b < KERN_PW ? nn - b : KERN_PW, n = n0 + b;
			for (int r = 0; r < KERN_PW; r++) {
				const float *sr = qmat_fp8_scales(W, n + (r < nw ? r : 0));
				for (int kb = 0; kb < nkb; kb++)
					swt[kb * KERN_PW + r] = sr[kb];
			}
			isa->decpack_bf16(qmat_fp8_row(W, n), K, nw, wpb);
			isa->tile_bf16(wpb, nw, j->xb, (K + 1) & ~1, j->M, K, j->sab, nkb, swt,
				       j->y + n, j->ldy, j->accumulate);
		}
		return;
	}
	if (takes_tile(kc, j)) {
		/* prefill: dequantize up to KERN_PW rows once, reuse them for every input row */
		float *wt = kc->wbuf + (size_t)tid * wbuf_floats(kc->max_k);
		/* eight rows at a time dequantized into rows[8][K], then packed */
		float *rows = wt + (size_t)KERN_PW * K;
		for (int b = 0; b < nn; b += KERN_PW) {
			int nw = nn - b < KERN_PW ? nn - b : KERN_PW;
			for (int i0 = 0; i0 < KERN_PW; i0 += 8) {
				int nr = nw - i0 < 0 ? 0 : nw - i0 > 8 ? 8 : nw - i0;
				int n = n0 + b + i0;
				if (W->fmt == QMAT_FP8 && isa->decpack_fp8) {
					const float *sw[8];
					for (int r = 0; r < 8; r++)
						sw[r] = qmat_fp8_scales(W, n + (r < nr ? r : 0));
					isa->decpack_fp8(qmat_fp8_row(W, n), K, nr, sw, i0, wt);
					continue;
				}
				for (int r = 0; r < nr; r++)
					kern_dec_row(isa, W, n + r, rows + (size_t)r * K);
				isa->pack_p16(rows, K, nr, i0, wt);
			}
			isa->tile_p16(wt, nw, xs, ld, j->M, K, j->y + n0 + b, j->ldy,
				      j->accumulate);
		}
		return;
	}
	for (int n = n0; n < n0 + nn; n++) {
		int mbmax = j->xb ? KERN_MB_ROWB : KERN_MB; /* rows a call takes */
		if (j->M == 1 && W->fmt == QMAT_FP8 &&
		    (j->xb ? isa->rows_bf16 != NULL : j->xp && isa->rows_fp8)) {
			/* one input: up to KERN_NR weight rows a call, within the block row of their
			 * scales */
			int nr = n0 + nn - n, left = 128 - n % 128;
			nr = nr > KERN_NR ? KERN_NR : nr;
			nr = nr > left ? left : nr;
			if (j->xb)
				isa->rows_bf16(qmat_fp8_row(W, n), nr, j->xb, K, j->sab,
					       qmat_fp8_scales(W, n), acc);
			else
				isa->rows_fp8(qmat_fp8_row(W, n), nr, j->xp, K,
					      qmat_fp8_scales(W, n), acc);
			for (int r = 0; r < nr; r++) {
				float *yp = j->y + n + r, v = j->xb ? acc[r] : acc[r] * j->xpf[0];
				*yp = j->accumulate ? *yp + v : v;
			}
			n += nr - 1;
			continue;
		}
		for (int m0 = 0; m0 < j->M; m0 += mbmax) {
			int mb = j->M - m0 < mbmax ? j->M - m0 : mbmax;
			if (j->xb) { /* act fp8 on BF16 dot products (row_bf16) */
				int kp = (K + 1) & ~1, nkb = (K + 127) / 128;
				isa->row_bf16(qmat_fp8_row(W, n), j->xb + (size_t)m0 * kp, kp, mb,
					      K, j->sab + (size_t)m0 * nkb, nkb,
					      qmat_fp8_scales(W, n), acc);
			} else if (W->fmt == QMAT_FP8) { /* on the prepared input when the ISA reads
							    one */
				isa->row_fp8(qmat_fp8_row(W, n), xr + (size_t)m0 * lr, lr, mb, K,
					     qmat_fp8_scales(W, n), acc);
				for (int m = 0; j->xpf && m < mb; m++)
					acc[m] *= j->xpf[m0 + m];
			} else if (W->fmt == QMAT_BF16) {
				isa->dot_bf16((const uint16_t *)W->w + (size_t)n * K,
					      xs + (size_t)m0 * ld, ld, mb, K, acc);
			} else {
				for (int m = 0; m < mb; m++) {
					const float *xm = xs + (size_t)(m0 + m) * ld;
					float s = 0;
					for (int k = 0; k < K; k++)
						s += qmat_get(W, n, k) * xm[k];
					acc[m] = s;
				}
			}
			for (int m = 0; m < mb; m++) {
				float *yp = j->y + (size_t)(m0 + m) * j->ldy + n;
				*yp = j->accumulate ? *yp + acc[m] : acc[m];
			}
		}
	}
}

struct jobs_ctx {
	const struct kern_ctx *kc;
	struct kern_job *jobs;
	int n_jobs;
	int *row_start; /* [n_jobs+1] prefix sums of rows */
};

static void jobs_task(void *c, int b, int e, int tid)
{
	struct jobs_ctx *jc = c;
	int j = 0, r = b;
	while (r < e) {
		while (jc->row_start[j + 1] <= r)
			j++;
		int end = jc->row_start[j + 1] < e ? jc->row_start[j + 1] : e;
		job_rows(jc->kc, &jc->jobs[j], r - jc->row_start[j], end - r, tid);
		r = end;
	}
}

#define KERN_MAX_JOBS 1024

int kern_grow(void **buf, size_t *have, size_t need)
{
	if (need <= *have)
		return 0;
	void *p = aligned_alloc(64, (need + 63) & ~(size_t)63);
	if (!p)
		return -ENOMEM;
	free(*buf);
	*buf = p;
	*have = need;
	return 0;
}

int kern_argmax(const float *logits, int n)
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

struct bf16p_ctx {
	const struct kern_isa *isa;
	const uint16_t *wp;
	int N, K, M;
	const float *x;
	float *y;
	int ldx;
};

static void bf16p_task(void *c, int b, int e, int tid)
{
	const struct bf16p_ctx *bc = c;
	(void)tid;
	for (int p = b; p < e; p += 2) { /* two panels a call */
		int n0 = p * KERN_PW, n1 = (p + 2 < e ? p + 2 : e) * KERN_PW;
		n1 = n1 < bc->N ? n1 : bc->N;
		bc->isa->gemv_bf16p(bc->wp + (size_t)p * bc->K * KERN_PW, n1 - n0, bc->x, bc->ldx,
				    bc->M, bc->K, bc->y + n0, bc->N);
	}
}

void kern_matmul_bf16p(struct kern_ctx *k, const uint16_t *wp, int N, int K, const float *x, int M,
		       float *y)
{
	struct bf16p_ctx bc = {k->isa, wp, N, K, M, x, y, K};
	/* Several input rows a whole number of 4 KiB apart share one set of the L1 cache (their
	 * broadcasts miss each other's lines): a copy 64 bytes further apart each, in the
	 * context's buffer (kept as it is when it cannot grow) */
	void *xpad = k->xpad;
	if (M > 1 && (size_t)K * sizeof(float) % 4096 == 0 &&
	    !kern_grow(&xpad, &k->xpad_bytes, sizeof(float) * (size_t)M * (K + 16))) {
		k->xpad = xpad;
		for (int m = 0; m < M; m++)
			memcpy(k->xpad + (size_t)m * (K + 16), x + (size_t)m * K,
			       sizeof(float) * K);
		bc.x = k->xpad;
		bc.ldx = K + 16;
	}
	int np = kern_bf16p_panels(N), nt = k->pool ? pool_nthreads(k->pool) : 1;
	int grain = np / (nt * 16);
	grain = grain < 2 ? 2 : grain > 64 ? 64 : grain & ~1;
	if (k->pool)
		pool_for(k->pool, np, grain, bf16p_task, &bc);
	else
		bf16p_task(&bc, 0, np, 0);
}

/* Two jobs on the same input rows, of the same length. */
static int same_input(const struct kern_job *a, const struct kern_job *b)
{
	return a->x == b->x && a->M == b->M && a->ldx == b->ldx && a->W->cols == b->W->cols;
}

/* An act-fp8 FP8 job whose ISA has BF16 dot products for its path (the tile, or the GEMV
 * rows). */
static int wants_bf16(const struct kern_ctx *k, const struct kern_job *j)
{
	return k->act_fp8 && j->W->fmt == QMAT_FP8 && j->M > 0 &&
	       (takes_tile(k, j) ? k->isa->tile_bf16 != NULL : k->isa->row_bf16 != NULL);
}

/* An FP8 job on the row path whose ISA reads a prepared input. */
static int wants_prep(const struct kern_ctx *k, const struct kern_job *j)
{
	return k->isa->prep_fp8 && j->W->fmt == QMAT_FP8 && j->M > 0 && !takes_tile(k, j) &&
	       !wants_bf16(k, j);
}

/* A job's codes and scales in k->xbuf: M rows of K rounded up to even bf16 codes, then (from
 * byte bf16_scales_at) M x ceil(K/128) f32 scales; bf16_span rounds it up to a 64-byte line. */
static size_t bf16_scales_at(int M, int K)
{
	return ((size_t)M * (size_t)((K + 1) & ~1) * 2 + 3) & ~(size_t)3;
}

static size_t bf16_span(int M, int K)
{
	return (bf16_scales_at(M, K) + (size_t)M * (size_t)((K + 127) / 128) * 4 + 63) &
	       ~(size_t)63;
}

/* The activation codes and block scales of the jobs on BF16 dot products (wants_bf16), one
 * per distinct input: for each row and 128-block s = the act-fp8 scale, codes e4m3(x / s). */
static int bf16_jobs(struct kern_ctx *k, struct kern_job *jobs, int n_jobs)
{
	size_t need = 0;
	for (int j = 0; j < n_jobs; j++)
		if (wants_bf16(k, &jobs[j]))
			need += bf16_span(jobs[j].M, jobs[j].W->cols);
	void *xbuf = k->xbuf;
	int rc = kern_grow(&xbuf, &k->xbuf_bytes, need);
	k->xbuf = xbuf;
	if (rc)
		return rc;
	size_t used = 0;
	for (int j = 0; j < n_jobs; j++) {
		struct kern_job *jb = &jobs[j];
		if (!wants_bf16(k, jb))
			continue;
		for (int i = 0; i < j; i++)
			if (jobs[i].xb && same_input(&jobs[i], jb)) {
				jb->xb = jobs[i].xb;
				jb->sab = jobs[i].sab;
				break;
			}
		if (jb->xb)
			continue;
		int K = jb->W->cols, kp = (K + 1) & ~1, nkb = (K + 127) / 128;
		uint16_t *xb = (uint16_t *)((char *)k->xbuf + used);
		void *sp = (char *)xb + bf16_scales_at(jb->M, K);
		float *sa = sp;
		for (int m = 0; m < jb->M; m++) {
			const float *xm = jb->x + (size_t)m * jb->ldx;
			for (int kb = 0; kb < nkb; kb++) {
				int k0 = kb * 128, n = K - k0 < 128 ? K - k0 : 128;
				float s = act_scale(xm + k0, n, k->ue8m0);
				sa[(size_t)m * nkb + kb] = s;
				k->isa->quant_bf16(xm + k0, n, s, xb + (size_t)m * kp + k0);
			}
		}
		used += bf16_span(jb->M, K);
		jb->xb = xb;
		jb->sab = sa;
	}
	return 0;
}

/* Floats a job's prepared input takes in k->prep: M rows of K and M factors, rounded up to a
 * whole 64-byte line so that the next job's rows start on one. */
static size_t prep_span(int M, int K)
{
	return ((size_t)M * ((size_t)K + 1) + 15) & ~(size_t)15;
}

/* The prepared inputs of the jobs that want one (wants_prep), one per distinct input: its rows
 * (or their FP8 round trip) in prep_fp8's layout, then their factors. */
static int prep_jobs(struct kern_ctx *k, struct kern_job *jobs, int n_jobs)
{
	size_t need = 0;
	for (int j = 0; j < n_jobs; j++)
		if (wants_prep(k, &jobs[j]))
			need += prep_span(jobs[j].M, jobs[j].W->cols);
	void *prep = k->prep; /* 64-byte aligned: the AVX-512 rows load whole lines */
	int rc = kern_grow(&prep, &k->prep_bytes, need * sizeof(float));
	k->prep = prep;
	if (rc)
		return rc;
	size_t used = 0;
	for (int j = 0; j < n_jobs; j++) {
		struct kern_job *jb = &jobs[j];
		jb->xp = jb->xpf = NULL;
		if (!wants_prep(k, jb))
			continue;
		int K = jb->W->cols;
		for (int i = 0; i < j; i++)
			if (jobs[i].xp && jobs[i].xq == jb->xq && same_input(&jobs[i], jb)) {
				jb->xp = jobs[i].xp;
				jb->xpf = jobs[i].xpf;
				break;
			}
		if (jb->xp)
			continue;
		const float *src = jb->xq ? jb->xq : jb->x;
		int ld = jb->xq ? K : jb->ldx;
		if (!k->prep) /* (not reached: need counted this job) */
			return -ENOMEM;
		float *xp = k->prep + used, *f = xp + (size_t)jb->M * K;
		for (int m = 0; m < jb->M; m++)
			f[m] = k->isa->prep_fp8(src + (size_t)m * ld, K, xp + (size_t)m * K);
		used += prep_span(jb->M, K);
		jb->xp = xp;
		jb->xpf = f;
	}
	return 0;
}

int kern_matmul_jobs(struct kern_ctx *k, struct kern_job *jobs, int n_jobs)
{
	int row_start[KERN_MAX_JOBS + 1];
	size_t used = 0;
	if (n_jobs > KERN_MAX_JOBS)
		return -E2BIG;
	int any_tile = 0; /* (the grain below) */
	row_start[0] = 0;
	for (int j = 0; j < n_jobs; j++) {
		struct kern_job *jb = &jobs[j];
		int K = jb->W->cols;
		jb->xq = NULL;
		jb->xb = NULL;
		jb->sab = NULL;
		/* (the BF16 tile quantizes its input itself: bf16_jobs) */
		if (k->act_fp8 && jb->W->fmt == QMAT_FP8 && jb->M > 0 && !wants_bf16(k, jb)) {
			/* reuse the quantization of an earlier job with the same input */
			for (int i = 0; i < j; i++)
				if (jobs[i].xq && same_input(&jobs[i], jb)) {
					jb->xq = jobs[i].xq;
					break;
				}
			if (!jb->xq) {
				size_t need = (size_t)jb->M * K;
				if (used + need > k->scratch_floats)
					return -ENOSPC;
				float *xq = k->scratch + used;
				used += need;
				for (int m = 0; m < jb->M; m++)
					act_roundtrip_isa(k->isa, jb->x + (size_t)m * jb->ldx, K,
							  k->ue8m0, xq + (size_t)m * K);
				jb->xq = xq;
			}
		}
		row_start[j + 1] = row_start[j] + (jb->M > 0 ? jb->W->rows : 0);
		any_tile |= jb->M > 0 && takes_tile(k, jb);
	}
	int r = prep_jobs(k, jobs, n_jobs);
	if (!r)
		r = bf16_jobs(k, jobs, n_jobs);
	if (r)
		return r;
	struct jobs_ctx jc = {k, jobs, n_jobs, row_start};
	int total = row_start[n_jobs];
	int nt = k->pool ? pool_nthreads(k->pool) : 1;
	/* claims of up to 256 rows when every job takes the row path (the decode GEMVs stream
	 * longer runs of a matrix: mid decode about 4% faster than with 64 on a 2-core Zen 4), 64
	 * with tiles (whose rows cost more, and whose regions end less evenly with larger claims) */
	int grain = total / (nt * 8), gmax = any_tile ? 64 : 256;
	grain = grain < 4 ? 4 : grain > gmax ? gmax : grain;
	grain = (grain + KERN_PW - 1) / KERN_PW * KERN_PW;
	if (k->pool)
		pool_for(k->pool, total, grain, jobs_task, &jc);
	else
		jobs_task(&jc, 0, total, 0);
	return 0;
}

int kern_matmul(struct kern_ctx *k, const struct qmat *W, const float *x, int M, float *y)
{
	struct kern_job j = {.W = W, .x = x, .ldx = W->cols, .M = M, .y = y, .ldy = W->rows};
	return kern_matmul_jobs(k, &j, 1);
}

int kern_matmul_simple(const struct qmat *W, const float *x, int M, float *y, int act_fp8,
		       int ue8m0)
{
	struct kern_ctx k;
	int r = kern_ctx_init(&k, NULL, act_fp8, ue8m0, (size_t)M * W->cols, W->cols);
	if (r == 0)
		r = kern_matmul(&k, W, x, M, y);
	kern_ctx_free(&k);
	return r;
}
