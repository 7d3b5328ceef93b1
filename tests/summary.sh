#!/usr/bin/env bash
# Sums the test-summary files ("passed failed skipped") of the given build variants and prints
# the one final line, "N passed, N failed, N skipped" (CI reads "N passed, N failed" at its
# start). A variant without a summary counts as one failure.
tp=0; tf=0; ts=0
for b in "$@"; do
  if [ -f "$b/test-summary" ]; then read -r p f s < "$b/test-summary"; else p=0; f=1; s=0; fi
  tp=$((tp + p)); tf=$((tf + f)); ts=$((ts + ${s:-0}))
done
echo "$tp passed, $tf failed, $ts skipped"
[ "$tf" = 0 ]
