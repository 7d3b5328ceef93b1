#!/usr/bin/env bash
# `make bench`: speed figures. Host engine on the tiny and mid presets (mid is generated once,
# ~1.5 GB), cpu backend, FP8 activations and f32 activations, 1 and 2 threads; then the modeled
# kernel figures of the HLS kernels and the DMA model when those tools are built.
set -euo pipefail
B=${1:-build}
for preset in tiny mid; do
  M=$B/models/$preset
  if [ ! -f "$M/config.json" ]; then
    echo "bench: generating $preset into $M" >&2
    "$B/moecard" gen --out "$M" --preset $preset --seed 1 >&2
  fi
done
for preset in tiny mid; do
  for thr in 1 2; do
    "$B/moecard" bench --model "$B/models/$preset" --backend cpu --threads $thr \
      --prompt-len ${PROMPT_LEN:-128} --gen ${GEN:-64} --json
  done
done
"$B/moecard" bench --model "$B/models/mid" --backend cpu --act none --threads 2 \
  --prompt-len ${PROMPT_LEN:-128} --gen ${GEN:-64} --json
for tool in hls_bench dma_bench; do
  if [ -x "$B/$tool" ]; then echo "== $tool (modeled)"; "$B/$tool"; fi
done
