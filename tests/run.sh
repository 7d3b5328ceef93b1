#!/usr/bin/env bash
# Test runner: runs each test program (cmocka or plain) and each test script, reads its counts and
# writes the variant's totals to $B/test-summary. Usage: run.sh BUILD bin... -- script...
# Counts come from cmocka's "[  PASSED  ] N test(s)." / "[  FAILED  ] N test(s)" lines or from a
# plain "N passed, N failed" line; a program with neither counts as one test by its exit code, and
# a non-zero exit always counts as at least one failure.
set -u
B=$1; shift
mkdir -p "$B/logs"
tp=0; tf=0
run_one() {
  local kind=$1 t=$2 name log rc p f
  name=$(echo "$t" | sed "s|^$B/t/||; s|/|_|g")
  log="$B/logs/$name.log"
  if [ "$kind" = bin ]; then
    timeout 1200 "$t" >"$log" 2>&1; rc=$?
  else
    timeout 1200 bash "$t" >"$log" 2>&1; rc=$?
  fi
  p=$(grep -aE '^\[  PASSED  \] [0-9]+ test' "$log" | awk '{s+=$4} END{print s+0}')
  f=$(grep -aE '^\[  FAILED  \] [0-9]+ test' "$log" | awk '{s+=$4} END{print s+0}')
  if [ "$p" = 0 ] && [ "$f" = 0 ]; then
    line=$(grep -aE '^([A-Za-z-]+: )?[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
    if [ -n "$line" ]; then
      p=$(echo "$line" | sed -E 's/^([A-Za-z-]+: )?([0-9]+) passed, ([0-9]+) failed.*/\2/')
      f=$(echo "$line" | sed -E 's/^([A-Za-z-]+: )?([0-9]+) passed, ([0-9]+) failed.*/\3/')
    elif [ $rc = 0 ]; then p=1; else f=1; fi
  fi
  if [ $rc != 0 ] && [ "$f" = 0 ]; then f=1; fi
  tp=$((tp + p)); tf=$((tf + f))
  if [ "$f" = 0 ]; then
    printf '  ok   %-55s %4d passed\n' "$t" "$p"
  else
    printf '  FAIL %-55s %4d passed, %d failed (exit %d), log %s:\n' "$t" "$p" "$f" "$rc" "$log"
    tail -n 25 "$log" | sed 's/^/       | /'
  fi
}
echo "== tests in $B"
mode=bin
for t in "$@"; do
  if [ "$t" = "--" ]; then mode=script; continue; fi
  run_one $mode "$t"
done
echo "$tp $tf" > "$B/test-summary"
echo "$B: $tp passed, $tf failed"
