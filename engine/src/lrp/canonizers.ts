import * as tf from '@tensorflow/tfjs-core';
import type { Graph, GraphNode } from '../graph/graph';
import { Param } from '../graph/param';

/**
 * Zennit's MergeBatchNorm: a batch-norm that directly follows a convolution or dense layer (and is its only
 * consumer) is folded into that layer's weight and bias; the batch-norm itself becomes the identity, so its
 * relevance equals the merged layer's. Returns a new graph; the original keeps its parameters.
 */
export function mergeBatchNorm(graph: Graph): Graph {
  const consumers = new Map<string, number>();
  for (const n of graph.nodes) for (const i of n.inputs) consumers.set(i, (consumers.get(i) ?? 0) + 1);
  const byOutput = new Map(graph.nodes.map((n) => [n.output, n]));
  const replaced = new Map<string, GraphNode>();
  for (const bn of graph.nodes) {
    if (bn.op !== 'batchNorm') continue;
    const linear = byOutput.get(bn.inputs[0]);
    if (!linear || (linear.op !== 'conv2d' && linear.op !== 'dense') || consumers.get(linear.output) !== 1) continue;
    // made on first use, like the parameters they come from
    const scale = () =>
      tf.div(bn.params.scale.tensor, tf.sqrt(tf.add(bn.params.variance.tensor, bn.attrs.epsilon ?? 1e-3)));
    // the scale is per output: the last axis of HWIO and [in, out] weights, the first of [out, in] ones
    const outFirst = linear.op === 'dense' && linear.attrs.weightOutIn === true;
    const weight = Param.lazy(linear.params.weight.shape, () =>
      tf.mul(linear.params.weight.tensor, outFirst ? tf.reshape(scale(), [-1, 1]) : scale()),
    );
    const bias = Param.lazy(bn.params.scale.shape, () => {
      const b = linear.params.bias?.tensor ?? tf.zeros(bn.params.scale.shape as number[]);
      return tf.add(tf.mul(tf.sub(b, bn.params.mean.tensor), scale()), bn.params.offset.tensor);
    });
    replaced.set(linear.id, { ...linear, params: { weight, bias } });
    replaced.set(bn.id, { ...bn, op: 'identity', params: {}, attrs: {} });
  }
  if (replaced.size === 0) return graph;
  return { ...graph, nodes: graph.nodes.map((n) => replaced.get(n.id) ?? n) };
}

/** Parameters a canonized graph owns (to dispose with it), i.e. those not shared with the original. */
export function ownedParams(canonical: Graph, original: Graph): Param[] {
  const shared = new Set(original.nodes.flatMap((n) => Object.values(n.params)));
  return canonical.nodes.flatMap((n) => Object.values(n.params)).filter((t) => !shared.has(t));
}
