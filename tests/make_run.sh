#!/usr/bin/env bash
# `make run`: the main job on a fresh machine. Generates from the default model, models/tiny-brown
# (a small DeepSeek-V3 trained on the Brown corpus, shipped in the repository; its model card is
# models/tiny-brown/README.md), on the emulated card, and prints the run's figures. Greedy, with a
# repetition penalty of 1.2 (PENALTY=1 turns it off: a 10 M-parameter model's greedy text loops
# within a sentence; the penalty keeps it deterministic, and --spec mtp's output is the same).
# Overrides: MODEL=DIR, PROMPT=TEXT (or TOKENS=1,2,3), N=tokens, BACKEND=cpu|emu|xrt,
# PENALTY=R, RUN_ARGS="more run options".
set -euo pipefail
B=${1:-build}
MODEL=${MODEL:-models/tiny-brown}
BACKEND=${BACKEND:-emu}
if [ ! -f "$MODEL/config.json" ]; then
  echo "run: $MODEL: no config.json (MODEL= names a model folder)" >&2
  exit 1
fi
"$B/moecard" info --model "$MODEL" | head -n 12 >&2 || true
if [ -n "${TOKENS:-}" ]; then
  PROMPT_ARGS=(--tokens "$TOKENS")
  shown="--tokens $TOKENS"
else
  PROMPT_ARGS=(--prompt "${PROMPT:-The jury said that}")
  shown="--prompt '${PROMPT:-The jury said that}'"
fi
PENALTY=${PENALTY:-1.2}
echo "run: moecard run --model $MODEL --backend $BACKEND $shown -n ${N:-48} --repeat-penalty $PENALTY --stats ${RUN_ARGS:-}" >&2
# shellcheck disable=SC2086
exec "$B/moecard" run --model "$MODEL" --backend "$BACKEND" "${PROMPT_ARGS[@]}" -n "${N:-48}" \
  --repeat-penalty "$PENALTY" --stats ${RUN_ARGS:-}
