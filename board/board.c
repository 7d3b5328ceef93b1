/*
 * board.c - libfdt parser and validator for board device trees (see board.h, board/bindings/).
 *
 * Data flow: .dtb bytes -> fdt_check_full -> one pass per node compatible (clocks, banks, CUs,
 * DMA channels, firmware CPU) filling struct board_desc -> board_validate (cross-node rules).
 * No allocation except the file buffer of board_load. Every error message names the source file,
 * the node path and the property.
 */
#include <errno.h>
#include <inttypes.h>
#include <libfdt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "board.h"
#include "abi_cmd.h"
#include "hls/mla_attn/mla_attn.h"

/* Parse context: the blob, the source name and where the error message goes. */
struct ctx {
	const void *fdt; /* validated blob */
	const char *src; /* file name for messages */
	char *err;	 /* message buffer, may be NULL */
	size_t errlen;	 /* bytes of err */
};

/* Big-endian cell loads at a byte offset (property data is only byte-aligned). */
static uint32_t ld32(const void *p, size_t off)
{
	const uint8_t *b = (const uint8_t *)p + off;
	return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

static uint64_t ld64(const void *p, size_t off)
{
	return (uint64_t)ld32(p, off) << 32 | ld32(p, off + 4);
}

static const char *const err_names[] = {
    [BOARD_EBADDTB - BOARD_EBASE] = "not a valid device tree blob",
    [BOARD_ENOTCARD - BOARD_EBASE] = "root is not compatible with \"moecard,card\"",
    [BOARD_EMISSING - BOARD_EBASE] = "missing required node or property",
    [BOARD_EBADSIZE - BOARD_EBASE] = "property has the wrong size",
    [BOARD_EBADVALUE - BOARD_EBASE] = "property value out of range",
    [BOARD_EOVERLAP - BOARD_EBASE] = "address windows overlap",
    [BOARD_ENOBANK - BOARD_EBASE] = "reference to a missing memory bank",
    [BOARD_ECLOCK - BOARD_EBASE] = "bad clock (0 Hz or not a clock)",
    [BOARD_ETOOMANY - BOARD_EBASE] = "too many nodes or entries",
    [BOARD_EDUP - BOARD_EBASE] = "duplicate name or bank index",
    [BOARD_EEMPTY - BOARD_EBASE] = "no banks, compute units or DMA channels",
    [BOARD_ERANGE - BOARD_EBASE] = "address outside its window",
};

const char *board_strerror(int err)
{
	if (err == 0)
		return "success";
	if (err < 0 && -err > BOARD_EBASE && -err < BOARD_ELAST)
		return err_names[-err - BOARD_EBASE];
	if (err < 0 && -err < BOARD_EBASE)
		return strerror(-err);
	return "unknown error";
}

/* Format "src: path: prop: what" into c->err and return code. */
static int fail(const struct ctx *c, int node, const char *prop, int code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static int fail(const struct ctx *c, int node, const char *prop, int code, const char *fmt, ...)
{
	if (!c->err || !c->errlen)
		return code;
	char path[128] = "/";
	if (node >= 0 && fdt_get_path(c->fdt, node, path, sizeof path) != 0)
		snprintf(path, sizeof path, "<node at %d>", node);
	int n = snprintf(c->err, c->errlen, "%s: %s: %s: ", c->src ? c->src : "dtb", path,
			 prop ? prop : "-");
	if (n < 0 || (size_t)n >= c->errlen)
		return code;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->err + n, c->errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return code;
}

/* Messages for board_validate, which has no blob: the "node" is a description string. */
static int vfail(const char *src, char *err, size_t errlen, const char *node, const char *prop,
		 int code, const char *fmt, ...) __attribute__((format(printf, 7, 8)));
static int vfail(const char *src, char *err, size_t errlen, const char *node, const char *prop,
		 int code, const char *fmt, ...)
{
	if (!err || !errlen)
		return code;
	int n = snprintf(err, errlen, "%s: %s: %s: ", src ? src : "board", node, prop);
	if (n < 0 || (size_t)n >= errlen)
		return code;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return code;
}

/* Read a property of exactly want bytes (want 0: any size). */
static int get_prop(const struct ctx *c, int node, const char *name, int want, int optional,
		    const void **val, int *len)
{
	int l = 0;
	const void *p = fdt_getprop(c->fdt, node, name, &l);
	if (!p) {
		if (l == -FDT_ERR_NOTFOUND) {
			if (optional)
				return 1;
			return fail(c, node, name, -BOARD_EMISSING, "required property is missing");
		}
		return fail(c, node, name, -BOARD_EBADDTB, "%s", fdt_strerror(l));
	}
	if (want && l != want)
		return fail(c, node, name, -BOARD_EBADSIZE, "is %d bytes, expected %d", l, want);
	*val = p;
	*len = l;
	return 0;
}

static int get_u32(const struct ctx *c, int node, const char *name, int optional, uint32_t *out)
{
	const void *p = NULL;
	int l = 0, rc = get_prop(c, node, name, 4, optional, &p, &l);
	if (rc == 0)
		*out = ld32(p, 0);
	return rc;
}

static int get_u64(const struct ctx *c, int node, const char *name, uint64_t *out)
{
	const void *p = NULL;
	int l = 0, rc = get_prop(c, node, name, 8, 0, &p, &l);
	if (rc == 0)
		*out = ld64(p, 0);
	return rc;
}

/* A <base64 size64> pair: "reg" or a window like "moecard,imem". */
static int get_window(const struct ctx *c, int node, const char *name, uint64_t *base,
		      uint64_t *size)
{
	const void *p = NULL;
	int l = 0, rc = get_prop(c, node, name, 16, 0, &p, &l);
	if (rc)
		return rc;
	*base = ld64(p, 0);
	*size = ld64(p, 8);
	if (*size == 0)
		return fail(c, node, name, -BOARD_EBADVALUE, "size is 0");
	if (*base + *size < *base)
		return fail(c, node, name, -BOARD_ERANGE,
			    "window 0x%" PRIx64 "+0x%" PRIx64 " wraps past 2^64", *base, *size);
	return 0;
}

/* A NUL-terminated string property that fits in out[outlen]. */
static int get_str(const struct ctx *c, int node, const char *name, char *out, size_t outlen)
{
	const void *p = NULL;
	int l = 0, rc = get_prop(c, node, name, 0, 0, &p, &l);
	if (rc)
		return rc;
	const char *s = p;
	if (l < 2 || s[l - 1] != '\0' || strlen(s) != (size_t)l - 1)
		return fail(c, node, name, -BOARD_EBADSIZE, "not a single NUL-terminated string");
	if ((size_t)l > outlen)
		return fail(c, node, name, -BOARD_EBADSIZE, "string longer than %zu bytes",
			    outlen - 1);
	memcpy(out, s, (size_t)l);
	return 0;
}

/* The node name without its unit address. */
static int get_node_name(const struct ctx *c, int node, char *out, size_t outlen)
{
	int l = 0;
	const char *nm = fdt_get_name(c->fdt, node, &l);
	if (!nm)
		return fail(c, node, "name", -BOARD_EBADDTB, "%s", fdt_strerror(l));
	size_t n = strcspn(nm, "@");
	if (n == 0 || n >= outlen)
		return fail(c, node, "name", -BOARD_EBADSIZE, "node name empty or longer than %zu",
			    outlen - 1);
	memcpy(out, nm, n);
	out[n] = '\0';
	return 0;
}

/* Iterate the nodes compatible with compat; returns the next offset, -1 at the end, or < -1. */
static int next_compat(const struct ctx *c, int prev, const char *compat, int *node)
{
	int off = fdt_node_offset_by_compatible(c->fdt, prev, compat);
	if (off == -FDT_ERR_NOTFOUND) {
		*node = -1;
		return 0;
	}
	if (off < 0)
		return fail(c, -1, compat, -BOARD_EBADDTB, "%s", fdt_strerror(off));
	*node = off;
	return 0;
}

/* Index of the clock referenced by the node's "clocks" property. */
static int get_clock_ref(const struct ctx *c, const struct board_desc *b, int node, uint32_t *idx)
{
	uint32_t ph;
	int rc = get_u32(c, node, "clocks", 0, &ph);
	if (rc)
		return rc;
	for (uint32_t i = 0; i < b->n_clocks; i++)
		if (b->clock[i].phandle == ph && ph) {
			*idx = i;
			return 0;
		}
	return fail(c, node, "clocks", -BOARD_ECLOCK, "phandle 0x%x is not a moecard,clock node",
		    ph);
}

static int parse_root(const struct ctx *c, struct board_desc *b)
{
	const void *p = NULL;
	int l = 0, rc;
	rc = get_prop(c, 0, "compatible", 0, 0, &p, &l);
	if (rc)
		return rc == -BOARD_EMISSING
			   ? fail(c, 0, "compatible", -BOARD_ENOTCARD, "root has no compatible")
			   : rc;
	if (fdt_stringlist_contains(p, l, "moecard,card") != 1)
		return fail(c, 0, "compatible", -BOARD_ENOTCARD, "does not list \"moecard,card\"");
	size_t first = strnlen(p, (size_t)l);
	if (first == 0 || first >= sizeof b->card)
		return fail(c, 0, "compatible", -BOARD_EBADSIZE, "first entry empty or too long");
	memcpy(b->card, p, first);
	if ((rc = get_str(c, 0, "model", b->model, sizeof b->model)) ||
	    (rc = get_str(c, 0, "moecard,part", b->part, sizeof b->part)) ||
	    (rc = get_str(c, 0, "moecard,platform", b->platform, sizeof b->platform)))
		return rc;
	rc = get_prop(c, 0, "moecard,pcie", 8, 0, &p, &l);
	if (rc)
		return rc;
	b->pcie_gen = ld32(p, 0);
	b->pcie_lanes = ld32(p, 4);
	if (b->pcie_gen < 1 || b->pcie_gen > 6)
		return fail(c, 0, "moecard,pcie", -BOARD_EBADVALUE, "generation %u not in 1..6",
			    b->pcie_gen);
	if (b->pcie_lanes < 1 || b->pcie_lanes > 16 || (b->pcie_lanes & (b->pcie_lanes - 1)))
		return fail(c, 0, "moecard,pcie", -BOARD_EBADVALUE, "lanes %u not 1,2,4,8,16",
			    b->pcie_lanes);
	if ((rc = get_u32(c, 0, "moecard,pcie-bandwidth-mbps", 0, &b->pcie_bw_mbps)))
		return rc;
	if (!b->pcie_bw_mbps)
		return fail(c, 0, "moecard,pcie-bandwidth-mbps", -BOARD_EBADVALUE, "is 0");
	/* Optional: the share of its data-sheet bandwidth a memory bank sustains under streaming
	 * reads (the timing model's HBM efficiency), 1..100, default 100. */
	b->mem_eff_pct = 100;
	if ((rc = get_u32(c, 0, "moecard,mem-efficiency-pct", 1, &b->mem_eff_pct)) < 0)
		return rc;
	if (b->mem_eff_pct < 1 || b->mem_eff_pct > 100)
		return fail(c, 0, "moecard,mem-efficiency-pct", -BOARD_EBADVALUE,
			    "%u not in 1..100", b->mem_eff_pct);
	if ((rc = get_u32(c, 0, "moecard,slrs", 0, &b->n_slr)))
		return rc;
	if (b->n_slr < 1 || b->n_slr > 8)
		return fail(c, 0, "moecard,slrs", -BOARD_EBADVALUE, "%u not in 1..8", b->n_slr);
	/* Optional part capacities <dsp bram36 uram lut>: each > 0 and at most 100 million. */
	rc = get_prop(c, 0, "moecard,part-resources", 16, 1, &p, &l);
	if (rc < 0)
		return rc;
	if (rc == 0) {
		static const char *const what[4] = {"dsp", "bram36", "uram", "lut"};
		uint32_t v[4];
		for (int i = 0; i < 4; i++) {
			v[i] = ld32(p, 4 * (size_t)i);
			if (!v[i] || v[i] > 100000000u)
				return fail(c, 0, "moecard,part-resources", -BOARD_EBADVALUE,
					    "%s count %u not in 1..100000000", what[i], v[i]);
		}
		b->part_dsp = v[0];
		b->part_bram36 = v[1];
		b->part_uram = v[2];
		b->part_lut = v[3];
	}
	return 0;
}

static int parse_clocks(const struct ctx *c, struct board_desc *b)
{
	int node = -1, rc;
	for (;;) {
		if ((rc = next_compat(c, node, "moecard,clock", &node)))
			return rc;
		if (node < 0)
			return 0;
		if (b->n_clocks == BOARD_MAX_CLOCKS)
			return fail(c, node, "compatible", -BOARD_ETOOMANY, "more than %d clocks",
				    BOARD_MAX_CLOCKS);
		struct board_clock *k = &b->clock[b->n_clocks];
		if ((rc = get_node_name(c, node, k->name, sizeof k->name)) ||
		    (rc = get_u32(c, node, "clock-frequency", 0, &k->freq_hz)))
			return rc;
		if (k->freq_hz == 0)
			return fail(c, node, "clock-frequency", -BOARD_ECLOCK, "is 0 Hz");
		k->phandle = fdt_get_phandle(c->fdt, node);
		b->n_clocks++;
	}
}

static int parse_banks(const struct ctx *c, struct board_desc *b)
{
	int node = -1, rc;
	for (;;) {
		if ((rc = next_compat(c, node, "moecard,mem-bank", &node)))
			return rc;
		if (node < 0)
			return 0;
		if (b->n_banks == BOARD_MAX_BANKS)
			return fail(c, node, "compatible", -BOARD_ETOOMANY, "more than %d banks",
				    BOARD_MAX_BANKS);
		struct board_bank *k = &b->bank[b->n_banks];
		char kind[16];
		if ((rc = get_node_name(c, node, k->name, sizeof k->name)) ||
		    (rc = get_window(c, node, "reg", &k->base, &k->size)) ||
		    (rc = get_str(c, node, "moecard,kind", kind, sizeof kind)) ||
		    (rc = get_u32(c, node, "moecard,index", 0, &k->index)) ||
		    (rc = get_u32(c, node, "moecard,bandwidth-mbps", 0, &k->bw_mbps)))
			return rc;
		if (!strcmp(kind, "hbm"))
			k->kind = BOARD_MEM_HBM;
		else if (!strcmp(kind, "ddr"))
			k->kind = BOARD_MEM_DDR;
		else if (!strcmp(kind, "plram"))
			k->kind = BOARD_MEM_PLRAM;
		else
			return fail(c, node, "moecard,kind", -BOARD_EBADVALUE,
				    "\"%s\" is not hbm, ddr or plram", kind);
		if (k->index > 255)
			return fail(c, node, "moecard,index", -BOARD_EBADVALUE, "%u > 255",
				    k->index);
		if (k->bw_mbps == 0)
			return fail(c, node, "moecard,bandwidth-mbps", -BOARD_EBADVALUE, "is 0");
		k->phandle = fdt_get_phandle(c->fdt, node);
		b->mem_bytes += k->size;
		b->mem_bw_mbps += k->bw_mbps;
		b->n_banks++;
	}
}

static int parse_cu(const struct ctx *c, struct board_desc *b, int node, struct board_cu *k)
{
	const void *p = NULL;
	int l = 0, rc;
	if ((rc = get_node_name(c, node, k->name, sizeof k->name)) ||
	    (rc = get_window(c, node, "reg", &k->base, &k->size)) ||
	    (rc = get_str(c, node, "moecard,kernel", k->kernel, sizeof k->kernel)) ||
	    (rc = get_u32(c, node, "moecard,axi-width-bits", 0, &k->axi_bits)) ||
	    (rc = get_u32(c, node, "moecard,slr", 0, &k->slr)) ||
	    (rc = get_clock_ref(c, b, node, &k->clock)))
		return rc;
	if (k->axi_bits < 32 || k->axi_bits > 1024 || (k->axi_bits & (k->axi_bits - 1)))
		return fail(c, node, "moecard,axi-width-bits", -BOARD_EBADVALUE,
			    "%u is not a power of two in 32..1024", k->axi_bits);
	if (k->slr >= b->n_slr)
		return fail(c, node, "moecard,slr", -BOARD_EBADVALUE, "SLR %u but the card has %u",
			    k->slr, b->n_slr);
	rc = get_prop(c, node, "moecard,pe", 8, 1, &p, &l);
	if (rc < 0)
		return rc;
	if (rc == 0) {
		k->tm = ld32(p, 0);
		k->tn = ld32(p, 4);
		if (!k->tm || !k->tn || k->tm > 256 || k->tn > 256)
			return fail(c, node, "moecard,pe", -BOARD_EBADVALUE,
				    "<%u %u> not in 1..256", k->tm, k->tn);
	}
	if ((rc = get_u32(c, node, "moecard,lane-macs", 1, &k->lane_macs)) < 0)
		return rc;
	if (k->lane_macs > 4096 || (k->lane_macs & (k->lane_macs - 1)))
		return fail(c, node, "moecard,lane-macs", -BOARD_EBADVALUE,
			    "%u is not a power of two in 1..4096", k->lane_macs);
	/* on mla_attn: the CU's f32 MACs a cycle, at most its heads x latent elements */
	if (!strcmp(k->kernel, "mla_attn") && k->lane_macs > MLA_HG * MLA_DL)
		return fail(c, node, "moecard,lane-macs", -BOARD_EBADVALUE,
			    "%u is more than mla_attn's %d (MLA_HG x MLA_DL)", k->lane_macs,
			    MLA_HG * MLA_DL);
	if ((rc = get_u32(c, node, "moecard,lane-imacs", 1, &k->lane_imacs)) < 0)
		return rc;
	if (k->lane_imacs && (k->lane_imacs < MLA_MIN_IMACS || k->lane_imacs > MLA_MAX_IMACS ||
			      (k->lane_imacs & (k->lane_imacs - 1))))
		return fail(c, node, "moecard,lane-imacs", -BOARD_EBADVALUE,
			    "%u is not a power of two in %d..%d", k->lane_imacs, MLA_MIN_IMACS,
			    MLA_MAX_IMACS);
	uint32_t fp8 = 1;
	if ((rc = get_u32(c, node, "moecard,fp8-datapath", 1, &fp8)) < 0)
		return rc;
	if (fp8 > 1)
		return fail(c, node, "moecard,fp8-datapath", -BOARD_EBADVALUE, "%u is not 0 or 1",
			    fp8);
	k->no_fp8 = rc == 0 && fp8 == 0;
	if ((rc = get_u32(c, node, "moecard,lane-passes", 1, &k->lane_passes)) < 0)
		return rc;
	if (k->lane_passes > 16 || (k->lane_passes & (k->lane_passes - 1)))
		return fail(c, node, "moecard,lane-passes", -BOARD_EBADVALUE,
			    "%u is not a power of two in 1..16", k->lane_passes);
	if (k->lane_passes > 1 && !k->no_fp8)
		return fail(
		    c, node, "moecard,lane-passes", -BOARD_EBADVALUE,
		    "%u head passes need moecard,fp8-datapath = <0> (the FP8 datapath takes "
		    "every head at once)",
		    k->lane_passes);
	if ((rc = get_u32(c, node, "moecard,lane-exp-ii", 1, &k->lane_exp_ii)) < 0)
		return rc;
	if (rc == 0 && (k->lane_exp_ii < 1 || k->lane_exp_ii > 17))
		return fail(c, node, "moecard,lane-exp-ii", -BOARD_EBADVALUE, "%u is not in 1..17",
			    k->lane_exp_ii);
	if ((rc = get_u32(c, node, "moecard,gemv-rows", 1, &k->gemv_rows)) < 0)
		return rc;
	if (k->gemv_rows > 16 || (k->gemv_rows & (k->gemv_rows - 1)))
		return fail(c, node, "moecard,gemv-rows", -BOARD_EBADVALUE,
			    "%u is not a power of two in 1..16", k->gemv_rows);
	if ((rc = get_u32(c, node, "moecard,gemv-f32-macs", 1, &k->gemv_f32)) < 0)
		return rc;
	if (rc == 0 && (k->gemv_f32 < 1 || k->gemv_f32 > 128 || (k->gemv_f32 & (k->gemv_f32 - 1))))
		return fail(c, node, "moecard,gemv-f32-macs", -BOARD_EBADVALUE,
			    "%u is not a power of two in 1..128", k->gemv_f32);
	/* Ports: a string list, and one bank phandle per string. */
	if ((rc = get_prop(c, node, "moecard,ports", 0, 0, &p, &l)))
		return rc;
	int n = fdt_stringlist_count(c->fdt, node, "moecard,ports");
	if (n < 0 || ((const char *)p)[l - 1] != '\0')
		return fail(c, node, "moecard,ports", -BOARD_EBADSIZE, "not a string list");
	if (n == 0)
		return fail(c, node, "moecard,ports", -BOARD_EMISSING, "no ports");
	if (n > BOARD_MAX_PORTS)
		return fail(c, node, "moecard,ports", -BOARD_ETOOMANY, "%d ports, at most %d", n,
			    BOARD_MAX_PORTS);
	for (int i = 0; i < n; i++) {
		int sl = 0;
		const char *s = fdt_stringlist_get(c->fdt, node, "moecard,ports", i, &sl);
		if (!s || sl < 1 || (size_t)sl >= BOARD_NAME_MAX)
			return fail(c, node, "moecard,ports", -BOARD_EBADSIZE,
				    "entry %d empty or longer than %d", i, BOARD_NAME_MAX - 1);
		memcpy(k->port[i], s, (size_t)sl);
		k->port[i][sl] = '\0';
		for (int j = 0; j < i; j++)
			if (!strcmp(k->port[j], k->port[i]))
				return fail(c, node, "moecard,ports", -BOARD_EDUP,
					    "port \"%s\" listed twice", s);
	}
	k->n_ports = (uint32_t)n;
	if ((rc = get_prop(c, node, "moecard,port-banks", 4 * n, 0, &p, &l)))
		return rc;
	for (int i = 0; i < n; i++) {
		uint32_t ph = ld32(p, 4 * i);
		uint32_t j;
		for (j = 0; j < b->n_banks; j++)
			if (ph && b->bank[j].phandle == ph)
				break;
		if (j == b->n_banks)
			return fail(c, node, "moecard,port-banks", -BOARD_ENOBANK,
				    "port \"%s\" -> phandle 0x%x is not a moecard,mem-bank",
				    k->port[i], ph);
		k->port_bank[i] = j;
	}
	return 0;
}

static int parse_cus(const struct ctx *c, struct board_desc *b)
{
	int node = -1, rc;
	for (;;) {
		if ((rc = next_compat(c, node, "moecard,cu", &node)))
			return rc;
		if (node < 0)
			return 0;
		if (b->n_cus == BOARD_MAX_CUS)
			return fail(c, node, "compatible", -BOARD_ETOOMANY, "more than %d CUs",
				    BOARD_MAX_CUS);
		if ((rc = parse_cu(c, b, node, &b->cu[b->n_cus])))
			return rc;
		b->n_cus++;
	}
}

static int parse_dma(const struct ctx *c, struct board_desc *b)
{
	int node = -1, rc;
	for (;;) {
		if ((rc = next_compat(c, node, "moecard,dma-channel", &node)))
			return rc;
		if (node < 0)
			return 0;
		if (b->n_dma == BOARD_MAX_DMA)
			return fail(c, node, "compatible", -BOARD_ETOOMANY, "more than %d channels",
				    BOARD_MAX_DMA);
		struct board_dma *k = &b->dma[b->n_dma];
		char dir[8];
		uint64_t size;
		if ((rc = get_node_name(c, node, k->name, sizeof k->name)) ||
		    (rc = get_window(c, node, "reg", &k->base, &size)) ||
		    (rc = get_str(c, node, "moecard,direction", dir, sizeof dir)) ||
		    (rc = get_u32(c, node, "moecard,bandwidth-mbps", 0, &k->bw_mbps)) ||
		    (rc = get_u32(c, node, "moecard,latency-ns", 0, &k->latency_ns)))
			return rc;
		if (!strcmp(dir, "h2c"))
			k->to_card = 1;
		else if (!strcmp(dir, "c2h"))
			k->to_card = 0;
		else
			return fail(c, node, "moecard,direction", -BOARD_EBADVALUE,
				    "\"%s\" is not h2c or c2h", dir);
		if (!k->bw_mbps)
			return fail(c, node, "moecard,bandwidth-mbps", -BOARD_EBADVALUE, "is 0");
		b->n_dma++;
	}
}

/* Optional property name of exactly n cells, each 1..BOARD_FW_INSTR_MAX (an error names the
 * cell as what[i] and unit), into out[]: 1 absent, 0 read, or the error. */
static int get_counts(const struct ctx *c, int node, const char *name, int n,
		      const char *const *what, const char *unit, uint32_t *out)
{
	const void *p = NULL;
	int l = 0, rc = get_prop(c, node, name, 4 * n, 1, &p, &l);
	if (rc)
		return rc;
	for (int i = 0; i < n; i++) {
		uint32_t v = ld32(p, 4 * (size_t)i);
		if (!v || v > BOARD_FW_INSTR_MAX)
			return fail(c, node, name, -BOARD_EBADVALUE, "%s %s %u not in 1..%u",
				    what[i], unit, v, BOARD_FW_INSTR_MAX);
		out[i] = v;
	}
	return 0;
}

static int parse_fw(const struct ctx *c, struct board_desc *b)
{
	int node, rc, extra;
	if ((rc = next_compat(c, -1, "moecard,fw-cpu", &node)))
		return rc;
	if (node < 0)
		return fail(c, 0, "moecard,fw-cpu", -BOARD_EMISSING, "no firmware CPU node");
	if ((rc = next_compat(c, node, "moecard,fw-cpu", &extra)))
		return rc;
	if (extra >= 0)
		return fail(c, extra, "compatible", -BOARD_ETOOMANY, "more than one firmware CPU");
	struct board_fwcpu *f = &b->fw;
	if ((rc = get_str(c, node, "moecard,isa", f->isa, sizeof f->isa)) ||
	    (rc = get_window(c, node, "moecard,imem", &f->imem_base, &f->imem_size)) ||
	    (rc = get_window(c, node, "moecard,dmem", &f->dmem_base, &f->dmem_size)) ||
	    (rc = get_u64(c, node, "moecard,mailbox", &f->mailbox)) ||
	    (rc = get_clock_ref(c, b, node, &f->clock)))
		return rc;
	if (f->mailbox < f->dmem_base || f->mailbox - f->dmem_base >= f->dmem_size)
		return fail(c, node, "moecard,mailbox", -BOARD_ERANGE,
			    "0x%" PRIx64 " is outside dmem 0x%" PRIx64 "+0x%" PRIx64, f->mailbox,
			    f->dmem_base, f->dmem_size);
	/* Optional: instructions per piece of work <take start done sync> (enum board_fw_class),
	 * each 1..BOARD_FW_INSTR_MAX; absent, every command costs BOARD_FW_CMD_NS_DEFAULT. */
	const void *p = NULL;
	int l = 0;
	static const char *const what[BOARD_FW_CLASSES] = {"take", "start", "done", "sync"};
	if ((rc = get_counts(c, node, "moecard,fw-cmd-instr", BOARD_FW_CLASSES, what, "count",
			     f->cmd_instr)) < 0)
		return rc;
	/* Optional: TAKE's instructions per opcode, pairs <op count> */
	rc = get_prop(c, node, "moecard,fw-take-op-instr", 0, 1, &p, &l);
	if (rc < 0)
		return rc;
	if (rc == 0 && (l == 0 || l % 8))
		return fail(c, node, "moecard,fw-take-op-instr", -BOARD_EBADSIZE,
			    "is %d bytes, expected <op count> pairs (a multiple of 8)", l);
	if (rc == 0) {
		for (int i = 0; i + 8 <= l; i += 8) {
			uint32_t op = ld32(p, (size_t)i), v = ld32(p, (size_t)i + 4);
			if (op >= BOARD_FW_OPS)
				return fail(c, node, "moecard,fw-take-op-instr", -BOARD_EBADVALUE,
					    "opcode %u not in 0..%u", op, BOARD_FW_OPS - 1);
			if (!v || v > BOARD_FW_INSTR_MAX)
				return fail(c, node, "moecard,fw-take-op-instr", -BOARD_EBADVALUE,
					    "opcode %u: count %u not in 1..%u", op, v,
					    BOARD_FW_INSTR_MAX);
			f->take_op_instr[op] = v;
		}
	}
	/* Optional: the dispatch engine's cycles <start done sync>, each 1..BOARD_FW_INSTR_MAX */
	rc = get_counts(c, node, "moecard,dispatch-cycles", 3, what + 1, "cycles",
			f->dispatch_cycles);
	if (rc < 0)
		return rc;
	/* Optional: the engine's argument preload <go>, 1..BOARD_FW_INSTR_MAX cycles */
	static const char *const go[1] = {"go"};
	rc = get_counts(c, node, "moecard,dispatch-preload", 1, go, "cycles", &f->dispatch_go);
	if (rc < 0)
		return rc;
	if (f->dispatch_go && !f->dispatch_cycles[0])
		return fail(c, node, "moecard,dispatch-preload", -BOARD_EMISSING,
			    "needs moecard,dispatch-cycles (the engine whose writer preloads)");
	return 0;
}

/* n cycles of the firmware CPU's clock in ns (rounded), or 0 without that clock. */
static uint64_t fw_cycles_ns(const struct board_desc *b, uint64_t n)
{
	uint64_t hz = b->fw.clock < b->n_clocks ? b->clock[b->fw.clock].freq_hz : 0;
	return hz ? (n * 1000000000ull + hz / 2) / hz : 0;
}

uint64_t board_fw_cmd_ns(const struct board_desc *b, uint32_t cls)
{
	if (cls >= BOARD_FW_CLASSES)
		return 0;
	uint64_t ns = b && b->fw.cmd_instr[cls] ? fw_cycles_ns(b, b->fw.cmd_instr[cls]) : 0;
	return ns || cls != BOARD_FW_TAKE ? ns : BOARD_FW_CMD_NS_DEFAULT;
}

uint64_t board_fw_take_ns(const struct board_desc *b, uint32_t op)
{
	uint64_t ns = b && op < BOARD_FW_OPS && b->fw.take_op_instr[op]
			  ? fw_cycles_ns(b, b->fw.take_op_instr[op])
			  : 0;
	return ns ? ns : board_fw_cmd_ns(b, BOARD_FW_TAKE);
}

int board_has_dispatch_engine(const struct board_desc *b)
{
	return b && b->fw.dispatch_cycles[0] != 0;
}

uint64_t board_dispatch_ns(const struct board_desc *b, uint32_t cls, int *cpu)
{
	*cpu = 1;
	if (cls >= BOARD_FW_CLASSES)
		return 0;
	/* with the engine the CPU still decodes and checks (TAKE), into the engine's queue memory */
	if (!board_has_dispatch_engine(b) || cls == BOARD_FW_TAKE)
		return board_fw_cmd_ns(b, cls);
	*cpu = 0;
	return fw_cycles_ns(b, b->fw.dispatch_cycles[cls - 1]);
}

uint64_t board_dispatch_go_ns(const struct board_desc *b)
{
	return board_has_dispatch_engine(b) && b->fw.dispatch_go
		   ? fw_cycles_ns(b, b->fw.dispatch_go)
		   : 0;
}

static int overlaps(uint64_t a, uint64_t as, uint64_t b, uint64_t bs)
{
	return a < b + bs && b < a + as;
}

int board_validate(const struct board_desc *b, const char *src, char *err, size_t errlen)
{
	if (!b)
		return -EINVAL;
	if (!b->n_banks)
		return vfail(src, err, errlen, "/", "moecard,mem-bank", -BOARD_EEMPTY, "no banks");
	if (!b->n_cus)
		return vfail(src, err, errlen, "/", "moecard,cu", -BOARD_EEMPTY, "no CUs");
	if (!b->n_dma)
		return vfail(src, err, errlen, "/", "moecard,dma-channel", -BOARD_EEMPTY,
			     "no DMA channels");
	for (uint32_t i = 0; i < b->n_clocks; i++)
		if (!b->clock[i].freq_hz)
			return vfail(src, err, errlen, b->clock[i].name, "clock-frequency",
				     -BOARD_ECLOCK, "is 0 Hz");
	for (uint32_t i = 0; i < b->n_banks; i++) {
		const struct board_bank *x = &b->bank[i];
		if (x->base + x->size < x->base)
			return vfail(src, err, errlen, x->name, "reg", -BOARD_ERANGE, "wraps");
		for (uint32_t j = 0; j < i; j++) {
			const struct board_bank *y = &b->bank[j];
			if (overlaps(x->base, x->size, y->base, y->size))
				return vfail(src, err, errlen, x->name, "reg", -BOARD_EOVERLAP,
					     "0x%" PRIx64 "+0x%" PRIx64 " overlaps bank %s",
					     x->base, x->size, y->name);
			if (x->kind == y->kind && x->index == y->index)
				return vfail(src, err, errlen, x->name, "moecard,index",
					     -BOARD_EDUP, "%s index %u also used by bank %s",
					     board_mem_kind_name(x->kind), x->index, y->name);
		}
	}
	for (uint32_t i = 0; i < b->n_cus; i++) {
		const struct board_cu *x = &b->cu[i];
		if (x->clock >= b->n_clocks)
			return vfail(src, err, errlen, x->name, "clocks", -BOARD_ECLOCK,
				     "clock index %u out of range", x->clock);
		for (uint32_t p = 0; p < x->n_ports; p++)
			if (x->port_bank[p] >= b->n_banks)
				return vfail(src, err, errlen, x->name, "moecard,port-banks",
					     -BOARD_ENOBANK, "port %s bank %u out of range",
					     x->port[p], x->port_bank[p]);
		for (uint32_t j = 0; j < i; j++) {
			const struct board_cu *y = &b->cu[j];
			if (!strcmp(x->name, y->name))
				return vfail(src, err, errlen, x->name, "name", -BOARD_EDUP,
					     "CU name used twice");
			if (overlaps(x->base, x->size, y->base, y->size))
				return vfail(src, err, errlen, x->name, "reg", -BOARD_EOVERLAP,
					     "control window overlaps CU %s", y->name);
		}
	}
	const struct board_fwcpu *f = &b->fw;
	if (f->clock >= b->n_clocks)
		return vfail(src, err, errlen, "fw-cpu", "clocks", -BOARD_ECLOCK, "out of range");
	if (f->mailbox < f->dmem_base || f->mailbox - f->dmem_base >= f->dmem_size)
		return vfail(src, err, errlen, "fw-cpu", "moecard,mailbox", -BOARD_ERANGE,
			     "outside dmem");
	return 0;
}

/* True when the first bytes are printable text (a .dts handed where a .dtb belongs). */
static int looks_like_text(const void *p, size_t size)
{
	const unsigned char *s = p;
	size_t n = size < 64 ? size : 64;
	for (size_t i = 0; i < n; i++)
		if ((s[i] < 0x20 || s[i] > 0x7e) && s[i] != '\n' && s[i] != '\t' && s[i] != '\r')
			return 0;
	return n > 0;
}

int board_parse(const void *dtb, size_t size, const char *src, struct board_desc *b, char *err,
		size_t errlen)
{
	if (!dtb || !b)
		return -EINVAL;
	memset(b, 0, sizeof *b);
	if (err && errlen)
		err[0] = '\0';
	struct ctx c = {.fdt = dtb, .src = src, .err = err, .errlen = errlen};
	if (size < FDT_V1_SIZE || size > INT32_MAX)
		return fail(&c, -1, "header", -BOARD_EBADDTB, "%zu bytes is not a device tree",
			    size);
	/* fdt_check_full() of Debian's libfdt dereferences NULL on some pre-v17 headers (found by
	 * fuzz_board): check the header and require version 17, which dtc emits, first */
	int rc = fdt_check_header(dtb);
	if (!rc && (fdt_version(dtb) < 17 || fdt_totalsize(dtb) > size))
		rc = -FDT_ERR_BADVERSION;
	if (!rc)
		rc = fdt_check_full(dtb, size);
	if (rc == -FDT_ERR_BADMAGIC && looks_like_text(dtb, size))
		return fail(&c, -1, "header", -BOARD_EBADDTB,
			    "text, not a device tree blob (a .dts? compile it with dtc -O dtb; "
			    "make builds build/board/<card>.dtb from board/<card>.dts)");
	if (rc)
		return fail(&c, -1, "header", -BOARD_EBADDTB, "%s", fdt_strerror(rc));
	if ((rc = parse_root(&c, b)) || (rc = parse_clocks(&c, b)) || (rc = parse_banks(&c, b)) ||
	    (rc = parse_cus(&c, b)) || (rc = parse_dma(&c, b)) || (rc = parse_fw(&c, b)))
		return rc;
	return board_validate(b, src, err, errlen);
}

int board_load(const char *path, struct board_desc *b, char *err, size_t errlen)
{
	if (!path || !b)
		return -EINVAL;
	FILE *f = fopen(path, "rb");
	if (!f) {
		int e = -errno;
		if (err && errlen)
			snprintf(err, errlen, "%s: %s", path, strerror(-e));
		return e;
	}
	uint8_t *buf = malloc(BOARD_DTB_MAX + 1);
	if (!buf) {
		fclose(f);
		if (err && errlen)
			snprintf(err, errlen, "%s: out of memory", path);
		return -ENOMEM;
	}
	size_t n = fread(buf, 1, BOARD_DTB_MAX + 1, f);
	int rc = ferror(f) ? -EIO : 0;
	fclose(f);
	if (!rc && n > BOARD_DTB_MAX)
		rc = -EFBIG;
	if (rc) {
		if (err && errlen)
			snprintf(err, errlen, "%s: %s", path, strerror(-rc));
	} else {
		rc = board_parse(buf, n, path, b, err, errlen);
	}
	free(buf);
	return rc;
}

const char *board_mem_kind_name(uint32_t kind)
{
	switch (kind) {
	case BOARD_MEM_HBM:
		return "hbm";
	case BOARD_MEM_DDR:
		return "ddr";
	case BOARD_MEM_PLRAM:
		return "plram";
	default:
		return "?";
	}
}

int board_bank_name(const struct board_desc *b, uint32_t i, char *out, size_t outlen)
{
	static const char *const vitis[] = {"HBM", "DDR", "PLRAM"};
	if (!b || !out || i >= b->n_banks || b->bank[i].kind > BOARD_MEM_PLRAM)
		return -EINVAL;
	int n = snprintf(out, outlen, "%s[%u]", vitis[b->bank[i].kind], b->bank[i].index);
	return (n < 0 || (size_t)n >= outlen) ? -EINVAL : 0;
}

int board_cu_find(const struct board_desc *b, const char *name)
{
	for (uint32_t i = 0; b && name && i < b->n_cus; i++)
		if (!strcmp(b->cu[i].name, name))
			return (int)i;
	return -ENOENT;
}

int board_cu_port_find(const struct board_cu *cu, const char *name)
{
	for (uint32_t i = 0; cu && name && i < cu->n_ports; i++)
		if (!strcmp(cu->port[i], name))
			return (int)i;
	return -ENOENT;
}

int board_fit_compute(const struct board_desc *b, uint64_t resident_bytes, uint64_t expert_bytes,
		      uint64_t kv_bytes_per_token, uint64_t ctx_tokens, struct board_fit *fit)
{
	if (!b || !fit || !expert_bytes || !kv_bytes_per_token)
		return -EINVAL;
	memset(fit, 0, sizeof *fit);
	fit->usable_bytes = b->mem_bytes > BOARD_FIT_RESERVE ? b->mem_bytes - BOARD_FIT_RESERVE : 0;
	fit->resident_bytes = resident_bytes;
	fit->resident_fits = resident_bytes <= fit->usable_bytes;
	if (!fit->resident_fits)
		return 0;
	uint64_t left = fit->usable_bytes - resident_bytes;
	fit->kv_max_tokens = left / kv_bytes_per_token;
	uint64_t kv = ctx_tokens <= fit->kv_max_tokens ? ctx_tokens * kv_bytes_per_token : left;
	fit->kv_bytes = kv;
	fit->expert_slots = (left - kv) / expert_bytes;
	return 0;
}

static double gib(uint64_t x)
{
	return (double)x / (double)(1ull << 30);
}

int board_info_print(const struct board_desc *b, FILE *out)
{
	if (!b || !out)
		return -EINVAL;
	fprintf(out, "card: %s (%s), part %s, platform %s\n", b->model, b->card, b->part,
		b->platform);
	fprintf(out, "host link: PCIe Gen%u x%u, %.1f GB/s per direction\n", b->pcie_gen,
		b->pcie_lanes, b->pcie_bw_mbps / 1000.0);
	uint32_t nk[3] = {0};
	uint64_t sk[3] = {0}, bk[3] = {0};
	for (uint32_t i = 0; i < b->n_banks; i++) {
		uint32_t k = b->bank[i].kind <= 2 ? b->bank[i].kind : 0;
		nk[k]++;
		sk[k] += b->bank[i].size;
		bk[k] += b->bank[i].bw_mbps;
	}
	fprintf(out, "memory: %.2f GiB in %u banks, %.1f GB/s total\n", gib(b->mem_bytes),
		b->n_banks, (double)b->mem_bw_mbps / 1000.0);
	for (uint32_t k = 0; k < 3; k++)
		if (nk[k])
			fprintf(out, "  %-5s %3u banks, %8.2f GiB, %7.1f GB/s\n",
				board_mem_kind_name(k), nk[k], gib(sk[k]), (double)bk[k] / 1000.0);
	fprintf(out, "clocks:");
	for (uint32_t i = 0; i < b->n_clocks; i++)
		fprintf(out, " %s %.1f MHz", b->clock[i].name, b->clock[i].freq_hz / 1e6);
	fprintf(out, "\ncompute units: %u (%u SLRs)\n", b->n_cus, b->n_slr);
	for (uint32_t i = 0; i < b->n_cus; i++) {
		const struct board_cu *u = &b->cu[i];
		fprintf(out, "  %-12s %-9s @0x%08" PRIx64 " SLR%u %4u-bit", u->name, u->kernel,
			u->base, u->slr, u->axi_bits);
		if (u->tm)
			fprintf(out, " PE %ux%u", u->tm, u->tn);
		if (u->gemv_rows)
			fprintf(out, " PE %u rows", u->gemv_rows);
		if (u->gemv_f32)
			fprintf(out, " %u f32 MACs/lane", u->gemv_f32);
		if (u->lane_macs)
			fprintf(out, !strcmp(u->kernel, "mla_attn") ? " %u MACs" : " %u MACs/lane",
				u->lane_macs);
		if (u->lane_imacs)
			fprintf(out, " %u int MACs/lane", u->lane_imacs);
		if (u->lane_passes > 1)
			fprintf(out, " %u head passes", u->lane_passes);
		if (u->lane_exp_ii > 1)
			fprintf(out, " exp II %u", u->lane_exp_ii);
		if (u->no_fp8)
			fprintf(out, " no FP8 datapath");
		for (uint32_t p = 0; p < u->n_ports; p++) {
			char bank[16] = "?";
			board_bank_name(b, u->port_bank[p], bank, sizeof bank);
			fprintf(out, " %s:%s", u->port[p], bank);
		}
		fputc('\n', out);
	}
	uint32_t h2c = 0;
	uint64_t h2c_bw = 0;
	for (uint32_t i = 0; i < b->n_dma; i++)
		if (b->dma[i].to_card) {
			h2c++;
			h2c_bw += b->dma[i].bw_mbps;
		}
	fprintf(out, "dma: %u channels (%u h2c, %u c2h), h2c %.1f GB/s\n", b->n_dma, h2c,
		b->n_dma - h2c, (double)h2c_bw / 1000.0);
	fprintf(out,
		"firmware cpu: %s, imem %" PRIu64 " KiB, dmem %" PRIu64 " KiB, mailbox 0x%" PRIx64
		", %.0f MHz\n",
		b->fw.isa, b->fw.imem_size >> 10, b->fw.dmem_size >> 10, b->fw.mailbox,
		b->clock[b->fw.clock].freq_hz / 1e6);
	double us[BOARD_FW_CLASSES];
	for (uint32_t w = 0; w < BOARD_FW_CLASSES; w++)
		us[w] = board_fw_cmd_ns(b, w) / 1e3;
	if (b->fw.cmd_instr[BOARD_FW_TAKE])
		fprintf(
		    out,
		    "firmware cost: take %u, start %u, done %u, sync %u instructions (%.2f, %.2f, "
		    "%.2f, %.2f us); a command on a CU %.2f us, one the firmware completes %.2f "
		    "us\n",
		    b->fw.cmd_instr[BOARD_FW_TAKE], b->fw.cmd_instr[BOARD_FW_START],
		    b->fw.cmd_instr[BOARD_FW_DONE], b->fw.cmd_instr[BOARD_FW_SYNC],
		    us[BOARD_FW_TAKE], us[BOARD_FW_START], us[BOARD_FW_DONE], us[BOARD_FW_SYNC],
		    us[BOARD_FW_TAKE] + us[BOARD_FW_START] + us[BOARD_FW_DONE],
		    us[BOARD_FW_TAKE] + us[BOARD_FW_SYNC]);
	else
		fprintf(out, "firmware cost: %u ns per command (no moecard,fw-cmd-instr)\n",
			BOARD_FW_CMD_NS_DEFAULT);
	int nto = 0;
	for (uint32_t op = 0; op < BOARD_FW_OPS; op++)
		if (b->fw.take_op_instr[op])
			fprintf(out, "%s%s %u",
				nto++ ? ", " : "firmware take per op: ", abi_op_name(op),
				b->fw.take_op_instr[op]);
	if (nto)
		fprintf(out, " instructions (others %u)\n", b->fw.cmd_instr[BOARD_FW_TAKE]);
	if (board_has_dispatch_engine(b)) {
		int cpu;
		fprintf(out,
			"dispatch engine: start %u, done %u, sync %u cycles (%.2f, %.2f, %.2f us); "
			"the CPU only takes each command (%.2f us)\n",
			b->fw.dispatch_cycles[0], b->fw.dispatch_cycles[1],
			b->fw.dispatch_cycles[2], board_dispatch_ns(b, BOARD_FW_START, &cpu) / 1e3,
			board_dispatch_ns(b, BOARD_FW_DONE, &cpu) / 1e3,
			board_dispatch_ns(b, BOARD_FW_SYNC, &cpu) / 1e3,
			board_dispatch_ns(b, BOARD_FW_TAKE, &cpu) / 1e3);
		if (b->fw.dispatch_go)
			fprintf(
			    out,
			    "  argument preload: the start cycles written ahead; a command whose "
			    "fences are met starts after go %u cycles (%.2f us)\n",
			    b->fw.dispatch_go, board_dispatch_go_ns(b) / 1e3);
	} else {
		fprintf(out, "dispatch engine: none (the firmware starts and completes every "
			     "command)\n");
	}
	return ferror(out) ? -EIO : 0;
}

int board_fit_print(const struct board_fit *fit, uint64_t expert_bytes, uint64_t ctx_tokens,
		    FILE *out)
{
	if (!fit || !out)
		return -EINVAL;
	fprintf(out, "fit: usable %.2f GiB (%.2f GiB reserved for rings, firmware, activations)\n",
		gib(fit->usable_bytes), gib(BOARD_FIT_RESERVE));
	fprintf(out, "  resident set: %.3f GiB, %s\n", gib(fit->resident_bytes),
		fit->resident_fits ? "fits" : "DOES NOT FIT");
	if (!fit->resident_fits)
		return ferror(out) ? -EIO : 0;
	fprintf(out, "  KV cache for %" PRIu64 " tokens: %.3f GiB\n", ctx_tokens,
		gib(fit->kv_bytes));
	fprintf(out, "  expert slots: %" PRIu64 " of %.2f MiB each\n", fit->expert_slots,
		(double)expert_bytes / (1 << 20));
	fprintf(out, "  KV capacity with no expert slots: %" PRIu64 " tokens\n",
		fit->kv_max_tokens);
	return ferror(out) ? -EIO : 0;
}

/* Usable MB/s per PCIe lane and direction, by generation (after line coding). */
static const double board_pcie_lane_mbps[7] = {0, 250, 500, 985, 1969, 3938, 7563};

int board_set(struct board_desc *b, const char *key, const char *val, char *err, size_t errlen)
{
	if (!strcmp(key, "dispatch")) { /* the dispatch engine on (its tree's cycles) or off */
		static const uint32_t dflt[3] = {BOARD_DISPATCH_START, BOARD_DISPATCH_DONE,
						 BOARD_DISPATCH_SYNC};
		if (!strcmp(val, "firmware")) {
			memset(b->fw.dispatch_cycles, 0, sizeof b->fw.dispatch_cycles);
			b->fw.dispatch_go = 0;
		} else if (!strcmp(val, "engine") || !strcmp(val, "preload")) {
			if (!board_has_dispatch_engine(b))
				memcpy(b->fw.dispatch_cycles, dflt, sizeof dflt);
			/* engine: the start cycles on every start's path; preload: ahead */
			b->fw.dispatch_go = !strcmp(val, "engine") ? 0
					    : b->fw.dispatch_go	   ? b->fw.dispatch_go
								   : BOARD_DISPATCH_GO;
		} else {
			snprintf(err, errlen, "--set dispatch=%s: engine, preload or firmware",
				 val);
			return -EINVAL;
		}
		return 0;
	}
	char *end;
	errno = 0;
	double v = strtod(val, &end);
	if (end == val || *end || errno || !(v > 0) || v > 1e9) {
		snprintf(err, errlen, "--set %s=%s: not a positive number", key, val);
		return -EINVAL;
	}
	if (!strcmp(key, "hbm_gbps")) { /* total HBM bandwidth, spread evenly over the HBM banks */
		uint32_t n = 0;
		for (uint32_t i = 0; i < b->n_banks; i++)
			n += b->bank[i].kind == BOARD_MEM_HBM;
		if (!n) {
			snprintf(err, errlen, "--set hbm_gbps: the board %s has no HBM", b->model);
			return -EINVAL;
		}
		b->mem_bw_mbps = 0;
		for (uint32_t i = 0; i < b->n_banks; i++) {
			if (b->bank[i].kind == BOARD_MEM_HBM)
				b->bank[i].bw_mbps = (uint32_t)(v * 1000 / n + 0.5);
			b->mem_bw_mbps += b->bank[i].bw_mbps;
		}
	} else if (!strcmp(key, "mem_eff_pct")) {
		if (v > 100) {
			snprintf(err, errlen, "--set mem_eff_pct=%s: above 100", val);
			return -EINVAL;
		}
		b->mem_eff_pct = (uint32_t)v;
	} else if (!strcmp(key, "pcie_gen") || !strcmp(key, "pcie_lanes")) {
		int gen = !strcmp(key, "pcie_gen");
		if (v != (uint32_t)v || (gen && v > 6) || (!gen && v > 16)) {
			snprintf(err, errlen, "--set %s=%s: %s", key, val,
				 gen ? "a generation 1..6" : "1..16 lanes");
			return -EINVAL;
		}
		double old =
		    board_pcie_lane_mbps[b->pcie_gen <= 6 ? b->pcie_gen : 6] * b->pcie_lanes;
		if (gen)
			b->pcie_gen = (uint32_t)v;
		else
			b->pcie_lanes = (uint32_t)v;
		double nw = board_pcie_lane_mbps[b->pcie_gen] * b->pcie_lanes,
		       f = old > 0 ? nw / old : 1;
		b->pcie_bw_mbps = (uint32_t)(b->pcie_bw_mbps * f + 0.5);
		for (uint32_t i = 0; i < b->n_dma; i++)
			b->dma[i].bw_mbps = (uint32_t)(b->dma[i].bw_mbps * f + 0.5);
	} else if (!strcmp(key, "clock_mhz")) { /* the clocks the CUs run on */
		for (uint32_t c = 0; c < b->n_clocks; c++) {
			int used = 0;
			for (uint32_t i = 0; i < b->n_cus; i++)
				used |= b->cu[i].clock == c;
			if (used)
				b->clock[c].freq_hz = (uint32_t)(v * 1e6 + 0.5);
		}
	} else if (!strcmp(key, "fw_mhz")) {
		b->clock[b->fw.clock].freq_hz = (uint32_t)(v * 1e6 + 0.5);
	} else if (!strcmp(key, "lanes")) { /* the GEMV and striped attention CUs' lanes */
		uint32_t want = (uint32_t)v, had = 0;
		for (uint32_t i = 0; i < b->n_cus; i++) {
			struct board_cu *cu = &b->cu[i];
			uint32_t o = 0;
			for (uint32_t j = 0; j < cu->n_ports; j++) {
				unsigned l;
				char tail;
				int lane = sscanf(cu->port[j], "gmem_l%u%c", &l, &tail) == 1;
				if (lane && l >= want)
					continue;
				if (lane && l + 1 > had)
					had = l + 1;
				if (o != j) {
					memcpy(cu->port[o], cu->port[j], sizeof cu->port[o]);
					cu->port_bank[o] = cu->port_bank[j];
				}
				o++;
			}
			cu->n_ports = o;
		}
		if (v != want || want < 1 || want > had) {
			snprintf(err, errlen, "--set lanes=%s: 1..%u (the board's lanes)", val,
				 had);
			return -EINVAL;
		}
	} else if (!strcmp(key, "gemv_rows") || !strcmp(key, "gemv_f32")) {
		/* the GEMV CUs' PE: the rows of x it meets a beat with a cycle, or its f32 products
		 * a lane a cycle */
		int rows = !strcmp(key, "gemv_rows");
		uint32_t n = 0, hi = rows ? 16 : 128;
		if (v != (uint32_t)v || v > hi || (!rows && v < 1) ||
		    ((uint32_t)v & ((uint32_t)v - 1))) {
			snprintf(err, errlen, "--set %s=%s: a power of two in 1..%u", key, val, hi);
			return -EINVAL;
		}
		for (uint32_t i = 0; i < b->n_cus; i++)
			if (!strcmp(b->cu[i].kernel, "fp8_gemv")) {
				*(rows ? &b->cu[i].gemv_rows : &b->cu[i].gemv_f32) = (uint32_t)v;
				n++;
			}
		if (!n) {
			snprintf(err, errlen, "--set %s: the board %s has no fp8_gemv CU", key,
				 b->model);
			return -EINVAL;
		}
	} else {
		snprintf(err, errlen,
			 "--set %s: unknown; board keys are hbm_gbps, mem_eff_pct, pcie_gen, "
			 "pcie_lanes, clock_mhz, fw_mhz, lanes, gemv_rows, gemv_f32",
			 key);
		return -EINVAL;
	}
	return board_validate(b, "--set", err, errlen);
}

int board_set_list(struct board_desc *b, const char *list, char *err, size_t errlen)
{
	char buf[512];
	if (!list || !*list)
		return 0;
	if (strlen(list) >= sizeof buf) {
		snprintf(err, errlen, "--set: too long");
		return -EINVAL;
	}
	strcpy(buf, list);
	for (char *save = NULL, *kv = strtok_r(buf, ",", &save); kv;
	     kv = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(kv, '=');
		if (!eq) {
			snprintf(err, errlen, "--set %s: not KEY=VALUE", kv);
			return -EINVAL;
		}
		*eq = 0;
		int r = board_set(b, kv, eq + 1, err, errlen);
		if (r)
			return r;
	}
	return 0;
}
