/*
 * hls_bench.c - prints the MODELED cycles, time and utilization of the HLS kernels for the
 * DeepSeek-V3 671B shapes on a U55C-like build (300 MHz, 512-bit AXI per HBM pseudo-channel at
 * 14.4 GB/s), from the kernels' timing models (nothing is executed). `make bench` runs it.
 * Decode GEMV (M=1) utilization is W bytes per cycle against the W bank's bandwidth; prefill
 * (M=2048 tokens; M=128 rows per routed expert) is MACs per cycle against the PE array's peak.
 * Usage: hls_bench [--check]   (--check: exit 1 unless decode >= 90% and prefill >= 85%)
 */
#include <stdio.h>
#include <string.h>
#include "hls_timing.h"
#include "hls/fp8_gemm/fp8_gemm.h"
#include "hls/vec_ops/vec_ops.h"
#include "hls/mla_attn/mla_attn.h"

struct shape {
	const char *name;
	int N, K;
	int prefill_m; /* rows in the prefill case */
};

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
	if (check)
		printf("goals (decode >= 90%% of bank bandwidth, prefill >= 85%% of PE peak): %s\n",
		       bad ? "NOT met" : "met");
	return check && bad ? 1 : 0;
}
