/*
 * test_mla_attn_mha.c - mla_attn_lanes' MHA mode (the non-absorbed form of batched prefill) at
 * the default widths: loop counts vs the timing model, bits independent of the units' split,
 * bit-identical to the absorbed kernel on one lane where the two coincide, error against double,
 * and the refusals (mha_check.h).
 */
#define HLS_COUNT 1
#include "hls/mla_attn/mla_attn.c"
#include "hls/mla_attn/mla_attn_lanes.c"
#include "timing_check.h"
#include "mha_check.h"

int main(void)
{
	struct hls_build b;
	hls_build_default(&b);
	tc_mha_grid(&b);
	tc_mha_refusals();
	printf("%d passed, %d failed\n", tc_passed, tc_failed);
	return tc_failed != 0;
}
