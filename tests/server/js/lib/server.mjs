// Starting and stopping the real `kvlens serve` for the client tests: on 127.0.0.1, port 0 (the server picks a
// free port and prints "listening on http://HOST:PORT" on stderr), bounded in time, killed at the end.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const SRC = process.env.KVL_SRC || path.resolve(here, '../../../..');
export const BIN = process.env.KVL_BIN || path.join(SRC, 'build/kvlens');
export const MODEL = process.env.KVL_SERVE_MODEL || path.join(SRC, 'models/kvlens-think-2-q8_0.gguf');
export const PROBE = path.join(SRC, 'models/kvlens-think-2-probe.bin');

const live = new Set();
process.on('exit', () => { for (const c of live) c.kill('SIGKILL'); });
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => { for (const c of live) c.kill('SIGKILL'); process.exit(1); });
}

// Starts `kvlens serve -m MODEL --host 127.0.0.1 --port 0 ...args`; resolves to {url, origin, stop, stderr()} once
// the server says where it listens, rejects (with its stderr) if it exits first or says nothing in startMs.
export function startServer(args = [], { startMs = 60000 } = {}) {
  // one thread: the model is tiny and the machine is shared (two OpenMP threads on two busy cores wait on each other)
  const argv = ['serve', '-m', MODEL, '--host', '127.0.0.1', '--port', '0', '-t', '1', ...args];
  const child = spawn(BIN, argv, { stdio: ['ignore', 'ignore', 'pipe'] });
  live.add(child);
  let err = '';
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => {
    live.delete(child);
    resolve({ code, signal });
  }));
  const stop = async (ms = 15000) => {
    if (child.exitCode !== null || child.signalCode !== null) return exited;
    child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), ms);
    const r = await exited;
    clearTimeout(t);
    return r;
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`kvlens serve said nothing about listening in ${startMs} ms; stderr:\n${err.slice(-2000)}`));
    }, startMs);
    child.on('error', (e) => { clearTimeout(timer); reject(e); });
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`kvlens serve ${argv.join(' ')} exited (${code ?? signal}) before listening; stderr:\n${err.slice(-2000)}`));
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (s) => {
      err += s;
      const m = /listening on (http:\/\/[^\s/]+)/.exec(err);
      if (m && timer) {
        clearTimeout(timer);
        const origin = m[1];
        resolve({ origin, url: origin + '/', baseURL: origin + '/v1', stop, stderr: () => err, child });
      }
    });
  });
}
