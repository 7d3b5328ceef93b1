/*
 * test_fw_sim.c - the firmware on port/sim with small test CUs: 3 "GEMM" CUs (integer dot
 * products of the byte operands, so a GEMM that read its expert slot before the DMA landed gives
 * a wrong result), 1 vector CU (RESIDUAL_ADD), 2 DMA channels. Checks: fence ordering under
 * concurrent CUs from completion timestamps, barriers, malformed commands, a corrupted ring, the
 * watchdog (real and virtual clock), and fault-injection loops over every countdown position
 * (DMA error, CU hang, bad completion) with recovery.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "firmware/port/sim/sim_card.h"

#define BANK_BYTES (1u << 20)
#define N_BANKS 4
#define SLOT_BYTES (64u * 256u) /* expert slot: W [n=64, k=256] */
#define TIMEOUT_100US                                                                              \
	2000 /* 200 ms hang timeout: CUs take 0.1-0.3 ms, so only a hang or a
			    * badly overloaded host reaches it */
#define M 2
#define N 64
#define K 256

struct cu_ctx {
	uint64_t lat_ns; /* latency per run */
};

static struct abi_board board;
static void *bank_mem[N_BANKS];
static struct cu_ctx gemm_ctx = {300000}, vec_ctx = {100000};

/* y[m,n] = sum_k a[m,k] * w[n,k] over bytes, as f32 */
static uint32_t cu_gemm(void *ctx, struct sim_card *card, uint32_t op, const uint32_t *args,
			uint64_t *lat)
{
	const struct abi_gemm *g = (const void *)args;
	*lat = ((struct cu_ctx *)ctx)->lat_ns;
	if (op != ABI_OP_GEMM_FP8)
		return 0xE1;
	const uint8_t *a = sim_card_ptr(card, g->a, (uint64_t)g->m * g->k);
	const uint8_t *w = sim_card_ptr(card, g->w, (uint64_t)g->n * g->k);
	float *y = sim_card_ptr(card, g->y, (uint64_t)g->m * g->n * 4);
	if (!a || !w || !y)
		return 0xE2;
	for (uint32_t i = 0; i < g->m; i++)
		for (uint32_t j = 0; j < g->n; j++) {
			uint32_t s = 0;
			for (uint32_t k = 0; k < g->k; k++)
				s += (uint32_t)a[(size_t)i * g->k + k] * w[(size_t)j * g->k + k];
			y[(size_t)i * g->n + j] = (float)s;
		}
	return 0;
}

static uint32_t cu_vec(void *ctx, struct sim_card *card, uint32_t op, const uint32_t *args,
		       uint64_t *lat)
{
	const struct abi_vec *v = (const void *)args;
	*lat = ((struct cu_ctx *)ctx)->lat_ns;
	if (op != ABI_OP_RESIDUAL_ADD)
		return 0xE1;
	size_t n = (size_t)v->rows * v->cols;
	const float *x = sim_card_ptr(card, v->x, n * 4), *x2 = sim_card_ptr(card, v->x2, n * 4);
	float *o = sim_card_ptr(card, v->out, n * 4);
	if (!x || !x2 || !o)
		return 0xE2;
	for (size_t i = 0; i < n; i++)
		o[i] = x[i] + x2[i];
	return 0;
}

static void board_make(void)
{
	memset(&board, 0, sizeof board);
	board.magic = ABI_BOARD_MAGIC;
	board.version = ABI_BOARD_VERSION;
	board.counts = ABI_BOARD_COUNTS(N_BANKS, 4, 2);
	board.cu_clk_khz = 300000;
	for (uint32_t i = 0; i < N_BANKS; i++) {
		board.banks[i].base = 0x10000000ull * (i + 1);
		board.banks[i].size = BANK_BYTES;
		board.banks[i].bw_mbps = 14000;
	}
	for (uint32_t i = 0; i < 3; i++) {
		board.cus[i].word = ABI_CU_WORD(ABI_CU_GEMM, i);
		board.cus[i].ops_mask = 1u << ABI_OP_GEMM_FP8;
		board.cus[i].bank_mask = 0x7; /* banks 0-2; bank 3 only for the vector CU */
	}
	board.cus[3].word = ABI_CU_WORD(ABI_CU_VEC, 3);
	board.cus[3].ops_mask = 1u << ABI_OP_RESIDUAL_ADD;
	board.cus[3].bank_mask = 0xF;
	for (uint32_t i = 0; i < 2; i++) {
		board.dma[i].word = ABI_DMA_CAP_H2C | ABI_DMA_CAP_C2C;
		board.dma[i].bw_mbps = 1000;
	}
}

static struct sim_card *card_new(sim_clock_fn clk, void *clk_ctx, uint32_t ring_start)
{
	board_make();
	struct sim_card_config cfg = {.board = &board,
				      .ring_start = ring_start,
				      .dma_latency_ns = 1000000,
				      .clock = clk,
				      .clock_ctx = clk_ctx};
	for (uint32_t i = 0; i < N_BANKS; i++) {
		memset(bank_mem[i], 0, BANK_BYTES);
		cfg.bank_mem[i] = bank_mem[i];
	}
	for (uint32_t i = 0; i < 3; i++) {
		cfg.cu_fn[i] = cu_gemm;
		cfg.cu_ctx[i] = &gemm_ctx;
	}
	cfg.cu_fn[3] = cu_vec;
	cfg.cu_ctx[3] = &vec_ctx;
	struct sim_card *c;
	int rc = sim_card_init(&c, &cfg);
	assert_int_equal(rc, 0);
	assert_int_equal(sim_card_start(c), 0);
	return c;
}

/* host-side source of expert weights: slot s gets bytes (s*7 + n + k) & 0xFF */
static uint8_t host_w[4][SLOT_BYTES];
static uint8_t act[M * K];

static void data_make(void)
{
	for (uint32_t s = 0; s < 4; s++)
		for (uint32_t n = 0; n < N; n++)
			for (uint32_t k = 0; k < K; k++)
				host_w[s][n * K + k] = (uint8_t)((s * 7 + n + k) & 0xFF);
	for (uint32_t i = 0; i < M * K; i++)
		act[i] = (uint8_t)(i % 5 + 1);
}

static float gemm_expect(uint32_t s, uint32_t i, uint32_t j)
{
	uint32_t sum = 0;
	for (uint32_t k = 0; k < K; k++)
		sum += (uint32_t)act[i * K + k] * host_w[s][j * K + k];
	return (float)sum;
}

/* layout: slot s in bank (s % 3) at SLOT_OFF(s); activations at bank 0 offset 0; scales
 * (unused by the test CU) at 0x8000; outputs per (slot, rep) in bank s%3 at 0x40000 + ... */
#define SLOT_OFF(s) (0x10000u + (s / 3) * SLOT_BYTES)
#define Y_OFF(s, r) (0x40000u + ((s)*4 + (r)) * M * N * 4)

static void cmd_fill(struct abi_cmd *c, uint32_t tag, uint32_t s, uint32_t fence, uint32_t val)
{
	memset(c, 0, sizeof *c);
	abi_cmd_hdr_set(&c->hdr, ABI_OP_DMA_FILL, tag);
	abi_cmd_signal(&c->hdr, fence, val);
	c->u.dma.src = (uint64_t)(uintptr_t)host_w[s];
	c->u.dma.dst = ABI_ADDR(s % 3, SLOT_OFF(s));
	c->u.dma.bytes = SLOT_BYTES;
	c->u.dma.flags = ABI_DMA_F_SRC_HOST;
	c->u.dma.word = ABI_DMA_WORD(ABI_DMA_CHAN_ANY, 0, s);
}

static void cmd_gemm(struct abi_cmd *c, uint32_t tag, uint32_t s, uint32_t rep, uint32_t fence,
		     uint32_t val)
{
	memset(c, 0, sizeof *c);
	abi_cmd_hdr_set(&c->hdr, ABI_OP_GEMM_FP8, tag);
	if (val)
		abi_cmd_wait(&c->hdr, fence, val);
	c->hdr.word2 |= ABI_W2(0, TIMEOUT_100US);
	c->u.gemm.m = M;
	c->u.gemm.n = N;
	c->u.gemm.k = K;
	c->u.gemm.a = ABI_ADDR(s % 3, 0);
	c->u.gemm.sa = ABI_ADDR(s % 3, 0x8000);
	c->u.gemm.w = ABI_ADDR(s % 3, SLOT_OFF(s));
	c->u.gemm.sw = ABI_ADDR(s % 3, 0x9000);
	c->u.gemm.y = ABI_ADDR(s % 3, Y_OFF(s, rep));
}

static void cmd_add(struct abi_cmd *c, uint32_t tag, uint32_t off)
{
	memset(c, 0, sizeof *c);
	abi_cmd_hdr_set(&c->hdr, ABI_OP_RESIDUAL_ADD, tag);
	c->hdr.word2 |= ABI_W2(0, TIMEOUT_100US);
	c->u.vec.x = ABI_ADDR(3, off);
	c->u.vec.x2 = ABI_ADDR(3, off + 4096);
	c->u.vec.out = ABI_ADDR(3, off + 8192);
	c->u.vec.rows = 4;
	c->u.vec.cols = 256;
}

static void act_load(void)
{
	for (uint32_t b = 0; b < 3; b++)
		memcpy(bank_mem[b], act, sizeof act);
	// cppcheck-suppress invalidPointerCast ; bank 3 holds the vector CU's f32 operands
	float *x = (float *)((uint8_t *)bank_mem[3]);
	for (uint32_t i = 0; i < 1024 * 4; i++)
		x[i] = (float)i; /* x at 0, x2 at 4096 overlap x: out = x[i] + x[i+1024] */
}

/* Collects n completions indexed by tag (< 64); fails the test on a timeout. */
static void collect(struct sim_card *c, struct abi_cpl *by_tag, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		struct abi_cpl cpl;
		int rc = sim_card_wait(c, &cpl, 5000);
		if (rc)
			print_error("completion %u of %u: %d\n", i + 1, n, rc);
		assert_int_equal(rc, 0);
		assert_true(cpl.tag < 64);
		by_tag[cpl.tag] = cpl;
	}
}

#define ST(cpl) ABI_CPL_STATUS((cpl).word1)

static void check_gemm_out(uint32_t s, uint32_t rep)
{
	// cppcheck-suppress invalidPointerCast ; the GEMM CUs write f32 results into the bank
	const float *y = (const float *)((uint8_t *)bank_mem[s % 3] + Y_OFF(s, rep));
	for (uint32_t i = 0; i < M; i++)
		for (uint32_t j = 0; j < N; j++)
			if (y[i * N + j] != gemm_expect(s, i, j)) {
				print_error("slot %u rep %u y[%u,%u] = %g, want %g\n", s, rep, i, j,
					    y[i * N + j], gemm_expect(s, i, j));
				fail();
			}
}

/* Fence ordering under concurrent CUs. */
static void test_fence_ordering(void **state)
{
	(void)state;
	struct sim_card *c = card_new(NULL, NULL, UINT32_MAX - 5); /* rings also wrap */
	act_load();
	struct abi_cmd dma[3], gq[2][3];
	struct abi_cpl cpl[64];
	memset(cpl, 0, sizeof cpl);
	for (uint32_t s = 0; s < 3; s++)
		cmd_fill(&dma[s], s, s, s, 1);
	/* ring 2: GEMMs on slots 0,1,2 (rep 0); ring 3: the same slots again (rep 1) */
	for (uint32_t s = 0; s < 3; s++) {
		cmd_gemm(&gq[0][s], 10 + s, s, 0, s, 1);
		cmd_gemm(&gq[1][s], 20 + s, s, 1, s, 1);
	}
	assert_int_equal(sim_card_submit(c, 2, gq[0], 3), 0); /* GEMMs first: they must wait */
	assert_int_equal(sim_card_submit(c, 3, gq[1], 3), 0);
	assert_int_equal(sim_card_submit(c, 1, dma, 3), 0);
	collect(c, cpl, 9);
	int overlaps = 0;
	for (uint32_t s = 0; s < 3; s++) {
		assert_int_equal(ST(cpl[s]), ABI_ST_OK);
		for (uint32_t r = 0; r < 2; r++) {
			struct abi_cpl *g = &cpl[10 + 10 * r + s];
			assert_int_equal(ST(*g), ABI_ST_OK);
			print_message(
			    "slot %u: dma [%8llu, %8llu] ns, gemm rep %u on CU %u [%8llu, %8llu]\n",
			    s, (unsigned long long)cpl[s].t_start, (unsigned long long)cpl[s].t_end,
			    r, ABI_CPL_CU(g->word1), (unsigned long long)g->t_start,
			    (unsigned long long)g->t_end);
			if (g->t_start < cpl[s].t_end)
				print_error(
				    "GEMM tag %u started %lld ns before its slot's DMA ended\n",
				    g->tag, (long long)(cpl[s].t_end - g->t_start));
			assert_true(g->t_start >= cpl[s].t_end);
			check_gemm_out(s, r);
		}
	}
	/* concurrency: some pair of GEMMs ran on different CUs at overlapping times */
	for (uint32_t a = 10; a < 23; a++)
		for (uint32_t b = a + 1; b < 23; b++)
			if (cpl[a].t_end && cpl[b].t_end && cpl[a].t_start < cpl[b].t_end &&
			    cpl[b].t_start < cpl[a].t_end &&
			    ABI_CPL_CU(cpl[a].word1) != ABI_CPL_CU(cpl[b].word1))
				overlaps++;
	print_message("overlapping GEMM pairs on different CUs: %d\n", overlaps);
	assert_true(overlaps > 0);
	const struct abi_telemetry *t = sim_card_telemetry(c);
	assert_int_equal(t->magic, ABI_TELEM_MAGIC);
	assert_int_equal(t->dma_bytes, 3 * SLOT_BYTES);
	assert_int_equal(t->cu_cmds[0] + t->cu_cmds[1] + t->cu_cmds[2], 6);
	assert_int_equal(t->errors, 0);
	sim_card_free(c);
}

/* BARRIER waits for its ring's earlier commands; TIMESTAMP and NOP complete in order. */
static void test_barrier(void **state)
{
	(void)state;
	struct sim_card *c = card_new(NULL, NULL, 0);
	act_load();
	struct abi_cmd l[4];
	struct abi_cpl cpl[64];
	cmd_fill(&l[0], 0, 0, 0, 1);
	cmd_gemm(&l[1], 1, 0, 0, 0, 1);
	memset(&l[2], 0, 2 * sizeof l[0]);
	abi_cmd_hdr_set(&l[2].hdr, ABI_OP_BARRIER, 2);
	abi_cmd_hdr_set(&l[3].hdr, ABI_OP_TIMESTAMP, 3);
	assert_int_equal(sim_card_submit(c, 0, l, 4), 0);
	collect(c, cpl, 4);
	for (int i = 0; i < 4; i++)
		assert_int_equal(ST(cpl[i]), ABI_ST_OK);
	assert_true(cpl[2].t_start >= cpl[1].t_end);
	assert_true(cpl[3].t_start >= cpl[2].t_end);
	assert_int_equal(cpl[3].t_start, cpl[3].t_end);
	print_message("gemm end %llu, barrier %llu, timestamp %llu\n",
		      (unsigned long long)cpl[1].t_end, (unsigned long long)cpl[2].t_start,
		      (unsigned long long)cpl[3].t_start);
	sim_card_free(c);
}

/* DRAIN (a barrier folded into the command after it): the command starts only after every earlier
 * command of its ring completed, as behind a BARRIER, with one command fewer; without the flag
 * two GEMMs on two CUs overlap. */
static void test_drain(void **state)
{
	(void)state;
	struct sim_card *c = card_new(NULL, NULL, 0);
	act_load();
	struct abi_cmd l[3];
	struct abi_cpl cpl[64];
	for (int drain = 0; drain < 2; drain++) {
		cmd_fill(&l[0], 0, 0, 0, 1);
		cmd_gemm(&l[1], 1, 0, 0, 0, 1);
		cmd_gemm(&l[2], 2, 1, 0, 0, 0);
		if (drain)
			l[2].hdr.word2 |= ABI_CMD_F_DRAIN;
		assert_int_equal(sim_card_submit(c, 0, l, 3), 0);
		collect(c, cpl, 3);
		for (int i = 0; i < 3; i++)
			assert_int_equal(ST(cpl[i]), ABI_ST_OK);
		if (drain)
			assert_true(cpl[2].t_start >= cpl[1].t_end &&
				    cpl[2].t_start >= cpl[0].t_end);
		else
			assert_true(cpl[2].t_start < cpl[1].t_end);
		print_message("drain %d: gemm 1 %llu..%llu, gemm 2 from %llu\n", drain,
			      (unsigned long long)cpl[1].t_start, (unsigned long long)cpl[1].t_end,
			      (unsigned long long)cpl[2].t_start);
	}
	sim_card_free(c);
}

/* Malformed and hostile commands get error completions; the card keeps working. */
static void test_malformed(void **state)
{
	(void)state;
	struct sim_card *c = card_new(NULL, NULL, 0);
	act_load();
	struct abi_cmd l[8];
	struct abi_cpl cpl[64];
	for (int i = 0; i < 7; i++)
		cmd_gemm(&l[i], (uint32_t)i, 0, 0, 0, 0);
	l[0].hdr.word0 = 0xDEADBEEF;		      /* bad magic */
	l[1].hdr.word0 = ABI_W0(200);		      /* bad opcode */
	l[2].u.gemm.w = ABI_ADDR(0, BANK_BYTES - 10); /* runs off the bank */
	l[3].u.gemm.y = ABI_ADDR(3, 0);		      /* bank no GEMM CU reaches */
	l[4].u.gemm.a = ABI_ADDR(50, 0);	      /* no such bank */
	l[5].u.gemm.k = 0;			      /* zero dimension */
	l[6].hdr.rsvd[0] = 1;			      /* reserved word */
	cmd_gemm(&l[7], 7, 0, 0, 0, 0);		      /* a good one */
	assert_int_equal(sim_card_submit(c, 1, l, 8), 0);
	collect(c, cpl, 8);
	const uint32_t want[8] = {ABI_ST_BAD_MAGIC, ABI_ST_BAD_OPCODE, ABI_ST_BAD_ADDR,
				  ABI_ST_NO_CU,	    ABI_ST_BAD_ADDR,   ABI_ST_BAD_FIELD,
				  ABI_ST_BAD_FIELD, ABI_ST_OK};
	for (int i = 0; i < 8; i++) {
		print_message("tag %d: %s detail %u\n", i, abi_status_name(ST(cpl[i])),
			      cpl[i].detail);
		assert_int_equal(ST(cpl[i]), want[i]);
	}
	assert_int_equal(cpl[2].detail, ABI_FIELD(u.gemm.w));
	assert_int_equal(cpl[4].detail, ABI_FIELD(u.gemm.a));
	const struct abi_telemetry *t = sim_card_telemetry(c);
	assert_int_equal(t->errors, 7);
	assert_int_equal(t->log_head, 7);
	assert_int_equal(t->log[6 % ABI_ERRLOG_LEN].tag, 6);
	/* a corrupted ring: the host claims 1000 commands in a 64-slot ring */
	struct abi_ring_view *v = sim_card_cmdq(c, 2);
	__atomic_store_n(&v->ring->produced, v->own + 1000, __ATOMIC_RELEASE);
	sim_card_kick(c);
	struct abi_cpl e;
	assert_int_equal(sim_card_wait(c, &e, 5000), 0);
	assert_int_equal(ABI_CPL_STATUS(e.word1), ABI_ST_RING_ERROR);
	assert_int_equal(ABI_CPL_QUEUE(e.word1), 2);
	/* other rings keep working */
	cmd_gemm(&l[0], 9, 0, 0, 0, 0);
	assert_int_equal(sim_card_submit(c, 0, l, 1), 0);
	collect(c, cpl, 1);
	assert_int_equal(ST(cpl[9]), ABI_ST_OK);
	sim_card_free(c);
}

/* Watchdog: a hung CU is aborted with CU_TIMEOUT and reset; the next command succeeds. */
static void test_watchdog(void **state)
{
	(void)state;
	struct sim_card *c = card_new(NULL, NULL, 0);
	act_load();
	struct abi_cmd l[2];
	struct abi_cpl cpl[64];
	uint32_t hb0 = sim_card_telemetry(c)->heartbeat;
	memcpy((uint8_t *)bank_mem[0] + SLOT_OFF(0), host_w[0], SLOT_BYTES); /* slot 0 loaded */
	sim_card_fault_set(c, SIM_FAULT_CU_HANG, 1);
	cmd_gemm(&l[0], 0, 0, 0, 0, 0);
	cmd_gemm(&l[1], 1, 0, 1, 0, 0);
	assert_int_equal(sim_card_submit(c, 0, l, 1), 0);
	collect(c, cpl, 1);
	assert_int_equal(ST(cpl[0]), ABI_ST_CU_TIMEOUT);
	uint64_t waited = cpl[0].t_end - cpl[0].t_start;
	print_message("hung CU %u aborted after %llu ns (timeout %u ns)\n",
		      ABI_CPL_CU(cpl[0].word1), (unsigned long long)waited, TIMEOUT_100US * 100000);
	assert_true(waited >= TIMEOUT_100US * 100000ull);
	const struct abi_telemetry *t = sim_card_telemetry(c);
	uint32_t cu = ABI_CPL_CU(cpl[0].word1);
	assert_int_equal(t->cu_resets[cu], 1);
	assert_int_equal(t->log[0].tag, 0);
	assert_int_equal(ABI_CPL_STATUS(t->log[0].word1), ABI_ST_CU_TIMEOUT);
	/* all GEMMs, including on the reset CU, work again */
	for (int r = 0; r < 4; r++) {
		cmd_gemm(&l[0], (uint32_t)(10 + r), 0, (uint32_t)r % 2, 0, 0);
		assert_int_equal(sim_card_submit(c, 0, l, 1), 0);
	}
	collect(c, cpl, 4);
	for (int r = 0; r < 4; r++)
		assert_int_equal(ST(cpl[10 + r]), ABI_ST_OK);
	check_gemm_out(0, 0);
	check_gemm_out(0, 1);
	assert_true(t->heartbeat > hb0);
	print_message("heartbeat %u -> %u\n", hb0, t->heartbeat);
	sim_card_free(c);
}

/* The same under a virtual clock the test drives: nothing times out until time moves. */
static uint64_t vclock;
static uint64_t vclock_now(void *ctx)
{
	(void)ctx;
	return __atomic_load_n(&vclock, __ATOMIC_ACQUIRE);
}

static void test_watchdog_virtual_clock(void **state)
{
	(void)state;
	vclock = 0;
	struct sim_card *c = card_new(vclock_now, NULL, 0);
	act_load();
	struct abi_cmd l[1];
	struct abi_cpl cpl;
	sim_card_fault_set(c, SIM_FAULT_CU_HANG, 1);
	cmd_gemm(&l[0], 0, 0, 0, 0, 0);
	assert_int_equal(sim_card_submit(c, 0, l, 1), 0);
	assert_int_equal(sim_card_wait(c, &cpl, 50), -ETIMEDOUT); /* frozen time: no abort */
	uint64_t steps = 0;
	while (sim_card_poll(c, &cpl) == -EAGAIN && steps < 100000) {
		__atomic_add_fetch(&vclock, 1000000, __ATOMIC_RELEASE); /* +1 ms */
		sim_card_kick(c);
		steps++;
		sim_card_wait(c, &cpl, 1) == 0 ? (void)(steps |= 1ull << 40) : (void)0;
		if (steps >> 40)
			break;
	}
	assert_true(steps >> 40);
	assert_int_equal(ABI_CPL_STATUS(cpl.word1), ABI_ST_CU_TIMEOUT);
	print_message("virtual clock: abort at t=%llu ns after start %llu\n",
		      (unsigned long long)cpl.t_end, (unsigned long long)cpl.t_start);
	assert_true(cpl.t_end - cpl.t_start >= TIMEOUT_100US * 100000ull);
	/* a normal run completes only as virtual time passes its latency (300 us) */
	cmd_gemm(&l[0], 1, 0, 0, 0, 0);
	uint64_t t0 = vclock_now(NULL);
	assert_int_equal(sim_card_submit(c, 0, l, 1), 0);
	int got = 0;
	for (int i = 0; i < 100000 && !got; i++) {
		if (sim_card_wait(c, &cpl, 1) == 0) {
			got = 1;
			break;
		}
		__atomic_add_fetch(&vclock, 50000, __ATOMIC_RELEASE);
		sim_card_kick(c);
	}
	assert_true(got);
	assert_int_equal(ABI_CPL_STATUS(cpl.word1), ABI_ST_OK);
	assert_true(cpl.t_end - cpl.t_start >= gemm_ctx.lat_ns);
	assert_true(cpl.t_start >= t0);
	sim_card_free(c);
}

/* Collects n completions under the virtual clock, moving it from one model event to the next
 * as the emulated card's backend does (sim_card_settle): card time, and so every watchdog,
 * never depends on how long the host's threads were starved. */
static void collect_v(struct sim_card *c, struct abi_cpl *by_tag, uint32_t n)
{
	uint32_t got = 0;
	while (got < n) {
		struct abi_cpl cpl;
		while (got < n && sim_card_poll(c, &cpl) == 0) {
			assert_true(cpl.tag < 64);
			by_tag[cpl.tag] = cpl;
			got++;
		}
		if (got == n)
			break;
		uint64_t next = UINT64_MAX;
		int r = sim_card_settle(c, true, 60000, &next);
		if (r == 1)
			continue;
		if (r < 0 || next == UINT64_MAX)
			print_error("completion %u of %u: settle %d, next %llu\n", got + 1, n, r,
				    (unsigned long long)next);
		assert_true(r == 0 && next != UINT64_MAX);
		__atomic_store_n(&vclock, next, __ATOMIC_RELEASE);
		sim_card_kick(c);
	}
}

/* Fault-injection loops: for each fault kind, a workload is run once per countdown position,
 * under the virtual clock (collect_v). */
#define WL_SLOTS 3
#define WL_N (WL_SLOTS + 2 * WL_SLOTS + 2)

static uint32_t wl_gen;

/* Builds and submits the workload: fills (ring 1), GEMMs waiting on them (ring 2), vector adds
 * (ring 3). Fence values use a fresh generation so every run waits on its own fills. */
static void wl_submit(struct sim_card *c)
{
	struct abi_cmd f[WL_SLOTS], g[2 * WL_SLOTS], v[2];
	wl_gen++;
	for (uint32_t s = 0; s < WL_SLOTS; s++) {
		cmd_fill(&f[s], s, s, s, wl_gen);
		cmd_gemm(&g[2 * s], 10 + 2 * s, s, 0, s, wl_gen);
		cmd_gemm(&g[2 * s + 1], 11 + 2 * s, s, 1, s, wl_gen);
	}
	cmd_add(&v[0], 30, 0);
	cmd_add(&v[1], 31, 16384);
	assert_int_equal(sim_card_submit(c, 2, g, 2 * WL_SLOTS), 0);
	assert_int_equal(sim_card_submit(c, 1, f, WL_SLOTS), 0);
	assert_int_equal(sim_card_submit(c, 3, v, 2), 0);
}

static const uint32_t wl_tags[WL_N] = {0, 1, 2, 10, 11, 12, 13, 14, 15, 30, 31};

static void wl_run_clean(struct sim_card *c)
{
	struct abi_cpl cpl[64];
	for (uint32_t s = 0; s < WL_SLOTS; s++)
		memset((uint8_t *)bank_mem[s % 3] + SLOT_OFF(s), 0, SLOT_BYTES);
	wl_submit(c);
	collect_v(c, cpl, WL_N);
	for (uint32_t i = 0; i < WL_N; i++) {
		if (ST(cpl[wl_tags[i]]) != ABI_ST_OK)
			print_error("clean run: tag %u status %s\n", wl_tags[i],
				    abi_status_name(ST(cpl[wl_tags[i]])));
		assert_int_equal(ST(cpl[wl_tags[i]]), ABI_ST_OK);
	}
	for (uint32_t s = 0; s < WL_SLOTS; s++) {
		check_gemm_out(s, 0);
		check_gemm_out(s, 1);
	}
}

static void test_fault_loops(void **state)
{
	(void)state;
	vclock = 0;
	struct sim_card *c = card_new(vclock_now, NULL, UINT32_MAX - 40);
	act_load();
	const uint32_t want[SIM_FAULT_COUNT] = {ABI_ST_DMA_ERROR, ABI_ST_CU_TIMEOUT,
						ABI_ST_CU_ERROR};
	const char *names[SIM_FAULT_COUNT] = {"dma-error", "cu-hang", "bad-completion"};
	uint32_t total_runs = 0;
	for (int f = 0; f < SIM_FAULT_COUNT; f++) {
		uint32_t e0 = sim_card_events(c, (enum sim_fault)f);
		wl_run_clean(c);
		uint32_t events = sim_card_events(c, (enum sim_fault)f) - e0;
		assert_true(events > 0);
		for (uint32_t n = 1; n <= events; n++) {
			struct abi_cpl cpl[64];
			memset(cpl, 0, sizeof cpl);
			sim_card_fault_set(c, (enum sim_fault)f, n);
			wl_submit(c);
			collect_v(c, cpl, WL_N);
			sim_card_fault_set(c, (enum sim_fault)f, 0);
			uint32_t faulted = 0, dep = 0, ok = 0, other = 0, failed_slot = 99;
			for (uint32_t i = 0; i < WL_N; i++) {
				uint32_t st = ST(cpl[wl_tags[i]]);
				if (st == want[f]) {
					faulted++;
					if (f == SIM_FAULT_DMA_ERROR)
						failed_slot = wl_tags[i];
				} else if (st == ABI_ST_DEP_ERROR) {
					dep++;
				} else if (st == ABI_ST_OK) {
					ok++;
				} else {
					other++;
				}
			}
			/* exactly one command hit the fault; after a failed fill exactly its two
			 * GEMMs fail as dependents; everything else succeeded */
			uint32_t want_dep = f == SIM_FAULT_DMA_ERROR ? 2 : 0;
			if (faulted != 1 || dep != want_dep || other != 0)
				print_error("%s at %u/%u: faulted %u dep %u ok %u other %u\n",
					    names[f], n, events, faulted, dep, ok, other);
			assert_int_equal(faulted, 1);
			assert_int_equal(dep, want_dep);
			assert_int_equal(other, 0);
			if (f == SIM_FAULT_DMA_ERROR) {
				assert_int_equal(ST(cpl[10 + 2 * failed_slot]), ABI_ST_DEP_ERROR);
				assert_int_equal(ST(cpl[11 + 2 * failed_slot]), ABI_ST_DEP_ERROR);
			}
			wl_run_clean(c); /* recovery: the next workload succeeds entirely */
			total_runs += 2;
		}
		print_message("%s: %u countdown positions, each faulted once and recovered\n",
			      names[f], events);
	}
	const struct abi_telemetry *t = sim_card_telemetry(c);
	uint32_t resets = 0;
	for (uint32_t i = 0; i < 4; i++)
		resets += t->cu_resets[i];
	print_message("%u workload runs, %u errors logged, %u CU resets\n", total_runs, t->errors,
		      resets);
	assert_true(resets > 0);
	sim_card_free(c);
}

int main(void)
{
	for (int i = 0; i < N_BANKS; i++)
		bank_mem[i] = malloc(BANK_BYTES);
	data_make();
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_fence_ordering), cmocka_unit_test(test_barrier),
	    cmocka_unit_test(test_drain),	   cmocka_unit_test(test_malformed),
	    cmocka_unit_test(test_watchdog),	   cmocka_unit_test(test_watchdog_virtual_clock),
	    cmocka_unit_test(test_fault_loops),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	for (int i = 0; i < N_BANKS; i++)
		free(bank_mem[i]);
	return rc;
}
