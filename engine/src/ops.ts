import * as tf from '@tensorflow/tfjs-core';
import type { ConvAttrs, GraphNode, OpKind, PoolAttrs } from './graph';
import { nativeConv2d, nativeConv2dInputGrad, nativeKernels, nativeMatMul, nativeMaxPoolBackward } from './native';

/** Forward of one node on given inputs and (possibly modified) parameters. Internal layout: channels-last. */
export type Forward = (node: GraphNode, inputs: tf.Tensor[], params: Record<string, tf.Tensor>) => tf.Tensor;

/** Vector-Jacobian product: the gradient at each input, given the gradient at the output. */
export type Vjp = (node: GraphNode, inputs: tf.Tensor[], params: Record<string, tf.Tensor>, dy: tf.Tensor) => tf.Tensor[];

export interface OpImpl {
  forward: Forward;
  /** a faster or backend-independent VJP; otherwise TF.js autodiff of `forward` */
  vjp?: Vjp;
  /** linear in the input given the parameters: LRP rules apply (Zennit's Linear types) */
  linear?: 'conv' | 'dense';
}

function explicitPad(pads: [[number, number], [number, number]]): [[number, number], [number, number], [number, number], [number, number]] {
  return [[0, 0], pads[0], pads[1], [0, 0]];
}

function addBias(y: tf.Tensor, bias: tf.Tensor | undefined): tf.Tensor {
  return bias ? tf.add(y, bias) : y;
}

function conv2dForward(x: tf.Tensor4D, w: tf.Tensor4D, a: ConvAttrs): tf.Tensor4D {
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
  return tf.concat(xs.map((xi, i) => tf.conv2d(xi, ws[i], a.strides, explicitPad(a.pads), 'NHWC', a.dilations)), 3);
}

/** Inserts (stride − 1) zeros between neighbouring rows and columns (two 4-D pads: wasm pads 6-D slowly). */
function dilateSpatial(dy: tf.Tensor4D, strides: [number, number]): tf.Tensor4D {
  const [sh, sw] = strides;
  if (sh === 1 && sw === 1) return dy;
  const [n, h, w, c] = dy.shape;
  const rows = tf.pad(tf.reshape(dy, [n * h, 1, w, c]), [[0, 0], [0, sh - 1], [0, 0], [0, 0]]);
  const cols = tf.pad(tf.reshape(rows, [n * h * sh, w, 1, c]), [[0, 0], [0, 0], [0, sw - 1], [0, 0]]);
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
 * Input gradient of a convolution as a forward convolution of the (dilated, padded) output gradient with the
 * spatially flipped kernel: much faster than conv2DBackpropInput on wasm, and the same sum.
 */
function conv2dInputGrad(xShape: number[], w: tf.Tensor4D, a: ConvAttrs, dy: tf.Tensor4D): tf.Tensor4D {
  const [kh, kw] = [w.shape[0], w.shape[1]];
  const [dh, dw] = a.dilations;
  const span = [dh * (kh - 1), dw * (kw - 1)];
  // a 1×1 kernel is pointwise: apply it before spreading the gradient over the strided grid (stride² less work)
  const pointwise = kh === 1 && kw === 1 && a.groups === 1;
  const d = dilateSpatial(pointwise ? tf.conv2d(dy, tf.transpose(w, [0, 1, 3, 2]) as tf.Tensor4D, 1, 'valid', 'NHWC') : dy, a.strides);
  const before = [span[0] - a.pads[0][0], span[1] - a.pads[1][0]];
  const after = [xShape[1] + span[0] - before[0] - d.shape[1], xShape[2] + span[1] - before[1] - d.shape[2]];
  // Cropping (negative padding) happens when padding exceeds the kernel span: slice first, then pad.
  const crop = [Math.max(0, -before[0]), Math.max(0, -before[1]), Math.max(0, -after[0]), Math.max(0, -after[1])];
  const cropped = tf.slice(d, [0, crop[0], crop[1], 0], [-1, d.shape[1] - crop[0] - crop[2], d.shape[2] - crop[1] - crop[3], -1]);
  const padded = tf.pad(cropped, [[0, 0], [Math.max(0, before[0]), Math.max(0, after[0])], [Math.max(0, before[1]), Math.max(0, after[1])], [0, 0]]);
  if (pointwise) return padded as tf.Tensor4D;
  const flipped = flipSpatial(w);
  const inC = xShape[3];
  if (a.groups === 1) {
    return tf.conv2d(padded as tf.Tensor4D, tf.transpose(flipped, [0, 1, 3, 2]) as tf.Tensor4D, 1, 'valid', 'NHWC', a.dilations);
  }
  if (a.groups === inC && w.shape[2] === 1 && w.shape[3] === inC) {
    return tf.depthwiseConv2d(padded as tf.Tensor4D, tf.reshape(flipped, [kh, kw, inC, 1]) as tf.Tensor4D, 1, 'valid', 'NHWC', a.dilations);
  }
  const ds = tf.split(padded, a.groups, 3) as tf.Tensor4D[];
  const ws = tf.split(flipped, a.groups, 3) as tf.Tensor4D[];
  return tf.concat(ds.map((di, i) => tf.conv2d(di, tf.transpose(ws[i], [0, 1, 3, 2]) as tf.Tensor4D, 1, 'valid', 'NHWC', a.dilations)), 3);
}

function pool(x: tf.Tensor4D, p: PoolAttrs, kind: 'max' | 'avg'): tf.Tensor4D {
  const padded = p.pads.flat().some((v) => v > 0);
  if (kind === 'max') {
    const xp = padded ? tf.pad(x, explicitPad(p.pads), -Infinity) : x;
    return tf.maxPool(xp as tf.Tensor4D, p.kernel, p.strides, 'valid');
  }
  if (!padded) return tf.avgPool(x, p.kernel, p.strides, 'valid');
  const sum = tf.avgPool(tf.pad(x, explicitPad(p.pads)) as tf.Tensor4D, p.kernel, p.strides, 'valid');
  if (p.countIncludePad !== false) return sum;
  const counts = tf.avgPool(tf.pad(tf.onesLike(x), explicitPad(p.pads)) as tf.Tensor4D, p.kernel, p.strides, 'valid');
  return tf.div(sum, counts);
}

/**
 * Max-pool input gradient routed to the first maximum of each window in row-major order, as PyTorch does (the
 * wasm kernel breaks ties, e.g. all-zero windows after a ReLU, differently); padding never wins. A plain loop over
 * the values: far faster here than composing it from backend ops.
 */
function maxPoolInputGrad(x: tf.Tensor4D, p: PoolAttrs, dy: tf.Tensor4D): tf.Tensor4D {
  const [n, h, w, c] = x.shape;
  const [, ho, wo] = dy.shape;
  const [kh, kw] = p.kernel;
  const [sh, sw] = p.strides;
  const [top, left] = [p.pads[0][0], p.pads[1][0]];
  const xv = x.dataSync();
  const dyv = dy.dataSync();
  const dx = new Float32Array(xv.length);
  const best = new Float32Array(c);
  const bestAt = new Int32Array(c);
  for (let b = 0; b < n; b++) {
    for (let oi = 0; oi < ho; oi++) {
      for (let oj = 0; oj < wo; oj++) {
        bestAt.fill(-1);
        for (let di = 0; di < kh; di++) {
          const i = oi * sh + di - top;
          if (i < 0 || i >= h) continue;
          for (let dj = 0; dj < kw; dj++) {
            const j = oj * sw + dj - left;
            if (j < 0 || j >= w) continue;
            const base = ((b * h + i) * w + j) * c;
            for (let k = 0; k < c; k++) {
              const v = xv[base + k];
              if (bestAt[k] < 0 || v > best[k]) {
                best[k] = v;
                bestAt[k] = base + k;
              }
            }
          }
        }
        const o = ((b * ho + oi) * wo + oj) * c;
        for (let k = 0; k < c; k++) if (bestAt[k] >= 0) dx[bestAt[k]] += dyv[o + k];
      }
    }
  }
  return tf.tensor4d(dx, x.shape);
}

/** Resolves a reshape target: 0 copies the input's dimension (ONNX), −1 takes the rest. */
function resolveShape(target: number[], inShape: number[]): number[] {
  return target.map((d, i) => (d === 0 ? inShape[i] : d));
}

export const OPS: Record<OpKind, OpImpl> = {
  conv2d: {
    linear: 'conv',
    forward: (n, [x], p) =>
      nativeKernels()
        ? nativeConv2d(x as tf.Tensor4D, p.weight as tf.Tensor4D, p.bias, n.attrs.conv!)
        : addBias(conv2dForward(x as tf.Tensor4D, p.weight as tf.Tensor4D, n.attrs.conv!), p.bias),
    vjp: (n, [x], p, dy) => [
      nativeKernels()
        ? nativeConv2dInputGrad(x.shape, p.weight as tf.Tensor4D, n.attrs.conv!, dy as tf.Tensor4D)
        : conv2dInputGrad(x.shape, p.weight as tf.Tensor4D, n.attrs.conv!, dy as tf.Tensor4D),
    ],
  },
  dense: {
    linear: 'dense',
    forward: (_n, [x], p) =>
      nativeKernels() ? nativeMatMul(x as tf.Tensor2D, p.weight as tf.Tensor2D, p.bias) : addBias(tf.matMul(x as tf.Tensor2D, p.weight as tf.Tensor2D), p.bias),
    vjp: (_n, _x, p, dy) => [
      nativeKernels() ? nativeMatMul(dy as tf.Tensor2D, p.weight as tf.Tensor2D, undefined, true) : tf.matMul(dy as tf.Tensor2D, p.weight as tf.Tensor2D, false, true),
    ],
  },
  relu: { forward: (_n, [x]) => tf.relu(x) },
  leakyRelu: { forward: (n, [x]) => tf.leakyRelu(x, n.attrs.alpha ?? 0.01) },
  elu: { forward: (_n, [x]) => tf.elu(x) },
  tanh: { forward: (_n, [x]) => tf.tanh(x) },
  sigmoid: { forward: (_n, [x]) => tf.sigmoid(x) },
  softmax: { forward: (_n, [x]) => tf.softmax(x) },
  maxPool: {
    forward: (n, [x]) => pool(x as tf.Tensor4D, n.attrs.pool!, 'max'),
    vjp: (n, [x], _p, dy) => [
      nativeKernels() ? nativeMaxPoolBackward(x as tf.Tensor4D, n.attrs.pool!, dy as tf.Tensor4D) : maxPoolInputGrad(x as tf.Tensor4D, n.attrs.pool!, dy as tf.Tensor4D),
    ],
  },
  avgPool: { forward: (n, [x]) => pool(x as tf.Tensor4D, n.attrs.pool!, 'avg') },
  globalAvgPool: {
    forward: (n, [x]) => tf.mean(x, [1, 2], n.attrs.keepDims ?? true),
    vjp: (_n, [x], _p, dy) => {
      const [b, h, w, c] = x.shape as number[];
      return [tf.div(tf.mul(tf.onesLike(x), tf.reshape(dy, [b, 1, 1, c])), h * w)];
    },
  },
  batchNorm: {
    forward: (n, [x], p) => tf.batchNorm(x, p.mean, p.variance, p.offset, p.scale, n.attrs.epsilon ?? 1e-3),
  },
  add: {
    forward: (_n, xs) => xs.reduce((a, b) => tf.add(a, b)),
    // each summand's gradient is the output's (autodiff for broadcasting sums)
    vjp: (n, xs, p, dy) => (xs.every((x) => tf.util.arraysEqual(x.shape, dy.shape)) ? xs.map(() => dy) : tf.grads((...ts: tf.Tensor[]) => OPS.add.forward(n, ts, p))(xs, dy)),
  },
  concat: {
    forward: (n, xs) => tf.concat(xs, n.attrs.axis!),
    vjp: (n, xs, _p, dy) => tf.split(dy, xs.map((x) => x.shape[n.attrs.axis!]!), n.attrs.axis!),
  },
  reshape: {
    forward: (n, [x]) => {
      const src = n.attrs.fromChannelsLast && x.rank === 4 ? tf.transpose(x, [0, 3, 1, 2]) : x;
      const y = tf.reshape(src, resolveShape(n.attrs.shape!, src.shape));
      return n.attrs.toChannelsLast && y.rank === 4 ? tf.transpose(y, [0, 2, 3, 1]) : y;
    },
  },
  identity: { forward: (_n, [x]) => x, vjp: (_n, _x, _p, dy) => [dy] },
  pad: { forward: (n, [x]) => tf.pad(x, n.attrs.paddings!, n.attrs.value ?? 0) },
};

/** Gradient at each input of `node` given `dy`, with the given (possibly modified) parameters. */
export function vjp(node: GraphNode, inputs: tf.Tensor[], params: Record<string, tf.Tensor>, dy: tf.Tensor): tf.Tensor[] {
  const impl = OPS[node.op];
  if (impl.vjp) return impl.vjp(node, inputs, params, dy);
  const f = (...xs: tf.Tensor[]) => impl.forward(node, xs, params);
  return tf.grads(f)(inputs, dy);
}

export function forward(node: GraphNode, inputs: tf.Tensor[], params: Record<string, tf.Tensor> = node.params): tf.Tensor {
  return OPS[node.op].forward(node, inputs, params);
}
