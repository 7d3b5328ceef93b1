/*
 * dma_xrt.c - DMA into a real card's banks through XRT buffer objects (dma.h, dma_xrt_i), with the
 * native XRT C API (xrt/xrt_device.h, xrt/xrt_bo.h). Each bank is one BO in its memory group
 * (dma_bank.mem_group); a transfer from a plain host address is xrtBOWrite + xrtBOSync(TO_DEVICE)
 * of the BO range (C2H: xrtBOSync(FROM_DEVICE) + xrtBORead), and a transfer from a registered host
 * buffer (a host-only BO) is one xrtBOCopy, which XRT runs on the card's DMA engine.
 *
 * On the caller's BOs (dma_config.xrt_bos, dma.h): no device, library or BO of its own; each
 * descriptor is resolved to the caller's BO(s) behind its card range and moved with the caller's
 * write/read (XRT entry points the caller resolved). This mode needs no XRT headers here.
 *
 * Own mode: XRT is loaded with dlopen at open time, not linked: XRT 2.x aborts the process (an uncaught C++
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

/* ---- on the caller's BOs (dma_config.xrt_bos); the engine state is a copy of them ---------- */

/* Checks and copies cfg->xrt_bos. Errors: -EINVAL a callback missing, -ENOMEM. */
static int xrt_ext_open(struct dma_dev *dev, const struct dma_config *cfg, char *err,
			size_t err_len)
{
	const struct dma_xrt_bos *b = cfg->xrt_bos;
	if (!b->resolve || !b->write || !b->read)
		return dma_err_set(err, err_len, -EINVAL,
				   "xrt: config field xrt_bos: resolve, write and read are all "
				   "required");
	struct dma_xrt_bos *c = malloc(sizeof(*c));
	if (!c)
		return dma_err_set(err, err_len, -ENOMEM, "xrt: out of memory");
	*c = *b;
	dma_dev_set_priv(dev, c);
	return 0;
}

/* One descriptor on the caller's BOs: resolve, move what that BO holds, repeat for the rest.
 * Returns 0, the callbacks' negative errno, or -EFAULT for a resolver answer without a BO. */
static int xrt_ext_xfer(struct dma_dev *dev, const struct dma_op *op, size_t *done)
{
	const struct dma_xrt_bos *b = dma_dev_priv(dev);
	uint8_t *h = op->host;
	*done = 0;
	while (*done < op->len) {
		size_t want = op->len - *done;
		struct dma_xrt_span sp = {0};
		int rc = b->resolve(b->ctx, op->bank, op->bank_off + *done, want, &sp);
		if (rc)
			return rc < 0 ? rc : -EIO;
		if (!sp.bo || sp.len == 0)
			return -EFAULT;
		size_t n = sp.len < want ? (size_t)sp.len : want;
		rc = op->dir == DMA_DIR_H2C ? b->write(b->ctx, sp.bo, h + *done, n, sp.bo_off)
					    : b->read(b->ctx, sp.bo, h + *done, n, sp.bo_off);
		if (rc)
			return rc < 0 ? rc : -EIO;
		*done += n;
	}
	return 0;
}

/* A host buffer on the caller's BOs: aligned memory (the write/read callbacks copy from it). */
static int xrt_ext_hbuf_alloc(struct dma_hbuf *hb)
{
	int rc = posix_memalign(&hb->ptr, 4096, hb->size);
	return rc ? -rc : 0;
}

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

/* Whether dev runs on the caller's BOs (own mode otherwise). */
static int xrt_is_ext(const struct dma_dev *dev)
{
	return dma_dev_config(dev)->xrt_bos != NULL;
}

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
	if (xrt_is_ext(dev)) {
		free(x);
		dma_dev_set_priv(dev, NULL);
		return;
	}
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

	if (cfg->xrt_bos)
		return xrt_ext_open(dev, cfg, err, err_len);
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
	if (xrt_is_ext(dev))
		return xrt_ext_xfer(dev, op, done);
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
	if (xrt_is_ext(dev))
		return xrt_ext_hbuf_alloc(hb);
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
	if (xrt_is_ext(dev))
		free(hb->ptr);
	else if (hb->handle)
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

#else /* no XRT headers at build time: only the caller's BOs */

/* On the caller's BOs, else fails: this build has no XRT headers. Errors: -ENODEV, those of
 * xrt_ext_open. */
static int xrt_open(struct dma_dev *dev, const struct dma_config *cfg, char *err, size_t err_len)
{
	if (cfg->xrt_bos)
		return xrt_ext_open(dev, cfg, err, err_len);
	return dma_err_set(err, err_len, -ENODEV,
			   "xrt: built without the XRT headers (install libxrt-dev)");
}

static void xrt_close(struct dma_dev *dev)
{
	free(dma_dev_priv(dev));
	dma_dev_set_priv(dev, NULL);
}

static int xrt_xfer(struct dma_dev *dev, unsigned ch, const struct dma_op *op, size_t *done)
{
	return xrt_ext_xfer(dev, op, done);
}

static int xrt_hbuf_alloc(struct dma_dev *dev, struct dma_hbuf *hb)
{
	return xrt_ext_hbuf_alloc(hb);
}

static void xrt_hbuf_free(struct dma_dev *dev, struct dma_hbuf *hb)
{
	free(hb->ptr);
}

const struct dma_dev_i dma_xrt_i = {
    .version = DMA_IMPL_VERSION,
    .name = "xrt",
    .open = xrt_open,
    .close = xrt_close,
    .xfer = xrt_xfer,
    .hbuf_alloc = xrt_hbuf_alloc,
    .hbuf_free = xrt_hbuf_free,
};
#endif
