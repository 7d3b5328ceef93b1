#!/usr/bin/env python3
"""routing.py - expert popularity per MoE layer from moecard routing traces (--expert-trace).

  routing.py TRACE [LABEL] [TRACE LABEL]...   a table per trace: for each MoE layer the share of
  routed slots each expert got, summarized as normalized entropy (1 = perfectly even), max/mean
  and min/mean load, and the experts never chosen. numpy only; the format is
  host/sched/expert_trace.h (version 1).
"""
import struct
import sys

import numpy as np


def read_trace(path):
    b = open(path, "rb").read()
    magic, ver, hb = struct.unpack_from("<IHH", b, 0)
    if magic != 0x5458434D or ver != 1:
        raise SystemExit("routing: %s: not a version 1 moecard expert trace" % path)
    L, first, E, k = struct.unpack_from("<IIII", b, 8)
    rec = struct.unpack_from("<I", b, 56)[0]
    n = (len(b) - hb) // rec
    layers = np.zeros(n, dtype=np.int64)
    experts = np.zeros((n, k), dtype=np.int64)
    for i in range(n):
        o = hb + i * rec
        layers[i] = struct.unpack_from("<i", b, o)[0]
        experts[i] = struct.unpack_from("<%di" % k, b, o + 8)
    return {"layers": L, "first": first, "E": E, "k": k, "layer": layers, "expert": experts}


def popularity(t):
    rows = []
    for l in sorted(set(t["layer"].tolist())):
        ex = t["expert"][t["layer"] == l].reshape(-1)
        cnt = np.bincount(ex, minlength=t["E"]).astype(np.float64)
        p = cnt / cnt.sum()
        nz = p[p > 0]
        ent = float(-(nz * np.log(nz)).sum() / np.log(t["E"]))
        mean = cnt.mean()
        rows.append((l, int(cnt.sum()) // t["k"], ent, cnt.max() / mean, cnt.min() / mean,
                     int((cnt == 0).sum())))
    return rows


def main():
    args = sys.argv[1:]
    if not args:
        raise SystemExit(__doc__)
    pairs = [(args[i], args[i + 1] if i + 1 < len(args) else args[i]) for i in range(0, len(args), 2)]
    print("| trace | layer | tokens | entropy (1 = even) | max/mean | min/mean | never chosen |")
    print("|---|---|---|---|---|---|---|")
    for path, label in pairs:
        for l, n, ent, mx, mn, zero in popularity(read_trace(path)):
            print("| %s | %d | %d | %.3f | %.2f | %.2f | %d |" % (label, l, n, ent, mx, mn, zero))


if __name__ == "__main__":
    main()
