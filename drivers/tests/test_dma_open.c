/*
 * test_dma_open.c - the real-card engines without a card: xrt and xdma open fail with -ENODEV /
 * -ENOENT and a one-line reason naming the missing piece (never a crash, nothing left open), and
 * the xdma data path runs dmatest against a regular file standing in for the XDMA character devices
 * (pwrite/pread at card-address offsets, chunked through small aligned staging buffers). The xrt
 * engine on the caller's BOs (dma_xrt_bos) runs without XRT on fake BOs: missing callbacks fail
 * open cleanly, dmatest passes with descriptors crossing BO ends, a range with no BO, a failing
 * write and a countdown fault complete as ERROR, and the statistics count them.
 * Ends with "N passed, N failed".
 */
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dmatest.h"

static char tmpdir[256];

/* pread/pwrite on the stand-in card file; bank i lives at file offset base_i. */
struct file_card {
	int fd;			      /* the card file */
	const struct dma_bank *banks; /* bank layout */
};
static void file_read(void *arg, unsigned bank, uint64_t off, void *dst, size_t len)
{
	struct file_card *f = arg;
	if (pread(f->fd, dst, len, (off_t)(f->banks[bank].base + off)) != (ssize_t)len)
		memset(dst, 0, len);
}
static void file_write(void *arg, unsigned bank, uint64_t off, const void *src, size_t len)
{
	struct file_card *f = arg;
	if (pwrite(f->fd, src, len, (off_t)(f->banks[bank].base + off)) != (ssize_t)len)
		printf("  pwrite to card file failed\n");
}

static const struct dma_bank xbanks[2] = {
    {.base = 0, .size = 256 << 10, .mem_group = -1, .name = "DDR[0]"},
    {.base = 1 << 20, .size = (128 << 10) + 3, .mem_group = -1, .name = "DDR[1]"},
};

static int node_link(const char *kind, unsigned ch)
{
	char p[512];
	snprintf(p, sizeof(p), "%s/xdma0_%s_%u", tmpdir, kind, ch);
	return symlink("card", p);
}

static void test_xdma(void)
{
	char prefix[300], err[256] = "";
	struct dma_dev *dev = (struct dma_dev *)1;
	struct dma_config cfg = {
	    .banks = xbanks, .n_banks = 2, .n_channels = 2, .staging_bytes = 8192};

	/* Absent node: -ENOENT naming it. */
	snprintf(prefix, sizeof(prefix), "%s/none", tmpdir);
	cfg.xdma_prefix = prefix;
	int rc = dma_dev_open(&dma_xdma_i, &cfg, &dev, err, sizeof(err));
	printf("xdma, no node: %d: %s\n", rc, err);
	CHECK(rc == -ENOENT && dev == NULL && strstr(err, "none_h2c_0") &&
		  strstr(err, "xdma driver"),
	      "xdma open without nodes: rc %d err '%s'", rc, err);
	if (access("/dev/xdma0_h2c_0", F_OK) != 0) {
		cfg.xdma_prefix = NULL;
		rc = dma_dev_open(&dma_xdma_i, &cfg, &dev, err, sizeof(err));
		CHECK(rc == -ENOENT && dev == NULL && strstr(err, "/dev/xdma0_h2c_0"),
		      "xdma default node: rc %d err '%s'", rc, err);
	}

	/* A regular file as the card: channel 0 complete, channel 1 missing its c2h node. */
	char card_path[300];
	snprintf(card_path, sizeof(card_path), "%s/card", tmpdir);
	struct file_card fc = {.fd = open(card_path, O_RDWR | O_CREAT | O_TRUNC, 0600),
			       .banks = xbanks};
	CHECK(fc.fd >= 0, "create card file");
	if (fc.fd < 0)
		return;
	CHECK(node_link("h2c", 0) == 0 && node_link("c2h", 0) == 0 && node_link("h2c", 1) == 0,
	      "node links");
	snprintf(prefix, sizeof(prefix), "%s/xdma0", tmpdir);
	cfg.xdma_prefix = prefix;
	rc = dma_dev_open(&dma_xdma_i, &cfg, &dev, err, sizeof(err));
	CHECK(rc == -ENOENT && dev == NULL && strstr(err, "xdma0_c2h_1"),
	      "xdma half a channel: rc %d err '%s'", rc, err);
	CHECK(node_link("c2h", 1) == 0, "node link c2h_1");
	cfg.staging_bytes = 1000;
	rc = dma_dev_open(&dma_xdma_i, &cfg, &dev, err, sizeof(err));
	CHECK(rc == -EINVAL && strstr(err, "staging_bytes"),
	      "unaligned staging size: rc %d err '%s'", rc, err);
	cfg.staging_bytes = 8192;
	rc = dma_dev_open(&dma_xdma_i, &cfg, &dev, err, sizeof(err));
	CHECK(rc == 0 && dev, "xdma open on the file: rc %d err '%s'", rc, err);
	if (rc)
		return;
	CHECK(!strcmp(dma_dev_name(dev), "xdma") && dma_dev_bank_ptr(dev, 0) == NULL,
	      "xdma name, no bank view");
	struct dt_card card;
	struct dt_card_io io = {file_read, file_write, &fc};
	dt_card_init(&card, xbanks, 2, io);
	struct dt_stats st = dt_run_rounds(dev, &card, 40, 10, 4, 40 << 10);
	printf("xdma dmatest on a file: %u transfers, %llu bytes on 2 channels, %u bad, %zu bad "
	       "bytes\n",
	       st.xfers, (unsigned long long)st.bytes, st.bad, st.bad_bytes);
	CHECK(st.submit_rc == 0 && st.bad == 0 && st.bad_bytes == 0 && st.xfers >= 40,
	      "xdma dmatest: rc %d, %u bad transfers, %zu bad bytes", st.submit_rc, st.bad,
	      st.bad_bytes);

	/* A card that ends early (file truncated inside bank 1): the read comes back SHORT. */
	CHECK(ftruncate(fc.fd, (off_t)xbanks[1].base + 100) == 0, "truncate");
	uint8_t buf[1000];
	struct dma_sg sg = {.host = buf, .bank = 1, .card_off = 0, .len = sizeof(buf)};
	struct dma_xfer x = {.dir = DMA_DIR_C2H, .sg = &sg, .n_sg = 1};
	struct dma_cpl c;
	rc = dma_copy_sync(dev, 0, &x, 1, 5000000000ll, &c);
	CHECK(rc == -EIO && c.status == DMA_STATUS_SHORT && c.bytes == 100,
	      "short read surfaced: rc %d status %s bytes %llu", rc, dma_status_str(c.status),
	      (unsigned long long)c.bytes);
	dt_card_free(&card);
	dma_dev_close(dev);
	close(fc.fd);
}

static void test_xrt(void)
{
	const struct dma_bank b = {.base = 0, .size = 1 << 20, .mem_group = -1};
	struct dma_config cfg = {.banks = &b, .n_banks = 1};
	char err[256] = "", *saved = getenv("XILINX_XRT");
	saved = saved ? strdup(saved) : NULL;
	struct dma_dev *dev = (struct dma_dev *)1;

	unsetenv("XILINX_XRT");
	int rc = dma_dev_open(&dma_xrt_i, &cfg, &dev, err, sizeof(err));
	printf("xrt, no XILINX_XRT: %d: %s\n", rc, err);
	CHECK(rc == -ENODEV && dev == NULL && (strstr(err, "XILINX_XRT") || strstr(err, "headers")),
	      "xrt without XILINX_XRT: rc %d err '%s'", rc, err);

	setenv("XILINX_XRT", tmpdir, 1);
	rc = dma_dev_open(&dma_xrt_i, &cfg, &dev, err, sizeof(err));
	printf("xrt, XILINX_XRT without XRT: %d: %s\n", rc, err);
	CHECK(rc == -ENODEV && dev == NULL &&
		  (strstr(err, "not an XRT install") || strstr(err, "headers")),
	      "xrt with a bogus XILINX_XRT: rc %d err '%s'", rc, err);

	/* Looks like an XRT install, but no PCI device is bound to xocl (skipped on a card host).
	 */
	char p[300];
	snprintf(p, sizeof(p), "%s/lib", tmpdir);
	mkdir(p, 0700);
	snprintf(p, sizeof(p), "%s/lib/libxrt_core.so.2", tmpdir);
	int fd = open(p, O_WRONLY | O_CREAT, 0600);
	if (fd >= 0)
		close(fd);
	if (access("/sys/bus/pci/drivers/xocl", F_OK) != 0) {
		rc = dma_dev_open(&dma_xrt_i, &cfg, &dev, err, sizeof(err));
		printf("xrt, no card: %d: %s\n", rc, err);
		CHECK(rc == -ENODEV && dev == NULL &&
			  (strstr(err, "no card") || strstr(err, "headers")),
		      "xrt without a card: rc %d err '%s'", rc, err);
	}
	unlink(p);
	snprintf(p, sizeof(p), "%s/lib", tmpdir);
	rmdir(p);
	if (saved)
		setenv("XILINX_XRT", saved, 1);
	else
		unsetenv("XILINX_XRT");
	free(saved);
}

/* --- engine xrt on the caller's BOs (dma_xrt_bos), with fake BOs: plain memory, no XRT --- */

#define FB_MAX 4 /* fake BOs per bank */

/* A fake buffer object: size bytes of host memory holding bank bytes [at, at + size). */
struct fake_bo {
	uint8_t *mem;
	uint64_t at, size;
};

/* The caller's side: each bank cut into fake BOs of uneven sizes, and knobs for failures. */
struct fake_bos {
	struct fake_bo bo[2][FB_MAX];
	unsigned n[2];
	uint64_t hole_at, hole_len; /* bank 0 bytes no BO holds (resolve says -EFAULT) */
	int fail_write;		    /* write returns this (0 = succeed) */
	uint64_t resolves, writes, reads, bytes_w, bytes_r; /* callback calls and bytes */
};

static int fake_resolve(void *ctx, unsigned bank, uint64_t off, uint64_t len,
			struct dma_xrt_span *sp)
{
	struct fake_bos *f = ctx;
	__atomic_fetch_add(&f->resolves, 1, __ATOMIC_RELAXED);
	if (bank == 0 && off >= f->hole_at && off - f->hole_at < f->hole_len)
		return -EFAULT;
	for (unsigned i = 0; bank < 2 && i < f->n[bank]; i++) {
		struct fake_bo *b = &f->bo[bank][i];
		if (off >= b->at && off - b->at < b->size) {
			*sp = (struct dma_xrt_span){
			    .bo = b, .bo_off = off - b->at, .len = b->size - (off - b->at)};
			if (bank == 0 && f->hole_len && off < f->hole_at &&
			    sp->len > f->hole_at - off)
				sp->len = f->hole_at - off; /* as a BO that ends at the hole */
			return 0;
		}
	}
	return -EFAULT;
}

static int fake_write(void *ctx, void *bo, const void *src, size_t len, uint64_t bo_off)
{
	struct fake_bos *f = ctx;
	struct fake_bo *b = bo;
	if (f->fail_write)
		return f->fail_write;
	if (bo_off > b->size || len > b->size - bo_off)
		return -ERANGE; /* as xrtBOWrite past the end: the engine must not ask for it */
	memcpy(b->mem + bo_off, src, len);
	__atomic_fetch_add(&f->writes, 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&f->bytes_w, len, __ATOMIC_RELAXED);
	return 0;
}

static int fake_read(void *ctx, void *bo, void *dst, size_t len, uint64_t bo_off)
{
	struct fake_bos *f = ctx;
	struct fake_bo *b = bo;
	if (bo_off > b->size || len > b->size - bo_off)
		return -ERANGE;
	memcpy(dst, b->mem + bo_off, len);
	__atomic_fetch_add(&f->reads, 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&f->bytes_r, len, __ATOMIC_RELAXED);
	return 0;
}

/* Behind-the-driver access for dmatest: bank bytes through the fake BOs. */
static void fake_io(struct fake_bos *f, unsigned bank, uint64_t off, uint8_t *p, size_t len,
		    int to_bo)
{
	for (unsigned i = 0; i < f->n[bank]; i++) {
		struct fake_bo *b = &f->bo[bank][i];
		uint64_t lo = off > b->at ? off : b->at;
		uint64_t hi = off + len < b->at + b->size ? off + len : b->at + b->size;
		if (lo >= hi)
			continue;
		if (to_bo)
			memcpy(b->mem + (lo - b->at), p + (lo - off), hi - lo);
		else
			memcpy(p + (lo - off), b->mem + (lo - b->at), hi - lo);
	}
}
static void fake_card_read(void *arg, unsigned bank, uint64_t off, void *dst, size_t len)
{
	fake_io(arg, bank, off, dst, len, 0);
}
static void fake_card_write(void *arg, unsigned bank, uint64_t off, const void *src, size_t len)
{
	fake_io(arg, bank, off, (uint8_t *)(uintptr_t)src, len, 1);
}

static void test_xrt_bos(void)
{
	static struct fake_bos f;
	const uint64_t cut[2][FB_MAX + 1] = {{0, 4096, 100003, 256 << 10},
					     {0, 1, 70000, 90000, (128 << 10) + 3}};
	memset(&f, 0, sizeof(f));
	for (unsigned k = 0; k < 2; k++)
		for (unsigned i = 0; i < FB_MAX && cut[k][i + 1]; i++) {
			struct fake_bo *b = &f.bo[k][f.n[k]++];
			b->at = cut[k][i];
			b->size = cut[k][i + 1] - cut[k][i];
			b->mem = calloc(1, b->size);
		}
	struct dma_xrt_bos bos = {.ctx = &f, .resolve = fake_resolve, .write = fake_write};
	struct dma_config cfg = {.banks = xbanks, .n_banks = 2, .n_channels = 3, .xrt_bos = &bos};
	struct dma_dev *dev = (struct dma_dev *)1;
	char err[256] = "";

	/* bad arguments: a callback missing */
	int rc = dma_dev_open(&dma_xrt_i, &cfg, &dev, err, sizeof(err));
	printf("xrt on the caller's BOs, no read callback: %d: %s\n", rc, err);
	CHECK(rc == -EINVAL && dev == NULL && strstr(err, "xrt_bos") && !strchr(err, '\n'),
	      "xrt_bos without read: rc %d err '%s'", rc, err);
	bos.read = fake_read;
	bos.resolve = NULL;
	dev = (struct dma_dev *)1;
	rc = dma_dev_open(&dma_xrt_i, &cfg, &dev, err, sizeof(err));
	CHECK(rc == -EINVAL && dev == NULL && strstr(err, "resolve"),
	      "xrt_bos without resolve: rc %d err '%s'", rc, err);
	bos.resolve = fake_resolve;

	/* opens without XRT (no XILINX_XRT, no card, no library): the caller's BOs only */
	char *saved = getenv("XILINX_XRT");
	saved = saved ? strdup(saved) : NULL;
	unsetenv("XILINX_XRT");
	rc = dma_dev_open(&dma_xrt_i, &cfg, &dev, err, sizeof(err));
	bos.ctx = NULL; /* the engine keeps its own copy */
	if (saved)
		setenv("XILINX_XRT", saved, 1);
	free(saved);
	CHECK(rc == 0 && dev, "xrt_bos open: rc %d err '%s'", rc, err);
	if (rc)
		goto out;
	CHECK(!strcmp(dma_dev_name(dev), "xrt") && dma_dev_bank_ptr(dev, 0) == NULL &&
		  dma_dev_n_channels(dev) == 3,
	      "xrt_bos name, no bank view, 3 channels");

	/* dmatest: random scatter-gather both ways on 3 channels, crossing BO ends */
	struct dt_card card;
	struct dt_card_io io = {fake_card_read, fake_card_write, &f};
	dt_card_init(&card, xbanks, 2, io);
	struct dt_stats st = dt_run_rounds(dev, &card, 40, 10, 4, 40 << 10);
	printf("xrt dmatest on fake BOs: %u transfers, %llu bytes on 3 channels, %llu resolves, "
	       "%u bad, %zu bad bytes\n",
	       st.xfers, (unsigned long long)st.bytes, (unsigned long long)f.resolves, st.bad,
	       st.bad_bytes);
	CHECK(st.submit_rc == 0 && st.bad == 0 && st.bad_bytes == 0 && st.xfers >= 40,
	      "xrt_bos dmatest: rc %d, %u bad transfers, %zu bad bytes", st.submit_rc, st.bad,
	      st.bad_bytes);
	dt_card_free(&card);

	/* one descriptor across three BOs of bank 1 (1 + 69999 + 20000 bytes at offset 0) */
	static uint8_t src[90000], back[90000];
	for (size_t i = 0; i < sizeof(src); i++)
		src[i] = (uint8_t)(i * 31 + 7);
	uint64_t r0 = f.resolves, w0 = f.writes;
	struct dma_sg sg = {.host = src, .bank = 1, .card_off = 0, .len = sizeof(src)};
	struct dma_xfer x = {.dir = DMA_DIR_H2C, .sg = &sg, .n_sg = 1};
	struct dma_cpl c;
	rc = dma_copy_sync(dev, 0, &x, 0, 5000000000ll, &c);
	sg.host = back;
	x.dir = DMA_DIR_C2H;
	int rc2 = dma_copy_sync(dev, 1, &x, 0, 5000000000ll, &c);
	CHECK(rc == 0 && rc2 == 0 && !memcmp(src, back, sizeof(src)) && f.resolves - r0 == 6 &&
		  f.writes - w0 == 3 && f.bo[1][1].mem[0] == src[1],
	      "descriptor across 3 BOs: rc %d/%d, %llu resolves, %llu writes", rc, rc2,
	      (unsigned long long)(f.resolves - r0), (unsigned long long)(f.writes - w0));

	/* no BO behind part of the range: ERROR after the bytes before it, reported by the fence */
	struct dma_stats s0, s1;
	dma_dev_stats(dev, &s0);
	f.hole_at = 8192;
	f.hole_len = 4096;
	sg = (struct dma_sg){.host = src, .bank = 0, .card_off = 4096, .len = 10000};
	x = (struct dma_xfer){.dir = DMA_DIR_H2C, .sg = &sg, .n_sg = 1};
	rc = dma_copy_sync(dev, 2, &x, 0, 5000000000ll, &c);
	CHECK(rc == -EIO && c.status == DMA_STATUS_ERROR && c.bytes == 4096,
	      "range over a hole: rc %d status %s bytes %llu", rc, dma_status_str(c.status),
	      (unsigned long long)c.bytes);
	f.hole_len = 0;
	/* the caller's write fails: ERROR; then the countdown fault: ERROR; then OK again */
	f.fail_write = -EIO;
	rc = dma_copy_sync(dev, 2, &x, 0, 5000000000ll, &c);
	CHECK(rc == -EIO && c.status == DMA_STATUS_ERROR && c.bytes == 0,
	      "failing write: rc %d status %s", rc, dma_status_str(c.status));
	f.fail_write = 0;
	dma_dev_fault_set(dev, DMA_FAULT_ERROR, 1, 0);
	rc = dma_copy_sync(dev, 2, &x, 0, 5000000000ll, &c);
	CHECK(rc == -EIO && c.status == DMA_STATUS_ERROR, "countdown fault: rc %d status %s", rc,
	      dma_status_str(c.status));
	struct dma_hbuf *hb = NULL;
	rc = dma_hbuf_alloc(dev, 10000, &hb);
	if (!rc) {
		memcpy(dma_hbuf_ptr(hb), src, 10000);
		sg = (struct dma_sg){.hbuf = hb, .bank = 0, .card_off = 4096, .len = 10000};
		rc = dma_copy_sync(dev, 2, &x, 0, 5000000000ll, &c);
	}
	fake_card_read(&f, 0, 4096, back, 10000);
	dma_dev_stats(dev, &s1);
	CHECK(rc == 0 && !memcmp(back, src, 10000) && s1.xfers - s0.xfers == 4 &&
		  s1.xfers_bad - s0.xfers_bad == 3 && s1.faults - s0.faults == 1 &&
		  s1.bytes - s0.bytes == 4096 + 10000 / 3 + 10000 && s1.fences - s0.fences == 4,
	      "after the failures a host buffer fills: rc %d; stats %llu transfers (%llu bad, "
	      "%llu faults), %llu bytes",
	      rc, (unsigned long long)(s1.xfers - s0.xfers),
	      (unsigned long long)(s1.xfers_bad - s0.xfers_bad),
	      (unsigned long long)(s1.faults - s0.faults),
	      (unsigned long long)(s1.bytes - s0.bytes));
	dma_hbuf_free(dev, hb);
	dma_dev_close(dev);
out:
	for (unsigned k = 0; k < 2; k++)
		for (unsigned i = 0; i < f.n[k]; i++)
			free(f.bo[k][i].mem);
}

/* Removes the temporary directory's known entries. */
static void cleanup(void)
{
	const char *names[] = {"card", "xdma0_h2c_0", "xdma0_c2h_0", "xdma0_h2c_1", "xdma0_c2h_1"};
	char p[512];
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(p, sizeof(p), "%s/%s", tmpdir, names[i]);
		unlink(p);
	}
	rmdir(tmpdir);
}

int main(void)
{
	if (!harness_mkdtemp(tmpdir, sizeof tmpdir, "dmatest")) {
		printf("cannot create a temporary directory\n0 passed, 1 failed\n");
		return 1;
	}
	test_xrt();
	test_xrt_bos();
	test_xdma();
	cleanup();
	return harness_done();
}
