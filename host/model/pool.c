/*
 * pool.c - thread pool behind pool.h. A job is published as a generation number; items are
 * claimed with a compare-and-swap on one 64-bit word holding (generation << 32 | next item), so a
 * worker that wakes late can never claim items of a newer job with a stale view. The caller waits
 * for all items to be DONE, not for every worker to check in: a descheduled worker costs nothing.
 * Workers spin briefly on the generation, then sleep on a condition variable.
 *
 * A worker may still be inside pool_work of a finished job (it loaded the claim word, then was
 * preempted) when the caller starts the next one. It then reads the job fields (items, grain) of
 * the new job with the claim word of the old one. So the caller first closes the claim word
 * (new generation, no item left) and only then rewrites the fields, with release stores that the
 * worker reads with acquire loads: a worker that sees a new field also sees the closed word, and
 * its compare-and-swap on the old word fails. Without that, the stale worker could claim items
 * [old items, e) between the field stores and the claim store and run them with the new fn/ctx
 * (or a mix of old and new) - items run twice, extra counts in `done`, pool_for returning while
 * items still run.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>
#include "model/pool.h"

#define POOL_MAX 64
#define POOL_SPIN 4000
#define POOL_CLOSED 0x7fffffffu /* claim word's item index of a job being set up */

/* Test hook (host/tests/test_pool.c): a preemption point inside the claim and publish windows. */
#ifndef POOL_WINDOW
#define POOL_WINDOW() ((void)0)
#endif

struct pool_worker {
	struct pool *p;
	int tid;
};

struct pool {
	int n; /* threads including the caller */
	pthread_t th[POOL_MAX];
	struct pool_worker args[POOL_MAX];
	pthread_mutex_t mu;
	pthread_cond_t cv;
	atomic_uint gen;	/* current job generation */
	_Atomic uint64_t claim; /* gen << 32 | next unclaimed item */
	atomic_int done;	/* items finished in the current job */
	atomic_int sleepers;	/* workers blocked on cv */
	atomic_int quit;
	/*
	 * current job: release stores after the claim word is closed, before gen/claim publish it;
	 * acquire loads (a worker with a stale claim word may read them while they change)
	 */
	_Atomic(pool_fn) fn;
	_Atomic(void *) ctx;
	atomic_int items, grain;
};

/* Claims and runs chunks of job generation g until none are left. */
static void pool_work(struct pool *p, unsigned g, int tid)
{
	for (;;) {
		uint64_t c = atomic_load_explicit(&p->claim, memory_order_acquire);
		if ((unsigned)(c >> 32) != g)
			return;
		int b = (int)(uint32_t)c;
		POOL_WINDOW();
		/*
		 * items/grain are g's or a later job's; if a later job's, the caller closed the claim
		 * word before storing them, this acquire makes that visible and the CAS below fails
		 */
		int items = atomic_load_explicit(&p->items, memory_order_acquire);
		int grain = atomic_load_explicit(&p->grain, memory_order_acquire);
		if (b >= items)
			return;
		int e = b + grain < items ? b + grain : items;
		POOL_WINDOW();
		if (!atomic_compare_exchange_weak_explicit(
			&p->claim, &c, ((uint64_t)g << 32) | (uint32_t)e, memory_order_acq_rel,
			memory_order_acquire))
			continue;
		/* job g cannot finish before this chunk does, so fn/ctx are still g's */
		pool_fn fn = atomic_load_explicit(&p->fn, memory_order_acquire);
		void *ctx = atomic_load_explicit(&p->ctx, memory_order_acquire);
		fn(ctx, b, e, tid);
		atomic_fetch_add_explicit(&p->done, e - b, memory_order_release);
	}
}

static void *pool_main(void *a)
{
	struct pool_worker *wa = a;
	struct pool *p = wa->p;
	unsigned seen = 0;
	for (;;) {
		unsigned g;
		int spins = 0;
		while ((g = atomic_load(&p->gen)) == seen && spins < POOL_SPIN) {
			spins++;
			__builtin_ia32_pause();
		}
		if (g == seen) {
			pthread_mutex_lock(&p->mu);
			atomic_fetch_add(&p->sleepers, 1);
			while ((g = atomic_load(&p->gen)) == seen && !atomic_load(&p->quit))
				pthread_cond_wait(&p->cv, &p->mu);
			atomic_fetch_sub(&p->sleepers, 1);
			pthread_mutex_unlock(&p->mu);
		}
		if (atomic_load(&p->quit))
			return NULL;
		seen = g;
		pool_work(p, g, wa->tid);
	}
}

struct pool *pool_create(int nthreads)
{
	if (nthreads <= 0)
		nthreads = (int)sysconf(_SC_NPROCESSORS_ONLN);
	if (nthreads < 1)
		nthreads = 1;
	if (nthreads > POOL_MAX)
		nthreads = POOL_MAX;
	struct pool *p = calloc(1, sizeof *p);
	if (!p)
		return NULL;
	p->n = nthreads;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	for (int i = 1; i < nthreads; i++) {
		p->args[i].p = p;
		p->args[i].tid = i;
		if (pthread_create(&p->th[i], NULL, pool_main, &p->args[i])) {
			p->n = i;
			break;
		}
	}
	return p;
}

void pool_free(struct pool *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->mu);
	atomic_store(&p->quit, 1);
	atomic_fetch_add(&p->gen, 1);
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	for (int i = 1; i < p->n; i++)
		pthread_join(p->th[i], NULL);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
	free(p);
}

int pool_nthreads(const struct pool *p)
{
	return p->n;
}

void pool_for(struct pool *p, int n, int grain, pool_fn fn, void *ctx)
{
	if (n <= 0)
		return;
	if (grain < 1)
		grain = 1;
	if (p->n == 1 || n <= grain) {
		fn(ctx, 0, n, 0);
		return;
	}
	unsigned g = atomic_load(&p->gen) + 1;
	/* close the claim word before the fields change (see the top of this file) */
	atomic_store(&p->claim, ((uint64_t)g << 32) | POOL_CLOSED);
	atomic_store_explicit(&p->fn, fn, memory_order_release);
	atomic_store_explicit(&p->ctx, ctx, memory_order_release);
	atomic_store_explicit(&p->items, n, memory_order_release);
	atomic_store_explicit(&p->grain, grain, memory_order_release);
	POOL_WINDOW();
	atomic_store(&p->done, 0);
	atomic_store_explicit(&p->claim, (uint64_t)g << 32, memory_order_release);
	atomic_store_explicit(&p->gen, g, memory_order_release);
	if (atomic_load(&p->sleepers) > 0) {
		pthread_mutex_lock(&p->mu);
		pthread_cond_broadcast(&p->cv);
		pthread_mutex_unlock(&p->mu);
	}
	pool_work(p, g, 0);
	while (atomic_load_explicit(&p->done, memory_order_acquire) < n)
		__builtin_ia32_pause();
}
