#!/usr/bin/env bash
# `make run`: the main job on a fresh machine. Creates the embedded default model (the tiny preset)
# in the build folder if it is absent, then generates from it on the default backend.
set -euo pipefail
B=${1:-build}
MODEL=${MODEL:-$B/models/tiny}
if [ ! -f "$MODEL/config.json" ]; then
  echo "run: creating the default model in $MODEL (moecard gen --preset tiny)" >&2
  "$B/moecard" gen --out "$MODEL" --preset tiny --seed 1 >&2
fi
"$B/moecard" info --model "$MODEL" | head -n 12 >&2 || true
PROMPT_ARGS=(--tokens "${TOKENS:-0,17,42,99,5,311,7}")
if [ -f "$MODEL/tokenizer.json" ]; then
  PROMPT_ARGS=(--prompt "${PROMPT:-The capital of France is}")
fi
echo "run: moecard run --model $MODEL ${PROMPT_ARGS[*]} -n ${N:-32}" >&2
exec "$B/moecard" run --model "$MODEL" "${PROMPT_ARGS[@]}" -n "${N:-32}" ${RUN_ARGS:-}
