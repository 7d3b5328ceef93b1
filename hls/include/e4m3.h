/*
 * e4m3.h - OCP FP8 E4M3FN codec, shared by the host engine, the HLS kernels and the firmware.
 *
 * Format (OCP 8-bit Floating Point Specification v1.0, "E4M3"): bit 7 sign, bits 6..3 exponent
 * (bias 7), bits 2..0 mantissa. No infinities; S.1111.111 is NaN; the largest finite magnitude is
 * S.1111.110 = 448; subnormals (exponent 0) are m/8 * 2^-6, the smallest 2^-9.
 * Encoding rounds to nearest, ties to even, and saturates finite overflow (and +-inf) to +-448,
 * as docs/numerics.md requires. NaN encodes to 0x7F (sign kept).
 * Header-only and synthesizable: no tables built at run time, no libm.
 */
#ifndef MOECARD_E4M3_H
#define MOECARD_E4M3_H

#include <stdint.h>
#include <string.h>

#define E4M3_MAX 448.0f /* largest finite magnitude */
#define E4M3_NAN 0x7Fu	/* canonical NaN code (positive) */

/* Bit pattern of a float, without aliasing problems. */
static inline uint32_t e4m3_f32_bits(float f)
{
	uint32_t u;
	memcpy(&u, &f, 4);
	return u;
}
static inline float e4m3_bits_f32(uint32_t u)
{
	float f;
	memcpy(&f, &u, 4);
	return f;
}

/* Decodes one E4M3 code to float (exact). */
static inline float e4m3_decode(uint8_t c)
{
	uint32_t s = (uint32_t)(c >> 7) << 31;
	uint32_t e = (c >> 3) & 0xF, m = c & 7;
	if (e == 0xF && m == 7)
		return e4m3_bits_f32(s | 0x7FC00000u);
	if (e == 0) /* subnormal: m * 2^-9, exact in float */
		return e4m3_bits_f32(s | e4m3_f32_bits((float)m * (1.0f / 512.0f)));
	return e4m3_bits_f32(s | ((e + 120u) << 23) | (m << 20));
}

/* Integer value of a code in units of 2^-9 (|v| <= 448*512 = 229376); NaN codes give 0.
 * Products of two such values are exact in int64, which is how the GEMM sums a block exactly. */
static inline int32_t e4m3_decode_fixed(uint8_t c)
{
	int32_t e = (c >> 3) & 0xF, m = c & 7, v;
	if (e == 0xF && m == 7)
		return 0;
	v = e == 0 ? m : (8 + m) << (e - 1);
	return (c & 0x80) ? -v : v;
}

/* Encodes a float: round to nearest even, saturate to +-448, NaN -> S.1111.111. */
static inline uint8_t e4m3_encode(float f)
{
	uint32_t u = e4m3_f32_bits(f);
	uint8_t s = (uint8_t)((u >> 24) & 0x80);
	uint32_t a = u & 0x7FFFFFFFu;
	if (a > 0x7F800000u)
		return s | E4M3_NAN;
	if (a >= 0x43E00000u) /* |f| >= 448 (and inf): saturate */
		return s | 0x7E;
	if (a < 0x3C800000u) {			     /* |f| < 2^-6: subnormal range, quantum 2^-9 */
		float q = e4m3_bits_f32(a) * 512.0f; /* exact: power-of-two scaling */
		uint32_t n = (uint32_t)q;
		float r = q - (float)n;
		if (r > 0.5f || (r == 0.5f && (n & 1)))
			n++;
		return s | (uint8_t)n; /* n == 8 is the smallest normal 0x08: correct */
	}
	/* normal: keep 3 mantissa bits of the f32, RNE on the 20 dropped bits */
	{
		uint32_t exp = (a >> 23) - 120; /* 1..15 */
		uint32_t man = a & 0x7FFFFF;
		uint32_t keep = man >> 20, rest = man & 0xFFFFF;
		uint32_t code = (exp << 3) | keep;
		if (rest > 0x80000u || (rest == 0x80000u && (keep & 1)))
			code++;
		if (code > 0x7E)
			code = 0x7E;
		return s | (uint8_t)code;
	}
}

/* bf16 <-> f32 (bf16 is the top half of an f32; encoding rounds to nearest even). */
static inline float bf16_to_f32(uint16_t h)
{
	return e4m3_bits_f32((uint32_t)h << 16);
}
static inline uint16_t f32_to_bf16(float f)
{
	uint32_t u = e4m3_f32_bits(f);
	if ((u & 0x7FFFFFFFu) > 0x7F800000u)
		return (uint16_t)((u >> 16) | 0x40);
	u += 0x7FFFu + ((u >> 16) & 1);
	return (uint16_t)(u >> 16);
}

/* IEEE binary16 -> f32 (exact, subnormals included). */
static inline float f16_to_f32(uint16_t h)
{
	uint32_t s = (uint32_t)(h >> 15) << 31, e = (h >> 10) & 0x1F, m = h & 0x3FF;
	if (e == 0)
		return e4m3_bits_f32(s | e4m3_f32_bits((float)m * (1.0f / 16777216.0f)));
	if (e == 31)
		return e4m3_bits_f32(s | 0x7F800000u | (m << 13));
	return e4m3_bits_f32(s | ((e + 112) << 23) | (m << 13));
}

#endif
