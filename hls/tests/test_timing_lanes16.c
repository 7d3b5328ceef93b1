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

/* One lane at width 16 gives mla_attn's bits (the width changes the schedule, not the sums). */
static void width_numerics(void)
{
	int H = 20, dc = 256, dr = 32, pos = 77, T = pos + 1, bad = 0;
	for (int fmt = 0; fmt < 3; fmt++) {
		size_t rb = mla_record_bytes(fmt, dc, dr);
		float *x = malloc((size_t)T * (dc + dr) * 4),
		      *q = malloc((size_t)H * (dc + dr) * 4);
		float *o1 = malloc((size_t)H * dc * 4), *o2 = malloc((size_t)H * dc * 4);
		uint8_t *cache = malloc((size_t)T * rb), *bank[1] = {cache};
		for (int i = 0; i < T * (dc + dr); i++)
			x[i] = (float)((i * 7919 % 1000) - 500) / 250.0f;
		for (int i = 0; i < H * (dc + dr); i++)
			q[i] = (float)((i * 104729 % 1000) - 500) / 2000.0f;
		int rc = mla_kv_append(x, x + (size_t)T * dc, cache, 0, T, dc, dr, fmt);
		rc |= mla_attn(q, q + (size_t)H * dc, cache, o1, 1, pos, H, dc, dr, fmt, 0.125f);
		rc |= mla_attn_lanes_run(q, q + (size_t)H * dc, (const uint8_t *const *)bank, 1, 0,
					 o2, pos, H, dc, dr, fmt, 0.125f);
		bad += rc != 0 || memcmp(o1, o2, (size_t)H * dc * 4) != 0;
		free(x);
		free(q);
		free(o1);
		free(o2);
		free(cache);
	}
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
