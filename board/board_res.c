/*
 * board_res.c - the resource estimate of board_res.h: per-unit costs times the units each
 * kernel instantiates, from the kernel headers' constants and the CU's board parameters.
 *
 * Every figure is an estimate for planning which CUs fit a part; Vitis utilization reports are
 * the authority once a bitstream exists. The constants and their sources are listed below and in
 * board/README.md (Resource estimate).
 */
#include <errno.h>
#include <string.h>

#include "board_res.h"
#include "hls/fp8_gemm/fp8_gemm.h"
#include "hls/fp8_gemv/fp8_gemv.h"
#include "hls/mla_attn/mla_attn.h"
#include "hls/moe_route/moe_route.h"
#include "hls/vec_ops/vec_ops.h"
#include "hls_bquant.h"
#include "hls_quant.h"

/* One operator's cost. */
struct op {
	uint32_t dsp, lut;
};

/*
 * f32 operators. UltraScale+: Xilinx Floating-Point IP (PG060) with full DSP usage, single
 * precision: a multiply is 3 DSP48E2 and about 100 LUTs, an add 2 DSP48E2 and about 250 LUTs
 * (alignment and normalization stay in the fabric); a multiply-add is the two. Versal: one DSP58
 * in DSPFP32 mode per f32 multiply, add or fused multiply-add (AM004), plus about 40 LUTs of
 * operand muxing and control.
 */
static const struct op f32_mul[2] = {{3, 100}, {1, 40}};
static const struct op f32_add[2] = {{2, 250}, {1, 40}};
static const struct op f32_fma[2] = {{5, 350}, {1, 40}};
/*
 * The GEMV's f32-mode product: a bf16 weight (8-bit significand) or an E4M3 code (4-bit) times an
 * f32 x, rounded to f32, added into one of the 8 partial sums. UltraScale+: the significands'
 * product fits one DSP48E2 (24 x 8 bits in its 27 x 18 multiplier) with about 60 LUTs of
 * exponent add, normalization and rounding, then an f32 add (2 DSP48E2, about 250 LUTs): 3 DSP
 * and about 310 LUTs. Versal: one DSP58 in DSPFP32 mode multiply-adds (the f32 operand's
 * product is exact in it), about 40 LUTs.
 */
static const struct op f32_raw_mac[2] = {{3, 310}, {1, 40}};

/*
 * An exact E4M3 x E4M3 product into a fixed-point adder tree, in LUTs (no DSP): the 4x4-bit
 * significand product (with hidden bits) about 16 LUTs, the 4+4-bit exponent sum 4, the shift of
 * the 8-bit product to its place in the 2^-18 fixed-point word (about 36 bits; two levels of
 * 4:1 multiplexers) about 40, and the product's share of the adder tree (one adder of about 40
 * bits per input, one LUT per bit with the carry chain) 40: about 100 LUTs per product.
 */
#define LUT_E4M3_PRODUCT 100u
/*
 * A block integer (hls_bquant.h: HLS_BQ_BITS magnitude bits and a sign) times an E4M3 code into
 * a fixed-point adder tree, in LUTs (the attention's FP8 datapath): the (b+1) x 4-bit product
 * (the code's significand with its hidden bit: four partial products in three carry-chain adders
 * of about b + 4 bits) 3 (b + 4), the shift of the b + 5-bit product by the code's exponent to its
 * place in the fixed-point word (two levels of 4:1 multiplexers over about b + 20 bits) 2 (b + 20),
 * and the product's share of the adder tree (one adder of about b + 27 bits): 6 b + 79, 145 LUTs
 * at b = 11.
 */
#define LUT_BQ_PRODUCT (6u * HLS_BQ_BITS + 79u)
/* A block integer's rounding (hls_bq_int): the 24-bit significand shifted right by up to 25 (five
 * levels of 2:1 multiplexers, about 60 LUTs), the round-half-even increment and the clamp of a
 * b + 1-bit result (about 20): about 80 LUTs. Its scale is an exponent (a few LUTs a group). */
#define LUT_BQ_ROUND 80u
/* A block integer's scale exponent: extracted from a group's amax, or added to a conversion's
 * exponent field (an 8-bit adder): about 10 LUTs. */
#define LUT_BQ_EXP 10u
/* int64 block sum to f32 (leading-zero count, 64-to-24-bit normalize shift, round to nearest
 * even): about 200 LUTs. */
#define LUT_I64_TO_F32 200u
/* f32 compare-and-select (max, top-k insertion, amax): about 50 LUTs. */
#define LUT_F32_CMP 50u
/* E4M3 or bf16 to f32 decode of one element (fields to f32 bits, subnormal shift): about 20. */
#define LUT_DECODE 20u
/* Control of one CU: the s_axilite register file, the top FSM, loop counters and address
 * arithmetic of the kernel's loops: about 1,500 LUTs (the size Vitis HLS reports for small
 * kernels' control is 1-2 k LUTs). */
#define LUT_CU_CTRL 1500u
/* One m_axi port adapter (Vitis HLS m_axi interface): about 500 LUTs of burst and handshake
 * control plus 2 LUTs per data bit (width conversion, write strobes), and one 512-deep buffer of
 * the port's width in BRAM36 (512 x 72 bits each: ceil(bits / 72) blocks). */
#define LUT_PORT_BASE 500u
#define LUT_PORT_PER_BIT 2u
/* Memory blocks: BRAM36 is 36 Kb (36,864 bits), URAM 288 Kb (294,912 bits). A bank of at most
 * 4 Kb goes to LUTRAM (64 bits per LUT), as Vivado maps small partitioned arrays. */
#define BRAM36_BITS 36864u
#define URAM_BITS 294912u
#define LUTRAM_MAX_BITS 4096u
#define LUTRAM_BITS_PER_LUT 64u
/*
 * Elementary functions as f32 operator counts: hls_expf (Cody-Waite reduction, degree-7
 * polynomial, exponent assembly) 9 multiplies and 8 adds; a reciprocal (seed and Newton steps) 3
 * multiplies and 2 adds; hls_rsqrtf (bit-trick seed, 3 Newton steps and a residual step) 10
 * multiplies and 4 adds.
 */
#define EXP_MUL 9u
#define EXP_ADD 8u
#define RECIP_MUL 3u
#define RECIP_ADD 2u
#define RSQRT_MUL 10u
#define RSQRT_ADD 4u

/* Accumulates into r. */
static void add_op(struct board_res *r, const struct op *o, uint64_t n)
{
	r->dsp += o->dsp * n;
	r->lut += o->lut * n;
}

static void add_mul(struct board_res *r, int fam, uint64_t n)
{
	add_op(r, &f32_mul[fam], n);
}
static void add_add(struct board_res *r, int fam, uint64_t n)
{
	add_op(r, &f32_add[fam], n);
}
static void add_fma(struct board_res *r, int fam, uint64_t n)
{
	add_op(r, &f32_fma[fam], n);
}

/* n exp units that take ii cycles an exp: their multiplies and adds shared over the interval
 * (ii = 1: a pipelined unit, every operation its own operator) */
static void add_exp_ii(struct board_res *r, int fam, uint64_t n, uint64_t ii)
{
	ii = ii < 1 ? 1 : ii;
	add_mul(r, fam, (EXP_MUL + ii - 1) / ii * n);
	add_add(r, fam, (EXP_ADD + ii - 1) / ii * n);
}

static void add_exp(struct board_res *r, int fam, uint64_t n)
{
	add_exp_ii(r, fam, n, 1);
}

static void add_recip(struct board_res *r, int fam, uint64_t n)
{
	add_mul(r, fam, RECIP_MUL * n);
	add_add(r, fam, RECIP_ADD * n);
}

/* The f32 epilogue of the GEMM/GEMV stores: `silu` SiLU units shared by the beat's lanes
 * (silu(a) * b: exp, add, reciprocal, 2 multiplies; FP8_GEMM_SILU, FP8_GEMV_SILU), and per lane
 * y_old + route_w * v (multiply, add) and + res (add). */
static void add_epilogue(struct board_res *r, int fam, uint64_t lanes, uint64_t silu)
{
	add_exp(r, fam, silu);
	add_recip(r, fam, silu);
	add_mul(r, fam, 2 * silu + lanes);
	add_add(r, fam, silu + 2 * lanes);
}

/* The 1x128 activation quantizer (hls_quant.h) over lanes f32 per beat: amax compare, one
 * multiply per element, one reciprocal per group. */
static void add_quant(struct board_res *r, int fam, uint64_t lanes)
{
	r->lut += LUT_F32_CMP * lanes;
	add_mul(r, fam, lanes);
	add_recip(r, fam, 1);
}

/* The adders of one head's MLA_DL-element score tree computed lde elements a step
 * (hls_tree.h): lde - 1 for a step's elements, log2(MLA_DL / lde) for the step sums. */
static uint64_t tree_adders(uint64_t lde)
{
	uint64_t n = lde - 1;
	for (uint64_t s = MLA_DL / lde; s > 1; s >>= 1)
		n++;
	return n;
}

static uint64_t cdiv(uint64_t a, uint64_t b)
{
	return (a + b - 1) / b;
}

/* An on-chip array of bytes split into banks (its partitioning: the words read per cycle), each
 * bank in URAM (uram) or BRAM36 by size, or LUTRAM when small. */
static void add_mem(struct board_res *r, uint64_t bytes, uint64_t banks, int uram)
{
	if (!bytes)
		return;
	if (!banks)
		banks = 1;
	uint64_t bits = cdiv(bytes * 8, banks);
	if (bits <= LUTRAM_MAX_BITS)
		r->lut += banks * cdiv(bits, LUTRAM_BITS_PER_LUT);
	else if (uram)
		r->uram += banks * cdiv(bits, URAM_BITS);
	else
		r->bram36 += banks * cdiv(bits, BRAM36_BITS);
}

/* m_axi ports and control, common to every CU. */
static void add_ports_ctrl(struct board_res *r, const struct board_cu *cu)
{
	r->lut += LUT_CU_CTRL;
	r->lut += (uint64_t)cu->n_ports * (LUT_PORT_BASE + LUT_PORT_PER_BIT * cu->axi_bits);
	r->bram36 += (uint64_t)cu->n_ports * cdiv(cu->axi_bits, 72);
}

/* fp8_gemm: TM x TN exact E4M3 products into int64 block sums; the block scaler (TN columns:
 * int64 to f32, times the scale, plus the accumulator; one multiply for xs * ws); the epilogue
 * and quantizer over the beat's f32 lanes. On chip (fp8_gemm.c): xt [MB][BK] int32 cyclic over
 * TM, wt [TN][BK] complete over TN, acc [2][MB][TN] f32 in URAM over TN. */
static void res_gemm(const struct board_cu *cu, int fam, struct board_res *r)
{
	uint64_t tm = cu->tm ? cu->tm : FP8_GEMM_TM, tn = cu->tn ? cu->tn : FP8_GEMM_TN;
	uint64_t mb = tm > FP8_GEMM_MB ? tm : FP8_GEMM_MB, lanes = cu->axi_bits / 32;
	r->lut += tm * tn * LUT_E4M3_PRODUCT;
	r->lut += tn * LUT_I64_TO_F32;
	add_mul(r, fam, tn + 1);
	add_add(r, fam, tn);
	add_epilogue(r, fam, lanes, FP8_GEMM_SILU);
	add_quant(r, fam, lanes);
	add_mem(r, mb * FP8_GEMM_BK * 4, tm, 0);
	add_mem(r, tn * FP8_GEMM_BK * 4, tn, 0);
	add_mem(r, 2 * mb * tn * 4, tn, 1);
}

/* fp8_gemv: L lanes (ports minus the activation port), each axi_bits / 8 E4M3 products for each
 * of the PE's rows of x (moecard,gemv-rows: the rows a beat meets per cycle); per lane and PE row
 * a block scaler (int64 to f32, two multiplies, an add). The x buffer xb
 * [FP8_GEMV_MAX_M][FP8_GEMV_MAX_K] int32 in URAM, read rows x beat-bytes words per cycle (two
 * per 72-bit URAM word); xsc, the group table and per-lane scale rows in BRAM; one epilogue and
 * quantizer over the activation port's f32 lanes. */
static void res_gemv_f32(const struct board_cu *cu, int fam, uint32_t rows, struct board_res *r);

static void res_gemv(const struct board_cu *cu, int fam, uint32_t rows, struct board_res *r)
{
	uint64_t L = cu->n_ports > 1 ? cu->n_ports - 1 : 1, bpl = cu->axi_bits / 8,
		 lanes = cu->axi_bits / 32, m = rows;
	r->lut += L * bpl * m * LUT_E4M3_PRODUCT;
	r->lut += L * m * LUT_I64_TO_F32;
	add_mul(r, fam, 2 * L * m);
	add_add(r, fam, L * m);
	add_epilogue(r, fam, lanes, FP8_GEMV_SILU);
	/* FP8_GEMV_ARGMAX: a compare-select and an index register per store position */
	r->lut += lanes * (LUT_F32_CMP + 32);
	add_quant(r, fam, lanes);
	add_mem(r, (uint64_t)FP8_GEMV_MAX_M * FP8_GEMV_MAX_K * 4, cdiv(m * bpl, 2), 1);
	add_mem(r, (uint64_t)FP8_GEMV_MAX_M * (FP8_GEMV_MAX_K / 128) * 4, m, 0);
	add_mem(r, (uint64_t)FP8_GEMV_MAX_GROUPS * sizeof(struct fp8_gemv_grp), 1, 0);
	/* (a lane's weights read ahead of its MACs, FP8_GEMV_WFIFO beats, land in its m_axi
	 * port's read buffer, counted with the ports: 512 beats a port) */
	for (uint64_t l = 0; l < L; l++)
		add_mem(r, (FP8_GEMV_MAX_K / 128) * 4, 1, 0);
	res_gemv_f32(cu, fam, rows, r);
}

/* vec_ops: f32 lanes per beat, each able to do the union of its beat-rate ops (RMSNorm
 * multiply-add, RoPE, act-quant's divide, add): a reciprocal, 4 multiplies, 3 adds and a compare;
 * VEC_EXP exp units with a divide each (softmax, SiLU*mul); the VEC_ILV x lanes partial-sum
 * halving tree; one rsqrt. Rows stream (no row buffer). */
static void res_vec(const struct board_cu *cu, int fam, struct board_res *r)
{
	uint64_t lanes = cu->axi_bits / 32;
	add_exp(r, fam, VEC_EXP);
	add_recip(r, fam, lanes + VEC_EXP);
	add_mul(r, fam, 4 * lanes);
	add_add(r, fam, 3 * lanes);
	r->lut += LUT_F32_CMP * lanes;
	add_add(r, fam, VEC_ILV * lanes - 1);
	add_mul(r, fam, RSQRT_MUL);
	add_add(r, fam, RSQRT_ADD);
}

/* mla_attn at its compute width W (the tree's moecard,lane-macs, else MLA_ATTN_MACS): LHP heads
 * of LDE latent elements a step (mla_attn.h): the W score multiply-adds and LHP MLA_DL-element
 * trees (tree_adders), the W accumulator updates acc * corr + p * kv, the online softmax of LHP
 * heads a step (one set of LHP exp units shared by the corrections and the p values), the record
 * decoder (64 elements per beat) and the output divide (16 lanes). On chip: q [HG][dc+dr] and
 * acc [HG][dc] read W words a cycle (two per 72-bit word), the chunk kv [TB][dc+dr] over LDE. */
static void res_attn(const struct board_cu *cu, int fam, struct board_res *r)
{
	uint64_t par = cu->lane_macs ? cu->lane_macs : MLA_ATTN_MACS;
	uint64_t lde = par < MLA_DL ? par : MLA_DL, lhp = par / lde;
	uint64_t dk = MLA_MAX_DC + MLA_MAX_DR;
	add_fma(r, fam, par);
	add_add(r, fam, lhp * tree_adders(lde));
	add_fma(r, fam, par);
	add_mul(r, fam, par);
	add_exp(r, fam, lhp);
	add_mul(r, fam, lhp);
	add_add(r, fam, lhp);
	r->lut += LUT_F32_CMP * lhp + LUT_DECODE * 64;
	add_recip(r, fam, MLA_MW);
	add_mul(r, fam, MLA_MW);
	add_mem(r, MLA_HG * dk * 4, cdiv(par, 2), 0);
	add_mem(r, MLA_HG * MLA_MAX_DC * 4, cdiv(par, 2), 0);
	add_mem(r, MLA_TB * dk * 4, cdiv(lde, 2), 0);
}

/* mla_kv_append: the record encoder (64 elements per beat: f32 to bf16 or E4M3 with the
 * quantizer over 16 lanes) and one record buffer. */
static void res_kv_append(int fam, struct board_res *r)
{
	r->lut += LUT_DECODE * 64;
	add_quant(r, fam, 16);
	add_mem(r, 4 * (MLA_MAX_DC + MLA_MAX_DR), 1, 0);
	/* the folded input stage (mla_kv_append_fold), MLA_FOLD_LANES elements a cycle: the norm's
	 * squares and partial sums, its halving tree's adder, one rsqrt, 2 products an element;
	 * RoPE's 4 products and 2 adds a pair */
	add_mul(r, fam, 3 * MLA_FOLD_LANES + 4);
	add_add(r, fam, MLA_FOLD_LANES + 1 + 2);
	add_mul(r, fam, RSQRT_MUL);
	add_add(r, fam, RSQRT_ADD);
}

static void res_lanes_fp8(const struct board_cu *cu, int fam, struct board_res *r);

/* mla_attn_lanes: L lanes (ports minus gmem_q and gmem_o), each lane_macs f32 multiply-adds, the
 * score trees (LHP heads' MLA_DL-element trees, tree_adders), the online softmax of LHP heads
 * per step (one set of LHP exp units a lane, shared by the corrections and the p values: ml_lane's
 * ALLOCATION; at moecard,lane-exp-ii cycles an exp each unit's operators shared over them), the
 * record decoder; the merge, MLA_MERGE_LANES lanes a pass: that many exps for
 * the weights, MLA_MW x MLA_MERGE_LANES multiply-adds, MLA_MW output divides. On chip per lane: acc
 * [MLA_MAX_H / head passes][dc] f32 read max(lane_macs, MLA_MW) words per cycle (two per 72-bit
 * word), in URAM, or BRAM36 when a bank fits one (moecard,lane-passes), and with one pass a
 * second such bank for the rows mode (MLA_ROWS_PINGPONG, URAM, the merge's MLA_MW words a cycle),
 * the chunk kv [TB][dc+dr] over LDE, a record; q [MLA_MAX_H][dc+dr] shared. With the FP8
 * datapath unless the tree says moecard,fp8-datapath = <0> (res_lanes_fp8). */
static void res_lanes(const struct board_cu *cu, int fam, struct board_res *r)
{
	uint64_t L = cu->n_ports > 2 ? cu->n_ports - 2 : 1;
	uint64_t macs = cu->lane_macs ? cu->lane_macs : MLA_LANE_MACS;
	uint64_t lde = macs < MLA_DL ? macs : MLA_DL, lhp = macs / lde;
	uint64_t dk = MLA_MAX_DC + MLA_MAX_DR;
	add_fma(r, fam, L * macs);
	add_add(r, fam, L * lhp * tree_adders(lde));
	add_exp_ii(r, fam, L * lhp, cu->lane_exp_ii ? cu->lane_exp_ii : MLA_LANE_EXP_II);
	add_mul(r, fam, L * lhp);
	add_add(r, fam, L * lhp);
	r->lut += L * (LUT_F32_CMP * lhp + LUT_DECODE * 64) + LUT_F32_CMP * L;
	add_exp(r, fam, MLA_MERGE_LANES);
	add_fma(r, fam, (uint64_t)MLA_MERGE_LANES * (MLA_MW + 1));
	add_recip(r, fam, MLA_MW);
	add_mul(r, fam, MLA_MW);
	/* the accumulators of one head pass, in URAM unless a bank fits one BRAM36 */
	uint64_t passes = cu->lane_passes ? cu->lane_passes : MLA_LANE_PASSES;
	uint64_t accb = (uint64_t)MLA_MAX_H / passes * MLA_MAX_DC * 4;
	uint64_t accn = cdiv(macs > MLA_MW ? macs : MLA_MW, 2);
	for (uint64_t l = 0; l < L; l++) {
		add_mem(r, accb, accn, cdiv(accb * 8, accn) > BRAM36_BITS);
		/* one head pass: the rows mode's second bank of partials (MLA_ROWS_PINGPONG), in
		 * URAM, read by the merge MLA_MW words a cycle */
		if (MLA_ROWS_PINGPONG && passes <= 1)
			add_mem(r, accb, cdiv(MLA_MW, 2), 1);
		add_mem(r, MLA_TB * dk * 4, cdiv(lde, 2), 0);
		add_mem(r, 4 * dk, 1, 0);
	}
	add_mem(r, (uint64_t)MLA_MAX_H * dk * 4, cdiv(macs, 2), 0);
	add_mem(r, (uint64_t)MLA_MAX_H * dk * 4, 1, 0); /* the rows mode's next query */
	if (!cu->no_fp8)
		res_lanes_fp8(cu, fam, r);
}

/*
 * The FP8 datapath of mla_attn_lanes (--attn-datapath fp8), per lane at imacs integer MACs a cycle
 * (the tree's moecard,lane-imacs, else MLA_LANE_IMACS), as the loops are written: the integer score
 * step's and the integer weighted sum's imacs exact products of a block integer and an E4M3 code
 * each (separate loops, no ALLOCATION), with per score head (imacs / 128) and per channel
 * (imacs / MLA_TB) an int64-to-f32 conversion, one multiply (the token's group scale, or the
 * correction) and an add (the block integers' power-of-two scales are exponent adds, a few LUTs);
 * the block weights' quantizer, one (head, group) a cycle: MLA_TB multiplies (the weights),
 * compares and roundings (hls_bq_int, no divide); the q quantizer shared by the lanes: MLA_TB
 * roundings a cycle.
 */
static void res_lanes_fp8(const struct board_cu *cu, int fam, struct board_res *r)
{
	uint64_t L = cu->n_ports > 2 ? cu->n_ports - 2 : 1;
	uint64_t im = cu->lane_imacs ? cu->lane_imacs : MLA_LANE_IMACS;
	uint64_t lihp = im / HLS_QUANT_GROUP, lpc = im / MLA_TB;
	/* the scale exponents' adds beside each conversion */
	r->lut += L * (2 * im * LUT_BQ_PRODUCT + (lihp + lpc) * (LUT_I64_TO_F32 + LUT_BQ_EXP));
	add_mul(r, fam, L * (lihp + lpc));
	add_add(r, fam, L * (lihp + lpc));
	add_mul(r, fam, L * MLA_TB);
	r->lut += L * (MLA_TB * (LUT_F32_CMP + LUT_BQ_ROUND) + LUT_BQ_EXP);
	r->lut += MLA_TB * LUT_BQ_ROUND + LUT_BQ_EXP;
}

/*
 * The f32 modes of fp8_gemv (W_BF16: the lm_head's and router gate's bf16 weights against f32 x;
 * ACT_F32: E4M3 weights against f32 x), in res_gemv: per lane and PE row gemv_f32 products a
 * cycle (moecard,gemv-f32-macs; the build's FP8_GEMV_F32, 0: a beat's values, axi_bits / 8), each
 * f32_raw_mac, as v_row takes them and the timing model runs them (fp8_gemv.h); and per lane and
 * PE row the block end's halving tree of the 8 partial sums: 7 adds every 128 / f cycles (an E4M3
 * block's values at f a cycle), so ceil(7 f / 128) adders (the scale multiply and the add into
 * the accumulator are the FP8 block scaler's, counted in res_gemv).
 */
static uint32_t gemv_f32_width(const struct board_cu *cu)
{
	return cu->gemv_f32 ? cu->gemv_f32 : FP8_GEMV_F32 ? FP8_GEMV_F32 : cu->axi_bits / 8;
}

static void res_gemv_f32(const struct board_cu *cu, int fam, uint32_t rows, struct board_res *r)
{
	uint64_t L = cu->n_ports > 1 ? cu->n_ports - 1 : 1, f = gemv_f32_width(cu);
	add_op(r, &f32_raw_mac[fam], L * rows * f);
	add_add(r, fam, L * rows * cdiv(7 * f, 128));
}

int board_res_gemv_f32(const struct board_desc *b, const struct board_cu *cu, struct board_res *r)
{
	if (!b || !cu || !r)
		return -EINVAL;
	memset(r, 0, sizeof *r);
	if (strcmp(cu->kernel, "fp8_gemv"))
		return -ENOENT;
	res_gemv_f32(cu, board_res_family(b), cu->gemv_rows ? cu->gemv_rows : FP8_GEMV_PR, r);
	return 0;
}

int board_res_fp8_datapath(const struct board_desc *b, const struct board_cu *cu,
			   struct board_res *r)
{
	if (!b || !cu || !r)
		return -EINVAL;
	memset(r, 0, sizeof *r);
	if (strcmp(cu->kernel, "mla_attn_lanes"))
		return -ENOENT;
	res_lanes_fp8(cu, board_res_family(b), r);
	return 0;
}

/* moe_route: MOE_ROUTE_EXP sigmoid/softmax units (exp, add, reciprocal), MOE_ROUTE_P lanes of
 * bias add, compare and softmax normalization (a multiply by the sum's reciprocal); the top-k
 * insertion over MOE_ROUTE_MAX_K compare-selects; the weights' divide. On chip: scores, selection
 * scores and group scores [MOE_ROUTE_MAX_E] f32 over P. */
static void res_route(int fam, struct board_res *r)
{
	add_exp(r, fam, MOE_ROUTE_EXP);
	add_add(r, fam, MOE_ROUTE_EXP + MOE_ROUTE_P);
	add_recip(r, fam, MOE_ROUTE_EXP + 1);
	add_mul(r, fam, MOE_ROUTE_P);
	r->lut += LUT_F32_CMP * (MOE_ROUTE_P + MOE_ROUTE_MAX_K);
	add_mem(r, 3 * MOE_ROUTE_MAX_E * 4, 3 * MOE_ROUTE_P, 0);
}

enum board_res_family board_res_family(const struct board_desc *b)
{
	return b && !strncmp(b->part, "xcv", 3) ? BOARD_RES_VERSAL : BOARD_RES_USP;
}

int board_res_cu(const struct board_desc *b, const struct board_cu *cu,
		 const struct board_res_opts *opts, struct board_res *r)
{
	if (!b || !cu || !r)
		return -EINVAL;
	memset(r, 0, sizeof *r);
	int fam = board_res_family(b);
	uint32_t rows = opts && opts->gemv_rows ? opts->gemv_rows
			: cu->gemv_rows		? cu->gemv_rows
						: FP8_GEMV_PR;
	if (!strcmp(cu->kernel, "fp8_gemm"))
		res_gemm(cu, fam, r);
	else if (!strcmp(cu->kernel, "fp8_gemv"))
		res_gemv(cu, fam, rows, r);
	else if (!strcmp(cu->kernel, "vec_ops"))
		res_vec(cu, fam, r);
	else if (!strcmp(cu->kernel, "mla_attn"))
		res_attn(cu, fam, r);
	else if (!strcmp(cu->kernel, "mla_kv_append"))
		res_kv_append(fam, r);
	else if (!strcmp(cu->kernel, "mla_attn_lanes"))
		res_lanes(cu, fam, r);
	else if (!strcmp(cu->kernel, "moe_route"))
		res_route(fam, r);
	else
		return -ENOENT;
	add_ports_ctrl(r, cu);
	return 0;
}

int board_res_total(const struct board_desc *b, const struct board_res_opts *opts,
		    struct board_res *total)
{
	if (!b || !total)
		return -EINVAL;
	memset(total, 0, sizeof *total);
	for (uint32_t i = 0; i < b->n_cus; i++) {
		struct board_res r;
		int rc = board_res_cu(b, &b->cu[i], opts, &r);
		if (rc)
			return rc;
		total->dsp += r.dsp;
		total->bram36 += r.bram36;
		total->uram += r.uram;
		total->lut += r.lut;
	}
	return 0;
}

/* used <= pct% of cap. */
static int within(uint64_t used, uint32_t cap, uint32_t pct)
{
	return used * 100 <= (uint64_t)cap * pct;
}

int board_res_fits(const struct board_desc *b, const struct board_res *t)
{
	if (!b || !t)
		return -EINVAL;
	if (!b->part_dsp)
		return -ENODATA;
	return within(t->dsp, b->part_dsp, BOARD_RES_MAX_DSP_PCT) &&
	       within(t->bram36, b->part_bram36, BOARD_RES_MAX_BRAM_PCT) &&
	       within(t->uram, b->part_uram, BOARD_RES_MAX_URAM_PCT) &&
	       within(t->lut, b->part_lut, BOARD_RES_MAX_LUT_PCT);
}

static double pct(uint64_t used, uint32_t cap)
{
	return cap ? 100.0 * (double)used / cap : 0.0;
}

int board_res_print(const struct board_desc *b, const struct board_res_opts *opts, FILE *out)
{
	if (!b || !out)
		return -EINVAL;
	struct board_res t;
	int rc = board_res_total(b, opts, &t);
	if (rc)
		return rc;
	fprintf(out, "resource estimate (%s costs; estimates until Vitis reports utilization):\n",
		board_res_family(b) == BOARD_RES_VERSAL ? "Versal DSP58" : "UltraScale+ DSP48E2");
	fprintf(out, "  %-20s %-15s %8s %8s %8s %10s\n", "cu", "kernel", "DSP", "BRAM36", "URAM",
		"LUT");
	for (uint32_t i = 0; i < b->n_cus; i++) {
		struct board_res r;
		board_res_cu(b, &b->cu[i], opts, &r);
		fprintf(out, "  %-20s %-15s %8llu %8llu %8llu %10llu\n", b->cu[i].name,
			b->cu[i].kernel, (unsigned long long)r.dsp, (unsigned long long)r.bram36,
			(unsigned long long)r.uram, (unsigned long long)r.lut);
	}
	fprintf(out, "  %-36s %8llu %8llu %8llu %10llu\n", "total", (unsigned long long)t.dsp,
		(unsigned long long)t.bram36, (unsigned long long)t.uram,
		(unsigned long long)t.lut);
	if (!b->part_dsp) {
		fprintf(out, "  part: no moecard,part-resources in the tree, fit not checked\n");
		return ferror(out) ? -EIO : 0;
	}
	fprintf(out, "  %-36s %8u %8u %8u %10u\n", "part", b->part_dsp, b->part_bram36,
		b->part_uram, b->part_lut);
	fprintf(out, "  %-36s %7.1f%% %7.1f%% %7.1f%% %9.1f%%\n", "fraction of the part",
		pct(t.dsp, b->part_dsp), pct(t.bram36, b->part_bram36), pct(t.uram, b->part_uram),
		pct(t.lut, b->part_lut));
	fprintf(
	    out,
	    "  fit rule: DSP and URAM <= %d%%, LUT and BRAM36 <= %d%% of the part (room for the "
	    "shell, routing and timing closure)\n",
	    BOARD_RES_MAX_DSP_PCT, BOARD_RES_MAX_LUT_PCT);
	for (uint32_t i = 0; i < b->n_cus; i++) {
		struct board_res f;
		if (board_res_fp8_datapath(b, &b->cu[i], &f))
			continue;
		if (b->cu[i].no_fp8)
			fprintf(
			    out,
			    "  %s: built without the FP8 attention datapath (moecard,fp8-datapath "
			    "= <0>); with it: +%llu DSP, +%llu LUT (%.1f%%, %.1f%% of the part)\n",
			    b->cu[i].name, (unsigned long long)f.dsp, (unsigned long long)f.lut,
			    pct(f.dsp, b->part_dsp), pct(f.lut, b->part_lut));
		else
			fprintf(
			    out,
			    "  %s: its FP8 attention datapath is in the figures above: %llu DSP, "
			    "%llu LUT\n",
			    b->cu[i].name, (unsigned long long)f.dsp, (unsigned long long)f.lut);
	}
	for (uint32_t i = 0; i < b->n_cus; i++) {
		struct board_res f;
		if (board_res_gemv_f32(b, &b->cu[i], &f))
			continue;
		fprintf(
		    out,
		    "  %s: of its figures, the f32 products (the bf16 lm_head and router gate, "
		    "f32 activations) at %u a lane and PE row a cycle: %llu DSP, %llu LUT (%.1f%%, "
		    "%.1f%% of the part)\n",
		    b->cu[i].name, gemv_f32_width(&b->cu[i]), (unsigned long long)f.dsp,
		    (unsigned long long)f.lut, pct(f.dsp, b->part_dsp), pct(f.lut, b->part_lut));
	}
	int fit = board_res_fits(b, &t);
	fprintf(out, "  verdict: %s", fit ? "fits with margin" : "DOES NOT FIT:");
	if (!fit) {
		if (!within(t.dsp, b->part_dsp, BOARD_RES_MAX_DSP_PCT))
			fprintf(out, " DSP");
		if (!within(t.bram36, b->part_bram36, BOARD_RES_MAX_BRAM_PCT))
			fprintf(out, " BRAM36");
		if (!within(t.uram, b->part_uram, BOARD_RES_MAX_URAM_PCT))
			fprintf(out, " URAM");
		if (!within(t.lut, b->part_lut, BOARD_RES_MAX_LUT_PCT))
			fprintf(out, " LUT");
		fprintf(out, " over the rule");
	}
	fputc('\n', out);
	return ferror(out) ? -EIO : 0;
}
