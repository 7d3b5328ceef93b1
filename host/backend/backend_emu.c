/*
 * backend_emu.c - backend "emu" (backend.h, backend_impl.h): the emulated card. The card
 * firmware (firmware/fw.c) runs on port/sim (a firmware thread, one worker thread per CU and DMA
 * channel), the CUs are the hls/ kernels called as C (backend_cu_exec), bank memory is lazily
 * backed host memory (backend_mem), and card time is a virtual clock (docs/architecture.md,
 * emulated card and timing model).
 *
 * DMA: the card's DMA channels move their bytes through a channel of the DMA driver
 * (drivers/dma.h, engine emul opened on the card's own bank memory): when card time reaches the
 * end of a transfer the channel's worker submits it as one driver transfer (scatter-gather
 * elements, a fence, a completion record) and waits for its fence; a driver error fails the fill.
 * The card's DMA timing stays the sim card's (latency + bytes at the channel's bandwidth), and
 * BACKEND_FAULT_DMA_ERROR is the driver's countdown fault.
 *
 * Virtual clock: a CU run costs the kernel's modeled cycles at the kernel clock; its worker raises
 * ap_done when card time reaches start + latency. The firmware runs on one CPU whose time is
 * spent where it works (fw_port_spend: the board's moecard,fw-cmd-instr per class at the
 * firmware CPU's clock): decoding a command, starting it, completing it. Its work never
 * overlaps itself, so a command waits for the firmware's start work and its completion reaches
 * the host after the firmware's done work, while the decode of later commands overlaps the CUs. The host thread
 * that waits for a list drives the clock: when the sim card reports every agent blocked
 * (sim_card_settle: the firmware waiting with all events seen, no kernel computing, no start on
 * its way, no completion to take) it moves card time to the earliest card time any agent waits
 * for (an ap_done, the end of a DMA transfer, the firmware's watchdog tick), so a hung CU still
 * times out, in card time. Nothing depends on host real time, so the modeled times are the same
 * on an idle and on a loaded host. Card time does not move while the host works, so modeled card
 * time excludes host scheduling; the host link is charged separately per byte (PCIe figures of
 * the board).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "backend/backend_impl.h"
#include "firmware/port/sim/sim_card.h"

#define EMU_RING_LOG2 10u	  /* 1024 commands per ring */
#define EMU_LINK_LAT_NS 1000u	  /* per host transfer (descriptor + doorbell) */
#define EMU_POLL_SETTLE_MS 60000u /* a poll's bound (real ms) on the firmware settling */

#define EMU_RINGS FW_CFG_N_QUEUES /* every ring may have a list in flight */

struct emu;

/* One submitted list of one ring. */
struct emu_list {
	uint64_t fence;			      /* its fence, 0 = none submitted yet */
	int inflight;			      /* submitted and not yet waited for */
	uint32_t n, done;		      /* commands in it, completions seen */
	uint64_t t_submit;		      /* card time at submit */
	uint64_t t_done;		      /* card time its last completion was taken */
	struct abi_cpl cpl[BACKEND_MAX_LIST]; /* completions by list index */
	struct abi_cmd tmp[BACKEND_MAX_LIST]; /* the list with its tags set */
};

/* One CU instance as bound into the sim card. */
struct emu_cu {
	struct emu *e;			   /* owner */
	uint32_t blk;			   /* register block index */
	uint32_t bw_mbps;		   /* bandwidth of its home bank, MB/s */
	struct backend_cu_scratch scratch; /* its working memory (backend_cu_exec) */
};

struct emu {
	struct backend b;	       /* common head (b.impl = this) */
	struct backend_mem mem;	       /* bank memory */
	struct sim_card *card;	       /* firmware + workers */
	struct emu_cu cu[ABI_MAX_CUS]; /* CU contexts */
	/* card time, ns (atomic; moved by emu_wait, and by the firmware over its own work while
	 * emu_wait waits: emu_advance) */
	uint64_t vclock;
	/* lists in flight: one per ring (EMU_RINGS), so a detached list of expert fills on ring 1
	 * runs while ring 0's lists are submitted and waited for one after another */
	uint64_t seq;			  /* lists submitted (fences 1, 2, ... over all rings) */
	struct emu_list *list[EMU_RINGS]; /* per ring */
	struct emu_list *last;		  /* the list last waited for (backend_completions) */
	struct backend_stats st;	  /* totals */
	uint32_t pcie_mbps;		  /* host link, MB/s */
	struct backend_dma dma;		  /* the DMA driver on the card's banks */
	/* MOECARD_EMU_SLOW=OP:PCT (a profiler test hook): commands of opcode slow_op (its
	 * abi_op_name) take slow_pct percent longer; slow_op = ABI_OP_COUNT when unset */
	uint32_t slow_op, slow_pct;
};

static struct emu *emu_of(struct backend *b)
{
	return b->impl;
}

static uint64_t emu_clock(void *ctx)
{
	struct emu *e = ctx;
	return __atomic_load_n(&e->vclock, __ATOMIC_ACQUIRE);
}

/* sim_advance_fn: the firmware moves card time over its own work while the host waits */
static void emu_advance(void *ctx, uint64_t t)
{
	struct emu *e = ctx;
	__atomic_store_n(&e->vclock, t, __ATOMIC_RELEASE);
}

static void *emu_ptr(void *ctx, uint64_t phys, uint64_t len)
{
	return sim_card_ptr(ctx, phys, len);
}

static uint32_t emu_cu_fn(void *ctx, struct sim_card *card, uint32_t op, const uint32_t *args,
			  uint64_t *latency_ns)
{
	struct emu_cu *u = ctx;
	struct emu *e = u->e;
	uint64_t cyc = 0;
	uint32_t st = backend_cu_exec(op, args, emu_ptr, card, &u->scratch, u->bw_mbps,
				      e->b.blk.cu_clk_khz, &cyc);
	*latency_ns = cyc * 1000000ull / (e->b.blk.cu_clk_khz ? e->b.blk.cu_clk_khz : 1);
	if (op == e->slow_op)
		*latency_ns += *latency_ns * e->slow_pct / 100;
	return st;
}

/* The mover of the card's DMA channel chan (sim_dma_fn): the fill through driver channel chan. */
static int emu_dma_move(void *ctx, uint32_t chan, const struct fw_dma_desc *d, const void *src,
			void *dst)
{
	struct emu *e = ctx;
	(void)dst;
	return backend_dma_fill(&e->dma, chan, d->dst, d->bytes, src, (uint8_t)d->pattern);
}

/* --- memory ---------------------------------------------------------------------------- */

static int emu_alloc(struct backend *b, uint32_t bank, size_t bytes, size_t align,
		     struct backend_buf **out)
{
	return backend_mem_alloc(&emu_of(b)->mem, bank, bytes, align, out);
}

static void emu_free_buf(struct backend *b, struct backend_buf *buf)
{
	backend_mem_release(&emu_of(b)->mem, buf);
}

static uint64_t emu_link_ns(struct emu *e, size_t n)
{
	return EMU_LINK_LAT_NS + (uint64_t)n * 1000u / (e->pcie_mbps ? e->pcie_mbps : 1);
}

static int emu_write(struct backend *b, struct backend_buf *buf, size_t off, const void *src,
		     size_t n)
{
	struct emu *e = emu_of(b);
	void *p = backend_mem_ptr(&e->mem, buf, off, n);
	if (!p)
		return -ERANGE;
	memcpy(p, src, n);
	e->st.h2c_bytes += n;
	e->st.h2c_ns += emu_link_ns(e, n);
	return 0;
}

static int emu_read(struct backend *b, struct backend_buf *buf, size_t off, void *dst, size_t n)
{
	struct emu *e = emu_of(b);
	void *p = backend_mem_ptr(&e->mem, buf, off, n);
	if (!p)
		return -ERANGE;
	memcpy(dst, p, n);
	e->st.c2h_bytes += n;
	e->st.c2h_ns += emu_link_ns(e, n);
	return 0;
}

/* --- command lists --------------------------------------------------------------------- */

static int emu_submit(struct backend *b, uint32_t queue, const struct abi_cmd *cmds, uint32_t n,
		      uint64_t *fence)
{
	struct emu *e = emu_of(b);
	if (!n || n > BACKEND_MAX_LIST || queue >= EMU_RINGS)
		return -EINVAL;
	struct emu_list *l = e->list[queue];
	if (l->inflight)
		return -EBUSY;
	struct abi_cmd *tmp = l->tmp;
	memcpy(tmp, cmds, sizeof(*cmds) * n);
	for (uint32_t i = 0; i < n; i++)
		tmp[i].hdr.tag = i;
	memset(l->cpl, 0, sizeof(*l->cpl) * n);
	l->n = n;
	l->done = 0;
	l->t_submit = emu_clock(e);
	l->t_done = 0;
	int r = sim_card_submit(e->card, queue, tmp, n);
	if (r)
		return r;
	l->inflight = 1;
	l->fence = *fence = ++e->seq;
	e->st.submits++;
	e->st.cmds += n;
	return 0;
}

/* Stores a completion with the list of its ring (word1 names the ring; the tag is the index). */
static void emu_take(struct emu *e, const struct abi_cpl *c)
{
	uint32_t q = ABI_CPL_QUEUE(c->word1);
	if (q < EMU_RINGS) {
		struct emu_list *l = e->list[q];
		if (l->inflight && c->tag < l->n && l->done < l->n) {
			l->cpl[c->tag] = *c;
			/* the last completion: posted by now */
			if (++l->done == l->n)
				l->t_done = emu_clock(e);
			if (ABI_CPL_OP(c->word1) == ABI_OP_DMA_FILL &&
			    ABI_CPL_STATUS(c->word1) == ABI_ST_OK) {
				e->st.fills++;
				e->st.fill_bytes += l->tmp[c->tag].u.dma.bytes;
			}
		}
	}
}

static double emu_real_ms(const struct timespec *t0)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0->tv_sec) * 1e3 + (t.tv_nsec - t0->tv_nsec) / 1e6;
}

/* The list of fence f still awaiting its wait, or NULL. */
static struct emu_list *emu_list_of(struct emu *e, uint64_t f)
{
	for (uint32_t q = 0; q < EMU_RINGS; q++)
		if (e->list[q]->inflight && e->list[q]->fence == f)
			return e->list[q];
	return NULL;
}

/* Ends the wait of list l: status, and the card busy time of ring 0 lists (a detached list's
 * fills run behind ring 0's work; counting them too would add the overlap twice). The list ends
 * when its last completion was posted (t_done: past the last t_end by the firmware's done work;
 * card time stands still while the host collects). */
static int emu_finish(struct emu *e, struct emu_list *l)
{
	l->inflight = 0;
	e->last = l;
	uint64_t end = l->t_done > l->t_submit ? l->t_done : l->t_submit;
	int bad = 0;
	for (uint32_t i = 0; i < l->n; i++) {
		if (l->cpl[i].t_end > end)
			end = l->cpl[i].t_end;
		if (ABI_CPL_STATUS(l->cpl[i].word1) != ABI_ST_OK)
			bad = 1;
	}
	if (l == e->list[0])
		e->st.busy_ns += end - l->t_submit;
	return bad ? -EIO : 0;
}

/* timeout_ms 0: a poll that stores the completions posted up to the current card time (after
 * the firmware has settled, so what a poll sees never depends on host scheduling) and never
 * moves card time. Otherwise card time moves from one model event to the next until the list is
 * complete or timeout_ms of real time passed. */
static int emu_wait(struct backend *b, uint64_t fence, uint32_t timeout_ms)
{
	struct emu *e = emu_of(b);
	struct timespec t0;
	struct abi_cpl c;
	struct emu_list *l = emu_list_of(e, fence);
	if (!l)
		return fence && fence <= e->seq ? 0 : -EINVAL;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (l->done < l->n) {
		double left = timeout_ms ? timeout_ms - emu_real_ms(&t0) : EMU_POLL_SETTLE_MS;
		uint64_t next = UINT64_MAX;
		int r =
		    sim_card_settle(e->card, timeout_ms != 0, left > 0 ? (uint32_t)left : 0, &next);
		if (r == 1) {
			while (sim_card_poll(e->card, &c) == 0)
				emu_take(e, &c);
			continue;
		}
		if (r < 0 || !timeout_ms || next == UINT64_MAX)
			return -ETIMEDOUT;
		__atomic_store_n(&e->vclock, next, __ATOMIC_RELEASE);
		sim_card_kick(e->card);
	}
	return emu_finish(e, l);
}

static int emu_completions(struct backend *b, const struct abi_cpl **cpl, uint32_t *n)
{
	struct emu *e = emu_of(b);
	*cpl = e->last ? e->last->cpl : e->list[0]->cpl;
	*n = e->last ? e->last->n : 0;
	return 0;
}

static int emu_supports(struct backend *b, uint32_t op)
{
	if (op >= ABI_OP_COUNT)
		return 0;
	if (op == ABI_OP_NOP || op == ABI_OP_FENCE || op == ABI_OP_BARRIER ||
	    op == ABI_OP_TIMESTAMP)
		return 1;
	if (op == ABI_OP_DMA_FILL)
		return ABI_BOARD_N_DMA(b->blk.counts) > 0;
	for (uint32_t i = 0; i < ABI_BOARD_N_CUS(b->blk.counts); i++)
		if (b->blk.cus[i].ops_mask >> op & 1)
			return 1;
	return 0;
}

static void emu_stats(struct backend *b, struct backend_stats *s)
{
	struct emu *e = emu_of(b);
	*s = e->st;
	s->card_ns = emu_clock(e);
	const struct abi_telemetry *t = sim_card_telemetry(e->card);
	for (uint32_t i = 0; i < ABI_MAX_CUS; i++)
		s->cu_busy_ns[i] = t->cu_busy_ns[i];
	backend_dma_stats(&e->dma, s);
}

static int emu_fault(struct backend *b, enum backend_fault f, uint32_t n)
{
	struct emu *e = emu_of(b);
	if (f == BACKEND_FAULT_DMA_ERROR && e->dma.dev) /* a fault of the driver's engine */
		return dma_dev_fault_set(e->dma.dev, n ? DMA_FAULT_ERROR : DMA_FAULT_NONE, n, 0);
	enum sim_fault sf = f == BACKEND_FAULT_DMA_ERROR ? SIM_FAULT_DMA_ERROR
			    : f == BACKEND_FAULT_CU_HANG ? SIM_FAULT_CU_HANG
							 : SIM_FAULT_CU_BAD;
	uint32_t left = sim_card_fault_set(emu_of(b)->card, sf, n);
	return !n && left ? 1 : 0; /* disarmed before it fired */
}

static void emu_close(struct backend *b)
{
	struct emu *e = emu_of(b);
	sim_card_free(e->card);
	backend_dma_close(&e->dma);
	backend_mem_free(&e->mem);
	for (uint32_t i = 0; i < ABI_MAX_CUS; i++)
		backend_cu_scratch_free(&e->cu[i].scratch);
	for (uint32_t q = 0; q < EMU_RINGS; q++)
		free(e->list[q]);
	free(e);
}

static const struct backend_i emu_iface = {
    .version = BACKEND_I_VERSION,
    .name = "emu",
    .close = emu_close,
    .buf_alloc = emu_alloc,
    .buf_free = emu_free_buf,
    .buf_write = emu_write,
    .buf_read = emu_read,
    .submit = emu_submit,
    .wait = emu_wait,
    .completions = emu_completions,
    .supports_op = emu_supports,
    .stats = emu_stats,
    .fault_set = emu_fault,
};

int backend_emu_open(struct backend **out, const struct board_desc *bd, char *err, size_t errlen)
{
	*out = NULL;
	int r = 0;
	char e2[240] = "";
	struct emu *e = calloc(1, sizeof *e);
	if (!e) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	for (uint32_t q = 0; q < EMU_RINGS; q++)
		if (!(e->list[q] = calloc(1, sizeof *e->list[q]))) {
			snprintf(err, errlen, "out of memory");
			r = -ENOMEM;
			goto fail;
		}
	e->b.iface = &emu_iface;
	e->b.caps = BACKEND_CAP_RINGS | BACKEND_CAP_CARD_CLOCK | BACKEND_CAP_FAULTS;
	e->b.impl = e;
	e->b.board = *bd;
	e->pcie_mbps = bd->pcie_bw_mbps;
	e->slow_op = ABI_OP_COUNT;
	const char *slow = getenv("MOECARD_EMU_SLOW"), *colon = slow ? strchr(slow, ':') : NULL;
	for (uint32_t op = 0; colon && op < ABI_OP_COUNT; op++)
		if (strlen(abi_op_name(op)) == (size_t)(colon - slow) &&
		    !strncmp(slow, abi_op_name(op), (size_t)(colon - slow))) {
			e->slow_op = op;
			e->slow_pct = (uint32_t)strtoul(colon + 1, NULL, 10);
		}
	if ((r = backend_board_block(bd, &e->b.blk, err, errlen)))
		goto fail;
	if ((r = backend_mem_init(&e->mem, &e->b.blk))) {
		snprintf(err, errlen, "emu: cannot map %llu bytes of card memory",
			 (unsigned long long)bd->mem_bytes);
		goto fail;
	}
	if ((r = backend_dma_open(&e->dma, bd, &e->b.blk, &e->mem, e2, sizeof e2))) {
		snprintf(err, errlen, "emu: %s", e2);
		goto fail;
	}
	struct sim_card_config cfg = {.board = &e->b.blk,
				      .ring_log2 = EMU_RING_LOG2,
				      .dma_latency_ns = 1000,
				      .clock = emu_clock,
				      .clock_ctx = e,
				      .advance = emu_advance,
				      .dma_fn = e->dma.dev ? emu_dma_move : NULL,
				      .dma_ctx = e};
	_Static_assert(BOARD_FW_CLASSES == FW_WORK_CLASSES && (int)BOARD_FW_TAKE == FW_WORK_TAKE &&
			   (int)BOARD_FW_START == FW_WORK_START &&
			   (int)BOARD_FW_DONE == FW_WORK_DONE && (int)BOARD_FW_SYNC == FW_WORK_SYNC,
		       "board.h's firmware cost classes are fw_port.h's work classes");
	for (uint32_t w = 0; w < FW_WORK_CLASSES; w++) {
		int cpu;
		uint64_t ns = board_dispatch_ns(bd, w, &cpu);
		if (board_has_dispatch_engine(bd) && w == FW_WORK_TAKE)
			cfg.cpu_take_ns = ns; /* the CPU's timeline; the rest is the engine's */
		else
			cfg.fw_work_ns[w] = ns;
	}
	cfg.go_ns = board_dispatch_go_ns(bd);
	_Static_assert(SIM_TAKE_OPS == BOARD_FW_OPS, "one opcode range for the TAKE counts");
	for (uint32_t op = 0; op < SIM_TAKE_OPS; op++)
		if (bd->fw.take_op_instr[op])
			cfg.take_ns_op[op] = board_fw_take_ns(bd, op);
	for (uint32_t i = 0; i < e->mem.n_banks; i++)
		cfg.bank_mem[i] = e->mem.base[i];
	/* CUs in board-block order; the home bank of a GEMM CU is its weight port's bank */
	uint32_t nc = ABI_BOARD_N_CUS(e->b.blk.counts), k = 0;
	for (uint32_t i = 0; i < bd->n_cus && k < nc; i++) {
		const struct board_cu *cu = &bd->cu[i];
		if (!backend_kernel_driven(cu->kernel))
			continue;
		int p = board_cu_port_find(cu, "gmem_w");
		uint32_t bank = cu->port_bank[p >= 0 ? p : 0];
		/* the bank's sustained rate: its data-sheet bandwidth times the board's efficiency */
		e->cu[k] = (struct emu_cu){
		    .e = e,
		    .blk = k,
		    .bw_mbps = (uint32_t)((uint64_t)bd->bank[bank].bw_mbps *
					  (bd->mem_eff_pct ? bd->mem_eff_pct : 100) / 100)};
		if ((r = backend_cu_scratch_init(&e->cu[k].scratch))) {
			snprintf(err, errlen, "emu: out of memory");
			goto fail;
		}
		if (!strcmp(cu->kernel, "fp8_gemv") || !strcmp(cu->kernel, "mla_attn_lanes"))
			(void)backend_cu_wire(&e->cu[k].scratch, bd, &e->b.blk, cu->kernel);
		/* this CU's own build parameters time its commands (PE array, MACs, passes) */
		backend_cu_params(&e->cu[k].scratch, cu);
		cfg.cu_fn[k] = emu_cu_fn;
		cfg.cu_ctx[k] = &e->cu[k];
		k++;
	}
	if ((r = sim_card_init(&e->card, &cfg))) {
		snprintf(err, errlen, "emu: firmware init failed (%d)", r);
		goto fail;
	}
	if ((r = sim_card_start(e->card))) {
		snprintf(err, errlen, "emu: cannot start the card threads");
		goto fail;
	}
	*out = &e->b;
	return 0;
fail:
	if (e->card)
		sim_card_free(e->card);
	backend_dma_close(&e->dma);
	backend_mem_free(&e->mem);
	for (uint32_t i = 0; i < ABI_MAX_CUS; i++)
		backend_cu_scratch_free(&e->cu[i].scratch);
	for (uint32_t q = 0; q < EMU_RINGS; q++)
		free(e->list[q]);
	free(e);
	return r;
}
