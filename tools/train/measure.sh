#!/usr/bin/env bash
# measure.sh - the figures of a trained model, beside the random tiny preset of the same shapes:
# held-out perplexity (cpu/emu, --act fp8/none) against the unigram baseline, greedy samples, MTP
# acceptance (cpu and the emulated card, greedy output checked identical to --spec none), expert
# popularity per layer with and without the router bias, and the expert cache replayed on the
# routing traces (moecard cache-sim). Prints markdown; takes a few minutes on 2 cores.
#   bash tools/train/measure.sh [MODEL] [OUT]
set -euo pipefail
M=${MOECARD:-build/moecard}
PY=${PYTHON:-/usr/bin/python3}
MODEL=${1:-models/tiny-brown}
OUT=${2:-build/measure}
LIMIT=${LIMIT:-8192}
T=tools/train/moetrain.py
mkdir -p "$OUT"
RAND=$OUT/random
[ -s "$RAND/model.safetensors" ] || "$M" gen --preset tiny --out "$RAND" --seed 1 \
  --set vocab_size="$("$PY" -c "import json;print(json.load(open('$MODEL/config.json'))['vocab_size'])")" \
  --set rope_scaling=null > /dev/null
"$PY" "$T" nobias --model "$MODEL" --out "$OUT/nobias"
HELD=$MODEL/heldout.txt

echo "## Held-out perplexity ($LIMIT tokens of heldout.txt, windows of 256)"
echo
echo "| model | backend | act | perplexity | seconds |"
echo "|---|---|---|---|---|"
for m in "$MODEL" "$RAND"; do
  for ba in "cpu none" "cpu fp8" "emu fp8"; do
    set -- $ba
    j=$("$M" perplexity --model "$m" --file "$HELD" --limit "$LIMIT" --backend "$1" --act "$2" --json)
    "$PY" -c "import json,sys; d=json.loads(sys.argv[1]); print('| %s | %s | %s | %.2f | %.1f |' % (sys.argv[2], d['backend'], d['act'], d['perplexity'], d['seconds']))" "$j" "$m"
  done
done
echo
echo "## Greedy samples (cpu, --spec none)"
echo
for p in "The jury said that" "It was a cold morning, and" "In the history of the"; do
  echo "- **$p**$("$M" run --model "$MODEL" --prompt "$p" -n 40 --spec none 2>/dev/null | tr '\n' ' ')"
done
echo
echo "## MTP speculation (greedy, 128 tokens after each prompt)"
echo
echo "| model | backend | prompt | accepted | tokens per main forward | output = --spec none |"
echo "|---|---|---|---|---|---|"
for m in "$MODEL" "$RAND"; do
  for b in cpu emu; do
    for p in "The jury said that" "It was a cold morning, and"; do
      a=$("$M" run --model "$m" --backend "$b" --prompt "$p" -n 128 --spec none 2>/dev/null)
      s=$("$M" run --model "$m" --backend "$b" --prompt "$p" -n 128 --spec mtp --stats 2>"$OUT/spec.err")
      acc=$(grep -o "accepted [0-9]*/[0-9]* drafts ([0-9.]*%)" "$OUT/spec.err" | head -n 1)
      tpf=$(grep -o "[0-9.]* tokens per verify forward" "$OUT/spec.err" | head -n 1 | cut -d' ' -f1)
      same=no; [ "$a" = "$s" ] && same=yes
      echo "| $m | $b | $p | $acc | $tpf | $same |"
    done
  done
done
echo
echo "## The emulated card's modeled time with and without MTP (bench, prompt 8, 64 tokens)"
echo
echo "| model | acceptance | modeled card ms/token plain | with MTP | modeled speed-up | cpu speed-up (wall) |"
echo "|---|---|---|---|---|---|"
for m in "$MODEL" "$RAND"; do
  j=$("$M" bench --model "$m" --backend emu --prompt-len 8 --gen 64 --spec mtp --json 2>/dev/null | sed -n 1p)
  c=$("$M" bench --model "$m" --backend cpu --prompt-len 8 --gen 64 --spec mtp --json 2>/dev/null | sed -n 1p)
  "$PY" -c "
import json, sys
d, c = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print('| %s | %.1f%% | %.4f | %.4f | %.3fx | %.2fx |' % (sys.argv[3], 100 * d['acceptance'],
      d['modeled_card_ms_per_tok_plain'], d['modeled_card_ms_per_tok_spec'], d['modeled_spec_speedup'],
      c['spec_speedup']))" "$j" "$c" "$m"
done
echo
echo "## MTP acceptance over 16 held-out prompts (32 prompt tokens each, 64 greedy tokens, cpu)"
echo
all=$("$M" tokenize --model "$MODEL" --file "$HELD" | tr "," "\n")
acc=0; dr=0
for k in $(seq 0 15); do
  p=$(echo "$all" | sed -n "$((k * 1000 + 2)),$((k * 1000 + 33))p" | paste -sd, -)
  "$M" run --model "$MODEL" --tokens "0,$p" -n 64 --spec mtp --stats >/dev/null 2>"$OUT/acc.err"
  a=$(grep -o "accepted [0-9]*/[0-9]*" "$OUT/acc.err" | head -n 1 | cut -d' ' -f2)
  acc=$((acc + ${a%/*})); dr=$((dr + ${a#*/}))
done
echo "accepted $acc of $dr drafts: $((100 * acc / dr))%"
echo
echo "## Expert popularity per MoE layer (the first 1000 held-out tokens, teacher-forced)"
echo
ids=$("$M" tokenize --model "$MODEL" --file "$HELD" | tr "," "\n" | sed -n 1,1000p | paste -sd, -)
for v in "$MODEL:trained" "$OUT/nobias:trained-no-bias" "$RAND:random"; do
  m=${v%%:*}; n=${v##*:}
  "$M" run --model "$m" --tokens "$ids" -n 0 --dump-logits "$OUT/$n.npy" \
    --expert-trace "$OUT/$n.trace" > /dev/null 2>&1
done
"$PY" tools/train/routing.py "$OUT/trained.trace" trained "$OUT/trained-no-bias.trace" \
  "trained, bias zeroed" "$OUT/random.trace" random
echo
echo "## The expert cache replayed on these traces (moecard cache-sim --sweep, card mode, hit rates)"
echo
echo "| trace | slots | lru | lfu | pin | best online with look-ahead | Belady | Belady with look-ahead | DMA hidden (best) |"
echo "|---|---|---|---|---|---|---|---|---|"
for n in trained random; do
  "$M" cache-sim --trace "$OUT/$n.trace" --sweep --no-671b --json 2>/dev/null > "$OUT/$n.sim.jsonl"
  "$PY" - "$OUT/$n.sim.jsonl" "$n" <<'PYEOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
rows = [r for r in rows if r.get("scope") == "trace" and r.get("mode") == "card"]
for slots in sorted({r["slots"] for r in rows}):
    at = {r["policy"]: r for r in rows if r["slots"] == slots}
    online = [r for p, r in at.items() if "prefetch" in p and not p.startswith("belady")]
    best = max(online, key=lambda r: r["hit_rate"])
    bp = max((r for p, r in at.items() if p.startswith("belady+")), key=lambda r: r["hit_rate"])
    print("| %s | %d | %.1f%% | %.1f%% | %.1f%% | %s %.1f%% | %.1f%% | %.1f%% | %.0f%% |" % (
        sys.argv[2], slots, 100 * at["lru"]["hit_rate"], 100 * at["lfu"]["hit_rate"],
        100 * at["pin"]["hit_rate"], best["policy"], 100 * best["hit_rate"],
        100 * at["belady"]["hit_rate"], 100 * bp["hit_rate"], 100 * best["dma_hidden"]))
PYEOF
done
