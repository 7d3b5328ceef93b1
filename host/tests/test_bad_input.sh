#!/usr/bin/env bash
# test_bad_input.sh - bad checkpoints must be rejected cleanly by the loader stack
# (config.c, safetensors.c, ckpt.c through `moecard info`): for each corruption of a generated
# tiny checkpoint, a non-zero exit that is not a signal, exactly one line on stderr naming the
# file and the tensor or key, and no sanitizer report.
# Env: MOECARD (the binary), B (build dir for temporaries), PYTHON (python3 with json/struct).
set -u
MOECARD=${MOECARD:-build/moecard}
B=${B:-build}
PYTHON=${PYTHON:-/usr/bin/python3}
W=$(mktemp -d "$B/bad_input.XXXXXX")
trap 'rm -rf "$W"' EXIT
pass=0; fail=0

"$MOECARD" gen --out "$W/base" --preset tiny --seed 3 >/dev/null || { echo "gen failed"; echo "0 passed, 1 failed"; exit 1; }
"$MOECARD" gen --out "$W/sharded" --preset tiny --seed 3 --set shard_bytes=2000000 >/dev/null ||
  { echo "gen sharded failed"; echo "0 passed, 1 failed"; exit 1; }

# Byte surgery on safetensors files and config.json.
cat > "$W/st.py" <<'PY'
import json, struct, sys, math
def load(p):
    b = open(p, 'rb').read()
    n = struct.unpack('<Q', b[:8])[0]
    return json.loads(b[8:8 + n]), bytearray(b[8 + n:])
def save(p, h, d):
    t = json.dumps(h, separators=(',', ':')).encode()
    t += b' ' * (-len(t) % 8)
    open(p, 'wb').write(struct.pack('<Q', len(t)) + t + bytes(d))
op, p = sys.argv[1], sys.argv[2]
a = sys.argv[3:]
if op == 'dtype':
    h, d = load(p); h[a[0]]['dtype'] = a[1]; save(p, h, d)
elif op == 'shape':
    h, d = load(p); h[a[0]]['shape'] = json.loads(a[1]); save(p, h, d)
elif op == 'drop':
    h, d = load(p); del h[a[0]]; save(p, h, d)
elif op == 'overlap':   # move a[1] onto the bytes of a[0] (same size)
    h, d = load(p); b0 = h[a[0]]['data_offsets'][0]; n = h[a[1]]['data_offsets'][1] - h[a[1]]['data_offsets'][0]
    h[a[1]]['data_offsets'] = [b0 + 8, b0 + 8 + n]; save(p, h, d)
elif op == 'outofrange':
    h, d = load(p); n = h[a[0]]['data_offsets'][1] - h[a[0]]['data_offsets'][0]
    h[a[0]]['data_offsets'] = [len(d) - n + 4, len(d) + 4]; save(p, h, d)
elif op == 'endbegin':
    h, d = load(p); o = h[a[0]]['data_offsets']; h[a[0]]['data_offsets'] = [o[1], o[0]]; save(p, h, d)
elif op == 'scale':     # a[0] = tensor, a[1] = value
    h, d = load(p); o = h[a[0]]['data_offsets'][0]
    d[o:o + 4] = struct.pack('<f', float(a[1])); save(p, h, d)
elif op == 'hdrlen':
    b = bytearray(open(p, 'rb').read()); b[:8] = struct.pack('<Q', len(b) + 100); open(p, 'wb').write(b)
elif op == 'notobj':
    h, d = load(p); t = b'[1,2,3]' + b' ' * 1; open(p, 'wb').write(struct.pack('<Q', len(t)) + t)
elif op == 'cfg':       # a[0] = key, a[1] = JSON value
    c = json.load(open(p)); c[a[0]] = json.loads(a[1]); json.dump(c, open(p, 'w'))
elif op == 'index_add': # list a tensor that is not in the named shard
    c = json.load(open(p)); c['weight_map'][a[0]] = a[1]; json.dump(c, open(p, 'w'))
PY

# check NAME DIR PATTERN...: moecard info --model DIR must fail cleanly with one stderr line
# matching every PATTERN (extended regex).
check() {
  local name=$1 dir=$2; shift 2
  local out="$W/$name.out" err="$W/$name.err" rc ok=1 why=""
  "$MOECARD" info --model "$dir" >"$out" 2>"$err"; rc=$?
  local lines; lines=$(wc -l <"$err")
  if [ $rc -eq 0 ]; then ok=0; why="exit 0";
  elif [ $rc -ge 128 ]; then ok=0; why="killed by signal $((rc - 128))"; fi
  if grep -qE 'Sanitizer|runtime error|LeakSanitizer' "$err"; then ok=0; why="$why sanitizer report"; fi
  if [ "$lines" -ne 1 ]; then ok=0; why="$why $lines stderr lines"; fi
  for pat in "$@"; do
    grep -qE -- "$pat" "$err" || { ok=0; why="$why no match for /$pat/"; }
  done
  if [ $ok = 1 ]; then
    pass=$((pass + 1)); printf 'ok   %-22s exit %d: %s\n' "$name" $rc "$(head -c 200 "$err")"
  else
    fail=$((fail + 1)); printf 'FAIL %-22s exit %d:%s\n' "$name" $rc "$why"; head -c 2000 "$err"
  fi
}

# fresh NAME [sharded]: a copy of the base (or sharded) checkpoint to corrupt
fresh() { rm -rf "$W/$1"; cp -r "$W/${2:-base}" "$W/$1"; echo "$W/$1"; }
ST=model.safetensors
X=model.layers.2.mlp.experts.5.up_proj.weight

# The uncorrupted checkpoints load.
for d in base sharded; do
  if "$MOECARD" info --model "$W/$d" >/dev/null 2>"$W/$d.err"; then pass=$((pass + 1)); echo "ok   $d loads"
  else fail=$((fail + 1)); echo "FAIL $d does not load: $(cat "$W/$d.err")"; fi
done

d=$(fresh truncated); truncate -s 5000000 "$d/$ST"
check truncated "$d" "$ST: " "model\.|lm_head" "beyond"
d=$(fresh tiny_file); truncate -s 5 "$d/$ST"
check tiny_file "$d" "$ST: header: " "5 bytes"
d=$(fresh hdrlen); $PYTHON "$W/st.py" hdrlen "$d/$ST"
check header_len "$d" "$ST: header: length [0-9]+ is beyond"
d=$(fresh notobj); $PYTHON "$W/st.py" notobj "$d/$ST"
check header_not_object "$d" "$ST: header: not a JSON object"
d=$(fresh overlap); $PYTHON "$W/st.py" overlap "$d/$ST" model.layers.2.mlp.experts.4.up_proj.weight $X
check overlap "$d" "$ST: " "experts\.[45]\.up_proj\.weight" "overlap"
d=$(fresh outofrange); $PYTHON "$W/st.py" outofrange "$d/$ST" $X
check out_of_range "$d" "$ST: $X: data_offsets" "beyond"
d=$(fresh endbegin); $PYTHON "$W/st.py" endbegin "$d/$ST" $X
check end_before_begin "$d" "$ST: $X: data_offsets" "ends before"
d=$(fresh wrongdtype); $PYTHON "$W/st.py" dtype "$d/$ST" $X U8
check wrong_dtype "$d" "$ST: $X: dtype U8, expected F8_E4M3"
d=$(fresh wrongdtype2); $PYTHON "$W/st.py" dtype "$d/$ST" model.layers.1.mlp.gate.e_score_correction_bias I32
check wrong_dtype_bias "$d" "$ST: model\.layers\.1\.mlp\.gate\.e_score_correction_bias: dtype I32"
d=$(fresh badsize); $PYTHON "$W/st.py" dtype "$d/$ST" $X BF16
check dtype_size_mismatch "$d" "$ST: $X: data_offsets span"
d=$(fresh wrongshape); $PYTHON "$W/st.py" shape "$d/$ST" model.layers.3.mlp.gate.weight "[8,512]"
check wrong_shape "$d" "$ST: model\.layers\.3\.mlp\.gate\.weight: shape \[8,512\], expected \[16,256\]"
d=$(fresh wrongscale); $PYTHON "$W/st.py" shape "$d/$ST" ${X}_scale_inv "[2]"
check wrong_scale_shape "$d" "$ST: ${X}_scale_inv: shape \[2\], expected \[1,2\]"
d=$(fresh negdim); $PYTHON "$W/st.py" shape "$d/$ST" $X "[-128,256]"
check negative_dim "$d" "$ST: $X: shape\[0\] = -128 is negative"
d=$(fresh missing); $PYTHON "$W/st.py" drop "$d/$ST" $X
check missing_tensor "$d" "$ST: $X: missing"
d=$(fresh missingscale); $PYTHON "$W/st.py" drop "$d/$ST" ${X}_scale_inv
check missing_scale "$d" "$ST: ${X}_scale_inv: missing"
d=$(fresh missingmtp); $PYTHON "$W/st.py" drop "$d/$ST" model.layers.4.hnorm.weight
check missing_mtp_tensor "$d" "$ST: model\.layers\.4\.hnorm\.weight: missing"
for v in nan inf -inf 0 -1; do
  d=$(fresh scale_$v); $PYTHON "$W/st.py" scale "$d/$ST" model.layers.1.self_attn.o_proj.weight_scale_inv $v
  check "scale_$v" "$d" "$ST: model\.layers\.1\.self_attn\.o_proj\.weight_scale_inv: scale" "not finite and positive"
done
d=$(fresh badnorm); $PYTHON "$W/st.py" drop "$d/$ST" model.norm.weight
check missing_norm "$d" "$ST: model\.norm\.weight: missing"

# Sharded checkpoint: a missing shard, a tensor listed in the index but not in its shard.
d=$(fresh missingshard sharded); rm "$d/model-00002-of-"*.safetensors
check missing_shard "$d" "model-00002-of-[0-9]+\.safetensors: missing shard" "maps model\.[a-z_.0-9]+ to it"
d=$(fresh notinshard sharded); s1=$(cd "$d" && ls model-00001-of-*.safetensors)
$PYTHON "$W/st.py" index_add "$d/model.safetensors.index.json" model.layers.9.foo.weight "$s1"
check listed_not_in_shard "$d" "model-00001-of-[0-9]+\.safetensors: model\.layers\.9\.foo\.weight: listed"
d=$(fresh shardtensor sharded); f=$(ls "$d"/model-00003-of-*.safetensors)
t=$($PYTHON -c "import json,sys,struct;b=open(sys.argv[1],'rb').read();n=struct.unpack('<Q',b[:8])[0];print(sorted(k for k,v in json.loads(b[8:8+n]).items() if k!='__metadata__' and v['dtype']=='F8_E4M3')[0])" "$f")
$PYTHON "$W/st.py" dtype "$f" "$t" U8
check shard_wrong_dtype "$d" "model-00003-of-[0-9]+\.safetensors: $t: dtype U8"

# config.json: malformed and contradictory.
d=$(fresh badjson); head -c 100 "$W/base/config.json" >"$d/config.json"
check malformed_json "$d" "config\.json: json: line"
# a bad escape whose excerpt holds a newline: the message stays on one line
d=$(fresh jsonnl); printf '{"hidden_size": 256, "x": "a\\\n"}' >"$d/config.json"
check json_newline "$d" "config\.json: json: line 2 column 0: invalid escape near '\"a\\\\\?'"
d=$(fresh nkv); $PYTHON "$W/st.py" cfg "$d/config.json" num_key_value_heads 8
check heads_dims "$d" "config\.json: num_key_value_heads: "
d=$(fresh headdim); $PYTHON "$W/st.py" cfg "$d/config.json" head_dim 100
check head_dim "$d" "config\.json: head_dim: "
d=$(fresh topk); $PYTHON "$W/st.py" cfg "$d/config.json" num_experts_per_tok 17
check topk_gt_experts "$d" "config\.json: num_experts_per_tok: 17"
d=$(fresh ngroup); $PYTHON "$W/st.py" cfg "$d/config.json" n_group 5
check n_group_divides "$d" "config\.json: n_group: 5 does not divide"
d=$(fresh tkg); $PYTHON "$W/st.py" cfg "$d/config.json" topk_group 5
check topk_group "$d" "config\.json: topk_group: 5"
d=$(fresh typ); $PYTHON "$W/st.py" cfg "$d/config.json" hidden_size '"256"'
check wrong_type "$d" "config\.json: hidden_size: expected an integer"
d=$(fresh cfgshape); $PYTHON "$W/st.py" cfg "$d/config.json" hidden_size 320
check config_vs_tensors "$d" "$ST: model\.embed_tokens\.weight: shape \[1024,256\], expected \[1024,320\]"
d=$(fresh nocfg); rm "$d/config.json"
check missing_config "$d" "config\.json: open: No such file"

# The MTP layer without its own head (or embedding) shares the main ones, as DeepSeek-V3's copies do.
d=$(fresh mtpshare); $PYTHON "$W/st.py" drop "$d/$ST" model.layers.4.shared_head.head.weight
$PYTHON "$W/st.py" drop "$d/$ST" model.layers.4.embed_tokens.weight
a=$("$MOECARD" run --model "$W/base" --tokens 0,5,9,13 -n 6 --spec mtp 2>&1)
b=$("$MOECARD" run --model "$d" --tokens 0,5,9,13 -n 6 --spec mtp 2>&1)
if [ -n "$a" ] && [ "$a" = "$b" ]; then pass=$((pass + 1)); echo "ok   mtp shares the main head and embedding"
else fail=$((fail + 1)); echo "FAIL mtp shared head: '$a' vs '$b'"; fi

# perplexity: usage errors exit 2 naming the option, input errors exit 1 naming the file.
printf 'The jury said it did find that many laws are outmoded.\n' >"$W/text.txt"
: >"$W/empty.txt"
pcheck() { # name want_rc pattern args...
  local name=$1 want=$2 pat=$3; shift 3
  local err="$W/$name.err" rc
  "$MOECARD" perplexity "$@" >/dev/null 2>"$err"; rc=$?
  if [ $rc -eq "$want" ] && [ "$(wc -l <"$err")" -eq 1 ] && grep -qE -- "$pat" "$err" &&
     ! grep -qE 'Sanitizer|runtime error' "$err"; then
    pass=$((pass + 1)); printf 'ok   %-22s exit %d: %s\n' "$name" $rc "$(cat "$err")"
  else
    fail=$((fail + 1)); printf 'FAIL %-22s exit %d (want %d): %s\n' "$name" $rc "$want" "$(cat "$err")"
  fi
}
pcheck ppl_nofile 2 "--file F is required" --model "$W/base"
pcheck ppl_missing 1 "$W/nope.txt: No such file" --model "$W/base" --file "$W/nope.txt"
pcheck ppl_empty 1 "empty.txt: 1 token" --model "$W/base" --file "$W/empty.txt"
pcheck ppl_ctx 2 "--ctx: expected 2" --model "$W/base" --file "$W/text.txt" --ctx 1
pcheck ppl_limit 2 "--limit: expected an integer, got '5x'" --model "$W/base" --file "$W/text.txt" --limit 5x
pcheck ppl_neg 2 "--limit: must be >= 0" --model "$W/base" --file "$W/text.txt" --limit -3
pcheck ppl_overflow 2 "--ctx: expected an integer" --model "$W/base" --file "$W/text.txt" --ctx 99999999999
if out=$("$MOECARD" perplexity --model "$W/base" --file "$W/text.txt" --json 2>"$W/ppl.err") &&
   echo "$out" | grep -qE '"perplexity": [0-9.]+' ; then pass=$((pass + 1)); echo "ok   perplexity runs: $out"
else fail=$((fail + 1)); echo "FAIL perplexity: $out $(cat "$W/ppl.err")"; fi

echo "$pass passed, $fail failed"
[ $fail = 0 ]
