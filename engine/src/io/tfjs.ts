import { FILE_LIMITS, readRegularFile } from './files';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import { EngineError, fail } from '../errors';
import type { Graph, GraphNode, NodeAttrs, OpKind } from '../graph/graph';
import { moduleTypeOfOp } from '../lrp/modules';
import { size } from '../ndarray';
import { paramsOf } from '../graph/param';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- model.json is checked field by field where it is read
type Json = any;

interface LayerSpec {
  className: string;
  name: string;
  config: Json;
  inbound: string[];
}

/** Keras' "same" padding as explicit [before, after] per spatial axis. */
function samePads(
  inSize: number[],
  kernel: number[],
  strides: number[],
  dilations: number[],
): [[number, number], [number, number]] {
  const pads = inSize.map((size, i) => {
    const out = Math.ceil(size / strides[i]);
    const total = Math.max((out - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + 1 - size, 0);
    return [Math.floor(total / 2), total - Math.floor(total / 2)] as [number, number];
  });
  return [pads[0], pads[1]];
}

const pair = (v: number | number[] | undefined, dflt: number): [number, number] =>
  v === undefined ? [dflt, dflt] : Array.isArray(v) ? [v[0], v[1]] : [v, v];

/** Reads the weight shards of a LayersModel into named tensors. */
/** A weight file named in the manifest: a regular file inside the model's folder. */
function readWeightFile(dir: string, name: string, source: string): Promise<Buffer> {
  const root = path.resolve(dir);
  const file = path.resolve(root, name);
  if (!file.startsWith(root + path.sep))
    fail('NOT_A_MODEL', `${source}: weight file "${name}" is outside the model's folder`);
  return readRegularFile(file, FILE_LIMITS.tfjsWeights, `${source}: weight file "${name}"`);
}

/** The manifest's weights, decoded (and dequantised) by TF.js's own decodeWeights, as float32 tensors. */
async function readWeights(manifest: Json, dir: string, source: string): Promise<Map<string, tf.Tensor>> {
  const weights = new Map<string, tf.Tensor>();
  for (const group of manifest ?? []) {
    const data = Buffer.concat(await Promise.all((group.paths as string[]).map((p) => readWeightFile(dir, p, source))));
    let decoded: tf.NamedTensorMap;
    try {
      decoded = tf.io.decodeWeights(
        data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength),
        group.weights,
      );
    } catch (e) {
      return fail(
        'NOT_A_MODEL',
        `${source}: the weight files do not hold what the manifest says (${(e as Error).message})`,
      );
    }
    for (const [name, t] of Object.entries(decoded)) {
      weights.set(name, t.dtype === 'float32' ? t : tf.tidy(() => tf.cast(t, 'float32')));
      if (t.dtype !== 'float32') t.dispose();
    }
  }
  return weights;
}

function layerSpecs(topology: Json, source: string): { layers: LayerSpec[]; inputShape: number[]; output: string } {
  const model = topology.model_config ?? topology;
  const cls = model.class_name;
  const config = model.config;
  if (cls !== 'Sequential' && cls !== 'Functional' && cls !== 'Model')
    fail('NOT_A_MODEL', `${source}: unsupported model class "${cls}"`);
  const raw: Json[] = Array.isArray(config) ? config : config?.layers;
  if (!Array.isArray(raw) || raw.length === 0) fail('NOT_A_MODEL', `${source}: the model has no layers`);
  const layers: LayerSpec[] = [];
  let inputShape: number[] | undefined;
  if (cls === 'Sequential') {
    let prev = 'input';
    for (const l of raw) {
      const shape = l.config.batch_input_shape ?? l.config.batch_shape;
      if (shape && !inputShape) inputShape = shape;
      if (l.class_name === 'InputLayer') continue;
      layers.push({ className: l.class_name, name: l.config.name, config: l.config, inbound: [prev] });
      prev = l.config.name;
    }
    return {
      layers,
      inputShape: inputShape ?? fail('NOT_A_MODEL', `${source}: no batch_input_shape on the first layer`),
      output: prev,
    };
  }
  const inputs: Json[] = config.input_layers ?? [];
  if (inputs.length !== 1) fail('NOT_A_MODEL', `${source}: expected one model input, found ${inputs.length}`);
  const outputs: Json[] = config.output_layers ?? [];
  if (outputs.length !== 1) fail('NOT_A_MODEL', `${source}: expected one model output, found ${outputs.length}`);
  const inputName = inputs[0][0];
  for (const l of raw) {
    if (l.class_name === 'InputLayer') {
      if (l.config.name === inputName) inputShape = l.config.batch_input_shape ?? l.config.batch_shape;
      continue;
    }
    const nodes: Json[] = l.inbound_nodes ?? [];
    if (nodes.length !== 1)
      fail(
        'UNSUPPORTED_OP',
        `${source}: layer "${l.config.name}" is used ${nodes.length} times; shared layers are not supported`,
      );
    if (!Array.isArray(nodes[0]))
      fail(
        'NOT_A_MODEL',
        `${source}: layer "${l.config.name}" uses the Keras 3 format; convert with tensorflowjs_converter from Keras 2`,
      );
    const inbound = (nodes[0] as Json[]).map((ref: Json) => (ref[0] === inputName ? 'input' : ref[0]));
    layers.push({ className: l.class_name, name: l.config.name, config: l.config, inbound });
  }
  return {
    layers,
    inputShape: inputShape ?? fail('NOT_A_MODEL', `${source}: the input layer has no shape`),
    output: outputs[0][0],
  };
}

/** What a layer converter sees: the layer, its input shape, its weights, and how to add nodes. */
interface KerasLayer {
  l: LayerSpec;
  c: Json;
  where: string;
  inShape: number[];
  inputs: string[];
  activation: string;
  shapes: Map<string, number[]>;
  w: (suffix: string, required?: boolean) => tf.Tensor | undefined;
  add: (
    id: string,
    op: OpKind,
    attrs: NodeAttrs,
    params: Record<string, tf.Tensor>,
    inputs: string[],
    out: number[],
  ) => void;
  /** the layer's own op, then its fused activation (if any) as a node of its own */
  finish: (op: OpKind, attrs: NodeAttrs, params: Record<string, tf.Tensor>, out: number[]) => void;
}

/** One converter per Keras layer class: the layer as engine nodes, with its output shape. */
export const KERAS_LAYERS: Record<string, (k: KerasLayer) => void> = {
  Conv2D: ({ l, c, inShape, w, finish }) => {
    const depthwise = l.className === 'DepthwiseConv2D';
    const kernel = w(depthwise ? 'depthwise_kernel' : 'kernel')!;
    const [kh, kw, cin, cout] = kernel.shape;
    const strides = pair(c.strides, 1);
    const dilations = pair(c.dilation_rate, 1);
    const pads =
      c.padding === 'same'
        ? samePads([inShape[1], inShape[2]], [kh, kw], strides, dilations)
        : ([
            [0, 0],
            [0, 0],
          ] as [[number, number], [number, number]]);
    const params: Record<string, tf.Tensor> = {
      weight: depthwise ? tf.reshape(kernel, [kh, kw, 1, cin * cout]) : kernel,
    };
    if (c.use_bias !== false) params.bias = w('bias')!;
    const outC = depthwise ? cin * cout : cout;
    const out = [0, 1].map(
      (i) =>
        Math.floor((inShape[i + 1] + pads[i][0] + pads[i][1] - dilations[i] * ((i ? kw : kh) - 1) - 1) / strides[i]) +
        1,
    );
    finish('conv2d', { conv: { strides, pads, dilations, groups: depthwise ? cin : 1 } }, params, [
      inShape[0],
      out[0],
      out[1],
      outC,
    ]);
  },
  DepthwiseConv2D: (k) => KERAS_LAYERS.Conv2D(k),
  Dense: ({ c, where, inShape, w, finish }) => {
    if (inShape.length !== 2) fail('UNSUPPORTED_OP', `${where}: Dense on a ${inShape.length}-D input is not supported`);
    const params: Record<string, tf.Tensor> = { weight: w('kernel')! };
    if (c.use_bias !== false) params.bias = w('bias')!;
    finish('dense', {}, params, [inShape[0], c.units]);
  },
  Activation: ({ l, where, inShape, inputs, activation, add }) => {
    add(l.name, activation === 'linear' ? 'identity' : activationOp(activation, where), {}, {}, inputs, inShape);
  },
  ReLU: ({ l, c, where, inShape, inputs, add }) => {
    if (c.max_value != null || (c.negative_slope ?? 0) !== 0 || (c.threshold ?? 0) !== 0)
      fail('UNSUPPORTED_OP', `${where}: only a plain ReLU is supported`);
    add(l.name, 'relu', {}, {}, inputs, inShape);
  },
  LeakyReLU: ({ l, c, inShape, inputs, add }) => {
    add(l.name, 'leakyRelu', { alpha: c.alpha ?? c.negative_slope ?? 0.3 }, {}, inputs, inShape);
  },
  Softmax: ({ l, inShape, inputs, add }) => {
    add(l.name, 'softmax', {}, {}, inputs, inShape);
  },
  BatchNormalization: ({ l, c, where, inShape, inputs, w, add }) => {
    const axis = c.axis === undefined ? -1 : Array.isArray(c.axis) ? c.axis[0] : c.axis;
    if (axis !== -1 && axis !== inShape.length - 1) fail('UNSUPPORTED_OP', `${where}: only the last axis is supported`);
    const n = inShape[inShape.length - 1];
    const params = {
      scale: c.scale === false ? tf.ones([n]) : w('gamma')!,
      offset: c.center === false ? tf.zeros([n]) : w('beta')!,
      mean: w('moving_mean')!,
      variance: w('moving_variance')!,
    };
    add(l.name, 'batchNorm', { epsilon: c.epsilon ?? 1e-3, axis: -1 }, params, inputs, inShape);
  },
  MaxPooling2D: ({ l, c, inShape, inputs, add }) => {
    const kernel = pair(c.pool_size, 2);
    const strides = c.strides ? pair(c.strides, 1) : kernel;
    const pads =
      c.padding === 'same'
        ? samePads([inShape[1], inShape[2]], kernel, strides, [1, 1])
        : ([
            [0, 0],
            [0, 0],
          ] as [[number, number], [number, number]]);
    const out = [0, 1].map((i) => Math.floor((inShape[i + 1] + pads[i][0] + pads[i][1] - kernel[i]) / strides[i]) + 1);
    const max = l.className === 'MaxPooling2D';
    add(l.name, max ? 'maxPool' : 'avgPool', { pool: { kernel, strides, pads, countIncludePad: false } }, {}, inputs, [
      inShape[0],
      out[0],
      out[1],
      inShape[3],
    ]);
  },
  AveragePooling2D: (k) => KERAS_LAYERS.MaxPooling2D(k),
  GlobalAveragePooling2D: ({ l, c, inShape, inputs, add }) => {
    const keep = c.keepdims === true;
    add(
      l.name,
      'globalAvgPool',
      { axes: [1, 2], keepDims: keep },
      {},
      inputs,
      keep ? [inShape[0], 1, 1, inShape[3]] : [inShape[0], inShape[3]],
    );
  },
  Flatten: ({ l, inShape, inputs, add }) => {
    add(l.name, 'reshape', { shape: [0, -1] }, {}, inputs, [inShape[0], size(inShape.slice(1))]);
  },
  Reshape: ({ l, c, inShape, inputs, add }) => {
    add(l.name, 'reshape', { shape: [0, ...c.target_shape] }, {}, inputs, [inShape[0], ...c.target_shape]);
  },
  Dropout: ({ l, inShape, inputs, add }) => {
    add(l.name, 'identity', {}, {}, inputs, inShape);
  },
  SpatialDropout2D: (k) => KERAS_LAYERS.Dropout(k),
  ZeroPadding2D: ({ l, c, inShape, inputs, add }) => {
    const p = c.padding;
    const [[t, b], [le, r]] =
      typeof p === 'number'
        ? [
            [p, p],
            [p, p],
          ]
        : Array.isArray(p[0])
          ? p
          : [
              [p[0], p[0]],
              [p[1], p[1]],
            ];
    add(
      l.name,
      'pad',
      {
        paddings: [
          [0, 0],
          [t, b],
          [le, r],
          [0, 0],
        ],
        value: 0,
      },
      {},
      inputs,
      [inShape[0], inShape[1] + t + b, inShape[2] + le + r, inShape[3]],
    );
  },
  Add: ({ l, where, inShape, inputs, shapes, add }) => {
    for (const i of inputs)
      if (shapes.get(i)!.join() !== inShape.join())
        fail(
          'SHAPE_MISMATCH',
          `${where}: summands have shapes ${inputs.map((x) => `[${shapes.get(x)}]`).join(' and ')}`,
        );
    add(l.name, 'add', {}, {}, inputs, inShape);
  },
  Concatenate: ({ l, c, inShape, inputs, shapes, add }) => {
    const axis = (c.axis ?? -1) < 0 ? inShape.length + (c.axis ?? -1) : c.axis;
    const out = [...inShape];
    out[axis] = inputs.reduce((s, i) => s + shapes.get(i)![axis], 0);
    add(l.name, 'concat', { axis }, {}, inputs, out);
  },
};

/** model.json, checked to be a LayersModel. */
async function readManifest(jsonPath: string): Promise<Json> {
  let json: Json;
  try {
    json = JSON.parse((await readRegularFile(jsonPath, FILE_LIMITS.tfjsManifest)).toString('utf8'));
  } catch (e) {
    if (e instanceof EngineError) throw e;
    throw new EngineError('NOT_A_MODEL', `${jsonPath}: not a TF.js model (${(e as Error).message})`);
  }
  if (!json?.modelTopology) fail('NOT_A_MODEL', `${jsonPath}: not a TF.js LayersModel (no modelTopology)`);
  if (json.format && json.format !== 'layers-model')
    fail('NOT_A_MODEL', `${jsonPath}: TF.js "${json.format}" is not supported, only layers-model`);
  return json;
}

/** Loads a TF.js LayersModel (model.json + weight shards), Sequential or functional, channels-last. */
export async function loadTfjsLayers(jsonPath: string): Promise<Graph> {
  const source = jsonPath;
  const json = await readManifest(jsonPath);
  const { layers, inputShape, output } = layerSpecs(json.modelTopology, source);
  const weights = await readWeights(json.weightsManifest, path.dirname(jsonPath), source);
  const shapes = new Map<string, number[]>([['input', inputShape.map((d, i) => (i === 0 ? 1 : d))]]);
  const nodes: GraphNode[] = [];
  let outputValue = output;

  for (const l of layers) {
    const c = l.config;
    const where = `${source}: layer "${l.name}" (${l.className})`;
    if (c.data_format && c.data_format !== 'channels_last')
      fail('UNSUPPORTED_OP', `${where}: data_format ${c.data_format} is not supported`);
    const inputs = l.inbound;
    for (const i of inputs)
      if (!shapes.has(i)) fail('NOT_A_MODEL', `${where}: input "${i}" is not produced by an earlier layer`);
    const inShape = shapes.get(inputs[0])!;
    const w = (suffix: string, required = true): tf.Tensor | undefined => {
      const t = weights.get(`${l.name}/${suffix}`);
      if (!t && required) fail('NOT_A_MODEL', `${where}: weight "${l.name}/${suffix}" is missing`);
      return t;
    };
    const add = (
      id: string,
      op: OpKind,
      attrs: NodeAttrs,
      params: Record<string, tf.Tensor>,
      nodeInputs: string[],
      outShape: number[],
    ) => {
      nodes.push(
        typed({
          id,
          name: l.name,
          op,
          sourceOp: l.className,
          inputs: nodeInputs,
          output: id,
          attrs,
          params: paramsOf(params),
        }),
      );
      shapes.set(id, outShape);
    };
    // A fused activation becomes its own node (LRP treats it apart); the layer's name stays on the layer's output.
    const activation: string = c.activation ?? 'linear';
    const linearId = activation === 'linear' ? l.name : `${l.name}.linear`;
    const finish = (op: OpKind, attrs: NodeAttrs, params: Record<string, tf.Tensor>, outShape: number[]) => {
      add(linearId, op, attrs, params, inputs, outShape);
      if (activation !== 'linear') {
        const act = activationOp(activation, where);
        nodes.push(
          typed({
            id: l.name,
            name: l.name,
            op: act,
            sourceOp: 'Activation',
            inputs: [linearId],
            output: l.name,
            attrs: {},
            params: {},
          }),
        );
        shapes.set(l.name, outShape);
      }
    };
    const convert = Object.hasOwn(KERAS_LAYERS, l.className)
      ? KERAS_LAYERS[l.className]
      : fail('UNSUPPORTED_OP', `${where}: unsupported layer class ${l.className}`);
    convert({ l, c, where, inShape, inputs, activation, shapes, w, add, finish });
    if (l.name === output) outputValue = l.name;
  }
  const used = new Set(nodes.flatMap((n) => Object.values(n.params).map((p) => p.tensor)));
  for (const t of weights.values()) if (!used.has(t)) t.dispose();
  return {
    source,
    format: 'tfjs',
    layout: 'NHWC',
    input: { name: 'input', shape: shapes.get('input')! },
    output: outputValue,
    nodes,
  };
}

/** Every Keras layer is a module of its own: its type follows from its op. */
function typed(node: GraphNode): GraphNode {
  return { ...node, moduleType: moduleTypeOfOp(node) };
}

function activationOp(name: string, where: string): OpKind {
  const ops: Record<string, OpKind> = {
    relu: 'relu',
    tanh: 'tanh',
    sigmoid: 'sigmoid',
    softmax: 'softmax',
    elu: 'elu',
  };
  return ops[name] ?? fail('UNSUPPORTED_OP', `${where}: unsupported activation "${name}"`);
}
