/*
 * dmatest.h - shared helpers of the drivers/ tests, in the style of Linux dmatest: a shadow copy of
 * card memory, pattern fills, random scatter-gather rounds (random sizes, offsets, channels and
 * directions, destinations that never overlap within a round) and a full compare of every byte of
 * every bank and every host destination, with guard bytes around each host destination.
 * Header-only; each test program includes it once, checks with tests/harness.h's macros and ends
 * with `return harness_done();`.
 */
#ifndef MOECARD_DMATEST_H
#define MOECARD_DMATEST_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dma.h"
#include "tests/harness.h" /* CHECK and the counts line */

/* Deterministic xorshift64 generator. */
static uint64_t dt_rng = 0x2545F4914F6CDD1Dull;
static inline uint64_t dt_rand(void)
{
	dt_rng ^= dt_rng << 13;
	dt_rng ^= dt_rng >> 7;
	dt_rng ^= dt_rng << 17;
	return dt_rng;
}
/* Uniform in [lo, hi]. */
static inline uint64_t dt_range(uint64_t lo, uint64_t hi)
{
	return lo + dt_rand() % (hi - lo + 1);
}

/* Random transfer length, dmatest-like: mostly small, some up to max. */
static inline size_t dt_len(size_t max)
{
	uint64_t k = dt_rand() % 10;
	size_t hi = k < 5 ? 64 : k < 8 ? 4096 : max;
	if (hi > max)
		hi = max;
	return (size_t)dt_range(1, hi);
}

#define DT_GUARD 64 /* guard bytes either side of a host destination */
#define DT_GUARD_BYTE 0xE7
#define DT_MAX_BANKS 8
#define DT_MAX_XFERS 64
#define DT_MAX_SG 4

/* How the test reads and writes card memory behind the driver's back. */
struct dt_card_io {
	/* Copies len bytes of bank at off to dst (for verification). */
	void (*read)(void *arg, unsigned bank, uint64_t off, void *dst, size_t len);
	/* Copies len bytes of src to bank at off (for the initial pattern). */
	void (*write)(void *arg, unsigned bank, uint64_t off, const void *src, size_t len);
	void *arg; /* passed back */
};

/* The test's model of the card: what each bank must contain. */
struct dt_card {
	unsigned n_banks;	       /* banks */
	uint64_t size[DT_MAX_BANKS];   /* bytes per bank */
	uint8_t *shadow[DT_MAX_BANKS]; /* [size] expected bank contents */
	struct dt_card_io io;	       /* access to the real card memory */
};

/* One transfer of a round and what it must produce. */
struct dt_xfer {
	struct dma_xfer x;		/* as submitted */
	struct dma_sg sg[DT_MAX_SG];	/* [x.n_sg] */
	uint8_t *buf[DT_MAX_SG];	/* host side incl. guards: [DT_GUARD | len | DT_GUARD] */
	struct dma_hbuf *hb[DT_MAX_SG]; /* registered buffers used instead of buf, or NULL */
	uint8_t *expect[DT_MAX_SG];	/* C2H: expected host bytes [len] */
	unsigned ch;			/* channel */
	uint64_t fence;			/* from submit */
	int seen;			/* completions reaped for it */
	struct dma_cpl cpl;		/* last completion */
};

/* Expected byte of the initial pattern of bank b at offset i. */
static inline uint8_t dt_pattern(unsigned b, uint64_t i)
{
	return (uint8_t)(i * 31 + (i >> 9) + b * 7 + 0x5A);
}

/* Sets up the shadow and fills the card with the initial pattern. Returns 0 or -ENOMEM. */
static inline int dt_card_init(struct dt_card *c, const struct dma_bank *banks, unsigned n,
			       struct dt_card_io io)
{
	memset(c, 0, sizeof(*c));
	c->n_banks = n;
	c->io = io;
	for (unsigned b = 0; b < n; b++) {
		c->size[b] = banks[b].size;
		c->shadow[b] = malloc(banks[b].size);
		if (!c->shadow[b])
			return -ENOMEM;
		for (uint64_t i = 0; i < c->size[b]; i++)
			c->shadow[b][i] = dt_pattern(b, i);
		io.write(io.arg, b, 0, c->shadow[b], c->size[b]);
	}
	return 0;
}

static inline void dt_card_free(struct dt_card *c)
{
	for (unsigned b = 0; b < c->n_banks; b++)
		free(c->shadow[b]);
}

/* Compares every byte of every bank with the shadow; returns the number of differing bytes and
 * prints the first difference. */
static inline size_t dt_card_verify(struct dt_card *c, const char *what)
{
	size_t bad = 0;
	for (unsigned b = 0; b < c->n_banks; b++) {
		uint8_t *got = malloc(c->size[b]);
		if (!got)
			return 1;
		c->io.read(c->io.arg, b, 0, got, c->size[b]);
		for (uint64_t i = 0; i < c->size[b]; i++) {
			if (got[i] != c->shadow[b][i]) {
				if (!bad)
					printf(
					    "  %s: bank %u offset %llu: got 0x%02x, want 0x%02x\n",
					    what, b, (unsigned long long)i, got[i],
					    c->shadow[b][i]);
				bad++;
			}
		}
		free(got);
	}
	return bad;
}

/* Frees what dt_round_make allocated for t. */
static inline void dt_xfer_free(struct dma_dev *dev, struct dt_xfer *t)
{
	for (unsigned i = 0; i < t->x.n_sg; i++) {
		free(t->buf[i]);
		free(t->expect[i]);
		dma_hbuf_free(dev, t->hb[i]);
		t->buf[i] = t->expect[i] = NULL;
		t->hb[i] = NULL;
	}
}

/* Host bytes [len] of element i (inside the guards, or in the registered buffer). */
static inline uint8_t *dt_host(struct dt_xfer *t, unsigned i)
{
	return t->hb[i] ? (uint8_t *)dma_hbuf_ptr(t->hb[i]) + t->sg[i].hbuf_off
			: t->buf[i] + DT_GUARD;
}

/*
 * Makes up to n random transfers whose card ranges do not overlap (a bump cursor per bank with
 * random gaps), each with 1..max_sg elements of at most max_len bytes, one direction each, on a
 * random channel of n_ch; every fourth element uses a registered host buffer. Updates nothing in
 * the shadow yet (dt_round_apply does, for the transfers that succeeded). Returns the count made.
 */
static inline unsigned dt_round_make(struct dma_dev *dev, struct dt_card *c, struct dt_xfer *t,
				     unsigned n, unsigned max_sg, size_t max_len, unsigned n_ch)
{
	uint64_t cursor[DT_MAX_BANKS];
	unsigned k = 0;
	for (unsigned b = 0; b < c->n_banks; b++)
		cursor[b] = dt_range(0, 255);
	for (; k < n; k++) {
		struct dt_xfer *x = &t[k];
		memset(x, 0, sizeof(*x));
		x->x.dir = dt_rand() & 1 ? DMA_DIR_C2H : DMA_DIR_H2C;
		x->x.cookie = 0xC0DE0000ull + k;
		x->x.sg = x->sg;
		x->ch = (unsigned)(dt_rand() % n_ch);
		unsigned want = (unsigned)dt_range(1, max_sg);
		for (unsigned i = 0; i < want; i++) {
			unsigned b = (unsigned)(dt_rand() % c->n_banks);
			size_t len = dt_len(max_len);
			uint64_t off = cursor[b] + dt_range(0, 63);
			if (off + len > c->size[b])
				break;
			cursor[b] = off + len;
			struct dma_sg *s = &x->sg[i];
			s->bank = b;
			s->card_off = off;
			s->len = len;
			uint8_t *host;
			if (dt_rand() % 4 == 0 &&
			    dma_hbuf_alloc(dev, len + 2 * DT_GUARD, &x->hb[i]) == 0) {
				s->hbuf = x->hb[i];
				s->hbuf_off = DT_GUARD;
				host = dma_hbuf_ptr(x->hb[i]);
			} else {
				x->buf[i] = malloc(len + 2 * DT_GUARD);
				s->host = x->buf[i] + DT_GUARD;
				host = x->buf[i];
			}
			memset(host, DT_GUARD_BYTE, len + 2 * DT_GUARD);
			if (x->x.dir == DMA_DIR_H2C) {
				for (size_t j = 0; j < len; j++)
					host[DT_GUARD + j] = (uint8_t)dt_rand();
			} else {
				x->expect[i] = malloc(len);
				memcpy(x->expect[i], c->shadow[b] + off, len);
			}
			x->x.n_sg = i + 1;
		}
		if (x->x.n_sg == 0)
			break;
	}
	return k;
}

/* Records the effect of successful H2C transfer t in the shadow. */
static inline void dt_shadow_apply(struct dt_card *c, struct dt_xfer *t)
{
	if (t->x.dir != DMA_DIR_H2C)
		return;
	for (unsigned i = 0; i < t->x.n_sg; i++)
		memcpy(c->shadow[t->sg[i].bank] + t->sg[i].card_off, dt_host(t, i), t->sg[i].len);
}

/* Checks a finished C2H transfer: data equal, guard bytes untouched. Returns bad bytes. */
static inline size_t dt_host_verify(struct dt_xfer *t, unsigned idx)
{
	size_t bad = 0;
	for (unsigned i = 0; i < t->x.n_sg; i++) {
		uint8_t *h = dt_host(t, i) - DT_GUARD;
		size_t len = t->sg[i].len;
		for (size_t j = 0; j < len + 2 * DT_GUARD; j++) {
			int in = j >= DT_GUARD && j < DT_GUARD + len;
			uint8_t want =
			    in ? (t->x.dir == DMA_DIR_C2H ? t->expect[i][j - DT_GUARD] : h[j])
			       : DT_GUARD_BYTE;
			if (h[j] != want) {
				if (!bad)
					printf("  xfer %u sg %u: host byte %zd (%s): got 0x%02x, "
					       "want 0x%02x\n",
					       idx, i, (ssize_t)j - DT_GUARD, in ? "data" : "guard",
					       h[j], want);
				bad++;
			}
		}
	}
	return bad;
}

/* Submits t[0..n) in order, reaping to make room on -EAGAIN. Returns 0 or the submit error. */
static inline int dt_submit_all(struct dma_dev *dev, struct dt_xfer *t, unsigned n)
{
	for (unsigned k = 0; k < n; k++) {
		int rc;
		while ((rc = dma_chan_submit(dev, t[k].ch, &t[k].x, &t[k].fence)) == -EAGAIN) {
			/* Ring full: wait for the oldest work of the channel, records are kept for
			 * the caller (dt_reap_all picks them up by cookie). */
			struct dma_cpl tmp[64];
			uint64_t f = dma_fence_completed(dev, t[k].ch) + 1;
			int w = dma_fence_wait(dev, t[k].ch, f, 5000000000ll);
			if (w == -ETIMEDOUT)
				return w;
			int got = dma_chan_reap(dev, t[k].ch, tmp, 64);
			for (int g = 0; g < got; g++) {
				uint64_t idx = tmp[g].cookie - 0xC0DE0000ull;
				if (idx < n) {
					t[idx].seen++;
					t[idx].cpl = tmp[g];
				}
			}
		}
		if (rc)
			return rc;
	}
	return 0;
}

/* Reaps every record of every channel into the matching t[] by cookie. Returns records reaped. */
static inline unsigned dt_reap_all(struct dma_dev *dev, struct dt_xfer *t, unsigned n)
{
	unsigned total = 0;
	for (unsigned ch = 0; ch < dma_dev_n_channels(dev); ch++) {
		struct dma_cpl tmp[64];
		int got;
		while ((got = dma_chan_reap(dev, ch, tmp, 64)) > 0) {
			for (int g = 0; g < got; g++) {
				uint64_t idx = tmp[g].cookie - 0xC0DE0000ull;
				if (idx < n) {
					t[idx].seen++;
					t[idx].cpl = tmp[g];
				} else {
					printf("  unknown cookie 0x%llx\n",
					       (unsigned long long)tmp[g].cookie);
				}
				total++;
			}
		}
	}
	return total;
}

/* Totals of dt_run_rounds. */
struct dt_stats {
	unsigned xfers;	  /* transfers completed */
	uint64_t bytes;	  /* bytes moved */
	unsigned bad;	  /* transfers with a wrong status, byte count or completion count */
	size_t bad_bytes; /* differing bytes in banks or host destinations */
	int submit_rc;	  /* first submit/wait error, 0 if none */
};

/*
 * dmatest proper: rounds of random transfers submitted to every channel, then waited, reaped and
 * verified: each transfer completes exactly once with status OK and the full byte count, every
 * bank byte equals the shadow (so bytes outside destinations are untouched), and every host
 * destination holds the card data with its guard bytes intact.
 */
static inline struct dt_stats dt_run_rounds(struct dma_dev *dev, struct dt_card *c, unsigned rounds,
					    unsigned max_x, unsigned max_sg, size_t max_len)
{
	static struct dt_xfer t[DT_MAX_XFERS];
	struct dt_stats st = {0};
	unsigned n_ch = dma_dev_n_channels(dev);
	for (unsigned r = 0; r < rounds && !st.submit_rc; r++) {
		unsigned n =
		    dt_round_make(dev, c, t, (unsigned)dt_range(1, max_x), max_sg, max_len, n_ch);
		st.submit_rc = dt_submit_all(dev, t, n);
		for (unsigned ch = 0; ch < n_ch && !st.submit_rc; ch++)
			st.submit_rc =
			    dma_fence_wait(dev, ch, dma_fence_submitted(dev, ch), 10000000000ll);
		dt_reap_all(dev, t, n);
		for (unsigned k = 0; k < n; k++) {
			uint64_t want = 0;
			for (unsigned i = 0; i < t[k].x.n_sg; i++)
				want += t[k].sg[i].len;
			if (t[k].seen != 1 || t[k].cpl.status != DMA_STATUS_OK ||
			    t[k].cpl.bytes != want || t[k].cpl.sg_index != t[k].x.n_sg) {
				if (!st.bad)
					printf("  round %u xfer %u: seen %d, status %s, bytes %llu "
					       "of %llu\n",
					       r, k, t[k].seen, dma_status_str(t[k].cpl.status),
					       (unsigned long long)t[k].cpl.bytes,
					       (unsigned long long)want);
				st.bad++;
			}
			dt_shadow_apply(c, &t[k]);
			st.bad_bytes += dt_host_verify(&t[k], k);
			st.xfers++;
			st.bytes += want;
		}
		st.bad_bytes += dt_card_verify(c, "bank");
		for (unsigned k = 0; k < n; k++)
			dt_xfer_free(dev, &t[k]);
	}
	return st;
}

#endif /* MOECARD_DMATEST_H */
