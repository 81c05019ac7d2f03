/**
 * Each LRP rule on tiny layers whose relevances are worked out by hand (Zennit semantics: stab(z) = z + ε·sign(z)
 * with sign(0) = +1, ε = 1e-6 unless given). Dense weights are [in, out] (y = x @ W + b); conv tensors are NHWC
 * with HWIO kernels.
 */
import { before, describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../engine/src/graph/backend';
import type { ConvAttrs, GraphNode } from '../../engine/src/graph/graph';
import { forward } from '../../engine/src/graph/ops';
import { paramsOf } from '../../engine/src/graph/param';
import {
  alphaBetaRule,
  applyRule,
  epsilonRule,
  flatRule,
  gammaRule,
  normRule,
  passRule,
  reluBetaSmoothRule,
  reluDeconvNetRule,
  reluGuidedBackpropRule,
  type ActiveRule as Rule,
  stabilize,
  wSquareRule,
  zBoxRule,
  zPlusRule,
} from '../../engine/src/lrp/rules';

before(async () => {
  await initBackend(process.env.RELEVANCE_LENS_BACKEND ?? 'cpu');
});

/** Element-wise |a − e| ≤ 1e-5 + 1e-5·|e|. */
function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, what = 'values'): void {
  assert.equal(actual.length, expected.length, `${what}: length ${actual.length} ≠ ${expected.length}`);
  for (let i = 0; i < expected.length; i++) {
    const tol = 1e-5 + 1e-5 * Math.abs(expected[i]);
    assert.ok(
      Math.abs(actual[i] - expected[i]) <= tol,
      `${what}[${i}] = ${actual[i]}, expected ${expected[i]} (all: [${Array.from(actual).join(', ')}] vs [${Array.from(expected).join(', ')}])`,
    );
  }
}

const sumOf = (a: ArrayLike<number>) => Array.from(a).reduce((s, v) => s + v, 0);

/** Dense node; W is given as rows of inputs: W[i][j] is the weight from input i to output j. */
function denseNode(W: number[][], b?: number[]): GraphNode {
  const params: Record<string, tf.Tensor> = { weight: tf.tensor2d(W, [W.length, W[0].length]) };
  if (b) params.bias = tf.tensor1d(b);
  return {
    id: 'fc',
    name: 'fc',
    op: 'dense',
    sourceOp: 'Gemm',
    inputs: ['x'],
    output: 'y',
    attrs: {},
    params: paramsOf(params),
  };
}

/** Relevance at the input of a dense node for one input row x and output relevance R. */
function denseRelevance(rule: Rule, node: GraphNode, x: number[], R: number[]): Float32Array {
  return tf.tidy(() => {
    const inputs = [tf.tensor2d([x])];
    const out = forward(node, inputs);
    const [rel] = applyRule(rule, node, inputs, out, tf.tensor2d([R]));
    assert.deepEqual(rel.shape, [1, x.length]);
    return rel.dataSync() as Float32Array;
  });
}

function elementwise(rule: Rule, op: GraphNode['op'], x: number[], grad: number[]): Float32Array {
  const node: GraphNode = {
    id: 'act',
    name: 'act',
    op,
    sourceOp: 'Relu',
    inputs: ['x'],
    output: 'y',
    attrs: {},
    params: {},
  };
  return tf.tidy(() => {
    const inputs = [tf.tensor1d(x)];
    return applyRule(rule, node, inputs, forward(node, inputs), tf.tensor1d(grad))[0].dataSync() as Float32Array;
  });
}

describe('stabilize', () => {
  test('adds ε·sign(z) with sign(0) = +1', () => {
    // [2, −3, 0] + 0.5·[+1, −1, +1] = [2.5, −3.5, 0.5]
    assertClose(
      tf.tidy(() => stabilize(tf.tensor1d([2, -3, 0]), 0.5).dataSync()),
      [2.5, -3.5, 0.5],
    );
    // default ε = 1e-6: a zero becomes +1e-6
    assertClose(
      tf.tidy(() => stabilize(tf.tensor1d([0, -1])).dataSync()),
      [1e-6, -1.000001],
    );
  });
});

describe('Epsilon', () => {
  // x = [2, −1], W = [[3], [4]], b = [1]: z = 2·3 + (−1)·4 + 1 = 3
  const x = [2, -1];
  const W = [[3], [4]];

  test('R_i = x_i·w_i / stab(z) · R, bias share is lost', () => {
    const node = denseNode(W, [1]);
    const rel = denseRelevance(epsilonRule(), node, x, [1]);
    // R_0 = 6 / (3 + 1e-6) = 1.9999993, R_1 = −4 / (3 + 1e-6) = −1.3333329
    assertClose(rel, [6 / 3.000001, -4 / 3.000001]);
    // Conservation fails by the bias' share: ΣR = (z − b)/z · R = 2/3
    assertClose([sumOf(rel)], [2 / 3]);
  });

  test('a large ε damps the relevance', () => {
    // ε = 0.25: stab(3) = 3.25 → R = [6/3.25, −4/3.25] = [1.8461538, −1.2307692]
    const rel = denseRelevance(epsilonRule(0.25), denseNode(W, [1]), x, [1]);
    assertClose(rel, [6 / 3.25, -4 / 3.25]);
  });

  test('negative and zero outputs: the stabiliser follows the sign, zero counts as positive', () => {
    // x = [1, 1], W = [[1, 2], [−1, 3]], no bias: z = [0, 5]; R = [1, 1]; ε = 0.5
    // stab(0) = +0.5 (sign(0) = +1), stab(5) = 5.5
    // R_0 = 1·1/0.5 + 1·2/5.5 = 2.3636364,   R_1 = 1·(−1)/0.5 + 1·3/5.5 = −1.4545455
    const rel = denseRelevance(
      epsilonRule(0.5),
      denseNode([
        [1, 2],
        [-1, 3],
      ]),
      [1, 1],
      [1, 1],
    );
    assertClose(rel, [2 + 2 / 5.5, -2 + 3 / 5.5]);
    // z = −3 < 0: x = [1, −2], W = [[1], [2]], R = 2, ε = 0.25 → stab = −3.25
    // R_0 = 1·1·2/−3.25 = −0.6153846,  R_1 = (−2)·2·2/−3.25 = 2.4615385
    const neg = denseRelevance(epsilonRule(0.25), denseNode([[1], [2]]), [1, -2], [2]);
    assertClose(neg, [2 / -3.25, 8 / 3.25]);
  });

  test("zeroParams ['bias'] drops the bias from z and restores conservation", () => {
    // z without bias = 2 → R = [6/2, −4/2] = [3, −2], ΣR = 1 = R
    const rel = denseRelevance(epsilonRule(1e-6, { zeroParams: ['bias'] }), denseNode(W, [1]), x, [1]);
    assertClose(rel, [6 / 2.000001, -4 / 2.000001]);
    assertClose([sumOf(rel)], [1]);
  });
});

// Shared data for the sign-splitting rules:
// x = [2, −1, 3, −2], W = [[1], [−2], [−1], [0.5]], b = [0.5]
// x⁺ = [2, 0, 3, 0], x⁻ = [0, −1, 0, −2], w⁺ = [1, 0, 0, 0.5], w⁻ = [0, −2, −1, 0]
// x⁺·w⁺ = 2, x⁻·w⁻ = 2, x⁺·w⁻ = −3, x⁻·w⁺ = −1
const sx = [2, -1, 3, -2];
const sW = [[1], [-2], [-1], [0.5]];

describe('ZPlus', () => {
  test('positive part keeps the positive bias, the negative part has its bias zeroed', () => {
    // z⁺ = x⁺·w⁺ + b⁺ = 2 + 0.5 = 2.5, z⁻ = x⁻·w⁻ (bias zeroed) = 2 → denominator 4.5
    // R = [2·1, (−1)(−2), 0, 0] / 4.5 = [0.444444, 0.444444, 0, 0]
    const rel = denseRelevance(zPlusRule(), denseNode(sW, [0.5]), sx, [1]);
    assertClose(rel, [2 / 4.5, 2 / 4.5, 0, 0]);
  });

  test('a negative bias is dropped from both terms', () => {
    // b = −0.5: b⁺ = 0 in the positive term, zeroed in the negative one → denominator 2 + 2 = 4
    const rel = denseRelevance(zPlusRule(), denseNode(sW, [-0.5]), sx, [1]);
    assertClose(rel, [0.5, 0.5, 0, 0]);
    assertClose([sumOf(rel)], [1]);
  });
});

describe('AlphaBeta', () => {
  test('alpha = 2, beta = 1', () => {
    // positive: z0 = x⁺·w⁺ + b⁺ = 2.5, z1 = x⁻·w⁻ = 2 → zp = 4.5
    // negative: z2 = x⁺·w⁻ + b⁻ = −3 + 0, z3 = x⁻·w⁺ = −1 → zn = −4
    // R_0 = 2·(2·1)/4.5 = 0.888889          R_1 = 2·((−1)(−2))/4.5 = 0.888889
    // R_2 = −1·(3·(−1))/(−4) = −0.75        R_3 = −1·((−2)·0.5)/(−4) = −0.25
    const rel = denseRelevance(alphaBetaRule(2, 1), denseNode(sW, [0.5]), sx, [1]);
    assertClose(rel, [4 / 4.5, 4 / 4.5, -0.75, -0.25]);
    // ΣR = 2·(4/4.5) − 1·(4/4) = 0.777778
    assertClose([sumOf(rel)], [8 / 4.5 - 1]);
  });

  test('a negative bias belongs to the negative term only', () => {
    // b = −0.5: z0 = 2 + b⁺ (0) = 2, z1 = 2 → zp = 4; z2 = −3 + b⁻ (−0.5) = −3.5, z3 = −1 → zn = −4.5
    // R = [2·2/4, 2·2/4, −(−3)/(−4.5), −(−1)/(−4.5)] = [1, 1, −0.666667, −0.222222]
    const rel = denseRelevance(alphaBetaRule(2, 1), denseNode(sW, [-0.5]), sx, [1]);
    assertClose(rel, [1, 1, -3 / 4.5, -1 / 4.5]);
  });

  test('alpha = 1, beta = 0 is ZPlus', () => {
    const node = denseNode(sW, [0.5]);
    assertClose(denseRelevance(alphaBetaRule(1, 0), node, sx, [1]), denseRelevance(zPlusRule(), node, sx, [1]));
  });

  test('constructor rejects alpha − beta ≠ 1 and negative parameters', () => {
    assert.throws(() => alphaBetaRule(2, 2), /alpha − beta must equal 1/);
    assert.throws(() => alphaBetaRule(1, 1), /alpha − beta must equal 1/);
    assert.throws(() => alphaBetaRule(0.5, -0.5), /non-negative/);
    assert.doesNotThrow(() => alphaBetaRule(3, 2));
  });
});

describe('Gamma', () => {
  /** Plain-JS generalised Gamma for one dense layer (rows of W are inputs). */
  function gammaReference(x: number[], W: number[][], b: number[], R: number[], gamma: number, eps = 1e-6): number[] {
    const pos = (v: number) => Math.max(v, 0);
    const neg = (v: number) => Math.min(v, 0);
    const up = (w: number) => w + gamma * pos(w); // GammaMod(min = 0): p + γ·clamp(p, min=0)
    const down = (w: number) => w + gamma * neg(w); // GammaMod(max = 0): p + γ·clamp(p, max=0)
    const stab = (z: number) => z + eps * (z >= 0 ? 1 : -1);
    const out = new Array(x.length).fill(0);
    for (let j = 0; j < b.length; j++) {
      const z = x.reduce((s, xi, i) => s + xi * W[i][j], b[j]);
      if (z === 0) continue;
      // positive output: (x⁺, up(w), bias up(b)) + (x⁻, down(w), no bias)
      // negative output: (x⁺, down(w), bias down(b)) + (x⁻, up(w), no bias)
      const [fp, fn, bias] = z > 0 ? [up, down, up(b[j])] : [down, up, down(b[j])];
      const num = x.map((xi, i) => pos(xi) * fp(W[i][j]) + neg(xi) * fn(W[i][j]));
      const den = stab(num.reduce((s, v) => s + v, bias));
      num.forEach((v, i) => (out[i] += (v / den) * R[j]));
    }
    return out;
  }

  test('hand-computed: a positive, a negative and a zero output', () => {
    // x = [2, −1], γ = 0.25, columns: w0 = [2, 1] b0 = 0.5; w1 = [−2, 1] b1 = −1; w2 = [1, 2] b2 = 0
    // z = [4 − 1 + 0.5, −4 − 1 − 1, 2 − 2] = [3.5, −6, 0]
    // output 0 (positive): x⁺·up(w0) = 2·2.5 = 5 on input 0; x⁻·down(w0) = −1·1 = −1 on input 1;
    //   den = 5 − 1 + up(0.5) = 4 + 0.625 = 4.625
    // output 1 (negative): x⁺·down(w1) = 2·(−2.5) = −5 on input 0; x⁻·up(w1) = −1·1.25 = −1.25 on input 1;
    //   den = −5 − 1.25 + down(−1) = −6.25 − 1.25 = −7.5
    // output 2 has z = 0: no relevance flows, whatever R_2 is.
    // R_out = [1, 2, 5]: R_0 = 5/4.625 + 2·(−5/−7.5) = 1.0810811 + 1.3333333 = 2.4144144
    //                    R_1 = −1/4.625 + 2·(−1.25/−7.5) = −0.2162162 + 0.3333333 = 0.1171171
    const W = [
      [2, -2, 1],
      [1, 1, 2],
    ];
    const b = [0.5, -1, 0];
    const rel = denseRelevance(gammaRule(0.25), denseNode(W, b), [2, -1], [1, 2, 5]);
    assertClose(rel, [5 / 4.625 + (2 * 5) / 7.5, -1 / 4.625 + (2 * 1.25) / 7.5]);
    assertClose(rel, gammaReference([2, -1], W, b, [1, 2, 5], 0.25));
  });

  const layer4x3 = {
    W: [
      [0.5, -1.2, 0.3],
      [-0.8, 0.4, 1.1],
      [1.5, -0.6, -0.9],
      [-0.2, 0.9, 0.7],
    ],
    b: [0.3, -0.5, 0.2],
    R: [1.5, -0.5, 2],
  };

  test('matches the JS reference on a 4-in/3-out layer with mixed signs', () => {
    const x = [0.7, -1.3, 2.1, -0.4];
    const { W, b, R } = layer4x3;
    for (const gamma of [0, 0.25, 1]) {
      assertClose(
        denseRelevance(gammaRule(gamma), denseNode(W, b), x, R),
        gammaReference(x, W, b, R, gamma),
        `gamma ${gamma}`,
      );
    }
  });

  test('after a ReLU (inputs ≥ 0) the vanishing terms are skipped: same relevance, fewer matrix products', async () => {
    const { W, b, R } = layer4x3;
    const matMuls = async (x: number[]) => {
      const info = await tf.profile(() => {
        denseRelevance(gammaRule(0.25), denseNode(W, b), x, R);
      });
      return info.kernels.filter((k) => /MatMul/.test(k.name)).length;
    };
    const x = [0.7, 0, 2.1, 0.4];
    assertClose(denseRelevance(gammaRule(0.25), denseNode(W, b), x, R), gammaReference(x, W, b, R, 0.25));
    // the forward pass, then for mixed signs 4 modified forwards + 4 input gradients (the 5th term is the forward
    // pass's own output); for non-negative inputs the two negative-input terms vanish, and the two left are
    // combined from the forward pass's output and one product with W⁺ (W + γW⁺ and (1 + γ)W − γW⁺): 1 + 2
    assert.equal(await matMuls([0.7, -1.3, 2.1, -0.4]), 1 + 8);
    assert.equal(await matMuls(x), 1 + 1 + 2);
  });
});

describe('ZBox', () => {
  // x = [1, −0.5], W = [[2], [−1]], b = [0.3]: z = 2 + 0.5 + 0.3 = 2.8
  const x = [1, -0.5];
  const W = [[2], [-1]];

  test('scalar bounds', () => {
    // low = −1, high = 2: zl = low·w⁺ + b⁺ = −2 + 0.3 = −1.7, zh = high·w⁻ + b⁻ = −2 + 0 = −2
    // den = z − zl − zh = 2.8 + 1.7 + 2 = 6.5 (the bias cancels: 0.3 − 0.3 − 0)
    // R_0 = (1·2 − (−1)·2 − 2·0)/6.5 = 4/6.5,  R_1 = ((−0.5)(−1) − (−1)·0 − 2·(−1))/6.5 = 2.5/6.5
    const rel = denseRelevance(zBoxRule(-1, 2), denseNode(W, [0.3]), x, [1]);
    assertClose(rel, [4 / 6.5, 2.5 / 6.5]);
    assertClose([sumOf(rel)], [1]);
  });

  test('per-element tensor bounds', () => {
    // low = [−1, −3], high = [2, 1]: zl = −1·2 + (−3)·0 + 0.3 = −1.7, zh = 2·0 + 1·(−1) = −1 → den = 5.5
    // R_0 = (2 + 2 − 0)/5.5 = 4/5.5,  R_1 = (0.5 − 0 + 1)/5.5 = 1.5/5.5
    const low = tf.tensor2d([[-1, -3]]);
    const high = tf.tensor2d([[2, 1]]);
    const rel = denseRelevance(zBoxRule(low, high), denseNode(W, [0.3]), x, [1]);
    assertClose(rel, [4 / 5.5, 1.5 / 5.5]);
  });
});

function convNode(
  kernel: number[],
  shape: [number, number, number, number],
  attrs: Partial<ConvAttrs> = {},
  bias?: number[],
): GraphNode {
  const params: Record<string, tf.Tensor> = { weight: tf.tensor4d(kernel, shape) };
  if (bias) params.bias = tf.tensor1d(bias);
  const conv: ConvAttrs = {
    strides: [1, 1],
    pads: [
      [0, 0],
      [0, 0],
    ],
    dilations: [1, 1],
    groups: 1,
    ...attrs,
  };
  return {
    id: 'conv',
    name: 'conv',
    op: 'conv2d',
    sourceOp: 'Conv',
    inputs: ['x'],
    output: 'y',
    attrs: { conv },
    params: paramsOf(params),
  };
}

function convRelevance(
  rule: Rule,
  node: GraphNode,
  x: number[],
  xShape: number[],
  R: number[],
): { shape: number[]; data: Float32Array } {
  return tf.tidy(() => {
    const inputs = [tf.tensor(x, xShape)];
    const out = forward(node, inputs);
    const [rel] = applyRule(rule, node, inputs, out, tf.tensor(R, out.shape));
    return { shape: rel.shape, data: rel.dataSync() as Float32Array };
  });
}

describe('Flat', () => {
  test('dense: relevance spread uniformly over all inputs, weights, inputs and bias ignored', () => {
    // Flat replaces x and W by ones and zeroes the bias: each output's R is split in 3 equal parts.
    // R_i = (1 + 2)/3 = 1 for every input
    const rel = denseRelevance(
      flatRule(),
      denseNode(
        [
          [5, -1],
          [0.1, 2],
          [-3, 4],
        ],
        [7, -2],
      ),
      [3, -7, 0.5],
      [1, 2],
    );
    assertClose(
      rel,
      [1, 1, 1].map((v) => (v * 3) / 3.000001),
    );
  });

  test('conv: each output spreads R/4 over its 2×2 receptive field', () => {
    // 3×3 input, 2×2 kernel, stride 1 → 2×2 output with R = [[1, 2], [3, 4]]
    // pixel (r, c) gets Σ R/4 of the outputs whose window covers it:
    //  [[1/4, (1+2)/4, 2/4], [(1+3)/4, 10/4, (2+4)/4], [3/4, (3+4)/4, 4/4]]
    const node = convNode([0.5, -2, 3, 1], [2, 2, 1, 1], {}, [9]);
    const rel = convRelevance(flatRule(), node, [1, -2, 3, 4, -5, 6, 7, 8, -9], [1, 3, 3, 1], [1, 2, 3, 4]);
    assert.deepEqual(rel.shape, [1, 3, 3, 1]);
    assertClose(rel.data, [0.25, 0.75, 0.5, 1, 2.5, 1.5, 0.75, 1.75, 1]);
  });
});

describe('WSquare', () => {
  // W = [[1, −2], [2, 1], [−1, 0]]: w² columns [1, 4, 1] (Σ 6) and [4, 1, 0] (Σ 5)
  const W = [
    [1, -2],
    [2, 1],
    [-1, 0],
  ];

  test('R_i = Σ_j w_ij² / Σ_k w_kj² · R_j, independent of x', () => {
    // R_out = [6, 10]: R = [6·1/6 + 10·4/5, 6·4/6 + 10·1/5, 6·1/6 + 0] = [9, 6, 1]
    const rel = denseRelevance(wSquareRule(), denseNode(W), [123, -4, 0.01], [6, 10]);
    assertClose(rel, [9, 6, 1]);
  });

  test('as in Zennit, the squared bias joins the denominator', () => {
    // b = [2, 0]: column 0 denominator 6 + 2² = 10 → [0.6, 2.4, 0.6] + column 1 [8, 2, 0] = [8.6, 4.4, 0.6]
    const rel = denseRelevance(wSquareRule(), denseNode(W, [2, 0]), [1, 1, 1], [6, 10]);
    assertClose(rel, [8.6, 4.4, 0.6]);
  });
});

describe('Norm', () => {
  const addNode: GraphNode = {
    id: 'add',
    name: 'add',
    op: 'add',
    sourceOp: 'Add',
    inputs: ['a', 'b'],
    output: 'y',
    attrs: {},
    params: {},
  };
  function addRelevance(rule: Rule, a: number[], b: number[], R: number[]): number[][] {
    return tf.tidy(() => {
      const inputs = [tf.tensor2d([a]), tf.tensor2d([b])];
      return applyRule(rule, addNode, inputs, forward(addNode, inputs), tf.tensor2d([R])).map((t) =>
        Array.from(t.dataSync()),
      );
    });
  }

  test('R_a = a·R/stab(a + b), R_b = b·R/stab(a + b)', () => {
    // a = [1, −2, 3], b = [3, 1, −1]: a + b = [4, −1, 2]; R = [2, 3, 5]
    // R_a = [1·2/4, −2·3/−1, 3·5/2] = [0.5, 6, 7.5]; R_b = [3·2/4, 1·3/−1, −1·5/2] = [1.5, −3, −2.5]
    const [ra, rb] = addRelevance(normRule(), [1, -2, 3], [3, 1, -1], [2, 3, 5]);
    assertClose(ra, [0.5, 6, 7.5]);
    assertClose(rb, [1.5, -3, -2.5]);
    // conservative per element
    assertClose(
      ra.map((v, i) => v + rb[i]),
      [2, 3, 5],
    );
  });

  test('the stabiliser option', () => {
    // stabilizer 0.5: stab([4, −1, 2]) = [4.5, −1.5, 2.5]
    // R_a = [2/4.5, −6/−1.5, 15/2.5] = [0.444444, 4, 6]; R_b = [6/4.5, 3/−1.5, −5/2.5] = [1.333333, −2, −2]
    const [ra, rb] = addRelevance(normRule({ stabilizer: 0.5 }), [1, -2, 3], [3, 1, -1], [2, 3, 5]);
    assertClose(ra, [2 / 4.5, 4, 6]);
    assertClose(rb, [6 / 4.5, -2, -2]);
  });
});

describe('elementwise ReLU rules', () => {
  const x = [-1, 2, 0, 3, 1];
  const grad = [3, -4, 5, 6, -0.5];

  test('plain gradient (no rule) for reference: grad·(x > 0)', () => {
    const node: GraphNode = {
      id: 'r',
      name: 'r',
      op: 'relu',
      sourceOp: 'Relu',
      inputs: ['x'],
      output: 'y',
      attrs: {},
      params: {},
    };
    const [g] = tf.tidy(() => {
      const inputs = [tf.tensor1d(x)];
      // An ElementwiseRule whose backward returns the ordinary gradient
      const ordinary: Rule = { kind: 'elementwise', name: 'Gradient', backward: (_x, _y, _g, o) => o() };
      return applyRule(ordinary, node, inputs, forward(node, inputs), tf.tensor1d(grad)).map((t) =>
        Array.from(t.dataSync()),
      );
    });
    assertClose(g, [0, -4, 0, 6, -0.5]);
  });

  test('Pass returns the incoming relevance unchanged', () => {
    assertClose(elementwise(passRule(), 'relu', x, grad), [3, -4, 5, 6, -0.5]);
  });

  test('DeconvNet: relu of the incoming gradient, whatever x is', () => {
    assertClose(elementwise(reluDeconvNetRule(), 'relu', x, grad), [3, 0, 5, 6, 0]);
  });

  test('GuidedBackprop: grad·(x > 0)·(grad > 0)', () => {
    // x = [−1, 2, 0, 3, 1], grad = [3, −4, 5, 6, −0.5] → [0 (x<0), 0 (grad<0), 0 (x=0), 6, 0 (grad<0)]
    assertClose(elementwise(reluGuidedBackpropRule(), 'relu', x, grad), [0, 0, 0, 6, 0]);
  });

  test('BetaSmooth: grad·sigmoid(β·x)', () => {
    // β = 2, x = [−1, 0, 1.5], grad = [2, 3, −1]
    // sigmoid([−2, 0, 3]) = [0.1192029, 0.5, 0.9525741] → [0.2384058, 1.5, −0.9525741]
    const sig = (v: number) => 1 / (1 + Math.exp(-v));
    assertClose(elementwise(reluBetaSmoothRule(2), 'relu', [-1, 0, 1.5], [2, 3, -1]), [2 * sig(-2), 1.5, -sig(3)]);
    // default β = 10: x = 0.1 → sigmoid(1) = 0.7310586
    assertClose(elementwise(reluBetaSmoothRule(), 'relu', [0.1], [1]), [sig(1)]);
  });
});

describe('Epsilon on conv2d against a plain-JS loop', () => {
  /**
   * LRP-ε for a single-image NHWC convolution with HWIO kernel: z_o = Σ x·w + b, R_p = Σ_o x_p·w·R_o/stab(z_o).
   */
  function epsilonConvReference(
    x: number[],
    [H, W, C]: [number, number, number],
    k: number[],
    [KH, KW, , O]: [number, number, number, number],
    bias: number[],
    R: number[],
    stride: [number, number],
    pads: [[number, number], [number, number]],
    eps: number,
  ): number[] {
    const OH = Math.floor((H + pads[0][0] + pads[0][1] - KH) / stride[0]) + 1;
    const OW = Math.floor((W + pads[1][0] + pads[1][1] - KW) / stride[1]) + 1;
    const xi = (r: number, c: number, ch: number) => (r * W + c) * C + ch;
    const ki = (i: number, j: number, ch: number, o: number) => ((i * KW + j) * C + ch) * O + o;
    const taps = (oy: number, ox: number, f: (r: number, c: number, i: number, j: number) => void) => {
      for (let i = 0; i < KH; i++) {
        for (let j = 0; j < KW; j++) {
          const r = oy * stride[0] + i - pads[0][0];
          const c = ox * stride[1] + j - pads[1][0];
          if (r >= 0 && r < H && c >= 0 && c < W) f(r, c, i, j);
        }
      }
    };
    const rel = new Array(H * W * C).fill(0);
    for (let oy = 0; oy < OH; oy++) {
      for (let ox = 0; ox < OW; ox++) {
        for (let o = 0; o < O; o++) {
          let z = bias[o];
          taps(oy, ox, (r, c, i, j) => {
            for (let ch = 0; ch < C; ch++) z += x[xi(r, c, ch)] * k[ki(i, j, ch, o)];
          });
          const s = (R[(oy * OW + ox) * O + o] ?? NaN) / (z + eps * (z >= 0 ? 1 : -1));
          taps(oy, ox, (r, c, i, j) => {
            for (let ch = 0; ch < C; ch++) rel[xi(r, c, ch)] += x[xi(r, c, ch)] * k[ki(i, j, ch, o)] * s;
          });
        }
      }
    }
    return rel;
  }

  const x = [1, -2, 3, 0.5, 4, -1, 2, 1.5, -3];
  // HWIO [2, 2, 1, 2]: two filters
  const kernel = [0.5, -1, 1, 0.25, -0.5, 2, 1.5, -0.75];
  const bias = [0.1, -0.2];

  test('1×3×3×1 input, 2×2 kernel, stride 1', () => {
    const node = convNode(kernel, [2, 2, 1, 2], {}, bias);
    const R = [1, -2, 0.5, 3, 2, 1, -1, 0.25]; // 2×2×2 output
    const rel = convRelevance(epsilonRule(0.01), node, x, [1, 3, 3, 1], R);
    assert.deepEqual(rel.shape, [1, 3, 3, 1]);
    const expected = epsilonConvReference(
      x,
      [3, 3, 1],
      kernel,
      [2, 2, 1, 2],
      bias,
      R,
      [1, 1],
      [
        [0, 0],
        [0, 0],
      ],
      0.01,
    );
    assertClose(rel.data, expected);
    // the reference is not trivially zero
    assert.ok(expected.some((v) => Math.abs(v) > 0.5));
  });

  test('stride 2 with padding 1 (input gradient crops and pads)', () => {
    const node = convNode(
      kernel,
      [2, 2, 1, 2],
      {
        strides: [2, 2],
        pads: [
          [1, 0],
          [0, 1],
        ],
      },
      bias,
    );
    // out: floor((3 + 1 − 2)/2) + 1 = 2 rows, floor((3 + 1 − 2)/2) + 1 = 2 cols
    const R = [1, 2, -1, 0.5, 3, -2, 1, 1];
    const rel = convRelevance(epsilonRule(), node, x, [1, 3, 3, 1], R);
    assertClose(
      rel.data,
      epsilonConvReference(
        x,
        [3, 3, 1],
        kernel,
        [2, 2, 1, 2],
        bias,
        R,
        [2, 2],
        [
          [1, 0],
          [0, 1],
        ],
        1e-6,
      ),
    );
  });

  test('stride 2 without padding leaves uncovered pixels at zero', () => {
    // 3×3 input, 2×2 kernel, stride 2 → a single window over rows/cols 0–1; row 2 and col 2 get nothing
    const node = convNode(kernel, [2, 2, 1, 2], { strides: [2, 2] }, bias);
    const rel = convRelevance(epsilonRule(), node, x, [1, 3, 3, 1], [1, 1]);
    const expected = epsilonConvReference(
      x,
      [3, 3, 1],
      kernel,
      [2, 2, 1, 2],
      bias,
      [1, 1],
      [2, 2],
      [
        [0, 0],
        [0, 0],
      ],
      1e-6,
    );
    assertClose(rel.data, expected);
    assertClose(
      [2, 5, 6, 7, 8].map((i) => rel.data[i]),
      [0, 0, 0, 0, 0],
    );
  });
});
