/*
 * test_timing_gemv_pr1.c - test_timing_gemv on a build whose GEMV PE multiplies one row of x per
 * cycle (FP8_GEMV_PR 1, a board's moecard,gemv-rows = <1>): the loop counts still equal the
 * model, each row of x its own cycle a beat.
 */
#define FP8_GEMV_PR 1
#include "test_timing_gemv.c"
