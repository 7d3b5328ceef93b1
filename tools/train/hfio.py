"""hfio.py - the checkpoint bytes: FP8 E4M3 with 128x128 block scales, BF16, and safetensors.

The export writes exactly the layout that DeepSeek-V3's release uses and moecard loads
(docs/model.md, Checkpoint tensors): projections as F8_E4M3 codes plus an F32
``weight_scale_inv`` per 128x128 block (value = code * scale_inv), embeddings, norms, the router
gate and the head in BF16, the router bias in F32. numpy only, so the tests can read a checkpoint
without torch.
"""
import json
import struct

import numpy as np

FP8_MAX = 448.0
BLOCK = 128


def e4m3_table():
    """float32 value of each of the 256 E4M3 codes (NaN for 0x7f / 0xff)."""
    v = np.zeros(256, dtype=np.float64)
    for c in range(256):
        s, e, m = c >> 7, (c >> 3) & 15, c & 7
        if e == 15 and m == 7:
            v[c] = np.nan
        elif e == 0:
            v[c] = m * 2.0**-9
        else:
            v[c] = (1 + m / 8) * 2.0 ** (e - 7)
        if s:
            v[c] = -v[c]
    return v.astype(np.float32)


def e4m3_round(x):
    """Rounds float values to the nearest E4M3 value (ties to even), saturating at +-448."""
    x = np.asarray(x, dtype=np.float64)
    a = np.minimum(np.abs(x), FP8_MAX)
    e = np.floor(np.log2(np.maximum(a, 2.0**-6)))  # normals; subnormals share 2^-6's step
    step = 2.0 ** (e - 3)
    r = np.round(a / step) * step  # numpy rounds halves to even: RNE on the 3-bit mantissa
    return (np.sign(x) * np.minimum(r, FP8_MAX)).astype(np.float32)


_POS = e4m3_table()[:127]  # codes 0x00..0x7e, ascending values


def e4m3_encode(x):
    """float32 array -> uint8 E4M3 codes (RNE, saturating)."""
    r = e4m3_round(x)
    a = np.abs(r)
    code = np.searchsorted(_POS, a).astype(np.uint8)  # exact: r is on the grid
    return np.where(np.signbit(r) & (a > 0), code | 0x80, code).astype(np.uint8)


def fp8_quantize(w):
    """[rows, cols] float32 -> (codes uint8 [rows, cols], scale_inv f32 [ceil(r/128), ceil(c/128)])."""
    w = np.asarray(w, dtype=np.float32)
    R, C = w.shape
    br, bc = -(-R // BLOCK), -(-C // BLOCK)
    codes = np.zeros((R, C), dtype=np.uint8)
    sinv = np.zeros((br, bc), dtype=np.float32)
    for i in range(br):
        for j in range(bc):
            blk = w[i * BLOCK:(i + 1) * BLOCK, j * BLOCK:(j + 1) * BLOCK]
            amax = float(np.max(np.abs(blk)))
            s = np.float32(amax / FP8_MAX) if amax > 0 else np.float32(1.0)
            sinv[i, j] = s
            codes[i * BLOCK:(i + 1) * BLOCK, j * BLOCK:(j + 1) * BLOCK] = e4m3_encode(blk / s)
    return codes, sinv


def fp8_dequantize(codes, sinv):
    """The inverse that moecard applies: value = e4m3(code) * scale_inv of its block."""
    v = e4m3_table()[codes]
    s = np.repeat(np.repeat(sinv, BLOCK, axis=0), BLOCK, axis=1)[: codes.shape[0], : codes.shape[1]]
    return (v * s).astype(np.float32)


def bf16_bits(x):
    """float32 -> bf16 bit patterns (uint16), round to nearest even."""
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    u = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    return u.astype(np.uint16)


def bf16_to_f32(b):
    return (np.asarray(b, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)


_DT = {"F8_E4M3": (np.uint8, 1), "BF16": (np.uint16, 2), "F32": (np.float32, 4),
       "I64": (np.int64, 8)}


def write_safetensors(path, tensors, metadata=None):
    """tensors: list of (name, dtype string, numpy array with the payload's element type)."""
    header, off, blobs = {}, 0, []
    for name, dt, arr in tensors:
        arr = np.ascontiguousarray(arr, dtype=_DT[dt][0])
        b = arr.tobytes()
        header[name] = {"dtype": dt, "shape": list(arr.shape), "data_offsets": [off, off + len(b)]}
        off += len(b)
        blobs.append(b)
    header["__metadata__"] = dict(metadata or {"format": "pt"})
    hj = json.dumps(header, separators=(",", ":")).encode()
    hj += b" " * (-len(hj) % 8)
    tmp = path + ".part"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(hj)))
        f.write(hj)
        for b in blobs:
            f.write(b)
    import os
    os.replace(tmp, path)


def read_safetensors(path):
    """name -> (dtype string, numpy array)."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, h in header.items():
        if name == "__metadata__":
            continue
        t, size = _DT[h["dtype"]]
        b, e = h["data_offsets"]
        out[name] = (h["dtype"], np.frombuffer(data[b:e], dtype=t).reshape(h["shape"]))
    return out


def load_dequantized(path):
    """name -> float32 array: FP8 weights times their block scales, BF16 widened, F32 as is."""
    raw = read_safetensors(path)
    out = {}
    for name, (dt, a) in raw.items():
        if name.endswith(".weight_scale_inv"):
            continue
        if dt == "F8_E4M3":
            out[name] = fp8_dequantize(a, raw[name[: -len("weight")] + "weight_scale_inv"][1])
        elif dt == "BF16":
            out[name] = bf16_to_f32(a)
        else:
            out[name] = a.astype(np.float32)
    return out
