/*
 * fuzz_cmd_decode.c - libFuzzer target for the firmware's trust boundary: fw_cmd_decode() on
 * arbitrary 128-byte commands against a fixed board (bytes past 128 perturb the board's bank
 * sizes, CU bank masks and DMA count; the board is re-checked with fw_board_check() first), and
 * abi_ring_attach()/abi_ring_pop() on arbitrary ring headers and counters. Invariant checked on
 * every accepted command: each operand the op uses (MLA_ATTN_LANES: q, out, the rows' table and
 * in its MHA mode the K/V rows, a card address) was translated to a physical range inside one
 * bank, and some CU or DMA channel can run it. A violation aborts (a crash for the fuzzer).
 * Seeds: firmware/fuzz/corpus/fuzz_cmd_decode/ (valid GEMM, vector, MLA, KV, DMA packets).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "abi_board.h"
#include "abi_cmd.h"
#include "abi_ring.h"
#include "firmware/fw.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void board_make(struct abi_board *b, const uint8_t *tweak, size_t n)
{
	memset(b, 0, sizeof(*b));
	b->magic = ABI_BOARD_MAGIC;
	b->version = ABI_BOARD_VERSION;
	uint32_t dma = n > 0 ? tweak[0] % 3 : 1;
	b->counts = ABI_BOARD_COUNTS(4, 6, dma);
	for (uint32_t i = 0; i < 4; i++) {
		b->banks[i].base = 0x1000000000ull * (i + 1);
		b->banks[i].size =
		    n > 1 + i ? (uint64_t)(tweak[1 + i] + 1) << (tweak[1 + i] % 24) : 1u << 20;
		b->banks[i].bw_mbps = 14000;
	}
	b->cus[0].word = ABI_CU_WORD(ABI_CU_GEMM, 0);
	b->cus[0].ops_mask = 1u << ABI_OP_GEMM_FP8;
	b->cus[0].bank_mask = n > 5 ? (tweak[5] & 0xF) | 1 : 0x7;
	b->cus[1].word = ABI_CU_WORD(ABI_CU_VEC, 1);
	b->cus[1].ops_mask = 0xFCu | (1u << ABI_OP_GATHER) | (1u << ABI_OP_COMBINE);
	b->cus[1].bank_mask = 0xF;
	b->cus[2].word = ABI_CU_WORD(ABI_CU_MLA, 2);
	b->cus[2].ops_mask = (1u << ABI_OP_MLA_ATTN) | (1u << ABI_OP_KV_APPEND);
	b->cus[2].bank_mask = n > 6 ? (tweak[6] & 0xF) | 2 : 0xF;
	/* a 2-lane GEMV, the router, a 2-lane striped attention (lanes on banks 0 and 1, which the
	 * board check wants of one size: a tweak that makes them differ gets the board rejected) */
	b->cus[3].word = ABI_CU_WORD_LANES(ABI_CU_GEMV, 3, 2);
	b->cus[3].ops_mask = 1u << ABI_OP_GEMV;
	b->cus[3].bank_mask = 0xF;
	b->cus[4].word = ABI_CU_WORD(ABI_CU_VEC, 4);
	b->cus[4].ops_mask = 1u << ABI_OP_MOE_ROUTE;
	b->cus[4].bank_mask = 0xF;
	b->cus[5].word = ABI_CU_WORD_LANES(ABI_CU_MLA, 5, 2);
	b->cus[5].ops_mask = 1u << ABI_OP_MLA_ATTN_LANES;
	b->cus[5].bank_mask = 0xF;
	if (b->banks[0].size != b->banks[1].size)
		b->banks[1].size = b->banks[0].size;
	for (uint32_t i = 0; i < dma; i++) {
		b->dma[i].word = i == 0 ? ABI_DMA_CAP_H2C : ABI_DMA_CAP_C2C;
		b->dma[i].bw_mbps = 12000;
	}
}

static int in_bank(const struct abi_board *b, uint64_t phys)
{
	for (uint32_t i = 0; i < ABI_BOARD_N_BANKS(b->counts); i++)
		if (phys >= b->banks[i].base && phys - b->banks[i].base < b->banks[i].size)
			return 1;
	return 0;
}

/* Every nonzero card-address operand of an accepted command must map into a bank. */
static void check_accepted(const struct abi_board *b, const struct fw_cmd *c)
{
	static const uint32_t gemm[] = {0, 2, 4, 6, 8}, vec[] = {0, 2, 4, 6, 8}, mla[] = {0, 2, 4},
			      kv[] = {0, 2}, gemv[] = {0}, route[] = {0, 2, 4, 6, 8},
			      mlal[] = {0, 2, 16}, mlal_mha[] = {0, 2, 4, 16};
	const uint32_t *w = NULL;
	size_t n = 0;
	switch (c->op) {
	case ABI_OP_GEMM_FP8:
		w = gemm;
		n = 5;
		break;
	case ABI_OP_MLA_ATTN:
		w = mla;
		n = 3;
		break;
	case ABI_OP_KV_APPEND:
		w = kv;
		n = 2;
		break;
	case ABI_OP_GEMV:
		w = gemv;
		n = 1;
		break;
	case ABI_OP_MOE_ROUTE:
		w = route;
		n = 5;
		break;
	case ABI_OP_MLA_ATTN_LANES:
		if (c->raw.u.mlal.word & ABI_MLAL_MHA) { /* q, out, the K/V rows, the rows' table */
			w = mlal_mha;
			n = 4;
			break;
		}
		w = mlal; /* q, out, the rows' table */
		n = 3;
		/* the stripe set fits in the lane banks */
		if (c->raw.u.mlal.cache_off > b->banks[0].size)
			abort();
		break;
	case ABI_OP_DMA_FILL:
		if (!in_bank(b, (uint64_t)c->args[2] | (uint64_t)c->args[3] << 32))
			abort();
		if (!ABI_BOARD_N_DMA(b->counts))
			abort();
		return;
	default:
		if ((c->op >= ABI_OP_RMSNORM && c->op <= ABI_OP_SOFTMAX) ||
		    c->op == ABI_OP_GATHER || c->op == ABI_OP_COMBINE) {
			w = vec;
			n = 5;
		}
		break;
	}
	for (size_t i = 0; i < n; i++) {
		uint64_t raw;
		memcpy(&raw, (const uint8_t *)&c->raw.u + 4 * w[i], 8);
		uint64_t phys = (uint64_t)c->args[w[i]] | (uint64_t)c->args[w[i] + 1] << 32;
		if (raw && !in_bank(b, phys))
			abort();
	}
	if (n) {
		int any = 0;
		for (uint32_t i = 0; i < ABI_BOARD_N_CUS(b->counts); i++)
			if ((b->cus[i].ops_mask >> c->op & 1) &&
			    !(c->bank_mask & ~b->cus[i].bank_mask))
				any = 1;
		if (!any)
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct abi_cmd cmd;
	struct abi_board b;
	struct fw_cmd out;
	uint32_t detail, field;
	memset(&cmd, 0, sizeof cmd);
	memcpy(&cmd, data, size < sizeof cmd ? size : sizeof cmd);
	board_make(&b, size > sizeof cmd ? data + sizeof cmd : NULL,
		   size > sizeof cmd ? size - sizeof cmd : 0);
	if (fw_board_check(&b, &field) == 0) {
		uint32_t st = fw_cmd_decode(&b, &cmd, 0, &out, &detail);
		if (st >= ABI_ST_COUNT)
			abort();
		if (st == ABI_ST_OK)
			check_accepted(&b, &out);
	}
	/* the same bytes as a ring the host laid out: header + counters + 2 slots of 32 bytes */
	static uint8_t ring[192 + 4 * 32];
	memset(ring, 0, sizeof ring);
	memcpy(ring, data, size < sizeof ring ? size : sizeof ring);
	struct abi_ring_view v = {0};
	if (abi_ring_attach(&v, ABI_RING_CONSUMER, ring, sizeof ring, 32) == 0) {
		uint8_t e[32];
		for (int i = 0; i < 8 && abi_ring_pop(&v, e) == 0; i++)
			;
	}
	return 0;
}
