/*
 * test_timing_gemv.c - the fp8_gemv timing model against an HLS_COUNT C-simulation build: the
 * loop counts of fp8_gemv_cycles() equal the counted iterations on a grid of shapes, flags, lane
 * counts, x rows and multi-group tables; the model is monotonic in the lanes, never beats the
 * busiest lane's bandwidth, and reaches util_bw >= 0.9 on a 7168 x 2048 FP8 matrix on 32 lanes;
 * FP8_GEMV_PR rows of x share a beat's cycle, more rows take more cycles (test_timing_gemv_pr1.c
 * builds it with a one-row PE).
 */
#define HLS_COUNT 1
#include "hls/fp8_gemv/fp8_gemv.c"
#include "tests/harness.h"
#include "timing_check.h"
#include "gemv_check.h"

/* Runs one command of ng groups (shapes nk[g], flags fl[g]) on zero data and compares counts;
 * with share_x set every group reads the first group's x (and norm weight). */
static void count_case_x(int L, int m, int ng, const int (*nk)[2], const uint32_t *fl, int share_x)
{
	struct gv_act act = {0};
	struct gv_lanes ln;
	struct fp8_gemv_grp tab[8] = {{0}};
	uint64_t lb = 0;
	for (int g = 0; g < ng; g++)
		lb += 64 + fp8_gemv_stripe_bytes(nk[g][0], nk[g][1], L, fl[g]);
	gv_lanes_init(&ln, L, lb);
	uint64_t to = gv_alloc(&act, 64u * ng);
	for (int g = 0; g < ng; g++) {
		int N = nk[g][0], K = nk[g][1];
		uint64_t wo = (ln.used + 63) & ~(uint64_t)63;
		ln.used = wo + fp8_gemv_stripe_bytes(N, K, L, fl[g]);
		static uint64_t xo0, ro0;
		uint64_t xo = share_x && g ? xo0 : gv_alloc(&act, (uint64_t)m * K * 4);
		uint64_t yo = gv_alloc(&act, (uint64_t)m * N * 4);
		uint64_t rwo = gv_alloc(&act, (uint64_t)m * 4), ro = yo;
		if (fl[g] & FP8_GEMV_CONT) /* the start: the group before's output, or its own */
			rwo = g ? tab[g - 1].y_off : gv_alloc(&act, (uint64_t)m * N * 4);
		if (fl[g] & FP8_GEMV_RMSNORM) { /* the norm weight; eps 0 */
			ro = share_x && g ? ro0 : gv_alloc(&act, (uint64_t)K * 4);
			rwo = 0;
		}
		if (!g) {
			xo0 = xo;
			ro0 = ro;
		}
		tab[g] = gv_grp(wo, xo, yo, ro, rwo, N, K, K, N, fl[g]);
	}
	memcpy(act.p + to, tab, sizeof(struct fp8_gemv_grp) * ng);
	struct fp8_gemv_cost c;
	char what[160];
	int n = snprintf(what, sizeof what, "fp8_gemv L=%d m=%d", L, m);
	for (int g = 0; g < ng && n < (int)sizeof what - 32; g++)
		n += snprintf(what + n, sizeof what - n, " %dx%d/0x%x", nk[g][0], nk[g][1], fl[g]);
	memset(hls_count, 0, sizeof hls_count);
	uint32_t rc =
	    fp8_gemv_run(act.p, act.size, (const uint8_t *const *)ln.p, ln.size, L, to, ng, m);
	struct hls_build b;
	hls_build_default(&b);
	b.gemv_rows = FP8_GEMV_PR; /* this build's PE */
	b.gemv_f32 = FP8_GEMV_F32;
	int64_t cyc = fp8_gemv_cycles(&b, L, tab, ng, m, &c);
	if (rc || cyc <= 0) {
		printf("FAIL %s: rc %u cycles %lld\n", what, rc, (long long)cyc);
		tc_failed++;
	} else {
		tc_compare(what, c.it, HLS_L_GEMV_TABLE, HLS_L_GEMV_INIT);
	}
	gv_lanes_free(&ln);
	free(act.p);
}

static void count_case(int L, int m, int ng, const int (*nk)[2], const uint32_t *fl)
{
	count_case_x(L, m, ng, nk, fl, 0);
}

static void count_grid(void)
{
	static const int nks[][2] = {{1, 1}, {8, 128}, {100, 300}, {1000, 129}, {13, 64}};
	static const uint32_t fls[] = {0,
				       FP8_GEMV_ACT_F32 | FP8_GEMV_RESIDUAL,
				       FP8_GEMV_SILU_MUL | FP8_GEMV_ACCUM | FP8_GEMV_UE8M0,
				       FP8_GEMV_W_BF16 | FP8_GEMV_ACCUM,
				       FP8_GEMV_RMSNORM,
				       FP8_GEMV_RMSNORM | FP8_GEMV_ACT_F32 | FP8_GEMV_SILU_MUL};
	static const int Ls[] = {1, 3, 32};
	int before = tc_failed, cases = 0;
	for (int s = 0; s < 5; s++)
		for (int f = 0; f < 6; f++)
			for (int l = 0; l < 3; l++)
				for (int m = 1; m <= 3; m += 2) {
					count_case(Ls[l], m, 1, &nks[s], &fls[f]);
					cases++;
				}
	/* multi-group tables: shapes and modes mixed in one command */
	static const int t1[][2] = {{1536, 256}, {576, 256}, {64, 128}};
	static const uint32_t f1[] = {FP8_GEMV_RMSNORM, FP8_GEMV_UE8M0 | FP8_GEMV_RMSNORM,
				      FP8_GEMV_ACT_F32};
	static const int t2[][2] = {{300, 200}, {300, 200}, {300, 200}, {17, 1000}};
	static const uint32_t f2[] = {FP8_GEMV_ACCUM | FP8_GEMV_RESIDUAL, FP8_GEMV_ACCUM,
				      FP8_GEMV_ACCUM, FP8_GEMV_W_BF16};
	for (int l = 0; l < 3; l++)
		for (int m = 1; m <= 4; m += 3) {
			count_case(Ls[l], m, 3, t1, f1);
			count_case(Ls[l], m, 4, t2, f2);
			cases += 2;
		}
	/* o_proj's K in slices chained by CONT (the first from a start of its own) */
	static const int t4[][2] = {{1000, 256}, {1000, 128}, {1000, 512}};
	static const uint32_t f4[][3] = {
	    {0, FP8_GEMV_CONT, FP8_GEMV_CONT | FP8_GEMV_RESIDUAL},
	    {FP8_GEMV_CONT | FP8_GEMV_ACT_F32, FP8_GEMV_CONT | FP8_GEMV_ACT_F32, FP8_GEMV_ACT_F32}};
	for (int l = 0; l < 3; l++)
		for (int m = 1; m <= 4; m += 3) {
			count_case(Ls[l], m, 3, t4, f4[0]);
			count_case(Ls[l], m, 2, t4, f4[1]);
			cases += 2;
		}
	/* groups sharing x (the MoE's gate|up, q_a and kv_a): loaded once, norm or not */
	static const int t3[][2] = {{64, 1024}, {512, 1024}, {512, 1024}, {100, 1024}};
	static const uint32_t f3[][4] = {{FP8_GEMV_RMSNORM | FP8_GEMV_W_BF16,
					  FP8_GEMV_RMSNORM | FP8_GEMV_SILU_MUL,
					  FP8_GEMV_RMSNORM | FP8_GEMV_SILU_MUL, FP8_GEMV_SILU_MUL},
					 {0, FP8_GEMV_SILU_MUL, FP8_GEMV_UE8M0, FP8_GEMV_UE8M0}};
	for (int l = 0; l < 3; l++)
		for (int m = 1; m <= 4; m += 3) {
			count_case_x(Ls[l], m, 4, t3, f3[0], 1);
			count_case_x(Ls[l], m, 4, t3, f3[1], 1);
			cases += 2;
		}
	printf("fp8_gemv: loop counts equal the model on %d of %d commands\n",
	       cases - (tc_failed - before), cases);
}

static void model_checks(void)
{
	struct hls_build b;
	struct fp8_gemv_cost c;
	hls_build_default(&b);
	b.gemv_rows = FP8_GEMV_PR;
	b.gemv_f32 = FP8_GEMV_F32;
	double bpc = hls_bank_bytes_per_cycle(&b);
	struct fp8_gemv_grp g = gv_grp(0, 0, 0, 0, 0, 7168, 2048, 2048, 7168, 0);
	int64_t prev = 0;
	static const int Ls[] = {1, 2, 4, 8, 16, 32, 64};
	for (int i = 0; i < 7; i++) {
		int64_t cy = fp8_gemv_cycles(&b, Ls[i], &g, 1, 1, &c);
		CHECK(cy > 0 && (i == 0 || cy < prev), "7168x2048: L=%d cycles %lld < L/2's %lld",
		      Ls[i], (long long)cy, (long long)prev);
		CHECK((double)cy >= (double)c.lane_bytes_max / bpc,
		      "L=%d: cycles %lld >= busiest lane bytes %llu / %.1f B per cycle", Ls[i],
		      (long long)cy, (unsigned long long)c.lane_bytes_max, bpc);
		CHECK(c.lane_bytes_total == (uint64_t)7168 * 2048 + 7168 / 8 * 16 * 4,
		      "L=%d: all lanes read the codes and the scale rows once (%llu)", Ls[i],
		      (unsigned long long)c.lane_bytes_total);
		prev = cy;
	}
	int64_t cy = fp8_gemv_cycles(&b, 32, &g, 1, 1, &c);
	CHECK(c.util_bw >= 0.9, "7168x2048 FP8 on 32 lanes: util_bw %.3f >= 0.9 (%lld cycles)",
	      c.util_bw, (long long)cy);
	printf("fp8_gemv 7168x2048 FP8, 32 lanes, m=1: %lld cycles (%.2f us), util_bw %.3f "
	       "(modeled)\n",
	       (long long)cy, cy / b.clock_mhz, c.util_bw);
	/* the PE's rows of x reuse each weight beat at no cost; twice as many take each beat two
	 * cycles, more than the bank's 48 bytes a cycle can feed (64-byte beats) */
	int pr = FP8_GEMV_PR;
	int64_t cyp = fp8_gemv_cycles(&b, 32, &g, 1, pr, &c);
	CHECK(cyp < cy + cy / 10, "m = %d reuses the weight beats: %lld vs %lld cycles", pr,
	      (long long)cyp, (long long)cy);
	if (2 * pr <= FP8_GEMV_MAX_M) {
		int64_t cy2 = fp8_gemv_cycles(&b, 32, &g, 1, 2 * pr, &c);
		CHECK(cy2 > cyp + cyp / 4, "m = %d: two cycles a beat: %lld vs %lld cycles", 2 * pr,
		      (long long)cy2, (long long)cyp);
		b.gemv_rows = 2 * pr; /* a board's wider PE: one cycle a beat again */
		int64_t cyw = fp8_gemv_cycles(&b, 32, &g, 1, 2 * pr, &c);
		CHECK(cyw < cy2 - cy2 / 5, "m = %d on a %d-row PE: %lld vs %lld cycles", 2 * pr,
		      2 * pr, (long long)cyw, (long long)cy2);
		b.gemv_rows = pr;
	}
	/* the f32 modes at gemv_f32 products a cycle: a bf16 beat (32 values) takes 32 / 4
	 * cycles, slower than the bank (a beat a cycle reads it at the bank's rate) */
	{
		struct fp8_gemv_grp gb =
		    gv_grp(0, 0, 0, 0, 0, 4096, 1024, 1024, 4096, FP8_GEMV_W_BF16);
		b.gemv_f32 = 0;
		int64_t wide = fp8_gemv_cycles(&b, 32, &gb, 1, 1, &c);
		b.gemv_f32 = 4;
		int64_t narrow = fp8_gemv_cycles(&b, 32, &gb, 1, 1, &c);
		CHECK(wide > 0 && narrow > 5 * wide,
		      "bf16 4096x1024, 4 f32 products a cycle: %lld cycles against %lld a beat a "
		      "cycle",
		      (long long)narrow, (long long)wide);
		b.gemv_f32 = FP8_GEMV_F32;
	}
	/* group 0's x named in the command (hint): its load overlaps the table read, so the
	 * command is shorter by the table read (its latency and beats) at most, the same counts;
	 * another x named, or no hint: fp8_gemv_cycles */
	struct fp8_gemv_grp h[2] = {gv_grp(0, 4096, 65536, 0, 0, 1024, 1024, 1024, 1024, 0),
				    gv_grp(1 << 20, 8192, 131072, 0, 0, 512, 1024, 1024, 512, 0)};
	struct fp8_gemv_cost c0, c1;
	int64_t n0 = fp8_gemv_cycles(&b, 32, h, 2, 1, &c0);
	int64_t n1 = fp8_gemv_cycles2(&b, 32, h, 2, 1, 1, 4096, &c1);
	int64_t tab = b.mem_latency + (int64_t)hls_max64(2, hls_mem_cycles(&b, 128));
	CHECK(n1 < n0 && n0 - n1 <= tab && !memcmp(c0.it, c1.it, sizeof c0.it),
	      "x0 named: %lld cycles against %lld (at most the table's %lld less), the same counts",
	      (long long)n1, (long long)n0, (long long)tab);
	CHECK_EQ(fp8_gemv_cycles2(&b, 32, h, 2, 1, 1, 8192, NULL), n0,
		 "another x named: no overlap");
	CHECK_EQ(fp8_gemv_cycles2(&b, 32, h, 2, 1, 0, 4096, NULL), n0, "no hint: no overlap");
	/* deterministic, and the arguments fp8_gemv rejects */
	CHECK_EQ(fp8_gemv_cycles(&b, 32, &g, 1, 1, NULL), cy, "same arguments, same cycles");
	CHECK_EQ(fp8_gemv_cycles(&b, 0, &g, 1, 1, NULL), -EINVAL, "L = 0");
	CHECK_EQ(fp8_gemv_cycles(&b, 32, &g, 1, 0, NULL), -EINVAL, "m = 0");
	CHECK_EQ(fp8_gemv_cycles(&b, 32, &g, 0, 1, NULL), -EINVAL, "ng = 0");
	g.flags = FP8_GEMV_W_BF16 | FP8_GEMV_SILU_MUL;
	CHECK_EQ(fp8_gemv_cycles(&b, 32, &g, 1, 1, NULL), -EINVAL, "bad flags");
	g.flags = 0;
	g.k = 0;
	CHECK_EQ(fp8_gemv_cycles(&b, 32, &g, 1, 1, NULL), -EINVAL, "bad shape");
}

int main(void)
{
	count_grid();
	model_checks();
	harness_pass += tc_passed;
	harness_fail += tc_failed;
	return harness_done();
}
