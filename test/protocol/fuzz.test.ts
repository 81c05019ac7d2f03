/**
 * Fuzzing (bounded, seeded): mutated ONNX files (bit flips, truncations, overwritten and repeated byte runs of the
 * golden models) and mutated .npy/PNG inputs, through the engine server as the extension uses it and a sample
 * through the CLI. Every one must give a result or an error a user can act on: no internal error, no request
 * longer than 10 s, no process over 1 GB; and the server must answer a valid run after each.
 */
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { ResponseError } from 'vscode-jsonrpc/node';
import { seededRandom } from '../../engine/src/lrp/random';
import * as P from '../../protocol/engine';
import { GOLDEN_DIR } from '../golden';
import { ROOT, startServer, type Session } from './client';

const MODELS = ['seed_example', 'mlp', 'resnet_mini'].map((c) => path.join(GOLDEN_DIR, c));
const MODEL_CASES = 500;
const INPUT_CASES = 200;
const CLI_CASES = 20;
const TIMEOUT_MS = 10_000;
const MAX_RSS = 2 ** 30;
const INTERNAL = -32603;

/** A mutation of `bytes`: flipped bits, a truncation, an overwritten run, or a repeated run. */
function mutate(bytes: Buffer, rand: () => number): Buffer {
  const out = Buffer.from(bytes);
  const at = () => Math.floor(rand() * out.length);
  switch (Math.floor(rand() * 4)) {
    case 0:
      for (let k = 1 + Math.floor(rand() * 8); k > 0; k--) out[at()] ^= 1 << Math.floor(rand() * 8);
      return out;
    case 1:
      return out.subarray(0, at());
    case 2: {
      const start = at();
      for (let i = start; i < Math.min(out.length, start + 1 + Math.floor(rand() * 16)); i++)
        out[i] = Math.floor(rand() * 256);
      return out;
    }
    default: {
      const start = at();
      const run = out.subarray(start, start + 1 + Math.floor(rand() * 64));
      return Buffer.concat([out.subarray(0, start), run, run, out.subarray(start)]);
    }
  }
}

let s: Session;
let dir: string;
let baseline: string;
const counts = { models: 0, inputs: 0, cli: 0, results: 0, errors: 0 };

before(async () => {
  s = startServer();
  await s.conn.sendRequest(P.Initialize, { backend: process.env.RELEVANCE_LENS_BACKEND ?? 'wasm' });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rl-fuzz-'));
  baseline = (await s.conn.sendRequest(P.OpenModel, { path: path.join(GOLDEN_DIR, 'seed_example/model.onnx') }))
    .modelId;
});

after(async () => {
  console.log(
    `fuzz: ${counts.models} mutated models and ${counts.inputs} mutated inputs through the server, ${counts.cli} ` +
      `through the CLI; ${counts.results} results, ${counts.errors} clear errors, no internal error or hang`,
  );
  await s.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** A request's outcome: its result, or its error if a user can act on it; an internal error or a hang fails. */
async function outcome<T>(what: string, request: Promise<T>): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${TIMEOUT_MS} ms`)), TIMEOUT_MS);
  });
  try {
    const result = await Promise.race([request, hang]);
    counts.results++;
    return result;
  } catch (e) {
    if (!(e instanceof ResponseError)) throw e;
    assert.notEqual(e.code, INTERNAL, `${what}: internal error: ${e.message}`);
    assert.ok(e.message.length > 0 && !e.message.includes('\n'), `${what}: a one-line error, got ${e.message}`);
    counts.errors++;
    return undefined;
  } finally {
    clearTimeout(timer);
  }
}

/** The server still answers a valid run, within bounds. */
async function stillServes(what: string) {
  const run = await outcome(
    `${what}, then a valid run`,
    s.conn.sendRequest(P.RunAttribution, {
      modelId: baseline,
      input: { path: path.join(GOLDEN_DIR, 'seed_example/input.npy') },
      composite: 'epsilon_plus_flat',
      target: [1],
    }),
  );
  assert.ok(run, `${what}: the valid run after it failed`);
  const stats = await s.conn.sendRequest(P.Stats);
  assert.ok(stats.rssBytes < MAX_RSS, `${what}: the server holds ${stats.rssBytes} bytes`);
}

test(`${MODEL_CASES} mutated ONNX models through the server`, async () => {
  const rand = seededRandom(20261127);
  for (let k = 0; k < MODEL_CASES; k++) {
    const source = MODELS[k % MODELS.length];
    const file = path.join(dir, `m${k}.onnx`);
    fs.writeFileSync(file, mutate(fs.readFileSync(path.join(source, 'model.onnx')), rand));
    const what = `model ${k} (${path.basename(source)})`;
    const info = await outcome(what, s.conn.sendRequest(P.OpenModel, { path: file }));
    if (info) {
      await outcome(
        `${what}: run`,
        s.conn.sendRequest(P.RunAttribution, {
          modelId: info.modelId,
          input: { path: path.join(source, 'input.npy') },
          composite: 'epsilon_plus_flat',
          store: info.tree.map((t) => t.id).slice(0, 2),
        }),
      );
      await s.conn.sendRequest(P.CloseModel, { modelId: info.modelId });
    }
    counts.models++;
    if (k % 25 === 24) await stillServes(what);
  }
  await stillServes('the last model');
});

test(`${INPUT_CASES} mutated .npy and PNG inputs through the server`, async () => {
  const rand = seededRandom(1127);
  const npy = fs.readFileSync(path.join(GOLDEN_DIR, 'seed_example/input.npy'));
  const png = fs.readFileSync(path.join(ROOT, 'examples/shapes/triangle.png'));
  for (let k = 0; k < INPUT_CASES; k++) {
    const [bytes, ext] = k % 2 ? [png, 'png'] : [npy, 'npy'];
    const file = path.join(dir, `i${k}.${ext}`);
    fs.writeFileSync(file, mutate(bytes, rand));
    await outcome(
      `input ${k} (.${ext})`,
      s.conn.sendRequest(P.RunAttribution, {
        modelId: baseline,
        input: { path: file },
        composite: 'epsilon_plus_flat',
      }),
    );
    counts.inputs++;
    if (k % 25 === 24) await stillServes(`input ${k}`);
  }
});

test(`${CLI_CASES} mutated models and inputs through the CLI: exit 0 or 1 with one line, never 70`, () => {
  const rand = seededRandom(7);
  for (let k = 0; k < CLI_CASES; k++) {
    const source = MODELS[k % MODELS.length];
    const model = path.join(dir, `c${k}.onnx`);
    const input = path.join(dir, `c${k}.npy`);
    const mutateModel = k % 2 === 0;
    fs.writeFileSync(
      model,
      mutateModel
        ? mutate(fs.readFileSync(path.join(source, 'model.onnx')), rand)
        : fs.readFileSync(path.join(source, 'model.onnx')),
    );
    fs.writeFileSync(
      input,
      mutateModel
        ? fs.readFileSync(path.join(source, 'input.npy'))
        : mutate(fs.readFileSync(path.join(source, 'input.npy')), rand),
    );
    const r = spawnSync(
      process.execPath,
      [
        path.join(ROOT, 'bin/relevance-lens.js'),
        'attribute',
        model,
        '--input',
        input,
        '--out',
        path.join(dir, `o${k}`),
      ],
      { encoding: 'utf8', timeout: 60_000 },
    );
    assert.ok(r.status === 0 || r.status === 1, `case ${k}: exit ${r.status}, ${r.signal ?? ''} ${r.stderr}`);
    if (r.status === 1)
      assert.equal(
        r.stderr
          .trim()
          .split('\n')
          .filter((l) => !l.includes('warning:')).length,
        1,
        r.stderr,
      );
    counts.cli++;
  }
});
