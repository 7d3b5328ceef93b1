#!/usr/bin/env bash
# test_generate.sh - text in / text out end to end: `moecard gen` puts the DeepSeek-V3 tokenizer
# (from `make deps`) beside a tiny model with the real vocab (129280), `moecard run --prompt` streams
# text that equals the batch decode of the same ids run through --tokens, speculative decoding
# (--spec mtp, depth 1 and 2) prints exactly the plain greedy output, --stop cuts before the stop
# string, --chat runs, sampling is reproducible per --seed, `bench --spec mtp --json` reports
# acceptance / tokens per forward / speed-up, and errors are one line. Skips (and says so) when the
# tokenizer cache is missing. Ends with "N passed, N failed".
set -u
M=${MOECARD:-build/moecard}
DIR=${MOECARD_TOKENIZER_DIR:-build/cache/deepseek_v3_tokenizer}
PY=${PYTHON:-/usr/bin/python3}
pass=0; fail=0
ok() { pass=$((pass + 1)); echo "ok   $*"; }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }
if [ ! -s "$DIR/tokenizer.json" ]; then
  echo "SKIP: $DIR/tokenizer.json is missing (run \`make deps\`): skipped the text generation tests"
  echo "0 passed, 0 failed"
  exit 0
fi
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
export MOECARD_TOKENIZER_DIR=$DIR
MD=$tmp/m
if "$M" gen --out "$MD" --preset tiny --seed 7 --set vocab_size=129280 >"$tmp/gen.log" 2>&1 &&
  [ -s "$MD/tokenizer.json" ] && [ -s "$MD/tokenizer_config.json" ]; then
  ok "gen writes tokenizer.json and tokenizer_config.json beside the model"
else
  bad "gen with the tokenizer: $(tail -n 2 "$tmp/gen.log")"
  echo "$pass passed, $fail failed"; exit 1
fi

P="The capital of France is"
N=48; [ "${SAN:-}" = 1 ] && N=24 # tokens per run (fewer under the sanitizers)
run() { "$M" run --model "$MD" "$@" 2>"$tmp/err"; }
plain=$(run --prompt "$P" -n $N --spec none)
spec1=$(run --prompt "$P" -n $N --spec mtp --stats); st1=$(cat "$tmp/err")
spec2=$(run --prompt "$P" -n $N --spec mtp --spec-depth 2)
if [ -n "$plain" ] && [ "$plain" = "$spec1" ] && [ "$plain" = "$spec2" ]; then
  ok "--prompt greedy: --spec mtp (depth 1, 2) prints the same ${#plain} characters ($N tokens) as --spec none"
else
  bad "--prompt greedy differs: none '$plain' / mtp '$spec1' / depth 2 '$spec2'"
fi
if echo "$st1" | grep -q "spec mtp depth 1: accepted [0-9]*/[0-9]* drafts"; then
  ok "--stats: $(echo "$st1" | sed 's/.*spec mtp/spec mtp/')"
else
  bad "--stats line: '$st1'"
fi

# the streamed text equals the batch decode of the same generation run from ids
ids=$("$M" tokenize --model "$MD" --text "$P")
gen_ids=$(run --tokens "$ids" -n 12 --spec none)
dec=$("$M" tokenize --model "$MD" --decode "$(echo "$gen_ids" | tr ' ' ',')" 2>/dev/null)
txt=$(run --prompt "$P" -n 12 --spec none)
if [ -n "$gen_ids" ] && [ "$dec" = "$txt" ]; then
  ok "--prompt (BOS + ids $ids) streams the batch decode of --tokens' ids: '$txt'"
else
  bad "--prompt vs --tokens+decode: '$txt' vs '$dec' (ids $gen_ids)"
fi
t_none=$(run --tokens "$ids" -n 40 --spec none); t_mtp=$(run --tokens "$ids" -n 40 --spec-depth 2)
if [ "$t_none" = "$t_mtp" ] && [ "$(echo "$t_none" | wc -w)" = 40 ]; then
  ok "--tokens: 40 ids identical with --spec none and the default (mtp, depth 2)"
else
  bad "--tokens spec differs: '$t_none' vs '$t_mtp'"
fi
# --head-screen (the cpu engine's default): greedy ids from the 8-bit screen of lm_head equal the
# full BF16 head's over this random head's 129280 rows; bench --screen-ab runs both side by side
t_full=$(run --tokens "$ids" -n 40 --spec none --head-screen off)
if [ -n "$t_full" ] && [ "$t_none" = "$t_full" ]; then
  ok "--head-screen on and off: the same 40 greedy ids"
else
  bad "--head-screen differs: on '$t_none' / off '$t_full'"
fi
"$M" bench --model "$MD" --backend cpu --prompt-len 8 --gen 16 --spec none --screen-ab --json \
  >"$tmp/sab.json" 2>"$tmp/sab.err"
r=$("$PY" -c "
import json; j = json.load(open('$tmp/sab.json'))
c, n, f = j['head_screen_cands_per_row'], j['head_screen_rows'], j['head_screen_full_rows']
good = n >= 8 and 1 <= c < 1000 and f < n and j['screen_ab_tok_s_screened'] > 0 and j['screen_ab_tok_s_full'] > 0
print(int(good), '%d rows screened, %.1f candidates a row, %d on the full head, screened/full %.2fx' % (n, c, f, j['screen_ab_ratio']))" 2>&1)
[ "${r%% *}" = 1 ] && ok "bench --screen-ab --json: ${r#* }" || bad "bench --screen-ab: $r $(head -2 "$tmp/sab.err")"
run --tokens "$ids" -n 2 --head-screen maybe >/dev/null; rc=$?
[ $rc = 2 ] && grep -q "head-screen: expected on or off" "$tmp/err" && ok "--head-screen maybe: usage error" ||
  bad "--head-screen maybe: exit $rc $(cat "$tmp/err")"

# --stop: a piece of the plain output (from its middle) ends the output right before it
stop=$("$PY" -c 'import sys; s=sys.argv[1]; w=s[len(s)//2:len(s)//2+3]; print(w)' "$plain")
want=$("$PY" -c 'import sys; s,w=sys.argv[1],sys.argv[2]; print(s[:s.index(w)])' "$plain" "$stop")
got=$(run --prompt "$P" -n $N --stop "$stop" --stop "never-there")
if [ -n "$stop" ] && [ "$got" = "$want" ]; then
  ok "--stop '$stop': output ends before it (${#got} of ${#plain} characters)"
else
  bad "--stop '$stop': got '$got', want '$want'"
fi

# --chat, sampling reproducibility
c1=$(run --prompt "Hi" --chat --system "Be brief." -n 10); rc=$?
if [ $rc = 0 ] && [ -n "$c1" ]; then ok "--chat --system: '$c1'"; else bad "--chat (exit $rc)"; fi
s1=$(run --prompt "$P" -n 24 --temp 0.9 --top-p 0.95 --top-k 50 --seed 11)
s2=$(run --prompt "$P" -n 24 --temp 0.9 --top-p 0.95 --top-k 50 --seed 11)
s3=$(run --prompt "$P" -n 24 --temp 0.9 --top-p 0.95 --top-k 50 --seed 12)
if [ -n "$s1" ] && [ "$s1" = "$s2" ] && [ "$s1" != "$s3" ]; then
  ok "sampling: --seed 11 twice gives the same text, --seed 12 another"
else
  bad "sampling reproducibility: '$s1' / '$s2' / '$s3'"
fi

# bench --spec mtp on the tiny preset (same run: plain vs speculative)
"$M" gen --out "$tmp/t" --preset tiny --seed 3 >/dev/null 2>&1
b=$("$M" bench --model "$tmp/t" --prompt-len 16 --gen $N --spec mtp --json 2>&1)
if echo "$b" | "$PY" -c '
import json, sys
j = json.loads(sys.stdin.readline())
assert j["spec"] == "mtp" and j["spec_greedy_match"] is True, j
assert 0 <= j["acceptance"] <= 1 and 1 <= j["tokens_per_forward"] <= 2, j
assert j["spec_speedup"] > 0 and j["decode_tok_s"] > 0 and j["prefill_tok_s"] > 0, j
print("acceptance %.3f, %.3f tokens/forward, speed-up %.2fx" % (j["acceptance"],
      j["tokens_per_forward"], j["spec_speedup"]))' >"$tmp/b" 2>&1; then
  ok "bench --spec mtp --json: $(cat "$tmp/b") (random model: low acceptance expected)"
else
  bad "bench --spec mtp: $b $(cat "$tmp/b")"
fi
b0=$("$M" bench --model "$tmp/t" --prompt-len 8 --gen 4 --json 2>&1)
if echo "$b0" | grep -q '"decode_tok_s"' && ! echo "$b0" | grep -q '"spec"'; then
  ok "bench --json without --spec keeps its fields"
else
  bad "bench --json: $b0"
fi

# errors
"$M" gen --out "$tmp/nomtp" --preset tiny --seed 3 --set num_nextn_predict_layers=0 >/dev/null 2>&1
"$M" run --model "$tmp/nomtp" --tokens 1,2,3 -n 4 --spec mtp >/dev/null 2>"$tmp/e1"; r1=$?
d1=$("$M" run --model "$tmp/nomtp" --tokens 1,2,3 -n 4 2>/dev/null); r1b=$?
"$M" run --model "$MD" --prompt x --spec-depth 0 >/dev/null 2>"$tmp/e2"; r2=$?
rm -f "$tmp/nomtp/tokenizer.json"
"$M" run --model "$tmp/nomtp" --prompt x -n 2 >/dev/null 2>"$tmp/e3"; r3=$?
if [ $r1 = 1 ] && grep -q "MTP" "$tmp/e1" && [ $r1b = 0 ] && [ -n "$d1" ] && [ $r2 = 2 ] &&
  [ $r3 = 1 ] && grep -q "tokenizer.json" "$tmp/e3" && [ "$(wc -l <"$tmp/e3")" = 1 ]; then
  ok "errors: --spec mtp without MTP (exit 1; default falls back to plain), --spec-depth 0 (2), --prompt without tokenizer.json (1, one line)"
else
  bad "errors: $r1 $(cat "$tmp/e1") / $r1b / $r2 $(cat "$tmp/e2") / $r3 $(cat "$tmp/e3")"
fi
# --head fp8 (cpu engine): the default model's logits within FP8 noise of the bf16 head (relative
# rms under 5% of the logits' spread, the top token kept on at least 90% of the rows); a card
# backend refuses it in one line
TB=${DEFAULT_MODEL:-models/tiny-brown}
if [ -s "$TB/config.json" ]; then
  P="The jury further said in term-end presentments that the City Executive Committee deserves praise."
  for h in bf16 fp8; do
    "$M" run --model "$TB" --prompt "$P" -n 0 --spec none --head $h --dump-logits "$tmp/head_$h.npy" \
      >/dev/null 2>"$tmp/head_$h.err" || bad "--head $h: $(head -2 "$tmp/head_$h.err")"
  done
  r=$($PY -c "
import numpy as np
a, b = np.load('$tmp/head_bf16.npy'), np.load('$tmp/head_fp8.npy')
rel = np.sqrt(((a - b) ** 2).mean()) / a.std(); agree = (a.argmax(1) == b.argmax(1)).mean()
print(int(0 < rel < 0.05 and agree >= 0.9), 'relative rms %.4f, top token kept on %.0f%% of %d rows' % (rel, 100 * agree, len(a)))" 2>&1)
  [ "${r%% *}" = 1 ] && ok "--head fp8 against bf16: ${r#* }" || bad "--head fp8: $r"
  "$M" run --model "$TB" --prompt hi --backend emu --head fp8 >/dev/null 2>"$tmp/he"; rc=$?
  [ $rc = 2 ] && grep -q "head fp8: needs --backend cpu" "$tmp/he" && ok "--head fp8 on the card: usage error" ||
    bad "--head fp8 on emu: exit $rc $(cat "$tmp/he")"
  # make run's decoding (greedy with --repeat-penalty 1.2) on the default model: the same text
  # with --spec mtp as with --spec none on both backends, and not plain greedy's
  n=24; [ "${SAN:-}" = 1 ] && n=12
  for be in cpu emu; do
    pl=$("$M" run --model "$TB" --backend $be --prompt "The jury said that" -n $n --spec none 2>/dev/null)
    p0=$("$M" run --model "$TB" --backend $be --prompt "The jury said that" -n $n --spec none \
      --repeat-penalty 1.2 2>/dev/null)
    p1=$("$M" run --model "$TB" --backend $be --prompt "The jury said that" -n $n \
      --repeat-penalty 1.2 --stats 2>"$tmp/rp.err")
    if [ -n "$p0" ] && [ "$p0" = "$p1" ] && [ "$p0" != "$pl" ] &&
       grep -q "accepted [1-9][0-9]*/" "$tmp/rp.err"; then
      ok "--repeat-penalty 1.2 on $be: --spec mtp prints --spec none's text, not plain greedy's"
    else
      bad "--repeat-penalty 1.2 on $be: none '$p0' / mtp '$p1' / greedy '$pl'"
    fi
  done
fi
echo "$pass passed, $fail failed"
[ $fail = 0 ]
