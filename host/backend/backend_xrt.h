/*
 * backend_xrt.h - backend "xrt" (backend.h) on a real card through XRT's native C API
 * (host/backend/xrt_dev.h), and what its tests and the CLI need beyond the ops table.
 *
 * Data flow: engine -> backend_submit(list of firmware ABI commands) -> one of two launch modes:
 *   direct    every compute command becomes xrtRunSetArg/Start/Wait on a CU of the loaded xclbin
 *             that implements its opcode (one reusable run per CU), operands resolved from card
 *             addresses to buffer objects; fences, barriers, timestamps and DMA fills are done by
 *             the host in list order. Completions carry host timestamps (ns since open).
 *   firmware  the list goes into a command ring (firmware/abi/abi_ring.h) inside a control BO that
 *             the card firmware consumes; the `produced` counter store is the doorbell and
 *             completions come back through the completion ring of the same BO.
 * Buffers: one BO per backend buffer, in the memory group whose MEM_TOPOLOGY tag names the bank
 * ("HBM[3]"), cross-checked against the groups XRT reports for every connected CU argument.
 *
 * Options: the xclbin and the device come in struct backend_xrt_opts (backend_open passes those
 * of struct backend_opts). The environment is the user's fallback: MOECARD_XRT_DEVICE (index or
 * PCIe BDF, default 0), MOECARD_XCLBIN (default <dtb dir>/../bitstream/<dtb name>.xclbin),
 * MOECARD_XRT_MODE (direct|firmware), and MOECARD_XRT_NOOP=1: explicit opt-in to XRT's noop
 * device (kernels do not compute, results are not meaningful) when no XCL_EMULATION_MODE is set.
 */
#ifndef MOECARD_BACKEND_XRT_H
#define MOECARD_BACKEND_XRT_H

#include <stddef.h>
#include <stdint.h>
#include "backend/backend.h"
#include "firmware/fw_config.h"

enum backend_xrt_mode {
	BACKEND_XRT_ENV = 0,	  /* from $MOECARD_XRT_MODE ("direct" or "firmware"), else direct */
	BACKEND_XRT_DIRECT = 1,	  /* host drives each CU run (xrtRunStart/Wait) */
	BACKEND_XRT_FIRMWARE = 2, /* command lists through the card firmware's rings */
};

/* Options of backend_xrt_open; a zeroed struct (or NULL) means "from the environment". */
struct backend_xrt_opts {
	const char *xclbin; /* xclbin file; NULL: $MOECARD_XCLBIN, else derived from the dtb path */
	const char *device; /* "0", "1", ... or a BDF; NULL: $MOECARD_XRT_DEVICE, else "0" */
	uint32_t mode;	    /* enum backend_xrt_mode */
	uint32_t
	    ring_log2; /* firmware mode: log2 command-ring slots, 0 = 10 (completion ring +2) */
	uint32_t
	    ring_start; /* firmware mode: initial ring counters (tests start near UINT32_MAX) */
};

/*
 * backend_xrt_open - open the card of board bd (parsed from dtb) through XRT, load the xclbin,
 * map every bank to its memory group and check the CU argument connectivity against the dts.
 * Errors (one line in err): -ENODEV no XRT environment / no card (names MOECARD_XRT_NOOP),
 * -ENOENT XRT or the xclbin file missing, -EIO XRT refused the xclbin or a kernel, -EINVAL the
 * xclbin does not match the board (a bank without a memory group, a CU argument in another
 * group than the dts says), -ENOTSUP unsupported XCL_EMULATION_MODE, -ENOMEM.
 */
int backend_xrt_open(struct backend **out, const struct board_desc *bd, const char *dtb,
		     const struct backend_xrt_opts *o, char *err, size_t errlen);

/* backend_xrt_error - the last error message of b (wait timeouts, protocol errors), or "". */
const char *backend_xrt_error(struct backend *b);

/* What the backend did, for tests and statistics. */
struct backend_xrt_counters {
	uint32_t mode;	       /* enum backend_xrt_mode */
	int noop;	       /* 1 when running on XRT's noop device */
	uint64_t bufs;	       /* live backend buffers (one BO each) */
	uint64_t sub_bos;      /* sub-buffer BOs created for operands inside a buffer */
	uint64_t scratch_bos;  /* scratch BOs (unused operands, RoPE positions, MLA q split) */
	uint64_t runs_open;    /* CU runs opened (at most one per CU, reused across lists) */
	uint64_t runs_started; /* xrtRunStart calls */
	uint64_t runs_done;    /* runs that completed */
	uint64_t host_cmds;    /* commands the host completed itself (fences, fills, timestamps) */
	uint64_t doorbells;    /* firmware mode: produced-counter writes */
	uint64_t cpl_polls;    /* firmware mode: completion-ring polls */
	uint32_t cu_runs[ABI_MAX_CUS]; /* runs per CU (board-block order) */
};
void backend_xrt_counters(struct backend *b, struct backend_xrt_counters *c);

/* Layout of the firmware-mode control BO, byte offsets (all 64-byte aligned). */
struct backend_xrt_fw_layout {
	uint64_t bytes;			    /* control BO size */
	uint64_t board_off;		    /* struct abi_board the firmware checks */
	uint64_t telem_off;		    /* struct abi_telemetry the firmware writes */
	uint64_t cmdq_off[FW_CFG_N_QUEUES]; /* command ring q (struct abi_ring + 128-byte slots) */
	uint64_t cmdq_bytes;		    /* bytes of one command ring */
	uint64_t cplq_off;		    /* completion ring (struct abi_ring + 32-byte slots) */
	uint64_t cplq_bytes;		    /* its bytes */
	uint64_t dev_addr;		    /* device address of the BO (xrtBOAddress) */
	int group;			    /* memory group it lives in */
};

/* backend_xrt_fw_layout - the control BO layout. Errors: -EINVAL not in firmware mode. */
int backend_xrt_fw_layout(struct backend *b, struct backend_xrt_fw_layout *l);

/*
 * backend_xrt_ctl_read / _write - read (after a sync from the device) or write (then sync to the
 * device) n bytes of the control BO at off: the card side of the rings, for tests. Errors:
 * -EINVAL not in firmware mode or out of range, -EIO.
 */
int backend_xrt_ctl_read(struct backend *b, size_t off, void *dst, size_t n);
int backend_xrt_ctl_write(struct backend *b, size_t off, const void *src, size_t n);

/* backend_xrt_bank_group - memory group of bank, or -EINVAL. */
int backend_xrt_bank_group(struct backend *b, uint32_t bank);

#endif
