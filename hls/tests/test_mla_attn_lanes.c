/*
 * test_mla_attn_lanes.c - C simulation of the lane-striped MLA decode attention and its append:
 * for F32, BF16 and FP8 records, 1..32 lanes, positions 0..300 (partial blocks, lanes holding no
 * token) and 1..128 heads, the striped records are byte-identical to mla_kv_append's; the output
 * is compared with a double-precision reference over the dequantized cache (mla_attn's bound) and
 * with mla_attn on the same records unstriped (f32 reordering only; bit-identical with one lane or
 * one block); NaN propagation; argument checks; the modeled cost of a 671B layer at context 4096.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "e4m3.h"
#include "hls/mla_attn/mla_attn.h"
#include "tests/harness.h"

#define ATTN_TOL 2e-5	 /* vs the double reference: max |out - ref| / max |ref| per head */
#define REORDER_TOL 4e-6 /* vs mla_attn: max |out - old| / max |old| per head */
#define OFF 192		 /* cache_off used in the tests (the banks hold other data before it) */
#define FILL 0xA5	 /* bank bytes no record may touch */

static double worst_ref[3], worst_old[3];
#define TEST_RNG_SEED 0x2545F4914F6CDD1Dull
#include "test_rng.h"

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

/* double-precision attention of one head over T dequantized records v [T][dc + dr] */
static void ref_head(const float *qh, const float *ph, const double *v, int T, int dc, int dr,
		     float scale, double *sc, double *ref)
{
	double mx = -INFINITY, l = 0;
	for (int t = 0; t < T; t++) {
		double s = 0;
		for (int i = 0; i < dc; i++)
			s += (double)qh[i] * v[(size_t)t * (dc + dr) + i];
		for (int j = 0; j < dr; j++)
			s += (double)ph[j] * v[(size_t)t * (dc + dr) + dc + j];
		sc[t] = s * scale;
		mx = fmax(mx, sc[t]);
	}
	for (int i = 0; i < dc; i++)
		ref[i] = 0;
	for (int t = 0; t < T; t++) {
		double p = exp(sc[t] - mx);
		l += p;
		for (int i = 0; i < dc; i++)
			ref[i] += p * v[(size_t)t * (dc + dr) + i];
	}
	for (int i = 0; i < dc; i++)
		ref[i] /= l;
}

/* max |a - b| / max |b| (0 when b is all zero) */
static double rel_err(const float *a, const double *b, int n)
{
	double e = 0, m = 0;
	for (int i = 0; i < n; i++) {
		e = fmax(e, fabs(a[i] - b[i]));
		m = fmax(m, fabs(b[i]));
	}
	return m > 0 ? e / m : e;
}

enum { K_RANDOM, K_PEAKY, K_NAN };

static void lanes_case(int H, int dc, int dr, int fmt, int L, int pos, int kind)
{
	int T = pos + 1, nan_head = 1 % H;
	size_t rb = mla_record_bytes(fmt, dc, dr), lb = mla_lanes_bytes(T, L, fmt, dc, dr);
	size_t bank_bytes = OFF + lb + 64;
	float *c = malloc((size_t)T * dc * 4), *kpe = malloc((size_t)T * (dr ? dr : 1) * 4);
	float *ql = malloc((size_t)H * dc * 4), *qp = malloc((size_t)H * (dr ? dr : 1) * 4);
	float *o1 = malloc((size_t)H * dc * 4), *o2 = malloc((size_t)H * dc * 4);
	uint8_t *cache = malloc((size_t)T * rb), *bank[MLA_MAX_LANES] = {0};
	uint8_t *mask = calloc((size_t)L * bank_bytes, 1); /* bytes records may occupy */
	double *v = malloc((size_t)T * (dc + dr) * 8), *sc = malloc((size_t)T * 8);
	double *ref = malloc((size_t)dc * 8), *old = malloc((size_t)dc * 8);
	float qmag = kind == K_PEAKY ? 3.0f : 0.3f;
	for (int i = 0; i < L; i++) {
		bank[i] = malloc(bank_bytes);
		memset(bank[i], FILL, bank_bytes);
	}
	for (size_t i = 0; i < (size_t)T * dc; i++)
		c[i] = normal();
	for (size_t i = 0; i < (size_t)T * dr; i++)
		kpe[i] = normal();
	for (size_t i = 0; i < (size_t)H * dc; i++)
		ql[i] = normal() * qmag;
	for (size_t i = 0; i < (size_t)H * dr; i++)
		qp[i] = normal() * qmag;
	if (kind == K_NAN)
		ql[(size_t)nan_head * dc + 3] = NAN;

	/* unstriped append in one call; striped append in pieces crossing block boundaries */
	CHECK_RC(mla_kv_append(c, kpe, cache, 0, T, dc, dr, fmt), "mla_kv_append T=%d", T);
	int rc = 0;
	for (int t0 = 0; t0 < T;) {
		int n = 1 + (int)(rnext() % 70);
		if (n > T - t0)
			n = T - t0;
		rc |= mla_kv_append_lanes(c + (size_t)t0 * dc, dr ? kpe + (size_t)t0 * dr : NULL,
					  bank, L, OFF, t0, n, dc, dr, fmt);
		t0 += n;
	}
	CHECK_EQ(rc, 0, "mla_kv_append_lanes L=%d T=%d", L, T);
	int recbad = 0, fillbad = 0;
	for (int t = 0; t < T; t++) {
		int b = t / MLA_TB, ln = b % L;
		size_t at = OFF + ((size_t)(b / L) * MLA_TB + t % MLA_TB) * rb;
		recbad += memcmp(bank[ln] + at, cache + (size_t)t * rb, rb) != 0;
		memset(mask + (size_t)ln * bank_bytes + at, 1, rb);
	}
	for (int i = 0; i < L; i++)
		for (size_t k = 0; k < bank_bytes; k++)
			fillbad += !mask[(size_t)i * bank_bytes + k] && bank[i][k] != FILL;
	CHECK(!recbad && !fillbad,
	      "striped records: %d of %d differ from mla_kv_append's, %d bytes written outside "
	      "records (fmt %d L %d T %d)",
	      recbad, T, fillbad, fmt, L, T);

	float scale = 0.1352338f;
	CHECK_RC(mla_attn(ql, dr ? qp : NULL, cache, o1, 1, pos, H, dc, dr, fmt, scale),
		 "mla_attn");
	CHECK_RC(mla_attn_lanes_run(ql, dr ? qp : NULL, (const uint8_t *const *)bank, L, OFF, o2,
				    pos, H, dc, dr, fmt, scale),
		 "mla_attn_lanes H=%d dc=%d dr=%d fmt=%d L=%d pos=%d", H, dc, dr, fmt, L, pos);
	for (int t = 0; t < T; t++)
		deq(cache + (size_t)t * rb, fmt, dc, dr, v + (size_t)t * (dc + dr));
	double wref = 0, wold = 0;
	int nanbad = 0;
	for (int h = 0; h < H; h++) {
		const float *o = o2 + (size_t)h * dc;
		if (kind == K_NAN) {
			for (int i = 0; i < dc; i++)
				nanbad += (h == nan_head) != (isnan(o[i]) != 0);
			if (h == nan_head)
				continue;
		}
		ref_head(ql + (size_t)h * dc, qp + (size_t)h * dr, v, T, dc, dr, scale, sc, ref);
		for (int i = 0; i < dc; i++)
			old[i] = o1[(size_t)h * dc + i];
		wref = fmax(wref, rel_err(o, ref, dc));
		wold = fmax(wold, rel_err(o, old, dc));
	}
	CHECK(nanbad == 0, "%d outputs with the wrong NaN-ness (only head %d should be NaN)",
	      nanbad, nan_head);
	CHECK(wref <= ATTN_TOL, "vs double reference H=%d dc=%d dr=%d fmt=%d L=%d pos=%d: %.3g", H,
	      dc, dr, fmt, L, pos, wref);
	CHECK(wold <= REORDER_TOL, "vs mla_attn H=%d dc=%d dr=%d fmt=%d L=%d pos=%d: %.3g", H, dc,
	      dr, fmt, L, pos, wold);
	if (L == 1 || T <= MLA_TB) /* one partial: the merge multiplies by w_0 = 1 */
		CHECK(
		    !memcmp(o1, o2, (size_t)H * dc * 4),
		    "one lane holding tokens: bit-identical to mla_attn (H=%d fmt=%d L=%d pos=%d)",
		    H, fmt, L, pos);
	if (wref > worst_ref[fmt])
		worst_ref[fmt] = wref;
	if (wold > worst_old[fmt])
		worst_old[fmt] = wold;
	for (int i = 0; i < L; i++)
		free(bank[i]);
	free(c);
	free(kpe);
	free(ql);
	free(qp);
	free(o1);
	free(o2);
	free(cache);
	free(mask);
	free(v);
	free(sc);
	free(ref);
	free(old);
}

static void bad_args(void)
{
	float q[4096] = {0}, o[4096];
	static uint8_t b0[1 << 16];
	uint8_t *bank[MLA_MAX_LANES];
	for (int i = 0; i < MLA_MAX_LANES; i++)
		bank[i] = b0;
	const uint8_t *const *cb = (const uint8_t *const *)bank;
	int bad = 0, n = 0;
#define REJ(call) (n++, bad += (call) != -22)
	REJ(mla_attn_lanes_run(q, q, cb, 0, 0, o, 0, 1, 128, 16, 0, 1.0f));
	REJ(mla_attn_lanes_run(q, q, cb, MLA_MAX_LANES + 1, 0, o, 0, 1, 128, 16, 0, 1.0f));
	REJ(mla_attn_lanes_run(q, q, cb, 1, 0, o, -1, 1, 128, 16, 0, 1.0f));
	REJ(mla_attn_lanes_run(q, q, cb, 1, 0, o, MLA_MAX_T, 1, 128, 16, 0, 1.0f));
	REJ(mla_attn_lanes_run(q, q, cb, 1, 0, o, 0, 0, 128, 16, 0, 1.0f));
	REJ(mla_attn_lanes_run(q, q, cb, 1, 0, o, 0, MLA_MAX_H + 1, 128, 16, 0, 1.0f));
	REJ(mla_attn_lanes_run(q, q, cb, 1, 0, o, 0, 1, 600, 16, 0, 1.0f));
	REJ(mla_attn_lanes_run(q, q, cb, 1, 0, o, 0, 1, 100, 16, MLA_CACHE_FP8, 1.0f));
	REJ(mla_attn_lanes_run(q, q, cb, 1, 0, o, 0, 1, 128, 16, 3, 1.0f));
	REJ(mla_attn_lanes_run(q, NULL, cb, 1, 0, o, 0, 1, 128, 16, 0, 1.0f));
	REJ(mla_attn_lanes_run(NULL, q, cb, 1, 0, o, 0, 1, 128, 16, 0, 1.0f));
	REJ(mla_attn_lanes_run(q, q, NULL, 1, 0, o, 0, 1, 128, 16, 0, 1.0f));
	REJ(mla_attn_lanes_run(q, q, cb, 1, 0, NULL, 0, 1, 128, 16, 0, 1.0f));
	bank[1] = NULL; /* lane 1 holds block 1 (tokens 32..63) */
	REJ(mla_attn_lanes_run(q, q, cb, 2, 0, o, 40, 1, 128, 16, 0, 1.0f));
	REJ(mla_kv_append_lanes(q, q, bank, 2, 0, 30, 5, 128, 16, 0));
	REJ(mla_kv_append_lanes(q, q, bank, 0, 0, 0, 1, 128, 16, 0));
	REJ(mla_kv_append_lanes(q, q, bank, 1, 0, 0, 0, 128, 16, 0));
	REJ(mla_kv_append_lanes(q, q, bank, 1, 0, -1, 1, 128, 16, 0));
	REJ(mla_kv_append_lanes(q, q, bank, 1, 0, MLA_MAX_T, 1, 128, 16, 0));
	REJ(mla_kv_append_lanes(q, q, bank, 1, 0, 0, 1, 128, 16, 7));
	REJ(mla_kv_append_lanes(q, NULL, bank, 1, 0, 0, 1, 128, 16, 0));
	REJ(mla_kv_append_lanes(q, q, NULL, 1, 0, 0, 1, 128, 16, 0));
#undef REJ
	CHECK(bad == 0, "%d of %d bad-argument calls not rejected with -EINVAL", bad, n);
	/* a lane holding no token may be NULL */
	CHECK_RC(mla_attn_lanes_run(q, q, cb, 2, 0, o, 31, 1, 128, 16, 0, 1.0f), "lane 1 unused");
	CHECK_RC(mla_kv_append_lanes(q, q, bank, 2, 0, 0, 32, 128, 16, 0), "lane 1 unused");
	CHECK(mla_lanes_bytes(0, 1, 0, 128, 16) == 0 && mla_lanes_bytes(1, 33, 0, 128, 16) == 0 &&
		  mla_lanes_bytes(1, 1, 9, 128, 16) == 0 &&
		  mla_lanes_bytes(4096, 32, MLA_CACHE_F32, 512, 64) == 4 * MLA_TB * 2304 &&
		  mla_lanes_bytes(4097, 32, MLA_CACHE_F32, 512, 64) == 5 * MLA_TB * 2304 &&
		  mla_lanes_bytes(33, 3, MLA_CACHE_FP8, 512, 64) == MLA_TB * 656,
	      "mla_lanes_bytes");
}

/* The 671B layer at context 4096: 128 heads, dc 512, dr 64, 32 lanes of 14.4 GB/s. */
static void timing(void)
{
	struct hls_build b;
	hls_build_default(&b);
	static const int macs[] = {16, 32, 64, 128};
	static const char *fname[3] = {"f32", "bf16", "fp8"};
	int L = 32, pos = 4095, H = 128, dc = 512, dr = 64;
	double us = 1.0 / b.clock_mhz;
	printf("mla_attn_lanes modeled, 128 heads, ctx 4096, dc 512, dr 64, %d lanes of %.1f GB/s, "
	       "us per layer (mla_attn on one bank in brackets):\n",
	       L, b.bank_gbps);
	for (int fmt = 0; fmt < 3; fmt++) {
		struct mla_attn_cost old, c;
		int64_t oc = mla_attn_cycles(&b, 1, pos, H, dc, dr, fmt, &old);
		uint64_t cache = (uint64_t)(pos + 1) * mla_record_bytes(fmt, dc, dr);
		printf("  %-4s [%7.1f]", fname[fmt], (double)oc * us);
		for (int k = 0; k < 4; k++) {
			int64_t cy = mla_attn_lanes_cycles(&b, L, pos, H, dc, dr, fmt, macs[k], &c);
			double mem_us = (double)hls_mem_cycles(&b, c.lane_bytes_max) * us;
			printf("  macs %3d: %7.1f (lane stream %.1f, its bytes %.1f)", macs[k],
			       (double)cy * us, (double)c.lane_cycles * us, mem_us);
			CHECK(cy > 0 && c.bytes == cache + (uint64_t)H * (dc + dr) * 4 +
						       (uint64_t)H * dc * 4,
			      "cache read once: bytes %llu = cache %llu + q + out",
			      (unsigned long long)c.bytes, (unsigned long long)cache);
			CHECK(c.lane_bytes_max * (uint64_t)L == cache, "lanes evenly loaded");
			CHECK(c.macs == (uint64_t)H * (pos + 1) * (2 * dc + dr), "macs");
		}
		printf("\n");
		CHECK(old.bytes > 7 * cache, "mla_attn re-reads the cache per head group");
	}
	struct mla_attn_cost c1, c2;
	int64_t a = mla_attn_lanes_cycles(&b, 32, pos, H, dc, dr, 0, 64, &c1);
	int64_t a2 = mla_attn_lanes_cycles(&b, 32, pos, H, dc, dr, 0, 128, &c2);
	CHECK(a2 < a, "twice the compute width is faster at 128 heads (%lld vs %lld cycles)",
	      (long long)a2, (long long)a);
	CHECK(mla_attn_lanes_cycles(&b, 32, pos, H, dc, dr, 0, 48, NULL) == -22 &&
		  mla_attn_lanes_cycles(&b, 32, pos, H, dc, dr, 0, 0, NULL) == -22 &&
		  mla_attn_lanes_cycles(&b, 33, pos, H, dc, dr, 0, 64, NULL) == -22 &&
		  mla_attn_lanes_cycles(NULL, 32, pos, H, dc, dr, 0, 64, NULL) == -22,
	      "timing model rejects bad arguments");
}

/* Several queries in one call (mla_attn_lanes_rows_run): rows on different slots and contexts
 * (one slot's rows at consecutive positions, as a prompt) give each row's single-query output
 * bit for bit; a bad row fails the call with nothing written; the modeled cycles of R rows lie
 * between one row's and R calls'. */
static void rows_case(int H, int dc, int dr, int fmt, int L)
{
	enum { S = 3, R = 6, CAP = 100 };
	static const uint32_t rows[R][2] = {{0, 5}, {2, 70}, {1, 33}, {2, 71}, {2, 72}, {0, 100}};
	int row = dc + dr;
	uint64_t sb = mla_lanes_bytes(CAP, L, fmt & 0xFF, dc, dr) + 64, lb = OFF + S * sb;
	uint8_t *bank[MLA_MAX_LANES] = {0};
	float *c = malloc((size_t)CAP * dc * 4), *kpe = malloc((size_t)CAP * (dr ? dr : 1) * 4);
	float *q = malloc((size_t)R * H * row * 4), *ql = malloc((size_t)H * dc * 4);
	float *qp = malloc((size_t)H * (dr ? dr : 1) * 4), *o = malloc((size_t)R * H * dc * 4);
	float *o1 = malloc((size_t)H * dc * 4);
	for (int i = 0; i < L; i++)
		bank[i] = calloc(lb, 1);
	for (int s = 0; s < S; s++) { /* each slot its own cache */
		for (size_t i = 0; i < (size_t)CAP * dc; i++)
			c[i] = normal();
		for (size_t i = 0; i < (size_t)CAP * dr; i++)
			kpe[i] = normal();
		CHECK_RC(mla_kv_append_lanes(c, dr ? kpe : NULL, bank, L, OFF + s * sb, 0, CAP, dc,
					     dr, fmt & 0xFF),
			 "append slot %d", s);
	}
	for (size_t i = 0; i < (size_t)R * H * row; i++)
		q[i] = normal() * 0.5f;
	uint32_t tab[2 * R];
	memcpy(tab, rows, sizeof tab);
	int rc = mla_attn_lanes_rows_run(q, tab, R, (const uint8_t *const *)bank, L, lb, OFF, sb,
					 CAP, o, H, dc, dr, fmt, 0.07f);
	int same = rc == 0;
	for (int r = 0; r < R && same; r++) {
		for (int h = 0; h < H; h++) {
			memcpy(ql + (size_t)h * dc, q + ((size_t)r * H + h) * row, (size_t)dc * 4);
			memcpy(qp + (size_t)h * dr, q + ((size_t)r * H + h) * row + dc,
			       (size_t)dr * 4);
		}
		same &= mla_attn_lanes_run(ql, dr ? qp : NULL, (const uint8_t *const *)bank, L,
					   OFF + rows[r][0] * sb, o1, (int)rows[r][1] - 1, H, dc,
					   dr, fmt, 0.07f) == 0;
		same &= !memcmp(o1, o + (size_t)r * H * dc, (size_t)H * dc * 4);
	}
	CHECK(same, "rows: H=%d dc=%d dr=%d fmt=0x%x L=%d: %d rows equal %d single calls (rc %d)",
	      H, dc, dr, fmt, L, R, R, rc);
	/* bad rows: a context past the capacity, a slot past the banks; nothing written */
	memset(o, 0x5A, (size_t)R * H * dc * 4);
	tab[2 * 3 + 1] = CAP + 1;
	int r1 = mla_attn_lanes_rows_run(q, tab, R, (const uint8_t *const *)bank, L, lb, OFF, sb,
					 CAP, o, H, dc, dr, fmt, 0.07f);
	tab[2 * 3 + 1] = 5;
	tab[2 * 4] = S;
	int r2 = mla_attn_lanes_rows_run(q, tab, R, (const uint8_t *const *)bank, L, lb, OFF, sb,
					 CAP, o, H, dc, dr, fmt, 0.07f);
	int untouched = 1;
	for (size_t i = 0; i < (size_t)R * H * dc * 4; i++)
		untouched &= ((uint8_t *)o)[i] == 0x5A;
	CHECK(r1 == -EINVAL && r2 == -EINVAL && untouched,
	      "rows: a bad context or slot fails the call, nothing written (%d %d)", r1, r2);
	/* timing: between one row and R separate calls */
	struct hls_build b;
	hls_build_default(&b);
	memcpy(tab, rows, sizeof tab);
	int64_t all = mla_attn_lanes_rows_cycles(&b, L, tab, R, H, dc, dr, fmt, MLA_LANE_MACS,
						 MLA_LANE_IMACS, NULL),
		sum = 0, most = 0, lanes = 0, merges = 0, hidden = 0, merge0 = 0;
	for (int r = 0; r < R; r++) {
		struct mla_attn_cost oc;
		int64_t one = mla_attn_lanes_cycles2(&b, L, (int)rows[r][1] - 1, H, dc, dr, fmt,
						     MLA_LANE_MACS, MLA_LANE_IMACS, &oc);
		int64_t ln = (int64_t)oc.lane_cycles, mg = one - ln;
		sum += one;
		most = one > most ? one : most;
		lanes += ln;
		merges += mg;
		hidden += r ? (ln < merge0 ? ln : merge0) : 0; /* what the pipeline can overlap */
		merge0 = mg;
	}
	CHECK(all > most && all < sum,
	      "rows timing: %lld cycles, between one row's %lld and %d "
	      "calls' %lld",
	      (long long)all, (long long)most, R, (long long)sum);
	/* the f32 datapath in one pass pipelines the rows through the lanes and the merge (two
	 * accumulator banks): no faster than either stage alone, and the row before's merge
	 * behind each later row's lanes (the rows' table read aside) */
	if (MLA_ROWS_PINGPONG && (fmt & ~0xFF) != MLA_ATTN_FP8)
		CHECK(all >= (lanes > merges ? lanes : merges) - (int64_t)R * 64 &&
			  all <= sum - hidden + (int64_t)b.mem_latency + 64, /* + the table read */
		      "rows pipeline: %lld cycles, lanes %lld, merges %lld, %d calls %lld, "
		      "overlappable %lld",
		      (long long)all, (long long)lanes, (long long)merges, R, (long long)sum,
		      (long long)hidden);
	for (int i = 0; i < L; i++)
		free(bank[i]);
	free(c);
	free(kpe);
	free(q);
	free(ql);
	free(qp);
	free(o);
	free(o1);
}

int main(void)
{
	static const int Ls[] = {1, 3, 8, 32}, poss[] = {0, 31, 32, 100, 257, 300};
	rows_case(16, 256, 64, MLA_CACHE_F32, 32);
	rows_case(5, 128, 16, MLA_CACHE_BF16, 3);
	rows_case(16, 256, 32, MLA_CACHE_FP8 | MLA_ATTN_FP8, 8);
	struct {
		int H, dc, dr;
	} small[] = {{1, 128, 16}, {16, 256, 32}, {5, 512, 0}};
	for (int fmt = 0; fmt < 3; fmt++) {
		for (size_t s = 0; s < sizeof small / sizeof small[0]; s++)
			for (int li = 0; li < 4; li++)
				for (int pi = 0; pi < 6; pi++)
					lanes_case(small[s].H, small[s].dc, small[s].dr, fmt,
						   Ls[li], poss[pi],
						   (li + pi) % 3 == 1 ? K_PEAKY : K_RANDOM);
		lanes_case(16, 128, 16, fmt, 3, 140, K_NAN);
		/* the 671B shape */
		lanes_case(128, 512, 64, fmt, 1, 40, K_RANDOM);
		lanes_case(128, 512, 64, fmt, 3, 100, K_PEAKY);
		lanes_case(128, 512, 64, fmt, 8, 130, K_RANDOM);
		lanes_case(128, 512, 64, fmt, 32, 40, K_RANDOM);
		lanes_case(128, 512, 64, fmt, 32, 200, K_RANDOM);
	}
	printf("mla_attn_lanes: worst |out - ref| / max|ref| per head vs a double reference: F32 "
	       "%.3g, BF16 %.3g, FP8 %.3g (limit %.0e)\n",
	       worst_ref[0], worst_ref[1], worst_ref[2], ATTN_TOL);
	printf("mla_attn_lanes: worst |out - mla_attn| / max|mla_attn| per head: F32 %.3g, BF16 "
	       "%.3g, FP8 %.3g (limit %.0e); striped records byte-identical\n",
	       worst_old[0], worst_old[1], worst_old[2], REORDER_TOL);
	bad_args();
	timing();
	return harness_done();
}
