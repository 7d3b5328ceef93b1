/*
 * abi_plat_host.h - the host side's platform glue for the header-only ring in abi_ring.h.
 * Host processes (and the firmware built with port/sim, which runs as a host thread) share rings
 * through ordinary cacheable memory, so acquire/release atomics give the ordering the ring needs:
 * the slot contents are visible before the counter that publishes them.
 */
#ifndef ABI_PLAT_HOST_H
#define ABI_PLAT_HOST_H

#include <stdint.h>

/* Reads a ring counter written by the other side; later reads of slots are ordered after it. */
#define ABI_RING_LOAD_ACQ(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
/* Publishes a ring counter; earlier slot writes are visible before it. */
#define ABI_RING_STORE_REL(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)

#endif
