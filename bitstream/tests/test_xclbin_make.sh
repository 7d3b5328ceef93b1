#!/usr/bin/env bash
# test_xclbin_make.sh - `make xclbin` without Vitis: a stand-in v++ records its calls. For every
# shipped tree, `gen kernels` lists each kernel the tree instantiates once, with the tree's build
# parameters as the kernel headers' macros (U55C: PE 16x32, one GEMV row, 8 attention MACs, 4 a
# lane, no FP8 datapath); `make xclbin` compiles exactly those kernels with those flags and links
# them with the tree's connectivity.cfg; a tree whose CUs of one kernel disagree is refused with
# one line naming both CUs.
set -u
B=${B:-build}
gen=$B/bitstream/gen
pass=0; fail=0
ok() { pass=$((pass+1)); echo "ok   $*"; }
bad() { fail=$((fail+1)); echo "FAIL $*"; }
[ -x "$gen" ] || { echo "FAIL $gen not built"; echo "0 passed, 1 failed"; exit 1; }
T=$(mktemp -d "${TMPDIR:-/tmp}/moecard-xclbin.XXXXXX")
trap 'rm -rf "$T"' EXIT

for card in emu u55c u280 v80; do
  if ! "$gen" kernels "$B/board/$card.dtb" "$T/$card.txt" 2>"$T/$card.err"; then
    bad "$card: gen kernels: $(cat "$T/$card.err")"; continue
  fi
  # the kernels listed = the kernels of the connectivity's nk= lines, each once
  want=$(sed -n 's/^nk=\([a-z0-9_]*\):.*/\1/p' "$B/bitstream/$card/connectivity.cfg" | sort)
  got=$(awk '{print $1}' "$T/$card.txt" | sort)
  if [ "$want" = "$got" ] && [ -z "$(echo "$got" | uniq -d)" ]; then
    ok "$card: gen kernels lists the tree's $(echo "$got" | wc -l) kernels once each"
  else
    bad "$card: kernels $(echo $got) against nk= $(echo $want)"
  fi
  # every source exists
  missing=$(awk '{print $2}' "$T/$card.txt" | tr , '\n' | while read -r s; do [ -f "$s" ] || echo "$s"; done)
  [ -z "$missing" ] && ok "$card: every source exists" || bad "$card: missing $missing"
done
grep -qx 'fp8_gemm hls/fp8_gemm/fp8_gemm.c -DFP8_GEMM_TM=16 -DFP8_GEMM_TN=32 -DFP8_GEMM_AXI_BITS=512' "$T/u55c.txt" &&
  grep -qx 'fp8_gemv hls/fp8_gemv/fp8_gemv.c -DFP8_GEMV_PR=1 -DFP8_GEMV_F32=8 -DFP8_GEMV_AXI_BITS=512' "$T/u55c.txt" &&
  ! grep -q '^mla_attn ' "$T/u55c.txt" &&
  grep -qx 'mla_attn_lanes hls/mla_attn/mla_attn_lanes.c,hls/mla_attn/mla_attn.c -DMLA_LANE_MACS=8 -DMLA_LANES_NO_FP8=1 -DMLA_LANE_EXP_II=9' "$T/u55c.txt" &&
  ok "u55c: the tree's build parameters as flags" || bad "u55c flags: $(cat "$T/u55c.txt")"
grep -q 'NO_FP8' "$T/emu.txt" && bad "emu: built without the FP8 datapath" || ok "emu: keeps the FP8 datapath"

# make xclbin with a stand-in v++: one -c per kernel with its flags, then one -l with the config
cat >"$T/v++" <<'V'
#!/bin/sh
echo "$*" >>"$VPP_LOG"
out=; prev=
for a in "$@"; do [ "$prev" = -o ] && out=$a; prev=$a; done
[ -n "$out" ] && : >"$out"
exit 0
V
chmod +x "$T/v++"
if VPP_LOG="$T/vpp.log" make -s xclbin B="$B" VPP="$T/v++" PLATFORM=fake_platform BOARD=u55c \
  TARGET=hw_emu >"$T/make.out" 2>&1; then
  nc=$(grep -c '^-c ' "$T/vpp.log"); nl=$(grep -c '^-l ' "$T/vpp.log")
  if [ "$nc" = "$(wc -l <"$T/u55c.txt")" ] && [ "$nl" = 1 ] &&
     grep -q -- '-k mla_attn_lanes .*-DMLA_LANE_MACS=8 -DMLA_LANES_NO_FP8=1 -DMLA_LANE_EXP_II=9 .*hls/mla_attn/mla_attn_lanes.c hls/mla_attn/mla_attn.c' "$T/vpp.log" &&
     grep -q -- '-k fp8_gemm .*-DFP8_GEMM_TM=16 -DFP8_GEMM_TN=32' "$T/vpp.log" &&
     grep -q -- "^-l .*--config $B/bitstream/u55c/connectivity.cfg" "$T/vpp.log"; then
    ok "make xclbin: $nc kernels compiled with the tree's flags, one link with its config"
  else
    bad "make xclbin: $(cat "$T/vpp.log")"
  fi
else
  bad "make xclbin with a stand-in v++: $(tail -3 "$T/make.out")"
fi

# CUs of one kernel that disagree: refused, one line naming both
if command -v fdtput >/dev/null; then
  cp "$B/board/emu.dtb" "$T/mixed.dtb"
  n2=$(fdtget -l "$T/mixed.dtb" /compute-units | grep '^fp8_gemm_2@')
  fdtput -t u "$T/mixed.dtb" "/compute-units/$n2" moecard,pe 4 16
  if ! "$gen" kernels "$T/mixed.dtb" "$T/mixed.txt" 2>"$T/mixed.err" &&
     [ "$(wc -l <"$T/mixed.err")" = 1 ] && grep -q "fp8_gemm_1 and fp8_gemm_2" "$T/mixed.err" &&
     [ ! -e "$T/mixed.txt" ]; then
    ok "CUs of one kernel with other PEs: $(cat "$T/mixed.err")"
  else
    bad "mixed PEs: $(cat "$T/mixed.err")"
  fi
else
  bad "fdtput (device-tree-compiler) missing"
fi
echo "$pass passed, $fail failed"
[ $fail = 0 ]
