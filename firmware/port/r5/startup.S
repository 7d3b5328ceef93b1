/*
 * startup.S - port/r5 reset entry (Cortex-R5F, ARM state): vector table at 0, stacks for SVC and
 * IRQ/abort modes, VFP enabled (CPACR + FPEXC, needed before any hard-float code), .bss zeroed,
 * .data copied from its load address, then main(). Exceptions other than reset spin: the firmware
 * polls and takes no interrupts yet.
 */
	.syntax unified
	.arm
	.section .vectors, "ax"
	.globl _vectors
_vectors:
	b	_reset
	b	_hang	/* undefined instruction */
	b	_hang	/* SVC */
	b	_hang	/* prefetch abort */
	b	_hang	/* data abort */
	b	_hang	/* reserved */
	b	_hang	/* IRQ */
	b	_hang	/* FIQ */

	.text
	.globl _reset
_reset:
	cps	#0x1B			/* undefined mode: own small stack */
	ldr	sp, =__stack_und_top
	cps	#0x17			/* abort mode */
	ldr	sp, =__stack_abt_top
	cps	#0x12			/* IRQ mode */
	ldr	sp, =__stack_irq_top
	cps	#0x13			/* supervisor mode: main runs here */
	ldr	sp, =__stack_top
	mrc	p15, 0, r0, c1, c0, 2	/* CPACR: full access to cp10/cp11 (VFP) */
	orr	r0, r0, #(0xF << 20)
	mcr	p15, 0, r0, c1, c0, 2
	isb
	mov	r0, #0x40000000		/* FPEXC.EN */
	vmsr	fpexc, r0
	ldr	r0, =__bss_start
	ldr	r1, =__bss_end
	mov	r2, #0
1:	cmp	r0, r1
	strlo	r2, [r0], #4
	blo	1b
	ldr	r0, =__data_load
	ldr	r1, =__data_start
	ldr	r3, =__data_end
2:	cmp	r1, r3
	ldrlo	r2, [r0], #4
	strlo	r2, [r1], #4
	blo	2b
	bl	main
_hang:
	b	_hang
