/*
 * port.c - port/rv32 for the QEMU `virt` machine: the NS16550 UART at 0x10000000 for the report,
 * the SiFive test finisher at 0x100000 to exit, the CLINT mtime counter (10 MHz) as the card
 * clock, and "loopback" CUs and a DMA engine for the boot self-test: `virt` has no FPGA fabric,
 * so the CU register blocks are RAM and a CU raises ap_done as soon as ap_start is written (it
 * computes nothing), while DMA transfers are plain copies within RAM (card physical addresses are
 * CPU addresses on this port). Everything the firmware does above the registers - decode,
 * fences, dispatch, completions - is the real code.
 */
#include <stdint.h>
#include <string.h>

#include "firmware/fw_port.h"
#include "firmware/port/rv32/rv32.h"

#define UART_BASE 0x10000000u
#define UART_THR 0u
#define UART_LSR 5u
#define UART_LSR_THRE 0x20u
#define FINISHER_BASE 0x00100000u
#define FINISHER_PASS 0x5555u
#define FINISHER_FAIL 0x3333u
#define CLINT_MTIME 0x0200BFF8u
#define MTIME_NS 100u /* 10 MHz */

#define RV32_REG_WORDS (FW_CU_REG_ARG0 / 4 + FW_CU_ARGS)

/* loopback CU register blocks and DMA channel state */
static uint32_t rv32_cu_regs[RV32_MAX_CUS][RV32_REG_WORDS];
static enum fw_dma_state rv32_dma_state[RV32_MAX_DMA];
uint32_t rv32_cu_starts;  /* ap_start pulses seen, for the self-test */
uint32_t rv32_cu_hang_at; /* if > 0: that start never completes (hang injection) */

void rv32_putc(char ch)
{
	volatile uint8_t *u = (volatile uint8_t *)UART_BASE;
	while (!(u[UART_LSR] & UART_LSR_THRE))
		;
	u[UART_THR] = (uint8_t)ch;
}

void rv32_puts(const char *s)
{
	while (*s)
		rv32_putc(*s++);
	rv32_putc('\r');
	rv32_putc('\n');
}

void rv32_exit(int code)
{
	volatile uint32_t *f = (volatile uint32_t *)FINISHER_BASE;
	*f = code == 0 ? FINISHER_PASS : (((uint32_t)code << 16) | FINISHER_FAIL);
	for (;;)
		;
}

uint64_t fw_port_now(void *port)
{
	(void)port;
	volatile uint32_t *mt = (volatile uint32_t *)CLINT_MTIME;
	uint32_t hi, lo;
	do { /* 64-bit read on a 32-bit bus: retry if the high word moved */
		hi = mt[1];
		lo = mt[0];
	} while (mt[1] != hi);
	return (((uint64_t)hi << 32) | lo) * MTIME_NS;
}

uint32_t fw_port_cu_read(void *port, uint32_t blk, uint32_t off)
{
	(void)port;
	if (blk >= RV32_MAX_CUS || off / 4 >= RV32_REG_WORDS)
		return 0;
	uint32_t v = rv32_cu_regs[blk][off / 4];
	if (off == FW_CU_REG_CTRL)
		rv32_cu_regs[blk][0] &= ~FW_CU_CTRL_DONE; /* clear on read */
	return v;
}

void fw_port_cu_write(void *port, uint32_t blk, uint32_t off, uint32_t val)
{
	(void)port;
	if (blk >= RV32_MAX_CUS || off / 4 >= RV32_REG_WORDS)
		return;
	if (off != FW_CU_REG_CTRL) {
		rv32_cu_regs[blk][off / 4] = val;
		return;
	}
	if (!(val & FW_CU_CTRL_START))
		return;
	rv32_cu_starts++;
	if (rv32_cu_starts == rv32_cu_hang_at) {
		rv32_cu_regs[blk][0] = 0; /* busy forever: not idle, never done */
		return;
	}
	rv32_cu_regs[blk][1] = 0;
	rv32_cu_regs[blk][0] = FW_CU_CTRL_DONE | FW_CU_CTRL_IDLE | FW_CU_CTRL_READY;
}

void fw_port_cu_args(void *port, uint32_t blk, const uint32_t *args)
{
	(void)port;
	if (blk >= RV32_MAX_CUS)
		return;
	for (uint32_t i = 0; i < FW_CU_ARGS; i++)
		rv32_cu_regs[blk][FW_CU_REG_ARG0 / 4 + i] = args[i];
}

void fw_port_cu_reset(void *port, uint32_t blk)
{
	(void)port;
	if (blk < RV32_MAX_CUS) {
		memset(rv32_cu_regs[blk], 0, sizeof rv32_cu_regs[blk]);
		rv32_cu_regs[blk][0] = FW_CU_CTRL_IDLE | FW_CU_CTRL_READY;
	}
}

int fw_port_dma_start(void *port, uint32_t chan, const struct fw_dma_desc *d)
{
	(void)port;
	if (chan >= RV32_MAX_DMA || rv32_dma_state[chan] != FW_DMA_IDLE)
		return -16; /* -EBUSY */
	void *dst = (void *)(uintptr_t)d->dst;
	if (d->flags & 0x2u) /* ABI_DMA_F_PATTERN */
		memset(dst, (int)d->pattern, (size_t)d->bytes);
	else
		memmove(dst, (const void *)(uintptr_t)d->src, (size_t)d->bytes);
	rv32_dma_state[chan] = FW_DMA_DONE;
	return 0;
}

enum fw_dma_state fw_port_dma_poll(void *port, uint32_t chan, uint32_t *detail)
{
	(void)port;
	*detail = 0;
	if (chan >= RV32_MAX_DMA)
		return FW_DMA_ERROR;
	enum fw_dma_state s = rv32_dma_state[chan];
	if (s == FW_DMA_DONE || s == FW_DMA_ERROR)
		rv32_dma_state[chan] = FW_DMA_IDLE;
	return s;
}

void fw_port_wait(void *port, uint64_t deadline)
{
	/* loopback devices complete at once: nothing to wait for but the timer */
	(void)port;
	(void)deadline;
}

void fw_port_notify_host(void *port)
{
	(void)port;
}

void fw_port_spend(void *port, uint32_t w)
{
	(void)port;
	rv32_cost_mark(w); /* the CPU's time passes by itself; cost.c counts it per class */
}

void fw_port_take(void *port, uint32_t op)
{
	(void)op;
	fw_port_spend(port, FW_WORK_TAKE);
}

uint64_t fw_port_ready(void *port)
{
	(void)port;
	return 0; /* the CPU's work has happened when it asks */
}

void fw_port_start_cu(void *port, uint32_t blk, uint64_t ready_at)
{
	(void)blk;
	(void)ready_at;
	fw_port_spend(port, FW_WORK_START); /* this dispatcher writes the arguments itself */
}
