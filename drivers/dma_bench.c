/*
 * dma_bench.c - expert DMA figures (dma_bench.h): one routed expert as a 6-element scatter-gather
 * transfer through the emulated engine, modeled over PCIe Gen3 x16 and Gen4 x16, plus the measured
 * wall-clock throughput of the emulated engine (its worker's host memcpy). Every modeled figure is
 * the engine's virtual clock (docs/architecture.md, emulated card and timing model), never wall
 * time.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "dma.h"
#include "dma_bench.h"

#define BENCH_BLOCK 128

/* Writes a bench error message; returns rc. */
static int dma_err_set_bench(char *err, size_t err_len, int rc, const char *msg)
{
	if (err && err_len)
		snprintf(err, err_len, "dma_bench: %s", msg);
	return rc;
} /* weight_block_size of the FP8 scales */

/* Bytes of one FP8 weight [out, in] plus its f32 scale_inv [ceil(out/128), ceil(in/128)]. */
static void bench_weight(uint64_t out, uint64_t in, uint64_t *w, uint64_t *s)
{
	*w = out * in;
	*s = 4 * ((out + BENCH_BLOCK - 1) / BENCH_BLOCK) * ((in + BENCH_BLOCK - 1) / BENCH_BLOCK);
}

uint64_t dma_bench_expert_bytes(uint32_t hidden, uint32_t moe_inter)
{
	uint64_t w, s, gu_w, gu_s;
	bench_weight(moe_inter, hidden, &gu_w, &gu_s);
	bench_weight(hidden, moe_inter, &w, &s);
	return 2 * (gu_w + gu_s) + w + s;
}

/* Fills sg[6] for the expert image at hb (gate w, gate s, up w, up s, down w, down s), packed at
 * card_off in bank `bank`. */
static void bench_sg_bank(struct dma_sg *sg, struct dma_hbuf *hb, unsigned bank, uint64_t card_off,
			  uint32_t hidden, uint32_t moe_inter)
{
	uint64_t len[6], off = 0;
	bench_weight(moe_inter, hidden, &len[0], &len[1]);
	len[2] = len[0];
	len[3] = len[1];
	bench_weight(hidden, moe_inter, &len[4], &len[5]);
	for (int i = 0; i < 6; i++) {
		memset(&sg[i], 0, sizeof(sg[i]));
		sg[i].hbuf = hb;
		sg[i].hbuf_off = off;
		sg[i].bank = bank;
		sg[i].card_off = card_off + off;
		sg[i].len = len[i];
		off += len[i];
	}
}

/* bench_sg_bank into bank 0. */
static void bench_sg(struct dma_sg *sg, struct dma_hbuf *hb, uint64_t card_off, uint32_t hidden,
		     uint32_t moe_inter)
{
	bench_sg_bank(sg, hb, 0, card_off, hidden, moe_inter);
}

/* Opens an emul device with one bank for two experts at link bandwidth bw. */
static int bench_open(double bw, uint64_t bytes, struct dma_dev **dev, char *err, size_t err_len)
{
	struct dma_bank bank = {
	    .base = 0, .size = 2 * bytes, .bw = 0, .mem_group = -1, .name = "slots"};
	struct dma_config cfg = {.banks = &bank, .n_banks = 1, .n_channels = 2, .link_bw = bw};
	return dma_dev_open(&dma_emul_i, &cfg, dev, err, err_len);
}

/* Sends one expert on channel ch at card_off and waits; *ns gets its modeled duration. */
static int bench_one(struct dma_dev *dev, unsigned ch, struct dma_hbuf *hb, uint64_t card_off,
		     uint32_t hidden, uint32_t moe_inter, double *ns)
{
	struct dma_sg sg[6];
	struct dma_cpl c;
	bench_sg(sg, hb, card_off, hidden, moe_inter);
	struct dma_xfer x = {.dir = DMA_DIR_H2C, .sg = sg, .n_sg = 6};
	int rc = dma_copy_sync(dev, ch, &x, 0, -1, &c);
	if (rc)
		return rc;
	if (ns)
		*ns = (double)(c.t_end_ns - c.t_start_ns);
	return 0;
}

/* Modeled figures at link bandwidth bw: one expert, and two experts on two channels. */
static int bench_modeled(double bw, struct dma_hbuf **hbp, struct dma_bench_result *r, double *one,
			 double *two, uint32_t hidden, uint32_t moe_inter, char *err,
			 size_t err_len)
{
	struct dma_dev *dev;
	struct dma_hbuf *hb = NULL;
	int rc = bench_open(bw, r->expert_bytes, &dev, err, err_len);
	if (rc)
		return rc;
	rc = dma_hbuf_alloc(dev, r->expert_bytes, &hb);
	if (rc)
		goto out;
	memset(dma_hbuf_ptr(hb), 0x3C, r->expert_bytes);
	rc = bench_one(dev, 0, hb, 0, hidden, moe_inter, one);
	if (rc || !two)
		goto out;
	/* Two experts issued together on two channels: the link is shared, latencies overlap. */
	uint64_t t0 = dma_dev_vclock_ns(dev), f0, f1;
	struct dma_sg sa[6], sb[6];
	bench_sg(sa, hb, 0, hidden, moe_inter);
	bench_sg(sb, hb, r->expert_bytes, hidden, moe_inter);
	struct dma_xfer xa = {.dir = DMA_DIR_H2C, .sg = sa, .n_sg = 6, .not_before_ns = t0};
	struct dma_xfer xb = {.dir = DMA_DIR_H2C, .sg = sb, .n_sg = 6, .not_before_ns = t0};
	rc = dma_chan_submit(dev, 0, &xa, &f0);
	if (!rc)
		rc = dma_chan_submit(dev, 1, &xb, &f1);
	if (!rc)
		rc = dma_fence_wait(dev, 0, f0, -1);
	if (!rc)
		rc = dma_fence_wait(dev, 1, f1, -1);
	if (!rc)
		*two = (double)(dma_dev_vclock_ns(dev) - t0);
out:
	if (hbp && !rc) {
		*hbp = hb; /* caller keeps measuring on this device */
		return 0;
	}
	dma_hbuf_free(dev, hb);
	dma_dev_close(dev);
	return rc;
}

int dma_bench_run(uint32_t hidden, uint32_t moe_inter, unsigned reps, struct dma_bench_result *r,
		  char *err, size_t err_len)
{
	if (!r || reps == 0 || hidden == 0 || moe_inter == 0)
		return -EINVAL;
	memset(r, 0, sizeof(*r));
	r->expert_bytes = dma_bench_expert_bytes(hidden, moe_inter);
	r->n_sg = 6;
	r->gen3_bw = DMA_LINK_PCIE_GEN3_X16;
	r->gen4_bw = DMA_LINK_PCIE_GEN4_X16;
	r->latency_ns = DMA_DESC_LATENCY_DEF_NS;
	r->reps = reps;
	int rc = bench_modeled(r->gen3_bw, NULL, r, &r->modeled_gen3_ns, NULL, hidden, moe_inter,
			       err, err_len);
	if (rc)
		return rc;
	rc = bench_modeled(r->gen4_bw, NULL, r, &r->modeled_gen4_ns, &r->modeled_gen4_2ch_ns,
			   hidden, moe_inter, err, err_len);
	if (rc)
		return rc;

	/* Measured: wall time of reps expert transfers through the emul engine (memcpy bound). */
	struct dma_dev *dev;
	struct dma_hbuf *hb = NULL;
	rc = bench_open(r->gen4_bw, r->expert_bytes, &dev, err, err_len);
	if (rc)
		return rc;
	rc = dma_hbuf_alloc(dev, r->expert_bytes, &hb);
	if (rc)
		goto out;
	uint8_t *src = dma_hbuf_ptr(hb);
	for (uint64_t i = 0; i < r->expert_bytes; i++)
		src[i] = (uint8_t)(i * 131 + (i >> 13));
	rc = bench_one(dev, 0, hb, 0, hidden, moe_inter, NULL); /* warm: fault in the bank pages */
	if (rc)
		goto out;
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (unsigned i = 0; i < reps && !rc; i++)
		rc = bench_one(dev, i & 1, hb, 0, hidden, moe_inter, NULL);
	clock_gettime(CLOCK_MONOTONIC, &b);
	if (rc)
		goto out;
	r->measured_s = (double)(b.tv_sec - a.tv_sec) + 1e-9 * (double)(b.tv_nsec - a.tv_nsec);
	r->measured_bw = r->measured_s > 0 ? (double)r->expert_bytes * reps / r->measured_s : 0;
	if (memcmp(dma_dev_bank_ptr(dev, 0), src, r->expert_bytes) != 0)
		rc = -EIO;
out:
	dma_hbuf_free(dev, hb);
	dma_dev_close(dev);
	return rc;
}

int dma_bench_board(const struct dma_config *cfg, uint32_t hidden, uint32_t moe_inter, double *ns,
		    unsigned *bank, char *err, size_t err_len)
{
	if (!cfg || !ns || !bank || hidden == 0 || moe_inter == 0)
		return -EINVAL;
	uint64_t bytes = dma_bench_expert_bytes(hidden, moe_inter);
	unsigned b = 0;
	while (b < cfg->n_banks && cfg->banks[b].size < bytes)
		b++;
	if (b == cfg->n_banks)
		return dma_err_set_bench(err, err_len, -ENOSPC, "no bank holds one expert");
	struct dma_dev *dev;
	struct dma_hbuf *hb = NULL;
	int rc = dma_dev_open(&dma_emul_i, cfg, &dev, err, err_len);
	if (rc)
		return rc;
	rc = dma_hbuf_alloc(dev, bytes, &hb);
	if (!rc) {
		memset(dma_hbuf_ptr(hb), 0x5A, bytes);
		struct dma_sg sg[6];
		struct dma_cpl c;
		bench_sg_bank(sg, hb, b, 0, hidden, moe_inter);
		struct dma_xfer x = {.dir = DMA_DIR_H2C, .sg = sg, .n_sg = 6};
		rc = dma_copy_sync(dev, 0, &x, 0, -1, &c);
		if (!rc) {
			*ns = (double)(c.t_end_ns - c.t_start_ns);
			*bank = b;
		}
	}
	dma_hbuf_free(dev, hb);
	dma_dev_close(dev);
	return rc;
}
