/*
 * kernels.c - the argument lists of the card's HLS kernels as the bitstream side sees them (one
 * place: bitstream.h). The offsets follow Vitis HLS s_axilite packing: 0x00 control, 0x04 global
 * interrupt enable, 0x08 IP interrupt enable, 0x0c interrupt status, then the arguments from 0x10
 * in C order, a 64-bit pointer taking 0xc bytes (low word, high word, reserved) and a 32-bit
 * scalar 0x8 (value, reserved).
 *
 * The lists follow the HLS tops in hls/<kernel>/<kernel>.h (fp8_gemm, vec_ops, and mla_attn /
 * mla_kv_append, both in hls/mla_attn/); their INTERFACE pragmas give the bundles. A test
 * (bitstream/tests/test_bitstream_hls.sh) checks this table against those pragmas.
 */
#include <pthread.h>
#include <string.h>

#include "bitstream.h"

#define P(n, b, t)                                                                                 \
	{                                                                                          \
		n, b, t, 8, 0                                                                      \
	}
#define S(n, t)                                                                                    \
	{                                                                                          \
		n, NULL, t, 4, 0                                                                   \
	}

static struct bitstream_kernel kernels[] = {
    {"fp8_gemm",
     13,
     {P("x", "gmem_x", "void*"), P("xs", "gmem_x", "float*"), P("w", "gmem_w", "unsigned char*"),
      P("ws", "gmem_w", "float*"), P("w2", "gmem_w", "unsigned char*"),
      P("ws2", "gmem_w", "float*"), P("y", "gmem_y", "void*"), P("res", "gmem_y", "float*"),
      P("route_w", "gmem_y", "float*"), S("M", "int"), S("N", "int"), S("K", "int"),
      S("flags", "unsigned int")}},
    {"vec_ops",
     13,
     {S("op", "int"), P("a", "gmem_a", "float*"), P("b", "gmem_b", "float*"),
      P("y", "gmem_y", "float*"), P("q", "gmem_y", "unsigned char*"), P("qs", "gmem_y", "float*"),
      P("pos", "gmem_b", "int*"), S("rows", "int"), S("n", "int"), S("lda", "int"), S("ldy", "int"),
      S("eps", "float"), S("flags", "unsigned int")}},
    {"mla_attn",
     11,
     {P("q_lat", "gmem_q", "float*"), P("q_pe", "gmem_q", "float*"),
      P("cache", "gmem_c", "unsigned char*"), P("out", "gmem_o", "float*"), S("nq", "int"),
      S("pos0", "int"), S("H", "int"), S("dc", "int"), S("dr", "int"), S("fmt", "int"),
      S("scale", "float")}},
    {"mla_kv_append",
     8,
     {P("c", "gmem_q", "float*"), P("k_pe", "gmem_q", "float*"),
      P("cache", "gmem_c", "unsigned char*"), S("pos", "int"), S("n", "int"), S("dc", "int"),
      S("dr", "int"), S("fmt", "int")}},
};

static pthread_once_t once = PTHREAD_ONCE_INIT;

static void layout(void)
{
	for (size_t k = 0; k < sizeof kernels / sizeof kernels[0]; k++) {
		uint32_t off = 0x10;
		for (uint32_t i = 0; i < kernels[k].n_args; i++) {
			kernels[k].arg[i].offset = off;
			off += kernels[k].arg[i].bundle ? 0xc : 0x8;
		}
	}
}

uint32_t bitstream_kernel_count(void)
{
	return sizeof kernels / sizeof kernels[0];
}

const struct bitstream_kernel *bitstream_kernel_at(uint32_t i)
{
	pthread_once(&once, layout);
	return i < bitstream_kernel_count() ? &kernels[i] : NULL;
}

const struct bitstream_kernel *bitstream_kernel_find(const char *name)
{
	for (uint32_t i = 0; name && i < bitstream_kernel_count(); i++)
		if (!strcmp(kernels[i].name, name))
			return bitstream_kernel_at(i);
	return NULL;
}
