/*
 * backend.h - the one interface between the host scheduler and a card (DESIGN.md section 2), in
 * the style of ggml-backend: opaque handles and an ops table (struct backend_i) with a version.
 * Data flow: host/sched/card_engine.c places weights with backend_buf_alloc/write, lowers each layer to
 * firmware command packets (firmware/abi/abi_cmd.h) and hands them to backend_submit; the
 * backend runs them (cpu: in process with the same kernels; emu: the firmware on port/sim with
 * the hls/ kernels as CUs and a virtual clock; xrt: a real card, later) and backend_wait returns
 * their completions with card timestamps.
 *
 * Card memory is addressed with ABI card addresses (ABI_ADDR(bank, offset)); a buffer is a range
 * of one bank. One command list is in flight at a time: submit, then wait; a backend with
 * BACKEND_CAP_RINGS takes one list per ring (rings 0 and 1), which run side by side on the card.
 */
#ifndef MOECARD_BACKEND_H
#define MOECARD_BACKEND_H

#include <stddef.h>
#include <stdint.h>
#include "abi_board.h"
#include "abi_cmd.h"
#include "board.h"

#define BACKEND_I_VERSION 1u
#define BACKEND_MAX_LIST 1024u /* most commands in one submitted list (one ring) */

struct backend;     /* opaque: one open card */
struct backend_buf; /* opaque: a range of one bank */

enum backend_fault {
	BACKEND_FAULT_DMA_ERROR = 0, /* the n-th DMA transfer fails (emu) */
	BACKEND_FAULT_CU_HANG = 1,   /* the n-th CU start never finishes until the watchdog (emu) */
	BACKEND_FAULT_CU_BAD = 2,    /* the n-th CU run ends with an error status (emu) */
};

/* Statistics a backend keeps (all times are card time, modeled on emu; 0 on cpu). */
struct backend_stats {
	uint64_t submits;      /* lists submitted */
	uint64_t cmds;         /* commands submitted */
	uint64_t busy_ns;      /* sum over lists of (last t_end - first t_start + queueing), ns */
	uint64_t card_ns;      /* card clock now, ns */
	uint64_t cu_busy_ns[ABI_MAX_CUS]; /* per CU, ns between start and done */
	uint64_t h2c_bytes;    /* bytes written into card memory by the host */
	uint64_t h2c_ns;       /* modeled link time of those writes, ns */
	uint64_t c2h_bytes;    /* bytes read back */
	uint64_t c2h_ns;       /* modeled link time of those reads, ns */
};

/* The ops table each backend implements. */
struct backend_i {
	uint32_t version; /* BACKEND_I_VERSION */
	const char *name; /* "cpu", "emu", "xrt" */
	void (*close)(struct backend *b);
	/* bytes in bank at alignment align (power of two); -ENOMEM when the bank is full */
	int (*buf_alloc)(struct backend *b, uint32_t bank, size_t bytes, size_t align,
			 struct backend_buf **out);
	void (*buf_free)(struct backend *b, struct backend_buf *buf);
	int (*buf_write)(struct backend *b, struct backend_buf *buf, size_t off, const void *src,
			 size_t n);
	int (*buf_read)(struct backend *b, struct backend_buf *buf, size_t off, void *dst,
			size_t n);
	int (*submit)(struct backend *b, uint32_t queue, const struct abi_cmd *cmds, uint32_t n,
		      uint64_t *fence);
	int (*wait)(struct backend *b, uint64_t fence, uint32_t timeout_ms);
	/* completions of the last waited list, in command order (cpl[i] for cmds[i]) */
	int (*completions)(struct backend *b, const struct abi_cpl **cpl, uint32_t *n);
	int (*supports_op)(struct backend *b, uint32_t op);
	void (*stats)(struct backend *b, struct backend_stats *s);
	/* arms a countdown fault (emu); -ENOTSUP elsewhere. n = 0 disarms and returns 1 when the
	 * fault armed before never fired (the countdown loops of the tests stop there) */
	int (*fault_set)(struct backend *b, enum backend_fault f, uint32_t n);
};

/* Capabilities (struct backend.caps). */
#define BACKEND_CAP_RINGS 0x1u /* one list in flight per ring for rings 0 and 1: a list on ring 1
				  runs while ring 0's lists are submitted and waited for; its
				  commands may signal fences that ring 0's commands wait on */

/* Common head of every backend's state. */
struct backend {
	const struct backend_i *iface;  /* ops */
	uint32_t caps;                  /* BACKEND_CAP_*; 0 = one list in flight in all */
	struct board_desc board;        /* the card, from its dtb */
	struct abi_board blk;           /* board block handed to the firmware */
	void *impl;                     /* backend's own state */
};

/*
 * backend_open - opens backend "ref", "emu" or "xrt" on the card described by dtb (a path to a
 * compiled board tree; NULL = build/board/emu.dtb next to the program or $MOECARD_BOARD).
 * Returns 0, -ENODEV (backend not in this build), -ENOENT/-EINVAL bad board file, -ENOMEM;
 * a one-line message naming the file or field is in err.
 */
int backend_open(struct backend **out, const char *name, const char *dtb, char *err,
		 size_t errlen);
int backend_ref_open(struct backend **out, const struct board_desc *bd, char *err, size_t errlen);
int backend_emu_open(struct backend **out, const struct board_desc *bd, char *err, size_t errlen);
void backend_close(struct backend *b);

/* Card address (ABI_ADDR) of byte off of buf; bank index; size in bytes. */
uint64_t backend_buf_addr(const struct backend_buf *buf, size_t off);
uint32_t backend_buf_bank(const struct backend_buf *buf);
size_t backend_buf_size(const struct backend_buf *buf);

static inline int backend_buf_alloc(struct backend *b, uint32_t bank, size_t bytes, size_t align,
				    struct backend_buf **out)
{
	return b->iface->buf_alloc(b, bank, bytes, align, out);
}
static inline void backend_buf_free(struct backend *b, struct backend_buf *buf)
{
	b->iface->buf_free(b, buf);
}
static inline int backend_buf_write(struct backend *b, struct backend_buf *buf, size_t off,
				    const void *src, size_t n)
{
	return b->iface->buf_write(b, buf, off, src, n);
}
static inline int backend_buf_read(struct backend *b, struct backend_buf *buf, size_t off,
				   void *dst, size_t n)
{
	return b->iface->buf_read(b, buf, off, dst, n);
}
/* Queues cmds[0..n) on ring queue as one list (one doorbell); *fence identifies it.
 * Errors: -EINVAL (n 0 or > BACKEND_MAX_LIST, queue), -EBUSY (a list is still in flight: on any
 * ring, or with BACKEND_CAP_RINGS on this ring), -EAGAIN (ring full). The tags of the commands
 * are overwritten with their list index. */
static inline int backend_submit(struct backend *b, uint32_t queue, const struct abi_cmd *cmds,
				 uint32_t n, uint64_t *fence)
{
	return b->iface->submit(b, queue, cmds, n, fence);
}
/* Waits until every command of list fence completed. Returns 0 when all succeeded, -EIO when
 * one failed (see backend_completions), -ETIMEDOUT after timeout_ms of host time. With
 * BACKEND_CAP_RINGS, timeout_ms 0 is a poll that does not move card time (emu), and while one
 * ring's list is waited for the other ring's list keeps running (its completions are kept for
 * its own wait). A list already waited for returns 0. */
static inline int backend_wait(struct backend *b, uint64_t fence, uint32_t timeout_ms)
{
	return b->iface->wait(b, fence, timeout_ms);
}
static inline int backend_completions(struct backend *b, const struct abi_cpl **cpl, uint32_t *n)
{
	return b->iface->completions(b, cpl, n);
}
static inline int backend_supports_op(struct backend *b, uint32_t op)
{
	return b->iface->supports_op(b, op);
}

/* --- shared by the cpu and emu backends (backend_card.c) ---------------------------------- */

/* Builds the board block from a parsed board: banks, CUs (ops by kernel name; every CU reaches
 * every HBM bank through the HBM switch, see backend_card.c), DMA channels, clocks. */
int backend_board_block(const struct board_desc *bd, struct abi_board *blk, char *err,
			size_t errlen);

/* Card memory: one lazily-backed (MAP_NORESERVE) host mapping per bank plus a bump allocator. */
struct backend_mem {
	uint32_t n_banks;                 /* banks used */
	void *base[ABI_MAX_BANKS];        /* host mapping of each bank */
	uint64_t size[ABI_MAX_BANKS];     /* bank bytes */
	uint64_t phys[ABI_MAX_BANKS];     /* card physical base */
	uint64_t used[ABI_MAX_BANKS];     /* bytes handed out */
};
int backend_mem_init(struct backend_mem *m, const struct abi_board *blk);
void backend_mem_free(struct backend_mem *m);
int backend_mem_alloc(struct backend_mem *m, uint32_t bank, size_t bytes, size_t align,
		      struct backend_buf **out);
void backend_mem_release(struct backend_mem *m, struct backend_buf *buf);
void *backend_mem_ptr(struct backend_mem *m, const struct backend_buf *buf, size_t off, size_t n);
/* Host pointer for card physical range [phys, phys+len) or NULL. */
void *backend_mem_phys(struct backend_mem *m, uint64_t phys, uint64_t len);

/* Runs one decoded command (CU argument words, card physical addresses) with the hls/ kernels.
 * ptr resolves physical ranges. *cycles gets the kernel's modeled cycles for the build of the
 * bank bandwidth bw_mbps. Returns the CU status: 0 ok, else the kernel's negative errno
 * as uint32_t, or 0xE0 + n for an unresolvable operand. */
uint32_t backend_cu_exec(uint32_t op, const uint32_t *args,
			 void *(*ptr)(void *ctx, uint64_t phys, uint64_t len), void *ctx,
			 uint32_t bw_mbps, uint32_t clk_khz, uint64_t *cycles);

/* Modeled kernel cycles of one command from its packet alone (no memory touched): the timing
 * model the emulated card charges, for what-if estimates. 0 for non-CU opcodes, <0 bad shape. */
int64_t backend_cmd_cycles(const struct abi_cmd *cmd, uint32_t bw_mbps, uint32_t clk_khz);

#endif
