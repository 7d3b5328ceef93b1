#!/usr/bin/env bash
# test_chat_tmux.sh - `moecard chat` on a real terminal (tmux): the banner; Ctrl-C in the middle of
# a reply stops it ("[stopped]") and returns to the prompt, and the next message works; /help lists
# the commands; an unknown /command is refused, not sent to the model; no control token
# ("<｜User｜>" ...) reaches the screen; the line editor (libedit) edits a line (Backspace, Left)
# and Up recalls the session's lines; Ctrl-D exits 0. Skips without tmux. The replies cannot end
# before the Ctrl-C however slow the machine: a 24-layer tiny model (~130 tokens/s on one core),
# --ignore-eos and room for 16000 tokens, so a reply runs for minutes unless stopped.
set -u
M=${MOECARD:-build/moecard}
pass=0; fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
if ! command -v tmux >/dev/null 2>&1; then
  echo "SKIP: tmux is not installed: the terminal chat test did not run"
  echo "0 passed, 0 failed"; exit 0
fi
W=$(mktemp -d "${TMPDIR:-/tmp}/chat_tmux.XXXXXX")
S="moecard-chat-$$"
export TMUX_TMPDIR=$W   # a private tmux server
trap 'tmux kill-server 2>/dev/null; rm -rf "$W"' EXIT
"$M" gen --out "$W/m" --preset tiny --seed 5 --set num_hidden_layers=24 >/dev/null 2>&1 || { echo "gen failed"; echo "0 passed, 1 failed"; exit 1; }
MA=$(readlink -f "$M")
tmux new-session -d -s "$S" -x 160 -y 50 \
  "$MA chat --model $W/m -n 100000 --ctx 16384 --ignore-eos --spec none 2>$W/err; echo EXIT=\$?; sleep 60"
screen() { tmux capture-pane -p -J -t "$S" -S -2000; }
# wait_for PATTERN [COUNT]: until the screen shows PATTERN at least COUNT times (20 s at most)
wait_for() {
  local n=${2:-1}
  for _ in $(seq 400); do
    [ "$(screen | grep -cF -- "$1")" -ge "$n" ] && return 0
    sleep 0.05
  done
  return 1
}
# reply_started LINE: the screen shows text after the turn's line (the reply is streaming)
reply_started() {
  for _ in $(seq 400); do
    screen | awk -v l="> $1" 'f && NF {found=1} $0 == l {f=1} END {exit !found}' && return 0
    sleep 0.02
  done
  return 1
}

if wait_for "[commands]"; then ok; else bad "no banner: $(screen | head -5) $(cat "$W/err")"; fi
tmux send-keys -t "$S" "hello" Enter
if reply_started "hello"; then ok; else bad "the reply to 'hello' did not start"; fi
tmux send-keys -t "$S" C-c
if wait_for "[stopped]" && wait_for "> " 2; then ok; else bad "Ctrl-C did not stop the reply: $(screen | tail -5)"; fi
tmux send-keys -t "$S" "/help" Enter
if wait_for "[commands]" 2; then ok; else bad "/help: $(screen | tail -3)"; fi
tmux send-keys -t "$S" "/frob" Enter
if wait_for "[unknown command /frob"; then ok; else bad "/frob: $(screen | tail -3)"; fi
tmux send-keys -t "$S" "a second message" Enter
if reply_started "a second message"; then ok; else bad "the next message got no reply after Ctrl-C"; fi
tmux send-keys -t "$S" C-c
if wait_for "[stopped]" 2; then ok; else bad "the second Ctrl-C: $(screen | tail -3)"; fi
tmux send-keys -t "$S" "/stats" Enter
if wait_for "2 turns"; then ok; else bad "/stats after two stopped replies: $(screen | grep stats)"; fi
# line editing: "/hepl" mended with two Backspaces, "/sats" with three Lefts and a "t"
tmux send-keys -t "$S" "/hepl" BSpace BSpace "lp" Enter
if wait_for "[commands]" 3; then ok; else bad "Backspace editing: $(screen | tail -3)"; fi
tmux send-keys -t "$S" "/sats" Left Left Left "t" Enter
if wait_for "2 turns" 2; then ok; else bad "Left-arrow editing: $(screen | tail -3)"; fi
# history: Up twice is "/help" (the line before the last), Up once more then Down is "/stats"
tmux send-keys -t "$S" Up Up Enter
if wait_for "[commands]" 4; then ok; else bad "Up Up did not recall /help: $(screen | tail -3)"; fi
tmux send-keys -t "$S" Up Up Up Down Enter
if wait_for "2 turns" 3; then ok; else bad "Up/Down did not recall /stats: $(screen | tail -3)"; fi
if screen | grep -qF "｜"; then bad "a control token reached the screen: $(screen | grep -F "｜" | head -2)"; else ok; fi
tmux send-keys -t "$S" C-d
if wait_for "EXIT=0"; then ok; else bad "Ctrl-D did not exit 0: $(screen | tail -3) $(cat "$W/err")"; fi
if grep -qE 'Sanitizer|runtime error' "$W/err"; then bad "sanitizer: $(head -5 "$W/err")"; else ok; fi
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
