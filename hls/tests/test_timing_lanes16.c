/*
 * test_timing_lanes16.c - mla_attn_lanes built with a compute width of 16 MACs per lane (below
 * MLA_DL, so each MLA_DL-element tree takes two steps) and 128 integer MACs (the FP8 datapath's
 * narrowest): loop counts vs the timing model, and the numerics unchanged by the width (one lane:
 * bit-identical to mla_attn).
 */
#define HLS_COUNT 1
#define MLA_LANE_MACS 16
#define MLA_LANE_IMACS 128
#include "hls/mla_attn/mla_attn.c"
#include "hls/mla_attn/mla_attn_lanes.c"
#include "timing_check.h"
#include "attn_one_lane.h"

/* One lane at width 16 gives mla_attn's bits (the width changes the schedule, not the sums). */
static void width_numerics(void)
{
	int bad = 0;
	for (int fmt = 0; fmt < 3; fmt++)
		bad += attn_one_lane(fmt) != 0;
	if (bad) {
		tc_failed++;
		printf("FAIL MLA_LANE_MACS=16, one lane: %d of 3 formats differ from mla_attn\n",
		       bad);
	} else {
		tc_passed++;
		printf("MLA_LANE_MACS=16, one lane: bit-identical to mla_attn (3 formats)\n");
	}
}

int main(void)
{
	struct hls_build b;
	hls_build_default(&b);
	tc_lanes_grid(&b);
	width_numerics();
	printf("%d passed, %d failed\n", tc_passed, tc_failed);
	return tc_failed != 0;
}
