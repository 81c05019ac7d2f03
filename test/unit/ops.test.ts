/**
 * The hand-written backward ops against plain-JS references, on every backend the engine offers here, with the
 * native kernels (when the addon is built) and with the backend's own: the
 * max-pool gradient (first maximum in row-major order, as PyTorch; tiling and overlapping windows, padding, ties)
 * and the convolution input gradient (strides, padding, 1×1 and k×k kernels) against tf.grad.
 */
import * as assert from 'node:assert/strict';
import { after, beforeEach, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../engine/src/graph/backend';
import type { GraphNode, PoolAttrs } from '../../engine/src/graph/graph';
import { nativeStatus, useNativeKernels } from '../../engine/src/graph/native';
import { forward, vjp } from '../../engine/src/graph/ops';
import { paramsOf, tensorsOf } from '../../engine/src/graph/param';
import { seededRandom } from '../../engine/src/lrp/random';

/** NHWC values: random, with runs of exact zeros (as after a ReLU) so that windows tie. */
function values(n: number, seed: number): Float32Array {
  const r = seededRandom(seed);
  return Float32Array.from({ length: n }, () => (r() < 0.4 ? 0 : r() * 2 - 1));
}

/** PyTorch's max-pool gradient: each window's dy goes to its first maximum (row-major), padding never wins. */
function maxPoolGradReference(
  x: Float32Array,
  [n, h, w, c]: number[],
  p: PoolAttrs,
  dy: Float32Array,
  [ho, wo]: number[],
): Float32Array {
  const dx = new Float32Array(x.length);
  const at = (b: number, i: number, j: number, k: number) => ((b * h + i) * w + j) * c + k;
  for (let b = 0; b < n; b++)
    for (let oi = 0; oi < ho; oi++)
      for (let oj = 0; oj < wo; oj++)
        for (let k = 0; k < c; k++) {
          let best = -1;
          for (let di = 0; di < p.kernel[0]; di++)
            for (let dj = 0; dj < p.kernel[1]; dj++) {
              const i = oi * p.strides[0] + di - p.pads[0][0];
              const j = oj * p.strides[1] + dj - p.pads[1][0];
              if (i < 0 || j < 0 || i >= h || j >= w) continue;
              if (best < 0 || x[at(b, i, j, k)] > x[best]) best = at(b, i, j, k);
            }
          dx[best] += dy[((b * ho + oi) * wo + oj) * c + k];
        }
  return dx;
}

function poolNode(pool: PoolAttrs): GraphNode {
  return {
    id: 'pool',
    name: 'pool',
    op: 'maxPool',
    sourceOp: 'MaxPool',
    inputs: ['x'],
    output: 'y',
    attrs: { pool },
    params: {},
  };
}

const close = (a: ArrayLike<number>, e: ArrayLike<number>, tol: number, what: string) => {
  assert.equal(a.length, e.length);
  for (let i = 0; i < e.length; i++)
    assert.ok(Math.abs(a[i] - e[i]) <= tol * (1 + Math.abs(e[i])), `${what}[${i}] = ${a[i]}, expected ${e[i]}`);
};

const kernelChoices = nativeStatus().library ? ['native', 'backend'] : ['backend'];
for (const [backend, kernels] of ['wasm', 'cpu'].flatMap((b) => kernelChoices.map((k) => [b, k]))) {
  describe(`backward ops on ${backend}, ${kernels} kernels`, () => {
    beforeEach(() => useNativeKernels(kernels === 'native'));
    after(() => useNativeKernels(true));
    const cases: [string, PoolAttrs, number[]][] = [
      [
        '2×2 stride 2 (tiling)',
        {
          kernel: [2, 2],
          strides: [2, 2],
          pads: [
            [0, 0],
            [0, 0],
          ],
        },
        [2, 8, 6, 3],
      ],
      [
        '3×3 stride 2 pad 1 (ResNet stem)',
        {
          kernel: [3, 3],
          strides: [2, 2],
          pads: [
            [1, 1],
            [1, 1],
          ],
        },
        [1, 9, 8, 4],
      ],
      [
        '3×3 stride 1 (overlapping)',
        {
          kernel: [3, 3],
          strides: [1, 1],
          pads: [
            [0, 0],
            [0, 0],
          ],
        },
        [1, 6, 7, 2],
      ],
      [
        '2×2 stride 2 with a remainder row',
        {
          kernel: [2, 2],
          strides: [2, 2],
          pads: [
            [0, 0],
            [0, 0],
          ],
        },
        [1, 7, 6, 2],
      ],
    ];
    for (const [name, pool, shape] of cases) {
      test(`max-pool gradient, ${name}`, async () => {
        await initBackend(backend);
        const [n, h, w, c] = shape;
        const ho = Math.floor((h + pool.pads[0][0] + pool.pads[0][1] - pool.kernel[0]) / pool.strides[0]) + 1;
        const wo = Math.floor((w + pool.pads[1][0] + pool.pads[1][1] - pool.kernel[1]) / pool.strides[1]) + 1;
        const xv = values(n * h * w * c, 1);
        const dyv = Float32Array.from(values(n * ho * wo * c, 2), (v) => v + 0.5);
        const dx = tf.tidy(() =>
          vjp(poolNode(pool), [tf.tensor4d(xv, [n, h, w, c])], {}, tf.tensor4d(dyv, [n, ho, wo, c]))[0].dataSync(),
        );
        close(dx, maxPoolGradReference(xv, shape, pool, dyv, [ho, wo]), 1e-6, 'dx');
      });
    }

    const convs: [string, number, number, [number, number], [[number, number], [number, number]]][] = [
      [
        '3×3 stride 1 pad 1',
        3,
        1,
        [1, 1],
        [
          [1, 1],
          [1, 1],
        ],
      ],
      [
        '3×3 stride 2 pad 1',
        3,
        2,
        [1, 1],
        [
          [1, 1],
          [1, 1],
        ],
      ],
      [
        '1×1 stride 2 (ResNet downsample)',
        1,
        2,
        [1, 1],
        [
          [0, 0],
          [0, 0],
        ],
      ],
      [
        '7×7 stride 2 pad 3',
        7,
        2,
        [1, 1],
        [
          [3, 3],
          [3, 3],
        ],
      ],
    ];
    for (const [name, k, s, dil, pads] of convs) {
      test(`convolution input gradient, ${name}, equals tf.grad`, async () => {
        await initBackend(backend);
        const [n, h, w, ci, co] = [1, 11, 10, 3, 4];
        const node: GraphNode = {
          id: 'conv',
          name: 'conv',
          op: 'conv2d',
          sourceOp: 'Conv',
          inputs: ['x'],
          output: 'y',
          attrs: { conv: { strides: [s, s], pads, dilations: dil, groups: 1 } },
          params: paramsOf({ weight: tf.tensor4d(values(k * k * ci * co, 3), [k, k, ci, co]) }),
        } as GraphNode;
        const x = tf.tensor4d(values(n * h * w * ci, 4), [n, h, w, ci]);
        const padded = (t: tf.Tensor4D) => tf.pad(t, [[0, 0], pads[0], pads[1], [0, 0]]) as tf.Tensor4D;
        const y = tf.conv2d(padded(x), node.params.weight.tensor as tf.Tensor4D, s, 'valid');
        const dy = tf.tensor4d(values(y.size, 5), y.shape as [number, number, number, number]);
        const expected = tf
          .grad((t: tf.Tensor) =>
            tf.sum(
              tf.mul(tf.conv2d(padded(t as tf.Tensor4D), node.params.weight.tensor as tf.Tensor4D, s, 'valid'), dy),
            ),
          )(x)
          .dataSync();
        close(vjp(node, [x], tensorsOf(node.params), dy)[0].dataSync(), expected, 1e-5, 'dx');
      });
    }

    // the kept indices per axis of a [2, 5, 8] input, as NumPy would index it, for each Slice or Gather
    const picks: [string, GraphNode['attrs'], number[][], number[]?][] = [
      [
        'a contiguous Slice',
        { starts: [1, 2], ends: [4, 6], axes: [1, 2], steps: [1, 1] },
        [
          [0, 1],
          [1, 2, 3],
          [2, 3, 4, 5],
        ],
      ],
      [
        'a stepped Slice (x[:, 0::2, 1::3])',
        { starts: [0, 1], ends: [5, 8], axes: [1, 2], steps: [2, 3] },
        [
          [0, 1],
          [0, 2, 4],
          [1, 4, 7],
        ],
      ],
      [
        'a Slice with a negative step',
        { starts: [-1], ends: [-9], axes: [2], steps: [-2] },
        [
          [0, 1],
          [0, 1, 2, 3, 4],
          [7, 5, 3, 1],
        ],
      ],
      [
        'a Gather of one index (a scalar index)',
        { axis: 1, indices: [3], indexShape: [] },
        [[0, 1], [3], [0, 1, 2, 3, 4, 5, 6, 7]],
        [2, 8],
      ],
      [
        'a Gather of evenly spaced indices',
        { axis: -1, indices: [1, 3, 5, 7] },
        [
          [0, 1],
          [0, 1, 2, 3, 4],
          [1, 3, 5, 7],
        ],
      ],
      [
        'a Gather with repeated, unordered and negative indices',
        { axis: 1, indices: [4, 0, -1, 2], indexShape: [2, 2] },
        [
          [0, 1],
          [4, 0, 4, 2],
          [0, 1, 2, 3, 4, 5, 6, 7],
        ],
        [2, 2, 2, 8],
      ],
    ];
    for (const [name, attrs, picked, shape] of picks) {
      test(`${name} and its gradient (repeated indices add up)`, async () => {
        await initBackend(backend);
        const xShape = [2, 5, 8];
        const xv = values(80, 7);
        const at = (i: number[]) => (i[0] * 5 + i[1]) * 8 + i[2];
        const kept: number[] = [];
        for (const i of picked[0]) for (const j of picked[1]) for (const k of picked[2]) kept.push(at([i, j, k]));
        const op = 'indices' in attrs ? 'gather' : 'slice';
        const node = { id: op, name: op, op, sourceOp: op, inputs: ['x'], output: 'y', attrs, params: {} } as GraphNode;
        const x = tf.tensor(xv, xShape);
        const y = forward(node, [x]);
        assert.deepEqual(y.shape, shape ?? picked.map((p) => p.length));
        assert.deepEqual(
          Array.from(y.dataSync()),
          kept.map((i) => xv[i]),
        );
        const dyv = values(kept.length, 8);
        const expected = new Float32Array(80);
        kept.forEach((i, k) => (expected[i] += dyv[k]));
        close(vjp(node, [x], {}, tf.tensor(dyv, y.shape))[0].dataSync(), expected, 1e-6, 'dx');
        tf.dispose([x, y]);
      });
    }

    test('the gradient of a Concat is each part of it, on any axis', async () => {
      await initBackend(backend);
      for (const axis of [0, 1, 2]) {
        const parts = [1, 2, 3].map((d, i) => {
          const shape = [2, 3, 4].map((v, a) => (a === axis ? d : v));
          return tf.tensor(
            values(
              shape.reduce((p, q) => p * q, 1),
              10 + i,
            ),
            shape,
          );
        });
        const node = {
          id: 'c',
          name: 'c',
          op: 'concat',
          sourceOp: 'Concat',
          inputs: ['a', 'b', 'c'],
          output: 'y',
          attrs: { axis },
          params: {},
        } as GraphNode;
        const dy = tf.tensor(values(forward(node, parts).size, 20), forward(node, parts).shape);
        const grads = vjp(node, parts, {}, dy);
        const expected = tf.split(dy, [1, 2, 3], axis);
        grads.forEach((g, i) => {
          assert.deepEqual(g.shape, parts[i].shape);
          assert.deepEqual(Array.from(g.dataSync()), Array.from(expected[i].dataSync()), `axis ${axis}, part ${i}`);
        });
      }
    });

    test('x² (Pow by a constant 2) and its gradient, as Pow computes them', async () => {
      await initBackend(backend);
      const x = tf.tensor1d(values(50, 30));
      const node = {
        id: 'p',
        name: 'p',
        op: 'pow',
        sourceOp: 'Pow',
        inputs: ['x'],
        output: 'y',
        attrs: {},
        params: paramsOf({ input1: tf.scalar(2) }),
      } as GraphNode;
      const params = tensorsOf(node.params);
      const dy = tf.tensor1d(values(50, 31));
      assert.deepEqual(Array.from(forward(node, [x], params).dataSync()), Array.from(tf.pow(x, 2).dataSync()));
      close(vjp(node, [x], params, dy)[0].dataSync(), tf.mul(tf.mul(x, 2), dy).dataSync(), 1e-6, 'dx');
    });
  });
}
