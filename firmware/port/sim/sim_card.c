/*
 * sim_card.c - port/sim implementation (see sim_card.h): the fw_port_*() functions over memory
 * register blocks, the firmware thread, CU and DMA worker threads, the clock, fault countdowns,
 * and the host-side mailbox helpers. One mutex + condition variable per card orders every
 * register hand-off between the firmware thread and the workers; register words are also
 * accessed atomically so a read never tears.
 *
 * Under a virtual clock every agent's state is accounted exactly under that mutex: the firmware
 * thread is blocked (waiting with no unseen event and its timer deadline in the future) or
 * runnable; a CU worker is idle, has a start pending, is computing (its work function runs), or
 * waits for a card time (its ap_done, or forever when hung); a DMA worker is idle, has a start
 * pending, or waits for the end of its transfer. sim_card_settle() tells the host when every agent
 * is blocked and which card time the earliest of them waits for, so the clock moves only on model
 * events and never because a host thread was slow to run. The firmware also waits until every
 * timer that a clock step made due has fired, so events at one card time reach it together.
 */
#include "firmware/port/sim/sim_card.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "firmware/fw.h"

#define SIM_REG_WORDS (FW_CU_REG_ARG0 / 4 + FW_CU_ARGS) /* 28 registers per CU block */
#define SIM_MAX_WAIT_NS 2000000ull			/* re-check at least every 2 ms */
#define SIM_SETTLE_MS 60000u				/* host: firmware settle bound */

struct sim_cu {
	struct sim_card *card;	      /* owner */
	uint32_t blk;		      /* register block index */
	uint32_t regs[SIM_REG_WORDS]; /* AXI-lite block: CTRL, STATUS, OP, ARG0.. (fw_port.h) */
	uint32_t gen;		      /* reset generation: a reset abandons the current run */
	bool busy;		      /* start taken, work function running */
	uint64_t until;		      /* card ns its ap_done is due while waiting, 0 = not
					  * waiting, UINT64_MAX = hung until reset */
	pthread_t th;		      /* worker */
	bool th_on;		      /* worker started */
	pthread_cond_t cv;	      /* the worker waits here: start, reset, card time, stop */
	uint64_t latched;	      /* card ns of its last start: its argument registers are free
					  for the next command's preload from then (cfg.go_ns) */
};

struct sim_dma {
	struct sim_card *card;	 /* owner */
	uint32_t chan;		 /* channel index */
	struct fw_dma_desc d;	 /* current transfer */
	enum fw_dma_state state; /* IDLE, BUSY, DONE, ERROR */
	uint32_t detail;	 /* error code on ERROR */
	bool start;		 /* a start is pending for the worker */
	uint64_t due;		 /* card ns the transfer in flight ends, 0 = none */
	pthread_t th;		 /* worker */
	bool th_on;		 /* worker started */
	pthread_cond_t cv;	 /* the worker waits here: start, card time, stop */
};

struct sim_card {
	struct sim_card_config cfg;	 /* as given */
	pthread_mutex_t mu;		 /* guards everything below that threads share */
	pthread_cond_t cv;		 /* broadcast on every event */
	pthread_mutex_t hmu;		 /* host side: serializes submit/poll */
	uint64_t events;		 /* firmware-visible events (doorbell, done, kick) */
	uint64_t fw_seen;		 /* events the firmware has seen */
	bool fw_waiting;		 /* the firmware thread is blocked in fw_port_wait */
	bool fw_spending;		 /* ... or in fw_port_spend (events do not end it) */
	uint64_t fw_deadline;		 /* card ns it waits for at most there */
	uint64_t cpu_until;		 /* dispatch engine: the CPU's taking ends then */
	uint64_t args_until;		 /* its argument writer (cfg.go_ns) is busy until then */
	pthread_cond_t hcv;		 /* host: an agent blocked or a completion was posted */
	bool host_waiting;		 /* the host waits on hcv (sim_card_settle) */
	bool host_all;			 /* ... for every agent (it would move the clock) */
	bool stop;			 /* threads exit */
	struct timespec t0;		 /* CLOCK_MONOTONIC origin of card time */
	uint32_t fault[SIM_FAULT_COUNT]; /* countdowns, 0 = off */
	uint32_t fault_events[SIM_FAULT_COUNT]; /* events counted per kind */
	/* mailbox */
	struct abi_board board;			  /* board block as the host wrote it */
	struct abi_telemetry telem;		  /* telemetry block */
	void *ring_mem[FW_CFG_N_QUEUES];	  /* command rings */
	void *cpl_mem;				  /* completion ring */
	size_t cmd_bytes, cpl_bytes;		  /* their sizes */
	struct abi_ring_view hq[FW_CFG_N_QUEUES]; /* host views: producer of commands */
	struct abi_ring_view hc;		  /* host view: consumer of completions */
	/* card */
	struct fw fw;			 /* the firmware */
	pthread_t fw_th;		 /* firmware thread */
	bool fw_on;			 /* started */
	struct sim_cu cu[ABI_MAX_CUS];	 /* by register block index */
	struct sim_dma dma[ABI_MAX_DMA]; /* by channel */
};

/* --- clock ---------------------------------------------------------------------------- */
uint64_t sim_card_now(struct sim_card *c)
{
	if (c->cfg.clock)
		return c->cfg.clock(c->cfg.clock_ctx);
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)(ts.tv_sec - c->t0.tv_sec) * 1000000000ull + (uint64_t)ts.tv_nsec -
	       (uint64_t)c->t0.tv_nsec;
}

/* Tells a host in sim_card_settle() that an agent is about to block (mu held). */
static void sim_blocking(struct sim_card *c)
{
	if (c->host_waiting)
		pthread_cond_broadcast(&c->hcv);
}

/* Waits on condition variable cv for at most ns real time (mu held). */
static void sim_cv_wait(struct sim_card *c, pthread_cond_t *cv, uint64_t ns)
{
	if (ns > SIM_MAX_WAIT_NS)
		ns = SIM_MAX_WAIT_NS;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	uint64_t nsec = (uint64_t)ts.tv_nsec + ns;
	ts.tv_sec += (time_t)(nsec / 1000000000ull);
	ts.tv_nsec = (long)(nsec % 1000000000ull);
	pthread_cond_timedwait(cv, &c->mu, &ts);
}

/* An agent blocks on its condition variable cv for at most ns real time (mu held). Every agent
 * has its own (the firmware c->cv, each CU and DMA worker its own), so an event wakes only the
 * agent it concerns: one broadcast to all ~20 threads per event made each command cost dozens of
 * context switches. */
static void sim_timed_wait(struct sim_card *c, pthread_cond_t *cv, uint64_t ns)
{
	sim_blocking(c);
	sim_cv_wait(c, cv, ns);
}

/* Wakes the agents that wait for a card time (workers with a timer, and the firmware) after card
 * time moved (mu held). */
static void sim_wake_timed(struct sim_card *c)
{
	pthread_cond_broadcast(&c->cv);
	for (uint32_t i = 0; i < ABI_MAX_CUS; i++)
		if (c->cu[i].until)
			pthread_cond_signal(&c->cu[i].cv);
	for (uint32_t i = 0; i < ABI_MAX_DMA; i++)
		if (c->dma[i].due)
			pthread_cond_signal(&c->dma[i].cv);
}

/* Wakes every agent (mu held): the card stops. */
static void sim_wake_all(struct sim_card *c)
{
	pthread_cond_broadcast(&c->cv);
	for (uint32_t i = 0; i < ABI_MAX_CUS; i++)
		pthread_cond_broadcast(&c->cu[i].cv);
	for (uint32_t i = 0; i < ABI_MAX_DMA; i++)
		pthread_cond_broadcast(&c->dma[i].cv);
}

/* True when a CU or DMA worker waits for a card time that has come: it is about to raise its
 * event, so the firmware must not look yet and the host must not move time (mu held). */
static bool sim_timers_due(struct sim_card *c, uint64_t now)
{
	for (uint32_t i = 0; i < ABI_MAX_CUS; i++)
		if (c->cu[i].until && c->cu[i].until <= now)
			return true;
	for (uint32_t i = 0; i < ABI_MAX_DMA; i++)
		if (c->dma[i].due && c->dma[i].due <= now)
			return true;
	return false;
}

/* The firmware thread is blocked: waiting with every event seen, or spending its CPU time, and
 * its deadline ahead (mu held). */
static bool sim_fw_blocked(struct sim_card *c, uint64_t now)
{
	return c->fw_on && c->fw_waiting && (c->fw_spending || c->events == c->fw_seen) &&
	       now < c->fw_deadline && !sim_timers_due(c, now);
}

/* True when every worker is blocked too (idle, or waiting for a card time still ahead); *next
 * gets the earliest card time any agent waits for, UINT64_MAX if none (mu held). */
static bool sim_workers_blocked(struct sim_card *c, uint64_t *next)
{
	uint64_t t = c->fw_deadline;
	for (uint32_t i = 0; i < ABI_MAX_CUS; i++) {
		const struct sim_cu *u = &c->cu[i];
		if (!u->th_on)
			continue;
		if (u->busy || (__atomic_load_n(&u->regs[0], __ATOMIC_ACQUIRE) & FW_CU_CTRL_START))
			return false;
		if (u->until && u->until < t)
			t = u->until;
	}
	for (uint32_t i = 0; i < ABI_MAX_DMA; i++) {
		const struct sim_dma *m = &c->dma[i];
		if (!m->th_on)
			continue;
		if (m->start)
			return false;
		if (m->due && m->due < t)
			t = m->due;
	}
	*next = t;
	return true;
}

int sim_card_settle(struct sim_card *c, bool all, uint32_t timeout_ms, uint64_t *next)
{
	struct timespec t0, t;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	int rc;
	pthread_mutex_lock(&c->mu);
	c->host_waiting = true;
	c->host_all = all;
	for (;;) {
		uint64_t now = sim_card_now(c);
		if (sim_fw_blocked(c, now)) {
			if (abi_ring_avail(&c->hc) != 0) {
				rc =
				    1; /* completions to take (or a corrupted ring: poll says so) */
				break;
			}
			if (!all) {
				rc = 0;
				break;
			}
			if (sim_workers_blocked(c, next)) {
				rc = 0;
				break;
			}
		}
		clock_gettime(CLOCK_MONOTONIC, &t);
		int64_t ms =
		    (int64_t)(t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000;
		if (ms >= (int64_t)timeout_ms) {
			rc = -ETIMEDOUT;
			break;
		}
		sim_cv_wait(c, &c->hcv, SIM_MAX_WAIT_NS);
	}
	c->host_waiting = false;
	c->host_all = false;
	pthread_mutex_unlock(&c->mu);
	return rc;
}

static void sim_event_locked(struct sim_card *c)
{
	c->events++;
	pthread_cond_broadcast(&c->cv);
}

void sim_card_kick(struct sim_card *c)
{
	pthread_mutex_lock(&c->mu);
	sim_event_locked(c);
	sim_wake_timed(c); /* a kick also follows each move of a virtual clock */
	pthread_mutex_unlock(&c->mu);
}

/* Counts an event of kind f; true when its armed countdown reaches zero (mu held). */
static bool sim_fault_hit(struct sim_card *c, enum sim_fault f)
{
	c->fault_events[f]++;
	return c->fault[f] && --c->fault[f] == 0;
}

uint32_t sim_card_fault_set(struct sim_card *c, enum sim_fault f, uint32_t n)
{
	pthread_mutex_lock(&c->mu);
	uint32_t left = c->fault[f];
	c->fault[f] = n;
	pthread_mutex_unlock(&c->mu);
	return left;
}

uint32_t sim_card_events(struct sim_card *c, enum sim_fault f)
{
	pthread_mutex_lock(&c->mu);
	uint32_t n = c->fault_events[f];
	pthread_mutex_unlock(&c->mu);
	return n;
}

void *sim_card_ptr(struct sim_card *c, uint64_t phys, uint64_t len)
{
	for (uint32_t i = 0; i < ABI_BOARD_N_BANKS(c->board.counts); i++) {
		const struct abi_bank *b = &c->board.banks[i];
		if (phys >= b->base && phys - b->base <= b->size &&
		    len <= b->size - (phys - b->base))
			return (uint8_t *)c->cfg.bank_mem[i] + (phys - b->base);
	}
	return NULL;
}

/* --- fw_port_*: what the firmware sees -------------------------------------------------- */
uint64_t fw_port_now(void *port)
{
	return sim_card_now(port);
}

uint32_t fw_port_cu_read(void *port, uint32_t blk, uint32_t off)
{
	struct sim_card *c = port;
	if (blk >= ABI_MAX_CUS || off / 4 >= SIM_REG_WORDS)
		return 0;
	uint32_t *r = &c->cu[blk].regs[off / 4];
	if (off == FW_CU_REG_CTRL) /* ap_done is clear-on-read (Vitis HLS ap_ctrl_hs) */
		return __atomic_fetch_and(r, ~FW_CU_CTRL_DONE, __ATOMIC_ACQ_REL);
	return __atomic_load_n(r, __ATOMIC_ACQUIRE);
}

void fw_port_cu_write(void *port, uint32_t blk, uint32_t off, uint32_t val)
{
	struct sim_card *c = port;
	if (blk >= ABI_MAX_CUS || off / 4 >= SIM_REG_WORDS)
		return;
	if (off == FW_CU_REG_CTRL) {
		if (!(val & FW_CU_CTRL_START))
			return;
		pthread_mutex_lock(&c->mu);
		__atomic_fetch_or(&c->cu[blk].regs[0], FW_CU_CTRL_START, __ATOMIC_ACQ_REL);
		pthread_cond_signal(&c->cu[blk].cv);
		pthread_mutex_unlock(&c->mu);
		return;
	}
	__atomic_store_n(&c->cu[blk].regs[off / 4], val, __ATOMIC_RELEASE);
}

void fw_port_cu_args(void *port, uint32_t blk, const uint32_t *args)
{
	struct sim_card *c = port;
	if (blk >= ABI_MAX_CUS)
		return;
	for (uint32_t i = 0; i < FW_CU_ARGS; i++)
		__atomic_store_n(&c->cu[blk].regs[FW_CU_REG_ARG0 / 4 + i], args[i],
				 __ATOMIC_RELEASE);
}

void fw_port_cu_reset(void *port, uint32_t blk)
{
	struct sim_card *c = port;
	if (blk >= ABI_MAX_CUS)
		return;
	pthread_mutex_lock(&c->mu);
	c->cu[blk].gen++;
	__atomic_store_n(&c->cu[blk].regs[0], FW_CU_CTRL_IDLE | FW_CU_CTRL_READY, __ATOMIC_RELEASE);
	__atomic_store_n(&c->cu[blk].regs[1], 0, __ATOMIC_RELEASE);
	pthread_cond_signal(&c->cu[blk].cv);
	pthread_mutex_unlock(&c->mu);
}

int fw_port_dma_start(void *port, uint32_t chan, const struct fw_dma_desc *d)
{
	struct sim_card *c = port;
	if (chan >= ABI_MAX_DMA)
		return -EINVAL;
	int rc = 0;
	pthread_mutex_lock(&c->mu);
	struct sim_dma *m = &c->dma[chan];
	if (m->state != FW_DMA_IDLE) {
		rc = -EBUSY;
	} else {
		m->d = *d;
		m->state = FW_DMA_BUSY;
		m->start = true;
		pthread_cond_signal(&m->cv);
	}
	pthread_mutex_unlock(&c->mu);
	return rc;
}

enum fw_dma_state fw_port_dma_poll(void *port, uint32_t chan, uint32_t *detail)
{
	struct sim_card *c = port;
	if (chan >= ABI_MAX_DMA)
		return FW_DMA_ERROR;
	pthread_mutex_lock(&c->mu);
	struct sim_dma *m = &c->dma[chan];
	enum fw_dma_state s = m->state;
	*detail = m->detail;
	if (s == FW_DMA_DONE || s == FW_DMA_ERROR)
		m->state = FW_DMA_IDLE;
	pthread_mutex_unlock(&c->mu);
	return s;
}

void fw_port_wait(void *port, uint64_t deadline)
{
	struct sim_card *c = port;
	pthread_mutex_lock(&c->mu);
	c->fw_deadline = deadline;
	if (c->cfg.clock) {
		/* virtual time: wake on an event or when the deadline has come, but only once every
		 * timer due by now has fired (the wait is re-checked at least every 2 ms real) */
		c->fw_waiting = true;
		while (!c->stop) {
			uint64_t now = sim_card_now(c);
			if (!sim_timers_due(c, now) && (c->events != c->fw_seen || now >= deadline))
				break;
			sim_timed_wait(c, &c->cv, SIM_MAX_WAIT_NS);
		}
		c->fw_waiting = false;
	} else if (c->events == c->fw_seen && !c->stop) {
		uint64_t now = sim_card_now(c);
		c->fw_waiting = true;
		sim_timed_wait(c, &c->cv, deadline > now ? deadline - now : 0);
		c->fw_waiting = false;
	}
	c->fw_seen = c->events;
	pthread_mutex_unlock(&c->mu);
}

/* The firmware CPU is busy for the board's time of work w: card time moves on meanwhile, and the
 * firmware sees nothing until it has passed and every timer due by then has fired. The host moves
 * the clock when every agent waits; when it waits for that in sim_card_settle(all) and no CU or
 * DMA transfer has an earlier event, the firmware moves the clock over its own work itself (the
 * same move, without a round trip through the host). */
static void sim_spend_ns(struct sim_card *c, uint64_t ns);

void fw_port_spend(void *port, uint32_t w)
{
	struct sim_card *c = port;
	if (w == FW_WORK_TAKE) {
		fw_port_take(port, UINT32_MAX);
		return;
	}
	if (c->cfg.clock && w < FW_WORK_CLASSES && c->cfg.fw_work_ns[w])
		sim_spend_ns(c, c->cfg.fw_work_ns[w]);
}

void fw_port_take(void *port, uint32_t op)
{
	struct sim_card *c = port;
	if (!c->cfg.clock)
		return;
	uint64_t ns = op < SIM_TAKE_OPS ? c->cfg.take_ns_op[op] : 0;
	if (c->cfg.cpu_take_ns) {
		/* a dispatch engine starts and completes the commands: the CPU takes them one after
		 * another on its own timeline (fw_port_ready), never holding the dispatch up */
		pthread_mutex_lock(&c->mu);
		uint64_t now = sim_card_now(c);
		c->cpu_until =
		    (c->cpu_until > now ? c->cpu_until : now) + (ns ? ns : c->cfg.cpu_take_ns);
		pthread_mutex_unlock(&c->mu);
		return;
	}
	if (!ns)
		ns = c->cfg.fw_work_ns[FW_WORK_TAKE];
	if (ns)
		sim_spend_ns(c, ns);
}

/* The firmware thread waits ns of card time (its CPU busy with work, see fw_port_spend). */
static void sim_spend_ns(struct sim_card *c, uint64_t ns)
{
	pthread_mutex_lock(&c->mu);
	uint64_t until = sim_card_now(c) + ns, next;
	c->fw_deadline = until;
	c->fw_waiting = true;
	c->fw_spending = true;
	while (!c->stop) {
		uint64_t now = sim_card_now(c);
		if (now >= until) {
			if (!sim_timers_due(c, now))
				break;
		} else if (c->cfg.advance && c->host_waiting && c->host_all &&
			   !sim_timers_due(c, now) && sim_workers_blocked(c, &next) &&
			   next >= until) {
			c->cfg.advance(c->cfg.clock_ctx, until);
			sim_wake_timed(c);
			continue;
		}
		sim_timed_wait(c, &c->cv, SIM_MAX_WAIT_NS);
	}
	c->fw_spending = false;
	c->fw_waiting = false;
	pthread_mutex_unlock(&c->mu);
}

void fw_port_start_cu(void *port, uint32_t blk, uint64_t ready_at)
{
	struct sim_card *c = port;
	if (!c->cfg.clock || !c->cfg.go_ns || !c->cfg.cpu_take_ns || blk >= ABI_MAX_CUS) {
		fw_port_spend(port, FW_WORK_START);
		return;
	}
	/* the engine's writer wrote the arguments once the command was taken (ready_at), the CU
	 * had latched its previous command's (at its start) and the writer was free; the start
	 * waits for that write to end, then the go cycles (fence check, ap_start) */
	pthread_mutex_lock(&c->mu);
	uint64_t now = sim_card_now(c), a = ready_at;
	if (a < c->cu[blk].latched)
		a = c->cu[blk].latched;
	if (a < c->args_until)
		a = c->args_until;
	c->args_until = a + c->cfg.fw_work_ns[FW_WORK_START];
	uint64_t wait = (c->args_until > now ? c->args_until - now : 0) + c->cfg.go_ns;
	pthread_mutex_unlock(&c->mu);
	sim_spend_ns(c, wait);
	pthread_mutex_lock(&c->mu);
	c->cu[blk].latched = sim_card_now(c);
	pthread_mutex_unlock(&c->mu);
}

uint64_t fw_port_ready(void *port)
{
	struct sim_card *c = port;
	if (!c->cfg.clock || !c->cfg.cpu_take_ns)
		return 0;
	pthread_mutex_lock(&c->mu);
	uint64_t t = c->cpu_until;
	pthread_mutex_unlock(&c->mu);
	return t;
}

void fw_port_notify_host(void *port)
{
	struct sim_card *c = port;
	pthread_mutex_lock(&c->mu);
	pthread_cond_broadcast(&c->cv);
	pthread_cond_broadcast(&c->hcv);
	pthread_mutex_unlock(&c->mu);
}

/* --- threads -------------------------------------------------------------------------- */
static void *sim_fw_main(void *arg)
{
	struct sim_card *c = arg;
	for (;;) {
		if (__atomic_load_n(&c->stop, __ATOMIC_ACQUIRE))
			break;
		fw_step(&c->fw);
	}
	return NULL;
}

/* Waits (mu held, on the worker's cv) until card time reaches target, with *timer = target
 * meanwhile (the worker's accounted wait); false if gen moved on or the card stops. */
static bool sim_wait_until(struct sim_card *c, pthread_cond_t *cv, uint64_t target, uint64_t *timer,
			   const uint32_t *gen, uint32_t g)
{
	bool ok = false;
	*timer = target;
	for (;;) {
		if (c->stop || (gen && *gen != g))
			break;
		uint64_t now = sim_card_now(c);
		if (now >= target) {
			ok = true;
			break;
		}
		sim_timed_wait(c, cv, target - now);
	}
	*timer = 0;
	return ok;
}

static void *sim_cu_main(void *arg)
{
	struct sim_cu *u = arg;
	struct sim_card *c = u->card;
	pthread_mutex_lock(&c->mu);
	while (!c->stop) {
		if (!(__atomic_load_n(&u->regs[0], __ATOMIC_ACQUIRE) & FW_CU_CTRL_START)) {
			sim_blocking(c);
			pthread_cond_wait(&u->cv, &c->mu);
			continue;
		}
		uint32_t g = u->gen;
		/* ap_start seen: the CU is busy (not idle) and has taken its arguments (ap_ready) */
		__atomic_fetch_and(&u->regs[0],
				   ~(FW_CU_CTRL_START | FW_CU_CTRL_IDLE | FW_CU_CTRL_DONE),
				   __ATOMIC_ACQ_REL);
		uint32_t args[FW_CU_ARGS];
		for (uint32_t i = 0; i < FW_CU_ARGS; i++)
			args[i] =
			    __atomic_load_n(&u->regs[FW_CU_REG_ARG0 / 4 + i], __ATOMIC_ACQUIRE);
		uint32_t op = __atomic_load_n(&u->regs[FW_CU_REG_OP / 4], __ATOMIC_ACQUIRE);
		uint64_t t0 = sim_card_now(c);
		if (sim_fault_hit(c, SIM_FAULT_CU_HANG)) {
			sim_wait_until(c, &u->cv, UINT64_MAX, &u->until, &u->gen,
				       g); /* hung until reset */
			continue;
		}
		u->busy = true;
		pthread_mutex_unlock(&c->mu);
		uint64_t lat = 0;
		uint32_t st = c->cfg.cu_fn[u->blk](c->cfg.cu_ctx[u->blk], c, op, args, &lat);
		pthread_mutex_lock(&c->mu);
		u->busy = false;
		if (sim_fault_hit(c, SIM_FAULT_CU_BAD))
			st = SIM_BAD_STATUS;
		if (!sim_wait_until(c, &u->cv, t0 + lat, &u->until, &u->gen, g))
			continue;
		__atomic_store_n(&u->regs[1], st, __ATOMIC_RELEASE);
		__atomic_fetch_or(&u->regs[0], FW_CU_CTRL_DONE | FW_CU_CTRL_IDLE | FW_CU_CTRL_READY,
				  __ATOMIC_ACQ_REL);
		sim_event_locked(c);
	}
	pthread_mutex_unlock(&c->mu);
	return NULL;
}

static void *sim_dma_main(void *arg)
{
	struct sim_dma *m = arg;
	struct sim_card *c = m->card;
	uint32_t bw = c->board.dma[m->chan].bw_mbps;
	pthread_mutex_lock(&c->mu);
	while (!c->stop) {
		if (!m->start) {
			sim_blocking(c);
			pthread_cond_wait(&m->cv, &c->mu);
			continue;
		}
		m->start = false;
		struct fw_dma_desc d = m->d;
		bool fail = sim_fault_hit(c, SIM_FAULT_DMA_ERROR);
		/* bytes / (MB/s) = us; the copy lands at the end so an early reader sees old data */
		uint64_t lat = c->cfg.dma_latency_ns + d.bytes * 1000u / bw;
		bool ok = sim_wait_until(c, &m->cv, sim_card_now(c) + lat, &m->due, NULL, 0);
		if (!ok)
			break;
		void *dst = sim_card_ptr(c, d.dst, d.bytes);
		const void *src = (d.flags & ABI_DMA_F_SRC_HOST)  ? (const void *)(uintptr_t)d.src
				  : (d.flags & ABI_DMA_F_PATTERN) ? NULL
								  : sim_card_ptr(c, d.src, d.bytes);
		if (fail || !dst || (!src && !(d.flags & ABI_DMA_F_PATTERN))) {
			m->state = FW_DMA_ERROR;
			m->detail = SIM_DMA_ERR_CODE;
		} else if (c->cfg.dma_fn) {
			int r = c->cfg.dma_fn(c->cfg.dma_ctx, m->chan, &d, src, dst);
			m->state = r ? FW_DMA_ERROR : FW_DMA_DONE;
			m->detail = r ? SIM_DMA_ERR_CODE : 0;
		} else {
			if (d.flags & ABI_DMA_F_PATTERN)
				memset(dst, (int)d.pattern, d.bytes);
			else
				memmove(dst, src, d.bytes);
			m->state = FW_DMA_DONE;
			m->detail = 0;
		}
		sim_event_locked(c);
	}
	pthread_mutex_unlock(&c->mu);
	return NULL;
}

/* --- lifetime --------------------------------------------------------------------------- */
int sim_card_init(struct sim_card **out, const struct sim_card_config *cfg)
{
	*out = NULL;
	if (!cfg || !cfg->board)
		return -EINVAL;
	uint32_t nb = ABI_BOARD_N_BANKS(cfg->board->counts),
		 nc = ABI_BOARD_N_CUS(cfg->board->counts);
	if (nb > ABI_MAX_BANKS || nc > ABI_MAX_CUS)
		return -EINVAL;
	for (uint32_t i = 0; i < nb; i++)
		if (!cfg->bank_mem[i])
			return -EINVAL;
	for (uint32_t i = 0; i < nc; i++)
		if (!cfg->cu_fn[ABI_CU_REGBLK(cfg->board->cus[i].word) % ABI_MAX_CUS])
			return -EINVAL;
	struct sim_card *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->cfg = *cfg;
	if (!c->cfg.ring_log2)
		c->cfg.ring_log2 = 6;
	if (!c->cfg.dma_latency_ns)
		c->cfg.dma_latency_ns = 2000;
	clock_gettime(CLOCK_MONOTONIC, &c->t0);
	pthread_mutex_init(&c->mu, NULL);
	pthread_mutex_init(&c->hmu, NULL);
	pthread_cond_init(&c->cv, NULL);
	pthread_cond_init(&c->hcv, NULL);
	for (uint32_t i = 0; i < ABI_MAX_CUS; i++)
		pthread_cond_init(&c->cu[i].cv, NULL);
	for (uint32_t i = 0; i < ABI_MAX_DMA; i++)
		pthread_cond_init(&c->dma[i].cv, NULL);
	c->board = *cfg->board;
	int rc = -ENOMEM;
	c->cmd_bytes = abi_ring_bytes(c->cfg.ring_log2, sizeof(struct abi_cmd));
	c->cpl_bytes = abi_ring_bytes(c->cfg.ring_log2 + 1, sizeof(struct abi_cpl));
	struct fw_mailbox mb = {.board = &c->board, .telem = &c->telem};
	for (uint32_t q = 0; q < FW_CFG_N_QUEUES; q++) {
		rc = -ENOMEM;
		if (!(c->ring_mem[q] = calloc(1, c->cmd_bytes)))
			goto fail;
		rc = abi_ring_init(&c->hq[q], ABI_RING_PRODUCER, c->ring_mem[q], c->cmd_bytes,
				   c->cfg.ring_log2, sizeof(struct abi_cmd), c->cfg.ring_start);
		if (rc)
			goto fail;
		mb.cmdq[q] = c->ring_mem[q];
		mb.cmdq_bytes[q] = c->cmd_bytes;
	}
	rc = -ENOMEM;
	if (!(c->cpl_mem = calloc(1, c->cpl_bytes)))
		goto fail;
	rc = abi_ring_init(&c->hc, ABI_RING_CONSUMER, c->cpl_mem, c->cpl_bytes,
			   c->cfg.ring_log2 + 1, sizeof(struct abi_cpl), c->cfg.ring_start);
	if (rc)
		goto fail;
	mb.cplq = c->cpl_mem;
	mb.cplq_bytes = c->cpl_bytes;
	for (uint32_t i = 0; i < ABI_MAX_CUS; i++) {
		c->cu[i].card = c;
		c->cu[i].blk = i;
		c->cu[i].regs[0] = FW_CU_CTRL_IDLE | FW_CU_CTRL_READY;
	}
	for (uint32_t i = 0; i < ABI_MAX_DMA; i++) {
		c->dma[i].card = c;
		c->dma[i].chan = i;
	}
	rc = fw_init(&c->fw, c, &mb);
	if (rc)
		goto fail;
	*out = c;
	return 0;
fail:
	sim_card_free(c);
	return rc;
}

int sim_card_start(struct sim_card *c)
{
	uint32_t nc = c->fw.n_cus, nd = c->fw.n_dma;
	for (uint32_t i = 0; i < nc; i++) {
		struct sim_cu *u = &c->cu[ABI_CU_REGBLK(c->board.cus[i].word)];
		if (u->th_on)
			continue;
		if (pthread_create(&u->th, NULL, sim_cu_main, u))
			return -EAGAIN;
		u->th_on = true;
	}
	for (uint32_t i = 0; i < nd; i++) {
		if (pthread_create(&c->dma[i].th, NULL, sim_dma_main, &c->dma[i]))
			return -EAGAIN;
		c->dma[i].th_on = true;
	}
	if (pthread_create(&c->fw_th, NULL, sim_fw_main, c))
		return -EAGAIN;
	c->fw_on = true;
	return 0;
}

void sim_card_free(struct sim_card *c)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->mu);
	__atomic_store_n(&c->stop, true, __ATOMIC_RELEASE);
	sim_wake_all(c);
	pthread_mutex_unlock(&c->mu);
	if (c->fw_on)
		pthread_join(c->fw_th, NULL);
	for (uint32_t i = 0; i < ABI_MAX_CUS; i++)
		if (c->cu[i].th_on)
			pthread_join(c->cu[i].th, NULL);
	for (uint32_t i = 0; i < ABI_MAX_DMA; i++)
		if (c->dma[i].th_on)
			pthread_join(c->dma[i].th, NULL);
	for (uint32_t q = 0; q < FW_CFG_N_QUEUES; q++)
		free(c->ring_mem[q]);
	free(c->cpl_mem);
	pthread_cond_destroy(&c->cv);
	pthread_cond_destroy(&c->hcv);
	for (uint32_t i = 0; i < ABI_MAX_CUS; i++)
		pthread_cond_destroy(&c->cu[i].cv);
	for (uint32_t i = 0; i < ABI_MAX_DMA; i++)
		pthread_cond_destroy(&c->dma[i].cv);
	pthread_mutex_destroy(&c->mu);
	pthread_mutex_destroy(&c->hmu);
	free(c);
}

/* --- host side ---------------------------------------------------------------------------- */
int sim_card_submit(struct sim_card *c, uint32_t q, const struct abi_cmd *cmds, uint32_t n)
{
	if (q >= FW_CFG_N_QUEUES)
		return -EINVAL;
	/* under a virtual clock the firmware first finishes what it was doing at this card time,
	 * so the order in which it sees host doorbells and its own events never depends on how the
	 * host's threads were scheduled */
	if (c->cfg.clock && c->fw_on) {
		uint64_t next;
		sim_card_settle(c, false, SIM_SETTLE_MS, &next);
	}
	pthread_mutex_lock(&c->hmu);
	int rc = abi_ring_push_n(&c->hq[q], cmds, n);
	pthread_mutex_unlock(&c->hmu);
	if (rc == 0)
		sim_card_kick(c); /* doorbell */
	return rc;
}

int sim_card_poll(struct sim_card *c, struct abi_cpl *cpl)
{
	pthread_mutex_lock(&c->hmu);
	int rc = abi_ring_pop(&c->hc, cpl);
	pthread_mutex_unlock(&c->hmu);
	if (rc == 0)
		sim_card_kick(c); /* completion space freed */
	return rc;
}

int sim_card_wait(struct sim_card *c, struct abi_cpl *cpl, uint32_t timeout_ms)
{
	struct timespec t0, t;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		int rc = sim_card_poll(c, cpl);
		if (rc != -EAGAIN)
			return rc;
		clock_gettime(CLOCK_MONOTONIC, &t);
		int64_t ms =
		    (int64_t)(t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000;
		if (ms >= (int64_t)timeout_ms)
			return -ETIMEDOUT;
		pthread_mutex_lock(&c->mu);
		if (abi_ring_avail(&c->hc) == 0)
			sim_cv_wait(c, &c->hcv, 1000000); /* fw_port_notify_host wakes it */
		pthread_mutex_unlock(&c->mu);
	}
}

const struct abi_telemetry *sim_card_telemetry(struct sim_card *c)
{
	return &c->telem;
}

struct abi_ring_view *sim_card_cmdq(struct sim_card *c, uint32_t q)
{
	return q < FW_CFG_N_QUEUES ? &c->hq[q] : NULL;
}
