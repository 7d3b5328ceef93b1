#!/usr/bin/env bash
# tests/llama_side_by_side.sh: moecard vs llama.cpp on the same model ($B/models/mid), CPU, 2 threads.
#
# llama.cpp side, first found of:
#   LLAMA_BENCH=/path/to/llama-bench   llama-bench -m F -t 2 -p 512 -n 128 -r 1 -o json
#                                      (decode as -p 0 -n 128 -d 512 when it has -d/--n-depth)
#   $B/cache/llama-ref                 node-llama-cpp's prebuilt libllama via tools/gguf/llama_ref.mjs
#                                      (install: tests/llama_ref_deps.sh)
# With neither, one line says so and the script exits 0.
#
# The model goes to llama.cpp as Q8_0 GGUF ($B/models/mid-q8_0.gguf, converted by
# tools/gguf/convert.py, rebuilt when older than the checkpoint or the converter); moecard runs
# its FP8 checkpoint as is. ROUNDS (3) interleaved rounds of
#   moecard bench --backend cpu --threads 2 --prompt-len 512 --gen 128 --spec none --json
# and the llama.cpp run; the table shows the means (and sd) over rounds and moecard/llama.cpp.
# Both decode figures are taken after the 512-token prompt (depth 512) unless the table says
# otherwise. With node-llama-cpp the llama.cpp figures are llama.cpp's own llama_decode timings
# (llama_perf_context, what llama-bench reports); the wall-clock through the binding is printed
# too. Other jobs on the machine skew both sides: the 1-minute load average is printed.
#
# moecard runs with its default BF16 lm_head (the accuracy reference; 264 of the ~430 MB a decode
# step reads), greedy tokens from its 8-bit screen (the same tokens, head_screen.h) and, as
# llama.cpp computes them, with every logit (--head-screen off); and with --head fp8 (half the
# head's bytes; Q8_0's head is 8-bit too).
#
# env: B (build), MOECARD ($B/moecard), PYTHON (/usr/bin/python3, needs numpy), ROUNDS (3),
#      THREADS (2), PROMPT_LEN (512), GEN (128), LLAMA_BENCH, HEADS ("bf16 full fp8": bf16 with
#      its greedy tokens from the 8-bit screen, bf16 with full logits (--head-screen off), fp8),
#      SEQS ("1 8": batched decode with node-llama-cpp; "" skips), GEN_SEQS (32),
#      LLAMA_CPU (node-llama-cpp: keep only that CPU library of llama.cpp's, e.g. haswell, in a
#      copy of its binary folder; with MOECARD_ISA=avx2 both sides then run AVX2 kernels, as on
#      an AVX2-only host)
set -euo pipefail

B=${B:-build}
MOECARD=${MOECARD:-$B/moecard}
PY=${PYTHON:-/usr/bin/python3}
ROUNDS=${ROUNDS:-3}
T=${THREADS:-2}
P=${PROMPT_LEN:-512}
G=${GEN:-128}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
MODEL=$B/models/mid
GGUF=$B/models/mid-q8_0.gguf
REF=$B/cache/llama-ref
me=llama_side_by_side

# ---- which llama.cpp
if [ -n "${LLAMA_BENCH:-}" ]; then
    [ -x "$LLAMA_BENCH" ] || { echo "$me: LLAMA_BENCH=$LLAMA_BENCH is not an executable" >&2; exit 1; }
    side=bench
elif [ -f "$REF/node_modules/node-llama-cpp/dist/index.js" ] && command -v node >/dev/null 2>&1; then
    side=node
else
    echo "$me: skipped: no llama.cpp (set LLAMA_BENCH=path/to/llama-bench, or run tests/llama_ref_deps.sh for node-llama-cpp)"
    exit 0
fi
[ -x "$MOECARD" ] || { echo "$me: $MOECARD: not built" >&2; exit 1; }
[ -f "$MODEL/config.json" ] || { echo "$me: $MODEL/config.json: missing (the mid test model)" >&2; exit 1; }

# ---- the GGUF, cached
if [ ! -s "$GGUF" ] || [ -n "$(find "$MODEL" "$ROOT/tools/gguf/convert.py" -newer "$GGUF" -type f -print -quit)" ]; then
    echo "$me: converting $MODEL -> $GGUF (q8_0)" >&2
    "$PY" "$ROOT/tools/gguf/convert.py" "$MODEL" "$GGUF" --type q8_0
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/sbs.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# ---- LLAMA_CPU: llama.cpp held to one of its CPU libraries
if [ -n "${LLAMA_CPU:-}" ] && [ "$side" = node ]; then
    cp -a "$REF" "$tmp/llama-ref"
    n=0
    for f in "$tmp"/llama-ref/node_modules/@node-llama-cpp/*/bins/*/libggml-cpu-*.so; do
        [ -e "$f" ] || continue
        case $(basename "$f") in
        "libggml-cpu-$LLAMA_CPU.so") n=$((n + 1)) ;;
        *) rm -f "$f" ;;
        esac
    done
    [ "$n" -gt 0 ] || { echo "$me: LLAMA_CPU=$LLAMA_CPU: no libggml-cpu-$LLAMA_CPU.so in $REF" >&2; exit 1; }
    REF=$tmp/llama-ref
fi

# each run appends "prefill decode" (tok/s) to $tmp/<side>
HEADS=${HEADS:-bf16 full fp8}
run_moecard() { # $1: lm_head format (full: bf16 with every logit)
    local h=$1 scr=on
    [ "$h" = full ] && h=bf16 && scr=off
    "$MOECARD" bench --model "$MODEL" --backend cpu --threads "$T" --prompt-len "$P" --gen "$G" \
        --spec none --head "$h" --head-screen $scr --json --quiet >"$tmp/mc.json" 2>"$tmp/mc.err" ||
        { echo "$me: moecard bench failed:" >&2; tail -5 "$tmp/mc.err" >&2; exit 1; }
    "$PY" -c 'import json,sys; j=json.load(open(sys.argv[1])); print(j["prefill_tok_s"], j["decode_tok_s"], j.get("decode_stream_frac", 0))' \
        "$tmp/mc.json" >>"$tmp/moecard-$1"
}

depth_ok=0
if [ "$side" = bench ] && "$LLAMA_BENCH" --help 2>&1 | grep -q -- '--n-depth'; then depth_ok=1; fi

run_llama() {
    if [ "$side" = node ]; then
        LLAMA_REF_DIR=$REF node "$ROOT/tools/gguf/llama_ref.mjs" --model "$GGUF" --threads "$T" --bench \
            --prompt-len "$P" --gen "$G" >"$tmp/ll.json" 2>"$tmp/ll.err" ||
            { echo "$me: llama_ref.mjs failed:" >&2; tail -5 "$tmp/ll.err" >&2; exit 1; }
        "$PY" -c 'import json,sys; j=json.load(open(sys.argv[1])); print(j["prefill_tok_s"], j["decode_tok_s"]); print(j["wall_prefill_tok_s"], j["wall_decode_tok_s"], file=sys.stderr)' \
            "$tmp/ll.json" >>"$tmp/llama" 2>>"$tmp/llwall"
    else
        if [ $depth_ok = 1 ]; then
            if ! { "$LLAMA_BENCH" -m "$GGUF" -t "$T" -p "$P" -n 0 -r 1 -o json >"$tmp/lb1.json" 2>"$tmp/ll.err" &&
                   "$LLAMA_BENCH" -m "$GGUF" -t "$T" -p 0 -n "$G" -d "$P" -r 1 -o json >"$tmp/lb2.json" 2>>"$tmp/ll.err"; }; then
                echo "$me: llama-bench failed:" >&2; tail -5 "$tmp/ll.err" >&2; exit 1
            fi
        else
            "$LLAMA_BENCH" -m "$GGUF" -t "$T" -p "$P" -n "$G" -r 1 -o json >"$tmp/lb1.json" 2>"$tmp/ll.err" ||
                { echo "$me: llama-bench failed:" >&2; tail -5 "$tmp/ll.err" >&2; exit 1; }
            echo '[]' >"$tmp/lb2.json"
        fi
        "$PY" - "$tmp/lb1.json" "$tmp/lb2.json" "$tmp/llinfo" >>"$tmp/llama" <<'EOF'
import json, sys
rows = json.load(open(sys.argv[1])) + json.load(open(sys.argv[2]))
pp = [r["avg_ts"] for r in rows if r.get("n_prompt", 0) > 0 and r.get("n_gen", 0) == 0]
tg = [r["avg_ts"] for r in rows if r.get("n_gen", 0) > 0 and r.get("n_prompt", 0) == 0]
if not pp or not tg:
    sys.exit("llama_side_by_side: llama-bench JSON has no pp/tg rows")
r = rows[0]
open(sys.argv[3], "w").write("llama-bench build %s (%s), %s" % (r.get("build_commit", "?"), r.get("build_number", "?"), r.get("cpu_info", "")))
print(pp[0], tg[0])
EOF
    fi
}

load=$(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo '?')
for r in $(seq 1 "$ROUNDS"); do
    echo "$me: round $r/$ROUNDS" >&2
    for h in $HEADS; do run_moecard "$h"; done
    run_llama
done
load2=$(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo '?')

if [ "$side" = node ]; then
    "$PY" -c 'import json,sys; j=json.load(open(sys.argv[1])); print("llama.cpp %s via node-llama-cpp %s (%s binary, %s)" % (j["llama_version"], j["node_llama_cpp"], j["binary"], j.get("cpu_backend") or "cpu"))' \
        "$tmp/ll.json" >"$tmp/llinfo"
    ddepth=$P
else
    ddepth=$([ $depth_ok = 1 ] && echo "$P" || echo 0)
fi

# shellcheck disable=SC2046
"$PY" - "$tmp/llama" $(for h in $HEADS; do echo "$tmp/moecard-$h"; done) <<EOF
import json, statistics as st, sys
def load(p):
    rows = [tuple(map(float, l.split())) for l in open(p) if l.strip()]
    return [[r[i] for r in rows] for i in range(len(rows[0]))]
lp, ld = load(sys.argv[1])[:2]
def f(v):
    m = st.mean(v); s = st.stdev(v) if len(v) > 1 else 0.0
    return "%7.1f ±%5.1f" % (m, s)
print("mid: moecard (FP8 checkpoint, --backend cpu) vs llama.cpp (Q8_0 GGUF); threads $T, prompt $P, gen $G, $ROUNDS rounds (mean ± sd)")
print("moecard: isa %s (host kernels; MOECARD_ISA forces one)" % json.load(open("$tmp/mc.json")).get("isa", "?"))
print("llama.cpp: $(cat "$tmp/llinfo")")
print("%-40s %16s %22s %9s" % ("", "moecard tok/s", "llama.cpp Q8_0 tok/s", "ratio"))
for path in sys.argv[2:]:
    head = {"bf16": "bf16 (screen)", "full": "bf16 (all logits)"}.get(path.rsplit("-", 1)[1], path.rsplit("-", 1)[1])
    cols = load(path)
    mp, md = cols[0], cols[1]
    print("%-40s %16s %22s %8.2fx" % ("prefill ($P tokens), head %s" % head, f(mp), f(lp), st.mean(mp) / st.mean(lp)))
    print("%-40s %16s %22s %8.2fx" % ("decode ($G tokens), head %s" % head, f(md), f(ld), st.mean(md) / st.mean(ld)))
    if len(cols) > 2 and st.mean(cols[2]) > 0:
        print("%-40s %15.1f%%" % ("  moecard decode: share of stream", 100 * st.mean(cols[2])))
print("decode depth: moecard $P, llama.cpp $ddepth; ratio = moecard / llama.cpp; load average $load -> $load2")
try:
    wp, wd = load("$tmp/llwall")[:2]
    print("llama.cpp figures are its own llama_decode timings (as llama-bench); timed around the node binding: prefill %.1f, decode %.1f tok/s" % (st.mean(wp), st.mean(wd)))
except (OSError, IndexError):
    pass
EOF

# Batched decode (node-llama-cpp only; SEQS="" skips): B sequences of 16 prompt tokens each,
# then GEN_SEQS (32) greedy steps of all B together, as serve runs them: moecard bench --seqs B
# (the cpu engine's rows path) against llama_ref.mjs --seqs B (one llama.cpp context with B
# sequences, one llama_decode of B tokens per step, its own timings), interleaved, ROUNDS rounds.
SEQS=${SEQS-1 8}
if [ "$side" = node ] && [ -n "$SEQS" ]; then
    : >"$tmp/seqs"
    for _ in $(seq "$ROUNDS"); do
        for nb in $SEQS; do
            m=$("$MOECARD" bench --model "$MODEL" --backend cpu --threads "$T" --seqs "$nb" \
                --prompt-len 16 --gen "${GEN_SEQS:-32}" --spec none --json 2>/dev/null | tail -n 1)
            l=$(node "$ROOT/tools/gguf/llama_ref.mjs" --model "$GGUF" --threads "$T" --bench \
                --seqs "$nb" --prompt-len 16 --gen "${GEN_SEQS:-32}" 2>/dev/null | tail -n 1)
            echo "$nb $m" >>"$tmp/seqs"; echo "$nb L$l" >>"$tmp/seqs"
        done
    done
    "$PY" - "$tmp/seqs" <<'PYEOF'
import json, statistics as st, sys
d = {}
for line in open(sys.argv[1]):
    nb, js = line.split(" ", 1)
    side = "llama" if js.startswith("L") else "moecard"
    try:
        j = json.loads(js[1:] if side == "llama" else js)
    except ValueError:
        continue
    d.setdefault((side, int(nb)), []).append(j["decode_tok_s"])
bs = sorted({b for _, b in d})
print("batched decode, B sequences together (mean tok/s over rounds; x B=1 of the same side)")
print("%4s %16s %18s %8s" % ("B", "moecard", "llama.cpp Q8_0", "ratio"))
for b in bs:
    m, l = d.get(("moecard", b)), d.get(("llama", b))
    if not m or not l:
        continue
    m1, l1 = d.get(("moecard", bs[0]), m), d.get(("llama", bs[0]), l)
    print("%4d %9.1f (%.2fx) %11.1f (%.2fx) %7.2fx" % (b, st.mean(m), st.mean(m) / st.mean(m1),
          st.mean(l), st.mean(l) / st.mean(l1), st.mean(m) / st.mean(l)))
PYEOF
fi
