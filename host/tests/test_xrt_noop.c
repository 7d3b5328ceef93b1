/*
 * test_xrt_noop.c - the XRT control path (host/backend/xrt_dev.c) against XRT itself.
 *
 * 1. Without a usable XRT environment every entry point fails with one clear message (never the
 *    abort XRT 2.13 does on its own): XILINX_XRT unset, an unsupported emulation mode, a missing
 *    shim, no card (a child process with the real card shim and no card), a malformed xclbin.
 * 2. XRT's xclbin API reads every board's metadata xclbin (bitstream/gen) back as written: UUID,
 *    kernel and CU counts, platform name.
 * 3. On XRT's noop device (XCL_EMULATION_MODE=noop): load each xclbin, open one kernel per CU,
 *    check every pointer argument's memory group and register offset against the dts connectivity
 *    and the kernel argument lists, allocate and sync every weight/scale/KV buffer of the tiny
 *    model in the memory group of the CU that reads it (upload, read back, compare), and run two
 *    decode steps with one reusable run per CU, checking the run count per token (the attention
 *    on mla_attn_lanes, its cache in the 32 lane banks, on a tree without mla_attn).
 * Kernels do nothing on the noop device, so no logits are checked. Plain program; prints
 * "N passed, N failed".
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/harness.h"
#include "bitstream/bitstream.h"
#include "board.h"
#include "backend/xrt_dev.h"

#ifdef __SANITIZE_ADDRESS__
/*
 * libxrt_coreutil 2.13 calls aligned_alloc(4096, 16) for BO bookkeeping. glibc (and C17, DR 460)
 * accept a size that is not a multiple of the alignment; ASan reports it as an error and aborts.
 * In the ASan build this process provides aligned_alloc itself (the executable's definition wins
 * symbol lookup), rounding the size up, so the rest of XRT still runs under ASan.
 */
void *aligned_alloc(size_t alignment, size_t size)
{
	void *p = NULL;
	if (alignment < sizeof(void *))
		alignment = sizeof(void *);
	size = size ? (size + alignment - 1) / alignment * alignment : alignment;
	return posix_memalign(&p, alignment, size) ? NULL : p;
}
#endif

static const char *bdir(void)
{
	return getenv("B") ? getenv("B") : "build";
}

static const char *const cards[] = {"emu", "u55c", "u280", "v80"};

/* 1. Failure modes, before XRT is ever used with a shim in this process. */
static void test_no_environment(void)
{
	struct xrt_dev *d = NULL;
	char err[512] = "";
	unsetenv("XILINX_XRT");
	unsetenv("XCL_EMULATION_MODE");
	int rc = xrt_dev_open("0", &d, err, sizeof err);
	CHECK(rc == -ENODEV && d == NULL && strstr(err, "XILINX_XRT is not set"),
	      "open without XILINX_XRT: rc %d, message \"%s\"", rc, err);
	printf("no XRT environment: %s\n", err);

	setenv("XCL_EMULATION_MODE", "hw_emu", 1);
	rc = xrt_dev_open("0", &d, err, sizeof err);
	CHECK(rc == -ENOTSUP && strstr(err, "hw_emu"), "hw_emu: rc %d \"%s\"", rc, err);

	setenv("XCL_EMULATION_MODE", "noop", 1);
	setenv("XILINX_XRT", "no/such/xrt", 1);
	rc = xrt_dev_open("0", &d, err, sizeof err);
	CHECK(rc == -ENODEV && strstr(err, "no/such/xrt/lib/libxrt_noop.so.2"),
	      "missing shim: rc %d \"%s\"", rc, err);
	rc = xrt_dev_open("", &d, err, sizeof err);
	CHECK(rc == -EINVAL, "empty device spec: rc %d", rc);

	/* a malformed xclbin is refused before XRT sees it */
	rc = xrt_dev_xclbin_info("board/board.mk", &(struct xrt_dev_xclbin_info){0}, err,
				 sizeof err);
	CHECK(rc == -EINVAL && strstr(err, "board/board.mk: not a well-formed xclbin"),
	      "malformed xclbin: rc %d \"%s\"", rc, err);
	unsetenv("XILINX_XRT");
	unsetenv("XCL_EMULATION_MODE");
}

/* No card: XRT with the real PCIe shim finds no device. Run in a child: XRT's shim choice is
 * process-wide and final. */
static void test_no_card(void)
{
	char dir[512], err[512];
	snprintf(dir, sizeof dir, "%s/xrt-nocard", bdir());
	if (xrt_dev_nocard_setup(dir, err, sizeof err) != 0) {
		CHECK(0, "no-card shim setup: %s", err);
		return;
	}
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		unsetenv("XCL_EMULATION_MODE");
		struct xrt_dev *d = NULL;
		int rc = xrt_dev_open("0", &d, err, sizeof err);
		printf("no card: %s\n", err);
		fflush(stdout);
		_exit(rc == -ENODEV && d == NULL && strstr(err, "cannot open") ? 0 : 1);
	}
	int st = 0;
	waitpid(pid, &st, 0);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0,
	      "no-card child: exit status 0x%x (expected -ENODEV with a message, no abort)", st);
	unsetenv("XILINX_XRT");
	unsetenv("XCL_EMULATION_MODE");
}

static int load_file(const char *path, uint8_t **buf, size_t *n)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return -errno;
	*buf = malloc(1 << 20);
	*n = *buf ? fread(*buf, 1, 1 << 20, f) : 0;
	fclose(f);
	return *buf ? 0 : -ENOMEM;
}

static uint32_t count_kernels(const struct board_desc *b)
{
	uint32_t n = 0;
	for (uint32_t c = 0; c < b->n_cus; c++) {
		uint32_t j;
		for (j = 0; j < c; j++)
			if (!strcmp(b->cu[j].kernel, b->cu[c].kernel))
				break;
		n += j == c;
	}
	return n;
}

/* 2. XRT's xclbin API on every board's xclbin. */
static void test_xclbin_api(const char *card, const struct board_desc *b, const char *xclbin)
{
	uint8_t *img = NULL, uuid[16];
	size_t n = 0;
	char err[512] = "";
	CHECK(load_file(xclbin, &img, &n) == 0, "%s: cannot read", xclbin);
	if (!img)
		return;
	CHECK(bitstream_xclbin_validate(img, n) == 0, "%s: not well-formed", xclbin);
	CHECK(bitstream_xclbin_uuid(img, n, uuid) == 0, "%s: uuid", xclbin);
	free(img);
	struct xrt_dev_xclbin_info info;
	int rc = xrt_dev_xclbin_info(xclbin, &info, err, sizeof err);
	CHECK(rc == 0, "%s: xrt_dev_xclbin_info: %d %s", xclbin, rc, err);
	CHECK(memcmp(info.uuid, uuid, 16) == 0, "%s: XRT UUID differs from the header", card);
	CHECK(info.n_kernels == count_kernels(b), "%s: XRT sees %u kernels, dts has %u", card,
	      info.n_kernels, count_kernels(b));
	CHECK(info.n_cus == b->n_cus, "%s: XRT sees %u CUs, dts has %u", card, info.n_cus,
	      b->n_cus);
	CHECK(!strcmp(info.xsa, b->platform), "%s: XSA \"%s\" vs platform \"%s\"", card, info.xsa,
	      b->platform);
	printf("xclbin %-5s: XRT reads %u kernels, %u CUs, platform %s\n", card, info.n_kernels,
	       info.n_cus, info.xsa);
}

/* The tiny preset (docs/cli.md, gen): FP8 GEMM weights per layer, [out, in]. */
struct wt {
	const char *name; /* tensor role */
	int out, in;	  /* shape */
	int expert;	  /* routed expert index, -1 otherwise */
	int layer;	  /* layer */
};

enum { TINY_LAYERS = 4, TINY_EXPERTS = 16, TINY_TOPK = 4, TINY_MAX_TOK = 64 };

static int tiny_weights(struct wt *w)
{
	int n = 0;
	for (int l = 0; l < TINY_LAYERS; l++) {
		/* hidden 256, q_lora 192, kv_lora 128, 4 heads, nope/rope/v 32/16/32 */
		w[n++] = (struct wt){"q_a_proj", 192, 256, -1, l};
		w[n++] = (struct wt){"q_b_proj", 4 * 48, 192, -1, l};
		w[n++] = (struct wt){"kv_a_proj_with_mqa", 128 + 16, 256, -1, l};
		w[n++] = (struct wt){"kv_b_proj", 4 * 64, 128, -1, l};
		w[n++] = (struct wt){"o_proj", 256, 4 * 32, -1, l};
		if (l == 0) { /* dense FFN 512 */
			w[n++] = (struct wt){"gate_proj", 512, 256, -1, l};
			w[n++] = (struct wt){"up_proj", 512, 256, -1, l};
			w[n++] = (struct wt){"down_proj", 256, 512, -1, l};
			continue;
		}
		for (int e = -1; e < TINY_EXPERTS; e++) { /* e = -1: the shared expert */
			w[n++] = (struct wt){"gate_proj", 128, 256, e, l};
			w[n++] = (struct wt){"up_proj", 128, 256, e, l};
			w[n++] = (struct wt){"down_proj", 256, 128, e, l};
		}
	}
	return n;
}

/* Buffers of one GEMM CU's activation bank and of the vec/MLA CUs. */
struct act {
	struct xrt_dev_bo x, xs, y, res, route; /* per GEMM CU */
};

static int arg_index(const struct bitstream_kernel *k, const char *name)
{
	for (uint32_t i = 0; i < k->n_args; i++)
		if (!strcmp(k->arg[i].name, name))
			return (int)i;
	return -1;
}

/* 3. The control path on the noop device for one card. */
static void test_noop_card(const char *card, const struct board_desc *b, const char *xclbin,
			   unsigned devidx)
{
	char err[512] = "", spec[8];
	struct xrt_dev *d = NULL;
	snprintf(spec, sizeof spec, "%u", devidx);
	int rc = xrt_dev_open(spec, &d, err, sizeof err);
	CHECK(rc == 0, "%s: open noop device %s: %d %s", card, spec, rc, err);
	if (rc)
		return;
	rc = xrt_dev_load(d, xclbin, b, err, sizeof err);
	CHECK(rc == 0, "%s: load: %d %s", card, rc, err);
	if (rc) {
		xrt_dev_close(d);
		return;
	}
	/* argument binding per the xclbin metadata */
	int bad_group = 0, bad_off = 0, checked = 0;
	for (uint32_t c = 0; c < b->n_cus; c++) {
		const struct bitstream_kernel *k = bitstream_kernel_find(b->cu[c].kernel);
		for (uint32_t a = 0; a < k->n_args; a++) {
			int g = -1;
			uint32_t off = 0;
			rc = xrt_dev_arg_group(d, c, a, &g, &off);
			if (!k->arg[a].bundle) {
				bad_group += rc != -EINVAL;
				continue;
			}
			checked++;
			if (rc || g != bitstream_arg_bank(b, c, a)) {
				if (bad_group++ < 3)
					printf("  %s %s.%s: XRT group %d, dts bank %d\n", card,
					       b->cu[c].name, k->arg[a].name, g,
					       bitstream_arg_bank(b, c, a));
			}
			bad_off += off != k->arg[a].offset;
		}
	}
	CHECK(bad_group == 0 && checked > 0, "%s: %d of %d memory groups differ from the dts", card,
	      bad_group, checked);
	CHECK(bad_off == 0, "%s: %d register offsets differ from the HLS layout", card, bad_off);

	/* GEMM CUs, and the vec / MLA CUs */
	uint32_t gemm[BOARD_MAX_CUS], n_gemm = 0;
	/* the attention on mla_attn, or on the striped CU where the tree has no mla_attn (U55C,
	 * U280): the tiny model's cache striped over its 32 lane banks */
	int vec = board_cu_find(b, "vec_ops_1"), mla = board_cu_find(b, "mla_attn_1");
	int lanes = mla < 0;
	if (lanes)
		mla = board_cu_find(b, "mla_attn_lanes_1");
	int kva = board_cu_find(b, "mla_kv_append_1");
	for (uint32_t c = 0; c < b->n_cus; c++)
		if (!strcmp(b->cu[c].kernel, "fp8_gemm"))
			gemm[n_gemm++] = c;
	CHECK(n_gemm > 0 && vec >= 0 && mla >= 0 && kva >= 0,
	      "%s: needs GEMM CUs, vec_ops_1, mla_attn_1 or mla_attn_lanes_1 and mla_kv_append_1",
	      card);
	if (!n_gemm || vec < 0 || mla < 0 || kva < 0) {
		xrt_dev_close(d);
		return;
	}
	const struct bitstream_kernel *kg = bitstream_kernel_find("fp8_gemm");
	const struct bitstream_kernel *kv = bitstream_kernel_find("vec_ops");
	const struct bitstream_kernel *km =
	    bitstream_kernel_find(lanes ? "mla_attn_lanes" : "mla_attn");
	const struct bitstream_kernel *ka = bitstream_kernel_find("mla_kv_append");

	/* every weight (+ scale) of the tiny model, on the CU that reads it */
	static struct wt w[512];
	static struct xrt_dev_bo wbo[512], sbo[512];
	static uint32_t wcu[512];
	int nw = tiny_weights(w), bad_rt = 0;
	size_t wbytes = 0;
	for (int i = 0; i < nw; i++) {
		/* experts by index, dense tensors round-robin */
		wcu[i] = gemm[(w[i].expert >= 0 ? (uint32_t)w[i].expert : (uint32_t)i) % n_gemm];
		int gw = -1, gs = -1;
		xrt_dev_arg_group(d, wcu[i], (uint32_t)arg_index(kg, "w"), &gw, NULL);
		xrt_dev_arg_group(d, wcu[i], (uint32_t)arg_index(kg, "ws"), &gs, NULL);
		size_t nb = (size_t)w[i].out * (size_t)w[i].in;
		size_t ns = (size_t)((w[i].out + 127) / 128) * (size_t)((w[i].in + 127) / 128) * 4;
		if (xrt_dev_bo_alloc(d, nb, gw, &wbo[i]) || xrt_dev_bo_alloc(d, ns, gs, &sbo[i])) {
			bad_rt++;
			continue;
		}
		uint8_t *src = malloc(nb), *back = malloc(nb);
		for (size_t j = 0; j < nb; j++)
			src[j] = (uint8_t)(j * 31u + (unsigned)i);
		if (xrt_dev_bo_upload(d, &wbo[i], src, nb, 0) ||
		    xrt_dev_bo_download(d, &wbo[i], back, nb, 0) || memcmp(src, back, nb))
			bad_rt++;
		memset(back, 0, ns);
		if (xrt_dev_bo_upload(d, &sbo[i], src, ns, 0) ||
		    xrt_dev_bo_download(d, &sbo[i], back, ns, 0) || memcmp(src, back, ns))
			bad_rt++;
		free(src);
		free(back);
		wbytes += nb + ns;
	}
	CHECK(bad_rt == 0, "%s: %d weight buffers failed alloc/upload/readback", card, bad_rt);

	/* activations per GEMM CU (x/y bank); vec and MLA buffers; the KV cache of every layer */
	static struct act act[BOARD_MAX_CUS];
	int bad_alloc = 0;
	for (uint32_t i = 0; i < n_gemm; i++) {
		int gx, gy;
		xrt_dev_arg_group(d, gemm[i], (uint32_t)arg_index(kg, "x"), &gx, NULL);
		xrt_dev_arg_group(d, gemm[i], (uint32_t)arg_index(kg, "y"), &gy, NULL);
		bad_alloc += xrt_dev_bo_alloc(d, 4 * 512, gx, &act[i].x) != 0;
		bad_alloc += xrt_dev_bo_alloc(d, 4 * 4, gx, &act[i].xs) != 0;
		bad_alloc += xrt_dev_bo_alloc(d, 4 * 512, gy, &act[i].y) != 0;
		bad_alloc += xrt_dev_bo_alloc(d, 4 * 512, gy, &act[i].res) != 0;
		bad_alloc += xrt_dev_bo_alloc(d, 4 * 8, gy, &act[i].route) != 0;
	}
	/* vec_ops: a = input rows, b = norm weights / RoPE positions, y (+ q, qs) = output */
	struct xrt_dev_bo va, vb, vpos, vy, vq, vqs, mqlat, mqpe, mout, kc, kpe, kvc[TINY_LAYERS];
	int g;
	xrt_dev_arg_group(d, (uint32_t)vec, (uint32_t)arg_index(kv, "a"), &g, NULL);
	bad_alloc += xrt_dev_bo_alloc(d, 4 * 256, g, &va) != 0;
	xrt_dev_arg_group(d, (uint32_t)vec, (uint32_t)arg_index(kv, "b"), &g, NULL);
	bad_alloc += xrt_dev_bo_alloc(d, 4 * 256 * 4 * TINY_LAYERS, g, &vb) != 0;
	bad_alloc += xrt_dev_bo_alloc(d, 4 * TINY_MAX_TOK, g, &vpos) != 0;
	xrt_dev_arg_group(d, (uint32_t)vec, (uint32_t)arg_index(kv, "y"), &g, NULL);
	bad_alloc += xrt_dev_bo_alloc(d, 4 * 256, g, &vy) != 0;
	bad_alloc += xrt_dev_bo_alloc(d, 256, g, &vq) != 0;
	bad_alloc += xrt_dev_bo_alloc(d, 4 * 2, g, &vqs) != 0;
	/* mla_attn: q_lat [4][128], q_pe [4][16], out [4][128]; the cache of every layer */
	xrt_dev_arg_group(d, (uint32_t)mla, (uint32_t)arg_index(km, "q_lat"), &g, NULL);
	bad_alloc += xrt_dev_bo_alloc(d, 4 * 4 * 128, g, &mqlat) != 0;
	bad_alloc += xrt_dev_bo_alloc(d, 4 * 4 * 16, g, &mqpe) != 0;
	xrt_dev_arg_group(d, (uint32_t)mla, (uint32_t)arg_index(km, "out"), &g, NULL);
	bad_alloc += xrt_dev_bo_alloc(d, 4 * 4 * 128, g, &mout) != 0;
	xrt_dev_arg_group(d, (uint32_t)kva, (uint32_t)arg_index(ka, "c"), &g, NULL);
	bad_alloc += xrt_dev_bo_alloc(d, 4 * 128, g, &kc) != 0;
	bad_alloc += xrt_dev_bo_alloc(d, 4 * 16, g, &kpe) != 0;
	int gk = -1;
	xrt_dev_arg_group(d, (uint32_t)kva, (uint32_t)arg_index(ka, "cache"), &gk, NULL);
	g = gk;
	if (!lanes) {
		xrt_dev_arg_group(d, (uint32_t)mla, (uint32_t)arg_index(km, "cache"), &g, NULL);
		CHECK(g == gk, "%s: mla_attn reads the cache from group %d, kv-append writes %d",
		      card, g, gk);
	}
	for (int l = 0; l < TINY_LAYERS; l++) /* c' (128) + k_pe (16) per token, f32 */
		bad_alloc += xrt_dev_bo_alloc(d, (size_t)TINY_MAX_TOK * 144 * 4, g, &kvc[l]) != 0;
	/* the striped caches: a 32-token block of every layer in each lane bank */
	static struct xrt_dev_bo lbo[32];
	size_t lslot = 32 * 144 * 4;
	for (int i = 0; lanes && i < 32; i++) {
		char nm[16];
		snprintf(nm, sizeof nm, "l%d", i);
		xrt_dev_arg_group(d, (uint32_t)mla, (uint32_t)arg_index(km, nm), &g, NULL);
		bad_alloc += xrt_dev_bo_alloc(d, lslot * TINY_LAYERS, g, &lbo[i]) != 0;
	}
	CHECK(bad_alloc == 0, "%s: %d activation/KV buffers failed to allocate", card, bad_alloc);

	/* one reusable run per CU */
	static struct xrt_dev_run run[BOARD_MAX_CUS];
	int bad_run = 0;
	for (uint32_t c = 0; c < b->n_cus; c++)
		bad_run += xrt_dev_run_open(d, c, &run[c]) != 0;
	CHECK(bad_run == 0, "%s: %d runs failed to open", card, bad_run);

	/* two decode steps: per layer 6 MLA GEMMs, 7 vector ops, 1 KV append, 1 attention; FFN 2
	 * GEMMs (dense)
	 * or 2 * (1 shared + top-4 routed); final norm. lm_head and router stay on the host. */
	int expect_per_tok =
	    TINY_LAYERS * (6 + 7 + 1 + 1) + 2 + (TINY_LAYERS - 1) * 2 * (1 + TINY_TOPK) + 1;
	int bad_exec = 0;
	uint64_t runs_before = 0;
	for (int tok = 0; tok < 2; tok++) {
		struct xrt_dev_stats s0;
		xrt_dev_stats_get(d, &s0);
		int issued = 0;
		for (int l = 0; l < TINY_LAYERS; l++) {
			/* the GEMMs of this layer: weights of layer l, routed experts 4 of 16 */
			int sel[TINY_TOPK];
			for (int k = 0; k < TINY_TOPK; k++)
				sel[k] = (l * 5 + tok * 3 + k * 4) % TINY_EXPERTS;
			for (int step = 0; step < 7 + 2;
			     step++) { /* vec ops, KV append, attention */
				uint32_t c = step < 7	 ? (uint32_t)vec
					     : step == 7 ? (uint32_t)kva
							 : (uint32_t)mla;
				struct xrt_dev_run *r = &run[c];
				if (step < 7) {
					bad_exec += xrt_dev_run_set_u32(d, r, 0, (uint32_t)step) ||
						    xrt_dev_run_set_bo(d, r, 1, &va) ||
						    xrt_dev_run_set_bo(d, r, 2, &vb) ||
						    xrt_dev_run_set_bo(d, r, 3, &vy) ||
						    xrt_dev_run_set_bo(d, r, 4, &vq) ||
						    xrt_dev_run_set_bo(d, r, 5, &vqs) ||
						    xrt_dev_run_set_bo(d, r, 6, &vpos) ||
						    xrt_dev_run_set_u32(d, r, 7, 1) ||
						    xrt_dev_run_set_u32(d, r, 8, 256) ||
						    xrt_dev_run_set_u32(d, r, 9, 256) ||
						    xrt_dev_run_set_u32(d, r, 10, 256) ||
						    xrt_dev_run_set_u32(d, r, 11, 0x358637bdu) ||
						    xrt_dev_run_set_u32(d, r, 12, 0);
				} else if (step == 7) {
					bad_exec += xrt_dev_run_set_bo(d, r, 0, &kc) ||
						    xrt_dev_run_set_bo(d, r, 1, &kpe) ||
						    xrt_dev_run_set_bo(d, r, 2, &kvc[l]) ||
						    xrt_dev_run_set_u32(d, r, 3, (uint32_t)tok) ||
						    xrt_dev_run_set_u32(d, r, 4, 1) ||
						    xrt_dev_run_set_u32(d, r, 5, 128) ||
						    xrt_dev_run_set_u32(d, r, 6, 16) ||
						    xrt_dev_run_set_u32(d, r, 7, 0);
				} else if (lanes) {
					for (int i = 0; i < 32; i++) {
						char nm[16];
						snprintf(nm, sizeof nm, "l%d", i);
						bad_exec += xrt_dev_run_set_bo(
						    d, r, (uint32_t)arg_index(km, nm), &lbo[i]);
					}
					const char *an[] = {"cache_off",  "pos",    "H",
							    "dc",	  "dr",	    "fmt",
							    "scale",	  "rows",   "slot_bytes",
							    "lane_bytes", "ctx_cap"};
					const uint32_t av[] = {(uint32_t)(l * lslot),
							       (uint32_t)tok,
							       4,
							       128,
							       16,
							       0,
							       0x3e8a3a00u,
							       1,
							       0,
							       (uint32_t)(lslot * TINY_LAYERS),
							       TINY_MAX_TOK};
					for (size_t i = 0; i < sizeof av / sizeof av[0]; i++)
						bad_exec += xrt_dev_run_set_u32(
						    d, r, (uint32_t)arg_index(km, an[i]), av[i]);
					bad_exec +=
					    xrt_dev_run_set_bo(
						d, r, (uint32_t)arg_index(km, "q_lat"), &mqlat) ||
					    xrt_dev_run_set_bo(
						d, r, (uint32_t)arg_index(km, "q_pe"), &mqpe) ||
					    xrt_dev_run_set_bo(d, r, (uint32_t)arg_index(km, "out"),
							       &mout) ||
					    xrt_dev_run_set_bo(
						d, r, (uint32_t)arg_index(km, "q_rows"), &mqlat) ||
					    xrt_dev_run_set_bo(d, r, (uint32_t)arg_index(km, "tab"),
							       &mqlat);
				} else {
					bad_exec += xrt_dev_run_set_bo(d, r, 0, &mqlat) ||
						    xrt_dev_run_set_bo(d, r, 1, &mqpe) ||
						    xrt_dev_run_set_bo(d, r, 2, &kvc[l]) ||
						    xrt_dev_run_set_bo(d, r, 3, &mout) ||
						    xrt_dev_run_set_u32(d, r, 4, 1) ||
						    xrt_dev_run_set_u32(d, r, 5, (uint32_t)tok) ||
						    xrt_dev_run_set_u32(d, r, 6, 4) ||
						    xrt_dev_run_set_u32(d, r, 7, 128) ||
						    xrt_dev_run_set_u32(d, r, 8, 16) ||
						    xrt_dev_run_set_u32(d, r, 9, 0) ||
						    xrt_dev_run_set_u32(d, r, 10, 0x3e8a3a00u);
				}
				bad_exec += xrt_dev_run_start(d, r) || xrt_dev_run_wait(d, r, 1000);
				issued++;
			}
			for (int i = 0; i < nw; i++) {
				if (w[i].layer != l)
					continue;
				int routed = w[i].expert >= 0, hit = !routed;
				for (int k = 0; routed && k < TINY_TOPK; k++)
					hit |= sel[k] == w[i].expert;
				/* MLA: all 5 + kv_b used twice (absorb, output); FFN: gate+up fused
				 * (one SILU_MUL run at gate_proj), down alone */
				if (!hit || !strcmp(w[i].name, "up_proj"))
					continue;
				int times = !strcmp(w[i].name, "kv_b_proj") ? 2 : 1;
				uint32_t cu = wcu[i], gi = 0;
				while (gemm[gi] != cu)
					gi++;
				struct xrt_dev_run *r = &run[cu];
				int up = !strcmp(w[i].name, "gate_proj") ? i + 1 : i;
				for (int t = 0; t < times; t++) {
					bad_exec +=
					    xrt_dev_run_set_bo(d, r, 0, &act[gi].x) ||
					    xrt_dev_run_set_bo(d, r, 1, &act[gi].xs) ||
					    xrt_dev_run_set_bo(d, r, 2, &wbo[i]) ||
					    xrt_dev_run_set_bo(d, r, 3, &sbo[i]) ||
					    xrt_dev_run_set_bo(d, r, 4, &wbo[up]) ||
					    xrt_dev_run_set_bo(d, r, 5, &sbo[up]) ||
					    xrt_dev_run_set_bo(d, r, 6, &act[gi].y) ||
					    xrt_dev_run_set_bo(d, r, 7, &act[gi].res) ||
					    xrt_dev_run_set_bo(d, r, 8, &act[gi].route) ||
					    xrt_dev_run_set_u32(d, r, 9, 1) ||
					    xrt_dev_run_set_u32(d, r, 10, (uint32_t)w[i].out) ||
					    xrt_dev_run_set_u32(d, r, 11, (uint32_t)w[i].in) ||
					    xrt_dev_run_set_u32(d, r, 12, up != i ? 0x8u : 0x0u);
					bad_exec +=
					    xrt_dev_run_start(d, r) || xrt_dev_run_wait(d, r, 1000);
					issued++;
				}
			}
		}
		/* final norm */
		bad_exec += xrt_dev_run_start(d, &run[vec]) || xrt_dev_run_wait(d, &run[vec], 1000);
		issued++;
		struct xrt_dev_stats s1;
		xrt_dev_stats_get(d, &s1);
		uint64_t started = s1.runs_started - s0.runs_started;
		uint64_t done = s1.runs_done - s0.runs_done;
		CHECK(issued == expect_per_tok && started == (uint64_t)issued && done == started,
		      "%s token %d: %d commands (expected %d), %llu started, %llu completed", card,
		      tok, issued, expect_per_tok, (unsigned long long)started,
		      (unsigned long long)done);
		if (tok == 1)
			printf("%-5s noop: %d weight tensors (%zu KiB) uploaded and read back, "
			       "%d runs per token on %u reused runs, all completed\n",
			       card, nw, wbytes >> 10, issued, b->n_cus);
		runs_before += started;
	}
	CHECK(bad_exec == 0, "%s: %d set-arg/start/wait calls failed", card, bad_exec);
	struct xrt_dev_stats st;
	xrt_dev_stats_get(d, &st);
	CHECK(st.runs_done == runs_before, "%s: %llu runs done of %llu", card,
	      (unsigned long long)st.runs_done, (unsigned long long)runs_before);
	CHECK(st.syncs_to == st.syncs_from && st.syncs_to == (uint64_t)(2 * nw),
	      "%s: %llu syncs to device, %llu from, expected %d each", card,
	      (unsigned long long)st.syncs_to, (unsigned long long)st.syncs_from, 2 * nw);
	for (uint32_t c = 0; c < b->n_cus; c++)
		xrt_dev_run_close(d, &run[c]);
	for (int i = 0; i < nw; i++) {
		xrt_dev_bo_free(d, &wbo[i]);
		xrt_dev_bo_free(d, &sbo[i]);
	}
	for (uint32_t i = 0; i < n_gemm; i++) {
		xrt_dev_bo_free(d, &act[i].x);
		xrt_dev_bo_free(d, &act[i].xs);
		xrt_dev_bo_free(d, &act[i].y);
		xrt_dev_bo_free(d, &act[i].res);
		xrt_dev_bo_free(d, &act[i].route);
	}
	struct xrt_dev_bo *rest[] = {&va,    &vb,   &vpos, &vy, &vq, &vqs,
				     &mqlat, &mqpe, &mout, &kc, &kpe};
	for (size_t i = 0; i < sizeof rest / sizeof rest[0]; i++)
		xrt_dev_bo_free(d, rest[i]);
	for (int l = 0; l < TINY_LAYERS; l++)
		xrt_dev_bo_free(d, &kvc[l]);
	for (int i = 0; lanes && i < 32; i++)
		xrt_dev_bo_free(d, &lbo[i]);
	xrt_dev_close(d);
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	test_no_environment();
	test_no_card();

	char dir[512], err[512];
	const char *tt = getenv("MOECARD_TEST_TMP"); /* tests/run.sh: this test's own directory */
	snprintf(dir, sizeof dir, "%s/xrt-noop", tt && *tt ? tt : bdir());
	int rc = xrt_dev_noop_setup(dir, err, sizeof err);
	CHECK(rc == 0, "noop setup: %d %s", rc, err);
	if (rc) {
		return harness_done();
	}
	for (unsigned i = 0; i < sizeof cards / sizeof cards[0]; i++) {
		static struct board_desc b;
		char dtb[600], xclbin[600];
		snprintf(dtb, sizeof dtb, "%s/board/%s.dtb", bdir(), cards[i]);
		snprintf(xclbin, sizeof xclbin, "%s/bitstream/%s.xclbin", bdir(), cards[i]);
		rc = board_load(dtb, &b, err, sizeof err);
		CHECK(rc == 0, "%s: %s", dtb, err);
		if (rc)
			continue;
		test_xclbin_api(cards[i], &b, xclbin);
		test_noop_card(cards[i], &b, xclbin, i);
	}
	return harness_done();
}
