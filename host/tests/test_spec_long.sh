#!/usr/bin/env bash
# test_spec_long.sh - the long proof of speculative decoding: `moecard run --temp 0` prints
# exactly the same ids with `--spec mtp` (depth 1 and 2) as with `--spec none`, over 200 generated
# tokens, on the tiny and mid presets, on the cpu and emu backends. Each preset runs as generated
# (random MTP layer: drafts are nearly always rejected, so every step rolls the KV caches back) and
# "draft-friendly" (sublayer outputs damped, the MTP layer reading the embedding through the main
# model's norm and head, as in test_spec.c: most drafts are accepted, so verify rows past the first
# are kept). Both test that a verify forward of T = depth+1 rows computes each row exactly as the
# T = 1 decode path does. Also checks that `run --stats` on emu prints the engine's modeled card
# figures. mid (generated once into $B/models/mid, ~2.2 GB, atomically) runs MID_CPU_TOKENS (100)
# tokens on cpu; on emu it is slow (seconds per token), so mid/emu runs a few tokens and says so.
# Depth 2 compares fewer tokens on tiny/emu and mid/cpu (time), also said in the output. Under
# SAN=1 only tiny runs, with fewer tokens. Ends with "N passed, N failed".
set -u
M=${MOECARD:-build/moecard}
B=${B:-build}
PY=${PYTHON:-/usr/bin/python3}
pass=0; fail=0
ok() { pass=$((pass + 1)); echo "ok   $*"; }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/spec_long.XXXXXX"); trap 'rm -rf "$tmp"' EXIT
trap 'exit 143' TERM INT # a timeout still runs the EXIT cleanup (the mid copy is 2.2 GB)
export MOECARD_EMU_DEBUG=1 # an emulated-card error names the failing command

# friendly DIR MTP_LAYER DAMP: the draft-friendly edit of test_spec.c's make_friendly, in place:
# o_proj/down_proj scales times DAMP; eh_proj = [I | 0], enorm = 1; the MTP layer's
# shared_head.norm/head and embed_tokens copied from the main model.
cat >"$tmp/friendly.py" <<'EOF'
import glob, json, os, struct, sys
import numpy as np
d, L, damp = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
T = {}
for f in sorted(glob.glob(os.path.join(d, '*.safetensors'))):
    with open(f, 'rb') as fh:
        n = struct.unpack('<Q', fh.read(8))[0]
        hdr = json.loads(fh.read(n))
    for k, v in hdr.items():
        if k != '__metadata__':
            o = v['data_offsets']
            T[k] = (f, v['dtype'], v['shape'], 8 + n + o[0], o[1] - o[0])
def mm(name, dt):
    f, _, _, off, nb = T[name]
    return np.memmap(f, dtype=dt, mode='r+', offset=off, shape=(nb // np.dtype(dt).itemsize,))
n = 0
for k in T:
    if k.endswith('.weight_scale_inv') and ('o_proj' in k or 'down_proj' in k):
        x = mm(k, np.float32); x *= np.float32(damp); x.flush(); n += 1
p = 'model.layers.%d.' % L
R, C = T[p + 'eh_proj.weight'][2]
x = mm(p + 'eh_proj.weight', np.uint16).reshape(R, C)
x[:] = 0; x[np.arange(R), np.arange(R)] = 0x3F80; x.flush()   # bf16 1.0
x = mm(p + 'enorm.weight', np.uint16); x[:] = 0x3F80; x.flush()
for dst, src in (('shared_head.norm.weight', 'model.norm.weight'),
                 ('shared_head.head.weight', 'lm_head.weight'),
                 ('embed_tokens.weight', 'model.embed_tokens.weight')):
    a, b = mm(p + dst, np.uint8), mm(src, np.uint8)
    if a.shape != b.shape or T[p + dst][1] != T[src][1]:
        sys.exit('%s: %s does not match %s' % (d, p + dst, src))
    a[:] = b; a.flush()
print('%d scale tensors damped, MTP layer %d reads the embedding' % (n, L))
EOF

# same NAME DIR BACKEND N TOKENS DEPTH... : --spec none, then --spec mtp at each depth (a depth
# "D:K" runs only K tokens and compares them with the first K of the plain run).
same() {
  local name=$1 dir=$2 be=$3 n=$4 toks=$5; shift 5
  local t0=$SECONDS
  LAST_PLAIN_S=; LAST_SPEC_S=
  if ! "$M" run --model "$dir" --backend "$be" --tokens "$toks" -n "$n" --temp 0 --spec none \
    >"$tmp/plain" 2>"$tmp/err"; then
    bad "$name $be: --spec none failed: $(tail -n 4 "$tmp/err" | tr '\n' ' ')"; return
  fi
  local plain; plain=$(cat "$tmp/plain")
  LAST_PLAIN_S=$((SECONDS - t0))
  for dd in "$@"; do
    local d=${dd%%:*} k=$n
    [ "$dd" != "$d" ] && k=${dd#*:}
    local want; want=$(echo "$plain" | tr ' ' '\n' | head -n "$k" | tr '\n' ' ' | sed 's/ $//')
    t0=$SECONDS
    if ! "$M" run --model "$dir" --backend "$be" --tokens "$toks" -n "$k" --temp 0 --spec mtp \
      --spec-depth "$d" --stats >"$tmp/spec" 2>"$tmp/err"; then
      bad "$name $be depth $d: --spec mtp failed: $(tail -n 4 "$tmp/err" | tr '\n' ' ')"; continue
    fi
    LAST_SPEC_S=$((SECONDS - t0))
    local got; got=$(cat "$tmp/spec")
    local cnt; cnt=$(echo "$got" | wc -w)
    local acc; acc=$(grep -o "accepted [0-9]*/[0-9]* drafts ([0-9.]*%)" "$tmp/err")
    # the draft-friendly edit must make drafts land, or those runs prove no more than the others
    if [ "${name#*friendly}" != "$name" ] && ! echo "$acc" | grep -q "accepted [1-9]"; then
      bad "$name $be depth $d: the draft-friendly model accepted no draft ($acc)"
    fi
    if [ "$got" = "$want" ] && [ "$cnt" = "$k" ]; then
      ok "$name $be: --spec mtp --spec-depth $d prints the same $k ids as --spec none" \
        "($acc; $LAST_SPEC_S s)"
    else
      local i=1
      while [ "$(echo "$got" | cut -d' ' -f$i)" = "$(echo "$want" | cut -d' ' -f$i)" ] &&
        [ $i -le "$k" ]; do i=$((i + 1)); done
      bad "$name $be depth $d: $cnt ids, first difference at generated token $i:" \
        "mtp '$(echo "$got" | cut -d' ' -f$i)' vs none '$(echo "$want" | cut -d' ' -f$i)' ($acc)"
    fi
    if [ "$be" = emu ]; then
      if grep -q "modeled card .* ms/token" "$tmp/err"; then
        ok "$name emu: run --stats prints the engine figures:" \
          "$(grep -o "modeled card .* ms/token" "$tmp/err" | head -n 1)"
      else
        bad "$name emu: run --stats printed no modeled card figures: $(head -c 300 "$tmp/err")"
      fi
    fi
  done
}

P1=$(seq -s, 5 5 60)        # 12-token prompts
P2=$(seq -s, 3 11 124)
P3=17,4,99                  # a short one (mid/emu: fewer prefill forwards)
if [ "${SAN:-}" = 1 ]; then NT=48; NE=16; else NT=200; NE=200; fi
[ "${SAN:-}" = 1 ] && echo "note: SAN=1: tiny only, $NT tokens on cpu and $NE on emu"

# ---- tiny: as generated, and draft-friendly
T=$tmp/tiny; TF=$tmp/tiny_friendly
if ! "$M" gen --out "$T" --preset tiny --seed 1 >"$tmp/gen.log" 2>&1 ||
  ! cp -r "$T" "$TF" || ! "$PY" "$tmp/friendly.py" "$TF" 4 0.05 >"$tmp/fr.log" 2>&1; then
  bad "tiny: gen / friendly edit: $(tail -n 2 "$tmp/gen.log" "$tmp/fr.log" 2>/dev/null)"
  echo "$pass passed, $fail failed"; exit 1
fi
same "tiny" "$T" cpu $NT "$P1" 1 2
same "tiny" "$T" cpu $NT "$P2" 1
same "tiny friendly" "$TF" cpu $NT "$P1" 1 2
# negative control: the comparison sees a difference when there is one (sampled vs greedy)
g0=$("$M" run --model "$TF" --tokens "$P1" -n $NT --temp 0 --spec none 2>/dev/null)
g1=$("$M" run --model "$TF" --tokens "$P1" -n $NT --temp 1 --seed 5 --spec mtp 2>/dev/null)
if [ -n "$g1" ] && [ "$(echo "$g1" | wc -w)" = $NT ] && [ "$g1" != "$g0" ]; then
  ok "negative control: --temp 1 --spec mtp differs from greedy ($(echo "$g0" | cut -d' ' -f1-4) ..." \
    "vs $(echo "$g1" | cut -d' ' -f1-4) ...)"
else
  bad "negative control: sampled output '$(echo "$g1" | head -c 60)' equals greedy or is empty"
fi
same "tiny friendly" "$TF" cpu $NT "$P2" 1 2
# emu: the friendly model has both accepted and rejected drafts; depth 2 on fewer tokens (time)
K2=$((NE < 48 ? NE : 48))
[ "$K2" -lt "$NE" ] && echo "note: tiny emu: depth 2 compares the first $K2 of the $NE tokens (emulation time)"
same "tiny friendly" "$TF" emu $NE "$P1" 1 2:$K2
[ "${SAN:-}" != 1 ] && same "tiny" "$T" emu 48 "$P2" 1

if [ "${SAN:-}" = 1 ]; then
  echo "$pass passed, $fail failed"
  [ $fail = 0 ]; exit
fi

# ---- mid: reuse $B/models/mid or generate it atomically (another test may be creating it too:
# `moecard gen` writes config.json last, and the rename only succeeds for the first creator)
MID=$B/models/mid
if [ ! -f "$MID/config.json" ] && [ ! -e "$MID" ]; then
  mkdir -p "$B/models"
  part=$(mktemp -d "$B/models/.mid.XXXXXX")
  echo "note: generating mid into $MID (~2.2 GB, once)"
  if "$M" gen --out "$part" --preset mid --seed 1 >"$tmp/gen.log" 2>&1; then
    mv -T "$part" "$MID" 2>/dev/null || echo "note: $MID was created concurrently; using it"
  else
    echo "note: gen mid: $(tail -n 1 "$tmp/gen.log")"
  fi
  rm -rf "$part"
fi
for _ in $(seq 60); do [ -f "$MID/config.json" ] && break; sleep 5; done
MF=$B/models/.mid_friendly.$$
trap 'rm -rf "$tmp" "$MF"' EXIT
if [ ! -f "$MID/config.json" ] || ! cp -r "$MID" "$MF" ||
  ! "$PY" "$tmp/friendly.py" "$MF" 12 0.05 >"$tmp/fr.log" 2>&1; then
  bad "mid: no checkpoint at $MID or the friendly edit failed: $(tail -n 1 "$tmp/fr.log" 2>/dev/null)"
  echo "$pass passed, $fail failed"; exit 1
fi
MC=${MID_CPU_TOKENS:-100}
MC2=$((MC / 2))
same "mid" "$MID" cpu "$MC" "$P1" 1
echo "note: mid cpu: depth 2 compares the first $MC2 of the $MC tokens (time)"
same "mid friendly" "$MF" cpu "$MC" "$P1" 1 "2:$MC2"
# emu on mid: measure the plain time per token and run as many as fit ~90 s for plain + mtp
KE=6
same "mid friendly" "$MF" emu $KE "$P3" 1
[ -n "$LAST_SPEC_S" ] && est=$(( (LAST_PLAIN_S + LAST_SPEC_S) * 200 / KE )) &&
  echo "note: mid emu compares $KE tokens, not 200: --spec none took $LAST_PLAIN_S s and --spec mtp" \
  "$LAST_SPEC_S s here, so 200 tokens each would take ~$est s (the emulated card runs every kernel in C)"
rm -rf "$MF"
echo "$pass passed, $fail failed"
[ $fail = 0 ]
