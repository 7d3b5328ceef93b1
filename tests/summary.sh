#!/usr/bin/env bash
# Sums the test-summary files of the given build variants and prints the one final line.
tp=0; tf=0
for b in "$@"; do
  if [ -f "$b/test-summary" ]; then read -r p f < "$b/test-summary"; else p=0; f=1; fi
  tp=$((tp + p)); tf=$((tf + f))
done
echo "$tp passed, $tf failed"
[ "$tf" = 0 ]
