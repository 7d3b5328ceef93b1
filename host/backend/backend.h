/*
 * backend.h - the one interface between the host scheduler and a card, in the style of
 * ggml-backend: opaque handles and the calls below; the ops table each backend implements is in
 * backend_impl.h (docs/architecture.md, interfaces).
 * Data flow: host/sched/card_engine.c places weights with backend_buf_alloc/write, lowers each
 * layer to firmware command packets (firmware/abi/abi_cmd.h) and hands them to backend_submit; the
 * backend runs them (ref: in process with the same kernels and a host reference; emu: the firmware
 * on port/sim with the hls/ kernels as CUs and a modeled card clock; xrt: a real card, or XRT's
 * noop device, through XRT) and backend_wait returns their completions with card timestamps.
 *
 * Card memory is addressed with ABI card addresses (ABI_ADDR(bank, offset)); a buffer is a range
 * of one bank. One command list is in flight at a time: submit, then wait; a backend with
 * BACKEND_CAP_RINGS takes one list per command ring (FW_CFG_N_QUEUES rings), and the lists of
 * different rings run side by side on the card.
 */
#ifndef MOECARD_BACKEND_H
#define MOECARD_BACKEND_H

#include <stddef.h>
#include <stdint.h>
#include "abi_board.h"
#include "abi_cmd.h"
#include "board.h"
#include "dma.h"

#define BACKEND_MAX_LIST 1024u /* most commands in one submitted list (one ring) */

struct backend;	    /* opaque: one open card */
struct backend_buf; /* opaque: a range of one bank */

enum backend_fault {
	BACKEND_FAULT_DMA_ERROR = 0, /* the n-th DMA transfer fails (emu) */
	BACKEND_FAULT_CU_HANG = 1,   /* the n-th CU start never finishes until the watchdog (emu) */
	BACKEND_FAULT_CU_BAD = 2,    /* the n-th CU run ends with an error status (emu) */
};

/* Statistics a backend keeps (all times are card time, modeled on emu; 0 on ref). */
struct backend_stats {
	uint64_t submits; /* lists submitted */
	uint64_t cmds;	  /* commands submitted */
	uint64_t busy_ns; /* sum over lists of (last t_end - first t_start + queueing), ns */
	uint64_t card_ns; /* card clock now, ns */
	uint64_t cu_busy_ns[ABI_MAX_CUS]; /* per CU, ns between start and done */
	uint64_t h2c_bytes;		  /* bytes written into card memory by the host */
	uint64_t h2c_ns;		  /* modeled link time of those writes, ns */
	uint64_t c2h_bytes;		  /* bytes read back */
	uint64_t c2h_ns;		  /* modeled link time of those reads, ns */
	uint64_t fills;			  /* DMA_FILL commands the card completed without error */
	uint64_t fill_bytes;		  /* their bytes */
	/* the DMA driver (drivers/dma.h) whose channels carry the card's DMA fills: its engine
	 * ("emul" on the emulated and reference cards, "xrt" for backend xrt in direct mode; NULL
	 * when no driver carries them) and its statistics
	 * (transfers, fences, errors, bytes; since open) */
	const char *dma_engine;
	struct dma_stats dma;
};

/* Capabilities (backend_caps). */
#define BACKEND_CAP_RINGS                                                                          \
	0x1u /* one list in flight per ring: a list on ring 1 runs while ring
				  0's lists are submitted and waited for; its commands may signal
				  fences that ring 0's commands wait on */
#define BACKEND_CAP_CARD_CLOCK                                                                     \
	0x2u			/* a modeled card clock: backend_stats gives modeled card
				       and link time, and backend_cmd_cycles is the time the card
				       charges (what-if timing and the --stats card figures) */
#define BACKEND_CAP_FAULTS 0x4u /* backend_fault_set arms countdown faults */

/* How to open a backend; a zeroed struct (or NULL) takes every default. */
struct backend_opts {
	const char *board;  /* compiled board tree (.dtb); NULL: $MOECARD_BOARD, else
			       board/emu.dtb next to the program, else build/board/emu.dtb */
	const char *xclbin; /* xrt: the xclbin; NULL: $MOECARD_XCLBIN, else
			       <board dir>/../bitstream/<board stem>.xclbin */
	const char *device; /* xrt: device index or PCIe BDF; NULL: $MOECARD_XRT_DEVICE, else "0" */
	const char *set;    /* what-if board changes "k=v,k=v" (board_set_list), NULL none */
};

/*
 * backend_open - opens backend "ref", "emu" or "xrt" with options o (NULL: defaults).
 * Returns 0, -ENODEV (backend not in this build), -ENOENT/-EINVAL bad board file, -EPROTO the
 * backend's ops table has another version than this interface, -ENOMEM; a one-line message
 * naming the file or field is in err.
 */
int backend_open(struct backend **out, const char *name, const struct backend_opts *o, char *err,
		 size_t errlen);
void backend_close(struct backend *b);

/* The backend's name ("ref", "emu", "xrt"), its BACKEND_CAP_* bits, the card it runs (parsed
 * board tree) and the board block handed to the firmware. */
const char *backend_name(const struct backend *b);
uint32_t backend_caps(const struct backend *b);
const struct board_desc *backend_board(const struct backend *b);
const struct abi_board *backend_abi_board(const struct backend *b);

/* Card address (ABI_ADDR) of byte off of buf; bank index; size in bytes. */
uint64_t backend_buf_addr(const struct backend_buf *buf, size_t off);
uint32_t backend_buf_bank(const struct backend_buf *buf);
size_t backend_buf_size(const struct backend_buf *buf);

/* bytes in bank at alignment align (power of two); -ENOMEM when the bank is full */
int backend_buf_alloc(struct backend *b, uint32_t bank, size_t bytes, size_t align,
		      struct backend_buf **out);
void backend_buf_free(struct backend *b, struct backend_buf *buf);
int backend_buf_write(struct backend *b, struct backend_buf *buf, size_t off, const void *src,
		      size_t n);
int backend_buf_read(struct backend *b, struct backend_buf *buf, size_t off, void *dst, size_t n);

/* Queues cmds[0..n) on ring queue as one list (one doorbell); *fence identifies it.
 * Errors: -EINVAL (n 0 or > BACKEND_MAX_LIST, queue), -EBUSY (a list is still in flight: on any
 * ring, or with BACKEND_CAP_RINGS on this ring), -EAGAIN (ring full). The tags of the commands
 * are overwritten with their list index. */
int backend_submit(struct backend *b, uint32_t queue, const struct abi_cmd *cmds, uint32_t n,
		   uint64_t *fence);
/* Waits until every command of list fence completed. Returns 0 when all succeeded, -EIO when
 * one failed (see backend_completions), -ETIMEDOUT after timeout_ms of host time. With
 * BACKEND_CAP_RINGS, timeout_ms 0 is a poll that does not move card time (emu), and while one
 * ring's list is waited for the other ring's list keeps running (its completions are kept for
 * its own wait). A list already waited for returns 0. */
int backend_wait(struct backend *b, uint64_t fence, uint32_t timeout_ms);
/* Completions of the last waited list, in command order (cpl[i] for cmds[i]). */
int backend_completions(struct backend *b, const struct abi_cpl **cpl, uint32_t *n);
/* 1 when the card runs opcode op. */
int backend_supports_op(struct backend *b, uint32_t op);
/* Totals so far. */
void backend_stats(struct backend *b, struct backend_stats *s);
/* Arms a countdown fault: the n-th event of kind f from now fails. n 0 disarms and returns 1 when
 * the fault armed before never fired (the countdown loops of the tests stop there), else 0.
 * -ENOTSUP without BACKEND_CAP_FAULTS. */
int backend_fault_set(struct backend *b, enum backend_fault f, uint32_t n);

/* Modeled kernel cycles of one command from its packet alone (no memory touched): the timing
 * model the emulated card charges, for what-if estimates. 0 for non-CU opcodes, <0 bad shape. */
int64_t backend_cmd_cycles(const struct abi_cmd *cmd, uint32_t bw_mbps, uint32_t clk_khz,
			   const struct board_cu *cu);
/* The board CU behind CU k of the board block (the CUs of kernels the firmware drives, in tree
 * order), or NULL. */
const struct board_cu *backend_blk_cu(const struct board_desc *bd, uint32_t k);
/* Whether the firmware drives CUs of this kernel (board trees name CUs by kernel). */
int backend_kernel_driven(const char *kernel);
/* The kernel whose CUs run op, or NULL for an op no CU runs. */
const char *backend_op_kernel(uint32_t op);

/* Modeled firmware CPU time of one command of opcode op (ring pop, decode, dispatch, completion),
 * ns, as if the firmware dispatched in software: the board's moecard,fw-cmd-instr counts at the
 * firmware CPU's clock (board_fw_cmd_ns; TAKE the opcode's own count, board_fw_take_ns), TAKE plus
 * SYNC for BARRIER, FENCE, TIMESTAMP and NOP (the firmware completes them), TAKE + START + DONE
 * for everything else. The emulated card spends each part on its one firmware CPU where the
 * firmware does that work (fw_port_spend); the what-if times lists with the same parts. */
uint64_t backend_fw_cmd_ns(const struct board_desc *bd, uint32_t op);
/* True for the opcodes the firmware completes itself (BOARD_FW_SYNC). */
int backend_op_fw_sync(uint32_t op);

#endif
