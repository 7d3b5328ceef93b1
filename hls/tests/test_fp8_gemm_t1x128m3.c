/*
 * test_fp8_gemm_t1x128m3.c - build configuration TM=1 TN=128 MB=3 of fp8_gemm, compiled from the same
 * kernel source: the result must be bit-identical to the exact reference (so to every other
 * tiling) on the same suite as test_fp8_gemm.c.
 */
#define FP8_GEMM_TM 1
#define FP8_GEMM_TN 128
#define FP8_GEMM_MB 3
#define fp8_gemm fp8_gemm_t1x128m3
#define fp8_gemm_cycles fp8_gemm_cycles_t1x128m3
#include "hls/fp8_gemm/fp8_gemm.c"
#include "gemm_check.h"

int main(void)
{
	int passed = 0, failed = 0;
	failed += gc_suite(fp8_gemm_t1x128m3, "fp8_gemm TM=1 TN=128 MB=3", 3, &passed);
	failed += gc_bad_args(fp8_gemm_t1x128m3, &passed);
	failed += gc_strided(fp8_gemm_t1x128m3, &passed);
	printf("%d passed, %d failed\n", passed, failed);
	return failed != 0;
}
