#!/usr/bin/env node
// llama_ref.mjs: run a GGUF on llama.cpp (the prebuilt CPU libllama of the npm package
// node-llama-cpp) as a reference for moecard: speed (--bench) and greedy tokens (--tokens).
//
//   node tools/gguf/llama_ref.mjs --model F.gguf --threads 2 --bench --prompt-len 512 --gen 128 [-r N]
//     -> one JSON line {prefill_tok_s, decode_tok_s, load_s, threads, llama_version, ...}
//   node tools/gguf/llama_ref.mjs --model F.gguf --threads 2 --bench --seqs B --prompt-len 16 --gen 16
//     -> B sequences (one context, B sequences) each prefilled with its own prompt, then G greedy
//        steps of all B at once (node-llama-cpp batches the sequences' pending tokens into one
//        llama_decode); one JSON line {seqs, step_ms, decode_tok_s} of wall time (as moecard
//        bench --seqs B on the cpu engine)
//   node tools/gguf/llama_ref.mjs --model F.gguf (--tokens 1,2,3 | --prompt TEXT) -n 20 [--kv f32] [--top 5] [--dump-logits F.npy]
//     -> JSON {"prompt":[...], "tokens":[...]} (greedy, no stop at EOS; --top adds each step's top logits)
//
// node-llama-cpp is loaded from $LLAMA_REF_DIR (default: build/cache/llama-ref of this repo,
// see tests/llama_ref_deps.sh) with build "never": it uses the shipped prebuilt binary or fails,
// it never tries to compile llama.cpp.
//
// How --bench differs from llama-bench's pp512 / tg128:
//  - prefill: P prompt tokens go in batches of min(P, 512) (node-llama-cpp sets n_ubatch = n_batch;
//    llama-bench's defaults are n_batch 2048, n_ubatch 512: the same compute chunks), logits only
//    for the last token, whose greedy sample starts the decode.
//  - decode: G single-token steps that start after the prompt, i.e. at KV depth P..P+G
//    (llama-bench's tg128 decodes from an empty cache; `llama-bench -d 512` matches this one).
//  - prefill_tok_s / decode_tok_s come from llama.cpp's own counters (llama_perf_context:
//    time inside llama_decode, as llama-bench measures); wall_prefill_tok_s / wall_decode_tok_s
//    time the same runs around the JS calls, adding the N-API round trip and greedy sampling.
//  - tokens are pseudo-random ids (a fixed LCG) rather than llama-bench's rand(); one warm-up
//    decode runs first, as llama-bench does; -r N repeats and averages.
//  - the KV cache is llama.cpp's default F16 (as llama-bench); flash attention is llama.cpp's "auto".
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join, dirname, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const die = (msg) => { process.stderr.write(`llama_ref: ${msg}\n`); process.exit(1); };

function parseArgs(argv) {
    const o = { threads: 2, bench: false, promptLen: 512, gen: 128, reps: 1, n: 20, kv: "f16", top: 0, ctx: 0, seqs: 0 };
    const num = (k, v) => { const x = Number(v); if (!Number.isInteger(x) || x < 0) die(`${k}: expected a non-negative integer, got '${v}'`); return x; };
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i];
        const val = () => { if (i + 1 >= argv.length) die(`${a}: missing value`); return argv[++i]; };
        switch (a) {
            case "--model": case "-m": o.model = val(); break;
            case "--threads": case "-t": o.threads = num(a, val()); break;
            case "--bench": o.bench = true; break;
            case "--prompt-len": case "-p": o.promptLen = num(a, val()); break;
            case "--gen": o.gen = num(a, val()); break;
            case "-r": o.reps = num(a, val()); break;
            case "--prompt": o.prompt = val(); break;
            case "--tokens": o.tokens = val().split(",").filter((s) => s !== "").map((s) => num("--tokens", s)); break;
            case "-n": o.n = num(a, val()); break;
            case "--kv": o.kv = val(); if (!["f16", "f32"].includes(o.kv)) die("--kv: f16 or f32"); break;
            case "--top": o.top = num(a, val()); break;
            case "--ctx": o.ctx = num(a, val()); break;
            case "--seqs": o.seqs = num(a, val()); if (o.seqs < 1 || o.seqs > 64) die("--seqs: 1..64"); break;
            case "--dump-logits": o.dumpLogits = val(); break;
            case "-h": case "--help":
                process.stdout.write("usage: llama_ref.mjs --model F.gguf [--threads N] (--bench [--prompt-len P] [--gen G] [-r N] | (--tokens 1,2,3 | --prompt TEXT) [-n N] [--kv f16|f32] [--top K])\n");
                process.exit(0);
            default:
                if (!o.model && !a.startsWith("-")) o.model = a; else die(`unknown argument '${a}'`);
        }
    }
    if (!o.model) die("--model F.gguf is required");
    if (!existsSync(o.model)) die(`${o.model}: no such file`);
    if (!o.bench && !o.tokens && o.prompt === undefined) die("give --bench, --tokens 1,2,3 or --prompt TEXT");
    if (o.bench && (o.promptLen < 1 || o.gen < 1 || o.reps < 1)) die("--prompt-len, --gen and -r must be >= 1");
    if (o.tokens && o.tokens.length === 0) die("--tokens: empty list");
    return o;
}

function writeNpy(path, f32, shape) {
    let hdr = `{'descr': '<f4', 'fortran_order': False, 'shape': (${shape.join(", ")}${shape.length === 1 ? "," : ""}), }`;
    const total = 10 + hdr.length + 1;
    hdr += " ".repeat((64 - (total % 64)) % 64) + "\n";
    const head = Buffer.alloc(10);
    head.write("\x93NUMPY", 0, "latin1"); head[6] = 1; head[7] = 0; head.writeUInt16LE(hdr.length, 8);
    writeFileSync(path, Buffer.concat([head, Buffer.from(hdr, "latin1"), Buffer.from(f32.buffer, f32.byteOffset, f32.byteLength)]));
}

let nlcVersion, cpuBackend;
const perf = {};
async function loadBinding() {
    const dir = process.env.LLAMA_REF_DIR || resolve(here, "../../build/cache/llama-ref");
    const pkg = join(dir, "node_modules/node-llama-cpp");
    const entry = join(pkg, "dist/index.js");
    if (!existsSync(entry)) die(`${entry}: not found (run tests/llama_ref_deps.sh)`);
    nlcVersion = JSON.parse(readFileSync(join(pkg, "package.json"), "utf8")).version;
    return import(pathToFileURL(entry).href);
}

async function main() {
    const o = parseArgs(process.argv.slice(2));
    const nlc = await loadBinding();
    const llama = await nlc.getLlama({
        gpu: false, build: "never", skipDownload: true, usePrebuiltBinaries: true,
        maxThreads: o.threads, logLevel: nlc.LlamaLogLevel.log, progressLogs: false,
        logger: (level, msg) => {
            const m = /loaded CPU backend from (\S+)/.exec(msg);
            if (m) cpuBackend = m[1].split("/").pop();
            // llama_perf_context_print (performanceTracking): llama.cpp's own timings
            const pe = /prompt eval time =\s*([\d.]+) ms \/\s*(\d+) tokens/.exec(msg);
            if (pe) perf.prompt = { ms: Number(pe[1]), n: Number(pe[2]) };
            const ev = /(?:^|[^t] )eval time =\s*([\d.]+) ms \/\s*(\d+) runs/.exec(msg);
            if (ev && !/prompt eval/.test(msg)) perf.eval = { ms: Number(ev[1]), n: Number(ev[2]) };
            if (level === "error" || level === "fatal") process.stderr.write(`llama.cpp: ${msg}`);
        },
    });
    if (llama.buildType !== "prebuilt") process.stderr.write(`llama_ref: note: using a ${llama.buildType} binary\n`);

    const t0 = performance.now();
    const model = await llama.loadModel({ modelPath: o.model, gpuLayers: 0, useMmap: true });
    const md = model.fileInfo.metadata;
    const vocab = Number(md?.tokenizer?.ggml?.tokens?.length ?? md?.[md?.general?.architecture]?.vocab_size ?? 1000);

    const mkContext = async (size, batch, nseq = 1) => model.createContext({
        contextSize: size, batchSize: batch, threads: o.threads, sequences: nseq,
        flashAttention: "auto", ignoreMemorySafetyChecks: true, performanceTracking: o.bench,
        ...(o.kv === "f32" ? { experimentalKvCacheKeyType: "F32", experimentalKvCacheValueType: "F32" } : {}),
    });

    const info = {
        llama_version: llama.llamaCppRelease.release, llama_repo: llama.llamaCppRelease.repo,
        node_llama_cpp: nlcVersion, binary: llama.buildType, threads: o.threads,
        cpu_backend: cpuBackend, system_info: llama.systemInfo.trim(),
    };

    if (o.bench && o.seqs) {
        const B = o.seqs, P = o.promptLen, G = o.gen;
        const ctx = await mkContext((o.ctx || P + G + 8) * B, Math.max(P, B), B);
        const load_s = (performance.now() - t0) / 1000;
        const seqs = Array.from({ length: B }, () => ctx.getSequence());
        let x = 12345;
        const rnd = () => { x = (Math.imul(x, 1103515245) + 12345) >>> 0; return 3 + ((x >>> 8) % (vocab - 3)); };
        const gn = { generateNext: { token: true, options: { temperature: 0 } } };
        const next = [];
        const p0 = performance.now();
        for (const seq of seqs) { // each sequence its own prompt, prefilled one after another
            const prompt = Array.from({ length: P }, rnd);
            const res = await seq.controlledEvaluate(prompt.map((t, i) => (i === P - 1 ? [t, gn] : t)));
            next.push(res[P - 1]?.next?.token);
        }
        const prefill_s = (performance.now() - p0) / 1000;
        if (next.some((t) => t == null)) die("prefill returned no token");
        // G steps: every sequence evaluates its token at the same time, so each llama_decode
        // carries one token of every sequence. llama.cpp's own counters (time inside
        // llama_decode; a step of several tokens counts as prompt eval) are read around them.
        const llamaPerf = async () => { perf.prompt = perf.eval = undefined; await ctx.printTimings(); return { ...perf }; };
        await llamaPerf();
        const s = performance.now();
        for (let g = 0; g < G; g++) {
            const res = await Promise.all(seqs.map((seq, i) => seq.controlledEvaluate([[next[i], gn]])));
            res.forEach((r, i) => { next[i] = r[0]?.next?.token; });
            if (next.some((t) => t == null)) die("decode returned no token");
        }
        const wall = (performance.now() - s) / 1000;
        const pd = await llamaPerf();
        const inner = ((pd.prompt?.ms ?? 0) + (pd.eval?.ms ?? 0)) / 1000;
        const runs = (pd.prompt?.n && B > 1 ? 1 : 0) + (pd.eval?.n ?? 0);
        const r2 = (v) => Math.round(v * 100) / 100;
        // step_ms / decode_tok_s: llama.cpp's counters when they saw the steps, else wall time
        const t = inner > 0 && runs > 0 ? inner : wall;
        process.stdout.write(JSON.stringify({
            seqs: B, prompt_len: P, gen: G, step_ms: r2(t / G * 1000), decode_tok_s: r2(B * G / t),
            wall_step_ms: r2(wall / G * 1000), wall_decode_tok_s: r2(B * G / wall),
            prefill_s: r2(prefill_s), timing: t === wall ? "wall" : "llama_perf", load_s: r2(load_s),
            model: o.model, ...info,
        }) + "\n");
    } else if (o.bench) {
        const P = o.promptLen, G = o.gen;
        const ctx = await mkContext(o.ctx || P + G + 8, Math.min(P, 512));
        const load_s = (performance.now() - t0) / 1000;
        const seq = ctx.getSequence();
        let x = 12345;
        const rnd = () => { x = (Math.imul(x, 1103515245) + 12345) >>> 0; return 3 + ((x >>> 8) % (vocab - 3)); };
        // warm-up: one short decode, then clear the cache
        await seq.controlledEvaluate([[rnd(), { generateNext: { token: true } }]]);
        await seq.clearHistory();
        const pp = [], tg = [], ppIn = [], tgIn = [];
        const llamaPerf = async () => { perf.prompt = perf.eval = undefined; await ctx.printTimings(); return { ...perf }; };
        await llamaPerf();
        for (let r = 0; r < o.reps; r++) {
            const prompt = Array.from({ length: P }, rnd);
            const items = prompt.map((t, i) => (i === P - 1 ? [t, { generateNext: { token: true, options: { temperature: 0 } } }] : t));
            let s = performance.now();
            const res = await seq.controlledEvaluate(items);
            pp.push(P / ((performance.now() - s) / 1000));
            const p1 = await llamaPerf();
            if (p1.prompt?.n) ppIn.push(p1.prompt.n / (p1.prompt.ms / 1000));
            let next = res[P - 1]?.next?.token;
            if (next == null) die("prefill returned no token");
            let n = 0;
            s = performance.now();
            for await (const tok of seq.evaluate([next], { temperature: 0, yieldEogToken: true })) {
                if (++n >= G) break;
            }
            tg.push(G / ((performance.now() - s) / 1000));
            const p2 = await llamaPerf();
            if (p2.eval?.n) tgIn.push(p2.eval.n / (p2.eval.ms / 1000));
            await seq.clearHistory();
        }
        const mean = (a) => a.reduce((p, c) => p + c, 0) / a.length;
        const sd = (a) => { const m = mean(a); return a.length > 1 ? Math.sqrt(a.reduce((p, c) => p + (c - m) ** 2, 0) / (a.length - 1)) : 0; };
        const r2 = (v) => Math.round(v * 100) / 100;
        // prefill/decode_tok_s: llama.cpp's own t_p_eval / t_eval (llama_perf_context), i.e. the time
        // inside llama_decode as llama-bench counts it; wall_*: the same runs timed around the JS
        // binding calls (adds the N-API round trip and the sampler, ~0.3-1 ms per decode step)
        const pick = (inner, wall) => (inner.length === wall.length ? inner : wall);
        process.stdout.write(JSON.stringify({
            prefill_tok_s: r2(mean(pick(ppIn, pp))), decode_tok_s: r2(mean(pick(tgIn, tg))),
            prefill_sd: r2(sd(pick(ppIn, pp))), decode_sd: r2(sd(pick(tgIn, tg))),
            wall_prefill_tok_s: r2(mean(pp)), wall_decode_tok_s: r2(mean(tg)),
            timing: ppIn.length === pp.length && tgIn.length === tg.length ? "llama_perf" : "wall",
            prompt_len: P, gen: G, reps: o.reps, decode_depth: P, load_s: r2(load_s),
            model: o.model, ...info,
        }) + "\n");
    } else {
        const N = o.n;
        // --prompt: llama.cpp's own tokenizer (special tokens in the text parsed), BOS per add_bos_token
        const T = o.tokens ?? [...(md?.tokenizer?.ggml?.add_bos_token !== false && model.tokens.bos != null ? [model.tokens.bos] : []),
            ...model.tokenize(o.prompt, true)];
        if (T.length === 0) die("--prompt: no tokens");
        const ctx = await mkContext(o.ctx || T.length + N + 8, Math.max(T.length, 1));
        const seq = ctx.getSequence();
        const out = [], top = [];
        const topOf = (logits) => [...logits.entries()].sort((a, b) => b[1] - a[1]).slice(0, o.top).map(([t, l]) => [t, Math.round(l * 1e4) / 1e4]);
        if (o.dumpLogits) {
            // float32 logits, one row per prompt token (as moecard run --dump-logits)
            const gl = { generateNext: { logits: true } };
            const res = await seq.controlledEvaluate(T.map((t) => [t, gl]));
            const nv = vocab;
            const buf = new Float32Array(T.length * nv);
            res.forEach((r, i) => { for (const [t, l] of r.next.logits) buf[i * nv + t] = l; });
            writeNpy(o.dumpLogits, buf, [T.length, nv]);
            await seq.clearHistory();
        }
        if (N > 0) {
            if (o.top > 0) {
                // step by step, keeping each step's logits
                const gn = { token: true, logits: true, options: { temperature: 0 } };
                let res = await seq.controlledEvaluate(T.map((t, i) => (i === T.length - 1 ? [t, { generateNext: gn }] : t)));
                let r = res[T.length - 1].next;
                for (;;) {
                    out.push(r.token); top.push(topOf(r.logits));
                    if (out.length >= N) break;
                    res = await seq.controlledEvaluate([[r.token, { generateNext: gn }]]);
                    r = res[0].next;
                }
            } else {
                for await (const tok of seq.evaluate(T, { temperature: 0, yieldEogToken: true })) {
                    out.push(tok);
                    if (out.length >= N) break;
                }
            }
        }
        const res = { prompt: T, tokens: out, text: model.detokenize(out), kv: o.kv, ...info };
        delete res.system_info;
        if (o.top > 0) res.top = top;
        process.stdout.write(JSON.stringify(res) + "\n");
    }
    await llama.dispose();
}

main().catch((e) => die(e?.stack ?? String(e)));
