/*
 * abi_ring.h - the header-only single-producer/single-consumer ring shared by host and card
 * (host -> card command rings, card -> host completion ring). Both sides include this file; each
 * brings a tiny platform header for counter ordering (abi_plat_host.h by default, abi_plat_card.h
 * when ABI_PLAT_CARD is defined).
 *
 * Layout in shared memory (all little-endian):
 *   0x000 struct abi_ring header: magic, geometry; producer counter at 0x040, consumer at 0x080
 *         (separate 64-byte lines so the two sides never write the same line)
 *   0x0C0 slot[0] ... slot[n_slots-1], each slot_size bytes
 * The counters are free-running uint32: count = produced - consumed (mod 2^32), the slot of
 * counter c is c & (n_slots-1). A ring is full at count == n_slots, empty at count == 0. The
 * other side's counter is untrusted: a count above n_slots is a protocol error (-EPROTO).
 * Each side works through a struct abi_ring_view holding its own copy of the geometry and of its
 * own counter, taken once at attach time, so a hostile peer that rewrites the header cannot make
 * it index out of bounds.
 */
#ifndef ABI_RING_H
#define ABI_RING_H

#include <assert.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef ABI_PLAT_CARD
#include "abi_plat_card.h"
#else
#include "abi_plat_host.h"
#endif

/* Copies an entry between a slot and private memory (the card's platform header may give a
 * faster copy than its C library's memcpy). */
#ifndef ABI_RING_COPY
#define ABI_RING_COPY(dst, src, n) memcpy((dst), (src), (n))
#endif

#define ABI_RING_MAGIC 0x474E5252u /* "RRNG" */
#define ABI_RING_VERSION 1u
#define ABI_RING_MAX_LOG2 16u	 /* at most 65536 slots */
#define ABI_RING_SLOT_ALIGN 8u	 /* slot sizes are multiples of 8 bytes */
#define ABI_RING_MAX_SLOT 65528u /* slot size must fit bits [31:16] of geom */

/* geom word: [7:0] log2(n_slots), [15:8] ring version, [31:16] slot size in bytes */
#define ABI_RING_GEOM(log2, slot)                                                                  \
	((uint32_t)(log2) | ((uint32_t)ABI_RING_VERSION << 8) | ((uint32_t)(slot) << 16))
#define ABI_RING_GEOM_LOG2(g) ((g)&0xFFu)
#define ABI_RING_GEOM_VERSION(g) (((g) >> 8) & 0xFFu)
#define ABI_RING_GEOM_SLOT(g) ((g) >> 16)

/* The ring header in shared memory; the slots follow it. */
struct abi_ring {
	uint32_t magic; /* ABI_RING_MAGIC, written by whoever initializes the ring (the host) */
	uint32_t geom;	/* ABI_RING_GEOM(): log2 slots [7:0], version [15:8], slot bytes [31:16] */
	uint32_t rsvd0[14]; /* zero; pads the header line to 64 bytes */
	uint32_t produced;  /* @0x40: free-running count of slots published by the producer */
	uint32_t rsvd1[15]; /* zero; own cache line */
	uint32_t consumed;  /* @0x80: free-running count of slots released by the consumer */
	uint32_t rsvd2[15]; /* zero; own cache line */
};
static_assert(sizeof(struct abi_ring) == 192, "abi_ring header is 192 bytes");
static_assert(offsetof(struct abi_ring, produced) == 64, "produced at 0x40");
static_assert(offsetof(struct abi_ring, consumed) == 128, "consumed at 0x80");

/* One side's private handle on a ring: geometry copied at attach time, never re-read. */
/* Which end of a ring a side holds. */
enum abi_ring_role {
	ABI_RING_PRODUCER = 0, /* writes slots and `produced` */
	ABI_RING_CONSUMER = 1, /* reads slots and writes `consumed` */
};

struct abi_ring_view {
	struct abi_ring *ring; /* the shared header; slots at (uint8_t *)ring + 192 */
	uint32_t own;	       /* our own counter (produced or consumed), kept privately */
	uint32_t mask;	       /* n_slots - 1 */
	uint32_t n_slots;      /* power of two, 1..2^ABI_RING_MAX_LOG2 */
	uint32_t slot_size;    /* bytes per slot, multiple of ABI_RING_SLOT_ALIGN */
};

/* Bytes of shared memory a ring of 2^log2 slots of slot_size bytes occupies. */
static inline size_t abi_ring_bytes(uint32_t log2, uint32_t slot_size)
{
	return sizeof(struct abi_ring) + ((size_t)1 << log2) * slot_size;
}

/* Count of filled slots between two free-running counters (wraps correctly at 2^32). */
static inline uint32_t abi_ring_count(uint32_t produced, uint32_t consumed)
{
	return produced - consumed;
}

/*
 * Lays out a fresh ring in mem (bytes long) and attaches v to it, counters starting at start
 * (tests start near UINT32_MAX to cross the wrap). Done by the host before the card attaches.
 * Errors: -EINVAL bad geometry (log2 > ABI_RING_MAX_LOG2, slot size 0/unaligned/too big),
 * -ENOSPC mem smaller than abi_ring_bytes().
 */
static inline int abi_ring_init(struct abi_ring_view *v, enum abi_ring_role role, void *mem,
				size_t bytes, uint32_t log2, uint32_t slot_size, uint32_t start)
{
	if (log2 > ABI_RING_MAX_LOG2 || slot_size == 0 || slot_size % ABI_RING_SLOT_ALIGN ||
	    slot_size > ABI_RING_MAX_SLOT)
		return -EINVAL;
	if (!mem || bytes < abi_ring_bytes(log2, slot_size))
		return -ENOSPC;
	struct abi_ring *r = (struct abi_ring *)mem;
	memset(r, 0, sizeof(*r));
	r->magic = ABI_RING_MAGIC;
	r->geom = ABI_RING_GEOM(log2, slot_size);
	r->produced = start;
	r->consumed = start;
	v->ring = r;
	v->n_slots = 1u << log2;
	v->mask = v->n_slots - 1;
	v->slot_size = slot_size;
	v->own = start;
	(void)role;
	return 0;
}

/*
 * Attaches v to a ring the peer laid out in mem (bytes long), checking that its header is sane
 * and its slots are expected_slot bytes. Errors: -EBADMSG bad magic or version, -EINVAL slot size
 * differs or log2 too large, -ENOSPC the ring does not fit in bytes, -EPROTO counters already
 * further apart than the ring holds.
 */
static inline int abi_ring_attach(struct abi_ring_view *v, enum abi_ring_role role, void *mem,
				  size_t bytes, uint32_t expected_slot)
{
	if (!mem || bytes < sizeof(struct abi_ring))
		return -ENOSPC;
	struct abi_ring *r = (struct abi_ring *)mem;
	uint32_t g = r->geom;
	if (r->magic != ABI_RING_MAGIC || ABI_RING_GEOM_VERSION(g) != ABI_RING_VERSION)
		return -EBADMSG;
	if (ABI_RING_GEOM_LOG2(g) > ABI_RING_MAX_LOG2 || ABI_RING_GEOM_SLOT(g) != expected_slot)
		return -EINVAL;
	if (bytes < abi_ring_bytes(ABI_RING_GEOM_LOG2(g), expected_slot))
		return -ENOSPC;
	v->ring = r;
	v->n_slots = 1u << ABI_RING_GEOM_LOG2(g);
	v->mask = v->n_slots - 1;
	v->slot_size = expected_slot;
	uint32_t p = ABI_RING_LOAD_ACQ(&r->produced), c = ABI_RING_LOAD_ACQ(&r->consumed);
	if (abi_ring_count(p, c) > v->n_slots)
		return -EPROTO;
	v->own = role == ABI_RING_PRODUCER ? p : c;
	return 0;
}

static inline uint8_t *abi_ring_slot(const struct abi_ring_view *v, uint32_t counter)
{
	return (uint8_t *)v->ring + sizeof(struct abi_ring) +
	       (size_t)(counter & v->mask) * v->slot_size;
}

/* Producer: free slots right now. Errors: -EPROTO the consumer's counter is out of range. */
static inline int abi_ring_space(const struct abi_ring_view *v)
{
	uint32_t c = ABI_RING_LOAD_ACQ(&v->ring->consumed);
	uint32_t n = abi_ring_count(v->own, c);
	if (n > v->n_slots)
		return -EPROTO;
	return (int)(v->n_slots - n);
}

/*
 * Producer: copies n entries of slot_size bytes from src into the ring and publishes them with one
 * counter update (a command list is one doorbell). All or nothing.
 * Errors: -EAGAIN fewer than n free slots (ring full), -EPROTO consumer counter out of range.
 */
static inline int abi_ring_push_n(struct abi_ring_view *v, const void *src, uint32_t n)
{
	int space = abi_ring_space(v);
	if (space < 0)
		return space;
	if ((uint32_t)space < n)
		return -EAGAIN;
	uint32_t p = v->own;
	for (uint32_t i = 0; i < n; i++)
		ABI_RING_COPY(abi_ring_slot(v, p + i),
			      (const uint8_t *)src + (size_t)i * v->slot_size, v->slot_size);
	v->own = p + n;
	ABI_RING_STORE_REL(&v->ring->produced, v->own);
	return 0;
}

/* Producer: one entry. Errors as abi_ring_push_n(). */
static inline int abi_ring_push(struct abi_ring_view *v, const void *entry)
{
	return abi_ring_push_n(v, entry, 1);
}

/* Consumer: filled slots right now. Errors: -EPROTO the producer's counter is out of range. */
static inline int abi_ring_avail(const struct abi_ring_view *v)
{
	uint32_t n = abi_ring_count(ABI_RING_LOAD_ACQ(&v->ring->produced), v->own);
	if (n > v->n_slots)
		return -EPROTO;
	return (int)n;
}

/*
 * Consumer: points *entry at the oldest entry in its slot without releasing it: the producer may
 * not reuse the slot until abi_ring_release(). The slot is still shared memory that a hostile
 * peer can rewrite, so copy the entry before checking it.
 * Errors: -EAGAIN ring empty, -EPROTO producer counter out of range.
 */
static inline int abi_ring_peek(const struct abi_ring_view *v, const void **entry)
{
	int n = abi_ring_avail(v);
	if (n < 0)
		return n;
	if (n == 0)
		return -EAGAIN;
	*entry = abi_ring_slot(v, v->own);
	return 0;
}

/* Consumer: releases the oldest slot (after abi_ring_peek() returned 0) to the producer. */
static inline void abi_ring_release(struct abi_ring_view *v)
{
	v->own++;
	ABI_RING_STORE_REL(&v->ring->consumed, v->own);
}

/*
 * Consumer: copies the oldest entry into dst (slot_size bytes) and releases its slot.
 * Errors: -EAGAIN ring empty, -EPROTO producer counter out of range.
 */
static inline int abi_ring_pop(struct abi_ring_view *v, void *dst)
{
	const void *slot;
	int rc = abi_ring_peek(v, &slot);
	if (rc)
		return rc;
	ABI_RING_COPY(dst, slot, v->slot_size);
	abi_ring_release(v);
	return 0;
}

#endif
