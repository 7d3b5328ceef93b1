/*
 * hls_timing.h - build parameters and instrumentation shared by the kernels' timing models.
 *
 * Every kernel in hls/ documents its latency as <kernel>_cycles(build, args...): loop trip
 * counts x II + pipeline depth, composed along the kernel's load -> compute -> store dataflow,
 * and memory time = bytes / bank bandwidth, taking the maximum where stages overlap
 * (hls/README.md "Timing model"). The emulated card charges these cycles on its virtual clock.
 *
 * Instrumentation: a C-simulation build with -DHLS_COUNT (the timing tests #define it before
 * including a kernel's .c) counts the iterations of every pipelined loop in hls_count[]; the
 * models return the same counts, and hls/tests/test_timing*.c checks they agree on shape grids.
 */
#ifndef MOECARD_HLS_TIMING_H
#define MOECARD_HLS_TIMING_H

#include <stdint.h>

/* Build parameters of one card build (one set per bitstream; see hls/<kernel>/build.cfg). */
struct hls_build {
	int tm, tn;	  /* fp8_gemm PE array: TM rows x TN columns of MACs */
	int mb;		  /* fp8_gemm rows of x held on chip per W tile (multiple of tm) */
	int axi_bits;	  /* m_axi data width, bits (512 on U55C HBM) */
	double clock_mhz; /* kernel clock, MHz */
	double bank_gbps; /* bandwidth of one memory bank (HBM pseudo-channel), GB/s (1e9 B/s) */
	int mem_latency;  /* first-beat read latency of a bank, cycles */
	int depth_mac;	  /* pipeline depth of the fp8_gemm MAC loop, cycles */
	int depth_scale; /* depth of the per-block scale/accumulate loop (int->f32, 2 fmul, fadd) */
	int depth_vec;	 /* depth of a vec_ops / mla_attn element loop (f32 op chain) */
	int depth_exp;	 /* depth of an exp/rsqrt/divide unit */
	int gemv_rows;	 /* fp8_gemv rows of x multiplied per cycle (FP8_GEMV_PR; 0: that) */
	int gemv_f32; /* fp8_gemv f32 products a lane and PE row per cycle (FP8_GEMV_F32; 0: a beat) */
	int lane_passes; /* mla_attn_lanes head passes (MLA_LANE_PASSES; 0: that) */
	int lane_exp_ii; /* mla_attn_lanes cycles per exp of a lane's unit (MLA_LANE_EXP_II; 0: 1) */
};

/* vec_ops lanes and the mla_attn head group / lanes / chunk are compiled in (VEC_LANES, MLA_HG,
 * MLA_DL, MLA_TB in their headers). */

/* U55C-like defaults: 300 MHz, 512-bit AXI per HBM pseudo-channel at 14.4 GB/s, and the
 * kernels' compiled-in tile sizes (FP8_GEMM_TM etc.). */
void hls_build_default(struct hls_build *b);

/* Bytes of one bank per kernel cycle (48.0 for the defaults). */
static inline double hls_bank_bytes_per_cycle(const struct hls_build *b)
{
	return b->bank_gbps * 1e3 / b->clock_mhz;
}

/* Cycles to move `bytes` through one bank, rounded up. */
static inline uint64_t hls_mem_cycles(const struct hls_build *b, uint64_t bytes)
{
	double c = (double)bytes / hls_bank_bytes_per_cycle(b);
	uint64_t i = (uint64_t)c;
	return (double)i < c ? i + 1 : i;
}

static inline uint64_t hls_max64(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}
static inline uint64_t hls_cdiv64(uint64_t a, uint64_t b)
{
	return (a + b - 1) / b;
}

/* Pipelined loops, one counter each (HLS_COUNT builds). */
enum hls_loop {
	HLS_L_GEMM_LOAD_W,  /* fp8_gemm: one AXI beat of a W tile row */
	HLS_L_GEMM_LOAD_X,  /* fp8_gemm: one AXI beat of an x row (codes, f32 or bf16) */
	HLS_L_GEMM_LOAD_XS, /* fp8_gemm: one activation scale word */
	HLS_L_GEMM_QUANT,   /* fp8_gemm: quantize-inside, one beat of lanes */
	HLS_L_GEMM_MAC,	    /* fp8_gemm: one k step of the TM x TN PE array */
	HLS_L_GEMM_SCALE,   /* fp8_gemm: one row of TN block results scaled and accumulated */
	HLS_L_GEMM_STORE,   /* fp8_gemm: one AXI beat of output (with epilogue) */
	HLS_L_GEMM_SILU,    /* fp8_gemm SILU_MUL: FP8_GEMM_SILU outputs through the SiLU units */
	HLS_L_VEC_READ,	    /* vec_ops: one beat of lanes read (first operand pass) */
	HLS_L_VEC_WRITE,    /* vec_ops: one beat of lanes computed and written */
	HLS_L_VEC_ROW,	    /* vec_ops: one per-row reduction/finalization */
	HLS_L_VEC_EXP,	    /* vec_ops: VEC_EXP elements through the exp units (softmax, SiLU) */
	HLS_L_ATTN_LOAD,    /* mla_attn: one AXI beat of cache records */
	HLS_L_ATTN_SCORE,   /* mla_attn: one (beat, token) step of the score dot products */
	HLS_L_ATTN_SOFTMAX, /* mla_attn: one token of the online-softmax update */
	HLS_L_ATTN_ACC,	    /* mla_attn: one (token, beat) step of the weighted latent sum */
	HLS_L_ATTN_STORE,   /* mla_attn: one beat of output (normalization) */
	HLS_L_APPEND,	    /* mla_attn append: one beat of record written */
	HLS_L_GEMV_TABLE,   /* fp8_gemv: one group-table entry (one 64-byte beat) read */
	HLS_L_GEMV_NORM,    /* fp8_gemv RMSNORM: one beat of an x row's sum of squares */
	HLS_L_GEMV_LOAD_X,  /* fp8_gemv: one beat of the x loader's loop (a beat of an x row loaded
			       beside the quantizer's beat of the block before it; once per group) */
	HLS_L_GEMV_LOAD_S,  /* fp8_gemv: one beat of a tile's weight-scale row (per lane) */
	HLS_L_GEMV_MAC,	    /* fp8_gemv: one beat of a weight row times m rows of x (per lane) */
	HLS_L_GEMV_STORE,   /* fp8_gemv: one beat of a tile's outputs for one x row (epilogue) */
	HLS_L_GEMV_SILU,    /* fp8_gemv SILU_MUL: FP8_GEMV_SILU outputs through the SiLU units */
	HLS_L_GEMV_INIT,    /* fp8_gemv CONT: one beat of a tile's starting sums for one x row */
	HLS_L_LATT_Q,	    /* mla_attn_lanes: one beat of q_lat / q_pe broadcast to the lanes */
	HLS_L_LATT_LOAD,    /* mla_attn_lanes: one AXI beat of cache records in one lane */
	HLS_L_LATT_SCORE,   /* mla_attn_lanes: one MLA_LANE_MACS-MAC step of the scores, one lane */
	HLS_L_LATT_SOFTMAX, /* mla_attn_lanes: one (token, LHP heads) softmax step, one lane */
	HLS_L_LATT_ACC,	    /* mla_attn_lanes: one MLA_LANE_MACS-MAC step of the latent sum */
	HLS_L_LATT_WEIGHT,  /* mla_attn_lanes: one head's merge weights (max, exps, l) */
	HLS_L_LATT_MERGE,   /* mla_attn_lanes: one beat of MLA_MW outputs merged and stored */
	HLS_L_LATT_QQUANT,  /* mla_attn_lanes FP8: MLA_TB q values of one head quantized */
	HLS_L_LATT_ISCORE, /* mla_attn_lanes FP8: one MLA_LANE_IMACS integer score step, one lane */
	HLS_L_LATT_WQUANT, /* mla_attn_lanes FP8: one (head, group) of block weights quantized */
	HLS_L_LATT_IACC,   /* mla_attn_lanes FP8: one MLA_LANE_IMACS integer latent-sum step */
	HLS_L_LATT_BCAST,  /* mla_attn_lanes: one beat of MLA_MW decoded chunk values broadcast from
			      a block's lane unit to a helper unit (short contexts) */
	HLS_L_MHA_Q,	   /* mla_attn_lanes MHA: one beat of a row's q (one head) into its unit */
	HLS_L_MHA_LOAD,	   /* mla_attn_lanes MHA: one beat of K/V rows broadcast to the units */
	HLS_L_MHA_SCORE,   /* mla_attn_lanes MHA: one MLA_LANE_MACS-MAC score step, one unit */
	HLS_L_MHA_SOFTMAX, /* mla_attn_lanes MHA: one (position, LHP rows) softmax step, one unit */
	HLS_L_MHA_ACC,	   /* mla_attn_lanes MHA: one MLA_LANE_MACS-MAC step of the value sum */
	HLS_L_MHA_STORE, /* mla_attn_lanes MHA: one beat of MLA_MW outputs normalized and stored */
	HLS_L_N
};

#ifdef HLS_COUNT
static unsigned long long hls_count[HLS_L_N];
#define HLS_CNT(id) (hls_count[(id)]++)
#else
#define HLS_CNT(id) ((void)0)
#endif

#endif
