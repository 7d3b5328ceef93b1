/*
 * hls_timing.c - the default (U55C-like) build parameters used by the kernels' timing models,
 * the emulated card and hls_bench (hls_timing.h). Must match hls/<kernel>/build.cfg, which the
 * lint test checks.
 */
#include "hls_timing.h"
#include "hls/fp8_gemm/fp8_gemm.h"
#include "hls/fp8_gemv/fp8_gemv.h"
#include "hls/mla_attn/mla_attn.h"

void hls_build_default(struct hls_build *b)
{
	b->tm = FP8_GEMM_TM;
	b->tn = FP8_GEMM_TN;
	b->mb = FP8_GEMM_MB;
	b->axi_bits = FP8_GEMM_AXI_BITS;
	b->clock_mhz = 300.0; /* U55C kernel clock */
	b->bank_gbps = 14.4;  /* one HBM2 pseudo-channel (460 GB/s / 32) */
	b->mem_latency = 120; /* HBM first-beat read latency through the AXI interconnect */
	b->depth_mac = 8;     /* decode + 19x19 multiply + int64 accumulate */
	b->depth_scale = 14;  /* int64->f32, f32 mul, f32 mul, f32 add */
	b->depth_vec = 10;    /* a short f32 op chain */
	b->depth_exp = 24;    /* hls_expf / hls_rsqrtf / f32 divide */
	b->gemv_rows = FP8_GEMV_PR;
	b->gemv_f32 = FP8_GEMV_F32;
	b->lane_passes = MLA_LANE_PASSES;
	b->lane_exp_ii = MLA_LANE_EXP_II;
}
