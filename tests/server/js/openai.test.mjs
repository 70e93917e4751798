// `kvlens serve` through the official openai npm SDK (pinned in package-lock.json), against the real server on
// 127.0.0.1 with the shipped model and probe. Every answer is greedy and is compared with what the kvlens command
// line computes for the same request in a separate process (lib/ref.mjs): the text (thinking and reply apart), the
// confidence scores, the thinking decision, the embeddings and the log-probabilities. Run by run.sh (ctest).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { PROBE, startServer } from './lib/server.mjs';
import { cliEmbed, cliLogprobs, cliRun, cliRunRaw, splitThinking } from './lib/ref.mjs';

const EASY = 'Nora has 20 ribbons. She wins 3 ribbons in a game. How many ribbons does Nora have at the end?';
const HARD = 'A club has 239 shells. It orders 9 jars of shells, and each jar holds 3 shells. The next day, it orders ' +
  '8 boxs of shells, and each box holds 16 shells. After that, it receives 6 crates with 9 shells in each crate. ' +
  'It receives a delivery of 277 shells. After that, it throws away 220 broken shells. What is the number of shells now?';
const N = 400; // max_tokens: the same limit on both sides (server and kvlens run), so a slow answer cut there compares alike
const T = { timeout: 240000 }; // generous: under ASan/UBSan on a busy 2-core machine a slow answer takes ~10 s

let server, client, model;

// |a - b| <= tol * max(1, |b|), printed with the measured error
function near(what, a, b, tol) {
  if (b === null) { // undefined on both sides (e.g. KV-CoE of a trajectory too short: "warn": "short")
    console.log(`  ${what}: server ${a} cli null`);
    assert.equal(a, null, `${what}: server ${a}, cli null`);
    return;
  }
  const err = Math.abs(a - b) / Math.max(1, Math.abs(b));
  console.log(`  ${what}: server ${a} cli ${b} (error ${err.toExponential(2)}, bound ${tol})`);
  assert.ok(Number.isFinite(a) && err <= tol, `${what}: server ${a}, cli ${b}`);
}
// The server's kvlens.confidence against `kvlens run --confidence` of the same greedy answer.
function sameConfidence(got, want) {
  assert.ok(got && typeof got === 'object', 'kvlens.confidence is an object');
  assert.equal(got.answer_tokens, want.answer_tokens, 'answer_tokens');
  for (const k of ['maxprob', 'ppl', 'entropy']) near(k, got[k], want[k], 1e-4);
  for (const axis of ['token', 'layer']) {
    for (const k of ['mag', 'ang', 'r', 'c']) near(`kv_coe.${axis}.${k}`, got.kv_coe[axis][k], want.kv_coe[axis][k], 1e-3);
    assert.equal(got.kv_coe[axis].warn, want.kv_coe[axis].warn, `kv_coe.${axis}.warn`);
  }
}
const thinkingOf = (msg) => msg.reasoning_content ?? '';

async function chat(question, extra = {}) {
  return client.chat.completions.create({
    model, messages: [{ role: 'user', content: question }], max_tokens: N, temperature: 0, ...extra,
  });
}
async function chatStream(question, extra = {}) {
  const stream = await client.chat.completions.create({
    model, messages: [{ role: 'user', content: question }], max_tokens: N, temperature: 0, stream: true, ...extra,
  });
  let content = '', reasoning = '', finish = null, last = null, chunks = 0, withKv = 0;
  for await (const chunk of stream) {
    chunks++;
    last = chunk;
    if (chunk.kvlens) withKv++;
    const ch = chunk.choices && chunk.choices[0];
    if (!ch) continue;
    if (ch.delta?.content) content += ch.delta.content;
    if (ch.delta?.reasoning_content) reasoning += ch.delta.reasoning_content;
    if (ch.finish_reason) finish = ch.finish_reason;
  }
  return { content, reasoning, finish, last, chunks, withKv };
}

before(async () => {
  server = await startServer(['--probe', PROBE]);
  client = new OpenAI({ baseURL: server.baseURL, apiKey: 'unused', maxRetries: 0, timeout: 60000 });
});
after(async () => { if (server) await server.stop(); });

test('models.list names the served model', T, async () => {
  const list = await client.models.list();
  assert.ok(list.data.length >= 1, 'at least one model');
  model = list.data[0].id;
  assert.equal(typeof model, 'string');
  assert.ok(model.length > 0);
});

describe('chat, non-streaming', () => {
  test('fast (enable_thinking false): the reply alone, equal to kvlens run --think fast, with its confidence', T, async () => {
    const r = await chat(EASY, { chat_template_kwargs: { enable_thinking: false } });
    const ref = cliRun(EASY, 'fast', { n: N, confidence: true });
    const msg = r.choices[0].message;
    assert.equal(msg.role, 'assistant');
    assert.equal(thinkingOf(msg), '', 'no reasoning_content in fast mode');
    assert.equal(msg.content.trim(), ref.text.trim());
    assert.equal(r.choices[0].finish_reason, 'stop');
    assert.equal(r.usage.completion_tokens, ref.n_generated, 'usage.completion_tokens = tokens generated');
    assert.ok(r.usage.prompt_tokens > 0 && r.usage.total_tokens === r.usage.prompt_tokens + r.usage.completion_tokens);
    sameConfidence(r.kvlens?.confidence, ref.confidence);
  });

  test('slow (enable_thinking true): reasoning_content apart from content, both equal to kvlens run --think slow', T, async () => {
    const r = await chat(EASY, { chat_template_kwargs: { enable_thinking: true } });
    const ref = cliRun(EASY, 'slow', { n: N, confidence: true });
    const want = splitThinking(ref.text);
    const msg = r.choices[0].message;
    assert.ok(want.reasoning.trim().length > 0, 'the CLI thought');
    assert.ok(want.content.trim().length > 0, 'the CLI answered after its thinking (not cut by max_tokens)');
    assert.equal(thinkingOf(msg).trim(), want.reasoning.trim());
    assert.equal(msg.content.trim(), want.content.trim());
    for (const tag of ['<think>', '</think>']) assert.ok(!msg.content.includes(tag), `no ${tag} in content`);
    assert.equal(r.usage.completion_tokens, ref.n_generated);
    sameConfidence(r.kvlens?.confidence, ref.confidence);
  });

  test('reasoning_effort: minimal = fast, high = slow', T, async () => {
    const fast = await chat(EASY, { reasoning_effort: 'minimal' });
    const slow = await chat(EASY, { reasoning_effort: 'high' });
    const rf = cliRun(EASY, 'fast', { n: N }), rs = splitThinking(cliRun(EASY, 'slow', { n: N }).text);
    assert.equal(thinkingOf(fast.choices[0].message), '');
    assert.equal(fast.choices[0].message.content.trim(), rf.text.trim());
    assert.equal(thinkingOf(slow.choices[0].message).trim(), rs.reasoning.trim());
    assert.equal(slow.choices[0].message.content.trim(), rs.content.trim());
  });

  test('system message and [{type: text}] content parts are accepted', T, async () => {
    const parts = await client.chat.completions.create({
      model, max_tokens: N, temperature: 0, chat_template_kwargs: { enable_thinking: false },
      messages: [{ role: 'user', content: [{ type: 'text', text: EASY }] }],
    });
    assert.equal(parts.choices[0].message.content.trim(), cliRun(EASY, 'fast', { n: N }).text.trim());
    const sys = await chat(EASY, { chat_template_kwargs: { enable_thinking: false },
                                   messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: EASY }] });
    assert.ok(sys.choices[0].message.content.length > 0);
  });
});

describe('chat, streaming', () => {
  for (const [mode, on] of [['fast', false], ['slow', true]]) {
    test(`${mode}: deltas add up to the non-streamed answer; the last chunk carries kvlens`, T, async () => {
      const s = await chatStream(EASY, { chat_template_kwargs: { enable_thinking: on } });
      const want = on ? splitThinking(cliRun(EASY, 'slow', { n: N }).text)
                      : { reasoning: '', content: cliRun(EASY, 'fast', { n: N }).text };
      console.log(`  ${s.chunks} chunks, ${s.withKv} with kvlens`);
      assert.ok(s.chunks >= 3, 'streamed in several chunks');
      assert.equal(s.reasoning.trim(), want.reasoning.trim());
      assert.equal(s.content.trim(), want.content.trim());
      assert.equal(s.finish, 'stop');
      assert.ok(s.last.kvlens && s.last.kvlens.confidence, 'the last chunk before [DONE] has kvlens.confidence');
      const ns = await chat(EASY, { chat_template_kwargs: { enable_thinking: on } });
      sameConfidence(s.last.kvlens.confidence, ns.kvlens.confidence);
    });
  }
});

describe('auto thinking with the probe', () => {
  for (const [name, q] of [['easy', EASY], ['hard', HARD]]) {
    test(`${name} question: kvlens.think equals kvlens run --think auto2, text split as decided`, T, async () => {
      const ref = cliRun(q, 'auto2', { n: N });
      const r = await chat(q, { reasoning_effort: 'auto' });
      const th = r.kvlens?.think;
      assert.ok(th && typeof th === 'object', 'kvlens.think is set for an auto request');
      console.log(`  server: ${th.initial} (score ${th.initial_score}) -> ${th.final}, switch at ${th.switch_at}` +
                  `; cli: ${ref.think.initial} (score ${ref.think.initial_score}) -> ${ref.think.final}, switch at ${ref.think.switch_at}`);
      assert.match(String(th.mode), /^auto/);
      assert.equal(th.initial, ref.think.initial);
      assert.equal(th.final, ref.think.final);
      near('initial_score', th.initial_score, ref.think.initial_score, 1e-2);
      assert.equal(th.switch_at ?? null, ref.think.switch_at);
      if (ref.think.switch) assert.equal(th.switch_dir, ref.think.switch);
      // the text: a slow start opens with the thinking; a fast start that switched has its reply so far, then thinks
      const msg = r.choices[0].message;
      if (ref.think.initial === 'slow') {
        const want = splitThinking(ref.text);
        assert.equal(thinkingOf(msg).trim(), want.reasoning.trim());
        assert.equal(msg.content.trim(), want.content.trim());
      } else if (!ref.think.switch) {
        assert.equal(thinkingOf(msg), '');
        assert.equal(msg.content.trim(), ref.text.trim());
      }
      for (const tag of ['<think>', '</think>']) assert.ok(!msg.content.includes(tag), `no ${tag} in content`);
      // an auto answer is scored too (the CLI does not score auto runs, so only its range is checked here)
      const mp = r.kvlens?.confidence?.maxprob;
      assert.ok(mp > 0 && mp <= 1, `kvlens.confidence.maxprob ${mp} in (0, 1]`);
      assert.ok(r.kvlens.confidence.answer_tokens > 0, 'answer_tokens');
      // the same decision through chat_template_kwargs.enable_thinking "auto", streamed
      const s = await chatStream(q, { chat_template_kwargs: { enable_thinking: 'auto' } });
      assert.equal(s.last.kvlens?.think?.initial, th.initial);
      assert.equal(s.last.kvlens?.think?.switch_at ?? null, th.switch_at ?? null);
      assert.equal(s.content.trim(), msg.content.trim());
      assert.equal(s.reasoning.trim(), thinkingOf(msg).trim());
    });
  }
  test('fast and slow requests report no auto decision', T, async () => {
    const r = await chat(EASY, { chat_template_kwargs: { enable_thinking: false } });
    const th = r.kvlens?.think;
    assert.ok(th === null || th === undefined || !String(th.mode).startsWith('auto'), `think: ${JSON.stringify(th)}`);
  });
});

describe('text completions', () => {
  test('completions.create continues raw text as kvlens run -p does, with its confidence', T, async () => {
    const prompt = 'Mia has 12 apples. She buys 7 more apples.';
    const r = await client.completions.create({ model, prompt, max_tokens: 24, temperature: 0 });
    const ref = cliRunRaw(prompt, { n: 24, confidence: true });
    assert.equal(r.choices[0].text, ref.text);
    assert.equal(r.usage.completion_tokens, ref.n_generated);
    sameConfidence(r.kvlens?.confidence, ref.confidence);
  });
});

describe('embeddings', () => {
  const texts = ['Mia has 12 apples.', 'The train leaves at noon and arrives at three.'];
  test('float and base64 decode to the same vectors, equal to kvlens embed', T, async () => {
    const f = await client.embeddings.create({ model, input: texts, encoding_format: 'float' });
    // base64 asked for explicitly: the SDK hands the string over as it came
    const b = await client.embeddings.create({ model, input: texts, encoding_format: 'base64' });
    // no format: the SDK itself asks for base64 and decodes it into numbers
    const d = await client.embeddings.create({ model, input: texts });
    const ref = cliEmbed(texts);
    assert.equal(f.data.length, texts.length);
    for (let i = 0; i < texts.length; i++) {
      const v = f.data[i].embedding;
      assert.equal(f.data[i].index, i);
      assert.equal(v.length, ref[i].length, 'dimension');
      assert.equal(typeof b.data[i].embedding, 'string', 'base64 is a string');
      const bytes = Buffer.from(b.data[i].embedding, 'base64');
      const dec = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
      let dRef = 0, dB64 = 0, dSdk = 0;
      for (let j = 0; j < v.length; j++) {
        dRef = Math.max(dRef, Math.abs(v[j] - ref[i][j]));
        dB64 = Math.max(dB64, Math.abs(dec[j] - Math.fround(v[j])));
        dSdk = Math.max(dSdk, Math.abs(d.data[i].embedding[j] - dec[j]));
      }
      console.log(`  text ${i}: dim ${v.length}, max |server - kvlens embed| ${dRef.toExponential(2)}, ` +
                  `max |base64 - float| ${dB64.toExponential(2)}, max |SDK-decoded - base64| ${dSdk.toExponential(2)}`);
      assert.equal(dec.length, v.length);
      assert.ok(dRef <= 1e-5, `server vs kvlens embed: ${dRef}`);
      assert.ok(dB64 <= 1e-6, `base64 vs float (after rounding to float32): ${dB64}`);
      assert.ok(dSdk === 0, `the SDK's own base64 decoding vs the base64 string: ${dSdk}`);
    }
    assert.ok(f.usage && f.usage.prompt_tokens > 0, 'usage.prompt_tokens');
  });
});

describe('logprobs', () => {
  test('logprobs and top_logprobs: chosen token = top, values equal log-softmax of kvlens dump logits', T, async () => {
    const K = 3;
    const r = await chat(EASY, { chat_template_kwargs: { enable_thinking: false }, logprobs: true, top_logprobs: K });
    const ref = cliRun(EASY, 'fast', { n: N });
    const content = r.choices[0].logprobs?.content;
    assert.ok(Array.isArray(content) && content.length > 0, 'choices[0].logprobs.content');
    assert.equal(content.map((e) => e.token).join('').trim(), r.choices[0].message.content.trim(),
                 'the tokens spell the reply');
    assert.ok(content.length === ref.n_generated || content.length === ref.n_generated - 1,
              `one entry per generated token (${content.length} of ${ref.n_generated}, the end token may be left out)`);
    // the reference runs prompt and answer as one batch (int8 GEMM for Q8_0 weights) where the server decoded token
    // by token (GEMV): the logits differ in the last digits, which shows in the far tail (log-probabilities near -12
    // move by a few hundredths), hence an absolute bound for the chosen tokens and a relative one for the others
    const L = cliLogprobs(EASY, 'fast', ref.tokens);
    let chosenErr = 0, topErr = 0;
    content.forEach((e, i) => {
      assert.equal(e.top_logprobs.length, K, `top_logprobs has ${K} entries`);
      for (let k = 1; k < K; k++) assert.ok(e.top_logprobs[k - 1].logprob >= e.top_logprobs[k].logprob, 'sorted');
      assert.equal(e.top_logprobs[0].token, e.token, 'greedy: the chosen token is the most likely');
      assert.ok(Math.abs(e.top_logprobs[0].logprob - e.logprob) < 1e-6);
      const lp = L.logp(i);
      const want = Array.from(lp).sort((a, b) => b - a).slice(0, K);
      chosenErr = Math.max(chosenErr, Math.abs(e.logprob - lp[ref.tokens[i]]));
      want.forEach((w, k) => { topErr = Math.max(topErr, Math.abs(e.top_logprobs[k].logprob - w) / Math.max(1, Math.abs(w))); });
    });
    console.log(`  ${content.length} tokens: max |chosen logprob - kvlens dump| ${chosenErr.toExponential(2)} (bound 1e-3), ` +
                `top-${K} relative error ${topErr.toExponential(2)} (bound 1e-2)`);
    assert.ok(chosenErr <= 1e-3, `chosen-token logprobs off by ${chosenErr}`);
    assert.ok(topErr <= 1e-2, `top logprobs off by ${topErr} (relative)`);
  });
});

describe('errors surface as the SDK\'s APIError', () => {
  const bad = [
    ['temperature -1', { temperature: -1 }],
    ['max_tokens -5', { max_tokens: -5 }],
    ['top_p 7', { top_p: 7 }],
    ['no messages', { messages: [] }],
    ['an unknown role', { messages: [{ role: 'wizard', content: 'hi' }] }],
    ['top_logprobs 1000 (OpenAI allows 0..20)', { logprobs: true, top_logprobs: 1000 }],
    ['messages as a string', { messages: 'hi' }],
    ['n 2 (one choice per request)', { n: 2 }],
    ['tools (not supported: refused, not ignored)',
     { tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object', properties: {} } } }] }],
    ['a prompt longer than the context', { messages: [{ role: 'user', content: 'one two three '.repeat(3000) }] }],
  ];
  for (const [name, extra] of bad) {
    test(`${name}: 400 with an error message, and the next request is served`, T, async () => {
      await assert.rejects(chat(EASY, extra), (e) => {
        console.log(`  ${name}: ${e.constructor.name} ${e.status}: ${e.message}`);
        assert.ok(e instanceof OpenAI.APIError, `an APIError, not ${e}`);
        assert.ok(e instanceof OpenAI.BadRequestError, `status ${e.status}`);
        assert.equal(e.status, 400);
        assert.ok(e.error && typeof e.error.message === 'string' && e.error.message.length > 0, 'error.message');
        return true;
      });
      const ok = await chat(EASY, { chat_template_kwargs: { enable_thinking: false } });
      assert.ok(ok.choices[0].message.content.length > 0);
    });
  }
  test('embeddings of nothing: 400', T, async () => {
    await assert.rejects(client.embeddings.create({ model, input: [] }), (e) => e instanceof OpenAI.BadRequestError);
  });
});

describe('--api-key', () => {
  let keyed;
  before(async () => { keyed = await startServer(['--api-key', 'kvl-test-key-1234']); });
  after(async () => { if (keyed) await keyed.stop(); });
  test('a wrong or missing key is a 401 AuthenticationError; the right key is served; /health needs none', T, async () => {
    for (const apiKey of ['wrong-key', 'kvl-test-key-123', 'kvl-test-key-12345']) {
      const c = new OpenAI({ baseURL: keyed.baseURL, apiKey, maxRetries: 0, timeout: 60000 });
      await assert.rejects(c.models.list(), (e) => {
        console.log(`  key '${apiKey}': ${e.constructor.name} ${e.status}`);
        return e instanceof OpenAI.AuthenticationError && e.status === 401;
      });
      await assert.rejects(c.chat.completions.create({ model: 'x', messages: [{ role: 'user', content: 'hi' }], max_tokens: 4 }),
                           (e) => e instanceof OpenAI.AuthenticationError);
    }
    const none = await fetch(keyed.baseURL + '/models');
    assert.equal(none.status, 401, 'no Authorization header');
    const health = await fetch(keyed.origin + '/health');
    assert.equal(health.status, 200, '/health without a key');
    const c = new OpenAI({ baseURL: keyed.baseURL, apiKey: 'kvl-test-key-1234', maxRetries: 0, timeout: 60000 });
    const r = await c.chat.completions.create({ model: (await c.models.list()).data[0].id, max_tokens: N, temperature: 0,
      messages: [{ role: 'user', content: EASY }], chat_template_kwargs: { enable_thinking: false } });
    assert.equal(r.choices[0].message.content.trim(), cliRun(EASY, 'fast', { n: N }).text.trim());
  });
});
