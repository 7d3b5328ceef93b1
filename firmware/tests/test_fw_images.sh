#!/usr/bin/env bash
# test_fw_images.sh - prints the size (text/data/bss, size(1)) of each firmware image `make`
# builds and checks that each is an ELF for its CPU: rv32 (RISC-V, 32-bit) and r5 (ARM, hard-float
# EABI5), that its entry symbol is present and that it links no heap (no malloc).
set -u
B=${B:-build}
pass=0; fail=0
ok()  { echo "ok   $*"; pass=$((pass + 1)); }
bad() { echo "FAIL $*"; fail=$((fail + 1)); }
check() { # name image size-tool readelf-tool machine-regex entry-symbol nm-tool
  local name=$1 img=$2 sz=$3 re=$4 mach=$5 entry=$6 nm=$7
  if [ ! -f "$img" ]; then bad "$name image $img missing"; return; fi
  echo "== $name image $img"
  $sz "$img"
  local m; m=$($re -h "$img" | grep -E 'Machine|Class' | tr -s ' ' | tr '\n' ' ')
  if echo "$m" | grep -qE "$mach"; then ok "$name: $m"; else bad "$name: unexpected ELF header: $m"; fi
  if $nm "$img" | grep -qE " T $entry\$"; then ok "$name: entry $entry present"; else bad "$name: no $entry"; fi
  if $nm "$img" | grep -qE " (T|U) (malloc|_malloc_r|sbrk|_sbrk)\$"; then bad "$name: links a heap";
  else ok "$name: no heap"; fi
  local text; text=$($sz "$img" | awk 'NR==2{print $1}')
  if [ "${text:-0}" -gt 1000 ] && [ "$text" -lt 262144 ]; then ok "$name: text $text bytes";
  else bad "$name: text size $text out of range"; fi
}
check rv32 "$B/fw/rv32/fw.elf" riscv64-unknown-elf-size riscv64-unknown-elf-readelf \
  'ELF32 .*RISC-V' _start riscv64-unknown-elf-nm
check r5 "$B/fw/r5/fw.elf" arm-none-eabi-size arm-none-eabi-readelf 'ELF32 .*ARM' _reset \
  arm-none-eabi-nm
if arm-none-eabi-readelf -h "$B/fw/r5/fw.elf" 2>/dev/null | grep -q 'hard-float ABI'; then
  ok "r5: hard-float ABI (VFP registers)"
else
  bad "r5: not built for the hard-float ABI"
fi
echo "$pass passed, $fail failed"
[ $fail = 0 ]
