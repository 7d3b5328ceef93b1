/*
 * crt0.S - port/rv32 reset entry for the firmware image (rv32imac, bare metal, QEMU `virt` with
 * -bios none: the CPU starts at 0x80000000 in M-mode). Sets gp and sp, zeroes .bss, calls main,
 * then hands main's return value to rv32_exit() (the SiFive test finisher). Single hart (QEMU
 * `virt` default -smp 1).
 */
	.section .text.init, "ax"
	.globl _start
_start:
.option push
.option norelax
	la	gp, __global_pointer$
.option pop
	la	sp, __stack_top
	la	t0, __bss_start
	la	t1, __bss_end
1:	bgeu	t0, t1, 2f
	sw	zero, 0(t0)
	addi	t0, t0, 4
	j	1b
2:	call	main
	call	rv32_exit
1:	j	1b
