/*
 * fw_selftest.c - see fw_selftest.h. Each check reports "FAIL <file>:<line> <expr> got=<v>" on
 * failure. Uses virtual time for the kernel tests so it runs identically on every port.
 */
#include "firmware/selftest/fw_selftest.h"

#include <errno.h>
#include <string.h>

#include "abi_board.h"
#include "abi_cmd.h"
#include "abi_ring.h"
#include "firmware/fw.h"
#include "firmware/kernel/rtos.h"

static fw_selftest_out_fn st_out;
static struct fw_selftest_result *st_res;

char *fw_selftest_utoa(uint32_t v, char *buf)
{
	char tmp[11];
	int n = 0;
	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	for (int i = 0; i < n; i++)
		buf[i] = tmp[n - 1 - i];
	buf[n] = 0;
	return buf;
}

static void st_check(int ok, const char *expr, int line, int64_t got)
{
	if (ok) {
		st_res->passed++;
		return;
	}
	st_res->failed++;
	char msg[160], num[12];
	strcpy(msg, "FAIL fw_selftest.c:");
	strcat(msg, fw_selftest_utoa((uint32_t)line, num));
	strcat(msg, " ");
	strncat(msg, expr, 80);
	strcat(msg, " got=");
	if (got < 0) {
		strcat(msg, "-");
		got = -got;
	}
	strcat(msg, fw_selftest_utoa((uint32_t)got, num));
	st_out(msg);
}

#define CHECK(e) st_check((e) ? 1 : 0, #e, __LINE__, 0)
#define CHECK_EQ(a, b)                                                                             \
	do {                                                                                       \
		int64_t a_ = (int64_t)(a), b_ = (int64_t)(b);                                      \
		st_check(a_ == b_, #a " == " #b, __LINE__, a_);                                    \
	} while (0)

/* --- rings ------------------------------------------------------------------------------ */
static uint8_t st_ring_mem[192 + 8 * 16];

static void st_ring(void)
{
	struct abi_ring_view p = {0}, c = {0};
	uint8_t e[16], o[16];
	/* start 3 below the wrap: 4 pushes cross UINT32_MAX -> 0 */
	CHECK_EQ(abi_ring_init(&p, ABI_RING_PRODUCER, st_ring_mem, sizeof st_ring_mem, 3, 16,
			       UINT32_MAX - 2),
		 0);
	CHECK_EQ(abi_ring_attach(&c, ABI_RING_CONSUMER, st_ring_mem, sizeof st_ring_mem, 16), 0);
	CHECK_EQ(abi_ring_pop(&c, o), -EAGAIN); /* empty */
	uint32_t next_in = 0, next_out = 0;
	for (int round = 0; round < 5; round++) {
		int pushed = 0;
		for (;;) { /* fill to full */
			memset(e, (int)(next_in & 0xFF), sizeof e);
			memcpy(e, &next_in, 4);
			int rc = abi_ring_push(&p, e);
			if (rc == -EAGAIN)
				break;
			CHECK_EQ(rc, 0);
			next_in++;
			pushed++;
		}
		CHECK_EQ(pushed, round == 0 ? 8 : 5);
		CHECK_EQ(abi_ring_space(&p), 0);
		CHECK_EQ(abi_ring_avail(&c), 8);
		for (int i = 0; i < 5; i++) { /* drain 5, leaving 3 across the next round */
			CHECK_EQ(abi_ring_pop(&c, o), 0);
			uint32_t got;
			memcpy(&got, o, 4);
			CHECK_EQ(got, next_out);
			CHECK_EQ(o[15], next_out & 0xFF);
			next_out++;
		}
	}
	CHECK(c.ring->produced < 100); /* the counters did wrap */
	CHECK_EQ(abi_ring_count(2, UINT32_MAX - 1), 4);
	/* push_n is all-or-nothing */
	uint8_t many[16 * 8];
	memset(many, 0, sizeof many);
	CHECK_EQ(abi_ring_push_n(&p, many, 6), -EAGAIN);
	while (abi_ring_pop(&c, o) == 0)
		;
	CHECK_EQ(abi_ring_push_n(&p, many, 8), 0);
	CHECK_EQ(abi_ring_avail(&c), 8);
	/* hostile counters */
	c.ring->produced = c.own + 9;
	CHECK_EQ(abi_ring_avail(&c), -EPROTO);
	CHECK_EQ(abi_ring_pop(&c, o), -EPROTO);
	p.ring->consumed = p.own + 1; /* consumer claims to be ahead of the producer */
	CHECK_EQ(abi_ring_space(&p), -EPROTO);
	/* attach rejects bad headers */
	struct abi_ring *r = (struct abi_ring *)st_ring_mem;
	r->produced = r->consumed;
	CHECK_EQ(abi_ring_attach(&c, ABI_RING_CONSUMER, st_ring_mem, sizeof st_ring_mem, 32),
		 -EINVAL);
	CHECK_EQ(abi_ring_attach(&c, ABI_RING_CONSUMER, st_ring_mem, 100, 16), -ENOSPC);
	r->geom = ABI_RING_GEOM(4, 16); /* claims 16 slots, memory holds 8 */
	CHECK_EQ(abi_ring_attach(&c, ABI_RING_CONSUMER, st_ring_mem, sizeof st_ring_mem, 16),
		 -ENOSPC);
	r->magic ^= 1;
	CHECK_EQ(abi_ring_attach(&c, ABI_RING_CONSUMER, st_ring_mem, sizeof st_ring_mem, 16),
		 -EBADMSG);
	CHECK_EQ(abi_ring_init(&p, ABI_RING_PRODUCER, st_ring_mem, sizeof st_ring_mem, 3, 12, 0),
		 -EINVAL);
	CHECK_EQ(abi_ring_init(&p, ABI_RING_PRODUCER, st_ring_mem, sizeof st_ring_mem, 17, 16, 0),
		 -EINVAL);
}

/* --- kernel ----------------------------------------------------------------------------- */
struct st_world {
	uint64_t now;		/* virtual ns */
	char order[16];		/* task letters in run order */
	uint32_t n_order;	/* letters written */
	uint32_t idle_n;	/* idle hook calls */
	uint64_t idle_deadline; /* last deadline the idle hook saw */
	uint32_t ev_seen[3];	/* events seen per task */
};
static struct st_world st_w;

static uint64_t st_now(void *ctx)
{
	return ((struct st_world *)ctx)->now;
}

static void st_idle(struct rtos *k, uint64_t deadline, void *ctx)
{
	struct st_world *w = ctx;
	w->idle_n++;
	w->idle_deadline = deadline;
	(void)k;
}

static void st_task_fn(struct rtos *k, struct rtos_task *t, uint32_t ev)
{
	const char *letter = t->arg;
	if (st_w.n_order < sizeof st_w.order - 1)
		st_w.order[st_w.n_order++] = letter[0];
	st_w.ev_seen[letter[0] - 'a'] |= ev;
	(void)k;
}

static void st_rtos(void)
{
	static struct rtos k;
	static struct rtos_task ta, tb, tc, tx[RTOS_CFG_MAX_TASKS];
	static struct rtos_queue q;
	static uint32_t qbuf[4];
	static struct rtos_timer tm1, tm2;
	memset(&st_w, 0, sizeof st_w);
	CHECK_EQ(rtos_init(&k, NULL, NULL, NULL, NULL), -EINVAL);
	CHECK_EQ(rtos_init(&k, st_now, &st_w, st_idle, &st_w), 0);
	CHECK_EQ(rtos_task_add(&k, &ta, "a", 1, st_task_fn, (void *)"a"), 0);
	CHECK_EQ(rtos_task_add(&k, &tb, "b", 5, st_task_fn, (void *)"b"), 0);
	CHECK_EQ(rtos_task_add(&k, &tc, "c", 5, st_task_fn, (void *)"c"), 0);
	CHECK_EQ(rtos_task_add(&k, &tc, "c", 5, st_task_fn, (void *)"c"), -EEXIST);
	CHECK_EQ(rtos_task_add(&k, &tx[0], "x", RTOS_CFG_MAX_PRIO, st_task_fn, NULL), -EINVAL);
	/* priorities: a (1) notified first still runs after b and c (5); b before c (same prio,
	 * registration order) */
	rtos_task_notify(&ta, 1);
	rtos_task_notify(&tc, 2);
	rtos_task_notify(&tb, 4);
	while (rtos_step(&k))
		;
	CHECK(strcmp(st_w.order, "bca") == 0);
	CHECK_EQ(st_w.ev_seen[0], 1);
	CHECK_EQ(st_w.ev_seen[2], 2);
	CHECK_EQ(st_w.idle_n, 1);
	CHECK_EQ(st_w.idle_deadline, UINT64_MAX);
	/* events coalesce: two notifies, one run with both bits */
	st_w.n_order = 0;
	memset(st_w.order, 0, sizeof st_w.order);
	rtos_task_notify(&ta, 8);
	rtos_task_notify(&ta, 16);
	CHECK_EQ(rtos_step(&k), 1);
	CHECK_EQ(rtos_step(&k), 0);
	CHECK_EQ(st_w.ev_seen[0], 1 | 8 | 16);
	CHECK_EQ(ta.runs, 2);
	/* queue: empty, fill, full, FIFO order, wrap, owner notified */
	CHECK_EQ(rtos_queue_init(&q, qbuf, 4, 0, NULL, 0), -EINVAL);
	CHECK_EQ(rtos_queue_init(&q, qbuf, 4, 4, &tb, 32), 0);
	uint32_t v = 0;
	CHECK_EQ(rtos_queue_recv(&q, &v), -EAGAIN);
	CHECK(rtos_queue_peek(&q) == NULL);
	for (uint32_t round = 0; round < 3; round++) {
		for (uint32_t i = 0; i < 4; i++) {
			uint32_t x = round * 10 + i;
			CHECK_EQ(rtos_queue_send(&q, &x), 0);
		}
		uint32_t x = 99;
		CHECK_EQ(rtos_queue_send(&q, &x), -EAGAIN);
		CHECK_EQ(rtos_queue_space(&q), 0);
		CHECK_EQ(*(uint32_t *)rtos_queue_peek(&q), round * 10);
		for (uint32_t i = 0; i < 3; i++) { /* leave one behind so the ring wraps */
			CHECK_EQ(rtos_queue_recv(&q, &v), 0);
			CHECK_EQ(v, round * 10 + i);
		}
		CHECK_EQ(rtos_queue_recv(&q, &v), 0);
		CHECK_EQ(v, round * 10 + 3);
		CHECK_EQ(rtos_queue_count(&q), 0);
		CHECK_EQ(rtos_queue_send(&q, &x), 0); /* offset the head for the next round */
		CHECK_EQ(rtos_queue_recv(&q, NULL), 0);
	}
	CHECK_EQ(q.high_water, 4);
	CHECK(tb.events & 32);
	/* timers on virtual time: one-shot at +100, periodic every 50 from +30 */
	CHECK_EQ(rtos_timer_add(&k, &tm1, &ta, 64), 0);
	CHECK_EQ(rtos_timer_add(&k, &tm2, &tc, 128), 0);
	CHECK_EQ(rtos_timer_add(&k, &tm2, NULL, 1), -EINVAL);
	while (rtos_step(&k))
		;
	st_w.ev_seen[0] = st_w.ev_seen[2] = 0;
	rtos_timer_start(&k, &tm1, 100, 0);
	rtos_timer_start(&k, &tm2, 30, 50);
	CHECK_EQ(rtos_next_deadline(&k), 30);
	CHECK_EQ(rtos_step(&k), 0);
	CHECK_EQ(st_w.idle_deadline, 30);
	st_w.now = 30;
	CHECK_EQ(rtos_step(&k), 1);
	CHECK(st_w.ev_seen[2] & 128);
	CHECK_EQ(rtos_next_deadline(&k), 80);
	st_w.now = 100; /* both due: tm2 at 80, tm1 at 100 */
	while (rtos_step(&k))
		;
	CHECK(st_w.ev_seen[0] & 64);
	CHECK_EQ(tm1.fired, 1);
	CHECK_EQ(tm1.active, 0);
	CHECK_EQ(tm2.fired, 2);
	CHECK_EQ(rtos_next_deadline(&k), 130);
	st_w.now = 1000; /* a long stall fires once and skips missed periods */
	while (rtos_step(&k))
		;
	CHECK_EQ(tm2.fired, 3);
	CHECK_EQ(rtos_next_deadline(&k), 1030);
	rtos_timer_stop(&tm2);
	CHECK_EQ(rtos_next_deadline(&k), UINT64_MAX);
	/* task table capacity */
	uint32_t added = 3;
	int rc = 0;
	for (uint32_t i = 0; i < RTOS_CFG_MAX_TASKS && rc == 0; i++)
		if ((rc = rtos_task_add(&k, &tx[i], "x", 0, st_task_fn, (void *)"a")) == 0)
			added++;
	CHECK_EQ(rc, -ENOSPC);
	CHECK_EQ(added, RTOS_CFG_MAX_TASKS);
}

/* --- decoder ---------------------------------------------------------------------------- */
static struct abi_board st_board;
static struct fw_cmd st_fc;

static void st_board_make(struct abi_board *b)
{
	memset(b, 0, sizeof(*b));
	b->magic = ABI_BOARD_MAGIC;
	b->version = ABI_BOARD_VERSION;
	b->counts = ABI_BOARD_COUNTS(3, 5, 1);
	for (uint32_t i = 0; i < 3; i++) {
		b->banks[i].base = 0x100000000ull * (i + 1);
		b->banks[i].size = 1u << 20;
		b->banks[i].bw_mbps = 14000;
	}
	b->cus[0].word = ABI_CU_WORD(ABI_CU_GEMM, 0);
	b->cus[0].ops_mask = 1u << ABI_OP_GEMM_FP8;
	b->cus[0].bank_mask = 0x3; /* banks 0 and 1 only */
	b->cus[1].word = ABI_CU_WORD(ABI_CU_VEC, 1);
	b->cus[1].ops_mask = 0x3FCu | (1u << ABI_OP_GATHER) | (1u << ABI_OP_COMBINE);
	/* RMSNORM .. KV_APPEND, GATHER, COMBINE */
	b->cus[1].bank_mask = 0x7;
	/* a 2-lane GEMV and striped attention (lanes on banks 0 and 1), the router */
	b->cus[2].word = ABI_CU_WORD_LANES(ABI_CU_GEMV, 2, 2);
	b->cus[2].ops_mask = 1u << ABI_OP_GEMV;
	b->cus[2].bank_mask = 0x7;
	b->cus[3].word = ABI_CU_WORD(ABI_CU_VEC, 3);
	b->cus[3].ops_mask = 1u << ABI_OP_MOE_ROUTE;
	b->cus[3].bank_mask = 0x7;
	b->cus[4].word = ABI_CU_WORD_LANES(ABI_CU_MLA, 4, 2);
	b->cus[4].ops_mask = 1u << ABI_OP_MLA_ATTN_LANES;
	b->cus[4].bank_mask = 0x7;
	b->dma[0].word = ABI_DMA_CAP_H2C | ABI_DMA_CAP_C2C;
	b->dma[0].bw_mbps = 12000;
}

static uint32_t st_decode(const struct abi_cmd *c, uint32_t *detail)
{
	return fw_cmd_decode(&st_board, c, 1, &st_fc, detail);
}

static void st_gemm(struct abi_cmd *c)
{
	memset(c, 0, sizeof(*c));
	abi_cmd_hdr_set(&c->hdr, ABI_OP_GEMM_FP8, 7);
	c->u.gemm.m = 4;
	c->u.gemm.n = 200;
	c->u.gemm.k = 300;
	c->u.gemm.a = ABI_ADDR(0, 0);
	c->u.gemm.sa = ABI_ADDR(0, 4096);
	c->u.gemm.w = ABI_ADDR(1, 0);
	c->u.gemm.sw = ABI_ADDR(1, 200 * 300);
	c->u.gemm.y = ABI_ADDR(0, 8192);
}

static void st_decoder(void)
{
	struct abi_board b;
	uint32_t field, d;
	struct abi_cmd c;
	st_board_make(&st_board);
	CHECK_EQ(fw_board_check(&st_board, &field), 0);
	b = st_board;
	b.magic++;
	CHECK_EQ(fw_board_check(&b, &field), -EBADMSG);
	b = st_board;
	b.banks[1].base = st_board.banks[0].base + 4096; /* overlaps bank 0 */
	CHECK_EQ(fw_board_check(&b, &field), -EINVAL);
	CHECK_EQ(field, offsetof(struct abi_board, banks[1]));
	b = st_board;
	b.cus[0].bank_mask = 0x8; /* bank 3 does not exist */
	CHECK_EQ(fw_board_check(&b, &field), -EINVAL);
	CHECK_EQ(field, offsetof(struct abi_board, cus[0]));
	b = st_board;
	b.cus[1].ops_mask |= 1u << ABI_OP_DMA_FILL;
	CHECK_EQ(fw_board_check(&b, &field), -EINVAL);
	b = st_board;
	b.banks[5].size = 1; /* beyond n_banks: must be zero */
	CHECK_EQ(fw_board_check(&b, &field), -EINVAL);
	b = st_board;
	b.banks[2].base = UINT64_MAX - 10; /* wraps */
	CHECK_EQ(fw_board_check(&b, &field), -EINVAL);

	/* a good GEMM; operands become physical addresses */
	st_gemm(&c);
	CHECK_EQ(st_decode(&c, &d), ABI_ST_OK);
	CHECK_EQ(st_fc.args[4], 0); /* w: bank 1 base 0x200000000 -> low word 0 */
	CHECK_EQ(st_fc.args[5], 2);
	CHECK_EQ(st_fc.bank_mask, 3);
	CHECK_EQ(st_fc.timeout_ns, FW_CFG_CU_TIMEOUT_NS);
	/* malformed GEMMs */
	st_gemm(&c);
	c.hdr.word0 ^= 0x10;
	CHECK_EQ(st_decode(&c, &d), ABI_ST_BAD_MAGIC);
	st_gemm(&c);
	c.hdr.word0 = ABI_W0(ABI_OP_COUNT);
	CHECK_EQ(st_decode(&c, &d), ABI_ST_BAD_OPCODE);
	st_gemm(&c);
	c.u.gemm.k = 0;
	CHECK_EQ(st_decode(&c, &d), ABI_ST_BAD_FIELD);
	CHECK_EQ(d, ABI_FIELD(u.gemm.k));
	st_gemm(&c);
	c.u.gemm.w = ABI_ADDR(1, (1u << 20) - 100); /* runs off the end of bank 1 */
	CHECK_EQ(st_decode(&c, &d), ABI_ST_BAD_ADDR);
	CHECK_EQ(d, ABI_FIELD(u.gemm.w));
	st_gemm(&c);
	c.u.gemm.y = ABI_ADDR(9, 0); /* no bank 9 */
	CHECK_EQ(st_decode(&c, &d), ABI_ST_BAD_ADDR);
	CHECK_EQ(d, ABI_FIELD(u.gemm.y));
	st_gemm(&c);
	c.u.gemm.a |= 1ull << 50; /* reserved address bits */
	CHECK_EQ(st_decode(&c, &d), ABI_ST_BAD_ADDR);
	st_gemm(&c);
	c.u.gemm.y = ABI_ADDR(2, 0); /* bank 2 exists, but the GEMM CU cannot reach it */
	CHECK_EQ(st_decode(&c, &d), ABI_ST_NO_CU);
	st_gemm(&c);
	c.u.gemm.m = 0xFFFFFFFFu; /* huge dims must not overflow into a small length */
	CHECK_EQ(st_decode(&c, &d), ABI_ST_BAD_FIELD);
	st_gemm(&c);
	c.u.raw[20] = 1; /* payload beyond struct abi_gemm */
	CHECK_EQ(st_decode(&c, &d), ABI_ST_BAD_FIELD);
	CHECK_EQ(d, 32 + sizeof(struct abi_gemm));
	st_gemm(&c);
	c.u.gemm.flags = 0x100; /* beyond ABI_GEMM_F_ALL */
	CHECK_EQ(st_decode(&c, &d), ABI_ST_BAD_FIELD);
	CHECK_EQ(d, ABI_FIELD(u.gemm.flags));
	/* ACT_F32: f32 activations used unquantized; a is 4 bytes per element, sa unused */
	st_gemm(&c);
	c.u.gemm.flags = ABI_GEMM_F_X_F32 | ABI_GEMM_F_ACT_F32;
	CHECK_EQ(st_decode(&c, &d), ABI_ST_BAD_FIELD); /* sa given but unused */
	CHECK_EQ(d, ABI_FIELD(u.gemm.sa));
	c.u.gemm.sa = 0;
	c.u.gemm.y = ABI_ADDR(0, 65536);
	CHECK_EQ(st_decode(&c, &d), ABI_ST_OK);
	c.u.gemm.a = ABI_ADDR(0, (1u << 20) - 4u * 300 * 4 + 4); /* codes would fit, f32 does not */
	CHECK_EQ(st_decode(&c, &d), ABI_ST_BAD_ADDR);
	CHECK_EQ(d, ABI_FIELD(u.gemm.a));
	c.u.gemm.a = ABI_ADDR(0, (1u << 20) - 4u * 300 * 4);
	CHECK_EQ(st_decode(&c, &d), ABI_ST_OK);
	c.u.gemm.flags = ABI_GEMM_F_ACT_F32; /* without X_F32 */
	CHECK_EQ(st_decode(&c, &d), ABI_ST_BAD_FIELD);
	CHECK_EQ(d, ABI_FIELD(u.gemm.flags));
	c.u.gemm.flags = ABI_GEMM_F_X_BF16 | ABI_GEMM_F_ACT_F32;
	CHECK_EQ(st_decode(&c, &d), ABI_ST_BAD_FIELD);
	c.u.gemm.flags = ABI_GEMM_F_X_F32 | ABI_GEMM_F_ACT_F32 | ABI_GEMM_F_UE8M0;
	CHECK_EQ(st_decode(&c, &d), ABI_ST_BAD_FIELD);
	CHECK_EQ(d, ABI_FIELD(u.gemm.flags));
	st_gemm(&c);
	c.hdr.rsvd[1] = 1;
	CHECK_EQ(st_decode(&c, &d), ABI_ST_BAD_FIELD);
	st_gemm(&c);
	abi_cmd_wait(&c.hdr, ABI_MAX_FENCES, 1); /* fence id out of range */
	CHECK_EQ(st_decode(&c, &d), ABI_ST_BAD_FIELD);
	CHECK_EQ(d, ABI_FIELD(hdr.word3));
	st_gemm(&c);
	c.hdr.signal_value = 5; /* a value without the SIGNAL flag */
	CHECK_EQ(st_decode(&c, &d), ABI_ST_BAD_FIELD);
	st_gemm(&c);
	abi_cmd_wait(&c.hdr, 3, 1);
	abi_cmd_signal(&c.hdr, 4, 2);
	c.hdr.word2 |= ABI_W2(0, 20);
	CHECK_EQ(st_decode(&c, &d), ABI_ST_OK);
	CHECK_EQ(st_fc.timeout_ns, 2000000);

	/* vector ops */
	memset(&c, 0, sizeof c);
	abi_cmd_hdr_set(&c.hdr, ABI_OP_RMSNORM, 1);
	c.u.vec.x = ABI_ADDR(2, 0);
	c.u.vec.w = ABI_ADDR(2, 8192);
	c.u.vec.out = ABI_ADDR(2, 16384);
	c.u.vec.rows = 2;
	c.u.vec.cols = 1024;
	c.u.vec.param_f = 0x358637BDu; /* 1e-6f */
	CHECK_EQ(st_decode(&c, &d), ABI_ST_OK);
	c.u.vec.param_f = 0x7FC00000u; /* NaN eps */
	CHECK_EQ(st_decode(&c, &d), ABI_ST_BAD_FIELD);
	c.u.vec.param_f = 0x358637BDu;
	c.u.vec.x2 = ABI_ADDR(2, 0); /* RMSNORM has no second input */
	CHECK_EQ(st_decode(&c, &d), ABI_ST_BAD_FIELD);
	CHECK_EQ(d, ABI_FIELD(u.vec.x2));
	c.u.vec.x2 = 0;
	c.hdr.word0 = ABI_W0(ABI_OP_ACT_QUANT);
	c.u.vec.w = 0;
	c.u.vec.param_f = 0;
	CHECK_EQ(st_decode(&c, &d), ABI_ST_BAD_ADDR); /* ACT_QUANT needs out2 (scales) */
	CHECK_EQ(d, ABI_FIELD(u.vec.out2));
	c.u.vec.out2 = ABI_ADDR(2, 32768);
	CHECK_EQ(st_decode(&c, &d), ABI_ST_OK);
	c.hdr.word0 = ABI_W0(ABI_OP_ROPE);
	c.u.vec.out2 = 0;
	c.u.vec.cols = 63;
	c.u.vec.param_f = 0x461C4000u;		       /* 10000.0f */
	CHECK_EQ(st_decode(&c, &d), ABI_ST_BAD_FIELD); /* odd width */
	c.u.vec.cols = 64;
	c.u.vec.param_u = 77;
	CHECK_EQ(st_decode(&c, &d), ABI_ST_OK);

	/* MLA and KV append */
	memset(&c, 0, sizeof c);
	abi_cmd_hdr_set(&c.hdr, ABI_OP_MLA_ATTN, 2);
	c.u.mla.q = ABI_ADDR(0, 0);
	c.u.mla.kv = ABI_ADDR(1, 0);
	c.u.mla.out = ABI_ADDR(2, 0);
	c.u.mla.n_heads = 4;
	c.u.mla.kv_lora = 128;
	c.u.mla.rope = 16;
	c.u.mla.ctx_cap = 256;
	c.u.mla.n_ctx = 10;
	c.u.mla.scale = 0x3E0A7C5Au;
	CHECK_EQ(st_decode(&c, &d), ABI_ST_OK);
	c.u.mla.n_ctx = 257;
	CHECK_EQ(st_decode(&c, &d), ABI_ST_BAD_FIELD);
	c.u.mla.n_ctx = 10;
	c.u.mla.ctx_cap = 4096; /* cache region would run past bank 1 */
	CHECK_EQ(st_decode(&c, &d), ABI_ST_BAD_ADDR);
	CHECK_EQ(d, ABI_FIELD(u.mla.kv));
	memset(&c, 0, sizeof c);
	abi_cmd_hdr_set(&c.hdr, ABI_OP_KV_APPEND, 3);
	c.u.kv.src = ABI_ADDR(0, 0);
	c.u.kv.cache = ABI_ADDR(1, 0);
	c.u.kv.row = 144;
	c.u.kv.ctx_cap = 256;
	c.u.kv.pos = 255;
	CHECK_EQ(st_decode(&c, &d), ABI_ST_OK);
	c.u.kv.pos = 256;
	CHECK_EQ(st_decode(&c, &d), ABI_ST_BAD_FIELD);

	/* DMA fill */
	memset(&c, 0, sizeof c);
	abi_cmd_hdr_set(&c.hdr, ABI_OP_DMA_FILL, 4);
	c.u.dma.src = 0x7000;
	c.u.dma.dst = ABI_ADDR(1, 4096);
	c.u.dma.bytes = 65536;
	c.u.dma.flags = ABI_DMA_F_SRC_HOST;
	c.u.dma.word = ABI_DMA_WORD(ABI_DMA_CHAN_ANY, 0, 3);
	CHECK_EQ(st_decode(&c, &d), ABI_ST_OK);
	c.u.dma.bytes = (1u << 20) - 4095; /* one byte too many */
	CHECK_EQ(st_decode(&c, &d), ABI_ST_BAD_ADDR);
	c.u.dma.bytes = 65536;
	c.u.dma.word = ABI_DMA_WORD(1, 0, 3); /* channel 1 does not exist */
	CHECK_EQ(st_decode(&c, &d), ABI_ST_BAD_FIELD);
	c.u.dma.word = ABI_DMA_WORD(0, 0, 3);
	c.u.dma.flags = ABI_DMA_F_PATTERN; /* pattern fills take no source */
	CHECK_EQ(st_decode(&c, &d), ABI_ST_BAD_FIELD);
	c.u.dma.src = 0;
	CHECK_EQ(st_decode(&c, &d), ABI_ST_OK);
	c.u.dma.flags = 0; /* card-to-card: src must be a card address in a bank */
	c.u.dma.src = ABI_ADDR(3, 0);
	CHECK_EQ(st_decode(&c, &d), ABI_ST_BAD_ADDR);
	CHECK_EQ(d, ABI_FIELD(u.dma.src));

	/* KV_APPEND record formats */
	memset(&c, 0, sizeof c);
	abi_cmd_hdr_set(&c.hdr, ABI_OP_KV_APPEND, 3);
	c.u.kv.src = ABI_ADDR(0, 0);
	c.u.kv.cache = ABI_ADDR(1, 0);
	c.u.kv.row = 144;
	c.u.kv.ctx_cap = 256;
	c.u.kv.word = ABI_KV_WORD(ABI_KV_FP8, 16); /* c' 128 E4M3 + 1 scale, k_pe 16 bf16 */
	CHECK_EQ(st_decode(&c, &d), ABI_ST_OK);
	c.u.kv.row = 100; /* c' 84: not a multiple of 128 */
	CHECK_EQ(st_decode(&c, &d), ABI_ST_BAD_FIELD);
	CHECK_EQ(d, ABI_FIELD(u.kv.word));
	c.u.kv.row = 144;
	c.u.kv.word = ABI_KV_WORD(ABI_KV_F32, 16); /* f32 records take no rope width */
	CHECK_EQ(st_decode(&c, &d), ABI_ST_BAD_FIELD);
	/* the norm and RoPE folded in: kv_a's raw row, its weight, eps and table row */
	c.u.kv.word = ABI_KV_WORD(ABI_KV_FP8, 16);
	c.u.kv.fold = 16;
	c.u.kv.norm = ABI_ADDR(0, 4096);
	c.u.kv.rope_tab = ABI_ADDR(0, 8192);
	c.u.kv.rope_pos = 9;
	c.u.kv.eps = 0x358637BDu; /* 1e-6f */
	CHECK_EQ(st_decode(&c, &d), ABI_ST_OK);
	c.u.kv.fold = 8; /* not the records' rope width */
	CHECK_EQ(st_decode(&c, &d), ABI_ST_BAD_FIELD);
	CHECK_EQ(d, ABI_FIELD(u.kv.fold));
	c.u.kv.fold = 16;
	c.u.kv.eps = 0x7F800000u; /* inf */
	CHECK_EQ(st_decode(&c, &d), ABI_ST_BAD_FIELD);
	CHECK_EQ(d, ABI_FIELD(u.kv.eps));
	c.u.kv.eps = 0x358637BDu;
	c.u.kv.rope_tab = ABI_ADDR(0, (1u << 20) - 64); /* 10 table rows run past the bank */
	CHECK_EQ(st_decode(&c, &d), ABI_ST_BAD_ADDR);
	CHECK_EQ(d, ABI_FIELD(u.kv.rope_tab));
	c.u.kv.rope_tab = ABI_ADDR(0, 8192);
	c.u.kv.rows = 4; /* positions 0..3, table rows 9..12 */
	CHECK_EQ(st_decode(&c, &d), ABI_ST_OK);
	c.u.kv.rope_tab = ABI_ADDR(0, (1u << 20) - 13 * 64); /* rows 0..12 fit the bank */
	CHECK_EQ(st_decode(&c, &d), ABI_ST_OK);
	c.u.kv.rows = 5; /* row 13 does not */
	CHECK_EQ(st_decode(&c, &d), ABI_ST_BAD_ADDR);
	CHECK_EQ(d, ABI_FIELD(u.kv.rope_tab));
	c.u.kv.rope_tab = ABI_ADDR(0, 8192);
	c.u.kv.src = ABI_ADDR(0, (1u << 20) - 2 * 144 * 4); /* two source rows fit, not three */
	c.u.kv.rows = 2;
	CHECK_EQ(st_decode(&c, &d), ABI_ST_OK);
	c.u.kv.rows = 3;
	CHECK_EQ(st_decode(&c, &d), ABI_ST_BAD_ADDR);
	CHECK_EQ(d, ABI_FIELD(u.kv.src));
	c.u.kv.src = ABI_ADDR(0, 0);
	c.u.kv.pos = 253; /* positions 253..256: one past the region */
	c.u.kv.rows = 4;
	CHECK_EQ(st_decode(&c, &d), ABI_ST_BAD_FIELD);
	CHECK_EQ(d, ABI_FIELD(u.kv.rows));
	c.u.kv.pos = 0;
	c.u.kv.rows = ABI_KV_MAX_ROWS + 1;
	CHECK_EQ(st_decode(&c, &d), ABI_ST_BAD_FIELD);
	CHECK_EQ(d, ABI_FIELD(u.kv.rows));
	c.u.kv.rows = 0;
	c.u.kv.rope_tab = ABI_ADDR(0, 8192);
	c.u.kv.fold = 0; /* no fold: its fields must be 0 */
	CHECK_EQ(st_decode(&c, &d), ABI_ST_BAD_FIELD);
	CHECK_EQ(d, ABI_FIELD(u.kv.eps));
	c.u.kv.eps = c.u.kv.rope_pos = 0;
	CHECK_EQ(st_decode(&c, &d), ABI_ST_BAD_FIELD); /* norm given without the fold */
	CHECK_EQ(d, ABI_FIELD(u.kv.norm));
	c.u.kv.norm = c.u.kv.rope_tab = 0;
	CHECK_EQ(st_decode(&c, &d), ABI_ST_OK);

	/* GEMV: a group table in a bank */
	memset(&c, 0, sizeof c);
	abi_cmd_hdr_set(&c.hdr, ABI_OP_GEMV, 6);
	c.u.gemv.tab = ABI_ADDR(2, 4096);
	c.u.gemv.ng = 3;
	c.u.gemv.m = 1;
	CHECK_EQ(st_decode(&c, &d), ABI_ST_OK);
	c.u.gemv.ng = 0;
	CHECK_EQ(st_decode(&c, &d), ABI_ST_BAD_FIELD);
	CHECK_EQ(d, ABI_FIELD(u.gemv.ng));
	c.u.gemv.ng = 3;
	c.u.gemv.m = ABI_GEMV_MAX_M + 1;
	CHECK_EQ(st_decode(&c, &d), ABI_ST_BAD_FIELD);
	c.u.gemv.m = 1;
	c.u.gemv.tab = ABI_ADDR(2, (1u << 20) - 64); /* 3 groups run past the bank */
	CHECK_EQ(st_decode(&c, &d), ABI_ST_BAD_ADDR);
	c.u.gemv.tab = ABI_ADDR(2, 4100); /* not 8-byte aligned */
	CHECK_EQ(st_decode(&c, &d), ABI_ST_BAD_FIELD);
	c.u.gemv.tab = ABI_ADDR(2, 4096);
	c.u.gemv.flags = ABI_GEMV_F_X0; /* group 0's x named: any offset (a hint) */
	c.u.gemv.x0_off = 123456;
	CHECK_EQ(st_decode(&c, &d), ABI_ST_OK);
	c.u.gemv.flags = 0x2; /* an unknown flag */
	CHECK_EQ(st_decode(&c, &d), ABI_ST_BAD_FIELD);
	CHECK_EQ(d, ABI_FIELD(u.gemv.flags));
	c.u.gemv.flags = 0; /* an offset without the flag */
	CHECK_EQ(st_decode(&c, &d), ABI_ST_BAD_FIELD);
	CHECK_EQ(d, ABI_FIELD(u.gemv.x0_off));
	c.u.gemv.x0_off = 0;
	c.u.gemv.rsvd = 1;
	CHECK_EQ(st_decode(&c, &d), ABI_ST_BAD_FIELD);
	CHECK_EQ(d, ABI_FIELD(u.gemv.rsvd));
	c.u.gemv.rsvd = 0;
	c.hdr.word2 |= ABI_CMD_F_DRAIN; /* a folded barrier: a flag the decoder takes */
	CHECK_EQ(st_decode(&c, &d), ABI_ST_OK);
	c.hdr.word2 |= 0x08u;
	CHECK_EQ(st_decode(&c, &d), ABI_ST_BAD_FIELD);

	/* MOE_ROUTE */
	memset(&c, 0, sizeof c);
	abi_cmd_hdr_set(&c.hdr, ABI_OP_MOE_ROUTE, 7);
	c.u.route.logit = ABI_ADDR(2, 0);
	c.u.route.bias = ABI_ADDR(2, 1024);
	c.u.route.out = ABI_ADDR(2, 2048);
	c.u.route.tmpl = ABI_ADDR(2, 4096);
	c.u.route.tab = ABI_ADDR(2, 8192);
	c.u.route.stride = 4096;
	c.u.route.e = 16;
	c.u.route.k = 4;
	c.u.route.groups = 4u | 2u << 16;
	c.u.route.flags = ABI_ROUTE_F_ALL & ~ABI_ROUTE_F_SOFTMAX;
	c.u.route.scale = 0x3f800000u;
	CHECK_EQ(st_decode(&c, &d), ABI_ST_OK);
	c.u.route.groups = 5u | 2u << 16; /* 5 groups do not divide 16 experts */
	CHECK_EQ(st_decode(&c, &d), ABI_ST_BAD_FIELD);
	CHECK_EQ(d, ABI_FIELD(u.route.groups));
	c.u.route.groups = 4u | 2u << 16;
	c.u.route.k = 17;
	CHECK_EQ(st_decode(&c, &d), ABI_ST_BAD_FIELD);
	c.u.route.k = 4;
	c.u.route.flags &= ~ABI_ROUTE_F_TABLES; /* no tables: stride and table operands 0 */
	CHECK_EQ(st_decode(&c, &d), ABI_ST_BAD_FIELD);
	CHECK_EQ(d, ABI_FIELD(u.route.stride));

	/* MLA_ATTN_LANES: the stripe set must fit in the lane banks */
	memset(&c, 0, sizeof c);
	abi_cmd_hdr_set(&c.hdr, ABI_OP_MLA_ATTN_LANES, 8);
	c.u.mlal.q = ABI_ADDR(2, 0);
	c.u.mlal.out = ABI_ADDR(2, 65536);
	c.u.mlal.n_heads = 4;
	c.u.mlal.kv_lora = 128;
	c.u.mlal.rope = 16;
	c.u.mlal.n_ctx = 10;
	c.u.mlal.ctx_cap = 64;
	c.u.mlal.word = ABI_KV_FP8;
	c.u.mlal.scale = 0x3e000000u;
	CHECK_EQ(st_decode(&c, &d), ABI_ST_OK);
	c.u.mlal.cache_off = (1u << 20) - 1024; /* a 32-token block of 164-byte records: past it */
	CHECK_EQ(st_decode(&c, &d), ABI_ST_BAD_FIELD);
	CHECK_EQ(d, ABI_FIELD(u.mlal.cache_off));
	c.u.mlal.cache_off = 0;
	c.u.mlal.word = 3; /* no such record format */
	CHECK_EQ(st_decode(&c, &d), ABI_ST_BAD_FIELD);
	/* ... its MHA mode: explicit K/V rows at cache_off (an address), k_nope width in rsvd */
	c.u.mlal.word = ABI_MLAL_MHA;
	c.u.mlal.kv_lora = 64; /* v */
	c.u.mlal.rsvd = 48;    /* k_nope */
	c.u.mlal.cache_off = ABI_ADDR(2, 131072);
	CHECK_EQ(st_decode(&c, &d), ABI_ST_OK);
	c.u.mlal.ctx_cap = 4096; /* 4096 rows of 4 (48 + 64) + 16 floats: past the bank */
	c.u.mlal.n_ctx = 4096;
	CHECK_EQ(st_decode(&c, &d), ABI_ST_BAD_ADDR);
	CHECK_EQ(d, ABI_FIELD(u.mlal.cache_off));
	c.u.mlal.ctx_cap = 64;
	c.u.mlal.n_ctx = 10;
	c.u.mlal.rsvd = 250; /* k_nope + rope past 256 */
	CHECK_EQ(st_decode(&c, &d), ABI_ST_BAD_FIELD);
	CHECK_EQ(d, ABI_FIELD(u.mlal.rsvd));
	c.u.mlal.rsvd = 48;
	c.u.mlal.word = ABI_MLAL_MHA | ABI_MLAL_FP8; /* the f32 datapath only */
	CHECK_EQ(st_decode(&c, &d), ABI_ST_BAD_FIELD);
	CHECK_EQ(d, ABI_FIELD(u.mlal.word));
	c.u.mlal.word = ABI_MLAL_MHA;
	c.u.mlal.slot_bytes = 8; /* no slots */
	CHECK_EQ(st_decode(&c, &d), ABI_ST_BAD_FIELD);
	CHECK_EQ(d, ABI_FIELD(u.mlal.slot_bytes));

	/* GEMM row strides: the last row of a and y must fit at lda / ldy */
	st_gemm(&c);
	c.u.gemm.lda = 400;
	c.u.gemm.ldy = 300;
	CHECK_EQ(st_decode(&c, &d), ABI_ST_OK);
	c.u.gemm.lda = 299; /* below k */
	CHECK_EQ(st_decode(&c, &d), ABI_ST_BAD_FIELD);
	CHECK_EQ(d, ABI_FIELD(u.gemm.lda));
	c.u.gemm.lda = 400;
	c.u.gemm.y = ABI_ADDR(0, (1u << 20) - 3 * 300 * 4 - 100 * 4); /* last row past the bank */
	CHECK_EQ(st_decode(&c, &d), ABI_ST_BAD_ADDR);
	CHECK_EQ(d, ABI_FIELD(u.gemm.y));

	/* ROPE with rows per position: the table must reach the last row's position */
	memset(&c, 0, sizeof c);
	abi_cmd_hdr_set(&c.hdr, ABI_OP_ROPE, 9);
	c.u.vec.x = ABI_ADDR(2, 0);
	c.u.vec.out = ABI_ADDR(2, 4096);
	c.u.vec.rows = 8;
	c.u.vec.cols = 64;
	c.u.vec.param_u = 10;
	c.u.vec.param_f = 0x461c4000u; /* 10000 */
	c.u.vec.param_k = 2;	       /* positions 10..13 */
	c.u.vec.tab = ABI_ADDR(2, (1u << 20) - 14 * 64 * 4);
	CHECK_EQ(st_decode(&c, &d), ABI_ST_OK);
	c.u.vec.param_k = 1; /* positions 10..17: the table ends at 13 */
	CHECK_EQ(st_decode(&c, &d), ABI_ST_BAD_ADDR);
	CHECK_EQ(d, ABI_FIELD(u.vec.tab));
	/* ... with a position table (w, one per param_k rows): tab holds param_u positions */
	c.u.vec.param_k = 2;
	c.u.vec.w = ABI_ADDR(2, 65536);
	c.u.vec.param_u = 14; /* positions 0..13 */
	CHECK_EQ(st_decode(&c, &d), ABI_ST_OK);
	c.u.vec.param_u = 15; /* more positions than the table holds */
	CHECK_EQ(st_decode(&c, &d), ABI_ST_BAD_ADDR);
	CHECK_EQ(d, ABI_FIELD(u.vec.tab));
	c.u.vec.param_u = 14;
	c.u.vec.param_k = 3; /* does not divide the 8 rows */
	CHECK_EQ(st_decode(&c, &d), ABI_ST_BAD_FIELD);
	CHECK_EQ(d, ABI_FIELD(u.vec.param_k));
	c.u.vec.param_k = 2;
	c.u.vec.tab = 0; /* the positions index a table */
	CHECK_EQ(st_decode(&c, &d), ABI_ST_BAD_FIELD);
	CHECK_EQ(d, ABI_FIELD(u.vec.tab));

	/* GATHER / COMBINE: source rows in param_u, k in param_k, index and weight tables */
	memset(&c, 0, sizeof c);
	abi_cmd_hdr_set(&c.hdr, ABI_OP_COMBINE, 10);
	c.u.vec.x = ABI_ADDR(2, 0);
	c.u.vec.x2 = ABI_ADDR(2, 65536);
	c.u.vec.w = ABI_ADDR(2, 131072);
	c.u.vec.out = ABI_ADDR(2, 196608);
	c.u.vec.rows = 4;
	c.u.vec.cols = 100;
	c.u.vec.param_u = 12;
	c.u.vec.param_k = 3;
	CHECK_EQ(st_decode(&c, &d), ABI_ST_OK);
	c.u.vec.param_k = 0;
	CHECK_EQ(st_decode(&c, &d), ABI_ST_BAD_FIELD);
	CHECK_EQ(d, ABI_FIELD(u.vec.param_k));
	c.u.vec.param_k = 3;
	c.u.vec.x = ABI_ADDR(2, (1u << 20) - 11 * 100 * 4); /* 12 source rows do not fit */
	CHECK_EQ(st_decode(&c, &d), ABI_ST_BAD_ADDR);
	CHECK_EQ(d, ABI_FIELD(u.vec.x));
	c.u.vec.x = ABI_ADDR(2, 0);
	c.u.vec.rsvd = 1;
	CHECK_EQ(st_decode(&c, &d), ABI_ST_BAD_FIELD);
	CHECK_EQ(d, ABI_FIELD(u.vec.rsvd));
	c.u.vec.rsvd = 0;
	c.hdr.word0 = ABI_W0(ABI_OP_GATHER); /* GATHER: no weights, no k */
	CHECK_EQ(st_decode(&c, &d), ABI_ST_BAD_FIELD);
	c.u.vec.x2 = 0;
	c.u.vec.param_k = 0;
	CHECK_EQ(st_decode(&c, &d), ABI_ST_OK);

	/* a lane CU on banks of different sizes, or running another op, is rejected */
	b = st_board;
	b.banks[1].size = 1u << 19;
	CHECK_EQ(fw_board_check(&b, &field), -EINVAL);
	b = st_board;
	b.cus[2].ops_mask |= 1u << ABI_OP_GEMM_FP8;
	CHECK_EQ(fw_board_check(&b, &field), -EINVAL);
	b = st_board;
	b.cus[0].word = ABI_CU_WORD_LANES(ABI_CU_GEMM, 0, 2); /* lanes on a GEMM CU */
	CHECK_EQ(fw_board_check(&b, &field), -EINVAL);

	/* header-only ops take no payload */
	memset(&c, 0, sizeof c);
	abi_cmd_hdr_set(&c.hdr, ABI_OP_BARRIER, 5);
	CHECK_EQ(st_decode(&c, &d), ABI_ST_OK);
	c.u.raw[0] = 1;
	CHECK_EQ(st_decode(&c, &d), ABI_ST_BAD_FIELD);
	CHECK_EQ(d, 32);
}

void fw_selftest_run(fw_selftest_out_fn out, struct fw_selftest_result *res)
{
	char a[12], b[12], line[64];
	st_out = out;
	st_res = res;
	res->passed = res->failed = 0;
	st_ring();
	st_rtos();
	st_decoder();
	strcpy(line, "selftest: ");
	strcat(line, fw_selftest_utoa(res->passed, a));
	strcat(line, " passed, ");
	strcat(line, fw_selftest_utoa(res->failed, b));
	strcat(line, " failed");
	out(line);
}
