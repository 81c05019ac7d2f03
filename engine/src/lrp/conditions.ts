/**
 * Concept-conditional relevance (CRP, zennit-crp's CondAttribution): the relevance pass masked at chosen layers so
 * that only the relevance of chosen channels flows on below them, one result row per input row and condition set.
 *
 * zennit-crp masks the gradient at a layer's output after the layer's relevance is complete (what a store hook
 * records there is the relevance before the mask). With exclude_parallel it runs the backward pass in pieces, from
 * the output to the latest conditioned layer and from each conditioned layer to the next: relevance below a
 * conditioned layer comes through it alone, and layers off that path hold none. Here that is one pass: at a
 * conditioned layer the other pending relevance of its rows is dropped, and rows for which a layer lies off the
 * path are zeroed there.
 */
import * as tf from '@tensorflow/tfjs-core';
import { fail } from '../errors';
import type { Graph } from '../graph/graph';
import type { Model } from '../graph/model';
import { type Layout, size } from '../ndarray';
import type { ConditionSet } from '../../../protocol/engine';
import type { OutputRelevance } from '../../../protocol/names';

/** The key of a condition set that names output classes rather than a layer (zennit-crp's MODEL_OUTPUT_NAME). */
export const OUTPUT_KEY = 'y';

/**
 * A row's condition on one layer: its id, the channels that pass on, and optionally one position (flat over the
 * layer's spatial axes, rows × columns) where alone they pass — a single neuron, as zennit-crp's mask_rf.
 */
export type LayerCondition = [id: string, channels: number[], position?: number];

/** The conditions of each row of a pass: the channels that pass on at each conditioned node. */
export interface RowConditions {
  /** per row: node id → channels (a row without an entry for a node is not conditioned there) */
  rows: Map<string, number[]>[];
  /** per row: node id → the one position the channels pass at (none: every position) */
  positions?: Map<string, number>[];
  excludeParallel: boolean;
}

/**
 * Expands a batch for condition sets: row n·K + k is input row n under set k (zennit-crp's broadcast), with the
 * classes its relevance starts from and its layer conditions (by layer id).
 */
export function expandRows(
  batch: number,
  sets: readonly ConditionSet[],
  targets: readonly number[],
): { classes: number[][]; layers: [string, number[]][][] } {
  const classes: number[][] = [];
  const layers: [string, number[]][][] = [];
  for (let n = 0; n < batch; n++) {
    for (const set of sets) {
      classes.push(set[OUTPUT_KEY] ?? [targets.length === 1 ? targets[0] : targets[n]]);
      layers.push(Object.entries(set).filter(([key]) => key !== OUTPUT_KEY));
    }
  }
  return { classes, layers };
}

/** The output relevance of each row: its classes one-hot, their logits, or the logits' absolute values. */
export function classRelevance(classes: readonly number[][], mode: OutputRelevance, weights?: readonly number[]) {
  return (output: tf.Tensor): tf.Tensor => {
    if (output.rank !== 2)
      fail('BAD_ARGUMENT', `the model output has shape [${output.shape}]; a class target needs [batch, classes]`);
    const [rows, count] = output.shape as [number, number];
    const hot = new Float32Array(rows * count);
    classes.forEach((cs, r) => {
      cs.forEach((c, k) => {
        if (!Number.isInteger(c) || c < 0 || c >= count)
          fail('BAD_ARGUMENT', `target class ${c} is out of range (the model has ${count} outputs)`);
        hot[r * count + c] += weights ? weights[k] : 1;
      });
    });
    const mask = tf.tensor2d(hot, [rows, count]);
    if (mode === 'one_hot') return mask;
    const logit = tf.mul(mask, output);
    return mode === 'abs' ? tf.abs(logit) : logit;
  };
}

/** The relevance put on a layer's value where the pass starts at a layer: ones, the value, or its absolute value. */
export function valueRelevance(mode: OutputRelevance) {
  return (value: tf.Tensor): tf.Tensor =>
    mode === 'one_hot' ? tf.onesLike(value) : mode === 'abs' ? tf.abs(value) : value.clone();
}

/** The axis a node's channels are on: last for channels-last images, else 1 (PyTorch's channel, feature or token). */
function channelAxis(shape: readonly number[], layout: Layout): number {
  return shape.length === 4 && layout === 'NHWC' ? 3 : 1;
}

/** Node indices reachable from `start` through `next` (itself included). */
function reach(start: number, next: (i: number) => number[]): Set<number> {
  const seen = new Set<number>([start]);
  const todo = [start];
  while (todo.length) {
    for (const j of next(todo.pop()!)) {
      if (seen.has(j)) continue;
      seen.add(j);
      todo.push(j);
    }
  }
  return seen;
}

/** What a conditional pass does at each node of one graph. */
export class ConditionPlan {
  private readonly index = new Map<string, number>();
  /** per conditioned node: the channel mask of every row, shaped to broadcast over the node's relevance */
  private readonly masks = new Map<string, tf.Tensor>();
  /** exclude_parallel: per conditioned node, 0 for the rows conditioned there, 1 for the others */
  private readonly drops = new Map<string, tf.Tensor>();
  /** exclude_parallel: per node, 1 for the rows whose conditioned path it lies on, 0 for the others */
  private readonly onPathRows = new Map<string, tf.Tensor>();

  constructor(
    private readonly graph: Graph,
    private readonly conditions: RowConditions,
  ) {
    graph.nodes.forEach((n, i) => this.index.set(n.id, i));
    const batch = conditions.rows.length;
    try {
      for (const id of new Set(conditions.rows.flatMap((r) => [...r.keys()]))) this.makeMask(id, batch);
      if (conditions.excludeParallel) this.planPaths(batch);
    } catch (e) {
      this.dispose(); // a bad condition: free the masks made before it
      throw e;
    }
  }

  private makeMask(id: string, batch: number): void {
    const node = this.graph.nodes[this.index.get(id)!];
    const shape = node.shape!;
    const axis = channelAxis(shape, this.graph.layout);
    const count = shape[axis];
    const values = new Float32Array(batch * count).fill(1);
    this.conditions.rows.forEach((row, r) => {
      const channels = row.get(id);
      if (!channels) return;
      values.fill(0, r * count, (r + 1) * count);
      for (const c of channels) {
        if (c >= count)
          fail('BAD_ARGUMENT', `condition on layer "${node.id}": channel ${c} is out of range (it has ${count})`);
        values[r * count + c] = 1;
      }
    });
    const broadcast = shape.map((d, i) => (i === 0 ? batch : i === axis ? count : 1));
    const positions = this.conditions.positions;
    if (!positions?.some((p) => p.has(id))) return void this.masks.set(id, tf.keep(tf.tensor(values, broadcast)));
    // single neurons: a mask of the node's whole shape, each row's channels at its one position
    const places = size(shape.slice(1)) / count;
    const full = new Float32Array(batch * count * places);
    const channelsLast = axis === shape.length - 1 && shape.length > 2;
    for (let r = 0; r < batch; r++)
      for (let c = 0; c < count; c++)
        for (let p = 0; p < places; p++) {
          const at = positions[r]?.get(id);
          if (at !== undefined && at >= places)
            fail('BAD_ARGUMENT', `condition on layer "${node.id}": position ${at} is out of range (it has ${places})`);
          const on = values[r * count + c] === 1 && (at === undefined || at === p);
          full[r * count * places + (channelsLast ? p * count + c : c * places + p)] = on ? 1 : 0;
        }
    this.masks.set(id, tf.keep(tf.tensor(full, [batch, ...shape.slice(1)])));
  }

  /** Which rows each node's relevance may reach under exclude_parallel (see the module's comment). */
  private planPaths(batch: number): void {
    const nodes = this.graph.nodes;
    const producer = new Map(nodes.map((n, i) => [n.output, i]));
    const consumers = nodes.map(() => [] as number[]);
    nodes.forEach((n, i) => n.inputs.forEach((v) => producer.has(v) && consumers[producer.get(v)!].push(i)));
    const ancestors = (i: number) => reach(i, (j) => nodes[j].inputs.flatMap((v) => producer.get(v) ?? []));
    const descendants = (i: number) => reach(i, (j) => consumers[j]);
    const onPath = nodes.map(() => new Float32Array(batch).fill(1));
    const byChain = new Map<string, Set<number>>();
    this.conditions.rows.forEach((row, r) => {
      // the row's conditioned nodes, the latest first: each must lie below the one before
      const chain = [...row.keys()].map((id) => this.index.get(id)!).sort((a, b) => b - a);
      if (chain.length === 0) return;
      const key = chain.join(',');
      if (!byChain.has(key)) byChain.set(key, this.pathOf(chain, ancestors, descendants));
      const path = byChain.get(key)!;
      nodes.forEach((_, i) => (onPath[i][r] = path.has(i) ? 1 : 0));
    });
    nodes.forEach((n, i) => {
      if (onPath[i].every((v) => v === 1)) return;
      this.onPathRows.set(n.id, tf.keep(tf.tensor(onPath[i], rowShape(batch, n.shape!.length))));
    });
    for (const id of this.masks.keys()) {
      const kept = Float32Array.from(this.conditions.rows, (row) => (row.has(id) ? 0 : 1));
      this.drops.set(id, tf.keep(tf.tensor(kept, [batch])));
    }
  }

  /**
   * The nodes a row conditioned at `chain` (latest first) holds relevance at: those after the latest conditioned
   * node (toward the output), those between each conditioned node and the next, and those before the earliest
   * (toward the input).
   */
  private pathOf(
    chain: number[],
    ancestors: (i: number) => Set<number>,
    descendants: (i: number) => Set<number>,
  ): Set<number> {
    const nodes = this.graph.nodes;
    const path = descendants(chain[0]);
    for (let k = 1; k < chain.length; k++) {
      const above = ancestors(chain[k - 1]);
      if (!above.has(chain[k]))
        fail(
          'BAD_ARGUMENT',
          `layers "${nodes[chain[k - 1]].id}" and "${nodes[chain[k]].id}" of one condition set lie on parallel ` +
            "branches: with excludeParallel (zennit-crp's exclude_parallel) one set's layers must lie on one path",
        );
      for (const i of descendants(chain[k])) if (above.has(i)) path.add(i);
    }
    for (const i of ancestors(chain[chain.length - 1])) path.add(i);
    return path;
  }

  /** The node's relevance, zero in the rows for which it lies off the conditioned path (exclude_parallel). */
  onPath(id: string, g: tf.Tensor): tf.Tensor {
    const rows = this.onPathRows.get(id);
    return rows ? tf.mul(g, rows) : g;
  }

  /** The relevance the node passes on: its rows' channels masked where they are conditioned. */
  masked(id: string, g: tf.Tensor): tf.Tensor {
    const mask = this.masks.get(id);
    return mask ? tf.mul(g, mask) : g;
  }

  /**
   * exclude_parallel: at a conditioned node, the relevance still pending elsewhere for the rows conditioned there
   * (it did not come through this node); `pending` maps values to their relevance, `own` is this node's output.
   */
  dropElsewhere(id: string, pending: Map<string, tf.Tensor>, own: string, release: (t: tf.Tensor) => void): void {
    const keep = this.drops.get(id);
    if (!keep) return;
    for (const [value, t] of pending) {
      if (value === own) continue;
      pending.set(value, tf.mul(t, tf.reshape(keep, rowShape(keep.shape[0], t.rank))));
      release(t);
    }
  }

  dispose(): void {
    for (const t of [...this.masks.values(), ...this.drops.values(), ...this.onPathRows.values()]) t.dispose();
  }
}

/** [batch, 1, 1, …]: a per-row factor broadcast over a tensor of `rank`. */
function rowShape(batch: number, rank: number): number[] {
  return [batch, ...new Array<number>(rank - 1).fill(1)];
}

/** The plan for `model`'s graph `graph` (plain or canonical), with the layer ids of each row resolved to nodes. */
export function conditionPlan(
  model: Model,
  graph: Graph,
  layers: readonly LayerCondition[][],
  excludeParallel: boolean,
): ConditionPlan {
  const ids = [...new Set(layers.flatMap((row) => row.map(([id]) => id)))];
  const nodeOf = model.resolveLayers(ids);
  const positions = layers.map(
    (row) => new Map(row.flatMap(([id, , at]) => (at === undefined ? [] : [[nodeOf.get(id)!, at] as const]))),
  );
  const rows = layers.map((row) => {
    const byNode = new Map<string, number[]>();
    for (const [id, channels] of row) {
      const node = nodeOf.get(id)!;
      const before = byNode.get(node);
      // two ids of one output (a container and its last layer): both masks apply
      byNode.set(node, before ? before.filter((c) => channels.includes(c)) : [...channels]);
    }
    return byNode;
  });
  return new ConditionPlan(graph, { rows, positions, excludeParallel });
}
