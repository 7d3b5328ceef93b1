#!/usr/bin/env bash
# Test runner: runs each test program (cmocka or plain) and each test script of one build
# variant, JOBS at a time (-j N, or env MOECARD_TEST_JOBS; 2 by default), prints one result line
# per test in the order given (with the tail of the log of a failure), and writes the variant's
# totals "passed failed skipped" to $B/test-summary. Usage: run.sh [-j N] BUILD bin... -- script...
#
# Counts come from cmocka's "[  PASSED  ] N test(s)." / "[  FAILED  ] N test(s)" /
# "[  SKIPPED ] N test(s)" lines or from a plain "N passed, N failed[, N skipped]" line (the last
# one the test prints); "SKIP: ..." lines count one skipped check each when the counts line has
# no skipped figure. A program with neither counts as one test by its exit code; exit status 77
# means the whole test skipped (e.g. it needs hardware this host lacks); any other non-zero exit
# always counts as at least one failure. Each test runs in its own empty directory for
# temporaries ($TMPDIR, $MOECARD_TEST_TMP), so tests running at once never share a path.
set -u
JOBS=${MOECARD_TEST_JOBS:-2}
if [ "${1:-}" = -j ]; then JOBS=$2; shift 2; fi
case "$JOBS" in '' | *[!0-9]* | 0) echo "run.sh: -j wants a positive number, got '$JOBS'" >&2; exit 2 ;; esac
B=$1; shift
mkdir -p "$B/logs" "$B/tmp"
R=$(mktemp -d "$B/tmp/run.XXXXXX")
trap 'rm -rf "$R"' EXIT

# run_one IDX KIND TEST: runs one test; writes "rc passed failed skipped" to $R/IDX.res.
run_one() {
  local i=$1 kind=$2 t=$3 name log rc p f s line tmp
  name=$(echo "$t" | sed "s|^$B/t/||; s|/|_|g")
  log="$B/logs/$name.log"
  tmp="$R/tmp.$i"
  mkdir -p "$tmp"
  basename "$t" >"$R/$i.run" # for the heartbeat
  t0=$(date +%s%N)
  if [ "$kind" = bin ]; then
    TMPDIR=$tmp MOECARD_TEST_TMP=$tmp timeout 1200 "$t" >"$log" 2>&1; rc=$?
  else
    TMPDIR=$tmp MOECARD_TEST_TMP=$tmp timeout 1200 bash "$t" >"$log" 2>&1; rc=$?
  fi
  el=$((($(date +%s%N) - t0) / 10000000))
  rm -rf "$tmp"
  p=$(grep -aE '^\[  PASSED  \] [0-9]+ test' "$log" | awk '{s+=$4} END{print s+0}')
  f=$(grep -aE '^\[  FAILED  \] [0-9]+ test' "$log" | awk '{s+=$4} END{print s+0}')
  s=$(grep -aE '^\[  SKIPPED \] [0-9]+ test' "$log" | awk '{s+=$4} END{print s+0}')
  if [ "$p" = 0 ] && [ "$f" = 0 ]; then
    line=$(grep -aE '^([A-Za-z-]+: )?[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
    if [ -n "$line" ]; then
      p=$(echo "$line" | sed -E 's/^([A-Za-z-]+: )?([0-9]+) passed, ([0-9]+) failed.*/\2/')
      f=$(echo "$line" | sed -E 's/^([A-Za-z-]+: )?([0-9]+) passed, ([0-9]+) failed.*/\3/')
      if echo "$line" | grep -qE ', [0-9]+ skipped'; then
        s=$(echo "$line" | sed -E 's/.*, ([0-9]+) skipped.*/\1/')
      fi
    elif [ $rc = 0 ]; then p=1
    elif [ $rc != 77 ]; then f=1
    fi
  fi
  if [ "$s" = 0 ]; then s=$(grep -acE '^SKIP: ' "$log"); fi
  if [ $rc = 77 ] && [ "$p" = 0 ] && [ "$f" = 0 ] && [ "$s" = 0 ]; then s=1; fi
  if [ $rc != 0 ] && [ $rc != 77 ] && [ "$f" = 0 ]; then f=1; fi
  echo "$rc $p $f $s $el" >"$R/$i.tmp" && mv "$R/$i.tmp" "$R/$i.res"
}

# report IDX TEST: prints the result line of a finished test and adds it to the totals.
tp=0; tf=0; ts=0
report() {
  local i=$1 t=$2 rc p f s el name secs
  read -r rc p f s el <"$R/$i.res"
  secs=$(printf '%d.%02d s' $((${el:-0} / 100)) $((${el:-0} % 100)))
  printf '%s %s\n' "$secs" "${t#"$B"/}" >>"$R/times"
  name=$(echo "$t" | sed "s|^$B/t/||; s|/|_|g")
  tp=$((tp + p)); tf=$((tf + f)); ts=$((ts + s))
  if [ "$f" != 0 ]; then
    printf '  FAIL %-55s %4d passed, %d failed (exit %d, %s), log %s:\n' "$t" "$p" "$f" "$rc" "$secs" "$B/logs/$name.log"
    tail -n 25 "$B/logs/$name.log" | sed 's/^/       | /'
  elif [ "$p" = 0 ] && [ "$s" != 0 ]; then
    printf '  skip %-55s %4d skipped (%s)\n' "$t" "$s" "$secs"
  elif [ "$s" != 0 ]; then
    printf '  ok   %-55s %4d passed, %d skipped (%s)\n' "$t" "$p" "$s" "$secs"
  else
    printf '  ok   %-55s %4d passed (%s)\n' "$t" "$p" "$secs"
  fi
}

echo "== tests in $B ($JOBS at a time)"
kinds=(); tests=()
mode=bin
for t in "$@"; do
  if [ "$t" = "--" ]; then mode=script; continue; fi
  kinds+=("$mode"); tests+=("$t")
done
n=${#tests[@]}
# Longest first, so the two cores stay busy to the end: a test's expected seconds come from this
# variant's last run ($B/test-times: "SECONDS s TEST" lines, TEST without the "$B/" prefix) or
# else from tests/test-weights (the same form, measured on a 2-core machine); tests with neither
# start last, in the order given. Results print in start order.
weights=$B/test-times
[ -s "$weights" ] || weights=tests/test-weights
if [ -s "$weights" ]; then
  order=$(for i in "${!tests[@]}"; do
    w=$(awk -v t="${tests[$i]#"$B"/}" '$3 == t { print $1; exit }' "$weights")
    printf '%s %d\n' "${w:-0}" "$i"
  done | sort -s -k1,1 -rn | awk '{print $2}')
  k2=(); t2=()
  for i in $order; do k2+=("${kinds[$i]}"); t2+=("${tests[$i]}"); done
  kinds=("${k2[@]}"); tests=("${t2[@]}")
fi
# A heartbeat every 60 s while tests run (results print in start order, so a long test holds
# the lines of the tests after it): how many finished and which are still running.
t_start=$(date +%s)
( while sleep "${MOECARD_TEST_HEARTBEAT:-60}"; do
    fin=$(find "$R" -maxdepth 1 -name '*.res' | wc -l)
    cur=$(cd "$R" && for f in *.run; do [ -e "$f" ] && [ ! -e "${f%.run}.res" ] && cat "$f"; done | tr '\n' ' ')
    printf '  ... %d min: %d of %d finished; running: %s\n' $((($(date +%s) - t_start) / 60)) "$fin" "$n" "${cur:-?}"
  done ) &
hb=$!
disown $hb 2>/dev/null
trap 'kill $hb 2>/dev/null; rm -rf "$R"' EXIT
next=0    # next test to start
shown=0   # next test to report (in order)
running=0
while [ $shown -lt $n ]; do
  while [ $running -lt "$JOBS" ] && [ $next -lt $n ]; do
    run_one $next "${kinds[$next]}" "${tests[$next]}" &
    next=$((next + 1)); running=$((running + 1))
  done
  if [ -f "$R/$shown.res" ]; then
    report $shown "${tests[$shown]}"
    shown=$((shown + 1))
    continue
  fi
  # a job ended (or one is still to report): count what is still running
  wait -n 2>/dev/null
  running=$(jobs -rp | wc -l)
  if [ "$running" = 0 ] && [ $next -ge $n ] && [ ! -f "$R/$shown.res" ]; then
    echo "255 0 1 0 0" >"$R/$shown.res" # its runner died without a result
  fi
done
wait
# this run's times replace the same tests' old ones; the others' stay (a partial run keeps them)
{ cat "$R/times"; [ -f "$B/test-times" ] && cat "$B/test-times"; } 2>/dev/null |
  awk '!seen[$3]++' | sort -rn >"$R/times.all" && mv "$R/times.all" "$B/test-times"
echo "$tp $tf $ts" >"$B/test-summary"
echo "$B: $tp passed, $tf failed, $ts skipped"
