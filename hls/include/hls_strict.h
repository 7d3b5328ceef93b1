/*
 * hls_strict.h - included last by every kernel source (hls/<kernel>/<kernel>.c). With -DHLS_STRICT
 * (the lint build in hls/tests/test_hls_lint.sh) it poisons what Vitis HLS cannot synthesize or
 * what a kernel must not do: heap allocation, stdio, process exit. Recursion and VLAs are caught
 * by the same lint (-fcallgraph-info and -Wvla).
 */
#ifndef MOECARD_HLS_STRICT_H
#define MOECARD_HLS_STRICT_H
#ifdef HLS_STRICT
#pragma GCC poison malloc calloc realloc free alloca printf fprintf puts fopen exit abort
#endif
#endif
