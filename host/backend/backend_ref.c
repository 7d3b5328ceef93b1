/*
 * backend_ref.c - backend "ref", the reference card (backend.h, backend_impl.h): runs the same
 * command packets in process, at once, without timing: the firmware's decoder validates each
 * command exactly as on the card, then GEMM_FP8, GEMV, MOE_ROUTE and KV_APPEND run the hls/ C
 * functions (the definition of docs/numerics.md, so GEMMs and GEMVs are bit-identical to the card,
 * the unquantized ACT_F32 mode included, and the router chooses as the card does; GEMV runs when
 * the board has a GEMV CU) and the vector ops and MLA attention run host reference code in f32 with double
 * reductions and libm (the independent side of the shared op test, host/tests/test_backend_ops.c).
 * DMA_FILL moves its bytes through the DMA driver (backend_dma: drivers/dma.h, engine emul on
 * this card's memory, channel 0), as on the emulated card.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "backend/backend_impl.h"
#include "e4m3.h"
#include "firmware/fw.h"

struct cpu {
	struct backend b;		      /* common head */
	struct backend_mem mem;		      /* bank memory */
	uint64_t seq;			      /* lists run */
	uint32_t n;			      /* commands of the last list */
	struct abi_cpl cpl[BACKEND_MAX_LIST]; /* its completions */
	struct backend_stats st;	      /* totals */
	struct backend_cu_scratch cu;	      /* the CU side's working memory */
	struct backend_cu_scratch cu_attn;    /* the striped attention's (its lanes' wiring) */
	struct backend_dma dma;		      /* the DMA driver that does the fills */
};

static struct cpu *cpu_of(struct backend *b)
{
	return b->impl;
}

static void *cpu_phys(void *ctx, uint64_t phys, uint64_t len)
{
	return backend_mem_phys(ctx, phys, len);
}

static int cpu_alloc(struct backend *b, uint32_t bank, size_t bytes, size_t align,
		     struct backend_buf **out)
{
	return backend_mem_alloc(&cpu_of(b)->mem, bank, bytes, align, out);
}
static void cpu_free_buf(struct backend *b, struct backend_buf *buf)
{
	backend_mem_release(&cpu_of(b)->mem, buf);
}
static int cpu_write(struct backend *b, struct backend_buf *buf, size_t off, const void *src,
		     size_t n)
{
	void *p = backend_mem_ptr(&cpu_of(b)->mem, buf, off, n);
	if (!p)
		return -ERANGE;
	memcpy(p, src, n);
	return 0;
}
static int cpu_read(struct backend *b, struct backend_buf *buf, size_t off, void *dst, size_t n)
{
	void *p = backend_mem_ptr(&cpu_of(b)->mem, buf, off, n);
	if (!p)
		return -ERANGE;
	memcpy(dst, p, n);
	return 0;
}

static uint64_t a64(const uint32_t *a, size_t byte_off)
{
	return (uint64_t)a[byte_off / 4] | (uint64_t)a[byte_off / 4 + 1] << 32;
}
#define PHYS(field) a64(fc->args, offsetof(struct abi_cmd, field) - 32)

/* Host reference of the vector opcodes. */
static uint32_t cpu_vec(struct cpu *c, const struct fw_cmd *fc)
{
	const struct abi_vec *v = &fc->raw.u.vec;
	uint64_t R = v->rows, C = v->cols, lda = v->lda ? v->lda : C, ldo = v->ldo ? v->ldo : C;
	uint64_t xl = ((R - 1) * lda + C) * 4, ol = ((R - 1) * ldo + C) * 4;
	float pf;
	memcpy(&pf, &v->param_f, 4);
	const float *x = backend_mem_phys(&c->mem, PHYS(u.vec.x), xl);
	if (!x)
		return 0xE0;
	if (fc->op == ABI_OP_ACT_QUANT) {
		uint8_t *q = backend_mem_phys(&c->mem, PHYS(u.vec.out), R * C);
		float *qs = backend_mem_phys(&c->mem, PHYS(u.vec.out2), R * ((C + 127) / 128) * 4);
		if (!q || !qs)
			return 0xE1;
		for (uint64_t r = 0; r < R; r++)
			for (uint64_t g = 0; g * 128 < C; g++) {
				uint64_t n = C - g * 128 < 128 ? C - g * 128 : 128;
				const float *xr = x + r * lda + g * 128;
				float amax = 0;
				for (uint64_t i = 0; i < n; i++)
					amax = fabsf(xr[i]) > amax ? fabsf(xr[i]) : amax;
				float s = (amax > 1e-4f ? amax : 1e-4f) / 448.0f;
				qs[r * ((C + 127) / 128) + g] = s;
				for (uint64_t i = 0; i < n; i++)
					q[r * C + g * 128 + i] = e4m3_encode(xr[i] / s);
			}
		return 0;
	}
	float *o = backend_mem_phys(&c->mem, PHYS(u.vec.out), ol);
	if (!o)
		return 0xE1;
	const float *x2 = NULL, *w = NULL, *tab = NULL;
	if (fc->op == ABI_OP_SILU_MUL || fc->op == ABI_OP_RESIDUAL_ADD)
		x2 = backend_mem_phys(&c->mem, PHYS(u.vec.x2), xl);
	if (fc->op == ABI_OP_RMSNORM)
		w = backend_mem_phys(&c->mem, PHYS(u.vec.w), C * 4);
	if (fc->op == ABI_OP_ROPE && v->w)
		return 0xE1; /* the position table is the emulated CU's (the batched path) */
	if (fc->op == ABI_OP_ROPE && v->tab)
		tab =
		    backend_mem_phys(&c->mem, PHYS(u.vec.tab), ((uint64_t)v->param_u + 1) * C * 4);
	for (uint64_t r = 0; r < R; r++) {
		const float *xr = x + r * lda;
		float *orow = o + r * ldo;
		switch (fc->op) {
		case ABI_OP_RMSNORM: {
			double ss = 0;
			for (uint64_t i = 0; i < C; i++)
				ss += (double)xr[i] * xr[i];
			float k = (float)(1.0 / sqrt(ss / (double)C + pf));
			for (uint64_t i = 0; i < C; i++)
				orow[i] = w[i] * (xr[i] * k);
			break;
		}
		case ABI_OP_ROPE:
			for (uint64_t i = 0; i < C / 2; i++) {
				float cs, sn;
				if (tab) {
					cs = tab[(uint64_t)v->param_u * C + 2 * i];
					sn = tab[(uint64_t)v->param_u * C + 2 * i + 1];
				} else {
					double th =
					    v->param_u * pow(pf, -2.0 * (double)i / (double)C);
					cs = (float)cos(th);
					sn = (float)sin(th);
				}
				float a0 = xr[2 * i], a1 = xr[2 * i + 1];
				orow[2 * i] = a0 * cs - a1 * sn;
				orow[2 * i + 1] = a0 * sn + a1 * cs;
			}
			break;
		case ABI_OP_SILU_MUL:
			for (uint64_t i = 0; i < C; i++)
				orow[i] = xr[i] / (1.0f + expf(-xr[i])) * x2[r * lda + i];
			break;
		case ABI_OP_RESIDUAL_ADD:
			for (uint64_t i = 0; i < C; i++)
				orow[i] = xr[i] + x2[r * lda + i];
			break;
		default: { /* SOFTMAX */
			float mx = -INFINITY;
			for (uint64_t i = 0; i < C; i++)
				mx = xr[i] > mx ? xr[i] : mx;
			double sum = 0;
			for (uint64_t i = 0; i < C; i++)
				sum += exp((double)xr[i] - mx);
			for (uint64_t i = 0; i < C; i++)
				orow[i] = (float)(exp((double)xr[i] - mx) / sum);
			break;
		}
		}
	}
	return 0;
}

/* Host reference of MLA_ATTN (absorbed form, docs/model.md, MLA) in f32 with double sums. */
static uint32_t cpu_mla(struct cpu *c, const struct fw_cmd *fc)
{
	const struct abi_mla *m = &fc->raw.u.mla;
	uint64_t H = m->n_heads, dc = m->kv_lora, dr = m->rope, row = dc + dr, T = m->n_ctx;
	float scale;
	memcpy(&scale, &m->scale, 4);
	const float *q = backend_mem_phys(&c->mem, PHYS(u.mla.q), H * row * 4);
	const float *kv = backend_mem_phys(&c->mem, PHYS(u.mla.kv), (uint64_t)m->ctx_cap * row * 4);
	float *out = backend_mem_phys(&c->mem, PHYS(u.mla.out), H * dc * 4);
	double *p = malloc(sizeof(double) * T), *acc = malloc(sizeof(double) * dc);
	if (!q || !kv || !out || !p || !acc) {
		free(p);
		free(acc);
		return 0xE0;
	}
	for (uint64_t h = 0; h < H; h++) {
		const float *qh = q + h * row;
		double mx = -INFINITY, sum = 0;
		for (uint64_t t = 0; t < T; t++) {
			double s = 0;
			for (uint64_t i = 0; i < row; i++)
				s += (double)qh[i] * kv[t * row + i];
			p[t] = s * scale;
			mx = p[t] > mx ? p[t] : mx;
		}
		for (uint64_t t = 0; t < T; t++)
			sum += (p[t] = exp(p[t] - mx));
		memset(acc, 0, sizeof(double) * dc);
		for (uint64_t t = 0; t < T; t++)
			for (uint64_t i = 0; i < dc; i++)
				acc[i] += p[t] / sum * kv[t * row + i];
		for (uint64_t i = 0; i < dc; i++)
			out[h * dc + i] = (float)acc[i];
	}
	free(p);
	free(acc);
	return 0;
}

static uint32_t cpu_dma(struct cpu *c, const struct fw_cmd *fc)
{
	const struct abi_dma_fill *d = &fc->raw.u.dma;
	uint64_t dst = PHYS(u.dma.dst);
	if (!backend_mem_phys(&c->mem, dst, d->bytes))
		return 0xE0;
	const void *src = NULL;
	if (d->flags & ABI_DMA_F_SRC_HOST) {
		src = (const void *)(uintptr_t)d->src;
	} else if (!(d->flags & ABI_DMA_F_PATTERN)) {
		src = backend_mem_phys(&c->mem, PHYS(u.dma.src), d->bytes);
		if (!src)
			return 0xE1;
	}
	if (backend_dma_fill(&c->dma, 0, dst, d->bytes, src,
			     (uint8_t)ABI_DMA_WORD_PATTERN(d->word)))
		return 0xE2; /* the driver's transfer failed */
	c->st.fills++;
	c->st.fill_bytes += d->bytes;
	return 0;
}

static int cpu_submit(struct backend *b, uint32_t queue, const struct abi_cmd *cmds, uint32_t n,
		      uint64_t *fence)
{
	struct cpu *c = cpu_of(b);
	static __thread struct fw_cmd fc;
	if (!n || n > BACKEND_MAX_LIST || queue >= FW_CFG_N_QUEUES)
		return -EINVAL;
	int failed_fence[ABI_MAX_FENCES] = {0};
	for (uint32_t i = 0; i < n; i++) {
		uint32_t detail = 0, st = fw_cmd_decode(&b->blk, &cmds[i], queue, &fc, &detail);
		if (st == ABI_ST_OK && (fc.flags & ABI_CMD_F_WAIT) &&
		    failed_fence[ABI_W3_WAIT(cmds[i].hdr.word3)])
			st = ABI_ST_DEP_ERROR;
		if (st == ABI_ST_OK) {
			uint64_t cyc;
			if (fc.op == ABI_OP_GEMM_FP8 || fc.op == ABI_OP_KV_APPEND ||
			    fc.op == ABI_OP_GEMV || fc.op == ABI_OP_MOE_ROUTE ||
			    fc.op == ABI_OP_MLA_ATTN_LANES || fc.op == ABI_OP_GATHER ||
			    fc.op == ABI_OP_COMBINE)
				detail = backend_cu_exec(
				    fc.op, fc.args, cpu_phys, &c->mem,
				    fc.op == ABI_OP_MLA_ATTN_LANES ? &c->cu_attn : &c->cu, 0, 0,
				    &cyc);
			else if (fc.op >= ABI_OP_RMSNORM && fc.op <= ABI_OP_SOFTMAX)
				detail = cpu_vec(c, &fc);
			else if (fc.op == ABI_OP_MLA_ATTN)
				detail = cpu_mla(c, &fc);
			else if (fc.op == ABI_OP_DMA_FILL)
				detail = cpu_dma(c, &fc);
			if (detail)
				st = fc.op == ABI_OP_DMA_FILL ? ABI_ST_DMA_ERROR : ABI_ST_CU_ERROR;
		}
		if (fc.flags & ABI_CMD_F_SIGNAL)
			failed_fence[ABI_W3_SIGNAL(cmds[i].hdr.word3)] = st != ABI_ST_OK;
		c->cpl[i] = (struct abi_cpl){
		    .tag = i,
		    .word1 = ABI_CPL_W1(st, ABI_W0_OP(cmds[i].hdr.word0), queue, ABI_CPL_CU_NONE),
		    .detail = detail,
		    .seq = (uint32_t)i};
	}
	c->n = n;
	*fence = ++c->seq;
	c->st.submits++;
	c->st.cmds += n;
	return 0;
}

static int cpu_wait(struct backend *b, uint64_t fence, uint32_t timeout_ms)
{
	struct cpu *c = cpu_of(b);
	(void)timeout_ms;
	if (fence != c->seq)
		return fence < c->seq ? 0 : -EINVAL;
	for (uint32_t i = 0; i < c->n; i++)
		if (ABI_CPL_STATUS(c->cpl[i].word1) != ABI_ST_OK)
			return -EIO;
	return 0;
}

static int cpu_completions(struct backend *b, const struct abi_cpl **cpl, uint32_t *n)
{
	*cpl = cpu_of(b)->cpl;
	*n = cpu_of(b)->n;
	return 0;
}

static int cpu_supports(struct backend *b, uint32_t op)
{
	return op < ABI_OP_COUNT && (op != ABI_OP_GEMV || cpu_of(b)->cu.lanes) &&
	       (op != ABI_OP_MLA_ATTN_LANES || cpu_of(b)->cu_attn.lanes);
}

static void cpu_stats(struct backend *b, struct backend_stats *s)
{
	*s = cpu_of(b)->st;
	backend_dma_stats(&cpu_of(b)->dma, s);
}

static int cpu_fault(struct backend *b, enum backend_fault f, uint32_t n)
{
	(void)b, (void)f, (void)n;
	return -ENOTSUP;
}

static void cpu_close(struct backend *b)
{
	struct cpu *c = cpu_of(b);
	backend_dma_close(&c->dma);
	backend_mem_free(&c->mem);
	backend_cu_scratch_free(&c->cu);
	backend_cu_scratch_free(&c->cu_attn);
	free(c);
}

static const struct backend_i cpu_iface = {
    .version = BACKEND_I_VERSION,
    .name = "ref",
    .close = cpu_close,
    .buf_alloc = cpu_alloc,
    .buf_free = cpu_free_buf,
    .buf_write = cpu_write,
    .buf_read = cpu_read,
    .submit = cpu_submit,
    .wait = cpu_wait,
    .completions = cpu_completions,
    .supports_op = cpu_supports,
    .stats = cpu_stats,
    .fault_set = cpu_fault,
};

int backend_ref_open(struct backend **out, const struct board_desc *bd, char *err, size_t errlen)
{
	*out = NULL;
	struct cpu *c = calloc(1, sizeof *c);
	if (!c) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	c->b.iface = &cpu_iface;
	c->b.impl = c;
	c->b.board = *bd;
	int r = backend_board_block(bd, &c->b.blk, err, errlen);
	if (!r && (r = backend_mem_init(&c->mem, &c->b.blk)))
		snprintf(err, errlen, "ref backend: cannot map the card's memory");
	if (!r &&
	    ((r = backend_cu_scratch_init(&c->cu)) || (r = backend_cu_scratch_init(&c->cu_attn))))
		snprintf(err, errlen, "ref backend: out of memory");
	if (!r) /* the reference card runs GEMV when the board has a GEMV CU */
		(void)backend_cu_wire(&c->cu, bd, &c->b.blk, "fp8_gemv");
	if (!r) /* and the striped attention with the attention CU's lanes */
		(void)backend_cu_wire(&c->cu_attn, bd, &c->b.blk, "mla_attn_lanes");
	char e2[240] = "";
	if (!r && (r = backend_dma_open(&c->dma, bd, &c->b.blk, &c->mem, e2, sizeof e2)))
		snprintf(err, errlen, "ref backend: %s", e2);
	if (r) {
		backend_cu_scratch_free(&c->cu);
		backend_cu_scratch_free(&c->cu_attn);
		backend_mem_free(&c->mem);
		free(c);
		return r;
	}
	*out = &c->b;
	return 0;
}
