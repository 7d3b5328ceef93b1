/*
 * test_fp8_gemv_f4.c - test_fp8_gemv on a build whose f32 modes take four products a cycle
 * (FP8_GEMV_F32 4) with a one-row PE: the same bits as fp8_gemm's reference (the products and
 * their order do not change, only the cycles).
 */
#define FP8_GEMV_PR 1
#define FP8_GEMV_F32 4
#include "test_fp8_gemv.c"
