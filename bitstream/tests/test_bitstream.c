/*
 * test_bitstream.c - the dts and the generated artifacts agree: for every card, the metadata
 * xclbin make built (its IP_LAYOUT, MEM_TOPOLOGY, CONNECTIVITY, CLOCK_FREQ_TOPOLOGY and kernel XML,
 * read back with this project's section reader) and connectivity.cfg carry exactly the dts CU
 * names, base addresses, banks and clocks. Also: builds are reproducible, the UUID depends on the
 * content, malformed images and inconsistent boards are rejected.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <xrt/xclbin.h>

#include "bitstream/bitstream.h"
#include "board.h"

static const char *const cards[] = {"emu", "u55c", "u280", "v80"};

static char *slurp(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	char *buf = malloc(1 << 20);
	*n = fread(buf, 1, (1 << 20) - 1, f);
	buf[*n] = '\0';
	fclose(f);
	return buf;
}

static void load(const char *card, struct board_desc *b, char **xb, size_t *xn, char **cfg)
{
	const char *bd = getenv("B") ? getenv("B") : "build";
	char p[512], err[BOARD_ERR_MAX];
	snprintf(p, sizeof p, "%s/board/%s.dtb", bd, card);
	assert_int_equal(board_load(p, b, err, sizeof err), 0);
	snprintf(p, sizeof p, "%s/bitstream/%s.xclbin", bd, card);
	*xb = slurp(p, xn);
	assert_non_null(*xb);
	size_t cn;
	snprintf(p, sizeof p, "%s/bitstream/%s/connectivity.cfg", bd, card);
	*cfg = slurp(p, &cn);
	assert_non_null(*cfg);
}

static const void *section(const char *xb, size_t n, uint32_t kind, size_t *size)
{
	const void *d = NULL;
	assert_int_equal(bitstream_xclbin_section(xb, n, kind, &d, size), 0);
	return d;
}

static void test_xclbin_matches_dts(void **state)
{
	(void)state;
	static struct board_desc b;
	for (size_t c = 0; c < sizeof cards / sizeof cards[0]; c++) {
		char *xb, *cfg;
		size_t n, sz;
		load(cards[c], &b, &xb, &n, &cfg);
		assert_int_equal(bitstream_xclbin_validate(xb, n), 0);
		const struct axlf *a = (const struct axlf *)xb;
		assert_string_equal((const char *)a->m_header.m_platformVBNV, b.platform);

		const struct ip_layout *ip = section(xb, n, IP_LAYOUT, &sz);
		assert_int_equal(ip->m_count, (int)b.n_cus);
		assert_true(sz >= offsetof(struct ip_layout, m_ip_data) +
				      b.n_cus * sizeof(struct ip_data));
		for (uint32_t i = 0; i < b.n_cus; i++) {
			char want[80];
			snprintf(want, sizeof want, "%s:%s", b.cu[i].kernel, b.cu[i].name);
			assert_string_equal((const char *)ip->m_ip_data[i].m_name, want);
			assert_true(ip->m_ip_data[i].m_base_address == b.cu[i].base);
			assert_int_equal(ip->m_ip_data[i].m_type, IP_KERNEL);
		}

		const struct mem_topology *mt = section(xb, n, MEM_TOPOLOGY, &sz);
		assert_int_equal(mt->m_count, (int)b.n_banks);
		for (uint32_t i = 0; i < b.n_banks; i++) {
			char tag[16];
			board_bank_name(&b, i, tag, sizeof tag);
			assert_string_equal((const char *)mt->m_mem_data[i].m_tag, tag);
			assert_true(mt->m_mem_data[i].m_size == b.bank[i].size >> 10);
			assert_true(mt->m_mem_data[i].m_base_address == b.bank[i].base);
		}

		const struct connectivity *cn = section(xb, n, CONNECTIVITY, &sz);
		int total = 0;
		for (uint32_t i = 0; i < b.n_cus; i++) {
			const struct bitstream_kernel *k = bitstream_kernel_find(b.cu[i].kernel);
			for (uint32_t j = 0; j < k->n_args; j++)
				total += k->arg[j].bundle != NULL;
		}
		assert_int_equal(cn->m_count, total);
		for (int i = 0; i < cn->m_count; i++) {
			const struct connection *e = &cn->m_connection[i];
			int bank = bitstream_arg_bank(&b, (uint32_t)e->m_ip_layout_index,
						      (uint32_t)e->arg_index);
			assert_int_equal(e->mem_data_index, bank);
			/* the bank a CU uses is marked used; the sp= line names it */
			assert_int_equal(mt->m_mem_data[bank].m_used, 1);
			const struct bitstream_kernel *k =
			    bitstream_kernel_find(b.cu[e->m_ip_layout_index].kernel);
			char line[160], tag[16];
			board_bank_name(&b, (uint32_t)bank, tag, sizeof tag);
			snprintf(line, sizeof line, "\nsp=%s.%s:%s\n",
				 b.cu[e->m_ip_layout_index].name, k->arg[e->arg_index].name, tag);
			if (!strstr(cfg, line))
				fail_msg("%s: connectivity.cfg lacks %s", cards[c], line + 1);
		}

		const struct clock_freq_topology *ck = section(xb, n, CLOCK_FREQ_TOPOLOGY, &sz);
		assert_int_equal(ck->m_count, (int)b.n_clocks);
		uint32_t kc = b.cu[0].clock;
		assert_int_equal(ck->m_clock_freq[kc].m_freq_Mhz * 1000000u, b.clock[kc].freq_hz);
		assert_string_equal(ck->m_clock_freq[kc].m_name, "DATA_CLK");

		size_t xl;
		const char *xml = section(xb, n, EMBEDDED_METADATA, &xl);
		char *x = strndup(xml, xl);
		for (uint32_t i = 0; i < b.n_cus; i++) {
			char inst[160], line[160];
			snprintf(inst, sizeof inst, "<instance name=\"%s\">", b.cu[i].name);
			assert_non_null(strstr(x, inst));
			snprintf(line, sizeof line, "\nslr=%s:SLR%u\n", b.cu[i].name, b.cu[i].slr);
			assert_non_null(strstr(cfg, line));
			snprintf(line, sizeof line, "\nfreqHz=%u:%s\n",
				 b.clock[b.cu[i].clock].freq_hz, b.cu[i].name);
			assert_non_null(strstr(cfg, line));
			const struct bitstream_kernel *k = bitstream_kernel_find(b.cu[i].kernel);
			for (uint32_t j = 0; j < k->n_args; j++) {
				snprintf(line, sizeof line,
					 "<arg name=\"%s\" addressQualifier=\"%d\" "
					 "id=\"%u\"",
					 k->arg[j].name, k->arg[j].bundle ? 1 : 0, j);
				assert_non_null(strstr(x, line));
				snprintf(line, sizeof line,
					 "offset=\"0x%x\" hostOffset=\"0x0\" "
					 "hostSize=\"0x%x\" type=\"%s\"/>",
					 k->arg[j].offset, k->arg[j].size, k->arg[j].type);
				assert_non_null(strstr(x, line));
			}
		}
		free(x);
		/* nk= counts per kernel */
		for (uint32_t i = 0; i < b.n_cus; i++) {
			uint32_t cnt = 0;
			for (uint32_t j = 0; j < b.n_cus; j++)
				cnt += !strcmp(b.cu[j].kernel, b.cu[i].kernel);
			char line[80];
			snprintf(line, sizeof line, "\nnk=%s:%u:", b.cu[i].kernel, cnt);
			assert_non_null(strstr(cfg, line));
		}
		free(xb);
		free(cfg);
	}
}

static void test_reproducible_uuid(void **state)
{
	(void)state;
	static struct board_desc b;
	char *xb, *cfg;
	size_t n;
	load("u55c", &b, &xb, &n, &cfg);
	uint8_t *x1, *x2, u0[16], u1[16], u2[16];
	size_t n1, n2;
	assert_int_equal(bitstream_xclbin_build(&b, "t", &x1, &n1), 0);
	assert_true(n1 == n && memcmp(x1, xb, n) == 0); /* same bytes as the file make wrote */
	b.bank[0].size >>= 1;				/* any change moves the UUID */
	assert_int_equal(bitstream_xclbin_build(&b, "t", &x2, &n2), 0);
	assert_int_equal(bitstream_xclbin_uuid(xb, n, u0), 0);
	assert_int_equal(bitstream_xclbin_uuid(x1, n1, u1), 0);
	assert_int_equal(bitstream_xclbin_uuid(x2, n2, u2), 0);
	assert_memory_equal(u0, u1, 16);
	assert_memory_not_equal(u1, u2, 16);
	free(x1);
	free(x2);
	free(xb);
	free(cfg);
}

static void test_validate_rejects(void **state)
{
	(void)state;
	static struct board_desc b;
	char *xb, *cfg;
	size_t n, sz;
	const void *d;
	load("emu", &b, &xb, &n, &cfg);
	assert_int_equal(bitstream_xclbin_validate(xb, n - 1), -EINVAL); /* truncated */
	assert_int_equal(bitstream_xclbin_section(xb, n, SOFT_KERNEL, &d, &sz), -ENOENT);
	struct axlf *a = (struct axlf *)xb;
	a->m_sections[2].m_sectionOffset = n - 4; /* section past the end */
	assert_int_equal(bitstream_xclbin_validate(xb, n), -EINVAL);
	a->m_magic[0] = 'y';
	assert_int_equal(bitstream_xclbin_validate(xb, n), -EINVAL);
	assert_int_equal(bitstream_xclbin_section(xb, n, IP_LAYOUT, &d, &sz), -EINVAL);
	assert_int_equal(bitstream_xclbin_validate(xb, 10), -EINVAL);
	free(xb);
	free(cfg);
}

static void test_check_rejects(void **state)
{
	(void)state;
	static struct board_desc b, c;
	char *xb, *cfg, err[BOARD_ERR_MAX];
	size_t n;
	load("emu", &b, &xb, &n, &cfg);
	assert_int_equal(bitstream_check(&b, "emu", err, sizeof err), 0);
	c = b;
	strcpy(c.cu[0].kernel, "fp9_gemm");
	assert_int_equal(bitstream_check(&c, "emu", err, sizeof err), -ENOENT);
	assert_non_null(strstr(err, "unknown kernel \"fp9_gemm\""));
	c = b;
	strcpy(c.cu[1].port[0], "gmem_z");
	assert_int_equal(bitstream_check(&c, "emu", err, sizeof err), -ENOENT);
	assert_non_null(strstr(err, "fp8_gemm_2: moecard,ports: \"gmem_z\""));
	c = b;
	c.cu[2].n_ports = 2; /* gmem_y left unconnected */
	assert_int_equal(bitstream_check(&c, "emu", err, sizeof err), -EINVAL);
	assert_non_null(strstr(err, "bundle \"gmem_y\""));
	uint8_t *x;
	size_t xn;
	assert_int_equal(bitstream_xclbin_build(&c, "emu", &x, &xn), -EINVAL);
	assert_int_equal(bitstream_cfg_write(&c, "emu", stderr), -EINVAL);
	assert_int_equal(bitstream_arg_bank(&b, 0, 9), -EINVAL); /* M is a scalar */
	assert_int_equal(bitstream_arg_bank(&b, 0, 2), (int)b.cu[0].port_bank[1]);
	assert_null(bitstream_kernel_find("nope"));
	free(xb);
	free(cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_xclbin_matches_dts),
	    cmocka_unit_test(test_reproducible_uuid),
	    cmocka_unit_test(test_validate_rejects),
	    cmocka_unit_test(test_check_rejects),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
