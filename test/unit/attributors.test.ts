/**
 * Attributors (Gradient, SmoothGrad, IntegratedGradients, Occlusion) on tiny dense ONNX models whose gradients and
 * logits are computed by hand.
 */
import { after, before, describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { attribute, normalizeAttributor } from '../../engine/src/lrp/attributors';
import { runAttribution } from '../../engine/src/lrp/attribution';
import { initBackend } from '../../engine/src/graph/backend';
import { EngineError, type EngineErrorCode } from '../../engine/src/errors';
import { encodeOnnx } from '../../engine/src/io/onnx-writer';
import { loadModel, type Model } from '../../engine/src/graph/model';
import type { NdArray } from '../../engine/src/ndarray';

function closeTo(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    assert.ok(
      Math.abs(actual[i] - expected[i]) <= 1e-5 + 1e-5 * Math.abs(expected[i]),
      `${what}[${i}] = ${actual[i]}, expected ${expected[i]} ([${Array.from(actual).join(', ')}] vs [${Array.from(expected).join(', ')}])`,
    );
  }
}

async function assertRejectsWith(p: Promise<unknown>, code: EngineErrorCode, pattern: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof EngineError, `expected an EngineError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    assert.match(e.message, pattern);
    return true;
  });
}

const row = (data: number[]): NdArray => ({ shape: [1, data.length], data: Float32Array.from(data) });

// MLP: x [1, 3] → Linear(3 → 4) → ReLU → Linear(4 → 2), PyTorch layout (weights [out, in], transB = 1).
const W1 = [
  [1, -1, 0.5],
  [-0.5, 2, 1],
  [0.25, 0.5, -1],
  [2, 1, 1],
];
const b1 = [0.5, -1, 0.2, -3];
const W2 = [
  [1, -2, 0.5, 1.5],
  [-1, 1, 2, 0.25],
];
const b2 = [0.1, -0.2];

/** Hand gradient of logit t at x: Σ_j W2[t][j] · [h_j > 0] · W1[j][i]. */
function mlpGradient(x: number[], t: number): number[] {
  const h = W1.map((w, j) => w.reduce((s, wi, i) => s + wi * x[i], b1[j]));
  return x.map((_, i) => W1.reduce((s, w, j) => s + (h[j] > 0 ? W2[t][j] * w[i] : 0), 0));
}

// Linear model for Occlusion: y = x @ L + c with x [1, 4], L [4, 2] (Gemm, transB = 0).
const L = [
  [1, -1],
  [2, 0.5],
  [-3, 1],
  [0.5, 2],
];
const c = [0.25, -0.5];
const logit = (x: number[], t: number) => x.reduce((s, v, i) => s + v * L[i][t], c[t]);

let dir: string;
let mlp: Model;
let linear: Model;

before(async () => {
  await initBackend(process.env.RELEVANCE_LENS_BACKEND ?? 'cpu');
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rl-attr-'));
  const mlpFile = path.join(dir, 'mlp.onnx');
  fs.writeFileSync(
    mlpFile,
    encodeOnnx({
      input: { name: 'input', dims: [1, 3] },
      output: { name: 'output', dims: [1, 2] },
      nodes: [
        {
          name: '/fc1/Gemm',
          opType: 'Gemm',
          inputs: ['input', 'fc1.weight', 'fc1.bias'],
          outputs: ['/fc1/Gemm_output_0'],
          attributes: { transB: 1 },
        },
        { name: '/act/Relu', opType: 'Relu', inputs: ['/fc1/Gemm_output_0'], outputs: ['/act/Relu_output_0'] },
        {
          name: '/fc2/Gemm',
          opType: 'Gemm',
          inputs: ['/act/Relu_output_0', 'fc2.weight', 'fc2.bias'],
          outputs: ['output'],
          attributes: { transB: 1 },
        },
      ],
      initializers: [
        { name: 'fc1.weight', dims: [4, 3], values: W1.flat() },
        { name: 'fc1.bias', dims: [4], values: b1 },
        { name: 'fc2.weight', dims: [2, 4], values: W2.flat() },
        { name: 'fc2.bias', dims: [2], values: b2 },
      ],
    }),
  );
  mlp = await loadModel(mlpFile);
  const linFile = path.join(dir, 'linear.onnx');
  fs.writeFileSync(
    linFile,
    encodeOnnx({
      input: { name: 'input', dims: [1, 4] },
      output: { name: 'output', dims: [1, 2] },
      nodes: [{ name: '/fc/Gemm', opType: 'Gemm', inputs: ['input', 'fc.weight', 'fc.bias'], outputs: ['output'] }],
      initializers: [
        { name: 'fc.weight', dims: [4, 2], values: L.flat() },
        { name: 'fc.bias', dims: [2], values: c },
      ],
    }),
  );
  linear = await loadModel(linFile);
});

after(() => {
  mlp?.dispose();
  linear?.dispose();
  fs.rmSync(dir, { recursive: true, force: true });
});

// x = [1, 2, −1]: h = [1 − 2 − 0.5 + 0.5, −0.5 + 4 − 1 − 1, 0.25 + 1 + 1 + 0.2, 2 + 2 − 1 − 3] = [−1, 1.5, 2.45, 0]
// → units 1 and 2 are active (unit 3 sits exactly at 0, where ReLU's gradient is 0).
// ∂y_0/∂x = −2·W1[1] + 0.5·W1[2] = [1 + 0.125, −4 + 0.25, −2 − 0.5] = [1.125, −3.75, −2.5]
const x = [1, 2, -1];

describe('gradient-based attributors', () => {
  test('gradient is the hand gradient', async () => {
    closeTo(mlpGradient(x, 0), [1.125, -3.75, -2.5], 'hand gradient');
    const r = await attribute(mlp, row(x), [0], 'gradient', {}, {});
    assert.deepEqual(r.relevance.shape, [1, 3]);
    closeTo(r.relevance.data, [1.125, -3.75, -2.5], 'gradient');
    // output: y = W2·h⁺ + b2 with h⁺ = [0, 1.5, 2.45, 0] → [−3 + 1.225 + 0.1, 1.5 + 4.9 − 0.2] = [−1.675, 6.2]
    closeTo(r.output.data, [-1.675, 6.2], 'output');
  });

  test('integrated_gradients with nIter = 1 is gradient × input', async () => {
    const r = await attribute(mlp, row(x), [0], 'integrated_gradients', { nIter: 1 }, {});
    // [1.125·1, −3.75·2, −2.5·(−1)] = [1.125, −7.5, 2.5]
    closeTo(r.relevance.data, [1.125, -7.5, 2.5], 'IG n=1');
  });

  test('integrated_gradients with nIter = 2 averages the gradients at x/2 and x', async () => {
    // x' = [2, −1, 1]: h(x') = [4, −3, −0.8, 1] (units 0, 3 active), h(x'/2) = [2.25, −2, −0.3, −1] (unit 0 only),
    // so the two path points have different gradients; IG = (g(x'/2) + g(x'))/2 · x'.
    const xp = [2, -1, 1];
    const g = [
      mlpGradient(
        xp.map((v) => v / 2),
        1,
      ),
      mlpGradient(xp, 1),
    ];
    const expected = xp.map((v, i) => ((g[0][i] + g[1][i]) / 2) * v);
    assert.notDeepEqual(g[0], g[1], 'the activation pattern differs along the path');
    const r = await attribute(mlp, row(xp), [1], 'integrated_gradients', { nIter: 2 }, {});
    closeTo(r.relevance.data, expected, 'IG n=2');
  });

  test('integrated_gradients with the mean baseline: the path starts at each sample’s mean', async () => {
    // a row of 3 features is one channel of width 3: its mean is 2/3; with nIter = 1 IG is g(x) · (x − mean)
    const mean = (1 + 2 - 1) / 3;
    const r = await attribute(mlp, row(x), [0], 'integrated_gradients', { nIter: 1, baseline: 'mean' }, {});
    closeTo(
      r.relevance.data,
      [1.125, -3.75, -2.5].map((g, i) => g * (x[i] - mean)),
      'IG mean baseline',
    );
    // on a linear model IG is exact for any baseline: Σ R = f(x) − f(baseline) = Σ L[i][1] · (x_i − mean)
    const lin = [0.5, -1, 2, 3];
    const m = lin.reduce((a, v) => a + v, 0) / lin.length;
    const r2 = await attribute(linear, row(lin), [1], 'integrated_gradients', { nIter: 3, baseline: 'mean' }, {});
    closeTo(
      [r2.relevance.data.reduce((a, v) => a + v, 0)],
      [lin.reduce((a, v, i) => a + L[i][1] * (v - m), 0)],
      'IG completeness',
    );
  });

  test('integrated_gradients from a baseline read from a file: g(x) · (x − baseline), one row for every row', async () => {
    const base = [0.5, 1, 0];
    const r = await attribute(mlp, row(x), [0], 'integrated_gradients', { nIter: 1 }, { baselineInput: row(base) });
    closeTo(
      r.relevance.data,
      [1.125, -3.75, -2.5].map((g, i) => g * (x[i] - base[i])),
      'IG image baseline',
    );
    await assert.rejects(
      attribute(mlp, row(x), [0], 'integrated_gradients', { nIter: 1 }, { baselineInput: row([1, 2]) }),
      /the baseline has shape \[1,2\], the input \[1,3\]/,
    );
  });

  test('smoothgrad with nIter = 1 is the plain gradient, whatever the noise level', async () => {
    for (const noiseLevel of [0.1, 5]) {
      const r = await attribute(mlp, row(x), [0], 'smoothgrad', { nIter: 1, noiseLevel, seed: 3 }, {});
      closeTo(r.relevance.data, [1.125, -3.75, -2.5], `smoothgrad noise ${noiseLevel}`);
    }
    // with zero noise every pass is the plain gradient, and the 1/n weights sum to one
    const r = await attribute(mlp, row(x), [1], 'smoothgrad', { nIter: 3, noiseLevel: 0 }, {});
    closeTo(r.relevance.data, mlpGradient(x, 1), 'smoothgrad noise 0');
  });

  test('smoothgrad noise is reproducible with a seed and changes the result', async () => {
    const a = await attribute(mlp, row(x), [0], 'smoothgrad', { nIter: 4, noiseLevel: 1, seed: 7 }, {});
    const b = await attribute(mlp, row(x), [0], 'smoothgrad', { nIter: 4, noiseLevel: 1, seed: 7 }, {});
    assert.deepEqual(Array.from(a.relevance.data), Array.from(b.relevance.data));
    assert.notDeepEqual(Array.from(a.relevance.data), Array.from(Float32Array.from([1.125, -3.75, -2.5])));
  });
});

describe('occlusion', () => {
  const xo = [1, -2, 3, 0.5];
  // logits of the full input: y_0 = 1 − 4 − 9 + 0.25 + 0.25 = −11.5, y_1 = −1 − 1 + 3 + 1 − 0.5 = 1.5

  test('one_hot output relevance scores every window 1', async () => {
    // window 2, stride 2 over 4 features: windows [0,1] and [2,3], each scores Σ one_hot = 1
    const r = await attribute(linear, row(xo), [0], 'occlusion', { window: 2, stride: 2 }, {});
    assert.deepEqual(r.relevance.shape, [1, 4]);
    closeTo(r.relevance.data, [1, 1, 1, 1], 'one_hot');
    closeTo(r.output.data, [-11.5, 1.5], 'output');
  });

  test('fill: the occluded part takes that value (Zennit fill_fn)', async () => {
    // target 1, window 2, stride 2, fill 1: s[0,1] = logit([1, −2, 1, 1]), s[2,3] = logit([1, 1, 3, 0.5])
    const filled = (lo: number) => xo.map((v, i) => (i >= lo && i < lo + 2 ? v : 1));
    const r = await attribute(
      linear,
      row(xo),
      [1],
      'occlusion',
      { window: 2, stride: 2, fill: 1, outputRelevance: 'logit' },
      {},
    );
    const [a, b] = [logit(filled(0), 1), logit(filled(2), 1)];
    closeTo(r.relevance.data, [a, a, b, b], 'fill 1');
  });

  test("'logit' output relevance gives the logit of the input kept inside each window", async () => {
    // target 1, window 2, stride 2; outside the window the input is zeroed:
    //   s[0,1] = 1·(−1) + (−2)·0.5 − 0.5 = −2.5
    //   s[2,3] = 3·1 + 0.5·2 − 0.5 = 3.5
    const keep = (lo: number) => xo.map((v, i) => (i >= lo && i < lo + 2 ? v : 0));
    closeTo([logit(keep(0), 1), logit(keep(2), 1)], [-2.5, 3.5], 'hand scores');
    const r = await attribute(
      linear,
      row(xo),
      [1],
      'occlusion',
      { window: 2, stride: 2, outputRelevance: 'logit' },
      {},
    );
    closeTo(r.relevance.data, [-2.5, -2.5, 3.5, 3.5], 'logit');
  });

  test('overlapping and non-dividing windows wrap around as in Zennit (Zennit parity)', async () => {
    // Zennit's Occlusion slides the window to every offset in range(0, size, stride) and places it with
    // torch.roll, so windows near the end wrap around to the start:
    // (a) 4 features, window 2, stride 1: windows [0,1], [1,2], [2,3], [3,0]
    //     one_hot → every feature is covered twice: [2, 2, 2, 2]
    //     logit (target 1): s = [−2.5, 1.5, 3.5, s[3,0] = 0.5·2 + 1·(−1) − 0.5 = −0.5]
    //       → [−2.5 − 0.5, −2.5 + 1.5, 1.5 + 3.5, 3.5 − 0.5] = [−3, −1, 5, 3]
    // (b) 3 features, window 2, stride 2: offsets 0 and 2 → windows [0,1] and [2,0]: one_hot → [2, 1, 1]
    const a1 = await attribute(linear, row(xo), [0], 'occlusion', { window: 2, stride: 1 }, {});
    const a2 = await attribute(
      linear,
      row(xo),
      [1],
      'occlusion',
      { window: 2, stride: 1, outputRelevance: 'logit' },
      {},
    );
    const b = await attribute(mlp, row(x), [0], 'occlusion', { window: 2, stride: 2 }, {});
    const round = (d: Float32Array) => Array.from(d, (v) => Math.round(v * 1e4) / 1e4);
    assert.deepEqual(
      {
        overlapOneHot: round(a1.relevance.data),
        overlapLogit: round(a2.relevance.data),
        nonDividing: round(b.relevance.data),
      },
      { overlapOneHot: [2, 2, 2, 2], overlapLogit: [-3, -1, 5, 3], nonDividing: [2, 1, 1] },
    );
  });

  test('window 1: each feature gets the logit of itself alone', async () => {
    // s_i = x_i·L[i][0] + c_0 = [1.25, −3.75, −8.75, 0.5]
    const r = await attribute(
      linear,
      row(xo),
      [0],
      'occlusion',
      { window: 1, stride: 1, outputRelevance: 'logit' },
      {},
    );
    closeTo(r.relevance.data, [1.25, -3.75, -8.75, 0.5], 'window 1');
  });

  test('the default window (8) is clipped to the input: one window, the full logit everywhere', async () => {
    const r = await attribute(linear, row(xo), [0], 'occlusion', { outputRelevance: 'logit' }, {});
    closeTo(r.relevance.data, [-11.5, -11.5, -11.5, -11.5], 'default window');
  });

  test('a run with the one-hot output relevance warns that its map is flat; with the logit it does not', async () => {
    const params = { window: 2, stride: 2 };
    const flat = await runAttribution(linear, row(xo), {
      attributor: 'occlusion',
      target: [0],
      attributorParams: params,
    });
    assert.match(flat.warnings.join('\n'), /scores every window alike, so its map is flat/);
    const logit = await runAttribution(linear, row(xo), {
      attributor: 'occlusion',
      target: [0],
      attributorParams: { ...params, outputRelevance: 'logit' },
    });
    assert.deepEqual(logit.warnings, []);
  });

  test('a batch of two rows is scored per row', async () => {
    const batch: NdArray = { shape: [2, 4], data: Float32Array.from([...xo, 0, 0, 0, 1]) };
    const r = await attribute(linear, batch, [0, 1], 'occlusion', { window: 4, outputRelevance: 'logit' }, {});
    // row 0: logit_0(x) = −11.5; row 1: logit_1([0, 0, 0, 1]) = 2 − 0.5 = 1.5
    closeTo(r.relevance.data, [-11.5, -11.5, -11.5, -11.5, 1.5, 1.5, 1.5, 1.5], 'batch');
  });
});

describe('errors', () => {
  test('an out-of-range target → BAD_ARGUMENT', async () => {
    for (const attributor of ['gradient', 'occlusion', 'integrated_gradients'] as const) {
      await assertRejectsWith(
        attribute(mlp, row(x), [2], attributor, { nIter: 1 }, {}),
        'BAD_ARGUMENT',
        /target class 2 is out of range \(the model has 2 outputs\)/,
      );
    }
    await assertRejectsWith(
      attribute(mlp, row(x), [-1], 'gradient', {}, {}),
      'BAD_ARGUMENT',
      /target class -1 is out of range/,
    );
    await assertRejectsWith(attribute(mlp, row(x), [0.5], 'gradient', {}, {}), 'BAD_ARGUMENT', /target class 0.5/);
  });

  test('other bad arguments → BAD_ARGUMENT', async () => {
    await assertRejectsWith(
      attribute(mlp, row(x), [0, 1, 0], 'gradient', {}, {}),
      'BAD_ARGUMENT',
      /3 classes for a batch of 1/,
    );
    await assertRejectsWith(
      attribute(mlp, row(x), [0], 'smoothgrad', { nIter: 0 }, {}),
      'BAD_ARGUMENT',
      /positive integer, not 0/,
    );
    await assertRejectsWith(
      attribute(mlp, row(x), [0], 'gradient', { outputRelevance: 'softmax' as 'logit' }, {}),
      'BAD_ARGUMENT',
      /unknown output relevance "softmax"/,
    );
    assert.equal(normalizeAttributor('Integrated-Gradients'), 'integrated_gradients');
    assert.throws(
      () => normalizeAttributor('lime'),
      (e: unknown) => e instanceof EngineError && e.code === 'BAD_ARGUMENT',
    );
  });

  test('a wrongly shaped input → SHAPE_MISMATCH', async () => {
    await assertRejectsWith(
      attribute(mlp, row([1, 2]), [0], 'gradient', {}, {}),
      'SHAPE_MISMATCH',
      /input has shape \[1,2\]/,
    );
  });

  test('a cancelled run → CANCELLED', async () => {
    for (const attributor of ['gradient', 'smoothgrad', 'integrated_gradients', 'occlusion'] as const) {
      await assertRejectsWith(
        attribute(mlp, row(x), [0], attributor, { nIter: 2, window: 1, stride: 1 }, { isCancelled: () => true }),
        'CANCELLED',
        /cancelled/,
      );
    }
    // cancelling midway through occlusion (after the first window) also stops it
    let calls = 0;
    await assertRejectsWith(
      attribute(
        linear,
        row([1, -2, 3, 0.5]),
        [0],
        'occlusion',
        { window: 1, stride: 1 },
        { isCancelled: () => ++calls > 1 },
      ),
      'CANCELLED',
      /cancelled/,
    );
    assert.equal(calls, 2);
  });
});
