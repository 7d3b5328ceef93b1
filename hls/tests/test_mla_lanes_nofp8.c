/*
 * test_mla_lanes_nofp8.c - mla_attn_lanes built without the FP8 datapath (MLA_LANES_NO_FP8 1, what
 * `make xclbin` builds for a tree with moecard,fp8-datapath = <0>): the FP8 mode is refused with
 * -EINVAL, the f32 datapath on every record format gives the full build's bits (the one-lane
 * attention equals mla_attn's).
 */
#define MLA_LANES_NO_FP8 1
#include "hls/mla_attn/mla_attn.c"
#include "hls/mla_attn/mla_attn_lanes.c"
#include <stdlib.h>
#include "tests/harness.h"
#include "attn_one_lane.h"

int main(void)
{
	for (int fmt = 0; fmt < 3; fmt++) {
		int r = attn_one_lane(fmt);
		CHECK(r == 0, "format %d, f32 datapath without the FP8 one: %s", fmt,
		      r < 0 ? "a kernel failed" : "other bits than mla_attn");
	}
	/* the FP8 mode: refused before anything is read */
	float q[288] = {0}, o[256];
	uint8_t rec[512] = {0}, *bank[1] = {rec};
	int r8 = mla_attn_lanes_run(q, q + 256, (const uint8_t *const *)bank, 1, 0, o, 0, 1, 256,
				    32, MLA_CACHE_FP8 | MLA_ATTN_FP8, 0.125f);
	CHECK(r8 == -EINVAL, "the FP8 mode refused: rc %d", r8);
	return harness_done();
}
