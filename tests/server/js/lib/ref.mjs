// Independent references for the client tests: the same model run by the kvlens command line (`kvlens run`,
// `kvlens embed`, `kvlens dump`), each a separate process with its own code path from text to tokens to output,
// so the server is compared with what the CLI computes for the same request, never with numbers written here.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BIN, MODEL, PROBE } from './server.mjs';

function kvlens(args, input) {
  return execFileSync(BIN, args, { input, timeout: 60000, maxBuffer: 64 << 20, encoding: 'utf8',
                                   stdio: ['pipe', 'pipe', 'pipe'] });
}

// `kvlens run --chat --json` for one user message: {text, tokens, confidence?, think?}. mode: fast | slow | auto2.
// Greedy, so each distinct call runs once (the tests ask for the same reference several times).
const runs = new Map();
export function cliRun(question, mode, { n = 400, confidence = false } = {}) {
  const key = JSON.stringify([question, mode, n, confidence]);
  if (!runs.has(key)) runs.set(key, cliRunOnce(question, mode, n, confidence));
  return runs.get(key);
}
function cliRunOnce(question, mode, n, confidence) {
  const args = ['run', '-m', MODEL, '--chat', '-p', question, '-n', String(n), '-t', '1', '--json'];
  if (mode.startsWith('auto')) args.push('--think', mode, '--probe', PROBE);
  else args.push('--think', mode);
  if (confidence) args.push('--confidence');
  return JSON.parse(kvlens(args));
}

// `kvlens run -p TEXT --json`: a raw-text continuation (no chat template), greedy.
export function cliRunRaw(text, { n = 32, confidence = false } = {}) {
  const args = ['run', '-m', MODEL, '-p', text, '-n', String(n), '-t', '1', '--json'];
  if (confidence) args.push('--confidence');
  return JSON.parse(kvlens(args));
}

// `kvlens run --messages FILE --json` for a conversation (a list of {role, content}), greedy, thinking `mode`.
export function cliRunMessages(messages, mode, { n = 400 } = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kvl-js-msgs-'));
  try {
    const file = path.join(dir, 'conv.json');
    fs.writeFileSync(file, JSON.stringify(messages));
    return JSON.parse(kvlens(['run', '-m', MODEL, '--messages', file, '-n', String(n), '-t', '1', '--json',
                              '--think', mode]));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

// Splits the text of a turn that opened with "<think>\n" into its thinking and its reply, as the API returns them.
export function splitThinking(text) {
  const at = text.indexOf('</think>');
  if (at < 0) return { reasoning: text, content: '' };
  return { reasoning: text.slice(0, at), content: text.slice(at + '</think>'.length) };
}

// `kvlens embed` of texts with its defaults (one JSON line each): an array of Float32 vectors as plain numbers.
export function cliEmbed(texts) {
  const out = kvlens(['embed', '-m', MODEL, '--input', '-', '--output-format', 'jsonl', '-o', '-', '-t', '1'],
                     texts.join('\n') + '\n');
  return out.trim().split('\n').map((l) => JSON.parse(l).embedding);
}

function readNpy(file) {
  const b = fs.readFileSync(file);
  if (b.toString('latin1', 1, 6) !== 'NUMPY') throw new Error(`${file}: not a .npy file`);
  const hlen = b.readUInt16LE(8);
  const header = b.toString('latin1', 10, 10 + hlen);
  const shape = /'shape': \(([^)]*)\)/.exec(header)[1].split(',').filter((s) => s.trim()).map(Number);
  const descr = /'descr': '([^']+)'/.exec(header)[1];
  const data = b.subarray(10 + hlen);
  const copy = new Uint8Array(data).buffer;
  const arr = descr === '<f4' ? new Float32Array(copy) : descr === '<i4' ? new Int32Array(copy) : null;
  if (!arr) throw new Error(`${file}: dtype ${descr}`);
  return { shape, data: arr };
}

// The log-softmax rows of `kvlens dump` for the prompt of `question` (chat template, thinking `mode`) followed by
// `answer` token ids: returns {promptLen, logp(i): Float64Array of the distribution that predicts answer token i}.
export function cliLogprobs(question, mode, answer) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kvl-js-dump-'));
  try {
    kvlens(['dump', '-m', MODEL, '--chat', '-p', question, '--think', mode, '-o', dir, '--no-hidden', '-t', '1']);
    const prompt = Array.from(readNpy(path.join(dir, 'tokens.npy')).data);
    kvlens(['dump', '-m', MODEL, '--tokens', prompt.concat(answer).join(','), '-o', dir, '--no-hidden', '-t', '1']);
    const { shape, data } = readNpy(path.join(dir, 'logits.npy'));
    const V = shape[1];
    const logp = (i) => {
      const row = data.subarray((prompt.length - 1 + i) * V, (prompt.length + i) * V);
      let m = -Infinity;
      for (const x of row) m = Math.max(m, x);
      let s = 0;
      for (const x of row) s += Math.exp(x - m);
      const lse = m + Math.log(s);
      return Float64Array.from(row, (x) => x - lse);
    };
    return { promptLen: prompt.length, logp };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
