/*
 * dma_bench_main.c - build/dma_bench: prints the expert DMA figures of dma_bench_run for the
 * DeepSeek-V3 671B expert shape (or --hidden/--moe-inter): modeled transfer time over PCIe Gen3 x16
 * and Gen4 x16, optionally over the link, bank and latency of a card's dts (--board FILE.dtb), and
 * the measured host memcpy throughput of the emulated engine.
 * Usage: dma_bench [--reps N] [--hidden H] [--moe-inter I] [--board FILE.dtb]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "board.h"
#include "dma.h"
#include "dma_board.h"
#include "dma_bench.h"

#define USAGE "usage: dma_bench [--reps N] [--hidden H] [--moe-inter I] [--board FILE.dtb]"

int main(int argc, char **argv)
{
	unsigned long reps = 8, hidden = 7168, inter = 2048;
	const char *board = NULL;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--board") && i + 1 < argc) {
			board = argv[++i];
			continue;
		}
		unsigned long *dst = !strcmp(argv[i], "--reps")	       ? &reps
				     : !strcmp(argv[i], "--hidden")    ? &hidden
				     : !strcmp(argv[i], "--moe-inter") ? &inter
								       : NULL;
		char *end;
		if (!dst || i + 1 >= argc || (*dst = strtoul(argv[i + 1], &end, 10), *end) ||
		    *dst == 0 || *dst > 1000000) {
			fprintf(stderr, "dma_bench: bad argument '%s' (%s)\n", argv[i], USAGE);
			return 2;
		}
		i++;
	}
	static struct board_desc bd;
	struct dma_bank banks[BOARD_MAX_BANKS];
	struct dma_config cfg;
	char err[256] = "";
	int rc;
	if (board) {
		rc = board_load(board, &bd, err, sizeof(err));
		if (!rc)
			rc = dma_config_from_board(&bd, banks, BOARD_MAX_BANKS, &cfg);
		if (rc) {
			fprintf(stderr, "dma_bench: %s\n",
				err[0] ? err
				       : "board without banks, DMA channels or PCIe bandwidth");
			return 1;
		}
	}
	struct dma_bench_result r;
	rc = dma_bench_run((uint32_t)hidden, (uint32_t)inter, (unsigned)reps, &r, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "dma_bench: %s (%s)\n", err[0] ? err : "failed", strerror(-rc));
		return 1;
	}
	printf("expert: hidden %lu, moe_intermediate %lu, FP8 E4M3 + f32 128x128 scales: %llu "
	       "bytes (%.2f MB) in %u "
	       "SG elements\n",
	       hidden, inter, (unsigned long long)r.expert_bytes, r.expert_bytes / 1e6, r.n_sg);
	printf("modeled: PCIe Gen3 x16 (%.1f GB/s, %.0f ns/descriptor): %.3f ms per expert\n",
	       r.gen3_bw / 1e9, r.latency_ns, r.modeled_gen3_ns / 1e6);
	printf("modeled: PCIe Gen4 x16 (%.1f GB/s, %.0f ns/descriptor): %.3f ms per expert\n",
	       r.gen4_bw / 1e9, r.latency_ns, r.modeled_gen4_ns / 1e6);
	printf("modeled: PCIe Gen4 x16, 2 experts on 2 channels (shared link): %.3f ms\n",
	       r.modeled_gen4_2ch_ns / 1e6);
	if (board) {
		double ns = 0;
		unsigned bank = 0;
		rc = dma_bench_board(&cfg, (uint32_t)hidden, (uint32_t)inter, &ns, &bank, err,
				     sizeof(err));
		if (rc) {
			fprintf(stderr, "dma_bench: %s: %s (%s)\n", board,
				err[0] ? err : "no usable DMA config", strerror(-rc));
			return 1;
		}
		printf("modeled: board %s (link %.1f GB/s, bank %s %.1f GB/s, %lld ns/descriptor, "
		       "%u channels): "
		       "%.3f ms per expert\n",
		       bd.model, cfg.link_bw / 1e9, banks[bank].name, banks[bank].bw / 1e9,
		       (long long)cfg.desc_latency_ns, cfg.n_channels, ns / 1e6);
	}
	printf("measured: emul engine host memcpy: %.2f GB/s (%u transfers of %llu bytes in %.3f s "
	       "wall)\n",
	       r.measured_bw / 1e9, r.reps, (unsigned long long)r.expert_bytes, r.measured_s);
	return 0;
}
