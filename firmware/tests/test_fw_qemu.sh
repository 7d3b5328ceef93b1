#!/usr/bin/env bash
# test_fw_qemu.sh - boots the rv32 firmware image ($B/fw/rv32/fw.elf) on QEMU `virt`
# (qemu-system-riscv32 -bios none), reads the self-test report the firmware prints on the UART
# ("selftest: N passed, N failed" from the ring/kernel/decoder self-tests, "rv32-e2e: ..." from
# the end-to-end run of the firmware tasks) and checks the exit status of the test finisher.
set -u
B=${B:-build}
img="$B/fw/rv32/fw.elf"
pass=0; fail=0
ok()  { echo "ok   $*"; pass=$((pass + 1)); }
bad() { echo "FAIL $*"; fail=$((fail + 1)); }
if [ ! -f "$img" ]; then
  bad "image $img missing (run make)"; echo "$pass passed, $fail failed"; exit 1
fi
log=$(mktemp)
timeout 60 qemu-system-riscv32 -M virt -nographic -bios none -kernel "$img" </dev/null >"$log" 2>&1
rc=$?
tr -d '\r' <"$log" | sed 's/^/  uart| /'
[ $rc = 0 ] && ok "qemu exited through the finisher with pass (rc 0)" || bad "qemu rc $rc (124 = timeout)"
for tag in selftest rv32-e2e; do
  line=$(tr -d '\r' <"$log" | grep -E "^$tag: [0-9]+ passed, [0-9]+ failed" | tail -n 1)
  if [ -z "$line" ]; then bad "no '$tag' report on the UART"; continue; fi
  p=$(echo "$line" | sed -E 's/.*: ([0-9]+) passed, ([0-9]+) failed/\1/')
  f=$(echo "$line" | sed -E 's/.*: ([0-9]+) passed, ([0-9]+) failed/\2/')
  if [ "$f" = 0 ] && [ "$p" -gt 0 ]; then ok "$tag on rv32: $p checks passed"; else bad "$tag on rv32: $line"; fi
done
rm -f "$log"
echo "$pass passed, $fail failed"
[ $fail = 0 ]
