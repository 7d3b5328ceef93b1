/*
 * main.c - the port/rv32 boot image run under QEMU `virt`: the firmware's self-tests (rings,
 * kernel, decoder: firmware/selftest/) and an end-to-end run of the real firmware tasks over
 * loopback CUs, with this program playing the host on the mailbox rings: an expert-slot fill
 * with a fence, a GEMM that waits on it, a malformed command, a barrier, a timestamp, and a hung
 * CU that the watchdog aborts and resets before the next command succeeds. Then the firmware's
 * instructions per command (cost.c, "fw-cost: ..." lines). Reports over the UART ("rv32-e2e: N
 * passed, N failed") and exits through the test finisher (0 = all passed).
 */
#include <string.h>

#include "abi_board.h"
#include "abi_cmd.h"
#include "abi_ring.h"
#include "firmware/fw.h"
#include "firmware/port/rv32/rv32.h"
#include "firmware/selftest/fw_selftest.h"

#define BANK_BYTES 65536u
#define RING_LOG2 3u

static uint8_t bank0[BANK_BYTES] __attribute__((aligned(64)));
static uint8_t bank1[BANK_BYTES] __attribute__((aligned(64)));
static uint8_t host_src[4096];
static uint8_t cmdq_mem[FW_CFG_N_QUEUES][192 + (1u << RING_LOG2) * sizeof(struct abi_cmd)];
static uint8_t cplq_mem[192 + (2u << RING_LOG2) * sizeof(struct abi_cpl)];
static struct abi_board board;
static struct abi_telemetry telem;
static struct fw fw;
static struct abi_ring_view hq[FW_CFG_N_QUEUES], hc;
static uint32_t e2e_pass, e2e_fail;

static void e2e_check(int ok, const char *what)
{
	if (ok) {
		e2e_pass++;
		return;
	}
	e2e_fail++;
	char line[96] = "FAIL rv32-e2e: ";
	strncat(line, what, 70);
	rv32_puts(line);
}

static void board_make(void)
{
	memset(&board, 0, sizeof board);
	board.magic = ABI_BOARD_MAGIC;
	board.version = ABI_BOARD_VERSION;
	board.counts = ABI_BOARD_COUNTS(2, 2, 1);
	board.banks[0].base = (uintptr_t)bank0;
	board.banks[0].size = BANK_BYTES;
	board.banks[0].bw_mbps = 1000;
	board.banks[1].base = (uintptr_t)bank1;
	board.banks[1].size = BANK_BYTES;
	board.banks[1].bw_mbps = 1000;
	for (uint32_t i = 0; i < 2; i++) {
		board.cus[i].word = ABI_CU_WORD(ABI_CU_GEMM, i);
		board.cus[i].ops_mask = 1u << ABI_OP_GEMM_FP8;
		board.cus[i].bank_mask = 0x3;
	}
	board.dma[0].word = ABI_DMA_CAP_H2C | ABI_DMA_CAP_C2C;
	board.dma[0].bw_mbps = 1000;
}

static void gemm(struct abi_cmd *c, uint32_t tag)
{
	memset(c, 0, sizeof *c);
	abi_cmd_hdr_set(&c->hdr, ABI_OP_GEMM_FP8, tag);
	c->hdr.word2 = ABI_W2(0, 10); /* 1 ms hang timeout */
	c->u.gemm.m = 1;
	c->u.gemm.n = 64;
	c->u.gemm.k = 64;
	c->u.gemm.a = ABI_ADDR(0, 0);
	c->u.gemm.sa = ABI_ADDR(0, 1024);
	c->u.gemm.w = ABI_ADDR(1, 0);
	c->u.gemm.sw = ABI_ADDR(1, 8192);
	c->u.gemm.y = ABI_ADDR(0, 2048);
}

/* Steps the firmware until n completions arrived (indexed by tag < 16) or 200 ms passed. */
static uint32_t run_until(struct abi_cpl *by_tag, uint32_t n)
{
	uint32_t got = 0;
	uint64_t end = fw_port_now(NULL) + 200000000ull;
	while (got < n && fw_port_now(NULL) < end) {
		fw_step(&fw);
		struct abi_cpl c;
		while (abi_ring_pop(&hc, &c) == 0) {
			if (c.tag < 16)
				by_tag[c.tag] = c;
			got++;
		}
	}
	return got;
}

static void e2e(void)
{
	struct fw_mailbox mb;
	struct abi_cmd l[6];
	struct abi_cpl cpl[16];
	memset(&mb, 0, sizeof mb);
	memset(cpl, 0xFF, sizeof cpl);
	board_make();
	for (uint32_t q = 0; q < FW_CFG_N_QUEUES; q++) {
		abi_ring_init(&hq[q], ABI_RING_PRODUCER, cmdq_mem[q], sizeof cmdq_mem[q], RING_LOG2,
			      sizeof(struct abi_cmd), UINT32_MAX - 2); /* wraps during the run */
		mb.cmdq[q] = cmdq_mem[q];
		mb.cmdq_bytes[q] = sizeof cmdq_mem[q];
	}
	abi_ring_init(&hc, ABI_RING_CONSUMER, cplq_mem, sizeof cplq_mem, RING_LOG2 + 1,
		      sizeof(struct abi_cpl), UINT32_MAX - 2);
	mb.board = &board;
	mb.cplq = cplq_mem;
	mb.cplq_bytes = sizeof cplq_mem;
	mb.telem = &telem;
	e2e_check(fw_init(&fw, NULL, &mb) == 0, "fw_init");
	for (uint32_t i = 0; i < sizeof host_src; i++)
		host_src[i] = (uint8_t)(i * 13 + 1);

	/* ring 1: the slot fill; ring 0: a GEMM waiting on it, a bad GEMM, barrier, timestamp */
	memset(&l[0], 0, sizeof l[0]);
	abi_cmd_hdr_set(&l[0].hdr, ABI_OP_DMA_FILL, 0);
	abi_cmd_signal(&l[0].hdr, 5, 1);
	l[0].u.dma.src = (uintptr_t)host_src;
	l[0].u.dma.dst = ABI_ADDR(1, 0);
	l[0].u.dma.bytes = sizeof host_src;
	l[0].u.dma.flags = ABI_DMA_F_SRC_HOST;
	l[0].u.dma.word = ABI_DMA_WORD(ABI_DMA_CHAN_ANY, 0, 0);
	gemm(&l[1], 1);
	abi_cmd_wait(&l[1].hdr, 5, 1);
	gemm(&l[2], 2);
	l[2].u.gemm.y = ABI_ADDR(0, BANK_BYTES - 4); /* off the end of bank 0 */
	memset(&l[3], 0, 2 * sizeof l[3]);
	abi_cmd_hdr_set(&l[3].hdr, ABI_OP_BARRIER, 3);
	abi_cmd_hdr_set(&l[4].hdr, ABI_OP_TIMESTAMP, 4);
	e2e_check(abi_ring_push_n(&hq[0], &l[1], 4) == 0, "submit ring 0");
	for (int i = 0; i < 50; i++) /* the GEMM reaches the head before the fill exists */
		fw_step(&fw);
	e2e_check(abi_ring_push(&hq[1], &l[0]) == 0, "submit ring 1");
	e2e_check(run_until(cpl, 5) == 5, "5 completions");
	e2e_check(ABI_CPL_STATUS(cpl[0].word1) == ABI_ST_OK, "fill ok");
	e2e_check(ABI_CPL_STATUS(cpl[1].word1) == ABI_ST_OK, "gemm ok");
	e2e_check(cpl[1].t_start >= cpl[0].t_end, "gemm started after its fill ended");
	e2e_check(ABI_CPL_STATUS(cpl[2].word1) == ABI_ST_BAD_ADDR, "bad gemm rejected");
	e2e_check(cpl[2].detail == ABI_FIELD(u.gemm.y), "bad field named");
	e2e_check(ABI_CPL_STATUS(cpl[3].word1) == ABI_ST_OK, "barrier ok");
	e2e_check(cpl[3].t_start >= cpl[1].t_end, "barrier after gemm");
	e2e_check(ABI_CPL_STATUS(cpl[4].word1) == ABI_ST_OK, "timestamp ok");
	e2e_check(memcmp(bank1, host_src, sizeof host_src) == 0, "slot holds the filled bytes");

	/* a hung CU: the watchdog aborts it and resets only that CU; the next GEMMs succeed */
	rv32_cu_hang_at = rv32_cu_starts + 1;
	gemm(&l[0], 6);
	gemm(&l[1], 7);
	gemm(&l[2], 8);
	e2e_check(abi_ring_push(&hq[2], &l[0]) == 0, "submit hang");
	e2e_check(run_until(cpl, 1) == 1, "hang completion");
	e2e_check(ABI_CPL_STATUS(cpl[6].word1) == ABI_ST_CU_TIMEOUT, "hang -> cu-timeout");
	e2e_check(cpl[6].t_end - cpl[6].t_start >= 1000000u, "aborted after the timeout");
	e2e_check(telem.cu_resets[ABI_CPL_CU(cpl[6].word1)] == 1, "that CU was reset");
	e2e_check(abi_ring_push_n(&hq[2], &l[1], 2) == 0, "submit after hang");
	e2e_check(run_until(cpl, 2) == 2, "2 completions after hang");
	e2e_check(ABI_CPL_STATUS(cpl[7].word1) == ABI_ST_OK, "gemm after hang ok");
	e2e_check(ABI_CPL_STATUS(cpl[8].word1) == ABI_ST_OK, "second gemm after hang ok");
	e2e_check(telem.heartbeat > 0, "heartbeat");
	e2e_check(telem.errors == 2 && telem.completed == 8, "telemetry counts");
	e2e_check(hq[0].ring->consumed < 16, "ring counters wrapped");
}

int main(void)
{
	struct fw_selftest_result r;
	char a[12], b[12], line[64];
	rv32_puts("moecard firmware rv32 boot self-test");
	fw_selftest_run(rv32_puts, &r);
	e2e();
	int cost_failed = rv32_fw_cost();
	strcpy(line, "rv32-e2e: ");
	strcat(line, fw_selftest_utoa(e2e_pass, a));
	strcat(line, " passed, ");
	strcat(line, fw_selftest_utoa(e2e_fail, b));
	strcat(line, " failed");
	rv32_puts(line);
	return (r.failed || e2e_fail || !r.passed || !e2e_pass || cost_failed) ? 1 : 0;
}
