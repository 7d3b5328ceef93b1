/*
 * cost.c - the firmware's instructions per command on rv32, counted with the instret CSR (QEMU
 * counts retired instructions exactly only with -icount shift=0; firmware/tests/test_fw_qemu.sh
 * runs it so). For each measured opcode this program plays the host: it pushes batches of
 * COST_BATCH identical commands on ring 0, steps the real firmware tasks (ring pop, decode and
 * validation, dispatch to a loopback CU or DMA channel, completion and fence update) until every
 * completion arrived, and counts only the instructions retired inside fw_step(). The loopback
 * CUs finish as soon as they are started, so the count holds no waiting for a CU, only the
 * firmware's work. The count is split by the firmware's work classes (fw_port_spend, fw_port.h):
 * every instruction goes to the class of the next fw_port_spend call, so the classes add up to
 * the whole (the marks' own instructions are measured and taken out). Reported over the UART,
 * one line per opcode:
 *   fw-cost: op=<name> instr=<per command> decode=<of one fw_cmd_decode> take=<per command>
 *            start=<per CU or DMA start> done=<per completion of a run> sync=<per completion the
 *            firmware makes itself>
 * (a class the opcode never reaches prints 0). The board trees' moecard,fw-cmd-instr
 * <take start done sync> are checked against these lines (docs/boards.md).
 */
#include <string.h>

#include "abi_board.h"
#include "abi_cmd.h"
#include "abi_ring.h"
#include "firmware/fw.h"
#include "firmware/port/rv32/rv32.h"
#include "firmware/selftest/fw_selftest.h"

#define COST_BANK 65536u
#define COST_LANES 2u	      /* lane CUs (GEMV, MLA_ATTN_LANES) on banks 0 and 1 */
#define COST_RING_LOG2 6u     /* 64 commands per ring */
#define COST_BATCH 32u	      /* commands per doorbell */
#define COST_BATCHES 4u	      /* doorbells per opcode */
#define COST_STEP_MAX 100000u /* fw_step calls per batch before giving up */

static uint8_t cbank[COST_LANES][COST_BANK] __attribute__((aligned(64)));
static uint8_t ccmdq[FW_CFG_N_QUEUES][192 + (1u << COST_RING_LOG2) * sizeof(struct abi_cmd)];
static uint8_t ccplq[192 + (1u << COST_RING_LOG2) * sizeof(struct abi_cpl)];
static struct abi_board cboard;
static struct abi_telemetry ctelem;
static struct fw cfw;
static struct abi_ring_view chq[FW_CFG_N_QUEUES], chc;

/* Retired instructions (64-bit counter read on rv32: retry if the high word moved). */
static inline uint64_t rv32_instret(void)
{
	uint32_t hi, lo, hi2;
	do {
		__asm__ volatile("rdinstreth %0" : "=r"(hi));
		__asm__ volatile("rdinstret %0" : "=r"(lo));
		__asm__ volatile("rdinstreth %0" : "=r"(hi2));
	} while (hi != hi2);
	return ((uint64_t)hi << 32) | lo;
}

/* Class accounting (rv32_cost_mark): on while fw_step() runs under cost_measure(). Slot
 * FW_WORK_CLASSES calibrates the marks' own instructions. */
#define COST_CAL FW_WORK_CLASSES
static int cost_on;
static uint64_t cost_last;		       /* instret after the last mark (or step start) */
static uint64_t cost_acc[FW_WORK_CLASSES + 1]; /* instructions per class */
static uint32_t cost_n[FW_WORK_CLASSES + 1];   /* marks per class */
static uint32_t cost_last_w;		       /* class of the last mark */

void rv32_cost_mark(uint32_t w)
{
	if (!cost_on || w > COST_CAL)
		return;
	uint64_t t = rv32_instret();
	cost_acc[w] += t - cost_last;
	cost_n[w]++;
	cost_last_w = w;
	cost_last = rv32_instret(); /* (this mark's accounting above is not counted) */
}

/* Two banks; CU 0 fp8_gemm, CU 1 vec_ops (+ KV append, router), CU 2 the GEMV CU, CU 3 the
 * striped attention; one DMA channel. */
static void cost_board(void)
{
	memset(&cboard, 0, sizeof cboard);
	cboard.magic = ABI_BOARD_MAGIC;
	cboard.version = ABI_BOARD_VERSION;
	cboard.counts = ABI_BOARD_COUNTS(COST_LANES, 4, 1);
	for (uint32_t i = 0; i < COST_LANES; i++) {
		cboard.banks[i].base = (uintptr_t)cbank[i];
		cboard.banks[i].size = COST_BANK;
		cboard.banks[i].bw_mbps = 1000;
	}
	cboard.cus[0].word = ABI_CU_WORD(ABI_CU_GEMM, 0);
	cboard.cus[0].ops_mask = 1u << ABI_OP_GEMM_FP8;
	cboard.cus[1].word = ABI_CU_WORD(ABI_CU_VEC, 1);
	cboard.cus[1].ops_mask = (1u << ABI_OP_RMSNORM) | (1u << ABI_OP_ROPE) |
				 (1u << ABI_OP_RESIDUAL_ADD) | (1u << ABI_OP_KV_APPEND) |
				 (1u << ABI_OP_MOE_ROUTE);
	cboard.cus[2].word = ABI_CU_WORD_LANES(ABI_CU_GEMV, 2, COST_LANES);
	cboard.cus[2].ops_mask = 1u << ABI_OP_GEMV;
	cboard.cus[3].word = ABI_CU_WORD_LANES(ABI_CU_MLA, 3, COST_LANES);
	cboard.cus[3].ops_mask = 1u << ABI_OP_MLA_ATTN_LANES;
	for (uint32_t i = 0; i < 4; i++)
		cboard.cus[i].bank_mask = (1u << COST_LANES) - 1;
	cboard.dma[0].word = ABI_DMA_CAP_H2C | ABI_DMA_CAP_C2C;
	cboard.dma[0].bw_mbps = 1000;
}

static int cost_fw_init(void)
{
	struct fw_mailbox mb;
	memset(&mb, 0, sizeof mb);
	cost_board();
	for (uint32_t q = 0; q < FW_CFG_N_QUEUES; q++) {
		abi_ring_init(&chq[q], ABI_RING_PRODUCER, ccmdq[q], sizeof ccmdq[q], COST_RING_LOG2,
			      sizeof(struct abi_cmd), 0);
		mb.cmdq[q] = ccmdq[q];
		mb.cmdq_bytes[q] = sizeof ccmdq[q];
	}
	abi_ring_init(&chc, ABI_RING_CONSUMER, ccplq, sizeof ccplq, COST_RING_LOG2,
		      sizeof(struct abi_cpl), 0);
	mb.board = &cboard;
	mb.cplq = ccplq;
	mb.cplq_bytes = sizeof ccplq;
	mb.telem = &ctelem;
	return fw_init(&cfw, NULL, &mb);
}

/* The command of one measured opcode, as the card scheduler would send it. */
static void cost_cmd(struct abi_cmd *c, uint32_t op)
{
	memset(c, 0, sizeof *c);
	abi_cmd_hdr_set(&c->hdr, op, 0);
	switch (op) {
	case ABI_OP_GEMM_FP8: /* f32 activations, quantized inside; residual epilogue */
		c->u.gemm.m = 1;
		c->u.gemm.n = 64;
		c->u.gemm.k = 128;
		c->u.gemm.flags = ABI_GEMM_F_X_F32 | ABI_GEMM_F_RESIDUAL;
		c->u.gemm.a = ABI_ADDR(1, 0);
		c->u.gemm.w = ABI_ADDR(0, 0);
		c->u.gemm.sw = ABI_ADDR(0, 16384);
		c->u.gemm.y = ABI_ADDR(1, 4096);
		break;
	case ABI_OP_RMSNORM:
		c->u.vec.rows = 1;
		c->u.vec.cols = 256;
		c->u.vec.param_f = 0x358637bdu; /* 1e-6f */
		c->u.vec.x = ABI_ADDR(1, 0);
		c->u.vec.w = ABI_ADDR(1, 1024);
		c->u.vec.out = ABI_ADDR(1, 2048);
		break;
	case ABI_OP_ROPE: /* a column slice with a YaRN table */
		c->u.vec.rows = 2;
		c->u.vec.cols = 64;
		c->u.vec.lda = 192;
		c->u.vec.ldo = 192;
		c->u.vec.param_u = 3;
		c->u.vec.param_f = 0x461c4000u; /* 10000.0f */
		c->u.vec.x = ABI_ADDR(1, 0);
		c->u.vec.out = ABI_ADDR(1, 0);
		c->u.vec.tab = ABI_ADDR(1, 8192);
		break;
	case ABI_OP_RESIDUAL_ADD:
		c->u.vec.rows = 1;
		c->u.vec.cols = 256;
		c->u.vec.x = ABI_ADDR(1, 0);
		c->u.vec.x2 = ABI_ADDR(1, 1024);
		c->u.vec.out = ABI_ADDR(1, 2048);
		break;
	case ABI_OP_KV_APPEND:
		c->u.kv.src = ABI_ADDR(1, 0);
		c->u.kv.cache = ABI_ADDR(1, 4096);
		c->u.kv.row = 192;
		c->u.kv.pos = 5;
		c->u.kv.ctx_cap = 64;
		c->u.kv.word = ABI_KV_WORD(ABI_KV_BF16, 64);
		break;
	case ABI_OP_GEMV: /* 9 groups, 2 x rows */
		c->u.gemv.tab = ABI_ADDR(1, 4096);
		c->u.gemv.ng = 9;
		c->u.gemv.m = 2;
		break;
	case ABI_OP_MOE_ROUTE: /* DeepSeek-V3 routing with the GEMV tables */
		c->u.route.logit = ABI_ADDR(1, 0);
		c->u.route.bias = ABI_ADDR(1, 1024);
		c->u.route.out = ABI_ADDR(1, 2048);
		c->u.route.tmpl = ABI_ADDR(1, 4096);
		c->u.route.tab = ABI_ADDR(1, 8192);
		c->u.route.stride = 4096;
		c->u.route.e = 256;
		c->u.route.k = 8;
		c->u.route.groups = 8u | (4u << 16);
		c->u.route.flags = ABI_ROUTE_F_BIAS | ABI_ROUTE_F_GROUPS | ABI_ROUTE_F_GROUP_TOP2 |
				   ABI_ROUTE_F_NORM | ABI_ROUTE_F_TABLES;
		c->u.route.scale = 0x40200000u; /* 2.5f */
		break;
	case ABI_OP_MLA_ATTN_LANES:
		c->u.mlal.q = ABI_ADDR(1, 0);
		c->u.mlal.out = ABI_ADDR(1, 4096);
		c->u.mlal.cache_off = 16384;
		c->u.mlal.n_heads = 4;
		c->u.mlal.kv_lora = 128;
		c->u.mlal.rope = 64;
		c->u.mlal.n_ctx = 40;
		c->u.mlal.ctx_cap = 64;
		c->u.mlal.word = ABI_KV_BF16;
		c->u.mlal.scale = 0x3e000000u; /* 0.125f */
		break;
	case ABI_OP_DMA_FILL: /* a 16-byte pattern fill: the loopback engine's memset is short */
		c->u.dma.dst = ABI_ADDR(0, 0);
		c->u.dma.bytes = 16;
		c->u.dma.flags = ABI_DMA_F_PATTERN;
		c->u.dma.word = ABI_DMA_WORD(ABI_DMA_CHAN_ANY, 0x5A, 0);
		break;
	case ABI_OP_FENCE: /* signals a fence */
		abi_cmd_signal(&c->hdr, 7, 1);
		break;
	default: /* BARRIER, TIMESTAMP, NOP: header only */
		break;
	}
}

static const struct {
	uint32_t op;
	const char *name;
} cost_ops[] = {
    {ABI_OP_GEMM_FP8, "gemm"},	     {ABI_OP_RMSNORM, "rmsnorm"},
    {ABI_OP_ROPE, "rope"},	     {ABI_OP_RESIDUAL_ADD, "residual_add"},
    {ABI_OP_KV_APPEND, "kv_append"}, {ABI_OP_GEMV, "gemv"},
    {ABI_OP_MOE_ROUTE, "moe_route"}, {ABI_OP_MLA_ATTN_LANES, "mla_attn_lanes"},
    {ABI_OP_DMA_FILL, "dma_fill"},   {ABI_OP_BARRIER, "barrier"},
    {ABI_OP_FENCE, "fence"},	     {ABI_OP_TIMESTAMP, "timestamp"},
};

/*
 * Instructions retired inside fw_step() per command of op, over COST_BATCHES batches on a freshly
 * initialized firmware; *decode gets the instructions of one fw_cmd_decode() of the command and
 * cls[] the instructions per occurrence of each work class (0 for a class op never reaches).
 * Returns 0, or -1 when a command failed or did not complete.
 */
static int cost_measure(uint32_t op, uint32_t *per_cmd, uint32_t *decode,
			uint32_t cls[FW_WORK_CLASSES])
{
	struct abi_cmd l[COST_BATCH];
	struct fw_cmd dc;
	uint32_t detail;
	if (cost_fw_init())
		return -1;
	cost_cmd(&l[0], op);
	uint64_t t0 = rv32_instret();
	uint32_t st = fw_cmd_decode(&cboard, &l[0], 0, &dc, &detail);
	uint64_t t1 = rv32_instret();
	uint64_t cal0 = rv32_instret(), cal1 = rv32_instret();
	uint64_t read_cost = cal1 - cal0; /* one read as measured by the next */
	if (st != ABI_ST_OK)
		return -1;
	*decode = (uint32_t)(t1 - t0 - read_cost);
	memset(cost_acc, 0, sizeof cost_acc);
	memset(cost_n, 0, sizeof cost_n);
	/* what one mark adds to the class after it: the call, its first read, the return */
	cost_on = 1;
	cost_last = rv32_instret();
	for (uint32_t i = 0; i < 16; i++)
		fw_port_spend(NULL, COST_CAL);
	cost_on = 0;
	uint64_t mark_cost = (cost_acc[COST_CAL] + 8) / 16;
	uint64_t total = 0, tail = 0;
	uint32_t fence = 0;
	for (uint32_t b = 0; b < COST_BATCHES; b++) {
		for (uint32_t i = 0; i < COST_BATCH; i++) {
			cost_cmd(&l[i], op);
			l[i].hdr.tag = i;
			if (op == ABI_OP_FENCE)
				l[i].hdr.signal_value = ++fence;
		}
		if (abi_ring_push_n(&chq[0], l, COST_BATCH))
			return -1;
		uint32_t got = 0, steps = 0;
		while (got < COST_BATCH && steps++ < COST_STEP_MAX) {
			uint64_t s0 = rv32_instret();
			cost_last = s0 - tail; /* what the last step did after its last mark */
			cost_on = 1;
			fw_step(&cfw);
			cost_on = 0;
			uint64_t s1 = rv32_instret();
			tail = s1 - cost_last;
			struct abi_cpl c;
			while (abi_ring_pop(&chc, &c) == 0) {
				if (ABI_CPL_STATUS(c.word1) != ABI_ST_OK)
					return -1;
				got++;
			}
		}
		if (got != COST_BATCH)
			return -1;
	}
	cost_acc[cost_last_w] += tail; /* the last steps' instructions after the last mark */
	for (uint32_t w = 0; w < FW_WORK_CLASSES; w++) {
		uint64_t a = cost_acc[w], m = (uint64_t)cost_n[w] * mark_cost;
		a = a > m ? a - m : 0;
		total += a;
		cls[w] = cost_n[w] ? (uint32_t)((a + cost_n[w] / 2) / cost_n[w]) : 0;
	}
	*per_cmd =
	    (uint32_t)((total + COST_BATCH * COST_BATCHES / 2) / (COST_BATCH * COST_BATCHES));
	return 0;
}

int rv32_fw_cost(void)
{
	int failed = 0;
	for (uint32_t i = 0; i < sizeof cost_ops / sizeof cost_ops[0]; i++) {
		uint32_t n = 0, dec = 0, cls[FW_WORK_CLASSES];
		char a[12], line[160] = "fw-cost: op=";
		static const char *const cname[FW_WORK_CLASSES] = {
		    " take=", " start=", " done=", " sync="};
		if (cost_measure(cost_ops[i].op, &n, &dec, cls)) {
			strcat(line, cost_ops[i].name);
			strcat(line, " FAILED");
			rv32_puts(line);
			failed = 1;
			continue;
		}
		strcat(line, cost_ops[i].name);
		strcat(line, " instr=");
		strcat(line, fw_selftest_utoa(n, a));
		strcat(line, " decode=");
		strcat(line, fw_selftest_utoa(dec, a));
		for (uint32_t w = 0; w < FW_WORK_CLASSES; w++) {
			strcat(line, cname[w]);
			strcat(line, fw_selftest_utoa(cls[w], a));
		}
		rv32_puts(line);
	}
	return failed;
}
