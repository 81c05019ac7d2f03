import type { GraphNode, ModuleType, OpKind } from '../graph/graph';

/**
 * What Zennit would do with each node. Zennit maps rules to PyTorch *modules* (zennit/types.py), and PyTorch's
 * exporter keeps every node's module path in its name (`/features/features.1/conv/conv.0/conv.0.2/Clip`), so nodes
 * are grouped by module, and each group is typed by what it computes: a module that is one convolution is a
 * Convolution, one that is an elementwise nonlinearity (however many nodes the exporter spelt it as) an
 * Activation, and so on. A node that is not a module of its own (a functional call in a parent's forward) gets the
 * plain gradient, except a residual add of two activations, which Zennit's canonizers make a Sum module.
 */

/** Ops an activation module may be spelt with (SiLU: Sigmoid·x; GELU: x/√2, Erf, +1, ·x, ·½; Hardswish …). */
const NONLINEAR = new Set<OpKind>([
  'relu',
  'leakyRelu',
  'elu',
  'tanh',
  'sigmoid',
  'hardSigmoid',
  'hardSwish',
  'clip',
  'erf',
]);
const ARITHMETIC = new Set<OpKind>(['mul', 'div', 'add', 'sub', 'identity']);
/** The parts of an attention module (MultiheadAttention's functional forward). */
const ATTENTION = new Set<OpKind>([
  'dense',
  'matMul',
  'softmax',
  'reshape',
  'transpose',
  'mul',
  'div',
  'add',
  'slice',
  'gather',
  'identity',
  'expand',
  'where',
  'concat',
]);

/** The module type of a node that is a module of its own (TF.js layers, ONNX without module paths). */
export function moduleTypeOfOp(node: Pick<GraphNode, 'op' | 'inputs' | 'params'>): ModuleType | undefined {
  switch (node.op) {
    case 'conv2d':
      return 'conv';
    case 'dense':
      return 'dense';
    case 'relu':
      return 'relu';
    case 'avgPool':
    case 'globalAvgPool':
      return 'avgPool';
    case 'maxPool':
      return 'maxPool';
    case 'batchNorm':
      return 'batchNorm';
    case 'add':
      return isResidualAdd(node) ? 'sum' : undefined;
    default:
      return NONLINEAR.has(node.op) ? 'activation' : undefined;
  }
}

/** An add of activations only (no constant): a residual connection. */
function isResidualAdd(node: Pick<GraphNode, 'op' | 'inputs' | 'params'>): boolean {
  return node.op === 'add' && node.inputs.length >= 2 && Object.keys(node.params).length === 0;
}

/**
 * PyTorch's exporter names scopes by the module's unqualified name: the qualified name from its last non-numeric
 * atom on (`features.0` for module `features.0`, `downsample.0` for `layer2.0.downsample.0`). Rebuilds the full
 * module path of `/layer2/layer2.0/downsample/downsample.0/Conv`: [layer2, 0, downsample, 0].
 */
export function modulePath(nodeName: string): string[] {
  const segments = nodeName.split('/').filter((p) => p.length > 0);
  segments.pop();
  const path: string[] = [];
  for (const segment of segments) {
    const atoms = segment.split('.');
    const head = atoms[0];
    // `features.1` under `features`: the head names a module already on the path, the numeric atoms follow it
    const at = atoms.length > 1 && !/^\d+$/.test(head) ? path.lastIndexOf(head) : -1;
    if (at >= 0 && path.slice(at + 1).every((a) => /^\d+$/.test(a))) path.splice(at, path.length - at, ...atoms);
    else path.push(...atoms);
  }
  return path;
}

interface Group {
  key: string;
  nodes: GraphNode[];
}

/**
 * Sets `id`, `moduleType` and `passFrom` on the nodes of a PyTorch-exported graph (names with module paths). A node
 * alone in its module takes the module path as id (`features.0`); a node that shares its module, or whose module
 * also holds sub-modules (the residual `Add` in `layer1.0`), is `module.Op` (`layer1.0.Add`). A module called
 * several times is `relu`, `relu_1`, … as the exporter numbers the calls.
 */
export function assignModules(nodes: GraphNode[], graphOutput: string): void {
  const scoped = nodes.map((n) => ({ node: n, path: n.name.startsWith('/') ? modulePath(n.name) : undefined }));
  const groups = new Map<string, Group>();
  for (const { node, path } of scoped) {
    if (!path) continue;
    const key = path.join('.');
    if (!groups.has(key)) groups.set(key, { key, nodes: [] });
    groups.get(key)!.nodes.push(node);
  }
  const keys = [...groups.keys()];
  const hasChildren = (key: string) => key === '' || keys.some((o) => o.startsWith(key + '.'));
  const consumers = new Map<string, GraphNode[]>();
  for (const n of nodes) for (const i of n.inputs) consumers.set(i, [...(consumers.get(i) ?? []), n]);

  const used = new Set<string>();
  const unique = (id: string) => {
    let out = id;
    for (let k = 1; used.has(out); k++) out = `${id}_${k}`;
    used.add(out);
    return out;
  };
  for (const { node, path } of scoped) {
    if (!path) {
      // no module path (not exported by PyTorch): every node is a module of its own
      node.id = unique(node.name || node.sourceOp);
      node.moduleType = moduleTypeOfOp(node);
      continue;
    }
    const group = groups.get(path.join('.'))!;
    const leaf = !hasChildren(group.key);
    const opPart = node.name.split('/').pop() || node.sourceOp;
    node.id = unique(leaf && group.nodes.length === 1 ? group.key : group.key ? `${group.key}.${opPart}` : opPart);
    if (!leaf) node.moduleType = isResidualAdd(node) ? 'sum' : undefined;
  }
  for (const group of groups.values()) if (!hasChildren(group.key)) typeModule(group, consumers, graphOutput);
}

/** Types a leaf module's nodes: one typed node, or an activation spelt as several nodes (Pass from its input). */
function typeModule(group: Group, consumers: Map<string, GraphNode[]>, graphOutput: string): void {
  const { nodes } = group;
  if (nodes.length === 1) {
    nodes[0].moduleType = moduleTypeOfOp(nodes[0]);
    return;
  }
  const inside = new Set(nodes.map((n) => n.output));
  const external = new Set(nodes.flatMap((n) => n.inputs).filter((i) => !inside.has(i)));
  const outputs = nodes.filter(
    (n) => n.output === graphOutput || (consumers.get(n.output) ?? []).some((c) => !nodes.includes(c)),
  );
  if (external.size !== 1 || outputs.length !== 1) return;
  const ops = new Set(nodes.map((n) => n.op));
  const activation =
    [...ops].some((op) => NONLINEAR.has(op)) && [...ops].every((op) => NONLINEAR.has(op) || ARITHMETIC.has(op));
  const attention = ops.has('softmax') && ops.has('matMul') && [...ops].every((op) => ATTENTION.has(op));
  if (activation || attention) {
    outputs[0].moduleType = 'activation';
    outputs[0].passFrom = [...external][0];
  }
}
