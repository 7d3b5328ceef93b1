/*
 * test_fw_selftest.c - runs the firmware's built-in self-tests (firmware/selftest/: rings with
 * counters wrapping at UINT32_MAX, ring full/empty and hostile counters, kernel priorities,
 * queue full/empty, timers, the command decoder on every opcode) on the host. The same code runs
 * on the emulated rv32 CPU in test_fw_qemu.sh.
 */
#include <stdio.h>

#include "firmware/selftest/fw_selftest.h"

static void out(const char *s)
{
	printf("%s\n", s);
}

int main(void)
{
	struct fw_selftest_result r;
	fw_selftest_run(out, &r);
	return r.failed || !r.passed ? 1 : 0;
}
