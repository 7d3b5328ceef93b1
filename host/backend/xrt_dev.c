/*
 * xrt_dev.c - XRT native C API control path (see xrt_dev.h). XRT is loaded with dlopen and every
 * entry point is resolved by name with the prototype from XRT's own headers (typeof), so a
 * mismatch with the installed XRT is a compile error, and processes that never use backend xrt
 * never load XRT.
 *
 * Shim selection in XRT 2.13 (core/common/module_loader.cpp, shim_loader): with
 * XCL_EMULATION_MODE=noop it loads $XILINX_XRT/lib/libxrt_noop.so.2, without it
 * $XILINX_XRT/lib/libxrt_core.so.2; an unset XILINX_XRT or a missing file throws from a context
 * that terminates the process, hence the checks in check_shim().
 */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <xrt.h>
#include <xrt/xrt_bo.h>
#include <xrt/xrt_device.h>
#include <xrt/xrt_kernel.h>
#include <experimental/xrt_xclbin.h>

#include "bitstream/bitstream.h"
#include "backend/xrt_dev.h"

#define XRT_DEV_LIB "libxrt_coreutil.so.2"

/* The XRT entry points used, resolved from XRT_DEV_LIB (one per line; clang-format would fold them). */
/* clang-format off */
#define XRT_FUNCS(X) \
	X(xrtDeviceOpen) \
	X(xrtDeviceOpenByBDF) \
	X(xrtDeviceClose) \
	X(xrtDeviceLoadXclbinHandle) \
	X(xrtXclbinAllocFilename) \
	X(xrtXclbinFreeHandle) \
	X(xrtXclbinGetUUID) \
	X(xrtXclbinGetNumKernels) \
	X(xrtXclbinGetNumKernelComputeUnits) \
	X(xrtXclbinGetXSAName) \
	X(xrtPLKernelOpen) \
	X(xrtKernelClose) \
	X(xrtKernelArgGroupId) \
	X(xrtKernelArgOffset) \
	X(xrtBOAlloc) \
	X(xrtBOFree) \
	X(xrtBOSubAlloc) \
	X(xrtBOAddress) \
	X(xrtBOWrite) \
	X(xrtBORead) \
	X(xrtBOSync) \
	X(xrtRunOpen) \
	X(xrtRunSetArg) \
	X(xrtRunStart) \
	X(xrtRunWaitFor) \
	X(xrtRunClose)
/* clang-format on */

struct xrt_dev {
	void *lib; /* dlopen handle of XRT_DEV_LIB */
// NOLINTNEXTLINE(bugprone-macro-parentheses): f is the declared member's name, not an expression
#define X(f) __typeof__(f) *f;
	XRT_FUNCS(X) /* resolved entry points */
#undef X
	xrtDeviceHandle dev;		/* open device */
	xrtXclbinHandle xclbin;		/* loaded xclbin, NULL before xrt_dev_load */
	xuid_t uuid;			/* its UUID */
	const struct board_desc *board; /* the board the xclbin was built for (caller owns) */
	xrtKernelHandle kernel[BOARD_MAX_CUS]; /* one handle per CU, "kernel:{cu}" */
	struct xrt_dev_stats st;	       /* counters */
};

static int msg(char *err, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int msg(char *err, size_t errlen, int code, const char *fmt, ...)
{
	if (err && errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return code;
}

/* Refuse what would make XRT 2.13 abort the process. */
static int check_shim(char *err, size_t errlen)
{
	const char *mode = getenv("XCL_EMULATION_MODE");
	const char *shim = "libxrt_core.so.2";
	if (mode && *mode) {
		if (strcmp(mode, "noop") != 0)
			return msg(
			    err, errlen, -ENOTSUP,
			    "xrt: XCL_EMULATION_MODE=%s: only \"noop\" (or unset, for a card) "
			    "is supported",
			    mode);
		shim = "libxrt_noop.so.2";
	}
	const char *root = getenv("XILINX_XRT");
	if (!root || !*root)
		return msg(err, errlen, -ENODEV,
			   "xrt: XILINX_XRT is not set: no XRT installation to open a card with "
			   "(source XRT's setup.sh, or use XCL_EMULATION_MODE=noop)");
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/lib/%s", root, shim);
	if (access(path, R_OK) != 0)
		return msg(err, errlen, -ENODEV, "xrt: %s: %s: XRT %s shim library missing", path,
			   strerror(errno), mode && *mode ? "noop" : "card");
	return 0;
}

/* Allocate a handle and resolve every XRT entry point. */
static int lib_open(struct xrt_dev **out, char *err, size_t errlen)
{
	struct xrt_dev *d = calloc(1, sizeof *d);
	if (!d)
		return -ENOMEM;
	d->lib = dlopen(XRT_DEV_LIB, RTLD_NOW | RTLD_LOCAL);
	if (!d->lib) {
		free(d);
		return msg(err, errlen, -ENOENT, "xrt: cannot load %s (install XRT): %s",
			   XRT_DEV_LIB, dlerror());
	}
#define X(f)                                                                                       \
	if (!(*(void **)&d->f = dlsym(d->lib, #f))) {                                              \
		dlclose(d->lib);                                                                   \
		free(d);                                                                           \
		return msg(err, errlen, -ENOENT, "xrt: %s lacks %s", XRT_DEV_LIB, #f);             \
	}
	XRT_FUNCS(X)
#undef X
	*out = d;
	return 0;
}

int xrt_dev_open(const char *spec, struct xrt_dev **out, char *err, size_t errlen)
{
	if (!spec || !*spec || !out)
		return msg(err, errlen, -EINVAL, "xrt: no device given");
	*out = NULL;
	int rc = check_shim(err, errlen);
	if (rc)
		return rc;
	struct xrt_dev *d;
	if ((rc = lib_open(&d, err, errlen)))
		return rc;
	char *end = NULL;
	unsigned long idx = strtoul(spec, &end, 10);
	int is_index = end && *end == '\0' && idx < 64;
	// NOLINTNEXTLINE(clang-analyzer-core.NullDereference): lib_open returned 0, so d is set
	d->dev = is_index ? d->xrtDeviceOpen((unsigned)idx) : d->xrtDeviceOpenByBDF(spec);
	if (!d->dev) {
		dlclose(d->lib);
		free(d);
		return msg(err, errlen, -ENODEV, "xrt: device %s: cannot open (no card%s)", spec,
			   is_index ? " at that index" : " at that PCIe address");
	}
	*out = d;
	return 0;
}

int xrt_dev_load(struct xrt_dev *d, const char *path, const struct board_desc *b, char *err,
		 size_t errlen)
{
	if (!d || !path || !b || d->xclbin)
		return msg(err, errlen, -EINVAL, "xrt: bad load arguments");
	d->xclbin = d->xrtXclbinAllocFilename(path);
	if (!d->xclbin)
		return msg(err, errlen, -EIO, "xrt: %s: XRT cannot read this xclbin", path);
	if (d->xrtXclbinGetUUID(d->xclbin, d->uuid) != 0 ||
	    d->xrtDeviceLoadXclbinHandle(d->dev, d->xclbin) != 0)
		return msg(err, errlen, -EIO, "xrt: %s: the device refused the xclbin", path);
	d->board = b;
	for (uint32_t c = 0; c < b->n_cus; c++) {
		char name[2 * BOARD_NAME_MAX + 8];
		snprintf(name, sizeof name, "%s:{%s}", b->cu[c].kernel, b->cu[c].name);
		d->kernel[c] = d->xrtPLKernelOpen(d->dev, d->uuid, name);
		if (!d->kernel[c])
			return msg(err, errlen, -EIO, "xrt: %s: cannot open kernel %s", path, name);
	}
	return 0;
}

int xrt_dev_uuid(const struct xrt_dev *d, uint8_t uuid[16])
{
	if (!d || !d->xclbin)
		return -EINVAL;
	memcpy(uuid, d->uuid, 16);
	return 0;
}

int xrt_dev_arg_group(struct xrt_dev *d, uint32_t cu, uint32_t arg, int *group, uint32_t *offset)
{
	if (!d || !d->board || cu >= d->board->n_cus)
		return -EINVAL;
	const struct bitstream_kernel *k = bitstream_kernel_find(d->board->cu[cu].kernel);
	/* scalars have no group; asking XRT makes it print an error */
	if (!k || arg >= k->n_args || !k->arg[arg].bundle)
		return -EINVAL;
	int g = d->xrtKernelArgGroupId(d->kernel[cu], (int)arg);
	if (g < 0)
		return -EIO;
	*group = g;
	if (offset)
		*offset = d->xrtKernelArgOffset(d->kernel[cu], (int)arg);
	return 0;
}

int xrt_dev_bo_alloc(struct xrt_dev *d, size_t size, int group, struct xrt_dev_bo *bo)
{
	if (!d || !bo || !size || group < 0)
		return -EINVAL;
	bo->h = d->xrtBOAlloc(d->dev, size, XRT_BO_FLAGS_NONE, (xrtMemoryGroup)group);
	if (!bo->h)
		return -ENOMEM;
	bo->size = size;
	bo->group = group;
	d->st.bo_allocs++;
	d->st.bo_bytes += size;
	return 0;
}

int xrt_dev_bo_upload(struct xrt_dev *d, struct xrt_dev_bo *bo, const void *src, size_t n,
		      size_t off)
{
	if (!d || !bo || !bo->h || off > bo->size || n > bo->size - off)
		return -EINVAL;
	if (d->xrtBOWrite(bo->h, src, n, off) != 0 ||
	    d->xrtBOSync(bo->h, XCL_BO_SYNC_BO_TO_DEVICE, n, off) != 0)
		return -EIO;
	d->st.syncs_to++;
	return 0;
}

int xrt_dev_bo_download(struct xrt_dev *d, struct xrt_dev_bo *bo, void *dst, size_t n, size_t off)
{
	if (!d || !bo || !bo->h || off > bo->size || n > bo->size - off)
		return -EINVAL;
	if (d->xrtBOSync(bo->h, XCL_BO_SYNC_BO_FROM_DEVICE, n, off) != 0 ||
	    d->xrtBORead(bo->h, dst, n, off) != 0)
		return -EIO;
	d->st.syncs_from++;
	return 0;
}

int xrt_dev_bo_sub(struct xrt_dev *d, struct xrt_dev_bo *parent, size_t size, size_t off,
		   struct xrt_dev_bo *bo)
{
	if (!d || !parent || !parent->h || !bo || !size || off > parent->size ||
	    size > parent->size - off)
		return -EINVAL;
	bo->h = d->xrtBOSubAlloc(parent->h, size, off);
	if (!bo->h)
		return -ENOMEM;
	bo->size = size;
	bo->group = parent->group;
	return 0;
}

uint64_t xrt_dev_bo_address(struct xrt_dev *d, const struct xrt_dev_bo *bo)
{
	return d && bo && bo->h ? d->xrtBOAddress(bo->h) : 0;
}

void xrt_dev_bo_free(struct xrt_dev *d, struct xrt_dev_bo *bo)
{
	if (d && bo && bo->h) {
		d->xrtBOFree(bo->h);
		bo->h = NULL;
	}
}

int xrt_dev_run_open(struct xrt_dev *d, uint32_t cu, struct xrt_dev_run *r)
{
	if (!d || !r || !d->board || cu >= d->board->n_cus)
		return -EINVAL;
	r->h = d->xrtRunOpen(d->kernel[cu]);
	r->cu = cu;
	return r->h ? 0 : -EIO;
}

int xrt_dev_run_set_bo(struct xrt_dev *d, struct xrt_dev_run *r, uint32_t arg,
		       const struct xrt_dev_bo *bo)
{
	if (!d || !r || !r->h || !bo || !bo->h)
		return -EINVAL;
	return d->xrtRunSetArg(r->h, (int)arg, (xrtBufferHandle)bo->h) ? -EIO : 0;
}

int xrt_dev_run_set_u32(struct xrt_dev *d, struct xrt_dev_run *r, uint32_t arg, uint32_t v)
{
	if (!d || !r || !r->h)
		return -EINVAL;
	return d->xrtRunSetArg(r->h, (int)arg, v) ? -EIO : 0;
}

int xrt_dev_run_set_f32(struct xrt_dev *d, struct xrt_dev_run *r, uint32_t arg, float v)
{
	if (!d || !r || !r->h)
		return -EINVAL;
	/* a float passes through C varargs as double, and XRT reads a "float" argument as such */
	return d->xrtRunSetArg(r->h, (int)arg, (double)v) ? -EIO : 0;
}

int xrt_dev_run_start(struct xrt_dev *d, struct xrt_dev_run *r)
{
	if (!d || !r || !r->h)
		return -EINVAL;
	if (d->xrtRunStart(r->h) != 0)
		return -EIO;
	d->st.runs_started++;
	return 0;
}

int xrt_dev_run_wait(struct xrt_dev *d, struct xrt_dev_run *r, unsigned timeout_ms)
{
	if (!d || !r || !r->h)
		return -EINVAL;
	enum ert_cmd_state s = d->xrtRunWaitFor(r->h, timeout_ms);
	if (s == ERT_CMD_STATE_COMPLETED) {
		d->st.runs_done++;
		return 0;
	}
	if (s == ERT_CMD_STATE_NEW || s == ERT_CMD_STATE_QUEUED || s == ERT_CMD_STATE_RUNNING)
		return -ETIMEDOUT;
	return -EIO;
}

void xrt_dev_run_close(struct xrt_dev *d, struct xrt_dev_run *r)
{
	if (d && r && r->h) {
		d->xrtRunClose(r->h);
		r->h = NULL;
	}
}

void xrt_dev_stats_get(const struct xrt_dev *d, struct xrt_dev_stats *s)
{
	if (d && s)
		*s = d->st;
}

void xrt_dev_close(struct xrt_dev *d)
{
	if (!d)
		return;
	for (uint32_t c = 0; c < BOARD_MAX_CUS; c++)
		if (d->kernel[c])
			d->xrtKernelClose(d->kernel[c]);
	if (d->xclbin)
		d->xrtXclbinFreeHandle(d->xclbin);
	if (d->dev)
		d->xrtDeviceClose(d->dev);
	/* XRT keeps process-wide singletons (shim, device list); it is never unloaded */
	free(d);
}

int xrt_dev_xclbin_info(const char *path, struct xrt_dev_xclbin_info *info, char *err,
			size_t errlen)
{
	if (!path || !info)
		return -EINVAL;
	memset(info, 0, sizeof *info);
	FILE *f = fopen(path, "rb");
	if (!f)
		return msg(err, errlen, -errno, "xrt: %s: %s", path, strerror(errno));
	uint8_t *buf = malloc(16u << 20);
	size_t n = buf ? fread(buf, 1, 16u << 20, f) : 0;
	fclose(f);
	if (!buf)
		return -ENOMEM;
	int rc = bitstream_xclbin_validate(buf, n);
	free(buf);
	if (rc)
		return msg(err, errlen, rc, "xrt: %s: not a well-formed xclbin", path);
	if ((rc = check_shim(err, errlen)))
		return rc;
	struct xrt_dev *d;
	if ((rc = lib_open(&d, err, errlen)))
		return rc;
	// NOLINTNEXTLINE(clang-analyzer-core.NullDereference): lib_open returned 0, so d is set
	xrtXclbinHandle x = d->xrtXclbinAllocFilename(path);
	if (!x) {
		free(d);
		return msg(err, errlen, -EIO, "xrt: %s: XRT cannot read this xclbin", path);
	}
	int sz = 0;
	if (d->xrtXclbinGetUUID(x, info->uuid) != 0 ||
	    d->xrtXclbinGetXSAName(x, info->xsa, (int)sizeof info->xsa, &sz) != 0)
		rc = msg(err, errlen, -EIO, "xrt: %s: XRT cannot read UUID or XSA name", path);
	info->xsa[sizeof info->xsa - 1] = '\0';
	info->n_kernels = (uint32_t)d->xrtXclbinGetNumKernels(x);
	info->n_cus = (uint32_t)d->xrtXclbinGetNumKernelComputeUnits(x);
	d->xrtXclbinFreeHandle(x);
	free(d);
	return rc;
}

int xrt_dev_noop_setup(const char *dir, char *err, size_t errlen)
{
	if (!dir || !*dir)
		return -EINVAL;
	void *lib = dlopen(XRT_DEV_LIB, RTLD_NOW | RTLD_LOCAL);
	if (!lib)
		return msg(err, errlen, -ENOENT, "xrt: cannot load %s (install XRT): %s",
			   XRT_DEV_LIB, dlerror());
	Dl_info info;
	void *sym = dlsym(lib, "xrtDeviceOpen");
	char libdir[PATH_MAX];
	if (!sym || !dladdr(sym, &info) || !info.dli_fname || !strchr(info.dli_fname, '/'))
		return msg(err, errlen, -ENOENT, "xrt: cannot locate %s on disk", XRT_DEV_LIB);
	snprintf(libdir, sizeof libdir, "%s", info.dli_fname);
	*strrchr(libdir, '/') = '\0';
	char src[PATH_MAX + 32], dst[PATH_MAX + 32];
	snprintf(src, sizeof src, "%s/libxrt_noop.so.2", libdir);
	if (access(src, R_OK) != 0)
		return msg(err, errlen, -ENOENT, "xrt: %s: XRT noop shim not installed", src);
	snprintf(dst, sizeof dst, "%s/lib", dir);
	if (mkdir(dir, 0755) != 0 && errno != EEXIST)
		return msg(err, errlen, -errno, "xrt: mkdir %s: %s", dir, strerror(errno));
	if (mkdir(dst, 0755) != 0 && errno != EEXIST)
		return msg(err, errlen, -errno, "xrt: mkdir %s: %s", dst, strerror(errno));
	/* the link is made under a name of this process and renamed into place: another process
	 * setting up the same folder never sees the link missing (unlink + symlink had a gap) */
	char tmpl[PATH_MAX + 64];
	snprintf(dst, sizeof dst, "%s/lib/libxrt_noop.so.2", dir);
	snprintf(tmpl, sizeof tmpl, "%s.%ld", dst, (long)getpid());
	unlink(tmpl);
	if (symlink(src, tmpl) != 0)
		return msg(err, errlen, -errno, "xrt: symlink %s: %s", tmpl, strerror(errno));
	if (rename(tmpl, dst) != 0) {
		int e = errno;
		unlink(tmpl);
		return msg(err, errlen, -e, "xrt: rename %s: %s", dst, strerror(e));
	}
	char abs[PATH_MAX];
	if (!realpath(dir, abs))
		return msg(err, errlen, -errno, "xrt: %s: %s", dir, strerror(errno));
	setenv("XILINX_XRT", abs, 1);
	setenv("XCL_EMULATION_MODE", "noop", 1);
	return 0;
}

int xrt_dev_nocard_setup(const char *dir, char *err, size_t errlen)
{
	char noop[4096], core[4096], target[4096];
	int r = xrt_dev_noop_setup(dir, err, errlen);
	if (r)
		return r;
	snprintf(noop, sizeof noop, "%s/lib/libxrt_noop.so.2", dir);
	ssize_t n = readlink(noop, target, sizeof target - 32);
	if (n <= 0) {
		r = n < 0 ? -errno : -EINVAL;
		snprintf(err, errlen, "%s: readlink: %s", noop, strerror(-r));
		return r;
	}
	target[n] = '\0';
	char *slash = strrchr(target, '/');
	strcpy(slash ? slash + 1 : target, "libxrt_core.so.2");
	snprintf(core, sizeof core, "%s/lib/libxrt_core.so.2", dir);
	unlink(core);
	if (symlink(target, core)) {
		r = -errno;
		snprintf(err, errlen, "%s: symlink to %s: %s", core, target, strerror(-r));
		return r;
	}
	unlink(noop);
	return 0;
}
