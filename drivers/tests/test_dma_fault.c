/*
 * test_dma_fault.c - countdown fault injection on the emulated DMA engine, SQLite style: for each
 * fault kind (error, short transfer, stuck channel), arm the fault at countdown n = 1, 2, ... over
 * a fixed random workload until a run completes with the fault never firing (which must be one
 * past the workload's descriptor count), and check in each run that the failed descriptor is
 * reported (exactly one record with the right status, element and byte count; the channel's wait
 * returns -EIO or times out and is reset), that no transfer is dropped or reported twice, and that
 * retrying the failed transfers leaves every bank and host byte exact. With one channel the failing
 * transfer and element are predicted exactly; with three, the invariants are checked.
 * Ends with "N passed, N failed".
 */
#include <time.h>

#include "dmatest.h"

static void emul_read(void *arg, unsigned bank, uint64_t off, void *dst, size_t len)
{
	memcpy(dst, (uint8_t *)dma_dev_bank_ptr(arg, bank) + off, len);
}
static void emul_write(void *arg, unsigned bank, uint64_t off, const void *src, size_t len)
{
	memcpy((uint8_t *)dma_dev_bank_ptr(arg, bank) + off, src, len);
}

static const struct dma_bank banks[2] = {
    {.base = 0x10000000, .size = 96 << 10, .mem_group = -1, .name = "HBM[0]"},
    {.base = 0x20000000, .size = 64 << 10, .mem_group = -1, .name = "HBM[1]"},
};

static const char *kind_name[] = {"none", "error", "short", "stuck"};

/* Restores the initial pattern in the card and the shadow. */
static void card_reset(struct dt_card *c)
{
	for (unsigned b = 0; b < c->n_banks; b++) {
		for (uint64_t i = 0; i < c->size[b]; i++)
			c->shadow[b][i] = dt_pattern(b, i);
		c->io.write(c->io.arg, b, 0, c->shadow[b], c->size[b]);
	}
}

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Waits for a stuck workload: returns when every channel is done, or all but one are done and
 * that one has made no progress for 250 ms (5 s at most). */
static void wait_stuck_or_done(struct dma_dev *dev)
{
	unsigned n = dma_dev_n_channels(dev);
	uint64_t last[DMA_MAX_CHANNELS] = {0};
	double since = now_s(), start = since;
	while (now_s() - start < 5.0) {
		unsigned done = 0, moved = 0;
		for (unsigned ch = 0; ch < n; ch++) {
			uint64_t c = dma_fence_completed(dev, ch);
			done += c == dma_fence_submitted(dev, ch);
			moved += c != last[ch];
			last[ch] = c;
		}
		if (done == n)
			return;
		if (moved)
			since = now_s();
		else if (done == n - 1 && now_s() - since > 0.25)
			return;
		struct timespec ts = {0, 1000000};
		nanosleep(&ts, NULL);
	}
}

#define SEED 0x0123456789ABCDEFull

/* Runs every countdown position of one fault kind on an n_ch-channel device. */
static void fault_loop(enum dma_fault kind, unsigned n_ch)
{
	struct dma_config cfg = {.banks = banks, .n_banks = 2, .n_channels = n_ch, .ring_order = 6};
	struct dma_dev *dev = NULL;
	char err[256];
	if (dma_dev_open(&dma_emul_i, &cfg, &dev, err, sizeof(err))) {
		CHECK(0, "open: %s", err);
		return;
	}
	struct dt_card card;
	struct dt_card_io io = {emul_read, emul_write, dev};
	dt_card_init(&card, banks, 2, io);
	static struct dt_xfer t[DT_MAX_XFERS];

	/* The workload's size in descriptors. */
	dt_rng = SEED;
	unsigned n = dt_round_make(dev, &card, t, 10, 3, 4096, n_ch), total = 0;
	for (unsigned k = 0; k < n; k++) {
		total += t[k].x.n_sg;
		dt_xfer_free(dev, &t[k]);
	}

	unsigned runs = 0, not_reported = 0, dropped = 0, wrong_status = 0, wrong_where = 0,
		 wait_bad = 0, retry_bad = 0, bad_bytes = 0, extra = 0;
	unsigned last = 0; /* the countdown at which the fault no longer fired */
	for (unsigned pos = 1; !last; pos++) {
		runs++;
		card_reset(&card);
		dt_rng = SEED;
		n = dt_round_make(dev, &card, t, 10, 3, 4096, n_ch);
		dma_dev_fault_set(dev, kind, pos, 0);
		if (dt_submit_all(dev, t, n)) {
			CHECK(0, "%s pos %u: submit failed", kind_name[kind], pos);
			break;
		}
		/* Where the fault must land when one channel runs the workload in order. */
		unsigned cum = 0, fk = n, fi = 0;
		for (unsigned k = 0; k < n && fk == n; k++) {
			if (pos <= cum + t[k].x.n_sg) {
				fk = k;
				fi = pos - cum - 1;
			}
			cum += t[k].x.n_sg;
		}
		int rcw[DMA_MAX_CHANNELS];
		if (kind == DMA_FAULT_STUCK) {
			if (n_ch == 1) {
				/* Exact: transfers before the stuck one (fences 1..fk) finish, it
				 * never does. */
				wait_bad += fk > 0 && dma_fence_wait(dev, 0, fk, 5000000000ll) != 0;
				if (fk == n)
					wait_bad += dma_fence_wait(dev, 0, n, 5000000000ll) != 0;
			} else {
				wait_stuck_or_done(dev);
			}
			for (unsigned ch = 0; ch < n_ch; ch++) {
				rcw[ch] = dma_fence_wait(dev, ch, dma_fence_submitted(dev, ch),
							 n_ch == 1 ? 20000000 : 0);
				wait_bad += n_ch == 1 && (rcw[ch] == -ETIMEDOUT) != (fk < n);
				if (rcw[ch] == -ETIMEDOUT) {
					wait_bad += dma_chan_reset(dev, ch, 5000000000ll) != 0;
					/* After the reset the aborted records must show up as -EIO.
					 */
					wait_bad +=
					    dma_fence_wait(dev, ch, dma_fence_submitted(dev, ch),
							   0) != -EIO;
				}
			}
		} else {
			for (unsigned ch = 0; ch < n_ch; ch++)
				rcw[ch] = dma_fence_wait(dev, ch, dma_fence_submitted(dev, ch),
							 5000000000ll);
		}
		dt_reap_all(dev, t, n);
		enum dma_status want = kind == DMA_FAULT_ERROR	 ? DMA_STATUS_ERROR
				       : kind == DMA_FAULT_SHORT ? DMA_STATUS_SHORT
								 : DMA_STATUS_ABORTED;
		unsigned faulted = 0, failed_on[DMA_MAX_CHANNELS] = {0};
		for (unsigned k = 0; k < n; k++) {
			dropped += t[k].seen != 1;
			if (t[k].cpl.status == DMA_STATUS_OK)
				continue;
			failed_on[t[k].ch]++;
			if (t[k].cpl.status != want) {
				wrong_status++;
				continue;
			}
			/* The faulted record is the one whose element did not finish; for a stuck
			 * channel the transfers queued behind it are ABORTED at element 0 with 0
			 * bytes. */
			unsigned i = t[k].cpl.sg_index;
			uint64_t before = 0;
			for (unsigned j = 0; j < i && j < t[k].x.n_sg; j++)
				before += t[k].sg[j].len;
			size_t len = i < t[k].x.n_sg ? t[k].sg[i].len : 0;
			uint64_t want_bytes = before + (kind == DMA_FAULT_ERROR	  ? len / 3
							: kind == DMA_FAULT_SHORT ? len / 2
										  : 0);
			int is_fault = kind != DMA_FAULT_STUCK || faulted == 0;
			if (kind == DMA_FAULT_STUCK && n_ch == 1)
				is_fault = k == fk;
			if (is_fault) {
				faulted++;
				wrong_where += i >= t[k].x.n_sg || t[k].cpl.bytes != want_bytes;
				if (n_ch == 1)
					wrong_where += k != fk || i != fi;
			} else if (kind == DMA_FAULT_STUCK) {
				extra += i != 0 || t[k].cpl.bytes != 0;
			}
		}
		unsigned n_failed = 0;
		for (unsigned ch = 0; ch < n_ch; ch++)
			n_failed += failed_on[ch];
		if (n_failed) {
			not_reported += faulted != 1;
			for (unsigned ch = 0; ch < n_ch; ch++)
				if (kind != DMA_FAULT_STUCK)
					wait_bad += failed_on[ch] ? rcw[ch] != -EIO : rcw[ch] != 0;
			for (unsigned k = 0; k < n && n_ch == 1; k++)
				if (k < fk || kind != DMA_FAULT_STUCK)
					extra += k != fk && t[k].cpl.status != DMA_STATUS_OK;
		} else {
			last = pos; /* the fault never fired: this run was clean */
			for (unsigned ch = 0; ch < n_ch && kind != DMA_FAULT_STUCK; ch++)
				wait_bad += rcw[ch] != 0;
			dma_dev_fault_set(dev, DMA_FAULT_NONE, 0, 0);
		}
		if (pos > 4 * total + 100 && !last) {
			CHECK(0, "%s: the fault still fires at countdown %u (%u descriptors)",
			      kind_name[kind], pos, total);
			break;
		}

		/* Retry what failed; afterwards every byte must be exact. */
		for (unsigned k = 0; k < n; k++) {
			if (t[k].cpl.status != DMA_STATUS_OK) {
				struct dma_cpl c;
				int rc = dma_copy_sync(dev, t[k].ch, &t[k].x, 2, 5000000000ll, &c);
				retry_bad += rc != 0 || c.status != DMA_STATUS_OK;
			}
			dt_shadow_apply(&card, &t[k]);
			bad_bytes += dt_host_verify(&t[k], k) != 0;
		}
		bad_bytes += dt_card_verify(&card, kind_name[kind]) != 0;
		for (unsigned k = 0; k < n; k++)
			dt_xfer_free(dev, &t[k]);
	}
	printf("fault %s, %u channel(s): %u runs over %u descriptors: %u unreported, %u dropped, "
	       "%u wrong status, "
	       "%u wrong place, %u bad waits, %u extra failures, %u bad retries, %u runs with bad "
	       "bytes\n",
	       kind_name[kind], n_ch, runs, total, not_reported, dropped, wrong_status, wrong_where,
	       wait_bad, extra, retry_bad, bad_bytes);
	CHECK(last == total + 1 && total >= 10,
	      "%s: the fault stopped firing at countdown %u, want %u (one past the %u descriptors)",
	      kind_name[kind], last, total + 1, total);
	CHECK(not_reported == 0, "%s: %u faults not reported exactly once", kind_name[kind],
	      not_reported);
	CHECK(dropped == 0, "%s: %u transfers dropped or reported twice", kind_name[kind], dropped);
	CHECK(wrong_status == 0, "%s: %u records with an unexpected status", kind_name[kind],
	      wrong_status);
	CHECK(wrong_where == 0, "%s: %u faults at the wrong element or byte count", kind_name[kind],
	      wrong_where);
	CHECK(wait_bad == 0, "%s: %u waits/resets did not surface the failure", kind_name[kind],
	      wait_bad);
	CHECK(extra == 0, "%s: %u unexpected extra failures", kind_name[kind], extra);
	CHECK(retry_bad == 0, "%s: %u retries failed", kind_name[kind], retry_bad);
	CHECK(bad_bytes == 0, "%s: %u runs left wrong bytes after retry", kind_name[kind],
	      bad_bytes);
	dt_card_free(&card);
	dma_dev_close(dev);
}

/* dma_copy_sync: retries a one-shot fault to success; surfaces a persistent one. */
static void copy_sync_faults(void)
{
	struct dma_config cfg = {.banks = banks, .n_banks = 2, .n_channels = 1};
	struct dma_dev *dev = NULL;
	char err[256];
	if (dma_dev_open(&dma_emul_i, &cfg, &dev, err, sizeof(err))) {
		CHECK(0, "open: %s", err);
		return;
	}
	uint8_t src[3000], back[3000];
	for (int i = 0; i < 3000; i++)
		src[i] = (uint8_t)(i * 13 + 1);
	struct dma_sg sg[2] = {{.host = src, .bank = 0, .card_off = 100, .len = 1000},
			       {.host = src + 1000, .bank = 1, .card_off = 5, .len = 2000}};
	struct dma_xfer x = {.dir = DMA_DIR_H2C, .sg = sg, .n_sg = 2, .cookie = 7};
	struct dma_cpl c;
	for (int kind = DMA_FAULT_ERROR; kind <= DMA_FAULT_STUCK; kind++) {
		memset(dma_dev_bank_ptr(dev, 0), 0, banks[0].size);
		memset(dma_dev_bank_ptr(dev, 1), 0, banks[1].size);
		dma_dev_fault_set(dev, (enum dma_fault)kind, 2, 0);
		uint64_t f0 = dma_fence_submitted(dev, 0);
		int rc = dma_copy_sync(dev, 0, &x, 1, 500000000, &c);
		int same = !memcmp((uint8_t *)dma_dev_bank_ptr(dev, 0) + 100, src, 1000) &&
			   !memcmp((uint8_t *)dma_dev_bank_ptr(dev, 1) + 5, src + 1000, 2000);
		CHECK(rc == 0 && c.status == DMA_STATUS_OK && same &&
			  dma_fence_submitted(dev, 0) == f0 + 2,
		      "copy_sync with one %s fault: rc %d status %s, data %s, %llu attempts",
		      kind_name[kind], rc, dma_status_str(c.status), same ? "ok" : "wrong",
		      (unsigned long long)(dma_fence_submitted(dev, 0) - f0));
	}
	dma_dev_fault_set(dev, DMA_FAULT_ERROR, 1, 1);
	uint64_t f0 = dma_fence_submitted(dev, 0);
	int rc = dma_copy_sync(dev, 0, &x, 3, 5000000000ll, &c);
	CHECK(rc == -EIO && c.status == DMA_STATUS_ERROR && c.sg_index == 0 &&
		  dma_fence_submitted(dev, 0) == f0 + 4,
	      "persistent error surfaced after 3 retries: rc %d status %s attempts %llu", rc,
	      dma_status_str(c.status), (unsigned long long)(dma_fence_submitted(dev, 0) - f0));
	dma_dev_fault_set(dev, DMA_FAULT_NONE, 0, 0);
	struct dma_sg rs = {.host = back, .bank = 1, .card_off = 5, .len = 2000};
	struct dma_xfer r = {.dir = DMA_DIR_C2H, .sg = &rs, .n_sg = 1};
	CHECK(dma_copy_sync(dev, 0, &r, 0, -1, &c) == 0, "read back after disarm");
	/* A busy channel is refused. */
	CHECK(dma_chan_submit(dev, 0, &r, NULL) == 0, "submit");
	CHECK(dma_copy_sync(dev, 0, &r, 0, -1, &c) == -EBUSY, "copy_sync on a busy channel");
	printf(
	    "copy_sync: one-shot faults retried to success, persistent error surfaced as -EIO\n");
	dma_dev_close(dev);
}

int main(void)
{
	for (unsigned nch = 1; nch <= 3; nch += 2)
		for (int kind = DMA_FAULT_ERROR; kind <= DMA_FAULT_STUCK; kind++)
			fault_loop((enum dma_fault)kind, nch);
	copy_sync_faults();
	return harness_done();
}
