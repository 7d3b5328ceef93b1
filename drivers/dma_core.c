/*
 * dma_core.c - the channel core shared by every DMA engine implementation (dma.h, dma-impl.h).
 *
 * Per channel it keeps a submission ring of 32-byte wire descriptors (dma-regs.h) with a host-side
 * shadow entry each, a completion ring of 48-byte wire completion records, free-running 32-bit
 * produce/consume counters for both, and a fence block. One worker thread per channel consumes the
 * submission ring in order, decodes each descriptor, applies the countdown fault hook, charges the
 * modeled clock (for modeled engines) and asks the implementation to move the bytes; then it writes
 * one completion record per transfer and advances the channel's completed fence.
 *
 * Modeled clock (docs/architecture.md, emulated card and timing model): a descriptor becomes
 * ready at max(channel clock, the transfer's not_before_ns), pays the per-descriptor latency,
 * then occupies its direction of the
 * link (full duplex: H2C and C2H are separate) for len / min(link bw, bank bw). Channels of one
 * direction share the link in the order their workers reach it, so latency of one channel overlaps
 * data of another.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "dma-impl.h"

#define DMA_MAX_BANKS 64

/* Host-side shadow of one submission ring slot (what the wire descriptor cannot carry). */
struct dma_sq_side {
	struct dma_hbuf *hbuf;	/* registered buffer of the element, or NULL */
	size_t hbuf_off;	/* offset of the element's host side in hbuf */
	uint64_t cookie;	/* transfer's tag (first slot of a transfer) */
	uint64_t fence;		/* transfer's fence (first slot of a transfer) */
	uint64_t not_before_ns; /* transfer's modeled issue time (first slot) */
	uint32_t n_sg;		/* descriptors in the transfer (first slot) */
};

/* One channel: rings, counters, fence block and its worker. */
struct dma_chan {
	struct dma_dev *dev;	   /* owner */
	unsigned idx;		   /* channel number */
	pthread_t thread;	   /* worker */
	int thread_started;	   /* 1 once the worker runs */
	pthread_mutex_t mu;	   /* guards everything below */
	pthread_cond_t work;	   /* signalled on submit, reset, stop */
	pthread_cond_t done;	   /* signalled on every completion */
	uint8_t (*sq)[32];	   /* [ring_n] wire descriptors (struct dma_regs_desc) */
	struct dma_sq_side *side;  /* [ring_n] shadows */
	uint8_t (*cq)[48];	   /* [ring_n] wire completion records (struct dma_regs_cpl) */
	uint32_t sq_prod, sq_cons; /* free-running descriptor counters */
	uint32_t cq_prod, cq_cons; /* free-running completion counters */
	uint8_t fence_blk[32];	   /* struct dma_regs_fence, little-endian */
	uint64_t abort_fence;	   /* transfers with fence <= this complete ABORTED */
	int stuck;		   /* 1 while the worker sits on a stuck descriptor */
	double vt;		   /* modeled channel clock, ns */
};

/* An open device. */
struct dma_dev {
	const struct dma_dev_i *impl;	      /* engine ops */
	struct dma_config cfg;		      /* validated copy; cfg.banks points at banks */
	struct dma_bank banks[DMA_MAX_BANKS]; /* [cfg.n_banks] */
	void *priv;			      /* engine state */
	unsigned n_ch;			      /* channels */
	uint32_t ring_n, ring_mask;	      /* entries per ring, entries - 1 */
	int stop;			      /* set under every channel lock at close */
	pthread_mutex_t mu;		      /* guards the model and fault fields */
	double link_bw;			      /* modeled link bytes/s per direction */
	double lat_ns;			      /* modeled per-descriptor latency, ns */
	double link_free[2];		      /* modeled time each link direction is free, ns */
	double vclock;			      /* modeled latest end time, ns */
	enum dma_fault fault_kind;	      /* armed fault, NONE = off */
	uint64_t fault_countdown;	      /* descriptors until it fires (1 = next) */
	int fault_persist;		      /* keep firing once reached */
	struct dma_stats st;		      /* totals (guarded by mu; fences summed on read) */
	struct dma_chan ch[DMA_MAX_CHANNELS]; /* [n_ch] */
};

#define FB_SUBMITTED 0
#define FB_COMPLETED 8
#define FB_ERRORS 16

static uint64_t fb_get(const struct dma_chan *c, int off)
{
	return dma_regs_get_le64(c->fence_blk + off);
}
static void fb_put(struct dma_chan *c, int off, uint64_t v)
{
	dma_regs_put_le64(c->fence_blk + off, v);
}

int dma_err_set(char *err, size_t err_len, int rc, const char *fmt, ...)
{
	if (err && err_len) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, err_len, fmt, ap);
		va_end(ap);
	}
	return rc;
}

void dma_dev_set_priv(struct dma_dev *dev, void *priv)
{
	dev->priv = priv;
}
void *dma_dev_priv(const struct dma_dev *dev)
{
	return dev->priv;
}
const struct dma_config *dma_dev_config(const struct dma_dev *dev)
{
	return &dev->cfg;
}
const char *dma_dev_name(const struct dma_dev *dev)
{
	return dev->impl->name;
}
unsigned dma_dev_n_channels(const struct dma_dev *dev)
{
	return dev->n_ch;
}
unsigned dma_dev_ring_entries(const struct dma_dev *dev)
{
	return dev->ring_n;
}

void *dma_dev_bank_ptr(struct dma_dev *dev, unsigned bank)
{
	if (!dev || bank >= dev->cfg.n_banks || !dev->impl->bank_ptr)
		return NULL;
	return dev->impl->bank_ptr(dev, bank);
}

void dma_dev_stats(struct dma_dev *dev, struct dma_stats *s)
{
	pthread_mutex_lock(&dev->mu);
	*s = dev->st;
	pthread_mutex_unlock(&dev->mu);
	s->fences = 0;
	for (unsigned i = 0; i < dev->n_ch; i++)
		s->fences += dma_fence_completed(dev, i);
}

uint64_t dma_dev_vclock_ns(struct dma_dev *dev)
{
	pthread_mutex_lock(&dev->mu);
	double v = dev->vclock;
	pthread_mutex_unlock(&dev->mu);
	return (uint64_t)(v + 0.5);
}

const char *dma_status_str(enum dma_status s)
{
	switch (s) {
	case DMA_STATUS_OK:
		return "ok";
	case DMA_STATUS_ERROR:
		return "error";
	case DMA_STATUS_SHORT:
		return "short";
	case DMA_STATUS_ABORTED:
		return "aborted";
	case DMA_STATUS_INVALID:
		return "invalid";
	}
	return "?";
}

/* ---- timed waits on CLOCK_MONOTONIC --------------------------------------------------------- */

/* Absolute CLOCK_MONOTONIC deadline timeout_ns from now. */
static struct timespec deadline_after(int64_t timeout_ns)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	int64_t ns = ts.tv_nsec + timeout_ns % 1000000000;
	ts.tv_sec += (time_t)(timeout_ns / 1000000000 + ns / 1000000000);
	ts.tv_nsec = (long)(ns % 1000000000);
	return ts;
}

/* Waits on cv once; returns ETIMEDOUT when the deadline (if any) passed. */
static int cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu, const struct timespec *dl)
{
	if (!dl) {
		pthread_cond_wait(cv, mu);
		return 0;
	}
	return pthread_cond_timedwait(cv, mu, dl);
}

/* ---- the worker -------------------------------------------------------------------------------
 */

/* Looks up the bank holding [addr, addr+len); returns its index or -1. */
static int bank_find(const struct dma_dev *dev, uint64_t addr, uint64_t len)
{
	for (unsigned b = 0; b < dev->cfg.n_banks; b++) {
		const struct dma_bank *k = &dev->banks[b];
		if (addr >= k->base && addr - k->base <= k->size &&
		    len <= k->size - (addr - k->base))
			return (int)b;
	}
	return -1;
}

/* Takes one tick of the countdown fault; returns the fault to apply to this descriptor. */
static enum dma_fault fault_take(struct dma_dev *dev)
{
	enum dma_fault k = DMA_FAULT_NONE;
	pthread_mutex_lock(&dev->mu);
	if (dev->fault_kind != DMA_FAULT_NONE) {
		if (dev->fault_countdown > 1) {
			dev->fault_countdown--;
		} else {
			k = dev->fault_kind;
			if (!dev->fault_persist)
				dev->fault_kind = DMA_FAULT_NONE;
		}
	}
	if (k != DMA_FAULT_NONE)
		dev->st.faults++;
	pthread_mutex_unlock(&dev->mu);
	return k;
}

/* Charges one descriptor of len bytes on channel c's modeled clock (latency, then the link
 * direction at min(link, bank) bandwidth); advances the channel clock and returns the descriptor's
 * end, ns. */
static double model_charge(struct dma_dev *dev, struct dma_chan *c, const struct dma_op *op,
			   size_t len)
{
	pthread_mutex_lock(&dev->mu);
	double bw = dev->link_bw;
	const struct dma_bank *k = &dev->banks[op->bank];
	if (k->bw > 0 && k->bw < bw)
		bw = k->bw;
	double start = c->vt + dev->lat_ns;
	if (dev->link_free[op->dir] > start)
		start = dev->link_free[op->dir];
	double end = start + (double)len * 1e9 / bw;
	dev->link_free[op->dir] = end;
	c->vt = end;
	if (end > dev->vclock)
		dev->vclock = end;
	pthread_mutex_unlock(&dev->mu);
	return end;
}

/* Executes the transfer whose first descriptor is at counter `first`; fills the record fields. */
static void chan_run_xfer(struct dma_chan *c, uint32_t first, int abort, struct dma_cpl *r)
{
	struct dma_dev *dev = c->dev;
	const struct dma_sq_side *s0 = &c->side[first & dev->ring_mask];
	uint32_t n = s0->n_sg;

	r->fence = s0->fence;
	r->cookie = s0->cookie;
	r->status = DMA_STATUS_OK;
	r->sg_index = n;
	r->bytes = 0;
	r->t_start_ns = r->t_end_ns = 0;
	if (abort) {
		r->status = DMA_STATUS_ABORTED;
		r->sg_index = 0;
		return;
	}
	if (dev->impl->modeled) {
		pthread_mutex_lock(&dev->mu);
		if ((double)s0->not_before_ns > c->vt)
			c->vt = (double)s0->not_before_ns;
		r->t_start_ns = (uint64_t)(c->vt + 0.5);
		pthread_mutex_unlock(&dev->mu);
	}
	for (uint32_t i = 0; i < n; i++) {
		uint32_t slot = (first + i) & dev->ring_mask;
		const uint8_t *d = c->sq[slot];
		uint32_t ctrl = dma_regs_get_le32(d), len = dma_regs_get_le32(d + 4);
		uint64_t src = dma_regs_get_le64(d + 8), dst = dma_regs_get_le64(d + 16);
		struct dma_op op;
		int eop_ok = (i == n - 1) == !!(ctrl & DMA_REGS_CTRL_EOP);

		op.dir = (enum dma_dir)DMA_REGS_CTRL_DIR(ctrl);
		op.card_addr = op.dir == DMA_DIR_H2C ? dst : src;
		op.host = (void *)(uintptr_t)(op.dir == DMA_DIR_H2C ? src : dst);
		op.hbuf = c->side[slot].hbuf;
		op.hbuf_off = c->side[slot].hbuf_off;
		op.len = len;
		int b = bank_find(dev, op.card_addr, len);
		if (DMA_REGS_CTRL_MAGIC(ctrl) != DMA_REGS_DESC_MAGIC ||
		    (ctrl & DMA_REGS_CTRL_RSVD_MASK) || op.dir > DMA_DIR_C2H || !eop_ok ||
		    len == 0 || len > DMA_REGS_DESC_LEN_MAX || b < 0 || !op.host) {
			r->status = DMA_STATUS_INVALID;
			r->sg_index = i;
			break;
		}
		op.bank = (unsigned)b;
		op.bank_off = op.card_addr - dev->banks[b].base;

		enum dma_fault f = fault_take(dev);
		if (f == DMA_FAULT_STUCK) {
			/* Stops here, like an engine waiting on a descriptor that never arrives,
			 * until dma_chan_reset (or close) aborts this fence. */
			pthread_mutex_lock(&c->mu);
			c->stuck = 1;
			while (c->abort_fence < r->fence && !dev->stop)
				pthread_cond_wait(&c->work, &c->mu);
			c->stuck = 0;
			pthread_mutex_unlock(&c->mu);
			r->status = DMA_STATUS_ABORTED;
			r->sg_index = i;
			break;
		}
		struct dma_op run = op;
		if (f == DMA_FAULT_SHORT)
			run.len = op.len / 2;
		else if (f == DMA_FAULT_ERROR)
			run.len = op.len / 3;
		size_t done = 0;
		int rc = run.len ? dev->impl->xfer(dev, c->idx, &run, &done) : 0;
		pthread_mutex_lock(&dev->mu);
		dev->st.descs++;
		pthread_mutex_unlock(&dev->mu);
		if (done > run.len)
			done = run.len;
		r->bytes += done;
		if (dev->impl->modeled)
			r->t_end_ns = (uint64_t)(model_charge(dev, c, &op, done) + 0.5);
		if (rc < 0 || f == DMA_FAULT_ERROR) {
			r->status = DMA_STATUS_ERROR;
			r->sg_index = i;
			break;
		}
		if (done < op.len) {
			r->status = DMA_STATUS_SHORT;
			r->sg_index = i;
			break;
		}
	}
	if (dev->impl->modeled && r->t_end_ns < r->t_start_ns)
		r->t_end_ns = r->t_start_ns;
}

/* Worker of one channel: consumes transfers in order until the device stops and the ring drains. */
static void *chan_worker(void *arg)
{
	struct dma_chan *c = arg;
	struct dma_dev *dev = c->dev;

	pthread_mutex_lock(&c->mu);
	for (;;) {
		while (!dev->stop && c->sq_cons == c->sq_prod)
			pthread_cond_wait(&c->work, &c->mu);
		if (c->sq_cons == c->sq_prod)
			break;
		uint32_t first = c->sq_cons;
		const struct dma_sq_side *s0 = &c->side[first & dev->ring_mask];
		uint32_t n = s0->n_sg;
		int abort = s0->fence <= c->abort_fence || dev->stop;
		pthread_mutex_unlock(&c->mu);

		struct dma_cpl r;
		chan_run_xfer(c, first, abort, &r);
		pthread_mutex_lock(&dev->mu);
		dev->st.xfers++;
		dev->st.xfers_bad += r.status != DMA_STATUS_OK;
		dev->st.bytes += r.bytes;
		dev->st.link_ns += r.t_end_ns - r.t_start_ns;
		pthread_mutex_unlock(&dev->mu);

		pthread_mutex_lock(&c->mu);
		uint8_t *w = c->cq[c->cq_prod & dev->ring_mask];
		dma_regs_put_le64(w + 0, r.fence);
		dma_regs_put_le64(w + 8, r.cookie);
		dma_regs_put_le32(w + 16, (uint32_t)r.status);
		dma_regs_put_le32(w + 20, r.sg_index);
		dma_regs_put_le64(w + 24, r.bytes);
		dma_regs_put_le64(w + 32, r.t_start_ns);
		dma_regs_put_le64(w + 40, r.t_end_ns);
		c->cq_prod++;
		c->sq_cons += n;
		fb_put(c, FB_COMPLETED, r.fence);
		if (r.status != DMA_STATUS_OK)
			fb_put(c, FB_ERRORS, fb_get(c, FB_ERRORS) + 1);
		pthread_cond_broadcast(&c->done);
	}
	pthread_mutex_unlock(&c->mu);
	return NULL;
}

/* ---- open / close -----------------------------------------------------------------------------
 */

/* Checks cfg; writes the offending field to err. Errors: -EINVAL. */
static int config_check(const struct dma_config *cfg, char *err, size_t err_len)
{
	if (!cfg)
		return dma_err_set(err, err_len, -EINVAL, "dma: config is NULL");
	if (!cfg->banks || cfg->n_banks == 0 || cfg->n_banks > DMA_MAX_BANKS)
		return dma_err_set(err, err_len, -EINVAL,
				   "dma: config field n_banks/banks: need 1..%d banks",
				   DMA_MAX_BANKS);
	for (unsigned i = 0; i < cfg->n_banks; i++) {
		const struct dma_bank *b = &cfg->banks[i];
		if (b->size == 0 || b->base + b->size < b->base)
			return dma_err_set(
			    err, err_len, -EINVAL,
			    "dma: config field banks[%u].size: 0 or base+size overflows", i);
		if (!(b->bw >= 0 && b->bw < 1e18))
			return dma_err_set(err, err_len, -EINVAL,
					   "dma: config field banks[%u].bw: not a bandwidth", i);
		for (unsigned j = 0; j < i; j++) {
			const struct dma_bank *o = &cfg->banks[j];
			if (b->base < o->base + o->size && o->base < b->base + b->size)
				return dma_err_set(
				    err, err_len, -EINVAL,
				    "dma: config field banks[%u].base: overlaps banks[%u]", i, j);
		}
	}
	if (cfg->n_channels > DMA_MAX_CHANNELS)
		return dma_err_set(err, err_len, -EINVAL,
				   "dma: config field n_channels: %u exceeds %d", cfg->n_channels,
				   DMA_MAX_CHANNELS);
	if (cfg->ring_order &&
	    (cfg->ring_order < DMA_RING_ORDER_MIN || cfg->ring_order > DMA_RING_ORDER_MAX))
		return dma_err_set(err, err_len, -EINVAL,
				   "dma: config field ring_order: %u not in %d..%d",
				   cfg->ring_order, DMA_RING_ORDER_MIN, DMA_RING_ORDER_MAX);
	if (!(cfg->link_bw >= 0 && cfg->link_bw < 1e18))
		return dma_err_set(err, err_len, -EINVAL,
				   "dma: config field link_bw: not a bandwidth");
	if (cfg->staging_bytes % 4096)
		return dma_err_set(err, err_len, -EINVAL,
				   "dma: config field staging_bytes: not a multiple of 4096");
	return 0;
}

int dma_dev_open(const struct dma_dev_i *impl, const struct dma_config *cfg, struct dma_dev **out,
		 char *err, size_t err_len)
{
	int rc;
	if (err && err_len)
		err[0] = 0;
	if (!out)
		return dma_err_set(err, err_len, -EINVAL, "dma: out is NULL");
	*out = NULL;
	if (!impl || impl->version != DMA_IMPL_VERSION || !impl->open || !impl->xfer)
		return dma_err_set(err, err_len, -EINVAL,
				   "dma: implementation %s has ops version %u, core wants %d",
				   impl && impl->name ? impl->name : "?", impl ? impl->version : 0,
				   DMA_IMPL_VERSION);
	rc = config_check(cfg, err, err_len);
	if (rc)
		return rc;

	struct dma_dev *dev = calloc(1, sizeof(*dev));
	if (!dev)
		return dma_err_set(err, err_len, -ENOMEM, "dma: out of memory");
	dev->impl = impl;
	dev->cfg = *cfg;
	memcpy(dev->banks, cfg->banks, cfg->n_banks * sizeof(dev->banks[0]));
	dev->cfg.banks = dev->banks;
	if (!dev->cfg.n_channels)
		dev->cfg.n_channels = 1;
	if (!dev->cfg.ring_order)
		dev->cfg.ring_order = DMA_RING_ORDER_DEF;
	dev->n_ch = dev->cfg.n_channels;
	dev->ring_n = 1u << dev->cfg.ring_order;
	dev->ring_mask = dev->ring_n - 1;
	dev->link_bw = cfg->link_bw > 0 ? cfg->link_bw : DMA_LINK_PCIE_GEN4_X16;
	dev->lat_ns = cfg->desc_latency_ns == 0	 ? DMA_DESC_LATENCY_DEF_NS
		      : cfg->desc_latency_ns < 0 ? 0.0
						 : (double)cfg->desc_latency_ns;
	pthread_mutex_init(&dev->mu, NULL);

	unsigned inited = 0;
	for (; inited < dev->n_ch; inited++) {
		struct dma_chan *c = &dev->ch[inited];
		pthread_condattr_t ca;
		c->dev = dev;
		c->idx = inited;
		c->sq_prod = c->sq_cons = c->cq_prod = c->cq_cons = cfg->ring_counter_start;
		c->sq = calloc(dev->ring_n, sizeof(*c->sq));
		c->side = calloc(dev->ring_n, sizeof(*c->side));
		c->cq = calloc(dev->ring_n, sizeof(*c->cq));
		if (!c->sq || !c->side || !c->cq) {
			free(c->sq);
			free(c->side);
			free(c->cq);
			rc = dma_err_set(err, err_len, -ENOMEM, "dma: out of memory for rings");
			goto fail_chans;
		}
		pthread_mutex_init(&c->mu, NULL);
		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&c->work, &ca);
		pthread_cond_init(&c->done, &ca);
		pthread_condattr_destroy(&ca);
	}

	rc = impl->open(dev, &dev->cfg, err, err_len);
	if (rc)
		goto fail_chans;

	for (unsigned i = 0; i < dev->n_ch; i++) {
		int e = pthread_create(&dev->ch[i].thread, NULL, chan_worker, &dev->ch[i]);
		if (e) {
			rc = dma_err_set(err, err_len, -e,
					 "dma: cannot start channel %u worker: %s", i, strerror(e));
			goto fail_threads;
		}
		dev->ch[i].thread_started = 1;
	}
	*out = dev;
	return 0;

fail_threads:
	dma_dev_close(dev); /* joins the started workers, closes the engine, frees the rest */
	return rc;
fail_chans:
	while (inited--) {
		struct dma_chan *c = &dev->ch[inited];
		pthread_cond_destroy(&c->work);
		pthread_cond_destroy(&c->done);
		pthread_mutex_destroy(&c->mu);
		free(c->sq);
		free(c->side);
		free(c->cq);
	}
	pthread_mutex_destroy(&dev->mu);
	free(dev);
	return rc;
}

void dma_dev_close(struct dma_dev *dev)
{
	if (!dev)
		return;
	for (unsigned i = 0; i < dev->n_ch; i++)
		pthread_mutex_lock(&dev->ch[i].mu);
	dev->stop = 1;
	for (unsigned i = 0; i < dev->n_ch; i++) {
		struct dma_chan *c = &dev->ch[i];
		c->abort_fence = fb_get(c, FB_SUBMITTED);
		pthread_cond_broadcast(&c->work);
	}
	for (unsigned i = dev->n_ch; i-- > 0;)
		pthread_mutex_unlock(&dev->ch[i].mu);
	for (unsigned i = 0; i < dev->n_ch; i++)
		if (dev->ch[i].thread_started)
			pthread_join(dev->ch[i].thread, NULL);
	if (dev->impl->close)
		dev->impl->close(dev);
	for (unsigned i = 0; i < dev->n_ch; i++) {
		struct dma_chan *c = &dev->ch[i];
		pthread_cond_destroy(&c->work);
		pthread_cond_destroy(&c->done);
		pthread_mutex_destroy(&c->mu);
		free(c->sq);
		free(c->side);
		free(c->cq);
	}
	pthread_mutex_destroy(&dev->mu);
	free(dev);
}

/* ---- faults and host buffers ------------------------------------------------------------------
 */

int dma_dev_fault_set(struct dma_dev *dev, enum dma_fault kind, uint64_t countdown, int persist)
{
	if (kind > DMA_FAULT_STUCK || (kind != DMA_FAULT_NONE && countdown == 0))
		return -EINVAL;
	pthread_mutex_lock(&dev->mu);
	int was_armed = dev->fault_kind != DMA_FAULT_NONE;
	dev->fault_kind = kind;
	dev->fault_countdown = countdown;
	dev->fault_persist = persist;
	pthread_mutex_unlock(&dev->mu);
	return kind == DMA_FAULT_NONE && was_armed ? 1 : 0;
}

int dma_hbuf_alloc(struct dma_dev *dev, size_t size, struct dma_hbuf **out)
{
	int rc;
	*out = NULL;
	if (size == 0)
		return -EINVAL;
	struct dma_hbuf *hb = calloc(1, sizeof(*hb));
	if (!hb)
		return -ENOMEM;
	hb->size = size;
	if (dev->impl->hbuf_alloc) {
		rc = dev->impl->hbuf_alloc(dev, hb);
		if (rc)
			goto fail;
	} else {
		rc = posix_memalign(&hb->ptr, 4096, size);
		if (rc) {
			rc = -rc;
			goto fail;
		}
		hb->locked =
		    mlock(hb->ptr, size) == 0; /* pinned if the limit allows; not required */
	}
	*out = hb;
	return 0;
fail:
	free(hb);
	return rc;
}

void dma_hbuf_free(struct dma_dev *dev, struct dma_hbuf *hb)
{
	if (!hb)
		return;
	if (dev->impl->hbuf_free) {
		dev->impl->hbuf_free(dev, hb);
	} else {
		if (hb->locked)
			munlock(hb->ptr, hb->size);
		free(hb->ptr);
	}
	free(hb);
}

void *dma_hbuf_ptr(struct dma_hbuf *hb)
{
	return hb ? hb->ptr : NULL;
}

/* ---- submission, completion, fences -----------------------------------------------------------
 */

/* Checks one element against dev; returns 0, -EINVAL or -ERANGE. */
static int sg_check(const struct dma_dev *dev, const struct dma_sg *s)
{
	if (!s->host == !s->hbuf || s->len == 0 || s->len > DMA_REGS_DESC_LEN_MAX ||
	    s->bank >= dev->cfg.n_banks)
		return -EINVAL;
	if (s->hbuf && (s->hbuf_off > s->hbuf->size || s->len > s->hbuf->size - s->hbuf_off))
		return -EINVAL;
	const struct dma_bank *b = &dev->banks[s->bank];
	if (s->card_off > b->size || s->len > b->size - s->card_off)
		return -ERANGE;
	return 0;
}

int dma_chan_submit(struct dma_dev *dev, unsigned ch, const struct dma_xfer *x, uint64_t *fence)
{
	if (!dev || ch >= dev->n_ch || !x || !x->sg || x->n_sg == 0 || x->n_sg > dev->ring_n ||
	    (x->dir != DMA_DIR_H2C && x->dir != DMA_DIR_C2H))
		return -EINVAL;
	for (unsigned i = 0; i < x->n_sg; i++) {
		int rc = sg_check(dev, &x->sg[i]);
		if (rc)
			return rc;
	}
	struct dma_chan *c = &dev->ch[ch];
	pthread_mutex_lock(&c->mu);
	uint64_t sub = fb_get(c, FB_SUBMITTED), comp = fb_get(c, FB_COMPLETED);
	uint32_t sq_used = c->sq_prod - c->sq_cons, cq_used = c->cq_prod - c->cq_cons;
	if (dev->stop || sq_used + x->n_sg > dev->ring_n ||
	    cq_used + (sub - comp) + 1 > dev->ring_n) {
		pthread_mutex_unlock(&c->mu);
		return dev->stop ? -EINVAL : -EAGAIN;
	}
	uint64_t f = sub + 1;
	for (unsigned i = 0; i < x->n_sg; i++) {
		const struct dma_sg *s = &x->sg[i];
		uint32_t slot = (c->sq_prod + i) & dev->ring_mask;
		uint64_t host =
		    (uint64_t)(uintptr_t)(s->hbuf ? (uint8_t *)s->hbuf->ptr + s->hbuf_off
						  : s->host);
		uint64_t card = dev->banks[s->bank].base + s->card_off;
		dma_regs_desc_encode(c->sq[slot], dma_regs_ctrl_make(x->dir, i == x->n_sg - 1),
				     (uint32_t)s->len, x->dir == DMA_DIR_H2C ? host : card,
				     x->dir == DMA_DIR_H2C ? card : host);
		struct dma_sq_side *sd = &c->side[slot];
		memset(sd, 0, sizeof(*sd));
		sd->hbuf = s->hbuf;
		sd->hbuf_off = s->hbuf_off;
		if (i == 0) {
			sd->cookie = x->cookie;
			sd->fence = f;
			sd->not_before_ns = x->not_before_ns;
			sd->n_sg = x->n_sg;
		}
	}
	c->sq_prod += x->n_sg;
	fb_put(c, FB_SUBMITTED, f);
	pthread_cond_signal(&c->work);
	pthread_mutex_unlock(&c->mu);
	if (fence)
		*fence = f;
	return 0;
}

/* Decodes the wire completion record at w. */
static void cpl_decode(const uint8_t *w, struct dma_cpl *r)
{
	r->fence = dma_regs_get_le64(w + 0);
	r->cookie = dma_regs_get_le64(w + 8);
	r->status = (enum dma_status)dma_regs_get_le32(w + 16);
	r->sg_index = dma_regs_get_le32(w + 20);
	r->bytes = dma_regs_get_le64(w + 24);
	r->t_start_ns = dma_regs_get_le64(w + 32);
	r->t_end_ns = dma_regs_get_le64(w + 40);
}

int dma_chan_reap(struct dma_dev *dev, unsigned ch, struct dma_cpl *out, unsigned max)
{
	if (!dev || ch >= dev->n_ch || (max && !out))
		return -EINVAL;
	struct dma_chan *c = &dev->ch[ch];
	unsigned k = 0;
	pthread_mutex_lock(&c->mu);
	while (k < max && c->cq_cons != c->cq_prod) {
		cpl_decode(c->cq[c->cq_cons & dev->ring_mask], &out[k++]);
		c->cq_cons++;
	}
	pthread_mutex_unlock(&c->mu);
	return (int)k;
}

uint64_t dma_fence_submitted(struct dma_dev *dev, unsigned ch)
{
	if (!dev || ch >= dev->n_ch)
		return 0;
	pthread_mutex_lock(&dev->ch[ch].mu);
	uint64_t v = fb_get(&dev->ch[ch], FB_SUBMITTED);
	pthread_mutex_unlock(&dev->ch[ch].mu);
	return v;
}

uint64_t dma_fence_completed(struct dma_dev *dev, unsigned ch)
{
	if (!dev || ch >= dev->n_ch)
		return 0;
	pthread_mutex_lock(&dev->ch[ch].mu);
	uint64_t v = fb_get(&dev->ch[ch], FB_COMPLETED);
	pthread_mutex_unlock(&dev->ch[ch].mu);
	return v;
}

int dma_fence_wait(struct dma_dev *dev, unsigned ch, uint64_t f, int64_t timeout_ns)
{
	if (!dev || ch >= dev->n_ch)
		return -EINVAL;
	struct dma_chan *c = &dev->ch[ch];
	struct timespec dl;
	if (timeout_ns >= 0)
		dl = deadline_after(timeout_ns);
	int rc = 0;
	pthread_mutex_lock(&c->mu);
	if (f > fb_get(c, FB_SUBMITTED)) {
		rc = -EINVAL;
		goto out;
	}
	while (fb_get(c, FB_COMPLETED) < f) {
		if (cond_wait_until(&c->done, &c->mu, timeout_ns >= 0 ? &dl : NULL) == ETIMEDOUT &&
		    fb_get(c, FB_COMPLETED) < f) {
			rc = -ETIMEDOUT;
			goto out;
		}
	}
	for (uint32_t i = c->cq_cons; i != c->cq_prod; i++) {
		const uint8_t *w = c->cq[i & dev->ring_mask];
		if (dma_regs_get_le64(w) <= f && dma_regs_get_le32(w + 16) != DMA_REGS_STATUS_OK) {
			rc = -EIO;
			break;
		}
	}
out:
	pthread_mutex_unlock(&c->mu);
	return rc;
}

int dma_chan_reset(struct dma_dev *dev, unsigned ch, int64_t timeout_ns)
{
	if (!dev || ch >= dev->n_ch)
		return -EINVAL;
	struct dma_chan *c = &dev->ch[ch];
	struct timespec dl;
	if (timeout_ns >= 0)
		dl = deadline_after(timeout_ns);
	int rc = 0;
	pthread_mutex_lock(&c->mu);
	uint64_t target = fb_get(c, FB_SUBMITTED);
	if (target > c->abort_fence)
		c->abort_fence = target;
	pthread_cond_broadcast(&c->work);
	while (fb_get(c, FB_COMPLETED) < target) {
		if (cond_wait_until(&c->done, &c->mu, timeout_ns >= 0 ? &dl : NULL) == ETIMEDOUT &&
		    fb_get(c, FB_COMPLETED) < target) {
			rc = -ETIMEDOUT;
			break;
		}
	}
	pthread_mutex_unlock(&c->mu);
	return rc;
}

int dma_copy_sync(struct dma_dev *dev, unsigned ch, const struct dma_xfer *x, unsigned retries,
		  int64_t timeout_ns, struct dma_cpl *cpl)
{
	if (!dev || ch >= dev->n_ch)
		return -EINVAL;
	struct dma_chan *c = &dev->ch[ch];
	pthread_mutex_lock(&c->mu);
	int busy = fb_get(c, FB_SUBMITTED) != fb_get(c, FB_COMPLETED) || c->cq_prod != c->cq_cons;
	pthread_mutex_unlock(&c->mu);
	if (busy)
		return -EBUSY;

	struct dma_cpl last = {0};
	for (unsigned attempt = 0; attempt <= retries; attempt++) {
		uint64_t f;
		int rc = dma_chan_submit(dev, ch, x, &f);
		if (rc)
			return rc;
		rc = dma_fence_wait(dev, ch, f, timeout_ns);
		if (rc == -ETIMEDOUT) {
			rc = dma_chan_reset(dev, ch, timeout_ns);
			if (rc)
				return rc;
		}
		int got = dma_chan_reap(dev, ch, &last, 1);
		if (got != 1 || last.fence != f)
			return -EIO; /* cannot happen on an idle channel: the record is ours */
		if (cpl)
			*cpl = last;
		if (last.status == DMA_STATUS_OK)
			return 0;
	}
	return -EIO;
}
