import * as tf from '@tensorflow/tfjs-core';
import { fail } from '../errors';
import type { NodeAttrs, OpKind } from '../graph/graph';
import { size } from '../ndarray';
import { Param } from '../graph/param';
import { filledTensor } from '../graph/storage';

import { onnx } from './onnx-proto';

type Attribute = onnx.AttributeProto.$Properties;
const { AttributeType } = onnx.AttributeProto;

/** A constant value: an initializer, a Constant node, or what folding made of constants. */
export interface ConstTensor {
  dims: number[];
  values: Float32Array | Int32Array | Uint8Array;
  dtype: 'float32' | 'int32' | 'bool';
  /** per element: the value is the batch size times the stored value (a dynamic batch axis, read by Shape) */
  batch?: boolean[];
  /** float32 values still in the file: writes them into a tensor's own storage (no copy on the way) */
  fill?: (values: Float32Array) => void;
}

export const constTensor = (c: ConstTensor): tf.Tensor =>
  c.fill ? filledTensor(c.dims, c.fill) : tf.tensor(c.values, c.dims, c.dtype);

/** One ONNX node as the op table sees it: inputs already resolved, constants and data shapes known so far. */
export interface OnnxNode {
  name: string;
  opType: string;
  /** '' for an omitted optional input */
  inputs: string[];
  outputs: string[];
  attrs: Map<string, Attribute>;
  opset: number;
  /** for messages: file, node, op and opset */
  where: string;
  consts: ReadonlyMap<string, ConstTensor>;
  shapes: ReadonlyMap<string, number[]>;
  tensorValues: (t: onnx.TensorProto.$Properties) => ConstTensor;
}

/** What a table entry makes of a node: engine nodes (folded when their inputs are constants), or a constant. */
export type NodeSpec =
  | { op: OpKind; inputs: string[]; output: string; attrs?: NodeAttrs; params?: Record<string, Param> }
  | { constant: ConstTensor; output: string };

/** An entry of the op table; 'alias' passes the input on unchanged (Identity, Dropout). */
export type Convert = (n: OnnxNode) => NodeSpec | NodeSpec[] | 'alias';

// ---- reading attributes and inputs ----

/** The attribute `name` if the node has it with the given type (the default applies otherwise). */
function attribute(n: OnnxNode, name: string, type: onnx.AttributeProto.AttributeType): Attribute | undefined {
  const v = n.attrs.get(name);
  return v?.type === type ? v : undefined;
}
const ints = (n: OnnxNode, name: string, dflt: number[]): number[] => {
  const v = attribute(n, name, AttributeType.INTS)?.ints;
  return v?.length ? v.map(Number) : dflt;
};
const int = (n: OnnxNode, name: string, dflt: number): number =>
  Number(attribute(n, name, AttributeType.INT)?.i ?? dflt);
const float = (n: OnnxNode, name: string, dflt: number): number =>
  Number(attribute(n, name, AttributeType.FLOAT)?.f ?? dflt);
const str = (n: OnnxNode, name: string, dflt: string): string => {
  const v = attribute(n, name, AttributeType.STRING)?.s;
  return v ? Buffer.from(v).toString() : dflt;
};

const isConst = (n: OnnxNode, i: number) => n.consts.has(n.inputs[i] ?? '');
const has = (n: OnnxNode, i: number) => !!n.inputs[i];

function constant(n: OnnxNode, i: number, what: string): ConstTensor {
  const name = n.inputs[i];
  if (!name) fail('NOT_A_MODEL', `${n.where}: ${what} (input ${i + 1} of the node) is missing`);
  return n.consts.get(name) ?? fail('UNSUPPORTED_OP', `${n.where}: ${what} (input "${name}") must be a constant`);
}
const constInts = (n: OnnxNode, i: number, what: string): number[] => Array.from(constant(n, i, what).values, Number);
const weight = (c: ConstTensor): tf.Tensor =>
  c.dtype === 'float32' ? constTensor(c) : tf.cast(constTensor(c), 'float32');
/** A float parameter of a constant, `change`d when its tensor is made (to `shape`): its values are read then. */
const weightParam = (c: ConstTensor, shape = c.dims, change = (t: tf.Tensor) => t): Param =>
  Param.lazy(shape, () => change(weight(c)));

function shapeOf(n: OnnxNode, name: string): number[] {
  return (
    n.shapes.get(name) ?? n.consts.get(name)?.dims ?? fail('NOT_A_MODEL', `${n.where}: input "${name}" is unknown`)
  );
}
const rankOf = (n: OnnxNode, i: number) => shapeOf(n, n.inputs[i]).length;
const positive = (axis: number, rank: number) => (axis < 0 ? axis + rank : axis);

/**
 * Operands in the file's order: data values as inputs, constants as params `input<k>` — unless every operand is a
 * constant, when they all stay inputs so that the node folds into a constant (with batch marks carried along).
 */
function operandSpec(n: OnnxNode, op: OpKind, indices: number[], attrs: NodeAttrs = {}): NodeSpec {
  const present = indices.filter((i) => has(n, i));
  if (present.every((i) => isConst(n, i)))
    return { op, inputs: present.map((i) => n.inputs[i]), output: n.outputs[0], attrs };
  const params: Record<string, Param> = {};
  const inputs: string[] = [];
  present.forEach((i, k) => {
    const c = n.consts.get(n.inputs[i]);
    if (c) params[`input${k}`] = Param.lazy(c.dims, () => constTensor(c));
    else inputs.push(n.inputs[i]);
  });
  return { op, inputs, output: n.outputs[0], attrs, params };
}

const simple =
  (op: OpKind, attrs: (n: OnnxNode) => NodeAttrs = () => ({})): Convert =>
  (n) =>
    operandSpec(n, op, [0], attrs(n));
const elementwise =
  (op: OpKind): Convert =>
  (n) =>
    operandSpec(
      n,
      op,
      n.inputs.map((_, i) => i),
    );

function pairPads(n: OnnxNode, pads: number[]): [[number, number], [number, number]] {
  if (pads.length !== 4)
    fail('UNSUPPORTED_OP', `${n.where}: only 2-D spatial padding is supported (pads ${JSON.stringify(pads)})`);
  return [
    [pads[0], pads[2]],
    [pads[1], pads[3]],
  ];
}

function noAutoPad(n: OnnxNode): void {
  const autoPad = str(n, 'auto_pad', 'NOTSET');
  if (autoPad !== 'NOTSET')
    fail('UNSUPPORTED_OP', `${n.where}: auto_pad=${autoPad} is not supported (PyTorch exports explicit pads)`);
}

function pool(n: OnnxNode, op: 'maxPool' | 'avgPool'): NodeSpec {
  if (rankOf(n, 0) !== 4) fail('UNSUPPORTED_OP', `${n.where}: only 2-D pooling (a 4-D NCHW input) is supported`);
  if (n.outputs.length > 1 && n.outputs[1]) fail('UNSUPPORTED_OP', `${n.where}: the Indices output is not supported`);
  noAutoPad(n);
  if (ints(n, 'dilations', [1, 1]).some((d) => d !== 1))
    fail('UNSUPPORTED_OP', `${n.where}: dilated pooling is not supported`);
  const k = ints(n, 'kernel_shape', []);
  const s = ints(n, 'strides', [1, 1]);
  return simple(op, () => ({
    pool: {
      kernel: [k[0], k[1]],
      strides: [s[0], s[1]],
      pads: pairPads(n, ints(n, 'pads', [0, 0, 0, 0])),
      countIncludePad: int(n, 'count_include_pad', 0) === 1,
      ceilMode: int(n, 'ceil_mode', 0) === 1,
      channelsFirst: true,
    },
  }))(n) as NodeSpec;
}

/** Axes of a reduction: from the attribute (older opsets) or the second input (ReduceSum ≥ 13, others ≥ 18). */
function reduceAxes(n: OnnxNode): number[] {
  const rank = rankOf(n, 0);
  const axes = has(n, 1) ? constInts(n, 1, 'the axes') : ints(n, 'axes', []);
  return (axes.length ? axes : Array.from({ length: rank }, (_, i) => i)).map((a) => positive(a, rank));
}

/** A static target shape with −1 where the input's first dimension went: right for any batch size. */
function reshapeTo(n: OnnxNode, target: number[], batchAt: number): NodeSpec {
  const shape = target.map((d, i) => (i === batchAt && !target.includes(-1) ? -1 : d));
  return simple('reshape', () => ({ shape }))(n) as NodeSpec;
}

const DTYPES: Record<number, 'float32' | 'int32' | 'bool'> = {
  1: 'float32',
  11: 'float32',
  10: 'float32',
  6: 'int32',
  7: 'int32',
  3: 'int32',
  2: 'int32',
  9: 'bool',
};

/** The ONNX op table: every op PyTorch's exporter writes for torchvision's classification networks (opset 11–17). */
export const ONNX_OPS: Record<string, Convert> = {
  Constant: (n) => {
    const a = n.attrs;
    const out = n.outputs[0];
    const tensor = attribute(n, 'value', AttributeType.TENSOR)?.t;
    if (tensor) return { constant: n.tensorValues(tensor), output: out };
    if (a.has('value_float'))
      return {
        constant: { dims: [], values: Float32Array.of(float(n, 'value_float', 0)), dtype: 'float32' },
        output: out,
      };
    if (a.has('value_floats')) {
      const v = (attribute(n, 'value_floats', AttributeType.FLOATS)?.floats ?? []).map(Number);
      return { constant: { dims: [v.length], values: Float32Array.from(v), dtype: 'float32' }, output: out };
    }
    if (a.has('value_int'))
      return { constant: { dims: [], values: Int32Array.of(int(n, 'value_int', 0)), dtype: 'int32' }, output: out };
    if (a.has('value_ints')) {
      const v = ints(n, 'value_ints', []);
      return { constant: { dims: [v.length], values: Int32Array.from(v), dtype: 'int32' }, output: out };
    }
    return fail('UNSUPPORTED_OP', `${n.where}: only tensor- and number-valued Constant nodes are supported`);
  },
  Identity: (n) => (isConst(n, 0) ? { constant: n.consts.get(n.inputs[0])!, output: n.outputs[0] } : 'alias'),
  Dropout: (n) => (isConst(n, 0) ? { constant: n.consts.get(n.inputs[0])!, output: n.outputs[0] } : 'alias'),
  Shape: (n) => {
    const shape = shapeOf(n, n.inputs[0]);
    const start = positive(int(n, 'start', 0), shape.length);
    const end = n.attrs.has('end') ? positive(int(n, 'end', shape.length), shape.length) : shape.length;
    const dims = shape.slice(start, end);
    // the first dimension of a data value is the batch (marked, so that a dynamic batch axis stays dynamic)
    const batch = dims.map((_, i) => start + i === 0 && n.shapes.has(n.inputs[0]));
    return {
      constant: { dims: [dims.length], values: Int32Array.from(dims), dtype: 'int32', batch },
      output: n.outputs[0],
    };
  },
  ConstantOfShape: (n) => {
    const shape = constInts(n, 0, 'the shape');
    const tensor = attribute(n, 'value', AttributeType.TENSOR)?.t;
    const v = tensor ? n.tensorValues(tensor) : { values: Float32Array.of(0), dtype: 'float32' as const };
    return {
      op: 'constantOfShape',
      inputs: [],
      output: n.outputs[0],
      attrs: { shape, value: Number(v.values[0]), dtype: v.dtype === 'bool' ? 'int32' : v.dtype },
    };
  },
  Cast: (n) => {
    const to =
      DTYPES[int(n, 'to', 1)] ??
      fail('UNSUPPORTED_OP', `${n.where}: cast to data type ${int(n, 'to', 1)} is not supported`);
    if (!isConst(n, 0))
      return to === 'float32'
        ? 'alias'
        : fail('UNSUPPORTED_OP', `${n.where}: a computed value cast to ${to} is not supported`);
    return simple('cast', () => ({ dtype: to }))(n);
  },
  Conv: (n) => {
    if (rankOf(n, 0) !== 4)
      fail('UNSUPPORTED_OP', `${n.where}: only 2-D convolutions (a 4-D NCHW input) are supported`);
    noAutoPad(n);
    const w = constant(n, 1, 'the weight');
    if (w.dims.length !== 4) fail('UNSUPPORTED_OP', `${n.where}: only 2-D convolutions are supported`);
    // HWIO, the kernels' layout
    const [o, i, h, kw] = w.dims;
    const params: Record<string, Param> = {
      weight: weightParam(w, [h, kw, i, o], (t) => tf.transpose(t, [2, 3, 1, 0])),
    };
    if (has(n, 2)) params.bias = weightParam(constant(n, 2, 'the bias'));
    const s = ints(n, 'strides', [1, 1]);
    const d = ints(n, 'dilations', [1, 1]);
    const conv = {
      strides: [s[0], s[1]] as [number, number],
      pads: pairPads(n, ints(n, 'pads', [0, 0, 0, 0])),
      dilations: [d[0], d[1]] as [number, number],
      groups: int(n, 'group', 1),
      channelsFirst: true,
    };
    return { op: 'conv2d', inputs: [n.inputs[0]], output: n.outputs[0], attrs: { conv }, params };
  },
  Gemm: (n) => {
    if (int(n, 'transA', 0)) fail('UNSUPPORTED_OP', `${n.where}: transA=1 is not supported`);
    const b = constant(n, 1, 'the weight (B)');
    const alpha = float(n, 'alpha', 1);
    const beta = float(n, 'beta', 1);
    if (b.dims.length !== 2)
      fail('UNSUPPORTED_OP', `${n.where}: the weight (B) has ${b.dims.length} dimensions, not 2`);
    // PyTorch's Linear (transB = 1) keeps its [out, in] weight as it is
    const weightOutIn = int(n, 'transB', 0) === 1;
    const params: Record<string, Param> = {
      weight: weightParam(b, b.dims, (t) => (alpha === 1 ? t : tf.mul(t, alpha))),
    };
    if (has(n, 2)) {
      const c = constant(n, 2, 'the bias (C)');
      params.bias = weightParam(c, [size(c.dims)], (t) => tf.reshape(beta === 1 ? t : tf.mul(t, beta), [-1]));
    }
    return {
      op: 'dense',
      inputs: [n.inputs[0]],
      output: n.outputs[0],
      attrs: weightOutIn ? { weightOutIn } : {},
      params,
    };
  },
  MatMul: (n) => {
    // a constant 2-D right operand is a Linear layer's weight
    if (isConst(n, 1) && !isConst(n, 0) && constant(n, 1, 'B').dims.length === 2) {
      return {
        op: 'dense',
        inputs: [n.inputs[0]],
        output: n.outputs[0],
        params: { weight: weightParam(constant(n, 1, 'B')) },
      };
    }
    return operandSpec(n, 'matMul', [0, 1]);
  },
  Add: elementwise('add'),
  Sum: elementwise('add'),
  Sub: elementwise('sub'),
  Mul: elementwise('mul'),
  Div: elementwise('div'),
  Pow: elementwise('pow'),
  Mod: (n) => {
    if (int(n, 'fmod', 0)) fail('UNSUPPORTED_OP', `${n.where}: fmod=1 is not supported`);
    return elementwise('mod')(n);
  },
  // only on constants (Swin's attention mask is built so): computed here
  ScatterND: (n) => {
    const [data, indices, updates] = [0, 1, 2].map((i) =>
      constant(n, i, 'each input of ScatterND (on computed values it is not supported)'),
    );
    if (str(n, 'reduction', 'none') !== 'none')
      fail('UNSUPPORTED_OP', `${n.where}: ScatterND with a reduction is not supported`);
    const k = indices.dims[indices.dims.length - 1];
    const strides = data.dims.map((_, i) => size(data.dims.slice(i + 1)));
    const block = strides[k - 1];
    const values = data.values.slice();
    for (let u = 0; u < indices.values.length / k; u++) {
      let at = 0;
      for (let j = 0; j < k; j++) {
        const v = Number(indices.values[u * k + j]);
        at += (v < 0 ? v + data.dims[j] : v) * strides[j];
      }
      values.set(updates.values.subarray(u * block, (u + 1) * block), at);
    }
    return { constant: { ...data, values, batch: undefined }, output: n.outputs[0] };
  },
  Einsum: (n) =>
    operandSpec(
      n,
      'einsum',
      n.inputs.map((_, i) => i),
      { equation: str(n, 'equation', '') },
    ),
  Equal: elementwise('equal'),
  Where: elementwise('where'),
  Not: simple('not'),
  Relu: simple('relu'),
  LeakyRelu: simple('leakyRelu', (n) => ({ alpha: float(n, 'alpha', 0.01) })),
  Elu: simple('elu', (n) => ({ alpha: float(n, 'alpha', 1) })),
  Tanh: simple('tanh'),
  Sigmoid: simple('sigmoid'),
  HardSigmoid: simple('hardSigmoid', (n) => ({ alpha: float(n, 'alpha', 0.2), beta: float(n, 'beta', 0.5) })),
  HardSwish: simple('hardSwish'),
  Erf: simple('erf'),
  Sqrt: simple('sqrt'),
  Exp: simple('exp'),
  Neg: simple('neg'),
  Clip: (n) => {
    const bound = (i: number, attr: string, dflt: number) =>
      n.opset >= 11 ? (has(n, i) ? Number(constant(n, i, attr).values[0]) : dflt) : float(n, attr, dflt);
    return simple('clip', () => ({ min: bound(1, 'min', -Infinity), max: bound(2, 'max', Infinity) }))(n);
  },
  Softmax: (n) => {
    const rank = rankOf(n, 0);
    const axis = positive(int(n, 'axis', n.opset >= 13 ? -1 : 1), rank);
    // before opset 13 Softmax flattens from `axis` on; the same as PyTorch's softmax only on the last axis
    if (n.opset < 13 && axis !== rank - 1)
      fail('UNSUPPORTED_OP', `${n.where}: Softmax before opset 13 is supported on the last axis only`);
    return simple('softmax', () => ({ axis }))(n);
  },
  MaxPool: (n) => pool(n, 'maxPool'),
  AveragePool: (n) => pool(n, 'avgPool'),
  GlobalAveragePool: (n) => {
    const rank = rankOf(n, 0);
    return simple('globalAvgPool', () => ({ axes: Array.from({ length: rank - 2 }, (_, i) => i + 2), keepDims: true }))(
      n,
    );
  },
  ReduceMean: (n) => simple('reduceMean', () => ({ axes: reduceAxes(n), keepDims: int(n, 'keepdims', 1) === 1 }))(n),
  ReduceSum: (n) => simple('reduceSum', () => ({ axes: reduceAxes(n), keepDims: int(n, 'keepdims', 1) === 1 }))(n),
  BatchNormalization: (n) => {
    if (n.outputs.filter(Boolean).length > 1)
      fail('UNSUPPORTED_OP', `${n.where}: training-mode batch-norm (several outputs) is not supported`);
    const [scale, offset, mean, variance] = [1, 2, 3, 4].map((i) =>
      weightParam(constant(n, i, 'a batch-norm parameter')),
    );
    return {
      op: 'batchNorm',
      inputs: [n.inputs[0]],
      output: n.outputs[0],
      attrs: { epsilon: float(n, 'epsilon', 1e-5), axis: 1 },
      params: { scale, offset, mean, variance },
    };
  },
  LayerNormalization: (n) => {
    if (n.outputs.filter(Boolean).length > 1)
      fail('UNSUPPORTED_OP', `${n.where}: the Mean and InvStdDev outputs are not supported`);
    const params: Record<string, Param> = { scale: weightParam(constant(n, 1, 'the scale')) };
    if (has(n, 2)) params.bias = weightParam(constant(n, 2, 'the bias'));
    return {
      op: 'layerNorm',
      inputs: [n.inputs[0]],
      output: n.outputs[0],
      attrs: { axis: int(n, 'axis', -1), epsilon: float(n, 'epsilon', 1e-5) },
      params,
    };
  },
  Concat: (n) =>
    operandSpec(
      n,
      'concat',
      n.inputs.map((_, i) => i),
      { axis: positive(int(n, 'axis', 0), rankOf(n, 0)) },
    ),
  Flatten: (n) => {
    const shape = shapeOf(n, n.inputs[0]);
    const axis = positive(int(n, 'axis', 1), shape.length);
    const inner = size(shape.slice(axis));
    return axis === 0 ? simple('reshape', () => ({ shape: [1, -1] }))(n) : reshapeTo(n, [-1, inner], 0);
  },
  Reshape: (n) => {
    const target = constant(n, 1, 'the shape');
    const shape = Array.from(target.values, Number);
    const batchDims = target.batch?.flatMap((b, i) => (b ? [i] : []));
    return simple('reshape', () => ({ shape, ...(batchDims?.length ? { batchDims } : {}) }))(n);
  },
  Squeeze: (n) => {
    const shape = shapeOf(n, n.inputs[0]);
    const given = n.opset >= 13 ? (has(n, 1) ? constInts(n, 1, 'the axes') : []) : ints(n, 'axes', []);
    const axes = (given.length ? given : shape.flatMap((d, i) => (d === 1 ? [i] : []))).map((a) =>
      positive(a, shape.length),
    );
    const kept = shape.map((d, i) => [d, i]).filter(([, i]) => !axes.includes(i));
    return reshapeTo(
      n,
      kept.map(([d]) => d),
      kept.findIndex(([, i]) => i === 0),
    );
  },
  Unsqueeze: (n) => {
    const shape = shapeOf(n, n.inputs[0]);
    const given = n.opset >= 13 ? constInts(n, 1, 'the axes') : ints(n, 'axes', []);
    const rank = shape.length + given.length;
    const axes = given.map((a) => positive(a, rank));
    const out: number[] = [];
    let next = 0;
    let batchAt = -1;
    for (let i = 0; i < rank; i++) {
      if (axes.includes(i)) out.push(1);
      else {
        if (next === 0) batchAt = i;
        out.push(shape[next++]);
      }
    }
    return reshapeTo(n, out, batchAt);
  },
  Transpose: (n) => {
    const rank = rankOf(n, 0);
    return simple('transpose', () => ({
      perm: ints(
        n,
        'perm',
        Array.from({ length: rank }, (_, i) => rank - 1 - i),
      ),
    }))(n);
  },
  Slice: (n) => {
    const rank = rankOf(n, 0);
    const read = (i: number, attr: string, dflt: number[]) =>
      n.opset >= 10 ? (has(n, i) ? constInts(n, i, attr) : dflt) : ints(n, attr, dflt);
    const starts = read(1, 'starts', []);
    const ends = read(2, 'ends', []);
    const axes = read(
      3,
      'axes',
      starts.map((_, i) => i),
    ).map((a) => positive(a, rank));
    const steps = read(
      4,
      'steps',
      starts.map(() => 1),
    );
    if (steps.some((s) => s === 0)) fail('NOT_A_MODEL', `${n.where}: a Slice step of 0`);
    return simple('slice', () => ({ starts, ends, axes, steps }))(n);
  },
  Split: (n) => {
    const shape = shapeOf(n, n.inputs[0]);
    const axis = positive(int(n, 'axis', 0), shape.length);
    const count = n.outputs.length;
    const sizes = n.opset >= 13 ? (has(n, 1) ? constInts(n, 1, 'the split sizes') : []) : ints(n, 'split', []);
    if (!sizes.length && shape[axis] % count !== 0)
      fail('UNSUPPORTED_OP', `${n.where}: an axis of ${shape[axis]} does not split evenly into ${count}`);
    const parts = sizes.length ? sizes : new Array<number>(count).fill(shape[axis] / count);
    let at = 0;
    return n.outputs.map((output, i) => {
      const spec = simple('slice', () => ({ starts: [at], ends: [at + parts[i]], axes: [axis], steps: [1] }))(
        n,
      ) as NodeSpec;
      at += parts[i];
      return { ...spec, output };
    });
  },
  Gather: (n) => {
    const idx = constant(n, 1, 'the indices');
    return simple('gather', () => ({
      axis: positive(int(n, 'axis', 0), rankOf(n, 0)),
      indices: Array.from(idx.values, Number),
      indexShape: idx.dims,
    }))(n);
  },
  Expand: (n) => {
    const target = constant(n, 1, 'the shape');
    const batchDims = target.batch?.flatMap((b, i) => (b ? [i] : []));
    return simple('expand', () => ({
      shape: Array.from(target.values, Number),
      ...(batchDims?.length ? { batchDims } : {}),
    }))(n);
  },
  Range: (n) => {
    const [start, limit, delta] = [0, 1, 2].map((i) => Number(constant(n, i, 'a Range bound').values[0]));
    return {
      op: 'range',
      inputs: [],
      output: n.outputs[0],
      attrs: { range: [start, limit, delta], dtype: constant(n, 0, 'start').dtype === 'int32' ? 'int32' : 'float32' },
    };
  },
  Pad: (n) => {
    const mode = str(n, 'mode', 'constant');
    if (mode !== 'constant') fail('UNSUPPORTED_OP', `${n.where}: Pad mode "${mode}" is not supported`);
    const pads = n.opset >= 11 ? constInts(n, 1, 'the pads') : ints(n, 'pads', []);
    const value =
      n.opset >= 11 ? (has(n, 2) ? Number(constant(n, 2, 'the value').values[0]) : 0) : float(n, 'value', 0);
    const rank = pads.length / 2;
    if (has(n, 3)) fail('UNSUPPORTED_OP', `${n.where}: Pad with axes is not supported`);
    return simple('pad', () => ({
      paddings: Array.from({ length: rank }, (_, i) => [pads[i], pads[i + rank]] as [number, number]),
      value,
    }))(n);
  },
};
