/*
 * xrt_dev.h - the XRT control path of backend xrt: open a card (index or PCIe BDF), load an
 * xclbin, open one kernel handle per CU, allocate buffer objects in the memory group the xclbin
 * connects each argument to, upload/read back with xrtBOSync, and run CUs with
 * xrtRunOpen/SetArg/Start/Wait (direct mode, runs reused across tokens).
 *
 * Data flow: host/backend (xrt) -> xrt_dev -> XRT native C API (libxrt_coreutil, loaded with dlopen
 * so nothing else in moecard depends on XRT) -> XRT shim: a card (libxrt_core) or XRT's noop
 * device (libxrt_noop, XCL_EMULATION_MODE=noop), on which kernels complete at once.
 *
 * XRT 2.13 aborts the process when XILINX_XRT is unset or its lib/ lacks the shim library;
 * xrt_dev_open checks both first and fails with one clear message instead.
 * All functions return 0 or a negative errno; messages go to the caller's err buffer, never to
 * stdout (XRT itself may print "[XRT] ..." lines on stderr).
 */
#ifndef MOECARD_XRT_DEV_H
#define MOECARD_XRT_DEV_H

#include <stddef.h>
#include <stdint.h>

#include "board.h"

struct xrt_dev; /* opaque: the loaded library, device, xclbin and per-CU kernel handles */

/* A buffer object in one memory group (a bank of the xclbin's MEM_TOPOLOGY). */
struct xrt_dev_bo {
	void *h;     /* xrtBufferHandle */
	size_t size; /* bytes */
	int group;   /* memory group (MEM_TOPOLOGY index) it was allocated in */
};

/* One reusable run of one CU. */
struct xrt_dev_run {
	void *h;     /* xrtRunHandle */
	uint32_t cu; /* index into board_desc.cu[] */
};

/* Counters of what the control path did (for tests and `moecard profile`). */
struct xrt_dev_stats {
	uint64_t bo_allocs;    /* xrtBOAlloc calls that succeeded */
	uint64_t bo_bytes;     /* bytes allocated in BOs */
	uint64_t syncs_to;     /* xrtBOSync to the device */
	uint64_t syncs_from;   /* xrtBOSync from the device */
	uint64_t runs_started; /* xrtRunStart calls that succeeded */
	uint64_t runs_done;    /* runs that reached ERT_CMD_STATE_COMPLETED */
};

/*
 * xrt_dev_open - load XRT, check the shim, open the device spec ("0", "1", ... or a PCIe BDF
 * "0000:65:00.1"). *out gets the handle. Errors: -ENOENT (libxrt_coreutil.so.2 not installed),
 * -ENODEV (XILINX_XRT unset, shim library missing, or no such device), -ENOTSUP
 * (XCL_EMULATION_MODE other than noop), -EINVAL, -ENOMEM. err gets one line.
 */
int xrt_dev_open(const char *spec, struct xrt_dev **out, char *err, size_t errlen);

/*
 * xrt_dev_load - load the xclbin file path (built for board b: bitstream/<card>.xclbin) onto the
 * device and open one kernel handle per CU of b ("kernel:{cu}"). Errors: -EIO (XRT refused the
 * xclbin or a kernel), -EINVAL.
 */
int xrt_dev_load(struct xrt_dev *d, const char *path, const struct board_desc *b, char *err,
		 size_t errlen);

/* xrt_dev_uuid - the loaded xclbin's UUID. Errors: -EINVAL before xrt_dev_load. */
int xrt_dev_uuid(const struct xrt_dev *d, uint8_t uuid[16]);

/*
 * xrt_dev_arg_group - the memory group XRT reports for pointer argument arg of CU cu, and its
 * control-register offset. Errors: -EINVAL (bad cu/arg or a scalar argument), -EIO.
 */
int xrt_dev_arg_group(struct xrt_dev *d, uint32_t cu, uint32_t arg, int *group, uint32_t *offset);

/* xrt_dev_bo_alloc - a BO of size bytes in memory group group. Errors: -EINVAL, -ENOMEM. */
int xrt_dev_bo_alloc(struct xrt_dev *d, size_t size, int group, struct xrt_dev_bo *bo);

/* xrt_dev_bo_upload - write n bytes at off and sync them to the device. Errors: -EINVAL, -EIO. */
int xrt_dev_bo_upload(struct xrt_dev *d, struct xrt_dev_bo *bo, const void *src, size_t n,
		      size_t off);

/* xrt_dev_bo_download - sync n bytes at off from the device and read them. Errors: as upload. */
int xrt_dev_bo_download(struct xrt_dev *d, struct xrt_dev_bo *bo, void *dst, size_t n, size_t off);

/*
 * xrt_dev_bo_sub - bo = bytes [off, off + size) of parent as a BO of its own (xrtBOSubAlloc), for
 * binding a kernel argument to the middle of a buffer. Free it before its parent.
 * Errors: -EINVAL (range outside parent), -ENOMEM.
 */
int xrt_dev_bo_sub(struct xrt_dev *d, struct xrt_dev_bo *parent, size_t size, size_t off,
		   struct xrt_dev_bo *bo);

/* xrt_dev_bo_address - the BO's device address (xrtBOAddress), 0 for a bad handle. */
uint64_t xrt_dev_bo_address(struct xrt_dev *d, const struct xrt_dev_bo *bo);

/* xrt_dev_bo_free - release a BO (NULL handle is fine). */
void xrt_dev_bo_free(struct xrt_dev *d, struct xrt_dev_bo *bo);

/* xrt_dev_run_open - a reusable run of CU cu. Errors: -EINVAL, -EIO. */
int xrt_dev_run_open(struct xrt_dev *d, uint32_t cu, struct xrt_dev_run *r);

/* xrt_dev_run_set_bo / _set_u32 - bind argument arg. Errors: -EINVAL, -EIO. */
int xrt_dev_run_set_bo(struct xrt_dev *d, struct xrt_dev_run *r, uint32_t arg,
		       const struct xrt_dev_bo *bo);
int xrt_dev_run_set_u32(struct xrt_dev *d, struct xrt_dev_run *r, uint32_t arg, uint32_t v);
/* xrt_dev_run_set_f32 - bind a "float" scalar argument (XRT reads it from varargs as double). */
int xrt_dev_run_set_f32(struct xrt_dev *d, struct xrt_dev_run *r, uint32_t arg, float v);

/* xrt_dev_run_start - start the run. Errors: -EIO. */
int xrt_dev_run_start(struct xrt_dev *d, struct xrt_dev_run *r);

/*
 * xrt_dev_run_wait - wait up to timeout_ms (0: forever) for the run to complete.
 * Errors: -ETIMEDOUT, -EIO (the run ended in error/abort state).
 */
int xrt_dev_run_wait(struct xrt_dev *d, struct xrt_dev_run *r, unsigned timeout_ms);

/* xrt_dev_run_close - release a run. */
void xrt_dev_run_close(struct xrt_dev *d, struct xrt_dev_run *r);

/* xrt_dev_stats_get - copy the counters. */
void xrt_dev_stats_get(const struct xrt_dev *d, struct xrt_dev_stats *s);

/* xrt_dev_close - close kernels, xclbin handle and device; NULL is fine. */
void xrt_dev_close(struct xrt_dev *d);

/* What XRT's xclbin API reads back from a file (xrt_dev_xclbin_info). */
struct xrt_dev_xclbin_info {
	uint8_t uuid[16];   /* xrtXclbinGetUUID */
	uint32_t n_kernels; /* xrtXclbinGetNumKernels */
	uint32_t n_cus;	    /* xrtXclbinGetNumKernelComputeUnits */
	char xsa[64];	    /* xrtXclbinGetXSAName: the platform (VBNV) */
};

/*
 * xrt_dev_xclbin_info - read an xclbin with XRT's xclbin API (no device needed). The file is
 * checked with bitstream_xclbin_validate first, and the XRT environment as in xrt_dev_open,
 * because XRT 2.13 aborts the process when it logs an error without a usable shim.
 * Errors: -EINVAL (not a well-formed xclbin), -EIO (XRT rejected it), those of xrt_dev_open's
 * environment checks, -ENOMEM, negated errno of reading the file.
 */
int xrt_dev_xclbin_info(const char *path, struct xrt_dev_xclbin_info *info, char *err,
			size_t errlen);

/*
 * xrt_dev_noop_setup - prepare XRT's noop device for this process: make dir/lib/libxrt_noop.so.2
 * a link to the installed one (found next to libxrt_coreutil.so.2) and set XILINX_XRT=dir and
 * XCL_EMULATION_MODE=noop. Call before the first xrt_dev_open. Errors: -ENOENT (XRT or its noop
 * shim not installed), negated errno of mkdir/symlink, -EINVAL.
 */
int xrt_dev_noop_setup(const char *dir, char *err, size_t errlen);

/*
 * xrt_dev_nocard_setup - as xrt_dev_noop_setup, then swaps the noop shim for XRT's real PCIe shim
 * (dir/lib/libxrt_core.so.2, found beside the noop one): a process that then opens a device finds
 * no card. For tests of the no-card failure (run them in a child: XRT's shim choice is
 * process-wide). Errors as xrt_dev_noop_setup, plus negated errno of readlink/symlink.
 */
int xrt_dev_nocard_setup(const char *dir, char *err, size_t errlen);

#endif
