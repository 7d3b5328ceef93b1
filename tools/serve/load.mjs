// load.mjs - a load generator for `moecard serve` (Node.js, no packages): C concurrent clients,
// each sending R streamed completion requests one after another; prints, per concurrency level,
// generated tokens/s over the wall time, and the p50/p99 of time to first token and of the
// inter-token latency as the clients saw them (one SSE chunk per token).
//
//   node tools/serve/load.mjs --url http://127.0.0.1:8080 --clients 1,2,4,8 --requests 4 \
//        --max-tokens 64 [--prompt TEXT] [--model ID] [--key API_KEY] [--warmup N] [--json]
//
// --warmup N (default 1): N requests before the measured levels, not counted, so that the first
// level does not carry the server's first request (its pages touched, its buffers grown: about
// 0.1-0.2 s on mid), which would understate one client and overstate the others' ratio to it.
//
// Exit status 1 when any request failed (the failures are printed).
const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, a, i, all) => {
    if (a.startsWith('--')) acc.push([a.slice(2), all[i + 1] && !all[i + 1].startsWith('--') ? all[i + 1] : 'true']);
    return acc;
  }, []));
const url = args.url || 'http://127.0.0.1:8080';
const levels = (args.clients || '1,2,4,8').split(',').map(Number);
const reqs = Number(args.requests || 4);
const maxTokens = Number(args['max-tokens'] || 64);
const prompt = args.prompt || 'The jury said that';
const pct = (a, p) => (a.length ? a.slice().sort((x, y) => x - y)[Math.min(a.length - 1, Math.floor(p / 100 * a.length))] : 0);

async function one(i) {
  const t0 = performance.now();
  const body = { prompt: prompt + ' ' + (i % 7), max_tokens: maxTokens, temperature: 0, stream: true };
  if (args.model) body.model = args.model;
  const r = await fetch(url + '/v1/completions', {
    method: 'POST', body: JSON.stringify(body),
    headers: { 'Content-Type': 'application/json', ...(args.key ? { Authorization: 'Bearer ' + args.key } : {}) },
  });
  if (r.status !== 200) throw new Error(`status ${r.status}: ${await r.text()}`);
  const dec = new TextDecoder();
  let buf = '', last = 0, first = 0, tokens = 0, done = false;
  const itl = [];
  for await (const part of r.body) {
    buf += dec.decode(part, { stream: true });
    let k;
    while ((k = buf.indexOf('\n\n')) >= 0) {
      const ev = buf.slice(0, k); buf = buf.slice(k + 2);
      if (!ev.startsWith('data: ')) continue;
      const d = ev.slice(6);
      if (d === '[DONE]') { done = true; continue; }
      const j = JSON.parse(d);
      if (j.error) throw new Error(j.error.message);
      if (j.choices && j.choices[0] && j.choices[0].text) {
        const now = performance.now();
        if (!first) first = now - t0; else itl.push(now - last);
        last = now;
        tokens++;
      }
    }
  }
  if (!done) throw new Error('stream ended without [DONE]');
  return { ttft: first, itl, tokens };
}

const out = [];
let failed = 0;
for (let i = 0; i < Number(args.warmup ?? 1); i++) {
  try { await one(i); } catch (e) { failed++; console.error(`warm-up request ${i}: ${e.message}`); }
}
for (const c of levels) {
  const ttft = [], itl = [];
  let tokens = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: c }, async (_, k) => {
    for (let i = 0; i < reqs; i++) {
      try {
        const r = await one(k * reqs + i);
        ttft.push(r.ttft); itl.push(...r.itl); tokens += r.tokens;
      } catch (e) { failed++; console.error(`client ${k} request ${i}: ${e.message}`); }
    }
  }));
  const s = (performance.now() - t0) / 1000;
  out.push({ clients: c, requests: c * reqs, tokens, seconds: +s.toFixed(3), tok_s: +(tokens / s).toFixed(2),
    ttft_p50_ms: +pct(ttft, 50).toFixed(2), ttft_p99_ms: +pct(ttft, 99).toFixed(2),
    itl_p50_ms: +pct(itl, 50).toFixed(2), itl_p99_ms: +pct(itl, 99).toFixed(2) });
}
if (args.json === 'true') {
  console.log(JSON.stringify(out));
} else {
  console.log('| clients | requests | gen tok/s | x 1 client | TTFT p50 / p99 ms | ITL p50 / p99 ms |');
  console.log('|---|---|---|---|---|---|');
  for (const o of out)
    console.log(`| ${o.clients} | ${o.requests} | ${o.tok_s} | ${(o.tok_s / out[0].tok_s).toFixed(2)} | ${o.ttft_p50_ms} / ${o.ttft_p99_ms} | ${o.itl_p50_ms} / ${o.itl_p99_ms} |`);
}
process.exit(failed ? 1 : 0);
