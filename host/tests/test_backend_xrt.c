/*
 * test_backend_xrt.c - backend "xrt" (host/backend/backend_xrt.c) through backend.h, against XRT itself.
 *
 * 1. Clean failures, each one line: no XRT environment (names the MOECARD_XRT_NOOP opt-in), an
 *    unsupported emulation mode, a bad MOECARD_XRT_MODE, a missing xclbin, a malformed xclbin,
 *    no card (a child process with XRT's card shim and no card), an xclbin of another board.
 * 2. Direct mode on XRT's noop device (opted in with MOECARD_XRT_NOOP=1), for every board: every
 *    bank maps to the memory group of its MEM_TOPOLOGY tag, a buffer in every bank is written and
 *    read back, one submitted list holding every opcode completes (CU runs for the compute ops on
 *    the CU whose argument connectivity matches the operand banks, host work for the rest, host
 *    timestamps), DMA fills (pattern, host source, card source) land in the BOs through the DMA
 *    driver's channels (engine xrt on the backend's BOs) whose statistics backend_stats reports,
 *    a second "token" reuses runs and sub-buffers, malformed commands fail with their status and
 *    the next list succeeds, an injected driver fault fails a fill with the DMA-error status and
 *    the next list succeeds, fills of several MiB span descriptors and staging chunks,
 *    supports_op (the striped attention's CU where the board has one, with a striped append and
 *    attention in the list).
 * 3. Firmware mode: the control BO holds the board block and the rings in abi_ring.h layout; a
 *    submitted list appears in the command ring with its doorbell; without firmware (noop) the wait
 *    times out with a clear message; this test then plays the card (consume, post completions)
 *    across the 2^32 counter wrap, and checks ring-full and a hostile completion counter.
 * Kernels do not compute on the noop device: no numbers are compared. Plain program; prints
 * "N passed, N failed".
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/harness.h"
#include "abi_ring.h"
#include "backend/backend_impl.h"
#include "backend/backend_xrt.h"
#include "bitstream/bitstream.h"
#include "backend/xrt_dev.h"
#include "hls/mla_attn/mla_attn.h"

static const char *bdir(void)
{
	return getenv("B") ? getenv("B") : "build";
}

static const char *const cards[] = {"emu", "u55c", "u280", "v80"};

static void path_of(char *out, size_t len, const char *what, const char *card)
{
	if (!strcmp(what, "dtb"))
		snprintf(out, len, "%s/board/%s.dtb", bdir(), card);
	else
		snprintf(out, len, "%s/bitstream/%s.xclbin", bdir(), card);
}

static void env_clear(void)
{
	unsetenv("XILINX_XRT");
	unsetenv("XCL_EMULATION_MODE");
	unsetenv("MOECARD_XRT_NOOP");
	unsetenv("MOECARD_XCLBIN");
	unsetenv("MOECARD_XRT_MODE");
	unsetenv("MOECARD_XRT_DEVICE");
}

/* backend_open("xrt") expecting failure code want and a message containing each of needles. */
static void expect_fail(const char *what, const char *dtb, int want, const char *n1, const char *n2)
{
	struct backend *b = NULL;
	char err[512] = "";
	int rc = backend_open(&b, "xrt", &(struct backend_opts){.board = dtb}, err, sizeof err);
	int ok = rc == want && !b && strchr(err, '\n') == NULL && (!n1 || strstr(err, n1)) &&
		 (!n2 || strstr(err, n2));
	CHECK(ok, "%s: rc %d (want %d), message '%s' (want '%s'%s%s)", what, rc, want, err,
	      n1 ? n1 : "", n2 ? " and " : "", n2 ? n2 : "");
	if (ok)
		printf("clean failure, %s: %s\n", what, err);
	if (b)
		backend_close(b);
}

/* 1. Failures before XRT is loaded with a shim in this process. */
static void test_failures(void)
{
	char dtb[512], bad[600];
	path_of(dtb, sizeof dtb, "dtb", "emu");
	env_clear();
	expect_fail("no XRT environment", dtb, -ENODEV, "XILINX_XRT", "MOECARD_XRT_NOOP=1");
	setenv("XCL_EMULATION_MODE", "hw_emu", 1);
	expect_fail("unsupported emulation mode", dtb, -ENOTSUP, "hw_emu", NULL);
	env_clear();
	setenv("MOECARD_XRT_MODE", "turbo", 1);
	expect_fail("bad MOECARD_XRT_MODE", dtb, -EINVAL, "MOECARD_XRT_MODE=turbo", NULL);
	env_clear();
	setenv("MOECARD_XCLBIN", "/nonexistent/moecard.xclbin", 1);
	expect_fail("missing xclbin", dtb, -ENOENT, "/nonexistent/moecard.xclbin", "--xclbin");
	snprintf(bad, sizeof bad, "%s/xrt-bad.xclbin", bdir());
	FILE *f = fopen(bad, "wb");
	if (f) {
		fputs("xclbin2\0 this is not an axlf container", f);
		fclose(f);
	}
	setenv("MOECARD_XCLBIN", bad, 1);
	expect_fail("malformed xclbin", dtb, -EINVAL, "xrt-bad.xclbin", "not a well-formed xclbin");
	env_clear();
}

/* No card: a child with XRT's card shim (libxrt_core) and no card must fail at open. */
static void test_no_card(void)
{
	char dir[512], err[512], dtb[512];
	path_of(dtb, sizeof dtb, "dtb", "emu");
	snprintf(dir, sizeof dir, "%s/xrt-be-nocard", bdir());
	if (xrt_dev_nocard_setup(dir, err, sizeof err) != 0) {
		CHECK(0, "no-card shim setup: %s", err);
		return;
	}
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		unsetenv("XCL_EMULATION_MODE");
		struct backend *b = NULL;
		int rc =
		    backend_open(&b, "xrt", &(struct backend_opts){.board = dtb}, err, sizeof err);
		printf("clean failure, no card: %s\n", err);
		fflush(stdout);
		_exit(rc == -ENODEV && !b && strstr(err, "cannot open") &&
			      strstr(err, "MOECARD_XRT_NOOP")
			  ? 0
			  : 1);
	}
	int st = 0;
	waitpid(pid, &st, 0);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0,
	      "no-card child: status 0x%x (expected -ENODEV with one message, no abort)", st);
	env_clear();
}

/* --- 2. direct mode ---------------------------------------------------------------------- */

/* The board-block CU index of the first CU of kernel, skipping skip of them, and its dts index. */
static int cu_of(const struct board_desc *bd, const char *kernel, int skip, uint32_t *dcu)
{
	int blk = 0;
	for (uint32_t i = 0; i < bd->n_cus; i++) {
		if (!bitstream_kernel_find(bd->cu[i].kernel))
			continue;
		if (!strcmp(bd->cu[i].kernel, kernel) && skip-- == 0) {
			*dcu = i;
			return blk;
		}
		blk++;
	}
	return -1;
}

/* Bank of argument name of dts CU dcu. */
static uint32_t bank_of(const struct board_desc *bd, uint32_t dcu, const char *arg)
{
	const struct bitstream_kernel *k = bitstream_kernel_find(bd->cu[dcu].kernel);
	for (uint32_t i = 0; i < k->n_args; i++)
		if (!strcmp(k->arg[i].name, arg))
			return (uint32_t)bitstream_arg_bank(bd, dcu, i);
	return 0;
}

struct bufs {
	struct backend_buf *x8, *sa, *w, *sw, *y, *xf, *rw; /* GEMM (second GEMM CU's banks) */
	struct backend_buf *va, *vw, *vo, *vq, *vqs, *tab;  /* vec */
	struct backend_buf *q, *kv, *mo, *src;		    /* MLA */
	struct backend_buf *fill, *copy, *hostfill;	    /* DMA fills */
	/* the striped attention's stripe set: a buffer at one offset in each lane bank */
	struct backend_buf *lane[MLA_SYNTH_LANES];
	uint64_t lane_off;
	int has_mla, has_lanes; /* the board's mla_attn and mla_attn_lanes CUs */
};

static uint64_t A(struct backend_buf *b)
{
	return backend_buf_addr(b, 0);
}

/* The list with every opcode. Returns its length; *n_compute gets the CU commands. */
static uint32_t build_list(struct abi_cmd *c, const struct bufs *s, const uint8_t *host_src,
			   uint32_t *n_compute)
{
	uint32_t n = 0, nc = 0;
	const uint32_t M = 2, N = 256, K = 256;
	memset(c, 0, sizeof(*c) * 32);
	abi_cmd_hdr_set(&c[n++].hdr, ABI_OP_NOP, 0);
	/* GEMMs: plain fp8, fused SiLU*up into bf16, f32 input with route-weight accumulation,
	 * residual */
	uint32_t gf[4] = {0, ABI_GEMM_F_SILU_MUL | ABI_GEMM_F_Y_BF16,
			  ABI_GEMM_F_X_F32 | ABI_GEMM_F_ACCUM, ABI_GEMM_F_RESIDUAL};
	for (int i = 0; i < 4; i++, nc++) {
		abi_cmd_hdr_set(&c[n].hdr, ABI_OP_GEMM_FP8, 0);
		struct abi_gemm *g = &c[n++].u.gemm;
		g->a = gf[i] & ABI_GEMM_F_X_F32 ? A(s->xf) : A(s->x8);
		g->sa = gf[i] & ABI_GEMM_F_ACCUM   ? A(s->rw)
			: gf[i] & ABI_GEMM_F_X_F32 ? 0
						   : A(s->sa);
		g->w = A(s->w);
		g->sw = A(s->sw);
		g->y = A(s->y);
		g->m = M;
		g->n = N;
		g->k = K;
		g->flags = gf[i];
	}
	/* vector ops on rows of 256 */
	const uint32_t vops[] = {ABI_OP_RMSNORM,   ABI_OP_ROPE,	    ABI_OP_ROPE,
				 ABI_OP_ACT_QUANT, ABI_OP_SILU_MUL, ABI_OP_RESIDUAL_ADD,
				 ABI_OP_SOFTMAX};
	for (uint32_t i = 0; i < sizeof vops / sizeof vops[0]; i++, nc++) {
		abi_cmd_hdr_set(&c[n].hdr, vops[i], 0);
		struct abi_vec *v = &c[n++].u.vec;
		v->x = A(s->va);
		v->rows = 2;
		v->cols = 256;
		if (vops[i] == ABI_OP_ACT_QUANT) {
			v->out = A(s->vq);
			v->out2 = A(s->vqs);
			continue;
		}
		v->out = A(s->vo);
		if (vops[i] == ABI_OP_RMSNORM) {
			v->w = A(s->vw);
			v->param_f = 0x358637bdu; /* 1e-6f */
		} else if (vops[i] == ABI_OP_ROPE) {
			v->param_u = 3;
			v->param_f = 0x461c4000u; /* theta base 10000 */
			if (i == 1) {
				v->tab = A(s->tab);
			} else {
				v->param_f = 0x461c4000u; /* 10000.0f */
				v->cols = 64;		  /* q_pe-like slice of a wider row */
				v->lda = 256;
				v->ldo = 256;
				v->x = backend_buf_addr(s->va, 192 * 4);
				v->out = backend_buf_addr(s->vo, 192 * 4);
			}
		} else if (vops[i] != ABI_OP_SOFTMAX) {
			v->x2 = A(s->vw);
		}
	}
	/* KV append of one [128 + 16] record at position 5, then attention over 6 positions */
	const struct abi_mla mla = {.q = A(s->q),
				    .kv = A(s->kv),
				    .out = A(s->mo),
				    .n_heads = 4,
				    .kv_lora = 128,
				    .rope = 16,
				    .n_ctx = 6,
				    .ctx_cap = 64,
				    .scale = 0x3e8a3a00u};
	if (s->has_mla) {
		abi_cmd_hdr_set(&c[n].hdr, ABI_OP_KV_APPEND, 0);
		c[n].u.kv = (struct abi_kv_append){
		    .src = A(s->src), .cache = A(s->kv), .row = 144, .pos = 5, .ctx_cap = 64};
		n++, nc++;
		abi_cmd_hdr_set(&c[n].hdr, ABI_OP_MLA_ATTN, 0);
		c[n++].u.mla = mla;
		nc++;
	}
	/* the same on the striped cache: position 5 is in block 0, lane 0's first records */
	if (s->has_lanes) {
		abi_cmd_hdr_set(&c[n].hdr, ABI_OP_KV_APPEND, 0);
		c[n].u.kv = (struct abi_kv_append){.src = A(s->src),
						   .cache = ABI_ADDR(0, s->lane_off + 5 * 144 * 4),
						   .row = 144,
						   .ctx_cap = 1};
		n++, nc++;
		abi_cmd_hdr_set(&c[n].hdr, ABI_OP_MLA_ATTN_LANES, 0);
		struct abi_mla_lanes *ml = &c[n++].u.mlal;
		ml->q = mla.q;
		ml->out = mla.out;
		ml->cache_off = s->lane_off;
		ml->n_heads = mla.n_heads;
		ml->kv_lora = mla.kv_lora;
		ml->rope = mla.rope;
		ml->n_ctx = mla.n_ctx;
		ml->ctx_cap = mla.ctx_cap;
		ml->scale = mla.scale;
		nc++;
	}
	/* DMA fills: pattern, card to card, host source; the copy signals fence 3 */
	abi_cmd_hdr_set(&c[n].hdr, ABI_OP_DMA_FILL, 0);
	c[n++].u.dma = (struct abi_dma_fill){.dst = A(s->fill),
					     .bytes = 3000,
					     .flags = ABI_DMA_F_PATTERN,
					     .word = ABI_DMA_WORD(ABI_DMA_CHAN_ANY, 0xA5, 7)};
	abi_cmd_hdr_set(&c[n].hdr, ABI_OP_DMA_FILL, 0);
	c[n].u.dma = (struct abi_dma_fill){.src = A(s->fill),
					   .dst = A(s->copy),
					   .bytes = 3000,
					   .word = ABI_DMA_WORD(ABI_DMA_CHAN_ANY, 0, 7)};
	abi_cmd_signal(&c[n++].hdr, 3, 11);
	abi_cmd_hdr_set(&c[n].hdr, ABI_OP_DMA_FILL, 0);
	c[n++].u.dma = (struct abi_dma_fill){.src = (uint64_t)(uintptr_t)host_src,
					     .dst = A(s->hostfill),
					     .bytes = 4096,
					     .flags = ABI_DMA_F_SRC_HOST,
					     .word = ABI_DMA_WORD(ABI_DMA_CHAN_ANY, 0, 8)};
	/* a fence waiting on the copy, a barrier, a timestamp */
	abi_cmd_hdr_set(&c[n].hdr, ABI_OP_FENCE, 0);
	abi_cmd_wait(&c[n].hdr, 3, 11);
	abi_cmd_signal(&c[n++].hdr, 4, 1);
	abi_cmd_hdr_set(&c[n++].hdr, ABI_OP_BARRIER, 0);
	abi_cmd_hdr_set(&c[n++].hdr, ABI_OP_TIMESTAMP, 0);
	*n_compute = nc;
	return n;
}

static int alloc_all(struct backend *b, const struct board_desc *bd, struct bufs *s)
{
	uint32_t g1 = 0, v1 = 0, m1 = 0, l1 = 0;
	/* the GEMM operands live in the banks of the second GEMM CU, when there is one */
	if (cu_of(bd, "fp8_gemm", 1, &g1) < 0)
		cu_of(bd, "fp8_gemm", 0, &g1);
	cu_of(bd, "vec_ops", 0, &v1);
	s->has_mla = cu_of(bd, "mla_attn", 0, &m1) >= 0;
	s->has_lanes = cu_of(bd, "mla_attn_lanes", 0, &l1) >= 0;
	if (!s->has_mla) /* q and out on the striped attention's ports */
		m1 = l1;
	uint32_t bx = bank_of(bd, g1, "x"), bw = bank_of(bd, g1, "w"), by = bank_of(bd, g1, "y");
	uint32_t ba = bank_of(bd, v1, "a"), bb = bank_of(bd, v1, "b"), bo = bank_of(bd, v1, "y");
	uint32_t bq = bank_of(bd, m1, "q_lat"),
		 bc = s->has_mla ? bank_of(bd, m1, "cache") : bank_of(bd, m1, "q_lat");
	uint32_t bmo = bank_of(bd, m1, "out");
	struct {
		struct backend_buf **p;
		uint32_t bank;
		size_t bytes;
	} t[] = {
	    {&s->x8, bx, 2 * 256},	{&s->sa, bx, 2 * 2 * 4},     {&s->xf, bx, 2 * 256 * 4},
	    {&s->w, bw, 2 * 256 * 256}, {&s->sw, bw, 2 * 2 * 2 * 4}, {&s->y, by, 2 * 256 * 4},
	    {&s->rw, bx, 2 * 4},	{&s->va, ba, 2 * 256 * 4},   {&s->vw, bb, 2 * 256 * 4},
	    {&s->tab, bb, 4 * 256 * 4}, {&s->vo, bo, 2 * 256 * 4},   {&s->vq, bo, 2 * 256},
	    {&s->vqs, bo, 2 * 2 * 4},	{&s->q, bq, 4 * 144 * 4},    {&s->src, bq, 144 * 4},
	    {&s->kv, bc, 64 * 144 * 4}, {&s->mo, bmo, 4 * 128 * 4},  {&s->fill, by, 3000},
	    {&s->copy, bo, 3000},	{&s->hostfill, bc, 4096},
	};
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
		if (backend_buf_alloc(b, t[i].bank, t[i].bytes, 64, t[i].p))
			return -1;
	/* one 32-token block of 144-float records a lane (ctx_cap 64: blocks 0 and 1 on lanes 0
	 * and 1), each at 1 MiB into its bank */
	for (uint32_t i = 0; s->has_lanes && i < MLA_SYNTH_LANES; i++) {
		if (backend_buf_alloc(b, i, 32 * 144 * 4, 1u << 20, &s->lane[i]))
			return -1;
		uint64_t off = ABI_ADDR_OFF(A(s->lane[i]));
		if (i == 0)
			s->lane_off = off;
		else if (off != s->lane_off)
			return -1;
	}
	return 0;
}

/* Submits list c[0..n) on ring 0 and waits; returns the wait's result. */
static int run_list(struct backend *b, const struct abi_cmd *c, uint32_t n)
{
	uint64_t fence = 0;
	int rc = backend_submit(b, 0, c, n, &fence);
	return rc ? rc : backend_wait(b, fence, 5000);
}

/* An injected driver fault fails the next fill with ABI_ST_DMA_ERROR (detail EIO) and the list
 * with -EIO; the driver counts it; the next list's fill lands. */
static void test_fill_fault(struct backend *b, const char *card, const struct bufs *s)
{
	static uint8_t src2[4096];
	for (size_t i = 0; i < sizeof src2; i++)
		src2[i] = (uint8_t)(i * 5 + 1);
	struct abi_cmd c[2];
	memset(c, 0, sizeof c);
	abi_cmd_hdr_set(&c[0].hdr, ABI_OP_DMA_FILL, 0);
	c[0].u.dma = (struct abi_dma_fill){.src = (uint64_t)(uintptr_t)src2,
					   .dst = A(s->hostfill),
					   .bytes = 4096,
					   .flags = ABI_DMA_F_SRC_HOST,
					   .word = ABI_DMA_WORD(ABI_DMA_CHAN_ANY, 0, 8)};
	abi_cmd_hdr_set(&c[1].hdr, ABI_OP_TIMESTAMP, 0);
	struct backend_stats s0, s1, s2;
	backend_stats(b, &s0);
	int armed = backend_fault_set(b, BACKEND_FAULT_DMA_ERROR, 1);
	int rc = run_list(b, c, 2);
	const struct abi_cpl *cpl;
	uint32_t n;
	backend_completions(b, &cpl, &n);
	backend_stats(b, &s1);
	uint8_t back[4096];
	backend_buf_read(b, s->hostfill, 0, back, sizeof back);
	CHECK(armed == 0 && rc == -EIO && n == 2 &&
		  ABI_CPL_STATUS(cpl[0].word1) == ABI_ST_DMA_ERROR && cpl[0].detail == EIO &&
		  ABI_CPL_STATUS(cpl[1].word1) == ABI_ST_OK &&
		  strstr(backend_xrt_error(b), "dma") && s1.dma.xfers - s0.dma.xfers == 1 &&
		  s1.dma.xfers_bad - s0.dma.xfers_bad == 1 && s1.dma.faults - s0.dma.faults == 1 &&
		  s1.fills == s0.fills && memcmp(back, src2, sizeof back) != 0,
	      "%s: injected driver fault: arm %d, wait %d, fill %s detail %u, '%s'; driver %llu "
	      "transfers, %llu bad, %llu faults",
	      card, armed, rc, n ? abi_status_name(ABI_CPL_STATUS(cpl[0].word1)) : "-",
	      n ? cpl[0].detail : 0, backend_xrt_error(b),
	      (unsigned long long)(s1.dma.xfers - s0.dma.xfers),
	      (unsigned long long)(s1.dma.xfers_bad - s0.dma.xfers_bad),
	      (unsigned long long)(s1.dma.faults - s0.dma.faults));
	rc = run_list(b, c, 2);
	backend_stats(b, &s2);
	backend_buf_read(b, s->hostfill, 0, back, sizeof back);
	CHECK(rc == 0 && !memcmp(back, src2, sizeof back) && s2.dma.xfers_bad == s1.dma.xfers_bad &&
		  s2.fills == s1.fills + 1 && s2.dma.fences == s1.dma.fences + 1,
	      "%s: the list after the fault: %d %s", card, rc, backend_xrt_error(b));
	CHECK(backend_fault_set(b, BACKEND_FAULT_DMA_ERROR, 3) == 0 &&
		  backend_fault_set(b, BACKEND_FAULT_DMA_ERROR, 0) == 1,
	      "%s: disarming an unfired driver fault does not return 1", card);
}

/* Fills of several MiB: a pattern over 3 descriptors of one transfer, a card-source copy staged
 * in 1 MiB chunks (3 x (C2H + H2C)), checked byte for byte. */
static void test_big_fills(struct backend *b, const struct board_desc *bd)
{
	const uint64_t big = (5u << 20) / 2; /* 2.5 MiB */
	struct backend_buf *p = NULL, *q = NULL;
	uint32_t bank = bd->n_banks - 1;
	if (backend_buf_alloc(b, bank, big, 4096, &p) || backend_buf_alloc(b, 0, big, 4096, &q)) {
		CHECK(0, "big fills: cannot allocate 2 x %llu bytes", (unsigned long long)big);
		return;
	}
	struct abi_cmd c[2];
	memset(c, 0, sizeof c);
	abi_cmd_hdr_set(&c[0].hdr, ABI_OP_DMA_FILL, 0);
	c[0].u.dma = (struct abi_dma_fill){.dst = A(p),
					   .bytes = big,
					   .flags = ABI_DMA_F_PATTERN,
					   .word = ABI_DMA_WORD(1, 0x5A, 1)};
	abi_cmd_hdr_set(&c[1].hdr, ABI_OP_DMA_FILL, 0);
	c[1].u.dma = (struct abi_dma_fill){
	    .src = A(p), .dst = A(q), .bytes = big, .word = ABI_DMA_WORD(ABI_DMA_CHAN_ANY, 0, 2)};
	struct backend_stats s0, s1;
	backend_stats(b, &s0);
	int rc = run_list(b, c, 2);
	backend_stats(b, &s1);
	uint8_t *back = malloc(big);
	size_t bad = 0;
	if (back && !backend_buf_read(b, q, 0, back, big))
		for (uint64_t i = 0; i < big; i++)
			bad += back[i] != 0x5A;
	else
		bad = big;
	free(back);
	CHECK(rc == 0 && bad == 0 && s1.dma.xfers - s0.dma.xfers == 7 &&
		  s1.dma.descs - s0.dma.descs == 9 && s1.dma.bytes - s0.dma.bytes == 3 * big,
	      "big fills: wait %d '%s', %zu wrong bytes; driver %llu transfers, %llu "
	      "descriptors, %llu bytes",
	      rc, backend_xrt_error(b), bad, (unsigned long long)(s1.dma.xfers - s0.dma.xfers),
	      (unsigned long long)(s1.dma.descs - s0.dma.descs),
	      (unsigned long long)(s1.dma.bytes - s0.dma.bytes));
	printf("u55c direct: DMA fills of 2.5 MiB through the driver: %llu transfers, %llu "
	       "descriptors, %.1f MiB\n",
	       (unsigned long long)(s1.dma.xfers - s0.dma.xfers),
	       (unsigned long long)(s1.dma.descs - s0.dma.descs),
	       (double)(s1.dma.bytes - s0.dma.bytes) / (1 << 20));
	backend_buf_free(b, q);
	backend_buf_free(b, p);
}

static void test_direct(const char *card)
{
	char dtb[512], err[512] = "";
	path_of(dtb, sizeof dtb, "dtb", card);
	struct backend *b = NULL;
	int rc = backend_open(&b, "xrt", &(struct backend_opts){.board = dtb}, err, sizeof err);
	CHECK(rc == 0 && b, "%s: open on the noop device: %d %s", card, rc, err);
	if (rc || !b)
		return;
	const struct board_desc *bd = &b->board;
	struct backend_xrt_counters ct;
	backend_xrt_counters(b, &ct);
	CHECK(ct.noop == 1 && ct.mode == BACKEND_XRT_DIRECT, "%s: noop %d mode %u", card, ct.noop,
	      ct.mode);
	CHECK(!strcmp(b->iface->name, "xrt") && b->iface->version == BACKEND_I_VERSION,
	      "%s: iface %s v%u", card, b->iface->name, b->iface->version);

	/* every bank: its memory group (metadata xclbins list banks in dts order), a buffer written
	 * and read back */
	int bad_group = 0, bad_rt = 0;
	static struct backend_buf *per_bank[BOARD_MAX_BANKS];
	for (uint32_t k = 0; k < bd->n_banks; k++) {
		bad_group += backend_xrt_bank_group(b, k) != (int)k;
		uint8_t src[8192], back[8192];
		for (size_t i = 0; i < sizeof src; i++)
			src[i] = (uint8_t)(i * 7u + k * 13u + 1u);
		memset(back, 0, sizeof back);
		if (backend_buf_alloc(b, k, sizeof src, 4096, &per_bank[k]) ||
		    backend_buf_bank(per_bank[k]) != k ||
		    backend_buf_write(b, per_bank[k], 0, src, sizeof src) ||
		    backend_buf_read(b, per_bank[k], 100, back, sizeof back - 100) ||
		    memcmp(src + 100, back, sizeof back - 100))
			bad_rt++;
	}
	CHECK(bad_group == 0, "%s: %d banks map to another memory group than their tag", card,
	      bad_group);
	CHECK(bad_rt == 0, "%s: %d of %u banks failed alloc/write/read-back", card, bad_rt,
	      bd->n_banks);
	uint8_t tmp[16];
	CHECK(backend_buf_write(b, per_bank[0], 8190, tmp, 16) == -ERANGE,
	      "%s: write past a buffer's end is not -ERANGE", card);
	CHECK(backend_buf_alloc(b, bd->n_banks, 64, 64, &per_bank[BOARD_MAX_BANKS - 1]) == -EINVAL,
	      "%s: allocation in a bank past the board's is not -EINVAL", card);

	/* supports_op: every opcode but the GEMV and router CUs' and the row gather / combine (no
	 * XRT binding: the scheduler keeps the fp8_gemm lowering and the token loop on this
	 * backend); the attention CUs where the board has them */
	uint32_t dcu;
	int has_mla = cu_of(bd, "mla_attn", 0, &dcu) >= 0;
	int has_lanes = cu_of(bd, "mla_attn_lanes", 0, &dcu) >= 0, wrong = 0;
	for (uint32_t op = 0; op < ABI_OP_COUNT; op++) {
		int want = op == ABI_OP_GEMV || op == ABI_OP_MOE_ROUTE || op == ABI_OP_GATHER ||
				   op == ABI_OP_COMBINE
			       ? 0
			   : op == ABI_OP_MLA_ATTN	 ? has_mla
			   : op == ABI_OP_MLA_ATTN_LANES ? has_lanes
							 : 1;
		if (backend_supports_op(b, op) != want && wrong++ < 3)
			printf("  %s: supports_op(%s) = %d, expected %d\n", card, abi_op_name(op),
			       backend_supports_op(b, op), want);
	}
	CHECK(wrong == 0 && !backend_supports_op(b, ABI_OP_COUNT) && (has_mla || has_lanes),
	      "%s: %d opcodes supported otherwise than expected (mla_attn %d, lanes %d)", card,
	      wrong, has_mla, has_lanes);

	/* the list of every opcode, twice ("two tokens") */
	struct bufs s;
	memset(&s, 0, sizeof s);
	rc = alloc_all(b, bd, &s);
	CHECK(rc == 0, "%s: operand buffers failed to allocate", card);
	if (rc) {
		backend_close(b);
		return;
	}
	static uint8_t host_src[4096];
	for (size_t i = 0; i < sizeof host_src; i++)
		host_src[i] = (uint8_t)(i ^ 0x3c);
	uint8_t pat[3000];
	for (size_t i = 0; i < sizeof pat; i++)
		pat[i] = (uint8_t)i;
	backend_buf_write(b, s.copy, 0, pat, sizeof pat);
	struct abi_cmd cmds[32];
	uint32_t nc = 0, n = build_list(cmds, &s, host_src, &nc);
	uint32_t g2 = 0, v1 = 0, m1 = 0;
	int gemm_cu = cu_of(bd, "fp8_gemm", 1, &g2);
	if (gemm_cu < 0)
		gemm_cu = cu_of(bd, "fp8_gemm", 0, &g2);
	int vec_cu = cu_of(bd, "vec_ops", 0, &v1), mla_cu = cu_of(bd, "mla_attn", 0, &m1);
	int lanes_cu = cu_of(bd, "mla_attn_lanes", 0, &m1);
	struct backend_xrt_counters c0, c1, c2;
	backend_xrt_counters(b, &c0);
	for (int tok = 0; tok < 2; tok++) {
		uint64_t fence = 0;
		rc = backend_submit(b, 0, cmds, n, &fence);
		CHECK(rc == 0, "%s token %d: submit %d", card, tok, rc);
		uint64_t f2;
		CHECK(backend_submit(b, 0, cmds, n, &f2) == -EBUSY,
		      "%s: a second submit while a list is in flight is not -EBUSY", card);
		rc = backend_wait(b, fence, 5000);
		CHECK(rc == 0, "%s token %d: wait %d: %s", card, tok, rc, backend_xrt_error(b));
		const struct abi_cpl *cpl;
		uint32_t ncpl;
		backend_completions(b, &cpl, &ncpl);
		int bad_st = 0, bad_ts = 0, bad_cu = 0;
		uint64_t prev_end = 0;
		for (uint32_t i = 0; i < ncpl; i++) {
			uint32_t op = ABI_W0_OP(cmds[i].hdr.word0), cu = ABI_CPL_CU(cpl[i].word1);
			if (ABI_CPL_STATUS(cpl[i].word1) != ABI_ST_OK || cpl[i].tag != i ||
			    ABI_CPL_OP(cpl[i].word1) != op) {
				if (bad_st++ < 3)
					printf("  %s cmd %u op %u: status %s detail %u\n", card, i,
					       op, abi_status_name(ABI_CPL_STATUS(cpl[i].word1)),
					       cpl[i].detail);
			}
			bad_ts += cpl[i].t_start > cpl[i].t_end || cpl[i].t_end < prev_end;
			prev_end = cpl[i].t_end;
			int want = op == ABI_OP_GEMM_FP8			  ? gemm_cu
				   : op >= ABI_OP_RMSNORM && op <= ABI_OP_SOFTMAX ? vec_cu
				   : op == ABI_OP_MLA_ATTN			  ? mla_cu
				   : op == ABI_OP_MLA_ATTN_LANES		  ? lanes_cu
				   : op == ABI_OP_KV_APPEND			  ? -2
										  : -1;
			if (want == -1)
				bad_cu += cu != ABI_CPL_CU_NONE;
			else if (want == -2)
				bad_cu += cu == ABI_CPL_CU_NONE ||
					  !(b->blk.cus[cu].ops_mask >> ABI_OP_KV_APPEND & 1);
			else
				bad_cu += cu != (uint32_t)want;
		}
		CHECK(ncpl == n && bad_st == 0, "%s token %d: %d of %u commands not ok", card, tok,
		      bad_st, n);
		CHECK(bad_ts == 0, "%s token %d: %d completions with unordered host timestamps",
		      card, tok, bad_ts);
		CHECK(bad_cu == 0,
		      "%s token %d: %d commands ran on another CU than their operand banks select",
		      card, tok, bad_cu);
		backend_xrt_counters(b, tok ? &c2 : &c1);
	}
	CHECK(c1.runs_started - c0.runs_started == nc && c2.runs_started - c1.runs_started == nc &&
		  c2.runs_done == c2.runs_started,
	      "%s: runs per list %llu then %llu (expected %u), %llu done", card,
	      (unsigned long long)(c1.runs_started - c0.runs_started),
	      (unsigned long long)(c2.runs_started - c1.runs_started), nc,
	      (unsigned long long)c2.runs_done);
	CHECK(c2.runs_open == c1.runs_open && c2.sub_bos == c1.sub_bos &&
		  c2.scratch_bos == c1.scratch_bos && c1.runs_open <= 5,
	      "%s: the second list opened %llu runs, %llu sub-BOs, %llu scratch BOs (expected 0; "
	      "first list %llu runs)",
	      card, (unsigned long long)(c2.runs_open - c1.runs_open),
	      (unsigned long long)(c2.sub_bos - c1.sub_bos),
	      (unsigned long long)(c2.scratch_bos - c1.scratch_bos),
	      (unsigned long long)c1.runs_open);
	CHECK(c2.host_cmds - c1.host_cmds == n - nc, "%s: %llu host commands per list, expected %u",
	      card, (unsigned long long)(c2.host_cmds - c1.host_cmds), n - nc);
	/* the fills are host work, so they are real even on the noop device */
	uint8_t back[4096];
	int bad_fill = 0;
	backend_buf_read(b, s.fill, 0, back, 3000);
	for (int i = 0; i < 3000; i++)
		bad_fill += back[i] != 0xA5;
	backend_buf_read(b, s.copy, 0, back, 3000);
	for (int i = 0; i < 3000; i++)
		bad_fill += back[i] != 0xA5;
	backend_buf_read(b, s.hostfill, 0, back, 4096);
	bad_fill += memcmp(back, host_src, 4096) != 0;
	CHECK(bad_fill == 0, "%s: DMA fills: %d wrong bytes", card, bad_fill);
	/* per list: pattern (1 transfer), card source (C2H into host scratch, then H2C), host
	 * source (1): 4 driver transfers, 3000 + 2 * 3000 + 4096 bytes, one descriptor each */
	struct backend_stats ds;
	backend_stats(b, &ds);
	CHECK(ds.dma_engine && !strcmp(ds.dma_engine, "xrt") && ds.dma.xfers == 8 &&
		  ds.dma.xfers_bad == 0 && ds.dma.descs == 8 && ds.dma.bytes == 2 * 13096 &&
		  ds.dma.fences == 8 && ds.dma.faults == 0 && ds.fills == 6 &&
		  ds.fill_bytes == 2 * 10096,
	      "%s: DMA driver stats: engine %s, %llu transfers (%llu bad), %llu descriptors, "
	      "%llu bytes, fences %llu; %llu fills of %llu bytes",
	      card, ds.dma_engine ? ds.dma_engine : "none", (unsigned long long)ds.dma.xfers,
	      (unsigned long long)ds.dma.xfers_bad, (unsigned long long)ds.dma.descs,
	      (unsigned long long)ds.dma.bytes, (unsigned long long)ds.dma.fences,
	      (unsigned long long)ds.fills, (unsigned long long)ds.fill_bytes);
	if (!strcmp(card, "u55c"))
		printf(
		    "%-5s direct: %u commands per list (%u CU runs on %llu reused runs, %u by the "
		    "host), %llu sub-BOs, %llu scratch BOs, all completed twice\n",
		    card, n, nc, (unsigned long long)c2.runs_open, n - nc,
		    (unsigned long long)c2.sub_bos, (unsigned long long)c2.scratch_bos);

	/* malformed and unsatisfiable commands fail with their status; the next list succeeds */
	struct abi_cmd badl[4];
	memset(badl, 0, sizeof badl);
	abi_cmd_hdr_set(&badl[0].hdr, ABI_OP_NOP, 0);
	badl[0].hdr.word0 ^= 0x1; /* magic */
	badl[1] = cmds[1];
	badl[1].u.gemm.w = ABI_ADDR(backend_buf_bank(s.w), 1ull << 28); /* nothing allocated */
	abi_cmd_hdr_set(&badl[2].hdr, ABI_OP_NOP, 0);
	abi_cmd_wait(&badl[2].hdr, 9, 5); /* never signalled */
	abi_cmd_hdr_set(&badl[3].hdr, ABI_OP_TIMESTAMP, 0);
	uint64_t fence;
	rc = backend_submit(b, 1, badl, 4, &fence);
	int wr = rc ? rc : backend_wait(b, fence, 1000);
	const struct abi_cpl *cpl;
	uint32_t ncpl;
	backend_completions(b, &cpl, &ncpl);
	uint32_t want[4] = {ABI_ST_BAD_MAGIC, ABI_ST_BAD_ADDR, ABI_ST_DEP_ERROR, ABI_ST_OK};
	int bad = ncpl != 4;
	for (uint32_t i = 0; i < 4 && i < ncpl; i++)
		bad += ABI_CPL_STATUS(cpl[i].word1) != want[i] || ABI_CPL_QUEUE(cpl[i].word1) != 1;
	CHECK(wr == -EIO && bad == 0 && strstr(backend_xrt_error(b), "bad-magic"),
	      "%s: bad list: wait %d, %d unexpected statuses (%s %s %s %s), message '%s'", card, wr,
	      bad, abi_status_name(ABI_CPL_STATUS(cpl[0].word1)),
	      abi_status_name(ABI_CPL_STATUS(cpl[1].word1)),
	      abi_status_name(ABI_CPL_STATUS(cpl[2].word1)),
	      abi_status_name(ABI_CPL_STATUS(cpl[3].word1)), backend_xrt_error(b));
	CHECK(backend_submit(b, 0, cmds, 0, &fence) == -EINVAL &&
		  backend_submit(b, FW_CFG_N_QUEUES, cmds, 1, &fence) == -EINVAL,
	      "%s: empty list or bad queue is not -EINVAL", card);
	rc = backend_submit(b, 0, cmds, n, &fence);
	rc = rc ? rc : backend_wait(b, fence, 5000);
	CHECK(rc == 0, "%s: the list after a failed one: %d %s", card, rc, backend_xrt_error(b));
	struct backend_stats st;
	backend_stats(b, &st);
	CHECK(st.submits == 4 && st.cmds == 3 * n + 4 && st.h2c_bytes > 0 && st.card_ns > 0,
	      "%s: stats: %llu submits, %llu commands, %llu bytes to the card", card,
	      (unsigned long long)st.submits, (unsigned long long)st.cmds,
	      (unsigned long long)st.h2c_bytes);
	CHECK(backend_fault_set(b, BACKEND_FAULT_CU_HANG, 1) == -ENOTSUP,
	      "%s: CU fault injection is not -ENOTSUP", card);
	test_fill_fault(b, card, &s);
	if (!strcmp(card, "u55c"))
		test_big_fills(b, bd);
	/* free in mixed order, then close (which releases what is left) */
	backend_buf_free(b, s.kv);
	backend_buf_free(b, per_bank[0]);
	backend_xrt_counters(b, &ct);
	uint32_t nlb = s.has_lanes ? MLA_SYNTH_LANES : 0; /* the stripe set's buffers */
	CHECK(ct.bufs == bd->n_banks + 20 + nlb - 2, "%s: %llu live buffers, expected %u", card,
	      (unsigned long long)ct.bufs, bd->n_banks + 20 + nlb - 2);
	backend_close(b);
}

/* An xclbin of another board is refused at open with a message naming the file. */
static void test_wrong_xclbin(void)
{
	char dtb[512], x[512], err[512] = "";
	path_of(dtb, sizeof dtb, "dtb", "u55c");
	path_of(x, sizeof x, "xclbin", "emu");
	struct backend *b = NULL;
	struct backend_opts o = {.board = dtb, .xclbin = x};
	int rc = backend_open(&b, "xrt", &o, err, sizeof err);
	CHECK(rc < 0 && !b && strstr(err, "emu.xclbin"), "u55c board with emu.xclbin: %d '%s'", rc,
	      err);
	if (rc < 0)
		printf("clean failure, another board's xclbin: %s\n", err);
	if (b)
		backend_close(b);
}

/* --- 3. firmware mode ------------------------------------------------------------------------ */

/* The card side: consume every command of ring q and post a completion per command. */
static int card_serve(struct backend *b, const struct backend_xrt_fw_layout *l, uint32_t q,
		      int post, uint32_t *got)
{
	static uint8_t cmdr[1 << 16], cplr[1 << 16];
	struct abi_ring_view cv = {0}, pv = {0};
	if (backend_xrt_ctl_read(b, l->cmdq_off[q], cmdr, l->cmdq_bytes) ||
	    backend_xrt_ctl_read(b, l->cplq_off, cplr, l->cplq_bytes))
		return -EIO;
	int r =
	    abi_ring_attach(&cv, ABI_RING_CONSUMER, cmdr, l->cmdq_bytes, sizeof(struct abi_cmd));
	if (r)
		return r;
	if ((r = abi_ring_attach(&pv, ABI_RING_PRODUCER, cplr, l->cplq_bytes,
				 sizeof(struct abi_cpl))))
		return r;
	struct abi_cmd c;
	struct abi_cpl done[64];
	uint32_t n = 0;
	while (n < 64 && abi_ring_pop(&cv, &c) == 0) {
		done[n] =
		    (struct abi_cpl){.tag = c.hdr.tag,
				     .word1 = ABI_CPL_W1(ABI_ST_OK, ABI_W0_OP(c.hdr.word0), q, 0),
				     .seq = n,
				     .t_start = 100 + n,
				     .t_end = 200 + n};
		n++;
	}
	/* completions out of order, as a card with several CUs posts them */
	for (uint32_t i = 0; post && i < n; i++)
		if ((r = abi_ring_push(&pv, &done[n - 1 - i])))
			return r;
	*got = n;
	if (backend_xrt_ctl_write(b, l->cmdq_off[q], cmdr, l->cmdq_bytes) ||
	    backend_xrt_ctl_write(b, l->cplq_off, cplr, l->cplq_bytes))
		return -EIO;
	return 0;
}

static void test_firmware(const char *card)
{
	char dtb[512], err[512] = "";
	path_of(dtb, sizeof dtb, "dtb", card);
	static struct board_desc bd;
	if (board_load(dtb, &bd, err, sizeof err)) {
		CHECK(0, "%s: %s", dtb, err);
		return;
	}
	struct backend_xrt_opts o = {
	    .mode = BACKEND_XRT_FIRMWARE, .ring_log2 = 3, .ring_start = UINT32_MAX - 4};
	struct backend *b = NULL;
	int rc = backend_xrt_open(&b, &bd, dtb, &o, err, sizeof err);
	CHECK(rc == 0, "%s firmware mode: open %d %s", card, rc, err);
	if (rc)
		return;
	struct backend_xrt_fw_layout l;
	CHECK(backend_xrt_fw_layout(b, &l) == 0 && l.bytes % 4096 == 0 && l.dev_addr != 0,
	      "%s: control BO layout", card);
	/* the board block and the rings as the firmware attaches them */
	struct abi_board blk;
	struct abi_ring hdr;
	backend_xrt_ctl_read(b, l.board_off, &blk, sizeof blk);
	CHECK(!memcmp(&blk, &b->blk, sizeof blk), "%s: board block in the control BO differs",
	      card);
	int bad_ring = 0;
	for (uint32_t q = 0; q < FW_CFG_N_QUEUES; q++) {
		backend_xrt_ctl_read(b, l.cmdq_off[q], &hdr, sizeof hdr);
		bad_ring += hdr.magic != ABI_RING_MAGIC || ABI_RING_GEOM_LOG2(hdr.geom) != 3 ||
			    ABI_RING_GEOM_SLOT(hdr.geom) != sizeof(struct abi_cmd) ||
			    hdr.produced != UINT32_MAX - 4 || hdr.consumed != UINT32_MAX - 4 ||
			    l.cmdq_off[q] % 64 || l.cmdq_off[q] < l.telem_off + 4096;
	}
	backend_xrt_ctl_read(b, l.cplq_off, &hdr, sizeof hdr);
	bad_ring += hdr.magic != ABI_RING_MAGIC || ABI_RING_GEOM_LOG2(hdr.geom) != 5 ||
		    ABI_RING_GEOM_SLOT(hdr.geom) != sizeof(struct abi_cpl);
	CHECK(bad_ring == 0, "%s: %d ring headers not in abi_ring.h layout", card, bad_ring);

	/* a list of three: slots, doorbell, then the timeout without firmware */
	struct abi_cmd cmds[9];
	memset(cmds, 0, sizeof cmds);
	for (int i = 0; i < 9; i++) {
		abi_cmd_hdr_set(&cmds[i].hdr, i % 2 ? ABI_OP_TIMESTAMP : ABI_OP_NOP, 77);
		cmds[i].hdr.signal_value = 1000u + (uint32_t)i; /* marks the slot */
	}
	uint64_t fence;
	rc = backend_submit(b, 1, cmds, 3, &fence);
	CHECK(rc == 0, "%s: firmware-mode submit %d", card, rc);
	static uint8_t ring[1 << 16];
	backend_xrt_ctl_read(b, l.cmdq_off[1], ring, l.cmdq_bytes);
	const struct abi_ring *rh = (const void *)ring;
	int bad_slot = 0;
	for (uint32_t i = 0; i < 3; i++) {
		uint32_t ctr = UINT32_MAX - 4 + i;
		const struct abi_cmd *s =
		    (const void *)(ring + sizeof(struct abi_ring) +
				   (size_t)(ctr & 7) * sizeof(struct abi_cmd));
		bad_slot += s->hdr.tag != i || s->hdr.signal_value != 1000u + i ||
			    ABI_W0_OP(s->hdr.word0) != ABI_W0_OP(cmds[i].hdr.word0);
	}
	struct backend_xrt_counters ct;
	backend_xrt_counters(b, &ct);
	CHECK(rh->produced == UINT32_MAX - 1 && rh->consumed == UINT32_MAX - 4 && bad_slot == 0 &&
		  ct.doorbells == 1,
	      "%s: command ring after submit: produced %u consumed %u, %d bad slots, %llu "
	      "doorbells",
	      card, rh->produced, rh->consumed, bad_slot, (unsigned long long)ct.doorbells);
	rc = backend_wait(b, fence, 30);
	const char *e = backend_xrt_error(b);
	CHECK(rc == -ETIMEDOUT && strstr(e, "firmware") && strstr(e, "0 of 3") &&
		  strstr(e, "noop") && !strchr(e, '\n'),
	      "%s: wait without firmware: %d '%s'", card, rc, e);
	if (rc == -ETIMEDOUT)
		printf("clean timeout, firmware mode on the noop device: %s\n", e);

	/* play the card; lists cross the 2^32 counter wrap */
	int bad_list = 0;
	for (int list = 0; list < 4; list++) {
		uint32_t got = 0;
		if (list) {
			rc = backend_submit(b, 1, cmds + 2 * list, 3, &fence);
			if (rc) {
				bad_list++;
				continue;
			}
		}
		rc = card_serve(b, &l, 1, 1, &got);
		int w = rc ? rc : backend_wait(b, fence, 1000);
		const struct abi_cpl *cpl;
		uint32_t n;
		backend_completions(b, &cpl, &n);
		int bad_c = n != 3 || got != 3;
		for (uint32_t i = 0; i < n; i++)
			bad_c += cpl[i].tag != i || cpl[i].t_end != 200 + i;
		if (w || bad_c) {
			bad_list++;
			printf("  list %d: serve %d got %u wait %d, %d bad completions: %s\n", list,
			       rc, got, w, bad_c, backend_xrt_error(b));
		}
	}
	backend_xrt_ctl_read(b, l.cplq_off, &hdr, sizeof hdr);
	CHECK(bad_list == 0 && hdr.consumed == UINT32_MAX - 4 + 12 && hdr.produced == hdr.consumed,
	      "%s: %d of 4 lists failed through the rings; completion ring produced %u consumed "
	      "%u (expected %u)",
	      card, bad_list, hdr.produced, hdr.consumed, UINT32_MAX - 4 + 12);

	/* ring full: the card completed a list but has not released its command slots */
	rc = backend_submit(b, 2, cmds, 6, &fence);
	uint32_t got = 0;
	if (!rc) {
		/* post completions without updating the command ring's consumed counter */
		static uint8_t cplr[1 << 16];
		struct abi_ring_view pv = {0};
		backend_xrt_ctl_read(b, l.cplq_off, cplr, l.cplq_bytes);
		abi_ring_attach(&pv, ABI_RING_PRODUCER, cplr, l.cplq_bytes, sizeof(struct abi_cpl));
		for (uint32_t i = 0; i < 6; i++) {
			struct abi_cpl c = {.tag = i, .word1 = ABI_CPL_W1(0, 0, 2, 0)};
			abi_ring_push(&pv, &c);
		}
		backend_xrt_ctl_write(b, l.cplq_off, cplr, l.cplq_bytes);
		rc = backend_wait(b, fence, 1000);
	}
	int full = backend_submit(b, 2, cmds, 3, &fence);
	CHECK(rc == 0 && full == -EAGAIN, "%s: ring full: list %d, next submit %d (expected %d)",
	      card, rc, full, -EAGAIN);
	rc = card_serve(b, &l, 2, 0, &got); /* releases the 6 slots, posts nothing */
	int again = backend_submit(b, 2, cmds, 3, &fence);
	CHECK(rc == 0 && got == 6 && again == 0,
	      "%s: after the card released %u slots: serve %d submit %d", card, got, rc, again);
	/* a hostile completion counter */
	uint32_t hostile = 0x7fffffffu;
	backend_xrt_ctl_write(b, l.cplq_off + offsetof(struct abi_ring, produced), &hostile, 4);
	rc = backend_wait(b, fence, 100);
	CHECK(rc == -EPROTO && strstr(backend_xrt_error(b), "out of range"),
	      "%s: hostile completion counter: %d '%s'", card, rc, backend_xrt_error(b));
	backend_close(b);

	/* direct mode has no control BO */
	o.mode = BACKEND_XRT_DIRECT;
	rc = backend_xrt_open(&b, &bd, dtb, &o, err, sizeof err);
	CHECK(rc == 0 && backend_xrt_fw_layout(b, &l) == -EINVAL,
	      "%s: direct mode reports a control BO", card);
	if (!rc)
		backend_close(b);
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	test_failures();
	test_no_card();
	/* the explicit opt-in: backend xrt prepares the noop device itself, in TMPDIR (the
	 * runner's folder of this test; the build folder when run by hand) */
	const char *td = getenv("TMPDIR");
	char tmp[512];
	snprintf(tmp, sizeof tmp, "%s", td && *td ? td : bdir());
	setenv("TMPDIR", tmp, 1);
	setenv("MOECARD_XRT_NOOP", "1", 1);
	for (unsigned i = 0; i < sizeof cards / sizeof cards[0]; i++)
		test_direct(cards[i]);
	test_wrong_xclbin();
	test_firmware("u55c");
	return harness_done();
}
