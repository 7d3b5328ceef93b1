/*
 * rv32.h - port/rv32 (QEMU `virt`) helpers shared by its port.c and main.c: UART output, the test
 * finisher, and the loopback CU hang injection used by the boot self-test.
 */
#ifndef RV32_H
#define RV32_H

#include <stdint.h>

#define RV32_MAX_CUS 4u /* loopback CU register blocks */
#define RV32_MAX_DMA 2u /* loopback DMA channels */

void rv32_putc(char ch);
/* Writes s and CR LF to the UART. */
void rv32_puts(const char *s);
/* Ends the QEMU run through the SiFive test finisher: 0 = pass, else fail with that code. */
void rv32_exit(int code) __attribute__((noreturn));

/* Prints the firmware's instructions per command ("fw-cost: op=...", cost.c); 0, or 1 when a
 * measured command failed. Needs QEMU's -icount shift=0 for exact counts. */
int rv32_fw_cost(void);
/* fw_port_spend on this port: cost.c's class accounting while it measures, otherwise nothing. */
void rv32_cost_mark(uint32_t w);

extern uint32_t rv32_cu_starts;	 /* ap_start pulses seen */
extern uint32_t rv32_cu_hang_at; /* that start (1-based) hangs; 0 = none */

#endif
