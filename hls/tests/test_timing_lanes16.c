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
#include "mha_check.h"

int main(void)
{
	struct hls_build b;
	hls_build_default(&b);
	tc_lanes_grid(&b);
	tc_mha_grid(&b); /* the MHA mode at two steps a tree */
	/* the width changes the schedule, not the sums */
	attn_one_lane_check("MLA_LANE_MACS=16", &tc_passed, &tc_failed);
	printf("%d passed, %d failed\n", tc_passed, tc_failed);
	return tc_failed != 0;
}
