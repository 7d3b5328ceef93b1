#!/usr/bin/env bash
# test_fw_qemu.sh - boots the rv32 firmware image ($B/fw/rv32/fw.elf) on QEMU `virt`
# (qemu-system-riscv32 -bios none), reads the self-test report the firmware prints on the UART
# ("selftest: N passed, N failed" from the ring/kernel/decoder self-tests, "rv32-e2e: ..." from
# the end-to-end run of the firmware tasks) and checks the exit status of the test finisher.
#
# The image also counts its instructions per command with the instret CSR ("fw-cost: op=<name>
# instr=<n> decode=<n> take=<n> start=<n> done=<n> sync=<n>", firmware/port/rv32/cost.c: the
# firmware's work classes of fw_port.h, which add up to instr). QEMU counts retired instructions
# exactly only with -icount shift=0 (otherwise instret follows the host's time stamp counter), so
# the image runs in that mode, with sleep=off (else the virtual clock jumps with the host's time
# while the guest idles, and on a busy host a timer interrupt could land inside a measured
# command), twice: the counts must be identical. Then every board tree's
# moecard,fw-cmd-instr <take start done sync> (as `moecard info --board` reads it) must cover the
# measured count of each class: >= the most any op measured, and <= FW_COST_TOL_PCT (25) percent
# above it (a tree may not inflate its firmware time). A firmware change that makes commands
# costlier fails here until the boards are updated.
# Skips (77) when qemu-system-riscv32 is absent.
set -u
B=${B:-build}
MOECARD=${MOECARD:-$B/moecard}
TOL=${FW_COST_TOL_PCT:-25}
img="$B/fw/rv32/fw.elf"
pass=0; fail=0
ok()  { echo "ok   $*"; pass=$((pass + 1)); }
bad() { echo "FAIL $*"; fail=$((fail + 1)); }
if ! command -v qemu-system-riscv32 >/dev/null 2>&1; then
  echo "SKIP: qemu-system-riscv32 not installed"; exit 77
fi
if [ ! -f "$img" ]; then
  bad "image $img missing (run make)"; echo "$pass passed, $fail failed"; exit 1
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/fwqemu.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
for run in 1 2; do
  timeout 60 qemu-system-riscv32 -M virt -nographic -bios none -icount shift=0,sleep=off -kernel "$img" \
    </dev/null 2>&1 | tr -d '\r' >"$tmp/uart$run"
  echo "${PIPESTATUS[0]}" >"$tmp/rc$run"
done
log="$tmp/uart1"
rc=$(cat "$tmp/rc1")
sed 's/^/  uart| /' "$log"
[ "$rc" = 0 ] && ok "qemu exited through the finisher with pass (rc 0)" || bad "qemu rc $rc (124 = timeout)"
for tag in selftest rv32-e2e; do
  line=$(grep -E "^$tag: [0-9]+ passed, [0-9]+ failed" "$log" | tail -n 1)
  if [ -z "$line" ]; then bad "no '$tag' report on the UART"; continue; fi
  p=$(echo "$line" | sed -E 's/.*: ([0-9]+) passed, ([0-9]+) failed/\1/')
  f=$(echo "$line" | sed -E 's/.*: ([0-9]+) passed, ([0-9]+) failed/\2/')
  if [ "$f" = 0 ] && [ "$p" -gt 0 ]; then ok "$tag on rv32: $p checks passed"; else bad "$tag on rv32: $line"; fi
done

# --- instructions per command -------------------------------------------------------------
grep -E '^fw-cost: ' "$log" >"$tmp/cost1"
grep -E '^fw-cost: ' "$tmp/uart2" >"$tmp/cost2"
n=$(grep -cE '^fw-cost: op=[a-z_0-9]+ instr=[0-9]+ decode=[0-9]+ take=[0-9]+ start=[0-9]+ done=[0-9]+ sync=[0-9]+$' "$tmp/cost1")
if [ "$n" -ge 3 ] && [ "$n" = "$(wc -l <"$tmp/cost1")" ]; then
  ok "fw-cost: $n opcodes measured"
else
  bad "fw-cost: $n well-formed lines of $(wc -l <"$tmp/cost1")"
fi
if cmp -s "$tmp/cost1" "$tmp/cost2"; then
  ok "fw-cost: the counts of two runs are identical"
else
  bad "fw-cost: the counts differ between two runs"; diff "$tmp/cost1" "$tmp/cost2"
fi
# per class: the most instructions any measured op spent in it; the classes add up to instr
CLS="take start done sync"
for cls in $CLS; do
  v=$(sed -E "s/.* $cls=([0-9]+).*/\1/" "$tmp/cost1" | sort -n | tail -n 1)
  eval "hi_$cls=\${v:-0}"
done
sums=$(awk '{ for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
  d = f["instr"] - (f["take"] + f["start"] + f["done"] + f["sync"]); if (d < 0) d = -d
  if (d > 4) print f["instr"] " vs " f["take"] "+" f["start"] "+" f["done"] "+" f["sync"] }' "$tmp/cost1")
if [ -z "$sums" ]; then ok "fw-cost: every op's classes add up to its instructions per command"
else bad "fw-cost: classes do not add up: $sums"; fi
if [ "$hi_take" = 0 ] || [ "$hi_start" = 0 ] || [ "$hi_done" = 0 ] || [ "$hi_sync" = 0 ]; then
  bad "fw-cost: a class was never measured (take $hi_take start $hi_start done $hi_done sync $hi_sync)"
else
  echo "  measured (most of any op): take $hi_take, start $hi_start, done $hi_done, sync $hi_sync instructions"
  ntrees=0
  for dts in board/*.dts; do
    card=$(basename "$dts" .dts)
    dtb="$B/board/$card.dtb"
    ntrees=$((ntrees + 1))
    if [ ! -f "$dtb" ]; then bad "board $card: $dtb missing (run make)"; continue; fi
    line=$("$MOECARD" info --board "$dtb" 2>&1 | grep -E '^firmware cost: take [0-9]+, start [0-9]+, done [0-9]+, sync [0-9]+ instructions')
    if [ -z "$line" ]; then bad "board $card: no moecard,fw-cmd-instr"; continue; fi
    for cls in $CLS; do
      v=$(echo "$line" | sed -E "s/.* $cls ([0-9]+)[, ].*/\1/")
      eval "hi=\$hi_$cls"
      top=$((hi * (100 + TOL) / 100))
      if [ "$v" -ge "$hi" ] && [ "$v" -le "$top" ]; then
        ok "board $card: fw-cmd-instr $cls $v within measured $hi..$top"
      else
        bad "board $card: fw-cmd-instr $cls $v outside measured $hi..$top (${TOL}% over the most measured): update moecard,fw-cmd-instr"
      fi
    done
    # moecard,fw-take-op-instr: every opcode the tree names was measured, and its count covers
    # that opcode's measured take (>= it, <= TOL% above it)
    per=$("$MOECARD" info --board "$dtb" 2>&1 | grep -E '^firmware take per op: ' |
      sed -E 's/^firmware take per op: //; s/ instructions.*//')
    if [ -z "$per" ]; then
      bad "board $card: no moecard,fw-take-op-instr"
      continue
    fi
    nper=0; nbad=0
    for kv in $(echo "$per" | sed 's/, /\n/g' | tr ' ' '='); do
      name=${kv%%=*}; v=${kv#*=}
      cname=$(echo "$name" | tr 'A-Z' 'a-z'); [ "$cname" = gemm_fp8 ] && cname=gemm
      m=$(grep -E "^fw-cost: op=$cname " "$tmp/cost1" | sed -E 's/.* take=([0-9]+).*/\1/')
      nper=$((nper + 1))
      if [ -z "$m" ]; then
        bad "board $card: fw-take-op-instr names $name, which the image does not measure"
        nbad=$((nbad + 1)); continue
      fi
      top=$((m * (100 + TOL) / 100))
      if [ "$v" -lt "$m" ] || [ "$v" -gt "$top" ]; then
        bad "board $card: fw-take-op-instr $name $v outside measured $m..$top: update it"
        nbad=$((nbad + 1))
      fi
    done
    [ "$nper" -ge 3 ] && [ "$nbad" = 0 ] && ok "board $card: fw-take-op-instr, $nper opcodes within their measured take" ||
      bad "board $card: fw-take-op-instr: $nper opcodes named, $nbad outside"
  done
  [ "$ntrees" -gt 0 ] || bad "no board/*.dts found (run from the repository root)"
fi
echo "$pass passed, $fail failed"
[ $fail = 0 ]
