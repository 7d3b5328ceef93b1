/*
 * dma_bench.h - expert DMA figures (drivers/dma_bench.c, printed by build/dma_bench): the modeled
 * time to move one routed expert over a PCIe link through the emulated engine, and the measured
 * host memcpy throughput of that engine. Data flow: a synthetic expert image in a registered host
 * buffer -> one scatter-gather transfer (gate, up, down and their scales) -> a card bank slot.
 */
#ifndef MOECARD_DMA_BENCH_H
#define MOECARD_DMA_BENCH_H

#include <stddef.h>
#include <stdint.h>

/* Bytes of one routed expert stored as FP8 E4M3 with F32 128x128 block scales (docs/model.md,
 * Experts): gate and up [moe_inter, hidden], down [hidden, moe_inter], each with scale_inv
 * [ceil(out/128), ceil(in/128)] f32. DeepSeek-V3 671B (7168, 2048): 44,050,944 bytes. */
uint64_t dma_bench_expert_bytes(uint32_t hidden, uint32_t moe_inter);

/* Results of dma_bench_run. */
struct dma_bench_result {
	uint64_t expert_bytes;	    /* bytes per expert */
	unsigned n_sg;		    /* SG elements per expert transfer (3 weights + 3 scales) */
	double gen3_bw;		    /* link bandwidth used for Gen3 x16, bytes/s */
	double gen4_bw;		    /* link bandwidth used for Gen4 x16, bytes/s */
	double latency_ns;	    /* per-descriptor latency, ns */
	double modeled_gen3_ns;	    /* modeled: one expert over Gen3 x16, ns */
	double modeled_gen4_ns;	    /* modeled: one expert over Gen4 x16, ns */
	double modeled_gen4_2ch_ns; /* modeled: two experts on two channels over Gen4 x16, ns */
	unsigned reps;		    /* measured transfers */
	double measured_s;	    /* measured wall time of reps transfers, s */
	double measured_bw;	    /* measured emul engine throughput (host memcpy), bytes/s */
};

/*
 * Runs the bench for an expert of (hidden, moe_inter) with reps measured transfers (>= 1).
 * Library code: prints nothing. Errors: -EINVAL reps 0 or a zero shape, -ENOMEM, -EIO a transfer
 * failed or the copied bytes differ; errors of dma_dev_open (reason in err).
 */
int dma_bench_run(uint32_t hidden, uint32_t moe_inter, unsigned reps, struct dma_bench_result *r,
		  char *err, size_t err_len);

struct dma_config;

/*
 * Modeled time (*ns) of one expert sent as one SG transfer through an emulated engine opened with
 * cfg (typically from dma_config_from_board), into the first bank that holds it (*bank).
 * Errors: -EINVAL, -ENOSPC no bank holds an expert, -EIO the transfer failed; errors of
 * dma_dev_open (reason in err).
 */
int dma_bench_board(const struct dma_config *cfg, uint32_t hidden, uint32_t moe_inter, double *ns,
		    unsigned *bank, char *err, size_t err_len);

#endif /* MOECARD_DMA_BENCH_H */
