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
trap 'rm -rf "$tmp"' EXIT
pass=0; fail=0

"$PY" "$here/ref.py" --selftest | tee "$tmp/self.log"
line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$tmp/self.log" | tail -n 1)
if [ -n "$line" ]; then
	pass=$((pass + $(echo "$line" | cut -d' ' -f1)))
	fail=$((fail + $(echo "$line" | cut -d' ' -f3)))
else
	echo "FAIL ref.py --selftest printed no summary"; fail=$((fail + 1))
fi

"$PY" "$here/ref.py" --write-selftest-model "$tmp/m" &&
"$PY" "$here/ref.py" --model "$tmp/m" --tokens 3,1,4,1,5,9,2,6,5,3,5,8,9,7,9,32 --act none \
	--out "$tmp/ref.npz" || { echo "FAIL ref.py on the self-check model"; fail=$((fail + 1)); }
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
PYEOF
expect() { # expect RC NAME LOGITS MTP
	local want=$1 name=$2 rc
	"$PY" "$here/compare.py" --ref "$tmp/ref.npz" --logits "$tmp/$3" --mtp "$tmp/$4" \
		--median-tol 1e-5 --name "$name" >"$tmp/$name.log" 2>&1
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
grep -q 'row 7' "$tmp/row7-permuted.log" && { echo "ok   compare.py names row 7"; pass=$((pass + 1)); } ||
	{ echo "FAIL compare.py did not name row 7"; fail=$((fail + 1)); }
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
