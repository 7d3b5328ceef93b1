/*
 * cli_kernels.h - `moecard bench --kernels` (docs/cli.md): the cpu engine's decode products on a
 * checkpoint's own matrices, every SIMD path this CPU runs side by side in one process, rounds
 * alternating the paths, beside a plain read of the same bytes (docs/profiling.md).
 */
#ifndef MOECARD_CLI_KERNELS_H
#define MOECARD_CLI_KERNELS_H

#include <stddef.h>
#include <stdint.h>
#include "cli/cli_opts.h"
#include "engine/engine.h"

/* bench_sum_words - the sum of the 64-bit words of p[n] (whole 32-byte steps): a plain read
 * the compiler cannot drop, for the read-bandwidth figures of bench. */
uint64_t bench_sum_words(const void *p, size_t n);

/* bench_kernels - the figures on stdout (a table, or one JSON object with json). 0, or 1 when
 * out of memory (a message on stderr). */
int bench_kernels(const struct cli_opts *a, const struct engine *m);

#endif
