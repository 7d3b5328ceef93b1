/*
 * backend_xrt.c - backend "xrt" (backend.h, backend_xrt.h): a real card through XRT's native C API
 * (host/backend/xrt_dev.c). Data flow: engine -> backend_submit -> direct mode (this file translates each
 * ABI command into a CU run: xrtRunSetArg per kernel argument of bitstream/kernels.c, xrtRunStart,
 * xrtRunWaitFor) or firmware mode (the list is pushed into a command ring in a control BO, the
 * card firmware runs it and posts completions into the completion ring of the same BO).
 *
 * Card addresses: buffers get ABI card addresses from the same bump allocator as the cpu and emu
 * backends (backend_mem, whose bank mappings are never touched here), and each buffer is one BO
 * in its bank's memory group. An operand address resolves to the buffer containing it; an operand
 * that starts inside a buffer is bound through a sub-buffer BO (xrtBOSubAlloc) created once and
 * cached with the buffer, so steady-state decoding allocates nothing.
 *
 * Direct mode executes a list in order on the host thread that waits for it (backend_wait), one
 * run at a time, which satisfies every fence and barrier of the list by construction. Operations
 * a CU does not do in one run are done by the host around it, as the firmware does on the card:
 * MLA_ATTN's q operand is split into the kernel's q_lat/q_pe ports (download, split, upload),
 * ROPE gets its per-row position array (and, without a table, its cos/sin row) in scratch BOs.
 * Unused pointer arguments are bound to a 4 KiB scratch BO of the argument's group: the kernels
 * test their flags, not the pointers (hls/fp8_gemm/fp8_gemm.c).
 *
 * DMA fills, direct mode: the host starts them, through the DMA driver (drivers/dma.h). At open the
 * backend opens engine dma_xrt_i on its own BOs (dma_config.xrt_bos: a resolver maps a card range
 * to the buffer's BO; write/read are xrt_dev_bo_upload/_download, i.e. xrtBOWrite + xrtBOSync with
 * the entry points xrt_dev resolved), one driver channel per DMA channel of the board. A DMA_FILL
 * is one or more waited driver transfers on the command's channel: host source and pattern (a
 * buffer of the byte) as H2C, a card source staged through host scratch (C2H, then H2C). A failed
 * transfer ends the command ABI_ST_DMA_ERROR with the driver's errno as detail;
 * BACKEND_FAULT_DMA_ERROR is the driver's countdown fault, and backend_stats reports the driver's
 * statistics. Firmware mode: the card firmware starts the card's DMA channels for each DMA_FILL
 * and the host opens no driver.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <xrt/xclbin.h>

#include "backend/backend_impl.h"
#include "backend/backend_xrt.h"
#include "bitstream/bitstream.h"
#include "firmware/fw.h"
#include "hls/mla_attn/mla_attn.h"
#include "hls/vec_ops/vec_ops.h"
#include "backend/xrt_dev.h"
#include "dma.h"
#include "dma_board.h"

#define XB_MAX_GROUPS 128u	 /* memory groups with a scratch BO */
#define XB_SCRATCH_MIN 4096u	 /* bytes of the smallest scratch BO */
#define XB_POLL_NS 50000L	 /* firmware mode: completion-ring poll period */
#define XB_RING_LOG2 10u	 /* default command-ring slots: BACKEND_MAX_LIST */
#define XB_PAT_BYTES (1u << 20)	 /* pattern source: one descriptor's length */
#define XB_FILL_CHUNK (1u << 20) /* card-source fills: bytes staged in host scratch at once */
#define XB_DMA_TIMEOUT_NS 10000000000ll /* host ns one driver transfer may take */

#ifdef __SANITIZE_ADDRESS__
/*
 * libxrt_coreutil 2.13 calls aligned_alloc(4096, 16) for BO bookkeeping. glibc (and C17, DR 460)
 * accept a size that is not a multiple of the alignment; ASan reports it and aborts. Programs of
 * the ASan build that can open backend xrt get this definition (the executable's wins symbol
 * lookup): the size is rounded up, so XRT still runs under ASan.
 */
void *aligned_alloc(size_t alignment, size_t size)
{
	void *p = NULL;
	if (alignment < sizeof(void *))
		alignment = sizeof(void *);
	size = size ? (size + alignment - 1) / alignment * alignment : alignment;
	return posix_memalign(&p, alignment, size) ? NULL : p;
}
#endif

/* A sub-buffer of a buffer, starting rel bytes in and running to its end. */
struct xsub {
	uint64_t rel;	      /* bytes from the buffer start */
	struct xrt_dev_bo bo; /* xrtBOSubAlloc handle */
};

/* One backend buffer = one BO. */
struct xbuf {
	struct backend_buf *buf; /* the card-address range (backend_mem) */
	uint64_t off;		 /* bytes into the bank */
	uint64_t bytes;		 /* size */
	struct xrt_dev_bo bo;	 /* the BO, in the bank's memory group */
	struct xsub *sub;	 /* [n_sub] cached sub-buffers */
	uint32_t n_sub, cap_sub; /* used / allocated entries of sub */
};

/* Buffers of one bank, sorted by offset (the bump allocator hands out ascending offsets). */
struct xbank {
	struct xbuf **v; /* [n] */
	uint32_t n, cap; /* used / allocated */
	int group;	 /* memory group (MEM_TOPOLOGY index) */
};

/* A growable scratch BO. */
struct xscratch {
	struct xrt_dev_bo bo; /* handle, NULL until first use */
};

/* One CU of the board block. */
struct xcu {
	uint32_t dcu;				  /* index into board_desc.cu[] */
	const struct bitstream_kernel *k;	  /* its argument list */
	int group[BITSTREAM_MAX_ARGS];		  /* memory group per pointer argument, -1 scalar */
	struct xrt_dev_run run;			  /* reusable run, opened on first use */
	struct xscratch s_pos, s_tab, s_ql, s_qp; /* ROPE positions/table, MLA q split */
};

struct xb {
	struct backend b;		  /* common head (b.impl = this) */
	struct backend_mem mem;		  /* card-address allocator (mappings unused) */
	struct xrt_dev *d;		  /* XRT device */
	uint32_t mode;			  /* enum backend_xrt_mode (DIRECT or FIRMWARE) */
	int noop;			  /* XCL_EMULATION_MODE=noop */
	struct xbank bank[ABI_MAX_BANKS]; /* buffers per bank */
	/* direct mode: the DMA driver (drivers/dma.h, engine xrt on this backend's BOs) whose
	 * channels carry every DMA_FILL; NULL in firmware mode and on a board without DMA */
	struct dma_dev *dma;
	struct dma_bank dma_banks[ABI_MAX_BANKS]; /* its banks (the board's) */
	struct dma_xrt_bos dma_bos;		/* its view of the buffers: resolve, write, read */
	struct dma_sg *dma_sg;			/* [ring entries] elements of one transfer */
	uint8_t *dma_pat;			/* [XB_PAT_BYTES] source of a pattern fill */
	struct xcu cu[ABI_MAX_CUS];		/* indexed like b.blk.cus */
	uint32_t n_cu;				/* used entries of cu */
	struct xrt_dev_bo dummy[XB_MAX_GROUPS]; /* 4 KiB per group, bound to unused pointers */
	uint32_t fence[ABI_MAX_FENCES];		/* fence values (direct mode) */
	uint8_t fence_bad[ABI_MAX_FENCES];	/* 1: the last signaller of the fence failed */
	uint8_t *host;				/* host scratch for fills and the q split */
	size_t host_bytes;			/* its size */
	/* the list in flight */
	struct abi_cmd cmds[BACKEND_MAX_LIST]; /* commands, tags = list index */
	struct abi_cpl cpl[BACKEND_MAX_LIST];  /* completions by list index */
	uint8_t seen[BACKEND_MAX_LIST];	       /* firmware mode: completion received */
	uint32_t n, next, done, queue;	       /* commands, next to run, completed, ring */
	int inflight;			       /* a list awaits backend_wait */
	uint64_t seq;			       /* lists submitted */
	uint64_t t_submit;		       /* host ns at submit */
	uint32_t cpl_seq;		       /* completions produced (direct mode) */
	struct timespec t0;		       /* open time: timestamps count from here */
	struct backend_stats st;	       /* totals */
	struct backend_xrt_counters ct;	       /* control-path counters */
	char err[320];			       /* last error */
	/* firmware mode */
	struct xrt_dev_bo ctl;			    /* control BO: board block, telemetry, rings */
	struct backend_xrt_fw_layout lay;	    /* its layout */
	uint8_t *shadow;			    /* host copy of the control BO */
	struct abi_ring_view cmdq[FW_CFG_N_QUEUES]; /* producer views (on shadow) */
	struct abi_ring_view cplq;		    /* consumer view (on shadow) */
};

static struct xb *xb_of(struct backend *b)
{
	return b->impl;
}

static uint64_t xb_now(const struct xb *x)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)(t.tv_sec - x->t0.tv_sec) * 1000000000ull + (uint64_t)t.tv_nsec -
	       (uint64_t)x->t0.tv_nsec;
}

static int xb_err(struct xb *x, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int xb_err(struct xb *x, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(x->err, sizeof x->err, fmt, ap);
	va_end(ap);
	return code;
}

/* --- buffers ------------------------------------------------------------------------------ */

/* Index of the first buffer of bank k with offset > off (upper bound). */
static uint32_t xb_upper(const struct xbank *k, uint64_t off)
{
	uint32_t lo = 0, hi = k->n;
	while (lo < hi) {
		uint32_t mid = (lo + hi) / 2;
		if (k->v[mid]->off <= off)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* The buffer of bank holding [off, off + len), or NULL. */
static struct xbuf *xb_find(struct xb *x, uint32_t bank, uint64_t off, uint64_t len)
{
	if (bank >= ABI_MAX_BANKS)
		return NULL;
	struct xbank *k = &x->bank[bank];
	uint32_t i = xb_upper(k, off);
	if (!i)
		return NULL;
	struct xbuf *f = k->v[i - 1];
	if (off - f->off > f->bytes || len > f->bytes - (off - f->off))
		return NULL;
	return f;
}

static int xb_alloc(struct backend *b, uint32_t bank, size_t bytes, size_t align,
		    struct backend_buf **out)
{
	struct xb *x = xb_of(b);
	*out = NULL;
	if (bank >= b->board.n_banks)
		return -EINVAL;
	struct xbank *k = &x->bank[bank];
	if (k->n == k->cap) {
		uint32_t cap = k->cap ? 2 * k->cap : 64;
		// NOLINTNEXTLINE(bugprone-sizeof-expression): v is an array of pointers
		struct xbuf **v = realloc(k->v, sizeof(*v) * cap);
		if (!v)
			return -ENOMEM;
		k->v = v;
		k->cap = cap;
	}
	struct xbuf *f = calloc(1, sizeof *f);
	if (!f)
		return -ENOMEM;
	int r = backend_mem_alloc(&x->mem, bank, bytes, align, &f->buf);
	if (r) {
		free(f);
		return r;
	}
	f->off = ABI_ADDR_OFF(backend_buf_addr(f->buf, 0));
	f->bytes = bytes;
	if ((r = xrt_dev_bo_alloc(x->d, bytes, k->group, &f->bo))) {
		backend_mem_release(&x->mem, f->buf);
		free(f);
		return r;
	}
	uint32_t at = xb_upper(k, f->off); /* == k->n for a bump allocator; kept general */
	// NOLINTNEXTLINE(bugprone-sizeof-expression): k->v is an array of pointers
	memmove(&k->v[at + 1], &k->v[at], sizeof(*k->v) * (k->n - at));
	k->v[at] = f;
	k->n++;
	x->ct.bufs++;
	*out = f->buf;
	return 0;
}

static void xb_buf_destroy(struct xb *x, struct xbuf *f)
{
	for (uint32_t i = 0; i < f->n_sub; i++)
		xrt_dev_bo_free(x->d, &f->sub[i].bo);
	free(f->sub);
	xrt_dev_bo_free(x->d, &f->bo);
	backend_mem_release(&x->mem, f->buf);
	free(f);
	x->ct.bufs--;
}

static void xb_free_buf(struct backend *b, struct backend_buf *buf)
{
	struct xb *x = xb_of(b);
	if (!buf)
		return;
	uint32_t bank = backend_buf_bank(buf);
	uint64_t off = ABI_ADDR_OFF(backend_buf_addr(buf, 0));
	struct xbank *k = &x->bank[bank];
	uint32_t i = xb_upper(k, off);
	if (!i || k->v[i - 1]->buf != buf)
		return;
	struct xbuf *f = k->v[i - 1];
	// NOLINTNEXTLINE(bugprone-sizeof-expression): k->v is an array of pointers
	memmove(&k->v[i - 1], &k->v[i], sizeof(*k->v) * (k->n - i));
	k->n--;
	xb_buf_destroy(x, f);
}

static struct xbuf *xb_of_buf(struct xb *x, struct backend_buf *buf)
{
	uint32_t bank = backend_buf_bank(buf);
	struct xbuf *f = xb_find(x, bank, ABI_ADDR_OFF(backend_buf_addr(buf, 0)), 0);
	return f && f->buf == buf ? f : NULL;
}

static int xb_write(struct backend *b, struct backend_buf *buf, size_t off, const void *src,
		    size_t n)
{
	struct xb *x = xb_of(b);
	struct xbuf *f = xb_of_buf(x, buf);
	if (!f || off > f->bytes || n > f->bytes - off)
		return -ERANGE;
	if (!n)
		return 0;
	uint64_t t = xb_now(x);
	int r = xrt_dev_bo_upload(x->d, &f->bo, src, n, off);
	x->st.h2c_bytes += n;
	x->st.h2c_ns += xb_now(x) - t;
	return r;
}

static int xb_read(struct backend *b, struct backend_buf *buf, size_t off, void *dst, size_t n)
{
	struct xb *x = xb_of(b);
	struct xbuf *f = xb_of_buf(x, buf);
	if (!f || off > f->bytes || n > f->bytes - off)
		return -ERANGE;
	if (!n)
		return 0;
	uint64_t t = xb_now(x);
	int r = xrt_dev_bo_download(x->d, &f->bo, dst, n, off);
	x->st.c2h_bytes += n;
	x->st.c2h_ns += xb_now(x) - t;
	return r;
}

/* The BO to bind for card address a covering len bytes: the buffer's own BO or a cached
 * sub-buffer. Returns NULL when no buffer holds the range. */
static struct xrt_dev_bo *xb_operand(struct xb *x, uint64_t a, uint64_t len)
{
	uint32_t bank = ABI_ADDR_BANK(a);
	uint64_t off = ABI_ADDR_OFF(a);
	struct xbuf *f = xb_find(x, bank, off, len ? len : 1);
	if (!f)
		return NULL;
	uint64_t rel = off - f->off;
	if (!rel)
		return &f->bo;
	for (uint32_t i = 0; i < f->n_sub; i++)
		if (f->sub[i].rel == rel)
			return &f->sub[i].bo;
	if (f->n_sub == f->cap_sub) {
		uint32_t cap = f->cap_sub ? 2 * f->cap_sub : 4;
		struct xsub *s = realloc(f->sub, sizeof(*s) * cap);
		if (!s)
			return NULL;
		f->sub = s;
		f->cap_sub = cap;
	}
	struct xsub *s = &f->sub[f->n_sub];
	if (xrt_dev_bo_sub(x->d, &f->bo, f->bytes - rel, rel, &s->bo))
		return NULL;
	s->rel = rel;
	f->n_sub++;
	x->ct.sub_bos++;
	return &s->bo;
}

/* The 4 KiB scratch BO of group g, bound to pointer arguments an op does not use. */
static struct xrt_dev_bo *xb_dummy(struct xb *x, int g)
{
	if (g < 0 || (uint32_t)g >= XB_MAX_GROUPS)
		return NULL;
	if (!x->dummy[g].h) {
		if (xrt_dev_bo_alloc(x->d, XB_SCRATCH_MIN, g, &x->dummy[g]))
			return NULL;
		x->ct.scratch_bos++;
	}
	return &x->dummy[g];
}

/* Scratch BO s of at least bytes in group g (grows by reallocation). */
static struct xrt_dev_bo *xb_scratch(struct xb *x, struct xscratch *s, int g, size_t bytes)
{
	if (s->bo.h && s->bo.size >= bytes)
		return &s->bo;
	size_t sz = XB_SCRATCH_MIN;
	while (sz < bytes)
		sz *= 2;
	xrt_dev_bo_free(x->d, &s->bo);
	if (xrt_dev_bo_alloc(x->d, sz, g < 0 ? 0 : g, &s->bo))
		return NULL;
	x->ct.scratch_bos++;
	return &s->bo;
}

static void *xb_host(struct xb *x, size_t bytes)
{
	if (x->host_bytes >= bytes)
		return x->host;
	void *p = realloc(x->host, bytes);
	if (!p)
		return NULL;
	x->host = p;
	x->host_bytes = bytes;
	return p;
}

/* --- direct mode: one command --------------------------------------------------------- */

/* An argument binding of one run. */
struct xarg {
	uint64_t addr;	       /* card address of a pointer argument, 0 = unused (scratch) */
	uint64_t len;	       /* bytes the kernel reads/writes there */
	struct xrt_dev_bo *bo; /* preset BO (scratch), else resolved from addr */
	uint32_t u;	       /* scalar value */
	float f;	       /* scalar value of a "float" argument */
};

/* Picks the CU for op whose argument groups match the most operand banks (XRT refuses a BO in a
 * group the argument is not connected to on a card whose xclbin restricts connectivity). */
static int xb_pick_cu(struct xb *x, uint32_t op, const struct xarg *a)
{
	int best = -1, best_score = -1;
	for (uint32_t c = 0; c < x->n_cu; c++) {
		if (!(x->b.blk.cus[c].ops_mask >> op & 1))
			continue;
		int score = 0;
		for (uint32_t i = 0; i < x->cu[c].k->n_args; i++)
			if (x->cu[c].k->arg[i].bundle && a[i].addr &&
			    x->bank[ABI_ADDR_BANK(a[i].addr)].group == x->cu[c].group[i])
				score++;
		if (score > best_score) {
			best = (int)c;
			best_score = score;
		}
	}
	return best;
}

static int xb_is_float(const struct bitstream_arg *a)
{
	return !strcmp(a->type, "float");
}

/* Binds a[] to CU c's run, starts it and waits. Returns an ABI status, *detail the XRT error. */
static uint32_t xb_run(struct xb *x, uint32_t c, const struct xarg *a, uint64_t timeout_ns,
		       uint32_t *detail)
{
	struct xcu *u = &x->cu[c];
	if (!u->run.h) {
		if (xrt_dev_run_open(x->d, u->dcu, &u->run)) {
			*detail = EIO;
			return ABI_ST_NO_CU;
		}
		x->ct.runs_open++;
	}
	for (uint32_t i = 0; i < u->k->n_args; i++) {
		const struct bitstream_arg *ka = &u->k->arg[i];
		int r;
		if (ka->bundle) {
			struct xrt_dev_bo *bo = a[i].bo;
			if (!bo && a[i].addr)
				bo = xb_operand(x, a[i].addr, a[i].len);
			else if (!bo)
				bo = xb_dummy(x, u->group[i]);
			if (!bo) {
				*detail = i;
				return a[i].addr ? ABI_ST_BAD_ADDR : ABI_ST_CU_ERROR;
			}
			r = xrt_dev_run_set_bo(x->d, &u->run, i, bo);
		} else if (xb_is_float(ka)) {
			r = xrt_dev_run_set_f32(x->d, &u->run, i, a[i].f);
		} else {
			r = xrt_dev_run_set_u32(x->d, &u->run, i, a[i].u);
		}
		if (r) {
			*detail = i;
			return ABI_ST_CU_ERROR;
		}
	}
	uint64_t t = xb_now(x);
	if (xrt_dev_run_start(x->d, &u->run)) {
		*detail = EIO;
		return ABI_ST_CU_ERROR;
	}
	x->ct.runs_started++;
	x->ct.cu_runs[c]++;
	unsigned ms = (unsigned)((timeout_ns + 999999) / 1000000);
	int r = xrt_dev_run_wait(x->d, &u->run, ms ? ms : 1);
	x->st.cu_busy_ns[c] += xb_now(x) - t;
	if (r == -ETIMEDOUT) {
		*detail = ms;
		return ABI_ST_CU_TIMEOUT;
	}
	if (r) {
		*detail = EIO;
		return ABI_ST_CU_ERROR;
	}
	x->ct.runs_done++;
	return ABI_ST_OK;
}

static int xb_arg(const struct bitstream_kernel *k, const char *name)
{
	for (uint32_t i = 0; i < k->n_args; i++)
		if (!strcmp(k->arg[i].name, name))
			return (int)i;
	return 0;
}

/* GEMM_FP8 -> fp8_gemm(x, xs, w, ws, w2, ws2, y, res, route_w, M, N, K, flags, lda, ldy). */
static uint32_t xb_gemm(struct xb *x, const struct abi_gemm *g, struct xarg *a)
{
	uint64_t M = g->m, N = g->n, K = g->k, kb = (K + 127) / 128, nb = (N + 127) / 128;
	uint32_t f = g->flags, xf = f & (ABI_GEMM_F_X_F32 | ABI_GEMM_F_X_BF16);
	uint64_t xbytes = xf == ABI_GEMM_F_X_F32 ? 4 : xf ? 2 : 1;
	uint64_t lda = g->lda ? g->lda : K, ldy = g->ldy ? g->ldy : N;
	(void)x;
	a[0] = (struct xarg){.addr = g->a, .len = ((M - 1) * lda + K) * xbytes};
	if (!xf)
		a[1] = (struct xarg){.addr = g->sa, .len = M * kb * 4};
	a[2] = (struct xarg){.addr = g->w, .len = N * K};
	a[3] = (struct xarg){.addr = g->sw, .len = nb * kb * 4};
	if (f & ABI_GEMM_F_SILU_MUL) {
		a[4] = (struct xarg){.addr = g->w + N * K, .len = N * K};
		a[5] = (struct xarg){.addr = g->sw + nb * kb * 4, .len = nb * kb * 4};
	}
	a[6] = (struct xarg){.addr = g->y,
			     .len = ((M - 1) * ldy + N) * ((f & ABI_GEMM_F_Y_BF16) ? 2 : 4)};
	if (f & ABI_GEMM_F_RESIDUAL)
		a[7] = a[6];
	if (f & ABI_GEMM_F_ACCUM)
		a[8] = (struct xarg){.addr = g->sa, .len = M * 4};
	a[9].u = g->m;
	a[10].u = g->n;
	a[11].u = g->k;
	a[12].u = f;
	a[13].u = (uint32_t)lda;
	a[14].u = (uint32_t)ldy;
	return ABI_ST_OK;
}

/* Vector ops -> vec_ops(op, a, b, y, q, qs, pos, rows, n, lda, ldy, eps, flags). */
static uint32_t xb_vec(struct xb *x, uint32_t op, const struct abi_vec *v, struct xcu *u,
		       struct xarg *a, uint32_t *detail)
{
	uint64_t R = v->rows, C = v->cols, lda = v->lda ? v->lda : C, ldo = v->ldo ? v->ldo : C;
	uint64_t xl = ((R - 1) * lda + C) * 4, ol = ((R - 1) * ldo + C) * 4;
	float pf;
	memcpy(&pf, &v->param_f, 4);
	a[0].u = op == ABI_OP_RMSNORM	     ? VEC_OP_RMSNORM
		 : op == ABI_OP_ROPE	     ? VEC_OP_ROPE
		 : op == ABI_OP_ACT_QUANT    ? VEC_OP_ACT_QUANT
		 : op == ABI_OP_SILU_MUL     ? VEC_OP_SILU_MUL
		 : op == ABI_OP_RESIDUAL_ADD ? VEC_OP_ADD
					     : VEC_OP_SOFTMAX;
	a[1] = (struct xarg){.addr = v->x, .len = xl};
	a[7].u = v->rows;
	a[8].u = v->cols;
	a[9].u = (uint32_t)lda;
	a[10].u = (uint32_t)ldo;
	switch (op) {
	case ABI_OP_RMSNORM:
		a[2] = (struct xarg){.addr = v->w, .len = C * 4};
		a[3] = (struct xarg){.addr = v->out, .len = ol};
		a[11].f = pf;
		break;
	case ABI_OP_ACT_QUANT:
		a[4] = (struct xarg){.addr = v->out, .len = R * C};
		a[5] = (struct xarg){.addr = v->out2, .len = R * ((C + 127) / 128) * 4};
		a[10].u = v->cols;
		break;
	case ABI_OP_SILU_MUL:
	case ABI_OP_RESIDUAL_ADD:
		a[2] = (struct xarg){.addr = v->x2, .len = xl};
		a[3] = (struct xarg){.addr = v->out, .len = ol};
		break;
	case ABI_OP_SOFTMAX:
		a[3] = (struct xarg){.addr = v->out, .len = ol};
		break;
	default: { /* ROPE: positions per row; the table, or the cos/sin row of plain RoPE */
		a[3] = (struct xarg){.addr = v->out, .len = ol};
		int gp = u->group[xb_arg(u->k, "pos")], gb = u->group[xb_arg(u->k, "b")];
		int32_t *pos = xb_host(x, R * 4 + C * 4);
		struct xrt_dev_bo *pb = xb_scratch(x, &u->s_pos, gp, R * 4);
		if (!pos || !pb) {
			*detail = ENOMEM;
			return ABI_ST_CU_ERROR;
		}
		for (uint64_t i = 0; i < R; i++) /* row i at param_u + i / param_k (table) */
			pos[i] =
			    v->tab ? (int32_t)(v->param_u + (v->param_k ? i / v->param_k : 0)) : 0;
		if (xrt_dev_bo_upload(x->d, pb, pos, R * 4, 0)) {
			*detail = EIO;
			return ABI_ST_CU_ERROR;
		}
		a[6].bo = pb;
		if (v->tab) {
			a[2] = (struct xarg){.addr = v->tab,
					     .len = ((uint64_t)v->param_u +
						     (v->param_k ? (R - 1) / v->param_k : 0) + 1) *
						    C * 4};
		} else {
			// cppcheck-suppress invalidPointerCast ; the table's f32 rows follow its positions
			float *row = (float *)(pos + R);
			for (uint64_t i = 0; i < C / 2; i++) {
				double th =
				    (double)v->param_u * pow(pf, -2.0 * (double)i / (double)C);
				row[2 * i] = (float)cos(th);
				row[2 * i + 1] = (float)sin(th);
			}
			struct xrt_dev_bo *tb = xb_scratch(x, &u->s_tab, gb, C * 4);
			if (!tb || xrt_dev_bo_upload(x->d, tb, row, C * 4, 0)) {
				*detail = EIO;
				return ABI_ST_CU_ERROR;
			}
			a[2].bo = tb;
		}
		break;
	}
	}
	return ABI_ST_OK;
}

/* The packed q rows [H][dc + dr] at card address q split into CU u's q_lat / q_pe scratch BOs
 * through the host (*ql, *qp), as the firmware does on the card. An ABI status. */
static uint32_t xb_q_split(struct xb *x, struct xcu *u, uint64_t qa, uint64_t H, uint64_t dc,
			   uint64_t dr, struct xrt_dev_bo **qlo, struct xrt_dev_bo **qpo,
			   uint32_t detail_q, uint32_t *detail)
{
	uint64_t row = dc + dr;
	struct xrt_dev_bo *qb = xb_operand(x, qa, H * row * 4);
	int gq = u->group[xb_arg(u->k, "q_lat")];
	struct xrt_dev_bo *ql = xb_scratch(x, &u->s_ql, gq, H * dc * 4);
	struct xrt_dev_bo *qp = xb_scratch(x, &u->s_qp, gq, H * dr * 4 + 4);
	float *q = xb_host(x, H * row * 4 * 2);
	if (!qb) {
		*detail = detail_q;
		return ABI_ST_BAD_ADDR;
	}
	if (!ql || !qp || !q) {
		*detail = ENOMEM;
		return ABI_ST_CU_ERROR;
	}
	float *lat = q + H * row, *pe = lat + H * dc;
	if (xrt_dev_bo_download(x->d, qb, q, H * row * 4, 0)) {
		*detail = EIO;
		return ABI_ST_CU_ERROR;
	}
	for (uint64_t h = 0; h < H; h++) {
		memcpy(lat + h * dc, q + h * row, dc * 4);
		memcpy(pe + h * dr, q + h * row + dc, dr * 4);
	}
	if (xrt_dev_bo_upload(x->d, ql, lat, H * dc * 4, 0) ||
	    (dr && xrt_dev_bo_upload(x->d, qp, pe, H * dr * 4, 0))) {
		*detail = EIO;
		return ABI_ST_CU_ERROR;
	}
	*qlo = ql;
	*qpo = qp;
	return ABI_ST_OK;
}

/* MLA_ATTN -> mla_attn(q_lat, q_pe, cache, out, nq, pos0, H, dc, dr, fmt, scale): the packed q
 * rows [H][dc + dr] are split into the kernel's two q ports through the host. */
static uint32_t xb_mla(struct xb *x, const struct abi_mla *m, struct xcu *u, struct xarg *a,
		       uint32_t *detail)
{
	uint64_t H = m->n_heads, dc = m->kv_lora, dr = m->rope, row = dc + dr;
	uint32_t st =
	    xb_q_split(x, u, m->q, H, dc, dr, &a[0].bo, &a[1].bo, ABI_FIELD(u.mla.q), detail);
	if (st)
		return st;
	float scale;
	memcpy(&scale, &m->scale, 4);
	a[2] = (struct xarg){.addr = m->kv, .len = (uint64_t)m->ctx_cap * row * 4};
	a[3] = (struct xarg){.addr = m->out, .len = H * dc * 4};
	a[4].u = 1;
	a[5].u = m->n_ctx - 1;
	a[6].u = m->n_heads;
	a[7].u = m->kv_lora;
	a[8].u = m->rope;
	a[9].u = MLA_CACHE_F32;
	a[10].f = scale;
	return ABI_ST_OK;
}

/* MLA_ATTN_LANES (direct mode) -> mla_attn_lanes(q_lat, q_pe, l0 .. l31, out, cache_off, pos, H,
 * dc, dr, fmt, scale, q_rows, tab, rows, slot_bytes, lane_bytes, ctx_cap). Lane i's port takes a
 * sub-buffer of bank i that starts at the stripe set (cache_off 0 then; the set sits at one
 * offset in every lane bank), so lane_bytes is what that buffer holds from there. One query: q
 * split through the host as MLA_ATTN's; rows: the packed rows and their table. The MHA mode (the
 * batched prefill's, which this backend does not run) has no binding. */
static uint32_t xb_mla_lanes(struct xb *x, const struct abi_mla_lanes *m, struct xcu *u,
			     uint32_t lanes, struct xarg *a, uint32_t *detail)
{
	const struct bitstream_kernel *k = u->k;
	uint64_t H = m->n_heads, dc = m->kv_lora, dr = m->rope, row = dc + dr;
	uint64_t n = m->rows > 1 ? m->rows : 1, lb = UINT64_MAX;
	if (m->word & ABI_MLAL_MHA) {
		*detail = ABI_FIELD(u.mlal.word);
		return ABI_ST_BAD_FIELD;
	}
	if (lanes != MLA_SYNTH_LANES) { /* the synthesis top stripes over its 32 ports */
		*detail = ABI_FIELD(hdr.word0);
		return ABI_ST_NO_CU;
	}
	for (uint32_t i = 0; i < lanes; i++) {
		char nm[16];
		struct xbuf *f = xb_find(x, i, m->cache_off, 1);
		if (!f) {
			*detail = ABI_FIELD(u.mlal.cache_off);
			return ABI_ST_BAD_ADDR;
		}
		uint64_t rem = f->bytes - (m->cache_off - f->off);
		lb = rem < lb ? rem : lb;
		snprintf(nm, sizeof nm, "l%u", i);
		a[xb_arg(k, nm)] = (struct xarg){.addr = ABI_ADDR(i, m->cache_off), .len = rem};
	}
	if (n == 1) {
		uint32_t st = xb_q_split(x, u, m->q, H, dc, dr, &a[xb_arg(k, "q_lat")].bo,
					 &a[xb_arg(k, "q_pe")].bo, ABI_FIELD(u.mlal.q), detail);
		if (st)
			return st;
	} else {
		a[xb_arg(k, "q_rows")] = (struct xarg){.addr = m->q, .len = n * H * row * 4};
		a[xb_arg(k, "tab")] = (struct xarg){.addr = m->tab, .len = n * 8};
	}
	float scale;
	memcpy(&scale, &m->scale, 4);
	uint32_t fmt = ABI_KV_FMT(m->word);
	a[xb_arg(k, "out")] = (struct xarg){.addr = m->out, .len = n * H * dc * 4};
	a[xb_arg(k, "cache_off")].u = 0;
	a[xb_arg(k, "pos")].u = m->n_ctx - 1;
	a[xb_arg(k, "H")].u = m->n_heads;
	a[xb_arg(k, "dc")].u = m->kv_lora;
	a[xb_arg(k, "dr")].u = m->rope;
	a[xb_arg(k, "fmt")].u = (uint32_t)backend_mla_fmt(fmt) |
				((m->word & ABI_MLAL_FP8) ? (uint32_t)MLA_ATTN_FP8 : 0);
	a[xb_arg(k, "scale")].f = scale;
	a[xb_arg(k, "rows")].u = (uint32_t)n;
	a[xb_arg(k, "slot_bytes")].u = m->slot_bytes;
	a[xb_arg(k, "lane_bytes")].u = lb > UINT32_MAX ? UINT32_MAX : (uint32_t)lb;
	a[xb_arg(k, "ctx_cap")].u = m->ctx_cap;
	return ABI_ST_OK;
}

/* KV_APPEND -> mla_kv_append(c, k_pe, cache, pos, n, dc, dr, fmt): the record's format and its
 * split into c' and k_pe as the emulated card's (backend_kv_layout). */
static void xb_kv(const struct abi_kv_append *k, struct xarg *a)
{
	int dc, dr, mf = backend_kv_layout(k, &dc, &dr);
	a[0] = (struct xarg){.addr = k->src, .len = (uint64_t)dc * 4};
	if (dr)
		a[1] = (struct xarg){.addr = k->src + (uint64_t)dc * 4, .len = (uint64_t)dr * 4};
	a[2] = (struct xarg){.addr = k->cache,
			     .len = (uint64_t)k->ctx_cap * mla_record_bytes(mf, dc, dr)};
	a[3].u = k->pos;
	a[4].u = 1;
	a[5].u = (uint32_t)dc;
	a[6].u = (uint32_t)dr;
	a[7].u = (uint32_t)mf;
}

/* --- DMA fills through the driver (direct mode) ------------------------------------------- */

/* The driver's resolver: the buffer holding byte off of bank, as its BO and the bytes to its end.
 */
static int xb_dma_resolve(void *ctx, unsigned bank, uint64_t off, uint64_t len,
			  struct dma_xrt_span *sp)
{
	struct xb *x = ctx;
	(void)len;
	struct xbuf *f = xb_find(x, bank, off, 1);
	if (!f)
		return -EFAULT;
	*sp = (struct dma_xrt_span){
	    .bo = &f->bo, .bo_off = off - f->off, .len = f->bytes - (off - f->off)};
	return 0;
}

/* The driver's write and read on a buffer's BO: xrtBOWrite + xrtBOSync through xrt_dev. */
static int xb_dma_write(void *ctx, void *bo, const void *src, size_t len, uint64_t off)
{
	return xrt_dev_bo_upload(((struct xb *)ctx)->d, bo, src, len, (size_t)off);
}
static int xb_dma_read(void *ctx, void *bo, void *dst, size_t len, uint64_t off)
{
	return xrt_dev_bo_download(((struct xb *)ctx)->d, bo, dst, len, (size_t)off);
}

/* Moves bytes between card range (bank, off) and host memory h in direction dir on driver channel
 * ch, as transfers of up to a ring of elements, each waited for; with step 0 every element reads
 * the same first XB_PAT_BYTES of h (a pattern). Returns 0 or the driver's negative errno (-EIO:
 * a transfer completed with an error). */
static int xb_dma_move(struct xb *x, unsigned ch, enum dma_dir dir, uint32_t bank, uint64_t off,
		       uint8_t *h, uint64_t bytes, int step)
{
	uint64_t elem = step ? DMA_REGS_DESC_LEN_MAX & ~4095ull : XB_PAT_BYTES;
	unsigned ring = dma_dev_ring_entries(x->dma);
	for (uint64_t done = 0; done < bytes;) {
		unsigned n = 0;
		for (; done < bytes && n < ring; n++) {
			uint64_t len = bytes - done < elem ? bytes - done : elem;
			x->dma_sg[n] = (struct dma_sg){.host = h + (step ? done : 0),
						       .bank = bank,
						       .card_off = off + done,
						       .len = (size_t)len};
			done += len;
		}
		struct dma_xfer t = {
		    .dir = dir, .sg = x->dma_sg, .n_sg = n, .cookie = ABI_ADDR(bank, off)};
		int r = dma_copy_sync(x->dma, ch, &t, 0, XB_DMA_TIMEOUT_NS, NULL);
		if (r)
			return r;
	}
	return 0;
}

/* DMA_FILL through a driver channel: host source and pattern as H2C transfers; a card source is
 * staged through host scratch (a C2H transfer, then an H2C one, per chunk). A failed transfer is
 * ABI_ST_DMA_ERROR with the driver's errno as detail. */
static uint32_t xb_fill(struct xb *x, const struct abi_dma_fill *d, uint32_t *detail)
{
	uint32_t bank = ABI_ADDR_BANK(d->dst);
	uint64_t off = ABI_ADDR_OFF(d->dst);
	if (!xb_find(x, bank, off, d->bytes)) {
		*detail = ABI_FIELD(u.dma.dst);
		return ABI_ST_BAD_ADDR;
	}
	int card_src = !(d->flags & (ABI_DMA_F_SRC_HOST | ABI_DMA_F_PATTERN));
	if (card_src && !xb_find(x, ABI_ADDR_BANK(d->src), ABI_ADDR_OFF(d->src), d->bytes)) {
		*detail = ABI_FIELD(u.dma.src);
		return ABI_ST_BAD_ADDR;
	}
	if (!x->dma) {
		*detail = ENODEV;
		return ABI_ST_DMA_ERROR;
	}
	unsigned nch = dma_dev_n_channels(x->dma), ch = ABI_DMA_WORD_CHAN(d->word);
	ch = ch == ABI_DMA_CHAN_ANY ? 0 : ch % nch;
	int r = 0;
	if (d->flags & ABI_DMA_F_SRC_HOST) {
		r = xb_dma_move(x, ch, DMA_DIR_H2C, bank, off, (uint8_t *)(uintptr_t)d->src,
				d->bytes, 1);
	} else if (d->flags & ABI_DMA_F_PATTERN) {
		memset(x->dma_pat, (int)ABI_DMA_WORD_PATTERN(d->word),
		       d->bytes < XB_PAT_BYTES ? (size_t)d->bytes : XB_PAT_BYTES);
		r = xb_dma_move(x, ch, DMA_DIR_H2C, bank, off, x->dma_pat, d->bytes, 0);
	} else {
		uint8_t *h = xb_host(x, XB_FILL_CHUNK);
		if (!h) {
			*detail = ENOMEM;
			return ABI_ST_DMA_ERROR;
		}
		uint32_t sbank = ABI_ADDR_BANK(d->src);
		uint64_t soff = ABI_ADDR_OFF(d->src);
		for (uint64_t done = 0; !r && done < d->bytes; done += XB_FILL_CHUNK) {
			uint64_t n =
			    d->bytes - done < XB_FILL_CHUNK ? d->bytes - done : XB_FILL_CHUNK;
			r = xb_dma_move(x, ch, DMA_DIR_C2H, sbank, soff + done, h, n, 1);
			if (!r)
				r = xb_dma_move(x, ch, DMA_DIR_H2C, bank, off + done, h, n, 1);
		}
	}
	if (r) {
		*detail = (uint32_t)-r;
		return ABI_ST_DMA_ERROR;
	}
	x->st.fills++;
	x->st.fill_bytes += d->bytes;
	return ABI_ST_OK;
}

/* Runs command i of the list in flight; fills its completion. */
static void xb_exec(struct xb *x, uint32_t i)
{
	const struct abi_cmd *c = &x->cmds[i];
	static __thread struct fw_cmd fc;
	uint32_t detail = 0, cu = ABI_CPL_CU_NONE;
	uint64_t t_start = xb_now(x);
	uint32_t st = fw_cmd_decode(&x->b.blk, c, x->queue, &fc, &detail);
	uint32_t wid = ABI_W3_WAIT(c->hdr.word3), sid = ABI_W3_SIGNAL(c->hdr.word3);
	if (st == ABI_ST_OK && (fc.flags & ABI_CMD_F_WAIT)) {
		/* in-order execution: a fence not reached now is never reached by this list */
		if (x->fence_bad[wid] || (int32_t)(x->fence[wid] - c->hdr.wait_value) < 0) {
			st = ABI_ST_DEP_ERROR;
			detail = ABI_FIELD(hdr.wait_value);
		}
	}
	if (st == ABI_ST_OK) {
		struct xarg a[BITSTREAM_MAX_ARGS];
		memset(a, 0, sizeof a);
		uint64_t tmo = ABI_W2_TIMEOUT(c->hdr.word2)
				   ? ABI_W2_TIMEOUT(c->hdr.word2) * 100000ull
				   : FW_CFG_CU_TIMEOUT_NS;
		int compute = 1;
		int pc = -1;
		switch (fc.op) {
		case ABI_OP_GEMM_FP8:
			st = xb_gemm(x, &c->u.gemm, a);
			break;
		case ABI_OP_RMSNORM:
		case ABI_OP_ROPE:
		case ABI_OP_ACT_QUANT:
		case ABI_OP_SILU_MUL:
		case ABI_OP_RESIDUAL_ADD:
		case ABI_OP_SOFTMAX:
		case ABI_OP_MLA_ATTN:
			/* the CU must be known before its scratch BOs are bound */
			pc = xb_pick_cu(x, fc.op, a);
			if (pc < 0) {
				st = ABI_ST_NO_CU;
				break;
			}
			st = fc.op == ABI_OP_MLA_ATTN
				 ? xb_mla(x, &c->u.mla, &x->cu[pc], a, &detail)
				 : xb_vec(x, fc.op, &c->u.vec, &x->cu[pc], a, &detail);
			break;
		case ABI_OP_MLA_ATTN_LANES:
			pc = xb_pick_cu(x, fc.op, a);
			if (pc < 0) {
				st = ABI_ST_NO_CU;
				break;
			}
			st = xb_mla_lanes(x, &c->u.mlal, &x->cu[pc],
					  ABI_CU_LANES(x->b.blk.cus[pc].word), a, &detail);
			break;
		case ABI_OP_KV_APPEND:
			if (c->u.kv.fold) { /* the xclbin's mla_kv_append has no input stage */
				compute = 0;
				st = ABI_ST_BAD_FIELD;
				detail = ABI_FIELD(u.kv.fold);
				break;
			}
			if (c->u.kv.rows > 1) { /* its c' and k_pe are two arrays, not rows */
				compute = 0;
				st = ABI_ST_BAD_FIELD;
				detail = ABI_FIELD(u.kv.rows);
				break;
			}
			xb_kv(&c->u.kv, a);
			break;
		case ABI_OP_DMA_FILL:
			compute = 0;
			st = xb_fill(x, &c->u.dma, &detail);
			break;
		default: /* NOP, FENCE, BARRIER, TIMESTAMP: in-order execution satisfies them */
			compute = 0;
			break;
		}
		if (st == ABI_ST_OK && compute) {
			if (pc < 0)
				pc = xb_pick_cu(x, fc.op, a);
			if (pc < 0)
				st = ABI_ST_NO_CU;
			else
				st = xb_run(x, (uint32_t)pc, a, tmo, &detail);
			cu = pc < 0 ? ABI_CPL_CU_NONE : (uint32_t)pc;
		}
		if (!compute)
			x->ct.host_cmds++;
		if (fc.op == ABI_OP_TIMESTAMP)
			t_start = xb_now(x);
	}
	if (c->hdr.word2 & ABI_CMD_F_SIGNAL && sid < ABI_MAX_FENCES) {
		if (st == ABI_ST_OK) {
			x->fence[sid] = c->hdr.signal_value;
			x->fence_bad[sid] = 0;
		} else {
			x->fence_bad[sid] = 1;
		}
	}
	uint64_t t_end = fc.op == ABI_OP_TIMESTAMP && st == ABI_ST_OK ? t_start : xb_now(x);
	x->cpl[i] = (struct abi_cpl){.tag = i,
				     .word1 = ABI_CPL_W1(st, ABI_W0_OP(c->hdr.word0), x->queue, cu),
				     .detail = detail,
				     .seq = x->cpl_seq++,
				     .t_start = t_start,
				     .t_end = t_end};
}

/* --- firmware mode: rings in the control BO --------------------------------------------- */

/* Uploads shadow bytes [off, off + n) of the control BO. */
static int xb_ctl_put(struct xb *x, size_t off, size_t n)
{
	return xrt_dev_bo_upload(x->d, &x->ctl, x->shadow + off, n, off);
}
static int xb_ctl_get(struct xb *x, size_t off, size_t n)
{
	return xrt_dev_bo_download(x->d, &x->ctl, x->shadow + off, n, off);
}

/* Uploads (put) or reads back ring slots [from, from + n) of view v (two ranges when they
 * wrap). */
static int xb_ring_slots(struct xb *x, const struct abi_ring_view *v, uint32_t from, uint32_t n,
			 int put)
{
	while (n) {
		uint32_t idx = from & v->mask, run = v->n_slots - idx < n ? v->n_slots - idx : n;
		size_t off = (size_t)(abi_ring_slot(v, from) - x->shadow);
		size_t bytes = (size_t)run * v->slot_size;
		int r = put ? xb_ctl_put(x, off, bytes) : xb_ctl_get(x, off, bytes);
		if (r)
			return r;
		from += run;
		n -= run;
	}
	return 0;
}

static size_t xb_off(const struct xb *x, const void *p)
{
	return (size_t)((const uint8_t *)p - x->shadow);
}

static int xb_fw_submit(struct xb *x, uint32_t queue)
{
	struct abi_ring_view *v = &x->cmdq[queue];
	int r = xb_ctl_get(x, xb_off(x, &v->ring->consumed), 4);
	if (r)
		return r;
	uint32_t from = v->own;
	if ((r = abi_ring_push_n(v, x->cmds, x->n))) {
		if (r == -EPROTO)
			xb_err(x, r,
			       "xrt firmware mode: command ring %u: the card's consumed counter "
			       "%u is out of range (produced %u)",
			       queue, v->ring->consumed, v->own);
		return r;
	}
	/* slots first, then the counter that publishes them: the doorbell */
	if ((r = xb_ring_slots(x, v, from, x->n, 1)) ||
	    (r = xb_ctl_put(x, xb_off(x, &v->ring->produced), 4)))
		return r;
	x->ct.doorbells++;
	return 0;
}

/* Takes what the card posted on the completion ring. Returns completions taken or -errno. */
static int xb_fw_poll(struct xb *x)
{
	struct abi_ring_view *v = &x->cplq;
	int r = xb_ctl_get(x, xb_off(x, &v->ring->produced), 4);
	if (r)
		return r;
	x->ct.cpl_polls++;
	int n = abi_ring_avail(v);
	if (n < 0)
		return xb_err(x, n,
			      "xrt firmware mode: completion ring: the card's produced counter "
			      "%u is out of range (consumed %u)",
			      v->ring->produced, v->own);
	if (!n)
		return 0;
	if ((r = xb_ring_slots(x, v, v->own, (uint32_t)n, 0)))
		return r;
	for (int i = 0; i < n; i++) {
		struct abi_cpl c;
		if (abi_ring_pop(v, &c))
			break; /* n were available: cannot happen */
		if (c.tag >= x->n || x->seen[c.tag])
			continue; /* not of this list: counted by nobody, as the firmware's errlog */
		x->cpl[c.tag] = c;
		x->seen[c.tag] = 1;
		x->done++;
	}
	if ((r = xb_ctl_put(x, xb_off(x, &v->ring->consumed), 4)))
		return r;
	return n;
}

/* --- lists ------------------------------------------------------------------------------ */

static int xb_submit(struct backend *b, uint32_t queue, const struct abi_cmd *cmds, uint32_t n,
		     uint64_t *fence)
{
	struct xb *x = xb_of(b);
	if (!n || n > BACKEND_MAX_LIST || queue >= FW_CFG_N_QUEUES)
		return -EINVAL;
	if (x->inflight)
		return -EBUSY;
	if (x->mode == BACKEND_XRT_FIRMWARE && n > x->cmdq[queue].n_slots)
		return -EINVAL;
	memcpy(x->cmds, cmds, sizeof(*cmds) * n);
	for (uint32_t i = 0; i < n; i++)
		x->cmds[i].hdr.tag = i;
	memset(x->cpl, 0, sizeof(*x->cpl) * n);
	memset(x->seen, 0, n);
	x->n = n;
	x->next = 0;
	x->done = 0;
	x->queue = queue;
	x->t_submit = xb_now(x);
	if (x->mode == BACKEND_XRT_FIRMWARE) {
		int r = xb_fw_submit(x, queue);
		if (r)
			return r;
	}
	x->inflight = 1;
	*fence = ++x->seq;
	x->st.submits++;
	x->st.cmds += n;
	return 0;
}

static int xb_wait(struct backend *b, uint64_t fence, uint32_t timeout_ms)
{
	struct xb *x = xb_of(b);
	if (!x->inflight || fence != x->seq)
		return fence <= x->seq ? 0 : -EINVAL;
	uint64_t t0 = xb_now(x), limit = (uint64_t)timeout_ms * 1000000ull;
	if (x->mode == BACKEND_XRT_DIRECT) {
		while (x->next < x->n) {
			if (x->next && xb_now(x) - t0 > limit)
				return xb_err(x, -ETIMEDOUT,
					      "xrt: list %llu: %u of %u commands done after %u ms",
					      (unsigned long long)x->seq, x->next, x->n,
					      timeout_ms);
			xb_exec(x, x->next++);
			x->done++;
		}
	} else {
		while (x->done < x->n) {
			int r = xb_fw_poll(x);
			if (r < 0) {
				if (!x->err[0])
					xb_err(x, r,
					       "xrt firmware mode: completion ring: XRT error");
				return r;
			}
			if (x->done == x->n)
				break;
			if (xb_now(x) - t0 > limit) {
				const struct abi_ring_view *v = &x->cmdq[x->queue];
				uint32_t cons = 0;
				xb_ctl_get(x, xb_off(x, &v->ring->consumed), 4);
				cons = v->ring->consumed;
				return xb_err(
				    x, -ETIMEDOUT,
				    "xrt firmware mode: list %llu: %u of %u completions "
				    "after %u ms; command ring %u produced %u, consumed %u "
				    "by the card: is the card firmware running?%s",
				    (unsigned long long)x->seq, x->done, x->n, timeout_ms, x->queue,
				    v->own, cons,
				    x->noop ? " (XRT's noop device runs no firmware)" : "");
			}
			struct timespec ts = {0, XB_POLL_NS};
			nanosleep(&ts, NULL);
		}
	}
	x->inflight = 0;
	uint64_t end = x->t_submit;
	int bad = 0;
	for (uint32_t i = 0; i < x->n; i++) {
		if (x->cpl[i].t_end > end)
			end = x->cpl[i].t_end;
		bad |= ABI_CPL_STATUS(x->cpl[i].word1) != ABI_ST_OK;
	}
	if (x->mode == BACKEND_XRT_DIRECT)
		x->st.busy_ns += end - x->t_submit;
	if (bad) {
		for (uint32_t i = 0; i < x->n; i++) {
			uint32_t st = ABI_CPL_STATUS(x->cpl[i].word1);
			if (st != ABI_ST_OK) {
				xb_err(x, -EIO,
				       "xrt: list %llu: command %u (opcode %u) failed: %s, "
				       "detail %u",
				       (unsigned long long)x->seq, i, ABI_CPL_OP(x->cpl[i].word1),
				       abi_status_name(st), x->cpl[i].detail);
				break;
			}
		}
	}
	return bad ? -EIO : 0;
}

static int xb_completions(struct backend *b, const struct abi_cpl **cpl, uint32_t *n)
{
	struct xb *x = xb_of(b);
	*cpl = x->cpl;
	*n = x->n;
	return 0;
}

static int xb_supports(struct backend *b, uint32_t op)
{
	if (op >= ABI_OP_COUNT)
		return 0;
	if (op == ABI_OP_NOP || op == ABI_OP_FENCE || op == ABI_OP_BARRIER ||
	    op == ABI_OP_TIMESTAMP)
		return 1;
	/* the GEMV and router CUs (group tables) have no XRT binding here yet: the card scheduler
	 * keeps the fp8_gemm lowering on this backend; the striped attention runs in direct mode */
	if (op == ABI_OP_GEMV || op == ABI_OP_MOE_ROUTE || op == ABI_OP_GATHER ||
	    op == ABI_OP_COMBINE)
		return 0;
	if (op == ABI_OP_MLA_ATTN_LANES && xb_of(b)->mode != BACKEND_XRT_DIRECT)
		return 0;
	if (op == ABI_OP_DMA_FILL) /* direct mode: the driver's channels; firmware: the card's */
		return xb_of(b)->mode == BACKEND_XRT_DIRECT ? xb_of(b)->dma != NULL
							    : ABI_BOARD_N_DMA(b->blk.counts) > 0;
	for (uint32_t i = 0; i < ABI_BOARD_N_CUS(b->blk.counts); i++)
		if (b->blk.cus[i].ops_mask >> op & 1)
			return 1;
	return 0;
}

static void xb_stats(struct backend *b, struct backend_stats *s)
{
	struct xb *x = xb_of(b);
	*s = x->st;
	s->card_ns = xb_now(x);
	if (x->dma) { /* the driver's view of the fills; link_ns is not modeled on a real card */
		s->dma_engine = dma_dev_name(x->dma);
		dma_dev_stats(x->dma, &s->dma);
	}
}

/* BACKEND_FAULT_DMA_ERROR is the driver's countdown fault (direct mode); nothing else is
 * injected on a real card. */
static int xb_fault(struct backend *b, enum backend_fault f, uint32_t n)
{
	struct xb *x = xb_of(b);
	if (f == BACKEND_FAULT_DMA_ERROR && x->dma)
		return dma_dev_fault_set(x->dma, n ? DMA_FAULT_ERROR : DMA_FAULT_NONE, n, 0);
	return -ENOTSUP;
}

static void xb_close(struct backend *b)
{
	struct xb *x = xb_of(b);
	dma_dev_close(x->dma); /* first: its channels reach into the buffers' BOs */
	free(x->dma_sg);
	free(x->dma_pat);
	for (uint32_t c = 0; c < x->n_cu; c++) {
		struct xcu *u = &x->cu[c];
		xrt_dev_run_close(x->d, &u->run);
		xrt_dev_bo_free(x->d, &u->s_pos.bo);
		xrt_dev_bo_free(x->d, &u->s_tab.bo);
		xrt_dev_bo_free(x->d, &u->s_ql.bo);
		xrt_dev_bo_free(x->d, &u->s_qp.bo);
	}
	for (uint32_t k = 0; k < ABI_MAX_BANKS; k++) {
		for (uint32_t i = 0; i < x->bank[k].n; i++)
			xb_buf_destroy(x, x->bank[k].v[i]);
		free(x->bank[k].v);
	}
	for (uint32_t g = 0; g < XB_MAX_GROUPS; g++)
		xrt_dev_bo_free(x->d, &x->dummy[g]);
	xrt_dev_bo_free(x->d, &x->ctl);
	xrt_dev_close(x->d);
	backend_mem_free(&x->mem);
	free(x->shadow);
	free(x->host);
	free(x);
}

static const struct backend_i xb_iface = {
    .version = BACKEND_I_VERSION,
    .name = "xrt",
    .close = xb_close,
    .buf_alloc = xb_alloc,
    .buf_free = xb_free_buf,
    .buf_write = xb_write,
    .buf_read = xb_read,
    .submit = xb_submit,
    .wait = xb_wait,
    .completions = xb_completions,
    .supports_op = xb_supports,
    .stats = xb_stats,
    .fault_set = xb_fault,
};

/* --- open --------------------------------------------------------------------------------- */

/* xclbin path: option, $MOECARD_XCLBIN, else <dtb dir>/../bitstream/<dtb stem>.xclbin. */
static void xb_xclbin_path(const char *opt, const char *dtb, char *out, size_t len)
{
	const char *env = getenv("MOECARD_XCLBIN");
	if (opt || (env && *env)) {
		snprintf(out, len, "%s", opt ? opt : env);
		return;
	}
	char dir[400], stem[128];
	const char *slash = dtb ? strrchr(dtb, '/') : NULL;
	if (slash)
		snprintf(dir, sizeof dir, "%.*s", (int)(slash - dtb), dtb);
	else
		snprintf(dir, sizeof dir, ".");
	snprintf(stem, sizeof stem, "%s", slash ? slash + 1 : dtb ? dtb : "emu.dtb");
	char *dot = strrchr(stem, '.');
	if (dot)
		*dot = '\0';
	snprintf(out, len, "%s/../bitstream/%s.xclbin", dir, stem);
}

/* Maps every bank to the MEM_TOPOLOGY entry tagged with its Vitis name. */
static int xb_groups(struct xb *x, const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		snprintf(err, errlen, "xrt: %s: %s (build it with make, or pass --xclbin)", path,
			 strerror(errno));
		return -ENOENT;
	}
	size_t cap = 64u << 20, n = 0;
	uint8_t *buf = malloc(cap);
	if (buf)
		n = fread(buf, 1, cap, f);
	fclose(f);
	if (!buf)
		return -ENOMEM;
	const void *sec = NULL;
	size_t sz = 0;
	int r = bitstream_xclbin_validate(buf, n);
	if (!r)
		r = bitstream_xclbin_section(buf, n, MEM_TOPOLOGY, &sec, &sz);
	if (r || sz < sizeof(int32_t)) {
		free(buf);
		snprintf(err, errlen, "xrt: %s: %s", path,
			 r == -ENOENT ? "no MEM_TOPOLOGY section" : "not a well-formed xclbin");
		return -EINVAL;
	}
	const struct mem_topology *mt = sec;
	int32_t cnt = mt->m_count;
	if (cnt < 0 || (size_t)cnt > (sz - offsetof(struct mem_topology, m_mem_data)) /
					 sizeof(struct mem_data)) {
		free(buf);
		snprintf(err, errlen, "xrt: %s: MEM_TOPOLOGY m_count %d exceeds its section", path,
			 cnt);
		return -EINVAL;
	}
	const struct board_desc *bd = &x->b.board;
	for (uint32_t k = 0; k < bd->n_banks; k++) {
		char name[32];
		board_bank_name(bd, k, name, sizeof name);
		x->bank[k].group = -1;
		for (int32_t i = 0; i < cnt; i++) {
			const struct mem_data *m = &mt->m_mem_data[i];
			/* m_used 0 only says no CU argument is connected to it (DMA still is) */
			if (!strncmp((const char *)m->m_tag, name, sizeof m->m_tag)) {
				x->bank[k].group = i;
				break;
			}
		}
		if (x->bank[k].group < 0) {
			free(buf);
			snprintf(err, errlen,
				 "xrt: %s: MEM_TOPOLOGY has no bank tagged %s (bank %s of the "
				 "board): xclbin and board tree do not match",
				 path, name, bd->bank[k].name);
			return -EINVAL;
		}
	}
	free(buf);
	return 0;
}

/* CUs in board-block order with their argument groups, checked against the dts. */
static int xb_cus(struct xb *x, const char *path, char *err, size_t errlen)
{
	const struct board_desc *bd = &x->b.board;
	uint32_t nc = ABI_BOARD_N_CUS(x->b.blk.counts);
	for (uint32_t i = 0; i < bd->n_cus && x->n_cu < nc; i++) {
		const struct bitstream_kernel *k = bitstream_kernel_find(bd->cu[i].kernel);
		if (!k)
			continue;
		struct xcu *u = &x->cu[x->n_cu++];
		u->dcu = i;
		u->k = k;
		for (uint32_t a = 0; a < k->n_args; a++) {
			u->group[a] = -1;
			if (!k->arg[a].bundle)
				continue;
			int g = -1, bank = bitstream_arg_bank(bd, i, a);
			if (xrt_dev_arg_group(x->d, i, a, &g, NULL) || bank < 0 ||
			    g != x->bank[bank].group) {
				snprintf(
				    err, errlen,
				    "xrt: %s: CU %s argument %s: XRT memory group %d, the board "
				    "tree connects bank %d (group %d)",
				    path, bd->cu[i].name, k->arg[a].name, g, bank,
				    bank >= 0 ? x->bank[bank].group : -1);
				return -EINVAL;
			}
			u->group[a] = g;
		}
	}
	return 0;
}

/* Opens the DMA driver on this backend's BOs (direct mode): one channel per DMA channel of the
 * board. A board without DMA channels runs no fill. */
static int xb_dma_open(struct xb *x, char *err, size_t errlen)
{
	uint32_t nd = ABI_BOARD_N_DMA(x->b.blk.counts);
	if (!nd)
		return 0;
	struct dma_config cfg;
	char e2[200] = "";
	int r = dma_config_from_board(&x->b.board, x->dma_banks, ABI_MAX_BANKS, &cfg);
	if (r) {
		snprintf(err, errlen, "xrt: board %s: no DMA driver configuration (%d)",
			 x->b.board.model, r);
		return r;
	}
	x->dma_bos = (struct dma_xrt_bos){
	    .ctx = x, .resolve = xb_dma_resolve, .write = xb_dma_write, .read = xb_dma_read};
	cfg.n_channels = nd;
	cfg.xrt_bos = &x->dma_bos;
	if ((r = dma_dev_open(&dma_xrt_i, &cfg, &x->dma, e2, sizeof e2))) {
		snprintf(err, errlen, "xrt: DMA driver: %s", e2);
		return r;
	}
	x->dma_sg = calloc(dma_dev_ring_entries(x->dma), sizeof *x->dma_sg);
	x->dma_pat = malloc(XB_PAT_BYTES);
	if (!x->dma_sg || !x->dma_pat) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	return 0;
}

/* Lays out the control BO and its rings (firmware mode). */
static int xb_fw_init(struct xb *x, const struct backend_xrt_opts *o, char *err, size_t errlen)
{
	uint32_t lg = o && o->ring_log2 ? o->ring_log2 : XB_RING_LOG2;
	uint32_t lc = lg + 2 > ABI_RING_MAX_LOG2 ? ABI_RING_MAX_LOG2 : lg + 2;
	uint32_t start = o ? o->ring_start : 0;
	if (lg > ABI_RING_MAX_LOG2) {
		snprintf(err, errlen, "xrt: ring_log2 %u exceeds %u", lg, ABI_RING_MAX_LOG2);
		return -EINVAL;
	}
	struct backend_xrt_fw_layout *l = &x->lay;
	l->board_off = 0;
	l->telem_off = 4096;
	l->cmdq_bytes = (abi_ring_bytes(lg, sizeof(struct abi_cmd)) + 63) & ~(size_t)63;
	uint64_t off = 8192;
	for (uint32_t q = 0; q < FW_CFG_N_QUEUES; q++, off += l->cmdq_bytes)
		l->cmdq_off[q] = off;
	l->cplq_off = off;
	l->cplq_bytes = (abi_ring_bytes(lc, sizeof(struct abi_cpl)) + 63) & ~(size_t)63;
	l->bytes = (l->cplq_off + l->cplq_bytes + 4095) & ~(uint64_t)4095;
	/* the rings live in the bank of the first vec CU's first port, else bank 0 */
	l->group = x->bank[0].group;
	for (uint32_t c = 0; c < x->n_cu; c++)
		if (x->b.blk.cus[c].ops_mask >> ABI_OP_RMSNORM & 1) {
			for (uint32_t a = 0; a < x->cu[c].k->n_args; a++)
				if (x->cu[c].group[a] >= 0) {
					l->group = x->cu[c].group[a];
					break;
				}
			break;
		}
	x->shadow = calloc(1, l->bytes);
	if (!x->shadow)
		return -ENOMEM;
	memcpy(x->shadow + l->board_off, &x->b.blk, sizeof x->b.blk);
	for (uint32_t q = 0; q < FW_CFG_N_QUEUES; q++)
		abi_ring_init(&x->cmdq[q], ABI_RING_PRODUCER, x->shadow + l->cmdq_off[q],
			      l->cmdq_bytes, lg, sizeof(struct abi_cmd), start);
	abi_ring_init(&x->cplq, ABI_RING_CONSUMER, x->shadow + l->cplq_off, l->cplq_bytes, lc,
		      sizeof(struct abi_cpl), start);
	int r = xrt_dev_bo_alloc(x->d, l->bytes, l->group, &x->ctl);
	if (!r)
		r = xb_ctl_put(x, 0, l->bytes);
	if (r) {
		snprintf(err, errlen, "xrt: cannot allocate the %llu-byte control BO in group %d",
			 (unsigned long long)l->bytes, l->group);
		return r;
	}
	l->dev_addr = xrt_dev_bo_address(x->d, &x->ctl);
	return 0;
}

int backend_xrt_open(struct backend **out, const struct board_desc *bd, const char *dtb,
		     const struct backend_xrt_opts *o, char *err, size_t errlen)
{
	*out = NULL;
	const char *env_mode = getenv("MOECARD_XRT_MODE");
	uint32_t mode = o && o->mode ? o->mode : BACKEND_XRT_DIRECT;
	if ((!o || !o->mode) && env_mode && *env_mode) {
		if (!strcmp(env_mode, "firmware"))
			mode = BACKEND_XRT_FIRMWARE;
		else if (strcmp(env_mode, "direct")) {
			snprintf(err, errlen,
				 "xrt: MOECARD_XRT_MODE=%s: expected direct or firmware", env_mode);
			return -EINVAL;
		}
	}
	if (mode != BACKEND_XRT_DIRECT && mode != BACKEND_XRT_FIRMWARE) {
		snprintf(err, errlen, "xrt: unknown launch mode %u", mode);
		return -EINVAL;
	}
	/* explicit opt-in to the noop device for a run without a card */
	const char *noop = getenv("MOECARD_XRT_NOOP"), *em = getenv("XCL_EMULATION_MODE");
	if (noop && !strcmp(noop, "1") && !(em && *em)) {
		char dir[256];
		const char *tmp = getenv("TMPDIR");
		snprintf(dir, sizeof dir, "%s/moecard-xrt-noop-%u", tmp && *tmp ? tmp : "/tmp",
			 (unsigned)getuid());
		int r = xrt_dev_noop_setup(dir, err, errlen);
		if (r)
			return r;
		em = "noop"; /* what the setup chose for XRT's runtime */
	}
	struct xb *x = calloc(1, sizeof *x);
	if (!x) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	clock_gettime(CLOCK_MONOTONIC, &x->t0);
	x->b.iface = &xb_iface;
	x->b.impl = x;
	x->b.board = *bd;
	x->mode = mode;
	x->noop = em && !strcmp(em, "noop");
	x->ct.mode = mode;
	x->ct.noop = x->noop;
	char path[600];
	xb_xclbin_path(o ? o->xclbin : NULL, dtb, path, sizeof path);
	const char *dev = o && o->device ? o->device : getenv("MOECARD_XRT_DEVICE");
	if (!dev || !*dev)
		dev = "0";
	int r = backend_board_block(bd, &x->b.blk, err, errlen);
	if (r)
		goto fail;
	if ((r = backend_mem_init(&x->mem, &x->b.blk))) {
		snprintf(err, errlen, "xrt: cannot reserve card address space");
		goto fail;
	}
	if ((r = xb_groups(x, path, err, errlen)))
		goto fail;
	char e2[400] = "";
	if ((r = xrt_dev_open(dev, &x->d, e2, sizeof e2))) {
		snprintf(err, errlen, "%s%s", e2,
			 r == -ENODEV ? "; to run the control path without a card on XRT's noop "
					"device set MOECARD_XRT_NOOP=1"
				      : "");
		goto fail;
	}
	if ((r = xrt_dev_load(x->d, path, &x->b.board, err, errlen)))
		goto fail;
	if ((r = xb_cus(x, path, err, errlen)))
		goto fail;
	if (mode == BACKEND_XRT_FIRMWARE && (r = xb_fw_init(x, o, err, errlen)))
		goto fail;
	if (mode == BACKEND_XRT_DIRECT && (r = xb_dma_open(x, err, errlen)))
		goto fail;
	*out = &x->b;
	return 0;
fail:
	xb_close(&x->b);
	return r;
}

const char *backend_xrt_error(struct backend *b)
{
	return b && b->iface == &xb_iface ? xb_of(b)->err : "";
}

void backend_xrt_counters(struct backend *b, struct backend_xrt_counters *c)
{
	memset(c, 0, sizeof *c);
	if (b && b->iface == &xb_iface)
		*c = xb_of(b)->ct;
}

int backend_xrt_fw_layout(struct backend *b, struct backend_xrt_fw_layout *l)
{
	if (!b || b->iface != &xb_iface || xb_of(b)->mode != BACKEND_XRT_FIRMWARE)
		return -EINVAL;
	*l = xb_of(b)->lay;
	return 0;
}

int backend_xrt_ctl_read(struct backend *b, size_t off, void *dst, size_t n)
{
	if (!b || b->iface != &xb_iface || xb_of(b)->mode != BACKEND_XRT_FIRMWARE)
		return -EINVAL;
	return xrt_dev_bo_download(xb_of(b)->d, &xb_of(b)->ctl, dst, n, off);
}

int backend_xrt_ctl_write(struct backend *b, size_t off, const void *src, size_t n)
{
	if (!b || b->iface != &xb_iface || xb_of(b)->mode != BACKEND_XRT_FIRMWARE)
		return -EINVAL;
	return xrt_dev_bo_upload(xb_of(b)->d, &xb_of(b)->ctl, src, n, off);
}

int backend_xrt_bank_group(struct backend *b, uint32_t bank)
{
	if (!b || b->iface != &xb_iface || bank >= b->board.n_banks)
		return -EINVAL;
	return xb_of(b)->bank[bank].group;
}
