/*
 * test_dma_open.c - the real-card engines without a card: xrt and xdma open fail with -ENODEV /
 * -ENOENT and a one-line reason naming the missing piece (never a crash, nothing left open), and
 * the xdma data path runs dmatest against a regular file standing in for the XDMA character devices
 * (pwrite/pread at card-address offsets, chunked through small aligned staging buffers).
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
	DT_CHECK(rc == -ENOENT && dev == NULL && strstr(err, "none_h2c_0") &&
		     strstr(err, "xdma driver"),
		 "xdma open without nodes: rc %d err '%s'", rc, err);
	if (access("/dev/xdma0_h2c_0", F_OK) != 0) {
		cfg.xdma_prefix = NULL;
		rc = dma_dev_open(&dma_xdma_i, &cfg, &dev, err, sizeof(err));
		DT_CHECK(rc == -ENOENT && dev == NULL && strstr(err, "/dev/xdma0_h2c_0"),
			 "xdma default node: rc %d err '%s'", rc, err);
	}

	/* A regular file as the card: channel 0 complete, channel 1 missing its c2h node. */
	char card_path[300];
	snprintf(card_path, sizeof(card_path), "%s/card", tmpdir);
	struct file_card fc = {.fd = open(card_path, O_RDWR | O_CREAT | O_TRUNC, 0600),
			       .banks = xbanks};
	DT_CHECK(fc.fd >= 0, "create card file");
	if (fc.fd < 0)
		return;
	DT_CHECK(node_link("h2c", 0) == 0 && node_link("c2h", 0) == 0 && node_link("h2c", 1) == 0,
		 "node links");
	snprintf(prefix, sizeof(prefix), "%s/xdma0", tmpdir);
	cfg.xdma_prefix = prefix;
	rc = dma_dev_open(&dma_xdma_i, &cfg, &dev, err, sizeof(err));
	DT_CHECK(rc == -ENOENT && dev == NULL && strstr(err, "xdma0_c2h_1"),
		 "xdma half a channel: rc %d err '%s'", rc, err);
	DT_CHECK(node_link("c2h", 1) == 0, "node link c2h_1");
	cfg.staging_bytes = 1000;
	rc = dma_dev_open(&dma_xdma_i, &cfg, &dev, err, sizeof(err));
	DT_CHECK(rc == -EINVAL && strstr(err, "staging_bytes"),
		 "unaligned staging size: rc %d err '%s'", rc, err);
	cfg.staging_bytes = 8192;
	rc = dma_dev_open(&dma_xdma_i, &cfg, &dev, err, sizeof(err));
	DT_CHECK(rc == 0 && dev, "xdma open on the file: rc %d err '%s'", rc, err);
	if (rc)
		return;
	DT_CHECK(!strcmp(dma_dev_name(dev), "xdma") && dma_dev_bank_ptr(dev, 0) == NULL,
		 "xdma name, no bank view");
	struct dt_card card;
	struct dt_card_io io = {file_read, file_write, &fc};
	dt_card_init(&card, xbanks, 2, io);
	struct dt_stats st = dt_run_rounds(dev, &card, 40, 10, 4, 40 << 10);
	printf("xdma dmatest on a file: %u transfers, %llu bytes on 2 channels, %u bad, %zu bad "
	       "bytes\n",
	       st.xfers, (unsigned long long)st.bytes, st.bad, st.bad_bytes);
	DT_CHECK(st.submit_rc == 0 && st.bad == 0 && st.bad_bytes == 0 && st.xfers >= 40,
		 "xdma dmatest: rc %d, %u bad transfers, %zu bad bytes", st.submit_rc, st.bad,
		 st.bad_bytes);

	/* A card that ends early (file truncated inside bank 1): the read comes back SHORT. */
	DT_CHECK(ftruncate(fc.fd, (off_t)xbanks[1].base + 100) == 0, "truncate");
	uint8_t buf[1000];
	struct dma_sg sg = {.host = buf, .bank = 1, .card_off = 0, .len = sizeof(buf)};
	struct dma_xfer x = {.dir = DMA_DIR_C2H, .sg = &sg, .n_sg = 1};
	struct dma_cpl c;
	rc = dma_copy_sync(dev, 0, &x, 1, 5000000000ll, &c);
	DT_CHECK(rc == -EIO && c.status == DMA_STATUS_SHORT && c.bytes == 100,
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
	DT_CHECK(rc == -ENODEV && dev == NULL &&
		     (strstr(err, "XILINX_XRT") || strstr(err, "headers")),
		 "xrt without XILINX_XRT: rc %d err '%s'", rc, err);

	setenv("XILINX_XRT", tmpdir, 1);
	rc = dma_dev_open(&dma_xrt_i, &cfg, &dev, err, sizeof(err));
	printf("xrt, XILINX_XRT without XRT: %d: %s\n", rc, err);
	DT_CHECK(rc == -ENODEV && dev == NULL &&
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
		DT_CHECK(rc == -ENODEV && dev == NULL &&
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
	const char *t = getenv("TMPDIR");
	snprintf(tmpdir, sizeof(tmpdir), "%s/dmatest.XXXXXX", t && *t ? t : "/tmp");
	if (!mkdtemp(tmpdir)) {
		printf("cannot create a temporary directory\n0 passed, 1 failed\n");
		return 1;
	}
	test_xrt();
	test_xdma();
	cleanup();
	printf("%d passed, %d failed\n", dt_pass, dt_fail);
	return dt_fail != 0;
}
