/*
 * backend_impl.h - what a backend implementation (backend_ref.c, backend_emu.c, backend_xrt.c)
 * provides to the interface of backend.h, and what they share (backend_card.c): the ops table
 * with its version, the common head of every backend's state, the board block, card memory and
 * the CU side of the compute opcodes (docs/architecture.md, interfaces). Not for users of a
 * backend: they include backend.h.
 */
#ifndef MOECARD_BACKEND_IMPL_H
#define MOECARD_BACKEND_IMPL_H

#include "backend/backend.h"

#define BACKEND_I_VERSION 2u /* struct backend_i.version this interface understands */

/* The ops table each backend implements (labelled initializers; every entry is set). */
struct backend_i {
	uint32_t version; /* BACKEND_I_VERSION */
	const char *name; /* "ref", "emu", "xrt" */
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
	/* arms a countdown fault (BACKEND_CAP_FAULTS); -ENOTSUP elsewhere */
	int (*fault_set)(struct backend *b, enum backend_fault f, uint32_t n);
};

/* Common head of every backend's state. */
struct backend {
	const struct backend_i *iface; /* ops */
	uint32_t caps;		       /* BACKEND_CAP_*; 0 = one list in flight in all */
	struct board_desc board;       /* the card, from its dtb */
	struct abi_board blk;	       /* board block handed to the firmware */
	void *impl;		       /* backend's own state */
};

/* Openers of the backends (called by backend_open with the parsed board; dtb is its path). */
int backend_ref_open(struct backend **out, const struct board_desc *bd, char *err, size_t errlen);
int backend_emu_open(struct backend **out, const struct board_desc *bd, char *err, size_t errlen);

/* backend_iface_check - 0 when ops table i has this interface's version and every entry, else
 * -EPROTO with a one-line message naming the table and field in err. */
int backend_iface_check(const struct backend_i *i, char *err, size_t errlen);

/* Builds the board block from a parsed board: banks, CUs (ops by kernel name; every CU reaches
 * every HBM bank through the HBM switch, see backend_card.c), DMA channels, clocks. */
int backend_board_block(const struct board_desc *bd, struct abi_board *blk, char *err,
			size_t errlen);

/* Card memory: one lazily-backed (MAP_NORESERVE) host mapping per bank plus a bump allocator. */
struct backend_mem {
	uint32_t n_banks;	      /* banks used */
	void *base[ABI_MAX_BANKS];    /* host mapping of each bank */
	uint64_t size[ABI_MAX_BANKS]; /* bank bytes */
	uint64_t phys[ABI_MAX_BANKS]; /* card physical base */
	uint64_t used[ABI_MAX_BANKS]; /* bytes handed out */
};
int backend_mem_init(struct backend_mem *m, const struct abi_board *blk);
void backend_mem_free(struct backend_mem *m);
int backend_mem_alloc(struct backend_mem *m, uint32_t bank, size_t bytes, size_t align,
		      struct backend_buf **out);
void backend_mem_release(struct backend_mem *m, struct backend_buf *buf);
void *backend_mem_ptr(struct backend_mem *m, const struct backend_buf *buf, size_t off, size_t n);
/* Host pointer for card physical range [phys, phys+len) or NULL. */
void *backend_mem_phys(struct backend_mem *m, uint64_t phys, uint64_t len);

/* The DMA driver (drivers/dma.h, engine emul) on a backend's card memory: it moves the bytes of
 * every DMA_FILL of the emulated and the reference card, one driver channel per DMA channel of
 * the board (docs/architecture.md, emulated card and timing model). */
struct backend_dma {
	struct dma_dev *dev;		      /* NULL: the board has no DMA channel */
	const struct backend_mem *mem;	      /* the card memory it fills */
	struct dma_bank banks[ABI_MAX_BANKS]; /* its banks */
	uint8_t *pat[ABI_MAX_DMA];	      /* per channel: source of a PATTERN fill */
	struct dma_sg *sg[ABI_MAX_DMA];	      /* per channel: elements of one transfer */
};
int backend_dma_open(struct backend_dma *d, const struct board_desc *bd,
		     const struct abi_board *blk, const struct backend_mem *mem, char *err,
		     size_t errlen);
void backend_dma_close(struct backend_dma *d);
/* Moves bytes into card physical range [dst, dst + bytes) on channel chan, from host memory src
 * (a host buffer or the host view of card memory) or, with src NULL, the byte pattern, as driver
 * transfers that are waited for. Returns 0, or a negative errno (the fill failed). Different
 * channels may be driven from different threads. */
int backend_dma_fill(struct backend_dma *d, uint32_t chan, uint64_t dst, uint64_t bytes,
		     const void *src, uint8_t pattern);
/* The driver's name and statistics into s (left alone without a driver). */
void backend_dma_stats(struct backend_dma *d, struct backend_stats *s);

/* Working memory of one CU for the operand reshaping its kernels need (RoPE positions and angle
 * row, MLA's q split into q_lat/q_pe), sized once from the ABI and kernel maxima so that running
 * a command allocates nothing. One per CU thread. */
struct backend_cu_scratch {
	int32_t *pos; /* [ABI_MAX_DIM] RoPE position per row */
	float *row;   /* [VEC_MAX_N] RoPE cos/sin row without a table */
	float *q_lat; /* [MLA_MAX_H * MLA_MAX_DC] */
	float *q_pe;  /* [MLA_MAX_H * MLA_MAX_DR + 1] */
	/* a lane CU's wiring (backend_cu_wire): its lanes are banks 0..lanes-1 */
	const struct abi_board *blk; /* the board block (bank bases and sizes) */
	uint32_t lanes;		     /* 0: not a lane CU */
	uint32_t act_bank;	     /* bank of its other port (gmem_a, gmem_q) */
	uint32_t axi_bits;	     /* lane port width, bits */
	uint32_t lane_macs;	     /* mla_attn_lanes: f32 MACs per lane per cycle (0: build's) */
	uint32_t lane_imacs;	     /* mla_attn_lanes: FP8 integer MACs per lane (0: build's) */
	uint32_t lane_passes;	     /* mla_attn_lanes: head passes (0: build's) */
	uint32_t lane_exp_ii;	     /* mla_attn_lanes: cycles per exp (0: build's) */
	uint32_t gemv_rows;	     /* fp8_gemv: rows of x per PE cycle (0: build's) */
	uint32_t gemv_f32;	     /* fp8_gemv: f32 products a lane per cycle (0: build's) */
	uint32_t tm, tn;	     /* fp8_gemm: the CU's PE array (moecard,pe; 0: build's) */
};
int backend_cu_scratch_init(struct backend_cu_scratch *s);
/* Copies board CU cu's build parameters (PE array, MACs, head passes, GEMV rows) into s. */
void backend_cu_params(struct backend_cu_scratch *s, const struct board_cu *cu);
/* Wires s as the board's first CU of kernel (fp8_gemv, mla_attn_lanes): lanes, its other port's
 * bank, port width, MACs per lane. 0, or -ENOENT when the board has none. */
int backend_cu_wire(struct backend_cu_scratch *s, const struct board_desc *bd,
		    const struct abi_board *blk, const char *kernel);
void backend_cu_scratch_free(struct backend_cu_scratch *s);

/* Runs one decoded command (CU argument words, card physical addresses) with the hls/ kernels.
 * ptr resolves physical ranges; s is the calling CU's scratch. *cycles gets the kernel's modeled
 * cycles for the build of the bank bandwidth bw_mbps. Returns the CU status: 0 ok, else the
 * kernel's negative errno as uint32_t | 0x100, the GEMV kernel's error detail | 0x200, 0xE0 + n
 * for an unresolvable operand, 0x1FF for an opcode no CU runs (or a GEMV on a CU not wired as
 * one). */
uint32_t backend_cu_exec(uint32_t op, const uint32_t *args,
			 void *(*ptr)(void *ctx, uint64_t phys, uint64_t len), void *ctx,
			 struct backend_cu_scratch *s, uint32_t bw_mbps, uint32_t clk_khz,
			 uint64_t *cycles);

/* The hls/mla_attn cache format (MLA_CACHE_*) of an ABI KV record format (ABI_KV_*). */
int backend_mla_fmt(uint32_t fmt);
/* A KV_APPEND's record layout: the kernel's format, and the split of row into c' (*dc) and k_pe
 * (*dr). An f32 record is just row floats: any split stores the same bytes; a folded append
 * (kv_a's raw row) splits at its rope width. */
int backend_kv_layout(const struct abi_kv_append *k, int *dc, int *dr);

#endif
