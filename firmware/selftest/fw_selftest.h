/*
 * fw_selftest.h - the firmware's built-in self-tests: rings (wrap-around of the free-running
 * counters, full/empty, hostile counters), the kernel (priorities, queues full/empty, timers, idle
 * hook) and the command decoder (every opcode, good and malformed). Portable C with no libc I/O:
 * the same code runs on the emulated rv32 CPU under QEMU (report over the UART) and on the host
 * (firmware/tests/test_fw_selftest.c).
 */
#ifndef FW_SELFTEST_H
#define FW_SELFTEST_H

#include <stdint.h>

/* Where the report goes, one line per call (no newline in s). */
typedef void (*fw_selftest_out_fn)(const char *s);

/* Counts of checks. */
struct fw_selftest_result {
	uint32_t passed; /* checks that held */
	uint32_t failed; /* checks that did not (each reported with its line) */
};

/* Runs every self-test, reporting failures and a summary line "selftest: N passed, N failed". */
void fw_selftest_run(fw_selftest_out_fn out, struct fw_selftest_result *res);

/* Formats v in decimal into buf (>= 11 bytes); returns buf. */
char *fw_selftest_utoa(uint32_t v, char *buf);

#endif
