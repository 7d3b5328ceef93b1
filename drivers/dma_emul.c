/*
 * dma_emul.c - the emulated card's DMA engine (dma.h, dma_emul_i). Card memory is the emulated
 * card's own bank memory when the config gives it (dma_config.bank_mem: backend emu opens this
 * engine on the banks its firmware and CUs use, so the card's DMA channels move their bytes
 * here), else one anonymous host mapping per bank (reserved lazily, so a 16 GiB HBM bank of a
 * board dts costs nothing until touched) that a user reads through dma_dev_bank_ptr.
 * Moving bytes is a memmove on the channel's worker thread; the time the real link
 * would take is charged by dma_core.c on the modeled clock (link bandwidth, bank bandwidth,
 * per-descriptor latency), and fault injection is the core's countdown hook.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "dma-impl.h"

/* State of an emulated device. */
struct dma_emul {
	unsigned n_banks; /* banks mapped */
	uint8_t **mem;	  /* [n_banks] bank memory, each [banks[i].size] bytes */
	size_t *len;	  /* [n_banks] mapping lengths, bytes; 0 = the caller's memory */
};

static void emul_close(struct dma_dev *dev)
{
	struct dma_emul *e = dma_dev_priv(dev);
	if (!e)
		return;
	for (unsigned i = 0; i < e->n_banks; i++)
		if (e->mem[i] && e->len[i])
			munmap(e->mem[i], e->len[i]);
	free(e->mem);
	free(e->len);
	free(e);
	dma_dev_set_priv(dev, NULL);
}

/* Maps every bank. Errors: -ENOMEM (err names the bank). */
static int emul_open(struct dma_dev *dev, const struct dma_config *cfg, char *err, size_t err_len)
{
	int rc;
	struct dma_emul *e = calloc(1, sizeof(*e));
	if (!e)
		return dma_err_set(err, err_len, -ENOMEM, "emul: out of memory");
	dma_dev_set_priv(dev, e);
	e->mem = calloc(cfg->n_banks, sizeof(*e->mem));
	e->len = calloc(cfg->n_banks, sizeof(*e->len));
	if (!e->mem || !e->len) {
		rc = dma_err_set(err, err_len, -ENOMEM, "emul: out of memory");
		goto fail;
	}
	for (unsigned i = 0; i < cfg->n_banks; i++) {
		const struct dma_bank *b = &cfg->banks[i];
		if (cfg->bank_mem) {
			if (!cfg->bank_mem[i]) {
				rc = dma_err_set(err, err_len, -EINVAL,
						 "emul: config field bank_mem[%u]: NULL", i);
				goto fail;
			}
			e->mem[i] = cfg->bank_mem[i];
			e->n_banks = i + 1;
			continue;
		}
		if (b->size > SIZE_MAX) {
			rc = dma_err_set(err, err_len, -ENOMEM,
					 "emul: bank %u (%s) too large for this host", i,
					 b->name ? b->name : "?");
			goto fail;
		}
		void *p = mmap(NULL, (size_t)b->size, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (p == MAP_FAILED) {
			rc = dma_err_set(err, err_len, -ENOMEM,
					 "emul: cannot map bank %u (%s, %llu bytes): %s", i,
					 b->name ? b->name : "?", (unsigned long long)b->size,
					 strerror(errno));
			goto fail;
		}
		e->mem[i] = p;
		e->len[i] = (size_t)b->size;
		e->n_banks = i + 1;
	}
	return 0;
fail:
	emul_close(dev);
	return rc;
}

/* A copy between the host and the bank (memmove: on the emulated card the host side may be
 * another range of card memory); never fails (validation happened in the core). */
static int emul_xfer(struct dma_dev *dev, unsigned ch, const struct dma_op *op, size_t *done)
{
	struct dma_emul *e = dma_dev_priv(dev);
	uint8_t *card = e->mem[op->bank] + op->bank_off;
	if (op->dir == DMA_DIR_H2C)
		memmove(card, op->host, op->len);
	else
		memmove(op->host, card, op->len);
	*done = op->len;
	return 0;
}

static void *emul_bank_ptr(struct dma_dev *dev, unsigned bank)
{
	struct dma_emul *e = dma_dev_priv(dev);
	return bank < e->n_banks ? e->mem[bank] : NULL;
}

const struct dma_dev_i dma_emul_i = {
    .version = DMA_IMPL_VERSION,
    .name = "emul",
    .modeled = 1,
    .open = emul_open,
    .close = emul_close,
    .xfer = emul_xfer,
    .bank_ptr = emul_bank_ptr,
};
