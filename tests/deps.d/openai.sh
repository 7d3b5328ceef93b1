#!/usr/bin/env bash
# deps.d/openai.sh - fetches OpenAI's official JavaScript client (npm package openai, Apache-2.0,
# pinned version, no dependencies) with `npm pack` and unpacks it as
# build/cache/node_modules/openai, where host/tests/serve_client.mjs imports it: the tests of
# `moecard serve` talk to it with a client no one here wrote. Idempotent.
set -euo pipefail
PKG="openai"
VER="6.30.1"
OUT="build/cache/node_modules/openai"
if [ -s "$OUT/package.json" ] && grep -q "\"version\": \"$VER\"" "$OUT/package.json"; then
  exit 0
fi
. tests/npm_pack.sh
tgz=$(npm_pack_fetch openai "$PKG" "$VER")
npm_pack_unpack openai "$tgz" package.json "$OUT"
