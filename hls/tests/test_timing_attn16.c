/*
 * test_timing_attn16.c - test_timing on a build whose mla_attn computes 16 f32 MACs a cycle (one
 * head, half an MLA_DL tree a step; a board tree's moecard,lane-macs = <16> on its mla_attn CU):
 * the loop counts still equal the model, and the outputs are the default width's bits.
 */
#define MLA_ATTN_MACS 16
#include "test_timing.c"
