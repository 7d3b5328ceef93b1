/*
 * test_moe_route.c - the MoE router kernel (hls/moe_route/): moe_route_core against an
 * independent sort-based implementation of the rule in moe_route.h on random logits for the
 * routing rules of DeepSeek-V3, V2-Lite, Kimi-K2 and group-limited greedy; constructed ties and
 * near-ties (exact ties go to the lowest index, tied groups to the lower group, one-ulp gaps
 * decide); the kernel top's outputs and GEMV tables; argument errors; the timing model.
 * Plain program; prints "N passed, N failed".
 */
#include <stdlib.h>
#include <string.h>
#include "tests/harness.h"
#include "hls/fp8_gemv/fp8_gemv.h"
#include "hls/moe_route/moe_route.h"
#include "hls_math.h"

struct rule {
	const char *name;
	int E, k, G, tg;
	uint32_t flags;
	float scale;
};

static const struct rule rules[] = {
    {"deepseek-v3", 256, 8, 8, 4,
     MOE_ROUTE_BIAS | MOE_ROUTE_GROUPS | MOE_ROUTE_GROUP_TOP2 | MOE_ROUTE_NORM, 2.5f},
    {"v2-lite softmax greedy", 64, 6, 1, 1, MOE_ROUTE_SOFTMAX, 1.0f},
    {"kimi-k2", 384, 8, 1, 1, MOE_ROUTE_BIAS | MOE_ROUTE_NORM, 2.827f},
    {"group-limited greedy", 160, 6, 8, 3, MOE_ROUTE_SOFTMAX | MOE_ROUTE_GROUPS, 16.0f},
    {"tiny", 16, 4, 4, 2, MOE_ROUTE_BIAS | MOE_ROUTE_GROUPS | MOE_ROUTE_GROUP_TOP2 | MOE_ROUTE_NORM,
     1.0f},
};

struct kv {
	float v;
	int i;
};

/* descending value, ascending index on ties; NaN sorts last */
static int kv_cmp(const void *a, const void *b)
{
	const struct kv *x = a, *y = b;
	int xn = x->v != x->v, yn = y->v != y->v;
	if (xn != yn)
		return xn - yn;
	if (!xn && x->v != y->v)
		return x->v > y->v ? -1 : 1;
	return x->i - y->i;
}

/* The rule of moe_route.h, written with sorts. */
static void ref_route(const struct rule *r, const float *logit, const float *bias, int32_t *idx,
		      float *w)
{
	int E = r->E;
	float s[MOE_ROUTE_MAX_E], sel[MOE_ROUTE_MAX_E];
	if (r->flags & MOE_ROUTE_SOFTMAX) {
		float mx = -INFINITY, sum = 0;
		for (int e = 0; e < E; e++)
			mx = logit[e] > mx ? logit[e] : mx;
		for (int e = 0; e < E; e++)
			sum += (s[e] = hls_expf(logit[e] - mx));
		for (int e = 0; e < E; e++)
			s[e] /= sum;
	} else {
		for (int e = 0; e < E; e++)
			s[e] = hls_sigmoidf(logit[e]);
	}
	for (int e = 0; e < E; e++)
		sel[e] = s[e] + ((r->flags & MOE_ROUTE_BIAS) ? bias[e] : 0.0f);
	if (r->flags & MOE_ROUTE_GROUPS) {
		int per = E / r->G;
		struct kv gs[MOE_ROUTE_MAX_E] = {{0}}, in[MOE_ROUTE_MAX_E] = {{0}};
		for (int g = 0; g < r->G; g++) {
			for (int j = 0; j < per; j++)
				in[j] = (struct kv){sel[g * per + j], j};
			qsort(in, (size_t)per, sizeof in[0], kv_cmp);
			float v = in[0].v;
			if ((r->flags & MOE_ROUTE_GROUP_TOP2) && per > 1)
				v += in[1].v;
			gs[g] = (struct kv){v, g};
		}
		qsort(gs, (size_t)r->G, sizeof gs[0], kv_cmp);
		for (int i = r->tg; i < r->G; i++)
			for (int e = gs[i].i * per; e < (gs[i].i + 1) * per; e++)
				sel[e] = -INFINITY;
	}
	struct kv all[MOE_ROUTE_MAX_E] = {{0}};
	for (int e = 0; e < E; e++)
		all[e] = (struct kv){sel[e], e};
	qsort(all, (size_t)E, sizeof all[0], kv_cmp);
	float sum = 0;
	for (int j = 0; j < r->k; j++) {
		idx[j] = all[j].i;
		sum += (w[j] = s[idx[j]]);
	}
	for (int j = 0; j < r->k; j++) {
		if ((r->flags & MOE_ROUTE_NORM) && r->k > 1)
			w[j] /= sum;
		w[j] *= r->scale;
	}
}

static uint32_t rng = 12345u;
static float frand(void)
{
	rng = rng * 1664525u + 1013904223u;
	return (float)(rng >> 8) / 16777216.0f;
}

static int same(const struct rule *r, const float *lg, const float *bias, const char *what, int t)
{
	int32_t i1[MOE_ROUTE_MAX_K], i2[MOE_ROUTE_MAX_K];
	float w1[MOE_ROUTE_MAX_K], w2[MOE_ROUTE_MAX_K];
	float m = moe_route_core(lg, bias, r->E, r->k, r->G, r->tg, r->flags, r->scale, i1, w1);
	ref_route(r, lg, bias, i2, w2);
	int ok = m == m && !memcmp(i1, i2, sizeof(int32_t) * (size_t)r->k) &&
		 !memcmp(w1, w2, sizeof(float) * (size_t)r->k);
	CHECK(ok, "%s %s case %d: kernel idx[0] %d w[0] %.9g vs reference %d %.9g", r->name, what,
	      t, i1[0], w1[0], i2[0], w2[0]);
	return ok;
}

static void test_random(void)
{
	static float lg[MOE_ROUTE_MAX_E], bias[MOE_ROUTE_MAX_E];
	for (size_t ri = 0; ri < sizeof rules / sizeof rules[0]; ri++) {
		const struct rule *r = &rules[ri];
		int bad = 0;
		for (int t = 0; t < 200; t++) {
			for (int e = 0; e < r->E; e++) {
				lg[e] = (frand() - 0.5f) * 8;
				bias[e] = (frand() - 0.5f) * 0.1f;
			}
			bad += !same(r, lg, bias, "random", t);
			if (bad > 3)
				break;
		}
	}
}

static void test_ties(void)
{
	static float lg[MOE_ROUTE_MAX_E], bias[MOE_ROUTE_MAX_E];
	for (size_t ri = 0; ri < sizeof rules / sizeof rules[0]; ri++) {
		const struct rule *r = &rules[ri];
		/* every logit equal: the k lowest indices of the kept groups */
		for (int e = 0; e < r->E; e++) {
			lg[e] = 0.25f;
			bias[e] = 0;
		}
		same(r, lg, bias, "all tied", 0);
		int32_t idx[MOE_ROUTE_MAX_K];
		float w[MOE_ROUTE_MAX_K];
		moe_route_core(lg, bias, r->E, r->k, r->G, r->tg, r->flags, r->scale, idx, w);
		CHECK_EQ(idx[0], 0, "%s: an exact tie goes to the lowest index", r->name);
		/* pairs of exact ties and one-ulp gaps around the k-th place */
		for (int t = 0; t < 50; t++) {
			for (int e = 0; e < r->E; e++) {
				lg[e] = (float)((e * 7 + t) % 5) * 0.5f;
				bias[e] = 0;
			}
			int a = (t * 13) % r->E, b = (t * 29 + 1) % r->E;
			lg[a] = lg[b];
			lg[(a + 3) % r->E] = nextafterf(lg[b], INFINITY);
			bias[(b + 5) % r->E] = (r->flags & MOE_ROUTE_BIAS) ? 1e-7f : 0;
			same(r, lg, bias, "near-tie", t);
		}
	}
	/* two groups tied on their score: the lower group is kept */
	const struct rule *r = &rules[4]; /* 16 experts, 4 groups of 4, keep 2 */
	for (int e = 0; e < 16; e++) {
		lg[e] = -4;
		bias[e] = 0;
	}
	lg[13] = lg[14] = 2; /* group 3: top-2 sum */
	lg[5] = lg[6] = 2;   /* group 1: the same sum */
	lg[9] = 3;	     /* group 2: higher top-1, lower top-2 sum */
	int32_t idx[MOE_ROUTE_MAX_K];
	float w[MOE_ROUTE_MAX_K];
	moe_route_core(lg, bias, 16, 4, 4, 2, r->flags, 1, idx, w);
	CHECK(idx[0] == 5 && idx[1] == 6 && idx[2] == 13 && idx[3] == 14,
	      "tied groups 1 and 3 kept over group 2: idx %d %d %d %d", idx[0], idx[1], idx[2],
	      idx[3]);
	same(r, lg, bias, "tied groups", 0);
}

static void test_top(void)
{
	const struct rule *r = &rules[0];
	int k = r->k, n = k + 1;
	static float lg[MOE_ROUTE_MAX_E], bias[MOE_ROUTE_MAX_E];
	for (int e = 0; e < r->E; e++) {
		lg[e] = (frand() - 0.5f) * 8;
		bias[e] = (frand() - 0.5f) * 0.1f;
	}
	struct fp8_gemv_grp tmpl[2 * 9], tab[2 * 9];
	for (int i = 0; i < 2 * n; i++) {
		memset(&tmpl[i], 0, sizeof tmpl[i]);
		tmpl[i].w_off = 4096u * (uint64_t)(i + 1);
		tmpl[i].x_off = (uint64_t)i;
		tmpl[i].n = (uint32_t)(100 + i);
	}
	uint8_t out[64 * 8];
	memset(tab, 0xAB, sizeof tab);
	uint32_t f = r->flags | MOE_ROUTE_TABLES;
	int rc = moe_route(lg, bias, out, (const uint8_t *)tmpl, (uint8_t *)tab, 1000000u, r->E, k,
			   r->G, r->tg, f, r->scale, 1);
	CHECK_EQ(rc, 0, "moe_route top");
	int32_t idx[MOE_ROUTE_MAX_K];
	float w[MOE_ROUTE_MAX_K];
	moe_route_core(lg, bias, r->E, k, r->G, r->tg, r->flags, r->scale, idx, w);
	CHECK(!memcmp(out, idx, 4 * (size_t)k) && !memcmp(out + 4 * k, w, 4 * (size_t)k),
	      "top writes idx then w as moe_route_core chose them");
	int tabs_ok = 1;
	for (int t = 0; t < 2; t++)
		for (int i = 0; i < n; i++) {
			const struct fp8_gemv_grp *g = &tab[t * n + i], *m = &tmpl[t * n + i];
			uint64_t want = m->w_off + (i ? (uint64_t)idx[i - 1] * 1000000u : 0);
			tabs_ok &= g->w_off == want && g->x_off == m->x_off && g->n == m->n;
		}
	CHECK(tabs_ok, "tables: entry 1+j of both points at expert idx_j, the rest copied");
	/* errors: nothing written */
	memset(out, 0x5A, sizeof out);
	CHECK_EQ(moe_route(lg, bias, out, NULL, NULL, 0, r->E, 0, r->G, r->tg, r->flags, 1, 1), 1,
		 "k = 0");
	CHECK_EQ(moe_route(lg, bias, out, NULL, NULL, 0, r->E, k, 7, r->tg, r->flags, 1, 1), 1,
		 "7 groups do not divide 256");
	CHECK_EQ(moe_route(lg, NULL, out, NULL, NULL, 0, r->E, k, r->G, r->tg, r->flags, 1, 1), 1,
		 "bias flag without a bias");
	CHECK_EQ(moe_route(lg, bias, out, NULL, NULL, 0, r->E, k, r->G, r->tg, f, 1, 1), 1,
		 "tables without template");
	CHECK_EQ(moe_route(lg, bias, out, NULL, NULL, 0, r->E, k, r->G, r->tg, 0x40u, 1, 1), 1,
		 "unknown flag");
	int untouched = 1;
	for (size_t i = 0; i < sizeof out; i++)
		untouched &= out[i] == 0x5A;
	CHECK(untouched, "a rejected call writes nothing");
}

/* One call over rows routes each row as a call of its own: the same idx and w bits, row by row
 * (every rule, near-ties included in the random logits' spread); rows with tables are refused. */
static void test_rows(void)
{
	enum { R = 5 };
	static float lg[R * MOE_ROUTE_MAX_E], bias[MOE_ROUTE_MAX_E];
	for (size_t ri = 0; ri < sizeof rules / sizeof rules[0]; ri++) {
		const struct rule *r = &rules[ri];
		for (int i = 0; i < R * r->E; i++)
			lg[i] = (frand() - 0.5f) * 8;
		lg[r->E + 3] = lg[r->E + 4]; /* a tie in row 1 */
		for (int e = 0; e < r->E; e++)
			bias[e] = (frand() - 0.5f) * 0.1f;
		uint8_t out[R * MOE_ROUTE_MAX_K * 8], one[MOE_ROUTE_MAX_K * 8];
		int rc = moe_route(lg, bias, out, NULL, NULL, 0, r->E, r->k, r->G, r->tg, r->flags,
				   r->scale, R);
		int same_rows = rc == 0;
		for (int t = 0; t < R && same_rows; t++) {
			same_rows &= moe_route(lg + (size_t)t * r->E, bias, one, NULL, NULL, 0,
					       r->E, r->k, r->G, r->tg, r->flags, r->scale, 1) == 0;
			same_rows &= !memcmp(out + (size_t)t * 8 * r->k, one, 8 * (size_t)r->k);
		}
		CHECK(same_rows, "rule %zu: %d rows in one call equal %d calls", ri, R, R);
	}
	uint8_t out[8];
	const struct rule *r = &rules[0];
	CHECK_EQ(moe_route(lg, bias, out, out, out, 0, r->E, r->k, r->G, r->tg,
			   r->flags | MOE_ROUTE_TABLES, r->scale, 2),
		 1, "tables with 2 rows");
	CHECK_EQ(
	    moe_route(lg, bias, out, NULL, NULL, 0, r->E, r->k, r->G, r->tg, r->flags, r->scale, 0),
	    1, "0 rows");
}

static void test_timing(void)
{
	struct hls_build b;
	hls_build_default(&b);
	int64_t c1 = moe_route_cycles(&b, 256, 8, 8, 4, rules[0].flags | MOE_ROUTE_TABLES, 1);
	int64_t c2 = moe_route_cycles(&b, 384, 8, 1, 1, rules[2].flags, 1);
	int64_t r1 = moe_route_cycles(&b, 256, 8, 8, 4, rules[0].flags, 1);
	int64_t r8 = moe_route_cycles(&b, 256, 8, 8, 4, rules[0].flags, 8);
	CHECK(r8 > r1 && r8 < 8 * r1,
	      "8 rows in one call: %lld cycles, more than one row's %lld and "
	      "less than 8 calls'",
	      (long long)r8, (long long)r1);
	CHECK(moe_route_cycles(&b, 256, 8, 8, 4, rules[0].flags | MOE_ROUTE_TABLES, 2) < 0 &&
		  moe_route_cycles(&b, 256, 8, 8, 4, 0, 0) < 0 &&
		  moe_route_cycles(&b, 256, 8, 8, 4, 0, MOE_ROUTE_MAX_ROWS + 1) < 0,
	      "rows: 1 with tables, 1..MOE_ROUTE_MAX_ROWS without");
	CHECK(c1 > 0 && c1 < 2000, "DeepSeek-V3 routing %lld cycles (< 2000: %.2f us at 300 MHz)",
	      (long long)c1, c1 / 300.0);
	CHECK(c2 > 0, "Kimi-K2 routing %lld cycles", (long long)c2);
	CHECK(moe_route_cycles(&b, 512, 8, 1, 1, 0, 1) > moe_route_cycles(&b, 256, 8, 1, 1, 0, 1),
	      "more experts take longer");
	CHECK(moe_route_cycles(&b, 0, 8, 1, 1, 0, 1) < 0, "bad arguments");
	printf("info: DeepSeek-V3 routing on the card: %lld cycles, %.2f us\n", (long long)c1,
	       c1 / 300.0);
}

int main(void)
{
	test_random();
	test_ties();
	test_top();
	test_rows();
	test_timing();
	return harness_done();
}
