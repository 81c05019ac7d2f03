/**
 * Opening a model reads its structure, not its weights; making the weights reads them once, straight into the
 * backend's memory. Checked in a child process on a 100 MB ONNX model (a PyTorch-style Linear of 6144×4096, kept
 * [out, in] as Gemm's transB gives it), by the bytes the process read (/proc/self/io) and its peak RSS
 * (/proc/self/status after resetting it through /proc/self/clear_refs), on wasm and cpu. And a model file changed
 * on disk after opening is refused when its weights are made, not mixed in.
 */
import { after, before, describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { encodeOnnx } from '../../engine/src/io/onnx-writer';
import { initBackend } from '../../engine/src/graph/backend';
import { openModel } from '../../engine/src/graph/model';
import { modelOutput } from '../../engine/src/lrp/relevance-pass';
import { EngineError } from '../../engine/src/errors';

const ROOT = path.resolve(__dirname, '..', '..');
const [IN, HIDDEN, OUT] = [4096, 6144, 10];
const linux = fs.existsSync('/proc/self/io') && fs.existsSync('/proc/self/clear_refs');

let dir: string;
let file: string;
let w1: Float32Array;
let w2: Float32Array;

/** deterministic values in [-0.5, 0.5) */
function values(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 32 - 0.5;
  }
  return out;
}

/** y = relu(x · W1ᵀ) · W2 in float64 (W1 [out, in], W2 [in, out]) */
function expected(x: Float32Array): number[] {
  const h = new Float64Array(HIDDEN);
  for (let j = 0; j < HIDDEN; j++) {
    let acc = 0;
    for (let i = 0; i < IN; i++) acc += x[i] * w1[j * IN + i];
    h[j] = Math.max(0, acc);
  }
  return Array.from({ length: OUT }, (_, k) => h.reduce((acc, v, j) => acc + v * w2[j * OUT + k], 0));
}

before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rl-open-'));
  file = path.join(dir, 'model.onnx');
  w1 = values(HIDDEN * IN, 1);
  w2 = values(HIDDEN * OUT, 2);
  const model = encodeOnnx({
    input: { name: 'input', dims: [1, IN] },
    output: { name: 'output', dims: [1, OUT] },
    nodes: [
      { name: '/fc1/Gemm', opType: 'Gemm', inputs: ['input', 'fc1.weight'], outputs: ['h'], attributes: { transB: 1 } },
      { name: '/relu/Relu', opType: 'Relu', inputs: ['h'], outputs: ['r'] },
      { name: '/fc2/MatMul', opType: 'MatMul', inputs: ['r', 'fc2.weight'], outputs: ['output'] },
    ],
    initializers: [
      { name: 'fc1.weight', dims: [HIDDEN, IN], values: w1 },
      { name: 'fc2.weight', dims: [HIDDEN, OUT], values: w2 },
    ],
  });
  fs.writeFileSync(file, model);
});

after(() => fs.rmSync(dir, { recursive: true, force: true }));

/** What the child measured, in bytes. */
interface Measured {
  fileBytes: number;
  openRead: number;
  openRss: number;
  weightsRead: number;
  weightsPeak: number;
  output: number[];
}

const CHILD = `
const fs = require('fs');
const { initBackend } = require(${JSON.stringify(path.join(ROOT, 'engine/src/graph/backend.ts'))});
const { openModel } = require(${JSON.stringify(path.join(ROOT, 'engine/src/graph/model.ts'))});
const { modelOutput } = require(${JSON.stringify(path.join(ROOT, 'engine/src/lrp/relevance-pass.ts'))});
const read = () => Number(/rchar: (\\d+)/.exec(fs.readFileSync('/proc/self/io', 'utf8'))[1]);
const peak = () => 1024 * Number(/VmHWM:\\s+(\\d+)/.exec(fs.readFileSync('/proc/self/status', 'utf8'))[1]);
(async () => {
  const [file, backend] = process.argv.slice(1);
  await initBackend(backend);
  let r0 = read(), m0 = process.memoryUsage().rss;
  const model = await openModel(file);
  const openRead = read() - r0, openRss = process.memoryUsage().rss - m0;
  r0 = read(); m0 = process.memoryUsage().rss;
  fs.writeFileSync('/proc/self/clear_refs', '5');
  await model.loadWeights();
  const weightsRead = read() - r0, weightsPeak = peak() - m0;
  const x = new Float32Array(${IN}).map((_, i) => ((i * 7) % 13) / 13 - 0.5);
  const output = Array.from(modelOutput(model, { shape: [1, ${IN}], data: x }).data);
  console.log(JSON.stringify({ fileBytes: fs.statSync(file).size, openRead, openRss, weightsRead, weightsPeak, output }));
})();
`;

function measure(backend: string): Measured {
  const out = execFileSync(process.execPath, ['--require', 'tsx/cjs', '-e', CHILD, file, backend], {
    cwd: ROOT,
    encoding: 'utf8',
    maxBuffer: 1 << 20,
  });
  return JSON.parse(out.trim().split('\n').pop()!) as Measured;
}

describe('opening a 100 MB model', { skip: !linux && 'needs /proc (Linux)' }, () => {
  for (const backend of ['wasm', 'cpu']) {
    test(`on ${backend}: the tree without the weights, then the weights read once into one copy`, (t) => {
      const m = measure(backend);
      const mib = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;
      t.diagnostic(
        `file ${mib(m.fileBytes)}; open: read ${mib(m.openRead)}, RSS +${mib(m.openRss)}; ` +
          `weights: read ${mib(m.weightsRead)}, peak RSS +${mib(m.weightsPeak)}`,
      );
      const file = m.fileBytes;
      assert.ok(file > 100e6, `the model has ${mib(file)}`);
      assert.ok(m.openRead < 0.01 * file, `opening read ${mib(m.openRead)} of ${mib(file)}`);
      assert.ok(m.openRss < 0.1 * file, `opening grew RSS by ${mib(m.openRss)}`);
      assert.ok(
        m.weightsRead >= file * 0.99 && m.weightsRead < 1.05 * file,
        `making the weights read ${mib(m.weightsRead)} of ${mib(file)}`,
      );
      assert.ok(m.weightsPeak < 1.5 * file, `making the weights peaked at ${mib(m.weightsPeak)} over ${mib(file)}`);
      const want = expected(new Float32Array(IN).map((_, i) => ((i * 7) % 13) / 13 - 0.5));
      const scale = Math.max(...want.map(Math.abs));
      m.output.forEach((v, k) => assert.ok(Math.abs(v - want[k]) <= 1e-4 * scale, `output ${k}: ${v} vs ${want[k]}`));
    });
  }

  test('a model file changed on disk after opening is refused when its weights are made', async () => {
    await initBackend('cpu');
    const copy = path.join(dir, 'changed.onnx');
    fs.copyFileSync(file, copy);
    const model = await openModel(copy);
    try {
      // re-exported to the same path: the same inode, rewritten
      const bytes = fs.readFileSync(copy);
      fs.writeFileSync(copy, bytes.subarray(0, bytes.length - 4));
      await assert.rejects(
        model.loadWeights(),
        (e: unknown) => e instanceof EngineError && /changed on disk since it was opened/.test(e.message),
      );
      assert.throws(() => modelOutput(model, { shape: [1, IN], data: new Float32Array(IN) }), /changed on disk/);
    } finally {
      model.dispose();
    }
  });
});
