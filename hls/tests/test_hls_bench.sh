#!/usr/bin/env bash
# test_hls_bench.sh - runs the modeled bench with --check: decode GEMV >= 90% of the W bank's
# bandwidth and prefill >= 85% of PE peak for every 671B shape (modeled figures).
set -u
if "$B/hls_bench" --check > "$B/hls_bench.out"; then
  tail -n 1 "$B/hls_bench.out"; echo "1 passed, 0 failed"
else
  cat "$B/hls_bench.out"; echo "0 passed, 1 failed"; exit 1
fi
