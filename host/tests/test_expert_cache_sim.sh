#!/usr/bin/env bash
# test_expert_cache_sim.sh - `moecard run --expert-trace` and `moecard cache-sim` end to end on a
# generated tiny model: tracing leaves the logits bit-identical; the recorded trace replays under
# every policy (JSON lines); Belady's hit rate is never below an online demand policy's; with every
# expert resident only the compulsory misses remain (counted independently from the trace bytes);
# with host execution of misses the modeled decode is never slower than the all-host run; the decision trace has the
# documented events; a truncated trace is rejected with one line naming the file.
# Env: MOECARD (the binary), B (build dir for temporaries), PYTHON (python3 with numpy).
set -u
MOECARD=${MOECARD:-build/moecard}
B=${B:-build}
PYTHON=${PYTHON:-/usr/bin/python3}
mkdir -p "$B/tmp"
W=$(mktemp -d "$B/tmp/expert_cache_sim.XXXXXX")
trap 'rm -rf "$W"' EXIT
pass=0; fail=0
ok() { echo "ok   $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1"; fail=$((fail + 1)); }

"$MOECARD" gen --out "$W/tiny" --preset tiny --seed 9 >/dev/null || { echo "gen failed"; echo "0 passed, 1 failed"; exit 1; }
N=96; [ "${SAN:-}" = 1 ] && N=48
TOK=$("$PYTHON" -c "print(','.join(str((i * 37 + 5) % 1024) for i in range($N)))")

if "$MOECARD" run --help 2>&1 | grep -q -- --expert-trace; then
  "$MOECARD" run --model "$W/tiny" --tokens "$TOK" -n 0 --dump-logits "$W/a.npy" >/dev/null 2>"$W/err1" &&
  "$MOECARD" run --model "$W/tiny" --tokens "$TOK" -n 0 --dump-logits "$W/b.npy" \
    --expert-trace "$W/t.xt" >/dev/null 2>"$W/err2"
  if [ $? = 0 ] && cmp -s "$W/a.npy" "$W/b.npy"; then ok "run --expert-trace: logits bit-identical with tracing"
  else bad "run --expert-trace (exit or logits differ)"; cat "$W/err1" "$W/err2"; fi
  TRACE=$W/t.xt
else
  echo "note: this moecard run has no --expert-trace; replaying the fuzz seed trace"
  TRACE=host/fuzz/corpus/fuzz_expert_trace/tiny_pred.xt
fi

# the board of this build variant, not whatever build/board/ the working directory has
BOARD="$B/board/emu.dtb"
"$MOECARD" cache-sim --trace "$TRACE" --board "$BOARD" --slots 25% --sweep --json --host-gbps 5 \
  --events "$W/ev.jsonl" >"$W/sim.jsonl" 2>"$W/sim.err"
if [ $? = 0 ]; then ok "cache-sim --json exit 0"; else bad "cache-sim exit"; cat "$W/sim.err"; fi
"$MOECARD" cache-sim --trace "$TRACE" --board "$BOARD" --slots 100% --json --host-gbps 5 --no-671b \
  --policy lru >"$W/full.jsonl" 2>>"$W/sim.err" || bad "cache-sim --slots 100%"

"$PYTHON" - "$W/sim.jsonl" "$W/full.jsonl" "$TRACE" "$W/ev.jsonl" >"$W/py.out" 2>&1 <<'PY'
import json, struct, sys
allrows = [json.loads(l) for l in open(sys.argv[1])]
rows = [r for r in allrows if 'policy' in r]
goals = [r for r in allrows if 'goals' in r]
full = [json.loads(l) for l in open(sys.argv[2])]
res = []
def check(name, cond, detail=''):
    res.append(cond)
    print(('ok   ' if cond else 'FAIL ') + name + ((' (' + detail + ')') if detail and not cond else ''))
pols = {r['policy'] for r in rows if r['scope'] == 'trace'}
need = {'lru', 'lfu', 'pin', 'belady'}
check('every demand policy replayed', need <= pols, str(sorted(pols)))
check('every policy in both modes (card-only, host execution)',
      all({'card', '+host'} == {r['mode'] for r in rows if r['policy'] == p} for p in pols))
check('671B what-if rows for Gen3 and Gen4',
      {'671b_gen3', '671b_gen4'} <= {r['scope'] for r in rows})
check('hit rates in [0,1], ready <= hit, DMA hidden in [0,1]',
      all(0 <= r['ready_rate'] <= r['hit_rate'] + 1e-12 <= 1 + 1e-12 and 0 <= r['dma_hidden'] <= 1
          for r in rows))
# Belady MIN is optimal among demand policies at every slot count
by = {}
for r in rows:
    if r['scope'] == 'trace' and r['mode'] == 'card':
        by.setdefault(r['slots'], {})[r['policy']] = r
worst = min(g['belady']['hit_rate'] - max(g[p]['hit_rate'] for p in ('lru', 'lfu', 'pin'))
            for g in by.values())
check('Belady >= LRU, LFU, PIN at %d slot counts' % len(by), worst >= -1e-12, '%.4f' % worst)
hyb = [r for r in rows if r['mode'] == '+host']
check('with host execution never slower than all-host, never faster than all-resident (modeled)',
      all(r['modeled_all_host_tok_s'] * (1 - 1e-9) <= r['modeled_tok_s'] <=
          r['modeled_all_resident_tok_s'] * (1 + 1e-9) for r in hyb))
card = [r for r in rows if r['mode'] == 'card']
kk = struct.unpack_from('<I', open(sys.argv[3], 'rb').read(), 20)[0]
# (PIN may pin every free slot; a step with every slot locked has no room: those go to the host)
check('card-only runs of LRU/LFU/Belady never run a miss on the host',
      all(r['miss_host'] == 0 for r in card if r['slots'] >= 2 * kk and not r['policy'].startswith('pin')))
check('goal rows for 10/25/50% of the trace and the 671B shapes',
      {(g['scope'], g['goals']) for g in goals} >=
      {(s, p) for s in ('trace', '671b_gen3', '671b_gen4') for p in (10, 25, 50)},
      str(sorted((g['scope'], g['goals']) for g in goals)))
# compulsory misses, counted from the trace bytes
b = open(sys.argv[3], 'rb').read()
k = struct.unpack_from('<I', b, 20)[0]
rb = 8 + 16 * k
keys, acc = set(), 0
for off in range(64, len(b), rb):
    layer = struct.unpack_from('<i', b, off)[0]
    for j in range(k):
        keys.add((layer, struct.unpack_from('<i', b, off + 8 + 4 * j)[0]))
        acc += 1
want = 1 - len(keys) / acc
got = [r for r in full if r.get('mode') == 'card'][0]['hit_rate']
check('all resident: only compulsory misses (%d of %d)' % (len(keys), acc), abs(got - want) < 1e-4,
      'hit %.5f, expected %.5f' % (got, want))
ev = [json.loads(l) for l in open(sys.argv[4])]
kinds = {e['ev'] for e in ev}
check('decision trace has hits and DMA misses', {'hit', 'miss_dma'} <= kinds, str(kinds))
check('decision trace lines carry pos/layer/expert', all({'pos', 'layer', 'expert'} <= e.keys() for e in ev))
PY
[ $? = 0 ] || bad "python checks crashed"
cat "$W/py.out"
pass=$((pass + $(grep -c '^ok ' "$W/py.out")))
fail=$((fail + $(grep -c '^FAIL ' "$W/py.out")))

head -c 100 "$TRACE" >"$W/cut.xt"
"$MOECARD" cache-sim --trace "$W/cut.xt" --board "$BOARD" --slots 4 >/dev/null 2>"$W/cut.err"; rc=$?
if [ $rc = 1 ] && [ "$(wc -l <"$W/cut.err")" = 1 ] && grep -q "cut.xt: records" "$W/cut.err"; then
  ok "truncated trace rejected: $(cat "$W/cut.err")"
else bad "truncated trace: exit $rc, stderr: $(cat "$W/cut.err")"; fi

echo "$pass passed, $fail failed"
[ $fail = 0 ]
