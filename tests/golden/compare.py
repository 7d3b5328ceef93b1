#!/usr/bin/env python3
"""compare.py - judges the C engine's dumped logits against the numpy reference (ref.py).

Where it sits: tests/golden. test_golden.sh runs `moecard run ... --dump-logits L.npy
--dump-mtp-logits M.npy` and `ref.py ... --out REF.npz`, then this. For the main logits and, when
given, the MTP logits it prints the per-row relative error ||a-b||/||b|| (median, p90, max and its
row) and the argmax agreement on the rows whose routing margin exceeds --margin (the rows at or
below it are discounted and counted: a near-tie in a top-k choice may legitimately flip an expert).
An MTP row's margin is the smaller of the main model's margin at that position (its h_i) and the
MTP layer's own.

--act none: median error <= --median-tol and argmax agreement on every row kept.
--act fp8: E4M3 rounding is discontinuous. Where an activation lies closer to a rounding boundary
than the engine's f32 arithmetic differs from this float64 reference, the two take different
codes, and that difference reaches every later row through the KV cache and grows through later
code and routing flips, to the size of FP8 noise itself. ref.py records for each row its FP8
margin: the smallest relative distance of any quantized activation at positions <= i to a rounding
boundary. Hence two criteria:
  - FP8-clean rows (FP8 margin > --fp8-clean, and every routing margin up to the row above
    --margin): the engine must have taken the same codes and experts, so the row must match like
    --act none: error <= --clean-tol and argmax agreement; there must be at least one such row, or
    the check says nothing;
  - all rows: median error <= --median-tol (the FP8-noise bound) and argmax agreement on at least
    --min-agree of the rows kept.

Usage: compare.py --ref REF.npz --logits L.npy [--mtp M.npy] --median-tol X [--margin 1e-3]
                  [--act none|fp8 [--fp8-clean 1e-6] [--clean-tol 1e-4] [--min-agree 0.4]]
                  [--name CASE]
Exit status: 0 when every criterion holds; 1 when one fails (each failure printed with by how much
and where), also for a missing, unreadable or mis-shaped engine output; 2 for an unreadable
reference.
"""

import argparse
import sys

import numpy as np


def npy_load(path, what):
    try:
        return np.load(path), None
    except (OSError, ValueError) as e:
        return None, "%s: %s: %s" % (what, path, e)


def judge(label, a, b, margin, fp8m, args):
    """Prints one summary line for a (engine) vs b (reference) and returns a list of failures."""
    fails = []
    if a.shape != b.shape:
        return ["%s: shape %s, reference %s" % (label, list(a.shape), list(b.shape))]
    a = a.astype(np.float64)
    nonfin = np.nonzero(~np.isfinite(a).all(axis=1))[0]
    if nonfin.size:
        return ["%s: %d rows with NaN/Inf, first row %d" % (label, nonfin.size, nonfin[0])]
    n = len(b)
    err = np.linalg.norm(a - b, axis=1) / np.maximum(np.linalg.norm(b, axis=1), 1e-300)
    med, p90 = np.median(err), np.percentile(err, 90)
    worst = int(np.argmax(err))
    keep = margin > args.margin
    am, bm = np.argmax(a, axis=1), np.argmax(b, axis=1)
    agree = am == bm
    line = "%s %s: err med %.2e p90 %.2e max %.2e @row %d; argmax %d/%d, %d discounted " \
        "(margin<=%.0e, %d flipped)" % (args.name, label, med, p90, err[worst], worst,
                                        np.sum(keep & agree), np.sum(keep), np.sum(~keep),
                                        args.margin, np.sum(~keep & ~agree))
    if med > args.median_tol:
        fails.append("%s: median rel err %.3e > %.1e (p90 %.3e, worst row %d: %.3e)"
                     % (label, med, args.median_tol, p90, worst, err[worst]))
    if args.act == "none":
        strict = keep
    else:
        # A routing flip at position j reaches the rows after j through the KV cache as a code
        # flip does: the exact check also needs every routing margin up to the row above --margin.
        clean = (fp8m > args.fp8_clean) & (np.minimum.accumulate(margin) > args.margin)
        strict = keep & clean
        cmax = err[clean].max() if clean.any() else 0.0
        cw = int(np.nonzero(clean)[0][np.argmax(err[clean])]) if clean.any() else -1
        line += "; FP8-clean rows %d (fp8 margin>%.0e): err max %.2e, argmax %d/%d" % (
            np.sum(clean), args.fp8_clean, cmax, np.sum(strict & agree), np.sum(strict))
        if not clean.any():
            fails.append("%s: no FP8-clean row (fp8 margin > %.0e and routing margins so far > "
                         "%.0e; row 0: %.2e, %.2e): the exact check would say nothing"
                         % (label, args.fp8_clean, args.margin, fp8m[0], margin[0]))
        elif cmax > args.clean_tol:
            fails.append("%s: FP8-clean row %d (fp8 margin %.2e): rel err %.3e > %.0e"
                         % (label, cw, fp8m[cw], cmax, args.clean_tol))
        frac = np.mean(agree[keep]) if keep.any() else 1.0
        if frac < args.min_agree:
            fails.append("%s: argmax agrees on %.1f%% of the rows kept, below %.0f%%"
                         % (label, 100 * frac, 100 * args.min_agree))
    print(line)
    bad = np.nonzero(strict & ~agree)[0]
    for r in bad[:5]:
        fails.append("%s: row %d (margin %.2e): engine argmax %d (ref logit %.6g), ref argmax %d "
                     "(%.6g); row rel err %.3e" % (label, r, margin[r], am[r], b[r, am[r]], bm[r],
                                                  b[r, bm[r]], err[r]))
    if bad.size > 5:
        fails.append("%s: ... %d argmax disagreements in all" % (label, bad.size))
    return fails


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ref", required=True)
    ap.add_argument("--logits", required=True)
    ap.add_argument("--mtp")
    ap.add_argument("--act", choices=["none", "fp8"], default="none")
    ap.add_argument("--median-tol", type=float, required=True)
    ap.add_argument("--margin", type=float, default=1e-3)
    ap.add_argument("--fp8-clean", type=float, default=1e-6)
    ap.add_argument("--clean-tol", type=float, default=1e-4)
    ap.add_argument("--min-agree", type=float, default=0.4)
    ap.add_argument("--name", default="case")
    args = ap.parse_args()
    try:
        ref = np.load(args.ref)
        ref_logits, margins = ref["logits"], ref["margins"]
        fp8m = ref["fp8_margins"]
    except (OSError, ValueError, KeyError) as e:
        print("compare.py: %s: %s" % (args.ref, e), file=sys.stderr)
        return 2
    fails = []
    a, err = npy_load(args.logits, "logits")
    if err:
        fails.append(err)
    else:
        fails += judge("logits", a, ref_logits, margins, fp8m, args)
    if args.mtp:
        m, err = npy_load(args.mtp, "mtp logits")
        if "mtp_logits" not in ref:
            fails.append("mtp: the reference has no MTP layer")
        elif err:
            fails.append(err)
        else:
            mm = np.minimum(margins[:-1], ref["mtp_margins"])
            fails += judge("mtp", m, ref["mtp_logits"], mm, ref["mtp_fp8_margins"], args)
    for f in fails:
        print("%s FAIL %s" % (args.name, f))
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
