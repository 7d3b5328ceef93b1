#!/bin/bash
# test_expert_emu.sh - the expert cache's proof on the emulated card (docs/expert-cache.md):
# `moecard run --backend emu --expert-slots 25%` (routed experts in host memory, card slots filled
# by DMA_FILL + fences, misses optionally run on the host with the exact fp8_gemm, look-ahead
# prefetch, PIN re-pinning) gives main and MTP logits BIT-IDENTICAL (cmp of the .npy files) to the
# all-resident emu run, with every online policy, with prefetch and with host execution of misses;
# then the bench figures (hit rate, DMA bytes/token, DMA hidden, host-run experts, modeled tok/s)
# are sane and the event trace holds every decision; `--expert-trace` on the card leaves the logits
# bit-identical and writes the cpu engine's routing trace (same records while the two compute the
# same numbers), which cache-sim replays. Env: MOECARD, B, SAN, PYTHON.
#
# Models: tiny (generated here) for the policy sweep; the mid preset ($B/models/mid, generated
# once and reused) in the release variant for EXPERT_EMU_MID_TOKENS tokens (default 8: mid runs at
# about 2 s/token on the emulator). The tiny proof runs EXPERT_EMU_TOKENS (40) tokens per variant. EXPERT_EMU_MID_TOKENS=256 is the full proof (all policies on
# mid; about an hour on 2 cores).
set -u
MOECARD=${MOECARD:-build/moecard}
B=${B:-build}
PY=${PYTHON:-/usr/bin/python3}
T=$(mktemp -d "${TMPDIR:-/tmp}/moecard-expert-emu.XXXXXX")
trap 'rm -rf "$T"' EXIT
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok: $*"; }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
export MOECARD_BOARD="$B/board/emu.dtb"

# mc ARGS...: one moecard run, its stderr shown on failure. Card time is event-driven, so a run
# does not depend on host load and is never retried.
mc() {
  "$MOECARD" "$@" 2>"$T/err.run" && return 0
  cat "$T/err.run" >&2
  return 1
}
# The expert cache runs on the fp8_gemm CUs (the GEMV CU's striped lowering needs every expert
# resident; its attention on the striped-attention CU), and so does routing on the host for
# --expert-trace: every run here uses those CUs, so each proof compares runs of one lowering.
export MOECARD_CARD_GEMV=0
toks() { $PY -c "import random; random.seed($2); print(','.join(str(random.randrange($3)) for _ in range($1)))"; }

# proof MODEL NTOK LABEL VARIANT...: reference run, then each variant (options separated by '|')
proof() {
  local m=$1 n=$2 label=$3
  shift 3
  local tk
  tk=$(toks "$n" 7 1000)
  if ! mc run --model "$m" --tokens "$tk" --backend emu --dump-logits "$T/ref.npy" \
       --dump-mtp-logits "$T/refm.npy" >/dev/null; then
    bad "$label: all-resident reference run"
    return
  fi
  local v
  for v in "$@"; do
    local opts=${v//|/ }
    rm -f "$T/c.npy" "$T/cm.npy"
    # shellcheck disable=SC2086
    if ! mc run --model "$m" --tokens "$tk" --backend emu $opts \
         --dump-logits "$T/c.npy" --dump-mtp-logits "$T/cm.npy" >/dev/null 2>"$T/err"; then
      bad "$label: run $opts: $(head -1 "$T/err")"
      continue
    fi
    if cmp -s "$T/ref.npy" "$T/c.npy" && cmp -s "$T/refm.npy" "$T/cm.npy"; then
      ok "$label: $opts: main + MTP logits bit-identical to all-resident over $n tokens"
    else
      bad "$label: $opts: logits differ from all-resident: $($PY -c "
import numpy as np
a=np.load('$T/ref.npy'); b=np.load('$T/c.npy')
d=np.abs(a-b).max(axis=1); r=int(np.argmax(d>0))
print('first differing row %d of %d, max |diff| %.3g' % (r, len(a), d.max()))")"
    fi
  done
}

# --- tiny: every online policy, prefetch, host execution ------------------------------------
tiny="$T/tiny"
"$MOECARD" gen --out "$tiny" --preset tiny --seed 21 >/dev/null || bad "gen tiny"
if [ "${SAN:-}" = 1 ]; then # the sanitizer variant: fewer tokens and variants
  proof "$tiny" 12 tiny "--expert-slots|25%|--expert-policy|lfu" "--expert-slots|25%|--expert-host|always" \
    "--expert-slots|25%|--expert-policy|pin|--expert-prefetch|--expert-host|auto|--expert-host-gbps|50" \
    "--expert-slots|25%|--expert-policy|lfu|--expert-prefetch|--expert-host|auto|--expert-host-gbps|50" \
    "--expert-slots|board"
  # the fallback of a backend with one list in flight: every fill in ring 0's lists
  MOECARD_EXPERT_SYNC_FILLS=1 proof "$tiny" 12 "tiny, fills in ring 0's lists" \
    "--expert-slots|25%|--expert-policy|lfu|--expert-prefetch|--expert-host|auto|--expert-host-gbps|50"
else
  TN=${EXPERT_EMU_TOKENS:-40}
  proof "$tiny" "$TN" tiny \
    "--expert-slots|25%|--expert-policy|lru" "--expert-slots|25%|--expert-policy|lfu" \
    "--expert-slots|25%|--expert-policy|pin" "--expert-slots|25%|--expert-prefetch" \
    "--expert-slots|25%|--expert-host|always" \
    "--expert-slots|25%|--expert-policy|pin|--expert-prefetch|--expert-host|auto|--expert-host-gbps|50" \
    "--expert-slots|25%|--expert-policy|lfu|--expert-prefetch|--expert-host|auto|--expert-host-gbps|50" \
    "--expert-slots|4" "--expert-slots|board"
  # the fallback of a backend with one list in flight: every fill in ring 0's lists
  MOECARD_EXPERT_SYNC_FILLS=1 proof "$tiny" "$TN" "tiny, fills in ring 0's lists" \
    "--expert-slots|25%|--expert-prefetch" \
    "--expert-slots|25%|--expert-policy|lfu|--expert-prefetch|--expert-host|auto|--expert-host-gbps|50"
fi

# --- the cache with the BF16 and FP8 latent caches ------------------------------------------
# The fp8_gemm lowering runs its attention on the striped-attention CU, which reads every record
# format: with the expert cache the logits over a KV format equal the all-resident run's on it.
KN=40
[ "${SAN:-}" = 1 ] && KN=12
ktk=$(toks "$KN" 11 1000)
for kf in bf16 fp8; do
  if mc run --model "$tiny" --tokens "$ktk" --backend emu --kv-format $kf \
       --dump-logits "$T/kr.npy" >/dev/null &&
     mc run --model "$tiny" --tokens "$ktk" --backend emu --kv-format $kf --expert-slots 25% \
       --expert-prefetch --dump-logits "$T/kc.npy" >/dev/null &&
     cmp -s "$T/kr.npy" "$T/kc.npy"; then
    ok "tiny: --kv-format $kf --expert-slots 25%: logits bit-identical to all-resident over $KN tokens"
  else
    bad "tiny: --kv-format $kf with the expert cache: differs or failed"
  fi
done

# --- figures: bench --json on tiny ---------------------------------------------------------
bj() { mc bench --model "$tiny" --backend emu --prompt-len 8 --gen 8 --json "$@" 2>"$T/err" |
  tail -1; }
check() { # check LABEL JSON PYTHON-EXPR (j = the stats object)
  if $PY -c "import json,sys; j=json.loads(sys.argv[1]); sys.exit(0 if ($3) else 1)" "$2" 2>/dev/null; then
    ok "$1"
  else
    bad "$1: $2"
  fi
}
j=$(bj --expert-slots 25%)
check "bench 25% lru: misses DMA'd, hit rate in (0,1), DMA bytes = misses x slot payload, hidden in [0,1]" "$j" \
  "j['expert_miss_dma'] > 0 and 0 < j['expert_hit_rate'] < 1 and j['expert_miss_host'] == 0 and
   j['expert_dma_bytes_per_tok'] > 0 and 0 <= j['modeled_expert_dma_hidden'] <= 1 and
   j['modeled_expert_decode_tok_s'] > 0 and
   abs(j['expert_hit_rate'] * j['expert_accesses'] + j['expert_miss_dma'] - j['expert_accesses']) < 1e-6 * j['expert_accesses'] + 1"
jall=$(bj --expert-slots 100%)
check "bench 100%: no eviction, hit rate above the 25% run's" "$jall" \
  "j['expert_evictions'] == 0 and j['expert_hit_rate'] > $($PY -c "import json,sys; print(json.loads(sys.argv[1])['expert_hit_rate'])" "$j")"
jh=$(bj --expert-slots 25% --expert-host always)
check "bench --expert-host always: every miss runs on the host, no DMA" "$jh" \
  "j['expert_miss_host'] > 0 and j['expert_miss_dma'] == 0 and j['expert_dma_bytes_per_tok'] == 0"
jp=$(bj --expert-slots 25% --expert-prefetch)
check "bench --expert-prefetch: prefetches issued, used <= issued, prediction recall in (0,1]" "$jp" \
  "j['expert_prefetch_issued'] > 0 and j['expert_prefetch_used'] <= j['expert_prefetch_issued'] and
   0 < j['expert_prediction_recall'] <= 1"
jd=$(bj --expert-slots 25% --expert-policy lfu --expert-prefetch --expert-host auto --expert-host-gbps 50)
check "bench detached fills (ring 1): issued = prefetches + background fills, none failed, hidden in [0,1]" "$jd" \
  "j['expert_detached'] == 1 and j['expert_detached_fills'] > 0 and j['expert_detached_failed'] == 0 and
   j['expert_detached_fills'] == j['expert_prefetch_issued'] + j['expert_bg_fills'] and
   0 <= j['modeled_expert_dma_hidden'] <= 1"
jds=$(MOECARD_EXPERT_SYNC_FILLS=1 bj --expert-slots 25% --expert-policy lfu --expert-prefetch)
check "bench MOECARD_EXPERT_SYNC_FILLS=1: no detached fill" "$jds" \
  "j['expert_detached'] == 0 and j['expert_detached_fills'] == 0"
jn=$("$MOECARD" bench --model "$tiny" --backend emu --prompt-len 8 --gen 8 --json | tail -1)
check "bench without --expert-slots prints no cache figures" "$jn" "'expert_slots' not in j"

# --- the event trace ------------------------------------------------------------------------
if "$MOECARD" run --model "$tiny" --tokens "$(toks 40 3 1000)" --backend emu -n 0 \
     --dump-logits "$T/x.npy" --expert-slots 25% --expert-policy pin --expert-prefetch --expert-events "$T/ev.jsonl" \
     >/dev/null 2>&1; then
  check "event trace: hit, miss_dma, evict, prefetch, pin decisions; k=4 accesses per (token, MoE layer)" \
    "\"$T/ev.jsonl\"" "(lambda ev, C: {'hit','miss_dma','evict','prefetch','pin'} <= {e['ev'] for e in ev}
      and (lambda n: set(n) == {(p, l) for p in range(40) for l in (1, 2, 3)} and
           all(v % 4 == 0 and v > 0 for v in n.values()))(
        C((e['pos'], e['layer']) for e in ev if e['ev'] in ('hit', 'miss_dma', 'miss_host'))))(
      [json.loads(l) for l in open(j)], __import__('collections').Counter)"
else
  bad "run --expert-events"
fi

# --- bad options ----------------------------------------------------------------------------
for o in "--expert-policy bogus" "--expert-policy belady" "--expert-host maybe"; do
  # shellcheck disable=SC2086
  if "$MOECARD" run --model "$tiny" --tokens 1,2 --backend emu --expert-slots 8 $o >/dev/null \
       2>"$T/err"; then
    bad "run $o accepted"
  elif grep -q -- "${o%% *}" "$T/err"; then
    ok "run $o: $(head -1 "$T/err")"
  else
    bad "run $o: message does not name the option: $(head -1 "$T/err")"
  fi
done
if "$MOECARD" run --model "$tiny" --tokens 1,2 --backend emu --expert-slots 0 >/dev/null 2>&1; then
  bad "--expert-slots 0 accepted"
else
  ok "--expert-slots 0 rejected"
fi

# --- routing trace on the card (--expert-trace) ----------------------------------------------
# The emu engine writes the cpu engine's trace (expert_trace.h) from its host router: tracing
# submits the list at layer starts to read the residual back, which must not change a logit (with
# and without the expert cache, whose routing is the same, so its trace is byte-identical); the
# records are exactly the card's routing (the cache's hit/miss decisions name the same experts);
# and the cpu engine (--act fp8, what the card computes) writes the same records, header and
# predictions as long as the two compute the same numbers. They stop doing so at the first token
# where an FP8 activation lies within f32 summation-order noise of an E4M3 rounding boundary and
# takes different codes on the two (test_emu_model.sh): from there the KV caches differ at FP8
# noise and near-tie routes may flip. Where that token lies depends on the tokens and on the host
# SIMD path's summation order (1 to 16 tokens seen on tiny), so: records before that token (the
# first logits row that differs by more than 1e-4) must be identical, however few; after it the
# count of differing routes is reported and bounded loosely (most still agree: 12% here).
# cache-sim replays the card's trace.
XN=48
[ "${SAN:-}" = 1 ] && XN=12
xtk=$(toks "$XN" 7 1000) # the proof's tokens: 12 FP8-clean ones on tiny here
xrun() { mc run --model "$tiny" --tokens "$xtk" -n 0 "$@" >/dev/null; }
if xrun --backend emu --dump-logits "$T/xa.npy" --dump-mtp-logits "$T/xam.npy" &&
   xrun --backend emu --dump-logits "$T/xb.npy" --dump-mtp-logits "$T/xbm.npy" \
     --expert-trace "$T/emu.xt" &&
   xrun --backend emu --dump-logits "$T/xc.npy" --dump-mtp-logits "$T/xcm.npy" \
     --expert-trace "$T/emuc.xt" --expert-slots 25% --expert-prefetch \
     --expert-events "$T/xev.jsonl" &&
   xrun --backend cpu --act fp8 --dump-logits "$T/xcpu.npy" --expert-trace "$T/cpu.xt"; then
  if cmp -s "$T/xa.npy" "$T/xb.npy" && cmp -s "$T/xam.npy" "$T/xbm.npy"; then
    ok "emu --expert-trace: main + MTP logits bit-identical to the untraced run over $XN tokens"
  else
    bad "emu --expert-trace changes the logits"
  fi
  if cmp -s "$T/xa.npy" "$T/xc.npy" && cmp -s "$T/xam.npy" "$T/xcm.npy" &&
     cmp -s "$T/emu.xt" "$T/emuc.xt"; then
    ok "emu --expert-trace with --expert-slots 25% --expert-prefetch: logits bit-identical," \
      "trace byte-identical"
  else
    bad "emu --expert-trace with the expert cache: logits or trace differ from the all-resident run"
  fi
  $PY - "$T" "$XN" "$tiny/config.json" >"$T/xpy.out" 2>&1 <<'PY'
import json, struct, sys
import numpy as np
T, N, cfg = sys.argv[1], int(sys.argv[2]), json.load(open(sys.argv[3]))
def load(p):
    b = open(p, 'rb').read()
    k = struct.unpack_from('<I', b, 20)[0]
    rb = 8 + 16 * k
    recs = []
    for off in range(64, len(b), rb):
        L, pos = struct.unpack_from('<ii', b, off)
        e, w, p1, p2 = (struct.unpack_from('<%d%s' % (k, t), b, off + 8 + 4 * k * i)
                        for i, t in enumerate('ifii'))
        recs.append((L, pos, e, w, p1, p2))
    return b[:64], k, recs
def check(name, cond, detail=''):
    print(('ok: ' if cond else 'FAIL: ') + name + ('' if cond or not detail else ': ' + detail))
he, k, emu = load(T + '/emu.xt')
hc, _, cpu = load(T + '/cpu.xt')
L0, NL = cfg['first_k_dense_replace'], cfg['num_hidden_layers']
check('emu trace header equals the cpu trace header (shape, byte counts, record size)', he == hc)
want = [(l, p) for p in range(N) for l in range(L0, NL)]
check('emu trace: one record per (MoE layer, token), in the cpu trace\'s order (%d records)'
      % len(emu),
      [r[:2] for r in emu] == want and [r[:2] for r in cpu] == want,
      'got %d emu, %d cpu records' % (len(emu), len(cpu)))
check('emu trace: pred1 from layer 1 on, pred2 from layer 2 on, -1 before (as cpu)',
      all((r[4][0] < 0) == (r[0] < 1) and (r[5][0] < 0) == (r[0] < 2) for r in emu))
acc, mtp = {}, 0  # (the cache and the engine both log each access: compare sets)
for ev in map(json.loads, open(T + '/xev.jsonl')):
    if ev['ev'] in ('hit', 'miss_dma', 'miss_host'):
        if ev['layer'] == NL:  # the MTP layer (--dump-mtp-logits): not traced, as on cpu
            mtp += 1
            continue
        acc.setdefault((ev['layer'], ev['pos']), []).append(ev['expert'])
check('emu trace experts = the expert cache\'s accesses for every record; MTP accesses (%d) '
      'not traced' % mtp, mtp > 0 and len(acc) == len(emu) and
      all(set(acc.get(r[:2], [])) == set(r[2]) for r in emu))
a, c = np.load(T + '/xa.npy'), np.load(T + '/xcpu.npy')
d = np.abs(a - c).max(axis=1)
clean = int(np.argmax(d > 1e-4)) if (d > 1e-4).any() else N
def same(x, y):  # experts, pred1, pred2 equal; weights within f32 noise
    return x[2:3] + x[4:] == y[2:3] + y[4:] and max(abs(u - v) for u, v in zip(x[3], y[3])) <= 1e-5
pre = [(x, y) for x, y in zip(emu, cpu) if x[1] < clean]
post = [(x, y) for x, y in zip(emu, cpu) if x[1] >= clean]
bad_pre = [x[:2] for x, y in pre if not same(x, y)]
check('emu vs cpu --act fp8: %d records before the first FP8 divergence (token %d) identical '
      '(experts, weights, pred1, pred2)' % (len(pre), clean),
      not bad_pre and clean >= 1, 'differ at %s' % bad_pre[:5])
npost = sum(set(x[2]) != set(y[2]) for x, y in post)
check('emu vs cpu after the divergence: %d of %d records route differently (at most a third)'
      % (npost, len(post)), npost * 3 <= len(post))
PY
  [ $? = 0 ] || bad "trace python checks crashed: $(tail -1 "$T/xpy.out")"
  cat "$T/xpy.out"
  pass=$((pass + $(grep -c '^ok: ' "$T/xpy.out")))
  fail=$((fail + $(grep -c '^FAIL: ' "$T/xpy.out")))
  if "$MOECARD" cache-sim --trace "$T/emu.xt" --slots 25% --json --no-671b --host-gbps 5 \
       >"$T/xsim.jsonl" 2>"$T/err" &&
     $PY -c "import json,sys; r=[json.loads(l) for l in open(sys.argv[1])]
sys.exit(0 if any(x.get('policy') == 'lru' for x in r) else 1)" "$T/xsim.jsonl"; then
    ok "cache-sim --trace replays the emu trace"
  else
    bad "cache-sim --trace emu.xt: $(head -1 "$T/err")"
  fi
else
  bad "run --expert-trace (emu or cpu)"
fi
for f in /nonexistent-moecard-dir/t.xt /dev/full; do
  [ -w /dev/full ] || [ "$f" != /dev/full ] || continue
  "$MOECARD" run --model "$tiny" --tokens 1,2,3 -n 0 --backend emu --dump-logits "$T/x.npy" \
    --expert-trace "$f" >/dev/null 2>"$T/err"
  rc=$?
  if [ $rc != 0 ] && [ "$(wc -l <"$T/err")" = 1 ] && grep -q -- "--expert-trace $f" "$T/err"; then
    ok "emu --expert-trace $f: exit $rc, $(cat "$T/err")"
  else
    bad "emu --expert-trace $f: exit $rc, stderr: $(cat "$T/err")"
  fi
done

# --- mid (release variant) -------------------------------------------------------------------
if [ "${SAN:-}" != 1 ]; then
  MID=$B/models/mid
  if [ ! -f "$MID/config.json" ]; then
    "$MOECARD" gen --out "$MID" --preset mid --seed 1 >/dev/null || bad "gen mid"
  fi
  MN=${EXPERT_EMU_MID_TOKENS:-8}
  if [ "$MN" -ge 64 ]; then
    proof "$MID" "$MN" mid \
      "--expert-slots|25%|--expert-policy|lru" "--expert-slots|25%|--expert-policy|lfu" \
      "--expert-slots|25%|--expert-policy|pin" "--expert-slots|25%|--expert-prefetch" \
      "--expert-slots|25%|--expert-host|auto" "--expert-slots|25%|--expert-host|always"
  elif [ "$MN" -gt 0 ]; then
    proof "$MID" "$MN" mid "--expert-slots|25%|--expert-prefetch|--expert-host|auto"
  fi
fi
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
