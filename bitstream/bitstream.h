/*
 * bitstream.h - from a parsed board (board.h) to what Vitis and XRT need: the kernel argument
 * lists (the single place they are defined for the bitstream side), the v++ link configuration
 * (connectivity.cfg: nk=, sp=, slr=) and a metadata-only xclbin (axlf container with IP_LAYOUT,
 * MEM_TOPOLOGY, CONNECTIVITY, CLOCK_FREQ_TOPOLOGY and EMBEDDED_METADATA, built from XRT's xclbin.h
 * structs).
 *
 * Data flow: board/<card>.dts -> board_parse -> bitstream_cfg_write -> connectivity.cfg -> v++ -l
 *                                           \-> bitstream_xclbin_build -> <card>.xclbin -> XRT
 * The host xrt control path (host/backend/xrt_dev.c) reads the same argument lists to bind run arguments.
 */
#ifndef MOECARD_BITSTREAM_H
#define MOECARD_BITSTREAM_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "board.h"

#define BITSTREAM_MAX_ARGS 48 /* arguments per kernel */

/* One kernel argument, as Vitis HLS lays it out in the s_axilite control block. */
struct bitstream_arg {
	const char *name;   /* C argument name of the HLS top */
	const char *bundle; /* m_axi bundle of a pointer argument; NULL for a scalar */
	const char *type;   /* C type, for the kernel XML */
	uint32_t size;	    /* bytes in the control block: 8 for pointers, 4 for scalars */
	uint32_t offset;    /* byte offset in the control block (from 0x10, HLS packing) */
};

/* One kernel (HLS top function). */
struct bitstream_kernel {
	const char *name;			      /* top function name, e.g. "fp8_gemm" */
	uint32_t n_args;			      /* used entries of arg[] */
	struct bitstream_arg arg[BITSTREAM_MAX_ARGS]; /* in C argument order (= XRT arg index) */
};

/* bitstream_kernel_find - the argument list of kernel name, or NULL when it is not known. */
const struct bitstream_kernel *bitstream_kernel_find(const char *name);

/* bitstream_kernel_count / bitstream_kernel_at - iterate the known kernels (i < count). */
uint32_t bitstream_kernel_count(void);
const struct bitstream_kernel *bitstream_kernel_at(uint32_t i);

/*
 * bitstream_check - the board's CUs against the kernel lists: every CU's kernel is known, every
 * dts port is an m_axi bundle of that kernel, and every bundle of the kernel is connected.
 * Errors: -ENOENT (unknown kernel or bundle), -EINVAL (bundle not connected); err gets one line.
 */
int bitstream_check(const struct board_desc *b, const char *src, char *err, size_t errlen);

/*
 * bitstream_arg_bank - board bank index argument argi of CU cu is connected to, or -EINVAL
 * for a scalar argument or an unknown kernel/port.
 */
int bitstream_arg_bank(const struct board_desc *b, uint32_t cu, uint32_t argi);

/*
 * bitstream_cfg_write - the v++ --config file for linking the CUs of b: [connectivity] with one
 * nk= per kernel, one sp= per pointer argument and one slr= per CU; [clock] with the kernel clock.
 * Errors: those of bitstream_check, -EIO when writing fails.
 */
int bitstream_cfg_write(const struct board_desc *b, const char *src, FILE *out);

/* bitstream_kernel_first - 1 when CU c is the first CU of its kernel in b (the CUs a per-kernel
 * listing starts from), else 0. */
int bitstream_kernel_first(const struct board_desc *b, uint32_t c);

/*
 * bitstream_kernels_write - what `make xclbin` compiles for b: one line per kernel the tree
 * instantiates, "<kernel> <source.c>[,<source.c>] [-DNAME=V ...]", the build parameters from the
 * tree (moecard,pe, moecard,gemv-rows, moecard,lane-macs, moecard,lane-imacs,
 * moecard,fp8-datapath, moecard,axi-width-bits) as the kernel headers' macros. One .xo serves
 * every CU of a kernel, so its CUs must agree on them.
 * Errors: those of bitstream_check; -EINVAL (err names the CUs and the parameter) when CUs of one
 * kernel disagree; -EIO when writing fails.
 */
int bitstream_kernels_write(const struct board_desc *b, const char *src, FILE *out, char *err,
			    size_t errlen);

/*
 * bitstream_xclbin_build - a metadata-only xclbin for b in a malloc'ed buffer (*out, *len; the
 * caller frees). The UUID is a hash of the section contents, so equal boards give equal files.
 * Errors: those of bitstream_check, -ENOMEM.
 */
int bitstream_xclbin_build(const struct board_desc *b, const char *src, uint8_t **out, size_t *len);

/*
 * bitstream_xclbin_section - find the first section of kind (enum axlf_section_kind) in the
 * xclbin image xb[0..len), checking the header and bounds. data and size get the section.
 * Errors: -EINVAL (not an xclbin, truncated, section out of bounds), -ENOENT (no such section).
 */
int bitstream_xclbin_section(const void *xb, size_t len, uint32_t kind, const void **data,
			     size_t *size);

/*
 * bitstream_xclbin_validate - structural check of an xclbin image: magic "xclbin2", m_length equal
 * to len, section headers and every section inside the image. XRT 2.13 aborts the process on some
 * malformed files, so the host checks them with this first. Errors: -EINVAL.
 */
int bitstream_xclbin_validate(const void *xb, size_t len);

/* bitstream_xclbin_uuid - copy the 16-byte UUID of the xclbin image. Errors: -EINVAL. */
int bitstream_xclbin_uuid(const void *xb, size_t len, uint8_t uuid[16]);

#endif
