/*
 * abi_board.h - the board block the host writes into the card's mailbox at init, and the
 * telemetry block the card writes back. The host derives the board block from its validated
 * struct board_desc (the board .dts files); the firmware never parses device trees, it checks this block
 * (fw_board_check()) and then resolves every command operand against its banks and CU list.
 * Little-endian, fixed size, field macros for packed words, sizes asserted.
 */
#ifndef ABI_BOARD_H
#define ABI_BOARD_H

#include <assert.h>
#include <stdint.h>

#include "abi_cmd.h"

#define ABI_BOARD_MAGIC 0x4B42434Du /* "MCBK" */
#define ABI_BOARD_VERSION 1u
#define ABI_MAX_BANKS 64u /* U55C: 32 HBM pseudo-channels + DDR + PLRAM fit */
#define ABI_MAX_CUS 32u
#define ABI_MAX_DMA 8u

enum abi_bank_kind { ABI_BANK_HBM = 0, ABI_BANK_DDR = 1, ABI_BANK_PLRAM = 2, ABI_BANK_HOST = 3 };
enum abi_cu_kind { ABI_CU_GEMM = 0, ABI_CU_VEC = 1, ABI_CU_MLA = 2, ABI_CU_GEMV = 3 };

/* One memory bank: 24 bytes. */
struct abi_bank {
	uint64_t base;	  /* card physical address of byte 0 of the bank */
	uint64_t size;	  /* bytes, > 0; base + size must not wrap */
	uint32_t bw_mbps; /* peak bandwidth, MB/s (timing model and telemetry) */
	uint32_t word;	  /* [7:0] kind (enum abi_bank_kind), [31:8] reserved 0 */
};
static_assert(sizeof(struct abi_bank) == 24, "abi_bank is 24 bytes");

/* One compute unit instance: 16 bytes. */
struct abi_cu {
	uint32_t word;	    /* [7:0] kind (enum abi_cu_kind), [15:8] register block index for the
			       port (ap_ctrl_hs block), [23:16] lanes (GEMV: 1..64, its lane
			       banks; other kinds 0), [31:24] reserved 0 */
	uint32_t ops_mask;  /* bit i set: the CU implements opcode i (enum abi_op) */
	uint64_t bank_mask; /* bit b set: the CU's AXI masters reach bank b */
};
static_assert(sizeof(struct abi_cu) == 16, "abi_cu is 16 bytes");
#define ABI_CU_WORD(kind, regblk) ((uint32_t)(kind) | ((uint32_t)(regblk) << 8))
#define ABI_CU_WORD_LANES(kind, regblk, lanes)                                                     \
	(ABI_CU_WORD(kind, regblk) | ((uint32_t)(lanes) << 16))
#define ABI_CU_LANES(w) (((w) >> 16) & 0xFFu)
#define ABI_CU_KIND(w) ((w)&0xFFu)
#define ABI_CU_REGBLK(w) (((w) >> 8) & 0xFFu)

/* One DMA channel: 8 bytes. */
struct abi_dma_chan {
	uint32_t word;	  /* [0] host->card capable, [1] card->card capable, [31:2] reserved 0 */
	uint32_t bw_mbps; /* MB/s */
};
static_assert(sizeof(struct abi_dma_chan) == 8, "abi_dma_chan is 8 bytes");
#define ABI_DMA_CAP_H2C 0x1u
#define ABI_DMA_CAP_C2C 0x2u

/* The board block: 2144 bytes. */
struct abi_board {
	uint32_t magic;	     /* ABI_BOARD_MAGIC */
	uint32_t version;    /* ABI_BOARD_VERSION */
	uint32_t counts;     /* [7:0] banks, [15:8] CUs, [23:16] DMA channels, [31:24] reserved 0 */
	uint32_t fw_clk_khz; /* firmware CPU clock, kHz */
	uint32_t cu_clk_khz; /* kernel clock, kHz (300000 on a U55C-like card) */
	uint32_t rsvd[3];    /* 0 */
	struct abi_bank banks[ABI_MAX_BANKS]; /* first n_banks valid, rest 0 */
	struct abi_cu cus[ABI_MAX_CUS];	      /* first n_cus valid, rest 0 */
	struct abi_dma_chan dma[ABI_MAX_DMA]; /* first n_dma valid, rest 0 */
};
static_assert(sizeof(struct abi_board) == 32 + 24 * 64 + 16 * 32 + 8 * 8, "abi_board size");
#define ABI_BOARD_COUNTS(banks, cus, dma)                                                          \
	((uint32_t)(banks) | ((uint32_t)(cus) << 8) | ((uint32_t)(dma) << 16))
#define ABI_BOARD_N_BANKS(w) ((w)&0xFFu)
#define ABI_BOARD_N_CUS(w) (((w) >> 8) & 0xFFu)
#define ABI_BOARD_N_DMA(w) (((w) >> 16) & 0xFFu)

/* --- telemetry, written by the card, read by the host ----------------------------------- */
#define ABI_TELEM_MAGIC 0x4D4C4554u /* "TELM" */
#define ABI_ERRLOG_LEN 16u	    /* error log ring entries (power of two) */

/* One error log entry: 32 bytes. */
struct abi_errlog {
	uint32_t tag;	 /* tag of the failed command */
	uint32_t word1;	 /* ABI_CPL_W1() of its completion: status, opcode, queue, CU */
	uint32_t detail; /* completion detail */
	uint32_t rsvd;	 /* 0 */
	uint64_t time;	 /* card time (ns) of the error */
	uint64_t rsvd2;	 /* 0 */
};
static_assert(sizeof(struct abi_errlog) == 32, "abi_errlog is 32 bytes");

struct abi_telemetry {
	uint32_t magic;			  /* ABI_TELEM_MAGIC once the firmware is up */
	uint32_t version;		  /* ABI_VERSION */
	uint32_t heartbeat;		  /* +1 every FW_CFG_HEARTBEAT_NS of card time */
	uint32_t errors;		  /* error completions so far */
	uint64_t completed;		  /* completions posted so far */
	uint64_t now;			  /* card time (ns) of the last telemetry update */
	uint64_t cu_busy_ns[ABI_MAX_CUS]; /* ns each CU spent between ap_start and done/reset */
	uint32_t cu_cmds[ABI_MAX_CUS];	  /* commands each CU ran */
	uint32_t cu_resets[ABI_MAX_CUS];  /* watchdog / error resets per CU */
	uint64_t dma_bytes;		  /* bytes moved by DMA_FILL */
	uint32_t log_head; /* free-running count of error log entries; newest at (head-1)%LEN */
	uint32_t rsvd;	   /* 0 */
	struct abi_errlog log[ABI_ERRLOG_LEN]; /* most recent errors */
};
static_assert(sizeof(struct abi_telemetry) == 32 + 8 * 32 + 4 * 32 * 2 + 16 + 32 * 16,
	      "abi_telemetry size");

#endif
