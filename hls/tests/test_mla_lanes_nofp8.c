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

int main(void)
{
	int H = 20, dc = 256, dr = 32, pos = 77, T = pos + 1;
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
		CHECK(rc == 0 && memcmp(o1, o2, (size_t)H * dc * 4) == 0,
		      "format %d, f32 datapath without the FP8 one: rc %d, the bits of mla_attn",
		      fmt, rc);
		if (fmt == MLA_CACHE_FP8) {
			int r8 = mla_attn_lanes_run(q, q + (size_t)H * dc,
						    (const uint8_t *const *)bank, 1, 0, o2, pos, H,
						    dc, dr, fmt | MLA_ATTN_FP8, 0.125f);
			CHECK(r8 == -EINVAL, "the FP8 mode refused: rc %d", r8);
		}
		free(x);
		free(q);
		free(o1);
		free(o2);
		free(cache);
	}
	return harness_done();
}
