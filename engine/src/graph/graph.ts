import type { LayerDetails, LayerTreeItem } from '../../../protocol/engine';
import type { LayerTypeName } from '../../../protocol/names';
import type { Layout } from '../ndarray';
import type { Param } from './param';

/**
 * The engine's own model representation. Every value is in the model's own layout (NCHW for ONNX, NHWC for TF.js):
 * layout is a detail of the convolution and pooling kernels (`channelsFirst` in their attributes), so ops that
 * depend on an axis (Concat, Transpose, Reshape, Softmax, reductions) take the model's axes as they are.
 */
export type OpKind =
  | 'conv2d'
  | 'dense'
  | 'matMul'
  | 'relu'
  | 'leakyRelu'
  | 'elu'
  | 'tanh'
  | 'sigmoid'
  | 'hardSigmoid'
  | 'hardSwish'
  | 'clip'
  | 'erf'
  | 'sqrt'
  | 'exp'
  | 'neg'
  | 'softmax'
  | 'maxPool'
  | 'avgPool'
  | 'globalAvgPool'
  | 'reduceMean'
  | 'reduceSum'
  | 'batchNorm'
  | 'layerNorm'
  | 'add'
  | 'sub'
  | 'mul'
  | 'div'
  | 'pow'
  | 'mod'
  | 'einsum'
  | 'concat'
  | 'reshape'
  | 'transpose'
  | 'slice'
  | 'gather'
  | 'expand'
  | 'where'
  | 'identity'
  | 'pad'
  | 'cast'
  | 'range'
  | 'constantOfShape'
  | 'equal'
  | 'not';

export interface ConvAttrs {
  strides: [number, number];
  /** [[top, bottom], [left, right]] */
  pads: [[number, number], [number, number]];
  dilations: [number, number];
  groups: number;
  /** NCHW values (ONNX); otherwise NHWC (TF.js). The kernel is HWIO either way. */
  channelsFirst?: boolean;
}

export interface PoolAttrs {
  kernel: [number, number];
  strides: [number, number];
  pads: [[number, number], [number, number]];
  /** average pooling only: whether padded zeros count in the denominator (PyTorch's default) */
  countIncludePad?: boolean;
  /** PyTorch's ceil_mode: a last window may hang over the bottom/right edge (it never counts in averages) */
  ceilMode?: boolean;
  channelsFirst?: boolean;
}

export interface NodeAttrs {
  conv?: ConvAttrs;
  pool?: PoolAttrs;
  alpha?: number;
  beta?: number;
  /** clip bounds */
  min?: number;
  max?: number;
  axis?: number;
  /** reductions and globalAvgPool: the axes reduced */
  axes?: number[];
  epsilon?: number;
  /** reductions and globalAvgPool: keep the reduced axes as size 1 */
  keepDims?: boolean;
  /** reshape/expand/constantOfShape: target shape (reshape: 0 copies the input's dimension, −1 takes the rest) */
  shape?: number[];
  /** reshape/expand: entries of `shape` that are the batch size times their value (a dynamic batch axis) */
  batchDims?: number[];
  /** transpose */
  perm?: number[];
  /** slice: per axis */
  starts?: number[];
  ends?: number[];
  steps?: number[];
  /** gather: constant indices (flat) and their shape; a scalar index ([]) removes the axis */
  indices?: number[];
  indexShape?: number[];
  /** pad: per-axis [before, after], and the fill value */
  paddings?: [number, number][];
  value?: number;
  /** range: start, limit, delta */
  range?: [number, number, number];
  dtype?: 'float32' | 'int32' | 'bool';
  /** einsum: the equation, e.g. `bhid,bhjd->bhij` */
  equation?: string;
  /**
   * dense: the weight is [out, in] as PyTorch's Linear keeps it (Gemm's transB), used transposed by the products
   * rather than transposed once at load (VGG16's first classifier weight alone is 411 MB)
   */
  weightOutIn?: boolean;
}

/**
 * Zennit's module types (zennit/types.py), which composites map to rules: what the module a node belongs to is.
 * `sum` is a residual add (Zennit's Sum module after a canonizer); nodes without a type get the plain gradient.
 */
export type ModuleType = 'conv' | 'dense' | 'relu' | 'activation' | 'sum' | 'avgPool' | 'maxPool' | 'batchNorm';

export interface GraphNode {
  /** stable id: the module path for PyTorch-exported ONNX (`features.0`), else the node or layer name */
  id: string;
  /** ONNX node name or TF.js layer name, as in the file */
  name: string;
  op: OpKind;
  /** the op as the file names it (ONNX op_type or Keras class) */
  sourceOp: string;
  inputs: string[];
  output: string;
  attrs: NodeAttrs;
  /**
   * weight (conv: HWIO, dense: [in, out]), bias, batch-norm scale/offset/mean/variance; constant operands as
   * `input<k>`; their tensors are made on first use
   */
  params: Record<string, Param>;
  /** filled in by shape inference: output shape in the model's own layout */
  shape?: number[];
  /** the type of the module this node is the output of, as Zennit sees it; undefined: the plain gradient */
  moduleType?: ModuleType;
  /**
   * An activation module spelt as several nodes (SiLU as Sigmoid·x, GELU as Div/Erf/Add/Mul, MultiheadAttention):
   * this is its output node, and the module's input is `passFrom`; the Pass rule sends relevance straight there.
   */
  passFrom?: string;
}

export interface Graph {
  /** the file it came from, for messages */
  source: string;
  format: 'onnx' | 'tfjs';
  /** the model's layout of 4-D tensors */
  layout: Layout;
  /** the batch axis is symbolic in the file (shape[0] is then 1) */
  input: { name: string; shape: number[]; dynamicBatch?: boolean };
  output: string;
  /** topologically ordered */
  nodes: GraphNode[];
  /** the file's key–value metadata (ONNX metadata_props), where it has any */
  metadata?: Record<string, string>;
}

/** Ops whose output is ≥ 0 whatever the input, and ops that keep their inputs' non-negativity. */
const NON_NEGATIVE_OUTPUT = new Set<OpKind>(['relu', 'sigmoid', 'softmax', 'hardSigmoid', 'sqrt', 'exp']);
const KEEPS_NON_NEGATIVE = new Set<OpKind>([
  'maxPool',
  'avgPool',
  'globalAvgPool',
  'reduceMean',
  'reduceSum',
  'identity',
  'reshape',
  'concat',
  'add',
  'transpose',
  'slice',
  'gather',
  'expand',
]);

/**
 * Values that are ≥ 0 for every input, read off the graph: outputs of a ReLU, and what pooling, reshaping,
 * concatenating, adding or zero-padding such values gives. (Rules skip their negative-input terms there.)
 */
export function nonNegativeValues(graph: Graph): Set<string> {
  const known = new Set<string>();
  for (const node of graph.nodes) {
    const inputsKnown = node.inputs.length > 0 && node.inputs.every((i) => known.has(i));
    // these ops have params only as constant operands (`input<k>`, a bias), which could be negative
    const keeps =
      (KEEPS_NON_NEGATIVE.has(node.op) && Object.keys(node.params).length === 0) ||
      (node.op === 'pad' && (node.attrs.value ?? 0) >= 0);
    const nonNegativeOutput = NON_NEGATIVE_OUTPUT.has(node.op) || (node.op === 'clip' && (node.attrs.min ?? -1) >= 0);
    if (nonNegativeOutput || (keeps && inputsKnown)) known.add(node.output);
  }
  return known;
}

export function paramCount(node: GraphNode): number {
  return Object.values(node.params).reduce((n, t) => n + t.size, 0);
}

export function disposeGraph(graph: Graph): void {
  for (const node of graph.nodes) for (const t of Object.values(node.params)) t.dispose();
}

/** Tree of layers by dotted path: a container (`layer1`) stands for its last node in execution order. */
export type { LayerTreeItem };

/** A module type as the layer type Zennit's composites (and composite files) name. */
const LAYER_TYPE_OF: Record<ModuleType, LayerTypeName> = {
  conv: 'Convolution',
  dense: 'Dense',
  relu: 'ReLU',
  activation: 'Activation',
  sum: 'Sum',
  avgPool: 'AvgPool',
  maxPool: 'MaxPool',
  batchNorm: 'BatchNorm',
};

export function buildLayerTree(graph: Graph): LayerTreeItem[] {
  const roots: LayerTreeItem[] = [];
  const byId = new Map<string, LayerTreeItem>();
  const ensure = (id: string, node: GraphNode): LayerTreeItem => {
    let item = byId.get(id);
    if (!item) {
      const dot = id.lastIndexOf('.');
      const parentId = dot > 0 ? id.slice(0, dot) : undefined;
      item = {
        id,
        label: parentId ? id.slice(dot + 1) : id,
        node: node.id,
        op: 'container',
        shape: [],
        params: 0,
        children: [],
      };
      byId.set(id, item);
      if (parentId) ensure(parentId, node).children.push(item);
      else roots.push(item);
    }
    return item;
  };
  const producer = new Map(graph.nodes.map((n) => [n.output, n.id]));
  producer.set(graph.input.name, 'input');
  for (const node of graph.nodes) {
    const item = ensure(node.id, node);
    item.op = node.sourceOp;
    item.node = node.id;
    item.shape = node.shape ?? [];
    item.params = paramCount(node);
    if (node.moduleType) item.type = LAYER_TYPE_OF[node.moduleType];
    item.details = layerDetails(node, producer);
    // Every enclosing container now ends at this node (nodes come in execution order).
    for (let id = node.id; id.includes('.');) {
      id = id.slice(0, id.lastIndexOf('.'));
      const parent = byId.get(id)!;
      if (parent.op === 'container') {
        parent.node = node.id;
        parent.shape = node.shape ?? [];
        parent.params += paramCount(node);
      }
    }
  }
  return roots;
}

/** A node's make-up: what it reads, and its window geometry (convolutions and pooling). */
function layerDetails(node: GraphNode, producer: ReadonlyMap<string, string>): LayerDetails {
  const details: LayerDetails = { inputs: node.inputs.map((i) => producer.get(i) ?? i) };
  const { conv, pool } = node.attrs;
  const window = conv ?? pool;
  if (!window) return details;
  const [[top, bottom], [left, right]] = window.pads;
  details.kernel = conv ? node.params.weight.shape.slice(0, 2) : [...pool!.kernel];
  details.stride = [...window.strides];
  details.padding = [top, left, bottom, right];
  if (conv) {
    details.dilation = [...conv.dilations];
    details.groups = conv.groups;
  }
  return details;
}

/** Maps every tree id (nodes and containers) to the node whose output it shows. */
export function layerIndex(graph: Graph): Map<string, string> {
  const index = new Map<string, string>();
  const walk = (items: LayerTreeItem[]) => {
    for (const item of items) {
      index.set(item.id, item.node);
      walk(item.children);
    }
  };
  walk(buildLayerTree(graph));
  return index;
}
