/*
 * cfg.c - check a board's CUs against the kernel argument lists and write the v++ link
 * configuration (connectivity.cfg) from it. Nothing here is templated: every nk=, sp= and slr=
 * line comes from the dts (board/<card>.dts) through struct board_desc.
 */
#include <errno.h>
#include <string.h>

#include "bitstream.h"

static int find_bundle_port(const struct board_cu *cu, const char *bundle)
{
	return board_cu_port_find(cu, bundle);
}

int bitstream_check(const struct board_desc *b, const char *src, char *err, size_t errlen)
{
	if (!b)
		return -EINVAL;
	for (uint32_t c = 0; c < b->n_cus; c++) {
		const struct board_cu *cu = &b->cu[c];
		const struct bitstream_kernel *k = bitstream_kernel_find(cu->kernel);
		if (!k) {
			if (err)
				snprintf(err, errlen,
					 "%s: %s: moecard,kernel: unknown kernel \"%s\"", src,
					 cu->name, cu->kernel);
			return -ENOENT;
		}
		for (uint32_t p = 0; p < cu->n_ports; p++) {
			uint32_t i;
			for (i = 0; i < k->n_args; i++)
				if (k->arg[i].bundle && !strcmp(k->arg[i].bundle, cu->port[p]))
					break;
			if (i == k->n_args) {
				if (err)
					snprintf(err, errlen,
						 "%s: %s: moecard,ports: \"%s\" is no m_axi bundle "
						 "of %s",
						 src, cu->name, cu->port[p], k->name);
				return -ENOENT;
			}
		}
		for (uint32_t i = 0; i < k->n_args; i++)
			if (k->arg[i].bundle && find_bundle_port(cu, k->arg[i].bundle) < 0) {
				if (err)
					snprintf(err, errlen,
						 "%s: %s: moecard,ports: bundle \"%s\" (argument "
						 "%s) is not "
						 "connected",
						 src, cu->name, k->arg[i].bundle, k->arg[i].name);
				return -EINVAL;
			}
	}
	return 0;
}

int bitstream_arg_bank(const struct board_desc *b, uint32_t cu, uint32_t argi)
{
	if (!b || cu >= b->n_cus)
		return -EINVAL;
	const struct bitstream_kernel *k = bitstream_kernel_find(b->cu[cu].kernel);
	if (!k || argi >= k->n_args || !k->arg[argi].bundle)
		return -EINVAL;
	int p = find_bundle_port(&b->cu[cu], k->arg[argi].bundle);
	return p < 0 ? -EINVAL : (int)b->cu[cu].port_bank[p];
}

int bitstream_kernel_first(const struct board_desc *b, uint32_t c)
{
	for (uint32_t j = 0; j < c; j++)
		if (!strcmp(b->cu[j].kernel, b->cu[c].kernel))
			return 0;
	return 1;
}

int bitstream_cfg_write(const struct board_desc *b, const char *src, FILE *out)
{
	char err[BOARD_ERR_MAX];
	int rc = bitstream_check(b, src, err, sizeof err);
	if (rc)
		return rc;
	fprintf(out,
		"# v++ link configuration for %s (%s), generated from %s by bitstream/gen.\n"
		"# Platform: %s. Do not edit; edit the dts.\n\n[connectivity]\n",
		b->model, b->card, src, b->platform);
	/* nk=<kernel>:<count>:<cu1>.<cu2>... in first-appearance order of the kernels */
	for (uint32_t c = 0; c < b->n_cus; c++) {
		if (!bitstream_kernel_first(b, c))
			continue;
		uint32_t n = 0, j;
		for (j = c; j < b->n_cus; j++)
			n += !strcmp(b->cu[j].kernel, b->cu[c].kernel);
		fprintf(out, "nk=%s:%u:", b->cu[c].kernel, n);
		const char *sep = "";
		for (j = c; j < b->n_cus; j++)
			if (!strcmp(b->cu[j].kernel, b->cu[c].kernel)) {
				fprintf(out, "%s%s", sep, b->cu[j].name);
				sep = ".";
			}
		fputc('\n', out);
	}
	fputc('\n', out);
	for (uint32_t c = 0; c < b->n_cus; c++) {
		const struct bitstream_kernel *k = bitstream_kernel_find(b->cu[c].kernel);
		for (uint32_t i = 0; i < k->n_args; i++) {
			int bank = bitstream_arg_bank(b, c, i);
			if (bank < 0)
				continue;
			char nm[32];
			board_bank_name(b, (uint32_t)bank, nm, sizeof nm);
			fprintf(out, "sp=%s.%s:%s\n", b->cu[c].name, k->arg[i].name, nm);
		}
	}
	fputc('\n', out);
	for (uint32_t c = 0; c < b->n_cus; c++)
		fprintf(out, "slr=%s:SLR%u\n", b->cu[c].name, b->cu[c].slr);
	/* [clock] freqHz=<Hz>:<cu>: each CU's ap_clk from its dts clock */
	fprintf(out, "\n[clock]\n");
	for (uint32_t c = 0; c < b->n_cus; c++)
		fprintf(out, "freqHz=%u:%s\n", b->clock[b->cu[c].clock].freq_hz, b->cu[c].name);
	return ferror(out) ? -EIO : 0;
}

/* The build parameters of a CU as -D flags (the kernel headers' macros) into buf. */
static void cu_flags(const struct board_cu *cu, char *buf, size_t len)
{
	size_t n = 0;
	buf[0] = 0;
#define ADD(...)                                                                                   \
	do {                                                                                       \
		int w_ = snprintf(buf + n, len - n, __VA_ARGS__);                                  \
		if (w_ > 0 && (size_t)w_ < len - n)                                                \
			n += (size_t)w_;                                                           \
	} while (0)
	if (!strcmp(cu->kernel, "fp8_gemm")) {
		if (cu->tm)
			ADD(" -DFP8_GEMM_TM=%u -DFP8_GEMM_TN=%u", cu->tm, cu->tn);
		ADD(" -DFP8_GEMM_AXI_BITS=%u", cu->axi_bits);
	} else if (!strcmp(cu->kernel, "fp8_gemv")) {
		if (cu->gemv_rows)
			ADD(" -DFP8_GEMV_PR=%u", cu->gemv_rows);
		if (cu->gemv_f32)
			ADD(" -DFP8_GEMV_F32=%u", cu->gemv_f32);
		ADD(" -DFP8_GEMV_AXI_BITS=%u", cu->axi_bits);
	} else if (!strcmp(cu->kernel, "mla_attn")) {
		if (cu->lane_macs)
			ADD(" -DMLA_ATTN_MACS=%u", cu->lane_macs);
	} else if (!strcmp(cu->kernel, "mla_attn_lanes")) {
		if (cu->lane_macs)
			ADD(" -DMLA_LANE_MACS=%u", cu->lane_macs);
		if (cu->lane_imacs)
			ADD(" -DMLA_LANE_IMACS=%u", cu->lane_imacs);
		if (cu->no_fp8)
			ADD(" -DMLA_LANES_NO_FP8=1");
		if (cu->lane_passes > 1)
			ADD(" -DMLA_LANE_PASSES=%u", cu->lane_passes);
		if (cu->lane_exp_ii > 1)
			ADD(" -DMLA_LANE_EXP_II=%u", cu->lane_exp_ii);
	}
#undef ADD
}

/* The C sources of a kernel's top (the HLS tree, relative to the repository root). */
static const char *kernel_sources(const char *kernel)
{
	static const struct {
		const char *kernel, *src;
	} t[] = {
	    {"fp8_gemm", "hls/fp8_gemm/fp8_gemm.c"},
	    {"fp8_gemv", "hls/fp8_gemv/fp8_gemv.c"},
	    {"vec_ops", "hls/vec_ops/vec_ops.c"},
	    {"mla_attn", "hls/mla_attn/mla_attn.c"},
	    {"mla_kv_append", "hls/mla_attn/mla_attn.c"},
	    {"mla_attn_lanes", "hls/mla_attn/mla_attn_lanes.c,hls/mla_attn/mla_attn.c"},
	    {"moe_route", "hls/moe_route/moe_route.c"},
	};
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
		if (!strcmp(t[i].kernel, kernel))
			return t[i].src;
	return NULL;
}

int bitstream_kernels_write(const struct board_desc *b, const char *src, FILE *out, char *err,
			    size_t errlen)
{
	int rc = bitstream_check(b, src, err, errlen);
	if (rc)
		return rc;
	for (uint32_t c = 0; c < b->n_cus; c++) {
		if (!bitstream_kernel_first(b, c))
			continue;
		const char *srcs = kernel_sources(b->cu[c].kernel);
		if (!srcs) {
			snprintf(err, errlen, "%s: CU %s: no HLS source for kernel %s", src,
				 b->cu[c].name, b->cu[c].kernel);
			return -EINVAL;
		}
		char f[256], g[256];
		cu_flags(&b->cu[c], f, sizeof f);
		for (uint32_t j = c + 1; j < b->n_cus; j++) {
			if (strcmp(b->cu[j].kernel, b->cu[c].kernel))
				continue;
			cu_flags(&b->cu[j], g, sizeof g);
			if (strcmp(f, g)) {
				snprintf(
				    err, errlen,
				    "%s: CUs %s and %s of kernel %s differ in their build "
				    "parameters (moecard,pe and the like); one .xo serves every "
				    "CU of a kernel",
				    src, b->cu[c].name, b->cu[j].name, b->cu[c].kernel);
				return -EINVAL;
			}
		}
		fprintf(out, "%s %s%s\n", b->cu[c].kernel, srcs, f);
	}
	return ferror(out) ? -EIO : 0;
}
