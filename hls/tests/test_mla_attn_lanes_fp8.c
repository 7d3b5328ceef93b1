/*
 * test_mla_attn_lanes_fp8.c - the FP8 datapath of mla_attn_lanes (MLA_ATTN_FP8, rules F1-F5 in
 * mla_attn.h) on FP8 records striped over 1, 3 and 32 lanes, positions 0..300, 1..128 heads:
 * bit-exact against a straightforward C re-implementation of the documented rule; its error
 * against a double-precision attention over the same dequantized records and its distance from
 * the f32 datapath on the same records (printed and bounded); the block-integer quantizer
 * (hls_bquant.h) against double arithmetic; argument checks; the modeled cost of a 671B layer at
 * context 4096 against the f32 datapath.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "e4m3.h"
#include "hls_math.h"
#include "hls_quant.h"
#include "hls_bquant.h"
#include "hls/mla_attn/mla_attn.h"
#include "tests/harness.h"

/*
 * Error measure: max |out - ref| / max |ref| per head. q element magnitudes per kind: 0.3, 1 and
 * 3, i.e. logits (score * scale) of standard deviation about 1, 3 and 10 at dc 512. The block
 * integers round q and the weights to 2^-12 of their group's amax, so a logit moves by a little
 * and a weight by e^(that): the error grows with the logits' spread. Measured worst (this seed):
 * 1.2e-3, 3.8e-3 and 1.0e-2 (with q and the weights in E4M3, as an earlier release had them:
 * 4.5e-2, 0.13 and 0.43); the bounds leave about 1.5x of margin.
 */
enum { K_RANDOM, K_SHARP, K_EXTREME, K_N };
static const float kind_qmag[K_N] = {0.3f, 1.0f, 3.0f};
static const double kind_tol[K_N] = {2e-3, 6e-3, 1.5e-2};
static const char *kind_name[K_N] = {"random", "sharp", "extreme"};
#define OFF 128 /* cache_off of the lane banks */

static double worst_ref[K_N], worst_f32[K_N], worst_f32ref[K_N];
#define TEST_RNG_SEED 0x9E3779B97F4A7C15ull
#include "test_rng.h"

static float rd_f32(const uint8_t *p)
{
	float f;
	memcpy(&f, p, 4);
	return f;
}
static float rd_bf16(const uint8_t *p)
{
	return bf16_to_f32((uint16_t)(p[0] | p[1] << 8));
}

/* Halving tree of MLA_DL products (rule 1's score tree). */
static float tree32(float *p)
{
	for (int half = MLA_DL / 2; half >= 1; half /= 2)
		for (int i = 0; i < half; i++)
			p[i] = p[i] + p[i + half];
	return p[0];
}

/*
 * The documented FP8 rule, written out per head: records unstriped (token t at cache + t rb),
 * lane i owning blocks i, i + L, ...; rules F1-F5 and the merge.
 */
static void fp8_rule(const float *ql, const float *qp, const uint8_t *cache, int T, int L, int H,
		     int dc, int dr, float scale, float *out)
{
	int G = HLS_QUANT_GROUP, ngq = dc / G, rb = (int)mla_record_bytes(MLA_CACHE_FP8, dc, dr);
	int nblk = (T + MLA_TB - 1) / MLA_TB, nl = L < nblk ? L : nblk;
	int32_t qi[MLA_MAX_DC], wi[MLA_TB];
	int kq[MLA_MAX_DC / 128];
	float w[MLA_TB], s[MLA_TB], p[MLA_DL];
	static float acc[MLA_MAX_LANES][MLA_MAX_DC];
	float m[MLA_MAX_LANES], l[MLA_MAX_LANES], wl[MLA_MAX_LANES];
	for (int h = 0; h < H; h++) {
		const float *qh = ql + (size_t)h * dc, *ph = qp + (size_t)h * dr;
		for (int b = 0; b < ngq; b++) { /* F1 */
			float amax = 0.0f;
			for (int i = b * G; i < (b + 1) * G; i++)
				amax = hls_amax_step(amax, qh[i]);
			kq[b] = hls_bq_exp(amax);
			for (int i = b * G; i < (b + 1) * G; i++)
				qi[i] = hls_bq_int(qh[i], kq[b]);
		}
		for (int li = 0; li < nl; li++) {
			m[li] = -INFINITY;
			l[li] = 0.0f;
			for (int i = 0; i < dc; i++)
				acc[li][i] = 0.0f;
			for (int blk = li; blk < nblk; blk += L) {
				int t0 = blk * MLA_TB, tb = T - t0 < MLA_TB ? T - t0 : MLA_TB;
				for (int t = 0; t < tb; t++) { /* F2 */
					const uint8_t *r = cache + (size_t)(t0 + t) * rb;
					float S = 0.0f, R = 0.0f;
					for (int b = 0; b < ngq; b++) {
						int64_t D = 0;
						for (int i = b * G; i < (b + 1) * G; i++)
							D += (int64_t)qi[i] *
							     e4m3_decode_fixed(r[i]);
						float d = (float)D * ldexpf(1.0f, kq[b] - 9);
						S = S + d * rd_f32(r + dc + 4 * b);
					}
					for (int k = 0; k < dr; k += MLA_DL) {
						for (int e = 0; e < MLA_DL; e++)
							p[e] = k + e < dr
								   ? ph[k + e] *
									 rd_bf16(r + dc + 4 * ngq +
										 2 * (k + e))
								   : 0.0f;
						R = R + tree32(p);
					}
					s[t] = (S + R) * scale;
				}
				float mx = m[li]; /* F3 */
				for (int t = 0; t < tb; t++)
					mx = s[t] > mx ? s[t] : mx;
				float corr = hls_expf(m[li] - mx);
				l[li] = l[li] * corr;
				m[li] = mx;
				for (int t = 0; t < tb; t++) {
					s[t] = hls_expf(s[t] - mx);
					l[li] = l[li] + s[t];
				}
				for (int b = 0; b < ngq; b++) { /* F4 */
					float wmax = 0.0f;
					for (int t = 0; t < tb; t++) {
						w[t] = s[t] * rd_f32(cache + (size_t)(t0 + t) * rb +
								     dc + 4 * b);
						wmax = hls_amax_step(wmax, w[t]);
					}
					int kw = hls_bq_exp(wmax);
					for (int t = 0; t < tb; t++)
						wi[t] = hls_bq_int(w[t], kw);
					for (int i = b * G; i < (b + 1) * G; i++) {
						int64_t E = 0;
						for (int t = 0; t < tb; t++)
							E += (int64_t)wi[t] *
							     e4m3_decode_fixed(
								 cache[(size_t)(t0 + t) * rb + i]);
						acc[li][i] = acc[li][i] * corr +
							     (float)E * ldexpf(1.0f, kw - 9);
					}
				}
			}
		}
		float M = -INFINITY, ls = 0.0f; /* F5: rule 2 */
		for (int li = 0; li < nl; li++)
			M = m[li] > M ? m[li] : M;
		for (int li = 0; li < nl; li++) {
			wl[li] = hls_expf(m[li] - M);
			ls = li == 0 ? l[li] * wl[li] : ls + l[li] * wl[li];
		}
		for (int i = 0; i < dc; i++) {
			float a = acc[0][i] * wl[0];
			for (int li = 1; li < nl; li++)
				a = a + acc[li][i] * wl[li];
			out[(size_t)h * dc + i] = a / ls;
		}
	}
}

/* Double-precision attention of every head over the dequantized FP8 records. */
static void ref_double(const float *ql, const float *qp, const uint8_t *cache, int T, int H, int dc,
		       int dr, float scale, double *ref)
{
	int rb = (int)mla_record_bytes(MLA_CACHE_FP8, dc, dr), dk = dc + dr;
	double *v = malloc((size_t)T * dk * 8), *sc = malloc((size_t)T * 8);
	for (int t = 0; t < T; t++) {
		const uint8_t *r = cache + (size_t)t * rb;
		for (int i = 0; i < dc; i++)
			v[(size_t)t * dk + i] =
			    (double)e4m3_decode(r[i]) * rd_f32(r + dc + 4 * (i / 128));
		for (int j = 0; j < dr; j++)
			v[(size_t)t * dk + dc + j] = rd_bf16(r + dc + 4 * (dc / 128) + 2 * j);
	}
	for (int h = 0; h < H; h++) {
		double mx = -INFINITY, l = 0, *o = ref + (size_t)h * dc;
		for (int t = 0; t < T; t++) {
			double s = 0;
			for (int i = 0; i < dc; i++)
				s += (double)ql[(size_t)h * dc + i] * v[(size_t)t * dk + i];
			for (int j = 0; j < dr; j++)
				s += (double)qp[(size_t)h * dr + j] * v[(size_t)t * dk + dc + j];
			sc[t] = s * scale;
			mx = fmax(mx, sc[t]);
		}
		for (int i = 0; i < dc; i++)
			o[i] = 0;
		for (int t = 0; t < T; t++) {
			double p = exp(sc[t] - mx);
			l += p;
			for (int i = 0; i < dc; i++)
				o[i] += p * v[(size_t)t * dk + i];
		}
		for (int i = 0; i < dc; i++)
			o[i] /= l;
	}
	free(v);
	free(sc);
}

/* max over heads of max_i |a - b| / max_i |b| */
static double head_err(const float *a, const double *b, int H, int dc)
{
	double w = 0;
	for (int h = 0; h < H; h++) {
		double e = 0, m = 0;
		for (int i = 0; i < dc; i++) {
			e = fmax(e, fabs(a[(size_t)h * dc + i] - b[(size_t)h * dc + i]));
			m = fmax(m, fabs(b[(size_t)h * dc + i]));
		}
		w = fmax(w, m > 0 ? e / m : e);
	}
	return w;
}

static void fp8_case(int H, int dc, int dr, int L, int pos, int kind)
{
	int T = pos + 1;
	size_t rb = mla_record_bytes(MLA_CACHE_FP8, dc, dr);
	size_t bank_bytes = OFF + mla_lanes_bytes(T, L, MLA_CACHE_FP8, dc, dr);
	size_t n = (size_t)H * dc;
	float *c = malloc((size_t)T * dc * 4), *kpe = malloc((size_t)T * (dr ? dr : 1) * 4);
	float *ql = malloc(n * 4), *qp = malloc((size_t)H * (dr ? dr : 1) * 4);
	float *o8 = malloc(n * 4), *o32 = malloc(n * 4), *orule = malloc(n * 4);
	double *ref = malloc(n * 8), *d32 = malloc(n * 8);
	uint8_t *cache = malloc((size_t)T * rb), *bank[MLA_MAX_LANES] = {0};
	float qmag = kind_qmag[kind], scale = 0.1352338f;
	for (int i = 0; i < L; i++)
		bank[i] = calloc(bank_bytes, 1);
	for (size_t i = 0; i < (size_t)T * dc; i++)
		c[i] = normal();
	for (size_t i = 0; i < (size_t)T * dr; i++)
		kpe[i] = normal();
	for (size_t i = 0; i < n; i++)
		ql[i] = normal() * qmag;
	for (size_t i = 0; i < (size_t)H * dr; i++)
		qp[i] = normal() * qmag;
	CHECK_RC(mla_kv_append(c, kpe, cache, 0, T, dc, dr, MLA_CACHE_FP8), "append");
	CHECK_RC(mla_kv_append_lanes(c, kpe, bank, L, OFF, 0, T, dc, dr, MLA_CACHE_FP8),
		 "append lanes");
	const uint8_t *const *cb = (const uint8_t *const *)bank;
	CHECK_RC(mla_attn_lanes_run(ql, dr ? qp : NULL, cb, L, OFF, o8, pos, H, dc, dr,
				    MLA_CACHE_FP8 | MLA_ATTN_FP8, scale),
		 "FP8 datapath H=%d dc=%d dr=%d L=%d pos=%d", H, dc, dr, L, pos);
	CHECK_RC(mla_attn_lanes_run(ql, dr ? qp : NULL, cb, L, OFF, o32, pos, H, dc, dr,
				    MLA_CACHE_FP8 | MLA_ATTN_F32, scale),
		 "f32 datapath");
	fp8_rule(ql, qp, cache, T, L, H, dc, dr, scale, orule);
	CHECK(!memcmp(o8, orule, n * 4),
	      "FP8 datapath bit-identical to the documented rule (H=%d dc=%d dr=%d L=%d pos=%d)", H,
	      dc, dr, L, pos);
	ref_double(ql, qp, cache, T, H, dc, dr, scale, ref);
	for (size_t i = 0; i < n; i++)
		d32[i] = o32[i];
	double er = head_err(o8, ref, H, dc), e32 = head_err(o8, d32, H, dc);
	double e32r = head_err(o32, ref, H, dc);
	CHECK(er <= kind_tol[kind], "FP8 datapath vs double H=%d L=%d pos=%d %s: %.3g", H, L, pos,
	      kind_name[kind], er);
	CHECK(e32 <= kind_tol[kind], "FP8 datapath vs f32 datapath H=%d L=%d pos=%d %s: %.3g", H, L,
	      pos, kind_name[kind], e32);
	worst_ref[kind] = fmax(worst_ref[kind], er);
	worst_f32[kind] = fmax(worst_f32[kind], e32);
	worst_f32ref[kind] = fmax(worst_f32ref[kind], e32r);
	for (int i = 0; i < L; i++)
		free(bank[i]);
	free(c);
	free(kpe);
	free(ql);
	free(qp);
	free(o8);
	free(o32);
	free(orule);
	free(ref);
	free(d32);
	free(cache);
}

/* hls_bquant.h against double arithmetic: the exponent of a group, the rounding (ties to even,
 * subnormals, the clamp, NaN and infinities) and the powers of two. */
static void bq_unit(void)
{
	int bad = 0, n = 0;
	CHECK(hls_bq_exp(1.0f) == 1 - HLS_BQ_BITS && hls_bq_exp(0.0f) == -125 - HLS_BQ_BITS &&
		  hls_bq_exp(0x1p-140f) == -125 - HLS_BQ_BITS &&
		  hls_bq_exp(INFINITY) == 128 - HLS_BQ_BITS &&
		  hls_bq_exp(0x1.fffffep7f) == 8 - HLS_BQ_BITS,
	      "hls_bq_exp: the amax's binary exponent - HLS_BQ_BITS + 1 (-126 floor, 127 cap)");
	for (int i = 0; i < 200000; i++) {
		float amax = ldexpf((float)(1.0 + unif()), (int)(unif() * 300) - 150);
		float x = (float)((unif() * 2 - 1) * amax);
		if (i % 4 == 1) /* a tie at the rounding point */
			x = ldexpf((float)((int)(unif() * 2000) + 0.5), hls_bq_exp(amax));
		if (i % 4 == 2)
			x = amax * (i & 8 ? -1 : 1);
		int k = hls_bq_exp(fabsf(x) > amax ? fabsf(x) : amax);
		double v = rint(ldexp((double)x, -k)); /* exact, then ties to even */
		v = v > HLS_BQ_MAX ? HLS_BQ_MAX : v < -HLS_BQ_MAX ? -HLS_BQ_MAX : v;
		n++;
		bad += hls_bq_int(x, k) != (int32_t)v;
	}
	CHECK(bad == 0, "hls_bq_int = rint(x / 2^k) clamped on %d values: %d differ", n, bad);
	int k0 = hls_bq_exp(0x1.fffp10f); /* 2047.5 at k = 0 rounds to 2048: clamped */
	CHECK(HLS_BQ_BITS != 11 || (k0 == 0 && hls_bq_int(0x1.fffp10f, 0) == 2047 &&
				    hls_bq_int(-0x1.fffp10f, 0) == -2047),
	      "the amax rounding up to 2^HLS_BQ_BITS is clamped");
	CHECK(hls_bq_int(NAN, 0) == 0 && hls_bq_int(INFINITY, 3) == HLS_BQ_MAX &&
		  hls_bq_int(-INFINITY, 3) == -HLS_BQ_MAX && hls_bq_int(0x1p-149f, -136) == 0 &&
		  hls_bq_int(0x1p-140f, -150) == 1024 && hls_bq_int(-0.0f, -5) == 0,
	      "hls_bq_int: NaN 0, infinities the clamp, subnormals exact");
	bad = 0;
	for (int e = -149; e <= 127; e++)
		bad += hls_pow2i(e) != ldexpf(1.0f, e);
	CHECK(bad == 0, "hls_pow2i(n) = 2^n for n in -149..127");
}

static void bad_args(void)
{
	static float q[4096], o[4096];
	static uint8_t b0[1 << 16];
	const uint8_t *bank[1] = {b0};
	int bad = 0, nc = 0;
	struct hls_build b;
	hls_build_default(&b);
#define REJ(call) (nc++, bad += (call) != -22)
	REJ(mla_attn_lanes_run(q, q, bank, 1, 0, o, 0, 1, 128, 16, MLA_CACHE_F32 | MLA_ATTN_FP8,
			       1.0f));
	REJ(mla_attn_lanes_run(q, q, bank, 1, 0, o, 0, 1, 128, 16, MLA_CACHE_BF16 | MLA_ATTN_FP8,
			       1.0f));
	REJ(mla_attn_lanes_run(q, q, bank, 1, 0, o, 0, 1, 128, 16, MLA_CACHE_FP8 | 0x200, 1.0f));
	REJ(mla_attn_lanes_run(q, q, bank, 1, 0, o, 0, 1, 128, 16, -1, 1.0f));
	REJ(mla_attn_lanes_cycles2(&b, 1, 0, 1, 128, 16, MLA_CACHE_BF16 | MLA_ATTN_FP8, 64, 256,
				   NULL));
	REJ(mla_attn_lanes_cycles2(&b, 1, 0, 1, 128, 16, MLA_CACHE_FP8 | 0x300, 64, 256, NULL));
	REJ(mla_attn_lanes_cycles2(&b, 1, 0, 1, 128, 16, MLA_CACHE_FP8 | MLA_ATTN_FP8, 64, 64,
				   NULL));
	REJ(mla_attn_lanes_cycles2(&b, 1, 0, 1, 128, 16, MLA_CACHE_FP8 | MLA_ATTN_FP8, 64, 8192,
				   NULL));
	REJ(mla_attn_lanes_cycles2(&b, 1, 0, 1, 128, 16, MLA_CACHE_FP8 | MLA_ATTN_FP8, 64, 384,
				   NULL));
#undef REJ
	CHECK(bad == 0, "%d of %d bad FP8-mode calls not rejected with -EINVAL", bad, nc);
}

/* The 671B layer at context 4096 on 32 lanes: FP8 datapath (f32 rope and softmax at 32 MACs)
 * against the f32 datapath at 32 MACs per lane. */
static void timing(void)
{
	struct hls_build b;
	hls_build_default(&b);
	int L = 32, pos = 4095, H = 128, dc = 512, dr = 64, fmt = MLA_CACHE_FP8;
	double us = 1.0 / b.clock_mhz;
	struct mla_attn_cost c32, c;
	int64_t f32 = mla_attn_lanes_cycles2(&b, L, pos, H, dc, dr, fmt, 32, 256, &c32);
	CHECK(f32 == mla_attn_lanes_cycles(&b, L, pos, H, dc, dr, fmt, 32, NULL),
	      "f32 mode: cycles2 = cycles");
	printf("mla_attn_lanes modeled, FP8 records, 128 heads, ctx 4096, dc 512, dr 64, %d lanes, "
	       "us per layer: f32 datapath at 32 MACs/lane %.1f (lane stream %.1f);\n  FP8 "
	       "datapath, rope + softmax at 32 f32 MACs/lane:",
	       L, (double)f32 * us, (double)c32.lane_cycles * us);
	static const int im[] = {128, 256, 512};
	int64_t prev = f32;
	for (int k = 0; k < 3; k++) {
		int64_t cy = mla_attn_lanes_cycles2(&b, L, pos, H, dc, dr, fmt | MLA_ATTN_FP8, 32,
						    im[k], &c);
		uint64_t T = (uint64_t)pos + 1, it = c.it[HLS_L_LATT_ISCORE];
		printf(
		    "  imacs %d: %.1f (lane stream %.1f; per lane per chunk: int score %llu, rope "
		    "%llu, softmax %llu, w quant %llu, int sum %llu)",
		    im[k], (double)cy * us, (double)c.lane_cycles * us,
		    (unsigned long long)(it / (T / MLA_TB)),
		    (unsigned long long)(c.it[HLS_L_LATT_SCORE] / (T / MLA_TB)),
		    (unsigned long long)(c.it[HLS_L_LATT_SOFTMAX] / (T / MLA_TB)),
		    (unsigned long long)(c.it[HLS_L_LATT_WQUANT] / (T / MLA_TB)),
		    (unsigned long long)(c.it[HLS_L_LATT_IACC] / (T / MLA_TB)));
		CHECK(cy > 0 && cy < prev, "imacs %d faster than the previous width", im[k]);
		CHECK(c.bytes == c32.bytes, "same bytes moved as the f32 datapath");
		prev = cy;
	}
	printf("\n");
}

int main(void)
{
	/* {H, dc, dr, L, pos, kind} */
	static const int cs[][6] = {
	    {1, 128, 16, 1, 0, K_RANDOM},      {1, 512, 64, 3, 300, K_SHARP},
	    {16, 256, 32, 3, 100, K_RANDOM},   {16, 128, 0, 32, 300, K_EXTREME},
	    {16, 512, 64, 1, 31, K_EXTREME},   {16, 512, 64, 32, 33, K_SHARP},
	    {128, 512, 64, 32, 300, K_RANDOM}, {128, 512, 64, 3, 130, K_SHARP},
	    {128, 512, 64, 1, 200, K_EXTREME},
	};
	for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++)
		fp8_case(cs[i][0], cs[i][1], cs[i][2], cs[i][3], cs[i][4], cs[i][5]);
	printf("mla_attn_lanes FP8 datapath: bit-identical to the documented rule F1-F5 on %zu "
	       "cases\n",
	       sizeof cs / sizeof cs[0]);
	for (int k = 0; k < K_N; k++)
		printf(
		    "  %-7s (q ~ %.1f): worst max|out - ref| / max|ref| per head vs a double "
		    "attention over the same records %.3g, vs the f32 datapath %.3g (limit %.0e; "
		    "the f32 datapath vs double %.3g)\n",
		    kind_name[k], kind_qmag[k], worst_ref[k], worst_f32[k], kind_tol[k],
		    worst_f32ref[k]);
	bq_unit();
	bad_args();
	timing();
	return harness_done();
}
