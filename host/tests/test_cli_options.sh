#!/usr/bin/env bash
# test_cli_options.sh - every subcommand fed bad values (non-numbers, trailing junk, negatives,
# zero, overflow, out-of-range ctx, unknown options first/middle/last, bad ids, options that need
# the card on the cpu backend): the exit code (2 usage, 1 input; never a signal), exactly one
# error line naming the option or the file, and no sanitizer report. docs/cli.md, Conventions.
set -u
M=${MOECARD:-build/moecard}
B=${B:-build}
W=$(mktemp -d "${TMPDIR:-/tmp}/cli_options.XXXXXX")
trap 'rm -rf "$W"' EXIT
pass=0; fail=0
"$M" gen --out "$W/m" --preset tiny --seed 5 >/dev/null 2>&1 ||
  { echo "gen failed"; echo "0 passed, 1 failed"; exit 1; }
printf 'The jury said it did find that many laws are outmoded.\n' >"$W/t.txt"
D=$W/m

# t WANT_RC PATTERN args...: moecard args exits WANT_RC, its first stderr line matches PATTERN
# (extended regex), errors are one line (the usage may follow an unknown option).
t() {
  local want=$1 pat=$2; shift 2
  local err="$W/err" rc
  "$M" "$@" >/dev/null 2>"$err" </dev/null; rc=$?
  local first; first=$(head -n 1 "$err")
  local lines; lines=$(grep -vcE '^(usage|  |commands:|options:|$|moecard <command>)' "$err")
  if [ $rc -eq "$want" ] && echo "$first" | grep -qE -- "$pat" && [ "$lines" -le 1 ] &&
     ! grep -qE 'Sanitizer|runtime error' "$err"; then
    pass=$((pass + 1))
  else
    fail=$((fail + 1)); echo "FAIL (exit $rc, want $want) moecard $*: $(head -c 300 "$err")"
  fi
}

for cmd in run bench; do
  P=(--prompt hi); [ $cmd = bench ] && P=()
  t 2 "-n: expected an integer, got 'abc'" $cmd --model "$D" "${P[@]}" -n abc
  t 2 "-n: expected an integer, got '5x'" $cmd --model "$D" "${P[@]}" -n 5x
  t 2 "-n: must be >= 0, got -1" $cmd --model "$D" "${P[@]}" -n -1
  t 2 "--ctx: must be >= 1, got 0" $cmd --model "$D" "${P[@]}" --ctx 0
  t 2 "--ctx: must be >= 1, got -5" $cmd --model "$D" "${P[@]}" --ctx -5
  t 2 "--ctx: expected an integer, got '99999999999'" $cmd --model "$D" "${P[@]}" --ctx 99999999999
  t 2 "max_position_embeddings: the run needs 200000" $cmd --model "$D" "${P[@]}" --ctx 200000 \
    --backend cpu
  t 2 "--threads: must be >= 0, got -3" $cmd --model "$D" "${P[@]}" --threads -3
  t 2 "--threads: expected an integer, got ''" $cmd --model "$D" "${P[@]}" --threads ''
  t 2 "--backend: expected cpu, emu or xrt, got 'foo'" $cmd --model "$D" "${P[@]}" --backend foo
  t 2 "--act: expected fp8 or none" $cmd --model "$D" "${P[@]}" --act int4
  t 2 "unknown option '--bogus'" $cmd --bogus --model "$D" "${P[@]}"
  t 2 "unknown option '--bogus'" $cmd --model "$D" --bogus 1 "${P[@]}"
  t 2 "unknown option '--bogus'" $cmd --model "$D" "${P[@]}" --bogus
  t 2 "--model DIR is required" $cmd "${P[@]}"
  t 2 "--spec: expected mtp or none" $cmd --model "$D" "${P[@]}" --spec yes
  t 2 "--spec-depth: expected 1..6" $cmd --model "$D" "${P[@]}" --spec-depth 9
done
t 2 "--prompt-len: must be >= 1, got 0" bench --model "$D" --prompt-len 0
t 2 "--prompt-len: expected an integer" bench --model "$D" --prompt-len 1e3
t 2 "--expert-slots: needs --backend emu or xrt" run --model "$D" --prompt hi --expert-slots 25%
t 2 "--expert-slots: expected N >= 1, P% \(1..100\)" run --model "$D" --prompt hi --backend emu \
  --expert-slots 150%
t 2 "give --prompt TEXT or --tokens" run --model "$D"
t 1 "$W/nodir/p.json: cannot write there" run --model "$D" --prompt hi --backend emu --profile "$W/nodir/p.json"
t 2 "-r: must be >= 1, got 0" bench --model "$D" -r 0
t 2 "-r: at most 100 repetitions" bench --model "$D" -r 101
t 2 "-r: repetitions are a bench option" run --model "$D" --prompt hi -r 2
t 2 "--seqs: sequences decoded together are a bench option" run --model "$D" --prompt hi --seqs 2
t 2 "--seqs 65: 1..64 sequences" bench --model "$D" --seqs 65
# bench --seqs B on the cpu engine: B sequences decoded together through its rows path
j=$("$M" bench --model "$D" --prompt-len 8 --gen 4 --seqs 3 --json 2>/dev/null | tail -n 1)
if echo "$j" | grep -q '"backend":"cpu",' && echo "$j" | grep -q '"seqs":3,' &&
   echo "$j" | grep -qE '"step_ms":[0-9.]+,"decode_tok_s":[0-9.]+'; then
  pass=$((pass + 1))
else
  fail=$((fail + 1)); echo "FAIL bench --seqs 3 (cpu): $j"
fi
j=$("$M" bench --model "$D" --prompt-len 8 --gen 4 -r 3 --json 2>/dev/null | sed -n 1p)
if echo "$j" | grep -q '"reps":3,' && echo "$j" | grep -qE '"decode_tok_s_sd":[0-9.]+' &&
   "$M" bench --model "$D" --prompt-len 8 --gen 4 -r 2 2>/dev/null | grep -qE '^\| m \| cpu \| .* \| tg4 \(decode\) \| [0-9.]+ \+- [0-9.]+ \|$'; then
  pass=$((pass + 1))
else
  fail=$((fail + 1)); echo "FAIL bench -r: $j"
fi
# bench on the cpu engine: the read bandwidth measured between the decode tokens and after them
j=$("$M" bench --model "$D" --prompt-len 8 --gen 3 --json 2>/dev/null | sed -n 1p)
if echo "$j" | grep -qE '"stream_gbps":[0-9.]*[1-9][0-9.]*,"stream_best_gbps":[0-9.]*[1-9][0-9.]*,"decode_gbps":[0-9.]+,"decode_stream_frac":[0-9.]*[1-9]'; then
  pass=$((pass + 1))
else
  fail=$((fail + 1)); echo "FAIL bench stream figures: $j"
fi
# bench --isa-ab: decode tokens (or --seqs steps) alternating between two SIMD paths
t 2 "--isa-ab: 'nosuch': not a path this CPU runs" bench --model "$D" --isa-ab nosuch
t 2 "--isa-ab: the cpu engine's decode" bench --model "$D" --isa-ab scalar --backend emu
j=$("$M" bench --model "$D" --prompt-len 8 --gen 4 --isa-ab scalar --json 2>/dev/null | sed -n 1p)
if echo "$j" | grep -qE '"ab_isa_a":"[a-z0-9]+","ab_isa_b":"scalar","ab_decode_tok_s_a":[0-9.]*[1-9][0-9.]*,"ab_decode_tok_s_b":[0-9.]*[1-9][0-9.]*,"ab_ratio":[0-9.]*[1-9]' &&
   "$M" bench --model "$D" --prompt-len 8 --gen 4 --seqs 2 --isa-ab scalar 2>/dev/null | grep -qE '^steps with the paths alternating \(2 \+ 2 steps\): [a-z0-9]+ [0-9.]+ tok/s, scalar [0-9.]+ tok/s: [0-9.]+x$'; then
  pass=$((pass + 1))
else
  fail=$((fail + 1)); echo "FAIL bench --isa-ab: $j"
fi
# bench --kernels: the decode products on every SIMD path side by side (cpu engine only)
t 2 "--kernels: the cpu engine's kernels" bench --model "$D" --kernels --backend emu
t 2 "--kernels: the cpu engine's kernels" bench --model "$D" --kernels --seqs 2
j=$("$M" bench --model "$D" --kernels -r 2 --json 2>/dev/null)
n=$(echo "$j" | grep -oE '\{"products":"(attention|ffn_gate_up|ffn_down|lm_head)","rows":(1|4|8),"bytes":[1-9][0-9]*,"read_gbps":[0-9.]*[1-9][0-9.]*,"[a-z0-9]+_gbps":[0-9.]*[1-9]' | wc -l)
if [ "$n" = 12 ] && "$M" bench --model "$D" --kernels -r 1 2>/dev/null | grep -qE '^\| FFN down \| [0-9.]+ \| 8 \| [0-9.]+ \|'; then
  pass=$((pass + 1))
else
  fail=$((fail + 1)); echo "FAIL bench --kernels: $n results: $j"
fi
t 1 "--tokens: bad token id" run --model "$D" --tokens 1,99999
t 1 "--tokens: bad token id" run --model "$D" --tokens 1,-2
t 1 "$W/none: No such file or directory" run --model "$W/none" --prompt hi
t 1 "$W/none/config.json" run --model "$W/none" --tokens 1,2
t 1 "$W/none/config.json" info --model "$W/none"

# tokenize
t 2 "--decode: 99999 is not a token id" tokenize --model "$D" --decode 99999
t 2 "--decode: -5 is not a token id" tokenize --model "$D" --decode -5
t 2 "--decode: '1,x' is not a list of ids" tokenize --model "$D" --decode 1,x
t 1 "$W/none" tokenize --model "$W/none" --text hi

# perplexity
t 2 "--limit: expected an integer, got '5x'" perplexity --model "$D" --file "$W/t.txt" --limit 5x
t 2 "--limit: must be >= 0, got -1" perplexity --model "$D" --file "$W/t.txt" --limit -1
t 2 "--ctx: must be >= 1, got 0" perplexity --model "$D" --file "$W/t.txt" --ctx 0
t 2 "--ctx: expected 2" perplexity --model "$D" --file "$W/t.txt" --ctx 1
t 2 "--file F is required" perplexity --model "$D"
t 2 "unknown option '--prompt'" perplexity --model "$D" --file "$W/t.txt" --prompt x
t 1 "$W/none.txt: No such file" perplexity --model "$D" --file "$W/none.txt"

# cache-sim (a trace of the tiny model first)
"$M" run --model "$D" --tokens 0,5,9,13,17 -n 0 --dump-logits "$W/l.npy" \
  --expert-trace "$W/x.trace" >/dev/null 2>&1
t 2 "--slots: expected N >= 1 or P% \(0..100\], got '200%'" cache-sim --trace "$W/x.trace" --slots 200%
t 2 "--slots: expected N >= 1 or P%" cache-sim --trace "$W/x.trace" --slots 2.5
t 2 "--slots: expected N >= 1 or P%" cache-sim --trace "$W/x.trace" --slots abc
t 2 "--host-gbps: expected a number, got 'abc'" cache-sim --trace "$W/x.trace" --host-gbps abc
t 2 "--link-gbps: expected 0.001..1e\\+06, got '-1'" cache-sim --trace "$W/x.trace" --link-gbps -1
t 2 "--cpu-tok-s: expected a number, got '5x'" cache-sim --trace "$W/x.trace" --cpu-tok-s 5x
t 2 "--seconds: expected 0.01..3600, got '0'" tokenize --model "$D" --bench "$W/t.txt" --seconds 0
t 2 "--seed: \"-5\" is not a number" gen --out "$W/g" --preset tiny --seed -5
t 2 "--expert-host-gbps: expected a number, got '2x'" run --model "$D" --prompt hi --backend emu --expert-slots 50% --expert-host-gbps 2x

t 2 "info: --ctx: expected 1.." info --model "$D" --board "$B/board/u55c.dtb" --ctx 5x
j=$("$M" info --model "$D" --json)
if echo "$j" | "${PYTHON:-/usr/bin/python3}" -c 'import json,sys; d=json.load(sys.stdin); assert d["random_weights"] and d["vocab_size"] == 1024 and d["counts"]["total"]["bytes"] > 0' 2>/dev/null
then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL info --json: $j"; fi

j=$("$M" run --model "$D" --prompt "Hello" -n 5 --spec none --json)
if echo "$j" | "${PYTHON:-/usr/bin/python3}" -c 'import json,sys; d=json.load(sys.stdin); assert len(d["ids"]) == 5 == len(d["token_ms"]) and d["token_ms"] == sorted(d["token_ms"]) and isinstance(d["text"], str) and d["decode_tok_s"] > 0' 2>/dev/null
then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL run --json: $j"; fi

# devices: a fake sysfs with one U55C function (and an Intel one that must not show), then none
F=$W/sysfs; mkdir -p "$F/0000:65:00.1/rom.0" "$F/0000:00:02.0" "$W/nosys"
echo 0x10ee >"$F/0000:65:00.1/vendor"; echo 0x505c >"$F/0000:65:00.1/device"
echo xilinx_u55c_gen3x16_xdma_3_202210_1 >"$F/0000:65:00.1/rom.0/VBNV"; echo 0x8086 >"$F/0000:00:02.0/vendor"
o=$(MOECARD_SYSFS_PCI=$F "$M" devices --boards "$B/board" 2>&1)
if echo "$o" | grep -q "^0000:65:00.1  AMD/Xilinx device 0x505c, driver none, shell xilinx_u55c" &&
   echo "$o" | grep -q "board tree .*u55c.dtb (AMD Alveo U55C)" && ! echo "$o" | grep -q "0000:00:02.0" &&
   echo "$o" | grep -q "XRT"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL devices: $o"; fi
o=$(MOECARD_SYSFS_PCI=$W/nosys "$M" devices --boards "$B/board" 2>&1)
if echo "$o" | grep -q "^no AMD/Xilinx PCIe cards"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL devices (none): $o"; fi
t 2 "devices: unknown option" devices --frob

# the man page: built from every command's --help; man renders it without a warning
MP=$B/moecard.1
cmds=$("$M" --help | awk '/^commands:/ {f=1; next} f && /^  [a-z]/ {print $1}')
miss=""
for c in $cmds; do grep -q "^.SS $c\$" "$MP" 2>/dev/null || miss="$miss $c"; done
for o in $("$M" run --help | awk '/^  -/ {print $1}'); do grep -qF -- "$o" "$MP" 2>/dev/null || miss="$miss $o"; done
if [ -s "$MP" ] && [ -z "$miss" ]; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL $MP lacks:$miss"; fi
if command -v man >/dev/null 2>&1; then
  w=$(MANWIDTH=100 man -l "$MP" 2>&1 >/dev/null)
  if [ -z "$w" ]; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL man -l $MP: $w"; fi
fi

# a generated model says its weights are random
if "$M" info --model "$D" | head -n 1 | grep -q "random weights (moecard gen)"; then pass=$((pass + 1))
else fail=$((fail + 1)); echo "FAIL info does not mark the random model: $("$M" info --model "$D" | head -n 1)"; fi

# every command's --help: exit 0, an options list, each option with its default in brackets
for c in $("$M" --help | awk '/^commands:/ {f=1; next} f && /^  [a-z]/ {print $1}'); do
  h=$("$M" "$c" --help 2>&1); rc=$?
  nodef=$(echo "$h" | awk '/^options:/ {f=1; next} f && /^  -/ && !/\]$/')
  if [ $rc = 0 ] && echo "$h" | grep -q '^options:' && [ -z "$nodef" ]; then pass=$((pass + 1))
  else fail=$((fail + 1)); echo "FAIL $c --help (exit $rc): ${nodef:-no options list}"; fi
done

# commands
t 2 "unknown command 'frobnicate'" frobnicate
if "$M" --version | grep -qE '^moecard [0-9a-z.]+ \(commit [0-9a-z-]+\)' &&
   "$M" --version | grep -qE '^isa: (scalar|avx2|avx512|avx512bf16)'; then pass=$((pass + 1))
else fail=$((fail + 1)); echo "FAIL --version: $("$M" --version 2>&1)"; fi

# gen from another folder finds the tokenizer cache next to the program (when make deps made it)
MA=$(readlink -f "$M")
if [ -s "$(dirname "$MA")/cache/deepseek_v3_tokenizer/tokenizer.json" ] ||
   [ -s "$(dirname "$MA")/../cache/deepseek_v3_tokenizer/tokenizer.json" ]; then
  if (cd "$W" && "$MA" gen --preset tiny --out elsewhere >/dev/null 2>&1) &&
     [ -n "$("$M" run --model "$W/elsewhere" --prompt "Hello" -n 2 --spec none 2>/dev/null)" ]; then
    pass=$((pass + 1))
  else
    fail=$((fail + 1)); echo "FAIL gen from another folder: no tokenizer or run --prompt failed"
  fi
else
  echo "SKIP: no tokenizer cache next to $MA (make deps): gen from another folder not checked"
fi

# --ignore-eos: sampled at temp 1 this run ends on the EOS (id 1), here after 1111 tokens; with the
# flag it runs to -n without one (and chat takes the flag at the end of its line)
ids() { "$M" run --model "$D" --tokens 1,2,3 -n 3000 --temp 1 --seed 1 "$@" --json 2>/dev/null |
  "${PYTHON:-/usr/bin/python3}" -c 'import json,sys; d=json.load(sys.stdin)["ids"]; print(len(d), d.count(1))'; }
a=$(ids); b=$(ids --ignore-eos)
if [ "${a#* }" = 1 ] && [ "${a% *}" -lt 3000 ] && [ "$b" = "3000 0" ]; then pass=$((pass + 1)); else
  fail=$((fail + 1)); echo "FAIL --ignore-eos: without '$a' (want 'N<3000 1'), with '$b' (want '3000 0')"; fi
if printf '/quit\n' | "$M" chat --model "$D" --ignore-eos >/dev/null 2>&1; then pass=$((pass + 1)); else
  fail=$((fail + 1)); echo "FAIL chat --ignore-eos as its last option"; fi

# profile and profile diff
t 2 "profile: --out DIR is required" profile --model "$D"
t 2 "profile: --gen: expected an integer, got 'abc'" profile --model "$D" --out "$W/p" --gen abc
t 2 "profile: --set: expected KEY=VALUE, got 'hbm_gbps'" profile --model "$D" --out "$W/p" --set hbm_gbps
t 1 "--set hbm_gbps=-3: not a positive number" profile --model "$D" --out "$W/p" --set hbm_gbps=-3
t 2 "profile: --sweep: expected KEY=V1,V2" profile --model "$D" --out "$W/p" --sweep foo
t 2 "--head: expected fp8 or bf16, got 'int4'" run --model "$D" --prompt hi --head int4
t 2 "profile diff: expected two profiles" profile diff "$W/p"
t 2 "profile diff: --tol: expected a number, got 'x'" profile diff "$W/p" "$W/p" --tol x
t 2 "profile diff: --only: expected card, host or all" profile diff "$W/p" "$W/p" --only gpu

echo "$pass passed, $fail failed"
[ $fail = 0 ]
