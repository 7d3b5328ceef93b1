#!/usr/bin/env bash
# test_tokenizer_cli.sh - `moecard tokenize` end to end with the DeepSeek-V3 tokenizer from
# `make deps` (build/cache/deepseek_v3_tokenizer): ids, --json pieces, --tokenizer FILE, --decode,
# --bench (must reach 5 MB/s on English text in the release build), usage and load errors.
# Skips (and says so) when the tokenizer cache is missing. Ends with "N passed, N failed".
set -u
M=${MOECARD:-build/moecard}
DIR=${MOECARD_TOKENIZER_DIR:-build/cache/deepseek_v3_tokenizer}
PY=${PYTHON:-/usr/bin/python3}
pass=0; fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
expect_eq() { # name got expected
  if [ "$2" = "$3" ]; then ok; else bad "$1: got '$2', expected '$3'"; fi
}
if [ ! -s "$DIR/tokenizer.json" ]; then
  echo "SKIP: $DIR/tokenizer.json is missing (run \`make deps\`): skipped the tokenize CLI tests"
  echo "0 passed, 0 failed"
  exit 0
fi
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

# ids (BOS 0 first), and --no-bos; expectations from host/tests/test_tokenizer_expected.json
expect_eq "ids" "$($M tokenize --model "$DIR" --text 'Hello, world!')" "0,19923,14,2058,3"
expect_eq "no-bos" "$($M tokenize --model "$DIR" --text 'Hello, world!' --no-bos)" "19923,14,2058,3"
expect_eq "--tokenizer FILE" "$($M tokenize --tokenizer "$DIR/tokenizer.json" --text '1234567 abc' --no-bos)" \
  "6895,18009,25,71490"
expect_eq "special tokens" "$($M tokenize --model "$DIR" --text '<｜User｜>hi<｜Assistant｜>' --no-bos)" \
  "128803,6366,128804"

# --json: ids, tokens and pieces line up and the pieces concatenate to the text
$M tokenize --model "$DIR" --text 'Hello wörld 🙂 你好' --json > "$tmp/j.json"
out=$("$PY" - "$tmp/j.json" <<'PYEOF'
import json, sys
d = json.load(open(sys.argv[1]))
n = len(d["ids"])
ok = n == len(d["tokens"]) == len(d["pieces"]) and d["ids"][0] == 0
print("ok" if ok and "".join(d["pieces"][1:]) == "Hello wörld 🙂 你好" and d["tokens"][2] == "Ġw" else
      "bad %s" % d)
PYEOF
)
expect_eq "--json" "$out" "ok"

# --decode (ids from the fixture), round trip through --file
expect_eq "--decode" "$($M tokenize --model "$DIR" --decode 30594,303,3427)" "你好，世界"
printf 'line one\r\nline two\n\ttabbed  spaces' > "$tmp/in.txt"
ids=$($M tokenize --model "$DIR" --file "$tmp/in.txt" --no-bos)
$M tokenize --model "$DIR" --decode "$ids" | head -c -1 > "$tmp/back.txt"
if cmp -s "$tmp/in.txt" "$tmp/back.txt"; then ok; else bad "--file/--decode round trip differs"; fi

# errors: usage (exit 2), missing tokenizer (exit 1, names the path)
$M tokenize --model "$DIR" > /dev/null 2>&1; expect_eq "usage exit" "$?" "2"
err=$($M tokenize --model "$tmp/nothing" --text x 2>&1); rc=$?
if [ $rc = 1 ] && echo "$err" | grep -q "$tmp/nothing"; then ok; else bad "missing dir: rc $rc, '$err'"; fi
echo '{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a b"]}}' > "$tmp/bad.json"
err=$($M tokenize --tokenizer "$tmp/bad.json" --text x 2>&1); rc=$?
if [ $rc = 1 ] && echo "$err" | grep -q "bad.json" && echo "$err" | grep -q "model.vocab"; then ok
else bad "bad tokenizer.json: rc $rc, '$err'"; fi

# speed: English text (generated from a word list with punctuation), one thread
"$PY" - "$tmp/en.txt" <<'PYEOF'
import random, sys
random.seed(1)
words = ("the of and to in is that for it as was with be by on not he this are or his from at which but "
         "have an they you were her she there been one all we their has would when if so no will can more "
         "about said time people could after first new years into some two only other also what over "
         "model tokenizer throughput expert weights attention layer quantized memory bandwidth card "
         "because through between however government information development different").split()
out = []
for i in range(60000):
    w = random.choice(words)
    if random.random() < 0.08: w = w.capitalize()
    out.append(w)
    r = random.random()
    if r < 0.06: out.append(",")
    elif r < 0.10: out.append(".\n" if random.random() < 0.3 else ". ")
text = " ".join(out).replace(" ,", ",").replace(" .", ".")
open(sys.argv[1], "w").write(text)
PYEOF
line=$($M tokenize --model "$DIR" --bench "$tmp/en.txt" --seconds 1)
echo "$line"
mbs=$(echo "$line" | sed -E 's/.*: ([0-9.]+) MB\/s, .*/\1/')
first=$(echo "$line" | sed -E 's/.*first pass ([0-9.]+) MB\/s.*/\1/')
if [ "${SAN:-}" = 1 ]; then
  echo "note: sanitizer build, speed not checked"
  ok
elif awk -v a="$mbs" -v b="$first" 'BEGIN { exit !(a >= 5 && b >= 5) }'; then ok
else bad "tokenize speed $mbs MB/s (first pass $first MB/s), need >= 5"; fi

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
