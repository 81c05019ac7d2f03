/**
 * The bundled engine's entry (dist/engine.js, engine/src/cli/start.ts) runs the bundle through V8's code cache: the
 * first start writes the cache into RELEVANCE_LENS_CACHE, later ones read it; a broken cache or an unwritable
 * folder only means compiling as usual. Needs `npm run build` (the test command packages the extension first).
 */
import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { createMessageConnection, StreamMessageReader, StreamMessageWriter } from 'vscode-jsonrpc/node';
import * as P from '../../protocol/engine';
import { ROOT } from '../protocol/client';

const ENGINE = path.join(ROOT, 'dist/engine.js');

/** Starts the bundled server with the cache in `cache`, asks `initialize`, and waits `linger` ms before it stops. */
async function start(cache: string, linger = 0): Promise<string> {
  const proc = spawn(process.execPath, [ENGINE, 'serve', '--stdio'], {
    env: { ...process.env, RELEVANCE_LENS_CACHE: cache },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const conn = createMessageConnection(new StreamMessageReader(proc.stdout), new StreamMessageWriter(proc.stdin));
  conn.listen();
  try {
    const init = await conn.sendRequest(P.Initialize, { backend: 'wasm' });
    await new Promise((r) => setTimeout(r, linger));
    return init.backend;
  } finally {
    conn.dispose();
    proc.kill();
    await new Promise((r) => (proc.exitCode !== null ? r(null) : proc.once('exit', r)));
  }
}

const cacheFiles = (dir: string) => (fs.existsSync(dir) ? fs.readdirSync(dir) : []);

test('the engine writes its code cache once started, starts from it, and rewrites a broken one', async () => {
  assert.ok(fs.existsSync(ENGINE), 'dist/engine.js missing: run npm run build');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rl-code-cache-'));
  const cache = path.join(dir, 'cache');
  try {
    assert.equal(await start(cache, 3000), 'wasm');
    const [file] = cacheFiles(cache);
    assert.ok(file, 'a cache was written');
    const size = fs.statSync(path.join(cache, file)).size;
    assert.ok(size > 100_000, `the cache holds compiled code (${size} bytes)`);
    // read, not written again
    const before = fs.statSync(path.join(cache, file)).mtimeMs;
    assert.equal(await start(cache, 3000), 'wasm');
    assert.equal(fs.statSync(path.join(cache, file)).mtimeMs, before, 'a good cache is left as it is');
    // V8 rejects a broken cache: the engine starts anyway and writes a good one
    fs.writeFileSync(path.join(cache, file), 'not a code cache');
    assert.equal(await start(cache, 3000), 'wasm');
    assert.ok(fs.statSync(path.join(cache, file)).size > 100_000, 'the broken cache was replaced');
    assert.deepEqual(cacheFiles(cache), [file], 'no partial files left');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('the engine starts where its code cache cannot be written', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rl-code-cache-'));
  const notADir = path.join(dir, 'file');
  fs.writeFileSync(notADir, '');
  try {
    assert.equal(await start(path.join(notADir, 'cache'), 3000), 'wasm');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
