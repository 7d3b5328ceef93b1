#!/usr/bin/env bash
# tests/llama_ref_deps.sh: install the llama.cpp reference for tools/gguf/llama_ref.mjs and
# tests/llama_side_by_side.sh: the npm package node-llama-cpp with its prebuilt CPU binaries
# (@node-llama-cpp/<platform>: libllama + the ggml CPU variants), into $B/cache/llama-ref.
#
# Idempotent and quiet: does nothing when the pinned version is already there.
# Never builds llama.cpp: --ignore-scripts skips node-llama-cpp's postinstall (which may
# download or compile llama.cpp) and llama_ref.mjs loads it with build: "never".
# --omit=optional skips the CUDA/Vulkan/ARM binary packages (~600 MB); the one CPU binary
# package for this machine is named explicitly.
#
#   B=build tests/llama_ref_deps.sh        (env NODE_LLAMA_CPP_VERSION overrides the pin)
set -euo pipefail

B=${B:-build}
VER=${NODE_LLAMA_CPP_VERSION:-3.22.1}
DIR=$B/cache/llama-ref

command -v node >/dev/null 2>&1 || { echo "llama_ref_deps: node not found" >&2; exit 1; }
command -v npm >/dev/null 2>&1 || { echo "llama_ref_deps: npm not found" >&2; exit 1; }
PLAT=$(node -p 'process.platform + "-" + process.arch')

installed() {  # $1 = package dir; prints its version
    node -e 'try { process.stdout.write(require(process.argv[1] + "/package.json").version) } catch (e) {}' "$1"
}
if [ "$(installed "$DIR/node_modules/node-llama-cpp")" = "$VER" ] &&
   [ "$(installed "$DIR/node_modules/@node-llama-cpp/$PLAT")" = "$VER" ]; then
    exit 0
fi

mkdir -p "$DIR"
log=$DIR/npm-install.log
if ! NODE_LLAMA_CPP_SKIP_DOWNLOAD=true npm install --prefix "$DIR" --ignore-scripts --omit=optional \
        --no-audit --no-fund --loglevel=error \
        "node-llama-cpp@$VER" "@node-llama-cpp/$PLAT@$VER" >"$log" 2>&1; then
    echo "llama_ref_deps: npm install failed (see $log)" >&2
    tail -5 "$log" >&2
    exit 1
fi
if [ ! -d "$DIR/node_modules/@node-llama-cpp/$PLAT/bins" ]; then
    echo "llama_ref_deps: @node-llama-cpp/$PLAT has no prebuilt binaries (see $log)" >&2
    exit 1
fi
