#!/usr/bin/env bash
# test_ref_selfcheck.sh - self-checks of the golden-test tools that need no C engine.
# ref.py --selftest: the E4M3 codec (hand-computed codes, all 256 codes, ties to even,
# saturation), YaRN low/high and softmax_scale of the 671B config, RoPE, the router methods, the
# FP8 GEMM against its element-wise definition, and on a random sharded checkpoint: naive ==
# absorbed MLA and causality. Then compare.py on that checkpoint's reference logits: a copy within
# f32 rounding passes; noisy, permuted, mis-shaped or NaN copies fail with exit 1.
# Ends with "N passed, N failed".
set -u
here=$(cd "$(dirname "$0")" && pwd)
PY=${PYTHON:-/usr/bin/python3}
tmp=$(mktemp -d)
trap '[ -n "${KEEP:-}" ] || rm -rf "$tmp"' EXIT
pass=0; fail=0

"$PY" "$here/ref.py" --selftest | tee "$tmp/self.log"
line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$tmp/self.log" | tail -n 1)
if [ -n "$line" ]; then
	pass=$((pass + $(echo "$line" | cut -d' ' -f1)))
	fail=$((fail + $(echo "$line" | cut -d' ' -f3)))
else
	echo "FAIL ref.py --selftest printed no summary"; fail=$((fail + 1))
fi

toks=3,1,4,1,5,9,2,6,5,3,5,8,9,7,9,32,38,46,26,43,38,32,79,50,28,84,19,71,69,39,93,75
"$PY" "$here/ref.py" --write-selftest-model "$tmp/m" &&
"$PY" "$here/ref.py" --model "$tmp/m" --tokens $toks --act none --out "$tmp/ref.npz" &&
"$PY" "$here/ref.py" --model "$tmp/m" --tokens $toks --act fp8 --out "$tmp/ref8.npz" &&
"$PY" "$here/ref.py" --model "$tmp/m" --tokens $toks --act fp8 --perturb 1e-8 \
	--out "$tmp/ref8p.npz" || { echo "FAIL ref.py on the self-check model"; fail=$((fail + 1)); }
"$PY" - "$tmp" <<'PYEOF'
import sys
import numpy as np
d = sys.argv[1]
r = np.load(d + "/ref.npz")
lg, mt = r["logits"], r["mtp_logits"]
rng = np.random.default_rng(5)
np.save(d + "/good.npy", lg.astype(np.float32))
np.save(d + "/good_mtp.npy", mt.astype(np.float32))
np.save(d + "/noisy.npy", (lg * (1 + 1e-4 * rng.standard_normal(lg.shape))).astype(np.float32))
sw = lg.copy()
sw[7] = sw[7][::-1]
np.save(d + "/swap.npy", sw.astype(np.float32))
np.save(d + "/short.npy", lg[:-1].astype(np.float32))
nan = lg.copy()
nan[3, 9] = np.nan
np.save(d + "/nan.npy", nan.astype(np.float32))
p = np.load(d + "/ref8p.npz")  # an "engine" off by f32-like noise in fp8 mode
np.save(d + "/p8.npy", p["logits"].astype(np.float32))
np.save(d + "/p8_mtp.npy", p["mtp_logits"].astype(np.float32))
PYEOF
expect() { # expect RC NAME LOGITS MTP [REF ARGS...]
	local want=$1 name=$2 lg=$3 mt=$4 ref=${5:-ref.npz} rc
	shift 5 2>/dev/null || shift $#
	[ $# = 0 ] && set -- --median-tol 1e-5
	"$PY" "$here/compare.py" --ref "$tmp/$ref" --logits "$tmp/$lg" --mtp "$tmp/$mt" \
		--name "$name" "$@" >"$tmp/$name.log" 2>&1
	rc=$?
	if [ $rc = "$want" ]; then
		echo "ok   compare.py $name: exit $rc"; pass=$((pass + 1))
	else
		echo "FAIL compare.py $name: exit $rc, expected $want"; sed 's/^/     | /' "$tmp/$name.log"
		fail=$((fail + 1))
	fi
}
expect 0 f32-copy good.npy good_mtp.npy
expect 1 noise-1e-4 noisy.npy good_mtp.npy
expect 1 row7-permuted swap.npy good_mtp.npy
expect 1 one-row-short short.npy good_mtp.npy
expect 1 nan-row nan.npy good_mtp.npy
expect 1 mtp-is-main good.npy good.npy
expect 1 missing-file good.npy absent.npy
expect 0 fp8-f32-noise p8.npy p8_mtp.npy ref8.npz --act fp8 --median-tol 0.3
expect 1 fp8-vs-unquantized good.npy good_mtp.npy ref8.npz --act fp8 --median-tol 0.3
expect 1 fp8-no-clean-row p8.npy p8_mtp.npy ref8.npz --act fp8 --median-tol 0.3 --fp8-clean 1
grep -q 'row 7' "$tmp/row7-permuted.log" && { echo "ok   compare.py names row 7"; pass=$((pass + 1)); } ||
	{ echo "FAIL compare.py did not name row 7"; fail=$((fail + 1)); }
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
