#!/usr/bin/env bash
# test_dma_bench.sh - runs build/dma_bench (the expert DMA bench) and checks its figures against
# hand arithmetic: the 671B expert is 44,050,944 bytes; modeled Gen3 x16 (12 GB/s) and Gen4 x16
# (24 GB/s) times are bytes/bw + 6 x 1 us; the emu board's dts gives its own link and latency; a
# missing board file is refused with its name. Env: B (build dir). Ends with "N passed, N failed".
set -u
B=${B:-build}
pass=0; fail=0
check() { if [ "$1" = 0 ]; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $2"; fi; }
# near VALUE WANT TOL: |VALUE - WANT| <= TOL
near() { awk -v v="$1" -v w="$2" -v t="$3" 'BEGIN { d = v - w; if (d < 0) d = -d; exit !(d <= t) }'; }

out=$("$B/dma_bench" --reps 2 --board "$B/board/emu.dtb" 2>&1); rc=$?
echo "$out"
check $rc "dma_bench exit $rc"
bytes=$(echo "$out" | sed -n 's/^expert: .*scales: \([0-9]*\) bytes.*/\1/p')
check $([ "$bytes" = 44050944 ]; echo $?) "expert bytes '$bytes', want 44050944"
g3=$(echo "$out" | sed -n 's/^modeled: PCIe Gen3 x16 .*: \([0-9.]*\) ms per expert/\1/p')
g4=$(echo "$out" | sed -n 's/^modeled: PCIe Gen4 x16 (.*: \([0-9.]*\) ms per expert/\1/p')
# 44050944 / 12e9 s + 6 us = 3.677 ms; / 24e9 + 6 us = 1.841 ms
near "${g3:-0}" 3.677 0.002; check $? "Gen3 modeled '$g3' ms, want 3.677"
near "${g4:-0}" 1.841 0.002; check $? "Gen4 modeled '$g4' ms, want 1.841"
two=$(echo "$out" | sed -n 's/^modeled: PCIe Gen4 x16, 2 experts.*: \([0-9.]*\) ms/\1/p')
near "${two:-0}" 3.677 0.01; check $? "2 experts on a shared Gen4 link '$two' ms, want ~3.677"
brd=$(echo "$out" | sed -n 's/^modeled: board .*: \([0-9.]*\) ms per expert/\1/p')
near "${brd:-0}" 3.677 0.002; check $? "emu board modeled '$brd' ms, want 3.677 (12 GB/s link, 1000 ns)"
echo "$out" | grep -q '^measured: emul engine host memcpy: [0-9.]* GB/s'; check $? "measured line"

err=$("$B/dma_bench" --board "$B/no-such-board.dtb" 2>&1); rc=$?
check $([ $rc != 0 ] && echo "$err" | grep -q 'no-such-board.dtb'; echo $?) "missing board: exit $rc, '$err'"
err=$("$B/dma_bench" --reps x 2>&1); rc=$?
check $([ $rc = 2 ] && echo "$err" | grep -q usage; echo $?) "bad argument: exit $rc, '$err'"
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
