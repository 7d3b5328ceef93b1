/*
 * test_timing_attn64.c - test_timing on a build whose mla_attn computes 64 f32 MACs a cycle (two
 * heads of a whole MLA_DL tree a step; a board tree's moecard,lane-macs = <64> on its mla_attn
 * CU): the loop counts still equal the model, and the outputs are the default width's bits.
 */
#define MLA_ATTN_MACS 64
#include "test_timing.c"
