/*
 * test_pool.c - the host engine's thread pool (host/model/pool.c) under back-to-back jobs:
 *   every item of every job runs exactly once, with that job's fn and ctx, and pool_for returns
 *   only after every item has finished. Jobs alternate two task functions and their contexts (so
 *   a worker pairing one job's fn with another's ctx is caught), vary the item count and the
 *   grain, and come faster than the workers (more threads than CPUs, so workers are preempted at
 *   any point of a claim). Each context is checked again just before it is reused, so a worker
 *   that touches a job after pool_for returned is caught too.
 * The pool's source is included with its POOL_WINDOW hook made a sched_yield() in the second pass,
 * so workers and the caller are preempted right inside the claim and publish windows: a pool that
 * lets a late worker claim items with a finished job's claim word fails here every run, not once
 * in many loaded runs of the engine tests. MOECARD_POOL_SECONDS: how long each pass runs at least
 * (0.5 s, and at least 2000 jobs). Checks with tests/harness.h.
 */
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static atomic_int window_yield; /* POOL_WINDOW yields the CPU */
#define POOL_WINDOW()                                                                              \
	do {                                                                                       \
		if (atomic_load_explicit(&window_yield, memory_order_relaxed))                     \
			sched_yield();                                                             \
	} while (0)
#include "model/pool.c" // NOLINT(bugprone-suspicious-include): built with the POOL_WINDOW hook
#include "tests/harness.h"

enum { MAXN = 96, RING = 4, TAG_A = 0x5eed, TAG_B = 0xbeef };

struct job {
	long id; /* the job's sequence number */
	int tag; /* TAG_A for task_a's jobs, TAG_B for task_b's */
	int n;
	atomic_int in_fn; /* calls of this job's fn still running */
	atomic_int runs[MAXN];
	atomic_int bad; /* calls with a wrong fn/ctx pairing or a range outside [0, n) */
};

static atomic_long current; /* id of the job pool_for is running */
static atomic_long stale;   /* calls made for a job other than the current one */

static void task(struct job *j, int tag, int b, int e)
{
	atomic_fetch_add(&j->in_fn, 1);
	if (j->tag != tag || b < 0 || e > j->n || b >= e)
		atomic_fetch_add(&j->bad, 1);
	if (atomic_load(&current) != j->id)
		atomic_fetch_add(&stale, 1);
	for (int i = b; i < e && i < MAXN && i >= 0; i++)
		atomic_fetch_add(&j->runs[i], 1);
	if ((b & 7) == 0)
		sched_yield(); /* preempted with a claim in hand */
	atomic_fetch_sub(&j->in_fn, 1);
}

static void task_a(void *c, int b, int e, int tid)
{
	task(c, TAG_A, b, e);
}

static void task_b(void *c, int b, int e, int tid)
{
	task(c, TAG_B, b, e);
}

/* 0 when job j ran every item once, nothing outside, and nothing of it is still running. */
static int job_ok(struct job *j, long *bad_item)
{
	int errs = atomic_load(&j->bad) + (atomic_load(&j->in_fn) != 0);
	for (int i = 0; i < MAXN; i++)
		if (atomic_load(&j->runs[i]) != (i < j->n)) {
			if (!errs)
				*bad_item = i;
			errs++;
		}
	return errs;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Runs back-to-back jobs on a pool of nthreads for about `seconds` (at least min_jobs). */
static void stress(int nthreads, double seconds, long min_jobs)
{
	static struct job ring[RING];
	struct pool *p = pool_create(nthreads);
	CHECK(p != NULL, "pool of %d threads: created", nthreads);
	if (!p)
		return;
	uint64_t rs = 0x9E3779B97F4A7C15ull * (uint64_t)nthreads;
	long jobs = 0, failed = 0, first_bad = -1, bad_item = -1;
	atomic_store(&stale, 0);
	double t0 = now();
	for (; jobs < min_jobs || now() - t0 < seconds; jobs++) {
		struct job *j = &ring[jobs % RING];
		if (jobs >= RING && job_ok(j, &bad_item)) { /* job jobs-RING, long returned */
			if (first_bad < 0)
				first_bad = jobs - RING;
			failed++;
		}
		rs ^= rs << 13, rs ^= rs >> 7, rs ^= rs << 17;
		int n = 2 + (int)(rs % (MAXN - 1)), grain = 1 + (int)((rs >> 8) % 8);
		j->tag = jobs & 1 ? TAG_B : TAG_A;
		j->id = jobs;
		j->n = n;
		atomic_store(&j->in_fn, 0);
		atomic_store(&j->bad, 0);
		for (int i = 0; i < MAXN; i++)
			atomic_store(&j->runs[i], 0);
		atomic_store(&current, jobs);
		pool_for(p, n, grain, jobs & 1 ? task_b : task_a, j);
		if (job_ok(j, &bad_item)) { /* checked right after pool_for returned */
			if (first_bad < 0)
				first_bad = jobs;
			failed++;
		}
	}
	const char *how = atomic_load(&window_yield) ? ", yielding in the windows" : "";
	CHECK_EQ(
	    failed, 0,
	    "pool of %d threads%s, %ld jobs: jobs with an item not run exactly once, a call with "
	    "another job's fn/ctx, or a call still running after pool_for returned (first job "
	    "%ld, item %ld)",
	    nthreads, how, jobs, first_bad, bad_item);
	CHECK_EQ(atomic_load(&stale), 0,
		 "pool of %d threads%s, %ld jobs: calls made while pool_for ran another job",
		 nthreads, how, jobs);
	printf("pool of %d threads%s: %ld jobs in %.2f s\n", nthreads, how, jobs, now() - t0);
	pool_free(p);
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	const char *s = getenv("MOECARD_POOL_SECONDS");
	double sec = s ? atof(s) : 0.5;
	for (int yield = 0; yield <= 1; yield++) {
		atomic_store(&window_yield, yield);
		for (int nt = 2; nt <= 8; nt *= 2)
			stress(nt, sec, 2000);
	}
	atomic_store(&window_yield, 0);
	/* a pool of 1 runs inline */
	struct pool *p = pool_create(1);
	CHECK(p && pool_nthreads(p) == 1, "pool of 1 thread: created, runs inline");
	if (p) {
		static struct job j = {.id = -1, .tag = TAG_A, .n = 10};
		long bad_item = -1;
		atomic_store(&current, -1);
		pool_for(p, 10, 3, task_a, &j);
		CHECK_EQ(job_ok(&j, &bad_item), 0, "pool of 1 thread: every item once (item %ld)",
			 bad_item);
		pool_free(p);
	}
	return harness_done();
}
