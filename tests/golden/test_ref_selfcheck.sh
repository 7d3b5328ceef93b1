#!/usr/bin/env bash
# test_ref_selfcheck.sh - self-checks of the numpy reference (tests/golden/ref.py) that need no
# C engine: the E4M3 codec (hand-computed codes, all 256 codes, ties to even, saturation), YaRN
# low/high and softmax_scale of the 671B config, RoPE, the router methods, the FP8 GEMM against its
# element-wise definition, and on a random sharded checkpoint: naive == absorbed MLA, causality.
# Ends with "N passed, N failed" (printed by ref.py).
set -u
here=$(cd "$(dirname "$0")" && pwd)
exec "${PYTHON:-/usr/bin/python3}" "$here/ref.py" --selftest
