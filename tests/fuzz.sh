#!/usr/bin/env bash
# `make fuzz`: builds the library with clang and libFuzzer instrumentation (variant build/fuzz,
# SAN=fuzz), links each libFuzzer target (args) against it, and runs it for FUZZ_SECONDS
# (default 30) on a copy of its seed corpus. Fails on the first crash.
# With FUZZ_RUNS=N (`make test`'s smoke pass): each target runs N inputs from a fixed seed
# (-seed=1, the same inputs every time) instead, every target runs even after a crash, and
# FUZZ_SUMMARY=F gets "passed failed skipped" (targets) for tests/summary.sh.
set -uo pipefail
secs=${FUZZ_SECONDS:-30}
runs=${FUZZ_RUNS:-}
FB=build/fuzz
summary() { [ -n "${FUZZ_SUMMARY:-}" ] && mkdir -p "$(dirname "$FUZZ_SUMMARY")" && echo "$1 $2 $3" >"$FUZZ_SUMMARY"; }
if ! make -s --no-print-directory B=$FB SAN=fuzz CC=clang STRICT=0 $FB/libmoecard.a; then
  echo "FAIL fuzz: the libFuzzer build of the library"
  summary 0 1 0
  exit 1
fi
pass=0; fail=0
for t in "$@"; do
  name=$(basename "$t" .c)
  corpus="$(dirname "$t")/corpus/$name"
  if ! clang -std=c11 -g -O1 -D_GNU_SOURCE -I. -Ihost -Ihls/include -Ifirmware/abi -Idrivers -Iboard \
    -fsanitize=fuzzer,address,undefined -pthread "$t" $FB/libmoecard.a -o "$FB/bin-$name" \
    -ljansson -lfdt -lpcre2-8 -lm -ldl; then
    echo "FAIL fuzz $name: does not link"; fail=$((fail + 1)); continue
  fi
  rm -rf "$FB/corpus-$name"; mkdir -p "$FB/corpus-$name"
  cp "$corpus"/* "$FB/corpus-$name"/ 2>/dev/null || true
  if [ -n "$runs" ]; then
    if "$FB/bin-$name" -runs="$runs" -seed=1 -timeout=60 -rss_limit_mb=4096 \
      "$FB/corpus-$name" >"$FB/log-$name" 2>&1; then
      echo "ok   fuzz $name: $runs inputs (seed 1), no crash"; pass=$((pass + 1))
    else
      echo "FAIL fuzz $name ($runs inputs, seed 1; crash input and log in $FB):"
      grep -E "ERROR|SUMMARY|Test unit written" "$FB/log-$name" | head -n 5
      fail=$((fail + 1))
    fi
  else
    echo "== fuzz $name ($secs s)"
    "$FB/bin-$name" -max_total_time="$secs" -rss_limit_mb=4096 "$FB/corpus-$name" 2>&1 | tail -n 3
    [ "${PIPESTATUS[0]}" = 0 ] || { echo "fuzz: $name crashed"; exit 1; }
  fi
done
if [ -n "$runs" ]; then
  summary $pass $fail 0
  echo "fuzz smoke: $pass passed, $fail failed"
  [ $fail = 0 ]
else
  echo "fuzz: all targets ran without a crash"
fi
