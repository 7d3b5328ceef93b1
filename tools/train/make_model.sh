#!/usr/bin/env bash
# make_model.sh - trains moecard's default model from scratch and exports it to models/tiny-brown
# (about an hour on 2 cores). Needs `make deps` (python3-torch, the corpus, the tokenizer) and
# `make` (build/moecard tokenizes the corpus). WORK=... keeps the work folder elsewhere;
# RESUME=1 continues an interrupted training run from its last checkpoint.
set -euo pipefail
PY=${PYTHON:-/usr/bin/python3}
WORK=${WORK:-build/train}
OUT=${OUT:-models/tiny-brown}
T=tools/train/moetrain.py
[ -s "$WORK/train.npy" ] || "$PY" "$T" prepare --work "$WORK"
"$PY" "$T" train --work "$WORK" --steps 700 --warmup 50 --eval-every 100 --ckpt-every 50 \
  ${RESUME:+--resume}
"$PY" "$T" export --work "$WORK" --out "$OUT"
