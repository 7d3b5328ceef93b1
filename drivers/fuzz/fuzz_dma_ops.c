/*
 * fuzz_dma_ops.c - libFuzzer target over the DMA driver's API on the emulated engine: the input is
 * a program of 8-byte operations (submit with arbitrary directions, channels, banks, offsets,
 * lengths and registered-buffer ranges; reap; wait; arm faults; reset). It checks that bad
 * arguments are refused without touching memory (ASan), that completion records come out in fence
 * order, one per submitted transfer, and that after disarming and resetting every channel drains.
 * Replayed from drivers/fuzz/corpus/fuzz_dma_ops/ in `make test`; `make fuzz` explores.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dma.h"

#define HOST_BYTES (64 << 10)
#define N_CH 2

static struct dma_dev *dev;
static struct dma_hbuf *hb;
static uint8_t *host;
static uint64_t reaped[N_CH]; /* last fence reaped per channel */

static const struct dma_bank banks[2] = {
    {.base = 0, .size = 64 << 10, .mem_group = -1},
    {.base = 1 << 20, .size = 4097, .bw = 1e9, .mem_group = -1},
};

/* Reaps records of ch and aborts unless they continue the fence sequence. */
static void reap(unsigned ch, unsigned max)
{
	struct dma_cpl c[8];
	int got = dma_chan_reap(dev, ch, c, max > 8 ? 8 : max);
	for (int i = 0; i < got; i++) {
		if (c[i].fence != reaped[ch] + 1 || c[i].status > DMA_STATUS_INVALID)
			abort();
		reaped[ch] = c[i].fence;
	}
}

static uint64_t rd16(const uint8_t *p)
{
	return (uint64_t)p[0] | (uint64_t)p[1] << 8;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!dev) {
		struct dma_config cfg = {.banks = banks,
					 .n_banks = 2,
					 .n_channels = N_CH,
					 .ring_order = 3,
					 .desc_latency_ns = 100};
		if (dma_dev_open(&dma_emul_i, &cfg, &dev, NULL, 0) ||
		    dma_hbuf_alloc(dev, 8192, &hb))
			abort();
		host = malloc(HOST_BYTES);
		if (!host)
			abort();
		memset(host, 0x11, HOST_BYTES);
	}
	for (size_t at = 0; at + 8 <= size; at += 8) {
		const uint8_t *b = data + at;
		unsigned ch = (b[1] >> 1) % 3; /* 2 is a bad channel */
		switch (b[0] % 6) {
		case 0: { /* submit */
			struct dma_sg sg[4];
			unsigned n = b[2] % 5;
			for (unsigned i = 0; i < n; i++) {
				uint64_t r = rd16(b + 3) * (i + 1) + b[5] * i;
				size_t len = (size_t)(b[6] % 4 == 0 ? rd16(b + 4)
								    : (r % 9000) + (b[7] >> 4));
				memset(&sg[i], 0, sizeof(sg[i]));
				sg[i].bank = (unsigned)((b[7] + i) % 3);
				sg[i].card_off = (b[6] & 8) ? r * 16 : r;
				sg[i].len = len;
				if ((b[6] & 16) || len > HOST_BYTES) {
					sg[i].hbuf = hb;
					sg[i].hbuf_off = r % 9000;
				} else {
					sg[i].host = host + (r % (HOST_BYTES - len + 1));
				}
			}
			struct dma_xfer x = {
			    .dir = (enum dma_dir)(b[1] & 1), .sg = sg, .n_sg = n, .cookie = at};
			uint64_t f = 0;
			int rc = dma_chan_submit(dev, ch, &x, &f);
			if (rc == 0 && f != dma_fence_submitted(dev, ch))
				abort();
			if (rc != 0 && rc != -EINVAL && rc != -ERANGE && rc != -EAGAIN)
				abort();
			break;
		}
		case 1:
			if (ch < N_CH)
				reap(ch, b[2] % 9);
			break;
		case 2: {
			int rc =
			    dma_fence_wait(dev, ch, dma_fence_completed(dev, ch % N_CH) + b[2] % 3,
					   (b[3] % 4) * 1000000);
			if (rc != 0 && rc != -EINVAL && rc != -EIO && rc != -ETIMEDOUT)
				abort();
			break;
		}
		case 3:
			dma_dev_fault_set(dev, (enum dma_fault)(b[2] % 5), b[3] % 16, b[4] & 1);
			break;
		case 4:
			dma_chan_reset(dev, ch, 1000000000);
			break;
		default:
			if (ch < N_CH &&
			    dma_fence_completed(dev, ch) > dma_fence_submitted(dev, ch))
				abort();
			break;
		}
	}
	/* Drain: nothing may be lost or left running. */
	dma_dev_fault_set(dev, DMA_FAULT_NONE, 0, 0);
	for (unsigned ch = 0; ch < N_CH; ch++) {
		if (dma_chan_reset(dev, ch, 5000000000ll))
			abort();
		reap(ch, 1u << 20);
		while (reaped[ch] < dma_fence_submitted(dev, ch))
			reap(ch, 8);
		if (dma_fence_completed(dev, ch) != dma_fence_submitted(dev, ch))
			abort();
	}
	return 0;
}
