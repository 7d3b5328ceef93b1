/*
 * board.h - the validated description of one accelerator card, parsed from a flattened device
 * tree (a .dtb built by dtc from board/<card>.dts).
 *
 * Data flow: board/<card>.dts -> dtc -> .dtb -> board_parse() -> struct board_desc, which the host
 * backends (emu, xrt), the bitstream generators (bitstream/gen) and `moecard info --board` read.
 * The firmware never parses device trees; it gets a compact block built from this struct.
 *
 * Conventions (libfdt style): fixed-size arrays, no allocation in the parser, every function
 * returns 0 or a negative error code; board_strerror() names it. Error codes below -BOARD_EBASE are
 * the parser's own; other negative values are plain errnos (-ENOENT, -ENOMEM, ...).
 * The node/property schema is documented in board/bindings/.
 */
#ifndef MOECARD_BOARD_H
#define MOECARD_BOARD_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define BOARD_MAX_BANKS 64	 /* memory banks (HBM pseudo-channels, DDR channels, PLRAM) */
#define BOARD_MAX_CUS 32	 /* compute-unit instances */
#define BOARD_MAX_PORTS 72	 /* memory-mapped (m_axi) argument ports per CU */
#define BOARD_MAX_DMA 16	 /* DMA channels */
#define BOARD_MAX_CLOCKS 8	 /* clocks */
#define BOARD_NAME_MAX 32	 /* bytes incl. NUL for node, kernel, port and clock names */
#define BOARD_ERR_MAX 256	 /* suggested size of the error-message buffer */
#define BOARD_DTB_MAX (1u << 20) /* largest .dtb board_load() reads, bytes */

/* Parser error codes (returned negated). */
enum {
	BOARD_EBASE = 1000,
	BOARD_EBADDTB,	 /* not a valid flattened device tree (header, structure, truncation) */
	BOARD_ENOTCARD,	 /* root node is not compatible with "moecard,card" */
	BOARD_EMISSING,	 /* a required node or property is absent */
	BOARD_EBADSIZE,	 /* a property has the wrong length for its type */
	BOARD_EBADVALUE, /* a property value is out of range or not one of the allowed strings */
	BOARD_EOVERLAP,	 /* two memory banks (or two CU register windows) overlap */
	BOARD_ENOBANK,	 /* a CU or DMA channel refers to a phandle that is not a memory bank */
	BOARD_ECLOCK,	 /* a clock of 0 Hz, or a reference to something that is not a clock */
	BOARD_ETOOMANY,	 /* more banks, CUs, ports, DMA channels or clocks than the arrays hold */
	BOARD_EDUP,	 /* two banks with the same kind+index, or two CUs with the same name */
	BOARD_EEMPTY,	 /* no memory banks, no compute units or no DMA channels */
	BOARD_ERANGE, /* an address window wraps, or the mailbox lies outside the firmware dmem */
	BOARD_ELAST,
};

/* Memory kinds, as in the bank's "moecard,kind" string. */
enum board_mem_kind {
	BOARD_MEM_HBM = 0,   /* "hbm": one HBM pseudo-channel; Vitis name HBM[index] */
	BOARD_MEM_DDR = 1,   /* "ddr": one DDR4 channel; Vitis name DDR[index] */
	BOARD_MEM_PLRAM = 2, /* "plram": on-chip RAM; Vitis name PLRAM[index] */
};

/* One memory bank (node compatible "moecard,mem-bank"). */
struct board_bank {
	char name[BOARD_NAME_MAX]; /* node name without unit address, e.g. "hbm0" */
	uint32_t kind;		   /* enum board_mem_kind */
	uint32_t index;		   /* Vitis bank index within its kind (HBM[index]) */
	uint64_t base;		   /* card physical address, bytes */
	uint64_t size;		   /* capacity, bytes (> 0) */
	uint32_t bw_mbps;	   /* peak bandwidth, MB/s (10^6 bytes/s) */
	uint32_t phandle;	   /* the node's phandle, 0 when it has none */
};

/* One compute-unit instance (node compatible "moecard,cu"). */
struct board_cu {
	char name[BOARD_NAME_MAX];   /* instance name, e.g. "fp8_gemm_1" (node name) */
	char kernel[BOARD_NAME_MAX]; /* kernel (HLS top) name, e.g. "fp8_gemm" */
	uint64_t base;		     /* AXI-Lite control window base address, bytes */
	uint64_t size;		     /* control window size, bytes */
	uint32_t n_ports;	     /* used entries of port[] / port_bank[] */
	char port[BOARD_MAX_PORTS][BOARD_NAME_MAX]; /* m_axi argument names, in dts order */
	uint32_t port_bank[BOARD_MAX_PORTS];	    /* index into board_desc.bank[] per port */
	uint32_t tm, tn;      /* PE-array build parameters (rows x cols), 0 if n/a */
	uint32_t lane_macs;   /* f32 MACs per cycle per lane (mla_attn_lanes), 0 if n/a */
	uint32_t lane_imacs;  /* FP8 datapath's integer MACs per cycle per lane, 0: the build's */
	uint32_t no_fp8;      /* mla_attn_lanes built without the FP8 datapath (fp8-datapath 0) */
	uint32_t lane_passes; /* mla_attn_lanes head passes (moecard,lane-passes), 0: the build's */
	uint32_t
	    lane_exp_ii; /* mla_attn_lanes cycles per exp (moecard,lane-exp-ii), 0: the build's */
	uint32_t gemv_rows; /* rows of x per cycle of the GEMV PE (fp8_gemv), 0: the build's */
	uint32_t gemv_f32;  /* f32 products a lane and PE row per cycle in the GEMV's f32 modes
			       (moecard,gemv-f32-macs), 0: the build's (FP8_GEMV_F32) */
	uint32_t axi_bits;  /* m_axi data width, bits (32..1024, power of two) */
	uint32_t slr;	    /* super logic region the CU is placed in */
	uint32_t clock;	    /* index into board_desc.clock[] */
};

/* One DMA channel (node compatible "moecard,dma-channel"). */
struct board_dma {
	char name[BOARD_NAME_MAX]; /* node name, e.g. "h2c0" */
	uint32_t to_card;	   /* 1 = host-to-card ("h2c"), 0 = card-to-host ("c2h") */
	uint64_t base;		   /* channel register base, bytes */
	uint32_t bw_mbps;	   /* sustained bandwidth of this channel, MB/s */
	uint32_t latency_ns;	   /* per-descriptor setup latency, ns */
};

/* One clock (node compatible "moecard,clock"). */
struct board_clock {
	char name[BOARD_NAME_MAX]; /* node name, e.g. "kernel" */
	uint32_t freq_hz;	   /* frequency, Hz (> 0) */
	uint32_t phandle;	   /* the node's phandle */
};

/* The firmware's work by class, as it spends its CPU time (moecard,fw-cmd-instr, one cell each;
 * the same classes as the firmware's enum fw_work). A command costs TAKE, then START + DONE when
 * a CU or DMA channel runs it, or SYNC when the firmware completes it itself. */
enum board_fw_class {
	BOARD_FW_TAKE = 0,  /* ring pop, decode and checks, queueing: every command */
	BOARD_FW_START = 1, /* argument registers and ap_start (or the DMA start) */
	BOARD_FW_DONE = 2,  /* ap_done seen, fences, completion posted */
	BOARD_FW_SYNC = 3,  /* completed by the firmware itself: BARRIER, FENCE, TIMESTAMP, NOP */
	BOARD_FW_CLASSES = 4,
};
#define BOARD_FW_INSTR_MAX 10000000u /* largest moecard,fw-cmd-instr entry */
#define BOARD_FW_OPS 32u	     /* opcodes moecard,fw-take-op-instr may name (0..31) */
#define BOARD_FW_CMD_NS_DEFAULT 400u /* TAKE ns when the tree gives no instruction counts */
/* the dispatch engine's cycles that `--set dispatch=engine` gives a tree without
 * moecard,dispatch-cycles (the trees' own values, docs/boards.md) */
#define BOARD_DISPATCH_START 128u
#define BOARD_DISPATCH_DONE 64u
#define BOARD_DISPATCH_SYNC 16u
#define BOARD_DISPATCH_GO 16u /* `--set dispatch=preload`: the go cycles it gives */

/* The firmware CPU (node compatible "moecard,fw-cpu"). */
struct board_fwcpu {
	char isa[BOARD_NAME_MAX]; /* e.g. "rv32imc", "armv7-r" */
	uint64_t imem_base;	  /* instruction memory base, bytes */
	uint64_t imem_size;	  /* instruction memory size, bytes */
	uint64_t dmem_base;	  /* data memory base, bytes */
	uint64_t dmem_size;	  /* data memory size, bytes */
	uint64_t mailbox;	  /* host<->firmware mailbox address, inside dmem, bytes */
	uint32_t clock;		  /* index into board_desc.clock[] */
	/* instructions the firmware retires per command, by enum board_fw_class, from
	 * moecard,fw-cmd-instr; all 0 when the tree does not give them */
	uint32_t cmd_instr[BOARD_FW_CLASSES];
	/* the dispatch engine (moecard,dispatch-cycles <start done sync>, cycles of the firmware
	 * CPU's clock): a hardware block that starts the decoded commands on their CUs, tracks
	 * fences and barriers and posts completions, so the CPU only takes (decodes and checks)
	 * each command; all 0 without it (the firmware dispatches in software) */
	uint32_t dispatch_cycles[3];
	/* the engine's argument preload (moecard,dispatch-preload <go>, cycles of the firmware
	 * CPU's clock): the engine writes a taken command's argument registers ahead, with the
	 * start cycles on a writer of its own, once the command is taken and the CU has latched
	 * the arguments of the command before it (double-buffered argument registers); a command
	 * whose fences are met then waits go cycles (the fence check and ap_start). 0: the start
	 * cycles are on the path of every start. Needs dispatch_cycles. */
	uint32_t dispatch_go;
	/* instructions TAKE retires for a command of opcode op (moecard,fw-take-op-instr pairs
	 * <op count>, op the ABI's wire value); 0 = the class count cmd_instr[BOARD_FW_TAKE] */
	uint32_t take_op_instr[BOARD_FW_OPS];
};

/* A whole card. */
struct board_desc {
	char model[64];		   /* root "model" string */
	char card[BOARD_NAME_MAX]; /* first root compatible, e.g. "moecard,u55c" */
	char part[BOARD_NAME_MAX]; /* FPGA part, root "moecard,part" */
	char platform[64];	   /* Vitis platform (XSA) name, root "moecard,platform" */
	uint32_t pcie_gen;	   /* PCIe generation, 1..6 */
	uint32_t pcie_lanes;	   /* PCIe lanes, 1..16 */
	uint32_t pcie_bw_mbps;	   /* usable host link bandwidth per direction, MB/s */
	uint32_t mem_eff_pct;	   /* sustained share of a bank's bandwidth under streaming, % */
	uint32_t n_slr;		   /* super logic regions, >= 1 */
	/* FPGA part capacities, root "moecard,part-resources" <dsp bram36 uram lut>; all 0 when the
	 * tree does not give them (board_res.h then reports no fraction of the part) */
	uint32_t part_dsp;    /* DSP slices (DSP48E2 on UltraScale+, DSP58 on Versal) */
	uint32_t part_bram36; /* 36 Kb block RAMs */
	uint32_t part_uram;   /* 288 Kb UltraRAMs */
	uint32_t part_lut;    /* CLB LUTs */
	uint32_t n_banks;     /* used entries of bank[] */
	struct board_bank bank[BOARD_MAX_BANKS];
	uint32_t n_cus; /* used entries of cu[] */
	struct board_cu cu[BOARD_MAX_CUS];
	uint32_t n_dma; /* used entries of dma[] */
	struct board_dma dma[BOARD_MAX_DMA];
	uint32_t n_clocks; /* used entries of clock[] */
	struct board_clock clock[BOARD_MAX_CLOCKS];
	struct board_fwcpu fw; /* firmware CPU */
	uint64_t mem_bytes;    /* sum of bank sizes, bytes */
	uint64_t mem_bw_mbps;  /* sum of bank bandwidths, MB/s */
};

/* What fits on a card for a model (board_fit_compute). */
struct board_fit {
	uint64_t usable_bytes; /* card memory minus the runtime reserve, bytes */
	uint64_t
	    resident_bytes;	/* bytes of the always-resident set (attention, dense, shared...) */
	int resident_fits;	/* 1 when the resident set fits in usable_bytes */
	uint64_t kv_bytes;	/* bytes reserved for the KV cache of ctx_tokens */
	uint64_t expert_slots;	/* routed-expert slots that fit after resident + KV */
	uint64_t kv_max_tokens; /* KV capacity in tokens if everything after resident went to KV */
};

/* Bytes board_fit_compute keeps free for rings, firmware and activations. */
#define BOARD_FIT_RESERVE (256ull << 20)

/*
 * board_set - a what-if change of one board property: key hbm_gbps (total HBM GB/s, spread over
 * the HBM banks), mem_eff_pct, pcie_gen, pcie_lanes (the link and the DMA channels scale with
 * the lane rate), clock_mhz (the CUs' clocks), fw_mhz (the firmware CPU's clock) or lanes (the
 * GEMV and striped-attention CUs keep lanes 0..val-1), or dispatch (engine: the dispatch engine,
 * with the BOARD_DISPATCH_* cycles when the tree has none; firmware: none); the board is
 * validated again (numbers only). 0 or -EINVAL
 * with a one-line message naming the key.
 * board_set_list - "k=v,k=v" through board_set in order.
 */
int board_set(struct board_desc *b, const char *key, const char *val, char *err, size_t errlen);
int board_set_list(struct board_desc *b, const char *list, char *err, size_t errlen);

/*
 * board_strerror - a static string naming error code err (negative board code or -errno).
 */
const char *board_strerror(int err);

/*
 * board_parse - parse and validate the flattened device tree dtb[0..size) into *b.
 * src names the blob in messages (a file name). On error, err (errlen bytes, may be NULL) gets one
 * line "<src>: <node path>: <property>: <what>". No allocation; b is zeroed first.
 * Errors: -BOARD_EBADDTB, -BOARD_ENOTCARD, -BOARD_EMISSING, -BOARD_EBADSIZE, -BOARD_EBADVALUE,
 * -BOARD_EOVERLAP, -BOARD_ENOBANK, -BOARD_ECLOCK, -BOARD_ETOOMANY, -BOARD_EDUP, -BOARD_EEMPTY,
 * -BOARD_ERANGE; -EINVAL for NULL arguments.
 */
int board_parse(const void *dtb, size_t size, const char *src, struct board_desc *b, char *err,
		size_t errlen);

/*
 * board_load - read the .dtb file path (at most BOARD_DTB_MAX bytes) and board_parse() it.
 * Errors: those of board_parse, -ENOENT/-EACCES/-EIO (negated errno of open/read), -EFBIG when
 * the file is larger than BOARD_DTB_MAX, -ENOMEM.
 */
int board_load(const char *path, struct board_desc *b, char *err, size_t errlen);

/*
 * board_validate - the consistency checks board_parse runs after reading the nodes: overlapping
 * banks and CU windows, port banks in range, clocks non-zero, duplicate names, mailbox in dmem.
 * Usable on a hand-built desc. Errors: -BOARD_EOVERLAP, -BOARD_ENOBANK, -BOARD_ECLOCK, -BOARD_EDUP,
 * -BOARD_EEMPTY, -BOARD_ERANGE.
 */
int board_validate(const struct board_desc *b, const char *src, char *err, size_t errlen);

/*
 * board_bank_name - the Vitis name of bank i ("HBM[3]", "DDR[0]", "PLRAM[1]") into out.
 * Errors: -EINVAL when i is out of range or out is too small.
 */
int board_bank_name(const struct board_desc *b, uint32_t i, char *out, size_t outlen);

/* board_mem_kind_name - "hbm", "ddr" or "plram" (or "?" for an unknown kind). */
const char *board_mem_kind_name(uint32_t kind);

/*
 * board_cu_find - index of the CU named name, or -ENOENT.
 */
int board_cu_find(const struct board_desc *b, const char *name);

/*
 * board_cu_port_find - index of port name within CU cu, or -ENOENT.
 */
int board_cu_port_find(const struct board_cu *cu, const char *name);

/*
 * board_fit_compute - what fits on the card for a model: resident set first, then the KV cache of
 * ctx_tokens tokens, then as many routed-expert slots of expert_bytes as remain.
 * Errors: -EINVAL when expert_bytes or kv_bytes_per_token is 0.
 */
int board_fit_compute(const struct board_desc *b, uint64_t resident_bytes, uint64_t expert_bytes,
		      uint64_t kv_bytes_per_token, uint64_t ctx_tokens, struct board_fit *fit);

/*
 * board_fw_cmd_ns - modeled firmware CPU time of one piece of work of class cls (enum
 * board_fw_class), ns: its moecard,fw-cmd-instr count at the firmware CPU's clock (one
 * instruction per cycle, rounded to the nearest ns). When the tree gives no counts: TAKE costs
 * BOARD_FW_CMD_NS_DEFAULT and the other classes 0; cls out of range: 0.
 */
uint64_t board_fw_cmd_ns(const struct board_desc *b, uint32_t cls);

/*
 * board_dispatch_ns - the board's firmware work split between its CPU and its dispatch engine,
 * ns per piece of work of class cls: with a dispatch engine (moecard,dispatch-cycles), the CPU
 * spends TAKE (it decodes and checks a command straight into the engine's queue memory, a
 * dual-port RAM the engine reads) and the engine spends its own START, DONE and SYNC cycles; *cpu
 * is set to 1 when the class is the CPU's work. Without an engine it is board_fw_cmd_ns(b, cls)
 * on the CPU.
 * board_has_dispatch_engine - 1 when the tree gives moecard,dispatch-cycles.
 */
uint64_t board_dispatch_ns(const struct board_desc *b, uint32_t cls, int *cpu);
/*
 * board_fw_take_ns - the firmware CPU's TAKE time for a command of opcode op, ns: its
 * moecard,fw-take-op-instr count when the tree gives one, else board_fw_cmd_ns(b, BOARD_FW_TAKE)
 * (the most any measured opcode took).
 */
uint64_t board_fw_take_ns(const struct board_desc *b, uint32_t op);
int board_has_dispatch_engine(const struct board_desc *b);
/* board_dispatch_go_ns - with a dispatch engine that preloads the argument registers
 * (moecard,dispatch-preload), the ns a command whose fences are met waits for its start (go
 * cycles); 0 without the preload (then a start costs board_dispatch_ns(b, BOARD_FW_START)). */
uint64_t board_dispatch_go_ns(const struct board_desc *b);

/*
 * board_info_print - human-readable summary of the card to out.
 * Errors: -EIO when writing fails.
 */
int board_info_print(const struct board_desc *b, FILE *out);

/*
 * board_fit_print - print a board_fit (from board_fit_compute) to out.
 * Errors: -EIO when writing fails.
 */
int board_fit_print(const struct board_fit *fit, uint64_t expert_bytes, uint64_t ctx_tokens,
		    FILE *out);

#endif
