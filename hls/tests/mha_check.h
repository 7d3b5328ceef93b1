/*
 * mha_check.h - the checks of mla_attn_lanes' MHA mode (the non-absorbed form) at the including
 * test's build widths: loop counts against mla_attn_mha_cycles on a grid of shapes, outputs
 * bit-identical at every L (no merge), bit-identical to mla_attn_lanes_run on one lane over
 * records [v | k] with q_lat = 0 (where vd % MLA_DL == 0 and dk <= MLA_MAX_DR), and close to a
 * double-precision reference. The including test #defines HLS_COUNT and #includes mla_attn.c,
 * mla_attn_lanes.c and timing_check.h first.
 */
#ifndef MOECARD_MHA_CHECK_H
#define MOECARD_MHA_CHECK_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static float mc_val(unsigned i, unsigned salt, float span)
{
	unsigned x = i * 2654435761u ^ salt * 40503u;
	x ^= x >> 13;
	x *= 0x5bd1e995u;
	x ^= x >> 15;
	return ((float)(x % 2001u) - 1000.0f) / 1000.0f * span;
}

struct mc_case {
	int H, nope, dr, vd, R, p0, n_kv;
	float *q, *kv, *out;
	uint32_t *tab;
};

/* A case's operands: rows r at positions p0 + r (a prompt chunk: n = p0 + r + 1), or with
 * p0 < 0 scattered contexts. */
static int mc_make(struct mc_case *k, int H, int nope, int dr, int vd, int R, int p0)
{
	int dk = nope + dr, ld = H * (nope + vd) + dr;
	memset(k, 0, sizeof *k);
	k->H = H, k->nope = nope, k->dr = dr, k->vd = vd, k->R = R, k->p0 = p0;
	k->n_kv = (p0 < 0 ? 0 : p0) + R;
	if (p0 < 0)
		k->n_kv = 3 * R + 40;
	k->q = malloc(sizeof(float) * (size_t)R * H * dk);
	k->kv = malloc(sizeof(float) * (size_t)k->n_kv * ld);
	k->out = malloc(sizeof(float) * (size_t)R * H * vd);
	k->tab = malloc(8 * (size_t)R);
	if (!k->q || !k->kv || !k->out || !k->tab)
		return -1;
	for (size_t i = 0; i < (size_t)R * H * dk; i++)
		k->q[i] = mc_val((unsigned)i, 1, 1.5f);
	for (size_t i = 0; i < (size_t)k->n_kv * ld; i++)
		k->kv[i] = mc_val((unsigned)i, 2, 2.0f);
	for (int r = 0; r < R; r++) {
		k->tab[2 * r] = 7; /* (the slot word is not read) */
		k->tab[2 * r + 1] =
		    p0 >= 0 ? (uint32_t)(p0 + r + 1) : 1 + (uint32_t)(r * 37 % k->n_kv);
	}
	return 0;
}

static void mc_free(struct mc_case *k)
{
	free(k->q);
	free(k->kv);
	free(k->out);
	free(k->tab);
}

static int mc_run(struct mc_case *k, int L, float *out)
{
	return mla_attn_mha_run(k->q, k->kv, k->n_kv, k->tab, k->R, out, L, k->H, k->nope, k->dr,
				k->vd, 0.0883883f);
}

/* The largest relative error of out against a double reference of the same attention. */
static double mc_err(const struct mc_case *k, const float *out)
{
	int dk = k->nope + k->dr, ld = k->H * (k->nope + k->vd) + k->dr;
	double worst = 0, *s = malloc(sizeof(double) * (size_t)k->n_kv);
	for (int r = 0; r < k->R && s; r++)
		for (int h = 0; h < k->H; h++) {
			int n = (int)k->tab[2 * r + 1];
			const float *q = k->q + ((size_t)r * k->H + h) * dk;
			double mx = -INFINITY, l = 0;
			for (int t = 0; t < n; t++) {
				const float *row = k->kv + (size_t)t * ld;
				double d = 0;
				for (int i = 0; i < k->nope; i++)
					d += (double)q[i] * row[h * (k->nope + k->vd) + i];
				for (int i = 0; i < k->dr; i++)
					d += (double)q[k->nope + i] *
					     row[k->H * (k->nope + k->vd) + i];
				s[t] = d * 0.0883883f;
				mx = s[t] > mx ? s[t] : mx;
			}
			for (int t = 0; t < n; t++)
				l += exp(s[t] - mx);
			for (int i = 0; i < k->vd; i++) {
				double a = 0, mag = 0;
				for (int t = 0; t < n; t++) {
					double v = k->kv[(size_t)t * ld + h * (k->nope + k->vd) +
							 k->nope + i];
					a += exp(s[t] - mx) * v;
					mag += exp(s[t] - mx) * fabs(v);
				}
				double got = out[((size_t)r * k->H + h) * k->vd + i];
				double e = fabs(got - a / l) / (mag / l + 1e-30);
				worst = e > worst ? e : worst;
			}
		}
	free(s);
	return s ? worst : 1;
}

/* Each (row, head) through mla_attn_lanes_run on one lane: records [v | k], q_lat 0, q_pe q. */
static int mc_absorbed_equal(const struct mc_case *k, const float *out)
{
	int dk = k->nope + k->dr, vd = k->vd, hw = k->nope + vd, ld = k->H * hw + k->dr;
	size_t rb = mla_record_bytes(MLA_CACHE_F32, vd, dk);
	uint8_t *cache = malloc(rb * (size_t)k->n_kv);
	float *c = malloc(sizeof(float) * (size_t)k->n_kv * vd);
	float *kp = malloc(sizeof(float) * (size_t)k->n_kv * dk);
	float *ql = calloc((size_t)vd, sizeof(float)), *o = malloc(sizeof(float) * (size_t)vd);
	int bad = -1;
	if (cache && c && kp && ql && o) {
		bad = 0;
		for (int h = 0; h < k->H && !bad; h++) {
			for (int t = 0; t < k->n_kv; t++) {
				const float *row = k->kv + (size_t)t * ld;
				memcpy(c + (size_t)t * vd, row + h * hw + k->nope,
				       sizeof(float) * vd);
				memcpy(kp + (size_t)t * dk, row + h * hw, sizeof(float) * k->nope);
				memcpy(kp + (size_t)t * dk + k->nope, row + k->H * hw,
				       sizeof(float) * k->dr);
			}
			const uint8_t *bank[1] = {cache};
			if (mla_kv_append(c, kp, cache, 0, k->n_kv, vd, dk, MLA_CACHE_F32))
				return -1;
			for (int r = 0; r < k->R && !bad; r++) {
				const float *q = k->q + ((size_t)r * k->H + h) * dk;
				if (mla_attn_lanes_run(ql, q, bank, 1, 0, o,
						       (int)k->tab[2 * r + 1] - 1, 1, vd, dk,
						       MLA_CACHE_F32, 0.0883883f))
					bad = -1;
				else
					bad = memcmp(o, out + ((size_t)r * k->H + h) * vd,
						     sizeof(float) * vd) != 0;
			}
		}
	}
	free(cache);
	free(c);
	free(kp);
	free(ql);
	free(o);
	return bad;
}

static void mc_result(int ok, const char *what)
{
	if (ok) {
		tc_passed++;
	} else {
		tc_failed++;
		printf("FAIL %s\n", what);
	}
}

static inline void tc_mha_grid(const struct hls_build *b)
{
	static const int shapes[][4] = {/* H, nope, dr, vd */
					{16, 64, 32, 64}, {5, 16, 0, 8},   {40, 128, 64, 128},
					{2, 7, 2, 33},	  {1, 32, 32, 64}, {3, 0, 6, 32}};
	static const int Ls[] = {1, 3, 8, 32};
	static const int rows[][2] = {/* R, p0 */ {1, 0}, {37, 0}, {70, 40}, {33, -1}};
	int cases = 0, before = tc_failed, lone = 0, near = 0;
	double worst = 0;
	char what[200];
	for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
		for (size_t ri = 0; ri < sizeof rows / sizeof rows[0]; ri++) {
			struct mc_case k;
			int H = shapes[si][0], nope = shapes[si][1], dr = shapes[si][2];
			int vd = shapes[si][3], dk = nope + dr;
			if (mc_make(&k, H, nope, dr, vd, rows[ri][0], rows[ri][1])) {
				mc_free(&k);
				mc_result(0, "mha: out of memory");
				continue;
			}
			float *ref = malloc(sizeof(float) * (size_t)k.R * H * vd);
			for (size_t li = 0; li < sizeof Ls / sizeof Ls[0] && ref; li++) {
				int L = Ls[li];
				struct mla_attn_cost c;
				memset(hls_count, 0, sizeof hls_count);
				int rc = mc_run(&k, L, k.out);
				int64_t cyc = mla_attn_mha_cycles(b, L, k.tab, k.R, H, nope, dr, vd,
								  MLA_LANE_MACS, &c);
				snprintf(what, sizeof what,
					 "mha L=%d H=%d nope=%d dr=%d vd=%d R=%d p0=%d macs=%d", L,
					 H, nope, dr, vd, k.R, k.p0, MLA_LANE_MACS);
				cases++;
				if (rc || cyc <= 0) {
					tc_failed++;
					printf("FAIL %s: rc %d cycles %lld\n", what, rc,
					       (long long)cyc);
					continue;
				}
				tc_compare(what, c.it, HLS_L_MHA_Q, HLS_L_MHA_STORE);
				if (!li) {
					memcpy(ref, k.out, sizeof(float) * (size_t)k.R * H * vd);
					double e = mc_err(&k, k.out);
					worst = e > worst ? e : worst;
					near++;
					snprintf(what + strlen(what), sizeof what - strlen(what),
						 ": error %.3g against double", e);
					mc_result(e < 2e-6, what);
					if (vd % MLA_DL == 0 && dk <= MLA_MAX_DR && dk % 2 == 0) {
						int eq = mc_absorbed_equal(&k, k.out);
						lone++;
						snprintf(
						    what, sizeof what,
						    "mha H=%d dk=%d vd=%d R=%d: one-lane absorbed "
						    "kernel over [v | k] records (%d)",
						    H, dk, vd, k.R, eq);
						mc_result(eq == 0, what);
					}
				} else {
					snprintf(what + strlen(what), sizeof what - strlen(what),
						 ": bits equal L=1's");
					mc_result(!memcmp(ref, k.out,
							  sizeof(float) * (size_t)k.R * H * vd),
						  what);
				}
			}
			free(ref);
			mc_free(&k);
		}
	printf("mla_attn_lanes MHA (MLA_LANE_MACS=%d): loop counts equal the model on %d of %d "
	       "shapes; bits independent of L; %d shapes bit-identical to the one-lane absorbed "
	       "kernel; %d within %.3g of double\n",
	       MLA_LANE_MACS, cases - (tc_failed - before), cases, lone, near, worst);
}

/* The refusals: nothing written. */
static inline void tc_mha_refusals(void)
{
	struct mc_case k;
	char what[120];
	if (mc_make(&k, 4, 16, 8, 16, 10, 0)) {
		mc_free(&k);
		mc_result(0, "mha refusals: out of memory");
		return;
	}
	struct {
		int L, H, nope, dr, vd, R, n_kv;
		uint32_t bad_n;
	} c[] = {{0, 4, 16, 8, 16, 10, 10, 0},	     {33, 4, 16, 8, 16, 10, 10, 0},
		 {4, 0, 16, 8, 16, 10, 10, 0},	     {4, 129, 16, 8, 16, 10, 10, 0},
		 {4, 4, 16, 7, 16, 10, 10, 0},	     {4, 4, 250, 8, 16, 10, 10, 0},
		 {4, 4, 16, 8, 0, 10, 10, 0},	     {4, 4, 16, 8, 257, 10, 10, 0},
		 {4, 4, 16, 8, 16, 0, 10, 0},	     {4, 4, 16, 8, 16, 257, 10, 0},
		 {4, 4, 16, 8, 16, 10, 0, 0},	     {4, 4, 16, 8, 16, 10, 10, 11},
		 {4, 4, 16, 8, 16, 10, 10, 1u << 31}};
	for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
		uint32_t keep = k.tab[2 * 9 + 1];
		if (c[i].bad_n)
			k.tab[2 * 9 + 1] = c[i].bad_n;
		for (int j = 0; j < k.R * 4 * 16; j++)
			k.out[j] = 12345.0f;
		int rc = mla_attn_mha_run(k.q, k.kv, c[i].n_kv, k.tab, c[i].R, k.out, c[i].L,
					  c[i].H, c[i].nope, c[i].dr, c[i].vd, 0.1f);
		int kept = 1;
		for (int j = 0; j < k.R * 4 * 16; j++)
			kept &= k.out[j] == 12345.0f;
		k.tab[2 * 9 + 1] = keep;
		snprintf(what, sizeof what, "mha refusal %zu: rc %d, output untouched %d", i, rc,
			 kept);
		mc_result(rc == -EINVAL && kept, what);
	}
	mc_result(mla_attn_mha_run(NULL, k.kv, 10, k.tab, 10, k.out, 4, 4, 16, 8, 16, 0.1f) ==
		      -EINVAL,
		  "mha refusal: NULL q");
	mc_result(mla_mha_rows_max(32, 128, 192, 128) == MLA_MAX_ROWS &&
		      mla_mha_rows_max(32, 16, 96, 64) == MLA_MAX_ROWS &&
		      mla_mha_rows_max(1, 1, 256, 256) * 512 <= MLA_MHA_BUF &&
		      mla_mha_rows_max(0, 1, 8, 8) == 0,
		  "mla_mha_rows_max");
	mc_free(&k);
}

#endif
