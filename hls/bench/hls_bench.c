/*
 * hls_bench.c - prints the MODELED cycles, time and utilization of the HLS kernels for the
 * DeepSeek-V3 671B shapes on a U55C-like build (300 MHz, 512-bit AXI per HBM pseudo-channel at
 * 14.4 GB/s), from the kernels' timing models (nothing is executed). `make bench` runs it.
 * Decode GEMV (M=1) utilization is W bytes per cycle against the W bank's bandwidth; prefill
 * (M=2048 tokens; M=128 rows per routed expert) is MACs per cycle against the PE array's peak.
 * fp8_gemv rows: one command per decode step of a layer, its weights striped over 32 lanes (one
 * HBM pseudo-channel each); utilization is lane bytes per cycle against 32 banks' bandwidth.
 * Usage: hls_bench [--check]   (--check: exit 1 unless decode >= 90% and prefill >= 85%)
 */
#include <stdio.h>
#include <string.h>
#include "hls_timing.h"
#include "hls/fp8_gemm/fp8_gemm.h"
#include "hls/fp8_gemv/fp8_gemv.h"
#include "hls/vec_ops/vec_ops.h"
#include "hls/mla_attn/mla_attn.h"

struct shape {
	const char *name;
	int N, K;
	int prefill_m; /* rows in the prefill case */
};

/* One fp8_gemv command of ng groups (m = 1): modeled cycles, time and lane-bandwidth use. */
static void gemv_row(const struct hls_build *b, const char *name, const struct fp8_gemv_grp *tab,
		     int ng, int L)
{
	struct fp8_gemv_cost c;
	int64_t cy = fp8_gemv_cycles(b, L, tab, ng, 1, &c);
	printf("%-34s %4d %12lld %12.1f %9.1f%% %10.1f\n", name, ng, (long long)cy,
	       cy / b->clock_mhz, 100 * c.util_bw, c.lane_bytes_total / 1e6);
}

static struct fp8_gemv_grp gemv_grp(uint32_t n, uint32_t k, uint32_t flags)
{
	struct fp8_gemv_grp g = {0};
	g.n = n;
	g.k = k;
	g.ldx = k;
	g.ldy = n;
	g.flags = flags;
	return g;
}

/* DeepSeek-V3 671B decode (hidden 7168, q_lora 1536, kv_lora 512 + rope 64, 128 heads of
 * 128 nope + 64 rope, expert inter 2048, 8 routed + 1 shared, dense inter 18432, vocab 129280),
 * one token, 32 lanes. */
static void gemv_bench(const struct hls_build *b)
{
	enum { L = 32, H = 128 };
	static struct fp8_gemv_grp t[H];
	printf("\nfp8_gemv decode commands (m=1, %d lanes, MODELED)\n", L);
	printf("%-34s %4s %12s %12s %10s %10s\n", "command", "grps", "cycles(mod)", "time_us(mod)",
	       "util_bw", "MB read");
	t[0] = gemv_grp(1536, 7168, 0);
	t[1] = gemv_grp(576, 7168, 0);
	gemv_row(b, "attn q_a 1536 + kv_a 576 (x7168)", t, 2, L);
	t[0] = gemv_grp(24576, 1536, 0);
	gemv_row(b, "attn q_b 1536->24576", t, 1, L);
	for (int h = 0; h < H; h++)
		t[h] = gemv_grp(512, 128, FP8_GEMV_ACT_F32);
	gemv_row(b, "attn W_UK^T q_nope, 128 x 128->512", t, H, L);
	for (int h = 0; h < H; h++)
		t[h] = gemv_grp(128, 512, FP8_GEMV_ACT_F32);
	gemv_row(b, "attn W_UV lat, 128 x 512->128", t, H, L);
	t[0] = gemv_grp(7168, 16384, FP8_GEMV_RESIDUAL);
	gemv_row(b, "attn o 16384->7168 + residual", t, 1, L);
	t[0] = gemv_grp(18432, 7168, FP8_GEMV_SILU_MUL);
	gemv_row(b, "dense gate+up silu 7168->18432", t, 1, L);
	t[0] = gemv_grp(7168, 18432, FP8_GEMV_RESIDUAL);
	gemv_row(b, "dense down 18432->7168 + residual", t, 1, L);
	for (int e = 0; e < 9; e++)
		t[e] = gemv_grp(2048, 7168, FP8_GEMV_SILU_MUL);
	gemv_row(b, "moe gate+up silu, 9 x 7168->2048", t, 9, L);
	for (int e = 0; e < 9; e++)
		t[e] = gemv_grp(7168, 2048, FP8_GEMV_ACCUM | (e ? 0 : FP8_GEMV_RESIDUAL));
	gemv_row(b, "moe down accum, 9 x 2048->7168", t, 9, L);
	t[0] = gemv_grp(129280, 7168, FP8_GEMV_W_BF16);
	gemv_row(b, "lm_head bf16 7168->129280", t, 1, L);
}

int main(int argc, char **argv)
{
	int check = argc > 1 && !strcmp(argv[1], "--check");
	struct hls_build b;
	hls_build_default(&b);
	static const struct shape sh[] = {
	    {"q_a   7168->1536", 1536, 7168, 2048},	{"q_b   1536->24576", 24576, 1536, 2048},
	    {"kv_a  7168->576", 576, 7168, 2048},	{"kv_b  512->32768", 32768, 512, 2048},
	    {"o     16384->7168", 7168, 16384, 2048},	{"expert 7168->2048", 2048, 7168, 128},
	    {"expert 2048->7168", 7168, 2048, 128},	{"dense 7168->18432", 18432, 7168, 2048},
	    {"head  7168->129280", 129280, 7168, 2048},
	};
	double us_per_cyc = 1.0 / b.clock_mhz;
	int bad = 0;
	printf("hls_bench: MODELED figures (timing models, not measurements): fp8_gemm TM=%d TN=%d "
	       "MB=%d, %d-bit AXI, %.0f MHz, bank %.1f GB/s (%.1f B/cycle)\n",
	       b.tm, b.tn, b.mb, b.axi_bits, b.clock_mhz, b.bank_gbps,
	       hls_bank_bytes_per_cycle(&b));
	printf("%-20s %-8s %6s %14s %12s %10s %s\n", "kernel/shape", "case", "M", "cycles(mod)",
	       "time_us(mod)", "util(mod)", "of");
	for (size_t i = 0; i < sizeof sh / sizeof sh[0]; i++) {
		struct fp8_gemm_cost c;
		int64_t cy = fp8_gemm_cycles(&b, 1, sh[i].N, sh[i].K, FP8_GEMM_X_FP8, &c);
		printf("%-20s %-8s %6d %14lld %12.1f %9.1f%% W-bank bandwidth\n", sh[i].name,
		       "decode", 1, (long long)cy, cy * us_per_cyc, 100 * c.util_bw);
		bad += c.util_bw < 0.90;
		cy = fp8_gemm_cycles(&b, sh[i].prefill_m, sh[i].N, sh[i].K, FP8_GEMM_X_FP8, &c);
		printf("%-20s %-8s %6d %14lld %12.1f %9.1f%% PE peak (%d MAC/cycle)\n", sh[i].name,
		       "prefill", sh[i].prefill_m, (long long)cy, cy * us_per_cyc, 100 * c.util_pe,
		       b.tm * b.tn);
		bad += c.util_pe < 0.85;
	}
	{ /* fused expert gate+up with SiLU, decode */
		struct fp8_gemm_cost c;
		int64_t cy =
		    fp8_gemm_cycles(&b, 1, 2048, 7168, FP8_GEMM_X_F32 | FP8_GEMM_SILU_MUL, &c);
		printf("%-20s %-8s %6d %14lld %12.1f %9.1f%% W-bank bandwidth\n",
		       "expert gate+up silu", "decode", 1, (long long)cy, cy * us_per_cyc,
		       100 * c.util_bw);
	}
	{
		struct vec_ops_cost v;
		int64_t cy = vec_ops_cycles(&b, VEC_OP_RMSNORM, 1, 7168, 0, &v);
		printf("%-20s %-8s %6d %14lld %12.2f\n", "vec rmsnorm 7168", "decode", 1,
		       (long long)cy, cy * us_per_cyc);
		cy = vec_ops_cycles(&b, VEC_OP_ACT_QUANT, 2048, 7168, 0, &v);
		printf("%-20s %-8s %6d %14lld %12.1f\n", "vec act-quant 7168", "prefill", 2048,
		       (long long)cy, cy * us_per_cyc);
	}
	for (int fmt = 1; fmt <= 2; fmt++) {
		struct mla_attn_cost a;
		int64_t cy = mla_attn_cycles(&b, 1, 4095, 128, 512, 64, fmt, &a);
		printf("%-20s %-8s %6d %14lld %12.1f %9.1f%% of %d MAC/cycle (T=4096, %s cache)\n",
		       "mla_attn 128 heads", "decode", 1, (long long)cy, cy * us_per_cyc,
		       100.0 * a.macs / ((double)cy * MLA_HG * MLA_DL), MLA_HG * MLA_DL,
		       fmt == 1 ? "BF16" : "FP8");
	}
	gemv_bench(&b);
	if (check)
		printf("goals (decode >= 90%% of bank bandwidth, prefill >= 85%% of PE peak): %s\n",
		       bad ? "NOT met" : "met");
	return check && bad ? 1 : 0;
}
