#!/usr/bin/env bash
# man.sh MOECARD > moecard.1 - the man page, from the program's own --help of every command (the
# option tables of host/cli/cli_opts.c and each command's usage), its exit codes and environment.
set -euo pipefail
M=$1
esc() { sed -e 's/\\/\\e/g' -e "s/^\\([.']\\)/\\\\\\&\\1/"; }
ver=$("$M" --version | head -n 1)
cat <<HDR
.TH MOECARD 1 "" "$ver" "User Commands"
.SH NAME
moecard \- run DeepSeek-V3-class Mixture-of-Experts models on an FPGA accelerator card, its
emulation, or the host CPU
.SH SYNOPSIS
.B moecard
.I command
.RI [ options ]
.br
.B moecard --version
.SH DESCRIPTION
moecard loads Hugging Face DeepSeek-V3-family checkpoints (config.json and safetensors, FP8 E4M3
weights with 128x128 block scales) and runs them on the cpu backend, the emulated card or a real
card through XRT. Every figure of the emulated card is modeled and printed as such.
.SH COMMANDS
HDR
"$M" --help | awk '/^commands:/ {f=1; next} f && /^  [a-z]/ {print $1}' | while read -r c; do
  echo ".SS $c"
  echo ".nf"
  "$M" "$c" --help 2>&1 | esc
  echo ".fi"
done
cat <<'TAIL'
.SH EXIT STATUS
0 success; 1 a runtime or input error (the one-line message names the file and the field);
2 a usage error (unknown option, missing value, a value out of range).
.SH ENVIRONMENT
.TP
.B MOECARD_BOARD
the board tree of the card backends when --board is absent
.TP
.B MOECARD_ISA
scalar, avx2 or avx512: force the host kernels' SIMD path
.TP
.B MOECARD_NO_POPULATE
1: leave the checkpoint in the page cache instead of huge pages
.TP
.B MOECARD_TOKENIZER_DIR
where moecard gen takes the DeepSeek-V3 tokenizer it cuts
.TP
.B MOECARD_XCLBIN, MOECARD_XRT_DEVICE, MOECARD_XRT_MODE, MOECARD_XRT_NOOP
the xrt backend: FPGA image, card, scheduling mode, XRT's noop device
.PP
The README lists the rest (design switches of the emulated card, test hooks).
.SH SEE ALSO
docs/cli.md in the moecard sources: every option, output format and statistic.
TAIL
