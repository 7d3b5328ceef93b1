/*
 * test_alloc_fail.c - allocation-failure injection across checkpoint open (ckpt_open: config.json,
 * the safetensors index and headers, the tensor table) and engine open (the cpu engine, and the
 * emu card engine with its backend and sim card), each on its own, SQLite style: for n = 1, 2, ...
 * the n-th allocation fails, until a run completes with the failure never injected. Every failing
 * run must return -ENOMEM with a one-line error, or succeed where the code recovers on purpose
 * (card placement tries the next bank), and leave nothing behind (run under ASan, whose leak
 * check at exit covers every run); the first clean run must succeed.
 *
 * The hook: this program is linked with -Wl,--wrap for malloc, calloc, realloc, strdup, strndup,
 * posix_memalign and aligned_alloc (tests/tests.mk), so every allocation the library makes goes
 * through the countdown below (jansson's own allocations inside its parser are not counted: it
 * reports its out-of-memory as a parse error). Set MOECARD_FAIL_ALLOC_AT=n to run only
 * countdown n (to debug one position).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "tests/harness.h"
#include "engine/engine.h"
#include "load/ckpt.h"

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t m);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);
int __real_posix_memalign(void **p, size_t a, size_t n);
void *__real_aligned_alloc(size_t a, size_t n);

static long fail_at;  /* the allocation to fail (1-based), 0 = none */
static long n_allocs; /* allocations since the countdown was armed */
static int fired;     /* the armed failure was injected */

/* Counts one allocation; true when it is the one to fail. */
static int alloc_fails(void)
{
	if (!fail_at)
		return 0;
	if (++n_allocs != fail_at)
		return 0;
	fired = 1;
	return 1;
}

void *__wrap_malloc(size_t n)
{
	return alloc_fails() ? NULL : __real_malloc(n);
}
void *__wrap_calloc(size_t n, size_t m)
{
	return alloc_fails() ? NULL : __real_calloc(n, m);
}
void *__wrap_realloc(void *p, size_t n)
{
	return alloc_fails() ? NULL : __real_realloc(p, n);
}
char *__wrap_strdup(const char *s)
{
	return alloc_fails() ? NULL : __real_strdup(s);
}
char *__wrap_strndup(const char *s, size_t n)
{
	return alloc_fails() ? NULL : __real_strndup(s, n);
}
int __wrap_posix_memalign(void **p, size_t a, size_t n)
{
	return alloc_fails() ? ENOMEM : __real_posix_memalign(p, a, n);
}
void *__wrap_aligned_alloc(size_t a, size_t n)
{
	return alloc_fails() ? NULL : __real_aligned_alloc(a, n);
}

static void arm(long n)
{
	fail_at = n;
	n_allocs = 0;
	fired = 0;
}

static struct ckpt ck0; /* the checkpoint the engine runs open (opened without faults) */

/* One run at the armed countdown: be NULL opens and closes the checkpoint, else opens and frees
 * an engine on backend be over ck0. Returns the open's result; err gets its message. */
static int open_one(const char *dir, const char *be, char *err, size_t errlen)
{
	struct model_opts o = {.act_fp8 = 1, .max_seq = 16, .max_batch = 2, .n_threads = 1};
	struct engine e;
	struct ckpt ck;
	int r;
	if (!be) {
		r = ckpt_open(dir, &ck, err, errlen);
		if (!r)
			ckpt_close(&ck);
		return r;
	}
	r = engine_open(&e, be, &ck0, &o, NULL, err, errlen);
	if (!r)
		engine_free(&e);
	return r;
}

/* Countdown n = 1, 2, ... (or only MOECARD_FAIL_ALLOC_AT) over open_one. */
static void countdown(const char *dir, const char *be)
{
	const char *only = getenv("MOECARD_FAIL_ALLOC_AT"), *what = be ? be : "ckpt_open";
	long n0 = only ? atol(only) : 1, n;
	int bad = 0, clean = 0, recovered = 0;
	char err[512];
	for (n = n0; n < 1000000; n++) {
		err[0] = 0;
		arm(n);
		int r = open_one(dir, be, err, sizeof err);
		int hit = fired;
		arm(0);
		if (!hit) {
			clean = 1;
			CHECK(r == 0, "%s: countdown %ld never fired but the open failed: %d %s",
			      what, n, r, err);
			break;
		}
		if (r == 0) {
			recovered++; /* e.g. a full bank: placement tries the next one */
		} else if (r != -ENOMEM || !err[0] || strchr(err, '\n')) {
			bad++;
			printf("FAIL %s: allocation %ld failed: open returned %d (want -ENOMEM), "
			       "error '%s'\n",
			       what, n, r, err);
		}
		if (only)
			break;
	}
	CHECK(bad == 0, "%s: %d of %ld allocation failures were not a clean -ENOMEM", what, bad,
	      n - n0);
	CHECK(clean || only, "%s: the failure still fired at countdown %ld", what, n);
	printf(
	    "%s: allocations %ld..%ld failed one at a time: %d not a clean -ENOMEM, %d recovered "
	    "from; countdown %ld never fired\n",
	    what, n0, n - 1, bad, recovered, n);
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	char dir[512], err[512];
	if (!harness_mkdtemp(dir, sizeof dir, "moecard-alloc")) {
		CHECK(0, "mkdtemp %s", dir);
		return harness_done();
	}
	int r = testckpt_write(dir, "tiny", 3, NULL, 0, err, sizeof err);
	CHECK(r == 0, "gen tiny: %s", err);
	if (!r) {
		char board[600];
		snprintf(board, sizeof board, "%s/board/emu.dtb",
			 getenv("B") ? getenv("B") : "build");
		setenv("MOECARD_BOARD", board, 1);
		countdown(dir, NULL);
		r = ckpt_open(dir, &ck0, err, sizeof err);
		CHECK(r == 0, "ckpt_open: %s", err);
		if (!r) {
			countdown(dir, "cpu");
			countdown(dir, "emu");
			ckpt_close(&ck0);
		}
	}
	char cmd[600];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd))
		printf("note: could not remove %s\n", dir);
	return harness_done();
}
