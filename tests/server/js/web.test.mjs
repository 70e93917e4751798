// The web page of `kvlens serve` (GET /) in headless Chromium (Debian's chromium driven by playwright-core): it types
// questions, sees the answers stream in with their confidence badge, the thinking folded, and the decision when auto
// chose; the texts, the badge's MaxProb and the decision are compared with the kvlens command line on the same
// questions (lib/ref.mjs). Saves a screenshot as $KVL_OUT/web-page.png (the build directory under ctest).
// Run by run.sh (ctest).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { PROBE, startServer } from './lib/server.mjs';
import { cliRun, cliRunMessages, splitThinking } from './lib/ref.mjs';

const CHROMIUM = process.env.KVL_CHROMIUM || '/usr/bin/chromium';
const OUT = process.env.KVL_OUT || process.cwd();
const EASY = 'Nora has 20 ribbons. She wins 3 ribbons in a game. How many ribbons does Nora have at the end?';
const HARD = 'A club has 239 shells. It orders 9 jars of shells, and each jar holds 3 shells. The next day, it orders ' +
  '8 boxs of shells, and each box holds 16 shells. After that, it receives 6 crates with 9 shells in each crate. ' +
  'It receives a delivery of 277 shells. After that, it throws away 220 broken shells. What is the number of shells now?';
const N = 400; // the page's max tokens, also given to the CLI
const WAIT = 180000; // one answer (ASan builds on a busy machine are slow)

let browser;
before(async () => {
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-dev-shm-usage'], timeout: WAIT });
});
after(async () => { if (browser) await browser.close(); });

// A page on `server`, with every request it makes and every script error recorded.
async function openPage(server) {
  const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
  const requests = [], errors = [];
  page.on('request', (r) => requests.push(r.url()));
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  page.setDefaultTimeout(WAIT);
  const res = await page.goto(server.url);
  assert.equal(res.status(), 200);
  assert.match(res.headers()['content-type'] || '', /text\/html/);
  return { page, requests, errors };
}

// Asks `question` in `mode` (in a fresh conversation unless `followUp`); resolves to what the page shows for the
// answer, and how many server-sent events the page read for it. The controls are found by their accessible roles
// and names, as assistive technology finds them.
async function ask(page, mode, question, { followUp = false } = {}) {
  if (!followUp) await page.getByRole('button', { name: 'New' }).click();
  await page.getByRole('radio', { name: mode }).check();
  const box = page.getByRole('textbox', { name: 'Message' });
  await box.fill(question);
  await box.press('Enter');
  const msg = page.locator('.msg.assistant').last();
  await msg.locator('.badge').waitFor();
  return {
    msg,
    events: Number(await msg.getAttribute('data-events')),
    answer: await msg.locator('.answer').textContent(),
    thinkingHidden: await msg.locator('details.thinking').evaluate((d) => d.hidden),
    thinkingOpen: await msg.locator('details.thinking').evaluate((d) => d.open),
    thinking: await msg.locator('details.thinking .reasoning').textContent(),
    badge: await msg.locator('.badge').evaluate((b) => ({ cls: b.className, text: b.textContent, title: b.parentElement.title,
                                                           maxprob: Number(b.dataset.maxprob) })),
    decision: await msg.locator('.decision').count() ? await msg.locator('.decision').textContent() : null,
  };
}

function checkBadge(what, badge, maxprob) {
  const err = Math.abs(badge.maxprob - maxprob);
  console.log(`  ${what}: badge "${badge.text}" (${badge.cls}); MaxProb page ${badge.maxprob} cli ${maxprob} (error ${err.toExponential(2)})`);
  assert.ok(err <= 1e-4, 'the badge shows the answer\'s MaxProb');
  const level = maxprob >= 0.9 ? 'hi' : maxprob >= 0.7 ? 'mid' : 'lo';
  assert.equal(badge.cls, `badge ${level}`);
  assert.match(badge.text, new RegExp(`${Math.round(maxprob * 100)}%`));
  assert.match(badge.title, /MaxProb/);
  assert.match(badge.title, /KV-CoE/);
}

test('chat on the web page: streamed answers, badge, folded thinking, auto decision, screenshot', { timeout: 600000 }, async () => {
  const server = await startServer(['--probe', PROBE]);
  try {
    const { page, requests, errors } = await openPage(server);
    await page.locator('body[data-discovered]').waitFor();
    assert.equal(await page.locator('#status').getAttribute('class'), 'ok');
    assert.equal(await page.locator('#mode-auto').isDisabled(), false, 'auto is offered when the server has a probe');

    const fast = await ask(page, 'fast', EASY);
    const rf = cliRun(EASY, 'fast', { n: N, confidence: true });
    console.log(`  fast: "${fast.answer}" (${fast.events} server-sent events)`);
    assert.equal(fast.answer.trim(), rf.text.trim());
    assert.ok(fast.thinkingHidden, 'no thinking block in fast mode');
    assert.ok(fast.events >= 3, 'the answer came streamed, in several events');
    checkBadge('fast', fast.badge, rf.confidence.maxprob);
    assert.equal(fast.decision, null, 'no auto decision for a fast request');

    // a follow-up in the same conversation: the page sends the history, as `kvlens run --messages` gets it
    const FOLLOW = 'And if she wins 4 more?';
    const next = await ask(page, 'fast', FOLLOW, { followUp: true });
    const rn = cliRunMessages([{ role: 'user', content: EASY }, { role: 'assistant', content: fast.answer },
                               { role: 'user', content: FOLLOW }], 'fast', { n: N });
    console.log(`  follow-up: "${next.answer}"`);
    assert.equal(next.answer.trim(), rn.text.trim());
    assert.equal(await page.getByRole('log', { name: 'Conversation' }).locator('.msg').count(), 4, 'two turns shown');

    const slow = await ask(page, 'slow', EASY);
    const rs = cliRun(EASY, 'slow', { n: N, confidence: true });
    const ws = splitThinking(rs.text);
    assert.equal(slow.answer.trim(), ws.content.trim());
    assert.equal(slow.thinkingHidden, false, 'the thinking is there');
    assert.equal(slow.thinkingOpen, false, 'and folded');
    assert.equal(slow.thinking.trim(), ws.reasoning.trim());
    checkBadge('slow', slow.badge, rs.confidence.maxprob);

    const auto = await ask(page, 'auto', HARD);
    const ra = cliRun(HARD, 'auto2', { n: N });
    const t = ra.think;
    console.log(`  auto: decision "${auto.decision}"; cli: ${t.initial} (${t.initial_score}) -> ${t.final} at ${t.switch_at}`);
    assert.ok(auto.decision, 'the decision is shown');
    assert.match(auto.decision, new RegExp(`^auto chose ${t.initial} \\(difficulty ${t.initial_score.toFixed(1)}\\)`));
    if (t.switch_at !== null) assert.match(auto.decision, new RegExp(`switched to ${t.final} at token ${t.switch_at}\\b`));
    else assert.match(auto.decision, /no switch/);
    assert.ok(auto.badge.maxprob > 0 && auto.badge.maxprob <= 1, `the auto answer's badge: ${auto.badge.text}`);

    // the picture: the thinking and every score of the last answer unfolded
    await auto.msg.locator('details.thinking summary').click();
    await auto.msg.locator('details.conf summary').click();
    const shot = path.join(OUT, 'web-page.png');
    await page.screenshot({ path: shot, fullPage: true });
    console.log(`  screenshot: ${shot}`);

    const foreign = requests.filter((u) => !u.startsWith(server.origin + '/'));
    assert.deepEqual(foreign, [], 'the page asks nothing of other hosts');
    assert.deepEqual(errors, [], 'no script errors');
    await page.close();
  } finally {
    await server.stop();
  }
});

test('without --probe the page offers no auto, and says why', { timeout: 240000 }, async () => {
  const server = await startServer([]);
  try {
    const { page, errors } = await openPage(server);
    await page.locator('body[data-discovered]').waitFor();
    assert.equal(await page.locator('#status').getAttribute('class'), 'ok');
    assert.equal(await page.locator('#mode-auto').isDisabled(), true);
    assert.match(await page.locator('#mode-note').textContent(), /--probe/);
    assert.deepEqual(errors, []);
    await page.close();
  } finally {
    await server.stop();
  }
});

test('with --api-key: the page loads, asks for the key, then chats with it', { timeout: 240000 }, async () => {
  const KEY = 'kvl-web-test-key';
  const server = await startServer(['--api-key', KEY]);
  try {
    const { page, errors } = await openPage(server);
    await page.locator('body[data-discovered]').waitFor();
    assert.match(await page.locator('#status').textContent(), /API key/);
    await page.getByText('Settings and what the badges mean').click();
    await page.getByLabel('API key').fill(KEY);
    await page.getByLabel('API key').press('Tab'); // "change": the page asks the server again, with the key
    await page.locator('#status.ok').waitFor();
    // the status turns ready on /health; the name follows from /v1/models, a request later
    await page.waitForFunction(() => document.querySelector('#model-name').textContent.startsWith('\u00b7'),
      null, { timeout: 30000 });
    assert.equal(await page.locator('#model-name').textContent(), '\u00b7 ' + (await (await fetch(server.baseURL + '/models', {
      headers: { Authorization: `Bearer ${KEY}` } })).json()).data[0].id);
    const a = await ask(page, 'fast', EASY);
    assert.equal(a.answer.trim(), cliRun(EASY, 'fast', { n: N }).text.trim());
    // the only errors: the browser's notes on the 401 answers before the key was given
    assert.deepEqual(errors.filter((e) => !/status of 401/.test(e)), []);
    await page.close();
  } finally {
    await server.stop();
  }
});
