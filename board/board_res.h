/*
 * board_res.h - a first-order FPGA resource estimate (DSP, BRAM36, URAM, LUT) for the compute
 * units of a board tree, from each CU's kernel and its build parameters (PE array, lanes, MACs
 * per lane, AXI width), and whether the sum fits the part ("moecard,part-resources").
 *
 * These are estimates from stated per-unit costs (board_res.c and board/README.md, Resource
 * estimate), not synthesis results: Vitis utilization reports replace them once a bitstream is
 * built. The model counts the datapaths each kernel's header and hls/README.md describe: the E4M3
 * product arrays, the f32 scale/accumulate, softmax and epilogue units, on-chip buffers and the
 * m_axi adapters. Not counted: the FP8_GEMM_ACT_F32 f32 path inside the PE arrays (assumed to
 * share the scaler, see board/README.md), flip-flops, routing and the platform shell (covered by
 * the fit rule's margin).
 */
#ifndef MOECARD_BOARD_RES_H
#define MOECARD_BOARD_RES_H

#include <stdint.h>
#include <stdio.h>

#include "board.h"

/* Device family of the part: it sets the cost of an f32 operation. */
enum board_res_family {
	BOARD_RES_USP = 0,    /* UltraScale+ (DSP48E2): xcu55c, xcu280 and the emulated card */
	BOARD_RES_VERSAL = 1, /* Versal (DSP58 with DSPFP32): xcv80 */
};

/* One resource vector. */
struct board_res {
	uint64_t dsp;	 /* DSP slices */
	uint64_t bram36; /* 36 Kb block RAMs */
	uint64_t uram;	 /* 288 Kb UltraRAMs */
	uint64_t lut;	 /* CLB LUTs */
};

/* Overrides of build parameters (0 = the CU's own from the tree, else the kernel header's). */
struct board_res_opts {
	uint32_t gemv_rows; /* rows of x the GEMV PE multiplies per cycle (moecard,gemv-rows) */
};

/* The fit rule: at most these percentages of the part. */
#define BOARD_RES_MAX_DSP_PCT 70
#define BOARD_RES_MAX_URAM_PCT 70
#define BOARD_RES_MAX_LUT_PCT 80
#define BOARD_RES_MAX_BRAM_PCT 80

/* board_res_family - BOARD_RES_VERSAL for a part named "xcv...", else BOARD_RES_USP. */
enum board_res_family board_res_family(const struct board_desc *b);

/*
 * board_res_cu - the estimate for compute unit cu of board b into *r. opts may be NULL.
 * Errors: -EINVAL for NULL b, cu or r; -ENOENT for a kernel the model does not know.
 */
int board_res_cu(const struct board_desc *b, const struct board_cu *cu,
		 const struct board_res_opts *opts, struct board_res *r);

/*
 * board_res_total - the sum over every CU of b into *total. opts may be NULL.
 * Errors: those of board_res_cu.
 */
int board_res_total(const struct board_desc *b, const struct board_res_opts *opts,
		    struct board_res *total);

/*
 * board_res_fits - 1 when total is within the fit rule of b's part, 0 when not, -ENODATA when the
 * tree has no "moecard,part-resources", -EINVAL for NULL arguments.
 */
int board_res_fits(const struct board_desc *b, const struct board_res *total);

/*
 * board_res_fp8_datapath - the part of mla_attn_lanes CU cu's estimate that its FP8 attention
 * datapath takes (counted in board_res_cu unless the tree builds the CU without it).
 * Errors: -EINVAL for NULL arguments, -ENOENT for a CU of another kernel.
 */
int board_res_fp8_datapath(const struct board_desc *b, const struct board_cu *cu,
			   struct board_res *r);

/*
 * board_res_gemv_f32 - the share of fp8_gemv CU cu's estimate (board_res_cu counts it) that its
 * f32 modes' products (W_BF16, ACT_F32) take at the rate the timing model runs them
 * (moecard,gemv-f32-macs a lane and PE row a cycle, else a beat's values). Errors: -EINVAL for
 * NULL arguments, -ENOENT for a CU of another kernel.
 */
int board_res_gemv_f32(const struct board_desc *b, const struct board_cu *cu, struct board_res *r);

/*
 * board_res_print - a table per CU, the totals, the fraction of the part per resource and the fit
 * verdict with its rule. opts may be NULL.
 * Errors: those of board_res_cu, -EIO when writing fails.
 */
int board_res_print(const struct board_desc *b, const struct board_res_opts *opts, FILE *out);

#endif
