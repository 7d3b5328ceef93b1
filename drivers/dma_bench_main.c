/*
 * dma_bench_main.c - build/dma_bench: prints the expert DMA figures of dma_bench_run for the
 * DeepSeek-V3 671B expert shape (or --hidden/--moe-inter): modeled transfer time over PCIe Gen3 x16
 * and Gen4 x16, and the measured host memcpy throughput of the emulated engine.
 * Usage: dma_bench [--reps N] [--hidden H] [--moe-inter I]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dma_bench.h"

int main(int argc, char **argv)
{
	unsigned long reps = 8, hidden = 7168, inter = 2048;
	for (int i = 1; i < argc; i++) {
		unsigned long *dst = !strcmp(argv[i], "--reps")        ? &reps
		                   : !strcmp(argv[i], "--hidden")      ? &hidden
		                   : !strcmp(argv[i], "--moe-inter")   ? &inter
		                                                       : NULL;
		char *end;
		if (!dst || i + 1 >= argc || (*dst = strtoul(argv[i + 1], &end, 10), *end) || *dst == 0 ||
		    *dst > 1000000) {
			fprintf(stderr, "dma_bench: bad argument '%s' (usage: dma_bench [--reps N] [--hidden H] "
			                "[--moe-inter I])\n", argv[i]);
			return 2;
		}
		i++;
	}
	struct dma_bench_result r;
	char err[256] = "";
	int rc = dma_bench_run((uint32_t)hidden, (uint32_t)inter, (unsigned)reps, &r, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "dma_bench: %s (%s)\n", err[0] ? err : "failed", strerror(-rc));
		return 1;
	}
	printf("expert: hidden %lu, moe_intermediate %lu, FP8 E4M3 + f32 128x128 scales: %llu bytes (%.2f MB) in %u "
	       "SG elements\n", hidden, inter, (unsigned long long)r.expert_bytes, r.expert_bytes / 1e6, r.n_sg);
	printf("modeled: PCIe Gen3 x16 (%.1f GB/s, %.0f ns/descriptor): %.3f ms per expert\n", r.gen3_bw / 1e9,
	       r.latency_ns, r.modeled_gen3_ns / 1e6);
	printf("modeled: PCIe Gen4 x16 (%.1f GB/s, %.0f ns/descriptor): %.3f ms per expert\n", r.gen4_bw / 1e9,
	       r.latency_ns, r.modeled_gen4_ns / 1e6);
	printf("modeled: PCIe Gen4 x16, 2 experts on 2 channels (shared link): %.3f ms\n",
	       r.modeled_gen4_2ch_ns / 1e6);
	printf("measured: emul engine host memcpy: %.2f GB/s (%u transfers of %llu bytes in %.3f s wall)\n",
	       r.measured_bw / 1e9, r.reps, (unsigned long long)r.expert_bytes, r.measured_s);
	return 0;
}
