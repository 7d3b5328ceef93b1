/*
 * dma_xrt.c - DMA into a real card's banks through XRT buffer objects (dma.h, dma_xrt_i), with the
 * native XRT C API (xrt/xrt_device.h, xrt/xrt_bo.h). Each bank is one BO in its memory group
 * (dma_bank.mem_group); a transfer from a plain host address is xrtBOWrite + xrtBOSync(TO_DEVICE)
 * of the BO range (C2H: xrtBOSync(FROM_DEVICE) + xrtBORead), and a transfer from a registered host
 * buffer (a host-only BO) is one xrtBOCopy, which XRT runs on the card's DMA engine.
 *
 * XRT is loaded with dlopen at open time, not linked: XRT 2.x aborts the process (an uncaught C++
 * exception) when XILINX_XRT is unset or its shim library is missing, and linking it would load
 * it into every program of the project. So open first checks, in order, the XRT setup, a PCI device
 * bound to the xocl driver and the library, and fails with a one-line reason (-ENODEV) before any
 * XRT code runs. Cost to know: a normal BO keeps a host shadow of its size, so the banks' sizes
 * are also host memory.
 */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dma-impl.h"

/* DMA_XRT_HAVE_HEADERS is set by drivers/drivers.mk when it finds the XRT headers. */
#ifdef DMA_XRT_HAVE_HEADERS
#include <xrt/xrt_bo.h>
#include <xrt/xrt_device.h>

#define XRT_LIB "libxrt_coreutil.so.2"
#define XRT_XOCL_SYSFS "/sys/bus/pci/drivers/xocl"

/* XRT entry points, resolved with dlsym; types taken from the XRT headers. */
struct xrt_api {
	void *lib;			       /* dlopen handle */
	__typeof__(xrtDeviceOpen) *dev_open;   /* xrtDeviceOpen */
	__typeof__(xrtDeviceClose) *dev_close; /* xrtDeviceClose */
	__typeof__(xrtBOAlloc) *bo_alloc;      /* xrtBOAlloc */
	__typeof__(xrtBOFree) *bo_free;	       /* xrtBOFree */
	__typeof__(xrtBOSync) *bo_sync;	       /* xrtBOSync */
	__typeof__(xrtBOMap) *bo_map;	       /* xrtBOMap */
	__typeof__(xrtBOWrite) *bo_write;      /* xrtBOWrite */
	__typeof__(xrtBORead) *bo_read;	       /* xrtBORead */
	__typeof__(xrtBOCopy) *bo_copy;	       /* xrtBOCopy */
};

/* State of an XRT device. */
struct dma_xrt {
	struct xrt_api api;    /* resolved entry points */
	xrtDeviceHandle dev;   /* open device */
	unsigned n_banks;      /* BOs allocated */
	xrtBufferHandle *bank; /* [n_banks] one BO per bank */
};

/* Counts PCI devices bound to the xocl driver (entries named like a BDF, "0000:65:00.1"). */
static unsigned xrt_xocl_count(void)
{
	DIR *d = opendir(XRT_XOCL_SYSFS);
	unsigned n = 0;
	if (!d)
		return 0;
	for (struct dirent *e; (e = readdir(d));)
		if (strchr(e->d_name, ':'))
			n++;
	closedir(d);
	return n;
}

static void xrt_close(struct dma_dev *dev)
{
	struct dma_xrt *x = dma_dev_priv(dev);
	if (!x)
		return;
	for (unsigned i = 0; i < x->n_banks; i++)
		if (x->bank[i])
			x->api.bo_free(x->bank[i]);
	free(x->bank);
	if (x->dev)
		x->api.dev_close(x->dev);
	if (x->api.lib)
		dlclose(x->api.lib);
	free(x);
	dma_dev_set_priv(dev, NULL);
}

/* Loads XRT and resolves the entry points. Errors: -ENODEV (err names the library or symbol). */
static int xrt_api_load(struct xrt_api *a, char *err, size_t err_len)
{
	a->lib = dlopen(XRT_LIB, RTLD_NOW | RTLD_LOCAL);
	if (!a->lib)
		return dma_err_set(err, err_len, -ENODEV, "xrt: cannot load %s: %s", XRT_LIB,
				   dlerror());
#define XRT_SYM(field, name)                                                                       \
	do {                                                                                       \
		*(void **)&a->field = dlsym(a->lib, #name);                                        \
		if (!a->field)                                                                     \
			return dma_err_set(err, err_len, -ENODEV, "xrt: %s has no %s", XRT_LIB,    \
					   #name);                                                 \
	} while (0)
	XRT_SYM(dev_open, xrtDeviceOpen);
	XRT_SYM(dev_close, xrtDeviceClose);
	XRT_SYM(bo_alloc, xrtBOAlloc);
	XRT_SYM(bo_free, xrtBOFree);
	XRT_SYM(bo_sync, xrtBOSync);
	XRT_SYM(bo_map, xrtBOMap);
	XRT_SYM(bo_write, xrtBOWrite);
	XRT_SYM(bo_read, xrtBORead);
	XRT_SYM(bo_copy, xrtBOCopy);
#undef XRT_SYM
	return 0;
}

/* Checks for an XRT setup and a card, then opens it and allocates one BO per bank.
 * Errors: -ENODEV no XRT setup / no card / XRT refused the device, -ENOMEM a bank BO. */
static int xrt_open(struct dma_dev *dev, const struct dma_config *cfg, char *err, size_t err_len)
{
	int rc;
	const char *root = getenv("XILINX_XRT");
	char path[1024];

	if (!root || !*root)
		return dma_err_set(
		    err, err_len, -ENODEV,
		    "xrt: XILINX_XRT is not set: no XRT runtime set up (source XRT's setup.sh)");
	snprintf(path, sizeof(path), "%s/lib/libxrt_core.so.2", root);
	if (access(path, R_OK) != 0)
		return dma_err_set(err, err_len, -ENODEV,
				   "xrt: %s not found: XILINX_XRT is not an XRT install", path);
	unsigned cards = xrt_xocl_count();
	if (cards == 0)
		return dma_err_set(err, err_len, -ENODEV,
				   "xrt: no card: no PCI device is bound to the xocl driver (%s)",
				   XRT_XOCL_SYSFS);
	if (cfg->device_index >= cards)
		return dma_err_set(err, err_len, -ENODEV,
				   "xrt: config field device_index: %u, but %u card(s)",
				   cfg->device_index, cards);

	struct dma_xrt *x = calloc(1, sizeof(*x));
	if (!x)
		return dma_err_set(err, err_len, -ENOMEM, "xrt: out of memory");
	dma_dev_set_priv(dev, x);
	rc = xrt_api_load(&x->api, err, err_len);
	if (rc)
		goto fail;
	errno = 0;
	x->dev = x->api.dev_open(cfg->device_index);
	if (!x->dev) {
		rc = dma_err_set(err, err_len, -ENODEV, "xrt: xrtDeviceOpen(%u) failed: %s",
				 cfg->device_index, errno ? strerror(errno) : "no reason given");
		goto fail;
	}
	x->bank = calloc(cfg->n_banks, sizeof(*x->bank));
	if (!x->bank) {
		rc = dma_err_set(err, err_len, -ENOMEM, "xrt: out of memory");
		goto fail;
	}
	for (unsigned i = 0; i < cfg->n_banks; i++) {
		const struct dma_bank *b = &cfg->banks[i];
		xrtMemoryGroup grp = b->mem_group >= 0 ? (xrtMemoryGroup)b->mem_group : i;
		x->n_banks = i + 1;
		x->bank[i] = x->api.bo_alloc(x->dev, (size_t)b->size, XRT_BO_FLAGS_NONE, grp);
		if (!x->bank[i]) {
			rc = dma_err_set(
			    err, err_len, -ENOMEM,
			    "xrt: cannot allocate a %llu-byte BO for bank %u (%s, group %u)",
			    (unsigned long long)b->size, i, b->name ? b->name : "?", grp);
			goto fail;
		}
	}
	return 0;
fail:
	xrt_close(dev);
	return rc;
}

/* One descriptor: xrtBOCopy from/to a registered host BO, else write+sync / sync+read.
 * Returns 0 or -EIO (XRT's negative return or errno). */
static int xrt_xfer(struct dma_dev *dev, unsigned ch, const struct dma_op *op, size_t *done)
{
	struct dma_xrt *x = dma_dev_priv(dev);
	xrtBufferHandle bo = x->bank[op->bank];
	int rc;

	*done = 0;
	if (op->hbuf && op->hbuf->handle) {
		if (op->dir == DMA_DIR_H2C)
			rc = x->api.bo_copy(bo, op->hbuf->handle, op->len, op->bank_off,
					    op->hbuf_off);
		else
			rc = x->api.bo_copy(op->hbuf->handle, bo, op->len, op->hbuf_off,
					    op->bank_off);
	} else if (op->dir == DMA_DIR_H2C) {
		rc = x->api.bo_write(bo, op->host, op->len, op->bank_off);
		if (!rc)
			rc = x->api.bo_sync(bo, XCL_BO_SYNC_BO_TO_DEVICE, op->len, op->bank_off);
	} else {
		rc = x->api.bo_sync(bo, XCL_BO_SYNC_BO_FROM_DEVICE, op->len, op->bank_off);
		if (!rc)
			rc = x->api.bo_read(bo, op->host, op->len, op->bank_off);
	}
	if (rc)
		return rc < 0 ? rc : -EIO;
	*done = op->len;
	return 0;
}

/* A host-only BO in the first bank's group, mapped. Errors: -ENOMEM. */
static int xrt_hbuf_alloc(struct dma_dev *dev, struct dma_hbuf *hb)
{
	struct dma_xrt *x = dma_dev_priv(dev);
	const struct dma_bank *b = &dma_dev_config(dev)->banks[0];
	xrtMemoryGroup grp = b->mem_group >= 0 ? (xrtMemoryGroup)b->mem_group : 0;
	xrtBufferHandle bo = x->api.bo_alloc(x->dev, hb->size, XRT_BO_FLAGS_HOST_ONLY, grp);
	if (!bo)
		return -ENOMEM;
	void *p = x->api.bo_map(bo);
	if (!p) {
		x->api.bo_free(bo);
		return -ENOMEM;
	}
	hb->handle = bo;
	hb->ptr = p;
	return 0;
}

static void xrt_hbuf_free(struct dma_dev *dev, struct dma_hbuf *hb)
{
	struct dma_xrt *x = dma_dev_priv(dev);
	if (hb->handle)
		x->api.bo_free(hb->handle);
}

const struct dma_dev_i dma_xrt_i = {
    .version = DMA_IMPL_VERSION,
    .name = "xrt",
    .modeled = 0,
    .open = xrt_open,
    .close = xrt_close,
    .xfer = xrt_xfer,
    .hbuf_alloc = xrt_hbuf_alloc,
    .hbuf_free = xrt_hbuf_free,
};

#else /* no XRT headers at build time */

/* Always fails: this build has no XRT headers. Errors: -ENODEV. */
static int xrt_open(struct dma_dev *dev, const struct dma_config *cfg, char *err, size_t err_len)
{
	return dma_err_set(err, err_len, -ENODEV,
			   "xrt: built without the XRT headers (install libxrt-dev)");
}

/* Never reached (open fails). */
static int xrt_xfer(struct dma_dev *dev, unsigned ch, const struct dma_op *op, size_t *done)
{
	*done = 0;
	return -ENODEV;
}

const struct dma_dev_i dma_xrt_i = {
    .version = DMA_IMPL_VERSION,
    .name = "xrt",
    .open = xrt_open,
    .xfer = xrt_xfer,
};
#endif
