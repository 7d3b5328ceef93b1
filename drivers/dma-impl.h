/*
 * dma-impl.h - what an engine implementation (dma_emul.c, dma_xrt.c, dma_xdma.c) provides to the
 * common channel core (dma_core.c). The core owns the rings, fences, worker threads, validation,
 * fault injection and the modeled clock; an implementation only opens the hardware and moves the
 * bytes of one decoded descriptor. Not for users of the driver: they include dma.h.
 */
#ifndef MOECARD_DMA_IMPL_H
#define MOECARD_DMA_IMPL_H

#include "dma.h"

#define DMA_IMPL_VERSION 1 /* dma_dev_i.version this core understands */

/* One decoded descriptor as the engine executes it. */
struct dma_op {
	enum dma_dir dir;	     /* H2C or C2H */
	void *host;		     /* host address of the first byte (hbuf already resolved) */
	const struct dma_hbuf *hbuf; /* the registered buffer host lies in, or NULL */
	size_t hbuf_off;	     /* byte offset of host inside hbuf */
	unsigned bank;		     /* card bank index */
	uint64_t bank_off;	     /* byte offset inside the bank */
	uint64_t card_addr;	     /* bank base + bank_off, bytes */
	size_t len;		     /* bytes to move */
};

/* A registered host buffer. */
struct dma_hbuf {
	void *ptr;    /* 4096-aligned host memory [size] */
	size_t size;  /* bytes */
	void *handle; /* implementation handle (an XRT BO), or NULL */
	int locked;   /* 1 if mlock succeeded (pinned) */
};

/* Ops table of one implementation ("_i" table in the ggml-backend style). */
struct dma_dev_i {
	uint32_t version; /* DMA_IMPL_VERSION */
	const char *name; /* "emul", "xrt", "xdma" */
	int modeled;	  /* 1: the core charges link bandwidth and latency on the virtual clock */

	/* Opens the engine for cfg (already validated by the core), storing its state with
	 * dma_dev_set_priv. Errors as dma_dev_open; writes a one-line reason to err. */
	int (*open)(struct dma_dev *dev, const struct dma_config *cfg, char *err, size_t err_len);
	/* Releases what open acquired. Called once, after every worker has stopped. */
	void (*close)(struct dma_dev *dev);
	/* Moves op->len bytes on channel ch; sets *done to the bytes moved (even on error).
	 * Returns 0, or a negative errno when the engine reported an error. Called from the
	 * channel's worker thread; different channels may call it concurrently. */
	int (*xfer)(struct dma_dev *dev, unsigned ch, const struct dma_op *op, size_t *done);
	/* Optional: fills hb->ptr/handle for size bytes (hb->size set). NULL = aligned malloc. */
	int (*hbuf_alloc)(struct dma_dev *dev, struct dma_hbuf *hb);
	/* Optional: releases what hbuf_alloc set. */
	void (*hbuf_free)(struct dma_dev *dev, struct dma_hbuf *hb);
	/* Optional: host view of a bank (emul). */
	void *(*bank_ptr)(struct dma_dev *dev, unsigned bank);
};

/* Implementation state attached to dev. */
void dma_dev_set_priv(struct dma_dev *dev, void *priv);
/* Implementation state of dev (NULL before set). */
void *dma_dev_priv(const struct dma_dev *dev);
/* The validated configuration dev was opened with (banks copied). */
const struct dma_config *dma_dev_config(const struct dma_dev *dev);

/* Writes a formatted one-line message to err (if err_len > 0); returns rc for tail calls. */
int dma_err_set(char *err, size_t err_len, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif /* MOECARD_DMA_IMPL_H */
