#!/usr/bin/env python3
"""ref.py - the independent numpy reference of a DeepSeek-V3/V2-family forward pass.

Where it sits: tests/golden. `moecard run --dump-logits/--dump-mtp-logits` writes the C engine's
logits; this file recomputes them straight from docs/model.md (and docs/numerics.md for --act fp8)
in float64, and compare.py judges the engine against it. It shares no code with the engine: the
safetensors reader, the E4M3 codec, the FP8 GEMM, MLA, YaRN, the router and MTP are written here
again from the documents.

Usage:
  ref.py --model DIR --tokens 1,2,3 --act none|fp8 --out REF.npz [--mla naive|absorbed]
      REF.npz holds logits [n, vocab], mtp_logits [n-1, vocab] (absent without an MTP layer),
      margins [n] and mtp_margins [n-1] (routing margins, see router_select), all float64.
  ref.py --selftest
      Runs the reference's own checks and ends with "N passed, N failed".
  ref.py --write-selftest-model DIR
      Writes the self-check's small random checkpoint (sharded FP8, partial blocks, MTP).

Needs numpy only (Debian python3-numpy).
"""

import argparse
import json
import math
import os
import sys

import numpy as np

# --------------------------------------------------------------------------------------------
# OCP FP8 E4M3FN: bit 7 sign, bits 6..3 exponent (bias 7), bits 2..0 mantissa; no infinities;
# S.1111.111 is NaN; subnormals (exponent 0) are m/8 * 2^-6; largest finite 448 (S.1111.110).


def e4m3_build_table():
    """Decode table: float64[256], code -> value (NaN for the two NaN codes)."""
    t = np.zeros(256, dtype=np.float64)
    for c in range(256):
        sign = -1.0 if c & 0x80 else 1.0
        e = (c >> 3) & 0xF
        m = c & 7
        if e == 0xF and m == 7:
            t[c] = np.nan
        elif e == 0:
            t[c] = sign * (m / 8.0) * 2.0 ** -6
        else:
            t[c] = sign * (1.0 + m / 8.0) * 2.0 ** (e - 7)
    return t


E4M3 = e4m3_build_table()
E4M3_POS = E4M3[:127].copy()  # codes 0x00..0x7E: the non-negative finite values, increasing
E4M3_MAX = 448.0


def e4m3_encode(x):
    """Vectorised encoder: nearest finite E4M3 value, ties to the even code, saturation to
    +-448 (inf included), NaN -> S.1111.111. Returns uint8 codes of x's shape."""
    x = np.asarray(x, dtype=np.float64)
    nan = np.isnan(x)
    neg = np.signbit(x)
    a = np.minimum(np.abs(np.where(nan, 0.0, x)), E4M3_MAX)
    hi = np.searchsorted(E4M3_POS, a, side="left")  # E4M3_POS[hi] >= a
    hi = np.minimum(hi, 126)
    lo = np.maximum(hi - 1, 0)
    dlo = a - E4M3_POS[lo]
    dhi = E4M3_POS[hi] - a
    take_hi = (dhi < dlo) | ((dhi == dlo) & (hi % 2 == 0))
    mag = np.where(take_hi, hi, lo).astype(np.uint8)
    code = mag | np.where(neg, 0x80, 0).astype(np.uint8)
    code = np.where(nan, code | 0x7F, code)
    return code.astype(np.uint8)


def e4m3_encode_scalar(f):
    """Independent scalar encoder (exponent/mantissa arithmetic) used to cross-check the
    vectorised one."""
    if math.isnan(f):
        return 0xFF if math.copysign(1.0, f) < 0 else 0x7F
    s = 0x80 if math.copysign(1.0, f) < 0 else 0
    a = abs(f)
    if a >= 448.0:
        return s | 0x7E
    if a < 2.0 ** -6:  # subnormal quantum 2^-9
        q = a * 512.0
        n = math.floor(q)
        r = q - n
        if r > 0.5 or (r == 0.5 and n % 2 == 1):
            n += 1
        return s | n
    m, e = math.frexp(a)  # a = m * 2^e, m in [0.5, 1)
    exp = e - 1 + 7  # biased exponent of 1.xxx * 2^(e-1)
    frac = (m * 2.0 - 1.0) * 8.0  # mantissa in units of 1/8
    n = math.floor(frac)
    r = frac - n
    code = (exp << 3) + n
    if r > 0.5 or (r == 0.5 and code % 2 == 1):
        code += 1
    return s | min(code, 0x7E)


# --------------------------------------------------------------------------------------------
# safetensors: 8-byte little-endian header length, a JSON header {name: {dtype, shape,
# data_offsets}} (offsets relative to the end of the header), then raw little-endian data.

ST_DTYPES = {"F8_E4M3": (np.uint8, 1), "BF16": (np.uint16, 2), "F16": (np.float16, 2),
             "F32": (np.float32, 4)}


class RefError(Exception):
    """A one-line error naming the file and the field."""


class Checkpoint:
    """A checkpoint directory: config.json plus model.safetensors or a sharded index."""

    def __init__(self, path):
        self.path = path
        cfg_path = os.path.join(path, "config.json")
        try:
            with open(cfg_path) as f:
                self.cfg = json.load(f)
        except (OSError, ValueError) as e:
            raise RefError("config.json: %s" % e)
        self.tensors = {}  # name -> (file, dtype, shape, begin, end)
        self.maps = {}  # file -> np.memmap of the whole file
        index = os.path.join(path, "model.safetensors.index.json")
        if os.path.exists(index):
            with open(index) as f:
                wm = json.load(f)["weight_map"]
            files = sorted(set(wm.values()))
            for fn in files:
                self._read_header(fn)
            for name, fn in wm.items():
                if name not in self.tensors or self.tensors[name][0] != fn:
                    raise RefError("%s: %s: in weight_map but not in the shard" % (fn, name))
        else:
            self._read_header("model.safetensors")

    def _read_header(self, fn):
        full = os.path.join(self.path, fn)
        try:
            mm = np.memmap(full, dtype=np.uint8, mode="r")
        except (OSError, ValueError) as e:
            raise RefError("%s: %s" % (fn, e))
        if mm.size < 8:
            raise RefError("%s: header length: file shorter than 8 bytes" % fn)
        hlen = int(np.frombuffer(mm[:8].tobytes(), dtype="<u8")[0])
        if 8 + hlen > mm.size:
            raise RefError("%s: header length: %d beyond the file" % (fn, hlen))
        hdr = json.loads(mm[8:8 + hlen].tobytes().decode("utf-8"))
        base = 8 + hlen
        for name, d in hdr.items():
            if name == "__metadata__":
                continue
            dt = d["dtype"]
            if dt not in ST_DTYPES:
                raise RefError("%s: %s: unsupported dtype %s" % (fn, name, dt))
            b, e = d["data_offsets"]
            shape = tuple(int(v) for v in d["shape"])
            n = int(np.prod(shape)) if shape else 1
            if e - b != n * ST_DTYPES[dt][1] or base + e > mm.size:
                raise RefError("%s: %s: data_offsets [%d,%d] wrong" % (fn, name, b, e))
            self.tensors[name] = (fn, dt, shape, base + b, base + e)
        self.maps[fn] = mm

    def has(self, name):
        return name in self.tensors

    def raw(self, name):
        """(dtype string, array): F8_E4M3 as uint8 codes, the others as float64."""
        if name not in self.tensors:
            raise RefError("%s: %s: missing tensor" % (self.path, name))
        fn, dt, shape, b, e = self.tensors[name]
        buf = self.maps[fn][b:e]
        npdt = ST_DTYPES[dt][0]
        a = np.frombuffer(buf.tobytes(), dtype=np.dtype(npdt).newbyteorder("<")).reshape(shape)
        if dt == "F8_E4M3":
            return dt, a
        if dt == "BF16":
            return dt, (a.astype(np.uint32) << 16).view(np.float32).astype(np.float64)
        return dt, a.astype(np.float64)

    def vec(self, name):
        """A norm weight, bias, embedding or head as float64 (any non-FP8 dtype)."""
        dt, a = self.raw(name)
        if dt == "F8_E4M3":
            raise RefError("%s: %s: FP8 where BF16/F32 was expected" % (self.path, name))
        return a


# --------------------------------------------------------------------------------------------
# Linear layers. FP8 weights: W = e4m3(code) * scale_inv[i//128][j//128] (the "inv" multiplies).

BLK = 128


def blocks_expand(scale, rows, cols):
    """[ceil(rows/128), ceil(cols/128)] block scales -> [rows, cols] per-element scales."""
    return np.repeat(np.repeat(scale, BLK, axis=0), BLK, axis=1)[:rows, :cols]


E4M3_MIDS = (E4M3_POS[:-1] + E4M3_POS[1:]) / 2  # the 126 rounding boundaries of |x/s|


def act_quant(x, ue8m0):
    """Activation quantization of docs/numerics.md, per row and per 128 consecutive columns
    (a partial last group uses its own amax). Returns (codes uint8 [T, K], scales [T, nkb],
    fp8 margin [T]): the margin is the smallest relative distance of any |x/s| of the row to a
    rounding boundary (and, for ue8m0, of s to a power of two): an engine whose activations
    differ from this reference by less than it quantizes the row to the same codes."""
    T, K = x.shape
    nkb = (K + BLK - 1) // BLK
    codes = np.zeros((T, K), dtype=np.uint8)
    sa = np.zeros((T, nkb))
    margin = np.full(T, np.inf)
    for kb in range(nkb):
        xb = x[:, kb * BLK:(kb + 1) * BLK]
        s = np.maximum(np.max(np.abs(xb), axis=1), 1e-4) / 448.0
        if ue8m0:
            p = scale_pow2_ceil(s)
            lo = np.abs(s - p / 2) / s  # distance to the power of two below, and to p
            margin = np.minimum(margin, np.minimum(lo, np.abs(p - s) / s))
            s = p
        sa[:, kb] = s
        v = np.abs(xb / s[:, None])
        i = np.clip(np.searchsorted(E4M3_MIDS, v), 1, len(E4M3_MIDS) - 1)
        d = np.minimum(np.abs(v - E4M3_MIDS[i - 1]) / E4M3_MIDS[i - 1],
                       np.abs(v - E4M3_MIDS[i]) / E4M3_MIDS[i])
        margin = np.minimum(margin, d.min(axis=1))
        codes[:, kb * BLK:(kb + 1) * BLK] = e4m3_encode(xb / s[:, None])
    return codes, sa, margin


def scale_pow2_ceil(s):
    """2^ceil(log2 s), exactly (frexp: s = m * 2^e with m in [0.5, 1))."""
    m, e = np.frexp(s)
    return np.ldexp(1.0, np.where(m == 0.5, e - 1, e))


class Linear:
    """y = x W^T. FP8 weights keep their codes and block scales; quant_act says whether this
    Linear quantizes its input in --act fp8 (not for router, heads, eh_proj, kv_b_proj)."""

    def __init__(self, ck, name, out_dim, in_dim, quant_act=True):
        dt, a = ck.raw(name + ".weight")
        if a.shape != (out_dim, in_dim):
            raise RefError("%s.weight: shape %s, expected %s" % (name, list(a.shape),
                                                                [out_dim, in_dim]))
        self.name = name
        self.fp8 = dt == "F8_E4M3"
        self.quant_act = quant_act
        if self.fp8:
            _, sc = ck.raw(name + ".weight_scale_inv")
            want = ((out_dim + BLK - 1) // BLK, (in_dim + BLK - 1) // BLK)
            if sc.shape != want:
                raise RefError("%s.weight_scale_inv: shape %s, expected %s"
                               % (name, list(sc.shape), list(want)))
            self.wq = E4M3[a]  # decoded codes, unscaled
            self.sw = sc
            self.w = self.wq * blocks_expand(sc, out_dim, in_dim)
        else:
            self.w = a

    def __call__(self, x, act, ue8m0=False):
        if not (act == "fp8" and self.fp8 and self.quant_act):
            return x @ self.w.T
        if PERTURB["eps"]:
            x = x * (1.0 + PERTURB["eps"] * PERTURB["rng"].standard_normal(x.shape))
        y, margin = fp8_gemm(x, self.wq, self.sw, ue8m0)
        if TRACK["arr"] is not None:
            pos = TRACK["pos"] if TRACK["pos"] is not None else np.arange(len(margin))
            np.minimum.at(TRACK["arr"], pos, margin)
        return y


# FP8 margins per position of the sequence being run (Model.forward sets arr; pos maps the rows
# of a routed expert's input back to positions; None means rows are positions).
TRACK = {"arr": None, "pos": None}

# --perturb EPS: relative Gaussian noise on every quantized input, to measure how much an engine
# whose activations differ from this float64 reference by ~EPS (f32 rounding) moves the logits
# through E4M3 code flips. Zero (off) in every test.
PERTURB = {"eps": 0.0, "rng": np.random.default_rng(0)}


def fp8_gemm(x, wq, sw, ue8m0):
    """y[m,n] = sum_kb D(m,n,kb) * sa[m,kb] * sw[n//128,kb], D the exact block dot product of
    decoded codes (exact in float64: products of 4-bit significands summed over 128 terms).
    Returns (y [T, N], fp8 margin [T] as act_quant)."""
    T, K = x.shape
    N = wq.shape[0]
    codes, sa, margin = act_quant(x, ue8m0)
    xq = E4M3[codes]
    y = np.zeros((T, N))
    swn = np.repeat(sw, BLK, axis=0)[:N]  # [N, nkb]
    for kb in range(sa.shape[1]):
        sl = slice(kb * BLK, (kb + 1) * BLK)
        d = xq[:, sl] @ wq[:, sl].T
        y += d * sa[:, kb:kb + 1] * swn[None, :, kb]
    return y, margin


def fp8_gemm_slow(x, wq, sw, ue8m0):
    """Element-by-element form of fp8_gemm, for the self-check only."""
    T, K = x.shape
    N = wq.shape[0]
    y = np.zeros((T, N))
    for m in range(T):
        for kb in range((K + BLK - 1) // BLK):
            lo, hi = kb * BLK, min(K, (kb + 1) * BLK)
            amax = max(abs(float(v)) for v in x[m, lo:hi])
            s = max(amax, 1e-4) / 448.0
            if ue8m0:
                s = 2.0 ** math.ceil(math.log2(s))
            q = [E4M3[e4m3_encode_scalar(float(v) / s)] for v in x[m, lo:hi]]
            for n in range(N):
                d = sum(q[j - lo] * wq[n, j] for j in range(lo, hi))
                y[m, n] += d * s * sw[n // BLK, kb]
    return y


# --------------------------------------------------------------------------------------------
# RoPE and YaRN (docs/model.md, RoPE and YaRN).


def yarn_mscale(factor, mscale):
    return 0.1 * mscale * math.log(factor) + 1.0 if factor > 1 else 1.0


def yarn_corr_range(rs, d, base):
    """(low, high) of docs/model.md, YaRN."""
    L0 = rs["original_max_position_embeddings"]

    def corr(r):
        return d * math.log(L0 / (2 * math.pi * r)) / (2 * math.log(base))
    low = max(math.floor(corr(rs.get("beta_fast", 32))), 0)
    high = min(math.ceil(corr(rs.get("beta_slow", 1))), d - 1)
    return low, high


def rope_tables(cfg, T):
    """cos, sin [T, d/2] for positions 0..T-1, YaRN blend and cos/sin mscale applied."""
    d = cfg["qk_rope_head_dim"]
    base = float(cfg.get("rope_theta", 10000.0))
    i = np.arange(d // 2, dtype=np.float64)
    theta = base ** (-2.0 * i / d)
    mul = 1.0
    rs = rope_scaling(cfg)
    if rs is not None:
        f = float(rs["factor"])
        low, high = yarn_corr_range(rs, d, base)
        if low == high:
            high += 0.001
        ramp = np.clip((i - low) / (high - low), 0.0, 1.0)
        theta = theta / f * ramp + theta * (1.0 - ramp)
        mul = yarn_mscale(f, rs.get("mscale", 1)) / yarn_mscale(f, rs.get("mscale_all_dim", 0))
    ang = np.arange(T, dtype=np.float64)[:, None] * theta[None, :]
    return np.cos(ang) * mul, np.sin(ang) * mul


def rope_apply(x, cos, sin):
    """Rotates interleaved pairs (x[2i], x[2i+1]) (GPT-J). x [T, ..., d]; cos/sin [T, d/2]."""
    sh = (x.shape[0],) + (1,) * (x.ndim - 2) + (cos.shape[1],)
    c = cos.reshape(sh)
    s = sin.reshape(sh)
    x0 = x[..., 0::2]
    x1 = x[..., 1::2]
    out = np.empty_like(x)
    out[..., 0::2] = x0 * c - x1 * s
    out[..., 1::2] = x0 * s + x1 * c
    return out


def rope_scaling(cfg):
    rs = cfg.get("rope_scaling")
    if not rs:
        return None
    kind = rs.get("type", rs.get("rope_type"))
    if kind != "yarn":
        raise RefError("config.json: rope_scaling.type: %r not supported" % kind)
    return rs


def softmax_scale(cfg):
    s = (cfg["qk_nope_head_dim"] + cfg["qk_rope_head_dim"]) ** -0.5
    rs = rope_scaling(cfg)
    if rs is not None and float(rs["factor"]) > 1:
        m = yarn_mscale(float(rs["factor"]), rs.get("mscale_all_dim", 0))
        s *= m * m
    return s


# --------------------------------------------------------------------------------------------
# Router (docs/model.md, Router).


def router_select(s, sb, cfg):
    """Chooses experts from scores s [T, E] (sb = selection scores, s + bias for noaux_tc).
    Returns (idx [T, k], weights [T, k], margin [T]). The margin is the smallest gap between the
    last chosen and the first unchosen selection score, over the group choice (when groups
    apply) and the expert choice; inf when nothing is left unchosen."""
    T, E = s.shape
    k = cfg["num_experts_per_tok"]
    method = cfg.get("topk_method", "greedy")
    ng = cfg.get("n_group") or 1
    tg = cfg.get("topk_group") or 1
    margin = np.full(T, np.inf)
    sel = sb.copy()
    if method != "greedy" and ng > 1:
        g = sb.reshape(T, ng, E // ng)
        if method == "noaux_tc":
            gs = np.sort(g, axis=2)[:, :, -2:].sum(axis=2)
        elif method == "group_limited_greedy":
            gs = g.max(axis=2)
        else:
            raise RefError("config.json: topk_method: %r unknown" % method)
        order = np.argsort(-gs, axis=1, kind="stable")
        if tg < ng:
            gsorted = np.take_along_axis(gs, order, axis=1)
            margin = np.minimum(margin, gsorted[:, tg - 1] - gsorted[:, tg])
        keep = np.zeros((T, ng), dtype=bool)
        np.put_along_axis(keep, order[:, :tg], True, axis=1)
        sel = np.where(np.repeat(keep, E // ng, axis=1), sb, -np.inf)
    order = np.argsort(-sel, axis=1, kind="stable")
    idx = order[:, :k]
    if k < E:
        ssorted = np.take_along_axis(sel, order, axis=1)
        gap = ssorted[:, k - 1] - ssorted[:, k]
        margin = np.minimum(margin, np.where(np.isfinite(ssorted[:, k]), gap, np.inf))
    w = np.take_along_axis(s, idx, axis=1)
    if cfg.get("norm_topk_prob", False):
        w = w / w.sum(axis=1, keepdims=True)
    w = w * float(cfg.get("routed_scaling_factor", 1.0))
    return idx, w, margin


# --------------------------------------------------------------------------------------------
# The model.


def rms_norm(x, w, eps):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w


def silu(x):
    return x / (1.0 + np.exp(-x))


class Mlp:
    def __init__(self, ck, prefix, hidden, inter):
        self.gate = Linear(ck, prefix + ".gate_proj", inter, hidden)
        self.up = Linear(ck, prefix + ".up_proj", inter, hidden)
        self.down = Linear(ck, prefix + ".down_proj", hidden, inter)

    def __call__(self, x, act, u8):
        return self.down(silu(self.gate(x, act, u8)) * self.up(x, act, u8), act, u8)


class Layer:
    """One decoder layer (MLA + dense FFN or MoE), at model.layers.<i>."""

    def __init__(self, ck, cfg, i, moe):
        p = "model.layers.%d" % i
        D = cfg["hidden_size"]
        H = cfg["num_attention_heads"]
        self.H = H
        self.nope, self.rope = cfg["qk_nope_head_dim"], cfg["qk_rope_head_dim"]
        self.vd, self.kvr = cfg["v_head_dim"], cfg["kv_lora_rank"]
        qk = self.nope + self.rope
        self.in_norm = ck.vec(p + ".input_layernorm.weight")
        self.post_norm = ck.vec(p + ".post_attention_layernorm.weight")
        a = p + ".self_attn"
        self.qlr = cfg.get("q_lora_rank")
        if self.qlr:
            self.q_a = Linear(ck, a + ".q_a_proj", self.qlr, D)
            self.q_a_norm = ck.vec(a + ".q_a_layernorm.weight")
            self.q_b = Linear(ck, a + ".q_b_proj", H * qk, self.qlr)
        else:
            self.q_proj = Linear(ck, a + ".q_proj", H * qk, D)
        self.kv_a = Linear(ck, a + ".kv_a_proj_with_mqa", self.kvr + self.rope, D)
        self.kv_a_norm = ck.vec(a + ".kv_a_layernorm.weight")
        # kv_b_proj: applied dequantized to the unquantized c' in both modes (absorbed form).
        kvb = Linear(ck, a + ".kv_b_proj", H * (self.nope + self.vd), self.kvr, quant_act=False)
        w = kvb.w.reshape(H, self.nope + self.vd, self.kvr)
        self.w_uk = w[:, :self.nope, :]  # [H, nope, kv_lora]
        self.w_uv = w[:, self.nope:, :]  # [H, v, kv_lora]
        self.o = Linear(ck, a + ".o_proj", D, H * self.vd)
        self.moe = moe
        if moe:
            E = cfg["n_routed_experts"]
            mi = cfg["moe_intermediate_size"]
            self.gate_w = ck.vec(p + ".mlp.gate.weight")
            if self.gate_w.shape != (E, D):
                raise RefError("%s.mlp.gate.weight: shape %s, expected %s"
                               % (p, list(self.gate_w.shape), [E, D]))
            self.bias = None
            if cfg.get("topk_method") == "noaux_tc":
                self.bias = ck.vec(p + ".mlp.gate.e_score_correction_bias")
            self.experts = [Mlp(ck, "%s.mlp.experts.%d" % (p, e), D, mi) for e in range(E)]
            ns = cfg.get("n_shared_experts") or 0
            self.shared = Mlp(ck, p + ".mlp.shared_experts", D, ns * mi) if ns else None
        else:
            self.mlp = Mlp(ck, p + ".mlp", D, cfg["intermediate_size"])

    def attention(self, x, m):
        """MLA over the whole causal sequence x [T, D] (row t attends to rows 0..t)."""
        act, u8, eps = m.act, m.ue8m0, m.eps
        T = x.shape[0]
        H, nope, rope = self.H, self.nope, self.rope
        if self.qlr:
            q = self.q_b(rms_norm(self.q_a(x, act, u8), self.q_a_norm, eps), act, u8)
        else:
            q = self.q_proj(x, act, u8)
        q = q.reshape(T, H, nope + rope)
        q_nope, q_pe = q[:, :, :nope], q[:, :, nope:]
        kv = self.kv_a(x, act, u8)
        c = rms_norm(kv[:, :self.kvr], self.kv_a_norm, eps)  # c' [T, kv_lora]
        k_pe = kv[:, self.kvr:]  # [T, rope], one head shared by all
        cos, sin = m.cos[:T], m.sin[:T]
        q_pe = rope_apply(q_pe, cos, sin)
        k_pe = rope_apply(k_pe, cos, sin)
        mask = np.triu(np.ones((T, T), dtype=bool), 1)  # [t, s]: s > t is masked
        if m.mla == "naive":
            k_nope = np.einsum("sc,hdc->shd", c, self.w_uk)  # [T, H, nope]
            v = np.einsum("sc,hdc->shd", c, self.w_uv)  # [T, H, v]
            sc = np.einsum("thd,shd->hts", q_nope, k_nope) + \
                np.einsum("thd,sd->hts", q_pe, k_pe)
        else:
            q_lat = np.einsum("thd,hdc->thc", q_nope, self.w_uk)  # [T, H, kv_lora]
            sc = np.einsum("thc,sc->hts", q_lat, c) + np.einsum("thd,sd->hts", q_pe, k_pe)
        sc = sc * m.scale
        sc = np.where(mask[None], -np.inf, sc)
        sc = sc - sc.max(axis=2, keepdims=True)
        p = np.exp(sc)
        p /= p.sum(axis=2, keepdims=True)
        if m.mla == "naive":
            o = np.einsum("hts,shd->thd", p, v)
        else:
            lat = np.einsum("hts,sc->thc", p, c)
            o = np.einsum("thc,hdc->thd", lat, self.w_uv)
        return self.o(o.reshape(T, H * self.vd), act, u8)

    def ffn(self, x, m):
        """Returns (y [T, D], routing margin [T] (inf for a dense layer))."""
        act, u8 = m.act, m.ue8m0
        T = x.shape[0]
        if not self.moe:
            return self.mlp(x, act, u8), np.full(T, np.inf)
        logits = x @ self.gate_w.T  # router: never quantized
        if m.cfg.get("scoring_func", "softmax") == "sigmoid":
            s = 1.0 / (1.0 + np.exp(-logits))
        else:
            z = np.exp(logits - logits.max(axis=1, keepdims=True))
            s = z / z.sum(axis=1, keepdims=True)
        sb = s + self.bias[None, :] if self.bias is not None else s
        idx, w, margin = router_select(s, sb, m.cfg)
        y = np.zeros_like(x)
        for e, ex in enumerate(self.experts):
            rows, slot = np.nonzero(idx == e)
            if rows.size:
                TRACK["pos"] = rows
                y[rows] += w[rows, slot][:, None] * ex(x[rows], act, u8)
                TRACK["pos"] = None
        if self.shared is not None:
            y += self.shared(x, act, u8)
        return y, margin

    def __call__(self, h, m):
        h = h + self.attention(rms_norm(h, self.in_norm, m.eps), m)
        y, margin = self.ffn(rms_norm(h, self.post_norm, m.eps), m)
        return h + y, margin


class Model:
    """The whole model, loaded from a checkpoint directory. act: 'none' or 'fp8'."""

    def __init__(self, path, act="none", mla="naive"):
        self.ck = ck = Checkpoint(path)
        self.cfg = cfg = ck.cfg
        self.act, self.mla = act, mla
        qc = cfg.get("quantization_config") or {}
        self.ue8m0 = qc.get("scale_fmt") == "ue8m0"
        self.eps = float(cfg.get("rms_norm_eps", 1e-6))
        self.scale = softmax_scale(cfg)
        L = cfg["num_hidden_layers"]
        self.layers = [Layer(ck, cfg, i, self.is_moe(i)) for i in range(L)]
        self.embed = ck.vec("model.embed_tokens.weight")
        self.norm = ck.vec("model.norm.weight")
        self.head = ck.vec("lm_head.weight")
        self.mtp = None
        if (cfg.get("num_nextn_predict_layers") or 0) > 0:
            p = "model.layers.%d" % L
            self.mtp = {
                "layer": Layer(ck, cfg, L, self.is_moe(L)),
                "enorm": ck.vec(p + ".enorm.weight"),
                "hnorm": ck.vec(p + ".hnorm.weight"),
                "eh_proj": ck.vec(p + ".eh_proj.weight"),  # [D, 2D], never quantized
                "norm": ck.vec(p + ".shared_head.norm.weight"),
                "head": ck.vec(p + ".shared_head.head.weight"),
                "embed": ck.vec(p + ".embed_tokens.weight") if ck.has(p + ".embed_tokens.weight")
                else self.embed,
            }

    def is_moe(self, i):
        c = self.cfg
        freq = c.get("moe_layer_freq") or 1
        return bool(c.get("n_routed_experts")) and i >= c.get("first_k_dense_replace", 0) and \
            i % freq == 0

    def forward(self, tokens):
        """Returns dict: logits [n, V], margins [n], and (with MTP) mtp_logits [n-1, V],
        mtp_margins [n-1]."""
        tokens = np.asarray(tokens, dtype=np.int64)
        T = len(tokens)
        self.cos, self.sin = rope_tables(self.cfg, T)
        h = self.embed[tokens]
        margins = np.full(T, np.inf)
        TRACK["arr"] = fp8m = np.full(T, np.inf)
        for layer in self.layers:
            h, mg = layer(h, self)
            margins = np.minimum(margins, mg)
        hn = rms_norm(h, self.norm, self.eps)  # h_i of MTP: after the final norm
        # Row i reads the KV of positions <= i: a code flip at j moves every row from j on.
        out = {"logits": hn @ self.head.T, "margins": margins,
               "fp8_margins": np.minimum.accumulate(fp8m)}
        if self.mtp is not None and T >= 2:
            t = self.mtp
            e = t["embed"][tokens[1:]].copy()
            e[0] = 0.0  # position-0 embedding masked
            u = np.concatenate([rms_norm(e, t["enorm"], self.eps),
                                rms_norm(hn[:T - 1], t["hnorm"], self.eps)], axis=1)
            x = u @ t["eh_proj"].T  # embedding first, then hidden
            TRACK["arr"] = fp8m = np.full(T - 1, np.inf)
            x, mg = t["layer"](x, self)
            out["mtp_logits"] = rms_norm(x, t["norm"], self.eps) @ t["head"].T
            out["mtp_margins"] = mg
            out["mtp_fp8_margins"] = np.minimum(np.minimum.accumulate(fp8m),
                                                out["fp8_margins"][:T - 1])
        TRACK["arr"] = None
        return out


# --------------------------------------------------------------------------------------------
# Self-check: a small random checkpoint written here, the codec, YaRN and the MLA forms.


def st_write(path, tensors):
    """Writes {name: (dtype, uint8/uint16/float array)} as one safetensors file."""
    hdr, blobs, off = {}, [], 0
    for name in sorted(tensors):
        dt, a = tensors[name]
        b = np.ascontiguousarray(a).tobytes()
        hdr[name] = {"dtype": dt, "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(hdr).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(np.array([len(h)], dtype="<u8").tobytes())
        f.write(h)
        for b in blobs:
            f.write(b)


def selftest_checkpoint(path, rng, qlora=True):
    """A random 3-layer FP8 model with partial blocks, MoE with groups and an MTP layer,
    sharded in two files with some F16/F32 norms. Returns the dequantized weights written."""
    cfg = {
        "model_type": "deepseek_v3", "hidden_size": 160, "intermediate_size": 192,
        "moe_intermediate_size": 64, "num_hidden_layers": 3, "first_k_dense_replace": 1,
        "moe_layer_freq": 1, "num_attention_heads": 2, "q_lora_rank": 96 if qlora else None,
        "kv_lora_rank": 64, "qk_nope_head_dim": 16, "qk_rope_head_dim": 8, "v_head_dim": 16,
        "n_routed_experts": 8, "num_experts_per_tok": 2, "n_shared_experts": 1, "n_group": 4,
        "topk_group": 2, "routed_scaling_factor": 2.5, "scoring_func": "sigmoid",
        "topk_method": "noaux_tc", "norm_topk_prob": True, "rope_theta": 10000.0,
        "rope_scaling": {"type": "yarn", "factor": 4.0, "original_max_position_embeddings": 16,
                         "beta_fast": 32, "beta_slow": 1, "mscale": 1.0,
                         "mscale_all_dim": 1.0},
        "rms_norm_eps": 1e-6, "vocab_size": 200, "num_nextn_predict_layers": 1,
        "quantization_config": {"quant_method": "fp8", "fmt": "e4m3",
                                "activation_scheme": "dynamic", "weight_block_size": [128, 128]},
    }
    D, V = cfg["hidden_size"], cfg["vocab_size"]
    H, qk, nope, v = 2, 24, 16, 16
    ts, deq = {}, {}

    def bf16(a):
        u = a.astype(np.float32).view(np.uint32)
        u = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
        return ("BF16", u.astype(np.uint16))

    def fp8(name, o, i):
        w = rng.standard_normal((o, i)) / math.sqrt(i)
        sc = np.zeros(((o + 127) // 128, (i + 127) // 128), dtype=np.float32)
        for bo in range(sc.shape[0]):
            for bi in range(sc.shape[1]):
                sc[bo, bi] = np.abs(w[bo * 128:(bo + 1) * 128, bi * 128:(bi + 1) * 128]).max() / 448
        codes = e4m3_encode(w / blocks_expand(sc.astype(np.float64), o, i))
        ts[name + ".weight"] = ("F8_E4M3", codes)
        ts[name + ".weight_scale_inv"] = ("F32", sc)
        deq[name] = E4M3[codes] * blocks_expand(sc.astype(np.float64), o, i)

    def norm(name, n, dt="BF16"):
        a = 1.0 + 0.1 * rng.standard_normal(n)
        ts[name] = bf16(a) if dt == "BF16" else (dt, a.astype(np.float16 if dt == "F16"
                                                               else np.float32))

    def layer(i, moe):
        p = "model.layers.%d" % i
        norm(p + ".input_layernorm.weight", D, "F16")
        norm(p + ".post_attention_layernorm.weight", D, "F32")
        a = p + ".self_attn"
        if qlora:
            fp8(a + ".q_a_proj", 96, D)
            norm(a + ".q_a_layernorm.weight", 96)
            fp8(a + ".q_b_proj", H * qk, 96)
        else:
            fp8(a + ".q_proj", H * qk, D)
        fp8(a + ".kv_a_proj_with_mqa", 64 + 8, D)
        norm(a + ".kv_a_layernorm.weight", 64)
        fp8(a + ".kv_b_proj", H * (nope + v), 64)
        fp8(a + ".o_proj", D, H * v)
        if moe:
            ts[p + ".mlp.gate.weight"] = bf16(rng.standard_normal((8, D)) * 0.15)
            ts[p + ".mlp.gate.e_score_correction_bias"] = \
                ("F32", (0.1 * rng.standard_normal(8)).astype(np.float32))
            for e in range(8):
                for nm, o, ii in (("gate_proj", 64, D), ("up_proj", 64, D), ("down_proj", D, 64)):
                    fp8("%s.mlp.experts.%d.%s" % (p, e, nm), o, ii)
            for nm, o, ii in (("gate_proj", 64, D), ("up_proj", 64, D), ("down_proj", D, 64)):
                fp8("%s.mlp.shared_experts.%s" % (p, nm), o, ii)
        else:
            for nm, o, ii in (("gate_proj", 192, D), ("up_proj", 192, D), ("down_proj", D, 192)):
                fp8("%s.mlp.%s" % (p, nm), o, ii)

    ts["model.embed_tokens.weight"] = bf16(rng.standard_normal((V, D)))
    for i in range(3):
        layer(i, i >= 1)
    norm("model.norm.weight", D)
    ts["lm_head.weight"] = bf16(rng.standard_normal((V, D)) / math.sqrt(D))
    p = "model.layers.3"
    layer(3, True)
    norm(p + ".enorm.weight", D)
    norm(p + ".hnorm.weight", D)
    ts[p + ".eh_proj.weight"] = bf16(rng.standard_normal((D, 2 * D)) / math.sqrt(2 * D))
    norm(p + ".shared_head.norm.weight", D)
    ts[p + ".shared_head.head.weight"] = bf16(rng.standard_normal((V, D)) / math.sqrt(D))
    ts[p + ".embed_tokens.weight"] = ts["model.embed_tokens.weight"]

    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(cfg, f)
    names = sorted(ts)
    half = len(names) // 2
    wm = {}
    for k, part in enumerate((names[:half], names[half:])):
        fn = "model-%05d-of-00002.safetensors" % (k + 1)
        st_write(os.path.join(path, fn), {n: ts[n] for n in part})
        wm.update({n: fn for n in part})
    with open(os.path.join(path, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {}, "weight_map": wm}, f)
    return cfg, deq


def selftest():
    import tempfile
    res = [0, 0]

    def check(name, ok, detail=""):
        res[0 if ok else 1] += 1
        print("%s %s%s" % ("ok  " if ok else "FAIL", name, (": " + detail) if detail else ""))

    # 1. E4M3 decode against hand-computed values.
    hand = {0x00: 0.0, 0x01: 2.0 ** -9, 0x07: 7 * 2.0 ** -9, 0x08: 2.0 ** -6, 0x0F: 1.875 / 64,
            0x38: 1.0, 0x39: 1.125, 0x3F: 1.875, 0x40: 2.0, 0x70: 128.0, 0x77: 240.0,
            0x78: 256.0, 0x7E: 448.0, 0x80: -0.0, 0x81: -(2.0 ** -9), 0xB8: -1.0, 0xFE: -448.0,
            0x56: 14.0, 0x2C: 0.375}
    bad = [c for c, v in hand.items() if E4M3[c] != v or
           math.copysign(1, E4M3[c]) != math.copysign(1, v)]
    check("e4m3 decode: %d hand-computed codes" % len(hand), not bad, "codes %s" % bad)
    check("e4m3 decode: NaN only at 0x7F and 0xFF",
          sorted(np.nonzero(np.isnan(E4M3))[0].tolist()) == [0x7F, 0xFF])
    # 2. Encoder: all 254 finite codes round-trip, every midpoint ties to the even code.
    fin = np.array([c for c in range(256) if c not in (0x7F, 0xFF)])
    rt = e4m3_encode(E4M3[fin])
    check("e4m3 encode: all 254 finite codes round-trip", np.array_equal(rt, fin),
          "first mismatch code 0x%02X" % fin[np.argmax(rt != fin)] if not np.array_equal(rt, fin)
          else "")
    mids = (E4M3_POS[:-1] + E4M3_POS[1:]) / 2
    enc = e4m3_encode(np.concatenate([mids, -mids]))
    lo = np.arange(126)
    want = np.where(lo % 2 == 0, lo, lo + 1)
    want = np.concatenate([want, want | 0x80])
    check("e4m3 encode: 126 midpoints (and negatives) tie to even", np.array_equal(enc, want),
          "%d wrong" % np.sum(enc != want))
    eps = np.concatenate([mids * (1 - 1e-12), mids * (1 + 1e-12)])
    enc = e4m3_encode(eps)
    want = np.concatenate([lo, lo + 1])
    check("e4m3 encode: just below/above each midpoint", np.array_equal(enc, want))
    sat = e4m3_encode(np.array([448.0, 449.0, 464.0, 480.0, 1e30, np.inf, -500.0, -np.inf,
                                np.nan, 2.0 ** -10, 2.0 ** -10 * 1.0000001, 3 * 2.0 ** -10]))
    want = [0x7E, 0x7E, 0x7E, 0x7E, 0x7E, 0x7E, 0xFE, 0xFE, 0x7F, 0x00, 0x01, 0x02]
    check("e4m3 encode: saturation, NaN, subnormal ties", sat.tolist() == want,
          "%s vs %s" % ([hex(c) for c in sat], [hex(c) for c in want]))
    rng = np.random.default_rng(7)
    xs = np.concatenate([rng.standard_normal(20000) * 10.0 ** rng.uniform(-4, 3, 20000),
                         rng.uniform(-500, 500, 2000)])
    sc = np.array([e4m3_encode_scalar(float(v)) for v in xs])
    check("e4m3 encode: vectorised == scalar encoder on 22000 random values",
          np.array_equal(e4m3_encode(xs), sc), "%d differ" % np.sum(e4m3_encode(xs) != sc))
    # 3. YaRN and softmax scale for the 671B config.
    big = {"qk_nope_head_dim": 128, "qk_rope_head_dim": 64, "rope_theta": 10000,
           "rope_scaling": {"type": "yarn", "factor": 40, "original_max_position_embeddings": 4096,
                            "beta_fast": 32, "beta_slow": 1, "mscale": 1.0,
                            "mscale_all_dim": 1.0}}
    lh = yarn_corr_range(big["rope_scaling"], 64, 10000.0)
    check("yarn 671B: low, high = 10, 23", lh == (10, 23), "got %s" % (lh,))
    ss = softmax_scale(big)
    check("softmax_scale 671B = 0.1352338", abs(ss - 0.1352338) < 5e-8, "got %.9f" % ss)
    c, s = rope_tables(big, 3)
    check("yarn 671B: cos/sin mscale ratio 1", abs(c[0, 0] - 1.0) < 1e-15)
    big2 = dict(big, rope_scaling=None)
    check("softmax_scale without rope_scaling = 192^-0.5",
          abs(softmax_scale(big2) - 192 ** -0.5) < 1e-15)
    # RoPE: scores depend only on the relative position (a GPT-J rotation property).
    c, s = rope_tables(big, 40)
    q = rng.standard_normal(64)
    k = rng.standard_normal(64)
    qs = rope_apply(np.tile(q, (40, 1)), c, s)
    ks = rope_apply(np.tile(k, (40, 1)), c, s)
    d1 = qs[20] @ ks[7]
    d2 = qs[33] @ ks[20]
    check("rope: q_m.k_n depends on m-n only", abs(d1 - d2) < 1e-12 * abs(d1) + 1e-12)
    one = np.zeros((1, 64))
    one[0, 2], one[0, 3] = 1.0, 0.0
    r = rope_apply(np.repeat(one, 40, axis=0), c, s)
    th = 10000.0 ** (-2.0 / 64)  # pair 1 is below low=10: not interpolated
    check("rope: pair 1 at pos 5 rotated by 5*theta_1 (interleaved)",
          abs(r[5, 2] - math.cos(5 * th)) < 1e-12 and abs(r[5, 3] - math.sin(5 * th)) < 1e-12)
    # 4. Router: a hand-built noaux_tc case where the bias changes the choice.
    rcfg = {"num_experts_per_tok": 2, "topk_method": "noaux_tc", "n_group": 2, "topk_group": 1,
            "norm_topk_prob": True, "routed_scaling_factor": 2.0}
    s4 = np.array([[0.9, 0.1, 0.5, 0.6]])
    b4 = np.array([0.0, 0.0, 0.3, 0.3])
    idx, w, mg = router_select(s4, s4 + b4, rcfg)
    ok = sorted(idx[0].tolist()) == [2, 3] and np.allclose(sorted(w[0]), [2 * 0.5 / 1.1,
                                                                          2 * 0.6 / 1.1])
    check("router noaux_tc: bias picks group 1, weights unbiased renormalised", ok,
          "idx %s w %s" % (idx, w))
    check("router noaux_tc: margin = group gap 1.7-1.0", abs(mg[0] - 0.7) < 1e-12,
          "got %r" % mg[0])
    idx, w, mg = router_select(s4, s4, dict(rcfg, topk_method="greedy", norm_topk_prob=False))
    check("router greedy: top-2 by score, scaled, margin 0.1",
          sorted(idx[0].tolist()) == [0, 3] and abs(mg[0] - 0.1) < 1e-12 and
          np.allclose(sorted(w[0]), [1.2, 1.8]))
    idx, w, mg = router_select(s4, s4, dict(rcfg, topk_method="group_limited_greedy"))
    check("router group_limited_greedy: group by max, margin 0.9-0.6",
          sorted(idx[0].tolist()) == [0, 1] and abs(mg[0] - 0.3) < 1e-12, "idx %s mg %r"
          % (idx, mg))
    # 5. FP8 GEMM against its element-by-element definition (partial blocks, both scale fmts).
    x = rng.standard_normal((3, 200)) * rng.uniform(0.01, 10, (3, 1))
    x[1, 128:] = 0.0  # an all-zero group: s = 1e-4/448
    wq = E4M3[rng.integers(0, 255, (5, 200)) & 0xF7]  # no NaN codes
    sw = rng.uniform(0.001, 0.01, (1, 2))
    for u8 in (False, True):
        a, b = fp8_gemm(x, wq, sw, u8)[0], fp8_gemm_slow(x, wq, sw, u8)
        err = np.max(np.abs(a - b)) / np.max(np.abs(b))
        check("fp8 gemm == definition (ue8m0=%s)" % u8, err < 1e-13, "rel %.2e" % err)
    check("ue8m0 rounds up to 2^k", scale_pow2_ceil(np.array([0.25, 0.3, 1.0, 3.0])).tolist()
          == [0.25, 0.5, 1.0, 4.0])
    # 6. A random checkpoint: loader round trip, naive == absorbed, causality.
    with tempfile.TemporaryDirectory() as d:
        for qlora in (True, False):
            sub = os.path.join(d, "q" if qlora else "noq")
            cfg, deq = selftest_checkpoint(sub, np.random.default_rng(11), qlora)
            tag = "q_lora" if qlora else "q_proj"
            m = Model(sub, "none", "naive")
            l1 = m.layers[1]
            check("loader (%s): sharded FP8 dequant round trip" % tag,
                  np.array_equal(l1.o.w, deq["model.layers.1.self_attn.o_proj"]))
            toks = rng.integers(0, cfg["vocab_size"], 12)
            for act in ("none", "fp8"):
                m.act, m.mla = act, "naive"
                a = m.forward(toks)
                m.mla = "absorbed"
                b = m.forward(toks)
                e1 = np.max(np.abs(a["logits"] - b["logits"])) / np.max(np.abs(a["logits"]))
                e2 = np.max(np.abs(a["mtp_logits"] - b["mtp_logits"])) / \
                    np.max(np.abs(a["mtp_logits"]))
                check("mla naive == absorbed (%s, act %s): logits, mtp" % (tag, act),
                      e1 < 1e-10 and e2 < 1e-10, "rel %.2e, %.2e" % (e1, e2))
                m.mla = "naive"
                c5 = m.forward(toks[:5])
                e3 = np.max(np.abs(c5["logits"] - a["logits"][:5]))
                e4 = np.max(np.abs(c5["mtp_logits"] - a["mtp_logits"][:4]))
                check("causal: 5-token prefix == first rows of 12 (%s, act %s)" % (tag, act),
                      e3 < 1e-10 and e4 < 1e-10, "abs %.2e, %.2e" % (e3, e4))
            fin_m = np.isfinite(a["margins"]).all() and a["margins"].shape == (12,)
            check("margins (%s): finite, one per row" % tag, fin_m and
                  a["mtp_margins"].shape == (11,))
            m.act = "none"
            a = m.forward(toks)
            m.act = "fp8"
            b = m.forward(toks)
            e = np.linalg.norm(a["logits"] - b["logits"], axis=1) / \
                np.linalg.norm(a["logits"], axis=1)
            check("fp8 differs from none by FP8 noise (%s): median %.3f in (1e-3, 0.3)" %
                  (tag, np.median(e)), 1e-3 < np.median(e) < 0.3)
            # FP8 margins: a perturbation 10x below a row's margin cannot change its codes.
            toks40 = rng.integers(0, cfg["vocab_size"], 40)
            b = m.forward(toks40)
            PERTURB.update(eps=1e-8, rng=np.random.default_rng(3))
            c = m.forward(toks40)
            PERTURB["eps"] = 0.0
            e = np.linalg.norm(b["logits"] - c["logits"], axis=1) / \
                np.linalg.norm(b["logits"], axis=1)
            clean = b["fp8_margins"] > 1e-7
            check("fp8 margins (%s): %d rows with margin > 1e-7 unchanged by 1e-8 noise (max "
                  "%.1e), non-increasing" % (tag, clean.sum(), e[clean].max()),
                  clean[0] and e[clean].max() < 1e-6 and
                  np.all(np.diff(b["fp8_margins"]) <= 0) and
                  np.all(b["mtp_fp8_margins"] <= b["fp8_margins"][:-1]))
    print("%d passed, %d failed" % tuple(res))
    return 0 if res[1] == 0 else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model")
    ap.add_argument("--tokens", help="comma-separated token ids")
    ap.add_argument("--act", choices=["none", "fp8"], default="none")
    ap.add_argument("--mla", choices=["naive", "absorbed"], default="naive")
    ap.add_argument("--out", help="output .npz")
    ap.add_argument("--perturb", type=float, default=0.0, metavar="EPS",
                    help="measurement aid: relative noise on every FP8-quantized input")
    ap.add_argument("--selftest", action="store_true")
    ap.add_argument("--write-selftest-model", metavar="DIR",
                    help="write the self-check's random sharded FP8 checkpoint to DIR")
    a = ap.parse_args()
    if a.selftest:
        return selftest()
    if a.write_selftest_model:
        selftest_checkpoint(a.write_selftest_model, np.random.default_rng(11))
        return 0
    if not (a.model and a.tokens and a.out):
        ap.error("--model, --tokens and --out are required")
    try:
        toks = [int(t) for t in a.tokens.split(",") if t]
        PERTURB["eps"] = a.perturb
        m = Model(a.model, a.act, a.mla)
        V = m.cfg["vocab_size"]
        bad = [t for t in toks if not 0 <= t < V]
        if bad:
            raise RefError("--tokens: id %d outside [0, %d)" % (bad[0], V))
        out = m.forward(toks)
    except RefError as e:
        print("ref.py: %s" % e, file=sys.stderr)
        return 1
    np.savez(a.out, **out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
