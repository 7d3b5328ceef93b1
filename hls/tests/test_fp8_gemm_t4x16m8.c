/*
 * test_fp8_gemm_t4x16m8.c - build configuration TM=4 TN=16 MB=8 of fp8_gemm, compiled from the same
 * kernel source: the result must be bit-identical to the exact reference (so to every other
 * tiling) on the same suite as test_fp8_gemm.c.
 */
#define FP8_GEMM_TM 4
#define FP8_GEMM_TN 16
#define FP8_GEMM_MB 8
#define fp8_gemm fp8_gemm_t4x16m8
#define fp8_gemm_cycles fp8_gemm_cycles_t4x16m8
#include "hls/fp8_gemm/fp8_gemm.c"
#include "gemm_check.h"

int main(void)
{
	int passed = 0, failed = 0;
	failed += gc_suite(fp8_gemm_t4x16m8, "fp8_gemm TM=4 TN=16 MB=8", 3, &passed);
	failed += gc_bad_args(fp8_gemm_t4x16m8, &passed);
	failed += gc_strided(fp8_gemm_t4x16m8, &passed);
	printf("%d passed, %d failed\n", passed, failed);
	return failed != 0;
}
