/*
 * test_board_res.c - unit tests of the resource estimate (board_res.c) and of the root property
 * moecard,part-resources: the shipped cards' totals and fit verdicts, monotonicity in the build
 * parameters, the fit rule's edges, and the parser's checks of the property.
 */
#include <errno.h>
#include <libfdt.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "board.h"
#include "board_res.h"

static struct board_desc desc;

static void load(const char *card, struct board_desc *b)
{
	char path[512], err[BOARD_ERR_MAX];
	const char *dir = getenv("B") ? getenv("B") : "build";
	snprintf(path, sizeof path, "%s/board/%s.dtb", dir, card);
	int rc = board_load(path, b, err, sizeof err);
	if (rc)
		fail_msg("%s", err);
}

static int cu_of(const struct board_desc *b, const char *kernel)
{
	for (uint32_t i = 0; i < b->n_cus; i++)
		if (!strcmp(b->cu[i].kernel, kernel))
			return (int)i;
	fail_msg("no %s CU", kernel);
	return -1;
}

/* Every shipped card carries its part's capacities, every CU has an estimate, and the total is
 * the sum of the CUs. The verdicts are the model's current finding: the U55C, U280 and V80 trees
 * fit by the rule, the emulated card's reference tree does not (docs/boards.md, Resource
 * estimate); this test pins that so a change of model or tree shows up here. */
static void test_cards(void **state)
{
	(void)state;
	static const struct {
		const char *card;
		uint32_t dsp, lut;
		int fits;
	} want[] = {
	    {"emu", 9024, 1303680, 0},
	    {"u55c", 9024, 1303680, 1},
	    {"u280", 9024, 1303680, 1},
	    {"v80", 10848, 1754112, 1},
	};
	for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
		load(want[i].card, &desc);
		assert_int_equal(desc.part_dsp, want[i].dsp);
		assert_int_equal(desc.part_lut, want[i].lut);
		struct board_res t, sum = {0};
		assert_int_equal(board_res_total(&desc, NULL, &t), 0);
		for (uint32_t c = 0; c < desc.n_cus; c++) {
			struct board_res r;
			assert_int_equal(board_res_cu(&desc, &desc.cu[c], NULL, &r), 0);
			assert_true(r.lut > 0);
			sum.dsp += r.dsp;
			sum.bram36 += r.bram36;
			sum.uram += r.uram;
			sum.lut += r.lut;
		}
		assert_true(!memcmp(&t, &sum, sizeof t));
		assert_int_equal(board_res_fits(&desc, &t), want[i].fits);
	}
}

/* The fit rule's edges: exactly 70% of DSP and URAM and 80% of LUT and BRAM fit; one more of any
 * does not; no part figures gives -ENODATA. */
static void test_fit_rule(void **state)
{
	(void)state;
	struct board_desc *b = &desc;
	memset(b, 0, sizeof *b);
	b->part_dsp = 1000;
	b->part_bram36 = 1000;
	b->part_uram = 1000;
	b->part_lut = 1000;
	struct board_res t = {700, 800, 700, 800};
	assert_int_equal(board_res_fits(b, &t), 1);
	t.dsp++;
	assert_int_equal(board_res_fits(b, &t), 0);
	t.dsp--;
	t.uram++;
	assert_int_equal(board_res_fits(b, &t), 0);
	t.uram--;
	t.lut++;
	assert_int_equal(board_res_fits(b, &t), 0);
	t.lut--;
	t.bram36++;
	assert_int_equal(board_res_fits(b, &t), 0);
	b->part_dsp = 0;
	assert_int_equal(board_res_fits(b, &t), -ENODATA);
	assert_int_equal(board_res_fits(NULL, &t), -EINVAL);
}

/* Larger parameters never cost less: more PE rows or columns, more MACs per lane, more lanes,
 * more GEMV rows, a wider port; and a PE array costs more LUTs per PE than nothing. */
static void test_monotonic(void **state)
{
	(void)state;
	for (int fam = 0; fam < 2; fam++) {
		load(fam ? "v80" : "u55c", &desc);
		struct board_cu cu = desc.cu[cu_of(&desc, "fp8_gemm")];
		struct board_res a, r;
		cu.tm = 4;
		cu.tn = 16;
		assert_int_equal(board_res_cu(&desc, &cu, NULL, &a), 0);
		for (int step = 0; step < 6; step++) {
			if (step % 2)
				cu.tm *= 2;
			else
				cu.tn *= 2;
			assert_int_equal(board_res_cu(&desc, &cu, NULL, &r), 0);
			assert_true(r.lut > a.lut);
			assert_true(r.dsp >= a.dsp && r.bram36 >= a.bram36 && r.uram >= a.uram);
			a = r;
		}
		struct board_cu ln = desc.cu[cu_of(&desc, "mla_attn_lanes")];
		/* two head passes put 64 MACs a lane's accumulator banks (4 KB) in BRAM36s instead
		 * of URAMs */
		ln.lane_macs = 64;
		ln.lane_passes = 1;
		assert_int_equal(board_res_cu(&desc, &ln, NULL, &a), 0);
		ln.lane_passes = 2;
		assert_int_equal(board_res_cu(&desc, &ln, NULL, &r), 0);
		assert_true(r.uram < a.uram && r.bram36 > a.bram36 && r.dsp == a.dsp);
		/* an exp unit of 9 cycles an exp: one multiplier and one adder for hls_expf's 9
		 * and 8 (a lane's LHP units: 64 MACs, two heads a step), the rest unchanged */
		ln.lane_exp_ii = 1;
		assert_int_equal(board_res_cu(&desc, &ln, NULL, &a), 0);
		ln.lane_exp_ii = 9;
		assert_int_equal(board_res_cu(&desc, &ln, NULL, &r), 0);
		uint64_t units = (uint64_t)(ln.n_ports - 2) * 2, per = fam ? 15 : 38;
		assert_true(a.dsp - r.dsp == units * per);
		assert_true(r.bram36 == a.bram36 && r.uram == a.uram && r.lut < a.lut);
		ln.lane_exp_ii = 0;
		/* one pass, wider: more DSPs, LUTs and memory blocks (past 64 MACs the banks are small
		 * enough for BRAM36s: URAMs give way to more BRAM36s) */
		ln.lane_passes = 1;
		ln.lane_macs = 1;
		assert_int_equal(board_res_cu(&desc, &ln, NULL, &a), 0);
		for (uint32_t m = 2; m <= 512; m *= 2) {
			ln.lane_macs = m;
			assert_int_equal(board_res_cu(&desc, &ln, NULL, &r), 0);
			assert_true(r.dsp > a.dsp);
			assert_true(r.lut >= a.lut && r.uram + r.bram36 >= a.uram + a.bram36);
			a = r;
		}
		/* fewer lanes (ports) cost less */
		ln.n_ports = 10;
		assert_int_equal(board_res_cu(&desc, &ln, NULL, &r), 0);
		assert_true(r.dsp < a.dsp && r.lut < a.lut);
		struct board_cu gv = desc.cu[cu_of(&desc, "fp8_gemv")];
		struct board_res_opts o = {.gemv_rows = 1};
		assert_int_equal(board_res_cu(&desc, &gv, &o, &a), 0);
		for (o.gemv_rows = 2; o.gemv_rows <= 16; o.gemv_rows *= 2) {
			assert_int_equal(board_res_cu(&desc, &gv, &o, &r), 0);
			assert_true(r.lut > a.lut && r.dsp > a.dsp);
			a = r;
		}
		gv.axi_bits = 1024;
		assert_int_equal(board_res_cu(&desc, &gv, &o, &r), 0);
		assert_true(r.lut > a.lut);
	}
}

/* Versal's one-DSP58 f32 operators cost fewer DSPs than UltraScale+'s for the same CU; an unknown
 * kernel is -ENOENT. */
static void test_family(void **state)
{
	(void)state;
	load("u55c", &desc);
	assert_int_equal(board_res_family(&desc), BOARD_RES_USP);
	struct board_cu cu = desc.cu[cu_of(&desc, "vec_ops")];
	struct board_res u, v;
	assert_int_equal(board_res_cu(&desc, &cu, NULL, &u), 0);
	snprintf(desc.part, sizeof desc.part, "xcv80-lsva4737-2MHP-e-S");
	assert_int_equal(board_res_family(&desc), BOARD_RES_VERSAL);
	assert_int_equal(board_res_cu(&desc, &cu, NULL, &v), 0);
	assert_true(v.dsp < u.dsp);
	snprintf(cu.kernel, sizeof cu.kernel, "no_such_kernel");
	assert_int_equal(board_res_cu(&desc, &cu, NULL, &v), -ENOENT);
	assert_int_equal(board_res_cu(NULL, &cu, NULL, &v), -EINVAL);
}

/* moecard,part-resources on an edited copy of the emulated card: absent is fine (zeros), a wrong
 * size or a zero count is rejected with the file and property named. */
static void test_parse(void **state)
{
	(void)state;
	char path[512], err[BOARD_ERR_MAX];
	const char *dir = getenv("B") ? getenv("B") : "build";
	snprintf(path, sizeof path, "%s/board/emu.dtb", dir);
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	static uint8_t raw[1 << 16], buf[1 << 16];
	size_t n = fread(raw, 1, sizeof raw, f);
	fclose(f);
	assert_true(n > 100);

	assert_int_equal(fdt_open_into(raw, buf, sizeof buf), 0);
	assert_int_equal(fdt_delprop(buf, 0, "moecard,part-resources"), 0);
	assert_int_equal(board_parse(buf, fdt_totalsize(buf), "e.dtb", &desc, err, sizeof err), 0);
	assert_int_equal(desc.part_dsp, 0);
	struct board_res t;
	assert_int_equal(board_res_total(&desc, NULL, &t), 0);
	assert_int_equal(board_res_fits(&desc, &t), -ENODATA);

	assert_int_equal(fdt_open_into(raw, buf, sizeof buf), 0);
	assert_int_equal(fdt_setprop_u64(buf, 0, "moecard,part-resources", 1), 0);
	assert_int_equal(board_parse(buf, fdt_totalsize(buf), "e.dtb", &desc, err, sizeof err),
			 -BOARD_EBADSIZE);
	assert_string_equal(err, "e.dtb: /: moecard,part-resources: is 8 bytes, expected 16");

	static const char *const what[4] = {"dsp", "bram36", "uram", "lut"};
	for (int i = 0; i < 4; i++) {
		fdt32_t v[4] = {cpu_to_fdt32(9024), cpu_to_fdt32(2016), cpu_to_fdt32(960),
				cpu_to_fdt32(1303680)};
		v[i] = cpu_to_fdt32(i == 3 ? 100000001u : 0u);
		assert_int_equal(fdt_open_into(raw, buf, sizeof buf), 0);
		assert_int_equal(fdt_setprop(buf, 0, "moecard,part-resources", v, sizeof v), 0);
		assert_int_equal(
		    board_parse(buf, fdt_totalsize(buf), "e.dtb", &desc, err, sizeof err),
		    -BOARD_EBADVALUE);
		assert_non_null(strstr(err, "e.dtb: /: moecard,part-resources: "));
		assert_non_null(strstr(err, what[i]));
	}
}

/* The printed table names every CU, the part line, the rule and a verdict. */
static void test_print(void **state)
{
	(void)state;
	load("u280", &desc);
	char *txt = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&txt, &len);
	assert_non_null(m);
	assert_int_equal(board_res_print(&desc, NULL, m), 0);
	fclose(m);
	for (uint32_t i = 0; i < desc.n_cus; i++)
		assert_non_null(strstr(txt, desc.cu[i].name));
	assert_non_null(strstr(txt, "fraction of the part"));
	assert_non_null(strstr(txt, "fit rule: DSP and URAM <= 70%, LUT and BRAM36 <= 80%"));
	assert_non_null(strstr(txt, "verdict: "));
	assert_non_null(strstr(txt, "estimates until Vitis reports utilization"));
	/* the GEMV's f32 products are in the figures, and their share is named */
	assert_non_null(strstr(txt, "fp8_gemv_1: of its figures, the f32 products"));
	assert_null(strstr(txt, "NOT in the figures"));
	free(txt);
	assert_int_equal(board_res_print(NULL, NULL, stdout), -EINVAL);
}

/* The GEMV's f32 products: moecard,gemv-f32-macs multiply-adds a lane and PE row (else a beat's
 * values), in the CU's estimate; other kernels none. */
static void test_gemv_f32(void **state)
{
	(void)state;
	load("u55c", &desc);
	struct board_res r, w;
	int seen = 0;
	for (uint32_t i = 0; i < desc.n_cus; i++) {
		const struct board_cu *cu = &desc.cu[i];
		if (strcmp(cu->kernel, "fp8_gemv")) {
			assert_int_equal(board_res_gemv_f32(&desc, cu, &r), -ENOENT);
			continue;
		}
		seen = 1;
		assert_int_equal(board_res_gemv_f32(&desc, cu, &r), 0);
		/* twice the rows, twice the products */
		struct board_cu two = *cu;
		two.gemv_rows = (cu->gemv_rows ? cu->gemv_rows : 1) * 2;
		assert_int_equal(board_res_gemv_f32(&desc, &two, &w), 0);
		assert_true(r.dsp > 0 && w.dsp == 2 * r.dsp && w.lut == 2 * r.lut);
		/* twice the products a cycle: more, and counted in the CU's estimate */
		struct board_cu wide = *cu;
		struct board_res a, b;
		wide.gemv_f32 = 4;
		assert_int_equal(board_res_gemv_f32(&desc, &wide, &w), 0);
		assert_int_equal(board_res_cu(&desc, &wide, NULL, &a), 0);
		wide.gemv_f32 = 8;
		assert_int_equal(board_res_gemv_f32(&desc, &wide, &r), 0);
		assert_int_equal(board_res_cu(&desc, &wide, NULL, &b), 0);
		assert_true(r.dsp > w.dsp && r.lut > w.lut);
		assert_true(b.dsp - a.dsp == r.dsp - w.dsp && b.lut - a.lut == r.lut - w.lut);
	}
	assert_true(seen);
	assert_int_equal(board_res_gemv_f32(NULL, desc.cu, &r), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_cards),     cmocka_unit_test(test_fit_rule),
	    cmocka_unit_test(test_monotonic), cmocka_unit_test(test_family),
	    cmocka_unit_test(test_parse),     cmocka_unit_test(test_print),
	    cmocka_unit_test(test_gemv_f32),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
