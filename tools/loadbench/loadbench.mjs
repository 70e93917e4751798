#!/usr/bin/env node
// Load benchmark of an OpenAI-compatible chat server (kvlens serve, llama.cpp's llama-server, ...): C concurrent
// clients send a fixed list of greedy chat requests (POST /v1/chat/completions, non-streaming, temperature 0) until
// R requests are done, for each C; reported per C: requests/s, generated tokens/s (usage.completion_tokens summed
// over the wall time), and p50 / p99 request latency (nearest rank). Node's built-in fetch only, no packages.
//
//   node tools/loadbench/loadbench.mjs --url http://127.0.0.1:8080 [--clients 1,8,32] [--requests 4,16,32]
//        [--max-tokens 64] [--questions FILE.jsonl] [--n-questions N] [--thinking on|off|none]
//        [--stream] [--label NAME] [--timeout S] [--json]
//
// --requests gives R for each C (one number = the same for all; default 4*C, at least 8). Each C starts with one
// unmeasured request per client (warm-up). --thinking sends chat_template_kwargs.enable_thinking true/false (none:
// nothing). Questions: the "question" field of the lines of FILE (default data/easy.jsonl; the first N with
// --n-questions), taken in order and never twice in a run while they last (no prompt is served from a cache of an
// earlier identical one). --timeout: seconds one request may take (default 600). --stream: "stream": true, and the
// time to the first token (the first chunk with text or thinking) is reported too (p50 and p99).
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const usage = () => {
  const lines = fs.readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n');
  return lines.slice(1, lines.findIndex((l) => l.startsWith('import'))).map((l) => l.replace(/^\/\/ ?/, '')).join('\n');
};
function fail(msg) { console.error(`loadbench: ${msg}`); process.exit(2); }

const opt = { url: null, clients: [1, 8, 32], requests: null, maxTokens: 64, n: 1 << 30, thinking: 'off', label: '',
              json: false, stream: false, questions: path.resolve(here, '../../data/easy.jsonl'), timeoutMs: 600000 };
const list = (s, what) => s.split(',').map((x) => {
  const v = Number(x);
  if (!Number.isInteger(v) || v < 1 || v > 4096) fail(`bad ${what} '${s}' (comma-separated integers 1..4096)`);
  return v;
});
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const a = argv[i], v = () => { if (i + 1 >= argv.length) fail(`${a} needs a value`); return argv[++i]; };
  if (a === '-h' || a === '--help') { console.log(usage()); process.exit(0); }
  else if (a === '--url') opt.url = v().replace(/\/+$/, '');
  else if (a === '--clients') opt.clients = list(v(), '--clients');
  else if (a === '--requests') opt.requests = list(v(), '--requests');
  else if (a === '--max-tokens') [opt.maxTokens] = list(v(), '--max-tokens');
  else if (a === '--n-questions') [opt.n] = list(v(), '--n-questions');
  else if (a === '--questions') opt.questions = v();
  else if (a === '--thinking') { opt.thinking = v(); if (!['on', 'off', 'none'].includes(opt.thinking)) fail(`bad --thinking '${opt.thinking}' (on, off or none)`); }
  else if (a === '--label') opt.label = v();
  else if (a === '--timeout') [opt.timeoutMs] = list(v(), '--timeout').map((s) => s * 1000);
  else if (a === '--json') opt.json = true;
  else if (a === '--stream') opt.stream = true;
  else fail(`unknown option '${a}' (--help)`);
}
if (!opt.url || !/^https?:\/\//.test(opt.url)) fail('--url http://HOST:PORT is required');
if (opt.requests && opt.requests.length !== 1 && opt.requests.length !== opt.clients.length)
  fail('--requests takes one number or one per --clients entry');

let questions;
try {
  questions = fs.readFileSync(opt.questions, 'utf8').split('\n').filter((l) => l.trim()).slice(0, opt.n)
    .map((l, i) => {
      const q = JSON.parse(l).question;
      if (typeof q !== 'string' || !q) throw new Error(`line ${i + 1} has no "question" string`);
      return q;
    });
} catch (e) { fail(`${opt.questions}: ${e.message}`); }
if (!questions.length) fail(`${opt.questions}: no questions`);

let nextQuestion = 0; // the first question of the next level
function body(i, model) {
  const b = { messages: [{ role: 'user', content: questions[i % questions.length] }], max_tokens: opt.maxTokens,
              temperature: 0, stream: opt.stream };
  if (opt.stream) b.stream_options = { include_usage: true }; // llama-server sends usage only when asked
  if (model) b.model = model;
  if (opt.thinking !== 'none') b.chat_template_kwargs = { enable_thinking: opt.thinking === 'on' };
  return b;
}

async function request(i, model) {
  const t0 = performance.now();
  const res = await fetch(opt.url + '/v1/chat/completions', {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body(i, model)),
    signal: AbortSignal.timeout(opt.timeoutMs),
  });
  if (!res.ok) throw new Error(`request ${i}: HTTP ${res.status}: ${(await res.text()).slice(0, 300)}`);
  if (opt.stream) return streamed(i, res, t0);
  const text = await res.text();
  const ms = performance.now() - t0;
  const j = JSON.parse(text);
  const tokens = j.usage?.completion_tokens;
  if (!Number.isInteger(tokens)) throw new Error(`request ${i}: no usage.completion_tokens`);
  return { ms, tokens, prompt: j.usage.prompt_tokens ?? 0 };
}

// A streamed answer: SSE "data: {json}" events until "data: [DONE]"; the usage of the chunk that carries it.
async function streamed(i, res, t0) {
  const dec = new TextDecoder();
  let buf = '', first = null, usage = null, done = false;
  for await (const part of res.body) {
    buf += dec.decode(part, { stream: true });
    let cut;
    while ((cut = buf.indexOf('\n\n')) >= 0) {
      const ev = buf.slice(0, cut).trim();
      buf = buf.slice(cut + 2);
      if (!ev.startsWith('data:')) continue;
      const data = ev.slice(5).trim();
      if (data === '[DONE]') { done = true; continue; }
      const j = JSON.parse(data);
      const d = j.choices?.[0]?.delta;
      if (first === null && d && (d.content || d.reasoning_content)) first = performance.now() - t0;
      if (j.usage) usage = j.usage;
    }
  }
  const ms = performance.now() - t0;
  if (!done) throw new Error(`request ${i}: the stream ended without [DONE]`);
  if (!Number.isInteger(usage?.completion_tokens)) throw new Error(`request ${i}: no usage in the stream`);
  return { ms, ttft: first ?? ms, tokens: usage.completion_tokens, prompt: usage.prompt_tokens ?? 0 };
}

// C clients share one counter of requests; each takes the next index until R are done.
async function level(C, R, model) {
  const base = nextQuestion;
  nextQuestion += C + R;
  await Promise.all(Array.from({ length: C }, (_, k) => request(base + k, model))); // warm-up, unmeasured
  let next = 0;
  const done = [];
  const t0 = performance.now();
  await Promise.all(Array.from({ length: C }, async () => {
    for (let i = next++; i < R; i = next++) done.push(await request(base + C + i, model));
  }));
  const wall = (performance.now() - t0) / 1000;
  const lat = done.map((d) => d.ms).sort((a, b) => a - b);
  const pick = (v, p) => v[Math.min(v.length - 1, Math.max(0, Math.ceil(p * v.length) - 1))];
  const rank = (p) => pick(lat, p);
  const ttft = done.map((d) => d.ttft).filter((x) => x !== undefined).sort((a, b) => a - b);
  const tokens = done.reduce((s, d) => s + d.tokens, 0);
  return { label: opt.label, clients: C, requests: R, wall_s: +wall.toFixed(3), req_s: +(R / wall).toFixed(3),
           tok_s: +(tokens / wall).toFixed(2), gen_tokens: tokens,
           prompt_tokens: done.reduce((s, d) => s + d.prompt, 0), p50_ms: +rank(0.5).toFixed(1),
           p99_ms: +rank(0.99).toFixed(1), max_tokens: opt.maxTokens,
           ...(ttft.length ? { ttft_p50_ms: +pick(ttft, 0.5).toFixed(1), ttft_p99_ms: +pick(ttft, 0.99).toFixed(1) } : {}) };
}

let model = null;
try {
  const m = await fetch(opt.url + '/v1/models', { signal: AbortSignal.timeout(30000) }).then((r) => r.json());
  model = m?.data?.[0]?.id ?? null;
} catch (e) { fail(`${opt.url}/v1/models: ${e.message}`); }

const nR = (k, C) => (opt.requests ? opt.requests[opt.requests.length === 1 ? 0 : k] : Math.max(8, 4 * C));
const needed = opt.clients.reduce((s, C, k) => s + C + nR(k, C), 0);
if (needed > questions.length)
  console.error(`loadbench: note: ${needed} requests over ${questions.length} questions, some are asked again`);
const ttftCols = opt.stream ? ' first token p50 ms | first token p99 ms |' : '';
if (!opt.json) console.log(`| server | clients | requests | req/s | gen tok/s | p50 ms | p99 ms | tokens |${ttftCols}`);
if (!opt.json) console.log(`|---|---:|---:|---:|---:|---:|---:|---:|${opt.stream ? '---:|---:|' : ''}`);
for (const [k, C] of opt.clients.entries()) {
  const R = nR(k, C);
  let r;
  try { r = await level(C, R, model); } catch (e) { fail(`${C} clients: ${e.message}${e.cause ? ` (${e.cause.code || e.cause.message})` : ""}`); }
  if (opt.json) console.log(JSON.stringify(r));
  else console.log(`| ${r.label} | ${C} | ${R} | ${r.req_s.toFixed(2)} | ${r.tok_s.toFixed(1)} | ${r.p50_ms.toFixed(0)} | ` +
                   `${r.p99_ms.toFixed(0)} | ${r.gen_tokens} |` +
                   (opt.stream ? ` ${r.ttft_p50_ms.toFixed(0)} | ${r.ttft_p99_ms.toFixed(0)} |` : ''));
}
