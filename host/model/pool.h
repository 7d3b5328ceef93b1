/*
 * pool.h - a fixed thread pool for the host engine's parallel loops. Created once at model init;
 * the decode loop only dispatches (no allocation, no thread creation per token). The calling thread
 * works as worker 0, so a pool of 1 runs everything inline.
 */
#ifndef MOECARD_POOL_H
#define MOECARD_POOL_H

struct pool;

/* Task body: runs items [begin, end) of a parallel loop; tid in [0, nthreads). */
typedef void (*pool_fn)(void *ctx, int begin, int end, int tid);

/* pool_create - starts nthreads-1 workers (nthreads <= 0: number of online CPUs). NULL on ENOMEM. */
struct pool *pool_create(int nthreads);
void pool_free(struct pool *p);
int pool_nthreads(const struct pool *p);

/*
 * pool_for - runs fn over [0, n) in chunks of `grain` items, claimed dynamically by all threads;
 * returns when every item is done. Not reentrant (no pool_for from inside fn).
 */
void pool_for(struct pool *p, int n, int grain, pool_fn fn, void *ctx);

#endif
