/*
 * attn_one_lane.h - mla_attn against mla_attn_lanes on one lane, which gives mla_attn's bits by
 * construction at every compute width of either: 20 heads (a partial head group), dc 256, dr 32,
 * 78 tokens, record format fmt, f32 datapath. The including test has mla_attn.c and
 * mla_attn_lanes.c (with its build's widths). Returns 0 when both ran and agree bit for bit, 1
 * when they differ, -1 when a kernel failed.
 */
#ifndef MOECARD_ATTN_ONE_LANE_H
#define MOECARD_ATTN_ONE_LANE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int attn_one_lane(int fmt)
{
	int H = 20, dc = 256, dr = 32, pos = 77, T = pos + 1;
	size_t rb = mla_record_bytes(fmt, dc, dr);
	float *x = malloc((size_t)T * (dc + dr) * 4), *q = malloc((size_t)H * (dc + dr) * 4);
	float *o1 = malloc((size_t)H * dc * 4), *o2 = malloc((size_t)H * dc * 4);
	uint8_t *cache = malloc((size_t)T * rb), *bank[1] = {cache};
	int r = -1;
	if (x && q && o1 && o2 && cache) {
		for (int i = 0; i < T * (dc + dr); i++)
			x[i] = (float)((i * 7919 % 1000) - 500) / 250.0f;
		for (int i = 0; i < H * (dc + dr); i++)
			q[i] = (float)((i * 104729 % 1000) - 500) / 2000.0f;
		int rc = mla_kv_append(x, x + (size_t)T * dc, cache, 0, T, dc, dr, fmt);
		rc |= mla_attn(q, q + (size_t)H * dc, cache, o1, 1, pos, H, dc, dr, fmt, 0.125f);
		rc |= mla_attn_lanes_run(q, q + (size_t)H * dc, (const uint8_t *const *)bank, 1, 0,
					 o2, pos, H, dc, dr, fmt, 0.125f);
		r = rc ? -1 : memcmp(o1, o2, (size_t)H * dc * 4) != 0;
	}
	free(x);
	free(q);
	free(o1);
	free(o2);
	free(cache);
	return r;
}

/* attn_one_lane on the three record formats, counted as one check in *passed or *failed and
 * reported on one line naming the build (what). */
static inline void attn_one_lane_check(const char *what, int *passed, int *failed)
{
	int bad = 0;
	for (int fmt = 0; fmt < 3; fmt++)
		bad += attn_one_lane(fmt) != 0;
	if (bad) {
		++*failed;
		printf("FAIL %s, one lane: %d of 3 formats differ from mla_attn\n", what, bad);
	} else {
		++*passed;
		printf("%s, one lane: bit-identical to mla_attn (3 formats)\n", what);
	}
}

#endif
