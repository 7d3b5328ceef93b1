/*
 * dma.h - the expert DMA driver: channels with submission and completion rings, scatter-gather
 * descriptors and 64-bit completion fences, over one of three engines (docs/architecture.md,
 * interfaces):
 *   dma_emul_i  the emulated card's engine: card banks are host memory, channels run on worker
 *               threads, link bandwidth and per-descriptor latency are charged on a virtual clock;
 *   dma_xrt_i   a real card through XRT buffer objects (xrtBOSync into a bank, or xrtBOCopy), its
 *               own per bank or the caller's (dma_xrt_bos: backend xrt's buffers);
 *   dma_xdma_i  a real card through the Xilinx XDMA character devices (pwrite/pread at an offset).
 * Data flow: the host's router picks experts -> the expert cache asks for a slot -> it submits
 * H2C transfers here (host checkpoint memory -> card bank + offset) -> it waits on the fence of the
 * channel before the card's command that reads the slot. Ring and descriptor layouts: dma-regs.h.
 *
 * Rules common to every function: 0 or a non-negative count on success, a negative errno on
 * failure; nothing here prints or exits. A failed transfer is never dropped: it always produces a
 * completion record with its status (dma_chan_reap), and dma_fence_wait reports it as -EIO.
 * Thread safety: different channels may be driven from different threads; one channel is driven by
 * one thread at a time.
 */
#ifndef MOECARD_DMA_H
#define MOECARD_DMA_H

#include <stddef.h>
#include <stdint.h>

#include "dma-regs.h"

#define DMA_MAX_CHANNELS 16   /* channels per device */
#define DMA_RING_ORDER_DEF 8  /* default log2 ring entries (256) */
#define DMA_RING_ORDER_MIN 1  /* 2 entries */
#define DMA_RING_ORDER_MAX 16 /* 65536 entries */

/* Effective PCIe link bandwidths, bytes/s per direction, used by the emulated engine (modeled).
 * Raw: Gen3 8 GT/s x16 128b/130b = 15.75 GB/s, Gen4 = 31.5 GB/s; TLP headers at 256-byte payloads
 * and descriptor fetches leave about 12 and 24 GB/s (one 44 MB expert in 3.7 and 1.8 ms), what
 * XDMA designs reach in practice. */
#define DMA_LINK_PCIE_GEN3_X16 12.0e9
#define DMA_LINK_PCIE_GEN4_X16 24.0e9
/* Default per-descriptor latency of the emulated engine (descriptor fetch + completion write-back
 * over PCIe, about 1 us round trip), modeled ns. */
#define DMA_DESC_LATENCY_DEF_NS 1000

/* Transfer direction (the dir field of a descriptor's ctrl word). */
enum dma_dir {
	DMA_DIR_H2C = 0, /* host memory -> card bank */
	DMA_DIR_C2H = 1, /* card bank -> host memory */
};

/* One card memory bank as the board describes it (board/<card>.dts; the board parser fills these).
 */
struct dma_bank {
	uint64_t base;	   /* card address of byte 0, bytes; banks must not overlap */
	uint64_t size;	   /* capacity, bytes (> 0) */
	double bw;	   /* bank bandwidth, bytes/s; 0 = not a limit (modeled by emul) */
	int32_t mem_group; /* XRT memory-topology index of the bank; -1 = the bank's position */
	const char *name;  /* e.g. "HBM[3]"; may be NULL; only used in messages */
};

/* The part of a card range that one buffer object holds (dma_xrt_bos.resolve). */
struct dma_xrt_span {
	void *bo; /* the caller's handle of the BO, opaque to the engine: passed back to write
			    and read */
	uint64_t bo_off; /* byte offset inside the BO of the range's first byte */
	uint64_t len;	 /* bytes from bo_off to the end of the BO (> 0) */
};

/*
 * Engine xrt on buffer objects the caller owns (dma_config.xrt_bos), for a program that already
 * has XRT loaded, a device open and its card memory in BOs of its own (backend xrt: one BO per
 * buffer). The engine then opens no device, loads no library and allocates no BO: for each
 * descriptor it asks resolve for the BO behind the card range (again for the rest when the range
 * runs past the end of a BO) and moves the bytes with the caller's write and read, which are
 * XRT's xrtBOWrite + xrtBOSync(TO_DEVICE) and xrtBOSync(FROM_DEVICE) + xrtBORead as the caller
 * resolved them. Registered host buffers are plain aligned memory in this mode. The callbacks run
 * on channel worker threads while the caller waits for the transfer; what they touch must not
 * change until it completes. Each returns 0 or a negative errno (the descriptor then fails with
 * status ERROR).
 */
struct dma_xrt_bos {
	void *ctx; /* first argument of every callback */
	/* The BO holding byte off of bank (len: the bytes wanted from there, a hint); -EFAULT when
	 * no BO holds it. */
	int (*resolve)(void *ctx, unsigned bank, uint64_t off, uint64_t len,
		       struct dma_xrt_span *sp);
	/* len bytes from src into BO bo at bo_off, then to the card (xrtBOWrite + xrtBOSync). */
	int (*write)(void *ctx, void *bo, const void *src, size_t len, uint64_t bo_off);
	/* len bytes of BO bo at bo_off from the card into dst (xrtBOSync + xrtBORead). */
	int (*read)(void *ctx, void *bo, void *dst, size_t len, uint64_t bo_off);
};

/* How to open a device. Fields an implementation does not use are ignored; zero means default. */
struct dma_config {
	const struct dma_bank *banks; /* [n_banks] card memory banks */
	unsigned n_banks;	      /* 1 .. 64 */
	unsigned n_channels;	      /* 1 .. DMA_MAX_CHANNELS; 0 = 1 */
	unsigned ring_order; /* log2 entries of each submission/completion ring; 0 = default */
	uint32_t ring_counter_start; /* initial value of the free-running ring counters (tests start
					them near 2^32 to exercise the wrap) */
	double link_bw;		     /* emul: link bandwidth per direction, bytes/s; 0 = Gen4 x16 */
	int64_t desc_latency_ns;     /* emul: per-descriptor latency, ns; 0 = default, <0 = none */
	unsigned device_index;	     /* xrt: XRT device index */
	const struct dma_xrt_bos *xrt_bos; /* xrt: run on the caller's BOs (copied at open);
					      NULL = open device_index with one BO per bank */
	void *const *bank_mem;	 /* emul: [n_banks] host memory behind each bank (banks[i].size
					bytes), owned by the caller: the emulated card whose banks
					the engine fills; NULL = the engine maps its own */
	const char *xdma_prefix; /* xdma: device node prefix; NULL = "/dev/xdma0" */
	size_t staging_bytes;	 /* xdma: aligned staging buffer per channel, bytes (multiple of
					4096); 0 = 4 MiB */
};

struct dma_dev;	  /* an open device (opaque) */
struct dma_hbuf;  /* a host buffer registered with a device (aligned, pinned where possible) */
struct dma_dev_i; /* an implementation's ops table (dma-impl.h) */

extern const struct dma_dev_i dma_emul_i; /* emulated card engine */
extern const struct dma_dev_i dma_xrt_i;  /* XRT buffer objects */
extern const struct dma_dev_i dma_xdma_i; /* XDMA character devices */

/* One scatter-gather element: a host side, a card side and a length. */
struct dma_sg {
	void *host;	       /* host address, or NULL when hbuf is used */
	struct dma_hbuf *hbuf; /* registered host buffer, or NULL when host is used */
	size_t hbuf_off;       /* byte offset into hbuf */
	uint32_t bank;	       /* card bank index into dma_config.banks */
	uint64_t card_off;     /* byte offset inside the bank */
	size_t len;	       /* bytes, 1 .. DMA_REGS_DESC_LEN_MAX */
};

/* A transfer: a chain of SG elements moved in one direction, completed as one fence. */
struct dma_xfer {
	enum dma_dir dir;	 /* H2C or C2H for every element */
	const struct dma_sg *sg; /* [n_sg] elements, executed in order */
	unsigned n_sg;		 /* 1 .. ring entries */
	uint64_t cookie;	 /* caller's tag, echoed in the completion */
	uint64_t not_before_ns;	 /* modeled virtual time at which the host issues it; 0 = when the
				    channel is free */
};

/* Status of one transfer (same values as the wire enum dma_regs_status). */
enum dma_status {
	DMA_STATUS_OK = DMA_REGS_STATUS_OK,
	DMA_STATUS_ERROR = DMA_REGS_STATUS_ERROR,
	DMA_STATUS_SHORT = DMA_REGS_STATUS_SHORT,
	DMA_STATUS_ABORTED = DMA_REGS_STATUS_ABORTED,
	DMA_STATUS_INVALID = DMA_REGS_STATUS_INVALID,
};

/* A decoded completion record. */
struct dma_cpl {
	uint64_t fence;		/* fence value of the transfer on its channel */
	uint64_t cookie;	/* dma_xfer.cookie */
	enum dma_status status; /* outcome */
	unsigned sg_index;	/* first failed element; n_sg when OK */
	uint64_t bytes;		/* bytes moved over all elements */
	uint64_t t_start_ns;	/* modeled: virtual time the transfer started (0 if untimed) */
	uint64_t t_end_ns;	/* modeled: virtual time it finished (0 if untimed) */
};

/* What a device did since it was opened, over all channels. */
struct dma_stats {
	uint64_t xfers;	    /* transfers completed (one completion record and fence each) */
	uint64_t xfers_bad; /* of them, with a status other than OK */
	uint64_t descs;	    /* descriptors the engine executed */
	uint64_t bytes;	    /* bytes moved */
	uint64_t faults;    /* descriptors an armed countdown fault hit */
	uint64_t fences;    /* sum over channels of the last completed fence */
	uint64_t link_ns;   /* modeled: sum over transfers of t_end - t_start, ns (0 if untimed) */
};

/* Countdown fault kinds (SQLite-style hooks): the Nth descriptor from now misbehaves. */
enum dma_fault {
	DMA_FAULT_NONE = 0,  /* disarm */
	DMA_FAULT_ERROR = 1, /* part of the bytes move, then the engine flags an error */
	DMA_FAULT_SHORT = 2, /* half of the bytes move, no error flag */
	DMA_FAULT_STUCK = 3, /* the channel stops before the descriptor until dma_chan_reset */
};

/*
 * Opens a device on implementation impl with cfg. On failure a one-line reason naming the device
 * node, library or field goes to err (if err_len > 0) and nothing is left open.
 * Errors: -EINVAL bad cfg (err names the field), -ENOMEM, -ENODEV no card / no XRT runtime,
 * -ENOENT device node absent, -EACCES no permission, other negative errno from the system.
 */
int dma_dev_open(const struct dma_dev_i *impl, const struct dma_config *cfg, struct dma_dev **out,
		 char *err, size_t err_len);

/* Stops the channel workers (transfers still queued complete as ABORTED first) and frees dev.
 * No other thread may still be using dev. NULL is allowed. */
void dma_dev_close(struct dma_dev *dev);

/* Implementation name ("emul", "xrt", "xdma"). */
const char *dma_dev_name(const struct dma_dev *dev);

/* Number of channels of dev. */
unsigned dma_dev_n_channels(const struct dma_dev *dev);

/* Entries in each ring of dev (2^ring_order). */
unsigned dma_dev_ring_entries(const struct dma_dev *dev);

/* Host view of card bank memory (emul only: the emulated card reads its banks through this);
 * NULL for other implementations or a bad bank index. */
void *dma_dev_bank_ptr(struct dma_dev *dev, unsigned bank);

/* Statistics of dev so far (safe while channels run). */
void dma_dev_stats(struct dma_dev *dev, struct dma_stats *s);

/* Modeled virtual clock of dev: the latest end time of any transfer so far, ns. */
uint64_t dma_dev_vclock_ns(struct dma_dev *dev);

/*
 * Arms the countdown fault: the countdown-th descriptor processed from now on any channel (1 = the
 * next) gets fault kind; with persist, every descriptor from that one on does. kind NONE disarms.
 * Returns 0; with kind NONE, 1 when a fault was still armed (it never fired: the countdown loops of
 * the tests stop there). Errors: -EINVAL unknown kind, or countdown 0 with a kind other than NONE.
 */
int dma_dev_fault_set(struct dma_dev *dev, enum dma_fault kind, uint64_t countdown, int persist);

/* Allocates a registered host buffer of size bytes (4096-aligned, pinned where the implementation
 * can). Errors: -EINVAL size 0, -ENOMEM. */
int dma_hbuf_alloc(struct dma_dev *dev, size_t size, struct dma_hbuf **out);

/* Frees a host buffer (NULL allowed). No transfer may still use it. */
void dma_hbuf_free(struct dma_dev *dev, struct dma_hbuf *hb);

/* Host address of a registered buffer's first byte. */
void *dma_hbuf_ptr(struct dma_hbuf *hb);

/*
 * Queues transfer x on channel ch and returns its fence in *fence (may be NULL). Every element is
 * checked before anything is queued. Errors: -EINVAL bad channel, direction, element (NULL host
 * with no hbuf, both set, len 0 or above DMA_REGS_DESC_LEN_MAX, bad bank, hbuf range), or n_sg 0
 * or above the ring; -ERANGE card_off + len beyond the bank; -EAGAIN the submission or completion
 * ring has no room (reap completions, then retry).
 */
int dma_chan_submit(struct dma_dev *dev, unsigned ch, const struct dma_xfer *x, uint64_t *fence);

/* Moves up to max completion records of channel ch, oldest first, to out; returns how many.
 * Errors: -EINVAL bad channel. */
int dma_chan_reap(struct dma_dev *dev, unsigned ch, struct dma_cpl *out, unsigned max);

/* Last fence value handed out on ch (0 before the first submit); 0 for a bad channel. */
uint64_t dma_fence_submitted(struct dma_dev *dev, unsigned ch);

/* Last fence value completed on ch (in order); 0 for a bad channel. */
uint64_t dma_fence_completed(struct dma_dev *dev, unsigned ch);

/*
 * Waits until every transfer on ch with fence <= f has completed, for at most timeout_ns of real
 * time (< 0 waits forever). Errors: -EINVAL bad channel or f never handed out; -ETIMEDOUT not
 * reached in time (a stuck channel: dma_chan_reset); -EIO reached, but at least one of those
 * transfers not yet reaped has a status other than OK (reap it, then retry or surface it).
 */
int dma_fence_wait(struct dma_dev *dev, unsigned ch, uint64_t f, int64_t timeout_ns);

/*
 * Aborts every transfer queued on ch before this call: a stuck one and all after it complete with
 * status ABORTED (their records stay to be reaped). Waits at most timeout_ns (< 0 = forever) for
 * the worker to flush. Errors: -EINVAL bad channel, -ETIMEDOUT the engine did not stop in time.
 */
int dma_chan_reset(struct dma_dev *dev, unsigned ch, int64_t timeout_ns);

/*
 * Submits x on an otherwise idle channel ch and waits for it; a failed transfer is resubmitted
 * (after a reset if the channel stuck) up to retries more times. *cpl (may be NULL) gets the last
 * completion record. timeout_ns bounds each attempt. Errors: -EBUSY ch has other transfers in
 * flight or unreaped; -EIO still failing after the retries (status in *cpl); errors of
 * dma_chan_submit.
 */
int dma_copy_sync(struct dma_dev *dev, unsigned ch, const struct dma_xfer *x, unsigned retries,
		  int64_t timeout_ns, struct dma_cpl *cpl);

/*
 * The firmware's fences (firmware/abi/abi_cmd.h: a DMA_FILL or FENCE command signals fence[id] =
 * value; a command waits until fence - value >= 0 as int32) are 32-bit and wrap. A channel's 64-bit
 * fence maps into that space by its low 32 bits, so a command that must wait for DMA fence f of a
 * channel waits for dma_fence_abi(f) on the fence id the host assigned to that channel.
 */
static inline uint32_t dma_fence_abi(uint64_t f)
{
	return (uint32_t)f;
}

/* Whether 32-bit fence value `fence` has reached `value` under the firmware's wrap rule. */
static inline int dma_fence_abi_reached(uint32_t fence, uint32_t value)
{
	return (int32_t)(fence - value) >= 0;
}

/* Short name of a status ("ok", "error", "short", "aborted", "invalid", "?"). */
const char *dma_status_str(enum dma_status s);

#endif /* MOECARD_DMA_H */
