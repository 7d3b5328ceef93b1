#!/bin/bash
# test_emu_model.sh - the whole model through the emulated card (issue 4): `moecard run --backend
# emu` against (a) the same command lists on the cpu backend (MOECARD_SCHED_BACKEND=cpu: identical
# GEMMs, host reference vector ops) and (b) the direct cpu engine `--backend cpu --act fp8`, on the
# tiny preset and a partial-block shape (hidden 320, vocab 1000), main and MTP logits; plus the
# --profile trace and the bench figures. Env: MOECARD, B, SAN, PYTHON.
#
# Criteria (see the report in host/engine_emu.c's header): (a) rows before the KV caches carry any
# FP8 rounding flip agree within the vector ops' error (< 2e-6 on the first 3 rows, MTP 2 rows);
# after that, FP8 activation flips propagate through the caches (MODEL.md 10), so only medians
# are bounded. (b) the card FP8-quantizes the absorbed attention products, the cpu engine does not
# (MODEL.md 8), so (b) is a noise bound: median row error < 0.5 and argmax agreement >= 30%.
set -u
MOECARD=${MOECARD:-build/moecard}
B=${B:-build}
PY=${PYTHON:-/usr/bin/python3}
N=32
[ "${SAN:-}" = 1 ] && N=8
T=$(mktemp -d "${TMPDIR:-/tmp}/moecard-emu-model.XXXXXX")
trap 'rm -rf "$T"' EXIT
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok: $*"; }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
export MOECARD_BOARD="$B/board/emu.dtb"

toks=$($PY -c "import random; random.seed(5); print(','.join(str(random.randrange(1000)) for _ in range($N)))")
for shape in tiny partial; do
  d="$T/$shape"
  if [ $shape = tiny ]; then
    "$MOECARD" gen --out "$d" --preset tiny --seed 11 >/dev/null || { bad "gen $shape"; continue; }
  else
    "$MOECARD" gen --out "$d" --preset tiny --seed 12 --set hidden_size=320 --set vocab_size=1000 \
      >/dev/null || { bad "gen $shape"; continue; }
  fi
  prof=""
  [ $shape = tiny ] && prof="--profile $T/trace.json"
  if "$MOECARD" run --model "$d" --tokens "$toks" --backend emu $prof \
       --dump-logits "$T/e.npy" --dump-mtp-logits "$T/em.npy" >/dev/null; then
    ok "$shape: run --backend emu ($N tokens)"
  else
    bad "$shape: run --backend emu"; continue
  fi
  MOECARD_SCHED_BACKEND=cpu "$MOECARD" run --model "$d" --tokens "$toks" --backend emu \
    --dump-logits "$T/s.npy" --dump-mtp-logits "$T/sm.npy" >/dev/null || bad "$shape: lists on cpu"
  "$MOECARD" run --model "$d" --tokens "$toks" --backend cpu --act fp8 \
    --dump-logits "$T/c.npy" --dump-mtp-logits "$T/cm.npy" >/dev/null || bad "$shape: cpu engine"
  out=$($PY - "$T" "$shape" <<'PYEOF'
import sys, numpy as np
T, shape = sys.argv[1], sys.argv[2]
def rel(a, b): return np.linalg.norm(a - b, axis=1) / np.maximum(np.linalg.norm(b, axis=1), 1e-30)
res = []
for tag, clean in (("", 3), ("m", 2)):
    e, s, c = (np.load(f"{T}/{k}{tag}.npy") for k in ("e", "s", "c"))
    name = "mtp" if tag else "main"
    r1, r2 = rel(e, s), rel(e, c)
    first = r1[:clean].max()
    res.append((first < 2e-6, f"{shape} {name}: emu vs same lists on cpu backend: first {clean} rows max {first:.3g} (< 2e-6), median {np.median(r1):.3g}"))
    res.append((np.median(r1) < 0.5, f"{shape} {name}: emu vs cpu backend lists median {np.median(r1):.3g} (< 0.5)"))
    agree = (e.argmax(1) == c.argmax(1)).mean()
    need = 0.3 if not tag else 0.0  # MTP rows: few rows and doubly perturbed inputs, median only
    res.append((np.median(r2) < 0.5 and agree >= need, f"{shape} {name}: emu vs cpu engine --act fp8: median {np.median(r2):.3g} p90 {np.percentile(r2, 90):.3g} (< 0.5), argmax agreement {agree:.2f} (>= {need})"))
    res.append((np.isfinite(e).all(), f"{shape} {name}: emu logits finite"))
for good, msg in res:
    print(("ok " if good else "bad ") + msg)
PYEOF
)
  while IFS= read -r line; do
    case "$line" in
      ok\ *) ok "${line#ok }" ;;
      *) bad "${line#bad }" ;;
    esac
  done <<< "$out"
done

# --profile: Chrome trace events with card timestamps
if $PY -c "
import json, sys
t = json.load(open('$T/trace.json'))['traceEvents']
assert len(t) > 100, len(t)
assert all(e['ph'] == 'X' and e['dur'] >= 0 for e in t)
names = {e['cat'] for e in t}
assert {'GEMM_FP8', 'MLA_ATTN', 'RMSNORM', 'KV_APPEND'} <= names, names
print(len(t), 'events')
"; then ok "profile trace.json"; else bad "profile trace.json"; fi

# bench --json carries the modeled card figures
j=$("$MOECARD" bench --model "$T/tiny" --backend emu --prompt-len 2 --gen 2 --json)
if echo "$j" | $PY -c "
import json, sys
rows = [json.loads(l) for l in sys.stdin if l.strip()]
m = [r for r in rows if 'modeled_card_ms_per_tok' in r][0]
assert m['modeled_card_ms_per_tok'] > 0 and m['cmds_per_tok'] > 10 and 0 < m['submits_per_tok'] <= 2 * 5
assert any('decode_tok_s' in r for r in rows)
print(m)
"; then ok "bench --json modeled figures"; else bad "bench --json: $j"; fi
echo "$pass passed, $fail failed"
[ $fail = 0 ]
