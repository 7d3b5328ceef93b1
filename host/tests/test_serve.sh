#!/usr/bin/env bash
# test_serve.sh - `moecard serve` on a loopback port, driven by clients no one here wrote (curl,
# OpenAI's JavaScript client from npm, wrk) and by tools/serve/load.mjs:
#   - /health, /v1/models, the API key (401 without it or with a wrong one);
#   - greedy text equal to `moecard run --spec none`, alone and when the same request runs in a
#     batch with others; the official client's checks (host/tests/serve_client.mjs);
#   - 32 concurrent streaming clients x 2 requests all end with [DONE]; wrk on the non-streamed
#     path; afterwards nothing running, no KV slot held, RSS back near its level after warm-up;
#   - faults: a client that leaves mid-stream (its slot is freed, counted as cancelled), malformed
#     and oversized JSON (400, 413), a connection that sends nothing (closed after --timeout), a
#     full queue (429 with Retry-After), a CU fault on the emulated card (that request fails with
#     500, the next ones work, /health stays ok);
#   - SIGTERM while a request streams: it completes, the server exits 0;
#   - bad command lines exit 2.
# Skips (says so) without node, curl or the openai package (make deps). "N passed, N failed".
set -u
M=${MOECARD:-build/moecard}
MODEL=${SERVE_MODEL:-models/tiny-brown}
pass=0; fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
for t in node curl; do
  command -v $t >/dev/null 2>&1 || { echo "SKIP: $t missing (make deps)"; echo "0 passed, 0 failed"; exit 0; }
done
OA=build/cache/node_modules/openai/index.mjs
[ -s "$OA" ] || { echo "SKIP: $OA missing (make deps)"; echo "0 passed, 0 failed"; exit 0; }
W=$(mktemp -d "${TMPDIR:-/tmp}/serve.XXXXXX")
PIDS=""
trap 'for p in $PIDS; do kill -9 $p 2>/dev/null; done; rm -rf "$W"' EXIT
KEY=secret-$$

# start NAME ARGS...: a server in the background; sets URL and PID (fails the test when it does
# not report ready within 60 s)
start() {
  local name=$1; shift
  "$M" serve --model "$MODEL" --port 0 "$@" 2>"$W/$name.err" &
  PID=$!; PIDS="$PIDS $PID"
  for _ in $(seq 600); do
    grep -q "serve: ready" "$W/$name.err" && break
    kill -0 $PID 2>/dev/null || break
    sleep 0.1
  done
  URL=$(grep -o 'http://[0-9.]*:[0-9]*' "$W/$name.err" | head -n 1)
  grep -q "serve: ready" "$W/$name.err" || { bad "$name: not ready: $(cat "$W/$name.err")"; return 1; }
}
# metric NAME: its value on /metrics
metric() { curl -s "$URL/metrics" | awk -v n="$1" '$1 == n {print $2}'; }
code() { curl -s -o "$W/body" -w '%{http_code}' "$@"; }
text_of() { "${PYTHON:-/usr/bin/python3}" -c 'import json,sys; print(json.load(sys.stdin)["choices"][0]["text"], end="")'; }
AUTH=(-H "Authorization: Bearer $KEY")
COMP() { curl -s "${AUTH[@]}" "$URL/v1/completions" -H 'Content-Type: application/json' -d "$1"; }

# --- bad command lines -------------------------------------------------------------------------
"$M" serve --model "$MODEL" --port 70000 2>"$W/e"; [ $? = 2 ] && grep -q -- "--port" "$W/e" && ok || bad "--port 70000: $(cat "$W/e")"
MOECARD_CARD_PREFILL=0 "$M" serve --model "$MODEL" --backend emu --max-batch 2 2>"$W/e"; [ $? = 2 ] && grep -q -- "--max-batch" "$W/e" && ok || bad "emu without its batched path, --max-batch 2: $(cat "$W/e")"
"$M" serve --model "$MODEL" --max-queue x 2>"$W/e"; [ $? = 2 ] && ok || bad "--max-queue x: $(cat "$W/e")"
for v in 0 257; do
  "$M" serve --model "$MODEL" --prefill-chunk $v 2>"$W/e"; [ $? = 2 ] && grep -q -- "--prefill-chunk" "$W/e" && ok || bad "--prefill-chunk $v: $(cat "$W/e")"
done

# --- the main server ---------------------------------------------------------------------------
start main --api-key "$KEY" --max-batch 4 --max-queue 40 --timeout 2 --kv-tokens 2048 || { echo "$pass passed, $fail failed"; exit 1; }
MAIN_PID=$PID
[ "$(code "$URL/health")" = 200 ] && grep -q '"ok"' "$W/body" && ok || bad "/health: $(cat "$W/body")"
[ "$(code "$URL/v1/models")" = 401 ] && grep -q invalid_api_key "$W/body" && ok || bad "no key: $(cat "$W/body")"
[ "$(code -H "Authorization: Bearer wrong" "$URL/v1/models")" = 401 ] && ok || bad "wrong key"
[ "$(code "${AUTH[@]}" "$URL/v1/models")" = 200 ] && grep -q '"id":"tiny-brown"' "$W/body" && ok || bad "/v1/models: $(cat "$W/body")"

# greedy text of prompt $2 (max_tokens $3) equal to `moecard run`'s, alone and in a batch with
# the prompts $4.. (started together; 24 tokens each); $1 names the case
alone_and_batched() {
  local label=$1 p=$2 n=$3 want got others="" o
  shift 3
  want=$("$M" run --model "$MODEL" --prompt "$p" -n "$n" --spec none 2>/dev/null)
  got=$(COMP "{\"prompt\":\"$p\",\"max_tokens\":$n,\"temperature\":0}" | text_of)
  [ -n "$want" ] && [ "$got" = "$want" ] && ok || bad "$label alone: '$got' vs '$want'"
  for o in "$@"; do
    COMP "{\"prompt\":\"$o\",\"max_tokens\":24,\"temperature\":0}" >/dev/null &
    others="$others $!"
  done
  got=$(COMP "{\"prompt\":\"$p\",\"max_tokens\":$n,\"temperature\":0}" | text_of)
  wait $others
  [ "$got" = "$want" ] && ok || bad "$label in a batch: '$got' vs '$want'"
}
alone_and_batched "serve vs run" "The jury said that" 24 "Other prompt 1 is" "Other prompt 2 is" \
  "Other prompt 3 is"
# a long prompt (199 tokens: three chunks of 64 of its own, then a tail of 7 that joins the decode
# rows), and beside another long one (201 tokens: its last chunk of 9 on the tile path; one
# prompt chunk a step, so one of them waits) and two short ones
long199=$(for i in 1 2 3 4 5 6 7 8 9; do printf 'The jury said that the city of Atlanta %s deserves praise. ' $i; done)
long199=${long199% }
alone_and_batched "long prompt" "$long199" 16 "Other $long199" "Other prompt 1 is" "Other prompt 2 is"

# "ignore_eos" (vLLM's extension): a sampled answer that ends on the EOS (the first of a few seeds
# whose answer does) runs to max_tokens with it, and the field takes only a boolean
fin() { "${PYTHON:-/usr/bin/python3}" -c 'import json,sys; d=json.load(sys.stdin); print(d["choices"][0]["finish_reason"], d["usage"]["completion_tokens"])'; }
eos_seed=""
for sd in 1 2 3 4 5 6 7 8 9 10 11 12; do
  f=$(COMP "{\"prompt\":\"The jury said that\",\"max_tokens\":900,\"temperature\":1,\"seed\":$sd}" | fin)
  case "$f" in "stop "*) eos_seed=$sd; break ;; esac
done
if [ -n "$eos_seed" ]; then
  f=$(COMP "{\"prompt\":\"The jury said that\",\"max_tokens\":900,\"temperature\":1,\"seed\":$eos_seed,\"ignore_eos\":true}" | fin)
  [ "$f" = "length 900" ] && ok || bad "ignore_eos: seed $eos_seed ends '$f' with it (want 'length 900')"
else
  bad "ignore_eos: no seed of 1..12 ended on the EOS within 900 tokens"
fi
[ "$(code "${AUTH[@]}" "$URL/v1/completions" -d '{"prompt":"x","ignore_eos":"yes"}')" = 400 ] &&
  grep -q '"param":"ignore_eos"' "$W/body" && ok || bad "ignore_eos \"yes\": $(cat "$W/body")"

# the official OpenAI client
node host/tests/serve_client.mjs "$URL" "$KEY" tiny-brown >"$W/client" 2>&1
n_ok=$(grep -c '^ok ' "$W/client"); n_bad=$(grep -c '^FAIL' "$W/client")
if [ "$n_ok" -ge 9 ] && [ "$n_bad" = 0 ]; then ok; else bad "openai client: $(cat "$W/client")"; fi

rss() { awk '/^VmRSS/ {print $2}' "/proc/$MAIN_PID/status"; }
rss0=$(rss)
# load: 32 concurrent streaming clients x 2 requests, every one ends with [DONE]
if OPENAI_API_KEY=$KEY node tools/serve/load.mjs --url "$URL" --key "$KEY" --clients 32 --requests 2 --max-tokens 12 >"$W/load" 2>&1
then ok; else bad "32 streaming clients: $(tail -5 "$W/load")"; fi
# wrk on the non-streamed path (8 connections, 3 s): no error, no non-2xx
if command -v wrk >/dev/null 2>&1; then
  cat >"$W/post.lua" <<EOF
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $KEY"
wrk.body = '{"prompt":"The jury said that","max_tokens":8,"temperature":0}'
EOF
  wrk -t 2 -c 8 -d 3s -s "$W/post.lua" "$URL/v1/completions" >"$W/wrk" 2>&1
  if grep -qE '^ +[0-9]+ requests in' "$W/wrk" && ! grep -qE 'Non-2xx|Socket errors' "$W/wrk"; then ok
  else bad "wrk: $(cat "$W/wrk")"; fi
else
  echo "SKIP: wrk missing: the non-streamed load was not run"
fi
# (wrk leaves with requests in flight: they end as cancelled within a step or two)
for _ in $(seq 50); do [ "$(metric moecard_running_sequences)" = 0 ] && break; sleep 0.1; done
[ "$(metric moecard_running_sequences)" = 0 ] && [ "$(metric moecard_kv_slots_used)" = 0 ] &&
  [ "$(metric moecard_queue_depth)" = 0 ] && [ "$(metric moecard_kv_blocks_used)" = 0 ] &&
  [ "$(metric moecard_kv_blocks)" = 128 ] && ok ||
  bad "after the load: running $(metric moecard_running_sequences), slots used $(metric moecard_kv_slots_used), KV blocks used $(metric moecard_kv_blocks_used) of $(metric moecard_kv_blocks)"
# the paged KV pool (2048 positions, 128 blocks): three chats without max_tokens each reserve the
# rest of the 1024-token context, so two run and the third waits for their blocks; all complete
cp3=""
for i in 1 2 3; do
  curl -s -o "$W/kv$i" -w '%{http_code}' "${AUTH[@]}" "$URL/v1/chat/completions" \
    -d "{\"messages\":[{\"role\":\"user\",\"content\":\"Story $i\"}],\"temperature\":0,\"stop\":[\".\"]}" >"$W/kvc$i" &
  cp3="$cp3 $!"
done
peak=0
for _ in $(seq 40); do
  u=$(metric moecard_kv_blocks_used); [ "${u:-0}" -gt "$peak" ] && peak=$u
  sleep 0.05
done
wait $cp3
[ "$(cat "$W"/kvc? | tr -d '\n')" = 200200200 ] && [ "$peak" -le 128 ] && [ "$(metric moecard_kv_blocks_used)" = 0 ] && ok ||
  bad "KV pool: codes $(cat "$W"/kvc? | tr '\n' ' '), peak blocks $peak, used after $(metric moecard_kv_blocks_used)"
rss1=$(rss)
# memory back near idle: within 16 MB of the level after the warm-up requests
[ $((rss1 - rss0)) -lt 16384 ] && ok || bad "RSS grew from $rss0 kB to $rss1 kB over the load"

# a client that leaves mid-stream: its sequence is cancelled and its slot freed
c0=$(metric moecard_requests_cancelled_total)
# (1000 tokens of the 1024-position context take ~0.6 s on a 2-core AVX2 host: the client leaves
# at 0.15 s, well before the end)
curl -s -N --max-time 0.15 "${AUTH[@]}" "$URL/v1/completions" \
  -d '{"prompt":"The jury","max_tokens":1000,"temperature":0,"stream":true}' >/dev/null 2>&1
for _ in $(seq 50); do [ "$(metric moecard_kv_slots_used)" = 0 ] && break; sleep 0.1; done
c1=$(metric moecard_requests_cancelled_total)
[ "$(metric moecard_kv_slots_used)" = 0 ] && [ "$c1" -gt "$c0" ] && ok || bad "disconnect: cancelled $c0 -> $c1, slots used $(metric moecard_kv_slots_used)"
# the same with a non-streamed request (greedy, as above: the same long reply, so the client
# leaves before it ends; a sampled reply could end at EOS early and not be cancelled). The server
# looks for a client that left every 200 ms while it generates: the client leaves at 0.15 s of a
# ~0.6 s reply, so a look comes before the end (with 900 tokens and 0.5 s, faster kernels had
# made the reply end first).
curl -s --max-time 0.15 "${AUTH[@]}" "$URL/v1/completions" \
  -d '{"prompt":"The jury","max_tokens":1000,"temperature":0}' >/dev/null 2>&1; crc=$?
for _ in $(seq 50); do [ "$(metric moecard_kv_slots_used)" = 0 ] && break; sleep 0.1; done
[ "$(metric moecard_kv_slots_used)" = 0 ] && [ "$(metric moecard_requests_cancelled_total)" -gt "$c1" ] && ok ||
  bad "non-streamed disconnect (curl exit $crc: 28 = it left; cancelled $c1 -> $(metric moecard_requests_cancelled_total))"

# malformed and oversized JSON
[ "$(code "${AUTH[@]}" "$URL/v1/chat/completions" -d '{"messages": [')" = 400 ] && grep -q '"param":"body"' "$W/body" && ok || bad "malformed: $(cat "$W/body")"
[ "$(code "${AUTH[@]}" "$URL/v1/chat/completions" -d '{"messages":[{"role":"wizard","content":"x"}]}')" = 400 ] && grep -q 'messages\[0\].role' "$W/body" && ok || bad "bad role: $(cat "$W/body")"
head -c 1200000 /dev/zero | tr '\0' ' ' >"$W/big"
[ "$(code "${AUTH[@]}" "$URL/v1/completions" --data-binary @"$W/big")" = 413 ] && ok || bad "huge body: $(head -c 200 "$W/body")"
long=$(printf 'word %.0s' $(seq 1500))
[ "$(code "${AUTH[@]}" "$URL/v1/completions" -d "{\"prompt\":\"$long\"}")" = 400 ] && grep -q context_length_exceeded "$W/body" && ok || bad "long prompt: $(head -c 200 "$W/body")"

# a connection that sends nothing is closed after --timeout (2 s); the server stays healthy
port=${URL##*:}
( exec 3<>"/dev/tcp/127.0.0.1/$port"; s=$SECONDS; cat <&3 >/dev/null; echo $((SECONDS - s)) >"$W/idle" ) &
idle_pid=$!
sleep 4.5
if [ -s "$W/idle" ] && [ "$(cat "$W/idle")" -le 4 ]; then ok; else bad "an idle connection was not closed (after $(cat "$W/idle" 2>/dev/null) s)"; kill $idle_pid 2>/dev/null; fi
[ "$(code "$URL/health")" = 200 ] && ok || bad "/health after the faults"

# metrics: the Prometheus text has the families a scrape needs
m=$(curl -s "$URL/metrics")
miss=""
for f in moecard_requests_total moecard_queue_depth moecard_running_sequences moecard_prompt_tokens_total \
         moecard_generation_tokens_total moecard_time_to_first_token_seconds_bucket \
         moecard_inter_token_latency_seconds_bucket moecard_engine_utilization moecard_kv_slots; do
  echo "$m" | grep -q "^$f" || miss="$miss $f"
done
[ -z "$miss" ] && echo "$m" | grep -q 'moecard_requests_total{endpoint="/v1/completions",status="413"} 1' && ok || bad "metrics lack:$miss"

# SIGTERM while a request streams: it completes with [DONE], the server exits 0
curl -s -N "${AUTH[@]}" "$URL/v1/completions" -d '{"prompt":"The jury","max_tokens":200,"temperature":0,"stream":true}' >"$W/drain" 2>&1 &
cpid=$!
sleep 0.3
kill -TERM $MAIN_PID
wait $MAIN_PID; rc=$?
wait $cpid
[ $rc = 0 ] && tail -n 2 "$W/drain" | grep -q 'data: \[DONE\]' && grep -q '"finish_reason":"length"' "$W/drain" && ok || bad "SIGTERM drain: exit $rc, $(tail -c 200 "$W/drain")"
[ "$(code "$URL/health")" = 000 ] && ok || bad "the port still answers after exit"

# --- a small queue: 429 with Retry-After, never a hang (the requests greedy and run to
#     max_tokens: a sampled reply ending early at its EOS could free the queue too soon) ------------
start queue --max-batch 1 --max-queue 1 || { echo "$pass passed, $fail failed"; exit 1; }
qp=""
for i in $(seq 6); do
  curl -s -D "$W/h$i" -o /dev/null -w '%{http_code}\n' --max-time 60 "$URL/v1/completions" \
    -d '{"prompt":"The jury","max_tokens":100,"temperature":0,"ignore_eos":true}' >"$W/c$i" &
  qp="$qp $!"
done
wait $qp
n429=$(cat "$W"/c? | grep -c 429); n200=$(cat "$W"/c? | grep -c 200)
if [ "$n429" -ge 1 ] && [ $((n429 + n200)) = 6 ] && grep -qi '^Retry-After: 1' $(grep -l 429 "$W"/c? | sed 's|/c|/h|' | head -n 1); then ok
else bad "queue: $(cat "$W"/c? | tr '\n' ' ')"; fi
kill -TERM $PID; wait $PID

# --- the emulated card decodes its slots together: greedy text as `run --backend emu`, alone and
#     in a batch of four (rows of four sequences in one forward, each its own latent cache) ------
start card --backend emu --max-batch 4 || { echo "$pass passed, $fail failed"; exit 1; }
grep -q "decoded together on the card" "$W/card.err" && ok || bad "card slots: $(grep ready "$W/card.err")"
want=$("$M" run --model "$MODEL" --backend emu --prompt "The jury said that" -n 24 --spec none 2>/dev/null)
got=$(curl -s "$URL/v1/completions" -d '{"prompt":"The jury said that","max_tokens":24,"temperature":0}' | text_of)
[ -n "$want" ] && [ "$got" = "$want" ] && ok || bad "card: serve vs run: '$got' vs '$want'"
others=""
# (greedy rows bring their tokens back from the card's head, not their logits, while every
#  sequence of the forward is greedy; the third other samples, so some steps carry logits)
for i in 1 2 3; do
  temp=0; [ $i = 3 ] && temp=0.8
  curl -s "$URL/v1/completions" -d "{\"prompt\":\"Other prompt $i is\",\"max_tokens\":24,\"temperature\":$temp,\"seed\":7}" >"$W/o$i" &
  others="$others $!"
done
got=$(curl -s "$URL/v1/completions" -d '{"prompt":"The jury said that","max_tokens":24,"temperature":0}' | text_of)
wait $others
[ "$got" = "$want" ] && ok || bad "card, in a batch: '$got' vs '$want'"
n_ok=$(cat "$W"/o? | grep -o '"finish_reason":"length"' | wc -l)
[ "$n_ok" = 3 ] && ok || bad "card batch: $(cat "$W"/o?)"
[ "$(metric moecard_running_sequences)" = 0 ] && [ "$(metric moecard_kv_blocks_used)" = 0 ] && ok ||
  bad "card: after the batch: running $(metric moecard_running_sequences), KV blocks used $(metric moecard_kv_blocks_used)"
kill -TERM $PID; wait $PID

# --- prompt chunks of 8 (each on the tile path, one a step): the long prompt's greedy text as
#     moecard run's, alone and beside other prompts ---------------------------------------------
start chunk8 --max-batch 4 --prefill-chunk 8 || { echo "$pass passed, $fail failed"; exit 1; }
alone_and_batched "prefill chunks of 8" "$long199" 16 "Other $long199" "Other prompt 1 is"
kill -TERM $PID; wait $PID

# --- a CU fault on the emulated card fails one request; the server goes on ---------------------
MOECARD_SERVE_FAULT=cu_bad:400 start fault --backend emu || { echo "$pass passed, $fail failed"; exit 1; }
codes=""
for i in $(seq 4); do
  codes="$codes $(code "$URL/v1/completions" -d '{"prompt":"The jury said that","max_tokens":8,"temperature":0}')"
done
n500=$(echo "$codes" | tr ' ' '\n' | grep -c 500); last=${codes##* }
[ "$n500" = 1 ] && [ "$last" = 200 ] && [ "$(code "$URL/health")" = 200 ] && ok || bad "card fault: codes$codes"
# the card's figures on /metrics: modeled busy time and commands grew with the requests
cb=$(metric moecard_card_busy_seconds_total); cc=$(metric moecard_card_commands_total)
awk -v b="${cb:-0}" -v c="${cc:-0}" 'BEGIN {exit !(b > 0 && c > 100)}' && ok || bad "card metrics: busy '$cb' s, commands '$cc'"
kill -TERM $PID; wait $PID

if grep -qE 'Sanitizer|runtime error' "$W"/*.err; then bad "sanitizer: $(grep -hE 'Sanitizer|runtime error' "$W"/*.err | head -3)"; else ok; fi
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
