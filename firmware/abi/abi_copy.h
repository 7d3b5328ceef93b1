/*
 * abi_copy.h - a copy of 4-byte aligned objects a word at a time, for the firmware images, whose
 * size-optimized C libraries copy byte by byte. Misaligned ends or sizes go to memcpy. Used by
 * the card side's ring slots (abi_plat_card.h) and the firmware kernel's queue items (rtos.c).
 */
#ifndef ABI_COPY_H
#define ABI_COPY_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline void abi_copy_aligned(void *dst, const void *src, size_t n)
{
	typedef uint32_t __attribute__((may_alias)) word_t;
	if (((uintptr_t)dst | (uintptr_t)src | n) & 3u) {
		memcpy(dst, src, n);
		return;
	}
	word_t *d = (word_t *)dst;
	const word_t *s = (const word_t *)src;
	for (size_t i = 0; i < n / 4; i++)
		d[i] = s[i];
}

#endif
