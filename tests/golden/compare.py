#!/usr/bin/env python3
"""compare.py - judges the C engine's dumped logits against the numpy reference (ref.py).

Where it sits: tests/golden. test_golden.sh runs `moecard run ... --dump-logits L.npy
--dump-mtp-logits M.npy` and `ref.py ... --out REF.npz`, then this. For the main logits and, when
given, the MTP logits it prints the per-row relative error ||a-b||/||b|| (median, p90, max and its
row) and the argmax agreement on the rows whose routing margin exceeds --margin (the rows at or
below it are discounted and counted: a near-tie in a top-k choice may legitimately flip an expert).
An MTP row's margin is the smaller of the main model's margin at that position (its h_i) and the
MTP layer's own.

Usage: compare.py --ref REF.npz --logits L.npy [--mtp M.npy] --median-tol X [--margin 1e-3]
                  [--tie-tol T] [--name CASE]
Exit status: 0 when every criterion holds, 1 when one fails (each failure printed with by how much
and where), 2 for unreadable or mis-shaped input.
"""

import argparse
import sys

import numpy as np


def npy_load(path, what):
    try:
        a = np.load(path)
    except (OSError, ValueError) as e:
        raise SystemExit("compare.py: %s: %s: %s" % (path, what, e))
    return a


def judge(label, a, b, margin, args):
    """Prints one summary line for a (engine) vs b (reference) and returns a list of failures."""
    fails = []
    if a.shape != b.shape:
        return ["%s: shape %s, reference %s" % (label, list(a.shape), list(b.shape))]
    a = a.astype(np.float64)
    nonfin = np.nonzero(~np.isfinite(a).all(axis=1))[0]
    if nonfin.size:
        return ["%s: %d rows with NaN/Inf, first row %d" % (label, nonfin.size, nonfin[0])]
    err = np.linalg.norm(a - b, axis=1) / np.maximum(np.linalg.norm(b, axis=1), 1e-300)
    med, p90 = np.median(err), np.percentile(err, 90)
    worst = int(np.argmax(err))
    keep = margin > args.margin
    am, bm = np.argmax(a, axis=1), np.argmax(b, axis=1)
    # A flip between two reference logits closer than tie_tol * rms(row) is a tie, not an error.
    rms = np.sqrt(np.mean(b * b, axis=1))
    tie = b[np.arange(len(b)), am] >= b[np.arange(len(b)), bm] - args.tie_tol * rms
    agree = (am == bm) | tie
    bad = np.nonzero(keep & ~agree)[0]
    print("%s %s: rel err median %.2e p90 %.2e max %.2e (row %d); argmax %d/%d agree "
          "(%d ties within %.0e), %d rows discounted (margin <= %.0e), %d flips there"
          % (args.name, label, med, p90, err[worst], worst, np.sum(keep & agree), np.sum(keep),
             np.sum(keep & tie & (am != bm)), args.tie_tol, np.sum(~keep), args.margin,
             np.sum(~keep & (am != bm))))
    if med > args.median_tol:
        fails.append("%s: median rel err %.3e > %.1e (p90 %.3e, worst row %d: %.3e)"
                     % (label, med, args.median_tol, p90, worst, err[worst]))
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
    ap.add_argument("--median-tol", type=float, required=True)
    ap.add_argument("--margin", type=float, default=1e-3)
    ap.add_argument("--tie-tol", type=float, default=0.0)
    ap.add_argument("--name", default="case")
    args = ap.parse_args()
    try:
        ref = np.load(args.ref)
    except (OSError, ValueError) as e:
        print("compare.py: %s: %s" % (args.ref, e), file=sys.stderr)
        return 2
    a = npy_load(args.logits, "logits")
    margins = ref["margins"]
    fails = judge("logits", a, ref["logits"], margins, args)
    if args.mtp:
        if "mtp_logits" not in ref:
            fails.append("mtp: the reference has no MTP layer")
        else:
            m = npy_load(args.mtp, "mtp logits")
            mm = np.minimum(margins[:-1], ref["mtp_margins"])
            fails += judge("mtp", m, ref["mtp_logits"], mm, args)
    for f in fails:
        print("%s FAIL %s" % (args.name, f))
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
