/*
 * rtos.c - the portable core of the firmware kernel: task table ordered by priority, message
 * queues, software timers and the scheduler step (see rtos.h for the model). Used by every port.
 */
#include "firmware/kernel/rtos.h"
#include "firmware/abi/abi_copy.h"

#include <errno.h>
#include <string.h>

int rtos_init(struct rtos *k, rtos_now_fn now, void *now_ctx, rtos_idle_fn idle, void *idle_ctx)
{
	if (!k || !now)
		return -EINVAL;
	memset(k, 0, sizeof(*k));
	k->now = now;
	k->now_ctx = now_ctx;
	k->idle = idle;
	k->idle_ctx = idle_ctx;
	return 0;
}

int rtos_task_add(struct rtos *k, struct rtos_task *t, const char *name, uint32_t prio,
		  rtos_task_fn fn, void *arg)
{
	if (!t || !fn || prio >= RTOS_CFG_MAX_PRIO)
		return -EINVAL;
	for (uint32_t i = 0; i < k->n_tasks; i++)
		if (k->tasks[i] == t)
			return -EEXIST;
	if (k->n_tasks >= RTOS_CFG_MAX_TASKS)
		return -ENOSPC;
	t->name = name;
	t->fn = fn;
	t->arg = arg;
	t->prio = prio;
	t->events = 0;
	t->runs = 0;
	/* insertion keeps the table sorted highest priority first, stable for equal priorities */
	uint32_t pos = k->n_tasks;
	while (pos > 0 && k->tasks[pos - 1]->prio < prio) {
		k->tasks[pos] = k->tasks[pos - 1];
		pos--;
	}
	k->tasks[pos] = t;
	k->n_tasks++;
	return 0;
}

void rtos_task_notify(struct rtos_task *t, uint32_t events)
{
	__atomic_fetch_or(&t->events, events, __ATOMIC_RELEASE);
}

int rtos_queue_init(struct rtos_queue *q, void *storage, uint32_t item_size, uint32_t cap,
		    struct rtos_task *owner, uint32_t event)
{
	if (!q || !storage || item_size == 0 || cap == 0)
		return -EINVAL;
	memset(q, 0, sizeof(*q));
	q->buf = storage;
	q->item_size = item_size;
	q->cap = cap;
	q->owner = owner;
	q->event = event;
	return 0;
}

void *rtos_queue_tail(const struct rtos_queue *q)
{
	if (q->count >= q->cap)
		return NULL;
	uint32_t slot = q->head + q->count;
	if (slot >= q->cap)
		slot -= q->cap;
	return q->buf + (size_t)slot * q->item_size;
}

int rtos_queue_send(struct rtos_queue *q, const void *item)
{
	void *slot = rtos_queue_tail(q);
	if (!slot)
		return -EAGAIN;
	abi_copy_aligned(slot, item, q->item_size);
	return rtos_queue_commit(q);
}

int rtos_queue_commit(struct rtos_queue *q)
{
	if (q->count >= q->cap)
		return -EAGAIN;
	q->count++;
	if (q->count > q->high_water)
		q->high_water = q->count;
	if (q->owner)
		rtos_task_notify(q->owner, q->event);
	return 0;
}

int rtos_queue_recv(struct rtos_queue *q, void *item)
{
	if (q->count == 0)
		return -EAGAIN;
	if (item)
		abi_copy_aligned(item, q->buf + (size_t)q->head * q->item_size, q->item_size);
	q->head = q->head + 1 == q->cap ? 0 : q->head + 1;
	q->count--;
	return 0;
}

void *rtos_queue_peek(const struct rtos_queue *q)
{
	return q->count ? q->buf + (size_t)q->head * q->item_size : NULL;
}

int rtos_timer_add(struct rtos *k, struct rtos_timer *tm, struct rtos_task *task, uint32_t event)
{
	if (!tm || !task || !event)
		return -EINVAL;
	if (k->n_timers >= RTOS_CFG_MAX_TIMERS)
		return -ENOSPC;
	memset(tm, 0, sizeof(*tm));
	tm->task = task;
	tm->event = event;
	k->timers[k->n_timers++] = tm;
	return 0;
}

void rtos_timer_start(struct rtos *k, struct rtos_timer *tm, uint64_t delay, uint64_t period)
{
	tm->expiry = k->now(k->now_ctx) + delay;
	tm->period = period;
	tm->active = true;
}

void rtos_timer_stop(struct rtos_timer *tm)
{
	tm->active = false;
}

uint64_t rtos_next_deadline(const struct rtos *k)
{
	uint64_t d = UINT64_MAX;
	for (uint32_t i = 0; i < k->n_timers; i++)
		if (k->timers[i]->active && k->timers[i]->expiry < d)
			d = k->timers[i]->expiry;
	return d;
}

static void rtos_timers_fire(struct rtos *k)
{
	uint64_t now = k->now(k->now_ctx);
	for (uint32_t i = 0; i < k->n_timers; i++) {
		struct rtos_timer *tm = k->timers[i];
		if (!tm->active || tm->expiry > now)
			continue;
		tm->fired++;
		rtos_task_notify(tm->task, tm->event);
		if (tm->period) {
			/* skip missed periods rather than firing a burst after a long stall */
			uint64_t late = now - tm->expiry;
			tm->expiry += tm->period * (late / tm->period + 1);
		} else {
			tm->active = false;
		}
	}
}

int rtos_step(struct rtos *k)
{
	rtos_timers_fire(k);
	for (uint32_t i = 0; i < k->n_tasks; i++) {
		struct rtos_task *t = k->tasks[i];
		uint32_t ev = __atomic_exchange_n(&t->events, 0, __ATOMIC_ACQUIRE);
		if (!ev)
			continue;
		t->runs++;
		t->fn(k, t, ev);
		return 1;
	}
	k->idle_calls++;
	if (k->idle)
		k->idle(k, rtos_next_deadline(k), k->idle_ctx);
	return 0;
}
