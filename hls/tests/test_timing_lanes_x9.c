/*
 * test_timing_lanes_x9.c - mla_attn_lanes built with an exp unit of 9 cycles an exp
 * (MLA_LANE_EXP_II 9, a board tree's moecard,lane-exp-ii = <9>: one multiplier and one adder for
 * hls_expf's operations): the loop counts equal the model's, one lane gives mla_attn's bits (the
 * same operations as the pipelined build), and on a compute-bound chunk the model's cycles exceed
 * the pipelined build's by exactly (II - 1) x (tokens + 1) x head groups (the exp loop and the
 * corrections at the unit's interval).
 */
#define HLS_COUNT 1
#define MLA_LANE_EXP_II 9
#include "hls/mla_attn/mla_attn.c"
#include "hls/mla_attn/mla_attn_lanes.c"
#include "timing_check.h"
#include "attn_one_lane.h"

static void exp_ii_cycles(void)
{
	static const int macs[] = {4, 8, 64};
	for (int i = 0; i < 3; i++) {
		struct hls_build b1, bx;
		hls_build_default(&b1);
		b1.lane_exp_ii = 1;
		bx = b1;
		bx.lane_exp_ii = MLA_LANE_EXP_II;
		int H = 16, dc = 512, dr = 64, pos = 31, m = macs[i];
		int lhp = m / (m < MLA_DL ? m : MLA_DL), groups = (H + lhp - 1) / lhp;
		struct mla_attn_cost c1, cx;
		int64_t y1 = mla_attn_lanes_cycles2(&b1, 1, pos, H, dc, dr, MLA_CACHE_F32, m,
						    MLA_LANE_IMACS, &c1);
		int64_t yx = mla_attn_lanes_cycles2(&bx, 1, pos, H, dc, dr, MLA_CACHE_F32, m,
						    MLA_LANE_IMACS, &cx);
		int64_t want = (int64_t)(MLA_LANE_EXP_II - 1) * (pos + 1 + 1) * groups;
		int same = !memcmp(c1.it, cx.it, sizeof c1.it);
		if (y1 > 0 && yx - y1 == want && same) {
			tc_passed++;
			printf(
			    "exp II %d, %d MACs a lane, one chunk of %d heads: %lld -> %lld cycles "
			    "(+%lld), the same loop counts\n",
			    MLA_LANE_EXP_II, m, H, (long long)y1, (long long)yx, (long long)want);
		} else {
			tc_failed++;
			printf(
			    "FAIL exp II %d, %d MACs: %lld -> %lld cycles, want +%lld; loop counts "
			    "%s\n",
			    MLA_LANE_EXP_II, m, (long long)y1, (long long)yx, (long long)want,
			    same ? "equal" : "differ");
		}
	}
}

int main(void)
{
	struct hls_build b;
	hls_build_default(&b);
	b.lane_exp_ii = MLA_LANE_EXP_II; /* the library's default is the pipelined build's */
	tc_lanes_grid(&b);
	exp_ii_cycles();
	char what[32];
	snprintf(what, sizeof what, "exp II %d", MLA_LANE_EXP_II);
	attn_one_lane_check(what, &tc_passed, &tc_failed);
	printf("%d passed, %d failed\n", tc_passed, tc_failed);
	return tc_failed != 0;
}
