/*
 * test_timing_t4x16m8.c - fp8_gemm timing model vs an HLS_COUNT build with TM=4, TN=16, MB=8
 * (a second build configuration; the model takes the tile sizes as arguments).
 */
#define HLS_COUNT 1
#define FP8_GEMM_TM 4
#define FP8_GEMM_TN 16
#define FP8_GEMM_MB 8
#define fp8_gemm fp8_gemm_t4x16m8
#define fp8_gemm_cycles fp8_gemm_cycles_t4x16m8
#include "hls/fp8_gemm/fp8_gemm.c"
#include "timing_check.h"

int main(void)
{
	struct hls_build b;
	hls_build_default(&b);
	b.tm = 4;
	b.tn = 16;
	b.mb = 8;
	tc_gemm_grid(&b);
	printf("%d passed, %d failed\n", tc_passed, tc_failed);
	return tc_failed != 0;
}
