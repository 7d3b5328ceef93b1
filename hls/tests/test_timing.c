/*
 * test_timing.c - timing models vs an HLS_COUNT C-simulation build of all kernels (default
 * tiles): fp8_gemm, vec_ops, mla_attn, mla_attn_lanes and the KV appends on shape grids (see
 * timing_check.h); and mla_attn's compute width changes no bit (against the one-lane striped
 * attention, itself mla_attn's bits at the default width: test_timing_lanes16).
 */
#define HLS_COUNT 1
#include "hls/fp8_gemm/fp8_gemm.c"
#include "hls/vec_ops/vec_ops.c"
#include "hls/mla_attn/mla_attn.c"
#include "hls/mla_attn/mla_attn_lanes.c"
#include "timing_check.h"
#include "attn_one_lane.h"

static void vec_grid(const struct hls_build *b)
{
	static const int ns[] = {1, 16, 130, 1000};
	int cases = 0, before = tc_failed;
	for (int op = VEC_OP_RMSNORM; op <= VEC_OP_COMBINE; op++)
		for (int r = 1; r <= 3; r += 2)
			for (int ni = 0; ni < 4; ni++) {
				int n = ns[ni] + (op == VEC_OP_ROPE && (ns[ni] & 1));
				/* COMBINE: k = 1 and 3 terms per row; GATHER and COMBINE read 3
				 * source rows */
				int k = op == VEC_OP_COMBINE ? r : 0,
				    src = k || op == VEC_OP_GATHER;
				float *a = calloc((size_t)(r > 3 ? r : 3) * n, 4),
				      *bb = calloc((size_t)r * n + n + 9,
						   4); /* COMBINE: r k weights */
				float *y = calloc((size_t)r * n, 4), *qs = calloc((size_t)r * n, 4);
				uint8_t *q = calloc((size_t)r * n, 1);
				int32_t idx[9] = {0, 2, 1, 1, 0, 2, 2, 2, 0}, z[9] = {0};
				int32_t *pos = src ? idx : z;
				struct vec_ops_cost c;
				char what[64];
				memset(hls_count, 0, sizeof hls_count);
				int rc = vec_ops(op, a, bb, y, q, qs, pos, r, n, n, n, 1e-6f, 0, k,
						 src ? 3 : 0);
				int64_t cyc = vec_ops_cycles2(b, op, r, n, k ? k : 1, 0, &c);
				snprintf(what, sizeof what, "vec_ops op=%d rows=%d n=%d", op, r, n);
				if (rc || cyc <= 0) {
					printf("FAIL %s: rc %d cycles %lld\n", what, rc,
					       (long long)cyc);
					tc_failed++;
				} else {
					tc_compare(what, c.it, HLS_L_VEC_READ, HLS_L_VEC_EXP);
				}
				cases++;
				free(a);
				free(bb);
				free(y);
				free(qs);
				free(q);
			}
	printf("vec_ops: loop counts equal the model on %d of %d shapes\n",
	       cases - (tc_failed - before), cases);
}

static void attn_grid(const struct hls_build *b)
{
	static const int Hs[] = {4, 20}, dcs[] = {128, 512}, drs[] = {16, 64}, pos0s[] = {0, 40};
	int cases = 0, before = tc_failed;
	for (int hi = 0; hi < 2; hi++)
		for (int di = 0; di < 2; di++)
			for (int fmt = 0; fmt < 3; fmt++)
				for (int nq = 1; nq <= 2; nq++)
					for (int pi = 0; pi < 2; pi++) {
						int H = Hs[hi], dc = dcs[di], dr = drs[di],
						    pos0 = pos0s[pi];
						int T = pos0 + nq;
						size_t rb = mla_record_bytes(fmt, dc, dr);
						float *ql = calloc((size_t)nq * H * (dc + dr), 4);
						float *o = calloc((size_t)nq * H * dc, 4);
						float *cz = calloc((size_t)T * (dc + dr), 4);
						uint8_t *cache = calloc((size_t)T, rb);
						struct mla_attn_cost c;
						char what[96];
						memset(hls_count, 0, sizeof hls_count);
						int rc =
						    mla_kv_append(cz, cz, cache, 0, T, dc, dr, fmt);
						int64_t cyc =
						    mla_kv_append_cycles(b, T, dc, dr, fmt, &c);
						snprintf(what, sizeof what,
							 "mla_kv_append n=%d dc=%d fmt=%d", T, dc,
							 fmt);
						if (rc || cyc <= 0)
							tc_failed++,
							    printf("FAIL %s rc %d\n", what, rc);
						else
							tc_compare(what, c.it, HLS_L_APPEND,
								   HLS_L_APPEND);
						memset(hls_count, 0, sizeof hls_count);
						rc = mla_attn(ql, ql, cache, o, nq, pos0, H, dc, dr,
							      fmt, 0.1f);
						cyc = mla_attn_cycles(b, nq, pos0, H, dc, dr, fmt,
								      &c);
						snprintf(what, sizeof what,
							 "mla_attn H=%d dc=%d dr=%d fmt=%d nq=%d "
							 "pos0=%d",
							 H, dc, dr, fmt, nq, pos0);
						if (rc || cyc <= 0)
							tc_failed++,
							    printf("FAIL %s rc %d\n", what, rc);
						else
							tc_compare(what, c.it, HLS_L_ATTN_LOAD,
								   HLS_L_ATTN_STORE);
						cases += 2;
						free(ql);
						free(o);
						free(cz);
						free(cache);
					}
	/* the folded append of n rows in one call (a prompt's rows of one block) */
	for (int fmt = 0; fmt < 3; fmt++)
		for (int n = 1; n <= 32; n += 31) {
			int dc = 512, dr = 64, rows = n;
			size_t rb = mla_record_bytes(fmt, dc, dr);
			float *row = calloc((size_t)rows * (dc + dr), 4),
			      *w = calloc((size_t)dc, 4);
			float *tab = calloc((size_t)(rows + 3) * dr, 4);
			uint8_t *cache = calloc((size_t)rows + 3, rb);
			struct mla_attn_cost c;
			char what[96];
			memset(hls_count, 0, sizeof hls_count);
			int rc = row && w && tab && cache
				     ? mla_kv_append_fold_rows(row, rows, w, 1e-6f, tab, 3, cache,
							       3, dc, dr, fmt)
				     : -1;
			int64_t cyc = mla_kv_append_fold_rows_cycles(b, rows, dc, dr, fmt, &c);
			int64_t one = mla_kv_append_fold_cycles(b, dc, dr, fmt, NULL);
			snprintf(what, sizeof what, "mla_kv_append_fold_rows n=%d fmt=%d", rows,
				 fmt);
			/* one row: the one-row call's cycles; n: the latency once, the rest n times */
			if (rc || cyc <= 0 ||
			    cyc != (int64_t)b->mem_latency + rows * (one - (int64_t)b->mem_latency))
				tc_failed++, printf("FAIL %s rc %d cycles %lld (one %lld)\n", what,
						    rc, (long long)cyc, (long long)one);
			else
				tc_compare(what, c.it, HLS_L_APPEND, HLS_L_APPEND);
			cases++;
			free(row);
			free(w);
			free(tab);
			free(cache);
		}
	printf("mla_attn + append: loop counts equal the model on %d of %d shapes\n",
	       cases - (tc_failed - before), cases);
}

int main(void)
{
	struct hls_build b;
	hls_build_default(&b);
	tc_gemm_grid(&b);
	vec_grid(&b);
	attn_grid(&b);
	/* mla_attn at the build's MLA_ATTN_MACS against mla_attn_lanes on one lane */
	char what[48];
	snprintf(what, sizeof what, "mla_attn at %d MACs a cycle", MLA_ATTN_MACS);
	attn_one_lane_check(what, &tc_passed, &tc_failed);
	tc_lanes_grid(&b);
	printf("%d passed, %d failed\n", tc_passed, tc_failed);
	return tc_failed != 0;
}
