/*
 * fw.h - the card firmware: command-queue service, dispatcher, DMA manager and telemetry/watchdog
 * tasks on the kernel of firmware/kernel/, over a port (fw_port.h). Data flow:
 *   host command rings (abi_ring.h) --cmdq task: fw_cmd_decode()--> per-ring pending queues
 *   --dispatcher: fences, barriers, CU choice, ap_ctrl_hs start--> CUs / DMA manager --> done
 *   --> completion ring + fence signals; the telemetry task scans for hangs and updates the
 *   telemetry block.
 * The same source runs on the host (port/sim), on rv32 and on r5. struct fw holds all state; no
 * heap.
 */
#ifndef FW_H
#define FW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "abi_board.h"
#include "abi_cmd.h"
#include "abi_ring.h"
#include "firmware/fw_config.h"
#include "firmware/fw_port.h"
#include "firmware/kernel/rtos.h"

#define FW_MAX_OPERANDS 6u /* card-address operands of one command */

/* A validated command, ready to start. */
struct fw_cmd {
	union {
		struct abi_cmd raw; /* the packet as read from the ring (128 bytes) */
		struct {
			struct abi_cmd_hdr hdr_;
			/* CU argument words: the payload, its card addresses made physical in
			 * place by the decoder (no second copy of the payload) */
			uint32_t args[FW_CU_ARGS];
		};
	};
	uint32_t op;	     /* enum abi_op */
	uint32_t queue;	     /* host ring index, 0..FW_CFG_N_QUEUES-1 */
	uint32_t flags;	     /* ABI_CMD_F_* */
	uint64_t timeout_ns; /* hang timeout, ns */
	uint64_t bank_mask;  /* bit b: some operand lies in bank b */
	uint64_t ready_at;   /* ns: not started before (fw_port_ready; 0 = at once) */
};
_Static_assert(sizeof(((struct fw_cmd *)0)->args) == ABI_PAYLOAD_BYTES &&
		   offsetof(struct fw_cmd, args) == offsetof(struct abi_cmd, u),
	       "the CU arguments are the payload words");

/* Copies n bytes (a multiple of 4) between 4-byte aligned, non-overlapping objects a word at a
 * time, four per loop step (the ABI structs and struct fw_cmd are aligned and multiples of 16
 * bytes): the images' size-optimized C libraries copy byte by byte. */
static inline void fw_copy_words(void *dst, const void *src, size_t n)
{
	typedef uint32_t __attribute__((may_alias)) fw_word_t;
	fw_word_t *d = (fw_word_t *)dst;
	const fw_word_t *s = (const fw_word_t *)src, *e = s + n / 4;
	for (; e - s >= 4; s += 4, d += 4) {
		uint32_t a = s[0], b = s[1], c = s[2], w = s[3];
		d[0] = a;
		d[1] = b;
		d[2] = c;
		d[3] = w;
	}
	while (s < e)
		*d++ = *s++;
}

/* A CU or DMA channel and the command it runs. */
struct fw_unit {
	bool busy;	   /* a command is running */
	uint64_t t_start;  /* ns, when it was started */
	uint64_t deadline; /* ns, hang deadline */
	struct fw_cmd cmd; /* the running command (a CU's: header and decoded fields only) */
};

/* Where the host and the card share memory (the mailbox): handed to fw_init(). */
struct fw_mailbox {
	const struct abi_board *board;	    /* board block written by the host */
	void *cmdq[FW_CFG_N_QUEUES];	    /* command rings (NULL = ring unused) */
	size_t cmdq_bytes[FW_CFG_N_QUEUES]; /* bytes of each ring region */
	void *cplq;			    /* completion ring */
	size_t cplq_bytes;		    /* bytes of its region */
	struct abi_telemetry *telem;	    /* telemetry block the card writes */
};

struct fw {
	void *port;				    /* port context for fw_port_*() */
	struct abi_board board;			    /* private, checked copy of the board block */
	uint32_t n_banks, n_cus, n_dma;		    /* counts from the board block */
	struct abi_ring_view cmdq[FW_CFG_N_QUEUES]; /* host -> card rings (we consume) */
	bool cmdq_on[FW_CFG_N_QUEUES];		    /* ring attached and healthy */
	struct abi_ring_view cplq;		    /* card -> host ring (we produce) */
	struct abi_telemetry *telem;		    /* host-visible telemetry */
	uint32_t cpl_reserved;			    /* accepted commands without a completion */
	uint32_t cpl_seq;			    /* completions posted, free-running */
	uint32_t fence[ABI_MAX_FENCES];		    /* fence values */
	bool fence_err[ABI_MAX_FENCES];		    /* a signaller of this fence failed */
	uint32_t fence_err_value[ABI_MAX_FENCES];   /* the value that signaller would have set */
	uint32_t inflight[FW_CFG_N_QUEUES];	    /* started, not completed, per ring */
	struct fw_unit cu[ABI_MAX_CUS];		    /* CU slots, indexed like board.cus */
	struct fw_unit dma[ABI_MAX_DMA];	    /* DMA channel slots */
	uint32_t cu_rr;				    /* round-robin start for CU choice */
	bool cu_polling;     /* the dispatcher is polling its CUs: it dispatches next anyway */
	uint32_t wdog_ticks; /* watchdog periods elapsed */
	uint64_t wake_at;    /* ns: a pending command gets ready then (0: none waits) */
	/* kernel objects */
	struct rtos rtos;				 /* scheduler */
	struct rtos_task t_cmdq, t_disp, t_dma, t_telem; /* the four tasks */
	struct rtos_queue pend[FW_CFG_N_QUEUES]; /* decoded commands per ring (to dispatcher) */
	struct fw_cmd pend_buf[FW_CFG_N_QUEUES][FW_CFG_PENDING]; /* their storage */
	struct rtos_queue dmaq;					 /* fills waiting for a channel */
	struct fw_cmd dmaq_buf[FW_CFG_DMA_PENDING];		 /* its storage */
	struct rtos_timer wdog;					 /* watchdog/heartbeat period */
};

/*
 * Checks a board block: magic, version, counts, every bank (size > 0, no wrap, no overlap,
 * reserved 0), every CU (kind, ops mask only real opcodes, banks it reaches exist), DMA channels.
 * Errors: -EBADMSG magic/version, -EINVAL anything else; *field gets the byte offset of the
 * offending field in struct abi_board.
 */
int fw_board_check(const struct abi_board *b, uint32_t *field);

/*
 * Decodes and validates one command against the board: header (magic, version, opcode, flags,
 * fence ids, reserved 0), every operand address (bank exists, [off, off+len) inside it, length
 * from the op's shapes), every dimension, unused operands 0, and that some CU (or DMA channel)
 * can run it. Returns ABI_ST_OK with *out filled, else an enum abi_status with *detail = the
 * offending field (ABI_FIELD offset) or 0. Reads *c exactly once (a word copy into out->raw,
 * which may be c itself) and checks only that private copy, so c may point into a ring slot the
 * host can still write; never reads memory other than *c and *b.
 */
uint32_t fw_cmd_decode(const struct abi_board *b, const struct abi_cmd *c, uint32_t queue,
		       struct fw_cmd *out, uint32_t *detail);

/*
 * Brings the firmware up over the mailbox: checks the board block, attaches the rings (command
 * rings as consumer, completion ring as producer), sets up tasks, queues and the watchdog timer,
 * and stamps the telemetry block. Errors: -EBADMSG / -EINVAL bad board block, -EPROTO / -EINVAL /
 * -ENOSPC a ring failed abi_ring_attach(), -EINVAL no completion ring or telemetry block.
 */
int fw_init(struct fw *fw, void *port, const struct fw_mailbox *mb);

/* Runs one kernel step (a task, or the idle hook). Returns 1 if a task ran, else 0. */
int fw_step(struct fw *fw);

/* Physical card address of card address a, if [a, a+len) lies inside one bank; else -ERANGE. */
int fw_addr_resolve(const struct abi_board *b, uint64_t a, uint64_t len, uint64_t *phys);

#endif
