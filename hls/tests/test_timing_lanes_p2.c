/*
 * test_timing_lanes_p2.c - mla_attn_lanes built with two head passes (MLA_LANE_PASSES 2, a board
 * tree's moecard,lane-passes = <2>: each lane holds half the heads' accumulators and reads its
 * blocks twice): the loop counts equal the model's (with the build's passes), the FP8 mode is
 * refused, and 1, 2, 3 and 4 passes give the same bits on many lanes (a head's lanes and merge do
 * not depend on the other heads).
 */
#define HLS_COUNT 1
#define MLA_LANE_PASSES 2
#include "hls/mla_attn/mla_attn.c"
#include "hls/mla_attn/mla_attn_lanes.c"
#include "timing_check.h"
#include "attn_one_lane.h"

static void passes_numerics(void)
{
	int H = 20, dc = 256, dr = 32, L = 5, bad = 0, cases = 0;
	for (int pos = 40; pos <= 400; pos += 360)
		for (int fmt = 0; fmt < 3; fmt++) {
			int T = pos + 1;
			uint64_t lb = mla_lanes_bytes(T, L, fmt, dc, dr);
			float *x = malloc((size_t)T * (dc + dr) * 4),
			      *q = malloc((size_t)H * (dc + dr) * 4);
			float *o1 = malloc((size_t)H * dc * 4), *o2 = malloc((size_t)H * dc * 4);
			uint8_t *bank[5];
			for (int i = 0; i < L; i++)
				bank[i] = calloc(lb + 64, 1);
			for (int i = 0; i < T * (dc + dr); i++)
				x[i] = (float)((i * 7919 % 1000) - 500) / 250.0f;
			for (int i = 0; i < H * (dc + dr); i++)
				q[i] = (float)((i * 104729 % 1000) - 500) / 2000.0f;
			int rc = mla_kv_append_lanes(x, x + (size_t)T * dc, bank, L, 64, 0, T, dc,
						     dr, fmt);
			rc |= ml_run(q, q + (size_t)H * dc, (const uint8_t *const *)bank, L, 64, o1,
				     pos, H, dc, dr, fmt, 0.125f, 1);
			for (int P = 2; P <= 4; P++) {
				rc |= ml_run(q, q + (size_t)H * dc, (const uint8_t *const *)bank, L,
					     64, o2, pos, H, dc, dr, fmt, 0.125f, P);
				bad += rc != 0 || memcmp(o1, o2, (size_t)H * dc * 4) != 0;
				cases++;
			}
			free(x);
			free(q);
			free(o1);
			free(o2);
			for (int i = 0; i < L; i++)
				free(bank[i]);
		}
	if (bad) {
		tc_failed++;
		printf("FAIL head passes: %d of %d runs differ from one pass\n", bad, cases);
	} else {
		tc_passed++;
		printf("head passes 2..4 on %d lanes: bit-identical to one pass (%d runs)\n", L,
		       cases);
	}
	float q[288] = {0}, o[256];
	uint8_t rec[512] = {0}, *one[1] = {rec};
	int r8 = mla_attn_lanes_run(q, q + 256, (const uint8_t *const *)one, 1, 0, o, 0, 1, 256, 32,
				    MLA_CACHE_FP8 | MLA_ATTN_FP8, 0.125f);
	if (r8 == -EINVAL) {
		tc_passed++;
		printf("two head passes: the FP8 mode refused\n");
	} else {
		tc_failed++;
		printf("FAIL two head passes: the FP8 mode ran (rc %d)\n", r8);
	}
}

int main(void)
{
	struct hls_build b;
	hls_build_default(&b);
	b.lane_passes = MLA_LANE_PASSES; /* the library's default is the 1-pass build's */
	tc_lanes_grid(&b);
	passes_numerics();
	attn_one_lane_check("two head passes", &tc_passed, &tc_failed);
	printf("%d passed, %d failed\n", tc_passed, tc_failed);
	return tc_failed != 0;
}
