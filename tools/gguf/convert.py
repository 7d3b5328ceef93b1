#!/usr/bin/python3
"""Convert a DeepSeek-V3 checkpoint folder (moecard / Hugging Face layout) to GGUF.

usage: convert.py MODEL_DIR OUT.gguf [--type q8_0|f16|f32]

The output follows what llama.cpp's own converter writes for DeepseekV3ForCausalLM
(architecture "deepseek2"): MLA with kv_b_proj split into attn_k_b (transposed) and
attn_v_b, merged routed experts, the e_score_correction bias as exp_probs_b.bias,
sigmoid gating, yarn rope keys, and a GPT-2 style BPE vocabulary with pre "deepseek-v3".
The MTP layer (model.layers.{num_hidden_layers}.*) is not written.

FP8 E4M3 weights with 128x128 `weight_scale_inv` block scales are dequantized
(value * scale_inv of its block), BF16/F16 tensors are widened, and everything is
written as Q8_0 / F16 / F32 (norms, 1-D tensors and the router stay F32).
Only numpy is needed; the GGUF v3 writer is the small one below.
"""

import argparse
import json
import os
import re
import struct
import sys

import numpy as np

PROG = "convert.py"


class ConvError(Exception):
    pass


# ---------------------------------------------------------------- GGUF constants
GGUF_MAGIC = b"GGUF"
GGUF_VERSION = 3
ALIGN = 32

# value types
T_UINT8, T_INT8, T_UINT16, T_INT16, T_UINT32, T_INT32, T_FLOAT32, T_BOOL, T_STRING, T_ARRAY, T_UINT64, T_INT64, T_FLOAT64 = range(13)

# ggml tensor types
GGML_F32, GGML_F16, GGML_Q8_0 = 0, 1, 8
QK8_0 = 32
# llama_ftype
FTYPE = {"f32": (0, GGML_F32), "f16": (1, GGML_F16), "q8_0": (7, GGML_Q8_0)}

# token types (llama_token_type)
TOK_NORMAL, TOK_CONTROL, TOK_USER_DEFINED, TOK_UNUSED = 1, 3, 4, 5

ARCH = "deepseek2"


def tensor_nbytes(shape, qtype):
    n = 1
    for d in shape:
        n *= d
    if qtype == GGML_F32:
        return 4 * n
    if qtype == GGML_F16:
        return 2 * n
    if qtype == GGML_Q8_0:
        return (n // QK8_0) * (2 + QK8_0)
    raise AssertionError(qtype)


def pad_to(n, a=ALIGN):
    return (n + a - 1) // a * a


class GGUFWriter:
    """Header, key/value metadata, tensor infos, then 32-byte aligned tensor data."""

    def __init__(self):
        self.kv = []        # (key, type, value[, elem type])
        self.tensors = []   # (name, numpy shape, qtype, producer)

    def add(self, key, vtype, value, etype=None):
        if any(k == key for k, *_ in self.kv):
            raise AssertionError("duplicate key " + key)
        self.kv.append((key, vtype, value, etype))

    def u32(self, k, v): self.add(k, T_UINT32, int(v))
    def f32(self, k, v): self.add(k, T_FLOAT32, float(v))
    def bool(self, k, v): self.add(k, T_BOOL, bool(v))
    def str(self, k, v): self.add(k, T_STRING, str(v))
    def arr(self, k, etype, v): self.add(k, T_ARRAY, list(v), etype)

    def add_tensor(self, name, shape, qtype, producer):
        self.tensors.append((name, tuple(int(d) for d in shape), qtype, producer))

    @staticmethod
    def _s(s):
        b = s.encode("utf-8")
        return struct.pack("<Q", len(b)) + b

    def _value(self, vtype, v, etype):
        if vtype == T_UINT32:
            return struct.pack("<I", v)
        if vtype == T_INT32:
            return struct.pack("<i", v)
        if vtype == T_FLOAT32:
            return struct.pack("<f", v)
        if vtype == T_BOOL:
            return struct.pack("<B", 1 if v else 0)
        if vtype == T_STRING:
            return self._s(v)
        if vtype == T_ARRAY:
            out = [struct.pack("<IQ", etype, len(v))]
            if etype == T_STRING:
                out.extend(self._s(x) for x in v)
            elif etype == T_INT32:
                out.append(np.asarray(v, dtype="<i4").tobytes())
            elif etype == T_UINT32:
                out.append(np.asarray(v, dtype="<u4").tobytes())
            elif etype == T_FLOAT32:
                out.append(np.asarray(v, dtype="<f4").tobytes())
            else:
                raise AssertionError(etype)
            return b"".join(out)
        raise AssertionError(vtype)

    def write(self, path, progress=None):
        head = [GGUF_MAGIC, struct.pack("<IQQ", GGUF_VERSION, len(self.tensors), len(self.kv))]
        for key, vtype, v, etype in self.kv:
            head.append(self._s(key) + struct.pack("<I", vtype) + self._value(vtype, v, etype))
        offset = 0
        offsets = []
        for name, shape, qtype, _ in self.tensors:
            dims = tuple(reversed(shape))  # ggml order: innermost first
            head.append(self._s(name) + struct.pack("<I", len(dims)) +
                        struct.pack("<%dQ" % len(dims), *dims) + struct.pack("<IQ", qtype, offset))
            offsets.append(offset)
            offset = pad_to(offset + tensor_nbytes(shape, qtype))
        header = b"".join(head)
        tmp = path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(header)
            f.write(b"\0" * (pad_to(len(header)) - len(header)))
            base = f.tell()
            for i, (name, shape, qtype, producer) in enumerate(self.tensors):
                assert f.tell() == base + offsets[i]
                data = producer()
                if tuple(data.shape) != shape:
                    raise ConvError("%s: tensor %s: produced shape %s, planned %s" % (path, name, data.shape, shape))
                raw = encode(data, qtype)
                assert len(raw) == tensor_nbytes(shape, qtype), name
                f.write(raw)
                f.write(b"\0" * (pad_to(len(raw)) - len(raw)))
                if progress:
                    progress(i + 1, len(self.tensors), name)
        os.replace(tmp, path)


def quantize_q8_0(x):
    """ggml's reference Q8_0: per 32 values, d = amax/127 (stored f16), q = round(x/d)."""
    x = np.ascontiguousarray(x, dtype=np.float32).reshape(-1, QK8_0)
    amax = np.abs(x).max(axis=1, keepdims=True)
    d = amax / np.float32(127.0)
    with np.errstate(divide="ignore"):
        inv = np.where(d > 0, np.float32(1.0) / d, np.float32(0.0)).astype(np.float32)
    v = x * inv
    q = np.trunc(v + np.copysign(np.float32(0.5), v)).astype(np.int8)  # roundf: half away from zero
    out = np.empty((x.shape[0], 2 + QK8_0), dtype=np.uint8)
    out[:, :2] = d.astype("<f2").view(np.uint8)
    out[:, 2:] = q.view(np.uint8)
    return out.tobytes()


def encode(data, qtype):
    if qtype == GGML_F32:
        return np.ascontiguousarray(data, dtype="<f4").tobytes()
    if qtype == GGML_F16:
        return np.ascontiguousarray(data, dtype="<f2").tobytes()
    if qtype == GGML_Q8_0:
        return quantize_q8_0(data)
    raise AssertionError(qtype)


# ---------------------------------------------------------------- safetensors
def fp8_e4m3_table():
    b = np.arange(256, dtype=np.uint32)
    s = np.where(b & 0x80, -1.0, 1.0)
    e = (b >> 3) & 0xF
    m = (b & 7).astype(np.float64)
    v = np.where(e == 0, m / 8.0 * 2.0 ** -6, (1.0 + m / 8.0) * 2.0 ** (e.astype(np.float64) - 7))
    v = s * v
    v[(b & 0x7F) == 0x7F] = np.nan  # e4m3fn: S.1111.111 is NaN, no infinities
    return v.astype(np.float32)


FP8_LUT = fp8_e4m3_table()
ST_DTYPES = {"F32": np.dtype("<f4"), "F16": np.dtype("<f2"), "BF16": np.dtype("<u2"),
             "F8_E4M3": np.dtype("u1"), "U8": np.dtype("u1"), "I64": np.dtype("<i8"), "I32": np.dtype("<i4")}


class Checkpoint:
    def __init__(self, d):
        self.dir = d
        files = sorted(f for f in os.listdir(d) if f.endswith(".safetensors"))
        idx = os.path.join(d, "model.safetensors.index.json")
        if os.path.isfile(idx):
            try:
                wm = load_json(idx)["weight_map"]
            except KeyError:
                raise ConvError("%s: missing field 'weight_map'" % idx)
            files = sorted(set(wm.values()))
        if not files:
            raise ConvError("%s: no *.safetensors files" % d)
        self.info = {}
        self.maps = {}
        for fn in files:
            p = os.path.join(d, fn)
            if not os.path.isfile(p):
                raise ConvError("%s: missing (listed in model.safetensors.index.json)" % p)
            with open(p, "rb") as f:
                raw = f.read(8)
                if len(raw) != 8:
                    raise ConvError("%s: truncated safetensors header" % p)
                n = struct.unpack("<Q", raw)[0]
                try:
                    hdr = json.loads(f.read(n))
                except ValueError as e:
                    raise ConvError("%s: bad safetensors header (%s)" % (p, e))
            size = os.path.getsize(p)
            for name, meta in hdr.items():
                if name == "__metadata__":
                    continue
                dt = meta.get("dtype")
                if dt not in ST_DTYPES:
                    raise ConvError("%s: tensor %s: unsupported dtype %r" % (p, name, dt))
                a, b = meta["data_offsets"]
                if 8 + n + b > size:
                    raise ConvError("%s: tensor %s: data past end of file" % (p, name))
                self.info[name] = (p, dt, tuple(meta["shape"]), 8 + n + a, 8 + n + b)

    def has(self, name):
        return name in self.info

    def shape(self, name):
        return self.info[name][2]

    def raw(self, name):
        p, dt, shape, a, b = self.info[name]
        if p not in self.maps:
            self.maps[p] = np.memmap(p, dtype=np.uint8, mode="r")
        return dt, self.maps[p][a:b].view(ST_DTYPES[dt]).reshape(shape)

    def f32(self, name, block=(128, 128)):
        """The tensor as float32; FP8 weights times their block's weight_scale_inv."""
        if name not in self.info:
            raise ConvError("%s: missing tensor '%s'" % (self.dir, name))
        dt, a = self.raw(name)
        if dt == "BF16":
            return (a.astype(np.uint32) << 16).view(np.float32)
        if dt in ("F32", "F16"):
            return a.astype(np.float32)
        if dt in ("F8_E4M3", "U8"):
            w = FP8_LUT[a]
            sname = name + "_scale_inv"
            if sname not in self.info:
                raise ConvError("%s: FP8 tensor '%s' has no '%s'" % (self.info[name][0], name, sname))
            _, s = self.raw(sname)
            s = np.asarray(s, dtype=np.float32)
            if w.ndim != 2 or s.ndim != 2:
                raise ConvError("%s: %s: expected 2-D weight and scale, got %s and %s" % (self.info[sname][0], sname, w.shape, s.shape))
            br, bc = block
            need = (-(-w.shape[0] // br), -(-w.shape[1] // bc))
            if s.shape != need:
                raise ConvError("%s: %s: shape %s, expected %s for %s blocks of %s" % (self.info[sname][0], sname, s.shape, need, block, w.shape))
            full = np.repeat(np.repeat(s, br, axis=0), bc, axis=1)[: w.shape[0], : w.shape[1]]
            w *= full
            return w
        raise ConvError("%s: tensor %s: dtype %s is not a float type" % (self.info[name][0], name, dt))


def load_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise ConvError("%s: file not found" % path)
    except ValueError as e:
        raise ConvError("%s: invalid JSON (%s)" % (path, e))


# ---------------------------------------------------------------- tokenizer
def looks_special(t):
    # llama.cpp marks these as CONTROL even when tokenizer.json says special=false
    return (t in ("<pad>", "<mask>", "<2mass>", "[@BOS@]")
            or (t.startswith("<|") and t.endswith("|>"))
            or (t.startswith("<\uff5c") and t.endswith("\uff5c>"))
            or (t.startswith("<unused") and t.endswith(">")))


def add_tokenizer(w, d, cfg, vocab_size):
    tpath = os.path.join(d, "tokenizer.json")
    tok = load_json(tpath)
    model = tok.get("model")
    if not isinstance(model, dict) or model.get("type") != "BPE":
        raise ConvError("%s: field 'model.type': expected \"BPE\"" % tpath)
    if "vocab" not in model or "merges" not in model:
        raise ConvError("%s: missing field 'model.vocab' or 'model.merges'" % tpath)
    rev = {}
    for t, i in model["vocab"].items():
        rev[int(i)] = t
    added = {}
    for a in tok.get("added_tokens", []):
        added[int(a["id"])] = a
        rev[int(a["id"])] = a["content"]
    if rev and max(rev) >= vocab_size:
        raise ConvError("%s: token id %d >= config.json vocab_size %d" % (tpath, max(rev), vocab_size))
    tokens, types = [], []
    for i in range(vocab_size):
        if i not in rev:
            tokens.append("[PAD%d]" % i)
            types.append(TOK_UNUSED)
            continue
        t = rev[i]
        if i in added:
            if added[i].get("special") or looks_special(t):
                types.append(TOK_CONTROL)
            else:
                t = t.replace("\u2581", " ")
                types.append(TOK_USER_DEFINED)
        else:
            types.append(TOK_NORMAL)
        tokens.append(t)
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]

    w.str("tokenizer.ggml.model", "gpt2")
    w.str("tokenizer.ggml.pre", "deepseek-v3")
    w.arr("tokenizer.ggml.tokens", T_STRING, tokens)
    w.arr("tokenizer.ggml.token_type", T_INT32, types)
    w.arr("tokenizer.ggml.merges", T_STRING, merges)

    # special ids: tokenizer_config.json's tokens by content, else config.json's ids
    cpath = os.path.join(d, "tokenizer_config.json")
    tc = load_json(cpath) if os.path.isfile(cpath) else {}
    by_content = {t: i for i, t in rev.items()}
    for typ, key in (("bos", "bos_token_id"), ("eos", "eos_token_id"), ("pad", "pad_token_id")):
        v = tc.get(typ + "_token")
        if isinstance(v, dict):
            v = v.get("content")
        tid = by_content.get(v) if isinstance(v, str) else None
        if tid is None and isinstance(cfg.get(key), int):
            tid = cfg[key]
        if tid is None:
            if typ == "pad":
                continue
            raise ConvError("%s: no '%s_token' and config.json has no '%s'" % (cpath, typ, key))
        if not 0 <= tid < vocab_size:
            raise ConvError("%s: %s id %d out of range" % (cpath, typ, tid))
        w.u32("tokenizer.ggml.%s_token_id" % ("padding" if typ == "pad" else typ), tid)
    for key in ("add_bos_token", "add_eos_token"):
        if isinstance(tc.get(key), bool):
            w.bool("tokenizer.ggml." + key, tc[key])
    if isinstance(tc.get("chat_template"), str):
        w.str("tokenizer.chat_template", tc["chat_template"])


# ---------------------------------------------------------------- model
def need(cfg, path, key, kind=int):
    if key not in cfg or cfg[key] is None:
        raise ConvError("%s: missing field '%s'" % (path, key))
    v = cfg[key]
    if kind is int and (not isinstance(v, int) or isinstance(v, bool)):
        raise ConvError("%s: field '%s' must be an integer" % (path, key))
    if kind is float and not isinstance(v, (int, float)):
        raise ConvError("%s: field '%s' must be a number" % (path, key))
    return v


def convert(model_dir, out, otype):
    cpath = os.path.join(model_dir, "config.json")
    cfg = load_json(cpath)
    arch = (cfg.get("architectures") or [None])[0]
    if arch not in ("DeepseekV3ForCausalLM", "DeepseekV2ForCausalLM"):
        raise ConvError("%s: field 'architectures': %r is not DeepseekV3ForCausalLM" % (cpath, arch))
    g = lambda k, kind=int: need(cfg, cpath, k, kind)
    n_layer = g("num_hidden_layers")
    n_embd = g("hidden_size")
    n_head = g("num_attention_heads")
    n_vocab = g("vocab_size")
    kv_lora = g("kv_lora_rank")
    q_lora = cfg.get("q_lora_rank")
    nope = g("qk_nope_head_dim")
    rope = g("qk_rope_head_dim")
    vdim = g("v_head_dim")
    n_dense = cfg.get("first_k_dense_replace", 0) or 0
    n_expert = g("n_routed_experts")
    n_used = g("num_experts_per_tok")
    n_ff_exp = g("moe_intermediate_size")
    n_shared = cfg.get("n_shared_experts", 0) or 0
    if cfg.get("moe_layer_freq", 1) != 1:
        raise ConvError("%s: field 'moe_layer_freq': only 1 is supported" % cpath)
    if cfg.get("hidden_act", "silu") != "silu":
        raise ConvError("%s: field 'hidden_act': only silu is supported" % cpath)
    qc = cfg.get("quantization_config") or {}
    block = tuple(qc.get("weight_block_size", (128, 128)))
    if len(block) != 2:
        raise ConvError("%s: field 'quantization_config.weight_block_size' must have 2 entries" % cpath)

    ck = Checkpoint(model_dir)
    ftype, wtype = FTYPE[otype]
    w = GGUFWriter()

    # ---- metadata (key set as llama.cpp's DeepseekV2Model writes it)
    w.str("general.architecture", ARCH)
    w.str("general.type", "model")
    w.str("general.name", os.path.basename(os.path.normpath(model_dir)))
    w.u32("general.quantization_version", 2)
    w.u32("general.alignment", ALIGN)
    A = ARCH + "."
    w.u32(A + "block_count", n_layer)
    w.u32(A + "context_length", g("max_position_embeddings"))
    w.u32(A + "embedding_length", n_embd)
    w.u32(A + "feed_forward_length", g("intermediate_size"))
    w.u32(A + "attention.head_count", n_head)
    w.u32(A + "attention.head_count_kv", 1)  # MLA is run as MQA over the latent
    rs = cfg.get("rope_scaling") or cfg.get("rope_parameters") or {}
    rtype = rs.get("rope_type", rs.get("type"))
    if rtype not in (None, "yarn", "default"):
        raise ConvError("%s: field 'rope_scaling.type': %r is not supported (yarn or none)" % (cpath, rtype))
    if rtype == "yarn" and rs.get("factor") is not None:
        w.str(A + "rope.scaling.type", "yarn")
        w.f32(A + "rope.scaling.factor", rs["factor"])
        if "original_max_position_embeddings" not in rs:
            raise ConvError("%s: missing field 'rope_scaling.original_max_position_embeddings'" % cpath)
        w.u32(A + "rope.scaling.original_context_length", rs["original_max_position_embeddings"])
        for src, dst in (("beta_fast", "yarn_beta_fast"), ("beta_slow", "yarn_beta_slow")):
            if rs.get(src) is not None:
                w.f32(A + "rope.scaling." + dst, rs[src])
        if rs.get("mscale", 1.0) != 1.0:
            print("%s: warning: %s: rope_scaling.mscale %s is ignored (llama.cpp assumes 1.0)" % (PROG, cpath, rs["mscale"]), file=sys.stderr)
    w.f32(A + "rope.freq_base", cfg.get("rope_theta", 10000.0))
    w.f32(A + "attention.layer_norm_rms_epsilon", cfg.get("rms_norm_eps", 1e-6))
    w.u32(A + "expert_count", n_expert)
    w.u32(A + "expert_used_count", n_used)
    if cfg.get("n_group") is not None:
        w.u32(A + "expert_group_count", cfg["n_group"])
    if cfg.get("topk_group") is not None:
        w.u32(A + "expert_group_used_count", cfg["topk_group"])
    sf = cfg.get("scoring_func", "softmax")
    if sf not in ("sigmoid", "softmax"):
        raise ConvError("%s: field 'scoring_func': %r is not supported" % (cpath, sf))
    w.u32(A + "expert_gating_func", 2 if sf == "sigmoid" else 1)
    w.u32("general.file_type", ftype)
    w.u32(A + "leading_dense_block_count", n_dense)
    w.u32(A + "vocab_size", n_vocab)
    if q_lora is not None:
        w.u32(A + "attention.q_lora_rank", q_lora)
    w.u32(A + "attention.kv_lora_rank", kv_lora)
    w.u32(A + "attention.key_length", kv_lora + rope)
    w.u32(A + "attention.value_length", kv_lora)
    w.u32(A + "attention.key_length_mla", nope + rope)
    w.u32(A + "attention.value_length_mla", vdim)
    w.u32(A + "expert_feed_forward_length", n_ff_exp)
    w.u32(A + "expert_shared_count", n_shared)
    if cfg.get("routed_scaling_factor") is not None:
        w.f32(A + "expert_weights_scale", cfg["routed_scaling_factor"])
    if cfg.get("norm_topk_prob"):
        w.bool(A + "expert_weights_norm", True)
    w.u32(A + "rope.dimension_count", rope)
    if rtype == "yarn" and rs.get("mscale_all_dim") is not None:
        # llama.cpp stores 0.1*mscale_all_dim here for deepseek2 and divides it back at load
        w.f32(A + "rope.scaling.yarn_log_multiplier", 0.1 * rs["mscale_all_dim"])

    add_tokenizer(w, model_dir, cfg, n_vocab)

    # ---- tensors
    def qtype_for(gname, shape):
        if len(shape) <= 1 or gname.endswith("_norm.weight") or ".ffn_gate_inp." in gname or not gname.endswith(".weight"):
            return GGML_F32
        if wtype == GGML_Q8_0 and shape[-1] % QK8_0 != 0:
            return GGML_F16  # as llama.cpp: rows that don't fill Q8_0 blocks fall back to F16
        return wtype

    def plain(hf, gname, shape=None):
        if not ck.has(hf):
            raise ConvError("%s: missing tensor '%s'" % (model_dir, hf))
        shp = ck.shape(hf) if shape is None else shape
        if shape is not None and tuple(ck.shape(hf)) != tuple(shape):
            raise ConvError("%s: tensor '%s' has shape %s, config.json implies %s" % (ck.info[hf][0], hf, list(ck.shape(hf)), list(shape)))
        w.add_tensor(gname, shp, qtype_for(gname, shp), lambda: ck.f32(hf, block))

    plain("model.embed_tokens.weight", "token_embd.weight", (n_vocab, n_embd))
    for i in range(n_layer):
        p = "model.layers.%d." % i
        b = "blk.%d." % i
        plain(p + "input_layernorm.weight", b + "attn_norm.weight", (n_embd,))
        if q_lora is not None:
            plain(p + "self_attn.q_a_proj.weight", b + "attn_q_a.weight", (q_lora, n_embd))
            plain(p + "self_attn.q_a_layernorm.weight", b + "attn_q_a_norm.weight", (q_lora,))
            plain(p + "self_attn.q_b_proj.weight", b + "attn_q_b.weight", (n_head * (nope + rope), q_lora))
        else:
            plain(p + "self_attn.q_proj.weight", b + "attn_q.weight", (n_head * (nope + rope), n_embd))
        plain(p + "self_attn.kv_a_proj_with_mqa.weight", b + "attn_kv_a_mqa.weight", (kv_lora + rope, n_embd))
        plain(p + "self_attn.kv_a_layernorm.weight", b + "attn_kv_a_norm.weight", (kv_lora,))
        kvb = p + "self_attn.kv_b_proj.weight"
        if not ck.has(kvb):
            raise ConvError("%s: missing tensor '%s'" % (model_dir, kvb))
        if tuple(ck.shape(kvb)) != (n_head * (nope + vdim), kv_lora):
            raise ConvError("%s: tensor '%s' has shape %s, config.json implies %s" % (ck.info[kvb][0], kvb, list(ck.shape(kvb)), [n_head * (nope + vdim), kv_lora]))

        # kv_b_proj rows are per head [nope | v]; k_b is stored transposed per head
        def k_b(kvb=kvb):
            x = ck.f32(kvb, block).reshape(n_head, nope + vdim, kv_lora)
            return np.ascontiguousarray(x[:, :nope, :].transpose(0, 2, 1))

        def v_b(kvb=kvb):
            x = ck.f32(kvb, block).reshape(n_head, nope + vdim, kv_lora)
            return np.ascontiguousarray(x[:, nope:, :])

        shp = (n_head, kv_lora, nope)
        w.add_tensor(b + "attn_k_b.weight", shp, qtype_for(b + "attn_k_b.weight", shp), k_b)
        shp = (n_head, vdim, kv_lora)
        w.add_tensor(b + "attn_v_b.weight", shp, qtype_for(b + "attn_v_b.weight", shp), v_b)
        plain(p + "self_attn.o_proj.weight", b + "attn_output.weight", (n_embd, n_head * vdim))
        plain(p + "post_attention_layernorm.weight", b + "ffn_norm.weight", (n_embd,))
        if i < n_dense:
            n_ff = g("intermediate_size")
            plain(p + "mlp.gate_proj.weight", b + "ffn_gate.weight", (n_ff, n_embd))
            plain(p + "mlp.down_proj.weight", b + "ffn_down.weight", (n_embd, n_ff))
            plain(p + "mlp.up_proj.weight", b + "ffn_up.weight", (n_ff, n_embd))
            continue
        plain(p + "mlp.gate.weight", b + "ffn_gate_inp.weight", (n_expert, n_embd))
        if ck.has(p + "mlp.gate.e_score_correction_bias"):
            plain(p + "mlp.gate.e_score_correction_bias", b + "exp_probs_b.bias", (n_expert,))
        elif cfg.get("topk_method") == "noaux_tc":
            raise ConvError("%s: missing tensor '%s'" % (model_dir, p + "mlp.gate.e_score_correction_bias"))
        for hfw, gw, shp in (("down_proj", "ffn_down_exps", (n_embd, n_ff_exp)),
                             ("gate_proj", "ffn_gate_exps", (n_ff_exp, n_embd)),
                             ("up_proj", "ffn_up_exps", (n_ff_exp, n_embd))):
            names = [p + "mlp.experts.%d.%s.weight" % (e, hfw) for e in range(n_expert)]
            for nm in names:
                if not ck.has(nm):
                    raise ConvError("%s: missing tensor '%s'" % (model_dir, nm))
                if tuple(ck.shape(nm)) != shp:
                    raise ConvError("%s: tensor '%s' has shape %s, config.json implies %s" % (ck.info[nm][0], nm, list(ck.shape(nm)), list(shp)))

            def stack(names=names, shp=shp):
                out = np.empty((len(names),) + shp, dtype=np.float32)
                for e, nm in enumerate(names):
                    out[e] = ck.f32(nm, block)
                return out

            full = (n_expert,) + shp
            w.add_tensor(b + gw + ".weight", full, qtype_for(b + gw + ".weight", full), stack)
        if n_shared:
            sff = n_ff_exp * n_shared
            plain(p + "mlp.shared_experts.gate_proj.weight", b + "ffn_gate_shexp.weight", (sff, n_embd))
            plain(p + "mlp.shared_experts.down_proj.weight", b + "ffn_down_shexp.weight", (n_embd, sff))
            plain(p + "mlp.shared_experts.up_proj.weight", b + "ffn_up_shexp.weight", (sff, n_embd))
    plain("model.norm.weight", "output_norm.weight", (n_embd,))
    if not cfg.get("tie_word_embeddings", False):
        plain("lm_head.weight", "output.weight", (n_vocab, n_embd))

    # tensors not written: the MTP layer(s) at index >= num_hidden_layers and the FP8 scales
    # (folded in); anything else the checkpoint holds is reported, not silently lost
    rx = re.compile(r"^model\.layers\.\d+\.(input_layernorm|post_attention_layernorm|self_attn\.(q_a_proj|q_b_proj|q_proj|"
                    r"kv_a_proj_with_mqa|kv_b_proj|o_proj|q_a_layernorm|kv_a_layernorm)|mlp\.(gate_proj|up_proj|down_proj|gate|"
                    r"shared_experts\.(gate|up|down)_proj|experts\.\d+\.(gate|up|down)_proj))\.(weight|e_score_correction_bias)$")
    unknown = []
    for n in sorted(ck.info):
        m = re.match(r"model\.layers\.(\d+)\.", n)
        if (m and int(m.group(1)) >= n_layer) or n.endswith("_scale_inv"):
            continue
        if n in ("model.embed_tokens.weight", "model.norm.weight", "lm_head.weight") or rx.match(n):
            continue
        unknown.append(n)
    if unknown:
        print("%s: warning: %d tensor(s) not converted, e.g. %s" % (PROG, len(unknown), unknown[0]), file=sys.stderr)

    total = len(w.tensors)
    tty = sys.stderr.isatty()

    def progress(k, n, name):
        if tty:
            sys.stderr.write("\r%s: %d/%d %-40s" % (PROG, k, n, name))
            if k == n:
                sys.stderr.write("\n")

    out_dir = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(out_dir):
        raise ConvError("%s: output directory does not exist" % out_dir)
    w.write(out, progress)
    print("%s: wrote %s (%s, %d tensors, %d layers, %.1f MB)" % (
        PROG, out, otype, total, n_layer, os.path.getsize(out) / 1e6), file=sys.stderr)


def main(argv):
    ap = argparse.ArgumentParser(prog=PROG, description="DeepSeek-V3 checkpoint -> GGUF (llama.cpp deepseek2)")
    ap.add_argument("model_dir", metavar="MODEL_DIR")
    ap.add_argument("out", metavar="OUT.gguf")
    ap.add_argument("--type", choices=sorted(FTYPE), default="q8_0", help="weight type [q8_0]")
    a = ap.parse_args(argv)
    if not os.path.isdir(a.model_dir):
        print("%s: error: %s: not a directory" % (PROG, a.model_dir), file=sys.stderr)
        return 1
    try:
        convert(a.model_dir, a.out, a.type)
    except ConvError as e:
        print("%s: error: %s" % (PROG, e), file=sys.stderr)
        try:
            os.unlink(a.out + ".tmp")
        except OSError:
            pass
        return 1
    except KeyboardInterrupt:
        try:
            os.unlink(a.out + ".tmp")
        except OSError:
            pass
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
