#!/usr/bin/env bash
# test_bitstream_hls.sh - the kernel argument table of bitstream/kernels.c (printed by
# `gen args`) against the HLS tops: for every kernel whose source hls/*/<kernel>.c exists, the
# m_axi ports and bundles and the s_axilite scalars of its INTERFACE pragmas must be exactly the
# table's pointer and scalar arguments, and the top's C parameter order must be the table order.
set -u
B=${B:-build}
gen=$B/bitstream/gen
pass=0; fail=0
ok() { pass=$((pass+1)); echo "ok   $*"; }
bad() { fail=$((fail+1)); echo "FAIL $*"; }
[ -x "$gen" ] || { echo "FAIL $gen not built"; echo "0 passed, 1 failed"; exit 1; }
table=$("$gen" args)
for k in $(echo "$table" | awk '{print $1}' | sort -u); do
  src=$(ls hls/*/"$k".c 2>/dev/null | head -n1)
  [ -n "$src" ] || src=$(grep -l "^int $k(" hls/*/*.c 2>/dev/null | head -n1)
  if [ -z "$src" ]; then echo "skip $k: no HLS source yet"; continue; fi
  # the pragmas of this top: from its definition line to the next top-level closing brace
  body=$(awk -v k="$k" '$0 ~ "^int "k"\\(" {on=1} on {print} on && /^}/ {exit}' "$src")
  want=$(echo "$table" | awk -v k="$k" '$1==k {print $2, $3}' | sort)
  got=$(echo "$body" | sed -n 's/.*#pragma HLS INTERFACE m_axi port=\([A-Za-z0-9_]*\) bundle=\([A-Za-z0-9_]*\).*/\1 \2/p'
        echo "$body" | sed -n 's/.*#pragma HLS INTERFACE s_axilite port=\([A-Za-z0-9_]*\).*/\1 -/p' | grep -v '^return -')
  got=$(echo "$got" | sort)
  if [ "$want" = "$got" ]; then ok "$k: $(echo "$want" | wc -l) arguments match $src"
  else bad "$k: table vs $src pragmas:"; diff <(echo "$want") <(echo "$got") | sed 's/^/     /'; fi
  # parameter order of the C definition
  params=$(echo "$body" | tr '\n' ' ' | sed 's/^[^(]*(//; s/).*//' | tr ',' '\n' |
           sed 's/\[.*\]//; s/.*[ *]\([A-Za-z0-9_]*\) *$/\1/' | tr '\n' ' ')
  order=$(echo "$table" | awk -v k="$k" '$1==k {print $2}' | tr '\n' ' ')
  params=$(echo $params); order=$(echo $order)
  if [ "$params" = "$order" ]; then ok "$k: argument order matches the C definition"
  else bad "$k: order table '$order' vs C '$params'"; fi
done
echo "$pass passed, $fail failed"
[ $fail = 0 ]
