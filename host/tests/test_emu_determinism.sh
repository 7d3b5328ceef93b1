#!/usr/bin/env bash
# test_emu_determinism.sh - the emulated card's modeled time does not depend on host load: the
# same runs of `moecard run --backend emu` (a prefill + decode with MTP speculation, and a run
# with the expert cache, its policy and detached prefetch fills) on an idle host and again with
# four busy-loop CPU hogs started by this test must give identical card slices in the --profile
# traces (every command's modeled card-clock start and duration, to the nanosecond; the host's
# slices are measured and may differ) and identical modeled totals
# (--stats). The clock rule it checks is in host/backend/backend_emu.c and docs/testing.md.
# Env: MOECARD (the binary), B (build dir for temporaries), SAN (1: shorter runs).
set -u
MOECARD=${MOECARD:-build/moecard}
B=${B:-build}
mkdir -p "$B/tmp"
W=$(mktemp -d "$B/tmp/emu_determinism.XXXXXX")
hogs=()
stop_hogs() {
  for p in "${hogs[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${hogs[@]}"; do wait "$p" 2>/dev/null; done
  hogs=()
}
trap 'stop_hogs; rm -rf "$W"' EXIT
pass=0; fail=0
ok() { echo "ok   $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1"; fail=$((fail + 1)); }

"$MOECARD" gen --out "$W/tiny" --preset tiny --seed 5 >/dev/null ||
  { echo "gen failed"; echo "0 passed, 1 failed"; exit 1; }
export MOECARD_BOARD="$B/board/emu.dtb"
N=6; [ "${SAN:-}" = 1 ] && N=2

# run NAME TAG ARGS...: one emu run; its profile and its modeled stats lines go to $W/NAME.TAG.*
run() {
  local name=$1 tag=$2; shift 2
  "$MOECARD" run --model "$W/tiny" --backend emu --profile "$W/$name.$tag.json" --stats "$@" \
    >"$W/$name.$tag.out" 2>&1 || { echo "run $name ($tag) failed:"; tail -5 "$W/$name.$tag.out"; return 1; }
  grep -E 'modeled card|modeled link|commands|671B' "$W/$name.$tag.out" >"$W/$name.$tag.model"
  # the card's slices: name, card-clock start (ns) and duration, in order
  ${PYTHON:-python3} -c '
import json, sys
for e in json.load(open(sys.argv[1]))["traceEvents"]:
    if e["ph"] == "X" and "card_ns" in e["args"]:
        print(e["name"], e["args"]["card_ns"], e["dur"], e["tid"])' "$W/$name.$tag.json" \
    >"$W/$name.$tag.card" || return 1
}
cases=(decode cache)
args_decode=(--tokens 0,17,42,99,5,311,7 -n "$N" --spec mtp)
args_cache=(--tokens 0,17,42,99,5,311,7,1000,3,64 -n "$N" --expert-slots 25% --expert-policy lfu
            --expert-prefetch)

for c in "${cases[@]}"; do
  a="args_$c[@]"
  run "$c" idle "${!a}" || bad "$c: idle run"
done
for i in 1 2 3 4; do
  ( while :; do :; done ) &
  hogs+=($!)
done
for c in "${cases[@]}"; do
  a="args_$c[@]"
  run "$c" hog "${!a}" || bad "$c: run under 4 CPU hogs"
done
stop_hogs

for c in "${cases[@]}"; do
  n=$(wc -l <"$W/$c.idle.card" 2>/dev/null)
  if [ "${n:-0}" -gt 0 ] && cmp -s "$W/$c.idle.card" "$W/$c.hog.card"; then
    ok "$c: $n commands' modeled t_start/t_end identical idle and under 4 CPU hogs"
  else
    bad "$c: modeled command times differ under CPU load (first difference below)"
    diff "$W/$c.idle.card" "$W/$c.hog.card" | head -6
  fi
  if [ -s "$W/$c.idle.model" ] && cmp -s "$W/$c.idle.model" "$W/$c.hog.model"; then
    ok "$c: modeled totals identical ($(head -n 1 "$W/$c.idle.model" | sed 's/^ *//'))"
  else
    bad "$c: modeled totals differ under CPU load"
    diff "$W/$c.idle.model" "$W/$c.hog.model" | head -6
  fi
done
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
