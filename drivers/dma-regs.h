/*
 * dma-regs.h - wire layouts of the expert DMA engine: the scatter-gather descriptor that sits in a
 * channel's submission ring, the completion record written to its completion ring, and the
 * per-channel fence block. drivers/dma_core.c encodes and decodes these; the card firmware's DMA
 * manager is meant to consume the same bytes (data flow: host router -> expert cache -> dma.h ->
 * these rings -> emul worker / XDMA engine / XRT BO sync -> card bank).
 *
 * All structs are little-endian and fixed-size, built with the field macros below (no C
 * bitfields). The descriptor follows the Xilinx XDMA descriptor format (PG195, "Descriptors":
 * 0xAD4B magic, 28-bit length, 64-bit source/destination/next addresses) so that a real XDMA
 * engine and the emulated one read the same layout.
 *
 * Relation to firmware/abi/: the firmware contract describes DMA one level up, as a DMA_FILL
 * command (abi_cmd.h: logical card addresses, a 32-bit wrapping fence signalled on success). These
 * are the engine-level structures under it: physical card addresses (bank base + offset, as the
 * XDMA engine's AXI side sees them) and a 64-bit per-channel fence whose low 32 bits are the
 * firmware's fence value (dma_fence_abi in dma.h). When the firmware's DMA manager drives an engine
 * ring itself, these structs move to firmware/abi/ and this header includes them.
 */
#ifndef MOECARD_DMA_REGS_H
#define MOECARD_DMA_REGS_H

#include <assert.h>
#include <stdint.h>
#include <string.h>

/* ---- little-endian field access (host order independent) ------------------------------------ */

/* Stores v little-endian at p (4 bytes). */
static inline void dma_regs_put_le32(void *p, uint32_t v)
{
	uint8_t *b = p;
	for (int i = 0; i < 4; i++)
		b[i] = (uint8_t)(v >> (8 * i));
}

/* Stores v little-endian at p (8 bytes). */
static inline void dma_regs_put_le64(void *p, uint64_t v)
{
	uint8_t *b = p;
	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t)(v >> (8 * i));
}

/* Loads a little-endian 32-bit value from p. */
static inline uint32_t dma_regs_get_le32(const void *p)
{
	const uint8_t *b = p;
	uint32_t v = 0;
	for (int i = 3; i >= 0; i--)
		v = (v << 8) | b[i];
	return v;
}

/* Loads a little-endian 64-bit value from p. */
static inline uint64_t dma_regs_get_le64(const void *p)
{
	const uint8_t *b = p;
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = (v << 8) | b[i];
	return v;
}

/* Extracts bits [hi:lo] of v. */
#define DMA_REGS_FIELD_GET(v, hi, lo) (((v) >> (lo)) & ((1ull << ((hi) - (lo) + 1)) - 1))
/* Places x into bits [hi:lo] (x is masked to the field width). */
#define DMA_REGS_FIELD_PUT(x, hi, lo) (((uint64_t)(x) & ((1ull << ((hi) - (lo) + 1)) - 1)) << (lo))

/* ---- scatter-gather descriptor (submission ring entry), 32 bytes ---------------------------- */

/* One scatter-gather element. A transfer is a run of descriptors ending with DMA_REGS_CTRL_EOP. */
struct dma_regs_desc {
	uint32_t ctrl; /* [31:16] magic 0xAD4B, [15:14] dir (0 H2C, 1 C2H), [13:8] reserved 0,
			  [7:5] reserved 0, [4] EOP (last of transfer), [3:2] reserved 0,
			  [1] COMPLETED (write a completion record), [0] STOP */
	uint32_t len;  /* [27:0] bytes to move (1 .. 2^28-1), [31:28] reserved 0 */
	uint64_t src;  /* source: host virtual/bus address (H2C) or card address (C2H), bytes */
	uint64_t dst;  /* destination: card address (H2C) or host address (C2H), bytes */
	uint64_t next; /* address of the next descriptor; 0 in a ring (entries are contiguous) */
};
static_assert(sizeof(struct dma_regs_desc) == 32, "dma_regs_desc is 32 bytes on the wire");

#define DMA_REGS_DESC_MAGIC 0xAD4Bu
#define DMA_REGS_CTRL_STOP (1u << 0)
#define DMA_REGS_CTRL_COMPLETED (1u << 1)
#define DMA_REGS_CTRL_EOP (1u << 4)
#define DMA_REGS_CTRL_MAGIC(c) ((uint32_t)DMA_REGS_FIELD_GET(c, 31, 16))
#define DMA_REGS_CTRL_DIR(c) ((uint32_t)DMA_REGS_FIELD_GET(c, 15, 14))
#define DMA_REGS_CTRL_RSVD_MASK 0x3FECu /* bits 13:5, 3:2 must be zero */
#define DMA_REGS_DESC_LEN_MAX ((1u << 28) - 1)

/* Builds a descriptor's ctrl word. */
static inline uint32_t dma_regs_ctrl_make(uint32_t dir, int eop)
{
	return (uint32_t)(DMA_REGS_FIELD_PUT(DMA_REGS_DESC_MAGIC, 31, 16) |
			  DMA_REGS_FIELD_PUT(dir, 15, 14) |
			  (eop ? DMA_REGS_CTRL_EOP | DMA_REGS_CTRL_COMPLETED : 0));
}

/* Encodes a descriptor little-endian into 32 bytes at p. */
static inline void dma_regs_desc_encode(void *p, uint32_t ctrl, uint32_t len, uint64_t src,
					uint64_t dst)
{
	uint8_t *b = p;
	dma_regs_put_le32(b + 0, ctrl);
	dma_regs_put_le32(b + 4, len);
	dma_regs_put_le64(b + 8, src);
	dma_regs_put_le64(b + 16, dst);
	dma_regs_put_le64(b + 24, 0);
}

/* ---- completion record (completion ring entry), 48 bytes ------------------------------------ */

/* Status of one transfer (wire values; also the status reported per descriptor chain). */
enum dma_regs_status {
	DMA_REGS_STATUS_OK = 0,	     /* every byte moved */
	DMA_REGS_STATUS_ERROR = 1,   /* the engine reported an error; bytes holds what moved */
	DMA_REGS_STATUS_SHORT = 2,   /* fewer bytes than asked moved without an error flag */
	DMA_REGS_STATUS_ABORTED = 3, /* cancelled by a channel reset (stuck channel recovery) */
	DMA_REGS_STATUS_INVALID = 4, /* the engine rejected a malformed descriptor */
};

/* What the engine writes when a transfer (a descriptor chain ending in EOP) has finished. */
struct dma_regs_cpl {
	uint64_t fence;	   /* fence value of the transfer (per channel, 1, 2, 3, ...) */
	uint64_t cookie;   /* caller's tag, echoed */
	uint32_t status;   /* enum dma_regs_status */
	uint32_t sg_index; /* [31:0] index of the first element that failed; n_sg when OK */
	uint64_t bytes;	   /* bytes moved, all elements together */
	uint64_t t_start;  /* modeled (virtual clock) ns when the first byte moved; 0 if untimed */
	uint64_t t_end;	   /* modeled (virtual clock) ns when the transfer finished; 0 if untimed */
};
static_assert(sizeof(struct dma_regs_cpl) == 48, "dma_regs_cpl is 48 bytes on the wire");

/* ---- per-channel fence block, 32 bytes --------------------------------------------------------
 */

/* The fence block the DMA manager updates after each completion record, host-readable. Fences are
 * per channel, 64-bit and monotonically increasing; "completed >= f" means every transfer with
 * fence
 * <= f has a completion record (successful or not). */
struct dma_regs_fence {
	uint64_t submitted; /* last fence value handed out (0 = none yet) */
	uint64_t completed; /* last fence value completed, in order */
	uint64_t errors;    /* count of transfers completed with a status other than OK */
	uint64_t reserved;  /* 0 */
};
static_assert(sizeof(struct dma_regs_fence) == 32, "dma_regs_fence is 32 bytes on the wire");

#endif /* MOECARD_DMA_REGS_H */
