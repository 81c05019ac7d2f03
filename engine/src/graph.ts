import type * as tf from '@tensorflow/tfjs-core';

/**
 * The engine's own model representation. Spatial tensors are channels-last inside the engine (what TF.js kernels
 * want); `Graph.layout` says what the model itself uses, and tensors handed out are converted back to it.
 */
export type OpKind =
  | 'conv2d'
  | 'dense'
  | 'relu'
  | 'leakyRelu'
  | 'elu'
  | 'tanh'
  | 'sigmoid'
  | 'softmax'
  | 'maxPool'
  | 'avgPool'
  | 'globalAvgPool'
  | 'batchNorm'
  | 'add'
  | 'concat'
  | 'reshape'
  | 'identity'
  | 'pad';

export interface ConvAttrs {
  strides: [number, number];
  /** [[top, bottom], [left, right]] */
  pads: [[number, number], [number, number]];
  dilations: [number, number];
  groups: number;
}

export interface PoolAttrs {
  kernel: [number, number];
  strides: [number, number];
  pads: [[number, number], [number, number]];
  /** average pooling only: whether padded zeros count in the denominator (PyTorch's default) */
  countIncludePad?: boolean;
}

export interface NodeAttrs {
  conv?: ConvAttrs;
  pool?: PoolAttrs;
  alpha?: number;
  axis?: number;
  epsilon?: number;
  /** globalAvgPool: keep the spatial axes as size 1 (ONNX) or drop them (Keras) */
  keepDims?: boolean;
  /** reshape: target shape (internal layout), -1 allowed once */
  shape?: number[];
  /** reshape: the input is channels-last but the model flattens in channels-first order */
  fromChannelsLast?: boolean;
  /** reshape: the 4-D result is channels-first in the model; keep it channels-last inside */
  toChannelsLast?: boolean;
  /** pad: per-axis [before, after] in internal layout, and the fill value */
  paddings?: [number, number][];
  value?: number;
}

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
  /** weight (conv: HWIO, dense: [in, out]), bias, batch-norm scale/offset/mean/variance */
  params: Record<string, tf.Tensor>;
  /** filled in by shape inference: output shape in the model's own layout */
  shape?: number[];
}

export interface Graph {
  /** the file it came from, for messages */
  source: string;
  format: 'onnx' | 'tfjs';
  /** the model's layout of 4-D tensors */
  layout: 'NCHW' | 'NHWC';
  input: { name: string; shape: number[] };
  output: string;
  /** topologically ordered */
  nodes: GraphNode[];
  /** values that are channels-last inside but channels-first in the model */
  channelsLastValues: Set<string>;
}

/** Ops whose output is ≥ 0 whatever the input, and ops that keep their inputs' non-negativity. */
const NON_NEGATIVE_OUTPUT = new Set<OpKind>(['relu', 'sigmoid', 'softmax']);
const KEEPS_NON_NEGATIVE = new Set<OpKind>(['maxPool', 'avgPool', 'globalAvgPool', 'identity', 'reshape', 'concat', 'add']);

/**
 * Values that are ≥ 0 for every input, read off the graph: outputs of a ReLU, and what pooling, reshaping,
 * concatenating, adding or zero-padding such values gives. (Rules skip their negative-input terms there.)
 */
export function nonNegativeValues(graph: Graph): Set<string> {
  const known = new Set<string>();
  for (const node of graph.nodes) {
    const inputsKnown = node.inputs.length > 0 && node.inputs.every((i) => known.has(i));
    const keeps = KEEPS_NON_NEGATIVE.has(node.op) || (node.op === 'pad' && (node.attrs.value ?? 0) >= 0);
    if (NON_NEGATIVE_OUTPUT.has(node.op) || (keeps && inputsKnown)) known.add(node.output);
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
export interface LayerTreeItem {
  id: string;
  label: string;
  /** the node whose output this item's relevance is; for containers, their last child */
  node: string;
  op: string;
  shape: number[];
  params: number;
  children: LayerTreeItem[];
}

export function buildLayerTree(graph: Graph): LayerTreeItem[] {
  const roots: LayerTreeItem[] = [];
  const byId = new Map<string, LayerTreeItem>();
  const ensure = (id: string, node: GraphNode): LayerTreeItem => {
    let item = byId.get(id);
    if (!item) {
      const dot = id.lastIndexOf('.');
      const parentId = dot > 0 ? id.slice(0, dot) : undefined;
      item = { id, label: parentId ? id.slice(dot + 1) : id, node: node.id, op: 'container', shape: [], params: 0, children: [] };
      byId.set(id, item);
      if (parentId) ensure(parentId, node).children.push(item);
      else roots.push(item);
    }
    return item;
  };
  for (const node of graph.nodes) {
    const item = ensure(node.id, node);
    item.op = node.sourceOp;
    item.node = node.id;
    item.shape = node.shape ?? [];
    item.params = paramCount(node);
    // Every enclosing container now ends at this node (nodes come in execution order).
    for (let id = node.id; id.includes('.'); ) {
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
