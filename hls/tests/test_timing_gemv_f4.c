/*
 * test_timing_gemv_f4.c - test_timing_gemv on a build whose GEMV takes four f32 products a lane
 * and PE row per cycle in its f32 modes (FP8_GEMV_F32 4, a board's moecard,gemv-f32-macs = <4>)
 * with a one-row PE (the U55C tree's): the loop counts still equal the model, a beat of the f32
 * modes its values / 4 cycles.
 */
#define FP8_GEMV_PR 1
#define FP8_GEMV_F32 4
#include "test_timing_gemv.c"
