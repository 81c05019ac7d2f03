import * as tf from '@tensorflow/tfjs-core';
import { assignRules, type Composite, type ResidualMode } from './composites';
import { EngineError, fail } from '../errors';
import { type Graph, type GraphNode, nonNegativeValues, paramCount } from '../graph/graph';
import type { Model } from '../graph/model';
import { checkInputValues, checkRunMemory } from '../limits';
import { activeBackend } from '../graph/backend';
import { type NdArray, size } from '../ndarray';
import { nativeElementwise, nativeSum } from '../graph/native';
import { forward, setRunBatch, vjp } from '../graph/ops';
import { tensorsOf } from '../graph/param';
import { type ActiveRule, applyRule, type RuleContext } from './rules';
import { conditionPlan, type LayerCondition } from './conditions';

export interface LayerRelevance {
  id: string;
  node: string;
  /** relevance at the layer's output, in the model's layout */
  relevance: NdArray;
  /** the layer's output itself, when the pass was asked for activations */
  activation?: NdArray;
}

export interface LayerSum {
  id: string;
  node: string;
  op: string;
  shape: number[];
  /** over the whole batch, and per batch row */
  sum: number;
  rows: number[];
}

/** The sum of each batch row of a relevance tensor. */
function rowSums(g: tf.Tensor): number[] {
  if (g.shape[0] === 1) return [nativeElementwise(g) ? nativeSum(g) : tf.sum(g).dataSync()[0]];
  return Array.from(tf.tidy(() => tf.sum(tf.reshape(g, [g.shape[0], -1]), 1)).dataSync());
}

export interface PassResult {
  output: NdArray;
  relevance: NdArray;
  stored: LayerRelevance[];
  /** every node's relevance sum, in execution order */
  sums: LayerSum[];
}

export interface PassOptions {
  composite?: Composite;
  /** residual adds as Zennit's Sum modules (Norm; the default) or plain additions */
  residual?: ResidualMode;
  /** tree ids to capture (store hooks) */
  store?: readonly string[];
  /** also capture the stored layers' outputs (activations), as zennit-crp's feature-visualisation hooks do */
  storeActivations?: boolean;
  onProgress?: (done: number, total: number, layer: string) => void;
  /** checked between layers; throws CANCELLED when it returns true */
  isCancelled?: () => boolean;
  /** where the relevance starts (a layer id; `outputRelevance` then applies to its output): default the output */
  startLayer?: string;
  /** concept-conditional relevance: per input row, the channels that pass on at each conditioned layer id */
  conditions?: { layers: readonly LayerCondition[][]; excludeParallel: boolean };
}

export function toNdArray(t: tf.Tensor): NdArray {
  return { shape: [...t.shape], data: t.dataSync() as Float32Array };
}

const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

export function checkInput(model: Model, input: NdArray): void {
  const want = model.graph.input.shape;
  const ok = input.shape.length === want.length && input.shape.every((d, i) => i === 0 || d === want[i]);
  if (!ok || input.shape[0] < 1) {
    const layout = want.length === 4 ? model.graph.layout : 'model layout';
    fail(
      'SHAPE_MISMATCH',
      `input has shape [${input.shape}], but ${model.graph.source} expects [N, ${want.slice(1)}] (${layout})`,
    );
  }
  checkInputValues(input.shape, `the input [${input.shape}]`);
  if (input.data.length !== size(input.shape))
    fail('BAD_INPUT', `input data has ${input.data.length} values for shape [${input.shape}]`);
  // every output's size scales with the batch
  const perRow = input.shape[0] / want[0];
  const outputs = model.graph.nodes.map((n) => size(n.shape!) * perRow);
  checkRunMemory(
    activeBackend(),
    model.graph.nodes.reduce((n, node) => n + paramCount(node), 0),
    outputs.reduce((a, b) => a + b, size(input.shape)),
    Math.max(0, ...outputs),
  );
}

/** Runs the forward pass, keeping every value (rules need the layer inputs). */
export function forwardAll(graph: Graph, x: tf.Tensor): Map<string, tf.Tensor> {
  setRunBatch(x.shape[0]);
  const values = new Map<string, tf.Tensor>([[graph.input.name, x]]);
  // at the declared batch every output must have the shape the loader inferred (layer views rely on them)
  const declaredBatch = x.shape[0] === graph.input.shape[0];
  for (const node of graph.nodes) {
    const y = forward(
      node,
      node.inputs.map((i) => values.get(i)!),
    );
    if (declaredBatch && node.shape && !tf.util.arraysEqual(y.shape, node.shape))
      throw new Error(
        `node "${node.name}" (${node.op}) computed shape [${y.shape}] where [${node.shape}] was inferred`,
      );
    values.set(node.output, y);
  }
  return values;
}

export function modelOutput(model: Model, input: NdArray): NdArray {
  checkInput(model, input);
  tf.engine().startScope();
  try {
    return toNdArray(forwardAll(model.graph, tf.tensor(input.data, input.shape)).get(model.graph.output)!);
  } finally {
    tf.engine().endScope();
  }
}

/**
 * The relevance a node passes back, per value it reads: its rule's (Zennit's hook), or the plain gradient. An
 * activation spelt as several nodes has its rule span the whole module, from its output to its input.
 */
function backThrough(
  node: GraphNode,
  rule: ActiveRule | undefined,
  values: Map<string, tf.Tensor>,
  y: tf.Tensor,
  g: tf.Tensor,
  context: RuleContext,
): [string, tf.Tensor][] {
  if (rule?.kind === 'elementwise' && node.passFrom) {
    const x = values.get(node.passFrom)!;
    const needsOne = () => fail('BAD_ARGUMENT', `${rule.name} needs a single-node activation`);
    return [[node.passFrom, tf.tidy(() => rule.backward(x, y, g, needsOne))]];
  }
  const inputs = node.inputs.map((i) => values.get(i)!);
  const inGrads = tf.tidy(() =>
    rule ? applyRule(rule, node, inputs, y, g, context) : vjp(node, inputs, tensorsOf(node.params), g),
  );
  return node.inputs.map((name, i) => [name, inGrads[i]]);
}

/** The value a layer id names: the output of the node it resolves to. */
function startValue(model: Model, graph: Graph, layer: string): string {
  const node = model.resolveLayers([layer]).get(layer)!;
  return graph.nodes.find((n) => n.id === node)!.output;
}

/**
 * One modified backward pass — Zennit's Gradient attributor with a composite registered (or the plain gradient
 * without one). `outputRelevance` maps the model output to the relevance put on it (a one-hot target).
 */
export async function relevancePass(
  model: Model,
  input: NdArray,
  outputRelevance: (output: tf.Tensor) => tf.Tensor,
  opts: PassOptions = {},
): Promise<PassResult> {
  checkInput(model, input);
  const graph = opts.composite ? model.canonical() : model.graph;
  const rules: Map<string, ActiveRule> = opts.composite ? assignRules(opts.composite, graph, opts.residual) : new Map();
  const wanted = opts.store ? model.resolveLayers(opts.store) : new Map<string, string>();
  const storeByNode = new Map<string, string[]>();
  for (const [id, node] of wanted) storeByNode.set(node, [...(storeByNode.get(node) ?? []), id]);

  if (opts.conditions && opts.conditions.layers.length !== input.shape[0])
    fail('BAD_ARGUMENT', `${opts.conditions.layers.length} rows of conditions for a batch of ${input.shape[0]}`);
  const plan = opts.conditions && conditionPlan(model, graph, opts.conditions.layers, opts.conditions.excludeParallel);

  model.derived.beforeRun();
  tf.engine().startScope();
  try {
    const values = forwardAll(graph, tf.tensor(input.data, input.shape));
    const output = values.get(graph.output)!;
    // nodes after the start have no relevance: they are skipped
    const start = opts.startLayer === undefined ? graph.output : startValue(model, graph, opts.startLayer);
    const grads = new Map<string, tf.Tensor>([[start, outputRelevance(values.get(start)!)]]);
    const stored: LayerRelevance[] = [];
    const sums: LayerSum[] = [];
    const nodes = graph.nodes;
    const nonNegative = nonNegativeValues(graph);
    // frees a tensor as soon as no value or gradient still held refers to it (identity nodes share tensors)
    const release = (t: tf.Tensor) => {
      for (const held of values.values()) if (held === t) return;
      for (const held of grads.values()) if (held === t) return;
      t.dispose();
    };
    for (let k = nodes.length - 1; k >= 0; k--) {
      const node = nodes[k];
      if (opts.isCancelled?.()) throw new EngineError('CANCELLED', 'attribution cancelled');
      opts.onProgress?.(nodes.length - 1 - k, nodes.length, node.id);
      const y = values.get(node.output)!;
      // no relevance reached this node (inside an activation that Pass skipped): it passes none on
      const reached = grads.get(node.output);
      let g = reached ?? tf.zerosLike(y);
      // replaces the node's relevance by what `f` makes of it (conditions)
      const update = (f: (t: tf.Tensor) => tf.Tensor) => {
        const next = f(g);
        if (next === g) return;
        grads.set(node.output, next);
        release(g);
        g = next;
      };
      if (plan && reached) update((t) => plan.onPath(node.id, t));
      const rows = reached ? rowSums(g) : new Array<number>(g.shape[0]).fill(0);
      const sum = rows.reduce((a, b) => a + b, 0);
      sums.unshift({ id: node.id, node: node.name, op: node.sourceOp, shape: [...g.shape], sum, rows });
      for (const id of storeByNode.get(node.id) ?? []) {
        const layer: LayerRelevance = {
          id,
          node: node.name,
          relevance: toNdArray(g),
          ...(opts.storeActivations && { activation: toNdArray(y) }),
        };
        stored.push(layer);
      }
      const accumulate = (name: string, t: tf.Tensor) => {
        const prev = grads.get(name);
        grads.set(name, prev ? tf.add(prev, t) : t);
        if (prev) release(prev);
      };
      if (plan && reached) {
        plan.dropElsewhere(node.id, grads, node.output, release);
        update((t) => plan.masked(node.id, t));
      }
      if (reached) {
        const rule = rules.get(node.id);
        const nonNegativeInputs = node.inputs.every((i) => nonNegative.has(i));
        for (const [name, t] of backThrough(node, rule, values, y, g, { derived: model.derived, nonNegativeInputs }))
          accumulate(name, t);
      }
      // nothing earlier in the graph reads this node's output or its gradient
      grads.delete(node.output);
      release(g);
      if (node.output !== graph.output) {
        values.delete(node.output);
        release(y);
      }
      await yieldToEventLoop();
    }
    const relevance = grads.get(graph.input.name) ?? tf.zerosLike(values.get(graph.input.name)!);
    return {
      output: toNdArray(output),
      relevance: toNdArray(relevance),
      // captured during the backward pass; hand them out in execution order
      stored: stored.reverse(),
      sums,
    };
  } finally {
    tf.engine().endScope();
    plan?.dispose();
  }
}
