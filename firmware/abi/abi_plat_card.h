/*
 * abi_plat_card.h - the card side's platform glue for the header-only ring in abi_ring.h, used by
 * the firmware images for the soft CPU (port/rv32, port/r5; built with -DABI_PLAT_CARD). On the card
 * the rings sit in a mailbox region that the host writes over PCIe, so counters are read through
 * volatile accesses (never cached in a register) and a full fence orders them against slot copies.
 */
#ifndef ABI_PLAT_CARD_H
#define ABI_PLAT_CARD_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "abi_copy.h"

static inline uint32_t abi_plat_load_acq(const uint32_t *p)
{
	uint32_t v = *(const volatile uint32_t *)p;
	__sync_synchronize(); /* slot reads may not move above the counter read */
	return v;
}

static inline void abi_plat_store_rel(uint32_t *p, uint32_t v)
{
	__sync_synchronize(); /* slot writes complete before the counter publishes them */
	*(volatile uint32_t *)p = v;
}

/* Slots copy a word at a time (slots are multiples of 8 bytes; abi_copy.h). */
#define ABI_RING_COPY(dst, src, n) abi_copy_aligned((dst), (src), (n))
#define ABI_RING_LOAD_ACQ(p) abi_plat_load_acq(p)
#define ABI_RING_STORE_REL(p, v) abi_plat_store_rel((p), (v))

#endif
