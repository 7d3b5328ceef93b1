#!/usr/bin/env bash
# hil.sh - `make test-hil`: backend xrt on a real card (hardware in the loop). Needs XRT
# (xbutil, XILINX_XRT) and a card programmed as bitstream/README.md "Deploying on a card" says.
#   1. the shared backend op test (host/tests/test_backend_ops) with the xrt side compared
#      numerically against the cpu backend (MOECARD_TEST_XRT=hil);
#   2. the whole model: `moecard run --backend xrt` on the tiny preset and a partial-block shape,
#      main and MTP logits against `--backend emu` (the same command lists on the emulated card:
#      GEMMs bit-identical, vector ops within the kernels' stated error) and against the cpu engine
#      `--act fp8`, with the criteria of host/tests/test_emu_model.sh.
# Env: B (build dir), HIL_BOARD (dtb, default $B/board/u55c.dtb), HIL_XCLBIN (default the
# metadata xclbin's sibling $B/bitstream/<board>/hw/moecard.xclbin), MOECARD_XRT_DEVICE,
# PYTHON. HIL_NOOP=1 runs the same steps on XRT's noop device without comparing numbers (the
# script's own test in `make test`). Ends with "N passed, N failed".
set -u
B=${B:-build}
PY=${PYTHON:-/usr/bin/python3}
MOECARD=${MOECARD:-$B/moecard}
BOARD=${HIL_BOARD:-$B/board/u55c.dtb}
name=$(basename "$BOARD" .dtb)
XCLBIN=${HIL_XCLBIN:-$B/bitstream/$name/hw/moecard.xclbin}
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok: $*"; }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }

if [ "${HIL_NOOP:-}" = 1 ]; then
  export MOECARD_XRT_NOOP=1
  XCLBIN=${HIL_XCLBIN:-$B/bitstream/$name.xclbin}
else
  unset MOECARD_XRT_NOOP XCL_EMULATION_MODE
  if ! command -v xbutil >/dev/null 2>&1; then
    echo "make test-hil: xbutil not found: install XRT and source /opt/xilinx/xrt/setup.sh on a machine with a card"
    exit 1
  fi
  if ! xbutil examine 2>/dev/null | grep -qE '\[[0-9a-fA-F]{4}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-9]\]'; then
    echo "make test-hil: xbutil examine finds no card; see bitstream/README.md, Deploying on a card"
    exit 1
  fi
  [ -f "$XCLBIN" ] || { echo "make test-hil: $XCLBIN missing: build it with make xclbin, or set HIL_XCLBIN"; exit 1; }
fi
export MOECARD_BOARD="$BOARD" MOECARD_XCLBIN="$XCLBIN"
T=$(mktemp -d "${TMPDIR:-/tmp}/moecard-hil.XXXXXX")
trap 'rm -rf "$T"' EXIT

# 1. the shared op test
ops="$B/t/host/tests/test_backend_ops"
if [ -x "$ops" ]; then
  xmode=hil
  [ "${HIL_NOOP:-}" = 1 ] && xmode=noop
  if MOECARD_TEST_XRT=$xmode B="$B" "$ops" >"$T/ops.log" 2>&1 && grep -q ' xrt' "$T/ops.log"; then
    ok "shared op test with xrt ($(grep -c ' xrt' "$T/ops.log") xrt lines, mode $xmode)"
  else
    bad "shared op test with xrt:"; grep -E 'FAIL|xrt' "$T/ops.log" | head -20
  fi
else
  bad "$ops not built (make test-bins)"
fi

# 2. the whole model
N=32
toks=$($PY -c "import random; random.seed(5); print(','.join(str(random.randrange(1000)) for _ in range($N)))")
for shape in tiny partial; do
  d="$T/$shape"
  if [ $shape = tiny ]; then
    "$MOECARD" gen --out "$d" --preset tiny --seed 11 >/dev/null || { bad "gen $shape"; continue; }
  else
    "$MOECARD" gen --out "$d" --preset tiny --seed 12 --set hidden_size=320 --set vocab_size=1000 \
      >/dev/null || { bad "gen $shape"; continue; }
  fi
  if "$MOECARD" run --model "$d" --tokens "$toks" --backend xrt --board "$BOARD" --xclbin "$XCLBIN" \
       --dump-logits "$T/x.npy" --dump-mtp-logits "$T/xm.npy" >/dev/null 2>"$T/xrt.err"; then
    ok "$shape: run --backend xrt ($N tokens)"
  else
    bad "$shape: run --backend xrt: $(grep moecard "$T/xrt.err" | head -3)"; continue
  fi
  if [ "${HIL_NOOP:-}" = 1 ]; then
    grep -q "not meaningful" "$T/xrt.err" && ok "$shape: noop run says its results are not meaningful" \
      || bad "$shape: noop run without the not-meaningful notice"
    continue
  fi
  "$MOECARD" run --model "$d" --tokens "$toks" --backend emu --board "$BOARD" \
    --dump-logits "$T/e.npy" --dump-mtp-logits "$T/em.npy" >/dev/null || bad "$shape: emu"
  "$MOECARD" run --model "$d" --tokens "$toks" --backend cpu --act fp8 \
    --dump-logits "$T/c.npy" --dump-mtp-logits "$T/cm.npy" >/dev/null || bad "$shape: cpu engine"
  out=$($PY - "$T" "$shape" <<'PYEOF'
import sys, numpy as np
T, shape = sys.argv[1], sys.argv[2]
def rel(a, b): return np.linalg.norm(a - b, axis=1) / np.maximum(np.linalg.norm(b, axis=1), 1e-30)
for tag, clean in (("", 3), ("m", 2)):
    x, e, c = (np.load(f"{T}/{k}{tag}.npy") for k in ("x", "e", "c"))
    name = "mtp" if tag else "main"
    r1, r2 = rel(x, e), rel(x, c)
    agree = (x.argmax(1) == c.argmax(1)).mean()
    print(int(r1[:clean].max() < 2e-6), f"{shape} {name}: xrt vs emu first {clean} rows max {r1[:clean].max():.3g} (< 2e-6)")
    print(int(np.median(r1) < 0.5), f"{shape} {name}: xrt vs emu median {np.median(r1):.3g} (< 0.5)")
    print(int(np.median(r2) < 0.5 and agree >= 0.3), f"{shape} {name}: xrt vs cpu engine median {np.median(r2):.3g} (< 0.5), argmax agreement {agree:.2f} (>= 0.3)")
PYEOF
)
  while read -r res msg; do
    [ "$res" = 1 ] && ok "$msg" || bad "$msg"
  done <<<"$out"
done
echo "$pass passed, $fail failed"
[ $fail = 0 ]
