#!/usr/bin/env bash
# test_chat.sh - `moecard chat` on a tiny model with the real DeepSeek-V3 vocab and tokenizer:
#   1. driven through stdin: two turns, /stats after each (the context grows, the second turn
#      prefills only its own tokens, not the conversation again), /reset (context back to BOS),
#      /quit (later lines ignored); greedy replies equal `moecard run --chat` for the first turn;
#   2. driven through tmux (a terminal: the "> " prompt appears): type two turns, read the screen,
#      /quit ends the session.
# Skips (and says so) when the tokenizer cache or tmux is missing. Ends with "N passed, N failed".
set -u
M=${MOECARD:-build/moecard}
DIR=${MOECARD_TOKENIZER_DIR:-build/cache/deepseek_v3_tokenizer}
pass=0; fail=0
ok() { pass=$((pass + 1)); echo "ok   $*"; }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }
if [ ! -s "$DIR/tokenizer.json" ]; then
  echo "SKIP: $DIR/tokenizer.json is missing (run \`make deps\`): skipped the chat tests"
  echo "0 passed, 0 failed"
  exit 0
fi
tmp=$(mktemp -d)
sock="moecard-chat-test-$$"
trap 'tmux -L "$sock" kill-server >/dev/null 2>&1; rm -rf "$tmp"' EXIT
MD=$tmp/m
if ! MOECARD_TOKENIZER_DIR=$DIR "$M" gen --out "$MD" --preset tiny --seed 9 --set vocab_size=129280 \
  >"$tmp/gen.log" 2>&1; then
  bad "gen: $(tail -n 2 "$tmp/gen.log")"; echo "$pass passed, $fail failed"; exit 1
fi

# 1. stdin
printf 'Hello there\n/stats\nWhat is two plus two?\n/stats\n/reset\n/stats\n/quit\nnot read\n' |
  "$M" chat --model "$MD" -n 10 >"$tmp/out" 2>"$tmp/err"; rc=$?
stats=$(grep '^\[stats\]' "$tmp/out")
ctx() { echo "$stats" | sed -n "${1}p" | sed -E 's/.*context ([0-9]+)\/.*/\1/'; }
pre() { echo "$stats" | sed -n "${1}p" | sed -E 's/.*prefill ([0-9]+) tokens.*/\1/'; }
replies=$(grep -v '^\[' "$tmp/out")
nrep=$(echo "$replies" | grep -c .)
if [ $rc = 0 ] && [ "$(echo "$stats" | wc -l)" = 3 ] && [ "$nrep" = 2 ] && grep -q '^\[reset\]' "$tmp/out"; then
  ok "stdin: two replies, three /stats, /reset, /quit (the line after it unread), exit 0"
else
  bad "stdin session (exit $rc): $(cat "$tmp/out") $(cat "$tmp/err")"
fi
c1=$(ctx 1); c2=$(ctx 2); c3=$(ctx 3); p1=$(pre 1); p2=$(pre 2)
n2=$("$M" tokenize --model "$MD" --text 'What is two plus two?' --no-bos | tr ',' '\n' | wc -l)
d=$((p2 - p1))
# turn 2 adds <｜end▁of▁sentence｜> (when the reply did not end with it) <｜User｜> text <｜Assistant｜>;
# speculation re-feeds at most the two tokens before the pending one
if [ "$c2" -gt "$c1" ] && [ $d -ge $((n2 + 2)) ] && [ $d -le $((n2 + 5)) ] && [ $d -lt "$c1" ] && [ "$c3" = 1 ]; then
  ok "KV cache kept: context $c1 -> $c2 tokens, turn 2 prefilled $d tokens ($n2 of text + template), /reset -> $c3"
else
  bad "context/prefill: c1 $c1 c2 $c2 c3 $c3 prefill $p1 -> $p2 (text $n2 tokens)"
fi
first=$(echo "$replies" | head -n 1)
want=$("$M" run --model "$MD" --prompt 'Hello there' --chat -n 10 2>/dev/null)
if [ -n "$first" ] && [ "$first" = "$want" ]; then
  ok "first reply equals run --chat: '$first'"
else
  bad "first reply '$first' vs run --chat '$want'"
fi

# 2. tmux
if ! command -v tmux >/dev/null; then
  echo "SKIP: tmux missing: skipped the terminal test"
else
  T() { tmux -L "$sock" "$@"; }
  T new-session -d -s chat -x 160 -y 40 "$M chat --model $MD -n 6; echo CHAT-EXITED; sleep 30"
  wait_for() { # pattern, tries
    for _ in $(seq 1 "${2:-100}"); do
      T capture-pane -p -t chat 2>/dev/null | grep -q -- "$1" && return 0
      sleep 0.1
    done
    return 1
  }
  okp=1
  wait_for '^>' 300 || okp=0
  T send-keys -t chat 'Hello from tmux' Enter
  T send-keys -t chat '/stats' Enter
  wait_for '1 turns' 300 || okp=0
  T send-keys -t chat 'A second turn' Enter
  T send-keys -t chat '/stats' Enter
  wait_for '2 turns' 300 || okp=0
  screen=$(T capture-pane -p -t chat)
  T send-keys -t chat '/quit' Enter
  wait_for 'CHAT-EXITED' 100 || okp=0
  prompts=$(echo "$screen" | grep -c '^> ')
  if [ $okp = 1 ] && [ "$prompts" -ge 4 ]; then
    ok "tmux: prompt shown, two turns typed, /stats read from the screen, /quit exits"
  else
    bad "tmux session: $screen"
  fi
fi
echo "$pass passed, $fail failed"
[ $fail = 0 ]
