/*
 * harness.h - the check macros of the plain (non-cmocka) host test programs. A test program
 * includes it once (it defines static counters), checks with the macros below, and ends with
 * `return harness_done();`, which prints the "N passed, N failed" line that tests/run.sh counts.
 * A failed check prints one line: "FAIL file:line: <the expression>: <message>", and for the
 * comparing checks both values and by how much they differ, so a log says what was checked and
 * how far off it was without rerunning. The firmware self-test (firmware/selftest/) keeps its own
 * freestanding CHECK: it is built for rv32 and the R5 without stdio. See docs/testing.md.
 */
#ifndef MOECARD_TESTS_HARNESS_H
#define MOECARD_TESTS_HARNESS_H

#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int harness_pass, harness_fail, harness_skip;

/* Prints the start of a failure line (file, line, the checked expression). */
static inline void harness_fail_at(const char *file, int line, const char *expr)
{
	const char *base = strrchr(file, '/');
	harness_fail++;
	printf("FAIL %s:%d: %s: ", base ? base + 1 : file, line, expr);
}

/* CHECK(cond, fmt, ...): cond holds; the message says what it means and the values seen. */
#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		if (cond) {                                                                        \
			harness_pass++;                                                            \
		} else {                                                                           \
			harness_fail_at(__FILE__, __LINE__, #cond);                                \
			printf(__VA_ARGS__);                                                       \
			printf("\n");                                                              \
		}                                                                                  \
	} while (0)

/* CHECK_EQ(got, want, fmt, ...): integers equal; prints both and got - want. */
#define CHECK_EQ(got, want, ...)                                                                   \
	do {                                                                                       \
		int64_t g_ = (int64_t)(got), w_ = (int64_t)(want);                                 \
		if (g_ == w_) {                                                                    \
			harness_pass++;                                                            \
		} else {                                                                           \
			harness_fail_at(__FILE__, __LINE__, #got " == " #want);                    \
			printf(__VA_ARGS__);                                                       \
			printf(" (got %" PRId64 ", want %" PRId64 ", off by %" PRId64 ")\n", g_,   \
			       w_, g_ - w_);                                                       \
		}                                                                                  \
	} while (0)

/* CHECK_NEAR(got, want, tol, fmt, ...): |got - want| <= tol; prints both and the distance. */
#define CHECK_NEAR(got, want, tol, ...)                                                            \
	do {                                                                                       \
		double g_ = (double)(got), w_ = (double)(want), t_ = (double)(tol);                \
		if (fabs(g_ - w_) <= t_) {                                                         \
			harness_pass++;                                                            \
		} else {                                                                           \
			harness_fail_at(__FILE__, __LINE__, "|" #got " - " #want "| <= " #tol);    \
			printf(__VA_ARGS__);                                                       \
			printf(" (got %.9g, want %.9g, off by %.3g, tolerance %.3g)\n", g_, w_,    \
			       fabs(g_ - w_), t_);                                                 \
		}                                                                                  \
	} while (0)

/* CHECK_RC(expr, fmt, ...): a 0-or-negative-errno call returned 0; prints the error. */
#define CHECK_RC(expr, ...)                                                                        \
	do {                                                                                       \
		int r_ = (expr);                                                                   \
		if (r_ == 0) {                                                                     \
			harness_pass++;                                                            \
		} else {                                                                           \
			harness_fail_at(__FILE__, __LINE__, #expr " == 0");                        \
			printf(__VA_ARGS__);                                                       \
			printf(" (returned %d: %s)\n", r_, strerror(r_ < 0 ? -r_ : r_));           \
		}                                                                                  \
	} while (0)

/* SKIP(fmt, ...): a check that cannot run here (no hardware, no tool); counted as skipped. */
#define SKIP(...)                                                                                  \
	do {                                                                                       \
		harness_skip++;                                                                    \
		printf("SKIP: ");                                                                  \
		printf(__VA_ARGS__);                                                               \
		printf("\n");                                                                      \
	} while (0)

/* Makes a fresh folder "$TMPDIR/<name>-XXXXXX" (/tmp without TMPDIR; tests/run.sh gives each
 * test its own TMPDIR) into dir[n]; dir, or NULL when it cannot. */
static inline char *harness_mkdtemp(char *dir, size_t n, const char *name)
{
	const char *t = getenv("TMPDIR");
	int w = snprintf(dir, n, "%s/%s-XXXXXX", t && *t ? t : "/tmp", name);
	return w > 0 && (size_t)w < n ? mkdtemp(dir) : NULL;
}

/* The final counts line; the exit status of the test (1 if any check failed). */
static inline int harness_done(void)
{
	if (harness_skip)
		printf("%d passed, %d failed, %d skipped\n", harness_pass, harness_fail,
		       harness_skip);
	else
		printf("%d passed, %d failed\n", harness_pass, harness_fail);
	return harness_fail ? 1 : 0;
}

#endif
