/*
 * test_dma_emul.c - the emulated DMA engine through dma.h: dmatest-style random transfers on
 * several channels (every bank byte and every host destination with its guards verified), ring and
 * free-running counter wrap-around, fence ordering seen by a concurrent observer, the modeled clock
 * against hand-computed figures, argument and configuration validation, and dma_copy_sync.
 * Prints each check group and ends with "N passed, N failed".
 */
#include <pthread.h>
#include <stdatomic.h>

#include "board.h"
#include "dma-impl.h"
#include "dma_board.h"
#include "dmatest.h"

static void emul_read(void *arg, unsigned bank, uint64_t off, void *dst, size_t len)
{
	memcpy(dst, (uint8_t *)dma_dev_bank_ptr(arg, bank) + off, len);
}
static void emul_write(void *arg, unsigned bank, uint64_t off, const void *src, size_t len)
{
	memcpy((uint8_t *)dma_dev_bank_ptr(arg, bank) + off, src, len);
}

/* Three banks with odd sizes and far-apart bases, like HBM pseudo-channels plus a DDR bank. */
static const struct dma_bank banks3[3] = {
    {.base = 0, .size = 256 << 10, .bw = 14.4e9, .mem_group = -1, .name = "HBM[0]"},
    {.base = 1ull << 32, .size = (192 << 10) + 77, .bw = 14.4e9, .mem_group = -1, .name = "HBM[1]"},
    {.base = 3ull << 33, .size = 320 << 10, .bw = 0, .mem_group = -1, .name = "DDR[0]"},
};

static struct dma_dev *open_emul(const struct dma_bank *b, unsigned nb, unsigned nch,
				 unsigned order, uint32_t start, double bw, int64_t lat)
{
	struct dma_config cfg = {.banks = b,
				 .n_banks = nb,
				 .n_channels = nch,
				 .ring_order = order,
				 .ring_counter_start = start,
				 .link_bw = bw,
				 .desc_latency_ns = lat};
	struct dma_dev *dev = NULL;
	char err[256];
	int rc = dma_dev_open(&dma_emul_i, &cfg, &dev, err, sizeof(err));
	CHECK(rc == 0 && dev, "open emul: %d %s", rc, err);
	return dev;
}

/* dmatest: random sizes, offsets, channels, directions, SG counts; full verification. */
static void test_dmatest(unsigned order, uint32_t start, unsigned rounds)
{
	struct dma_dev *dev = open_emul(banks3, 3, 3, order, start, 0, 0);
	if (!dev)
		return;
	struct dt_card card;
	struct dt_card_io io = {emul_read, emul_write, dev};
	CHECK(dt_card_init(&card, banks3, 3, io) == 0, "card init");
	struct dt_stats st = dt_run_rounds(dev, &card, rounds, 12, 4, 24 << 10);
	printf("dmatest (ring 2^%u, counters from 0x%08x): %u transfers, %llu bytes on 3 channels, "
	       "%u bad, "
	       "%zu bad bytes\n",
	       order, start, st.xfers, (unsigned long long)st.bytes, st.bad, st.bad_bytes);
	CHECK(st.submit_rc == 0, "submit/wait error %d", st.submit_rc);
	CHECK(st.bad == 0, "%u transfers with wrong completion", st.bad);
	CHECK(st.bad_bytes == 0, "%zu bytes differ", st.bad_bytes);
	CHECK(st.xfers > rounds, "only %u transfers ran", st.xfers);
	dt_card_free(&card);
	dma_dev_close(dev);
}

/* Ring wrap: a 4-entry ring, counters starting just below 2^32, 300 transfers of 1..4 elements. */
static void test_ring_wrap(void)
{
	const struct dma_bank b = {.base = 0x1000, .size = 64 << 10, .mem_group = -1};
	struct dma_dev *dev = open_emul(&b, 1, 1, 2, 0xFFFFFFF0u, 0, 0);
	if (!dev)
		return;
	CHECK(dma_dev_ring_entries(dev) == 4, "ring entries %u", dma_dev_ring_entries(dev));
	uint8_t *card = dma_dev_bank_ptr(dev, 0);
	uint8_t src[4][64];
	unsigned eagain = 0, bad_fence = 0, bad_order = 0, bad_data = 0, n = 300;
	uint64_t next_reap = 1;
	for (unsigned k = 0; k < n; k++) {
		struct dma_sg sg[4];
		unsigned nsg = (unsigned)dt_range(1, 4);
		for (unsigned i = 0; i < nsg; i++) {
			for (int j = 0; j < 64; j++)
				src[i][j] = (uint8_t)(k * 7 + i * 3 + j);
			sg[i] = (struct dma_sg){.host = src[i],
						.bank = 0,
						.card_off = (k % 200) * 256 + i * 64,
						.len = 64};
		}
		struct dma_xfer x = {.dir = DMA_DIR_H2C, .sg = sg, .n_sg = nsg, .cookie = k};
		uint64_t f;
		int rc;
		while ((rc = dma_chan_submit(dev, 0, &x, &f)) == -EAGAIN) {
			eagain++;
			struct dma_cpl c[4];
			dma_fence_wait(dev, 0, next_reap, 5000000000ll);
			int got = dma_chan_reap(dev, 0, c, 4);
			for (int g = 0; g < got; g++, next_reap++)
				bad_order += c[g].fence != next_reap ||
					     c[g].cookie != next_reap - 1 ||
					     c[g].status != DMA_STATUS_OK;
		}
		bad_fence += rc != 0 || f != k + 1;
		/* src is reused: wait for this transfer before the next round overwrites it. */
		dma_fence_wait(dev, 0, f, 5000000000ll);
		for (unsigned i = 0; i < nsg; i++)
			bad_data += memcmp(card + (k % 200) * 256 + i * 64, src[i], 64) != 0;
	}
	struct dma_cpl c[4];
	int got;
	while ((got = dma_chan_reap(dev, 0, c, 4)) > 0)
		for (int g = 0; g < got; g++, next_reap++)
			bad_order += c[g].fence != next_reap || c[g].status != DMA_STATUS_OK;
	printf("ring wrap: %u transfers through a 4-entry ring from counter 0xfffffff0, %u times "
	       "full\n",
	       n, eagain);
	CHECK(bad_fence == 0, "%u submits with wrong fence", bad_fence);
	CHECK(bad_order == 0, "%u completions out of order or failed", bad_order);
	CHECK(bad_data == 0, "%u elements with wrong data", bad_data);
	CHECK(next_reap == n + 1, "reaped %llu of %u", (unsigned long long)next_reap - 1, n);
	CHECK(eagain > 0, "the ring never filled (flow control untested)");
	struct dma_sg big[5];
	for (int i = 0; i < 5; i++)
		big[i] = (struct dma_sg){.host = src[0], .len = 1};
	struct dma_xfer xb = {.dir = DMA_DIR_H2C, .sg = big, .n_sg = 5};
	CHECK(dma_chan_submit(dev, 0, &xb, NULL) == -EINVAL,
	      "5 elements on a 4-entry ring not rejected");
	dma_dev_close(dev);
}

/* Observer thread: checks that the completed fence of each channel never goes backwards. */
struct observer {
	struct dma_dev *dev; /* device */
	atomic_int stop;     /* set to end */
	unsigned backwards;  /* decreases seen */
	unsigned samples;    /* reads */
};
static void *observe(void *arg)
{
	struct observer *o = arg;
	uint64_t last[2] = {0, 0};
	while (!atomic_load(&o->stop)) {
		for (unsigned ch = 0; ch < 2; ch++) {
			uint64_t v = dma_fence_completed(o->dev, ch);
			o->backwards += v < last[ch];
			last[ch] = v;
			o->samples++;
		}
	}
	return NULL;
}

/* Fence ordering: fences are 1, 2, 3... per channel; wait(f) means every record <= f exists;
 * completions come out in fence order; completed fences never go backwards. */
static void test_fence_order(void)
{
	const struct dma_bank b = {.base = 0, .size = 1 << 20, .mem_group = -1};
	struct dma_dev *dev = open_emul(&b, 1, 2, 6, 0, 0, 0);
	if (!dev)
		return;
	static uint8_t src[1 << 16];
	for (size_t i = 0; i < sizeof(src); i++)
		src[i] = (uint8_t)(i ^ (i >> 8));
	struct observer o = {.dev = dev};
	pthread_t th;
	pthread_create(&th, NULL, observe, &o);
	unsigned bad_fence = 0, bad_wait = 0, bad_order = 0;
	uint64_t expect_next[2] = {1, 1}, reaped[2] = {0, 0};
	for (unsigned k = 0; k < 400; k++) {
		unsigned ch = k & 1;
		/* Each channel writes its own half of the bank (overlapping writes would race). */
		struct dma_sg sg = {.host = src,
				    .bank = 0,
				    .card_off = ch * 500000 + dt_range(0, 400000),
				    .len = dt_range(1, 1 << 16)};
		struct dma_xfer x = {.dir = DMA_DIR_H2C, .sg = &sg, .n_sg = 1, .cookie = k};
		uint64_t f;
		int rc = dma_chan_submit(dev, ch, &x, &f);
		if (rc == -EAGAIN) {
			dma_fence_wait(dev, ch, dma_fence_submitted(dev, ch), -1);
			struct dma_cpl c[64];
			int got = dma_chan_reap(dev, ch, c, 64);
			for (int g = 0; g < got; g++)
				bad_order += c[g].fence != ++reaped[ch];
			rc = dma_chan_submit(dev, ch, &x, &f);
		}
		bad_fence += rc != 0 || f != expect_next[ch]++;
		if (k % 37 == 0) {
			/* After wait(f) every record up to f must be reapable right now. */
			uint64_t before = reaped[ch];
			bad_wait += dma_fence_wait(dev, ch, f, 5000000000ll) != 0;
			bad_wait += dma_fence_completed(dev, ch) < f;
			struct dma_cpl c[64];
			int got = dma_chan_reap(dev, ch, c, 64);
			for (int g = 0; g < got; g++)
				bad_order += c[g].fence != ++reaped[ch];
			bad_wait += reaped[ch] < f || (uint64_t)got < f - before;
		}
	}
	for (unsigned ch = 0; ch < 2; ch++) {
		dma_fence_wait(dev, ch, dma_fence_submitted(dev, ch), -1);
		struct dma_cpl c[64];
		int got;
		while ((got = dma_chan_reap(dev, ch, c, 64)) > 0)
			for (int g = 0; g < got; g++)
				bad_order += c[g].fence != ++reaped[ch];
	}
	atomic_store(&o.stop, 1);
	pthread_join(th, NULL);
	printf("fence order: 400 transfers on 2 channels, %u observer samples\n", o.samples);
	CHECK(bad_fence == 0, "%u fences not consecutive", bad_fence);
	CHECK(bad_wait == 0, "%u waits returned before their records existed", bad_wait);
	CHECK(bad_order == 0, "%u records out of fence order", bad_order);
	CHECK(o.backwards == 0, "completed fence went backwards %u times", o.backwards);
	CHECK(reaped[0] == 200 && reaped[1] == 200, "reaped %llu + %llu of 400",
	      (unsigned long long)reaped[0], (unsigned long long)reaped[1]);
	CHECK(dma_fence_wait(dev, 0, 201, 0) == -EINVAL, "wait on a fence never handed out");
	CHECK(dma_fence_wait(dev, 0, 0, 0) == 0, "wait on fence 0");
	dma_dev_close(dev);
}

/* Modeled clock against hand-computed values: 10 GB/s link, 500 ns per descriptor. */
static void test_model(void)
{
	const struct dma_bank b[2] = {
	    {.base = 0, .size = 4 << 20, .bw = 0, .mem_group = -1},
	    {.base = 1ull << 40, .size = 4 << 20, .bw = 5e9, .mem_group = -1}};
	struct dma_dev *dev = open_emul(b, 2, 2, 0, 0, 10e9, 500);
	if (!dev)
		return;
	static uint8_t buf[2][1000000];
	struct dma_cpl c;
	struct dma_sg sg[2] = {{.host = buf[0], .bank = 0, .len = 1000000},
			       {.host = buf[1], .bank = 1, .len = 1000000}};
	struct dma_xfer x = {.dir = DMA_DIR_H2C, .sg = sg, .n_sg = 1};
	CHECK(dma_copy_sync(dev, 0, &x, 0, -1, &c) == 0, "copy");
	uint64_t t1 = c.t_end_ns - c.t_start_ns;
	printf("model: 1 MB at 10 GB/s + 500 ns: %llu ns modeled\n", (unsigned long long)t1);
	CHECK_EQ(t1, 100500, "1 MB modeled, ns");

	x.n_sg = 2; /* second element goes to the 5 GB/s bank */
	CHECK(dma_copy_sync(dev, 0, &x, 0, -1, &c) == 0, "copy 2 elements");
	uint64_t t2 = c.t_end_ns - c.t_start_ns;
	CHECK_EQ(t2, 100500 + 200500, "2 elements (bank-limited second) modeled, ns");

	/* not_before later than the channel clock: the transfer starts there. */
	x.n_sg = 1;
	x.not_before_ns = dma_dev_vclock_ns(dev) + 1000000;
	CHECK(dma_copy_sync(dev, 0, &x, 0, -1, &c) == 0, "copy with not_before");
	CHECK(c.t_start_ns == x.not_before_ns && c.t_end_ns == x.not_before_ns + 100500,
	      "not_before: start %llu end %llu, want %llu and +100500",
	      (unsigned long long)c.t_start_ns, (unsigned long long)c.t_end_ns,
	      (unsigned long long)x.not_before_ns);

	/* Same direction on two channels share the link; opposite directions do not. */
	uint64_t t0 = dma_dev_vclock_ns(dev), f0, f1;
	struct dma_xfer a = {.dir = DMA_DIR_H2C, .sg = sg, .n_sg = 1, .not_before_ns = t0};
	struct dma_sg sg1 = {.host = buf[0], .bank = 0, .card_off = 1 << 20, .len = 1000000};
	struct dma_xfer bx = {.dir = DMA_DIR_H2C, .sg = &sg1, .n_sg = 1, .not_before_ns = t0};
	dma_chan_submit(dev, 0, &a, &f0);
	dma_chan_submit(dev, 1, &bx, &f1);
	dma_fence_wait(dev, 0, f0, -1);
	dma_fence_wait(dev, 1, f1, -1);
	uint64_t shared = dma_dev_vclock_ns(dev) - t0;
	CHECK(shared == 200500,
	      "2 x 1 MB H2C on 2 channels: %llu ns, want 200500 (latency overlapped)",
	      (unsigned long long)shared);
	t0 = dma_dev_vclock_ns(dev);
	struct dma_sg rs = {.host = buf[1], .bank = 0, .card_off = 2 << 20, .len = 1000000};
	struct dma_xfer r = {.dir = DMA_DIR_C2H, .sg = &rs, .n_sg = 1, .not_before_ns = t0};
	a.not_before_ns = t0;
	dma_chan_submit(dev, 0, &a, &f0);
	dma_chan_submit(dev, 1, &r, &f1);
	dma_fence_wait(dev, 0, f0, -1);
	dma_fence_wait(dev, 1, f1, -1);
	uint64_t duplex = dma_dev_vclock_ns(dev) - t0;
	printf("model: 2 x 1 MB same direction %llu ns, opposite directions %llu ns\n",
	       (unsigned long long)shared, (unsigned long long)duplex);
	CHECK_EQ(duplex, 100500, "H2C + C2H on 2 channels modeled, ns (full duplex)");
	struct dma_cpl rc[4];
	dma_chan_reap(dev, 0, rc, 4);
	dma_chan_reap(dev, 1, rc, 4);
	dma_dev_close(dev);
}

/* Argument, configuration and version validation. */
static void test_validation(void)
{
	const struct dma_bank b[2] = {{.base = 0, .size = 4096, .mem_group = -1},
				      {.base = 8192, .size = 4096, .mem_group = -1}};
	struct dma_dev *dev = open_emul(b, 2, 2, 3, 0, 0, 0);
	if (!dev)
		return;
	uint8_t h[64];
	struct dma_hbuf *hb = NULL;
	CHECK(dma_hbuf_alloc(dev, 128, &hb) == 0 && ((uintptr_t)dma_hbuf_ptr(hb) & 4095) == 0,
	      "hbuf aligned");
	struct dma_hbuf *hb0 = NULL;
	CHECK(dma_hbuf_alloc(dev, 0, &hb0) == -EINVAL && !hb0, "hbuf size 0");
	struct {
		struct dma_sg sg;
		int dir, ch, want;
		const char *what;
	} cases[] = {
	    {{.host = h, .bank = 0, .card_off = 0, .len = 64}, 0, 0, 0, "good"},
	    {{.host = h, .bank = 0, .card_off = 4032, .len = 64},
	     1,
	     1,
	     0,
	     "good, last bytes of bank"},
	    {{.host = h, .bank = 0, .card_off = 4033, .len = 64}, 0, 0, -ERANGE, "past bank end"},
	    {{.host = h, .bank = 0, .card_off = UINT64_MAX, .len = 64},
	     0,
	     0,
	     -ERANGE,
	     "offset overflow"},
	    {{.host = h, .bank = 2, .len = 64}, 0, 0, -EINVAL, "bank index"},
	    {{.host = h, .bank = 0, .len = 0}, 0, 0, -EINVAL, "zero length"},
	    {{.host = NULL, .bank = 0, .len = 8}, 0, 0, -EINVAL, "no host side"},
	    {{.host = h, .hbuf = hb, .bank = 0, .len = 8}, 0, 0, -EINVAL, "host and hbuf"},
	    {{.hbuf = hb, .hbuf_off = 120, .bank = 0, .len = 9}, 0, 0, -EINVAL, "past hbuf end"},
	    {{.hbuf = hb, .hbuf_off = 120, .bank = 1, .len = 8}, 0, 0, 0, "hbuf tail"},
	    {{.host = h, .bank = 0, .len = 8}, 2, 0, -EINVAL, "direction"},
	    {{.host = h, .bank = 0, .len = 8}, 0, 2, -EINVAL, "channel"},
	    {{.host = h, .bank = 0, .len = (size_t)DMA_REGS_DESC_LEN_MAX + 1},
	     0,
	     0,
	     -EINVAL,
	     "length over 2^28-1"},
	};
	unsigned bad = 0;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct dma_xfer x = {
		    .dir = (enum dma_dir)cases[i].dir, .sg = &cases[i].sg, .n_sg = 1};
		int rc = dma_chan_submit(dev, (unsigned)cases[i].ch, &x, NULL);
		if (rc != cases[i].want) {
			printf("  submit '%s': got %d, want %d\n", cases[i].what, rc,
			       cases[i].want);
			bad++;
		}
	}
	CHECK(bad == 0, "%u of %zu submit validation cases wrong", bad,
	      sizeof(cases) / sizeof(cases[0]));
	struct dma_xfer none = {.dir = DMA_DIR_H2C, .sg = &cases[0].sg, .n_sg = 0};
	CHECK(dma_chan_submit(dev, 0, &none, NULL) == -EINVAL, "n_sg 0");
	CHECK(dma_chan_reap(dev, 5, NULL, 0) == -EINVAL, "reap bad channel");
	CHECK(dma_fence_wait(dev, 5, 1, 0) == -EINVAL, "wait bad channel");
	CHECK(dma_chan_reset(dev, 5, 0) == -EINVAL, "reset bad channel");
	CHECK(dma_dev_fault_set(dev, DMA_FAULT_ERROR, 0, 0) == -EINVAL, "fault countdown 0");
	CHECK(dma_dev_fault_set(dev, (enum dma_fault)9, 1, 0) == -EINVAL, "fault kind");
	CHECK(dma_dev_bank_ptr(dev, 2) == NULL, "bank_ptr bad bank");
	CHECK(!strcmp(dma_dev_name(dev), "emul") && dma_dev_n_channels(dev) == 2, "name, channels");
	CHECK(dma_fence_wait(dev, 0, dma_fence_submitted(dev, 0), 5000000000ll) == 0,
	      "good cases completed");
	CHECK(dma_fence_wait(dev, 1, dma_fence_submitted(dev, 1), 5000000000ll) == 0,
	      "good cases completed");
	dma_hbuf_free(dev, hb);
	dma_dev_close(dev);

	/* Bad configurations: each names its field. */
	struct dma_bank ov[2] = {{.base = 0, .size = 8192, .mem_group = -1},
				 {.base = 4096, .size = 8192, .mem_group = -1}};
	struct dma_bank zero = {.base = 0, .size = 0, .mem_group = -1};
	struct {
		struct dma_config cfg;
		const char *field;
	} bad_cfg[] = {
	    {{.banks = NULL, .n_banks = 1}, "banks"},
	    {{.banks = ov, .n_banks = 2}, "banks[1].base"},
	    {{.banks = &zero, .n_banks = 1}, "banks[0].size"},
	    {{.banks = b, .n_banks = 2, .n_channels = 17}, "n_channels"},
	    {{.banks = b, .n_banks = 2, .ring_order = 17}, "ring_order"},
	    {{.banks = b, .n_banks = 2, .link_bw = -1}, "link_bw"},
	};
	bad = 0;
	for (size_t i = 0; i < sizeof(bad_cfg) / sizeof(bad_cfg[0]); i++) {
		char err[256] = "";
		struct dma_dev *d = (struct dma_dev *)1;
		int rc = dma_dev_open(&dma_emul_i, &bad_cfg[i].cfg, &d, err, sizeof(err));
		if (rc != -EINVAL || d != NULL || !strstr(err, bad_cfg[i].field)) {
			printf("  config '%s': rc %d, err '%s'\n", bad_cfg[i].field, rc, err);
			bad++;
		}
	}
	CHECK(bad == 0, "%u bad configurations not rejected by field", bad);

	/* An implementation with another ops version is refused. */
	struct dma_dev_i future = dma_emul_i;
	future.version = DMA_IMPL_VERSION + 1;
	struct dma_config cfg = {.banks = b, .n_banks = 2};
	char err[256] = "";
	struct dma_dev *d = NULL;
	int rc = dma_dev_open(&future, &cfg, &d, err, sizeof(err));
	CHECK(rc == -EINVAL && !d && strstr(err, "version"), "ops version mismatch: %d '%s'", rc,
	      err);
}

/* Closing with work queued: every queued transfer still completes (ABORTED or done), no hang. */
static void test_close_busy(void)
{
	const struct dma_bank b = {.base = 0, .size = 8 << 20, .mem_group = -1};
	struct dma_dev *dev = open_emul(&b, 1, 2, 8, 0, 0, 0);
	if (!dev)
		return;
	static uint8_t src[1 << 20];
	unsigned ok = 0;
	for (unsigned k = 0; k < 64; k++) {
		struct dma_sg sg = {
		    .host = src, .bank = 0, .card_off = (k % 8) << 20, .len = sizeof(src)};
		struct dma_xfer x = {.dir = DMA_DIR_H2C, .sg = &sg, .n_sg = 1};
		ok += dma_chan_submit(dev, k & 1, &x, NULL) == 0;
	}
	dma_dev_fault_set(dev, DMA_FAULT_STUCK, 3, 0);
	dma_dev_close(dev);
	CHECK(ok == 64, "queued %u of 64 before close", ok);
	printf("close with 64 MB queued and a stuck channel: returned\n");
}

/* Board bridge: a hand-built board_desc becomes banks, channels, link and latency; the engine then
 * charges those figures. Fence mapping into the firmware's 32-bit wrapping fence space. */
static void test_board_and_abi(void)
{
	static struct board_desc bd;
	memset(&bd, 0, sizeof(bd));
	bd.pcie_bw_mbps = 8000;
	bd.n_banks = 2;
	bd.bank[0] =
	    (struct board_bank){.name = "hbm0", .base = 0, .size = 1 << 20, .bw_mbps = 4000};
	bd.bank[1] = (struct board_bank){
	    .name = "ddr0", .base = 1ull << 34, .size = 2 << 20, .bw_mbps = 19200};
	bd.n_dma = 3;
	bd.dma[0] = (struct board_dma){.to_card = 1, .latency_ns = 700};
	bd.dma[1] = (struct board_dma){.to_card = 1, .latency_ns = 900};
	bd.dma[2] = (struct board_dma){.to_card = 0, .latency_ns = 800};
	struct dma_bank banks[2];
	struct dma_config cfg;
	CHECK(dma_config_from_board(&bd, banks, 1, &cfg) == -ENOSPC,
	      "board: too many banks not refused");
	int rc = dma_config_from_board(&bd, banks, 2, &cfg);
	CHECK(rc == 0 && cfg.n_banks == 2 && cfg.n_channels == 2 && cfg.link_bw == 8e9 &&
		  cfg.desc_latency_ns == 900 && banks[1].base == 1ull << 34 &&
		  banks[1].size == 2 << 20 && banks[0].bw == 4e9 && !strcmp(banks[1].name, "ddr0"),
	      "board config: rc %d banks %u ch %u link %.3g lat %lld", rc, cfg.n_banks,
	      cfg.n_channels, cfg.link_bw, (long long)cfg.desc_latency_ns);
	struct dma_dev *dev = NULL;
	char err[256];
	if (dma_dev_open(&dma_emul_i, &cfg, &dev, err, sizeof(err)) == 0) {
		static uint8_t src[400000];
		struct dma_sg sg[2] = {{.host = src, .bank = 0, .len = 400000},
				       {.host = src, .bank = 1, .len = 400000}};
		struct dma_xfer x = {.dir = DMA_DIR_H2C, .sg = sg, .n_sg = 2};
		struct dma_cpl c;
		CHECK(dma_copy_sync(dev, 1, &x, 0, -1, &c) == 0, "board copy");
		/* bank 0 limits to 4 GB/s: 900 + 100000; bank 1 to the 8 GB/s link: 900 + 50000 */
		uint64_t t = c.t_end_ns - c.t_start_ns;
		printf("board bridge: 2 x 400 kB into a 4 GB/s and a 19.2 GB/s bank over an 8 GB/s "
		       "link: %llu ns modeled\n",
		       (unsigned long long)t);
		CHECK_EQ(t, 100900 + 50900, "board-modeled time, ns");
		dma_dev_close(dev);
	} else {
		CHECK(0, "open from board config: %s", err);
	}
	bd.n_dma = 0;
	CHECK(dma_config_from_board(&bd, banks, 2, &cfg) == -EINVAL, "board without DMA channels");

	CHECK(dma_fence_abi(0x100000005ull) == 5u, "fence low 32 bits");
	CHECK(dma_fence_abi_reached(5, 0xFFFFFFF0u) && !dma_fence_abi_reached(0xFFFFFFF0u, 5) &&
		  dma_fence_abi_reached(7, 7) && !dma_fence_abi_reached(6, 7),
	      "fence wrap rule");
}

/* Banks given by the caller (the emulated card's memory): the engine moves bytes there and
 * nowhere else; the statistics count transfers, descriptors, bytes, failures and faults. */
static void test_bank_mem_and_stats(void)
{
	static uint8_t m0[256 << 10], m1[(192 << 10) + 77], m2[320 << 10];
	void *const mem[3] = {m0, m1, m2};
	void *const nomem[3] = {m0, NULL, m2};
	struct dma_config cfg = {.banks = banks3, .n_banks = 3, .n_channels = 2, .bank_mem = mem};
	struct dma_dev *dev = NULL;
	char err[256] = "";
	int rc = dma_dev_open(&dma_emul_i, &cfg, &dev, err, sizeof(err));
	CHECK(rc == 0 && dev, "open emul on caller banks: %d %s", rc, err);
	if (!dev)
		return;
	CHECK(dma_dev_bank_ptr(dev, 1) == m1, "bank 1 is the caller's memory");
	uint8_t src[3000];
	for (size_t i = 0; i < sizeof(src); i++)
		src[i] = (uint8_t)(i * 7 + 1);
	struct dma_sg sg[2] = {{.host = src, .bank = 1, .card_off = 100, .len = 1000},
			       {.host = src + 1000, .bank = 2, .card_off = 5, .len = 2000}};
	struct dma_xfer x = {.dir = DMA_DIR_H2C, .sg = sg, .n_sg = 2, .cookie = 42};
	struct dma_cpl cpl;
	rc = dma_copy_sync(dev, 1, &x, 0, -1, &cpl);
	CHECK(rc == 0 && cpl.cookie == 42 && !memcmp(m1 + 100, src, 1000) &&
		  !memcmp(m2 + 5, src + 1000, 2000),
	      "H2C into the caller's banks: %d", rc);
	dma_dev_fault_set(dev, DMA_FAULT_ERROR, 1, 0);
	rc = dma_copy_sync(dev, 0, &x, 0, -1, &cpl);
	CHECK(rc == -EIO && cpl.status == DMA_STATUS_ERROR, "faulted transfer: %d", rc);
	struct dma_stats st;
	dma_dev_stats(dev, &st);
	CHECK(st.xfers == 2 && st.xfers_bad == 1 && st.descs == 3 && st.faults == 1 &&
		  st.bytes == 3000 + 1000 / 3 && st.fences == 2 && st.link_ns > 0,
	      "stats: %llu xfers (%llu bad), %llu descs, %llu bytes, %llu faults, fences %llu",
	      (unsigned long long)st.xfers, (unsigned long long)st.xfers_bad,
	      (unsigned long long)st.descs, (unsigned long long)st.bytes,
	      (unsigned long long)st.faults, (unsigned long long)st.fences);
	dma_dev_close(dev);
	cfg.bank_mem = nomem;
	dev = NULL;
	rc = dma_dev_open(&dma_emul_i, &cfg, &dev, err, sizeof(err));
	CHECK(rc == -EINVAL && !dev && strstr(err, "bank_mem[1]"),
	      "a NULL bank is refused naming the field: %d '%s'", rc, err);
}

int main(void)
{
	test_dmatest(4, 0, 150);
	test_dmatest(2, 0xFFFFFFFEu, 60);
	test_ring_wrap();
	test_fence_order();
	test_model();
	test_validation();
	test_close_busy();
	test_board_and_abi();
	test_bank_mem_and_stats();
	return harness_done();
}
