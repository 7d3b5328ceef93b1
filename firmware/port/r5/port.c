/*
 * port.c - port/r5: the fw_port_*() functions for a Versal Cortex-R5F driving real CUs over
 * AXI-lite (compile-only for now: nothing here runs in CI). CU register block b sits at
 * R5_CU_BASE + b * R5_CU_STRIDE with the ap_ctrl_hs layout of fw_port.h; a CU reset pulses bit b
 * of an AXI GPIO; DMA channels are descriptor-register blocks of the platform's card-side DMA
 * (R5_DMA_BASE); the clock is the 64-bit global counter (R5_TIMER_HZ). These addresses are the
 * platform defaults a board's device tree will override once bitstream/ generates the map.
 */
#include <stdint.h>

#include "firmware/fw_port.h"

#define R5_CU_BASE 0xA4000000u
#define R5_CU_STRIDE 0x10000u
#define R5_CU_RESET_GPIO 0xA4F00000u
#define R5_DMA_BASE 0xA5000000u
#define R5_DMA_STRIDE 0x100u
#define R5_TIMER_BASE 0xFF260000u /* LPD system timestamp counter, low word at +0, high at +4 */
#define R5_TIMER_HZ 100000000u
#define R5_UART_BASE 0xFF000000u /* PL011: data at +0, flags at +0x18 (bit 5 TX full) */

/* DMA channel registers (offsets in a channel block) */
#define R5_DMA_SRC_LO 0x00u
#define R5_DMA_SRC_HI 0x04u
#define R5_DMA_DST_LO 0x08u
#define R5_DMA_DST_HI 0x0Cu
#define R5_DMA_LEN_LO 0x10u
#define R5_DMA_LEN_HI 0x14u
#define R5_DMA_CTRL 0x18u   /* [0] start, [1] src is host, [2] pattern fill, [15:8] pattern */
#define R5_DMA_STATUS 0x1Cu /* [1:0] enum fw_dma_state, [31:16] error code; write 1 to ack */

static inline uint32_t r5_rd(uintptr_t a)
{
	return *(volatile uint32_t *)a;
}

static inline void r5_wr(uintptr_t a, uint32_t v)
{
	*(volatile uint32_t *)a = v;
	__asm__ volatile("dsb" ::
			     : "memory"); /* posted AXI write reaches the CU before what follows */
}

void r5_putc(char ch)
{
	while (r5_rd(R5_UART_BASE + 0x18u) & 0x20u)
		;
	r5_wr(R5_UART_BASE, (uint8_t)ch);
}

uint64_t fw_port_now(void *port)
{
	(void)port;
	uint32_t hi, lo;
	do {
		hi = r5_rd(R5_TIMER_BASE + 4u);
		lo = r5_rd(R5_TIMER_BASE);
	} while (r5_rd(R5_TIMER_BASE + 4u) != hi);
	uint64_t ticks = ((uint64_t)hi << 32) | lo;
	return ticks * (1000000000u / R5_TIMER_HZ);
}

uint32_t fw_port_cu_read(void *port, uint32_t blk, uint32_t off)
{
	(void)port;
	return r5_rd(R5_CU_BASE + (uintptr_t)blk * R5_CU_STRIDE + off);
}

void fw_port_cu_write(void *port, uint32_t blk, uint32_t off, uint32_t val)
{
	(void)port;
	r5_wr(R5_CU_BASE + (uintptr_t)blk * R5_CU_STRIDE + off, val);
}

void fw_port_cu_args(void *port, uint32_t blk, const uint32_t *args)
{
	(void)port;
	uintptr_t a = R5_CU_BASE + (uintptr_t)blk * R5_CU_STRIDE + FW_CU_REG_ARG0;
	for (uint32_t i = 0; i < FW_CU_ARGS; i++)
		r5_wr(a + 4 * i, args[i]);
}

void fw_port_cu_reset(void *port, uint32_t blk)
{
	(void)port;
	r5_wr(R5_CU_RESET_GPIO, 1u << blk);
	for (volatile int i = 0; i < 64; i++) /* hold reset for a few kernel clocks */
		;
	r5_wr(R5_CU_RESET_GPIO, 0);
}

int fw_port_dma_start(void *port, uint32_t chan, const struct fw_dma_desc *d)
{
	(void)port;
	uintptr_t b = R5_DMA_BASE + (uintptr_t)chan * R5_DMA_STRIDE;
	if ((r5_rd(b + R5_DMA_STATUS) & 3u) != FW_DMA_IDLE)
		return -16; /* -EBUSY */
	r5_wr(b + R5_DMA_SRC_LO, (uint32_t)d->src);
	r5_wr(b + R5_DMA_SRC_HI, (uint32_t)(d->src >> 32));
	r5_wr(b + R5_DMA_DST_LO, (uint32_t)d->dst);
	r5_wr(b + R5_DMA_DST_HI, (uint32_t)(d->dst >> 32));
	r5_wr(b + R5_DMA_LEN_LO, (uint32_t)d->bytes);
	r5_wr(b + R5_DMA_LEN_HI, (uint32_t)(d->bytes >> 32));
	r5_wr(b + R5_DMA_CTRL, 1u | ((d->flags & 3u) << 1) | ((d->pattern & 0xFFu) << 8));
	return 0;
}

enum fw_dma_state fw_port_dma_poll(void *port, uint32_t chan, uint32_t *detail)
{
	(void)port;
	uintptr_t b = R5_DMA_BASE + (uintptr_t)chan * R5_DMA_STRIDE;
	uint32_t s = r5_rd(b + R5_DMA_STATUS);
	*detail = s >> 16;
	enum fw_dma_state st = (enum fw_dma_state)(s & 3u);
	if (st == FW_DMA_DONE || st == FW_DMA_ERROR)
		r5_wr(b + R5_DMA_STATUS, 1u);
	return st;
}

void fw_port_wait(void *port, uint64_t deadline)
{
	(void)port;
	(void)deadline;
	__asm__ volatile("wfe"); /* the doorbell and CU interrupts raise an event */
}

void fw_port_notify_host(void *port)
{
	(void)port;
	/* the host polls the completion ring; an MSI-X doorbell write goes here */
}

void fw_port_spend(void *port, uint32_t w)
{
	(void)port;
	(void)w; /* real CPU time passes by itself */
}

void fw_port_take(void *port, uint32_t op)
{
	(void)port;
	(void)op; /* real CPU time passes by itself */
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
