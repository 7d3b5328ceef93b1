#!/bin/bash
# test_dma_fills.sh - the expert fills of the emulated card go through the DMA driver: on a tiny
# model with `moecard run --backend emu --expert-slots 25%`, the driver's transfers and bytes
# (drivers/dma.h statistics, engine emul, in `--stats --json`) equal the DMA_FILL commands the
# card completed and their bytes, which are the parts of the expert fills the cache issued (its
# misses times the parts of a slot; its DMA bytes); no transfer failed and every fence completed.
# The text --stats and the --profile trace carry the same figures; an all-resident run moves
# nothing. Env: MOECARD, B, PYTHON. Ends with "N passed, N failed".
set -u
MOECARD=${MOECARD:-build/moecard}
B=${B:-build}
PY=${PYTHON:-/usr/bin/python3}
T=$(mktemp -d "${TMPDIR:-/tmp}/moecard-dma-fills.XXXXXX")
trap 'rm -rf "$T"' EXIT
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok: $*"; }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
export MOECARD_BOARD="$B/board/emu.dtb"
toks=0,17,42,99,5,311,7,1000,3,64,77,12

"$MOECARD" gen --out "$T/tiny" --preset tiny --seed 21 >/dev/null || bad "gen tiny"

# check NAME JSON-FILE PY-EXPR: the expression over the stats dict j is true
cat >"$T/check.py" <<'PYEOF'
import json, sys
j = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
keys = ('dma_xfers', 'card_fills', 'dma_bytes', 'card_fill_bytes', 'expert_miss_dma')
print(1 if eval('(' + sys.argv[2] + ')', {}, {'j': j}) else 0, {k: j.get(k) for k in keys}, end='')
PYEOF
check() {
  local r
  r=$($PY "$T/check.py" "$2" "$3" 2>&1)
  case "$r" in 1*) ok "$1" ;; *) bad "$1: $r" ;; esac
}

run() { # run OUT ARGS...: --stats --json of a run into OUT (stderr)
  local out=$1
  shift
  "$MOECARD" run --model "$T/tiny" --tokens $toks -n 4 --backend emu --stats --json "$@" \
    >/dev/null 2>"$T/err" || { bad "run $*: $(head -1 "$T/err")"; return 1; }
  grep '^{' "$T/err" | tail -1 >"$out"
}

if run "$T/cache.json" --expert-slots 25% --profile "$T/prof.json"; then
  check "the driver carried the fills (engine emul, transfers > 0)" "$T/cache.json" \
    "j['dma_driver'] == 'emul' and j['dma_xfers'] > 0"
  check "driver transfers = card DMA_FILL commands, driver bytes = their bytes" "$T/cache.json" \
    "j['dma_xfers'] == j['card_fills'] and j['dma_bytes'] == j['card_fill_bytes']"
  # a slot is filled in 6 parts (EXPERT_SLOT_PARTS: gate, up, down and their scales)
  check "card fills = expert misses x slot parts (no background or pin fills here)" \
    "$T/cache.json" "j['expert_bg_fills'] == 0 and j['expert_pin_fills'] == 0 and
    j['expert_miss_dma'] > 0 and j['card_fills'] == 6 * j['expert_miss_dma']"
  check "driver bytes = the cache's DMA bytes" "$T/cache.json" \
    "abs(j['dma_bytes'] - j['expert_dma_bytes_per_tok'] * j['tokens']) <= j['tokens']"
  check "no transfer failed, a fence per transfer, one descriptor each" "$T/cache.json" \
    "j['dma_xfers_failed'] == 0 and j['dma_faults'] == 0 and
    j['dma_fences'] == j['dma_xfers'] and j['dma_descs'] == j['dma_xfers']"
  $PY - "$T/prof.json" "$T/cache.json" <<'PYEOF' &&
import json, sys
o = json.load(open(sys.argv[1]))['otherData']
j = json.loads(open(sys.argv[2]).read())
sys.exit(0 if o['dma_driver'] == 'emul' and o['dma_xfers'] == j['dma_xfers'] and
         o['dma_bytes'] == j['dma_bytes'] else 1)
PYEOF
    ok "--profile trace carries the driver's figures" || bad "--profile trace: no driver figures"
fi
if run "$T/pf.json" --expert-slots 25% --expert-prefetch; then
  check "with prefetch and detached fills: driver = card fills" "$T/pf.json" \
    "j['dma_xfers'] == j['card_fills'] > 0 and j['dma_bytes'] == j['card_fill_bytes'] and
    j['dma_xfers_failed'] == 0"
fi
if run "$T/res.json"; then
  check "all resident: the driver moved nothing" "$T/res.json" \
    "j['dma_driver'] == 'emul' and j['dma_xfers'] == 0 and j['card_fills'] == 0"
fi
"$MOECARD" run --model "$T/tiny" --tokens $toks -n 2 --backend emu --expert-slots 25% --stats \
  2>&1 >/dev/null | grep -q "DMA driver     emul: [1-9][0-9]* transfers (0 failed" &&
  ok "text --stats names the driver and its transfers" || bad "text --stats: no DMA driver line"
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
