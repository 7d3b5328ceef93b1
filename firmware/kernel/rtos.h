/*
 * rtos.h - the firmware's small RTOS-style kernel (FreeRTOS-like split: this portable core, the
 * target specifics in firmware/port/<target>/). It sits under the firmware tasks (command queues,
 * dispatcher, DMA manager, telemetry; firmware/fw.c) and above the port, which supplies the clock
 * and the idle wait.
 *
 * Model: static, run-to-completion tasks with fixed priorities (the QV-style cooperative kernel):
 * a task is a function that runs when it has pending event bits and returns; the scheduler always
 * runs the highest-priority ready task next (equal priorities in registration order). There is
 * no preemption and so no per-task stack and no context switch, which keeps one portable core for
 * the sim, rv32 and r5 ports. Message queues are fixed-size item rings over caller storage that
 * notify their owner task; software timers post an event to a task when they expire. When no task
 * is ready the idle hook runs with the next timer deadline (the port sleeps / waits for an
 * interrupt there). No heap: every object is allocated by the caller.
 */
#ifndef RTOS_H
#define RTOS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "firmware/kernel/rtos_config.h"

struct rtos;
struct rtos_task;

/* A task body: called with the event bits that were pending (cleared before the call). */
typedef void (*rtos_task_fn)(struct rtos *k, struct rtos_task *t, uint32_t events);
/* Card time in ns (port clock; may be virtual). */
typedef uint64_t (*rtos_now_fn)(void *ctx);
/* Idle hook: nothing is ready; wait at most until deadline (ns, UINT64_MAX = none). */
typedef void (*rtos_idle_fn)(struct rtos *k, uint64_t deadline, void *ctx);

struct rtos_task {
	const char *name; /* for logs */
	rtos_task_fn fn;  /* body */
	void *arg;	  /* caller's context */
	uint32_t prio;	  /* 0 (lowest) .. RTOS_CFG_MAX_PRIO-1 */
	uint32_t events;  /* pending event bits (set by rtos_task_notify, atomically) */
	uint32_t runs;	  /* times the body ran */
};

/* A message queue: cap items of item_size bytes in caller storage. */
struct rtos_queue {
	uint8_t *buf;		 /* cap * item_size bytes */
	uint32_t item_size;	 /* bytes per item, > 0 */
	uint32_t cap;		 /* items, > 0 */
	uint32_t head;		 /* index of the oldest item, 0..cap-1 */
	uint32_t count;		 /* items held, 0..cap */
	uint32_t high_water;	 /* most items ever held */
	struct rtos_task *owner; /* notified on send, or NULL */
	uint32_t event;		 /* event bit posted to owner on send */
};

/* A software timer: posts event to task at expiry, then every period ns if period > 0. */
struct rtos_timer {
	struct rtos_task *task; /* receiver of the event */
	uint32_t event;		/* event bit */
	bool active;		/* armed */
	uint64_t expiry;	/* ns, card time */
	uint64_t period;	/* ns, 0 = one-shot */
	uint32_t fired;		/* times it expired */
};

struct rtos {
	struct rtos_task *tasks[RTOS_CFG_MAX_TASKS];	/* sorted by priority, highest first */
	uint32_t n_tasks;				/* 0..RTOS_CFG_MAX_TASKS */
	struct rtos_timer *timers[RTOS_CFG_MAX_TIMERS]; /* registered timers */
	uint32_t n_timers;				/* 0..RTOS_CFG_MAX_TIMERS */
	rtos_now_fn now;				/* clock */
	void *now_ctx;					/* its context */
	rtos_idle_fn idle;				/* idle hook or NULL */
	void *idle_ctx;					/* its context */
	uint64_t idle_calls;				/* times the idle hook ran */
};

/* Sets up an empty kernel. Errors: -EINVAL now is NULL. */
int rtos_init(struct rtos *k, rtos_now_fn now, void *now_ctx, rtos_idle_fn idle, void *idle_ctx);

/* Registers a static task. Errors: -EINVAL NULL fn or prio >= RTOS_CFG_MAX_PRIO, -ENOSPC table
 * full, -EEXIST task already registered. */
int rtos_task_add(struct rtos *k, struct rtos_task *t, const char *name, uint32_t prio,
		  rtos_task_fn fn, void *arg);

/* Posts event bits to a task (safe from another thread or an interrupt handler). */
void rtos_task_notify(struct rtos_task *t, uint32_t events);

/* Sets up a queue over storage (cap * item_size bytes). Errors: -EINVAL zero sizes or NULL. */
int rtos_queue_init(struct rtos_queue *q, void *storage, uint32_t item_size, uint32_t cap,
		    struct rtos_task *owner, uint32_t event);
/* Appends a copy of item. Errors: -EAGAIN queue full. */
int rtos_queue_send(struct rtos_queue *q, const void *item);
/* The free slot the next item goes to, to build it in place, or NULL when full; nothing is
 * queued until rtos_queue_commit(). */
void *rtos_queue_tail(const struct rtos_queue *q);
/* Queues the item built in the slot rtos_queue_tail() returned. Errors: -EAGAIN queue full. */
int rtos_queue_commit(struct rtos_queue *q);
/* Removes the oldest item into item (may be NULL to drop it). Errors: -EAGAIN queue empty. */
int rtos_queue_recv(struct rtos_queue *q, void *item);
/* The oldest item in place, or NULL when empty. */
void *rtos_queue_peek(const struct rtos_queue *q);
static inline uint32_t rtos_queue_count(const struct rtos_queue *q)
{
	return q->count;
}
static inline uint32_t rtos_queue_space(const struct rtos_queue *q)
{
	return q->cap - q->count;
}

/* Registers a (stopped) timer. Errors: -EINVAL NULL task or zero event, -ENOSPC table full. */
int rtos_timer_add(struct rtos *k, struct rtos_timer *tm, struct rtos_task *task, uint32_t event);
/* Arms tm to fire delay ns from now, then every period ns (0 = once). */
void rtos_timer_start(struct rtos *k, struct rtos_timer *tm, uint64_t delay, uint64_t period);
void rtos_timer_stop(struct rtos_timer *tm);

/* Fires due timers, then runs the highest-priority ready task once. Returns 1 if a task ran,
 * 0 if none was ready (the idle hook, if any, was called). */
int rtos_step(struct rtos *k);

/* Earliest armed timer expiry, UINT64_MAX when none. */
uint64_t rtos_next_deadline(const struct rtos *k);

#endif
