/*
 * xclbin.c - writes a metadata-only xclbin (an axlf container, XRT's xclbin.h) for a board, and
 * reads sections back. The file has no bitstream: it carries what XRT needs to open kernels and
 * place buffers (IP_LAYOUT, MEM_TOPOLOGY, CONNECTIVITY, CLOCK_FREQ_TOPOLOGY, EMBEDDED_METADATA),
 * so the host control path runs against XRT's noop device and is checked by XRT's own parser.
 *
 * Layout: struct axlf (with numSections section headers) | sections, each 8-byte aligned.
 * Section contents follow xclbin.h: counts first, then arrays at their C offsets (offsetof).
 * The UUID is FNV-1a over the sections (UUID field zero), so builds are reproducible.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <xrt/xclbin.h>

#include "bitstream.h"

/* A growing byte buffer. */
struct buf {
	uint8_t *p; /* bytes */
	size_t len; /* used bytes */
	size_t cap; /* allocated bytes */
	int oom;    /* 1 after an allocation failure */
};

static void *buf_grow(struct buf *b, size_t n)
{
	if (b->oom)
		return NULL;
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->len + n)
			cap *= 2;
		uint8_t *p = realloc(b->p, cap);
		if (!p) {
			b->oom = 1;
			return NULL;
		}
		b->p = p;
		b->cap = cap;
	}
	void *at = b->p + b->len;
	memset(at, 0, n);
	b->len += n;
	return at;
}

static void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	char *at = buf_grow(b, (size_t)n + 1);
	if (!at)
		return;
	va_start(ap, fmt);
	vsnprintf(at, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len--; /* drop the NUL; the next write continues the text */
}

static uint8_t mem_type(uint32_t kind)
{
	switch (kind) {
	case BOARD_MEM_HBM:
		return MEM_HBM;
	case BOARD_MEM_DDR:
		return MEM_DDR4;
	default:
		return MEM_DRAM; /* PLRAM appears as MEM_DRAM in Vitis xclbins */
	}
}

static int bank_used(const struct board_desc *b, uint32_t bank)
{
	for (uint32_t c = 0; c < b->n_cus; c++)
		for (uint32_t p = 0; p < b->cu[c].n_ports; p++)
			if (b->cu[c].port_bank[p] == bank)
				return 1;
	return 0;
}

static void sec_mem_topology(const struct board_desc *b, struct buf *s)
{
	size_t off = offsetof(struct mem_topology, m_mem_data);
	struct mem_topology *t = buf_grow(s, off + b->n_banks * sizeof(struct mem_data));
	if (!t)
		return;
	t->m_count = (int32_t)b->n_banks;
	for (uint32_t i = 0; i < b->n_banks; i++) {
		struct mem_data *m = &t->m_mem_data[i];
		m->m_type = mem_type(b->bank[i].kind);
		m->m_used = (uint8_t)bank_used(b, i);
		m->m_size = b->bank[i].size >> 10; /* KiB, as xclbin.h says */
		m->m_base_address = b->bank[i].base;
		board_bank_name(b, i, (char *)m->m_tag, sizeof m->m_tag);
	}
}

static void sec_ip_layout(const struct board_desc *b, struct buf *s)
{
	size_t off = offsetof(struct ip_layout, m_ip_data);
	struct ip_layout *t = buf_grow(s, off + b->n_cus * sizeof(struct ip_data));
	if (!t)
		return;
	t->m_count = (int32_t)b->n_cus;
	for (uint32_t i = 0; i < b->n_cus; i++) {
		struct ip_data *d = &t->m_ip_data[i];
		d->m_type = IP_KERNEL;
		/* ap_ctrl_hs handshake, interrupt enabled (HLS s_axilite return port) */
		d->properties = (AP_CTRL_HS << IP_CONTROL_SHIFT) | IP_INT_ENABLE_MASK;
		d->m_base_address = b->cu[i].base;
		snprintf((char *)d->m_name, sizeof d->m_name, "%s:%s", b->cu[i].kernel,
			 b->cu[i].name);
	}
}

static void sec_connectivity(const struct board_desc *b, struct buf *s)
{
	uint32_t n = 0;
	for (uint32_t c = 0; c < b->n_cus; c++) {
		const struct bitstream_kernel *k = bitstream_kernel_find(b->cu[c].kernel);
		for (uint32_t i = 0; i < k->n_args; i++)
			n += k->arg[i].bundle != NULL;
	}
	size_t off = offsetof(struct connectivity, m_connection);
	struct connectivity *t = buf_grow(s, off + n * sizeof(struct connection));
	if (!t)
		return;
	t->m_count = (int32_t)n;
	n = 0;
	for (uint32_t c = 0; c < b->n_cus; c++) {
		const struct bitstream_kernel *k = bitstream_kernel_find(b->cu[c].kernel);
		for (uint32_t i = 0; i < k->n_args; i++) {
			int bank = bitstream_arg_bank(b, c, i);
			if (bank < 0)
				continue;
			t->m_connection[n].arg_index = (int32_t)i;
			t->m_connection[n].m_ip_layout_index = (int32_t)c;
			t->m_connection[n].mem_data_index = bank;
			n++;
		}
	}
}

/* The kernel clock (the CUs' clock) is DATA_CLK in Vitis platforms; others are system clocks. */
static void sec_clocks(const struct board_desc *b, struct buf *s)
{
	size_t off = offsetof(struct clock_freq_topology, m_clock_freq);
	struct clock_freq_topology *t = buf_grow(s, off + b->n_clocks * sizeof(struct clock_freq));
	if (!t)
		return;
	t->m_count = (int16_t)b->n_clocks;
	for (uint32_t i = 0; i < b->n_clocks; i++) {
		struct clock_freq *f = &t->m_clock_freq[i];
		f->m_freq_Mhz = (uint16_t)(b->clock[i].freq_hz / 1000000u);
		int kernel = i == b->cu[0].clock;
		f->m_type = kernel ? CT_DATA : CT_SYSTEM;
		snprintf(f->m_name, sizeof f->m_name, "%s", kernel ? "DATA_CLK" : b->clock[i].name);
	}
}

static void upper(char *dst, size_t n, const char *src)
{
	size_t i;
	for (i = 0; i + 1 < n && src[i]; i++)
		dst[i] = (char)(src[i] >= 'a' && src[i] <= 'z' ? src[i] - 32 : src[i]);
	dst[i] = '\0';
}

/* EMBEDDED_METADATA: the kernel XML XRT's xclbin parser reads (project.platform.device.core). */
static void sec_xml(const struct board_desc *b, struct buf *s)
{
	buf_printf(
	    s,
	    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	    "<project name=\"moecard\">\n"
	    "  <platform vendor=\"xilinx\" boardid=\"%s\" name=\"%s\" featureRomTime=\"0\">\n"
	    "    <version major=\"1\" minor=\"0\"/>\n"
	    "    <description/>\n"
	    "    <device name=\"fpga0\" fpgaDevice=\"%s\" addrWidth=\"0\">\n"
	    "      <core name=\"OCL_REGION_0\" target=\"hw\" type=\"clc_region\" "
	    "clockFreq=\"%uMHz\" numComputeUnits=\"%u\">\n",
	    b->card, b->platform, b->part, b->clock[b->cu[0].clock].freq_hz / 1000000u, b->n_cus);
	for (uint32_t c = 0; c < b->n_cus; c++) {
		if (!bitstream_kernel_first(b, c))
			continue; /* one <kernel> per kernel, listing all its instances */
		const struct bitstream_kernel *k = bitstream_kernel_find(b->cu[c].kernel);
		buf_printf(
		    s,
		    "        <kernel name=\"%s\" language=\"c\" "
		    "vlnv=\"xilinx.com:hls:%s:1.0\" preferredWorkGroupSizeMultiple=\"0\" "
		    "workGroupSize=\"1\" interrupt=\"true\" hwControlProtocol=\"ap_ctrl_hs\">\n",
		    k->name, k->name);
		for (uint32_t p = 0; p < b->cu[c].n_ports; p++) {
			char up[BOARD_NAME_MAX];
			upper(up, sizeof up, b->cu[c].port[p]);
			buf_printf(s,
				   "          <port name=\"M_AXI_%s\" mode=\"master\" "
				   "range=\"0xFFFFFFFFFFFFFFFF\" dataWidth=\"%u\" "
				   "portType=\"addressable\" base=\"0x0\"/>\n",
				   up, b->cu[c].axi_bits);
		}
		buf_printf(
		    s,
		    "          <port name=\"S_AXI_CONTROL\" mode=\"slave\" range=\"0x%" PRIx64
		    "\" dataWidth=\"32\" portType=\"addressable\" base=\"0x0\"/>\n",
		    b->cu[c].size);
		for (uint32_t i = 0; i < k->n_args; i++) {
			const struct bitstream_arg *a = &k->arg[i];
			char port[BOARD_NAME_MAX + 8] = "S_AXI_CONTROL";
			if (a->bundle) {
				char up[BOARD_NAME_MAX];
				upper(up, sizeof up, a->bundle);
				snprintf(port, sizeof port, "M_AXI_%s", up);
			}
			buf_printf(s,
				   "          <arg name=\"%s\" addressQualifier=\"%d\" id=\"%u\" "
				   "port=\"%s\" size=\"0x%x\" offset=\"0x%x\" hostOffset=\"0x0\" "
				   "hostSize=\"0x%x\" type=\"%s\"/>\n",
				   a->name, a->bundle ? 1 : 0, i, port, a->size, a->offset, a->size,
				   a->type);
		}
		buf_printf(s, "          <compileWorkGroupSize x=\"1\" y=\"1\" z=\"1\"/>\n"
			      "          <maxWorkGroupSize x=\"1\" y=\"1\" z=\"1\"/>\n");
		for (uint32_t j = c; j < b->n_cus; j++)
			if (!strcmp(b->cu[j].kernel, k->name))
				buf_printf(s,
					   "          <instance name=\"%s\">\n"
					   "            <addrRemap base=\"0x%" PRIx64
					   "\" range=\"0x%" PRIx64 "\" port=\"S_AXI_CONTROL\"/>\n"
					   "          </instance>\n",
					   b->cu[j].name, b->cu[j].base, b->cu[j].size);
		buf_printf(s, "        </kernel>\n");
	}
	buf_printf(s, "      </core>\n    </device>\n  </platform>\n</project>\n");
}

static uint64_t fnv1a(uint64_t h, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

int bitstream_xclbin_build(const struct board_desc *b, const char *src, uint8_t **out, size_t *len)
{
	if (!b || !out || !len)
		return -EINVAL;
	char err[BOARD_ERR_MAX];
	int rc = bitstream_check(b, src, err, sizeof err);
	if (rc)
		return rc;
	static const struct {
		uint32_t kind;	  /* axlf_section_kind */
		const char *name; /* m_sectionName */
		void (*fill)(const struct board_desc *, struct buf *);
	} secs[] = {
	    {MEM_TOPOLOGY, "MEM_TOPOLOGY", sec_mem_topology},
	    {IP_LAYOUT, "IP_LAYOUT", sec_ip_layout},
	    {CONNECTIVITY, "CONNECTIVITY", sec_connectivity},
	    {CLOCK_FREQ_TOPOLOGY, "CLOCK_FREQ_TOPO", sec_clocks},
	    {EMBEDDED_METADATA, "EMBEDDED_METADAT", sec_xml},
	};
	enum { NSEC = sizeof secs / sizeof secs[0] };
	size_t hdr = sizeof(struct axlf) + (NSEC - 1) * sizeof(struct axlf_section_header);
	struct buf f = {0};
	if (!buf_grow(&f, (hdr + 7) & ~(size_t)7))
		return -ENOMEM;
	uint64_t off[NSEC], size[NSEC];
	for (int i = 0; i < NSEC; i++) {
		struct buf s = {0};
		secs[i].fill(b, &s);
		if (s.oom || !s.len) {
			free(s.p);
			free(f.p);
			return -ENOMEM;
		}
		off[i] = f.len;
		size[i] = s.len;
		uint8_t *at = buf_grow(&f, (s.len + 7) & ~(size_t)7);
		if (at)
			memcpy(at, s.p, s.len);
		free(s.p);
	}
	if (f.oom) {
		free(f.p);
		return -ENOMEM;
	}
	struct axlf *a = (struct axlf *)f.p;
	memcpy(a->m_magic, "xclbin2", 8);
	a->m_signature_length = -1;
	memset(a->reserved, 0xff, sizeof a->reserved);
	memset(a->m_keyBlock, 0xff, sizeof a->m_keyBlock);
	a->m_header.m_length = f.len;
	a->m_header.m_versionMajor = 2;
	a->m_header.m_versionMinor = 13;
	a->m_header.m_mode = XCLBIN_FLAT;
	snprintf((char *)a->m_header.m_platformVBNV, sizeof a->m_header.m_platformVBNV, "%s",
		 b->platform);
	a->m_header.m_numSections = NSEC;
	for (int i = 0; i < NSEC; i++) {
		struct axlf_section_header *h = &a->m_sections[i];
		h->m_sectionKind = secs[i].kind;
		strncpy(h->m_sectionName, secs[i].name, sizeof h->m_sectionName);
		h->m_sectionOffset = off[i];
		h->m_sectionSize = size[i];
	}
	uint64_t h1 = fnv1a(0xcbf29ce484222325ull, f.p, f.len);
	uint64_t h2 = fnv1a(h1 ^ 0x9e3779b97f4a7c15ull, f.p + hdr, f.len - hdr);
	uint8_t uuid[16];
	for (int i = 0; i < 8; i++) {
		uuid[i] = (uint8_t)(h1 >> (8 * i));
		uuid[8 + i] = (uint8_t)(h2 >> (8 * i));
	}
	uuid[6] = (uint8_t)((uuid[6] & 0x0f) | 0x50); /* RFC 4122 name-based layout */
	uuid[8] = (uint8_t)((uuid[8] & 0x3f) | 0x80);
	memcpy(a->m_header.uuid, uuid, 16);
	a->m_uniqueId = h1;
	*out = f.p;
	*len = f.len;
	return 0;
}

int bitstream_xclbin_section(const void *xb, size_t len, uint32_t kind, const void **data,
			     size_t *size)
{
	const struct axlf *a = xb;
	if (!xb || len < sizeof(struct axlf) || memcmp(a->m_magic, "xclbin2", 8) != 0 ||
	    a->m_header.m_length > len || a->m_header.m_numSections == 0 ||
	    a->m_header.m_numSections >
		(len - sizeof(struct axlf)) / sizeof(struct axlf_section_header) + 1)
		return -EINVAL;
	for (uint32_t i = 0; i < a->m_header.m_numSections; i++) {
		const struct axlf_section_header *h = &a->m_sections[i];
		if (h->m_sectionKind != kind)
			continue;
		if (h->m_sectionOffset > len || h->m_sectionSize > len - h->m_sectionOffset)
			return -EINVAL;
		*data = (const uint8_t *)xb + h->m_sectionOffset;
		*size = h->m_sectionSize;
		return 0;
	}
	return -ENOENT;
}

int bitstream_xclbin_validate(const void *xb, size_t len)
{
	const struct axlf *a = xb;
	if (!xb || len < sizeof(struct axlf) || memcmp(a->m_magic, "xclbin2", 8) != 0 ||
	    a->m_header.m_length != len || a->m_header.m_numSections == 0 ||
	    a->m_header.m_numSections >
		(len - sizeof(struct axlf)) / sizeof(struct axlf_section_header) + 1)
		return -EINVAL;
	for (uint32_t i = 0; i < a->m_header.m_numSections; i++) {
		const struct axlf_section_header *h = &a->m_sections[i];
		if (h->m_sectionOffset > len || h->m_sectionSize > len - h->m_sectionOffset)
			return -EINVAL;
	}
	return 0;
}

int bitstream_xclbin_uuid(const void *xb, size_t len, uint8_t uuid[16])
{
	const struct axlf *a = xb;
	if (!xb || len < sizeof(struct axlf) || memcmp(a->m_magic, "xclbin2", 8) != 0)
		return -EINVAL;
	memcpy(uuid, a->m_header.uuid, 16);
	return 0;
}
