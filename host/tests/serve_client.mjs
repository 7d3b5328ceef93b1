// serve_client.mjs URL KEY MODEL - drives `moecard serve` with OpenAI's official JavaScript
// client (npm package openai, fetched by `make deps` into build/cache/node_modules): chat and
// text completions, streamed and not, usage counts, a stop string, and the errors the client
// raises for a wrong model (404), a bad max_tokens (400) and a wrong key (401). Prints
// "ok <check>" or "FAIL <check>: <why>" per check (test_serve.sh counts them).
import { pathToFileURL } from 'node:url';
import path from 'node:path';
const [url, key, model] = process.argv.slice(2);
const lib = path.resolve(process.env.OPENAI_JS || 'build/cache/node_modules/openai/index.mjs');
const { default: OpenAI } = await import(pathToFileURL(lib).href);
const c = new OpenAI({ baseURL: url + '/v1', apiKey: key, maxRetries: 0, timeout: 60000 });
const check = async (name, fn) => {
  try { const why = await fn(); console.log(why ? `FAIL ${name}: ${why}` : `ok ${name}`); }
  catch (e) { console.log(`FAIL ${name}: ${e.constructor.name} ${e.message}`); }
};
const msgs = [{ role: 'system', content: 'You are terse.' }, { role: 'user', content: 'Tell me about the jury.' }];

let whole = '';
await check('models.list', async () => {
  const l = await c.models.list();
  return l.data.length === 1 && l.data[0].id === model ? '' : JSON.stringify(l.data);
});
await check('chat, not streamed', async () => {
  const r = await c.chat.completions.create({ model, messages: msgs, max_tokens: 12, temperature: 0 });
  whole = r.choices[0].message.content;
  const u = r.usage;
  return r.object === 'chat.completion' && r.choices[0].message.role === 'assistant' &&
    typeof whole === 'string' && whole.length > 0 && u.completion_tokens === 12 &&
    u.total_tokens === u.prompt_tokens + 12 && r.choices[0].finish_reason === 'length' ? '' : JSON.stringify(r);
});
await check('chat, streamed: the same text, usage at the end', async () => {
  const s = await c.chat.completions.create({ model, messages: msgs, max_tokens: 12, temperature: 0, stream: true,
    stream_options: { include_usage: true } });
  let t = '', fin = null, usage = null, n = 0;
  for await (const ch of s) {
    if (ch.usage) usage = ch.usage;
    if (ch.choices.length) { t += ch.choices[0].delta.content || ''; fin = ch.choices[0].finish_reason || fin; n++; }
  }
  return t === whole && fin === 'length' && usage && usage.completion_tokens === 12 && n >= 3 ? ''
    : `text ${JSON.stringify(t)} vs ${JSON.stringify(whole)}, finish ${fin}, usage ${JSON.stringify(usage)}`;
});
await check('completions, streamed and not', async () => {
  const r = await c.completions.create({ model, prompt: 'The jury said that', max_tokens: 10, temperature: 0 });
  const s = await c.completions.create({ model, prompt: 'The jury said that', max_tokens: 10, temperature: 0, stream: true });
  let t = '';
  for await (const ch of s) t += ch.choices[0]?.text || '';
  return r.object === 'text_completion' && r.choices[0].text === t && t.length > 0 ? '' : `${JSON.stringify(r.choices[0].text)} vs ${JSON.stringify(t)}`;
});
await check('stop string ends the text before it', async () => {
  const r = await c.completions.create({ model, prompt: 'The jury said that', max_tokens: 40, temperature: 0, stop: ['boy'] });
  const t = r.choices[0].text;
  return r.choices[0].finish_reason === 'stop' && !t.includes('boy') ? '' : `${JSON.stringify(t)} ${r.choices[0].finish_reason}`;
});
await check('seeded sampling repeats', async () => {
  const a = await c.completions.create({ model, prompt: 'The', max_tokens: 16, temperature: 0.9, top_p: 0.95, seed: 7 });
  const b = await c.completions.create({ model, prompt: 'The', max_tokens: 16, temperature: 0.9, top_p: 0.95, seed: 7 });
  return a.choices[0].text === b.choices[0].text ? '' : `${a.choices[0].text} vs ${b.choices[0].text}`;
});
await check('a wrong model is NotFoundError (404)', async () => {
  try { await c.chat.completions.create({ model: 'gpt-4o', messages: msgs, max_tokens: 2 }); return 'no error'; }
  catch (e) { return e.status === 404 && e.constructor.name === 'NotFoundError' && e.param === 'model' ? '' : `${e.status} ${e.constructor.name}`; }
});
await check('max_tokens 0 is BadRequestError (400) naming the field', async () => {
  try { await c.completions.create({ model, prompt: 'x', max_tokens: 0 }); return 'no error'; }
  catch (e) { return e.status === 400 && e.param === 'max_tokens' ? '' : `${e.status} ${e.param} ${e.message}`; }
});
await check('a wrong key is AuthenticationError (401)', async () => {
  const bad = new OpenAI({ baseURL: url + '/v1', apiKey: key + 'x', maxRetries: 0 });
  try { await bad.models.list(); return 'no error'; }
  catch (e) { return e.status === 401 ? '' : `${e.status} ${e.constructor.name}`; }
});
