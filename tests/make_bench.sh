#!/usr/bin/env bash
# `make bench`: speed figures. Host engine on the tiny and mid presets (mid is generated once,
# ~1.5 GB), cpu backend, FP8 activations and f32 activations, 1 and 2 threads; then the modeled
# kernel figures of the HLS kernels and the DMA model when those tools are built.
set -euo pipefail
B=${1:-build}
for preset in tiny mid; do
  M=$B/models/$preset
  if [ ! -f "$M/config.json" ]; then
    echo "bench: generating $preset into $M" >&2
    "$B/moecard" gen --out "$M" --preset $preset --seed 1 >&2
  fi
done
for preset in tiny mid; do
  for thr in 1 2; do
    "$B/moecard" bench --model "$B/models/$preset" --backend cpu --threads $thr \
      --prompt-len ${PROMPT_LEN:-128} --gen ${GEN:-64} --json
  done
done
"$B/moecard" bench --model "$B/models/mid" --backend cpu --act none --threads 2 \
  --prompt-len ${PROMPT_LEN:-128} --gen ${GEN:-64} --json
# --- the decode products alone, every SIMD path this CPU runs side by side in one process (rounds
#     alternating the paths) beside a plain read of the same bytes: the kernels' ratios
echo "== decode products on mid, every SIMD path side by side (moecard bench --kernels, 2 threads)"
"$B/moecard" bench --model "$B/models/mid" --kernels --threads 2 ||
  echo "bench: bench --kernels failed"
# --- the head's 8-bit screen: greedy decode with it and with the full BF16 head, token by token
echo "== lm_head's 8-bit screen on mid (moecard bench --screen-ab, 2 threads): the same tokens"
"$B/moecard" bench --model "$B/models/mid" --backend cpu --threads 2 --prompt-len 128 --gen 64 \
  --spec none --screen-ab | grep -E "^head screen|^decode with the head screen" ||
  echo "bench: bench --screen-ab failed"
# --- the host engine side by side with llama.cpp on the same model (mid as Q8_0 GGUF): with
#     LLAMA_BENCH=path/to/llama-bench, or node-llama-cpp's prebuilt llama.cpp when
#     tests/llama_ref_deps.sh installed it; otherwise one line says it is skipped.
echo "== host engine vs llama.cpp (mid, 2 threads, prompt 512, decode 128 after it)"
B=$B bash tests/llama_side_by_side.sh || echo "bench: side by side with llama.cpp failed"
for tool in hls_bench dma_bench; do
  if [ -x "$B/$tool" ]; then echo "== $tool (modeled)"; "$B/$tool"; fi
done
# --- batched prefill on the emulated card (every time figure modeled): mid through the batched
#     path and token by token (MOECARD_CARD_PREFILL=0) on an emulated prompt of PF_LEN tokens;
#     the same lists in dry mode (no weights) at T = 512 for mid, and the 671B what-if per board
#     at T = 128, 512, 2048 (bench sets MOECARD_WHATIF_PREFILL).
PF_LEN=${PF_LEN:-64}
echo "== batched prefill on mid, emu card (modeled figures)"
pf_json() { "$B/moecard" bench --model "$B/models/mid" --backend emu --prompt-len "$PF_LEN" --gen 1 --json | tail -1; }
PFB=$(pf_json) || PFB=""
PFL=$(MOECARD_CARD_PREFILL=0 MOECARD_WHATIF_PREFILL=0 pf_json) || PFL=""
if [ -n "$PFB" ] && [ -n "$PFL" ]; then
  printf '%s\n%s\n' "$PFB" "$PFL" | /usr/bin/python3 -c "
import json, sys
b, l = (json.loads(x) for x in sys.stdin.read().split('\n')[:2])
where = lambda g, f: ('matrices on the GEMV CU at %.1f%% of its peak' % (100 * g) +
                      (', routed experts on the GEMM CUs at %.1f%% of the PE arrays peak' % (100 * f)
                       if f > 0 else '') if g > 0 else
                      'GEMMs at %.1f%% of the PE array peak' % (100 * f))
print('emulated T=%d: batched %9.1f tok/s (%.3f ms: card %.3f + link %.3f + host %.3f), token by token %9.1f tok/s: %.2fx; %s' % (
  b['prefill_tokens'], b['modeled_prefill_tok_s'], b['modeled_prefill_ms'], b['modeled_prefill_card_ms'],
  b['modeled_prefill_link_ms'], b['modeled_prefill_host_ms'], l['modeled_prefill_tok_s'],
  b['modeled_prefill_tok_s'] / l['modeled_prefill_tok_s'],
  where(b['prefill_gemv_pe_frac'], b['prefill_gemm_pe_frac'])))
print('dry what-if T=%d: batched %9.1f tok/s, token by token %9.1f tok/s: %.2fx; %s (GEMV CU %.1f ms, GEMM CUs %.1f ms, attention %.1f ms of CU time; matrices on the GEMM CUs instead: %.1f tok/s)' % (
  b['whatif_prefill_T'], b['whatif_prefill_tok_s'], b['whatif_prefill_token_loop_tok_s'], b['whatif_prefill_speedup'],
  where(b['whatif_prefill_gemv_pe_frac'] if b['whatif_prefill_on_gemv'] else 0, b['whatif_prefill_pe_frac']),
  b['whatif_prefill_gemv_ms'], b['whatif_prefill_gemm_ms'], b['whatif_prefill_attn_ms'],
  b['whatif_prefill_gemm_cus_tok_s']))
for k in sorted(k for k in b if k.startswith('whatif_671b_prefill_')):
  w = b[k]
  print('671B %-16s %10.1f ms  %7.2f tok/s (token loop %6.3f tok/s, %.2fx)  %s (GEMM CUs: %.2f tok/s)' % (
    k[len('whatif_671b_prefill_'):], w['e2e_ms'], w['tok_s'], w['token_loop_tok_s'], w['speedup'],
    where(w['gemv_pe_frac'] if w['on_gemv'] else 0, w['pe_frac']), w['gemm_cus_tok_s']))
" || echo "bench: prefill figures failed"
else
  echo "bench: emu prefill runs failed"
fi
# --- mid's decode on the card end to end (card + link + the host's parts, modeled) against its
#     HBM roofline, on the emu tree and the trees of the cards that fit (greedy: the token comes
#     back as the head's 8-byte record), after a prompt of 8 and of 64 tokens
echo "== mid decode on the card, end to end (modeled; issue target >= 70% of the roofline)"
for card in emu u55c v80; do
  for pl in "8 8" "64 16"; do
    set -- $pl
    "$B/moecard" bench --model "$B/models/mid" --backend emu --board "$B/board/$card.dtb" \
      --prompt-len "$1" --gen "$2" --json 2>/dev/null | tail -1 | /usr/bin/python3 -c "
import json, sys
d = json.loads(sys.stdin.read())
print('%-5s prompt %3s: %.4f ms/token end to end, %.1f%% of the HBM roofline (card alone %.1f%%)' % (
  sys.argv[1], sys.argv[2], d['modeled_e2e_ms_per_token'], 100 * d['modeled_e2e_hbm_roofline_frac'],
  100 * d['modeled_hbm_roofline_frac']))
" "$card" "$1" || echo "bench: mid decode on $card failed"
  done
done
# --- the 671B decode what-if (ctx 4096, end to end, modeled) on every shipped board, with the
#     board's resource verdict: the what-if times shapes, so the tiny model's run carries it.
echo "== 671B decode what-if per board (modeled; resource estimate: moecard info --board)"
for card in emu u55c u280 v80; do
  verdict=$("$B/moecard" info --board "$B/board/$card.dtb" 2>/dev/null | awk '
    /fraction of the part/ { f = "DSP " $5 ", BRAM36 " $6 ", URAM " $7 ", LUT " $8 }
    /verdict:/ { sub(/^ *verdict: */, ""); v = $0 } END { print "estimate " f ": " v }')
  "$B/moecard" bench --model "$B/models/tiny" --backend emu --board "$B/board/$card.dtb" \
    --prompt-len 1 --gen 1 --json 2>/dev/null | tail -1 | /usr/bin/python3 -c "
import json, sys
d = json.loads(sys.stdin.read())
f8 = ''
if 'whatif_671b_fp8attn_modeled_e2e_ms_per_tok' in d:
  f8 = '; FP8 attention%s %.1f ms (%.1f%%)' % ('' if d.get('whatif_671b_fp8attn_built', 1) else ' (not built: a what-if)',
    d['whatif_671b_fp8attn_modeled_e2e_ms_per_tok'], 100 * d['whatif_671b_fp8attn_modeled_hbm_roofline_frac'])
print('%-5s %8.1f ms/token end to end, %5.1f%% of the HBM roofline (GEMVs %.1f ms, attention %.1f ms)%s' % (
  sys.argv[1], d['whatif_671b_modeled_e2e_ms_per_tok'], 100 * d['whatif_671b_modeled_hbm_roofline_frac'],
  d['whatif_671b_gemv_ms'], d['whatif_671b_attn_ms'], f8))
print('      %s' % sys.argv[2])
" "$card" "$verdict" || echo "bench: 671B what-if on $card failed"
done
# --- expert cache: routed experts in host memory, card slots.
# (1) On mid through the emulated card (the real implementation: firmware command lists, DMA_FILL
#     with fences, host execution of misses): hit rate, DMA bytes/token, DMA time hidden, modeled
#     decode tok/s without and with host execution. Every time figure is modeled.
# (2) The routing trace of the same model replayed by cache-sim under every policy against
#     Belady's MIN (and MIN given the same look-ahead), at 10/25/50% capacity, on mid and on the
#     671B shapes, with cache-sim's goals checked against the all-host run measured here.
CACHE_GEN=${CACHE_GEN:-8}
echo "== expert cache on mid, emu card (modeled figures)"
"$B/moecard" bench --model "$B/models/mid" --backend emu --prompt-len 8 --gen "$CACHE_GEN" --json |
  tail -1 | /usr/bin/python3 -c "import json,sys; j=json.loads(sys.stdin.read()); print(
'every expert resident (baseline): modeled decode %7.2f tok/s' % (1e3/j['modeled_card_ms_per_tok']))" ||
  echo "bench: emu all-resident baseline failed"
for pct in 10 25 50; do
  for pol in "lru" "lfu" "lfu --expert-prefetch"; do
    for host in off auto; do
      # shellcheck disable=SC2086
      "$B/moecard" bench --model "$B/models/mid" --backend emu --prompt-len 8 --gen "$CACHE_GEN" \
        --json --expert-slots "$pct%" --expert-policy $pol --expert-host $host | tail -1 |
        /usr/bin/python3 -c "import json,sys; j=json.loads(sys.stdin.read()); print(
'slots %3s%% %-16s host %-4s: hit %5.1f%%  DMA %6.2f MB/tok  DMA hidden %5.1f%%  host-run %4d  '
'modeled decode %7.2f tok/s (card time alone %7.2f)' % ('$pct', '$pol'.replace(' --expert-', '+'), '$host',
100*j['expert_hit_rate'], j['expert_dma_bytes_per_tok']/1e6, 100*j['modeled_expert_dma_hidden'],
j['expert_miss_host'], j['modeled_expert_decode_tok_s'], 1e3/j['modeled_card_ms_per_tok']))" ||
        echo "bench: expert cache $pct% $pol host $host failed"
    done
  done
done
echo "== expert cache: routing trace of mid (cpu engine) replayed, 671B what-if (modeled)"
TR=$B/models/mid.expert-trace
if [ ! -f "$TR" ]; then
  TOKS=$(/usr/bin/python3 -c "import random; random.seed(3); print(','.join(str(random.randrange(1000)) for _ in range(${CACHE_TRACE_TOKENS:-128})))")
  "$B/moecard" run --model "$B/models/mid" --backend cpu --tokens "$TOKS" -n 1 \
    --spec none --expert-trace "$TR" >/dev/null
fi
# the all-host baseline of goal 3: the cpu backend's decode on mid, measured now
CPU_TOK_S=$("$B/moecard" bench --model "$B/models/mid" --backend cpu --threads 2 --prompt-len 8 \
  --gen "${GEN:-64}" --json | head -1 | /usr/bin/python3 -c "import json,sys; print(json.loads(sys.stdin.readline())['decode_tok_s'])")
echo "cpu backend, mid, 2 threads: decode $CPU_TOK_S tok/s (measured; goal 3's all-host baseline)"
"$B/moecard" cache-sim --trace "$TR" --sweep --cpu-tok-s "$CPU_TOK_S"
# --- batching: B sequences of mid decoded together, as serve --max-batch B runs them (one forward
#     of B rows per step: every weight read once for all), B = 1, 2, 4, 8, 16, against B = 1 in
#     the same run: on the cpu engine (measured wall time) and on the emulated card (modeled:
#     the step is card + link + host, each sequence's inter-token time).
seqs_table() { # BACKEND GEN PREFIX: one line per B; PREFIX "modeled_" reads the modeled fields
  local be=$1 gen=$2 pre=$3
  for nb in ${SEQS_LIST:-1 2 4 8 16}; do
    "$B/moecard" bench --model "$B/models/mid" --backend "$be" --threads 2 --seqs "$nb" \
      --prompt-len 16 --gen "$gen" --json | tail -1
  done | /usr/bin/python3 -c "
import json, sys
pre = sys.argv[1]
rows = [json.loads(l) for l in sys.stdin if l.startswith('{')]
b1 = next((r for r in rows if r['seqs'] == 1), None)
for r in rows:
  tok, step = r[pre + 'decode_tok_s'], r[pre + 'step_ms']
  x = tok / b1[pre + 'decode_tok_s'] if b1 else 0
  s = step / b1[pre + 'step_ms'] if b1 else 0
  parts = ': card %.3f + link %.3f + host %.3f' % (r['modeled_card_ms_per_step'],
    r['modeled_link_ms_per_step'], r['modeled_host_ms_per_step']) if pre else ''
  print('%2d sequences: %8.1f tok/s %s(%.2fx 1 sequence), step %.3f ms (%.2fx%s)' % (
    r['seqs'], tok, 'modeled ' if pre else '', x, step, s, parts))
" "$pre" || echo "bench: $be batching figures failed"
}
echo "== cpu batching on mid, 2 threads (measured wall time; bench --seqs B)"
seqs_table cpu "${CPU_SEQS_GEN:-16}" ""
echo "== card batching on mid, emu card (modeled figures: card + link + sampling; not counted: the host's list building and its grouping of the rows by expert; bench --seqs B)"
seqs_table emu "${SEQS_GEN:-4}" modeled_
# --- moecard serve: generated tokens/s and TTFT / inter-token latency against the number of
#     concurrent streaming clients, on the cpu backend (mid, measured wall time: the sequences of
#     a step decode together, one forward per step) and on the emulated card (tiny-brown, the
#     slots decoded together on the card; host wall time of the emulation, not modeled: the
#     modeled figures are the card batching ones above).
serve_bench() {  # LABEL MODEL SERVE-ARGS...; env PROMPT: the clients' prompt (load.mjs's own when unset)
  local label=$1 model=$2; shift 2
  local err; err=$(mktemp)
  "$B/moecard" serve --model "$model" --port 0 "$@" 2>"$err" &
  local pid=$!
  for _ in $(seq 600); do grep -q "serve: ready" "$err" && break; kill -0 $pid 2>/dev/null || break; sleep 0.2; done
  local url; url=$(grep -o 'http://[0-9.]*:[0-9]*' "$err" | head -n 1)
  if grep -q "serve: ready" "$err"; then
    echo "== serve, $label: $(grep 'serve: ready' "$err" | sed 's/^moecard: serve: ready: //')"
    node tools/serve/load.mjs --url "$url" --clients "${SERVE_CLIENTS:-1,2,4,8,16}" \
      --requests "${SERVE_REQS:-2}" --max-tokens "${SERVE_TOKENS:-32}" ${PROMPT:+--prompt "$PROMPT"} ||
      echo "bench: serve load failed"
  else
    echo "bench: serve $label did not start: $(cat "$err")"
  fi
  kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null || true
  rm -f "$err"
}
if command -v node >/dev/null 2>&1; then
  serve_bench "cpu, mid, 2 threads" "$B/models/mid" --threads 2 --max-batch 16
  # the same with 199-token prompts (three prompt chunks of 64 of their own and a tail of 7 a
  # request): the prompt chunk budget against the running replies' inter-token times
  long199=$(for i in 1 2 3 4 5 6 7 8 9; do printf 'The jury said that the city of Atlanta %s deserves praise. ' $i; done)
  PROMPT=${long199% } SERVE_CLIENTS=${SERVE_CLIENTS:-1,8} \
    serve_bench "cpu, mid, 2 threads, 199-token prompts" "$B/models/mid" --threads 2 --max-batch 16
  serve_bench "emulated card, tiny-brown" models/tiny-brown --backend emu --max-batch 16
else
  echo "bench: node missing: no serve figures"
fi
# --- moecard profile: where a mid decode step goes on the emulated card (modeled timeline, the
#     top time sinks), what the bandwidth and the firmware's clock would buy (--sweep: the
#     engine's lists timed dry, mid and 671B), and the profiler's own cost on the cpu backend
#     (passes with the profiler off and on, in turn: measured host wall time).
P=$B/profile-bench
echo "== profile: mid decode steps on the emulated card (modeled timeline)"
"$B/moecard" profile --model "$B/models/mid" --prompt-len 16 --gen 8 --out "$P/mid-emu" --quiet |
  sed -n '1,3p;/^per op/,/^$/p' | head -14
for knob in hbm_gbps=230,460,920 fw_mhz=250,500,1000; do
  echo "== profile --sweep $knob"
  "$B/moecard" profile --model "$B/models/mid" --prompt-len 64 --out "$P/sweep" --sweep "$knob" | head -6
done
echo "== profile: the profiler's cost (cpu backend, mid, 2 threads)"
"$B/moecard" profile --model "$B/models/mid" --backend cpu --threads 2 --prompt-len 16 --gen 8 \
  --overhead --out "$P/mid-cpu" --quiet | grep -E "overhead|decode step mean"
