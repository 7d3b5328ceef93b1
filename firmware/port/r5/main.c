/*
 * main.c - port/r5 firmware entry: runs the built-in self-tests (reported on the UART), then
 * brings the firmware up over the mailbox the host wrote at R5_MAILBOX_BASE (layout below) and
 * runs the kernel forever. Mailbox layout (offsets from R5_MAILBOX_BASE):
 *   0x00000 struct abi_board (host writes at init)
 *   0x01000 struct abi_telemetry (card writes)
 *   0x02000 + q * R5_RING_BYTES: command ring q (FW_CFG_N_QUEUES rings)
 *   then the completion ring (R5_CPL_BYTES)
 */
#include <stdint.h>

#include "abi_ring.h"
#include "firmware/fw.h"
#include "firmware/selftest/fw_selftest.h"

#define R5_MAILBOX_BASE 0xA6000000u
#define R5_RING_BYTES (192u + 64u * sizeof(struct abi_cmd))
#define R5_CPL_BYTES (192u + 128u * sizeof(struct abi_cpl))

void r5_putc(char ch);

static struct fw fw;

static void r5_puts(const char *s)
{
	while (*s)
		r5_putc(*s++);
	r5_putc('\r');
	r5_putc('\n');
}

int main(void)
{
	struct fw_selftest_result r;
	struct fw_mailbox mb = {0};
	uint8_t *base = (uint8_t *)(uintptr_t)R5_MAILBOX_BASE;
	r5_puts("moecard firmware r5");
	fw_selftest_run(r5_puts, &r);
	mb.board = (const struct abi_board *)base;
	mb.telem = (struct abi_telemetry *)(base + 0x1000);
	for (uint32_t q = 0; q < FW_CFG_N_QUEUES; q++) {
		mb.cmdq[q] = base + 0x2000 + q * R5_RING_BYTES;
		mb.cmdq_bytes[q] = R5_RING_BYTES;
	}
	mb.cplq = base + 0x2000 + FW_CFG_N_QUEUES * R5_RING_BYTES;
	mb.cplq_bytes = R5_CPL_BYTES;
	if (r.failed || fw_init(&fw, 0, &mb) != 0) {
		r5_puts("firmware init failed");
		for (;;)
			;
	}
	for (;;)
		fw_step(&fw);
}
