#!/bin/bash
# test_emu_model.sh - the whole model through the emulated card (its correctness proof):
# `moecard run --backend emu` against (a) the same command lists on the ref backend
# (MOECARD_SCHED_BACKEND=ref: identical GEMMs, host reference vector ops) and (b) the direct cpu
# engine `--backend cpu --act fp8`, on the tiny preset and a partial-block shape (hidden 320,
# vocab 1000), main and MTP logits over 256 tokens (16 under the sanitizers); plus the --profile
# trace and the bench figures; and the GEMV CU's lowering against the fp8_gemm CUs' (bit-identical
# logits). Env: MOECARD, B, SAN, PYTHON.
#
# Criteria. (a) rows before the KV caches carry any rounding difference agree within the vector
# ops' error (< 2e-6 on the first 3 rows, MTP 2 rows); the list comparison runs on the first 32
# tokens. (b) The card runs every GEMM as docs/numerics.md defines it and the absorbed MLA products
# (W_UK^T q_nope, W_UV lat) unquantized in fp8_gemm's ACT_F32 mode, as the cpu engine does
# (docs/model.md, MLA); the two differ only in f32 summation order (~1e-7). E4M3 rounding is a step
# function, so an activation that lies closer to a rounding boundary than that takes different
# codes on the two, and the difference spreads through the KV caches to FP8-noise size. So (b) is
# tests/golden/compare.py's --act fp8 criterion, with the cpu engine's logits as the reference
# and ref.py's FP8 and routing margins (the same models and token recipe as tests/golden):
#   - FP8-clean rows (no quantized activation at a position <= i within 1e-6 relative of a
#     rounding boundary, every routing margin so far > 1e-3): rel err <= 1e-5 and same argmax;
#   - all rows: median rel err <= 0.3 and argmax agreement >= 40% (golden's FP8-noise bound).
set -u
MOECARD=${MOECARD:-build/moecard}
B=${B:-build}
PY=${PYTHON:-/usr/bin/python3}
here=$(cd "$(dirname "$0")" && pwd)
golden="$here/../../tests/golden"
N=256
[ "${SAN:-}" = 1 ] && N=16
NL=32
[ $NL -gt $N ] && NL=$N
T=$(mktemp -d "${TMPDIR:-/tmp}/moecard-emu-model.XXXXXX")
trap 'rm -rf "$T"' EXIT
cache="$B/emu-model"
mkdir -p "$cache"
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok: $*"; }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
export MOECARD_BOARD="$B/board/emu.dtb"

for shape in tiny partial; do
  d="$T/$shape"
  if [ $shape = tiny ]; then
    seed=1; genargs="--preset tiny --seed 1"
  else
    seed=2; genargs="--preset tiny --seed 2 --set hidden_size=320 --set vocab_size=1000"
  fi
  # shellcheck disable=SC2086
  "$MOECARD" gen --out "$d" $genargs >/dev/null || { bad "gen $shape"; continue; }
  toks=$($PY -c "
import json, sys
import numpy as np
v = json.load(open(sys.argv[1]))['vocab_size']
print(','.join(str(t) for t in np.random.default_rng(int(sys.argv[2])).integers(0, v, int(sys.argv[3]))))
" "$d/config.json" "$seed" "$N") || { bad "$shape: tokens"; continue; }
  ltoks=$(echo "$toks" | cut -d, -f1-$NL)
  if [ $shape = tiny ]; then
    "$MOECARD" run --model "$d" --tokens "$(echo "$toks" | cut -d, -f1-4)" -n 2 --backend emu \
      --profile "$T/trace.json" >/dev/null || bad "$shape: run --backend emu --profile"
  fi
  if MOECARD_ROUTE_CHECK=1 "$MOECARD" run --model "$d" --tokens "$toks" -n 0 --backend emu \
       --dump-logits "$T/e.npy" --dump-mtp-logits "$T/em.npy" --stats >"$T/e.out" 2>&1; then
    ok "$shape: run --backend emu ($N tokens)"
  else
    bad "$shape: run --backend emu: $(tail -n 2 "$T/e.out")"; continue
  fi
  # the router on the card: every routing of the run re-run on the host on the card's logits
  nmoe=$($PY -c "
import json, sys
c = json.load(open(sys.argv[1]))
L, k0, f = c['num_hidden_layers'], c.get('first_k_dense_replace', 0), c.get('moe_layer_freq', 1)
n = sum(1 for l in range(L) if c.get('n_routed_experts') and l >= k0 and l % f == 0)
print(n)" "$d/config.json")
  chk=$(grep "router check" "$T/e.out")
  if echo "$chk" | grep -Eq " ([0-9]+) card routings re-run on the host: 0 differ" &&
     [ "$(echo "$chk" | awk '{print $3}')" -ge $((nmoe * N)) ]; then
    ok "$shape: router on the card identical to the host router on every routing ($chk)"
  else
    bad "$shape: router on the card vs host: '$chk' (want >= $((nmoe * N)) checked, 0 differ)"
  fi
  MOECARD_SCHED_BACKEND=ref "$MOECARD" run --model "$d" --tokens "$ltoks" -n 0 --backend emu \
    --dump-logits "$T/s.npy" --dump-mtp-logits "$T/sm.npy" >/dev/null || bad "$shape: lists on cpu"
  # the card's KV cache formats: each one's logit error against the f32 cache on the same tokens
  for kvf in bf16 fp8 fp8dp; do
    kvargs="--kv-format $kvf"
    [ $kvf = fp8dp ] && kvargs="--kv-format fp8 --attn-datapath fp8"
    # shellcheck disable=SC2086
    if "$MOECARD" run --model "$d" --tokens "$ltoks" -n 0 --backend emu $kvargs \
         --dump-logits "$T/k$kvf.npy" >/dev/null 2>"$T/k.err" &&
       out=$($PY -c "
import sys, numpy as np
k, e = np.load(sys.argv[1]), np.load(sys.argv[2])[:len(np.load(sys.argv[1]))]
r = np.linalg.norm(k - e, axis=1) / np.maximum(np.linalg.norm(e, axis=1), 1e-30)
agree = (k.argmax(1) == e.argmax(1)).mean()
print(f'{sys.argv[3]} cache vs f32 over {len(r)} tokens: logit rel err median {np.median(r):.3g} '
      f'max {r.max():.3g}, argmax agreement {agree:.2f}')
assert np.isfinite(k).all() and agree >= 0.4
" "$T/k$kvf.npy" "$T/e.npy" "$kvf"); then
      ok "$shape: --kv-format $out"
    else
      bad "$shape: --kv-format $kvf: $(tail -n 1 "$T/k.err") $out"
    fi
  done
  # the GEMV CU's grouped, striped commands compute exactly what the fp8_gemm commands did (with
  # the router and lm_head on the host in both: on the card they sum the gate and the head in
  # the GEMV's order, which differs from the host kernels' by f32 rounding)
  MOECARD_CARD_GEMV=0 "$MOECARD" run --model "$d" --tokens "$ltoks" -n 0 --backend emu \
    --dump-logits "$T/g.npy" --dump-mtp-logits "$T/gm.npy" >/dev/null || bad "$shape: fp8_gemm CUs"
  MOECARD_CARD_ROUTE=0 MOECARD_CARD_HEAD=0 "$MOECARD" run --model "$d" --tokens "$ltoks" -n 0 \
    --backend emu --dump-logits "$T/v.npy" --dump-mtp-logits "$T/vm.npy" >/dev/null ||
    bad "$shape: GEMV CU, host router and head"
  if $PY -c "
import sys, numpy as np
T = sys.argv[1]
for tag in ('', 'm'):
    e, g = np.load(f'{T}/v{tag}.npy'), np.load(f'{T}/g{tag}.npy')
    assert g.shape[0] > 0 and np.array_equal(e.view(np.uint32), g.view(np.uint32)), tag
" "$T"; then
    ok "$shape: GEMV CU and fp8_gemm CUs give bit-identical logits, main and MTP ($NL tokens)"
  else
    bad "$shape: GEMV CU vs fp8_gemm CUs logits differ"
  fi
  "$MOECARD" run --model "$d" --tokens "$toks" -n 0 --backend cpu --act fp8 \
    --dump-logits "$T/c.npy" --dump-mtp-logits "$T/cm.npy" >/dev/null || bad "$shape: cpu engine"
  # ref.py's margins (float64 forward), cached by ref.py itself, the model and the tokens
  ref="$cache/ref-$( (cat "$golden/ref.py"; echo "$genargs $toks") | sha1sum | cut -c1-12).npz"
  if [ ! -f "$ref" ]; then
    "$PY" "$golden/ref.py" --model "$d" --tokens "$toks" --act fp8 --out "$T/ref.npz" \
      >"$T/ref.log" 2>&1 && mv "$T/ref.npz" "$ref" || { bad "$shape: ref.py: $(tail -n 2 "$T/ref.log")"; continue; }
  fi
  out=$($PY - "$T" "$shape" "$ref" <<'PYEOF'
import sys, numpy as np
T, shape, ref = sys.argv[1], sys.argv[2], sys.argv[3]
def rel(a, b): return np.linalg.norm(a - b, axis=1) / np.maximum(np.linalg.norm(b, axis=1), 1e-30)
res = []
r = dict(np.load(ref))
for tag, clean in (("", 3), ("m", 2)):
    e, s, c = (np.load(f"{T}/{k}{tag}.npy") for k in ("e", "s", "c"))
    name = "mtp" if tag else "main"
    r1, r2 = rel(e[:len(s)], s), rel(e, c)
    first = r1[:clean].max()
    res.append((first < 2e-6, f"{shape} {name}: emu vs same lists on cpu backend: first {clean} rows max {first:.3g} (< 2e-6), median of {len(s)} {np.median(r1):.3g}"))
    res.append((np.median(r1) < 0.5, f"{shape} {name}: emu vs cpu backend lists median {np.median(r1):.3g} (< 0.5)"))
    res.append((np.isfinite(e).all(), f"{shape} {name}: emu logits finite"))
    div = np.nonzero(r2 > 1e-5)[0]
    n0 = int(div[0]) if div.size else len(r2)
    lead = r2[:n0].max() if n0 else float("nan")
    agree = (e.argmax(1) == c.argmax(1)).mean()
    print(f"info {shape} {name}: emu vs cpu engine --act fp8: {n0} leading rows within 1e-5 "
          f"(max {lead:.3g}); all {len(r2)} rows: median {np.median(r2):.3g} "
          f"p90 {np.percentile(r2, 90):.3g}, argmax agreement {agree:.2f}")
    r["mtp_logits" if tag else "logits"] = c.astype(np.float64)
np.savez(f"{T}/cref.npz", **r)
for good, msg in res:
    print(("ok " if good else "bad ") + msg)
PYEOF
)
  while IFS= read -r line; do
    case "$line" in
      ok\ *) ok "${line#ok }" ;;
      info\ *) echo "$line" ;;
      *) bad "${line#bad }" ;;
    esac
  done <<< "$out"
  if cmp=$("$PY" "$golden/compare.py" --ref "$T/cref.npz" --logits "$T/e.npy" --mtp "$T/em.npy" \
        --act fp8 --median-tol 0.3 --fp8-clean 1e-6 --clean-tol 1e-5 --min-agree 0.4 \
        --name "$shape-emu-vs-cpu" 2>&1); then
    ok "$shape: emu vs cpu engine, compare.py --act fp8 (clean rows <= 1e-5):"
  else
    bad "$shape: emu vs cpu engine, compare.py --act fp8 (clean rows <= 1e-5):"
  fi
  echo "$cmp" | sed 's/^/     | /'
done

# --profile: Chrome trace events with card timestamps
if $PY -c "
import json, sys
t = [e for e in json.load(open('$T/trace.json'))['traceEvents'] if e['ph'] != 'M']
assert len(t) > 100, len(t)
assert all(e['ph'] == 'X' and e['dur'] >= 0 for e in t)
names = {e['cat'] for e in t}
assert {'GEMV', 'MOE_ROUTE', 'MLA_ATTN_LANES', 'RMSNORM', 'KV_APPEND'} <= names, names
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

# the dispatch engine (the shipped trees' moecard,dispatch-cycles) starts and completes commands in
# the firmware's order: the logits are bit-identical without it, and a token takes less card time
for d in engine firmware; do
  "$MOECARD" run --model "$T/tiny" --tokens 5,17,42,7,99,3,11,64 -n 0 --backend emu --set dispatch=$d \
    --dump-logits "$T/dsp_$d.npy" >/dev/null 2>"$T/dsp.err" || bad "dispatch=$d: $(tail -n 1 "$T/dsp.err")"
  "$MOECARD" bench --model "$T/tiny" --backend emu --prompt-len 4 --gen 4 --set dispatch=$d \
    --json >"$T/dsp_$d.json" 2>"$T/dsp.err" || bad "bench dispatch=$d: $(tail -n 1 "$T/dsp.err")"
done
if out=$($PY -c "
import json, sys, numpy as np
T = sys.argv[1]
a, b = np.load(f'{T}/dsp_engine.npy'), np.load(f'{T}/dsp_firmware.npy')
assert a.shape[0] > 0 and np.array_equal(a.view(np.uint32), b.view(np.uint32)), 'logits differ'
ms = {}
for d in ('engine', 'firmware'):
    rows = [json.loads(l) for l in open(f'{T}/dsp_{d}.json') if l.strip()]
    ms[d] = [r for r in rows if 'modeled_card_ms_per_tok' in r][0]['modeled_card_ms_per_tok']
assert 0 < ms['engine'] < ms['firmware'], ms
print(f\"card ms/token engine {ms['engine']} < firmware {ms['firmware']}\")
" "$T" 2>&1); then
  ok "dispatch engine: bit-identical logits, $out"
else
  bad "dispatch engine: $out"
fi
"$MOECARD" run --model "$T/tiny" --tokens 1 -n 0 --backend emu --set dispatch=fast \
  >/dev/null 2>"$T/dsp.err"
rc=$?
if [ $rc != 0 ] && [ "$(wc -l <"$T/dsp.err")" = 1 ] &&
   grep -q "dispatch=fast: engine, preload or firmware" "$T/dsp.err"; then
  ok "--set dispatch=fast: exit $rc, one line"
else
  bad "--set dispatch=fast: rc $rc, $(cat "$T/dsp.err")"
fi
# A tree without a kernel the lowering needs is refused at open, naming the board and the kernel
# (one line, exit 1), not at the first forward with the card's status: the fp8_gemm lowering
# without an mla_attn CU and with the striped attention turned off (MOECARD_CARD_ATTN=0). With
# it on, that lowering runs its attention on mla_attn_lanes (as the U55C and U280 trees, which
# have no mla_attn) and gives the all-CU tree's logits bit for bit; the GEMV lowering on the same
# tree still runs.
if command -v fdtput >/dev/null; then
  cp "$B/board/emu.dtb" "$T/noattn.dtb"
  node=$(fdtget -l "$T/noattn.dtb" /compute-units | grep '^mla_attn_1@')
  fdtput -r "$T/noattn.dtb" "/compute-units/$node"
  MOECARD_CARD_ATTN=0 MOECARD_CARD_GEMV=0 "$MOECARD" run --model "$T/tiny" --tokens 1 -n 1 \
    --backend emu --board "$T/noattn.dtb" >/dev/null 2>"$T/noattn.err"
  rc=$?
  if [ $rc = 1 ] && [ "$(wc -l <"$T/noattn.err")" = 1 ] &&
     grep -q "no CU runs MLA_ATTN (a mla_attn CU)" "$T/noattn.err"; then
    ok "a tree without mla_attn, fp8_gemm lowering, striped attention off: exit 1, $(cat "$T/noattn.err")"
  else
    bad "a tree without mla_attn, striped attention off: rc $rc, $(cat "$T/noattn.err")"
  fi
  ntk=1,17,42,99,5,311,7,1000,3,64,2,8,13,21,34,55,89,144,233,377,610,987,159,4,6,9,12,15,18,24,27,30,33,36,39
  if MOECARD_CARD_GEMV=0 "$MOECARD" run --model "$T/tiny" --tokens "$ntk" -n 4 --backend emu \
       --board "$T/noattn.dtb" --dump-logits "$T/noattn.npy" >/dev/null 2>"$T/noattn.err" &&
     MOECARD_CARD_GEMV=0 "$MOECARD" run --model "$T/tiny" --tokens "$ntk" -n 4 --backend emu \
       --dump-logits "$T/attn.npy" >/dev/null 2>>"$T/noattn.err" &&
     cmp -s "$T/noattn.npy" "$T/attn.npy"; then
    ok "a tree without mla_attn, fp8_gemm lowering: the striped attention, logits bit-identical over 35 prompt + 4 tokens (two 32-token blocks)"
  else
    bad "a tree without mla_attn, fp8_gemm lowering: $(head -2 "$T/noattn.err")"
  fi
  if "$MOECARD" run --model "$T/tiny" --tokens 1 -n 1 --backend emu --board "$T/noattn.dtb" \
    >/dev/null 2>"$T/noattn2.err"; then
    ok "the same tree, GEMV lowering: runs"
  else
    bad "the same tree, GEMV lowering: $(cat "$T/noattn2.err")"
  fi
  # A striped attention CU built without the FP8 datapath (moecard,fp8-datapath = <0>) refuses
  # --attn-datapath fp8 at open, one line naming the board and the CU; the f32 datapath runs.
  cp "$B/board/emu.dtb" "$T/nofp8.dtb"
  ln=$(fdtget -l "$T/nofp8.dtb" /compute-units | grep '^mla_attn_lanes_1@')
  fdtput -t u "$T/nofp8.dtb" "/compute-units/$ln" moecard,fp8-datapath 0
  "$MOECARD" run --model "$T/tiny" --tokens 1 -n 1 --backend emu --board "$T/nofp8.dtb" \
    --kv-format fp8 --attn-datapath fp8 >/dev/null 2>"$T/nofp8.err"
  rc=$?
  if [ $rc = 1 ] && [ "$(wc -l <"$T/nofp8.err")" = 1 ] &&
     grep -q "mla_attn_lanes_1 is built without the FP8 datapath" "$T/nofp8.err"; then
    ok "--attn-datapath fp8 on a tree without the FP8 datapath: exit 1, $(cat "$T/nofp8.err")"
  else
    bad "--attn-datapath fp8 without the datapath: rc $rc, $(cat "$T/nofp8.err")"
  fi
  if "$MOECARD" run --model "$T/tiny" --tokens 1 -n 1 --backend emu --board "$T/nofp8.dtb" \
    --kv-format fp8 >/dev/null 2>"$T/nofp8b.err"; then
    ok "the same tree, the f32 datapath on the FP8 cache: runs"
  else
    bad "the same tree, f32 datapath: $(cat "$T/nofp8b.err")"
  fi
  # The prefill rule: on a tree whose one GEMM CU is a 1 x 8 PE array, with a prompt's matrices
  # kept on the GEMM CUs (MOECARD_PF_ROWS=0), the dry what-if finds the token loop faster, so a
  # 40-token prompt runs token by token (the stats name the rule) and models faster than the
  # batched path MOECARD_CARD_PREFILL=1 forces; left to choose the placement too, the rule puts
  # the matrices on the GEMV CU in blocks of 16 rows and runs the prompt batched, faster than the
  # token loop; the logits are the same bits every way.
  cp "$B/board/emu.dtb" "$T/slow.dtb"
  for n in $(fdtget -l "$T/slow.dtb" /compute-units | grep '^fp8_gemm_[2-9]@'); do
    fdtput -r "$T/slow.dtb" "/compute-units/$n"
  done
  n1=$(fdtget -l "$T/slow.dtb" /compute-units | grep '^fp8_gemm_1@')
  fdtput -t u "$T/slow.dtb" "/compute-units/$n1" moecard,pe 1 8
  toks=$(seq -s, 3 42)
  for pf in auto 1 gemv; do
    v=$pf; [ $pf != 1 ] && v=
    rows=0; [ $pf = gemv ] && rows=
    MOECARD_PF_ROWS=$rows MOECARD_CARD_PREFILL=$v "$MOECARD" bench --model "$T/tiny" --backend emu \
      --board "$T/slow.dtb" --prompt-len 40 --gen 2 --json 2>/dev/null | tail -1 >"$T/slow_$pf.json"
    MOECARD_PF_ROWS=$rows MOECARD_CARD_PREFILL=$v "$MOECARD" run --model "$T/tiny" --tokens "$toks" \
      -n 0 --backend emu --board "$T/slow.dtb" --dump-logits "$T/slow_$pf.npy" >/dev/null 2>&1
  done
  if "$PY" - "$T/slow_auto.json" "$T/slow_1.json" <<'PY'
import json, sys
a, b = (json.load(open(f)) for f in sys.argv[1:3])
ok = (a['prefill_path'] == 'token loop (rule)' and a['prefill_batched_tokens'] == 0 and
      b['prefill_path'] == 'batched' and b['prefill_batched_tokens'] == 40 and
      a['modeled_prefill_tok_s'] > b['modeled_prefill_tok_s'])
print(a['prefill_path'], a['modeled_prefill_tok_s'], b['prefill_path'], b['modeled_prefill_tok_s'])
sys.exit(0 if ok else 1)
PY
  then
    ok "prefill rule on a 1 x 8 GEMM PE: the token loop, modeled faster than the forced batched path"
  else
    bad "prefill rule: $(cat "$T/slow_auto.json" | head -c 300)"
  fi
  if "$PY" - "$T/slow_auto.json" "$T/slow_gemv.json" <<'PY'
import json, sys
a, g = (json.load(open(f)) for f in sys.argv[1:3])
ok = (g['prefill_path'] == 'batched' and g['prefill_batched_tokens'] == 40 and
      g['prefill_gemm_pe_frac'] == 0 and g['prefill_gemv_pe_frac'] > 0 and
      g['modeled_prefill_tok_s'] > a['modeled_prefill_tok_s'])
print(g['prefill_path'], g['modeled_prefill_tok_s'], 'token loop', a['modeled_prefill_tok_s'])
sys.exit(0 if ok else 1)
PY
  then
    ok "prefill rule, placement free: the matrices on the GEMV CU, batched, faster than the token loop"
  else
    bad "prefill rule, placement: $(head -c 300 "$T/slow_gemv.json")"
  fi
  if [ -s "$T/slow_auto.npy" ] && cmp -s "$T/slow_auto.npy" "$T/slow_1.npy" &&
     cmp -s "$T/slow_auto.npy" "$T/slow_gemv.npy"; then
    ok "prefill rule: the same logits bit for bit as the batched paths (GEMM CUs, GEMV CU)"
  else
    bad "prefill rule: logits differ (or missing) between the token loop and the batched paths"
  fi
else
  bad "fdtput (device-tree-compiler) missing"
fi

# The decode's attention in head groups beside W_UV and o_proj's slices (MOECARD_ATTN_GROUPS
# slices of o_proj chained by FP8_GEMV_CONT, MOECARD_ATTN_SPLIT groups a step): the same logits
# bit for bit as one pass and an unsliced o_proj, main and MTP (8 heads of v 64: up to 4 groups).
# rope 64 puts a group's q_b rows on whole 128-row blocks, so q_b is sliced too and the groups'
# q_b, W_UK^T and RoPE run in the pipeline (f32 and FP8 caches); rope 32 keeps them before it.
# And the sliced o_proj and q_b in the batched prefill give the same tokens.
htoks=$(seq -s, 7 7 280)
[ "${SAN:-}" = 1 ] && htoks=$(seq -s, 7 7 175)
for hcase in "64 f32" "64 fp8" "32 f32"; do
  # shellcheck disable=SC2086
  set -- $hcase
  hr=$1 kvf=$2 hg="$T/heads8r$1"
  [ -d "$hg" ] || "$MOECARD" gen --out "$hg" --preset tiny --seed 3 --set num_attention_heads=8 \
    --set num_key_value_heads=8 --set v_head_dim=64 --set qk_nope_head_dim=64 \
    --set qk_rope_head_dim="$hr" >/dev/null || { bad "gen heads8 rope $hr"; continue; }
  extra=""
  [ "$kvf" = fp8 ] && extra="--kv-format fp8 --attn-datapath fp8"
  hbad=""
  for cfg in "1 1" "4 1" "4 4" "4 2" "2 2"; do
    # shellcheck disable=SC2086
    set -- $cfg
    # shellcheck disable=SC2086
    MOECARD_ATTN_GROUPS=$1 MOECARD_ATTN_SPLIT=$2 "$MOECARD" run --model "$hg" --tokens "$htoks" \
      -n 0 --backend emu $extra --stats --dump-logits "$T/h$1$2.npy" \
      --dump-mtp-logits "$T/hm$1$2.npy" >"$T/h$1$2.out" 2>&1 || hbad="$hbad run $cfg"
  done
  # commands a token: one pass 1x, the groups with the front in them (rope 64) more than with
  # it before them (rope 32): 4 groups x 7 against 4 x 3 commands
  c11=$(grep -o 'commands *[0-9.]*' "$T/h11.out" | tr -s ' ' | cut -d' ' -f2)
  c44=$(grep -o 'commands *[0-9.]*' "$T/h44.out" | tr -s ' ' | cut -d' ' -f2)
  if [ -z "$hbad" ] && $PY -c "
import sys, numpy as np
T, c11, c44, hr = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
for tag in ('h', 'hm'):
    r = np.load(f'{T}/{tag}11.npy')
    assert r.shape[0] >= 24, r.shape
    for c in ('41', '44', '42', '22'):
        assert np.array_equal(r.view(np.uint32), np.load(f'{T}/{tag}{c}.npy').view(np.uint32)), (tag, c)
# per layer 4 groups add 4 x 7 - 4 (front in the groups) or 4 x 3 - 3 commands (front before)
per = (c44 - c11) / 4
assert (per > 20) if hr == 64 else (8 < per < 12), (c11, c44, per)
" "$T" "$c11" "$c44" "$hr"; then
    ok "attention in head groups (rope $hr, $kvf cache; $c11 -> $c44 commands a token): logits bit for bit as one pass, main and MTP"
  else
    bad "attention in head groups (rope $hr, $kvf cache):$hbad logits differ or the groups did not run ($c11 -> $c44 commands)"
  fi
  if [ "$kvf" = f32 ] && [ "$hr" = 64 ]; then
    MOECARD_ATTN_GROUPS=1 "$MOECARD" run --model "$hg" --tokens "$htoks" -n 8 --backend emu \
      >"$T/hp1.out" 2>/dev/null
    MOECARD_ATTN_GROUPS=4 "$MOECARD" run --model "$hg" --tokens "$htoks" -n 8 --backend emu \
      >"$T/hp4.out" 2>/dev/null
    if [ -s "$T/hp1.out" ] && cmp -s "$T/hp1.out" "$T/hp4.out"; then
      ok "o_proj and q_b in 4 slices: the batched prefill and decode give the same tokens"
    else
      bad "o_proj and q_b in 4 slices: the tokens differ"
    fi
  fi
done
echo "$pass passed, $fail failed"
[ $fail = 0 ]
