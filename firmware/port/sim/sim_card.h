/*
 * sim_card.h - port/sim: the card firmware (firmware/fw.c) running on the host as a thread, with
 * the CUs' AXI-lite register blocks and the DMA channels as memory structs served by worker
 * threads, so several CUs really run at once. Whoever instantiates a sim card binds each CU's
 * "start" to a function (the emulator binds the hls/ kernels; tests bind small test CUs) and backs
 * each bank with host memory. Time is CLOCK_MONOTONIC ns, or a virtual clock hook that the
 * emulator drives (call sim_card_kick() after moving it; sim_card_settle() says when and where
 * to). Fault injection by countdown: the n-th
 * DMA transfer fails, the n-th CU start hangs until reset, or the n-th CU run finishes with an
 * error status (a bad completion).
 * A DMA channel's bytes move when card time reaches the end of its transfer: through the mover
 * the instantiator binds (the emulator binds a drivers/dma.h channel), else by a plain copy.
 * The host side talks to the card only through the mailbox: the rings of abi_ring.h, the board
 * block and the telemetry block.
 */
#ifndef SIM_CARD_H
#define SIM_CARD_H

#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>

#include "abi_board.h"
#include "abi_cmd.h"
#include "abi_ring.h"
#include "firmware/fw_config.h"
#include "firmware/fw_port.h"

struct sim_card;

/*
 * A CU's work function, called on the CU's worker thread when the firmware raises ap_start.
 * op: the opcode register; args: FW_CU_ARGS argument words (card physical addresses in pairs, see
 * struct abi_cmd payloads); *latency_ns: how long the run takes (the worker raises ap_done that
 * much card time after the start). Returns the value of the CU's STATUS register (0 = ok).
 */
typedef uint32_t (*sim_cu_fn)(void *ctx, struct sim_card *card, uint32_t op, const uint32_t *args,
			      uint64_t *latency_ns);
/*
 * A DMA channel's mover, called on the channel's worker when card time reaches the end of the
 * transfer (the card is locked meanwhile: the firmware sees the bytes land at once). d: the
 * transfer as the firmware started it; src: its source in host memory (the host buffer of a
 * SRC_HOST fill, or the host view of a card source range), NULL for a PATTERN fill; dst: the host
 * view of its destination range. Returns 0, or a negative errno: the transfer ends in error.
 */
typedef int (*sim_dma_fn)(void *ctx, uint32_t chan, const struct fw_dma_desc *d, const void *src,
			  void *dst);
/* Card clock in ns. */
typedef uint64_t (*sim_clock_fn)(void *ctx);
/* Moves a virtual card clock forward to t ns (called with the card's lock held, only while the
 * host waits in sim_card_settle(all = true) and no other agent has an earlier event: the
 * firmware's own work, which the host would otherwise move the clock over). */
typedef void (*sim_advance_fn)(void *ctx, uint64_t t);

enum sim_fault {
	SIM_FAULT_DMA_ERROR = 0, /* n-th DMA transfer reports an error and copies nothing */
	SIM_FAULT_CU_HANG = 1,	 /* n-th CU start never raises ap_done (until the CU is reset) */
	SIM_FAULT_CU_BAD = 2,	 /* n-th CU run finishes with STATUS = SIM_BAD_STATUS */
	SIM_FAULT_COUNT = 3
};
#define SIM_BAD_STATUS 0xBAD0u
#define SIM_DMA_ERR_CODE 0xD0A0u

#define SIM_TAKE_OPS 32u /* opcodes take_ns_op covers */

struct sim_card_config {
	const struct abi_board *board; /* the board block (copied into the mailbox) */
	void *bank_mem[ABI_MAX_BANKS]; /* host memory behind each bank (board size bytes) */
	sim_cu_fn cu_fn[ABI_MAX_CUS];  /* per CU register block: work function */
	void *cu_ctx[ABI_MAX_CUS];     /* its context */
	uint32_t ring_log2;	       /* slots per ring = 2^ring_log2 (0: 6, i.e. 64) */
	uint32_t ring_start;	       /* initial free-running counter value of every ring */
	uint64_t dma_latency_ns;       /* fixed cost per DMA transfer (0: 2000 ns) */
	sim_dma_fn dma_fn;	       /* DMA mover; NULL: the card copies (memmove/memset) */
	void *dma_ctx;		       /* its context */
	sim_clock_fn clock;	       /* NULL: CLOCK_MONOTONIC */
	void *clock_ctx;	       /* its context */
	sim_advance_fn advance;	       /* NULL: only the host moves the virtual clock */
	/* the firmware CPU's time per piece of work, ns, by enum fw_work (fw_port_spend): under a
	 * virtual clock the firmware thread waits that much card time after each, so its work is
	 * serial (one CPU) and delays what it starts; 0 = free (and always free on a real clock) */
	uint64_t fw_work_ns[FW_WORK_CLASSES];
	/* with a dispatch engine (fw_port_ready): cpu_take_ns, the CPU's time per command taken
	 * (decode and checks), runs on the CPU's own timeline ahead of the dispatch, and
	 * fw_work_ns[START, DONE, SYNC] are the engine's; 0 = no engine */
	uint64_t cpu_take_ns;
	/* TAKE's time for a command of opcode op, ns (0: fw_work_ns[TAKE], or cpu_take_ns with the
	 * dispatch engine) */
	uint64_t take_ns_op[SIM_TAKE_OPS];
	/* with a dispatch engine that preloads the argument registers (fw_port_start_cu): a
	 * command's START work (fw_work_ns[START]) runs on the engine's argument writer once the
	 * command is taken and its CU has latched the arguments before them, and a command whose
	 * fences are met waits only for that write and go_ns; 0 = no preload */
	uint64_t go_ns;
};

/*
 * Builds a sim card: copies the board block into a mailbox, lays out FW_CFG_N_QUEUES command rings
 * and the completion ring, and brings the firmware up (fw_init). Threads start with
 * sim_card_start(). Errors: -EINVAL bad config (missing board, bank memory or CU function),
 * -ENOMEM, and fw_init()'s errors for a bad board block.
 */
int sim_card_init(struct sim_card **out, const struct sim_card_config *cfg);
/* Starts the firmware thread, one worker per CU and per DMA channel. Errors: -EAGAIN thread. */
int sim_card_start(struct sim_card *c);
/* Stops the threads and frees the card (NULL is fine). */
void sim_card_free(struct sim_card *c);

/* Host: submits n commands to ring q as one list (one doorbell). Errors: -EINVAL q,
 * -EAGAIN ring full, -EPROTO ring corrupted. */
int sim_card_submit(struct sim_card *c, uint32_t q, const struct abi_cmd *cmds, uint32_t n);
/* Host: takes one completion. Errors: -EAGAIN none yet. */
int sim_card_poll(struct sim_card *c, struct abi_cpl *cpl);
/* Host: waits up to timeout_ms (real time) for a completion. Errors: -ETIMEDOUT. */
int sim_card_wait(struct sim_card *c, struct abi_cpl *cpl, uint32_t timeout_ms);

/* Arms fault f to hit the n-th event from now (n >= 1); n = 0 disarms. Returns the countdown
 * that was left (0: the fault armed before has fired, or none was armed). */
uint32_t sim_card_fault_set(struct sim_card *c, enum sim_fault f, uint32_t n);
/* Events of kind f seen so far (DMA transfers, CU starts, CU runs finished). */
uint32_t sim_card_events(struct sim_card *c, enum sim_fault f);
/* Wakes the firmware and the workers (after moving a virtual clock). */
void sim_card_kick(struct sim_card *c);
/* Host pointer for card physical range [phys, phys+len) inside one bank, or NULL. */
void *sim_card_ptr(struct sim_card *c, uint64_t phys, uint64_t len);
/* The mailbox's telemetry block and board block, and the command ring views (for tests that
 * corrupt rings on purpose). */
const struct abi_telemetry *sim_card_telemetry(struct sim_card *c);
struct abi_ring_view *sim_card_cmdq(struct sim_card *c, uint32_t q);
/* Card time now. */
uint64_t sim_card_now(struct sim_card *c);

/*
 * sim_card_settle - host, under a virtual clock: waits (up to timeout_ms real time) until the
 * firmware thread is blocked with every event seen. Returns 1 if completions are then waiting
 * in the completion ring; else, with all false, 0; with all true it waits on until every CU and
 * DMA worker is blocked as well (idle, or waiting for a card time still ahead) and returns 0
 * with *next = the earliest card time any agent waits for (the firmware's next timer, an
 * ap_done, the end of a DMA transfer). Nothing on the card can then change until the host moves
 * the clock (to *next, then sim_card_kick()), submits or takes a completion, so card time moves
 * only on model events, however slowly the host runs the card's threads. Errors: -ETIMEDOUT.
 */
int sim_card_settle(struct sim_card *c, bool all, uint32_t timeout_ms, uint64_t *next);

#endif
