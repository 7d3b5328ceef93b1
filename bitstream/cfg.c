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
		uint32_t j;
		for (j = 0; j < c; j++)
			if (!strcmp(b->cu[j].kernel, b->cu[c].kernel))
				break;
		if (j < c)
			continue;
		uint32_t n = 0;
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
