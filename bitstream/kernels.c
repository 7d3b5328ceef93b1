/*
 * kernels.c - the argument lists of the card's HLS kernels as the bitstream side sees them (one
 * place: bitstream.h). The offsets follow Vitis HLS s_axilite packing: 0x00 control, 0x04 global
 * interrupt enable, 0x08 IP interrupt enable, 0x0c interrupt status, then the arguments from 0x10
 * in C order, a 64-bit pointer taking 0xc bytes (low word, high word, reserved) and a 32-bit
 * scalar 0x8 (value, reserved).
 *
 * The lists follow the HLS tops in hls/<kernel>/<kernel>.h (fp8_gemm, vec_ops, mla_attn /
 * mla_kv_append, both in hls/mla_attn/, fp8_gemv's and mla_attn_lanes' 32-lane synthesis tops and moe_route); their INTERFACE pragmas give the bundles. A test
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
     15,
     {P("x", "gmem_x", "void*"), P("xs", "gmem_x", "float*"), P("w", "gmem_w", "unsigned char*"),
      P("ws", "gmem_w", "float*"), P("w2", "gmem_w", "unsigned char*"),
      P("ws2", "gmem_w", "float*"), P("y", "gmem_y", "void*"), P("res", "gmem_y", "float*"),
      P("route_w", "gmem_y", "float*"), S("M", "int"), S("N", "int"), S("K", "int"),
      S("flags", "unsigned int"), S("lda", "int"), S("ldy", "int")}},
    {"vec_ops",
     15,
     {S("op", "int"), P("a", "gmem_a", "float*"), P("b", "gmem_b", "float*"),
      P("y", "gmem_y", "float*"), P("q", "gmem_y", "unsigned char*"), P("qs", "gmem_y", "float*"),
      P("pos", "gmem_b", "int*"), S("rows", "int"), S("n", "int"), S("lda", "int"), S("ldy", "int"),
      S("eps", "float"), S("flags", "unsigned int"), S("k", "int"), S("src_rows", "int")}},
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
    {"fp8_gemv",
     40,
     {P("act", "gmem_a", "unsigned char*"),
      P("l0", "gmem_l0", "unsigned char*"),
      P("l1", "gmem_l1", "unsigned char*"),
      P("l2", "gmem_l2", "unsigned char*"),
      P("l3", "gmem_l3", "unsigned char*"),
      P("l4", "gmem_l4", "unsigned char*"),
      P("l5", "gmem_l5", "unsigned char*"),
      P("l6", "gmem_l6", "unsigned char*"),
      P("l7", "gmem_l7", "unsigned char*"),
      P("l8", "gmem_l8", "unsigned char*"),
      P("l9", "gmem_l9", "unsigned char*"),
      P("l10", "gmem_l10", "unsigned char*"),
      P("l11", "gmem_l11", "unsigned char*"),
      P("l12", "gmem_l12", "unsigned char*"),
      P("l13", "gmem_l13", "unsigned char*"),
      P("l14", "gmem_l14", "unsigned char*"),
      P("l15", "gmem_l15", "unsigned char*"),
      P("l16", "gmem_l16", "unsigned char*"),
      P("l17", "gmem_l17", "unsigned char*"),
      P("l18", "gmem_l18", "unsigned char*"),
      P("l19", "gmem_l19", "unsigned char*"),
      P("l20", "gmem_l20", "unsigned char*"),
      P("l21", "gmem_l21", "unsigned char*"),
      P("l22", "gmem_l22", "unsigned char*"),
      P("l23", "gmem_l23", "unsigned char*"),
      P("l24", "gmem_l24", "unsigned char*"),
      P("l25", "gmem_l25", "unsigned char*"),
      P("l26", "gmem_l26", "unsigned char*"),
      P("l27", "gmem_l27", "unsigned char*"),
      P("l28", "gmem_l28", "unsigned char*"),
      P("l29", "gmem_l29", "unsigned char*"),
      P("l30", "gmem_l30", "unsigned char*"),
      P("l31", "gmem_l31", "unsigned char*"),
      S("act_bytes", "unsigned int"),
      S("lane_bytes", "unsigned int"),
      S("tab_off", "unsigned int"),
      S("ng", "int"),
      S("m", "int"),
      S("x0_off", "unsigned int"),
      S("hint", "int")}},
    {"mla_attn_lanes",
     48,
     {P("q_lat", "gmem_q", "float*"),
      P("q_pe", "gmem_q", "float*"),
      P("l0", "gmem_l0", "unsigned char*"),
      P("l1", "gmem_l1", "unsigned char*"),
      P("l2", "gmem_l2", "unsigned char*"),
      P("l3", "gmem_l3", "unsigned char*"),
      P("l4", "gmem_l4", "unsigned char*"),
      P("l5", "gmem_l5", "unsigned char*"),
      P("l6", "gmem_l6", "unsigned char*"),
      P("l7", "gmem_l7", "unsigned char*"),
      P("l8", "gmem_l8", "unsigned char*"),
      P("l9", "gmem_l9", "unsigned char*"),
      P("l10", "gmem_l10", "unsigned char*"),
      P("l11", "gmem_l11", "unsigned char*"),
      P("l12", "gmem_l12", "unsigned char*"),
      P("l13", "gmem_l13", "unsigned char*"),
      P("l14", "gmem_l14", "unsigned char*"),
      P("l15", "gmem_l15", "unsigned char*"),
      P("l16", "gmem_l16", "unsigned char*"),
      P("l17", "gmem_l17", "unsigned char*"),
      P("l18", "gmem_l18", "unsigned char*"),
      P("l19", "gmem_l19", "unsigned char*"),
      P("l20", "gmem_l20", "unsigned char*"),
      P("l21", "gmem_l21", "unsigned char*"),
      P("l22", "gmem_l22", "unsigned char*"),
      P("l23", "gmem_l23", "unsigned char*"),
      P("l24", "gmem_l24", "unsigned char*"),
      P("l25", "gmem_l25", "unsigned char*"),
      P("l26", "gmem_l26", "unsigned char*"),
      P("l27", "gmem_l27", "unsigned char*"),
      P("l28", "gmem_l28", "unsigned char*"),
      P("l29", "gmem_l29", "unsigned char*"),
      P("l30", "gmem_l30", "unsigned char*"),
      P("l31", "gmem_l31", "unsigned char*"),
      P("out", "gmem_o", "float*"),
      S("cache_off", "unsigned int"),
      S("pos", "int"),
      S("H", "int"),
      S("dc", "int"),
      S("dr", "int"),
      S("fmt", "int"),
      S("scale", "float"),
      P("q_rows", "gmem_q", "float*"),
      P("tab", "gmem_q", "unsigned int*"),
      S("rows", "int"),
      S("slot_bytes", "unsigned int"),
      S("lane_bytes", "unsigned int"),
      S("ctx_cap", "int")}},
    {"moe_route",
     13,
     {P("logit", "gmem_a", "float*"), P("bias", "gmem_a", "float*"),
      P("out", "gmem_a", "unsigned char*"), P("tmpl", "gmem_a", "unsigned char*"),
      P("tab", "gmem_a", "unsigned char*"), S("stride", "unsigned int"), S("E", "int"),
      S("k", "int"), S("G", "int"), S("topk_group", "int"), S("flags", "unsigned int"),
      S("scale", "float"), S("rows", "int")}},
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
