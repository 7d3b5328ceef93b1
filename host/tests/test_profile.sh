#!/usr/bin/env bash
# test_profile.sh - `moecard profile` (docs/profiling.md) on a tiny random model: the trace is
# valid trace-event JSON with a named track for every slice; every command of a decode step
# appears exactly once (each op of each layer once per step, the same set every step, and as many
# as the summary counts); per-op exclusive totals plus the card's idle time equal the decode span;
# the diff of a profile with itself is empty and a planted 10% slowdown of one kernel
# (MOECARD_EMU_SLOW) is the first difference; the cpu backend's profile; --set changes the board
# (half the HBM bandwidth slows the bandwidth-bound head) and rejects unknown keys in one line;
# --sweep writes its points; run --profile writes the same trace format.
# Env: MOECARD (the binary), B (build dir for temporaries), PYTHON.
set -u
M=${MOECARD:-build/moecard}
B=${B:-build}
PY=${PYTHON:-python3}
mkdir -p "$B/tmp"
W=$(mktemp -d "$B/tmp/profile.XXXXXX")
trap 'rm -rf "$W"' EXIT
pass=0; fail=0
ok() { echo "ok   $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1"; fail=$((fail + 1)); }

"$M" gen --out "$W/tiny" --preset tiny --seed 5 >/dev/null ||
  { echo "gen failed"; echo "0 passed, 1 failed"; exit 1; }
export MOECARD_BOARD="$B/board/emu.dtb"

if "$M" profile --model "$W/tiny" --prompt-len 8 --gen 6 --out "$W/a" >"$W/a.out" 2>"$W/a.err"; then
  ok "profile --backend emu: $(grep -m1 'decode step mean' "$W/a.out" | sed 's/^ *//')"
else
  bad "profile --backend emu: $(head -3 "$W/a.err")"
fi
for f in trace.json summary.json summary.txt report.html; do
  [ -s "$W/a/$f" ] && ok "wrote $f" || bad "no $f"
done

out=$($PY - "$W/a" <<'PYEOF'
import json, sys, collections
d = sys.argv[1]
t = json.load(open(f"{d}/trace.json"))
s = json.load(open(f"{d}/summary.json"))
ev = t["traceEvents"]
meta = {(e["pid"], e["tid"]) for e in ev if e["ph"] == "M" and e["name"] == "thread_name"}
x = [e for e in ev if e["ph"] == "X"]
okfmt = all(isinstance(e["name"], str) and isinstance(e["cat"], str) and e["dur"] >= 0
            and e["ts"] >= 0 and "token" in e["args"] and (e["pid"], e["tid"]) in meta for e in x)
okfmt = okfmt and all(e["ph"] in ("X", "M") for e in ev)
print(int(okfmt and len(x) > 100), f"trace: {len(x)} slices, {len(meta)} named tracks, trace-event JSON")
# every command of a decode step exactly once
steps = s["decode_steps"]
card = collections.defaultdict(list)
for e in x:
    if e["pid"] == 2 and 1 <= e["args"]["token"] <= steps:
        card[e["args"]["token"]].append((e["name"], e["args"]["layer"]))
sets = [collections.Counter(v) for _, v in sorted(card.items())]
once = all(max(c.values()) == 1 for c in sets)
same = all(set(c) == set(sets[0]) for c in sets)
nsum = sum(o["count"] for o in s["ops"] if o["where"] == "card")
print(int(len(sets) == steps and once and same and nsum == steps * len(sets[0])),
      f"every command of each of {steps} decode steps once: {len(sets[0])} per step, the same set, "
      f"{nsum} in the summary")
# per-op exclusive totals plus idle equal the decode span
tot = sum(o["excl_us"] for o in s["ops"]) + s["decode_idle_us"]
cls = sum(s["decode_by_class_us"].values())
print(int(abs(tot - s["decode_us"]) <= 1e-3 * s["decode_us"] and abs(cls - s["decode_us"]) <= 1e-3 * s["decode_us"]),
      f"per-op totals + idle {tot:.3f} us = decode span {s['decode_us']:.3f} us (classes {cls:.3f})")
print(int(abs(sum(s["token_us"]) - s["decode_us"]) <= 1e-3 * s["decode_us"] and s["ttft_us"] > 0
          and s["ttft_us"] + s["decode_us"] <= s["wall_us"] + 1e-6),
      f"TTFT {s['ttft_us']:.1f} us + {steps} steps within the timeline {s['wall_us']:.1f} us")
lay = [l for l in s["layers"] if l["layer"] >= 0]
print(int(len(lay) >= 2 and len(s["pc_bytes_per_token"]) > 0 and all(b > 0 for b in s["pc_bytes_per_token"][:len(lay)])),
      f"{len(lay)} layers, bytes on {len(s['pc_bytes_per_token'])} pseudo-channels")
PYEOF
)
while read -r res msg; do [ "$res" = 1 ] && ok "$msg" || bad "$msg"; done <<<"$out"

# diff: itself, then a planted 10% slowdown of one kernel
if "$M" profile diff "$W/a" "$W/a" >"$W/d0" && grep -q "largest 0.00%" "$W/d0"; then
  ok "diff of a profile with itself: empty"
else
  bad "diff with itself: $(tail -2 "$W/d0")"
fi
MOECARD_EMU_SLOW=MLA_ATTN_LANES:10 "$M" profile --model "$W/tiny" --prompt-len 8 --gen 6 \
  --out "$W/b" >/dev/null 2>"$W/b.err" || bad "planted run: $(head -2 "$W/b.err")"
"$M" profile diff "$W/a" "$W/b" --only card --tol 0.5 >"$W/d1"; rc=$?
first=$(sed -n 4p "$W/d1")
if [ $rc = 1 ] && echo "$first" | grep -q "mla_attn" && echo "$first" | grep -q '+'; then
  ok "planted 10% slowdown of the attention kernel found first, exit 1: $(echo "$first" | sed 's/  */ /g')"
else
  bad "planted slowdown: exit $rc, first row: $first"
fi
"$M" profile diff "$W/a" "$W/nope" >/dev/null 2>"$W/d2"; rc=$?
[ $rc = 2 ] && [ "$(wc -l <"$W/d2")" = 1 ] && grep -q "nope" "$W/d2" &&
  ok "diff of a missing profile: $(cat "$W/d2")" || bad "diff missing: exit $rc $(cat "$W/d2")"
echo '{"moecard_profile":1,"decode_steps":2,"ops":[{"name":1}],"layers":[]}' >"$W/bad.json"
"$M" profile diff "$W/a" "$W/bad.json" >/dev/null 2>"$W/d3"; rc=$?
[ $rc = 2 ] && grep -q "bad.json: ops\[0\]" "$W/d3" && ok "diff names the bad field: $(cat "$W/d3")" ||
  bad "diff bad field: exit $rc $(cat "$W/d3")"

# the cpu backend
if "$M" profile --model "$W/tiny" --backend cpu --prompt-len 8 --gen 4 --out "$W/c" >"$W/c.out" 2>&1 &&
   grep -q "lm_head (cpu" "$W/c.out" && grep -q "q_a|kv_a (cpu)" "$W/c.out" &&
   grep -q "mla scores, softmax, sums (cpu)" "$W/c.out" && grep -q "W_UV o_lat (cpu)" "$W/c.out" &&
   grep -q "o_proj (cpu)" "$W/c.out" && grep -q "router (cpu)" "$W/c.out" &&
   grep -q "experts gate|up (cpu)" "$W/c.out" && grep -q "experts down (cpu)" "$W/c.out" &&
   grep -q "sampling" "$W/c.out"; then
  ok "profile --backend cpu: the attention's and the FFN's steps, lm_head and sampling slices"
else
  bad "profile --backend cpu: $(tail -3 "$W/c.out")"
fi
# the cpu slices carry the bytes they read: the packed BF16 head its vocab x hidden x 2 each step
# (its 8-bit screen, greedy decode, vocab x hidden), the experts' gate|up some, the SiLU none; the
# summary prints their GB/s
r=$($PY - "$W/c/summary.json" "$W/tiny/config.json" <<'PYEOF'
import json, sys
s = json.load(open(sys.argv[1])); c = json.load(open(sys.argv[2]))
ops = {o["name"]: o for o in s["ops"]}
g, u = ops["experts gate|up (cpu)"], ops["experts silu (cpu)"]
vh = c["vocab_size"] * c["hidden_size"]
heads = [(ops[n], per) for n, per in (("lm_head (cpu)", 2), ("lm_head (cpu, 8-bit screen)", 1)) if n in ops]
ok = (heads and all(h.get("bytes", 0) == h["count"] * vh * per for h, per in heads) and
      g.get("bytes", 0) > 0 and "bytes" not in u)
print("ok" if ok else "heads %s, gate|up %s, silu %s" % ([(h.get("bytes"), h["count"]) for h, _ in heads], g.get("bytes"), u.get("bytes")))
PYEOF
)
[ "$r" = ok ] && grep -qE '^  experts gate\|up \(cpu\) +host +[0-9]+ +[0-9.]+ +[0-9.]+% +[0-9.]+ +[0-9.]+ +[0-9.]+ +[0-9]+\.[0-9] ' "$W/c/summary.txt" &&
  ok "profile --backend cpu: bytes and GB/s of its slices" || bad "cpu slice bytes: $r"


# --set: half the HBM bandwidth; an unknown key
"$M" profile --model "$W/tiny" --prompt-len 8 --gen 4 --out "$W/h" --set hbm_gbps=230 >/dev/null 2>"$W/h.err" ||
  bad "--set hbm_gbps=230: $(head -2 "$W/h.err")"
r=$($PY - "$W/a/summary.json" "$W/h/summary.json" <<'PYEOF'
import json, sys
a, h = (json.load(open(p)) for p in sys.argv[1:3])
head = lambda s: [o for o in s["ops"] if o["name"].startswith("lm_head")][0]["p50_us"]
print(f"{head(h) / head(a):.2f}")
PYEOF
)
# (tiny's head is small: the firmware's part of the slice does not scale with the bandwidth)
if $PY -c "import sys; sys.exit(not 1.3 < float('$r') < 2.2)" 2>/dev/null; then
  ok "--set hbm_gbps=230 (half): the bf16 head GEMV slice takes ${r}x as long"
else
  bad "--set hbm_gbps=230: head ratio '$r'"
fi
"$M" profile --model "$W/tiny" --out "$W/x" --set warp=9 >/dev/null 2>"$W/x.err"; rc=$?
[ $rc != 0 ] && [ $rc -lt 128 ] && [ "$(wc -l <"$W/x.err")" = 1 ] && grep -q "warp: unknown" "$W/x.err" &&
  ok "--set warp=9: $(cat "$W/x.err")" || bad "--set warp=9: exit $rc: $(cat "$W/x.err")"
"$M" profile --model "$W/tiny" --out "$W/x" --set lanes=99 >/dev/null 2>"$W/x.err"; rc=$?
[ $rc != 0 ] && [ $rc -lt 128 ] && grep -q "lanes=99" "$W/x.err" &&
  ok "--set lanes=99: $(cat "$W/x.err")" || bad "--set lanes=99: exit $rc: $(cat "$W/x.err")"
if "$M" profile --model "$W/tiny" --prompt-len 8 --gen 4 --out "$W/l" --set lanes=8 >/dev/null 2>"$W/l.err"; then
  ok "--set lanes=8 runs"
else
  bad "--set lanes=8: $(head -2 "$W/l.err")"
fi

# --sweep
if "$M" profile --model "$W/tiny" --prompt-len 16 --out "$W/s" --sweep hbm_gbps=115,230,460 >"$W/s.out" 2>&1; then
  r=$($PY -c "
import json; p = json.load(open('$W/s/sweep.json'))['points']
ok = len(p) == 3 and p[0]['b671_tok_s'] < p[1]['b671_tok_s'] < p[2]['b671_tok_s'] and p[0]['model_tok_s'] <= p[2]['model_tok_s']
print(int(ok), ' '.join('%s:%.2f' % (q['value'], q['b671_tok_s']) for q in p))")
  [ "${r%% *}" = 1 ] && ok "--sweep hbm_gbps: 671B tok/s rises with the bandwidth (${r#* })" ||
    bad "--sweep: $r"
  [ -s "$W/s/sweep.html" ] && [ -s "$W/s/sweep.txt" ] && ok "--sweep wrote sweep.txt/json/html" || bad "--sweep files"
else
  bad "--sweep: $(tail -3 "$W/s.out")"
fi

# profile --seqs B: B sequences decoded together (emu: forward_seqs, cpu: forward_rows); on the
# card every step runs one attention command per layer for all its rows
for be in emu cpu; do
  if "$M" profile --model "$W/tiny" --backend $be --seqs 3 --prompt-len 6 --gen 4 --out "$W/q$be" \
       >"$W/q$be.out" 2>"$W/q$be.err"; then
    r=$($PY - "$W/q$be" "$W/tiny/config.json" $be <<'PYEOF'
import json, sys
s = json.load(open(sys.argv[1] + "/summary.json"))
L = json.load(open(sys.argv[2]))["num_hidden_layers"]
att = sum(o["count"] for o in s["ops"] if o["name"].startswith("mla_attn"))
good = s["seqs"] == 3 and s["decode_steps"] == 4 and s["decode_tok_s"] > 0
# one row an op: the per-row KV appends (names longer than a track's) share their rows
names = [o["name"] for o in s["ops"]]
kv = [o for o in s["ops"] if "kv_append" in o["name"] or "kv cache append" in o["name"]]
good = good and len(set(names)) == len(names) and 1 <= len(kv) <= 2
if sys.argv[3] == "emu":
    good = good and att == L * 4 and sum(o["count"] for o in kv) >= L * 4
print(int(good), f"seqs {s['seqs']}, {s['decode_steps']} steps, {s['decode_tok_s']:.0f} tok/s, {att} attention commands, {len(names)} ops ({len(kv)} KV append rows)")
PYEOF
)
    grep -q "3 sequences decoded together" "$W/q$be/summary.txt" && [ "${r%% *}" = 1 ] &&
      ok "profile --seqs 3 --backend $be: ${r#* }" || bad "profile --seqs 3 --backend $be: $r"
  else
    bad "profile --seqs 3 --backend $be: $(head -3 "$W/q$be.err")"
  fi
done

# run --profile: the same trace
if "$M" run --model "$W/tiny" --tokens 1,2,3 -n 3 --backend emu --spec none --profile "$W/r.json" >/dev/null 2>&1 &&
   $PY -c "
import json; t = json.load(open('$W/r.json'))['traceEvents']
assert any(e['ph'] == 'X' and e['pid'] == 2 for e in t) and any(e['ph'] == 'X' and e['pid'] == 0 for e in t)"; then
  ok "run --profile: host and card slices in one trace"
else
  bad "run --profile"
fi
# serve --profile: every thread's slices (HTTP connections, the scheduler's forwards), at exit
if command -v curl >/dev/null; then
  "$M" serve --model "$W/tiny" --port 0 --quiet --profile "$W/serve.json" 2>"$W/serve.err" &
  sp=$!
  for _ in $(seq 100); do grep -q "serve: ready" "$W/serve.err" && break; sleep 0.1; done
  url=$(grep -o 'http://[0-9.]*:[0-9]*' "$W/serve.err" | head -n 1)
  # (greedy: a sampled reply may end early at its end-of-sequence token, with fewer forwards)
  curl -s "$url/v1/completions" -d '{"prompt":"hello","max_tokens":6,"stream":true,"temperature":0}' >/dev/null
  curl -s "$url/v1/completions" -d '{"prompt":"hello","max_tokens":6,"temperature":0}' >/dev/null
  kill -TERM $sp; wait $sp; rc=$?
  r=$($PY - "$W/serve.json" <<'PYEOF'
import json, sys
ev = json.load(open(sys.argv[1]))["traceEvents"]
names = {(e["pid"], e["tid"]): e["args"]["name"] for e in ev if e["ph"] == "M" and e["name"] == "thread_name"}
x = [(names.get((e["pid"], e["tid"]), ""), e["name"]) for e in ev if e["ph"] == "X"]
http = sum(1 for t, n in x if t.startswith("http: connection") and n == "http: request")
fwd = sum(1 for t, n in x if t.startswith("serve: scheduler") and n.startswith("lm_head (cpu"))
print(int(http == 2 and fwd >= 10), f"{http} HTTP requests on connection tracks, {fwd} head forwards on the scheduler's")
PYEOF
)
  [ $rc = 0 ] && [ "${r%% *}" = 1 ] && ok "serve --profile: ${r#* }" || bad "serve --profile: exit $rc, $r"
fi
echo "$pass passed, $fail failed"
[ $fail = 0 ]
