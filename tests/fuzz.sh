#!/usr/bin/env bash
# `make fuzz`: builds each libFuzzer target (args) with clang -fsanitize=fuzzer,address,undefined
# against the library sources and runs it for FUZZ_SECONDS (default 30) on a copy of its corpus.
set -euo pipefail
secs=${FUZZ_SECONDS:-30}
mkdir -p build/fuzz
srcs=$(make -s --no-print-directory print-lib-srcs)
for t in "$@"; do
  name=$(basename "$t" .c)
  corpus="$(dirname "$t")/corpus/$name"
  echo "== fuzz $name ($secs s)"
  clang -std=c11 -g -O1 -D_GNU_SOURCE -I. -Ihost -Ihls/include -Ifirmware/abi -Idrivers -Iboard \
    -fsanitize=fuzzer,address,undefined -pthread "$t" $srcs -o "build/fuzz/$name" \
    -ljansson -lfdt -lpcre2-8 -lm
  rm -rf "build/fuzz/corpus-$name"; mkdir -p "build/fuzz/corpus-$name"
  cp "$corpus"/* "build/fuzz/corpus-$name"/ 2>/dev/null || true
  "build/fuzz/$name" -max_total_time="$secs" -rss_limit_mb=4096 "build/fuzz/corpus-$name" 2>&1 | tail -n 3
done
echo "fuzz: all targets ran without a crash"
