/*
 * backend_card.c - what the backends (backend_impl.h) share: the board block built from a parsed
 * board tree, card memory (one lazily backed mapping per bank and a bump allocator; backend xrt
 * uses only its addresses), and the CU side of every compute opcode: a decoded command's argument
 * words (card physical addresses) turned into a call of the hls/ kernel that the card runs, one
 * function per opcode, plus its modeled cycles (docs/architecture.md, emulated card and timing
 * model). Data flow: card_engine.c -> backend_submit -> firmware (emu) or decoder (ref) ->
 * backend_cu_exec -> fp8_gemm / vec_ops / mla_attn / mla_kv_append.
 *
 * Bank reach: a U55C-class HBM subsystem has a switch that lets every AXI master reach every
 * pseudo-channel (Vitis sp=...:HBM[0:31]); the dts lists each CU's home bank per port. The board
 * block therefore gives every CU every HBM bank, and the scheduler places weights so that
 * concurrent CUs read different banks (card_engine.c). The timing model charges each kernel the
 * bandwidth of one pseudo-channel.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include "backend/backend_impl.h"
#include "dma_board.h"
#include "hls/fp8_gemm/fp8_gemm.h"
#include "hls/fp8_gemv/fp8_gemv.h"
#include "hls/moe_route/moe_route.h"
#include "hls_timing.h"
#include "hls/mla_attn/mla_attn.h"
#include "hls/vec_ops/vec_ops.h"

/* The GEMM_FP8 flags are the kernel's flags, passed through unchanged (abi_cmd.h). */
static_assert(ABI_GEMM_F_X_F32 == FP8_GEMM_X_F32 && ABI_GEMM_F_X_BF16 == FP8_GEMM_X_BF16 &&
		  ABI_GEMM_F_Y_BF16 == FP8_GEMM_Y_BF16 &&
		  ABI_GEMM_F_SILU_MUL == FP8_GEMM_SILU_MUL &&
		  ABI_GEMM_F_RESIDUAL == FP8_GEMM_RESIDUAL && ABI_GEMM_F_ACCUM == FP8_GEMM_ACCUM &&
		  ABI_GEMM_F_UE8M0 == FP8_GEMM_UE8M0 && ABI_GEMM_F_ACT_F32 == FP8_GEMM_ACT_F32 &&
		  ABI_GEMM_F_ALL == FP8_GEMM_FLAGS_ALL,
	      "ABI GEMM flags equal the fp8_gemm kernel's");

struct backend_buf {
	uint32_t bank;	/* bank index */
	uint64_t off;	/* bytes into the bank */
	uint64_t bytes; /* size */
};

uint64_t backend_buf_addr(const struct backend_buf *buf, size_t off)
{
	return ABI_ADDR(buf->bank, buf->off + off);
}
uint32_t backend_buf_bank(const struct backend_buf *buf)
{
	return buf->bank;
}
size_t backend_buf_size(const struct backend_buf *buf)
{
	return (size_t)buf->bytes;
}

#define OPS_VEC                                                                                    \
	((1u << ABI_OP_RMSNORM) | (1u << ABI_OP_ROPE) | (1u << ABI_OP_ACT_QUANT) |                 \
	 (1u << ABI_OP_SILU_MUL) | (1u << ABI_OP_RESIDUAL_ADD) | (1u << ABI_OP_SOFTMAX) |          \
	 (1u << ABI_OP_GATHER) | (1u << ABI_OP_COMBINE))

/* The port of a lane CU that is not a lane: the activation port of fp8_gemv, the q port of
 * mla_attn_lanes. */
static const char *lane_cu_port(const struct board_cu *cu)
{
	return !strcmp(cu->kernel, "fp8_gemv") ? "gmem_a" : "gmem_q";
}

/* The lanes of a lane CU (fp8_gemv, mla_attn_lanes): ports gmem_l0, gmem_l1, ... in order, lane i
 * on bank i, the lane banks of one size, and its other port (lane_cu_port). */
static int backend_cu_lanes(const struct board_desc *bd, const struct board_cu *cu, uint32_t *lanes,
			    char *err, size_t errlen)
{
	uint32_t n = 0;
	char name[BOARD_NAME_MAX];
	for (;; n++) {
		snprintf(name, sizeof name, "gmem_l%u", n);
		int p = board_cu_port_find(cu, name);
		if (p < 0)
			break;
		if (cu->port_bank[p] != n || bd->bank[n].size != bd->bank[0].size) {
			snprintf(err, errlen,
				 "board %s: CU %s: port %s must be bound to bank %u, of the size "
				 "of bank 0 (lane i reads bank i)",
				 bd->model, cu->name, name, n);
			return -EINVAL;
		}
	}
	int max = !strcmp(cu->kernel, "fp8_gemv") ? FP8_GEMV_MAX_LANES : MLA_MAX_LANES;
	if (n < 1 || n > (uint32_t)max || board_cu_port_find(cu, lane_cu_port(cu)) < 0) {
		snprintf(err, errlen,
			 "board %s: CU %s: a %s CU needs ports %s and gmem_l0.. (1..%d lanes)",
			 bd->model, cu->name, cu->kernel, lane_cu_port(cu), max);
		return -EINVAL;
	}
	*lanes = n;
	return 0;
}

void backend_cu_params(struct backend_cu_scratch *s, const struct board_cu *cu)
{
	s->tm = cu->tm;
	s->tn = cu->tn;
	s->lane_macs = cu->lane_macs;
	s->lane_imacs = cu->lane_imacs;
	s->lane_passes = cu->lane_passes;
	s->lane_exp_ii = cu->lane_exp_ii;
	s->gemv_rows = cu->gemv_rows;
	s->gemv_f32 = cu->gemv_f32;
}

int backend_cu_wire(struct backend_cu_scratch *s, const struct board_desc *bd,
		    const struct abi_board *blk, const char *kernel)
{
	for (uint32_t i = 0; i < bd->n_cus; i++) {
		const struct board_cu *cu = &bd->cu[i];
		uint32_t lanes;
		char err[8];
		if (strcmp(cu->kernel, kernel) || backend_cu_lanes(bd, cu, &lanes, err, 0))
			continue;
		s->blk = blk;
		s->lanes = lanes;
		s->act_bank = cu->port_bank[board_cu_port_find(cu, lane_cu_port(cu))];
		s->axi_bits = cu->axi_bits;
		backend_cu_params(s, cu);
		return 0;
	}
	return -ENOENT;
}

/* The kernels the firmware drives: the CU kind and the ops of each. */
static const struct cu_kernel {
	const char *name;
	uint32_t kind, ops;
} cu_kernels[] = {
    {"fp8_gemm", ABI_CU_GEMM, 1u << ABI_OP_GEMM_FP8},
    {"vec_ops", ABI_CU_VEC, OPS_VEC},
    {"mla_attn", ABI_CU_MLA, 1u << ABI_OP_MLA_ATTN},
    {"mla_kv_append", ABI_CU_MLA, 1u << ABI_OP_KV_APPEND},
    {"mla_attn_lanes", ABI_CU_MLA, 1u << ABI_OP_MLA_ATTN_LANES},
    {"moe_route", ABI_CU_VEC, 1u << ABI_OP_MOE_ROUTE},
    {"fp8_gemv", ABI_CU_GEMV, 1u << ABI_OP_GEMV},
};

static const struct cu_kernel *cu_kernel_of(const char *name)
{
	for (size_t i = 0; i < sizeof cu_kernels / sizeof cu_kernels[0]; i++)
		if (!strcmp(cu_kernels[i].name, name))
			return &cu_kernels[i];
	return NULL;
}

int backend_kernel_driven(const char *kernel)
{
	return cu_kernel_of(kernel) != NULL;
}

const char *backend_op_kernel(uint32_t op)
{
	for (size_t i = 0; i < sizeof cu_kernels / sizeof cu_kernels[0]; i++)
		if (op < 32 && (cu_kernels[i].ops >> op & 1))
			return cu_kernels[i].name;
	return NULL;
}

int backend_board_block(const struct board_desc *bd, struct abi_board *blk, char *err,
			size_t errlen)
{
	memset(blk, 0, sizeof *blk);
	if (bd->n_banks < 1 || bd->n_banks > ABI_MAX_BANKS || bd->n_cus > ABI_MAX_CUS) {
		snprintf(err, errlen, "board %s: %u banks / %u CUs exceed the board block",
			 bd->model, bd->n_banks, bd->n_cus);
		return -EINVAL;
	}
	uint64_t hbm = 0;
	for (uint32_t i = 0; i < bd->n_banks; i++) {
		const struct board_bank *k = &bd->bank[i];
		blk->banks[i].base = k->base;
		blk->banks[i].size = k->size;
		blk->banks[i].bw_mbps = k->bw_mbps;
		blk->banks[i].word = k->kind == BOARD_MEM_HBM	? ABI_BANK_HBM
				     : k->kind == BOARD_MEM_DDR ? ABI_BANK_DDR
								: ABI_BANK_PLRAM;
		if (k->kind == BOARD_MEM_HBM)
			hbm |= 1ull << i;
	}
	uint32_t nc = 0;
	for (uint32_t i = 0; i < bd->n_cus; i++) {
		const struct board_cu *cu = &bd->cu[i];
		const struct cu_kernel *ck = cu_kernel_of(cu->kernel);
		if (!ck)
			continue; /* a kernel the firmware does not drive */
		uint32_t kind = ck->kind, ops = ck->ops;
		uint64_t mask = hbm;
		for (uint32_t p = 0; p < cu->n_ports; p++)
			mask |= 1ull << cu->port_bank[p];
		uint32_t lanes = 0;
		if (kind == ABI_CU_GEMV || !strcmp(cu->kernel, "mla_attn_lanes")) {
			int r = backend_cu_lanes(bd, cu, &lanes, err, errlen);
			if (r)
				return r;
		}
		blk->cus[nc].word = ABI_CU_WORD_LANES(kind, nc, lanes);
		blk->cus[nc].ops_mask = ops;
		blk->cus[nc].bank_mask = mask;
		nc++;
	}
	uint32_t nd = 0;
	for (uint32_t i = 0; i < bd->n_dma && nd < ABI_MAX_DMA; i++, nd++) {
		blk->dma[nd].word =
		    bd->dma[i].to_card ? ABI_DMA_CAP_H2C | ABI_DMA_CAP_C2C : ABI_DMA_CAP_C2C;
		blk->dma[nd].bw_mbps = bd->dma[i].bw_mbps ? bd->dma[i].bw_mbps : 1;
	}
	blk->magic = ABI_BOARD_MAGIC;
	blk->version = ABI_BOARD_VERSION;
	blk->counts = ABI_BOARD_COUNTS(bd->n_banks, nc, nd);
	uint32_t kclk = 300000000u, fclk = 250000000u;
	if (bd->n_cus && bd->cu[0].clock < bd->n_clocks)
		kclk = bd->clock[bd->cu[0].clock].freq_hz;
	if (bd->fw.clock < bd->n_clocks)
		fclk = bd->clock[bd->fw.clock].freq_hz;
	blk->cu_clk_khz = kclk / 1000;
	blk->fw_clk_khz = fclk / 1000;
	if (!nc) {
		snprintf(err, errlen, "board %s: no CU runs a firmware opcode", bd->model);
		return -EINVAL;
	}
	return 0;
}

/* --- card memory ------------------------------------------------------------------------- */

int backend_mem_init(struct backend_mem *m, const struct abi_board *blk)
{
	memset(m, 0, sizeof *m);
	m->n_banks = ABI_BOARD_N_BANKS(blk->counts);
	for (uint32_t i = 0; i < m->n_banks; i++) {
		/* MAP_NORESERVE: pages exist only once written, so a 16 GiB card costs what is placed */
		void *p = mmap(NULL, blk->banks[i].size, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (p == MAP_FAILED) {
			backend_mem_free(m);
			return -ENOMEM;
		}
		m->base[i] = p;
		m->size[i] = blk->banks[i].size;
		m->phys[i] = blk->banks[i].base;
	}
	return 0;
}

void backend_mem_free(struct backend_mem *m)
{
	for (uint32_t i = 0; i < m->n_banks; i++)
		if (m->base[i])
			munmap(m->base[i], m->size[i]);
	memset(m, 0, sizeof *m);
}

int backend_mem_alloc(struct backend_mem *m, uint32_t bank, size_t bytes, size_t align,
		      struct backend_buf **out)
{
	*out = NULL;
	if (bank >= m->n_banks || !bytes || (align & (align - 1)))
		return -EINVAL;
	if (align < 64)
		align = 64; /* one AXI beat */
	uint64_t off = (m->used[bank] + align - 1) & ~(uint64_t)(align - 1);
	if (off > m->size[bank] || bytes > m->size[bank] - off)
		return -ENOMEM;
	struct backend_buf *b = malloc(sizeof *b);
	if (!b)
		return -ENOMEM;
	b->bank = bank;
	b->off = off;
	b->bytes = bytes;
	m->used[bank] = off + bytes;
	*out = b;
	return 0;
}

void backend_mem_release(struct backend_mem *m, struct backend_buf *buf)
{
	if (!buf)
		return;
	if (buf->bank < m->n_banks && buf->off + buf->bytes == m->used[buf->bank])
		m->used[buf->bank] = buf->off; /* bump allocator: only the newest range returns */
	free(buf);
}

void *backend_mem_ptr(struct backend_mem *m, const struct backend_buf *buf, size_t off, size_t n)
{
	if (off > buf->bytes || n > buf->bytes - off)
		return NULL;
	return (uint8_t *)m->base[buf->bank] + buf->off + off;
}

void *backend_mem_phys(struct backend_mem *m, uint64_t phys, uint64_t len)
{
	for (uint32_t i = 0; i < m->n_banks; i++)
		if (phys >= m->phys[i] && phys - m->phys[i] <= m->size[i] &&
		    len <= m->size[i] - (phys - m->phys[i]))
			return (uint8_t *)m->base[i] + (phys - m->phys[i]);
	return NULL;
}

/* --- DMA through the driver ------------------------------------------------------------- */

#define BACKEND_PAT_BYTES (1u << 20)	     /* pattern source: one descriptor's length */
#define BACKEND_DMA_TIMEOUT_NS 10000000000ll /* host ns a driver transfer may take */

int backend_dma_open(struct backend_dma *d, const struct board_desc *bd,
		     const struct abi_board *blk, const struct backend_mem *mem, char *err,
		     size_t errlen)
{
	memset(d, 0, sizeof *d);
	d->mem = mem;
	uint32_t nd = ABI_BOARD_N_DMA(blk->counts);
	if (!nd)
		return 0; /* a card without DMA channels runs no fill */
	struct dma_config cfg;
	char e2[200] = "";
	int r = dma_config_from_board(bd, d->banks, ABI_MAX_BANKS, &cfg);
	if (r) {
		snprintf(err, errlen, "board %s: no DMA driver configuration (%d)", bd->model, r);
		return r;
	}
	cfg.n_channels = nd;
	cfg.bank_mem = mem->base;
	if ((r = dma_dev_open(&dma_emul_i, &cfg, &d->dev, e2, sizeof e2))) {
		snprintf(err, errlen, "DMA driver: %s", e2);
		return r;
	}
	for (uint32_t i = 0; i < nd; i++) {
		d->pat[i] = malloc(BACKEND_PAT_BYTES);
		d->sg[i] = calloc(dma_dev_ring_entries(d->dev), sizeof *d->sg[i]);
		if (!d->pat[i] || !d->sg[i]) {
			snprintf(err, errlen, "out of memory");
			backend_dma_close(d);
			return -ENOMEM;
		}
	}
	return 0;
}

void backend_dma_close(struct backend_dma *d)
{
	dma_dev_close(d->dev);
	d->dev = NULL;
	for (uint32_t i = 0; i < ABI_MAX_DMA; i++) {
		free(d->pat[i]);
		free(d->sg[i]);
		d->pat[i] = NULL;
		d->sg[i] = NULL;
	}
}

int backend_dma_fill(struct backend_dma *d, uint32_t chan, uint64_t dst, uint64_t bytes,
		     const void *src, uint8_t pattern)
{
	const struct backend_mem *m = d->mem;
	uint32_t bank = m->n_banks;
	for (uint32_t i = 0; i < m->n_banks; i++)
		if (dst >= m->phys[i] && dst - m->phys[i] < m->size[i])
			bank = i;
	if (!d->dev || chan >= dma_dev_n_channels(d->dev) || bank == m->n_banks)
		return -EINVAL;
	uint64_t off = dst - m->phys[bank], elem = DMA_REGS_DESC_LEN_MAX & ~4095ull;
	const uint8_t *s = src;
	if (!s) {
		elem = bytes < BACKEND_PAT_BYTES ? bytes : BACKEND_PAT_BYTES;
		memset(d->pat[chan], pattern, elem);
		s = d->pat[chan];
	}
	unsigned ring = dma_dev_ring_entries(d->dev);
	struct dma_sg *sg = d->sg[chan];
	for (uint64_t done = 0; done < bytes;) {
		unsigned n = 0;
		for (; done < bytes && n < ring; n++) {
			uint64_t len = bytes - done < elem ? bytes - done : elem;
			sg[n] = (struct dma_sg){.host = (void *)(s + (src ? done : 0)),
						.bank = bank,
						.card_off = off + done,
						.len = (size_t)len};
			done += len;
		}
		struct dma_xfer x = {.dir = DMA_DIR_H2C, .sg = sg, .n_sg = n, .cookie = dst};
		int r = dma_copy_sync(d->dev, chan, &x, 0, BACKEND_DMA_TIMEOUT_NS, NULL);
		if (r)
			return r;
	}
	return 0;
}

void backend_dma_stats(struct backend_dma *d, struct backend_stats *s)
{
	if (!d->dev)
		return;
	s->dma_engine = dma_dev_name(d->dev);
	dma_dev_stats(d->dev, &s->dma);
	/* On the card's banks the card's DMA channels keep the time (latency + bytes at the channel's
	 * bandwidth, on the card clock). The driver's own link model would charge the same bytes again
	 * on its shared per-direction link in the order the host threads reach it, which is not a
	 * card figure and not repeatable: it is not reported. */
	s->dma.link_ns = 0;
}

/* --- CU side of the compute opcodes ----------------------------------------------------- */

int backend_cu_scratch_init(struct backend_cu_scratch *s)
{
	/* malloc'd at the maxima but touched only as far as a command needs: large blocks are
	 * lazily backed mappings */
	s->pos = malloc(sizeof(*s->pos) * ABI_MAX_DIM);
	s->row = malloc(sizeof(*s->row) * VEC_MAX_N);
	s->q_lat = malloc(sizeof(*s->q_lat) * MLA_MAX_H * MLA_MAX_DC);
	s->q_pe = malloc(sizeof(*s->q_pe) * (MLA_MAX_H * MLA_MAX_DR + 1));
	if (!s->pos || !s->row || !s->q_lat || !s->q_pe) {
		backend_cu_scratch_free(s);
		return -ENOMEM;
	}
	return 0;
}

void backend_cu_scratch_free(struct backend_cu_scratch *s)
{
	free(s->pos);
	free(s->row);
	free(s->q_lat);
	free(s->q_pe);
	memset(s, 0, sizeof *s);
}

/* One command on its way through a CU: operands, scratch, the build the cycles are modeled for. */
struct cu_call {
	const uint32_t *args;				      /* CU argument words */
	void *(*ptr)(void *ctx, uint64_t phys, uint64_t len); /* physical range -> host */
	void *ctx;					      /* its context */
	struct backend_cu_scratch *s;			      /* the CU's scratch */
	struct hls_build bld;				      /* clock and bank bandwidth */
	int64_t cyc;					      /* modeled cycles of the run */
};

static uint64_t arg64(const uint32_t *args, size_t byte_off)
{
	return (uint64_t)args[byte_off / 4] | (uint64_t)args[byte_off / 4 + 1] << 32;
}

/* var = host pointer of operand field (len bytes; NULL when len is 0); an operand that does not
 * resolve ends the command with status 0xE0 + its operand index. */
#define CU_PTR(var, type, field, len)                                                              \
	do {                                                                                       \
		uint64_t p_ = arg64(c->args, offsetof(struct abi_cmd, field) - 32);                \
		uint64_t l_ = (len);                                                               \
		(var) = (type)(l_ != 0 ? c->ptr(c->ctx, p_, l_) : NULL);                           \
		if (l_ != 0 && !(var))                                                             \
			return 0xE0u + (uint32_t)((offsetof(struct abi_cmd, field) - 32) / 8);     \
	} while (0)

static uint32_t cu_status(int r)
{
	return r < 0 ? (uint32_t)(-r) | 0x100u : 0;
}

static int vec_op_of(uint32_t op)
{
	return op == ABI_OP_RMSNORM	   ? VEC_OP_RMSNORM
	       : op == ABI_OP_ROPE	   ? VEC_OP_ROPE
	       : op == ABI_OP_ACT_QUANT	   ? VEC_OP_ACT_QUANT
	       : op == ABI_OP_SILU_MUL	   ? VEC_OP_SILU_MUL
	       : op == ABI_OP_RESIDUAL_ADD ? VEC_OP_ADD
					   : VEC_OP_SOFTMAX;
}

/* A GEMM CU's own PE array (moecard,pe) in the build its cycles are modeled for; 0 or a shape
 * the kernel's tiling cannot take keeps the build's. */
static void bld_pe(struct hls_build *b, uint32_t tm, uint32_t tn)
{
	if (tm && tn && FP8_GEMM_MB % tm == 0 && 128 % tn == 0) {
		b->tm = (int)tm;
		b->tn = (int)tn;
	}
}

static uint32_t cu_gemm(struct cu_call *c, uint32_t op)
{
	struct abi_gemm g;
	(void)op;
	memcpy(&g, c->args, sizeof g);
	uint64_t M = g.m, N = g.n, K = g.k, kb = (K + 127) / 128, nb = (N + 127) / 128;
	uint32_t f = g.flags, xf = f & (ABI_GEMM_F_X_F32 | ABI_GEMM_F_X_BF16);
	uint64_t xb = xf == ABI_GEMM_F_X_F32 ? 4 : xf ? 2 : 1;
	uint64_t pair = (f & ABI_GEMM_F_SILU_MUL) ? 2 : 1;
	uint64_t lda = g.lda ? g.lda : K, ldy = g.ldy ? g.ldy : N;
	const void *a;
	const float *sa;
	const uint8_t *w;
	const float *sw;
	void *y;
	CU_PTR(a, const void *, u.gemm.a, ((M - 1) * lda + K) * xb);
	CU_PTR(sa, const float *, u.gemm.sa, !xf ? M * kb * 4 : (f & ABI_GEMM_F_ACCUM) ? M * 4 : 0);
	CU_PTR(w, const uint8_t *, u.gemm.w, pair *N *K);
	CU_PTR(sw, const float *, u.gemm.sw, pair *nb *kb * 4);
	CU_PTR(y, void *, u.gemm.y, ((M - 1) * ldy + N) * ((f & ABI_GEMM_F_Y_BF16) ? 2 : 4));
	/* ACT_F32 (with X_F32): a is read as f32 [M][K] and not quantized; the kernel's fixed-order
	 * f32 block sum makes this bit-identical on every backend */
	int r = fp8_gemm(
	    a, xf ? NULL : sa, w, sw, pair == 2 ? w + N * K : NULL, pair == 2 ? sw + nb * kb : NULL,
	    y, (f & ABI_GEMM_F_RESIDUAL) ? (const float *)y : NULL,
	    (f & ABI_GEMM_F_ACCUM) ? sa : NULL, (int)M, (int)N, (int)K, f, (int)lda, (int)ldy);
	if (c->s)
		bld_pe(&c->bld, c->s->tm, c->s->tn);
	c->cyc = fp8_gemm_cycles(&c->bld, (int)M, (int)N, (int)K, f, NULL);
	return cu_status(r);
}

/* Operand bytes of a vector command: x-shaped input and output ranges. */
static void vec_lens(const struct abi_vec *v, uint64_t *xl, uint64_t *ol)
{
	uint64_t R = v->rows, C = v->cols, lda = v->lda ? v->lda : C, ldo = v->ldo ? v->ldo : C;
	*xl = ((R - 1) * lda + C) * 4;
	*ol = ((R - 1) * ldo + C) * 4;
}

/* RMSNORM, SILU_MUL, RESIDUAL_ADD, SOFTMAX: out = f(x[, x2 | w]). */
static uint32_t cu_vec(struct cu_call *c, uint32_t op)
{
	struct abi_vec v;
	memcpy(&v, c->args, sizeof v);
	uint64_t R = v.rows, C = v.cols, lda = v.lda ? v.lda : C, ldo = v.ldo ? v.ldo : C, xl, ol;
	vec_lens(&v, &xl, &ol);
	const float *x, *x2, *w;
	float *out, eps;
	memcpy(&eps, &v.param_f, 4);
	int vop = vec_op_of(op);
	CU_PTR(x, const float *, u.vec.x, xl);
	CU_PTR(x2, const float *, u.vec.x2,
	       (op == ABI_OP_SILU_MUL || op == ABI_OP_RESIDUAL_ADD) ? xl : 0);
	CU_PTR(w, const float *, u.vec.w, op == ABI_OP_RMSNORM ? C * 4 : 0);
	CU_PTR(out, float *, u.vec.out, ol);
	int r = vec_ops(vop, x, op == ABI_OP_RMSNORM ? w : x2, out, NULL, NULL, NULL, (int)R,
			(int)C, (int)lda, (int)ldo, eps, 0, 0, 0);
	c->cyc = vec_ops_cycles(&c->bld, vop, (int)R, (int)C, 0, NULL);
	return cu_status(r);
}

/* ACT_QUANT: x -> e4m3 q (out) and per-128 block scales (out2). */
static uint32_t cu_act_quant(struct cu_call *c, uint32_t op)
{
	struct abi_vec v;
	(void)op;
	memcpy(&v, c->args, sizeof v);
	uint64_t R = v.rows, C = v.cols, lda = v.lda ? v.lda : C, xl, ol;
	vec_lens(&v, &xl, &ol);
	const float *x;
	uint8_t *q;
	float *qs;
	CU_PTR(x, const float *, u.vec.x, xl);
	CU_PTR(q, uint8_t *, u.vec.out, R * C);
	CU_PTR(qs, float *, u.vec.out2, R *((C + 127) / 128) * 4);
	int r = vec_ops(VEC_OP_ACT_QUANT, x, NULL, NULL, q, qs, NULL, (int)R, (int)C, (int)lda,
			(int)C, 0, 0, 0, 0);
	c->cyc = vec_ops_cycles(&c->bld, VEC_OP_ACT_QUANT, (int)R, (int)C, 0, NULL);
	return cu_status(r);
}

/* ROPE at position param_u: from the cos/sin table (tab) or, without one, the CU's angle unit
 * for base param_f. */
static uint32_t cu_rope(struct cu_call *c, uint32_t op)
{
	struct abi_vec v;
	(void)op;
	memcpy(&v, c->args, sizeof v);
	uint64_t R = v.rows, C = v.cols, lda = v.lda ? v.lda : C, ldo = v.ldo ? v.ldo : C, xl, ol;
	vec_lens(&v, &xl, &ol);
	const float *x, *tab;
	float *out, base;
	memcpy(&base, &v.param_f, 4);
	CU_PTR(x, const float *, u.vec.x, xl);
	/* positions: param_u + r / param_k, or with a position table (w) w[r / param_k], each
	 * below param_u (the table's positions) */
	uint64_t last =
	    v.w ? (uint64_t)v.param_u - 1 : v.param_u + (v.param_k ? (R - 1) / v.param_k : 0);
	const int32_t *pw;
	CU_PTR(pw, const int32_t *, u.vec.w, v.w ? (R / v.param_k) * 4 : 0);
	CU_PTR(tab, const float *, u.vec.tab, v.tab ? (last + 1) * C * 4 : 0);
	CU_PTR(out, float *, u.vec.out, ol);
	int r = -EINVAL, outside = 0; /* the kernel's answer to a shape beyond its maxima */
	for (uint64_t i = 0; pw && i < R / v.param_k; i++)
		outside |= pw[i] < 0 || (uint64_t)pw[i] > last;
	if (!outside && R <= ABI_MAX_DIM && C <= VEC_MAX_N && (!tab || last <= INT32_MAX)) {
		int32_t *pos = c->s->pos;
		const float *t = tab;
		if (!tab) {
			float *row = c->s->row;
			for (uint64_t i = 0; i < C / 2; i++) {
				double th =
				    (double)v.param_u * pow(base, -2.0 * (double)i / (double)C);
				row[2 * i] = (float)cos(th);
				row[2 * i + 1] = (float)sin(th);
			}
			t = row;
		}
		for (uint64_t i = 0; i < R; i++) /* row i at param_u + i / param_k (table) */
			pos[i] = !tab ? 0
				 : pw ? pw[i / v.param_k]
				      : (int32_t)(v.param_u + (v.param_k ? i / v.param_k : 0));
		r = vec_ops(VEC_OP_ROPE, x, t, out, NULL, NULL, pos, (int)R, (int)C, (int)lda,
			    (int)ldo, 0, 0, 0, 0);
	}
	c->cyc = vec_ops_cycles(&c->bld, VEC_OP_ROPE, (int)R, (int)C, 0, NULL);
	return cu_status(r);
}

/* GATHER and COMBINE: rows of x by index (w); COMBINE adds them weighted (x2) into out. The
 * kernel checks every index against the source rows (param_u) before it writes. */
static uint32_t cu_rows(struct cu_call *c, uint32_t op)
{
	struct abi_vec v;
	memcpy(&v, c->args, sizeof v);
	uint64_t R = v.rows, C = v.cols, S = v.param_u, lda = v.lda ? v.lda : C;
	uint64_t ldo = v.ldo ? v.ldo : C, ni = op == ABI_OP_COMBINE ? v.param_k : 1;
	const float *x, *x2;
	const int32_t *idx;
	float *out;
	CU_PTR(x, const float *, u.vec.x, S ? ((S - 1) * lda + C) * 4 : 0);
	CU_PTR(x2, const float *, u.vec.x2, op == ABI_OP_COMBINE ? R * ni * 4 : 0);
	CU_PTR(idx, const int32_t *, u.vec.w, R *ni * 4);
	CU_PTR(out, float *, u.vec.out, ((R - 1) * ldo + C) * 4);
	int vop = op == ABI_OP_GATHER ? VEC_OP_GATHER : VEC_OP_COMBINE;
	int r = -EINVAL;
	if (R <= ABI_MAX_DIM && C <= VEC_MAX_N && S <= ABI_MAX_DIM)
		r = vec_ops(vop, x, x2, out, NULL, NULL, idx, (int)R, (int)C, (int)lda, (int)ldo, 0,
			    0, op == ABI_OP_COMBINE ? (int)ni : 0, (int)S);
	c->cyc = vec_ops_cycles2(&c->bld, vop, (int)R, (int)C, (int)(ni ? ni : 1), 0, NULL);
	return cu_status(r);
}

static uint32_t cu_mla(struct cu_call *c, uint32_t op)
{
	struct abi_mla m;
	(void)op;
	memcpy(&m, c->args, sizeof m);
	uint64_t H = m.n_heads, dc = m.kv_lora, dr = m.rope, row = dc + dr;
	const float *q;
	const uint8_t *kv;
	float *out, scale;
	memcpy(&scale, &m.scale, 4);
	CU_PTR(q, const float *, u.mla.q, H *row * 4);
	CU_PTR(kv, const uint8_t *, u.mla.kv, (uint64_t)m.ctx_cap *row * 4);
	CU_PTR(out, float *, u.mla.out, H *dc * 4);
	int r = -EINVAL; /* the kernel's answer to a shape beyond its maxima */
	if (H <= MLA_MAX_H && dc <= MLA_MAX_DC && dr <= MLA_MAX_DR) {
		/* the kernel's q port reads q_lat [H][dc] and q_pe [H][dr]: split the packed rows */
		float *ql = c->s->q_lat, *qp = c->s->q_pe;
		for (uint64_t h = 0; h < H; h++) {
			memcpy(ql + h * dc, q + h * row, dc * 4);
			memcpy(qp + h * dr, q + h * row + dc, dr * 4);
		}
		r = mla_attn(ql, dr ? qp : NULL, kv, out, 1, (int)m.n_ctx - 1, (int)H, (int)dc,
			     (int)dr, MLA_CACHE_F32, scale);
	}
	/* at the CU's compute width (the tree's moecard,lane-macs) */
	c->cyc =
	    mla_attn_cycles2(&c->bld, 1, (int)m.n_ctx - 1, (int)H, (int)dc, (int)dr, MLA_CACHE_F32,
			     c->s && c->s->lane_macs ? (int)c->s->lane_macs : MLA_ATTN_MACS, NULL);
	return cu_status(r);
}

/* The mla_attn record format of an abi_kv_fmt. */
int backend_mla_fmt(uint32_t fmt)
{
	return fmt == ABI_KV_BF16  ? MLA_CACHE_BF16
	       : fmt == ABI_KV_FP8 ? MLA_CACHE_FP8
				   : MLA_CACHE_F32;
}

int backend_kv_layout(const struct abi_kv_append *k, int *dc, int *dr)
{
	uint32_t fmt = ABI_KV_FMT(k->word);
	*dr = k->fold		    ? (int)k->fold
	      : fmt != ABI_KV_F32   ? (int)ABI_KV_ROPE(k->word)
	      : k->row > MLA_MAX_DC ? (int)k->row - MLA_MAX_DC
				    : 0;
	*dc = (int)k->row - *dr;
	return backend_mla_fmt(fmt);
}

/* Its modeled cycles (its rows; a folded append's input stage included). */
static int64_t kv_cycles(const struct hls_build *b, const struct abi_kv_append *k)
{
	int dc, dr, mf = backend_kv_layout(k, &dc, &dr), n = k->rows > 1 ? (int)k->rows : 1;
	return k->fold ? mla_kv_append_fold_rows_cycles(b, n, dc, dr, mf, NULL)
		       : mla_kv_append_cycles(b, n, dc, dr, mf, NULL);
}

static uint32_t cu_kv_append(struct cu_call *c, uint32_t op)
{
	struct abi_kv_append k;
	(void)op;
	memcpy(&k, c->args, sizeof k);
	const float *src;
	uint8_t *cache;
	int dc, dr, mf = backend_kv_layout(&k, &dc, &dr), n = k.rows > 1 ? (int)k.rows : 1;
	CU_PTR(src, const float *, u.kv.src, (uint64_t)n *k.row * 4);
	CU_PTR(cache, uint8_t *, u.kv.cache, (uint64_t)k.ctx_cap * mla_record_bytes(mf, dc, dr));
	if (k.fold) {
		const float *w, *tab;
		float eps;
		memcpy(&eps, &k.eps, 4);
		CU_PTR(w, const float *, u.kv.norm, (uint64_t)dc * 4);
		CU_PTR(tab, const float *, u.kv.rope_tab,
		       ((uint64_t)k.rope_pos + (uint64_t)n) * (uint64_t)dr * 4);
		int r = mla_kv_append_fold_rows(src, n, w, eps, tab, (int)k.rope_pos, cache,
						(int)k.pos, dc, dr, mf);
		c->cyc = kv_cycles(&c->bld, &k);
		return cu_status(r);
	}
	/* (the rows' records one after another: a row is c' then k_pe, back to back) */
	int r = 0;
	for (int i = 0; i < n && !r; i++) {
		const float *s = src + (size_t)i * k.row;
		r = mla_kv_append(s, dr ? s + dc : NULL, cache, (int)k.pos + i, 1, dc, dr, mf);
	}
	c->cyc = kv_cycles(&c->bld, &k);
	return cu_status(r);
}

static pthread_mutex_t cu_gemv_mu = PTHREAD_MUTEX_INITIALIZER;

/* GEMV: the group table in the activation bank, the lanes on banks 0..lanes-1 (the CU's wiring). */
static uint32_t cu_gemv(struct cu_call *c, uint32_t op)
{
	struct abi_gemv g;
	(void)op;
	memcpy(&g, c->args, sizeof g);
	const struct backend_cu_scratch *s = c->s;
	if (!s->lanes || !s->blk)
		return 0x1FFu; /* not wired as a GEMV CU */
	const struct abi_bank *ab = &s->blk->banks[s->act_bank];
	uint64_t tab = g.tab; /* physical */
	if (tab < ab->base || tab - ab->base >= ab->size)
		return 0xE0u; /* the table is not in the activation bank */
	uint8_t *act = c->ptr(c->ctx, ab->base, ab->size);
	const uint8_t *lane[FP8_GEMV_MAX_LANES];
	for (uint32_t i = 0; i < s->lanes; i++)
		lane[i] = c->ptr(c->ctx, s->blk->banks[i].base, s->blk->banks[i].size);
	if (!act)
		return 0xE0u;
	for (uint32_t i = 0; i < s->lanes; i++)
		if (!lane[i])
			return 0xE1u;
	uint32_t ng = g.ng, m = g.m;
	if (ng < 1 || ng > FP8_GEMV_MAX_GROUPS || tab - ab->base + (uint64_t)ng * 64 > ab->size)
		return FP8_GEMV_E_ARGS | 0x200u;
	pthread_mutex_lock(&cu_gemv_mu); /* the kernel's x buffer is static in C simulation */
	uint32_t st = fp8_gemv_run(act, ab->size, lane, s->blk->banks[0].size, (int)s->lanes,
				   tab - ab->base, (int)ng, (int)m);
	pthread_mutex_unlock(&cu_gemv_mu);
	struct hls_build b = c->bld;
	b.axi_bits = (int)s->axi_bits;
	if (s->gemv_rows)
		b.gemv_rows = (int)s->gemv_rows;
	if (s->gemv_f32)
		b.gemv_f32 = (int)s->gemv_f32;
	c->cyc = fp8_gemv_cycles2(&b, (int)s->lanes,
				  (const struct fp8_gemv_grp *)(act + (tab - ab->base)), (int)ng,
				  (int)m, (g.flags & ABI_GEMV_F_X0) != 0, g.x0_off, NULL);
	return st ? st | 0x200u : 0;
}

/* MOE_ROUTE: the router kernel on its operands (fw_cmd.c checked their ranges). */
static uint32_t cu_route(struct cu_call *c, uint32_t op)
{
	struct abi_route r;
	(void)op;
	memcpy(&r, c->args, sizeof r);
	uint64_t tb = (r.flags & ABI_ROUTE_F_TABLES) ? 2ull * (r.k + 1) * ABI_GEMV_GRP_BYTES : 0;
	const float *logit, *bias;
	uint8_t *out, *tab;
	const uint8_t *tmpl;
	float scale;
	memcpy(&scale, &r.scale, 4);
	uint64_t rows = r.rows ? r.rows : 1;
	CU_PTR(logit, const float *, u.route.logit, rows *r.e * 4);
	CU_PTR(bias, const float *, u.route.bias,
	       (r.flags & ABI_ROUTE_F_BIAS) ? (uint64_t)r.e * 4 : 0);
	CU_PTR(out, uint8_t *, u.route.out, rows * r.k * 8);
	CU_PTR(tmpl, const uint8_t *, u.route.tmpl, tb);
	CU_PTR(tab, uint8_t *, u.route.tab, tb);
	int G = (int)(r.groups & 0xFFFFu), tg = (int)(r.groups >> 16);
	int st = moe_route(logit, bias, out, tmpl, tab, r.stride, (int)r.e, (int)r.k, G, tg,
			   r.flags, scale, (int)rows);
	c->cyc = moe_route_cycles(&c->bld, (int)r.e, (int)r.k, G, tg, r.flags, (int)rows);
	return st ? 0x101u : 0;
}

/* MLA_ATTN_LANES' rows: one snapshot rt of the table (n rows; one row without a table attends
 * n_ctx), so the checks and the run see the same rows. A row's context past the command's n_ctx
 * (the bound the slots were sized for, which the kernel does not see) or empty: refused here,
 * before any row runs. 0, or the status. */
static uint32_t cu_mla_rows(const struct abi_mla_lanes *m, const uint32_t *tab, uint64_t n,
			    uint32_t rt[2 * MLA_MAX_ROWS])
{
	if (n > MLA_MAX_ROWS) /* (the firmware's decoder refuses these first) */
		return 0x101u;
	if (n > 1)
		memcpy(rt, tab, n * 8);
	else
		rt[0] = 0, rt[1] = m->n_ctx;
	for (uint64_t i = 0; i < n; i++)
		if (rt[2 * i + 1] < 1 || rt[2 * i + 1] > m->n_ctx)
			return 0x101u;
	return 0;
}

/* MLA_ATTN_LANES in its MHA mode: q, the K/V rows (cache_off) and out are card addresses; one row
 * without a table attends n_ctx. */
static pthread_mutex_t cu_mla_lanes_mu = PTHREAD_MUTEX_INITIALIZER;
static uint32_t cu_mla_mha(struct cu_call *c, const struct abi_mla_lanes *m)
{
	const struct backend_cu_scratch *s = c->s;
	uint64_t H = m->n_heads, vd = m->kv_lora, dr = m->rope, nope = m->rsvd;
	uint64_t n = m->rows > 1 ? m->rows : 1, ld = H * (nope + vd) + dr;
	const float *q, *kv;
	const uint32_t *tab = NULL;
	float *out, scale;
	memcpy(&scale, &m->scale, 4);
	CU_PTR(q, const float *, u.mlal.q, n *H *(nope + dr) * 4);
	CU_PTR(out, float *, u.mlal.out, n *H *vd * 4);
	CU_PTR(tab, const uint32_t *, u.mlal.tab, n > 1 ? n * 8 : 0);
	CU_PTR(kv, const float *, u.mlal.cache_off, (uint64_t)m->ctx_cap *ld * 4);
	uint32_t rt[2 * MLA_MAX_ROWS], st = cu_mla_rows(m, tab, n, rt);
	if (st)
		return st;
	int L = (int)(s->lanes < MLA_MAX_LANES ? s->lanes : MLA_MAX_LANES);
	int macs = s->lane_macs ? (int)s->lane_macs : MLA_LANE_MACS;
	pthread_mutex_lock(&cu_mla_lanes_mu);
	int r = mla_attn_mha_run(q, kv, (int)m->ctx_cap, rt, (int)n, out, L, (int)H, (int)nope,
				 (int)dr, (int)vd, scale);
	pthread_mutex_unlock(&cu_mla_lanes_mu);
	int64_t cyc = mla_attn_mha_cycles(&c->bld, L, rt, (int)n, (int)H, (int)nope, (int)dr,
					  (int)vd, macs, NULL);
	c->cyc = cyc;
	return cu_status(r);
}

/* MLA_ATTN_LANES: q split into the kernel's q_lat / q_pe ports (as cu_mla), the lanes from the
 * CU's wiring. The kernel's on-chip buffers are static in C simulation: one run at a time. */
static uint32_t cu_mla_lanes(struct cu_call *c, uint32_t op)
{
	struct abi_mla_lanes m;
	(void)op;
	memcpy(&m, c->args, sizeof m);
	const struct backend_cu_scratch *s = c->s;
	if (!s->lanes || !s->blk)
		return 0x1FFu; /* not wired as a striped-attention CU */
	if (s->lane_passes)
		c->bld.lane_passes = (int)s->lane_passes; /* the tree's head passes time it */
	if (s->lane_exp_ii)
		c->bld.lane_exp_ii = (int)s->lane_exp_ii; /* and its exp unit's interval */
	if (m.word & ABI_MLAL_MHA)
		return cu_mla_mha(c, &m);
	uint64_t H = m.n_heads, dc = m.kv_lora, dr = m.rope, row = dc + dr;
	int mf = backend_mla_fmt(m.word & 0xFFu);
	const float *q;
	const uint32_t *tab = NULL;
	float *out, scale;
	uint64_t n = m.rows > 1 ? m.rows : 1;
	memcpy(&scale, &m.scale, 4);
	CU_PTR(q, const float *, u.mlal.q, n *H *row * 4);
	CU_PTR(out, float *, u.mlal.out, n *H *dc * 4);
	CU_PTR(tab, const uint32_t *, u.mlal.tab, n > 1 ? n * 8 : 0);
	const uint8_t *lane[MLA_MAX_LANES];
	uint32_t L = s->lanes < MLA_MAX_LANES ? s->lanes : MLA_MAX_LANES;
	for (uint32_t i = 0; i < L; i++)
		if (!(lane[i] = c->ptr(c->ctx, s->blk->banks[i].base, s->blk->banks[i].size)))
			return 0xE1u;
	int dpath = mf | ((m.word & ABI_MLAL_FP8) ? MLA_ATTN_FP8 : 0);
	int macs = s->lane_macs ? (int)s->lane_macs : MLA_LANE_MACS;
	int imacs = s->lane_imacs ? (int)s->lane_imacs : MLA_LANE_IMACS;
	if (n > 1) { /* the rows: the kernel checks each row's slot and context */
		uint32_t rt[2 * MLA_MAX_ROWS], st = cu_mla_rows(&m, tab, n, rt);
		if (st)
			return st;
		pthread_mutex_lock(&cu_mla_lanes_mu);
		int r = mla_attn_lanes_rows_run(q, rt, (int)n, lane, (int)L, s->blk->banks[0].size,
						m.cache_off, m.slot_bytes, (int)m.ctx_cap, out,
						(int)H, (int)dc, (int)dr, dpath, scale);
		pthread_mutex_unlock(&cu_mla_lanes_mu);
		c->cyc = mla_attn_lanes_rows_cycles(&c->bld, (int)L, rt, (int)n, (int)H, (int)dc,
						    (int)dr, dpath, macs, imacs, NULL);
		return cu_status(r);
	}
	int r = -EINVAL;
	if (H <= MLA_MAX_H && dc <= MLA_MAX_DC && dr <= MLA_MAX_DR) {
		float *ql = c->s->q_lat, *qp = c->s->q_pe;
		for (uint64_t h = 0; h < H; h++) {
			memcpy(ql + h * dc, q + h * row, dc * 4);
			memcpy(qp + h * dr, q + h * row + dc, dr * 4);
		}
		pthread_mutex_lock(&cu_mla_lanes_mu);
		r = mla_attn_lanes_run(ql, dr ? qp : NULL, lane, (int)L, m.cache_off, out,
				       (int)m.n_ctx - 1, (int)H, (int)dc, (int)dr,
				       mf | ((m.word & ABI_MLAL_FP8) ? MLA_ATTN_FP8 : 0), scale);
		pthread_mutex_unlock(&cu_mla_lanes_mu);
	}
	c->cyc = mla_attn_lanes_cycles2(&c->bld, (int)L, (int)m.n_ctx - 1, (int)H, (int)dc, (int)dr,
					dpath, macs, imacs, NULL);
	return cu_status(r);
}

/* The CU side of each opcode a CU runs. */
static uint32_t (*const cu_ops[ABI_OP_COUNT])(struct cu_call *c, uint32_t op) = {
    [ABI_OP_GEMM_FP8] = cu_gemm,       [ABI_OP_RMSNORM] = cu_vec,
    [ABI_OP_ROPE] = cu_rope,	       [ABI_OP_ACT_QUANT] = cu_act_quant,
    [ABI_OP_SILU_MUL] = cu_vec,	       [ABI_OP_RESIDUAL_ADD] = cu_vec,
    [ABI_OP_SOFTMAX] = cu_vec,	       [ABI_OP_MLA_ATTN] = cu_mla,
    [ABI_OP_KV_APPEND] = cu_kv_append, [ABI_OP_GEMV] = cu_gemv,
    [ABI_OP_MOE_ROUTE] = cu_route,     [ABI_OP_MLA_ATTN_LANES] = cu_mla_lanes,
    [ABI_OP_GATHER] = cu_rows,	       [ABI_OP_COMBINE] = cu_rows,
};

uint32_t backend_cu_exec(uint32_t op, const uint32_t *args,
			 void *(*ptr)(void *ctx, uint64_t phys, uint64_t len), void *ctx,
			 struct backend_cu_scratch *s, uint32_t bw_mbps, uint32_t clk_khz,
			 uint64_t *cycles)
{
	struct cu_call c = {.args = args, .ptr = ptr, .ctx = ctx, .s = s};
	*cycles = 0;
	if (op >= ABI_OP_COUNT || !cu_ops[op])
		return 0x1FFu; /* not a CU opcode */
	hls_build_default(&c.bld);
	if (clk_khz)
		c.bld.clock_mhz = clk_khz / 1000.0;
	if (bw_mbps)
		c.bld.bank_gbps = bw_mbps / 1000.0;
	uint32_t st = cu_ops[op](&c, op);
	*cycles = c.cyc > 0 ? (uint64_t)c.cyc : 0;
	return st;
}

int backend_op_fw_sync(uint32_t op)
{
	return op == ABI_OP_BARRIER || op == ABI_OP_FENCE || op == ABI_OP_TIMESTAMP ||
	       op == ABI_OP_NOP;
}

uint64_t backend_fw_cmd_ns(const struct board_desc *bd, uint32_t op)
{
	uint64_t take = board_fw_take_ns(bd, op);
	if (backend_op_fw_sync(op))
		return take + board_fw_cmd_ns(bd, BOARD_FW_SYNC);
	return take + board_fw_cmd_ns(bd, BOARD_FW_START) + board_fw_cmd_ns(bd, BOARD_FW_DONE);
}

const struct board_cu *backend_blk_cu(const struct board_desc *bd, uint32_t k)
{
	for (uint32_t i = 0, n = 0; i < bd->n_cus; i++)
		if (backend_kernel_driven(bd->cu[i].kernel) && n++ == k)
			return &bd->cu[i];
	return NULL;
}

int64_t backend_cmd_cycles(const struct abi_cmd *cmd, uint32_t bw_mbps, uint32_t clk_khz,
			   const struct board_cu *cu)
{
	struct hls_build bld;
	hls_build_default(&bld);
	if (cu)
		bld_pe(&bld, cu->tm, cu->tn);
	if (clk_khz)
		bld.clock_mhz = clk_khz / 1000.0;
	if (bw_mbps)
		bld.bank_gbps = bw_mbps / 1000.0;
	uint32_t op = ABI_W0_OP(cmd->hdr.word0);
	const struct abi_vec *v = &cmd->u.vec;
	switch (op) {
	case ABI_OP_GEMM_FP8:
		return fp8_gemm_cycles(&bld, (int)cmd->u.gemm.m, (int)cmd->u.gemm.n,
				       (int)cmd->u.gemm.k, cmd->u.gemm.flags, NULL);
	case ABI_OP_RMSNORM:
	case ABI_OP_ROPE:
	case ABI_OP_ACT_QUANT:
	case ABI_OP_SILU_MUL:
	case ABI_OP_RESIDUAL_ADD:
	case ABI_OP_SOFTMAX: {
		int vop = vec_op_of(op);
		return vec_ops_cycles(&bld, vop, (int)v->rows, (int)v->cols, 0, NULL);
	}
	case ABI_OP_GATHER:
		return vec_ops_cycles2(&bld, VEC_OP_GATHER, (int)v->rows, (int)v->cols, 1, 0, NULL);
	case ABI_OP_COMBINE:
		return vec_ops_cycles2(&bld, VEC_OP_COMBINE, (int)v->rows, (int)v->cols,
				       (int)v->param_k, 0, NULL);
	case ABI_OP_MLA_ATTN:
		return mla_attn_cycles2(
		    &bld, 1, (int)cmd->u.mla.n_ctx - 1, (int)cmd->u.mla.n_heads,
		    (int)cmd->u.mla.kv_lora, (int)cmd->u.mla.rope, MLA_CACHE_F32,
		    cu && cu->lane_macs ? (int)cu->lane_macs : MLA_ATTN_MACS, NULL);
	case ABI_OP_MOE_ROUTE:
		return moe_route_cycles(&bld, (int)cmd->u.route.e, (int)cmd->u.route.k,
					(int)(cmd->u.route.groups & 0xFFFFu),
					(int)(cmd->u.route.groups >> 16), cmd->u.route.flags,
					cmd->u.route.rows ? (int)cmd->u.route.rows : 1);
	case ABI_OP_KV_APPEND:
		return kv_cycles(&bld, &cmd->u.kv);
	default:
		return 0;
	}
}
