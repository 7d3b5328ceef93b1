/*
 * dma_xdma.c - DMA over the Xilinx XDMA character devices (dma.h, dma_xdma_i): channel N moves
 * H2C data with pwrite on <prefix>_h2c_N and C2H data with pread on <prefix>_c2h_N, the file offset
 * being the card address (bank base + offset), as the dma_ip_drivers xdma driver defines it.
 * Host data goes through a 4096-aligned staging buffer per channel (posix_memalign, mlocked where
 * the limit allows) because the driver pins user pages per call and aligned buffers avoid split
 * pages and its bounce path. Open fails with the device node's name when the driver is not loaded.
 * The nodes may be any file that supports pread/pwrite at an offset (the tests use a regular file).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "dma-impl.h"

#define XDMA_PREFIX_DEF "/dev/xdma0"
#define XDMA_STAGING_DEF (4u << 20)

/* One channel's device nodes and staging buffer. */
struct xdma_chan {
	int h2c_fd;	  /* <prefix>_h2c_N, write-only; -1 when closed */
	int c2h_fd;	  /* <prefix>_c2h_N, read-only; -1 when closed */
	uint8_t *staging; /* [staging_bytes] 4096-aligned */
	int locked;	  /* 1 if staging is mlocked */
};

/* State of an XDMA device. */
struct dma_xdma {
	unsigned n_ch;			       /* channels opened */
	size_t staging_bytes;		       /* per channel, multiple of 4096 */
	struct xdma_chan ch[DMA_MAX_CHANNELS]; /* [n_ch] */
};

static void xdma_close(struct dma_dev *dev)
{
	struct dma_xdma *x = dma_dev_priv(dev);
	if (!x)
		return;
	for (unsigned i = 0; i < x->n_ch; i++) {
		struct xdma_chan *c = &x->ch[i];
		if (c->h2c_fd >= 0)
			close(c->h2c_fd);
		if (c->c2h_fd >= 0)
			close(c->c2h_fd);
		if (c->locked)
			munlock(c->staging, x->staging_bytes);
		free(c->staging);
	}
	free(x);
	dma_dev_set_priv(dev, NULL);
}

/* Opens one node; on failure writes "xdma: <path>: <reason>" to err. */
static int xdma_node_open(const char *prefix, const char *kind, unsigned ch, int flags, int *fd,
			  char *err, size_t err_len)
{
	char path[512];
	int n = snprintf(path, sizeof(path), "%s_%s_%u", prefix, kind, ch);
	if (n < 0 || (size_t)n >= sizeof(path))
		return dma_err_set(err, err_len, -EINVAL,
				   "xdma: config field xdma_prefix: too long");
	*fd = open(path, flags | O_CLOEXEC);
	if (*fd < 0) {
		int e = errno;
		return dma_err_set(
		    err, err_len, -e, "xdma: cannot open %s: %s%s", path, strerror(e),
		    e == ENOENT ? " (no XDMA card, or the xdma driver is not loaded)" : "");
	}
	return 0;
}

/* Opens both nodes of every channel and allocates the staging buffers.
 * Errors: -ENOENT a node is absent, -EACCES, -ENOMEM, other open(2) errors. */
static int xdma_open(struct dma_dev *dev, const struct dma_config *cfg, char *err, size_t err_len)
{
	int rc;
	const char *prefix = cfg->xdma_prefix ? cfg->xdma_prefix : XDMA_PREFIX_DEF;
	struct dma_xdma *x = calloc(1, sizeof(*x));
	if (!x)
		return dma_err_set(err, err_len, -ENOMEM, "xdma: out of memory");
	dma_dev_set_priv(dev, x);
	x->staging_bytes = cfg->staging_bytes ? cfg->staging_bytes : XDMA_STAGING_DEF;
	for (unsigned i = 0; i < cfg->n_channels; i++) {
		struct xdma_chan *c = &x->ch[i];
		c->h2c_fd = c->c2h_fd = -1;
		x->n_ch = i + 1;
		rc = xdma_node_open(prefix, "h2c", i, O_WRONLY, &c->h2c_fd, err, err_len);
		if (rc)
			goto fail;
		rc = xdma_node_open(prefix, "c2h", i, O_RDONLY, &c->c2h_fd, err, err_len);
		if (rc)
			goto fail;
		rc = posix_memalign((void **)&c->staging, 4096, x->staging_bytes);
		if (rc) {
			c->staging = NULL;
			rc = dma_err_set(err, err_len, -rc,
					 "xdma: cannot allocate %zu-byte staging buffer",
					 x->staging_bytes);
			goto fail;
		}
		c->locked = mlock(c->staging, x->staging_bytes) == 0;
	}
	return 0;
fail:
	xdma_close(dev);
	return rc;
}

/* Moves op through the staging buffer in chunks; a zero-byte pread/pwrite ends the transfer short.
 * Returns 0, or the negative errno of the failed system call (bytes moved so far in *done). */
static int xdma_xfer(struct dma_dev *dev, unsigned ch, const struct dma_op *op, size_t *done)
{
	struct dma_xdma *x = dma_dev_priv(dev);
	struct xdma_chan *c = &x->ch[ch];
	uint8_t *host = op->host;
	size_t moved = 0;
	int rc = 0;

	while (moved < op->len) {
		size_t n = op->len - moved;
		if (n > x->staging_bytes)
			n = x->staging_bytes;
		off_t at = (off_t)(op->card_addr + moved);
		ssize_t k;
		if (op->dir == DMA_DIR_H2C) {
			memcpy(c->staging, host + moved, n);
			k = pwrite(c->h2c_fd, c->staging, n, at);
		} else {
			k = pread(c->c2h_fd, c->staging, n, at);
			if (k > 0)
				memcpy(host + moved, c->staging, (size_t)k);
		}
		if (k < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			break;
		}
		if (k == 0)
			break;
		moved += (size_t)k;
	}
	*done = moved;
	return rc;
}

const struct dma_dev_i dma_xdma_i = {
    .version = DMA_IMPL_VERSION,
    .name = "xdma",
    .modeled = 0,
    .open = xdma_open,
    .close = xdma_close,
    .xfer = xdma_xfer,
};
