/*
 * fw.c - the firmware's tasks on the kernel (fw.h has the data flow):
 *   cmdq   (prio 2): takes commands from the host rings, ring 0 first, decodes them; rejects go
 *                    straight to the completion ring, the rest to per-ring pending queues. A
 *                    completion slot is reserved for every command taken, so posting never
 *                    blocks and the host's completion ring can never overflow.
 *   disp   (prio 3): polls CUs for ap_done, then starts each ring's head in order when its fence
 *                    wait is met (or failed), its barrier is clear and a free CU implements the
 *                    op with access to all its banks. Several CUs run at once.
 *   dma    (prio 3): DMA manager: polls channels, starts queued fills (expert slots) on a free
 *                    channel; their completion signals the fence the GEMMs on the slot wait on.
 *   telem  (prio 1): every FW_CFG_WDOG_PERIOD_NS: hang scan (abort with CU_TIMEOUT, reset just
 *                    that CU), heartbeat, telemetry time.
 * The idle hook sleeps in the port until an event or the next timer, then marks the polling
 * tasks ready.
 */
#include "firmware/fw.h"

#include <errno.h>
#include <string.h>

enum { FW_EV_POLL = 1u, FW_EV_WORK = 2u, FW_EV_TIMER = 4u };

static void fw_telem_error(struct fw *fw, const struct abi_cpl *cpl)
{
	struct abi_telemetry *t = fw->telem;
	t->errors++;
	struct abi_errlog *e = &t->log[t->log_head % ABI_ERRLOG_LEN];
	e->tag = cpl->tag;
	e->word1 = cpl->word1;
	e->detail = cpl->detail;
	e->rsvd = 0;
	e->time = cpl->t_end;
	e->rsvd2 = 0;
	t->log_head++;
}

/* Posts the completion of c (reserved slot), updates fences, telemetry and the ring's count. */
static void fw_complete(struct fw *fw, const struct fw_cmd *c, uint32_t st, uint32_t detail,
			uint32_t cu, uint64_t t0, uint64_t t1, bool started)
{
	const struct abi_cmd_hdr *h = &c->raw.hdr;
	struct abi_cpl cpl = {
	    .tag = h->tag,
	    .word1 = ABI_CPL_W1(st, c->op & 0xFFu, c->queue, cu),
	    .detail = detail,
	    .seq = fw->cpl_seq++,
	    .t_start = t0,
	    .t_end = t1,
	};
	if (c->flags & ABI_CMD_F_SIGNAL) {
		uint32_t id = ABI_W3_SIGNAL(h->word3);
		if (st == ABI_ST_OK) {
			fw->fence[id] = h->signal_value;
			if ((int32_t)(h->signal_value - fw->fence_err_value[id]) >= 0)
				fw->fence_err[id] = false;
		} else {
			fw->fence_err[id] = true;
			fw->fence_err_value[id] = h->signal_value;
		}
	}
	if (started && fw->inflight[c->queue])
		fw->inflight[c->queue]--;
	if (fw->cpl_reserved)
		fw->cpl_reserved--;
	if (st != ABI_ST_OK)
		fw_telem_error(fw, &cpl);
	/* the firmware's work for this completion is done before the host can see it */
	fw_port_spend(fw->port, started ? FW_WORK_DONE : FW_WORK_SYNC);
	/* the slot was reserved when the command was taken; only a host that corrupted the
	 * completion ring's consumer counter makes this fail, and then the entry is dropped */
	if (abi_ring_push(&fw->cplq, &cpl) == 0)
		fw->telem->completed++;
	fw_port_notify_host(fw->port);
	if (!fw->cu_polling) /* (a dispatcher run that polls dispatches right after) */
		rtos_task_notify(&fw->t_disp, FW_EV_WORK);
}

/* An error completion for a command that never got to run. */
static void fw_reject(struct fw *fw, const struct fw_cmd *c, uint32_t st, uint32_t detail)
{
	uint64_t now = fw_port_now(fw->port);
	fw_complete(fw, c, st, detail, ABI_CPL_CU_NONE, now, now, false);
}

/* --- command-queue service ------------------------------------------------------------- */
static void fw_task_cmdq(struct rtos *k, struct rtos_task *t, uint32_t ev)
{
	struct fw *fw = t->arg;
	bool more = false;
	for (uint32_t q = 0; q < FW_CFG_N_QUEUES; q++) {
		for (uint32_t n = 0; fw->cmdq_on[q]; n++) {
			int space = abi_ring_space(&fw->cplq);
			if (space <= 0 || fw->cpl_reserved >= (uint32_t)space ||
			    rtos_queue_space(&fw->pend[q]) == 0)
				break;
			if (n == FW_CFG_CMDQ_BATCH) {
				more = true;
				break;
			}
			const void *slot;
			int rc = abi_ring_peek(&fw->cmdq[q], &slot);
			if (rc == -EAGAIN)
				break;
			fw->cpl_reserved++;
			if (rc) { /* producer counter out of range: the ring is unusable */
				struct fw_cmd e;
				fw->cmdq_on[q] = false;
				memset(&e, 0, sizeof(e));
				e.raw.hdr.tag = 0xFFFFFFFFu;
				e.queue = q;
				e.op = 0xFF;
				fw_reject(fw, &e, ABI_ST_RING_ERROR, (uint32_t)-rc);
				break;
			}
			/* decoded straight from the slot into the pending queue's free slot (space
			 * checked above): the decoder copies the packet once and checks the copy; the
			 * ring slot is released after that copy */
			struct fw_cmd *c = rtos_queue_tail(&fw->pend[q]);
			uint32_t detail;
			uint32_t st = fw_cmd_decode(&fw->board, slot, q, c, &detail);
			abi_ring_release(&fw->cmdq[q]);
			fw_port_take(fw->port, c->op);
			c->ready_at = fw_port_ready(fw->port);
			if (st != ABI_ST_OK)
				fw_reject(fw, c, st, detail);
			else
				rtos_queue_commit(&fw->pend[q]);
		}
	}
	if (more)
		rtos_task_notify(t, FW_EV_WORK);
	(void)k;
	(void)ev;
}

/* --- dispatcher -------------------------------------------------------------------------- */
static uint32_t fw_cu_blk(const struct fw *fw, uint32_t cu)
{
	return ABI_CU_REGBLK(fw->board.cus[cu].word);
}

/* Completes the command on CU i with status st and frees the CU. */
static void fw_cu_finish(struct fw *fw, uint32_t i, uint32_t st, uint32_t detail, uint64_t now)
{
	struct fw_unit *u = &fw->cu[i];
	u->busy = false;
	fw->telem->cu_busy_ns[i] += now - u->t_start;
	fw->telem->cu_cmds[i]++;
	if (st != ABI_ST_OK) {
		fw_port_cu_reset(fw->port, fw_cu_blk(fw, i));
		fw->telem->cu_resets[i]++;
	}
	fw_complete(fw, &u->cmd, st, detail, i, u->t_start, now, true);
}

static void fw_cu_poll(struct fw *fw)
{
	for (uint32_t i = 0; i < fw->n_cus; i++) {
		if (!fw->cu[i].busy)
			continue;
		uint32_t blk = fw_cu_blk(fw, i);
		uint32_t ctrl = fw_port_cu_read(fw->port, blk, FW_CU_REG_CTRL); /* clears ap_done */
		if (!(ctrl & FW_CU_CTRL_DONE))
			continue;
		uint32_t status = fw_port_cu_read(fw->port, blk, FW_CU_REG_STATUS);
		uint64_t now = fw_port_now(fw->port);
		if (status)
			fw_cu_finish(fw, i, ABI_ST_CU_ERROR, status, now);
		else
			fw_cu_finish(fw, i, ABI_ST_OK, 0, now);
	}
}

/* A free CU able to run c, or -1. Round-robin so equal CUs share the work. */
static int fw_cu_pick(struct fw *fw, const struct fw_cmd *c)
{
	for (uint32_t j = 0; j < fw->n_cus; j++) {
		uint32_t i = (fw->cu_rr + j) % fw->n_cus;
		const struct abi_cu *cu = &fw->board.cus[i];
		if (fw->cu[i].busy || !(cu->ops_mask >> c->op & 1) ||
		    (c->bank_mask & ~cu->bank_mask))
			continue;
		fw->cu_rr = i + 1;
		return (int)i;
	}
	return -1;
}

static void fw_cu_start(struct fw *fw, uint32_t i, const struct fw_cmd *c)
{
	struct fw_unit *u = &fw->cu[i];
	uint32_t blk = fw_cu_blk(fw, i);
	/* the completion needs the header and the decoded fields; the payload and args go to the
	 * CU's registers and are not kept */
	fw_copy_words(&u->cmd.raw.hdr, &c->raw.hdr, sizeof(c->raw.hdr));
	fw_copy_words(&u->cmd.op, &c->op, sizeof(*c) - offsetof(struct fw_cmd, op));
	u->busy = true;
	fw_port_cu_write(fw->port, blk, FW_CU_REG_OP, c->op);
	fw_port_cu_args(fw->port, blk, c->args);
	fw_port_start_cu(fw->port, blk, c->ready_at);
	u->t_start = fw_port_now(fw->port);
	u->deadline = u->t_start + c->timeout_ns;
	fw_port_cu_write(fw->port, blk, FW_CU_REG_CTRL, FW_CU_CTRL_START);
}

enum { FW_DEP_READY, FW_DEP_WAIT, FW_DEP_FAILED };

static int fw_dep_state(const struct fw *fw, const struct fw_cmd *c)
{
	if (!(c->flags & ABI_CMD_F_WAIT))
		return FW_DEP_READY;
	uint32_t id = ABI_W3_WAIT(c->raw.hdr.word3), v = c->raw.hdr.wait_value;
	if ((int32_t)(fw->fence[id] - v) >= 0)
		return FW_DEP_READY;
	if (fw->fence_err[id] && (int32_t)(fw->fence_err_value[id] - v) >= 0)
		return FW_DEP_FAILED;
	return FW_DEP_WAIT;
}

/* Starts what can start at the head of ring q; returns when its head must wait. */
static void fw_dispatch_queue(struct fw *fw, uint32_t q)
{
	struct fw_cmd *c;
	while ((c = rtos_queue_peek(&fw->pend[q]))) {
		if (c->ready_at && c->ready_at > fw_port_now(fw->port)) {
			/* still being taken (a dispatch engine's CPU): wake when it is ready */
			if (!fw->wake_at || c->ready_at < fw->wake_at)
				fw->wake_at = c->ready_at;
			return;
		}
		int dep = fw_dep_state(fw, c);
		if (dep == FW_DEP_WAIT || ((c->flags & ABI_CMD_F_DRAIN) && fw->inflight[q]))
			return; /* (DRAIN: a barrier before it, folded in) */
		if (dep == FW_DEP_FAILED) {
			fw_reject(fw, c, ABI_ST_DEP_ERROR, ABI_W3_WAIT(c->raw.hdr.word3));
		} else if (c->op == ABI_OP_BARRIER) {
			if (fw->inflight[q])
				return;
			fw_reject(fw, c, ABI_ST_OK, 0);
		} else if (c->op == ABI_OP_NOP || c->op == ABI_OP_FENCE ||
			   c->op == ABI_OP_TIMESTAMP) {
			fw_reject(fw, c, ABI_ST_OK, 0);
		} else if (c->op == ABI_OP_DMA_FILL) {
			if (rtos_queue_send(&fw->dmaq, c))
				return; /* DMA manager full */
			fw->inflight[q]++;
		} else {
			int cu = fw_cu_pick(fw, c);
			if (cu < 0)
				return;
			fw_cu_start(fw, (uint32_t)cu, c);
			fw->inflight[q]++;
		}
		rtos_queue_recv(&fw->pend[q], NULL);
	}
}

static void fw_task_disp(struct rtos *k, struct rtos_task *t, uint32_t ev)
{
	struct fw *fw = t->arg;
	if (ev & FW_EV_POLL) {
		fw->cu_polling = true;
		fw_cu_poll(fw);
		fw->cu_polling = false;
	}
	for (uint32_t q = 0; q < FW_CFG_N_QUEUES; q++)
		fw_dispatch_queue(fw, q);
	(void)k;
}

/* --- DMA manager ------------------------------------------------------------------------- */
static uint64_t fw_arg64(const struct fw_cmd *c, uint32_t w)
{
	return (uint64_t)c->args[w] | ((uint64_t)c->args[w + 1] << 32);
}

static void fw_task_dma(struct rtos *k, struct rtos_task *t, uint32_t ev)
{
	struct fw *fw = t->arg;
	for (uint32_t i = 0; i < fw->n_dma; i++) {
		struct fw_unit *u = &fw->dma[i];
		if (!u->busy)
			continue;
		uint32_t detail = 0;
		enum fw_dma_state s = fw_port_dma_poll(fw->port, i, &detail);
		if (s == FW_DMA_BUSY)
			continue;
		u->busy = false;
		uint64_t now = fw_port_now(fw->port);
		if (s == FW_DMA_DONE) {
			fw->telem->dma_bytes += u->cmd.raw.u.dma.bytes;
			fw_complete(fw, &u->cmd, ABI_ST_OK, 0, ABI_CPL_CU_NONE, u->t_start, now,
				    true);
		} else {
			fw_complete(fw, &u->cmd, ABI_ST_DMA_ERROR, detail, ABI_CPL_CU_NONE,
				    u->t_start, now, true);
		}
	}
	struct fw_cmd *c;
	while ((c = rtos_queue_peek(&fw->dmaq))) {
		/* args: src [1:0], dst [3:2], bytes [5:4], flags [6], word [7] (struct abi_dma_fill) */
		uint32_t want = ABI_DMA_WORD_CHAN(c->args[7]), flags = c->args[6];
		uint32_t need = (flags & ABI_DMA_F_SRC_HOST)  ? ABI_DMA_CAP_H2C
				: (flags & ABI_DMA_F_PATTERN) ? 0u
							      : ABI_DMA_CAP_C2C;
		int ch = -1;
		for (uint32_t i = 0; i < fw->n_dma && ch < 0; i++)
			if (!fw->dma[i].busy && (want == ABI_DMA_CHAN_ANY || want == i) &&
			    (fw->board.dma[i].word & need) == need)
				ch = (int)i;
		if (ch < 0)
			break;
		struct fw_dma_desc d = {
		    .src = fw_arg64(c, 0),
		    .dst = fw_arg64(c, 2),
		    .bytes = fw_arg64(c, 4),
		    .flags = flags,
		    .pattern = ABI_DMA_WORD_PATTERN(c->args[7]),
		};
		struct fw_unit *u = &fw->dma[ch];
		fw_copy_words(&u->cmd, c, sizeof(*c));
		fw_port_spend(fw->port, FW_WORK_START);
		u->t_start = fw_port_now(fw->port);
		if (fw_port_dma_start(fw->port, (uint32_t)ch, &d)) {
			u->busy = false;
			break; /* engine not idle yet; retry on the next poll */
		}
		u->busy = true;
		rtos_queue_recv(&fw->dmaq, NULL);
	}
	(void)k;
	(void)ev;
}

/* --- telemetry and watchdog ------------------------------------------------------------- */
static void fw_task_telem(struct rtos *k, struct rtos_task *t, uint32_t ev)
{
	struct fw *fw = t->arg;
	uint64_t now = fw_port_now(fw->port);
	for (uint32_t i = 0; i < fw->n_cus; i++) {
		struct fw_unit *u = &fw->cu[i];
		if (u->busy && now >= u->deadline) {
			/* one last look: a CU that finished just now is not hung */
			uint32_t blk = fw_cu_blk(fw, i);
			if (fw_port_cu_read(fw->port, blk, FW_CU_REG_CTRL) & FW_CU_CTRL_DONE) {
				uint32_t st = fw_port_cu_read(fw->port, blk, FW_CU_REG_STATUS);
				fw_cu_finish(fw, i, st ? ABI_ST_CU_ERROR : ABI_ST_OK, st, now);
			} else {
				fw_cu_finish(fw, i, ABI_ST_CU_TIMEOUT, (uint32_t)(now - u->t_start),
					     now);
			}
		}
	}
	if (++fw->wdog_ticks % FW_CFG_HEARTBEAT_DIV == 0)
		fw->telem->heartbeat++;
	fw->telem->now = now;
	(void)k;
	(void)ev;
}

/* --- bring-up ---------------------------------------------------------------------------- */
static uint64_t fw_kern_now(void *ctx)
{
	return fw_port_now(((struct fw *)ctx)->port);
}

static void fw_kern_idle(struct rtos *k, uint64_t deadline, void *ctx)
{
	struct fw *fw = ctx;
	if (fw->wake_at && fw->wake_at < deadline)
		deadline = fw->wake_at;
	fw->wake_at = 0;
	fw_port_wait(fw->port, deadline);
	rtos_task_notify(&fw->t_cmdq, FW_EV_POLL);
	rtos_task_notify(&fw->t_disp, FW_EV_POLL);
	/* the DMA manager has something to poll only with a fill running or queued */
	bool dma = rtos_queue_count(&fw->dmaq) != 0;
	for (uint32_t i = 0; i < fw->n_dma && !dma; i++)
		dma = fw->dma[i].busy;
	if (dma)
		rtos_task_notify(&fw->t_dma, FW_EV_POLL);
	(void)k;
}

int fw_init(struct fw *fw, void *port, const struct fw_mailbox *mb)
{
	int rc;
	uint32_t field;
	memset(fw, 0, sizeof(*fw));
	fw->port = port;
	if (!mb || !mb->board || !mb->cplq || !mb->telem)
		return -EINVAL;
	memcpy(&fw->board, mb->board, sizeof(fw->board)); /* the host may not change it later */
	rc = fw_board_check(&fw->board, &field);
	if (rc)
		return rc;
	fw->n_banks = ABI_BOARD_N_BANKS(fw->board.counts);
	fw->n_cus = ABI_BOARD_N_CUS(fw->board.counts);
	fw->n_dma = ABI_BOARD_N_DMA(fw->board.counts);
	for (uint32_t q = 0; q < FW_CFG_N_QUEUES; q++) {
		if (!mb->cmdq[q])
			continue;
		rc = abi_ring_attach(&fw->cmdq[q], ABI_RING_CONSUMER, mb->cmdq[q],
				     mb->cmdq_bytes[q], sizeof(struct abi_cmd));
		if (rc)
			return rc;
		fw->cmdq_on[q] = true;
	}
	rc = abi_ring_attach(&fw->cplq, ABI_RING_PRODUCER, mb->cplq, mb->cplq_bytes,
			     sizeof(struct abi_cpl));
	if (rc)
		return rc;
	fw->telem = mb->telem;
	memset(fw->telem, 0, sizeof(*fw->telem));
	fw->telem->magic = ABI_TELEM_MAGIC;
	fw->telem->version = ABI_VERSION;

	struct rtos *k = &fw->rtos;
	rtos_init(k, fw_kern_now, fw, fw_kern_idle, fw);
	if ((rc = rtos_task_add(k, &fw->t_disp, "disp", 3, fw_task_disp, fw)) ||
	    (rc = rtos_task_add(k, &fw->t_dma, "dma", 3, fw_task_dma, fw)) ||
	    (rc = rtos_task_add(k, &fw->t_cmdq, "cmdq", 2, fw_task_cmdq, fw)) ||
	    (rc = rtos_task_add(k, &fw->t_telem, "telem", 1, fw_task_telem, fw)))
		return rc;
	for (uint32_t q = 0; q < FW_CFG_N_QUEUES; q++)
		rtos_queue_init(&fw->pend[q], fw->pend_buf[q], sizeof(struct fw_cmd),
				FW_CFG_PENDING, &fw->t_disp, FW_EV_WORK);
	rtos_queue_init(&fw->dmaq, fw->dmaq_buf, sizeof(struct fw_cmd), FW_CFG_DMA_PENDING,
			&fw->t_dma, FW_EV_WORK);
	if ((rc = rtos_timer_add(k, &fw->wdog, &fw->t_telem, FW_EV_TIMER)))
		return rc;
	rtos_timer_start(k, &fw->wdog, FW_CFG_WDOG_PERIOD_NS, FW_CFG_WDOG_PERIOD_NS);
	rtos_task_notify(&fw->t_cmdq, FW_EV_POLL);
	return 0;
}

int fw_step(struct fw *fw)
{
	return rtos_step(&fw->rtos);
}
