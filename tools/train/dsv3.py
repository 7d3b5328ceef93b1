"""dsv3.py - the DeepSeek-V3 architecture that moecard runs, in torch, for training.

Same semantics as moecard's host engine (host/model/model.c, docs/model.md) so that an exported
checkpoint reproduces this forward's logits there:
  - RMSNorm w * (x * rsqrt(mean(x^2) + eps));
  - MLA: q = q_b(norm(q_a(x))), [c_kv | k_pe] = kv_a(x), c_kv normalized, k_pe shared by the
    heads, [k_nope | v] = kv_b(c_kv) per head; RoPE on interleaved pairs (x[2i], x[2i+1]) of the
    q/k rope parts; softmax scale 1/sqrt(nope + rope) (times mscale^2 with YaRN);
  - DeepSeekMoE: one shared expert plus fine-grained routed experts; the sigmoid router with the
    auxiliary-loss-free bias (noaux_tc): the bias only chooses, groups score by their two best
    biased scores, topk_group groups survive, top-k experts, weights = the unbiased sigmoid scores
    normalized over the chosen k, times routed_scaling_factor; output = shared + sum w_j E_j;
  - the first first_k_dense_replace layers use a dense SwiGLU FFN;
  - MTP (one module): cat(enorm(emb(t[i+1])), hnorm(h[i])) -> eh_proj -> one decoder layer ->
    shared_head.norm -> the main lm_head, predicting t[i+2]; h is the main model's hidden after
    the final norm, and the embedding is zero at position 0 (as moecard and vLLM run it).
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class Cfg:
    def __init__(self, d):
        self.d = d
        for k, v in d.items():
            setattr(self, k, v)
        self.qk_head_dim = self.qk_nope_head_dim + self.qk_rope_head_dim


def rope_freqs(c):
    """Per pair frequency, as model_rope_freq (YaRN ramp when rope_scaling is yarn)."""
    d, base = c.qk_rope_head_dim, float(c.rope_theta)
    rs = c.rope_scaling
    out = []
    for i in range(d // 2):
        th = base ** (-2.0 * i / d)
        if rs:
            L0 = rs["original_max_position_embeddings"]

            def corr(rot):
                return d * math.log(L0 / (rot * 2 * math.pi)) / (2 * math.log(base))

            lo = max(math.floor(corr(rs["beta_fast"])), 0)
            hi = min(math.ceil(corr(rs["beta_slow"])), d - 1)
            if lo == hi:
                hi += 0.001
            ramp = min(max((i - lo) / (hi - lo), 0.0), 1.0)
            th = th / rs["factor"] * ramp + th * (1 - ramp)
        out.append(th)
    return out


def yarn_mscale(f, m):
    return 1.0 if f <= 1 else 0.1 * m * math.log(f) + 1.0


def rope_tables(c, T):
    """cos, sin [T, rope/2] in float32, computed in double as moecard does."""
    fr = torch.tensor(rope_freqs(c), dtype=torch.float64)
    p = torch.arange(T, dtype=torch.float64)[:, None]
    ms = 1.0
    rs = c.rope_scaling
    if rs:
        ms = yarn_mscale(rs["factor"], rs.get("mscale", 1.0)) / yarn_mscale(
            rs["factor"], rs.get("mscale_all_dim", 0.0))
    return (torch.cos(p * fr) * ms).float(), (torch.sin(p * fr) * ms).float()


def softmax_scale(c):
    s = 1.0 / math.sqrt(c.qk_head_dim)
    rs = c.rope_scaling
    if rs and rs["factor"] > 1:
        m = yarn_mscale(rs["factor"], rs.get("mscale_all_dim", 0.0))
        s *= m * m
    return s


def apply_rope(x, cos, sin):
    """x [..., T, (heads,) d] with interleaved pairs; cos/sin [T, d/2] broadcast over heads."""
    a, b = x[..., 0::2], x[..., 1::2]
    if x.dim() == 4:  # [B, T, H, d]
        cos, sin = cos[:, None, :], sin[:, None, :]
    return torch.stack((a * cos - b * sin, a * sin + b * cos), dim=-1).flatten(-2)


class RMSNorm(nn.Module):
    def __init__(self, n, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n))
        self.eps = eps

    def forward(self, x):
        r = torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * (x * r)


def linear(i, o):
    return nn.Linear(i, o, bias=False)


class MLA(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        H = c.num_attention_heads
        self.q_a_proj = linear(c.hidden_size, c.q_lora_rank)
        self.q_a_layernorm = RMSNorm(c.q_lora_rank, c.rms_norm_eps)
        self.q_b_proj = linear(c.q_lora_rank, H * c.qk_head_dim)
        self.kv_a_proj_with_mqa = linear(c.hidden_size, c.kv_lora_rank + c.qk_rope_head_dim)
        self.kv_a_layernorm = RMSNorm(c.kv_lora_rank, c.rms_norm_eps)
        self.kv_b_proj = linear(c.kv_lora_rank, H * (c.qk_nope_head_dim + c.v_head_dim))
        self.o_proj = linear(H * c.v_head_dim, c.hidden_size)
        self.scale = softmax_scale(c)

    def forward(self, x, cos, sin):
        c = self.c
        B, T, _ = x.shape
        H, nope, rope, vd = (c.num_attention_heads, c.qk_nope_head_dim, c.qk_rope_head_dim,
                             c.v_head_dim)
        q = self.q_b_proj(self.q_a_layernorm(self.q_a_proj(x))).view(B, T, H, nope + rope)
        q_nope, q_pe = q[..., :nope], apply_rope(q[..., nope:], cos, sin)
        kv = self.kv_a_proj_with_mqa(x)
        ckv = self.kv_a_layernorm(kv[..., : c.kv_lora_rank])
        k_pe = apply_rope(kv[..., c.kv_lora_rank:], cos, sin)  # [B, T, rope]
        kvb = self.kv_b_proj(ckv).view(B, T, H, nope + vd)
        k_nope, v = kvb[..., :nope], kvb[..., nope:]
        s = torch.einsum("bthd,bshd->bhts", q_nope, k_nope)
        s = s + torch.einsum("bthd,bsd->bhts", q_pe, k_pe)
        s = s * self.scale
        mask = torch.ones(T, T, dtype=torch.bool).triu(1)
        p = torch.softmax(s.masked_fill(mask, float("-inf")), dim=-1)
        o = torch.einsum("bhts,bshd->bthd", p, v).reshape(B, T, H * vd)
        return self.o_proj(o)


class MLP(nn.Module):
    def __init__(self, d, inter):
        super().__init__()
        self.gate_proj = linear(d, inter)
        self.up_proj = linear(d, inter)
        self.down_proj = linear(inter, d)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


def route(c, logits, bias):
    """moe_route_core for sigmoid noaux_tc: (idx [N,k] in choice order, weights [N,k])."""
    s = torch.sigmoid(logits)
    sel = (s + bias).detach()
    N, E = sel.shape
    G = c.n_group
    if G > 1:
        per = E // G
        g = sel.view(N, G, per)
        gs = g.topk(min(2, per), dim=-1).values.sum(-1)
        keep = gs.topk(c.topk_group, dim=-1).indices
        gmask = torch.zeros(N, G, dtype=torch.bool).scatter_(1, keep, True)
        sel = sel.masked_fill(~gmask.repeat_interleave(per, dim=1), float("-inf"))
    idx = sel.topk(c.num_experts_per_tok, dim=-1).indices
    w = s.gather(1, idx)
    if c.norm_topk_prob and c.num_experts_per_tok > 1:
        w = w / w.sum(-1, keepdim=True)
    return idx, w * c.routed_scaling_factor


class MoE(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        E, D, I = c.n_routed_experts, c.hidden_size, c.moe_intermediate_size
        self.gate = linear(D, E)
        self.register_buffer("e_score_correction_bias", torch.zeros(E))
        # stacked expert weights [E, out, in]; exported as experts.{e}.{gate,up,down}_proj
        self.w_gate = nn.Parameter(torch.empty(E, I, D))
        self.w_up = nn.Parameter(torch.empty(E, I, D))
        self.w_down = nn.Parameter(torch.empty(E, D, I))
        self.shared_experts = MLP(D, I * c.n_shared_experts) if c.n_shared_experts else None
        self.last_load = None  # tokens per expert in the last forward (for the bias update)

    def forward(self, x):
        c = self.c
        shp = x.shape
        x = x.reshape(-1, shp[-1])
        idx, w = route(c, self.gate(x), self.e_score_correction_bias)
        out = self.shared_experts(x) if self.shared_experts is not None else torch.zeros_like(x)
        flat = idx.reshape(-1)
        self.last_load = torch.bincount(flat, minlength=c.n_routed_experts).detach()
        order = torch.argsort(flat, stable=True)
        counts = self.last_load.tolist()
        tok = order // c.num_experts_per_tok
        wf = w.reshape(-1)[order]
        pos = 0
        ys = []
        for e, n in enumerate(counts):
            if n == 0:
                continue
            t = tok[pos:pos + n]
            h = x[t]
            y = (F.silu(h @ self.w_gate[e].t()) * (h @ self.w_up[e].t())) @ self.w_down[e].t()
            ys.append(y * wf[pos:pos + n, None])
            pos += n
        out = out.index_add(0, tok, torch.cat(ys, 0)) if ys else out
        return out.view(shp)


class Layer(nn.Module):
    def __init__(self, c, moe):
        super().__init__()
        self.input_layernorm = RMSNorm(c.hidden_size, c.rms_norm_eps)
        self.self_attn = MLA(c)
        self.post_attention_layernorm = RMSNorm(c.hidden_size, c.rms_norm_eps)
        self.mlp = MoE(c) if moe else MLP(c.hidden_size, c.intermediate_size)

    def forward(self, x, cos, sin):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin)
        return x + self.mlp(self.post_attention_layernorm(x))


class MTP(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.enorm = RMSNorm(c.hidden_size, c.rms_norm_eps)
        self.hnorm = RMSNorm(c.hidden_size, c.rms_norm_eps)
        self.eh_proj = linear(2 * c.hidden_size, c.hidden_size)
        self.layer = Layer(c, True)
        self.shared_head_norm = RMSNorm(c.hidden_size, c.rms_norm_eps)


class DeepseekV3(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.embed_tokens = nn.Embedding(c.vocab_size, c.hidden_size)
        self.layers = nn.ModuleList(
            Layer(c, i >= c.first_k_dense_replace) for i in range(c.num_hidden_layers))
        self.norm = RMSNorm(c.hidden_size, c.rms_norm_eps)
        self.lm_head = linear(c.hidden_size, c.vocab_size)
        self.mtp = MTP(c) if c.num_nextn_predict_layers > 0 else None

    def init_weights(self, gen):
        """N(0, 0.02) everywhere, residual outputs scaled by 1/sqrt(2 * layers)."""
        std = 0.02
        out_std = std / math.sqrt(2 * (self.c.num_hidden_layers + 1))
        for name, p in self.named_parameters():
            if name.endswith("layernorm.weight") or name.endswith("norm.weight"):
                nn.init.ones_(p)
            elif "o_proj" in name or "down" in name:
                with torch.no_grad():
                    p.copy_(torch.randn(p.shape, generator=gen) * out_std)
            else:
                with torch.no_grad():
                    p.copy_(torch.randn(p.shape, generator=gen) * std)

    def moe_layers(self):
        ms = [l.mlp for l in self.layers if isinstance(l.mlp, MoE)]
        if self.mtp is not None:
            ms.append(self.mtp.layer.mlp)
        return ms

    def forward(self, tokens, mtp=True):
        """tokens [B, T] -> (logits [B, T, V], MTP logits [B, T-1, V] or None).

        MTP logits row i predicts tokens[i + 2] from h[i] and tokens[i + 1]."""
        B, T = tokens.shape
        cos, sin = rope_tables(self.c, T)
        x = self.embed_tokens(tokens)
        for layer in self.layers:
            x = layer(x, cos, sin)
        h = self.norm(x)
        logits = self.lm_head(h)
        if not mtp or self.mtp is None or T < 2:
            return logits, None
        m = self.mtp
        e = self.embed_tokens(tokens[:, 1:])
        en = m.enorm(e)
        en = torch.cat((torch.zeros_like(en[:, :1]), en[:, 1:]), 1)  # zero at position 0
        y = m.eh_proj(torch.cat((en, m.hnorm(h[:, :-1])), -1))
        c2, s2 = cos[: T - 1], sin[: T - 1]
        y = m.layer(y, c2, s2)
        return logits, self.lm_head(m.shared_head_norm(y))
