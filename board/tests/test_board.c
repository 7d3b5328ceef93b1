/*
 * test_board.c - unit tests of board.c, one small test per function (libfdt style). The good card
 * trees come from the .dtb files in $B/board (built by make); targeted failures are made by editing
 * one property of a copy of the emulated card's blob with libfdt's read-write API.
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

static char path_buf[512];
static const char *dtb_path(const char *card)
{
	const char *b = getenv("B") ? getenv("B") : "build";
	snprintf(path_buf, sizeof path_buf, "%s/board/%s.dtb", b, card);
	return path_buf;
}

/* The emulated card's blob, opened into a 64 KiB buffer so properties can be edited. */
static void *emu_blob(void)
{
	FILE *f = fopen(dtb_path("emu"), "rb");
	assert_non_null(f);
	static uint8_t raw[1 << 16];
	size_t n = fread(raw, 1, sizeof raw, f);
	fclose(f);
	assert_true(n > 100);
	void *buf = malloc(1 << 16);
	assert_non_null(buf);
	assert_int_equal(fdt_open_into(raw, buf, 1 << 16), 0);
	return buf;
}

static int parse_blob(void *fdt, struct board_desc *b, char *err)
{
	return board_parse(fdt, fdt_totalsize(fdt), "edited.dtb", b, err, BOARD_ERR_MAX);
}

static void test_strerror(void **state)
{
	(void)state;
	assert_string_equal(board_strerror(0), "success");
	for (int e = BOARD_EBASE + 1; e < BOARD_ELAST; e++) {
		const char *s = board_strerror(-e);
		assert_non_null(s);
		assert_string_not_equal(s, "unknown error");
		for (int f = BOARD_EBASE + 1; f < e; f++)
			assert_string_not_equal(s, board_strerror(-f));
	}
	assert_string_equal(board_strerror(-ENOENT), strerror(ENOENT));
	assert_string_equal(board_strerror(-BOARD_ELAST), "unknown error");
	assert_string_equal(board_strerror(5), "unknown error");
}

static void test_load_cards(void **state)
{
	(void)state;
	static const struct {
		const char *card;
		uint32_t banks, cus, dma, gen, lanes;
		uint64_t gib;
		double bw_gbs;
		const char *isa;
		uint64_t fw_ns[BOARD_FW_CLASSES]; /* firmware ns per piece of work at its clock */
	} want[] = {
	    {"emu", 32, 10, 4, 3, 16, 16, 460.0, "rv32imc", {4800, 2240, 5560, 1200}},
	    {"u55c", 32, 6, 8, 3, 16, 16, 460.0, "rv32imc", {4800, 2240, 5560, 1200}},
	    {"u280", 34, 6, 8, 3, 16, 40, 498.4, "rv32imc", {4800, 2240, 5560, 1200}},
	    {"v80", 32, 7, 8, 5, 8, 32, 819.2, "armv7-r", {2000, 933, 2317, 500}},
	};
	static struct board_desc b;
	char err[BOARD_ERR_MAX];
	for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
		int rc = board_load(dtb_path(want[i].card), &b, err, sizeof err);
		if (rc)
			print_error("%s: %s\n", want[i].card, err);
		assert_int_equal(rc, 0);
		assert_int_equal(b.n_banks, want[i].banks);
		assert_int_equal(b.n_cus, want[i].cus);
		assert_int_equal(b.n_dma, want[i].dma);
		assert_int_equal(b.pcie_gen, want[i].gen);
		assert_int_equal(b.pcie_lanes, want[i].lanes);
		assert_true(b.mem_bytes == want[i].gib << 30);
		assert_true(b.mem_bw_mbps == (uint64_t)(want[i].bw_gbs * 1000 + 0.5));
		assert_string_equal(b.fw.isa, want[i].isa);
		for (uint32_t w = 0; w < BOARD_FW_CLASSES; w++)
			assert_int_equal(board_fw_cmd_ns(&b, w), want[i].fw_ns[w]);
		int k = board_cu_find(&b, "fp8_gemm_1");
		assert_true(k >= 0);
		assert_int_equal(b.clock[b.cu[k].clock].freq_hz, 300000000);
		assert_int_equal(b.cu[k].axi_bits, 512);
		assert_true(b.fw.mailbox >= b.fw.dmem_base &&
			    b.fw.mailbox < b.fw.dmem_base + b.fw.dmem_size);
	}
}

static void test_load_errors(void **state)
{
	(void)state;
	static struct board_desc b;
	char err[BOARD_ERR_MAX];
	assert_int_equal(board_load("no/such/file.dtb", &b, err, sizeof err), -ENOENT);
	assert_non_null(strstr(err, "no/such/file.dtb"));
	assert_int_equal(board_load(NULL, &b, err, sizeof err), -EINVAL);
	/* a text file is not a device tree */
	assert_int_equal(board_load("board/board.mk", &b, err, sizeof err), -BOARD_EBADDTB);
	assert_non_null(strstr(err, "board/board.mk: "));
	/* a device tree source where a blob belongs: the message says what to do */
	assert_int_equal(board_load("board/emu.dts", &b, err, sizeof err), -BOARD_EBADDTB);
	assert_non_null(strstr(err, "board/emu.dts: "));
	assert_non_null(strstr(err, "not a device tree blob"));
	assert_non_null(strstr(err, "dtc"));
}

static void test_parse_truncated(void **state)
{
	(void)state;
	void *fdt = emu_blob();
	static struct board_desc b;
	char err[BOARD_ERR_MAX];
	assert_int_equal(parse_blob(fdt, &b, err), 0);
	uint32_t n = fdt_totalsize(fdt);
	for (uint32_t cut = 0; cut < n; cut += n / 17 + 1)
		assert_int_equal(board_parse(fdt, cut, "cut.dtb", &b, err, sizeof err),
				 -BOARD_EBADDTB);
	assert_int_equal(board_parse(NULL, 100, "x", &b, err, sizeof err), -EINVAL);
	/* no error buffer is fine */
	assert_int_equal(board_parse(fdt, 10, "x", &b, NULL, 0), -BOARD_EBADDTB);
	free(fdt);
}

/* One property edited at a time: the code and the message naming node and property. */
static void test_parse_edits(void **state)
{
	(void)state;
	static const struct {
		const char *node, *prop;
		uint32_t val; /* a u32 value to store */
		int code;
	} e[] = {
	    {"/clocks/kernel", "clock-frequency", 0, -BOARD_ECLOCK},
	    {"/memory/hbm3@60000000", "moecard,bandwidth-mbps", 0, -BOARD_EBADVALUE},
	    {"/memory/hbm3@60000000", "moecard,index", 2, -BOARD_EDUP},
	    {"/memory/hbm3@60000000", "reg", 7, -BOARD_EBADSIZE},
	    {"/compute-units/fp8_gemm_2@1810000", "moecard,slr", 3, -BOARD_EBADVALUE},
	    {"/compute-units/fp8_gemm_2@1810000", "clocks", 0x7777, -BOARD_ECLOCK},
	    {"/compute-units/fp8_gemm_2@1810000", "moecard,port-banks", 1, -BOARD_EBADSIZE},
	    {"/", "moecard,slrs", 0, -BOARD_EBADVALUE},
	    {"/dma/h2c0@0", "moecard,bandwidth-mbps", 0, -BOARD_EBADVALUE},
	    {"/firmware-cpu", "moecard,fw-cmd-instr", 1280, -BOARD_EBADSIZE},
	    {"/compute-units/fp8_gemv_1@1900000", "moecard,gemv-rows", 3, -BOARD_EBADVALUE},
	    {"/compute-units/fp8_gemv_1@1900000", "moecard,gemv-rows", 32, -BOARD_EBADVALUE},
	    {"/compute-units/fp8_gemv_1@1900000", "moecard,gemv-f32-macs", 0, -BOARD_EBADVALUE},
	    {"/compute-units/fp8_gemv_1@1900000", "moecard,gemv-f32-macs", 6, -BOARD_EBADVALUE},
	    {"/compute-units/fp8_gemv_1@1900000", "moecard,gemv-f32-macs", 256, -BOARD_EBADVALUE},
	    {"/compute-units/mla_attn_lanes_1@1920000", "moecard,lane-macs", 24, -BOARD_EBADVALUE},
	};
	static struct board_desc b;
	char err[BOARD_ERR_MAX];
	for (size_t i = 0; i < sizeof e / sizeof e[0]; i++) {
		void *fdt = emu_blob();
		int node = fdt_path_offset(fdt, e[i].node);
		assert_true(node >= 0);
		assert_int_equal(fdt_setprop_u32(fdt, node, e[i].prop, e[i].val), 0);
		int rc = parse_blob(fdt, &b, err);
		if (rc != e[i].code)
			print_error("%s %s: got %d want %d: %s\n", e[i].node, e[i].prop, rc,
				    e[i].code, err);
		assert_int_equal(rc, e[i].code);
		assert_non_null(strstr(err, e[i].prop));
		free(fdt);
	}
	/* removing a required property */
	void *fdt = emu_blob();
	int node = fdt_path_offset(fdt, "/firmware-cpu");
	assert_int_equal(fdt_delprop(fdt, node, "moecard,isa"), 0);
	assert_int_equal(parse_blob(fdt, &b, err), -BOARD_EMISSING);
	assert_string_equal(err,
			    "edited.dtb: /firmware-cpu: moecard,isa: required property is missing");
	free(fdt);
}

/* moecard,fw-cmd-instr: the time per piece of work it gives, its range, and the default without
 * it. */
static void test_fw_cmd(void **state)
{
	(void)state;
	static struct board_desc b;
	char err[BOARD_ERR_MAX];
	static const struct {
		uint32_t v[BOARD_FW_CLASSES]; /* take start done sync */
		int code;
		const char *what; /* the class an error names */
	} e[] = {
	    {{1, 1, 1, 1}, 0, NULL},
	    {{BOARD_FW_INSTR_MAX, 7, 9, 11}, 0, NULL},
	    {{0, 560, 1500, 300}, -BOARD_EBADVALUE, "take count"},
	    {{1280, 0, 1480, 290}, -BOARD_EBADVALUE, "start count"},
	    {{1280, 540, 0, 290}, -BOARD_EBADVALUE, "done count"},
	    {{1280, 540, 1480, 0}, -BOARD_EBADVALUE, "sync count"},
	    {{BOARD_FW_INSTR_MAX + 1, 540, 1480, 290}, -BOARD_EBADVALUE, "take count"},
	};
	for (size_t i = 0; i < sizeof e / sizeof e[0]; i++) {
		void *fdt = emu_blob();
		int node = fdt_path_offset(fdt, "/firmware-cpu");
		assert_true(node >= 0);
		fdt32_t v[BOARD_FW_CLASSES];
		for (uint32_t w = 0; w < BOARD_FW_CLASSES; w++)
			v[w] = cpu_to_fdt32(e[i].v[w]);
		assert_int_equal(fdt_setprop(fdt, node, "moecard,fw-cmd-instr", v, sizeof v), 0);
		int rc = parse_blob(fdt, &b, err);
		if (rc != e[i].code)
			print_error("case %zu: got %d want %d: %s\n", i, rc, e[i].code, err);
		assert_int_equal(rc, e[i].code);
		if (rc) {
			assert_non_null(strstr(err, "/firmware-cpu: moecard,fw-cmd-instr: "));
			assert_non_null(strstr(err, e[i].what));
		} else {
			/* at the emulated card's 250 MHz: 4 ns per instruction */
			for (uint32_t w = 0; w < BOARD_FW_CLASSES; w++)
				assert_int_equal(board_fw_cmd_ns(&b, w), 4ull * e[i].v[w]);
		}
		free(fdt);
	}
	/* without the property a command costs the default take time and nothing else */
	void *fdt = emu_blob();
	int node = fdt_path_offset(fdt, "/firmware-cpu");
	assert_int_equal(fdt_delprop(fdt, node, "moecard,fw-cmd-instr"), 0);
	assert_int_equal(parse_blob(fdt, &b, err), 0);
	assert_int_equal(b.fw.cmd_instr[BOARD_FW_TAKE], 0);
	assert_int_equal(board_fw_cmd_ns(&b, BOARD_FW_TAKE), BOARD_FW_CMD_NS_DEFAULT);
	assert_int_equal(board_fw_cmd_ns(&b, BOARD_FW_START), 0);
	assert_int_equal(board_fw_cmd_ns(&b, BOARD_FW_SYNC), 0);
	free(fdt);
	assert_int_equal(board_fw_cmd_ns(NULL, BOARD_FW_TAKE), BOARD_FW_CMD_NS_DEFAULT);
	assert_int_equal(board_load(dtb_path("emu"), &b, err, sizeof err), 0);
	assert_int_equal(board_fw_cmd_ns(&b, BOARD_FW_CLASSES), 0);
}

/* moecard,dispatch-cycles: the split of the work between the CPU and the engine, the range, the
 * size, and --set dispatch. */
static void test_dispatch(void **state)
{
	(void)state;
	static struct board_desc b;
	char err[BOARD_ERR_MAX];
	int cpu;
	/* the shipped tree: the CPU takes (5.16 us at 250 MHz), the engine's cycles at 4 ns */
	assert_int_equal(board_load(dtb_path("emu"), &b, err, sizeof err), 0);
	assert_true(board_has_dispatch_engine(&b));
	assert_int_equal(board_dispatch_ns(&b, BOARD_FW_TAKE, &cpu), board_fw_cmd_ns(&b, 0));
	assert_int_equal(cpu, 1);
	assert_int_equal(board_dispatch_ns(&b, BOARD_FW_START, &cpu), 4ull * BOARD_DISPATCH_START);
	assert_int_equal(cpu, 0);
	assert_int_equal(board_dispatch_ns(&b, BOARD_FW_DONE, &cpu), 4ull * BOARD_DISPATCH_DONE);
	assert_int_equal(board_dispatch_ns(&b, BOARD_FW_SYNC, &cpu), 4ull * BOARD_DISPATCH_SYNC);
	assert_int_equal(board_dispatch_ns(&b, BOARD_FW_CLASSES, &cpu), 0);
	/* dispatch=firmware: every class is the CPU's own count again */
	assert_int_equal(board_set(&b, "dispatch", "firmware", err, sizeof err), 0);
	assert_false(board_has_dispatch_engine(&b));
	for (uint32_t w = 0; w < BOARD_FW_CLASSES; w++) {
		assert_int_equal(board_dispatch_ns(&b, w, &cpu), board_fw_cmd_ns(&b, w));
		assert_int_equal(cpu, 1);
	}
	assert_int_equal(board_dispatch_go_ns(&b), 0);
	assert_int_equal(board_set(&b, "dispatch", "engine", err, sizeof err), 0);
	assert_int_equal(b.fw.dispatch_cycles[1], BOARD_DISPATCH_DONE);
	assert_int_equal(board_dispatch_go_ns(&b), 0); /* engine: no preload */
	assert_int_equal(board_set(&b, "dispatch", "preload", err, sizeof err), 0);
	assert_int_equal(board_dispatch_go_ns(&b), 4ull * BOARD_DISPATCH_GO);
	assert_int_equal(board_set(&b, "dispatch", "fast", err, sizeof err), -EINVAL);
	assert_non_null(strstr(err, "dispatch=fast"));
	/* gemv_rows: the GEMV CUs' PE rows a cycle, a power of two in 1..16 */
	assert_int_equal(board_set(&b, "gemv_rows", "8", err, sizeof err), 0);
	for (uint32_t i = 0; i < b.n_cus; i++)
		if (!strcmp(b.cu[i].kernel, "fp8_gemv"))
			assert_int_equal(b.cu[i].gemv_rows, 8);
	assert_int_equal(board_set(&b, "gemv_rows", "3", err, sizeof err), -EINVAL);
	assert_non_null(strstr(err, "gemv_rows=3"));
	assert_int_equal(board_set(&b, "gemv_rows", "32", err, sizeof err), -EINVAL);
	/* gemv_f32: the GEMV CUs' f32 products a lane a cycle, a power of two in 1..128 */
	assert_int_equal(board_set(&b, "gemv_f32", "4", err, sizeof err), 0);
	for (uint32_t i = 0; i < b.n_cus; i++)
		if (!strcmp(b.cu[i].kernel, "fp8_gemv"))
			assert_int_equal(b.cu[i].gemv_f32, 4);
	assert_int_equal(board_set(&b, "gemv_f32", "0", err, sizeof err), -EINVAL);
	assert_non_null(strstr(err, "gemv_f32=0"));
	assert_int_equal(board_set(&b, "gemv_f32", "12", err, sizeof err), -EINVAL);
	assert_int_equal(board_set(&b, "gemv_f32", "256", err, sizeof err), -EINVAL);
	/* the shipped tree preloads the arguments: go 16 cycles (64 ns) */
	assert_int_equal(board_load(dtb_path("emu"), &b, err, sizeof err), 0);
	assert_int_equal(b.fw.dispatch_go, 16);
	assert_int_equal(board_dispatch_go_ns(&b), 64);
	/* bad values and sizes name the property and the field */
	static const struct {
		uint32_t v[3];
		size_t n; /* cells */
		int code;
		const char *what;
	} e[] = {
	    {{1, 1, 1}, 3, 0, NULL},
	    {{0, 64, 16}, 3, -BOARD_EBADVALUE, "start cycles"},
	    {{128, 64, 0}, 3, -BOARD_EBADVALUE, "sync cycles"},
	    {{128, BOARD_FW_INSTR_MAX + 1, 16}, 3, -BOARD_EBADVALUE, "done cycles"},
	    {{128, 64, 16}, 2, -BOARD_EBADSIZE, "moecard,dispatch-cycles"},
	};
	for (size_t i = 0; i < sizeof e / sizeof e[0]; i++) {
		void *fdt = emu_blob();
		int node = fdt_path_offset(fdt, "/firmware-cpu");
		assert_true(node >= 0);
		fdt32_t v[3];
		for (uint32_t w = 0; w < 3; w++)
			v[w] = cpu_to_fdt32(e[i].v[w]);
		assert_int_equal(
		    fdt_setprop(fdt, node, "moecard,dispatch-cycles", v, 4 * (int)e[i].n), 0);
		int rc = parse_blob(fdt, &b, err);
		if (rc != e[i].code)
			print_error("case %zu: got %d want %d: %s\n", i, rc, e[i].code, err);
		assert_int_equal(rc, e[i].code);
		if (rc) {
			assert_non_null(strstr(err, "/firmware-cpu: moecard,dispatch-cycles"));
			assert_non_null(strstr(err, e[i].what));
		}
		free(fdt);
	}
	/* moecard,fw-take-op-instr: the shipped tree's GEMV takes 780 instructions (3120 ns at
	 * 250 MHz), an opcode it does not name the class count; bad pairs name the field */
	assert_int_equal(board_load(dtb_path("emu"), &b, err, sizeof err), 0);
	assert_int_equal(board_fw_take_ns(&b, 14), 3120);
	assert_int_equal(board_fw_take_ns(&b, 4), board_fw_cmd_ns(&b, BOARD_FW_TAKE));
	assert_int_equal(board_fw_take_ns(&b, 99), board_fw_cmd_ns(&b, BOARD_FW_TAKE));
	static const struct {
		uint32_t v[4];
		int bytes, code;
		const char *what;
	} t[] = {
	    {{14, 900, 1, 1000}, 16, 0, NULL},
	    {{32, 900, 0, 0}, 8, -BOARD_EBADVALUE, "opcode 32 not in 0..31"},
	    {{14, 0, 0, 0}, 8, -BOARD_EBADVALUE, "opcode 14: count 0"},
	    {{14, 900, 1, 0}, 12, -BOARD_EBADSIZE, "multiple of 8"},
	};
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		void *fdt = emu_blob();
		int node = fdt_path_offset(fdt, "/firmware-cpu");
		fdt32_t v[4];
		for (uint32_t w = 0; w < 4; w++)
			v[w] = cpu_to_fdt32(t[i].v[w]);
		assert_int_equal(fdt_setprop(fdt, node, "moecard,fw-take-op-instr", v, t[i].bytes),
				 0);
		int rc = parse_blob(fdt, &b, err);
		if (rc != t[i].code)
			print_error("take case %zu: got %d want %d: %s\n", i, rc, t[i].code, err);
		assert_int_equal(rc, t[i].code);
		if (rc) {
			assert_non_null(strstr(err, "/firmware-cpu: moecard,fw-take-op-instr"));
			assert_non_null(strstr(err, t[i].what));
		} else {
			assert_int_equal(board_fw_take_ns(&b, 14), 3600);
			assert_int_equal(board_fw_take_ns(&b, 1), 4000);
			assert_int_equal(board_fw_take_ns(&b, 2), board_fw_cmd_ns(&b, 0));
		}
		free(fdt);
	}
	/* moecard,dispatch-preload: one cell 1..BOARD_FW_INSTR_MAX, and an engine to preload */
	static const struct {
		uint32_t v;
		int bytes, code;
		const char *what;
	} pl[] = {
	    {32, 4, 0, NULL},
	    {0, 4, -BOARD_EBADVALUE, "go cycles 0"},
	    {16, 8, -BOARD_EBADSIZE, "moecard,dispatch-preload"},
	};
	for (size_t i = 0; i < sizeof pl / sizeof pl[0]; i++) {
		void *fdt = emu_blob();
		int node = fdt_path_offset(fdt, "/firmware-cpu");
		fdt32_t v[2] = {cpu_to_fdt32(pl[i].v), cpu_to_fdt32(pl[i].v)};
		assert_int_equal(fdt_setprop(fdt, node, "moecard,dispatch-preload", v, pl[i].bytes),
				 0);
		int rc = parse_blob(fdt, &b, err);
		if (rc != pl[i].code)
			print_error("preload case %zu: got %d want %d: %s\n", i, rc, pl[i].code,
				    err);
		assert_int_equal(rc, pl[i].code);
		if (rc) {
			assert_non_null(strstr(err, "/firmware-cpu: moecard,dispatch-preload"));
			assert_non_null(strstr(err, pl[i].what));
		} else {
			assert_int_equal(board_dispatch_go_ns(&b), 128);
		}
		free(fdt);
	}
	/* without moecard,dispatch-cycles: no engine, and then nothing to preload */
	void *fdt = emu_blob();
	int node = fdt_path_offset(fdt, "/firmware-cpu");
	assert_int_equal(fdt_delprop(fdt, node, "moecard,dispatch-cycles"), 0);
	assert_int_equal(parse_blob(fdt, &b, err), -BOARD_EMISSING);
	assert_non_null(strstr(err, "/firmware-cpu: moecard,dispatch-preload"));
	assert_int_equal(fdt_delprop(fdt, node, "moecard,dispatch-preload"), 0);
	assert_int_equal(parse_blob(fdt, &b, err), 0);
	assert_false(board_has_dispatch_engine(&b));
	assert_int_equal(board_dispatch_go_ns(&b), 0);
	free(fdt);
}

static void test_validate(void **state)
{
	(void)state;
	static struct board_desc b, c;
	char err[BOARD_ERR_MAX];
	assert_int_equal(board_load(dtb_path("u280"), &b, err, sizeof err), 0);
	assert_int_equal(board_validate(&b, "u280", err, sizeof err), 0);
	c = b;
	c.bank[33].base = c.bank[32].base + 4096; /* DDR[1] inside DDR[0] */
	assert_int_equal(board_validate(&c, "u280", err, sizeof err), -BOARD_EOVERLAP);
	c = b;
	c.cu[2].port_bank[1] = c.n_banks;
	assert_int_equal(board_validate(&c, "u280", err, sizeof err), -BOARD_ENOBANK);
	c = b;
	c.clock[0].freq_hz = 0;
	assert_int_equal(board_validate(&c, "u280", err, sizeof err), -BOARD_ECLOCK);
	c = b;
	c.n_cus = 0;
	assert_int_equal(board_validate(&c, "u280", err, sizeof err), -BOARD_EEMPTY);
	c = b;
	c.fw.mailbox = c.fw.dmem_base + c.fw.dmem_size;
	assert_int_equal(board_validate(&c, "u280", err, sizeof err), -BOARD_ERANGE);
	c = b;
	memcpy(c.cu[3].name, c.cu[1].name, sizeof c.cu[1].name);
	assert_int_equal(board_validate(&c, "u280", err, sizeof err), -BOARD_EDUP);
	assert_int_equal(board_validate(NULL, "u280", err, sizeof err), -EINVAL);
}

static void test_bank_name(void **state)
{
	(void)state;
	static struct board_desc b;
	char err[BOARD_ERR_MAX], nm[16];
	assert_int_equal(board_load(dtb_path("u280"), &b, err, sizeof err), 0);
	assert_int_equal(board_bank_name(&b, 0, nm, sizeof nm), 0);
	assert_string_equal(nm, "HBM[0]");
	assert_int_equal(board_bank_name(&b, 31, nm, sizeof nm), 0);
	assert_string_equal(nm, "HBM[31]");
	assert_int_equal(board_bank_name(&b, 33, nm, sizeof nm), 0);
	assert_string_equal(nm, "DDR[1]");
	assert_int_equal(board_bank_name(&b, 34, nm, sizeof nm), -EINVAL);
	assert_int_equal(board_bank_name(&b, 0, nm, 4), -EINVAL);
	assert_string_equal(board_mem_kind_name(BOARD_MEM_DDR), "ddr");
	assert_string_equal(board_mem_kind_name(99), "?");
}

static void test_cu_find(void **state)
{
	(void)state;
	static struct board_desc b;
	char err[BOARD_ERR_MAX];
	assert_int_equal(board_load(dtb_path("emu"), &b, err, sizeof err), 0);
	int k = board_cu_find(&b, "mla_attn_1");
	assert_int_equal(k, 5);
	assert_string_equal(b.cu[k].kernel, "mla_attn");
	assert_int_equal(board_cu_find(&b, "fp8_gemm_9"), -ENOENT);
	int g = board_cu_find(&b, "fp8_gemm_2");
	assert_int_equal(board_cu_port_find(&b.cu[g], "gmem_w"), 1);
	assert_int_equal(board_cu_port_find(&b.cu[g], "nope"), -ENOENT);
	/* fp8_gemm_2 weights on HBM[2], everything else on HBM[3] (emu.dts) */
	assert_int_equal(b.bank[b.cu[g].port_bank[1]].index, 2);
	assert_int_equal(b.bank[b.cu[g].port_bank[0]].index, 3);
}

static void test_fit(void **state)
{
	(void)state;
	static struct board_desc b;
	char err[BOARD_ERR_MAX];
	assert_int_equal(board_load(dtb_path("u55c"), &b, err, sizeof err), 0);
	struct board_fit f;
	uint64_t usable = (16ull << 30) - BOARD_FIT_RESERVE;
	assert_int_equal(board_fit_compute(&b, 1ull << 30, 3ull << 20, 1000, 4096, &f), 0);
	assert_true(f.resident_fits);
	assert_true(f.usable_bytes == usable);
	assert_true(f.kv_bytes == 4096000);
	assert_true(f.expert_slots == (usable - (1ull << 30) - 4096000) / (3ull << 20));
	assert_true(f.kv_max_tokens == (usable - (1ull << 30)) / 1000);
	/* resident set larger than the card */
	assert_int_equal(board_fit_compute(&b, 17ull << 30, 1, 1, 1, &f), 0);
	assert_false(f.resident_fits);
	assert_true(f.expert_slots == 0);
	/* context longer than fits: KV takes everything, no expert slot */
	assert_int_equal(board_fit_compute(&b, 0, 1 << 20, 1 << 20, 1ull << 40, &f), 0);
	assert_true(f.expert_slots == 0 && f.kv_bytes == usable);
	assert_int_equal(board_fit_compute(&b, 0, 0, 1, 1, &f), -EINVAL);
	assert_int_equal(board_fit_compute(&b, 0, 1, 0, 1, &f), -EINVAL);
}

static void test_info_print(void **state)
{
	(void)state;
	static struct board_desc b;
	char err[BOARD_ERR_MAX];
	assert_int_equal(board_load(dtb_path("u280"), &b, err, sizeof err), 0);
	char *txt = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&txt, &len);
	assert_non_null(m);
	assert_int_equal(board_info_print(&b, m), 0);
	struct board_fit f;
	assert_int_equal(board_fit_compute(&b, 1ull << 30, 44ull << 20, 70272, 4096, &f), 0);
	assert_int_equal(board_fit_print(&f, 44ull << 20, 4096, m), 0);
	fclose(m);
	assert_non_null(strstr(txt, "AMD Alveo U280"));
	assert_non_null(strstr(txt, "PCIe Gen3 x16"));
	assert_non_null(strstr(txt, "40.00 GiB in 34 banks"));
	assert_non_null(strstr(txt, "ddr     2 banks,    32.00 GiB"));
	assert_non_null(strstr(txt, "fp8_gemm_1"));
	assert_non_null(strstr(txt, "PE 16x32"));
	assert_non_null(
	    strstr(txt, "firmware cost: take 1200, start 560, done 1390, sync 300 instructions"));
	assert_non_null(strstr(txt, "dispatch engine: start 128, done 64, sync 16 cycles"));
	assert_non_null(strstr(txt, "firmware take per op: GEMM_FP8 1150, RMSNORM 1080"));
	assert_non_null(strstr(txt, "expert slots:"));
	assert_non_null(strstr(txt, "KV capacity with no expert slots:"));
	free(txt);
	assert_int_equal(board_info_print(NULL, stdout), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_strerror),	cmocka_unit_test(test_load_cards),
	    cmocka_unit_test(test_load_errors), cmocka_unit_test(test_parse_truncated),
	    cmocka_unit_test(test_parse_edits), cmocka_unit_test(test_fw_cmd),
	    cmocka_unit_test(test_dispatch),	cmocka_unit_test(test_validate),
	    cmocka_unit_test(test_bank_name),	cmocka_unit_test(test_cu_find),
	    cmocka_unit_test(test_fit),		cmocka_unit_test(test_info_print),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
