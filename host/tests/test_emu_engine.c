/*
 * test_emu_engine.c - the emu backend and scheduler as a whole (docs/architecture.md): the
 * interface (ops table version and capabilities), fence ordering and
 * barriers from completion timestamps on the emulated card, fault injection through the whole
 * engine (a CU that reports an error, a CU that hangs until the firmware watchdog resets it, a DMA
 * error: the forward/list fails cleanly and the next one succeeds with the same logits as a clean
 * run), and timing sanity (modeled card time grows with context and with experts per token, as
 * the timing model says; a CU run costs its kernel cycles and a list the firmware's work around
 * it), two rings in flight (a ring 1 list of fills whose fence a ring 0 GEMM
 * waits on; the non-blocking poll; -EBUSY per ring; the cpu backend keeps one list), and DMA
 * faults under the expert cache with detached fills at every countdown position, n = 1, 2, ...
 * until a forward runs with the fault never firing (each forward either fails cleanly or gives
 * the clean logits; a failed detached fill is a miss later): here with lfu and host execution,
 * and in test_emu_expert_faults.c (this file built with EMU_TEST_EXPERT_FAULTS, so the two long
 * sweeps run in parallel) with lru and host execution off.
 * Generates its own tiny checkpoint.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "tests/harness.h"
#include "backend/backend_impl.h"
#include "load/ckpt.h"
#include "engine/engine.h"
#include "sched/card_engine.h"

#ifndef EMU_TEST_EXPERT_FAULTS /* 1: only the second expert-cache fault sweep */
#define EMU_TEST_EXPERT_FAULTS 0
#endif

static const char *board_path(void)
{
	static char p[512];
	const char *b = getenv("B");
	snprintf(p, sizeof p, "%s/board/emu.dtb", b ? b : "build");
	return p;
}

/* GEMM with random FP8 data in bank `bank`, optional wait/signal fences. */
static void gemm_cmd(struct abi_cmd *c, uint64_t base, int n, int k)
{
	memset(c, 0, sizeof *c);
	abi_cmd_hdr_set(&c->hdr, ABI_OP_GEMM_FP8, 0);
	c->u.gemm.a = base;
	c->u.gemm.sa = base + 4096;
	c->u.gemm.w = base + 8192;
	c->u.gemm.sw = base + 8192 + (uint64_t)n * k;
	c->u.gemm.y = base + 8192 + (uint64_t)n * k + 4096;
	c->u.gemm.m = 1;
	c->u.gemm.n = (uint32_t)n;
	c->u.gemm.k = (uint32_t)k;
}

static void test_fences(void)
{
	struct backend *be;
	char err[256];
	int r = backend_open(&be, "emu", &(struct backend_opts){.board = board_path()}, err,
			     sizeof err);
	CHECK(r == 0, "backend_open emu: %s", err);
	if (r)
		return;
	struct backend_buf *bufs[3];
	for (int i = 0; i < 3; i++)
		CHECK(backend_buf_alloc(be, (uint32_t)i, 1 << 20, 64, &bufs[i]) == 0, "alloc");
	uint8_t ones[4096];
	memset(ones, 0x38, sizeof ones); /* e4m3 1.0 */
	float sc[64];
	for (int i = 0; i < 64; i++)
		sc[i] = 1.0f;
	for (int i = 0; i < 3; i++) {
		backend_buf_write(be, bufs[i], 0, ones, 256);
		backend_buf_write(be, bufs[i], 4096, sc, sizeof sc);
		for (int j = 0; j < 256; j++)
			backend_buf_write(be, bufs[i], 8192 + (size_t)j * 256, ones, 256);
		backend_buf_write(be, bufs[i], 8192 + 256 * 256, sc, sizeof sc);
	}
	/* 0: GEMM signals fence 3; 1: GEMM (other bank) runs concurrently; 2: waits on fence 3;
	 * 3: barrier; 4: timestamp */
	struct abi_cmd l[5];
	gemm_cmd(&l[0], backend_buf_addr(bufs[0], 0), 256, 256);
	abi_cmd_signal(&l[0].hdr, 3, 1);
	gemm_cmd(&l[1], backend_buf_addr(bufs[1], 0), 256, 256);
	gemm_cmd(&l[2], backend_buf_addr(bufs[2], 0), 256, 256);
	abi_cmd_wait(&l[2].hdr, 3, 1);
	memset(&l[3], 0, sizeof l[3]);
	abi_cmd_hdr_set(&l[3].hdr, ABI_OP_BARRIER, 0);
	memset(&l[4], 0, sizeof l[4]);
	abi_cmd_hdr_set(&l[4].hdr, ABI_OP_TIMESTAMP, 0);
	uint64_t f;
	r = backend_submit(be, 0, l, 5, &f);
	if (!r)
		r = backend_wait(be, f, 60000);
	CHECK(r == 0, "fence list: %d", r);
	const struct abi_cpl *c;
	uint32_t n;
	backend_completions(be, &c, &n);
	CHECK(n == 5, "5 completions, got %u", n);
	if (n == 5) {
		CHECK(c[2].t_start >= c[0].t_end,
		      "the waiter started at %llu before its fence at %llu",
		      (unsigned long long)c[2].t_start, (unsigned long long)c[0].t_end);
		CHECK(c[1].t_start < c[0].t_end,
		      "independent GEMMs overlap: [%llu,%llu] [%llu,%llu]",
		      (unsigned long long)c[0].t_start, (unsigned long long)c[0].t_end,
		      (unsigned long long)c[1].t_start, (unsigned long long)c[1].t_end);
		uint64_t last = c[0].t_end > c[1].t_end ? c[0].t_end : c[1].t_end;
		last = last > c[2].t_end ? last : c[2].t_end;
		CHECK(c[4].t_start >= last, "timestamp after the barrier: %llu < %llu",
		      (unsigned long long)c[4].t_start, (unsigned long long)last);
		printf(
		    "fences: gemm0 [%llu,%llu] gemm1 [%llu,%llu] waiter [%llu,%llu] ts %llu ns\n",
		    (unsigned long long)c[0].t_start, (unsigned long long)c[0].t_end,
		    (unsigned long long)c[1].t_start, (unsigned long long)c[1].t_end,
		    (unsigned long long)c[2].t_start, (unsigned long long)c[2].t_end,
		    (unsigned long long)c[4].t_start);
	}
	/* the output: every y = 256 * 1 * 1 */
	float y[4];
	backend_buf_read(be, bufs[2], 8192 + 256 * 256 + 4096, y, sizeof y);
	CHECK(y[0] == 256.0f && y[3] == 256.0f, "GEMM result %g (want 256)", y[0]);
	/* DMA error by countdown, then a clean fill */
	struct abi_cmd d;
	memset(&d, 0, sizeof d);
	abi_cmd_hdr_set(&d.hdr, ABI_OP_DMA_FILL, 0);
	d.u.dma.dst = backend_buf_addr(bufs[0], 65536);
	d.u.dma.bytes = 4096;
	d.u.dma.flags = ABI_DMA_F_PATTERN;
	d.u.dma.word = ABI_DMA_WORD(ABI_DMA_CHAN_ANY, 0x5A, 0);
	backend_fault_set(be, BACKEND_FAULT_DMA_ERROR, 1);
	r = backend_submit(be, 0, &d, 1, &f);
	if (!r)
		r = backend_wait(be, f, 60000);
	backend_completions(be, &c, &n);
	CHECK(r == -EIO && ABI_CPL_STATUS(c[0].word1) == ABI_ST_DMA_ERROR,
	      "DMA fault: r %d status %s", r, abi_status_name(ABI_CPL_STATUS(c[0].word1)));
	r = backend_submit(be, 0, &d, 1, &f);
	if (!r)
		r = backend_wait(be, f, 60000);
	uint8_t pat[4096];
	backend_buf_read(be, bufs[0], 65536, pat, sizeof pat);
	CHECK(r == 0 && pat[0] == 0x5A && pat[4095] == 0x5A, "DMA after the fault: r %d byte %x", r,
	      pat[0]);
	for (int i = 3; i-- > 0;)
		backend_buf_free(be, bufs[i]);
	backend_close(be);
}

/* A CU run lasts the kernel's modeled cycles at the kernel clock, to the ns (backend_cmd_cycles).
 * Without a dispatch engine the firmware's one CPU spends the board's take and start work before
 * it and its done work after it, so a one-command list takes take + start + kernel + done of card
 * time, and two commands on two CUs do not overlap their firmware work. With a dispatch engine
 * (dispatch=engine) the CPU only takes (board_dispatch_ns), the engine starts and completes: the
 * same sum with the engine's start and done, and the second of two commands starts one take
 * after the first. With the shipped trees' argument preload the engine's writer writes the
 * arguments after the take (start), the go cycles follow: take + start + go + kernel + done; a
 * command that waits for the one before it on its CU starts done + go after that one ends (its
 * arguments were written while it ran), done + start without the preload. */
static void test_fw_time_mode(const char *set)
{
	struct backend *be;
	char err[256];
	int r = backend_open(&be, "emu", &(struct backend_opts){.board = board_path(), .set = set},
			     err, sizeof err);
	CHECK(r == 0, "backend_open emu %s: %s", set ? set : "", err);
	if (r)
		return;
	const struct board_desc *bd = backend_board(be);
	const struct abi_board *blk = backend_abi_board(be);
	int fwd = set && !strcmp(set, "dispatch=firmware"), eng = board_has_dispatch_engine(bd),
	    cpu;
	uint64_t go = board_dispatch_go_ns(bd);
	CHECK(eng == !fwd, "the shipped tree has the engine, dispatch=firmware has none (%d)", eng);
	CHECK(!go == (fwd || (set && !strcmp(set, "dispatch=engine"))),
	      "the shipped tree preloads the arguments, dispatch=engine does not (go %llu ns)",
	      (unsigned long long)go);
	struct backend_buf *buf;
	CHECK(backend_buf_alloc(be, 0, 1 << 20, 64, &buf) == 0, "alloc");
	uint64_t base = backend_buf_addr(buf, 0), f;
	struct abi_cmd g[2];
	gemm_cmd(&g[0], base, 256, 512);
	struct backend_stats s0, s1;
	backend_stats(be, &s0);
	r = backend_submit(be, 0, g, 1, &f);
	if (!r)
		r = backend_wait(be, f, 60000);
	backend_stats(be, &s1);
	const struct abi_cpl *c;
	uint32_t n = 0;
	backend_completions(be, &c, &n);
	CHECK(r == 0 && n == 1, "GEMM: r %d n %u", r, n);
	/* every bank of the emulated card has the same bandwidth, so any GEMM CU gives this */
	uint32_t bw = (uint32_t)((uint64_t)bd->bank[0].bw_mbps * bd->mem_eff_pct / 100);
	/* a GEMM's own take count (moecard,fw-take-op-instr), below the class's largest */
	uint64_t take = board_fw_take_ns(bd, ABI_OP_GEMM_FP8),
		 start = board_dispatch_ns(bd, BOARD_FW_START, &cpu);
	uint64_t done = board_dispatch_ns(bd, BOARD_FW_DONE, &cpu);
	CHECK(cpu == !eng, "done is the engine's work with it, the CPU's without");
	int64_t cyc = backend_cmd_cycles(&g[0], bw, blk->cu_clk_khz, NULL);
	uint64_t kern = (uint64_t)cyc * 1000000ull / blk->cu_clk_khz;
	CHECK(take < board_fw_cmd_ns(bd, BOARD_FW_TAKE) && take != BOARD_FW_CMD_NS_DEFAULT &&
		  start && done,
	      "the emulated card's tree gives measured counts: take %llu start %llu done %llu ns",
	      (unsigned long long)take, (unsigned long long)start, (unsigned long long)done);
	CHECK(eng ? start < board_fw_cmd_ns(bd, BOARD_FW_START) &&
			done < board_fw_cmd_ns(bd, BOARD_FW_DONE)
		  : start == board_fw_cmd_ns(bd, BOARD_FW_START),
	      "the engine's start %llu and done %llu ns", (unsigned long long)start,
	      (unsigned long long)done);
	CHECK(backend_fw_cmd_ns(bd, ABI_OP_GEMM_FP8) ==
		  take + board_fw_cmd_ns(bd, BOARD_FW_START) + board_fw_cmd_ns(bd, BOARD_FW_DONE),
	      "a GEMM's firmware time is take + start + done");
	CHECK(backend_fw_cmd_ns(bd, ABI_OP_BARRIER) ==
		  board_fw_take_ns(bd, ABI_OP_BARRIER) + board_fw_cmd_ns(bd, BOARD_FW_SYNC),
	      "a barrier is take + sync");
	if (n == 1) {
		CHECK_EQ(c[0].t_end - c[0].t_start, kern, "GEMM run = %lld kernel cycles",
			 (long long)cyc);
		CHECK_EQ(s1.busy_ns - s0.busy_ns, take + start + go + kern + done,
			 "one-command list = take + start + go + kernel + done");
	}
	/* two GEMMs in one list go to two GEMM CUs: without the engine the second starts after
	 * the firmware took both and started the first (one CPU), and their completions are
	 * posted one after the other; with it, one take after the first */
	gemm_cmd(&g[1], base + (512 << 10), 256, 512);
	backend_stats(be, &s0);
	r = backend_submit(be, 0, g, 2, &f);
	if (!r)
		r = backend_wait(be, f, 60000);
	backend_stats(be, &s1);
	n = 0;
	backend_completions(be, &c, &n);
	CHECK(r == 0 && n == 2, "two GEMMs: r %d n %u", r, n);
	if (n == 2) {
		uint64_t a = c[0].t_start < c[1].t_start ? c[0].t_start : c[1].t_start;
		uint64_t b = c[0].t_start < c[1].t_start ? c[1].t_start : c[0].t_start;
		if (eng)
			CHECK_EQ(b - a, take, "the second GEMM starts one take after the first");
		else
			CHECK(b - a >= start,
			      "the second GEMM starts %llu ns after the first (start work %llu)",
			      (unsigned long long)(b - a), (unsigned long long)start);
		uint64_t want = eng ? 2 * take + start + kern + done
				    : take + start + kern + done + start + done;
		CHECK(s1.busy_ns - s0.busy_ns >= want,
		      "two-command list %llu ns covers both takes, starts and completions",
		      (unsigned long long)(s1.busy_ns - s0.busy_ns));
	}
	/* the second waits for the first (fence 3): it starts done + go after the first ends with
	 * the preload (its arguments written while the first ran), done + start without */
	if (eng) {
		abi_cmd_signal(&g[0].hdr, 3, 1);
		abi_cmd_wait(&g[1].hdr, 3, 1);
		r = backend_submit(be, 0, g, 2, &f);
		if (!r)
			r = backend_wait(be, f, 60000);
		n = 0;
		backend_completions(be, &c, &n);
		CHECK(r == 0 && n == 2, "two dependent GEMMs: r %d n %u", r, n);
		if (n == 2) {
			int a = c[0].t_start < c[1].t_start ? 0 : 1;
			CHECK_EQ(c[1 - a].t_start - c[a].t_end, done + (go ? go : start),
				 "the dependent GEMM starts done + %s after the first ends",
				 go ? "go" : "start");
		}
	}
	backend_buf_free(be, buf);
	backend_close(be);
}

static void test_fw_time(void)
{
	test_fw_time_mode(NULL);
	test_fw_time_mode("dispatch=engine");
	test_fw_time_mode("dispatch=firmware");
}

/* Rings 0 and 1 in flight together: a ring 1 fill signals fence 5, a ring 0 GEMM waits on it. */
static void test_rings(void)
{
	struct backend *be;
	char err[256];
	int r = backend_open(&be, "emu", &(struct backend_opts){.board = board_path()}, err,
			     sizeof err);
	CHECK(r == 0, "backend_open emu: %s", err);
	if (r)
		return;
	CHECK(backend_caps(be) & BACKEND_CAP_RINGS, "emu has BACKEND_CAP_RINGS");
	struct backend_buf *buf;
	CHECK(backend_buf_alloc(be, 0, 1 << 20, 64, &buf) == 0, "alloc");
	uint64_t base = backend_buf_addr(buf, 0);
	struct abi_cmd d[2], g;
	for (int i = 0; i < 2; i++) {
		memset(&d[i], 0, sizeof d[i]);
		abi_cmd_hdr_set(&d[i].hdr, ABI_OP_DMA_FILL, 0);
		d[i].u.dma.dst = base + 65536 + (uint64_t)i * 65536;
		d[i].u.dma.bytes = 65536;
		d[i].u.dma.flags = ABI_DMA_F_PATTERN;
		d[i].u.dma.word = ABI_DMA_WORD(ABI_DMA_CHAN_ANY, 0x38, 0); /* e4m3 1.0 */
	}
	abi_cmd_signal(&d[1].hdr, 5, 1);
	gemm_cmd(&g, base + 262144, 256, 256);
	g.u.gemm.w = base + 65536; /* the filled codes */
	abi_cmd_wait(&g.hdr, 5, 1);
	uint64_t f1, f0, f2;
	r = backend_submit(be, 1, d, 2, &f1);
	CHECK(r == 0, "submit ring 1: %d", r);
	CHECK(backend_submit(be, 1, d, 1, &f2) == -EBUSY, "a second list on ring 1 is -EBUSY");
	struct backend_stats s0, s1;
	backend_stats(be, &s0);
	r = backend_wait(be, f1, 0);
	backend_stats(be, &s1);
	CHECK(r == -ETIMEDOUT && s1.card_ns == s0.card_ns,
	      "poll of a list not run yet: r %d, card time %llu -> %llu", r,
	      (unsigned long long)s0.card_ns, (unsigned long long)s1.card_ns);
	r = backend_submit(be, 0, &g, 1, &f0);
	CHECK(r == 0, "submit ring 0 while ring 1 is in flight: %d", r);
	r = backend_wait(be, f0, 60000);
	const struct abi_cpl *c;
	uint32_t n;
	backend_completions(be, &c, &n);
	CHECK(r == 0 && n == 1 && ABI_CPL_QUEUE(c[0].word1) == 0, "ring 0 list: r %d n %u", r, n);
	uint64_t g0 = n ? c[0].t_start : 0;
	r = backend_wait(be, f1, 0); /* the fills landed while ring 0 was waited for */
	backend_completions(be, &c, &n);
	CHECK(r == 0 && n == 2 && ABI_CPL_QUEUE(c[0].word1) == 1 && ABI_CPL_QUEUE(c[1].word1) == 1,
	      "ring 1 list after ring 0's wait: r %d n %u", r, n);
	CHECK(n == 2 && g0 >= c[1].t_end,
	      "the ring 0 GEMM started at %llu before its fill ended "
	      "at %llu",
	      (unsigned long long)g0, (unsigned long long)(n == 2 ? c[1].t_end : 0));
	CHECK(backend_wait(be, f1, 0) == 0, "a list already waited for returns 0");
	backend_buf_free(be, buf);
	backend_close(be);
	/* the cpu backend keeps one list in flight over all rings */
	if (backend_open(&be, "ref", &(struct backend_opts){.board = board_path()}, err,
			 sizeof err)) {
		CHECK(0, "backend_open cpu: %s", err);
		return;
	}
	CHECK(!(backend_caps(be) & BACKEND_CAP_RINGS), "cpu has no BACKEND_CAP_RINGS");
	backend_close(be);
}

static double rel_err(const float *a, const float *b, int n)
{
	double d = 0, s = 0;
	for (int i = 0; i < n; i++) {
		d += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
		s += (double)b[i] * b[i];
	}
	return sqrt(d / (s > 0 ? s : 1));
}

/* Opens the test's tiny checkpoint and the engine options every engine test uses; 0 or the
 * failure (reported). */
static int open_tiny(const char *dir, struct ckpt *ck, struct model_opts *o)
{
	char err[512];
	int r = ckpt_open(dir, ck, err, sizeof err);
	CHECK(r == 0, "ckpt_open: %s", err);
	setenv("MOECARD_BOARD", board_path(), 1);
	*o = (struct model_opts){.act_fp8 = 1, .max_seq = 16, .max_batch = 4, .n_threads = 1};
	return r;
}

/* An emu engine opened on ck with the environment variables env (name, value pairs, NULL
 * ended; unset again once the engine is open) runs a 3-token prompt, then toks[3..n) one at a
 * time: lg [n - 2][vocab] gets the prompt's last row and every decoded token's logits, *cmds and
 * *ns the commands and modeled card time of it all. 0 or the error (checked here). */
static int emu_tokens(const struct ckpt *ck, const struct model_opts *o, const char *const *env,
		      const int *toks, int n, float *lg, uint64_t *cmds, uint64_t *ns)
{
	char err[512];
	int V = ck->cfg.vocab_size;
	for (int i = 0; env[i]; i += 2)
		setenv(env[i], env[i + 1], 1);
	struct engine e;
	int r = engine_open(&e, "emu", ck, o, NULL, err, sizeof err);
	for (int i = 0; env[i]; i += 2)
		unsetenv(env[i]);
	CHECK(r == 0, "engine_open emu: %s", err);
	if (r)
		return r;
	struct backend *be = card_engine_backend(&e);
	struct backend_stats s0, s1;
	backend_stats(be, &s0);
	r = engine_forward(&e, toks, 3, lg, 0, NULL); /* a prompt */
	for (int t = 3; t < n && !r; t++)	      /* decoded tokens */
		r = engine_forward(&e, toks + t, 1, lg + (size_t)(t - 2) * V, 0, NULL);
	backend_stats(be, &s1);
	CHECK(r == 0, "forwards: %d", r);
	*cmds = s1.cmds - s0.cmds;
	*ns = s1.busy_ns - s0.busy_ns;
	engine_free(&e);
	return r;
}

/* Barriers replaced by fences (card_fence_chain): the same logits, bit for bit, over a prompt and
 * decoded tokens, with fewer commands and less modeled card time than with every barrier
 * (MOECARD_BARRIER_FENCES=0), on the GEMV lowering and on the fp8_gemm CUs. */
static void test_fence_chain(const char *dir)
{
	struct ckpt ck;
	struct model_opts o;
	int r = open_tiny(dir, &ck, &o);
	if (r)
		return;
	int V = ck.cfg.vocab_size, toks[6] = {5, 77, 300, 9, 41, 600};
	float *lg[2];
	for (int gemv = 0; gemv < 2; gemv++) {
		uint64_t cmds[2] = {0}, ns[2] = {0};
		for (int off = 0; off < 2; off++) {
			lg[off] = calloc((size_t)V * 4, sizeof(float));
			const char *env[5] = {NULL, NULL, NULL, NULL, NULL}, **ev = env;
			if (off)
				*ev++ = "MOECARD_BARRIER_FENCES", *ev++ = "0";
			if (!gemv)
				*ev++ = "MOECARD_CARD_GEMV", *ev++ = "0";
			emu_tokens(&ck, &o, env, toks, 6, lg[off], &cmds[off], &ns[off]);
		}
		CHECK(!memcmp(lg[0], lg[1], (size_t)V * 4 * sizeof(float)),
		      "gemv %d: logits with fences = with every barrier (rel. error %g)", gemv,
		      rel_err(lg[0], lg[1], V * 4));
		CHECK(
		    cmds[0] < cmds[1] && ns[0] < ns[1],
		    "gemv %d: fences take commands (%llu vs %llu) and card time (%llu vs %llu ns) "
		    "off the lists",
		    gemv, (unsigned long long)cmds[0], (unsigned long long)cmds[1],
		    (unsigned long long)ns[0], (unsigned long long)ns[1]);
		printf(
		    "fence chain, gemv %d: %llu commands, %.1f us with fences; %llu, %.1f us with "
		    "every barrier\n",
		    gemv, (unsigned long long)cmds[0], ns[0] / 1e3, (unsigned long long)cmds[1],
		    ns[1] / 1e3);
		free(lg[0]);
		free(lg[1]);
	}
	ckpt_close(&ck);
}

/* Greedy decode through the card's head record (engine_forward_top1, FP8_GEMV_ARGMAX): the same
 * tokens as sampler_argmax over the logits that come back, token by token over 48 decode steps
 * from the same states, with a fraction of the link time (8 bytes instead of the logits). */
static void test_top1(const char *dir)
{
	struct ckpt ck;
	char err[512];
	struct model_opts o;
	if (open_tiny(dir, &ck, &o))
		return;
	o.max_seq = 64;
	int V = ck.cfg.vocab_size, prompt[3] = {5, 77, 300}, n = 48, ids[2][48];
	float *lg = calloc((size_t)V, sizeof(float));
	struct engine e;
	int r = engine_open(&e, "emu", &ck, &o, NULL, err, sizeof err);
	CHECK(r == 0, "engine_open emu: %s", err);
	if (r) {
		free(lg);
		ckpt_close(&ck);
		return;
	}
	CHECK(e.ops->forward_top1 != NULL, "the card engine picks greedy tokens on the card");
	struct backend *be = card_engine_backend(&e);
	uint64_t c2h[2] = {0}, c2hb[2] = {0};
	for (int way = 0; way < 2 && !r; way++) {
		engine_truncate(&e, 0, 0);
		r = engine_forward(&e, prompt, 3, lg, 0, NULL);
		int t = sampler_argmax(lg, V);
		struct backend_stats s0, s1;
		backend_stats(be, &s0);
		for (int i = 0; i < n && !r; i++) {
			if (way) {
				r = engine_forward_top1(&e, &t, 1, &t, lg);
			} else {
				r = engine_forward(&e, &t, 1, lg, 0, NULL);
				t = sampler_argmax(lg, V);
			}
			ids[way][i] = t;
		}
		backend_stats(be, &s1);
		c2h[way] = s1.c2h_ns - s0.c2h_ns;
		c2hb[way] = s1.c2h_bytes - s0.c2h_bytes;
		CHECK(r == 0, "greedy decode %s: %d", way ? "on the card" : "on the host", r);
	}
	int same = 0;
	while (!r && same < n && ids[0][same] == ids[1][same])
		same++;
	CHECK(!r && same == n, "greedy tokens on the card = sampler_argmax on the host (%d of %d)",
	      same, n);
	CHECK(!r && c2hb[1] == (uint64_t)n * 8 && c2hb[0] == (uint64_t)n * V * 4 && c2h[1] < c2h[0],
	      "the card's greedy record takes the logits off the link: %llu bytes (%llu ns) vs "
	      "%llu (%llu ns)",
	      (unsigned long long)c2hb[1], (unsigned long long)c2h[1], (unsigned long long)c2hb[0],
	      (unsigned long long)c2h[0]);
	printf("greedy on the card: %d of %d tokens as the host's argmax; c2h %llu bytes, %.1f us "
	       "vs %llu bytes, %.1f us\n",
	       same, n, (unsigned long long)c2hb[1], c2h[1] / 1e3, (unsigned long long)c2hb[0],
	       c2h[0] / 1e3);
	engine_free(&e);
	free(lg);
	ckpt_close(&ck);
}

/* The token loop's KV append with the kv_a_layernorm and RoPE folded in (kv_fold: kv_a's raw
 * row into the append's input stage, two commands fewer a layer) gives the logits of the
 * separate RMSNORM and ROPE commands bit for bit (MOECARD_KV_FOLD=0), over a prompt and decoded
 * tokens. */
static void test_kv_fold(const char *dir)
{
	struct ckpt ck;
	struct model_opts o;
	if (open_tiny(dir, &ck, &o))
		return;
	o.max_seq = 64;
	int V = ck.cfg.vocab_size, toks[12] = {5, 77, 300, 9, 41, 600, 7, 8, 99, 3, 17, 250};
	float *lg[2];
	uint64_t cmds[2] = {0}, ns[2] = {0};
	for (int off = 0; off < 2; off++) {
		const char *fold[] = {"MOECARD_KV_FOLD", "0", NULL};
		lg[off] = calloc((size_t)V * 10, sizeof(float));
		emu_tokens(&ck, &o, off ? fold : fold + 2, toks, 12, lg[off], &cmds[off], &ns[off]);
	}
	CHECK(!memcmp(lg[0], lg[1], (size_t)V * 10 * sizeof(float)),
	      "folded KV appends: the logits of the separate norm and RoPE commands, bit for bit");
	CHECK(cmds[0] < cmds[1], "the fold takes commands off the lists (%llu vs %llu)",
	      (unsigned long long)cmds[0], (unsigned long long)cmds[1]);
	printf("kv fold: %llu commands, %llu with the separate norm and RoPE; logits identical\n",
	       (unsigned long long)cmds[0], (unsigned long long)cmds[1]);
	free(lg[0]);
	free(lg[1]);
	ckpt_close(&ck);
}

static void test_engine_faults(const char *dir)
{
	struct ckpt ck;
	char err[512];
	struct model_opts o;
	int r = open_tiny(dir, &ck, &o);
	if (r)
		return;
	struct engine e;
	/* (the absorbed form for every prompt: the rerun below takes the 3 tokens as 1 + 2, and a
	 * fresh prompt's non-absorbed form is not the absorbed form's bits) */
	setenv("MOECARD_PF_MHA", "0", 1);
	r = engine_open(&e, "emu", &ck, &o, NULL, err, sizeof err);
	unsetenv("MOECARD_PF_MHA");
	CHECK(r == 0, "engine_open emu: %s", err);
	if (r) {
		ckpt_close(&ck);
		return;
	}
	struct backend *be = card_engine_backend(&e);
	int V = ck.cfg.vocab_size, toks[3] = {5, 77, 300};
	float *ref = calloc((size_t)V, sizeof(float)), *lg = calloc((size_t)V, sizeof(float));
	r = engine_forward(&e, toks, 3, ref, 0, NULL);
	CHECK(r == 0, "clean forward: %d", r);
	struct backend_stats s1, s3;
	backend_stats(be, &s3);
	/* timing sanity on the real run: the third token (3 positions) costs more than the first */
	uint64_t t0 = s3.busy_ns;
	engine_truncate(&e, 0, 0);
	engine_forward(&e, toks, 1, lg, 0, NULL);
	backend_stats(be, &s1);
	uint64_t t1 = s1.busy_ns - t0;
	engine_forward(&e, toks + 1, 2, lg, 0, NULL);
	backend_stats(be, &s3);
	uint64_t t3 = s3.busy_ns - s1.busy_ns;
	CHECK(t3 > t1, "modeled time grows with tokens: %llu ns for 1, %llu ns for the next 2",
	      (unsigned long long)t1, (unsigned long long)t3);
	printf("modeled card: %.1f us for token 0, %.1f us for tokens 1-2\n", t1 / 1e3, t3 / 1e3);
	CHECK(rel_err(lg, ref, V) == 0, "rerun after truncate differs: %g", rel_err(lg, ref, V));
	static const struct {
		enum backend_fault f;
		uint32_t n;
		const char *name;
	} faults[] = {{BACKEND_FAULT_CU_BAD, 1, "bad completion (1st CU run)"},
		      {BACKEND_FAULT_CU_BAD, 17, "bad completion (17th CU run)"},
		      {BACKEND_FAULT_CU_HANG, 3, "CU hang (3rd start)"},
		      {BACKEND_FAULT_CU_HANG, 40, "CU hang (40th start)"}};
	for (size_t i = 0; i < sizeof faults / sizeof faults[0]; i++) {
		engine_truncate(&e, 0, 0);
		backend_fault_set(be, faults[i].f, faults[i].n);
		r = engine_forward(&e, toks, 3, lg, 0, NULL);
		CHECK(r == -EIO, "%s: forward returned %d, want -EIO", faults[i].name, r);
		CHECK(e.pos == 0, "%s: the failed forward advanced pos to %d", faults[i].name,
		      e.pos);
		backend_fault_set(be, faults[i].f, 0);
		engine_truncate(&e, 0, 0);
		r = engine_forward(&e, toks, 3, lg, 0, NULL);
		double d = rel_err(lg, ref, V);
		CHECK(r == 0 && d == 0, "%s: recovery forward r %d, logits differ by %g",
		      faults[i].name, r, d);
		printf("fault %s: failed cleanly, next forward bit-identical\n", faults[i].name);
	}
	free(ref);
	free(lg);
	engine_free(&e);
	ckpt_close(&ck);
}

/* The expert_detached_failed figure of the engine's JSON statistics. */
static long detached_failed(struct engine *e)
{
	char buf[8192] = {0};
	FILE *f = fmemopen(buf, sizeof buf - 1, "w");
	if (!f)
		return -1;
	e->ops->stats(e, f, 1);
	fclose(f);
	const char *p = strstr(buf, "\"expert_detached_failed\":");
	return p ? atol(p + strlen("\"expert_detached_failed\":")) : -1;
}

/* DMA faults at every countdown position under the expert cache with prefetch and background
 * fills (detached on ring 1): a forward fails cleanly (-EIO) or gives the clean logits; never
 * logits from a half-filled slot. */
#define EMU_FAULT_MAX 4096u /* countdown bound: a fault still firing there is a failure */

static void test_expert_faults(const char *dir, const char *policy, const char *host)
{
	struct ckpt ck;
	char err[512];
	struct model_opts o;
	int r = open_tiny(dir, &ck, &o);
	if (r)
		return;
	struct engine_extra x = {.expert_slots_pct = 25,
				 .expert_policy = policy,
				 .expert_prefetch = 1,
				 .expert_host = host,
				 .expert_host_gbps = 50};
	struct engine e0, e;
	int V = ck.cfg.vocab_size, toks[4] = {5, 77, 300, 9};
	float *ref = calloc((size_t)V, sizeof(float)), *lg = calloc((size_t)V, sizeof(float));
	/* the cache runs on the fp8_gemm CUs (the GEMV CU's striped lowering needs every expert
	 * resident): the reference is the all-resident run on the same CUs */
	setenv("MOECARD_CARD_GEMV", "0", 1);
	r = engine_open(&e0, "emu", &ck, &o, NULL, err, sizeof err);
	unsetenv("MOECARD_CARD_GEMV");
	CHECK(r == 0, "engine_open emu (all resident): %s", err);
	if (!r) {
		CHECK(engine_forward(&e0, toks, 4, ref, 0, NULL) == 0, "all-resident forward");
		engine_free(&e0);
	}
	r = engine_open(&e, "emu", &ck, &o, &x, err, sizeof err);
	CHECK(r == 0, "engine_open emu with the cache: %s", err);
	if (r) {
		free(ref);
		free(lg);
		ckpt_close(&ck);
		return;
	}
	struct backend *be = card_engine_backend(&e);
	r = engine_forward(&e, toks, 4, lg, 0, NULL);
	CHECK(r == 0 && rel_err(lg, ref, V) == 0, "cache forward = all resident: r %d, %g", r,
	      rel_err(lg, ref, V));
	int n_fail_fw = 0, n_ok = 0, bad = 0;
	long recovered = 0;
	/* SQLite's rule: countdown n = 1, 2, ... until a forward runs with the fault never firing */
	uint32_t n, last = 0;
	for (n = 1; !last && n <= EMU_FAULT_MAX; n++) {
		engine_truncate(&e, 0, 0);
		backend_fault_set(be, BACKEND_FAULT_DMA_ERROR, n);
		r = engine_forward(&e, toks, 4, lg, 0, NULL);
		long df = detached_failed(&e);
		if (backend_fault_set(be, BACKEND_FAULT_DMA_ERROR, 0) == 1) {
			last = n; /* never fired: the forward must be the clean one */
			CHECK(r == 0 && rel_err(lg, ref, V) == 0,
			      "DMA countdown %u never fired: forward r %d, logits off by %g", n, r,
			      rel_err(lg, ref, V));
			break;
		}
		if (r == 0) {
			n_ok++;
			recovered += df > 0 ? df : 0;
			if (rel_err(lg, ref, V) != 0) {
				bad++;
				printf("DMA fault %u: forward succeeded with logits off by %g\n", n,
				       rel_err(lg, ref, V));
			}
		} else if (r == -EIO) {
			n_fail_fw++;
		} else {
			bad++;
			printf("DMA fault %u: forward returned %d\n", n, r);
		}
		engine_truncate(&e, 0, 0);
		r = engine_forward(&e, toks, 4, lg, 0, NULL);
		if (r || rel_err(lg, ref, V) != 0) {
			bad++;
			printf("DMA fault %u: the next forward r %d, logits off by %g\n", n, r,
			       rel_err(lg, ref, V));
		}
	}
	CHECK(last > 1, "DMA countdown under the cache (%s, host %s): still firing at %u", policy,
	      host, n);
	CHECK(bad == 0, "DMA faults under the cache (%s, host %s): %d forwards wrong (see above)",
	      policy, host, bad);
	CHECK(n_fail_fw > 0 || !strcmp(host, "auto"), "some DMA fault made a forward fail (%d)",
	      n_fail_fw); /* host off: demand fills */
	CHECK(recovered > 0, "some failed detached fill was taken for a miss (%ld)", recovered);
	printf("DMA faults 1..%u under the cache (%s+prefetch, host %s): %d forwards failed "
	       "cleanly, %d gave the clean logits (%ld failed detached fills recovered as misses), "
	       "next forwards identical; countdown %u never fired\n",
	       last ? last - 1 : n, policy, host, n_fail_fw, n_ok, recovered, last);
	free(ref);
	free(lg);
	engine_free(&e);
	ckpt_close(&ck);
}

static void test_whatif(void)
{
	struct backend *be;
	char err[256];
	if (backend_open(&be, "ref", &(struct backend_opts){.board = board_path()}, err,
			 sizeof err)) {
		CHECK(0, "backend_open cpu: %s", err);
		return;
	}
	struct config c = {0};
	c.hidden_size = 1024;
	c.intermediate_size = 2816;
	c.moe_intermediate_size = 512;
	c.num_hidden_layers = 12;
	c.first_k_dense_replace = 1;
	c.num_attention_heads = 16;
	c.q_lora_rank = 384;
	c.kv_lora_rank = 256;
	c.qk_nope_head_dim = 64;
	c.qk_rope_head_dim = 32;
	c.v_head_dim = 64;
	c.n_routed_experts = 64;
	c.n_shared_experts = 1;
	c.vocab_size = 129280;
	c.n_group = 1;
	c.topk_group = 1;
	c.routed_scaling_factor = 1;
	double t2 = 0, t6 = 0, tp = 0, by;
	struct card_e2e m2 = {0}, m6 = {0};
	c.num_experts_per_tok = 2;
	CHECK(card_engine_whatif2(&c, be, 128, 1, &t2, &by, &m2) == 0, "what-if top-2");
	c.num_experts_per_tok = 6;
	CHECK(card_engine_whatif2(&c, be, 128, 1, &t6, &by, &m6) == 0, "what-if top-6");
	CHECK(card_engine_whatif(&c, be, 4000, 1, &tp, &by) == 0, "what-if top-6 at ctx 4000");
	printf("what-if mid: top-2 %.3f ms, top-6 %.3f ms, top-6 at ctx 4000 %.3f ms per token; "
	       "weight GEMVs %.3f / %.3f ms\n",
	       t2 / 1e6, t6 / 1e6, tp / 1e6, m2.gemv_ms, m6.gemv_ms);
	/* the experts of a layer share one GEMV command, so with the firmware's time per command
	 * dominating a small model the token may take no longer; the GEMVs themselves must */
	CHECK(m6.gemv_ms > m2.gemv_ms, "more experts cost the GEMVs more: %g vs %g ms", m6.gemv_ms,
	      m2.gemv_ms);
	CHECK(t6 >= t2, "more experts cost no less: %g vs %g", t6, t2);
	CHECK(tp > t6, "longer context costs more: %g vs %g", tp, t6);
	backend_close(be);
}

/* The interface: an ops table of another version is refused with a message naming it; the
 * capabilities say what each backend models. */
static void test_iface(void)
{
	struct backend *be = NULL;
	char err[256] = "";
	int r = backend_open(&be, "emu", &(struct backend_opts){.board = board_path()}, err,
			     sizeof err);
	CHECK(r == 0, "backend_open emu: %s", err);
	if (r)
		return;
	CHECK(!strcmp(backend_name(be), "emu"), "name %s", backend_name(be));
	CHECK((backend_caps(be) &
	       (BACKEND_CAP_RINGS | BACKEND_CAP_CARD_CLOCK | BACKEND_CAP_FAULTS)) ==
		  (BACKEND_CAP_RINGS | BACKEND_CAP_CARD_CLOCK | BACKEND_CAP_FAULTS),
	      "emu caps %#x", backend_caps(be));
	CHECK(backend_iface_check(be->iface, err, sizeof err) == 0, "emu table: %s", err);
	struct backend_i old = *be->iface;
	old.version = BACKEND_I_VERSION + 1;
	err[0] = '\0';
	CHECK(backend_iface_check(&old, err, sizeof err) == -EPROTO && strstr(err, "emu") &&
		  strstr(err, "version"),
	      "a table of another version is refused: '%s'", err);
	old = *be->iface;
	old.wait = NULL;
	CHECK(backend_iface_check(&old, err, sizeof err) == -EPROTO && strstr(err, "wait"),
	      "a table without wait is refused: '%s'", err);
	backend_close(be);
	r = backend_open(&be, "ref", &(struct backend_opts){.board = board_path()}, err,
			 sizeof err);
	CHECK(r == 0, "backend_open ref: %s", err);
	if (!r) {
		CHECK(!(backend_caps(be) & (BACKEND_CAP_CARD_CLOCK | BACKEND_CAP_FAULTS)),
		      "ref caps %#x", backend_caps(be));
		CHECK(backend_fault_set(be, BACKEND_FAULT_DMA_ERROR, 1) == -ENOTSUP,
		      "ref has no faults");
		backend_close(be);
	}
	CHECK(backend_open(&be, "nosuch", NULL, err, sizeof err) == -ENODEV && !be &&
		  strstr(err, "nosuch"),
	      "unknown backend: '%s'", err);
}

int main(void)
{
	char dir[512];
	if (!harness_mkdtemp(dir, sizeof dir, "moecard-emu")) {
		printf("mkdtemp failed\n0 passed, 1 failed\n");
		return 1;
	}
	char err[512];
	int r = testckpt_write(dir, "tiny", 3, NULL, 0, err, sizeof err);
	CHECK(r == 0, "gen tiny: %s", err);
	if (EMU_TEST_EXPERT_FAULTS) {
		if (!r)
			test_expert_faults(dir, "lru", "off");
	} else {
		test_iface();
		test_fences();
		test_fw_time();
		test_rings();
		if (!r) {
			test_fence_chain(dir);
			test_top1(dir);
			test_kv_fold(dir);
			test_engine_faults(dir);
			test_expert_faults(dir, "lfu", "auto");
		}
		test_whatif();
	}
	char cmd[600];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd))
		printf("note: could not remove %s\n", dir);
	return harness_done();
}
