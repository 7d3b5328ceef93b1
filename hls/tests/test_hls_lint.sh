#!/usr/bin/env bash
# test_hls_lint.sh - keeps the kernels inside the synthesizable subset of C that Vitis HLS takes:
#  1. each kernel compiles with -D__SYNTHESIS__ -DHLS_STRICT (hls_strict.h poisons heap, stdio
#     and exit) and -Wvla -Werror;
#  2. -fstack-usage: every function's frame is static (no VLA, no alloca);
#  3. -fcallgraph-info: the call graph has no cycle (no recursion);
#  4. grep rules on the synthesized text (host-only #ifndef __SYNTHESIS__ blocks removed): no
#     goto, no while loops (every loop is a counted for), no double, no heap or stdio, an
#     s_axilite return port and at least one labelled pipelined loop;
#  5. hls/<kernel>/build.cfg equals the parameters compiled into the C;
#  6. every instrumented loop id (hls_timing.h) is counted somewhere.
# Prints one line per check and "N passed, N failed".
set -u
cd "$(dirname "$0")/../.."
CC=${CC:-gcc}
PY=${PYTHON:-/usr/bin/python3}
pass=0; fail=0
ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
KERNELS="fp8_gemm/fp8_gemm fp8_gemv/fp8_gemv vec_ops/vec_ops mla_attn/mla_attn mla_attn/mla_attn_lanes moe_route/moe_route"
for kp in $KERNELS; do
  k=${kp#*/}
  src=hls/$kp.c
  if $CC -std=c11 -D__SYNTHESIS__ -DHLS_STRICT -I. -Ihls/include -Wall -Wextra -Werror -Wvla \
      -Wno-unknown-pragmas -Wno-unused-label -fstack-usage -fcallgraph-info \
      -c "$src" -o "$tmp/$k.o" 2>"$tmp/$k.err"; then
    ok "$k: strict synthesizable-subset compile (-DHLS_STRICT -Wvla -Werror)"
  else
    bad "$k: strict compile failed: $(head -c 600 "$tmp/$k.err")"; continue
  fi
  dyn=$(grep -vE 'static$|dynamic,bounded$' "$tmp/$k.su" || true)
  if [ -z "$dyn" ]; then ok "$k: all stack frames bounded (no VLA, no alloca)"; else bad "$k: dynamic stack frames: $dyn"; fi
  cyc=$("$PY" - "$tmp/$k.ci" <<'PYEOF'
import re, sys
g = {}
for m in re.finditer(r'edge: \{ sourcename: "([^"]+)" targetname: "([^"]+)"', open(sys.argv[1]).read()):
    g.setdefault(m.group(1), set()).add(m.group(2))
state = {}
def dfs(u, path):
    state[u] = 1
    for v in g.get(u, ()):
        if state.get(v) == 1:
            return path + [v]
        if not state.get(v):
            r = dfs(v, path + [v])
            if r:
                return r
    state[u] = 2
    return None
for u in list(g):
    if not state.get(u):
        r = dfs(u, [u])
        if r:
            print(" -> ".join(r)); break
PYEOF
)
  if [ -z "$cyc" ]; then ok "$k: call graph acyclic (no recursion)"; else bad "$k: recursion: $cyc"; fi
  # synthesized text: drop host-only blocks and comments
  awk '/^#ifndef __SYNTHESIS__/{skip=1; next} skip && /^#endif/{skip=0; next} !skip' "$src" |
    sed 's|/\*.*\*/||g; s|//.*||' > "$tmp/$k.syn"
  hits=$(grep -nE '\bgoto\b|\bwhile[[:space:]]*\(|\bdouble\b|\b(malloc|calloc|realloc|free|printf|fopen)[[:space:]]*\(' "$tmp/$k.syn" || true)
  if [ -z "$hits" ]; then ok "$k: grep rules (no goto/while/double/heap/stdio)"; else bad "$k: forbidden constructs: $hits"; fi
  if grep -q 'pragma HLS INTERFACE s_axilite port=return' "$src" && grep -q 'pragma HLS PIPELINE II=1' "$src" &&
     grep -qE '^[[:space:]]*[a-z_0-9]+:$' "$src"; then
    ok "$k: s_axilite control, II=1 pipelines, labelled loops"
  else
    bad "$k: missing s_axilite return port, II=1 pipeline or loop labels"
  fi
done
# shared headers used by the kernels
hh=$(sed 's|/\*.*\*/||g' hls/include/e4m3.h hls/include/hls_math.h hls/include/hls_quant.h |
     grep -nE '\bgoto\b|\bwhile[[:space:]]*\(|\bdouble\b|\b(malloc|free|printf)[[:space:]]*\(' || true)
if [ -z "$hh" ]; then ok "kernel headers: grep rules"; else bad "kernel headers: $hh"; fi
# build.cfg vs compiled-in parameters
cfg() { sed -n "s/^$2[[:space:]]*=[[:space:]]*//p" "hls/$1/build.cfg"; }
def() { sed -n "s/^#define $2 \([0-9]*\).*/\1/p" "$1" | head -n 1; }
chk() { # kernel key header macro
  a=$(cfg "$1" "$2"); b=$(def "$3" "$4")
  if [ -n "$a" ] && [ "$a" = "$b" ]; then ok "$1 build.cfg $2 = $a matches $4"; else bad "$1 build.cfg $2 = '$a' but $4 = '$b'"; fi
}
chk fp8_gemm TM hls/fp8_gemm/fp8_gemm.h FP8_GEMM_TM
chk fp8_gemm TN hls/fp8_gemm/fp8_gemm.h FP8_GEMM_TN
chk fp8_gemm MB hls/fp8_gemm/fp8_gemm.h FP8_GEMM_MB
chk fp8_gemm AXI_BITS hls/fp8_gemm/fp8_gemm.h FP8_GEMM_AXI_BITS
chk fp8_gemv R hls/fp8_gemv/fp8_gemv.h FP8_GEMV_R
chk fp8_gemv MAX_LANES hls/fp8_gemv/fp8_gemv.h FP8_GEMV_MAX_LANES
chk fp8_gemv MAX_M hls/fp8_gemv/fp8_gemv.h FP8_GEMV_MAX_M
chk fp8_gemv PR hls/fp8_gemv/fp8_gemv.h FP8_GEMV_PR
chk fp8_gemv AXI_BITS hls/fp8_gemv/fp8_gemv.c FP8_GEMV_AXI_BITS
chk vec_ops LANES hls/vec_ops/vec_ops.h VEC_LANES
chk moe_route P hls/moe_route/moe_route.h MOE_ROUTE_P
chk mla_attn HG hls/mla_attn/mla_attn.h MLA_HG
chk mla_attn DL hls/mla_attn/mla_attn.h MLA_DL
chk mla_attn TB hls/mla_attn/mla_attn.h MLA_TB
chk mla_attn LANE_MACS hls/mla_attn/mla_attn.h MLA_LANE_MACS
chk mla_attn LANE_IMACS hls/mla_attn/mla_attn.h MLA_LANE_IMACS
chk mla_attn MAX_LANES hls/mla_attn/mla_attn.h MLA_MAX_LANES
# every loop id is instrumented
for id in $(sed -n 's/^[[:space:]]*\(HLS_L_[A-Z_]*\),.*/\1/p' hls/include/hls_timing.h); do
  if grep -q "HLS_CNT($id)" hls/*/*.c; then :; else bad "loop id $id is never counted"; fi
done
ok "instrumented loop ids all counted"
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
