/*
 * test_fp8_gemm.c - C simulation of the library build of fp8_gemm (default TM x TN x MB):
 * bit-identical to the exact reference on random and adversarial data, and argument checks.
 */
#include "gemm_check.h"

int main(void)
{
	int passed = 0, failed = 0;
	failed += gc_suite(fp8_gemm, "fp8_gemm default tiling", 1, &passed);
	failed += gc_bad_args(fp8_gemm, &passed);
	failed += gc_strided(fp8_gemm, &passed);
	printf("%d passed, %d failed\n", passed, failed);
	return failed != 0;
}
