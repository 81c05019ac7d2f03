import * as tf from '@tensorflow/tfjs-core';
import type { ConvAttrs, GraphNode, OpKind, PoolAttrs } from './graph';
import {
  nativeConv2d,
  nativeConv2dInputGrad,
  nativeKernels,
  nativeMatMul,
  nativeMaxPoolBackward,
  nativeStridedCopy,
  nativeStridedScatter,
  rowMajor,
  type StridedView,
} from './native';
import { size } from '../ndarray';
import { tensorsOf } from './param';

/**
 * The engine's ops as a table: each entry's forward in the model's own layout, and, where TF.js autodiff of the
 * forward is not what PyTorch computes (max-pool ties, clip at its bounds) or is slow, its vector-Jacobian product.
 */
export type Forward = (node: GraphNode, inputs: tf.Tensor[], params: Record<string, tf.Tensor>) => tf.Tensor;

/** Vector-Jacobian product: the gradient at each input, given the gradient at the output. */
export type Vjp = (
  node: GraphNode,
  inputs: tf.Tensor[],
  params: Record<string, tf.Tensor>,
  dy: tf.Tensor,
) => tf.Tensor[];

export interface OpImpl {
  forward: Forward;
  /** a faster or exact VJP; otherwise TF.js autodiff of `forward` */
  vjp?: Vjp;
  /** the output shape from the input shapes, without running anything: loading a model computes no tensors */
  shape: (node: GraphNode, inputs: number[][]) => number[];
}

/** Output shape of a convolution or pooling window over [n, c, h, w] (or [n, h, w, c]). */
function windowShape(
  [n, a, b, c]: number[],
  channelsFirst: boolean | undefined,
  channels: number,
  kernel: number[],
  strides: number[],
  pads: [number, number][],
  dilations = [1, 1],
  ceil?: boolean,
): number[] {
  const [h, w] = channelsFirst ? [b, c] : [a, b];
  const [ho, wo] = [0, 1].map(
    (i) => poolExtent([h, w][i], dilations[i] * (kernel[i] - 1) + 1, strides[i], pads[i], ceil).out,
  );
  return channelsFirst ? [n, channels, ho, wo] : [n, ho, wo, channels];
}
const sameShape = (_n: GraphNode, [x]: number[][]) => x;

/** Batch size of the forward pass under way, for shapes that a dynamic batch axis scales (`batchDims`). */
let runBatch = 1;
export function setRunBatch(batch: number): void {
  runBatch = batch;
}

const TO_NHWC = [0, 2, 3, 1];
const TO_NCHW = [0, 3, 1, 2];
const toNhwc = (t: tf.Tensor, channelsFirst?: boolean) => (channelsFirst ? tf.transpose(t, TO_NHWC) : t) as tf.Tensor4D;
const fromNhwc = (t: tf.Tensor, channelsFirst?: boolean) =>
  (channelsFirst ? tf.transpose(t, TO_NCHW) : t) as tf.Tensor4D;
const nhwcShape = (s: readonly number[], channelsFirst?: boolean) =>
  channelsFirst ? [s[0], s[2], s[3], s[1]] : [...s];

function explicitPad(
  pads: [[number, number], [number, number]],
): [[number, number], [number, number], [number, number], [number, number]] {
  return [[0, 0], pads[0], pads[1], [0, 0]];
}

function addBias(y: tf.Tensor, bias: tf.Tensor | undefined): tf.Tensor {
  return bias ? tf.add(y, bias) : y;
}

/** Channels-last convolution with TF.js kernels (groups by splitting, depthwise by its own kernel). */
function conv2dNhwc(x: tf.Tensor4D, w: tf.Tensor4D, a: ConvAttrs): tf.Tensor4D {
  const inC = x.shape[3];
  if (a.groups === 1) {
    return tf.conv2d(x, w, a.strides, explicitPad(a.pads), 'NHWC', a.dilations);
  }
  if (a.groups === inC && w.shape[2] === 1) {
    const mult = w.shape[3] / inC;
    const dw = tf.reshape(w, [w.shape[0], w.shape[1], inC, mult]) as tf.Tensor4D;
    return tf.depthwiseConv2d(x, dw, a.strides, explicitPad(a.pads), 'NHWC', a.dilations);
  }
  const xs = tf.split(x, a.groups, 3) as tf.Tensor4D[];
  const ws = tf.split(w, a.groups, 3) as tf.Tensor4D[];
  return tf.concat(
    xs.map((xi, i) => tf.conv2d(xi, ws[i], a.strides, explicitPad(a.pads), 'NHWC', a.dilations)),
    3,
  );
}

/** Inserts (stride − 1) zeros between neighbouring rows and columns (two 4-D pads: wasm pads 6-D slowly). */
function dilateSpatial(dy: tf.Tensor4D, strides: [number, number]): tf.Tensor4D {
  const [sh, sw] = strides;
  if (sh === 1 && sw === 1) return dy;
  const [n, h, w, c] = dy.shape;
  const rows = tf.pad(tf.reshape(dy, [n * h, 1, w, c]), [
    [0, 0],
    [0, sh - 1],
    [0, 0],
    [0, 0],
  ]);
  const cols = tf.pad(tf.reshape(rows, [n * h * sh, w, 1, c]), [
    [0, 0],
    [0, 0],
    [0, sw - 1],
    [0, 0],
  ]);
  const full = tf.reshape(cols, [n, h * sh, w * sw, c]);
  return tf.slice(full, [0, 0, 0, 0], [n, (h - 1) * sh + 1, (w - 1) * sw + 1, c]) as tf.Tensor4D;
}

/**
 * The kernel rotated by 180° in space: its kh·kw slices of in×out weights in reverse order. Copied block by block
 * on the JS side, which is far faster than the backends' Reverse or Gather kernels; nothing to do for 1×1.
 */
function flipSpatial(w: tf.Tensor4D): tf.Tensor4D {
  const [kh, kw, ci, co] = w.shape;
  const taps = kh * kw;
  if (taps === 1) return w;
  const src = w.dataSync() as Float32Array;
  const out = new Float32Array(src.length);
  const block = ci * co;
  for (let t = 0; t < taps; t++) out.set(src.subarray((taps - 1 - t) * block, (taps - t) * block), t * block);
  return tf.tensor4d(out, w.shape);
}

/**
 * Channels-last input gradient of a convolution as a forward convolution of the (dilated, padded) output gradient
 * with the spatially flipped kernel: much faster than conv2DBackpropInput on wasm, and the same sum.
 */
function conv2dInputGradNhwc(xShape: number[], w: tf.Tensor4D, a: ConvAttrs, dy: tf.Tensor4D): tf.Tensor4D {
  const [kh, kw] = [w.shape[0], w.shape[1]];
  const [dh, dw] = a.dilations;
  const span = [dh * (kh - 1), dw * (kw - 1)];
  // a 1×1 kernel is pointwise: apply it before spreading the gradient over the strided grid (stride² less work)
  const pointwise = kh === 1 && kw === 1 && a.groups === 1;
  const d = dilateSpatial(
    pointwise ? tf.conv2d(dy, tf.transpose(w, [0, 1, 3, 2]) as tf.Tensor4D, 1, 'valid', 'NHWC') : dy,
    a.strides,
  );
  const before = [span[0] - a.pads[0][0], span[1] - a.pads[1][0]];
  const after = [xShape[1] + span[0] - before[0] - d.shape[1], xShape[2] + span[1] - before[1] - d.shape[2]];
  // Cropping (negative padding) happens when padding exceeds the kernel span: slice first, then pad.
  const crop = [Math.max(0, -before[0]), Math.max(0, -before[1]), Math.max(0, -after[0]), Math.max(0, -after[1])];
  const cropped = tf.slice(
    d,
    [0, crop[0], crop[1], 0],
    [-1, d.shape[1] - crop[0] - crop[2], d.shape[2] - crop[1] - crop[3], -1],
  );
  const padded = tf.pad(cropped, [
    [0, 0],
    [Math.max(0, before[0]), Math.max(0, after[0])],
    [Math.max(0, before[1]), Math.max(0, after[1])],
    [0, 0],
  ]);
  if (pointwise) return padded as tf.Tensor4D;
  const flipped = flipSpatial(w);
  const inC = xShape[3];
  if (a.groups === 1) {
    return tf.conv2d(
      padded as tf.Tensor4D,
      tf.transpose(flipped, [0, 1, 3, 2]) as tf.Tensor4D,
      1,
      'valid',
      'NHWC',
      a.dilations,
    );
  }
  if (a.groups === inC && w.shape[2] === 1 && w.shape[3] === inC) {
    return tf.depthwiseConv2d(
      padded as tf.Tensor4D,
      tf.reshape(flipped, [kh, kw, inC, 1]) as tf.Tensor4D,
      1,
      'valid',
      'NHWC',
      a.dilations,
    );
  }
  const ds = tf.split(padded, a.groups, 3) as tf.Tensor4D[];
  const ws = tf.split(flipped, a.groups, 3) as tf.Tensor4D[];
  return tf.concat(
    ds.map((di, i) => tf.conv2d(di, tf.transpose(ws[i], [0, 1, 3, 2]) as tf.Tensor4D, 1, 'valid', 'NHWC', a.dilations)),
    3,
  );
}

/**
 * Output size of a pooling window along one axis, and how far its last window hangs over the far edge (ceil
 * mode), as PyTorch computes it: a last window that would start in the padding is dropped.
 */
function poolExtent(
  size: number,
  kernel: number,
  stride: number,
  [before, after]: [number, number],
  ceil?: boolean,
): { out: number; overhang: number } {
  const span = size + before + after - kernel;
  let out = (ceil ? Math.ceil(span / stride) : Math.floor(span / stride)) + 1;
  if (ceil && (out - 1) * stride >= size + before) out--;
  return { out, overhang: Math.max(0, (out - 1) * stride + kernel - (size + before + after)) };
}

/** The explicit pads plus the ceil-mode overhang at the bottom and the right. */
function poolPads(
  p: PoolAttrs,
  h: number,
  w: number,
): { pads: [[number, number], [number, number]]; overhang: boolean } {
  const rows = poolExtent(h, p.kernel[0], p.strides[0], p.pads[0], p.ceilMode);
  const cols = poolExtent(w, p.kernel[1], p.strides[1], p.pads[1], p.ceilMode);
  return {
    pads: [
      [p.pads[0][0], p.pads[0][1] + rows.overhang],
      [p.pads[1][0], p.pads[1][1] + cols.overhang],
    ],
    overhang: rows.overhang + cols.overhang > 0,
  };
}

function poolNhwc(x: tf.Tensor4D, p: PoolAttrs, kind: 'max' | 'avg'): tf.Tensor4D {
  const { pads, overhang } = poolPads(p, x.shape[1], x.shape[2]);
  const padded = pads.flat().some((v) => v > 0);
  if (kind === 'max') {
    const xp = padded ? tf.pad(x, explicitPad(pads), -Infinity) : x;
    return tf.maxPool(xp as tf.Tensor4D, p.kernel, p.strides, 'valid');
  }
  if (!padded) return tf.avgPool(x, p.kernel, p.strides, 'valid');
  const mean = tf.avgPool(tf.pad(x, explicitPad(pads)) as tf.Tensor4D, p.kernel, p.strides, 'valid');
  if (p.countIncludePad && !overhang) return mean;
  // the divisor: window cells inside the input, plus the explicit padding when it counts (never the overhang)
  const ones = tf.onesLike(tf.slice(x, [0, 0, 0, 0], [1, -1, -1, 1]));
  const counted = p.countIncludePad ? tf.pad(ones, explicitPad(p.pads), 1) : ones;
  const extra: [[number, number], [number, number]] = p.countIncludePad
    ? [
        [0, pads[0][1] - p.pads[0][1]],
        [0, pads[1][1] - p.pads[1][1]],
      ]
    : [
        [pads[0][0], pads[0][1]],
        [pads[1][0], pads[1][1]],
      ];
  const counts = tf.avgPool(tf.pad(counted, explicitPad(extra)) as tf.Tensor4D, p.kernel, p.strides, 'valid');
  return tf.div(mean, counts);
}

/**
 * Max-pool input gradient routed to the first maximum of each window in row-major order, as PyTorch does (the
 * wasm kernel breaks ties, e.g. all-zero windows after a ReLU, differently); padding never wins. A plain loop over
 * the values: far faster here than composing it from backend ops.
 */
function maxPoolInputGrad(x: tf.Tensor4D, p: PoolAttrs, dy: tf.Tensor4D): tf.Tensor4D {
  const cf = p.channelsFirst;
  const [n, h, w, c] = nhwcShape(x.shape, cf);
  const [, ho, wo] = nhwcShape(dy.shape, cf);
  const [kh, kw] = p.kernel;
  const [sh, sw] = p.strides;
  const [top, left] = [p.pads[0][0], p.pads[1][0]];
  // element strides of (batch, row, column, channel) in the model's layout
  const [sb, si, sj, sk] = cf ? [c * h * w, w, 1, h * w] : [h * w * c, w * c, c, 1];
  const [ob, oi_, oj_, ok] = cf ? [c * ho * wo, wo, 1, ho * wo] : [ho * wo * c, wo * c, c, 1];
  const xv = x.dataSync();
  const dyv = dy.dataSync();
  const dx = new Float32Array(xv.length);
  for (let b = 0; b < n; b++) {
    for (let k = 0; k < c; k++) {
      for (let oi = 0; oi < ho; oi++) {
        for (let oj = 0; oj < wo; oj++) {
          let best = -1;
          let bestValue = 0;
          for (let di = 0; di < kh; di++) {
            const i = oi * sh + di - top;
            if (i < 0 || i >= h) continue;
            for (let dj = 0; dj < kw; dj++) {
              const j = oj * sw + dj - left;
              if (j < 0 || j >= w) continue;
              const at = b * sb + i * si + j * sj + k * sk;
              if (best < 0 || xv[at] > bestValue) {
                best = at;
                bestValue = xv[at];
              }
            }
          }
          if (best >= 0) dx[best] += dyv[b * ob + oi * oi_ + oj * oj_ + k * ok];
        }
      }
    }
  }
  return tf.tensor(dx, x.shape) as tf.Tensor4D;
}

/** Resolves a reshape target: 0 copies the input's dimension (ONNX), −1 takes the rest; batch entries scale. */
function resolveShape(node: GraphNode, inShape: readonly number[]): number[] {
  const { shape = [], batchDims = [] } = node.attrs;
  return shape.map((d, i) =>
    batchDims.includes(i) ? d * runBatch : d === 0 && node.op === 'reshape' ? inShape[i] : d,
  );
}

/** A reshape's target with −1 resolved; an error if the element counts differ. */
function reshapeShape(node: GraphNode, x: readonly number[]): number[] {
  const target = resolveShape(node, x);
  const known = size(target.filter((d) => d !== -1));
  const free = target.indexOf(-1);
  if (free >= 0) target[free] = size(x) / known;
  if (!Number.isInteger(target[free] ?? 0) || size(target) !== size(x))
    throw new Error(`cannot reshape [${x}] to [${resolveShape(node, x)}]`);
  return target;
}

/** Expand: the input and the target broadcast together (ONNX Expand is bidirectional). */
function expandShape(node: GraphNode, x: readonly number[]): number[] {
  const target = resolveShape(node, x);
  const rank = Math.max(target.length, x.length);
  const xs = [...Array<number>(rank - x.length).fill(1), ...x];
  const ts = [...Array<number>(rank - target.length).fill(1), ...target];
  return broadcastShape([xs, ts]);
}

/** The shape after reducing `axes` (all when not given), keeping them as 1 or dropping them. */
function reducedShape(x: readonly number[], axes: number[] | undefined, keepDims: boolean): number[] {
  const reduced = (axes ?? x.map((_, i) => i)).map((a) => positiveAxis(a, x.length));
  return x.flatMap((d, i) => (!reduced.includes(i) ? [d] : keepDims ? [1] : []));
}

/** Batched matrix product: [..., m, k] · [..., k, n], the leading axes broadcast. */
function matMulShape(a: number[], b: number[]): number[] {
  if (a.length < 2 || b.length < 2)
    throw new Error('MatMul of a vector is not supported (both operands need rank ≥ 2)');
  if (a[a.length - 1] !== b[b.length - 2])
    throw new Error(`the operands' inner dimensions differ (${a[a.length - 1]} and ${b[b.length - 2]})`);
  return [...broadcastShape([a.slice(0, -2), b.slice(0, -2)]), a[a.length - 2], b[b.length - 1]];
}

function concatShape(node: GraphNode, shapes: number[][]): number[] {
  const axis = positiveAxis(node.attrs.axis!, shapes[0].length);
  for (const s of shapes)
    if (s.length !== shapes[0].length || s.some((d, i) => i !== axis && d !== shapes[0][i]))
      throw new Error(`operands [${shapes[0]}] and [${s}] differ off the concatenation axis ${axis}`);
  return shapes[0].map((d, i) => (i === axis ? shapes.reduce((t, s) => t + s[axis], 0) : d));
}

function gatherShape(node: GraphNode, x: number[]): number[] {
  const axis = positiveAxis(node.attrs.axis ?? 0, x.length);
  const indices = node.attrs.indices!;
  if (indices.some((i) => i < -x[axis] || i >= x[axis]))
    throw new Error(`an index is out of range for axis ${axis} of length ${x[axis]}`);
  return [...x.slice(0, axis), ...(node.attrs.indexShape ?? [indices.length]), ...x.slice(axis + 1)];
}

/**
 * The operands of a node in the file's order: data inputs fill the positions that are not constants (constants
 * are params `input0`, `input1`, …).
 */
function operands(node: GraphNode, inputs: tf.Tensor[], params: Record<string, tf.Tensor>): tf.Tensor[] {
  const out: tf.Tensor[] = [];
  let next = 0;
  const arity = inputs.length + Object.keys(params).filter((k) => k.startsWith('input')).length;
  for (let i = 0; i < arity; i++) out.push(params[`input${i}`] ?? inputs[next++]);
  return out;
}

/** The shapes of a node's operands in the file's order, as `operands` orders the tensors. */
function operandShapes(node: GraphNode, inputs: number[][]): number[][] {
  const out: number[][] = [];
  let next = 0;
  const arity = inputs.length + Object.keys(node.params).filter((k) => k.startsWith('input')).length;
  for (let i = 0; i < arity; i++) out.push(node.params[`input${i}`]?.shape.slice() ?? inputs[next++]);
  return out;
}

/** NumPy broadcasting of several shapes (an error names the two that do not broadcast). */
const broadcastShape = (shapes: number[][]) =>
  shapes.reduce((a, b) => tf.broadcast_util.assertAndGetBroadcastShape(a, b));

/** An op on the first operand; its shape by default that operand's (elementwise). */
const unary = (
  f: (x: tf.Tensor, node: GraphNode) => tf.Tensor,
  shape: (x: number[], node: GraphNode) => number[] = (x) => x,
): OpImpl => ({
  forward: (n, xs, p) => f(operands(n, xs, p)[0], n),
  shape: (n, xs) => shape(operandShapes(n, xs)[0], n),
});
/** An op on two operands; its shape by default theirs broadcast (elementwise). */
const binary = (
  f: (a: tf.Tensor, b: tf.Tensor) => tf.Tensor,
  shape: (a: number[], b: number[]) => number[] = (a, b) => broadcastShape([a, b]),
): OpImpl => ({
  forward: (n, xs, p) => {
    const [a, b] = operands(n, xs, p);
    return f(a, b);
  },
  shape: (n, xs) => {
    const [a, b] = operandShapes(n, xs);
    return shape(a, b);
  },
});
const positiveAxis = (axis: number, rank: number) => (axis < 0 ? axis + rank : axis);

/** Mean and variance over the axes from `axis` on, as PyTorch's LayerNorm normalises (biased variance). */
function layerNorm(x: tf.Tensor, axis: number, epsilon: number, scale?: tf.Tensor, bias?: tf.Tensor): tf.Tensor {
  const axes = Array.from({ length: x.rank - positiveAxis(axis, x.rank) }, (_, i) => positiveAxis(axis, x.rank) + i);
  const mean = tf.mean(x, axes, true);
  const centred = tf.sub(x, mean);
  const variance = tf.mean(tf.square(centred), axes, true);
  const y = tf.div(centred, tf.sqrt(tf.add(variance, epsilon)));
  return addBias(scale ? tf.mul(y, scale) : y, bias);
}

/** ONNX Slice: for each axis the source indices it keeps (clamped as ONNX says; a negative step walks backwards). */
function sliceIndices(shape: readonly number[], n: GraphNode): number[][] {
  const { starts = [], ends = [], axes = [], steps = [] } = n.attrs;
  const picked = shape.map((d) => Array.from({ length: d }, (_, i) => i));
  axes.forEach((axisIn, i) => {
    const axis = positiveAxis(axisIn, shape.length);
    const dim = shape[axis];
    const step = steps[i] ?? 1;
    const clamp = (v: number, lo: number, hi: number) => Math.min(Math.max(v < 0 ? v + dim : v, lo), hi);
    const s = step > 0 ? clamp(starts[i], 0, dim) : clamp(starts[i], 0, dim - 1);
    const e = step > 0 ? clamp(ends[i], 0, dim) : clamp(ends[i], -1, dim - 1);
    picked[axis] = Array.from({ length: Math.max(0, Math.ceil((e - s) / step)) }, (_, k) => s + k * step);
  });
  return picked;
}

const contiguous = (p: number[]) => p.every((v, k) => v === p[0] + k);

/** The kept indices as a strided view of x's values, when on every axis they are evenly spaced and ascending. */
function stridedView(shape: readonly number[], picked: number[][]): StridedView | undefined {
  const dense = rowMajor(shape);
  const view: StridedView = { shape: picked.map((p) => p.length), strides: [], offset: 0 };
  for (const [a, p] of picked.entries()) {
    const step = p.length > 1 ? p[1] - p[0] : 1;
    if (p.length === 0 || step < 1 || !p.every((v, k) => v === p[0] + k * step)) return undefined;
    view.offset += p[0] * dense[a];
    view.strides.push(step * dense[a]);
  }
  return view;
}

/**
 * x at the kept indices of each axis (a Slice, a Gather): a strided copy where they are evenly spaced (native
 * kernels; the backend's slice is slower), else a contiguous block where every axis keeps a run, else gathers.
 */
function pick(x: tf.Tensor, picked: number[][]): tf.Tensor {
  const view = x.dtype === 'float32' && nativeKernels() ? stridedView(x.shape, picked) : undefined;
  if (view) return nativeStridedCopy(x, view);
  if (picked.every(contiguous))
    return tf.slice(
      x,
      picked.map((p) => p[0] ?? 0),
      picked.map((p) => p.length),
    );
  let y = tf.slice(
    x,
    picked.map((p) => (contiguous(p) ? (p[0] ?? 0) : 0)),
    picked.map((p, a) => (contiguous(p) ? p.length : x.shape[a])),
  );
  picked.forEach((p, a) => {
    if (!contiguous(p)) y = tf.gather(y, tf.tensor1d(p, 'int32'), a);
  });
  return y;
}

/**
 * pick's gradient: each output element's gradient back at its source, added where an index repeats. A padding
 * for a block, a strided scatter (native kernels), else a JS loop over the values.
 */
function pickGrad(x: tf.Tensor, picked: number[][], dy: tf.Tensor): tf.Tensor {
  if (picked.every(contiguous) && dy.size > 0)
    return tf.pad(
      dy,
      picked.map((p, a) => [p[0], x.shape[a] - p[0] - p.length]),
    );
  const view = dy.dtype === 'float32' && nativeKernels() ? stridedView(x.shape, picked) : undefined;
  if (view) return nativeStridedScatter(dy, x.shape, view);
  // the trailing axes kept whole move as one block
  let whole = x.rank;
  while (whole > 0 && picked[whole - 1].length === x.shape[whole - 1] && contiguous(picked[whole - 1])) whole--;
  const block = size(x.shape.slice(whole));
  const strides = rowMajor(x.shape);
  const g = dy.dataSync();
  const dx = new Float32Array(x.size);
  let k = 0;
  const walk = (axis: number, offset: number) => {
    if (axis === whole) {
      for (let i = 0; i < block; i++) dx[offset + i] += g[k++];
      return;
    }
    for (const i of picked[axis]) walk(axis + 1, offset + i * strides[axis]);
  };
  walk(0, 0);
  return tf.tensor(dx, x.shape);
}

/** The indices a Gather with constant indices keeps, per axis of its input. */
function gatherPicked(n: GraphNode, shape: readonly number[]): number[][] {
  const axis = positiveAxis(n.attrs.axis ?? 0, shape.length);
  const idx = n.attrs.indices!.map((i) => (i < 0 ? i + shape[axis] : i));
  return shape.map((d, a) => (a === axis ? idx : Array.from({ length: d }, (_, i) => i)));
}

/** An einsum equation's labels per operand and of the output (the supported forms only). */
function einsumLabels(equation: string, operandCount: number): { labels: string[][]; out: string[] } {
  const [lhs, rhs] = equation.replace(/\s/g, '').split('->');
  const ins = lhs.split(',');
  if (ins.length !== operandCount || ins.length > 2 || rhs === undefined || lhs.includes('.'))
    throw new Error(`einsum "${equation}" is not supported (one or two operands, explicit output, no ellipsis)`);
  return { labels: ins.map((s) => [...s]), out: [...rhs] };
}

function einsumShape(equation: string, shapes: number[][]): number[] {
  const { labels, out } = einsumLabels(equation, shapes.length);
  const sizes = new Map<string, number>();
  labels.forEach((ls, k) => {
    if (ls.length !== shapes[k].length)
      throw new Error(`einsum "${equation}": operand ${k} has rank ${shapes[k].length}, not ${ls.length}`);
    ls.forEach((l, i) => {
      if (sizes.has(l) && sizes.get(l) !== shapes[k][i])
        throw new Error(`einsum "${equation}": label ${l} is ${sizes.get(l)} and ${shapes[k][i]} long`);
      sizes.set(l, shapes[k][i]);
    });
  });
  return out.map((l) => {
    if (!sizes.has(l)) throw new Error(`einsum "${equation}": output label ${l} is in no operand`);
    return sizes.get(l)!;
  });
}

/**
 * Einsum over one or two operands as transposes, reshapes and one batched matrix product (TF.js's einsum has no
 * gradient): labels in both operands and the output are batch axes, in both but not the output contracted.
 */
function einsum(equation: string, xs: tf.Tensor[]): tf.Tensor {
  const { labels, out } = einsumLabels(equation, xs.length);
  // sum out labels that appear in one operand only and not in the output
  const reduced = xs.map((x, k) => {
    const other = labels[1 - k] ?? [];
    const gone = labels[k].flatMap((l, i) => (!out.includes(l) && !other.includes(l) ? [i] : []));
    labels[k] = labels[k].filter((_, i) => !gone.includes(i));
    return gone.length ? tf.sum(x, gone) : x;
  });
  const size = (k: number, l: string) => reduced[k].shape[labels[k].indexOf(l)];
  const prod = (k: number, ls: string[]) => ls.reduce((s, l) => s * size(k, l), 1);
  if (reduced.length === 1)
    return tf.transpose(
      reduced[0],
      out.map((l) => labels[0].indexOf(l)),
    );
  const [a, b] = labels;
  const batch = a.filter((l) => b.includes(l) && out.includes(l));
  const contracted = a.filter((l) => b.includes(l) && !out.includes(l));
  const freeA = a.filter((l) => !b.includes(l));
  const freeB = b.filter((l) => !a.includes(l));
  const am = tf.reshape(
    tf.transpose(
      reduced[0],
      [...batch, ...freeA, ...contracted].map((l) => a.indexOf(l)),
    ),
    [prod(0, batch), prod(0, freeA), prod(0, contracted)],
  );
  const bm = tf.reshape(
    tf.transpose(
      reduced[1],
      [...batch, ...contracted, ...freeB].map((l) => b.indexOf(l)),
    ),
    [prod(1, batch), prod(1, contracted), prod(1, freeB)],
  );
  const order = [...batch, ...freeA, ...freeB];
  const y = tf.reshape(
    tf.matMul(am as tf.Tensor3D, bm as tf.Tensor3D),
    order.map((l) => (a.includes(l) ? size(0, l) : size(1, l))),
  );
  return tf.transpose(
    y,
    out.map((l) => order.indexOf(l)),
  );
}

/** A dense node's [in, out] sizes, whichever way its weight is kept. */
export function denseSizes(node: GraphNode, weightShape: readonly number[]): [k: number, units: number] {
  return node.attrs.weightOutIn ? [weightShape[1], weightShape[0]] : [weightShape[0], weightShape[1]];
}

export const OPS: Record<OpKind, OpImpl> = {
  conv2d: {
    shape: (n, [x]) => {
      const a = n.attrs.conv!;
      const w = n.params.weight.shape as number[];
      if ((a.channelsFirst ? x[1] : x[3]) !== w[2] * a.groups)
        throw new Error(`the input has ${a.channelsFirst ? x[1] : x[3]} channels, the kernel takes ${w[2] * a.groups}`);
      return windowShape(x, a.channelsFirst, w[3], [w[0], w[1]], a.strides, a.pads, a.dilations);
    },
    forward: (n, [x], p) => {
      const a = n.attrs.conv!;
      if (nativeKernels()) return nativeConv2d(x as tf.Tensor4D, p.weight as tf.Tensor4D, p.bias, a);
      const bias = p.bias && a.channelsFirst ? tf.reshape(p.bias, [-1, 1, 1]) : p.bias;
      return addBias(
        fromNhwc(conv2dNhwc(toNhwc(x, a.channelsFirst), p.weight as tf.Tensor4D, a), a.channelsFirst),
        bias,
      );
    },
    vjp: (n, [x], p, dy) => {
      const a = n.attrs.conv!;
      if (nativeKernels()) return [nativeConv2dInputGrad(x.shape, p.weight as tf.Tensor4D, a, dy as tf.Tensor4D)];
      return [
        fromNhwc(
          conv2dInputGradNhwc(
            nhwcShape(x.shape, a.channelsFirst),
            p.weight as tf.Tensor4D,
            a,
            toNhwc(dy, a.channelsFirst),
          ),
          a.channelsFirst,
        ),
      ];
    },
  },
  // x · W + b over the last axis, for inputs of any rank (PyTorch's Linear)
  dense: {
    shape: (n, [x]) => {
      const [k, units] = denseSizes(n, n.params.weight.shape);
      if (x[x.length - 1] !== k) throw new Error(`the input has ${x[x.length - 1]} features, the weight takes ${k}`);
      return [...x.slice(0, -1), units];
    },
    forward: (n, [x], p) => {
      const [k, units] = denseSizes(n, p.weight.shape);
      const outIn = n.attrs.weightOutIn === true;
      const x2 = tf.reshape(x, [-1, k]) as tf.Tensor2D;
      const w = p.weight as tf.Tensor2D;
      const y = nativeKernels() ? nativeMatMul(x2, w, p.bias, outIn) : addBias(tf.matMul(x2, w, false, outIn), p.bias);
      return x.rank === 2 ? y : tf.reshape(y, [...x.shape.slice(0, -1), units]);
    },
    vjp: (n, [x], p, dy) => {
      const [, units] = denseSizes(n, p.weight.shape);
      const outIn = n.attrs.weightOutIn === true;
      const dy2 = tf.reshape(dy, [-1, units]) as tf.Tensor2D;
      const w = p.weight as tf.Tensor2D;
      // wasm's matMul with transposeB is several times slower than a transpose and a plain product
      const dx = nativeKernels()
        ? nativeMatMul(dy2, w, undefined, !outIn)
        : tf.matMul(dy2, outIn ? w : (tf.transpose(w) as tf.Tensor2D));
      return [x.rank === 2 ? dx : tf.reshape(dx, x.shape)];
    },
  },
  matMul: binary((a, b) => tf.matMul(a, b), matMulShape),
  relu: unary((x) => tf.relu(x)),
  leakyRelu: unary((x, n) => tf.leakyRelu(x, n.attrs.alpha ?? 0.01)),
  elu: unary((x, n) =>
    (n.attrs.alpha ?? 1) === 1
      ? tf.elu(x)
      : tf.where(tf.greater(x, 0), x, tf.mul(n.attrs.alpha!, tf.sub(tf.exp(x), 1))),
  ),
  tanh: unary((x) => tf.tanh(x)),
  sigmoid: unary((x) => tf.sigmoid(x)),
  // max(0, min(1, αx + β)); PyTorch's gradient is zero at the bounds, as autodiff of the clip below is not: exact
  hardSigmoid: {
    shape: sameShape,
    forward: (n, [x]) => tf.clipByValue(tf.add(tf.mul(x, n.attrs.alpha ?? 0.2), n.attrs.beta ?? 0.5), 0, 1),
    vjp: (n, [x], _p, dy) => {
      const z = tf.add(tf.mul(x, n.attrs.alpha ?? 0.2), n.attrs.beta ?? 0.5);
      return [
        tf.mul(tf.mul(dy, tf.cast(tf.logicalAnd(tf.greater(z, 0), tf.less(z, 1)), 'float32')), n.attrs.alpha ?? 0.2),
      ];
    },
  },
  // x · hardsigmoid(x) with α = 1/6, β = 1/2; PyTorch's gradient: 0 below −3, x/3 + 1/2 up to 3 (inclusive),
  // 1 above
  hardSwish: {
    shape: sameShape,
    forward: (_n, [x]) => tf.mul(x, tf.clipByValue(tf.add(tf.div(x, 6), 0.5), 0, 1)),
    vjp: (_n, [x], _p, dy) => [
      tf.mul(
        dy,
        tf.where(
          tf.less(x, -3),
          tf.zerosLike(x),
          tf.where(tf.lessEqual(x, 3), tf.add(tf.div(x, 3), 0.5), tf.onesLike(x)),
        ),
      ),
    ],
  },
  // PyTorch's hardtanh/ReLU6 gradient passes strictly inside the bounds
  clip: {
    shape: sameShape,
    forward: (n, [x]) => tf.clipByValue(x, n.attrs.min ?? -Infinity, n.attrs.max ?? Infinity),
    vjp: (n, [x], _p, dy) => {
      const inside = tf.logicalAnd(tf.greater(x, n.attrs.min ?? -Infinity), tf.less(x, n.attrs.max ?? Infinity));
      return [tf.mul(dy, tf.cast(inside, 'float32'))];
    },
  },
  erf: unary((x) => tf.erf(x)),
  sqrt: unary((x) => tf.sqrt(x)),
  exp: unary((x) => tf.exp(x)),
  neg: unary((x) => tf.neg(x)),
  softmax: unary((x, n) => {
    const axis = positiveAxis(n.attrs.axis ?? -1, x.rank);
    if (axis === x.rank - 1) return tf.softmax(x);
    const perm = x.shape.map((_, i) => (i === axis ? x.rank - 1 : i === x.rank - 1 ? axis : i));
    return tf.transpose(tf.softmax(tf.transpose(x, perm)), perm);
  }),
  maxPool: {
    shape: (n, [x]) => {
      const p = n.attrs.pool!;
      return windowShape(
        x,
        p.channelsFirst,
        p.channelsFirst ? x[1] : x[3],
        p.kernel,
        p.strides,
        p.pads,
        [1, 1],
        p.ceilMode,
      );
    },
    forward: (n, [x]) =>
      fromNhwc(poolNhwc(toNhwc(x, n.attrs.pool!.channelsFirst), n.attrs.pool!, 'max'), n.attrs.pool!.channelsFirst),
    vjp: (n, [x], _p, dy) => [
      nativeKernels()
        ? nativeMaxPoolBackward(x as tf.Tensor4D, n.attrs.pool!, dy as tf.Tensor4D)
        : maxPoolInputGrad(x as tf.Tensor4D, n.attrs.pool!, dy as tf.Tensor4D),
    ],
  },
  avgPool: {
    shape: (n, inputs) => OPS.maxPool.shape!(n, inputs),
    forward: (n, [x]) =>
      fromNhwc(poolNhwc(toNhwc(x, n.attrs.pool!.channelsFirst), n.attrs.pool!, 'avg'), n.attrs.pool!.channelsFirst),
  },
  globalAvgPool: {
    shape: (n, [x]) => reducedShape(x, n.attrs.axes, n.attrs.keepDims ?? true),
    forward: (n, [x]) => tf.mean(x, n.attrs.axes!, n.attrs.keepDims ?? true),
    vjp: (n, [x], _p, dy) => {
      const axes = n.attrs.axes!;
      const kept = x.shape.map((d, i) => (axes.includes(i) ? 1 : d));
      return [
        tf.div(
          tf.mul(tf.onesLike(x), tf.reshape(dy, kept)),
          axes.reduce((s, a) => s * x.shape[a], 1),
        ),
      ];
    },
  },
  reduceMean: unary(
    (x, n) => tf.mean(x, n.attrs.axes, n.attrs.keepDims ?? true),
    (x, n) => reducedShape(x, n.attrs.axes, n.attrs.keepDims ?? true),
  ),
  reduceSum: unary(
    (x, n) => tf.sum(x, n.attrs.axes, n.attrs.keepDims ?? true),
    (x, n) => reducedShape(x, n.attrs.axes, n.attrs.keepDims ?? true),
  ),
  batchNorm: {
    shape: sameShape,
    forward: (n, [x], p) => {
      const axis = positiveAxis(n.attrs.axis ?? -1, x.rank);
      const shape = x.shape.map((d, i) => (i === axis ? d : 1));
      const epsilon = n.attrs.epsilon ?? 1e-3;
      if (axis === x.rank - 1) return tf.batchNorm(x, p.mean, p.variance, p.offset, p.scale, epsilon);
      // the backends' batch-norm kernels take the channels from the last axis: per-channel factors elsewhere
      const [mean, variance, offset, scale] = [p.mean, p.variance, p.offset, p.scale].map((t) => tf.reshape(t, shape));
      return tf.add(tf.mul(tf.sub(x, mean), tf.div(scale, tf.sqrt(tf.add(variance, epsilon)))), offset);
    },
  },
  layerNorm: {
    shape: sameShape,
    forward: (n, [x], p) => layerNorm(x, n.attrs.axis ?? -1, n.attrs.epsilon ?? 1e-5, p.scale, p.bias),
  },
  add: {
    shape: (n, xs) => broadcastShape(operandShapes(n, xs)),
    forward: (n, xs, p) => operands(n, xs, p).reduce((a, b) => tf.add(a, b)),
    // each summand's gradient is the output's (autodiff for broadcasting sums)
    vjp: (n, xs, p, dy) =>
      Object.keys(p).length === 0 && xs.every((x) => tf.util.arraysEqual(x.shape, dy.shape))
        ? xs.map(() => dy)
        : tf.grads((...ts: tf.Tensor[]) => OPS.add.forward(n, ts, p))(xs, dy),
  },
  sub: binary((a, b) => tf.sub(a, b)),
  mul: binary((a, b) => tf.mul(a, b)),
  div: binary((a, b) => tf.div(a, b)),
  pow: {
    ...binary((a, b) => tf.pow(a, b)),
    // x² (LayerNorm's variance as PyTorch exports it) as a product: the backend's pow is several times slower
    forward: (n, xs, p) => {
      const [a, b] = operands(n, xs, p);
      return p.input1 === b && b.size === 1 && b.dataSync()[0] === 2 ? tf.square(a) : tf.pow(a, b);
    },
  },
  mod: binary((a, b) => tf.mod(a, b)),
  einsum: {
    shape: (n, xs) => einsumShape(n.attrs.equation!, operandShapes(n, xs)),
    forward: (n, xs, p) => einsum(n.attrs.equation!, operands(n, xs, p)),
  },
  concat: {
    shape: (n, xs) => concatShape(n, operandShapes(n, xs)),
    forward: (n, xs, p) => {
      const all = operands(n, xs, p);
      return tf.concat(all, positiveAxis(n.attrs.axis!, all[0].rank));
    },
    vjp: (n, xs, p, dy) => {
      if (Object.keys(p).length > 0) return tf.grads((...ts: tf.Tensor[]) => OPS.concat.forward(n, ts, p))(xs, dy);
      const axis = positiveAxis(n.attrs.axis!, dy.rank);
      if (!nativeKernels() || dy.dtype !== 'float32')
        return tf.split(
          dy,
          xs.map((x) => x.shape[axis]),
          axis,
        );
      // each part as a strided copy: the backend's split (DenseNet's channel concatenations) is several times slower
      let at = 0;
      return xs.map((x) => {
        const picked = dy.shape.map((d, a) =>
          Array.from({ length: a === axis ? x.shape[a] : d }, (_, i) => i + (a === axis ? at : 0)),
        );
        at += x.shape[axis];
        return pick(dy, picked);
      });
    },
  },
  reshape: unary(
    (x, n) => tf.reshape(x, resolveShape(n, x.shape)),
    (x, n) => reshapeShape(n, x),
  ),
  transpose: unary(
    (x, n) => tf.transpose(x, n.attrs.perm),
    (x, n) => (n.attrs.perm ?? x.map((_, i) => x.length - 1 - i)).map((a) => x[a]),
  ),
  slice: {
    shape: (n, xs) => sliceIndices(operandShapes(n, xs)[0], n).map((p) => p.length),
    forward: (n, xs, p) => {
      const x = operands(n, xs, p)[0];
      return pick(x, sliceIndices(x.shape, n));
    },
    vjp: (n, [x], _p, dy) => [pickGrad(x, sliceIndices(x.shape, n), dy)],
  },
  gather: {
    shape: (n, xs) => gatherShape(n, operandShapes(n, xs)[0]),
    forward: (n, xs, p) => {
      const x = operands(n, xs, p)[0];
      return tf.reshape(pick(x, gatherPicked(n, x.shape)), gatherShape(n, x.shape));
    },
    // the gradient adds each picked slice back where it came from (TF.js's needs a kernel wasm lacks)
    vjp: (n, [x], _p, dy) => {
      const picked = gatherPicked(n, x.shape);
      return [
        pickGrad(
          x,
          picked,
          tf.reshape(
            dy,
            picked.map((p) => p.length),
          ),
        ),
      ];
    },
  },
  expand: unary(
    (x, n) => {
      const target = resolveShape(n, x.shape);
      const rank = Math.max(target.length, x.rank);
      const xs = [...Array(rank - x.rank).fill(1), ...x.shape];
      const ts = [...Array(rank - target.length).fill(1), ...target];
      return tf.broadcastTo(
        tf.reshape(x, xs),
        xs.map((d, i) => Math.max(d, ts[i])),
      );
    },
    (x, n) => expandShape(n, x),
  ),
  where: {
    shape: (n, xs) => broadcastShape(operandShapes(n, xs)),
    forward: (n, xs, p) => {
      const [c, a, b] = operands(n, xs, p);
      const shape = tf.broadcast_util.assertAndGetBroadcastShape(
        tf.broadcast_util.assertAndGetBroadcastShape(c.shape, a.shape),
        b.shape,
      );
      return tf.where(tf.broadcastTo(tf.cast(c, 'bool'), shape), tf.broadcastTo(a, shape), tf.broadcastTo(b, shape));
    },
  },
  identity: { shape: sameShape, forward: (_n, [x]) => x, vjp: (_n, _x, _p, dy) => [dy] },
  pad: unary(
    (x, n) => tf.pad(x, n.attrs.paddings!, n.attrs.value ?? 0),
    (x, n) => x.map((d, i) => d + n.attrs.paddings![i][0] + n.attrs.paddings![i][1]),
  ),
  cast: unary((x, n) => (x.dtype === (n.attrs.dtype ?? 'float32') ? x : tf.cast(x, n.attrs.dtype ?? 'float32'))),
  // constant-only ops (folded at load time)
  range: {
    shape: (n) => {
      const [start, limit, delta] = n.attrs.range!;
      return [Math.max(0, Math.ceil((limit - start) / delta))];
    },
    forward: (n) =>
      tf.range(
        n.attrs.range![0],
        n.attrs.range![1],
        n.attrs.range![2],
        n.attrs.dtype === 'int32' ? 'int32' : 'float32',
      ),
  },
  constantOfShape: {
    shape: (n) => n.attrs.shape!,
    forward: (n) => tf.fill(n.attrs.shape!, n.attrs.value ?? 0, n.attrs.dtype === 'int32' ? 'int32' : 'float32'),
  },
  equal: binary((a, b) => tf.equal(a, b)),
  not: unary((x) => tf.logicalNot(tf.cast(x, 'bool'))),
};

/** Gradient at each input of `node` given `dy`, with the given (possibly modified) parameters. */
export function vjp(
  node: GraphNode,
  inputs: tf.Tensor[],
  params: Record<string, tf.Tensor>,
  dy: tf.Tensor,
): tf.Tensor[] {
  const impl = OPS[node.op];
  if (impl.vjp) return impl.vjp(node, inputs, params, dy);
  const f = (...xs: tf.Tensor[]) => impl.forward(node, xs, params);
  return tf.grads(f)(inputs, dy);
}

/** The node's output shape, computed from its input shapes (an error says why it cannot run on them). */
export function outputShape(node: GraphNode, inputs: number[][]): number[] {
  const shape = OPS[node.op].shape(node, inputs);
  // a kernel larger than its padded input, say: running it would ask the backend for nonsense sizes
  // (a plain error: the loaders name the node and the input shapes)
  if (shape.some((d) => !Number.isInteger(d) || d < 1)) throw new Error(`its output would have shape [${shape}]`);
  return shape;
}

export function forward(
  node: GraphNode,
  inputs: tf.Tensor[],
  params: Record<string, tf.Tensor> = tensorsOf(node.params),
): tf.Tensor {
  return OPS[node.op].forward(node, inputs, params);
}
