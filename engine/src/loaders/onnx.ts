import * as protobuf from 'protobufjs';
import * as tf from '@tensorflow/tfjs-core';
import { EngineError, fail } from '../errors';
import type { Graph, GraphNode, NodeAttrs, OpKind } from '../graph';
import { ONNX_PROTO } from './onnx-schema';

/* eslint-disable @typescript-eslint/no-explicit-any */
type Proto = any;

let modelType: protobuf.Type | undefined;
function onnxModelType(): protobuf.Type {
  modelType ??= protobuf.parse(ONNX_PROTO, { keepCase: false }).root.lookupType('onnx.ModelProto');
  return modelType;
}

interface ConstTensor {
  dims: number[];
  values: Float32Array | number[];
}

const FLOAT = 1;
const INT64 = 7;
const INT32 = 6;
const DOUBLE = 11;

function tensorValues(t: Proto, where: string): ConstTensor {
  const dims: number[] = (t.dims ?? []).map(Number);
  const n = dims.reduce((a, b) => a * b, 1);
  const raw: Buffer | undefined = t.rawData && t.rawData.length > 0 ? t.rawData : undefined;
  if (t.dataLocation === 1) fail('NOT_A_MODEL', `${where}: tensor "${t.name}" uses external data, which is not supported`);
  switch (t.dataType) {
    case FLOAT: {
      if (raw) {
        if (raw.length !== n * 4) fail('NOT_A_MODEL', `${where}: tensor "${t.name}" has ${raw.length} bytes, expected ${n * 4}`);
        return { dims, values: new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.length)) };
      }
      return { dims, values: Float32Array.from(t.floatData ?? []) };
    }
    case DOUBLE:
      return { dims, values: raw ? Array.from({ length: n }, (_, i) => raw.readDoubleLE(i * 8)) : (t.doubleData ?? []) };
    case INT64:
      return { dims, values: raw ? Array.from({ length: n }, (_, i) => Number(raw.readBigInt64LE(i * 8))) : (t.int64Data ?? []).map(Number) };
    case INT32:
      return { dims, values: raw ? Array.from({ length: n }, (_, i) => raw.readInt32LE(i * 4)) : (t.int32Data ?? []) };
    default:
      return fail('NOT_A_MODEL', `${where}: tensor "${t.name}" has unsupported data type ${t.dataType}`);
  }
}

function attrMap(node: Proto): Map<string, Proto> {
  return new Map((node.attribute ?? []).map((a: Proto) => [a.name, a]));
}

function ints(a: Map<string, Proto>, name: string, dflt: number[]): number[] {
  const v = a.get(name);
  return v && v.ints && v.ints.length ? v.ints.map(Number) : dflt;
}
function int(a: Map<string, Proto>, name: string, dflt: number): number {
  const v = a.get(name);
  return v && v.i !== undefined && v.i !== null ? Number(v.i) : dflt;
}
function float(a: Map<string, Proto>, name: string, dflt: number): number {
  const v = a.get(name);
  return v && v.f !== undefined && v.f !== null ? Number(v.f) : dflt;
}

/** `/features/features.0/Conv` → scope [features, features.0]; PyTorch repeats the parent path in Sequential names. */
function scopeOf(nodeName: string): string[] {
  const parts = nodeName.split('/').filter((p) => p.length > 0);
  parts.pop();
  const path: string[] = [];
  for (const part of parts) {
    const prev = path.length ? path.join('.') : '';
    path.push(prev && part.startsWith(prev + '.') ? part.slice(prev.length + 1) : part);
  }
  return path;
}

const NCHW_TO_NHWC_AXIS = [0, 3, 1, 2];

interface Pending {
  node: Omit<GraphNode, 'id'>;
  scope: string[];
}

/** Loads an ONNX model exported from PyTorch (opset 11–17) into the engine's graph. */
export function loadOnnx(buffer: Uint8Array, source: string): Graph {
  let model: Proto;
  try {
    const type = onnxModelType();
    model = type.toObject(type.decode(buffer), { longs: Number, bytes: Buffer, arrays: true, defaults: false });
  } catch (e) {
    throw new EngineError('NOT_A_MODEL', `${source}: not an ONNX model (${(e as Error).message})`);
  }
  const g = model.graph;
  if (!g || !g.node || g.node.length === 0) fail('NOT_A_MODEL', `${source}: not an ONNX model (no graph nodes)`);
  const opset = Number((model.opsetImport ?? []).find((o: Proto) => !o.domain || o.domain === 'ai.onnx')?.version ?? 0);
  if (opset && (opset < 7 || opset > 21)) fail('NOT_A_MODEL', `${source}: ONNX opset ${opset} is not supported (11–17 are)`);

  const consts = new Map<string, ConstTensor>();
  for (const init of g.initializer ?? []) consts.set(init.name, tensorValues(init, `${source}: initializer`));
  const graphInputs = (g.input ?? []).filter((i: Proto) => !consts.has(i.name));
  if (graphInputs.length !== 1) fail('NOT_A_MODEL', `${source}: expected one graph input, found ${graphInputs.length}`);
  const inputInfo = graphInputs[0];
  const dims = inputInfo.type?.tensorType?.shape?.dim ?? [];
  const inputShape: number[] = dims.map((d: Proto, i: number) => (d.dimValue ? Number(d.dimValue) : i === 0 ? 1 : NaN));
  if (inputShape.some((d) => !Number.isFinite(d))) fail('NOT_A_MODEL', `${source}: input "${inputInfo.name}" has symbolic dimensions besides the batch`);
  if ((g.output ?? []).length !== 1) fail('NOT_A_MODEL', `${source}: expected one graph output, found ${(g.output ?? []).length}`);

  const channelsLast = new Set<string>();
  if (inputShape.length === 4) channelsLast.add(inputInfo.name);
  const known = new Set<string>([inputInfo.name]);
  /** value name → the node that produced it (before id assignment), for fusing */
  const producers = new Map<string, Pending>();
  const consumers = new Map<string, number>();
  for (const n of g.node) for (const i of n.input ?? []) consumers.set(i, (consumers.get(i) ?? 0) + 1);
  const pending: Pending[] = [];

  const constant = (name: string, where: string): ConstTensor =>
    consts.get(name) ?? fail('UNSUPPORTED_OP', `${where}: input "${name}" must be a constant (initializer or Constant node)`);
  const weight = (c: ConstTensor) => tf.tensor(Float32Array.from(c.values), c.dims, 'float32');

  try {
    g.node.forEach((n: Proto, index: number) => convertNode(n, index));
  } catch (e) {
    for (const p of pending) for (const t of Object.values(p.node.params)) t.dispose();
    throw e;
  }

  function convertNode(n: Proto, index: number): void {
    const name: string = n.name || `${n.opType}_${index}`;
    const where = `${source}: node "${name}" (${n.opType})`;
    const a = attrMap(n);
    const inputs: string[] = (n.input ?? []).filter((s: string) => s.length > 0);
    const output: string = n.output[0];
    if (n.domain && n.domain !== 'ai.onnx') fail('UNSUPPORTED_OP', `${where}: operator domain "${n.domain}" is not supported`);
    if (n.opType === 'Constant') {
      const v = a.get('value');
      if (!v?.t) fail('UNSUPPORTED_OP', `${where}: only tensor-valued Constant nodes are supported`);
      consts.set(output, tensorValues(v.t, where));
      return;
    }
    const data = inputs.filter((i) => !consts.has(i));
    for (const i of data) if (!known.has(i)) fail('NOT_A_MODEL', `${where}: input "${i}" is not produced by any earlier node`);
    const x = data[0];
    const cl = channelsLast.has(x);
    const emit = (op: OpKind, attrs: NodeAttrs = {}, params: Record<string, tf.Tensor> = {}, nodeInputs = [x], outCl = cl) => {
      const p: Pending = { node: { name, op, sourceOp: n.opType, inputs: nodeInputs, output, attrs, params }, scope: scopeOf(name) };
      pending.push(p);
      producers.set(output, p);
      known.add(output);
      if (outCl) channelsLast.add(output);
    };
    const need4d = () => {
      if (!cl) fail('UNSUPPORTED_OP', `${where}: expects a 4-D NCHW input`);
    };
    switch (n.opType) {
      case 'Conv': {
        need4d();
        const w = constant(inputs[1], where);
        if (w.dims.length !== 4) fail('UNSUPPORTED_OP', `${where}: only 2-D convolutions are supported`);
        const pads = ints(a, 'pads', [0, 0, 0, 0]);
        if (a.has('auto_pad') && a.get('auto_pad').s && a.get('auto_pad').s.toString() !== 'NOTSET') {
          fail('UNSUPPORTED_OP', `${where}: auto_pad is not supported`);
        }
        const params: Record<string, tf.Tensor> = { weight: tf.tidy(() => tf.transpose(weight(w), [2, 3, 1, 0])) };
        if (inputs[2]) params.bias = weight(constant(inputs[2], where));
        const strides = ints(a, 'strides', [1, 1]);
        const dil = ints(a, 'dilations', [1, 1]);
        emit('conv2d', {
          conv: {
            strides: [strides[0], strides[1]],
            pads: [[pads[0], pads[2]], [pads[1], pads[3]]],
            dilations: [dil[0], dil[1]],
            groups: int(a, 'group', 1),
          },
        }, params);
        return;
      }
      case 'Gemm': {
        if (int(a, 'transA', 0)) fail('UNSUPPORTED_OP', `${where}: transA=1 is not supported`);
        const b = constant(inputs[1], where);
        const alpha = float(a, 'alpha', 1);
        const beta = float(a, 'beta', 1);
        const params: Record<string, tf.Tensor> = {
          weight: tf.tidy(() => tf.mul(int(a, 'transB', 0) ? tf.transpose(weight(b)) : weight(b), alpha)),
        };
        if (inputs[2]) params.bias = tf.tidy(() => tf.mul(weight(constant(inputs[2], where)), beta));
        emit('dense', {}, params, [x], false);
        return;
      }
      case 'MatMul': {
        const b = constant(inputs[1], where);
        if (b.dims.length !== 2) fail('UNSUPPORTED_OP', `${where}: MatMul needs a 2-D constant right operand`);
        emit('dense', {}, { weight: weight(b) }, [x], false);
        return;
      }
      case 'Add':
      case 'Sum': {
        const constInputs = inputs.filter((i) => consts.has(i));
        const prev = producers.get(x);
        if (constInputs.length === 1 && data.length === 1 && prev?.node.op === 'dense' && !prev.node.params.bias && consumers.get(x) === 1) {
          // PyTorch's Linear as MatMul + Add: fold the bias into the dense node.
          prev.node.params.bias = weight(constant(constInputs[0], where));
          prev.node.output = output;
          producers.set(output, prev);
          known.add(output);
          return;
        }
        if (constInputs.length > 0) fail('UNSUPPORTED_OP', `${where}: adding a constant is only supported as the bias of MatMul`);
        if (data.some((i) => channelsLast.has(i) !== cl)) fail('UNSUPPORTED_OP', `${where}: summands have different layouts`);
        emit('add', {}, {}, data);
        return;
      }
      case 'Relu':
        emit('relu');
        return;
      case 'LeakyRelu':
        emit('leakyRelu', { alpha: float(a, 'alpha', 0.01) });
        return;
      case 'Elu':
        if (float(a, 'alpha', 1) !== 1) fail('UNSUPPORTED_OP', `${where}: only alpha=1 is supported`);
        emit('elu');
        return;
      case 'Tanh':
        emit('tanh');
        return;
      case 'Sigmoid':
        emit('sigmoid');
        return;
      case 'Softmax': {
        const axis = int(a, 'axis', opset >= 13 ? -1 : 1);
        if (cl || !(axis === -1 || axis === 1)) fail('UNSUPPORTED_OP', `${where}: Softmax is supported on the last axis of a 2-D tensor`);
        emit('softmax');
        return;
      }
      case 'MaxPool':
      case 'AveragePool': {
        need4d();
        if (int(a, 'ceil_mode', 0)) fail('UNSUPPORTED_OP', `${where}: ceil_mode=1 is not supported`);
        if (ints(a, 'dilations', [1, 1]).some((d) => d !== 1)) fail('UNSUPPORTED_OP', `${where}: dilated pooling is not supported`);
        const k = ints(a, 'kernel_shape', []);
        const s = ints(a, 'strides', [1, 1]);
        const pads = ints(a, 'pads', [0, 0, 0, 0]);
        const pool = {
          kernel: [k[0], k[1]] as [number, number],
          strides: [s[0], s[1]] as [number, number],
          pads: [[pads[0], pads[2]], [pads[1], pads[3]]] as [[number, number], [number, number]],
          countIncludePad: int(a, 'count_include_pad', 0) === 1,
        };
        // A zero Pad in front of an average pool (PyTorch exports padded AvgPool2d so) joins the pool.
        const prev = producers.get(x);
        if (n.opType === 'AveragePool' && prev?.node.op === 'pad' && consumers.get(x) === 1 && (prev.node.attrs.value ?? 0) === 0) {
          const pp = prev.node.attrs.paddings!;
          if (pp[0].every((v) => v === 0) && pp[3].every((v) => v === 0)) {
            pending.splice(pending.indexOf(prev), 1);
            pool.pads = [[pool.pads[0][0] + pp[1][0], pool.pads[0][1] + pp[1][1]], [pool.pads[1][0] + pp[2][0], pool.pads[1][1] + pp[2][1]]];
            pool.countIncludePad = true;
            emit('avgPool', { pool }, {}, prev.node.inputs);
            return;
          }
        }
        emit(n.opType === 'MaxPool' ? 'maxPool' : 'avgPool', { pool });
        return;
      }
      case 'GlobalAveragePool':
        need4d();
        emit('globalAvgPool');
        return;
      case 'BatchNormalization': {
        need4d();
        const [scale, offset, mean, variance] = inputs.slice(1, 5).map((i) => weight(constant(i, where)));
        emit('batchNorm', { epsilon: float(a, 'epsilon', 1e-5) }, { scale, offset, mean, variance });
        return;
      }
      case 'Concat': {
        if (data.length !== inputs.length) fail('UNSUPPORTED_OP', `${where}: constant inputs to Concat are not supported`);
        if (data.some((i) => channelsLast.has(i) !== cl)) fail('UNSUPPORTED_OP', `${where}: inputs have different layouts`);
        let axis = int(a, 'axis', 1);
        const rank = cl ? 4 : NaN;
        if (axis < 0) axis += Number.isNaN(rank) ? 2 : rank;
        emit('concat', { axis: cl ? NCHW_TO_NHWC_AXIS.indexOf(axis) : axis }, {}, data);
        return;
      }
      case 'Flatten': {
        const axis = int(a, 'axis', 1);
        if (axis !== 1) fail('UNSUPPORTED_OP', `${where}: Flatten is supported with axis=1`);
        emit('reshape', { shape: [0, -1], fromChannelsLast: cl }, {}, [x], false);
        return;
      }
      case 'Reshape': {
        const shape = Array.from(constant(inputs[1], where).values).map(Number);
        emit('reshape', { shape, fromChannelsLast: cl, toChannelsLast: shape.length === 4 }, {}, [x], shape.length === 4);
        return;
      }
      case 'Dropout':
      case 'Identity':
        emit('identity');
        return;
      case 'Pad': {
        const mode = a.get('mode')?.s?.toString() ?? 'constant';
        if (mode !== 'constant') fail('UNSUPPORTED_OP', `${where}: Pad mode "${mode}" is not supported`);
        const pads = inputs[1] ? Array.from(constant(inputs[1], where).values).map(Number) : ints(a, 'pads', []);
        const value = inputs[2] ? Number(constant(inputs[2], where).values[0]) : float(a, 'value', 0);
        const rank = pads.length / 2;
        let paddings: [number, number][] = Array.from({ length: rank }, (_, i) => [pads[i], pads[i + rank]]);
        if (cl) paddings = NCHW_TO_NHWC_AXIS.map((ax) => paddings[ax]);
        emit('pad', { paddings, value });
        return;
      }
      default:
        fail('UNSUPPORTED_OP', `${where}: unsupported operator ${n.opType}`);
    }
  }

  const output = g.output[0].name;
  if (!known.has(output)) fail('NOT_A_MODEL', `${source}: graph output "${output}" is not produced by any node`);
  return {
    source,
    format: 'onnx',
    layout: 'NCHW',
    input: { name: inputInfo.name, shape: inputShape },
    output,
    nodes: assignIds(pending),
    channelsLastValues: channelsLast,
  };
}

/**
 * A node alone in its module scope takes the module path (`features.0`); a node that shares its scope, or whose
 * scope also holds sub-modules (the residual `Add` in `layer1`), is `scope.Op` (`layer1.Add`).
 */
function assignIds(pending: Pending[]): GraphNode[] {
  const key = (s: string[]) => s.join('.');
  const perScope = new Map<string, number>();
  for (const p of pending) perScope.set(key(p.scope), (perScope.get(key(p.scope)) ?? 0) + 1);
  const scopes = [...perScope.keys()];
  const used = new Set<string>();
  return pending.map(({ node, scope }) => {
    const s = key(scope);
    const opPart = node.name.split('/').pop() || node.sourceOp;
    const alone = s.length > 0 && perScope.get(s) === 1 && !scopes.some((o) => o.startsWith(s + '.'));
    let id = alone ? s : s ? `${s}.${opPart}` : node.name.replace(/^\/+/, '') || node.sourceOp;
    for (let k = 1; used.has(id); k++) id = `${alone ? s : node.name}_${k}`;
    used.add(id);
    return { ...node, id };
  });
}
