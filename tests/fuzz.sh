#!/usr/bin/env bash
# `make fuzz`: builds the library with clang and libFuzzer instrumentation (variant build/fuzz,
# SAN=fuzz), links each libFuzzer target (args) against it, and runs it for FUZZ_SECONDS
# (default 30) on a copy of its seed corpus. Fails on the first crash.
set -euo pipefail
secs=${FUZZ_SECONDS:-30}
FB=build/fuzz
make -s --no-print-directory B=$FB SAN=fuzz CC=clang STRICT=0 $FB/libmoecard.a
for t in "$@"; do
  name=$(basename "$t" .c)
  corpus="$(dirname "$t")/corpus/$name"
  echo "== fuzz $name ($secs s)"
  clang -std=c11 -g -O1 -D_GNU_SOURCE -I. -Ihost -Ihls/include -Ifirmware/abi -Idrivers -Iboard \
    -fsanitize=fuzzer,address,undefined -pthread "$t" $FB/libmoecard.a -o "$FB/bin-$name" \
    -ljansson -lfdt -lpcre2-8 -lm -ldl
  rm -rf "$FB/corpus-$name"; mkdir -p "$FB/corpus-$name"
  cp "$corpus"/* "$FB/corpus-$name"/ 2>/dev/null || true
  "$FB/bin-$name" -max_total_time="$secs" -rss_limit_mb=4096 "$FB/corpus-$name" 2>&1 | tail -n 3
done
echo "fuzz: all targets ran without a crash"
