/*
 * timing_check.h - validates the timing models against instrumentation: the including test
 * #defines HLS_COUNT (and optionally other tile sizes) and #includes the kernel sources, so every
 * pipelined loop counts its iterations in hls_count[]; each kernel is then run on a grid of
 * shapes and the counts must equal the model's trip counts exactly.
 */
#ifndef MOECARD_TIMING_CHECK_H
#define MOECARD_TIMING_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "hls_timing.h"

static const char *tc_loop_name[] = {
    "gemm_load_w", "gemm_load_x", "gemm_load_xs", "gemm_quant",	 "gemm_mac",	"gemm_scale",
    "gemm_store",  "gemm_silu",	  "vec_read",	  "vec_write",	 "vec_row",	"vec_exp",
    "attn_load",   "attn_score",  "attn_softmax", "attn_acc",	 "attn_store",	"append_write",
    "gemv_table",  "gemv_norm",	  "gemv_load_x",  "gemv_load_s", "gemv_mac",	"gemv_store",
    "gemv_silu",   "gemv_init",	  "latt_q",	  "latt_load",	 "latt_score",	"latt_softmax",
    "latt_acc",	   "latt_weight", "latt_merge",	  "latt_qquant", "latt_iscore", "latt_wquant",
    "latt_iacc",   "latt_bcast",  "mha_q",	  "mha_load",	 "mha_score",	"mha_softmax",
    "mha_acc",	   "mha_store"};
_Static_assert(sizeof tc_loop_name / sizeof tc_loop_name[0] == HLS_L_N,
	       "tc_loop_name: one name per hls_timing.h loop id, in its order");

static int tc_passed, tc_failed;

/* Compares counted iterations with the model for loops [lo, hi]; prints mismatches. */
static void tc_compare(const char *what, const uint64_t *model, int lo, int hi)
{
	int bad = 0;
	for (int i = lo; i <= hi; i++)
		if (hls_count[i] != model[i]) {
			if (!bad)
				printf("FAIL %s:", what);
			printf(" %s counted %llu model %llu;", tc_loop_name[i], hls_count[i],
			       (unsigned long long)model[i]);
			bad = 1;
		}
	if (bad) {
		printf("\n");
		tc_failed++;
	} else {
		tc_passed++;
	}
}

#ifdef MOECARD_FP8_GEMM_H /* the fp8_gemm grid, when the test includes fp8_gemm.c */
static void tc_gemm_grid(const struct hls_build *b)
{
	static const int Ms[] = {1, 3, 8, 130}, Ns[] = {1, 64, 100, 200}, Ks[] = {1, 128, 300};
	static const uint32_t fl[] = {FP8_GEMM_X_FP8, FP8_GEMM_X_F32 | FP8_GEMM_RESIDUAL,
				      FP8_GEMM_X_BF16 | FP8_GEMM_SILU_MUL | FP8_GEMM_Y_BF16,
				      FP8_GEMM_X_F32 | FP8_GEMM_ACT_F32 | FP8_GEMM_ACCUM};
	int cases = 0, before = tc_failed;
	for (int mi = 0; mi < 4; mi++)
		for (int ni = 0; ni < 4; ni++)
			for (int ki = 0; ki < 3; ki++)
				for (int f = 0; f < 4; f++) {
					int M = Ms[mi], N = Ns[ni], K = Ks[ki];
					void *x = calloc((size_t)M * K, 4),
					     *y = calloc((size_t)M * N, 4);
					uint8_t *w = calloc((size_t)N * K, 1);
					float *s = calloc((size_t)(M + N) * (K / 128 + 1) + 16, 4);
					struct fp8_gemm_cost c;
					char what[96];
					memset(hls_count, 0, sizeof hls_count);
					int rc = fp8_gemm(x, s, w, s, w, s, y, y, s, M, N, K, fl[f],
							  0, 0);
					int64_t cyc = fp8_gemm_cycles(b, M, N, K, fl[f], &c);
					snprintf(what, sizeof what,
						 "fp8_gemm M=%d N=%d K=%d flags=0x%x", M, N, K,
						 fl[f]);
					if (rc || cyc <= 0) {
						printf("FAIL %s: rc %d cycles %lld\n", what, rc,
						       (long long)cyc);
						tc_failed++;
					} else {
						tc_compare(what, c.it, HLS_L_GEMM_LOAD_W,
							   HLS_L_GEMM_SILU);
					}
					cases++;
					free(x);
					free(y);
					free(w);
					free(s);
				}
	printf("fp8_gemm (TM=%d TN=%d MB=%d): loop counts equal the model on %d of %d shapes\n",
	       b->tm, b->tn, b->mb, cases - (tc_failed - before), cases);
}
#endif

#ifdef MOECARD_MLA_ATTN_H
/* mla_attn_lanes and the striped append at the compiled-in MLA_LANE_MACS / MLA_LANE_IMACS: counts
 * vs the model on a grid of lanes, positions (partial blocks, lanes without tokens), heads, ranks,
 * formats and (fmt 3 below: FP8 records) the FP8 datapath. */
static inline void tc_lanes_grid(const struct hls_build *b)
{
	static const int Ls[] = {1, 3, 8}, poss[] = {0, 40, 130}, Hs[] = {1, 20};
	static const int dcs[] = {128, 512}, drs[] = {16, 64};
	int cases = 0, before = tc_failed;
	for (int li = 0; li < 3; li++)
		for (int pi = 0; pi < 3; pi++)
			for (int hi = 0; hi < 2; hi++)
				for (int di = 0; di < 2; di++)
					for (int fi = 0; fi < 4; fi++) {
						int fmt = fi < 3 ? fi : MLA_CACHE_FP8;
						int mode = fi < 3 ? MLA_ATTN_F32 : MLA_ATTN_FP8;
						if (mode == MLA_ATTN_FP8 && MLA_LANE_PASSES > 1)
							continue; /* (refused by such a build) */
						int L = Ls[li], pos = poss[pi], H = Hs[hi];
						int dc = dcs[di], dr = drs[di], T = pos + 1;
						uint64_t lb = mla_lanes_bytes(T, L, fmt, dc, dr);
						uint8_t *bank[8];
						float *q = calloc((size_t)H * (dc + dr), 4);
						float *o = calloc((size_t)H * dc, 4);
						float *cz = calloc((size_t)T * (dc + dr), 4);
						struct mla_attn_cost c;
						char what[112];
						for (int i = 0; i < L; i++)
							bank[i] = calloc(lb + 64, 1);
						memset(hls_count, 0, sizeof hls_count);
						int rc = mla_kv_append_lanes(cz, cz, bank, L, 64, 0,
									     T, dc, dr, fmt);
						int64_t cyc = mla_kv_append_lanes_cycles(
						    b, T, dc, dr, fmt, &c);
						snprintf(
						    what, sizeof what,
						    "mla_kv_append_lanes L=%d n=%d dc=%d fmt=%d", L,
						    T, dc, fmt);
						if (rc || cyc <= 0)
							tc_failed++,
							    printf("FAIL %s rc %d\n", what, rc);
						else
							tc_compare(what, c.it, HLS_L_APPEND,
								   HLS_L_APPEND);
						memset(hls_count, 0, sizeof hls_count);
						rc = mla_attn_lanes_run(
						    q, q, (const uint8_t *const *)bank, L, 64, o,
						    pos, H, dc, dr, fmt | mode, 0.1f);
						cyc = mla_attn_lanes_cycles2(
						    b, L, pos, H, dc, dr, fmt | mode, MLA_LANE_MACS,
						    MLA_LANE_IMACS, &c);
						snprintf(what, sizeof what,
							 "mla_attn_lanes L=%d pos=%d H=%d dc=%d "
							 "fmt=0x%x "
							 "macs=%d imacs=%d",
							 L, pos, H, dc, fmt | mode, MLA_LANE_MACS,
							 MLA_LANE_IMACS);
						if (rc || cyc <= 0)
							tc_failed++,
							    printf("FAIL %s rc %d\n", what, rc);
						else
							tc_compare(what, c.it, HLS_L_LATT_Q,
								   HLS_L_LATT_BCAST);
						cases += 2;
						for (int i = 0; i < L; i++)
							free(bank[i]);
						free(q);
						free(o);
						free(cz);
					}
	printf("mla_attn_lanes + striped append (MLA_LANE_MACS=%d, MLA_LANE_IMACS=%d): loop counts "
	       "equal the model on %d of %d shapes\n",
	       MLA_LANE_MACS, MLA_LANE_IMACS, cases - (tc_failed - before), cases);
}
#endif

#endif
