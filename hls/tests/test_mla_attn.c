/*
 * test_mla_attn.c - C simulation of the absorbed MLA attention kernel and the KV append:
 * append round trips for the F32, BF16 and FP8 (FlashMLA-style) records; attention against a
 * double-precision reference of docs/model.md, MLA (on the dequantized cache) for several head
 * counts, ranks, cache lengths (partial chunks and head groups) and data kinds (random, peaky
 * max-magnitude scores, subnormal, all-zero latent groups, NaN); causality; argument checks.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "e4m3.h"
#include "hls/mla_attn/mla_attn.h"
#include "hls/vec_ops/vec_ops.h"

static int passed, failed;
static double worst_fmt[3]; /* measured worst error per cache format */
#define TEST_RNG_SEED 0x9E3779B97F4A7C15ull
#include "test_rng.h"

#define ATTN_TOL 2e-5 /* stated: max |out - ref| <= 2e-5 * max|ref| per head */

/* dequantized record (double) */
static void deq(const uint8_t *r, int fmt, int dc, int dr, double *v)
{
	for (int i = 0; i < dc + dr; i++) {
		if (fmt == MLA_CACHE_F32) {
			float f;
			memcpy(&f, r + 4 * i, 4);
			v[i] = f;
		} else if (fmt == MLA_CACHE_BF16) {
			v[i] = bf16_to_f32((uint16_t)(r[2 * i] | r[2 * i + 1] << 8));
		} else if (i < dc) {
			float s;
			memcpy(&s, r + dc + 4 * (i / 128), 4);
			v[i] = (double)e4m3_decode(r[i]) * s;
		} else {
			int o = dc + 4 * (dc / 128) + 2 * (i - dc);
			v[i] = bf16_to_f32((uint16_t)(r[o] | r[o + 1] << 8));
		}
	}
}

enum { K_RANDOM, K_PEAKY, K_SUB, K_ZERO, K_NAN, K_N };
static const char *kname[K_N] = {"random", "max-magnitude", "subnormal", "zero-groups", "nan"};

static void attn_case(int H, int dc, int dr, int fmt, int nq, int pos0, int kind)
{
	int T = pos0 + nq;
	size_t rb = mla_record_bytes(fmt, dc, dr);
	float *c = malloc((size_t)T * dc * 4), *kpe = malloc((size_t)T * (dr ? dr : 1) * 4);
	float *ql = malloc((size_t)nq * H * dc * 4),
	      *qp = malloc((size_t)nq * H * (dr ? dr : 1) * 4);
	float *out = malloc((size_t)nq * H * dc * 4);
	uint8_t *cache = malloc((size_t)T * rb);
	double *v = malloc((size_t)T * (dc + dr) * 8), *sc = malloc((size_t)T * 8);
	double *ref = malloc((size_t)dc * 8);
	float qmag = kind == K_PEAKY ? 3.0f : kind == K_SUB ? 1e-20f : 0.3f;
	for (int t = 0; t < T; t++) {
		for (int i = 0; i < dc; i++)
			c[(size_t)t * dc + i] = kind == K_ZERO && (i / 128) % 2 == 0
						    ? 0.0f
						    : normal() * (kind == K_SUB ? 1e-30f : 1.0f);
		for (int j = 0; j < dr; j++)
			kpe[(size_t)t * dr + j] = normal();
	}
	for (size_t i = 0; i < (size_t)nq * H * dc; i++)
		ql[i] = normal() * qmag;
	for (size_t i = 0; i < (size_t)nq * H * dr; i++)
		qp[i] = normal() * qmag;
	int nan_head = 1 % H;
	if (kind == K_NAN && dr)
		qp[(size_t)nan_head * dr] = NAN; /* query 0, head 1 */
	int rc = mla_kv_append(c, kpe, cache, 0, T, dc, dr, fmt);
	float scale = 0.1352338f;
	rc |= mla_attn(ql, qp, cache, out, nq, pos0, H, dc, dr, fmt, scale);
	for (int t = 0; t < T; t++)
		deq(cache + (size_t)t * rb, fmt, dc, dr, v + (size_t)t * (dc + dr));
	double worst = 0;
	int nanbad = 0;
	for (int qi = 0; qi < nq; qi++)
		for (int h = 0; h < H; h++) {
			int Tq = pos0 + qi + 1;
			const float *qh = ql + ((size_t)qi * H + h) * dc,
				    *ph = qp + ((size_t)qi * H + h) * dr;
			double mx = -INFINITY, l = 0, amax = 0, e = 0;
			int isnan_ = 0;
			for (int t = 0; t < Tq; t++) {
				double s = 0;
				for (int i = 0; i < dc; i++)
					s += (double)qh[i] * v[(size_t)t * (dc + dr) + i];
				for (int j = 0; j < dr; j++)
					s += (double)ph[j] * v[(size_t)t * (dc + dr) + dc + j];
				sc[t] = s * scale;
				isnan_ |= isnan(s);
				mx = fmax(mx, sc[t]);
			}
			for (int i = 0; i < dc; i++)
				ref[i] = 0;
			for (int t = 0; t < Tq; t++) {
				double p = exp(sc[t] - mx);
				l += p;
				for (int i = 0; i < dc; i++)
					ref[i] += p * v[(size_t)t * (dc + dr) + i];
			}
			for (int i = 0; i < dc; i++) {
				ref[i] /= l;
				amax = fmax(amax, fabs(ref[i]));
			}
			const float *o = out + ((size_t)qi * H + h) * dc;
			for (int i = 0; i < dc; i++) {
				if (isnan_ != isnan(o[i]))
					nanbad++;
				else if (!isnan_)
					e = fmax(e, fabs(o[i] - ref[i]));
			}
			if (amax > 0)
				e /= amax;
			worst = fmax(worst, e);
		}
	int ok = !rc && worst <= ATTN_TOL && !nanbad;
	if (ok) {
		passed++;
	} else {
		failed++;
		printf("FAIL attn H=%d dc=%d dr=%d fmt=%d nq=%d pos0=%d %s: rc=%d err %.3g (limit "
		       "%.0e), "
		       "%d NaN mismatches\n",
		       H, dc, dr, fmt, nq, pos0, kname[kind], rc, worst, ATTN_TOL, nanbad);
	}
	if (worst > worst_fmt[fmt])
		worst_fmt[fmt] = worst;
	/* causality: changing tokens after a query's position must not change its output */
	if (nq > 1 && kind == K_RANDOM) {
		float *out2 = malloc((size_t)nq * H * dc * 4);
		memset(cache + (size_t)(pos0 + 1) * rb, 0x3C, (size_t)(nq - 1) * rb);
		mla_attn(ql, qp, cache, out2, nq, pos0, H, dc, dr, fmt, scale);
		int same = !memcmp(out, out2, (size_t)H * dc * 4); /* query 0 sees tokens 0..pos0 */
		int changed =
		    memcmp(out + (size_t)H * dc, out2 + (size_t)H * dc, (size_t)H * dc * 4);
		if (same && changed)
			passed++;
		else {
			failed++;
			printf("FAIL causality H=%d nq=%d pos0=%d: query 0 unchanged %d, query 1 "
			       "changed %d\n",
			       H, nq, pos0, same, changed != 0);
		}
		free(out2);
	}
	free(c);
	free(kpe);
	free(ql);
	free(qp);
	free(out);
	free(cache);
	free(v);
	free(sc);
	free(ref);
}

static void append_case(int dc, int dr, int fmt)
{
	int n = 3;
	size_t rb = mla_record_bytes(fmt, dc, dr);
	float c[3 * 512], k[3 * 64];
	uint8_t *cache = calloc(5, rb);
	for (int i = 0; i < n * dc; i++)
		c[i] = i % 128 < 5 && i < dc ? 0.0f : normal() * (i % 3 ? 1.0f : 300.0f);
	for (int i = 0; i < n * dr; i++)
		k[i] = normal();
	c[dc + 7] = NAN;
	int rc = mla_kv_append(c, k, cache, 2, n, dc, dr, fmt), bad = 0;
	for (size_t i = 0; i < 2 * rb; i++)
		bad += cache[i] != 0; /* positions 0,1 untouched */
	for (int t = 0; t < n; t++) {
		const uint8_t *r = cache + (size_t)(2 + t) * rb;
		for (int i = 0; i < dc + dr; i++) {
			float x = i < dc ? c[t * dc + i] : k[t * dr + i - dc];
			if (fmt == MLA_CACHE_F32) {
				bad += memcmp(r + 4 * i, &x, 4) != 0;
			} else if (fmt == MLA_CACHE_BF16) {
				bad += (uint16_t)(r[2 * i] | r[2 * i + 1] << 8) != f32_to_bf16(x);
			} else if (i < dc) {
				int g = i / 128;
				float amax = 0, s, sg;
				for (int j = 0; j < 128; j++)
					if (fabsf(c[t * dc + g * 128 + j]) > amax)
						amax = fabsf(c[t * dc + g * 128 + j]);
				s = fmaxf(amax, 1e-4f) / 448.0f;
				memcpy(&sg, r + dc + 4 * g, 4);
				bad += sg != s || r[i] != e4m3_encode(x / s);
			} else {
				int o = dc + 4 * (dc / 128) + 2 * (i - dc);
				bad += (uint16_t)(r[o] | r[o + 1] << 8) != f32_to_bf16(x);
			}
		}
	}
	if (!rc && !bad)
		passed++;
	else {
		failed++;
		printf("FAIL append dc=%d dr=%d fmt=%d: rc=%d, %d fields differ\n", dc, dr, fmt, rc,
		       bad);
	}
	free(cache);
}

/* The folded append (mla_kv_append_fold: kv_a's raw row normalized and roped in the input
 * stage) writes the bytes of a vec_ops RMSNORM, a vec_ops ROPE and mla_kv_append, memcmp, at
 * positions 0 and 70 of the table, rows of very different sizes, a NaN in k_pe. */
static void fold_case(int dc, int dr, int fmt, int rope_pos)
{
	size_t rb = mla_record_bytes(fmt, dc, dr);
	int ntab = rope_pos + 1;
	float row[512 + 64] = {0}, w[512], cn[512], kr[64],
			*tab = malloc(sizeof(float) * ntab * dr);
	uint8_t *a = calloc(3, rb), *b = calloc(3, rb);
	for (int i = 0; i < dc + dr; i++)
		row[i] = normal() * (i % 5 ? 1.0f : 70.0f);
	if (dr > 2)
		row[dc + 1] = NAN;
	for (int i = 0; i < dc; i++)
		w[i] = 0.5f + 0.01f * (float)(i % 97);
	for (int p = 0; p < ntab; p++)
		for (int j = 0; j < dr / 2; j++) {
			double ang = p / pow(10000.0, 2.0 * j / dr);
			tab[p * dr + 2 * j] = (float)cos(ang);
			tab[p * dr + 2 * j + 1] = (float)sin(ang);
		}
	int32_t pos = rope_pos;
	int r1 =
	    vec_ops(VEC_OP_RMSNORM, row, w, cn, NULL, NULL, NULL, 1, dc, dc, dc, 1e-6f, 0, 0, 0);
	int r2 = dr ? vec_ops(VEC_OP_ROPE, row + dc, tab, kr, NULL, NULL, &pos, 1, dr, dr, dr, 0.0f,
			      0, 0, 0)
		    : 0;
	int r3 = mla_kv_append(cn, dr ? kr : NULL, a, 1, 1, dc, dr, fmt);
	int r4 = mla_kv_append_fold(row, w, 1e-6f, tab, rope_pos, b, 1, dc, dr, fmt);
	if (!r1 && !r2 && !r3 && !r4 && !memcmp(a, b, 3 * rb))
		passed++;
	else {
		failed++;
		printf("FAIL fold dc=%d dr=%d fmt=%d pos=%d: rc %d %d %d %d, records %s\n", dc, dr,
		       fmt, rope_pos, r1, r2, r3, r4, memcmp(a, b, 3 * rb) ? "differ" : "equal");
	}
	free(tab);
	free(a);
	free(b);
}

/* n folded rows in one call (mla_kv_append_fold_rows) write the bytes of n one-row calls at
 * positions pos.. with table rows rope_pos..; bad row counts refused. */
static void fold_rows_case(int dc, int dr, int fmt, int n, int pos, int rope_pos)
{
	size_t rb = mla_record_bytes(fmt, dc, dr), rw = (size_t)(dc + dr);
	int ntab = rope_pos + n;
	float *rows = malloc(sizeof(float) * rw * (size_t)n), *w = malloc(sizeof(float) * dc),
	      *tab = malloc(sizeof(float) * (size_t)ntab * (size_t)(dr ? dr : 1));
	uint8_t *a = calloc((size_t)(pos + n + 1), rb), *b = calloc((size_t)(pos + n + 1), rb);
	for (size_t i = 0; i < rw * (size_t)n; i++)
		rows[i] = normal() * (i % 7 ? 1.0f : 30.0f);
	for (int i = 0; i < dc; i++)
		w[i] = 0.5f + 0.01f * (float)(i % 89);
	for (int i = 0; i < ntab * dr; i++)
		tab[i] = normal();
	int rc = 0;
	for (int i = 0; i < n && !rc; i++)
		rc = mla_kv_append_fold(rows + (size_t)i * rw, w, 1e-6f, tab, rope_pos + i, a,
					pos + i, dc, dr, fmt);
	int r2 = mla_kv_append_fold_rows(rows, n, w, 1e-6f, tab, rope_pos, b, pos, dc, dr, fmt);
	int bad = mla_kv_append_fold_rows(rows, 0, w, 1e-6f, tab, rope_pos, b, pos, dc, dr, fmt);
	if (!rc && !r2 && bad == -EINVAL && !memcmp(a, b, (size_t)(pos + n + 1) * rb))
		passed++;
	else
		failed++,
		    printf("FAIL fold rows dc=%d dr=%d fmt=%d n=%d: rc %d %d %d, records %s\n", dc,
			   dr, fmt, n, rc, r2, bad,
			   memcmp(a, b, (size_t)(pos + n + 1) * rb) ? "differ" : "equal");
	free(rows);
	free(w);
	free(tab);
	free(a);
	free(b);
}

int main(void)
{
	int f0 = 0;
	for (int fmt = 0; fmt < 3; fmt++) {
		fold_rows_case(512, 64, fmt, 32, 0, 0);
		fold_rows_case(128, 16, fmt, 7, 41, 41);
	}
	for (int fmt = 0; fmt < 3; fmt++) {
		fold_case(256, 32, fmt, 0);
		fold_case(512, 64, fmt, 70);
		fold_case(128, 16, fmt, 5);
	}
	{ /* bad arguments of the fold */
		float row[8] = {0}, w[8] = {1, 1, 1, 1, 1, 1, 1, 1}, tab[8] = {0};
		uint8_t rec[64];
		if (mla_kv_append_fold(row, w, 1e-6f, tab, 0, rec, 0, 0, 2, MLA_CACHE_F32) ==
			-EINVAL &&
		    mla_kv_append_fold(row, w, 1e-6f, tab, 0, rec, 0, 4, 3, MLA_CACHE_F32) ==
			-EINVAL &&
		    mla_kv_append_fold(row, NULL, 1e-6f, tab, 0, rec, 0, 4, 2, MLA_CACHE_F32) ==
			-EINVAL &&
		    mla_kv_append_fold(row, w, 1e-6f, tab, -1, rec, 0, 4, 2, MLA_CACHE_F32) ==
			-EINVAL)
			passed++;
		else
			failed++, printf("FAIL fold: bad arguments accepted\n");
	}
	/* record sizes: FlashMLA FP8 656 bytes for 512/64 */
	if (mla_record_bytes(MLA_CACHE_FP8, 512, 64) == 656 &&
	    mla_record_bytes(MLA_CACHE_BF16, 512, 64) == 1152 &&
	    mla_record_bytes(MLA_CACHE_F32, 512, 64) == 2304 &&
	    mla_record_bytes(MLA_CACHE_FP8, 100, 64) == 0)
		passed++;
	else
		failed++, printf("FAIL record sizes\n");
	for (int fmt = 0; fmt < 3; fmt++) {
		append_case(128, 16, fmt);
		append_case(512, 64, fmt);
	}
	struct {
		int H, dc, dr, nq, pos0;
	} shapes[] = {
	    {4, 128, 16, 1, 0},	  {4, 128, 16, 1, 40},	 {16, 256, 32, 3, 70},
	    {20, 128, 16, 2, 31}, {128, 512, 64, 1, 33}, {1, 512, 0, 1, 5},
	};
	for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
		for (int fmt = 0; fmt < 3; fmt++)
			for (int kind = 0; kind < K_N; kind++) {
				if (shapes[s].H == 128 && kind != K_RANDOM && kind != K_PEAKY)
					continue; /* keep the run short */
				attn_case(shapes[s].H, shapes[s].dc, shapes[s].dr, fmt,
					  shapes[s].nq, shapes[s].pos0, kind);
			}
	printf("mla_attn: worst |out - ref| / max|ref| per head vs a double reference on the "
	       "dequantized cache: F32 %.3g, BF16 %.3g, FP8 %.3g (limit %.0e); appends bit-exact\n",
	       worst_fmt[0], worst_fmt[1], worst_fmt[2], ATTN_TOL);
	/* bad arguments */
	float q[4] = {0};
	uint8_t cch[4096];
	int bad = 0;
	bad += mla_attn(q, q, cch, q, 0, 0, 1, 128, 16, 0, 1.0f) != -22;
	bad += mla_attn(q, q, cch, q, 1, -1, 1, 128, 16, 0, 1.0f) != -22;
	bad += mla_attn(q, q, cch, q, 1, 0, 129, 128, 16, 0, 1.0f) != -22;
	bad += mla_attn(q, q, cch, q, 1, 0, 1, 600, 16, 0, 1.0f) != -22;
	bad += mla_attn(q, q, cch, q, 1, 0, 1, 100, 16, MLA_CACHE_FP8, 1.0f) != -22;
	bad += mla_attn(q, 0, cch, q, 1, 0, 1, 128, 16, 0, 1.0f) != -22;
	bad += mla_kv_append(q, q, cch, 0, 0, 128, 16, 0) != -22;
	bad += mla_kv_append(q, q, cch, 0, 1, 128, 16, 3) != -22;
	if (bad == f0)
		passed++;
	else
		failed++, printf("FAIL %d bad-argument calls not rejected with -EINVAL\n", bad);
	printf("%d passed, %d failed\n", passed, failed);
	return failed != 0;
}
