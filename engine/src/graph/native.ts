import * as tf from '@tensorflow/tfjs-core';
import * as fs from 'fs';
import * as path from 'path';
import type { ConvAttrs, PoolAttrs } from './graph';
import { BACKENDS, STORAGE, type Storage, type StorageBackend } from './storage';
import { size } from '../ndarray';
// the backends' own kernels are registered before the addon replaces some (replaceBackendKernels)
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';

/**
 * Native kernels from the optional addon in engine/native/: oneDNN's convolutions, matrix products and strided
 * copies (what PyTorch runs on CPU) and the rules' elementwise passes, run on the float32 buffers the wasm or cpu
 * backend already holds. Registered as TF.js kernels of their own, so their outputs are ordinary tensors of the
 * active backend (scopes and disposal as usual); TF.js's Transpose and BatchMatMul run them too
 * (replaceBackendKernels). Without the addon, or with RELEVANCE_LENS_NATIVE=off, the backend's own kernels run.
 */
interface Addon {
  conv2d(
    geometry: Int32Array,
    x: Float32Array,
    w: Float32Array,
    bias: Float32Array | null,
    y: Float32Array,
    weightsId: number,
  ): void;
  conv2dBackwardData(
    geometry: Int32Array,
    dy: Float32Array,
    w: Float32Array,
    dx: Float32Array,
    weightsId: number,
  ): void;
  releaseWeights(weightsId: number): void;
  sum(values: Float32Array): number;
  multiply(a: Float32Array, b: Float32Array, out: Float32Array): void;
  combine(a: Float32Array, ca: number, b: Float32Array, cb: number, out: Float32Array): void;
  matmul(
    m: number,
    k: number,
    n: number,
    a: Float32Array,
    b: Float32Array,
    bias: Float32Array | null,
    out: Float32Array,
    transposeB: boolean,
  ): void;
  batchMatmul(
    rank: number,
    aDims: Int32Array,
    bDims: Int32Array,
    a: Float32Array,
    b: Float32Array,
    out: Float32Array,
    transposeA: boolean,
    transposeB: boolean,
  ): void;
  copyStrided(
    rank: number,
    dims: Int32Array,
    strides: Int32Array,
    offset: number,
    src: Float32Array,
    dst: Float32Array,
    scatter: boolean,
  ): void;
  maxPoolBackward(geometry: Int32Array, x: Float32Array, dy: Float32Array, dx: Float32Array): void;
  divideStabilized(
    g: Float32Array,
    z: Float32Array,
    epsilon: number,
    out: Float32Array,
    by?: Float32Array,
    sign?: number,
  ): void;
  info(): { library: string; threads: number };
}

export interface NativeStatus {
  /** the library behind the addon, e.g. "oneDNN 2.6.3, 2 threads"; undefined when it did not load */
  library?: string;
  /** why the addon is not used */
  reason?: string;
}

const FORWARD = 'RelevanceLensConv2D';
const BACKWARD_DATA = 'RelevanceLensConv2DBackwardData';
const DIVIDE_STABILIZED = 'RelevanceLensDivideStabilized';
const MATMUL = 'RelevanceLensMatMul';
const MAX_POOL_BACKWARD = 'RelevanceLensMaxPoolBackward';
const MULTIPLY = 'RelevanceLensMultiply';
const COMBINE = 'RelevanceLensCombine';
const STRIDED_COPY = 'RelevanceLensStridedCopy';
const STRIDED_SCATTER = 'RelevanceLensStridedScatter';

/** where the addon is: beside the bundled engine (dist/), or built in the source tree */
function candidates(): string[] {
  return [
    path.join(__dirname, 'relevance_native.node'),
    path.join(__dirname, '..', '..', 'native', 'build', 'Release', 'relevance_native.node'),
  ];
}

let addon: Addon | undefined;
let status: NativeStatus | undefined;
/** switched off by RELEVANCE_LENS_NATIVE=off, or at run time (benchmarks and tests compare both paths) */
let enabled = process.env.RELEVANCE_LENS_NATIVE !== 'off';

function load(): NativeStatus {
  const file = candidates().find((f) => fs.existsSync(f));
  if (!file) return { reason: 'the native addon is not built (npm run build:native)' };
  try {
    // a computed path: Node's loader, not the bundler's
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    addon = require(file) as Addon;
    const { library, threads } = addon.info();
    registerKernels();
    replaceBackendKernels(addon);
    return { library: `${library}, ${threads} thread${threads === 1 ? '' : 's'}` };
  } catch (e) {
    addon = undefined;
    return { reason: `${path.basename(file)} did not load: ${(e as Error).message.split('\n')[0]}` };
  }
}

export function nativeStatus(): NativeStatus {
  status ??= load();
  return status;
}

/** Turns the native kernels on or off (when the addon loaded); returns whether they are now on. */
export function useNativeKernels(on: boolean): boolean {
  enabled = on;
  return nativeKernels();
}

const servesBackend = (name: string) => (BACKENDS as readonly string[]).includes(name);

/** true when the engine's heavy kernels on the active backend run natively */
export function nativeKernels(): boolean {
  return enabled && nativeStatus().library !== undefined && servesBackend(tf.getBackend());
}

/** true when an elementwise native kernel can take these tensors: native kernels on, all float32 of one shape */
export function nativeElementwise(...ts: tf.Tensor[]): boolean {
  return nativeKernels() && ts.every((t) => t.dtype === 'float32' && tf.util.arraysEqual(t.shape, ts[0].shape));
}

/** What runs the heavy kernels (convolutions, dense layers, the rules' divisions), for every report of a run. */
export function kernelsReport(): string {
  const backend = tf.getBackend();
  if (nativeKernels()) return `native (${nativeStatus().library})`;
  if (!servesBackend(backend)) return backend;
  const off =
    process.env.RELEVANCE_LENS_NATIVE === 'off' ? 'switched off by RELEVANCE_LENS_NATIVE=off' : 'switched off';
  return `${backend} (native kernels not used: ${enabled ? nativeStatus().reason : off})`;
}

/**
 * A convolution's attributes with the layout of its input and output: channels-first (NCHW) when `channelsFirst`,
 * else channels-last (NHWC). Declared here as well as in graph.ts, so this module compiles with either.
 */
export type LayoutConvAttrs = ConvAttrs & { channelsFirst?: boolean };
/** A pooling's attributes with the layout of its input and output (as LayoutConvAttrs). */
export type LayoutPoolAttrs = PoolAttrs & { channelsFirst?: boolean };

/**
 * [n, h, w, ci, kh, kw, co, groups, ho, wo, sh, sw, dh, dw, top, left, bottom, right, channelsFirst]: the addon's
 * geometry, from x's shape in its layout and the HWIO kernel's
 */
function geometry(x: readonly number[], w: readonly number[], a: LayoutConvAttrs): Int32Array {
  const channelsFirst = a.channelsFirst === true;
  const [n, h, wd, ci] = channelsFirst ? [x[0], x[2], x[3], x[1]] : x;
  const [kh, kw, , co] = w;
  const [sh, sw] = a.strides;
  const [dh, dw] = a.dilations;
  const [[top, bottom], [left, right]] = a.pads;
  const ho = Math.floor((h + top + bottom - (dh * (kh - 1) + 1)) / sh) + 1;
  const wo = Math.floor((wd + left + right - (dw * (kw - 1) + 1)) / sw) + 1;
  return Int32Array.from([
    n,
    h,
    wd,
    ci,
    kh,
    kw,
    co,
    a.groups,
    ho,
    wo,
    sh,
    sw,
    dh,
    dw,
    top,
    left,
    bottom,
    right,
    channelsFirst ? 1 : 0,
  ]);
}

/** A native kernel: the inputs it reads, the shape of its output, and the call that fills the output. */
interface KernelSpec {
  name: string;
  inputs: string[];
  outputShape: (attrs: tf.NamedAttrMap, inputs: tf.TensorInfo[]) => number[];
  run: (attrs: tf.NamedAttrMap, inputs: Float32Array[], output: Float32Array) => void;
}

const geometryOf = (attrs: tf.NamedAttrMap) => attrs.geometry as unknown as Int32Array;
/** [n, c, h, w] in the layout the convolution geometry's flag (its last value) names */
const inLayout = (g: Int32Array, [n, h, w, c]: number[]) => (g[g.length - 1] === 1 ? [n, c, h, w] : [n, h, w, c]);

function kernelSpecs(native: Addon): KernelSpec[] {
  return [
    {
      name: FORWARD,
      inputs: ['x', 'filter', 'bias'],
      outputShape: (attrs) => {
        const g = geometryOf(attrs);
        return inLayout(g, [g[0], g[8], g[9], g[6]]);
      },
      run: (attrs, [x, w, bias], y) =>
        native.conv2d(geometryOf(attrs), x, w, bias ?? null, y, attrs.weightsId as number),
    },
    {
      name: BACKWARD_DATA,
      inputs: ['dy', 'filter'],
      outputShape: (attrs) => {
        const g = geometryOf(attrs);
        return inLayout(g, [g[0], g[1], g[2], g[3]]);
      },
      run: (attrs, [dy, w], dx) => native.conv2dBackwardData(geometryOf(attrs), dy, w, dx, attrs.weightsId as number),
    },
    {
      name: MATMUL,
      inputs: ['a', 'b', 'bias'],
      outputShape: (attrs, [a, b]) => [a.shape[0], b.shape[attrs.transposeB ? 0 : 1]],
      run: (attrs, [a, b, bias], out) => {
        const [m, k] = [attrs.m as number, attrs.k as number];
        native.matmul(m, k, out.length / m, a, b, bias ?? null, out, attrs.transposeB as boolean);
      },
    },
    {
      name: MAX_POOL_BACKWARD,
      inputs: ['x', 'dy'],
      outputShape: (_attrs, [x]) => x.shape,
      run: (attrs, [x, dy], dx) => native.maxPoolBackward(geometryOf(attrs), x, dy, dx),
    },
    {
      name: STRIDED_COPY,
      inputs: ['x'],
      outputShape: (attrs) => attrs.shape as number[],
      run: (attrs, [x], out) => copyStrided(native, attrs as unknown as StridedView, x, out, false),
    },
    {
      name: STRIDED_SCATTER,
      inputs: ['dy'],
      outputShape: (attrs) => attrs.into as number[],
      run: (attrs, [dy], out) => copyStrided(native, attrs as unknown as StridedView, dy, out, true),
    },
    {
      name: MULTIPLY,
      inputs: ['a', 'b'],
      outputShape: (_attrs, [a]) => a.shape,
      run: (_attrs, [a, b], out) => native.multiply(a, b, out),
    },
    {
      name: COMBINE,
      inputs: ['a', 'b'],
      outputShape: (_attrs, [a]) => a.shape,
      run: (attrs, [a, b], out) => native.combine(a, attrs.ca as number, b, attrs.cb as number, out),
    },
    {
      name: DIVIDE_STABILIZED,
      inputs: ['g', 'z', 'by'],
      outputShape: (_attrs, [g]) => g.shape,
      run: (attrs, [g, z, by], out) =>
        by
          ? native.divideStabilized(g, z, attrs.epsilon as number, out, by, attrs.sign as number)
          : native.divideStabilized(g, z, attrs.epsilon as number, out),
    },
  ];
}

function registerKernels(): void {
  for (const spec of kernelSpecs(addon!)) {
    for (const backendName of BACKENDS) {
      tf.registerKernel({
        kernelName: spec.name,
        backendName,
        kernelFunc: ({ inputs, attrs = {}, backend }) => {
          const storage = STORAGE[backendName](backend as tf.KernelBackend);
          const infos = spec.inputs.map((name) => inputs[name]).filter((t): t is tf.TensorInfo => t !== undefined);
          // allocate first: a growing wasm heap would detach views taken before
          const { output, result } = storage.allocate(spec.outputShape(attrs, infos));
          spec.run(attrs, infos.map(storage.view), output);
          return result;
        },
      });
    }
  }
}

/** The row-major element strides of a shape. */
export const rowMajor = (shape: readonly number[]) => shape.map((_, a) => size(shape.slice(a + 1)));

/** Values of a dense tensor read as `shape`, element k at offset + Σ kᵢ·stridesᵢ (strides ≥ 0). */
export interface StridedView {
  shape: number[];
  strides: number[];
  offset: number;
}

function copyStrided(native: Addon, v: StridedView, src: Float32Array, dst: Float32Array, scatter: boolean): void {
  const [dims, strides] = [Int32Array.from(v.shape), Int32Array.from(v.strides)];
  native.copyStrided(v.shape.length, dims, strides, v.offset, src, dst, scatter);
}

/** A TF.js kernel's inputs and attributes to its output, or undefined where the backend's own kernel runs. */
type BackendKernel = (
  inputs: Record<string, tf.TensorInfo>,
  attrs: tf.NamedAttrMap,
  storage: Storage,
) => tf.TensorInfo | undefined;

/** ca·a + cb·b for operands of one shape (no broadcasting): exactly a + b or a − b with ±1, on both cores. */
const elementwise =
  (native: Addon, run: (native: Addon, a: Float32Array, b: Float32Array, out: Float32Array) => void): BackendKernel =>
  ({ a, b }, _attrs, storage) => {
    if (!tf.util.arraysEqual(a.shape, b.shape)) return undefined;
    const { output, result } = storage.allocate(a.shape);
    run(native, storage.view(a), storage.view(b), output);
    return result;
  };

/**
 * TF.js's own kernels the addon runs in place of the backend's, for float32 tensors while native kernels are on:
 * wherever TF.js computes these (the ops' forwards, autodiff's gradients, the rules), it gets the addon's. The wasm
 * backend's rank-5 transpose copies about 40 M values a second, and its batched products are several times slower
 * than oneDNN's: a transformer's attention spends most of its time there. Its elementwise kernels run on one core.
 */
function backendKernels(native: Addon): Record<string, BackendKernel> {
  return {
    // the rules' and the relevance pass's sums and products of whole tensors; the backend's run on one core
    [tf.Add]: elementwise(native, (n, a, b, out) => n.combine(a, 1, b, 1, out)),
    [tf.Sub]: elementwise(native, (n, a, b, out) => n.combine(a, 1, b, -1, out)),
    [tf.Multiply]: elementwise(native, (n, a, b, out) => n.multiply(a, b, out)),
    [tf.Transpose]: ({ x }, { perm }, storage) => {
      const order = perm as number[];
      const strides = rowMajor(x.shape);
      const shape = order.map((a) => x.shape[a]);
      const { output, result } = storage.allocate(shape);
      copyStrided(native, { shape, strides: order.map((a) => strides[a]), offset: 0 }, storage.view(x), output, false);
      return result;
    },
    [tf.BatchMatMul]: ({ a, b }, { transposeA, transposeB }, storage) => {
      // both of one rank, the shorter's batch padded with ones (TF.js broadcasts the batch dimensions)
      const rank = Math.max(a.shape.length, b.shape.length);
      const pad = (s: number[]) => [...new Array<number>(rank - s.length).fill(1), ...s];
      const [as, bs] = [pad(a.shape), pad(b.shape)];
      const m = as[rank - (transposeA ? 1 : 2)];
      const n = bs[rank - (transposeB ? 2 : 1)];
      const batch = as.slice(0, -2).map((d, k) => Math.max(d, bs[k]));
      const { output, result } = storage.allocate([...batch, m, n]);
      const [av, bv] = [storage.view(a), storage.view(b)];
      native.batchMatmul(rank, Int32Array.from(as), Int32Array.from(bs), av, bv, output, !!transposeA, !!transposeB);
      return result;
    },
  };
}

function replaceBackendKernels(native: Addon): void {
  for (const [name, run] of Object.entries(backendKernels(native))) {
    for (const backendName of BACKENDS) {
      const own = tf.getKernel(name, backendName);
      if (!own) continue;
      tf.unregisterKernel(name, backendName);
      tf.registerKernel({
        ...own,
        kernelFunc: (args) => {
          const inputs = Object.values(args.inputs as Record<string, tf.TensorInfo>);
          const storage = STORAGE[backendName](args.backend as tf.KernelBackend);
          // float32 values held as such (the cpu backend may hold a cast's in another array type)
          const native =
            enabled &&
            inputs.every(
              (t) =>
                t.dtype === 'float32' &&
                t.shape.length > 0 &&
                size(t.shape) > 0 &&
                storage.view(t) instanceof Float32Array,
            );
          const result = native
            ? run(args.inputs as Record<string, tf.TensorInfo>, args.attrs ?? {}, storage)
            : undefined;
          return result ?? own.kernelFunc(args);
        },
      });
    }
  }
}

/**
 * Long-lived weights (a model's parameters and their rule-modified versions) by id: the addon keeps their kernels
 * in its own layout until released. Tensors are immutable, so an id always names the same values.
 */
const longLived = new WeakMap<tf.Tensor, number>();
let nextWeightsId = 1;

export function retainPrepared(ts: Iterable<tf.Tensor>): void {
  for (const t of ts) if (!longLived.has(t)) longLived.set(t, nextWeightsId++);
}

export function releasePrepared(ts: Iterable<tf.Tensor>): void {
  for (const t of ts) {
    const id = longLived.get(t);
    if (id === undefined) continue;
    longLived.delete(t);
    addon?.releaseWeights(id);
  }
}

/**
 * conv(x, w) + bias with the HWIO kernel (in-channels per group); x and the output NCHW when `a.channelsFirst`,
 * else NHWC.
 */
export function nativeConv2d(
  x: tf.Tensor4D,
  w: tf.Tensor4D,
  bias: tf.Tensor | undefined,
  a: LayoutConvAttrs,
): tf.Tensor4D {
  const inputs: tf.NamedTensorMap = bias ? { x, filter: w, bias } : { x, filter: w };
  const attrs = { geometry: geometry(x.shape, w.shape, a), weightsId: longLived.get(w) ?? 0 };
  return tf.engine().runKernel(FORWARD, inputs, attrs as unknown as tf.NamedAttrMap) as tf.Tensor4D;
}

/**
 * The input gradient of conv(·, w) for the output gradient dy; xShape, dy and the result NCHW when
 * `a.channelsFirst`, else NHWC.
 */
export function nativeConv2dInputGrad(
  xShape: readonly number[],
  w: tf.Tensor4D,
  a: LayoutConvAttrs,
  dy: tf.Tensor4D,
): tf.Tensor4D {
  const attrs = { geometry: geometry(xShape, w.shape, a), weightsId: longLived.get(w) ?? 0 };
  return tf.engine().runKernel(BACKWARD_DATA, { dy, filter: w }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor4D;
}

/** a · b + bias (a: [m, k], b: [k, n]), or a · bᵀ (b: [n, k]) with transposeB. */
export function nativeMatMul(
  a: tf.Tensor2D,
  b: tf.Tensor2D,
  bias: tf.Tensor | undefined,
  transposeB = false,
): tf.Tensor2D {
  const inputs: tf.NamedTensorMap = bias ? { a, b, bias } : { a, b };
  return tf.engine().runKernel(MATMUL, inputs, { m: a.shape[0], k: a.shape[1], transposeB }) as tf.Tensor2D;
}

/**
 * The max-pool input gradient, routed to each window's first maximum in row-major order (as PyTorch; padding never
 * wins). x, dy and the result NCHW when `p.channelsFirst`, else NHWC. The output size is dy's: windows may run past
 * the bottom and right edges (ceil mode).
 */
export function nativeMaxPoolBackward(x: tf.Tensor4D, p: LayoutPoolAttrs, dy: tf.Tensor4D): tf.Tensor4D {
  const channelsFirst = p.channelsFirst === true;
  const [n, h, w, c] = channelsFirst ? [x.shape[0], x.shape[2], x.shape[3], x.shape[1]] : x.shape;
  const [ho, wo] = channelsFirst ? [dy.shape[2], dy.shape[3]] : [dy.shape[1], dy.shape[2]];
  const dyc = channelsFirst ? dy.shape[1] : dy.shape[3];
  tf.util.assert(
    dy.shape[0] === n && dyc === c,
    () => `max-pool gradient: dy [${dy.shape}] does not match x [${x.shape}] (${channelsFirst ? 'NCHW' : 'NHWC'})`,
  );
  const geometry = Int32Array.from([
    n,
    h,
    w,
    c,
    ho,
    wo,
    ...p.kernel,
    ...p.strides,
    p.pads[0][0],
    p.pads[1][0],
    channelsFirst ? 1 : 0,
  ]);
  return tf.engine().runKernel(MAX_POOL_BACKWARD, { x, dy }, { geometry } as unknown as tf.NamedAttrMap) as tf.Tensor4D;
}

/** x's values in a strided view of them, as a dense tensor (a stepped slice, evenly spaced indices). */
export function nativeStridedCopy(x: tf.Tensor, view: StridedView): tf.Tensor {
  return tf.engine().runKernel(STRIDED_COPY, { x }, { ...view } as unknown as tf.NamedAttrMap) as tf.Tensor;
}

/** The gradient of nativeStridedCopy: zeros of shape `into`, with dy written into the view. */
export function nativeStridedScatter(dy: tf.Tensor, into: readonly number[], view: StridedView): tf.Tensor {
  const attrs = { ...view, into: [...into] } as unknown as tf.NamedAttrMap;
  return tf.engine().runKernel(STRIDED_SCATTER, { dy }, attrs) as tf.Tensor;
}

/** a · b elementwise, both of one shape. */
export function nativeMultiply(a: tf.Tensor, b: tf.Tensor): tf.Tensor {
  return tf.engine().runKernel(MULTIPLY, { a, b }) as tf.Tensor;
}

/** ca·a + cb·b elementwise, both of one shape. */
export function nativeCombine(a: tf.Tensor, ca: number, b: tf.Tensor, cb: number): tf.Tensor {
  return tf.engine().runKernel(COMBINE, { a, b }, { ca, cb }) as tf.Tensor;
}

/** m·g / (z + ε·sign(z)) with sign(0) = +1 in one pass, m = 1 or the mask [sign·by > 0]; all of one shape. */
export function nativeDivideStabilized(
  g: tf.Tensor,
  z: tf.Tensor,
  epsilon: number,
  mask?: { by: tf.Tensor; sign: 1 | -1 },
): tf.Tensor {
  const inputs: tf.NamedTensorMap = mask ? { g, z, by: mask.by } : { g, z };
  return tf.engine().runKernel(DIVIDE_STABILIZED, inputs, { epsilon, sign: mask?.sign ?? 1 }) as tf.Tensor;
}

/** Σ t in double precision, read in place (no kernel, no copy): the relevance sum of a layer. */
export function nativeSum(t: tf.Tensor): number {
  return addon!.sum(STORAGE[tf.getBackend() as StorageBackend](tf.backend()).view(t));
}
