/*
 * pool.c - thread pool behind pool.h: workers spin briefly on a generation counter, then sleep on
 * a condition variable; items are claimed with an atomic counter in `grain`-sized chunks.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>
#include "pool.h"

#define POOL_MAX 64
#define POOL_SPIN 20000

struct pool {
	int n;                      /* threads including the caller */
	pthread_t th[POOL_MAX];
	pthread_mutex_t mu;
	pthread_cond_t cv;
	atomic_uint gen;            /* bumped per pool_for */
	atomic_int next;            /* next unclaimed item */
	atomic_int active;          /* workers still inside the current job */
	int quit;
	/* current job */
	pool_fn fn;
	void *ctx;
	int items, grain;
	struct pool_worker {
		struct pool *p;
		int tid;
	} args[POOL_MAX];           /* per-thread start arguments */
};

static void pool_work(struct pool *p, int tid)
{
	for (;;) {
		int b = atomic_fetch_add(&p->next, p->grain);
		if (b >= p->items)
			break;
		int e = b + p->grain < p->items ? b + p->grain : p->items;
		p->fn(p->ctx, b, e, tid);
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
			while ((g = atomic_load(&p->gen)) == seen && !p->quit)
				pthread_cond_wait(&p->cv, &p->mu);
			pthread_mutex_unlock(&p->mu);
		}
		if (p->quit)
			return NULL;
		seen = g;
		pool_work(p, wa->tid);
		atomic_fetch_sub(&p->active, 1);
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
	p->quit = 1;
	atomic_fetch_add(&p->gen, 1);
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	for (int i = 1; i < p->n; i++)
		pthread_join(p->th[i], NULL);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
	free(p);
}

int pool_nthreads(const struct pool *p) { return p->n; }

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
	p->fn = fn;
	p->ctx = ctx;
	p->items = n;
	p->grain = grain;
	atomic_store(&p->next, 0);
	atomic_store(&p->active, p->n - 1);
	pthread_mutex_lock(&p->mu);
	atomic_fetch_add(&p->gen, 1);
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	pool_work(p, 0);
	while (atomic_load(&p->active) > 0)
		__builtin_ia32_pause();
}
