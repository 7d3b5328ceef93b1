/*
 * test_rng.h - the hls tests' random numbers: xorshift64 on a file-local state seeded by the test
 * (define TEST_RNG_SEED before including), uniform floats in [0, 1) from its top 24 bits, and
 * normal floats by Box-Muller on two of them. Each test's sequence depends only on its seed.
 */
#ifndef MOECARD_HLS_TEST_RNG_H
#define MOECARD_HLS_TEST_RNG_H
#include <math.h>
#include <stdint.h>

#ifndef TEST_RNG_SEED
#error "define TEST_RNG_SEED before including test_rng.h"
#endif

static uint64_t rng = TEST_RNG_SEED;

static inline uint64_t rnext(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static inline float unif(void)
{
	return (float)((rnext() >> 40) * (1.0 / 16777216.0));
}

static inline float normal(void)
{
	float a = unif() + 1e-7f, b = unif();
	return (float)(sqrt(-2.0 * log(a)) * cos(6.283185307179586 * b));
}
#endif
