/**
 * The native kernels (engine/native, oneDNN) against the backends' own: convolutions in every geometry the
 * loaders produce (strides, dilations, asymmetric padding, groups, depthwise, bias, batches), their input
 * gradients, dense layers, and the rules' stabilised division (bit for bit); the same convolutions channels-first
 * (NCHW) against the channels-last results; the max-pool input gradient in both layouts against PyTorch's rule
 * (ties, overlapping windows, ceil-mode windows over the edge); kept kernel layouts; bad arguments.
 * CI sets RELEVANCE_LENS_REQUIRE_NATIVE=1, so a missing addon fails there instead of skipping.
 */
import * as assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../engine/src/graph/backend';
import type { ConvAttrs, GraphNode, PoolAttrs } from '../../engine/src/graph/graph';
import {
  kernelsReport,
  type LayoutConvAttrs,
  type LayoutPoolAttrs,
  nativeCombine,
  nativeConv2d,
  nativeConv2dInputGrad,
  nativeMaxPoolBackward,
  nativeStatus,
  nativeSum,
  releasePrepared,
  retainPrepared,
  useNativeKernels,
} from '../../engine/src/graph/native';
import { forward, vjp } from '../../engine/src/graph/ops';
import { paramsOf, tensorsOf } from '../../engine/src/graph/param';
import { seededRandom } from '../../engine/src/lrp/random';
import { divideStabilized } from '../../engine/src/lrp/rules';

const loaded = nativeStatus().library !== undefined;
const skip = loaded ? false : `native addon not loaded: ${nativeStatus().reason}`;

test(
  'the native addon is built and loads where CI requires it',
  { skip: process.env.RELEVANCE_LENS_REQUIRE_NATIVE === '1' ? false : 'RELEVANCE_LENS_REQUIRE_NATIVE is not set' },
  async () => {
    assert.ok(loaded, `native kernels required but: ${nativeStatus().reason}`);
    await initBackend('wasm');
    useNativeKernels(true);
    assert.match(kernelsReport(), /^native \(oneDNN \d+\.\d+\.\d+, \d+ threads?\)$/);
  },
);

function values(n: number, seed: number): Float32Array {
  const r = seededRandom(seed);
  return Float32Array.from({ length: n }, () => r() * 2 - 1);
}

/** The same computation with the native kernels and with the backend's, as plain arrays. */
function both(run: () => tf.Tensor | tf.Tensor[]): { native: Float32Array[]; backend: Float32Array[] } {
  const collect = () => tf.tidy(() => [run()].flat().map((t) => t.dataSync() as Float32Array));
  useNativeKernels(true);
  const native = collect();
  useNativeKernels(false);
  const backend = collect();
  useNativeKernels(true);
  return { native, backend };
}

/** Equal up to float32 summation order: |a − e| ≤ 1e-5 · max|e| per tensor. */
function assertClose(actual: Float32Array, expected: Float32Array, what: string) {
  assert.equal(actual.length, expected.length, `${what}: length`);
  const scale = expected.reduce((m, v) => Math.max(m, Math.abs(v)), 0) || 1;
  for (let i = 0; i < expected.length; i++) {
    assert.ok(
      Math.abs(actual[i] - expected[i]) <= 1e-5 * scale,
      `${what}[${i}] = ${actual[i]}, expected ${expected[i]}`,
    );
  }
}

const toNchw = (t: tf.Tensor) => tf.transpose(t, [0, 3, 1, 2]) as tf.Tensor4D;
const toNhwc = (t: tf.Tensor) => tf.transpose(t, [0, 2, 3, 1]) as tf.Tensor4D;

/** A channels-first result: its shape, and its values transposed to channels-last (to compare with NHWC results). */
function channelsFirst(run: () => tf.Tensor4D): { shape: number[]; nhwc: Float32Array } {
  return tf.tidy(() => {
    const t = run();
    return { shape: [...t.shape], nhwc: toNhwc(t).dataSync() as Float32Array };
  });
}

/** The float32 `k` units in the last place above the positive `base`. */
function ulpsAbove(base: number, k: number): number {
  const bits = new Uint32Array(Float32Array.of(base).buffer);
  bits[0] += k;
  return new Float32Array(bits.buffer)[0];
}

/**
 * PyTorch's max-pool input gradient, channels-first, as a plain loop: each window's gradient goes to its first
 * maximum in row-major window order; positions outside x (padding, ceil-mode windows over the edge) never win.
 * Float32 sums in window order, as the kernels add.
 */
function maxPoolGradReference(
  x: Float32Array,
  [n, c, h, w]: number[],
  p: PoolAttrs,
  dy: Float32Array,
  [ho, wo]: number[],
): Float32Array {
  const dx = new Float32Array(x.length);
  const [[kh, kw], [sh, sw], top, left] = [p.kernel, p.strides, p.pads[0][0], p.pads[1][0]];
  for (let plane = 0; plane < n * c; plane++) {
    for (let oi = 0; oi < ho; oi++) {
      for (let oj = 0; oj < wo; oj++) {
        let at = -1;
        for (let i = oi * sh - top; i < oi * sh - top + kh; i++) {
          for (let j = oj * sw - left; j < oj * sw - left + kw; j++) {
            if (i < 0 || i >= h || j < 0 || j >= w) continue;
            if (at < 0 || x[plane * h * w + i * w + j] > x[at]) at = plane * h * w + i * w + j;
          }
        }
        if (at >= 0) dx[at] += dy[(plane * ho + oi) * wo + oj];
      }
    }
  }
  return dx;
}

function convNode(
  k: [number, number],
  ci: number,
  co: number,
  conv: ConvAttrs,
  bias: boolean,
  seed: number,
): GraphNode {
  const params: Record<string, tf.Tensor> = {
    weight: tf.tensor4d(values(k[0] * k[1] * (ci / conv.groups) * co, seed), [k[0], k[1], ci / conv.groups, co]),
  };
  if (bias) params.bias = tf.tensor1d(values(co, seed + 1));
  return {
    id: 'conv',
    name: 'conv',
    op: 'conv2d',
    sourceOp: 'Conv',
    inputs: ['x'],
    output: 'y',
    attrs: { conv },
    params: paramsOf(params),
  } as GraphNode;
}

for (const backend of ['wasm', 'cpu']) {
  describe(`native kernels on ${backend}`, { skip }, () => {
    const convs: [string, [number, number], number, number, ConvAttrs, number[]][] = [
      [
        '3×3 stride 1 pad 1',
        [3, 3],
        5,
        6,
        {
          strides: [1, 1],
          pads: [
            [1, 1],
            [1, 1],
          ],
          dilations: [1, 1],
          groups: 1,
        },
        [1, 9, 8],
      ],
      [
        '3×3 stride 2, asymmetric padding, batch 2',
        [3, 3],
        4,
        3,
        {
          strides: [2, 2],
          pads: [
            [0, 1],
            [1, 0],
          ],
          dilations: [1, 1],
          groups: 1,
        },
        [2, 9, 10],
      ],
      [
        '1×1 stride 2 (ResNet downsample)',
        [1, 1],
        8,
        4,
        {
          strides: [2, 2],
          pads: [
            [0, 0],
            [0, 0],
          ],
          dilations: [1, 1],
          groups: 1,
        },
        [1, 10, 7],
      ],
      [
        '7×7 stride 2 pad 3 (ResNet stem)',
        [7, 7],
        3,
        8,
        {
          strides: [2, 2],
          pads: [
            [3, 3],
            [3, 3],
          ],
          dilations: [1, 1],
          groups: 1,
        },
        [1, 15, 16],
      ],
      [
        '3×3 dilation 2',
        [3, 3],
        4,
        5,
        {
          strides: [1, 1],
          pads: [
            [2, 2],
            [2, 2],
          ],
          dilations: [2, 2],
          groups: 1,
        },
        [1, 11, 12],
      ],
      [
        '3×2 kernel, strides 1×2',
        [3, 2],
        4,
        5,
        {
          strides: [1, 2],
          pads: [
            [1, 1],
            [0, 1],
          ],
          dilations: [1, 1],
          groups: 1,
        },
        [1, 11, 12],
      ],
      [
        '2×3 kernel, 2 groups',
        [2, 3],
        6,
        4,
        {
          strides: [1, 1],
          pads: [
            [1, 0],
            [1, 1],
          ],
          dilations: [1, 1],
          groups: 2,
        },
        [1, 7, 8],
      ],
      [
        '3×3 depthwise, multiplier 2',
        [3, 3],
        4,
        8,
        {
          strides: [2, 2],
          pads: [
            [1, 1],
            [1, 1],
          ],
          dilations: [1, 1],
          groups: 4,
        },
        [1, 9, 9],
      ],
      // stride 1: the input gradient is a forward convolution with the kernel flipped and transposed
      [
        '3×3 depthwise, multiplier 2, stride 1, batch 2',
        [3, 3],
        4,
        8,
        {
          strides: [1, 1],
          pads: [
            [1, 1],
            [0, 2],
          ],
          dilations: [1, 1],
          groups: 4,
        },
        [2, 6, 7],
      ],
      [
        '1×1 stride 1, 5 → 3 channels',
        [1, 1],
        5,
        3,
        {
          strides: [1, 1],
          pads: [
            [0, 0],
            [0, 0],
          ],
          dilations: [1, 1],
          groups: 1,
        },
        [2, 4, 6],
      ],
    ];
    convs.forEach(([name, k, ci, co, conv, [n, h, w]], i) => {
      for (const bias of [true, false]) {
        test(`convolution and its input gradient, ${name}${bias ? ', bias' : ''}`, async () => {
          await initBackend(backend);
          const node = convNode(k, ci, co, conv, bias, 10 * i);
          const x = tf.tensor4d(values(n * h * w * ci, 10 * i + 5), [n, h, w, ci]);
          const y = both(() => forward(node, [x]));
          assertClose(y.native[0], y.backend[0], 'y');
          const shape = tf.tidy(() => forward(node, [x]).shape);
          const dy = tf.tensor(
            values(
              shape.reduce((a, b) => a * b, 1),
              10 * i + 6,
            ),
            shape,
          );
          const dx = both(() => vjp(node, [x], tensorsOf(node.params), dy));
          assertClose(dx.native[0], dx.backend[0], 'dx');
          tf.dispose([x, dy, ...Object.values(tensorsOf(node.params))]);
        });
      }
    });

    convs.forEach(([name, k, ci, co, conv, [n, h, w]], i) => {
      // NCHW runs the NHWC primitive between two reorders: the same values as channels-last, bit for bit; a 1×1
      // convolution of stride 1 is a matrix product on the NCHW buffers instead, which sums in another order
      const pointwise =
        k[0] === 1 &&
        k[1] === 1 &&
        conv.groups === 1 &&
        conv.strides.every((s) => s === 1) &&
        conv.pads.flat().every((p) => p === 0);
      const same = (actual: Float32Array, expected: Float32Array, what: string) =>
        pointwise
          ? assertClose(actual, expected, what)
          : assert.deepEqual(Array.from(actual), Array.from(expected), what);
      test(`channels-first convolution and its input gradient against channels-last, ${name}`, async () => {
        await initBackend(backend);
        const first: LayoutConvAttrs = { ...conv, channelsFirst: true };
        for (const bias of [true, false]) {
          const node = convNode(k, ci, co, conv, bias, 10 * i);
          const weight = node.params.weight.tensor as tf.Tensor4D;
          const x = tf.tensor4d(values(n * h * w * ci, 10 * i + 5), [n, h, w, ci]);
          const y = both(() => forward(node, [x]));
          const [, ho, wo] = tf.tidy(() => forward(node, [x]).shape);
          const yFirst = channelsFirst(() => nativeConv2d(toNchw(x), weight, node.params.bias?.tensor, first));
          assert.deepEqual(yFirst.shape, [n, co, ho, wo], 'y shape (NCHW)');
          same(yFirst.nhwc, y.native[0], 'y (NCHW) vs native NHWC');
          assertClose(yFirst.nhwc, y.backend[0], 'y (NCHW) vs backend NHWC');
          const dy = tf.tensor4d(values(n * ho * wo * co, 10 * i + 6), [n, ho, wo, co]);
          const dx = both(() => vjp(node, [x], tensorsOf(node.params), dy));
          const dxFirst = channelsFirst(() => nativeConv2dInputGrad([n, ci, h, w], weight, first, toNchw(dy)));
          assert.deepEqual(dxFirst.shape, [n, ci, h, w], 'dx shape (NCHW)');
          same(dxFirst.nhwc, dx.native[0], 'dx (NCHW) vs native NHWC');
          assertClose(dxFirst.nhwc, dx.backend[0], 'dx (NCHW) vs backend NHWC');
          tf.dispose([x, dy, ...Object.values(tensorsOf(node.params))]);
        }
      });
    });

    test('a kept kernel layout serves both input layouts', async () => {
      await initBackend(backend);
      const conv: ConvAttrs = {
        strides: [1, 1],
        pads: [
          [1, 1],
          [1, 1],
        ],
        dilations: [1, 1],
        groups: 1,
      };
      const node = convNode([3, 3], 16, 16, conv, true, 4);
      const weight = node.params.weight.tensor as tf.Tensor4D;
      const x = tf.tensor4d(values(2 * 8 * 8 * 16, 5), [2, 8, 8, 16]);
      const fresh = both(() => forward(node, [x]));
      retainPrepared([weight]);
      for (let round = 0; round < 2; round++) {
        assertClose(
          tf.tidy(() => nativeConv2d(x, weight, node.params.bias?.tensor, conv).dataSync() as Float32Array),
          fresh.backend[0],
          `NHWC round ${round}`,
        );
        assertClose(
          channelsFirst(() =>
            nativeConv2d(toNchw(x), weight, node.params.bias?.tensor, { ...conv, channelsFirst: true }),
          ).nhwc,
          fresh.backend[0],
          `NCHW round ${round}`,
        );
      }
      releasePrepared([weight]);
      tf.dispose([x, ...Object.values(tensorsOf(node.params))]);
    });

    // [name, kernel, strides, pads, x's NCHW shape, dy's spatial size (ceil mode where it is one more than floor's)]
    const pools: [
      string,
      [number, number],
      [number, number],
      [[number, number], [number, number]],
      number[],
      [number, number],
    ][] = [
      [
        '2×2/2 (VGG), batch 2',
        [2, 2],
        [2, 2],
        [
          [0, 0],
          [0, 0],
        ],
        [2, 3, 8, 10],
        [4, 5],
      ],
      [
        '3×3/2 pad 1 (ResNet stem): overlapping windows',
        [3, 3],
        [2, 2],
        [
          [1, 1],
          [1, 1],
        ],
        [1, 4, 9, 10],
        [5, 5],
      ],
      [
        '3×3/2 ceil mode: the last windows hang over the bottom and right',
        [3, 3],
        [2, 2],
        [
          [0, 0],
          [0, 0],
        ],
        [1, 3, 8, 8],
        [4, 4],
      ],
      [
        '2×2/2 ceil mode on odd sizes',
        [2, 2],
        [2, 2],
        [
          [0, 0],
          [0, 0],
        ],
        [2, 2, 7, 9],
        [4, 5],
      ],
      [
        '3×3/2 pad 1, ceil mode',
        [3, 3],
        [2, 2],
        [
          [1, 1],
          [1, 1],
        ],
        [1, 2, 10, 10],
        [6, 6],
      ],
      [
        '2×3 kernel, strides 1×2, top padding',
        [2, 3],
        [1, 2],
        [
          [1, 0],
          [0, 0],
        ],
        [1, 3, 6, 7],
        [6, 3],
      ],
      [
        '2×2/2 ceil mode on 64 channels (planes split across threads)',
        [2, 2],
        [2, 2],
        [
          [0, 0],
          [0, 0],
        ],
        [2, 64, 27, 29],
        [14, 15],
      ],
    ];
    pools.forEach(([name, kernel, strides, pads, [n, c, h, w], [ho, wo]], i) => {
      test(`max-pool input gradient in both layouts against PyTorch's rule, ${name}`, async () => {
        await initBackend(backend);
        const pool: PoolAttrs = { kernel, strides, pads };
        const first: LayoutPoolAttrs = { ...pool, channelsFirst: true };
        const node = {
          id: 'pool',
          name: 'pool',
          op: 'maxPool',
          sourceOp: 'MaxPool',
          inputs: ['x'],
          output: 'y',
          attrs: { pool },
          params: {},
        } as GraphNode;
        // continuous values; ReLU-like ones (many zeros and equal values: ties); and near-ties, 0.24 plus 0 to 3 ulps
        // (as in VGG's features.21, where two candidates 4e-6 apart decide where a window's gradient goes)
        const continuous = values(n * c * h * w, 40 + i);
        const ties = continuous.map((v) => Math.max(0, Math.round(v * 3)));
        const nearTies = continuous.map((v) => ulpsAbove(0.24, Math.floor((v + 1) * 2)));
        for (const [kind, xv] of [
          ['continuous', continuous],
          ['ties', ties],
          ['near-ties', nearTies],
        ] as const) {
          const x = tf.tensor4d(xv, [n, c, h, w]);
          const dy = tf.tensor4d(values(n * c * ho * wo, 50 + i), [n, c, ho, wo]);
          const expected = tf.tidy(() =>
            toNhwc(
              tf.tensor4d(maxPoolGradReference(xv, [n, c, h, w], pool, dy.dataSync() as Float32Array, [ho, wo]), [
                n,
                c,
                h,
                w,
              ]),
            ).dataSync(),
          );
          const dxFirst = channelsFirst(() => nativeMaxPoolBackward(x, first, dy));
          assert.deepEqual(dxFirst.shape, [n, c, h, w], `${kind}: dx shape (NCHW)`);
          assert.deepEqual(Array.from(dxFirst.nhwc), Array.from(expected), `${kind}: NCHW`);
          const [xLast, dyLast] = [toNhwc(x), toNhwc(dy)];
          const dx = both(() => vjp(node, [xLast], {}, dyLast));
          assert.deepEqual(Array.from(dx.native[0]), Array.from(expected), `${kind}: native NHWC`);
          assert.deepEqual(Array.from(dx.backend[0]), Array.from(expected), `${kind}: backend NHWC`);
          tf.dispose([x, dy, xLast, dyLast]);
        }
      });
    });

    test('dense layer and its input gradient, with and without bias', async () => {
      await initBackend(backend);
      const weight = tf.tensor2d(values(37 * 11, 1), [37, 11]);
      const x = tf.tensor2d(values(3 * 37, 2), [3, 37]);
      const dy = tf.tensor2d(values(3 * 11, 3), [3, 11]);
      for (const params of [{ weight, bias: tf.tensor1d(values(11, 4)) }, { weight }] as Record<string, tf.Tensor>[]) {
        const node = {
          id: 'fc',
          name: 'fc',
          op: 'dense',
          sourceOp: 'Gemm',
          inputs: ['x'],
          output: 'y',
          attrs: {},
          params: paramsOf(params),
        } as GraphNode;
        const y = both(() => forward(node, [x]));
        assertClose(y.native[0], y.backend[0], 'y');
        const dx = both(() => vjp(node, [x], params, dy));
        assertClose(dx.native[0], dx.backend[0], 'dx');
      }
    });

    test('stabilised division is bit-identical to the backend ops, with and without the sign mask', async () => {
      await initBackend(backend);
      const z = tf.tensor1d([0, -0, 1e-7, -1e-7, 3, -3, 1e-6, -1e-6, 0.5, -2]);
      const g = tf.tensor1d([1, -1, 2, 0, -0.5, 4, 1, 1, -1, 0]);
      const by = tf.tensor1d([1, -1, 0, -0, 2, -2, 0, 1, -1, 3]);
      for (const eps of [1e-6, 0.25]) {
        for (const mask of [undefined, { by, sign: 1 as const }, { by, sign: -1 as const }]) {
          const r = both(() => divideStabilized(g, z, eps, mask));
          assert.deepEqual(Array.from(r.native[0]), Array.from(r.backend[0]), `ε=${eps} mask=${mask?.sign}`);
        }
      }
    });

    test("Gamma's combined outputs (ca·a + cb·b) are bit-identical to the backend ops", async () => {
      await initBackend(backend);
      const a = tf.tensor1d(values(1000, 11));
      const b = tf.tensor1d(values(1000, 12));
      for (const [ca, cb] of [
        [1, 0.25],
        [1.25, -0.25],
        [1, 1e-7],
      ]) {
        const native = tf.tidy(() => Array.from(nativeCombine(a, ca, b, cb).dataSync()));
        const ops = tf.tidy(() => Array.from(tf.add(tf.mul(a, ca), tf.mul(b, cb)).dataSync()));
        assert.deepEqual(native, ops, `${ca}·a + ${cb}·b`);
      }
      tf.dispose([a, b]);
    });

    test("TF.js's transposes run natively: every rank from 2 to 6, the values the backend's kernel gives", async () => {
      await initBackend(backend);
      const cases: [number[], number[]][] = [
        [
          [5, 7],
          [1, 0],
        ],
        [
          [2, 3, 4, 5],
          [0, 2, 3, 1],
        ],
        [
          [2, 3, 4, 5],
          [0, 3, 1, 2],
        ],
        [
          [6, 2, 3, 4, 5],
          [2, 0, 3, 1, 4],
        ],
        [
          [1, 4, 3, 4, 3, 5],
          [0, 1, 3, 2, 4, 5],
        ],
        [
          [3, 1, 2],
          [2, 1, 0],
        ],
      ];
      for (const [shape, perm] of cases) {
        const x = tf.tensor(
          values(
            shape.reduce((a, b) => a * b, 1),
            21,
          ),
          shape,
        );
        const r = both(() => tf.transpose(x, perm));
        assert.deepEqual(Array.from(r.native[0]), Array.from(r.backend[0]), `[${shape}] by [${perm}]`);
        // its gradient is the inverse transpose
        const g = both(() =>
          tf.grad((t: tf.Tensor) =>
            tf.sum(
              tf.mul(
                tf.transpose(t, perm),
                tf.reshape(
                  tf.range(0, x.size),
                  perm.map((a) => shape[a]),
                ),
              ),
            ),
          )(x),
        );
        assert.deepEqual(Array.from(g.native[0]), Array.from(g.backend[0]), `gradient of [${shape}] by [${perm}]`);
        x.dispose();
      }
      // integer tensors keep the backend's kernel
      assert.deepEqual(
        tf.tidy(() => Array.from(tf.transpose(tf.tensor2d([1, 2, 3, 4, 5, 6], [2, 3], 'int32')).dataSync())),
        [1, 4, 2, 5, 3, 6],
      );
    });

    test("TF.js's batched matrix products run natively: transposed operands, broadcast batches, their gradients", async () => {
      await initBackend(backend);
      const cases: [number[], number[], boolean, boolean][] = [
        [[4, 6], [6, 3], false, false],
        [[6, 4], [3, 6], true, true],
        [[2, 3, 5, 4], [2, 3, 4, 6], false, false],
        [[2, 3, 4, 5], [2, 3, 6, 4], true, true],
        [[2, 3, 5, 4], [3, 4, 6], false, false],
        [[2, 3, 5, 4], [1, 1, 6, 4], false, true],
        [[1, 1, 4, 5], [2, 3, 4, 6], true, false],
      ];
      for (const [as, bs, ta, tb] of cases) {
        const a = tf.tensor(
          values(
            as.reduce((x, y) => x * y, 1),
            31,
          ),
          as,
        );
        const b = tf.tensor(
          values(
            bs.reduce((x, y) => x * y, 1),
            32,
          ),
          bs,
        );
        const what = `[${as}]${ta ? 'ᵀ' : ''} · [${bs}]${tb ? 'ᵀ' : ''}`;
        const y = both(() => tf.matMul(a, b, ta, tb));
        assertClose(y.native[0], y.backend[0], what);
        // TF.js's own gradient needs operands of one batch (it does not reduce a broadcast one)
        if (tf.util.arraysEqual(as.slice(0, -2), bs.slice(0, -2))) {
          const grads = both(() =>
            tf.grads((p: tf.Tensor, q: tf.Tensor) => tf.sum(tf.square(tf.matMul(p, q, ta, tb))))([a, b]),
          );
          assertClose(grads.native[0], grads.backend[0], `${what}: gradient at a`);
          assertClose(grads.native[1], grads.backend[1], `${what}: gradient at b`);
        }
        tf.dispose([a, b]);
      }
    });

    test("TF.js's sums, differences and products of whole tensors run natively, bit for bit the backend's", async () => {
      await initBackend(backend);
      const a = tf.tensor2d(values(3000, 41), [30, 100]);
      const b = tf.tensor2d(values(3000, 42), [30, 100]);
      const row = tf.tensor1d(values(100, 43));
      for (const [name, f] of [
        ['a + b', () => tf.add(a, b)],
        ['a − b', () => tf.sub(a, b)],
        ['a · b', () => tf.mul(a, b)],
        // broadcasting keeps the backend's kernel
        ['a + row', () => tf.add(a, row)],
        ['a · row', () => tf.mul(a, row)],
      ] as [string, () => tf.Tensor][]) {
        const r = both(f);
        assert.deepEqual(Array.from(r.native[0]), Array.from(r.backend[0]), name);
      }
      tf.dispose([a, b, row]);
    });

    test('layer sums in double precision, read in place', async () => {
      await initBackend(backend);
      const v = values(300_001, 9);
      const t = tf.tensor1d(v);
      const exact = v.reduce((a, b) => a + b, 0);
      assert.ok(Math.abs(nativeSum(t) - exact) <= 1e-9 * v.length, `${nativeSum(t)} vs ${exact}`);
      t.dispose();
    });

    test('kept kernel layouts: each long-lived weight keeps its own, and released ones are recomputed', async () => {
      await initBackend(backend);
      const conv: ConvAttrs = {
        strides: [1, 1],
        pads: [
          [1, 1],
          [1, 1],
        ],
        dilations: [1, 1],
        groups: 1,
      };
      const a = convNode([3, 3], 16, 16, conv, false, 1);
      const b = convNode([3, 3], 16, 16, conv, false, 2);
      const x = tf.tensor4d(values(8 * 8 * 16, 3), [1, 8, 8, 16]);
      const fresh = [a, b].map((node) => both(() => forward(node, [x])));
      retainPrepared([a.params.weight.tensor, b.params.weight.tensor]);
      for (let round = 0; round < 2; round++) {
        [a, b].forEach((node, i) => {
          const kept = tf.tidy(() => forward(node, [x]).dataSync() as Float32Array);
          assertClose(kept, fresh[i].backend[0], `${node === a ? 'a' : 'b'} round ${round}`);
        });
      }
      releasePrepared([a.params.weight.tensor, b.params.weight.tensor]);
      assertClose(
        tf.tidy(() => forward(a, [x]).dataSync() as Float32Array),
        fresh[0].backend[0],
        'a after release',
      );
    });
  });
}

describe('the addon refuses bad arguments with an error (no crash)', { skip }, () => {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const addon = require(path.join(__dirname, '../../engine/native/build/Release/relevance_native.node'));
  const geometry = Int32Array.from([1, 4, 4, 2, 3, 3, 2, 1, 4, 4, 1, 1, 1, 1, 1, 1, 1, 1, 0]);
  const f = (n: number) => new Float32Array(n);
  const cases: [string, () => void, RegExp][] = [
    ['too few arguments', () => addon.conv2d(geometry), /takes 6 arguments/],
    [
      'geometry of the wrong length',
      () => addon.conv2d(new Int32Array(3), f(32), f(36), null, f(32), 0),
      /Int32Array of 19/,
    ],
    [
      'a zero dimension',
      () => addon.conv2d(Int32Array.from([0, ...geometry.subarray(1)]), f(32), f(36), null, f(32), 0),
      /invalid convolution geometry/,
    ],
    [
      'input of the wrong size',
      () => addon.conv2d(geometry, f(31), f(36), null, f(32), 0),
      /x has 31 values, the shape needs 32/,
    ],
    [
      'a plain array for the kernel',
      () => addon.conv2d(geometry, f(32), [1, 2], null, f(32), 0),
      /w must be a Float32Array/,
    ],
    [
      'groups that do not divide the channels',
      () =>
        addon.conv2d(
          Int32Array.from([1, 4, 4, 3, 3, 3, 2, 2, 4, 4, 1, 1, 1, 1, 1, 1, 1, 1, 0]),
          f(48),
          f(27),
          null,
          f(32),
          0,
        ),
      /divisible by the groups/,
    ],
    [
      'inconsistent output size',
      () =>
        addon.conv2d(
          Int32Array.from([1, 4, 4, 2, 3, 3, 2, 1, 9, 9, 1, 1, 1, 1, 1, 1, 1, 1, 0]),
          f(32),
          f(36),
          null,
          f(162),
          0,
        ),
      /oneDNN/,
    ],
    ['a negative weights id', () => addon.conv2d(geometry, f(32), f(36), null, f(32), -1), /weights id/],
    [
      'matmul with a mismatched operand',
      () => addon.matmul(2, 3, 4, f(6), f(11), null, f(8), false),
      /b has 11 values/,
    ],
    [
      'a strided view past the end of its buffer',
      () => addon.copyStrided(2, Int32Array.from([3, 4]), Int32Array.from([8, 3]), 1, f(24), f(12), false),
      /runs past its buffer/,
    ],
    [
      'a strided scatter into too small a buffer',
      () => addon.copyStrided(1, Int32Array.from([4]), Int32Array.from([3]), 0, f(4), f(9), true),
      /runs past its buffer/,
    ],
    [
      'a strided copy of a rank above oneDNN’s',
      () => addon.copyStrided(13, new Int32Array(13).fill(1), new Int32Array(13), 0, f(1), f(1), false),
      /rank 13 is above oneDNN's 12/,
    ],
    [
      'a negative stride',
      () => addon.copyStrided(1, Int32Array.from([4]), Int32Array.from([-1]), 3, f(4), f(4), false),
      /invalid strides/,
    ],
    [
      'a batched product whose inner dimensions differ',
      () =>
        addon.batchMatmul(3, Int32Array.from([2, 3, 4]), Int32Array.from([2, 5, 6]), f(24), f(60), f(36), false, false),
      /inner dimensions differ/,
    ],
    [
      'batched products whose batches do not broadcast',
      () =>
        addon.batchMatmul(3, Int32Array.from([2, 3, 4]), Int32Array.from([3, 4, 6]), f(24), f(72), f(36), false, false),
      /do not broadcast/,
    ],
    [
      'multiply with operands of different sizes',
      () => addon.multiply(f(4), f(5), f(4)),
      /b has 5 values, the shape needs 4/,
    ],
    [
      'division with a bad mask sign',
      () => addon.divideStabilized(f(4), f(4), 1e-6, f(4), f(4), 2),
      /sign must be 1 or -1/,
    ],
    [
      'max-pool gradient with a short geometry',
      () => addon.maxPoolBackward(new Int32Array(5), f(4), f(1), f(4)),
      /Int32Array of 13/,
    ],
    [
      'a convolution layout flag other than 0 or 1',
      () => addon.conv2d(Int32Array.from([...geometry.subarray(0, 18), 2]), f(32), f(36), null, f(32), 0),
      /layout flag/,
    ],
    [
      'a max-pool layout flag other than 0 or 1',
      () => addon.maxPoolBackward(Int32Array.from([1, 4, 4, 1, 2, 2, 2, 2, 2, 2, 0, 0, 2]), f(16), f(4), f(16)),
      /layout flag/,
    ],
    [
      'max-pool windows outside the input',
      () => addon.maxPoolBackward(Int32Array.from([1, 4, 4, 1, 3, 3, 2, 2, 2, 2, 0, 0, 1]), f(16), f(9), f(16)),
      /windows outside/,
    ],
    [
      'max-pool padding as wide as the window',
      () => addon.maxPoolBackward(Int32Array.from([1, 4, 4, 1, 3, 3, 2, 2, 2, 2, 2, 0, 1]), f(16), f(9), f(16)),
      /windows outside/,
    ],
  ];
  for (const [name, call, message] of cases) {
    test(name, () => assert.throws(call, message));
  }
});

describe('signals during a kernel', { skip }, () => {
  test("a profiler's signals during pointwise convolutions leave the heap and the values intact", () => {
    // ResNet50's layer2.0.conv1, 40 times, in a process V8's profiler interrupts every 100 µs: before the addon held
    // signals off its kernels, oneDNN's GEMM convolution corrupted the heap there (abort in free()) every time
    const addonFile = path.join(__dirname, '../../engine/native/build/Release/relevance_native.node');
    const script = `
      const addon = require(${JSON.stringify(addonFile)});
      const [ci, co, hw] = [256, 128, 56];
      const geometry = Int32Array.from([1, hw, hw, ci, 1, 1, co, 1, hw, hw, 1, 1, 1, 1, 0, 0, 0, 0, 1]);
      const x = Float32Array.from({ length: ci * hw * hw }, (_, i) => ((i * 7919) % 1000) / 1000 - 0.5);
      const w = Float32Array.from({ length: ci * co }, (_, i) => ((i * 104729) % 1000) / 1000 - 0.5);
      const y = new Float32Array(co * hw * hw);
      const kept = [];
      let worst = 0;
      for (let round = 0; round < 40; round++) {
        addon.conv2d(geometry, x, w, null, y, 0);
        kept.push(new Float64Array(1000 + round * 37));
        // output channel o at pixel p: Σ_i x[i, p] · w[i, o] (the kernel is HWIO)
        for (const [o, p] of [[0, 0], [co - 1, hw * hw - 1], [round, round * 71]]) {
          let sum = 0;
          for (let i = 0; i < ci; i++) sum += x[i * hw * hw + p] * w[i * co + o];
          worst = Math.max(worst, Math.abs(y[o * hw * hw + p] - sum));
        }
      }
      process.stdout.write(JSON.stringify({ worst }));
    `;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'signals-'));
    try {
      const r = spawnSync(
        process.execPath,
        ['--cpu-prof', '--cpu-prof-interval=100', `--cpu-prof-dir=${dir}`, '-e', script],
        { encoding: 'utf8' },
      );
      assert.equal(r.status, 0, `the process ended with ${r.status ?? r.signal}: ${r.stderr.trim()}`);
      const { worst } = JSON.parse(r.stdout) as { worst: number };
      assert.ok(worst < 1e-3, `largest difference from the sums in JavaScript: ${worst}`);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
