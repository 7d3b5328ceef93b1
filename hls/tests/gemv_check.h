/*
 * gemv_check.h - helpers shared by the fp8_gemv tests: a random generator, an activation bank
 * with a bump allocator, lane banks holding striped matrices, and group-table entries.
 */
#ifndef MOECARD_GEMV_CHECK_H
#define MOECARD_GEMV_CHECK_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "e4m3.h"
#include "hls/fp8_gemv/fp8_gemv.h"

static uint64_t gv_rng = 0x9E3779B97F4A7C15ull;
static inline uint64_t gv_next(void)
{
	gv_rng ^= gv_rng >> 12;
	gv_rng ^= gv_rng << 25;
	gv_rng ^= gv_rng >> 27;
	return gv_rng * 0x2545F4914F6CDD1Dull;
}
static inline float gv_unif(void) /* [0, 1) */
{
	return (float)(gv_next() >> 40) * (1.0f / 16777216.0f);
}
static inline float gv_sym(float a) /* [-a, a) */
{
	return (2.0f * gv_unif() - 1.0f) * a;
}

/* The activation bank: bytes, size, and the next free offset (64-byte aligned). */
struct gv_act {
	uint8_t *p;
	uint64_t size, used;
};

static inline uint64_t gv_alloc(struct gv_act *a, uint64_t bytes)
{
	uint64_t off = (a->used + 63) & ~(uint64_t)63;
	a->used = off + bytes;
	if (a->used > a->size) {
		uint64_t ns = a->used * 2 + 4096;
		a->p = realloc(a->p, ns);
		memset(a->p + a->size, 0, ns - a->size);
		a->size = ns;
	}
	return off;
}

static inline void gv_put_f32(struct gv_act *a, uint64_t off, const float *v, size_t n)
{
	memcpy(a->p + off, v, n * 4);
}

/* Lane banks: L buffers of `size` bytes each, filled as stripe sets are added. */
struct gv_lanes {
	int L;
	uint8_t *p[FP8_GEMV_MAX_LANES];
	uint64_t size, used;
};

static inline void gv_lanes_init(struct gv_lanes *ln, int L, uint64_t size)
{
	ln->L = L;
	ln->size = size;
	ln->used = 0;
	for (int l = 0; l < L; l++)
		ln->p[l] = calloc(size ? size : 1, 1);
}

static inline void gv_lanes_free(struct gv_lanes *ln)
{
	for (int l = 0; l < ln->L; l++)
		free(ln->p[l]);
}

/* The rotation (lane0) of the stripe sets gv_add_matrix makes: gv_rot for the next one (0 by
 * default), recorded per w_off so that gv_grp gives a group its matrix's lane0. */
static int gv_rot;
static struct {
	uint64_t off;
	int rot;
} gv_rots[4096];
static int gv_n_rots;

static inline int gv_rot_of(uint64_t w_off)
{
	for (int i = gv_n_rots; i-- > 0;)
		if (gv_rots[i].off == w_off)
			return gv_rots[i].rot;
	return 0;
}

/* Stripes one matrix into the next stripe set (rotation gv_rot % L); returns its w_off. */
static inline uint64_t gv_add_matrix(struct gv_lanes *ln, const uint8_t *w, const float *ws,
				     const uint8_t *w2, const float *ws2, int N, int K,
				     uint32_t flags)
{
	uint64_t off = (ln->used + 63) & ~(uint64_t)63;
	uint64_t bytes = fp8_gemv_stripe_bytes(N, K, ln->L, flags);
	uint8_t *dst[FP8_GEMV_MAX_LANES];
	if (off + bytes > ln->size)
		abort(); /* the test sized the banks too small */
	for (int l = 0; l < ln->L; l++)
		dst[l] = ln->p[l] + off;
	int rot = gv_rot % ln->L;
	fp8_gemv_stripe(dst, ln->L, w, ws, w2, ws2, N, K, flags, rot);
	if (gv_n_rots == (int)(sizeof gv_rots / sizeof gv_rots[0]))
		gv_n_rots = 0;
	gv_rots[gv_n_rots].off = off;
	gv_rots[gv_n_rots++].rot = rot;
	ln->used = off + bytes;
	return off;
}

static inline struct fp8_gemv_grp gv_grp(uint64_t w_off, uint64_t x_off, uint64_t y_off,
					 uint64_t res_off, uint64_t rw_off, int n, int k, int ldx,
					 int ldy, uint32_t flags)
{
	struct fp8_gemv_grp g;
	memset(&g, 0, sizeof g);
	g.w_off = w_off;
	g.x_off = x_off;
	g.y_off = y_off;
	g.res_off = res_off;
	g.rw_off = rw_off;
	g.n = (uint32_t)n;
	g.k = (uint32_t)k;
	g.ldx = (uint32_t)ldx;
	g.ldy = (uint32_t)ldy;
	g.flags = flags;
	g.lane0 = (uint32_t)gv_rot_of(w_off);
	return g;
}

#endif
