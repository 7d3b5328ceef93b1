/*
 * fw_port.h - what the firmware core (fw.c) needs from a port (firmware/port/<target>/): a clock,
 * the CUs' AXI-lite register blocks with the Vitis HLS ap_ctrl_hs protocol, a CU reset, a DMA
 * engine, the idle wait and the host interrupt. Each port defines these functions once; `port`
 * is the port's own context pointer handed to fw_init().
 *
 * CU register block (per CU, byte offsets; Vitis HLS s_axilite layout with our argument words):
 *   0x00 CTRL   [0] ap_start (W1, self-clearing), [1] ap_done (clear on read), [2] ap_idle,
 *               [3] ap_ready
 *   0x04 STATUS kernel return code of the last run, 0 = ok
 *   0x08 OP     opcode (enum abi_op) of the run
 *   0x10 ARG0.. FW_CU_ARGS 32-bit words: the command payload with card addresses translated to
 *               card physical addresses (bank base + offset)
 */
#ifndef FW_PORT_H
#define FW_PORT_H

#include <stdint.h>

#define FW_CU_REG_CTRL 0x00u
#define FW_CU_REG_STATUS 0x04u
#define FW_CU_REG_OP 0x08u
#define FW_CU_REG_ARG0 0x10u
#define FW_CU_ARGS 24u /* = ABI_PAYLOAD_BYTES / 4 */
#define FW_CU_CTRL_START 0x1u
#define FW_CU_CTRL_DONE 0x2u
#define FW_CU_CTRL_IDLE 0x4u
#define FW_CU_CTRL_READY 0x8u

/* DMA channel status returned by fw_port_dma_poll(). */
enum fw_dma_state { FW_DMA_IDLE = 0, FW_DMA_BUSY = 1, FW_DMA_DONE = 2, FW_DMA_ERROR = 3 };

/* One DMA transfer, physical addresses. */
struct fw_dma_desc {
	uint64_t src;	  /* card physical address, or host bus address with ABI_DMA_F_SRC_HOST */
	uint64_t dst;	  /* card physical address */
	uint64_t bytes;	  /* > 0 */
	uint32_t flags;	  /* ABI_DMA_F_* */
	uint32_t pattern; /* fill byte [7:0] with ABI_DMA_F_PATTERN */
};

/* Card time in ns (may be a virtual clock). */
uint64_t fw_port_now(void *port);
/* 32-bit register access in CU register block blk. */
uint32_t fw_port_cu_read(void *port, uint32_t blk, uint32_t off);
void fw_port_cu_write(void *port, uint32_t blk, uint32_t off, uint32_t val);
/* Writes the FW_CU_ARGS argument registers of block blk from args (one call per command). */
void fw_port_cu_args(void *port, uint32_t blk, const uint32_t *args);
/* Pulses the reset of CU register block blk; afterwards it is idle and forgets its run. */
void fw_port_cu_reset(void *port, uint32_t blk);
/* Starts a transfer on channel chan (idle). Returns 0, or -EBUSY if the channel is not idle. */
int fw_port_dma_start(void *port, uint32_t chan, const struct fw_dma_desc *d);
/* Channel state; reading DONE or ERROR acknowledges it (back to IDLE). *detail gets the engine's
 * error code on ERROR. */
enum fw_dma_state fw_port_dma_poll(void *port, uint32_t chan, uint32_t *detail);
/* Idle: wait for an event (doorbell, CU done, DMA done) or until deadline (ns card time). */
void fw_port_wait(void *port, uint64_t deadline);
/* A completion was posted (MSI-X to the host on a real card). */
void fw_port_notify_host(void *port);

/* The firmware's work, in the classes its CPU time is counted in (fw_port_spend): every command
 * costs TAKE (ring pop, decode and checks, queueing) and then START + DONE when a CU or a DMA
 * channel runs it (argument registers and ap_start; ap_done seen, completion posted, fences) or
 * SYNC when the firmware completes it itself (BARRIER, FENCE, TIMESTAMP, NOP, and rejects). */
enum fw_work { FW_WORK_TAKE = 0, FW_WORK_START = 1, FW_WORK_DONE = 2, FW_WORK_SYNC = 3 };
#define FW_WORK_CLASSES 4u
/* The firmware has just done one piece of work of class w (called at the end of each: TAKE after
 * a command is queued or rejected, START right before ap_start or the DMA start, DONE or SYNC
 * after a completion is posted). On hardware its CPU time passes by itself and this does nothing;
 * port/sim advances the firmware's own virtual time by the board's count for w (one firmware CPU:
 * its work never overlaps itself), and port/rv32's cost build counts instructions per class. */
void fw_port_spend(void *port, uint32_t w);
/* fw_port_spend(port, FW_WORK_TAKE) for a command of opcode op (ABI wire value; out of range for
 * a packet with a bad opcode): port/sim charges the board's TAKE count for that opcode
 * (moecard,fw-take-op-instr) when it has one. */
void fw_port_take(void *port, uint32_t op);
/* When the command just taken (TAKE spent) may start, ns card time, or 0 for at once. A board
 * with a dispatch engine (a hardware block that starts the decoded commands and completes them,
 * moecard,dispatch-cycles) leaves the CPU only the taking of each command (decoded straight into
 * the engine's queue memory): port/sim then runs the CPU's TAKE work on its own timeline, ahead
 * of the dispatch, and returns when it ends; the hardware ports return 0 (their CPU time passes
 * by itself). */
uint64_t fw_port_ready(void *port);
/* The START work for a command about to start on the CU of register block blk, taken (and
 * ready, fw_port_ready) at card ns ready_at: fw_port_spend(port, FW_WORK_START) on a port whose
 * dispatcher writes the argument registers now (rv32, r5: the firmware's own dispatcher). A
 * board whose dispatch engine preloads the arguments (moecard,dispatch-preload) wrote them ahead
 * on a writer of its own, once the command was taken and the CU had latched its previous
 * command's; port/sim then waits only until that write ends and the go cycles pass. */
void fw_port_start_cu(void *port, uint32_t blk, uint64_t ready_at);

#endif
